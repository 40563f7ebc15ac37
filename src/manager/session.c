/* One session per connected servant, relay or natmesh-ctl: the frame dispatcher and the
 * small steps it fans out to. */
#include "manager.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_peerlist.h"
#include "nm_xml.h"
#include "complaints.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void mgr__session_closed(nm_conn *c) {
  mgr_session *s = c->data;
  manager *m = s->mgr;
  if (s->state == MGR_SESSION_REGISTERED) {
    /* Unregister first so the leave is not sent to the servant that left. */
    s->state = MGR_SESSION_NEW;
    mgr_publish_leave(m, s, "session closed");
    mgr_relays_on_leave(m, s);
  }
  if (s->prev) s->prev->next = s->next;
  else m->sessions = s->next;
  if (s->next) s->next->prev = s->prev;
  m->nsessions--;
  free(s->complaints);
  free(s);
}

void mgr_session_drop(mgr_session *s, const char *reason) {
  if (s->state == MGR_SESSION_REGISTERED) {
    s->state = MGR_SESSION_NEW;
    mgr_publish_leave(s->mgr, s, reason);
    mgr_relays_on_leave(s->mgr, s);
  }
  nm_conn_close(&s->conn, 0, reason);
}

static void mgr__send_welcome(mgr_session *s) {
  manager *m = s->mgr;
  xmlDoc *doc = xmlNewDoc(BAD_CAST "1.0");
  xmlNode *w = xmlNewNode(NULL, BAD_CAST "welcome");
  xmlDocSetRootElement(doc, w);
  char port[8], hb[16], to[16];
  snprintf(port, sizeof port, "%u", s->port);
  snprintf(hb, sizeof hb, "%u", m->cfg.heartbeat_s);
  snprintf(to, sizeof to, "%u", m->cfg.timeout_s);
  xmlNewProp(w, BAD_CAST "id", BAD_CAST s->id);
  xmlNewProp(w, BAD_CAST "ip", BAD_CAST s->conn.peer_ip);
  xmlNewProp(w, BAD_CAST "port", BAD_CAST port);
  xmlNewProp(w, BAD_CAST "heartbeat", BAD_CAST hb);
  xmlNewProp(w, BAD_CAST "timeout", BAD_CAST to);
  nm_conn_send_doc(&s->conn, NM_MSG_WELCOME, doc);
  xmlFreeDoc(doc);
}

/* Gives s a port (its own, or the next free one) and welcomes it. */
static int mgr__welcome(mgr_session *s, uint16_t wanted) {
  if (wanted == 0) {
    wanted = mgr_assign_port(s->mgr, s->conn.peer_ip, s->last_busy);
    if (wanted == 0) {
      nm_conn_fail(&s->conn, -ENOSPC, "no free port left in the manager's range");
      return -1;
    }
  }
  s->port = wanted;
  s->state = MGR_SESSION_WELCOMED;
  mgr__send_welcome(s);
  return 0;
}

static int mgr__on_hello(mgr_session *s, const char *payload, size_t len) {
  xmlDoc *doc;
  xmlNode *h = nm_conn_parse_doc(&s->conn, payload, len, "hello", &doc);
  if (!h) return 1;
  const char *id = nm_xml_attr(h, "id");
  const char *name = nm_xml_attr(h, "name");
  const char *role = nm_xml_attr(h, "role");
  unsigned port = 0;
  const char *bad = NULL;
  if (!nm_id_valid(id)) bad = "hello: missing or invalid id";
  else if (!nm_name_valid(name)) bad = "hello: missing or invalid name";
  else if (role && nm_role_parse(role, &s->role) < 0)
    bad = "hello: role must be servant or relay";
  else if (nm_xml_attr_uint(h, "port", 0, 65535, &port) < 0) bad = "hello: missing or invalid port";
  if (bad) {
    xmlFreeDoc(doc);
    nm_conn_fail(&s->conn, NM_EMSG, bad);
    return 1;
  }
  strcpy(s->id, id);
  strcpy(s->name, name);
  unsigned max_clients = 8;
  nm_xml_attr_uint(h, "max-clients", 0, 256, &max_clients);
  s->max_clients = max_clients;
  xmlFreeDoc(doc);

  /* A servant that reconnects before we noticed its old session die replaces it; its
   * list entry is taken over, so peers see an update rather than a leave and a join. */
  mgr_session *old = mgr_find_registered(s->mgr, s->id);
  if (old && old != s) {
    old->state = MGR_SESSION_NEW;
    nm_conn_close(&old->conn, 0, "replaced by a new session of the same servant");
  }
  nm_conn_set_label(&s->conn, "%s %s", nm_role_name(s->role), s->name);
  nm_frame_reader_set_max(&s->conn.reader, NM_FRAME_MAX);
  nm_log_info("hello from %s (%s) at %s:%u, %s", s->name, s->id, s->conn.peer_ip,
              s->conn.peer_port, port ? "has its own port" : "asks for a port");
  mgr__welcome(s, (uint16_t)port);
  return s->conn.closing;
}

static int mgr__on_listening(mgr_session *s, const char *payload, size_t len) {
  xmlDoc *doc;
  xmlNode *l = nm_conn_parse_doc(&s->conn, payload, len, "listening", &doc);
  if (!l) return 1;
  unsigned port = 0, busy = 0;
  int rc = nm_xml_attr_uint(l, "port", 0, 65535, &port);
  nm_xml_attr_uint(l, "busy", 1, 65535, &busy);
  xmlFreeDoc(doc);
  if (rc < 0) {
    nm_conn_fail(&s->conn, NM_EMSG, "listening: missing or invalid port");
    return 1;
  }
  if (port == 0) {
    /* The servant could not bind the port we gave it: try the next one. */
    nm_log_info("%s cannot bind port %u; assigning another", s->name, busy);
    s->last_busy = (uint16_t)busy;
    s->port = 0;
    return mgr__welcome(s, 0) < 0;
  }
  s->port = (uint16_t)port;
  if (s->reach == NM_REACH_UNKNOWN) s->reach = NM_REACH_DIRECT;
  nm_log_info("joined: %s (%s) at %s:%u", s->name, s->id, s->conn.peer_ip, s->port);
  /* Everyone else hears of the join as a delta; the newcomer gets the whole list, which
   * already contains it. */
  mgr_publish_upsert(s->mgr, s);
  s->state = MGR_SESSION_REGISTERED;
  mgr_send_full_list(s->mgr, s);
  mgr_relays_on_join(s->mgr, s);
  return s->conn.closing;
}

static int mgr__on_heartbeat(mgr_session *s, const char *payload, size_t len) {
  /* The servant's version is informational; it compares the ack with what it holds. */
  char ack[64];
  int n = snprintf(ack, sizeof ack, "<heartbeat-ack version=\"%llu\"/>",
                   (unsigned long long)s->mgr->list.version);
  nm_conn_send(&s->conn, NM_MSG_HEARTBEAT_ACK, ack, (size_t)n);
  return 0;
}

static int mgr__on_mapping(mgr_session *s, const char *payload, size_t len) {
  xmlDoc *doc;
  xmlNode *mp = nm_conn_parse_doc(&s->conn, payload, len, "mapping", &doc);
  if (!mp) return 1;
  const char *method = nm_xml_attr(mp, "method");
  const char *ext_ip = nm_xml_attr(mp, "ext-ip");
  unsigned ext_port = 0;
  nm_xml_attr_uint(mp, "ext-port", 0, 65535, &ext_port);
  nm_mapping_kind kind;
  if (nm_mapping_parse(method, &kind) < 0) {
    xmlFreeDoc(doc);
    nm_conn_fail(&s->conn, NM_EMSG, "mapping: invalid method");
    return 1;
  }
  unsigned char addr[16];
  int usable = kind != NM_MAPPING_NONE && ext_ip && ext_port &&
               uv_inet_pton(AF_INET, ext_ip, addr) == 0;
  s->mapping = kind;
  snprintf(s->ext_ip, sizeof s->ext_ip, "%s", usable ? ext_ip : "");
  s->ext_port = usable ? (uint16_t)ext_port : 0;
  xmlFreeDoc(doc); /* method and ext_ip point into it: use s->mapping and s->ext_ip below */
  /* Double NAT: the router's external address is not the one we see, so the mapping only
   * opens the inner router. Record the method but do not advertise it as reachable. */
  if (usable && strcmp(s->ext_ip, s->conn.peer_ip) != 0) {
    nm_log_warn("%s mapped %s:%u by %s, but its traffic comes from %s: double NAT, not "
                "advertised as reachable",
                s->name, s->ext_ip, s->ext_port, nm_mapping_name(s->mapping), s->conn.peer_ip);
    s->ext_ip[0] = 0;
    s->ext_port = 0;
    usable = 0;
  }
  if (usable) {
    nm_log_info("%s reachable by %s mapping at %s:%u", s->name, nm_mapping_name(s->mapping), s->ext_ip, s->ext_port);
    mgr_relay_release(s->mgr, s);
    s->reach = NM_REACH_MAPPED;
  } else if (s->reach == NM_REACH_MAPPED) {
    s->reach = NM_REACH_DIRECT;
  }
  if (s->state == MGR_SESSION_REGISTERED) mgr_publish_upsert(s->mgr, s);
  return 0;
}

static int mgr__on_frame_new(mgr_session *s, uint8_t type, const char *payload, size_t len) {
  switch (type) {
  case NM_MSG_HELLO: return mgr__on_hello(s, payload, len);
  case NM_MSG_STATUS_REQUEST:
    s->state = MGR_SESSION_CTL;
    nm_conn_set_label(&s->conn, "ctl");
    mgr_send_status(s->mgr, s);
    return 0;
  default: {
    char why[80];
    snprintf(why, sizeof why, "expected hello, got %s (0x%02x)", nm_msg_name(type), type);
    nm_conn_fail(&s->conn, NM_EMSG, why);
    return 1;
  }
  }
}

static int mgr__on_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  mgr_session *s = c->data;
  s->last_heard_ms = mgr_now_ms(s->mgr);
  if (s->state == MGR_SESSION_NEW) return mgr__on_frame_new(s, type, payload, len);
  if (s->state == MGR_SESSION_CTL) {
    if (type == NM_MSG_STATUS_REQUEST) {
      mgr_send_status(s->mgr, s);
      return 0;
    }
    nm_conn_fail(c, NM_EMSG, "a ctl session may only ask for status");
    return 1;
  }
  switch (type) {
  case NM_MSG_LISTENING: return mgr__on_listening(s, payload, len);
  case NM_MSG_HEARTBEAT: return mgr__on_heartbeat(s, payload, len);
  case NM_MSG_BYE:
    mgr_session_drop(s, "said bye");
    return 1;
  case NM_MSG_STATUS_REQUEST: mgr_send_status(s->mgr, s); return 0;
  case NM_MSG_HELLO:
    nm_conn_fail(c, NM_EMSG, "hello sent twice");
    return 1;
  default: break;
  }
  if (s->state != MGR_SESSION_REGISTERED) {
    char why[80];
    snprintf(why, sizeof why, "%s before listening", nm_msg_name(type));
    nm_conn_fail(c, NM_EMSG, why);
    return 1;
  }
  switch (type) {
  case NM_MSG_PEERS_REQUEST: mgr_send_full_list(s->mgr, s); return 0;
  case NM_MSG_MAPPING: return mgr__on_mapping(s, payload, len);
  case NM_MSG_COMPLAINT: return mgr_on_complaint(s, payload, len);
  case NM_MSG_RELAY_LOAD: return mgr_on_relay_load(s, payload, len);
  default: {
    char why[80];
    snprintf(why, sizeof why, "unexpected frame type 0x%02x", type);
    nm_conn_fail(c, NM_EFRAME_TYPE, why);
    return 1;
  }
  }
}

void mgr_on_connection(uv_stream_t *server, int status) {
  manager *m = server->data;
  if (status < 0) {
    nm_log_warn("accept: %s", uv_strerror(status));
    return;
  }
  mgr_session *s = calloc(1, sizeof *s);
  if (!s) return;
  s->mgr = m;
  nm_conn_init(m->loop, &s->conn, mgr__on_frame, mgr__session_closed, s);
  s->next = m->sessions;
  if (m->sessions) m->sessions->prev = s;
  m->sessions = s;
  m->nsessions++;
  s->connected_ms = s->last_heard_ms = mgr_now_ms(m);
  int rc = nm_conn_accept(server, &s->conn);
  if (rc < 0) {
    nm_conn_close(&s->conn, rc, "accept failed");
    return;
  }
  nm_log_info("connection from %s:%u", s->conn.peer_ip, s->conn.peer_port);
  if (m->nsessions > MGR_SESSIONS_MAX) nm_conn_fail(&s->conn, -EMFILE, "too many sessions");
}
