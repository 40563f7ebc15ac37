/* Views (views.c): over random overlays in a bounded mesh (servants, dedicated relays,
 * relay clients, standby), a servant's view is exactly itself, its neighbours and their
 * relays, its relay, its clients and their neighbours, and the dedicated relays; and after every window of random
 * joins, leaves, relay assignments and entry changes, the flush leaves every servant's view
 * (as sent) equal to that set, with every entry as last published, and the watchers of
 * every id exactly the sessions holding it: no session is missed, none is told twice. */
#include "manager.h"
#include "views.h"
#include "nm_log.h"
#include "nmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXS 600
#define DEGREE 4

static manager m;
static mgr_session *S[MAXS];
static int ns;
static uint64_t flush_no;
static uint64_t rnd = 88172645463325252ULL;
static unsigned next_rand(unsigned n) {
  rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
  return (unsigned)(rnd % n);
}

static nm_delta_change pending[4096];
static size_t npending;

static void pend(mgr_session *s, int leave) {
  nm_delta_change *c = &pending[npending++];
  memset(c, 0, sizeof *c);
  c->leave = leave;
  if (leave) memcpy(c->peer.id, s->id, sizeof c->peer.id);
  else mgr_session_to_peer(s, &c->peer);
}

static mgr_session *add(int relay) {
  mgr_session *s = calloc(1, sizeof *s);
  int i = ns;
  s->mgr = &m;
  snprintf(s->id, sizeof s->id, "%016x", 0x1000 + i);
  snprintf(s->name, sizeof s->name, "s%d", i);
  snprintf(s->conn.peer_ip, sizeof s->conn.peer_ip, "10.0.%d.%d", i / 250, i % 250 + 1);
  s->port = (uint16_t)(4000 + i);
  s->role = relay ? NM_ROLE_RELAY : NM_ROLE_SERVANT;
  s->views_ok = 1;
  s->reach = NM_REACH_DIRECT;
  mgr_index_set_state(&m.index, s, MGR_SESSION_REGISTERED);
  s->in_list = 1;
  s->pub_digest = 1000 + (uint64_t)i;
  s->next = m.sessions;
  if (m.sessions) m.sessions->prev = s;
  else m.sessions_tail = s;
  m.sessions = s;
  S[ns++] = s;
  if (!relay) NMT_EQ_INT(mgr_mesh_add(&m.mesh, s->id), 0);
  return s;
}

static int live(const mgr_session *s) { return s && s->state == MGR_SESSION_REGISTERED && s->in_list; }

static mgr_session *find(const char *id) {
  mgr_session *s = mgr_find_listed(&m, id); /* the index (unit_mgr_index checks it) */
  return live(s) ? s : NULL;
}

static mgr_session *relay_of(const mgr_session *s) {
  return s->relay_id[0] && !s->standby ? find(s->relay_id) : NULL;
}

/* What s's view must be, computed the long way. */
static int expected(const mgr_session *s, const mgr_session *x) {
  if (!live(x)) return 0;
  if (x == s || x->role == NM_ROLE_RELAY || relay_of(s) == x) return 1;
  if (relay_of(x) == s) return 1; /* a client */
  char ids[MGR_MESH_DEGREE_MAX][NM_ID_LEN + 1];
  size_t n = mgr_mesh_neighbours(&m.mesh, s->id, ids, MGR_MESH_DEGREE_MAX);
  for (size_t i = 0; i < n; i++) {
    mgr_session *nb = find(ids[i]);
    if (nb == x || (nb && relay_of(nb) == x)) return 1;
  }
  /* a neighbour of a client: it sends to the client through s */
  n = mgr_mesh_neighbours(&m.mesh, x->id, ids, MGR_MESH_DEGREE_MAX);
  for (size_t i = 0; i < n; i++) {
    mgr_session *c = find(ids[i]);
    if (c && relay_of(c) == s) return 1;
  }
  return 0;
}

static int holds(const mgr_session *s, const mgr_session *x, uint64_t *digest) {
  for (size_t i = 0; i < s->view.n; i++)
    if (strcmp(s->view.at[i].id, x->id) == 0) {
      *digest = s->view.at[i].digest;
      return 1;
    }
  return 0;
}

static size_t check_all(const char *when) {
  size_t wrong = 0, biggest = 0;
  for (int i = 0; i < ns; i++) {
    mgr_session *s = S[i];
    if (!live(s) || s->role != NM_ROLE_SERVANT) continue;
    NMT_CHECK(s->view.on);
    size_t want = 0;
    for (int j = 0; j < ns; j++) {
      uint64_t d = 0;
      int e = expected(s, S[j]), h = live(S[j]) && holds(s, S[j], &d);
      want += e;
      if (e != h || (h && d != S[j]->pub_digest)) {
        if (wrong++ < 5)
          fprintf(stderr, "  %s: %s %s %s (digest %s)\n", when, s->name, h ? "holds" : "lacks", S[j]->name,
                  h && d != S[j]->pub_digest ? "old" : "ok");
      }
    }
    if (s->view.n != want) wrong++;
    if (s->view.n > biggest) biggest = s->view.n;
  }
  /* The watchers: exactly the sessions holding each id. */
  for (int j = 0; j < ns; j++) {
    size_t holders = 0;
    uint64_t d;
    for (int i = 0; i < ns; i++)
      if (live(S[i]) && S[i]->view.on && holds(S[i], S[j], &d)) holders++;
    if (live(S[j]) && holders != mgr_views_watchers(&m, S[j]->id)) {
      if (wrong++ < 10)
        fprintf(stderr, "  %s: %zu hold %s, %zu watch it\n", when, holders, S[j]->name, mgr_views_watchers(&m, S[j]->id));
    }
  }
  NMT_EQ_INT((int)wrong, 0);
  return biggest;
}

static void leave(mgr_session *s) {
  if (s->role == NM_ROLE_SERVANT) mgr_mesh_remove(&m.mesh, s->id);
  s->in_list = 0;
  mgr_index_set_state(&m.index, s, MGR_SESSION_RETIRED);
  mgr_index_forget(&m.index, s);
  mgr_views_forget(&m, s);
  pend(s, 1);
}

static mgr_session *waiters[64];
static int nwaiters;

/* The window closes: the newcomers' views first (publish.c's waiters: they get no delta
 * from this window), then the deltas. */
static void window(void) {
  ++flush_no;
  for (int i = 0; i < nwaiters; i++) {
    waiters[i]->list_flush = flush_no;
    if (live(waiters[i])) mgr_views_send_full(&m, waiters[i]); /* fails to send: no conn */
  }
  nwaiters = 0;
  mgr_views_flush(&m, pending, npending, flush_no);
  mgr_mesh_clear_changed(&m.mesh); /* neighbours.c would have told them */
  npending = 0;
}

static mgr_session *pick(int servant_only) {
  for (;;) {
    mgr_session *s = S[next_rand((unsigned)ns)];
    if (live(s) && (!servant_only || s->role == NM_ROLE_SERVANT)) return s;
  }
}

static void test_views(void) {
  nm_log_set_level(NM_LOG_ERROR); /* the sends fail (no connections): said at warn */
  memset(&m, 0, sizeof m);
  m.loop = uv_default_loop();
  mgr_index_init(&m.index);
  NMT_EQ_INT(mgr_mesh_init(&m.mesh, DEGREE, 7), 0);
  m.mesh_ready = m.mesh_on = 1;
  for (int i = 0; i < 200; i++) add(i % 40 == 0);
  /* Some pull from a relay (a dedicated one or a servant), one of them on standby. */
  for (int i = 0; i < 30; i++) {
    mgr_session *c = pick(1), *r = S[next_rand((unsigned)ns)];
    if (r == c) continue;
    snprintf(c->relay_id, sizeof c->relay_id, "%s", r->id);
    c->standby = i % 10 == 0;
    mgr_index_track_relayed(&m.index, c);
  }
  for (int i = 0; i < ns; i++)
    if (S[i]->role == NM_ROLE_SERVANT) mgr_views_send_full(&m, S[i]); /* fails to send: no conn */
  mgr_mesh_clear_changed(&m.mesh);
  size_t biggest = check_all("start");
  NMT_CHECK(biggest < 40); /* O(degree + relays + clients), not 200 */
  /* What views cost: the entries sent, and who watches each id (performance.md). */
  size_t servants = 0;
  for (int i = 0; i < ns; i++) servants += S[i]->role == NM_ROLE_SERVANT;
  size_t per = mgr_views_memory(&m) / servants;
  printf("# views: %zu bytes per servant (degree %d, %d sessions, 30 relayed, 5 dedicated relays)\n", per, DEGREE, ns);
  NMT_CHECK(per < 1024);
  for (int round = 0; round < 150; round++) {
    int changes = 1 + (int)next_rand(6);
    for (int k = 0; k < changes && ns < MAXS - 1; k++) {
      switch (next_rand(6)) {
      case 0: { /* a join: its own view at the window's end, like a waiter */
        mgr_session *s = add(next_rand(30) == 0);
        pend(s, 0);
        if (s->role == NM_ROLE_SERVANT) waiters[nwaiters++] = s;
        break;
      }
      case 1: leave(pick(0)); break;
      case 2: { /* a relay assigned (or dropped) */
        mgr_session *c = pick(1), *r = pick(0);
        if (r == c) break;
        if (c->relay_id[0] && next_rand(2)) c->relay_id[0] = 0;
        else snprintf(c->relay_id, sizeof c->relay_id, "%s", r->id);
        mgr_index_track_relayed(&m.index, c);
        c->pub_digest++;
        pend(c, 0);
        break;
      }
      default: { /* an entry changed (an address, a reach) */
        mgr_session *s = pick(0);
        s->pub_digest++;
        pend(s, 0);
        break;
      }
      }
    }
    window();
    char when[32];
    snprintf(when, sizeof when, "round %d", round);
    if (check_all(when) > 60) NMT_CHECK(0);
  }
  for (int i = 0; i < ns; i++) mgr_views_forget(&m, S[i]);
  NMT_CHECK(m.watch == NULL); /* nobody watches anything once every view is forgotten */
  mgr_views_close(&m);
  mgr_mesh_close(&m.mesh);
  /* The index's hash table lives in its entries' handles: closed before they are freed. */
  mgr_index_close(&m.index);
  for (int i = 0; i < ns; i++) free(S[i]);
}

/* The default degree (8), servants only: what a view costs a servant in the manager. */
static void test_memory(void) {
  memset(&m, 0, sizeof m);
  ns = 0;
  m.loop = uv_default_loop();
  mgr_index_init(&m.index);
  NMT_EQ_INT(mgr_mesh_init(&m.mesh, 8, 11), 0);
  m.mesh_ready = m.mesh_on = 1;
  for (int i = 0; i < 500; i++) add(0);
  for (int i = 0; i < ns; i++) mgr_views_send_full(&m, S[i]);
  size_t per = mgr_views_memory(&m) / (size_t)ns;
  printf("# views at degree 8: %zu bytes per servant in the manager\n", per);
  NMT_CHECK(per < 1024);
  for (int i = 0; i < ns; i++) mgr_views_forget(&m, S[i]);
  mgr_views_close(&m);
  mgr_mesh_close(&m.mesh);
  mgr_index_close(&m.index); /* before its entries are freed (test_views says why) */
  for (int i = 0; i < ns; i++) free(S[i]);
}

int main(void) {
  NMT_RUN(test_views);
  NMT_RUN(test_memory);
  return nmt_done();
}
