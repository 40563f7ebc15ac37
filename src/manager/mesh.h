/* The bounded-degree mesh (pure policy: no I/O, no clock). Over the listed servants, a
 * random graph in which every node has at most D neighbours and, as far as the number of
 * nodes allows, exactly D; it stays connected through every join and leave.
 *
 * A join splits random edges, as random regular graph constructions do: edge u-v becomes
 * u-new-v, so u and v keep their degree and the graph stays connected; a node short of D
 * (a leave's leftover) is linked first. A leave pairs the node's former neighbours among
 * themselves (each lost one edge), then, if that left the graph in pieces, joins the pieces
 * with double edge swaps (p-q and r-s become p-r and q-s: no degree changes). Only the former
 * neighbours and at most two nodes per swap change, O(D) nodes in all. Whether they are
 * still in one piece is found by growing balls around all of them at once until they touch,
 * not by searching the whole graph (measured: 50,000 nodes of degree 8, 0.5 us a join and
 * 5 us a leave; about 250 bytes a node, uthash and the arrays included).
 *
 * The manager sends `neighbours` only to the nodes whose set changed: mgr_mesh_take_changed
 * hands them out and forgets them. Who is a node is the caller's choice: the manager makes
 * every servant one and leaves dedicated relays out (docs/protocol.md, "Neighbours"). */
#ifndef MGR_MESH_H
#define MGR_MESH_H

#include <stddef.h>
#include <stdint.h>

#include "nm_proto.h"

#define MGR_MESH_DEGREE_MIN 2
#define MGR_MESH_DEGREE_MAX 32
#define MGR_MESH_DEGREE_DEFAULT 8
#define MGR_MESH_ABOVE_DEFAULT 1000

typedef struct mgr_mesh_node mgr_mesh_node;

typedef struct {
  unsigned degree;         /* D */
  uint64_t rng;            /* xorshift64* state: a seed makes a run repeatable */
  mgr_mesh_node *by_id;    /* uthash head */
  mgr_mesh_node **all;     /* every node, for picking one at random */
  size_t count, cap;
  mgr_mesh_node **queue;   /* a breadth-first search's queue (cap entries) */
  uint32_t mark;           /* the search's visit stamp */
  mgr_mesh_node *changed;  /* nodes whose neighbour set changed since the last take */
  mgr_mesh_node *short_head; /* nodes with fewer than D neighbours (a doubly linked list) */
} mgr_mesh;

/* degree in [MGR_MESH_DEGREE_MIN, MGR_MESH_DEGREE_MAX]; seed 0 is replaced by a constant.
 * Returns 0 or -EINVAL. */
int mgr_mesh_init(mgr_mesh *g, unsigned degree, uint64_t seed);
void mgr_mesh_close(mgr_mesh *g);

/* Adds id (NM_ID_LEN hex characters) and links it. Returns 0, -EEXIST, -EINVAL or -ENOMEM
 * (nothing changed). */
int mgr_mesh_add(mgr_mesh *g, const char *id);
/* Removes id and repairs around it. Returns 0 or -ENOENT. */
int mgr_mesh_remove(mgr_mesh *g, const char *id);
int mgr_mesh_has(const mgr_mesh *g, const char *id);
size_t mgr_mesh_count(const mgr_mesh *g);

/* id's neighbours: writes at most max ids into out, returns how many it has (0 for an
 * unknown id). */
size_t mgr_mesh_neighbours(const mgr_mesh *g, const char *id, char (*out)[NM_ID_LEN + 1], size_t max);

/* Calls fn for each node whose neighbour set changed since the last call (once each, a
 * node removed since is not named), then forgets them. fn must not change the mesh. */
void mgr_mesh_take_changed(mgr_mesh *g, void (*fn)(void *ctx, const char *id), void *ctx);
/* Calls fn for each node whose set changed since the last take, forgetting nothing (the
 * views see them before neighbours.c takes them). fn must not change the mesh. */
void mgr_mesh_each_changed(const mgr_mesh *g, void (*fn)(void *ctx, const char *id), void *ctx);
/* Forgets the changed set without naming it (after a switch everyone is told anyway). */
void mgr_mesh_clear_changed(mgr_mesh *g);

/* ---- following another's graph (several managers, shared.h) ---------------------------
 * One manager of an overlay draws the graph; the others apply the sets it publishes, with
 * no randomness and no repair of their own, so every manager holds the same graph. */

/* One node's set as published: gone, or exactly these neighbours. */
typedef struct {
  char id[NM_ID_LEN + 1];
  int gone;
  unsigned n;
  char nb[MGR_MESH_DEGREE_MAX][NM_ID_LEN + 1];
} mgr_mesh_set;

/* One line of a published set, without its newline: "ID N1 N2 ..." (at most
 * MGR_MESH_DEGREE_MAX neighbours), "ID " (none) or "ID -" (gone); ids are NM_ID_LEN
 * lowercase hex characters. Returns 0 or -EINVAL (s then holds nothing of use). */
int mgr_mesh_set_parse(const char *line, size_t len, mgr_mesh_set *s);
/* Replaces the sets given (nodes unknown here are added; a neighbour unknown here too), in
 * three passes so that no node goes past D on the way: the gone ones go, edges not in the
 * new sets go, the new edges come. Nodes whose set changed are marked changed. Returns how
 * many edges could not be made (a node already full: the sets given were not one graph's),
 * or -ENOMEM (the graph holds what was applied so far). */
int mgr_mesh_apply(mgr_mesh *g, const mgr_mesh_set *sets, size_t n);
/* Removes id with no repair (the one who draws the graph publishes its repair). 0 or -ENOENT. */
int mgr_mesh_drop(mgr_mesh *g, const char *id);
/* Makes the graph whole again after following another's (a leader that takes over): nodes
 * short of D are linked among themselves and given split edges, and the pieces are joined
 * (a whole-graph search per piece: O(N) each, once per change of leader). Returns how many
 * pieces were joined. */
size_t mgr_mesh_repair(mgr_mesh *g);
/* Calls fn for every node (a whole graph to publish). */
void mgr_mesh_each(const mgr_mesh *g, void (*fn)(void *ctx, const char *id), void *ctx);

/* For tests: adds or removes the edge a-b by hand (the graph may then be anything). Return
 * 0, -ENOENT, -EEXIST (already linked, or a == b), -ENOSPC (one side has D) or -ENOTCONN
 * (not linked). */
int mgr_mesh_link(mgr_mesh *g, const char *a, const char *b);
int mgr_mesh_unlink(mgr_mesh *g, const char *a, const char *b);

/* For tests and status: whether the graph is connected (a graph of 0 or 1 node is), and
 * the smallest and largest degree. */
int mgr_mesh_connected(mgr_mesh *g);
void mgr_mesh_degrees(const mgr_mesh *g, unsigned *min, unsigned *max);

#endif
