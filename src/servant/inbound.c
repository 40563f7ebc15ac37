/* The listening side: peers connect here to publish to us. Each connection is checked
 * against the ban list (address at once, reverse name off the loop), must introduce itself
 * with peer-hello, and then carries chat. */
#include "servant.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sv_ip_banned(servant *sv, const char *ip) { return nm_banlist_match(&sv->cfg.bans, ip, NULL); }

static void sv__in_free_if_done(sv_in *in) {
  if (in->closed && !in->resolving) free(in);
}

static void sv__in_closed(nm_conn *c) {
  sv_in *in = c->data;
  servant *sv = in->sv;
  if (in->puller) sv_relay_detach(sv, in);
  if (in->prev) in->prev->next = in->next;
  else sv->inbound = in->next;
  if (in->next) in->next->prev = in->prev;
  sv->ninbound--;
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
  in->identified = 1;
  nm_conn_deadline_clear(&in->conn);
  xmlFreeDoc(doc);
  return 0;
}

static int sv__in_on_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  sv_in *in = c->data;
  if (!in->identified) {
    if (type == NM_MSG_PEER_HELLO) return sv__in_on_peer_hello(in, payload, len);
    if (type == NM_MSG_PULL) {
      char err[200];
      int rc = sv_relay_attach(in->sv, in, payload, len, err, sizeof err);
      if (rc < 0) {
        nm_conn_fail(c, rc, err);
        return 1;
      }
      return 0;
    }
    char why[80];
    snprintf(why, sizeof why, "expected peer-hello, got %s (0x%02x)", nm_msg_name(type), type);
    nm_conn_fail(c, NM_EMSG, why);
    return 1;
  }
  if (type == NM_MSG_CHAT) {
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
  if (status < 0) {
    nm_log_warn("accept: %s", uv_strerror(status));
    return;
  }
  sv_in *in = calloc(1, sizeof *in);
  if (!in) return;
  in->sv = sv;
  nm_conn_init(sv->loop, &in->conn, sv__in_on_frame, sv__in_closed, in);
  nm_conn_set_label(&in->conn, "peer (inbound)");
  in->next = sv->inbound;
  if (sv->inbound) sv->inbound->prev = in;
  sv->inbound = in;
  sv->ninbound++;
  int rc = nm_conn_accept(server, &in->conn);
  if (rc < 0) {
    nm_conn_close(&in->conn, rc, "accept failed");
    return;
  }
  /* A connection must introduce itself promptly (peer-hello or pull). */
  unsigned hello_ms = (sv->mgr.timeout_s ? sv->mgr.timeout_s : 15) * 1000;
  nm_conn_deadline(&in->conn, hello_ms, "no peer-hello in time");
  if (sv->ninbound > SV_INBOUND_MAX) {
    /* A flood of connections must not exhaust descriptors: refuse, and say so once. */
    if (!sv->inbound_full_logged)
      nm_log_warn("%d inbound connections open: refusing more (from %s)", SV_INBOUND_MAX, in->conn.peer_ip);
    sv->inbound_full_logged = 1;
    nm_conn_close(&in->conn, 0, NULL);
    return;
  }
  sv->inbound_full_logged = 0;
  if (sv_ip_banned(sv, in->conn.peer_ip)) {
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
  sv->listener = l;
  sv->port = port;
  nm_log_info("listening for peers on %s:%u", sv->cfg.listen, port);
  return 0;
}

void sv_inbound_close(servant *sv) {
  if (sv->listener) uv_close((uv_handle_t *)sv->listener, sv__free_handle);
  sv->listener = NULL;
  for (sv_in *in = sv->inbound; in; in = in->next) nm_conn_close(&in->conn, 0, NULL);
}
