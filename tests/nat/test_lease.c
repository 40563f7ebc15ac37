/* test_lease.c - lease arithmetic, renewal scheduling, back-off, epochs and
 * external-port candidates: every "when" rule of the port mapper. */
#include "nat_test.h"
#include "nm_portmap.h"

#define S 1000ull

static void natpmp_renews_at_half_life(void) {
  CHECK_EQ_U64(nm_lease_renew_at_ms(0, 3600, NM_MAP_NATPMP), 1800 * S);
  CHECK_EQ_U64(nm_lease_renew_at_ms(5000, 120, NM_MAP_NATPMP), 5000 + 60 * S);
  CHECK_EQ_U64(nm_lease_renew_at_ms(0, 7, NM_MAP_NATPMP), 3500);
}

static void upnp_renews_a_margin_before_expiry(void) {
  /* 3600 s: a quarter is 900 s, capped at 300 s */
  CHECK_EQ_U64(nm_lease_renew_at_ms(0, 3600, NM_MAP_UPNP), 3300 * S);
  /* 120 s: a quarter, 30 s */
  CHECK_EQ_U64(nm_lease_renew_at_ms(1000, 120, NM_MAP_UPNP), 1000 + 90 * S);
  /* 30 s: a quarter is 7.5 s, raised to the 10 s minimum */
  CHECK_EQ_U64(nm_lease_renew_at_ms(0, 30, NM_MAP_UPNP), 20 * S);
  /* 12 s: the 10 s margin would leave 2 s; never earlier than half-life */
  CHECK_EQ_U64(nm_lease_renew_at_ms(0, 12, NM_MAP_UPNP), 6 * S);
  /* a week: 300 s margin */
  CHECK_EQ_U64(nm_lease_renew_at_ms(0, 604800, NM_MAP_UPNP), (604800 - 300) * S);
}

static void permanent_never_renews(void) {
  CHECK_EQ_U64(nm_lease_renew_at_ms(1234, 0, NM_MAP_UPNP), NM_NEVER);
  CHECK_EQ_U64(nm_lease_renew_at_ms(1234, 0, NM_MAP_NATPMP), NM_NEVER);
  CHECK_EQ_U64(nm_lease_expires_at_ms(1234, 0), NM_NEVER);
  CHECK_EQ_U64(nm_lease_renew_at_ms(0, 60, NM_MAP_NONE), NM_NEVER);
}

static void tiny_leases_are_floored(void) {
  /* a router granting 1 s must not make us renew every 500 ms */
  CHECK_EQ_U64(nm_lease_renew_at_ms(0, 1, NM_MAP_NATPMP), 1 * S);
  CHECK_EQ_U64(nm_lease_renew_at_ms(0, 1, NM_MAP_UPNP), 1 * S);
  CHECK_EQ_U64(nm_lease_renew_at_ms(0, 2, NM_MAP_NATPMP), 1 * S);
}

static void renewal_is_before_expiry(void) {
  uint32_t l;
  for (l = 2; l < 100000; l = l * 3 / 2 + 1) {
    CHECK(nm_lease_renew_at_ms(0, l, NM_MAP_NATPMP) < nm_lease_expires_at_ms(0, l));
    CHECK(nm_lease_renew_at_ms(0, l, NM_MAP_UPNP) < nm_lease_expires_at_ms(0, l));
    CHECK(nm_lease_renew_at_ms(0, l, NM_MAP_UPNP) >= nm_lease_renew_at_ms(0, l, NM_MAP_NATPMP));
  }
}

static void no_overflow_near_the_end_of_time(void) {
  CHECK_EQ_U64(nm_lease_expires_at_ms(UINT64_MAX - 10, 3600), UINT64_MAX);
  CHECK_EQ_U64(nm_lease_renew_at_ms(UINT64_MAX - 10, 3600, NM_MAP_NATPMP), UINT64_MAX);
  CHECK_EQ_U64(nm_lease_expires_at_ms(0, UINT32_MAX), (uint64_t)UINT32_MAX * S);
}

static void backoff_doubles_and_caps(void) {
  CHECK_EQ_U64(nm_retry_backoff_ms(0, 60 * S), 0);
  CHECK_EQ_U64(nm_retry_backoff_ms(1, 60 * S), 1 * S);
  CHECK_EQ_U64(nm_retry_backoff_ms(2, 60 * S), 2 * S);
  CHECK_EQ_U64(nm_retry_backoff_ms(3, 60 * S), 4 * S);
  CHECK_EQ_U64(nm_retry_backoff_ms(7, 60 * S), 60 * S);
  CHECK_EQ_U64(nm_retry_backoff_ms(64, 60 * S), 60 * S);
  CHECK_EQ_U64(nm_retry_backoff_ms(1000, 60 * S), 60 * S);
}

static void renewal_retry_stops_at_expiry(void) {
  /* lease expires at 100 s; failures back off 1 s, 2 s, ... capped at 30 s */
  CHECK_EQ_U64(nm_lease_retry_at_ms(50 * S, 100 * S, 1), 51 * S);
  CHECK_EQ_U64(nm_lease_retry_at_ms(50 * S, 100 * S, 3), 54 * S);
  CHECK_EQ_U64(nm_lease_retry_at_ms(50 * S, 100 * S, 10), 80 * S);
  /* never later than expiry: the last try is at the expiry itself */
  CHECK_EQ_U64(nm_lease_retry_at_ms(99 * S, 100 * S, 5), 100 * S);
  /* at or after expiry the mapping is lost */
  CHECK_EQ_U64(nm_lease_retry_at_ms(100 * S, 100 * S, 1), NM_NEVER);
  CHECK_EQ_U64(nm_lease_retry_at_ms(200 * S, 100 * S, 1), NM_NEVER);
  /* permanent mappings retry forever */
  CHECK_EQ_U64(nm_lease_retry_at_ms(1000 * S, NM_NEVER, 2), 1002 * S);
}

static void natpmp_epoch_reset_detection(void) {
  /* normal progress: 100 s later the epoch grew by 100 */
  CHECK_EQ_INT(nm_natpmp_epoch_reset(5000, 0, 5100, 100 * S), 0);
  /* slightly slow router clock: 7/8 rule, 2 s slack */
  CHECK_EQ_INT(nm_natpmp_epoch_reset(5000, 0, 5000 + 86, 100 * S), 0);
  CHECK_EQ_INT(nm_natpmp_epoch_reset(5000, 0, 5000 + 84, 100 * S), 1);
  /* epoch went backwards: reboot */
  CHECK_EQ_INT(nm_natpmp_epoch_reset(5000, 0, 3, 10 * S), 1);
  /* same epoch right away (two answers in one second) is fine */
  CHECK_EQ_INT(nm_natpmp_epoch_reset(5000, 0, 5000, 500), 0);
  /* a router restarted just now answers with a small epoch */
  CHECK_EQ_INT(nm_natpmp_epoch_reset(40, 0, 1, 60 * S), 1);
  /* local clock went backwards (cannot with uv_now, but be safe) */
  CHECK_EQ_INT(nm_natpmp_epoch_reset(100, 10 * S, 100, 5 * S), 0);
}

static void ext_port_candidates(void) {
  unsigned a;
  uint16_t p, q;
  int differs = 0;
  CHECK_EQ_INT(nm_upnp_ext_port_candidate(4000, 0, 1), 4000);
  CHECK_EQ_INT(nm_upnp_ext_port_candidate(4000, 0, 99), 4000);
  for (a = 1; a < 200; a++) {
    p = nm_upnp_ext_port_candidate(4000, a, 12345);
    CHECK(p >= 1024);
    CHECK(p != 4000);
    /* deterministic */
    CHECK_EQ_INT(p, nm_upnp_ext_port_candidate(4000, a, 12345));
    q = nm_upnp_ext_port_candidate(4000, a, 54321);
    if (p != q)
      differs = 1;
  }
  CHECK(differs); /* two hosts walk different sequences */
  /* successive attempts differ */
  CHECK(nm_upnp_ext_port_candidate(4000, 1, 7) != nm_upnp_ext_port_candidate(4000, 2, 7));
  /* low internal ports still get unprivileged candidates */
  CHECK(nm_upnp_ext_port_candidate(80, 3, 7) >= 1024);
}

int main(void) {
  natpmp_renews_at_half_life();
  upnp_renews_a_margin_before_expiry();
  permanent_never_renews();
  tiny_leases_are_floored();
  renewal_is_before_expiry();
  no_overflow_near_the_end_of_time();
  backoff_doubles_and_caps();
  renewal_retry_stops_at_expiry();
  natpmp_epoch_reset_detection();
  ext_port_candidates();
  NAT_TEST_DONE("nat_lease");
}
