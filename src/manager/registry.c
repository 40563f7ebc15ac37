/* The registry: which servants are in the peer list, which ports they listen on, and the
 * publishing of every change to everyone as a delta. */
#include "manager.h"
#include "cands.h"
#include "neighbours.h"
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
  for (mgr_session *s = m->sessions; s; s = s->next)
    if (s->state == MGR_SESSION_REGISTERED && strcmp(s->id, id) == 0) return s;
  return NULL;
}

mgr_session *mgr_find_listed(manager *m, const char *id) {
  for (mgr_session *s = m->sessions; s; s = s->next)
    if (mgr_session_listed(s) && strcmp(s->id, id) == 0) return s;
  return NULL;
}

static int mgr__port_taken(manager *m, const char *ip, uint16_t port) {
  for (mgr_session *s = m->sessions; s; s = s->next)
    if (s->port == port && (s->state == MGR_SESSION_WELCOMED || mgr_session_listed(s)) &&
        strcmp(s->conn.peer_ip, ip) == 0)
      return 1;
  return 0;
}

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
    if (p != avoid && !mgr__port_taken(m, ip, (uint16_t)p)) return (uint16_t)p;
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

/* One encoding for everyone: the same delta goes to every registered session but except. */
static void mgr__broadcast(manager *m, const nm_msg *msg, const mgr_session *except) {
  nm_msgbuf buf;
  int rc = nm_msg_encode(msg, &buf);
  if (rc < 0) {
    nm_log_error("cannot encode a delta: %s", nm_strerror(rc));
    return;
  }
  for (mgr_session *s = m->sessions; s; s = s->next) {
    if (s == except || s->state != MGR_SESSION_REGISTERED) continue;
    rc = nm_conn_send(&s->conn, msg->type, buf.data, buf.len);
    if (rc < 0) nm_log_warn("cannot send delta to %s: %s", s->name, nm_strerror(rc));
  }
  nm_msgbuf_free(&buf);
}

void mgr_send_full_list(manager *m, mgr_session *s) {
  nm_msg msg = {.type = NM_MSG_PEERS};
  msg.u.peers.list = &m->list;
  memcpy(msg.u.peers.me, s->id, sizeof msg.u.peers.me);
  int rc = nm_msg_send(&s->conn, &msg);
  if (rc < 0) nm_log_warn("cannot send peer list to %s: %s", s->name, nm_strerror(rc));
}

/* Adds or updates s's entry and fills msg with the delta that says so. Returns 1 when the
 * list changed (the delta is due), 0 when nothing changed, -1 when the list is full. */
static int mgr__list_upsert(manager *m, mgr_session *s, nm_msg *msg) {
  memset(msg, 0, sizeof *msg);
  msg->type = NM_MSG_DELTA;
  nm_msg_delta *d = &msg->u.delta;
  mgr_session_to_peer(s, &d->peer);
  nm_peer *old = nm_peerlist_find(&m->list, s->id);
  if (old && memcmp(old, &d->peer, sizeof d->peer) == 0) return 0;
  if (nm_peerlist_upsert(&m->list, &d->peer) < 0) {
    nm_log_error("peer list full (%d servants); %s not listed", NM_PEERS_MAX, s->name);
    return -1;
  }
  d->base = m->list.version++;
  d->version = m->list.version;
  return 1;
}

void mgr_publish_upsert(manager *m, mgr_session *s) {
  nm_msg msg;
  if (mgr__list_upsert(m, s, &msg) > 0) mgr__broadcast(m, &msg, NULL);
}

void mgr_publish_join(manager *m, mgr_session *s) {
  nm_msg msg;
  int changed = mgr__list_upsert(m, s, &msg);
  /* The newcomer's whole list goes out before anyone hears of the join: peers connect to it
   * as soon as they read the delta, and it can only accept a peer it knows. (A peer may
   * still win the race on a busy host; the servant holds an unknown peer-hello briefly.) */
  mgr_send_full_list(m, s);
  if (changed > 0) mgr__broadcast(m, &msg, s);
  if (changed >= 0) mgr_neighbours_joined(m, s); /* listed: a node of the mesh */
}

void mgr_publish_leave(manager *m, mgr_session *s, const char *reason) {
  if (nm_peerlist_remove(&m->list, s->id) < 0) return;
  m->stats.leaves++;
  nm_log_info("left: %s (%s) %s", s->name, s->id, reason ? reason : "");
  nm_msg msg = {.type = NM_MSG_DELTA};
  nm_msg_delta *d = &msg.u.delta;
  d->leave = 1;
  memcpy(d->leave_id, s->id, sizeof d->leave_id);
  d->base = m->list.version++;
  d->version = m->list.version;
  mgr__broadcast(m, &msg, s);
  mgr_neighbours_left(m, s);
}
