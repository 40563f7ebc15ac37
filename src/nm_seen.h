/* sv_seen: which (origin, seq) chat lines were already shown, so a line arriving twice, or
 * by two paths, is shown once. Bounded: it remembers the last SV_SEEN_MAX lines, far more
 * than can be in flight at once. */
#ifndef NM_SERVANT_SEEN_H
#define NM_SERVANT_SEEN_H

#include <stdint.h>

#define SV_SEEN_MAX 16384

typedef struct {
  uint64_t ring[SV_SEEN_MAX];     /* keys in arrival order, for eviction */
  uint64_t table[SV_SEEN_MAX * 2];/* open addressing; 0 = empty */
  unsigned head, count;
} sv_seen;

void sv_seen_init(sv_seen *s);
uint64_t sv_seen_key(const char *origin, uint64_t seq);
/* Returns 1 if key was already present; otherwise records it and returns 0. */
int sv_seen_check_and_add(sv_seen *s, uint64_t key);

#endif
