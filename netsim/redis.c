#include "redis.h"
#include "proc.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "IP PORT" of the <redis> step a replica or a sentinel follows (its host's IPv4 address:
 * replication and Sentinel announce addresses, and the managers dial IP literals). */
static int nsim__redis_addr(const struct nsim_run *r, const struct nsim_step *s, char *out,
                            size_t outlen, char *err, size_t errlen) {
  const struct nsim_step *m = &r->sc->steps[s->ref_step];
  char ref[NSIM_NAME_MAX + 8], ip[64], why[256] = "";
  snprintf(ref, sizeof ref, "ip:%s", m->host);
  if (nsim_topo_addr_ref(&r->sc->topo, ref, ip, sizeof ip, why, sizeof why) < 0) {
    snprintf(err, errlen, "%s: %s", s->process, why[0] ? why : "no address");
    return -EINVAL;
  }
  return nsim_fmt(out, outlen, "%s %u", ip, m->port);
}

static int nsim__redis_conf(const struct nsim_run *r, const struct nsim_step *s, const char *dir,
                            char *conf, size_t len, char *err, size_t errlen) {
  char master[96] = "";
  if (s->ref_step >= 0 && nsim__redis_addr(r, s, master, sizeof master, err, errlen) < 0)
    return -EINVAL;
  /* Common to both: the host's every address (protected mode would refuse the other
   * namespaces' clients), no daemonizing (netsim holds the pid), the log on stdout. */
  int n = snprintf(conf, len,
                   "# written by natmesh-netsim for <%s name=\"%s\"> (line %d)\n"
                   "port %u\nbind 0.0.0.0\nprotected-mode no\ndaemonize no\nlogfile \"\"\n"
                   "dir \"%s\"\n",
                   nsim_step_kind_name(s->kind), s->process, s->line, s->port, dir);
  if (n < 0 || (size_t)n >= len) goto toolong;
  size_t used = (size_t)n;
  if (s->kind == NSIM_STEP_REDIS) {
    n = snprintf(conf + used, len - used, "save \"\"\nappendonly no\n%s%s%s",
                 master[0] ? "replicaof " : "", master, master[0] ? "\n" : "");
  } else {
    const char *mn = r->sc->steps[s->ref_step].process;
    n = snprintf(conf + used, len - used,
                 "sentinel monitor %s %s %u\n"
                 "sentinel down-after-milliseconds %s 1000\n"
                 "sentinel failover-timeout %s 5000\n",
                 mn, master, s->quorum, mn, mn);
  }
  if (n < 0 || (size_t)n >= len - used) goto toolong;
  return 0;
toolong:
  snprintf(err, errlen, "%s: config too long", s->process);
  return -ENAMETOOLONG;
}

struct nsim_proc *nsim_redis_add(struct nsim_run *r, const struct nsim_step *s, char *err,
                                 size_t errlen) {
  char path[PATH_MAX], dir[PATH_MAX], conf[2048];
  if (nsim_fmt(path, sizeof path, "%s/%s.conf", r->dir, s->process) < 0 ||
      nsim_fmt(dir, sizeof dir, "%s/%s.redis", r->dir, s->process) < 0) {
    snprintf(err, errlen, "%s: path too long", s->process);
    return NULL;
  }
  if (nsim__redis_conf(r, s, dir, conf, sizeof conf, err, errlen) < 0) return NULL;
  int rc = nsim_mkdir_p(dir);
  if (rc == 0) rc = nsim_write_file(path, conf, strlen(conf));
  if (rc < 0) {
    snprintf(err, errlen, "%s: cannot write %s: %s", s->process, path, strerror(-rc));
    return NULL;
  }
  const char *words[] = {s->kind == NSIM_STEP_REDIS ? "redis-server" : "redis-sentinel", path, NULL};
  char **argv = calloc(NSIM_ARRAY_LEN(words), sizeof *argv);
  for (size_t i = 0; argv && words[i]; i++)
    if (!(argv[i] = strdup(words[i]))) {
      nsim_argv_free(argv);
      argv = NULL;
    }
  int node = nsim_topo_find(&r->sc->topo, s->host);
  struct nsim_proc *p = argv ? nsim_proc_add(r, s->process, node, argv, 0) : NULL;
  if (!p) {
    if (argv) nsim_argv_free(argv);
    snprintf(err, errlen, "%s: too many processes", s->process);
  }
  return p;
}
