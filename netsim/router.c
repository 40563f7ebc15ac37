#include "router.h"
#include "link.h"
#include "nsops.h"
#include "proc.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

/* One table holds the router's NAT and filter rules and the chains miniupnpd fills in
 * (miniupnpd's nftables backend works in the inet family and is told the table and chain
 * names in its config; Debian's nft_init.sh helper is broken, so netsim creates them). */
#define NSIM_NFT_TABLE "netsim"

/* Endpoint-independent and address-dependent filtering (RFC 4787 section 5). conntrack
 * alone lets in only what answers a flow exactly (address and port: apdf). For the looser
 * kinds netsim remembers, for each external port used on wan0, the inner address behind it
 * (map nsim-eim) and, for adf, the remote addresses it was sent to (set nsim-adf); a new
 * inbound flow to that port (from anyone for eif, from one of those addresses for adf) is
 * forwarded to the inner host, at the same port. Both are refreshed by outbound packets
 * only and forget an idle port after NSIM_EIM_TIMEOUT (RFC 4787 REQ-5: at least 2 min).
 * The rule runs after masquerade (priority srcnat + 10), so th sport is the external port;
 * keeping the port on the way in is exact when the external port is the inner one, which
 * masquerade ensures while it is free (eim is refused without port preservation). */
#define NSIM_EIM_TIMEOUT "120s"

static void nsim__filter_rules(const struct nsim_node *n, char *sets, size_t setslen, char *pre,
                               size_t prelen, char *fwd, size_t fwdlen) {
  sets[0] = pre[0] = fwd[0] = '\0';
  if (n->filtering == NSIM_FILT_APDF) return;
  int adf = n->filtering == NSIM_FILT_ADF;
  char a[16];
  snprintf(sets, setslen,
           "  map nsim-eim {\n"
           "    typeof meta l4proto . th sport : ip saddr; flags dynamic,timeout;\n"
           "    timeout " NSIM_EIM_TIMEOUT "; size 8192;\n"
           "  }\n"
           "%s"
           "  chain nsim-learn {\n"
           "    type filter hook postrouting priority srcnat + 10; policy accept;\n"
           "    iifname \"lan0\" oifname \"wan0\" meta l4proto { tcp, udp } update @nsim-eim "
           "{ meta l4proto . th sport : ct original ip saddr }\n"
           "%s"
           "  }\n",
           adf ? "  set nsim-adf {\n"
                 "    typeof meta l4proto . th sport . ip daddr; flags dynamic,timeout;\n"
                 "    timeout " NSIM_EIM_TIMEOUT "; size 8192;\n"
                 "  }\n"
               : "",
           adf ? "    iifname \"lan0\" oifname \"wan0\" meta l4proto { tcp, udp } update @nsim-adf "
                 "{ meta l4proto . th sport . ip daddr }\n"
               : "");
  snprintf(pre, prelen,
           "    iifname \"wan0\" ip daddr %s meta l4proto { tcp, udp } %s"
           "dnat ip to meta l4proto . th dport map @nsim-eim\n",
           nsim_ip_str(n->addr, a), adf ? "meta l4proto . th dport . ip saddr @nsim-adf " : "");
  snprintf(fwd, fwdlen, "    iifname \"wan0\" oifname \"lan0\" ct status dnat accept\n");
}

static int nsim__router_nft(struct nsim_run *r, int node, char *err, size_t errlen) {
  const struct nsim_node *n = &r->sc->topo.nodes[node];
  int maps = nsim_router_kind_maps(n->kind);
  char lan[40], a[16];
  snprintf(lan, sizeof lan, "%s/%u", nsim_ip_str(n->lan_net, a), n->lan_plen);
  char hp[256] = "";
  if (n->hairpin)
    snprintf(hp, sizeof hp, "    iifname \"wan0\" oifname \"lan0\" ip saddr %s ct status dnat masquerade\n", lan);
  char fsets[1024], fpre[256], ffwd[128];
  nsim__filter_rules(n, fsets, sizeof fsets, fpre, sizeof fpre, ffwd, sizeof ffwd);
  char rules[6144];
  int w = snprintf(rules, sizeof rules,
      "table inet " NSIM_NFT_TABLE " {\n"
      "%s"
      "%s"
      "  chain prerouting {\n"
      "    type nat hook prerouting priority dstnat; policy accept;\n"
      "%s"
      "%s"
      "  }\n"
      "  chain postrouting {\n"
      "    type nat hook postrouting priority srcnat; policy accept;\n"
      "%s"
      /* Hairpin: a LAN host reaching a mapped port through the WAN address. Its packets are
       * turned around onto wan0 (see nsim__hairpin); masquerading them makes the inner
       * host answer through the router instead of directly. */
      "%s"
      /* NAT is for IPv4 only: in an inet table a rule without a protocol would
       * masquerade IPv6 as well, and IPv6 is routed. */
      "    meta nfproto ipv4 oifname \"wan0\" masquerade%s\n"
      "  }\n"
      "  chain forward {\n"
      "    type filter hook forward priority filter; policy drop;\n"
      "    ct state established,related accept\n"
      "    iifname \"lan0\" accept\n"
      "%s"
      /* IPv6: the stateful firewall of a home router (RFC 6092): nothing new gets in. A
       * new TCP connection is answered with a reset, so the client learns at once (as an
       * IPv4 client hitting an unmapped port does); everything else is dropped. */
      "%s"
      "%s"
      "  }\n"
      "%s"
      "}\n",
      maps ? "  chain miniupnpd {\n  }\n  chain miniupnpd-pre {\n  }\n  chain miniupnpd-post {\n  }\n" : "",
      fsets,
      maps ? "    jump miniupnpd-pre\n" : "",
      fpre,
      maps ? "    jump miniupnpd-post\n" : "",
      hp,
      /* Mapping (RFC 4787 section 4.1). fully-random: every new flow gets a random external
       * port, so two destinations (or two ports of one) see two different ports
       * (address-and-port-dependent mapping, "symmetric NAT"). Plain masquerade keeps the
       * inner port while the resulting flow is unique, so one inner socket shows one
       * external port to every destination (endpoint-independent, port-preserving). */
      n->mapping == NSIM_MAP_APDM ? " fully-random" : "",
      ffwd,
      !nsim_family_has6(n->family) ? ""
      : n->stealth ? "    meta nfproto ipv6 iifname \"wan0\" meta l4proto tcp drop\n"
                   : "    meta nfproto ipv6 iifname \"wan0\" meta l4proto tcp reject with tcp reset\n",
      maps ? "    jump miniupnpd\n" : "",
      /* unsolicited="drop": a new TCP connection to the router itself (no mapping took it in
       * prerouting) gets no answer, where the kernel would reset it. A SYN that answers one
       * of the router's own NATed connections (a simultaneous open) belongs to that
       * connection and is forwarded, not dropped. */
      n->stealth ? "  chain input {\n"
                   "    type filter hook input priority filter; policy accept;\n"
                   "    iifname \"wan0\" meta l4proto tcp ct state new drop\n"
                   "  }\n"
                 : "");
  if (w < 0 || (size_t)w >= sizeof rules) return -ENAMETOOLONG;
  char path[PATH_MAX];
  if (nsim_fmt(path, sizeof path, "%s/router-%s.nft", r->dir, n->name) < 0) return -ENAMETOOLONG;
  int rc = nsim_write_file(path, rules, strlen(rules));
  if (rc < 0) return rc;
  char *argv[] = {"nft", "-f", path, NULL};
  return nsim_ns_cmd(nsim_run_ns(r, node), argv, err, errlen);
}

/* Hairpinning. miniupnpd's mapping rules match `iif "wan0"`, so a LAN host's packet to the
 * WAN address never meets them. A tc ingress filter on each LAN port redirects such packets
 * to wan0's ingress, where they are translated like any packet from the internet. The IP
 * layer only accepts a redirected frame addressed to wan0's MAC, so the LAN bridge and its
 * ports take wan0's MAC (they are separate segments; nothing else sees the duplicate). */
static int nsim__hairpin(struct nsim_run *r, int node, char *err, size_t errlen) {
  const struct nsim_topo *t = &r->sc->topo;
  const struct nsim_node *n = &t->nodes[node];
  const char *ns = nsim_run_ns(r, node);
  char out[1024], mac[32] = "";
  int st;
  char *show[] = {"ip", "-o", "link", "show", "wan0", NULL};
  if (nsim_ns_run(ns, show, 5000, out, sizeof out, &st) < 0) return -EIO;
  char *p = strstr(out, "link/ether ");
  if (!p || sscanf(p + 11, "%31s", mac) != 1) {
    snprintf(err, errlen, "%s: cannot read wan0's MAC address", n->name);
    return -EIO;
  }
  char a[16], dst[24];
  snprintf(dst, sizeof dst, "%s/32", nsim_ip_str(n->addr, a));
  int rc;
  char *setmac[] = {"ip", "link", "set", "lan0", "address", mac, NULL};
  if ((rc = nsim_ns_cmd(ns, setmac, err, errlen)) < 0) return rc;
  for (int i = 0; i < t->nnodes; i++) {
    if (t->nodes[i].parent != node) continue;
    char port[16];
    nsim_link_peer_ifname(r, i, port);
    char *pmac[] = {"ip", "link", "set", port, "address", mac, NULL};
    char *qd[] = {"tc", "qdisc", "add", "dev", port, "ingress", NULL};
    char *flt[] = {"tc", "filter", "add", "dev", port, "parent", "ffff:", "protocol", "ip",
                   "u32", "match", "ip", "dst", dst, "action", "mirred", "ingress",
                   "redirect", "dev", "wan0", NULL};
    if ((rc = nsim_ns_cmd(ns, pmac, err, errlen)) < 0) return rc;
    if ((rc = nsim_ns_cmd(ns, qd, err, errlen)) < 0) return rc;
    if ((rc = nsim_ns_cmd(ns, flt, err, errlen)) < 0) return rc;
  }
  /* The turned-around packets arrive on wan0 from a LAN source: reverse-path filtering
   * would drop them, and the kernel would call a local source martian. */
  nsim_ns_sysctl(ns, "net/ipv4/conf/all/rp_filter", "0");
  nsim_ns_sysctl(ns, "net/ipv4/conf/wan0/rp_filter", "0");
  return 0;
}

static int nsim__daemon_ready(struct nsim_run *r, int node, struct nsim_proc *p, long wait_ms,
                              char *err, size_t errlen);

static int nsim__miniupnpd(struct nsim_run *r, int node, char *err, size_t errlen) {
  const struct nsim_node *n = &r->sc->topo.nodes[node];
  char a[16], conf[PATH_MAX], leases[PATH_MAX], pidf[PATH_MAX];
  if (nsim_fmt(conf, sizeof conf, "%s/miniupnpd-%s.conf", r->dir, n->name) < 0 ||
      nsim_fmt(leases, sizeof leases, "%s/miniupnpd-%s.leases", r->dir, n->name) < 0 ||
      nsim_fmt(pidf, sizeof pidf, "%s/miniupnpd-%s.pid", r->dir, n->name) < 0)
    return -ENAMETOOLONG;
  unsigned char u[16];
  if (getrandom(u, sizeof u, 0) != sizeof u) return -EIO;
  char text[2048];
  snprintf(text, sizeof text,
           "# generated by natmesh-netsim for router %s (run %s)\n"
           "ext_ifname=wan0\n"
           "listening_ip=lan0\n"
           "enable_upnp=%s\n"
           "enable_natpmp=yes\n"
           "secure_mode=yes\n"
           /* NAT-PMP's epoch counts from the daemon's start, so a restart-upnpd looks like
            * a reboot to clients (RFC 6886 3.6), as it would on a real router. */
           "system_uptime=no\n"
           "uuid=%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x\n"
           "upnp_table_name=" NSIM_NFT_TABLE "\n"
           "upnp_nat_table_name=" NSIM_NFT_TABLE "\n"
           "upnp_forward_chain=miniupnpd\n"
           "upnp_nat_chain=miniupnpd-pre\n"
           "upnp_nat_postrouting_chain=miniupnpd-post\n"
           "lease_file=%s\n"
           "allow 1024-65535 %s/%u 1024-65535\n"
           "deny 0-65535 0.0.0.0/0 0-65535\n",
           n->name, r->id, n->kind == NSIM_ROUTER_UPNP ? "yes" : "no", u[0], u[1], u[2], u[3],
           u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15], leases,
           nsim_ip_str(n->lan_net, a), n->lan_plen);
  int rc = nsim_write_file(conf, text, strlen(text));
  if (rc < 0) return rc;
  char **argv;
  char line[PATH_MAX * 3];
  snprintf(line, sizeof line, "miniupnpd -f '%s' -d -P '%s'", conf, pidf);
  if ((rc = nsim_split_args(line, &argv)) < 0) return rc;
  char pname[NSIM_NAME_MAX + 16];
  snprintf(pname, sizeof pname, "miniupnpd@%s", n->name);
  struct nsim_proc *p = nsim_proc_add(r, pname, node, argv, 1);
  if (!p) {
    nsim_argv_free(argv);
    snprintf(err, errlen, "too many processes");
    return -ENOSPC;
  }
  if ((rc = nsim_proc_start(r, p, err, errlen)) < 0) return rc;
  return nsim__daemon_ready(r, node, p, 5000, err, errlen);
}

/* Ready when it listens for NAT-PMP (and for UPnP's HTTP when that is on), in the current
 * incarnation's log. */
static int nsim__daemon_ready(struct nsim_run *r, int node, struct nsim_proc *p, long wait_ms,
                              char *err, size_t errlen) {
  const struct nsim_node *n = &r->sc->topo.nodes[node];
  long deadline = nsim_now_ms() + wait_ms;
  for (;;) {
    int pmp = nsim_proc_log_find(p, 3, "Listening for NAT-PMP", NULL, NULL, 0) > 0;
    int http = n->kind != NSIM_ROUTER_UPNP ||
               nsim_proc_log_find(p, 3, "HTTP listening on port", NULL, NULL, 0) > 0;
    if (pmp && http) return 0;
    nsim_proc_reap(r);
    if (p->exited || nsim_now_ms() > deadline) {
      snprintf(err, errlen, "miniupnpd on %s did not come up (see %s)", n->name, p->err_path);
      return -EIO;
    }
    nsim_sleep_ms(20);
  }
}

int nsim_router_setup(struct nsim_run *r, int node, char *err, size_t errlen) {
  const struct nsim_node *n = &r->sc->topo.nodes[node];
  const char *ns = nsim_run_ns(r, node);
  int rc = nsim_ns_sysctl(ns, "net/ipv4/ip_forward", "1");
  if (rc < 0) {
    snprintf(err, errlen, "%s: cannot enable forwarding: %s", n->name, strerror(-rc));
    return rc;
  }
  /* With br_netfilter loaded, frames switched between two LAN hosts would traverse the
   * forward chain and its drop policy; a home router's switch does not filter. The key is
   * absent when br_netfilter is not loaded, which is fine. */
  nsim_ns_sysctl(ns, "net/bridge/bridge-nf-call-iptables", "0");
  nsim_ns_sysctl(ns, "net/bridge/bridge-nf-call-ip6tables", "0");
  if (!nsim_router_kind_nats(n->kind)) return 0; /* public: plain routing */
  if ((rc = nsim__router_nft(r, node, err, errlen)) < 0) return rc;
  if (n->hairpin && (rc = nsim__hairpin(r, node, err, errlen)) < 0) return rc;
  if (nsim_router_kind_maps(n->kind) && (rc = nsim__miniupnpd(r, node, err, errlen)) < 0) return rc;
  return 0;
}

int nsim_router_mappings(struct nsim_run *r, int node, char *out, size_t outlen) {
  char *argv[] = {"nft", "list", "chain", "inet", NSIM_NFT_TABLE, "miniupnpd-pre", NULL};
  int st;
  int rc = nsim_ns_run(nsim_run_ns(r, node), argv, 5000, out, outlen, &st);
  if (rc < 0) return rc;
  return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

int nsim_router_restart_daemon(struct nsim_run *r, int node, int flush, long wait_ms, char *err,
                               size_t errlen) {
  const struct nsim_node *n = &r->sc->topo.nodes[node];
  char pname[NSIM_NAME_MAX + 16];
  snprintf(pname, sizeof pname, "miniupnpd@%s", n->name);
  struct nsim_proc *p = nsim_proc_find(r, pname);
  if (!p) {
    snprintf(err, errlen, "%s runs no miniupnpd", n->name);
    return -ENOENT;
  }
  if (nsim_proc_signal(r, p, SIGTERM, 3000) < 0) {
    snprintf(err, errlen, "%s did not stop", pname);
    return -ETIMEDOUT;
  }
  if (flush) {
    /* What a reboot forgets: the lease file miniupnpd reloads its mappings from, and the
     * rules it installed (it may leave them behind when it stops). */
    char leases[PATH_MAX];
    if (nsim_fmt(leases, sizeof leases, "%s/miniupnpd-%s.leases", r->dir, n->name) < 0)
      return -ENAMETOOLONG;
    if (unlink(leases) < 0 && errno != ENOENT) {
      snprintf(err, errlen, "cannot remove %s: %s", leases, strerror(errno));
      return -errno;
    }
    static const char *const chains[] = {"miniupnpd", "miniupnpd-pre", "miniupnpd-post"};
    for (size_t i = 0; i < NSIM_ARRAY_LEN(chains); i++) {
      char *argv[] = {"nft", "flush", "chain", "inet", NSIM_NFT_TABLE, (char *)chains[i], NULL};
      int rc = nsim_ns_cmd(nsim_run_ns(r, node), argv, err, errlen);
      if (rc < 0) return rc;
    }
  }
  int rc = nsim_proc_start(r, p, err, errlen);
  if (rc < 0) return rc;
  return nsim__daemon_ready(r, node, p, wait_ms, err, errlen);
}
