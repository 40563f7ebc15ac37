/* nm_conn: one framed TCP session on the libuv loop, shared by every natmesh program.
 *
 * It owns the read path (a resumable frame reader with a size limit that the owner raises
 * once the peer has identified itself), a bounded write queue, an optional connect timeout,
 * and the one close path: nm_conn_close(c, err, reason) logs why, closes both handles, and
 * only when libuv has called back for both does it call on_closed, where the owner may free
 * the memory the conn is embedded in. */
#ifndef NM_CONN_H
#define NM_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <libxml/tree.h>

#include "nm_frame.h"

#define NM_CONN_MAX_QUEUE (4u * 1024u * 1024u)

typedef struct nm_conn nm_conn;
/* Called for each complete frame. Return non-zero if the conn was closed inside. */
typedef int (*nm_conn_frame_cb)(nm_conn *c, uint8_t type, const char *payload, size_t len);
/* status 0: connected and reading. < 0: failed; the conn is being closed. */
typedef void (*nm_conn_connect_cb)(nm_conn *c, int status);
typedef void (*nm_conn_closed_cb)(nm_conn *c);

struct nm_conn {
  uv_tcp_t tcp;
  uv_timer_t timer; /* connect timeout */
  uv_connect_t connect_req;
  nm_frame_reader reader;
  size_t queued_bytes;
  size_t max_queue;
  int open_handles;
  int closing;
  int connected;
  char peer_ip[64];
  uint16_t peer_port;
  char label[96]; /* who this is, for log lines */
  const char *deadline_reason;
  nm_conn_frame_cb on_frame;
  nm_conn_connect_cb on_connect;
  nm_conn_closed_cb on_closed;
  void *data; /* the owner's */
};

int nm_conn_init(uv_loop_t *loop, nm_conn *c, nm_conn_frame_cb on_frame,
                 nm_conn_closed_cb on_closed, void *data);
/* Accepts a pending connection from server into c (initialized) and starts reading. */
int nm_conn_accept(uv_stream_t *server, nm_conn *c);
/* Connects; on_connect is called exactly once unless the conn is closed first. */
int nm_conn_connect(nm_conn *c, const struct sockaddr *addr, unsigned timeout_ms,
                    nm_conn_connect_cb on_connect);
/* Fails the session with reason unless nm_conn_deadline_clear() is called within ms:
 * a peer that connects and then stays silent, or stops mid-frame, must not hold a
 * descriptor for ever. Uses the connect timer, so only once connected. */
void nm_conn_deadline(nm_conn *c, unsigned ms, const char *reason);
void nm_conn_deadline_clear(nm_conn *c);
/* Stops and restarts reading (e.g. while a reverse lookup decides whether to talk). */
void nm_conn_pause(nm_conn *c);
int nm_conn_resume(nm_conn *c);
/* Queues one frame. Returns 0, NM_EQUEUE_FULL when the peer is not reading fast enough
 * (the caller decides whether that ends the session), or another negative code. */
int nm_conn_send(nm_conn *c, uint8_t type, const char *payload, size_t len);
int nm_conn_send_doc(nm_conn *c, uint8_t type, xmlDoc *doc);
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
