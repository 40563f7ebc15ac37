/* nm_addrlimit: per-address and total caps on unauthenticated connections. */
#include "nm_addrlimit.h"
#include "nmt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>

static nm_addrlimit make(unsigned per_addr, unsigned total, unsigned v4, unsigned v6) {
  nm_addrlimit l;
  nm_addrlimit_config cfg = {per_addr, total, v4, v6};
  NMT_EQ_INT(nm_addrlimit_init(&l, &cfg), 0);
  return l;
}

static void test_config(void) {
  nm_addrlimit l;
  nm_addrlimit_config cfg;
  nm_addrlimit_config_default(&cfg);
  NMT_EQ_INT(cfg.per_addr, NM_ADDRLIMIT_PER_ADDR);
  NMT_EQ_INT(cfg.v6_prefix, 64);
  NMT_EQ_INT(nm_addrlimit_init(&l, NULL), 0);
  NMT_EQ_INT(l.cfg.total, NM_ADDRLIMIT_TOTAL);
  nm_addrlimit_close(&l);
  const nm_addrlimit_config bad[] = {
      {0, 10, 32, 64}, {11, 10, 32, 64}, {1, 0, 32, 64}, {1, NM_ADDRLIMIT_TOTAL_MAX + 1, 32, 64},
      {1, 10, 0, 64},  {1, 10, 33, 64},  {1, 10, 32, 0}, {1, 10, 32, 129},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    NMT_EQ_INT(nm_addrlimit_init(&l, &bad[i]), -EINVAL);
}

static void test_per_address(void) {
  nm_addrlimit l = make(3, 100, 32, 64);
  for (int i = 0; i < 3; i++) NMT_EQ_INT(nm_addrlimit_acquire(&l, "192.0.2.7"), 0);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "192.0.2.7"), -EMFILE);
  NMT_EQ_STR(nm_addrlimit_strerror(-EMFILE),
             "too many unauthenticated connections from this address");
  /* another address is not affected */
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "192.0.2.8"), 0);
  NMT_EQ_INT(nm_addrlimit_count(&l, "192.0.2.7"), 3);
  NMT_EQ_INT(nm_addrlimit_count(&l, "192.0.2.8"), 1);
  NMT_EQ_INT(nm_addrlimit_held(&l), 4);
  /* one released (authenticated or closed): one more may start */
  NMT_EQ_INT(nm_addrlimit_release(&l, "192.0.2.7"), 0);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "192.0.2.7"), 0);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "192.0.2.7"), -EMFILE);
  nm_addrlimit_close(&l);
}

static void test_total(void) {
  nm_addrlimit l = make(2, 5, 32, 64);
  char ip[32];
  for (int i = 0; i < 5; i++) {
    snprintf(ip, sizeof ip, "198.51.100.%d", i + 1);
    NMT_EQ_INT(nm_addrlimit_acquire(&l, ip), 0);
  }
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "203.0.113.1"), -ENFILE);
  /* over its own cap, an address is told so first */
  NMT_EQ_INT(nm_addrlimit_release(&l, "198.51.100.5"), 0);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "198.51.100.1"), 0);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "198.51.100.1"), -EMFILE);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "198.51.100.2"), -ENFILE);
  NMT_EQ_INT(nm_addrlimit_release(&l, "198.51.100.3"), 0);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "203.0.113.1"), 0);
  NMT_EQ_INT(nm_addrlimit_held(&l), 5);
  nm_addrlimit_close(&l);
}

/* The issue's attack: 1,536 sockets from one address. With the caps, the attacker holds
 * per_addr slots, and an honest servant's connection is still taken. */
static void test_issue_attack(void) {
  nm_addrlimit l;
  NMT_EQ_INT(nm_addrlimit_init(&l, NULL), 0);
  int accepted = 0, refused = 0;
  for (int i = 0; i < 1536; i++) {
    if (nm_addrlimit_acquire(&l, "203.0.113.66") == 0) accepted++;
    else refused++;
  }
  NMT_EQ_INT(accepted, NM_ADDRLIMIT_PER_ADDR);
  NMT_EQ_INT(refused, 1536 - NM_ADDRLIMIT_PER_ADDR);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "192.0.2.10"), 0); /* the honest servant */
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "::1"), 0);        /* natmesh-ctl, locally */
  /* An IPv6 attacker changing addresses inside its /64 is one address. */
  char ip[64];
  accepted = 0;
  for (int i = 0; i < 1536; i++) {
    snprintf(ip, sizeof ip, "2001:db8:1:2:%x:%x::1", i >> 8, i & 0xff);
    if (nm_addrlimit_acquire(&l, ip) == 0) accepted++;
  }
  NMT_EQ_INT(accepted, NM_ADDRLIMIT_PER_ADDR);
  NMT_EQ_INT(nm_addrlimit_held(&l), 2 * NM_ADDRLIMIT_PER_ADDR + 2);
  nm_addrlimit_close(&l);
}

static void test_prefixes(void) {
  nm_addrlimit l = make(2, 100, 32, 64);
  /* IPv6: one /64 */
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "2001:db8::1"), 0);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "2001:db8::ffff:2"), 0);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "2001:db8:0:0:1:2:3:4"), -EMFILE);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "2001:db8:0:1::1"), 0); /* the next /64 */
  NMT_EQ_INT(nm_addrlimit_count(&l, "2001:db8::77"), 2);
  /* IPv4-mapped IPv6 is the IPv4 address */
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "10.0.0.1"), 0);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "::ffff:10.0.0.1"), 0);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "10.0.0.1"), -EMFILE);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "10.0.0.2"), 0); /* /32: its own */
  NMT_EQ_INT(nm_addrlimit_release(&l, "::ffff:10.0.0.1"), 0);
  NMT_EQ_INT(nm_addrlimit_count(&l, "10.0.0.1"), 1);
  nm_addrlimit_close(&l);

  /* other prefixes: an IPv4 /24, IPv6 /128, and an odd /20 */
  l = make(2, 100, 24, 128);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "10.0.0.1"), 0);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "10.0.0.200"), 0);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "10.0.0.99"), -EMFILE);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "10.0.1.1"), 0);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "2001:db8::1"), 0);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "2001:db8::2"), 0);
  NMT_EQ_INT(nm_addrlimit_count(&l, "2001:db8::1"), 1);
  nm_addrlimit_close(&l);
  l = make(1, 100, 20, 64);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "172.16.0.1"), 0);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "172.16.15.255"), -EMFILE); /* same /20 */
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "172.16.16.0"), 0);         /* the next */
  nm_addrlimit_close(&l);
}

static void test_sockaddr(void) {
  nm_addrlimit l = make(2, 100, 32, 64);
  struct sockaddr_in in4;
  struct sockaddr_in6 in6;
  memset(&in4, 0, sizeof in4);
  memset(&in6, 0, sizeof in6);
  in4.sin_family = AF_INET;
  in4.sin_port = htons(4000);
  inet_pton(AF_INET, "192.0.2.1", &in4.sin_addr);
  in6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "::ffff:192.0.2.1", &in6.sin6_addr);
  /* the same peer seen by an IPv4 socket and a dual-stack one, and as text */
  NMT_EQ_INT(nm_addrlimit_acquire_sa(&l, (struct sockaddr *)&in4), 0);
  NMT_EQ_INT(nm_addrlimit_acquire_sa(&l, (struct sockaddr *)&in6), 0);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "192.0.2.1"), -EMFILE);
  NMT_EQ_INT(nm_addrlimit_release(&l, "192.0.2.1"), 0);
  NMT_EQ_INT(nm_addrlimit_release_sa(&l, (struct sockaddr *)&in4), 0);
  NMT_EQ_INT(nm_addrlimit_release_sa(&l, (struct sockaddr *)&in6), -ENOENT);
  struct sockaddr un = {.sa_family = AF_UNIX};
  NMT_EQ_INT(nm_addrlimit_acquire_sa(&l, &un), -EINVAL);
  NMT_EQ_INT(nm_addrlimit_acquire_sa(&l, NULL), -EINVAL);
  NMT_EQ_INT(nm_addrlimit_held(&l), 0);
  nm_addrlimit_close(&l);
}

static void test_bad_input(void) {
  nm_addrlimit l = make(2, 100, 32, 64);
  const char *bad[] = {"", "host.example", "1.2.3", "1.2.3.4.5", "fe80::1%eth0", "::g", NULL};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    NMT_EQ_INT(nm_addrlimit_acquire(&l, bad[i]), -EINVAL);
    NMT_EQ_INT(nm_addrlimit_release(&l, bad[i]), -EINVAL);
    NMT_EQ_INT(nm_addrlimit_count(&l, bad[i]), 0);
  }
  char longip[200];
  memset(longip, '1', sizeof longip - 1);
  longip[sizeof longip - 1] = 0;
  NMT_EQ_INT(nm_addrlimit_acquire(&l, longip), -EINVAL);
  /* releasing what was never taken, or twice, never goes below zero */
  NMT_EQ_INT(nm_addrlimit_release(&l, "192.0.2.1"), -ENOENT);
  NMT_EQ_INT(nm_addrlimit_acquire(&l, "192.0.2.1"), 0);
  NMT_EQ_INT(nm_addrlimit_release(&l, "192.0.2.1"), 0);
  NMT_EQ_INT(nm_addrlimit_release(&l, "192.0.2.1"), -ENOENT);
  NMT_EQ_INT(nm_addrlimit_held(&l), 0);
  NMT_EQ_STR(nm_addrlimit_strerror(-ENFILE), "too many unauthenticated connections");
  NMT_EQ_STR(nm_addrlimit_strerror(-EINVAL), "not an IP address");
  nm_addrlimit_close(&l);
}

/* Random acquires and releases over many addresses against plain counters: the table
 * (probing, deletion with back-shifts) agrees with them throughout. */
static void test_against_model(void) {
  enum { ADDRS = 600, PER = 4, TOTAL = 500 };
  static unsigned model[ADDRS];
  nm_addrlimit l = make(PER, TOTAL, 32, 128);
  unsigned held = 0;
  uint64_t x = 0x2545f4914f6cdd1dull;
  int bad = 0;
  char ip[64];
  for (int step = 0; step < 200000; step++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    unsigned a = (unsigned)(x % ADDRS);
    if (a % 2) snprintf(ip, sizeof ip, "10.%u.%u.1", a >> 8, a & 0xff);
    else snprintf(ip, sizeof ip, "2001:db8::%x", a);
    if ((x >> 20) % 2) {
      int want = model[a] >= PER ? -EMFILE : held >= TOTAL ? -ENFILE : 0;
      int got = nm_addrlimit_acquire(&l, ip);
      if (got != want && bad++ < 5)
        fprintf(stderr, "       acquire %s: %d, want %d\n", ip, got, want);
      if (got == 0) model[a]++, held++;
    } else {
      int want = model[a] ? 0 : -ENOENT;
      int got = nm_addrlimit_release(&l, ip);
      if (got != want && bad++ < 5)
        fprintf(stderr, "       release %s: %d, want %d\n", ip, got, want);
      if (got == 0) model[a]--, held--;
    }
  }
  NMT_EQ_INT(bad, 0);
  NMT_EQ_INT(nm_addrlimit_held(&l), held);
  for (unsigned a = 0; a < ADDRS; a++) {
    if (a % 2) snprintf(ip, sizeof ip, "10.%u.%u.1", a >> 8, a & 0xff);
    else snprintf(ip, sizeof ip, "2001:db8::%x", a);
    if (nm_addrlimit_count(&l, ip) != model[a]) bad++;
  }
  NMT_EQ_INT(bad, 0);
  NMT_CHECK(held > TOTAL / 2); /* the walk did fill the table */
  nm_addrlimit_close(&l);
}

int main(void) {
  NMT_RUN(test_config);
  NMT_RUN(test_per_address);
  NMT_RUN(test_total);
  NMT_RUN(test_issue_attack);
  NMT_RUN(test_prefixes);
  NMT_RUN(test_sockaddr);
  NMT_RUN(test_bad_input);
  NMT_RUN(test_against_model);
  return nmt_done();
}
