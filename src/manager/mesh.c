/* The bounded-degree mesh: see mesh.h. */
#include "mesh.h"
#include "nm_peerlist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* uthash must not exit the manager when memory runs out: an add that fails leaves the
 * table as it was and sets this flag. */
static int mgr__mesh_oom;
#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(obj) (mgr__mesh_oom = 1)
#include <uthash.h>

struct mgr_mesh_node {
  char id[NM_ID_LEN + 1];
  UT_hash_handle hh;
  size_t index;  /* in g->all */
  uint32_t mark; /* == g->mark: visited by the current search */
  unsigned label; /* mgr__pieces: which target's ball reached it first */
  int changed;
  mgr_mesh_node *changed_prev, *changed_next;
  int is_short;
  mgr_mesh_node *short_prev, *short_next;
  unsigned deg;
  mgr_mesh_node *nb[]; /* degree entries */
};

/* ---- randomness: xorshift64*, seeded by the caller ------------------------------------ */

static uint64_t mgr__rand(mgr_mesh *g) {
  uint64_t x = g->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  g->rng = x;
  return x * 0x2545F4914F6CDD1DULL;
}

static size_t mgr__below(mgr_mesh *g, size_t n) { return n ? (size_t)(mgr__rand(g) % n) : 0; }

/* ---- the bookkeeping lists: changed nodes, nodes short of D --------------------------- */

static void mgr__changed(mgr_mesh *g, mgr_mesh_node *n) {
  if (n->changed) return;
  n->changed = 1;
  n->changed_prev = NULL;
  n->changed_next = g->changed;
  if (g->changed) g->changed->changed_prev = n;
  g->changed = n;
}

static void mgr__changed_unlink(mgr_mesh *g, mgr_mesh_node *n) {
  if (!n->changed) return;
  if (n->changed_prev) n->changed_prev->changed_next = n->changed_next;
  else g->changed = n->changed_next;
  if (n->changed_next) n->changed_next->changed_prev = n->changed_prev;
  n->changed = 0;
}

static void mgr__short_unlink(mgr_mesh *g, mgr_mesh_node *n) {
  if (!n->is_short) return;
  if (n->short_prev) n->short_prev->short_next = n->short_next;
  else g->short_head = n->short_next;
  if (n->short_next) n->short_next->short_prev = n->short_prev;
  n->is_short = 0;
}

/* Keeps n in the short list exactly while it has fewer than D neighbours. */
static void mgr__short_update(mgr_mesh *g, mgr_mesh_node *n) {
  if (n->deg < g->degree && !n->is_short) {
    n->is_short = 1;
    n->short_prev = NULL;
    n->short_next = g->short_head;
    if (g->short_head) g->short_head->short_prev = n;
    g->short_head = n;
  } else if (n->deg >= g->degree) {
    mgr__short_unlink(g, n);
  }
}

/* ---- edges ---------------------------------------------------------------------------- */

static int mgr__adjacent(const mgr_mesh_node *a, const mgr_mesh_node *b) {
  for (unsigned i = 0; i < a->deg; i++)
    if (a->nb[i] == b) return 1;
  return 0;
}

static void mgr__half_link(mgr_mesh *g, mgr_mesh_node *a, mgr_mesh_node *b) {
  a->nb[a->deg++] = b;
  mgr__changed(g, a);
  mgr__short_update(g, a);
}

static void mgr__half_unlink(mgr_mesh *g, mgr_mesh_node *a, mgr_mesh_node *b) {
  for (unsigned i = 0; i < a->deg; i++)
    if (a->nb[i] == b) {
      a->nb[i] = a->nb[--a->deg];
      break;
    }
  mgr__changed(g, a);
  mgr__short_update(g, a);
}

/* Callers check both have room and are not linked yet. */
static void mgr__link(mgr_mesh *g, mgr_mesh_node *a, mgr_mesh_node *b) {
  mgr__half_link(g, a, b);
  mgr__half_link(g, b, a);
}

static void mgr__unlink(mgr_mesh *g, mgr_mesh_node *a, mgr_mesh_node *b) {
  mgr__half_unlink(g, a, b);
  mgr__half_unlink(g, b, a);
}

/* ---- the whole graph ------------------------------------------------------------------- */

int mgr_mesh_init(mgr_mesh *g, unsigned degree, uint64_t seed) {
  memset(g, 0, sizeof *g);
  if (degree < MGR_MESH_DEGREE_MIN || degree > MGR_MESH_DEGREE_MAX) return -EINVAL;
  g->degree = degree;
  g->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
  return 0;
}

void mgr_mesh_close(mgr_mesh *g) {
  HASH_CLEAR(hh, g->by_id);
  for (size_t i = 0; i < g->count; i++) free(g->all[i]);
  free(g->all);
  free(g->queue);
  memset(g, 0, sizeof *g);
}

static mgr_mesh_node *mgr__find(const mgr_mesh *g, const char *id) {
  mgr_mesh_node *n = NULL;
  size_t len = strnlen(id, NM_ID_LEN + 1);
  HASH_FIND(hh, g->by_id, id, len, n);
  return n;
}

int mgr_mesh_has(const mgr_mesh *g, const char *id) { return id && mgr__find(g, id) != NULL; }

size_t mgr_mesh_count(const mgr_mesh *g) { return g->count; }

static int mgr__grow(mgr_mesh *g) {
  if (g->count < g->cap) return 0;
  size_t cap = g->cap ? g->cap * 2 : 64;
  mgr_mesh_node **all = realloc(g->all, cap * sizeof *all);
  if (!all) return -ENOMEM;
  g->all = all;
  mgr_mesh_node **q = realloc(g->queue, cap * sizeof *q);
  if (!q) return -ENOMEM;
  g->queue = q;
  g->cap = cap;
  return 0;
}

/* Breadth-first from start; stops early once every one of the k targets is marked. Returns
 * how many nodes it visited. */
static size_t mgr__search(mgr_mesh *g, mgr_mesh_node *start, mgr_mesh_node **targets, size_t k) {
  size_t head = 0, tail = 0, found = 0;
  g->mark++;
  start->mark = g->mark;
  g->queue[tail++] = start;
  for (size_t i = 0; i < k; i++) found += targets[i]->mark == g->mark;
  while (head < tail && (k == 0 || found < k)) {
    mgr_mesh_node *n = g->queue[head++];
    for (unsigned i = 0; i < n->deg; i++) {
      mgr_mesh_node *v = n->nb[i];
      if (v->mark == g->mark) continue;
      v->mark = g->mark;
      g->queue[tail++] = v;
      for (size_t t = 0; t < k; t++) found += targets[t] == v;
    }
  }
  return tail;
}

static unsigned mgr__find_root(unsigned *parent, unsigned i) {
  while (parent[i] != i) i = parent[i] = parent[parent[i]];
  return i;
}

/* Whether a[0..k-1] are in one piece of the graph: balls grow around all of them at once,
 * one level at a time, and two balls that touch are one piece (union-find over the k).
 * It stops as soon as one piece holds them all, so in a well-knit graph it looks at far
 * fewer nodes than a search of the whole graph (about k x sqrt(N x D): the balls meet as
 * in the birthday paradox); only a graph really in pieces is searched to the end. Returns
 * the index of a target not in a[0]'s piece, or k when there is none. */
static size_t mgr__pieces(mgr_mesh *g, mgr_mesh_node **a, size_t k) {
  unsigned parent[MGR_MESH_DEGREE_MAX];
  size_t head = 0, tail = 0, pieces = k;
  g->mark++;
  for (size_t i = 0; i < k; i++) {
    parent[i] = (unsigned)i;
    a[i]->mark = g->mark;
    a[i]->label = (unsigned)i;
    g->queue[tail++] = a[i];
  }
  while (head < tail && pieces > 1) {
    mgr_mesh_node *n = g->queue[head++];
    for (unsigned i = 0; i < n->deg && pieces > 1; i++) {
      mgr_mesh_node *v = n->nb[i];
      if (v->mark != g->mark) {
        v->mark = g->mark;
        v->label = n->label;
        g->queue[tail++] = v;
        continue;
      }
      unsigned ru = mgr__find_root(parent, n->label), rv = mgr__find_root(parent, v->label);
      if (ru != rv) {
        parent[ru] = rv;
        pieces--;
      }
    }
  }
  if (pieces == 1) return k;
  unsigned r0 = mgr__find_root(parent, 0);
  for (size_t j = 1; j < k; j++)
    if (mgr__find_root(parent, (unsigned)j) != r0) return j;
  return k;
}

int mgr_mesh_connected(mgr_mesh *g) {
  if (g->count < 2) return 1;
  return mgr__search(g, g->all[0], NULL, 0) == g->count;
}

void mgr_mesh_degrees(const mgr_mesh *g, unsigned *min, unsigned *max) {
  *min = *max = 0;
  for (size_t i = 0; i < g->count; i++) {
    unsigned d = g->all[i]->deg;
    if (i == 0 || d < *min) *min = d;
    if (d > *max) *max = d;
  }
}

/* ---- join ------------------------------------------------------------------------------ */

/* One edge u-v becomes u-n-v: u and v keep their degree, n gains two, and whatever u and v
 * connected they still do (through n). */
static int mgr__split_one(mgr_mesh *g, mgr_mesh_node *n) {
  for (int tries = 0; tries < 32; tries++) {
    mgr_mesh_node *u = g->all[mgr__below(g, g->count)];
    if (u == n || u->deg == 0) continue;
    mgr_mesh_node *v = u->nb[mgr__below(g, u->deg)];
    if (v == n || mgr__adjacent(n, u) || mgr__adjacent(n, v)) continue;
    mgr__unlink(g, u, v);
    mgr__link(g, n, u);
    mgr__link(g, n, v);
    return 1;
  }
  return 0;
}

/* A node with no edges (mgr_mesh_add without the linking). */
static mgr_mesh_node *mgr__insert(mgr_mesh *g, const char *id) {
  if (mgr__grow(g) < 0) return NULL;
  mgr_mesh_node *n = calloc(1, sizeof *n + g->degree * sizeof n->nb[0]);
  if (!n) return NULL;
  memcpy(n->id, id, NM_ID_LEN + 1);
  mgr__mesh_oom = 0;
  HASH_ADD(hh, g->by_id, id, strlen(n->id), n);
  if (mgr__mesh_oom) {
    free(n);
    return NULL;
  }
  n->index = g->count;
  g->all[g->count++] = n;
  mgr__changed(g, n);
  mgr__short_update(g, n);
  return n;
}

int mgr_mesh_add(mgr_mesh *g, const char *id) {
  if (!id || strlen(id) != NM_ID_LEN) return -EINVAL;
  if (mgr__find(g, id)) return -EEXIST;
  mgr_mesh_node *n = mgr__insert(g, id);
  if (!n) return -ENOMEM;
  /* Nodes short of D first (the leftovers of leaves, and every node while the graph is
   * smaller than D + 1: it is then complete). */
  for (mgr_mesh_node *s = g->short_head, *next; s && n->deg < g->degree; s = next) {
    next = s->short_next;
    if (s != n && !mgr__adjacent(n, s)) mgr__link(g, n, s);
  }
  while (n->deg + 2 <= g->degree && mgr__split_one(g, n)) {
  }
  mgr__short_update(g, n);
  return 0;
}

/* ---- leave ----------------------------------------------------------------------------- */

/* x goes: its edges, its bookkeeping, its place in the table and the array. */
static void mgr__delete(mgr_mesh *g, mgr_mesh_node *x) {
  while (x->deg) mgr__unlink(g, x, x->nb[0]);
  mgr__changed_unlink(g, x);
  mgr__short_unlink(g, x);
  HASH_DELETE(hh, g->by_id, x);
  g->all[x->index] = g->all[--g->count];
  g->all[x->index]->index = x->index;
  free(x);
}

/* r's side and p's side are not connected: make them one, with no node above D. */
static void mgr__merge(mgr_mesh *g, mgr_mesh_node *r, mgr_mesh_node *p) {
  if (r->deg < g->degree && p->deg < g->degree) {
    mgr__link(g, r, p);
  } else if (r->deg && p->deg) {
    /* A double edge swap: r-s and p-q become r-p and s-q; nobody's degree changes, and
     * both sides stay connected through the new edges. */
    mgr_mesh_node *s = r->nb[mgr__below(g, r->deg)], *q = p->nb[mgr__below(g, p->deg)];
    mgr__unlink(g, r, s);
    mgr__unlink(g, p, q);
    mgr__link(g, r, p);
    mgr__link(g, s, q);
  } else {
    /* One of them is alone (degree 0) and the other full: split one of its edges. */
    mgr_mesh_node *alone = r->deg ? p : r, *full = r->deg ? r : p;
    mgr_mesh_node *q = full->nb[mgr__below(g, full->deg)];
    mgr__unlink(g, full, q);
    mgr__link(g, alone, full);
    mgr__link(g, alone, q);
  }
}

int mgr_mesh_remove(mgr_mesh *g, const char *id) {
  mgr_mesh_node *x = id ? mgr__find(g, id) : NULL;
  if (!x) return -ENOENT;
  mgr_mesh_node *a[MGR_MESH_DEGREE_MAX];
  size_t k = x->deg;
  memcpy(a, x->nb, k * sizeof a[0]);
  mgr__delete(g, x);

  /* Each former neighbour lost one edge: pair them up, in a random order. */
  for (size_t i = k; i > 1; i--) {
    size_t j = mgr__below(g, i);
    mgr_mesh_node *t = a[i - 1];
    a[i - 1] = a[j];
    a[j] = t;
  }
  for (size_t i = 0; i < k; i++) {
    if (a[i]->deg >= g->degree) continue;
    for (size_t j = i + 1; j < k; j++)
      if (a[j]->deg < g->degree && !mgr__adjacent(a[i], a[j])) {
        mgr__link(g, a[i], a[j]);
        break;
      }
  }
  /* x was the only path between some of them: join the pieces (each holds one of them). */
  for (size_t round = 0; k > 1 && round < k; round++) {
    size_t j = mgr__pieces(g, a, k);
    if (j == k) break;
    mgr__merge(g, a[0], a[j]);
  }
  return 0;
}

int mgr_mesh_link(mgr_mesh *g, const char *a, const char *b) {
  mgr_mesh_node *x = a ? mgr__find(g, a) : NULL, *y = b ? mgr__find(g, b) : NULL;
  if (!x || !y) return -ENOENT;
  if (x == y || mgr__adjacent(x, y)) return -EEXIST;
  if (x->deg >= g->degree || y->deg >= g->degree) return -ENOSPC;
  mgr__link(g, x, y);
  return 0;
}

int mgr_mesh_unlink(mgr_mesh *g, const char *a, const char *b) {
  mgr_mesh_node *x = a ? mgr__find(g, a) : NULL, *y = b ? mgr__find(g, b) : NULL;
  if (!x || !y) return -ENOENT;
  if (!mgr__adjacent(x, y)) return -ENOTCONN;
  mgr__unlink(g, x, y);
  return 0;
}

/* ---- following another's graph ----------------------------------------------------------- */

static int mgr__id_ok(const char *p, size_t len) {
  if (len < NM_ID_LEN) return 0;
  char id[NM_ID_LEN + 1];
  memcpy(id, p, NM_ID_LEN);
  id[NM_ID_LEN] = 0;
  return nm_id_valid(id);
}

int mgr_mesh_set_parse(const char *line, size_t len, mgr_mesh_set *s) {
  memset(s, 0, sizeof *s);
  if (len < NM_ID_LEN + 1 || line[NM_ID_LEN] != ' ' || !mgr__id_ok(line, len)) return -EINVAL;
  memcpy(s->id, line, NM_ID_LEN);
  size_t at = NM_ID_LEN + 1;
  if (len - at == 1 && line[at] == '-') {
    s->gone = 1;
    return 0;
  }
  while (at < len) {
    if (!mgr__id_ok(line + at, len - at) || s->n >= MGR_MESH_DEGREE_MAX) return -EINVAL;
    memcpy(s->nb[s->n++], line + at, NM_ID_LEN);
    at += NM_ID_LEN;
    if (at < len && line[at++] != ' ') return -EINVAL;
    if (at == len && line[at - 1] == ' ') return -EINVAL; /* a trailing blank after an id */
  }
  return 0;
}

static mgr_mesh_node *mgr__find_or_insert(mgr_mesh *g, const char *id) {
  if (strlen(id) != NM_ID_LEN) return NULL;
  mgr_mesh_node *n = mgr__find(g, id);
  return n ? n : mgr__insert(g, id);
}

int mgr_mesh_drop(mgr_mesh *g, const char *id) {
  mgr_mesh_node *x = id ? mgr__find(g, id) : NULL;
  if (!x) return -ENOENT;
  mgr__delete(g, x);
  return 0;
}

static int mgr__set_names(const mgr_mesh_set *s, const mgr_mesh_node *n) {
  for (unsigned i = 0; i < s->n && i < MGR_MESH_DEGREE_MAX; i++)
    if (strcmp(s->nb[i], n->id) == 0) return 1;
  return 0;
}

int mgr_mesh_apply(mgr_mesh *g, const mgr_mesh_set *sets, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (sets[i].gone) {
      mgr_mesh_node *x = mgr__find(g, sets[i].id);
      if (x) mgr__delete(g, x);
    }
  for (size_t i = 0; i < n; i++) {
    if (sets[i].gone) continue;
    mgr_mesh_node *x = mgr__find_or_insert(g, sets[i].id);
    if (!x) return -ENOMEM;
    for (unsigned k = x->deg; k > 0; k--)
      if (!mgr__set_names(&sets[i], x->nb[k - 1])) mgr__unlink(g, x, x->nb[k - 1]);
  }
  int refused = 0;
  for (size_t i = 0; i < n; i++) {
    if (sets[i].gone) continue;
    mgr_mesh_node *x = mgr__find(g, sets[i].id);
    for (unsigned k = 0; x && k < sets[i].n && k < MGR_MESH_DEGREE_MAX; k++) {
      mgr_mesh_node *y = mgr__find_or_insert(g, sets[i].nb[k]);
      if (!y) {
        if (strlen(sets[i].nb[k]) != NM_ID_LEN) continue;
        return -ENOMEM;
      }
      if (y == x || mgr__adjacent(x, y)) continue;
      if (x->deg >= g->degree || y->deg >= g->degree) {
        refused++;
        continue;
      }
      mgr__link(g, x, y);
    }
  }
  return refused;
}

size_t mgr_mesh_repair(mgr_mesh *g) {
  /* Short nodes first, as a join links them: among themselves, then split edges. Each is
   * looked at once (the list changes under us: it is copied into the search's queue). */
  size_t nshort = 0;
  for (mgr_mesh_node *s = g->short_head; s && nshort < g->cap; s = s->short_next) g->queue[nshort++] = s;
  for (size_t i = 0; i < nshort; i++) {
    mgr_mesh_node *s = g->queue[i];
    for (size_t j = i + 1; j < nshort && s->deg < g->degree; j++) {
      mgr_mesh_node *t = g->queue[j];
      if (t->deg < g->degree && !mgr__adjacent(s, t)) mgr__link(g, s, t);
    }
    while (s->deg + 2 <= g->degree && mgr__split_one(g, s)) {
    }
  }
  /* The pieces: search from the first node; a node the search did not reach is another
   * piece, joined to the first by mgr__merge. */
  size_t joined = 0;
  for (size_t round = 0; g->count > 1 && round < g->count; round++) {
    mgr__search(g, g->all[0], NULL, 0);
    mgr_mesh_node *out = NULL;
    for (size_t i = 0; i < g->count && !out; i++)
      if (g->all[i]->mark != g->mark) out = g->all[i];
    if (!out) break;
    mgr__merge(g, g->all[0], out);
    joined++;
  }
  return joined;
}

void mgr_mesh_each(const mgr_mesh *g, void (*fn)(void *ctx, const char *id), void *ctx) {
  for (size_t i = 0; i < g->count; i++) fn(ctx, g->all[i]->id);
}

/* ---- reading --------------------------------------------------------------------------- */

size_t mgr_mesh_neighbours(const mgr_mesh *g, const char *id, char (*out)[NM_ID_LEN + 1], size_t max) {
  mgr_mesh_node *n = id ? mgr__find(g, id) : NULL;
  if (!n) return 0;
  for (unsigned i = 0; i < n->deg && i < max; i++) memcpy(out[i], n->nb[i]->id, NM_ID_LEN + 1);
  return n->deg;
}

void mgr_mesh_take_changed(mgr_mesh *g, void (*fn)(void *ctx, const char *id), void *ctx) {
  while (g->changed) {
    mgr_mesh_node *n = g->changed;
    mgr__changed_unlink(g, n);
    fn(ctx, n->id);
  }
}

void mgr_mesh_each_changed(const mgr_mesh *g, void (*fn)(void *ctx, const char *id), void *ctx) {
  for (const mgr_mesh_node *n = g->changed; n; n = n->changed_next) fn(ctx, n->id);
}

void mgr_mesh_clear_changed(mgr_mesh *g) {
  while (g->changed) mgr__changed_unlink(g, g->changed);
}
