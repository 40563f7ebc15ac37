/* The store's record of a servant (shared.c): its published entry and its private fields go
 * in and come back unchanged; a record that is not one well-formed entry is refused with a
 * reason, never half read. The records come from Redis, which every manager of the overlay
 * writes: a manager must not trust one blindly. */
#include "manager.h"
#include "shared.h"
#include "nm_log.h"
#include "nmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static nm_peer sample(void) {
  nm_peer p;
  memset(&p, 0, sizeof p);
  snprintf(p.id, sizeof p.id, "0123456789abcdef");
  snprintf(p.name, sizeof p.name, "alice");
  p.role = NM_ROLE_SERVANT;
  snprintf(p.ip, sizeof p.ip, "198.51.100.7");
  p.port = 4001;
  p.state = NM_REACH_RELAYED;
  snprintf(p.relay, sizeof p.relay, "fedcba9876543210");
  for (int i = 0; i < NM_PUBKEY_LEN; i++) p.key[i] = (uint8_t)(i + 1);
  p.ncands = 1;
  snprintf(p.cands[0].ip, sizeof p.cands[0].ip, "198.51.100.7");
  p.cands[0].port = 4001;
  return p;
}

static void test_round_trip(void) {
  nm_peer p = sample(), q;
  mgr_shared_private priv = {"0123456789abcdef0123456789abcdef", 1, 0, 1}, back;
  char *rec = NULL, err[200] = "";
  size_t len = 0;
  NMT_EQ_INT(mgr_shared_record_encode(&p, &priv, &rec, &len), 0);
  NMT_EQ_INT(mgr_shared_record_decode(rec, len, &q, &back, err, sizeof err), 0);
  NMT_EQ_STR(q.id, p.id);
  NMT_EQ_STR(q.name, "alice");
  NMT_EQ_STR(q.ip, "198.51.100.7");
  NMT_EQ_INT(q.port, 4001);
  NMT_EQ_INT(q.state, NM_REACH_RELAYED);
  NMT_EQ_STR(q.relay, "fedcba9876543210");
  NMT_CHECK(memcmp(q.key, p.key, NM_PUBKEY_LEN) == 0);
  NMT_EQ_INT(q.ncands, 1);
  NMT_EQ_STR(back.token, priv.token);
  NMT_EQ_INT(back.pair, 1);
  NMT_EQ_INT(back.provisional, 0);
  NMT_EQ_INT(back.standby, 1);
  free(rec);
  /* No token: written "-", read back empty. */
  mgr_shared_private none = {"", 0, 1, 0};
  NMT_EQ_INT(mgr_shared_record_encode(&p, &none, &rec, &len), 0);
  NMT_CHECK(strncmp(rec, "t=- ", 4) == 0);
  NMT_EQ_INT(mgr_shared_record_decode(rec, len, &q, &back, err, sizeof err), 0);
  NMT_EQ_STR(back.token, "");
  NMT_EQ_INT(back.provisional, 1);
  free(rec);
}

/* Each one refused, with a reason. */
static void refused(const char *rec, const char *why) {
  nm_peer q;
  mgr_shared_private back;
  char err[200] = "";
  int rc = mgr_shared_record_decode(rec, strlen(rec), &q, &back, err, sizeof err);
  if (rc >= 0 || !err[0]) fprintf(stderr, "  accepted (%s): %.80s\n", why, rec);
  NMT_CHECK(rc < 0 && err[0]);
}

static void test_hostile(void) {
  char *rec = NULL;
  size_t len = 0;
  nm_peer p = sample();
  mgr_shared_private priv = {"", 0, 0, 0};
  NMT_EQ_INT(mgr_shared_record_encode(&p, &priv, &rec, &len), 0);
  const char *xml = strchr(rec, '\n') + 1;
  char buf[8192];
  refused("", "empty");
  refused("t=- p=0 v=0 s=0", "no entry line");
  snprintf(buf, sizeof buf, "%s", xml);
  refused(buf, "no private line");
  snprintf(buf, sizeof buf, "t=- p=2 v=0 s=0\n%s", xml);
  refused(buf, "a flag past 1");
  snprintf(buf, sizeof buf, "t=- p=-1 v=0 s=0\n%s", xml);
  refused(buf, "a negative flag");
  snprintf(buf, sizeof buf, "t=0123 p=0 v=0 s=0\n%s", xml);
  refused(buf, "a short token");
  snprintf(buf, sizeof buf, "t=0123456789ABCDEF0123456789abcdef p=0 v=0 s=0\n%s", xml);
  refused(buf, "an uppercase token");
  snprintf(buf, sizeof buf, "t=- p=0 v=0 s=0\n<delta base=\"0\" version=\"1\"><leave id=\"%s\"/></delta>", p.id);
  refused(buf, "a leave, not an entry");
  snprintf(buf, sizeof buf, "t=- p=0 v=0 s=0\n<!DOCTYPE x [<!ENTITY a \"b\">]><delta base=\"0\" version=\"1\">&a;</delta>");
  refused(buf, "a DTD");
  snprintf(buf, sizeof buf, "t=- p=0 v=0 s=0\n%.*s", (int)(strlen(xml) / 2), xml);
  refused(buf, "a cut entry");
  free(rec);
}

int main(void) {
  nm_log_init("unit_mgr_shared", NM_LOG_ERROR);
  NMT_RUN(test_round_trip);
  NMT_RUN(test_hostile);
  return nmt_done();
}
