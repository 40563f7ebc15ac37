/* nm_member: membership certificates, for lines from origins a servant does not list.
 *
 * In a bounded mesh above --mesh-above a servant lists only its view (itself, its
 * neighbours, its relay and relay clients, the dedicated relays), but lines from everyone
 * reach it. The manager therefore signs, at welcome, each servant's (id, raw key, name)
 * with its own Ed25519 key: a membership certificate. In mesh mode a servant attaches its
 * key and certificate to each of its lines; a receiver that does not list the origin checks
 * id == id of key, the certificate with the manager's key (pinned: its fingerprint is what
 * the servant joined with), then the line with the key, and shows the certificate's name.
 *
 * The canonical bytes, in nm_linesig's style (every field length-prefixed, so no two
 * different triples have the same bytes, and the tag makes a certificate useless as a line
 * signature and the other way round; integers big-endian):
 *
 *   u32 17 | "natmesh-member-v1" | u32 len | id | u32 32 | raw key | u32 len | name
 *
 * Ed25519 signs these bytes directly (PureEdDSA); OpenSSL does all the cryptography
 * (nm_identity_sign, nm_pubkey_verify). On the wire a certificate is 128 lowercase hex
 * characters, like a line signature.
 *
 * nm_member_cache keeps verified (id, key, name, cert) so that a busy origin costs one
 * certificate check: a bounded table (uthash by id over a fixed pool) with clock (second
 * chance) replacement. */
#ifndef NM_MEMBER_H
#define NM_MEMBER_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/types.h>

#include "nm_identity.h"
#include "nm_proto.h"

#define NM_MEMBER_TAG "natmesh-member-v1"
#define NM_MEMBER_CERT_LEN 64      /* an Ed25519 signature */
#define NM_MEMBER_CERT_HEX_LEN 128
#define NM_MEMBER_CANONICAL_MAX \
  (4 + (sizeof NM_MEMBER_TAG - 1) + 4 + NM_ID_LEN + 4 + NM_PUBKEY_LEN + 4 + NM_NAME_MAX)
#define NM_MEMBER_CACHE_DEFAULT 4096

/* Writes the canonical bytes of (id, key, name). Returns 0 with *outlen, or -EINVAL (an id
 * that is not nm_id_valid, an empty or too long name, out too small). */
int nm_member_canonical(const char *id, const uint8_t key[NM_PUBKEY_LEN], const char *name,
                        unsigned char *out, size_t outsize, size_t *outlen);
/* The manager's signature over (id, key, name). Returns 0, -EINVAL, NM_EKEY or -ENOMEM. */
int nm_member_sign(const nm_identity *manager, const char *id, const uint8_t key[NM_PUBKEY_LEN],
                   const char *name, uint8_t cert[NM_MEMBER_CERT_LEN]);
/* Whether cert is the manager's (manager_pub) over (id, key, name) AND id is key's id.
 * Returns 0, -EBADMSG (not signed by that manager for exactly that triple, or an id that
 * is not the key's), -EINVAL (malformed fields). */
int nm_member_verify(const uint8_t manager_pub[NM_PUBKEY_LEN], const char *id,
                     const uint8_t key[NM_PUBKEY_LEN], const char *name,
                     const uint8_t cert[NM_MEMBER_CERT_LEN]);

typedef struct nm_member_entry nm_member_entry;

typedef struct {
  nm_member_entry *pool;  /* cap entries; [0, used) hold members */
  nm_member_entry *by_id; /* uthash head */
  size_t cap, used, hand; /* hand: the clock's position */
  uint64_t hits, misses, evictions;
} nm_member_cache;

/* A cache of at most cap verified members (1 .. 1,048,576). Returns 0, -EINVAL, -ENOMEM. */
int nm_member_cache_init(nm_member_cache *c, size_t cap);
void nm_member_cache_close(nm_member_cache *c);
size_t nm_member_cache_count(const nm_member_cache *c);

/* Verifies (id, key, name, cert) against manager_pub, from the cache when this exact
 * quadruple was verified before (a hit costs no signature check). A verified one is
 * cached (evicting by clock when full). Returns 0 or nm_member_verify's error. */
int nm_member_check(nm_member_cache *c, const uint8_t manager_pub[NM_PUBKEY_LEN], const char *id,
                    const uint8_t key[NM_PUBKEY_LEN], const char *name,
                    const uint8_t cert[NM_MEMBER_CERT_LEN]);

#endif
