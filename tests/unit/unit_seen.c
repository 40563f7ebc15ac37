/* nm_seen: the de-duplication set. A key seen twice, keys that differ only by origin or
 * seq, the capacity, the eviction order (oldest first), and lookups that survive the
 * deletions eviction makes in the probe chains. */
#include "nm_seen.h"
#include "nmt.h"

#include <stdlib.h>

static nm_seen set; /* 400 KiB: not on the stack */

static const char *A = "0123456789abcdef", *B = "fedcba9876543210";

static void test_a_key_seen_twice(void) {
  nm_seen_init(&set);
  uint64_t k = nm_seen_key(A, 1);
  NMT_EQ_INT(nm_seen_contains(&set, k), 0);
  NMT_EQ_INT(nm_seen_check_and_add(&set, k), 0);
  NMT_EQ_INT(nm_seen_check_and_add(&set, k), 1);
  NMT_EQ_INT(nm_seen_check_and_add(&set, k), 1);
  NMT_EQ_INT(set.count, 1);
  NMT_EQ_INT(nm_seen_contains(&set, k), 1);
}

static void test_keys_tell_origin_and_seq_apart(void) {
  nm_seen_init(&set);
  NMT_CHECK(nm_seen_key(A, 1) != nm_seen_key(B, 1));
  NMT_CHECK(nm_seen_key(A, 1) != nm_seen_key(A, 2));
  NMT_CHECK(nm_seen_key(A, 1) == nm_seen_key(A, 1));
  NMT_CHECK(nm_seen_key(A, 256) != nm_seen_key(A, 1));
  NMT_EQ_INT(nm_seen_check_and_add(&set, nm_seen_key(A, 1)), 0);
  NMT_EQ_INT(nm_seen_check_and_add(&set, nm_seen_key(B, 1)), 0);
  NMT_EQ_INT(nm_seen_check_and_add(&set, nm_seen_key(A, 2)), 0);
  NMT_EQ_INT(nm_seen_check_and_add(&set, nm_seen_key(B, 1)), 1);
  NMT_EQ_INT(set.count, 3);
}

static void test_capacity(void) {
  nm_seen_init(&set);
  for (uint64_t s = 1; s <= NM_SEEN_MAX; s++) NMT_EQ_INT(nm_seen_check_and_add(&set, nm_seen_key(A, s)), 0);
  NMT_EQ_INT(set.count, NM_SEEN_MAX);
  /* all of them still remembered */
  int all = 1;
  for (uint64_t s = 1; s <= NM_SEEN_MAX; s++) all &= nm_seen_contains(&set, nm_seen_key(A, s));
  NMT_CHECK(all);
  /* one more: still NM_SEEN_MAX */
  NMT_EQ_INT(nm_seen_check_and_add(&set, nm_seen_key(A, NM_SEEN_MAX + 1)), 0);
  NMT_EQ_INT(set.count, NM_SEEN_MAX);
}

static void test_eviction_is_oldest_first(void) {
  nm_seen_init(&set);
  for (uint64_t s = 1; s <= NM_SEEN_MAX + 3; s++) nm_seen_check_and_add(&set, nm_seen_key(A, s));
  /* 1, 2, 3 went, in that order; 4 is the oldest left */
  NMT_EQ_INT(nm_seen_contains(&set, nm_seen_key(A, 1)), 0);
  NMT_EQ_INT(nm_seen_contains(&set, nm_seen_key(A, 2)), 0);
  NMT_EQ_INT(nm_seen_contains(&set, nm_seen_key(A, 3)), 0);
  NMT_EQ_INT(nm_seen_contains(&set, nm_seen_key(A, 4)), 1);
  NMT_EQ_INT(nm_seen_contains(&set, nm_seen_key(A, NM_SEEN_MAX + 3)), 1);
  /* a key seen again does not move: it is evicted in its first arrival's turn */
  NMT_EQ_INT(nm_seen_check_and_add(&set, nm_seen_key(A, 4)), 1);
  nm_seen_check_and_add(&set, nm_seen_key(B, 1));
  NMT_EQ_INT(nm_seen_contains(&set, nm_seen_key(A, 4)), 0);
  NMT_EQ_INT(nm_seen_contains(&set, nm_seen_key(A, 5)), 1);
  /* a forgotten line counts as new again (the set is a window, not a history) */
  NMT_EQ_INT(nm_seen_check_and_add(&set, nm_seen_key(A, 1)), 0);
}

static void test_lookups_survive_many_evictions(void) {
  /* Keys chosen to collide in the table (same slot modulo its size; 96 of them) make a
   * long probe chain; evicting from the middle of a chain must not hide the keys behind
   * it. (Few colliders: every removal re-inserts the rest of its chain.) */
  nm_seen_init(&set);
  const uint64_t size = NM_SEEN_MAX * 2;
  uint64_t n = 3 * NM_SEEN_MAX;
  for (uint64_t i = 1; i <= n; i++) {
    uint64_t k = (i % 512 == 0) ? 7 + i * size : nm_seen_key(B, i);
    NMT_EQ_INT(nm_seen_check_and_add(&set, k), 0);
  }
  int recent = 1, old = 0;
  for (uint64_t i = n - NM_SEEN_MAX + 1; i <= n; i++)
    recent &= nm_seen_contains(&set, (i % 512 == 0) ? 7 + i * size : nm_seen_key(B, i));
  for (uint64_t i = 1; i <= n - NM_SEEN_MAX; i++)
    old |= nm_seen_contains(&set, (i % 512 == 0) ? 7 + i * size : nm_seen_key(B, i));
  NMT_CHECK(recent);
  NMT_CHECK(!old);
  NMT_EQ_INT(set.count, NM_SEEN_MAX);
}

int main(void) {
  NMT_RUN(test_a_key_seen_twice);
  NMT_RUN(test_keys_tell_origin_and_seq_apart);
  NMT_RUN(test_capacity);
  NMT_RUN(test_eviction_is_oldest_first);
  NMT_RUN(test_lookups_survive_many_evictions);
  return nmt_done();
}
