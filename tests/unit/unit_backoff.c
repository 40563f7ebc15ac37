/* nm_backoff: the one retry policy (first, doubling, cap, reset; optionally one immediate
 * retry), with the three uses natmesh makes of it. */
#include "nm_backoff.h"
#include "nmt.h"

static void test_doubles_from_first_to_the_cap(void) {
  /* the manager link: 0.25 s doubling to 4 s */
  nm_backoff b;
  nm_backoff_init(&b, 250, 4000, 0);
  unsigned want[] = {250, 500, 1000, 2000, 4000, 4000, 4000};
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) NMT_EQ_INT(nm_backoff_next(&b), want[i]);
  NMT_EQ_INT(b.failures, 7);
}

static void test_immediate_first_retry(void) {
  /* a pull connection: retried at once, then 0.25 s doubling to 4 s */
  nm_backoff b;
  nm_backoff_init(&b, 250, 4000, 1);
  unsigned want[] = {0, 250, 500, 1000, 2000, 4000, 4000};
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) NMT_EQ_INT(nm_backoff_next(&b), want[i]);
}

static void test_reset_starts_over(void) {
  nm_backoff b;
  nm_backoff_init(&b, 250, 4000, 0);
  nm_backoff_next(&b);
  nm_backoff_next(&b);
  nm_backoff_next(&b);
  nm_backoff_reset(&b);
  NMT_EQ_INT(b.failures, 0);
  NMT_EQ_INT(nm_backoff_next(&b), 250);
  nm_backoff_init(&b, 500, 1000, 1);
  nm_backoff_next(&b);
  nm_backoff_next(&b);
  nm_backoff_reset(&b);
  NMT_EQ_INT(nm_backoff_next(&b), 0);
  NMT_EQ_INT(nm_backoff_next(&b), 500);
}

static void test_cap_follows_the_heartbeat(void) {
  /* a peer connection: immediate, then 0.5 s doubling to half a heartbeat (at least 1 s) */
  nm_backoff b;
  nm_backoff_init(&b, 500, 1000, 1);
  NMT_EQ_INT(nm_backoff_next(&b), 0);
  NMT_EQ_INT(nm_backoff_next(&b), 500);
  NMT_EQ_INT(nm_backoff_next(&b), 1000);
  NMT_EQ_INT(nm_backoff_next(&b), 1000);
  nm_backoff_set_max(&b, 2500); /* a heartbeat of 5 s arrived */
  NMT_EQ_INT(nm_backoff_next(&b), 2500);
  nm_backoff_set_max(&b, 1000);
  NMT_EQ_INT(nm_backoff_next(&b), 1000);
}

static void test_no_overflow(void) {
  nm_backoff b;
  nm_backoff_init(&b, 3000000000u, 4000000000u, 0);
  NMT_EQ_INT(nm_backoff_next(&b), 3000000000u);
  NMT_EQ_INT(nm_backoff_next(&b), 4000000000u);
  nm_backoff_init(&b, 1, ~0u, 0);
  for (int i = 0; i < 1000; i++) nm_backoff_next(&b);
  NMT_EQ_INT(nm_backoff_next(&b), ~0u);
  /* a count that would wrap stays at its top */
  b.failures = ~0u;
  NMT_EQ_INT(nm_backoff_next(&b), ~0u);
  NMT_EQ_INT(b.failures, ~0u);
  /* first 0 is "always at once", not a loop */
  nm_backoff_init(&b, 0, 4000, 0);
  b.failures = 100000;
  NMT_EQ_INT(nm_backoff_next(&b), 0);
}

int main(void) {
  NMT_RUN(test_doubles_from_first_to_the_cap);
  NMT_RUN(test_immediate_first_retry);
  NMT_RUN(test_reset_starts_over);
  NMT_RUN(test_cap_follows_the_heartbeat);
  NMT_RUN(test_no_overflow);
  return nmt_done();
}
