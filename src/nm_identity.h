/* nm_identity: a node's long-term Ed25519 key pair, and the names derived from it.
 *
 * Keys are identities, as in Syncthing, WireGuard and libp2p: a node's fingerprint is the
 * SHA-256 of its raw 32-byte Ed25519 public key, written as 64 lowercase hex characters,
 * and its id is the first NM_ID_LEN characters of that fingerprint. Nobody can claim an id
 * without the private key it derives from, and the id stays the same across restarts
 * because the key does.
 *
 * The key lives in <state-dir>/key.pem (PKCS#8 PEM, mode 0600, directory 0700), created
 * on first start. OpenSSL does all the cryptography (key generation, signing, hashing);
 * this module decides only where the key is kept and how its names are written. */
#ifndef NM_IDENTITY_H
#define NM_IDENTITY_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/types.h>

#include "nm_proto.h"

#define NM_PUBKEY_LEN 32 /* raw Ed25519 public key */
#define NM_SIG_LEN 64    /* Ed25519 signature */
#define NM_FINGERPRINT_HEX 64
#define NM_IDENTITY_KEY_FILE "key.pem"

/* The SHA-256 of a raw public key as 64 lowercase hex characters and a NUL. Public: no
 * constant-time comparison is needed. */
typedef struct {
  char hex[NM_FINGERPRINT_HEX + 1];
} nm_fingerprint;

typedef struct {
  EVP_PKEY *key; /* owns the private key */
  uint8_t pub[NM_PUBKEY_LEN];
  nm_fingerprint fp;
  char id[NM_ID_LEN + 1];
} nm_identity;

/* Loads <state_dir>/key.pem, creating the directory (0700, with missing parents) and the
 * key (0600, written to a temp file, fsynced, then renamed into place) on first start.
 * Refuses, with a message in err that says what to do, a directory or key file that is not
 * ours, or that group or others may access, and a key file that is not an unencrypted
 * PKCS#8 Ed25519 private key. Returns 0, NM_EKEY (unusable key file), NM_ECONFIG (unsafe
 * permissions or ownership) or a negative errno. */
int nm_identity_load_or_create(const char *state_dir, nm_identity *out, char *err,
                               size_t errlen);
/* A fresh key that lives in memory only (tests, one-shot tools). */
int nm_identity_generate(nm_identity *out);
void nm_identity_close(nm_identity *id);

/* The default state directory of program ("manager", "servant", "relay", ...):
 * $STATE_DIRECTORY (set by systemd's StateDirectory=; its first entry), else
 * $XDG_STATE_HOME/natmesh/<program>, else $HOME/.local/state/natmesh/<program>, else (root
 * without HOME) /var/lib/natmesh/<program>. Returns 0, -ENAMETOOLONG or -ENOENT (no home). */
int nm_identity_default_dir(char *out, size_t len, const char *program);

/* The node id: the first NM_ID_LEN hex characters of the fingerprint. */
const char *nm_identity_id(const nm_identity *id);
const nm_fingerprint *nm_identity_fingerprint(const nm_identity *id);

/* Ed25519 (pure, no pre-hash) over msg[0..len). Returns 0 or NM_EKEY / -ENOMEM. */
int nm_identity_sign(const nm_identity *id, const void *msg, size_t len,
                     uint8_t sig[NM_SIG_LEN]);
/* Returns 0 when sig is pub's signature over msg, NM_ESIG when it is not, NM_EKEY when pub
 * is not a valid Ed25519 public key. */
int nm_pubkey_verify(const uint8_t pub[NM_PUBKEY_LEN], const void *msg, size_t len,
                     const uint8_t sig[NM_SIG_LEN]);

/* Fingerprints. */
void nm_fingerprint_of_pubkey(const uint8_t pub[NM_PUBKEY_LEN], nm_fingerprint *out);
/* The raw Ed25519 public key and fingerprint of any key OpenSSL holds (a peer's
 * certificate key); NM_EKEY when it is not an Ed25519 key. */
int nm_pubkey_of_evp(const EVP_PKEY *key, uint8_t pub[NM_PUBKEY_LEN], nm_fingerprint *fp);
/* Accepts exactly 64 hex characters (either case; stored lowercase). Returns 0 or -EINVAL. */
int nm_fingerprint_parse(const char *s, nm_fingerprint *out);
static inline const char *nm_fingerprint_str(const nm_fingerprint *fp) { return fp->hex; }
int nm_fingerprint_equal(const nm_fingerprint *a, const nm_fingerprint *b);
/* The node id a fingerprint stands for (what the manager derives from a peer's key). */
void nm_fingerprint_id(const nm_fingerprint *fp, char out[NM_ID_LEN + 1]);

/* Raw public keys as 64 lowercase hex characters (how peer lists will carry them). */
void nm_pubkey_to_hex(const uint8_t pub[NM_PUBKEY_LEN], char out[2 * NM_PUBKEY_LEN + 1]);
/* Exactly 64 hex characters, either case. Returns 0 or -EINVAL. */
int nm_pubkey_from_hex(const char *s, uint8_t pub[NM_PUBKEY_LEN]);

#endif
