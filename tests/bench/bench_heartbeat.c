/* Heartbeats answered per second by the manager, against a bare libuv ping-pong measured in
 * the same run (issue 9: the cost of encryption, measured).
 *
 * A load generator (this process, one libuv loop) holds N sessions that each send a
 * heartbeat frame in a closed loop: send, wait for the ack, send again. For each N it runs,
 * for the same duration, against servers in child processes (so that, as with the real
 * manager, client and server each have a core of their own):
 *   bare      a bare libuv ping-pong: plaintext, one ack-sized frame written straight to the
 *             socket per frame read (the baseline; an nm_frame_reader finds the frames);
 *   conn      the same ping-pong with nm_conn on both ends, plaintext;
 *   conn-tls  the same with nm_conn + nm_tls (TLS 1.3, Ed25519) on both ends: conn-tls/conn
 *             is the cost of TLS alone;
 *   manager   the real natmesh-manager (--open, loopback, a temporary state directory), with
 *             N fake servants registered over TLS with their own keys (hello, welcome,
 *             listening, peers, through nm_msg), then heartbeating;
 *   before    optionally (--before PATH), a manager from before TLS (b96444a) spoken to in
 *             its plaintext protocol: the same hello, no TLS.
 * Every payload is what the manager sends and receives (nm_msg_encode of a heartbeat and of
 * a heartbeat-ack), so every ping-pong moves the same bytes as the manager does.
 *
 * It prints "measure heartbeat ..." lines with each figure as a ratio against the bare
 * ping-pong of the same N. As a ctest test it asserts only that every run completed, every
 * session registered and every rate is positive, never a time.
 *
 *   bench_heartbeat --manager PATH [--before PATH] [--sizes 50,500] [--seconds 2] */
#include "nm_conn.h"
#include "nm_error.h"
#include "nm_frame.h"
#include "nm_log.h"
#include "nm_msg.h"
#include "nm_proto.h"
#include "nm_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

enum { T_BARE, T_CONN, T_CONN_TLS, T_MANAGER, T_BEFORE, T_COUNT };
static const char *const target_name[T_COUNT] = {
    "bare libuv ping-pong", "nm_conn plaintext ping-pong", "nm_conn TLS 1.3 ping-pong",
    "manager over TLS", "manager before TLS (b96444a, plaintext)"};

#define REGISTER_IN_FLIGHT 6 /* below the manager's 8 unauthenticated sessions per address */
#define WARMUP_MS 300
#define SLICES 5 /* parts of a measuring window; the best one counts */

static nm_msgbuf hb_payload, ack_payload;
static char ack_frame[NM_FRAME_HEADER + 256];
static size_t ack_frame_len;

/* ---- the ping-pong servers (child processes) ----------------------------------------- */

typedef struct {
  uv_tcp_t tcp;
  nm_frame_reader reader;
} bare_conn;

static char bare_buf[65536];

static void bare_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)h, (void)size;
  *buf = uv_buf_init(bare_buf, sizeof bare_buf);
}

static void bare_closed(uv_handle_t *h) {
  bare_conn *b = h->data;
  nm_frame_reader_close(&b->reader);
  free(b);
}

static void bare_written(uv_write_t *req, int status) {
  (void)status;
  free(req);
}

static int bare_frame(void *arg, uint8_t type, const char *payload, size_t len) {
  bare_conn *b = arg;
  (void)type, (void)payload, (void)len;
  uv_buf_t buf = uv_buf_init(ack_frame, (unsigned)ack_frame_len);
  int n = uv_try_write((uv_stream_t *)&b->tcp, &buf, 1);
  if (n == (int)ack_frame_len) return 0;
  if (n < 0 && n != UV_EAGAIN) return 1;
  if (n < 0) n = 0;
  /* The rest waits in libuv's queue (ack_frame is static: it outlives the write). */
  uv_write_t *req = malloc(sizeof *req);
  buf = uv_buf_init(ack_frame + n, (unsigned)(ack_frame_len - (size_t)n));
  if (!req || uv_write(req, (uv_stream_t *)&b->tcp, &buf, 1, bare_written) < 0) return free(req), 1;
  return 0;
}

static void bare_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  bare_conn *b = s->data;
  if (n > 0 && nm_frame_reader_feed(&b->reader, buf->base, (size_t)n, bare_frame, b) == 0) return;
  if (n == 0) return;
  if (!uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, bare_closed);
}

static void bare_accept(uv_stream_t *server, int status) {
  if (status < 0) return;
  bare_conn *b = calloc(1, sizeof *b);
  uv_tcp_init(server->loop, &b->tcp);
  b->tcp.data = b;
  nm_frame_reader_init(&b->reader, NM_FRAME_MAX);
  if (uv_accept(server, (uv_stream_t *)&b->tcp) < 0) {
    uv_close((uv_handle_t *)&b->tcp, bare_closed);
    return;
  }
  uv_tcp_nodelay(&b->tcp, 1);
  uv_read_start((uv_stream_t *)&b->tcp, bare_alloc, bare_read);
}

static nm_tls_ctx srv_ctx;
static int srv_tls;

static int pp_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  (void)type, (void)payload, (void)len;
  int rc = nm_conn_send(c, NM_MSG_HEARTBEAT_ACK, ack_payload.data, ack_payload.len);
  if (rc < 0 && rc != NM_EQUEUE_FULL) {
    nm_conn_close(c, rc, "send");
    return 1;
  }
  return 0;
}

static void pp_closed(nm_conn *c) { free(c); }

static void pp_secure(nm_conn *c, const nm_fingerprint *fp) {
  (void)fp;
  nm_frame_reader_set_max(&c->reader, NM_FRAME_MAX);
}

static void pp_accept(uv_stream_t *server, int status) {
  if (status < 0) return;
  nm_conn *c = calloc(1, sizeof *c);
  nm_conn_init(server->loop, c, pp_frame, pp_closed, NULL);
  if (srv_tls) {
    nm_conn_set_tls(c, &srv_ctx, NM_TLS_SERVER, NULL);
    nm_conn_on_secure(c, pp_secure);
  }
  if (nm_conn_accept(server, c) < 0) return;
  if (!srv_tls) nm_frame_reader_set_max(&c->reader, NM_FRAME_MAX);
}

/* Runs a ping-pong server for target t in a child; returns its pid and its port. */
static pid_t serve(int t, uint16_t *port) {
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
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_loop_init(&loop);
  uv_tcp_init(&loop, &listener);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  uv_tcp_bind(&listener, (struct sockaddr *)&addr, 0);
  srv_tls = t == T_CONN_TLS;
  if (srv_tls) {
    nm_identity id;
    char err[300];
    if (nm_identity_generate(&id) || nm_tls_ctx_init(&srv_ctx, &id, err, sizeof err)) _exit(1);
    nm_identity_close(&id);
  }
  if (uv_listen((uv_stream_t *)&listener, 1024, t == T_BARE ? bare_accept : pp_accept) < 0) _exit(1);
  int len = sizeof addr;
  uv_tcp_getsockname(&listener, (struct sockaddr *)&addr, &len);
  uint16_t p = ntohs(addr.sin_port);
  if (write(fds[1], &p, sizeof p) != (ssize_t)sizeof p) _exit(1);
  close(fds[1]);
  uv_run(&loop, UV_RUN_DEFAULT);
  _exit(0);
}

/* ---- the manager (a child process) ----------------------------------------------------- */

static char state_dir[64]; /* the benchmark's temporary directory */
static char mgr_dir[96];   /* the running manager's state directory: a fresh one each time */

static uint16_t free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) < 0)
    return 0;
  close(fd);
  return ntohs(a.sin_port);
}

static pid_t start_manager(const char *path, int with_tls, uint16_t *port, const char *log) {
  static int runs;
  snprintf(mgr_dir, sizeof mgr_dir, "%s/manager%d", state_dir, ++runs);
  *port = free_port();
  char portstr[8];
  snprintf(portstr, sizeof portstr, "%u", *port);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) dup2(fd, 1), dup2(fd, 2);
    if (with_tls)
      execl(path, path, "--open", "--state-dir", mgr_dir, "--listen", "127.0.0.1", "--port",
            portstr, (char *)NULL);
    else
      execl(path, path, "--listen", "127.0.0.1", "--port", portstr, (char *)NULL);
    _exit(127);
  }
  if (pid < 0) return -1;
  /* Ready when it accepts a connection (the probe closes at once: an idle, unauthenticated
   * session that costs the manager one log line). */
  for (int i = 0; i < 200; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(*port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    if (ok) return pid;
    if (waitpid(pid, NULL, WNOHANG) == pid) return -1;
    usleep(50 * 1000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

static void stop_child(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 100; i++) {
    if (waitpid(pid, NULL, WNOHANG) == pid) return;
    usleep(20 * 1000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

/* ---- the load generator ------------------------------------------------------------------ */

enum { S_IDLE, S_CONNECTING, S_HELLO, S_LISTENING, S_READY };
enum { P_SETUP, P_RUN, P_DRAIN };

typedef struct run run;
typedef struct {
  nm_conn conn;
  run *run;
  int index, state, outstanding, closed;
  nm_identity id;
  nm_tls_ctx ctx;
  int has_ctx;
} sess;

struct run {
  uv_loop_t loop;
  int target, n, phase, next, ready, failed, closed;
  int counting;
  uint64_t acks;
  struct sockaddr_in addr;
  sess *s;
  nm_tls_ctx *shared_ctx; /* ping-pong clients share one key */
  char why[300];
};

static int is_manager(int t) { return t == T_MANAGER || t == T_BEFORE; }
static int uses_tls(int t) { return t == T_CONN_TLS || t == T_MANAGER; }

__attribute__((format(printf, 2, 3)))
static void run_fail(run *r, const char *fmt, ...) {
  if (!r->failed) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
  }
  r->failed = 1;
}

static void start_next(run *r);

static int send_heartbeat(sess *s) {
  int rc = nm_conn_send(&s->conn, NM_MSG_HEARTBEAT, hb_payload.data, hb_payload.len);
  if (rc < 0) return run_fail(s->run, "heartbeat: %s", nm_strerror(rc)), -1;
  s->outstanding = 1;
  return 0;
}

static void sess_ready(sess *s) {
  s->state = S_READY;
  s->run->ready++;
  start_next(s->run);
}

static int sess_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  sess *s = c->data;
  run *r = s->run;
  if (type == NM_MSG_HEARTBEAT_ACK && s->state == S_READY) {
    s->outstanding = 0;
    if (r->counting) r->acks++;
    if (r->phase == P_RUN) send_heartbeat(s);
    return 0;
  }
  if (type == NM_MSG_ERROR) {
    char msg[120];
    snprintf(msg, sizeof msg, "%.*s", (int)(len < 100 ? len : 100), payload);
    run_fail(r, "the server sent an error: %s", msg);
    return 0;
  }
  if (type == NM_MSG_WELCOME && s->state == S_HELLO) {
    nm_msg m = {.type = NM_MSG_LISTENING};
    m.u.listening.port = (uint16_t)(20000 + s->index);
    if (nm_msg_send(c, &m) < 0) run_fail(r, "%s", "listening: send failed");
    s->state = S_LISTENING;
  } else if (type == NM_MSG_PEERS && s->state == S_LISTENING) {
    sess_ready(s);
  }
  return 0; /* deltas, relay assignments and the like: not this benchmark's business */
}

static void sess_closed(nm_conn *c) {
  sess *s = c->data;
  s->closed = 1;
  s->run->closed++;
  if (s->run->phase != P_DRAIN)
    run_fail(s->run, "session %d (state %d) closed: %s%s%s", s->index, s->state,
             nm_strerror(c->close_err), c->peer_error[0] ? ", the server said: " : "", c->peer_error);
}

static void sess_connected(nm_conn *c, int status) {
  sess *s = c->data;
  run *r = s->run;
  if (status < 0) return run_fail(r, "connect: %s", nm_strerror(status));
  nm_frame_reader_set_max(&c->reader, NM_FRAME_MAX);
  if (!is_manager(r->target)) return sess_ready(s);
  nm_msg m = {.type = NM_MSG_HELLO};
  snprintf(m.u.hello.id, sizeof m.u.hello.id, "%s", nm_identity_id(&s->id));
  snprintf(m.u.hello.name, sizeof m.u.hello.name, "bench%d", s->index);
  m.u.hello.role = NM_ROLE_SERVANT;
  m.u.hello.port = (uint16_t)(20000 + s->index);
  if (nm_msg_send(c, &m) < 0) return run_fail(r, "%s", "hello: send failed");
  s->state = S_HELLO;
}

/* Keeps REGISTER_IN_FLIGHT sessions connecting or registering until all n are ready. */
static void start_next(run *r) {
  while (r->next < r->n && r->next - r->ready < REGISTER_IN_FLIGHT && !r->failed) {
    sess *s = &r->s[r->next];
    s->index = r->next++;
    s->run = r;
    nm_conn_init(&r->loop, &s->conn, sess_frame, sess_closed, s);
    if (uses_tls(r->target)) {
      nm_tls_ctx *ctx = r->shared_ctx;
      if (r->target == T_MANAGER) { /* each fake servant proves a key of its own */
        char err[200];
        if (nm_tls_ctx_init(&s->ctx, &s->id, err, sizeof err)) return run_fail(r, "tls: %s", err);
        s->has_ctx = 1;
        ctx = &s->ctx;
      }
      nm_conn_set_tls(&s->conn, ctx, NM_TLS_CLIENT, NULL);
    }
    s->state = S_CONNECTING;
    nm_conn_connect(&s->conn, (struct sockaddr *)&r->addr, 10000, sess_connected);
  }
}

static void on_timer(uv_timer_t *t) { *(int *)t->data = 1; }

/* Runs n sessions against the server at port for seconds; returns acks per second, or -1
 * with the reason in why. */
static double run_target(int target, uint16_t port, int n, double seconds, nm_tls_ctx *shared,
                         char *why, size_t whylen) {
  run *r = calloc(1, sizeof *r);
  r->target = target;
  r->n = n;
  r->shared_ctx = shared;
  r->s = calloc((size_t)n, sizeof *r->s);
  uv_loop_init(&r->loop);
  uv_ip4_addr("127.0.0.1", port, &r->addr);
  for (int i = 0; i < n; i++) {
    nm_identity_generate(&r->s[i].id);
  }

  /* Connect (and register) every session, within a generous bound. */
  int expired = 0;
  uv_timer_t timer;
  uv_timer_init(&r->loop, &timer);
  timer.data = &expired;
  uv_timer_start(&timer, on_timer, 60000, 0);
  start_next(r);
  while (r->ready < n && !r->failed && !expired) uv_run(&r->loop, UV_RUN_ONCE);
  if (!r->failed && r->ready < n) run_fail(r, "%s", "sessions not ready within 60 s");

  double rate = -1;
  if (!r->failed) {
    r->phase = P_RUN;
    for (int i = 0; i < n && !r->failed; i++) send_heartbeat(&r->s[i]);
    expired = 0;
    uv_timer_start(&timer, on_timer, WARMUP_MS, 0);
    while (!expired && !r->failed) uv_run(&r->loop, UV_RUN_ONCE);
    /* The window is cut in SLICES parts and the best part counts: on a shared machine a
     * neighbour's burst lowers one part, not the figure. */
    uint64_t total = 0;
    for (int k = 0; k < SLICES && !r->failed; k++) {
      r->acks = 0;
      r->counting = 1;
      uint64_t t0 = uv_hrtime();
      expired = 0;
      uv_timer_start(&timer, on_timer, (uint64_t)(seconds * 1000 / SLICES), 0);
      while (!expired && !r->failed) uv_run(&r->loop, UV_RUN_ONCE);
      r->counting = 0;
      double secs = (double)(uv_hrtime() - t0) / 1e9, v = (double)r->acks / secs;
      total += r->acks;
      if (v > rate) rate = v;
    }
    r->phase = P_DRAIN;
    r->acks = total;
    if (r->failed) rate = -1;
    if (!r->failed && r->acks == 0) run_fail(r, "%s", "no ack at all");
  }
  r->phase = P_DRAIN;
  uv_timer_stop(&timer);
  uv_close((uv_handle_t *)&timer, NULL);
  for (int i = 0; i < r->next; i++)
    if (!r->s[i].conn.closing) nm_conn_close(&r->s[i].conn, 0, NULL);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  uv_loop_close(&r->loop);
  for (int i = 0; i < n; i++) {
    if (r->s[i].has_ctx) nm_tls_ctx_close(&r->s[i].ctx);
    nm_identity_close(&r->s[i].id);
  }
  snprintf(why, whylen, "%s", r->why);
  free(r->s);
  free(r);
  return rate;
}

/* ---- main -------------------------------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static void print_rate(char *out, size_t len, double v) {
  long x = (long)(v + 0.5);
  if (x >= 1000000)
    snprintf(out, len, "%ld,%03ld,%03ld", x / 1000000, x / 1000 % 1000, x % 1000);
  else if (x >= 1000)
    snprintf(out, len, "%ld,%03ld", x / 1000, x % 1000);
  else
    snprintf(out, len, "%ld", x);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  nm_log_init("bench_heartbeat", NM_LOG_ERROR);
  const char *manager = NULL, *before = NULL, *sizes = "50,500";
  double seconds = 2;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--manager") && i + 1 < argc) manager = argv[++i];
    else if (!strcmp(argv[i], "--before") && i + 1 < argc) before = argv[++i];
    else if (!strcmp(argv[i], "--sizes") && i + 1 < argc) sizes = argv[++i];
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
    else if (!strcmp(argv[i], "--verbose")) nm_log_set_level(NM_LOG_DEBUG);
    else {
      fprintf(stderr, "usage: bench_heartbeat --manager PATH [--before PATH] [--sizes 50,500] "
                      "[--seconds 2]\n");
      return 2;
    }
  }
  if (!manager || seconds <= 0) {
    fprintf(stderr, "bench_heartbeat: --manager PATH is required\n");
    return 2;
  }

  nm_msg hb = {.type = NM_MSG_HEARTBEAT}, ack = {.type = NM_MSG_HEARTBEAT_ACK};
  hb.u.heartbeat.version = 500, ack.u.heartbeat_ack.version = 500;
  if (nm_msg_encode(&hb, &hb_payload) || nm_msg_encode(&ack, &ack_payload) ||
      ack_payload.len > sizeof ack_frame - NM_FRAME_HEADER)
    return fprintf(stderr, "cannot encode a heartbeat\n"), 1;
  nm_frame_header_encode((uint8_t *)ack_frame, NM_MSG_HEARTBEAT_ACK, (uint32_t)ack_payload.len);
  memcpy(ack_frame + NM_FRAME_HEADER, ack_payload.data, ack_payload.len);
  ack_frame_len = NM_FRAME_HEADER + ack_payload.len;

  snprintf(state_dir, sizeof state_dir, "/tmp/bench_heartbeat.XXXXXX");
  if (!mkdtemp(state_dir)) return perror("mkdtemp"), 1;
  char log[128];
  snprintf(log, sizeof log, "%s/manager.log", state_dir);

  nm_identity cli_id;
  nm_tls_ctx cli_ctx;
  char err[300] = "";
  if (nm_identity_generate(&cli_id) || nm_tls_ctx_init(&cli_ctx, &cli_id, err, sizeof err))
    return fprintf(stderr, "setup failed: %s\n", err), 1;

  int fails = 0;
  for (const char *p = sizes; *p;) {
    int n = atoi(p);
    while (*p && *p != ',') p++;
    if (*p) p++;
    if (n < 1) continue;
    double rate[T_COUNT] = {0};
    for (int t = 0; t < T_COUNT; t++) {
      if (t == T_BEFORE && !before) continue;
      uint16_t port = 0;
      pid_t pid = is_manager(t) ? start_manager(t == T_MANAGER ? manager : before,
                                                t == T_MANAGER, &port, log)
                                : serve(t, &port);
      char why[300] = "";
      if (pid < 0) {
        snprintf(why, sizeof why, "the server did not start (see %s)", log);
        rate[t] = -1;
      } else {
        rate[t] = run_target(t, port, n, seconds, &cli_ctx, why, sizeof why);
      }
      stop_child(pid);
      if (rate[t] <= 0) {
        printf("FAIL heartbeat N=%d, %s: %s\n", n, target_name[t], why);
        fails++;
      }
      fflush(stdout);
    }
    char b[32], v[32];
    if (rate[T_BARE] <= 0) continue;
    print_rate(b, sizeof b, rate[T_BARE]);
    for (int t = T_CONN; t < T_COUNT; t++) {
      if (rate[t] <= 0) continue;
      print_rate(v, sizeof v, rate[t]);
      printf("measure heartbeat N=%d: %s answers %s/s = %.2f x a bare libuv ping-pong (%s/s)\n",
             n, target_name[t], v, rate[t] / rate[T_BARE], b);
    }
    if (rate[T_CONN] > 0 && rate[T_CONN_TLS] > 0)
      printf("measure heartbeat N=%d: TLS alone (nm_conn TLS / plaintext ping-pong) = %.2f\n", n,
             rate[T_CONN_TLS] / rate[T_CONN]);
    if (rate[T_CONN_TLS] > 0 && rate[T_MANAGER] > 0)
      printf("measure heartbeat N=%d: manager over TLS / nm_conn TLS ping-pong = %.2f\n", n,
             rate[T_MANAGER] / rate[T_CONN_TLS]);
    if (rate[T_BEFORE] > 0 && rate[T_MANAGER] > 0)
      printf("measure heartbeat N=%d: manager after TLS / before TLS = %.2f\n", n,
             rate[T_MANAGER] / rate[T_BEFORE]);
    fflush(stdout);
  }
  nm_tls_ctx_close(&cli_ctx);
  nm_identity_close(&cli_id);
  nm_msgbuf_free(&hb_payload);
  nm_msgbuf_free(&ack_payload);
  if (fails)
    printf("manager log and state kept in %s\n", state_dir);
  else
    nftw(state_dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
  return fails ? 1 : 0;
}
