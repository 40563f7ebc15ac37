#include "build.h"
#include "link.h"
#include "nsops.h"
#include "proc.h"
#include "router.h"
#include "state.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define NSIM_CMD(r, ns, err, errlen, ...)                                      \
  do {                                                                         \
    char *argv_[] = {__VA_ARGS__, NULL};                                       \
    int rc_ = nsim_ns_cmd((ns), argv_, (err), (errlen));                       \
    if (rc_ < 0) return rc_;                                                   \
  } while (0)

static int nsim__make_ns(struct nsim_run *r, int idx, const char *node, char *err, size_t errlen) {
  char *ns = r->nsname[idx];
  if (nsim_fmt(ns, sizeof r->nsname[0], "%s%s", r->prefix, node) < 0) return -ENAMETOOLONG;
  /* Recorded before it exists: a crash right after `ip netns add` still gets it removed. */
  int rc = nsim_state_add_ns(r, node, ns);
  if (rc < 0) return rc;
  if ((rc = nsim_ns_add(r->prefix, ns)) < 0) {
    snprintf(err, errlen, "cannot create namespace %s: %s", ns, strerror(-rc));
    return rc;
  }
  NSIM_CMD(r, ns, err, errlen, "ip", "link", "set", "lo", "up");
  /* Interfaces made from now on start without IPv6: an ipv4 node's eth0 has none (lo keeps
   * ::1, so a program can still bind a dual-stack socket), bridge ports carry frames and
   * need no address. IPv6 is switched on where the family asks for it; addresses take no
   * duplicate-address detection and no router advertisement changes the plan. A kernel
   * without IPv6 has no such keys: fine, unless the topology uses IPv6 (nsim__enable6). */
  static const char *const v6_defaults[][2] = {{"net/ipv6/conf/default/disable_ipv6", "1"},
                                               {"net/ipv6/conf/default/accept_dad", "0"},
                                               {"net/ipv6/conf/default/accept_ra", "0"},
                                               {"net/ipv6/conf/default/autoconf", "0"}};
  for (size_t i = 0; i < NSIM_ARRAY_LEN(v6_defaults); i++)
    nsim_ns_sysctl(ns, v6_defaults[i][0], v6_defaults[i][1]);
  return 0;
}

/* IPv6 on dev: switched on, addr/64 without DAD. */
static int nsim__enable6(const char *ns, const char *dev, const uint8_t addr[16], char *err,
                         size_t errlen) {
  char key[96], a[NSIM_IP6_STRLEN], cidr[NSIM_IP6_STRLEN + 4];
  snprintf(key, sizeof key, "net/ipv6/conf/%s/disable_ipv6", dev);
  int rc = nsim_ns_sysctl(ns, key, "0");
  if (rc < 0) {
    snprintf(err, errlen, "%s: cannot switch IPv6 on for %s (%s): does this kernel have IPv6?",
             ns, dev, strerror(-rc));
    return rc;
  }
  snprintf(cidr, sizeof cidr, "%s/64", nsim_ip6_str(addr, a));
  NSIM_CMD(r, ns, err, errlen, "ip", "-6", "addr", "add", cidr, "dev", (char *)dev, "nodad");
  return 0;
}

/* A segment's bridge with the router's (or core's) addresses on it: IPv4 unless addr is 0,
 * IPv6 when addr6 is given; forwarding on for each. */
static int nsim__segment(struct nsim_run *r, const char *ns, const char *bridge, uint32_t addr,
                         uint8_t plen, const uint8_t *addr6, char *err, size_t errlen) {
  char a[16], cidr[24];
  snprintf(cidr, sizeof cidr, "%s/%u", nsim_ip_str(addr, a), plen);
  NSIM_CMD(r, ns, err, errlen, "ip", "link", "add", (char *)bridge, "type", "bridge");
  if (addr) NSIM_CMD(r, ns, err, errlen, "ip", "addr", "add", cidr, "dev", (char *)bridge);
  int rc;
  if (addr6) {
    if ((rc = nsim__enable6(ns, bridge, addr6, err, errlen)) < 0) return rc;
    if ((rc = nsim_ns_sysctl(ns, "net/ipv6/conf/all/forwarding", "1")) < 0) {
      snprintf(err, errlen, "%s: cannot enable IPv6 forwarding", ns);
      return rc;
    }
  }
  NSIM_CMD(r, ns, err, errlen, "ip", "link", "set", (char *)bridge, "up");
  rc = nsim_ns_sysctl(ns, "net/ipv4/ip_forward", "1");
  if (rc < 0) snprintf(err, errlen, "%s: cannot enable forwarding", ns);
  return rc;
}

/* The uplink: a veth pair created from inside the node's namespace with its peer placed
 * directly in the parent's, so neither end ever exists in the host's namespace. */
static int nsim__uplink(struct nsim_run *r, int i, char *err, size_t errlen) {
  const struct nsim_node *n = &r->sc->topo.nodes[i];
  const char *ns = nsim_run_ns(r, i), *pns = nsim_link_parent_ns(r, i);
  char *dev = (char *)nsim_link_up_ifname(r, i);
  char peer[16], a[16], cidr[24], gw[16], gw6[NSIM_IP6_STRLEN];
  nsim_link_peer_ifname(r, i, peer);
  snprintf(cidr, sizeof cidr, "%s/%u", nsim_ip_str(n->addr, a), n->up_plen);
  nsim_ip_str(n->gw, gw);
  char *bridge = n->parent < 0 ? "br0" : "lan0";
  int has4 = nsim_family_has4(n->family), has6 = nsim_family_has6(n->family), rc;
  NSIM_CMD(r, ns, err, errlen, "ip", "link", "add", dev, "type", "veth", "peer", "name", peer,
           "netns", (char *)pns);
  NSIM_CMD(r, pns, err, errlen, "ip", "link", "set", peer, "master", bridge);
  NSIM_CMD(r, pns, err, errlen, "ip", "link", "set", peer, "up");
  if (has4) NSIM_CMD(r, ns, err, errlen, "ip", "addr", "add", cidr, "dev", dev);
  if (has6 && (rc = nsim__enable6(ns, dev, n->addr6, err, errlen)) < 0) return rc;
  NSIM_CMD(r, ns, err, errlen, "ip", "link", "set", dev, "up");
  if (has4) NSIM_CMD(r, ns, err, errlen, "ip", "route", "add", "default", "via", gw, "dev", dev);
  if (has6)
    NSIM_CMD(r, ns, err, errlen, "ip", "-6", "route", "add", "default", "via",
             (char *)nsim_ip6_str(n->gw6, gw6), "dev", dev);
  return 0;
}

/* IPv6 is routed, never translated: every router's LAN /64 is routed by each router above
 * it and by the core, towards the WAN address of the router on the path. */
static int nsim__routes6(struct nsim_run *r, int i, char *err, size_t errlen) {
  const struct nsim_topo *t = &r->sc->topo;
  char a[NSIM_IP6_STRLEN], dst[NSIM_IP6_STRLEN + 4], via[NSIM_IP6_STRLEN];
  snprintf(dst, sizeof dst, "%s/64", nsim_ip6_str(t->nodes[i].lan6_net, a));
  for (int hop = i; hop >= 0; hop = t->nodes[hop].parent) {
    nsim_ip6_str(t->nodes[hop].addr6, via);
    NSIM_CMD(r, nsim_run_ns(r, t->nodes[hop].parent), err, errlen, "ip", "-6", "route", "add",
             dst, "via", via);
  }
  return 0;
}

/* A public router's LAN is reachable from above: every router up the chain (while public)
 * and finally the internet core or the first NAT router get a route to it. */
static int nsim__public_routes(struct nsim_run *r, int i, char *err, size_t errlen) {
  const struct nsim_topo *t = &r->sc->topo;
  char a[16], dst[24], via[16];
  snprintf(dst, sizeof dst, "%s/%u", nsim_ip_str(t->nodes[i].lan_net, a), t->nodes[i].lan_plen);
  for (int hop = i;;) {
    int up = t->nodes[hop].parent;
    nsim_ip_str(t->nodes[hop].addr, via);
    NSIM_CMD(r, nsim_run_ns(r, up), err, errlen, "ip", "route", "add", dst, "via", via);
    if (up < 0 || nsim_router_kind_nats(t->nodes[up].kind)) return 0;
    hop = up;
  }
}

static int nsim__has_cond(const struct nsim_linkcond *c) {
  return c->delay_ms || c->jitter_ms || c->loss_permille || c->rate_kbit;
}

int nsim_build_up(struct nsim_run *r, char *err, size_t errlen) {
  const struct nsim_topo *t = &r->sc->topo;
  int rc;
  if ((rc = nsim__make_ns(r, t->nnodes, "inet", err, errlen)) < 0) return rc;
  for (int i = 0; i < t->nnodes; i++)
    if ((rc = nsim__make_ns(r, i, t->nodes[i].name, err, errlen)) < 0) return rc;
  if ((rc = nsim__segment(r, nsim_run_ns(r, -1), "br0", t->inet_core, t->inet_plen,
                          t->has_v6 ? t->inet6_core : NULL, err, errlen)) < 0)
    return rc;
  for (int i = 0; i < t->nnodes; i++) {
    const struct nsim_node *n = &t->nodes[i];
    if (n->is_router &&
        (rc = nsim__segment(r, nsim_run_ns(r, i), "lan0",
                            nsim_family_has4(n->family) ? n->lan_addr : 0, n->lan_plen,
                            nsim_family_has6(n->family) ? n->lan6_addr : NULL, err, errlen)) < 0)
      return rc;
  }
  /* Document order puts every router before the nodes behind it. */
  for (int i = 0; i < t->nnodes; i++)
    if ((rc = nsim__uplink(r, i, err, errlen)) < 0) return rc;
  for (int i = 0; i < t->nnodes; i++)
    if (t->nodes[i].is_router && t->nodes[i].kind == NSIM_ROUTER_PUBLIC &&
        nsim_family_has4(t->nodes[i].family) && (rc = nsim__public_routes(r, i, err, errlen)) < 0)
      return rc;
  for (int i = 0; i < t->nnodes; i++)
    if (t->nodes[i].is_router && nsim_family_has6(t->nodes[i].family) &&
        (rc = nsim__routes6(r, i, err, errlen)) < 0)
      return rc;
  for (int i = 0; i < t->nnodes; i++)
    if (nsim__has_cond(&t->nodes[i].cond) &&
        (rc = nsim_link_apply(r, i, &t->nodes[i].cond, err, errlen)) < 0)
      return rc;
  for (int i = 0; i < t->nnodes; i++)
    if (t->nodes[i].is_router && (rc = nsim_router_setup(r, i, err, errlen)) < 0) return rc;
  return 0;
}

int nsim_build_teardown(struct nsim_run *r) {
  nsim_proc_stop_all(r, 1000);
  nsim_proc_reap(r);
  /* The state file names every namespace and process, including any created by a step that
   * failed halfway; the shared cleanup removes them and checks nothing is left. */
  return nsim_cleanup_dir(r->dir, r->verbose);
}
