/* Views at scale (issue 13): a real natmesh-manager in a bounded mesh (--mesh-above 100
 * --mesh-degree 8) and N fake servants (default 2,000) registering over TLS from this one
 * process, as after a manager restart. Each fake servant keeps its list as a servant does:
 * a whole list replaces it, a delta must start at the version it holds (per-session view
 * versions) and is applied in order, and every id a `neighbours` message names must be in
 * its list already (the upserts come first).
 *
 *   - each servant ends up holding O(degree) entries (itself and its neighbours: at most
 *     degree + 1 here, no relays), not N;
 *   - the bytes the manager sends grow linearly: the second half of the servants costs
 *     about what the first half did (with full lists it costs three times as much);
 *   - a heartbeat's ack names the version of the servant's own view and the overlay's size.
 *
 *   test_mesh_views --manager PATH [--n 2000] */
#include "nm_conn.h"
#include "nm_error.h"
#include "nm_frame.h"
#include "nm_identity.h"
#include "nm_msg.h"
#include "nm_proto.h"
#include "nm_tls.h"
#include "nm_xml.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define IN_FLIGHT 6 /* below the manager's 8 unauthenticated sessions per address */
#define DEGREE 8
#define ABOVE 100
#define OLD 0 /* this one does not say views="1", as servants before views: the whole list */

static int failures;
#define CHECK(cond, ...)                                                                        \
  do {                                                                                          \
    if (cond) {                                                                                 \
      printf("ok - ");                                                                          \
    } else {                                                                                    \
      failures++;                                                                               \
      printf("not ok - ");                                                                      \
    }                                                                                           \
    printf(__VA_ARGS__);                                                                        \
    printf("\n");                                                                               \
  } while (0)

enum { S_IDLE, S_CONNECTING, S_HELLO, S_LISTENING, S_READY };

typedef struct {
  nm_conn conn;
  int index, state, closed;
  nm_identity id;
  nm_tls_ctx ctx;
  int whole, bad;
  char why[320];
  nm_peerlist list;
  unsigned nneighbours;
  uint64_t acked_version, acked_servants;
  int acked;
} sess;

static uv_loop_t *loop;
static sess *S;
static int N, next, ready, failed_sessions;
static int unwelcomed;
static struct sockaddr_in maddr;
static char dir[64];
static uint64_t bytes_in, frames_in, deltas_in, lists_in, gaps;

static void start_next(void);

static void fail(sess *s, const char *what) {
  if (!s->bad) snprintf(s->why, sizeof s->why, "%s", what);
  s->bad = 1;
}

static void on_list(sess *s, const char *payload, size_t len) {
  nm_msg m;
  char err[300];
  lists_in++;
  if (nm_msg_decode(NM_MSG_PEERS, payload, len, &m, err, sizeof err) < 0) return fail(s, err);
  if (m.u.peers.pages > 1 && s->index != OLD) fail(s, "a view in pages (a view is small)");
  if (m.u.peers.page == 0) nm_peerlist_clear(&s->list);
  for (size_t i = 0; i < m.u.peers.list->count; i++) nm_peerlist_upsert(&s->list, &m.u.peers.list->peers[i]);
  s->list.version = m.u.peers.list->version;
  int last = m.u.peers.pages <= 1 || m.u.peers.page == m.u.peers.pages - 1;
  nm_msg_clear(&m);
  if (!last) return;
  if (!s->whole && s->state == S_LISTENING) {
    s->state = S_READY;
    ready++;
  }
  s->whole = 1;
}

static void on_delta(sess *s, const char *payload, size_t len) {
  nm_msg m;
  char err[300];
  deltas_in++;
  if (nm_msg_decode(NM_MSG_DELTA, payload, len, &m, err, sizeof err) < 0) return fail(s, err);
  if (!s->whole || m.u.delta.base != s->list.version) {
    gaps++;
    snprintf(err, sizeof err, "delta from %llu while at %llu", (unsigned long long)m.u.delta.base,
             (unsigned long long)s->list.version);
    fail(s, err);
  }
  for (size_t i = 0; i < m.u.delta.count; i++) {
    const nm_delta_change *c = &m.u.delta.changes[i];
    if (c->leave) nm_peerlist_remove(&s->list, c->peer.id);
    else nm_peerlist_upsert(&s->list, &c->peer);
  }
  s->list.version = m.u.delta.version;
  nm_msg_clear(&m);
}

static void on_neighbours(sess *s, const char *payload, size_t len) {
  nm_msg m;
  char err[300];
  if (nm_msg_decode(NM_MSG_NEIGHBOURS, payload, len, &m, err, sizeof err) < 0) return fail(s, err);
  s->nneighbours = (unsigned)m.u.neighbours.count;
  for (size_t i = 0; i < m.u.neighbours.count; i++)
    if (!nm_peerlist_find(&s->list, m.u.neighbours.ids[i])) {
      snprintf(err, sizeof err, "neighbour %s named before its entry", m.u.neighbours.ids[i]);
      fail(s, err);
    }
  nm_msg_clear(&m);
}

static int on_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  sess *s = c->data;
  bytes_in += len + NM_FRAME_HEADER;
  frames_in++;
  if (type == NM_MSG_WELCOME && s->state == S_HELLO) {
    unwelcomed--;
    start_next();
    nm_msg m = {.type = NM_MSG_LISTENING};
    m.u.listening.port = (uint16_t)(20000 + s->index);
    nm_msg_send(c, &m);
    s->state = S_LISTENING;
  } else if (type == NM_MSG_PEERS) {
    on_list(s, payload, len);
  } else if (type == NM_MSG_DELTA) {
    on_delta(s, payload, len);
  } else if (type == NM_MSG_NEIGHBOURS) {
    on_neighbours(s, payload, len);
  } else if (type == NM_MSG_HEARTBEAT_ACK) {
    nm_msg m;
    char err[300];
    if (nm_msg_decode(NM_MSG_HEARTBEAT_ACK, payload, len, &m, err, sizeof err) == 0) {
      s->acked = 1;
      s->acked_version = m.u.heartbeat_ack.version;
      s->acked_servants = m.u.heartbeat_ack.servants;
    }
  } else if (type == NM_MSG_ERROR) {
    char why[200];
    snprintf(why, sizeof why, "the manager said: %.*s", (int)(len < 150 ? len : 150), payload);
    fail(s, why);
  }
  return 0;
}

static void on_closed(nm_conn *c) {
  sess *s = c->data;
  s->closed = 1;
  if (s->state == S_CONNECTING || s->state == S_HELLO) unwelcomed--;
  if (s->state != S_READY || !s->whole) {
    failed_sessions++;
    if (!s->why[0]) snprintf(s->why, sizeof s->why, "closed: %s", nm_strerror(c->close_err));
  }
}

static void on_connected(nm_conn *c, int status) {
  sess *s = c->data;
  if (status < 0) return;
  nm_frame_reader_set_max(&c->reader, NM_FRAME_MAX);
  nm_msg m = {.type = NM_MSG_HELLO};
  snprintf(m.u.hello.id, sizeof m.u.hello.id, "%s", nm_identity_id(&s->id));
  snprintf(m.u.hello.name, sizeof m.u.hello.name, "view%d", s->index);
  m.u.hello.role = NM_ROLE_SERVANT;
  m.u.hello.port = (uint16_t)(20000 + s->index);
  m.u.hello.views = s->index != OLD;
  nm_msg_send(c, &m);
  s->state = S_HELLO;
}

static void start_next(void) {
  while (next < N && unwelcomed < IN_FLIGHT) {
    sess *s = &S[next];
    s->index = next++;
    char err[200];
    if (nm_identity_generate(&s->id) < 0 || nm_tls_ctx_init(&s->ctx, &s->id, err, sizeof err) < 0) {
      failed_sessions++;
      continue;
    }
    nm_peerlist_init(&s->list);
    s->list.max = (size_t)N + 16;
    nm_conn_init(loop, &s->conn, on_frame, on_closed, s);
    nm_conn_set_tls(&s->conn, &s->ctx, NM_TLS_CLIENT, NULL);
    s->state = S_CONNECTING;
    unwelcomed++;
    nm_conn_connect(&s->conn, (struct sockaddr *)&maddr, 20000, on_connected);
  }
}

static void on_timer(uv_timer_t *t) { *(int *)t->data = 1; }

static void run_for(unsigned ms) {
  int expired = 0;
  uv_timer_t t;
  uv_timer_init(loop, &t);
  t.data = &expired;
  uv_timer_start(&t, on_timer, ms, 0);
  while (!expired) uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

static uint16_t free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(fd, (struct sockaddr *)&a, &len) < 0) return 0;
  close(fd);
  return ntohs(a.sin_port);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) { return remove(p); }

int main(int argc, char **argv) {
  const char *manager = NULL;
  N = 2000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--manager") == 0) manager = argv[i + 1];
    else if (strcmp(argv[i], "--n") == 0) N = atoi(argv[i + 1]);
  }
  if (!manager || N < 4 * ABOVE) {
    fprintf(stderr, "usage: test_mesh_views --manager PATH [--n N (>= %d)]\n", 4 * ABOVE);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  nm_xml_init();
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)N + 64) {
    printf("skip: %d sessions need more than ulimit -n %llu\n", N, (unsigned long long)rl.rlim_cur);
    return 77;
  }
  snprintf(dir, sizeof dir, "/tmp/test_mesh_views.XXXXXX");
  if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
  uint16_t port = free_port();
  char portstr[8], log[128], above[16], degree[16];
  snprintf(portstr, sizeof portstr, "%u", port);
  snprintf(above, sizeof above, "%d", ABOVE);
  snprintf(degree, sizeof degree, "%d", DEGREE);
  snprintf(log, sizeof log, "%s/manager.log", dir);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) dup2(fd, 1), dup2(fd, 2);
    execl(manager, manager, "--open", "--state-dir", dir, "--listen", "127.0.0.1", "--port", portstr,
          "--heartbeat", "60", "--timeout", "600", "--mesh-above", above, "--mesh-degree", degree, (char *)NULL);
    _exit(127);
  }
  loop = uv_default_loop();
  uv_ip4_addr("127.0.0.1", port, &maddr);
  for (int i = 0; i < 100; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int ok = connect(fd, (struct sockaddr *)&maddr, sizeof maddr) == 0;
    close(fd);
    if (ok) break;
    usleep(50 * 1000);
  }
  S = calloc((size_t)N, sizeof *S);
  uint64_t t0 = uv_hrtime();
  start_next();
  int expired = 0;
  uv_timer_t deadline;
  uv_timer_init(loop, &deadline);
  deadline.data = &expired;
  uv_timer_start(&deadline, on_timer, 240000, 0);
  /* Bytes at a quarter, at half and at the end: the halves past the threshold compared. */
  uint64_t at_quarter = 0, at_half = 0;
  int quarter = N / 4, half = N / 2;
  while (ready + failed_sessions < N && !expired) {
    uv_run(loop, UV_RUN_ONCE);
    if (!at_quarter && ready >= quarter) at_quarter = bytes_in;
    if (!at_half && ready >= half) at_half = bytes_in;
  }
  uv_timer_stop(&deadline);
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  CHECK(ready == N, "%d of %d servants registered in a bounded mesh and got their view (%.1f s)", ready, N, secs);
  run_for(500); /* the last window's deltas and neighbours */
  uint64_t at_end = bytes_in;

  int bad = 0;
  size_t most = 0, least = (size_t)-1, total = 0, told = 0;
  for (int i = 0; i < N; i++) {
    if (S[i].bad || (S[i].state == S_READY && !S[i].whole))
      if (bad++ < 5) printf("# servant %d: %s\n", i, S[i].why[0] ? S[i].why : "no whole list");
    if (i == OLD) continue;
    size_t n = S[i].list.count;
    most = n > most ? n : most;
    least = n < least ? n : least;
    total += n;
    told += S[i].nneighbours > 0;
  }
  CHECK(bad == 0, "every view arrived whole, every delta from the version held, every neighbour after its entry "
                  "(%d bad, %llu gaps)", bad, (unsigned long long)gaps);
  CHECK(most <= DEGREE + 1 && least >= 2,
        "each servant holds O(degree) entries: %zu to %zu, %.1f on average (degree %d, %d servants)", least, most,
        (double)total / (N - 1), DEGREE, N);
  CHECK(told == (size_t)N - 1, "%zu of %d servants were told their neighbours", told, N - 1);
  CHECK(S[OLD].list.count == (size_t)N && S[OLD].nneighbours > 0,
        "a servant that did not say views=\"1\" keeps the whole list (%zu of %d) from pages and shared deltas, "
        "in the mesh all the same", S[OLD].list.count, N);
  /* Linear: bytes per servant stay flat as the overlay grows. With whole lists the second
   * half would cost about 3x the first past the threshold (N^2 / 2 entries in all). */
  double q2 = (double)(at_half - at_quarter) / (half - quarter);
  double q34 = (double)(at_end - at_half) / (N - half);
  printf("# bytes to servants: %llu in all, %.0f per servant for servants %d..%d, %.0f for %d..%d; "
         "%llu frames, %llu lists, %llu deltas\n",
         (unsigned long long)at_end, q2, quarter, half, q34, half, N, (unsigned long long)frames_in,
         (unsigned long long)lists_in, (unsigned long long)deltas_in);
  CHECK(q34 < 1.3 * q2, "registration bytes grow linearly: %.0f bytes per servant joining at %d..%d, %.0f at %d..%d",
        q2, quarter, half, q34, half, N);
  CHECK(at_end / N < 20000, "%llu bytes per servant in all (a whole list of %d would be about %d each)",
        (unsigned long long)(at_end / N), N, N * 300);

  /* Heartbeats: the ack names each one's own view version, and the overlay's size. */
  for (int i = 0; i < 5; i++) {
    nm_msg m = {.type = NM_MSG_HEARTBEAT};
    m.u.heartbeat.version = S[1 + i * (N / 5)].list.version;
    nm_msg_send(&S[1 + i * (N / 5)].conn, &m);
  }
  run_for(500);
  int acks_ok = 0;
  for (int i = 0; i < 5; i++) {
    sess *s = &S[1 + i * (N / 5)];
    acks_ok += s->acked && s->acked_version == s->list.version && s->acked_servants == (uint64_t)N;
    if (!(s->acked && s->acked_version == s->list.version && s->acked_servants == (uint64_t)N))
      printf("# servant %d: ack %d version %llu (holds %llu), servants %llu\n", s->index, s->acked,
             (unsigned long long)s->acked_version, (unsigned long long)s->list.version,
             (unsigned long long)s->acked_servants);
  }
  CHECK(acks_ok == 5, "heartbeat-acks name each servant's own view version and servants=\"%d\" (%d of 5)", N,
        acks_ok);

  for (int i = 0; i < next; i++)
    if (!S[i].conn.closing && S[i].state != S_IDLE) nm_conn_close(&S[i].conn, 0, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  for (int i = 0; i < next; i++) {
    nm_tls_ctx_close(&S[i].ctx);
    nm_identity_close(&S[i].id);
    nm_peerlist_close(&S[i].list);
  }
  free(S);
  kill(pid, SIGTERM);
  int mst = 0;
  waitpid(pid, &mst, 0);
  CHECK(WIFEXITED(mst) && WEXITSTATUS(mst) == 0, "the manager stopped cleanly (status %d)", mst);
  if (failures) printf("# manager log kept in %s\n", log);
  else nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  return failures ? 1 : 0;
}
