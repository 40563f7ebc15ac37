/* The servant's session with the connection manager: resolve (off the loop), connect,
 * hello, welcome, listen, heartbeat, keep the peer list current; on loss, reconnect with
 * backoff while chat with known peers goes on. */
#include "manager_link.h"
#include "inbound.h"
#include "peers.h"
#include "portmap.h"
#include "pull.h"
#include "servant.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SV_MGR_BACKOFF_FIRST_MS 250
#define SV_MGR_BACKOFF_MAX_MS 4000
#define SV_WELCOME_TIMEOUT_MS 10000

static void sv__mgr_resolve(servant *sv);

static void sv__mgr_retry_cb(uv_timer_t *t) { sv__mgr_resolve(t->data); }

static void sv__mgr_schedule_retry(servant *sv, const char *why) {
  sv_manager_link *l = &sv->mgr;
  l->state = SV_MGR_IDLE;
  if (sv->stopping) return;
  unsigned delay = nm_backoff_next(&l->backoff);
  /* Say it once per outage; the retries themselves are debug noise. */
  nm_log(l->backoff.failures == 1 ? NM_LOG_WARN : NM_LOG_DEBUG,
         "manager %s:%u unreachable (%s); retrying in %.2f s, chat with known peers goes on",
         sv->cfg.manager_host, sv->cfg.manager_port, why, delay / 1000.0);
  uv_timer_start(&l->retry, sv__mgr_retry_cb, delay, 0);
}

static void sv__mgr_send(servant *sv, uint8_t type, const char *payload, size_t len) {
  if (sv->mgr.conn && sv->mgr.state >= SV_MGR_HELLO_SENT)
    nm_conn_send(sv->mgr.conn, type, payload, len);
}

int sv_manager_registered(servant *sv) { return sv->mgr.state == SV_MGR_REGISTERED; }

const char *sv_manager_observed_ip(servant *sv) { return sv->mgr.observed_ip; }

nm_reach_state sv_manager_reach(servant *sv) { return sv->mgr.reach; }

static const char *const sv__complaint_names[] = {"refused", "timeout", "reset"};

void sv_manager_complain(servant *sv, const char *accused, nm_complaint_reason why) {
  char buf[96];
  int n = snprintf(buf, sizeof buf, "<complaint accused=\"%s\" reason=\"%s\"/>", accused, sv__complaint_names[why]);
  sv__mgr_send(sv, NM_MSG_COMPLAINT, buf, (size_t)n);
}

void sv_manager_report_mapping(servant *sv, const nm_msg_mapping *m) {
  char buf[200];
  int n;
  if (m->method != NM_MAPPING_NONE)
    n = snprintf(buf, sizeof buf, "<mapping method=\"%s\" ext-ip=\"%s\" ext-port=\"%u\" lease=\"%u\"/>",
                 nm_mapping_name(m->method), m->ext_ip, m->ext_port, m->lease_s);
  else
    n = snprintf(buf, sizeof buf, "<mapping method=\"none\"/>");
  sv__mgr_send(sv, NM_MSG_MAPPING, buf, (size_t)n);
}

static void sv__mgr_report_load(servant *sv) {
  nm_msg_relay_load load;
  if (!rl_load(&sv->relay, &load)) return;
  char buf[256];
  int n = snprintf(buf, sizeof buf,
                   "<relay-load clients=\"%llu\" attached=\"%llu\" max-clients=\"%llu\" bytes-in=\"%llu\" "
                   "bytes-out=\"%llu\" drops=\"%llu\"/>",
                   (unsigned long long)load.clients, (unsigned long long)load.attached,
                   (unsigned long long)load.max_clients, (unsigned long long)load.bytes_in,
                   (unsigned long long)load.bytes_out, (unsigned long long)load.drops);
  sv__mgr_send(sv, NM_MSG_RELAY_LOAD, buf, (size_t)n);
}

static void sv__mgr_heartbeat(uv_timer_t *t) {
  servant *sv = t->data;
  sv_manager_link *l = &sv->mgr;
  /* A manager whose host vanished never closes the session: TCP would keep retrying for
   * minutes. No ack for a whole timeout means it is gone; reconnect (chat goes on). */
  if (l->conn && l->timeout_s && sv_now_ms(sv) - l->last_heard_ms > (uint64_t)l->timeout_s * 1000) {
    char why[64];
    snprintf(why, sizeof why, "manager silent for %u s", l->timeout_s);
    nm_conn_close(l->conn, UV_ETIMEDOUT, why);
    return;
  }
  char hb[64];
  int n = snprintf(hb, sizeof hb, "<heartbeat version=\"%llu\"/>", (unsigned long long)l->list_version);
  sv__mgr_send(sv, NM_MSG_HEARTBEAT, hb, (size_t)n);
  sv__mgr_report_load(sv);
}

static void sv__mgr_send_listening(servant *sv, uint16_t port, uint16_t busy) {
  char buf[64];
  int n = busy ? snprintf(buf, sizeof buf, "<listening port=\"0\" busy=\"%u\"/>", busy)
               : snprintf(buf, sizeof buf, "<listening port=\"%u\"/>", port);
  sv__mgr_send(sv, NM_MSG_LISTENING, buf, (size_t)n);
}

static int sv__mgr_on_welcome(servant *sv, xmlNode *w) {
  sv_manager_link *l = &sv->mgr;
  unsigned port, hb, to;
  const char *ip = nm_xml_attr(w, "ip");
  if (nm_xml_attr_uint(w, "port", 1, 65535, &port) < 0 ||
      nm_xml_attr_uint(w, "heartbeat", 1, 3600, &hb) < 0 ||
      nm_xml_attr_uint(w, "timeout", 2, 36000, &to) < 0 || !ip || strlen(ip) >= sizeof l->observed_ip) {
    nm_conn_fail(l->conn, NM_EMSG, "welcome: missing or invalid port, heartbeat, timeout or ip");
    return 1;
  }
  snprintf(l->observed_ip, sizeof l->observed_ip, "%s", ip);
  nm_conn_deadline_clear(l->conn);
  sv_peers_set_timing(sv, hb, to);
  sv_inbound_set_timeout(sv, to);
  if (!sv_listening(sv)) {
    int rc = sv_listen(sv, (uint16_t)port);
    if (rc < 0) {
      if (sv->cfg.port) {
        nm_log_error("cannot listen on %s:%u: %s", sv->cfg.listen, port, uv_strerror(rc));
        sv->stopping = 1;
        uv_stop(sv->loop);
        return 1;
      }
      nm_log_info("assigned port %u is busy (%s); asking for another", port, uv_strerror(rc));
      sv__mgr_send_listening(sv, 0, (uint16_t)port);
      return 0;
    }
  }
  if (l->heartbeat_s != hb || !uv_is_active((uv_handle_t *)&l->heartbeat))
    uv_timer_start(&l->heartbeat, sv__mgr_heartbeat, hb * 1000, hb * 1000);
  l->heartbeat_s = hb;
  l->timeout_s = to;
  sv__mgr_send_listening(sv, sv_listen_port(sv), 0);
  return 0;
}

static void sv__mgr_request_list(servant *sv) { sv__mgr_send(sv, NM_MSG_PEERS_REQUEST, NULL, 0); }

static int sv__mgr_on_peers(servant *sv, xmlDoc *doc) {
  sv_manager_link *l = &sv->mgr;
  nm_peerlist list;
  nm_peerlist_init(&list);
  char err[300], me[NM_ID_LEN + 1];
  int rc = nm_peerlist_from_doc(doc, &list, me, err, sizeof err);
  if (rc < 0) {
    nm_peerlist_close(&list);
    nm_conn_fail(l->conn, rc, err);
    return 1;
  }
  int fresh = l->state != SV_MGR_REGISTERED;
  if (fresh) {
    l->state = SV_MGR_REGISTERED;
    nm_backoff_reset(&l->backoff);
    nm_log_info("registered as %s (%s), seen as %s, listening on %u", sv->cfg.name, sv->id,
                l->observed_ip, sv_listen_port(sv));
  }
  for (size_t i = 0; i < list.count; i++)
    if (strcmp(list.peers[i].id, sv->id) == 0) l->reach = list.peers[i].state;
  sv_peers_apply_full(sv, &list);
  if (fresh) sv_portmap_on_registered(sv, l->observed_ip, sv_listen_port(sv));
  l->list_version = list.version;
  l->have_list = 1;
  nm_log_info("peer list version %llu (%zu peers)", (unsigned long long)list.version, list.count);
  nm_peerlist_close(&list);
  return 0;
}

static int sv__mgr_on_delta(servant *sv, xmlNode *d) {
  sv_manager_link *l = &sv->mgr;
  unsigned long long base, version;
  const char *bs = nm_xml_attr(d, "base"), *vs = nm_xml_attr(d, "version");
  char *e1 = NULL, *e2 = NULL;
  if (bs) base = strtoull(bs, &e1, 10);
  if (vs) version = strtoull(vs, &e2, 10);
  if (!bs || !vs || *e1 || *e2 || !*bs || !*vs) {
    nm_conn_fail(l->conn, NM_EMSG, "delta: missing or invalid base or version");
    return 1;
  }
  if (!l->have_list || base != l->list_version) {
    /* We missed something: one full list puts us right. */
    sv__mgr_request_list(sv);
    return 0;
  }
  xmlNode *peer = nm_xml_child(d, "peer");
  xmlNode *leave = nm_xml_child(d, "leave");
  if (peer) {
    nm_peer p;
    char err[300];
    int rc = nm_peer_from_xml(peer, &p, err, sizeof err);
    if (rc < 0) {
      nm_conn_fail(l->conn, rc, err);
      return 1;
    }
    if (strcmp(p.id, sv->id) == 0 && p.state != l->reach) {
      nm_log_info("the manager now lists us as %s", nm_reach_name(p.state));
      l->reach = p.state;
    }
    sv_peers_upsert(sv, &p);
  } else if (leave) {
    const char *id = nm_xml_attr(leave, "id");
    if (!nm_id_valid(id)) {
      nm_conn_fail(l->conn, NM_EMSG, "delta: leave without a valid id");
      return 1;
    }
    sv_peers_remove(sv, id, "left the overlay");
  } else {
    nm_conn_fail(l->conn, NM_EMSG, "delta: neither <peer> nor <leave>");
    return 1;
  }
  l->list_version = version;
  nm_log_info("peer list version %llu (%zu peers)", version, sv_peers_count(sv) + 1);
  return 0;
}

static void sv__mgr_on_relay_assign(servant *sv, xmlNode *a) {
  nm_msg_relay_assign m;
  memset(&m, 0, sizeof m);
  const char *id = nm_xml_attr(a, "relay"), *name = nm_xml_attr(a, "name");
  const char *ip = nm_xml_attr(a, "ip"), *token = nm_xml_attr(a, "token");
  unsigned port = 0;
  if (!id || !*id) {
    m.release = 1;
  } else if (!nm_id_valid(id) || !nm_name_valid(name) || !ip || strlen(ip) >= sizeof m.ip || !token ||
             strlen(token) != 32 || nm_xml_attr_uint(a, "port", 1, 65535, &port) < 0) {
    nm_log_warn("ignoring a relay-assign with invalid fields");
    return;
  } else {
    strcpy(m.relay, id);
    strcpy(m.name, name);
    strcpy(m.ip, ip);
    strcpy(m.token, token);
    m.port = (uint16_t)port;
  }
  sv_pull_on_assign(sv, &m);
}

static void sv__mgr_on_relay_serve(servant *sv, xmlNode *serve) {
  static nm_msg_relay_serve m;
  m.count = 0;
  for (xmlNode *c = serve->children; c && m.count < NM_RELAY_CLIENTS_MAX; c = c->next) {
    if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "client") != 0) continue;
    const char *id = nm_xml_attr(c, "id"), *token = nm_xml_attr(c, "token");
    if (!nm_id_valid(id) || !token || strlen(token) != 32) continue;
    strcpy(m.clients[m.count].id, id);
    strcpy(m.clients[m.count].token, token);
    m.count++;
  }
  rl_serve(&sv->relay, m.clients, m.count);
}

static int sv__mgr_on_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  servant *sv = c->data;
  sv_manager_link *l = &sv->mgr;
  l->last_heard_ms = sv_now_ms(sv);
  xmlDoc *doc = NULL;
  char err[300];
  int rc = 0;
  if (len) {
    rc = nm_xml_parse(payload, len, &doc, err, sizeof err);
    if (rc < 0) {
      nm_conn_fail(c, rc, err);
      return 1;
    }
  }
  xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
  const char *expect = NULL;
  switch (type) {
  case NM_MSG_WELCOME: expect = "welcome"; break;
  case NM_MSG_PEERS: expect = "peers"; break;
  case NM_MSG_DELTA: expect = "delta"; break;
  case NM_MSG_HEARTBEAT_ACK: expect = "heartbeat-ack"; break;
  case NM_MSG_RELAY_ASSIGN: expect = "relay-assign"; break;
  case NM_MSG_RELAY_SERVE: expect = "relay-serve"; break;
  default: break;
  }
  if (!expect) {
    snprintf(err, sizeof err, "unexpected %s frame (0x%02x) from the manager", nm_msg_name(type), type);
    nm_conn_fail(c, NM_EFRAME_TYPE, err);
    rc = 1;
  } else if (!root || strcmp((const char *)root->name, expect) != 0) {
    snprintf(err, sizeof err, "%s frame without a <%s> document", nm_msg_name(type), expect);
    nm_conn_fail(c, NM_EMSG, err);
    rc = 1;
  } else if (type == NM_MSG_WELCOME) {
    rc = sv__mgr_on_welcome(sv, root);
  } else if (type == NM_MSG_PEERS) {
    rc = sv__mgr_on_peers(sv, doc);
  } else if (type == NM_MSG_DELTA) {
    rc = sv__mgr_on_delta(sv, root);
  } else if (type == NM_MSG_RELAY_ASSIGN) {
    sv__mgr_on_relay_assign(sv, root);
  } else if (type == NM_MSG_RELAY_SERVE) {
    sv__mgr_on_relay_serve(sv, root);
  } else if (type == NM_MSG_HEARTBEAT_ACK) {
    unsigned long long v = 0;
    const char *vs = nm_xml_attr(root, "version");
    if (vs) v = strtoull(vs, NULL, 10);
    if (l->state == SV_MGR_REGISTERED && v != l->list_version) sv__mgr_request_list(sv);
  }
  if (doc) xmlFreeDoc(doc);
  return rc || c->closing;
}

static void sv__mgr_closed(nm_conn *c) {
  servant *sv = c->data;
  if (sv->mgr.conn == c) {
    sv->mgr.conn = NULL;
    uv_timer_stop(&sv->mgr.heartbeat);
    sv__mgr_schedule_retry(sv, "session closed");
  }
  free(c);
}

static void sv__mgr_connected(nm_conn *c, int status) {
  servant *sv = c->data;
  if (status < 0) return; /* sv__mgr_closed schedules the retry */
  nm_frame_reader_set_max(&c->reader, NM_FRAME_MAX);
  sv->mgr.state = SV_MGR_HELLO_SENT;
  sv->mgr.last_heard_ms = sv_now_ms(sv);
  /* Until the welcome there is no heartbeat to notice a mute manager with. */
  nm_conn_deadline(c, SV_WELCOME_TIMEOUT_MS, "no welcome from the manager in time");
  char hello[160];
  int n = snprintf(hello, sizeof hello,
                   "<hello id=\"%s\" name=\"%s\" role=\"%s\" port=\"%u\" max-clients=\"%u\"/>",
                   sv->id, sv->cfg.name, nm_role_name(sv->cfg.role),
                   sv_listening(sv) ? sv_listen_port(sv) : sv->cfg.port, sv->cfg.max_clients);
  nm_conn_send(c, NM_MSG_HELLO, hello, (size_t)n);
  nm_log(sv->mgr.backoff.failures ? NM_LOG_INFO : NM_LOG_DEBUG, "connected to manager %s:%u",
         sv->cfg.manager_host, sv->cfg.manager_port);
}

static void sv__mgr_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  servant *sv = req->data;
  if (sv->stopping) {
    if (res) uv_freeaddrinfo(res);
    return;
  }
  if (status < 0) {
    sv__mgr_schedule_retry(sv, uv_strerror(status));
    return;
  }
  nm_conn *c = malloc(sizeof *c);
  if (!c) {
    uv_freeaddrinfo(res);
    return;
  }
  nm_conn_init(sv->loop, c, sv__mgr_on_frame, sv__mgr_closed, sv);
  nm_conn_set_label(c, "manager");
  sv->mgr.conn = c;
  sv->mgr.state = SV_MGR_CONNECTING;
  int rc = sv_bind_outgoing(sv, c);
  if (rc == 0) rc = nm_conn_connect(c, res->ai_addr, SV_CONNECT_TIMEOUT_MS, sv__mgr_connected);
  uv_freeaddrinfo(res);
  if (rc < 0) nm_conn_close(c, rc, NULL);
}

/* Name resolution runs on libuv's thread pool: a slow DNS server never stalls chat. */
static void sv__mgr_resolve(servant *sv) {
  if (sv->stopping) return;
  char port[8];
  snprintf(port, sizeof port, "%u", sv->cfg.manager_port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  sv->mgr.state = SV_MGR_RESOLVING;
  sv->mgr.gai.data = sv;
  int rc = uv_getaddrinfo(sv->loop, &sv->mgr.gai, sv__mgr_resolved, sv->cfg.manager_host, port, &hints);
  if (rc < 0) sv__mgr_schedule_retry(sv, uv_strerror(rc));
}

void sv_manager_start(servant *sv) {
  nm_backoff_init(&sv->mgr.backoff, SV_MGR_BACKOFF_FIRST_MS, SV_MGR_BACKOFF_MAX_MS, 0);
  uv_timer_init(sv->loop, &sv->mgr.retry);
  uv_timer_init(sv->loop, &sv->mgr.heartbeat);
  sv->mgr.retry.data = sv->mgr.heartbeat.data = sv;
  sv__mgr_resolve(sv);
}

void sv_manager_stop(servant *sv) {
  sv_manager_link *l = &sv->mgr;
  if (l->conn) {
    sv__mgr_send(sv, NM_MSG_BYE, NULL, 0);
    nm_conn_close(l->conn, 0, NULL);
  }
  if (l->state == SV_MGR_RESOLVING) uv_cancel((uv_req_t *)&l->gai);
  uv_close((uv_handle_t *)&l->retry, NULL);
  uv_close((uv_handle_t *)&l->heartbeat, NULL);
}
