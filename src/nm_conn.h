/* nm_conn: one framed TCP session on the libuv loop, shared by every natmesh program.
 *
 * It owns the read path (a resumable frame reader with a size limit that the owner raises
 * once the peer has identified itself), a bounded write queue, an optional connect timeout,
 * and the one close path: nm_conn_close(c, err, reason) logs why, closes both handles, and
 * only when libuv has called back for both does it call on_closed, where the owner may free
 * the memory the conn is embedded in.
 *
 * TLS (nm_conn_set_tls) is optional and changes nothing for the owner but the start: the
 * conn runs TLS 1.3 over OpenSSL memory BIOs on the loop thread, socket bytes go into the
 * session and its plaintext into the same frame reader, frames go out through it into the
 * same bounded write queue. No frame is delivered or sent before the handshake completed
 * and the peer's key matched; a client's on_connect waits for that, and on_secure tells
 * either side which key the peer proved. */
#ifndef NM_CONN_H
#define NM_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <libxml/tree.h>

#include "nm_frame.h"
#include "nm_sbuf.h"
#include "nm_tls.h"

#define NM_CONN_MAX_QUEUE (4u * 1024u * 1024u)
#define NM_CONN_PEER_ERROR_MAX 300 /* bytes of a peer's error text kept (peer_error) */

typedef struct nm_conn nm_conn;

/* Frames and their bytes (header included, plaintext) by frame type, each way: an owner
 * that wants them (the manager's metrics) points nm_conn.traffic at one it keeps. */
typedef struct {
  uint64_t frames_in[256], bytes_in[256];
  uint64_t frames_out[256], bytes_out[256];
} nm_conn_traffic;
/* Called for each complete frame. Return non-zero if the conn was closed inside. */
typedef int (*nm_conn_frame_cb)(nm_conn *c, uint8_t type, const char *payload, size_t len);
/* status 0: connected and reading. < 0: failed; the conn is being closed. */
typedef void (*nm_conn_connect_cb)(nm_conn *c, int status);
typedef void (*nm_conn_closed_cb)(nm_conn *c);
/* TLS: the handshake completed and the peer proved the key whose fingerprint is peer (the
 * expected one, if one was set). Called on both sides before any frame is delivered and,
 * on a client, before on_connect; the owner may close c inside to refuse the peer. */
typedef void (*nm_conn_secure_cb)(nm_conn *c, const nm_fingerprint *peer);

struct nm_conn {
  uv_tcp_t tcp;
  uv_timer_t timer; /* connect timeout */
  nm_frame_reader reader;
  size_t queued_bytes;
  size_t max_queue;
  int open_handles;
  int closing;
  int connected;
  int dialed; /* we called nm_conn_connect (on_connect pending until connected, or secure) */
  int close_err; /* what nm_conn_close was called with: why the session ended */
  nm_tls_session *tls; /* NULL: plaintext */
  nm_tls_role tls_role;
  int secure;          /* TLS handshake complete and key checked: frames may flow */
  int tls_deadline;    /* the timer runs the handshake deadline (not the owner's) */
  unsigned tls_handshake_ms;
  nm_fingerprint peer_fp; /* valid when secure */
  char peer_ip[64];
  uint16_t peer_port;
  char label[56]; /* who this is, for log lines ("servant" and a 32-character name fit) */
  /* The text of the error frame the peer sent before closing ("" if none), sanitized as
   * logged: why a manager refused us, for an owner that must act on it in on_closed.
   * Never NULL; allocated only when an error frame came (a session's bytes are precious
   * when a manager holds 20,000), and freed after on_closed. */
  const char *peer_error;
  char *peer_error_buf;
  int owner_logs_errors; /* set by the owner: it reports peer_error itself (debug here) */
  const char *deadline_reason;
  nm_conn_frame_cb on_frame;
  nm_conn_connect_cb on_connect;
  nm_conn_closed_cb on_closed;
  nm_conn_secure_cb on_secure;
  /* When set, the lines this conn logs about its peer (why it closed, the error the peer
   * reported) go through this rate limit: an owner sets it while the peer is not yet
   * authenticated, since anyone can make such lines by connecting. */
  struct nm_log_rate *log_rate;
  nm_conn_traffic *traffic; /* NULL, or where frames in and out are counted */
  void *data; /* the owner's */
};

int nm_conn_init(uv_loop_t *loop, nm_conn *c, nm_conn_frame_cb on_frame,
                 nm_conn_closed_cb on_closed, void *data);
/* Makes c a TLS 1.3 session (after nm_conn_init, before nm_conn_connect or nm_conn_accept).
 * nm_conn_accept needs NM_TLS_SERVER; nm_conn_connect takes either role: NM_TLS_SERVER on a
 * connection we dialled is for a TCP simultaneous open (both sides dialled, one connection;
 * nm_punch_tls_role decides who plays which role), where we wait for the peer's ClientHello. expected: the fingerprint the peer must present (copied), or NULL
 * to accept any Ed25519 key and let on_secure decide. A peer with another key is refused
 * with NM_EKEY ("peer presented key <fp>, expected <fp>"); other TLS failures are NM_ETLS.
 * A client's on_connect then reports that code. The handshake must complete within the
 * ctx's handshake_ms, unless the owner sets its own nm_conn_deadline, which stays armed
 * after the handshake. Returns 0, -EINVAL or -ENOMEM. */
int nm_conn_set_tls(nm_conn *c, nm_tls_ctx *ctx, nm_tls_role role,
                    const nm_fingerprint *expected);
void nm_conn_on_secure(nm_conn *c, nm_conn_secure_cb cb);
/* The key the peer proved, once the TLS handshake completed (still valid in on_closed);
 * NULL for a plaintext conn or before then. */
const nm_fingerprint *nm_conn_peer_fingerprint(const nm_conn *c);
/* Accepts a pending connection from server into c (initialized) and starts reading. */
int nm_conn_accept(uv_stream_t *server, nm_conn *c);
/* Connects; on_connect is called exactly once unless the owner closes the conn first.
 * With TLS, on_connect(c, 0) means the handshake completed and the peer's key matched
 * (in either TLS role).
 * TLS 1.3 lets the client finish first: a server that refuses the client's key says so
 * with an alert the client reads afterwards, and the session then closes with NM_ETLS. */
int nm_conn_connect(nm_conn *c, const struct sockaddr *addr, unsigned timeout_ms,
                    nm_conn_connect_cb on_connect);
/* Fails the session with reason unless nm_conn_deadline_clear() is called within ms:
 * a peer that connects and then stays silent, or stops mid-frame, must not hold a
 * descriptor for ever. Uses the connect timer, so only once connected. With TLS it
 * replaces the handshake deadline, and the handshake does not clear it. */
void nm_conn_deadline(nm_conn *c, unsigned ms, const char *reason);
void nm_conn_deadline_clear(nm_conn *c);
/* Stops and restarts reading (e.g. while a reverse lookup decides whether to talk). As on a
 * plaintext session, what already arrived in the same read is still delivered. */
void nm_conn_pause(nm_conn *c);
int nm_conn_resume(nm_conn *c);
/* Queues one frame. Returns 0, NM_EQUEUE_FULL when the peer is not reading fast enough
 * (the caller decides whether that ends the session), UV_ENOTCONN before the conn (or its
 * TLS handshake) is complete, or another negative code. */
int nm_conn_send(nm_conn *c, uint8_t type, const char *payload, size_t len);
int nm_conn_send_doc(nm_conn *c, uint8_t type, xmlDoc *doc);
/* Queues a frame built once for many sessions (nm_sbuf): the same bytes, not a copy, on a
 * plaintext conn (a reference is held until written); encrypted for this session with TLS.
 * Returns as nm_conn_send. The caller keeps its own reference. */
int nm_conn_send_shared(nm_conn *c, nm_sbuf *sb);
/* Parses a frame's payload as XML whose root element must be root_name. On failure the
 * session is failed with a reason saying what was wrong, and NULL is returned; on success
 * *doc is the caller's to free. */
xmlNode *nm_conn_parse_doc(nm_conn *c, const char *payload, size_t len, const char *root_name,
                           xmlDoc **doc);
/* Best-effort error frame to the peer, then close. */
void nm_conn_fail(nm_conn *c, int err, const char *reason);
/* The one close path. Idempotent. err may be 0 for a normal close. */
void nm_conn_close(nm_conn *c, int err, const char *reason);
void nm_conn_set_label(nm_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Formats ip:port of a sockaddr into out. */
void nm_sockaddr_format(const struct sockaddr *sa, char *ip, size_t iplen, uint16_t *port);

#endif
