/* nm_be: big-endian (network order) integers in byte buffers, for the binary wire formats
 * natmesh reads and writes (NAT-PMP, PCP, packet captures). Callers check lengths first. */
#ifndef NM_BE_H
#define NM_BE_H

#include <stdint.h>

static inline uint16_t nm_be16_get(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static inline uint32_t nm_be32_get(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void nm_be16_put(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static inline void nm_be32_put(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

#endif
