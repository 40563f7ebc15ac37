/* test_config.c - the <nat> config keys: defaults, values, errors that name
 * the element and the value. */
#include "nat_test.h"
#include "nm_portmap.h"

static void defaults(void) {
  nm_portmap_config c;
  nm_portmap_config_default(&c);
  CHECK_EQ_INT(c.upnp, 1);
  CHECK_EQ_INT(c.natpmp, 1);
  CHECK_EQ_INT(c.lease_s, 3600);
  CHECK_EQ_INT(c.upnp_discover_ms, 2000);
  CHECK_EQ_INT(c.natpmp_timeout_ms, 3000);
  CHECK_EQ_INT(c.pcp, 1);
  CHECK_EQ_INT(c.pcp_timeout_ms, 5000);
  CHECK_EQ_INT(c.check_s, 60);
  CHECK_EQ_INT(c.retry_s, 60);
  CHECK_EQ_INT(c.proto, NM_PM_TCP);
  CHECK_STREQ(c.description, "natmesh");
  CHECK_STREQ(c.natpmp_gateway, "");
}

static void sets_values(void) {
  nm_portmap_config c;
  char err[128];
  nm_portmap_config_default(&c);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "upnp", "off", err, sizeof(err)), 0);
  CHECK_EQ_INT(c.upnp, 0);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "upnp", "on", err, sizeof(err)), 0);
  CHECK_EQ_INT(c.upnp, 1);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "natpmp", "off", err, sizeof(err)), 0);
  CHECK_EQ_INT(c.natpmp, 0);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "pcp", "off", err, sizeof(err)), 0);
  CHECK_EQ_INT(c.pcp, 0);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "pcp_timeout_ms", "250", err, sizeof(err)), 0);
  CHECK_EQ_INT(c.pcp_timeout_ms, 250);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "lease", "120", err, sizeof(err)), 0);
  CHECK_EQ_INT(c.lease_s, 120);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "lease", "30", err, sizeof(err)), 0);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "lease", "604800", err, sizeof(err)), 0);
  CHECK_EQ_INT(c.lease_s, 604800);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "proto", "udp", err, sizeof(err)), 0);
  CHECK_EQ_INT(c.proto, NM_PM_UDP);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "gateway", "10.0.1.1", err, sizeof(err)), 0);
  CHECK_STREQ(c.natpmp_gateway, "10.0.1.1");
  CHECK_EQ_INT(nm_portmap_config_set(&c, "gateway", "", err, sizeof(err)), 0);
  CHECK_STREQ(c.natpmp_gateway, "");
  CHECK_EQ_INT(nm_portmap_config_set(&c, "check", "5", err, sizeof(err)), 0);
  CHECK_EQ_INT(c.check_s, 5);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "description", "natmesh servant", err, sizeof(err)), 0);
  CHECK_STREQ(c.description, "natmesh servant");
}

static void rejects_bad_values_by_name(void) {
  nm_portmap_config c;
  char err[128];
  nm_portmap_config_default(&c);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "upnp", "maybe", err, sizeof(err)), NM_PM_EINVAL);
  CHECK(strstr(err, "<upnp>") != NULL && strstr(err, "maybe") != NULL);
  CHECK_EQ_INT(c.upnp, 1); /* unchanged */
  CHECK_EQ_INT(nm_portmap_config_set(&c, "lease", "29", err, sizeof(err)), NM_PM_EINVAL);
  CHECK(strstr(err, "<lease>") != NULL && strstr(err, "30..604800") != NULL);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "lease", "-5", err, sizeof(err)), NM_PM_EINVAL);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "lease", " 60", err, sizeof(err)), NM_PM_EINVAL);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "lease", "60s", err, sizeof(err)), NM_PM_EINVAL);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "lease", "", err, sizeof(err)), NM_PM_EINVAL);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "lease", "99999999999999999999", err, sizeof(err)),
               NM_PM_EINVAL);
  CHECK_EQ_INT(c.lease_s, 3600);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "proto", "sctp", err, sizeof(err)), NM_PM_EINVAL);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "gateway", "router.lan", err, sizeof(err)),
               NM_PM_EINVAL);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "description", "", err, sizeof(err)), NM_PM_EINVAL);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "description",
                                     "a description far too long for the router's table",
                                     err, sizeof(err)),
               NM_PM_EINVAL);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "pcp", "perhaps", err, sizeof(err)), NM_PM_EINVAL);
  CHECK(strstr(err, "<pcp>") != NULL && strstr(err, "perhaps") != NULL);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "pcp_timeout_ms", "30001", err, sizeof(err)),
               NM_PM_EINVAL);
  CHECK(strstr(err, "<pcp_timeout_ms>") != NULL && strstr(err, "250..30000") != NULL);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "stun", "on", err, sizeof(err)), NM_PM_EINVAL);
  CHECK(strstr(err, "<stun>") != NULL);
  CHECK_EQ_INT(nm_portmap_config_set(&c, NULL, "on", err, sizeof(err)), NM_PM_EINVAL);
  CHECK_EQ_INT(nm_portmap_config_set(&c, "upnp", NULL, NULL, 0), NM_PM_EINVAL);
}

static void init_validates(void) {
  nm_portmap pm;
  nm_portmap_config c;
  uv_loop_t loop;
  uv_loop_init(&loop);
  nm_portmap_config_default(&c);
  c.lease_s = 0;
  CHECK_EQ_INT(nm_portmap_init(&pm, &loop, &c), NM_PM_EINVAL);
  CHECK_EQ_INT(nm_portmap_init(NULL, &loop, NULL), NM_PM_EINVAL);
  CHECK_EQ_INT(nm_portmap_init(&pm, NULL, NULL), NM_PM_EINVAL);
  /* every method off: init fine, start refuses */
  nm_portmap_config_default(&c);
  c.upnp = 0;
  c.natpmp = 0;
  c.pcp = 0;
  CHECK_EQ_INT(nm_portmap_init(&pm, &loop, &c), 0);
  CHECK_EQ_INT(nm_portmap_start(&pm, 4000, NULL, NULL), NM_PM_EINVAL);
  nm_portmap_close(&pm, NULL);
  CHECK_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

static void on_ev(nm_portmap *pm, nm_portmap_event ev, int status, const nm_mapping_info *i,
                  void *arg) {
  (void)pm, (void)ev, (void)status, (void)i, (void)arg;
}

static void start_validates(void) {
  nm_portmap pm;
  nm_portmap_config c;
  nm_mapping_info info;
  uv_loop_t loop;
  uv_loop_init(&loop);
  nm_portmap_config_default(&c);
  c.upnp = 0;
  c.natpmp = 0;
  c.pcp = 0;
  CHECK_EQ_INT(nm_portmap_init(&pm, &loop, &c), 0);
  CHECK_EQ_INT(nm_portmap_start(&pm, 0, on_ev, NULL), NM_PM_EINVAL);
  CHECK_EQ_INT(nm_portmap_start(&pm, 4000, on_ev, NULL), NM_PM_EDISABLED);
  CHECK_EQ_INT(nm_portmap_get(&pm, &info), NM_PM_ENOMAPPING);
  nm_portmap_close(&pm, NULL);
  nm_portmap_close(&pm, NULL); /* twice is harmless */
  CHECK_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void) {
  defaults();
  sets_values();
  rejects_bad_values_by_name();
  init_validates();
  start_validates();
  NAT_TEST_DONE("nat_config");
}
