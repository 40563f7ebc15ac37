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

int nsim_topo_finish(struct nsim_topo *t, char *err, size_t errlen) {
  char a[16];
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
  return 0;
}
