/* nm_linesig: chat lines signed by their origin.
 *
 * A line is signed over canonical bytes of (origin, epoch, seq, text) with the origin's
 * Ed25519 key, and every receiver verifies it with the origin's public key from the
 * manager's list, whichever path it came by (direct, through a relay, from a relay's replay
 * ring): a relay can drop a line, never forge or alter one. The display name is not signed:
 * a receiver shows the name the manager's list gives for the verified origin.
 *
 * The canonical bytes (NM_LINESIG_TAG makes a line signature useless as any other natmesh
 * signature, present or future; every variable field carries its length, so no two
 * different lines have the same bytes, e.g. origin "ab" + text "c" vs origin "a" + text "bc"):
 *
 *   u32 15 | "natmesh-line-v1" | u32 len | origin | u64 epoch | u64 seq | u32 len | text
 *
 * integers big-endian. Ed25519 signs these bytes directly (PureEdDSA, no pre-hash).
 * OpenSSL 3 does all the cryptography; this module only decides what is signed.
 *
 * On the wire the 64-byte signature is 128 lowercase hex characters (nm_linesig_encode):
 * longer than base64's 88, but with exactly one spelling per signature (base64 has padding
 * and unused bits that decoders differ on), the same alphabet as ids and fingerprints, and
 * a decoder of a dozen lines. */
#ifndef NM_LINESIG_H
#define NM_LINESIG_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#include "nm_proto.h"

#define NM_LINESIG_TAG "natmesh-line-v1"
#define NM_LINESIG_LEN 64          /* bytes of an Ed25519 signature */
#define NM_LINESIG_HEX_LEN 128     /* its text form */
#define NM_ED25519_PUBLIC_LEN 32   /* bytes of a raw Ed25519 public key */
#define NM_LINESIG_ORIGIN_MAX 64   /* a node id (NM_ID_LEN) or at most a full fingerprint */
#define NM_LINESIG_TEXT_MAX NM_CHAT_MAX
/* The longest canonical encoding: tag, origin and text at their maximum. */
#define NM_LINESIG_CANONICAL_MAX                                                             \
  (4 + (sizeof NM_LINESIG_TAG - 1) + 4 + NM_LINESIG_ORIGIN_MAX + 8 + 8 + 4 + NM_LINESIG_TEXT_MAX)

/* The signed fields of one line. */
typedef struct {
  const char *origin; /* 1 .. NM_LINESIG_ORIGIN_MAX bytes, NUL-terminated */
  uint64_t epoch;
  uint64_t seq;
  const char *text;   /* text_len bytes, exactly as carried (may be NULL when text_len is 0) */
  size_t text_len;    /* 0 .. NM_LINESIG_TEXT_MAX */
} nm_linesig_line;

/* Writes the canonical bytes of line into out. Returns 0 with *outlen set, or -EINVAL for an
 * origin or text outside its limits or an out smaller than the encoding. */
int nm_linesig_canonical(const nm_linesig_line *line, unsigned char *out, size_t outsize,
                         size_t *outlen);

/* Signs line with key (an Ed25519 private key). Returns 0, -EINVAL (bad line, not an Ed25519
 * key, or a key without its private half), or -ENOMEM. */
int nm_linesig_sign(EVP_PKEY *key, const nm_linesig_line *line,
                    unsigned char sig[NM_LINESIG_LEN]);

/* Verifies sig over line with the origin's raw public key. Returns 0 when it verifies,
 * -EBADMSG when it does not (a forged or altered line, or the wrong key), -EINVAL for a line
 * outside the limits, -ENOMEM when OpenSSL could not allocate (not the sender's fault). */
int nm_linesig_verify(const unsigned char pub[NM_ED25519_PUBLIC_LEN], const nm_linesig_line *line,
                      const unsigned char sig[NM_LINESIG_LEN]);

/* The signature as NM_LINESIG_HEX_LEN lowercase hex characters and a NUL. */
void nm_linesig_encode(const unsigned char sig[NM_LINESIG_LEN], char out[NM_LINESIG_HEX_LEN + 1]);

/* Reads exactly NM_LINESIG_HEX_LEN lowercase hex characters. Returns 0, or -EINVAL for any
 * other length, upper case, blanks or other characters. */
int nm_linesig_decode(const char *s, unsigned char sig[NM_LINESIG_LEN]);

#endif
