/* test_pcp_sim.c - the port mapper against a fake PCP server (RFC 6887).
 *
 *   nat_test_pcp_sim SCENARIO 127.0.0.X
 *
 * The fake server is a uv_udp socket on 127.0.0.X:5351 in this process, on the same
 * loop; the mapper is pointed at it with cfg.natpmp_gateway, UPnP and NAT-PMP off unless
 * a scenario is about the choice between methods (the fake then answers NAT-PMP too, as
 * miniupnpd does). Each scenario is one behaviour, most of them one way a server can
 * misbehave; events are awaited with a deadline, never slept for. */
#include "nat_test.h"
#include "nm_be.h"
#include "nm_pcp.h"
#include "nm_portmap.h"
#include "sim.h"

#include <arpa/inet.h>

/* What the fake sends before its real answer to a MAP request. */
enum {
  BAD_NONE = 0,
  BAD_NONCE,    /* the answer for another mapping (nonce flipped), external port 6666 */
  BAD_SHORT,    /* 20 bytes */
  BAD_LONG,     /* 1104 bytes */
  BAD_ALIGN,    /* 62 bytes */
  BAD_VERSION,  /* version 1 */
  BAD_OPCODE,   /* an ANNOUNCE answer */
  BAD_REQUEST,  /* R bit clear */
  BAD_OPTION    /* an option longer than the packet */
};

typedef struct {
  uv_udp_t udp;
  uint32_t epoch_base; /* epoch = base + seconds since epoch_start_ms */
  uint64_t epoch_start_ms;
  int drop;            /* answer nothing */
  int result_map;      /* PCP result code for MAP requests (not for deletes) */
  uint32_t grant;      /* lifetime granted (0 = as requested) */
  int bad;             /* BAD_*: sent before the real answer */
  int natpmp;          /* 0: ignore NAT-PMP; 1: answer it; 2: refuse maps (result 2);
                          3: answer PCP with NAT-PMP's "unsupported version" */
  int n_total, n_announce, n_map, n_unmap, n_natpmp_map;
  uint64_t at_ms[8];   /* arrival of the first 8 PCP requests */
  uint8_t map_nonce[NM_PCP_NONCE_LEN]; /* of the first MAP */
  int nonce_changed;   /* a later MAP or the delete carried another nonce */
  uint8_t client_ip[16];
  uint32_t last_lifetime;
} fake_server;

static fake_server fs;

static uint32_t fs_epoch(void) {
  return fs.epoch_base + (uint32_t)((uv_now(&sim_loop) - fs.epoch_start_ms) / 1000);
}

static void fs_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  static char mem[2048];
  (void)h, (void)hint;
  *buf = uv_buf_init(mem, sizeof(mem));
}

static void fs_send(const uint8_t *p, size_t n, const struct sockaddr *to) {
  uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
  uv_udp_try_send(&fs.udp, &b, 1, to);
}

/* Just enough NAT-PMP (RFC 6886) for the chooser's scenarios. */
static void fs_natpmp(const uint8_t *q, ssize_t n, const struct sockaddr *from) {
  uint8_t a[16];
  memset(a, 0, sizeof(a));
  a[1] = (uint8_t)(128 + q[1]);
  nm_be32_put(a + 4, fs_epoch());
  if (q[1] == 0) {
    struct in_addr pub;
    inet_pton(AF_INET, "11.0.0.2", &pub);
    memcpy(a + 8, &pub.s_addr, 4);
    fs_send(a, 12, from);
    return;
  }
  if (n < 12)
    return;
  if (nm_be32_get(q + 8) != 0)
    fs.n_natpmp_map++;
  nm_be16_put(a + 2, fs.natpmp == 2 && nm_be32_get(q + 8) != 0 ? 2 : 0);
  nm_be16_put(a + 8, nm_be16_get(q + 4));
  nm_be16_put(a + 10, nm_be32_get(q + 8) ? nm_be16_get(q + 6) : 0);
  nm_be32_put(a + 12, nm_be32_get(q + 8));
  fs_send(a, 16, from);
}

static void fs_bad(const uint8_t *good, const struct sockaddr *from) {
  uint8_t b[1104];
  size_t n = NM_PCP_MAP_LEN;
  memset(b, 0, sizeof(b));
  memcpy(b, good, NM_PCP_MAP_LEN);
  switch (fs.bad) {
  case BAD_NONCE: b[24] ^= 0x5a; nm_be16_put(b + 42, 6666); break;
  case BAD_SHORT: n = 20; break;
  case BAD_LONG: n = sizeof(b); break;
  case BAD_ALIGN: n = 62; break;
  case BAD_VERSION: b[0] = 1; break;
  case BAD_OPCODE: b[1] = 0x80; break;
  case BAD_REQUEST: b[1] = 0x01; break;
  case BAD_OPTION: b[60] = 0x80; nm_be16_put(b + 62, 16); n = 68; break;
  default: return;
  }
  fs_send(b, n, from);
}

static void fs_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                    unsigned flags) {
  const uint8_t *q = (const uint8_t *)buf->base;
  uint8_t a[NM_PCP_MAP_LEN];
  uint32_t life;
  (void)u, (void)flags;
  if (n < 2 || from == NULL)
    return;
  if (q[0] == 0) {
    if (fs.natpmp && !fs.drop)
      fs_natpmp(q, n, from);
    return;
  }
  if (q[0] != 2 || n < NM_PCP_HDR_LEN)
    return;
  if (fs.n_total < 8)
    fs.at_ms[fs.n_total] = uv_now(&sim_loop);
  fs.n_total++;
  memcpy(fs.client_ip, q + 8, 16);
  if (fs.natpmp == 3) { /* a NAT-PMP-only server: "unsupported version" (RFC 6887 9) */
    uint8_t v0[8] = {0, (uint8_t)(128 + q[1]), 0, 1, 0, 0, 0, 0};
    nm_be32_put(v0 + 4, fs_epoch());
    fs_send(v0, sizeof(v0), from);
    return;
  }
  life = nm_be32_get(q + 4);
  if (q[1] == NM_PCP_OP_ANNOUNCE) {
    fs.n_announce++;
    if (fs.drop)
      return;
    memset(a, 0, NM_PCP_HDR_LEN);
    a[0] = 2;
    a[1] = 0x80;
    nm_be32_put(a + 8, fs_epoch());
    fs_send(a, NM_PCP_HDR_LEN, from);
    return;
  }
  if (q[1] != NM_PCP_OP_MAP || n != NM_PCP_MAP_LEN)
    return;
  if (life == 0)
    fs.n_unmap++;
  else
    fs.n_map++;
  fs.last_lifetime = life;
  if (fs.n_map == 1 && life != 0)
    memcpy(fs.map_nonce, q + 24, NM_PCP_NONCE_LEN);
  else if (memcmp(fs.map_nonce, q + 24, NM_PCP_NONCE_LEN) != 0)
    fs.nonce_changed = 1;
  if (fs.drop)
    return;
  memcpy(a, q, NM_PCP_MAP_LEN);
  a[1] = 0x81;
  a[3] = life == 0 ? 0 : (uint8_t)fs.result_map;
  if (life != 0 && fs.grant)
    life = fs.grant;
  nm_be32_put(a + 4, life);
  nm_be32_put(a + 8, fs_epoch());
  memset(a + 12, 0, 12);
  if (life == 0)
    nm_be16_put(a + 42, 0);
  { /* assigned external address ::ffff:11.0.0.2 */
    static const uint8_t pub[4] = {11, 0, 0, 2};
    nm_pcp_v4mapped(a + 44, pub);
  }
  if (life != 0 && fs.bad)
    fs_bad(a, from);
  fs_send(a, NM_PCP_MAP_LEN, from);
}

static int fs_start(const char *ip) {
  struct sockaddr_in sa;
  int r;
  memset(&fs, 0, sizeof(fs));
  fs.epoch_base = 10000;
  fs.epoch_start_ms = uv_now(&sim_loop);
  uv_ip4_addr(ip, NM_PCP_PORT, &sa);
  uv_udp_init(&sim_loop, &fs.udp);
  r = uv_udp_bind(&fs.udp, (const struct sockaddr *)&sa, UV_UDP_REUSEADDR);
  if (r == 0)
    r = uv_udp_recv_start(&fs.udp, fs_alloc, fs_recv);
  return r;
}

/* ---- the mapper ---------------------------------------------------------- */

static nm_portmap pm;
static nm_portmap_config cfg;
static uint64_t started_ms;
static int unmaps_at_close;

static void on_closed(nm_portmap *p) {
  (void)p;
  sim_rec.closed = 1;
  unmaps_at_close = fs.n_unmap;
}

static void on_event(nm_portmap *p, nm_portmap_event ev, int status, const nm_mapping_info *i,
                     void *arg) {
  (void)p, (void)arg;
  sim_record_event(ev, status, i);
}

static void start(void) {
  CHECK_EQ_INT(nm_portmap_init(&pm, &sim_loop, &cfg), 0);
  started_ms = uv_now(&sim_loop);
  CHECK_EQ_INT(nm_portmap_start(&pm, 4000, on_event, NULL), 0);
}

static void close_and_wait(void) {
  CHECK(sim_close_and_wait(&pm, on_closed, 5000));
}

static int c_three_maps(void) { return fs.n_map >= 3; }

/* ---- scenarios ----------------------------------------------------------- */

/* maps with the server's answer; the delete carries the mapping's nonce, lifetime 0 */
static void sc_map(void) {
  uint8_t me[16];
  static const uint8_t lo[4] = {127, 0, 0, 1};
  start();
  CHECK(sim_wait_until(sim_mapped, 3000));
  CHECK_EQ_INT(sim_rec.count[NM_PM_MAPPED], 1);
  CHECK_EQ_INT(sim_rec.last.method, NM_MAP_PCP);
  CHECK_STREQ(sim_rec.last.ext_ip, "11.0.0.2");
  CHECK_EQ_INT(sim_rec.last.ext_port, 4000);
  CHECK_EQ_INT(sim_rec.last.lease_s, 60);
  CHECK_STREQ(sim_rec.last.int_ip, "127.0.0.1");
  CHECK_EQ_INT(fs.n_announce, 1);
  CHECK_EQ_INT(fs.n_map, 1);
  CHECK_EQ_INT(fs.last_lifetime, 60);
  nm_pcp_v4mapped(me, lo);
  CHECK(memcmp(fs.client_ip, me, 16) == 0); /* the PCP client address is ours */
  close_and_wait();
  CHECK_EQ_INT(unmaps_at_close, 1); /* deleted before close_cb */
  CHECK_EQ_INT(fs.last_lifetime, 0);
  CHECK_EQ_INT(fs.nonce_changed, 0);
}

/* an answer that is not ours is ignored and the real one taken */
static void bad_then_good(int bad) {
  fs.bad = bad;
  start();
  CHECK(sim_wait_until(sim_mapped, 3000));
  CHECK_EQ_INT(sim_rec.last.ext_port, 4000); /* never 6666, the other mapping's */
  CHECK_EQ_INT(sim_rec.n, 1);
  CHECK_EQ_INT(pm.pcp.ignored, 1);
  close_and_wait();
  CHECK_EQ_INT(unmaps_at_close, 1);
}
static void sc_wrong_nonce(void) { bad_then_good(BAD_NONCE); }
static void sc_short(void) { bad_then_good(BAD_SHORT); }
static void sc_long(void) { bad_then_good(BAD_LONG); }
static void sc_unaligned(void) { bad_then_good(BAD_ALIGN); }
static void sc_wrong_version(void) { bad_then_good(BAD_VERSION); }
static void sc_wrong_opcode(void) { bad_then_good(BAD_OPCODE); }
static void sc_not_response(void) { bad_then_good(BAD_REQUEST); }
static void sc_bad_option(void) { bad_then_good(BAD_OPTION); }

/* an error result: no mapping, said once, with the matching reason */
static void refused(int result, int err) {
  fs.result_map = result;
  start();
  CHECK(sim_wait_until(sim_none, 3000));
  CHECK_EQ_INT(sim_rec.last_status, err);
  CHECK_EQ_INT(sim_rec.count[NM_PM_MAPPED], 0);
  CHECK_EQ_INT(sim_rec.count[NM_PM_NONE], 1);
  close_and_wait();
}
static void sc_not_authorized(void) { refused(NM_PCP_NOT_AUTHORIZED, NM_PM_ENOTAUTH); }
static void sc_no_resources(void) { refused(NM_PCP_NO_RESOURCES, NM_PM_ETABLEFULL); }
static void sc_cannot_provide(void) { refused(NM_PCP_CANNOT_PROVIDE_EXTERNAL, NM_PM_ECONFLICT); }
static void sc_unsupp_protocol(void) { refused(NM_PCP_UNSUPP_PROTOCOL, NM_PM_EPCP); }

/* a NAT-PMP-only server answers version 0: PCP gives up at once, no retransmission */
static void sc_natpmp_only(void) {
  fs.natpmp = 3;
  start();
  CHECK(sim_wait_until(sim_none, 3000));
  CHECK_EQ_INT(sim_rec.last_status, NM_PM_ENOPCP);
  CHECK(sim_rec.none_at_ms - started_ms < 300);
  CHECK_EQ_INT(fs.n_total, 1);
  close_and_wait();
}

/* a lifetime shorter than asked: renewed at half of it, same nonce, quietly */
static void sc_short_lifetime(void) {
  fs.grant = 2;
  start();
  CHECK(sim_wait_until(sim_mapped, 3000));
  CHECK_EQ_INT(sim_rec.last.lease_s, 2);
  CHECK(sim_wait_until(c_three_maps, 4000));
  CHECK_EQ_INT(fs.last_lifetime, 60); /* still asks for what it wants */
  CHECK_EQ_INT(fs.nonce_changed, 0);
  CHECK_EQ_INT(sim_rec.n, 1);
  close_and_wait();
  CHECK_EQ_INT(fs.nonce_changed, 0); /* the delete too */
}

/* the epoch goes backwards: the server rebooted; the mapping is redone at once */
static void sc_reboot(void) {
  cfg.check_s = 1;
  start();
  CHECK(sim_wait_until(sim_mapped, 3000));
  fs.epoch_base = 0;
  fs.epoch_start_ms = uv_now(&sim_loop);
  CHECK(sim_wait_until(sim_remapped, 4000));
  CHECK_EQ_INT(fs.n_map, 2);
  CHECK(fs.n_announce >= 2); /* noticed by a check, not by a renewal */
  CHECK_EQ_INT(sim_rec.count[NM_PM_LOST], 0);
  CHECK_EQ_INT(fs.nonce_changed, 0);
  close_and_wait();
}

/* a silent server: retransmitted after 3 s +- 10 % (RFC 6887 8.1.1), then given up at the
 * configured cap */
static void sc_no_answer(void) {
  fs.drop = 1;
  cfg.pcp_timeout_ms = 4000;
  start();
  CHECK(sim_wait_until(sim_none, 6000));
  CHECK_EQ_INT(sim_rec.last_status, NM_PM_ETIMEDOUT);
  CHECK_EQ_INT(fs.n_total, 2);
  CHECK(fs.at_ms[1] - fs.at_ms[0] >= 2700 - 5 && fs.at_ms[1] - fs.at_ms[0] <= 3300 + 5);
  CHECK(sim_rec.none_at_ms - started_ms >= 4000);
  CHECK(sim_rec.none_at_ms - started_ms < 4600);
  close_and_wait();
  CHECK_EQ_INT(fs.n_unmap, 0); /* never asked for a mapping: nothing to remove */
}

/* the server goes silent while mapped: renewals fail until expiry, LOST, then NONE */
static void sc_lost(void) {
  fs.grant = 2;
  start();
  CHECK(sim_wait_until(sim_mapped, 3000));
  fs.drop = 1;
  CHECK(sim_wait_until(sim_lost_then_none, 8000));
  CHECK_EQ_INT(sim_rec.order[0], NM_PM_MAPPED);
  CHECK_EQ_INT(sim_rec.order[1], NM_PM_LOST);
  CHECK_EQ_INT(sim_rec.order[2], NM_PM_NONE);
  close_and_wait();
}

/* a server that speaks NAT-PMP and PCP (as miniupnpd does): NAT-PMP maps, PCP never maps */
static void sc_prefers_natpmp(void) {
  fs.natpmp = 1;
  cfg.natpmp = 1;
  start();
  CHECK(sim_wait_until(sim_mapped, 3000));
  CHECK_EQ_INT(sim_rec.last.method, NM_MAP_NATPMP);
  CHECK_EQ_INT(fs.n_natpmp_map, 1);
  CHECK_EQ_INT(fs.n_map, 0);
  close_and_wait();
  CHECK_EQ_INT(fs.n_unmap, 0);
}

/* NAT-PMP refuses the mapping: PCP, probed alongside, maps instead */
static void sc_falls_back_to_pcp(void) {
  fs.natpmp = 2;
  cfg.natpmp = 1;
  start();
  CHECK(sim_wait_until(sim_mapped, 3000));
  CHECK_EQ_INT(sim_rec.last.method, NM_MAP_PCP);
  CHECK_EQ_INT(fs.n_natpmp_map, 1);
  CHECK_EQ_INT(fs.n_map, 1);
  CHECK_EQ_INT(sim_rec.count[NM_PM_NONE], 0);
  close_and_wait();
  CHECK_EQ_INT(unmaps_at_close, 1);
}

static const sim_scenario scenarios[] = {
    {"map", sc_map},
    {"wrong_nonce", sc_wrong_nonce},
    {"short", sc_short},
    {"long", sc_long},
    {"unaligned", sc_unaligned},
    {"wrong_version", sc_wrong_version},
    {"wrong_opcode", sc_wrong_opcode},
    {"not_response", sc_not_response},
    {"bad_option", sc_bad_option},
    {"not_authorized", sc_not_authorized},
    {"no_resources", sc_no_resources},
    {"cannot_provide", sc_cannot_provide},
    {"unsupp_protocol", sc_unsupp_protocol},
    {"natpmp_only", sc_natpmp_only},
    {"short_lifetime", sc_short_lifetime},
    {"reboot", sc_reboot},
    {"no_answer", sc_no_answer},
    {"lost", sc_lost},
    {"prefers_natpmp", sc_prefers_natpmp},
    {"falls_back_to_pcp", sc_falls_back_to_pcp},
};

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  fprintf(stderr, "leaked handle type %d\n", (int)h->type);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s SCENARIO 127.0.0.X\n", argv[0]);
    return 2;
  }
  CHECK_EQ_INT(uv_loop_init(&sim_loop), 0);
  if (fs_start(argv[2]) != 0) {
    fprintf(stderr, "cannot bind the fake server on %s:%d\n", argv[2], NM_PCP_PORT);
    return 1;
  }
  nm_portmap_config_default(&cfg);
  cfg.upnp = 0;
  cfg.natpmp = 0;
  cfg.lease_s = 60;
  cfg.pcp_timeout_ms = 600;
  cfg.natpmp_timeout_ms = 600;
  snprintf(cfg.natpmp_gateway, sizeof(cfg.natpmp_gateway), "%s", argv[2]);
  CHECK_EQ_INT(sim_run(scenarios, sizeof(scenarios) / sizeof(scenarios[0]), argv[1]), 0);
  uv_close((uv_handle_t *)&fs.udp, NULL);
  uv_run(&sim_loop, UV_RUN_DEFAULT);
  uv_walk(&sim_loop, close_walk, NULL);
  CHECK_EQ_INT(uv_loop_close(&sim_loop), 0);
  NAT_TEST_DONE(argv[1]);
}
