/* nm_seen: which (origin, seq) chat lines were already accepted, so a line arriving twice,
 * or by two paths (a peer and a relay's replay), is shown once.
 *
 * Bounded: it remembers the last NM_SEEN_MAX keys, far more than can be in flight at once,
 * and when full forgets the oldest (arrival order). A key is a 64-bit hash of the pair;
 * 0 never occurs (nm_seen_key maps it to 1) because it marks an empty slot. A pure module:
 * no clock, no I/O. */
#ifndef NM_SEEN_H
#define NM_SEEN_H

#include <stdint.h>

#define NM_SEEN_MAX 16384

typedef struct {
  uint64_t ring[NM_SEEN_MAX];      /* keys in arrival order, for eviction */
  uint64_t table[NM_SEEN_MAX * 2]; /* open addressing, linear probing; 0 = empty */
  unsigned head, count;
} nm_seen;

void nm_seen_init(nm_seen *s);
uint64_t nm_seen_key(const char *origin, uint64_t seq);
/* Returns 1 if key was already present; otherwise records it (forgetting the oldest key
 * if full) and returns 0. */
int nm_seen_check_and_add(nm_seen *s, uint64_t key);
/* 1 if key is remembered; changes nothing. */
int nm_seen_contains(const nm_seen *s, uint64_t key);

#endif
