/* nm_invite: the invite string (format, strict parse, limits) and the secret's hash. */
#include "nm_invite.h"
#include "nmt.h"

#include <errno.h>
#include <stdlib.h>

#define FP "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592"
#define SECRET "000102030405060708090a0b0c0d0e0f"
#define HEAD "natmesh-invite:v1/"
#define FP2 "77af778b51abd4a3c51c5ddd97204a9c3ae614ebccb75a606c3b6865aed6744e"
#define FP3 "0000000000000000000000000000000000000000000000000000000000000001"

static nm_invite fixed(const char *host, uint16_t port, nm_role role, uint64_t expires) {
  nm_invite inv;
  memset(&inv, 0, sizeof inv);
  snprintf(inv.host, sizeof inv.host, "%s", host);
  inv.port = port;
  memcpy(inv.fingerprint, FP, sizeof FP);
  for (int i = 0; i < NM_INVITE_SECRET_LEN; i++) inv.secret[i] = (unsigned char)i;
  inv.role = role;
  inv.expires = expires;
  return inv;
}

static int same(const nm_invite *a, const nm_invite *b) {
  if (a->nalso != b->nalso) return 0;
  for (size_t i = 0; i < a->nalso; i++)
    if (strcmp(a->also[i].host, b->also[i].host) != 0 || a->also[i].port != b->also[i].port ||
        strcmp(a->also[i].fingerprint, b->also[i].fingerprint) != 0)
      return 0;
  return strcmp(a->host, b->host) == 0 && a->port == b->port &&
         strcmp(a->fingerprint, b->fingerprint) == 0 &&
         memcmp(a->secret, b->secret, sizeof a->secret) == 0 && a->role == b->role &&
         a->expires == b->expires;
}

static nm_invite_manager manager(const char *host, uint16_t port, const char *fp) {
  nm_invite_manager m;
  memset(&m, 0, sizeof m);
  snprintf(m.host, sizeof m.host, "%s", host);
  m.port = port;
  snprintf(m.fingerprint, sizeof m.fingerprint, "%s", fp);
  return m;
}

/* The format is the interface users paste: pinned here. */
static void test_format(void) {
  char s[NM_INVITE_MAX + 1];
  nm_invite inv = fixed("manager.example.org", 8585, NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(nm_invite_format(&inv, s, sizeof s), 0);
  NMT_EQ_STR(s, HEAD "manager.example.org/8585/" FP "/" SECRET);
  inv = fixed("2001:db8::7", 85, NM_ROLE_RELAY, 1767225600);
  NMT_EQ_INT(nm_invite_format(&inv, s, sizeof s), 0);
  NMT_EQ_STR(s, HEAD "2001:db8::7/85/" FP "/" SECRET "/role=relay/expires=1767225600");
  inv = fixed("10.0.0.1", 1, NM_ROLE_SERVANT, 5);
  NMT_EQ_INT(nm_invite_format(&inv, s, sizeof s), 0);
  NMT_EQ_STR(s, HEAD "10.0.0.1/1/" FP "/" SECRET "/expires=5");
  /* shell- and XML-safe: letters, digits and . - : / = , only */
  NMT_EQ_INT(strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:/=,"),
             strlen(s));
}

/* The other managers (also=): after role and expires, in order, each pinned. */
static void test_also_format(void) {
  char s[NM_INVITE_MAX + 1], err[200];
  nm_invite inv = fixed("10.0.0.1", 8585, NM_ROLE_RELAY, 99), back;
  nm_invite_manager b = manager("10.0.0.2", 8586, FP2), c = manager("2001:db8::3", 85, FP3);
  NMT_EQ_INT(nm_invite_add_also(&inv, &b, err, sizeof err), 0);
  NMT_EQ_INT(nm_invite_add_also(&inv, &c, err, sizeof err), 0);
  NMT_EQ_INT(nm_invite_format(&inv, s, sizeof s), 0);
  NMT_EQ_STR(s, HEAD "10.0.0.1/8585/" FP "/" SECRET "/role=relay/expires=99/also=10.0.0.2,8586," FP2
                     "/also=2001:db8::3,85," FP3);
  NMT_EQ_INT(nm_invite_parse(s, &back, err, sizeof err), 0);
  NMT_CHECK(same(&inv, &back));
  NMT_EQ_INT(back.nalso, 2);
  NMT_EQ_STR(back.also[1].host, "2001:db8::3");
  /* without role or expires */
  inv = fixed("m.example", 85, NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(nm_invite_add_also(&inv, &b, err, sizeof err), 0);
  NMT_EQ_INT(nm_invite_format(&inv, s, sizeof s), 0);
  NMT_EQ_STR(s, HEAD "m.example/85/" FP "/" SECRET "/also=10.0.0.2,8586," FP2);
  NMT_EQ_INT(nm_invite_parse(s, &back, err, sizeof err), 0);
  NMT_CHECK(same(&inv, &back));
}

static void test_also_limits(void) {
  char s[NM_INVITE_MAX + 1], err[200];
  nm_invite inv = fixed("m.example", 85, NM_ROLE_SERVANT, 0);
  for (int i = 0; i < NM_INVITE_ALSO_MAX; i++) {
    nm_invite_manager m = manager("m.example", (uint16_t)(86 + i), FP2);
    NMT_EQ_INT(nm_invite_add_also(&inv, &m, err, sizeof err), 0);
  }
  nm_invite_manager extra = manager("n.example", 85, FP2);
  NMT_EQ_INT(nm_invite_add_also(&inv, &extra, err, sizeof err), -EINVAL);
  NMT_EQ_STR(err, "invite: too many other managers (at most 4)");
  /* the same address twice (the main one, or another also=; names without case) */
  inv = fixed("m.example", 85, NM_ROLE_SERVANT, 0);
  nm_invite_manager same_main = manager("M.Example", 85, FP2), other = manager("n.example", 85, FP2);
  NMT_EQ_INT(nm_invite_add_also(&inv, &same_main, err, sizeof err), -EINVAL);
  NMT_EQ_STR(err, "invite: manager M.Example port 85 named twice");
  NMT_EQ_INT(nm_invite_add_also(&inv, &other, err, sizeof err), 0);
  NMT_EQ_INT(nm_invite_add_also(&inv, &other, err, sizeof err), -EINVAL);
  NMT_HAS(err, "named twice");
  /* one key on two addresses (a manager's IPv4 and IPv6) is fine */
  nm_invite_manager v6 = manager("2001:db8::1", 85, FP);
  NMT_EQ_INT(nm_invite_add_also(&inv, &v6, err, sizeof err), 0);
  nm_invite_manager bad = manager("bad host", 85, FP2);
  NMT_EQ_INT(nm_invite_add_also(&inv, &bad, err, sizeof err), -EINVAL);
  /* The longest invite with four others: 253-character hosts everywhere, 1735 characters. */
  char host[NM_INVITE_HOST_MAX + 1] = "";
  while (strlen(host) + 8 <= NM_INVITE_HOST_MAX) strcat(host, "abcdefg.");
  while (strlen(host) < NM_INVITE_HOST_MAX - 1) strcat(host, "x");
  inv = fixed(host, 65535, NM_ROLE_RELAY, UINT64_MAX);
  for (int i = 0; i < NM_INVITE_ALSO_MAX; i++) {
    char h[NM_INVITE_HOST_MAX + 1];
    size_t n = strlen(host); /* NM_INVITE_HOST_MAX - 1: room for one more letter */
    memcpy(h, host, n);
    h[n] = (char)('a' + i);
    h[n + 1] = 0;
    nm_invite_manager m = manager(h, 65535, FP2);
    NMT_EQ_INT(nm_invite_add_also(&inv, &m, err, sizeof err), 0);
  }
  NMT_EQ_INT(nm_invite_format(&inv, s, sizeof s), 0);
  NMT_EQ_INT(strlen(s), 1734); /* the main host is 252 here */
  nm_invite back;
  NMT_EQ_INT(nm_invite_parse(s, &back, err, sizeof err), 0);
  NMT_CHECK(same(&inv, &back));
}

static void test_manager_parse(void) {
  nm_invite_manager m;
  char err[200];
  const char *v = "10.0.0.2,8586," FP2;
  NMT_EQ_INT(nm_invite_manager_parse(v, strlen(v), &m, err, sizeof err), 0);
  NMT_EQ_STR(m.host, "10.0.0.2");
  NMT_EQ_INT(m.port, 8586);
  NMT_EQ_STR(m.fingerprint, FP2);
  /* length-bounded: what follows is not read */
  NMT_EQ_INT(nm_invite_manager_parse("::1,85," FP2 "/also=x", 7 + 64, &m, err, sizeof err), 0);
  NMT_EQ_STR(m.host, "::1");
  /* an operator's uppercase fingerprint: only the _any form, stored lowercase */
  const char *up = "m,85,77AF778B51ABD4A3C51C5DDD97204A9C3AE614EBCCB75A606C3B6865AED6744E";
  NMT_EQ_INT(nm_invite_manager_parse(up, strlen(up), &m, err, sizeof err), -EINVAL);
  NMT_HAS(err, "bad manager fingerprint");
  NMT_EQ_INT(nm_invite_manager_parse_any(up, strlen(up), &m, err, sizeof err), 0);
  NMT_EQ_STR(m.fingerprint, FP2);
  struct { const char *v, *why; } bad[] = {
      {"m,85", "expected HOST,PORT,FINGERPRINT"},
      {"m", "expected HOST,PORT,FINGERPRINT"},
      {"m,85," FP2 ",x", "expected HOST,PORT,FINGERPRINT"},
      {",85," FP2, "bad manager host"},
      {"bad_host,85," FP2, "bad manager host \"bad_host\""},
      {"[::1],85," FP2, "bad manager host"},
      {"m,,"  FP2, "bad manager port"},
      {"m,085," FP2, "bad manager port \"085\""},
      {"m,0," FP2, "bad manager port"},
      {"m,65536," FP2, "bad manager port"},
      {"m,85,", "bad manager fingerprint"},
      {"m,85," FP2 "0", "bad manager fingerprint"},
      {"m,85,zz" FP2, "bad manager fingerprint"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = 0;
    int rc = nm_invite_manager_parse_any(bad[i].v, strlen(bad[i].v), &m, err, sizeof err);
    if (rc != -EINVAL || !strstr(err, bad[i].why)) fprintf(stderr, "       \"%s\": %d \"%s\"\n", bad[i].v, rc, err);
    NMT_EQ_INT(rc, -EINVAL);
    NMT_HAS(err, bad[i].why);
  }
  /* a NUL inside the value's length is not a shorter host */
  char nul[] = "m\0x,85," FP2;
  NMT_EQ_INT(nm_invite_manager_parse(nul, sizeof nul - 1, &m, err, sizeof err), -EINVAL);
}

static void test_round_trip(void) {
  const char *hosts[] = {"manager.example.org", "localhost", "10.1.2.3", "::1", "2001:db8::7",
                         "fe80::1:2:3:4", "::ffff:192.0.2.1", "MANAGER-1.lan"};
  char s[NM_INVITE_MAX + 1], err[200];
  for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
    for (int relay = 0; relay < 2; relay++) {
      nm_role role = relay ? NM_ROLE_RELAY : NM_ROLE_SERVANT;
      nm_invite a = fixed(hosts[i], (uint16_t)(1 + i * 9000), role, relay ? 0 : UINT64_MAX), b;
      NMT_EQ_INT(nm_invite_format(&a, s, sizeof s), 0);
      err[0] = 0;
      int rc = nm_invite_parse(s, &b, err, sizeof err);
      if (rc) fprintf(stderr, "       \"%s\": %s\n", s, err);
      NMT_EQ_INT(rc, 0);
      NMT_CHECK(same(&a, &b));
    }
  }
}

static void test_create(void) {
  nm_invite a, b, zero;
  char err[200], s[NM_INVITE_MAX + 1];
  memset(&zero, 0, sizeof zero);
  NMT_EQ_INT(nm_invite_create(&a, "manager", 8585, FP, NM_ROLE_SERVANT, 0, err, sizeof err), 0);
  NMT_EQ_INT(nm_invite_create(&b, "manager", 8585, FP, NM_ROLE_RELAY, 99, err, sizeof err), 0);
  NMT_CHECK(memcmp(a.secret, zero.secret, sizeof a.secret) != 0);
  NMT_CHECK(memcmp(a.secret, b.secret, sizeof a.secret) != 0);
  NMT_EQ_INT(b.role, NM_ROLE_RELAY);
  NMT_EQ_INT(b.expires, 99);
  NMT_EQ_INT(nm_invite_format(&b, s, sizeof s), 0);
  NMT_HAS(s, "/role=relay/expires=99");
  NMT_EQ_INT(nm_invite_create(&a, "bad host", 8585, FP, NM_ROLE_SERVANT, 0, err, sizeof err),
             -EINVAL);
  NMT_EQ_STR(err, "invite: bad host");
  NMT_EQ_INT(nm_invite_create(&a, "m", 0, FP, NM_ROLE_SERVANT, 0, err, sizeof err), -EINVAL);
  NMT_EQ_STR(err, "invite: bad port");
  NMT_EQ_INT(nm_invite_create(&a, "m", 1, "abc", NM_ROLE_SERVANT, 0, err, sizeof err), -EINVAL);
  NMT_HAS(err, "invite: bad fingerprint");
  NMT_EQ_INT(nm_invite_create(&a, "m", 1, FP, (nm_role)7, 0, err, sizeof err), -EINVAL);
  NMT_EQ_STR(err, "invite: bad role");
  NMT_CHECK(memcmp(&a, &zero, sizeof a) == 0); /* a refused invite leaves nothing */
  nm_invite_clear(&b);
  NMT_CHECK(memcmp(&b, &zero, sizeof b) == 0);
}

static void expect_refused(const char *s, const char *reason) {
  nm_invite inv, zero;
  char err[200] = "";
  memset(&zero, 0, sizeof zero);
  int rc = nm_invite_parse(s, &inv, err, sizeof err);
  if (rc != -EINVAL || !strstr(err, reason))
    fprintf(stderr, "       \"%.80s\": rc %d, \"%s\"\n", s ? s : "(null)", rc, err);
  NMT_EQ_INT(rc, -EINVAL);
  NMT_HAS(err, reason);
  /* nothing half-parsed is left, and the secret is never quoted */
  NMT_CHECK(memcmp(&inv, &zero, sizeof inv) == 0);
  NMT_CHECK(strstr(err, SECRET) == NULL);
}

static void test_refused(void) {
  const char *ok = HEAD "m.example/85/" FP "/" SECRET;
  nm_invite inv;
  NMT_EQ_INT(nm_invite_parse(ok, &inv, NULL, 0), 0);

  expect_refused(NULL, "invite: empty");
  expect_refused("", "invite: empty");
  expect_refused("natmesh://m.example:85/?fp=" FP, "invite: not an invite (it starts with \""
                                                    HEAD "\")");
  expect_refused("natmesh-invite:v2/m/85/" FP "/" SECRET, "version \"v2\" not supported");
  expect_refused("natmesh-invite:", "version \"\" not supported");
  expect_refused(HEAD, "empty host");
  expect_refused(HEAD "m.example", "missing port");
  expect_refused(HEAD "m.example/85", "missing fingerprint");
  expect_refused(HEAD "m.example/85/" FP, "missing secret");
  expect_refused(HEAD "m.example//" FP "/" SECRET, "empty port");
  expect_refused(HEAD "m.example/85/" FP "/" SECRET "/", "empty field");
  expect_refused(HEAD "m.example/85/" FP "/" SECRET "/role=relay/expires=1/x", "misplaced field \"x\"");
  expect_refused(HEAD "m.example/85/" FP "/" SECRET "/role=relay/expires=1/also=a,1," FP2 "/also=b,1," FP2
                 "/also=c,1," FP2 "/also=d,1," FP2 "/x", "too many fields");

  /* host */
  const char *bad_hosts[] = {"bad_host", "a..b", ".a", "a.", "-a.example", "a-.example",
                             "1.2.3", "999.1.1.1", "1.2.3.4.5", "fe80::1%eth0", "[::1]",
                             "2001:db8::g", "m\xc3\xa9.example", "a b"};
  char s[1200];
  for (size_t i = 0; i < sizeof bad_hosts / sizeof bad_hosts[0]; i++) {
    snprintf(s, sizeof s, HEAD "%s/85/" FP "/" SECRET, bad_hosts[i]);
    expect_refused(s, "bad host");
  }
  char label[70];
  memset(label, 'a', 64);
  label[64] = 0; /* a 64-character label */
  snprintf(s, sizeof s, HEAD "%s.example/85/" FP "/" SECRET, label);
  expect_refused(s, "bad host");
  label[63] = 0;
  snprintf(s, sizeof s, HEAD "%s.example/85/" FP "/" SECRET, label);
  NMT_EQ_INT(nm_invite_parse(s, &inv, NULL, 0), 0);
  char longhost[300] = "";
  for (int i = 0; i < 63; i++) strcat(longhost, "abc.");
  strcat(longhost, "xy"); /* 254 characters, valid labels: one too many */
  snprintf(s, sizeof s, HEAD "%s/85/" FP "/" SECRET, longhost);
  expect_refused(s, "bad host");

  /* port */
  const char *bad_ports[] = {"0", "65536", "085", "+85", "8o", "-1", "99999999999999999999"};
  for (size_t i = 0; i < sizeof bad_ports / sizeof bad_ports[0]; i++) {
    snprintf(s, sizeof s, HEAD "m/%s/" FP "/" SECRET, bad_ports[i]);
    expect_refused(s, "bad port");
  }

  /* fingerprint */
  expect_refused(HEAD "m/85/" "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c59"
                 "/" SECRET, "bad fingerprint (expected 64 lowercase hex characters)");
  expect_refused(HEAD "m/85/" FP "0/" SECRET, "bad fingerprint");
  expect_refused(HEAD "m/85/" "5D41402ABC4B2A76B9719D911017C5925D41402ABC4B2A76B9719D911017C592"
                 "/" SECRET, "bad fingerprint");

  /* secret */
  expect_refused(HEAD "m/85/" FP "/000102030405060708090a0b0c0d0e0", "bad secret");
  expect_refused(HEAD "m/85/" FP "/" SECRET "0", "bad secret");
  expect_refused(HEAD "m/85/" FP "/000102030405060708090A0B0C0D0E0F", "bad secret");
  expect_refused(HEAD "m/85/" FP "/zz0102030405060708090a0b0c0d0e0f", "bad secret");

  /* optional fields */
  expect_refused(HEAD "m/85/" FP "/" SECRET "/role=servant", "bad role \"servant\"");
  expect_refused(HEAD "m/85/" FP "/" SECRET "/role=admin", "bad role");
  expect_refused(HEAD "m/85/" FP "/" SECRET "/role=", "bad role");
  expect_refused(HEAD "m/85/" FP "/" SECRET "/expires=0", "bad expiry");
  expect_refused(HEAD "m/85/" FP "/" SECRET "/expires=01", "bad expiry");
  expect_refused(HEAD "m/85/" FP "/" SECRET "/expires=soon", "bad expiry");
  expect_refused(HEAD "m/85/" FP "/" SECRET "/expires=18446744073709551616", "bad expiry");
  expect_refused(HEAD "m/85/" FP "/" SECRET "/expires=1/role=relay",
                 "misplaced field \"role=relay\"");
  expect_refused(HEAD "m/85/" FP "/" SECRET "/role=relay/role=relay", "misplaced field");
  expect_refused(HEAD "m/85/" FP "/" SECRET "/admin=yes",
                 "unknown or misplaced field \"admin=yes\"");
  /* also= */
  expect_refused(HEAD "m/85/" FP "/" SECRET "/also=n,85," FP2 "/role=relay", "misplaced field \"role=relay\"");
  expect_refused(HEAD "m/85/" FP "/" SECRET "/also=n,85," FP2 "/expires=5", "misplaced field \"expires=5\"");
  expect_refused(HEAD "m/85/" FP "/" SECRET "/also=", "bad manager");
  expect_refused(HEAD "m/85/" FP "/" SECRET "/also=n,85", "expected HOST,PORT,FINGERPRINT");
  expect_refused(HEAD "m/85/" FP "/" SECRET "/also=n,85,"
                 "77AF778B51ABD4A3C51C5DDD97204A9C3AE614EBCCB75A606C3B6865AED6744E", "bad manager fingerprint");
  expect_refused(HEAD "m/85/" FP "/" SECRET "/also=n,085," FP2, "bad manager port");
  expect_refused(HEAD "m/85/" FP "/" SECRET "/also=m,85," FP2, "named twice");
  expect_refused(HEAD "m/85/" FP "/" SECRET "/also=n,85," FP2 "/also=N,85," FP, "named twice");
  expect_refused(HEAD "m/85/" FP "/" SECRET "/also=a,1," FP2 "/also=b,1," FP2 "/also=c,1," FP2
                 "/also=d,1," FP2 "/also=e,1," FP2, "too many other managers (at most 4)");

  /* blanks are not trimmed */
  snprintf(s, sizeof s, "%s\n", ok);
  expect_refused(s, "bad secret");
  snprintf(s, sizeof s, " %s", ok);
  expect_refused(s, "not an invite");
}

static void test_overlong(void) {
  char err[200], out[NM_INVITE_MAX + 1];
  nm_invite inv;
  /* The longest invite there is: a 253-character host, a 5-digit port, the relay role and a
   * 20-digit expiry make 415 characters, under the limit. */
  char host[NM_INVITE_HOST_MAX + 1] = "";
  while (strlen(host) + 8 <= NM_INVITE_HOST_MAX) strcat(host, "abcdefg.");
  while (strlen(host) < NM_INVITE_HOST_MAX) strcat(host, "x");
  NMT_EQ_INT(strlen(host), 253);
  nm_invite big = fixed(host, 65535, NM_ROLE_RELAY, UINT64_MAX);
  NMT_EQ_INT(nm_invite_format(&big, out, sizeof out), 0);
  NMT_EQ_INT(strlen(out), 415);
  NMT_EQ_INT(nm_invite_parse(out, &inv, err, sizeof err), 0);
  NMT_CHECK(same(&big, &inv));
  /* NM_INVITE_MAX characters are read (and refused for what they hold); one more is refused
   * unread, as is a megabyte (strnlen stops at the limit). */
  char *s = malloc(1 << 20);
  memset(s, 'a', (1 << 20) - 1);
  s[(1 << 20) - 1] = 0;
  memcpy(s, HEAD, strlen(HEAD));
  s[NM_INVITE_MAX] = 0;
  NMT_EQ_INT(nm_invite_parse(s, &inv, err, sizeof err), -EINVAL);
  NMT_HAS(err, "missing port");
  s[NM_INVITE_MAX] = 'a';
  s[NM_INVITE_MAX + 1] = 0;
  NMT_EQ_INT(nm_invite_parse(s, &inv, err, sizeof err), -EINVAL);
  NMT_EQ_STR(err, "invite: too long (more than 2048 characters)");
  s[NM_INVITE_MAX + 1] = 'a';
  NMT_EQ_INT(nm_invite_parse(s, &inv, err, sizeof err), -EINVAL);
  NMT_EQ_STR(err, "invite: too long (more than 2048 characters)");
  free(s);
  /* format refuses a buffer too small (not a cut invite) and an invite that would not parse */
  big = fixed("m.example", 85, NM_ROLE_RELAY, 1);
  NMT_EQ_INT(nm_invite_format(&big, out, 40), -EINVAL);
  NMT_EQ_STR(out, "");
  nm_invite bad = fixed("m", 0, NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(nm_invite_format(&bad, out, sizeof out), -EINVAL);
  bad = fixed("not a host", 85, NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(nm_invite_format(&bad, out, sizeof out), -EINVAL);
}

static void test_secret(void) {
  unsigned char secret[NM_INVITE_SECRET_LEN], back[NM_INVITE_SECRET_LEN];
  char hash[NM_SHA256_HEX_LEN + 1], hash2[NM_SHA256_HEX_LEN + 1];
  char text[NM_INVITE_SECRET_HEX_LEN + 1];
  for (int i = 0; i < NM_INVITE_SECRET_LEN; i++) secret[i] = (unsigned char)i;
  /* SHA-256("natmesh-invite-v1" || secret), computed apart from natmesh */
  NMT_EQ_INT(nm_invite_secret_hash(secret, hash), 0);
  NMT_EQ_STR(hash, "3dc18b845263e9a844542bede5fa86d026d608735090a8f55ccb2adb3eb14593");
  secret[15] ^= 1;
  NMT_EQ_INT(nm_invite_secret_hash(secret, hash2), 0);
  NMT_CHECK(strcmp(hash, hash2) != 0);
  nm_invite_secret_encode(secret, text);
  NMT_EQ_STR(text, "000102030405060708090a0b0c0d0e0e");
  NMT_EQ_INT(nm_invite_secret_decode(text, back), 0);
  NMT_CHECK(memcmp(secret, back, sizeof back) == 0);
  NMT_EQ_INT(nm_invite_secret_decode("00", back), -EINVAL);
  /* expiry */
  NMT_CHECK(!nm_invite_expired(0, UINT64_MAX));
  NMT_CHECK(!nm_invite_expired(100, 99));
  NMT_CHECK(nm_invite_expired(100, 100));
  NMT_CHECK(nm_invite_expired(100, 101));
}

/* Mutations of valid invites (a byte changed, dropped, doubled, or a field separator moved):
 * the parser never reads out of bounds (ASan watches), and whatever it accepts formats back
 * to exactly the string it read, so no invite has two spellings. */
static void test_mutations(void) {
  const char *seeds[] = {HEAD "manager.example.org/8585/" FP "/" SECRET,
                         HEAD "2001:db8::7/85/" FP "/" SECRET "/role=relay/expires=1767225600",
                         HEAD "10.0.0.1/1/" FP "/" SECRET "/expires=5/also=10.0.0.2,85," FP2
                              "/also=m.example,8585," FP3};
  const char alphabet[] = "0123456789abcdefABCDEF./:=-[]%?&x, \n";
  uint64_t x = 0x9e3779b97f4a7c15ull;
  int accepted = 0, differs = 0;
  char s[NM_INVITE_MAX + 8], out[NM_INVITE_MAX + 1];
  for (int i = 0; i < 50000; i++) {
    snprintf(s, sizeof s, "%s", seeds[i % 3]);
    for (int m = 0; m < 1 + i % 3; m++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      size_t len = strlen(s), at = (size_t)(x >> 8) % (len + 1);
      char c = alphabet[(x >> 40) % (sizeof alphabet - 1)];
      if (x % 3 == 0 && at < len) {
        s[at] = c; /* change a byte */
      } else if (x % 3 == 1 && at < len) {
        memmove(s + at, s + at + 1, len - at); /* drop one */
      } else if (len + 1 < sizeof s) {
        memmove(s + at + 1, s + at, len - at + 1); /* insert one */
        s[at] = c;
      }
    }
    nm_invite inv;
    char err[200];
    if (nm_invite_parse(s, &inv, err, sizeof err) != 0) continue;
    accepted++;
    if (nm_invite_format(&inv, out, sizeof out) != 0 || strcmp(out, s) != 0) {
      if (differs++ < 3) fprintf(stderr, "       \"%s\" came back as \"%s\"\n", s, out);
    }
  }
  NMT_EQ_INT(differs, 0);
  printf("       %d of 50000 mutations parsed\n", accepted);
  NMT_CHECK(accepted > 100); /* some mutations are valid invites (a changed hex digit) */
}

int main(void) {
  NMT_RUN(test_format);
  NMT_RUN(test_round_trip);
  NMT_RUN(test_also_format);
  NMT_RUN(test_also_limits);
  NMT_RUN(test_manager_parse);
  NMT_RUN(test_create);
  NMT_RUN(test_refused);
  NMT_RUN(test_overlong);
  NMT_RUN(test_secret);
  NMT_RUN(test_mutations);
  return nmt_done();
}
