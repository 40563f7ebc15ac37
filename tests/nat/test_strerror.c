/* test_strerror.c - every error code has its own text; libuv codes pass through. */
#include "nat_test.h"
#include "nm_portmap.h"

int main(void) {
  int e, f;
  for (e = NM_PM_EPCP; e <= NM_PM_EINVAL; e++) {
    const char *s = nm_portmap_strerror(e);
    CHECK(s != NULL && strcmp(s, "unknown error") != 0);
    for (f = NM_PM_EPCP; f < e; f++)
      CHECK(strcmp(s, nm_portmap_strerror(f)) != 0);
  }
  CHECK_STREQ(nm_portmap_strerror(0), "success");
  CHECK_STREQ(nm_portmap_strerror(UV_ECONNREFUSED), uv_strerror(UV_ECONNREFUSED));
  CHECK_STREQ(nm_portmap_strerror(-9999), "unknown error");
  CHECK_STREQ(nm_portmap_strerror(12), "unknown error");
  CHECK_STREQ(nm_map_method_name(NM_MAP_UPNP), "upnp");
  CHECK_STREQ(nm_map_method_name(NM_MAP_NATPMP), "natpmp");
  CHECK_STREQ(nm_map_method_name(NM_MAP_PCP), "pcp");
  CHECK_STREQ(nm_map_method_name(NM_MAP_NONE), "none");
  NAT_TEST_DONE("nat_strerror");
}
