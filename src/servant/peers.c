/* The peer table: one record per servant in the manager's list, each with the outbound
 * connection this servant publishes its chat on. Connections are opened once and reused;
 * lines typed while a connection is not up wait in a bounded backlog. */
#include "peers.h"
#include "servant.h"
#include "nm_error.h"
#include "nm_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SV_BACKOFF_FIRST_MS 500

/* Retry an unreachable peer at least every half heartbeat: each failure is a complaint,
 * and the manager counts one per pair per heartbeat interval. */
static unsigned sv__backoff_max(servant *sv) {
  unsigned hb = sv->peers.heartbeat_s ? sv->peers.heartbeat_s : 5;
  return hb * 500 < 1000 ? 1000 : hb * 500;
}

/* A peer that does not answer in half a heartbeat is treated as unreachable for this try:
 * firewalls drop SYNs silently, and the complaint must reach the manager within the
 * interval in which it counts. */
static unsigned sv__connect_timeout_ms(servant *sv) {
  unsigned hb = sv->peers.heartbeat_s ? sv->peers.heartbeat_s : 5;
  unsigned ms = hb * 500;
  return ms < 500 ? 500 : ms > SV_CONNECT_TIMEOUT_MS ? SV_CONNECT_TIMEOUT_MS : ms;
}

/* Peers the manager judged unreachable get our lines from their relay, not from us. */
static int sv__unreachable(const sv_peer *p) {
  return p->info.state == NM_REACH_SUSPICIOUS || p->info.state == NM_REACH_RELAYED;
}

sv_peer *sv_peer_find(servant *sv, const char *id) {
  for (sv_peer *p = sv->peers.head; p; p = p->next)
    if (strcmp(p->info.id, id) == 0) return p;
  return NULL;
}

const char *sv_peer_name(servant *sv, const char *id) {
  sv_peer *p = sv_peer_find(sv, id);
  return p ? p->info.name : NULL;
}

size_t sv_peers_count(servant *sv) {
  size_t n = 0;
  for (sv_peer *p = sv->peers.head; p; p = p->next) n += p->listed;
  return n;
}

int sv_peers_any(servant *sv) { return sv->peers.head != NULL; }

void sv_peers_set_timing(servant *sv, unsigned heartbeat_s, unsigned timeout_s) {
  sv->peers.heartbeat_s = heartbeat_s;
  sv->peers.timeout_s = timeout_s;
}

static void sv__backlog_clear(sv_peer *p) {
  for (sv_queued *c = p->backlog_head, *n; c; c = n) {
    n = c->next;
    free(c);
  }
  p->backlog_head = p->backlog_tail = NULL;
  p->backlog_len = 0;
}

static void sv__backlog_push(servant *sv, sv_peer *p, const char *payload, size_t len) {
  if (p->backlog_len >= SV_BACKLOG_MAX) {
    sv_queued *old = p->backlog_head;
    p->backlog_head = old->next;
    if (!p->backlog_head) p->backlog_tail = NULL;
    free(old);
    p->backlog_len--;
    nm_log_warn("backlog for %s full (%d lines): oldest line dropped", p->info.name,
                SV_BACKLOG_MAX);
  }
  sv_queued *c = malloc(sizeof *c + len);
  if (!c) return;
  c->next = NULL;
  c->queued_ms = sv_now_ms(sv);
  c->len = len;
  memcpy(c->payload, payload, len);
  if (p->backlog_tail) p->backlog_tail->next = c;
  else p->backlog_head = c;
  p->backlog_tail = c;
  p->backlog_len++;
}

static void sv__backlog_flush(servant *sv, sv_peer *p) {
  uint64_t now = sv_now_ms(sv);
  while (p->backlog_head && p->out_ready) {
    sv_queued *c = p->backlog_head;
    p->backlog_head = c->next;
    if (!p->backlog_head) p->backlog_tail = NULL;
    p->backlog_len--;
    if (now - c->queued_ms <= SV_BACKLOG_TTL_MS)
      nm_conn_send(&p->out->conn, NM_MSG_CHAT, c->payload, c->len);
    free(c);
  }
}

/* Our outbound connections only send: peers publish to us on connections they open, and
 * a relay forwards on the pull connection. The table has no rows: whatever arrives here
 * is refused. */
static const nm_dispatch_table sv__out_table = {.endpoint = "outbound peer connection"};

static int sv__out_on_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  return nm_dispatch(&sv__out_table, c, c->data, 0, type, payload, len);
}

static void sv__out_closed(nm_conn *c) {
  sv_out *o = c->data;
  if (o->peer && o->peer->out == o) {
    sv_peer *p = o->peer;
    p->out = NULL;
    p->out_ready = 0;
    /* Try again later, backing off while the peer stays unreachable. */
    nm_backoff_set_max(&p->backoff, sv__backoff_max(o->sv));
    p->next_attempt_ms = sv_now_ms(o->sv) + nm_backoff_next(&p->backoff);
  }
  free(o);
}

static void sv__out_connected(nm_conn *c, int status) {
  sv_out *o = c->data;
  sv_peer *p = o->peer;
  if (!p) return;
  if (status < 0) {
    nm_log_info("cannot reach %s at %s:%u: %s", p->info.name, p->info.ip, p->info.port,
                uv_strerror(status));
    /* Tell the manager: enough of these from enough peers make it assign a relay. */
    nm_complaint_reason why = status == UV_ETIMEDOUT      ? NM_COMPLAINT_TIMEOUT
                              : status == UV_ECONNREFUSED ? NM_COMPLAINT_REFUSED
                                                          : NM_COMPLAINT_RESET;
    if (p->listed && !sv__unreachable(p) && o->sv->peers.on_unreachable) o->sv->peers.on_unreachable(o->sv, p, why);
    return; /* nm_conn closes it; sv__out_closed schedules the retry */
  }
  nm_msg hello = {.type = NM_MSG_PEER_HELLO};
  snprintf(hello.u.peer_hello.id, sizeof hello.u.peer_hello.id, "%s", o->sv->id);
  snprintf(hello.u.peer_hello.name, sizeof hello.u.peer_hello.name, "%s", o->sv->cfg.name);
  nm_msg_send(c, &hello);
  nm_frame_reader_set_max(&c->reader, NM_FRAME_MAX);
  p->out_ready = 1;
  nm_backoff_reset(&p->backoff);
  nm_log_info("connected to %s at %s:%u", p->info.name, p->info.ip, p->info.port);
  sv__backlog_flush(o->sv, p);
}

static void sv__peer_connect(servant *sv, sv_peer *p) {
  /* A dedicated relay publishes nothing of its own: it only receives and forwards. */
  if (sv->cfg.quiet) return;
  struct sockaddr_storage addr;
  if (uv_ip4_addr(p->info.ip, p->info.port, (struct sockaddr_in *)&addr) < 0 &&
      uv_ip6_addr(p->info.ip, p->info.port, (struct sockaddr_in6 *)&addr) < 0)
    return;
  sv_out *o = calloc(1, sizeof *o);
  if (!o) return;
  o->sv = sv;
  o->peer = p;
  nm_conn_init(sv->loop, &o->conn, sv__out_on_frame, sv__out_closed, o);
  nm_conn_set_label(&o->conn, "peer %s", p->info.name);
  p->out = o;
  p->out_ready = 0;
  int rc = sv_bind_outgoing(sv, &o->conn);
  if (rc == 0)
    rc = nm_conn_connect(&o->conn, (struct sockaddr *)&addr, sv__connect_timeout_ms(sv),
                         sv__out_connected);
  if (rc < 0) nm_conn_close(&o->conn, rc, "connect failed");
}

static void sv__peer_free(sv_peer *p) {
  if (p->out) {
    p->out->peer = NULL;
    nm_conn_close(&p->out->conn, 0, NULL);
  }
  sv__backlog_clear(p);
  free(p);
}

static void sv__check_ban(servant *sv, sv_peer *p);

void sv_peers_upsert(servant *sv, const nm_peer *info) {
  if (strcmp(info->id, sv->id) == 0) return; /* ourselves */
  sv_peer *p = sv_peer_find(sv, info->id);
  if (!p) {
    p = calloc(1, sizeof *p);
    if (!p) return;
    p->info = *info;
    nm_backoff_init(&p->backoff, SV_BACKOFF_FIRST_MS, sv__backoff_max(sv), 1);
    p->next = sv->peers.head;
    sv->peers.head = p;
    nm_log_info("peer joined: %s at %s:%u", info->name, info->ip, info->port);
    p->listed = 1;
    sv__check_ban(sv, p);
    if (!sv__unreachable(p)) sv__peer_connect(sv, p);
    return;
  }
  int moved = strcmp(p->info.ip, info->ip) != 0 || p->info.port != info->port;
  p->info = *info;
  p->listed = 1;
  if (sv__unreachable(p)) {
    /* Its relay replays the last minute to it: our backlog for it is not needed. */
    sv__backlog_clear(p);
    if (p->out && !p->out_ready) {
      p->out->peer = NULL;
      nm_conn_close(&p->out->conn, 0, NULL);
      p->out = NULL;
    }
    return;
  }
  if (moved) {
    /* A new address (a port mapping appeared or went): reconnect there. */
    nm_log_info("peer %s now at %s:%u", info->name, info->ip, info->port);
    sv__check_ban(sv, p);
    if (p->out) {
      p->out->peer = NULL;
      nm_conn_close(&p->out->conn, 0, NULL);
      p->out = NULL;
      p->out_ready = 0;
    }
    nm_backoff_reset(&p->backoff);
    sv__peer_connect(sv, p);
  }
}

void sv_peers_remove(servant *sv, const char *id, const char *reason) {
  for (sv_peer **pp = &sv->peers.head; *pp; pp = &(*pp)->next) {
    if (strcmp((*pp)->info.id, id) != 0) continue;
    sv_peer *p = *pp;
    *pp = p->next;
    nm_log_info("peer left: %s (%s)", p->info.name, reason);
    sv__peer_free(p);
    return;
  }
}

/* A full list (after registering, or after a gap) replaces what we know. Peers it does not
 * name are not dropped at once: after a manager restart the list fills up again as servants
 * re-register, and chat must go on meanwhile. They stay for one heartbeat timeout. */
void sv_peers_apply_full(servant *sv, const nm_peerlist *list) {
  uint64_t now = sv_now_ms(sv);
  for (sv_peer *p = sv->peers.head; p; p = p->next) {
    if (p->listed) p->unlisted_since_ms = now;
    p->listed = 0;
  }
  for (size_t i = 0; i < list->count; i++) sv_peers_upsert(sv, &list->peers[i]);
}

void sv_peers_publish(servant *sv, const char *payload, size_t len) {
  for (sv_peer *p = sv->peers.head; p; p = p->next) {
    if (p->out_ready) {
      int rc = nm_conn_send(&p->out->conn, NM_MSG_CHAT, payload, len);
      if (rc == NM_EQUEUE_FULL) nm_log_warn("%s is not reading: line dropped for it", p->info.name);
    } else if (!sv__unreachable(p)) {
      sv__backlog_push(sv, p, payload, len);
    }
  }
}

void sv_peers_tick(servant *sv) {
  uint64_t now = sv_now_ms(sv);
  uint64_t grace = (uint64_t)(sv->peers.timeout_s ? sv->peers.timeout_s : 15) * 1000;
  for (sv_peer **pp = &sv->peers.head; *pp;) {
    sv_peer *p = *pp;
    if (!p->listed && now - p->unlisted_since_ms > grace) {
      *pp = p->next;
      nm_log_info("peer %s dropped: not re-listed by the manager", p->info.name);
      sv__peer_free(p);
      continue;
    }
    if (!p->out && now >= p->next_attempt_ms && !sv__unreachable(p)) sv__peer_connect(sv, p);
    pp = &p->next;
  }
}

void sv_peers_close_all(servant *sv) {
  while (sv->peers.head) {
    sv_peer *p = sv->peers.head;
    sv->peers.head = p->next;
    sv__peer_free(p);
  }
}

size_t sv_peers_print(servant *sv, FILE *out) {
  size_t n = 0;
  for (sv_peer *p = sv->peers.head; p; p = p->next) {
    if (!p->listed) continue;
    n++;
    fprintf(out, "  peer %s %s %s:%u %s%s%s\n", p->info.name, p->info.id, p->info.ip, p->info.port,
            nm_reach_name(p->info.state), p->out_ready ? " connected" : "", p->banned ? " banned" : "");
  }
  return n;
}

typedef struct {
  uv_getnameinfo_t req;
  servant *sv;
  char id[NM_ID_LEN + 1];
} sv_name_lookup;

static void sv__on_peer_name(uv_getnameinfo_t *req, int status, const char *host, const char *svc) {
  sv_name_lookup *l = (sv_name_lookup *)req;
  sv_peer *p = sv_peer_find(l->sv, l->id);
  if (p) {
    if (status == 0 && nm_banlist_match(&l->sv->cfg.bans, NULL, host)) {
      p->banned = 1;
      nm_log_info("peer %s (%s) is banned by its name %s", p->info.name, p->info.ip, host);
    }
  }
  free(l);
}

/* Bans by address apply at once; bans by name need a reverse lookup, which runs on
 * libuv's thread pool so the loop never waits for DNS. */
static void sv__check_ban(servant *sv, sv_peer *p) {
  p->banned = nm_banlist_match(&sv->cfg.bans, p->info.ip, NULL);
  if (p->banned) nm_log_info("peer %s (%s) is banned", p->info.name, p->info.ip);
  if (p->banned || !sv->has_name_bans) return;
  sv_name_lookup *l = calloc(1, sizeof *l);
  if (!l) return;
  l->sv = sv;
  strcpy(l->id, p->info.id);
  struct sockaddr_storage addr;
  if (uv_ip4_addr(p->info.ip, p->info.port, (struct sockaddr_in *)&addr) < 0 &&
      uv_ip6_addr(p->info.ip, p->info.port, (struct sockaddr_in6 *)&addr) < 0) {
    free(l);
    return;
  }
  if (uv_getnameinfo(sv->loop, &l->req, sv__on_peer_name, (struct sockaddr *)&addr,
                     NI_NAMEREQD) < 0) {
    free(l);
  }
}
