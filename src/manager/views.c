/* Views: see views.h. */
#include "views.h"
#include "manager.h"
#include "neighbours.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_msg.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

/* The sessions whose view holds id. */
struct mgr_watch {
  char id[NM_ID_LEN + 1];
  mgr_session **v;
  size_t n, cap;
  UT_hash_handle hh;
};

/* A servant not in the graph yet gets one too where another manager draws the graph (a
 * newcomer here waits for the leader's sets: its view starts without neighbours, and they
 * come as its view's delta), not the whole overlay. */
int mgr_views_applies(manager *m, const mgr_session *s) {
  return m->mesh_ready && m->mesh_on && s->views_ok && s->role == NM_ROLE_SERVANT &&
         (m->mesh_follows || mgr_mesh_has(&m->mesh, s->id));
}

uint64_t mgr_views_version(manager *m, const mgr_session *s) {
  return s->view.on ? s->view.version : mgr_published_version(m);
}

size_t mgr_views_size(const mgr_session *s) { return s->view.n; }

size_t mgr_views_watchers(manager *m, const char *id) {
  mgr_watch *w = NULL;
  HASH_FIND(hh, m->watch, id, NM_ID_LEN, w);
  return w ? w->n : 0;
}

/* ---- the watchers ------------------------------------------------------------------------ */

static void mgr__watch_add(manager *m, const char *id, mgr_session *s) {
  mgr_watch *w = NULL;
  HASH_FIND(hh, m->watch, id, NM_ID_LEN, w);
  if (!w) {
    w = calloc(1, sizeof *w);
    if (!w) return;
    memcpy(w->id, id, NM_ID_LEN + 1);
    HASH_ADD(hh, m->watch, id, NM_ID_LEN, w);
  }
  if (w->n == w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 8;
    mgr_session **v = realloc(w->v, cap * sizeof *v);
    if (!v) return;
    w->v = v;
    w->cap = cap;
  }
  w->v[w->n++] = s;
}

static void mgr__watch_del(manager *m, const char *id, mgr_session *s) {
  mgr_watch *w = NULL;
  HASH_FIND(hh, m->watch, id, NM_ID_LEN, w);
  if (!w) return;
  for (size_t i = 0; i < w->n; i++)
    if (w->v[i] == s) {
      w->v[i] = w->v[--w->n];
      break;
    }
  if (w->n == 0) {
    HASH_DEL(m->watch, w);
    free(w->v);
    free(w);
  }
}

static void mgr__view_clear(manager *m, mgr_session *s) {
  for (size_t i = 0; i < s->view.n; i++) mgr__watch_del(m, s->view.at[i].id, s);
  s->view.n = 0;
}

void mgr_views_forget(manager *m, mgr_session *s) {
  mgr__view_clear(m, s);
  free(s->view.at);
  s->view.at = NULL;
  s->view.cap = 0;
  s->view.on = 0;
}

void mgr_views_close(manager *m) {
  mgr_watch *w, *tmp;
  HASH_ITER(hh, m->watch, w, tmp) {
    HASH_DEL(m->watch, w);
    free(w->v);
    free(w);
  }
}

/* ---- what a view holds --------------------------------------------------------------------- */

typedef struct {
  mgr_session **v;
  size_t n, cap;
} mgr__set;

static void mgr__set_add(mgr__set *set, mgr_session *x) {
  if (!x || !x->in_list) return;
  for (size_t i = 0; i < set->n; i++)
    if (set->v[i] == x) return;
  if (set->n == set->cap) {
    size_t cap = set->cap ? set->cap * 2 : 32;
    mgr_session **v = realloc(set->v, cap * sizeof *v);
    if (!v) return;
    set->v = v;
    set->cap = cap;
  }
  set->v[set->n++] = x;
}

static size_t mgr__alloc(size_t n) { return n ? (n + 8 + 15) / 16 * 16 : 0; } /* glibc: 8 of header */

size_t mgr_views_memory(manager *m) {
  size_t bytes = 0;
  for (mgr_session *s = m->sessions; s; s = s->next) bytes += mgr__alloc(s->view.cap * sizeof *s->view.at);
  mgr_watch *w, *tmp;
  HASH_ITER(hh, m->watch, w, tmp) bytes += mgr__alloc(sizeof *w) + mgr__alloc(w->cap * sizeof *w->v);
  if (m->watch) bytes += mgr__alloc(m->watch->hh.tbl->num_buckets * sizeof(UT_hash_bucket)) + mgr__alloc(sizeof(UT_hash_table));
  return bytes;
}

static mgr_session *mgr__relay_of(manager *m, const mgr_session *s) {
  if (!s->relay_id[0] || s->standby) return NULL;
  return mgr_find_listed(m, s->relay_id);
}

static void mgr__add_neighbours(manager *m, const mgr_session *s, mgr__set *out) {
  char ids[MGR_MESH_DEGREE_MAX][NM_ID_LEN + 1];
  size_t n = mgr_mesh_neighbours(&m->mesh, s->id, ids, MGR_MESH_DEGREE_MAX);
  for (size_t i = 0; i < n && i < MGR_MESH_DEGREE_MAX; i++) mgr__set_add(out, mgr_find_listed(m, ids[i]));
}

/* s's view now: itself, its neighbours and their relays, its relay, its clients and their
 * neighbours (who send to a client they cannot dial through s), the dedicated relays. */
static void mgr__view_of(manager *m, mgr_session *s, mgr__set *out) {
  out->n = 0;
  mgr__set_add(out, s);
  char ids[MGR_MESH_DEGREE_MAX][NM_ID_LEN + 1];
  size_t n = mgr_mesh_neighbours(&m->mesh, s->id, ids, MGR_MESH_DEGREE_MAX);
  for (size_t i = 0; i < n && i < MGR_MESH_DEGREE_MAX; i++) {
    mgr_session *nb = mgr_find_listed(m, ids[i]);
    if (!nb) continue;
    mgr__set_add(out, nb);
    mgr__set_add(out, mgr__relay_of(m, nb));
  }
  mgr__set_add(out, mgr__relay_of(m, s));
  for (mgr_session *c = m->index.relayed; c; c = c->rel_next)
    if (mgr_session_listed(c) && c->relay_id[0] && !c->standby && strcmp(c->relay_id, s->id) == 0) {
      mgr__set_add(out, c);
      mgr__add_neighbours(m, c, out);
    }
  for (mgr_session *r = m->index.relays; r; r = r->rly_next) mgr__set_add(out, r);
}

static ssize_t mgr__view_find(const mgr_session *s, const char *id) {
  for (size_t i = 0; i < s->view.n; i++)
    if (strcmp(s->view.at[i].id, id) == 0) return (ssize_t)i;
  return -1;
}

static int mgr__view_push(manager *m, mgr_session *s, const mgr_session *x) {
  mgr_view *v = &s->view;
  if (v->n == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 12; /* the degree's 8, itself and a few relays */
    mgr_view_entry *at = realloc(v->at, cap * sizeof *at);
    if (!at) return -ENOMEM;
    v->at = at;
    v->cap = cap;
  }
  memcpy(v->at[v->n].id, x->id, NM_ID_LEN + 1);
  v->at[v->n].digest = x->pub_digest;
  v->n++;
  mgr__watch_add(m, x->id, s);
  return 0;
}

/* ---- a whole view -------------------------------------------------------------------------- */

int mgr_views_send_full(manager *m, mgr_session *s) {
  mgr__set set = {0};
  mgr__view_of(m, s, &set);
  mgr__view_clear(m, s);
  s->view.on = 1;
  s->view.version++;
  nm_peerlist tmp;
  nm_peerlist_init(&tmp);
  tmp.version = s->view.version;
  tmp.peers = calloc(set.n ? set.n : 1, sizeof *tmp.peers);
  int rc = tmp.peers ? 0 : -ENOMEM;
  for (size_t i = 0; i < set.n && rc == 0; i++) {
    rc = mgr__view_push(m, s, set.v[i]);
    mgr_session_to_peer(set.v[i], &tmp.peers[i]);
  }
  tmp.count = tmp.cap = set.n;
  free(set.v);
  /* One document while it fits a page, else pages of its own (a view is a few dozen
   * entries; a relay with hundreds of clients is the case for pages). */
  size_t pages = tmp.count <= NM_PEERS_PAGE ? 1 : (tmp.count - 1 + NM_PEERS_PAGE - 1) / NM_PEERS_PAGE + 1;
  size_t own = 0;
  for (size_t i = 0; i < tmp.count; i++)
    if (strcmp(tmp.peers[i].id, s->id) == 0) own = i;
  if (rc == 0 && pages > 1 && own != tmp.count - 1) { /* our own entry last: the last page */
    nm_peer t = tmp.peers[own];
    tmp.peers[own] = tmp.peers[tmp.count - 1];
    tmp.peers[tmp.count - 1] = t;
  }
  for (size_t k = 0; k < pages && rc == 0; k++) {
    nm_msg msg = {.type = NM_MSG_PEERS};
    msg.u.peers.list = &tmp;
    if (pages == 1) {
      memcpy(msg.u.peers.me, s->id, sizeof msg.u.peers.me);
      msg.u.peers.first = 0;
      msg.u.peers.n = tmp.count;
    } else if (k == pages - 1) {
      memcpy(msg.u.peers.me, s->id, sizeof msg.u.peers.me);
      msg.u.peers.page = (unsigned)k;
      msg.u.peers.pages = (unsigned)pages;
      msg.u.peers.first = tmp.count - 1;
      msg.u.peers.n = 1;
    } else {
      msg.u.peers.page = (unsigned)k;
      msg.u.peers.pages = (unsigned)pages;
      msg.u.peers.first = k * NM_PEERS_PAGE;
      size_t left = tmp.count - 1 - msg.u.peers.first;
      msg.u.peers.n = left < NM_PEERS_PAGE ? left : NM_PEERS_PAGE;
    }
    rc = nm_msg_send(&s->conn, &msg);
  }
  free(tmp.peers);
  m->views_full_sent++;
  return rc;
}

/* ---- a window's deltas --------------------------------------------------------------------- */

typedef struct {
  manager *m;
  uint64_t flush;
  mgr_session *todo;
} mgr__todo;

static void mgr__todo_add(mgr__todo *t, mgr_session *s) {
  if (!s || !s->view.on || s->view.mark == t->flush) return;
  s->view.mark = t->flush;
  s->view.todo_next = t->todo;
  t->todo = s;
}

static void mgr__todo_id(void *ctx, const char *id) {
  mgr__todo *t = ctx;
  mgr_session *s = mgr_find_registered(t->m, id);
  if (s) mgr__todo_add(t, s);
}

/* A node whose neighbours changed: it, and its relay (which holds its neighbours). */
static void mgr__todo_node(void *ctx, const char *id) {
  mgr__todo *t = ctx;
  mgr__todo_id(t, id);
  mgr_session *s = mgr_find_listed(t->m, id);
  if (s && s->relay_id[0]) mgr__todo_id(t, s->relay_id);
}

/* Everyone whose view a change of id may touch: id itself, its neighbours now, its relay
 * now, and whoever holds its entry. */
static void mgr__todo_change(mgr__todo *t, const char *id) {
  manager *m = t->m;
  mgr__todo_id(t, id);
  char ids[MGR_MESH_DEGREE_MAX][NM_ID_LEN + 1];
  size_t n = mgr_mesh_neighbours(&m->mesh, id, ids, MGR_MESH_DEGREE_MAX);
  for (size_t i = 0; i < n && i < MGR_MESH_DEGREE_MAX; i++) mgr__todo_node(t, ids[i]);
  mgr_session *s = mgr_find_listed(m, id);
  if (s && s->relay_id[0]) mgr__todo_id(t, s->relay_id);
  mgr_watch *w = NULL;
  HASH_FIND(hh, m->watch, id, NM_ID_LEN, w);
  for (size_t i = 0; w && i < w->n; i++) mgr__todo_add(t, w->v[i]);
}

/* s's view now against what it was sent: the changes that make one the other, appended to
 * *out. Updates what s was sent (and the watchers). */
static size_t mgr__view_diff(manager *m, mgr_session *s, nm_delta_change **out, size_t *cap) {
  mgr__set set = {0};
  mgr__view_of(m, s, &set);
  size_t n = 0;
#define MGR__ROOM()                                                                    \
  do {                                                                                 \
    if (n == *cap) {                                                                   \
      size_t nc = *cap ? *cap * 2 : 16;                                                \
      nm_delta_change *p = realloc(*out, nc * sizeof *p);                              \
      if (!p) goto done;                                                               \
      *out = p;                                                                        \
      *cap = nc;                                                                       \
    }                                                                                  \
  } while (0)
  /* Out of the view: a leave marked view="out". */
  for (size_t i = 0; i < s->view.n;) {
    int keep = 0;
    for (size_t j = 0; j < set.n && !keep; j++) keep = strcmp(set.v[j]->id, s->view.at[i].id) == 0;
    if (keep) {
      i++;
      continue;
    }
    MGR__ROOM();
    nm_delta_change *c = &(*out)[n++];
    memset(c, 0, sizeof *c);
    c->leave = 1;
    const mgr_session *x = mgr_find_listed(m, s->view.at[i].id);
    c->out_of_view = x && x->in_list; /* still listed: it left the view, not the overlay */
    memcpy(c->peer.id, s->view.at[i].id, NM_ID_LEN + 1);
    mgr__watch_del(m, s->view.at[i].id, s);
    s->view.at[i] = s->view.at[--s->view.n];
  }
  /* New in the view, or changed since it was sent: an upsert. */
  for (size_t j = 0; j < set.n; j++) {
    mgr_session *x = set.v[j];
    ssize_t i = mgr__view_find(s, x->id);
    if (i >= 0 && s->view.at[i].digest == x->pub_digest) continue;
    MGR__ROOM();
    nm_delta_change *c = &(*out)[n++];
    memset(c, 0, sizeof *c);
    mgr_session_to_peer(x, &c->peer);
    if (i >= 0) s->view.at[i].digest = x->pub_digest;
    else if (mgr__view_push(m, s, x) < 0) n--;
  }
#undef MGR__ROOM
done:
  free(set.v);
  return n;
}

void mgr_views_flush(manager *m, const nm_delta_change *pending, size_t npending, uint64_t flush) {
  if (!m->mesh_ready) return;
  mgr__todo t = {m, flush, NULL};
  int everyone = 0;
  for (size_t i = 0; i < npending && !everyone; i++) {
    mgr_session *x = mgr_find_listed(m, pending[i].peer.id);
    /* A dedicated relay is in every view (rare: a relay joins, leaves, or moves). */
    if (pending[i].peer.role == NM_ROLE_RELAY || (x && x->role == NM_ROLE_RELAY)) everyone = 1;
    else mgr__todo_change(&t, pending[i].peer.id);
  }
  if (everyone)
    for (mgr_session *s = m->sessions; s; s = s->next) mgr__todo_add(&t, s);
  mgr_mesh_each_changed(&m->mesh, mgr__todo_node, &t);
  nm_delta_change *changes = NULL;
  size_t cap = 0;
  for (mgr_session *s = t.todo; s; s = s->view.todo_next) {
    if (s->state != MGR_SESSION_REGISTERED || s->conn.closing || s->list_flush == flush) continue;
    size_t n = mgr__view_diff(m, s, &changes, &cap);
    for (size_t off = 0; off < n;) {
      size_t k = n - off < NM_DELTA_CHANGES_MAX ? n - off : NM_DELTA_CHANGES_MAX;
      nm_msg msg = {.type = NM_MSG_DELTA};
      msg.u.delta.base = s->view.version;
      msg.u.delta.version = s->view.version + k;
      msg.u.delta.count = k;
      msg.u.delta.changes = changes + off;
      int rc = nm_msg_send(&s->conn, &msg);
      if (rc < 0) nm_log_warn("cannot send its view's delta to %s: %s", s->name, nm_strerror(rc));
      s->view.version += k;
      m->views_deltas_sent++;
      off += k;
    }
  }
  free(changes);
}
