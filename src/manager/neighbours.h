/* The bounded-degree mesh, as the manager runs it: mesh.c (pure) keeps the graph over the
 * listed servants (dedicated relays are not in it: every servant sends its own lines to
 * them, as in the full mesh); this module tells servants their neighbours.
 *
 * While the overlay has at most cfg.mesh_above servants it is the full mesh and nobody is
 * told anything (a servant starts in the full mesh). Going above the threshold sends every
 * servant its set; then each join and leave sends `neighbours` only to the servants whose
 * set changed (and to a newcomer once, after its list). What a window's joins and leaves
 * change goes out when the delta window closes, after the delta: one message per servant
 * whose set changed, however many changes the window held. Going back to the threshold or
 * under it sends everyone the empty set, which means the full mesh again. The graph is kept
 * in both modes, so a switch costs one message per servant and no rebuild. */
#ifndef MGR_NEIGHBOURS_H
#define MGR_NEIGHBOURS_H

#include <stddef.h>

typedef struct manager manager;
typedef struct mgr_session mgr_session;

/* s was just listed (registry.c, before its change is queued for the delta window). */
void mgr_neighbours_joined(manager *m, mgr_session *s);
/* s's entry was just removed from the list (registry.c, before its leave is queued). */
void mgr_neighbours_left(manager *m, mgr_session *s);
/* Sends the neighbours owed: called when the delta window closes (publish.c), after the
 * full lists and the delta, so that a servant knows every neighbour it is told of (its key,
 * its addresses) before it dials it; and by registry.c when nothing waits for a window. */
void mgr_neighbours_flush(manager *m);
/* In a bounded mesh only those of s's neighbours that dial it (a smaller id, or pulling from
 * a relay) can complain about it: their number (the quorum's base). Returns 1 and sets
 * *dialers in a bounded mesh, 0 otherwise. */
int mgr_neighbours_dialers(manager *m, const mgr_session *s, unsigned *dialers);
/* Several managers (shared.h): the graph is the overlay's, drawn by one of them. */
/* This manager draws it from now on (leading 1: it took the store's lease; the graph is
 * matched with the list, repaired, and written whole at the next flush) or no longer (0). */
void mgr_neighbours_lead(manager *m, int leading);
/* The leader's sets, lines "ID N1 N2 ...\n" ("ID -\n": gone), applied unless we lead; the
 * servants here whose set changed are told. Returns how many sets, or -ENOMEM. Unreadable
 * lines are skipped (said). */
int mgr_neighbours_follow(manager *m, const char *data, size_t len);
/* The overlay's number of servants as the threshold counts them (heartbeat-ack's servants). */
size_t mgr_neighbours_overlay_size(const manager *m);
/* Whether the overlay is a bounded mesh now (status, /metrics). */
int mgr_neighbours_meshed(const manager *m);
void mgr_neighbours_close(manager *m);

#endif
