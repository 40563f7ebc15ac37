/* nm_config: the table-driven loader, its errors (file:line and value) and the ban list. */
#include "nm_config.h"
#include "nm_error.h"
#include "nm_xml.h"
#include "nmt.h"

#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct {
  char host[64];
  unsigned port;
  unsigned lease;
  int upnp;
  nm_banlist bans;
} cfg;

#define F(path, type, min, max, field) \
  { path, type, min, max, offsetof(cfg, field), sizeof(((cfg *)0)->field) }
static const nm_cfg_field fields[] = {
    F("connectionmgr", NM_CFG_STRING, 0, 0, host),
    F("port", NM_CFG_UINT, 1, 65535, port),
    F("nat/lease", NM_CFG_UINT, 60, 86400, lease),
    F("nat/upnp", NM_CFG_BOOL, 0, 0, upnp),
    F("bans", NM_CFG_BANS, 0, 0, bans),
};
#undef F

static char dir[] = "/tmp/nmt_cfg_XXXXXX";
static char path[160];

static void defaults(cfg *c) {
  memset(c, 0, sizeof *c);
  strcpy(c->host, "default-host");
  c->port = 85;
  c->lease = 3600;
  c->upnp = 1;
}

/* Writes text to the test file and loads it into c (defaults first). */
static int load(const char *text, cfg *c, char *err, size_t errlen) {
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
  defaults(c);
  err[0] = 0;
  return nm_config_load(path, "config", fields, sizeof fields / sizeof *fields, c, err, errlen);
}

/* Loads text and expects an error containing "path:line:" and needle. */
static void expect_error(const char *text, int line, const char *needle) {
  cfg *c = malloc(sizeof *c);
  char err[600];
  NMT_EQ_INT(load(text, c, err, sizeof err), NM_ECONFIG);
  char where[200];
  snprintf(where, sizeof where, "%s:%d:", path, line);
  NMT_HAS(err, where);
  if (needle) NMT_HAS(err, needle);
  free(c);
}

static void test_values(void) {
  cfg *c = malloc(sizeof *c);
  char err[600];
  NMT_EQ_INT(load("<?xml version=\"1.0\"?>\n"
                  "<config>\n"
                  "  <!-- the seed's elements -->\n"
                  "  <connectionmgr> mgr.example.org </connectionmgr>\n"
                  "  <port>8585</port>\n"
                  "  <nat><lease>120</lease><upnp>off</upnp></nat>\n"
                  "  <bans>\n"
                  "    <ban><target>10.0.0.9</target></ban>\n"
                  "    <ban><target>Evil.Example.COM</target></ban>\n"
                  "  </bans>\n"
                  "</config>\n",
                  c, err, sizeof err),
             0);
  NMT_EQ_STR(c->host, "mgr.example.org"); /* trimmed */
  NMT_EQ_INT(c->port, 8585);
  NMT_EQ_INT(c->lease, 120);
  NMT_EQ_INT(c->upnp, 0);
  NMT_EQ_INT(c->bans.count, 2);
  NMT_EQ_STR(c->bans.targets[0], "10.0.0.9");
  free(c);
}

static void test_defaults_kept(void) {
  cfg *c = malloc(sizeof *c);
  char err[600];
  NMT_EQ_INT(load("<config><port>90</port></config>", c, err, sizeof err), 0);
  NMT_EQ_STR(c->host, "default-host");
  NMT_EQ_INT(c->port, 90);
  NMT_EQ_INT(c->lease, 3600);
  NMT_EQ_INT(c->upnp, 1);
  NMT_EQ_INT(c->bans.count, 0);
  NMT_EQ_INT(load("<config/>", c, err, sizeof err), 0);
  NMT_EQ_INT(c->port, 85);
  free(c);
}

static void test_bools(void) {
  static const struct {
    const char *v;
    int want;
  } cases[] = {{"on", 1}, {"YES", 1}, {"true", 1}, {"1", 1}, {"off", 0}, {"No", 0}, {"false", 0}, {"0", 0}};
  cfg *c = malloc(sizeof *c);
  char err[600], text[200];
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    snprintf(text, sizeof text, "<config><nat><upnp>%s</upnp></nat></config>", cases[i].v);
    NMT_EQ_INT(load(text, c, err, sizeof err), 0);
    c->upnp = c->upnp ? 1 : 0;
    NMT_EQ_INT(c->upnp, cases[i].want);
  }
  free(c);
  expect_error("<config>\n<nat>\n<upnp>maybe</upnp></nat></config>", 3, "maybe");
}

static void test_unknown_element_names_file_and_line(void) {
  expect_error("<config>\n  <port>85</port>\n\n  <prot>86</prot>\n</config>\n", 4, "<prot>");
  /* Inside a section the full path is named. */
  expect_error("<config>\n<nat>\n<leese>5</leese>\n</nat>\n</config>", 3, "nat/leese");
}

static void test_out_of_range(void) {
  expect_error("<config>\n<port>0</port>\n</config>", 2, "\"0\"");
  expect_error("<config>\n<port>65536</port>\n</config>", 2, "65536");
  expect_error("<config>\n\n<port>-1</port>\n</config>", 3, "-1");
  expect_error("<config>\n<port>eighty</port>\n</config>", 2, "eighty");
  expect_error("<config>\n<port></port>\n</config>", 2, "<port>");
  expect_error("<config>\n<port>99999999999999999999999</port>\n</config>", 2, "<port>");
  expect_error("<config><nat>\n<lease>59</lease></nat></config>", 2, "60");
}

static void test_strings(void) {
  expect_error("<config>\n<connectionmgr>   </connectionmgr>\n</config>", 2, "<connectionmgr>");
  char text[400];
  char longname[100];
  memset(longname, 'h', 80);
  longname[80] = 0;
  snprintf(text, sizeof text, "<config>\n<connectionmgr>%s</connectionmgr>\n</config>", longname);
  expect_error(text, 2, "<connectionmgr>");
}

static void test_wrong_root_and_malformed(void) {
  expect_error("<?xml version=\"1.0\"?>\n<configuration/>", 2, "<config>");
  expect_error("<config>\n<port>85</port>\n<bans>\n</config>", 4, NULL);
  cfg *c = malloc(sizeof *c);
  char err[600];
  /* A DTD in a config file is refused like on the wire. */
  NMT_EQ_INT(load("<!DOCTYPE config [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n"
                  "<config><connectionmgr>&x;</connectionmgr></config>",
                  c, err, sizeof err),
             NM_ECONFIG);
  NMT_HAS(err, path);
  NMT_EQ_STR(c->host, "default-host");
  free(c);
}

static void test_missing_file(void) {
  cfg *c = malloc(sizeof *c);
  defaults(c);
  char err[600] = "";
  NMT_EQ_INT(nm_config_load("/nonexistent/natmesh.xml", "config", fields,
                            sizeof fields / sizeof *fields, c, err, sizeof err),
             NM_ECONFIG);
  NMT_HAS(err, "/nonexistent/natmesh.xml");
  free(c);
}

static void test_bans(void) {
  expect_error("<config>\n<bans>\n<ban><target></target></ban>\n</bans>\n</config>", 3, "<target>");
  expect_error("<config>\n<bans>\n<ban/>\n</bans>\n</config>", 3, NULL);
  expect_error("<config>\n<bans>\n<block><target>1.2.3.4</target></block>\n</bans>\n</config>", 3, NULL);

  /* At most NM_BANS_MAX. */
  size_t cap = (NM_BANS_MAX + 2) * 64 + 64;
  char *text = malloc(cap), *p = text;
  p += sprintf(p, "<config><bans>\n");
  for (int i = 0; i <= NM_BANS_MAX; i++) p += sprintf(p, "<ban><target>10.0.%d.%d</target></ban>\n", i / 250, i % 250);
  sprintf(p, "</bans></config>\n");
  cfg *c = malloc(sizeof *c);
  char err[600];
  NMT_EQ_INT(load(text, c, err, sizeof err), NM_ECONFIG);
  NMT_HAS(err, "too many bans");
  char where[200];
  snprintf(where, sizeof where, "%s:%d:", path, NM_BANS_MAX + 2);
  NMT_HAS(err, where);
  free(text);

  nm_banlist *b = calloc(1, sizeof *b);
  NMT_EQ_INT(nm_banlist_add(b, "10.0.0.9"), 0);
  NMT_EQ_INT(nm_banlist_add(b, "Evil.Example.COM"), 0);
  NMT_EQ_INT(nm_banlist_add(b, ""), -EINVAL);
  NMT_CHECK(nm_banlist_match(b, "10.0.0.9", NULL));
  NMT_CHECK(!nm_banlist_match(b, "10.0.0.90", NULL));  /* no prefix match */
  NMT_CHECK(!nm_banlist_match(b, "10.0.0", NULL));
  NMT_CHECK(nm_banlist_match(b, "1.1.1.1", "evil.example.com"));
  NMT_CHECK(!nm_banlist_match(b, "1.1.1.1", "notevil.example.com"));
  NMT_CHECK(!nm_banlist_match(b, "1.1.1.1", ""));
  NMT_CHECK(!nm_banlist_match(b, NULL, NULL));
  free(b);
  free(c);
}

/* Bans by key: a fingerprint or a prefix of at least 16 hex characters, either case; key
 * targets never match an address or a name, and do not call for reverse lookups. */
static void test_key_bans(void) {
  const char *fp = "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592";
  const char *other = "aa41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592";
  NMT_CHECK(nm_ban_target_is_key(fp));
  NMT_CHECK(nm_ban_target_is_key("5d41402abc4b2a76"));
  NMT_CHECK(nm_ban_target_is_key("5D41402ABC4B2A76B9"));
  NMT_CHECK(!nm_ban_target_is_key("5d41402abc4b2a7"));   /* 15: too short to name a key */
  NMT_CHECK(!nm_ban_target_is_key("5d41402abc4b2a76x"));
  NMT_CHECK(!nm_ban_target_is_key("10.0.0.9"));
  NMT_CHECK(!nm_ban_target_is_key("2001:db8::7"));
  char longer[80];
  snprintf(longer, sizeof longer, "%s0", fp);
  NMT_CHECK(!nm_ban_target_is_key(longer));

  nm_banlist *b = calloc(1, sizeof *b);
  NMT_CHECK(!nm_banlist_match_key(b, fp));
  NMT_CHECK(!nm_banlist_has_names(b));
  NMT_EQ_INT(nm_banlist_add(b, "10.0.0.9"), 0);
  NMT_EQ_INT(nm_banlist_add(b, "2001:db8::7"), 0);
  NMT_EQ_INT(nm_banlist_add(b, "5D41402ABC4B2A76"), 0);
  NMT_CHECK(!nm_banlist_has_names(b));
  NMT_CHECK(nm_banlist_match_key(b, fp));
  NMT_CHECK(!nm_banlist_match_key(b, other));
  NMT_CHECK(!nm_banlist_match_key(b, NULL));
  /* a key target is not a name */
  NMT_CHECK(!nm_banlist_match(b, "1.1.1.1", "5d41402abc4b2a76"));
  NMT_CHECK(nm_banlist_match(b, "10.0.0.9", NULL));
  NMT_EQ_INT(nm_banlist_add(b, other), 0);
  NMT_CHECK(nm_banlist_match_key(b, other));
  NMT_EQ_INT(nm_banlist_add(b, "evil.example.com"), 0);
  NMT_CHECK(nm_banlist_has_names(b));
  free(b);
}

/* Key lists: an element that may repeat, each occurrence one fingerprint. */
typedef struct {
  unsigned port;
  nm_keylist admins;
} keycfg;

static void test_keys(void) {
  static const nm_cfg_field kfields[] = {
      NM_CFG_FIELD(keycfg, "port", NM_CFG_UINT, 1, 65535, port),
      NM_CFG_FIELD(keycfg, "admin-key", NM_CFG_KEYS, 0, 0, admins),
  };
  const char *a = "5d41402abc4b2a76b9719d911017c592ae3f1b2e6c7d8e9f00112233445566aa";
  const char *b_upper = "AB41402ABC4B2A76B9719D911017C592AE3F1B2E6C7D8E9F00112233445566AA";
  char text[600], err[600];
  snprintf(text, sizeof text,
           "<config>\n<admin-key>%s</admin-key>\n<port>9</port>\n<admin-key> %s </admin-key>\n"
           "<admin-key>%s</admin-key>\n</config>\n",
           a, b_upper, a);
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
  keycfg k;
  memset(&k, 0, sizeof k);
  NMT_EQ_INT(nm_config_load(path, "config", kfields, 2, &k, err, sizeof err), 0);
  NMT_EQ_INT(k.admins.count, 2); /* the repeated one counts once */
  NMT_CHECK(nm_keylist_has(&k.admins, a));
  NMT_CHECK(nm_keylist_has(&k.admins, "ab41402abc4b2a76b9719d911017c592ae3f1b2e6c7d8e9f00112233445566aa"));
  NMT_EQ_INT(k.port, 9);
  nm_keylist_free(&k.admins);

  f = fopen(path, "w");
  fputs("<config>\n<port>9</port>\n<admin-key>5d41402a</admin-key>\n</config>\n", f);
  fclose(f);
  memset(&k, 0, sizeof k);
  NMT_EQ_INT(nm_config_load(path, "config", kfields, 2, &k, err, sizeof err), NM_ECONFIG);
  NMT_HAS(err, ":3: <admin-key> must be a key fingerprint (64 hex characters), got \"5d41402a\"");
  nm_keylist_free(&k.admins);

  nm_keylist l = {0};
  NMT_EQ_INT(nm_keylist_add(&l, "xyz"), -EINVAL);
  char fp[65];
  for (int i = 0; i < NM_KEYLIST_MAX; i++) {
    snprintf(fp, sizeof fp, "%064x", i);
    if (nm_keylist_add(&l, fp) != 0) break;
  }
  NMT_EQ_INT(l.count, NM_KEYLIST_MAX);
  NMT_EQ_INT(nm_keylist_add(&l, a), -ENOSPC);
  NMT_EQ_INT(nm_keylist_add(&l, fp), 0); /* already listed */
  nm_keylist_free(&l);
}

int main(void) {
  nm_xml_init();
  if (!mkdtemp(dir)) return 1;
  snprintf(path, sizeof path, "%s/config.xml", dir);
  NMT_RUN(test_values);
  NMT_RUN(test_defaults_kept);
  NMT_RUN(test_bools);
  NMT_RUN(test_unknown_element_names_file_and_line);
  NMT_RUN(test_out_of_range);
  NMT_RUN(test_strings);
  NMT_RUN(test_wrong_root_and_malformed);
  NMT_RUN(test_missing_file);
  NMT_RUN(test_bans);
  NMT_RUN(test_key_bans);
  NMT_RUN(test_keys);
  unlink(path);
  rmdir(dir);
  xmlCleanupParser();
  return nmt_done();
}
