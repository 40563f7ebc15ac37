/* nm_addr.c - IPv4 address classification and the double-NAT test.
 *
 * The servant decides whether a router mapping can make it reachable by
 * comparing the router's external address with the address the manager
 * observes; both decisions are pure functions of text addresses. */
#include "nm_portmap.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

/* Parses dotted-quad IPv4, also in IPv4-mapped IPv6 form ("::ffff:1.2.3.4"),
 * into a host-order value. Returns 0 on success. */
static int nm__parse_v4(const char *ip, uint32_t *out) {
  struct in_addr a;
  if (ip == NULL)
    return -1;
  if (strncasecmp(ip, "::ffff:", 7) == 0)
    ip += 7;
  if (inet_pton(AF_INET, ip, &a) != 1)
    return -1;
  *out = ntohl(a.s_addr);
  return 0;
}

static int nm__in(uint32_t a, uint32_t net, unsigned bits) {
  uint32_t mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
  return (a & mask) == (net & mask);
}

nm_addr_class nm_addr_classify(const char *ip) {
  uint32_t a;
  if (nm__parse_v4(ip, &a) != 0)
    return NM_ADDR_INVALID;
  if (nm__in(a, 0x0a000000u, 8) || nm__in(a, 0xac100000u, 12) || nm__in(a, 0xc0a80000u, 16))
    return NM_ADDR_PRIVATE;
  if (nm__in(a, 0x64400000u, 10))
    return NM_ADDR_CGNAT;
  if (nm__in(a, 0x7f000000u, 8))
    return NM_ADDR_LOOPBACK;
  if (nm__in(a, 0xa9fe0000u, 16))
    return NM_ADDR_LINKLOCAL;
  if (nm__in(a, 0x00000000u, 8))
    return NM_ADDR_UNSPEC;
  if (nm__in(a, 0xe0000000u, 4))
    return NM_ADDR_MULTICAST;
  /* The rest of the IANA special-purpose registry that can show up as a
   * router's "external" address on test benches and broken ISPs. */
  if (nm__in(a, 0xc0000000u, 24) ||  /* 192.0.0/24 IETF protocol assignments */
      nm__in(a, 0xc0000200u, 24) ||  /* 192.0.2/24 TEST-NET-1 */
      nm__in(a, 0xc6336400u, 24) ||  /* 198.51.100/24 TEST-NET-2 */
      nm__in(a, 0xcb007100u, 24) ||  /* 203.0.113/24 TEST-NET-3 */
      nm__in(a, 0xc6120000u, 15) ||  /* 198.18/15 benchmarking */
      nm__in(a, 0xf0000000u, 4))     /* 240/4 reserved, incl. broadcast */
    return NM_ADDR_RESERVED;
  return NM_ADDR_PUBLIC;
}

const char *nm_addr_class_name(nm_addr_class c) {
  switch (c) {
  case NM_ADDR_PUBLIC: return "public";
  case NM_ADDR_PRIVATE: return "private";
  case NM_ADDR_CGNAT: return "cgnat";
  case NM_ADDR_LOOPBACK: return "loopback";
  case NM_ADDR_LINKLOCAL: return "link-local";
  case NM_ADDR_UNSPEC: return "unspecified";
  case NM_ADDR_MULTICAST: return "multicast";
  case NM_ADDR_RESERVED: return "reserved";
  case NM_ADDR_INVALID: break;
  }
  return "invalid";
}

int nm_portmap_is_double_nat(const char *router_ext_ip, const char *observed_ip) {
  uint32_t r, o;
  if (nm__parse_v4(router_ext_ip, &r) != 0)
    return NM_PM_EINVAL;
  /* A router whose WAN side is itself private or shared (CGNAT) sits behind
   * another NAT: nobody on the internet can reach its external port. */
  if (nm_addr_classify(router_ext_ip) != NM_ADDR_PUBLIC)
    return 1;
  if (observed_ip == NULL || observed_ip[0] == '\0' || nm__parse_v4(observed_ip, &o) != 0)
    return 0; /* nothing comparable: the manager saw us over IPv6, or not yet */
  return r != o ? 1 : 0;
}
