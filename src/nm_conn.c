#include "nm_conn.h"
#include "nm_addr.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_proto.h"
#include "nm_xml.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  uv_write_t req;
  nm_conn *conn;
  size_t len;
  char data[];
} nm__write;

/* TLS works in pieces of one record's plaintext: the read BIO never holds more than one
 * piece of ciphertext plus a partial record, the write BIO never more than one record, and
 * both memory BIOs (which grow but never shrink) stay small for the session's life. */
#define NM__TLS_PIECE (16 * 1024)
/* TLS 1.3 adds 22 bytes per record (header, content type, AEAD tag): room for that. */
#define NM__TLS_OVERHEAD(n) (((n) / NM__TLS_PIECE + 1) * 32 + 64)
/* What TLS may queue on its own (alerts, key-update answers) beyond the frame queue's cap
 * before a peer that sends but never reads is dropped. */
#define NM__TLS_QUEUE_SLACK (64u * 1024u)

/* A shared frame being written on a plaintext conn: the buffer is the nm_sbuf's. */
typedef struct {
  uv_write_t req;
  nm_conn *conn;
  nm_sbuf *sb;
  size_t len; /* what is left to write of sb (counted in queued_bytes) */
} nm__swrite;

static void nm__conn_tls_fail(nm_conn *c, int err, const char *reason);
static void nm__conn_on_write(uv_write_t *req, int status);

/* Writes buf to the socket at once when nothing is queued before it, as for nearly every
 * heartbeat, ack and delta: uv_try_write needs no request, where libuv 1.44 re-arms the
 * socket's epoll registration after every uv_write, even one that completed at once (one
 * epoll_ctl per frame: a tenth of what a TLS heartbeat costs the manager). Returns the bytes
 * the kernel took, 0 when it took none or refused (the uv_write that follows then reports
 * the error through its callback, as before). */
static size_t nm__conn_try_write(nm_conn *c, const char *data, size_t len) {
  uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
  return n > 0 ? (size_t)n : 0;
}

/* Sends w's len bytes and takes w: freed at once when the kernel took them all; the rest
 * goes through uv_write, after whatever is queued, and nm__conn_on_write frees it. */
static int nm__conn_write(nm_conn *c, nm__write *w) {
  size_t sent = nm__conn_try_write(c, w->data, w->len);
  if (sent == w->len) {
    free(w);
    return 0;
  }
  if (sent) {
    memmove(w->data, w->data + sent, w->len - sent);
    w->len -= sent;
  }
  uv_buf_t buf = uv_buf_init(w->data, (unsigned)w->len);
  int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, nm__conn_on_write);
  if (rc < 0) {
    free(w);
    /* Part of a frame is out and the rest cannot follow: the stream cannot go on. */
    if (sent) nm_conn_close(c, rc, "write failed in the middle of a frame");
    return rc;
  }
  c->queued_bytes += w->len;
  return 0;
}

int nm_conn_init(uv_loop_t *loop, nm_conn *c, nm_conn_frame_cb on_frame,
                 nm_conn_closed_cb on_closed, void *data) {
  memset(c, 0, sizeof *c);
  /* Neither init can fail in libuv (the socket is created lazily, on bind or connect),
   * which is why there is no half-initialized state to unwind here. */
  int rc = uv_tcp_init(loop, &c->tcp);
  if (rc == 0) rc = uv_timer_init(loop, &c->timer);
  if (rc < 0) return rc;
  c->tcp.data = c;
  c->timer.data = c;
  c->open_handles = 2;
  c->max_queue = NM_CONN_MAX_QUEUE;
  c->on_frame = on_frame;
  c->on_closed = on_closed;
  c->data = data;
  c->peer_error = "";
  nm_frame_reader_init(&c->reader, NM_FRAME_MAX_UNTRUSTED);
  snprintf(c->label, sizeof c->label, "session");
  return 0;
}

void nm_conn_set_label(nm_conn *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->label, sizeof c->label, fmt, ap);
  va_end(ap);
}

void nm_sockaddr_format(const struct sockaddr *sa, char *ip, size_t iplen, uint16_t *port) {
  nm_addr_from_sockaddr(sa, ip, iplen, port);
}

static void nm__conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  /* One buffer for all sessions: the loop is single-threaded and each read is consumed
   * (copied into the frame reader) before the next allocation. */
  static char slab[64 * 1024];
  (void)h;
  (void)suggested;
  buf->base = slab;
  buf->len = sizeof slab;
}

static int nm__conn_on_frame(void *arg, uint8_t type, const char *payload, size_t len) {
  nm_conn *c = arg;
  if (c->traffic) {
    c->traffic->frames_in[type]++;
    c->traffic->bytes_in[type] += NM_FRAME_HEADER + len;
  }
  if (type == NM_MSG_ERROR) {
    /* The peer tells us why it is closing; show it, then close our side. */
    /* The text is the peer's: never let it forge log lines or drive a terminal. */
    char *text = c->peer_error_buf ? c->peer_error_buf : malloc(NM_CONN_PEER_ERROR_MAX + 1);
    if (!text) {
      nm_conn_close(c, -ENOMEM, NULL);
      return 1;
    }
    c->peer_error_buf = text;
    c->peer_error = text;
    size_t n = 0;
    for (; n < len && n < NM_CONN_PEER_ERROR_MAX; n++) {
      unsigned char ch = (unsigned char)payload[n];
      text[n] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    text[n] = 0;
    if (c->owner_logs_errors)
      nm_log_debug("%s (%s:%u) reports an error: %s", c->label, c->peer_ip, c->peer_port, text);
    else if (c->log_rate)
      nm_log_ratelimited(c->log_rate, NM_LOG_WARN, "%s (%s:%u) reports an error: %s", c->label,
                         c->peer_ip, c->peer_port, text);
    else
      nm_log_warn("%s (%s:%u) reports an error: %s", c->label, c->peer_ip, c->peer_port, text);
    nm_conn_close(c, 0, NULL);
    return 1;
  }
  int stop = c->on_frame ? c->on_frame(c, type, payload, len) : 0;
  return stop || c->closing;
}

/* Feeds plaintext to the frame reader; on bad framing fails the session. Returns non-zero
 * when the session is closing. */
static int nm__conn_deliver(nm_conn *c, const char *data, size_t len) {
  int rc = nm_frame_reader_feed(&c->reader, data, len, nm__conn_on_frame, c);
  if (rc < 0 && !c->closing) {
    char why[160];
    snprintf(why, sizeof why, "bad frame: %s", nm_strerror(rc));
    nm_conn_fail(c, rc, why);
  }
  return rc != 0 || c->closing;
}

/* ---- TLS: the BIO pump ----------------------------------------------------------------
 * Socket bytes -> nm_tls_session_feed (read BIO) -> handshake step or SSL_read -> frame
 * reader. nm_conn_send -> SSL_write -> write BIO -> one uv_write per frame. Every step that
 * can make OpenSSL produce bytes (handshake flights, alerts, key-update answers, frames,
 * close_notify) is followed by taking the write BIO's bytes into a uv_write. */

/* Writes out what the session has queued (handshake flights, alerts, answers). */
static int nm__conn_tls_flush(nm_conn *c) {
  size_t n = nm_tls_session_pending(c->tls);
  if (n == 0) return 0;
  nm__write *w = malloc(sizeof *w + n);
  if (!w) return -ENOMEM;
  w->conn = c;
  w->len = nm_tls_session_take(c->tls, w->data, n);
  return nm__conn_write(c, w);
}

/* The handshake completed and the key matched: tell the owner, then let frames flow. */
static void nm__conn_tls_secured(nm_conn *c) {
  c->secure = 1;
  c->peer_fp = *nm_tls_session_peer(c->tls);
  if (c->tls_deadline) {
    uv_timer_stop(&c->timer);
    c->tls_deadline = 0;
  }
  nm_log_debug("%s (%s:%u): TLS 1.3 up, peer key %s", c->label, c->peer_ip, c->peer_port,
               c->peer_fp.hex);
  if (c->on_secure) c->on_secure(c, &c->peer_fp);
  if (c->closing || !c->dialed) return;
  nm_conn_connect_cb cb = c->on_connect;
  c->on_connect = NULL;
  if (cb) cb(c, 0);
}

/* One handshake step and its output. Returns 0 when secure (and still open), 1 while the
 * handshake goes on, < 0 when the session failed or was closed. */
static int nm__conn_tls_step(nm_conn *c) {
  int rc = nm_tls_session_handshake(c->tls);
  int wrc = nm__conn_tls_flush(c); /* the next flight, or the alert that says why not */
  if (rc < 0) {
    nm__conn_tls_fail(c, rc, nm_tls_session_error(c->tls));
    return rc;
  }
  if (wrc < 0) {
    nm__conn_tls_fail(c, wrc, "cannot send the TLS handshake");
    return wrc;
  }
  if (rc > 0) return 1;
  nm__conn_tls_secured(c);
  return c->closing ? UV_ECANCELED : 0;
}

/* Decrypts everything the read BIO holds, frame by frame. Bounded: the read BIO holds at
 * most one piece plus a partial record, and the frame reader's limit applies to what comes
 * out exactly as on a plaintext session. */
static void nm__conn_tls_drain(nm_conn *c) {
  char plain[NM__TLS_PIECE];
  while (!c->closing) {
    int n = nm_tls_session_read(c->tls, plain, sizeof plain);
    if (n == 0) return;
    if (n == UV_EOF) {
      nm_conn_close(c, 0, "closed by peer");
      return;
    }
    if (n < 0) {
      nm_conn_close(c, n, nm_tls_session_error(c->tls));
      return;
    }
    if (nm__conn_deliver(c, plain, (size_t)n)) return;
  }
}

static void nm__conn_tls_on_read(nm_conn *c, const char *data, size_t len) {
  for (size_t off = 0; off < len && !c->closing;) {
    size_t n = len - off < NM__TLS_PIECE ? len - off : NM__TLS_PIECE;
    if (nm_tls_session_feed(c->tls, data + off, n) < 0) {
      nm_conn_close(c, -ENOMEM, "out of memory for TLS input");
      return;
    }
    off += n;
    if (!c->secure && nm__conn_tls_step(c) != 0) {
      if (c->closing) return;
      continue; /* handshake still going: feed the rest */
    }
    nm__conn_tls_drain(c);
  }
  if (c->closing) return;
  /* Reading may have made OpenSSL answer (a key update). A peer that keeps making us answer
   * while it reads nothing would grow the queue without bound: drop it. */
  int rc = nm__conn_tls_flush(c);
  if (rc < 0)
    nm_conn_close(c, rc, "TLS write failed");
  else if (c->queued_bytes > c->max_queue + NM__TLS_QUEUE_SLACK)
    nm_conn_close(c, NM_EQUEUE_FULL, "peer makes TLS answer but does not read");
}

/* A failure before the session is secure: a client's owner still waits for on_connect,
 * which reports the code (NM_EKEY for a key mismatch). Nothing is sent in plaintext. */
static void nm__conn_tls_fail(nm_conn *c, int err, const char *reason) {
  if (c->closing) return;
  if (!c->secure && c->dialed) {
    nm_conn_connect_cb cb = c->on_connect;
    c->on_connect = NULL;
    if (cb) cb(c, err);
  }
  nm_conn_close(c, err, reason);
}

/* ---- reading ------------------------------------------------------------------------ */

static void nm__conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  nm_conn *c = s->data;
  if (nread == 0) return;
  if (nread < 0 && c->tls && !c->secure) {
    nm__conn_tls_fail(c, nread == UV_EOF ? NM_ETLS : (int)nread,
                      nread == UV_EOF ? "peer closed the connection during the TLS handshake"
                                      : uv_strerror((int)nread));
    return;
  }
  if (nread < 0) {
    nm_conn_close(c, nread == UV_EOF ? 0 : (int)nread,
                  nread == UV_EOF ? "closed by peer" : uv_strerror((int)nread));
    return;
  }
  if (c->tls) {
    nm__conn_tls_on_read(c, buf->base, (size_t)nread);
    return;
  }
  nm__conn_deliver(c, buf->base, (size_t)nread);
}

static int nm__conn_start(nm_conn *c) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
    nm_sockaddr_format((struct sockaddr *)&ss, c->peer_ip, sizeof c->peer_ip, &c->peer_port);
  uv_tcp_nodelay(&c->tcp, 1);
  uv_tcp_keepalive(&c->tcp, 1, 30);
  c->connected = 1;
  int rc = uv_read_start((uv_stream_t *)&c->tcp, nm__conn_alloc, nm__conn_on_read);
  if (rc < 0 || !c->tls) return rc;
  /* A peer that connects and never finishes the handshake must not hold a descriptor. */
  nm_conn_deadline(c, c->tls_handshake_ms, "TLS handshake not completed in time");
  c->tls_deadline = 1;
  return 0;
}

static void nm__conn_on_deadline(uv_timer_t *t) {
  nm_conn *c = t->data;
  if (c->closing) return;
  if (c->tls && !c->secure)
    nm__conn_tls_fail(c, UV_ETIMEDOUT, c->deadline_reason); /* no channel for an error frame */
  else
    nm_conn_fail(c, NM_EMSG, c->deadline_reason);
}

void nm_conn_deadline(nm_conn *c, unsigned ms, const char *reason) {
  c->deadline_reason = reason;
  c->tls_deadline = 0;
  uv_timer_start(&c->timer, nm__conn_on_deadline, ms, 0);
}

void nm_conn_deadline_clear(nm_conn *c) { uv_timer_stop(&c->timer); }

void nm_conn_pause(nm_conn *c) {
  if (c->connected && !c->closing) uv_read_stop((uv_stream_t *)&c->tcp);
}

int nm_conn_resume(nm_conn *c) {
  if (!c->connected || c->closing) return UV_ENOTCONN;
  return uv_read_start((uv_stream_t *)&c->tcp, nm__conn_alloc, nm__conn_on_read);
}

int nm_conn_set_tls(nm_conn *c, nm_tls_ctx *ctx, nm_tls_role role,
                    const nm_fingerprint *expected) {
  if (!ctx || !ctx->ssl || c->tls || c->connected || c->closing ||
      (role != NM_TLS_CLIENT && role != NM_TLS_SERVER))
    return -EINVAL;
  c->tls = nm_tls_session_new(ctx, role, expected);
  if (!c->tls) return -ENOMEM;
  c->tls_role = role;
  c->tls_handshake_ms = ctx->handshake_ms ? ctx->handshake_ms : NM_TLS_HANDSHAKE_MS;
  return 0;
}

void nm_conn_on_secure(nm_conn *c, nm_conn_secure_cb cb) { c->on_secure = cb; }

const nm_fingerprint *nm_conn_peer_fingerprint(const nm_conn *c) {
  return c->secure ? &c->peer_fp : NULL;
}

int nm_conn_accept(uv_stream_t *server, nm_conn *c) {
  if (c->tls && c->tls_role != NM_TLS_SERVER) return -EINVAL;
  int rc = uv_accept(server, (uv_stream_t *)&c->tcp);
  if (rc < 0) return rc;
  return nm__conn_start(c);
}

static void nm__conn_on_timeout(uv_timer_t *t) {
  nm_conn *c = t->data;
  if (c->connected || c->closing) return;
  nm_conn_connect_cb cb = c->on_connect;
  c->on_connect = NULL;
  if (cb) cb(c, UV_ETIMEDOUT);
  nm_conn_close(c, UV_ETIMEDOUT, "connect timed out");
}

static void nm__conn_on_connected(uv_connect_t *req, int status) {
  nm_conn *c = req->data;
  free(req); /* libuv calls back exactly once, also when the conn closes first */
  uv_timer_stop(&c->timer);
  if (c->closing) return;
  if (status == 0) status = nm__conn_start(c);
  /* TLS: on_connect waits for the handshake and the key check (nm__conn_tls_secured). */
  if (status == 0 && c->tls) {
    /* A client sends its ClientHello; a server (a simultaneous open, where both sides
     * dialled and the roles were decided by key) waits for the other's. */
    nm__conn_tls_step(c);
    return;
  }
  nm_conn_connect_cb cb = c->on_connect;
  c->on_connect = NULL;
  if (cb) cb(c, status);
  if (status < 0) nm_conn_close(c, status, "connect failed");
}

int nm_conn_connect(nm_conn *c, const struct sockaddr *addr, unsigned timeout_ms,
                    nm_conn_connect_cb on_connect) {
  nm_sockaddr_format(addr, c->peer_ip, sizeof c->peer_ip, &c->peer_port);
  c->dialed = 1;
  c->on_connect = on_connect;
  /* Allocated for the connect only: an accepted session (all a manager holds) has none. */
  uv_connect_t *req = malloc(sizeof *req);
  if (!req) return -ENOMEM;
  req->data = c;
  int rc = uv_tcp_connect(req, &c->tcp, addr, nm__conn_on_connected);
  if (rc < 0) {
    free(req);
    return rc;
  }
  if (timeout_ms) uv_timer_start(&c->timer, nm__conn_on_timeout, timeout_ms, 0);
  return 0;
}

static void nm__conn_on_write(uv_write_t *req, int status) {
  nm__write *w = (nm__write *)req;
  w->conn->queued_bytes -= w->len;
  if (status < 0 && status != UV_ECANCELED && !w->conn->closing)
    nm_conn_close(w->conn, status, "write failed");
  free(w);
}

/* The end of a TLS send: w holds the ciphertext of a whole frame (rc 0), or the encryption
 * failed (rc < 0) after part of the frame may have been encrypted, so the stream cannot be
 * resumed and the connection closes. Takes w. */
static int nm__conn_tls_submit(nm_conn *c, nm__write *w, int rc) {
  if (rc < 0) {
    free(w);
    nm_conn_close(c, rc, rc == -ENOMEM ? "out of memory for TLS output" : "TLS write failed");
    return rc;
  }
  rc = nm__conn_write(c, w);
  if (rc < 0) nm_conn_close(c, rc, "write failed");
  return rc;
}

/* Appends the write BIO's ciphertext to *w (capacity *cap), growing it when TLS added more
 * overhead than planned (rather than lose bytes), with room for what remains of the frame.
 * 0, or -ENOMEM (*w is still valid, and freed by the caller's nm__conn_tls_submit). */
static int nm__conn_tls_take(nm_conn *c, nm__write **w, size_t *cap, size_t remaining) {
  size_t n = nm_tls_session_pending(c->tls);
  if (n > *cap - (*w)->len) {
    size_t ncap = (*w)->len + n + NM__TLS_OVERHEAD(remaining);
    nm__write *nw = realloc(*w, sizeof *nw + ncap);
    if (!nw) return -ENOMEM;
    *w = nw;
    *cap = ncap;
  }
  (*w)->len += nm_tls_session_take(c->tls, (*w)->data + (*w)->len, n);
  return 0;
}

/* One frame through TLS into one uv_write: the header and the first piece of the payload
 * as one record, the rest piece by piece, each piece's ciphertext taken from the write BIO
 * at once so that it never holds more than a record. */
static int nm__conn_tls_send(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  size_t total = NM_FRAME_HEADER + len;
  size_t cap = total + NM__TLS_OVERHEAD(total) + nm_tls_session_pending(c->tls);
  nm__write *w = malloc(sizeof *w + cap);
  if (!w) return -ENOMEM;
  w->conn = c;
  w->len = 0;
  char first[NM__TLS_PIECE];
  size_t off = len < sizeof first - NM_FRAME_HEADER ? len : sizeof first - NM_FRAME_HEADER;
  nm_frame_header_encode((uint8_t *)first, type, (uint32_t)len);
  if (off) memcpy(first + NM_FRAME_HEADER, payload, off);
  int rc = nm_tls_session_write(c->tls, first, NM_FRAME_HEADER + off);
  for (;;) {
    if (rc >= 0) rc = nm__conn_tls_take(c, &w, &cap, len - off);
    if (rc < 0 || off == len) break;
    size_t piece = len - off < NM__TLS_PIECE ? len - off : NM__TLS_PIECE;
    rc = nm_tls_session_write(c->tls, payload + off, piece);
    off += piece;
  }
  return nm__conn_tls_submit(c, w, rc);
}

int nm_conn_send(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  if (c->closing || !c->connected || (c->tls && !c->secure)) return UV_ENOTCONN;
  if (len > NM_FRAME_MAX) return NM_EFRAME_TOO_BIG;
  size_t total = NM_FRAME_HEADER + len;
  /* Counted in plaintext before encrypting (the ciphertext is a little larger and is what
   * the queue then holds), so a full queue refuses a frame before it costs any work. */
  if (c->queued_bytes + total > c->max_queue) return NM_EQUEUE_FULL;
  if (c->traffic) {
    c->traffic->frames_out[type]++;
    c->traffic->bytes_out[type] += total;
  }
  if (c->tls) return nm__conn_tls_send(c, type, payload, len);
  nm__write *w = malloc(sizeof *w + total);
  if (!w) return -ENOMEM;
  w->conn = c;
  w->len = total;
  nm_frame_header_encode((uint8_t *)w->data, type, (uint32_t)len);
  if (len) memcpy(w->data + NM_FRAME_HEADER, payload, len);
  return nm__conn_write(c, w);
}

/* Bytes already framed (a shared frame) through TLS into one uv_write, a record's plaintext
 * at a time. */
static int nm__conn_tls_send_framed(nm_conn *c, const char *frame, size_t total) {
  size_t cap = total + NM__TLS_OVERHEAD(total) + nm_tls_session_pending(c->tls);
  nm__write *w = malloc(sizeof *w + cap);
  if (!w) return -ENOMEM;
  w->conn = c;
  w->len = 0;
  size_t off = 0;
  int rc = 0;
  while (off < total) {
    size_t piece = total - off < NM__TLS_PIECE ? total - off : NM__TLS_PIECE;
    rc = nm_tls_session_write(c->tls, frame + off, piece);
    if (rc < 0) break;
    off += piece;
    rc = nm__conn_tls_take(c, &w, &cap, total - off);
    if (rc < 0) break;
  }
  return nm__conn_tls_submit(c, w, rc);
}

static void nm__conn_on_swrite(uv_write_t *req, int status) {
  nm__swrite *w = (nm__swrite *)req;
  w->conn->queued_bytes -= w->len;
  if (status < 0 && status != UV_ECANCELED && !w->conn->closing)
    nm_conn_close(w->conn, status, "write failed");
  nm_sbuf_unref(w->sb);
  free(w);
}

int nm_conn_send_shared(nm_conn *c, nm_sbuf *sb) {
  if (c->closing || !c->connected || (c->tls && !c->secure)) return UV_ENOTCONN;
  if (c->queued_bytes + sb->len > c->max_queue) return NM_EQUEUE_FULL;
  if (c->traffic) {
    c->traffic->frames_out[sb->type]++;
    c->traffic->bytes_out[sb->type] += sb->len;
  }
  if (c->tls) return nm__conn_tls_send_framed(c, sb->data, sb->len);
  nm__swrite *w = malloc(sizeof *w); /* first: a frame is sent whole or not at all */
  if (!w) return -ENOMEM;
  size_t sent = nm__conn_try_write(c, sb->data, sb->len); /* as nm__conn_write */
  if (sent == sb->len) {
    free(w);
    return 0;
  }
  w->conn = c;
  w->sb = nm_sbuf_ref(sb);
  w->len = sb->len - sent;
  uv_buf_t buf = uv_buf_init(sb->data + sent, (unsigned)w->len);
  int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, nm__conn_on_swrite);
  if (rc < 0) {
    nm_sbuf_unref(sb);
    free(w);
    if (sent) nm_conn_close(c, rc, "write failed in the middle of a frame"); /* as nm__conn_write */
    return rc;
  }
  c->queued_bytes += w->len;
  return 0;
}

int nm_conn_send_doc(nm_conn *c, uint8_t type, xmlDoc *doc) {
  char *buf;
  size_t len;
  int rc = nm_xml_dump(doc, &buf, &len);
  if (rc < 0) return rc;
  rc = nm_conn_send(c, type, buf, len);
  free(buf);
  return rc;
}

xmlNode *nm_conn_parse_doc(nm_conn *c, const char *payload, size_t len, const char *root_name,
                           xmlDoc **doc) {
  char err[300];
  int rc = nm_xml_parse(payload, len, doc, err, sizeof err);
  if (rc < 0) {
    char why[400];
    snprintf(why, sizeof why, "refused XML: %s", err);
    nm_conn_fail(c, rc, why);
    return NULL;
  }
  xmlNode *root = xmlDocGetRootElement(*doc);
  if (strcmp((const char *)root->name, root_name) != 0) {
    char why[200];
    snprintf(why, sizeof why, "expected <%s>, got <%.40s>", root_name, (const char *)root->name);
    xmlFreeDoc(*doc);
    *doc = NULL;
    nm_conn_fail(c, NM_EMSG, why);
    return NULL;
  }
  return root;
}

void nm_conn_fail(nm_conn *c, int err, const char *reason) {
  if (c->closing) return;
  /* Before a TLS handshake completes there is no channel to say it on. */
  if (c->connected && reason && (!c->tls || c->secure)) {
    char msg[300];
    int n = snprintf(msg, sizeof msg, "%s", reason);
    nm_conn_send(c, NM_MSG_ERROR, msg, n > 0 ? (size_t)n : 0);
  }
  nm_conn_close(c, err ? err : NM_EMSG, reason);
}

static void nm__conn_on_handle_closed(uv_handle_t *h) {
  nm_conn *c = h->data;
  if (--c->open_handles > 0) return;
  nm_frame_reader_close(&c->reader);
  /* Only now: libuv has run every write callback (cancelled or done) and will touch
   * nothing of this session again. */
  nm_tls_session_free(c->tls);
  c->tls = NULL;
  /* The owner may read peer_error in on_closed and free c there. */
  char *error_text = c->peer_error_buf;
  if (c->on_closed) c->on_closed(c);
  free(error_text);
}

void nm_conn_close(nm_conn *c, int err, const char *reason) {
  if (c->closing) return;
  c->closing = 1;
  c->close_err = err;
  if (reason) {
    int level = err && err != UV_ECANCELED ? NM_LOG_WARN : NM_LOG_INFO;
    if (c->log_rate)
      nm_log_ratelimited(c->log_rate, level, "%s (%s:%u) closed: %s", c->label, c->peer_ip,
                         c->peer_port, reason);
    else
      nm_log(level, "%s (%s:%u) closed: %s", c->label, c->peer_ip, c->peer_port, reason);
  }
  uv_timer_stop(&c->timer);
  if (c->connected) uv_read_stop((uv_stream_t *)&c->tcp);
  if (c->tls && c->secure && c->connected) {
    /* close_notify, best effort: like an error frame, it leaves if the socket takes it at
     * once (uv_write tries straight away); uv_close cancels what is still queued. */
    nm_tls_session_shutdown(c->tls);
    nm__conn_tls_flush(c);
  }
  uv_close((uv_handle_t *)&c->tcp, nm__conn_on_handle_closed);
  uv_close((uv_handle_t *)&c->timer, nm__conn_on_handle_closed);
}
