/* The candidates the manager publishes for a servant (docs/protocol.md, "Candidates"), as
 * pure policy: what the servant reported and what the manager saw in, the ordered list out.
 * No sessions, no sockets: tests/unit/unit_mgr_cands.c checks the order and every skip.
 *
 * Order: the mapped external address (when it has a usable mapping), the observed address
 * with its listening port, the observed address of its other family (an observe session)
 * with the same port, then each local address it reported, in its order, with its
 * listening port; last, for a servant behind NAT, its punch endpoint (the observed address
 * with its session's source port: kind punch, only for a simultaneous open). An address that cannot be a candidate (nm_addr_is_candidate: loopback,
 * unspecified, link-local, multicast, IPv4-mapped) is skipped, so is one equal to an earlier
 * candidate (same address compared as binary, same port); at most NM_CANDS_MAX. */
#ifndef NM_MANAGER_CANDS_H
#define NM_MANAGER_CANDS_H

#include <stddef.h>
#include <stdint.h>

#include "nm_addr.h"
#include "nm_peerlist.h"

typedef struct {
  const char *ext_ip;      /* "" or NULL: no usable mapping */
  uint16_t ext_port;
  const char *observed_ip; /* where its session comes from */
  const char *other_ip;    /* where its observe session came from (other family), or "" */
  uint16_t port;           /* the port it listens on, at every local address */
  const char (*local)[NM_IP_STRLEN]; /* its own interface addresses */
  size_t nlocal;
  uint16_t punch_port;     /* behind NAT: the source port of its session (punch.h), else 0 */
} mgr_cand_source;

/* Writes the candidates into out; returns how many (0..NM_CANDS_MAX). */
size_t mgr_cands_build(const mgr_cand_source *src, nm_cand out[NM_CANDS_MAX]);

/* Whether a servant is behind NAT, judged from its registration alone: the address the
 * manager sees its session come from, against the interface addresses it reported in
 * listening. */
typedef enum {
  MGR_NAT_UNKNOWN = 0, /* it reported no address (--no-local-addresses), or the observed one
                          cannot be a candidate (loopback: the same machine): cannot tell */
  MGR_NAT_NONE,        /* the observed address is one of its own: nothing translates it */
  MGR_NAT_BEHIND,      /* the observed address is none of its own: a router translates it */
} mgr_nat_seen;

/* "unknown", "none", "behind". */
const char *mgr_nat_seen_name(mgr_nat_seen n);

/* Compares observed_ip with each of the nlocal addresses as binary (so any spelling, and a
 * v4-mapped IPv6 form, match). */
mgr_nat_seen mgr_nat_judge(const char *observed_ip, const char (*local)[NM_IP_STRLEN], size_t nlocal);

#endif
