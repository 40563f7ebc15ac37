/* nm_pcp.h - the Port Control Protocol's wire format (RFC 6887), MAP and ANNOUNCE only.
 *
 * Pure functions, no I/O: building requests, parsing answers with every length and
 * field checked, the reboot test on the server's epoch (section 8.5) and the
 * retransmission schedule (section 8.1.1). The port mapper drives them from
 * nat_pcp.c; tests/nat/test_pcp_wire.c and the fuzz target check them.
 *
 * Addresses on the wire are 16 bytes; IPv4 travels as an IPv4-mapped IPv6
 * address (::ffff:a.b.c.d). This client speaks IPv4 only, like the rest of nat/.
 * All functions return 0 or a negative NM_PCP_E* code; nm_pcp_strerror() says which. */
#ifndef NM_PCP_H
#define NM_PCP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NM_PCP_PORT 5351           /* the server's port, shared with NAT-PMP (RFC 6887 19.1) */
#define NM_PCP_VERSION 2
#define NM_PCP_OP_ANNOUNCE 0
#define NM_PCP_OP_MAP 1
#define NM_PCP_HDR_LEN 24          /* common header, request and response */
#define NM_PCP_MAP_LEN 60          /* header + MAP opcode data (36 bytes) */
#define NM_PCP_MAX_LEN 1100        /* largest PCP message (section 7) */
#define NM_PCP_NONCE_LEN 12
#define NM_PCP_IRT_MS 3000u        /* initial retransmission time (8.1.1) */
#define NM_PCP_MRT_MS 1024000u     /* maximum retransmission time (8.1.1) */

/* Result codes (section 7.4). */
enum {
  NM_PCP_SUCCESS = 0,
  NM_PCP_UNSUPP_VERSION = 1,
  NM_PCP_NOT_AUTHORIZED = 2,
  NM_PCP_MALFORMED_REQUEST = 3,
  NM_PCP_UNSUPP_OPCODE = 4,
  NM_PCP_UNSUPP_OPTION = 5,
  NM_PCP_MALFORMED_OPTION = 6,
  NM_PCP_NETWORK_FAILURE = 7,
  NM_PCP_NO_RESOURCES = 8,
  NM_PCP_UNSUPP_PROTOCOL = 9,
  NM_PCP_USER_EX_QUOTA = 10,
  NM_PCP_CANNOT_PROVIDE_EXTERNAL = 11,
  NM_PCP_ADDRESS_MISMATCH = 12,
  NM_PCP_EXCESSIVE_REMOTE_PEERS = 13
};

/* Why an answer was not accepted (negative; distinct from NM_PM_* and libuv codes). */
enum {
  NM_PCP_ESHORT = -7101,    /* shorter than the header, or than its opcode's data */
  NM_PCP_ELONG = -7102,     /* longer than 1100 bytes */
  NM_PCP_EALIGN = -7103,    /* length not a multiple of 4 */
  NM_PCP_ENATPMP = -7104,   /* version 0: a NAT-PMP-only server refusing PCP (section 9) */
  NM_PCP_EVERSION = -7105,  /* any other version than 2 */
  NM_PCP_ENOTRESP = -7106,  /* R bit clear: a request, not an answer */
  NM_PCP_EOPCODE = -7107,   /* not the opcode asked for */
  NM_PCP_ENONCE = -7108,    /* MAP answer for another nonce, protocol or port */
  NM_PCP_EOPTION = -7109,   /* an option runs past the end of the packet */
  NM_PCP_EADDR = -7110,     /* not an IPv4-mapped address where one is needed */
  NM_PCP_EARG = -7111       /* bad argument (buffer too small, ...) */
};

typedef struct {
  uint8_t nonce[NM_PCP_NONCE_LEN];
  uint8_t proto;            /* IANA protocol number: 6 TCP, 17 UDP */
  uint16_t int_port;
  uint16_t ext_port;        /* suggested (request) or assigned (answer); 0 = none */
  uint8_t ext_ip[16];       /* suggested (request) or assigned (answer) */
} nm_pcp_map;

typedef struct {
  uint8_t version;
  uint8_t opcode;           /* without the R bit */
  uint8_t result;
  uint32_t lifetime;        /* seconds: the mapping's, or how long an error holds */
  uint32_t epoch;           /* server's epoch time, seconds */
  int has_map;              /* map is filled (a MAP answer carrying its opcode data) */
  nm_pcp_map map;
} nm_pcp_answer;

/* Writes a MAP request into buf (at least NM_PCP_MAP_LEN bytes); client_ip is our address
 * as the server sees it (16 bytes). lifetime 0 deletes (section 15). Returns its length
 * (60) or NM_PCP_EARG. */
int nm_pcp_build_map(uint8_t *buf, size_t len, const uint8_t client_ip[16], uint32_t lifetime,
                     const nm_pcp_map *map);
/* Writes an ANNOUNCE request (24 bytes): asks only for the server's epoch. */
int nm_pcp_build_announce(uint8_t *buf, size_t len, const uint8_t client_ip[16]);

/* Parses an answer of len bytes: checks the length (24..1100, a multiple of 4), the
 * version (0 -> NM_PCP_ENATPMP, else 2), the R bit, that the opcode is expected_op, the
 * MAP data when the result is success (an error answer may carry only the header), and
 * that every option header lies within the packet. Options are not interpreted. */
int nm_pcp_parse(const uint8_t *buf, size_t len, uint8_t expected_op, nm_pcp_answer *out);

/* Whether a parsed MAP answer belongs to the request: the same nonce, protocol and
 * internal port (section 11.3). 1 yes, 0 no. An error answer without MAP data matches
 * (the server could not parse the request, so it had nothing to echo). */
int nm_pcp_answer_matches(const nm_pcp_answer *a, const nm_pcp_map *req);

/* Section 8.5: does a new epoch say the server lost its state (rebooted)? prev_epoch was
 * seen at local time prev_ms, new_epoch at now_ms. 1 when the epoch went back by more
 * than 1 s, or the server's and our elapsed times disagree by more than 2 s plus 1/16.
 * 0 when it is consistent. */
int nm_pcp_epoch_lost(uint32_t prev_epoch, uint64_t prev_ms, uint32_t new_epoch, uint64_t now_ms);

/* Section 8.1.1: the next retransmission time. prev_rt_ms 0 -> IRT (3 s), else twice the
 * previous, at most MRT; then times (1 + RAND), RAND = jitter_permille / 1000 clamped to
 * [-0.1, +0.1]. The caller bounds the total (MRD) itself. */
uint32_t nm_pcp_next_rt_ms(uint32_t prev_rt_ms, int jitter_permille);

/* IPv4 <-> IPv4-mapped IPv6 (16 bytes). v4 is in network order (struct in_addr's bytes). */
void nm_pcp_v4mapped(uint8_t out[16], const uint8_t v4[4]);
int nm_pcp_v4_of(const uint8_t in[16], uint8_t v4[4]); /* 0, or NM_PCP_EADDR */

const char *nm_pcp_result_name(unsigned result);
const char *nm_pcp_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* NM_PCP_H */
