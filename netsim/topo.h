/* topo: the topology model (an internet segment, hosts, routers with LANs) and the checks
 * that make it safe and buildable: names, address plans, and the rule that nothing in a
 * topology can reach the host's own (root) network namespace. */
#ifndef NSIM_TOPO_H
#define NSIM_TOPO_H

#include <stddef.h>
#include <stdint.h>

#define NSIM_MAX_NODES 48
#define NSIM_NAME_MAX 15 /* node names become parts of namespace and log file names */

enum nsim_router_kind {
  NSIM_ROUTER_PUBLIC,    /* routes, no NAT, no filtering: its LAN hosts are public */
  NSIM_ROUTER_UPNP,      /* NAT, inbound dropped unless mapped; miniupnpd with UPnP IGD + NAT-PMP */
  NSIM_ROUTER_NATPMP,    /* the same with UPnP off */
  NSIM_ROUTER_FIREWALL,  /* NAT, inbound dropped, no mapping service */
  NSIM_ROUTER_SYMMETRIC, /* NAT with a fresh random external port per flow (per destination) */
};

/* RFC 4787 behaviours of a NAT router (router.c builds them; docs/netsim.md says which
 * combinations Linux models faithfully, which it approximates and which netsim refuses). */
enum nsim_mapping {
  NSIM_MAP_EIM,          /* endpoint-independent: one external port per inner socket */
  NSIM_MAP_ADM,          /* address-dependent: one per inner socket and remote address (refused) */
  NSIM_MAP_APDM,         /* address-and-port-dependent: one per flow ("symmetric") */
};
enum nsim_filtering {
  NSIM_FILT_EIF,         /* endpoint-independent: anyone may send to a mapped port */
  NSIM_FILT_ADF,         /* address-dependent: addresses the inner socket sent to */
  NSIM_FILT_APDF,        /* address-and-port-dependent: only the exact remote address and port */
};

/* Which IP versions a node has: on a host, its eth0; on a router, its WAN and what its LAN
 * offers. IPv6 is routed without NAT (see router.c). */
enum nsim_family {
  NSIM_FAM_IPV4,         /* the default: IPv6 disabled on the uplink (not on lo) */
  NSIM_FAM_DUAL,
  NSIM_FAM_IPV6,         /* no IPv4 address on the uplink (lo keeps 127.0.0.1) */
};

/* Conditions of a node's uplink, applied in each direction. */
struct nsim_linkcond {
  long delay_ms;         /* one-way delay */
  long jitter_ms;
  unsigned loss_permille;
  unsigned rate_kbit;    /* 0: unlimited */
};

struct nsim_node {
  char name[NSIM_NAME_MAX + 1];
  int is_router;
  enum nsim_router_kind kind;
  int hairpin;           /* routers: LAN hosts reach mapped ports via the WAN address */
  int stealth;           /* NAT routers: unsolicited TCP to the WAN address is dropped, not
                            answered with a reset (unsolicited="drop") */
  enum nsim_mapping mapping;     /* NAT routers: from the kind's preset or mapping= */
  enum nsim_filtering filtering; /* NAT routers: from the kind's preset or filtering= */
  int port_preserve;     /* NAT routers: the external port is the inner one when free */
  int parent;            /* router index, or -1 when attached to the internet */
  int port;              /* 1-based port number on the parent's segment (interface names) */
  int line;              /* line in the topology file, for messages */

  uint32_t addr;         /* uplink address, host byte order */
  uint32_t gw;           /* default gateway on the uplink segment */
  uint8_t up_plen;       /* prefix length of the uplink segment */

  uint32_t lan_net;      /* routers: LAN prefix, its length and the router's LAN address */
  uint8_t lan_plen;
  uint32_t lan_addr;
  int next_host;         /* routers: next automatic host address offset in the LAN */

  struct nsim_linkcond cond;

  enum nsim_family family;
  uint8_t addr6[16];     /* uplink IPv6 address (nodes with IPv6) */
  uint8_t gw6[16];       /* IPv6 default gateway: the parent's LAN (or the core's) address */
  uint8_t lan6_net[16];  /* routers with IPv6: their LAN /64 and their address in it */
  uint8_t lan6_addr[16];
};

struct nsim_topo {
  uint32_t inet_net;     /* the internet segment; its .1 is the core that routes public LANs */
  uint8_t inet_plen;
  uint32_t inet_core;
  int next_inet;         /* next automatic address offset on the internet segment */
  uint8_t inet6_net[16]; /* the internet's IPv6 /64; its ::1 is the core */
  uint8_t inet6_core[16];
  int has_v6;            /* some node has IPv6: the core routes the internet6 prefix */
  struct nsim_node nodes[NSIM_MAX_NODES];
  int nnodes;
};

void nsim_topo_init(struct nsim_topo *t);

/* Index of the node called name, or -1. */
int nsim_topo_find(const struct nsim_topo *t, const char *name);

/* Validates a node name: [a-z0-9][a-z0-9_-]*, at most NSIM_NAME_MAX, not reserved. Returns 0
 * or -EINVAL with the reason in err. */
int nsim_topo_check_name(const char *name, char *err, size_t errlen);

/* Fills in automatic addresses and checks the whole plan: prefixes that overlap where they
 * would make routing ambiguous, addresses outside their segment or used twice, and
 * internet prefixes that are not plain unicast space. Returns 0 or -EINVAL with a reason
 * naming the node and its line. */
int nsim_topo_finish(struct nsim_topo *t, char *err, size_t errlen);

/* The address a reference names (ref is the text between ${ and }): ip:NODE / wan:NODE (the
 * uplink's IPv4 address), lan:ROUTER, ip6:NODE, lan6:ROUTER (IPv6, plain). Returns 0 with it
 * in val; -EINVAL with the reason in why (a node that does not exist or lacks that family),
 * or -EINVAL with why empty when ref is not an address reference at all. */
int nsim_topo_addr_ref(const struct nsim_topo *t, const char *ref, char *val, size_t vlen,
                       char *why, size_t whylen);

const char *nsim_router_kind_name(enum nsim_router_kind k);
int nsim_router_kind_parse(const char *s, enum nsim_router_kind *out);
/* Whether the kind translates addresses (everything but public). */
int nsim_router_kind_nats(enum nsim_router_kind k);
/* Whether the kind runs miniupnpd. */
int nsim_router_kind_maps(enum nsim_router_kind k);

const char *nsim_mapping_name(enum nsim_mapping m);
int nsim_mapping_parse(const char *s, enum nsim_mapping *out);
const char *nsim_filtering_name(enum nsim_filtering f);
int nsim_filtering_parse(const char *s, enum nsim_filtering *out);
/* The behaviours a kind stands for (its preset): mapping, filtering, port preservation. */
void nsim_router_kind_preset(enum nsim_router_kind k, struct nsim_node *n);
/* Whether netsim can build router n's combination of behaviours; -EINVAL with the reason
 * (and what to write instead) in err when it cannot. */
int nsim_router_behaviour_check(const struct nsim_node *n, char *err, size_t errlen);
/* "eim/apdf/pp-on": the behaviours in one word (reports, the matrix). */
const char *nsim_router_behaviour_str(const struct nsim_node *n, char *buf, size_t len);

/* "a.b.c.d" and "a.b.c.d/len" parsing and printing, host byte order. */
int nsim_ip_parse(const char *s, uint32_t *out);
int nsim_prefix_parse(const char *s, uint32_t *net, uint8_t *plen);
const char *nsim_ip_str(uint32_t ip, char buf[16]);
uint32_t nsim_mask(uint8_t plen);

/* IPv6: "x:y::z" and "x:y::/64" (only /64: every segment is one /64), printing. */
#define NSIM_IP6_STRLEN 46
int nsim_ip6_parse(const char *s, uint8_t out[16]);
int nsim_prefix6_parse(const char *s, uint8_t net[16]);
const char *nsim_ip6_str(const uint8_t ip[16], char buf[NSIM_IP6_STRLEN]);

/* An address with or without a port, either version: what scenarios write after expansion
 * ("11.0.0.3:7000", "[2001:db8:11::3]:7000") and what programs print. */
struct nsim_endpoint {
  int family;            /* AF_INET or AF_INET6 */
  uint32_t ip4;          /* AF_INET: host byte order */
  uint8_t ip6[16];       /* AF_INET6 */
  uint16_t port;         /* 0 when none was given */
};
#define NSIM_ENDPOINT_STRLEN 56
/* "A.B.C.D:PORT" or "[V6]:PORT", port 1..65535. Returns 0 or -EINVAL. */
int nsim_endpoint_parse(const char *s, struct nsim_endpoint *ep);
/* An address alone: "A.B.C.D", "V6" or "[V6]"; a v4-mapped V6 (::ffff:a.b.c.d) is IPv4. */
int nsim_addr_parse(const char *s, struct nsim_endpoint *ep);
/* The same address (ports ignored), comparing v4-mapped IPv6 equal to IPv4. */
int nsim_addr_equal(const struct nsim_endpoint *a, const struct nsim_endpoint *b);
/* "A.B.C.D:PORT" / "[V6]:PORT", or the address alone when port is 0. */
const char *nsim_endpoint_str(const struct nsim_endpoint *ep, char buf[NSIM_ENDPOINT_STRLEN]);

const char *nsim_family_name(enum nsim_family f);
int nsim_family_parse(const char *s, enum nsim_family *out);
static inline int nsim_family_has4(enum nsim_family f) { return f != NSIM_FAM_IPV6; }
static inline int nsim_family_has6(enum nsim_family f) { return f != NSIM_FAM_IPV4; }

#endif
