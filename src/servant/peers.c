/* The peer table: one record per servant in the manager's list, each with the outbound
 * connection this servant publishes its chat on. Connections run TLS pinned to the key the
 * list gives for the peer, are opened once and reused; lines typed while a connection is not
 * up wait in a backlog bounded in lines, bytes and age. */
#include "peers.h"
#include "chat.h"
#include "inbound.h"
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

void sv_peers_init(servant *sv) {
  sv->peers.wrong_key_log = (nm_log_rate)NM_LOG_RATE_INIT("peers presenting another key", 5);
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

static void sv__backlog_push(servant *sv, sv_peer *p, const char *payload, size_t len) {
  int rc = nm_lineq_push(&p->backlog, sv_now_ms(sv), NULL, payload, len);
  if (rc > 0)
    nm_log_warn("backlog for %s full (%d lines or %u bytes): %d oldest line%s dropped", p->info.name,
                SV_BACKLOG_MAX, SV_BACKLOG_BYTES_MAX, rc, rc == 1 ? "" : "s");
  else if (rc < 0)
    nm_log_warn("line not queued for %s: %s", p->info.name, nm_strerror(rc));
}

/* Sends one line on the peer's connection; while the connection is young, keeps a copy
 * (see SV_CONFIRM_MS). */
static int sv__out_send(servant *sv, sv_peer *p, const char *payload, size_t len, uint64_t queued_ms) {
  int rc = nm_conn_send(&p->out->conn, NM_MSG_CHAT, payload, len);
  if (rc == 0 && sv_now_ms(sv) - p->out_since_ms < SV_CONFIRM_MS)
    nm_lineq_push(&p->unconfirmed, queued_ms, NULL, payload, len);
  return rc;
}

static void sv__backlog_flush(servant *sv, sv_peer *p) {
  uint64_t now = sv_now_ms(sv);
  nm_lineq_item *it;
  while (p->out_ready && (it = nm_lineq_pop(&p->backlog))) {
    if (!nm_lineq_expired(&p->backlog, it, now)) sv__out_send(sv, p, it->payload, it->len, it->at_ms);
    free(it);
  }
}

/* Our connection ended in its first moments (typically the peer refused our peer-hello):
 * what we sent on it goes back to the front of the backlog, in order, for the next
 * attempt. Leaves unconfirmed empty. */
static void sv__backlog_requeue(sv_peer *p) {
  nm_lineq_item *it;
  while ((it = nm_lineq_pop(&p->backlog))) {
    nm_lineq_push(&p->unconfirmed, it->at_ms, NULL, it->payload, it->len);
    free(it);
  }
  nm_lineq tmp = p->backlog;
  p->backlog = p->unconfirmed;
  p->unconfirmed = tmp;
  if (p->backlog.count) nm_log_info("%zu line%s for %s kept for the next attempt", p->backlog.count,
                                    p->backlog.count == 1 ? "" : "s", p->info.name);
}

/* Our outbound connections only send: peers publish to us on connections they open, and
 * a relay forwards on the pull connection. The table has no rows: whatever arrives here
 * (but an error frame, which nm_conn logs) is refused. */
static const nm_dispatch_table sv__out_table = {.endpoint = "outbound peer connection"};

static int sv__out_on_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  return nm_dispatch(&sv__out_table, c, c->data, 0, type, payload, len);
}

static void sv__out_closed(nm_conn *c) {
  sv_out *o = c->data;
  if (o->peer && o->peer->out == o) {
    sv_peer *p = o->peer;
    int was_up = p->out_ready;
    p->out = NULL;
    p->out_ready = 0;
    /* Closed in its first moments (refused, or lost): what we sent may not have been
     * taken. Sending it again costs nothing: receivers show each line once. */
    if (p->unconfirmed.count) sv__backlog_requeue(p);
    if (was_up && c->close_err == 0 && !c->peer_error[0]) {
      /* It worked and ended cleanly: the peer closes connections idle for a while. We open
       * a new one when we have a line for it. */
      p->idle = 1;
    } else {
      /* Try again later, backing off while the peer stays unreachable. */
      nm_backoff_set_max(&p->backoff, sv__backoff_max(o->sv));
      p->next_attempt_ms = sv_now_ms(o->sv) + nm_backoff_next(&p->backoff);
    }
  }
  free(o);
}

/* The peer's TLS key is not the one the manager lists for its id: whoever answers at its
 * address is not that peer. Dropped, said (rate-limited: whoever holds the address can make
 * us say it), and reported to the manager like a peer we cannot reach, which it is. */
static void sv__out_wrong_key(servant *sv, sv_peer *p, nm_conn *c) {
  const char *why = c->tls ? nm_tls_session_error(c->tls) : "";
  nm_log_ratelimited(&sv->peers.wrong_key_log, NM_LOG_WARN,
                     "dropped the connection to %s at %s:%u: %s (the manager lists key %s for %s)", p->info.name,
                     p->info.ip, p->info.port, why, p->fp.hex, p->info.id);
}

static void sv__out_connected(nm_conn *c, int status) {
  sv_out *o = c->data;
  sv_peer *p = o->peer;
  if (!p) return;
  servant *sv = o->sv;
  if (status < 0) {
    nm_complaint_reason why = status == UV_ETIMEDOUT      ? NM_COMPLAINT_TIMEOUT
                              : status == UV_ECONNREFUSED ? NM_COMPLAINT_REFUSED
                                                          : NM_COMPLAINT_RESET;
    if (status == NM_EKEY) {
      sv__out_wrong_key(sv, p, c);
      nm_conn_close(c, status, NULL); /* said above */
    } else {
      nm_log_info("cannot reach %s at %s:%u: %s", p->info.name, p->info.ip, p->info.port,
                  c->tls && nm_tls_session_error(c->tls)[0] ? nm_tls_session_error(c->tls) : nm_strerror(status));
    }
    /* Tell the manager: enough of these from enough peers make it assign a relay. */
    if (p->listed && !sv__unreachable(p) && sv->peers.on_unreachable) sv->peers.on_unreachable(sv, p, why);
    return; /* nm_conn closes it; sv__out_closed schedules the retry */
  }
  /* TLS proved the listed key; peer-hello says which id we are, which the peer checks
   * against the key we proved. */
  nm_msg hello = {.type = NM_MSG_PEER_HELLO};
  snprintf(hello.u.peer_hello.id, sizeof hello.u.peer_hello.id, "%s", sv->id);
  snprintf(hello.u.peer_hello.name, sizeof hello.u.peer_hello.name, "%s", sv->cfg.name);
  nm_msg_send(c, &hello);
  p->out_ready = 1;
  p->idle = 0;
  p->out_since_ms = sv_now_ms(sv);
  nm_log_info("connected to %s at %s:%u", p->info.name, p->info.ip, p->info.port);
  sv__backlog_flush(sv, p);
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
  p->idle = 0;
  /* Pinned: only the key the manager lists for this peer completes the handshake. */
  int rc = nm_conn_set_tls(&o->conn, &sv->tls, NM_TLS_CLIENT, &p->fp);
  if (rc == 0) rc = sv_bind_outgoing(sv, &o->conn);
  if (rc == 0)
    rc = nm_conn_connect(&o->conn, (struct sockaddr *)&addr, sv__connect_timeout_ms(sv), sv__out_connected);
  if (rc < 0) nm_conn_close(&o->conn, rc, "connect failed");
}

static void sv__peer_disconnect(sv_peer *p) {
  if (!p->out) return;
  p->out->peer = NULL;
  nm_conn_close(&p->out->conn, 0, NULL);
  p->out = NULL;
  p->out_ready = 0;
}

/* The record goes: its connections with it (ours to it, and any it opened to us), and its
 * replay window is marked departed. */
static void sv__peer_free(servant *sv, sv_peer *p, const char *reason) {
  sv__peer_disconnect(p);
  sv_inbound_drop(sv, p->info.id, reason);
  sv_chat_forget(sv, p->info.id);
  nm_lineq_clear(&p->backlog);
  nm_lineq_clear(&p->unconfirmed);
  free(p);
}

static void sv__check_ban(servant *sv, sv_peer *p);

/* The key decides who the peer is: its fingerprint is what TLS must present. */
static void sv__peer_set_key(sv_peer *p) { nm_fingerprint_of_pubkey(p->info.key, &p->fp); }

static void sv__peer_upsert(servant *sv, const nm_peer *info) {
  sv_peer *p = sv_peer_find(sv, info->id);
  if (!p) {
    p = calloc(1, sizeof *p);
    if (!p) return;
    p->info = *info;
    sv__peer_set_key(p);
    nm_backoff_init(&p->backoff, SV_BACKOFF_FIRST_MS, sv__backoff_max(sv), 1);
    nm_lineq_init(&p->backlog, SV_BACKLOG_MAX, SV_BACKLOG_BYTES_MAX, SV_BACKLOG_TTL_MS);
    nm_lineq_init(&p->unconfirmed, SV_BACKLOG_MAX, SV_BACKLOG_BYTES_MAX, SV_BACKLOG_TTL_MS);
    p->next = sv->peers.head;
    sv->peers.head = p;
    nm_log_info("peer joined: %s at %s:%u (key %.16s...)", info->name, info->ip, info->port, p->fp.hex);
    p->listed = 1;
    sv__check_ban(sv, p);
    if (!sv__unreachable(p)) sv__peer_connect(sv, p);
    return;
  }
  int moved = strcmp(p->info.ip, info->ip) != 0 || p->info.port != info->port;
  int rekeyed = !nm_pubkey_equal(p->info.key, info->key);
  p->info = *info;
  p->listed = 1;
  if (rekeyed) {
    /* An id is derived from its key, so this does not happen between honest nodes; if it
     * does, nothing proven under the old key stands. */
    sv__peer_set_key(p);
    nm_log_warn("peer %s (%s) has a new key %s in the manager's list", info->name, info->id, p->fp.hex);
    sv_inbound_drop(sv, p->info.id, "its listed key changed");
  }
  if (moved || rekeyed) sv__check_ban(sv, p);
  if (sv__unreachable(p)) {
    /* Its relay replays the last minute to it: our backlog for it is not needed. */
    nm_lineq_clear(&p->backlog);
    if (p->out && !p->out_ready) sv__peer_disconnect(p);
    return;
  }
  if (moved || rekeyed) {
    /* A new address (a port mapping appeared or went) or key: reconnect. */
    if (moved) nm_log_info("peer %s now at %s:%u", info->name, info->ip, info->port);
    sv__peer_disconnect(p);
    nm_backoff_reset(&p->backoff);
    sv__peer_connect(sv, p);
  }
}

/* The one place the table learns of a peer (a delta, or each entry of a full list). What
 * waited for the list to name it goes on now: a connection it opened to us before we listed
 * it (inbound.c holds those), then lines of it that reached us meanwhile (chat.c), each
 * checked against the record as it now stands (key, ban). */
void sv_peers_upsert(servant *sv, const nm_peer *info) {
  if (strcmp(info->id, sv->id) == 0) return; /* ourselves */
  sv__peer_upsert(sv, info);
  sv_peer *p = sv_peer_find(sv, info->id);
  if (!p) return; /* out of memory */
  sv_inbound_listed(sv, p);
  sv_chat_listed(sv, p->info.id);
}

void sv_peers_remove(servant *sv, const char *id, const char *reason) {
  for (sv_peer **pp = &sv->peers.head; *pp; pp = &(*pp)->next) {
    if (strcmp((*pp)->info.id, id) != 0) continue;
    sv_peer *p = *pp;
    *pp = p->next;
    nm_log_info("peer left: %s (%s)", p->info.name, reason);
    sv__peer_free(sv, p, "it left the overlay");
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
      int rc = sv__out_send(sv, p, payload, len, sv_now_ms(sv));
      if (rc == NM_EQUEUE_FULL) nm_log_warn("%s is not reading: line dropped for it", p->info.name);
    } else if (!sv__unreachable(p)) {
      sv__backlog_push(sv, p, payload, len);
      /* Its connection was closed for being idle: a line is what reopens it. */
      if (p->idle && !p->out) sv__peer_connect(sv, p);
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
      sv__peer_free(sv, p, "no longer in the manager's list");
      continue;
    }
    nm_lineq_expire(&p->backlog, now);
    /* A connection the peer kept for SV_CONFIRM_MS accepted us: what we sent is through, and
     * the next failure starts the backoff over. (Not at the handshake: a peer that has not
     * heard of us yet refuses our peer-hello right after it.) */
    if (p->out_ready && now - p->out_since_ms >= SV_CONFIRM_MS) {
      nm_lineq_clear(&p->unconfirmed);
      nm_backoff_reset(&p->backoff);
    }
    if (!p->out && now >= p->next_attempt_ms && !sv__unreachable(p) && (!p->idle || p->backlog.count))
      sv__peer_connect(sv, p);
    pp = &p->next;
  }
}

void sv_peers_close_all(servant *sv) {
  while (sv->peers.head) {
    sv_peer *p = sv->peers.head;
    sv->peers.head = p->next;
    sv__peer_free(sv, p, NULL);
  }
}

size_t sv_peers_print(servant *sv, FILE *out) {
  size_t n = 0;
  for (sv_peer *p = sv->peers.head; p; p = p->next) {
    if (!p->listed) continue;
    n++;
    fprintf(out, "  peer %s %s %s:%u %s%s%s key %s\n", p->info.name, p->info.id, p->info.ip, p->info.port,
            nm_reach_name(p->info.state), p->out_ready ? " connected" : "", p->banned ? " banned" : "", p->fp.hex);
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
  if (p && !p->banned && status == 0 && nm_banlist_match(&l->sv->cfg.bans, NULL, host)) {
    p->banned = 1;
    nm_log_info("peer %s (%s) is banned by its name %s", p->info.name, p->info.ip, host);
    sv_inbound_drop(l->sv, p->info.id, "banned");
  }
  free(l);
}

/* Bans by key and by address apply at once; bans by name need a reverse lookup, which runs
 * on libuv's thread pool so the loop never waits for DNS. A banned peer's lines are dropped
 * whatever path they take (chat.c checks p->banned after verifying the signature). */
static void sv__check_ban(servant *sv, sv_peer *p) {
  const char *by = nm_banlist_match_key(&sv->cfg.bans, p->fp.hex)    ? "key"
                   : nm_banlist_match(&sv->cfg.bans, p->info.ip, NULL) ? "address"
                                                                      : NULL;
  p->banned = by != NULL;
  if (p->banned) {
    nm_log_info("peer %s (%s, %s) is banned by its %s", p->info.name, p->info.id, p->info.ip, by);
    sv_inbound_drop(sv, p->info.id, "banned");
  }
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
  if (uv_getnameinfo(sv->loop, &l->req, sv__on_peer_name, (struct sockaddr *)&addr, NI_NAMEREQD) < 0) free(l);
}
