/* How a servant or relay finds and recognises its manager (join.c): the invite (or the
 * manager's key alone, for an open manager) and the address overrides, resolved into one
 * target. Pure but for reading an invite from a file: no loop, no sockets, no logging. */
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
} sv_key_source;

typedef struct {
  char host[NM_INVITE_HOST_MAX + 1];
  uint16_t port;
  nm_fingerprint manager_fp;     /* the only key the manager link accepts */
  sv_key_source key_source;
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

/* Resolves the target. invite: an invite string or "" (already read: no "@FILE");
 * manager_key: a 64-hex fingerprint or ""; host, port: the --manager / --manager-port
 * (or config) overrides, "" and 0 when not set. They override the invite's address, never
 * its key; both an invite and a manager key must then name the same key. Returns 0, or -1
 * with the reason in err: without either, exactly "no manager key: pass --invite or
 * --manager-key". The secret is wiped from the parsed invite before returning. */
int sv_join_resolve(sv_join *j, const char *invite, const char *manager_key, const char *host,
                    unsigned port, char *err, size_t errlen);

/* Wipes the secret. */
void sv_join_clear(sv_join *j);

#endif
