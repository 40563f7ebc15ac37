/* nm_hex: strict lowercase hexadecimal, for keys, fingerprints, hashes and signatures.
 *
 * natmesh writes every binary value that travels in text (an XML attribute, an invite, a
 * state file) as lowercase hex: one spelling per value, so a value can be compared as text
 * and a signature or hash has exactly one accepted form. The decoder is strict: exact length,
 * digits and a-f only (no upper case, no "0x", no blanks). */
#ifndef NM_HEX_H
#define NM_HEX_H

#include <stddef.h>

/* A SHA-256 in hex: a key's fingerprint, the hash of an invite's secret. */
#define NM_SHA256_HEX_LEN 64

/* Writes 2 * len lowercase hex characters and a NUL into out (outsize >= 2 * len + 1).
 * Returns 0, or -EINVAL when out is too small. */
int nm_hex_encode(const unsigned char *in, size_t len, char *out, size_t outsize);

/* Decodes exactly 2 * outlen hex characters of s (the whole string: strlen(s) must be
 * 2 * outlen) into out. Returns 0, or -EINVAL for any other length or character. */
int nm_hex_decode(const char *s, unsigned char *out, size_t outlen);

/* 1 when s is exactly len lowercase hex characters. */
int nm_hex_valid(const char *s, size_t len);

#endif
