/* nm_pcp.c - PCP (RFC 6887) messages: building, parsing, epoch and retransmission
 * arithmetic. See nm_pcp.h. The parser checks, in order: the length against the
 * header and the maximum, the alignment, the version, the R bit, the opcode, then the
 * opcode's data against the length, then each option header against what is left;
 * nothing is trusted before it is checked and nothing is allocated. */
#include "nm_pcp.h"
#include "nm_be.h"

#include <string.h>

/* Request header (section 7.1): version, R=0|opcode, 2 reserved, lifetime, client IP. */
static void nm__pcp_header(uint8_t *buf, uint8_t op, uint32_t lifetime,
                           const uint8_t client_ip[16]) {
  memset(buf, 0, NM_PCP_HDR_LEN);
  buf[0] = NM_PCP_VERSION;
  buf[1] = op & 0x7f;
  nm_be32_put(buf + 4, lifetime);
  memcpy(buf + 8, client_ip, 16);
}

int nm_pcp_build_map(uint8_t *buf, size_t len, const uint8_t client_ip[16], uint32_t lifetime,
                     const nm_pcp_map *map) {
  uint8_t *d;
  if (buf == NULL || client_ip == NULL || map == NULL || len < NM_PCP_MAP_LEN)
    return NM_PCP_EARG;
  nm__pcp_header(buf, NM_PCP_OP_MAP, lifetime, client_ip);
  /* MAP opcode data (section 11.1): nonce, protocol, 3 reserved, internal port,
   * suggested external port, suggested external address. */
  d = buf + NM_PCP_HDR_LEN;
  memset(d, 0, NM_PCP_MAP_LEN - NM_PCP_HDR_LEN);
  memcpy(d, map->nonce, NM_PCP_NONCE_LEN);
  d[12] = map->proto;
  nm_be16_put(d + 16, map->int_port);
  nm_be16_put(d + 18, map->ext_port);
  memcpy(d + 20, map->ext_ip, 16);
  return NM_PCP_MAP_LEN;
}

int nm_pcp_build_announce(uint8_t *buf, size_t len, const uint8_t client_ip[16]) {
  if (buf == NULL || client_ip == NULL || len < NM_PCP_HDR_LEN)
    return NM_PCP_EARG;
  nm__pcp_header(buf, NM_PCP_OP_ANNOUNCE, 0, client_ip);
  return NM_PCP_HDR_LEN;
}

/* Options (section 7.3): code, reserved, 16-bit length, data padded to 4 bytes. */
static int nm__pcp_check_options(const uint8_t *p, size_t left) {
  while (left > 0) {
    size_t olen, padded;
    if (left < 4)
      return NM_PCP_EOPTION;
    olen = nm_be16_get(p + 2);
    padded = (olen + 3u) & ~(size_t)3u;
    if (padded > left - 4)
      return NM_PCP_EOPTION;
    p += 4 + padded;
    left -= 4 + padded;
  }
  return 0;
}

int nm_pcp_parse(const uint8_t *buf, size_t len, uint8_t expected_op, nm_pcp_answer *out) {
  size_t data_len = 0;

  if (buf == NULL || out == NULL)
    return NM_PCP_EARG;
  memset(out, 0, sizeof(*out));
  /* A NAT-PMP-only server answers our version 2 with a NAT-PMP "unsupported version"
   * (version 0, 8 bytes; section 9): recognise it before the PCP length rules. */
  if (len >= 4 && buf[0] == 0) {
    out->version = 0;
    out->opcode = buf[1] & 0x7f;
    out->result = (uint8_t)(nm_be16_get(buf + 2) > 255 ? 255 : nm_be16_get(buf + 2));
    return NM_PCP_ENATPMP;
  }
  if (len < NM_PCP_HDR_LEN)
    return NM_PCP_ESHORT;
  if (len > NM_PCP_MAX_LEN)
    return NM_PCP_ELONG;
  if (len % 4 != 0)
    return NM_PCP_EALIGN;
  if (buf[0] != NM_PCP_VERSION)
    return NM_PCP_EVERSION;
  if ((buf[1] & 0x80) == 0)
    return NM_PCP_ENOTRESP;
  out->version = buf[0];
  out->opcode = buf[1] & 0x7f;
  out->result = buf[3];
  out->lifetime = nm_be32_get(buf + 4);
  out->epoch = nm_be32_get(buf + 8);
  if (out->opcode != expected_op)
    return NM_PCP_EOPCODE;
  if (out->opcode == NM_PCP_OP_MAP) {
    data_len = NM_PCP_MAP_LEN - NM_PCP_HDR_LEN;
    if (len < NM_PCP_MAP_LEN) {
      /* Success must carry the mapping; an error may come with the header only. */
      if (out->result == NM_PCP_SUCCESS || len != NM_PCP_HDR_LEN)
        return NM_PCP_ESHORT;
      return 0;
    }
    {
      const uint8_t *d = buf + NM_PCP_HDR_LEN;
      memcpy(out->map.nonce, d, NM_PCP_NONCE_LEN);
      out->map.proto = d[12];
      out->map.int_port = nm_be16_get(d + 16);
      out->map.ext_port = nm_be16_get(d + 18);
      memcpy(out->map.ext_ip, d + 20, 16);
      out->has_map = 1;
    }
  }
  return nm__pcp_check_options(buf + NM_PCP_HDR_LEN + data_len, len - NM_PCP_HDR_LEN - data_len);
}

int nm_pcp_answer_matches(const nm_pcp_answer *a, const nm_pcp_map *req) {
  if (a == NULL || req == NULL)
    return 0;
  if (!a->has_map)
    return a->result != NM_PCP_SUCCESS;
  return memcmp(a->map.nonce, req->nonce, NM_PCP_NONCE_LEN) == 0 && a->map.proto == req->proto &&
         a->map.int_port == req->int_port;
}

int nm_pcp_epoch_lost(uint32_t prev_epoch, uint64_t prev_ms, uint32_t new_epoch, uint64_t now_ms) {
  int64_t cc, sc;
  if ((uint64_t)new_epoch + 1 < (uint64_t)prev_epoch)
    return 1; /* went backwards by more than a second */
  cc = now_ms > prev_ms ? (int64_t)((now_ms - prev_ms) / 1000) : 0;
  sc = (int64_t)new_epoch - (int64_t)prev_epoch;
  if (cc + 2 < sc - sc / 16)
    return 1; /* the server's clock ran far faster than ours */
  if (sc + 2 < cc - cc / 16)
    return 1; /* ... or far slower: it counted from a restart */
  return 0;
}

uint32_t nm_pcp_next_rt_ms(uint32_t prev_rt_ms, int jitter_permille) {
  uint64_t base = prev_rt_ms == 0 ? NM_PCP_IRT_MS : (uint64_t)prev_rt_ms * 2;
  int64_t rt;
  if (base > NM_PCP_MRT_MS)
    base = NM_PCP_MRT_MS;
  if (jitter_permille < -100)
    jitter_permille = -100;
  if (jitter_permille > 100)
    jitter_permille = 100;
  rt = (int64_t)base + (int64_t)base * jitter_permille / 1000;
  return (uint32_t)rt;
}

void nm_pcp_v4mapped(uint8_t out[16], const uint8_t v4[4]) {
  memset(out, 0, 10);
  out[10] = 0xff;
  out[11] = 0xff;
  memcpy(out + 12, v4, 4);
}

int nm_pcp_v4_of(const uint8_t in[16], uint8_t v4[4]) {
  static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (memcmp(in, prefix, sizeof(prefix)) != 0)
    return NM_PCP_EADDR;
  memcpy(v4, in + 12, 4);
  return 0;
}

const char *nm_pcp_result_name(unsigned result) {
  static const char *const names[] = {
      "SUCCESS",        "UNSUPP_VERSION",  "NOT_AUTHORIZED",         "MALFORMED_REQUEST",
      "UNSUPP_OPCODE",  "UNSUPP_OPTION",   "MALFORMED_OPTION",       "NETWORK_FAILURE",
      "NO_RESOURCES",   "UNSUPP_PROTOCOL", "USER_EX_QUOTA",          "CANNOT_PROVIDE_EXTERNAL",
      "ADDRESS_MISMATCH", "EXCESSIVE_REMOTE_PEERS"};
  if (result < sizeof(names) / sizeof(names[0]))
    return names[result];
  return "unknown result";
}

const char *nm_pcp_strerror(int err) {
  switch (err) {
  case 0: return "success";
  case NM_PCP_ESHORT: return "PCP answer too short";
  case NM_PCP_ELONG: return "PCP answer longer than 1100 bytes";
  case NM_PCP_EALIGN: return "PCP answer length not a multiple of 4";
  case NM_PCP_ENATPMP: return "server speaks NAT-PMP only (version 0 answer)";
  case NM_PCP_EVERSION: return "PCP answer with an unknown version";
  case NM_PCP_ENOTRESP: return "PCP request where an answer was expected";
  case NM_PCP_EOPCODE: return "PCP answer for another opcode";
  case NM_PCP_ENONCE: return "PCP answer for another mapping (nonce, protocol or port)";
  case NM_PCP_EOPTION: return "PCP option runs past the end of the answer";
  case NM_PCP_EADDR: return "PCP address is not IPv4";
  case NM_PCP_EARG: return "invalid argument";
  default: return "unknown PCP error";
  }
}
