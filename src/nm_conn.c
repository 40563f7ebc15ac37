#include "nm_conn.h"
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
  ip[0] = 0;
  *port = 0;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    uv_ip4_name(in, ip, iplen);
    *port = ntohs(in->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    uv_ip6_name(in6, ip, iplen);
    *port = ntohs(in6->sin6_port);
    /* Show IPv4-mapped addresses as plain IPv4, so bans and logs match what users type. */
    if (strncmp(ip, "::ffff:", 7) == 0 && strchr(ip + 7, '.')) memmove(ip, ip + 7, strlen(ip + 7) + 1);
  }
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
  if (type == NM_MSG_ERROR) {
    /* The peer tells us why it is closing; show it, then close our side. */
    /* The text is the peer's: never let it forge log lines or drive a terminal. */
    char text[301];
    size_t n = 0;
    for (; n < len && n < sizeof text - 1; n++) {
      unsigned char ch = (unsigned char)payload[n];
      text[n] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    text[n] = 0;
    nm_log_warn("%s (%s:%u) reports an error: %s", c->label, c->peer_ip, c->peer_port, text);
    nm_conn_close(c, 0, NULL);
    return 1;
  }
  int stop = c->on_frame ? c->on_frame(c, type, payload, len) : 0;
  return stop || c->closing;
}

static void nm__conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  nm_conn *c = s->data;
  if (nread == 0) return;
  if (nread < 0) {
    nm_conn_close(c, nread == UV_EOF ? 0 : (int)nread,
                  nread == UV_EOF ? "closed by peer" : uv_strerror((int)nread));
    return;
  }
  int rc = nm_frame_reader_feed(&c->reader, buf->base, (size_t)nread, nm__conn_on_frame, c);
  if (rc < 0 && !c->closing) {
    char why[160];
    snprintf(why, sizeof why, "bad frame: %s", nm_strerror(rc));
    nm_conn_fail(c, rc, why);
  }
}

static int nm__conn_start(nm_conn *c) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
    nm_sockaddr_format((struct sockaddr *)&ss, c->peer_ip, sizeof c->peer_ip, &c->peer_port);
  uv_tcp_nodelay(&c->tcp, 1);
  uv_tcp_keepalive(&c->tcp, 1, 30);
  c->connected = 1;
  return uv_read_start((uv_stream_t *)&c->tcp, nm__conn_alloc, nm__conn_on_read);
}

static void nm__conn_on_deadline(uv_timer_t *t) {
  nm_conn *c = t->data;
  if (!c->closing) nm_conn_fail(c, NM_EMSG, c->deadline_reason);
}

void nm_conn_deadline(nm_conn *c, unsigned ms, const char *reason) {
  c->deadline_reason = reason;
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

int nm_conn_accept(uv_stream_t *server, nm_conn *c) {
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
  uv_timer_stop(&c->timer);
  if (c->closing) return;
  nm_conn_connect_cb cb = c->on_connect;
  c->on_connect = NULL;
  if (status == 0) status = nm__conn_start(c);
  if (cb) cb(c, status);
  if (status < 0) nm_conn_close(c, status, "connect failed");
}

int nm_conn_connect(nm_conn *c, const struct sockaddr *addr, unsigned timeout_ms,
                    nm_conn_connect_cb on_connect) {
  nm_sockaddr_format(addr, c->peer_ip, sizeof c->peer_ip, &c->peer_port);
  c->on_connect = on_connect;
  c->connect_req.data = c;
  int rc = uv_tcp_connect(&c->connect_req, &c->tcp, addr, nm__conn_on_connected);
  if (rc < 0) return rc;
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

int nm_conn_send(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  if (c->closing || !c->connected) return UV_ENOTCONN;
  if (len > NM_FRAME_MAX) return NM_EFRAME_TOO_BIG;
  size_t total = NM_FRAME_HEADER + len;
  if (c->queued_bytes + total > c->max_queue) return NM_EQUEUE_FULL;
  nm__write *w = malloc(sizeof *w + total);
  if (!w) return -ENOMEM;
  w->conn = c;
  w->len = total;
  nm_frame_header_encode((uint8_t *)w->data, type, (uint32_t)len);
  if (len) memcpy(w->data + NM_FRAME_HEADER, payload, len);
  uv_buf_t buf = uv_buf_init(w->data, (unsigned)total);
  int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, nm__conn_on_write);
  if (rc < 0) {
    free(w);
    return rc;
  }
  c->queued_bytes += total;
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
  if (c->connected && reason) {
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
  if (c->on_closed) c->on_closed(c);
}

void nm_conn_close(nm_conn *c, int err, const char *reason) {
  if (c->closing) return;
  c->closing = 1;
  if (reason) {
    if (err && err != UV_ECANCELED)
      nm_log_warn("%s (%s:%u) closed: %s", c->label, c->peer_ip, c->peer_port, reason);
    else
      nm_log_info("%s (%s:%u) closed: %s", c->label, c->peer_ip, c->peer_port, reason);
  }
  uv_timer_stop(&c->timer);
  if (c->connected) uv_read_stop((uv_stream_t *)&c->tcp);
  uv_close((uv_handle_t *)&c->tcp, nm__conn_on_handle_closed);
  uv_close((uv_handle_t *)&c->timer, nm__conn_on_handle_closed);
}
