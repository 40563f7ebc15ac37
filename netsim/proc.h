/* proc: the processes a scenario runs on its hosts. Each gets a pipe to its stdin (for chat
 * lines), its stdout and stderr in log files in the run folder, its own process group and a
 * parent-death signal, and is recorded in the state file as soon as it exists. */
#ifndef NSIM_PROC_H
#define NSIM_PROC_H

#include "run.h"

/* Adds a process slot (not started). Takes ownership of argv. Returns it or NULL when full. */
struct nsim_proc *nsim_proc_add(struct nsim_run *r, const char *name, int node, char **argv,
                                int daemon);
struct nsim_proc *nsim_proc_find(struct nsim_run *r, const char *name);

/* Starts (or restarts) the process. Returns 0 or a negative code with the reason in err. */
int nsim_proc_start(struct nsim_run *r, struct nsim_proc *p, char *err, size_t errlen);

/* Writes line plus a newline to its stdin. */
int nsim_proc_send(struct nsim_proc *p, const char *line);

/* Sends sig (to the whole process group) and, for terminating signals, waits up to wait_ms
 * for the exit, then SIGKILLs. Returns 0 or -ETIMEDOUT when even SIGKILL did not end it. */
int nsim_proc_signal(struct nsim_run *r, struct nsim_proc *p, int sig, long wait_ms);

/* Collects exit statuses of children that ended; logs unexpected exits. */
void nsim_proc_reap(struct nsim_run *r);

/* Stops every running process: SIGTERM, grace_ms, then SIGKILL. Closes stdin pipes. */
void nsim_proc_stop_all(struct nsim_run *r, long grace_ms);

/* Frees argv of every slot. */
void nsim_proc_free_all(struct nsim_run *r);

/* Searches the process's log(s) from where its current incarnation started for a line
 * containing text (or matching the extended regex). On a match copies the line into found
 * and returns 1; 0 when absent; negative on error (bad regex). */
int nsim_proc_log_find(struct nsim_proc *p, int streams, const char *text, const char *regex,
                       char *found, size_t foundlen);
/* The same from explicit offsets (out_from, err_from) instead of the incarnation's start. */
int nsim_proc_log_find_from(struct nsim_proc *p, long out_from, long err_from, int streams,
                            const char *text, const char *regex, char *found, size_t foundlen);
/* Counts matching lines from the given offsets (stdout's and stderr's added up); copies the
 * last match into found. Returns the count or a negative code (bad regex). */
int nsim_proc_log_count(struct nsim_proc *p, long out_from, long err_from, int streams,
                        const char *text, const char *regex, char *found, size_t foundlen);
/* Finds the first matching line in each stream from the given offsets; sets out_end /
 * err_end to the offset just past it (-1: none in that stream), found to one of them.
 * Returns 1 when any stream has one, 0 when none, negative on a bad regex. */
int nsim_proc_log_first(struct nsim_proc *p, long out_from, long err_from, int streams,
                        const char *text, const char *regex, long *out_end, long *err_end,
                        char *found, size_t foundlen);
/* Current sizes of the process's logs, for "only lines from now on". */
void nsim_proc_log_sizes(const struct nsim_proc *p, long *out_size, long *err_size);

/* Describes how a process ended ("exited 1", "killed by signal 9") into buf. */
const char *nsim_proc_status_str(const struct nsim_proc *p, char *buf, size_t len);

#endif
