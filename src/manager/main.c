/* natmesh-manager: the connection manager. Options, config, the subcommands on its state
 * directory (commands.c), its key and TLS context, the admission store, the listening
 * socket, the heartbeat sweep and a clean stop on SIGINT/SIGTERM. */
#include "commands.h"
#include "provisional.h"
#include "manager.h"
#include "shared.h"
#include "store.h"
#include "neighbours.h"
#include "nm_config.h"
#include "nm_error.h"
#include "nm_http.h"
#include "nm_log.h"
#include "nm_util.h"
#include "nm_xml.h"

#include <getopt.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>


static void usage(FILE *out) {
  fprintf(out,
          "usage: natmesh-manager [-c|--config manager.xml] [-l|--listen ADDR] [-p|--port N]\n"
          "                       [-H|--heartbeat S] [-T|--timeout S] [-r|--port-range FIRST-LAST]\n"
          "                       [--state-dir DIR] [--admission invite|allow|open] [--open]\n"
          "                       [--allow FP]... [--relay-key FP]... [--admin-key FP]...\n"
          "                       [--max-unauth-per-address N] [--max-unauth N]\n"
          "                       [--metrics [ADDR:]PORT] [--max-servants N] [--delta-window-ms MS]\n"
          "                       [--mesh-above N] [--mesh-degree D]\n"
          "                       [--store redis://IP:PORT | sentinel://IP:PORT[,IP:PORT...]/NAME]\n"
          "                       [--overlay NAME] [--manager-name NAME]\n"
          "                       [-C|--check-config] [-v|--verbose] [-h|--help] [--version]\n"
          "                       [COMMAND ...]\n"
          "The connection manager servants register with. Defaults: listen on all addresses (::,\n"
          "or 0.0.0.0 without IPv6), port 85, heartbeat 5 s, timeout 15 s, assigned servant ports\n"
          "4001-4999, admission by invite, at most %d connections not yet authenticated per\n"
          "address and %d in all, no metrics (--metrics serves /metrics and a status page over\n"
          "HTTP, on 127.0.0.1 unless ADDR says otherwise), as many servants as the file limit allows\n"
          "(--max-servants), list changes gathered for %u ms into one delta (--delta-window-ms; 0: at\n"
          "once). Its key and admission store live in the state directory\n"
          "(default: $STATE_DIRECTORY, $XDG_STATE_HOME/natmesh/manager or\n"
          "~/.local/state/natmesh/manager). FP: a key fingerprint (64 hex characters).\n"
          "Chat is a full mesh while the overlay has at most --mesh-above servants (default %d),\n"
          "then a bounded mesh in which each servant keeps --mesh-degree neighbours (default %d).\n"
          "Commands on the state directory (they work while a manager runs on it):\n%s",
          NM_ADDRLIMIT_PER_ADDR, NM_ADDRLIMIT_TOTAL, MGR_DELTA_WINDOW_MS, MGR_MESH_ABOVE_DEFAULT,
          MGR_MESH_DEGREE_DEFAULT, mgr_commands_usage);
}

/* The admission store again if it changed (an invite or a revocation from a subcommand),
 * and the summaries of rate-limited warnings. */
static void mgr__sweep_housekeeping(manager *m) {
  char err[300];
  int rc = mgr_admission_refresh(&m->admission, err, sizeof err);
  if (rc < 0) nm_log_error("admission store: %s (keeping what was read before)", err);
  if (rc > 0) mgr_sessions_drop_revoked(m);
  nm_log_rate_flush(&m->log_accepted);
  nm_log_rate_flush(&m->log_refused);
  nm_log_rate_flush(&m->log_unauth);
  nm_log_rate_flush(&m->log_denied);
  nm_log_rate_flush(&m->log_reports);
  nm_log_rate_flush(&m->log_pair);
  nm_log_rate_flush(&m->log_unserved);
  nm_log_rate_flush(&m->log_mesh);
}

/* systemd's STATUS= (systemctl status): the servants by state. Sent when it changes, at
 * most once a second (nm_notify); the sweep calls it every quarter heartbeat. */
static void mgr__notify_status(manager *m) {
  if (!nm_notify_enabled(&m->notify)) return;
  size_t n = 0, relays = 0, by[NM_REACH_RELAYED + 1] = {0};
  for (const mgr_session *s = m->sessions; s; s = s->next) {
    if (!mgr_session_listed(s)) continue;
    if (s->role == NM_ROLE_RELAY) {
      relays++;
      continue;
    }
    n++;
    if ((unsigned)s->reach <= NM_REACH_RELAYED) by[s->reach]++;
  }
  nm_notify_status(&m->notify, "%zu servants (%zu direct, %zu mapped, %zu relayed, %zu suspicious), %zu relay nodes",
                   n, by[NM_REACH_DIRECT], by[NM_REACH_MAPPED], by[NM_REACH_RELAYED], by[NM_REACH_SUSPICIOUS],
                   relays);
}

/* Full lists sent since the last sweep passed through their sessions' write queues and were
 * freed, but glibc keeps the freed pages: after a burst of registrations (a manager
 * restart) the manager would keep its peak memory for good. Give them back, once per sweep
 * at most and only after lists went out (malloc_trim walks the heap: milliseconds). */
static void mgr__trim_heap(manager *m) {
  if (m->pub.lists_sent == m->trimmed_after_lists) return;
  m->trimmed_after_lists = m->pub.lists_sent;
  malloc_trim(0);
}

static void mgr__sweep(uv_timer_t *t) {
  manager *m = t->data;
  mgr__sweep_housekeeping(m);
  mgr_provisional_sweep(m);
  mgr_index_prune(&m->index);
  mgr__notify_status(m);
  mgr__trim_heap(m);
  mgr_shared_tick(m);
  uint64_t now = mgr_now_ms(m);
  uint64_t limit = (uint64_t)m->cfg.timeout_s * 1000;
  for (mgr_session *s = m->sessions, *next; s; s = next) {
    next = s->next;
    if (s->conn.closing || now - s->last_heard_ms <= limit) continue;
    mgr_session_retire(s, MGR_RETIRE_TIMED_OUT, NULL);
  }
}

static void mgr__close_walk(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void mgr__on_signal(uv_signal_t *sig, int signum) {
  manager *m = sig->data;
  if (m->stopping) return;
  m->stopping = 1;
  nm_log_info("signal %d: stopping", signum);
  nm_notify_stopping(&m->notify);
  mgr_metrics_quiesce(m);
  for (mgr_session *s = m->sessions; s; s = s->next) mgr_session_retire(s, MGR_RETIRE_STOPPING, NULL);
  /* Its servants' records stay: they move to another manager, which takes them over. */
  mgr_shared_stop(m);
  uv_close((uv_handle_t *)&m->server, NULL);
  uv_close((uv_handle_t *)&m->sweep, NULL);
  uv_close((uv_handle_t *)&m->sigint, NULL);
  uv_close((uv_handle_t *)&m->sigterm, NULL);
}

/* The manager's own addresses, both families, when it listens on all of them: what a
 * welcome offers a servant for its other family. Read once at start (uv_interface_addresses
 * asks the kernel, it does not block on the network). */
static void mgr__own_addresses(manager *m) {
  m->nown = 0;
  if (strcmp(m->cfg.listen, "::") != 0) return;
  uv_interface_address_t *ifs = NULL;
  int n = 0;
  if (uv_interface_addresses(&ifs, &n) < 0) return;
  for (int i = 0; i < n && m->nown < sizeof m->own / sizeof *m->own; i++) {
    char ip[NM_IP_STRLEN];
    uint16_t port;
    if (ifs[i].is_internal || nm_addr_from_sockaddr((struct sockaddr *)&ifs[i].address, ip, sizeof ip, &port) < 0 ||
        !nm_addr_is_candidate(ip))
      continue;
    int dup = 0;
    for (size_t k = 0; k < m->nown; k++) dup |= nm_addr_equal(m->own[k].ip, ip);
    if (dup) continue;
    snprintf(m->own[m->nown].ip, sizeof m->own[m->nown].ip, "%s", ip);
    m->own[m->nown++].port = (uint16_t)m->cfg.port;
  }
  uv_free_interface_addresses(ifs, n);
}

static int mgr__listen(manager *m) {
  struct sockaddr_storage addr;
  int rc = uv_ip4_addr(m->cfg.listen, (int)m->cfg.port, (struct sockaddr_in *)&addr);
  if (rc < 0) rc = uv_ip6_addr(m->cfg.listen, (int)m->cfg.port, (struct sockaddr_in6 *)&addr);
  if (rc < 0) {
    nm_log_error("--listen %s is not an IP address", m->cfg.listen);
    return rc;
  }
  uv_tcp_init(m->loop, &m->server);
  m->server.data = m;
  /* Flags 0: IPV6_V6ONLY off, so "::" (the default) takes both families; IPv4 peers show
   * as plain IPv4 (nm_addr_from_sockaddr). */
  rc = uv_tcp_bind(&m->server, (struct sockaddr *)&addr, 0);
  if ((rc == UV_EAFNOSUPPORT || rc == UV_EADDRNOTAVAIL) && strcmp(m->cfg.listen, "::") == 0) {
    /* "All addresses" on a host without IPv6: the IPv4 ones, then. */
    snprintf(m->cfg.listen, sizeof m->cfg.listen, "0.0.0.0");
    uv_close((uv_handle_t *)&m->server, NULL);
    return mgr__listen(m);
  }
  if (rc == 0) rc = uv_listen((uv_stream_t *)&m->server, 128, mgr_on_connection);
  char at[NM_ADDR_STRLEN];
  if (rc < 0) {
    if (rc == UV_EACCES && m->cfg.port < 1024)
      nm_log_error("cannot listen on %s: %s. Ports below 1024 need root or "
                   "CAP_NET_BIND_SERVICE; choose another, e.g. --port 8585, and start the "
                   "servants with --manager-port 8585",
                   nm_addr_str(m->cfg.listen, (uint16_t)m->cfg.port, at), uv_strerror(rc));
    else
      nm_log_error("cannot listen on %s: %s", nm_addr_str(m->cfg.listen, (uint16_t)m->cfg.port, at),
                   uv_strerror(rc));
    return rc;
  }
  mgr__own_addresses(m);
  nm_log_info("listening on %s%s (heartbeat %u s, timeout %u s, ports %u-%u)",
              nm_addr_str(m->cfg.listen, (uint16_t)m->cfg.port, at),
              strcmp(m->cfg.listen, "::") == 0 ? ", both families" : "", m->cfg.heartbeat_s, m->cfg.timeout_s,
              m->cfg.port_first, m->cfg.port_last);
  return 0;
}

static int mgr__parse_range(const char *s, unsigned *first, unsigned *last) {
  char a[16], b[16];
  const char *dash = strchr(s, '-');
  if (!dash || (size_t)(dash - s) >= sizeof a || strlen(dash + 1) >= sizeof b) return -EINVAL;
  memcpy(a, s, (size_t)(dash - s));
  a[dash - s] = 0;
  strcpy(b, dash + 1);
  uint16_t lo, hi;
  if (nm_parse_port(a, 0, &lo) < 0 || nm_parse_port(b, 0, &hi) < 0 || lo > hi) return -EINVAL;
  *first = lo;
  *last = hi;
  return 0;
}

enum {
  MGR_OPT_STATE_DIR = 256,
  MGR_OPT_ADMISSION,
  MGR_OPT_OPEN,
  MGR_OPT_ALLOW,
  MGR_OPT_RELAY_KEY,
  MGR_OPT_ADMIN_KEY,
  MGR_OPT_MAX_UNAUTH_PER_ADDR,
  MGR_OPT_MAX_UNAUTH,
  MGR_OPT_METRICS,
  MGR_OPT_MAX_SERVANTS,
  MGR_OPT_DELTA_WINDOW,
  MGR_OPT_MESH_ABOVE,
  MGR_OPT_MESH_DEGREE,
  MGR_OPT_STORE,
  MGR_OPT_OVERLAY,
  MGR_OPT_MANAGER_NAME,
};

static const struct option mgr__opts[] = {
    {"config", required_argument, 0, 'c'},
    {"listen", required_argument, 0, 'l'},
    {"port", required_argument, 0, 'p'},
    {"heartbeat", required_argument, 0, 'H'},
    {"timeout", required_argument, 0, 'T'},
    {"port-range", required_argument, 0, 'r'},
    {"check-config", no_argument, 0, 'C'},
    {"verbose", no_argument, 0, 'v'},
    {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, 'V'},
    {"state-dir", required_argument, 0, MGR_OPT_STATE_DIR},
    {"admission", required_argument, 0, MGR_OPT_ADMISSION},
    {"open", no_argument, 0, MGR_OPT_OPEN},
    {"allow", required_argument, 0, MGR_OPT_ALLOW},
    {"relay-key", required_argument, 0, MGR_OPT_RELAY_KEY},
    {"admin-key", required_argument, 0, MGR_OPT_ADMIN_KEY},
    {"max-unauth-per-address", required_argument, 0, MGR_OPT_MAX_UNAUTH_PER_ADDR},
    {"max-unauth", required_argument, 0, MGR_OPT_MAX_UNAUTH},
    {"metrics", required_argument, 0, MGR_OPT_METRICS},
    {"max-servants", required_argument, 0, MGR_OPT_MAX_SERVANTS},
    {"delta-window-ms", required_argument, 0, MGR_OPT_DELTA_WINDOW},
    {"mesh-above", required_argument, 0, MGR_OPT_MESH_ABOVE},
    {"mesh-degree", required_argument, 0, MGR_OPT_MESH_DEGREE},
    {"store", required_argument, 0, MGR_OPT_STORE},
    {"overlay", required_argument, 0, MGR_OPT_OVERLAY},
    {"manager-name", required_argument, 0, MGR_OPT_MANAGER_NAME},
    {0, 0, 0, 0}};
/* "+": options end at the first word that is not one, a subcommand's name, whose own options
 * follow it. */
#define MGR_OPTSTRING "+c:l:p:H:T:r:Cvh"

static void mgr__defaults(mgr_config *cfg) {
  /* All addresses: "::" is dual-stack, so IPv4 servants connect too (and are shown as
   * plain IPv4 addresses). */
  snprintf(cfg->listen, sizeof cfg->listen, "::");
  cfg->port = 85;
  cfg->heartbeat_s = 5;
  cfg->timeout_s = 15;
  cfg->port_first = 4001;
  cfg->port_last = 4999;
  cfg->complaint_threshold = 3;
  cfg->complaint_window_s = 60;
  cfg->quorum_percent = 50;
  snprintf(cfg->admission, sizeof cfg->admission, "invite");
  cfg->max_unauth_per_addr = NM_ADDRLIMIT_PER_ADDR;
  cfg->max_unauth = NM_ADDRLIMIT_TOTAL;
  cfg->max_servants = 0; /* from the file limit (mgr__fd_budget) */
  cfg->delta_window_ms = MGR_DELTA_WINDOW_MS;
  cfg->mesh_above = MGR_MESH_ABOVE_DEFAULT;
  cfg->mesh_degree = MGR_MESH_DEGREE_DEFAULT;
  snprintf(cfg->overlay, sizeof cfg->overlay, "natmesh");
  /* The host name: what an operator running one manager per host calls it anyway. */
  if (gethostname(cfg->manager_name, sizeof cfg->manager_name) < 0 || !cfg->manager_name[0])
    snprintf(cfg->manager_name, sizeof cfg->manager_name, "manager");
  cfg->manager_name[sizeof cfg->manager_name - 1] = 0;
}

/* An overlay's or a manager's name: a Redis key part and a label value, with nothing to
 * escape (mgr_store_check_name), and short enough for the config. */
static int mgr__name_ok(const char *s) {
  return strlen(s) <= MGR_MANAGER_NAME_MAX && mgr_store_check_name(s) == 0;
}

static int mgr__key_option(nm_keylist *l, const char *name, const char *v) {
  int rc = nm_keylist_add(l, v);
  if (rc < 0)
    nm_log_error("--%s: expected a key fingerprint (64 hex characters), got \"%.70s\"", name, v);
  return rc;
}

static int mgr__unsigned_option(const char *name, const char *v, unsigned min, unsigned max,
                                unsigned *out) {
  uint64_t x;
  if (nm_parse_u64(v, strlen(v), &x) < 0 || x < min || x > max) {
    nm_log_error("--%s: expected a number from %u to %u, got \"%s\"", name, min, max, v);
    return -EINVAL;
  }
  *out = (unsigned)x;
  return 0;
}

/* The second pass: every option but --config, over the config's values. Returns 0 or 2 (a
 * usage error, said). */
static int mgr__options(int argc, char **argv, mgr_config *cfg, int *check_only) {
  int opt;
  optind = 0; /* glibc: start afresh */
  while ((opt = getopt_long(argc, argv, MGR_OPTSTRING, mgr__opts, NULL)) != -1) {
    uint16_t v;
    switch (opt) {
    case 'l': snprintf(cfg->listen, sizeof cfg->listen, "%s", optarg); break;
    case 'p':
      if (nm_parse_port(optarg, 0, &v) < 0) return nm_log_error("--port: invalid \"%s\"", optarg), 2;
      cfg->port = v;
      break;
    case 'H':
      if (mgr__unsigned_option("heartbeat", optarg, 1, 36000, &cfg->heartbeat_s) < 0) return 2;
      break;
    case 'T':
      if (mgr__unsigned_option("timeout", optarg, 1, 36000, &cfg->timeout_s) < 0) return 2;
      break;
    case 'r':
      if (mgr__parse_range(optarg, &cfg->port_first, &cfg->port_last) < 0)
        return nm_log_error("--port-range: expected FIRST-LAST, got \"%s\"", optarg), 2;
      break;
    case 'C': *check_only = 1; break;
    case 'v': nm_log_set_level(NM_LOG_DEBUG); break;
    case MGR_OPT_STATE_DIR:
      if (!optarg[0] || strlen(optarg) >= sizeof cfg->state_dir)
        return nm_log_error("--state-dir: expected a folder, got \"%.60s\"", optarg), 2;
      snprintf(cfg->state_dir, sizeof cfg->state_dir, "%s", optarg);
      break;
    case MGR_OPT_ADMISSION:
      if (strlen(optarg) >= sizeof cfg->admission)
        return nm_log_error("--admission: expected invite, allow or open, got \"%.60s\"", optarg), 2;
      snprintf(cfg->admission, sizeof cfg->admission, "%s", optarg);
      break;
    case MGR_OPT_OPEN: snprintf(cfg->admission, sizeof cfg->admission, "open"); break;
    case MGR_OPT_ALLOW:
      if (mgr__key_option(&cfg->allow, "allow", optarg) < 0) return 2;
      break;
    case MGR_OPT_RELAY_KEY:
      if (mgr__key_option(&cfg->relay_keys, "relay-key", optarg) < 0) return 2;
      break;
    case MGR_OPT_ADMIN_KEY:
      if (mgr__key_option(&cfg->admin_keys, "admin-key", optarg) < 0) return 2;
      break;
    case MGR_OPT_MAX_UNAUTH_PER_ADDR:
      if (mgr__unsigned_option("max-unauth-per-address", optarg, 1, NM_ADDRLIMIT_TOTAL_MAX,
                               &cfg->max_unauth_per_addr) < 0)
        return 2;
      break;
    case MGR_OPT_MAX_UNAUTH:
      if (mgr__unsigned_option("max-unauth", optarg, 1, NM_ADDRLIMIT_TOTAL_MAX, &cfg->max_unauth) < 0)
        return 2;
      break;
    case MGR_OPT_METRICS:
      if (strlen(optarg) >= sizeof cfg->metrics)
        return nm_log_error("--metrics: expected [ADDR:]PORT, got \"%.60s\"", optarg), 2;
      snprintf(cfg->metrics, sizeof cfg->metrics, "%s", optarg);
      break;
    case MGR_OPT_MAX_SERVANTS:
      if (mgr__unsigned_option("max-servants", optarg, 1, MGR_SERVANTS_LIMIT, &cfg->max_servants) < 0) return 2;
      break;
    case MGR_OPT_DELTA_WINDOW:
      if (mgr__unsigned_option("delta-window-ms", optarg, 0, MGR_DELTA_WINDOW_MAX_MS, &cfg->delta_window_ms) < 0)
        return 2;
      break;
    case MGR_OPT_MESH_ABOVE:
      if (mgr__unsigned_option("mesh-above", optarg, 0, 1000000, &cfg->mesh_above) < 0) return 2;
      break;
    case MGR_OPT_STORE:
      if (strlen(optarg) >= sizeof cfg->store) return nm_log_error("--store: too long"), 2;
      snprintf(cfg->store, sizeof cfg->store, "%s", optarg);
      break;
    case MGR_OPT_OVERLAY:
      if (strlen(optarg) >= sizeof cfg->overlay) return nm_log_error("--overlay: at most %d characters", MGR_OVERLAY_NAME_MAX), 2;
      snprintf(cfg->overlay, sizeof cfg->overlay, "%s", optarg);
      break;
    case MGR_OPT_MANAGER_NAME:
      if (strlen(optarg) >= sizeof cfg->manager_name)
        return nm_log_error("--manager-name: at most %d characters", MGR_MANAGER_NAME_MAX), 2;
      snprintf(cfg->manager_name, sizeof cfg->manager_name, "%s", optarg);
      break;
    case MGR_OPT_MESH_DEGREE:
      if (mgr__unsigned_option("mesh-degree", optarg, MGR_MESH_DEGREE_MIN, MGR_MESH_DEGREE_MAX, &cfg->mesh_degree) < 0)
        return 2;
      break;
    default: break;
    }
  }
  return 0;
}

/* What the options and the config say together, checked once. Returns 0 or 2 (said). */
static int mgr__check(mgr_config *cfg, nm_admission_mode *mode) {
  if (cfg->port_first > cfg->port_last) return nm_log_error("port-range: first > last"), 2;
  if (cfg->timeout_s <= cfg->heartbeat_s)
    return nm_log_error("timeout (%u s) must be longer than the heartbeat (%u s)", cfg->timeout_s,
                        cfg->heartbeat_s), 2;
  if (nm_admission_mode_parse(cfg->admission, mode) < 0)
    return nm_log_error("admission: expected invite, allow or open, got \"%s\"", cfg->admission), 2;
  if (*mode == NM_ADMISSION_ALLOW && cfg->allow.count == 0 && cfg->relay_keys.count == 0)
    return nm_log_error("admission allow: no key is allowed; list them with --allow FP "
                        "(or <allow>), relays with --relay-key FP"), 2;
  if (cfg->max_unauth_per_addr > cfg->max_unauth)
    return nm_log_error("max-unauth-per-address (%u) must not exceed max-unauth (%u)",
                        cfg->max_unauth_per_addr, cfg->max_unauth), 2;
  char ip[64];
  uint16_t port;
  if (cfg->metrics[0] && nm_http_parse_listen(cfg->metrics, ip, sizeof ip, &port) < 0)
    return nm_log_error("metrics: expected [ADDR:]PORT (ADDR an IP address, [IPv6] in brackets), "
                        "got \"%s\"", cfg->metrics), 2;
  if (!mgr__name_ok(cfg->overlay))
    return nm_log_error("overlay: expected 1 to %d letters, digits, '.', '-' or '_', got \"%.70s\"",
                        MGR_OVERLAY_NAME_MAX, cfg->overlay), 2;
  if (!mgr__name_ok(cfg->manager_name))
    return nm_log_error("manager-name: expected 1 to %d letters, digits, '.', '-' or '_', got \"%.70s\"",
                        MGR_MANAGER_NAME_MAX, cfg->manager_name), 2;
  if (cfg->store[0]) {
    char err[300];
    if (mgr_store_parse_url(cfg->store, err, sizeof err) < 0) return nm_log_error("store: %s", err), 2;
  }
  if (!cfg->state_dir[0]) {
    int rc = nm_identity_default_dir(cfg->state_dir, sizeof cfg->state_dir, "manager");
    if (rc < 0)
      return nm_log_error("no state directory: pass --state-dir DIR (%s)", nm_strerror(rc)), 2;
  }
  return 0;
}

/* Descriptors: the soft limit goes up to the hard one, and what it allows, less the ctl
 * sessions, the connections not yet authenticated and a spare few of the manager's own
 * (listening socket, metrics, state files, log), is how many servants it takes unless
 * --max-servants says fewer. Returns that number. */
static unsigned mgr__fd_budget(const mgr_config *cfg) {
  struct rlimit rl;
  rlim_t have = 1024;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    if (rl.rlim_cur < rl.rlim_max) {
      rlim_t old = rl.rlim_cur;
      rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? (rlim_t)MGR_SERVANTS_LIMIT * 2 : rl.rlim_max;
      if (setrlimit(RLIMIT_NOFILE, &rl) < 0) rl.rlim_cur = old;
    }
    have = rl.rlim_cur;
  }
  rlim_t reserve = (rlim_t)MGR_CTL_MAX + cfg->max_unauth + MGR_FD_SPARE;
  unsigned budget = have > reserve + 1 ? (unsigned)(have - reserve > MGR_SERVANTS_LIMIT ? MGR_SERVANTS_LIMIT : have - reserve)
                                       : 1;
  if (cfg->max_servants && cfg->max_servants > budget)
    nm_log_warn("--max-servants %u: the file limit (ulimit -n %llu) leaves room for %u (after %u ctl sessions, %u "
                "unauthenticated connections and %d spare)",
                cfg->max_servants, (unsigned long long)have, budget, MGR_CTL_MAX, cfg->max_unauth, MGR_FD_SPARE);
  return cfg->max_servants ? cfg->max_servants : budget;
}

/* The manager's key, its TLS context, the admission store and the limits. Returns 0 or 1
 * (said). */
static int mgr__trust_init(manager *m, nm_admission_mode mode) {
  mgr_config *cfg = &m->cfg;
  char err[512];
  if (nm_identity_load_or_create(cfg->state_dir, &m->identity, err, sizeof err) < 0)
    return nm_log_error("%s", err), 1;
  if (nm_tls_ctx_init(&m->tls, &m->identity, err, sizeof err) < 0) return nm_log_error("%s", err), 1;
  if (mgr_admission_open(&m->admission, cfg->state_dir, mode, err, sizeof err) < 0 ||
      mgr_admission_grant(&m->admission, &cfg->allow, &cfg->relay_keys, err, sizeof err) < 0)
    return nm_log_error("admission store: %s", err), 1;
  nm_addrlimit_config al;
  nm_addrlimit_config_default(&al);
  al.per_addr = cfg->max_unauth_per_addr;
  al.total = cfg->max_unauth;
  if (nm_addrlimit_init(&m->unauth, &al) < 0) return nm_log_error("cannot set up the connection limits"), 1;
  nm_log_info("key %s (id %s) in %s; admission %s (%zu invites, %zu admitted keys, %zu allowed), "
              "%zu admin keys",
              nm_identity_fingerprint(&m->identity)->hex, nm_identity_id(&m->identity), cfg->state_dir,
              nm_admission_mode_name(mode), m->admission.store.ninvites, m->admission.store.nkeys,
              m->admission.store.nallow, cfg->admin_keys.count);
  return 0;
}

static void mgr__config_free(mgr_config *cfg) {
  nm_keylist_free(&cfg->allow);
  nm_keylist_free(&cfg->relay_keys);
  nm_keylist_free(&cfg->admin_keys);
}

int main(int argc, char **argv) {
  static manager m; /* large (the config's key lists are not, but the struct grows) */
  mgr_config *cfg = &m.cfg;
  mgr__defaults(cfg);
  m.log_accepted = (nm_log_rate)NM_LOG_RATE_INIT("connections", NM_LOG_RATE_DEFAULT);
  m.log_refused = (nm_log_rate)NM_LOG_RATE_INIT("refused connections", NM_LOG_RATE_DEFAULT);
  m.log_unauth = (nm_log_rate)NM_LOG_RATE_INIT("unauthenticated sessions", NM_LOG_RATE_DEFAULT);
  m.log_denied = (nm_log_rate)NM_LOG_RATE_INIT("refused hellos and status requests", NM_LOG_RATE_DEFAULT);
  m.log_reports = (nm_log_rate)NM_LOG_RATE_INIT("servants' reports", NM_LOG_RATE_DEFAULT);
  m.log_pair = (nm_log_rate)NM_LOG_RATE_INIT("pair paths", NM_LOG_RATE_DEFAULT);
  m.log_unserved = (nm_log_rate)NM_LOG_RATE_INIT("pairs no relay can serve", NM_LOG_RATE_DEFAULT);
  m.log_mesh = (nm_log_rate)NM_LOG_RATE_INIT("shared mesh sets", NM_LOG_RATE_DEFAULT);

  nm_log_init("natmesh-manager", NM_LOG_INFO);
  nm_xml_init();

  /* Two passes: the config file first, so that command-line options override it. */
  const char *config_path = NULL;
  int check_only = 0, opt;
  while ((opt = getopt_long(argc, argv, MGR_OPTSTRING, mgr__opts, NULL)) != -1) {
    if (opt == 'c') config_path = optarg;
    else if (opt == 'h') return usage(stdout), 0;
    else if (opt == 'V') return puts("natmesh-manager " NATMESH_VERSION), 0;
    else if (opt == '?') return usage(stderr), 2;
  }
  if (config_path) {
    char err[512];
    if (nm_config_load(config_path, "manager", mgr_config_fields, mgr_config_nfields, cfg, err,
                       sizeof err) < 0) {
      nm_log_error("config: %s", err);
      return 2;
    }
  }
  int rc = mgr__options(argc, argv, cfg, &check_only);
  nm_admission_mode mode;
  if (rc == 0) rc = mgr__check(cfg, &mode);
  if (rc != 0) return mgr__config_free(cfg), rc;

  if (optind < argc) {
    mgr_command_fn cmd = mgr_command_find(argv[optind]);
    if (!cmd) {
      nm_log_error("unknown command \"%s\" (invite, fingerprint, revoke, invites)", argv[optind]);
      return mgr__config_free(cfg), 2;
    }
    mgr_command_env env = {cfg->state_dir, (uint16_t)cfg->port};
    rc = cmd(&env, argc - optind, argv + optind);
    return mgr__config_free(cfg), rc;
  }
  if (check_only) {
    printf("configuration ok\n");
    return mgr__config_free(cfg), 0;
  }

  m.loop = uv_default_loop();
  m.next_port = cfg->port_first;
  memset(&m.list, 0, sizeof m.list);
  mgr_index_init(&m.index);
  m.max_servants = mgr__fd_budget(cfg);
  /* The list holds this manager's sessions, and with a store every other manager's servants
   * too (remote entries): then the overlay's bound, not this manager's session cap. */
  m.list.max = cfg->store[0] ? MGR_STORE_ENTRIES_MAX : m.max_servants;
  if (mgr_publish_init(&m, cfg->delta_window_ms) < 0) return nm_log_error("cannot start the delta window"), 1;
  /* The port first: on a first start, a privileged port is the likelier mistake, and its
   * message says what to do. Nothing is accepted before the loop runs. */
  if (mgr__listen(&m) < 0) return 1;
  if (mgr__trust_init(&m, mode) != 0) return 1;
  if (mgr_admission_start(&m.admission, m.loop) < 0) return nm_log_error("admission store: cannot start its timer"), 1;
  if (mgr_metrics_start(&m) < 0) return 1;
  if (mgr_shared_init(&m) < 0) return 1;
  uv_timer_init(m.loop, &m.sweep);
  m.sweep.data = &m;
  unsigned sweep_ms = cfg->heartbeat_s * 1000 / 4;
  uv_timer_start(&m.sweep, mgr__sweep, sweep_ms, sweep_ms);
  uv_signal_init(m.loop, &m.sigint);
  uv_signal_init(m.loop, &m.sigterm);
  m.sigint.data = m.sigterm.data = &m;
  uv_signal_start(&m.sigint, mgr__on_signal, SIGINT);
  uv_signal_start(&m.sigterm, mgr__on_signal, SIGTERM);
  signal(SIGPIPE, SIG_IGN);
  /* Listening, key loaded: servants can register from here on. */
  if (nm_notify_init(&m.notify, m.loop) < 0) nm_log_warn("systemd watchdog: cannot start its timer");
  nm_notify_ready(&m.notify);
  mgr__notify_status(&m);

  uv_run(m.loop, UV_RUN_DEFAULT);
  nm_notify_close(&m.notify);
  uv_walk(m.loop, mgr__close_walk, NULL);
  uv_run(m.loop, UV_RUN_DEFAULT);
  uv_loop_close(m.loop);
  mgr_metrics_stop(&m);
  mgr_shared_close(&m); /* its remote entries leave the index first */
  mgr_publish_close(&m);
  free(m.list.at);
  mgr_index_close(&m.index);
  mgr_neighbours_close(&m);
  mgr_views_close(&m);
  nm_addrlimit_close(&m.unauth);
  mgr_admission_close(&m.admission);
  nm_tls_ctx_close(&m.tls);
  nm_identity_close(&m.identity);
  mgr__config_free(cfg);
  xmlCleanupParser();
  nm_log_info("stopped");
  return 0;
}
