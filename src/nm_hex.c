#include "nm_hex.h"

#include <errno.h>
#include <string.h>

static int nm__hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

int nm_hex_encode(const unsigned char *in, size_t len, char *out, size_t outsize) {
  static const char digits[] = "0123456789abcdef";
  if (!out || outsize == 0 || (!in && len) || len > (outsize - 1) / 2) return -EINVAL;
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 0x0f];
  }
  out[2 * len] = 0;
  return 0;
}

int nm_hex_valid(const char *s, size_t len) {
  /* strnlen: never read past len + 1 bytes of a string that may be longer than expected. */
  if (!s || strnlen(s, len + 1) != len) return 0;
  for (size_t i = 0; i < len; i++)
    if (nm__hex_digit(s[i]) < 0) return 0;
  return 1;
}

int nm_hex_decode(const char *s, unsigned char *out, size_t outlen) {
  if (!out || outlen == 0 || outlen > ((size_t)-1) / 2 - 1 || !nm_hex_valid(s, 2 * outlen))
    return -EINVAL;
  for (size_t i = 0; i < outlen; i++)
    out[i] = (unsigned char)(nm__hex_digit(s[2 * i]) << 4 | nm__hex_digit(s[2 * i + 1]));
  return 0;
}
