/* The manager's config file (<manager>): one row per element, read by nm_config_load. Kept
 * apart from main.c so that the config loader's fuzzer (tests/unit/fuzz/fuzz_config.c)
 * loads files with this very table, not a copy that could drift. */
#include "manager.h"
#include "nm_addrlimit.h"

#define F(path, kind, min, max, member) NM_CFG_FIELD(mgr_config, path, kind, min, max, member)
const nm_cfg_field mgr_config_fields[] = {
    F("listen", NM_CFG_STRING, 0, 0, listen),
    F("port", NM_CFG_UINT, 1, 65535, port),
    F("heartbeat", NM_CFG_UINT, 1, 3600, heartbeat_s),
    F("timeout", NM_CFG_UINT, 2, 36000, timeout_s),
    F("port-range/first", NM_CFG_UINT, 1, 65535, port_first),
    F("port-range/last", NM_CFG_UINT, 1, 65535, port_last),
    F("complaints/threshold", NM_CFG_UINT, 1, 100, complaint_threshold),
    F("complaints/window", NM_CFG_UINT, 1, 86400, complaint_window_s),
    F("complaints/quorum-percent", NM_CFG_UINT, 1, 100, quorum_percent),
    F("state-dir", NM_CFG_STRING, 0, 0, state_dir),
    NM_CFG_CHOICE_FIELD(mgr_config, "admission", "invite|allow|open", admission),
    F("allow", NM_CFG_KEYS, 0, 0, allow),
    F("relay-key", NM_CFG_KEYS, 0, 0, relay_keys),
    F("admin-key", NM_CFG_KEYS, 0, 0, admin_keys),
    F("max-unauth-per-address", NM_CFG_UINT, 1, NM_ADDRLIMIT_TOTAL_MAX, max_unauth_per_addr),
    F("max-unauth", NM_CFG_UINT, 1, NM_ADDRLIMIT_TOTAL_MAX, max_unauth),
    F("metrics", NM_CFG_STRING, 0, 0, metrics),
    F("max-servants", NM_CFG_UINT, 1, MGR_SERVANTS_LIMIT, max_servants),
    F("delta-window-ms", NM_CFG_UINT, 0, MGR_DELTA_WINDOW_MAX_MS, delta_window_ms),
    F("mesh-above", NM_CFG_UINT, 0, 1000000, mesh_above),
    F("mesh-degree", NM_CFG_UINT, MGR_MESH_DEGREE_MIN, MGR_MESH_DEGREE_MAX, mesh_degree),
    F("store", NM_CFG_STRING, 0, 0, store),
    F("overlay", NM_CFG_STRING, 0, 0, overlay),
    F("manager-name", NM_CFG_STRING, 0, 0, manager_name),
};
#undef F

const size_t mgr_config_nfields = sizeof mgr_config_fields / sizeof *mgr_config_fields;
