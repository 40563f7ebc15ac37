/* A real natmesh-manager with more servants than the old frame-tied cap (1,536) allowed:
 * N fake servants (default 2,000; ctest runs 4,000, whose status is past 1 MiB) register over TLS, each with a key of its own, from this
 * one process (one libuv loop, nm_conn and nm_msg as the servant speaks them).
 *
 *   - every servant gets a whole list: one document, or every page of it in order, the last
 *     page holding its own entry alone (docs/protocol.md, "Paged lists");
 *   - a few observers (the first servants) keep their list current from the deltas and end
 *     up listing all N;
 *   - natmesh-ctl status (XML and JSON) lists all N, assembled from the status's pages.
 *
 * The old manager refused every servant past 1,536 ("the manager is full").
 *
 *   test_many_servants --manager PATH --ctl PATH [--n 2000] */
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

#define IN_FLIGHT 6  /* below the manager's 8 unauthenticated sessions per address */
#define OBSERVERS 3  /* servants that decode every delta and keep their list */

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
  /* the list as it arrives: pages so far (next expected), whether whole */
  unsigned next_page, pages;
  int whole, bad;
  char why[320];
  nm_peerlist list; /* observers only */
} sess;

static uv_loop_t *loop;
static sess *S;
static int N, next, ready, failed_sessions;
static int unwelcomed; /* connecting or said hello: what the manager's per-address cap counts */
static struct sockaddr_in maddr;
static char dir[64];

static void start_next(void);

/* " page="K" pages="P"" of a peers document, read from its first bytes: every servant
 * checks the order of its pages without decoding 2,000 entries. 0: none (one document). */
static int page_of(const char *payload, size_t len, unsigned *page, unsigned *pages) {
  size_t n = len < 200 ? len : 200;
  char head[201];
  memcpy(head, payload, n);
  head[n] = 0;
  const char *a = strstr(head, " page=\""), *b = strstr(head, " pages=\"");
  if (!a || !b) return 0;
  *page = (unsigned)strtoul(a + 7, NULL, 10);
  *pages = (unsigned)strtoul(b + 8, NULL, 10);
  return 1;
}

static void on_list(sess *s, const char *payload, size_t len) {
  unsigned page = 0, pages = 1;
  if (s->whole && s->index >= OBSERVERS) return; /* a later list (a peers-request): not asked */
  int paged = page_of(payload, len, &page, &pages);
  if (paged && (page != s->next_page || (s->pages && pages != s->pages))) {
    s->bad = 1;
    snprintf(s->why, sizeof s->why, "page %u of %u after %u of %u", page, pages, s->next_page, s->pages);
  }
  s->pages = pages;
  s->next_page = page + 1;
  if (s->index < OBSERVERS) {
    nm_msg m;
    char err[300];
    if (nm_msg_decode(NM_MSG_PEERS, payload, len, &m, err, sizeof err) < 0) {
      s->bad = 1;
      snprintf(s->why, sizeof s->why, "%s", err);
      return;
    }
    if (page == 0) nm_peerlist_clear(&s->list);
    for (size_t i = 0; i < m.u.peers.list->count; i++) nm_peerlist_upsert(&s->list, &m.u.peers.list->peers[i]);
    s->list.version = m.u.peers.list->version;
    nm_msg_clear(&m);
  }
  if (!paged || page == pages - 1) {
    if (!s->whole && s->state == S_LISTENING) {
      s->state = S_READY;
      ready++;
    }
    s->whole = 1;
    s->next_page = 0;
    s->pages = 0;
  }
}

static void on_delta(sess *s, const char *payload, size_t len) {
  if (s->index >= OBSERVERS) return;
  nm_msg m;
  char err[300];
  if (nm_msg_decode(NM_MSG_DELTA, payload, len, &m, err, sizeof err) < 0) {
    s->bad = 1;
    snprintf(s->why, sizeof s->why, "%s", err);
    return;
  }
  if (m.u.delta.base != s->list.version) {
    s->bad = 1;
    snprintf(s->why, sizeof s->why, "delta from %llu while at %llu", (unsigned long long)m.u.delta.base,
             (unsigned long long)s->list.version);
  }
  for (size_t i = 0; i < m.u.delta.count; i++) {
    const nm_delta_change *c = &m.u.delta.changes[i];
    if (c->leave) nm_peerlist_remove(&s->list, c->peer.id);
    else nm_peerlist_upsert(&s->list, &c->peer);
  }
  s->list.version = m.u.delta.version;
  nm_msg_clear(&m);
}

static int on_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  sess *s = c->data;
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
  } else if (type == NM_MSG_ERROR) {
    snprintf(s->why, sizeof s->why, "the manager said: %.*s", (int)(len < 150 ? len : 150), payload);
    s->bad = 1;
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
  snprintf(m.u.hello.name, sizeof m.u.hello.name, "many%d", s->index);
  m.u.hello.role = NM_ROLE_SERVANT;
  m.u.hello.port = (uint16_t)(20000 + s->index);
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

/* natmesh-ctl's output for ARGS, into a malloc'ed string (NULL on failure). */
static char *ctl(const char *path, uint16_t port, const char *format) {
  char manager[32], out[128];
  snprintf(manager, sizeof manager, "127.0.0.1:%u", port);
  snprintf(out, sizeof out, "%s/ctl.%s", dir, format);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) dup2(fd, 1);
    execl(path, path, "--manager", manager, "--state-dir", dir, "--timeout", "60", "status", "--format", format,
          (char *)NULL);
    _exit(127);
  }
  int st = 0;
  /* The loop stays still meanwhile: the fake servants need not answer (long heartbeat). */
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return NULL;
  FILE *f = fopen(out, "r");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) n = 0;
  if (buf) buf[n] = 0;
  fclose(f);
  return buf;
}

static size_t count(const char *hay, const char *needle) {
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
  return n;
}

/* The manager's resident memory (VmRSS), in kB; 0 when unknown. */
static long rss_kb(pid_t pid) {
  char path[64], line[128];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  long kb = 0;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kb = strtol(line + 6, NULL, 10);
  if (f) fclose(f);
  return kb;
}

/* The manager's CPU time (user + system) so far, in seconds; -1 when unknown. */
static double cpu_s(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *p = strrchr(buf, ')'); /* the name may hold spaces; the fields follow it */
  unsigned long ut = 0, st = 0;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) { return remove(p); }

int main(int argc, char **argv) {
  const char *manager = NULL, *ctl_path = NULL;
  N = 2000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--manager") == 0) manager = argv[i + 1];
    else if (strcmp(argv[i], "--ctl") == 0) ctl_path = argv[i + 1];
    else if (strcmp(argv[i], "--n") == 0) N = atoi(argv[i + 1]);
  }
  if (!manager || !ctl_path || N < OBSERVERS) {
    fprintf(stderr, "usage: test_many_servants --manager PATH --ctl PATH [--n N]\n");
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
  snprintf(dir, sizeof dir, "/tmp/test_many_servants.XXXXXX");
  if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
  uint16_t port = free_port();
  char portstr[8], log[128];
  snprintf(portstr, sizeof portstr, "%u", port);
  snprintf(log, sizeof log, "%s/manager.log", dir);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) dup2(fd, 1), dup2(fd, 2);
    execl(manager, manager, "--open", "--state-dir", dir, "--listen", "127.0.0.1", "--port", portstr,
          "--heartbeat", "60", "--timeout", "600", (char *)NULL);
    _exit(127);
  }
  loop = uv_default_loop();
  uv_ip4_addr("127.0.0.1", port, &maddr);
  for (int i = 0; i < 100; i++) { /* ready when it accepts */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int ok = connect(fd, (struct sockaddr *)&maddr, sizeof maddr) == 0;
    close(fd);
    if (ok) break;
    usleep(50 * 1000);
  }
  S = calloc((size_t)N, sizeof *S);
  long rss0 = rss_kb(pid);
  double cpu0 = cpu_s(pid);
  uint64_t t0 = uv_hrtime();
  start_next();
  int expired = 0;
  uv_timer_t deadline;
  uv_timer_init(loop, &deadline);
  deadline.data = &expired;
  uv_timer_start(&deadline, on_timer, 240000, 0);
  while (ready + failed_sessions < N && !expired) uv_run(loop, UV_RUN_ONCE);
  uv_timer_stop(&deadline);
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  CHECK(ready == N, "%d of %d servants registered and got a whole list (%.1f s)", ready, N, secs);
  run_for(500); /* the last window's delta reaches the observers */
  long rss1 = rss_kb(pid);
  double cpu1 = cpu_s(pid);
  if (cpu0 >= 0 && cpu1 >= 0) printf("# manager CPU for %d registrations: %.2f s\n", ready, cpu1 - cpu0);
  /* Informational (docs/performance.md): TLS included, the allocator's slack too. */
  if (rss0 && rss1 && ready)
    printf("# manager resident memory: %ld kB idle, %ld kB with %d servants: %.1f kB per servant\n", rss0, rss1,
           ready, (double)(rss1 - rss0) / ready);

  int bad = 0;
  for (int i = 0; i < N; i++)
    if (S[i].bad || (S[i].state == S_READY && !S[i].whole)) {
      if (bad++ < 5) printf("# servant %d: %s\n", i, S[i].why[0] ? S[i].why : "no whole list");
    }
  CHECK(bad == 0, "every list arrived whole, its pages in order (%d bad)", bad);
  for (int i = 0; i < OBSERVERS; i++)
    CHECK(S[i].list.count == (size_t)N, "observer %d keeps a list of %zu (want %d) from the deltas", i,
          S[i].list.count, N);

  char *xml = ctl(ctl_path, port, "xml");
  CHECK(xml != NULL, "natmesh-ctl status --format xml ran");
  if (xml) {
    CHECK(count(xml, "<servant ") == (size_t)N, "natmesh-ctl status lists %zu servants (want %d)",
          count(xml, "<servant "), N);
    CHECK(strstr(xml, " page=") == NULL, "the status it shows is one document, not pages");
  }
  char *json = ctl(ctl_path, port, "json");
  CHECK(json != NULL, "natmesh-ctl status --format json ran");
  if (json) CHECK(count(json, "\"dial_port\"") + count(json, "\"dial-port\"") == (size_t)N,
                  "the JSON lists every servant");
  free(xml);
  free(json);

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
  /* Under a sanitizer a leak or an error at exit shows here. */
  CHECK(WIFEXITED(mst) && WEXITSTATUS(mst) == 0, "the manager stopped cleanly (status %d)", mst);
  if (failures) printf("# manager log kept in %s\n", log);
  else nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  return failures ? 1 : 0;
}
