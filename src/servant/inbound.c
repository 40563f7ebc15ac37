/* The listening side: peers connect here to publish to us. Each connection is checked
 * against the ban list (address at once, reverse name off the loop), must introduce itself
 * with peer-hello (then it carries chat) or pull (then relay duty has it). */
#include "inbound.h"
#include "chat.h"
#include "peers.h"
#include "servant.h"
#include "nm_error.h"
#include "nm_log.h"

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

static int sv__in_on_peer_hello(void *session, const nm_msg *m) {
  sv_in *in = session;
  nm_conn_set_label(&in->conn, "peer %s (inbound)", m->u.peer_hello.name);
  nm_frame_reader_set_max(&in->conn.reader, NM_FRAME_MAX);
  in->state = SV_IN_PEER;
  nm_conn_deadline_clear(&in->conn);
  return 0;
}

/* A relay client: relay duty checks the assignment and takes over sending. */
static int sv__in_on_pull(void *session, const nm_msg *m) {
  sv_in *in = session;
  char err[200];
  const nm_msg_pull *p = &m->u.pull;
  int rc = rl_attach(&in->sv->relay, &in->client, &in->conn, p->id, p->token, sv_peer_name(in->sv, p->id), err,
                     sizeof err);
  if (rc < 0) {
    nm_conn_fail(&in->conn, rc, err);
    return 1;
  }
  in->state = SV_IN_PULLING;
  return 0;
}

static int sv__in_on_chat(void *session, const nm_msg *m) {
  sv_in *in = session;
  sv_chat_receive(in->sv, &m->u.chat);
  return 0;
}

static const char *const sv__in_state_names[] = {
    [SV_IN_NEW] = "waiting for peer-hello or pull",
    [SV_IN_PEER] = "a peer",
    [SV_IN_PULLING] = "pulling",
};

/* A connection says what it is first (a peer, or a relay client); a peer then publishes
 * chat; a relay client says nothing more (relay duty's own table refuses anything). */
static const nm_dispatch_entry sv__in_rows[] = {
    {NM_MSG_PEER_HELLO, SV_IN_NEW, SV_IN_NEW, sv__in_on_peer_hello},
    {NM_MSG_PULL, SV_IN_NEW, SV_IN_NEW, sv__in_on_pull},
    {NM_MSG_CHAT, SV_IN_PEER, SV_IN_PEER, sv__in_on_chat},
};

static const nm_dispatch_table sv__in_table = {
    .endpoint = "inbound peer connection",
    .rows = sv__in_rows,
    .count = sizeof sv__in_rows / sizeof *sv__in_rows,
    .state_names = sv__in_state_names,
    .nstates = sizeof sv__in_state_names / sizeof *sv__in_state_names,
};

static int sv__in_on_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  sv_in *in = c->data;
  if (in->state == SV_IN_PULLING) return rl_client_on_frame(&in->sv->relay, &in->client, type, payload, len);
  return nm_dispatch(&sv__in_table, c, in, (int)in->state, type, payload, len);
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
