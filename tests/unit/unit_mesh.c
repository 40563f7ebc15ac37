/* mesh: the bounded-degree graph the manager keeps over its servants (src/manager/mesh.h). */
#include "mesh.h"
#include "nmt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void id_of(unsigned i, char out[NM_ID_LEN + 1]) { snprintf(out, NM_ID_LEN + 1, "%016x", i); }

typedef struct {
  size_t n;
  char ids[256][NM_ID_LEN + 1];
} changed_set;

static void collect(void *ctx, const char *id) {
  changed_set *c = ctx;
  if (c->n < 256) memcpy(c->ids[c->n], id, NM_ID_LEN + 1);
  c->n++;
}

/* Every edge is seen from both ends, nobody is its own neighbour or twice someone's. */
static int symmetric(const mgr_mesh *g, unsigned *ids, size_t count) {
  char a[NM_ID_LEN + 1], nb[MGR_MESH_DEGREE_MAX][NM_ID_LEN + 1], back[MGR_MESH_DEGREE_MAX][NM_ID_LEN + 1];
  for (size_t i = 0; i < count; i++) {
    id_of(ids[i], a);
    size_t k = mgr_mesh_neighbours(g, a, nb, MGR_MESH_DEGREE_MAX);
    for (size_t j = 0; j < k; j++) {
      if (strcmp(nb[j], a) == 0) return 0;
      for (size_t l = j + 1; l < k; l++)
        if (strcmp(nb[j], nb[l]) == 0) return 0;
      size_t kb = mgr_mesh_neighbours(g, nb[j], back, MGR_MESH_DEGREE_MAX);
      int found = 0;
      for (size_t l = 0; l < kb; l++) found |= strcmp(back[l], a) == 0;
      if (!found) return 0;
    }
  }
  return 1;
}

static void test_small_is_complete(void) {
  mgr_mesh g;
  char id[NM_ID_LEN + 1], nb[MGR_MESH_DEGREE_MAX][NM_ID_LEN + 1];
  NMT_EQ_INT(mgr_mesh_init(&g, 3, 1), 0);
  for (unsigned i = 0; i < 4; i++) {
    id_of(i, id);
    NMT_EQ_INT(mgr_mesh_add(&g, id), 0);
  }
  /* four nodes, degree 3: everyone knows everyone */
  for (unsigned i = 0; i < 4; i++) {
    id_of(i, id);
    NMT_EQ_INT(mgr_mesh_neighbours(&g, id, nb, MGR_MESH_DEGREE_MAX), 3);
  }
  NMT_EQ_INT(mgr_mesh_add(&g, id), -EEXIST);
  NMT_EQ_INT(mgr_mesh_add(&g, "short"), -EINVAL);
  NMT_EQ_INT(mgr_mesh_remove(&g, "ffffffffffffffff"), -ENOENT);
  NMT_EQ_INT(mgr_mesh_init(&(mgr_mesh){0}, 1, 1), -EINVAL);
  NMT_EQ_INT(mgr_mesh_init(&(mgr_mesh){0}, MGR_MESH_DEGREE_MAX + 1, 1), -EINVAL);
  mgr_mesh_close(&g);
}

static void test_join_changes_few(void) {
  mgr_mesh g;
  char id[NM_ID_LEN + 1];
  changed_set c = {0};
  mgr_mesh_init(&g, 8, 7);
  for (unsigned i = 0; i < 1000; i++) {
    id_of(i, id);
    mgr_mesh_add(&g, id);
  }
  mgr_mesh_take_changed(&g, collect, &c);
  NMT_EQ_INT(c.n, 1000);
  c.n = 0;
  mgr_mesh_take_changed(&g, collect, &c);
  NMT_EQ_INT(c.n, 0); /* taken once */
  unsigned lo, hi;
  mgr_mesh_degrees(&g, &lo, &hi);
  NMT_EQ_INT(hi, 8);
  NMT_CHECK(lo >= 7);
  NMT_CHECK(mgr_mesh_connected(&g));
  /* a join: the newcomer and the ends of the edges it split (at most D + 1) */
  id_of(5000, id);
  mgr_mesh_add(&g, id);
  mgr_mesh_take_changed(&g, collect, &c);
  NMT_CHECK(c.n >= 2 && c.n <= 9);
  mgr_mesh_close(&g);
}

/* A removed node is never named as changed, not even if it had changed before. */
static void test_removed_not_named(void) {
  mgr_mesh g;
  char id[NM_ID_LEN + 1];
  changed_set c = {0};
  mgr_mesh_init(&g, 3, 3);
  for (unsigned i = 0; i < 10; i++) {
    id_of(i, id);
    mgr_mesh_add(&g, id);
  }
  id_of(4, id);
  mgr_mesh_remove(&g, id);
  mgr_mesh_take_changed(&g, collect, &c);
  NMT_EQ_INT(c.n, 9);
  for (size_t i = 0; i < c.n && i < 256; i++) NMT_CHECK(strcmp(c.ids[i], id) != 0);
  mgr_mesh_close(&g);
}

static void link_ids(mgr_mesh *g, unsigned a, unsigned b) {
  char x[NM_ID_LEN + 1], y[NM_ID_LEN + 1];
  id_of(a, x);
  id_of(b, y);
  NMT_EQ_INT(mgr_mesh_link(g, x, y), 0);
}

/* A node whose leave cuts the graph in three: x (0) links three triangles, and pairing its
 * former neighbours joins only two of them; the third is merged by an edge swap. (Fails
 * without the merge.) */
static void test_cut_vertex(void) {
  for (uint64_t seed = 1; seed <= 20; seed++) {
    mgr_mesh g;
    char id[NM_ID_LEN + 1], nb[MGR_MESH_DEGREE_MAX][NM_ID_LEN + 1], other[NM_ID_LEN + 1];
    mgr_mesh_init(&g, 3, seed);
    for (unsigned i = 0; i < 10; i++) {
      id_of(i, id);
      mgr_mesh_add(&g, id);
    }
    for (unsigned i = 0; i < 10; i++) {
      id_of(i, id);
      size_t k = mgr_mesh_neighbours(&g, id, nb, MGR_MESH_DEGREE_MAX);
      for (size_t j = 0; j < k; j++) mgr_mesh_unlink(&g, id, nb[j]);
    }
    for (unsigned t = 0; t < 3; t++) {
      unsigned a = 1 + 3 * t;
      link_ids(&g, a, a + 1);
      link_ids(&g, a + 1, a + 2);
      link_ids(&g, a, a + 2);
      link_ids(&g, 0, a);
    }
    NMT_CHECK(mgr_mesh_connected(&g));
    mgr_mesh_clear_changed(&g);
    id_of(0, id);
    mgr_mesh_remove(&g, id);
    NMT_CHECK(mgr_mesh_connected(&g));
    unsigned lo, hi;
    mgr_mesh_degrees(&g, &lo, &hi);
    NMT_CHECK(hi <= 3 && lo >= 2);
    changed_set c = {0};
    mgr_mesh_take_changed(&g, collect, &c);
    NMT_CHECK(c.n >= 3 && c.n <= 5); /* the three, and the two ends of the swapped edges */
    id_of(1, other);
    NMT_EQ_INT(mgr_mesh_link(&g, other, other), -EEXIST);
    mgr_mesh_close(&g);
  }
}

/* Thousands of random joins and leaves: always connected, nobody above D, nobody far below
 * it once the graph is large, and a leave changes O(D) nodes. */
static void churn(unsigned degree, uint64_t seed, unsigned steps, unsigned max_nodes) {
  mgr_mesh g;
  unsigned *in = calloc(max_nodes, sizeof *in);
  size_t count = 0;
  unsigned next = 0, worst_leave = 0, disconnected = 0, over = 0, asym = 0;
  uint64_t r = seed;
  char id[NM_ID_LEN + 1];
  mgr_mesh_init(&g, degree, seed);
  for (unsigned step = 0; step < steps; step++) {
    r = r * 6364136223846793005ULL + 1442695040888963407ULL;
    unsigned dice = (unsigned)(r >> 33);
    int join = count < 2 || (count < max_nodes && dice % 100 < 55);
    changed_set c = {0};
    if (join) {
      id_of(next, id);
      NMT_EQ_INT(mgr_mesh_add(&g, id), 0);
      in[count++] = next++;
    } else {
      size_t k = (dice >> 8) % count;
      id_of(in[k], id);
      mgr_mesh_take_changed(&g, collect, &c);
      c.n = 0;
      NMT_EQ_INT(mgr_mesh_remove(&g, id), 0);
      in[k] = in[--count];
      mgr_mesh_take_changed(&g, collect, &c);
      if (c.n > worst_leave) worst_leave = (unsigned)c.n;
    }
    mgr_mesh_clear_changed(&g);
    NMT_EQ_INT(mgr_mesh_count(&g), count);
    if (!mgr_mesh_connected(&g)) disconnected++;
    unsigned lo, hi;
    mgr_mesh_degrees(&g, &lo, &hi);
    if (hi > degree) over++;
    if (step % 97 == 0 && !symmetric(&g, in, count)) asym++;
  }
  NMT_EQ_INT(disconnected, 0);
  NMT_EQ_INT(over, 0);
  NMT_EQ_INT(asym, 0);
  /* the former neighbours (D) and two per merge (at most D - 1 merges) */
  NMT_CHECK(worst_leave <= 3 * degree);
  unsigned lo, hi;
  mgr_mesh_degrees(&g, &lo, &hi);
  size_t shortn = 0;
  char nb[MGR_MESH_DEGREE_MAX][NM_ID_LEN + 1];
  for (size_t i = 0; i < count; i++) {
    id_of(in[i], id);
    shortn += mgr_mesh_neighbours(&g, id, nb, MGR_MESH_DEGREE_MAX) < degree;
  }
  printf("  D=%u: %zu nodes, degrees %u..%u, %zu short of D, worst leave changed %u nodes\n", degree, count, lo,
         hi, shortn, worst_leave);
  if (count > 4 * degree) {
    NMT_CHECK(lo >= degree / 2);
    NMT_CHECK(shortn * 10 <= count); /* regular-ish: at most a tenth short of D */
  }
  free(in);
  mgr_mesh_close(&g);
}

static void test_churn_degree_3(void) { churn(3, 42, 5000, 60); }
static void test_churn_degree_8(void) { churn(8, 4242, 5000, 400); }
static void test_churn_degree_2(void) { churn(2, 17, 3000, 40); }
static void test_churn_small(void) { churn(8, 99, 3000, 12); } /* around D + 1 nodes */

/* ---- following another's graph (several managers) ---------------------------------------- */

/* The sets a leader publishes after a step: each changed node's set, and the gone ones. */
typedef struct {
  const mgr_mesh *g;
  mgr_mesh_set *sets;
  size_t n;
} publish_ctx;

static void publish_one(void *ctx, const char *id) {
  publish_ctx *p = ctx;
  mgr_mesh_set *s = &p->sets[p->n++];
  memset(s, 0, sizeof *s);
  memcpy(s->id, id, NM_ID_LEN + 1);
  s->n = (unsigned)mgr_mesh_neighbours(p->g, id, s->nb, MGR_MESH_DEGREE_MAX);
}

/* Whether two graphs are the same: the same nodes with the same sets. */
static int same_graph(const mgr_mesh *a, const mgr_mesh *b, unsigned max_nodes) {
  if (mgr_mesh_count(a) != mgr_mesh_count(b)) return 0;
  char id[NM_ID_LEN + 1], na[MGR_MESH_DEGREE_MAX][NM_ID_LEN + 1], nb[MGR_MESH_DEGREE_MAX][NM_ID_LEN + 1];
  for (unsigned i = 0; i < max_nodes; i++) {
    id_of(i, id);
    if (mgr_mesh_has(a, id) != mgr_mesh_has(b, id)) return 0;
    size_t ka = mgr_mesh_neighbours(a, id, na, MGR_MESH_DEGREE_MAX);
    size_t kb = mgr_mesh_neighbours(b, id, nb, MGR_MESH_DEGREE_MAX);
    if (ka != kb) return 0;
    for (size_t x = 0; x < ka; x++) {
      int found = 0;
      for (size_t y = 0; y < kb; y++) found |= strcmp(na[x], nb[y]) == 0;
      if (!found) return 0;
    }
  }
  return 1;
}

/* A follower that applies only what the leader publishes holds the leader's graph through
 * every join and leave, and tells its servants only the nodes whose set really changed. */
static void test_follower_mirrors(void) {
  enum { MAXN = 120, STEPS = 3000 };
  mgr_mesh lead, mirror;
  NMT_CHECK(mgr_mesh_init(&lead, 4, 7) == 0);
  NMT_CHECK(mgr_mesh_init(&mirror, 4, 99) == 0); /* another seed: it must not matter */
  int in[MAXN] = {0};
  mgr_mesh_set *sets = calloc(MAXN + MGR_MESH_DEGREE_MAX, sizeof *sets);
  NMT_CHECK(sets != NULL);
  uint64_t r = 12345;
  int mismatches = 0, refused = 0;
  for (unsigned step = 0; step < STEPS; step++) {
    r = r * 6364136223846793005ULL + 1442695040888963407ULL;
    unsigned i = (unsigned)(r >> 33) % MAXN;
    char id[NM_ID_LEN + 1];
    id_of(i, id);
    publish_ctx p = {&lead, sets, 0};
    if (in[i]) {
      NMT_CHECK(mgr_mesh_remove(&lead, id) == 0);
      in[i] = 0;
      mgr_mesh_set *g = &sets[p.n++];
      memset(g, 0, sizeof *g);
      memcpy(g->id, id, NM_ID_LEN + 1);
      g->gone = 1;
    } else {
      NMT_CHECK(mgr_mesh_add(&lead, id) == 0);
      in[i] = 1;
    }
    mgr_mesh_take_changed(&lead, publish_one, &p);
    int rc = mgr_mesh_apply(&mirror, sets, p.n);
    NMT_CHECK(rc >= 0);
    refused += rc;
    /* The mirror marks at most what was published. */
    changed_set c = {0};
    mgr_mesh_take_changed(&mirror, collect, &c);
    NMT_CHECK(c.n <= p.n + MGR_MESH_DEGREE_MAX);
    if (!same_graph(&lead, &mirror, MAXN)) mismatches++;
  }
  NMT_EQ_INT(refused, 0);
  NMT_EQ_INT(mismatches, 0);
  /* A whole graph applied again changes nothing and marks nobody. */
  publish_ctx all = {&lead, sets, 0};
  mgr_mesh_each(&lead, publish_one, &all);
  NMT_CHECK(mgr_mesh_apply(&mirror, sets, all.n) == 0);
  changed_set c = {0};
  mgr_mesh_take_changed(&mirror, collect, &c);
  NMT_EQ_INT(c.n, 0);
  free(sets);
  mgr_mesh_close(&lead);
  mgr_mesh_close(&mirror);
}

/* A drop leaves holes; a repair fills them and joins the pieces. */
static void test_repair(void) {
  mgr_mesh g;
  NMT_CHECK(mgr_mesh_init(&g, 4, 5) == 0);
  char id[NM_ID_LEN + 1];
  for (unsigned i = 0; i < 60; i++) {
    id_of(i, id);
    NMT_CHECK(mgr_mesh_add(&g, id) == 0);
  }
  for (unsigned i = 0; i < 60; i += 3) {
    id_of(i, id);
    NMT_CHECK(mgr_mesh_drop(&g, id) == 0);
  }
  NMT_CHECK(mgr_mesh_drop(&g, id) == -ENOENT);
  /* Cut it in two by hand as well: two nodes with nobody. */
  mgr_mesh_set iso[2];
  memset(iso, 0, sizeof iso);
  id_of(1, iso[0].id);
  id_of(2, iso[1].id);
  NMT_CHECK(mgr_mesh_apply(&g, iso, 2) == 0);
  NMT_CHECK(!mgr_mesh_connected(&g));
  mgr_mesh_repair(&g);
  NMT_CHECK(mgr_mesh_connected(&g));
  unsigned mn, mx;
  mgr_mesh_degrees(&g, &mn, &mx);
  NMT_CHECK(mx <= 4);
  NMT_CHECK(mn >= 3);
  unsigned ids[60], n = 0;
  for (unsigned i = 0; i < 60; i++)
    if (i % 3) ids[n++] = i;
  NMT_CHECK(symmetric(&g, ids, n));
  mgr_mesh_close(&g);
}

/* The sets' wire form (from the store): what parses, and what is refused. */
static void test_set_parse(void) {
  mgr_mesh_set s;
  const char *ok = "0000000000000001 0000000000000002 00000000000000ab";
  NMT_EQ_INT(mgr_mesh_set_parse(ok, strlen(ok), &s), 0);
  NMT_EQ_STR(s.id, "0000000000000001");
  NMT_EQ_INT(s.n, 2);
  NMT_EQ_STR(s.nb[1], "00000000000000ab");
  NMT_CHECK(!s.gone);
  NMT_EQ_INT(mgr_mesh_set_parse("0000000000000001 -", 18, &s), 0);
  NMT_CHECK(s.gone && s.n == 0);
  NMT_EQ_INT(mgr_mesh_set_parse("0000000000000001 ", 17, &s), 0);
  NMT_CHECK(!s.gone && s.n == 0);
  static const char *const bad[] = {
      "",
      "0000000000000001",                                   /* no blank */
      "000000000000001 0000000000000002",                   /* a short id */
      "00000000000000AB 0000000000000002",                  /* upper case */
      "0000000000000001 000000000000000g",                  /* not hex */
      "0000000000000001 0000000000000002 ",                 /* a trailing blank */
      "0000000000000001 0000000000000002  0000000000000003", /* two blanks */
      "0000000000000001 00000000000000020000000000000003",  /* no blank between */
      "0000000000000001 --",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) NMT_EQ_INT(mgr_mesh_set_parse(bad[i], strlen(bad[i]), &s), -EINVAL);
  /* More than MGR_MESH_DEGREE_MAX neighbours. */
  char big[(NM_ID_LEN + 1) * (MGR_MESH_DEGREE_MAX + 2)];
  size_t len = (size_t)snprintf(big, sizeof big, "0000000000000001");
  for (unsigned i = 0; i <= MGR_MESH_DEGREE_MAX; i++) len += (size_t)snprintf(big + len, sizeof big - len, " %016x", i + 2);
  NMT_EQ_INT(mgr_mesh_set_parse(big, len, &s), -EINVAL);
}

int main(void) {
  NMT_RUN(test_set_parse);
  NMT_RUN(test_follower_mirrors);
  NMT_RUN(test_repair);
  NMT_RUN(test_small_is_complete);
  NMT_RUN(test_join_changes_few);
  NMT_RUN(test_removed_not_named);
  NMT_RUN(test_cut_vertex);
  NMT_RUN(test_churn_degree_3);
  NMT_RUN(test_churn_degree_8);
  NMT_RUN(test_churn_degree_2);
  NMT_RUN(test_churn_small);
  return nmt_done();
}
