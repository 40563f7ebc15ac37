/* How a servant or relay finds and recognises its managers (join.c): the invite (or the
 * manager's key alone, for an open manager), the invite's other managers (also=), the
 * config's <connectionmgr> list and the address overrides, resolved into a list of up to
 * SV_JOIN_MANAGERS_MAX targets, each with the one key it must present. The manager link
 * talks to one at a time and moves to the next when it fails (manager_link.c). Pure but
 * for reading an invite from a file: no loop, no sockets, no logging. */
#ifndef SV_JOIN_H
#define SV_JOIN_H

#include <stddef.h>
#include <stdint.h>

#include "nm_identity.h"
#include "nm_invite.h"

#define SV_DEFAULT_MANAGER_HOST "127.0.0.1"
#define SV_DEFAULT_MANAGER_PORT 85

/* Where the key we pin came from, for the error that names it when a manager presents
 * another. */
typedef enum {
  SV_KEY_FROM_INVITE = 0,
  SV_KEY_FROM_OPTION, /* --manager-key or <manager-key> */
  SV_KEY_FROM_CONFIG, /* <connectionmgr>HOST,PORT,FINGERPRINT</connectionmgr> */
} sv_key_source;

/* The invite's manager and its other managers (also=): one list. */
#define SV_JOIN_MANAGERS_MAX (1 + NM_INVITE_ALSO_MAX)

typedef struct {
  char host[NM_INVITE_HOST_MAX + 1];
  uint16_t port;
  nm_fingerprint fp;         /* the only key the manager link accepts from this manager */
  sv_key_source key_source;
} sv_join_manager;

/* A <connectionmgr> element of the config file as read, with its line for errors. */
typedef struct {
  const char *value;
  long line;
} sv_join_entry;

typedef struct {
  /* In the order tried: the first is the invite's manager (or the one --manager-key names,
   * or the config list's first), moved by --manager / --manager-port. */
  sv_join_manager managers[SV_JOIN_MANAGERS_MAX];
  size_t nmanagers;
  int has_secret;                /* an invite's join secret, sent in hello */
  unsigned char secret[NM_INVITE_SECRET_LEN];
  nm_role invite_role;           /* NM_ROLE_RELAY when the invite grants the relay role */
  uint64_t invite_expires;       /* 0: never */
} sv_join;

/* Reads an invite argument into out: the string itself, or with "@FILE" the contents of
 * FILE with surrounding blanks and line ends trimmed (an invite is one line). Returns 0, or
 * -1 with the reason in err ("--invite @/x: No such file or directory"). what names the
 * setting in errors ("--invite", "<invite>"). */
int sv_join_read_invite(const char *arg, const char *what, char *out, size_t outlen, char *err,
                        size_t errlen);

/* Resolves the targets. invite: an invite string or "" (already read: no "@FILE");
 * manager_key: a 64-hex fingerprint or ""; host, port: the --manager / --manager-port
 * (or config) overrides, "" and 0 when not set. They override the first manager's address,
 * never its key; both an invite and a manager key must then name the same key. Returns 0,
 * or -1 with the reason in err: without either, exactly "no manager key: pass --invite or
 * --manager-key". The secret is wiped from the parsed invite before returning. */
int sv_join_resolve(sv_join *j, const char *invite, const char *manager_key, const char *host,
                    unsigned port, char *err, size_t errlen);

/* The same with the config's list of managers (n entries "HOST,PORT[,FINGERPRINT]", n may
 * be 0): when given, it replaces the invite's list (its address and also= fields), in its
 * order. An entry without a fingerprint is pinned to the invite's key or --manager-key (one
 * of which is then required); with one, to that key (then neither is needed). At most
 * SV_JOIN_MANAGERS_MAX, no address twice. file names the config in errors
 * ("FILE:LINE: <connectionmgr> ..."). */
int sv_join_resolve_list(sv_join *j, const char *invite, const char *manager_key,
                         const sv_join_entry *entries, size_t n, const char *file,
                         const char *host, unsigned port, char *err, size_t errlen);

/* Whether a <connectionmgr> value is of the list form (it has a comma). */
int sv_join_entry_is_list(const char *value);

/* Wipes the secret. */
void sv_join_clear(sv_join *j);

#endif
