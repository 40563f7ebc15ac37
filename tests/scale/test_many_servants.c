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
#include "fleet.h"
#include "nm_msg.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define OBSERVERS 3  /* servants that decode every delta and keep their list */

static fleet F;
/* each servant's list as it arrives: pages so far (next expected) */
static struct {
  unsigned next_page, pages;
} *P;

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

static void on_list(fleet_sess *s, const char *payload, size_t len) {
  unsigned page = 0, pages = 1;
  if (s->whole && s->index >= OBSERVERS) return; /* a later list (a peers-request): not asked */
  int paged = page_of(payload, len, &page, &pages);
  if (paged && (page != P[s->index].next_page || (P[s->index].pages && pages != P[s->index].pages))) {
    s->bad = 1;
    snprintf(s->why, sizeof s->why, "page %u of %u after %u of %u", page, pages, P[s->index].next_page,
             P[s->index].pages);
  }
  P[s->index].pages = pages;
  P[s->index].next_page = page + 1;
  if (s->index < OBSERVERS) {
    nm_msg m;
    char err[300];
    if (nm_msg_decode(NM_MSG_PEERS, payload, len, &m, err, sizeof err) < 0) {
      s->bad = 1;
      snprintf(s->why, sizeof s->why, "%s", err);
      return;
    }
    fleet_take_peers(s, &m, page == 0);
    nm_msg_clear(&m);
  }
  if (!paged || page == pages - 1) {
    fleet_whole(s);
    P[s->index].next_page = 0;
    P[s->index].pages = 0;
  }
}

static void on_delta(fleet_sess *s, const char *payload, size_t len) {
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
  fleet_take_delta(s, &m);
  nm_msg_clear(&m);
}

static void on_frame(fleet_sess *s, uint8_t type, const char *payload, size_t len) {
  if (type == NM_MSG_PEERS) {
    on_list(s, payload, len);
  } else if (type == NM_MSG_DELTA) {
    on_delta(s, payload, len);
  } else if (type == NM_MSG_ERROR) {
    snprintf(s->why, sizeof s->why, "the manager said: %.*s", (int)(len < 150 ? len : 150), payload);
    s->bad = 1;
  }
}

/* natmesh-ctl's output for ARGS, into a malloc'ed string (NULL on failure). */
static char *ctl(const char *path, uint16_t port, const char *format) {
  char manager[32], out[128];
  snprintf(manager, sizeof manager, "127.0.0.1:%u", port);
  snprintf(out, sizeof out, "%s/ctl.%s", F.dir, format);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) dup2(fd, 1);
    execl(path, path, "--manager", manager, "--state-dir", F.dir, "--timeout", "60", "status", "--format", format,
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

int main(int argc, char **argv) {
  const char *manager = NULL, *ctl_path = NULL;
  int N = 2000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--manager") == 0) manager = argv[i + 1];
    else if (strcmp(argv[i], "--ctl") == 0) ctl_path = argv[i + 1];
    else if (strcmp(argv[i], "--n") == 0) N = atoi(argv[i + 1]);
  }
  if (!manager || !ctl_path || N < OBSERVERS) {
    fprintf(stderr, "usage: test_many_servants --manager PATH --ctl PATH [--n N]\n");
    return 2;
  }
  int st = fleet_prepare(&F, N, "test_many_servants");
  if (st) return st;
  F.name = "many";
  F.frame = on_frame;
  fleet_start(&F, manager, (char *)NULL);
  P = calloc((size_t)N, sizeof *P);
  fleet_sess *S = F.s;
  pid_t pid = F.pid;
  long rss0 = rss_kb(pid);
  double cpu0 = cpu_s(pid);
  uint64_t t0 = uv_hrtime();
  fleet_register(&F, 240000, NULL);
  int ready = F.ready;
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  CHECK(ready == N, "%d of %d servants registered and got a whole list (%.1f s)", ready, N, secs);
  fleet_run_for(&F, 500); /* the last window's delta reaches the observers */
  ready = F.ready;
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

  char *xml = ctl(ctl_path, F.port, "xml");
  CHECK(xml != NULL, "natmesh-ctl status --format xml ran");
  if (xml) {
    CHECK(count(xml, "<servant ") == (size_t)N, "natmesh-ctl status lists %zu servants (want %d)",
          count(xml, "<servant "), N);
    CHECK(strstr(xml, " page=") == NULL, "the status it shows is one document, not pages");
  }
  char *json = ctl(ctl_path, F.port, "json");
  CHECK(json != NULL, "natmesh-ctl status --format json ran");
  if (json) CHECK(count(json, "\"dial_port\"") + count(json, "\"dial-port\"") == (size_t)N,
                  "the JSON lists every servant");
  free(xml);
  free(json);

  int mst = fleet_stop(&F);
  free(P);
  /* Under a sanitizer a leak or an error at exit shows here. */
  CHECK(WIFEXITED(mst) && WEXITSTATUS(mst) == 0, "the manager stopped cleanly (status %d)", mst);
  return fleet_finish(&F);
}
