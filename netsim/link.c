#include "link.h"
#include "nsops.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

const char *nsim_link_up_ifname(const struct nsim_run *r, int node) {
  return r->sc->topo.nodes[node].is_router ? "wan0" : "eth0";
}

void nsim_link_peer_ifname(const struct nsim_run *r, int node, char out[16]) {
  const struct nsim_node *n = &r->sc->topo.nodes[node];
  snprintf(out, 16, "%s%d", n->parent < 0 ? "p" : "l", n->port);
}

const char *nsim_link_parent_ns(const struct nsim_run *r, int node) {
  return nsim_run_ns(r, r->sc->topo.nodes[node].parent);
}

/* Runs argv in ns, ignoring failure (used to remove what may not be there). */
static void nsim__try(const char *ns, char *const argv[]) {
  char out[256];
  int st;
  nsim_ns_run(ns, argv, 5000, out, sizeof out, &st);
}

static int nsim__nft(struct nsim_run *r, const char *ns, const char *name, const char *rules,
                     char *err, size_t errlen) {
  char path[PATH_MAX];
  if (nsim_fmt(path, sizeof path, "%s/%s.nft", r->dir, name) < 0) return -ENAMETOOLONG;
  int rc = nsim_write_file(path, rules, strlen(rules));
  if (rc < 0) return rc;
  char *argv[] = {"nft", "-f", path, NULL};
  return nsim_ns_cmd(ns, argv, err, errlen);
}

/* netem either works or the kernel lacks it; find out once. */
static int nsim__netem_probe(struct nsim_run *r, const char *ns, const char *dev) {
  if (r->netem_missing) return 0; /* already known: 1 missing, 2 present */
  char *argv[] = {"tc", "qdisc", "replace", "dev", (char *)dev, "root", "netem", "delay", "0ms", NULL};
  char out[512];
  int st;
  if (nsim_ns_run(ns, argv, 5000, out, sizeof out, &st) < 0) return -EIO;
  if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) return r->netem_missing = 2, 0;
  if (strstr(out, "unknown") || strstr(out, "Unknown")) {
    r->netem_missing = 1;
    nsim_log(r, "this kernel has no netem qdisc (sch_netem): loss falls back to nftables, "
             "delay cannot be simulated");
    return 0;
  }
  return -EIO;
}

static int nsim__tc_end(struct nsim_run *r, const char *ns, const char *dev,
                        const struct nsim_linkcond *c, char *err, size_t errlen) {
  char *del[] = {"tc", "qdisc", "del", "dev", (char *)dev, "root", NULL};
  nsim__try(ns, del);
  if (!c->delay_ms && !c->jitter_ms && !c->loss_permille && !c->rate_kbit) return 0;
  char d[32], j[32], l[32], rate[32];
  char *argv[24];
  int n = 0;
  argv[n++] = "tc", argv[n++] = "qdisc", argv[n++] = "replace", argv[n++] = "dev";
  argv[n++] = (char *)dev, argv[n++] = "root";
  if (r->netem_missing != 1) {
    argv[n++] = "netem";
    if (c->delay_ms || c->jitter_ms) {
      snprintf(d, sizeof d, "%ldms", c->delay_ms);
      argv[n++] = "delay", argv[n++] = d;
      if (c->jitter_ms) snprintf(j, sizeof j, "%ldms", c->jitter_ms), argv[n++] = j;
    }
    if (c->loss_permille) {
      snprintf(l, sizeof l, "%u.%u%%", c->loss_permille / 10, c->loss_permille % 10);
      argv[n++] = "loss", argv[n++] = l;
    }
    if (c->rate_kbit) snprintf(rate, sizeof rate, "%ukbit", c->rate_kbit), argv[n++] = "rate", argv[n++] = rate;
  } else {
    if (!c->rate_kbit) return 0;
    snprintf(rate, sizeof rate, "%ukbit", c->rate_kbit);
    argv[n++] = "tbf", argv[n++] = "rate", argv[n++] = rate, argv[n++] = "burst";
    argv[n++] = "32kbit", argv[n++] = "latency", argv[n++] = "200ms";
  }
  argv[n] = NULL;
  return nsim_ns_cmd(ns, argv, err, errlen);
}

int nsim_link_apply(struct nsim_run *r, int node, const struct nsim_linkcond *c, char *err,
                    size_t errlen) {
  const char *ns = nsim_run_ns(r, node), *pns = nsim_link_parent_ns(r, node);
  const char *dev = nsim_link_up_ifname(r, node);
  char peer[16];
  nsim_link_peer_ifname(r, node, peer);
  const char *name = r->sc->topo.nodes[node].name;
  int rc = nsim__netem_probe(r, ns, dev);
  if (rc < 0) {
    snprintf(err, errlen, "%s: tc does not work in its namespace", name);
    return rc;
  }
  if (r->netem_missing == 1 && (c->delay_ms || c->jitter_ms)) {
    snprintf(err, errlen, "%s: delay/jitter need the kernel's netem qdisc (sch_netem), which "
             "this kernel lacks", name);
    return -ENOTSUP;
  }
  if ((rc = nsim__tc_end(r, ns, dev, c, err, errlen)) < 0) return rc;
  if ((rc = nsim__tc_end(r, pns, peer, c, err, errlen)) < 0) return rc;
  if (r->netem_missing != 1) return 0;

  /* Fallback loss: drop a random share of packets entering and leaving the node's uplink. */
  char *del[] = {"nft", "delete", "table", "inet", "netsim_link", NULL};
  nsim__try(ns, del);
  if (!c->loss_permille) return 0;
  char rules[1024], file[64];
  snprintf(rules, sizeof rules,
           "table inet netsim_link {\n"
           "  chain in {\n    type filter hook prerouting priority -300; policy accept;\n"
           "    iifname \"%s\" numgen random mod 1000 < %u drop\n  }\n"
           "  chain out {\n    type filter hook postrouting priority 300; policy accept;\n"
           "    oifname \"%s\" numgen random mod 1000 < %u drop\n  }\n}\n",
           dev, c->loss_permille, dev, c->loss_permille);
  snprintf(file, sizeof file, "link-%s", name);
  return nsim__nft(r, ns, file, rules, err, errlen);
}

int nsim_link_cut(struct nsim_run *r, int node, int cut, char *err, size_t errlen) {
  const char *ns = nsim_run_ns(r, node);
  const char *dev = nsim_link_up_ifname(r, node);
  char *del[] = {"nft", "delete", "table", "inet", "netsim_cut", NULL};
  nsim__try(ns, del);
  if (!cut) return 0;
  char rules[768], file[64];
  /* Priority -300 (before conntrack) in and 300 (after NAT) out: nothing gets through,
   * whatever the router's own rules say. */
  snprintf(rules, sizeof rules,
           "table inet netsim_cut {\n"
           "  chain in {\n    type filter hook prerouting priority -300; policy accept;\n"
           "    iifname \"%s\" drop\n  }\n"
           "  chain out {\n    type filter hook postrouting priority 300; policy accept;\n"
           "    oifname \"%s\" drop\n  }\n}\n",
           dev, dev);
  snprintf(file, sizeof file, "cut-%s", r->sc->topo.nodes[node].name);
  return nsim__nft(r, ns, file, rules, err, errlen);
}
