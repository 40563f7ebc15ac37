/* Pulling: when the manager has judged us unreachable it names a relay and its key; we
 * connect out to it over TLS pinned to that key, say pull with the token, and receive
 * everything it forwards, for as long as the assignment stands. The connection is kept up:
 * on loss we reconnect with backoff. */
#include "pull.h"
#include "chat.h"
#include "manager_link.h"
#include "peers.h"
#include "servant.h"
#include "nm_addr.h"
#include "nm_error.h"
#include "nm_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A lost relay connection is retried at once, then after 0.25 s doubling to 4 s. */
#define SV_PULL_BACKOFF_FIRST_MS 250
#define SV_PULL_BACKOFF_MAX_MS 4000

static void sv__pull_tell_relay(servant *sv);

/* A relay forwards the lines of others: each is verified with its origin's listed key
 * (chat.c), so a relay can drop lines but never forge or alter one. */
static int sv__pull_on_chat(void *session, const nm_msg *m) {
  servant *sv = session;
  sv_chat_receive(sv, &m->u.chat, sv->pull.via);
  return 0;
}

/* A relay sends chat and nothing else on a pull connection. */
static const nm_dispatch_entry sv__pull_rows[] = {
    {NM_MSG_CHAT, 0, 0, sv__pull_on_chat},
};

static const nm_dispatch_table sv__pull_table = {
    .endpoint = "pull connection",
    .rows = sv__pull_rows,
    .count = sizeof sv__pull_rows / sizeof *sv__pull_rows,
};

static int sv__pull_on_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  return nm_dispatch(&sv__pull_table, c, c->data, 0, type, payload, len);
}

static void sv__pull_closed(nm_conn *c) {
  servant *sv = c->data;
  if (sv->pull.conn == c) {
    sv->pull.conn = NULL;
    sv->pull.ready = 0;
    sv->pull.next_attempt_ms = sv_now_ms(sv) + nm_backoff_next(&sv->pull.backoff);
  }
  free(c);
}

static void sv__pull_connected(nm_conn *c, int status) {
  servant *sv = c->data;
  if (sv->pull.conn != c) return;
  if (status == NM_EKEY) {
    /* Whoever answers at the relay's address is not the relay the manager named. */
    char a[NM_ADDR_STRLEN];
    nm_log_ratelimited(&sv->pull.wrong_key_log, NM_LOG_WARN, "not pulling from relay %s at %s: %s", sv->pull.name,
                       nm_addr_str(sv->pull.ip, sv->pull.port, a), c->tls ? nm_tls_session_error(c->tls) : "");
    nm_conn_close(c, status, NULL);
    return;
  }
  if (status < 0) return;
  nm_msg m = {.type = NM_MSG_PULL};
  snprintf(m.u.pull.id, sizeof m.u.pull.id, "%s", sv->id);
  snprintf(m.u.pull.token, sizeof m.u.pull.token, "%s", sv->pull.token);
  nm_msg_send(c, &m);
  /* A relay sends chat frames and nothing larger: the chat envelope, not 1 MiB. */
  nm_frame_reader_set_max(&c->reader, SV_CHAT_FRAME_MAX);
  sv->pull.ready = 1;
  nm_backoff_reset(&sv->pull.backoff);
  char a[NM_ADDR_STRLEN];
  nm_log_info("pulling from relay %s at %s", sv->pull.name, nm_addr_str(sv->pull.ip, sv->pull.port, a));
  /* A new pull forwards everything again: say at once what reaches us directly. */
  sv->pull.ndirect = 0;
  sv__pull_tell_relay(sv);
}

int sv_pull_direct_all(servant *sv) {
  return (sv->pull.assigned || sv->pull.standby) && sv_peers_all_direct(sv);
}

/* The manager hears at once when we stop or start needing our relay. */
static void sv__pull_tell_manager(servant *sv) {
  sv_pull *p = &sv->pull;
  int all = sv_pull_direct_all(sv);
  if (all == p->told_all) return;
  p->told_all = all;
  if (!all && p->standby)
    nm_log_ratelimited(&p->standby_log, NM_LOG_INFO,
                       "a direct path failed: asking the manager for our relay again (relay %s on standby)",
                       p->name);
  sv_manager_report_direct(sv);
}

/* Tells the relay the origins that reach us directly, when that set changed. */
static void sv__pull_tell_relay(servant *sv) {
  sv_pull *p = &sv->pull;
  if (!p->conn || !p->ready) return;
  nm_msg m = {.type = NM_MSG_DIRECT};
  sv_peers_direct(sv, m.u.direct.ids, NM_DIRECT_MAX, &m.u.direct.count);
  int same = m.u.direct.count == p->ndirect;
  for (size_t i = 0; same && i < p->ndirect; i++) same = strcmp(p->direct[i], m.u.direct.ids[i]) == 0;
  if (same) return;
  if (nm_msg_send(p->conn, &m) < 0) return;
  p->ndirect = m.u.direct.count;
  memcpy(p->direct, m.u.direct.ids, p->ndirect * sizeof p->direct[0]);
  nm_log_info("relay %s told: %zu peer%s reach us directly (punched or reversed), their lines come no more through it",
              p->name, p->ndirect, p->ndirect == 1 ? "" : "s");
}

void sv_pull_direct_update(servant *sv) {
  sv__pull_tell_relay(sv);
  sv__pull_tell_manager(sv);
}

static void sv__pull_connect(servant *sv) {
  struct sockaddr_storage addr;
  if (nm_addr_to_sockaddr(sv->pull.ip, sv->pull.port, &addr) < 0) return;
  nm_conn *c = malloc(sizeof *c);
  if (!c) return;
  nm_conn_init(sv->loop, c, sv__pull_on_frame, sv__pull_closed, sv);
  nm_conn_set_label(c, "relay %s", sv->pull.name);
  sv->pull.conn = c;
  /* Pinned: only the key relay-assign names completes the handshake. */
  int rc = nm_conn_set_tls(c, &sv->tls, NM_TLS_CLIENT, &sv->pull.fp);
  if (rc == 0) rc = sv_bind_outgoing(sv, c, (struct sockaddr *)&addr);
  if (rc == 0) rc = nm_conn_connect(c, (struct sockaddr *)&addr, SV_CONNECT_TIMEOUT_MS, sv__pull_connected);
  if (rc < 0) nm_conn_close(c, rc, "connect to relay failed");
}

static void sv__pull_drop(servant *sv, const char *why) {
  if (sv->pull.conn) {
    nm_conn *c = sv->pull.conn;
    sv->pull.conn = NULL;
    nm_conn_close(c, 0, why);
  }
  sv->pull.ready = 0;
}

/* Why we pull, in the words of the log (reason=... is relay-assign's attribute). */
static void sv__pull_say_why(const sv_pull *p, int kept) {
  char addr[NM_ADDR_STRLEN];
  nm_addr_str(p->ip, p->port, addr);
  const char *how = kept ? "kept, the same pull goes on" : "assigned";
  switch (p->reason) {
  case NM_ASSIGN_PAIR:
    nm_log_info("some peers cannot reach us (the pair path): relay %s at %s %s for their lines (reason=pair)", p->name,
                addr, how);
    break;
  case NM_ASSIGN_PROVISIONAL:
    nm_log_info("we joined from behind NAT with no port mapping: relay %s at %s %s until peers are known to reach "
                "us (reason=provisional)",
                p->name, addr, how);
    break;
  case NM_ASSIGN_SUSPICIOUS:
    nm_log_info("the manager judged us unreachable: relay %s at %s %s (reason=suspicious)", p->name, addr, how);
    break;
  }
}

void sv_pull_on_assign(servant *sv, const nm_msg_relay_assign *a) {
  sv_pull *p = &sv->pull;
  if (!p->standby_log.kind) p->standby_log = (nm_log_rate)NM_LOG_RATE_INIT("relay standby changes", 2);
  if (a->release && a->standby) {
    /* Every listed servant reaches us directly: the manager freed our relay's slot and
     * keeps relay and token for us; we ask for them again when a direct path fails. */
    if (p->assigned)
      nm_log_ratelimited(&p->standby_log, NM_LOG_INFO,
                         "relay %s on standby: every peer reaches us directly (punched or reversed); we pull again at once if "
                         "a direct path fails",
                         p->name);
    if (p->assigned || p->standby) p->standby = 1;
    p->assigned = 0;
    sv__pull_drop(sv, "relay on standby");
    sv__pull_tell_manager(sv); /* if a path failed meanwhile, the manager hears it now */
    return;
  }
  if (a->release) {
    if (p->assigned || p->standby) nm_log_info("relay released: peers can reach us directly");
    p->assigned = 0;
    p->standby = 0;
    sv__pull_drop(sv, "relay released");
    sv__pull_tell_manager(sv);
    return;
  }
  p->standby = 0; /* an assignment: pull (from the relay kept on standby, or another) */
  nm_fingerprint fp;
  nm_fingerprint_of_pubkey(a->key, &fp);
  if (p->assigned && strcmp(p->id, a->relay) == 0 && strcmp(p->token, a->token) == 0 && nm_fingerprint_equal(&p->fp, &fp)) {
    /* The same relay and token (a verdict after a provisional relay, or a repeat after a
     * reconnect): the pull carries on; only a new reason is worth a line. */
    if (p->reason != a->reason) {
      p->reason = a->reason;
      sv__pull_say_why(p, 1);
    }
    return;
  }
  sv__pull_drop(sv, "relay reassigned");
  snprintf(p->id, sizeof p->id, "%s", a->relay);
  snprintf(p->name, sizeof p->name, "%s", a->name);
  snprintf(p->ip, sizeof p->ip, "%s", a->ip);
  snprintf(p->token, sizeof p->token, "%s", a->token);
  snprintf(p->via, sizeof p->via, "relay %s", a->name);
  p->fp = fp;
  p->port = a->port;
  p->wrong_key_log = (nm_log_rate)NM_LOG_RATE_INIT("relays presenting another key", 2);
  nm_backoff_init(&p->backoff, SV_PULL_BACKOFF_FIRST_MS, SV_PULL_BACKOFF_MAX_MS, 1);
  p->assigned = 1;
  p->reason = a->reason;
  sv__pull_say_why(p, 0);
  sv__pull_connect(sv);
  /* Peers may not reach us: those we are connected to may send their lines back on our
   * connections (reversal). */
  sv_peers_ask_reverse(sv);
  sv__pull_tell_manager(sv);
}

void sv_pull_tick(servant *sv) {
  if (sv->pull.assigned && !sv->pull.conn && !sv->stopping && sv_now_ms(sv) >= sv->pull.next_attempt_ms)
    sv__pull_connect(sv);
}

void sv_pull_close(servant *sv) {
  sv->pull.assigned = 0;
  sv->pull.standby = 0;
  sv__pull_drop(sv, NULL);
}

const char *sv_pull_describe(servant *sv, char *buf, size_t len) {
  if (sv->pull.assigned)
    snprintf(buf, len, ", pulling from %s%s", sv->pull.name, sv->pull.ready ? "" : " (connecting)");
  else if (sv->pull.standby)
    snprintf(buf, len, ", relay %s on standby (every peer reaches us directly)", sv->pull.name);
  else if (buf && len)
    buf[0] = 0;
  return buf;
}
