/* nm_punch: pure policy for coordinated TCP hole punching (docs/protocol.md, "Punching").
 *
 * Two servants behind NATs that cannot reach each other by any candidate both dial the
 * other's observed endpoint (where the manager saw its session come from) from the port
 * their own session leaves from, at the same moment: behind endpoint-independent mapping the
 * two SYNs cross, each NAT takes the other's SYN for an answer, and TCP's simultaneous open
 * makes one connection of the two dials. Both sides called connect(), so TLS cannot name its
 * client by who connected: the key decides (nm_punch_tls_role). The manager times the two
 * dials from the round trips it measures on their sessions (nm_punch_schedule), as libp2p's
 * DCUtR does. No sockets here: tests/unit/unit_punch.c checks every rule. */
#ifndef NM_PUNCH_H
#define NM_PUNCH_H

#include <stdint.h>

#include "nm_identity.h"
#include "nm_msg.h" /* NM_PUNCH_DELAY_MAX_MS */
#include "nm_tls.h"

#define NM_PUNCH_ATTEMPTS 3           /* dials per punch, then give up until something changes */
#define NM_PUNCH_INTERVAL_MS 500      /* between the starts of two attempts */
#define NM_PUNCH_ATTEMPT_MS 450       /* one attempt's TCP connect timeout */
#define NM_PUNCH_MARGIN_MS 100        /* added to the later side's one-way time */
#define NM_PUNCH_RTT_DEFAULT_MS 200   /* a session whose round trip the manager cannot read */

/* The TLS role of our side in a simultaneous open: the side whose raw public key is the
 * smaller (bytewise) is the TLS client, the other the TLS server; both pin the other's key.
 * Returns 0 (no role) for equal keys: nobody punches to itself. */
nm_tls_role nm_punch_tls_role(const uint8_t ours[NM_PUBKEY_LEN], const uint8_t theirs[NM_PUBKEY_LEN]);

/* The manager sends punch to a and b at once; a's message arrives about rtt_a/2 later, b's
 * rtt_b/2 later. Both dial at T = max(rtt_a, rtt_b)/2 + margin after sending: *delay_a and
 * *delay_b are what each waits after its message arrives. A round trip of 0 (unknown) counts
 * as NM_PUNCH_RTT_DEFAULT_MS; round trips over 2 * NM_PUNCH_DELAY_MAX_MS are capped. */
void nm_punch_schedule(unsigned rtt_a_ms, unsigned rtt_b_ms, unsigned margin_ms, uint64_t *delay_a,
                       uint64_t *delay_b);

#endif
