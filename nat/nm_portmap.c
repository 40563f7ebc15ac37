/* nm_portmap.c - the port mapper's orchestrator.
 *
 * A "round" probes every enabled method at once (UPnP on the thread pool,
 * NAT-PMP and PCP on the loop). The first of UPnP and NAT-PMP whose probe
 * succeeds gets to create the mapping; PCP maps only once neither of them is
 * probing or ready (both failed or are off), so a router that speaks all three
 * (miniupnpd) keeps being mapped the way it was before PCP existed here, and PCP
 * serves the routers that speak nothing else. Only one method maps at a time,
 * because on routers that speak several the protocols share one table, and a
 * mapping made by the loser and deleted again would delete the winner's. If the
 * mapping attempt fails, the next ready method tries; when none is left the
 * round ends in "no mapping", reported once, and a quiet retry every cfg.retry_s.
 *
 * While mapped, one timer drives renewals (nm_lease_renew_at_ms) and checks
 * (every cfg.check_s); failures back off until the lease runs out, then the
 * mapping is reported LOST and a new round starts. */
#include "nat_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nm_log.h"

static void nm__on_timer(uv_timer_t *t);
static void nm__begin_round(nm_portmap *pm);
static void nm__close_step(nm_portmap *pm);

/* ---- small helpers ------------------------------------------------------- */

void nm__nat_log(int level, const char *fmt, ...) {
  if (!nm_log_enabled(level)) return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  nm_log(level, "nat: %s", buf);
}

const char *nm_map_method_name(nm_map_method m) {
  switch (m) {
  case NM_MAP_UPNP: return "upnp";
  case NM_MAP_NATPMP: return "natpmp";
  case NM_MAP_PCP: return "pcp";
  case NM_MAP_NONE: break;
  }
  return "none";
}

const char *nm_portmap_strerror(int err) {
  switch (err) {
  case 0: return "success";
  case NM_PM_EINVAL: return "invalid argument";
  case NM_PM_EBUSY: return "port mapper busy (already started or closing)";
  case NM_PM_EDISABLED: return "UPnP, NAT-PMP and PCP are all disabled";
  case NM_PM_ENOGATEWAY: return "no gateway answers NAT-PMP";
  case NM_PM_ENOIGD: return "no UPnP Internet Gateway Device found";
  case NM_PM_ETIMEDOUT: return "router did not answer in time";
  case NM_PM_ECONFLICT: return "external port taken by another host (conflict)";
  case NM_PM_ETABLEFULL: return "router's port mapping table is full";
  case NM_PM_ENOTAUTH: return "router refused the mapping (not authorized)";
  case NM_PM_EEXTPORT0: return "router answered with external port 0 (no mapping)";
  case NM_PM_ENONET: return "router has no external address";
  case NM_PM_EUPNP: return "UPnP error from router";
  case NM_PM_ENATPMP: return "NAT-PMP error from router";
  case NM_PM_ELOST: return "mapping lost (renewal failed until it expired)";
  case NM_PM_ENOMAPPING: return "no port mapping";
  case NM_PM_ECLOSED: return "port mapper closed";
  case NM_PM_ENOPCP: return "gateway does not speak PCP";
  case NM_PM_EPCP: return "PCP error from router";
  default: break;
  }
  if (err < 0 && err > -4096)
    return uv_strerror(err); /* a libuv error passed through */
  return "unknown error";
}

/* The methods in the order they get to map when several are ready at once. */
#define NM__NMETHODS 3
static const nm_map_method nm__order[NM__NMETHODS] = {NM_MAP_UPNP, NM_MAP_NATPMP, NM_MAP_PCP};

static int nm__enabled(const nm_portmap *pm, nm_map_method m) {
  switch (m) {
  case NM_MAP_UPNP: return pm->cfg.upnp;
  case NM_MAP_NATPMP: return pm->cfg.natpmp;
  case NM_MAP_PCP: return pm->cfg.pcp;
  default: return 0;
  }
}

static int *nm__mst(nm_portmap *pm, nm_map_method m) {
  return m == NM_MAP_UPNP ? &pm->up.st : m == NM_MAP_NATPMP ? &pm->np.st : &pm->pcp.st;
}

static int *nm__merr(nm_portmap *pm, nm_map_method m) {
  return m == NM_MAP_UPNP ? &pm->err_upnp : m == NM_MAP_NATPMP ? &pm->err_natpmp : &pm->err_pcp;
}

static int nm__launch(nm_portmap *pm, nm_map_method m, int op) {
  switch (m) {
  case NM_MAP_UPNP: return nm__upnp_launch(pm, op);
  case NM_MAP_NATPMP: return nm__natpmp_launch(pm, op);
  case NM_MAP_PCP: return nm__pcp_launch(pm, op);
  default: return NM_PM_EINVAL;
  }
}

static int nm__busy(const nm_portmap *pm, nm_map_method m) {
  switch (m) {
  case NM_MAP_UPNP: return pm->up.busy;
  case NM_MAP_NATPMP: return pm->np.req != 0;
  case NM_MAP_PCP: return pm->pcp.req != 0;
  default: return 0;
  }
}

static void nm__info_of(nm_portmap *pm, nm_map_method m, nm_mapping_info *info) {
  memset(info, 0, sizeof(*info));
  info->method = m;
  info->int_port = pm->int_port;
  if (m == NM_MAP_UPNP) {
    snprintf(info->ext_ip, sizeof(info->ext_ip), "%s", pm->up.ext_ip);
    snprintf(info->int_ip, sizeof(info->int_ip), "%s", pm->up.lanaddr);
    info->ext_port = pm->up.ext_port;
    info->lease_s = pm->up.lease_s;
  } else if (m == NM_MAP_NATPMP) {
    snprintf(info->ext_ip, sizeof(info->ext_ip), "%s", pm->np.ext_ip);
    nm__natpmp_local_ip(pm, info->int_ip, sizeof(info->int_ip));
    info->ext_port = pm->np.ext_port;
    info->lease_s = pm->np.lease_s;
  } else if (m == NM_MAP_PCP) {
    snprintf(info->ext_ip, sizeof(info->ext_ip), "%s", pm->pcp.ext_ip);
    snprintf(info->int_ip, sizeof(info->int_ip), "%s", pm->pcp.int_ip);
    info->ext_port = pm->pcp.ext_port;
    info->lease_s = pm->pcp.lease_s;
  }
}

/* Calls the user; returns 1 if the user closed the mapper from the callback,
 * in which case the caller must stop touching the schedule. */
static int nm__report(nm_portmap *pm, nm_portmap_event ev, int status,
                      const nm_mapping_info *info) {
  if (pm->cb != NULL)
    pm->cb(pm, ev, status, info, pm->cb_arg);
  return pm->state == NM__S_CLOSING || pm->state == NM__S_CLOSED;
}

static void nm__arm_at(nm_portmap *pm, uint64_t at) {
  uint64_t now = uv_now(pm->loop);
  if (at == NM_NEVER) {
    uv_timer_stop(&pm->timer);
    return;
  }
  uv_timer_start(&pm->timer, nm__on_timer, at > now ? at - now : 0, 0);
}

static void nm__arm_mapped(nm_portmap *pm) {
  nm__arm_at(pm, pm->renew_at_ms < pm->check_at_ms ? pm->renew_at_ms : pm->check_at_ms);
}

static void nm__set_lease(nm_portmap *pm, uint64_t now, uint32_t lease_s) {
  pm->granted_at_ms = now;
  pm->renew_at_ms = nm_lease_renew_at_ms(now, lease_s, pm->active);
  pm->expires_at_ms = nm_lease_expires_at_ms(now, lease_s);
}

/* ---- outcomes ------------------------------------------------------------ */

static void nm__log_double_nat_hint(const nm_mapping_info *info) {
  nm_addr_class c = nm_addr_classify(info->ext_ip);
  if (c != NM_ADDR_PUBLIC)
    nat_warn("router's external address %s is %s: another NAT sits in front of it (double "
             "NAT); this mapping cannot make us reachable from the internet",
             info->ext_ip, nm_addr_class_name(c));
}

static void nm__on_mapped(nm_portmap *pm, nm_map_method m) {
  uint64_t now = uv_now(pm->loop);

  pm->state = NM__S_MAPPED;
  pm->active = m;
  pm->none_reported = 0;
  pm->failures = 0;
  nm__info_of(pm, m, &pm->cur);
  nm__set_lease(pm, now, pm->cur.lease_s);
  pm->check_at_ms = now + (uint64_t)pm->cfg.check_s * 1000;
  if (pm->cur.lease_s == 0)
    nat_info("mapped port %u via %s: external %s:%u, permanent", (unsigned)pm->int_port,
             nm_map_method_name(m), pm->cur.ext_ip, (unsigned)pm->cur.ext_port);
  else
    nat_info("mapped port %u via %s: external %s:%u, lease %u s", (unsigned)pm->int_port,
             nm_map_method_name(m), pm->cur.ext_ip, (unsigned)pm->cur.ext_port,
             (unsigned)pm->cur.lease_s);
  nm__log_double_nat_hint(&pm->cur);
  nm__arm_mapped(pm);
  nm__report(pm, NM_PM_MAPPED, 0, &pm->cur);
}

static int nm__pick_err(nm_portmap *pm) {
  /* A router that answered and refused says more than one that is absent. */
  int e[NM__NMETHODS], i;
  e[0] = pm->cfg.upnp ? pm->err_upnp : 0;
  e[1] = pm->cfg.natpmp ? pm->err_natpmp : 0;
  e[2] = pm->cfg.pcp ? pm->err_pcp : 0;
  for (i = 0; i < NM__NMETHODS; i++)
    if (e[i] != 0 && e[i] != NM_PM_ENOIGD && e[i] != NM_PM_ENOGATEWAY &&
        e[i] != NM_PM_ETIMEDOUT && e[i] != NM_PM_ENOPCP)
      return e[i];
  for (i = 0; i < NM__NMETHODS; i++)
    if (e[i] != 0)
      return e[i];
  return NM_PM_ENOMAPPING;
}

static void nm__no_mapping(nm_portmap *pm) {
  nm_mapping_info none;
  int err = nm__pick_err(pm);

  pm->state = NM__S_NONE;
  pm->check_at_ms = uv_now(pm->loop) + (uint64_t)pm->cfg.retry_s * 1000;
  nm__arm_at(pm, pm->check_at_ms);
  if (pm->none_reported)
    return; /* said once; stay quiet while retrying */
  pm->none_reported = 1;
  /* Debug: the program using us says it once, in its own words (the servant's warning,
   * natmesh-portmap's "no mapping:" line); the per-method reasons are here. */
  nat_debug("no port mapping for port %u: upnp: %s; natpmp: %s; pcp: %s; not reachable "
           "through the router (retrying every %u s)",
           (unsigned)pm->int_port,
           pm->cfg.upnp ? nm_portmap_strerror(pm->err_upnp) : "off",
           pm->cfg.natpmp ? nm_portmap_strerror(pm->err_natpmp) : "off",
           pm->cfg.pcp ? nm_portmap_strerror(pm->err_pcp) : "off",
           (unsigned)pm->cfg.retry_s);
  memset(&none, 0, sizeof(none));
  none.int_port = pm->int_port;
  nm__report(pm, NM_PM_NONE, err, &none);
}

static void nm__lost(nm_portmap *pm, int err) {
  nm_mapping_info old = pm->cur;

  nat_warn("mapping %s:%u via %s lost: %s; probing the router again", old.ext_ip,
           (unsigned)old.ext_port, nm_map_method_name(old.method), nm_portmap_strerror(err));
  if (pm->active == NM_MAP_NATPMP) {
    /* np.asked stays set: if the router still holds it, close removes it. */
    pm->np.mapped = 0;
    pm->np.ext_port = 0;
  } else if (pm->active == NM_MAP_PCP) {
    /* pcp.asked and the nonce stay: if the server still holds it, close removes it. */
    pm->pcp.mapped = 0;
  }
  pm->active = NM_MAP_NONE;
  memset(&pm->cur, 0, sizeof(pm->cur));
  pm->state = NM__S_PROBING; /* nm_portmap_get() says "no mapping" from here */
  uv_timer_stop(&pm->timer);
  if (nm__report(pm, NM_PM_LOST, err, &old))
    return;
  nm__begin_round(pm);
}

/* ---- a probing round ----------------------------------------------------- */

/* Picks the next method to map with, or ends the round. */
static void nm__decide(nm_portmap *pm) {
  int i, waiting = 0;

  if (pm->state != NM__S_PROBING || pm->trying != NM_MAP_NONE)
    return;
  for (i = 0; i < NM__NMETHODS; i++) {
    nm_map_method m = nm__order[i];
    int *st = nm__mst(pm, m);
    if (m == NM_MAP_PCP && waiting)
      return; /* PCP maps only once UPnP and NAT-PMP have both failed (or are off) */
    if (*st == NM__M_READY) {
      int r = nm__launch(pm, m, NM__OP_MAP);
      if (r == 0) {
        pm->trying = m;
        return;
      }
      *st = NM__M_FAILED;
      *nm__merr(pm, m) = r;
    } else if (*st == NM__M_PROBING) {
      waiting = 1;
    }
  }
  if (!waiting)
    nm__no_mapping(pm);
}

static void nm__begin_round(nm_portmap *pm) {
  int i;

  pm->state = NM__S_PROBING;
  pm->trying = NM_MAP_NONE;
  pm->active = NM_MAP_NONE;
  for (i = 0; i < NM__NMETHODS; i++) {
    nm_map_method m = nm__order[i];
    int *st = nm__mst(pm, m), r;
    *nm__merr(pm, m) = 0;
    if (!nm__enabled(pm, m)) {
      *st = NM__M_OFF;
      continue;
    }
    *st = NM__M_PROBING;
    r = nm__launch(pm, m, NM__OP_PROBE);
    if (r == NM_PM_EBUSY)
      continue; /* a probe from the previous round is still running: it reports here */
    if (r < 0) {
      *st = NM__M_FAILED;
      *nm__merr(pm, m) = r;
    }
  }
  nm__decide(pm);
}

/* ---- maintenance of a live mapping ---------------------------------------- */

static int nm__definitive(int err) {
  /* The router answered and said no: retrying the same thing will not help. */
  return err == NM_PM_ECONFLICT || err == NM_PM_ETABLEFULL || err == NM_PM_ENOTAUTH ||
         err == NM_PM_EEXTPORT0;
}

static void nm__on_maintenance(nm_portmap *pm, nm_map_method m, int op, int err) {
  uint64_t now = uv_now(pm->loop);

  if (pm->state != NM__S_MAPPED || m != pm->active)
    return;
  if (err == 0) {
    nm_mapping_info n;
    int redone = m == NM_MAP_UPNP     ? pm->up.r_redone
                 : m == NM_MAP_NATPMP ? pm->np.reset_seen
                                      : pm->pcp.reset_seen;
    int changed;

    pm->np.reset_seen = 0;
    pm->pcp.reset_seen = 0;
    pm->failures = 0;
    nm__info_of(pm, m, &n);
    if (op == NM__OP_RENEW || redone)
      nm__set_lease(pm, now, n.lease_s);
    pm->check_at_ms = now + (uint64_t)pm->cfg.check_s * 1000;
    changed = redone || strcmp(n.ext_ip, pm->cur.ext_ip) != 0 || n.ext_port != pm->cur.ext_port;
    pm->cur = n;
    nm__arm_mapped(pm);
    if (changed) {
      nat_info("%s mapping %s: external %s:%u", nm_map_method_name(m),
               redone ? "redone" : "changed", n.ext_ip, (unsigned)n.ext_port);
      nm__log_double_nat_hint(&n);
      nm__report(pm, NM_PM_REMAPPED, 0, &pm->cur);
    }
    return;
  }

  pm->failures++;
  if (!nm__definitive(err)) {
    uint64_t at = nm_lease_retry_at_ms(now, pm->expires_at_ms, pm->failures);
    if (at != NM_NEVER) {
      if (op == NM__OP_RENEW)
        pm->renew_at_ms = at;
      else
        pm->check_at_ms = at;
      nat_warn("%s %s failed (%s); retrying in %llu ms", nm_map_method_name(m),
               op == NM__OP_RENEW ? "renewal" : "check", nm_portmap_strerror(err),
               (unsigned long long)(at - now));
      nm__arm_mapped(pm);
      return;
    }
    err = NM_PM_ELOST;
  }
  nm__lost(pm, err);
}

static void nm__on_timer(uv_timer_t *t) {
  nm_portmap *pm = t->data;
  uint64_t now = uv_now(pm->loop);
  int op, r;

  switch (pm->state) {
  case NM__S_IDLE: /* the kick from nm_portmap_start() */
  case NM__S_NONE: /* quiet retry */
    nm__begin_round(pm);
    return;
  case NM__S_MAPPED:
    break;
  default:
    return;
  }
  if (nm__busy(pm, pm->active)) {
    nm__arm_at(pm, now + 1000);
    return;
  }
  if (now >= pm->renew_at_ms)
    op = NM__OP_RENEW;
  else if (now >= pm->check_at_ms)
    op = NM__OP_CHECK;
  else {
    nm__arm_mapped(pm);
    return;
  }
  r = nm__launch(pm, pm->active, op);
  if (r < 0)
    nm__on_maintenance(pm, pm->active, op, r);
}

/* ---- the one entry point for every method's result ----------------------- */

void nm__method_done(nm_portmap *pm, nm_map_method m, int op, int err) {
  int *st = nm__mst(pm, m);

  if (pm->state == NM__S_CLOSING) {
    if (op == NM__OP_MAP && err == 0)
      *st = NM__M_MAPPED; /* created while closing: the close path deletes it */
    if (op == NM__OP_DELETE && (m == NM_MAP_NATPMP || m == NM_MAP_PCP)) {
      if (err == 0)
        nat_info("%s: removed mapping of port %u", nm_map_method_name(m),
                 (unsigned)pm->int_port);
      else
        nat_warn("%s: removing mapping of port %u failed: %s", nm_map_method_name(m),
                 (unsigned)pm->int_port, nm_portmap_strerror(err));
    }
    nm__close_step(pm);
    return;
  }
  switch (op) {
  case NM__OP_PROBE:
    *st = err == 0 ? NM__M_READY : NM__M_FAILED;
    *nm__merr(pm, m) = err;
    nm__decide(pm);
    return;
  case NM__OP_MAP:
    pm->trying = NM_MAP_NONE;
    if (err == 0) {
      *st = NM__M_MAPPED;
      nm__on_mapped(pm, m);
      return;
    }
    *st = NM__M_FAILED;
    *nm__merr(pm, m) = err;
    nm__decide(pm);
    return;
  case NM__OP_CHECK:
  case NM__OP_RENEW:
    nm__on_maintenance(pm, m, op, err);
    return;
  default:
    return;
  }
}

/* ---- public API ---------------------------------------------------------- */

int nm_portmap_init(nm_portmap *pm, uv_loop_t *loop, const nm_portmap_config *cfg) {
  int r;

  if (pm == NULL || loop == NULL)
    return NM_PM_EINVAL;
  memset(pm, 0, sizeof(*pm));
  if (cfg != NULL)
    pm->cfg = *cfg;
  else
    nm_portmap_config_default(&pm->cfg);
  /* Zero would mean "spin" or "never"; the config table enforces saner
   * ranges, tests use small values through the struct. */
  if (pm->cfg.lease_s == 0 || pm->cfg.upnp_discover_ms == 0 || pm->cfg.natpmp_timeout_ms == 0 ||
      pm->cfg.pcp_timeout_ms == 0 || pm->cfg.check_s == 0 || pm->cfg.retry_s == 0)
    return NM_PM_EINVAL;
  pm->cfg.description[sizeof(pm->cfg.description) - 1] = '\0';
  pm->cfg.natpmp_gateway[sizeof(pm->cfg.natpmp_gateway) - 1] = '\0';
  pm->cfg.upnp_url[sizeof(pm->cfg.upnp_url) - 1] = '\0';
  if (pm->cfg.description[0] == '\0')
    snprintf(pm->cfg.description, sizeof(pm->cfg.description), "natmesh");
  pm->loop = loop;
  r = uv_timer_init(loop, &pm->timer);
  if (r < 0)
    return r;
  r = uv_timer_init(loop, &pm->np.timer);
  if (r < 0) {
    uv_close((uv_handle_t *)&pm->timer, NULL); /* no memory to free: embedded */
    return r;
  }
  r = uv_timer_init(loop, &pm->pcp.timer);
  if (r < 0) {
    uv_close((uv_handle_t *)&pm->timer, NULL);
    uv_close((uv_handle_t *)&pm->np.timer, NULL);
    return r;
  }
  pm->timer.data = pm;
  pm->np.timer.data = pm;
  pm->pcp.timer.data = pm;
  pm->state = NM__S_IDLE;
  return 0;
}

int nm_portmap_start(nm_portmap *pm, uint16_t internal_port, nm_portmap_cb cb, void *arg) {
  if (pm == NULL || internal_port == 0 || cb == NULL)
    return NM_PM_EINVAL;
  if (pm->state != NM__S_IDLE || pm->cb != NULL)
    return NM_PM_EBUSY;
  if (!pm->cfg.upnp && !pm->cfg.natpmp && !pm->cfg.pcp)
    return NM_PM_EDISABLED;
  pm->int_port = internal_port;
  pm->cb = cb;
  pm->cb_arg = arg;
  /* Begin from the loop, so cb never runs inside this call. */
  return uv_timer_start(&pm->timer, nm__on_timer, 0, 0);
}

int nm_portmap_get(const nm_portmap *pm, nm_mapping_info *out) {
  if (pm == NULL || out == NULL)
    return NM_PM_EINVAL;
  if (pm->state != NM__S_MAPPED)
    return NM_PM_ENOMAPPING;
  *out = pm->cur;
  return 0;
}

static void nm__on_handle_closed(uv_handle_t *h) {
  nm_portmap *pm = h->data;
  if (--pm->pending_closes > 0)
    return;
  nm__natpmp_release(pm);
  nm__pcp_release(pm);
  nm__upnp_cleanup(pm);
  pm->state = NM__S_CLOSED;
  if (pm->close_cb != NULL)
    pm->close_cb(pm); /* last touch of pm: the caller may free it now */
}

/* Runs after every completion while closing; does the next thing or ends. */
static void nm__close_step(nm_portmap *pm) {
  if (pm->state != NM__S_CLOSING || pm->pending_closes > 0)
    return;
  if (pm->up.busy || pm->np.req != 0 || pm->pcp.req != 0)
    return; /* wait for the operation in flight; it calls us again */

  if (!pm->close_np_sent && pm->np.asked && pm->np.open) {
    pm->close_np_sent = 1;
    if (nm__natpmp_launch(pm, NM__OP_DELETE) < 0)
      nat_warn("natpmp: could not send the request removing port %u", (unsigned)pm->int_port);
  }
  if (!pm->close_pc_sent && pm->pcp.asked && pm->pcp.open) {
    pm->close_pc_sent = 1;
    if (nm__pcp_launch(pm, NM__OP_DELETE) < 0)
      nat_warn("pcp: could not send the request removing port %u", (unsigned)pm->int_port);
  }
  if (!pm->close_up_sent && pm->up.mapped) {
    pm->close_up_sent = 1;
    if (nm__upnp_launch(pm, NM__OP_DELETE) < 0)
      nat_warn("upnp: cannot delete external port %u: gateway not reachable",
               (unsigned)pm->up.ext_port);
  }
  if (pm->up.busy || pm->np.req != 0 || pm->pcp.req != 0)
    return;

  pm->pending_closes = 1;
  uv_close((uv_handle_t *)&pm->timer, nm__on_handle_closed);
  pm->pending_closes += nm__natpmp_close_handles(pm, nm__on_handle_closed);
  pm->pending_closes += nm__pcp_close_handles(pm, nm__on_handle_closed);
}

void nm_portmap_close(nm_portmap *pm, nm_portmap_close_cb close_cb) {
  if (pm == NULL || pm->state == NM__S_CLOSING || pm->state == NM__S_CLOSED)
    return;
  pm->state = NM__S_CLOSING;
  pm->close_cb = close_cb;
  uv_timer_stop(&pm->timer);
  /* A NAT-PMP request in flight is dropped; if it was a map request the
   * router may have acted on it, and np.asked makes the close path remove it. */
  nm__natpmp_abort(pm);
  nm__pcp_abort(pm); /* the same holds for a PCP MAP (pcp.asked) */
  /* A UPnP operation that has not started yet is cancelled; one that runs
   * cannot be, and its after-work callback resumes the close path. */
  if (pm->up.busy)
    uv_cancel((uv_req_t *)&pm->up.work);
  nm__close_step(pm);
}
