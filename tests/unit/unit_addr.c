/* nm_addr: the one spelling of addresses, both families, and which are candidates. */
#include "nm_addr.h"
#include "nmt.h"

#include <netinet/in.h>

static void test_str(void) {
  char b[NM_ADDR_STRLEN];
  NMT_EQ_STR(nm_addr_str("11.0.0.3", 4001, b), "11.0.0.3:4001");
  NMT_EQ_STR(nm_addr_str("2001:db8::1", 4001, b), "[2001:db8::1]:4001");
  NMT_EQ_STR(nm_addr_str("2001:db8::1", 0, b), "2001:db8::1");
  NMT_EQ_STR(nm_addr_str("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", 65535, b),
             "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535");
}

static void test_family_and_sockaddr(void) {
  NMT_EQ_INT(nm_addr_family("1.2.3.4"), AF_INET);
  NMT_EQ_INT(nm_addr_family("::1"), AF_INET6);
  NMT_CHECK(nm_addr_family("fe80::1%eth0") < 0);
  NMT_CHECK(nm_addr_family("[::1]") < 0);
  NMT_CHECK(nm_addr_family("host") < 0);
  NMT_CHECK(nm_addr_family("") < 0);
  struct sockaddr_storage ss;
  char ip[NM_IP_STRLEN];
  uint16_t port;
  NMT_EQ_INT(nm_addr_to_sockaddr("2001:db8::5", 85, &ss), 0);
  NMT_EQ_INT(nm_addr_from_sockaddr((struct sockaddr *)&ss, ip, sizeof ip, &port), 0);
  NMT_EQ_STR(ip, "2001:db8::5");
  NMT_EQ_INT(port, 85);
  /* An IPv4 peer on a dual-stack socket reads as plain IPv4. */
  NMT_EQ_INT(nm_addr_to_sockaddr("::ffff:11.0.0.2", 7, &ss), 0);
  NMT_EQ_INT(nm_addr_from_sockaddr((struct sockaddr *)&ss, ip, sizeof ip, &port), 0);
  NMT_EQ_STR(ip, "11.0.0.2");
  NMT_EQ_INT(nm_addr_to_sockaddr("nope", 7, &ss), -22);
}

static void test_candidates(void) {
  static const char *yes[] = {"11.0.0.3", "192.168.1.10", "10.0.0.1", "100.64.0.2", "2001:db8::1", "fd00::1"};
  static const char *no[] = {"0.0.0.0", "127.0.0.1", "169.254.1.1", "224.0.0.1", "255.255.255.255",
                             "::", "::1", "fe80::1", "ff02::1", "::ffff:1.2.3.4", "fe80::1%eth0", "x"};
  for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) NMT_CHECK(nm_addr_is_candidate(yes[i]));
  for (size_t i = 0; i < sizeof no / sizeof *no; i++)
    if (!NMT_CHECK(!nm_addr_is_candidate(no[i]))) fprintf(stderr, "       %s\n", no[i]);
  NMT_CHECK(nm_addr_equal("::1", "0:0::1"));
  NMT_CHECK(!nm_addr_equal("::1", "127.0.0.1"));
  NMT_CHECK(nm_addr_equal("10.0.0.1", "10.0.0.1"));
}

int main(void) {
  NMT_RUN(test_str);
  NMT_RUN(test_family_and_sockaddr);
  NMT_RUN(test_candidates);
  return nmt_done();
}
