#include "nm_linesig.h"

#include <errno.h>
#include <string.h>
#include <openssl/err.h>

#include "nm_hex.h"

static unsigned char *nm__put_u32(unsigned char *p, uint32_t v) {
  for (int i = 3; i >= 0; i--) *p++ = (unsigned char)(v >> (8 * i));
  return p;
}

static unsigned char *nm__put_u64(unsigned char *p, uint64_t v) {
  for (int i = 7; i >= 0; i--) *p++ = (unsigned char)(v >> (8 * i));
  return p;
}

static unsigned char *nm__put_field(unsigned char *p, const void *data, size_t len) {
  p = nm__put_u32(p, (uint32_t)len);
  if (len) memcpy(p, data, len);
  return p + len;
}

int nm_linesig_canonical(const nm_linesig_line *line, unsigned char *out, size_t outsize,
                         size_t *outlen) {
  static const char tag[] = NM_LINESIG_TAG;
  size_t olen = line && line->origin ? strnlen(line->origin, NM_LINESIG_ORIGIN_MAX + 1) : 0;
  if (!out || !outlen || olen == 0 || olen > NM_LINESIG_ORIGIN_MAX ||
      line->text_len > NM_LINESIG_TEXT_MAX || (!line->text && line->text_len))
    return -EINVAL;
  size_t need = 4 + (sizeof tag - 1) + 4 + olen + 8 + 8 + 4 + line->text_len;
  if (outsize < need) return -EINVAL;
  unsigned char *p = out;
  p = nm__put_field(p, tag, sizeof tag - 1);
  p = nm__put_field(p, line->origin, olen);
  p = nm__put_u64(p, line->epoch);
  p = nm__put_u64(p, line->seq);
  p = nm__put_field(p, line->text, line->text_len);
  *outlen = (size_t)(p - out);
  return 0;
}

int nm_linesig_sign(EVP_PKEY *key, const nm_linesig_line *line,
                    unsigned char sig[NM_LINESIG_LEN]) {
  unsigned char msg[NM_LINESIG_CANONICAL_MAX]; /* about 4 KiB: the stack is fine */
  size_t mlen, slen = NM_LINESIG_LEN;
  int rc = nm_linesig_canonical(line, msg, sizeof msg, &mlen);
  if (rc < 0) return rc;
  if (!key || !sig || !EVP_PKEY_is_a(key, "ED25519")) return -EINVAL;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx) return -ENOMEM;
  /* No digest: Ed25519 hashes the message itself. Signing fails for a public-only key. */
  if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1 ||
      EVP_DigestSign(ctx, sig, &slen, msg, mlen) != 1 || slen != NM_LINESIG_LEN)
    rc = -EINVAL;
  EVP_MD_CTX_free(ctx);
  /* Leave no error on the thread's queue: the TLS code reads it through SSL_get_error. */
  if (rc < 0) ERR_clear_error();
  return rc;
}

int nm_linesig_verify(const unsigned char pub[NM_ED25519_PUBLIC_LEN], const nm_linesig_line *line,
                      const unsigned char sig[NM_LINESIG_LEN]) {
  unsigned char msg[NM_LINESIG_CANONICAL_MAX];
  size_t mlen;
  int rc = nm_linesig_canonical(line, msg, sizeof msg, &mlen);
  if (rc < 0) return rc;
  if (!pub || !sig) return -EINVAL;
  /* Any 32 bytes make a key object; a key that is not a point fails the verification. */
  EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, NM_ED25519_PUBLIC_LEN);
  EVP_MD_CTX *ctx = key ? EVP_MD_CTX_new() : NULL;
  if (!ctx) {
    rc = -ENOMEM;
  } else if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) != 1) {
    rc = -ENOMEM; /* a well-formed Ed25519 key: only resources can fail here */
  } else {
    /* 1 is valid; 0 (mismatch) and negative (malformed signature) both mean "not signed by
     * this key", which is all a receiver may conclude. */
    rc = EVP_DigestVerify(ctx, sig, NM_LINESIG_LEN, msg, mlen) == 1 ? 0 : -EBADMSG;
  }
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  if (rc < 0) ERR_clear_error();
  return rc;
}

void nm_linesig_encode(const unsigned char sig[NM_LINESIG_LEN], char out[NM_LINESIG_HEX_LEN + 1]) {
  nm_hex_encode(sig, NM_LINESIG_LEN, out, NM_LINESIG_HEX_LEN + 1);
}

int nm_linesig_decode(const char *s, unsigned char sig[NM_LINESIG_LEN]) {
  return nm_hex_decode(s, sig, NM_LINESIG_LEN);
}
