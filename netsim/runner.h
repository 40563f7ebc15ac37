/* runner: executes a scenario's steps in order on a built topology and records the outcome
 * of every assertion. Waiting is always for an event with a deadline (a log line, a
 * connection, an exit), polled every few milliseconds, never a fixed sleep. */
#ifndef NSIM_RUNNER_H
#define NSIM_RUNNER_H

#include "report.h"
#include "run.h"

#include <signal.h>

/* Set by netsim's SIGINT/SIGTERM/SIGHUP handler: every wait returns early and the run stops. */
extern volatile sig_atomic_t nsim_stop_signal;

/* Runs all steps. Assertion failures do not stop the run; a failing step (a command that
 * exits non-zero, a process that does not start, a wait-for that times out) or the
 * scenario's overall timeout does, and the assertions after it are reported as not run. */
void nsim_runner_run(struct nsim_run *r, struct nsim_report *rep);

#endif
