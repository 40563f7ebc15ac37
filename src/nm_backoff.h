/* nm_backoff: how long to wait before trying again after a failure.
 *
 * One policy for every retry in natmesh (the manager link's reconnect, a peer connection,
 * a pull from a relay): the delay starts at `first`, doubles with each failure in a row and
 * stops growing at `max`; a success resets it. Deterministic (no jitter), so the delays a
 * test sees are the delays a user gets. A pure module: it keeps a count and returns a
 * number; the caller owns the timer. */
#ifndef NM_BACKOFF_H
#define NM_BACKOFF_H

typedef struct {
  unsigned first_ms;  /* the delay after the first failure (or the second, see immediate) */
  unsigned max_ms;    /* the delay never grows past this */
  int immediate;      /* the first failure is retried at once: a link that just worked
                         (or was never tried) is worth one quick second attempt */
  unsigned failures;  /* in a row, since the last reset */
} nm_backoff;

void nm_backoff_init(nm_backoff *b, unsigned first_ms, unsigned max_ms, int immediate);
/* Counts one more failure and returns how long to wait before the next attempt. */
unsigned nm_backoff_next(nm_backoff *b);
/* A success: the next failure starts over. */
void nm_backoff_reset(nm_backoff *b);
/* Changes the cap (e.g. it follows the heartbeat interval); takes effect at the next delay. */
void nm_backoff_set_max(nm_backoff *b, unsigned max_ms);

#endif
