#include "expand.h"
#include "managers.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int nsim__lookup(const struct nsim_run *r, const char *ref, char *val, size_t vlen,
                        char *why, size_t whylen) {
  const struct nsim_topo *t = &r->sc->topo;
  if (!strcmp(ref, "netsim")) return nsim_fmt(val, vlen, "%s", r->self) < 0 ? -EINVAL : 0;
  if (!strcmp(ref, "rundir")) return nsim_fmt(val, vlen, "%s", r->dir) < 0 ? -EINVAL : 0;
  if (!strcmp(ref, "run")) return nsim_fmt(val, vlen, "%s", r->id) < 0 ? -EINVAL : 0;
  if (!strncmp(ref, "state:", 6)) {
    /* A node's own state folder (key, admission store, epoch), inside the run folder. The
     * name becomes a path component: letters, digits, - and _ only. */
    const char *n = ref + 6;
    size_t nl = strlen(n);
    if (nl == 0 || nl > 32 || strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789_-") != nl)
      return -EINVAL;
    return nsim_fmt(val, vlen, "%s/statedirs/%s", r->dir, n) < 0 ? -EINVAL : 0;
  }
  if (!strncmp(ref, "fp:", 3)) /* a key's fingerprint, the key made if missing (managers.h) */
    return nsim_key_fingerprint(r, ref + 3, val, vlen, why, whylen);
  if (!strncmp(ref, "bin:", 4)) {
    if (r->bindir[0] && nsim_fmt(val, vlen, "%s/%s", r->bindir, ref + 4) >= 0 &&
        access(val, X_OK) == 0)
      return 0;
    return nsim_fmt(val, vlen, "%s", ref + 4) < 0 ? -EINVAL : 0;
  }
  return nsim_topo_addr_ref(t, ref, val, vlen, why, whylen);
}

int nsim_expand(const struct nsim_run *r, const char *s, char *out, size_t outlen, char *err,
                size_t errlen) {
  size_t used = 0;
  while (*s) {
    if (s[0] == '$' && s[1] == '{') {
      const char *end = strchr(s, '}');
      char ref[128], val[4096];
      if (!end || (size_t)(end - s - 2) >= sizeof ref) {
        snprintf(err, errlen, "unterminated ${ in \"%s\"", s);
        return -EINVAL;
      }
      memcpy(ref, s + 2, (size_t)(end - s - 2));
      ref[end - s - 2] = 0;
      char why[256] = "";
      if (nsim__lookup(r, ref, val, sizeof val, why, sizeof why) < 0) {
        if (why[0]) snprintf(err, errlen, "%s", why);
        else snprintf(err, errlen, "unknown reference ${%s} (netsim, bin:NAME, ip:NODE, "
                      "ip6:NODE, lan:ROUTER, lan6:ROUTER, rundir, run, state:NAME, fp:NAME)", ref);
        return -EINVAL;
      }
      size_t vl = strlen(val);
      if (used + vl + 1 > outlen) goto toolong;
      memcpy(out + used, val, vl);
      used += vl;
      s = end + 1;
    } else {
      if (used + 2 > outlen) goto toolong;
      out[used++] = *s++;
    }
  }
  out[used] = 0;
  return 0;
toolong:
  snprintf(err, errlen, "expanded text too long");
  return -ENAMETOOLONG;
}

int nsim_expand_argv(const struct nsim_run *r, const char *cmd, char ***argvp, char *err,
                     size_t errlen) {
  char **argv;
  int argc = nsim_split_args(cmd, &argv);
  if (argc < 0) {
    snprintf(err, errlen, "cannot split command \"%s\" (unbalanced quote?)", cmd);
    return argc;
  }
  if (argc == 0) {
    nsim_argv_free(argv);
    snprintf(err, errlen, "empty command");
    return -EINVAL;
  }
  for (int i = 0; i < argc; i++) {
    char buf[4096];
    int rc = nsim_expand(r, argv[i], buf, sizeof buf, err, errlen);
    char *copy = rc < 0 ? NULL : strdup(buf);
    if (!copy) {
      nsim_argv_free(argv);
      return rc < 0 ? rc : -ENOMEM;
    }
    free(argv[i]);
    argv[i] = copy;
  }
  *argvp = argv;
  return argc;
}
