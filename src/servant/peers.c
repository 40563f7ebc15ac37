/* The peer table: one record per servant in the manager's list, each with the outbound
 * connection this servant publishes its chat on. Connections run TLS pinned to the key the
 * list gives for the peer, are opened once and reused; lines typed while a connection is not
 * up wait in a backlog bounded in lines, bytes and age.
 *
 * A peer may have several candidate addresses (its primary, mapped, observed and local
 * ones). A connection is made by a dial round (nm_cand.h decides the order and the timing):
 * Happy Eyeballs over the candidates, the first to complete TLS with the listed key wins and
 * the others are closed without complaint. Only a round in which every candidate failed
 * makes a complaint to the manager. */
#include "peers.h"
#include "chat.h"
#include "inbound.h"
#include "servant.h"
#include "nm_addr.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_punch.h"

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

/* Whom we keep a connection to: everyone in the full mesh; in a bounded mesh our
 * neighbours, and dedicated relays (not in the graph: they get every servant's lines). */
static int sv__wanted(const servant *sv, const sv_peer *p) {
  return !sv->peers.mesh || p->neighbour || p->relays_neighbour || p->info.role == NM_ROLE_RELAY;
}

/* Whether we dial p ourselves. In a bounded mesh a pair of neighbours makes one connection
 * and both send on it: the smaller id dials, as for a punch's roles; a servant that pulls
 * from a relay (others may not reach it) dials all its neighbours. Everyone else (the full
 * mesh, dedicated relays, a neighbour's relay) is dialled as always. */
static int sv__dials(const servant *sv, const sv_peer *p) {
  if (!sv->peers.mesh || !p->neighbour || p->info.role == NM_ROLE_RELAY) return 1;
  return strcmp(sv->id, p->info.id) < 0 || sv->pull.assigned;
}

static int sv__named_neighbour(const servant *sv, const char *id) {
  for (size_t i = 0; i < sv->peers.nneighbours; i++)
    if (strcmp(sv->peers.neighbours[i], id) == 0) return 1;
  return 0;
}

static void sv__dial_timer_cb(uv_timer_t *t);

/* A connection of ours that carries the peer's lines to us too: punched, or reversed, and
 * the peer's peer-hello came on it. */
static int sv__both_ways(const sv_out *o) { return o && (o->punched || o->reverse) && o->punch_state == 1; }

/* Whether we ask peers for their lines on our connections: we pull from a relay (or it is
 * on standby), so peers may not reach us, and --no-reverse did not turn it off. Only in the full mesh: in a bounded one a pair of
 * neighbours makes one connection and the dialled side sends back on it anyway, and we keep
 * no connection to anyone else (reversal must not add one). */
static int sv__want_reverse(servant *sv) {
  return sv->cfg.reverse && !sv->peers.mesh && (sv->pull.assigned || sv->pull.standby);
}

void sv_peers_init(servant *sv) {
  sv->peers.wrong_key_log = (nm_log_rate)NM_LOG_RATE_INIT("peers presenting another key", 5);
  sv->peers.full_log = (nm_log_rate)NM_LOG_RATE_INIT("lines dropped for peers not reading", 5);
  uv_timer_init(sv->loop, &sv->peers.dial_timer);
  sv->peers.dial_timer.data = sv;
  sv->peers.dial_timer_open = 1;
  uv_timer_init(sv->loop, &sv->peers.punch_timer);
  sv->peers.punch_timer.data = sv;
  sv->peers.punch_timer_open = 1;
}

void sv_peers_set_observed(servant *sv, const char *ip) {
  snprintf(sv->peers.our_ip, sizeof sv->peers.our_ip, "%s", ip && nm_addr_family(ip) > 0 ? ip : "");
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
    nm_log_ratelimited(&sv->peers.full_log, NM_LOG_WARN, "backlog for %s full (%d lines or %u bytes): %d oldest line%s dropped",
                       p->info.name, SV_BACKLOG_MAX, SV_BACKLOG_BYTES_MAX, rc, rc == 1 ? "" : "s");
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

/* Our outbound connections send our lines. In a bounded mesh the peer we dialled sends its
 * lines (and those it forwards) back on it, since a pair of neighbours makes one connection;
 * TLS pinned its key, so it needs no peer-hello. In the full mesh only the peer's own lines
 * are taken here (the peer publishes on its own connection to us anyway). */
static int sv__out_on_chat(void *session, const nm_msg *m) {
  sv_out *o = session;
  char via[NM_NAME_MAX + 8];
  if (!o->peer || o->attempt != -1) return 0;
  if (!o->sv->peers.mesh && strcmp(m->u.chat.origin, o->peer->info.id) != 0) {
    nm_log_ratelimited(&o->sv->chat.forged_log, NM_LOG_WARN, "dropped a line from %s on our connection to %s",
                       m->u.chat.origin, o->peer->info.name);
    return 0;
  }
  snprintf(via, sizeof via, "peer %s", o->peer->info.name);
  sv_chat_receive_from(o->sv, &m->u.chat, via, o->peer->info.id);
  return 0;
}

static const char *const sv__out_state_names[] = {"a peer"};
static const nm_dispatch_entry sv__out_rows[] = {
    {NM_MSG_CHAT, 0, 0, sv__out_on_chat},
};
static const nm_dispatch_table sv__out_table =
    NM_DISPATCH_TABLE("outbound peer connection", sv__out_rows, sv__out_state_names);

/* A punched connection carries the peer's lines too: its peer-hello (the id of the key TLS
 * pinned), then its chat, as an inbound peer connection would. */
static int sv__punched_on_peer_hello(void *session, const nm_msg *m) {
  sv_out *o = session;
  if (!o->peer || strcmp(m->u.peer_hello.id, o->peer->info.id) != 0) {
    char why[120];
    snprintf(why, sizeof why, "peer-hello: id %s is not the peer we %s", m->u.peer_hello.id,
             o->punched ? "punched to" : "dialled");
    nm_conn_fail(&o->conn, NM_EKEY, why);
    return 1;
  }
  nm_frame_reader_set_max(&o->conn.reader, SV_CHAT_FRAME_MAX);
  o->punch_state = 1;
  /* Once per connection of ours, and we make those at our own pace: not rate-limited. */
  if (!o->punched)
    nm_log_info("%s sends us its lines on our connection too (reversed)", o->peer->info.name);
  sv_pull_direct_update(o->sv); /* its lines come this way now: not through our relay */
  return 0;
}

static int sv__punched_on_chat(void *session, const nm_msg *m) {
  sv_out *o = session;
  char via[NM_NAME_MAX + 24];
  if (!o->peer) return 0;
  if (!o->sv->peers.mesh && strcmp(m->u.chat.origin, o->peer->info.id) != 0) {
    nm_log_ratelimited(&o->sv->chat.forged_log, NM_LOG_WARN, "dropped a line from %s on %s's %s connection",
                       m->u.chat.origin, o->peer->info.name, o->punched ? "punched" : "reversed");
    return 0;
  }
  snprintf(via, sizeof via, "peer %s (%s)", o->peer->info.name, o->punched ? "punched" : "reversed");
  sv_chat_receive_from(o->sv, &m->u.chat, via, o->peer->info.id);
  return 0;
}

/* Also a reversed connection's table: the peer's lines after its peer-hello. */
static const char *const sv__punched_state_names[] = {"waiting for peer-hello", "a peer"};
static const nm_dispatch_entry sv__punched_rows[] = {
    {NM_MSG_PEER_HELLO, 0, 0, sv__punched_on_peer_hello},
    {NM_MSG_CHAT, 1, 1, sv__punched_on_chat},
};
static const nm_dispatch_table sv__punched_table =
    NM_DISPATCH_TABLE("punched peer connection", sv__punched_rows, sv__punched_state_names);

static int sv__out_on_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  sv_out *o = c->data;
  /* A reversed connection still waiting for the answer may carry a neighbour's lines sent
   * before the mesh became full again: taken as on any connection of ours. */
  int reversed = o->reverse && (o->punch_state == 1 || type == NM_MSG_PEER_HELLO);
  if (o->punched || reversed) return nm_dispatch(&sv__punched_table, c, o, o->punch_state, type, payload, len);
  return nm_dispatch(&sv__out_table, c, c->data, 0, type, payload, len);
}

static void sv__dial_attempt_failed(servant *sv, sv_peer *p, size_t i, int status, const char *err);
static void sv__dial_step(servant *sv, sv_peer *p);

static void sv__punch_arm(servant *sv);

static void sv__out_closed(nm_conn *c) {
  sv_out *o = c->data;
  servant *sv = o->sv;
  int was_direct = sv__both_ways(o);
  if (o->peer && o->attempt == -2) {
    /* A punch attempt that ended without its connect callback: the next one may go. */
    if (o->peer->punch_try == o) o->peer->punch_try = NULL;
    sv__punch_arm(o->sv);
  } else if (o->peer && o->attempt >= 0 && o->peer->tries[o->attempt] == o) {
    /* An attempt that ended without its connect callback (not expected: nm_conn calls it
     * for every failure); counted as failed so the round cannot hang. */
    sv_peer *p = o->peer;
    p->tries[o->attempt] = NULL;
    sv__dial_attempt_failed(o->sv, p, (size_t)o->attempt, c->close_err ? c->close_err : UV_ECONNRESET, NULL);
    sv__dial_step(o->sv, p);
  } else if (o->peer && o->peer->out == o) {
    sv_peer *p = o->peer;
    int was_up = p->out_ready;
    p->out = NULL;
    p->out_ready = 0;
    /* Closed in its first moments (refused, or lost): what we sent may not have been
     * taken. Sending it again costs nothing: receivers show each line once. */
    if (p->unconfirmed.count) sv__backlog_requeue(p);
    /* A neighbour's connection, or a reversed one that carried the peer's lines to us:
     * dialled again soon, not only when we have a line. */
    if (was_up && c->close_err == 0 && !c->peer_error[0] && !(sv->peers.mesh && p->neighbour) &&
        !(o->reverse && was_direct)) {
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
  /* A direct path went: that peer's lines come through our relay again (it resends its
   * recent ones, in case this path lost some). */
  if (was_direct) sv_pull_direct_update(sv);
}

/* The peer's TLS key is not the one the manager lists for its id: whoever answers at that
 * address is not that peer. Dropped, said (rate-limited: whoever holds the address can make
 * us say it), and counted as a failed candidate like one we cannot reach, which it is. */
static void sv__out_wrong_key(servant *sv, sv_peer *p, const nm_cand *cand, nm_conn *c) {
  const char *why = c->tls ? nm_tls_session_error(c->tls) : "";
  char a[NM_ADDR_STRLEN];
  nm_log_ratelimited(&sv->peers.wrong_key_log, NM_LOG_WARN,
                     "dropped the connection to %s at %s: %s (the manager lists key %s for %s)", p->info.name,
                     nm_addr_str(cand->ip, cand->port, a), why, p->fp.hex, p->info.id);
}

static nm_complaint_reason sv__complaint_reason(int status) {
  return status == UV_ETIMEDOUT ? NM_COMPLAINT_TIMEOUT : status == UV_ECONNREFUSED ? NM_COMPLAINT_REFUSED : NM_COMPLAINT_RESET;
}

/* ---- dialling: one Happy Eyeballs round over the peer's candidates ---------------------- */

/* An attempt closed by us: it lost the race, or the round was abandoned. */
static void sv__out_abandon(sv_out *o) {
  o->peer = NULL;
  nm_conn_close(&o->conn, 0, NULL);
}

static void sv__dial_abort(sv_peer *p) {
  for (size_t i = 0; i < NM_CAND_DIAL_MAX; i++)
    if (p->tries[i]) {
      sv__out_abandon(p->tries[i]);
      p->tries[i] = NULL;
    }
  p->dialing = 0;
  p->dial_wake_ms = 0;
}

/* The shared timer fires at the earliest stagger deadline of any dialling peer. */
static void sv__dial_timer_arm(servant *sv) {
  if (!sv->peers.dial_timer_open || sv->stopping) return;
  uint64_t next = 0, now = sv_now_ms(sv);
  for (sv_peer *p = sv->peers.head; p; p = p->next)
    if (p->dialing && p->dial_wake_ms && (!next || p->dial_wake_ms < next)) next = p->dial_wake_ms;
  if (!next) {
    uv_timer_stop(&sv->peers.dial_timer);
    return;
  }
  uv_timer_start(&sv->peers.dial_timer, sv__dial_timer_cb, next > now ? next - now : 0, 0);
}

static void sv__dial_timer_cb(uv_timer_t *t) {
  servant *sv = t->data;
  uint64_t now = sv_now_ms(sv);
  for (sv_peer *p = sv->peers.head; p; p = p->next)
    if (p->dialing && p->dial_wake_ms && p->dial_wake_ms <= now) sv__dial_step(sv, p);
  sv__dial_timer_arm(sv);
}

/* Every candidate of the round failed: now the peer is unreachable from here, and the
 * manager hears it once for the round. */
static void sv__dial_round_failed(servant *sv, sv_peer *p) {
  const nm_cand *prim = &p->round.cand[p->round.primary];
  char a[NM_ADDR_STRLEN];
  p->dialing = 0;
  p->dial_wake_ms = 0;
  p->failed_cands = p->round.n;
  size_t others = p->round.failed ? p->round.failed - 1 : 0;
  if (others)
    nm_log_info("cannot reach %s at %s: %s; its %zu other candidate%s failed too", p->info.name,
                nm_addr_str(prim->ip, prim->port, a), p->round_err, others, others == 1 ? "" : "s");
  else
    nm_log_info("cannot reach %s at %s: %s", p->info.name, nm_addr_str(prim->ip, prim->port, a), p->round_err);
  /* Tell the manager: enough of these from enough peers make it assign a relay. */
  if (p->listed && !sv__unreachable(p) && sv->peers.on_unreachable)
    sv->peers.on_unreachable(sv, p, p->round_why_set ? p->round_why : NM_COMPLAINT_REFUSED);
  /* Try again later, backing off while the peer stays unreachable. */
  nm_backoff_set_max(&p->backoff, sv__backoff_max(sv));
  p->next_attempt_ms = sv_now_ms(sv) + nm_backoff_next(&p->backoff);
}

/* Attempt i did not get through: remembered for that address, and the round goes on. */
static void sv__dial_attempt_failed(servant *sv, sv_peer *p, size_t i, int status, const char *err) {
  const nm_cand *cand = &p->round.cand[i];
  char a[NM_ADDR_STRLEN];
  if (!err || !err[0]) err = nm_strerror(status);
  nm_log_debug("candidate %s (%s) of %s failed: %s", nm_addr_str(cand->ip, cand->port, a),
               nm_cand_kind_name(cand->kind), p->info.name, err);
  /* The primary's reason is the one the manager judges by; else the first. */
  if (i == p->round.primary || !p->round_why_set) {
    p->round_why = sv__complaint_reason(status);
    p->round_why_set = 1;
    snprintf(p->round_err, sizeof p->round_err, "%s", err);
  }
  nm_cand_round_failed(&p->round, i);
  nm_cand_memory_failed(&p->cand_memory, cand->ip, cand->port, sv_now_ms(sv));
}

/* The round's winner: it becomes the peer's connection. */
static void sv__dial_won(servant *sv, sv_peer *p, sv_out *o) {
  size_t i = (size_t)o->attempt;
  p->tries[i] = NULL;
  nm_cand_round_won(&p->round, i);
  p->path = p->round.cand[i];
  nm_cand_memory_succeeded(&p->cand_memory, p->path.ip, p->path.port);
  sv__dial_abort(p); /* the other attempts of the round: closed without complaint */
  p->failed_cands = 0;
  o->attempt = -1;
  p->out = o;
}

static void sv__out_connected(nm_conn *c, int status) {
  sv_out *o = c->data;
  sv_peer *p = o->peer;
  if (!p || o->attempt < 0 || p->tries[o->attempt] != o) return;
  servant *sv = o->sv;
  size_t i = (size_t)o->attempt;
  if (status < 0) {
    p->tries[i] = NULL;
    o->peer = NULL; /* nm_conn closes it; sv__out_closed frees it */
    const char *tls_err = c->tls ? nm_tls_session_error(c->tls) : "";
    if (status == NM_EKEY) {
      sv__out_wrong_key(sv, p, &p->round.cand[i], c);
      nm_conn_close(c, status, NULL); /* said above */
    }
    sv__dial_attempt_failed(sv, p, i, status, tls_err);
    sv__dial_step(sv, p);
    return;
  }
  sv__dial_won(sv, p, o);
  /* A peer reached at a banned address is banned, whatever the list says it is at. */
  if (!p->banned && nm_banlist_match(&sv->cfg.bans, p->path.ip, NULL)) {
    p->banned = 1;
    nm_log_info("peer %s (%s) is banned by its address %s", p->info.name, p->info.id, p->path.ip);
    sv_inbound_drop(sv, p->info.id, "banned");
  }
  /* TLS proved the listed key; peer-hello says which id we are, which the peer checks
   * against the key we proved. */
  nm_msg hello = {.type = NM_MSG_PEER_HELLO};
  snprintf(hello.u.peer_hello.id, sizeof hello.u.peer_hello.id, "%s", sv->id);
  snprintf(hello.u.peer_hello.name, sizeof hello.u.peer_hello.name, "%s", sv->cfg.name);
  /* Peers may not reach us (we pull): ask for the peer's lines on this connection too. */
  hello.u.peer_hello.reverse = o->reverse = sv__want_reverse(sv);
  nm_msg_send(c, &hello);
  p->out_ready = 1;
  p->idle = 0;
  p->out_since_ms = sv_now_ms(sv);
  nm_frame_reader_set_max(&c->reader, SV_CHAT_FRAME_MAX); /* its lines, in a bounded mesh */
  char a[NM_ADDR_STRLEN];
  nm_conn_set_label(c, "peer %s", p->info.name);
  nm_log_info("connected to %s at %s (%s)", p->info.name, nm_addr_str(p->path.ip, p->path.port, a),
              nm_cand_kind_name(p->path.kind));
  sv__backlog_flush(sv, p);
}

/* Starts attempt i of the peer's round. A failure to even start counts as the attempt
 * failing (the round then moves on at once). */
static void sv__dial_attempt(servant *sv, sv_peer *p, size_t i) {
  const nm_cand *cand = &p->round.cand[i];
  struct sockaddr_storage addr;
  char a[NM_ADDR_STRLEN];
  int rc = nm_addr_to_sockaddr(cand->ip, cand->port, &addr);
  sv_out *o = rc == 0 ? calloc(1, sizeof *o) : NULL;
  if (!o) {
    sv__dial_attempt_failed(sv, p, i, rc < 0 ? rc : UV_ENOMEM, NULL);
    return;
  }
  o->sv = sv;
  o->peer = p;
  o->attempt = (int)i;
  nm_conn_init(sv->loop, &o->conn, sv__out_on_frame, sv__out_closed, o);
  nm_conn_set_label(&o->conn, "peer %s at %s", p->info.name, nm_addr_str(cand->ip, cand->port, a));
  /* Pinned: only the key the manager lists for this peer completes the handshake, at
   * whichever address answers. */
  rc = nm_conn_set_tls(&o->conn, &sv->tls, NM_TLS_CLIENT, &p->fp);
  if (rc == 0) rc = sv_bind_outgoing(sv, &o->conn, (struct sockaddr *)&addr);
  if (rc == 0)
    rc = nm_conn_connect(&o->conn, (struct sockaddr *)&addr, sv__connect_timeout_ms(sv), sv__out_connected);
  if (rc < 0) {
    o->peer = NULL;
    nm_conn_close(&o->conn, rc, NULL);
    sv__dial_attempt_failed(sv, p, i, rc, NULL);
    return;
  }
  p->tries[i] = o;
}

/* Starts whatever the round says is due now; ends the round when every candidate failed;
 * otherwise arms the timer for the next stagger. */
static void sv__dial_step(servant *sv, sv_peer *p) {
  uint64_t now = sv_now_ms(sv), wake = 0;
  int i;
  while (p->dialing && (i = nm_cand_round_next(&p->round, now, &wake)) >= 0) sv__dial_attempt(sv, p, (size_t)i);
  if (!p->dialing) return;
  p->dial_wake_ms = wake;
  if (nm_cand_round_all_failed(&p->round)) sv__dial_round_failed(sv, p);
  sv__dial_timer_arm(sv);
}

static void sv__peer_connect(servant *sv, sv_peer *p) {
  /* A dedicated relay publishes nothing of its own: it only receives and forwards. */
  if (sv->cfg.quiet || p->out || p->dialing || sv->stopping || !sv__wanted(sv, p) || !sv__dials(sv, p)) return;
  if (nm_cand_round_begin(&p->round, &p->info, sv->peers.our_ip, &p->cand_memory, sv_now_ms(sv)) == 0) return;
  memset(p->tries, 0, sizeof p->tries);
  p->dialing = 1;
  p->round_why_set = 0;
  p->round_err[0] = 0;
  p->out_ready = 0;
  p->idle = 0;
  sv__dial_step(sv, p);
}

static void sv__punch_stop(sv_peer *p) {
  p->punching = 0;
  if (p->punch_try) {
    sv__out_abandon(p->punch_try);
    p->punch_try = NULL;
  }
}

static void sv__peer_disconnect(sv_peer *p) {
  sv__dial_abort(p);
  sv__punch_stop(p);
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
static void sv__mesh_apply(servant *sv);
static void sv__backlog_flush_inbound(servant *sv, sv_peer *p);

/* The key decides who the peer is: its fingerprint is what TLS must present. */
static void sv__peer_set_key(sv_peer *p) { nm_fingerprint_of_pubkey(p->info.key, &p->fp); }

/* Whether the manager's candidates for the peer changed (another set, or another order). */
static int sv__cands_changed(const nm_peer *a, const nm_peer *b) {
  if (a->ncands != b->ncands) return 1;
  for (size_t i = 0; i < a->ncands && i < NM_CANDS_MAX; i++)
    if (a->cands[i].port != b->cands[i].port || a->cands[i].kind != b->cands[i].kind ||
        !nm_addr_equal(a->cands[i].ip, b->cands[i].ip))
      return 1;
  return 0;
}

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
    p->neighbour = sv__named_neighbour(sv, info->id);
    p->unwanted = !sv__wanted(sv, p);
    char a[NM_ADDR_STRLEN];
    nm_log_info("peer joined: %s at %s (key %.16s...)", info->name, nm_addr_str(info->ip, info->port, a), p->fp.hex);
    p->listed = 1;
    sv__check_ban(sv, p);
    if (!sv__unreachable(p)) sv__peer_connect(sv, p);
    return;
  }
  int moved = strcmp(p->info.ip, info->ip) != 0 || p->info.port != info->port;
  int new_cands = sv__cands_changed(&p->info, info);
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
    if (p->dialing) sv__peer_disconnect(p);
    return;
  }
  /* It moved: what failed at its old candidates says nothing about the new ones. */
  if (moved || new_cands) nm_cand_memory_reset(&p->cand_memory);
  if (moved || rekeyed) {
    /* A new address (a port mapping appeared or went) or key: reconnect. */
    char a[NM_ADDR_STRLEN];
    if (moved) nm_log_info("peer %s now at %s", info->name, nm_addr_str(info->ip, info->port, a));
    sv__peer_disconnect(p);
    nm_backoff_reset(&p->backoff);
    sv__peer_connect(sv, p);
  } else if (new_cands && !p->out) {
    /* New candidates while we have no connection: try them now. (A working connection is
     * kept: the primary did not change.) */
    nm_log_info("peer %s has new candidate addresses: dialling again", info->name);
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
  sv_peer *p = sv_peer_find(sv, info->id);
  int fresh = !p || !p->listed;
  sv__peer_upsert(sv, info);
  p = sv_peer_find(sv, info->id);
  if (!p) return; /* out of memory */
  /* A servant we now list may not reach us directly: our relay may be needed again. */
  if (fresh) sv_pull_direct_update(sv);
  /* A neighbour's relay may have changed, or a relay we need may be new to the table. */
  if (sv->peers.mesh && (p->neighbour || sv__unreachable(p) || p->relays_neighbour)) sv__mesh_apply(sv);
  sv_inbound_listed(sv, p);
  sv_chat_listed(sv, p->info.id);
}

void sv_peers_remove(servant *sv, const char *id, const char *reason) {
  for (sv_peer **pp = &sv->peers.head; *pp; pp = &(*pp)->next) {
    if (strcmp((*pp)->info.id, id) != 0) continue;
    sv_peer *p = *pp;
    *pp = p->next;
    /* No reason: it left our view only (views.h on the manager), not the overlay. */
    if (reason) nm_log_info("peer left: %s (%s)", p->info.name, reason);
    else nm_log_debug("peer out of our view: %s", p->info.name);
    sv__peer_free(sv, p, reason ? "it left the overlay" : "it left our view");
    sv_pull_direct_update(sv); /* it may have been the last not reaching us directly */
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

/* Whether our lines for p go on its connection to us: we have none of our own to it, and
 * it is a neighbour in a bounded mesh (a pair makes one connection), or, in the full mesh,
 * it asked for them there (reversal). */
static int sv__sends_inbound(const servant *sv, const sv_peer *p) {
  if (p->out_ready || !p->in_conn || p->in_conn->closing) return 0;
  return sv->peers.mesh ? p->neighbour : p->in_reverse;
}

/* One line to one peer: on its connection, or into its backlog (which reopens an idle
 * connection). The connection's write queue and the backlog bound what it may hold. */

static void sv__send_line(servant *sv, sv_peer *p, const char *payload, size_t len) {
  if (p->out_ready) {
    int rc = sv__out_send(sv, p, payload, len, sv_now_ms(sv));
    if (rc == NM_EQUEUE_FULL)
      nm_log_ratelimited(&sv->peers.full_log, NM_LOG_WARN, "%s is not reading: line dropped for it", p->info.name);
  } else if (sv__sends_inbound(sv, p)) {
    /* The neighbour dialled us, or it asked (reversal): our lines go back on its connection. */
    int rc = nm_conn_send(p->in_conn, NM_MSG_CHAT, payload, len);
    if (rc == NM_EQUEUE_FULL)
      nm_log_ratelimited(&sv->peers.full_log, NM_LOG_WARN, "%s is not reading: line dropped for it", p->info.name);
  } else if (!sv__unreachable(p)) {
    sv__backlog_push(sv, p, payload, len);
    if (p->idle && !p->out && !p->dialing) sv__peer_connect(sv, p);
  }
}

void sv_peers_forward(servant *sv, const char *payload, size_t len, const char *origin, const char *from) {
  if (!sv->peers.mesh) return;
  for (sv_peer *p = sv->peers.head; p; p = p->next) {
    /* A dedicated relay gets every line from its origin (everyone sends it theirs), and
     * takes on a peer's connection only that peer's own lines. */
    int relay_of_neighbour = p->relays_neighbour && p->info.role != NM_ROLE_RELAY;
    if (!p->listed || !(p->neighbour || relay_of_neighbour) || strcmp(p->info.id, origin) == 0 ||
        (from && strcmp(p->info.id, from) == 0))
      continue;
    sv__send_line(sv, p, payload, len);
  }
}

int sv_peers_meshed(servant *sv) { return sv->peers.mesh; }

/* A neighbour nobody can dial (relayed) is reached through its relay: the relay becomes a
 * peer we keep a connection to. Recomputed when the set changes and when a neighbour's
 * entry does (O(peers + neighbours x peers)). */
static void sv__mesh_relays(servant *sv) {
  for (sv_peer *p = sv->peers.head; p; p = p->next) p->relays_neighbour = 0;
  if (!sv->peers.mesh) return;
  for (sv_peer *q = sv->peers.head; q; q = q->next) {
    if (!q->neighbour || !q->listed || !sv__unreachable(q) || !q->info.relay[0]) continue;
    sv_peer *r = sv_peer_find(sv, q->info.relay);
    if (r && strcmp(r->info.id, sv->id) != 0) r->relays_neighbour = 1;
  }
}

/* After the set or a neighbour's relay changed: close what we no longer need, dial what we
 * now do. */
static void sv__mesh_apply(servant *sv) {
  sv__mesh_relays(sv);
  for (sv_peer *p = sv->peers.head; p; p = p->next) {
    int wanted = sv__wanted(sv, p), was = !p->unwanted;
    p->unwanted = !wanted;
    if (!wanted && (was || p->out || p->dialing)) {
      /* Not ours to reach any more: our lines go to it through the mesh. */
      sv__peer_disconnect(p);
      nm_lineq_clear(&p->backlog);
      nm_lineq_clear(&p->unconfirmed);
      p->idle = 0;
    } else if (wanted && !sv__dials(sv, p)) {
      /* A neighbour that dials us: one connection for the pair, ours goes. */
      if (p->out || p->dialing) sv__peer_disconnect(p);
      sv__backlog_flush_inbound(sv, p);
    } else if (wanted && (!was || (sv->peers.mesh && p->idle)) && p->listed && !p->out && !p->dialing &&
               !sv__unreachable(p)) {
      /* Newly ours (a new neighbour, or back to the full mesh), or a neighbour whose
       * connection was closed for being idle: dial it now. */
      if (!was) nm_backoff_reset(&p->backoff);
      p->idle = 0;
      sv__peer_connect(sv, p);
    }
  }
}

void sv_peers_set_neighbours(servant *sv, const nm_msg_neighbours *n) {
  sv_peers *ps = &sv->peers;
  int was = ps->mesh;
  ps->mesh = n->count > 0;
  ps->mesh_version = n->version;
  ps->nneighbours = n->count < NM_NEIGHBOURS_MAX ? n->count : NM_NEIGHBOURS_MAX;
  memcpy(ps->neighbours, n->ids, ps->nneighbours * sizeof ps->neighbours[0]);
  if (ps->mesh)
    nm_log_info("mesh: %zu neighbours (list version %llu)", ps->nneighbours, (unsigned long long)n->version);
  else if (was)
    nm_log_info("mesh: the full mesh again (list version %llu)", (unsigned long long)n->version);
  for (sv_peer *p = ps->head; p; p = p->next) p->neighbour = sv__named_neighbour(sv, p->info.id);
  sv__mesh_apply(sv);
  /* The full mesh again: if we pull, peers may send their lines back on our connections. */
  if (was && !ps->mesh) sv_peers_ask_reverse(sv);
}

void sv_peers_publish(servant *sv, const char *payload, size_t len) {
  for (sv_peer *p = sv->peers.head; p; p = p->next)
    if (sv__wanted(sv, p)) sv__send_line(sv, p, payload, len);
}

/* What waited in p's backlog goes on its connection to us (we do not dial it). */
static void sv__backlog_flush_inbound(servant *sv, sv_peer *p) {
  uint64_t now = sv_now_ms(sv);
  nm_lineq_item *it;
  while (sv__sends_inbound(sv, p) && (it = nm_lineq_pop(&p->backlog))) {
    if (!nm_lineq_expired(&p->backlog, it, now)) nm_conn_send(p->in_conn, NM_MSG_CHAT, it->payload, it->len);
    free(it);
  }
}

void sv_peers_inbound_up(servant *sv, const char *id, nm_conn *c) {
  sv_peer *p = sv_peer_find(sv, id);
  if (!p) return;
  p->in_conn = c;
  p->in_reverse = 0; /* a new connection: asks again if it wants reversal */
  sv__backlog_flush_inbound(sv, p);
}

void sv_peers_inbound_reversed(servant *sv, const char *id, nm_conn *c) {
  sv_peer *p = sv_peer_find(sv, id);
  if (!p || p->in_conn != c) return;
  p->in_reverse = 1;
  sv__backlog_flush_inbound(sv, p);
}

void sv_peers_inbound_down(servant *sv, const char *id, nm_conn *c) {
  sv_peer *p = sv_peer_find(sv, id);
  if (p && p->in_conn == c) {
    p->in_conn = NULL;
    p->in_reverse = 0;
  }
}

int sv_peers_keep_inbound(servant *sv, const char *id) {
  sv_peer *p = sv->peers.mesh ? sv_peer_find(sv, id) : NULL;
  return p && p->neighbour;
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
    if (!p->out && !p->dialing && now >= p->next_attempt_ms && !sv__unreachable(p) && (!p->idle || p->backlog.count))
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
  if (sv->peers.dial_timer_open) uv_close((uv_handle_t *)&sv->peers.dial_timer, NULL);
  sv->peers.dial_timer_open = 0;
  if (sv->peers.punch_timer_open) uv_close((uv_handle_t *)&sv->peers.punch_timer, NULL);
  sv->peers.punch_timer_open = 0;
}

/* ---- punching: a coordinated simultaneous open (nm_punch.h) ---------------------------- */

static void sv__punch_give_up(servant *sv, sv_peer *p) {
  char a[NM_ADDR_STRLEN];
  p->punching = 0;
  nm_log_info("punch to %s at %s failed after %d attempt%s (%s): no direct path", p->info.name,
              nm_addr_str(p->punch_ip, p->punch_port, a), p->punch_attempts, p->punch_attempts == 1 ? "" : "s",
              p->punch_err[0] ? p->punch_err : "no answer");
  (void)sv;
}

/* The punch made one TCP connection of both dials and TLS proved the listed key: it becomes
 * our connection to the peer, and carries its lines to us too. */
static void sv__punch_won(servant *sv, sv_peer *p, sv_out *o) {
  char a[NM_ADDR_STRLEN];
  p->punch_try = NULL;
  p->punching = 0;
  if (p->out) {
    /* Reached some other way meanwhile: that connection stays. */
    sv__out_abandon(o);
    return;
  }
  sv__dial_abort(p);
  o->attempt = -1;
  p->out = o;
  memset(&p->path, 0, sizeof p->path);
  snprintf(p->path.ip, sizeof p->path.ip, "%.*s", (int)sizeof p->path.ip - 1, p->punch_ip);
  p->path.port = p->punch_port;
  p->path.kind = NM_CAND_PUNCH;
  p->failed_cands = 0;
  nm_msg hello = {.type = NM_MSG_PEER_HELLO};
  snprintf(hello.u.peer_hello.id, sizeof hello.u.peer_hello.id, "%s", sv->id);
  snprintf(hello.u.peer_hello.name, sizeof hello.u.peer_hello.name, "%s", sv->cfg.name);
  nm_msg_send(&o->conn, &hello);
  p->out_ready = 1;
  p->idle = 0;
  p->out_since_ms = sv_now_ms(sv);
  nm_conn_set_label(&o->conn, "peer %s (punched)", p->info.name);
  nm_log_info("connected to %s at %s (punched, attempt %d, TLS %s)", p->info.name,
              nm_addr_str(p->punch_ip, p->punch_port, a), p->punch_attempts,
              o->conn.tls_role == NM_TLS_CLIENT ? "client" : "server");
  sv__backlog_flush(sv, p);
}

static void sv__punch_connected(nm_conn *c, int status) {
  sv_out *o = c->data;
  sv_peer *p = o->peer;
  if (!p || p->punch_try != o) return;
  servant *sv = o->sv;
  if (status == 0) {
    sv__punch_won(sv, p, o);
    return;
  }
  p->punch_try = NULL;
  o->peer = NULL; /* nm_conn closes it; sv__out_closed frees it */
  const char *tls_err = c->tls ? nm_tls_session_error(c->tls) : "";
  snprintf(p->punch_err, sizeof p->punch_err, "%s", tls_err && tls_err[0] ? tls_err : nm_strerror(status));
  nm_log_debug("punch attempt %d to %s failed: %s", p->punch_attempts, p->info.name, p->punch_err);
  if (p->punch_attempts >= NM_PUNCH_ATTEMPTS) sv__punch_give_up(sv, p);
  sv__punch_arm(sv);
}

static void sv__punch_attempt(servant *sv, sv_peer *p) {
  struct sockaddr_storage addr;
  uint16_t port = sv_manager_local_port(sv);
  p->punch_attempts++;
  p->punch_at_ms += NM_PUNCH_INTERVAL_MS;
  nm_tls_role role = nm_punch_tls_role(sv->identity.pub, p->info.key);
  sv_out *o = NULL;
  int rc = !port ? UV_ENOTCONN : !role ? -EINVAL : nm_addr_to_sockaddr(p->punch_ip, p->punch_port, &addr);
  if (rc == 0 && !(o = calloc(1, sizeof *o))) rc = UV_ENOMEM;
  if (rc < 0) {
    snprintf(p->punch_err, sizeof p->punch_err, "%s", !port ? "no session with the manager to leave from" : nm_strerror(rc));
    sv__punch_give_up(sv, p);
    return;
  }
  char a[NM_ADDR_STRLEN];
  o->sv = sv;
  o->peer = p;
  o->attempt = -2;
  o->punched = 1;
  nm_conn_init(sv->loop, &o->conn, sv__out_on_frame, sv__out_closed, o);
  nm_conn_set_label(&o->conn, "punch to %s at %s", p->info.name, nm_addr_str(p->punch_ip, p->punch_port, a));
  /* Both sides pin the key the list gives; the smaller key plays the TLS client. */
  rc = nm_conn_set_tls(&o->conn, &sv->tls, role, &p->fp);
  if (rc == 0) rc = sv_connect_from_port(sv, &o->conn, (struct sockaddr *)&addr, port, NM_PUNCH_ATTEMPT_MS, sv__punch_connected);
  if (rc < 0) {
    o->peer = NULL;
    nm_conn_close(&o->conn, rc, NULL);
    snprintf(p->punch_err, sizeof p->punch_err, "%s", nm_strerror(rc));
    if (p->punch_attempts >= NM_PUNCH_ATTEMPTS) sv__punch_give_up(sv, p);
    return;
  }
  p->punch_try = o;
  nm_log_debug("punch attempt %d to %s at %s from port %u (TLS %s)", p->punch_attempts, p->info.name, a, port,
               role == NM_TLS_CLIENT ? "client" : "server");
}

static void sv__punch_timer_cb(uv_timer_t *t) {
  servant *sv = t->data;
  uint64_t now = sv_now_ms(sv);
  for (sv_peer *p = sv->peers.head; p; p = p->next) {
    if (!p->punching || p->punch_try || p->punch_at_ms > now) continue;
    if (p->out_ready) {
      p->punching = 0; /* reached meanwhile */
      continue;
    }
    sv__punch_attempt(sv, p);
  }
  sv__punch_arm(sv);
}

/* One timer for every peer's next punch attempt: it fires at the earliest. */
static void sv__punch_arm(servant *sv) {
  if (!sv->peers.punch_timer_open || sv->stopping) return;
  uint64_t next = 0, now = sv_now_ms(sv);
  for (sv_peer *p = sv->peers.head; p; p = p->next)
    if (p->punching && !p->punch_try && (!next || p->punch_at_ms < next)) next = p->punch_at_ms;
  if (!next) {
    uv_timer_stop(&sv->peers.punch_timer);
    return;
  }
  uv_timer_start(&sv->peers.punch_timer, sv__punch_timer_cb, next > now ? next - now : 0, 0);
}

void sv_peers_punch(servant *sv, const nm_msg_punch *m) {
  sv_peer *p = sv_peer_find(sv, m->id);
  char a[NM_ADDR_STRLEN];
  if (!p || !p->listed || !nm_pubkey_equal(p->info.key, m->key)) {
    nm_log_info("punch to %s ignored: not in our peer list with that key", m->id);
    return;
  }
  if (sv->cfg.quiet || sv->stopping) return;
  if (p->out_ready) {
    nm_log_debug("punch to %s ignored: already connected", p->info.name);
    return;
  }
  if (p->punch_try) {
    sv__out_abandon(p->punch_try);
    p->punch_try = NULL;
  }
  p->punching = 1;
  snprintf(p->punch_ip, sizeof p->punch_ip, "%s", m->ip);
  p->punch_port = m->port;
  p->punch_at_ms = sv_now_ms(sv) + m->delay_ms;
  p->punch_attempts = 0;
  p->punch_err[0] = 0;
  nm_tls_role role = nm_punch_tls_role(sv->identity.pub, p->info.key);
  nm_log_info("punch: dialling %s at %s in %llu ms from port %u, as the manager says (%d attempts; TLS %s)",
              p->info.name, nm_addr_str(m->ip, m->port, a), (unsigned long long)m->delay_ms, sv_manager_local_port(sv),
              NM_PUNCH_ATTEMPTS, role == NM_TLS_CLIENT ? "client" : "server");
  sv__punch_arm(sv);
}

/* The path our lines take to p, for /peers. */
static const char *sv__path(servant *sv, const sv_peer *p, char *buf, size_t len) {
  char a[NM_ADDR_STRLEN];
  if (p->out_ready) {
    snprintf(buf, len, "direct via %s (%s%s)", nm_addr_str(p->path.ip, p->path.port, a),
             p->path.kind == NM_CAND_PUNCH ? "punched" : nm_cand_kind_name(p->path.kind),
             p->out && p->out->reverse && p->out->punch_state == 1 ? ", reversed: its lines come back on it" : "");
    return buf;
  }
  if (sv__sends_inbound(sv, p)) {
    snprintf(buf, len, "direct via its connection to us%s", sv->peers.mesh ? "" : " (reversed)");
    return buf;
  }
  size_t n = 0;
  /* A failed round is the news until one succeeds (the retry rounds in between show it). */
  if (p->failed_cands) {
    snprintf(buf, len, "no direct path (%zu candidate%s failed)", p->failed_cands, p->failed_cands == 1 ? "" : "s");
  } else if (p->dialing) {
    snprintf(buf, len, "dialling (%zu candidate%s)", p->round.n, p->round.n == 1 ? "" : "s");
  } else if (sv__unreachable(p)) {
    snprintf(buf, len, "no direct path (unreachable)");
  } else {
    snprintf(buf, len, "not connected");
  }
  n = strlen(buf);
  /* A relay between us: the peer pulls from one (its entry names it), or we do. */
  const char *relay = p->info.relay[0] ? sv_peer_name(sv, p->info.relay) : NULL;
  if (p->info.relay[0])
    snprintf(buf + n, len - n, ", via relay %s", relay ? relay : p->info.relay);
  else if (sv->pull.assigned)
    snprintf(buf + n, len - n, ", via relay %s (we pull)", sv->pull.name);
  return buf;
}

void sv_peers_direct(servant *sv, char (*ids)[NM_ID_LEN + 1], size_t max, size_t *count) {
  *count = 0;
  for (sv_peer *p = sv->peers.head; p && *count < max; p = p->next)
    if (p->listed && p->info.role != NM_ROLE_RELAY && sv__both_ways(p->out))
      memcpy(ids[(*count)++], p->info.id, sizeof ids[0]); /* a dedicated relay publishes nothing */
}

void sv_peers_ask_reverse(servant *sv) {
  if (!sv__want_reverse(sv)) return;
  for (sv_peer *p = sv->peers.head; p; p = p->next) {
    sv_out *o = p->out;
    if (!p->out_ready || !o || o->punched || o->reverse || o->conn.closing) continue;
    nm_msg hello = {.type = NM_MSG_PEER_HELLO};
    snprintf(hello.u.peer_hello.id, sizeof hello.u.peer_hello.id, "%s", sv->id);
    snprintf(hello.u.peer_hello.name, sizeof hello.u.peer_hello.name, "%s", sv->cfg.name);
    hello.u.peer_hello.reverse = 1;
    /* A peer that does not know reversal refuses a second peer-hello and closes: we dial
     * again, asking in the first one. */
    if (nm_msg_send(&o->conn, &hello) == 0) o->reverse = 1;
  }
}

int sv_peers_all_direct(servant *sv) {
  size_t direct = 0;
  for (sv_peer *p = sv->peers.head; p; p = p->next) {
    if (!p->listed || p->banned || p->info.role == NM_ROLE_RELAY) continue;
    if (!sv__both_ways(p->out)) return 0;
    direct++;
  }
  /* Alone (a newcomer whose peers are still joining): the relay is what will bring the
   * first lines of whoever comes, so it is not "all direct". */
  return direct > 0;
}

size_t sv_peers_print(servant *sv, FILE *out) {
  size_t n = 0;
  for (sv_peer *p = sv->peers.head; p; p = p->next) {
    if (!p->listed) continue;
    n++;
    char a[NM_ADDR_STRLEN], path[160];
    fprintf(out, "  peer %s %s %s %s%s%s%s key %s, %s\n", p->info.name, p->info.id, nm_addr_str(p->info.ip, p->info.port, a),
            nm_reach_name(p->info.state), sv->peers.mesh && p->neighbour ? " neighbour" : "",
            p->out_ready || sv__sends_inbound(sv, p) ? " connected" : "", p->banned ? " banned" : "", p->fp.hex,
            sv__path(sv, p, path, sizeof path));
  }
  if (sv->peers.mesh) {
    size_t conns = 0;
    for (sv_peer *p = sv->peers.head; p; p = p->next) conns += p->listed && (p->out_ready || sv__sends_inbound(sv, p));
    fprintf(out, "  mesh: %zu neighbours, connected to %zu peers\n", sv->peers.nneighbours, conns);
    /* Views: the list is ours, not the overlay's. K counts us too, as N does. */
    if (sv->mgr.overlay_servants)
      fprintf(out, "  mesh: view of %zu of %llu servants\n", sv_peers_count(sv) + 1,
              (unsigned long long)sv->mgr.overlay_servants);
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
  if (nm_addr_to_sockaddr(p->info.ip, p->info.port, &addr) < 0) {
    free(l);
    return;
  }
  if (uv_getnameinfo(sv->loop, &l->req, sv__on_peer_name, (struct sockaddr *)&addr, NI_NAMEREQD) < 0) free(l);
}
