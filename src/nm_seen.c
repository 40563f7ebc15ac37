/* nm_seen: a bounded set of line keys; a ring gives the eviction order, an open-addressing
 * table the lookups. See nm_seen.h. */
#include "nm_seen.h"

#include <string.h>

void nm_seen_init(nm_seen *s) { memset(s, 0, sizeof *s); }

uint64_t nm_seen_key(const char *origin, uint64_t seq) {
  /* FNV-1a over origin and seq; 0 is reserved for empty slots. */
  uint64_t h = 1469598103934665603ULL;
  for (const char *c = origin; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ULL;
  for (int i = 0; i < 8; i++) h = (h ^ ((seq >> (8 * i)) & 0xff)) * 1099511628211ULL;
  return h ? h : 1;
}

#define NM__SEEN_TABLE (NM_SEEN_MAX * 2)

static int nm__seen_find(const nm_seen *s, uint64_t key, unsigned *slot) {
  unsigned i = (unsigned)(key % NM__SEEN_TABLE);
  while (s->table[i]) {
    if (s->table[i] == key) {
      *slot = i;
      return 1;
    }
    i = (i + 1) % NM__SEEN_TABLE;
  }
  *slot = i;
  return 0;
}

/* Deletion in linear probing: re-insert the entries after the hole, so no probe chain
 * is cut short. */
static void nm__seen_remove(nm_seen *s, uint64_t key) {
  unsigned i;
  if (!nm__seen_find(s, key, &i)) return;
  s->table[i] = 0;
  for (unsigned j = (i + 1) % NM__SEEN_TABLE; s->table[j]; j = (j + 1) % NM__SEEN_TABLE) {
    uint64_t k = s->table[j];
    s->table[j] = 0;
    unsigned slot;
    nm__seen_find(s, k, &slot);
    s->table[slot] = k;
  }
}

int nm_seen_contains(const nm_seen *s, uint64_t key) {
  unsigned slot;
  return key ? nm__seen_find(s, key, &slot) : 0;
}

int nm_seen_check_and_add(nm_seen *s, uint64_t key) {
  unsigned slot;
  if (!key) key = 1; /* 0 marks an empty slot; nm_seen_key never returns it */
  if (nm__seen_find(s, key, &slot)) return 1;
  if (s->count == NM_SEEN_MAX) {
    /* Full: forget the oldest line to make room. */
    nm__seen_remove(s, s->ring[s->head]);
    s->head = (s->head + 1) % NM_SEEN_MAX;
    s->count--;
    nm__seen_find(s, key, &slot);
  }
  s->table[slot] = key;
  s->ring[(s->head + s->count) % NM_SEEN_MAX] = key;
  s->count++;
  return 0;
}
