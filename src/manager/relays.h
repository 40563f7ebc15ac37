/* Relay assignment: who pulls from whom, and telling both sides. The choice itself is the
 * pure policy in relay_choice.c; this module describes the registered sessions to it,
 * records the result on the client (relay_id, token, reach relayed) and sends relay-serve
 * and relay-assign. A relay's client count is always counted from its clients' relay_id,
 * so it cannot drift from the assignments. */
#ifndef NM_MANAGER_RELAYS_H
#define NM_MANAGER_RELAYS_H

#include "manager.h"

/* How many listed servants pull from r. */
unsigned mgr_relay_clients(manager *m, const mgr_session *r);

/* Picks a relay for the suspicious s, preferring prefer_id (and keeping prefer_token with
 * it; both may be NULL), and records it on s: relay_id, a token, reach relayed. Sends and
 * publishes nothing. Returns 0, or -ENOENT when no relay can take it (s stays
 * suspicious, waiting for mgr_relays_serve_waiting), or -ENOMEM. */
int mgr_relay_pick(manager *m, mgr_session *s, const char *prefer_id, const char *prefer_token);

/* Tells s's relay its whole client list, then s its relay: the relay learns first, so the
 * client's pull finds its token there. Only registered sessions are sent anything: one
 * taking a registration over hears it when it says listening. */
void mgr_relay_announce(manager *m, mgr_session *s);

/* relay-serve with relay's whole client list (idempotent, so a lost or reordered update
 * cannot leave it serving someone it should not). Nothing unless relay is registered. */
void mgr_relay_send_serve(manager *m, mgr_session *relay);
/* relay-assign naming client's relay, or releasing it when it has none. */
void mgr_relay_send_assign(manager *m, mgr_session *client);

/* The suspicious s: pick a relay (the one it pulls from already, if any, when that one
 * still can serve), tell both sides, publish the change. */
void mgr_relay_client(manager *m, mgr_session *s);

/* s pulls no more (it left, or is reachable after all): its relay is told its new client
 * list; s keeps its reach, the caller sets it. */
void mgr_relay_unlink(manager *m, mgr_session *s);

/* Clients of relay (which left, or was judged unreachable) get another relay. */
void mgr_relays_reassign_clients_of(manager *m, const mgr_session *relay);

/* relay reconnected from another address: its clients get new tokens (a servant follows
 * a new assignment only when the token changes), the relay its new list, then each client
 * its assignment. */
void mgr_relays_readdress(manager *m, mgr_session *relay);

/* Suspicious servants still waiting for a relay try again (one joined or has room), and
 * so do pairs no relay could serve. */
void mgr_relays_serve_waiting(manager *m);

/* ---- the pair path (docs/protocol.md, "The pair path") --------------------------------- */

/* The verdict about the reachable s is a pair: some servants cannot reach it, not a quorum.
 * It pulls their lines from a relay that is neither one of them nor one it complained
 * about; its reach stays direct or mapped and its list entry names the relay. Served
 * already by an eligible relay: nothing changes. No relay can serve it: an error line
 * (rate-limited) and the status shows it unserved; it is served as soon as one can
 * (mgr_relays_serve_waiting). */
void mgr_relay_pair(manager *m, mgr_session *s);

/* s leaves the pair path (a new mapping, say): its relay is told, s is told to pull no
 * more. The caller publishes the change. */
void mgr_relay_pair_release(manager *m, mgr_session *s, const char *why);

/* ---- standby (docs/protocol.md, "Standby") ---------------------------------------------- */

/* s's heartbeat said whether every listed servant reaches it directly (all). With all, a
 * client of a relay goes on standby: it is told to pull no more for now (relay-assign
 * standby="yes"), its relay's relay-serve no longer names it (the slot counts free) and its
 * list entry names no relay, but relay_id and its token are kept. Without, a client on
 * standby is served again at once: by the relay kept for it with the same token when that
 * relay can, else by another. A client back from standby goes on standby again no sooner
 * than a heartbeat interval later. */
void mgr_relay_on_direct(manager *m, mgr_session *s, int all);

#define MGR_PAIR_NAMES_MAX 8 /* names listed in a pair's log lines and status attributes */
#define MGR_PAIR_NAMES_LEN (MGR_PAIR_NAMES_MAX * (NM_NAME_MAX + 1) + 24)
/* The names of the servants that cannot reach s (reporters at the threshold), "alice bob",
 * at most MGR_PAIR_NAMES_MAX of them then " +N". Returns how many there are. */
size_t mgr_pair_names(manager *m, const mgr_session *s, char *out, size_t len);

#endif
