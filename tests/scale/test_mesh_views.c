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
#include "fleet.h"
#include "nm_frame.h"
#include "nm_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define DEGREE 8
#define ABOVE 100
#define OLD 0 /* this one does not say views="1", as servants before views: the whole list */

static fleet F;
/* each servant's own: what it was told of its neighbours, its last heartbeat-ack */
static struct {
  unsigned nneighbours;
  uint64_t acked_version, acked_servants;
  int acked;
} *V;
static uint64_t bytes_in, frames_in, deltas_in, lists_in, gaps;

static void fail(fleet_sess *s, const char *what) {
  if (!s->bad) snprintf(s->why, sizeof s->why, "%s", what);
  s->bad = 1;
}

static void on_list(fleet_sess *s, const char *payload, size_t len) {
  nm_msg m;
  char err[300];
  lists_in++;
  if (nm_msg_decode(NM_MSG_PEERS, payload, len, &m, err, sizeof err) < 0) return fail(s, err);
  if (m.u.peers.pages > 1 && s->index != OLD) fail(s, "a view in pages (a view is small)");
  fleet_take_peers(s, &m, m.u.peers.page == 0);
  int last = m.u.peers.pages <= 1 || m.u.peers.page == m.u.peers.pages - 1;
  nm_msg_clear(&m);
  if (!last) return;
  fleet_whole(s);
}

static void on_delta(fleet_sess *s, const char *payload, size_t len) {
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
  fleet_take_delta(s, &m);
  nm_msg_clear(&m);
}

static void on_neighbours(fleet_sess *s, const char *payload, size_t len) {
  nm_msg m;
  char err[300];
  if (nm_msg_decode(NM_MSG_NEIGHBOURS, payload, len, &m, err, sizeof err) < 0) return fail(s, err);
  V[s->index].nneighbours = (unsigned)m.u.neighbours.count;
  for (size_t i = 0; i < m.u.neighbours.count; i++)
    if (!nm_peerlist_find(&s->list, m.u.neighbours.ids[i])) {
      snprintf(err, sizeof err, "neighbour %s named before its entry", m.u.neighbours.ids[i]);
      fail(s, err);
    }
  nm_msg_clear(&m);
}

static void on_frame(fleet_sess *s, uint8_t type, const char *payload, size_t len) {
  bytes_in += len + NM_FRAME_HEADER;
  frames_in++;
  if (type == NM_MSG_PEERS) {
    on_list(s, payload, len);
  } else if (type == NM_MSG_DELTA) {
    on_delta(s, payload, len);
  } else if (type == NM_MSG_NEIGHBOURS) {
    on_neighbours(s, payload, len);
  } else if (type == NM_MSG_HEARTBEAT_ACK) {
    nm_msg m;
    char err[300];
    if (nm_msg_decode(NM_MSG_HEARTBEAT_ACK, payload, len, &m, err, sizeof err) == 0) {
      V[s->index].acked = 1;
      V[s->index].acked_version = m.u.heartbeat_ack.version;
      V[s->index].acked_servants = m.u.heartbeat_ack.servants;
    }
  } else if (type == NM_MSG_ERROR) {
    char why[200];
    snprintf(why, sizeof why, "the manager said: %.*s", (int)(len < 150 ? len : 150), payload);
    fail(s, why);
  }
}

static void on_hello(fleet_sess *s, nm_msg *m) { m->u.hello.views = s->index != OLD; }

/* Bytes at a quarter, at half and at the end: the halves past the threshold compared. */
static uint64_t at_quarter, at_half;
static int quarter, half;

static void on_step(fleet *f) {
  if (!at_quarter && f->ready >= quarter) at_quarter = bytes_in;
  if (!at_half && f->ready >= half) at_half = bytes_in;
}

int main(int argc, char **argv) {
  const char *manager = NULL;
  int N = 2000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--manager") == 0) manager = argv[i + 1];
    else if (strcmp(argv[i], "--n") == 0) N = atoi(argv[i + 1]);
  }
  if (!manager || N < 4 * ABOVE) {
    fprintf(stderr, "usage: test_mesh_views --manager PATH [--n N (>= %d)]\n", 4 * ABOVE);
    return 2;
  }
  int st = fleet_prepare(&F, N, "test_mesh_views");
  if (st) return st;
  char above[16], degree[16];
  snprintf(above, sizeof above, "%d", ABOVE);
  snprintf(degree, sizeof degree, "%d", DEGREE);
  F.name = "view";
  F.frame = on_frame;
  F.hello = on_hello;
  V = calloc((size_t)N, sizeof *V);
  fleet_start(&F, manager, "--mesh-above", above, "--mesh-degree", degree, (char *)NULL);
  fleet_sess *S = F.s;
  uint64_t t0 = uv_hrtime();
  quarter = N / 4, half = N / 2;
  fleet_register(&F, 240000, on_step);
  int ready = F.ready;
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  CHECK(ready == N, "%d of %d servants registered in a bounded mesh and got their view (%.1f s)", ready, N, secs);
  fleet_run_for(&F, 500); /* the last window's deltas and neighbours */
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
    told += V[i].nneighbours > 0;
  }
  CHECK(bad == 0, "every view arrived whole, every delta from the version held, every neighbour after its entry "
                  "(%d bad, %llu gaps)", bad, (unsigned long long)gaps);
  CHECK(most <= DEGREE + 1 && least >= 2,
        "each servant holds O(degree) entries: %zu to %zu, %.1f on average (degree %d, %d servants)", least, most,
        (double)total / (N - 1), DEGREE, N);
  CHECK(told == (size_t)N - 1, "%zu of %d servants were told their neighbours", told, N - 1);
  CHECK(S[OLD].list.count == (size_t)N && V[OLD].nneighbours > 0,
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
  fleet_run_for(&F, 500);
  int acks_ok = 0;
  for (int i = 0; i < 5; i++) {
    fleet_sess *s = &S[1 + i * (N / 5)];
    int acked = V[s->index].acked;
    uint64_t version = V[s->index].acked_version, servants = V[s->index].acked_servants;
    acks_ok += acked && version == s->list.version && servants == (uint64_t)N;
    if (!(acked && version == s->list.version && servants == (uint64_t)N))
      printf("# servant %d: ack %d version %llu (holds %llu), servants %llu\n", s->index, acked,
             (unsigned long long)version, (unsigned long long)s->list.version, (unsigned long long)servants);
  }
  CHECK(acks_ok == 5, "heartbeat-acks name each servant's own view version and servants=\"%d\" (%d of 5)", N,
        acks_ok);

  int mst = fleet_stop(&F);
  free(V);
  CHECK(WIFEXITED(mst) && WEXITSTATUS(mst) == 0, "the manager stopped cleanly (status %d)", mst);
  return fleet_finish(&F);
}
