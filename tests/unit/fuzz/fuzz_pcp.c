/* libFuzzer target: PCP answers (nat/nm_pcp.c), from a router on the LAN, so untrusted.
 * The first byte picks the opcode expected; whatever parses must be internally consistent:
 * a MAP answer has its data only when the packet is long enough, never a result it did not
 * carry, and the nonce check and address conversion never read past what was parsed. */
#include "nm_pcp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  nm_pcp_answer a;
  nm_pcp_map req;
  uint8_t v4[4];
  uint8_t op;
  int r;

  if (size < 1) return 0;
  op = data[0] & 1 ? NM_PCP_OP_MAP : NM_PCP_OP_ANNOUNCE;
  data++;
  size--;
  /* a copy of exactly size bytes, so ASan sees any read past the end */
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf) return 0;
  memcpy(buf, data, size);
  r = nm_pcp_parse(buf, size, op, &a);
  if (r == 0) {
    if (size < NM_PCP_HDR_LEN || size > NM_PCP_MAX_LEN || size % 4 != 0) abort();
    if (a.version != NM_PCP_VERSION || a.opcode != op || a.result != buf[3]) abort();
    if (a.has_map && (op != NM_PCP_OP_MAP || size < NM_PCP_MAP_LEN)) abort();
    if (op == NM_PCP_OP_MAP && !a.has_map && a.result == NM_PCP_SUCCESS) abort();
    memset(&req, 0, sizeof req);
    (void)nm_pcp_answer_matches(&a, &req);
    (void)nm_pcp_v4_of(a.map.ext_ip, v4);
  }
  (void)nm_pcp_strerror(r);
  (void)nm_pcp_result_name(a.result);
  free(buf);
  return 0;
}
