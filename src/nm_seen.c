#include "seen.h"

#include <string.h>

void sv_seen_init(sv_seen *s) { memset(s, 0, sizeof *s); }

uint64_t sv_seen_key(const char *origin, uint64_t seq) {
  /* FNV-1a over origin and seq; 0 is reserved for empty slots. */
  uint64_t h = 1469598103934665603ULL;
  for (const char *c = origin; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ULL;
  for (int i = 0; i < 8; i++) h = (h ^ ((seq >> (8 * i)) & 0xff)) * 1099511628211ULL;
  return h ? h : 1;
}

#define TABLE_SIZE (SV_SEEN_MAX * 2)

static int sv__find(const sv_seen *s, uint64_t key, unsigned *slot) {
  unsigned i = (unsigned)(key % TABLE_SIZE);
  while (s->table[i]) {
    if (s->table[i] == key) {
      *slot = i;
      return 1;
    }
    i = (i + 1) % TABLE_SIZE;
  }
  *slot = i;
  return 0;
}

/* Deletion in linear probing: re-insert the entries after the hole. */
static void sv__remove(sv_seen *s, uint64_t key) {
  unsigned i;
  if (!sv__find(s, key, &i)) return;
  s->table[i] = 0;
  for (unsigned j = (i + 1) % TABLE_SIZE; s->table[j]; j = (j + 1) % TABLE_SIZE) {
    uint64_t k = s->table[j];
    s->table[j] = 0;
    unsigned slot;
    sv__find(s, k, &slot);
    s->table[slot] = k;
  }
}

int sv_seen_check_and_add(sv_seen *s, uint64_t key) {
  unsigned slot;
  if (sv__find(s, key, &slot)) return 1;
  if (s->count == SV_SEEN_MAX) {
    /* Full: forget the oldest line to make room. */
    sv__remove(s, s->ring[s->head]);
    s->head = (s->head + 1) % SV_SEEN_MAX;
    s->count--;
    sv__find(s, key, &slot);
  }
  s->table[slot] = key;
  s->ring[(s->head + s->count) % SV_SEEN_MAX] = key;
  s->count++;
  return 0;
}
