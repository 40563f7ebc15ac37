/* parse: a netsim XML file into a struct nsim_scenario. Strict: every element and attribute
 * must be known, so a typo is an error that names the file and line rather than a setting
 * that silently does nothing. Goes through nm_xml (no network, no DTD, no entities, capped). */
#include "redis.h"
#include "scenario.h"
#include "util.h"

#include "nm_xml.h"

#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nsim__ctx {
  const char *path;
  struct nsim_scenario *sc;
  char *err;
  size_t errlen;
};

static int nsim__fail(struct nsim__ctx *c, xmlNode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int nsim__fail(struct nsim__ctx *c, xmlNode *n, const char *fmt, ...) {
  char msg[640];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(c->err, c->errlen, "%s:%ld: %s", c->path, n ? xmlGetLineNo(n) : 0L, msg);
  return -EINVAL;
}

static int nsim__is(xmlNode *n, const char *name) {
  return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

/* Attributes and elements that would tie a simulated node to a real interface or to the
 * host's namespace. None of them exists in netsim's schema; they get their own message so a
 * user learns that this is refused on purpose, not misspelt. */
static const char *const nsim__root_words[] = {"netns", "namespace", "interface", "ifname",
                                               "device", "dev", "bridge", "physdev",
                                               "host-interface", "macvlan", "ipvlan", "uplink"};

static int nsim__root_word(const char *s) {
  for (size_t i = 0; i < NSIM_ARRAY_LEN(nsim__root_words); i++)
    if (strcmp(s, nsim__root_words[i]) == 0) return 1;
  return 0;
}

static int nsim__check_attrs(struct nsim__ctx *c, xmlNode *n, const char *const *allowed) {
  for (xmlAttr *a = n->properties; a; a = a->next) {
    const char *an = (const char *)a->name;
    int ok = 0;
    for (const char *const *p = allowed; *p; p++)
      if (strcmp(*p, an) == 0) ok = 1;
    if (ok) continue;
    if (nsim__root_word(an))
      return nsim__fail(c, n, "attribute %s would attach <%s> to a real interface or to the "
                        "host's own network namespace; netsim refuses that (every link it "
                        "builds stays between its own namespaces)", an, (const char *)n->name);
    return nsim__fail(c, n, "unknown attribute %s on <%s>", an, (const char *)n->name);
  }
  return 0;
}

static int nsim__duration(struct nsim__ctx *c, xmlNode *n, const char *attr, long *out) {
  const char *v = nm_xml_attr(n, attr);
  if (!v) return 0;
  if (nsim_parse_duration(v, out) < 0)
    return nsim__fail(c, n, "%s=\"%s\": expected a duration like 500ms or 2s", attr, v);
  return 1;
}

static int nsim__bool(struct nsim__ctx *c, xmlNode *n, const char *attr, int *out) {
  const char *v = nm_xml_attr(n, attr);
  if (!v) return 0;
  if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true")) *out = 1;
  else if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false")) *out = 0;
  else return nsim__fail(c, n, "%s=\"%s\": expected on or off", attr, v);
  return 1;
}

static int nsim__rate(const char *s, unsigned *kbit) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || v <= 0) return -EINVAL;
  double mult;
  if (!strcmp(end, "kbit")) mult = 1;
  else if (!strcmp(end, "mbit")) mult = 1000;
  else if (!strcmp(end, "gbit")) mult = 1000000;
  else return -EINVAL;
  if (v * mult > 10e6 || v * mult < 8) return -ERANGE;
  *kbit = (unsigned)(v * mult);
  return 0;
}

static int nsim__linkcond(struct nsim__ctx *c, xmlNode *n, struct nsim_linkcond *lc) {
  int rc;
  if ((rc = nsim__duration(c, n, "delay", &lc->delay_ms)) < 0) return rc;
  if ((rc = nsim__duration(c, n, "jitter", &lc->jitter_ms)) < 0) return rc;
  const char *v = nm_xml_attr(n, "loss");
  if (v && nsim_parse_percent(v, &lc->loss_permille) < 0)
    return nsim__fail(c, n, "loss=\"%s\": expected a percentage like 2%% or 0.5%%", v);
  v = nm_xml_attr(n, "rate");
  if (v && nsim__rate(v, &lc->rate_kbit) < 0)
    return nsim__fail(c, n, "rate=\"%s\": expected e.g. 512kbit, 10mbit (8kbit..10gbit)", v);
  return 0;
}

/* ---- topology ------------------------------------------------------------------------- */

static const char *const nsim__host_attrs[] = {"name", "address", "family", "delay", "jitter",
                                               "loss", "rate", NULL};
static const char *const nsim__router_attrs[] = {"name", "kind", "hairpin", "address", "family",
                                                 "lan", "lan-address", "delay", "jitter", "loss",
                                                 "rate", "mapping", "filtering",
                                                 "port-preservation", "unsolicited", NULL};

static int nsim__parse_node(struct nsim__ctx *c, xmlNode *n, int parent) {
  struct nsim_topo *t = &c->sc->topo;
  int is_router = nsim__is(n, "router");
  if (!is_router && !nsim__is(n, "host")) {
    if (nsim__root_word((const char *)n->name))
      return nsim__fail(c, n, "<%s> would connect the topology to a real interface or the "
                        "host's own namespace; netsim refuses that", (const char *)n->name);
    return nsim__fail(c, n, "unknown element <%s> in a topology (expected host or router)",
                      (const char *)n->name);
  }
  if (nsim__check_attrs(c, n, is_router ? nsim__router_attrs : nsim__host_attrs) < 0)
    return -EINVAL;
  if (t->nnodes >= NSIM_MAX_NODES)
    return nsim__fail(c, n, "too many nodes (the limit is %s)", "48");
  const char *name = nm_xml_attr(n, "name");
  if (!name) return nsim__fail(c, n, "<%s> needs a name", (const char *)n->name);
  char why[160];
  if (nsim_topo_check_name(name, why, sizeof why) < 0) return nsim__fail(c, n, "%s", why);
  if (nsim_topo_find(t, name) >= 0) return nsim__fail(c, n, "node %s is defined twice", name);

  int idx = t->nnodes++;
  struct nsim_node *nd = &t->nodes[idx];
  memset(nd, 0, sizeof *nd);
  snprintf(nd->name, sizeof nd->name, "%s", name);
  nd->is_router = is_router;
  nd->parent = parent;
  nd->line = (int)xmlGetLineNo(n);
  int siblings = 0;
  for (int i = 0; i < idx; i++)
    if (t->nodes[i].parent == parent) siblings++;
  nd->port = siblings + 1;

  const char *v = nm_xml_attr(n, "family");
  if (v && nsim_family_parse(v, &nd->family) < 0)
    return nsim__fail(c, n, "family=\"%s\": expected ipv4, dual or ipv6", v);
  int v6only = nd->family == NSIM_FAM_IPV6;
  v = nm_xml_attr(n, "address");
  if (v && v6only)
    return nsim__fail(c, n, "address=\"%s\": %s is ipv6-only and has no IPv4 address (its IPv6 "
                      "address follows the plan, see check)", v, name);
  if (v && nsim_ip_parse(v, &nd->addr) < 0)
    return nsim__fail(c, n, "address=\"%s\" is not an IPv4 address", v);
  if (nsim__linkcond(c, n, &nd->cond) < 0) return -EINVAL;

  if (!is_router) {
    for (xmlNode *k = n->children; k; k = k->next)
      if (k->type == XML_ELEMENT_NODE)
        return nsim__fail(c, k, "a host has no children (<%s> inside host %s)",
                          (const char *)k->name, name);
    return 0;
  }
  /* kind is a preset of behaviours; mapping=, filtering= and port-preservation= change
   * them. A router given behaviours and no kind is a NAT without a mapping service. */
  int has_beh = nm_xml_attr(n, "mapping") || nm_xml_attr(n, "filtering") ||
                nm_xml_attr(n, "port-preservation");
  v = nm_xml_attr(n, "kind");
  if (!v && !has_beh)
    return nsim__fail(c, n, "router %s needs kind=\"public|upnp|natpmp|firewall|symmetric\" "
                      "or behaviours (mapping=, filtering=)", name);
  nd->kind = NSIM_ROUTER_FIREWALL;
  if (v && nsim_router_kind_parse(v, &nd->kind) < 0)
    return nsim__fail(c, n, "kind=\"%s\": expected public, upnp, natpmp, firewall or symmetric",
                      v);
  if (has_beh && !nsim_router_kind_nats(nd->kind))
    return nsim__fail(c, n, "mapping, filtering and port-preservation describe a NAT; router %s "
                      "is public (no NAT)", name);
  nsim_router_kind_preset(nd->kind, nd);
  int pp_given = nm_xml_attr(n, "port-preservation") != NULL;
  if ((v = nm_xml_attr(n, "mapping")) && nsim_mapping_parse(v, &nd->mapping) < 0)
    return nsim__fail(c, n, "mapping=\"%s\": expected eim, adm or apdm (RFC 4787 "
                      "endpoint-independent, address-dependent, address-and-port-dependent)", v);
  if ((v = nm_xml_attr(n, "filtering")) && nsim_filtering_parse(v, &nd->filtering) < 0)
    return nsim__fail(c, n, "filtering=\"%s\": expected eif, adf or apdf (RFC 4787 "
                      "endpoint-independent, address-dependent, address-and-port-dependent)", v);
  /* Port preservation follows the mapping unless given: Linux keeps the port exactly
   * when it maps endpoint-independently (router.c). */
  if (!pp_given) nd->port_preserve = nd->mapping == NSIM_MAP_EIM;
  else if (nsim__bool(c, n, "port-preservation", &nd->port_preserve) < 0) return -EINVAL;
  if (nsim_router_kind_nats(nd->kind)) {
    char bwhy[512];
    if (nsim_router_behaviour_check(nd, bwhy, sizeof bwhy) < 0) return nsim__fail(c, n, "%s", bwhy);
  }
  if (nsim__bool(c, n, "hairpin", &nd->hairpin) < 0) return -EINVAL;
  /* What an unsolicited TCP connection to the WAN address gets: a reset (the default, so a
   * client learns at once) or nothing ("stealth", as most home routers do). */
  if ((v = nm_xml_attr(n, "unsolicited"))) {
    if (!nsim_router_kind_nats(nd->kind))
      return nsim__fail(c, n, "unsolicited only means something on a NAT router (%s is public)", name);
    if (!strcmp(v, "drop")) nd->stealth = 1;
    else if (strcmp(v, "reset") != 0)
      return nsim__fail(c, n, "unsolicited=\"%s\": expected reset or drop", v);
  }
  if (nd->hairpin && !nsim_router_kind_nats(nd->kind))
    return nsim__fail(c, n, "hairpin only means something on a NAT router (%s is public)", name);
  if (v6only && (nm_xml_attr(n, "lan") || nm_xml_attr(n, "lan-address")))
    return nsim__fail(c, n, "lan and lan-address are IPv4; router %s is ipv6-only (its LAN /64 "
                      "comes from internet6)", name);
  if ((v = nm_xml_attr(n, "lan")) && nsim_prefix_parse(v, &nd->lan_net, &nd->lan_plen) < 0)
    return nsim__fail(c, n, "lan=\"%s\": expected a prefix like 192.168.1.0/24 (/8 to /30)", v);
  if ((v = nm_xml_attr(n, "lan-address")) && nsim_ip_parse(v, &nd->lan_addr) < 0)
    return nsim__fail(c, n, "lan-address=\"%s\" is not an IPv4 address", v);
  for (xmlNode *k = n->children; k; k = k->next) {
    if (k->type != XML_ELEMENT_NODE) continue;
    if (nsim__parse_node(c, k, idx) < 0) return -EINVAL;
  }
  return 0;
}

static int nsim__parse_topology(struct nsim__ctx *c, xmlNode *n) {
  static const char *const attrs[] = {"internet", "internet6", NULL};
  if (nsim__check_attrs(c, n, attrs) < 0) return -EINVAL;
  const char *v = nm_xml_attr(n, "internet");
  if (v && nsim_prefix_parse(v, &c->sc->topo.inet_net, &c->sc->topo.inet_plen) < 0)
    return nsim__fail(c, n, "internet=\"%s\": expected a prefix like 11.0.0.0/24", v);
  v = nm_xml_attr(n, "internet6");
  if (v && nsim_prefix6_parse(v, c->sc->topo.inet6_net) < 0)
    return nsim__fail(c, n, "internet6=\"%s\": expected a /64 like 2001:db8:11::/64", v);
  for (xmlNode *k = n->children; k; k = k->next) {
    if (k->type != XML_ELEMENT_NODE) continue;
    if (nsim__parse_node(c, k, -1) < 0) return -EINVAL;
  }
  if (c->sc->topo.nnodes == 0) return nsim__fail(c, n, "the topology has no nodes");
  char why[300];
  if (nsim_topo_finish(&c->sc->topo, why, sizeof why) < 0) {
    /* The plan check names the offending node's line as "line N: ..."; make it file:N: */
    int line, off = 0;
    if (sscanf(why, "line %d: %n", &line, &off) == 1 && off > 0) {
      snprintf(c->err, c->errlen, "%s:%d: %s", c->path, line, why + off);
      return -EINVAL;
    }
    return nsim__fail(c, n, "%s", why);
  }
  return 0;
}

/* ---- scenario steps -------------------------------------------------------------------- */

struct nsim__step_def {
  const char *element;
  enum nsim_step_kind kind;
  int is_assert;
  const char *const attrs[13];   /* allowed besides name and at */
  const char *const required[5];
};

static const struct nsim__step_def nsim__steps[] = {
    {"start", NSIM_STEP_START, 0, {"host", "cmd", "ready", "timeout", "stream"}, {"name", "host", "cmd"}},
    {"exec", NSIM_STEP_EXEC, 0, {"host", "cmd", "timeout", "exit", "show", "prefix"}, {"host", "cmd"}},
    {"wait-for", NSIM_STEP_WAIT_FOR, 0, {"process", "text", "regex", "timeout", "stream", "since", "count"}, {"process"}},
    {"send", NSIM_STEP_SEND, 0, {"process", "text"}, {"process", "text"}},
    {"kill", NSIM_STEP_KILL, 0, {"process", "signal", "timeout"}, {"process"}},
    {"restart", NSIM_STEP_RESTART, 0, {"process", "ready", "timeout"}, {"process"}},
    {"cut", NSIM_STEP_CUT, 0, {"node"}, {"node"}},
    {"restore", NSIM_STEP_RESTORE, 0, {"node"}, {"node"}},
    {"link", NSIM_STEP_LINK, 0, {"node", "delay", "jitter", "loss", "rate"}, {"node"}},
    {"sleep", NSIM_STEP_SLEEP, 0, {"time"}, {"time"}},
    {"expect-line", NSIM_STEP_EXPECT_LINE, 1, {"process", "text", "regex", "within", "stream", "absent", "since", "count", "exactly", "settle"}, {"process"}},
    {"expect-tcp", NSIM_STEP_EXPECT_TCP, 1, {"from", "to", "result", "within", "reply", "local-port"}, {"from", "to", "result"}},
    {"expect-udp-ports", NSIM_STEP_EXPECT_UDP_PORTS, 1, {"from", "servers", "local-port", "ports", "within"}, {"from", "servers", "ports"}},
    {"expect-mapping", NSIM_STEP_EXPECT_MAPPING, 1, {"router", "proto", "port", "to", "present", "within"}, {"router", "port"}},
    {"expect-exec", NSIM_STEP_EXPECT_EXEC, 1, {"host", "cmd", "exit", "text", "regex", "within"}, {"host", "cmd"}},
    {"expect-exit", NSIM_STEP_EXPECT_EXIT, 1, {"process", "exit", "within"}, {"process"}},
    {"expect-ctl", NSIM_STEP_EXPECT_CTL, 1, {"from", "manager", "servant", "state", "mapping", "present", "dial", "relay", "holder", "relay-counts", "within", "state-dir"}, {"from", "manager"}},
    {"measure", NSIM_STEP_MEASURE, 1, {"process", "text", "regex", "stream", "from", "unit", "within"}, {"name", "process", "from"}},
    {"restart-upnpd", NSIM_STEP_RESTART_UPNPD, 0, {"router", "flush", "timeout"}, {"router"}},
    {"reset-connection", NSIM_STEP_RESET_CONNECTION, 0, {"process", "to", "peer-notices"}, {"process", "to"}},
    {"capture", NSIM_STEP_CAPTURE, 0, {"max-size", "keep", "timeout"}, {"name"}},
    {"expect-capture", NSIM_STEP_EXPECT_CAPTURE, 1, {"capture", "absent-text", "text", "tls", "tls-connections", "tls-between"}, {"capture"}},
    {"narrate", NSIM_STEP_NARRATE, 0, {"process", "text", "regex", "stream", "prefix"}, {"process"}},
    {"say", NSIM_STEP_SAY, 0, {"text"}, {"text"}},
    {"redis", NSIM_STEP_REDIS, 0, {"host", "port", "replica-of", "timeout"}, {"name", "host"}},
    {"sentinel", NSIM_STEP_SENTINEL, 0, {"host", "port", "master", "quorum", "timeout"}, {"name", "host", "master", "quorum"}},
    {"managers-config", NSIM_STEP_MANAGERS_CONFIG, 0, {"file", "managers", "root", "form"}, {"file", "managers"}},
};

/* Steps that start a scenario process named by the step's name. */
static int nsim__starts_process(enum nsim_step_kind k) {
  return k == NSIM_STEP_START || k == NSIM_STEP_CAPTURE || k == NSIM_STEP_REDIS ||
         k == NSIM_STEP_SENTINEL;
}

const char *nsim_step_kind_name(enum nsim_step_kind k) {
  for (size_t i = 0; i < NSIM_ARRAY_LEN(nsim__steps); i++)
    if (nsim__steps[i].kind == k) return nsim__steps[i].element;
  return "?";
}

static int nsim__node_attr(struct nsim__ctx *c, xmlNode *n, const char *attr, int want_router,
                           int *out) {
  const char *v = nm_xml_attr(n, attr);
  if (!v) return 0;
  int idx = nsim_topo_find(&c->sc->topo, v);
  if (idx < 0) return nsim__fail(c, n, "%s=\"%s\" is not a node of the topology", attr, v);
  if (want_router && !c->sc->topo.nodes[idx].is_router)
    return nsim__fail(c, n, "%s=\"%s\" is not a router", attr, v);
  *out = idx;
  return 1;
}

static int nsim__signal(const char *s, int *out) {
  static const struct { const char *n; int s; } sigs[] = {
      {"TERM", SIGTERM}, {"KILL", SIGKILL}, {"INT", SIGINT}, {"HUP", SIGHUP},
      {"STOP", SIGSTOP}, {"CONT", SIGCONT}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}};
  if (!strncmp(s, "SIG", 3)) s += 3;
  for (size_t i = 0; i < NSIM_ARRAY_LEN(sigs); i++)
    if (!strcmp(s, sigs[i].n)) return *out = sigs[i].s, 0;
  return -EINVAL;
}

/* "16MB", "512KB", "1048576": bytes, from 64 KB to 1 GB. */
static int nsim__size(const char *s, long *out) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || v <= 0) return -EINVAL;
  double mult;
  if (!*end) mult = 1;
  else if (!strcmp(end, "KB") || !strcmp(end, "k")) mult = 1024;
  else if (!strcmp(end, "MB") || !strcmp(end, "M")) mult = 1024 * 1024;
  else if (!strcmp(end, "GB") || !strcmp(end, "G")) mult = 1024.0 * 1024 * 1024;
  else return -EINVAL;
  if (v * mult < 64 * 1024 || v * mult > 1024.0 * 1024 * 1024) return -ERANGE;
  *out = (long)(v * mult);
  return 0;
}

/* "A.B.C.D:PORT" or "[V6]:PORT" with a port 1..65535. */
static int nsim__literal_endpoint(const char *s) {
  struct nsim_endpoint ep;
  return nsim_endpoint_parse(s, &ep);
}

/* Address references in a step's attributes must name a node that has that address:
 * ${ip:NODE} of an ipv6-only node or ${ip6:NODE} of an ipv4 one is caught here, not when
 * the step runs. */
static int nsim__check_refs(struct nsim__ctx *c, xmlNode *n) {
  for (xmlAttr *a = n->properties; a; a = a->next) {
    const char *v = nm_xml_attr(n, (const char *)a->name);
    for (const char *p = v ? strstr(v, "${") : NULL; p; p = strstr(p + 2, "${")) {
      const char *end = strchr(p, '}');
      char ref[128], why[256];
      if (!end || (size_t)(end - p - 2) >= sizeof ref) break;
      memcpy(ref, p + 2, (size_t)(end - p - 2));
      ref[end - p - 2] = 0;
      char val[64];
      why[0] = 0;
      if (nsim_topo_addr_ref(&c->sc->topo, ref, val, sizeof val, why, sizeof why) < 0 && why[0])
        return nsim__fail(c, n, "%s=\"%s\": %s", (const char *)a->name, v, why);
    }
  }
  return 0;
}

/* <redis> and <sentinel>: the port (6379 and 26379 by default), and the <redis> step a
 * replica or a sentinel follows, which must come earlier and be a primary (replica-of
 * names one, not a replica: chains of replicas are not needed here). The host needs IPv4:
 * the managers and Sentinel take IPv4 literals. */
static int nsim__redis_step(struct nsim__ctx *c, xmlNode *n, struct nsim_step *st) {
  if (st->kind != NSIM_STEP_REDIS && st->kind != NSIM_STEP_SENTINEL) return 0;
  if (!nm_xml_attr(n, "port")) st->port = st->kind == NSIM_STEP_REDIS ? NSIM_REDIS_PORT : NSIM_SENTINEL_PORT;
  if (!nsim_family_has4(c->sc->topo.nodes[nsim_topo_find(&c->sc->topo, st->host)].family))
    return nsim__fail(c, n, "<%s> needs a host with IPv4 (%s is ipv6-only)",
                      nsim_step_kind_name(st->kind), st->host);
  const char *attr = st->kind == NSIM_STEP_REDIS ? "replica-of" : "master";
  const char *ref = nm_xml_attr(n, attr);
  if (st->kind == NSIM_STEP_SENTINEL) {
    int rc = nm_xml_attr_uint(n, "quorum", 1, 16, &st->quorum);
    if (rc < 0) return nsim__fail(c, n, "quorum: expected 1..16");
  }
  if (!ref) return 0;
  for (int i = 0; i < c->sc->nsteps; i++)
    if (c->sc->steps[i].kind == NSIM_STEP_REDIS && !strcmp(c->sc->steps[i].name, ref))
      st->ref_step = i;
  if (st->ref_step < 0)
    return nsim__fail(c, n, "%s=\"%s\": no earlier <redis> is named %s", attr, ref, ref);
  if (c->sc->steps[st->ref_step].ref_step >= 0)
    return nsim__fail(c, n, "%s=\"%s\": %s is a replica; name its primary", attr, ref, ref);
  return 0;
}

/* <managers-config>: a plain file name in the run folder, and the config's root element. */
static int nsim__managers_step(struct nsim__ctx *c, xmlNode *n, struct nsim_step *st) {
  if (st->kind != NSIM_STEP_MANAGERS_CONFIG) return 0;
  st->file = nm_xml_attr(n, "file");
  st->managers = nm_xml_attr(n, "managers");
  st->root = nm_xml_attr(n, "root");
  if (!st->root) st->root = "config";
  if (strcmp(st->root, "config") && strcmp(st->root, "relay"))
    return nsim__fail(c, n, "root=\"%s\": expected config (natmesh-servant) or relay (natmesh-relay)",
                      st->root);
  size_t fl = strlen(st->file);
  if (fl == 0 || fl > 64 || st->file[0] == '.' ||
      strspn(st->file, "abcdefghijklmnopqrstuvwxyz0123456789._-") != fl)
    return nsim__fail(c, n, "file=\"%s\": expected a file name in the run folder, "
                      "[a-z0-9._-], 1-64 characters, not starting with a dot", st->file);
  return 0;
}

static int nsim__parse_step(struct nsim__ctx *c, xmlNode *n, struct nsim_step *st) {
  const struct nsim__step_def *def = NULL;
  for (size_t i = 0; i < NSIM_ARRAY_LEN(nsim__steps); i++)
    if (nsim__is(n, nsim__steps[i].element)) def = &nsim__steps[i];
  if (!def) return nsim__fail(c, n, "unknown step <%s>", (const char *)n->name);

  const char *allowed[20];
  size_t na = 0;
  allowed[na++] = "name";
  allowed[na++] = "at";
  for (size_t i = 0; def->attrs[i]; i++) allowed[na++] = def->attrs[i];
  if (def->is_assert) allowed[na++] = "expected", allowed[na++] = "because", allowed[na++] = "after";
  allowed[na] = NULL;
  if (nsim__check_attrs(c, n, allowed) < 0) return -EINVAL;
  for (size_t i = 0; def->required[i]; i++)
    if (!nm_xml_attr(n, def->required[i]))
      return nsim__fail(c, n, "<%s> needs %s=\"...\"", def->element, def->required[i]);
  if (nsim__check_refs(c, n) < 0) return -EINVAL;

  memset(st, 0, sizeof *st);
  st->kind = def->kind;
  st->is_assert = def->is_assert;
  st->line = (int)xmlGetLineNo(n);
  st->at_ms = -1;
  st->node = -1;
  st->stream = NSIM_STREAM_BOTH;
  st->present = 1;
  st->sig = SIGTERM;
  st->after_step = -1;
  st->ref_step = -1;
  snprintf(st->auto_name, sizeof st->auto_name, "%s@line%d", def->element, st->line);
  st->name = nm_xml_attr(n, "name");
  if (!st->name) st->name = st->auto_name;
  if (nsim__duration(c, n, "at", &st->at_ms) < 0) return -EINVAL;
  const char *ex = nm_xml_attr(n, "expected");
  if (ex && strcmp(ex, "fail") && strcmp(ex, "pass"))
    return nsim__fail(c, n, "expected=\"%s\": expected pass (the default) or fail", ex);
  st->xfail = ex && !strcmp(ex, "fail");
  st->because = nm_xml_attr(n, "because");
  if (st->xfail && !st->because)
    return nsim__fail(c, n, "expected=\"fail\" needs because=\"...\" (what will make it hold)");

  st->process = nm_xml_attr(n, "process");
  st->host = nm_xml_attr(n, "host");
  if (!st->host && st->kind != NSIM_STEP_MEASURE) st->host = nm_xml_attr(n, "from");
  st->cmd = nm_xml_attr(n, "cmd");
  st->text = nm_xml_attr(n, "text");
  st->regex = nm_xml_attr(n, "regex");
  st->ready = nm_xml_attr(n, "ready");
  st->to = nm_xml_attr(n, "to");
  st->reply = nm_xml_attr(n, "reply");
  st->servers = nm_xml_attr(n, "servers");
  st->manager = nm_xml_attr(n, "manager");
  st->servant = nm_xml_attr(n, "servant");
  st->state = nm_xml_attr(n, "state");
  st->mapping = nm_xml_attr(n, "mapping");
  st->dial = nm_xml_attr(n, "dial");
  st->relay = nm_xml_attr(n, "relay");
  st->holder = nm_xml_attr(n, "holder");
  st->after = nm_xml_attr(n, "after");
  st->prefix = nm_xml_attr(n, "prefix");
  if (nsim__bool(c, n, "show", &st->show) < 0) return -EINVAL;
  if (st->prefix && strlen(st->prefix) > 40) return nsim__fail(c, n, "prefix: at most 40 characters");
  if (st->text && st->regex)
    return nsim__fail(c, n, "use text or regex, not both");
  if ((st->kind == NSIM_STEP_EXPECT_LINE || st->kind == NSIM_STEP_WAIT_FOR ||
       st->kind == NSIM_STEP_MEASURE) && !st->text && !st->regex)
    return nsim__fail(c, n, "<%s> needs text=\"...\" or regex=\"...\"", def->element);

  /* Default deadlines keep a forgotten attribute from hanging a run. */
  st->timeout_ms = st->kind == NSIM_STEP_EXEC || st->kind == NSIM_STEP_EXPECT_EXEC ? 10000 : 5000;
  if (nsim__duration(c, n, "timeout", &st->timeout_ms) < 0) return -EINVAL;
  if (nsim__duration(c, n, "within", &st->timeout_ms) < 0) return -EINVAL;
  if (st->kind == NSIM_STEP_SLEEP && nsim__duration(c, n, "time", &st->timeout_ms) < 0)
    return -EINVAL;
  if (st->kind == NSIM_STEP_EXPECT_TCP && !nm_xml_attr(n, "within")) st->timeout_ms = 2000;

  const char *v;
  if (st->host) {
    if (nsim_topo_find(&c->sc->topo, st->host) < 0)
      return nsim__fail(c, n, "host \"%s\" is not a node of the topology", st->host);
  }
  if (nsim__node_attr(c, n, "node", 0, &st->node) < 0) return -EINVAL;
  if (nsim__node_attr(c, n, "router", 1, &st->node) < 0) return -EINVAL;
  if ((st->kind == NSIM_STEP_EXPECT_MAPPING || st->kind == NSIM_STEP_RESTART_UPNPD) &&
      !nsim_router_kind_maps(c->sc->topo.nodes[st->node].kind))
    return nsim__fail(c, n, "router %s runs no mapping service (kind upnp or natpmp does)",
                      c->sc->topo.nodes[st->node].name);
  if (st->kind == NSIM_STEP_LINK && nsim__linkcond(c, n, &st->cond) < 0) return -EINVAL;

  if ((v = nm_xml_attr(n, "stream"))) {
    if (!strcmp(v, "stdout")) st->stream = NSIM_STREAM_OUT;
    else if (!strcmp(v, "stderr")) st->stream = NSIM_STREAM_ERR;
    else if (!strcmp(v, "both")) st->stream = NSIM_STREAM_BOTH;
    else return nsim__fail(c, n, "stream=\"%s\": expected stdout, stderr or both", v);
  }
  if (nsim__bool(c, n, "absent", &st->absent) < 0) return -EINVAL;
  if (nsim__bool(c, n, "present", &st->present) < 0) return -EINVAL;
  if ((v = nm_xml_attr(n, "since"))) {
    if (!strcmp(v, "now")) st->since_now = 1;
    else if (strcmp(v, "start")) return nsim__fail(c, n, "since=\"%s\": expected start or now", v);
  }
  if ((v = nm_xml_attr(n, "result"))) {
    if (!strcmp(v, "connect")) st->tcp_result = NSIM_TCP_CONNECT;
    else if (!strcmp(v, "fail")) st->tcp_result = NSIM_TCP_FAIL;
    else if (!strcmp(v, "refused")) st->tcp_result = NSIM_TCP_REFUSED;
    else if (!strcmp(v, "timeout")) st->tcp_result = NSIM_TCP_TIMEOUT;
    else return nsim__fail(c, n, "result=\"%s\": expected connect, fail, refused or timeout", v);
  }
  if ((v = nm_xml_attr(n, "ports"))) {
    if (!strcmp(v, "same")) st->same_ports = 1;
    else if (!strcmp(v, "different")) st->same_ports = 0;
    else return nsim__fail(c, n, "ports=\"%s\": expected same or different", v);
  }
  if ((v = nm_xml_attr(n, "proto"))) {
    if (!strcmp(v, "udp")) st->proto_udp = 1;
    else if (strcmp(v, "tcp")) return nsim__fail(c, n, "proto=\"%s\": expected tcp or udp", v);
  }
  int rc = nm_xml_attr_uint(n, "port", 1, 65535, &st->port);
  if (rc < 0 && rc != -ENOENT) return nsim__fail(c, n, "port: expected 1..65535");
  st->count = 1;
  rc = nm_xml_attr_uint(n, "count", 1, 10000, &st->count);
  if (rc < 0 && rc != -ENOENT) return nsim__fail(c, n, "count: expected 1..10000");
  rc = nm_xml_attr_uint(n, "local-port", 0, 65535, &st->local_port);
  if (rc < 0 && rc != -ENOENT) return nsim__fail(c, n, "local-port: expected 0..65535");
  unsigned code;
  rc = nm_xml_attr_uint(n, "exit", 0, 255, &code);
  if (rc < 0 && rc != -ENOENT) return nsim__fail(c, n, "exit: expected 0..255");
  if (rc == 0) st->has_exit = 1, st->exit_code = (int)code;
  if (st->kind == NSIM_STEP_EXEC && !st->has_exit) st->has_exit = 1; /* exit 0 expected */
  if ((v = nm_xml_attr(n, "signal")) && nsim__signal(v, &st->sig) < 0)
    return nsim__fail(c, n, "signal=\"%s\": expected TERM, KILL, INT, HUP, STOP, CONT, USR1 or USR2",
                      v);
  if (nsim__bool(c, n, "exactly", &st->exactly) < 0) return -EINVAL;
  st->settle_ms = 1000;
  if ((rc = nsim__duration(c, n, "settle", &st->settle_ms)) < 0) return -EINVAL;
  if (rc == 1 && !st->exactly)
    return nsim__fail(c, n, "settle only goes with exactly=\"yes\"");
  if (st->exactly && st->absent)
    return nsim__fail(c, n, "exactly and absent exclude each other (absent is exactly 0)");
  st->flush = 1;
  if (nsim__bool(c, n, "flush", &st->flush) < 0) return -EINVAL;
  if (st->kind == NSIM_STEP_RESTART_UPNPD && !nm_xml_attr(n, "timeout")) st->timeout_ms = 10000;
  if (st->kind == NSIM_STEP_MEASURE && !nm_xml_attr(n, "within")) st->timeout_ms = 60000;
  if ((v = nm_xml_attr(n, "unit"))) {
    if (nsim_parse_duration(v, &st->unit_ms) < 0 || st->unit_ms <= 0)
      return nsim__fail(c, n, "unit=\"%s\": expected a duration like 5s", v);
    st->unit = v;
  }
  if ((v = nm_xml_attr(n, "from")) && st->kind == NSIM_STEP_MEASURE) {
    const char *q;
    if (!strncmp(v, "start:", 6)) st->from_kind = NSIM_FROM_START, q = v + 6;
    else if (!strncmp(v, "line:", 5)) st->from_kind = NSIM_FROM_LINE, q = v + 5;
    else
      return nsim__fail(c, n, "from=\"%s\": expected start:PROCESS or line:PROCESS:TEXT", v);
    size_t ql = st->from_kind == NSIM_FROM_LINE && strchr(q, ':') ? (size_t)(strchr(q, ':') - q)
                                                                  : strlen(q);
    if (st->from_kind == NSIM_FROM_LINE) {
      if (!strchr(q, ':') || !q[ql + 1])
        return nsim__fail(c, n, "from=\"%s\": expected line:PROCESS:TEXT", v);
      st->from_text = q + ql + 1;
    }
    if (ql == 0 || ql >= sizeof st->from_buf)
      return nsim__fail(c, n, "from=\"%s\": no process name", v);
    memcpy(st->from_buf, q, ql);
    st->from_buf[ql] = 0;
    st->from_proc = st->from_buf;
  }
  if (st->kind == NSIM_STEP_EXPECT_CTL) {
    if ((v = nm_xml_attr(n, "relay-counts"))) {
      if (strcmp(v, "consistent"))
        return nsim__fail(c, n, "relay-counts=\"%s\": the only check is consistent", v);
      st->relay_counts = 1;
    }
    if (!st->servant && !st->relay_counts)
      return nsim__fail(c, n, "<expect-ctl> needs servant=\"...\" or relay-counts=\"consistent\"");
    if (!st->servant && (st->state || st->mapping || st->dial || st->relay || st->holder ||
                         nm_xml_attr(n, "present")))
      return nsim__fail(c, n, "state, mapping, dial, relay, holder and present are about a servant: "
                        "name it with servant=\"...\"");
  }
  if (st->kind == NSIM_STEP_RESET_CONNECTION) {
    st->peer_notices = 1;
    if (nsim__bool(c, n, "peer-notices", &st->peer_notices) < 0) return -EINVAL;
    /* ${...} is expanded when the step runs; a literal must be an endpoint already. */
    if (!strstr(st->to, "${") && nsim__literal_endpoint(st->to) < 0)
      return nsim__fail(c, n, "to=\"%s\": expected ADDR:PORT or [V6]:PORT (e.g. ${ip:mgr}:85, [${ip6:mgr}]:85)", st->to);
  }
  if (st->kind == NSIM_STEP_EXPECT_CTL) st->state_dir = nm_xml_attr(n, "state-dir");
  if (st->kind == NSIM_STEP_CAPTURE) {
    st->max_bytes = 16L * 1024 * 1024;
    if ((v = nm_xml_attr(n, "max-size")) && nsim__size(v, &st->max_bytes) < 0)
      return nsim__fail(c, n, "max-size=\"%s\": expected a size like 512KB or 16MB (64KB..1GB)", v);
    if (nsim__bool(c, n, "keep", &st->keep) < 0) return -EINVAL;
  }
  if (st->kind == NSIM_STEP_EXPECT_CAPTURE) {
    st->process = nm_xml_attr(n, "capture");
    st->absent_text = nm_xml_attr(n, "absent-text");
    st->tls_between = nm_xml_attr(n, "tls-between");
    if ((v = nm_xml_attr(n, "tls"))) {
      if (strcmp(v, "only"))
        return nsim__fail(c, n, "tls=\"%s\": the only check is only (every TCP payload is TLS 1.3)", v);
      st->tls_only = 1;
    }
    rc = nm_xml_attr_uint(n, "tls-connections", 1, 10000, &st->tls_conns);
    if (rc < 0 && rc != -ENOENT) return nsim__fail(c, n, "tls-connections: expected 1..10000");
    if ((st->absent_text && !st->absent_text[0]) || (st->text && !st->text[0]))
      return nsim__fail(c, n, "an empty text is in every capture and in none");
    if (!st->absent_text && !st->text && !st->tls_only && !st->tls_conns && !st->tls_between)
      return nsim__fail(c, n, "<expect-capture> needs something to check: absent-text, text, "
                        "tls=\"only\", tls-connections or tls-between");
  }
  if (nsim__redis_step(c, n, st) < 0 || nsim__managers_step(c, n, st) < 0) return -EINVAL;
  st->dnat_to = st->kind == NSIM_STEP_EXPECT_MAPPING ? st->to : NULL;
  if (nsim__starts_process(st->kind)) st->process = st->name;
  return 0;
}

/* A step names a process: one started by an earlier <start>, or a router's own daemon,
 * "miniupnpd@ROUTER", which can be watched (lines, measures) but not controlled. */
static int nsim__proc_ref(struct nsim__ctx *c, xmlNode *k, const char *name, int controls) {
  const struct nsim_scenario *sc = c->sc;
  if (strchr(name, '@')) {
    int r = nsim_topo_find(&sc->topo, strchr(name, '@') + 1);
    if (strncmp(name, "miniupnpd@", 10) || r < 0 || !nsim_router_kind_maps(sc->topo.nodes[r].kind))
      return nsim__fail(c, k, "process %s: the only daemons are miniupnpd@ROUTER on upnp and "
                        "natpmp routers", name);
    if (controls)
      return nsim__fail(c, k, "a router's daemon can be watched, not controlled (restart-upnpd "
                        "restarts it)");
    return 0;
  }
  int capture_only = sc->steps[sc->nsteps - 1].kind == NSIM_STEP_EXPECT_CAPTURE;
  for (int i = 0; i + 1 < sc->nsteps; i++)
    if ((sc->steps[i].kind == NSIM_STEP_CAPTURE ||
         (nsim__starts_process(sc->steps[i].kind) && sc->steps[i].kind != NSIM_STEP_CAPTURE &&
          !capture_only)) &&
        !strcmp(sc->steps[i].process, name))
      return 0;
  if (capture_only) return nsim__fail(c, k, "capture %s is not started by an earlier <capture>", name);
  return nsim__fail(c, k, "process %s is not started by an earlier <start>", name);
}

static int nsim__parse_scenario(struct nsim__ctx *c, xmlNode *n) {
  static const char *const attrs[] = {NULL};
  if (nsim__check_attrs(c, n, attrs) < 0) return -EINVAL;
  int count = 0;
  for (xmlNode *k = n->children; k; k = k->next)
    if (k->type == XML_ELEMENT_NODE) count++;
  if (count > 1000) return nsim__fail(c, n, "more than 1000 steps");
  struct nsim_step *steps = calloc((size_t)count + 1, sizeof *steps);
  if (!steps) return -ENOMEM;
  c->sc->steps = steps;
  for (xmlNode *k = n->children; k; k = k->next) {
    if (k->type != XML_ELEMENT_NODE) continue;
    struct nsim_step *st = &steps[c->sc->nsteps];
    if (nsim__parse_step(c, k, st) < 0) return -EINVAL;
    c->sc->nsteps++;
    /* Process names must be unique and known before they are used. */
    if (nsim__starts_process(st->kind)) {
      char why[160];
      if (nsim_topo_check_name(st->process, why, sizeof why) < 0)
        return nsim__fail(c, k, "process %s", why);
      for (int i = 0; i + 1 < c->sc->nsteps; i++)
        if (nsim__starts_process(steps[i].kind) &&
            !strcmp(steps[i].process, st->process))
          return nsim__fail(c, k, "process %s is started twice (use restart)", st->process);
    } else if (st->process) {
      int watch_only = st->kind != NSIM_STEP_EXPECT_LINE && st->kind != NSIM_STEP_WAIT_FOR &&
                       st->kind != NSIM_STEP_MEASURE && st->kind != NSIM_STEP_NARRATE;
      if (nsim__proc_ref(c, k, st->process, watch_only) < 0) return -EINVAL;
    }
    if (st->from_proc && nsim__proc_ref(c, k, st->from_proc, 0) < 0) return -EINVAL;
    /* after="STEP": the latest earlier step of that name. */
    if (st->after) {
      for (int i = c->sc->nsteps - 2; i >= 0 && st->after_step < 0; i--)
        if (!strcmp(steps[i].name, st->after)) st->after_step = i;
      if (st->after_step < 0)
        return nsim__fail(c, k, "after=\"%s\": no earlier step is named %s", st->after, st->after);
    }
  }
  return 0;
}

/* Everything after the document is read: shared by the file and buffer entry points. */
static int nsim__load_doc(const char *path, struct nsim_scenario *sc, char *err, size_t errlen) {
  struct nsim__ctx c = {path, sc, err, errlen};
  xmlNode *root = xmlDocGetRootElement(sc->doc);
  static const char *const attrs[] = {"name", "timeout", NULL};
  xmlNode *topo = NULL, *scen = NULL;
  if (!nsim__is(root, "netsim"))
    return nsim__fail(&c, root, "the root element must be <netsim>, not <%s>",
                      (const char *)root->name);
  if (nsim__check_attrs(&c, root, attrs) < 0) return -EINVAL;
  sc->name = nm_xml_attr(root, "name");
  if (!sc->name) sc->name = path;
  if (nsim__duration(&c, root, "timeout", &sc->timeout_ms) < 0) return -EINVAL;
  for (xmlNode *k = root->children; k; k = k->next) {
    if (k->type != XML_ELEMENT_NODE) continue;
    if (nsim__is(k, "topology") && !topo) topo = k;
    else if (nsim__is(k, "scenario") && !scen) scen = k;
    else if (nsim__is(k, "description") && !sc->description)
      sc->description = (const char *)(k->children ? k->children->content : NULL);
    else
      return nsim__fail(&c, k, "unexpected <%s> (expected one topology, one scenario, one "
                        "description)", (const char *)k->name);
  }
  if (!topo) return nsim__fail(&c, root, "no <topology>");
  if (nsim__parse_topology(&c, topo) < 0) return -EINVAL;
  if (scen && nsim__parse_scenario(&c, scen) < 0) return -EINVAL;
  return 0;
}

static int nsim__load(const char *path, struct nsim_scenario *sc, int rc, char *err,
                      size_t errlen) {
  if (rc == 0) rc = nsim__load_doc(path, sc, err, errlen);
  if (rc < 0) nsim_scenario_free(sc);
  return rc;
}

static void nsim__init(struct nsim_scenario *sc, const char *path) {
  memset(sc, 0, sizeof *sc);
  nsim_topo_init(&sc->topo);
  sc->path = path;
  sc->timeout_ms = 120000;
}

int nsim_scenario_load(const char *path, struct nsim_scenario *sc, char *err, size_t errlen) {
  nsim__init(sc, path);
  return nsim__load(path, sc, nm_xml_parse_file(path, &sc->doc, err, errlen), err, errlen);
}

int nsim_scenario_load_buf(const char *buf, size_t len, const char *name, struct nsim_scenario *sc,
                           char *err, size_t errlen) {
  nsim__init(sc, name);
  return nsim__load(name, sc, nm_xml_parse(buf, len, &sc->doc, err, errlen), err, errlen);
}

void nsim_scenario_free(struct nsim_scenario *sc) {
  if (sc->doc) xmlFreeDoc(sc->doc);
  free(sc->steps);
  sc->doc = NULL;
  sc->steps = NULL;
  sc->nsteps = 0;
}
