#include "nm_replay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NM__REPLAY_TABLE_MAX ((size_t)1 << 20)

const char *nm_replay_verdict_name(nm_replay_verdict v) {
  static const char *const names[] = {"accept", "duplicate", "too-old", "stale-epoch"};
  return (unsigned)v < sizeof names / sizeof names[0] ? names[v] : "?";
}

/* ---- one origin's window ------------------------------------------------------------- */

void nm_replay_window_init(nm_replay_window *w) { memset(w, 0, sizeof *w); }

static uint64_t *nm__replay_block(nm_replay_window *w, uint64_t seq) {
  return &w->bits[(seq / 64) % NM_REPLAY_BLOCKS];
}

static uint64_t nm__replay_bit(uint64_t seq) { return (uint64_t)1 << (seq % 64); }

/* The verdict within one epoch (the caller settled the epoch). */
static nm_replay_verdict nm__replay_judge(const nm_replay_window *w, uint64_t seq) {
  if (seq == 0) return NM_REPLAY_TOO_OLD; /* sequences start at 1: 0 is never a line */
  if (seq > w->top) return NM_REPLAY_ACCEPT;
  if (w->top - seq >= NM_REPLAY_WINDOW) return NM_REPLAY_TOO_OLD;
  return (w->bits[(seq / 64) % NM_REPLAY_BLOCKS] & nm__replay_bit(seq)) ? NM_REPLAY_DUPLICATE
                                                                        : NM_REPLAY_ACCEPT;
}

nm_replay_verdict nm_replay_check(const nm_replay_window *w, uint64_t epoch, uint64_t seq) {
  if (epoch < w->epoch) return NM_REPLAY_STALE_EPOCH;
  if (epoch > w->epoch) return seq == 0 ? NM_REPLAY_TOO_OLD : NM_REPLAY_ACCEPT;
  return nm__replay_judge(w, seq);
}

nm_replay_verdict nm_replay_check_and_set(nm_replay_window *w, uint64_t epoch, uint64_t seq) {
  nm_replay_verdict v = nm_replay_check(w, epoch, seq);
  if (v != NM_REPLAY_ACCEPT) return v;
  if (epoch > w->epoch) {
    /* The origin restarted without its sequence: the new epoch's numbers say nothing
     * about the old one's, so its window starts empty. */
    nm_replay_window_init(w);
    w->epoch = epoch;
  }
  if (seq > w->top) {
    /* Slide: clear the blocks between the old top's and the new top's (at most all of
     * them, for a jump past the whole window), which now stand for numbers never seen. */
    uint64_t from = w->top / 64, to = seq / 64;
    uint64_t n = to - from < NM_REPLAY_BLOCKS ? to - from : NM_REPLAY_BLOCKS;
    for (uint64_t i = 1; i <= n; i++) w->bits[(from + i) % NM_REPLAY_BLOCKS] = 0;
    w->top = seq;
  }
  *nm__replay_block(w, seq) |= nm__replay_bit(seq);
  return NM_REPLAY_ACCEPT;
}

/* ---- a table of origins --------------------------------------------------------------- */

/* FNV-1a. Origin ids are derived from keys, so steering many into one bucket means grinding
 * keys; and a lookup is bounded by the table's size (max) whatever happens. */
static uint64_t nm__replay_hash(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static int nm__replay_origin_ok(const char *origin) {
  size_t n = origin ? strnlen(origin, NM_REPLAY_ORIGIN_MAX + 1) : 0;
  return n > 0 && n <= NM_REPLAY_ORIGIN_MAX;
}

int nm_replay_table_init(nm_replay_table *t, size_t max) {
  size_t slots = 1;
  memset(t, 0, sizeof *t);
  if (max == 0 || max > NM__REPLAY_TABLE_MAX) return -EINVAL;
  /* At most half full: probe sequences stay short. */
  while (slots < 2 * max) slots *= 2;
  t->entries = calloc(max, sizeof *t->entries);
  t->index = calloc(slots, sizeof *t->index);
  if (!t->entries || !t->index) {
    nm_replay_table_close(t);
    return -ENOMEM;
  }
  t->max = max;
  t->index_mask = slots - 1;
  return 0;
}

void nm_replay_table_close(nm_replay_table *t) {
  free(t->entries);
  free(t->index);
  memset(t, 0, sizeof *t);
}

/* The index slot that holds origin, or the empty slot where it would go. *found says which. */
static size_t nm__replay_slot(const nm_replay_table *t, const char *origin, uint64_t hash,
                              int *found) {
  size_t i = (size_t)hash & t->index_mask;
  for (; t->index[i]; i = (i + 1) & t->index_mask) {
    const nm_replay_entry *e = &t->entries[t->index[i] - 1];
    if (e->hash == hash && strcmp(e->origin, origin) == 0) {
      *found = 1;
      return i;
    }
  }
  *found = 0;
  return i;
}

/* Empties index slot i and moves later entries of the same probe run back into the hole
 * (deletion without tombstones, so lookups never slow down with churn). */
static void nm__replay_unindex(nm_replay_table *t, size_t i) {
  size_t j = i;
  t->index[i] = 0;
  for (;;) {
    j = (j + 1) & t->index_mask;
    if (!t->index[j]) return;
    size_t home = (size_t)t->entries[t->index[j] - 1].hash & t->index_mask;
    /* The entry at j may fill the hole at i unless its home lies cyclically in (i, j]. */
    int stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
    if (stays) continue;
    t->index[i] = t->index[j];
    t->index[j] = 0;
    i = j;
  }
}

/* A free entry for a new origin: an unused one, else the one that departed longest ago.
 * NULL when every entry belongs to an origin still in the list. */
static nm_replay_entry *nm__replay_reclaim(nm_replay_table *t) {
  nm_replay_entry *oldest = NULL;
  if (t->used < t->max) return &t->entries[t->used++];
  /* A linear scan: it runs only when a new origin arrives at a full table, which a peer
   * list bounded by max makes rare, and it keeps the entry small (no list links). */
  for (size_t k = 0; k < t->max; k++) {
    nm_replay_entry *e = &t->entries[k];
    if (e->departed && (!oldest || e->departed < oldest->departed)) oldest = e;
  }
  if (oldest) {
    int found;
    size_t slot = nm__replay_slot(t, oldest->origin, oldest->hash, &found);
    if (found) nm__replay_unindex(t, slot);
  }
  return oldest;
}

int nm_replay_table_check_and_set(nm_replay_table *t, const char *origin, uint64_t epoch,
                                  uint64_t seq) {
  int found;
  if (!nm__replay_origin_ok(origin)) return -EINVAL;
  uint64_t hash = nm__replay_hash(origin);
  size_t slot = nm__replay_slot(t, origin, hash, &found);
  if (found) {
    nm_replay_entry *e = &t->entries[t->index[slot] - 1];
    nm_replay_verdict v = nm_replay_check_and_set(&e->w, epoch, seq);
    if (v == NM_REPLAY_ACCEPT && e->departed) {
      e->departed = 0; /* back in the list */
      t->live++;
    }
    return (int)v;
  }
  /* A new origin: judge before taking an entry, so a refused line costs nothing. */
  nm_replay_window fresh;
  nm_replay_window_init(&fresh);
  nm_replay_verdict v = nm_replay_check(&fresh, epoch, seq);
  if (v != NM_REPLAY_ACCEPT) return (int)v;
  nm_replay_entry *e = nm__replay_reclaim(t);
  if (!e) return -ENOSPC;
  memset(e, 0, sizeof *e);
  memcpy(e->origin, origin, strlen(origin) + 1);
  e->hash = hash;
  nm_replay_check_and_set(&e->w, epoch, seq);
  /* Reclaiming may have shifted the index: look the slot up again. */
  slot = nm__replay_slot(t, origin, hash, &found);
  t->index[slot] = (uint32_t)(e - t->entries) + 1;
  t->live++;
  return NM_REPLAY_ACCEPT;
}

int nm_replay_table_check(const nm_replay_table *t, const char *origin, uint64_t epoch,
                          uint64_t seq) {
  int found;
  if (!nm__replay_origin_ok(origin)) return -EINVAL;
  size_t slot = nm__replay_slot(t, origin, nm__replay_hash(origin), &found);
  if (found) return (int)nm_replay_check(&t->entries[t->index[slot] - 1].w, epoch, seq);
  nm_replay_window fresh;
  nm_replay_window_init(&fresh);
  return (int)nm_replay_check(&fresh, epoch, seq);
}

int nm_replay_table_remove(nm_replay_table *t, const char *origin) {
  int found;
  if (!nm__replay_origin_ok(origin)) return -ENOENT;
  size_t slot = nm__replay_slot(t, origin, nm__replay_hash(origin), &found);
  if (!found) return -ENOENT;
  nm_replay_entry *e = &t->entries[t->index[slot] - 1];
  if (e->departed) return -ENOENT;
  e->departed = ++t->departures;
  t->live--;
  return 0;
}

size_t nm_replay_table_live(const nm_replay_table *t) { return t->live; }
