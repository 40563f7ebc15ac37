/* nm_peerlist: the list, its XML document, me marking, validation, deltas. */
#include "nm_error.h"
#include "nm_peerlist.h"
#include "nm_xml.h"
#include "nmt.h"

#include <stdlib.h>

static nm_peer mk(const char *id, const char *name, const char *ip, uint16_t port) {
  nm_peer p;
  memset(&p, 0, sizeof p);
  snprintf(p.id, sizeof p.id, "%s", id);
  snprintf(p.name, sizeof p.name, "%s", name);
  snprintf(p.ip, sizeof p.ip, "%s", ip);
  p.port = port;
  /* A key of its own (any 32 nonzero bytes have a key's form): the id's bytes, then 0x5a. */
  memset(p.key, 0x5a, sizeof p.key);
  memcpy(p.key, id, strnlen(id, sizeof p.key));
  p.role = NM_ROLE_SERVANT;
  p.mapping = NM_MAPPING_NONE;
  p.state = NM_REACH_DIRECT;
  return p;
}

#define ID_A "00000000000000aa"
#define ID_B "00000000000000bb"
#define ID_C "00000000000000cc"
#define ID_R "77aa00bb11cc22dd"

/* Serializes, reparses through nm_xml_parse (as the wire does) and reads the list back. */
static int via_wire(const nm_peerlist *l, const char *me, nm_peerlist *out, char *me_out) {
  xmlDoc *doc = nm_peerlist_to_doc(l, me);
  char *buf;
  size_t len;
  nm_xml_dump(doc, &buf, &len);
  xmlFreeDoc(doc);
  char err[300];
  int rc = nm_xml_parse(buf, len, &doc, err, sizeof err);
  free(buf);
  if (rc < 0) return rc;
  rc = nm_peerlist_from_doc(doc, out, me_out, err, sizeof err);
  xmlFreeDoc(doc);
  return rc;
}

static void test_round_trip_and_me(void) {
  nm_peerlist l, back;
  nm_peerlist_init(&l);
  nm_peerlist_init(&back);
  l.version = 42;
  nm_peer a = mk(ID_A, "alice", "127.0.0.1", 4001);
  nm_peer b = mk(ID_B, "bob.b-2_x", "::1", 65535);
  b.state = NM_REACH_RELAYED;
  strcpy(b.relay, ID_R);
  b.mapping = NM_MAPPING_UPNP;
  nm_peer r = mk(ID_R, "relay1", "10.0.0.1", 1);
  r.role = NM_ROLE_RELAY;
  NMT_EQ_INT(nm_peerlist_upsert(&l, &a), 0);
  NMT_EQ_INT(nm_peerlist_upsert(&l, &b), 0);
  NMT_EQ_INT(nm_peerlist_upsert(&l, &r), 0);
  char me[NM_ID_LEN + 1];
  NMT_EQ_INT(via_wire(&l, ID_B, &back, me), 0);
  NMT_EQ_STR(me, ID_B);
  NMT_EQ_INT(back.version, 42);
  NMT_EQ_INT(back.count, 3);
  nm_peer *pb = nm_peerlist_find(&back, ID_B);
  NMT_CHECK(pb != NULL);
  if (pb) {
    NMT_EQ_STR(pb->name, "bob.b-2_x");
    NMT_EQ_STR(pb->ip, "::1");
    NMT_EQ_INT(pb->port, 65535);
    NMT_EQ_INT(pb->state, NM_REACH_RELAYED);
    NMT_EQ_STR(pb->relay, ID_R);
    NMT_CHECK(pb->mapping == NM_MAPPING_UPNP);
    NMT_EQ_INT(pb->me, 1);
    NMT_CHECK(nm_pubkey_equal(pb->key, b.key));
  }
  /* Only the asker's entry is marked. */
  int marked = 0;
  for (size_t i = 0; i < back.count; i++) marked += back.peers[i].me;
  NMT_EQ_INT(marked, 1);
  nm_peer *pr = nm_peerlist_find(&back, ID_R);
  NMT_CHECK(pr && pr->role == NM_ROLE_RELAY && pr->relay[0] == 0);
  NMT_CHECK(pr && nm_pubkey_equal(pr->key, r.key) && !nm_pubkey_equal(pr->key, b.key));
  /* Order is kept. */
  NMT_EQ_STR(back.peers[0].id, ID_A);
  NMT_EQ_STR(back.peers[2].id, ID_R);

  /* Nobody marked when the asker is not listed. */
  NMT_EQ_INT(via_wire(&l, NULL, &back, me), 0);
  NMT_EQ_STR(me, "");
  marked = 0;
  for (size_t i = 0; i < back.count; i++) marked += back.peers[i].me;
  NMT_EQ_INT(marked, 0);
  nm_peerlist_close(&l);
  nm_peerlist_close(&back);
}

static void test_me_element_in_document(void) {
  nm_peerlist l;
  nm_peerlist_init(&l);
  nm_peer a = mk(ID_A, "alice", "127.0.0.1", 4001), b = mk(ID_B, "bob", "127.0.0.1", 4002);
  nm_peerlist_upsert(&l, &a);
  nm_peerlist_upsert(&l, &b);
  xmlDoc *doc = nm_peerlist_to_doc(&l, ID_A);
  char *buf;
  size_t len;
  nm_xml_dump(doc, &buf, &len);
  /* The seed's spelling, exactly once. */
  char *first = strstr(buf, "<me>TRUE</me>");
  NMT_CHECK(first != NULL);
  NMT_CHECK(first && strstr(first + 1, "<me>TRUE</me>") == NULL);
  NMT_HAS(buf, "<peers version=\"0\">");
  /* The key as nm_pubkey_to_hex writes it, right after the id. */
  char hex[NM_KEY_HEX_LEN + 1], want[NM_KEY_HEX_LEN + 64];
  nm_pubkey_to_hex(a.key, hex);
  snprintf(want, sizeof want, "<id>" ID_A "</id><key>%s</key>", hex);
  NMT_HAS(buf, want);
  free(buf);
  xmlFreeDoc(doc);
  nm_peerlist_close(&l);
}

/* A document with one <peer> whose fields are given; returns from_doc's code. */
static int one_peer(const char *fields, char *err, size_t errlen) {
  char buf[1024];
  snprintf(buf, sizeof buf, "<peers version=\"3\"><peer>%s</peer></peers>", fields);
  xmlDoc *doc;
  int rc = nm_xml_parse(buf, strlen(buf), &doc, err, errlen);
  if (rc < 0) return rc;
  nm_peerlist l;
  nm_peerlist_init(&l);
  rc = nm_peerlist_from_doc(doc, &l, NULL, err, errlen);
  xmlFreeDoc(doc);
  nm_peerlist_close(&l);
  return rc;
}

static void expect_peer(const char *fields, int want_ok, const char *want_in_err) {
  char err[300] = "";
  int rc = one_peer(fields, err, sizeof err);
  if ((rc == 0) != want_ok) fprintf(stderr, "       case %s: rc %d (%s)\n", fields, rc, err);
  NMT_EQ_INT(rc == 0, want_ok);
  if (!want_ok && want_in_err) NMT_HAS(err, want_in_err);
}

#define GOOD_KEY "<key>0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef</key>"
#define GOOD_REST GOOD_KEY "<name>n</name><ip>1.2.3.4</ip><port>80</port>"

static void test_invalid_ids(void) {
  expect_peer("<id>00000000000000aa</id>" GOOD_REST, 1, NULL);
  expect_peer("<id>00000000000000AA</id>" GOOD_REST, 0, "<id>");  /* upper case */
  expect_peer("<id>00000000000000a</id>" GOOD_REST, 0, "<id>");   /* 15 chars */
  expect_peer("<id>00000000000000aaa</id>" GOOD_REST, 0, "<id>"); /* 17 chars */
  expect_peer("<id>00000000000000ag</id>" GOOD_REST, 0, "<id>");  /* not hex */
  expect_peer("<id></id>" GOOD_REST, 0, "<id>");
  expect_peer(GOOD_REST, 0, "<id>");
  NMT_CHECK(!nm_id_valid(NULL));
  NMT_CHECK(nm_id_valid("0123456789abcdef"));
}

#define GOOD_ID "<id>00000000000000aa</id>"

/* <key>: required, the raw Ed25519 public key as 64 lowercase hex characters, not zero. */
static void test_invalid_keys(void) {
  static const char *bad[] = {
      "",
      "0123",
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",   /* 63 */
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0", /* 65 */
      "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",  /* upper case */
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",  /* not hex */
      " 123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
      "0000000000000000000000000000000000000000000000000000000000000000",  /* no key */
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char f[256];
    snprintf(f, sizeof f, GOOD_ID "<key>%s</key><name>n</name><ip>1.2.3.4</ip><port>80</port>", bad[i]);
    expect_peer(f, 0, "peer 00000000000000aa has a missing or invalid <key>");
  }
  expect_peer(GOOD_ID "<name>n</name><ip>1.2.3.4</ip><port>80</port>", 0,
              "peer 00000000000000aa has a missing or invalid <key>");
  expect_peer(GOOD_ID GOOD_REST, 1, NULL);
  /* The helpers the programs compare and check keys with. */
  uint8_t k[NM_PUBKEY_LEN], k2[NM_PUBKEY_LEN];
  memset(k, 0, sizeof k);
  NMT_CHECK(!nm_pubkey_is_set(k));
  NMT_EQ_INT(nm_key_from_hex(bad[7], k), -EINVAL);
  NMT_EQ_INT(nm_key_from_hex(bad[4], k), -EINVAL);
  NMT_EQ_INT(nm_key_from_hex(NULL, k), -EINVAL);
  NMT_CHECK(!nm_pubkey_is_set(k)); /* untouched on failure */
  NMT_EQ_INT(nm_key_from_hex("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", k), 0);
  NMT_CHECK(nm_pubkey_is_set(k));
  NMT_EQ_INT(k[0], 0x01);
  NMT_EQ_INT(k[31], 0xef);
  char hex[NM_KEY_HEX_LEN + 1];
  nm_pubkey_to_hex(k, hex);
  NMT_EQ_STR(hex, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  NMT_CHECK(nm_key_hex_valid(hex));
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) NMT_CHECK(!nm_key_hex_valid(bad[i]));
  memcpy(k2, k, sizeof k);
  NMT_CHECK(nm_pubkey_equal(k, k2));
  k2[31] ^= 1;
  NMT_CHECK(!nm_pubkey_equal(k, k2));
}

static void test_invalid_names(void) {
  expect_peer(GOOD_ID GOOD_KEY "<name>abcdefghijklmnopqrstuvwxyz012345</name><ip>1.2.3.4</ip><port>80</port>", 1, NULL);
  expect_peer(GOOD_ID GOOD_KEY "<name>abcdefghijklmnopqrstuvwxyz0123456</name><ip>1.2.3.4</ip><port>80</port>", 0, "<name>");
  expect_peer(GOOD_ID GOOD_KEY "<name></name><ip>1.2.3.4</ip><port>80</port>", 0, "<name>");
  expect_peer(GOOD_ID GOOD_KEY "<ip>1.2.3.4</ip><port>80</port>", 0, "<name>");
  expect_peer(GOOD_ID GOOD_KEY "<name>a b</name><ip>1.2.3.4</ip><port>80</port>", 0, "<name>");
  expect_peer(GOOD_ID GOOD_KEY "<name>a&lt;b</name><ip>1.2.3.4</ip><port>80</port>", 0, "<name>");
  expect_peer(GOOD_ID GOOD_KEY "<name>a\"b</name><ip>1.2.3.4</ip><port>80</port>", 0, "<name>");
  expect_peer(GOOD_ID GOOD_KEY "<name>caf\xc3\xa9</name><ip>1.2.3.4</ip><port>80</port>", 0, "<name>");
  expect_peer(GOOD_ID GOOD_KEY "<name>a&#10;b</name><ip>1.2.3.4</ip><port>80</port>", 0, "<name>");
}

static void test_invalid_ports(void) {
  static const char *bad[] = {"0", "65536", "-1", "abc", "80x", "", "4294967377", "99999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char f[256];
    snprintf(f, sizeof f, GOOD_ID GOOD_KEY "<name>n</name><ip>1.2.3.4</ip><port>%s</port>", bad[i]);
    expect_peer(f, 0, "<port>");
  }
  expect_peer(GOOD_ID GOOD_KEY "<name>n</name><ip>1.2.3.4</ip>", 0, "<port>");
  expect_peer(GOOD_ID GOOD_KEY "<name>n</name><ip>1.2.3.4</ip><port>65535</port>", 1, NULL);
  expect_peer(GOOD_ID GOOD_KEY "<name>n</name><ip>1.2.3.4</ip><port>1</port>", 1, NULL);
}

static void test_invalid_ips(void) {
  static const char *bad[] = {"999.1.1.1", "localhost", "", "1.2.3", "1.2.3.4 ", "1.2.3.4:80", "::g"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char f[256];
    snprintf(f, sizeof f, GOOD_ID GOOD_KEY "<name>n</name><ip>%s</ip><port>80</port>", bad[i]);
    expect_peer(f, 0, "<ip>");
  }
  expect_peer(GOOD_ID GOOD_KEY "<name>n</name><port>80</port>", 0, "<ip>");
  expect_peer(GOOD_ID GOOD_KEY "<name>n</name><ip>fe80::1</ip><port>80</port>", 1, NULL);
}

/* <cand> children: kind, a usable literal address and a port each, at most NM_CANDS_MAX,
 * kept in order through the document. */
static void test_candidates(void) {
  nm_peerlist l, back;
  nm_peerlist_init(&l);
  nm_peerlist_init(&back);
  nm_peer a = mk(ID_A, "alice", "11.0.0.3", 4001);
  const nm_cand cands[] = {{"11.0.0.3", 4001, NM_CAND_MAPPED},
                           {"2001:db8::a", 4001, NM_CAND_OBSERVED},
                           {"192.168.1.10", 4001, NM_CAND_LOCAL}};
  a.ncands = 3;
  memcpy(a.cands, cands, sizeof cands);
  NMT_EQ_INT(nm_peerlist_upsert(&l, &a), 0);
  NMT_EQ_INT(via_wire(&l, NULL, &back, NULL), 0);
  nm_peer *p = nm_peerlist_find(&back, ID_A);
  if (NMT_CHECK(p)) {
    NMT_EQ_INT(p->ncands, 3);
    for (size_t i = 0; i < 3 && i < p->ncands; i++) {
      NMT_EQ_STR(p->cands[i].ip, cands[i].ip);
      NMT_EQ_INT(p->cands[i].port, cands[i].port);
      NMT_EQ_INT(p->cands[i].kind, cands[i].kind);
    }
  }
  nm_peerlist_close(&l);
  nm_peerlist_close(&back);

  expect_peer(GOOD_ID GOOD_REST "<cand kind=\"local\" ip=\"10.1.2.3\" port=\"9\"/>", 1, NULL);
  expect_peer(GOOD_ID GOOD_REST "<cand kind=\"lan\" ip=\"10.1.2.3\" port=\"9\"/>", 0, "<cand>");
  expect_peer(GOOD_ID GOOD_REST "<cand kind=\"local\" ip=\"127.0.0.1\" port=\"9\"/>", 0, "<cand>");
  expect_peer(GOOD_ID GOOD_REST "<cand kind=\"local\" ip=\"fe80::1\" port=\"9\"/>", 0, "<cand>");
  expect_peer(GOOD_ID GOOD_REST "<cand kind=\"local\" ip=\"10.1.2.3\" port=\"0\"/>", 0, "<cand>");
  expect_peer(GOOD_ID GOOD_REST "<cand kind=\"local\" ip=\"10.1.2.3\"/>", 0, "<cand>");
  expect_peer(GOOD_ID GOOD_REST "<cand ip=\"10.1.2.3\" port=\"9\"/>", 0, "<cand>");
  char many[2048] = GOOD_ID GOOD_REST;
  for (int i = 0; i <= NM_CANDS_MAX; i++) {
    char c[80];
    snprintf(c, sizeof c, "<cand kind=\"local\" ip=\"10.0.0.%d\" port=\"9\"/>", i + 1);
    strcat(many, c);
  }
  expect_peer(many, 0, "more than 8 candidates");
}

static void test_invalid_enums(void) {
  expect_peer(GOOD_ID GOOD_REST "<role>king</role>", 0, "<role>");
  expect_peer(GOOD_ID GOOD_REST "<state>happy</state>", 0, "<state>");
  expect_peer(GOOD_ID GOOD_REST "<mapping>magic</mapping>", 0, "<mapping>");
  expect_peer(GOOD_ID GOOD_REST "<relay>nothex</relay>", 0, "<relay>");
  expect_peer(GOOD_ID GOOD_REST "<role>relay</role><state>relayed</state><mapping>natpmp</mapping>"
              "<relay>77aa00bb11cc22dd</relay>", 1, NULL);
  /* Newer fields are ignored, both inside <peer> and beside it. */
  expect_peer(GOOD_ID GOOD_REST "<colour>blue</colour>", 1, NULL);
}

static void test_document_shape(void) {
  static const struct {
    const char *doc;
    const char *err;
  } cases[] = {
      {"<list version=\"1\"/>", "<peers>"},
      {"<peers/>", "version"},
      {"<peers version=\"x\"/>", "version"},
      {"<peers version=\"-1\"/>", "version"},
      {"<peers version=\"99999999999999999999999\"/>", "version"},
      {"<peers version=\"1\"><peer>" GOOD_ID GOOD_REST "</peer><peer>" GOOD_ID GOOD_KEY
       "<name>other</name><ip>1.1.1.1</ip><port>9</port></peer></peers>",
       "twice"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    xmlDoc *doc;
    char err[300] = "";
    NMT_EQ_INT(nm_xml_parse(cases[i].doc, strlen(cases[i].doc), &doc, err, sizeof err), 0);
    nm_peerlist l;
    nm_peerlist_init(&l);
    NMT_EQ_INT(nm_peerlist_from_doc(doc, &l, NULL, err, sizeof err), NM_EMSG);
    NMT_HAS(err, cases[i].err);
    xmlFreeDoc(doc);
    nm_peerlist_close(&l);
  }
  /* An empty list is a list. */
  xmlDoc *doc;
  char err[100];
  nm_xml_parse("<peers version=\"7\"><other/></peers>", 35, &doc, err, sizeof err);
  nm_peerlist l;
  nm_peerlist_init(&l);
  NMT_EQ_INT(nm_peerlist_from_doc(doc, &l, NULL, err, sizeof err), 0);
  NMT_EQ_INT(l.count, 0);
  NMT_EQ_INT(l.version, 7);
  xmlFreeDoc(doc);
  nm_peerlist_close(&l);
}

/* More than NM_PEERS_MAX peers in one document is refused (and the list never grows past). */
static void test_too_many_peers(void) {
  size_t n = NM_PEERS_MAX + 1;
  size_t cap = n * 260 + 64;
  char *buf = malloc(cap), *p = buf;
  p += sprintf(p, "<peers version=\"1\">");
  for (size_t i = 0; i < n; i++)
    p += sprintf(p, "<peer><id>%016zx</id>" GOOD_KEY "<name>n%zu</name><ip>10.0.0.1</ip><port>%zu</port></peer>",
                 i, i, 1 + i % 65535);
  p += sprintf(p, "</peers>");
  xmlDoc *doc;
  char err[300] = "";
  NMT_EQ_INT(nm_xml_parse(buf, (size_t)(p - buf), &doc, err, sizeof err), 0);
  nm_peerlist l;
  nm_peerlist_init(&l);
  NMT_CHECK(nm_peerlist_from_doc(doc, &l, NULL, err, sizeof err) < 0);
  NMT_HAS(err, "too many");
  NMT_CHECK(l.count <= NM_PEERS_MAX);
  xmlFreeDoc(doc);
  nm_peerlist_close(&l);
  free(buf);
}

static void test_list_operations(void) {
  nm_peerlist l;
  nm_peerlist_init(&l);
  nm_peer a = mk(ID_A, "alice", "127.0.0.1", 4001), b = mk(ID_B, "bob", "127.0.0.1", 4002);
  nm_peer c = mk(ID_C, "carol", "127.0.0.1", 4003);
  nm_peerlist_upsert(&l, &a);
  nm_peerlist_upsert(&l, &b);
  nm_peerlist_upsert(&l, &c);
  NMT_EQ_INT(l.count, 3);
  a.port = 5001;
  NMT_EQ_INT(nm_peerlist_upsert(&l, &a), 0); /* replace, not add */
  NMT_EQ_INT(l.count, 3);
  NMT_EQ_INT(nm_peerlist_find(&l, ID_A)->port, 5001);
  NMT_EQ_INT(nm_peerlist_remove(&l, ID_B), 0);
  NMT_EQ_INT(nm_peerlist_remove(&l, ID_B), -ENOENT);
  NMT_EQ_INT(l.count, 2);
  NMT_CHECK(nm_peerlist_find(&l, ID_B) == NULL);
  NMT_EQ_STR(l.peers[1].id, ID_C);
  /* Growth past the first allocation. */
  for (int i = 0; i < 100; i++) {
    nm_peer x = mk("", "x", "10.0.0.1", 1);
    snprintf(x.id, sizeof x.id, "%016x", 0x1000 + i);
    NMT_EQ_INT(nm_peerlist_upsert(&l, &x), 0);
  }
  NMT_EQ_INT(l.count, 102);
  nm_peerlist_clear(&l);
  NMT_EQ_INT(l.count, 0);
  nm_peerlist_close(&l);
}

/* Reads a delta document the way a servant would, applying it to list when base matches. */
static int apply_delta(nm_peerlist *l, xmlDoc *doc) {
  char *buf;
  size_t len;
  nm_xml_dump(doc, &buf, &len);
  char err[300];
  xmlDoc *d;
  int rc = nm_xml_parse(buf, len, &d, err, sizeof err);
  free(buf);
  if (rc < 0) return rc;
  xmlNode *root = xmlDocGetRootElement(d);
  unsigned base = 0, version = 0;
  rc = -1;
  if (strcmp((const char *)root->name, "delta") == 0 &&
      nm_xml_attr_uint(root, "base", 0, 1000000, &base) == 0 &&
      nm_xml_attr_uint(root, "version", 0, 1000000, &version) == 0 && base == l->version) {
    xmlNode *peer = nm_xml_child(root, "peer"), *leave = nm_xml_child(root, "leave");
    nm_peer p;
    if (peer && nm_peer_from_xml(peer, &p, err, sizeof err) == 0) rc = nm_peerlist_upsert(l, &p);
    else if (leave) rc = nm_peerlist_remove(l, nm_xml_attr(leave, "id"));
    if (rc == 0) l->version = version;
  }
  xmlFreeDoc(d);
  return rc;
}

static void test_deltas(void) {
  nm_peerlist manager, servant;
  nm_peerlist_init(&manager);
  nm_peerlist_init(&servant);
  nm_peer a = mk(ID_A, "alice", "127.0.0.1", 4001), b = mk(ID_B, "bob", "127.0.0.1", 4002);

  xmlDoc *d1 = nm_delta_upsert_doc(0, 1, &a);
  xmlNode *root = xmlDocGetRootElement(d1);
  NMT_EQ_STR(nm_xml_attr(root, "base"), "0");
  NMT_EQ_STR(nm_xml_attr(root, "version"), "1");
  NMT_EQ_STR(nm_xml_child_text(nm_xml_child(root, "peer"), "me"), "FALSE");
  xmlDoc *d2 = nm_delta_upsert_doc(1, 2, &b);
  xmlDoc *d3 = nm_delta_leave_doc(2, 3, ID_A);
  NMT_EQ_STR(nm_xml_attr(nm_xml_child(xmlDocGetRootElement(d3), "leave"), "id"), ID_A);

  NMT_EQ_INT(apply_delta(&servant, d1), 0);
  NMT_EQ_INT(apply_delta(&servant, d2), 0);
  NMT_CHECK(apply_delta(&servant, d2) != 0); /* base 1 no longer matches: refused */
  NMT_EQ_INT(apply_delta(&servant, d3), 0);
  NMT_EQ_INT(servant.version, 3);
  NMT_EQ_INT(servant.count, 1);
  NMT_EQ_STR(servant.peers[0].id, ID_B);

  /* The same end state as the manager's full list. */
  nm_peerlist_upsert(&manager, &b);
  manager.version = 3;
  nm_peerlist full;
  nm_peerlist_init(&full);
  NMT_EQ_INT(via_wire(&manager, NULL, &full, NULL), 0);
  NMT_EQ_INT(full.count, servant.count);
  NMT_EQ_INT(full.version, servant.version);
  NMT_EQ_STR(full.peers[0].name, servant.peers[0].name);
  NMT_CHECK(nm_pubkey_equal(full.peers[0].key, servant.peers[0].key));
  NMT_CHECK(nm_pubkey_equal(servant.peers[0].key, b.key));
  xmlFreeDoc(d1);
  xmlFreeDoc(d2);
  xmlFreeDoc(d3);
  nm_peerlist_close(&full);
  nm_peerlist_close(&manager);
  nm_peerlist_close(&servant);
}

/* The index by id stays true through many upserts and removals (the last entry moves into
 * each hole), and a lookup among 20,000 entries costs a hash, not a scan: 20,000 finds and
 * removals finish in well under a second (a scan would make 200 million comparisons). */
static void test_index_many(void) {
  nm_peerlist l;
  nm_peerlist_init(&l);
  l.max = 50000;
  enum { N = 20000 };
  for (int i = 0; i < N; i++) {
    nm_peer x = mk("", "x", "10.0.0.1", 1);
    snprintf(x.id, sizeof x.id, "%016x", 0x100000 + i);
    x.port = (uint16_t)(i % 60000 + 1);
    NMT_EQ_INT(nm_peerlist_upsert(&l, &x), 0);
  }
  NMT_EQ_INT(l.count, N);
  /* Remove every other one: each removal moves the last entry, whose index must follow. */
  for (int i = 0; i < N; i += 2) {
    char id[NM_ID_LEN + 1];
    snprintf(id, sizeof id, "%016x", 0x100000 + i);
    NMT_EQ_INT(nm_peerlist_remove(&l, id), 0);
  }
  NMT_EQ_INT(l.count, N / 2);
  int bad = 0;
  for (int i = 0; i < N; i++) {
    char id[NM_ID_LEN + 1];
    snprintf(id, sizeof id, "%016x", 0x100000 + i);
    nm_peer *p = nm_peerlist_find(&l, id);
    if (i % 2 == 0 ? p != NULL : (!p || strcmp(p->id, id) != 0 || p->port != (uint16_t)(i % 60000 + 1))) bad++;
  }
  NMT_EQ_INT(bad, 0);
  /* Every entry in the array is found at its own place. */
  for (size_t i = 0; i < l.count; i++) bad += nm_peerlist_find(&l, l.peers[i].id) != &l.peers[i];
  NMT_EQ_INT(bad, 0);
  /* The configured maximum holds. */
  l.max = l.count;
  nm_peer y = mk("ffffffffffffffff", "y", "10.0.0.2", 2);
  NMT_EQ_INT(nm_peerlist_upsert(&l, &y), -ENOSPC);
  nm_peerlist_clear(&l);
  NMT_CHECK(nm_peerlist_find(&l, "0000000000100001") == NULL);
  NMT_EQ_INT(nm_peerlist_upsert(&l, &y), 0);
  NMT_CHECK(nm_peerlist_find(&l, y.id) == &l.peers[0]);
  nm_peerlist_close(&l);
}

int main(void) {
  nm_xml_init();
  NMT_RUN(test_index_many);
  NMT_RUN(test_round_trip_and_me);
  NMT_RUN(test_me_element_in_document);
  NMT_RUN(test_invalid_ids);
  NMT_RUN(test_invalid_keys);
  NMT_RUN(test_invalid_names);
  NMT_RUN(test_invalid_ports);
  NMT_RUN(test_invalid_ips);
  NMT_RUN(test_invalid_enums);
  NMT_RUN(test_candidates);
  NMT_RUN(test_document_shape);
  NMT_RUN(test_too_many_peers);
  NMT_RUN(test_list_operations);
  NMT_RUN(test_deltas);
  xmlCleanupParser();
  return nmt_done();
}
