/* The manager's candidate list for a servant (src/manager/cands.c): the order the protocol
 * promises (mapped, observed, locals), the skips (not a candidate, duplicate) and the cap. */
#include "cands.h"
#include "nm_msg.h" /* NM_LOCAL_ADDRS_MAX */
#include "nmt.h"

static void test_order(void) {
  const char local[3][NM_IP_STRLEN] = {"192.168.1.20", "2001:db8::b", "fd00::7"};
  mgr_cand_source src = {"203.0.113.7", 40001, "198.51.100.9", "", 4001, local, 3, 0};
  nm_cand c[NM_CANDS_MAX];
  NMT_EQ_INT(mgr_cands_build(&src, c), 5);
  NMT_EQ_STR(c[0].ip, "203.0.113.7");
  NMT_EQ_INT(c[0].port, 40001);
  NMT_EQ_INT(c[0].kind, NM_CAND_MAPPED);
  NMT_EQ_STR(c[1].ip, "198.51.100.9");
  NMT_EQ_INT(c[1].port, 4001);
  NMT_EQ_INT(c[1].kind, NM_CAND_OBSERVED);
  NMT_EQ_STR(c[2].ip, "192.168.1.20");
  NMT_EQ_INT(c[2].kind, NM_CAND_LOCAL);
  NMT_EQ_INT(c[2].port, 4001); /* locals on its listening port */
  NMT_EQ_STR(c[3].ip, "2001:db8::b");
  NMT_EQ_STR(c[4].ip, "fd00::7");
  /* without a mapping the observed address comes first */
  src.ext_ip = "";
  NMT_EQ_INT(mgr_cands_build(&src, c), 4);
  NMT_EQ_INT(c[0].kind, NM_CAND_OBSERVED);
  src.ext_ip = NULL;
  NMT_EQ_INT(mgr_cands_build(&src, c), 4);
  src.ext_ip = "203.0.113.7";
  src.ext_port = 0; /* no port: no mapping */
  NMT_EQ_INT(mgr_cands_build(&src, c), 4);
}

/* The address an observe session came from over the servant's other family follows the
 * observed one, as observed; a local address equal to it is not listed again. */
static void test_other_family(void) {
  const char local[2][NM_IP_STRLEN] = {"2001:db8::b", "192.168.1.20"};
  mgr_cand_source src = {"", 0, "198.51.100.9", "2001:db8::b", 4001, local, 2, 0};
  nm_cand c[NM_CANDS_MAX];
  NMT_EQ_INT(mgr_cands_build(&src, c), 3);
  NMT_EQ_STR(c[0].ip, "198.51.100.9");
  NMT_EQ_INT(c[0].kind, NM_CAND_OBSERVED);
  NMT_EQ_STR(c[1].ip, "2001:db8::b");
  NMT_EQ_INT(c[1].kind, NM_CAND_OBSERVED);
  NMT_EQ_STR(c[2].ip, "192.168.1.20");
  NMT_EQ_INT(c[2].kind, NM_CAND_LOCAL);
}

static void test_skips(void) {
  /* a servant on a public IPv6 address reports it as local too: listed once, as observed;
   * the same address on another port is another candidate */
  const char local[6][NM_IP_STRLEN] = {"2001:db8:0:0::b", "127.0.0.1", "fe80::1", "::ffff:10.0.0.1",
                                       "224.0.0.1", "10.0.0.5"};
  mgr_cand_source src = {"2001:db8::b", 4001, "2001:db8::b", NULL, 4001, local, 6, 0};
  nm_cand c[NM_CANDS_MAX];
  NMT_EQ_INT(mgr_cands_build(&src, c), 2);
  NMT_EQ_STR(c[0].ip, "2001:db8::b");
  NMT_EQ_INT(c[0].kind, NM_CAND_MAPPED);
  NMT_EQ_STR(c[1].ip, "10.0.0.5");
  src.ext_port = 40001;
  NMT_EQ_INT(mgr_cands_build(&src, c), 3);
  NMT_EQ_INT(c[1].kind, NM_CAND_OBSERVED);
  /* on loopback (the tests): the observed address is no candidate, nothing is published
   * (peers dial the primary address, which is always tried) */
  mgr_cand_source lo = {"", 0, "127.0.0.1", "", 4001, local, 0, 0};
  NMT_EQ_INT(mgr_cands_build(&lo, c), 0);
  mgr_cand_source v6lo = {"", 0, "::1", "::1", 4001, NULL, 0, 0};
  NMT_EQ_INT(mgr_cands_build(&v6lo, c), 0);
}

static void test_cap(void) {
  char local[NM_LOCAL_ADDRS_MAX][NM_IP_STRLEN];
  for (int i = 0; i < NM_LOCAL_ADDRS_MAX; i++) snprintf(local[i], sizeof local[i], "10.0.0.%d", i + 1);
  mgr_cand_source src = {"203.0.113.7", 40001, "198.51.100.9", "2001:db8::9", 4001, (const char(*)[NM_IP_STRLEN])local,
                         NM_LOCAL_ADDRS_MAX, 0};
  nm_cand c[NM_CANDS_MAX];
  NMT_EQ_INT(mgr_cands_build(&src, c), NM_CANDS_MAX);
  NMT_EQ_INT(c[0].kind, NM_CAND_MAPPED);
  NMT_EQ_INT(c[1].kind, NM_CAND_OBSERVED);
  NMT_EQ_INT(c[2].kind, NM_CAND_OBSERVED); /* its other family's observed address */
  NMT_EQ_STR(c[2].ip, "2001:db8::9");
  NMT_EQ_STR(c[NM_CANDS_MAX - 1].ip, "10.0.0.5"); /* the last three locals do not fit */
}

/* Behind NAT or not, from the registration alone (mgr_nat_judge): the observed address
 * among its own ones (any spelling) is no NAT, none of them is NAT, and without its own
 * addresses or from loopback the manager cannot tell. */
static void test_nat_judge(void) {
  const char local[2][NM_IP_STRLEN] = {"192.168.1.20", "2001:db8::b"};
  NMT_EQ_INT(mgr_nat_judge("198.51.100.9", local, 2), MGR_NAT_BEHIND);
  NMT_EQ_INT(mgr_nat_judge("192.168.1.20", local, 2), MGR_NAT_NONE);
  NMT_EQ_INT(mgr_nat_judge("2001:db8:0::b", local, 2), MGR_NAT_NONE); /* another spelling */
  NMT_EQ_INT(mgr_nat_judge("2001:db8::c", local, 2), MGR_NAT_BEHIND);
  NMT_EQ_INT(mgr_nat_judge("198.51.100.9", local, 0), MGR_NAT_UNKNOWN); /* none reported */
  NMT_EQ_INT(mgr_nat_judge("127.0.0.1", local, 2), MGR_NAT_UNKNOWN);    /* the same machine */
  NMT_EQ_INT(mgr_nat_judge("::1", local, 2), MGR_NAT_UNKNOWN);
  NMT_EQ_INT(mgr_nat_judge("", local, 2), MGR_NAT_UNKNOWN);
  NMT_EQ_INT(mgr_nat_judge(NULL, local, 2), MGR_NAT_UNKNOWN);
  NMT_EQ_STR(mgr_nat_seen_name(MGR_NAT_BEHIND), "behind");
  NMT_EQ_STR(mgr_nat_seen_name((mgr_nat_seen)9), "unknown");
}

/* Behind NAT (issue 12): the observed address with its session's source port, kind punch,
 * last (it never takes a dialable candidate's place); skipped when it is the observed one
 * (the session left from the listening port through a port-preserving NAT). */
static void test_punch(void) {
  const char local[1][NM_IP_STRLEN] = {"192.168.1.20"};
  mgr_cand_source src = {"", 0, "198.51.100.9", "", 4001, local, 1, 40777};
  nm_cand c[NM_CANDS_MAX];
  NMT_EQ_INT(mgr_cands_build(&src, c), 3);
  NMT_EQ_INT(c[0].kind, NM_CAND_OBSERVED);
  NMT_EQ_INT(c[1].kind, NM_CAND_LOCAL);
  NMT_EQ_INT(c[2].kind, NM_CAND_PUNCH);
  NMT_EQ_STR(c[2].ip, "198.51.100.9");
  NMT_EQ_INT(c[2].port, 40777);
  src.punch_port = 4001;
  NMT_EQ_INT(mgr_cands_build(&src, c), 2);
  NMT_EQ_INT(c[1].kind, NM_CAND_LOCAL);
}

int main(void) {
  NMT_RUN(test_nat_judge);
  NMT_RUN(test_punch);
  NMT_RUN(test_order);
  NMT_RUN(test_other_family);
  NMT_RUN(test_skips);
  NMT_RUN(test_cap);
  return nmt_done();
}
