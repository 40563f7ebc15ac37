/* The servant's session with the connection manager: resolve (off the loop), connect,
 * hello, welcome, listen, heartbeat, keep the peer list current; on loss, reconnect with
 * backoff while chat with known peers goes on. */
#include "manager_link.h"
#include "inbound.h"
#include "peers.h"
#include "portmap.h"
#include "pull.h"
#include "servant.h"
#include "nm_addr.h"
#include "nm_error.h"
#include "nm_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define SV_MGR_BACKOFF_FIRST_MS 250
#define SV_MGR_BACKOFF_MAX_MS 4000
#define SV_WELCOME_TIMEOUT_MS 10000

static void sv__mgr_resolve(servant *sv);

static void sv__mgr_retry_cb(uv_timer_t *t) { sv__mgr_resolve(t->data); }

static const sv_join_manager *sv__mgr_current(servant *sv) { return &sv->cfg.join.managers[sv->mgr.current]; }

const nm_fingerprint *sv_manager_fp(servant *sv) { return &sv__mgr_current(sv)->fp; }

static const char *sv__mgr_addr_of(const sv_join_manager *m, char *buf, size_t len) {
  snprintf(buf, len, strchr(m->host, ':') ? "[%s]:%u" : "%s:%u", m->host, m->port);
  return buf;
}

/* The session with the current manager failed: with several, the next one at once, until
 * each failed once in this round (then the backoff). Returns 1 when it moved on. */
static int sv__mgr_failover(servant *sv, const char *why) {
  char from[SV_MGR_ADDR_STRLEN], to[SV_MGR_ADDR_STRLEN];
  sv_manager_link *l = &sv->mgr;
  size_t n = sv->cfg.join.nmanagers;
  if (n < 2) return 0;
  sv__mgr_addr_of(sv__mgr_current(sv), from, sizeof from);
  l->current = (l->current + 1) % n;
  if (++l->round_failed >= n) {
    l->round_failed = 0;
    return 0; /* a whole round failed: the backoff, then the next one */
  }
  /* Said at each move until a whole round failed: then the rounds of a long outage are
   * debug noise, as single-manager retries are. */
  nm_log(l->outage_logged ? NM_LOG_DEBUG : NM_LOG_WARN, "manager %s unreachable (%s); trying %s", from, why,
         sv__mgr_addr_of(sv__mgr_current(sv), to, sizeof to));
  /* From the timer, not from here: this runs in the old session's close callback. */
  uv_timer_start(&l->retry, sv__mgr_retry_cb, 0, 0);
  return 1;
}

static void sv__mgr_schedule_retry(servant *sv, const char *why) {
  char ma[SV_MGR_ADDR_STRLEN];
  sv_manager_link *l = &sv->mgr;
  l->state = SV_MGR_IDLE;
  if (sv->stopping) return;
  if (sv__mgr_failover(sv, why)) return;
  unsigned delay = nm_backoff_next(&l->backoff);
  /* Say it once per outage; the retries themselves are debug noise. */
  if (sv->cfg.join.nmanagers > 1)
    nm_log(l->outage_logged ? NM_LOG_DEBUG : NM_LOG_WARN,
           "all %zu managers unreachable (the last: %s); trying %s in %.2f s, chat with known peers goes on",
           sv->cfg.join.nmanagers, why, sv_manager_address(sv, ma, sizeof ma), delay / 1000.0);
  else
    nm_log(l->outage_logged ? NM_LOG_DEBUG : NM_LOG_WARN,
           "manager %s unreachable (%s); retrying in %.2f s, chat with known peers goes on",
           sv_manager_address(sv, ma, sizeof ma), why, delay / 1000.0);
  l->outage_logged = 1;
  uv_timer_start(&l->retry, sv__mgr_retry_cb, delay, 0);
}

/* nm_tls says "peer presented key <fp>, expected <fp>": the key it presented, or "". */
static void sv__presented_key(const char *why, char out[NM_FINGERPRINT_HEX + 1]) {
  const char *p = why ? strstr(why, "presented key ") : NULL;
  out[0] = 0;
  if (!p) return;
  p += strlen("presented key ");
  size_t n = strspn(p, "0123456789abcdef");
  if (n == NM_FINGERPRINT_HEX) {
    memcpy(out, p, n);
    out[n] = 0;
  }
}

/* Whatever answers at the manager's address with another key is not our manager: we never
 * say hello to it (a rogue manager would learn our name and secret, and feed us a peer
 * list). Said once per key, as an error: only the operator can fix it. */
static void sv__mgr_wrong_key(servant *sv, nm_conn *c) {
  char ma[SV_MGR_ADDR_STRLEN];
  sv_manager_link *l = &sv->mgr;
  const sv_join_manager *j = sv__mgr_current(sv);
  const char *why = c->tls ? nm_tls_session_error(c->tls) : "";
  nm_fingerprint presented = {{0}};
  sv__presented_key(why, presented.hex);
  int again = presented.hex[0] && nm_fingerprint_equal(&presented, &l->wrong_key_logged);
  l->wrong_key_logged = presented;
  l->outage_logged = 1; /* this error says it all: no "unreachable" warning after it */
  nm_log(again ? NM_LOG_DEBUG : NM_LOG_ERROR,
         "manager at %s presented key %s, but %s names %s: refusing to register there (retrying with "
         "backoff; check the address, or ask the manager's operator for a new invite)",
         sv_manager_address(sv, ma, sizeof ma), presented.hex[0] ? presented.hex : why,
         j->key_source == SV_KEY_FROM_INVITE ? "the invite"
         : j->key_source == SV_KEY_FROM_CONFIG ? "<connectionmgr>"
                                               : "--manager-key",
         j->fp.hex);
}

/* Everything up to the manager goes through here: built by the message layer, and only
 * once the session has said hello. */
static void sv__mgr_send(servant *sv, const nm_msg *m) {
  if (!sv->mgr.conn || sv->mgr.state < SV_MGR_HELLO_SENT) return;
  int rc = nm_msg_send(sv->mgr.conn, m);
  if (rc < 0 && rc != NM_EQUEUE_FULL) nm_log_warn("%s not sent to the manager: %s", nm_msg_name(m->type), nm_strerror(rc));
}

static void sv__mgr_send_empty(servant *sv, uint8_t type) {
  nm_msg m = {.type = type};
  sv__mgr_send(sv, &m);
}

int sv_manager_registered(servant *sv) { return sv->mgr.state == SV_MGR_REGISTERED; }

const char *sv_manager_observed_ip(servant *sv) { return sv->mgr.observed_ip; }
uint16_t sv_manager_local_port(servant *sv) { return sv->mgr.conn && sv->mgr.state != SV_MGR_CONNECTING ? sv->mgr.local_port : 0; }

const char *sv_manager_address(servant *sv, char *buf, size_t len) {
  return sv__mgr_addr_of(sv__mgr_current(sv), buf, len);
}

nm_reach_state sv_manager_reach(servant *sv) { return sv->mgr.reach; }

void sv_manager_complain(servant *sv, const char *accused, nm_complaint_reason why) {
  nm_msg m = {.type = NM_MSG_COMPLAINT};
  snprintf(m.u.complaint.accused, sizeof m.u.complaint.accused, "%s", accused);
  m.u.complaint.reason = why;
  sv__mgr_send(sv, &m);
}

void sv_manager_report_mapping(servant *sv, const nm_msg_mapping *mapping) {
  nm_msg m = {.type = NM_MSG_MAPPING};
  m.u.mapping = *mapping;
  sv__mgr_send(sv, &m);
}

static void sv__mgr_report_load(servant *sv) {
  nm_msg m = {.type = NM_MSG_RELAY_LOAD};
  if (rl_load(&sv->relay, &m.u.relay_load)) sv__mgr_send(sv, &m);
}

/* A manager whose host vanished never closes the session: TCP would keep retrying for
 * minutes. No word for a whole timeout means it is gone; reconnect, to the next manager
 * when there are several (chat goes on). The timer is lazy: it fires timeout_s after it
 * was armed, and when the manager spoke since, is armed again for what remains. */
static void sv__mgr_silence(uv_timer_t *t) {
  servant *sv = t->data;
  sv_manager_link *l = &sv->mgr;
  if (!l->conn || !l->timeout_s) return;
  uint64_t quiet = sv_now_ms(sv) - l->last_heard_ms, limit = (uint64_t)l->timeout_s * 1000;
  if (quiet < limit) {
    uv_timer_start(&l->silence, sv__mgr_silence, limit - quiet, 0);
    return;
  }
  snprintf(l->failure, sizeof l->failure, "manager silent for %u s", l->timeout_s);
  nm_conn_close(l->conn, UV_ETIMEDOUT, l->failure);
}

static void sv__mgr_heartbeat(uv_timer_t *t) {
  servant *sv = t->data;
  sv_manager_link *l = &sv->mgr;
  nm_msg m = {.type = NM_MSG_HEARTBEAT};
  m.u.heartbeat.version = l->list_version;
  m.u.heartbeat.direct_all = sv_pull_direct_all(sv); /* our relay on standby, or back */
  sv__mgr_send(sv, &m);
  sv__mgr_report_load(sv);
}

void sv_manager_report_direct(servant *sv) {
  if (sv->mgr.state != SV_MGR_REGISTERED) return;
  nm_msg m = {.type = NM_MSG_HEARTBEAT};
  m.u.heartbeat.version = sv->mgr.list_version;
  m.u.heartbeat.direct_all = sv_pull_direct_all(sv);
  sv__mgr_send(sv, &m);
}

/* listening: our port, and (unless --no-local-addresses) our interface addresses, where
 * peers behind the same router reach us (docs/protocol.md, "Candidates"). */
static void sv__mgr_send_listening(servant *sv, uint16_t port, uint16_t busy) {
  nm_msg m = {.type = NM_MSG_LISTENING};
  m.u.listening.port = busy ? 0 : port;
  m.u.listening.busy = busy;
  if (!busy && sv->cfg.local_addresses) {
    m.u.listening.naddrs = sv_local_addresses(m.u.listening.addrs, NM_LOCAL_ADDRS_MAX);
    if (m.u.listening.naddrs) {
      char list[NM_LOCAL_ADDRS_MAX * NM_IP_STRLEN] = "";
      for (size_t i = 0; i < m.u.listening.naddrs; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? " " : "", m.u.listening.addrs[i]);
      nm_log_debug("reporting our local addresses to the manager: %s", list);
    }
  }
  sv__mgr_send(sv, &m);
}

static void sv__mgr_request_list(servant *sv) { sv__mgr_send_empty(sv, NM_MSG_PEERS_REQUEST); }

/* ---- what the manager sends: one handler per message, dispatched by the table below ---- */

static int sv__mgr_on_welcome(void *session, const nm_msg *msg) {
  servant *sv = session;
  sv_manager_link *l = &sv->mgr;
  const nm_msg_welcome *w = &msg->u.welcome;
  snprintf(l->observed_ip, sizeof l->observed_ip, "%s", w->ip);
  sv_peers_set_observed(sv, w->ip);
  sv_observe_set_addrs(sv, w);
  nm_conn_deadline_clear(l->conn);
  /* Welcomed: an error frame from now on is not a refusal we report once (sv__mgr_refused)
   * but news, which nm_conn logs as it comes. */
  l->conn->owner_logs_errors = 0;
  sv_peers_set_timing(sv, w->heartbeat_s, w->timeout_s);
  sv_inbound_set_timeout(sv, w->timeout_s);
  if (w->has_cert) sv_chat_set_member(sv, w);
  if (!sv_listening(sv)) {
    int rc = sv_listen(sv, w->port);
    if (rc < 0) {
      if (sv->cfg.port) {
        char a[NM_ADDR_STRLEN];
        nm_log_error("cannot listen on %s: %s", nm_addr_str(sv->cfg.listen, w->port, a), uv_strerror(rc));
        sv->stopping = 1;
        uv_stop(sv->loop);
        return 1;
      }
      nm_log_info("assigned port %u is busy (%s); asking for another", w->port, uv_strerror(rc));
      sv__mgr_send_listening(sv, 0, w->port);
      return 0;
    }
  }
  if (l->heartbeat_s != w->heartbeat_s || !uv_is_active((uv_handle_t *)&l->heartbeat))
    uv_timer_start(&l->heartbeat, sv__mgr_heartbeat, w->heartbeat_s * 1000, w->heartbeat_s * 1000);
  l->heartbeat_s = w->heartbeat_s;
  l->timeout_s = w->timeout_s;
  if (w->timeout_s) uv_timer_start(&l->silence, sv__mgr_silence, (uint64_t)w->timeout_s * 1000, 0);
  sv__mgr_send_listening(sv, sv_listen_port(sv), 0);
  return 0;
}

/* The whole list arrived (in one document or the last of its pages): it replaces ours. */
static void sv__mgr_apply_list(servant *sv, const nm_peerlist *list) {
  sv_manager_link *l = &sv->mgr;
  int fresh = l->state != SV_MGR_REGISTERED;
  if (fresh) {
    l->state = SV_MGR_REGISTERED;
    nm_backoff_reset(&l->backoff);
    l->round_failed = 0;
    l->outage_logged = 0;
    l->refusal_logged[0] = 0;
    memset(&l->wrong_key_logged, 0, sizeof l->wrong_key_logged);
    nm_log_info("registered as %s (%s), seen as %s, listening on %u", sv->cfg.name, sv->id,
                l->observed_ip, sv_listen_port(sv));
  }
  nm_peer *self = nm_peerlist_find((nm_peerlist *)list, sv->id);
  if (self) l->reach = self->state;
  sv_peers_apply_full(sv, list);
  if (fresh) sv_portmap_on_registered(sv, l->observed_ip, sv_listen_port(sv));
  if (fresh) sv_observe_start(sv);
  l->list_version = list->version;
  l->have_list = 1;
  nm_log_info("peer list version %llu (%zu peers)", (unsigned long long)list->version, list->count);
}

static void sv__mgr_paging_drop(sv_manager_link *l) {
  if (l->paging) {
    nm_peerlist_close(l->paging);
    free(l->paging);
  }
  l->paging = NULL;
  l->paging_pages = l->paging_next = 0;
}

/* One page of a paged list, checked against the ones before: in order, of one version,
 * shared pages without <me>, the last with only our own entry, at most SV_PEERS_TOTAL_MAX
 * peers in all. Returns 1 when the list is whole (in l->paging), 0 when more is due, or
 * NM_EMSG with the reason in err (the pages so far are dropped, the list we hold kept). */
static int sv__mgr_page(servant *sv, const nm_msg_peers *pg, char *err, size_t errlen) {
  sv_manager_link *l = &sv->mgr;
  const nm_peerlist *in = pg->list;
  if (pg->page == 0 && l->paging) {
    snprintf(err, errlen, "peer list version %llu begins before paged list version %llu was whole (page %u of %u next)",
             (unsigned long long)in->version, (unsigned long long)l->paging_version, l->paging_next, l->paging_pages);
    return NM_EMSG;
  }
  if (pg->page == 0) {
    l->paging = malloc(sizeof *l->paging);
    if (!l->paging) return snprintf(err, errlen, "out of memory for a paged list"), -ENOMEM;
    nm_peerlist_init(l->paging);
    l->paging->max = SV_PEERS_TOTAL_MAX;
    l->paging->version = in->version;
    l->paging_version = in->version;
    l->paging_pages = pg->pages;
  } else if (!l->paging || in->version != l->paging_version || pg->pages != l->paging_pages ||
             pg->page != l->paging_next) {
    if (l->paging)
      snprintf(err, errlen, "peer list page %u of %u (version %llu) out of order: expected page %u of %u of version %llu",
               pg->page, pg->pages, (unsigned long long)in->version, l->paging_next, l->paging_pages,
               (unsigned long long)l->paging_version);
    else
      snprintf(err, errlen, "peer list page %u of %u (version %llu) without its first page", pg->page, pg->pages,
               (unsigned long long)in->version);
    return NM_EMSG;
  }
  int last = pg->page == pg->pages - 1;
  if (last && (in->count != 1 || !in->peers[0].me)) {
    snprintf(err, errlen, "the last page of peer list version %llu holds %zu entries, not our own alone",
             (unsigned long long)in->version, in->count);
    return NM_EMSG;
  }
  for (size_t i = 0; i < in->count; i++) {
    const nm_peer *p = &in->peers[i];
    if (!last && p->me) {
      snprintf(err, errlen, "page %u of peer list version %llu marks %s as us: only the last page may",
               pg->page, (unsigned long long)in->version, p->id);
      return NM_EMSG;
    }
    if (!last && nm_peerlist_find(l->paging, p->id)) {
      snprintf(err, errlen, "peer %s is on two pages of peer list version %llu", p->id,
               (unsigned long long)in->version);
      return NM_EMSG;
    }
    int rc = nm_peerlist_upsert(l->paging, p);
    if (rc == -ENOSPC) {
      snprintf(err, errlen, "peer list version %llu has more than %d peers", (unsigned long long)in->version,
               SV_PEERS_TOTAL_MAX);
      return NM_EMSG;
    }
    if (rc < 0) return snprintf(err, errlen, "out of memory for a paged list"), rc;
  }
  l->paging_next = pg->page + 1;
  return last ? 1 : 0;
}

static int sv__mgr_on_peers(void *session, const nm_msg *msg) {
  servant *sv = session;
  sv_manager_link *l = &sv->mgr;
  const nm_msg_peers *pg = &msg->u.peers;
  char err[300];
  if (pg->pages <= 1) {
    if (l->paging) {
      snprintf(err, sizeof err, "a whole peer list in the middle of paged list version %llu (page %u of %u next)",
               (unsigned long long)l->paging_version, l->paging_next, l->paging_pages);
      sv__mgr_paging_drop(l);
      nm_conn_fail(l->conn, NM_EMSG, err);
      return 1;
    }
    sv__mgr_apply_list(sv, pg->list);
    return 0;
  }
  int rc = sv__mgr_page(sv, pg, err, sizeof err);
  if (rc < 0) {
    /* A hostile or broken manager: the list we hold stays; the session goes and comes back. */
    sv__mgr_paging_drop(l);
    nm_conn_fail(l->conn, rc, err);
    return 1;
  }
  if (rc == 1) {
    sv__mgr_apply_list(sv, l->paging);
    sv__mgr_paging_drop(l);
  }
  return 0;
}

static int sv__mgr_on_delta(void *session, const nm_msg *msg) {
  servant *sv = session;
  sv_manager_link *l = &sv->mgr;
  const nm_msg_delta *d = &msg->u.delta;
  if (l->paging) {
    char err[200];
    snprintf(err, sizeof err, "a delta in the middle of paged list version %llu (page %u of %u next)",
             (unsigned long long)l->paging_version, l->paging_next, l->paging_pages);
    sv__mgr_paging_drop(l);
    nm_conn_fail(l->conn, NM_EMSG, err);
    return 1;
  }
  if (!l->have_list || d->base != l->list_version) {
    /* We missed something: one full list puts us right. */
    sv__mgr_request_list(sv);
    return 0;
  }
  /* Its changes in order (the decoder checked there are version - base of them). */
  for (size_t i = 0; i < d->count; i++) {
    const nm_delta_change *c = &d->changes[i];
    if (c->leave) {
      /* view="out": it only left our view (a bounded mesh), it is still in the overlay. */
      if (c->out_of_view) sv_peers_remove(sv, c->peer.id, NULL);
      else sv_peers_remove(sv, c->peer.id, "left the overlay");
      continue;
    }
    if (strcmp(c->peer.id, sv->id) == 0 && c->peer.state != l->reach) {
      nm_log_info("the manager now lists us as %s", nm_reach_name(c->peer.state));
      l->reach = c->peer.state;
    }
    sv_peers_upsert(sv, &c->peer);
  }
  l->list_version = d->version;
  nm_log_info("peer list version %llu (%zu peers)", (unsigned long long)d->version, sv_peers_count(sv) + 1);
  return 0;
}

static int sv__mgr_on_heartbeat_ack(void *session, const nm_msg *msg) {
  servant *sv = session;
  sv->mgr.overlay_servants = msg->u.heartbeat_ack.servants; /* 0: not said (no views) */
  if (sv->mgr.state == SV_MGR_REGISTERED && msg->u.heartbeat_ack.version != sv->mgr.list_version)
    sv__mgr_request_list(sv);
  return 0;
}

static int sv__mgr_on_relay_assign(void *session, const nm_msg *msg) {
  sv_pull_on_assign(session, &msg->u.relay_assign);
  return 0;
}

static int sv__mgr_on_relay_serve(void *session, const nm_msg *msg) {
  servant *sv = session;
  rl_serve(&sv->relay, msg->u.relay_serve.clients, msg->u.relay_serve.count);
  return 0;
}

static const char *const sv__mgr_state_names[] = {
    [SV_MGR_IDLE] = "idle",
    [SV_MGR_RESOLVING] = "resolving",
    [SV_MGR_CONNECTING] = "connecting",
    [SV_MGR_HELLO_SENT] = "waiting for the welcome",
    [SV_MGR_REGISTERED] = "registered",
};

/* The manager welcomes once per session (again only for a port we could not bind, still
 * before the list); the rest may come as soon as it has welcomed us. */
static int sv__mgr_on_punch(void *session, const nm_msg *msg) {
  sv_peers_punch(session, &msg->u.punch);
  return 0;
}

static int sv__mgr_on_neighbours(void *session, const nm_msg *msg) {
  sv_peers_set_neighbours(session, &msg->u.neighbours);
  return 0;
}

static const nm_dispatch_entry sv__mgr_rows[] = {
    {NM_MSG_NEIGHBOURS, SV_MGR_REGISTERED, SV_MGR_REGISTERED, sv__mgr_on_neighbours},
    {NM_MSG_PUNCH, SV_MGR_REGISTERED, SV_MGR_REGISTERED, sv__mgr_on_punch},
    {NM_MSG_WELCOME, SV_MGR_HELLO_SENT, SV_MGR_HELLO_SENT, sv__mgr_on_welcome},
    {NM_MSG_PEERS, SV_MGR_HELLO_SENT, SV_MGR_REGISTERED, sv__mgr_on_peers},
    {NM_MSG_DELTA, SV_MGR_HELLO_SENT, SV_MGR_REGISTERED, sv__mgr_on_delta},
    {NM_MSG_HEARTBEAT_ACK, SV_MGR_HELLO_SENT, SV_MGR_REGISTERED, sv__mgr_on_heartbeat_ack},
    {NM_MSG_RELAY_ASSIGN, SV_MGR_HELLO_SENT, SV_MGR_REGISTERED, sv__mgr_on_relay_assign},
    {NM_MSG_RELAY_SERVE, SV_MGR_HELLO_SENT, SV_MGR_REGISTERED, sv__mgr_on_relay_serve},
};

static const nm_dispatch_table sv__mgr_table =
    NM_DISPATCH_TABLE("manager link", sv__mgr_rows, sv__mgr_state_names);

static int sv__mgr_on_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  servant *sv = c->data;
  sv->mgr.last_heard_ms = sv_now_ms(sv);
  return nm_dispatch(&sv__mgr_table, c, sv, (int)sv->mgr.state, type, payload, len) || c->closing;
}

/* The manager closed the session before welcoming us, with an error frame: a refusal
 * (not invited, name taken, role not granted). A relay whose role is refused cannot do its
 * job: that ends it. A servant says it once and keeps trying (the operator may fix it). */
static int sv__mgr_refused(servant *sv, nm_conn *c) {
  char ma[SV_MGR_ADDR_STRLEN];
  sv_manager_link *l = &sv->mgr;
  const char *text = c->peer_error;
  if (sv->cfg.role == NM_ROLE_RELAY && strstr(text, "relay role")) {
    nm_log_error("the manager at %s refused to let this node relay: %s. Its key %s needs the relay role: "
                 "a relay invite (natmesh-manager invite --relay) or --relay-key on the manager",
                 sv_manager_address(sv, ma, sizeof ma), text, nm_identity_fingerprint(&sv->identity)->hex);
    sv_fail(sv, "the relay role was refused");
    return 1;
  }
  int again = strcmp(text, l->refusal_logged) == 0;
  snprintf(l->refusal_logged, sizeof l->refusal_logged, "%s", text);
  nm_log(again ? NM_LOG_DEBUG : NM_LOG_ERROR, "the manager at %s refused to register us: %s (retrying with backoff)",
         sv_manager_address(sv, ma, sizeof ma), text);
  l->outage_logged = 1;
  return 0;
}

static void sv__mgr_closed(nm_conn *c) {
  servant *sv = c->data;
  if (sv->mgr.conn == c) {
    sv->mgr.conn = NULL;
    sv__mgr_paging_drop(&sv->mgr);
    uv_timer_stop(&sv->mgr.heartbeat);
    uv_timer_stop(&sv->mgr.silence);
    int refused = sv->mgr.state == SV_MGR_HELLO_SENT && c->peer_error[0];
    if (!(refused && sv__mgr_refused(sv, c)))
      sv__mgr_schedule_retry(sv, refused               ? "refused"
                                 : sv->mgr.failure[0] ? sv->mgr.failure
                                 : c->close_err       ? nm_strerror(c->close_err)
                                                      : "session closed");
    sv->mgr.failure[0] = 0;
  }
  free(c);
}

static void sv__mgr_connected(nm_conn *c, int status) {
  char ma[SV_MGR_ADDR_STRLEN];
  servant *sv = c->data;
  if (status < 0) {
    /* Closed here without a log line of its own: sv__mgr_closed says it once per outage
     * and schedules the retry. */
    const char *tls_why = c->tls ? nm_tls_session_error(c->tls) : "";
    snprintf(sv->mgr.failure, sizeof sv->mgr.failure, "%s", tls_why[0] ? tls_why : nm_strerror(status));
    if (status == NM_EKEY) sv__mgr_wrong_key(sv, c);
    nm_conn_close(c, status, NULL);
    return;
  }
  /* The manager proved the key we pinned: its frames (a peer list of thousands) may be
   * large. */
  nm_frame_reader_set_max(&c->reader, NM_FRAME_MAX);
  struct sockaddr_storage local;
  int llen = sizeof local;
  char lip[NM_IP_STRLEN];
  sv->mgr.local_port = 0;
  if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&local, &llen) == 0)
    nm_addr_from_sockaddr((struct sockaddr *)&local, lip, sizeof lip, &sv->mgr.local_port);
  sv->mgr.state = SV_MGR_HELLO_SENT;
  sv->mgr.last_heard_ms = sv_now_ms(sv);
  /* Until the welcome there is no heartbeat to notice a mute manager with. */
  nm_conn_deadline(c, SV_WELCOME_TIMEOUT_MS, "no welcome from the manager in time");
  nm_msg m = {.type = NM_MSG_HELLO};
  nm_msg_hello *h = &m.u.hello;
  snprintf(h->id, sizeof h->id, "%s", sv->id);
  snprintf(h->name, sizeof h->name, "%s", sv->cfg.name);
  h->role = sv->cfg.role;
  h->port = sv_listening(sv) ? sv_listen_port(sv) : (uint16_t)sv->cfg.port;
  h->max_clients = sv->cfg.max_clients;
  h->views = 1; /* we verify lines of origins outside our list by their certificates */
  /* The invite's secret, which the manager needs only until it has admitted our key. */
  if (sv->cfg.join.has_secret) {
    h->has_secret = 1;
    memcpy(h->secret, sv->cfg.join.secret, sizeof h->secret);
  }
  sv__mgr_send(sv, &m);
  OPENSSL_cleanse(h->secret, sizeof h->secret);
  /* Worth saying after an outage, unless the manager keeps refusing us (said once). */
  nm_log(sv->mgr.backoff.failures && !sv->mgr.refusal_logged[0] ? NM_LOG_INFO : NM_LOG_DEBUG,
         "connected to manager %s (key %s)",
         sv_manager_address(sv, ma, sizeof ma), nm_conn_peer_fingerprint(c)->hex);
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
  c->owner_logs_errors = 1;
  sv->mgr.conn = c;
  sv->mgr.state = SV_MGR_CONNECTING;
  /* Pinned: only the key the invite (or --manager-key) names completes the handshake. */
  int rc = nm_conn_set_tls(c, &sv->tls, NM_TLS_CLIENT, sv_manager_fp(sv));
  /* From our listening port when we have one and this is our first session (docs/protocol.md,
   * "Punching"). A reconnection leaves from a fresh port: from the old 4-tuple, its SYN would
   * meet the manager's stale half of the session we lost (its host may never have heard of
   * the reset) and wait for a retransmission. Punching still works: it dials from whatever
   * port the session leaves from, which is what the manager publishes. */
  uint16_t from = sv_listening(sv) && !sv->mgr.had_session ? sv_listen_port(sv) : 0;
  sv->mgr.had_session = 1;
  if (rc == 0) rc = sv_connect_from_port(sv, c, res->ai_addr, from, SV_CONNECT_TIMEOUT_MS, sv__mgr_connected);
  uv_freeaddrinfo(res);
  if (rc < 0) nm_conn_close(c, rc, NULL);
}

/* Name resolution runs on libuv's thread pool: a slow DNS server never stalls chat. */
static void sv__mgr_resolve(servant *sv) {
  if (sv->stopping) return;
  char port[8];
  const sv_join_manager *m = sv__mgr_current(sv);
  snprintf(port, sizeof port, "%u", m->port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  sv->mgr.state = SV_MGR_RESOLVING;
  sv->mgr.gai.data = sv;
  int rc = uv_getaddrinfo(sv->loop, &sv->mgr.gai, sv__mgr_resolved, m->host, port, &hints);
  if (rc < 0) sv__mgr_schedule_retry(sv, uv_strerror(rc));
}

void sv_manager_start(servant *sv) {
  nm_backoff_init(&sv->mgr.backoff, SV_MGR_BACKOFF_FIRST_MS, SV_MGR_BACKOFF_MAX_MS, 0);
  uv_timer_init(sv->loop, &sv->mgr.retry);
  uv_timer_init(sv->loop, &sv->mgr.heartbeat);
  uv_timer_init(sv->loop, &sv->mgr.silence);
  sv->mgr.retry.data = sv->mgr.heartbeat.data = sv->mgr.silence.data = sv;
  sv->mgr.current = 0;
  sv__mgr_resolve(sv);
}

void sv_manager_stop(servant *sv) {
  sv_manager_link *l = &sv->mgr;
  sv_observe_stop(sv);
  if (l->conn) {
    sv__mgr_send_empty(sv, NM_MSG_BYE);
    nm_conn_close(l->conn, 0, NULL);
  }
  if (l->state == SV_MGR_RESOLVING) uv_cancel((uv_req_t *)&l->gai);
  uv_close((uv_handle_t *)&l->retry, NULL);
  uv_close((uv_handle_t *)&l->heartbeat, NULL);
  uv_close((uv_handle_t *)&l->silence, NULL);
}
