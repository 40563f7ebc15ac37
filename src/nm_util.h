/* nm_util: small helpers shared by the programs. */
#ifndef NM_UTIL_H
#define NM_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "nm_proto.h"

/* A fresh random servant id: NM_ID_LEN lowercase hex characters. */
int nm_random_id(char out[NM_ID_LEN + 1]);

/* Parses "HOST", "HOST:PORT" or "[V6]:PORT". Returns 0 or -EINVAL. */
int nm_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port,
                      uint16_t default_port);

/* The one decimal parser for unsigned integers from the wire, configs and documents:
 * s[0..len) must be digits only (no sign, no spaces, not empty) and fit in 64 bits.
 * Returns 0, -EINVAL (not a number) or -ERANGE (overflow). Callers that tolerate
 * surrounding blanks (config files) trim them first. */
int nm_parse_u64(const char *s, size_t len, uint64_t *out);

/* Parses a decimal port 1..65535 (0 allowed when allow_zero). Returns 0 or -EINVAL. */
int nm_parse_port(const char *s, int allow_zero, uint16_t *out);

/* Writes all of p[0..n) to fd, retrying short writes and EINTR. Returns 0 or -errno. */
int nm_write_all(int fd, const char *p, size_t n);

/* Replaces the file at path with data[0..len), mode 0600, so that a reader (or a crash)
 * sees the old content or the new, never a part: write path.tmp, fsync it, rename it over
 * path, fsync the folder. Returns 0 or -errno (path.tmp is removed on failure). */
int nm_file_replace(const char *path, const char *data, size_t len);

#endif
