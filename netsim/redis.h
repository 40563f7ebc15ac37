/* redis: Redis and Redis Sentinel on a host of the simulated internet, for the natmesh
 * managers that share an overlay through a store (manager --store redis://IP:PORT or
 * sentinel://IP:PORT,.../MASTER).
 *
 * <redis name="db" host="h" [port="6379"] [replica-of="REDIS"]/> runs redis-server in h's
 * namespace with a config netsim writes to RUNDIR/NAME.conf: listening on every address of
 * the host (protected mode off: only the run's namespaces can reach it), nothing saved
 * (save "", appendonly no), its folder RUNDIR/NAME.redis, logging to stdout; a replica
 * follows the <redis> it names. <sentinel name="s1" host="h" [port="26379"] master="db"
 * quorum="N"/> runs redis-sentinel monitoring that <redis> under the master name "db"
 * (down after 1 s, failover timeout 5 s), its config in RUNDIR/NAME.conf (Sentinel rewrites
 * it). Each is a scenario process like any <start>ed one (logs, kill, restart, expect-line),
 * awaited until it says it is ready, stopped by its own pid with the run. */
#ifndef NSIM_REDIS_H
#define NSIM_REDIS_H

#include "run.h"

#define NSIM_REDIS_PORT 6379
#define NSIM_SENTINEL_PORT 26379
/* What each prints once it serves (on stdout, logfile ""). */
#define NSIM_REDIS_READY "Ready to accept connections"
#define NSIM_SENTINEL_READY "+monitor master"

/* The process for a <redis> or <sentinel> step, with its config written, added but not
 * started. Returns it, or NULL with the reason in err. */
struct nsim_proc *nsim_redis_add(struct nsim_run *r, const struct nsim_step *s, char *err,
                                 size_t errlen);

#endif
