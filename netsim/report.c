#include "report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int nsim_report_add(struct nsim_report *rep, const char *name, int line, int is_assert,
                    enum nsim_verdict v, long elapsed_ms, const char *fmt, ...) {
  if (rep->n == rep->cap) {
    int cap = rep->cap ? rep->cap * 2 : 32;
    struct nsim_result *ni = realloc(rep->items, (size_t)cap * sizeof *ni);
    if (!ni) return -ENOMEM;
    rep->items = ni, rep->cap = cap;
  }
  struct nsim_result *res = &rep->items[rep->n++];
  memset(res, 0, sizeof *res);
  snprintf(res->name, sizeof res->name, "%s", name);
  res->line = line;
  res->is_assert = is_assert;
  res->verdict = v;
  res->elapsed_ms = elapsed_ms;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(res->detail, sizeof res->detail, fmt, ap);
  va_end(ap);
  return 0;
}

int nsim_report_failures(const struct nsim_report *rep) {
  int f = 0;
  for (int i = 0; i < rep->n; i++) {
    enum nsim_verdict v = rep->items[i].verdict;
    f += v == NSIM_FAIL || v == NSIM_NOT_RUN || v == NSIM_XPASS;
  }
  return f + (rep->interrupted ? 1 : 0);
}

int nsim_report_print(const struct nsim_report *rep, FILE *out, const char *scenario,
                      const char *run_id, const char *dir) {
  static const char *const word[] = {"PASS", "FAIL", "SKIP", "XFAIL", "XPASS", "NOTE"};
  int width = 10, passed = 0, failed = 0, skipped = 0, xfail = 0;
  for (int i = 0; i < rep->n; i++) {
    int l = (int)strlen(rep->items[i].name);
    if (l > width) width = l;
  }
  fprintf(out, "== netsim report: %s (run %s) ==\n", scenario, run_id);
  for (int i = 0; i < rep->n; i++) {
    const struct nsim_result *res = &rep->items[i];
    fprintf(out, "%-5s  %-*s  %5ld.%02lds  %s%s\n", word[res->verdict], width, res->name,
            res->elapsed_ms / 1000, (res->elapsed_ms % 1000) / 10,
            res->is_assert ? "" : "step failed: ", res->detail);
    switch (res->verdict) {
    case NSIM_PASS: passed++; break;
    case NSIM_FAIL: case NSIM_XPASS: failed++; break;
    case NSIM_NOT_RUN: skipped++; break;
    case NSIM_XFAIL: xfail++; break;
    case NSIM_NOTE: break;
    }
  }
  if (rep->interrupted) fprintf(out, "INTERRUPTED: the run was stopped by a signal\n");
  fprintf(out, "== %d passed, %d failed, %d not run, %d failing as expected%s; logs in %s ==\n",
          passed, failed, skipped, xfail, rep->interrupted ? ", interrupted" : "", dir);
  return nsim_report_failures(rep);
}

void nsim_report_free(struct nsim_report *rep) {
  free(rep->items);
  memset(rep, 0, sizeof *rep);
}
