#include "run.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>

const char *nsim_run_ns(const struct nsim_run *r, int idx) {
  if (idx < 0 || idx >= r->sc->topo.nnodes) idx = r->sc->topo.nnodes;
  return r->nsname[idx];
}

void nsim_log(const struct nsim_run *r, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  long t = r->t0_ms ? nsim_now_ms() - r->t0_ms : 0;
  fprintf(stderr, "[%4ld.%03lds] %s\n", t / 1000, t % 1000, msg);
}
