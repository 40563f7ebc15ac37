/* nm_metrics: a small registry of counters and gauges that writes the Prometheus text
 * exposition format (version 0.0.4), for the manager's and natmesh-relay's /metrics.
 *
 * A metric is defined once with its name, type, help text and label names (none, one or
 * two: "state", "direction,type"), and a bound on how many label sets (series) it may hold:
 * a label value may come from the network (a relay's name), so the set must be bounded or a
 * scrape could grow without limit. A series past the bound is refused (-ENOSPC), never
 * allocated. Values are unsigned 64-bit integers: natmesh counts things, never fractions.
 *
 * Names follow Prometheus's conventions and are checked at definition: [a-zA-Z_:][a-zA-Z0-9_:]*
 * for metrics, [a-zA-Z_][a-zA-Z0-9_]* (not starting "__") for labels, and a counter's name
 * ends in "_total". Label values are escaped (\\, \", \n) when the series is created.
 *
 * The registry belongs to one thread (the loop's): nm_metrics_write renders it into a
 * buffer that the owner hands to whoever serves it (nm_http). */
#ifndef NM_METRICS_H
#define NM_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define NM_METRICS_MAX 64          /* metrics in one registry */
#define NM_METRIC_LABELS_MAX 2     /* label names per metric */
#define NM_METRIC_VALUE_MAX 64     /* bytes of one label value (longer ones are refused) */
#define NM_METRIC_SERIES_MAX 1024  /* the largest bound a metric may ask for */

typedef enum { NM_METRIC_COUNTER = 0, NM_METRIC_GAUGE } nm_metric_type;

typedef struct nm_metric_series {
  char *labels;   /* rendered: direction="in",type="hello" ("" without labels) */
  uint64_t value;
} nm_metric_series;

typedef struct {
  char *name;
  char *help;
  nm_metric_type type;
  size_t nlabels;
  char *label_names[NM_METRIC_LABELS_MAX];
  nm_metric_series *series; /* max_series of them, nseries in use */
  size_t nseries, max_series;
} nm_metric;

typedef struct {
  nm_metric metrics[NM_METRICS_MAX];
  size_t count;
} nm_metrics;

void nm_metrics_init(nm_metrics *m);
void nm_metrics_close(nm_metrics *m);

/* Defines a metric; labels: NULL or "" for none, else one or two names separated by ','.
 * A metric without labels has its one series at 0 from the start. Returns its id (>= 0), or
 * -EINVAL (a bad name, a counter not named *_total, a bad label list, max_series 0 or over
 * NM_METRIC_SERIES_MAX, the name defined already), -ENOSPC (NM_METRICS_MAX defined) or
 * -ENOMEM. */
int nm_metrics_define(nm_metrics *m, const char *name, nm_metric_type type, const char *help,
                      const char *labels, size_t max_series);

/* values: as many label values as the metric has label names (NULL for none). Adds delta to
 * the series (created at 0). Returns 0, -EINVAL (bad id, a value missing, too long or not
 * text) or -ENOSPC (the metric holds max_series already). */
int nm_metrics_add(nm_metrics *m, int id, const char *const *values, uint64_t delta);
/* Sets the series to v (a gauge, or a counter copied from a count kept elsewhere). */
int nm_metrics_set(nm_metrics *m, int id, const char *const *values, uint64_t v);
/* The series' value, or 0 when it does not exist. */
uint64_t nm_metrics_get(const nm_metrics *m, int id, const char *const *values);
/* Forgets every series of a labelled metric (e.g. before setting the relays present now);
 * an unlabelled one goes back to 0. */
void nm_metrics_clear(nm_metrics *m, int id);

/* The exposition text of every metric, in definition order (# HELP, # TYPE, then its
 * series), malloc'ed and NUL-terminated; *len (when not NULL) its length. Returns 0 or
 * -ENOMEM. */
int nm_metrics_write(const nm_metrics *m, char **out, size_t *len);

/* The content type of that text. */
#define NM_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
