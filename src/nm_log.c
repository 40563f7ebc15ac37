#include "nm_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static const char *nm__log_prog = "natmesh";
static int nm__log_level = NM_LOG_INFO;

void nm_log_init(const char *prog, int default_level) {
  nm__log_prog = prog;
  nm__log_level = default_level;
  const char *env = getenv("NATMESH_LOG");
  if (env) {
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
      if (strcmp(env, names[i]) == 0) nm__log_level = i;
  }
}

void nm_log_set_level(int level) { nm__log_level = level; }
int nm_log_enabled(int level) { return level <= nm__log_level; }

void nm_log(int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  nm_logv(level, fmt, ap);
  va_end(ap);
}

void nm_logv(int level, const char *fmt, va_list ap) {
  static const char *labels[] = {"error", "warn", "info", "debug"};
  if (level < NM_LOG_ERROR || level > nm__log_level) return;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  localtime_r(&tv.tv_sec, &tm);
  char line[2048];
  int n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03d %s: %s: ", tm.tm_hour, tm.tm_min,
                   tm.tm_sec, (int)(tv.tv_usec / 1000), nm__log_prog, labels[level]);
  if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  /* One fputs per record so lines from one process never interleave mid-line. */
  size_t len = strlen(line);
  if (len + 1 < sizeof line) {
    line[len] = '\n';
    line[len + 1] = 0;
  }
  fputs(line, stderr);
  fflush(stderr);
}

/* ---- rate-limited warnings ------------------------------------------------------------ */

static uint64_t nm__log_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int nm_log_rate_flush_at(nm_log_rate *r, uint64_t now_ms) {
  if (r->suppressed == 0 || now_ms - r->since_ms < 1000) return 0;
  /* Rounded up: "in the last 2 s" for a burst that began 1.2 s ago. */
  uint64_t span_s = (now_ms - r->since_ms + 999) / 1000;
  nm_log(r->level, "%s: %llu more suppressed in the last %llu s", r->kind ? r->kind : "warnings",
         (unsigned long long)r->suppressed, (unsigned long long)span_s);
  r->suppressed = 0;
  return 1;
}

int nm_log_rate_flush(nm_log_rate *r) { return nm_log_rate_flush_at(r, nm__log_now_ms()); }

/* Takes one token if there is one, after adding those earned since the last count. */
static int nm__log_rate_take(nm_log_rate *r, uint64_t now_ms) {
  uint64_t per_second = r->per_second ? r->per_second : NM_LOG_RATE_DEFAULT;
  uint64_t cap = (uint64_t)(r->burst ? r->burst : NM_LOG_RATE_BURST) * 1000;
  if (!r->started) {
    r->started = 1;
    r->tokens_milli = cap;
  } else if (now_ms > r->last_ms) {
    uint64_t earned = (now_ms - r->last_ms) * per_second;
    r->tokens_milli = earned >= cap - r->tokens_milli ? cap : r->tokens_milli + earned;
  }
  r->last_ms = now_ms;
  if (r->tokens_milli < 1000) return 0;
  r->tokens_milli -= 1000;
  return 1;
}

__attribute__((format(printf, 4, 0)))
static int nm__log_ratelimitedv(nm_log_rate *r, uint64_t now_ms, int level, const char *fmt,
                                va_list ap) {
  if (!nm_log_enabled(level)) return 0;
  if (!nm__log_rate_take(r, now_ms)) {
    if (r->suppressed++ == 0) r->since_ms = now_ms;
    r->level = level;
    return 0;
  }
  nm_log_rate_flush_at(r, now_ms);
  nm_logv(level, fmt, ap);
  return 1;
}

int nm_log_ratelimited_at(nm_log_rate *r, uint64_t now_ms, int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = nm__log_ratelimitedv(r, now_ms, level, fmt, ap);
  va_end(ap);
  return rc;
}

int nm_log_ratelimited(nm_log_rate *r, int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = nm__log_ratelimitedv(r, nm__log_now_ms(), level, fmt, ap);
  va_end(ap);
  return rc;
}
