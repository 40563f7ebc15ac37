/* nm_ratelimit: the token bucket a relay applies per client and in total. */
#include "nm_ratelimit.h"
#include "nmt.h"

static void test_starts_full_and_spends(void) {
  nm_ratelimit r;
  nm_ratelimit_init(&r, 1000, 1000, 5000);
  NMT_EQ_INT(nm_ratelimit_available(&r, 5000), 1000);
  NMT_EQ_INT(nm_ratelimit_take(&r, 5000, 600), 1);
  NMT_EQ_INT(nm_ratelimit_available(&r, 5000), 400);
  /* not enough: refused, and nothing is spent */
  NMT_EQ_INT(nm_ratelimit_take(&r, 5000, 401), 0);
  NMT_EQ_INT(nm_ratelimit_available(&r, 5000), 400);
  NMT_EQ_INT(nm_ratelimit_take(&r, 5000, 400), 1);
  NMT_EQ_INT(nm_ratelimit_take(&r, 5000, 1), 0);
}

static void test_refills_with_time(void) {
  nm_ratelimit r;
  nm_ratelimit_init(&r, 1000, 1000, 0); /* 1 byte a millisecond */
  NMT_EQ_INT(nm_ratelimit_take(&r, 0, 1000), 1);
  NMT_EQ_INT(nm_ratelimit_take(&r, 99, 100), 0);
  NMT_EQ_INT(nm_ratelimit_take(&r, 100, 100), 1);
  NMT_EQ_INT(nm_ratelimit_available(&r, 100), 0);
  /* fractions add up: 3 bytes a second is 3 thousandths a millisecond */
  nm_ratelimit_init(&r, 3, 3, 0);
  NMT_EQ_INT(nm_ratelimit_take(&r, 0, 3), 1);
  NMT_EQ_INT(nm_ratelimit_take(&r, 333, 1), 0);
  NMT_EQ_INT(nm_ratelimit_take(&r, 334, 1), 1);
}

static void test_burst_caps_the_bucket(void) {
  nm_ratelimit r;
  nm_ratelimit_init(&r, 1000, 1000, 0);
  /* an hour idle still holds one second's worth */
  NMT_EQ_INT(nm_ratelimit_available(&r, 3600 * 1000), 1000);
  NMT_EQ_INT(nm_ratelimit_take(&r, 3600 * 1000, 1001), 0);
  NMT_EQ_INT(nm_ratelimit_take(&r, 3600 * 1000, 1000), 1);
  /* a burst apart from the rate */
  nm_ratelimit_init(&r, 100, 10, 0);
  NMT_EQ_INT(nm_ratelimit_take(&r, 0, 11), 0);
  NMT_EQ_INT(nm_ratelimit_take(&r, 0, 10), 1);
  NMT_EQ_INT(nm_ratelimit_available(&r, 1000), 10);
}

static void test_zero_rate_is_unlimited(void) {
  nm_ratelimit r;
  nm_ratelimit_init(&r, 0, 0, 0);
  for (int i = 0; i < 100; i++) NMT_EQ_INT(nm_ratelimit_take(&r, 0, 1 << 20), 1);
}

static void test_per_client_and_total(void) {
  /* as the relay uses them: a line is sent only if both the client's and the total bucket
   * have room; the total is shared, so two clients at their own limit exceed it */
  nm_ratelimit a, b, total;
  nm_ratelimit_init(&a, 600, 600, 0);
  nm_ratelimit_init(&b, 600, 600, 0);
  nm_ratelimit_init(&total, 1000, 1000, 0);
  int sent = 0;
  for (int i = 0; i < 6; i++) {
    nm_ratelimit *c = i % 2 ? &b : &a;
    if (nm_ratelimit_take(c, 0, 200) && nm_ratelimit_take(&total, 0, 200)) sent++;
  }
  NMT_EQ_INT(sent, 5);
  NMT_EQ_INT(nm_ratelimit_available(&total, 0), 0);
  NMT_EQ_INT(nm_ratelimit_available(&b, 0), 0); /* the client's share went with the drop */
}

static void test_extremes(void) {
  nm_ratelimit r;
  /* the largest rates the config allows, after the longest pause: no overflow */
  nm_ratelimit_init(&r, 2000000000u, 2000000000u, 0);
  NMT_EQ_INT(nm_ratelimit_take(&r, 0, 2000000000u), 1);
  NMT_EQ_INT(nm_ratelimit_available(&r, UINT64_MAX / 2), 2000000000u);
  /* a clock that goes backwards adds nothing */
  nm_ratelimit_init(&r, 1000, 1000, 10000);
  NMT_EQ_INT(nm_ratelimit_take(&r, 10000, 1000), 1);
  NMT_EQ_INT(nm_ratelimit_available(&r, 5000), 0);
  NMT_EQ_INT(nm_ratelimit_available(&r, 10500), 500);
}

int main(void) {
  NMT_RUN(test_starts_full_and_spends);
  NMT_RUN(test_refills_with_time);
  NMT_RUN(test_burst_caps_the_bucket);
  NMT_RUN(test_zero_rate_is_unlimited);
  NMT_RUN(test_per_client_and_total);
  NMT_RUN(test_extremes);
  return nmt_done();
}
