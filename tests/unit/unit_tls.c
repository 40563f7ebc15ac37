/* nm_tls and nm_conn's TLS path.
 *
 * Two layers, as in the code: the session engine pumped by hand between two sessions in
 * memory (the handshake's decisions, with exact reasons), then real nm_conns over loopback
 * on a libuv loop (frames both ways, pinning on either side, a plaintext peer, a stalled
 * handshake, limits after decryption, the write queue) and a tap between them that checks
 * what crosses the wire. */
#include "nmt.h"
#include "nm_conn.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_proto.h"
#include "nm_sbuf.h"
#include "nm_tls.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static nm_identity id_s, id_c, id_o; /* server, client, someone else */
static nm_tls_ctx ctx_s, ctx_c, ctx_o;

/* ---- log capture: the reasons a session gives are part of the contract ---------------- */

static char log_path[] = "/tmp/nm_unit_tls_log_XXXXXX";
static int log_saved = -1;
static char log_text[64 * 1024];

static void log_start(void) {
  fflush(stderr);
  log_saved = dup(2);
  int fd = open(log_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  dup2(fd, 2);
  close(fd);
}

static const char *log_end(void) {
  fflush(stderr);
  dup2(log_saved, 2);
  close(log_saved);
  int fd = open(log_path, O_RDONLY);
  ssize_t n = fd >= 0 ? read(fd, log_text, sizeof log_text - 1) : 0;
  if (fd >= 0) close(fd);
  log_text[n > 0 ? n : 0] = 0;
  fputs(log_text, stderr); /* still shown, for whoever reads the test's output */
  return log_text;
}

/* ---- the engine, pumped in memory --------------------------------------------------- */

static void move_bytes(nm_tls_session *from, nm_tls_session *to) {
  char buf[4096];
  size_t n;
  while ((n = nm_tls_session_take(from, buf, sizeof buf)) > 0) nm_tls_session_feed(to, buf, n);
}

/* Runs both handshakes until neither needs more; *rc_a and *rc_b get their results. */
static void pump(nm_tls_session *a, nm_tls_session *b, int *rc_a, int *rc_b) {
  *rc_a = *rc_b = 1;
  for (int i = 0; i < 20 && (*rc_a > 0 || *rc_b > 0); i++) {
    if (*rc_a > 0) *rc_a = nm_tls_session_handshake(a);
    move_bytes(a, b);
    if (*rc_b > 0) *rc_b = nm_tls_session_handshake(b);
    move_bytes(b, a);
  }
}

static void test_engine_handshake(void) {
  nm_tls_session *c = nm_tls_session_new(&ctx_c, NM_TLS_CLIENT, &id_s.fp);
  nm_tls_session *s = nm_tls_session_new(&ctx_s, NM_TLS_SERVER, &id_c.fp);
  int rc_c, rc_s;
  NMT_CHECK(nm_tls_session_peer(c) == NULL);
  pump(c, s, &rc_c, &rc_s);
  NMT_EQ_INT(rc_c, 0);
  NMT_EQ_INT(rc_s, 0);
  NMT_CHECK(nm_tls_session_peer(c) && nm_fingerprint_equal(nm_tls_session_peer(c), &id_s.fp));
  NMT_CHECK(nm_tls_session_peer(s) && nm_fingerprint_equal(nm_tls_session_peer(s), &id_c.fp));
  NMT_CHECK(memcmp(nm_tls_session_peer_pubkey(s), id_c.pub, NM_PUBKEY_LEN) == 0);
  NMT_EQ_STR(nm_tls_session_error(c), "");
  /* Application data both ways, then close_notify. */
  NMT_EQ_INT(nm_tls_session_write(c, "ping", 4), 0);
  move_bytes(c, s);
  char buf[64];
  NMT_EQ_INT(nm_tls_session_read(s, buf, sizeof buf), 4);
  NMT_CHECK(memcmp(buf, "ping", 4) == 0);
  NMT_EQ_INT(nm_tls_session_read(s, buf, sizeof buf), 0); /* nothing more yet */
  nm_tls_session_shutdown(s);
  move_bytes(s, c);
  NMT_EQ_INT(nm_tls_session_read(c, buf, sizeof buf), UV_EOF);
  NMT_CHECK(nm_tls_session_write(s, "x", 1) < 0); /* nothing after close_notify */
  nm_tls_session_free(c);
  nm_tls_session_free(s);
}

static void test_engine_key_update(void) {
  /* Asked for by the peer: the reader owes a KeyUpdate and sends it with its next write. */
  nm_tls_session *c = nm_tls_session_new(&ctx_c, NM_TLS_CLIENT, &id_s.fp);
  nm_tls_session *s = nm_tls_session_new(&ctx_s, NM_TLS_SERVER, &id_c.fp);
  int rc_c, rc_s;
  pump(c, s, &rc_c, &rc_s);
  NMT_EQ_INT(nm_tls_session_key_update(c, 1), 0);
  NMT_EQ_INT(nm_tls_session_write(c, "a", 1), 0);
  move_bytes(c, s);
  char buf[16];
  NMT_EQ_INT(nm_tls_session_read(s, buf, sizeof buf), 1);
  NMT_EQ_INT(nm_tls_session_write(s, "b", 1), 0);
  move_bytes(s, c);
  NMT_EQ_INT(nm_tls_session_read(c, buf, sizeof buf), 1);
  NMT_CHECK(buf[0] == 'b');
  NMT_EQ_INT(nm_tls_session_key_updates(c), 1);
  nm_tls_session_free(c);
  nm_tls_session_free(s);

  /* By itself, every rekey_records records. */
  ctx_c.rekey_records = 4;
  c = nm_tls_session_new(&ctx_c, NM_TLS_CLIENT, &id_s.fp);
  ctx_c.rekey_records = NM_TLS_REKEY_RECORDS;
  s = nm_tls_session_new(&ctx_s, NM_TLS_SERVER, &id_c.fp);
  pump(c, s, &rc_c, &rc_s);
  int got = 0;
  for (int i = 0; i < 10; i++) {
    NMT_EQ_INT(nm_tls_session_write(c, &"0123456789"[i], 1), 0);
    move_bytes(c, s);
    int n = nm_tls_session_read(s, buf, sizeof buf);
    if (n == 1 && buf[0] == '0' + i) got++;
  }
  NMT_EQ_INT(got, 10);
  NMT_EQ_INT(nm_tls_session_key_updates(c), 2);
  nm_tls_session_free(c);
  nm_tls_session_free(s);
}

/* What an idle session keeps in its memory BIOs: once a handshake and a large frame have
 * passed and been drained, no more than a small record's buffer on each side; and the
 * small records of steady traffic (heartbeats, deltas) do not renew the BIOs each time. */
static void test_engine_idle_buffers(void) {
  nm_tls_session *c = nm_tls_session_new(&ctx_c, NM_TLS_CLIENT, &id_s.fp);
  nm_tls_session *s = nm_tls_session_new(&ctx_s, NM_TLS_SERVER, &id_c.fp);
  int rc_c, rc_s;
  pump(c, s, &rc_c, &rc_s);
  NMT_EQ_INT(rc_c, 0);
  NMT_EQ_INT(rc_s, 0);
  static char big[3000], back[sizeof big];
  memset(big, 'L', sizeof big); /* a list page of a dozen entries */
  NMT_EQ_INT(nm_tls_session_write(s, big, sizeof big), 0);
  char wire[8192];
  size_t n = nm_tls_session_take(s, wire, sizeof wire); /* one take: the BIO held it all */
  NMT_CHECK(n > sizeof big);
  NMT_EQ_INT(nm_tls_session_feed(c, wire, n), 0);
  NMT_EQ_INT(nm_tls_session_read(c, back, sizeof back), (int)sizeof big);
  NMT_EQ_INT(nm_tls_session_read(c, back, sizeof back), 0); /* drained */
  NMT_CHECK(nm_tls_session_bio_capacity(s) <= 2 * 512);
  NMT_CHECK(nm_tls_session_bio_capacity(c) <= 2 * 512);
  unsigned renewed_s = nm_tls_session_bio_renewals(s), renewed_c = nm_tls_session_bio_renewals(c);
  NMT_CHECK(renewed_s >= 1 && renewed_c >= 1);
  char hb[320];
  memset(hb, 'h', sizeof hb); /* a delta of one join (337 bytes with its header) */
  for (int i = 0; i < 100; i++) {
    NMT_EQ_INT(nm_tls_session_write(c, hb, sizeof hb), 0);
    move_bytes(c, s);
    NMT_EQ_INT(nm_tls_session_read(s, back, sizeof back), (int)sizeof hb);
    NMT_EQ_INT(nm_tls_session_read(s, back, sizeof back), 0);
    NMT_EQ_INT(nm_tls_session_write(s, hb, 60), 0);
    move_bytes(s, c);
    NMT_EQ_INT(nm_tls_session_read(c, back, sizeof back), 60);
    NMT_EQ_INT(nm_tls_session_read(c, back, sizeof back), 0);
    if (i == 0) { /* the first read after the handshake renews what the handshake grew */
      renewed_s = nm_tls_session_bio_renewals(s);
      renewed_c = nm_tls_session_bio_renewals(c);
    }
  }
  NMT_EQ_INT(nm_tls_session_bio_renewals(s), renewed_s);
  NMT_EQ_INT(nm_tls_session_bio_renewals(c), renewed_c);
  NMT_CHECK(nm_tls_session_bio_capacity(s) <= 2 * 512);
  NMT_CHECK(nm_tls_session_bio_capacity(c) <= 2 * 512);
  nm_tls_session_free(c);
  nm_tls_session_free(s);
}

static void test_engine_wrong_server_key(void) {
  /* The client expects O; S answers. */
  nm_tls_session *c = nm_tls_session_new(&ctx_c, NM_TLS_CLIENT, &id_o.fp);
  nm_tls_session *s = nm_tls_session_new(&ctx_s, NM_TLS_SERVER, NULL);
  int rc_c, rc_s;
  pump(c, s, &rc_c, &rc_s);
  NMT_EQ_INT(rc_c, NM_EKEY);
  NMT_EQ_INT(rc_s, NM_ETLS);
  char want[300];
  snprintf(want, sizeof want, "peer presented key %s, expected %s", id_s.fp.hex, id_o.fp.hex);
  NMT_EQ_STR(nm_tls_session_error(c), want);
  NMT_HAS(nm_tls_session_error(s), "bad certificate");
  NMT_HAS(nm_tls_session_error(s), "it does not accept our key");
  NMT_CHECK(nm_tls_session_peer(c) == NULL && nm_tls_session_peer(s) == NULL);
  char buf[8];
  NMT_CHECK(nm_tls_session_read(c, buf, sizeof buf) < 0);
  NMT_CHECK(nm_tls_session_write(c, "x", 1) < 0);
  nm_tls_session_free(c);
  nm_tls_session_free(s);
}

static void test_engine_wrong_client_key(void) {
  /* The server expects C; O connects. In TLS 1.3 the client finishes first, so it learns of
   * the refusal from the alert, on its next read. */
  nm_tls_session *o = nm_tls_session_new(&ctx_o, NM_TLS_CLIENT, &id_s.fp);
  nm_tls_session *s = nm_tls_session_new(&ctx_s, NM_TLS_SERVER, &id_c.fp);
  int rc_o, rc_s;
  pump(o, s, &rc_o, &rc_s);
  NMT_EQ_INT(rc_s, NM_EKEY);
  char want[300];
  snprintf(want, sizeof want, "peer presented key %s, expected %s", id_o.fp.hex, id_c.fp.hex);
  NMT_EQ_STR(nm_tls_session_error(s), want);
  char buf[8];
  NMT_EQ_INT(rc_o, 0);
  NMT_EQ_INT(nm_tls_session_read(o, buf, sizeof buf), NM_ETLS);
  NMT_HAS(nm_tls_session_error(o), "bad certificate");
  nm_tls_session_free(o);
  nm_tls_session_free(s);
}

/* A certificate for key, self-signed, the way any TLS stack would make one. */
static X509 *make_cert(EVP_PKEY *key) {
  X509 *x = X509_new();
  X509_set_version(x, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             (const unsigned char *)"stranger", -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  X509_set_pubkey(x, key);
  int ed = EVP_PKEY_get_id(key) == EVP_PKEY_ED25519;
  X509_sign(x, key, ed ? NULL : EVP_sha256());
  return x;
}

/* A plain OpenSSL client context (not nm_tls_ctx_init's): key may be NULL (no
 * certificate); it trusts any server. */
static SSL_CTX *raw_client_ctx(EVP_PKEY *key, int max_version) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_method());
  if (max_version) {
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, max_version);
  }
  if (key) {
    X509 *x = make_cert(key);
    SSL_CTX_use_certificate(ctx, x);
    SSL_CTX_use_PrivateKey(ctx, key);
    X509_free(x);
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  return ctx;
}

static void expect_refused(SSL_CTX *raw, int want_err, const char *want_reason) {
  nm_tls_ctx rc_ctx = {.ssl = raw};
  nm_tls_session *c = nm_tls_session_new(&rc_ctx, NM_TLS_CLIENT, NULL);
  nm_tls_session *s = nm_tls_session_new(&ctx_s, NM_TLS_SERVER, NULL);
  int rc_c, rc_s;
  pump(c, s, &rc_c, &rc_s);
  NMT_EQ_INT(rc_s, want_err);
  NMT_HAS(nm_tls_session_error(s), want_reason);
  NMT_CHECK(nm_tls_session_peer(s) == NULL);
  nm_tls_session_free(c);
  nm_tls_session_free(s);
  SSL_CTX_free(raw);
  ERR_clear_error();
}

static void test_engine_refusals(void) {
  /* An ECDSA P-256 key: a valid certificate, the wrong kind of key. */
  EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  expect_refused(raw_client_ctx(ec, 0), NM_EKEY, "peer presented a key of type EC, not Ed25519");
  EVP_PKEY_free(ec);
  /* No certificate at all: the server requires one. */
  expect_refused(raw_client_ctx(NULL, 0), NM_ETLS, "TLS handshake failed");
  /* TLS 1.2, even with an Ed25519 certificate. */
  expect_refused(raw_client_ctx(id_o.key, TLS1_2_VERSION), NM_ETLS, "TLS handshake failed");
  /* Garbage instead of a ClientHello. */
  nm_tls_session *s = nm_tls_session_new(&ctx_s, NM_TLS_SERVER, NULL);
  static const char hello[] = "NM\x01\x01\x00\x00\x00\x05hello";
  nm_tls_session_feed(s, hello, sizeof hello - 1);
  NMT_EQ_INT(nm_tls_session_handshake(s), NM_ETLS);
  NMT_EQ_STR(nm_tls_session_error(s),
             "TLS handshake failed: the peer speaks plaintext natmesh, not TLS");
  NMT_EQ_INT(nm_tls_session_handshake(s), NM_ETLS); /* stays failed */
  nm_tls_session_free(s);
  s = nm_tls_session_new(&ctx_s, NM_TLS_SERVER, NULL);
  static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  nm_tls_session_feed(s, http, sizeof http - 1);
  NMT_EQ_INT(nm_tls_session_handshake(s), NM_ETLS);
  NMT_HAS(nm_tls_session_error(s), "TLS handshake failed: ");
  nm_tls_session_free(s);
}

/* ---- nm_conn over loopback ------------------------------------------------------------ */

#define BIG_LEN NM_FRAME_MAX
#define SMALL_COUNT 2000

typedef struct side {
  nm_conn conn;
  int used;
  int raise_max;   /* raise the frame limit once secure */
  int echo;        /* send every frame back */
  int refuse;      /* close inside on_secure */
  int pause;       /* stop reading once secure */
  int secure_calls;
  nm_fingerprint secure_fp;
  int frames_at_secure;
  int connect_calls, connect_status, secure_before_connect;
  int frames, next_seq, order_ok, big_ok, echo_fail;
  size_t bytes;
  char last[128];
  int closed, close_err;
  uint64_t closed_at;
} side;

enum { SRV_PLAIN, SRV_TLS, SRV_SILENT };

typedef struct pair {
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_timer_t tick;
  struct sockaddr_in addr;
  side srv, cli;
  int srv_mode;
  const nm_fingerprint *srv_expect;
  int send_before_secure;
  unsigned srv_deadline_ms; /* the owner's own deadline, set right after accept */
  uv_tcp_t silent; /* SRV_SILENT: accepts and never answers */
  int silent_used;
  uint64_t started;
} pair;

static char big_byte(size_t i) { return (char)(i * 7 + 3); }

static int side_on_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  side *s = c->data;
  s->frames++;
  s->bytes += len;
  snprintf(s->last, sizeof s->last, "%.*s", (int)(len < 100 ? len : 100), payload);
  if (type == NM_MSG_CHAT && len > 4 && memcmp(payload, "seq ", 4) == 0) {
    if (atoi(payload + 4) != s->next_seq) s->order_ok = 0;
    s->next_seq++;
  } else if (type == NM_MSG_PEERS && len == BIG_LEN) {
    s->big_ok = 1;
    for (size_t i = 0; i < len; i++)
      if (payload[i] != big_byte(i)) {
        s->big_ok = 0;
        break;
      }
  }
  if (s->echo && nm_conn_send(c, type, payload, len) != 0) s->echo_fail++;
  return 0;
}

static void side_on_closed(nm_conn *c) {
  side *s = c->data;
  s->closed++;
  s->close_err = c->close_err;
  s->closed_at = uv_now(c->tcp.loop);
}

static void side_on_secure(nm_conn *c, const nm_fingerprint *fp) {
  side *s = c->data;
  s->secure_calls++;
  s->secure_fp = *fp;
  s->frames_at_secure = s->frames;
  if (s->raise_max) nm_frame_reader_set_max(&c->reader, NM_FRAME_MAX);
  if (s->pause) nm_conn_pause(c);
  if (s->refuse) nm_conn_close(c, NM_EKEY, "not admitted");
}

static void side_on_connect(nm_conn *c, int status) {
  side *s = c->data;
  s->connect_calls++;
  s->connect_status = status;
  s->secure_before_connect = s->secure_calls;
}

static void silent_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  (void)st, (void)n, (void)buf;
}

static void alloc_buf(uv_handle_t *h, size_t sz, uv_buf_t *buf) {
  static char slab[64 * 1024];
  (void)h, (void)sz;
  *buf = uv_buf_init(slab, sizeof slab);
}

static void pair_on_accept(uv_stream_t *server, int status) {
  pair *p = server->data;
  if (status < 0) return;
  if (p->srv_mode == SRV_SILENT) {
    uv_tcp_init(&p->loop, &p->silent);
    p->silent_used = 1;
    uv_accept(server, (uv_stream_t *)&p->silent);
    uv_read_start((uv_stream_t *)&p->silent, alloc_buf, silent_read);
    return;
  }
  if (p->srv.used) return; /* one session per test */
  side *s = &p->srv;
  nm_conn_init(&p->loop, &s->conn, side_on_frame, side_on_closed, s);
  s->used = 1;
  if (p->srv_mode == SRV_TLS) {
    NMT_EQ_INT(nm_conn_set_tls(&s->conn, &ctx_s, NM_TLS_SERVER, p->srv_expect), 0);
    nm_conn_on_secure(&s->conn, side_on_secure);
  }
  NMT_EQ_INT(nm_conn_accept(server, &s->conn), 0);
  if (p->srv_mode == SRV_TLS) /* must be refused: nothing goes out before the handshake */
    p->send_before_secure = nm_conn_send(&s->conn, NM_MSG_CHAT, "early", 5);
  if (p->srv_deadline_ms) nm_conn_deadline(&s->conn, p->srv_deadline_ms, "no hello in time");
}

static void tick_cb(uv_timer_t *t) { (void)t; }

static void side_reset(side *s) {
  memset(s, 0, sizeof *s);
  s->order_ok = 1;
}

static void pair_open(pair *p, int srv_mode, const nm_fingerprint *srv_expect) {
  memset(p, 0, sizeof *p);
  side_reset(&p->srv);
  side_reset(&p->cli);
  p->srv_mode = srv_mode;
  p->srv_expect = srv_expect;
  uv_loop_init(&p->loop);
  uv_tcp_init(&p->loop, &p->listener);
  p->listener.data = p;
  uv_ip4_addr("127.0.0.1", 0, &p->addr);
  uv_tcp_bind(&p->listener, (struct sockaddr *)&p->addr, 0);
  NMT_EQ_INT(uv_listen((uv_stream_t *)&p->listener, 8, pair_on_accept), 0);
  int len = sizeof p->addr;
  uv_tcp_getsockname(&p->listener, (struct sockaddr *)&p->addr, &len);
  /* Keeps UV_RUN_ONCE returning, so run_until can look at the clock. */
  uv_timer_init(&p->loop, &p->tick);
  uv_timer_start(&p->tick, tick_cb, 5, 5);
  p->started = uv_now(&p->loop);
}

/* ctx NULL: a plaintext client. */
static void client_open(pair *p, nm_tls_ctx *ctx, const nm_fingerprint *expect,
                        const struct sockaddr_in *to) {
  side *s = &p->cli;
  nm_conn_init(&p->loop, &s->conn, side_on_frame, side_on_closed, s);
  s->used = 1;
  if (ctx) {
    NMT_EQ_INT(nm_conn_set_tls(&s->conn, ctx, NM_TLS_CLIENT, expect), 0);
    nm_conn_on_secure(&s->conn, side_on_secure);
  }
  NMT_EQ_INT(nm_conn_connect(&s->conn, (const struct sockaddr *)(to ? to : &p->addr), 2000,
                             side_on_connect), 0);
}

typedef int (*pair_cond)(pair *p);

static int run_until(pair *p, pair_cond cond, unsigned ms) {
  uv_update_time(&p->loop);
  uint64_t end = uv_now(&p->loop) + ms;
  while (!cond(p) && uv_now(&p->loop) < end) uv_run(&p->loop, UV_RUN_ONCE);
  return cond(p);
}

static void pair_close(pair *p) {
  if (p->srv.used && !p->srv.conn.closing) nm_conn_close(&p->srv.conn, 0, NULL);
  if (p->cli.used && !p->cli.conn.closing) nm_conn_close(&p->cli.conn, 0, NULL);
  if (p->silent_used) uv_close((uv_handle_t *)&p->silent, NULL);
  uv_close((uv_handle_t *)&p->listener, NULL);
  uv_close((uv_handle_t *)&p->tick, NULL);
  uv_run(&p->loop, UV_RUN_DEFAULT);
  NMT_EQ_INT(uv_loop_close(&p->loop), 0);
  if (p->srv.used) NMT_EQ_INT(p->srv.closed, 1);
  if (p->cli.used) NMT_EQ_INT(p->cli.closed, 1);
}

/* Both sides can send: the client's on_connect came and the server accepted (and, with
 * TLS, completed its handshake) -- or something closed. */
static int ready(pair *p) {
  if (p->srv.closed || p->cli.closed) return 1;
  if (!p->cli.connect_calls || !p->srv.used) return 0;
  return p->srv_mode != SRV_TLS || p->srv.secure_calls;
}
static int cli_connected(pair *p) { return p->cli.connect_calls || p->cli.closed; }
static int both_closed(pair *p) { return p->srv.closed && p->cli.closed; }
static int srv_closed(pair *p) { return p->srv.closed; }
static int cli_closed(pair *p) { return p->cli.closed; }

static int all_echoed(pair *p) {
  return p->cli.frames >= SMALL_COUNT + 1 || p->cli.closed || p->srv.closed;
}

static void test_frames_both_ways(void) {
  pair p;
  /* Keys renewed every 64 records each way, so the run crosses many KeyUpdates. */
  ctx_s.rekey_records = ctx_c.rekey_records = 64;
  pair_open(&p, SRV_TLS, &id_c.fp);
  p.srv.raise_max = p.srv.echo = 1;
  p.cli.raise_max = 1;
  client_open(&p, &ctx_c, &id_s.fp, NULL);
  NMT_CHECK(run_until(&p, ready, 5000));
  NMT_EQ_INT(p.send_before_secure, UV_ENOTCONN); /* nothing before the handshake */
  NMT_EQ_INT(p.cli.connect_calls, 1);
  NMT_EQ_INT(p.cli.connect_status, 0);
  NMT_EQ_INT(p.cli.secure_before_connect, 1); /* on_secure, then on_connect */
  NMT_EQ_INT(p.srv.secure_calls, 1);
  NMT_CHECK(nm_fingerprint_equal(&p.srv.secure_fp, &id_c.fp));
  NMT_CHECK(nm_fingerprint_equal(&p.cli.secure_fp, &id_s.fp));
  NMT_CHECK(nm_conn_peer_fingerprint(&p.srv.conn) &&
            nm_fingerprint_equal(nm_conn_peer_fingerprint(&p.srv.conn), &id_c.fp));
  NMT_CHECK(nm_conn_peer_fingerprint(&p.cli.conn) &&
            nm_fingerprint_equal(nm_conn_peer_fingerprint(&p.cli.conn), &id_s.fp));

  int send_fail = 0;
  for (int i = 0; i < SMALL_COUNT / 2; i++) {
    char line[32];
    int n = snprintf(line, sizeof line, "seq %d", i);
    if (nm_conn_send(&p.cli.conn, NM_MSG_CHAT, line, (size_t)n) != 0) send_fail++;
  }
  char *big = malloc(BIG_LEN);
  for (size_t i = 0; i < BIG_LEN; i++) big[i] = big_byte(i);
  if (nm_conn_send(&p.cli.conn, NM_MSG_PEERS, big, BIG_LEN) != 0) send_fail++;
  free(big);
  /* And one the client asks the server for. */
  NMT_EQ_INT(nm_tls_session_key_update(p.cli.conn.tls, 1), 0);
  for (int i = SMALL_COUNT / 2; i < SMALL_COUNT; i++) {
    char line[32];
    int n = snprintf(line, sizeof line, "seq %d", i);
    if (nm_conn_send(&p.cli.conn, NM_MSG_CHAT, line, (size_t)n) != 0) send_fail++;
  }
  NMT_EQ_INT(send_fail, 0);
  NMT_CHECK(run_until(&p, all_echoed, 20000));
  NMT_EQ_INT(p.srv.frames, SMALL_COUNT + 1);
  NMT_EQ_INT(p.cli.frames, SMALL_COUNT + 1);
  NMT_EQ_INT(p.srv.frames_at_secure, 0);
  NMT_CHECK(p.srv.order_ok && p.cli.order_ok);
  NMT_EQ_INT(p.srv.next_seq, SMALL_COUNT);
  NMT_CHECK(p.srv.big_ok && p.cli.big_ok);
  NMT_EQ_INT(p.srv.echo_fail, 0);
  NMT_CHECK(!p.srv.closed && !p.cli.closed);
  if (!p.srv.closed && !p.cli.closed) {
    NMT_CHECK(nm_tls_session_key_updates(p.cli.conn.tls) > 20);
    NMT_CHECK(nm_tls_session_key_updates(p.srv.conn.tls) > 20);
  }
  ctx_s.rekey_records = ctx_c.rekey_records = NM_TLS_REKEY_RECORDS;

  /* The client leaves: close_notify reaches the server as a normal close. */
  nm_conn_close(&p.cli.conn, 0, "done");
  NMT_CHECK(run_until(&p, both_closed, 3000));
  NMT_EQ_INT(p.srv.close_err, 0);
  /* Still known in on_closed, for the owner's last log line. */
  NMT_CHECK(nm_conn_peer_fingerprint(&p.srv.conn) != NULL);
  pair_close(&p);
}

static void test_client_refuses_server_key(void) {
  pair p;
  pair_open(&p, SRV_TLS, NULL);
  p.srv.raise_max = 1;
  log_start();
  client_open(&p, &ctx_c, &id_o.fp, NULL); /* expects O, meets S */
  int ok = run_until(&p, both_closed, 5000);
  const char *log = log_end();
  NMT_CHECK(ok);
  NMT_EQ_INT(p.cli.connect_calls, 1);
  NMT_EQ_INT(p.cli.connect_status, NM_EKEY);
  NMT_EQ_INT(p.cli.close_err, NM_EKEY);
  NMT_EQ_INT(p.cli.secure_calls, 0);
  NMT_EQ_INT(p.srv.secure_calls, 0);
  NMT_EQ_INT(p.srv.frames, 0);
  NMT_EQ_INT(p.srv.close_err, NM_ETLS);
  NMT_CHECK(nm_conn_peer_fingerprint(&p.cli.conn) == NULL);
  char want[300];
  snprintf(want, sizeof want, "peer presented key %s, expected %s", id_s.fp.hex, id_o.fp.hex);
  NMT_HAS(log, want);
  NMT_HAS(log, "it does not accept our key");
  /* Refused at once, not by a deadline. */
  NMT_CHECK(p.srv.closed_at - p.started < 2000);
  pair_close(&p);
}

static void test_server_refuses_client_key(void) {
  pair p;
  pair_open(&p, SRV_TLS, &id_c.fp);
  log_start();
  client_open(&p, &ctx_o, &id_s.fp, NULL); /* O, where the server wants C */
  int ok = run_until(&p, both_closed, 5000);
  const char *log = log_end();
  NMT_CHECK(ok);
  NMT_EQ_INT(p.srv.close_err, NM_EKEY);
  NMT_EQ_INT(p.srv.secure_calls, 0);
  NMT_EQ_INT(p.srv.frames, 0);
  char want[300];
  snprintf(want, sizeof want, "peer presented key %s, expected %s", id_o.fp.hex, id_c.fp.hex);
  NMT_HAS(log, want);
  /* TLS 1.3: the client's handshake completes before the server has checked its key, so
   * its on_connect may say 0; either way it ends on the server's alert. */
  NMT_EQ_INT(p.cli.connect_calls, 1);
  NMT_EQ_INT(p.cli.close_err, NM_ETLS);
  pair_close(&p);
}

static void test_owner_refuses_in_on_secure(void) {
  pair p;
  pair_open(&p, SRV_TLS, NULL);
  p.srv.refuse = 1;
  client_open(&p, &ctx_c, &id_s.fp, NULL);
  NMT_CHECK(run_until(&p, ready, 5000));
  /* The client sends at once; the server already refused and must deliver nothing. */
  if (!p.cli.closed) nm_conn_send(&p.cli.conn, NM_MSG_CHAT, "seq 0", 5);
  NMT_CHECK(run_until(&p, both_closed, 5000));
  NMT_EQ_INT(p.srv.secure_calls, 1);
  NMT_EQ_INT(p.srv.frames, 0);
  NMT_EQ_INT(p.srv.close_err, NM_EKEY);
  pair_close(&p);
}

static void test_plaintext_client_to_tls_server(void) {
  pair p;
  pair_open(&p, SRV_TLS, NULL);
  log_start();
  client_open(&p, NULL, NULL, NULL);
  run_until(&p, cli_connected, 3000); /* plaintext: on_connect at once */
  if (!p.cli.closed) nm_conn_send(&p.cli.conn, NM_MSG_HELLO, "<hello/>", 8);
  int ok = run_until(&p, both_closed, 5000);
  const char *log = log_end();
  NMT_CHECK(ok);
  NMT_HAS(log, "the peer speaks plaintext natmesh, not TLS");
  NMT_EQ_INT(p.srv.close_err, NM_ETLS);
  NMT_EQ_INT(p.srv.frames, 0);
  NMT_EQ_INT(p.srv.secure_calls, 0);
  /* By the handshake's failure, well within its deadline. */
  NMT_CHECK(p.srv.closed_at - p.started < ctx_s.handshake_ms);
  pair_close(&p);
}

static void test_tls_client_to_plaintext_server(void) {
  pair p;
  pair_open(&p, SRV_PLAIN, NULL);
  log_start();
  client_open(&p, &ctx_c, &id_s.fp, NULL);
  int ok = run_until(&p, both_closed, 5000);
  const char *log = log_end();
  NMT_CHECK(ok);
  NMT_EQ_INT(p.cli.connect_calls, 1);
  NMT_EQ_INT(p.cli.connect_status, NM_ETLS);
  /* The plaintext server's error frame is what the client reads instead of a ServerHello. */
  NMT_HAS(log, "the peer speaks plaintext natmesh, not TLS");
  NMT_EQ_INT(p.srv.frames, 0);
  NMT_CHECK(p.cli.closed_at - p.started < ctx_c.handshake_ms);
  pair_close(&p);
}

/* ---- a raw TCP peer: sends what it is given, reads and drops the rest ------------------ */

typedef struct {
  uv_tcp_t tcp;
  uv_connect_t req;
  uv_write_t wreq;
  char out[512];
  size_t outlen;
  int eof;
} raw_peer;

static void raw_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  if (n < 0) ((raw_peer *)st->data)->eof = 1;
}

static void raw_connected(uv_connect_t *req, int status) {
  raw_peer *r = req->data;
  if (status < 0) {
    r->eof = 1;
    return;
  }
  if (r->outlen) {
    uv_buf_t b = uv_buf_init(r->out, (unsigned)r->outlen);
    uv_write(&r->wreq, (uv_stream_t *)&r->tcp, &b, 1, NULL);
  }
  uv_read_start((uv_stream_t *)&r->tcp, alloc_buf, raw_read);
}

static void test_stalled_handshake(void) {
  /* The first half of a real ClientHello, then silence. */
  nm_tls_session *c = nm_tls_session_new(&ctx_c, NM_TLS_CLIENT, NULL);
  NMT_EQ_INT(nm_tls_session_handshake(c), 1);
  raw_peer r;
  memset(&r, 0, sizeof r);
  size_t n = nm_tls_session_take(c, r.out, sizeof r.out);
  NMT_CHECK(n > 100);
  r.outlen = n / 2;
  nm_tls_session_free(c);

  unsigned saved = ctx_s.handshake_ms;
  ctx_s.handshake_ms = 300;
  pair p;
  pair_open(&p, SRV_TLS, NULL);
  uv_tcp_init(&p.loop, &r.tcp);
  r.tcp.data = &r;
  r.req.data = &r;
  uv_tcp_connect(&r.req, &r.tcp, (struct sockaddr *)&p.addr, raw_connected);
  log_start();
  int ok = run_until(&p, srv_closed, 5000);
  const char *log = log_end();
  ctx_s.handshake_ms = saved;
  NMT_CHECK(ok);
  NMT_EQ_INT(p.srv.close_err, UV_ETIMEDOUT);
  NMT_HAS(log, "TLS handshake not completed in time");
  uint64_t took = p.srv.closed_at - p.started;
  NMT_CHECK(took >= 250 && took < 3000);
  NMT_EQ_INT(p.srv.secure_calls, 0);
  uv_close((uv_handle_t *)&r.tcp, NULL);
  pair_close(&p);
}

static void test_server_never_answers(void) {
  unsigned saved = ctx_c.handshake_ms;
  ctx_c.handshake_ms = 300;
  pair p;
  pair_open(&p, SRV_SILENT, NULL);
  log_start();
  client_open(&p, &ctx_c, &id_s.fp, NULL);
  int ok = run_until(&p, cli_closed, 5000);
  log_end();
  ctx_c.handshake_ms = saved;
  NMT_CHECK(ok);
  NMT_EQ_INT(p.cli.connect_calls, 1);
  NMT_EQ_INT(p.cli.connect_status, UV_ETIMEDOUT);
  uint64_t took = p.cli.closed_at - p.started;
  NMT_CHECK(took >= 250 && took < 3000);
  pair_close(&p);
}

static void test_owner_deadline_outlives_handshake(void) {
  /* The owner's deadline (say, "no hello in time") replaces the handshake's and stays armed
   * after the handshake: a peer that completes TLS and then says nothing is still dropped. */
  pair p;
  pair_open(&p, SRV_TLS, NULL);
  p.srv_deadline_ms = 400;
  client_open(&p, &ctx_c, &id_s.fp, NULL);
  NMT_CHECK(run_until(&p, ready, 5000));
  NMT_CHECK(!p.srv.closed);
  NMT_CHECK(run_until(&p, srv_closed, 5000));
  NMT_EQ_INT(p.srv.close_err, NM_EMSG);
  pair_close(&p);
}

static void test_limits_after_decryption(void) {
  /* The server keeps the untrusted limit (4 KiB): a bigger frame inside TLS is refused like
   * a plaintext one, and the error frame goes back encrypted. */
  pair p;
  pair_open(&p, SRV_TLS, NULL);
  client_open(&p, &ctx_c, &id_s.fp, NULL);
  NMT_CHECK(run_until(&p, ready, 5000));
  char *payload = calloc(1, 5000);
  NMT_EQ_INT(nm_conn_send(&p.cli.conn, NM_MSG_HELLO, payload, 5000), 0);
  free(payload);
  log_start();
  int ok = run_until(&p, both_closed, 5000);
  const char *log = log_end();
  NMT_CHECK(ok);
  NMT_EQ_INT(p.srv.close_err, NM_EFRAME_TOO_BIG);
  NMT_EQ_INT(p.srv.frames, 0);
  NMT_HAS(log, "reports an error: bad frame: frame larger than the maximum");
  pair_close(&p);
}

static int srv_has_all(pair *p) { return p->srv.frames >= p->cli.next_seq || p->srv.closed; }

static void test_queue_cap(void) {
  /* The server stops reading: the client's sends hit NM_EQUEUE_FULL, counted in bytes. */
  pair p;
  pair_open(&p, SRV_TLS, NULL);
  p.srv.pause = p.srv.raise_max = 1;
  client_open(&p, &ctx_c, &id_s.fp, NULL);
  NMT_CHECK(run_until(&p, ready, 5000));
  char *big = calloc(1, BIG_LEN);
  int rc = 0, sent = 0;
  for (int i = 0; i < 200 && rc == 0; i++) {
    rc = nm_conn_send(&p.cli.conn, NM_MSG_PEERS, big, BIG_LEN);
    if (rc == 0) sent++;
    uv_run(&p.loop, UV_RUN_NOWAIT);
  }
  free(big);
  NMT_EQ_INT(rc, NM_EQUEUE_FULL);
  NMT_CHECK(p.cli.conn.queued_bytes <= p.cli.conn.max_queue + 64 * 1024);
  NMT_CHECK(p.cli.conn.queued_bytes > 0);
  /* Reading again, the server gets every frame that was accepted. */
  p.cli.next_seq = sent;
  nm_conn_resume(&p.srv.conn);
  NMT_CHECK(run_until(&p, srv_has_all, 20000));
  NMT_EQ_INT(p.srv.frames, sent);
  NMT_EQ_INT(p.cli.conn.queued_bytes, 0);
  pair_close(&p);
}

static int srv_got_three(pair *p) { return p->srv.frames >= 3 || p->srv.closed; }

/* A frame sent when nothing is queued goes to the kernel at once: no write request is left
 * pending (with libuv 1.44 each uv_write costs an epoll_ctl later, a tenth of a TLS
 * heartbeat's cost), plaintext and TLS, owned and shared frames alike. */
static void test_idle_send_written_at_once(void) {
  for (int mode = SRV_PLAIN; mode <= SRV_TLS; mode++) {
    pair p;
    pair_open(&p, mode, mode == SRV_TLS ? &id_c.fp : NULL);
    client_open(&p, mode == SRV_TLS ? &ctx_c : NULL, &id_s.fp, NULL);
    NMT_CHECK(run_until(&p, ready, 5000));
    NMT_EQ_INT(nm_conn_send(&p.cli.conn, NM_MSG_CHAT, "a heartbeat", 11), 0);
    NMT_EQ_INT((int)p.cli.conn.queued_bytes, 0);
    nm_sbuf *sb = nm_sbuf_frame(NM_MSG_CHAT, "a delta", 7);
    NMT_EQ_INT(nm_conn_send_shared(&p.cli.conn, sb), 0);
    NMT_EQ_INT((int)p.cli.conn.queued_bytes, 0);
    NMT_EQ_INT(nm_conn_send(&p.cli.conn, NM_MSG_CHAT, "another", 7), 0);
    NMT_EQ_INT((int)p.cli.conn.queued_bytes, 0);
    nm_sbuf_unref(sb); /* the conn kept no reference: the buffer is ours to free */
    NMT_CHECK(run_until(&p, srv_got_three, 5000));
    NMT_EQ_INT(p.srv.frames, 3);
    pair_close(&p);
  }
}

static void test_api_misuse(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  nm_conn c;
  nm_conn_init(&loop, &c, NULL, NULL, NULL);
  nm_tls_ctx none = {.ssl = NULL};
  NMT_EQ_INT(nm_conn_set_tls(&c, &none, NM_TLS_CLIENT, NULL), -EINVAL);
  NMT_EQ_INT(nm_conn_set_tls(&c, &ctx_c, (nm_tls_role)3, NULL), -EINVAL);
  NMT_EQ_INT(nm_conn_set_tls(&c, &ctx_c, NM_TLS_SERVER, NULL), 0);
  NMT_EQ_INT(nm_conn_set_tls(&c, &ctx_c, NM_TLS_SERVER, NULL), -EINVAL); /* once */
  /* a server may have dialled (a TCP simultaneous open: roles decided by key, nm_punch);
   * only accepting needs the server role */
  uv_tcp_t dummy;
  uv_tcp_init(&loop, &dummy);
  nm_conn c2;
  nm_conn_init(&loop, &c2, NULL, NULL, NULL);
  NMT_EQ_INT(nm_conn_set_tls(&c2, &ctx_c, NM_TLS_CLIENT, NULL), 0);
  NMT_EQ_INT(nm_conn_accept((uv_stream_t *)&dummy, &c2), -EINVAL); /* role */
  nm_conn_close(&c2, 0, NULL);
  uv_close((uv_handle_t *)&dummy, NULL);
  NMT_CHECK(nm_conn_peer_fingerprint(&c) == NULL);
  NMT_EQ_INT(nm_conn_send(&c, NM_MSG_CHAT, "x", 1), UV_ENOTCONN);
  nm_conn_close(&c, 0, NULL); /* frees the unused session */
  uv_run(&loop, UV_RUN_DEFAULT);
  NMT_EQ_INT(uv_loop_close(&loop), 0);
}

/* ---- the wire: a tap between client and server records every byte --------------------- */

typedef struct tap {
  uv_tcp_t listener, down, up;
  uv_connect_t creq;
  struct sockaddr_in addr, target;
  int down_used, up_used, up_ready;
  int flip_next; /* flip one bit of the next chunk from the client */
  char *cap;
  size_t caplen, capcap;
} tap;

typedef struct {
  uv_write_t req;
  char data[];
} tap_write;

static void tap_record(tap *t, const char *d, size_t n) {
  if (t->caplen + n > t->capcap) {
    t->capcap = (t->caplen + n) * 2;
    t->cap = realloc(t->cap, t->capcap);
  }
  memcpy(t->cap + t->caplen, d, n);
  t->caplen += n;
}

static void tap_written(uv_write_t *req, int status) {
  (void)status;
  free(req);
}

static void tap_close_both(tap *t) {
  if (!uv_is_closing((uv_handle_t *)&t->down)) uv_close((uv_handle_t *)&t->down, NULL);
  if (t->up_used && !uv_is_closing((uv_handle_t *)&t->up)) uv_close((uv_handle_t *)&t->up, NULL);
}

static void tap_forward(uv_stream_t *from, ssize_t n, const uv_buf_t *buf) {
  tap *t = from->data;
  if (n < 0) {
    tap_close_both(t);
    return;
  }
  if (n == 0) return;
  tap_record(t, buf->base, (size_t)n);
  uv_stream_t *down = (uv_stream_t *)&t->down, *up = (uv_stream_t *)&t->up;
  uv_stream_t *to = from == down ? up : down;
  tap_write *w = malloc(sizeof *w + (size_t)n);
  memcpy(w->data, buf->base, (size_t)n);
  if (t->flip_next && from == down) {
    w->data[n / 2] ^= 0x01;
    t->flip_next = 0;
  }
  uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
  if (uv_write(&w->req, to, &b, 1, tap_written) < 0) free(w);
}

static void tap_up_connected(uv_connect_t *req, int status) {
  tap *t = req->data;
  if (status < 0) {
    tap_close_both(t);
    return;
  }
  uv_read_start((uv_stream_t *)&t->up, alloc_buf, tap_forward);
  uv_read_start((uv_stream_t *)&t->down, alloc_buf, tap_forward);
}

static void tap_on_accept(uv_stream_t *server, int status) {
  tap *t = server->data;
  if (status < 0 || t->down_used) return;
  uv_tcp_init(server->loop, &t->down);
  t->down.data = t;
  t->down_used = 1;
  uv_accept(server, (uv_stream_t *)&t->down);
  uv_tcp_init(server->loop, &t->up);
  t->up.data = t;
  t->up_used = 1;
  t->creq.data = t;
  uv_tcp_connect(&t->creq, &t->up, (struct sockaddr *)&t->target, tap_up_connected);
}

static void tap_open(tap *t, uv_loop_t *loop, const struct sockaddr_in *target) {
  memset(t, 0, sizeof *t);
  t->target = *target;
  uv_tcp_init(loop, &t->listener);
  t->listener.data = t;
  uv_ip4_addr("127.0.0.1", 0, &t->addr);
  uv_tcp_bind(&t->listener, (struct sockaddr *)&t->addr, 0);
  uv_listen((uv_stream_t *)&t->listener, 4, tap_on_accept);
  int len = sizeof t->addr;
  uv_tcp_getsockname(&t->listener, (struct sockaddr *)&t->addr, &len);
}

static int contains(const char *hay, size_t n, const void *needle, size_t m) {
  return hay && memmem(hay, n, needle, m) != NULL;
}

static int cli_got_echo(pair *p) { return p->cli.frames >= 1 || p->cli.closed; }

/* Returns the number of captured bytes; *marker_seen, *keys_seen whether the marker and
 * either raw public key crossed the wire as they are. */
static size_t capture_run(int use_tls, int *marker_seen, int *keys_seen, int *echo_ok) {
  static const char marker[] = "natmesh-capture-marker-7c1e: the quick brown fox";
  pair p;
  tap t;
  pair_open(&p, use_tls ? SRV_TLS : SRV_PLAIN, use_tls ? &id_c.fp : NULL);
  p.srv.echo = 1;
  tap_open(&t, &p.loop, &p.addr);
  client_open(&p, use_tls ? &ctx_c : NULL, use_tls ? &id_s.fp : NULL, &t.addr);
  NMT_CHECK(run_until(&p, ready, 5000));
  NMT_EQ_INT(nm_conn_send(&p.cli.conn, NM_MSG_CHAT, marker, sizeof marker - 1), 0);
  run_until(&p, cli_got_echo, 5000);
  *echo_ok = p.srv.frames == 1 && p.cli.frames == 1 && strcmp(p.cli.last, marker) == 0;
  *marker_seen = contains(t.cap, t.caplen, marker, sizeof marker - 1) ||
                 contains(t.cap, t.caplen, "natmesh-capture", 15);
  *keys_seen = contains(t.cap, t.caplen, id_c.pub, NM_PUBKEY_LEN) ||
               contains(t.cap, t.caplen, id_s.pub, NM_PUBKEY_LEN);
  size_t n = t.caplen;
  tap_close_both(&t);
  uv_close((uv_handle_t *)&t.listener, NULL);
  pair_close(&p);
  free(t.cap);
  return n;
}

static void test_tampering(void) {
  /* One bit flipped on the wire after the handshake: the record fails authentication, the
   * session closes, and the frame it carried is never delivered. */
  pair p;
  tap t;
  pair_open(&p, SRV_TLS, &id_c.fp);
  tap_open(&t, &p.loop, &p.addr);
  client_open(&p, &ctx_c, &id_s.fp, &t.addr);
  NMT_CHECK(run_until(&p, ready, 5000));
  t.flip_next = 1;
  static const char line[] = "seq 0 -- pay alice 10 coins";
  NMT_EQ_INT(nm_conn_send(&p.cli.conn, NM_MSG_CHAT, line, sizeof line - 1), 0);
  log_start();
  int ok = run_until(&p, srv_closed, 5000);
  const char *log = log_end();
  NMT_CHECK(ok);
  NMT_EQ_INT(p.srv.frames, 0);
  NMT_EQ_INT(p.srv.close_err, NM_ETLS);
  NMT_HAS(log, "TLS session failed: ");
  run_until(&p, both_closed, 5000);
  tap_close_both(&t);
  uv_close((uv_handle_t *)&t.listener, NULL);
  pair_close(&p);
  free(t.cap);
}

static void test_capture(void) {
  int marker_seen, keys_seen, echo_ok;
  /* Control: without TLS the tap sees the marker, so the check below can see it too. */
  size_t plain = capture_run(0, &marker_seen, &keys_seen, &echo_ok);
  NMT_CHECK(echo_ok);
  NMT_CHECK(plain > 0);
  NMT_CHECK(marker_seen);
  size_t enc = capture_run(1, &marker_seen, &keys_seen, &echo_ok);
  NMT_CHECK(echo_ok);
  NMT_CHECK(enc > plain);
  NMT_CHECK(!marker_seen);
  /* TLS 1.3 encrypts the certificates: not even the keys cross the wire in clear. */
  NMT_CHECK(!keys_seen);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* as every natmesh program: a peer gone mid-write is an error code */
  nm_log_init("unit_tls", NM_LOG_INFO);
  int fd = mkstemp(log_path);
  if (fd >= 0) close(fd);
  char err[300] = "";
  if (nm_identity_generate(&id_s) || nm_identity_generate(&id_c) || nm_identity_generate(&id_o) ||
      nm_tls_ctx_init(&ctx_s, &id_s, err, sizeof err) ||
      nm_tls_ctx_init(&ctx_c, &id_c, err, sizeof err) ||
      nm_tls_ctx_init(&ctx_o, &id_o, err, sizeof err)) {
    fprintf(stderr, "setup failed: %s\n", err);
    return 1;
  }
  NMT_RUN(test_engine_handshake);
  NMT_RUN(test_engine_key_update);
  NMT_RUN(test_engine_idle_buffers);
  NMT_RUN(test_engine_wrong_server_key);
  NMT_RUN(test_engine_wrong_client_key);
  NMT_RUN(test_engine_refusals);
  NMT_RUN(test_frames_both_ways);
  NMT_RUN(test_client_refuses_server_key);
  NMT_RUN(test_server_refuses_client_key);
  NMT_RUN(test_owner_refuses_in_on_secure);
  NMT_RUN(test_plaintext_client_to_tls_server);
  NMT_RUN(test_tls_client_to_plaintext_server);
  NMT_RUN(test_stalled_handshake);
  NMT_RUN(test_server_never_answers);
  NMT_RUN(test_owner_deadline_outlives_handshake);
  NMT_RUN(test_limits_after_decryption);
  NMT_RUN(test_queue_cap);
  NMT_RUN(test_idle_send_written_at_once);
  NMT_RUN(test_api_misuse);
  NMT_RUN(test_tampering);
  NMT_RUN(test_capture);
  nm_tls_ctx_close(&ctx_s);
  nm_tls_ctx_close(&ctx_c);
  nm_tls_ctx_close(&ctx_o);
  nm_identity_close(&id_s);
  nm_identity_close(&id_c);
  nm_identity_close(&id_o);
  unlink(log_path);
  return nmt_done();
}
