/* nm_backoff: first, doubling, capped; see nm_backoff.h. */
#include "nm_backoff.h"

void nm_backoff_init(nm_backoff *b, unsigned first_ms, unsigned max_ms, int immediate) {
  b->first_ms = first_ms;
  b->max_ms = max_ms;
  b->immediate = immediate;
  b->failures = 0;
}

unsigned nm_backoff_next(nm_backoff *b) {
  if (b->failures < ~0u) b->failures++;
  unsigned step = b->failures - (b->immediate ? 1 : 0); /* 0: retry at once */
  if (step == 0) return 0;
  /* first << (step - 1), without shifting past the width of the type */
  unsigned long long d = b->first_ms;
  for (unsigned i = 1; i < step && d && d < b->max_ms; i++) d *= 2;
  return d > b->max_ms ? b->max_ms : (unsigned)d;
}

void nm_backoff_reset(nm_backoff *b) { b->failures = 0; }

void nm_backoff_set_max(nm_backoff *b, unsigned max_ms) { b->max_ms = max_ms; }
