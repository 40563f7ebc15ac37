/* nm_lease.c - lease arithmetic and renewal scheduling for port mappings.
 *
 * Pure functions of their arguments (times are milliseconds on any monotonic
 * clock, e.g. uv_now()), so every rule about "when" is unit-tested apart from
 * the loop that acts on it. */
#include "nm_portmap.h"

#define NM__SEC 1000ull
#define NM__MIN_RENEW_DELAY_MS (1 * NM__SEC)  /* floor against tiny leases */
#define NM__UPNP_MARGIN_MIN_MS (10 * NM__SEC)
#define NM__UPNP_MARGIN_MAX_MS (300 * NM__SEC)
#define NM__BACKOFF_BASE_MS (1 * NM__SEC)

static uint64_t nm__add_sat(uint64_t a, uint64_t b) {
  return (a > UINT64_MAX - b) ? UINT64_MAX : a + b;
}

uint64_t nm_lease_expires_at_ms(uint64_t granted_at_ms, uint32_t lease_s) {
  if (lease_s == 0)
    return NM_NEVER;
  return nm__add_sat(granted_at_ms, (uint64_t)lease_s * NM__SEC);
}

uint64_t nm_lease_renew_at_ms(uint64_t granted_at_ms, uint32_t lease_s, nm_map_method m) {
  uint64_t lease_ms = (uint64_t)lease_s * NM__SEC;
  uint64_t delay;

  if (lease_s == 0 || m == NM_MAP_NONE)
    return NM_NEVER;
  if (m == NM_MAP_NATPMP || m == NM_MAP_PCP) { /* RFC 6887 11.2.1: between 1/2 and 5/8 */
    /* RFC 6886 3.3: renew at half the lifetime; the other half absorbs
     * retransmissions and a router that is briefly away. */
    delay = lease_ms / 2;
  } else {
    /* UPnP leases are usually long (an hour); renewing at half-life would
     * double the SOAP traffic for nothing, so renew a margin before expiry.
     * The margin is a quarter of the lease, at least 10 s (room for one slow
     * SOAP round trip with rediscovery) and at most 5 min, and never more
     * than half the lease. */
    uint64_t margin = lease_ms / 4;
    if (margin < NM__UPNP_MARGIN_MIN_MS)
      margin = NM__UPNP_MARGIN_MIN_MS;
    if (margin > NM__UPNP_MARGIN_MAX_MS)
      margin = NM__UPNP_MARGIN_MAX_MS;
    if (margin > lease_ms / 2)
      margin = lease_ms / 2;
    delay = lease_ms - margin;
  }
  if (delay < NM__MIN_RENEW_DELAY_MS)
    delay = NM__MIN_RENEW_DELAY_MS;
  return nm__add_sat(granted_at_ms, delay);
}

uint64_t nm_retry_backoff_ms(unsigned failures, uint64_t max_ms) {
  uint64_t d;
  if (failures == 0)
    return 0;
  /* 2^(failures-1) seconds; stop shifting before it can overflow */
  d = failures > 40 ? UINT64_MAX : NM__BACKOFF_BASE_MS << (failures - 1);
  return d > max_ms ? max_ms : d;
}

uint64_t nm_lease_retry_at_ms(uint64_t now_ms, uint64_t expires_at_ms, unsigned failures) {
  uint64_t at;
  if (now_ms >= expires_at_ms)
    return NM_NEVER;
  /* Renewal retries are capped at 30 s: a lease is rarely long enough to
   * afford minute-long gaps near its end. */
  at = nm__add_sat(now_ms, nm_retry_backoff_ms(failures ? failures : 1, 30 * NM__SEC));
  return at > expires_at_ms ? expires_at_ms : at;
}

int nm_natpmp_epoch_reset(uint32_t prev_epoch, uint64_t prev_ms, uint32_t new_epoch,
                          uint64_t now_ms) {
  /* RFC 6886 3.6: a router's epoch advances with real time; if it grew by
   * less than 7/8 of the time we saw pass (minus 2 s of slack for rounding
   * and delays), the router restarted and lost its mappings. Done in signed
   * 64-bit so an epoch that went backwards is simply smaller. */
  int64_t elapsed_s = now_ms > prev_ms ? (int64_t)((now_ms - prev_ms) / NM__SEC) : 0;
  int64_t expected_min = (int64_t)prev_epoch + elapsed_s * 7 / 8 - 2;
  return (int64_t)new_epoch < expected_min ? 1 : 0;
}

uint16_t nm_upnp_ext_port_candidate(uint16_t int_port, unsigned attempt, uint32_t seed) {
  uint32_t h;
  uint16_t p;
  if (attempt == 0)
    return int_port;
  /* A small integer hash (xorshift-multiply); we only need candidates that
   * differ per host and per attempt, not unpredictability. */
  h = seed ^ ((uint32_t)int_port << 16) ^ (attempt * 0x9e3779b9u);
  h ^= h >> 16;
  h *= 0x7feb352du;
  h ^= h >> 15;
  h *= 0x846ca68bu;
  h ^= h >> 16;
  p = (uint16_t)(1024 + h % (65536 - 1024));
  if (p == int_port) /* attempt 0 already asked for it */
    p = (uint16_t)(p == 65535 ? 1024 : p + 1);
  return p;
}
