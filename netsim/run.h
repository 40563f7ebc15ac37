/* run: one netsim run's identity and resources: its id and namespace prefix, its run folder
 * (logs, generated configs, the state file the watchdog and `down` clean up from), the
 * processes it started and the scenario it executes. */
#ifndef NSIM_RUN_H
#define NSIM_RUN_H

#include "nsops.h"
#include "scenario.h"

#include <limits.h>
#include <sys/types.h>

#define NSIM_MAX_PROCS 64

struct nsim_proc {
  char name[NSIM_NAME_MAX + 16];
  int node;
  char **argv;                      /* owned */
  pid_t pid;                        /* 0 when not running */
  int stdin_fd;                     /* write end of the process's stdin, -1 when closed */
  char out_path[PATH_MAX], err_path[PATH_MAX];
  long out_base, err_base;          /* log offsets where the current incarnation starts */
  int exited, status;               /* wait status once exited */
  long started_ms, exited_ms;
  int daemon;                       /* netsim's own daemon (miniupnpd): expected to keep running */
  long fsize_max;                   /* >0: RLIMIT_FSIZE in bytes (a capture's bound); it is
                                       killed by SIGXFSZ when it writes past it */
};

struct nsim_stamps;

struct nsim_run {
  char id[NSIM_ID_LEN + 1];
  char prefix[sizeof NSIM_PREFIX + NSIM_ID_LEN + 1]; /* "nms-1a2b3c-" */
  char dir[PATH_MAX];               /* run folder */
  char base[PATH_MAX];              /* folder holding run folders */
  char self[PATH_MAX];              /* this executable, for ${netsim} and helpers */
  char bindir[PATH_MAX];            /* where ${bin:NAME} looks: --bindir, else self's folder */
  int verbose;
  int persist;                      /* up: daemons outlive netsim (no parent-death signal) */

  struct nsim_scenario *sc;
  char nsname[NSIM_MAX_NODES + 1][64]; /* [0..nnodes) nodes, [nnodes] the internet core */
  int netem_missing;                /* 0 not probed, 1 kernel lacks sch_netem (fallbacks), 2 present */

  struct nsim_proc procs[NSIM_MAX_PROCS];
  int nprocs;

  int watchdog_fd;                  /* write end of the pipe the watchdog reads; -1 */
  pid_t watchdog_pid;
  long t0_ms;                       /* scenario start, for `at` and the report */
  struct nsim_stamps *stamps;       /* when log lines appeared (stamp.h), during the scenario */
};

/* Namespace name of node idx, or of the internet core when idx == nnodes (or -1). */
const char *nsim_run_ns(const struct nsim_run *r, int idx);

/* Progress line on stderr, prefixed with the time since the run began. */
void nsim_log(const struct nsim_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
