/* nm_ratelimit: token bucket in integer arithmetic; see nm_ratelimit.h. */
#include "nm_ratelimit.h"

void nm_ratelimit_init(nm_ratelimit *r, unsigned rate, unsigned burst, uint64_t now_ms) {
  r->rate = rate;
  r->burst = burst;
  r->level = (uint64_t)burst * 1000;
  r->stamp_ms = now_ms;
}

static void nm__ratelimit_refill(nm_ratelimit *r, uint64_t now_ms) {
  uint64_t cap = (uint64_t)r->burst * 1000;
  /* A clock that went backwards adds nothing; it never takes tokens away either. */
  uint64_t elapsed = now_ms > r->stamp_ms ? now_ms - r->stamp_ms : 0;
  r->stamp_ms = now_ms > r->stamp_ms ? now_ms : r->stamp_ms;
  if (r->level >= cap) {
    r->level = cap;
    return;
  }
  /* rate tokens a second are rate thousandths a millisecond. A long pause fills the bucket:
   * check that before multiplying, so the product cannot overflow. */
  uint64_t room = cap - r->level;
  if (elapsed >= room / r->rate + 1) r->level = cap;
  else r->level += elapsed * r->rate < room ? elapsed * r->rate : room;
}

uint64_t nm_ratelimit_available(nm_ratelimit *r, uint64_t now_ms) {
  if (!r->rate) return UINT64_MAX;
  nm__ratelimit_refill(r, now_ms);
  return r->level / 1000;
}

int nm_ratelimit_take(nm_ratelimit *r, uint64_t now_ms, size_t n) {
  if (!r->rate) return 1;
  nm__ratelimit_refill(r, now_ms);
  if ((uint64_t)n > r->burst) return 0;
  uint64_t need = (uint64_t)n * 1000;
  if (r->level < need) return 0;
  r->level -= need;
  return 1;
}
