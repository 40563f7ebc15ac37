/* The command line and config file shared by natmesh-servant and natmesh-relay: one table
 * of options and one of config elements, with the relay's limits accepted only by the
 * relay. The config file is read first so that options override it. */
#include "cli.h"
#include "nm_config.h"
#include "nm_log.h"
#include "nm_peerlist.h"
#include "nm_util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define F(path, kind, min, max, member) NM_CFG_FIELD(sv_config, path, kind, min, max, member)
#define SV_COMMON_FIELDS                                        \
  F("connectionmgr", NM_CFG_STRING, 0, 0, manager_host),       \
  F("port", NM_CFG_UINT, 1, 65535, manager_port),              \
  F("bans", NM_CFG_BANS, 0, 0, bans),                          \
  F("name", NM_CFG_STRING, 0, 0, name),                        \
  F("listen", NM_CFG_STRING, 0, 0, listen),                    \
  F("listen-port", NM_CFG_UINT, 0, 65535, port),               \
  F("nat/upnp", NM_CFG_BOOL, 0, 0, nat_upnp),                  \
  F("nat/natpmp", NM_CFG_BOOL, 0, 0, nat_natpmp),              \
  F("nat/lease", NM_CFG_UINT, 30, 604800, nat_lease_s)

static const nm_cfg_field sv_servant_fields[] = {
    SV_COMMON_FIELDS,
    F("relay-clients", NM_CFG_UINT, 0, 256, max_clients),
};
static const nm_cfg_field sv_relay_fields[] = {
    SV_COMMON_FIELDS,
    F("limits/max-clients", NM_CFG_UINT, 1, 256, max_clients),
    F("limits/client-bytes-per-second", NM_CFG_UINT, 0, 1000000000, client_rate_bps),
    F("limits/total-bytes-per-second", NM_CFG_UINT, 0, 2000000000, total_rate_bps),
};
#undef F

enum { OPT_RELAY_ONLY = 0x100 };

static const struct option sv_options[] = {
    {"config", required_argument, 0, 'c'},        {"name", required_argument, 0, 'n'},
    {"manager", required_argument, 0, 'm'},       {"manager-port", required_argument, 0, 'P'},
    {"port", required_argument, 0, 'p'},          {"listen", required_argument, 0, 'l'},
    {"ban", required_argument, 0, 'b'},           {"no-upnp", no_argument, 0, 'U'},
    {"no-natpmp", no_argument, 0, 'N'},           {"check-config", no_argument, 0, 'C'},
    {"verbose", no_argument, 0, 'v'},             {"help", no_argument, 0, 'h'},
    {"max-clients", required_argument, 0, 'M'},   {"client-rate", required_argument, 0, 'r'},
    {"total-rate", required_argument, 0, 'R'},    {"version", no_argument, 0, 'V'},
    {0, 0, 0, 0}};
static const char *sv_optstring = "c:n:m:P:p:l:b:UNCvhVM:r:R:";

static int sv__uint(const char *opt, const char *s, unsigned min, unsigned max, unsigned *out) {
  uint64_t v = 0;
  if (nm_parse_u64(s, strlen(s), &v) < 0 || v < min || v > max) {
    nm_log_error("--%s: expected a number from %u to %u, got \"%s\"", opt, min, max, s);
    return -1;
  }
  *out = (unsigned)v;
  return 0;
}

static int sv__apply_option(sv_config *cfg, const sv_role *role, int opt, const char *arg) {
  if ((opt == 'M' || opt == 'r' || opt == 'R') && !role->relay_limits) {
    nm_log_error("that option is for natmesh-relay");
    return -1;
  }
  switch (opt) {
  case 'n': snprintf(cfg->name, sizeof cfg->name, "%s", arg); return 0;
  case 'm': snprintf(cfg->manager_host, sizeof cfg->manager_host, "%s", arg); return 0;
  case 'P': return sv__uint("manager-port", arg, 1, 65535, &cfg->manager_port);
  case 'p': return sv__uint("port", arg, 0, 65535, &cfg->port);
  case 'l': snprintf(cfg->listen, sizeof cfg->listen, "%s", arg); return 0;
  case 'b':
    if (nm_banlist_add(&cfg->bans, arg) == 0) return 0;
    nm_log_error("--ban: invalid or too many: \"%s\"", arg);
    return -1;
  case 'U': cfg->nat_upnp = 0; return 0;
  case 'N': cfg->nat_natpmp = 0; return 0;
  case 'v': nm_log_set_level(NM_LOG_DEBUG); return 0;
  case 'M': return sv__uint("max-clients", arg, 1, 256, &cfg->max_clients);
  case 'r': return sv__uint("client-rate", arg, 0, 1000000000, &cfg->client_rate_bps);
  case 'R': return sv__uint("total-rate", arg, 0, 2000000000, &cfg->total_rate_bps);
  default: return 0;
  }
}

static void sv__default_name(sv_config *cfg, const sv_role *role) {
  char host[64] = "servant";
  if (!role->default_name) gethostname(host, sizeof host - 1);
  snprintf(cfg->name, sizeof cfg->name, "%.20s-%d", role->default_name ? role->default_name : host,
           (int)getpid() % 100000);
  for (char *c = cfg->name; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-'))
      *c = '-';
}

void sv_config_defaults(sv_config *cfg, const sv_role *role) {
  memset(cfg, 0, sizeof *cfg);
  cfg->role = role->role;
  cfg->quiet = role->quiet;
  snprintf(cfg->manager_host, sizeof cfg->manager_host, "127.0.0.1");
  cfg->manager_port = 85;
  snprintf(cfg->listen, sizeof cfg->listen, "0.0.0.0");
  cfg->nat_upnp = cfg->nat_natpmp = 1;
  cfg->nat_lease_s = 3600;
  cfg->max_clients = role->max_clients;
}

int sv_cli_parse(sv_config *cfg, const sv_role *role, int argc, char **argv) {
  const char *config_path = NULL;
  int check_only = 0, opt;
  while ((opt = getopt_long(argc, argv, sv_optstring, sv_options, NULL)) != -1) {
    if (opt == 'c') config_path = optarg;
    else if (opt == 'C') check_only = 1;
    else if (opt == 'h') return fputs(role->usage, stdout), 1;
    else if (opt == 'V') return printf("%s %s\n", role->program, NATMESH_VERSION), 1;
    else if (opt == '?') return fputs(role->usage, stderr), 2;
  }
  if (config_path) {
    const nm_cfg_field *fields = role->relay_limits ? sv_relay_fields : sv_servant_fields;
    size_t n = role->relay_limits ? sizeof sv_relay_fields / sizeof *fields : sizeof sv_servant_fields / sizeof *fields;
    char err[512];
    if (nm_config_load(config_path, role->config_root, fields, n, cfg, err, sizeof err) < 0) {
      nm_log_error("config: %s", err);
      return 2;
    }
  }
  optind = 1;
  while ((opt = getopt_long(argc, argv, sv_optstring, sv_options, NULL)) != -1)
    if (sv__apply_option(cfg, role, opt, optarg) < 0) return 2;
  if (!cfg->name[0]) sv__default_name(cfg, role);
  if (!nm_name_valid(cfg->name)) {
    nm_log_error("name \"%s\" must be 1-%d characters of A-Z a-z 0-9 - _ .", cfg->name, NM_NAME_MAX);
    return 2;
  }
  if (check_only) {
    printf("configuration ok\n");
    return 1;
  }
  return 0;
}
