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
};

struct nsim_topo {
  uint32_t inet_net;     /* the internet segment; its .1 is the core that routes public LANs */
  uint8_t inet_plen;
  uint32_t inet_core;
  int next_inet;         /* next automatic address offset on the internet segment */
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

const char *nsim_router_kind_name(enum nsim_router_kind k);
int nsim_router_kind_parse(const char *s, enum nsim_router_kind *out);
/* Whether the kind translates addresses (everything but public). */
int nsim_router_kind_nats(enum nsim_router_kind k);
/* Whether the kind runs miniupnpd. */
int nsim_router_kind_maps(enum nsim_router_kind k);

/* "a.b.c.d" and "a.b.c.d/len" parsing and printing, host byte order. */
int nsim_ip_parse(const char *s, uint32_t *out);
int nsim_prefix_parse(const char *s, uint32_t *net, uint8_t *plen);
const char *nsim_ip_str(uint32_t ip, char buf[16]);
uint32_t nsim_mask(uint8_t plen);

#endif
