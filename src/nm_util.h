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

/* Parses a decimal port 1..65535 (0 allowed when allow_zero). Returns 0 or -EINVAL. */
int nm_parse_port(const char *s, int allow_zero, uint16_t *out);

#endif
