/* state: the run folder, the state file that lists what a run created, the watchdog that
 * removes it all if netsim dies, and the cleanup that `run`, the watchdog and `down` share.
 *
 * The state file is appended to *before* each namespace is created and right after each
 * process is started, so whatever kills netsim, the file names everything to remove. */
#ifndef NSIM_STATE_H
#define NSIM_STATE_H

#include "run.h"

/* Picks a fresh run id and prefix, creates base/ID/ (with logs/) and the state file. */
int nsim_state_create(struct nsim_run *r, const char *base);

/* Appends "ns NODE NAMESPACE" / "pid PID STARTTIME" records. */
int nsim_state_add_ns(struct nsim_run *r, const char *node, const char *ns);
int nsim_state_add_pid(struct nsim_run *r, pid_t pid);
/* Appends "file NAME": a file in the run folder (a plain name, no '/') that the cleanup
 * removes, recorded before it is created (a packet capture: it must not outlive the run). */
int nsim_state_add_file(struct nsim_run *r, const char *name);

/* Forks the watchdog: a process in its own session that waits on a pipe from netsim and,
 * when the pipe closes without a "detach" byte (netsim crashed, was killed, or returned
 * without cleaning up), runs nsim_cleanup_dir on the run folder. */
int nsim_watchdog_start(struct nsim_run *r);
/* Tells the watchdog to exit without cleaning (cleanup already done, or `up` leaves the
 * topology on purpose) and waits for it. */
void nsim_watchdog_release(struct nsim_run *r);

/* Removes everything the state file in dir names: processes (by recorded pid and by
 * namespace membership), then namespaces, then the files recorded with add_file. Idempotent: marks the file clean at the end.
 * Returns the number of namespaces that could not be removed (0 is success). */
int nsim_cleanup_dir(const char *dir, int verbose);

/* Namespace of node in a run folder's state file. Returns 0 or -ENOENT. */
int nsim_state_find_ns(const char *dir, const char *node, char *ns, size_t nslen);

/* The run id `up` recorded last in base ("current"), for exec and down. */
int nsim_state_current(const char *base, char *id, size_t idlen);
int nsim_state_set_current(const char *base, const char *id);
void nsim_state_clear_current(const char *base, const char *id);

#endif
