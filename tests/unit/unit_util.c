/* nm_util, nm_error, nm_proto: host:port parsing, ports, ids, error and name tables. */
#include "nm_error.h"
#include "nm_proto.h"
#include "nm_peerlist.h"
#include "nm_util.h"
#include "nmt.h"

#include <uv.h>

static void expect_hp(const char *s, int ok, const char *host, unsigned port) {
  char h[64] = "untouched";
  uint16_t p = 0;
  int rc = nm_parse_hostport(s, h, sizeof h, &p, 85);
  if ((rc == 0) != ok) fprintf(stderr, "       case \"%s\": rc %d host \"%s\"\n", s, rc, h);
  NMT_EQ_INT(rc == 0, ok);
  if (ok && rc == 0) {
    NMT_EQ_STR(h, host);
    NMT_EQ_INT(p, port);
  }
}

static void test_hostport(void) {
  expect_hp("manager", 1, "manager", 85);
  expect_hp("manager:8585", 1, "manager", 8585);
  expect_hp("127.0.0.1:1", 1, "127.0.0.1", 1);
  expect_hp("127.0.0.1:65535", 1, "127.0.0.1", 65535);
  expect_hp("[::1]:85", 1, "::1", 85);
  expect_hp("[::1]", 1, "::1", 85);
  expect_hp("::1", 1, "::1", 85);         /* bare IPv6: no port */
  expect_hp("fe80::1:2", 1, "fe80::1:2", 85);
  expect_hp("host:", 0, NULL, 0);
  expect_hp("host:0", 0, NULL, 0);
  expect_hp("host:65536", 0, NULL, 0);
  expect_hp("host:-1", 0, NULL, 0);
  expect_hp("host:80x", 0, NULL, 0);
  expect_hp("host: 80", 0, NULL, 0);
  expect_hp(":80", 0, NULL, 0);
  expect_hp("", 0, NULL, 0);
  expect_hp("[::1", 0, NULL, 0);
  expect_hp("[::1]x", 0, NULL, 0);
  expect_hp("[::1]:", 0, NULL, 0);
  expect_hp("[]:80", 0, NULL, 0);
  /* Too long for the caller's buffer: refused, not truncated. */
  char longhost[200];
  memset(longhost, 'a', 100);
  strcpy(longhost + 100, ":80");
  expect_hp(longhost, 0, NULL, 0);
}

static void test_port(void) {
  uint16_t p = 7;
  NMT_EQ_INT(nm_parse_port("0", 0, &p), -EINVAL);
  NMT_EQ_INT(nm_parse_port("0", 1, &p), 0);
  NMT_EQ_INT(p, 0);
  NMT_EQ_INT(nm_parse_port("65535", 0, &p), 0);
  NMT_EQ_INT(p, 65535);
  NMT_EQ_INT(nm_parse_port("65536", 1, &p), -EINVAL);
  NMT_EQ_INT(nm_parse_port("-5", 1, &p), -EINVAL);
  NMT_EQ_INT(nm_parse_port("", 1, &p), -EINVAL);
  NMT_EQ_INT(nm_parse_port(NULL, 1, &p), -EINVAL);
  NMT_EQ_INT(nm_parse_port("12a", 1, &p), -EINVAL);
  NMT_EQ_INT(nm_parse_port(" 80", 1, &p), -EINVAL);
  NMT_EQ_INT(nm_parse_port("+80", 1, &p), -EINVAL);
  NMT_EQ_INT(nm_parse_port("18446744073709551617", 1, &p), -EINVAL);
}

static void test_random_id(void) {
  char a[NM_ID_LEN + 1], b[NM_ID_LEN + 1];
  NMT_EQ_INT(nm_random_id(a), 0);
  NMT_EQ_INT(nm_random_id(b), 0);
  NMT_EQ_INT(strlen(a), NM_ID_LEN);
  NMT_CHECK(nm_id_valid(a));
  NMT_CHECK(nm_id_valid(b));
  NMT_CHECK(strcmp(a, b) != 0);
}

static void test_strerror(void) {
  NMT_EQ_STR(nm_strerror(0), "success");
  NMT_HAS(nm_strerror(NM_EFRAME_TOO_BIG), "larger");
  NMT_HAS(nm_strerror(NM_EXML_HOSTILE), "DOCTYPE");
  NMT_EQ_STR(nm_strerror(UV_ECONNREFUSED), uv_strerror(UV_ECONNREFUSED));
  NMT_EQ_STR(nm_strerror(-9999), "unknown error");
  /* Every natmesh code has its own text. */
  for (int e = NM_EQUEUE_FULL; e <= NM_EPROTO_VERSION; e++)
    NMT_CHECK(strcmp(nm_strerror(e), "unknown error") != 0);
}

static void test_proto_names(void) {
  NMT_EQ_STR(nm_msg_name(NM_MSG_STATUS_REQUEST), "status-request");
  NMT_EQ_STR(nm_msg_name(NM_MSG_CHAT), "chat");
  NMT_EQ_STR(nm_msg_name(0xEE), "unknown");
  static const char *states[] = {"unknown", "direct", "mapped", "suspicious", "relayed"};
  for (int i = 0; i < 5; i++) {
    nm_reach_state s;
    NMT_EQ_INT(nm_reach_parse(states[i], &s), 0);
    NMT_EQ_STR(nm_reach_name(s), states[i]);
  }
  nm_reach_state s;
  NMT_EQ_INT(nm_reach_parse("Direct", &s), -1);
  NMT_EQ_STR(nm_reach_name((nm_reach_state)99), "unknown");
}

int main(void) {
  NMT_RUN(test_hostport);
  NMT_RUN(test_port);
  NMT_RUN(test_random_id);
  NMT_RUN(test_strerror);
  NMT_RUN(test_proto_names);
  return nmt_done();
}
