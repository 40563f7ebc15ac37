/* The manager's status and metrics for several managers sharing a store (issue 14), without
 * a store: status.c asks holder.h for each servant's holder and for the <store>, and
 * metrics.c exports the store's mgr_stats fields. This test gives holder.h's two functions
 * bodies of its own (holder.c is left out of it, tests/unit/CMakeLists.txt) and fills the
 * stats by hand: what the status and /metrics then say. Sessions are made
 * by hand; no loop runs, no socket opens. */
#include "holder.h"
#include "manager.h"
#include "metrics.h"
#include "nm_status.h"
#include "nmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static manager m;
static int with_store; /* the store side's answers below, or holder.c's (none) */

/* The holder: "m1" for this manager's own, the name after '@' for a servant held by another
 * ("carol@m2"); a name that is no valid text for "bad@". */
const char *mgr_session_holder(const mgr_session *s) {
  if (!with_store) return "";
  const char *at = strchr(s->name, '@');
  if (!at) return "m1";
  return strcmp(at + 1, "bad") == 0 ? "m\xff" : at + 1;
}

void mgr_status_store(manager *mm, nm_status *st) {
  (void)mm;
  if (!with_store) return;
  st->store.present = 1;
  snprintf(st->store.url, sizeof st->store.url, "redis://10.0.0.5:6379");
  st->store.state = NM_STORE_UP;
  snprintf(st->store.primary, sizeof st->store.primary, "10.0.0.5:6379");
  static const char *names[] = {"m1", "m2"};
  for (int i = 0; i < 2; i++) {
    nm_status_manager *k = nm_status_add_manager(st);
    snprintf(k->name, sizeof k->name, "%s", names[i]);
    snprintf(k->addr, sizeof k->addr, "10.0.0.%d", i + 1);
    k->port = 85;
  }
  /* What a corrupt store could announce: a name that is no text, an address that is no IP. */
  nm_status_manager *k = nm_status_add_manager(st);
  snprintf(k->name, sizeof k->name, "m\xff");
  snprintf(k->addr, sizeof k->addr, "m3.example");
  k->port = 85;
}

static mgr_session *add(const char *name, int i) {
  mgr_session *s = calloc(1, sizeof *s);
  s->mgr = &m;
  snprintf(s->id, sizeof s->id, "%016x", 0xa0 + i);
  snprintf(s->name, sizeof s->name, "%s", name);
  snprintf(s->conn.peer_ip, sizeof s->conn.peer_ip, "10.0.1.%d", i + 1);
  s->port = 4001;
  s->role = NM_ROLE_SERVANT;
  s->reach = NM_REACH_DIRECT;
  mgr_index_set_state(&m.index, s, MGR_SESSION_REGISTERED);
  /* In the published list too: the status lists exactly its entries. */
  m.list.at = realloc(m.list.at, (m.list.count + 1) * sizeof *m.list.at);
  s->in_list = 1;
  s->list_at = m.list.count;
  m.list.at[m.list.count++] = s;
  s->next = m.sessions;
  if (m.sessions) m.sessions->prev = s;
  else m.sessions_tail = s;
  m.sessions = s;
  m.nsessions++;
  return s;
}

static void setup(void) {
  memset(&m, 0, sizeof m);
  m.loop = uv_default_loop();
  m.cfg.heartbeat_s = 1, m.cfg.timeout_s = 3, m.cfg.complaint_threshold = 2, m.cfg.complaint_window_s = 60;
  mgr_index_init(&m.index);
  uv_update_time(m.loop);
  add("alice", 0);
  add("bob", 1);
  add("carol@m2", 2);
  add("dave@bad", 3);
}

static void teardown(void) {
  for (mgr_session *s = m.sessions, *next; s; s = next) {
    next = s->next;
    mgr_index_forget(&m.index, s);
    free(s);
  }
  mgr_index_close(&m.index);
  free(m.list.at);
  m.list.at = NULL;
  m.list.count = 0;
}

static const nm_status_servant *named(const nm_status *st, const char *name) {
  for (size_t i = 0; i < st->count; i++)
    if (strcmp(st->servants[i].name, name) == 0) return &st->servants[i];
  return NULL;
}

static void test_status_without_store(void) {
  setup();
  with_store = 0;
  nm_status st;
  nm_status_init(&st);
  NMT_EQ_INT(mgr_status_collect(&m, &st), 0);
  NMT_EQ_INT(st.count, 4);
  NMT_EQ_INT(st.store.present, 0);
  NMT_CHECK(!nm_status_has_managers(&st));
  char *doc;
  size_t len;
  NMT_EQ_INT(nm_status_encode(&st, &doc, &len), 0);
  NMT_CHECK(strstr(doc, "<store") == NULL && strstr(doc, "manager=") == NULL);
  free(doc);
  nm_status_close(&st);
  teardown();
}

static void test_status_with_store(void) {
  setup();
  with_store = 1;
  nm_status st;
  nm_status_init(&st);
  NMT_EQ_INT(mgr_status_collect(&m, &st), 0);
  NMT_EQ_STR(named(&st, "alice")->manager, "m1");
  NMT_EQ_STR(named(&st, "carol@m2")->manager, "m2");
  /* A holder that is no valid text costs its cell, not the status. */
  NMT_EQ_STR(named(&st, "dave@bad")->manager, "?");
  NMT_EQ_INT(st.store.present, 1);
  NMT_EQ_INT(st.store.nmanagers, 3);
  /* The corrupt announcement costs its fields, not the status. */
  NMT_EQ_STR(st.store.managers[2].name, "?");
  NMT_EQ_STR(st.store.managers[2].addr, "");
  char *doc;
  size_t len;
  NMT_EQ_INT(nm_status_encode(&st, &doc, &len), 0);
  NMT_HAS(doc, "<store url=\"redis://10.0.0.5:6379\" state=\"up\" primary=\"10.0.0.5:6379\" managers=\"3\">");
  NMT_HAS(doc, "<manager name=\"?\" addr=\"\" port=\"85\"/>");
  NMT_HAS(doc, "name=\"carol@m2\" role=\"servant\" manager=\"m2\"");
  free(doc);
  nm_status_close(&st);
  teardown();
}

/* The value of one series line ("name{labels} value") in the exposition text, or -1. */
static long long series(const char *text, const char *line_start) {
  char want[200];
  snprintf(want, sizeof want, "\n%s ", line_start);
  const char *p = strstr(text, want);
  return p ? strtoll(p + strlen(want), NULL, 10) : -1;
}

static void test_metrics(void) {
  setup();
  char *text = NULL;
  size_t len = 0;
  /* Without a store: every listed servant is local, no natmesh_store_* series. */
  NMT_EQ_INT(mgr_metrics_text(&m, &text, &len), 0);
  NMT_EQ_INT(series(text, "natmesh_servants{held=\"local\"}"), 4);
  NMT_EQ_INT(series(text, "natmesh_servants{held=\"remote\"}"), 0);
  NMT_CHECK(strstr(text, "natmesh_store_") == NULL);
  free(text);
  /* With one, as the store side fills the stats. */
  mgr_stats *st = &m.stats;
  st->store_on = 1;
  st->store_up = 1;
  st->store_ops[MGR_STORE_OP_PUT] = 7;
  st->store_ops[MGR_STORE_OP_LEAVE] = 2;
  st->store_ops[MGR_STORE_OP_RENEW] = 30;
  st->store_ops[MGR_STORE_OP_REAP] = 31;
  st->store_ops[MGR_STORE_OP_COMPLAIN] = 1;
  st->store_ops[MGR_STORE_OP_MESH] = 5;
  st->mesh_leader = 1;
  st->store_errors = 3;
  st->store_failovers = 1;
  st->remote_servants = 2;
  NMT_EQ_INT(mgr_metrics_text(&m, &text, &len), 0);
  NMT_HAS(text, "# TYPE natmesh_store_up gauge\n");
  NMT_EQ_INT(series(text, "natmesh_store_up"), 1);
  NMT_HAS(text, "# TYPE natmesh_store_ops_total counter\n");
  NMT_EQ_INT(series(text, "natmesh_store_ops_total{op=\"put\"}"), 7);
  NMT_EQ_INT(series(text, "natmesh_store_ops_total{op=\"leave\"}"), 2);
  NMT_EQ_INT(series(text, "natmesh_store_ops_total{op=\"renew\"}"), 30);
  NMT_EQ_INT(series(text, "natmesh_store_ops_total{op=\"reap\"}"), 31);
  NMT_EQ_INT(series(text, "natmesh_store_ops_total{op=\"complain\"}"), 1);
  NMT_EQ_INT(series(text, "natmesh_store_ops_total{op=\"mesh\"}"), 5);
  NMT_EQ_INT(series(text, "natmesh_mesh_leader"), 1);
  NMT_EQ_INT(series(text, "natmesh_store_errors_total"), 3);
  NMT_EQ_INT(series(text, "natmesh_store_failovers_total"), 1);
  /* Remote entries are not sessions (shared.h): the four sessions are local. */
  NMT_EQ_INT(series(text, "natmesh_servants{held=\"local\"}"), 4);
  NMT_EQ_INT(series(text, "natmesh_servants{held=\"remote\"}"), 2);
  free(text);
  /* The store down: the remote entries are kept, and counted. */
  st->store_up = 0;
  st->remote_servants = 9;
  NMT_EQ_INT(mgr_metrics_text(&m, &text, &len), 0);
  NMT_EQ_INT(series(text, "natmesh_store_up"), 0);
  NMT_EQ_INT(series(text, "natmesh_servants{held=\"local\"}"), 4);
  NMT_EQ_INT(series(text, "natmesh_servants{held=\"remote\"}"), 9);
  free(text);
  teardown();
}

int main(void) {
  NMT_RUN(test_status_without_store);
  NMT_RUN(test_status_with_store);
  NMT_RUN(test_metrics);
  return nmt_done();
}
