/* Port mapping for a peer: once the manager has told us our port and the address it sees,
 * ask the router in front of us (UPnP IGD, then NAT-PMP; nat/) to forward that port, and
 * report the result to the manager, which advertises the external address to our peers.
 * Done again after every re-registration, since a restarted manager knows nothing. */
#include "servant.h"
#include "nm_log.h"
#include "nm_portmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sv_portmap {
  nm_portmap pm;
  servant *sv;
  int started;
  int have;            /* a mapping is held */
  nm_mapping_info info;
  int double_nat;
};

static void sv__mapping_send(servant *sv) {
  struct sv_portmap *p = sv->portmap;
  char buf[200];
  int n;
  if (p && p->have)
    n = snprintf(buf, sizeof buf, "<mapping method=\"%s\" ext-ip=\"%s\" ext-port=\"%u\" lease=\"%u\"/>",
                 nm_map_method_name(p->info.method), p->info.ext_ip, p->info.ext_port, p->info.lease_s);
  else
    n = snprintf(buf, sizeof buf, "<mapping method=\"none\"/>");
  sv_manager_send(sv, NM_MSG_MAPPING, buf, (size_t)n);
}

static void sv__on_portmap(nm_portmap *pm, nm_portmap_event ev, int status, const nm_mapping_info *info,
                           void *arg) {
  servant *sv = arg;
  struct sv_portmap *p = sv->portmap;
  if (ev == NM_PM_MAPPED || ev == NM_PM_REMAPPED) {
    p->have = 1;
    p->info = *info;
    p->double_nat = nm_portmap_is_double_nat(info->ext_ip, sv->mgr.observed_ip) == 1;
    nm_log_info("port mapping %s: %s %s:%u -> port %u, lease %u s", ev == NM_PM_MAPPED ? "made" : "redone",
                nm_map_method_name(info->method), info->ext_ip, info->ext_port, info->int_port, info->lease_s);
    if (p->double_nat)
      nm_log_warn("double NAT: our router's external address %s is not the address the manager sees (%s); "
                  "the mapping cannot make us reachable from the internet",
                  info->ext_ip, sv->mgr.observed_ip);
  } else if (ev == NM_PM_LOST) {
    p->have = 0;
    nm_log_warn("port mapping lost (%s); trying again", nm_portmap_strerror(status));
  } else {
    p->have = 0;
    nm_log_warn("no port mapping: %s. Peers outside our router may not reach us; the manager will "
                "assign a relay if they cannot",
                nm_portmap_strerror(status));
  }
  sv__mapping_send(sv);
}

static int sv__is_loopback(const char *ip) {
  return strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0;
}

void sv_portmap_on_registered(servant *sv) {
  struct sv_portmap *p = sv->portmap;
  if (p && p->started) {
    sv__mapping_send(sv); /* a new manager session: tell it again */
    return;
  }
  if (!sv->cfg.nat_upnp && !sv->cfg.nat_natpmp) {
    nm_log_info("port mapping off (config)");
    return;
  }
  /* Seen over loopback: we share a host with the manager, there is no router to ask,
   * and asking would send discovery traffic out of this machine for nothing. */
  if (sv__is_loopback(sv->mgr.observed_ip)) {
    nm_log_debug("port mapping skipped: the manager reaches us over loopback");
    return;
  }
  if (!p) {
    p = calloc(1, sizeof *p);
    if (!p) return;
    sv->portmap = p;
  }
  p->sv = sv;
  nm_portmap_config cfg;
  nm_portmap_config_default(&cfg);
  cfg.upnp = sv->cfg.nat_upnp;
  cfg.natpmp = sv->cfg.nat_natpmp;
  if (sv->cfg.nat_lease_s) cfg.lease_s = sv->cfg.nat_lease_s;
  int rc = nm_portmap_init(&p->pm, sv->loop, &cfg);
  if (rc == 0) rc = nm_portmap_start(&p->pm, sv->port, sv__on_portmap, sv);
  if (rc < 0) {
    nm_log_warn("port mapping not started: %s", nm_portmap_strerror(rc));
    return;
  }
  p->started = 1;
  nm_log_info("trying to map port %u with%s%s", sv->port, cfg.upnp ? " UPnP IGD" : "",
              cfg.natpmp ? (cfg.upnp ? " and NAT-PMP" : " NAT-PMP") : "");
}

static void sv__portmap_closed(nm_portmap *pm) {
  struct sv_portmap *p = (struct sv_portmap *)pm;
  nm_log_info("port mapping removed");
  free(p);
}

void sv_portmap_close(servant *sv) {
  struct sv_portmap *p = sv->portmap;
  sv->portmap = NULL;
  if (!p) return;
  if (!p->started) {
    free(p);
    return;
  }
  /* Deleting the mapping finishes before the loop ends: mappings never pile up. */
  nm_portmap_close(&p->pm, sv__portmap_closed);
}

const char *sv_portmap_describe(servant *sv, char *buf, size_t len) {
  struct sv_portmap *p = sv->portmap;
  if (!p || !p->started) snprintf(buf, len, "mapping off");
  else if (!p->have) snprintf(buf, len, "no mapping");
  else
    snprintf(buf, len, "mapped by %s at %s:%u%s", nm_map_method_name(p->info.method), p->info.ext_ip,
             p->info.ext_port, p->double_nat ? " (double NAT: not reachable)" : "");
  return buf;
}
