/* relay_choice: which candidate serves a servant peers cannot reach. */
#include "relay_choice.h"
#include "nmt.h"

/* A reachable servant with room, no complaints. */
static mgr_relay_candidate servant(unsigned clients, unsigned max_clients) {
  mgr_relay_candidate c = {.reachable = 1, .clients = clients, .max_clients = max_clients};
  return c;
}

static mgr_relay_candidate relay(unsigned clients, unsigned max_clients) {
  mgr_relay_candidate c = servant(clients, max_clients);
  c.dedicated = 1;
  return c;
}

static void test_dedicated_first(void) {
  /* a dedicated relay wins over servants, even over idle ones */
  mgr_relay_candidate c[] = {servant(0, 8), relay(5, 64), servant(1, 8)};
  NMT_EQ_INT(mgr_relay_choose(c, 3), 1);
  /* ... unless it is full */
  c[1].clients = 64;
  NMT_EQ_INT(mgr_relay_choose(c, 3), 0);
}

static void test_fewest_clients(void) {
  mgr_relay_candidate s[] = {servant(3, 8), servant(1, 8), servant(2, 8)};
  NMT_EQ_INT(mgr_relay_choose(s, 3), 1);
  mgr_relay_candidate r[] = {relay(7, 64), relay(9, 64), servant(0, 8), relay(2, 64)};
  NMT_EQ_INT(mgr_relay_choose(r, 4), 3);
  /* ties: the first listed */
  mgr_relay_candidate t[] = {servant(2, 8), servant(1, 8), servant(1, 8)};
  NMT_EQ_INT(mgr_relay_choose(t, 3), 1);
}

static void test_longest_connected_among_equals(void) {
  /* A newcomer (listed first: the newest session) does not jump the queue... */
  mgr_relay_candidate c[] = {servant(0, 8), servant(0, 8), servant(0, 8)};
  c[0].connected_ms = 2000;
  c[1].connected_ms = 60000;
  c[2].connected_ms = 90000;
  NMT_EQ_INT(mgr_relay_choose(c, 3), 2);
  /* ... but the age only breaks ties: fewer clients and dedicated relays come first. */
  c[2].clients = 1;
  NMT_EQ_INT(mgr_relay_choose(c, 3), 1);
  c[0].dedicated = 1;
  NMT_EQ_INT(mgr_relay_choose(c, 3), 0);
}

static void test_skips(void) {
  mgr_relay_candidate full = servant(8, 8), none = servant(0, 0);
  mgr_relay_candidate suspicious = servant(0, 8), complained = servant(0, 8), self = servant(0, 8);
  suspicious.reachable = 0;
  complained.complained_about = 1;
  self.is_client = 1;
  NMT_CHECK(!mgr_relay_can_serve(&full));
  NMT_CHECK(!mgr_relay_can_serve(&none)); /* max-clients 0: serves nobody */
  NMT_CHECK(!mgr_relay_can_serve(&suspicious));
  NMT_CHECK(!mgr_relay_can_serve(&complained));
  NMT_CHECK(!mgr_relay_can_serve(&self));
  mgr_relay_candidate pair_side = servant(0, 8);
  pair_side.excluded = 1; /* a reporter of the pair, or one the client complained about */
  NMT_CHECK(!mgr_relay_can_serve(&pair_side));
  mgr_relay_candidate busy = servant(7, 8);
  NMT_CHECK(mgr_relay_can_serve(&busy));
  /* each of them loses to a busier servant that can serve */
  mgr_relay_candidate c[] = {full, none, suspicious, complained, self, busy};
  NMT_EQ_INT(mgr_relay_choose(c, 6), 5);
  /* a dedicated relay is skipped for the same reasons */
  mgr_relay_candidate r = relay(0, 64);
  r.reachable = 0;
  mgr_relay_candidate d[] = {r, busy};
  NMT_EQ_INT(mgr_relay_choose(d, 2), 1);
  r.reachable = 1;
  r.complained_about = 1;
  mgr_relay_candidate e[] = {r, busy};
  NMT_EQ_INT(mgr_relay_choose(e, 2), 1);
  /* nobody can: -1 */
  NMT_EQ_INT(mgr_relay_choose(c, 5), -1);
  NMT_EQ_INT(mgr_relay_choose(NULL, 0), -1);
}

static void test_preferred(void) {
  /* the relay a reconnecting client had is kept, when it still can serve */
  mgr_relay_candidate c[] = {relay(0, 64), servant(4, 8), servant(0, 8)};
  c[1].preferred = 1;
  NMT_EQ_INT(mgr_relay_choose(c, 3), 1);
  /* not when it is full, suspicious or complained about */
  c[1].clients = 8;
  NMT_EQ_INT(mgr_relay_choose(c, 3), 0);
  c[1].clients = 4;
  c[1].reachable = 0;
  NMT_EQ_INT(mgr_relay_choose(c, 3), 0);
  c[1].reachable = 1;
  c[1].complained_about = 1;
  NMT_EQ_INT(mgr_relay_choose(c, 3), 0);
}

static void test_pair_exclusions(void) {
  /* The pair path: the best candidate (a dedicated relay) is one side of the pair the client
   * cannot connect, so the next best serves; with every candidate excluded, none does. */
  mgr_relay_candidate c[] = {servant(0, 8), relay(0, 64), servant(1, 8)};
  c[1].excluded = 1;
  NMT_EQ_INT(mgr_relay_choose(c, 3), 0);
  c[0].excluded = 1;
  NMT_EQ_INT(mgr_relay_choose(c, 3), 2);
  c[2].excluded = 1;
  NMT_EQ_INT(mgr_relay_choose(c, 3), -1);
  /* the preferred relay is not kept when it is excluded now */
  mgr_relay_candidate p[] = {servant(0, 8), servant(0, 8)};
  p[0].preferred = 1;
  p[0].excluded = 1;
  NMT_EQ_INT(mgr_relay_choose(p, 2), 1);
}

static void test_standby(void) {
  mgr_standby_input in = {.has_relay = 1, .all_direct = 1, .now_ms = 100000, .hold_ms = 5000};
  /* pulling, and every servant reaches it directly: standby */
  NMT_EQ_INT(mgr_standby_decide(&in), MGR_STANDBY_ENTER);
  /* not every one: it keeps pulling */
  in.all_direct = 0;
  NMT_EQ_INT(mgr_standby_decide(&in), MGR_STANDBY_KEEP);
  /* no relay (never relayed, or released): nothing to put on standby */
  in.all_direct = 1;
  in.has_relay = 0;
  NMT_EQ_INT(mgr_standby_decide(&in), MGR_STANDBY_KEEP);
  /* on standby: stays while it says all, back at once when it does not, whenever that is */
  in.has_relay = 1;
  in.standby = 1;
  in.since_ms = in.now_ms - 1;
  NMT_EQ_INT(mgr_standby_decide(&in), MGR_STANDBY_KEEP);
  in.all_direct = 0;
  NMT_EQ_INT(mgr_standby_decide(&in), MGR_STANDBY_LEAVE);
  /* on standby with its relay gone meanwhile (none kept yet): back all the same */
  in.has_relay = 0;
  NMT_EQ_INT(mgr_standby_decide(&in), MGR_STANDBY_LEAVE);
  /* back less than a heartbeat interval ago: not on standby again yet (a flapping path) */
  in.has_relay = 1;
  in.standby = 0;
  in.all_direct = 1;
  in.since_ms = in.now_ms - 4999;
  NMT_EQ_INT(mgr_standby_decide(&in), MGR_STANDBY_KEEP);
  in.since_ms = in.now_ms - 5000;
  NMT_EQ_INT(mgr_standby_decide(&in), MGR_STANDBY_ENTER);
}

int main(void) {
  NMT_RUN(test_dedicated_first);
  NMT_RUN(test_fewest_clients);
  NMT_RUN(test_longest_connected_among_equals);
  NMT_RUN(test_skips);
  NMT_RUN(test_pair_exclusions);
  NMT_RUN(test_preferred);
  NMT_RUN(test_standby);
  return nmt_done();
}
