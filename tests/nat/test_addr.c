/* test_addr.c - address classification and the double-NAT verdict. */
#include "nat_test.h"
#include "nm_portmap.h"

static void classifies_special_ranges(void) {
  CHECK_EQ_INT(nm_addr_classify("10.0.0.1"), NM_ADDR_PRIVATE);
  CHECK_EQ_INT(nm_addr_classify("10.255.255.255"), NM_ADDR_PRIVATE);
  CHECK_EQ_INT(nm_addr_classify("172.16.0.1"), NM_ADDR_PRIVATE);
  CHECK_EQ_INT(nm_addr_classify("172.31.255.254"), NM_ADDR_PRIVATE);
  CHECK_EQ_INT(nm_addr_classify("172.32.0.1"), NM_ADDR_PUBLIC);
  CHECK_EQ_INT(nm_addr_classify("172.15.255.255"), NM_ADDR_PUBLIC);
  CHECK_EQ_INT(nm_addr_classify("192.168.1.1"), NM_ADDR_PRIVATE);
  CHECK_EQ_INT(nm_addr_classify("192.169.0.1"), NM_ADDR_PUBLIC);
  CHECK_EQ_INT(nm_addr_classify("100.64.0.1"), NM_ADDR_CGNAT);
  CHECK_EQ_INT(nm_addr_classify("100.127.255.255"), NM_ADDR_CGNAT);
  CHECK_EQ_INT(nm_addr_classify("100.128.0.1"), NM_ADDR_PUBLIC);
  CHECK_EQ_INT(nm_addr_classify("100.63.255.255"), NM_ADDR_PUBLIC);
  CHECK_EQ_INT(nm_addr_classify("127.0.0.1"), NM_ADDR_LOOPBACK);
  CHECK_EQ_INT(nm_addr_classify("127.9.9.9"), NM_ADDR_LOOPBACK);
  CHECK_EQ_INT(nm_addr_classify("169.254.10.1"), NM_ADDR_LINKLOCAL);
  CHECK_EQ_INT(nm_addr_classify("0.0.0.0"), NM_ADDR_UNSPEC);
  CHECK_EQ_INT(nm_addr_classify("224.0.0.1"), NM_ADDR_MULTICAST);
  CHECK_EQ_INT(nm_addr_classify("239.255.255.250"), NM_ADDR_MULTICAST);
  CHECK_EQ_INT(nm_addr_classify("192.0.2.7"), NM_ADDR_RESERVED);
  CHECK_EQ_INT(nm_addr_classify("198.51.100.7"), NM_ADDR_RESERVED);
  CHECK_EQ_INT(nm_addr_classify("203.0.113.7"), NM_ADDR_RESERVED);
  CHECK_EQ_INT(nm_addr_classify("198.18.0.1"), NM_ADDR_RESERVED);
  CHECK_EQ_INT(nm_addr_classify("198.19.255.255"), NM_ADDR_RESERVED);
  CHECK_EQ_INT(nm_addr_classify("198.20.0.1"), NM_ADDR_PUBLIC);
  CHECK_EQ_INT(nm_addr_classify("255.255.255.255"), NM_ADDR_RESERVED);
  CHECK_EQ_INT(nm_addr_classify("11.0.0.2"), NM_ADDR_PUBLIC); /* netsim's internet */
  CHECK_EQ_INT(nm_addr_classify("8.8.8.8"), NM_ADDR_PUBLIC);
}

static void accepts_v4_mapped_v6(void) {
  CHECK_EQ_INT(nm_addr_classify("::ffff:10.1.2.3"), NM_ADDR_PRIVATE);
  CHECK_EQ_INT(nm_addr_classify("::FFFF:11.0.0.2"), NM_ADDR_PUBLIC);
}

static void rejects_garbage(void) {
  CHECK_EQ_INT(nm_addr_classify(NULL), NM_ADDR_INVALID);
  CHECK_EQ_INT(nm_addr_classify(""), NM_ADDR_INVALID);
  CHECK_EQ_INT(nm_addr_classify("1.2.3"), NM_ADDR_INVALID);
  CHECK_EQ_INT(nm_addr_classify("1.2.3.256"), NM_ADDR_INVALID);
  CHECK_EQ_INT(nm_addr_classify("2001:db8::1"), NM_ADDR_INVALID);
  CHECK_EQ_INT(nm_addr_classify(" 1.2.3.4"), NM_ADDR_INVALID);
  CHECK_EQ_INT(nm_addr_classify("1.2.3.4 "), NM_ADDR_INVALID);
  CHECK_STREQ(nm_addr_class_name(NM_ADDR_CGNAT), "cgnat");
  CHECK_STREQ(nm_addr_class_name((nm_addr_class)99), "invalid");
}

static void double_nat_verdicts(void) {
  /* router's WAN address is what the manager sees: single NAT */
  CHECK_EQ_INT(nm_portmap_is_double_nat("11.0.0.2", "11.0.0.2"), 0);
  CHECK_EQ_INT(nm_portmap_is_double_nat("11.0.0.2", "::ffff:11.0.0.2"), 0);
  /* the manager sees another address: someone else NATs in front */
  CHECK_EQ_INT(nm_portmap_is_double_nat("11.0.0.2", "11.0.0.9"), 1);
  /* router's WAN side private or CGNAT: double NAT whatever was observed */
  CHECK_EQ_INT(nm_portmap_is_double_nat("192.168.0.10", NULL), 1);
  CHECK_EQ_INT(nm_portmap_is_double_nat("100.64.3.4", "100.64.3.4"), 1);
  CHECK_EQ_INT(nm_portmap_is_double_nat("10.0.0.2", "11.0.0.2"), 1);
  /* nothing to compare: no verdict against us */
  CHECK_EQ_INT(nm_portmap_is_double_nat("11.0.0.2", NULL), 0);
  CHECK_EQ_INT(nm_portmap_is_double_nat("11.0.0.2", ""), 0);
  CHECK_EQ_INT(nm_portmap_is_double_nat("11.0.0.2", "2001:db8::5"), 0);
  /* bad router address */
  CHECK_EQ_INT(nm_portmap_is_double_nat(NULL, "11.0.0.2"), NM_PM_EINVAL);
  CHECK_EQ_INT(nm_portmap_is_double_nat("router", "11.0.0.2"), NM_PM_EINVAL);
}

int main(void) {
  classifies_special_ranges();
  accepts_v4_mapped_v6();
  rejects_garbage();
  double_nat_verdicts();
  NAT_TEST_DONE("nat_addr");
}
