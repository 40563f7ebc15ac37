/* libFuzzer target: the config loader (nm_config_load) with the tables of the three
 * programs that read config files: natmesh-servant (<config>), natmesh-relay (<relay>) and
 * natmesh-manager (<manager>). The tables below copy theirs (src/servant/cli.c,
 * src/manager/main.c): every kind of value (string, bounded uint, bool, ban list, key
 * list) and nested sections. The input is written to a memory file, since the loader reads a path;
 * the root element picks the table. Whatever is accepted must hold: strings terminated
 * within their size, numbers within their row's bounds, booleans 0 or 1, bans non-empty,
 * keys 64 lowercase hex characters, each listed once;
 * whatever is refused must say so, naming the file. */
#include "nm_config.h"
#include "nm_proto.h"
#include "nm_xml.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct {
  unsigned max_clients, client_rate_bps, total_rate_bps;
  char name[NM_NAME_MAX + 1];
  char manager_host[256];
  unsigned manager_port;
  char listen[64];
  unsigned port;
  nm_banlist bans;
  int nat_upnp, nat_natpmp;
  unsigned nat_lease_s;
} fz_peer_config;

typedef struct {
  char listen[64];
  unsigned port, heartbeat_s, timeout_s, port_first, port_last;
  unsigned complaint_threshold, complaint_window_s, quorum_percent;
  char state_dir[512];
  char admission[16];
  nm_keylist allow, relay_keys, admin_keys;
  unsigned max_unauth_per_addr, max_unauth;
} fz_manager_config;

#define P(path, kind, min, max, member) NM_CFG_FIELD(fz_peer_config, path, kind, min, max, member)
#define PEER_COMMON_FIELDS                               \
  P("connectionmgr", NM_CFG_STRING, 0, 0, manager_host), \
  P("port", NM_CFG_UINT, 1, 65535, manager_port),        \
  P("bans", NM_CFG_BANS, 0, 0, bans),                    \
  P("name", NM_CFG_STRING, 0, 0, name),                  \
  P("listen", NM_CFG_STRING, 0, 0, listen),              \
  P("listen-port", NM_CFG_UINT, 0, 65535, port),         \
  P("nat/upnp", NM_CFG_BOOL, 0, 0, nat_upnp),            \
  P("nat/natpmp", NM_CFG_BOOL, 0, 0, nat_natpmp),        \
  P("nat/lease", NM_CFG_UINT, 30, 604800, nat_lease_s)
static const nm_cfg_field fz_servant_fields[] = {
    PEER_COMMON_FIELDS,
    P("relay-clients", NM_CFG_UINT, 0, 256, max_clients),
};
static const nm_cfg_field fz_relay_fields[] = {
    PEER_COMMON_FIELDS,
    P("limits/max-clients", NM_CFG_UINT, 1, 256, max_clients),
    P("limits/client-bytes-per-second", NM_CFG_UINT, 0, 1000000000, client_rate_bps),
    P("limits/total-bytes-per-second", NM_CFG_UINT, 0, 2000000000, total_rate_bps),
};
#undef P
#define M(path, kind, min, max, member) NM_CFG_FIELD(fz_manager_config, path, kind, min, max, member)
static const nm_cfg_field fz_manager_fields[] = {
    M("listen", NM_CFG_STRING, 0, 0, listen),
    M("port", NM_CFG_UINT, 1, 65535, port),
    M("heartbeat", NM_CFG_UINT, 1, 3600, heartbeat_s),
    M("timeout", NM_CFG_UINT, 2, 36000, timeout_s),
    M("port-range/first", NM_CFG_UINT, 1, 65535, port_first),
    M("port-range/last", NM_CFG_UINT, 1, 65535, port_last),
    M("complaints/threshold", NM_CFG_UINT, 1, 100, complaint_threshold),
    M("complaints/window", NM_CFG_UINT, 1, 86400, complaint_window_s),
    M("complaints/quorum-percent", NM_CFG_UINT, 1, 100, quorum_percent),
    M("state-dir", NM_CFG_STRING, 0, 0, state_dir),
    M("admission", NM_CFG_STRING, 0, 0, admission),
    M("allow", NM_CFG_KEYS, 0, 0, allow),
    M("relay-key", NM_CFG_KEYS, 0, 0, relay_keys),
    M("admin-key", NM_CFG_KEYS, 0, 0, admin_keys),
    M("max-unauth-per-address", NM_CFG_UINT, 1, 1048576, max_unauth_per_addr),
    M("max-unauth", NM_CFG_UINT, 1, 1048576, max_unauth),
};
#undef M

#define COUNT(a) (sizeof(a) / sizeof *(a))

/* Defaults inside every row's bounds, so that a value left alone passes the checks too. */
static void fz_defaults(const nm_cfg_field *fields, size_t n, void *out) {
  for (size_t i = 0; i < n; i++)
    if (fields[i].type == NM_CFG_UINT) *(unsigned *)((char *)out + fields[i].offset) = fields[i].min;
}

static void fz_check(const nm_cfg_field *fields, size_t n, const void *cfg) {
  for (size_t i = 0; i < n; i++) {
    const char *p = (const char *)cfg + fields[i].offset;
    switch (fields[i].type) {
    case NM_CFG_STRING:
      if (!memchr(p, 0, fields[i].size)) abort();
      break;
    case NM_CFG_UINT: {
      unsigned v = *(const unsigned *)p;
      if (v < fields[i].min || v > fields[i].max) abort();
      break;
    }
    case NM_CFG_BOOL: {
      int v = *(const int *)p;
      if (v != 0 && v != 1) abort();
      break;
    }
    case NM_CFG_BANS: {
      const nm_banlist *b = (const nm_banlist *)p;
      if (b->count > NM_BANS_MAX) abort();
      for (size_t k = 0; k < b->count; k++)
        if (!b->targets[k][0] || !memchr(b->targets[k], 0, NM_BAN_TARGET_MAX)) abort();
      break;
    }
    case NM_CFG_KEYS: {
      const nm_keylist *l = (const nm_keylist *)p;
      if (l->count > NM_KEYLIST_MAX || l->count > l->cap) abort();
      for (size_t k = 0; k < l->count; k++) {
        if (strlen(l->fps[k]) != NM_KEYLIST_FP_LEN ||
            strspn(l->fps[k], "0123456789abcdef") != NM_KEYLIST_FP_LEN)
          abort();
        for (size_t j = 0; j < k; j++)
          if (!strcmp(l->fps[j], l->fps[k])) abort();
      }
      break;
    }
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
    nm_xml_init();
    fd = memfd_create("fuzz-config", 0);
    if (fd < 0) abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size) abort();

  /* The root element picks the program; anything else is loaded as a servant's config
   * (and refused for its root). */
  const char *root = "config";
  xmlDoc *doc;
  char err[512];
  if (nm_xml_parse((const char *)data, size, &doc, err, sizeof err) == 0) {
    const char *name = (const char *)xmlDocGetRootElement(doc)->name;
    if (!strcmp(name, "relay")) root = "relay";
    else if (!strcmp(name, "manager")) root = "manager";
    xmlFreeDoc(doc);
  }

  static fz_peer_config peer;
  static fz_manager_config mgr;
  const nm_cfg_field *fields;
  size_t n;
  void *cfg;
  if (!strcmp(root, "manager")) {
    fields = fz_manager_fields, n = COUNT(fz_manager_fields), cfg = &mgr;
    memset(&mgr, 0, sizeof mgr);
  } else {
    fields = root[0] == 'r' ? fz_relay_fields : fz_servant_fields;
    n = root[0] == 'r' ? COUNT(fz_relay_fields) : COUNT(fz_servant_fields);
    cfg = &peer;
    memset(&peer, 0, sizeof peer);
  }
  fz_defaults(fields, n, cfg);
  err[0] = 0;
  if (nm_config_load(path, root, fields, n, cfg, err, sizeof err) == 0)
    fz_check(fields, n, cfg);
  else if (strncmp(err, path, strlen(path)) != 0) /* a refusal names the file */
    abort();
  /* Key lists are the owner's to free, loaded or refused. */
  for (size_t i = 0; i < n; i++)
    if (fields[i].type == NM_CFG_KEYS) nm_keylist_free((nm_keylist *)((char *)cfg + fields[i].offset));
  return 0;
}
