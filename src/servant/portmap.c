/* Port mapping for a peer; see portmap.h. Done again after every re-registration, since a
 * restarted manager knows nothing. */
#include "portmap.h"
#include "nm_addr.h"
#include "servant.h"
#include "nm_log.h"
#include "nm_peerlist.h"
#include "nm_portmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sv_mapper {
  nm_portmap pm;
  servant *sv;
  int started;
  int have;            /* a mapping is held */
  nm_mapping_info info;
  int double_nat;
  int bad_ip_logged;   /* said once that the router reports a non-address */
  char observed_ip[64];
};

static void sv__mapping_report(servant *sv) {
  struct sv_mapper *p = sv->portmap.m;
  nm_msg_mapping m;
  memset(&m, 0, sizeof m);
  m.method = NM_MAPPING_NONE;
  /* What the router says goes no further than here unless it is an address: any device
   * on the LAN can answer UPnP. */
  if (p && p->have && nm_ip_valid(p->info.ext_ip)) {
    m.method = p->info.method == NM_MAP_NATPMP ? NM_MAPPING_NATPMP
               : p->info.method == NM_MAP_PCP  ? NM_MAPPING_PCP
                                               : NM_MAPPING_UPNP;
    snprintf(m.ext_ip, sizeof m.ext_ip, "%s", p->info.ext_ip);
    m.ext_port = p->info.ext_port;
    m.lease_s = p->info.lease_s;
  }
  if (sv->portmap.on_report) sv->portmap.on_report(sv, &m);
}

/* The router's words, made safe for a log line. */
static const char *sv__printable(const char *s, char *buf, size_t len) {
  size_t n = 0;
  for (; s[n] && n + 1 < len && n < 40; n++) buf[n] = (s[n] < 0x20 || s[n] > 0x7e) ? '?' : s[n];
  buf[n] = 0;
  return buf;
}

static void sv__on_portmap(nm_portmap *pm, nm_portmap_event ev, int status, const nm_mapping_info *info,
                           void *arg) {
  servant *sv = arg;
  struct sv_mapper *p = sv->portmap.m;
  if ((ev == NM_PM_MAPPED || ev == NM_PM_REMAPPED) && !nm_ip_valid(info->ext_ip)) {
    /* Not an address (a broken or hostile device on the LAN): no mapping to report. */
    p->have = 0;
    if (!p->bad_ip_logged) {
      char shown[48];
      nm_log_warn("the router reported an external address that is not an IP address (\"%s\"); "
                  "reporting no mapping",
                  sv__printable(info->ext_ip, shown, sizeof shown));
    }
    p->bad_ip_logged = 1;
  } else if (ev == NM_PM_MAPPED || ev == NM_PM_REMAPPED) {
    p->have = 1;
    p->info = *info;
    p->double_nat = nm_portmap_is_double_nat(info->ext_ip, p->observed_ip) == 1;
    char a[NM_ADDR_STRLEN];
    nm_log_info("port mapping %s: %s %s -> port %u, lease %u s", ev == NM_PM_MAPPED ? "made" : "redone",
                nm_map_method_name(info->method), nm_addr_str(info->ext_ip, info->ext_port, a), info->int_port,
                info->lease_s);
    if (p->double_nat)
      nm_log_warn("double NAT: our router's external address %s is not the address the manager sees (%s); "
                  "the mapping cannot make us reachable from the internet",
                  info->ext_ip, p->observed_ip);
  } else if (ev == NM_PM_LOST) {
    p->have = 0;
    nm_log_warn("port mapping lost (%s); trying again", nm_portmap_strerror(status));
  } else {
    p->have = 0;
    nm_log_warn("no port mapping: %s. Peers outside our router may not reach us; the manager will "
                "assign a relay if they cannot",
                nm_portmap_strerror(status));
  }
  sv__mapping_report(sv);
}

static int sv__is_loopback(const char *ip) {
  return strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0;
}

void sv_portmap_on_registered(servant *sv, const char *observed_ip, uint16_t port) {
  struct sv_mapper *p = sv->portmap.m;
  if (p) snprintf(p->observed_ip, sizeof p->observed_ip, "%s", observed_ip);
  if (p && p->started) {
    sv__mapping_report(sv); /* a new manager session: tell it again */
    return;
  }
  if (!sv->cfg.nat_upnp && !sv->cfg.nat_natpmp && !sv->cfg.nat_pcp) {
    nm_log_info("port mapping off (config)");
    return;
  }
  /* Seen over loopback: we share a host with the manager, there is no router to ask,
   * and asking would send discovery traffic out of this machine for nothing. */
  if (sv__is_loopback(observed_ip)) {
    nm_log_debug("port mapping skipped: the manager reaches us over loopback");
    return;
  }
  if (!p) {
    p = calloc(1, sizeof *p);
    if (!p) return;
    sv->portmap.m = p;
    snprintf(p->observed_ip, sizeof p->observed_ip, "%s", observed_ip);
  }
  p->sv = sv;
  nm_portmap_config cfg;
  nm_portmap_config_default(&cfg);
  cfg.upnp = sv->cfg.nat_upnp;
  cfg.natpmp = sv->cfg.nat_natpmp;
  cfg.pcp = sv->cfg.nat_pcp;
  if (sv->cfg.nat_lease_s) cfg.lease_s = sv->cfg.nat_lease_s;
  int rc = nm_portmap_init(&p->pm, sv->loop, &cfg);
  if (rc == 0) rc = nm_portmap_start(&p->pm, port, sv__on_portmap, sv);
  if (rc < 0) {
    nm_log_warn("port mapping not started: %s", nm_portmap_strerror(rc));
    return;
  }
  p->started = 1;
  nm_log_info("trying to map port %u with%s%s%s", port, cfg.upnp ? " UPnP IGD" : "",
              cfg.natpmp ? (cfg.upnp ? (cfg.pcp ? ", NAT-PMP" : " and NAT-PMP") : " NAT-PMP") : "",
              cfg.pcp ? (cfg.upnp || cfg.natpmp ? " and PCP" : " PCP") : "");
}

static void sv__portmap_closed(nm_portmap *pm) {
  struct sv_mapper *p = (struct sv_mapper *)pm;
  nm_log_info("port mapping removed");
  free(p);
}

void sv_portmap_close(servant *sv) {
  struct sv_mapper *p = sv->portmap.m;
  sv->portmap.m = NULL;
  if (!p) return;
  if (!p->started) {
    free(p);
    return;
  }
  /* Deleting the mapping finishes before the loop ends: mappings never pile up. */
  nm_portmap_close(&p->pm, sv__portmap_closed);
}

const char *sv_portmap_describe(servant *sv, char *buf, size_t len) {
  struct sv_mapper *p = sv->portmap.m;
  char a[NM_ADDR_STRLEN];
  if (!p || !p->started) snprintf(buf, len, "mapping off");
  else if (!p->have) snprintf(buf, len, "no mapping");
  else
    snprintf(buf, len, "mapped by %s at %s%s", nm_map_method_name(p->info.method),
             nm_addr_str(p->info.ext_ip, p->info.ext_port, a),
             p->double_nat ? " (double NAT: not reachable)" : "");
  return buf;
}
