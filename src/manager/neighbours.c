/* The bounded-degree mesh, as the manager runs it: see neighbours.h. */
#include "neighbours.h"
#include "manager.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_msg.h"
#include "shared.h"
#include "store.h"

#include <errno.h>
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

/* Appends id to a growing array of ids (*v, *n of *cap). 0, or -ENOMEM (nothing changed). */
static int mgr__ids_push(char (**v)[NM_ID_LEN + 1], size_t *n, size_t *cap, const char *id) {
  if (*n == *cap) {
    size_t ncap = *cap ? *cap * 2 : 64;
    void *p = realloc(*v, ncap * sizeof **v);
    if (!p) return -ENOMEM;
    *v = p;
    *cap = ncap;
  }
  memcpy((*v)[(*n)++], id, NM_ID_LEN + 1);
  return 0;
}

/* id is owed its own set once (at the next flush). */
static void mgr__owe(manager *m, const char *id) {
  if (mgr__ids_push(&m->mesh_owed, &m->mesh_nowed, &m->mesh_owed_cap, id) < 0)
    nm_log_error("mesh: out of memory: %s is not told its neighbours", id);
}

/* The overlay's size the threshold is judged by: the graph's nodes; with a store the listed
 * servants (role servant, as the graph's nodes), every manager's (a follower's copy of the graph lags the list by the
 * leader's round trip through the store, and a follower that judged by it would send its
 * newcomers the whole overlay's list while the graph catches up: under load that work
 * slows its reader, which makes the graph lag more). */
static size_t mgr__overlay_size(const manager *m) {
  size_t n = mgr_mesh_count(&m->mesh), listed = m->index.registered_servants + m->index.remote_servants;
  return m->mesh_follows && listed > n ? listed : n;
}

/* After a join or a leave: a switch when the size crossed the threshold (everyone is told
 * at the flush). In mesh mode the servants whose set changed stay marked in the graph until
 * the flush. */
static void mgr__after_change(manager *m) {
  int want = mgr__overlay_size(m) > m->cfg.mesh_above;
  if (want == m->mesh_on) return;
  m->mesh_on = want;
  m->mesh_switched = 1;
  nm_log_info("mesh: %zu servants, %s", mgr__overlay_size(m),
              want ? "now a bounded mesh (degree at most mesh-degree)" : "now the full mesh again");
}

/* ---- several managers: one draws the graph, the others follow it ---------------------------
 * With a store every manager keeps the same graph over the whole overlay (its own servants
 * and the remote entries): the mesh's leader (shared.c holds the store's lease) changes it
 * with mesh.c's random joins and repairs and writes the sets it changed to the store; the
 * others apply them (mgr_mesh_apply) and tell their own servants, as one manager would. A
 * follower never draws: a newcomer of its own waits for the leader's sets, and a servant
 * that leaves is dropped with no repair (the leader's repaired sets follow). */

/* Whether this manager changes the graph itself: alone, or the leader of a shared one. */
static int mgr__draws(const manager *m) { return !m->mesh_follows || m->mesh_leading; }

static void mgr__gone(manager *m, const char *id) {
  if (mgr__ids_push(&m->mesh_gone, &m->mesh_ngone, &m->mesh_gone_cap, id) < 0)
    nm_log_error("mesh: out of memory: %s's departure is not written to the store", id);
}

/* The sets to write, in chunks the store takes in one script each. */
typedef struct {
  manager *m;
  char buf[MGR_STORE_MESH_CHUNK_MAX];
  size_t len;
  int reset; /* the first chunk of a whole graph: the stored one goes */
  size_t chunks, failed;
} mgr__writer;

static void mgr__write_chunk(mgr__writer *w) {
  if (!w->len) return;
  if (mgr_shared_mesh_write(w->m, w->buf, w->len, w->reset) < 0) w->failed++;
  w->reset = 0;
  w->len = 0;
  w->chunks++;
}

static void mgr__write_line(mgr__writer *w, const char *line, size_t len) {
  if (w->len + len > sizeof w->buf) mgr__write_chunk(w);
  memcpy(w->buf + w->len, line, len);
  w->len += len;
}

static void mgr__write_set(void *ctx, const char *id) {
  mgr__writer *w = ctx;
  char ids[MGR_MESH_DEGREE_MAX][NM_ID_LEN + 1];
  size_t n = mgr_mesh_neighbours(&w->m->mesh, id, ids, MGR_MESH_DEGREE_MAX);
  char line[(NM_ID_LEN + 1) * (MGR_MESH_DEGREE_MAX + 1) + 2];
  size_t len = (size_t)snprintf(line, sizeof line, "%s", id);
  for (size_t i = 0; i < n && i < MGR_MESH_DEGREE_MAX; i++) len += (size_t)snprintf(line + len, sizeof line - len, " %s", ids[i]);
  if (n == 0) line[len++] = ' '; /* "ID \n": no neighbours */
  line[len++] = '\n';
  mgr__write_line(w, line, len);
}

/* The leader writes what changed since it last did (before the flush takes the changed
 * nodes), or its whole graph once after taking the lead. */
static void mgr__publish(manager *m) {
  if (!m->mesh_follows || !m->mesh_leading || !m->mesh_ready) return;
  mgr__writer *w = malloc(sizeof *w);
  if (!w) {
    nm_log_error("mesh: out of memory: the graph's changes are not written to the store");
    return;
  }
  w->m = m;
  w->len = w->chunks = w->failed = 0;
  w->reset = m->mesh_publish_all;
  for (size_t i = 0; i < m->mesh_ngone; i++) {
    char line[NM_ID_LEN + 4];
    int len = snprintf(line, sizeof line, "%s -\n", m->mesh_gone[i]);
    mgr__write_line(w, line, (size_t)len);
  }
  m->mesh_ngone = 0;
  if (m->mesh_publish_all) mgr_mesh_each(&m->mesh, mgr__write_set, w);
  else mgr_mesh_each_changed(&m->mesh, mgr__write_set, w);
  mgr__write_chunk(w);
  if (m->mesh_publish_all)
    nm_log_info("mesh: the whole graph (%zu servants) written to the store in %zu chunks", mgr_mesh_count(&m->mesh),
                w->chunks);
  if (w->failed)
    nm_log_ratelimited(&m->log_mesh, NM_LOG_WARN, "mesh: %zu of %zu chunks of neighbour sets not written (the store refused)",
                       w->failed, w->chunks);
  m->mesh_publish_all = 0;
  free(w);
}

/* Whether id is a node the leader may name: a listed servant (the leader's sets follow the
 * entries they name in the change log; one that left is gone here already). Bounds the
 * graph by the list, whatever the store holds. */
static int mgr__listed_node(manager *m, const char *id) {
  mgr_session *s = mgr_find_listed(m, id);
  return s && mgr__in_mesh(s);
}

/* The parts of set s that name listed servants: none of it when s's own node is not one
 * (0), else s with unlisted neighbours left out (1). A gone node always applies. */
static int mgr__keep_listed(manager *m, mgr_mesh_set *s) {
  if (s->gone) return 1;
  if (!mgr__listed_node(m, s->id)) return 0;
  unsigned kept = 0;
  for (unsigned i = 0; i < s->n; i++)
    if (mgr__listed_node(m, s->nb[i])) memmove(s->nb[kept++], s->nb[i], NM_ID_LEN + 1);
  s->n = kept;
  return 1;
}

/* Applies lines of sets (mgr_mesh_set_parse's) to the graph, those of listed servants only.
 * Edges refused for the degree are expected where the leader's sets of one flush span two
 * chunks (the later chunk makes them from the other end). How many sets, or -ENOMEM. */
static int mgr__follow_lines(manager *m, const char *data, size_t len) {
  enum { BATCH = 64 };
  mgr_mesh_set *sets = malloc(BATCH * sizeof *sets);
  if (!sets) return -ENOMEM;
  size_t n = 0, bad = 0, applied = 0;
  int refused = 0, rc = 0;
  for (size_t at = 0; at < len && rc >= 0;) {
    const char *nl = memchr(data + at, '\n', len - at);
    size_t l = nl ? (size_t)(nl - (data + at)) : len - at;
    if (mgr_mesh_set_parse(data + at, l, &sets[n]) < 0) bad++;
    else if (mgr__keep_listed(m, &sets[n])) n++;
    at += l + 1;
    if (n == BATCH || (at >= len && n)) {
      rc = mgr_mesh_apply(&m->mesh, sets, n);
      if (rc > 0) refused += rc;
      applied += n;
      n = 0;
    }
  }
  free(sets);
  if (rc < 0) nm_log_error("mesh: out of memory following the leader's graph");
  if (bad) nm_log_ratelimited(&m->log_mesh, NM_LOG_WARN, "mesh: %zu of the leader's sets unreadable, skipped", bad);
  if (refused) nm_log_debug("mesh: %d edges of the leader's sets wait for their other end's set", refused);
  return rc < 0 ? rc : (int)applied;
}

/* After the graph changed under us: the switch, and the servants told at once unless a
 * window is open (its flush tells them, after its entries). */
static void mgr__followed(manager *m) {
  mgr__after_change(m);
  if (m->pub.npending == 0 && !m->pub.waiters) mgr_neighbours_flush(m);
}

int mgr_neighbours_follow(manager *m, const char *data, size_t len) {
  if (!m->mesh_follows || m->mesh_leading || !mgr__mesh_ready(m)) return 0;
  int rc = mgr__follow_lines(m, data, len);
  mgr__followed(m);
  return rc;
}

typedef struct {
  manager *m;
  char (*ids)[NM_ID_LEN + 1];
  size_t n;
} mgr__stale;

static void mgr__collect_stale(void *ctx, const char *id) {
  mgr__stale *c = ctx;
  mgr_session *s = mgr_find_listed(c->m, id);
  if (!s || !mgr__in_mesh(s)) memcpy(c->ids[c->n++], id, NM_ID_LEN + 1);
}

/* The graph against the list: every listed servant a node, no node that is not listed. */
static void mgr__match_list(manager *m) {
  for (size_t i = 0; i < m->list.count; i++) {
    mgr_session *s = m->list.at[i];
    if (mgr__in_mesh(s) && !mgr_mesh_has(&m->mesh, s->id) && mgr_mesh_add(&m->mesh, s->id) < 0)
      nm_log_error("mesh: cannot add %s", s->name);
  }
  /* Collected first: the graph must not change while it is walked. */
  mgr__stale c = {m, NULL, 0};
  size_t cap = mgr_mesh_count(&m->mesh);
  if (cap && !(c.ids = malloc(cap * sizeof *c.ids))) return;
  mgr_mesh_each(&m->mesh, mgr__collect_stale, &c);
  for (size_t i = 0; i < c.n; i++) {
    mgr_mesh_remove(&m->mesh, c.ids[i]);
    mgr__gone(m, c.ids[i]);
  }
  free(c.ids);
}

void mgr_neighbours_lead(manager *m, int leading) {
  if (!m->mesh_follows || leading == m->mesh_leading) return;
  m->mesh_leading = leading;
  if (!leading) {
    m->mesh_ngone = 0;
    nm_log_info("mesh: this manager no longer draws the overlay's mesh");
    return;
  }
  if (!mgr__mesh_ready(m)) return;
  mgr__match_list(m);
  size_t joined = mgr_mesh_repair(&m->mesh);
  mgr__after_change(m);
  m->mesh_publish_all = 1;
  nm_log_info("mesh: leading the overlay's mesh (%zu servants%s)", mgr_mesh_count(&m->mesh),
              joined ? ", pieces joined" : "");
  if (m->pub.npending == 0 && !m->pub.waiters) mgr_neighbours_flush(m);
}

void mgr_neighbours_flush(manager *m) {
  if (!m->mesh_ready) return;
  mgr__publish(m); /* the leader's changes to the store, before the flush takes them */
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
  if (!mgr__draws(m)) {
    /* A follower: the leader adds it. One that is a node already (it moved here from
     * another manager) is told its set once more. */
    if (!s->remote && mgr_mesh_has(&m->mesh, s->id)) mgr__owe(m, s->id);
    mgr__after_change(m); /* the list grew */
    return;
  }
  int rc = mgr_mesh_add(&m->mesh, s->id);
  if (rc == -EEXIST) {
    /* A new session took the registration over: its servant may have lost what it was
     * told (it is a new process, or reconnected): once more. */
    if (!s->remote) mgr__owe(m, s->id);
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
  if (!m->mesh_on && !s->remote) mgr__owe(m, s->id);
}

void mgr_neighbours_left(manager *m, mgr_session *s) {
  if (!m->mesh_ready) return;
  if (!mgr__draws(m)) {
    mgr_mesh_drop(&m->mesh, s->id);
    mgr__after_change(m);
    return;
  }
  if (mgr_mesh_remove(&m->mesh, s->id) < 0) return;
  mgr__gone(m, s->id);
  mgr__after_change(m);
  m->mesh_nleft++;
  snprintf(m->mesh_left, sizeof m->mesh_left, "%s", s->name);
}

int mgr_neighbours_meshed(const manager *m) { return m->mesh_on; }

size_t mgr_neighbours_overlay_size(const manager *m) { return mgr__overlay_size(m); }

/* A pair of neighbours makes one connection: the smaller id dials, and a servant that
 * pulls from a relay dials all its neighbours (docs/protocol.md, "Neighbours"). */
int mgr_neighbours_dialers(manager *m, const mgr_session *s, unsigned *dialers) {
  if (!m->mesh_on || !mgr_mesh_has(&m->mesh, s->id)) return 0;
  char ids[MGR_MESH_DEGREE_MAX][NM_ID_LEN + 1];
  size_t n = mgr_mesh_neighbours(&m->mesh, s->id, ids, MGR_MESH_DEGREE_MAX);
  *dialers = 0;
  for (size_t i = 0; i < n && i < MGR_MESH_DEGREE_MAX; i++) {
    const mgr_session *o = mgr_find_listed(m, ids[i]); /* remote ones too */
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
  free(m->mesh_gone);
  m->mesh_gone = NULL;
  m->mesh_ngone = m->mesh_gone_cap = 0;
}
