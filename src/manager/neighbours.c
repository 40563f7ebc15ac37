/* The bounded-degree mesh, as the manager runs it: see neighbours.h. */
#include "neighbours.h"
#include "manager.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The graph is made on the first join: the seed from the clock and the process, so two
 * managers do not build the same graph over the same servants. */
static int mgr__mesh_ready(manager *m) {
  if (m->mesh_ready) return 1;
  uint64_t seed = uv_hrtime() ^ ((uint64_t)getpid() << 32);
  int rc = mgr_mesh_init(&m->mesh, m->cfg.mesh_degree, seed);
  if (rc < 0) {
    nm_log_error("mesh: cannot start it (degree %u): %s", m->cfg.mesh_degree, nm_strerror(rc));
    return 0;
  }
  m->mesh_ready = 1;
  return 1;
}

/* Dedicated relays are not mesh nodes: every servant dials them and sends them its own
 * lines, as in the full mesh (they are few, and their clients must get every line). */
static int mgr__in_mesh(const mgr_session *s) { return s->role == NM_ROLE_SERVANT; }

/* id's set (none: the full mesh) to id's session, if it is registered. */
static void mgr__send(manager *m, const char *id, int full) {
  mgr_session *s = mgr_find_registered(m, id);
  if (!s) return;
  nm_msg msg = {.type = NM_MSG_NEIGHBOURS};
  nm_msg_neighbours *n = &msg.u.neighbours;
  n->version = m->list.version;
  if (!full) n->count = mgr_mesh_neighbours(&m->mesh, id, n->ids, NM_NEIGHBOURS_MAX);
  if (n->count > NM_NEIGHBOURS_MAX) n->count = NM_NEIGHBOURS_MAX; /* degree <= 32: never */
  int rc = nm_msg_send(&s->conn, &msg);
  if (rc < 0) nm_log_warn("cannot send neighbours to %s: %s", s->name, nm_strerror(rc));
}

typedef struct {
  manager *m;
  size_t told;
} mgr__tell;

static void mgr__send_changed(void *ctx, const char *id) {
  mgr__tell *t = ctx;
  mgr__send(t->m, id, 0);
  t->told++;
}

/* Everyone's set: each servant in the graph (the full mesh: the empty set). */
static void mgr__send_all(manager *m, int full) {
  for (mgr_session *s = m->sessions; s; s = s->next)
    if (s->state == MGR_SESSION_REGISTERED && mgr__in_mesh(s) && mgr_mesh_has(&m->mesh, s->id))
      mgr__send(m, s->id, full);
}

/* id is owed its own set once (at the next flush). */
static void mgr__owe(manager *m, const char *id) {
  if (m->mesh_nowed == m->mesh_owed_cap) {
    size_t cap = m->mesh_owed_cap ? m->mesh_owed_cap * 2 : 64;
    void *p = realloc(m->mesh_owed, cap * sizeof *m->mesh_owed);
    if (!p) {
      nm_log_error("mesh: out of memory: %s is not told its neighbours", id);
      return;
    }
    m->mesh_owed = p;
    m->mesh_owed_cap = cap;
  }
  memcpy(m->mesh_owed[m->mesh_nowed++], id, NM_ID_LEN + 1);
}

/* After a join or a leave: a switch when the size crossed the threshold (everyone is told
 * at the flush). In mesh mode the servants whose set changed stay marked in the graph until
 * the flush. */
static void mgr__after_change(manager *m) {
  int want = mgr_mesh_count(&m->mesh) > m->cfg.mesh_above;
  if (want == m->mesh_on) return;
  m->mesh_on = want;
  m->mesh_switched = 1;
  nm_log_info("mesh: %zu servants, %s", mgr_mesh_count(&m->mesh),
              want ? "now a bounded mesh (degree at most mesh-degree)" : "now the full mesh again");
}

void mgr_neighbours_flush(manager *m) {
  if (!m->mesh_ready) return;
  /* Called outside a window too: the views first take in the graph's changes, so every
   * servant knows the entries of its new neighbours before it is told of them. */
  if (m->mesh_on && !m->mesh_switched && !m->views_in_flush) mgr_views_flush(m, NULL, 0, ++m->pub.flushes);
  size_t told = 0;
  if (m->mesh_switched) {
    m->mesh_switched = 0;
    mgr_mesh_clear_changed(&m->mesh);
    mgr__send_all(m, !m->mesh_on);
    m->mesh_nowed = 0; /* told already */
    return;
  }
  mgr__tell t = {m, 0};
  if (m->mesh_on) mgr_mesh_take_changed(&m->mesh, mgr__send_changed, &t);
  else mgr_mesh_clear_changed(&m->mesh);
  told = t.told;
  /* The owed ones (sent again if they were among the changed: harmless, and rare). */
  for (size_t i = 0; i < m->mesh_nowed; i++) mgr__send(m, m->mesh_owed[i], !m->mesh_on);
  m->mesh_nowed = 0;
  /* The repair is news once per leave, as the leave itself is ("left:"). */
  if (m->mesh_nleft && m->mesh_on) {
    if (m->mesh_nleft == 1)
      nm_log_info("mesh: %s left; %zu servants told their new neighbours", m->mesh_left, told);
    else
      nm_log_info("mesh: %u servants left (the last %s); %zu servants told their new neighbours", m->mesh_nleft,
                  m->mesh_left, told);
  }
  m->mesh_nleft = 0;
}

void mgr_neighbours_joined(manager *m, mgr_session *s) {
  if (!mgr__in_mesh(s) || !mgr__mesh_ready(m)) return;
  int rc = mgr_mesh_add(&m->mesh, s->id);
  if (rc == -EEXIST) {
    /* A new session took the registration over: its servant may have lost what it was
     * told (it is a new process, or reconnected): once more. */
    mgr__owe(m, s->id);
    return;
  }
  if (rc < 0) {
    nm_log_error("mesh: cannot add %s: %s", s->name, nm_strerror(rc));
    return;
  }
  mgr__after_change(m);
  /* In the full mesh, said once on registration too: a servant that was in a mesh under a
   * manager before this one (a restart with another threshold) must not stay in it. In a
   * bounded mesh the graph marked it changed. */
  if (!m->mesh_on) mgr__owe(m, s->id);
}

void mgr_neighbours_left(manager *m, mgr_session *s) {
  if (!m->mesh_ready || mgr_mesh_remove(&m->mesh, s->id) < 0) return;
  mgr__after_change(m);
  m->mesh_nleft++;
  snprintf(m->mesh_left, sizeof m->mesh_left, "%s", s->name);
}

int mgr_neighbours_meshed(const manager *m) { return m->mesh_on; }

/* A pair of neighbours makes one connection: the smaller id dials, and a servant that
 * pulls from a relay dials all its neighbours (docs/protocol.md, "Neighbours"). */
int mgr_neighbours_dialers(manager *m, const mgr_session *s, unsigned *dialers) {
  if (!m->mesh_on || !mgr_mesh_has(&m->mesh, s->id)) return 0;
  char ids[MGR_MESH_DEGREE_MAX][NM_ID_LEN + 1];
  size_t n = mgr_mesh_neighbours(&m->mesh, s->id, ids, MGR_MESH_DEGREE_MAX);
  *dialers = 0;
  for (size_t i = 0; i < n && i < MGR_MESH_DEGREE_MAX; i++) {
    const mgr_session *o = mgr_find_registered(m, ids[i]);
    if (strcmp(ids[i], s->id) < 0 || (o && o->relay_id[0])) (*dialers)++;
  }
  return 1;
}

void mgr_neighbours_close(manager *m) {
  if (m->mesh_ready) mgr_mesh_close(&m->mesh);
  m->mesh_ready = 0;
  free(m->mesh_owed);
  m->mesh_owed = NULL;
  m->mesh_nowed = m->mesh_owed_cap = 0;
}
