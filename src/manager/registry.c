/* The registry: which servants are in the peer list, which ports they listen on, and the
 * publishing of every change to everyone as a delta. */
#include "manager.h"
#include "cands.h"
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
  strcpy(p->relay, s->relay_id);
  memcpy(p->key, s->key, sizeof p->key); /* what its peers pin and verify its lines with */
  p->ncands = mgr_session_cands(s, p->cands);
}

void mgr_send_full_list(manager *m, mgr_session *s) { mgr_publish_list_to(m, s); }

/* Adds or updates s's entry and fills c with the change that says so. Returns 1 when the
 * list changed (the change is due), 0 when nothing changed, -1 when the list is full. */
static int mgr__list_upsert(manager *m, mgr_session *s, nm_delta_change *c) {
  memset(c, 0, sizeof *c);
  mgr_session_to_peer(s, &c->peer);
  /* A relay, a suspicious reach or the pair path: relay bookkeeping looks at it now. */
  if (s->relay_id[0] || s->pair || s->provisional || s->reach == NM_REACH_SUSPICIOUS ||
      s->reach == NM_REACH_RELAYED)
    mgr_index_track_relayed(&m->index, s);
  nm_peer *old = nm_peerlist_find(&m->list, s->id);
  if (old && memcmp(old, &c->peer, sizeof c->peer) == 0) return 0;
  if (nm_peerlist_upsert(&m->list, &c->peer) < 0) {
    nm_log_error("peer list full (%zu servants); %s not listed", m->list.count, s->name);
    return -1;
  }
  m->list.version++;
  return 1;
}

void mgr_publish_upsert(manager *m, mgr_session *s) {
  nm_delta_change c;
  if (mgr__list_upsert(m, s, &c) > 0) mgr_publish_change(m, &c);
}

void mgr_publish_join(manager *m, mgr_session *s) {
  nm_delta_change c;
  /* The newcomer is owed the whole list, which goes out at the window's end before the
   * delta that tells everyone else of the join: peers connect to it as soon as they read
   * the delta, and it can only accept a peer it knows. (A peer may still win the race on a
   * busy host; the servant holds an unknown peer-hello briefly.) */
  int changed = mgr__list_upsert(m, s, &c);
  mgr_publish_owe_list(m, s);
  if (changed > 0) mgr_publish_change(m, &c); /* a window of 0 serves it here */
  if (s->list_waiting && m->pub.npending == 0) mgr_publish_flush(m);
}

void mgr_publish_leave(manager *m, mgr_session *s, const char *reason) {
  if (nm_peerlist_remove(&m->list, s->id) < 0) return;
  m->stats.leaves++;
  nm_log_info("left: %s (%s) %s", s->name, s->id, reason ? reason : "");
  nm_delta_change c;
  memset(&c, 0, sizeof c);
  c.leave = 1;
  memcpy(c.peer.id, s->id, sizeof c.peer.id);
  m->list.version++;
  mgr_publish_change(m, &c);
}
