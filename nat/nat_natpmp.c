/* nat_natpmp.c - the NAT-PMP method (RFC 6886) through libnatpmp.
 *
 * libnatpmp's socket is non-blocking and connected to the gateway; it keeps
 * one request pending and resends it on its own schedule (250 ms, doubling)
 * whenever readnatpmpresponseorretry() is called after the retry time. We
 * call it when the socket is readable (uv_poll) and when libnatpmp's retry
 * time comes (uv_timer), and give up at cfg.natpmp_timeout_ms, far sooner
 * than libnatpmp's own 9 tries (~2 min), so start-up stays short.
 *
 * The poll handle only watches the socket while a request is pending: a
 * connected UDP socket stays readable with a pending ICMP error, which would
 * otherwise spin the loop. */
#include "nat_internal.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

enum { NP_REQ_NONE = 0, NP_REQ_ADDR, NP_REQ_MAP, NP_REQ_UNMAP };

/* Why a request was sent; decides what its answer means. */
enum {
  NP_FOR_PROBE = 1, /* ADDR at start-up */
  NP_FOR_MAP,       /* MAP at start-up */
  NP_FOR_CHECK,     /* ADDR as a liveness/epoch check */
  NP_FOR_REDO,      /* MAP after a check saw the router restart */
  NP_FOR_RENEW,     /* MAP at half-life */
  NP_FOR_UNMAP      /* UNMAP at close */
};

static void np_on_poll(uv_poll_t *h, int status, int events);
static void np_on_timer(uv_timer_t *t);

static int np_proto(const nm_portmap *pm) {
  return pm->cfg.proto == NM_PM_UDP ? NATPMP_PROTOCOL_UDP : NATPMP_PROTOCOL_TCP;
}

static int np_op_of(int purpose) {
  switch (purpose) {
  case NP_FOR_PROBE: return NM__OP_PROBE;
  case NP_FOR_MAP: return NM__OP_MAP;
  case NP_FOR_CHECK:
  case NP_FOR_REDO: return NM__OP_CHECK;
  case NP_FOR_RENEW: return NM__OP_RENEW;
  default: return NM__OP_DELETE;
  }
}

/* libnatpmp error -> our error, with the log line that explains it. */
static int np_map_err(int r) {
  switch (r) {
  case NATPMP_ERR_NOGATEWAYSUPPORT:
    return NM_PM_ENOGATEWAY;
  case NATPMP_ERR_NOTAUTHORIZED:
    return NM_PM_ENOTAUTH;
  case NATPMP_ERR_NETWORKFAILURE:
    return NM_PM_ENONET;
  case NATPMP_ERR_OUTOFRESOURCES:
    return NM_PM_ETABLEFULL;
  default:
    return NM_PM_ENATPMP;
  }
}

static int np_open(nm_portmap *pm) {
  struct nm__natpmp *np = &pm->np;
  struct in_addr gw;
  int force = 0, r;

  if (np->open)
    return 0;
  memset(&gw, 0, sizeof(gw));
  if (pm->cfg.natpmp_gateway[0] != '\0') {
    if (inet_pton(AF_INET, pm->cfg.natpmp_gateway, &gw) != 1)
      return NM_PM_EINVAL;
    force = 1;
  }
  /* Reads /proc/net/route, creates and connects a UDP socket: no blocking I/O. */
  r = initnatpmp(&np->h, force, gw.s_addr);
  if (r < 0) {
    nat_info("natpmp: %s (libnatpmp %d)",
             r == NATPMP_ERR_CANNOTGETGATEWAY ? "no default gateway" : "cannot open socket", r);
    return NM_PM_ENOGATEWAY;
  }
  r = uv_poll_init(pm->loop, &np->poll, np->h.s);
  if (r < 0) {
    closenatpmp(&np->h);
    return r;
  }
  np->poll.data = pm;
  np->poll_init = 1;
  np->open = 1;
  return 0;
}

static void np_arm_timer(nm_portmap *pm) {
  struct nm__natpmp *np = &pm->np;
  struct timeval tv;
  uint64_t now = uv_now(pm->loop);
  uint64_t cap_at = np->req_started_ms + pm->cfg.natpmp_timeout_ms;
  uint64_t wait = cap_at > now ? cap_at - now : 0;

  if (getnatpmprequesttimeout(&np->h, &tv) == 0) {
    int64_t ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    if (ms < 0)
      ms = 0;
    if ((uint64_t)ms < wait)
      wait = (uint64_t)ms + 1; /* +1: land just after libnatpmp's retry time */
  }
  uv_timer_start(&np->timer, np_on_timer, wait, 0);
}

static int np_send(nm_portmap *pm, int req, int purpose, int keep_start) {
  struct nm__natpmp *np = &pm->np;
  int r;

  switch (req) {
  case NP_REQ_ADDR:
    r = sendpublicaddressrequest(&np->h);
    break;
  case NP_REQ_MAP:
    /* Ask for the port we hold (renewal) or the internal port (first time). */
    r = sendnewportmappingrequest(&np->h, np_proto(pm), pm->int_port,
                                  np->ext_port ? np->ext_port : pm->int_port, pm->cfg.lease_s);
    np->asked = 1;
    break;
  default:
    /* RFC 6886 3.4: delete = lifetime 0 and suggested external port 0. */
    r = sendnewportmappingrequest(&np->h, np_proto(pm), pm->int_port, 0, 0);
    break;
  }
  if (r < 0) {
    nat_warn("natpmp: sending a request to the gateway failed (libnatpmp %d)", r);
    return NM_PM_ENATPMP;
  }
  np->req = req;
  np->purpose = purpose;
  if (!keep_start)
    np->req_started_ms = uv_now(pm->loop);
  uv_poll_start(&np->poll, UV_READABLE, np_on_poll);
  np_arm_timer(pm);
  return 0;
}

/* Ends the request in flight (if any) without reporting. */
void nm__natpmp_abort(nm_portmap *pm) {
  struct nm__natpmp *np = &pm->np;
  if (np->poll_init)
    uv_poll_stop(&np->poll);
  uv_timer_stop(&np->timer);
  np->req = NP_REQ_NONE;
}

static void np_finish(nm_portmap *pm, int err) {
  int op = np_op_of(pm->np.purpose);
  nm__natpmp_abort(pm);
  nm__method_done(pm, NM_MAP_NATPMP, op, err);
}

/* A successful answer arrived for the request in flight. */
static void np_on_answer(nm_portmap *pm, const natpmpresp_t *resp) {
  struct nm__natpmp *np = &pm->np;
  uint64_t now = uv_now(pm->loop);
  int purpose = np->purpose;

  /* Epoch (RFC 6886 3.6): going backwards means the router restarted and
   * dropped every mapping, however long their leases were. */
  if (np->have_epoch && nm_natpmp_epoch_reset(np->epoch, np->epoch_at_ms, resp->epoch, now)) {
    nat_warn("natpmp: router epoch went from %u to %u: it restarted and lost our mapping",
             (unsigned)np->epoch, (unsigned)resp->epoch);
    if (np->mapped)
      np->reset_seen = 1;
  }
  np->have_epoch = 1;
  np->epoch = resp->epoch;
  np->epoch_at_ms = now;

  if (np->req == NP_REQ_ADDR) {
    char ip[INET_ADDRSTRLEN];
    if (resp->type != NATPMP_RESPTYPE_PUBLICADDRESS)
      goto stale;
    inet_ntop(AF_INET, &resp->pnu.publicaddress.addr, ip, sizeof(ip));
    if (resp->pnu.publicaddress.addr.s_addr == 0) {
      nat_warn("natpmp: router reports external address 0.0.0.0 (its WAN side is down)");
      np_finish(pm, NM_PM_ENONET);
      return;
    }
    if (np->ext_ip[0] != '\0' && strcmp(np->ext_ip, ip) != 0)
      nat_info("natpmp: router's external address changed from %s to %s", np->ext_ip, ip);
    snprintf(np->ext_ip, sizeof(np->ext_ip), "%s", ip);
    if (purpose == NP_FOR_CHECK && np->reset_seen) {
      /* Redo the mapping at once rather than waiting for the renewal. */
      int r = np_send(pm, NP_REQ_MAP, NP_FOR_REDO, 0);
      if (r < 0)
        np_finish(pm, r);
      return;
    }
    np_finish(pm, 0);
    return;
  }

  if (resp->type != (np_proto(pm) == NATPMP_PROTOCOL_TCP ? NATPMP_RESPTYPE_TCPPORTMAPPING
                                                         : NATPMP_RESPTYPE_UDPPORTMAPPING) ||
      resp->pnu.newportmapping.privateport != pm->int_port)
    goto stale;

  if (np->req == NP_REQ_UNMAP) {
    np->mapped = 0;
    np->asked = 0;
    np_finish(pm, 0);
    return;
  }
  if (resp->pnu.newportmapping.mappedpublicport == 0) {
    /* Seen on some consumer routers: "success" with nothing mapped. */
    nat_warn("natpmp: router answered success with external port 0 for port %u: it did not "
             "really map it; treating NAT-PMP as unusable",
             (unsigned)pm->int_port);
    np->mapped = 0;
    np_finish(pm, NM_PM_EEXTPORT0);
    return;
  }
  if (resp->pnu.newportmapping.lifetime == 0) {
    nat_warn("natpmp: router granted a lifetime of 0 s for port %u: no mapping",
             (unsigned)pm->int_port);
    np->mapped = 0;
    np_finish(pm, NM_PM_ENATPMP);
    return;
  }
  if (np->ext_port != 0 && np->ext_port != resp->pnu.newportmapping.mappedpublicport)
    nat_info("natpmp: router moved our external port from %u to %u", (unsigned)np->ext_port,
             (unsigned)resp->pnu.newportmapping.mappedpublicport);
  np->ext_port = resp->pnu.newportmapping.mappedpublicport;
  np->lease_s = resp->pnu.newportmapping.lifetime;
  np->mapped = 1;
  np_finish(pm, 0);
  return;

stale:
  /* An answer to an earlier request (a retransmission crossed it): libnatpmp
   * has already dropped the pending request, so send ours again, keeping the
   * original start time so the cap still holds. */
  {
    int r = np_send(pm, np->req, purpose, 1);
    if (r < 0)
      np_finish(pm, r);
  }
}

static void np_read(nm_portmap *pm) {
  struct nm__natpmp *np = &pm->np;
  natpmpresp_t resp;
  int i, r;

  /* A bounded number of datagrams per wakeup; the poll brings us back. */
  for (i = 0; i < 8 && np->req != NP_REQ_NONE; i++) {
    memset(&resp, 0, sizeof(resp));
    r = readnatpmpresponseorretry(&np->h, &resp);
    if (r == NATPMP_TRYAGAIN) {
      if (uv_now(pm->loop) >= np->req_started_ms + pm->cfg.natpmp_timeout_ms) {
        nat_info("natpmp: no answer from the gateway within %u ms",
                 (unsigned)pm->cfg.natpmp_timeout_ms);
        np_finish(pm, NM_PM_ETIMEDOUT);
      } else {
        np_arm_timer(pm);
      }
      return;
    }
    if (r == NATPMP_ERR_WRONGPACKETSOURCE)
      continue; /* someone other than the gateway; ignore it */
    if (r < 0) {
      int err = np_map_err(r);
      if (err == NM_PM_ETABLEFULL)
        nat_warn("natpmp: router is out of resources (result 4): its mapping table is full");
      else if (err == NM_PM_ENOTAUTH)
        nat_warn("natpmp: router refused the request (result 2: not authorized/disabled)");
      else if (err == NM_PM_ENONET)
        nat_warn("natpmp: router reports a network failure (result 3: no external address)");
      else if (err == NM_PM_ENOGATEWAY)
        nat_info("natpmp: gateway does not speak NAT-PMP (port unreachable or no answer)");
      else
        nat_warn("natpmp: request failed (libnatpmp %d)", r);
      np_finish(pm, err);
      return;
    }
    np_on_answer(pm, &resp);
    return;
  }
}

static void np_on_poll(uv_poll_t *h, int status, int events) {
  nm_portmap *pm = h->data;
  (void)status; /* an error shows up as a failing read */
  (void)events;
  np_read(pm);
}

static void np_on_timer(uv_timer_t *t) {
  nm_portmap *pm = nm__container_of(t, nm_portmap, np.timer);
  if (pm->np.req != NP_REQ_NONE)
    np_read(pm); /* resends if libnatpmp's retry time has come; enforces the cap */
}

int nm__natpmp_launch(nm_portmap *pm, int op) {
  struct nm__natpmp *np = &pm->np;
  int r;

  if (np->req != NP_REQ_NONE)
    return NM_PM_EBUSY;
  r = np_open(pm);
  if (r < 0)
    return r;
  switch (op) {
  case NM__OP_PROBE:
    np->reset_seen = 0;
    return np_send(pm, NP_REQ_ADDR, NP_FOR_PROBE, 0);
  case NM__OP_MAP:
    np->ext_port = 0; /* a new mapping: suggest the internal port */
    return np_send(pm, NP_REQ_MAP, NP_FOR_MAP, 0);
  case NM__OP_CHECK:
    return np_send(pm, NP_REQ_ADDR, NP_FOR_CHECK, 0);
  case NM__OP_RENEW:
    return np_send(pm, NP_REQ_MAP, NP_FOR_RENEW, 0);
  case NM__OP_DELETE:
    return np_send(pm, NP_REQ_UNMAP, NP_FOR_UNMAP, 0);
  }
  return NM_PM_EINVAL;
}

void nm__natpmp_local_ip(nm_portmap *pm, char *out, size_t outlen) {
  struct sockaddr_in sa;
  socklen_t len = sizeof(sa);
  out[0] = '\0';
  /* The connected socket's local address is the one the gateway sees. */
  if (pm->np.open && getsockname(pm->np.h.s, (struct sockaddr *)&sa, &len) == 0 &&
      sa.sin_family == AF_INET)
    inet_ntop(AF_INET, &sa.sin_addr, out, (socklen_t)outlen);
}

int nm__natpmp_close_handles(nm_portmap *pm, uv_close_cb cb) {
  struct nm__natpmp *np = &pm->np;
  int n = 0;
  nm__natpmp_abort(pm);
  uv_close((uv_handle_t *)&np->timer, cb);
  n++;
  if (np->poll_init) {
    uv_close((uv_handle_t *)&np->poll, cb);
    n++;
  }
  return n;
}

void nm__natpmp_release(nm_portmap *pm) {
  /* Called once every handle is closed: libuv no longer references the fd. */
  if (pm->np.open) {
    closenatpmp(&pm->np.h);
    pm->np.open = 0;
  }
  pm->np.poll_init = 0;
}
