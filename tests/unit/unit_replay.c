/* nm_replay: per-origin sliding windows (RFC 6479 style) and the bounded table of origins. */
#include "nm_replay.h"
#include "nmt.h"

#include <errno.h>
#include <stdlib.h>

static int accept(nm_replay_window *w, uint64_t epoch, uint64_t seq) {
  return nm_replay_check_and_set(w, epoch, seq) == NM_REPLAY_ACCEPT;
}

static void test_in_order(void) {
  nm_replay_window w;
  nm_replay_window_init(&w);
  int all = 1;
  for (uint64_t s = 1; s <= 5000; s++) all &= accept(&w, 0, s);
  NMT_CHECK(all);
  NMT_EQ_INT(w.top, 5000);
  NMT_EQ_INT(nm_replay_check_and_set(&w, 0, 5000), NM_REPLAY_DUPLICATE);
  NMT_EQ_INT(nm_replay_check_and_set(&w, 0, 4000), NM_REPLAY_DUPLICATE);
  NMT_EQ_INT(nm_replay_check_and_set(&w, 0, 5001), NM_REPLAY_ACCEPT);
}

static void test_out_of_order(void) {
  nm_replay_window w;
  nm_replay_window_init(&w);
  NMT_CHECK(accept(&w, 0, 10));
  NMT_CHECK(accept(&w, 0, 8));
  NMT_CHECK(accept(&w, 0, 9));
  NMT_CHECK(accept(&w, 0, 1));
  NMT_EQ_INT(nm_replay_check_and_set(&w, 0, 8), NM_REPLAY_DUPLICATE);
  NMT_EQ_INT(nm_replay_check_and_set(&w, 0, 10), NM_REPLAY_DUPLICATE);
  NMT_CHECK(accept(&w, 0, 7)); /* never seen, inside the window */
  NMT_EQ_INT(w.top, 10);
}

static void test_duplicate_and_check(void) {
  nm_replay_window w;
  nm_replay_window_init(&w);
  /* check changes nothing */
  NMT_EQ_INT(nm_replay_check(&w, 0, 3), NM_REPLAY_ACCEPT);
  NMT_EQ_INT(nm_replay_check(&w, 0, 3), NM_REPLAY_ACCEPT);
  NMT_CHECK(accept(&w, 0, 3));
  NMT_EQ_INT(nm_replay_check(&w, 0, 3), NM_REPLAY_DUPLICATE);
  NMT_EQ_INT(nm_replay_check_and_set(&w, 0, 3), NM_REPLAY_DUPLICATE);
  /* seq 0 is never a line */
  NMT_EQ_INT(nm_replay_check_and_set(&w, 0, 0), NM_REPLAY_TOO_OLD);
  NMT_EQ_INT(nm_replay_check_and_set(&w, 5, 0), NM_REPLAY_TOO_OLD);
  NMT_EQ_INT(w.epoch, 0); /* a refused line does not move the epoch */
  NMT_EQ_STR(nm_replay_verdict_name(NM_REPLAY_DUPLICATE), "duplicate");
  NMT_EQ_STR(nm_replay_verdict_name(NM_REPLAY_STALE_EPOCH), "stale-epoch");
  NMT_EQ_STR(nm_replay_verdict_name((nm_replay_verdict)42), "?");
}

static void test_window_edge(void) {
  nm_replay_window w;
  nm_replay_window_init(&w);
  for (uint64_t s = 1; s <= 3000; s++) accept(&w, 0, s);
  /* The window holds top - NM_REPLAY_WINDOW + 1 .. top, each still remembered. */
  int dups = 1;
  for (uint64_t s = 3000 - NM_REPLAY_WINDOW + 1; s <= 3000; s++)
    dups &= nm_replay_check(&w, 0, s) == NM_REPLAY_DUPLICATE;
  NMT_CHECK(dups);
  NMT_EQ_INT(nm_replay_check(&w, 0, 3000 - NM_REPLAY_WINDOW), NM_REPLAY_TOO_OLD);
  NMT_EQ_INT(nm_replay_check_and_set(&w, 0, 1), NM_REPLAY_TOO_OLD);

  /* Unseen numbers just inside the edge are accepted after a slide. */
  nm_replay_window_init(&w);
  NMT_CHECK(accept(&w, 0, 5000));
  NMT_EQ_INT(nm_replay_check_and_set(&w, 0, 5000 - NM_REPLAY_WINDOW + 1), NM_REPLAY_ACCEPT);
  NMT_EQ_INT(nm_replay_check_and_set(&w, 0, 5000 - NM_REPLAY_WINDOW), NM_REPLAY_TOO_OLD);
}

static void test_huge_jump(void) {
  nm_replay_window w;
  nm_replay_window_init(&w);
  for (uint64_t s = 1; s <= 100; s++) accept(&w, 0, s);
  NMT_CHECK(accept(&w, 0, 1000000000000ull));
  NMT_EQ_INT(nm_replay_check_and_set(&w, 0, 100), NM_REPLAY_TOO_OLD);
  NMT_EQ_INT(nm_replay_check_and_set(&w, 0, 1000000000000ull), NM_REPLAY_DUPLICATE);
  /* The bits of the old numbers were cleared: the numbers now below top that share their
   * blocks are new. */
  NMT_CHECK(accept(&w, 0, 1000000000000ull - 1));
  NMT_CHECK(accept(&w, 0, 1000000000000ull - 2000));
  NMT_CHECK(accept(&w, 0, UINT64_MAX));
  NMT_EQ_INT(nm_replay_check_and_set(&w, 0, UINT64_MAX), NM_REPLAY_DUPLICATE);
  NMT_CHECK(accept(&w, 0, UINT64_MAX - 1));
  NMT_EQ_INT(nm_replay_check_and_set(&w, 0, 1000000000000ull), NM_REPLAY_TOO_OLD);
}

/* Against a model that remembers everything: the window must agree with it wherever the
 * model says "inside the window", over random jumps of every size the blocks care about. */
static void test_against_model(void) {
  enum { N = 1 << 25 };
  static uint64_t seen[N / 64]; /* every number ever accepted, as bits */
  nm_replay_window w;
  nm_replay_window_init(&w);
  memset(seen, 0, sizeof seen);
  uint64_t top = 0, x = 88172645463325252ull;
  int mismatches = 0, verdicts[4] = {0};
  for (int i = 0; i < 300000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
    /* Mostly near the top (reordering and repeats); now and then far behind it, or a jump
     * forward of up to 5 windows. */
    int64_t delta = (int64_t)(x % 64) - 24;
    if (x % 53 == 0) delta = -(int64_t)(x % (3 * NM_REPLAY_WINDOW));
    if (x % 97 == 0) delta = (int64_t)(x % (5 * NM_REPLAY_WINDOW));
    int64_t s = (int64_t)top + delta;
    if (s < 1 || s >= N) continue;
    int was_seen = (seen[s / 64] >> (s % 64)) & 1;
    nm_replay_verdict want;
    if ((uint64_t)s > top) want = NM_REPLAY_ACCEPT;
    else if (top - (uint64_t)s >= NM_REPLAY_WINDOW) want = NM_REPLAY_TOO_OLD;
    else want = was_seen ? NM_REPLAY_DUPLICATE : NM_REPLAY_ACCEPT;
    nm_replay_verdict got = nm_replay_check_and_set(&w, 0, (uint64_t)s);
    verdicts[want]++;
    if (got != want && mismatches++ < 5)
      fprintf(stderr, "       seq %lld top %llu: got %s, want %s\n", (long long)s,
              (unsigned long long)top, nm_replay_verdict_name(got), nm_replay_verdict_name(want));
    if (want == NM_REPLAY_ACCEPT) {
      seen[s / 64] |= (uint64_t)1 << (s % 64);
      if ((uint64_t)s > top) top = (uint64_t)s;
    }
  }
  NMT_EQ_INT(mismatches, 0);
  /* the walk met every verdict the window can give within an epoch, many times */
  printf("       accepted %d, duplicates %d, too old %d\n", verdicts[NM_REPLAY_ACCEPT],
         verdicts[NM_REPLAY_DUPLICATE], verdicts[NM_REPLAY_TOO_OLD]);
  NMT_CHECK(verdicts[NM_REPLAY_ACCEPT] > 10000);
  NMT_CHECK(verdicts[NM_REPLAY_DUPLICATE] > 10000);
  NMT_CHECK(verdicts[NM_REPLAY_TOO_OLD] > 1000);
}

static void test_epochs(void) {
  nm_replay_window w;
  nm_replay_window_init(&w);
  for (uint64_t s = 1; s <= 100; s++) accept(&w, 7, s);
  /* Restarted without its sequence: a new epoch starts at 1 and its window is empty. */
  NMT_CHECK(accept(&w, 8, 1));
  NMT_EQ_INT(w.epoch, 8);
  NMT_EQ_INT(w.top, 1);
  NMT_CHECK(accept(&w, 8, 50));
  NMT_EQ_INT(nm_replay_check_and_set(&w, 8, 1), NM_REPLAY_DUPLICATE);
  /* The old epoch is over: neither its seen nor its unseen lines come back. */
  NMT_EQ_INT(nm_replay_check_and_set(&w, 7, 100), NM_REPLAY_STALE_EPOCH);
  NMT_EQ_INT(nm_replay_check_and_set(&w, 7, 101), NM_REPLAY_STALE_EPOCH);
  NMT_EQ_INT(nm_replay_check_and_set(&w, 0, 1), NM_REPLAY_STALE_EPOCH);
  NMT_EQ_INT(w.epoch, 8);
  /* A jump of several epochs is fine too, and the check alone does not move it. */
  NMT_EQ_INT(nm_replay_check(&w, UINT64_MAX, 1), NM_REPLAY_ACCEPT);
  NMT_EQ_INT(w.epoch, 8);
  NMT_CHECK(accept(&w, UINT64_MAX, 3));
  NMT_EQ_INT(nm_replay_check_and_set(&w, 8, 51), NM_REPLAY_STALE_EPOCH);
}

/* The bug of issue 9: the servant's global FIFO remembered the last 16,384 lines, so a line
 * shown again after 16,384 others had arrived was shown twice. */
static void test_old_fifo_bug(void) {
  nm_replay_table t;
  char origin[16];
  NMT_EQ_INT(nm_replay_table_init(&t, 64), 0);
  NMT_EQ_INT(nm_replay_table_check_and_set(&t, "bob", 0, 1), NM_REPLAY_ACCEPT);
  /* 16,384 lines of other origins: bob's window is his own, the line is still known. */
  for (int i = 0; i < 16384; i++) {
    snprintf(origin, sizeof origin, "o%d", i % 32);
    nm_replay_table_check_and_set(&t, origin, 0, (uint64_t)(i / 32 + 1));
  }
  NMT_EQ_INT(nm_replay_table_check_and_set(&t, "bob", 0, 1), NM_REPLAY_DUPLICATE);
  /* 16,384 later lines of bob himself: the line is below the window, refused as too old. */
  int all = 1;
  for (uint64_t s = 2; s <= 16385; s++)
    all &= nm_replay_table_check_and_set(&t, "bob", 0, s) == NM_REPLAY_ACCEPT;
  NMT_CHECK(all);
  NMT_EQ_INT(nm_replay_table_check_and_set(&t, "bob", 0, 1), NM_REPLAY_TOO_OLD);
  nm_replay_table_close(&t);
}

static void test_table_basics(void) {
  nm_replay_table t;
  char longid[NM_REPLAY_ORIGIN_MAX + 2];
  NMT_EQ_INT(nm_replay_table_init(&t, 0), -EINVAL);
  NMT_EQ_INT(nm_replay_table_init(&t, 8), 0);
  memset(longid, 'a', sizeof longid - 1);
  longid[sizeof longid - 1] = 0;
  NMT_EQ_INT(nm_replay_table_check_and_set(&t, longid, 0, 1), -EINVAL); /* 65 bytes */
  longid[NM_REPLAY_ORIGIN_MAX] = 0;
  NMT_EQ_INT(nm_replay_table_check_and_set(&t, longid, 0, 1), NM_REPLAY_ACCEPT); /* 64 */
  NMT_EQ_INT(nm_replay_table_check_and_set(&t, "", 0, 1), -EINVAL);
  NMT_EQ_INT(nm_replay_table_check_and_set(&t, NULL, 0, 1), -EINVAL);
  /* check never inserts */
  NMT_EQ_INT(nm_replay_table_check(&t, "alice", 0, 1), NM_REPLAY_ACCEPT);
  NMT_EQ_INT(nm_replay_table_live(&t), 1);
  /* a refused first line takes no entry */
  NMT_EQ_INT(nm_replay_table_check_and_set(&t, "alice", 0, 0), NM_REPLAY_TOO_OLD);
  NMT_EQ_INT(nm_replay_table_live(&t), 1);
  NMT_EQ_INT(nm_replay_table_check_and_set(&t, "alice", 3, 9), NM_REPLAY_ACCEPT);
  NMT_EQ_INT(nm_replay_table_check(&t, "alice", 3, 9), NM_REPLAY_DUPLICATE);
  NMT_EQ_INT(nm_replay_table_check(&t, "alice", 2, 10), NM_REPLAY_STALE_EPOCH);
  NMT_EQ_INT(nm_replay_table_check_and_set(&t, "alice", 2, 10), NM_REPLAY_STALE_EPOCH);
  /* origins are separate windows: the same (epoch, seq) from another origin is new */
  NMT_EQ_INT(nm_replay_table_check_and_set(&t, "alic", 3, 9), NM_REPLAY_ACCEPT);
  NMT_EQ_INT(nm_replay_table_live(&t), 3);
  nm_replay_table_close(&t);
}

static void test_table_bounds(void) {
  nm_replay_table t;
  NMT_EQ_INT(nm_replay_table_init(&t, 3), 0);
  NMT_EQ_INT(nm_replay_table_check_and_set(&t, "a", 0, 1), NM_REPLAY_ACCEPT);
  NMT_EQ_INT(nm_replay_table_check_and_set(&t, "b", 0, 1), NM_REPLAY_ACCEPT);
  NMT_EQ_INT(nm_replay_table_check_and_set(&t, "c", 0, 1), NM_REPLAY_ACCEPT);
  /* Full of origins in the list: a fourth is refused, not given someone else's window. */
  NMT_EQ_INT(nm_replay_table_check_and_set(&t, "d", 0, 1), -ENOSPC);
  NMT_EQ_INT(nm_replay_table_check_and_set(&t, "a", 0, 1), NM_REPLAY_DUPLICATE);
  NMT_EQ_INT(nm_replay_table_remove(&t, "zz"), -ENOENT);
  NMT_EQ_INT(nm_replay_table_remove(&t, "b"), 0);
  NMT_EQ_INT(nm_replay_table_remove(&t, "b"), -ENOENT);
  NMT_EQ_INT(nm_replay_table_remove(&t, "a"), 0);
  NMT_EQ_INT(nm_replay_table_live(&t), 1);
  /* Departed but not reclaimed: the windows still judge (a replay of b's line is known). */
  NMT_EQ_INT(nm_replay_table_check(&t, "b", 0, 1), NM_REPLAY_DUPLICATE);
  /* d takes the entry that departed first (b); a's window survives. */
  NMT_EQ_INT(nm_replay_table_check_and_set(&t, "d", 0, 1), NM_REPLAY_ACCEPT);
  NMT_EQ_INT(nm_replay_table_check(&t, "a", 0, 1), NM_REPLAY_DUPLICATE);
  NMT_EQ_INT(nm_replay_table_check(&t, "b", 0, 1), NM_REPLAY_ACCEPT); /* forgotten */
  /* a comes back before being reclaimed: live again, with its window */
  NMT_EQ_INT(nm_replay_table_check_and_set(&t, "a", 0, 2), NM_REPLAY_ACCEPT);
  NMT_EQ_INT(nm_replay_table_live(&t), 3);
  NMT_EQ_INT(nm_replay_table_check_and_set(&t, "b", 0, 2), -ENOSPC);
  nm_replay_table_close(&t);
}

/* Churn: origins join and leave for many times the table's size; every origin in the list
 * must keep its own window (the index survives reclaiming and its deletions). */
static void test_table_churn(void) {
  enum { MAX = 64, LIVE = 50, ROUNDS = 5000 };
  nm_replay_table t;
  char id[32];
  int bad = 0;
  NMT_EQ_INT(nm_replay_table_init(&t, MAX), 0);
  for (int r = 0; r < ROUNDS; r++) {
    snprintf(id, sizeof id, "%016x", (unsigned)r * 2654435761u);
    if (nm_replay_table_check_and_set(&t, id, 1, (uint64_t)r + 1) != NM_REPLAY_ACCEPT) bad++;
    if (r >= LIVE) {
      snprintf(id, sizeof id, "%016x", (unsigned)(r - LIVE) * 2654435761u);
      if (nm_replay_table_remove(&t, id) != 0) bad++;
    }
  }
  NMT_EQ_INT(bad, 0);
  NMT_EQ_INT(nm_replay_table_live(&t), LIVE);
  for (int r = ROUNDS - LIVE; r < ROUNDS; r++) {
    snprintf(id, sizeof id, "%016x", (unsigned)r * 2654435761u);
    if (nm_replay_table_check(&t, id, 1, (uint64_t)r + 1) != NM_REPLAY_DUPLICATE) bad++;
  }
  NMT_EQ_INT(bad, 0);
  nm_replay_table_close(&t);
}

int main(void) {
  NMT_RUN(test_in_order);
  NMT_RUN(test_out_of_order);
  NMT_RUN(test_duplicate_and_check);
  NMT_RUN(test_window_edge);
  NMT_RUN(test_huge_jump);
  NMT_RUN(test_against_model);
  NMT_RUN(test_epochs);
  NMT_RUN(test_old_fifo_bug);
  NMT_RUN(test_table_basics);
  NMT_RUN(test_table_bounds);
  NMT_RUN(test_table_churn);
  return nmt_done();
}
