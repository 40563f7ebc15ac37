/* nm_invite: the invite string a manager prints and a servant or relay joins with.
 *
 * An invite carries everything a node needs to join, and nothing it must trust from
 * elsewhere: the manager's address, the fingerprint of the manager's key (so the node refuses
 * any other manager, whatever answers at the address), a join secret, and optionally the
 * relay role, an expiry, and the overlay's other managers (several managers sharing one
 * overlay through a store, each with its own key):
 *
 *   natmesh-invite:v1/HOST/PORT/FINGERPRINT/SECRET[/role=relay][/expires=UNIXTIME]
 *                    [/also=HOST,PORT,FINGERPRINT]...
 *
 *   natmesh-invite:v1/manager.example.org/8585/5d41...(64 hex).../9f86d081884c7d65...(32 hex)
 *   natmesh-invite:v1/2001:db8::7/8585/5d41.../9f86.../role=relay/expires=1767225600
 *   natmesh-invite:v1/10.0.0.1/8585/5d41.../9f86.../also=10.0.0.2,8585,77af...(64 hex)...
 *
 * Each also= names another manager of the same overlay and pins its key: a node that loses
 * its manager tries the next one (servant/manager_link.c), and refuses any key but the one
 * named for that address. At most NM_INVITE_ALSO_MAX of them, after role and expires, no
 * two alike; the secret is the same for all (the managers share their invites).
 *
 * Why this form rather than a URL (natmesh://HOST:PORT/?fp=..&secret=..) or base64 of a
 * binary blob: it is pasted into shells and into config.xml. A URL's '&' backgrounds a
 * command in a shell when unquoted and must be written &amp; in XML, and its '?' and an
 * IPv6 host's '[ ]' are glob characters; a base64 blob hides which manager it points to and
 * whether it grants the relay role, which a user should be able to read before using it.
 * Fields separated by '/' need no quoting anywhere (every character is a letter, a digit or
 * one of ". - : / = ,"), an IPv6 host needs no brackets (its colons cannot be mistaken for a
 * separator), and the version in the prefix lets a later format be told apart.
 *
 * Parsing is strict, one spelling per invite: fields in that order, lowercase hex of exact
 * length, decimal numbers without sign or leading zeros, no blanks (a caller reading a file
 * trims the line first), at most NM_INVITE_MAX characters. Errors name the field:
 * "invite: bad fingerprint (expected 64 lowercase hex characters)".
 *
 * The secret is 128 random bits (RAND_bytes). The manager keeps only nm_invite_secret_hash()
 * of it, so its state file, if stolen, cannot be turned back into an invite; 128 bits make a
 * plain (unsalted, fast) hash sufficient, since no one can try the secrets one by one. */
#ifndef NM_INVITE_H
#define NM_INVITE_H

#include <stddef.h>
#include <stdint.h>

#include "nm_hex.h"
#include "nm_proto.h"

#define NM_INVITE_PREFIX "natmesh-invite:"
#define NM_INVITE_VERSION "v1"
#define NM_INVITE_HOST_MAX 253    /* a DNS name's limit; IP literals are shorter */
/* Other managers an invite may name (also=), so 1 + NM_INVITE_ALSO_MAX in all. */
#define NM_INVITE_ALSO_MAX 4
/* Characters read at most: the longest valid invite has 415 without also= fields, and each
 * adds at most 330 ("/also=" + 253 + "," + 5 + "," + 64): 1735 with four. */
#define NM_INVITE_MAX 2048
#define NM_INVITE_SECRET_LEN 16   /* bytes of the join secret: 128 bits */
#define NM_INVITE_SECRET_HEX_LEN (2 * NM_INVITE_SECRET_LEN)
/* An invite's id: the first characters of its secret's hash. It names the invite in the
 * manager's store, in logs and in "revoke" without revealing the secret. */
#define NM_INVITE_ID_LEN 16

/* A manager: where it listens and the key it must present. */
typedef struct {
  char host[NM_INVITE_HOST_MAX + 1]; /* a DNS name, or an IPv4 or IPv6 literal (no brackets) */
  uint16_t port;                     /* 1..65535 */
  char fingerprint[NM_SHA256_HEX_LEN + 1]; /* of the manager's key, lowercase hex */
} nm_invite_manager;

typedef struct {
  char host[NM_INVITE_HOST_MAX + 1]; /* a DNS name, or an IPv4 or IPv6 literal (no brackets) */
  uint16_t port;                     /* 1..65535 */
  char fingerprint[NM_SHA256_HEX_LEN + 1]; /* of the manager's key, lowercase hex */
  unsigned char secret[NM_INVITE_SECRET_LEN];
  nm_role role;     /* NM_ROLE_RELAY when the invite grants it, else NM_ROLE_SERVANT */
  uint64_t expires; /* unix time in seconds after which the manager refuses it; 0: never */
  nm_invite_manager also[NM_INVITE_ALSO_MAX]; /* the overlay's other managers, in order */
  size_t nalso;
} nm_invite;

/* "HOST,PORT,FINGERPRINT" (an also= field's value, natmesh-manager invite --also, a
 * servant's <connectionmgr>): the host as an invite's, the port a decimal 1..65535 without
 * leading zero, the fingerprint 64 lowercase hex characters (nm_invite_manager_parse_any
 * also takes uppercase, for an operator's config, and stores it lowercase). len is the
 * value's length (it needs no NUL). Returns 0, or -EINVAL with "invite: ..." in err. */
int nm_invite_manager_parse(const char *s, size_t len, nm_invite_manager *out, char *err,
                            size_t errlen);
int nm_invite_manager_parse_any(const char *s, size_t len, nm_invite_manager *out, char *err,
                                size_t errlen);

/* Appends m to inv's also= fields. Returns 0, or -EINVAL with the reason in err: an invalid
 * field, more than NM_INVITE_ALSO_MAX, or a manager already named (the main one included:
 * same host and port). */
int nm_invite_add_also(nm_invite *inv, const nm_invite_manager *m, char *err, size_t errlen);

/* Fills inv with a new invite: the given fields (checked as the parser checks them) and a
 * fresh secret from RAND_bytes. Returns 0, -EINVAL with the reason in err, or -EIO when the
 * random generator fails (then no invite must be printed). */
int nm_invite_create(nm_invite *inv, const char *host, uint16_t port, const char *fingerprint,
                     nm_role role, uint64_t expires, char *err, size_t errlen);

/* Writes the invite string (at most NM_INVITE_MAX characters and a NUL) into out. Returns 0,
 * or -EINVAL when a field is invalid (the string would not parse) or out is too small. */
int nm_invite_format(const nm_invite *inv, char *out, size_t outsize);

/* Parses an invite string into *out. Returns 0, or -EINVAL with "invite: ..." in err (out is
 * then cleared: no half-parsed secret is left behind). */
int nm_invite_parse(const char *s, nm_invite *out, char *err, size_t errlen);

/* Wipes the invite, its secret included (OPENSSL_cleanse, which the compiler keeps). */
void nm_invite_clear(nm_invite *inv);

/* 1 when the invite has an expiry and now (unix seconds) is past it. */
int nm_invite_expired(uint64_t expires, uint64_t now);

/* The hash the manager stores for a secret: SHA-256 over "natmesh-invite-v1" and the secret's
 * bytes (the tag keeps the hash from matching any other use of the same bytes), as
 * NM_SHA256_HEX_LEN lowercase hex characters. Returns 0, or -EIO when OpenSSL fails. */
int nm_invite_secret_hash(const unsigned char secret[NM_INVITE_SECRET_LEN],
                          char out[NM_SHA256_HEX_LEN + 1]);

/* The secret in text (as a node presents it to the manager) and back: exactly
 * NM_INVITE_SECRET_HEX_LEN lowercase hex characters. decode returns 0 or -EINVAL. */
void nm_invite_secret_encode(const unsigned char secret[NM_INVITE_SECRET_LEN],
                             char out[NM_INVITE_SECRET_HEX_LEN + 1]);
int nm_invite_secret_decode(const char *s, unsigned char secret[NM_INVITE_SECRET_LEN]);

/* 1 when s is a host an invite may carry: a DNS name (labels of letters, digits and inner
 * hyphens, at most 63 each and 253 in all), a dotted-quad IPv4 address, or an IPv6 literal
 * without zone. */
int nm_invite_host_valid(const char *s);

#endif
