/* The baseline servers of natmesh-loadgen, each in a child process of its own (so that, as
 * with the real manager, client and server each can have a core):
 *
 *   bare  a minimal libuv ping-pong server, plaintext: one heartbeat-ack frame written
 *         straight to the socket per frame read. A frame of type LG_BCAST_REQ carrying a
 *         decimal size B makes it write one frame of B bytes (header included) of type
 *         LG_BCAST to every connection it holds: a plain TCP stream of the bytes a change
 *         costs, to N readers (the join/leave baseline).
 *   tls   the same ping-pong with nm_conn + nm_tls (TLS 1.3, Ed25519) as the manager
 *         speaks it: the baseline for registration time, CPU and memory per session. */
#include "lg_servers.h"

#include "nm_conn.h"
#include "nm_error.h"
#include "nm_frame.h"
#include "nm_identity.h"
#include "nm_proto.h"
#include "nm_tls.h"

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static const char *lg__ack;
static size_t lg__ack_len; /* a whole frame: header and payload */

/* ---- bare ----------------------------------------------------------------------------- */

typedef struct lg__bare lg__bare;
struct lg__bare {
  uv_tcp_t tcp;
  nm_frame_reader reader;
  lg__bare *prev, *next; /* every open connection, for the broadcast */
};

static lg__bare *lg__bare_all;
static char lg__bare_buf[65536];
static char *lg__bcast; /* the broadcast frame, kept until the next one */

static void lg__bare_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  *buf = uv_buf_init(lg__bare_buf, sizeof lg__bare_buf);
}

static void lg__bare_closed(uv_handle_t *h) {
  lg__bare *b = h->data;
  if (b->prev) b->prev->next = b->next;
  else lg__bare_all = b->next;
  if (b->next) b->next->prev = b->prev;
  nm_frame_reader_close(&b->reader);
  free(b);
}

static void lg__bare_written(uv_write_t *req, int status) { free(req); }

/* Writes len bytes of data (static or kept until written) to b; returns 0 or -1. */
static int lg__bare_write(lg__bare *b, const char *data, size_t len) {
  uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
  int n = uv_try_write((uv_stream_t *)&b->tcp, &buf, 1);
  if (n == (int)len) return 0;
  if (n < 0 && n != UV_EAGAIN) return -1;
  if (n < 0) n = 0;
  uv_write_t *req = malloc(sizeof *req);
  buf = uv_buf_init((char *)data + n, (unsigned)(len - (size_t)n));
  if (!req || uv_write(req, (uv_stream_t *)&b->tcp, &buf, 1, lg__bare_written) < 0) return free(req), -1;
  return 0;
}

static void lg__bare_broadcast(size_t size) {
  if (size < NM_FRAME_HEADER) size = NM_FRAME_HEADER;
  if (size > 65536) size = 65536;
  free(lg__bcast); /* the previous broadcast's writes completed long since (one per run) */
  lg__bcast = malloc(size);
  if (!lg__bcast) return;
  nm_frame_header_encode((uint8_t *)lg__bcast, LG_BCAST, (uint32_t)(size - NM_FRAME_HEADER));
  memset(lg__bcast + NM_FRAME_HEADER, 'x', size - NM_FRAME_HEADER);
  for (lg__bare *b = lg__bare_all; b; b = b->next) lg__bare_write(b, lg__bcast, size);
}

static int lg__bare_frame(void *arg, uint8_t type, const char *payload, size_t len) {
  lg__bare *b = arg;
  if (type == LG_BCAST_REQ) {
    char num[24];
    snprintf(num, sizeof num, "%.*s", (int)(len < 20 ? len : 20), payload);
    lg__bare_broadcast((size_t)strtoul(num, NULL, 10));
    return 0;
  }
  return lg__bare_write(b, lg__ack, lg__ack_len) < 0;
}

static void lg__bare_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  lg__bare *b = s->data;
  if (n > 0 && nm_frame_reader_feed(&b->reader, buf->base, (size_t)n, lg__bare_frame, b) == 0) return;
  if (n == 0) return;
  if (!uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, lg__bare_closed);
}

static void lg__bare_accept(uv_stream_t *server, int status) {
  if (status < 0) return;
  lg__bare *b = calloc(1, sizeof *b);
  if (!b) return;
  uv_tcp_init(server->loop, &b->tcp);
  b->tcp.data = b;
  nm_frame_reader_init(&b->reader, NM_FRAME_MAX);
  b->next = lg__bare_all;
  if (lg__bare_all) lg__bare_all->prev = b;
  lg__bare_all = b;
  if (uv_accept(server, (uv_stream_t *)&b->tcp) < 0) {
    uv_close((uv_handle_t *)&b->tcp, lg__bare_closed);
    return;
  }
  uv_tcp_nodelay(&b->tcp, 1);
  uv_read_start((uv_stream_t *)&b->tcp, lg__bare_alloc, lg__bare_read);
}

/* ---- tls ------------------------------------------------------------------------------ */

static nm_tls_ctx lg__srv_ctx;

static int lg__tls_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  int rc = nm_conn_send(c, NM_MSG_HEARTBEAT_ACK, lg__ack + NM_FRAME_HEADER, lg__ack_len - NM_FRAME_HEADER);
  if (rc < 0 && rc != NM_EQUEUE_FULL) return nm_conn_close(c, rc, "send"), 1;
  return 0;
}

static void lg__tls_closed(nm_conn *c) { free(c); }

static void lg__tls_secure(nm_conn *c, const nm_fingerprint *fp) {
  nm_frame_reader_set_max(&c->reader, NM_FRAME_MAX);
}

static void lg__tls_accept(uv_stream_t *server, int status) {
  if (status < 0) return;
  nm_conn *c = calloc(1, sizeof *c);
  if (!c) return;
  nm_conn_init(server->loop, c, lg__tls_frame, lg__tls_closed, NULL);
  nm_conn_set_tls(c, &lg__srv_ctx, NM_TLS_SERVER, NULL);
  nm_conn_on_secure(c, lg__tls_secure);
  nm_conn_accept(server, c);
}

/* ---- the child ------------------------------------------------------------------------- */

pid_t lg_server_start(lg_server_kind kind, const char *ack_frame, size_t ack_len, uint16_t *port) {
  int fds[2];
  if (pipe(fds) < 0) return -1;
  pid_t pid = fork();
  if (pid != 0) {
    close(fds[1]);
    if (pid > 0 && read(fds[0], port, sizeof *port) != (ssize_t)sizeof *port) pid = -1;
    close(fds[0]);
    return pid;
  }
  close(fds[0]);
  signal(SIGPIPE, SIG_IGN);
  lg__ack = ack_frame;
  lg__ack_len = ack_len;
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_loop_init(&loop);
  uv_tcp_init(&loop, &listener);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  uv_tcp_bind(&listener, (struct sockaddr *)&addr, 0);
  if (kind == LG_SERVER_TLS) {
    nm_identity id;
    char err[300];
    if (nm_identity_generate(&id) || nm_tls_ctx_init(&lg__srv_ctx, &id, err, sizeof err)) _exit(1);
    nm_identity_close(&id);
  }
  if (uv_listen((uv_stream_t *)&listener, 4096, kind == LG_SERVER_BARE ? lg__bare_accept : lg__tls_accept) < 0)
    _exit(1);
  int len = sizeof addr;
  uv_tcp_getsockname(&listener, (struct sockaddr *)&addr, &len);
  uint16_t p = ntohs(addr.sin_port);
  if (write(fds[1], &p, sizeof p) != (ssize_t)sizeof p) _exit(1);
  close(fds[1]);
  uv_run(&loop, UV_RUN_DEFAULT);
  _exit(0);
}
