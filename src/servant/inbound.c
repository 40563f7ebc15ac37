/* The listening side: see inbound.h. TLS first (any key), then one frame that says who the
 * connection is, bound to the key it proved. */
#include "inbound.h"
#include "chat.h"
#include "peers.h"
#include "servant.h"
#include "nm_addr.h"
#include "nm_error.h"
#include "nm_log.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

static void sv__in_free_if_done(sv_in *in) {
  if (in->closed && !in->resolving) free(in);
}

/* The connection is identified (or gone): its addrlimit slot goes back, exactly once. */
static void sv__in_release_slot(sv_in *in) {
  if (!in->holds_slot) return;
  in->holds_slot = 0;
  nm_addrlimit_release(&in->sv->inbound.unauth, in->conn.peer_ip);
}

static void sv__in_closed(nm_conn *c) {
  sv_in *in = c->data;
  servant *sv = in->sv;
  rl_detach(&sv->relay, &in->client);
  if (in->state == SV_IN_PEER) sv_peers_inbound_down(sv, in->id, c);
  sv__in_release_slot(in);
  if (in->prev) in->prev->next = in->next;
  else sv->inbound.head = in->next;
  if (in->next) in->next->prev = in->prev;
  sv->inbound.count--;
  in->closed = 1;
  sv__in_free_if_done(in);
}

/* The id a connection claims must be the id of the key it proved in the TLS handshake:
 * nobody can claim an id without its private key. Fails the connection otherwise. */
static int sv__in_check_id(sv_in *in, const char *msg, const char *claimed) {
  const nm_fingerprint *fp = nm_conn_peer_fingerprint(&in->conn);
  char id[NM_ID_LEN + 1];
  if (fp) nm_fingerprint_id(fp, id);
  if (fp && strcmp(id, claimed) == 0) return 0;
  char why[200];
  snprintf(why, sizeof why, "%s: id %s is not the id of the key this connection proved (%s)", msg, claimed,
           fp ? id : "none");
  nm_conn_fail(&in->conn, NM_EKEY, why);
  return -1;
}

/* Identified: the connection leaves the unauthenticated pool, and from now on what it logs
 * is about a known node. */
static void sv__in_identified(sv_in *in, const char *id) {
  snprintf(in->id, sizeof in->id, "%s", id);
  sv__in_release_slot(in);
  in->conn.log_rate = NULL;
  nm_conn_deadline_clear(&in->conn);
}

/* Why the listed peer p may not publish to us on this connection, or NULL: only a servant
 * the manager lists, with the key it lists, may. */
static const char *sv__in_refusal(sv_in *in, const sv_peer *p) {
  return !nm_fingerprint_equal(&p->fp, nm_conn_peer_fingerprint(&in->conn)) ? "is listed with another key"
         : p->banned                                                       ? "is banned here"
                                                                           : NULL;
}

static void sv__in_refuse(sv_in *in, const char *id, const char *refusal) {
  char why[120];
  snprintf(why, sizeof why, "peer-hello refused: %s %s", id, refusal);
  nm_conn_fail(&in->conn, NM_EUNKNOWN_PEER, why);
}

/* Connection reversal: the peer pulls from a relay and asked for our lines on its
 * connection. Our peer-hello on it says we will: from now on, in the full mesh, while we have
 * no connection of our own to it, sv_peers_publish sends our lines here
 * (sv_peers_inbound_reversed). In a bounded mesh the mesh's rule decides (a neighbour's
 * connection carries them back anyway; no other is kept). */
static void sv__in_reverse(sv_in *in, const sv_peer *p) {
  servant *sv = in->sv;
  nm_msg hello = {.type = NM_MSG_PEER_HELLO};
  snprintf(hello.u.peer_hello.id, sizeof hello.u.peer_hello.id, "%s", sv->id);
  snprintf(hello.u.peer_hello.name, sizeof hello.u.peer_hello.name, "%s", sv->cfg.name);
  if (nm_msg_send(&in->conn, &hello) < 0) {
    in->reverse = 0;
    return;
  }
  in->reverse = 1;
  sv_peers_inbound_reversed(sv, p->info.id, &in->conn);
  nm_conn_set_label(&in->conn, "peer %s (inbound, reversed)", p->info.name);
  /* A peer may connect and ask as often as it likes: rate-limited. */
  nm_log_ratelimited(&sv->inbound.reverse_log, NM_LOG_INFO,
                     "%s asked for our lines on its connection (it pulls from a relay): sent there while we have "
                     "no connection of our own to it (reversed)",
                     p->info.name);
}

/* The listed peer p, with its listed key, is who this connection is: it publishes to us. */
static void sv__in_become_peer(sv_in *in, const sv_peer *p) {
  servant *sv = in->sv;
  /* One connection per peer: a new one (it reconnected) replaces the old. */
  for (sv_in *o = sv->inbound.head; o; o = o->next)
    if (o != in && o->state == SV_IN_PEER && strcmp(o->id, p->info.id) == 0) {
      nm_conn_close(&o->conn, 0, "replaced by a new connection from the same peer");
      break;
    }
  sv__in_identified(in, p->info.id);
  nm_conn_set_label(&in->conn, "peer %s (inbound)", p->info.name);
  snprintf(in->via, sizeof in->via, "peer %s", p->info.name);
  in->state = SV_IN_PEER;
  /* In a bounded mesh we may send on it (a neighbour we do not dial); in the full mesh
   * when it asked (reversal, answered now that it is a peer). */
  sv_peers_inbound_up(sv, p->info.id, &in->conn);
  if (in->reverse) sv__in_reverse(in, p);
}

static int sv__in_on_peer_hello(void *session, const nm_msg *m) {
  sv_in *in = session;
  servant *sv = in->sv;
  const nm_msg_peer_hello *h = &m->u.peer_hello;
  if (sv__in_check_id(in, "peer-hello", h->id) < 0) return 1;
  /* A peer sends chat frames and nothing larger: the chat envelope, not 1 MiB. */
  nm_frame_reader_set_max(&in->conn.reader, SV_CHAT_FRAME_MAX);
  in->reverse = h->reverse; /* asked: answered once it is a peer (sv__in_become_peer) */
  sv_peer *p = sv_peer_find(sv, h->id);
  if (p) {
    const char *refusal = sv__in_refusal(in, p);
    if (refusal) {
      sv__in_refuse(in, h->id, refusal);
      return 1;
    }
    sv__in_become_peer(in, p);
    return 0;
  }
  const nm_fingerprint *fp = nm_conn_peer_fingerprint(&in->conn);
  if (nm_banlist_match_key(&sv->cfg.bans, fp->hex)) {
    sv__in_refuse(in, h->id, "is banned here");
    return 1;
  }
  /* Not listed (yet): the peer that connects may have heard of us from the manager before
   * our own list names it. Held, with the key it proved, for SV_HOLD_MS (sv_inbound_tick);
   * it keeps its unauthenticated slot meanwhile, so holding costs no more than a stranger's
   * connection already does. */
  snprintf(in->id, sizeof in->id, "%s", h->id);
  snprintf(in->via, sizeof in->via, "unlisted %.*s", NM_NAME_MAX - 2, h->name);
  nm_conn_set_label(&in->conn, "unlisted peer %s (inbound)", h->id);
  nm_conn_deadline_clear(&in->conn);
  in->held_since_ms = sv_now_ms(sv);
  in->state = SV_IN_HELD;
  nm_log_ratelimited(&sv->inbound.conn_log, NM_LOG_DEBUG, "holding the peer-hello of %s: not in our peer list yet",
                     h->id);
  return 0;
}

void sv_inbound_listed(servant *sv, const sv_peer *p) {
  for (sv_in *in = sv->inbound.head; in; in = in->next) {
    if (in->state != SV_IN_HELD || in->conn.closing || strcmp(in->id, p->info.id) != 0) continue;
    const char *refusal = sv__in_refusal(in, p);
    if (refusal) sv__in_refuse(in, p->info.id, refusal);
    else sv__in_become_peer(in, p);
  }
}

/* A relay client: its id must be its key's; relay duty checks that the manager assigned
 * it to us with that key and token, and takes over sending. */
static int sv__in_on_pull(void *session, const nm_msg *m) {
  sv_in *in = session;
  char err[200];
  const nm_msg_pull *p = &m->u.pull;
  if (sv__in_check_id(in, "pull", p->id) < 0) return 1;
  int rc = rl_attach(&in->sv->relay, &in->client, &in->conn, p->id, p->token, nm_conn_peer_fingerprint(&in->conn),
                     sv_peer_name(in->sv, p->id), err, sizeof err);
  if (rc < 0) {
    nm_conn_fail(&in->conn, rc, err);
    return 1;
  }
  sv__in_identified(in, p->id);
  in->state = SV_IN_PULLING;
  return 0;
}

/* A peer that started pulling from a relay after it connected asks on the same connection
 * (a second peer-hello, with reverse="yes"); anything else is not a peer's to say twice. */
static int sv__in_on_peer_hello_again(void *session, const nm_msg *m) {
  sv_in *in = session;
  const nm_msg_peer_hello *h = &m->u.peer_hello;
  sv_peer *p = sv_peer_find(in->sv, in->id);
  if (strcmp(h->id, in->id) != 0 || !h->reverse || in->reverse || !p) {
    nm_conn_fail(&in->conn, NM_EMSG, "peer-hello again: only to ask for reversal, once, with the same id");
    return 1;
  }
  sv__in_reverse(in, p);
  return 0;
}

static int sv__in_on_chat(void *session, const nm_msg *m) {
  sv_in *in = session;
  /* In the full mesh a peer publishes its own lines on its own connection; lines of others
   * reach us from their authors or through our relay, never through a third peer. In a
   * bounded mesh peers forward each other's lines: chat.c verifies each with its origin's
   * key. */
  if (!sv_peers_meshed(in->sv) && strcmp(m->u.chat.origin, in->id) != 0) {
    nm_log_ratelimited(&in->sv->chat.forged_log, NM_LOG_WARN, "dropped a line from %s on %s's connection", m->u.chat.origin,
                       in->via);
    return 0;
  }
  /* Held (not listed yet), its lines wait in chat's pending queue; one that sends more
   * than that queue keeps for one origin is not a peer catching up. */
  if (sv_chat_receive_from(in->sv, &m->u.chat, in->via, in->id) < 0 && in->state == SV_IN_HELD) {
    char why[120];
    snprintf(why, sizeof why, "more than %d lines before %s was in our peer list", SV_PENDING_PER_ORIGIN, in->id);
    nm_conn_fail(&in->conn, NM_EUNKNOWN_PEER, why);
    return 1;
  }
  return 0;
}

static const char *const sv__in_state_names[] = {
    [SV_IN_NEW] = "waiting for peer-hello or pull",
    [SV_IN_PEER] = "a peer",
    [SV_IN_PULLING] = "pulling",
    [SV_IN_HELD] = "held until our peer list names it",
};

/* A connection says what it is first (a peer, or a relay client); a peer (or one held
 * until our list names it) then publishes chat; a relay client says nothing more (relay duty's own table refuses anything). */
static const nm_dispatch_entry sv__in_rows[] = {
    {NM_MSG_PEER_HELLO, SV_IN_NEW, SV_IN_NEW, sv__in_on_peer_hello},
    {NM_MSG_PULL, SV_IN_NEW, SV_IN_NEW, sv__in_on_pull},
    {NM_MSG_PEER_HELLO, SV_IN_PEER, SV_IN_PEER, sv__in_on_peer_hello_again},
    /* held or a peer: SV_IN_HELD and SV_IN_PEER are adjacent for this row */
    {NM_MSG_CHAT, SV_IN_HELD, SV_IN_PEER, sv__in_on_chat},
};

static const nm_dispatch_table sv__in_table =
    NM_DISPATCH_TABLE("inbound peer connection", sv__in_rows, sv__in_state_names);

static int sv__in_on_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  sv_in *in = c->data;
  in->last_frame_ms = sv_now_ms(in->sv);
  if (in->state == SV_IN_PULLING) return rl_client_on_frame(&in->sv->relay, &in->client, type, payload, len);
  return nm_dispatch(&sv__in_table, c, in, (int)in->state, type, payload, len);
}

/* The handshake is done (with any key): now the first frame must come promptly. */
static void sv__in_on_secure(nm_conn *c, const nm_fingerprint *fp) {
  nm_conn_deadline(c, SV_FIRST_FRAME_MS, "no peer-hello or pull within 5 s of the TLS handshake");
}

static void sv__in_on_name(uv_getnameinfo_t *req, int status, const char *host, const char *svc) {
  sv_in *in = req->data;
  in->resolving = 0;
  if (in->closed) {
    sv__in_free_if_done(in);
    return;
  }
  if (status == 0 && nm_banlist_match(&in->sv->cfg.bans, NULL, host)) {
    nm_log_ratelimited(&in->sv->inbound.refused_log, NM_LOG_INFO, "refused connection from %s (%s): banned name",
                       in->conn.peer_ip, host);
    nm_conn_close(&in->conn, 0, NULL);
    return;
  }
  nm_conn_resume(&in->conn);
}

static void sv__on_connection(uv_stream_t *server, int status) {
  servant *sv = server->data;
  sv_inbound *ib = &sv->inbound;
  if (status < 0) {
    nm_log_ratelimited(&ib->refused_log, NM_LOG_WARN, "accept: %s", uv_strerror(status));
    return;
  }
  sv_in *in = calloc(1, sizeof *in);
  if (!in) return;
  in->sv = sv;
  nm_conn_init(sv->loop, &in->conn, sv__in_on_frame, sv__in_closed, in);
  nm_conn_set_label(&in->conn, "peer (inbound)");
  in->conn.log_rate = &ib->conn_log;
  in->next = ib->head;
  if (ib->head) ib->head->prev = in;
  ib->head = in;
  ib->count++;
  /* Any key may complete the handshake: who it is decides what it may do (peer-hello or
   * pull, checked against the key). */
  int rc = nm_conn_set_tls(&in->conn, &sv->tls, NM_TLS_SERVER, NULL);
  nm_conn_on_secure(&in->conn, sv__in_on_secure);
  if (rc == 0) rc = nm_conn_accept(server, &in->conn);
  if (rc < 0) {
    nm_conn_close(&in->conn, rc, "accept failed");
    return;
  }
  /* Until it is identified it holds a slot: a few per address, a bounded number in all, so
   * a flood from anywhere never locks out peers (identified ones hold none). */
  rc = nm_addrlimit_acquire(&ib->unauth, in->conn.peer_ip);
  if (rc < 0) {
    nm_log_ratelimited(&ib->refused_log, NM_LOG_WARN, "refused connection from %s: %s", in->conn.peer_ip,
                       nm_addrlimit_strerror(rc));
    nm_conn_close(&in->conn, 0, NULL);
    return;
  }
  in->holds_slot = 1;
  if (nm_banlist_match(&sv->cfg.bans, in->conn.peer_ip, NULL)) {
    nm_log_ratelimited(&ib->refused_log, NM_LOG_INFO, "refused connection from %s: banned address", in->conn.peer_ip);
    nm_conn_close(&in->conn, 0, NULL);
    return;
  }
  if (!sv->has_name_bans) return;
  /* Hold the data (the handshake too) until we know the peer's name is not banned. */
  nm_conn_pause(&in->conn);
  struct sockaddr_storage addr;
  int alen = sizeof addr;
  uv_tcp_getpeername(&in->conn.tcp, (struct sockaddr *)&addr, &alen);
  in->name_req.data = in;
  in->resolving = 1;
  if (uv_getnameinfo(sv->loop, &in->name_req, sv__in_on_name, (struct sockaddr *)&addr, NI_NAMEREQD) < 0) {
    in->resolving = 0;
    nm_conn_resume(&in->conn);
  }
}

static void sv__free_handle(uv_handle_t *h) { free(h); }

int sv_inbound_init(servant *sv) {
  sv_inbound *ib = &sv->inbound;
  ib->refused_log = (nm_log_rate)NM_LOG_RATE_INIT("refused inbound connections", 5);
  ib->conn_log = (nm_log_rate)NM_LOG_RATE_INIT("closed unidentified inbound connections", 5);
  ib->reverse_log = (nm_log_rate)NM_LOG_RATE_INIT("peers asking for reversal", 2);
  return nm_addrlimit_init(&ib->unauth, NULL);
}

static int sv__bind_listener(servant *sv, const char *ip, uint16_t port, uv_tcp_t **out) {
  struct sockaddr_storage addr;
  int rc = nm_addr_to_sockaddr(ip, port, &addr);
  if (rc < 0) return UV_EINVAL;
  uv_tcp_t *l = malloc(sizeof *l);
  if (!l) return UV_ENOMEM;
  uv_tcp_init(sv->loop, l);
  l->data = sv;
  /* No UV_TCP_IPV6ONLY: on "::" the socket takes both families (IPv4 peers show up as
   * IPv4-mapped addresses, which nm_addr_from_sockaddr turns back into IPv4). */
  rc = uv_tcp_bind(l, (struct sockaddr *)&addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)l, 128, sv__on_connection);
  /* Only now, after an exclusive bind (so another servant asking for the same port still
   * finds it busy): SO_REUSEPORT lets our outgoing connections to the manager and punch
   * dials leave from this port too (sv_connect_from_port), so that behind an
   * endpoint-independent NAT the endpoint the manager sees is one peers can aim at. */
  uv_os_fd_t fd;
  int one = 1;
  if (rc == 0 && uv_fileno((uv_handle_t *)l, &fd) == 0 &&
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
    nm_log_debug("SO_REUSEPORT on the listening socket: %s", strerror(errno));
  if (rc < 0) {
    uv_close((uv_handle_t *)l, sv__free_handle);
    return rc;
  }
  *out = l;
  return 0;
}

int sv_listen(servant *sv, uint16_t port) {
  uv_tcp_t *l = NULL;
  const char *ip = sv->cfg.listen;
  int rc = sv__bind_listener(sv, ip, port, &l);
  /* The default "::" on a system without IPv6: IPv4 only, and said. */
  if ((rc == UV_EAFNOSUPPORT || rc == UV_EADDRNOTAVAIL) && nm_addr_equal(ip, "::")) {
    nm_log_info("no IPv6 on this system (%s): listening on IPv4 only", uv_strerror(rc));
    ip = "0.0.0.0";
    rc = sv__bind_listener(sv, ip, port, &l);
  }
  if (rc < 0) return rc;
  sv->inbound.listener = l;
  sv->inbound.port = port;
  char a[NM_ADDR_STRLEN];
  nm_log_info("listening for peers on %s%s", nm_addr_str(ip, port, a),
              nm_addr_equal(ip, "::") ? " (both IPv6 and IPv4)" : "");
  return 0;
}

int sv_listening(servant *sv) { return sv->inbound.listener != NULL; }

uint16_t sv_listen_port(servant *sv) { return sv->inbound.port; }

void sv_inbound_set_timeout(servant *sv, unsigned timeout_s) {
  sv->inbound.idle_ms = SV_IDLE_TIMEOUTS * timeout_s * 1000;
}

void sv_inbound_tick(servant *sv) {
  uint64_t now = sv_now_ms(sv), idle = sv->inbound.idle_ms;
  for (sv_in *in = sv->inbound.head; in; in = in->next) {
    if (in->state == SV_IN_HELD && !in->conn.closing && now - in->held_since_ms >= SV_HOLD_MS)
      sv__in_refuse(in, in->id, "is not in our peer list");
    /* A neighbour's connection in a bounded mesh (sv_peers_keep_inbound), or a reversed one
     * in the full mesh, carries our lines: not idle while the peer listens. */
    int reversed = in->reverse && !sv_peers_meshed(sv);
    if (idle && in->state == SV_IN_PEER && !reversed && !in->conn.closing && now - in->last_frame_ms > idle &&
        !sv_peers_keep_inbound(sv, in->id)) {
      char why[80];
      snprintf(why, sizeof why, "idle for %llu s", (unsigned long long)(idle / 1000));
      nm_conn_close(&in->conn, 0, why);
    }
  }
}

void sv_inbound_drop(servant *sv, const char *id, const char *reason) {
  for (sv_in *in = sv->inbound.head; in; in = in->next)
    if (in->state == SV_IN_PEER && strcmp(in->id, id) == 0) nm_conn_close(&in->conn, 0, reason);
}

void sv_inbound_close(servant *sv) {
  if (sv->inbound.listener) uv_close((uv_handle_t *)sv->inbound.listener, sv__free_handle);
  sv->inbound.listener = NULL;
  for (sv_in *in = sv->inbound.head; in; in = in->next) nm_conn_close(&in->conn, 0, NULL);
}
