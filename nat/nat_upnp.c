/* nat_upnp.c - the UPnP IGD method through miniupnpc.
 *
 * Every miniupnpc call blocks (SSDP discovery waits cfg.upnp_discover_ms,
 * SOAP calls are synchronous HTTP), so each operation is one uv_work_t: the
 * work function runs on the libuv thread pool and touches only pm->up and the
 * read-only pm->cfg / pm->int_port; the after-work callback, on the loop
 * thread, logs what happened and tells the orchestrator. Only one operation
 * is in flight at a time (pm->up.busy).
 *
 * Misbehaving routers, each with a log line:
 *   718/729 conflict   -> try other external ports (nm_upnp_ext_port_candidate)
 *   725 permanent only -> retry with lease 0, remembered for this router
 *   728 table full     -> give up on UPnP for this round
 *   stale control URL  -> (router restarted on another HTTP port) rediscover
 *   mapping missing at a check/renewal (router rebooted) -> add it again */
#include "nat_internal.h"

#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UPNP_E_NO_SUCH_ENTRY 714
#define UPNP_E_CONFLICT 718
#define UPNP_E_SAME_PORT_REQUIRED 724
#define UPNP_E_ONLY_PERMANENT 725
#define UPNP_E_NO_PORT_MAPS 728
#define UPNP_E_CONFLICT_OTHER 729
#define UPNP_E_NOT_AUTHORIZED 606

static const char *up_proto(const nm_portmap *pm) {
  return pm->cfg.proto == NM_PM_UDP ? "UDP" : "TCP";
}

/* A negative miniupnpc code means the HTTP exchange itself failed: the
 * router is away, or its control URL is stale. */
static int up_transport_failed(int code) {
  return code == UPNPCOMMAND_HTTP_ERROR || code == UPNPCOMMAND_UNKNOWN_ERROR ||
         code == UPNPCOMMAND_INVALID_RESPONSE;
}

static int up_err(int code) {
  if (up_transport_failed(code))
    return NM_PM_ETIMEDOUT;
  if (code == UPNP_E_NOT_AUTHORIZED)
    return NM_PM_ENOTAUTH;
  if (code == UPNP_E_NO_PORT_MAPS)
    return NM_PM_ETABLEFULL;
  return NM_PM_EUPNP;
}

static uint32_t up_seed(const char *s) {
  uint32_t h = 2166136261u; /* FNV-1a: a stable per-host seed from our LAN address */
  while (*s)
    h = (h ^ (uint8_t)*s++) * 16777619u;
  return h;
}

/* ---- work-thread side ---------------------------------------------------- */

static const char *const nm__upnp_search_types[] = {
    "urn:schemas-upnp-org:device:InternetGatewayDevice:1", "upnp:rootdevice", NULL};

static int up_discover(nm_portmap *pm) {
  struct nm__upnp *up = &pm->up;
  struct UPNPDev *devs;
  int e = 0, r;

  if (up->have_igd) {
    FreeUPNPUrls(&up->urls);
    up->have_igd = 0;
  }
  memset(&up->urls, 0, sizeof(up->urls));
  memset(&up->data, 0, sizeof(up->data));
  up->lanaddr[0] = '\0';
  if (pm->cfg.upnp_url[0] != '\0') {
    /* Known root description: no SSDP. Fetches it over HTTP (blocking). */
    r = UPNP_GetIGDFromUrl(pm->cfg.upnp_url, &up->urls, &up->data, up->lanaddr,
                           (int)sizeof(up->lanaddr));
    up->r_igd_state = r == 1 ? 1 : 0;
    if (r != 1 || up->data.first.servicetype[0] == '\0') {
      FreeUPNPUrls(&up->urls);
      return NM_PM_ENOIGD;
    }
    up->have_igd = 1;
    return 0;
  }
  /* upnpDiscover() searches four device types one after the other, each
   * waiting the full delay: 8 s with a 2 s delay when nobody answers. Two
   * searches at half the budget each keep discovery within
   * cfg.upnp_discover_ms: the IGD type (IGD:2 devices answer it too), then
   * any root device, in case a router only answers that. */
  devs = upnpDiscoverDevices(nm__upnp_search_types, (int)(pm->cfg.upnp_discover_ms / 2), NULL,
                             NULL, UPNP_LOCAL_PORT_ANY, 0, 2, &e, 0);
  if (devs == NULL) {
    up->r_code = e;
    return NM_PM_ENOIGD;
  }
  r = UPNP_GetValidIGD(devs, &up->urls, &up->data, up->lanaddr, (int)sizeof(up->lanaddr));
  freeUPNPDevlist(devs);
  up->r_igd_state = r;
  /* 1 = connected IGD, 2 = IGD that says it is not connected: some routers
   * report that wrongly, so we try it and let AddPortMapping decide. */
  if (r != 1 && r != 2) {
    FreeUPNPUrls(&up->urls);
    return NM_PM_ENOIGD;
  }
  up->have_igd = 1;
  return 0;
}

static int up_ext_ip(nm_portmap *pm) {
  struct nm__upnp *up = &pm->up;
  char ip[64] = "";
  int r = UPNP_GetExternalIPAddress(up->urls.controlURL, up->data.first.servicetype, ip);
  if (r != UPNPCOMMAND_SUCCESS) {
    up->r_code = r;
    return up_err(r);
  }
  if (ip[0] == '\0' || strcmp(ip, "0.0.0.0") == 0)
    return NM_PM_ENONET;
  snprintf(up->ext_ip, sizeof(up->ext_ip), "%s", ip);
  return 0;
}

/* Reads back what the router holds for ext_port. *present is 1 if it maps to
 * us; *lease_left is its remaining lease (0 = permanent or unknown). */
static int up_lookup(nm_portmap *pm, uint16_t ext_port, int *present, uint32_t *lease_left) {
  struct nm__upnp *up = &pm->up;
  char ext[8], client[64] = "", iport[8] = "", desc[80] = "", enabled[4] = "", lease[16] = "";
  int r;

  snprintf(ext, sizeof(ext), "%u", (unsigned)ext_port);
  r = UPNP_GetSpecificPortMappingEntry(up->urls.controlURL, up->data.first.servicetype, ext,
                                       up_proto(pm), NULL, client, iport, desc, enabled, lease);
  *present = 0;
  *lease_left = 0;
  if (r == UPNP_E_NO_SUCH_ENTRY)
    return 0;
  if (r != UPNPCOMMAND_SUCCESS) {
    up->r_code = r;
    return up_err(r);
  }
  *present = strcmp(client, up->lanaddr) == 0 && (unsigned)atoi(iport) == pm->int_port;
  *lease_left = (uint32_t)strtoul(lease, NULL, 10);
  return 0;
}

/* AddPortMapping, handling the error codes routers really send. first_port
 * is asked for first (our previous port on a redo, else the internal port). */
static int up_add(nm_portmap *pm, uint16_t first_port) {
  struct nm__upnp *up = &pm->up;
  uint32_t lease = up->permanent_only ? 0 : pm->cfg.lease_s;
  uint32_t seed = up_seed(up->lanaddr);
  unsigned attempt, attempts = pm->cfg.upnp_port_attempts ? pm->cfg.upnp_port_attempts : 1;
  char ext[8], in[8], lease_txt[16];

  snprintf(in, sizeof(in), "%u", (unsigned)pm->int_port);
  for (attempt = 0; attempt < attempts;) {
    uint16_t port = attempt == 0 ? first_port
                                 : nm_upnp_ext_port_candidate(pm->int_port, attempt, seed);
    int r;
    snprintf(ext, sizeof(ext), "%u", (unsigned)port);
    snprintf(lease_txt, sizeof(lease_txt), "%u", (unsigned)lease);
    r = UPNP_AddPortMapping(up->urls.controlURL, up->data.first.servicetype, ext, in,
                            up->lanaddr, pm->cfg.description, up_proto(pm), NULL, lease_txt);
    if (r == UPNPCOMMAND_SUCCESS) {
      int present;
      uint32_t left;
      up->ext_port = port;
      up->lease_s = lease;
      up->mapped = 1;
      /* Routers may shorten the lease without saying so in the reply; the
       * table entry tells the truth. Best effort: keep ours if this fails. */
      if (up_lookup(pm, port, &present, &left) == 0 && present && left > 0 &&
          (lease == 0 || left < lease))
        up->lease_s = left;
      return 0;
    }
    up->r_code = r;
    if (r == UPNP_E_ONLY_PERMANENT && lease != 0) {
      /* The router cannot do leases: the one case where a permanent mapping
       * is right. We delete it on close like any other. */
      lease = 0;
      up->permanent_only = 1;
      up->r_lease725 = 1;
      continue; /* same attempt, same port */
    }
    if (r == UPNP_E_CONFLICT || r == UPNP_E_CONFLICT_OTHER) {
      if (up->r_conflicts++ == 0)
        up->r_first_conflict = port;
      attempt++;
      continue;
    }
    if (r == UPNP_E_SAME_PORT_REQUIRED)
      return NM_PM_ECONFLICT; /* only ext == int allowed, and that one is taken */
    if (r == UPNP_E_NO_PORT_MAPS)
      up->r_full = 1;
    return up_err(r);
  }
  return NM_PM_ECONFLICT;
}

static int up_check(nm_portmap *pm, int refresh) {
  struct nm__upnp *up = &pm->up;
  int present = 0, err;
  uint32_t left;

  err = up->have_igd ? up_lookup(pm, up->ext_port, &present, &left) : NM_PM_ETIMEDOUT;
  if (err == NM_PM_ETIMEDOUT) {
    /* No answer on the control URL we know. miniupnpd, for one, picks a new
     * HTTP port on every start, so a restarted router looks exactly like
     * this: find it again, then look again. */
    up->r_rediscovered = 1;
    err = up_discover(pm);
    if (err == 0)
      err = up_lookup(pm, up->ext_port, &present, &left);
  }
  if (err < 0)
    return err;
  err = up_ext_ip(pm);
  if (err < 0)
    return err;
  if (!present) {
    up->r_redone = 1;
    return up_add(pm, up->ext_port);
  }
  if (refresh)
    return up_add(pm, up->ext_port); /* re-adding our own entry refreshes the lease */
  return 0;
}

static int up_delete(nm_portmap *pm) {
  struct nm__upnp *up = &pm->up;
  char ext[8];
  int r;

  snprintf(ext, sizeof(ext), "%u", (unsigned)up->ext_port);
  r = UPNP_DeletePortMapping(up->urls.controlURL, up->data.first.servicetype, ext, up_proto(pm),
                             NULL);
  up->r_code = r;
  up->mapped = 0; /* one attempt: on close there is nobody left to retry */
  return (r == UPNPCOMMAND_SUCCESS || r == UPNP_E_NO_SUCH_ENTRY) ? 0 : up_err(r);
}

static void up_work(uv_work_t *w) {
  nm_portmap *pm = nm__container_of(w, nm_portmap, up.work);
  struct nm__upnp *up = &pm->up;
  int err;

  switch (up->op) {
  case NM__OP_PROBE:
    err = up_discover(pm);
    if (err == 0)
      err = up_ext_ip(pm);
    break;
  case NM__OP_MAP:
    err = up_add(pm, pm->int_port);
    break;
  case NM__OP_CHECK:
    err = up_check(pm, 0);
    break;
  case NM__OP_RENEW:
    err = up_check(pm, 1);
    break;
  case NM__OP_DELETE:
    err = up_delete(pm);
    break;
  default:
    err = NM_PM_EINVAL;
  }
  up->r_err = err;
}

/* ---- loop-thread side ---------------------------------------------------- */

static const char *up_code_text(int code) {
  const char *s = strupnperror(code);
  return s ? s : "unknown";
}

static void up_log_result(nm_portmap *pm) {
  struct nm__upnp *up = &pm->up;
  int err = up->r_err;

  if (up->r_rediscovered)
    nat_info("upnp: control URL did not answer; rediscovered the gateway: %s",
             up->have_igd ? "found" : "not found");
  if (up->r_conflicts > 0)
    nat_warn("upnp: external port %u is taken by another host (718 ConflictInMappingEntry)%s",
             (unsigned)up->r_first_conflict,
             err == 0 ? "; using another external port" : "; every port tried was taken");
  if (up->r_lease725)
    nat_warn("upnp: router only accepts permanent mappings (725 OnlyPermanentLeasesSupported); "
             "using lease 0, deleted on exit");
  if (up->r_full)
    nat_warn("upnp: router's port mapping table is full (728 NoPortMapsAvailable); "
             "remove stale entries in the router to allow a mapping");
  if (up->r_redone && err == 0)
    nat_warn("upnp: router had forgotten our mapping (restart?); added it again");

  switch (up->op) {
  case NM__OP_PROBE:
    if (err == NM_PM_ENOIGD && pm->cfg.upnp_url[0] != '\0')
      nat_info("upnp: no IGD description at %s", pm->cfg.upnp_url);
    else if (err == NM_PM_ENOIGD)
      nat_info("upnp: no Internet Gateway Device found (%s)",
               up->r_igd_state == 3   ? "a UPnP device answered, but it is not an IGD"
               : up->r_igd_state == 0 && up->r_code == 0 ? "nothing answered discovery"
                                                         : "discovery failed");
    else if (err == 0 && up->r_igd_state == 2)
      nat_warn("upnp: IGD at %s says it is not connected; trying it anyway",
               up->urls.controlURL ? up->urls.controlURL : "?");
    else if (err == 0)
      nat_info("upnp: IGD found, external address %s, our address %s", up->ext_ip, up->lanaddr);
    else if (err != NM_PM_ECLOSED)
      nat_info("upnp: IGD found but GetExternalIPAddress failed: %d %s", up->r_code,
               up_code_text(up->r_code));
    break;
  case NM__OP_DELETE:
    if (err == 0)
      nat_info("upnp: deleted mapping of external port %u", (unsigned)up->ext_port);
    else
      nat_warn("upnp: deleting external port %u failed: %d %s", (unsigned)up->ext_port,
               up->r_code, up_code_text(up->r_code));
    break;
  default:
    /* conflicts, a full table and a lost IGD were named above */
    if (err == 0 || err == NM_PM_ECLOSED || up->r_full || err == NM_PM_ECONFLICT ||
        err == NM_PM_ENOIGD)
      break;
    if (up->r_code != 0)
      nat_warn("upnp: %s failed: %d %s", up->op == NM__OP_MAP ? "AddPortMapping" : "check",
               up->r_code, up_code_text(up->r_code));
    else
      nat_warn("upnp: %s failed: %s", up->op == NM__OP_MAP ? "AddPortMapping" : "check",
               nm_portmap_strerror(err));
    break;
  }
}

static void up_after(uv_work_t *w, int status) {
  nm_portmap *pm = nm__container_of(w, nm_portmap, up.work);
  struct nm__upnp *up = &pm->up;

  up->busy = 0;
  if (status == UV_ECANCELED)
    up->r_err = NM_PM_ECLOSED; /* never ran: nothing was changed at the router */
  else
    up_log_result(pm);
  nm__method_done(pm, NM_MAP_UPNP, up->op, up->r_err);
}

int nm__upnp_launch(nm_portmap *pm, int op) {
  struct nm__upnp *up = &pm->up;
  int r;

  if (up->busy)
    return NM_PM_EBUSY;
  /* Checks and renewals rediscover a lost IGD themselves; the rest need one. */
  if ((op == NM__OP_MAP || op == NM__OP_DELETE) && !up->have_igd)
    return NM_PM_ENOIGD;
  up->op = op;
  up->r_err = 0;
  up->r_code = 0;
  up->r_igd_state = 0;
  up->r_redone = 0;
  up->r_rediscovered = 0;
  up->r_lease725 = 0;
  up->r_conflicts = 0;
  up->r_first_conflict = 0;
  up->r_full = 0;
  r = uv_queue_work(pm->loop, &up->work, up_work, up_after);
  if (r < 0)
    return r;
  up->busy = 1;
  return 0;
}

void nm__upnp_cleanup(nm_portmap *pm) {
  if (pm->up.have_igd) {
    FreeUPNPUrls(&pm->up.urls);
    pm->up.have_igd = 0;
  }
}
