/* The relay choice's pool (registry.c, mgr_relay_pool): choosing among the pool gives the
 * same relay as choosing among every registered session, over many random overlays
 * (dedicated relays, servants with and without room, unreachable, provisional, complained
 * about, serving clients, a pair client and its sides), while the pool stays small. */
#include "manager.h"
#include "relay_choice.h"
#include "nmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 400

static manager m;
static mgr_session *S[N];
static uint64_t rnd = 88172645463325252ULL;
static unsigned next_rand(unsigned n) {
  rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
  return (unsigned)(rnd % n);
}

/* A registered session, the newest in the manager's list (connected at t ms). */
static mgr_session *add(int i, uint64_t t) {
  mgr_session *s = calloc(1, sizeof *s);
  s->mgr = &m;
  snprintf(s->id, sizeof s->id, "%016x", 0x1000 + i);
  snprintf(s->name, sizeof s->name, "s%d", i);
  snprintf(s->conn.peer_ip, sizeof s->conn.peer_ip, "10.0.%d.%d", i / 250, i % 250 + 1);
  s->role = next_rand(10) == 0 ? NM_ROLE_RELAY : NM_ROLE_SERVANT;
  s->reach = next_rand(4) == 0 ? NM_REACH_SUSPICIOUS : next_rand(3) == 0 ? NM_REACH_MAPPED : NM_REACH_DIRECT;
  s->provisional = s->reach == NM_REACH_DIRECT && next_rand(8) == 0;
  s->max_clients = next_rand(5) == 0 ? 0 : 1 + next_rand(3);
  s->connected_ms = t;
  mgr_index_set_state(&m.index, s, MGR_SESSION_REGISTERED);
  s->next = m.sessions;
  if (m.sessions) m.sessions->prev = s;
  else m.sessions_tail = s;
  m.sessions = s;
  m.nsessions++;
  return s;
}

/* The candidate record relays.c builds for r, for client s (mirrors mgr_relay_pick). */
static void describe(mgr_session *s, mgr_session *r, mgr_relay_candidate *c, const mgr_verdict_rules *rules,
                     uint64_t now) {
  memset(c, 0, sizeof *c);
  int pair = s->pair && (s->reach == NM_REACH_DIRECT || s->reach == NM_REACH_MAPPED);
  c->is_client = r == s;
  c->dedicated = r->role == NM_ROLE_RELAY;
  c->reachable = (r->reach == NM_REACH_DIRECT || r->reach == NM_REACH_MAPPED) && !r->provisional;
  c->complained_about = mgr_complaints_reporters(&r->complaints, rules, now) > 0;
  c->excluded = pair && r != s &&
                (mgr_complaints_live(&s->complaints, r->id, rules, now) > 0 ||
                 mgr_complaints_live(&r->complaints, s->id, rules, now) > 0);
  c->max_clients = r->max_clients;
  c->connected_ms = now - r->connected_ms;
  for (mgr_session *k = m.sessions; k; k = k->next)
    if (k != s && mgr_session_listed(k) && strcmp(k->relay_id, r->id) == 0) c->clients++;
}

static mgr_session *choose(mgr_session *s, mgr_session **v, size_t n) {
  mgr_verdict_rules rules = mgr_rules(&m);
  uint64_t now = mgr_now_ms(&m);
  mgr_relay_candidate *c = calloc(n ? n : 1, sizeof *c);
  for (size_t i = 0; i < n; i++) describe(s, v[i], &c[i], &rules, now);
  int k = mgr_relay_choose(c, n);
  free(c);
  return k < 0 ? NULL : v[k];
}

static void test_pool_chooses_as_all(void) {
  int differ = 0, rounds = 0;
  size_t biggest = 0;
  for (int round = 0; round < 30; round++) {
    memset(&m, 0, sizeof m);
    m.loop = uv_default_loop();
    m.cfg.heartbeat_s = 5, m.cfg.complaint_threshold = 2, m.cfg.complaint_window_s = 600;
    m.cfg.quorum_percent = 50;
    mgr_index_init(&m.index);
    uv_update_time(m.loop);
    uint64_t now = mgr_now_ms(&m);
    for (int i = 0; i < N; i++) S[i] = add(i, now > (uint64_t)(N - i) * 10 ? now - (uint64_t)(N - i) * 10 : 0);
    mgr_verdict_rules rules = mgr_rules(&m);
    /* Some servants pull from others (within the relays' room, not checked: the policy
     * counts them), some are complained about by two reporters, one pair client. */
    for (int i = 0; i < N; i++) {
      if (next_rand(6) == 0) {
        mgr_session *r = S[next_rand(N)];
        if (r != S[i]) {
          snprintf(S[i]->relay_id, sizeof S[i]->relay_id, "%s", r->id);
          mgr_index_track_relayed(&m.index, S[i]);
        }
      }
      if (next_rand(15) == 0)
        for (int k = 0; k < 2; k++) {
          mgr_complaints_add(&S[i]->complaints, S[next_rand(N)]->id, &rules, now);
          mgr_complaints_add(&S[i]->complaints, S[next_rand(N)]->id, &rules, now + 6000);
        }
    }
    for (int t = 0; t < 20; t++) {
      mgr_session *s = S[next_rand(N)];
      if (t % 5 == 0) { /* a pair client: some old servants cannot reach it */
        s->pair = 1;
        s->reach = NM_REACH_DIRECT;
        for (int k = 0; k < 3; k++) mgr_complaints_add(&s->complaints, S[N - 1 - k]->id, &rules, now);
      }
      mgr_session **pool = NULL;
      long n = mgr_relay_pool(&m, s, NULL, &pool);
      NMT_CHECK(n > 0);
      if ((size_t)n > biggest) biggest = (size_t)n;
      mgr_session *all[N];
      size_t na = 0;
      for (mgr_session *r = m.sessions; r; r = r->next) all[na++] = r;
      mgr_session *a = choose(s, pool, (size_t)n), *b = choose(s, all, na);
      if (a != b) {
        differ++;
        fprintf(stderr, "  round %d: pool chose %s, all %s\n", round, a ? a->name : "none", b ? b->name : "none");
      }
      rounds++;
      free(pool);
      s->pair = 0;
    }
    for (int i = 0; i < N; i++) {
      mgr_complaints_free(&S[i]->complaints);
      mgr_index_forget(&m.index, S[i]);
      free(S[i]);
    }
    mgr_index_close(&m.index);
  }
  NMT_EQ_INT(differ, 0);
  NMT_CHECK(rounds == 600);
  /* The pool is what matters, not the overlay: far fewer than the 400 sessions. */
  fprintf(stderr, "  largest pool: %zu of %d sessions\n", biggest, N);
  NMT_CHECK(biggest < N / 2);
}

int main(void) {
  NMT_RUN(test_pool_chooses_as_all);
  return nmt_done();
}
