/* Several managers, one overlay (issue 14): the manager's side of the shared store.
 *
 * With --store, the list is the overlay's, not this manager's: every registration lives in
 * the store (store.h) with the name of the manager that holds its session, and every change
 * reaches every manager through the store's change log, in one order and under one version
 * sequence. This module turns that into the list the manager already publishes:
 *
 *   - Servants held by other managers are "remote" entries: an mgr_session in state
 *     MGR_SESSION_REMOTE with no connection, listed (index, list) and published from the
 *     entry the store holds (s->remote). Nothing is ever sent to one.
 *   - While the store answers ("sequenced"), the manager's own changes are written to the
 *     store and published to its servants when the change log brings them back, at the
 *     overlay's version; remote changes are published the same way. The list itself is
 *     updated at once, so full lists may run a little ahead of the version they carry
 *     (every change is idempotent: an upsert of what a servant has, a leave of what it
 *     lacks).
 *   - While no store answers, the manager serves the servants it holds from memory with
 *     versions of its own, and keeps every remote entry. When the store is back, a snapshot
 *     reconciles: its own registrations are written again where the store lost or changed
 *     them, remote entries are taken from the snapshot (one missing from it is kept for a
 *     heartbeat timeout, in case its holder writes it again), and every servant gets the
 *     list anew at the overlay's version.
 *   - A servant that moved here from another manager takes its remote entry over (its
 *     place in the list, its reach, its relay): peers see an update, never a leave and a
 *     join. A servant of ours that another manager now holds is let go the same way.
 *   - A complaint about a remote servant goes to its holder through the store: only the
 *     holder judges, so a servant is judged once whoever the reporters' managers are.
 */
#ifndef NM_MANAGER_SHARED_H
#define NM_MANAGER_SHARED_H

#include <stddef.h>
#include <stdint.h>

struct manager;
struct mgr_session;
#include "nm_peerlist.h"

/* Record fields that are not published (the manager's own bookkeeping of a servant). */
typedef struct {
  char token[33]; /* its relay token (MGR_TOKEN_LEN) */
  int pair, provisional, standby;
} mgr_shared_private;

/* Starts the store client when the config names one; 0 (also without a store) or -1 (said). */
int mgr_shared_init(struct manager *m);
/* Stops it (the manager is stopping); idempotent. */
void mgr_shared_stop(struct manager *m);
/* Frees the remote entries and the store (after the loop ended). */
void mgr_shared_close(struct manager *m);

/* Whether changes are sequenced by the store now: the manager's own changes go to the
 * store, and the change log publishes them. */
int mgr_shared_sequenced(const struct manager *m);
/* s's entry changed, or s registered here: written to the store (with its new holder).
 * Returns 1 when the store will sequence it, 0 when the caller publishes it itself. */
int mgr_shared_put(struct manager *m, struct mgr_session *s);
/* s's entry goes: 1 when the store will sequence the leave, 0 when the caller publishes it. */
int mgr_shared_leave(struct manager *m, struct mgr_session *s, const char *reason);
/* reporter complains about accused, a remote entry: sent to its holder. */
void mgr_shared_complain(struct manager *m, struct mgr_session *reporter, struct mgr_session *accused);
/* s, saying hello, is the servant of the remote entry old: s takes its place. */
void mgr_shared_take_over(struct manager *m, struct mgr_session *old, struct mgr_session *s);
/* A key was admitted here (its record is in the admission store): published to the other
 * managers of the overlay as an admission fact. */
void mgr_shared_admitted(struct manager *m, const char *fingerprint);
/* The mesh leader's sets (neighbours.c) to the store: mgr_store_mesh's. */
int mgr_shared_mesh_write(struct manager *m, const char *payload, size_t len, int reset);
/* From the sweep: renewals, expiries, the announcement, the mesh's lease, the metrics. */
void mgr_shared_tick(struct manager *m);

/* The name of the manager holding s ("" without a store): holder.h's mgr_session_holder. */
const char *mgr_shared_holder(const struct mgr_session *s);
/* The status's <store>: holder.h's mgr_status_store. */
struct nm_status;
void mgr_shared_status(struct manager *m, struct nm_status *st);
/* A remote entry's published form. */
void mgr_shared_remote_peer(const struct mgr_session *s, nm_peer *p);
/* The remote entries (for the status), in no order: for (s = first; s; s = next(s)). */
struct mgr_session *mgr_shared_remote_first(struct manager *m);
struct mgr_session *mgr_shared_remote_next(struct mgr_session *s);

/* Pure: the store's record of a servant (its published entry and what is private) to and
 * from bytes. Encode: 0 or -ENOMEM, *out malloc'ed. Decode: 0 or -EINVAL with err. */
int mgr_shared_record_encode(const nm_peer *p, const mgr_shared_private *priv, char **out, size_t *len);
int mgr_shared_record_decode(const char *data, size_t len, nm_peer *p, mgr_shared_private *priv, char *err,
                             size_t errlen);

#endif
