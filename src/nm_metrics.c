#include "nm_metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- names ------------------------------------------------------------------------- */

static int nm__metric_name_ok(const char *s) {
  if (!s || !*s || strlen(s) > 128) return 0;
  for (const char *p = s; *p; p++) {
    char c = *p;
    int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(p > s && c >= '0' && c <= '9')) return 0;
  }
  return 1;
}

static int nm__label_name_ok(const char *s, size_t n) {
  if (n == 0 || n > 64 || (n >= 2 && s[0] == '_' && s[1] == '_')) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return 0;
  }
  return 1;
}

static int nm__ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n > k && strcmp(s + n - k, suffix) == 0;
}

/* ---- a growing text buffer ------------------------------------------------------------- */

typedef struct {
  char *data;
  size_t len, cap;
  int failed;
} nm__buf;

static void nm__buf_reserve(nm__buf *b, size_t more) {
  if (b->failed || b->len + more + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 1024;
  while (cap < b->len + more + 1) cap *= 2;
  char *p = realloc(b->data, cap);
  if (!p) {
    b->failed = 1;
    return;
  }
  b->data = p;
  b->cap = cap;
}

static void nm__buf_put(nm__buf *b, const char *s, size_t n) {
  nm__buf_reserve(b, n);
  if (b->failed) return;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = 0;
}

__attribute__((format(printf, 2, 3))) static void nm__buf_printf(nm__buf *b, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    nm__buf_put(b, small, (size_t)n);
    return;
  }
  nm__buf_reserve(b, (size_t)n);
  if (b->failed) return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

/* The exposition format's escapes: in HELP text \\ and \n; in label values also \". */
static void nm__buf_escaped(nm__buf *b, const char *s, int quote) {
  for (; *s; s++) {
    if (*s == '\\') nm__buf_put(b, "\\\\", 2);
    else if (*s == '\n') nm__buf_put(b, "\\n", 2);
    else if (*s == '"' && quote) nm__buf_put(b, "\\\"", 2);
    else nm__buf_put(b, s, 1);
  }
}

/* ---- the registry ------------------------------------------------------------------------ */

void nm_metrics_init(nm_metrics *m) { memset(m, 0, sizeof *m); }

static void nm__metric_free(nm_metric *x) {
  for (size_t i = 0; i < x->nseries; i++) free(x->series[i].labels);
  free(x->series);
  for (size_t i = 0; i < x->nlabels; i++) free(x->label_names[i]);
  free(x->name);
  free(x->help);
  memset(x, 0, sizeof *x);
}

void nm_metrics_close(nm_metrics *m) {
  for (size_t i = 0; i < m->count; i++) nm__metric_free(&m->metrics[i]);
  m->count = 0;
}

static int nm__split_labels(nm_metric *x, const char *labels) {
  if (!labels || !*labels) return 0;
  const char *p = labels;
  for (;;) {
    size_t n = strcspn(p, ",");
    if (x->nlabels == NM_METRIC_LABELS_MAX || !nm__label_name_ok(p, n)) return -EINVAL;
    for (size_t i = 0; i < x->nlabels; i++)
      if (strlen(x->label_names[i]) == n && strncmp(x->label_names[i], p, n) == 0) return -EINVAL;
    x->label_names[x->nlabels] = strndup(p, n);
    if (!x->label_names[x->nlabels]) return -ENOMEM;
    x->nlabels++;
    if (!p[n]) return 0;
    p += n + 1;
  }
}

static int nm__series_add(nm_metric *x, char *labels) {
  if (x->nseries == x->max_series) return free(labels), -ENOSPC;
  x->series[x->nseries].labels = labels;
  x->series[x->nseries].value = 0;
  return (int)x->nseries++;
}

int nm_metrics_define(nm_metrics *m, const char *name, nm_metric_type type, const char *help,
                      const char *labels, size_t max_series) {
  if (!nm__metric_name_ok(name) || (type != NM_METRIC_COUNTER && type != NM_METRIC_GAUGE) ||
      max_series == 0 || max_series > NM_METRIC_SERIES_MAX)
    return -EINVAL;
  /* A counter's name says it is one; a gauge's must not pretend to be. */
  if ((type == NM_METRIC_COUNTER) != nm__ends_with(name, "_total")) return -EINVAL;
  for (size_t i = 0; i < m->count; i++)
    if (strcmp(m->metrics[i].name, name) == 0) return -EINVAL;
  if (m->count == NM_METRICS_MAX) return -ENOSPC;
  nm_metric *x = &m->metrics[m->count];
  memset(x, 0, sizeof *x);
  x->type = type;
  int rc = nm__split_labels(x, labels);
  if (rc == 0) {
    x->name = strdup(name);
    x->help = strdup(help ? help : "");
    x->max_series = x->nlabels ? max_series : 1;
    x->series = calloc(x->max_series, sizeof *x->series);
    if (!x->name || !x->help || !x->series) rc = -ENOMEM;
  }
  if (rc == 0 && x->nlabels == 0) {
    char *none = strdup("");
    rc = none ? nm__series_add(x, none) : -ENOMEM;
  }
  if (rc < 0) {
    nm__metric_free(x);
    return rc;
  }
  return (int)m->count++;
}

/* The rendered label set of values, or NULL (a value missing, too long or with a control
 * character: label values are text). */
static char *nm__render_labels(const nm_metric *x, const char *const *values) {
  if (x->nlabels == 0) return strdup("");
  if (!values) return NULL;
  nm__buf b = {0};
  for (size_t i = 0; i < x->nlabels; i++) {
    const char *v = values[i];
    if (!v || strlen(v) > NM_METRIC_VALUE_MAX) goto bad;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
      if (*p < 0x20 || *p == 0x7f) goto bad;
    nm__buf_printf(&b, "%s%s=\"", i ? "," : "", x->label_names[i]);
    nm__buf_escaped(&b, v, 1);
    nm__buf_put(&b, "\"", 1);
  }
  if (b.failed) goto bad;
  return b.data;
bad:
  free(b.data);
  return NULL;
}

/* The series for values, created when create is set. Returns its index or a negative code. */
static int nm__series_find(nm_metrics *m, int id, const char *const *values, int create) {
  if (id < 0 || (size_t)id >= m->count) return -EINVAL;
  nm_metric *x = &m->metrics[id];
  if (x->nlabels == 0) return 0;
  char *labels = nm__render_labels(x, values);
  if (!labels) return -EINVAL;
  for (size_t i = 0; i < x->nseries; i++)
    if (strcmp(x->series[i].labels, labels) == 0) return free(labels), (int)i;
  if (!create) return free(labels), -ENOENT;
  return nm__series_add(x, labels);
}

int nm_metrics_add(nm_metrics *m, int id, const char *const *values, uint64_t delta) {
  int i = nm__series_find(m, id, values, 1);
  if (i < 0) return i;
  m->metrics[id].series[i].value += delta;
  return 0;
}

int nm_metrics_set(nm_metrics *m, int id, const char *const *values, uint64_t v) {
  int i = nm__series_find(m, id, values, 1);
  if (i < 0) return i;
  m->metrics[id].series[i].value = v;
  return 0;
}

uint64_t nm_metrics_get(const nm_metrics *m, int id, const char *const *values) {
  int i = nm__series_find((nm_metrics *)m, id, values, 0);
  return i < 0 ? 0 : m->metrics[id].series[i].value;
}

void nm_metrics_clear(nm_metrics *m, int id) {
  if (id < 0 || (size_t)id >= m->count) return;
  nm_metric *x = &m->metrics[id];
  if (x->nlabels == 0) {
    x->series[0].value = 0;
    return;
  }
  for (size_t i = 0; i < x->nseries; i++) free(x->series[i].labels);
  x->nseries = 0;
}

int nm_metrics_write(const nm_metrics *m, char **out, size_t *len) {
  nm__buf b = {0};
  nm__buf_reserve(&b, 4096);
  for (size_t i = 0; i < m->count; i++) {
    const nm_metric *x = &m->metrics[i];
    nm__buf_printf(&b, "# HELP %s ", x->name);
    nm__buf_escaped(&b, x->help, 0);
    nm__buf_printf(&b, "\n# TYPE %s %s\n", x->name, x->type == NM_METRIC_COUNTER ? "counter" : "gauge");
    for (size_t k = 0; k < x->nseries; k++) {
      const nm_metric_series *s = &x->series[k];
      if (s->labels[0]) nm__buf_printf(&b, "%s{%s} %" PRIu64 "\n", x->name, s->labels, s->value);
      else nm__buf_printf(&b, "%s %" PRIu64 "\n", x->name, s->value);
    }
  }
  if (b.failed) {
    free(b.data);
    return -ENOMEM;
  }
  *out = b.data;
  if (len) *len = b.len;
  return 0;
}
