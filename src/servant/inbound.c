/* The listening side: peers connect here to publish to us. Each connection is checked
 * against the ban list (address at once, reverse name off the loop), must introduce itself
 * with peer-hello (then it carries chat) or pull (then relay duty has it). */
#include "inbound.h"
#include "chat.h"
#include "peers.h"
#include "servant.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void sv__in_free_if_done(sv_in *in) {
  if (in->closed && !in->resolving) free(in);
}

static void sv__in_closed(nm_conn *c) {
  sv_in *in = c->data;
  servant *sv = in->sv;
  rl_detach(&sv->relay, &in->client);
  if (in->prev) in->prev->next = in->next;
  else sv->inbound.head = in->next;
  if (in->next) in->next->prev = in->prev;
  sv->inbound.count--;
  in->closed = 1;
  sv__in_free_if_done(in);
}

static int sv__in_on_peer_hello(sv_in *in, const char *payload, size_t len) {
  xmlDoc *doc;
  xmlNode *h = nm_conn_parse_doc(&in->conn, payload, len, "peer-hello", &doc);
  if (!h) return 1;
  const char *id = nm_xml_attr(h, "id");
  const char *name = nm_xml_attr(h, "name");
  if (!nm_id_valid(id) || !nm_name_valid(name)) {
    xmlFreeDoc(doc);
    nm_conn_fail(&in->conn, NM_EMSG, "peer-hello: missing or invalid id or name");
    return 1;
  }
  nm_conn_set_label(&in->conn, "peer %s (inbound)", name);
  nm_frame_reader_set_max(&in->conn.reader, NM_FRAME_MAX);
  in->state = SV_IN_PEER;
  nm_conn_deadline_clear(&in->conn);
  xmlFreeDoc(doc);
  return 0;
}

static int sv__in_on_pull(sv_in *in, const char *payload, size_t len) {
  char err[200];
  xmlDoc *doc;
  int rc = nm_xml_parse(payload, len, &doc, err, sizeof err);
  if (rc < 0) {
    nm_conn_fail(&in->conn, rc, err);
    return 1;
  }
  xmlNode *p = xmlDocGetRootElement(doc);
  const char *id = nm_xml_attr(p, "id"), *token = nm_xml_attr(p, "token");
  if (strcmp((const char *)p->name, "pull") != 0) id = NULL;
  rc = rl_attach(&in->sv->relay, &in->client, &in->conn, id, token,
                 nm_id_valid(id) ? sv_peer_name(in->sv, id) : NULL, err, sizeof err);
  xmlFreeDoc(doc);
  if (rc < 0) {
    nm_conn_fail(&in->conn, rc, err);
    return 1;
  }
  in->state = SV_IN_PULLING;
  return 0;
}

static int sv__in_on_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  sv_in *in = c->data;
  if (in->state == SV_IN_NEW) {
    if (type == NM_MSG_PEER_HELLO) return sv__in_on_peer_hello(in, payload, len);
    if (type == NM_MSG_PULL) return sv__in_on_pull(in, payload, len);
    char why[80];
    snprintf(why, sizeof why, "expected peer-hello, got %s (0x%02x)", nm_msg_name(type), type);
    nm_conn_fail(c, NM_EMSG, why);
    return 1;
  }
  if (in->state == SV_IN_PEER && type == NM_MSG_CHAT) {
    char err[300];
    int rc = sv_chat_receive(in->sv, payload, len, err, sizeof err);
    if (rc < 0) {
      nm_conn_fail(c, rc, err);
      return 1;
    }
    return 0;
  }
  char why[80];
  snprintf(why, sizeof why, "unexpected frame type 0x%02x", type);
  nm_conn_fail(c, NM_EFRAME_TYPE, why);
  return 1;
}

static void sv__in_on_name(uv_getnameinfo_t *req, int status, const char *host, const char *svc) {
  sv_in *in = req->data;
  in->resolving = 0;
  if (in->closed) {
    sv__in_free_if_done(in);
    return;
  }
  if (status == 0 && nm_banlist_match(&in->sv->cfg.bans, NULL, host)) {
    nm_log_info("refused connection from %s (%s): banned name", in->conn.peer_ip, host);
    nm_conn_close(&in->conn, 0, NULL);
    return;
  }
  nm_conn_resume(&in->conn);
}

static void sv__on_connection(uv_stream_t *server, int status) {
  servant *sv = server->data;
  sv_inbound *ib = &sv->inbound;
  if (status < 0) {
    nm_log_warn("accept: %s", uv_strerror(status));
    return;
  }
  sv_in *in = calloc(1, sizeof *in);
  if (!in) return;
  in->sv = sv;
  nm_conn_init(sv->loop, &in->conn, sv__in_on_frame, sv__in_closed, in);
  nm_conn_set_label(&in->conn, "peer (inbound)");
  in->next = ib->head;
  if (ib->head) ib->head->prev = in;
  ib->head = in;
  ib->count++;
  int rc = nm_conn_accept(server, &in->conn);
  if (rc < 0) {
    nm_conn_close(&in->conn, rc, "accept failed");
    return;
  }
  /* A connection must introduce itself promptly (peer-hello or pull). */
  nm_conn_deadline(&in->conn, ib->hello_timeout_ms ? ib->hello_timeout_ms : 15000, "no peer-hello in time");
  if (ib->count > SV_INBOUND_MAX) {
    /* A flood of connections must not exhaust descriptors: refuse, and say so once. */
    if (!ib->full_logged)
      nm_log_warn("%d inbound connections open: refusing more (from %s)", SV_INBOUND_MAX, in->conn.peer_ip);
    ib->full_logged = 1;
    nm_conn_close(&in->conn, 0, NULL);
    return;
  }
  ib->full_logged = 0;
  if (nm_banlist_match(&sv->cfg.bans, in->conn.peer_ip, NULL)) {
    nm_log_info("refused connection from %s: banned address", in->conn.peer_ip);
    nm_conn_close(&in->conn, 0, NULL);
    return;
  }
  if (!sv->has_name_bans) return;
  /* Hold the data until we know the peer's name is not banned. */
  nm_conn_pause(&in->conn);
  struct sockaddr_storage addr;
  int alen = sizeof addr;
  uv_tcp_getpeername(&in->conn.tcp, (struct sockaddr *)&addr, &alen);
  in->name_req.data = in;
  in->resolving = 1;
  if (uv_getnameinfo(sv->loop, &in->name_req, sv__in_on_name, (struct sockaddr *)&addr,
                     NI_NAMEREQD) < 0) {
    in->resolving = 0;
    nm_conn_resume(&in->conn);
  }
}

static void sv__free_handle(uv_handle_t *h) { free(h); }

int sv_listen(servant *sv, uint16_t port) {
  struct sockaddr_storage addr;
  int rc = uv_ip4_addr(sv->cfg.listen, port, (struct sockaddr_in *)&addr);
  if (rc < 0) rc = uv_ip6_addr(sv->cfg.listen, port, (struct sockaddr_in6 *)&addr);
  if (rc < 0) return rc;
  uv_tcp_t *l = malloc(sizeof *l);
  if (!l) return UV_ENOMEM;
  uv_tcp_init(sv->loop, l);
  l->data = sv;
  rc = uv_tcp_bind(l, (struct sockaddr *)&addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)l, 128, sv__on_connection);
  if (rc < 0) {
    uv_close((uv_handle_t *)l, sv__free_handle);
    return rc;
  }
  sv->inbound.listener = l;
  sv->inbound.port = port;
  nm_log_info("listening for peers on %s:%u", sv->cfg.listen, port);
  return 0;
}

int sv_listening(servant *sv) { return sv->inbound.listener != NULL; }

uint16_t sv_listen_port(servant *sv) { return sv->inbound.port; }

void sv_inbound_set_timeout(servant *sv, unsigned timeout_s) { sv->inbound.hello_timeout_ms = timeout_s * 1000; }

void sv_inbound_close(servant *sv) {
  if (sv->inbound.listener) uv_close((uv_handle_t *)sv->inbound.listener, sv__free_handle);
  sv->inbound.listener = NULL;
  for (sv_in *in = sv->inbound.head; in; in = in->next) nm_conn_close(&in->conn, 0, NULL);
}
