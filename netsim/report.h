/* report: the pass/fail outcome of each assertion (and of each step that failed), printed as
 * a table naming every assertion, and kept in the run folder. */
#ifndef NSIM_REPORT_H
#define NSIM_REPORT_H

#include <stdio.h>

/* XFAIL: an assertion marked expected="fail" failed, as written down; not a failure.
 * XPASS: such an assertion held: a failure, so the scenario gets updated to expect it.
 * NOTE: information (a process that ended during the run), never a failure. */
enum nsim_verdict { NSIM_PASS, NSIM_FAIL, NSIM_NOT_RUN, NSIM_XFAIL, NSIM_XPASS, NSIM_NOTE };

struct nsim_result {
  char name[64];
  enum nsim_verdict verdict;
  int is_assert;         /* 0: a step that failed (it counts as a failure too) */
  int line;
  long elapsed_ms;       /* how long the check took */
  char detail[320];
};

struct nsim_report {
  struct nsim_result *items;
  int n, cap;
  int interrupted;
};

int nsim_report_add(struct nsim_report *rep, const char *name, int line, int is_assert,
                    enum nsim_verdict v, long elapsed_ms, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
int nsim_report_failures(const struct nsim_report *rep);
/* Prints the table; returns the number of failures. */
int nsim_report_print(const struct nsim_report *rep, FILE *out, const char *scenario,
                      const char *run_id, const char *dir);
void nsim_report_free(struct nsim_report *rep);

#endif
