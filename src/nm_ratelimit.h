/* nm_ratelimit: a token bucket, for the relay's per-client and total byte rates.
 *
 * The bucket holds at most `burst` tokens (bytes) and refills at `rate` per second of the
 * caller's clock; taking n bytes succeeds only if n tokens are there, and then spends them.
 * A rate of 0 means unlimited. A pure module: time comes in as an argument (milliseconds on
 * any monotonic clock, e.g. uv_now()), and the arithmetic is in integers (thousandths of a
 * token), so a test with made-up times gets exact answers. */
#ifndef NM_RATELIMIT_H
#define NM_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  unsigned rate;       /* tokens per second; 0: unlimited */
  unsigned burst;      /* the bucket's size in tokens */
  uint64_t level;      /* thousandths of a token in the bucket */
  uint64_t stamp_ms;   /* when level was last brought up to date */
} nm_ratelimit;

/* The bucket starts full, so a fresh client gets its burst at once. */
void nm_ratelimit_init(nm_ratelimit *r, unsigned rate, unsigned burst, uint64_t now_ms);
/* Returns 1 and spends n tokens if the bucket holds them, else 0 and spends nothing. A
 * request larger than the burst never fits (unless the rate is 0). */
int nm_ratelimit_take(nm_ratelimit *r, uint64_t now_ms, size_t n);
/* Whole tokens available at now_ms (refilling first); for reports and tests. */
uint64_t nm_ratelimit_available(nm_ratelimit *r, uint64_t now_ms);

#endif
