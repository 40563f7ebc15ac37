/* natmesh-manager: the connection manager. Options, config, the listening socket, the
 * heartbeat sweep and a clean stop on SIGINT/SIGTERM. */
#include "manager.h"
#include "nm_config.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_util.h"
#include "nm_xml.h"

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F(path, kind, min, max, member) NM_CFG_FIELD(mgr_config, path, kind, min, max, member)
static const nm_cfg_field mgr_config_fields[] = {
    F("listen", NM_CFG_STRING, 0, 0, listen),
    F("port", NM_CFG_UINT, 1, 65535, port),
    F("heartbeat", NM_CFG_UINT, 1, 3600, heartbeat_s),
    F("timeout", NM_CFG_UINT, 2, 36000, timeout_s),
    F("port-range/first", NM_CFG_UINT, 1, 65535, port_first),
    F("port-range/last", NM_CFG_UINT, 1, 65535, port_last),
    F("complaints/threshold", NM_CFG_UINT, 1, 100, complaint_threshold),
    F("complaints/window", NM_CFG_UINT, 1, 86400, complaint_window_s),
    F("complaints/quorum-percent", NM_CFG_UINT, 1, 100, quorum_percent),
};
#undef F

static void usage(FILE *out) {
  fputs("usage: natmesh-manager [--config manager.xml] [--listen ADDR] [--port N]\n"
        "                       [--heartbeat S] [--timeout S] [--port-range FIRST-LAST]\n"
        "                       [--check-config] [--verbose] [--version]\n"
        "The connection manager servants register with. Defaults: listen on all addresses (::,\n"
        "or 0.0.0.0 without IPv6), port 85, "
        "heartbeat 5 s, timeout 15 s, assigned servant ports 4001-4999.\n",
        out);
}

static void mgr__sweep(uv_timer_t *t) {
  manager *m = t->data;
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
  for (mgr_session *s = m->sessions; s; s = s->next) mgr_session_retire(s, MGR_RETIRE_STOPPING, NULL);
  uv_close((uv_handle_t *)&m->server, NULL);
  uv_close((uv_handle_t *)&m->sweep, NULL);
  uv_close((uv_handle_t *)&m->sigint, NULL);
  uv_close((uv_handle_t *)&m->sigterm, NULL);
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
  rc = uv_tcp_bind(&m->server, (struct sockaddr *)&addr, 0);
  if ((rc == UV_EAFNOSUPPORT || rc == UV_EADDRNOTAVAIL) && strcmp(m->cfg.listen, "::") == 0) {
    /* "All addresses" on a host without IPv6: the IPv4 ones, then. */
    snprintf(m->cfg.listen, sizeof m->cfg.listen, "0.0.0.0");
    uv_close((uv_handle_t *)&m->server, NULL);
    return mgr__listen(m);
  }
  if (rc == 0) rc = uv_listen((uv_stream_t *)&m->server, 128, mgr_on_connection);
  if (rc < 0) {
    if (rc == UV_EACCES && m->cfg.port < 1024)
      nm_log_error("cannot listen on %s:%u: %s. Ports below 1024 need root or "
                   "CAP_NET_BIND_SERVICE; choose another, e.g. --port 8585, and start the "
                   "servants with --manager-port 8585",
                   m->cfg.listen, m->cfg.port, uv_strerror(rc));
    else
      nm_log_error("cannot listen on %s:%u: %s", m->cfg.listen, m->cfg.port, uv_strerror(rc));
    return rc;
  }
  int v6 = strchr(m->cfg.listen, ':') != NULL;
  nm_log_info("listening on %s%s%s:%u (heartbeat %u s, timeout %u s, ports %u-%u)", v6 ? "[" : "",
              m->cfg.listen, v6 ? "]" : "", m->cfg.port, m->cfg.heartbeat_s, m->cfg.timeout_s, m->cfg.port_first,
              m->cfg.port_last);
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

int main(int argc, char **argv) {
  manager m;
  memset(&m, 0, sizeof m);
  mgr_config *cfg = &m.cfg;
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

  nm_log_init("natmesh-manager", NM_LOG_INFO);
  nm_xml_init();

  static const struct option opts[] = {
      {"config", required_argument, 0, 'c'},   {"listen", required_argument, 0, 'l'},
      {"port", required_argument, 0, 'p'},     {"heartbeat", required_argument, 0, 'H'},
      {"timeout", required_argument, 0, 'T'},  {"port-range", required_argument, 0, 'r'},
      {"check-config", no_argument, 0, 'C'},   {"verbose", no_argument, 0, 'v'},
      {"help", no_argument, 0, 'h'},           {"version", no_argument, 0, 'V'},
      {0, 0, 0, 0}};
  /* Two passes: the config file first, so that command-line options override it. */
  const char *config_path = NULL;
  int check_only = 0, opt;
  while ((opt = getopt_long(argc, argv, "c:l:p:H:T:r:Cvh", opts, NULL)) != -1) {
    if (opt == 'c') config_path = optarg;
    else if (opt == 'h') return usage(stdout), 0;
    else if (opt == 'V') return puts("natmesh-manager " NATMESH_VERSION), 0;
    else if (opt == '?') return usage(stderr), 2;
  }
  if (config_path) {
    char err[512];
    if (nm_config_load(config_path, "manager", mgr_config_fields,
                       sizeof mgr_config_fields / sizeof *mgr_config_fields, cfg, err,
                       sizeof err) < 0) {
      nm_log_error("config: %s", err);
      return 2;
    }
  }
  optind = 1;
  while ((opt = getopt_long(argc, argv, "c:l:p:H:T:r:Cvh", opts, NULL)) != -1) {
    uint16_t v;
    switch (opt) {
    case 'l': snprintf(cfg->listen, sizeof cfg->listen, "%s", optarg); break;
    case 'p':
      if (nm_parse_port(optarg, 0, &v) < 0) return nm_log_error("--port: invalid \"%s\"", optarg), 2;
      cfg->port = v;
      break;
    case 'H':
    case 'T': {
      uint64_t x;
      if (nm_parse_u64(optarg, strlen(optarg), &x) < 0 || x == 0 || x > 36000)
        return nm_log_error("--%s: invalid \"%s\"", opt == 'H' ? "heartbeat" : "timeout", optarg), 2;
      if (opt == 'H') cfg->heartbeat_s = (unsigned)x;
      else cfg->timeout_s = (unsigned)x;
      break;
    }
    case 'r':
      if (mgr__parse_range(optarg, &cfg->port_first, &cfg->port_last) < 0)
        return nm_log_error("--port-range: expected FIRST-LAST, got \"%s\"", optarg), 2;
      break;
    case 'C': check_only = 1; break;
    case 'v': nm_log_set_level(NM_LOG_DEBUG); break;
    default: break;
    }
  }
  if (cfg->port_first > cfg->port_last) return nm_log_error("port-range: first > last"), 2;
  if (cfg->timeout_s <= cfg->heartbeat_s)
    return nm_log_error("timeout (%u s) must be longer than the heartbeat (%u s)", cfg->timeout_s,
                        cfg->heartbeat_s), 2;
  if (check_only) {
    printf("configuration ok\n");
    return 0;
  }

  m.loop = uv_default_loop();
  m.next_port = cfg->port_first;
  nm_peerlist_init(&m.list);
  if (mgr__listen(&m) < 0) return 1;
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

  uv_run(m.loop, UV_RUN_DEFAULT);
  uv_walk(m.loop, mgr__close_walk, NULL);
  uv_run(m.loop, UV_RUN_DEFAULT);
  uv_loop_close(m.loop);
  nm_peerlist_close(&m.list);
  xmlCleanupParser();
  nm_log_info("stopped");
  return 0;
}
