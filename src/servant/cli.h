/* The command line and config file of natmesh-servant and natmesh-relay (cli.c), and the
 * role description that makes one program of the two (entry.c). */
#ifndef SV_CLI_H
#define SV_CLI_H

#include "join.h"
#include "nm_config.h"
#include "nm_proto.h"

#define SV_STATE_DIR_MAX 1024

typedef struct {
  nm_role role;
  int quiet; /* shows no chat and publishes none (a dedicated relay) */
  /* relay duty: limits apply to dedicated relays; servants serve a few clients at most */
  unsigned max_clients;
  unsigned client_rate_bps;  /* bytes per second per client, 0 = unlimited */
  unsigned total_rate_bps;   /* bytes per second in all, 0 = unlimited */
  char name[NM_NAME_MAX + 1];
  /* Joining: the state directory (our key and epoch), the invite (or "@FILE") and the
   * manager's key; --manager / --manager-port ("" and 0 when not given) only move the
   * address. sv_cli_parse resolves them into join. */
  char state_dir[SV_STATE_DIR_MAX];
  char invite[NM_INVITE_MAX + 2]; /* an invite, or "@FILE" */
  char manager_key[80];
  char manager_host[256];
  unsigned manager_port;
  /* The config's <connectionmgr> elements, each as written (HOST, [IPv6]:PORT, or the list
   * form HOST,PORT[,FINGERPRINT]), with their lines; connectionmgr is the config loader's
   * slot (the last one), cli.c reads them all. */
  char connectionmgr[NM_INVITE_HOST_MAX + 80];
  char mgr_entries[SV_JOIN_MANAGERS_MAX][NM_INVITE_HOST_MAX + 80];
  long mgr_lines[SV_JOIN_MANAGERS_MAX];
  size_t nmgr_entries;
  sv_join join;
  char listen[64]; /* default "::": both families (0.0.0.0 when the system has no IPv6) */
  unsigned port; /* 0: ask the manager for one */
  int local_addresses; /* report our interface addresses to the manager (candidates) */
  int reverse; /* while we pull, ask peers for their lines on our connections (connection
                  reversal, peers.c); natmesh-servant --no-reverse / <reverse>off</reverse> */
  nm_banlist bans;
  int nat_upnp, nat_natpmp, nat_pcp;
  unsigned nat_lease_s;
  char metrics[80]; /* natmesh-relay --metrics [ADDR:]PORT ("": off), servant/metrics.c */
} sv_config;

/* config_fields.c: the config files' elements, for the servant and for the relay. */
extern const nm_cfg_field sv_servant_fields[];
extern const size_t sv_servant_nfields;
extern const nm_cfg_field sv_relay_fields[];
extern const size_t sv_relay_nfields;

/* What makes natmesh-servant and natmesh-relay different: everything else is shared. */
typedef struct {
  const char *program;     /* "natmesh-servant": logs, --version */
  nm_role role;
  const char *config_root; /* the config file's root element */
  const char *usage;
  int relay_limits;        /* accepts --max-clients, --client-rate, --total-rate and <limits> */
  unsigned max_clients;    /* default */
  int quiet;               /* shows no chat, publishes none */
  int console;             /* reads lines and commands from stdin */
  const char *default_name;/* a name prefix when none is given; NULL: the host name */
} sv_role;

/* The defaults for role, before the config file and options. */
void sv_config_defaults(sv_config *cfg, const sv_role *role);
/* Reads the config file and options into cfg (which holds the defaults). Returns 0 to
 * run, 1 to exit successfully (--help, --version, --check-config), 2 on an error already
 * logged. */
int sv_cli_parse(sv_config *cfg, const sv_role *role, int argc, char **argv);

#endif
