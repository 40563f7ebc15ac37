/* test_natpmp_sim.c - the port mapper against a fake NAT-PMP router.
 *
 *   nat_test_natpmp_sim SCENARIO 127.0.0.X
 *
 * The fake router is a uv_udp socket on 127.0.0.X:5351 in this process, on
 * the same loop; the mapper is pointed at it with cfg.natpmp_gateway, UPnP
 * off (no multicast leaves the host). Each scenario is one behaviour; events
 * are awaited with a deadline, never slept for. ctest runs one process per
 * scenario, each with its own loopback address so they can run in parallel. */
#include "nat_test.h"
#include "nm_be.h"
#include "nm_portmap.h"
#include "sim.h"

#include <arpa/inet.h>

/* ---- the fake router ----------------------------------------------------- */

typedef struct {
  uv_udp_t udp;
  uint32_t epoch_base; /* epoch = base + seconds since epoch_start_ms */
  uint64_t epoch_start_ms;
  int drop;            /* answer nothing */
  int result_map;      /* NAT-PMP result code for map requests */
  int port0;           /* answer success with external port 0 */
  uint32_t grant;      /* lifetime granted (0 = as requested) */
  uint16_t ext_override; /* external port assigned (0 = as suggested) */
  int n_total, n_addr, n_map, n_unmap;
  uint16_t last_suggested;
} fake_router;

static fake_router fr;

static void fr_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  static char mem[64];
  (void)h, (void)hint;
  *buf = uv_buf_init(mem, sizeof(mem));
}

static void fr_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                    unsigned flags) {
  const unsigned char *q = (const unsigned char *)buf->base;
  unsigned char a[16];
  uint32_t epoch;
  uv_buf_t out;
  (void)flags;
  if (n < 2 || from == NULL || q[0] != 0)
    return;
  fr.n_total++;
  epoch = fr.epoch_base + (uint32_t)((uv_now(&sim_loop) - fr.epoch_start_ms) / 1000);
  memset(a, 0, sizeof(a));
  a[0] = 0;
  a[1] = (unsigned char)(128 + q[1]);
  nm_be32_put(a + 4, epoch);
  if (q[1] == 0) {
    struct in_addr pub;
    fr.n_addr++;
    if (fr.drop)
      return;
    inet_pton(AF_INET, "11.0.0.2", &pub);
    memcpy(a + 8, &pub.s_addr, 4);
    out = uv_buf_init((char *)a, 12);
  } else {
    uint16_t priv, sugg;
    uint32_t life;
    if (n < 12)
      return;
    priv = nm_be16_get(q + 4);
    sugg = nm_be16_get(q + 6);
    life = nm_be32_get(q + 8);
    if (life == 0)
      fr.n_unmap++;
    else {
      fr.n_map++;
      fr.last_suggested = sugg;
    }
    if (fr.drop)
      return;
    nm_be16_put(a + 2, life == 0 ? 0 : (uint16_t)fr.result_map);
    nm_be16_put(a + 8, priv);
    if (life != 0 && fr.grant)
      life = fr.grant;
    nm_be16_put(a + 10, life == 0 ? 0 : fr.port0 ? 0 : fr.ext_override ? fr.ext_override : sugg);
    nm_be32_put(a + 12, life);
    out = uv_buf_init((char *)a, 16);
  }
  uv_udp_try_send(u, &out, 1, from);
}

static int fr_start(const char *ip) {
  struct sockaddr_in sa;
  int r;
  memset(&fr, 0, sizeof(fr));
  fr.epoch_base = 10000;
  fr.epoch_start_ms = uv_now(&sim_loop);
  uv_ip4_addr(ip, 5351, &sa);
  uv_udp_init(&sim_loop, &fr.udp);
  r = uv_udp_bind(&fr.udp, (const struct sockaddr *)&sa, UV_UDP_REUSEADDR);
  if (r == 0)
    r = uv_udp_recv_start(&fr.udp, fr_alloc, fr_recv);
  return r;
}

/* ---- what the mapper reported (sim_rec, and the close) -------------------- */

static nm_portmap pm;
static uint64_t started_ms;
static int unmaps_at_close; /* the router's unmap count when close_cb ran */
static int close_in_cb;     /* close from the MAPPED callback */

static void on_closed(nm_portmap *p) {
  (void)p;
  sim_rec.closed = 1;
  unmaps_at_close = fr.n_unmap;
}

static void on_event(nm_portmap *p, nm_portmap_event ev, int status, const nm_mapping_info *i,
                     void *arg) {
  (void)arg;
  sim_record_event(ev, status, i);
  if (close_in_cb && ev == NM_PM_MAPPED)
    nm_portmap_close(p, on_closed);
}

static int c_three_maps(void) { return fr.n_map >= 3; }
static int c_six_requests(void) { return fr.n_total >= 6; }
static int c_any_request(void) { return fr.n_total >= 1; }

/* ---- scenarios ----------------------------------------------------------- */

static nm_portmap_config cfg;

static void start(void) {
  CHECK_EQ_INT(nm_portmap_init(&pm, &sim_loop, &cfg), 0);
  started_ms = uv_now(&sim_loop);
  CHECK_EQ_INT(nm_portmap_start(&pm, 4000, on_event, NULL), 0);
  CHECK_EQ_INT(nm_portmap_start(&pm, 4000, on_event, NULL), NM_PM_EBUSY);
}

static void close_and_wait(void) {
  CHECK(sim_close_and_wait(&pm, on_closed, 5000));
}

/* maps, reports the router's answer, removes the mapping on close */
static void sc_map(void) {
  nm_mapping_info got;
  start();
  CHECK(sim_wait_until(sim_mapped, 3000));
  CHECK_EQ_INT(sim_rec.count[NM_PM_MAPPED], 1);
  CHECK_EQ_INT(sim_rec.last_status, 0);
  CHECK_EQ_INT(sim_rec.last.method, NM_MAP_NATPMP);
  CHECK_STREQ(sim_rec.last.ext_ip, "11.0.0.2");
  CHECK_EQ_INT(sim_rec.last.ext_port, 4000);
  CHECK_EQ_INT(sim_rec.last.int_port, 4000);
  CHECK_EQ_INT(sim_rec.last.lease_s, 60);
  CHECK_STREQ(sim_rec.last.int_ip, "127.0.0.1");
  CHECK_EQ_INT(nm_portmap_get(&pm, &got), 0);
  CHECK_EQ_INT(got.ext_port, 4000);
  CHECK_EQ_INT(fr.n_addr, 1);
  CHECK_EQ_INT(fr.n_map, 1);
  CHECK_EQ_INT(fr.last_suggested, 4000);
  close_and_wait();
  CHECK_EQ_INT(unmaps_at_close, 1); /* deleted before close_cb */
  CHECK_EQ_INT(nm_portmap_get(&pm, &got), NM_PM_ENOMAPPING);
}

/* "success" with external port 0 is no mapping, said once */
static void sc_port0(void) {
  fr.port0 = 1;
  start();
  CHECK(sim_wait_until(sim_none, 3000));
  CHECK_EQ_INT(sim_rec.last_status, NM_PM_EEXTPORT0);
  CHECK_EQ_INT(sim_rec.count[NM_PM_MAPPED], 0);
  CHECK_EQ_INT(sim_rec.count[NM_PM_NONE], 1);
  close_and_wait();
}

static void sc_full(void) {
  fr.result_map = 4; /* out of resources */
  start();
  CHECK(sim_wait_until(sim_none, 3000));
  CHECK_EQ_INT(sim_rec.last_status, NM_PM_ETABLEFULL);
  CHECK_EQ_INT(sim_rec.count[NM_PM_MAPPED], 0);
  close_and_wait();
}

static void sc_not_authorized(void) {
  fr.result_map = 2;
  start();
  CHECK(sim_wait_until(sim_none, 3000));
  CHECK_EQ_INT(sim_rec.last_status, NM_PM_ENOTAUTH);
  close_and_wait();
}

/* a silent gateway: "no mapping" within the cap, after retransmitting */
static void sc_timeout(void) {
  fr.drop = 1;
  start();
  CHECK(sim_wait_until(sim_none, 3000));
  CHECK_EQ_INT(sim_rec.last_status, NM_PM_ETIMEDOUT);
  CHECK(sim_rec.none_at_ms - started_ms >= 500);
  CHECK(sim_rec.none_at_ms - started_ms < 1500);
  CHECK(fr.n_total >= 2);
  close_and_wait();
  CHECK_EQ_INT(fr.n_unmap, 0); /* never asked for a mapping: nothing to remove */
}

/* short leases are renewed at half-life, asking for the same port, silently */
static void sc_renew(void) {
  fr.grant = 2;
  start();
  CHECK(sim_wait_until(sim_mapped, 3000));
  CHECK_EQ_INT(sim_rec.last.lease_s, 2);
  CHECK(sim_wait_until(c_three_maps, 4000));
  CHECK_EQ_INT(fr.last_suggested, 4000);
  CHECK_EQ_INT(sim_rec.n, 1); /* only MAPPED: renewals that change nothing are quiet */
  close_and_wait();
}

/* the router's epoch goes backwards: it rebooted; the mapping is redone */
static void sc_reboot(void) {
  cfg.check_s = 1;
  start();
  CHECK(sim_wait_until(sim_mapped, 3000));
  fr.epoch_base = 0;
  fr.epoch_start_ms = uv_now(&sim_loop);
  CHECK(sim_wait_until(sim_remapped, 4000));
  CHECK_EQ_INT(fr.n_map, 2);
  CHECK_EQ_INT(sim_rec.last.ext_port, 4000);
  CHECK_EQ_INT(sim_rec.count[NM_PM_LOST], 0);
  close_and_wait();
}

/* the router goes silent: renewals fail until expiry, LOST, then NONE */
static void sc_lost(void) {
  fr.grant = 2;
  start();
  CHECK(sim_wait_until(sim_mapped, 3000));
  fr.drop = 1;
  CHECK(sim_wait_until(sim_lost_then_none, 8000));
  CHECK_EQ_INT(sim_rec.n, 3);
  CHECK_EQ_INT(sim_rec.order[0], NM_PM_MAPPED);
  CHECK_EQ_INT(sim_rec.order[1], NM_PM_LOST);
  CHECK_EQ_INT(sim_rec.order[2], NM_PM_NONE);
  CHECK_EQ_INT(fr.n_map >= 3, 1); /* first map, renewal, retry at expiry */
  close_and_wait();
}

/* "no mapping" is said once however many quiet retries follow */
static void sc_none_once(void) {
  fr.drop = 1;
  cfg.retry_s = 1;
  start();
  CHECK(sim_wait_until(c_six_requests, 8000));
  CHECK_EQ_INT(sim_rec.count[NM_PM_NONE], 1);
  CHECK_EQ_INT(sim_rec.n, 1);
  close_and_wait();
}

/* a router that appears later is found by the quiet retry */
static void sc_recover(void) {
  fr.drop = 1;
  cfg.retry_s = 1;
  start();
  CHECK(sim_wait_until(sim_none, 3000));
  fr.drop = 0;
  CHECK(sim_wait_until(sim_mapped, 4000));
  CHECK_EQ_INT(sim_rec.order[0], NM_PM_NONE);
  CHECK_EQ_INT(sim_rec.order[1], NM_PM_MAPPED);
  close_and_wait();
  CHECK_EQ_INT(unmaps_at_close, 1);
}

/* the router hands out another external port at renewal: REMAPPED */
static void sc_port_change(void) {
  fr.grant = 2;
  start();
  CHECK(sim_wait_until(sim_mapped, 3000));
  fr.ext_override = 5555;
  CHECK(sim_wait_until(sim_remapped, 4000));
  CHECK_EQ_INT(sim_rec.last.ext_port, 5555);
  close_and_wait();
}

/* closing while the first probe is in flight: prompt, nothing to remove */
static void sc_close_early(void) {
  fr.drop = 1;
  start();
  CHECK(sim_wait_until(c_any_request, 2000));
  nm_portmap_close(&pm, on_closed);
  CHECK(sim_wait_until(sim_closed, 1000));
  CHECK_EQ_INT(sim_rec.n, 0);
  CHECK_EQ_INT(fr.n_unmap, 0);
}

/* closing from inside the callback is safe and still removes the mapping */
static void sc_close_in_cb(void) {
  close_in_cb = 1;
  start();
  CHECK(sim_wait_until(sim_closed, 4000));
  CHECK_EQ_INT(sim_rec.count[NM_PM_MAPPED], 1);
  CHECK_EQ_INT(unmaps_at_close, 1);
}

static const sim_scenario scenarios[] = {
    {"map", sc_map},           {"port0", sc_port0},           {"full", sc_full},
    {"not_authorized", sc_not_authorized}, {"timeout", sc_timeout}, {"renew", sc_renew},
    {"reboot", sc_reboot},     {"lost", sc_lost},             {"none_once", sc_none_once},
    {"recover", sc_recover},   {"port_change", sc_port_change}, {"close_early", sc_close_early},
    {"close_in_cb", sc_close_in_cb},
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
  if (fr_start(argv[2]) != 0) {
    fprintf(stderr, "cannot bind the fake router on %s:5351\n", argv[2]);
    return 1;
  }
  nm_portmap_config_default(&cfg);
  cfg.upnp = 0;
  cfg.pcp = 0; /* PCP has its own fake router (test_pcp_sim.c) */
  cfg.lease_s = 60;
  cfg.natpmp_timeout_ms = 600;
  snprintf(cfg.natpmp_gateway, sizeof(cfg.natpmp_gateway), "%s", argv[2]);
  CHECK_EQ_INT(sim_run(scenarios, sizeof(scenarios) / sizeof(scenarios[0]), argv[1]), 0);
  /* every handle the mapper opened must be closed by now */
  uv_close((uv_handle_t *)&fr.udp, NULL);
  uv_run(&sim_loop, UV_RUN_DEFAULT);
  uv_walk(&sim_loop, close_walk, NULL);
  CHECK_EQ_INT(uv_loop_close(&sim_loop), 0);
  NAT_TEST_DONE(argv[1]);
}
