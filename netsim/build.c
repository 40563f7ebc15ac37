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
  return 0;
}

static int nsim__segment(struct nsim_run *r, const char *ns, const char *bridge, uint32_t addr,
                         uint8_t plen, char *err, size_t errlen) {
  char a[16], cidr[24];
  snprintf(cidr, sizeof cidr, "%s/%u", nsim_ip_str(addr, a), plen);
  NSIM_CMD(r, ns, err, errlen, "ip", "link", "add", (char *)bridge, "type", "bridge");
  NSIM_CMD(r, ns, err, errlen, "ip", "addr", "add", cidr, "dev", (char *)bridge);
  NSIM_CMD(r, ns, err, errlen, "ip", "link", "set", (char *)bridge, "up");
  int rc = nsim_ns_sysctl(ns, "net/ipv4/ip_forward", "1");
  if (rc < 0) snprintf(err, errlen, "%s: cannot enable forwarding", ns);
  return rc;
}

/* The uplink: a veth pair created from inside the node's namespace with its peer placed
 * directly in the parent's, so neither end ever exists in the host's namespace. */
static int nsim__uplink(struct nsim_run *r, int i, char *err, size_t errlen) {
  const struct nsim_node *n = &r->sc->topo.nodes[i];
  const char *ns = nsim_run_ns(r, i), *pns = nsim_link_parent_ns(r, i);
  char *dev = (char *)nsim_link_up_ifname(r, i);
  char peer[16], a[16], cidr[24], gw[16];
  nsim_link_peer_ifname(r, i, peer);
  snprintf(cidr, sizeof cidr, "%s/%u", nsim_ip_str(n->addr, a), n->up_plen);
  nsim_ip_str(n->gw, gw);
  char *bridge = n->parent < 0 ? "br0" : "lan0";
  NSIM_CMD(r, ns, err, errlen, "ip", "link", "add", dev, "type", "veth", "peer", "name", peer,
           "netns", (char *)pns);
  NSIM_CMD(r, pns, err, errlen, "ip", "link", "set", peer, "master", bridge);
  NSIM_CMD(r, pns, err, errlen, "ip", "link", "set", peer, "up");
  NSIM_CMD(r, ns, err, errlen, "ip", "addr", "add", cidr, "dev", dev);
  NSIM_CMD(r, ns, err, errlen, "ip", "link", "set", dev, "up");
  NSIM_CMD(r, ns, err, errlen, "ip", "route", "add", "default", "via", gw, "dev", dev);
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
  if ((rc = nsim__segment(r, nsim_run_ns(r, -1), "br0", t->inet_core, t->inet_plen, err, errlen)) < 0)
    return rc;
  for (int i = 0; i < t->nnodes; i++)
    if (t->nodes[i].is_router &&
        (rc = nsim__segment(r, nsim_run_ns(r, i), "lan0", t->nodes[i].lan_addr,
                            t->nodes[i].lan_plen, err, errlen)) < 0)
      return rc;
  /* Document order puts every router before the nodes behind it. */
  for (int i = 0; i < t->nnodes; i++)
    if ((rc = nsim__uplink(r, i, err, errlen)) < 0) return rc;
  for (int i = 0; i < t->nnodes; i++)
    if (t->nodes[i].is_router && t->nodes[i].kind == NSIM_ROUTER_PUBLIC &&
        (rc = nsim__public_routes(r, i, err, errlen)) < 0)
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
