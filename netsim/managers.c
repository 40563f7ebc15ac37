#include "managers.h"
#include "expand.h"
#include "util.h"

#include "nm_identity.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int nsim_key_fingerprint(const struct nsim_run *r, const char *name, char *out, size_t outlen,
                         char *err, size_t errlen) {
  size_t nl = strlen(name);
  if (nl == 0 || nl > 32 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != nl) {
    snprintf(err, errlen, "${fp:%s}: expected a state folder's name, [a-z0-9_-]{1,32}", name);
    return -EINVAL;
  }
  char dir[PATH_MAX], why[256] = "";
  if (nsim_fmt(dir, sizeof dir, "%s/statedirs/%s", r->dir, name) < 0) {
    snprintf(err, errlen, "${fp:%s}: path too long", name);
    return -ENAMETOOLONG;
  }
  nm_identity id;
  int rc = nm_identity_load_or_create(dir, &id, why, sizeof why);
  if (rc < 0) {
    snprintf(err, errlen, "${fp:%s}: %s", name, why[0] ? why : "cannot load or make the key");
    return rc;
  }
  rc = nsim_fmt(out, outlen, "%s", nm_identity_fingerprint(&id)->hex);
  nm_identity_close(&id);
  return rc;
}

/* One "ADDR:PORT=FP" of the list: the endpoint (checked as everywhere in netsim: IPv4, or
 * [IPv6] bracketed) and 64 lowercase hex characters. */
static int nsim__manager_item(const char *item, char *ep, size_t eplen, char *fp, char *why,
                              size_t whylen) {
  const char *eq = strrchr(item, '=');
  size_t el = eq ? (size_t)(eq - item) : 0;
  struct nsim_endpoint e;
  if (!eq || el == 0 || el >= eplen) goto bad;
  memcpy(ep, item, el);
  ep[el] = 0;
  if (nsim_endpoint_parse(ep, &e) < 0) goto bad;
  if (strlen(eq + 1) != NM_FINGERPRINT_HEX ||
      strspn(eq + 1, "0123456789abcdef") != NM_FINGERPRINT_HEX)
    goto bad;
  memcpy(fp, eq + 1, NM_FINGERPRINT_HEX + 1);
  return 0;
bad:
  snprintf(why, whylen, "managers: \"%.200s\" is not ADDR:PORT=FINGERPRINT (e.g. "
           "${ip:m1}:85=${fp:manager1}; IPv6 as [V6]:PORT=...)", item);
  return -EINVAL;
}

/* One <connectionmgr> line, the servant's list form (natmesh-config(5)). ep is a checked
 * endpoint. */
static int nsim__manager_line(const struct nsim_step *s, const char *ep, const char *fp, char *out,
                              size_t outlen) {
  (void)s;
  /* HOST,PORT,FINGERPRINT: an IPv6 host plain (the commas separate), the port after the
   * endpoint's last colon. */
  const char *colon = strrchr(ep, ':');
  const char *host = ep[0] == '[' ? ep + 1 : ep;
  int hl = (int)(colon - host) - (ep[0] == '[' ? 1 : 0);
  return nsim_fmt(out, outlen, "  <connectionmgr>%.*s,%s,%s</connectionmgr>\n", hl, host, colon + 1, fp);
}

int nsim_managers_config_write(struct nsim_run *r, const struct nsim_step *s, char *detail,
                               size_t len) {
  char list[4096], path[PATH_MAX], xml[4096];
  if (nsim_expand(r, s->managers, list, sizeof list, detail, len) < 0) return -EINVAL;
  if (nsim_fmt(path, sizeof path, "%s/%s", r->dir, s->file) < 0) {
    snprintf(detail, len, "managers-config: path too long");
    return -ENAMETOOLONG;
  }
  size_t used = (size_t)snprintf(xml, sizeof xml, "<%s>\n", s->root);
  int n = 0;
  char *save = NULL;
  for (char *item = strtok_r(list, " \t\n", &save); item; item = strtok_r(NULL, " \t\n", &save)) {
    char ep[128], fp[NM_FINGERPRINT_HEX + 1];
    if (++n > NSIM_MANAGERS_MAX) {
      snprintf(detail, len, "managers-config: more than %d managers", NSIM_MANAGERS_MAX);
      return -E2BIG;
    }
    if (nsim__manager_item(item, ep, sizeof ep, fp, detail, len) < 0) return -EINVAL;
    if (nsim__manager_line(s, ep, fp, xml + used, sizeof xml - used) < 0) goto toolong;
    used += strlen(xml + used);
  }
  if (n == 0) {
    snprintf(detail, len, "managers-config: no manager listed");
    return -EINVAL;
  }
  int w = snprintf(xml + used, sizeof xml - used, "</%s>\n", s->root);
  if (w < 0 || (size_t)w >= sizeof xml - used) goto toolong;
  used += (size_t)w;
  /* A new file only: a name that is taken (a log, the state file, another step's config) is
   * the scenario's mistake, not something to write over. */
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    int e = errno;
    snprintf(detail, len, "managers-config: cannot create %s: %s", path, strerror(e));
    return -e;
  }
  ssize_t wr = write(fd, xml, used);
  int werr = errno;
  close(fd);
  if (wr != (ssize_t)used) {
    snprintf(detail, len, "managers-config: cannot write %s: %s", path, strerror(wr < 0 ? werr : EIO));
    return -EIO;
  }
  snprintf(detail, len, "%s: %d managers, in that order", s->file, n);
  return 0;
toolong:
  snprintf(detail, len, "managers-config: the file would be too long");
  return -ENAMETOOLONG;
}
