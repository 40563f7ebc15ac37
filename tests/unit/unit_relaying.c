/* Relay duty (relay/relaying.c) without a network: who may attach (the manager's client,
 * with its token and its key, nobody else), clients dropped when relay-serve no longer
 * names them with that key, and a replay ring that stays within its byte bound whatever
 * the lines' size. Connections are initialized but never connected: sends fail and count
 * as drops, which is all relay duty needs here (and lets the direct test count what is sent). */
#include "relaying.h"
#include "nm_error.h"
#include "nmt.h"

#include <stdlib.h>

static uv_loop_t *loop;

static nm_relay_client client(const char *id, const char *token, uint8_t key_byte) {
  nm_relay_client c;
  memset(&c, 0, sizeof c);
  snprintf(c.id, sizeof c.id, "%s", id);
  snprintf(c.token, sizeof c.token, "%s", token);
  memset(c.key, key_byte, sizeof c.key);
  return c;
}

static nm_fingerprint fp_of(uint8_t key_byte) {
  uint8_t key[NM_PUBKEY_LEN];
  memset(key, key_byte, sizeof key);
  nm_fingerprint fp;
  nm_fingerprint_of_pubkey(key, &fp);
  return fp;
}

#define ID_A "0123456789abcdef"
#define ID_B "fedcba9876543210"
#define TOKEN "00112233445566778899aabbccddeeff"
#define TOKEN2 "ffeeddccbbaa99887766554433221100"

typedef struct {
  nm_conn conn;
  rl_client client;
  int closed;
} fake_conn;

static void on_closed(nm_conn *c) { ((fake_conn *)c->data)->closed = 1; }

static fake_conn *new_conn(void) {
  fake_conn *f = calloc(1, sizeof *f);
  nm_conn_init(loop, &f->conn, NULL, on_closed, f);
  return f;
}

static void test_attach_checks_token_and_key(void) {
  rl_duty d;
  rl_limits lim = {.max_clients = 8};
  rl_init(&d, loop, "aaaaaaaaaaaaaaaa", &lim);
  nm_relay_client list[1] = {client(ID_A, TOKEN, 7)};
  rl_serve(&d, list, 1);
  fake_conn *f = new_conn();
  char err[200];
  nm_fingerprint right = fp_of(7), wrong = fp_of(8);
  /* not assigned */
  NMT_EQ_INT(rl_attach(&d, &f->client, &f->conn, ID_B, TOKEN, &right, NULL, err, sizeof err), NM_EMSG);
  NMT_HAS(err, "not assigned to this relay");
  /* wrong token */
  NMT_EQ_INT(rl_attach(&d, &f->client, &f->conn, ID_A, TOKEN2, &right, NULL, err, sizeof err), NM_EMSG);
  /* the right token, another key: the token alone is not enough */
  NMT_EQ_INT(rl_attach(&d, &f->client, &f->conn, ID_A, TOKEN, &wrong, NULL, err, sizeof err), NM_EKEY);
  NMT_HAS(err, "key is not the one the manager gave");
  NMT_EQ_INT(rl_attach(&d, &f->client, &f->conn, ID_A, TOKEN, NULL, NULL, err, sizeof err), NM_EKEY);
  NMT_EQ_INT(rl_nattached(&d), 0);
  /* all three right */
  NMT_EQ_INT(rl_attach(&d, &f->client, &f->conn, ID_A, TOKEN, &right, "alice", err, sizeof err), 0);
  NMT_EQ_INT(rl_nattached(&d), 1);
  /* relay-serve now names the client with another key: dropped */
  list[0] = client(ID_A, TOKEN, 9);
  rl_serve(&d, list, 1);
  NMT_EQ_INT(rl_nattached(&d), 0);
  NMT_CHECK(f->conn.closing);
  rl_close(&d);
  uv_run(loop, UV_RUN_DEFAULT);
  NMT_CHECK(f->closed);
  free(f);
}

/* Issue 9: 300 chat frames of 1 MiB took a servant from 5 to 306 MiB through its ring. */
static void test_ring_bounded_in_bytes(void) {
  rl_duty d;
  rl_limits lim = {.max_clients = 8};
  rl_init(&d, loop, "aaaaaaaaaaaaaaaa", &lim);
  size_t big = 1u << 20;
  char *payload = calloc(1, big);
  for (int i = 0; i < 300; i++) {
    rl_forward(&d, ID_A, payload, big - 64);
    NMT_CHECK(rl_recent_bytes(&d) <= RL_RECENT_BYTES_MAX);
  }
  NMT_CHECK(rl_nrecent(&d) <= 4);
  for (int i = 0; i < 3000; i++) rl_forward(&d, ID_B, "x", 1);
  NMT_EQ_INT(rl_nrecent(&d), RL_RECENT_MAX);
  rl_close(&d);
  NMT_EQ_INT(rl_nrecent(&d), 0);
  NMT_EQ_INT(rl_recent_bytes(&d), 0);
  free(payload);
}

/* Sends the client's direct message (the origins it receives directly) to the relay. */
static void say_direct(rl_duty *d, fake_conn *f, const char *id) {
  nm_msg m = {.type = NM_MSG_DIRECT};
  if (id) {
    m.u.direct.count = 1;
    snprintf(m.u.direct.ids[0], sizeof m.u.direct.ids[0], "%s", id);
  }
  nm_msgbuf b = {0};
  NMT_EQ_INT(nm_msg_encode(&m, &b), 0);
  NMT_EQ_INT(rl_client_on_frame(d, &f->client, NM_MSG_DIRECT, b.data, b.len), 0);
  nm_msgbuf_free(&b);
}

/* Issue 12: the lines of an origin a client receives directly (punched) are not forwarded to
 * it; when that origin leaves its set, the origin's lines in the ring go to it again. Each
 * send to this unconnected client counts as a drop: drops count the lines sent. */
static void test_direct_origins_skipped_then_resent(void) {
  rl_duty d;
  rl_limits lim = {.max_clients = 8};
  rl_init(&d, loop, "aaaaaaaaaaaaaaaa", &lim);
  nm_relay_client list[1] = {client(ID_A, TOKEN, 7)};
  rl_serve(&d, list, 1);
  fake_conn *f = new_conn();
  char err[200];
  nm_fingerprint right = fp_of(7);
  NMT_EQ_INT(rl_attach(&d, &f->client, &f->conn, ID_A, TOKEN, &right, "alice", err, sizeof err), 0);
  uint64_t sent = d.drops;
  rl_forward(&d, ID_B, "b1", 2);
  NMT_EQ_INT(d.drops - sent, 1); /* forwarded */
  say_direct(&d, f, ID_B);
  rl_forward(&d, ID_B, "b2", 2);
  NMT_EQ_INT(d.drops - sent, 1); /* B reaches alice directly now: not forwarded */
  rl_forward(&d, "0000000000000ccc", "c1", 2);
  NMT_EQ_INT(d.drops - sent, 2); /* other origins still are */
  say_direct(&d, f, NULL);
  NMT_EQ_INT(d.drops - sent, 4); /* B left the set: b1 and b2 from the ring again */
  rl_forward(&d, ID_B, "b3", 2);
  NMT_EQ_INT(d.drops - sent, 5);
  rl_close(&d);
  uv_run(loop, UV_RUN_DEFAULT);
  free(f);
}

int main(void) {
  loop = uv_default_loop();
  NMT_RUN(test_attach_checks_token_and_key);
  NMT_RUN(test_ring_bounded_in_bytes);
  NMT_RUN(test_direct_origins_skipped_then_resent);
  uv_loop_close(loop);
  return nmt_done();
}
