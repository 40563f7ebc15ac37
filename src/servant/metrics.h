/* natmesh-relay's --metrics: its clients and counters at /metrics, /status.json and the
 * status page, served by nm_http from snapshots the loop publishes once a second (the same
 * scheme as the manager's, src/manager/metrics.h: the HTTP thread never reads the relay's
 * state, it copies the latest snapshot under nm_http's mutex). */
#ifndef SV_METRICS_H
#define SV_METRICS_H

#include <uv.h>

#include "nm_http.h"

#define SV_METRICS_PERIOD_MS 1000

struct servant;

typedef struct {
  uv_timer_t timer;
  struct servant *sv;
  nm_http *http; /* NULL: off */
} sv_metrics;

/* Starts the listener when sv's config names one (cfg.metrics). Returns 0 or -1 (said). */
int sv_metrics_start(sv_metrics *mm, struct servant *sv);
/* Closes the timer and stops the listener; the caller runs the loop once more for the
 * close. A no-op when off. */
void sv_metrics_stop(sv_metrics *mm);

#endif
