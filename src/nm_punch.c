/* Pure punching policy: see nm_punch.h. */
#include "nm_punch.h"
#include "nm_msg.h"

#include <string.h>

nm_tls_role nm_punch_tls_role(const uint8_t ours[NM_PUBKEY_LEN], const uint8_t theirs[NM_PUBKEY_LEN]) {
  int c = memcmp(ours, theirs, NM_PUBKEY_LEN);
  return c < 0 ? NM_TLS_CLIENT : c > 0 ? NM_TLS_SERVER : (nm_tls_role)0;
}

void nm_punch_schedule(unsigned rtt_a_ms, unsigned rtt_b_ms, unsigned margin_ms, uint64_t *delay_a,
                       uint64_t *delay_b) {
  const unsigned cap = 2u * NM_PUNCH_DELAY_MAX_MS;
  uint64_t a = rtt_a_ms ? rtt_a_ms : NM_PUNCH_RTT_DEFAULT_MS;
  uint64_t b = rtt_b_ms ? rtt_b_ms : NM_PUNCH_RTT_DEFAULT_MS;
  if (a > cap) a = cap;
  if (b > cap) b = cap;
  uint64_t half_a = a / 2, half_b = b / 2;
  uint64_t t = (half_a > half_b ? half_a : half_b) + margin_ms;
  *delay_a = t - half_a;
  *delay_b = t - half_b;
  if (*delay_a > NM_PUNCH_DELAY_MAX_MS) *delay_a = NM_PUNCH_DELAY_MAX_MS;
  if (*delay_b > NM_PUNCH_DELAY_MAX_MS) *delay_b = NM_PUNCH_DELAY_MAX_MS;
}
