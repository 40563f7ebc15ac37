/* nm_member (membership certificates for origins outside a servant's view) and the chat
 * and welcome attributes that carry them; the attack: a member forging lines. */
#include "nm_hex.h"
#include "nm_member.h"
#include "nm_msg.h"
#include "nmt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static nm_identity manager, alice, bob, mallory;

/* The canonical bytes are the protocol: pinned byte for byte. */
static void test_canonical_bytes(void) {
  unsigned char buf[NM_MEMBER_CANONICAL_MAX];
  char hex[2 * sizeof buf + 1];
  uint8_t key[NM_PUBKEY_LEN];
  for (int i = 0; i < NM_PUBKEY_LEN; i++) key[i] = (uint8_t)i;
  size_t n = 0;
  NMT_EQ_INT(nm_member_canonical("0123456789abcdef", key, "al", buf, sizeof buf, &n), 0);
  nm_hex_encode(buf, n, hex, sizeof hex);
  NMT_EQ_STR(hex, "00000011" "6e61746d6573682d6d656d6265722d7631"   /* u32 17, "natmesh-member-v1" */
                  "00000010" "30313233343536373839616263646566"     /* u32 16, the id */
                  "00000020" "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
                  "00000002" "616c");                                 /* u32 2, the name */
  NMT_EQ_INT(nm_member_canonical("0123456789abcdef", key, "al", buf, n - 1, &n), -EINVAL);
  NMT_EQ_INT(nm_member_canonical("0123456789ABCDEF", key, "al", buf, sizeof buf, &n), -EINVAL);
  NMT_EQ_INT(nm_member_canonical("0123456789abcdef", key, "", buf, sizeof buf, &n), -EINVAL);
}

static void test_sign_verify(void) {
  uint8_t cert[NM_MEMBER_CERT_LEN];
  NMT_EQ_INT(nm_member_sign(&manager, alice.id, alice.pub, "alice", cert), 0);
  NMT_EQ_INT(nm_member_verify(manager.pub, alice.id, alice.pub, "alice", cert), 0);
  /* Each field is covered. */
  NMT_EQ_INT(nm_member_verify(manager.pub, alice.id, alice.pub, "alicf", cert), -EBADMSG);
  NMT_EQ_INT(nm_member_verify(manager.pub, bob.id, bob.pub, "alice", cert), -EBADMSG);
  NMT_EQ_INT(nm_member_verify(manager.pub, bob.id, alice.pub, "alice", cert), -EBADMSG); /* id not the key's */
  NMT_EQ_INT(nm_member_verify(alice.pub, alice.id, alice.pub, "alice", cert), -EBADMSG); /* another "manager" */
  cert[7] ^= 1;
  NMT_EQ_INT(nm_member_verify(manager.pub, alice.id, alice.pub, "alice", cert), -EBADMSG);
  /* A member cannot mint one: its own key's signature is not the manager's. */
  NMT_EQ_INT(nm_member_sign(&mallory, bob.id, bob.pub, "bob", cert), 0);
  NMT_EQ_INT(nm_member_verify(manager.pub, bob.id, bob.pub, "bob", cert), -EBADMSG);
}

/* The cache: a hit costs no check, it never holds more than its cap, the clock keeps the
 * busy ones, and only verified quadruples get in. */
static void test_cache(void) {
  nm_member_cache c;
  NMT_EQ_INT(nm_member_cache_init(&c, 0), -EINVAL);
  NMT_EQ_INT(nm_member_cache_init(&c, 4), 0);
  enum { N = 10 };
  nm_identity ids[N];
  uint8_t certs[N][NM_MEMBER_CERT_LEN];
  for (int i = 0; i < N; i++) {
    NMT_EQ_INT(nm_identity_generate(&ids[i]), 0);
    char name[16];
    snprintf(name, sizeof name, "m%d", i);
    NMT_EQ_INT(nm_member_sign(&manager, ids[i].id, ids[i].pub, name, certs[i]), 0);
  }
  NMT_EQ_INT(nm_member_check(&c, manager.pub, ids[0].id, ids[0].pub, "m0", certs[0]), 0);
  NMT_EQ_INT((int)c.misses, 1);
  NMT_EQ_INT(nm_member_check(&c, manager.pub, ids[0].id, ids[0].pub, "m0", certs[0]), 0);
  NMT_EQ_INT((int)c.hits, 1);
  /* Cached, but another name with the same certificate is no hit, and fails. */
  NMT_EQ_INT(nm_member_check(&c, manager.pub, ids[0].id, ids[0].pub, "mX", certs[0]), -EBADMSG);
  NMT_EQ_INT((int)nm_member_cache_count(&c), 1);
  uint64_t busy_misses = 0, checks = 0;
  for (int round = 0; round < 3; round++)
    for (int i = 1; i < N; i++) {
      char name[16];
      snprintf(name, sizeof name, "m%d", i);
      NMT_EQ_INT(nm_member_check(&c, manager.pub, ids[i].id, ids[i].pub, name, certs[i]), 0);
      NMT_CHECK(nm_member_cache_count(&c) <= 4);
      /* 0 is busy: checked between every other, it mostly stays (the clock's second
       * chance), where the others (9 for 4 places) always miss. */
      uint64_t misses = c.misses;
      NMT_EQ_INT(nm_member_check(&c, manager.pub, ids[0].id, ids[0].pub, "m0", certs[0]), 0);
      busy_misses += c.misses - misses;
      checks++;
    }
  NMT_CHECK(busy_misses * 2 < checks);
  NMT_EQ_INT((int)nm_member_cache_count(&c), 4);
  NMT_CHECK(c.evictions > 0);
  nm_member_cache_close(&c);
  for (int i = 0; i < N; i++) nm_identity_close(&ids[i]);
}

/* A chat document as a servant in a bounded mesh sends it. */
static void make_line(nm_msg *m, const nm_identity *who, const char *name, const uint8_t cert[NM_MEMBER_CERT_LEN],
                      uint64_t seq, const char *text) {
  memset(m, 0, sizeof *m);
  m->type = NM_MSG_CHAT;
  nm_msg_chat *c = &m->u.chat;
  snprintf(c->origin, sizeof c->origin, "%s", who->id);
  snprintf(c->name, sizeof c->name, "%s", name);
  snprintf(c->text, sizeof c->text, "%s", text);
  c->epoch = 7;
  c->seq = seq;
  NMT_EQ_INT(nm_msg_chat_sign(c, who->key), 0);
  c->has_cert = 1;
  memcpy(c->key, who->pub, sizeof c->key);
  memcpy(c->cert, cert, NM_MEMBER_CERT_LEN);
}

/* What a servant outside the origin's view does with a line (chat.c, sv__chat_certified):
 * through the wire, then the certificate, then the line's signature. 0: shown. */
static int receive(nm_member_cache *cache, const nm_msg *sent) {
  nm_msgbuf b = {0};
  NMT_EQ_INT(nm_msg_encode(sent, &b), 0);
  static nm_msg got;
  char err[200];
  int rc = nm_msg_decode(NM_MSG_CHAT, b.data, b.len, &got, err, sizeof err);
  nm_msgbuf_free(&b);
  if (rc < 0) return rc;
  const nm_msg_chat *c = &got.u.chat;
  if (!c->has_cert) return -ENOENT;
  rc = nm_member_check(cache, manager.pub, c->origin, c->key, c->name, c->cert);
  if (rc == 0) rc = nm_msg_chat_verify(c, c->key);
  return rc;
}

static void test_attack(void) {
  nm_member_cache cache;
  NMT_EQ_INT(nm_member_cache_init(&cache, 16), 0);
  uint8_t alice_cert[NM_MEMBER_CERT_LEN], mallory_cert[NM_MEMBER_CERT_LEN], made_up[NM_MEMBER_CERT_LEN];
  NMT_EQ_INT(nm_member_sign(&manager, alice.id, alice.pub, "alice", alice_cert), 0);
  NMT_EQ_INT(nm_member_sign(&manager, mallory.id, mallory.pub, "mallory", mallory_cert), 0);
  static nm_msg m;
  /* The honest line is shown. */
  make_line(&m, &alice, "alice", alice_cert, 1, "hello");
  NMT_EQ_INT(receive(&cache, &m), 0);
  /* a. a made-up key and a made-up certificate (mallory signs it herself). */
  nm_identity stranger;
  NMT_EQ_INT(nm_identity_generate(&stranger), 0);
  NMT_EQ_INT(nm_member_sign(&mallory, stranger.id, stranger.pub, "bob", made_up), 0);
  make_line(&m, &stranger, "bob", made_up, 1, "I am bob");
  NMT_EQ_INT(receive(&cache, &m), -EBADMSG);
  /* b. alice's real certificate and key, altered text (mallory relays it). */
  make_line(&m, &alice, "alice", alice_cert, 2, "hello");
  snprintf(m.u.chat.text, sizeof m.u.chat.text, "send me your password");
  NMT_EQ_INT(receive(&cache, &m), -EBADMSG);
  /* ... and with the cache warm (alice's certificate was a hit): still refused. */
  NMT_CHECK(cache.hits > 0);
  /* c. mallory's real certificate for another name. */
  make_line(&m, &mallory, "alice", mallory_cert, 1, "I am alice");
  NMT_EQ_INT(receive(&cache, &m), -EBADMSG);
  /* d. mallory's certificate and key on a line whose origin is alice. */
  make_line(&m, &mallory, "mallory", mallory_cert, 1, "I am alice");
  snprintf(m.u.chat.origin, sizeof m.u.chat.origin, "%s", alice.id);
  NMT_EQ_INT(receive(&cache, &m), -EBADMSG);
  /* e. alice's certificate with mallory's key. */
  make_line(&m, &mallory, "alice", alice_cert, 1, "hi");
  snprintf(m.u.chat.origin, sizeof m.u.chat.origin, "%s", alice.id);
  NMT_EQ_INT(receive(&cache, &m), -EBADMSG);
  nm_identity_close(&stranger);
  nm_member_cache_close(&cache);
}

/* The wire: both attributes or none; welcome's four. */
static void test_wire(void) {
  char err[200];
  static nm_msg got;
  const char *sig = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
                    "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
  const char *key = "1111111111111111111111111111111111111111111111111111111111111111";
  char doc[1024];
  snprintf(doc, sizeof doc, "<chat origin=\"3f9a0c1d2e4b5a69\" name=\"a\" epoch=\"1\" seq=\"1\" sig=\"%s\">x</chat>", sig);
  NMT_EQ_INT(nm_msg_decode(NM_MSG_CHAT, doc, strlen(doc), &got, err, sizeof err), 0);
  NMT_CHECK(!got.u.chat.has_cert);
  snprintf(doc, sizeof doc,
           "<chat origin=\"3f9a0c1d2e4b5a69\" name=\"a\" epoch=\"1\" seq=\"1\" sig=\"%s\" key=\"%s\">x</chat>", sig, key);
  NMT_CHECK(nm_msg_decode(NM_MSG_CHAT, doc, strlen(doc), &got, err, sizeof err) < 0);
  snprintf(doc, sizeof doc,
           "<chat origin=\"3f9a0c1d2e4b5a69\" name=\"a\" epoch=\"1\" seq=\"1\" sig=\"%s\" key=\"%s\" cert=\"%s\">x</chat>",
           sig, key, sig);
  NMT_EQ_INT(nm_msg_decode(NM_MSG_CHAT, doc, strlen(doc), &got, err, sizeof err), 0);
  NMT_CHECK(got.u.chat.has_cert);
  NMT_EQ_INT(got.u.chat.key[0], 0x11);
  NMT_CHECK(!got.u.chat.has_signer);
  /* signer (several managers): the certificate's manager key, kept through a round trip;
   * malformed, the frame is refused. */
  snprintf(doc, sizeof doc,
           "<chat origin=\"3f9a0c1d2e4b5a69\" name=\"a\" epoch=\"1\" seq=\"1\" sig=\"%s\" key=\"%s\" cert=\"%s\" "
           "signer=\"%s\">x</chat>", sig, key, sig, "22222222222222222222222222222222222222222222222222222222222222222");
  NMT_CHECK(nm_msg_decode(NM_MSG_CHAT, doc, strlen(doc), &got, err, sizeof err) < 0);
  snprintf(doc, sizeof doc,
           "<chat origin=\"3f9a0c1d2e4b5a69\" name=\"a\" epoch=\"1\" seq=\"1\" sig=\"%s\" key=\"%s\" cert=\"%s\" "
           "signer=\"%s\">x</chat>", sig, key, sig, "2222222222222222222222222222222222222222222222222222222222222222");
  NMT_EQ_INT(nm_msg_decode(NM_MSG_CHAT, doc, strlen(doc), &got, err, sizeof err), 0);
  NMT_CHECK(got.u.chat.has_signer);
  NMT_EQ_INT(got.u.chat.signer[31], 0x22);
  {
    nm_msgbuf rb = {0};
    static nm_msg again;
    NMT_EQ_INT(nm_msg_encode(&got, &rb), 0);
    NMT_EQ_INT(nm_msg_decode(NM_MSG_CHAT, rb.data, rb.len, &again, err, sizeof err), 0);
    nm_msgbuf_free(&rb);
    NMT_CHECK(again.u.chat.has_signer && memcmp(again.u.chat.signer, got.u.chat.signer, NM_PUBKEY_LEN) == 0);
  }
  /* welcome: round trip */
  nm_msg w = {.type = NM_MSG_WELCOME};
  snprintf(w.u.welcome.id, sizeof w.u.welcome.id, "%s", alice.id);
  snprintf(w.u.welcome.ip, sizeof w.u.welcome.ip, "192.0.2.1");
  w.u.welcome.port = 4000;
  w.u.welcome.heartbeat_s = 5;
  w.u.welcome.timeout_s = 15;
  w.u.welcome.has_cert = 1;
  NMT_EQ_INT(nm_member_sign(&manager, alice.id, alice.pub, "alice", w.u.welcome.cert), 0);
  memcpy(w.u.welcome.key, alice.pub, NM_PUBKEY_LEN);
  snprintf(w.u.welcome.name, sizeof w.u.welcome.name, "alice");
  memcpy(w.u.welcome.manager_key, manager.pub, NM_PUBKEY_LEN);
  nm_msgbuf b = {0};
  NMT_EQ_INT(nm_msg_encode(&w, &b), 0);
  NMT_EQ_INT(nm_msg_decode(NM_MSG_WELCOME, b.data, b.len, &got, err, sizeof err), 0);
  nm_msgbuf_free(&b);
  NMT_CHECK(got.u.welcome.has_cert);
  NMT_EQ_STR(got.u.welcome.name, "alice");
  NMT_EQ_INT(nm_member_verify(got.u.welcome.manager_key, got.u.welcome.id, got.u.welcome.key,
                              got.u.welcome.name, got.u.welcome.cert), 0);
  /* a cert without the manager's key: refused */
  snprintf(doc, sizeof doc,
           "<welcome id=\"3f9a0c1d2e4b5a69\" ip=\"192.0.2.1\" port=\"4000\" heartbeat=\"5\" timeout=\"15\" "
           "cert=\"%s\" key=\"%s\" name=\"a\"/>", sig, key);
  NMT_CHECK(nm_msg_decode(NM_MSG_WELCOME, doc, strlen(doc), &got, err, sizeof err) < 0);
}

/* The views' wire: a leave marked view="out", and the heartbeat-ack's servants. */
static void test_view_wire(void) {
  char err[200];
  static nm_msg got;
  nm_delta_change ch[2];
  memset(ch, 0, sizeof ch);
  ch[0].leave = ch[1].leave = 1;
  ch[0].out_of_view = 1;
  snprintf(ch[0].peer.id, sizeof ch[0].peer.id, "3f9a0c1d2e4b5a69");
  snprintf(ch[1].peer.id, sizeof ch[1].peer.id, "0123456789abcdef");
  nm_msg d = {.type = NM_MSG_DELTA};
  d.u.delta.base = 7;
  d.u.delta.version = 9;
  d.u.delta.count = 2;
  d.u.delta.changes = ch;
  nm_msgbuf b = {0};
  NMT_EQ_INT(nm_msg_encode(&d, &b), 0);
  NMT_CHECK(strstr(b.data, "view=\"out\"") != NULL);
  NMT_EQ_INT(nm_msg_decode(NM_MSG_DELTA, b.data, b.len, &got, err, sizeof err), 0);
  nm_msgbuf_free(&b);
  NMT_CHECK(got.u.delta.changes[0].out_of_view && !got.u.delta.changes[1].out_of_view);
  nm_msg_clear(&got);
  nm_msg a = {.type = NM_MSG_HEARTBEAT_ACK};
  a.u.heartbeat_ack.version = 12;
  a.u.heartbeat_ack.servants = 19000;
  NMT_EQ_INT(nm_msg_encode(&a, &b), 0);
  NMT_EQ_INT(nm_msg_decode(NM_MSG_HEARTBEAT_ACK, b.data, b.len, &got, err, sizeof err), 0);
  nm_msgbuf_free(&b);
  NMT_EQ_INT((int)got.u.heartbeat_ack.servants, 19000);
  const char *old = "<heartbeat-ack version=\"3\"/>"; /* an older manager's: no servants */
  NMT_EQ_INT(nm_msg_decode(NM_MSG_HEARTBEAT_ACK, old, strlen(old), &got, err, sizeof err), 0);
  NMT_EQ_INT((int)got.u.heartbeat_ack.servants, 0);
}

int main(void) {
  NMT_CHECK(nm_identity_generate(&manager) == 0 && nm_identity_generate(&alice) == 0 &&
            nm_identity_generate(&bob) == 0 && nm_identity_generate(&mallory) == 0);
  NMT_RUN(test_canonical_bytes);
  NMT_RUN(test_sign_verify);
  NMT_RUN(test_cache);
  NMT_RUN(test_attack);
  NMT_RUN(test_wire);
  NMT_RUN(test_view_wire);
  nm_identity_close(&manager);
  nm_identity_close(&alice);
  nm_identity_close(&bob);
  nm_identity_close(&mallory);
  return nmt_done();
}
