/* The command line and config file shared by natmesh-servant and natmesh-relay: one table
 * of options and one of config elements, with the relay's limits accepted only by the
 * relay. The config file is read first so that options override it. */
#include "cli.h"
#include "nm_config.h"
#include "nm_http.h"
#include "nm_log.h"
#include "nm_peerlist.h"
#include "nm_util.h"
#include "nm_xml.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>


/* Long options without a short form. */
enum { OPT_STATE_DIR = 0x100, OPT_INVITE, OPT_MANAGER_KEY, OPT_NO_LOCAL_ADDRESSES, OPT_METRICS, OPT_NO_PCP, OPT_NO_REVERSE };

static const struct option sv_options[] = {
    {"config", required_argument, 0, 'c'},        {"name", required_argument, 0, 'n'},
    {"manager", required_argument, 0, 'm'},       {"manager-port", required_argument, 0, 'P'},
    {"port", required_argument, 0, 'p'},          {"listen", required_argument, 0, 'l'},
    {"ban", required_argument, 0, 'b'},           {"no-upnp", no_argument, 0, 'U'},
    {"no-natpmp", no_argument, 0, 'N'},           {"check-config", no_argument, 0, 'C'},
    {"verbose", no_argument, 0, 'v'},             {"help", no_argument, 0, 'h'},
    {"max-clients", required_argument, 0, 'M'},   {"client-rate", required_argument, 0, 'r'},
    {"total-rate", required_argument, 0, 'R'},    {"version", no_argument, 0, 'V'},
    {"state-dir", required_argument, 0, OPT_STATE_DIR},
    {"invite", required_argument, 0, OPT_INVITE},
    {"manager-key", required_argument, 0, OPT_MANAGER_KEY},
    {"no-local-addresses", no_argument, 0, OPT_NO_LOCAL_ADDRESSES},
    {"metrics", required_argument, 0, OPT_METRICS},
    {"no-pcp", no_argument, 0, OPT_NO_PCP},
    {"no-reverse", no_argument, 0, OPT_NO_REVERSE},
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

/* A string option into a fixed buffer: too long is an error, never a silent cut. */
static int sv__string(const char *opt, const char *s, char *out, size_t outlen) {
  if (!s[0] || strlen(s) >= outlen) {
    nm_log_error("--%s: expected 1 to %zu characters", opt, outlen - 1);
    return -1;
  }
  memcpy(out, s, strlen(s) + 1);
  return 0;
}

/* The manager's address: "HOST", "HOST:PORT", an IPv6 literal ("::1") or a bracketed one
 * with or without a port ("[::1]", "[::1]:8585"). Brackets are for the reader: the host
 * kept is the bare literal that name resolution takes. */
static int sv__split_host(const char *opt, const char *arg, char *host, size_t hostlen, unsigned *port) {
  const char *h = arg, *p = NULL;
  size_t n = strlen(arg);
  if (arg[0] == '[') {
    const char *close = strchr(arg, ']');
    if (!close || (close[1] && close[1] != ':')) goto bad;
    h = arg + 1;
    n = (size_t)(close - h);
    if (close[1] == ':') p = close + 2;
  } else {
    const char *colon = strchr(arg, ':');
    if (colon && !strchr(colon + 1, ':')) { /* one colon: HOST:PORT; more: an IPv6 literal */
      n = (size_t)(colon - arg);
      p = colon + 1;
    }
  }
  if (n == 0 || n >= hostlen) goto bad;
  if (p) {
    uint64_t v = 0;
    if (nm_parse_u64(p, strlen(p), &v) < 0 || v < 1 || v > 65535) goto bad;
    *port = (unsigned)v;
  }
  memcpy(host, h, n);
  host[n] = 0;
  return 0;
bad:
  nm_log_error("--%s: expected HOST, HOST:PORT, an IPv6 address or [IPv6]:PORT, got \"%s\"", opt, arg);
  return -1;
}

static int sv__manager(const char *arg, sv_config *cfg) {
  unsigned port = 0;
  if (sv__split_host("manager", arg, cfg->manager_host, sizeof cfg->manager_host, &port) < 0) return -1;
  if (port) cfg->manager_port = port;
  return 0;
}

static int sv__apply_option(sv_config *cfg, const sv_role *role, int opt, const char *arg) {
  if ((opt == 'M' || opt == 'r' || opt == 'R' || opt == OPT_METRICS) && !role->relay_limits) {
    nm_log_error("that option is for natmesh-relay");
    return -1;
  }
  if (opt == OPT_NO_REVERSE && role->relay_limits) {
    nm_log_error("that option is for natmesh-servant (a dedicated relay never pulls)");
    return -1;
  }
  switch (opt) {
  case 'n': snprintf(cfg->name, sizeof cfg->name, "%s", arg); return 0;
  case 'm': return sv__manager(arg, cfg);
  case 'P': return sv__uint("manager-port", arg, 1, 65535, &cfg->manager_port);
  case 'p': return sv__uint("port", arg, 0, 65535, &cfg->port);
  case 'l': return sv__string("listen", arg, cfg->listen, sizeof cfg->listen);
  case OPT_NO_LOCAL_ADDRESSES: cfg->local_addresses = 0; return 0;
  case 'b':
    if (nm_banlist_add(&cfg->bans, arg) == 0) return 0;
    nm_log_error("--ban: invalid or too many: \"%s\"", arg);
    return -1;
  case 'U': cfg->nat_upnp = 0; return 0;
  case 'N': cfg->nat_natpmp = 0; return 0;
  case OPT_NO_PCP: cfg->nat_pcp = 0; return 0;
  case OPT_NO_REVERSE: cfg->reverse = 0; return 0;
  case 'v': nm_log_set_level(NM_LOG_DEBUG); return 0;
  case 'M': return sv__uint("max-clients", arg, 1, 256, &cfg->max_clients);
  case 'r': return sv__uint("client-rate", arg, 0, 1000000000, &cfg->client_rate_bps);
  case 'R': return sv__uint("total-rate", arg, 0, 2000000000, &cfg->total_rate_bps);
  case OPT_STATE_DIR: return sv__string("state-dir", arg, cfg->state_dir, sizeof cfg->state_dir);
  case OPT_INVITE: return sv__string("invite", arg, cfg->invite, sizeof cfg->invite);
  case OPT_MANAGER_KEY: return sv__string("manager-key", arg, cfg->manager_key, sizeof cfg->manager_key);
  case OPT_METRICS: return sv__string("metrics", arg, cfg->metrics, sizeof cfg->metrics);
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

/* Every <connectionmgr> of the config file (the table loader keeps the last one only):
 * one, without a comma, is today's form (the manager's address, moved like --manager); the
 * list form, HOST,PORT[,FINGERPRINT] each, may repeat. The file was loaded and checked by
 * nm_config_load already. */
static int sv__config_managers(sv_config *cfg, const char *path) {
  xmlDoc *doc;
  char err[512];
  if (nm_xml_parse_file(path, &doc, err, sizeof err) < 0) {
    nm_log_error("config: %s", err);
    return -1;
  }
  int rc = 0, list = 0;
  for (xmlNode *c = xmlDocGetRootElement(doc)->children; c && rc == 0; c = c->next) {
    if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "connectionmgr") != 0) continue;
    if (cfg->nmgr_entries == SV_JOIN_MANAGERS_MAX) {
      nm_log_error("config: %s:%ld: too many <connectionmgr> (at most %d)", path, xmlGetLineNo(c),
                   SV_JOIN_MANAGERS_MAX);
      rc = -1;
      break;
    }
    const char *t = (c->children && c->children->type == XML_TEXT_NODE && c->children->content)
                        ? (const char *)c->children->content
                        : "";
    while (*t == ' ' || *t == '\t' || *t == '\n' || *t == '\r') t++;
    char *v = cfg->mgr_entries[cfg->nmgr_entries];
    size_t len = strlen(t);
    while (len && (t[len - 1] == ' ' || t[len - 1] == '\t' || t[len - 1] == '\n' || t[len - 1] == '\r')) len--;
    if (len >= sizeof cfg->mgr_entries[0]) len = sizeof cfg->mgr_entries[0] - 1; /* the loader refused longer */
    memcpy(v, t, len);
    v[len] = 0;
    cfg->mgr_lines[cfg->nmgr_entries++] = xmlGetLineNo(c);
    list |= sv_join_entry_is_list(v);
  }
  xmlFreeDoc(doc);
  if (rc < 0) return rc;
  if (cfg->nmgr_entries > 1 && !list) {
    nm_log_error("config: %s:%ld: several <connectionmgr> need HOST,PORT,FINGERPRINT (or HOST,PORT) each", path,
                 cfg->mgr_lines[1]);
    return -1;
  }
  if (cfg->nmgr_entries == 1 && !list) {
    /* Today's form: the address, as --manager (which, given too, overrides it). */
    if (strlen(cfg->mgr_entries[0]) >= sizeof cfg->manager_host) {
      nm_log_error("config: %s:%ld: <connectionmgr> is too long (at most %zu characters)", path, cfg->mgr_lines[0],
                   sizeof cfg->manager_host - 1);
      return -1;
    }
    snprintf(cfg->manager_host, sizeof cfg->manager_host, "%.255s", cfg->mgr_entries[0]);
    cfg->nmgr_entries = 0;
  }
  return 0;
}

/* The invite (read from its file with "@FILE"), the manager key, the config's managers and
 * the address overrides, resolved into cfg->join; the manager link tries its managers in
 * order. */
static int sv__resolve_join(sv_config *cfg, const char *config_path) {
  char invite[NM_INVITE_MAX + 1] = "", err[512];
  if (cfg->manager_host[0] == '[') {
    char host[sizeof cfg->manager_host];
    unsigned port = 0;
    if (sv__split_host("connectionmgr", cfg->manager_host, host, sizeof host, &port) < 0) return -1;
    memcpy(cfg->manager_host, host, sizeof host);
    if (port && !cfg->manager_port) cfg->manager_port = port;
  }
  if (cfg->invite[0] && sv_join_read_invite(cfg->invite, "invite", invite, sizeof invite, err, sizeof err) < 0) {
    nm_log_error("%s", err);
    return -1;
  }
  sv_join_entry entries[SV_JOIN_MANAGERS_MAX];
  for (size_t i = 0; i < cfg->nmgr_entries; i++) entries[i] = (sv_join_entry){cfg->mgr_entries[i], cfg->mgr_lines[i]};
  int rc = sv_join_resolve_list(&cfg->join, invite, cfg->manager_key, entries, cfg->nmgr_entries, config_path,
                                cfg->manager_host, cfg->manager_port, err, sizeof err);
  OPENSSL_cleanse(invite, sizeof invite);
  OPENSSL_cleanse(cfg->invite, sizeof cfg->invite); /* the secret is in join now */
  if (rc < 0) {
    nm_log_error("%s", err);
    return -1;
  }
  snprintf(cfg->manager_host, sizeof cfg->manager_host, "%s", cfg->join.managers[0].host);
  cfg->manager_port = cfg->join.managers[0].port;
  return 0;
}

void sv_config_defaults(sv_config *cfg, const sv_role *role) {
  memset(cfg, 0, sizeof *cfg);
  cfg->role = role->role;
  cfg->quiet = role->quiet;
  /* manager_host "" and manager_port 0: not given, the invite's address (or the default,
   * with --manager-key alone) applies. */
  snprintf(cfg->listen, sizeof cfg->listen, "::");
  cfg->local_addresses = 1;
  cfg->reverse = 1;
  cfg->nat_upnp = cfg->nat_natpmp = cfg->nat_pcp = 1;
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
    size_t n = role->relay_limits ? sv_relay_nfields : sv_servant_nfields;
    char err[512];
    if (nm_config_load(config_path, role->config_root, fields, n, cfg, err, sizeof err) < 0) {
      nm_log_error("config: %s", err);
      return 2;
    }
    if (sv__config_managers(cfg, config_path) < 0) return 2;
  }
  optind = 1;
  while ((opt = getopt_long(argc, argv, sv_optstring, sv_options, NULL)) != -1)
    if (sv__apply_option(cfg, role, opt, optarg) < 0) return 2;
  if (!cfg->name[0]) sv__default_name(cfg, role);
  if (!nm_name_valid(cfg->name)) {
    nm_log_error("name \"%s\" must be 1-%d characters of A-Z a-z 0-9 - _ .", cfg->name, NM_NAME_MAX);
    return 2;
  }
  char ip[64];
  uint16_t mport;
  if (cfg->metrics[0] && nm_http_parse_listen(cfg->metrics, ip, sizeof ip, &mport) < 0) {
    nm_log_error("metrics: expected [ADDR:]PORT (ADDR an IP address, [IPv6] in brackets), got \"%s\"",
                 cfg->metrics);
    return 2;
  }
  /* A config that names no manager key could not run: --check-config says so too (the
   * invite may come on the command line with it). */
  if (sv__resolve_join(cfg, config_path) < 0) return 2;
  if (check_only) {
    printf("configuration ok\n");
    return 1;
  }
  return 0;
}
