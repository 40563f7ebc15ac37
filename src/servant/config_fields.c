/* The config files of natmesh-servant (<config>) and natmesh-relay (<relay>): one row per
 * element, the relay's limits accepted only by the relay. Kept apart from cli.c so that the
 * config loader's fuzzer (tests/unit/fuzz/fuzz_config.c) loads files with these very
 * tables, not copies that could drift. */
#include "cli.h"

#define F(path, kind, min, max, member) NM_CFG_FIELD(sv_config, path, kind, min, max, member)
#define SV_COMMON_FIELDS                                        \
  F("connectionmgr", NM_CFG_STRING, 0, 0, connectionmgr),      \
  F("port", NM_CFG_UINT, 1, 65535, manager_port),              \
  F("state-dir", NM_CFG_STRING, 0, 0, state_dir),              \
  F("invite", NM_CFG_INVITE, 0, 0, invite),                    \
  F("manager-key", NM_CFG_KEY, 0, 0, manager_key),             \
  F("bans", NM_CFG_BANS, 0, 0, bans),                          \
  F("name", NM_CFG_STRING, 0, 0, name),                        \
  F("listen", NM_CFG_STRING, 0, 0, listen),                    \
  F("listen-port", NM_CFG_UINT, 0, 65535, port),               \
  F("local-addresses", NM_CFG_BOOL, 0, 0, local_addresses),   \
  F("nat/upnp", NM_CFG_BOOL, 0, 0, nat_upnp),                  \
  F("nat/natpmp", NM_CFG_BOOL, 0, 0, nat_natpmp),              \
  F("nat/pcp", NM_CFG_BOOL, 0, 0, nat_pcp),                    \
  F("nat/lease", NM_CFG_UINT, 30, 604800, nat_lease_s)

const nm_cfg_field sv_servant_fields[] = {
    SV_COMMON_FIELDS,
    F("relay-clients", NM_CFG_UINT, 0, 256, max_clients),
    F("reverse", NM_CFG_BOOL, 0, 0, reverse),
};
const nm_cfg_field sv_relay_fields[] = {
    SV_COMMON_FIELDS,
    F("limits/max-clients", NM_CFG_UINT, 1, 256, max_clients),
    F("limits/client-bytes-per-second", NM_CFG_UINT, 0, 1000000000, client_rate_bps),
    F("limits/total-bytes-per-second", NM_CFG_UINT, 0, 2000000000, total_rate_bps),
    F("metrics", NM_CFG_STRING, 0, 0, metrics),
};
#undef F

const size_t sv_servant_nfields = sizeof sv_servant_fields / sizeof *sv_servant_fields;
const size_t sv_relay_nfields = sizeof sv_relay_fields / sizeof *sv_relay_fields;
