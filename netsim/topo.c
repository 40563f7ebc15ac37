#include "topo.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Names that would read as the host itself, or that netsim uses for its own namespaces. */
static const char *const nsim__reserved[] = {"inet", "internet", "root", "host", "init",
                                             "default", "self", "all"};

void nsim_topo_init(struct nsim_topo *t) {
  memset(t, 0, sizeof *t);
  nsim_prefix_parse("11.0.0.0/24", &t->inet_net, &t->inet_plen);
  /* Documentation space (RFC 3849): never a real address, and it exists only inside the
   * run's namespaces, like every address of a topology. */
  nsim_prefix6_parse("2001:db8:11::/64", t->inet6_net);
}

int nsim_topo_find(const struct nsim_topo *t, const char *name) {
  for (int i = 0; i < t->nnodes; i++)
    if (strcmp(t->nodes[i].name, name) == 0) return i;
  return -1;
}

int nsim_topo_check_name(const char *name, char *err, size_t errlen) {
  size_t len = strlen(name);
  if (len == 0 || len > NSIM_NAME_MAX) {
    snprintf(err, errlen, "name \"%s\" must have 1 to %d characters", name, NSIM_NAME_MAX);
    return -EINVAL;
  }
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '-' || c == '_'));
    if (!ok) {
      snprintf(err, errlen, "name \"%s\": use lowercase letters, digits, '-' and '_'", name);
      return -EINVAL;
    }
  }
  for (size_t i = 0; i < NSIM_ARRAY_LEN(nsim__reserved); i++) {
    if (strcmp(name, nsim__reserved[i]) == 0) {
      snprintf(err, errlen, "name \"%s\" is reserved", name);
      return -EINVAL;
    }
  }
  return 0;
}

static const char *const nsim__kind_names[] = {
    [NSIM_ROUTER_PUBLIC] = "public",     [NSIM_ROUTER_UPNP] = "upnp",
    [NSIM_ROUTER_NATPMP] = "natpmp",     [NSIM_ROUTER_FIREWALL] = "firewall",
    [NSIM_ROUTER_SYMMETRIC] = "symmetric",
};

const char *nsim_router_kind_name(enum nsim_router_kind k) {
  return (unsigned)k < NSIM_ARRAY_LEN(nsim__kind_names) ? nsim__kind_names[k] : "?";
}

int nsim_router_kind_parse(const char *s, enum nsim_router_kind *out) {
  for (size_t i = 0; i < NSIM_ARRAY_LEN(nsim__kind_names); i++) {
    if (strcmp(s, nsim__kind_names[i]) == 0) {
      *out = (enum nsim_router_kind)i;
      return 0;
    }
  }
  return -EINVAL;
}

int nsim_router_kind_nats(enum nsim_router_kind k) { return k != NSIM_ROUTER_PUBLIC; }
int nsim_router_kind_maps(enum nsim_router_kind k) {
  return k == NSIM_ROUTER_UPNP || k == NSIM_ROUTER_NATPMP;
}

static const char *const nsim__mapping_names[] = {
    [NSIM_MAP_EIM] = "eim", [NSIM_MAP_ADM] = "adm", [NSIM_MAP_APDM] = "apdm"};
static const char *const nsim__filtering_names[] = {
    [NSIM_FILT_EIF] = "eif", [NSIM_FILT_ADF] = "adf", [NSIM_FILT_APDF] = "apdf"};

const char *nsim_mapping_name(enum nsim_mapping m) {
  return (unsigned)m < NSIM_ARRAY_LEN(nsim__mapping_names) ? nsim__mapping_names[m] : "?";
}
int nsim_mapping_parse(const char *s, enum nsim_mapping *out) {
  for (size_t i = 0; i < NSIM_ARRAY_LEN(nsim__mapping_names); i++)
    if (!strcmp(s, nsim__mapping_names[i])) return *out = (enum nsim_mapping)i, 0;
  return -EINVAL;
}
const char *nsim_filtering_name(enum nsim_filtering f) {
  return (unsigned)f < NSIM_ARRAY_LEN(nsim__filtering_names) ? nsim__filtering_names[f] : "?";
}
int nsim_filtering_parse(const char *s, enum nsim_filtering *out) {
  for (size_t i = 0; i < NSIM_ARRAY_LEN(nsim__filtering_names); i++)
    if (!strcmp(s, nsim__filtering_names[i])) return *out = (enum nsim_filtering)i, 0;
  return -EINVAL;
}

/* The presets: what each kind was before behaviours could be chosen (router.c built them
 * from the kind), so every file written before keeps its meaning. */
void nsim_router_kind_preset(enum nsim_router_kind k, struct nsim_node *n) {
  n->filtering = NSIM_FILT_APDF;
  n->mapping = k == NSIM_ROUTER_SYMMETRIC ? NSIM_MAP_APDM : NSIM_MAP_EIM;
  n->port_preserve = k != NSIM_ROUTER_SYMMETRIC;
}

int nsim_router_behaviour_check(const struct nsim_node *n, char *err, size_t errlen) {
  if (n->mapping == NSIM_MAP_ADM) {
    snprintf(err, errlen, "router %s: mapping=\"adm\" (address-dependent) cannot be "
             "built: Linux NAT chooses an external port per connection (apdm) or keeps the inner "
             "one (eim), never one per remote address; use eim or apdm", n->name);
    return -EINVAL;
  }
  if (n->mapping == NSIM_MAP_EIM && !n->port_preserve) {
    snprintf(err, errlen, "router %s: mapping=\"eim\" with port-preservation=\"off\" "
             "cannot be built: without keeping the inner port, Linux masquerade picks a port "
             "per connection (that is apdm); use port-preservation=\"on\"", n->name);
    return -EINVAL;
  }
  if (n->mapping == NSIM_MAP_APDM && n->port_preserve) {
    snprintf(err, errlen, "router %s: mapping=\"apdm\" with port-preservation=\"on\" "
             "cannot be built: a masquerade that keeps the inner port keeps it towards every "
             "destination (that is eim); use port-preservation=\"off\"", n->name);
    return -EINVAL;
  }
  if (n->mapping != NSIM_MAP_EIM && n->filtering != NSIM_FILT_APDF) {
    snprintf(err, errlen, "router %s: filtering=\"%s\" needs mapping=\"eim\": netsim "
             "lets inbound packets through by forwarding the external port to the inner "
             "socket, which needs one external port per inner socket", n->name,
             nsim_filtering_name(n->filtering));
    return -EINVAL;
  }
  if (n->filtering != NSIM_FILT_APDF && nsim_router_kind_maps(n->kind)) {
    snprintf(err, errlen, "router %s: filtering=\"%s\" on a %s router is not "
             "supported (miniupnpd's forwarding and netsim's would both claim inbound ports); "
             "use kind=\"firewall\" with the behaviours you want", n->name,
             nsim_filtering_name(n->filtering), nsim_router_kind_name(n->kind));
    return -EINVAL;
  }
  return 0;
}

const char *nsim_router_behaviour_str(const struct nsim_node *n, char *buf, size_t len) {
  snprintf(buf, len, "%s/%s/pp-%s", nsim_mapping_name(n->mapping),
           nsim_filtering_name(n->filtering), n->port_preserve ? "on" : "off");
  return buf;
}

uint32_t nsim_mask(uint8_t plen) { return plen == 0 ? 0 : 0xffffffffu << (32 - plen); }

int nsim_ip_parse(const char *s, uint32_t *out) {
  struct in_addr a;
  if (inet_pton(AF_INET, s, &a) != 1) return -EINVAL;
  *out = ntohl(a.s_addr);
  return 0;
}

int nsim_prefix_parse(const char *s, uint32_t *net, uint8_t *plen) {
  char buf[32];
  const char *slash = strchr(s, '/');
  if (!slash || (size_t)(slash - s) >= sizeof buf) return -EINVAL;
  memcpy(buf, s, (size_t)(slash - s));
  buf[slash - s] = 0;
  char *end;
  long l = strtol(slash + 1, &end, 10);
  if (*end || end == slash + 1 || l < 8 || l > 30) return -EINVAL;
  uint32_t ip;
  if (nsim_ip_parse(buf, &ip) < 0) return -EINVAL;
  if (ip & ~nsim_mask((uint8_t)l)) return -EINVAL; /* host bits set: ambiguous */
  *net = ip;
  *plen = (uint8_t)l;
  return 0;
}

const char *nsim_ip_str(uint32_t ip, char buf[16]) {
  snprintf(buf, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
  return buf;
}

int nsim_ip6_parse(const char *s, uint8_t out[16]) {
  return inet_pton(AF_INET6, s, out) == 1 ? 0 : -EINVAL;
}

int nsim_prefix6_parse(const char *s, uint8_t net[16]) {
  char buf[64];
  const char *slash = strchr(s, '/');
  if (!slash || (size_t)(slash - s) >= sizeof buf || strcmp(slash + 1, "64")) return -EINVAL;
  memcpy(buf, s, (size_t)(slash - s));
  buf[slash - s] = 0;
  uint8_t ip[16];
  if (nsim_ip6_parse(buf, ip) < 0) return -EINVAL;
  for (int i = 8; i < 16; i++)
    if (ip[i]) return -EINVAL; /* host bits set */
  memcpy(net, ip, 16);
  return 0;
}

const char *nsim_ip6_str(const uint8_t ip[16], char buf[NSIM_IP6_STRLEN]) {
  if (!inet_ntop(AF_INET6, ip, buf, NSIM_IP6_STRLEN)) snprintf(buf, NSIM_IP6_STRLEN, "?");
  return buf;
}

static const uint8_t nsim__v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int nsim_addr_parse(const char *s, struct nsim_endpoint *ep) {
  char buf[64];
  size_t len = strlen(s);
  memset(ep, 0, sizeof *ep);
  if (len >= 2 && s[0] == '[' && s[len - 1] == ']') s++, len -= 2;
  if (len == 0 || len >= sizeof buf) return -EINVAL;
  memcpy(buf, s, len);
  buf[len] = 0;
  if (nsim_ip_parse(buf, &ep->ip4) == 0) return ep->family = AF_INET, 0;
  if (nsim_ip6_parse(buf, ep->ip6) < 0) return -EINVAL;
  if (!memcmp(ep->ip6, nsim__v4mapped, 12)) {
    ep->family = AF_INET;
    ep->ip4 = (uint32_t)ep->ip6[12] << 24 | (uint32_t)ep->ip6[13] << 16 |
              (uint32_t)ep->ip6[14] << 8 | ep->ip6[15];
    memset(ep->ip6, 0, 16);
    return 0;
  }
  ep->family = AF_INET6;
  return 0;
}

int nsim_endpoint_parse(const char *s, struct nsim_endpoint *ep) {
  const char *colon = strrchr(s, ':');
  char host[64];
  if (!colon || (size_t)(colon - s) >= sizeof host || colon == s) return -EINVAL;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = 0;
  /* An IPv6 address with a port must be bracketed, or its last group would read as the port. */
  if (strchr(host, ':') && host[0] != '[') return -EINVAL;
  char *end;
  unsigned long port = strtoul(colon + 1, &end, 10);
  if (end == colon + 1 || *end || colon[1] == '-' || colon[1] == '+' || port < 1 || port > 65535)
    return -EINVAL;
  if (nsim_addr_parse(host, ep) < 0) return -EINVAL;
  if (host[0] == '[' && ep->family == AF_INET && !strchr(host, ':')) return -EINVAL; /* "[1.2.3.4]" */
  ep->port = (uint16_t)port;
  return 0;
}

int nsim_addr_equal(const struct nsim_endpoint *a, const struct nsim_endpoint *b) {
  if (a->family != b->family) return 0;
  return a->family == AF_INET ? a->ip4 == b->ip4 : !memcmp(a->ip6, b->ip6, 16);
}

const char *nsim_endpoint_str(const struct nsim_endpoint *ep, char buf[NSIM_ENDPOINT_STRLEN]) {
  char a[NSIM_IP6_STRLEN];
  if (ep->family == AF_INET6) {
    nsim_ip6_str(ep->ip6, a);
    if (ep->port) snprintf(buf, NSIM_ENDPOINT_STRLEN, "[%s]:%u", a, ep->port);
    else snprintf(buf, NSIM_ENDPOINT_STRLEN, "%s", a);
  } else {
    nsim_ip_str(ep->ip4, a);
    if (ep->port) snprintf(buf, NSIM_ENDPOINT_STRLEN, "%s:%u", a, ep->port);
    else snprintf(buf, NSIM_ENDPOINT_STRLEN, "%s", a);
  }
  return buf;
}

static const char *const nsim__family_names[] = {
    [NSIM_FAM_IPV4] = "ipv4", [NSIM_FAM_DUAL] = "dual", [NSIM_FAM_IPV6] = "ipv6"};

const char *nsim_family_name(enum nsim_family f) {
  return (unsigned)f < NSIM_ARRAY_LEN(nsim__family_names) ? nsim__family_names[f] : "?";
}

int nsim_family_parse(const char *s, enum nsim_family *out) {
  for (size_t i = 0; i < NSIM_ARRAY_LEN(nsim__family_names); i++)
    if (!strcmp(s, nsim__family_names[i])) return *out = (enum nsim_family)i, 0;
  return -EINVAL;
}

static int nsim__overlap(uint32_t a, uint8_t al, uint32_t b, uint8_t bl) {
  uint8_t l = al < bl ? al : bl;
  return ((a ^ b) & nsim_mask(l)) == 0;
}

static int nsim__in(uint32_t ip, uint32_t net, uint8_t plen) {
  return ((ip ^ net) & nsim_mask(plen)) == 0;
}

/* A usable host address inside the segment: not the network or broadcast address. */
static int nsim__host_in(uint32_t ip, uint32_t net, uint8_t plen) {
  uint32_t host = ip & ~nsim_mask(plen);
  return nsim__in(ip, net, plen) && host != 0 && host != ~nsim_mask(plen);
}

/* Special ranges that make no sense as the simulated internet: they never leave a host
 * (loopback, this-network, link-local) or are not unicast. */
static int nsim__bad_inet(uint32_t net, uint8_t plen) {
  static const struct { const char *p; } bad[] = {
      {"0.0.0.0/8"}, {"127.0.0.0/8"}, {"169.254.0.0/16"}, {"224.0.0.0/4"}, {"240.0.0.0/4"}};
  for (size_t i = 0; i < NSIM_ARRAY_LEN(bad); i++) {
    uint32_t bn;
    uint8_t bl;
    nsim_prefix_parse(bad[i].p, &bn, &bl);
    if (nsim__overlap(net, plen, bn, bl)) return 1;
  }
  return 0;
}

static int nsim__addr_taken(const struct nsim_topo *t, int upto, int self, uint32_t ip, int parent) {
  for (int i = 0; i < upto; i++)
    if (i != self && t->nodes[i].parent == parent && t->nodes[i].addr == ip) return 1;
  return 0;
}

/* Segments a node's packets cross on their way out: its uplink and every ancestor's. A LAN
 * overlapping one of them would make the router's routing ambiguous. */
static int nsim__lan_conflicts(const struct nsim_topo *t, int r, char *err, size_t errlen) {
  const struct nsim_node *n = &t->nodes[r];
  char a[16];
  if (nsim__overlap(n->lan_net, n->lan_plen, t->inet_net, t->inet_plen)) {
    snprintf(err, errlen, "line %d: router %s: LAN %s/%u overlaps the internet segment", n->line,
             n->name, nsim_ip_str(n->lan_net, a), n->lan_plen);
    return -EINVAL;
  }
  for (int p = n->parent; p >= 0; p = t->nodes[p].parent) {
    const struct nsim_node *pn = &t->nodes[p];
    if (nsim__overlap(n->lan_net, n->lan_plen, pn->lan_net, pn->lan_plen)) {
      snprintf(err, errlen, "line %d: router %s: LAN %s/%u overlaps the LAN of %s above it",
               n->line, n->name, nsim_ip_str(n->lan_net, a), n->lan_plen, pn->name);
      return -EINVAL;
    }
  }
  /* Public LANs are routed by everything above them, so they must be unique everywhere. */
  if (n->kind == NSIM_ROUTER_PUBLIC) {
    for (int i = 0; i < t->nnodes; i++) {
      const struct nsim_node *o = &t->nodes[i];
      if (i == r || !o->is_router) continue;
      if (nsim__overlap(n->lan_net, n->lan_plen, o->lan_net, o->lan_plen)) {
        snprintf(err, errlen, "line %d: public router %s: LAN overlaps the LAN of %s", n->line,
                 n->name, o->name);
        return -EINVAL;
      }
    }
  }
  return 0;
}

static int nsim__auto_lans(struct nsim_topo *t, char *err, size_t errlen) {
  /* Public LANs come from the internet's neighbourhood (11.0.N.0/24 by default) and NAT
   * LANs from 192.168.N.0/24, N counting routers, so automatic plans never overlap. */
  int n_pub = 0, n_nat = 0;
  for (int i = 0; i < t->nnodes; i++) {
    struct nsim_node *n = &t->nodes[i];
    if (!n->is_router || n->lan_plen) continue;
    if (n->kind == NSIM_ROUTER_PUBLIC) {
      uint32_t base = t->inet_net & nsim_mask(16);
      n->lan_net = base | (uint32_t)(((t->inet_net >> 8) & 255) + 1 + n_pub++) << 8;
      if (((n->lan_net >> 8) & 255) == 0) {
        snprintf(err, errlen, "line %d: router %s: give it a lan=\"...\"", n->line, n->name);
        return -EINVAL;
      }
    } else {
      n->lan_net = (192u << 24) | (168u << 16) | (uint32_t)(1 + n_nat++) << 8;
    }
    n->lan_plen = 24;
  }
  return 0;
}

/* The interface id of an IPv6 address: the IPv4 host part's decimal digits read as hex, so
 * 11.0.0.3 goes with 2001:db8:11::3 and 192.168.1.10 with 2001:db8:11:1::10. Distinct
 * host parts give distinct ids. */
static void nsim__iid(uint8_t out[16], const uint8_t net[16], uint32_t host) {
  char dec[16];
  snprintf(dec, sizeof dec, "%u", host);
  uint64_t iid = strtoull(dec, NULL, 16);
  memcpy(out, net, 8);
  for (int i = 15; i >= 8; i--, iid >>= 8) out[i] = (uint8_t)(iid & 255);
}

/* What a node's family may be: within its router's (a router's family is what its LAN
 * offers), and the kinds and features that only mean something with IPv4. */
static int nsim__check_family(const struct nsim_topo *t, int i, char *err, size_t errlen) {
  const struct nsim_node *n = &t->nodes[i];
  if (n->parent >= 0) {
    const struct nsim_node *p = &t->nodes[n->parent];
    if ((nsim_family_has4(n->family) && !nsim_family_has4(p->family)) ||
        (nsim_family_has6(n->family) && !nsim_family_has6(p->family))) {
      snprintf(err, errlen, "line %d: %s has family %s, but its router %s offers only %s "
               "(family=\"%s\"); give %s family=\"dual\" or %s another family", n->line,
               n->name, nsim_family_name(n->family), p->name,
               p->family == NSIM_FAM_IPV4 ? "IPv4" : "IPv6", nsim_family_name(p->family),
               p->name, n->name);
      return -EINVAL;
    }
  }
  if (!n->is_router || nsim_family_has4(n->family)) return 0;
  if (nsim_router_kind_maps(n->kind)) {
    snprintf(err, errlen, "line %d: router %s: kind %s needs IPv4 (miniupnpd maps IPv4 ports); "
             "use family=\"dual\", or kind firewall for an IPv6-only router", n->line, n->name,
             nsim_router_kind_name(n->kind));
    return -EINVAL;
  }
  if (n->hairpin) {
    snprintf(err, errlen, "line %d: router %s: hairpin is about IPv4 NAT, and an ipv6 router "
             "has no NAT (IPv6 is routed)", n->line, n->name);
    return -EINVAL;
  }
  return 0;
}

/* The IPv6 plan: the internet6 /64 with the core at ::1; every router with IPv6 gets the
 * /64 whose fourth group is the internet's plus N (N counting such routers in document
 * order: 2001:db8:11:1::/64, 2001:db8:11:2::/64, ...); interface ids follow the IPv4 plan. */
static int nsim__plan6(struct nsim_topo *t, char *err, size_t errlen) {
  char a[NSIM_IP6_STRLEN];
  t->has_v6 = 0;
  for (int i = 0; i < t->nnodes; i++) t->has_v6 |= nsim_family_has6(t->nodes[i].family);
  if (!t->has_v6) return 0;
  /* Global unicast (2000::/3) or unique local (fc00::/7): never loopback, link-local,
   * multicast, v4-mapped or unspecified. */
  if ((t->inet6_net[0] & 0xe0) != 0x20 && (t->inet6_net[0] & 0xfe) != 0xfc) {
    snprintf(err, errlen, "internet6 prefix %s/64 is not global unicast (2000::/3) or unique "
             "local (fc00::/7) space", nsim_ip6_str(t->inet6_net, a));
    return -EINVAL;
  }
  memcpy(t->inet6_core, t->inet6_net, 16);
  t->inet6_core[15] = 1;
  unsigned base = (unsigned)t->inet6_net[6] << 8 | t->inet6_net[7], k = 0;
  for (int i = 0; i < t->nnodes; i++) {
    struct nsim_node *n = &t->nodes[i];
    if (!n->is_router || !nsim_family_has6(n->family)) continue;
    unsigned g = base + ++k;
    if (g > 0xffff) {
      snprintf(err, errlen, "line %d: router %s: no /64 left after internet6 %s/64 (its fourth "
               "group is too high)", n->line, n->name, nsim_ip6_str(t->inet6_net, a));
      return -EINVAL;
    }
    memcpy(n->lan6_net, t->inet6_net, 16);
    n->lan6_net[6] = (uint8_t)(g >> 8), n->lan6_net[7] = (uint8_t)g;
    nsim__iid(n->lan6_addr, n->lan6_net, n->lan_addr & ~nsim_mask(n->lan_plen));
  }
  for (int i = 0; i < t->nnodes; i++) {
    struct nsim_node *n = &t->nodes[i];
    if (!nsim_family_has6(n->family)) continue;
    const struct nsim_node *p = n->parent >= 0 ? &t->nodes[n->parent] : NULL;
    nsim__iid(n->addr6, p ? p->lan6_net : t->inet6_net, n->addr & ~nsim_mask(n->up_plen));
    memcpy(n->gw6, p ? p->lan6_addr : t->inet6_core, 16);
  }
  return 0;
}

int nsim_topo_finish(struct nsim_topo *t, char *err, size_t errlen) {
  char a[16];
  for (int i = 0; i < t->nnodes; i++)
    if (nsim__check_family(t, i, err, errlen) < 0) return -EINVAL;
  if (nsim__bad_inet(t->inet_net, t->inet_plen)) {
    snprintf(err, errlen, "internet prefix %s/%u is not plain unicast space",
             nsim_ip_str(t->inet_net, a), t->inet_plen);
    return -EINVAL;
  }
  t->inet_core = t->inet_net + 1;
  if (!t->next_inet) t->next_inet = 2;
  if (nsim__auto_lans(t, err, errlen) < 0) return -EINVAL;

  for (int i = 0; i < t->nnodes; i++) {
    struct nsim_node *n = &t->nodes[i];
    if (n->is_router) {
      if (!n->lan_addr) n->lan_addr = n->lan_net + 1;
      if (!nsim__host_in(n->lan_addr, n->lan_net, n->lan_plen)) {
        snprintf(err, errlen, "line %d: router %s: LAN address outside its LAN", n->line, n->name);
        return -EINVAL;
      }
      if (!n->next_host) n->next_host = 10;
      if (nsim__lan_conflicts(t, i, err, errlen) < 0) return -EINVAL;
    }
  }
  /* Uplink addresses, in document order so automatic plans are predictable. */
  for (int i = 0; i < t->nnodes; i++) {
    struct nsim_node *n = &t->nodes[i];
    uint32_t net, gw;
    uint8_t plen;
    int *next;
    if (n->parent < 0) {
      net = t->inet_net, plen = t->inet_plen, gw = t->inet_core, next = &t->next_inet;
    } else {
      struct nsim_node *p = &t->nodes[n->parent];
      net = p->lan_net, plen = p->lan_plen, gw = p->lan_addr, next = &p->next_host;
    }
    n->gw = gw;
    n->up_plen = plen;
    if (!n->addr) {
      do {
        n->addr = net + (uint32_t)(*next)++;
      } while ((n->addr == gw || nsim__addr_taken(t, t->nnodes, i, n->addr, n->parent)) &&
               nsim__host_in(n->addr, net, plen));
    }
    if (!nsim__host_in(n->addr, net, plen)) {
      snprintf(err, errlen, "line %d: %s: address %s is not a host address of %s/%u (or the "
               "segment is full)", n->line, n->name, nsim_ip_str(n->addr, a), nsim_ip_str(net, (char[16]){0}), plen);
      return -EINVAL;
    }
    if (n->addr == gw || nsim__addr_taken(t, i, i, n->addr, n->parent)) {
      snprintf(err, errlen, "line %d: %s: address %s is already used on its segment", n->line,
               n->name, nsim_ip_str(n->addr, a));
      return -EINVAL;
    }
  }
  return nsim__plan6(t, err, errlen);
}

int nsim_topo_addr_ref(const struct nsim_topo *t, const char *ref, char *val, size_t vlen,
                       char *why, size_t whylen) {
  const char *colon = strchr(ref, ':');
  if (!colon) return -EINVAL;
  size_t kl = (size_t)(colon - ref);
  int v6 = (kl == 3 && !strncmp(ref, "ip6", 3)) || (kl == 4 && !strncmp(ref, "lan6", 4));
  int lan = (kl == 3 && !strncmp(ref, "lan", 3)) || (kl == 4 && !strncmp(ref, "lan6", 4));
  if (!v6 && !lan && !(kl == 2 && !strncmp(ref, "ip", 2)) && !(kl == 3 && !strncmp(ref, "wan", 3)))
    return -EINVAL;
  int idx = nsim_topo_find(t, colon + 1);
  if (idx < 0) return snprintf(why, whylen, "${%s}: no node is called %s", ref, colon + 1), -EINVAL;
  const struct nsim_node *n = &t->nodes[idx];
  if (lan && !n->is_router)
    return snprintf(why, whylen, "${%s}: %s is not a router", ref, n->name), -EINVAL;
  char a[NSIM_IP6_STRLEN];
  if (v6) {
    if (!nsim_family_has6(n->family))
      return snprintf(why, whylen, "${%s}: %s has no IPv6 address (family %s; give it "
                      "family=\"dual\" or \"ipv6\")", ref, n->name, nsim_family_name(n->family)),
             -EINVAL;
    return snprintf(val, vlen, "%s", nsim_ip6_str(lan ? n->lan6_addr : n->addr6, a)), 0;
  }
  if (!nsim_family_has4(n->family))
    return snprintf(why, whylen, "${%s}: %s is ipv6-only and has no IPv4 address; use "
                    "${%s6:%s}", ref, n->name, lan ? "lan" : "ip", n->name), -EINVAL;
  return snprintf(val, vlen, "%s", nsim_ip_str(lan ? n->lan_addr : n->addr, a)), 0;
}
