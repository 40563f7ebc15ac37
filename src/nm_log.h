/* nm_log: one-line log records on stderr ("time prog: level: message"). stdout stays free
 * for what a program shows its user (chat lines, status tables). */
#ifndef NM_LOG_H
#define NM_LOG_H

#include <stdarg.h>
#include <stdint.h>

enum { NM_LOG_ERROR = 0, NM_LOG_WARN = 1, NM_LOG_INFO = 2, NM_LOG_DEBUG = 3 };

/* prog names the program in every line; level is read from NATMESH_LOG
 * (error|warn|info|debug) when set, else the given default. */
void nm_log_init(const char *prog, int default_level);
void nm_log_set_level(int level);
int nm_log_enabled(int level);

void nm_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define nm_log_error(...) nm_log(NM_LOG_ERROR, __VA_ARGS__)
#define nm_log_warn(...) nm_log(NM_LOG_WARN, __VA_ARGS__)
#define nm_log_info(...) nm_log(NM_LOG_INFO, __VA_ARGS__)
#define nm_log_debug(...) nm_log(NM_LOG_DEBUG, __VA_ARGS__)

/* nm_log with a va_list. */
void nm_logv(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* ---- rate-limited warnings ------------------------------------------------------------
 * What a peer can make a program log (refused connections, bad frames, refused
 * admissions) must not let it fill the disk or drown the lines an operator needs. Each kind
 * of such warning has an nm_log_rate, a token bucket: up to burst records of that kind are
 * written at once (so the start of any incident is seen whole, and a few honest events
 * always are), and then at most per_second a second; the rest are counted, and the first
 * record written after them, or nm_log_rate_flush (which a program calls from a timer),
 * writes one summary, at most once a second:
 *   "refused connections: 1529 more suppressed in the last 2 s". */
typedef struct nm_log_rate {
  const char *kind;      /* names the summary: "refused connections" */
  unsigned per_second;   /* records a second once the burst is spent (0: NM_LOG_RATE_DEFAULT) */
  unsigned burst;        /* records at once (0: NM_LOG_RATE_BURST) */
  int started;           /* the bucket was filled */
  uint64_t last_ms;      /* when the tokens were last counted */
  uint64_t tokens_milli; /* records that may be written now, in thousandths */
  uint64_t since_ms;     /* when the first record suppressed since the last summary came */
  uint64_t suppressed;   /* records dropped since the last summary */
  int level;             /* of the last one dropped: the summary's level */
} nm_log_rate;

#define NM_LOG_RATE_DEFAULT 5
#define NM_LOG_RATE_BURST 100
#define NM_LOG_RATE_INIT(kind_, per_second_) {(kind_), (per_second_), 0, 0, 0, 0, 0, 0, 0}
#define NM_LOG_RATE_INIT_BURST(kind_, per_second_, burst_) \
  {(kind_), (per_second_), (burst_), 0, 0, 0, 0, 0, 0}

/* Writes the record unless its kind's share is spent (then counts it).
 * Returns 1 when written, 0 when suppressed or below the log level (not counted then). */
int nm_log_ratelimited(nm_log_rate *r, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same at a given time (milliseconds on any monotonic clock): for tests. */
int nm_log_ratelimited_at(nm_log_rate *r, uint64_t now_ms, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Writes the summary of what was suppressed, if anything was at least a second ago.
 * Returns 1 when a summary was written. */
int nm_log_rate_flush(nm_log_rate *r);
int nm_log_rate_flush_at(nm_log_rate *r, uint64_t now_ms);

#endif
