/* natmesh-loadgen: N simulated servants in one process, over real TLS sessions, against a
 * real natmesh-manager, with baselines built from this tree measured in the same run
 * (issue 13, "A benchmark suite"). One invocation measures one N:
 *
 *   1. manager: a fresh natmesh-manager (--open, loopback, a temporary state directory) is
 *      started; N servants, each with its own Ed25519 key, register from nothing (hello,
 *      welcome, listening, the peer list: a manager restart). Measured: the time until all
 *      N hold a complete list, the manager's CPU over that time (/proc/PID/stat utime +
 *      stime), its VmRSS before and after (so per registered servant); then heartbeats in
 *      a closed loop per session (the next heartbeat when the ack arrives) for --seconds:
 *      acks per second (the best of 5 equal parts of the window) and p50/p99 round trip
 *      (over the whole window); then one extra servant joins and leaves:
 *      the time until every one of the N holds the list version of that change, and the
 *      delta bytes each received per change. natmesh-ctl status (--ctl) is timed before
 *      the N register and after.
 *   2. baselines, each a child process (lg_servers.c) driven by the same client code at the
 *      N (as many sessions as the manager held, when it refused some or did not register
 *      all within the bound), from the same source addresses: a minimal libuv ping-pong server, PLAINTEXT,
 *      for heartbeats (and its broadcast of the bytes a change cost, over plain TCP to the
 *      same N readers, for join and leave); an nm_conn TLS 1.3 ping-pong for registration
 *      (N sessions with their own keys: handshake and one exchange), its CPU and its
 *      memory per session, and its heartbeats.
 *
 * Sessions are spread over --sources loopback source addresses (127.0.0.2, 127.0.0.3, ...:
 * bound before connect) so that ephemeral ports do not run out; the soft file limit is
 * raised to the hard one and N must fit under it (one descriptor per session).
 *
 * The peer list and deltas are read from their headers only: <peers version page pages>
 * (a paged list is complete when page pages-1 arrived; no page attribute: one page) and
 * <delta base version> (version - base changes). Bytes are counted as frames (header
 * included, plaintext: TLS records add their own overhead).
 *
 * With --manager-port P it starts no manager and no baseline: it attaches to a manager that
 * runs on 127.0.0.1:P and takes its steps from stdin (run_attached), so that bench/managers.py
 * can run one per manager of an overlay sharing a store, started together.
 *
 * Output: a line per figure on stdout, and with --csv FILE rows appended to FILE:
 *   figure,n,value,unit,baseline,ratio
 * Exit status 0 when every session the manager accepted registered and every heartbeat
 * sent was answered (what the ctest asserts), 1 otherwise, 2 on a usage error. */
#include "lg_servers.h"

#include "nm_conn.h"
#include "nm_error.h"
#include "nm_frame.h"
#include "nm_identity.h"
#include "nm_log.h"
#include "nm_msg.h"
#include "nm_proto.h"
#include "nm_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { T_BARE, T_TLS, T_MANAGER };
static const char *const target_name[] = {"bare libuv ping-pong (plaintext)",
                                          "nm_conn TLS 1.3 ping-pong", "natmesh-manager (TLS)"};

enum { S_IDLE, S_CONNECTING, S_HELLO, S_LISTENING, S_READY, S_DONE };
enum { P_SETUP, P_RUN, P_DRAIN };

#define WARMUP_MS 300
#define SLICES 5 /* parts of a heartbeat window; the best part's rate counts */
#define SAMPLES_MAX (8u << 20)

typedef struct {
  nm_identity id;
  nm_tls_ctx ctx;
} lg_key;

typedef struct run run;
typedef struct {
  nm_conn conn;
  run *run;
  int index, state, closed, refused, outstanding, extra;
  int64_t version; /* the list version held (-1: none yet) */
  int nb;          /* ids in the last neighbours message (-1: none came) */
  uint64_t sent_ns;
} sess;

struct run {
  uv_loop_t loop;
  uv_timer_t timer;
  int expired;
  int target, n, phase, shutting;
  uint64_t change_t0;
  int next, in_flight, ready, refused, lost, closed;
  int window;
  struct sockaddr_in addr;
  sess *s; /* n + 1: the last one is the extra servant of join and leave */
  /* heartbeats */
  int counting;
  uint64_t acks, sent, outstanding;
  uint32_t *samples;
  size_t nsamples;
  /* changes: how many of the n hold target_version, and when the last got it */
  int64_t target_version;
  int reached;
  uint64_t last_reach_ns;
  int count_deltas;
  uint64_t delta_bytes, delta_frames;
  int64_t list_version_max;
  uint64_t last_list_ns;  /* the last peers or delta frame any session got */
  uint64_t last_delta_ns; /* the last delta counted (count_deltas) */
  uint64_t list_bytes, list_frames, delta_bytes_all;
  uint64_t nb_bytes, nb_frames; /* neighbours messages (bounded mesh) */
  /* the bare server's broadcast */
  int bcast_got;
  uint64_t bcast_last_ns;
  char why[300];
  char refusal[160]; /* the first refusal's text */
};

static struct {
  const char *manager, *ctl, *csv;
  int n, sources, in_flight;
  double seconds, register_timeout;
  int verbose;
  int views; /* hello views="1": each session takes a view in a bounded mesh */
  int manager_port; /* attached to a running manager (bench/managers.py): no manager started */
  const char *name_prefix;
} opt = {.n = 1000, .sources = 16, .in_flight = 96, .seconds = 2, .register_timeout = 120,
         .name_prefix = "lg"};

static lg_key *keys; /* n + 1, made once, used by every TLS run */

/* keys: opt.n + 1 of them, each with its TLS context. 0, or -1 (said). */
static int keys_make(void) {
  keys = calloc((size_t)opt.n + 1, sizeof *keys);
  if (!keys) return fprintf(stderr, "out of memory for %d keys\n", opt.n + 1), -1;
  for (int i = 0; i <= opt.n; i++) {
    char err[300] = "";
    if (nm_identity_generate(&keys[i].id) || nm_tls_ctx_init(&keys[i].ctx, &keys[i].id, err, sizeof err))
      return fprintf(stderr, "key %d: %s\n", i, err), -1;
    keys[i].ctx.handshake_ms = (unsigned)(opt.register_timeout * 1000) + 1000;
  }
  return 0;
}

static void keys_free(void) {
  for (int i = 0; keys && i <= opt.n; i++) {
    nm_tls_ctx_close(&keys[i].ctx);
    nm_identity_close(&keys[i].id);
  }
  free(keys);
  keys = NULL;
}
static nm_msgbuf hb_payload, ack_payload;
static char ack_frame[NM_FRAME_HEADER + 256];
static size_t ack_frame_len;
static FILE *csv;
static char state_dir[64];
static int failures;

/* ---- output ------------------------------------------------------------------------------ */

static void figure(const char *name, double value, const char *unit, double baseline,
                   const char *about) {
  double ratio = baseline != 0 ? value / baseline : 0;
  printf("  %-28s N=%-6d %14.3f %-12s baseline %14.3f  ratio %7.3f  (%s)\n", name, opt.n, value,
         unit, baseline, ratio, about);
  fflush(stdout);
  if (csv) {
    fprintf(csv, "%s,%d,%.6g,%s,%.6g,%.4f\n", name, opt.n, value, unit, baseline, ratio);
    fflush(csv);
  }
}

__attribute__((format(printf, 2, 3)))
static void run_note(run *r, const char *fmt, ...) {
  if (r->why[0]) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->why, sizeof r->why, fmt, ap);
  va_end(ap);
}

/* ---- /proc ------------------------------------------------------------------------------- */

/* utime + stime of pid in seconds, or -1. */
static double proc_cpu(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t len = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[len] = 0;
  char *p = strrchr(buf, ')'); /* the command name may hold spaces */
  if (!p) return -1;
  unsigned long long ut = 0, st = 0;
  /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* VmRSS of pid in KiB, or -1. */
static double proc_rss_kib(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  double v = -1;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "VmRSS:", 6)) v = atof(line + 6);
  fclose(f);
  return v;
}

static uint64_t now_ns(void) { return uv_hrtime(); }

/* ---- waiting for events --------------------------------------------------------------------- */

static void on_timer(uv_timer_t *t) { ((run *)t->data)->expired = 1; }

typedef int (*run_cond)(run *r);

/* Runs the loop until cond holds or ms passed; returns 1 when cond holds. */
static int run_until(run *r, run_cond cond, double ms) {
  r->expired = 0;
  uv_timer_start(&r->timer, on_timer, (uint64_t)(ms > 1 ? ms : 1), 0);
  while (!cond(r) && !r->expired) uv_run(&r->loop, UV_RUN_ONCE);
  uv_timer_stop(&r->timer);
  return cond(r);
}

static int never(run *r) { return 0; }
static int all_settled(run *r) { return r->ready + r->refused + r->lost >= r->n; }
static int no_outstanding(run *r) { return r->outstanding == 0; }
static int all_reached(run *r) { return r->reached >= r->ready; }
static int bcast_done(run *r) { return r->bcast_got >= r->ready; }
static int extra_ready(run *r) { return r->s[r->n].state == S_READY || r->s[r->n].state == S_DONE; }

/* Past the registration's bound, the sessions still registering are given up (the ones not
 * started are not started): what follows measures the servants the manager holds,
 * undisturbed. */
static void give_up_registering(run *r) {
  if (all_settled(r)) return;
  r->next = r->n;
  for (int i = 0; i < r->n; i++) {
    sess *s = &r->s[i];
    if (s->state != S_CONNECTING && s->state != S_HELLO && s->state != S_LISTENING) continue;
    s->state = S_DONE;
    r->in_flight--;
    nm_conn_close(&s->conn, 0, NULL);
  }
}

/* ---- the peer list and deltas, from their headers ---------------------------------------- */

/* The value of attribute name="..." in the first element of payload (the header), or -1. */
static int64_t header_attr(const char *head, const char *name) {
  char pat[32];
  snprintf(pat, sizeof pat, " %s=\"", name);
  const char *p = strstr(head, pat);
  if (!p) return -1;
  return strtoll(p + strlen(pat), NULL, 10);
}

static void header_of(const char *payload, size_t len, const char *root, char *head, size_t cap) {
  size_t n = len < cap - 1 ? len : cap - 1;
  memcpy(head, payload, n);
  head[n] = 0;
  char *p = strstr(head, root);
  if (!p) {
    head[0] = 0;
    return;
  }
  char *end = strchr(p, '>');
  if (end) *end = 0;
  memmove(head, p, strlen(p) + 1);
}

static void sess_version(sess *s, int64_t v) {
  run *r = s->run;
  if (v <= s->version) return;
  int before = r->target_version >= 0 && s->version >= r->target_version;
  s->version = v;
  if (!s->extra && s->state == S_READY && !before && r->target_version >= 0 && v >= r->target_version) {
    r->reached++;
    r->last_reach_ns = now_ns();
  }
}

/* The n ready sessions that hold version v or later. */
static void set_target(run *r, int64_t v) {
  r->target_version = v;
  r->reached = 0;
  for (int i = 0; i < r->n; i++)
    if (r->s[i].state == S_READY && r->s[i].version >= v) r->reached++;
  r->last_reach_ns = now_ns();
}

/* ---- the client sessions ------------------------------------------------------------------ */

static void start_next(run *r);

static int send_heartbeat(sess *s) {
  int rc = nm_conn_send(&s->conn, NM_MSG_HEARTBEAT, hb_payload.data, hb_payload.len);
  if (rc < 0) return run_note(s->run, "heartbeat: %s", nm_strerror(rc)), -1;
  s->outstanding = 1;
  s->sent_ns = now_ns();
  s->run->outstanding++;
  s->run->sent++;
  return 0;
}

static void sess_ready(sess *s) {
  run *r = s->run;
  s->state = S_READY;
  if (s->extra) return;
  r->ready++;
  r->in_flight--;
  start_next(r);
}

static void on_ack(sess *s) {
  run *r = s->run;
  if (!s->outstanding) return;
  s->outstanding = 0;
  r->outstanding--;
  if (s->state != S_READY) { /* ping-pong targets: ready after one exchange */
    sess_ready(s);
    return;
  }
  if (r->counting) {
    r->acks++;
    if (r->nsamples < SAMPLES_MAX) r->samples[r->nsamples++] = (uint32_t)((now_ns() - s->sent_ns) / 1000);
  }
  if (r->phase == P_RUN) send_heartbeat(s);
}

static void on_peers(sess *s, const char *payload, size_t len) {
  run *r = s->run;
  char head[256];
  header_of(payload, len, "<peers", head, sizeof head);
  int64_t v = header_attr(head, "version"), page = header_attr(head, "page"),
          pages = header_attr(head, "pages");
  r->list_frames++;
  r->list_bytes += NM_FRAME_HEADER + len;
  r->last_list_ns = now_ns();
  if (pages > 0 && page != pages - 1) return; /* more pages follow */
  if (v > r->list_version_max) r->list_version_max = v;
  if (s->state == S_LISTENING) {
    s->version = v;
    sess_ready(s);
  } else {
    sess_version(s, v);
  }
}

/* neighbours: how many ids the set holds (<n id=.../> elements), the last one counts. */
static void on_neighbours(sess *s, const char *payload, size_t len) {
  run *r = s->run;
  int count = 0;
  for (const char *p = payload, *end = payload + len; (p = memmem(p, (size_t)(end - p), "<n ", 3)); p += 3)
    count++;
  s->nb = count;
  r->nb_bytes += NM_FRAME_HEADER + len;
  r->nb_frames++;
  r->last_list_ns = now_ns();
}

static void on_delta(sess *s, const char *payload, size_t len) {
  run *r = s->run;
  char head[256];
  header_of(payload, len, "<delta", head, sizeof head);
  int64_t v = header_attr(head, "version");
  r->delta_bytes_all += NM_FRAME_HEADER + len;
  r->last_list_ns = now_ns();
  if (r->count_deltas && !s->extra) {
    r->delta_bytes += NM_FRAME_HEADER + len;
    r->delta_frames++;
    r->last_delta_ns = r->last_list_ns;
  }
  if (v > r->list_version_max) r->list_version_max = v;
  sess_version(s, v);
}

static int sess_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  sess *s = c->data;
  run *r = s->run;
  switch (type) {
  case NM_MSG_HEARTBEAT_ACK: on_ack(s); break;
  case NM_MSG_PEERS: on_peers(s, payload, len); break;
  case NM_MSG_DELTA: on_delta(s, payload, len); break;
  case NM_MSG_NEIGHBOURS: on_neighbours(s, payload, len); break;
  case LG_BCAST:
    r->bcast_got++;
    r->bcast_last_ns = now_ns();
    break;
  case NM_MSG_WELCOME:
    if (s->state == S_HELLO) {
      nm_msg m = {.type = NM_MSG_LISTENING};
      m.u.listening.port = (uint16_t)(20000 + s->index % 40000);
      if (nm_msg_send(c, &m) < 0) run_note(r, "%s", "listening: send failed");
      s->state = S_LISTENING;
      if (s->extra) { /* the join starts now: it makes the version after the newest */
        r->change_t0 = now_ns();
        set_target(r, r->list_version_max + 1);
      }
    }
    break;
  default: break; /* errors arrive in on_closed (peer_error); relay and the like: not ours */
  }
  return 0;
}

static void sess_closed(nm_conn *c) {
  sess *s = c->data;
  run *r = s->run;
  s->closed = 1;
  r->closed++;
  if (r->shutting || s->state == S_DONE) return;
  int was_ready = s->state == S_READY;
  if (s->outstanding) s->outstanding = 0, r->outstanding--;
  s->state = S_DONE;
  if (s->extra) return;
  if (was_ready) r->ready--;
  else r->in_flight--;
  if (c->peer_error[0]) { /* the server said why: a refusal ("full", "no room", ...) */
    s->refused = 1;
    r->refused++;
    if (!r->refusal[0]) snprintf(r->refusal, sizeof r->refusal, "%s", c->peer_error);
  } else {
    r->lost++;
    run_note(r, "session %d closed: %s%s%s", s->index, nm_strerror(c->close_err),
             c->peer_error[0] ? ", the server said: " : "", c->peer_error);
  }
  start_next(r);
}

static void sess_connected(nm_conn *c, int status) {
  sess *s = c->data;
  run *r = s->run;
  if (status < 0) return; /* on_closed follows */
  nm_frame_reader_set_max(&c->reader, NM_FRAME_MAX);
  if (r->target != T_MANAGER) {
    send_heartbeat(s); /* ready after one exchange */
    return;
  }
  nm_msg m = {.type = NM_MSG_HELLO};
  snprintf(m.u.hello.id, sizeof m.u.hello.id, "%s", nm_identity_id(&keys[s->index].id));
  snprintf(m.u.hello.name, sizeof m.u.hello.name, "%s%d", opt.name_prefix, s->index);
  m.u.hello.role = NM_ROLE_SERVANT;
  m.u.hello.views = opt.views;
  m.u.hello.port = (uint16_t)(20000 + s->index % 40000);
  if (nm_msg_send(c, &m) < 0) run_note(r, "%s", "hello: send failed");
  s->state = S_HELLO;
}

static int sess_start(run *r, int i) {
  sess *s = &r->s[i];
  s->index = i;
  s->run = r;
  s->version = -1;
  s->nb = -1;
  s->extra = i == r->n;
  nm_conn_init(&r->loop, &s->conn, sess_frame, sess_closed, s);
  if (r->target != T_BARE) nm_conn_set_tls(&s->conn, &keys[i].ctx, NM_TLS_CLIENT, NULL);
  struct sockaddr_in src;
  char ip[32];
  snprintf(ip, sizeof ip, "127.0.0.%d", 2 + i % opt.sources);
  uv_ip4_addr(ip, 0, &src);
  int rc = uv_tcp_bind(&s->conn.tcp, (struct sockaddr *)&src, 0);
  /* Only the registration bound gives a session up: a busy server's backlog is what is
   * measured, not a client's patience. */
  unsigned bound_ms = (unsigned)(opt.register_timeout * 1000) + 1000;
  if (rc == 0) rc = nm_conn_connect(&s->conn, (struct sockaddr *)&r->addr, bound_ms, sess_connected);
  s->state = S_CONNECTING;
  if (rc < 0) {
    run_note(r, "connect from %s: %s", ip, nm_strerror(rc));
    nm_conn_close(&s->conn, rc, "connect");
    return rc;
  }
  return 0;
}

/* Keeps at most window sessions connecting or registering until all n were started. */
static void start_next(run *r) {
  while (r->next < r->n && r->in_flight < r->window) {
    r->in_flight++;
    sess_start(r, r->next++);
  }
}

static void run_init(run *r, int target, int n, uint16_t port) {
  memset(r, 0, sizeof *r);
  r->target = target;
  r->n = n;
  r->window = opt.in_flight;
  r->target_version = -1;
  r->list_version_max = -1;
  r->s = calloc((size_t)n + 1, sizeof *r->s);
  r->samples = malloc(SAMPLES_MAX * sizeof *r->samples);
  uv_loop_init(&r->loop);
  uv_timer_init(&r->loop, &r->timer);
  r->timer.data = r;
  uv_ip4_addr("127.0.0.1", port, &r->addr);
}

static void run_close(run *r) {
  r->shutting = 1;
  for (int i = 0; i <= r->n; i++)
    if (r->s[i].run && !r->s[i].conn.closing) nm_conn_close(&r->s[i].conn, 0, NULL);
  uv_close((uv_handle_t *)&r->timer, NULL);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  uv_loop_close(&r->loop);
  free(r->s);
  free(r->samples);
}

/* ---- heartbeats ------------------------------------------------------------------------------ */

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

typedef struct {
  double rate, p50_us, p99_us;
  double mean; /* acks per second over the whole window (every part) */
  int complete; /* every heartbeat sent was answered */
  /* CPU per ack over the counted window (utime+stime, /proc): the server's and this load
   * generator's, in microseconds; 0 when not measured. Both share this machine's cores, so
   * together they bound the rate whatever the server does (hb_cpu_bound). */
  double server_us, gen_us;
} hb_result;

/* The most acks per second two single-threaded processes (server and load generator) that
 * spend these CPU times per ack can reach on this machine's cores: their CPU together is at
 * most cores (counted up to 2: a thread each), and each alone at most one core, so the
 * slower one's CPU per ack caps it too. */
static double hb_cpu_bound(const hb_result *h) {
  double cores = (double)sysconf(_SC_NPROCESSORS_ONLN);
  if (cores > 2) cores = 2;
  double shared = cores * 1e6 / (h->server_us + h->gen_us);
  double alone = 1e6 / (h->server_us > h->gen_us ? h->server_us : h->gen_us);
  return shared < alone ? shared : alone;
}

/* Closed loop on every ready session for opt.seconds after a warm-up; then drains. server:
 * the process answering (its CPU per ack is measured), or 0. */
static hb_result heartbeats(run *r, pid_t server) {
  hb_result res = {0};
  r->phase = P_RUN;
  r->nsamples = 0;
  for (int i = 0; i < r->n; i++)
    if (r->s[i].state == S_READY) send_heartbeat(&r->s[i]);
  run_until(r, never, WARMUP_MS);
  /* The window is cut in SLICES parts and the best part's rate counts: on a shared machine
   * a neighbour's burst lowers one part, not the figure (bench_heartbeat does the same).
   * The round trips of every part go into the percentiles. */
  r->counting = 1;
  double server0 = server > 0 ? proc_cpu(server) : -1, gen0 = proc_cpu(getpid());
  uint64_t all_acks = 0, w0 = now_ns();
  for (int k = 0; k < SLICES; k++) {
    r->acks = 0;
    uint64_t t0 = now_ns();
    run_until(r, never, opt.seconds * 1000 / SLICES);
    double v = (double)r->acks / ((double)(now_ns() - t0) / 1e9);
    if (v > res.rate) res.rate = v;
    all_acks += r->acks;
  }
  res.mean = (double)all_acks / ((double)(now_ns() - w0) / 1e9);
  if (all_acks && server0 >= 0) {
    res.server_us = (proc_cpu(server) - server0) * 1e6 / (double)all_acks;
    res.gen_us = (proc_cpu(getpid()) - gen0) * 1e6 / (double)all_acks;
  }
  r->counting = 0;
  r->phase = P_DRAIN;
  res.complete = run_until(r, no_outstanding, 30000);
  r->phase = P_SETUP;
  if (r->nsamples) {
    qsort(r->samples, r->nsamples, sizeof *r->samples, cmp_u32);
    res.p50_us = r->samples[r->nsamples / 2];
    res.p99_us = r->samples[(size_t)((double)r->nsamples * 0.99)];
  }
  return res;
}

/* ---- the manager ------------------------------------------------------------------------------ */

static uint16_t free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  uint16_t port = 0;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0) close(fd);
  return port;
}

/* Whether the manager's --help mentions option. */
static int manager_has(const char *option) {
  char cmd[1200], line[512];
  snprintf(cmd, sizeof cmd, "'%s' --help 2>&1", opt.manager);
  FILE *p = popen(cmd, "r");
  if (!p) return 0;
  int found = 0;
  while (fgets(line, sizeof line, p))
    if (strstr(line, option)) found = 1;
  pclose(p);
  return found;
}

static char mgr_dir[128];

static pid_t manager_start(uint16_t *port) {
  snprintf(mgr_dir, sizeof mgr_dir, "%s/manager", state_dir);
  *port = free_port();
  char portstr[8], maxs[16];
  snprintf(portstr, sizeof portstr, "%u", *port);
  snprintf(maxs, sizeof maxs, "%d", opt.n + 64);
  int with_max = manager_has("--max-servants");
  const char *argv[32];
  int a = 0;
  argv[a++] = opt.manager;
  argv[a++] = "--open";
  argv[a++] = "--state-dir", argv[a++] = mgr_dir;
  argv[a++] = "--listen", argv[a++] = "127.0.0.1";
  argv[a++] = "--port", argv[a++] = portstr;
  /* Idle sessions are not timed out while the benchmark holds them. */
  argv[a++] = "--heartbeat", argv[a++] = "600";
  argv[a++] = "--timeout", argv[a++] = "3600";
  /* Many registrations in flight from few addresses (a restart, here from --sources). */
  argv[a++] = "--max-unauth", argv[a++] = "4096";
  argv[a++] = "--max-unauth-per-address", argv[a++] = "1024";
  if (with_max) argv[a++] = "--max-servants", argv[a++] = maxs;
  argv[a] = NULL;
  printf("manager: %s%s\n", opt.manager, with_max ? " --max-servants (listed by --help)" :
                                                      " (its --help lists no --max-servants)");
  char log[160];
  snprintf(log, sizeof log, "%s/manager.log", state_dir);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) dup2(fd, 1), dup2(fd, 2);
    setenv("NATMESH_LOG", "warn", 1);
    execv(opt.manager, (char *const *)argv);
    _exit(127);
  }
  if (pid < 0) return -1;
  /* Ready when it accepts a connection (the probe costs it one unauthenticated session). */
  for (int i = 0; i < 400; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(*port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    if (ok) return pid;
    if (waitpid(pid, NULL, WNOHANG) == pid) return -1;
    usleep(25 * 1000); /* polling a child that offers no readiness signal but its port */
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

static void child_stop(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 200; i++) {
    if (waitpid(pid, NULL, WNOHANG) == pid) return;
    usleep(10 * 1000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

/* natmesh-ctl status against the manager, run on r's loop (uv_spawn) so that the sessions
 * keep being served; returns its wall time in seconds, or -1 when it failed or took over
 * 120 s. */
typedef struct {
  int exited;
  int64_t status;
} ctl_run;

static void ctl_exit(uv_process_t *p, int64_t status, int sig) {
  ctl_run *c = p->data;
  c->exited = 1;
  c->status = sig ? -sig : status;
  uv_close((uv_handle_t *)p, NULL);
}

static double ctl_status(run *r, uint16_t port) {
  if (!opt.ctl) return -1;
  char where[40];
  snprintf(where, sizeof where, "127.0.0.1:%u", port);
  char *args[] = {(char *)opt.ctl, "--manager", where, "--state-dir", mgr_dir, "--timeout", "110",
                  "status", NULL};
  uv_stdio_container_t io[3] = {{.flags = UV_IGNORE}, {.flags = UV_IGNORE},
                                {.flags = UV_INHERIT_FD, .data.fd = 2}}; /* its errors: ours */
  uv_process_options_t o = {.file = opt.ctl, .args = args, .stdio = io, .stdio_count = 3,
                            .exit_cb = ctl_exit};
  static uv_process_t proc; /* one at a time; the loop holds it until its close ran */
  ctl_run c = {0};
  proc.data = &c;
  uint64_t t0 = now_ns();
  if (uv_spawn(&r->loop, &proc, &o) < 0) return -1;
  r->expired = 0;
  uv_timer_start(&r->timer, on_timer, 120000, 0);
  while (!c.exited && !r->expired) uv_run(&r->loop, UV_RUN_ONCE);
  uv_timer_stop(&r->timer);
  double secs = c.exited && c.status == 0 ? (double)(now_ns() - t0) / 1e9 : -1;
  if (!c.exited) {
    uv_process_kill(&proc, SIGKILL);
    while (!c.exited) uv_run(&r->loop, UV_RUN_ONCE);
  }
  uv_run(&r->loop, UV_RUN_NOWAIT); /* the handle's close (c is ours until then) */
  proc.data = NULL;
  return secs;
}

/* ---- the runs ------------------------------------------------------------------------------ */

typedef struct {
  int registered, refused, lost;
  double reg_s, reg_cpu_s, rss_per_kib, rss_idle_per_kib;
  hb_result hb;
  int join_ok, leave_ok;
  double join_s, leave_s, join_bytes, leave_bytes;
  double ctl0_s, ctl_s;
} mgr_result;

typedef struct {
  int ready;
  double reg_s, reg_cpu_s, rss_per_kib;
  hb_result hb;
  double join_s, leave_s;
} base_result;

/* Registers every session of r (from nothing), bounded by opt.register_timeout. */
static double register_all(run *r) {
  uint64_t t0 = now_ns();
  start_next(r);
  run_until(r, all_settled, opt.register_timeout * 1000);
  return (double)(now_ns() - t0) / 1e9;
}

/* One change reaching the n (its target version set): runs until every ready session
 * holds it; returns the seconds from t0 until the last got it, or -1 after 60 s. The
 * delta bytes the n received meanwhile, per session (one change), go to *bytes_per. */
static double wait_change(run *r, uint64_t t0, double *bytes_per) {
  int ok = run_until(r, all_reached, 60000);
  r->count_deltas = 0;
  *bytes_per = r->ready ? (double)r->delta_bytes / (double)r->ready : 0;
  if (!ok) return -1;
  return (double)(r->last_reach_ns - t0) / 1e9;
}

static int settled_versions(run *r) {
  for (int i = 0; i < r->n; i++)
    if (r->s[i].state == S_READY && r->s[i].version < r->list_version_max) return 0;
  return 1;
}

/* With views every session has its own versions, and a change reaches only the sessions
 * whose view holds it: the load generator cannot know who is owed what. It waits instead
 * until no list or delta came for QUIET_MS (a measurement's settling, bounded by max_ms),
 * and returns when the last one came, as ns since t0 (or -1 when nothing came). */
#define QUIET_MS 300
static double wait_quiet(run *r, uint64_t t0, double max_ms, int deltas_only) {
  for (;;) {
    run_until(r, never, 50);
    uint64_t now = now_ns(), last = deltas_only ? r->last_delta_ns : r->last_list_ns;
    if (last > t0 && now - last >= (uint64_t)QUIET_MS * 1000000) break;
    if ((double)(now - t0) / 1e6 > max_ms) break;
  }
  uint64_t last = deltas_only ? r->last_delta_ns : r->last_list_ns;
  return last > t0 ? (double)(last - t0) / 1e9 : -1;
}

/* One change in views mode: the time until its last delta came, and delta bytes per
 * servant (most get none: only those whose view holds the entry). */
static double wait_change_views(run *r, uint64_t t0, double *bytes_per) {
  double s = wait_quiet(r, t0, 10000, 1);
  r->count_deltas = 0;
  *bytes_per = r->ready ? (double)r->delta_bytes / (double)r->ready : 0;
  return s;
}

static int run_manager(mgr_result *res) {
  memset(res, 0, sizeof *res);
  uint16_t port;
  pid_t pid = manager_start(&port);
  if (pid < 0) return printf("FAIL: the manager did not start (see %s/manager.log)\n", state_dir), -1;
  run *r = calloc(1, sizeof *r);
  run_init(r, T_MANAGER, opt.n, port);
  res->ctl0_s = ctl_status(r, port);

  double rss0 = proc_rss_kib(pid), cpu0 = proc_cpu(pid), self0 = proc_cpu(getpid());
  res->reg_s = register_all(r);
  res->reg_cpu_s = proc_cpu(pid) - cpu0;
  double self_s = proc_cpu(getpid()) - self0;
  give_up_registering(r);
  res->registered = r->ready;
  res->refused = r->refused;
  res->lost = r->lost;
  printf("manager: %d of %d registered in %.2f s (%d refused%s%s%s, %d lost%s%s); CPU: manager "
         "%.2f s, this load generator %.2f s\n",
         r->ready, r->n, res->reg_s, r->refused, r->refusal[0] ? ": \"" : "", r->refusal,
         r->refusal[0] ? "\"" : "", r->lost, r->why[0] ? ": " : "", r->why, res->reg_cpu_s, self_s);
  /* Quiet: every session holds the newest version (the deltas of the last joins). */
  if (opt.views) wait_quiet(r, 0, 30000, 0);
  else run_until(r, settled_versions, 30000);
  double rss1 = proc_rss_kib(pid);
  res->rss_per_kib = r->ready ? (rss1 - rss0) / r->ready : 0;
  printf("manager: VmRSS %.0f KiB before, %.0f KiB after; lists %" PRIu64 " frames %" PRIu64
         " bytes, deltas %" PRIu64 " bytes\n",
         rss0, rss1, r->list_frames, r->list_bytes, r->delta_bytes_all);

  if (r->ready > 0) res->hb = heartbeats(r, pid);
  /* Resident memory per servant once the registration storm is over: after the heartbeat
   * window the manager has swept at least once (it gives freed heap back then), and what it
   * holds is what idle registered servants cost it. */
  double rss2 = proc_rss_kib(pid);
  res->rss_idle_per_kib = r->ready ? (rss2 - rss0) / r->ready : 0;
  printf("manager: VmRSS %.0f KiB after the heartbeat window\n", rss2);

  /* One join: the extra servant registers; timed from its listening. */
  if (r->ready > 0) {
    sess *x = &r->s[r->n];
    r->count_deltas = 1;
    r->delta_bytes = 0;
    sess_start(r, r->n);
    run_until(r, extra_ready, 60000);
    if (x->state == S_READY) {
      res->join_s = opt.views ? wait_change_views(r, r->change_t0, &res->join_bytes)
                              : wait_change(r, r->change_t0, &res->join_bytes);
      res->join_ok = res->join_s >= 0;
      /* One leave: the extra says bye. */
      if (!opt.views) run_until(r, settled_versions, 10000);
      r->count_deltas = 1;
      r->delta_bytes = 0;
      nm_msg bye = {.type = NM_MSG_BYE};
      uint64_t t0 = now_ns();
      set_target(r, r->list_version_max + 1);
      nm_msg_send(&x->conn, &bye);
      x->state = S_DONE;
      res->leave_s = opt.views ? wait_change_views(r, t0, &res->leave_bytes) : wait_change(r, t0, &res->leave_bytes);
      res->leave_ok = res->leave_s >= 0;
    } else {
      r->count_deltas = 0;
      printf("manager: the extra servant was not registered: %s\n",
             x->conn.peer_error[0] ? x->conn.peer_error : "no list within 60 s");
    }
  }
  res->ctl_s = ctl_status(r, port);
  run_close(r);
  free(r);
  child_stop(pid);
  return 0;
}

static int run_baseline(int target, pid_t pid, uint16_t port, int n, double join_bytes,
                        double leave_bytes, base_result *res) {
  memset(res, 0, sizeof *res);
  run *r = calloc(1, sizeof *r);
  run_init(r, target, n, port);
  double rss0 = proc_rss_kib(pid), cpu0 = proc_cpu(pid);
  res->reg_s = register_all(r);
  res->reg_cpu_s = proc_cpu(pid) - cpu0;
  res->ready = r->ready;
  res->rss_per_kib = r->ready ? (proc_rss_kib(pid) - rss0) / r->ready : 0;
  printf("%s: %d of %d sessions in %.2f s%s%s\n", target_name[target], r->ready, r->n, res->reg_s,
         r->why[0] ? ": " : "", r->why);
  if (r->ready > 0) res->hb = heartbeats(r, pid);
  if (target == T_BARE && r->ready > 0) {
    double sizes[2] = {join_bytes, leave_bytes}, *out[2] = {&res->join_s, &res->leave_s};
    for (int k = 0; k < 2; k++) {
      char num[24];
      int len = snprintf(num, sizeof num, "%.0f", sizes[k] > NM_FRAME_HEADER ? sizes[k] : 64);
      r->bcast_got = 0;
      uint64_t t0 = now_ns();
      nm_conn_send(&r->s[0].conn, LG_BCAST_REQ, num, (size_t)len);
      *out[k] = run_until(r, bcast_done, 60000) ? (double)(r->bcast_last_ns - t0) / 1e9 : -1;
    }
  }
  run_close(r);
  free(r);
  return 0;
}

/* ---- attached to a running manager (--manager-port; bench/managers.py) ------------------------ */

/* bench/managers.py runs one load generator per manager of an overlay, and one against a
 * single manager, and has to start them together and measure the store and the managers
 * around them: so an attached load generator starts no manager and no baseline, and takes
 * its steps when told on stdin, one word a line:
 *   (after its keys)  prints "lg: keys"
 *   go                registers the N (bounded by --register-timeout), prints "lg: registered
 *                     ready=R n=N refused=F lost=L t0=EPOCH t1=EPOCH"
 *   settle V          until every session holds list version V or later (bounded), prints
 *                     "lg: settled ok=0|1 last=EPOCH vmin=V vmax=V list_bytes=B delta_bytes=B"
 *                     (when the last got there; the oldest and newest versions its sessions
 *                     hold; the list and delta frame bytes they received)
 *   settle V [QUIET [MAX]]  with --views 1 (a bounded mesh: versions are per view) instead:
 *                     until every ready session holds a non-empty set of neighbours and no
 *                     list, delta or neighbours frame came for QUIET ms (default 300; bounded
 *                     by MAX ms, default: the registration's time + 30 s), prints the
 *                     same line with vmin=-1 vmax=-1 and nb_bytes=B held=H ready=R dmin=D
 *                     dmax=D (the sessions holding neighbours, the smallest and largest set)
 *   hb                a heartbeat window, prints "lg: heartbeats rate=BEST mean=MEAN p50=US
 *                     p99=US complete=0|1 vmin=V vmax=V"
 *   join, leave       one extra servant registers (prints "lg: joined ok=0|1") and says bye
 *                     ("lg: left")
 *   quit (or EOF)     closes every session and exits.
 * Between steps the loop keeps running, so the sessions read the deltas of the other
 * managers' servants while they wait. Times are wall clock (CLOCK_REALTIME, seconds since
 * the epoch) so that several processes' can be compared. */
static double epoch_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char cmd_buf[64];
static size_t cmd_len;

/* The next line on stdin into cmd (without its newline), the loop running meanwhile;
 * 0, or -1 at end of file. */
static int next_command(run *r, char *cmd, size_t cap) {
  for (;;) {
    char *nl = memchr(cmd_buf, '\n', cmd_len);
    if (nl) {
      size_t len = (size_t)(nl - cmd_buf);
      snprintf(cmd, cap, "%.*s", (int)len, cmd_buf);
      memmove(cmd_buf, nl + 1, cmd_len - len - 1);
      cmd_len -= len + 1;
      return 0;
    }
    if (cmd_len == sizeof cmd_buf) cmd_len = 0; /* a line too long to be a command */
    struct pollfd p = {.fd = 0, .events = POLLIN};
    if (poll(&p, 1, 0) > 0) {
      ssize_t got = read(0, cmd_buf + cmd_len, sizeof cmd_buf - cmd_len);
      if (got <= 0) return -1;
      cmd_len += (size_t)got;
      continue;
    }
    if (r) run_until(r, never, 20);
    else poll(&p, 1, 100);
  }
}

/* The oldest and newest list versions the ready sessions hold (-1: none): one version when
 * every list is the same. */
static void held_versions(run *r, int64_t *vmin, int64_t *vmax) {
  *vmin = *vmax = -1;
  for (int i = 0; i < r->n; i++) {
    if (r->s[i].state != S_READY) continue;
    if (*vmin < 0 || r->s[i].version < *vmin) *vmin = r->s[i].version;
    if (r->s[i].version > *vmax) *vmax = r->s[i].version;
  }
}

/* The ready sessions holding a non-empty set of neighbours, and the smallest and largest
 * set among them (-1: none). */
static int views_held(run *r, int *dmin, int *dmax) {
  int held = 0;
  *dmin = *dmax = -1;
  for (int i = 0; i < r->n; i++) {
    const sess *s = &r->s[i];
    if (s->state != S_READY || s->nb <= 0) continue;
    held++;
    if (*dmin < 0 || s->nb < *dmin) *dmin = s->nb;
    if (s->nb > *dmax) *dmax = s->nb;
  }
  return held;
}

static int run_attached(void) {
  char cmd[64];
  printf("lg: keys\n");
  if (next_command(NULL, cmd, sizeof cmd) < 0 || strcmp(cmd, "go")) return 1;
  run *r = calloc(1, sizeof *r);
  run_init(r, T_MANAGER, opt.n, (uint16_t)opt.manager_port);
  double t0 = epoch_s();
  uint64_t reg_ns = now_ns();
  register_all(r);
  double t1 = epoch_s();
  give_up_registering(r);
  printf("lg: registered ready=%d n=%d refused=%d lost=%d t0=%.6f t1=%.6f%s%s%s%s\n", r->ready,
         r->n, r->refused, r->lost, t0, t1, r->refusal[0] ? " refusal=" : "", r->refusal,
         r->why[0] ? " why=" : "", r->why);
  int64_t vmin, vmax;
  int rc = 0;
  while (next_command(r, cmd, sizeof cmd) == 0 && strcmp(cmd, "quit")) {
    if (!strncmp(cmd, "settle ", 7) && opt.views) {
      /* With views (a bounded mesh) the sessions' versions are their views' own: settled
       * when every ready session holds a set of neighbours (its view: itself, those, their
       * relays) and no list, delta or neighbours came for QUIET ms ("settle V QUIET"; 300
       * by default), bounded as below. last: when the last frame came. */
      char *q = strchr(cmd + 7, ' ');
      double quiet_ms = q ? strtod(q + 1, &q) : QUIET_MS;
      double max_ms = q && *q ? atof(q) : (double)(now_ns() - reg_ns) / 1e6 + 30000;
      uint64_t w0 = now_ns();
      int held = 0, ok = 0, dmin = -1, dmax = -1;
      for (;;) {
        held = views_held(r, &dmin, &dmax);
        uint64_t now = now_ns();
        if (held >= r->ready && (double)(now - r->last_list_ns) / 1e6 >= quiet_ms) {
          ok = 1;
          break;
        }
        if ((double)(now - w0) / 1e6 > max_ms) break;
        run_until(r, never, 50);
      }
      double last = r->last_list_ns ? epoch_s() - (double)(now_ns() - r->last_list_ns) / 1e9 : -1;
      printf("lg: settled ok=%d last=%.6f vmin=-1 vmax=-1 list_bytes=%" PRIu64 " delta_bytes=%" PRIu64
             " nb_bytes=%" PRIu64 " held=%d ready=%d dmin=%d dmax=%d\n", ok, last, r->list_bytes,
             r->delta_bytes_all, r->nb_bytes, held, r->ready, dmin, dmax);
    } else if (!strncmp(cmd, "settle ", 7)) {
      /* Settled: every session holds version V (the overlay's after its N joins), whichever
       * manager each change came through. When they all held it already, the last list or
       * delta frame is when the last got there (an upper bound). */
      uint64_t w0 = now_ns();
      set_target(r, strtoll(cmd + 7, NULL, 10));
      int pending = !all_reached(r);
      int ok = run_until(r, all_reached, (double)(now_ns() - reg_ns) / 1e6 + 30000);
      uint64_t at = pending && r->last_reach_ns > w0 ? r->last_reach_ns : r->last_list_ns;
      double last = at ? epoch_s() - (double)(now_ns() - at) / 1e9 : -1;
      held_versions(r, &vmin, &vmax);
      printf("lg: settled ok=%d last=%.6f vmin=%" PRId64 " vmax=%" PRId64 " list_bytes=%" PRIu64
             " delta_bytes=%" PRIu64 "\n", ok, last, vmin, vmax, r->list_bytes, r->delta_bytes_all);
    } else if (!strcmp(cmd, "hb")) {
      hb_result hb = {0};
      if (r->ready > 0) hb = heartbeats(r, 0);
      if (r->ready > 0 && !hb.complete) rc = 1;
      held_versions(r, &vmin, &vmax);
      printf("lg: heartbeats rate=%.1f mean=%.1f p50=%.0f p99=%.0f complete=%d vmin=%" PRId64
             " vmax=%" PRId64 "\n", hb.rate, hb.mean, hb.p50_us, hb.p99_us, hb.complete, vmin, vmax);
    } else if (!strcmp(cmd, "join")) {
      sess *x = &r->s[r->n];
      if (x->run && !x->closed) { /* still registered: a join needs it gone first */
        printf("lg: joined ok=0\n");
        continue;
      }
      x->closed = x->outstanding = 0;
      sess_start(r, r->n);
      run_until(r, extra_ready, opt.register_timeout * 1000);
      printf("lg: joined ok=%d\n", r->s[r->n].state == S_READY);
    } else if (!strcmp(cmd, "leave")) {
      sess *x = &r->s[r->n];
      if (x->state == S_READY) {
        nm_msg bye = {.type = NM_MSG_BYE};
        nm_msg_send(&x->conn, &bye);
        x->state = S_DONE;
      }
      /* Gone when the manager closed the session after the bye: a join may follow. */
      for (int k = 0; k < 100 && x->run && !x->closed; k++) run_until(r, never, 50);
      printf("lg: left\n");
    } else {
      printf("lg: unknown command %s\n", cmd);
    }
  }
  if (r->lost) rc = 1;
  run_close(r);
  free(r);
  return rc;
}

/* ---- main ------------------------------------------------------------------------------------ */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  return remove(path);
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: natmesh-loadgen --manager PATH | --manager-port P [--ctl PATH] [--n N] [--seconds S]\n"
          "                       [--sources K] [--in-flight W] [--register-timeout S]\n"
          "                       [--views 0|1] [--csv FILE] [--name-prefix P] [--verbose]\n"
          "  --n N                 simulated servants (default 1000)\n"
          "  --seconds S           heartbeat window per target (default 2)\n"
          "  --sources K           loopback source addresses 127.0.0.2.. (default 16)\n"
          "  --in-flight W         sessions connecting or registering at once (default 96)\n"
          "  --register-timeout S  bound on registering all N (default 120)\n"
          "  --views 0|1           1: sessions say views=\"1\" in hello (a view in a bounded mesh,\n"
          "                        past the manager's --mesh-above); changes are then timed to\n"
          "                        their last delta (no one waits for all N)\n"
          "  --csv FILE            append figure,n,value,unit,baseline,ratio rows\n"
          "  --manager-port P      attach to a running manager on 127.0.0.1:P instead (no manager\n"
          "                        or baseline started): the steps come from stdin (go, hb, join,\n"
          "                        leave, quit) and the results go to stdout as \"lg: ...\" lines;\n"
          "                        bench/managers.py drives it (several managers, one store)\n"
          "  --name-prefix P       servants' names: P0, P1, ... (default lg)\n");
}

static int raise_fd_limit(int need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return -1;
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)need > rl.rlim_cur) {
    fprintf(stderr, "natmesh-loadgen: %d sessions need %d descriptors, the limit is %llu "
                    "(ulimit -Hn): run fewer per process\n",
            opt.n, need, (unsigned long long)rl.rlim_cur);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, NULL, _IOLBF, 0); /* in order with natmesh-ctl's stderr */
  nm_log_init("natmesh-loadgen", NM_LOG_ERROR);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--verbose")) { nm_log_set_level(NM_LOG_DEBUG); continue; }
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), 0;
    if (!v) return usage(stderr), 2;
    i++;
    if (!strcmp(a, "--manager")) opt.manager = v;
    else if (!strcmp(a, "--ctl")) opt.ctl = v;
    else if (!strcmp(a, "--csv")) opt.csv = v;
    else if (!strcmp(a, "--n")) opt.n = atoi(v);
    else if (!strcmp(a, "--seconds")) opt.seconds = atof(v);
    else if (!strcmp(a, "--sources")) opt.sources = atoi(v);
    else if (!strcmp(a, "--in-flight")) opt.in_flight = atoi(v);
    else if (!strcmp(a, "--register-timeout")) opt.register_timeout = atof(v);
    else if (!strcmp(a, "--views")) opt.views = atoi(v);
    else if (!strcmp(a, "--manager-port")) opt.manager_port = atoi(v);
    else if (!strcmp(a, "--name-prefix")) opt.name_prefix = v;
    else return usage(stderr), 2;
  }
  if ((!opt.manager && !opt.manager_port) || opt.manager_port < 0 || opt.manager_port > 65535 ||
      strlen(opt.name_prefix) > 16 || opt.n < 1 || opt.seconds <= 0 || opt.sources < 1 || opt.sources > 250 ||
      opt.in_flight < 1 || opt.register_timeout <= 0)
    return usage(stderr), 2;
  if (raise_fd_limit(opt.n + 64) < 0) return 1;
  if (opt.csv && !(csv = fopen(opt.csv, "a"))) return perror(opt.csv), 1;

  nm_msg hb = {.type = NM_MSG_HEARTBEAT}, ack = {.type = NM_MSG_HEARTBEAT_ACK};
  hb.u.heartbeat.version = 500, ack.u.heartbeat_ack.version = 500;
  if (nm_msg_encode(&hb, &hb_payload) || nm_msg_encode(&ack, &ack_payload) ||
      ack_payload.len > sizeof ack_frame - NM_FRAME_HEADER)
    return fprintf(stderr, "cannot encode a heartbeat\n"), 1;
  nm_frame_header_encode((uint8_t *)ack_frame, NM_MSG_HEARTBEAT_ACK, (uint32_t)ack_payload.len);
  memcpy(ack_frame + NM_FRAME_HEADER, ack_payload.data, ack_payload.len);
  ack_frame_len = NM_FRAME_HEADER + ack_payload.len;

  if (opt.manager_port) { /* attached: the keys, then the steps stdin asks for */
    if (keys_make() < 0) return 1;
    int rc = run_attached();
    keys_free();
    nm_msgbuf_free(&hb_payload);
    nm_msgbuf_free(&ack_payload);
    if (csv) fclose(csv);
    return rc;
  }

  /* The baseline servers first: forked before the keys exist, they share none of that
   * memory, so their VmRSS is their sessions'. */
  uint16_t bare_port, tls_port;
  pid_t bare = lg_server_start(LG_SERVER_BARE, ack_frame, ack_frame_len, &bare_port);
  pid_t tls = lg_server_start(LG_SERVER_TLS, ack_frame, ack_frame_len, &tls_port);
  if (bare < 0 || tls < 0) return fprintf(stderr, "the baseline servers did not start\n"), 1;

  snprintf(state_dir, sizeof state_dir, "/tmp/natmesh-loadgen.XXXXXX");
  if (!mkdtemp(state_dir)) return perror("mkdtemp"), 1;

  uint64_t t0 = now_ns();
  if (keys_make() < 0) return 1;
  printf("N=%d: %d keys in %.2f s, %d source addresses, %d in flight\n", opt.n, opt.n + 1,
         (double)(now_ns() - t0) / 1e9, opt.sources, opt.in_flight);

  mgr_result m;
  base_result b, t;
  run_manager(&m);
  /* The baselines hold as many sessions as the manager did: the same load. */
  int nb = m.registered > 0 ? m.registered : opt.n;
  run_baseline(T_TLS, tls, tls_port, nb, 0, 0, &t);
  run_baseline(T_BARE, bare, bare_port, nb, m.join_bytes, m.leave_bytes, &b);
  child_stop(bare);
  child_stop(tls);

  printf("figures at N=%d (baseline: a server built from this tree, same run):\n", opt.n);
  if (m.registered < opt.n)
    figure("register_incomplete", m.registered, "servants", opt.n,
           "servants registered within the bound; baseline: N asked");
  if (m.refused)
    figure("register_refused", m.refused, "servants", opt.n,
           "refused by the manager (full, or its key store); baseline: N asked");
  figure("register_seconds", m.reg_s, "s", t.reg_s,
         "N register from nothing; baseline: N TLS sessions + one exchange");
  figure("register_cpu_seconds", m.reg_cpu_s, "s", t.reg_cpu_s,
         "manager utime+stime; baseline: the TLS ping-pong server's");
  figure("rss_per_servant", m.rss_per_kib, "KiB", t.rss_per_kib,
         "manager VmRSS growth per registered servant; baseline: TLS ping-pong's per session");
  figure("rss_idle_per_servant", m.rss_idle_per_kib, "KiB", t.rss_per_kib,
         "the same after the heartbeat window (the storm's heap given back); baseline: TLS ping-pong's");
  if (m.hb.rate > 0) {
    figure("heartbeat_rate", m.hb.rate, "acks/s", b.hb.rate,
           "closed loop per session; baseline: bare libuv ping-pong, plaintext");
    figure("heartbeat_rate_vs_tls", m.hb.rate, "acks/s", t.hb.rate,
           "baseline: nm_conn TLS ping-pong");
    figure("heartbeat_p50", m.hb.p50_us, "us", b.hb.p50_us, "round trip; baseline: bare ping-pong");
    figure("heartbeat_p99", m.hb.p99_us, "us", b.hb.p99_us, "round trip; baseline: bare ping-pong");
  }
  if (m.hb.server_us > 0 && b.hb.server_us > 0 && t.hb.server_us > 0) {
    /* Where a heartbeat's time goes. The load generator runs on the same cores, so with
     * TLS it pays for its own side of every record too: hb_cpu_bound is the most any server
     * could answer here, and its ratio to the bare ping-pong's bound is the best
     * heartbeat_rate ratio such costs allow. */
    double bound = hb_cpu_bound(&m.hb), bound_bare = hb_cpu_bound(&b.hb), bound_tls = hb_cpu_bound(&t.hb);
    figure("heartbeat_cpu_us", m.hb.server_us, "us", b.hb.server_us,
           "manager CPU per ack; baseline: the bare ping-pong server's");
    figure("heartbeat_cpu_us_vs_tls", m.hb.server_us, "us", t.hb.server_us,
           "baseline: the TLS ping-pong server's");
    figure("heartbeat_gen_cpu_us", m.hb.gen_us, "us", b.hb.gen_us,
           "this load generator's CPU per ack against the manager; baseline: against the bare ping-pong");
    figure("heartbeat_cpu_bound", bound, "acks/s", bound_bare,
           "the most acks/s server and generator CPU per ack allow on these cores; baseline: the bare ping-pong's");
    figure("heartbeat_cpu_bound_tls", bound_tls, "acks/s", bound_bare,
           "the TLS ping-pong's bound (TLS alone, no natmesh); baseline: the bare ping-pong's");
  }
  if (m.join_ok) {
    figure("join_seconds", m.join_s, "s", b.join_s,
           "one join to all N; baseline: the same bytes over plain TCP to N readers");
    figure("join_bytes_per_servant", m.join_bytes, "B", m.join_bytes,
           "delta frame bytes per servant per change (plaintext); bench.sh: baseline = smallest N");
  } else {
    figure("join_incomplete", 0, "servants", m.registered, "the join did not reach all N");
  }
  if (m.leave_ok) {
    figure("leave_seconds", m.leave_s, "s", b.leave_s,
           "one leave to all N; baseline: the same bytes over plain TCP to N readers");
    figure("leave_bytes_per_servant", m.leave_bytes, "B", m.leave_bytes,
           "delta frame bytes per servant per change (plaintext); bench.sh: baseline = smallest N");
  } else if (m.join_ok) {
    figure("leave_incomplete", 0, "servants", m.registered, "the leave did not reach all N");
  }
  if (opt.ctl) {
    figure("ctl_status_ok", m.ctl_s >= 0, "bool", m.ctl0_s >= 0,
           "natmesh-ctl status worked at N; baseline: at 0 servants");
    if (m.ctl_s >= 0 && m.ctl0_s >= 0)
      figure("ctl_status_seconds", m.ctl_s, "s", m.ctl0_s, "baseline: at 0 servants");
  }

  /* What cannot flake: no session was lost (a registration bound reached or a refusal is a
   * measured outcome, register_incomplete or register_refused, not a failure), every
   * heartbeat sent was answered, the baselines held every session. */
  if (m.lost) failures++;
  if (m.registered && !m.hb.complete) failures++;
  if (t.ready < nb || b.ready < nb || !t.hb.complete || !b.hb.complete) failures++;
  printf("%s\n", failures ? "FAIL: a session was lost or a heartbeat not answered" : "ok");

  keys_free();
  nm_msgbuf_free(&hb_payload);
  nm_msgbuf_free(&ack_payload);
  if (csv) fclose(csv);
  if (failures)
    printf("manager log and state kept in %s\n", state_dir);
  else
    nftw(state_dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
  return failures ? 1 : 0;
}
