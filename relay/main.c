/* natmesh-relay: a dedicated relay node. It registers with the manager as a relay, with
 * the capacity the operator allows, receives every line published in the overlay like any
 * peer, and forwards them to the unreachable servants the manager assigns it. It shows no
 * chat and publishes none of its own. The peer machinery is natmesh_peer's. */
#include "servant.h"
#include "nm_config.h"
#include "nm_log.h"
#include "nm_util.h"
#include "nm_xml.h"

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define F(path, type, min, max, field) \
  { path, type, min, max, offsetof(sv_config, field), sizeof(((sv_config *)0)->field) }
static const nm_cfg_field relay_config_fields[] = {
    F("connectionmgr", NM_CFG_STRING, 0, 0, manager_host),
    F("port", NM_CFG_UINT, 1, 65535, manager_port),
    F("name", NM_CFG_STRING, 0, 0, name),
    F("listen", NM_CFG_STRING, 0, 0, listen),
    F("listen-port", NM_CFG_UINT, 0, 65535, port),
    F("bans", NM_CFG_BANS, 0, 0, bans),
    F("limits/max-clients", NM_CFG_UINT, 1, 256, max_clients),
    F("limits/client-bytes-per-second", NM_CFG_UINT, 0, 1000000000, client_rate_bps),
    F("limits/total-bytes-per-second", NM_CFG_UINT, 0, 2000000000, total_rate_bps),
    F("nat/upnp", NM_CFG_BOOL, 0, 0, nat_upnp),
    F("nat/natpmp", NM_CFG_BOOL, 0, 0, nat_natpmp),
    F("nat/lease", NM_CFG_UINT, 30, 604800, nat_lease_s),
};
#undef F

static void usage(FILE *out) {
  fputs("usage: natmesh-relay [--config relay.xml] [--name NAME] [--manager HOST] [--manager-port N]\n"
        "                     [--port P] [--listen ADDR] [--max-clients N]\n"
        "                     [--client-rate BYTES/S] [--total-rate BYTES/S] [--no-upnp] [--no-natpmp]\n"
        "                     [--check-config] [--verbose]\n"
        "A dedicated relay: serves servants the manager judged unreachable. See docs/relay.md.\n",
        out);
}

static int parse_uint(const char *s, unsigned max, unsigned *out) {
  char *end;
  unsigned long v = strtoul(s, &end, 10);
  if (!*s || *s == '-' || *end || v > max) return -1;
  *out = (unsigned)v;
  return 0;
}

int main(int argc, char **argv) {
  static servant sv;
  sv_config *cfg = &sv.cfg;
  sv_config_defaults(cfg);
  snprintf(cfg->role, sizeof cfg->role, "relay");
  cfg->max_clients = 64;
  sv.quiet = 1;
  nm_log_init("natmesh-relay", NM_LOG_INFO);
  nm_xml_init();
  static const struct option opts[] = {
      {"config", required_argument, 0, 'c'},       {"name", required_argument, 0, 'n'},
      {"manager", required_argument, 0, 'm'},      {"manager-port", required_argument, 0, 'P'},
      {"port", required_argument, 0, 'p'},         {"listen", required_argument, 0, 'l'},
      {"max-clients", required_argument, 0, 'M'},  {"client-rate", required_argument, 0, 'r'},
      {"total-rate", required_argument, 0, 'R'},   {"no-upnp", no_argument, 0, 'U'},
      {"no-natpmp", no_argument, 0, 'N'},          {"check-config", no_argument, 0, 'C'},
      {"verbose", no_argument, 0, 'v'},            {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  const char *optstr = "c:n:m:P:p:l:M:r:R:UNCvh";
  const char *config_path = NULL;
  int check_only = 0, opt;
  while ((opt = getopt_long(argc, argv, optstr, opts, NULL)) != -1) {
    if (opt == 'c') config_path = optarg;
    else if (opt == 'h') return usage(stdout), 0;
    else if (opt == '?') return usage(stderr), 2;
  }
  if (config_path) {
    char err[512];
    if (nm_config_load(config_path, "relay", relay_config_fields,
                       sizeof relay_config_fields / sizeof *relay_config_fields, cfg, err, sizeof err) < 0) {
      nm_log_error("config: %s", err);
      return 2;
    }
  }
  optind = 1;
  while ((opt = getopt_long(argc, argv, optstr, opts, NULL)) != -1) {
    uint16_t v;
    switch (opt) {
    case 'n': snprintf(cfg->name, sizeof cfg->name, "%s", optarg); break;
    case 'm': snprintf(cfg->manager_host, sizeof cfg->manager_host, "%s", optarg); break;
    case 'P':
      if (nm_parse_port(optarg, 0, &v) < 0) return nm_log_error("--manager-port: invalid \"%s\"", optarg), 2;
      cfg->manager_port = v;
      break;
    case 'p':
      if (nm_parse_port(optarg, 1, &v) < 0) return nm_log_error("--port: invalid \"%s\"", optarg), 2;
      cfg->port = v;
      break;
    case 'l': snprintf(cfg->listen, sizeof cfg->listen, "%s", optarg); break;
    case 'M':
      if (parse_uint(optarg, 256, &cfg->max_clients) < 0 || !cfg->max_clients)
        return nm_log_error("--max-clients: expected 1-256, got \"%s\"", optarg), 2;
      break;
    case 'r':
      if (parse_uint(optarg, 1000000000, &cfg->client_rate_bps) < 0)
        return nm_log_error("--client-rate: invalid \"%s\"", optarg), 2;
      break;
    case 'R':
      if (parse_uint(optarg, 2000000000, &cfg->total_rate_bps) < 0)
        return nm_log_error("--total-rate: invalid \"%s\"", optarg), 2;
      break;
    case 'U': cfg->nat_upnp = 0; break;
    case 'N': cfg->nat_natpmp = 0; break;
    case 'C': check_only = 1; break;
    case 'v': nm_log_set_level(NM_LOG_DEBUG); break;
    default: break;
    }
  }
  if (!cfg->name[0]) snprintf(cfg->name, sizeof cfg->name, "relay-%d", (int)getpid() % 100000);
  if (!nm_name_valid(cfg->name))
    return nm_log_error("name \"%s\" must be 1-%d characters of A-Z a-z 0-9 - _ .", cfg->name, NM_NAME_MAX), 2;
  if (check_only) {
    printf("configuration ok\n");
    return 0;
  }
  uv_loop_t *loop = uv_default_loop();
  if (sv_start(&sv, loop) < 0) return 1;
  nm_log_info("relay limits: %u clients, %u B/s per client, %u B/s in all (0 = unlimited)", cfg->max_clients,
              cfg->client_rate_bps, cfg->total_rate_bps);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  xmlCleanupParser();
  nm_log_info("stopped: %llu bytes in, %llu bytes out, %llu dropped", (unsigned long long)sv.bytes_in,
              (unsigned long long)sv.bytes_out, (unsigned long long)sv.drops);
  return 0;
}
