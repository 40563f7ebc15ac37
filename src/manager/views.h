/* Views (issue 13): above --mesh-above a servant's list is its VIEW, not the whole overlay.
 *
 * A servant's view is itself, its mesh neighbours, the relay it pulls from, the clients it
 * serves as a relay and their neighbours (they send to a client through it), the relays of
 * its neighbours (it sends there what a neighbour it cannot dial should get) and the
 * dedicated relays. `peers` sent to it holds only those entries; a
 * window's delta reaches it only with the changes of entries in its view, and a view change
 * (a neighbour added or dropped, a relay assigned) is an upsert, or a leave marked
 * view="out" ("out of your view, still in the overlay"), in its own delta. Each session in
 * a view has its own list version (view_version): its deltas go from it, its heartbeat-ack
 * names it, and a gap makes the servant ask for its view again, as for the whole list.
 *
 * Dedicated relays (not mesh nodes) keep the whole list and the shared deltas; so does
 * everyone while the overlay is at or below the threshold (nothing changes there).
 *
 * The manager keeps, per session in a view, the ids it was sent and a digest of each entry
 * as sent; and per id the sessions whose view holds it (the watchers), so a change reaches
 * exactly the sessions that hold the entry: O(degree) per change, not O(N). */
#ifndef MGR_VIEWS_H
#define MGR_VIEWS_H

#include <stddef.h>
#include <stdint.h>

#include "nm_peerlist.h"

typedef struct manager manager;
typedef struct mgr_session mgr_session;
typedef struct mgr_watch mgr_watch;

/* One entry of a session's view as it was last sent. */
typedef struct {
  char id[NM_ID_LEN + 1];
  uint64_t digest; /* the entry's pub_digest when sent */
} mgr_view_entry;

typedef struct {
  int on;                 /* the session gets its view, not the whole list */
  uint64_t version;       /* the version of its view it holds (what its deltas go from) */
  mgr_view_entry *at;
  size_t n, cap;
  uint64_t mark;          /* the flush that put it on the flush's to-do list */
  mgr_session *todo_next;
} mgr_view;

/* Whether s gets a view now (a bounded mesh, and s is one of its nodes). */
int mgr_views_applies(manager *m, const mgr_session *s);
/* s's view as a whole list, now (waiters of publish.c): its entries, its version moved on.
 * Returns nm_conn's or the encoder's error. */
int mgr_views_send_full(manager *m, mgr_session *s);
/* Closes the window for the sessions in views: the changes of the window (pending, in
 * order), and the graph's changed nodes, reach each session whose view they touch as one
 * delta of its own. flush: the window's number (sessions served a full list in it skip). */
void mgr_views_flush(manager *m, const nm_delta_change *pending, size_t npending, uint64_t flush);
/* The version s holds: its view's, or the published list's. */
uint64_t mgr_views_version(manager *m, const mgr_session *s);
/* s goes: it watches nothing any more. */
void mgr_views_forget(manager *m, mgr_session *s);
/* For tests and status: how many entries s's view holds; how many sessions' views hold id. */
size_t mgr_views_size(const mgr_session *s);
size_t mgr_views_watchers(manager *m, const char *id);
/* The heap the views take, with malloc's rounding to 16 (their entries, the watchers'
 * records and arrays, the watchers' hash buckets): for performance.md and its test. */
size_t mgr_views_memory(manager *m);
void mgr_views_close(manager *m);

#endif
