/* The manager's /metrics, /status.json and status page: a snapshot a second, published to
 * the HTTP thread (metrics.h says why this way round). */
#include "metrics.h"
#include "manager.h"
#include "nm_addr.h"
#include "nm_http.h"
#include "nm_log.h"
#include "nm_metrics.h"
#include "nm_status.h"
#include "nm_status_json.h"
#include "relays.h"

#include <stdlib.h>
#include <string.h>

typedef struct mgr_metrics {
  uv_timer_t timer;
  manager *mgr;
  nm_http *http;
  uv_async_t asked; /* the HTTP thread asks for /status.json */
  int asked_open;
} mgr_metrics;

static const char *const mgr__refused_names[MGR_REFUSED_N] = {
    [MGR_REFUSED_ACCEPT] = "accept_error",
    [MGR_REFUSED_PER_ADDRESS] = "unauthenticated_per_address",
    [MGR_REFUSED_UNAUTH_TOTAL] = "unauthenticated_total",
    [MGR_REFUSED_WRONG_KEY] = "wrong_key",
    [MGR_REFUSED_FULL] = "manager_full",
    [MGR_REFUSED_NOT_ADMITTED] = "not_admitted",
    [MGR_REFUSED_NOT_OPERATOR] = "not_operator",
    [MGR_REFUSED_CTL_LIMIT] = "ctl_limit",
    [MGR_REFUSED_OBSERVE] = "observe",
};

#define L(...) ((const char *const[]){__VA_ARGS__})

/* Frames and bytes by direction and type: known types by name, the rest as "unknown". */
static void mgr__traffic(nm_metrics *x, int frames, int bytes, const nm_conn_traffic *t) {
  for (int type = 0; type < 256; type++) {
    const char *name = nm_msg_name((uint8_t)type);
    if (t->frames_in[type]) {
      nm_metrics_add(x, frames, L("in", name), t->frames_in[type]);
      nm_metrics_add(x, bytes, L("in", name), t->bytes_in[type]);
    }
    if (t->frames_out[type]) {
      nm_metrics_add(x, frames, L("out", name), t->frames_out[type]);
      nm_metrics_add(x, bytes, L("out", name), t->bytes_out[type]);
    }
  }
}

/* Relay duty: dedicated relays, and servants that relay for someone or reported a load. */
static int mgr__is_relay(manager *m, const mgr_session *s) {
  return s->role == NM_ROLE_RELAY || mgr_relay_clients(m, s) > 0 || s->load_bytes_in || s->load_bytes_out ||
         s->load_attached;
}

static void mgr__relays(manager *m, nm_metrics *x) {
  int clients = nm_metrics_define(x, "natmesh_manager_relay_clients", NM_METRIC_GAUGE,
                                  "Servants the manager assigned to each relay.", "relay", MGR_METRICS_RELAYS_MAX);
  int attached = nm_metrics_define(x, "natmesh_manager_relay_attached", NM_METRIC_GAUGE,
                                   "Clients attached and pulling, as the relay last reported.", "relay",
                                   MGR_METRICS_RELAYS_MAX);
  int in = nm_metrics_define(x, "natmesh_manager_relay_received_bytes_total", NM_METRIC_COUNTER,
                             "Chat bytes each relay received to forward, as it last reported.", "relay",
                             MGR_METRICS_RELAYS_MAX);
  int out = nm_metrics_define(x, "natmesh_manager_relay_sent_bytes_total", NM_METRIC_COUNTER,
                              "Chat bytes each relay sent to its clients, as it last reported.", "relay",
                              MGR_METRICS_RELAYS_MAX);
  int drops = nm_metrics_define(x, "natmesh_manager_relay_drops_total", NM_METRIC_COUNTER,
                                "Lines each relay dropped (rate limits, full queues), as it last reported.",
                                "relay", MGR_METRICS_RELAYS_MAX);
  for (mgr_session *s = m->sessions; s; s = s->next) {
    if (!mgr_session_listed(s) || !mgr__is_relay(m, s)) continue;
    const char *const *name = L(s->name);
    /* Past MGR_METRICS_RELAYS_MAX relays the rest have no series (-ENOSPC): bounded. */
    nm_metrics_set(x, clients, name, mgr_relay_clients(m, s));
    nm_metrics_set(x, attached, name, s->load_attached);
    nm_metrics_set(x, in, name, s->load_bytes_in);
    nm_metrics_set(x, out, name, s->load_bytes_out);
    nm_metrics_set(x, drops, name, s->load_drops);
  }
}

static const char *const mgr__store_op_names[MGR_STORE_OP_N] = {
    [MGR_STORE_OP_PUT] = "put",   [MGR_STORE_OP_LEAVE] = "leave",       [MGR_STORE_OP_RENEW] = "renew",
    [MGR_STORE_OP_REAP] = "reap", [MGR_STORE_OP_COMPLAIN] = "complain", [MGR_STORE_OP_ADMISSION] = "admission",
    [MGR_STORE_OP_MESH] = "mesh",
};

/* Whose servants these are (issue 14): the listed sessions this manager holds (listed)
 * and the remote entries it lists from the store for another manager (shared.h: not
 * sessions; none without a store); with --store, the store's own series too. */
static void mgr__store(manager *m, nm_metrics *x, size_t listed) {
  const mgr_stats *st = &m->stats;
  size_t remote = st->remote_servants;
  int held = nm_metrics_define(x, "natmesh_servants", NM_METRIC_GAUGE,
                               "Listed servants and relays by the manager holding their session: this one "
                               "(local) or another sharing the store (remote).",
                               "held", 2);
  nm_metrics_set(x, held, L("local"), listed);
  nm_metrics_set(x, held, L("remote"), remote);
  if (!st->store_on) return;
  int up = nm_metrics_define(x, "natmesh_store_up", NM_METRIC_GAUGE,
                             "1 while the store (--store) answers, 0 while it does not.", NULL, 1);
  nm_metrics_set(x, up, NULL, st->store_up ? 1 : 0);
  int lead = nm_metrics_define(x, "natmesh_mesh_leader", NM_METRIC_GAUGE,
                               "1 while this manager draws the overlay's shared mesh (holds the store's lease).",
                               NULL, 1);
  nm_metrics_set(x, lead, NULL, st->mesh_leader ? 1 : 0);
  int ops = nm_metrics_define(x, "natmesh_store_ops_total", NM_METRIC_COUNTER,
                              "Operations sent to the store, by kind.", "op", MGR_STORE_OP_N);
  for (int i = 0; i < MGR_STORE_OP_N; i++) nm_metrics_set(x, ops, L(mgr__store_op_names[i]), st->store_ops[i]);
  int errors = nm_metrics_define(x, "natmesh_store_errors_total", NM_METRIC_COUNTER,
                                 "Store commands that failed or got an error reply.", NULL, 1);
  nm_metrics_set(x, errors, NULL, st->store_errors);
  int failovers = nm_metrics_define(x, "natmesh_store_failovers_total", NM_METRIC_COUNTER,
                                    "Times the store's primary changed address (a Sentinel failover).", NULL, 1);
  nm_metrics_set(x, failovers, NULL, st->store_failovers);
}

/* The whole exposition text (metrics.h). The registry is built afresh each time: a few
 * dozen series, and no series outlives the relay it is about. */
int mgr_metrics_text(manager *m, char **out, size_t *len) {
  nm_metrics x;
  nm_metrics_init(&x);
  const mgr_stats *st = &m->stats;
  int servants = nm_metrics_define(&x, "natmesh_manager_servants", NM_METRIC_GAUGE,
                                   "Listed servants and relays by reachability state (as natmesh-ctl status).",
                                   "state", 5);
  static const nm_reach_state states[] = {NM_REACH_DIRECT, NM_REACH_MAPPED, NM_REACH_SUSPICIOUS,
                                          NM_REACH_RELAYED, NM_REACH_UNKNOWN};
  for (size_t i = 0; i < sizeof states / sizeof *states; i++)
    nm_metrics_set(&x, servants, L(nm_reach_name(states[i])), 0);
  size_t listed = 0;
  for (mgr_session *s = m->sessions; s; s = s->next)
    if (mgr_session_listed(s)) {
      nm_metrics_add(&x, servants, L(nm_reach_name(s->reach)), 1);
      listed++;
    }
  int sessions = nm_metrics_define(&x, "natmesh_manager_sessions", NM_METRIC_GAUGE,
                                   "Connections the manager holds (servants, relays, natmesh-ctl, not yet authenticated).",
                                   NULL, 1);
  nm_metrics_set(&x, sessions, NULL, m->nsessions);
  int list_version = nm_metrics_define(&x, "natmesh_manager_list_version", NM_METRIC_GAUGE,
                                       "The peer list's version: it grows with every change.", NULL, 1);
  nm_metrics_set(&x, list_version, NULL, m->list.version);

#define COUNTER(name, help, value)                                                    \
  nm_metrics_set(&x, nm_metrics_define(&x, name, NM_METRIC_COUNTER, help, NULL, 1), NULL, value)
  COUNTER("natmesh_manager_joins_total", "Servants and relays that joined the list (a reconnection that "
          "takes its registration over is not a join).", st->joins);
  COUNTER("natmesh_manager_leaves_total", "Entries that left the list (bye, timeout, closed, revoked).", st->leaves);
  COUNTER("natmesh_manager_complaints_total", "Complaints received (a servant could not reach a peer).",
          st->complaints);
  COUNTER("natmesh_manager_heartbeats_total", "Heartbeats received.", st->heartbeats);
  COUNTER("natmesh_manager_relay_assignments_total", "Times a servant was assigned a relay to pull from.",
          st->relay_assignments);
  COUNTER("natmesh_manager_tls_handshake_failures_total",
          "Connections that ended before their TLS handshake completed and the key was checked.",
          st->tls_failures);
  COUNTER("natmesh_manager_delta_encodes_total", "Deltas encoded: one per delta window with changes, whatever "
          "the number of sessions it goes to.", m->pub.delta_encodes);
  COUNTER("natmesh_manager_list_page_encodes_total", "Shared peer list pages encoded (once per list version "
          "that a newcomer needed in pages).", m->pub.page_encodes);
  COUNTER("natmesh_manager_lists_sent_total", "Full peer lists sent (newcomers and peers-requests).",
          m->pub.lists_sent);
  COUNTER("natmesh_manager_view_deltas_total", "Deltas built for one servant's view (a bounded mesh with views: "
          "each holds the changes of the entries in that servant's view).", m->views_deltas_sent);
  COUNTER("natmesh_manager_punches_total", "Pairs of servants behind NAT told to dial each other at the same "
          "moment (a TCP simultaneous open).", st->punches);
#undef COUNTER
  int verdicts = nm_metrics_define(&x, "natmesh_manager_verdicts_total", NM_METRIC_COUNTER,
                                   "Complaint verdicts: a quorum judged a servant unreachable (suspicious) "
                                   "or a few reporters got the pair path (pair).",
                                   "verdict", 2);
  nm_metrics_set(&x, verdicts, L("suspicious"), st->verdicts_suspicious);
  nm_metrics_set(&x, verdicts, L("pair"), st->verdicts_pair);
  int refused = nm_metrics_define(&x, "natmesh_manager_refused_connections_total", NM_METRIC_COUNTER,
                                  "Connections and requests refused, by reason.", "reason", MGR_REFUSED_N);
  for (int i = 0; i < MGR_REFUSED_N; i++) nm_metrics_set(&x, refused, L(mgr__refused_names[i]), st->refused[i]);
  int frames = nm_metrics_define(&x, "natmesh_manager_frames_total", NM_METRIC_COUNTER,
                                 "Frames received (in) and sent (out), by message type.", "direction,type", 64);
  int bytes = nm_metrics_define(&x, "natmesh_manager_frame_bytes_total", NM_METRIC_COUNTER,
                                "Bytes of those frames (header included, before TLS).", "direction,type", 64);
  mgr__traffic(&x, frames, bytes, &st->traffic);
  mgr__relays(m, &x);
  mgr__store(m, &x, listed);
  int rc = nm_metrics_write(&x, out, len);
  nm_metrics_close(&x);
  return rc;
}

/* The status JSON, every servant in it: built when someone asks (nm_http_on_demand), not
 * every second, so a manager nobody watches builds none. */
static void mgr__status_publish(mgr_metrics *mm) {
  nm_status st;
  nm_status_init(&st);
  char *text = NULL;
  size_t len = 0;
  if (mgr_status_collect(mm->mgr, &st) == 0 && nm_status_to_json(&st, 0, &text, &len) == 0)
    nm_http_publish(mm->http, "/status.json", "application/json", text, len);
  free(text);
  nm_status_close(&st);
}

static void mgr__metrics_publish(mgr_metrics *mm) {
  char *text = NULL;
  size_t len = 0;
  if (mgr_metrics_text(mm->mgr, &text, &len) == 0)
    nm_http_publish(mm->http, "/metrics", NM_METRICS_CONTENT_TYPE, text, len);
  free(text);
}

static void mgr__metrics_tick(uv_timer_t *t) { mgr__metrics_publish(t->data); }

static void mgr__on_asked(uv_async_t *a) {
  mgr_metrics *mm = a->data;
  if (nm_http_take_wanted(mm->http, "/status.json")) mgr__status_publish(mm);
}

/* From the HTTP thread: uv_async_send is the one libuv call safe there. */
static void mgr__wake(void *arg) { uv_async_send(&((mgr_metrics *)arg)->asked); }

void mgr_metrics_quiesce(manager *m) {
  if (m->metrics) nm_http_on_demand(m->metrics->http, "/status.json", NULL, NULL);
}

int mgr_metrics_start(manager *m) {
  if (!m->cfg.metrics[0]) return 0;
  char ip[64], err[300];
  uint16_t port;
  if (nm_http_parse_listen(m->cfg.metrics, ip, sizeof ip, &port) < 0)
    return nm_log_error("metrics: expected ADDR:PORT or PORT, got \"%s\"", m->cfg.metrics), -1;
  mgr_metrics *mm = calloc(1, sizeof *mm);
  if (!mm) return nm_log_error("metrics: out of memory"), -1;
  mm->mgr = m;
  if (nm_http_start(&mm->http, ip, port, err, sizeof err) < 0) {
    free(mm);
    return nm_log_error("metrics: %s", err), -1;
  }
  nm_http_publish(mm->http, "/", NM_WEB_PAGE_CONTENT_TYPE, nm_web_page, nm_web_page_len);
  mgr__metrics_publish(mm);
  mgr__status_publish(mm);
  if (uv_async_init(m->loop, &mm->asked, mgr__on_asked) == 0) {
    mm->asked.data = mm;
    mm->asked_open = 1;
    uv_unref((uv_handle_t *)&mm->asked);
    nm_http_on_demand(mm->http, "/status.json", mgr__wake, mm);
  }
  uv_timer_init(m->loop, &mm->timer);
  mm->timer.data = mm;
  uv_timer_start(&mm->timer, mgr__metrics_tick, MGR_METRICS_PERIOD_MS, MGR_METRICS_PERIOD_MS);
  /* The timer never keeps the loop alive: the manager stops when its sessions are done. */
  uv_unref((uv_handle_t *)&mm->timer);
  m->metrics = mm;
  char at[NM_ADDR_STRLEN];
  nm_log_info("metrics and status page on http://%s/ (/metrics, /status.json)",
              nm_addr_str(ip, nm_http_port(mm->http), at));
  return 0;
}

void mgr_metrics_stop(manager *m) {
  mgr_metrics *mm = m->metrics;
  if (!mm) return;
  /* Called once the loop has closed every handle, the timer and the async included (the
   * HTTP thread was told to stop waking it first: mgr_metrics_quiesce). */
  nm_http_on_demand(mm->http, "/status.json", NULL, NULL);
  nm_http_stop(mm->http);
  free(mm);
  m->metrics = NULL;
}
