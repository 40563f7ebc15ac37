/* nm_cand: the dial order of a peer's candidates (tiers, the same-public-address rule,
 * IPv6 first within a tier, dedupe, the primary always there), each candidate's failure
 * memory, and one Happy Eyeballs round (250 ms stagger, 4 in flight, a failure starts the
 * next at once, first to win ends it). All in milliseconds of fake time. */
#include "nm_cand.h"
#include "nmt.h"

#include <stdio.h>
#include <string.h>

static nm_peer peer(const char *ip, uint16_t port, nm_mapping_kind mapping) {
  nm_peer p;
  memset(&p, 0, sizeof p);
  snprintf(p.ip, sizeof p.ip, "%s", ip);
  p.port = port;
  p.mapping = mapping;
  return p;
}

static void add(nm_peer *p, nm_cand_kind kind, const char *ip, uint16_t port) {
  nm_cand *c = &p->cands[p->ncands++];
  snprintf(c->ip, sizeof c->ip, "%s", ip);
  c->port = port;
  c->kind = kind;
}

/* The order as "ip:port kind, ..." for one readable comparison. */
static const char *order_str(const nm_peer *p, const char *our_ip, size_t *primary) {
  static char buf[1024];
  nm_cand out[NM_CAND_DIAL_MAX];
  size_t n = nm_cand_order(p, our_ip, out, primary);
  buf[0] = 0;
  for (size_t i = 0; i < n; i++) {
    char a[NM_ADDR_STRLEN];
    snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s %s", i ? ", " : "", nm_addr_str(out[i].ip, out[i].port, a),
             nm_cand_kind_name(out[i].kind));
  }
  return buf;
}

static void test_primary_alone(void) {
  /* No <cand>s (an old manager, or loopback where nothing is a candidate): the primary. */
  nm_peer p = peer("127.0.0.1", 4001, NM_MAPPING_NONE);
  size_t prim = 9;
  NMT_EQ_STR(order_str(&p, "127.0.0.1", &prim), "127.0.0.1:4001 observed");
  NMT_EQ_INT(prim, 0);
  p = peer("::1", 4001, NM_MAPPING_UPNP);
  NMT_EQ_STR(order_str(&p, NULL, &prim), "[::1]:4001 mapped");
  /* not a literal: nothing to dial */
  p = peer("", 4001, NM_MAPPING_NONE);
  NMT_EQ_STR(order_str(&p, NULL, &prim), "");
}

/* The manager's list for a servant behind a UPnP router: mapped, observed, locals. */
static nm_peer lan_peer(void) {
  nm_peer p = peer("198.51.100.7", 40001, NM_MAPPING_UPNP);
  add(&p, NM_CAND_MAPPED, "198.51.100.7", 40001);
  add(&p, NM_CAND_OBSERVED, "198.51.100.7", 4001);
  add(&p, NM_CAND_LOCAL, "192.168.1.11", 4001);
  add(&p, NM_CAND_LOCAL, "2001:db8::b", 4001);
  return p;
}

static void test_other_site_locals_last(void) {
  nm_peer p = lan_peer();
  size_t prim = 9;
  NMT_EQ_STR(order_str(&p, "203.0.113.9", &prim),
             "198.51.100.7:40001 mapped, 198.51.100.7:4001 observed, [2001:db8::b]:4001 local, 192.168.1.11:4001 local");
  NMT_EQ_INT(prim, 0);
  /* our address unknown yet: the same */
  NMT_EQ_STR(order_str(&p, "", &prim),
             "198.51.100.7:40001 mapped, 198.51.100.7:4001 observed, [2001:db8::b]:4001 local, 192.168.1.11:4001 local");
}

static void test_same_public_address_locals_first(void) {
  /* Both behind 198.51.100.7: its LAN addresses first (the router does not hairpin). */
  nm_peer p = lan_peer();
  size_t prim = 9;
  NMT_EQ_STR(order_str(&p, "198.51.100.7", &prim),
             "[2001:db8::b]:4001 local, 192.168.1.11:4001 local, 198.51.100.7:40001 mapped, 198.51.100.7:4001 observed");
  NMT_EQ_INT(prim, 2);
  /* Compared as addresses, not strings; and an observed <cand> equal to ours counts too
   * (the primary is the mapped address of another family). */
  nm_peer q = peer("2001:db8:1::7", 40001, NM_MAPPING_NATPMP);
  add(&q, NM_CAND_OBSERVED, "198.51.100.7", 4001);
  add(&q, NM_CAND_LOCAL, "10.0.0.5", 4001);
  NMT_EQ_STR(order_str(&q, "198.51.100.7", &prim),
             "10.0.0.5:4001 local, [2001:db8:1::7]:40001 mapped, 198.51.100.7:4001 observed");
  nm_peer r = peer("2001:db8:1:0::7", 4001, NM_MAPPING_NONE);
  add(&r, NM_CAND_LOCAL, "10.0.0.5", 4001);
  NMT_EQ_STR(order_str(&r, "2001:db8:1::7", &prim), "10.0.0.5:4001 local, [2001:db8:1:0::7]:4001 observed");
}

static void test_families_interleaved_ipv6_first(void) {
  nm_peer p = peer("203.0.113.5", 4001, NM_MAPPING_NONE);
  add(&p, NM_CAND_OBSERVED, "203.0.113.5", 4001);
  add(&p, NM_CAND_OBSERVED, "2001:db8::5", 4001);
  add(&p, NM_CAND_LOCAL, "10.0.0.5", 4001);
  add(&p, NM_CAND_LOCAL, "10.0.1.5", 4001);
  add(&p, NM_CAND_LOCAL, "fd00::5", 4001);
  add(&p, NM_CAND_LOCAL, "fd00::6", 4001);
  size_t prim = 9;
  NMT_EQ_STR(order_str(&p, NULL, &prim),
             "[2001:db8::5]:4001 observed, 203.0.113.5:4001 observed, "
             "[fd00::5]:4001 local, 10.0.0.5:4001 local, [fd00::6]:4001 local, 10.0.1.5:4001 local");
  NMT_EQ_INT(prim, 1);
  /* mapped before observed within the tier, the families still alternating */
  nm_peer q = peer("203.0.113.5", 40001, NM_MAPPING_UPNP);
  add(&q, NM_CAND_OBSERVED, "203.0.113.5", 4001);
  add(&q, NM_CAND_OBSERVED, "2001:db8::5", 4001);
  NMT_EQ_STR(order_str(&q, NULL, &prim),
             "[2001:db8::5]:4001 observed, 203.0.113.5:40001 mapped, 203.0.113.5:4001 observed");
}

static void test_dedupe_and_the_primary_always_there(void) {
  /* duplicates (also spelt differently) once; the primary though not a <cand> */
  nm_peer p = peer("127.0.0.1", 4001, NM_MAPPING_NONE);
  add(&p, NM_CAND_LOCAL, "2001:db8::b", 4001);
  add(&p, NM_CAND_LOCAL, "2001:0db8::b", 4001);
  add(&p, NM_CAND_LOCAL, "2001:db8::b", 4002); /* another port is another candidate */
  add(&p, NM_CAND_OBSERVED, "127.0.0.1", 4001);
  size_t prim = 9;
  NMT_EQ_STR(order_str(&p, NULL, &prim), "127.0.0.1:4001 observed, [2001:db8::b]:4001 local, [2001:db8::b]:4002 local");
  NMT_EQ_INT(prim, 0);
  /* eight locals behind our own address: the primary still makes it (nine in all) */
  nm_peer q = peer("198.51.100.7", 4001, NM_MAPPING_NONE);
  for (int i = 0; i < NM_CANDS_MAX; i++) {
    char ip[32];
    snprintf(ip, sizeof ip, "10.0.0.%d", i + 1);
    add(&q, NM_CAND_LOCAL, ip, 4001);
  }
  nm_cand out[NM_CAND_DIAL_MAX];
  NMT_EQ_INT(nm_cand_order(&q, "198.51.100.7", out, &prim), 9);
  NMT_EQ_INT(prim, 8);
  NMT_EQ_STR(out[8].ip, "198.51.100.7");
}

static void test_memory_backoff_per_candidate(void) {
  nm_cand_memory m;
  nm_cand_memory_reset(&m);
  NMT_CHECK(nm_cand_memory_ready(&m, "10.0.0.5", 4001, 0));
  nm_cand_memory_failed(&m, "10.0.0.5", 4001, 1000);
  NMT_CHECK(!nm_cand_memory_ready(&m, "10.0.0.5", 4001, 1999));
  NMT_CHECK(nm_cand_memory_ready(&m, "10.0.0.5", 4001, 2000));
  NMT_CHECK(nm_cand_memory_ready(&m, "10.0.0.6", 4001, 1000)); /* another address: its own */
  NMT_CHECK(nm_cand_memory_ready(&m, "10.0.0.5", 4002, 1000)); /* another port too */
  NMT_EQ_INT(nm_cand_memory_next_ready(&m, 1000), 2000);
  /* doubling, capped */
  nm_cand_memory_failed(&m, "10.0.0.5", 4001, 2000);
  NMT_CHECK(!nm_cand_memory_ready(&m, "10.0.0.5", 4001, 3999));
  NMT_CHECK(nm_cand_memory_ready(&m, "10.0.0.5", 4001, 4000));
  for (int i = 0; i < 40; i++) nm_cand_memory_failed(&m, "10.0.0.5", 4001, 10000);
  NMT_CHECK(!nm_cand_memory_ready(&m, "10.0.0.5", 4001, 10000 + NM_CAND_BACKOFF_MAX_MS - 1));
  NMT_CHECK(nm_cand_memory_ready(&m, "10.0.0.5", 4001, 10000 + NM_CAND_BACKOFF_MAX_MS));
  /* a success forgets it; so does a reset (the peer moved) */
  nm_cand_memory_succeeded(&m, "10.0.0.5", 4001);
  NMT_CHECK(nm_cand_memory_ready(&m, "10.0.0.5", 4001, 10000));
  nm_cand_memory_failed(&m, "::1", 1, 0);
  nm_cand_memory_reset(&m);
  NMT_CHECK(nm_cand_memory_ready(&m, "::1", 1, 0));
  NMT_EQ_INT(nm_cand_memory_next_ready(&m, 0), 0);
  /* full: the stalest entry makes room, never an overflow */
  for (int i = 0; i < 3 * NM_CAND_DIAL_MAX; i++) {
    char ip[32];
    snprintf(ip, sizeof ip, "10.0.1.%d", i + 1);
    nm_cand_memory_failed(&m, ip, 4001, (uint64_t)i);
  }
  NMT_EQ_INT(m.n, NM_CAND_DIAL_MAX);
  NMT_CHECK(!nm_cand_memory_ready(&m, "10.0.1.27", 4001, 27));
  NMT_CHECK(nm_cand_memory_ready(&m, "10.0.1.1", 4001, 27));
}

/* Six candidates: the primary (observed) and five locals of another site. */
static nm_peer six(void) {
  nm_peer p = peer("203.0.113.5", 4001, NM_MAPPING_NONE);
  for (int i = 0; i < 5; i++) {
    char ip[32];
    snprintf(ip, sizeof ip, "10.0.0.%d", i + 1);
    add(&p, NM_CAND_LOCAL, ip, 4001);
  }
  return p;
}

static void test_round_staggers_and_caps_in_flight(void) {
  nm_peer p = six();
  nm_cand_round r;
  uint64_t wake = 0;
  NMT_EQ_INT(nm_cand_round_begin(&r, &p, NULL, NULL, 1000), 6);
  NMT_EQ_INT(nm_cand_round_next(&r, 1000, &wake), 0); /* the first at once */
  NMT_EQ_INT(wake, 1250);
  NMT_EQ_INT(nm_cand_round_next(&r, 1000, &wake), -1); /* the next only 250 ms later */
  NMT_EQ_INT(wake, 1250);
  NMT_EQ_INT(nm_cand_round_next(&r, 1249, &wake), -1);
  NMT_EQ_INT(nm_cand_round_next(&r, 1250, &wake), 1);
  NMT_EQ_INT(nm_cand_round_next(&r, 1500, &wake), 2);
  NMT_EQ_INT(nm_cand_round_next(&r, 1750, &wake), 3);
  NMT_EQ_INT(wake, 0); /* four in flight: nothing more until one ends */
  NMT_EQ_INT(nm_cand_round_next(&r, 5000, &wake), -1);
  NMT_EQ_INT(r.in_flight, 4);
  NMT_CHECK(!nm_cand_round_over(&r));
  /* a failure starts the next at once */
  nm_cand_round_failed(&r, 1);
  NMT_EQ_INT(nm_cand_round_next(&r, 1800, &wake), 4);
  NMT_EQ_INT(nm_cand_round_next(&r, 1800, &wake), -1);
  /* the winner ends the round; the rest in flight are cancelled */
  nm_cand_round_won(&r, 3);
  NMT_CHECK(nm_cand_round_over(&r));
  NMT_CHECK(!nm_cand_round_all_failed(&r));
  NMT_EQ_INT(r.won, 4);
  NMT_EQ_INT(r.state[0], NM_CAND_CANCELLED);
  NMT_EQ_INT(r.state[2], NM_CAND_CANCELLED);
  NMT_EQ_INT(r.state[4], NM_CAND_CANCELLED);
  NMT_EQ_INT(r.state[1], NM_CAND_FAILED);
  NMT_EQ_INT(r.state[5], NM_CAND_IDLE);
  NMT_EQ_INT(nm_cand_round_next(&r, 9000, &wake), -1); /* over: nothing more starts */
  /* a late failure report changes nothing */
  nm_cand_round_failed(&r, 0);
  NMT_EQ_INT(r.failed, 1);
}

static void test_round_all_failed(void) {
  nm_peer p = six();
  nm_cand_round r;
  nm_cand_round_begin(&r, &p, NULL, NULL, 0);
  uint64_t now = 0;
  int i;
  size_t started = 0;
  /* each attempt fails at once: the next starts without waiting */
  while ((i = nm_cand_round_next(&r, now, NULL)) >= 0) {
    started++;
    NMT_CHECK(!nm_cand_round_over(&r));
    nm_cand_round_failed(&r, (size_t)i);
  }
  NMT_EQ_INT(started, 6);
  NMT_CHECK(nm_cand_round_over(&r));
  NMT_CHECK(nm_cand_round_all_failed(&r));
  NMT_EQ_INT(r.failed, 6);
}

static void test_round_skips_candidates_in_backoff_never_the_primary(void) {
  nm_peer p = lan_peer();
  nm_cand_memory m;
  nm_cand_memory_reset(&m);
  nm_cand_memory_failed(&m, "198.51.100.7", 40001, 0); /* the primary */
  nm_cand_memory_failed(&m, "192.168.1.11", 4001, 0);
  nm_cand_round r;
  NMT_EQ_INT(nm_cand_round_begin(&r, &p, "198.51.100.7", &m, 500), 3);
  NMT_EQ_INT(r.primary, 2);
  NMT_EQ_INT(r.state[1], NM_CAND_SKIPPED);
  NMT_EQ_INT(nm_cand_round_next(&r, 500, NULL), 0);
  nm_cand_round_failed(&r, 0);
  NMT_EQ_INT(nm_cand_round_next(&r, 500, NULL), 2); /* 1 skipped */
  nm_cand_round_failed(&r, 2);
  NMT_EQ_INT(nm_cand_round_next(&r, 500, NULL), 3);
  nm_cand_round_failed(&r, 3);
  NMT_EQ_INT(nm_cand_round_next(&r, 500, NULL), -1);
  NMT_CHECK(nm_cand_round_all_failed(&r));
  /* after its backoff it is back */
  NMT_EQ_INT(nm_cand_round_begin(&r, &p, "198.51.100.7", &m, 1000), 4);
}

int main(void) {
  NMT_RUN(test_primary_alone);
  NMT_RUN(test_other_site_locals_last);
  NMT_RUN(test_same_public_address_locals_first);
  NMT_RUN(test_families_interleaved_ipv6_first);
  NMT_RUN(test_dedupe_and_the_primary_always_there);
  NMT_RUN(test_memory_backoff_per_candidate);
  NMT_RUN(test_round_staggers_and_caps_in_flight);
  NMT_RUN(test_round_all_failed);
  NMT_RUN(test_round_skips_candidates_in_backoff_never_the_primary);
  return nmt_done();
}
