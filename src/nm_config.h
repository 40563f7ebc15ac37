/* nm_config: table-driven XML config files.
 *
 * Each program describes its settings as a table of {path, type, min, max, offset}; the
 * loader walks the document, refuses unknown elements and out-of-range values with
 * "file:line: message" so a typo never silently becomes a default, and writes the values
 * into the program's own struct. Defaults are whatever the struct held before loading. */
#ifndef NM_CONFIG_H
#define NM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  NM_CFG_STRING, /* char[size] */
  NM_CFG_UINT,   /* unsigned, within [min, max] */
  NM_CFG_BOOL,   /* int: on/off, yes/no, true/false, 1/0 */
  NM_CFG_BANS,   /* nm_banlist: <ban><target>..</target></ban>... */
  NM_CFG_KEYS,   /* nm_keylist: an element that may repeat, each a key fingerprint */
} nm_cfg_type;

typedef struct {
  const char *path; /* element path below the root, e.g. "port" or "nat/lease" */
  nm_cfg_type type;
  unsigned min, max;
  size_t offset;
  size_t size; /* for strings */
} nm_cfg_field;

/* One row of a config table: NM_CFG_FIELD(my_config, "nat/lease", NM_CFG_UINT, 30, 604800, lease_s) */
#define NM_CFG_FIELD(type_, path, kind, min, max, member) \
  { path, kind, min, max, offsetof(type_, member), sizeof(((type_ *)0)->member) }

#define NM_BANS_MAX 256
#define NM_BAN_TARGET_MAX 256

typedef struct {
  char targets[NM_BANS_MAX][NM_BAN_TARGET_MAX];
  size_t count;
} nm_banlist;

/* Adds a ban; returns 0, -ENOSPC when full, -EINVAL when empty or too long. */
int nm_banlist_add(nm_banlist *b, const char *target);
/* 1 when ip, or (when non-NULL) hostname, matches a target, case-insensitively for names.
 * Key targets (below) never match an address or a name. */
int nm_banlist_match(const nm_banlist *b, const char *ip, const char *hostname);

/* A target of NM_BAN_KEY_MIN to 64 hex characters (either case) bans a key: its fingerprint
 * (nm_identity.h), or any fingerprint that starts with it. 16 hex characters are 64 bits, as
 * many as a node id: a prefix that short still names one key in practice, and an operator
 * can paste an id from a log line. (So a host whose name is 16 or more hex digits and
 * nothing else cannot be banned by name; ban its address.) */
#define NM_BAN_KEY_MIN 16
int nm_ban_target_is_key(const char *target);
/* 1 when fingerprint (64 lowercase hex) is banned by a key target. */
int nm_banlist_match_key(const nm_banlist *b, const char *fingerprint);
/* 1 when some target is a host name (neither an IP address nor a key), so that reverse
 * lookups are worth making. */
int nm_banlist_has_names(const nm_banlist *b);

/* Key fingerprints (64 hex characters, stored lowercase), e.g. a manager's <admin-key>
 * elements. The list grows as needed up to NM_KEYLIST_MAX; the owner frees it. */
#define NM_KEYLIST_MAX 4096
#define NM_KEYLIST_FP_LEN 64

typedef struct {
  char (*fps)[NM_KEYLIST_FP_LEN + 1];
  size_t count, cap;
} nm_keylist;

/* Adds fp (64 hex characters, either case; a duplicate is a no-op). Returns 0, -EINVAL,
 * -ENOSPC when NM_KEYLIST_MAX are listed, or -ENOMEM. */
int nm_keylist_add(nm_keylist *l, const char *fp);
/* 1 when fp (lowercase) is listed. */
int nm_keylist_has(const nm_keylist *l, const char *fp);
void nm_keylist_free(nm_keylist *l);

/* Loads path into out following fields (root element named root). Returns 0 or
 * NM_ECONFIG with err naming file, line and value. */
int nm_config_load(const char *path, const char *root, const nm_cfg_field *fields,
                   size_t nfields, void *out, char *err, size_t errlen);

#endif
