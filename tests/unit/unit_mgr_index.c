/* The manager's indexes (src/manager/index.c): listed sessions by id, held ports by (address,
 * port), the session counts, and the relayed and accused lists, kept true through every
 * change of state and port. Sessions here are bare structs: no loop, no sockets. */
#include "index.h"
#include "manager.h"
#include "nmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mgr_session *mk(const char *id, const char *ip, nm_role role) {
  mgr_session *s = calloc(1, sizeof *s);
  snprintf(s->id, sizeof s->id, "%s", id);
  snprintf(s->conn.peer_ip, sizeof s->conn.peer_ip, "%s", ip);
  s->role = role;
  return s;
}

/* Listed (registered or replacing) sessions are found by id; others are not. */
static void test_listed_by_id(void) {
  mgr_index x;
  mgr_index_init(&x);
  mgr_session *a = mk("00000000000000aa", "10.0.0.1", NM_ROLE_SERVANT);
  mgr_session *b = mk("00000000000000bb", "10.0.0.2", NM_ROLE_SERVANT);
  mgr_index_set_state(&x, a, MGR_SESSION_WELCOMED);
  NMT_CHECK(mgr_index_find(&x, a->id) == NULL); /* welcomed: not listed */
  mgr_index_set_state(&x, a, MGR_SESSION_REGISTERED);
  mgr_index_set_state(&x, b, MGR_SESSION_WELCOMED);
  mgr_index_set_state(&x, b, MGR_SESSION_REPLACING);
  NMT_CHECK(mgr_index_find(&x, a->id) == a);
  NMT_CHECK(mgr_index_find(&x, b->id) == b);
  NMT_CHECK(mgr_index_find(&x, "00000000000000cc") == NULL);
  /* A take-over: the old session retires, the new one of the same id replaces it. */
  mgr_session *a2 = mk("00000000000000aa", "10.0.0.9", NM_ROLE_SERVANT);
  mgr_index_set_state(&x, a2, MGR_SESSION_WELCOMED);
  mgr_index_set_state(&x, a, MGR_SESSION_RETIRED);
  mgr_index_set_state(&x, a2, MGR_SESSION_REPLACING);
  NMT_CHECK(mgr_index_find(&x, a->id) == a2);
  mgr_index_forget(&x, a);
  NMT_CHECK(mgr_index_find(&x, a->id) == a2);
  mgr_index_forget(&x, a2);
  NMT_CHECK(mgr_index_find(&x, a->id) == NULL);
  mgr_index_forget(&x, b);
  NMT_CHECK(x.listed == NULL);
  free(a), free(a2), free(b);
  mgr_index_close(&x);
}

/* Ports are held per (address, port) by welcomed and listed sessions, counted, and given
 * back when a session moves port, retires or is forgotten. */
static void test_ports_held(void) {
  mgr_index x;
  mgr_index_init(&x);
  mgr_session *a = mk("00000000000000aa", "10.0.0.1", NM_ROLE_SERVANT);
  mgr_session *b = mk("00000000000000bb", "10.0.0.1", NM_ROLE_SERVANT);
  mgr_session *c = mk("00000000000000cc", "10.0.0.2", NM_ROLE_SERVANT);
  mgr_index_set_port(&x, a, 4001); /* new: holds nothing yet */
  NMT_EQ_INT(mgr_index_port_holders(&x, "10.0.0.1", 4001), 0);
  mgr_index_set_state(&x, a, MGR_SESSION_WELCOMED);
  NMT_EQ_INT(mgr_index_port_holders(&x, "10.0.0.1", 4001), 1);
  mgr_index_set_state(&x, b, MGR_SESSION_WELCOMED);
  mgr_index_set_port(&x, b, 4001); /* the same servant reconnecting asks for its port */
  NMT_EQ_INT(mgr_index_port_holders(&x, "10.0.0.1", 4001), 2);
  mgr_index_set_state(&x, c, MGR_SESSION_WELCOMED);
  mgr_index_set_port(&x, c, 4001);
  NMT_EQ_INT(mgr_index_port_holders(&x, "10.0.0.2", 4001), 1);
  mgr_index_set_port(&x, b, 4002);
  NMT_EQ_INT(mgr_index_port_holders(&x, "10.0.0.1", 4001), 1);
  NMT_EQ_INT(mgr_index_port_holders(&x, "10.0.0.1", 4002), 1);
  mgr_index_set_state(&x, a, MGR_SESSION_REGISTERED);
  NMT_EQ_INT(mgr_index_port_holders(&x, "10.0.0.1", 4001), 1);
  mgr_index_set_state(&x, a, MGR_SESSION_RETIRED);
  NMT_EQ_INT(mgr_index_port_holders(&x, "10.0.0.1", 4001), 0);
  mgr_index_set_port(&x, b, 0); /* busy: none until assigned again */
  NMT_EQ_INT(mgr_index_port_holders(&x, "10.0.0.1", 4002), 0);
  mgr_index_forget(&x, c);
  NMT_EQ_INT(mgr_index_port_holders(&x, "10.0.0.2", 4001), 0);
  mgr_index_forget(&x, a);
  mgr_index_forget(&x, b);
  NMT_CHECK(x.ports == NULL);
  free(a), free(b), free(c);
  mgr_index_close(&x);
}

/* The counts follow every change of state: servants (welcomed or listed), registered
 * servants (relays are not), and ctl sessions. */
static void test_counts(void) {
  mgr_index x;
  mgr_index_init(&x);
  mgr_session *a = mk("00000000000000aa", "10.0.0.1", NM_ROLE_SERVANT);
  mgr_session *r = mk("00000000000000bb", "10.0.0.1", NM_ROLE_RELAY);
  mgr_session *k = mk("", "10.0.0.3", NM_ROLE_SERVANT);
  mgr_index_set_state(&x, a, MGR_SESSION_WELCOMED);
  mgr_index_set_state(&x, r, MGR_SESSION_WELCOMED);
  mgr_index_set_state(&x, k, MGR_SESSION_CTL);
  NMT_EQ_INT(x.servants, 2);
  NMT_EQ_INT(x.registered_servants, 0);
  NMT_EQ_INT(x.ctl, 1);
  mgr_index_set_state(&x, a, MGR_SESSION_REGISTERED);
  mgr_index_set_state(&x, r, MGR_SESSION_REGISTERED);
  NMT_EQ_INT(x.servants, 2);
  NMT_EQ_INT(x.registered_servants, 1);
  mgr_index_set_state(&x, a, MGR_SESSION_RETIRED);
  mgr_index_set_state(&x, k, MGR_SESSION_RETIRED);
  NMT_EQ_INT(x.servants, 1);
  NMT_EQ_INT(x.registered_servants, 0);
  NMT_EQ_INT(x.ctl, 0);
  mgr_index_forget(&x, a), mgr_index_forget(&x, r), mgr_index_forget(&x, k);
  NMT_EQ_INT(x.servants, 0);
  free(a), free(r), free(k);
  mgr_index_close(&x);
}

static size_t count_relayed(const mgr_index *x) {
  size_t n = 0;
  for (mgr_session *s = x->relayed; s; s = s->rel_next) n++;
  return n;
}

/* The relayed and accused lists: joined once however often tracked, walked without the
 * others, pruned only of what no longer belongs, left on forget. */
static void test_lists(void) {
  mgr_index x;
  mgr_index_init(&x);
  enum { N = 1000 };
  mgr_session *s[N];
  for (int i = 0; i < N; i++) {
    char id[NM_ID_LEN + 1];
    snprintf(id, sizeof id, "%016x", i + 1);
    s[i] = mk(id, "10.0.0.1", NM_ROLE_SERVANT);
    mgr_index_set_state(&x, s[i], MGR_SESSION_REGISTERED);
  }
  NMT_EQ_INT(count_relayed(&x), 0);
  snprintf(s[3]->relay_id, sizeof s[3]->relay_id, "%s", s[0]->id);
  mgr_index_track_relayed(&x, s[3]);
  mgr_index_track_relayed(&x, s[3]);
  s[7]->reach = NM_REACH_SUSPICIOUS;
  mgr_index_track_relayed(&x, s[7]);
  s[9]->pair = 1;
  mgr_index_track_relayed(&x, s[9]);
  NMT_EQ_INT(count_relayed(&x), 3);
  /* s[9] leaves the pair path, s[7] retires: the prune drops both, keeps s[3]. */
  s[9]->pair = 0;
  mgr_index_set_state(&x, s[7], MGR_SESSION_RETIRED);
  mgr_index_prune(&x);
  NMT_EQ_INT(count_relayed(&x), 1);
  NMT_CHECK(x.relayed == s[3]);
  mgr_index_forget(&x, s[3]);
  NMT_EQ_INT(count_relayed(&x), 0);
  /* accused: tracked, pruned when its complaints are gone */
  mgr_complaint one;
  memset(&one, 0, sizeof one);
  s[5]->complaints.v = &one;
  s[5]->complaints.n = 1;
  mgr_index_track_accused(&x, s[5]);
  mgr_index_prune(&x);
  NMT_CHECK(x.accused == s[5]);
  s[5]->complaints.n = 0;
  s[5]->complaints.v = NULL;
  mgr_index_prune(&x);
  NMT_CHECK(x.accused == NULL);
  for (int i = 0; i < N; i++) {
    mgr_index_forget(&x, s[i]);
    free(s[i]);
  }
  NMT_CHECK(x.listed == NULL && x.ports == NULL);
  mgr_index_close(&x);
}

int main(void) {
  NMT_RUN(test_listed_by_id);
  NMT_RUN(test_ports_held);
  NMT_RUN(test_counts);
  NMT_RUN(test_lists);
  return nmt_done();
}
