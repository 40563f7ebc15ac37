/* nm_punch: who is the TLS client when both sides dialled, and when each side dials. */
#include "nm_punch.h"
#include "nmt.h"

#include <string.h>

static void test_smaller_key_is_the_client(void) {
  uint8_t a[NM_PUBKEY_LEN], b[NM_PUBKEY_LEN];
  memset(a, 0x11, sizeof a);
  memset(b, 0x11, sizeof b);
  b[NM_PUBKEY_LEN - 1] = 0x12; /* b differs from a only in its last byte: a < b */
  NMT_EQ_INT(nm_punch_tls_role(a, b), NM_TLS_CLIENT);
  NMT_EQ_INT(nm_punch_tls_role(b, a), NM_TLS_SERVER);
  /* compared as bytes (unsigned), the first difference decides */
  memset(b, 0x00, sizeof b);
  b[0] = 0xf0;
  a[0] = 0x7f;
  NMT_EQ_INT(nm_punch_tls_role(a, b), NM_TLS_CLIENT);
  NMT_EQ_INT(nm_punch_tls_role(b, a), NM_TLS_SERVER);
}

static void test_both_sides_agree(void) {
  /* whatever the keys, exactly one side is the client */
  uint8_t a[NM_PUBKEY_LEN], b[NM_PUBKEY_LEN];
  for (unsigned i = 0; i < 64; i++) {
    for (size_t k = 0; k < NM_PUBKEY_LEN; k++) {
      a[k] = (uint8_t)(i * 7 + k * 13);
      b[k] = (uint8_t)(i * 11 + k * 5 + 1);
    }
    nm_tls_role ra = nm_punch_tls_role(a, b), rb = nm_punch_tls_role(b, a);
    NMT_CHECK((ra == NM_TLS_CLIENT && rb == NM_TLS_SERVER) || (ra == NM_TLS_SERVER && rb == NM_TLS_CLIENT));
  }
}

static void test_equal_keys_have_no_role(void) {
  uint8_t a[NM_PUBKEY_LEN];
  memset(a, 0x42, sizeof a);
  NMT_EQ_INT(nm_punch_tls_role(a, a), 0);
}

static void test_both_dial_at_the_same_moment(void) {
  uint64_t da, db;
  /* a 40 ms away, b 200 ms away: b's message arrives at 100 ms, a's at 20 ms; both dial at
   * 100 + margin after the manager sent them */
  nm_punch_schedule(40, 200, 100, &da, &db);
  NMT_EQ_INT(20 + da, 100 + 100);
  NMT_EQ_INT(100 + db, 100 + 100);
  NMT_EQ_INT(db, 100);
  /* symmetric */
  nm_punch_schedule(200, 40, 100, &da, &db);
  NMT_EQ_INT(da, 100);
  NMT_EQ_INT(db, 180);
  /* equal round trips: both wait the margin */
  nm_punch_schedule(30, 30, 100, &da, &db);
  NMT_EQ_INT(da, 100);
  NMT_EQ_INT(db, 100);
}

static void test_unknown_and_huge_round_trips(void) {
  uint64_t da, db;
  /* unknown (0) counts as the default */
  nm_punch_schedule(0, NM_PUNCH_RTT_DEFAULT_MS, 50, &da, &db);
  NMT_EQ_INT(da, db);
  /* a round trip beyond reason never makes a delay over the wire's maximum */
  nm_punch_schedule(1, 4000000000u, 100, &da, &db);
  NMT_CHECK(da <= NM_PUNCH_DELAY_MAX_MS);
  NMT_CHECK(db <= NM_PUNCH_DELAY_MAX_MS);
}

int main(void) {
  NMT_RUN(test_smaller_key_is_the_client);
  NMT_RUN(test_both_sides_agree);
  NMT_RUN(test_equal_keys_have_no_role);
  NMT_RUN(test_both_dial_at_the_same_moment);
  NMT_RUN(test_unknown_and_huge_round_trips);
  return nmt_done();
}
