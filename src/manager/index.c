/* The manager's indexes (index.h): uthash tables and two short lists, kept true on every
 * change of state and port, so that lookups and port assignment cost O(1). */
#include "index.h"
#include "manager.h"
#include "nm_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

typedef struct {
  char ip[NM_IP_STRLEN];
  uint16_t port;
} mgr__port_key;

struct mgr_port_entry {
  mgr__port_key key; /* zero-padded: hashed as bytes */
  unsigned holders;
  UT_hash_handle hh;
};

void mgr_index_init(mgr_index *x) { memset(x, 0, sizeof *x); }

size_t mgr_index_port_entry_size(void) { return sizeof(mgr_port_entry); }

void mgr_index_close(mgr_index *x) {
  mgr_port_entry *e, *tmp;
  HASH_ITER(hh, x->ports, e, tmp) {
    HASH_DEL(x->ports, e);
    free(e);
  }
  HASH_CLEAR(hh_id, x->listed);
  memset(x, 0, sizeof *x);
}

static void mgr__port_key_of(mgr__port_key *k, const char *ip, uint16_t port) {
  memset(k, 0, sizeof *k);
  snprintf(k->ip, sizeof k->ip, "%.45s", ip); /* a literal: fits */
  k->port = port;
}

static mgr_port_entry *mgr__port_find(const mgr_index *x, const char *ip, uint16_t port) {
  mgr__port_key k;
  mgr__port_key_of(&k, ip, port);
  mgr_port_entry *e = NULL;
  HASH_FIND(hh, x->ports, &k, sizeof k, e);
  return e;
}

unsigned mgr_index_port_holders(const mgr_index *x, const char *ip, uint16_t port) {
  mgr_port_entry *e = mgr__port_find(x, ip, port);
  return e ? e->holders : 0;
}

static void mgr__port_hold(mgr_index *x, mgr_session *s) {
  if (s->holds_port || s->port == 0) return;
  mgr_port_entry *e = mgr__port_find(x, s->conn.peer_ip, s->port);
  if (!e) {
    e = calloc(1, sizeof *e);
    if (!e) {
      /* Not counted: assignment may then hand this port out again, and the servant that
       * cannot bind it says so and gets another (the listening busy path). */
      nm_log_error("out of memory indexing port %u", s->port);
      return;
    }
    mgr__port_key_of(&e->key, s->conn.peer_ip, s->port);
    HASH_ADD(hh, x->ports, key, sizeof e->key, e);
  }
  e->holders++;
  s->holds_port = 1;
  s->held_port = s->port;
}

static void mgr__port_release(mgr_index *x, mgr_session *s) {
  if (!s->holds_port) return;
  s->holds_port = 0;
  mgr_port_entry *e = mgr__port_find(x, s->conn.peer_ip, s->held_port);
  if (!e) return;
  if (--e->holders == 0) {
    HASH_DEL(x->ports, e);
    free(e);
  }
}

#define MGR__LIST_ADD(head, s, in, prev, next)                                                      \
  do {                                                                                              \
    if ((s)->in) break;                                                                             \
    (s)->in = 1;                                                                                    \
    (s)->prev = NULL;                                                                               \
    (s)->next = (head);                                                                             \
    if (head) (head)->prev = (s);                                                                   \
    (head) = (s);                                                                                   \
  } while (0)

#define MGR__LIST_DEL(head, s, in, prev, next)                                                      \
  do {                                                                                              \
    if (!(s)->in) break;                                                                            \
    (s)->in = 0;                                                                                    \
    if ((s)->prev) (s)->prev->next = (s)->next;                                                     \
    else (head) = (s)->next;                                                                        \
    if ((s)->next) (s)->next->prev = (s)->prev;                                                     \
    (s)->prev = (s)->next = NULL;                                                                   \
  } while (0)

static int mgr__holds_port_in(int st) {
  return st == MGR_SESSION_WELCOMED || st == MGR_SESSION_REPLACING || st == MGR_SESSION_REGISTERED;
}

/* Listed by id: a servant of ours in the list, or one another manager holds (shared.h). */
static int mgr__listed_in(int st) {
  return st == MGR_SESSION_REPLACING || st == MGR_SESSION_REGISTERED || st == MGR_SESSION_REMOTE;
}

static void mgr__count(mgr_index *x, const mgr_session *s, int st, int sign) {
  size_t d = (size_t)(sign > 0 ? 1 : -1);
  if (mgr__holds_port_in(st)) x->servants += d;
  if (st == MGR_SESSION_REGISTERED && s->role == NM_ROLE_SERVANT) x->registered_servants += d;
  if (st == MGR_SESSION_CTL) x->ctl += d;
  if (st == MGR_SESSION_REMOTE && s->role == NM_ROLE_SERVANT) x->remote_servants += d;
}

void mgr_index_set_state(mgr_index *x, mgr_session *s, int st) {
  int was = (int)s->state;
  if (was == st) return;
  mgr__count(x, s, was, -1);
  if (mgr__listed_in(was) && s->in_listed) {
    HASH_DELETE(hh_id, x->listed, s);
    s->in_listed = 0;
  }
  s->state = (mgr_session_state)st;
  mgr__count(x, s, st, +1);
  if (s->role == NM_ROLE_RELAY && st == MGR_SESSION_REGISTERED)
    MGR__LIST_ADD(x->relays, s, in_relays, rly_prev, rly_next);
  else
    MGR__LIST_DEL(x->relays, s, in_relays, rly_prev, rly_next);
  if (mgr__listed_in(st)) {
    mgr_session *other = NULL;
    HASH_FIND(hh_id, x->listed, s->id, strlen(s->id), other);
    if (other) {
      /* Never: one listed session per id (the take-over retires the old one first). */
      nm_log_error("index: %s listed twice; the newer session wins", s->id);
      HASH_DELETE(hh_id, x->listed, other);
      other->in_listed = 0;
    }
    HASH_ADD_KEYPTR(hh_id, x->listed, s->id, strlen(s->id), s);
    s->in_listed = 1;
  }
  if (mgr__holds_port_in(st)) mgr__port_hold(x, s);
  else mgr__port_release(x, s);
}

void mgr_index_set_port(mgr_index *x, mgr_session *s, uint16_t port) {
  if (s->holds_port && s->held_port == port) {
    s->port = port;
    return;
  }
  mgr__port_release(x, s);
  s->port = port;
  if (mgr__holds_port_in((int)s->state)) mgr__port_hold(x, s);
}

mgr_session *mgr_index_find(const mgr_index *x, const char *id) {
  mgr_session *s = NULL;
  if (!id) return NULL;
  HASH_FIND(hh_id, x->listed, id, strlen(id), s);
  return s;
}

/* ---- the short lists ---------------------------------------------------------------------- */

void mgr_index_track_relayed(mgr_index *x, mgr_session *s) {
  MGR__LIST_ADD(x->relayed, s, in_relayed, rel_prev, rel_next);
}

void mgr_index_track_accused(mgr_index *x, mgr_session *s) {
  MGR__LIST_ADD(x->accused, s, in_accused, acc_prev, acc_next);
}

static int mgr__relay_involved(const mgr_session *s) {
  return mgr__listed_in((int)s->state) &&
         (s->relay_id[0] || s->pair || s->provisional || s->reach == NM_REACH_SUSPICIOUS ||
          s->reach == NM_REACH_RELAYED);
}

static int mgr__accused(const mgr_session *s) {
  return mgr__listed_in((int)s->state) && s->state != MGR_SESSION_REMOTE && s->complaints.n > 0;
}

void mgr_index_prune(mgr_index *x) {
  for (mgr_session *s = x->relayed, *next; s; s = next) {
    next = s->rel_next;
    if (!mgr__relay_involved(s)) MGR__LIST_DEL(x->relayed, s, in_relayed, rel_prev, rel_next);
  }
  for (mgr_session *s = x->accused, *next; s; s = next) {
    next = s->acc_next;
    if (!mgr__accused(s)) MGR__LIST_DEL(x->accused, s, in_accused, acc_prev, acc_next);
  }
}

void mgr_index_forget(mgr_index *x, mgr_session *s) {
  if (s->state != MGR_SESSION_RETIRED) mgr_index_set_state(x, s, MGR_SESSION_RETIRED);
  mgr__port_release(x, s);
  if (s->in_listed) {
    HASH_DELETE(hh_id, x->listed, s);
    s->in_listed = 0;
  }
  MGR__LIST_DEL(x->relayed, s, in_relayed, rel_prev, rel_next);
  MGR__LIST_DEL(x->accused, s, in_accused, acc_prev, acc_next);
  MGR__LIST_DEL(x->relays, s, in_relays, rly_prev, rly_next);
}
