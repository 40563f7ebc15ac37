/* The cost of TLS on an nm_conn, measured against the same nm_conn in plaintext in the same
 * run: frames per second over loopback for small frames (64 B; 300 B, a signed chat line) and for
 * large ones (a peer list), and complete handshakes per second (what a manager pays when
 * servants join). It prints the figures and their ratios as "measure ..." lines; as a ctest
 * test it asserts only that every frame arrived, never a time.
 *
 *   bench_tls [scale]      scale multiplies the frame counts (default 1) */
#include "nm_conn.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_proto.h"
#include "nm_tls.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static nm_identity id_s, id_c;
static nm_tls_ctx ctx_s, ctx_c;

typedef struct {
  uv_loop_t loop;
  uv_tcp_t listener;
  struct sockaddr_in addr;
  nm_conn srv, cli;
  int use_tls, srv_used, cli_ready, srv_ready, closed, failed;
  uint64_t frames, bytes;
} bench;

static int srv_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  bench *b = c->data;
  (void)type, (void)payload;
  b->frames++;
  b->bytes += len;
  return 0;
}

static void on_closed(nm_conn *c) { ((bench *)c->data)->closed++; }

static void srv_secure(nm_conn *c, const nm_fingerprint *fp) {
  (void)fp;
  nm_frame_reader_set_max(&c->reader, NM_FRAME_MAX);
  ((bench *)c->data)->srv_ready = 1;
}

static void cli_connected(nm_conn *c, int status) {
  bench *b = c->data;
  if (status == 0)
    b->cli_ready = 1;
  else
    b->failed = 1;
}

static void on_accept(uv_stream_t *server, int status) {
  bench *b = server->data;
  if (status < 0 || b->srv_used) return;
  nm_conn_init(&b->loop, &b->srv, srv_frame, on_closed, b);
  b->srv_used = 1;
  if (b->use_tls) {
    nm_conn_set_tls(&b->srv, &ctx_s, NM_TLS_SERVER, &id_c.fp);
    nm_conn_on_secure(&b->srv, srv_secure);
  }
  if (nm_conn_accept(server, &b->srv) < 0) b->failed = 1;
  if (!b->use_tls) {
    nm_frame_reader_set_max(&b->srv.reader, NM_FRAME_MAX);
    b->srv_ready = 1;
  }
}

static void bench_open(bench *b, int use_tls) {
  memset(b, 0, sizeof *b);
  b->use_tls = use_tls;
  uv_loop_init(&b->loop);
  uv_tcp_init(&b->loop, &b->listener);
  b->listener.data = b;
  uv_ip4_addr("127.0.0.1", 0, &b->addr);
  uv_tcp_bind(&b->listener, (struct sockaddr *)&b->addr, 0);
  uv_listen((uv_stream_t *)&b->listener, 128, on_accept);
  int len = sizeof b->addr;
  uv_tcp_getsockname(&b->listener, (struct sockaddr *)&b->addr, &len);
}

static int bench_connect(bench *b) {
  nm_conn_init(&b->loop, &b->cli, NULL, on_closed, b);
  if (b->use_tls) nm_conn_set_tls(&b->cli, &ctx_c, NM_TLS_CLIENT, &id_s.fp);
  nm_conn_connect(&b->cli, (struct sockaddr *)&b->addr, 5000, cli_connected);
  while (!(b->cli_ready && b->srv_ready) && !b->failed && !b->closed)
    uv_run(&b->loop, UV_RUN_ONCE);
  return b->cli_ready && b->srv_ready ? 0 : -1;
}

static void bench_close(bench *b) {
  if (b->srv_used && !b->srv.closing) nm_conn_close(&b->srv, 0, NULL);
  if (!b->cli.closing) nm_conn_close(&b->cli, 0, NULL);
  uv_close((uv_handle_t *)&b->listener, NULL);
  uv_run(&b->loop, UV_RUN_DEFAULT);
  uv_loop_close(&b->loop);
}

/* Sends count frames of size bytes as fast as the write queue allows; returns frames per
 * second as the server counted them, or -1 if any went missing. */
static double bench_frames(int use_tls, size_t size, uint64_t count) {
  bench b;
  bench_open(&b, use_tls);
  if (bench_connect(&b) < 0) {
    bench_close(&b);
    return -1;
  }
  char *payload = malloc(size ? size : 1);
  memset(payload, 'x', size);
  uint64_t t0 = uv_hrtime(), sent = 0;
  while (sent < count && !b.closed) {
    int rc = nm_conn_send(&b.cli, NM_MSG_CHAT, payload, size);
    if (rc == 0)
      sent++;
    else if (rc == NM_EQUEUE_FULL)
      uv_run(&b.loop, UV_RUN_ONCE);
    else
      break;
  }
  while (b.frames < sent && !b.closed) uv_run(&b.loop, UV_RUN_ONCE);
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  free(payload);
  int ok = b.frames == count && b.bytes == count * size;
  bench_close(&b);
  return ok && secs > 0 ? (double)count / secs : -1;
}

/* Complete connections per second: connect, handshake (if TLS), both sides ready, close. */
static double bench_handshakes(int use_tls, int count) {
  uint64_t t0 = uv_hrtime();
  for (int i = 0; i < count; i++) {
    bench b;
    bench_open(&b, use_tls);
    int rc = bench_connect(&b);
    bench_close(&b);
    if (rc < 0) return -1;
  }
  return (double)count / ((double)(uv_hrtime() - t0) / 1e9);
}

static int report(const char *what, double plain, double tls) {
  if (plain <= 0 || tls <= 0) {
    printf("FAIL %s: frames or sessions went missing\n", what);
    return 1;
  }
  printf("measure nm_conn %s per second: plaintext %.0f, TLS 1.3 %.0f, TLS/plaintext %.2f\n",
         what, plain, tls, tls / plain);
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  nm_log_init("bench_tls", NM_LOG_ERROR);
  int scale = argc > 1 ? atoi(argv[1]) : 1;
  if (scale < 1) scale = 1;
  char err[300] = "";
  if (nm_identity_generate(&id_s) || nm_identity_generate(&id_c) ||
      nm_tls_ctx_init(&ctx_s, &id_s, err, sizeof err) ||
      nm_tls_ctx_init(&ctx_c, &id_c, err, sizeof err)) {
    fprintf(stderr, "setup failed: %s\n", err);
    return 1;
  }
  int fails = 0;
  uint64_t small_n = 50000ull * (uint64_t)scale, large_n = 400ull * (uint64_t)scale;
  fails += report("64-byte frames", bench_frames(0, 64, small_n), bench_frames(1, 64, small_n));
  /* A relayed chat line: a signed chat frame of a short text is about 300 bytes. */
  fails += report("300-byte frames (a chat line)", bench_frames(0, 300, small_n),
                  bench_frames(1, 300, small_n));
  fails += report("64 KiB frames", bench_frames(0, 64 * 1024, large_n),
                  bench_frames(1, 64 * 1024, large_n));
  fails += report("sessions (connect, handshake, close)", bench_handshakes(0, 100 * scale),
                  bench_handshakes(1, 100 * scale));
  nm_tls_ctx_close(&ctx_s);
  nm_tls_ctx_close(&ctx_c);
  nm_identity_close(&id_s);
  nm_identity_close(&id_c);
  return fails ? 1 : 0;
}
