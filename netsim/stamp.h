/* stamp: when each line of a process's log appeared. The logs are plain files the processes
 * write themselves, so netsim learns a line's time by watching the files grow: a thread
 * samples every log's size every few milliseconds and keeps (size, time) pairs. A line that
 * ends at offset E appeared at the first sample whose size reached E. The main thread may be
 * busy for seconds (a command step, a TCP probe); the sampler is not, so `measure` gets the
 * time of the line, not the time netsim looked at it. */
#ifndef NSIM_STAMP_H
#define NSIM_STAMP_H

#include "run.h"

/* Starts the sampler for every process of r (those added later are watched once started).
 * Returns 0 or a negative code; without it, times fall back to "when asked". */
int nsim_stamp_start(struct nsim_run *r);
/* Stops the sampler and frees its memory. Safe when it never started. */
void nsim_stamp_stop(struct nsim_run *r);

/* Watches a process slot added after nsim_stamp_start (nsim_proc_start calls it). */
void nsim_stamp_watch(struct nsim_run *r, const struct nsim_proc *p);

/* The monotonic time (nsim_now_ms) at which process p's log `stream` (NSIM_STREAM_OUT or
 * NSIM_STREAM_ERR) first reached end_off bytes. A growth the sampler has not seen yet (or
 * no sampler) gives the current time; growth before the sampler started gives its start. */
long nsim_stamp_time(struct nsim_run *r, const struct nsim_proc *p, int stream, long end_off);

#endif
