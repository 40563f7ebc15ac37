/* nat_pcp.c - the PCP method (RFC 6887 MAP) on a libuv UDP socket.
 *
 * One connected UDP socket to the gateway's port 5351 (the one NAT-PMP uses; miniupnpd
 * answers both). One request at a time, retransmitted on RFC 6887's schedule (8.1.1:
 * 3 s, doubling, +-10 % jitter) and given up at cfg.pcp_timeout_ms, so start-up stays
 * short. Answers are parsed by nm_pcp.c; anything that is not the answer to the request in
 * flight (bad length, version, opcode, another nonce) is ignored and counted, and the
 * request keeps waiting for the right one. Every answer's epoch is checked (8.5): a server
 * that lost its state has lost our mapping, which is redone at once.
 *
 *   probe and check:  ANNOUNCE (the epoch only)
 *   map, renew, redo: MAP with the mapping's nonce (the same one for its whole life, as
 *                     renewals and the delete must carry it: 11.1, 15)
 *   delete:           MAP with lifetime 0 */
#include "nat_internal.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/random.h>

/* libnatpmp exports it (getgateway.c) but Debian does not ship its header. */
int getdefaultgateway(in_addr_t *addr);

enum { PC_REQ_NONE = 0, PC_REQ_ANNOUNCE, PC_REQ_MAP, PC_REQ_UNMAP };

enum {
  PC_FOR_PROBE = 1, /* ANNOUNCE at start-up */
  PC_FOR_MAP,       /* MAP at start-up */
  PC_FOR_CHECK,     /* ANNOUNCE as a liveness/epoch check */
  PC_FOR_REDO,      /* MAP after a check saw the server lose its state */
  PC_FOR_RENEW,     /* MAP at half-life */
  PC_FOR_UNMAP      /* MAP lifetime 0 at close */
};

static void pc_on_timer(uv_timer_t *t);

static int pc_op_of(int purpose) {
  switch (purpose) {
  case PC_FOR_PROBE: return NM__OP_PROBE;
  case PC_FOR_MAP: return NM__OP_MAP;
  case PC_FOR_CHECK:
  case PC_FOR_REDO: return NM__OP_CHECK;
  case PC_FOR_RENEW: return NM__OP_RENEW;
  default: return NM__OP_DELETE;
  }
}

static uint8_t pc_proto(const nm_portmap *pm) { return pm->cfg.proto == NM_PM_UDP ? 17 : 6; }

/* Answers we ignore (malformed, another nonce): whoever sits at the gateway's address can
 * send as many as it likes, so their debug lines are rate-limited (one bucket per process:
 * a servant has one port mapping). */
static nm_log_rate pc_log_ignored = NM_LOG_RATE_INIT("ignored PCP answers", 2);

/* A PCP result code -> our error, with the log line that explains it. */
static int pc_result_err(unsigned result) {
  switch (result) {
  case NM_PCP_NOT_AUTHORIZED: return NM_PM_ENOTAUTH;
  case NM_PCP_NO_RESOURCES:
  case NM_PCP_USER_EX_QUOTA: return NM_PM_ETABLEFULL;
  case NM_PCP_NETWORK_FAILURE: return NM_PM_ENONET;
  case NM_PCP_CANNOT_PROVIDE_EXTERNAL: return NM_PM_ECONFLICT;
  case NM_PCP_UNSUPP_VERSION: return NM_PM_ENOPCP;
  default: return NM_PM_EPCP;
  }
}

static uint32_t pc_random(nm_portmap *pm) {
  /* xorshift32, seeded from the kernel once: jitter needs no more. */
  uint32_t x = pm->pcp.rnd;
  if (x == 0) {
    if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t)sizeof(x) || x == 0)
      x = (uint32_t)uv_hrtime() | 1u;
  }
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  pm->pcp.rnd = x;
  return x;
}

static void pc_new_nonce(nm_portmap *pm) {
  uint8_t *n = pm->pcp.nonce;
  size_t i;
  if (getrandom(n, NM_PCP_NONCE_LEN, GRND_NONBLOCK) == (ssize_t)NM_PCP_NONCE_LEN)
    return;
  for (i = 0; i < NM_PCP_NONCE_LEN; i += 4) {
    uint32_t r = pc_random(pm);
    memcpy(n + i, &r, 4);
  }
}

static void pc_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  nm_portmap *pm = h->data;
  (void)hint;
  *buf = uv_buf_init((char *)pm->pcp.rbuf, sizeof(pm->pcp.rbuf));
}

static void pc_on_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                       unsigned flags);

static int pc_open(nm_portmap *pm) {
  struct nm__pcp *pc = &pm->pcp;
  struct sockaddr_in gw, me;
  int len = sizeof(me), r;

  if (pc->open)
    return 0;
  memset(&gw, 0, sizeof(gw));
  gw.sin_family = AF_INET;
  gw.sin_port = htons(NM_PCP_PORT);
  if (pm->cfg.natpmp_gateway[0] != '\0') {
    if (inet_pton(AF_INET, pm->cfg.natpmp_gateway, &gw.sin_addr) != 1)
      return NM_PM_EINVAL;
  } else {
    in_addr_t a = 0;
    /* Reads /proc/net/route: no blocking I/O. */
    if (getdefaultgateway(&a) < 0 || a == 0) {
      nat_info("pcp: no default gateway");
      return NM_PM_ENOGATEWAY;
    }
    gw.sin_addr.s_addr = a;
  }
  if (!pc->udp_init) {
    r = uv_udp_init(pm->loop, &pc->udp);
    if (r < 0)
      return r;
    pc->udp.data = pm;
    pc->udp_init = 1; /* closed with the other handles, whatever happens next */
  }
  /* Connected: the kernel drops datagrams from anyone but the gateway's port 5351, and an
   * ICMP port unreachable comes back as ECONNREFUSED, so "no PCP here" is quick. A failure
   * below leaves the handle for the next round to try again. */
  r = uv_udp_connect(&pc->udp, (const struct sockaddr *)&gw);
  if (r == UV_EISCONN)
    r = 0;
  if (r == 0)
    r = uv_udp_getsockname(&pc->udp, (struct sockaddr *)&me, &len);
  if (r == 0 && me.sin_family != AF_INET)
    r = NM_PM_EINVAL;
  if (r == 0) {
    r = uv_udp_recv_start(&pc->udp, pc_alloc, pc_on_recv);
    if (r == UV_EALREADY)
      r = 0;
  }
  if (r < 0) {
    nat_info("pcp: cannot open a socket to the gateway: %s", nm_portmap_strerror(r));
    return r;
  }
  /* Our address as the server sees it goes into every request (7.1); a server compares
   * it with the packet's source (ADDRESS_MISMATCH when a NAT sits in between). */
  nm_pcp_v4mapped(pc->client_ip, (const uint8_t *)&me.sin_addr.s_addr);
  inet_ntop(AF_INET, &me.sin_addr, pc->int_ip, sizeof(pc->int_ip));
  pc->open = 1;
  return 0;
}

/* Sends the request in flight once more (or the first time). */
static int pc_transmit(nm_portmap *pm) {
  struct nm__pcp *pc = &pm->pcp;
  uint8_t msg[NM_PCP_MAP_LEN];
  nm_pcp_map map;
  int len, r;
  uv_buf_t b;

  if (pc->req == PC_REQ_ANNOUNCE) {
    len = nm_pcp_build_announce(msg, sizeof(msg), pc->client_ip);
  } else {
    memset(&map, 0, sizeof(map));
    memcpy(map.nonce, pc->nonce, NM_PCP_NONCE_LEN);
    map.proto = pc_proto(pm);
    map.int_port = pm->int_port;
    /* Ask for the port we hold (renewal, delete) or the internal port (first time);
     * no preference for the external address: ::ffff:0.0.0.0 (11.1). */
    map.ext_port = pc->ext_port ? pc->ext_port : pm->int_port;
    {
      static const uint8_t any4[4] = {0, 0, 0, 0};
      nm_pcp_v4mapped(map.ext_ip, any4);
    }
    len = nm_pcp_build_map(msg, sizeof(msg), pc->client_ip,
                           pc->req == PC_REQ_UNMAP ? 0 : pm->cfg.lease_s, &map);
  }
  if (len < 0)
    return NM_PM_EINVAL;
  b = uv_buf_init((char *)msg, (unsigned)len);
  r = uv_udp_try_send(&pc->udp, &b, 1, NULL);
  pc->sends++;
  if (r == UV_EAGAIN || r == UV_ENOBUFS)
    return 0; /* the retransmission timer tries again */
  if (r == UV_ECONNREFUSED)
    return NM_PM_ENOPCP;
  return r < 0 ? r : 0;
}

static void pc_arm(nm_portmap *pm) {
  struct nm__pcp *pc = &pm->pcp;
  uint64_t now = uv_now(pm->loop);
  uint64_t cap_at = pc->req_started_ms + pm->cfg.pcp_timeout_ms;
  uint64_t wait = cap_at > now ? cap_at - now : 0;
  int jitter = (int)(pc_random(pm) % 201u) - 100;

  pc->rt_ms = nm_pcp_next_rt_ms(pc->rt_ms, jitter);
  if (pc->rt_ms < wait)
    wait = pc->rt_ms;
  uv_timer_start(&pc->timer, pc_on_timer, wait, 0);
}

static int pc_send(nm_portmap *pm, int req, int purpose) {
  struct nm__pcp *pc = &pm->pcp;
  int r;

  pc->req = req;
  pc->purpose = purpose;
  pc->req_started_ms = uv_now(pm->loop);
  pc->rt_ms = 0;
  if (req == PC_REQ_MAP)
    pc->asked = 1;
  r = pc_transmit(pm);
  if (r < 0) {
    pc->req = PC_REQ_NONE;
    return r;
  }
  pc_arm(pm);
  return 0;
}

void nm__pcp_abort(nm_portmap *pm) {
  uv_timer_stop(&pm->pcp.timer);
  pm->pcp.req = PC_REQ_NONE;
}

static void pc_finish(nm_portmap *pm, int err) {
  int op = pc_op_of(pm->pcp.purpose);
  nm__pcp_abort(pm);
  nm__method_done(pm, NM_MAP_PCP, op, err);
}

static void pc_on_timer(uv_timer_t *t) {
  nm_portmap *pm = nm__container_of(t, nm_portmap, pcp.timer);
  struct nm__pcp *pc = &pm->pcp;
  int r;

  if (pc->req == PC_REQ_NONE)
    return;
  if (uv_now(pm->loop) >= pc->req_started_ms + pm->cfg.pcp_timeout_ms) {
    nat_info("pcp: no answer from the gateway within %u ms (%u requests sent)",
             (unsigned)pm->cfg.pcp_timeout_ms, pc->sends);
    pc_finish(pm, NM_PM_ETIMEDOUT);
    return;
  }
  r = pc_transmit(pm);
  if (r < 0) {
    pc_finish(pm, r);
    return;
  }
  pc_arm(pm);
}

/* The epoch (8.5): checked on every answer to us, stored for the next one. */
static void pc_epoch(nm_portmap *pm, uint32_t epoch) {
  struct nm__pcp *pc = &pm->pcp;
  uint64_t now = uv_now(pm->loop);

  if (pc->have_epoch && nm_pcp_epoch_lost(pc->epoch, pc->epoch_at_ms, epoch, now)) {
    nat_warn("pcp: server epoch went from %u to %u: it restarted and lost our mapping",
             (unsigned)pc->epoch, (unsigned)epoch);
    if (pc->mapped)
      pc->reset_seen = 1;
  }
  pc->have_epoch = 1;
  pc->epoch = epoch;
  pc->epoch_at_ms = now;
}

static void pc_on_announce(nm_portmap *pm, const nm_pcp_answer *a) {
  struct nm__pcp *pc = &pm->pcp;

  if (a->result != NM_PCP_SUCCESS && a->result != NM_PCP_UNSUPP_OPCODE) {
    /* UNSUPP_OPCODE still says PCP is spoken: ANNOUNCE is only our probe. */
    int err = pc_result_err(a->result);
    nat_warn("pcp: server refused ANNOUNCE: %s (result %u)", nm_pcp_result_name(a->result),
             (unsigned)a->result);
    pc_finish(pm, err);
    return;
  }
  pc_epoch(pm, a->epoch);
  if (pc->purpose == PC_FOR_CHECK && pc->reset_seen) {
    int r = pc_send(pm, PC_REQ_MAP, PC_FOR_REDO); /* redo it now, not at renewal */
    if (r < 0)
      pc_finish(pm, r);
    return;
  }
  pc_finish(pm, 0);
}

static void pc_on_map(nm_portmap *pm, const nm_pcp_answer *a) {
  struct nm__pcp *pc = &pm->pcp;
  uint8_t v4[4];
  char ip[INET_ADDRSTRLEN];

  if (a->result != NM_PCP_SUCCESS) {
    int err = pc_result_err(a->result);
    nat_warn("pcp: server refused %s of port %u: %s (result %u)",
             pc->req == PC_REQ_UNMAP ? "the deletion" : "the mapping", (unsigned)pm->int_port,
             nm_pcp_result_name(a->result), (unsigned)a->result);
    if (pc->req != PC_REQ_UNMAP)
      pc->mapped = 0;
    pc_finish(pm, err);
    return;
  }
  pc_epoch(pm, a->epoch);
  if (pc->req == PC_REQ_UNMAP) {
    pc->mapped = 0;
    pc->asked = 0;
    pc_finish(pm, 0);
    return;
  }
  if (a->map.ext_port == 0) {
    nat_warn("pcp: server answered success with external port 0 for port %u: no mapping",
             (unsigned)pm->int_port);
    pc->mapped = 0;
    pc_finish(pm, NM_PM_EEXTPORT0);
    return;
  }
  if (a->lifetime == 0) {
    nat_warn("pcp: server granted a lifetime of 0 s for port %u: no mapping",
             (unsigned)pm->int_port);
    pc->mapped = 0;
    pc_finish(pm, NM_PM_EPCP);
    return;
  }
  if (nm_pcp_v4_of(a->map.ext_ip, v4) < 0) {
    nat_warn("pcp: server assigned an external address that is not IPv4");
    pc->mapped = 0;
    pc_finish(pm, NM_PM_EPCP);
    return;
  }
  inet_ntop(AF_INET, v4, ip, sizeof(ip));
  if (v4[0] == 0 && v4[1] == 0 && v4[2] == 0 && v4[3] == 0) {
    nat_warn("pcp: server reports external address 0.0.0.0 (its WAN side is down)");
    pc->mapped = 0;
    pc_finish(pm, NM_PM_ENONET);
    return;
  }
  if (a->lifetime < pm->cfg.lease_s)
    nat_debug("pcp: asked for %u s, granted %u s", (unsigned)pm->cfg.lease_s,
              (unsigned)a->lifetime);
  if (pc->ext_port != 0 && pc->ext_port != a->map.ext_port)
    nat_info("pcp: server moved our external port from %u to %u", (unsigned)pc->ext_port,
             (unsigned)a->map.ext_port);
  snprintf(pc->ext_ip, sizeof(pc->ext_ip), "%s", ip);
  pc->ext_port = a->map.ext_port;
  pc->lease_s = a->lifetime;
  pc->mapped = 1;
  pc_finish(pm, 0);
}

static void pc_on_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                       unsigned flags) {
  nm_portmap *pm = u->data;
  struct nm__pcp *pc = &pm->pcp;
  nm_pcp_answer a;
  nm_pcp_map req;
  int r;

  (void)from; /* connected: only the gateway's port 5351 gets through */
  if (n == 0 && from == NULL)
    return;
  if (pc->req == PC_REQ_NONE)
    return; /* nothing asked: a late duplicate, or an error for a finished request */
  if (n < 0) {
    /* ICMP port unreachable on the connected socket: nobody speaks PCP there. */
    nat_info("pcp: gateway does not speak PCP (%s)", uv_strerror((int)n));
    pc_finish(pm, n == UV_ECONNREFUSED ? NM_PM_ENOPCP : (int)n);
    return;
  }
  if ((flags & UV_UDP_PARTIAL) != 0 || (size_t)n > NM_PCP_MAX_LEN) {
    pc->ignored++;
    nm_log_ratelimited(&pc_log_ignored, NM_LOG_DEBUG, "nat: pcp: ignored an answer longer than %u bytes",
                       (unsigned)NM_PCP_MAX_LEN);
    return;
  }
  r = nm_pcp_parse((const uint8_t *)buf->base, (size_t)n,
                   pc->req == PC_REQ_ANNOUNCE ? NM_PCP_OP_ANNOUNCE : NM_PCP_OP_MAP, &a);
  if (r == NM_PCP_ENATPMP) {
    nat_info("pcp: gateway answered in NAT-PMP (version 0): it does not speak PCP");
    pc_finish(pm, NM_PM_ENOPCP);
    return;
  }
  if (r == 0 && pc->req != PC_REQ_ANNOUNCE) {
    memset(&req, 0, sizeof(req));
    memcpy(req.nonce, pc->nonce, NM_PCP_NONCE_LEN);
    req.proto = pc_proto(pm);
    req.int_port = pm->int_port;
    if (!nm_pcp_answer_matches(&a, &req))
      r = NM_PCP_ENONCE;
  }
  if (r < 0) {
    pc->ignored++;
    nm_log_ratelimited(&pc_log_ignored, NM_LOG_DEBUG, "nat: pcp: ignored an answer of %zd bytes: %s", n,
                       nm_pcp_strerror(r));
    return;
  }
  if (pc->req == PC_REQ_ANNOUNCE)
    pc_on_announce(pm, &a);
  else
    pc_on_map(pm, &a);
}

int nm__pcp_launch(nm_portmap *pm, int op) {
  struct nm__pcp *pc = &pm->pcp;
  int r;

  if (pc->req != PC_REQ_NONE)
    return NM_PM_EBUSY;
  r = pc_open(pm);
  if (r < 0)
    return r;
  pc->sends = 0;
  switch (op) {
  case NM__OP_PROBE:
    pc->reset_seen = 0;
    return pc_send(pm, PC_REQ_ANNOUNCE, PC_FOR_PROBE);
  case NM__OP_MAP:
    /* A new mapping: a new nonce, and the internal port as the suggestion. A mapping an
     * earlier MAP may have left at the server (close while in flight) is deleted at close
     * with the nonce of the latest one, which then owns it. */
    pc->ext_port = 0;
    pc_new_nonce(pm);
    return pc_send(pm, PC_REQ_MAP, PC_FOR_MAP);
  case NM__OP_CHECK:
    return pc_send(pm, PC_REQ_ANNOUNCE, PC_FOR_CHECK);
  case NM__OP_RENEW:
    return pc_send(pm, PC_REQ_MAP, PC_FOR_RENEW);
  case NM__OP_DELETE:
    return pc_send(pm, PC_REQ_UNMAP, PC_FOR_UNMAP);
  }
  return NM_PM_EINVAL;
}

int nm__pcp_close_handles(nm_portmap *pm, uv_close_cb cb) {
  struct nm__pcp *pc = &pm->pcp;
  int n = 0;
  nm__pcp_abort(pm);
  uv_close((uv_handle_t *)&pc->timer, cb);
  n++;
  if (pc->udp_init) {
    uv_close((uv_handle_t *)&pc->udp, cb);
    n++;
  }
  return n;
}

void nm__pcp_release(nm_portmap *pm) {
  pm->pcp.udp_init = 0;
  pm->pcp.open = 0;
}
