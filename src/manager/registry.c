/* The registry: which servants are in the peer list, which ports they listen on, and the
 * publishing of every change to everyone as a delta. */
#include "manager.h"
#include "cands.h"
#include "neighbours.h"
#include "shared.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t mgr_now_ms(manager *m) { return uv_now(m->loop); }

mgr_verdict_rules mgr_rules(const manager *m) {
  mgr_verdict_rules r = {m->cfg.heartbeat_s, m->cfg.complaint_threshold, m->cfg.complaint_window_s,
                         m->cfg.quorum_percent};
  return r;
}

int mgr_session_listed(const mgr_session *s) {
  return s->state == MGR_SESSION_REGISTERED || s->state == MGR_SESSION_REPLACING;
}

mgr_session *mgr_find_registered(manager *m, const char *id) {
  mgr_session *s = mgr_index_find(&m->index, id);
  return s && s->state == MGR_SESSION_REGISTERED ? s : NULL;
}

mgr_session *mgr_find_listed(manager *m, const char *id) { return mgr_index_find(&m->index, id); }

/* The next port in the range that no servant at the same address uses (the one after the
 * last one handed out, so ports are not reused at once), wrapping around; 0 when the range
 * is exhausted. */
uint16_t mgr_assign_port(manager *m, const char *ip, uint16_t avoid) {
  unsigned span = m->cfg.port_last - m->cfg.port_first + 1;
  if (m->next_port < m->cfg.port_first || m->next_port > m->cfg.port_last)
    m->next_port = m->cfg.port_first;
  for (unsigned i = 0; i < span; i++) {
    unsigned p = m->next_port;
    m->next_port = p == m->cfg.port_last ? m->cfg.port_first : p + 1;
    if (p != avoid && mgr_index_port_holders(&m->index, ip, (uint16_t)p) == 0) return (uint16_t)p;
  }
  return 0;
}

size_t mgr_session_cands(const mgr_session *s, nm_cand cands[NM_CANDS_MAX]) {
  mgr_cand_source src = {s->ext_ip, s->ext_port, s->conn.peer_ip, s->other_ip, s->port, s->local, s->nlocal,
                         mgr_punch_port(s)};
  return mgr_cands_build(&src, cands);
}

void mgr_session_to_peer(const mgr_session *s, nm_peer *p) {
  if (s->remote) {
    mgr_shared_remote_peer(s, p); /* as its holder published it */
    return;
  }
  memset(p, 0, sizeof *p);
  strcpy(p->id, s->id);
  strcpy(p->name, s->name);
  p->role = s->role;
  /* Peers dial the mapped external address when the servant has a usable mapping. */
  if (s->reach == NM_REACH_MAPPED && s->ext_ip[0] && s->ext_port) {
    snprintf(p->ip, sizeof p->ip, "%s", s->ext_ip);
    p->port = s->ext_port;
  } else {
    snprintf(p->ip, sizeof p->ip, "%s", s->conn.peer_ip);
    p->port = s->port;
  }
  p->state = s->reach;
  p->mapping = s->mapping;
  strcpy(p->relay, s->standby ? "" : s->relay_id); /* on standby it pulls from none */
  memcpy(p->key, s->key, sizeof p->key); /* what its peers pin and verify its lines with */
  p->ncands = mgr_session_cands(s, p->cands);
}

void mgr_send_full_list(manager *m, mgr_session *s) { mgr_publish_list_to(m, s); }

/* FNV-1a: a digest of what was published, to tell whether an entry changed. Entries are
 * built by mgr_session_to_peer from a zeroed struct, so equal entries have equal bytes. */
static uint64_t mgr__digest(const void *p, size_t n) {
  const unsigned char *b = p;
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
  return h;
}

static uint64_t mgr__dial_digest(const nm_peer *p) {
  return mgr__digest(p->ip, strlen(p->ip)) ^ ((uint64_t)p->port << 1);
}

int mgr_session_moved(const mgr_session *s) {
  nm_peer now;
  mgr_session_to_peer(s, &now);
  return mgr__dial_digest(&now) != s->pub_dial;
}

static int mgr__list_add(mgr_list *l, mgr_session *s) {
  if (l->max && l->count >= l->max) return -ENOSPC;
  if (l->count == l->cap) {
    size_t ncap = l->cap ? l->cap * 2 : 64;
    mgr_session **n = realloc(l->at, ncap * sizeof *n);
    if (!n) return -ENOMEM;
    l->at = n;
    l->cap = ncap;
  }
  s->list_at = l->count;
  l->at[l->count++] = s;
  s->in_list = 1;
  mgr_publish_touch(s->mgr, s->list_at);
  return 0;
}

/* The last entry takes the hole: O(1), the order is nobody's business. */
static void mgr__list_del(mgr_list *l, mgr_session *s) {
  if (!s->in_list) return;
  size_t i = s->list_at, last = l->count - 1;
  mgr_publish_touch(s->mgr, i);
  mgr_publish_touch(s->mgr, last);
  if (i != last) {
    l->at[i] = l->at[last];
    l->at[i]->list_at = i;
  }
  l->count--;
  s->in_list = 0;
}

void mgr_list_hand_over(manager *m, mgr_session *old, mgr_session *s) {
  if (!old->in_list) return;
  s->in_list = 1;
  s->list_at = old->list_at;
  s->pub_digest = old->pub_digest;
  s->pub_dial = old->pub_dial;
  m->list.at[s->list_at] = s;
  old->in_list = 0;
  mgr_publish_touch(m, s->list_at);
}

void mgr_list_forget(manager *m, mgr_session *s) { mgr__list_del(&m->list, s); }

/* Adds or updates s's entry and fills c with the change that says so. Returns 1 when the
 * list changed (the change is due), 0 when nothing changed, -1 when the list is full. */
static int mgr__list_upsert(manager *m, mgr_session *s, nm_delta_change *c) {
  memset(c, 0, sizeof *c);
  mgr_session_to_peer(s, &c->peer);
  /* A relay, a suspicious reach or the pair path: relay bookkeeping looks at it now. */
  if (s->relay_id[0] || s->pair || s->provisional || s->reach == NM_REACH_SUSPICIOUS ||
      s->reach == NM_REACH_RELAYED)
    mgr_index_track_relayed(&m->index, s);
  uint64_t digest = mgr__digest(&c->peer, sizeof c->peer);
  if (s->in_list && digest == s->pub_digest) return 0;
  if (!s->in_list && mgr__list_add(&m->list, s) < 0) {
    nm_log_error("peer list full (%zu servants); %s not listed", m->list.count, s->name);
    return -1;
  }
  s->pub_digest = digest;
  s->pub_dial = mgr__dial_digest(&c->peer);
  mgr_publish_touch(m, s->list_at);
  return 1;
}

/* A change of s's entry, in the list already, goes out: through the store when it sequences
 * the overlay's changes (shared.h; the change log publishes it, at the overlay's version),
 * else from here, at the next version of ours. */
static void mgr__changed(manager *m, mgr_session *s, const nm_delta_change *c, const char *reason) {
  if (m->shared && (c->leave ? mgr_shared_leave(m, s, reason) : mgr_shared_put(m, s)) > 0) return;
  m->list.version++;
  mgr_publish_change(m, c);
}

int mgr_list_put_remote(manager *m, mgr_session *s) {
  nm_peer p;
  mgr_session_to_peer(s, &p);
  if (s->relay_id[0] || s->reach == NM_REACH_SUSPICIOUS || s->reach == NM_REACH_RELAYED)
    mgr_index_track_relayed(&m->index, s);
  if (!s->in_list && mgr__list_add(&m->list, s) < 0) {
    nm_log_error("peer list full (%zu servants); %s not listed", m->list.count, s->name);
    return -1;
  }
  s->pub_digest = mgr__digest(&p, sizeof p);
  s->pub_dial = mgr__dial_digest(&p);
  mgr_publish_touch(m, s->list_at);
  return 0;
}

void mgr_list_drop_remote(manager *m, mgr_session *s) { mgr__list_del(&m->list, s); }

void mgr_publish_upsert(manager *m, mgr_session *s) {
  nm_delta_change c;
  if (mgr__list_upsert(m, s, &c) > 0) mgr__changed(m, s, &c, NULL);
}

void mgr_publish_join(manager *m, mgr_session *s) {
  nm_delta_change c;
  /* The newcomer is owed the whole list, which goes out at the window's end before the
   * delta that tells everyone else of the join: peers connect to it as soon as they read
   * the delta, and it can only accept a peer it knows. (A peer may still win the race on a
   * busy host; the servant holds an unknown peer-hello briefly.) */
  int changed = mgr__list_upsert(m, s, &c);
  mgr_publish_owe_list(m, s);
  /* Listed: a node of the mesh. Its neighbours (and those whose set changed) are told when
   * the window closes, after the entries they name. */
  if (changed >= 0) mgr_neighbours_joined(m, s);
  /* With a store, written even when the entry is as it was: it is held here now. */
  if (changed > 0 || (changed == 0 && m->shared)) mgr__changed(m, s, &c, NULL); /* a window of 0 serves it here */
  if (s->list_waiting && m->pub.npending == 0) mgr_publish_flush(m);
  /* Nothing for a window to carry: what the mesh owes goes now. */
  if (m->pub.npending == 0 && !m->pub.waiters) mgr_neighbours_flush(m);
}

void mgr_publish_leave(manager *m, mgr_session *s, const char *reason) {
  if (!s->in_list) return;
  mgr__list_del(&m->list, s);
  m->stats.leaves++;
  nm_log_info("left: %s (%s) %s", s->name, s->id, reason ? reason : "");
  nm_delta_change c;
  memset(&c, 0, sizeof c);
  c.leave = 1;
  memcpy(c.peer.id, s->id, sizeof c.peer.id);
  mgr_neighbours_left(m, s); /* the repair goes out with the window, after the leave */
  mgr__changed(m, s, &c, reason);
}

/* ---- the relay choice's pool -------------------------------------------------------------- */

/* Steps from the longest connected servant on before the pool gives up looking for one
 * that could serve and takes every registered session instead (an overlay where hardly
 * anyone is reachable). */
#define MGR_POOL_WALK_MAX 4096

typedef struct {
  mgr_session **v;
  size_t n, cap;
  uint64_t mark;
} mgr__pool;

static int mgr__pool_add(mgr__pool *p, mgr_session *r) {
  if (!r || r->state != MGR_SESSION_REGISTERED || r->pool_mark == p->mark) return 0;
  if (p->n == p->cap) {
    size_t ncap = p->cap ? p->cap * 2 : 32;
    mgr_session **nv = realloc(p->v, ncap * sizeof *nv);
    if (!nv) return -ENOMEM;
    p->v = nv;
    p->cap = ncap;
  }
  r->pool_mark = p->mark;
  p->v[p->n++] = r;
  return 0;
}

/* What relay_choice.c asks of a candidate that serves nobody yet, for client s. */
static int mgr__could_serve(const mgr_session *s, const mgr_session *r, const mgr_verdict_rules *rules,
                            uint64_t now) {
  int pair = s->pair && (s->reach == NM_REACH_DIRECT || s->reach == NM_REACH_MAPPED); /* relays.c's pair client */
  return r != s && r->max_clients > 0 && (r->reach == NM_REACH_DIRECT || r->reach == NM_REACH_MAPPED) &&
         !r->provisional && mgr_complaints_reporters(&r->complaints, rules, now) == 0 &&
         (!pair || (mgr_complaints_live(&s->complaints, r->id, rules, now) == 0 &&
                    mgr_complaints_live(&r->complaints, s->id, rules, now) == 0));
}

long mgr_relay_pool(manager *m, mgr_session *s, const char *prefer_id, mgr_session ***out) {
  mgr__pool p = {NULL, 0, 0, ++m->pool_picks};
  int rc = mgr__pool_add(&p, s);
  for (mgr_session *r = m->index.relays; r && rc == 0; r = r->rly_next) rc = mgr__pool_add(&p, r);
  if (prefer_id && rc == 0) rc = mgr__pool_add(&p, mgr_find_registered(m, prefer_id));
  /* Sessions serving clients: named by their clients, which are all on the relayed list. */
  for (mgr_session *c = m->index.relayed; c && rc == 0; c = c->rel_next)
    if (mgr_session_listed(c) && c->relay_id[0]) rc = mgr__pool_add(&p, mgr_find_registered(m, c->relay_id));
  uint64_t servers = p.mark; /* everything marked so far serves someone, or is s */
  /* The longest connected servant that could serve with no client yet. */
  mgr_verdict_rules rules = mgr_rules(m);
  uint64_t now = mgr_now_ms(m);
  size_t steps = 0;
  int found = 0;
  for (mgr_session *r = m->sessions_tail; r && rc == 0 && !found; r = r->prev) {
    if (r->state != MGR_SESSION_REGISTERED || r->pool_mark == servers) continue;
    if (++steps > MGR_POOL_WALK_MAX) break;
    if (mgr__could_serve(s, r, &rules, now)) {
      rc = mgr__pool_add(&p, r);
      found = 1;
    }
  }
  if (rc == 0 && !found && steps > MGR_POOL_WALK_MAX)
    for (mgr_session *r = m->sessions; r && rc == 0; r = r->next) rc = mgr__pool_add(&p, r);
  if (rc < 0) {
    free(p.v);
    return rc;
  }
  *out = p.v;
  return (long)p.n;
}
