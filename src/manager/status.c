/* natmesh-ctl's view of the overlay: every listed servant with its addresses, state and
 * how long ago it was heard from. It lists exactly the sessions that back the published
 * list, so the two always agree. */
#include "manager.h"
#include "complaints.h"
#include "relays.h"
#include "nm_log.h"

#include <stdio.h>
#include <string.h>

static void mgr__prop_u(xmlNode *n, const char *name, unsigned long long v) {
  char buf[24];
  snprintf(buf, sizeof buf, "%llu", v);
  xmlNewProp(n, BAD_CAST name, BAD_CAST buf);
}

static const char *mgr__name_of(manager *m, const char *id) {
  mgr_session *r = id[0] ? mgr_find_listed(m, id) : NULL;
  return r ? r->name : "";
}

void mgr_send_status(manager *m, mgr_session *asker) {
  uint64_t now = mgr_now_ms(m);
  xmlDoc *doc = xmlNewDoc(BAD_CAST "1.0");
  xmlNode *root = xmlNewNode(NULL, BAD_CAST "status");
  xmlDocSetRootElement(doc, root);
  mgr__prop_u(root, "version", m->list.version);
  mgr__prop_u(root, "heartbeat", m->cfg.heartbeat_s);
  mgr__prop_u(root, "timeout", m->cfg.timeout_s);
  size_t count = 0;
  for (mgr_session *s = m->sessions; s; s = s->next) {
    if (!mgr_session_listed(s)) continue;
    count++;
    nm_peer p;
    mgr_session_to_peer(s, &p);
    xmlNode *n = xmlNewChild(root, NULL, BAD_CAST "servant", NULL);
    xmlNewProp(n, BAD_CAST "id", BAD_CAST s->id);
    xmlNewProp(n, BAD_CAST "name", BAD_CAST s->name);
    xmlNewProp(n, BAD_CAST "role", BAD_CAST nm_role_name(s->role));
    xmlNewProp(n, BAD_CAST "ip", BAD_CAST s->conn.peer_ip);
    mgr__prop_u(n, "port", s->port);
    xmlNewProp(n, BAD_CAST "dial-ip", BAD_CAST p.ip);
    mgr__prop_u(n, "dial-port", p.port);
    xmlNewProp(n, BAD_CAST "state", BAD_CAST nm_reach_name(s->reach));
    xmlNewProp(n, BAD_CAST "mapping", BAD_CAST nm_mapping_name(p.mapping));
    xmlNewProp(n, BAD_CAST "ext-ip", BAD_CAST s->ext_ip);
    mgr__prop_u(n, "ext-port", s->ext_port);
    xmlNewProp(n, BAD_CAST "relay", BAD_CAST s->relay_id);
    xmlNewProp(n, BAD_CAST "relay-name", BAD_CAST mgr__name_of(m, s->relay_id));
    mgr__prop_u(n, "last-heartbeat-ms", now - s->last_heard_ms);
    mgr__prop_u(n, "connected-s", (now - s->connected_ms) / 1000);
    mgr__prop_u(n, "complaints", mgr_complaint_reporters(m, s));
    mgr__prop_u(n, "clients", mgr_relay_clients(m, s));
    mgr__prop_u(n, "max-clients", s->max_clients);
    mgr__prop_u(n, "attached", s->load_attached);
    mgr__prop_u(n, "bytes-in", s->load_bytes_in);
    mgr__prop_u(n, "bytes-out", s->load_bytes_out);
    mgr__prop_u(n, "drops", s->load_drops);
  }
  mgr__prop_u(root, "servants", count);
  int rc = nm_conn_send_doc(&asker->conn, NM_MSG_STATUS, doc);
  xmlFreeDoc(doc);
  if (rc < 0) nm_log_warn("cannot send status: %s", uv_strerror(rc));
}
