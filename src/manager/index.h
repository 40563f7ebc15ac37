/* The manager's indexes over its sessions, so that no event scans them all:
 *   - the listed sessions (registered or taking a registration over) by id, a uthash table;
 *   - the ports held, by (address, port), counted: a servant welcomed or listed holds the
 *     port it was given at the address it came from, and assignment skips held ones;
 *   - how many sessions are servants (welcomed or listed), registered servants (those that
 *     could complain), and ctl sessions: counters kept on every change of state;
 *   - the sessions relay bookkeeping looks at (a relay, a suspicious reach or the pair
 *     path), and those with complaints about them: two short intrusive lists, a superset of
 *     what they name, pruned by the sweep (mgr_index_prune), never during a walk.
 * Every change of a session's state goes through mgr_index_set_state and every change of
 * its port through mgr_index_set_port; the lists are joined by mgr_index_track_relayed and
 * mgr_index_track_accused, and a session leaves everything in mgr_index_forget before it is
 * freed. tests/unit/unit_mgr_index.c checks each index. */
#ifndef NM_MANAGER_INDEX_H
#define NM_MANAGER_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "nm_addr.h"

struct mgr_session;
typedef struct mgr_port_entry mgr_port_entry;

typedef struct {
  struct mgr_session *listed; /* uthash head, by id (hh_id) */
  mgr_port_entry *ports;      /* uthash head, by (ip, port) */
  struct mgr_session *relayed; /* intrusive list (rel_prev, rel_next) */
  struct mgr_session *accused; /* intrusive list (acc_prev, acc_next) */
  struct mgr_session *relays;  /* registered sessions of role relay (rly_prev, rly_next): exact */
  size_t servants;            /* welcomed, replacing or registered */
  size_t registered_servants; /* registered with role servant */
  size_t ctl;                 /* ctl sessions */
  size_t remote_servants;     /* servants other managers hold (shared.h), listed here */
} mgr_index;

void mgr_index_init(mgr_index *x);
/* Frees the port entries and the table's buckets (the sessions are the caller's). */
void mgr_index_close(mgr_index *x);

/* Moves s to state st (an mgr_session_state), keeping every index true. */
void mgr_index_set_state(mgr_index *x, struct mgr_session *s, int st);
/* s listens on port now (0: none). */
void mgr_index_set_port(mgr_index *x, struct mgr_session *s, uint16_t port);
/* The listed session with id, or NULL. */
struct mgr_session *mgr_index_find(const mgr_index *x, const char *id);
/* How many welcomed or listed sessions at ip hold port. */
unsigned mgr_index_port_holders(const mgr_index *x, const char *ip, uint16_t port);

/* s may have a relay, be suspicious or on the pair path: it joins the relayed list. */
void mgr_index_track_relayed(mgr_index *x, struct mgr_session *s);
/* s may have complaints about it: it joins the accused list. */
void mgr_index_track_accused(mgr_index *x, struct mgr_session *s);
/* Drops from the two lists the sessions no longer worth a look (not listed, or with
 * nothing that puts them there). Never call it while walking a list. */
void mgr_index_prune(mgr_index *x);
/* Bytes of one held-port entry (before malloc's own): for memory accounting. */
size_t mgr_index_port_entry_size(void);
/* s leaves every index (before it is freed). */
void mgr_index_forget(mgr_index *x, struct mgr_session *s);

/* Walks: for (mgr_session *c = x->relayed; c; c = c->rel_next) ... */

#endif
