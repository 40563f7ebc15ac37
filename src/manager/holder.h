/* holder: which manager holds a servant's session, and the store as natmesh-ctl sees it
 * (issue 14, several managers sharing one overlay through a store).
 *
 * The status (status.c) asks these two for what only the store side knows, so status.c
 * needs no knowledge of the store: mgr_session_holder names the manager a listed servant
 * registered with ("holder"), and mgr_status_store fills the status's <store> element (url,
 * state, primary, the overlay's managers). holder.c holds the defaults of a manager without
 * a store (no holder, no <store>); the store side (shared.c) gives them their bodies. */
#ifndef NM_MANAGER_HOLDER_H
#define NM_MANAGER_HOLDER_H

struct manager;
struct mgr_session;
struct nm_status;

/* The name of the manager holding s's session: this manager's --manager-name for its own
 * sessions, the store's holder for a servant registered with another manager; "" without
 * a store. Never NULL; valid until the session or the manager changes. At most
 * NM_STATUS_TEXT_MAX bytes of UTF-8 text are shown (status.c shows anything else as "?"). */
const char *mgr_session_holder(const struct mgr_session *s);

/* Fills st->store (nm_status_add_manager for each manager the store lists; present, url,
 * state, primary) when the manager runs with --store; leaves it alone (not present)
 * otherwise. Called once per status document (every page of a paged one). */
void mgr_status_store(struct manager *m, struct nm_status *st);

#endif
