/* natmesh-ctl's view of the overlay: every listed servant with its addresses, state and
 * how long ago it was heard from. It lists exactly the sessions that back the published
 * list, so the two always agree. */
#include "manager.h"
#include "complaints.h"
#include "relays.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_msg.h"
#include "nm_status.h"

#include <stdio.h>
#include <string.h>

static const char *mgr__name_of(manager *m, const char *id) {
  mgr_session *r = id[0] ? mgr_find_listed(m, id) : NULL;
  return r ? r->name : "";
}

static int mgr__status_fill(manager *m, nm_status *st) {
  uint64_t now = mgr_now_ms(m);
  st->version = m->list.version;
  st->heartbeat = m->cfg.heartbeat_s;
  st->timeout = m->cfg.timeout_s;
  for (mgr_session *s = m->sessions; s; s = s->next) {
    if (!mgr_session_listed(s)) continue;
    nm_status_servant *e = nm_status_add(st);
    if (!e) return -ENOMEM;
    nm_peer p;
    mgr_session_to_peer(s, &p);
    memcpy(e->id, s->id, sizeof e->id);
    snprintf(e->name, sizeof e->name, "%s", s->name);
    e->role = s->role;
    snprintf(e->ip, sizeof e->ip, "%s", s->conn.peer_ip);
    e->port = s->port;
    snprintf(e->dial_ip, sizeof e->dial_ip, "%s", p.ip);
    e->dial_port = p.port;
    e->state = s->reach;
    e->mapping = p.mapping;
    snprintf(e->ext_ip, sizeof e->ext_ip, "%s", s->ext_ip);
    e->ext_port = s->ext_port;
    memcpy(e->relay, s->relay_id, sizeof e->relay);
    snprintf(e->relay_name, sizeof e->relay_name, "%s", mgr__name_of(m, s->relay_id));
    e->last_heartbeat_ms = now - s->last_heard_ms;
    e->has_last_heartbeat = 1;
    e->connected_s = (now - s->connected_ms) / 1000;
    e->complaints = mgr_complaint_reporters(m, s);
    e->clients = mgr_relay_clients(m, s);
    e->max_clients = s->max_clients;
    e->attached = s->load_attached;
    e->bytes_in = s->load_bytes_in;
    e->bytes_out = s->load_bytes_out;
    e->drops = s->load_drops;
  }
  return 0;
}

void mgr_send_status(manager *m, mgr_session *asker) {
  nm_status st;
  nm_status_init(&st);
  int rc = mgr__status_fill(m, &st);
  if (rc == 0) {
    nm_msg msg = {.type = NM_MSG_STATUS};
    msg.u.status.status = &st;
    rc = nm_msg_send(&asker->conn, &msg);
  }
  if (rc < 0) nm_log_warn("cannot send status: %s", nm_strerror(rc));
  nm_status_close(&st);
}
