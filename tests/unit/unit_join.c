/* The servant's join targets (src/servant/join.c): an invite, a manager key, or both (they
 * must agree); --manager / --manager-port move the address and never the key; an invite read
 * from a file is trimmed; without either, the exact error the spec names. Several managers:
 * the invite's also= fields, or the config's <connectionmgr> list, each pinned. */
#include "join.h"
#include "nmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define FP "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592"
#define FP2 "aaaa402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592"
#define SECRET "000102030405060708090a0b0c0d0e0f"
#define INVITE "natmesh-invite:v1/manager.example.org/8585/" FP "/" SECRET
#define FP3 "0000000000000000000000000000000000000000000000000000000000000003"
#define ALSO_INVITE INVITE "/also=10.0.0.2,8586," FP2 "/also=2001:db8::3,85," FP3
#define RELAY_INVITE "natmesh-invite:v1/10.0.0.1/85/" FP "/" SECRET "/role=relay"

static void test_no_key(void) {
  sv_join j;
  char err[300] = "";
  NMT_EQ_INT(sv_join_resolve(&j, "", "", "", 0, err, sizeof err), -1);
  NMT_EQ_STR(err, "no manager key: pass --invite or --manager-key");
  /* an address alone is not a key */
  NMT_EQ_INT(sv_join_resolve(&j, NULL, NULL, "10.0.0.1", 8585, err, sizeof err), -1);
  NMT_EQ_STR(err, "no manager key: pass --invite or --manager-key");
}

static void test_invite(void) {
  sv_join j;
  char err[300] = "";
  NMT_EQ_INT(sv_join_resolve(&j, INVITE, "", "", 0, err, sizeof err), 0);
  NMT_EQ_STR(j.managers[0].host, "manager.example.org");
  NMT_EQ_INT(j.managers[0].port, 8585);
  NMT_EQ_STR(j.managers[0].fp.hex, FP);
  NMT_EQ_INT(j.has_secret, 1);
  for (int i = 0; i < NM_INVITE_SECRET_LEN; i++) NMT_EQ_INT(j.secret[i], i);
  NMT_EQ_INT(j.managers[0].key_source, SV_KEY_FROM_INVITE);
  NMT_EQ_INT(j.invite_role, NM_ROLE_SERVANT);
  NMT_EQ_INT(sv_join_resolve(&j, RELAY_INVITE, "", "", 0, err, sizeof err), 0);
  NMT_EQ_INT(j.invite_role, NM_ROLE_RELAY);
  NMT_EQ_STR(j.managers[0].host, "10.0.0.1");
  NMT_EQ_INT(j.managers[0].port, 85);
  sv_join_clear(&j);
  NMT_EQ_INT(j.has_secret, 0);
}

static void test_overrides_move_the_address_never_the_key(void) {
  sv_join j;
  char err[300] = "";
  NMT_EQ_INT(sv_join_resolve(&j, INVITE, "", "127.0.0.1", 0, err, sizeof err), 0);
  NMT_EQ_STR(j.managers[0].host, "127.0.0.1");
  NMT_EQ_INT(j.managers[0].port, 8585);
  NMT_EQ_STR(j.managers[0].fp.hex, FP);
  NMT_EQ_INT(sv_join_resolve(&j, INVITE, "", "", 9000, err, sizeof err), 0);
  NMT_EQ_STR(j.managers[0].host, "manager.example.org");
  NMT_EQ_INT(j.managers[0].port, 9000);
  NMT_EQ_STR(j.managers[0].fp.hex, FP);
}

static void test_manager_key(void) {
  sv_join j;
  char err[300] = "";
  NMT_EQ_INT(sv_join_resolve(&j, "", FP, "", 0, err, sizeof err), 0);
  NMT_EQ_STR(j.managers[0].host, SV_DEFAULT_MANAGER_HOST);
  NMT_EQ_INT(j.managers[0].port, SV_DEFAULT_MANAGER_PORT);
  NMT_EQ_STR(j.managers[0].fp.hex, FP);
  NMT_EQ_INT(j.has_secret, 0);
  NMT_EQ_INT(j.managers[0].key_source, SV_KEY_FROM_OPTION);
  /* upper case is the same key, stored lowercase */
  NMT_EQ_INT(sv_join_resolve(&j, "", "5D41402ABC4B2A76B9719D911017C5925D41402ABC4B2A76B9719D911017C592", "m", 1,
                             err, sizeof err), 0);
  NMT_EQ_STR(j.managers[0].fp.hex, FP);
  NMT_EQ_STR(j.managers[0].host, "m");
  NMT_EQ_INT(j.managers[0].port, 1);
  NMT_EQ_INT(sv_join_resolve(&j, "", "abc", "", 0, err, sizeof err), -1);
  NMT_HAS(err, "--manager-key: expected the manager's fingerprint");
  NMT_EQ_INT(sv_join_resolve(&j, "", FP "0", "", 0, err, sizeof err), -1);
}

static void test_invite_and_key_must_agree(void) {
  sv_join j;
  char err[300] = "";
  NMT_EQ_INT(sv_join_resolve(&j, INVITE, FP, "", 0, err, sizeof err), 0);
  NMT_EQ_INT(j.has_secret, 1);
  NMT_EQ_INT(sv_join_resolve(&j, INVITE, FP2, "", 0, err, sizeof err), -1);
  NMT_HAS(err, "is not the key the invite names");
  NMT_EQ_INT(j.has_secret, 0);
}

static void test_bad_invite(void) {
  sv_join j;
  char err[300] = "";
  NMT_EQ_INT(sv_join_resolve(&j, "natmesh-invite:v1/h/85/zz/" SECRET, "", "", 0, err, sizeof err), -1);
  NMT_HAS(err, "invite: ");
  /* the secret is never quoted */
  NMT_EQ_INT(sv_join_resolve(&j, "natmesh-invite:v1/h/0/" FP "/" SECRET, "", "", 0, err, sizeof err), -1);
  NMT_CHECK(strstr(err, SECRET) == NULL);
}

static void test_invite_also(void) {
  sv_join j;
  char err[300] = "";
  NMT_EQ_INT(sv_join_resolve(&j, ALSO_INVITE, "", "", 0, err, sizeof err), 0);
  NMT_EQ_INT(j.nmanagers, 3);
  NMT_EQ_STR(j.managers[0].host, "manager.example.org");
  NMT_EQ_STR(j.managers[0].fp.hex, FP);
  NMT_EQ_STR(j.managers[1].host, "10.0.0.2");
  NMT_EQ_INT(j.managers[1].port, 8586);
  NMT_EQ_STR(j.managers[1].fp.hex, FP2);
  NMT_EQ_INT(j.managers[1].key_source, SV_KEY_FROM_INVITE);
  NMT_EQ_STR(j.managers[2].host, "2001:db8::3");
  NMT_EQ_STR(j.managers[2].fp.hex, FP3);
  NMT_EQ_INT(j.has_secret, 1);
  /* --manager moves the first only */
  NMT_EQ_INT(sv_join_resolve(&j, ALSO_INVITE, "", "127.0.0.1", 9000, err, sizeof err), 0);
  NMT_EQ_STR(j.managers[0].host, "127.0.0.1");
  NMT_EQ_INT(j.managers[0].port, 9000);
  NMT_EQ_STR(j.managers[0].fp.hex, FP);
  NMT_EQ_STR(j.managers[1].host, "10.0.0.2");
  /* onto another's address: refused (two entries, two keys, one manager) */
  NMT_EQ_INT(sv_join_resolve(&j, ALSO_INVITE, "", "10.0.0.2", 8586, err, sizeof err), -1);
  NMT_HAS(err, "already the list's manager 2");
  /* --manager-key must name the first's key */
  NMT_EQ_INT(sv_join_resolve(&j, ALSO_INVITE, FP2, "", 0, err, sizeof err), -1);
  NMT_HAS(err, "is not the key the invite names");
}

static void test_config_list(void) {
  sv_join j;
  char err[300] = "";
  sv_join_entry pinned[] = {{"10.0.0.1,8585," FP, 3}, {"10.0.0.2,8585," FP2, 4}};
  /* each pinned: no invite or key needed */
  NMT_EQ_INT(sv_join_resolve_list(&j, "", "", pinned, 2, "c.xml", "", 0, err, sizeof err), 0);
  NMT_EQ_INT(j.nmanagers, 2);
  NMT_EQ_STR(j.managers[0].host, "10.0.0.1");
  NMT_EQ_STR(j.managers[1].fp.hex, FP2);
  NMT_EQ_INT(j.managers[1].key_source, SV_KEY_FROM_CONFIG);
  NMT_EQ_INT(j.has_secret, 0);
  /* the list replaces the invite's managers; the invite's secret stays */
  NMT_EQ_INT(sv_join_resolve_list(&j, ALSO_INVITE, "", pinned, 2, "c.xml", "", 0, err, sizeof err), 0);
  NMT_EQ_INT(j.nmanagers, 2);
  NMT_EQ_STR(j.managers[0].host, "10.0.0.1");
  NMT_EQ_INT(j.has_secret, 1);
  /* HOST,PORT takes the invite's or --manager-key's key */
  sv_join_entry unpinned[] = {{"m1,85", 3}, {"m2,86," FP3, 4}, {"M1,86", 5}};
  NMT_EQ_INT(sv_join_resolve_list(&j, "", FP2, unpinned, 3, "c.xml", "", 0, err, sizeof err), 0);
  NMT_EQ_STR(j.managers[0].fp.hex, FP2);
  NMT_EQ_INT(j.managers[0].key_source, SV_KEY_FROM_OPTION);
  NMT_EQ_STR(j.managers[1].fp.hex, FP3);
  NMT_EQ_STR(j.managers[2].fp.hex, FP2);
  NMT_EQ_INT(sv_join_resolve_list(&j, INVITE, "", unpinned, 1, "c.xml", "", 0, err, sizeof err), 0);
  NMT_EQ_STR(j.managers[0].fp.hex, FP);
  NMT_EQ_INT(j.managers[0].key_source, SV_KEY_FROM_INVITE);
  /* ... and without either, it has no key */
  NMT_EQ_INT(sv_join_resolve_list(&j, "", "", unpinned, 2, "c.xml", "", 0, err, sizeof err), -1);
  NMT_HAS(err, "c.xml:3: <connectionmgr> \"m1,85\" names no key");
  NMT_EQ_INT(sv_join_resolve_list(&j, "", "", unpinned + 1, 1, "c.xml", "", 0, err, sizeof err), 0);
  /* errors name the file and line */
  sv_join_entry bad[] = {{"10.0.0.1,8585," FP, 3}, {"10.0.0.1,8585," FP2, 7}};
  NMT_EQ_INT(sv_join_resolve_list(&j, "", "", bad, 2, "c.xml", "", 0, err, sizeof err), -1);
  NMT_HAS(err, "c.xml:7: <connectionmgr>: manager 10.0.0.1 port 8585 named twice");
  sv_join_entry worse[] = {{"10.0.0.1,85x," FP, 9}};
  NMT_EQ_INT(sv_join_resolve_list(&j, "", FP, worse, 1, "c.xml", "", 0, err, sizeof err), -1);
  NMT_HAS(err, "c.xml:9: <connectionmgr> \"10.0.0.1,85x,");
  NMT_HAS(err, "bad manager port");
  sv_join_entry commas[] = {{"a,1,2,3", 2}};
  NMT_EQ_INT(sv_join_resolve_list(&j, "", FP, commas, 1, "c.xml", "", 0, err, sizeof err), -1);
  NMT_HAS(err, "c.xml:2: <connectionmgr>");
  /* an uppercase fingerprint in a config is the same key */
  sv_join_entry upper[] = {{"m,85,5D41402ABC4B2A76B9719D911017C5925D41402ABC4B2A76B9719D911017C592", 2}};
  NMT_EQ_INT(sv_join_resolve_list(&j, "", "", upper, 1, "c.xml", "", 0, err, sizeof err), 0);
  NMT_EQ_STR(j.managers[0].fp.hex, FP);
  /* at most SV_JOIN_MANAGERS_MAX */
  sv_join_entry six[] = {{"a,1," FP, 1}, {"b,1," FP, 2}, {"c,1," FP, 3}, {"d,1," FP, 4}, {"e,1," FP, 5}, {"f,1," FP, 6}};
  NMT_EQ_INT(sv_join_resolve_list(&j, "", "", six, 5, "c.xml", "", 0, err, sizeof err), 0);
  NMT_EQ_INT(sv_join_resolve_list(&j, "", "", six, 6, "c.xml", "", 0, err, sizeof err), -1);
  NMT_HAS(err, "c.xml:6: <connectionmgr>: too many managers (at most 5)");
  NMT_CHECK(sv_join_entry_is_list("m,85"));
  NMT_CHECK(!sv_join_entry_is_list("[::1]:85"));
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

static void test_invite_from_file(void) {
  char dir[] = "/tmp/unit_join.XXXXXX", path[256], arg[300], out[NM_INVITE_MAX + 1], err[300];
  NMT_CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/invite", dir);
  snprintf(arg, sizeof arg, "@%s", path);
  write_file(path, "  " INVITE "\n\n");
  NMT_EQ_INT(sv_join_read_invite(arg, "--invite", out, sizeof out, err, sizeof err), 0);
  NMT_EQ_STR(out, INVITE);
  write_file(path, "\n \n");
  NMT_EQ_INT(sv_join_read_invite(arg, "--invite", out, sizeof out, err, sizeof err), -1);
  NMT_HAS(err, "the file is empty");
  write_file(path, INVITE "\n" INVITE "\n");
  NMT_EQ_INT(sv_join_read_invite(arg, "--invite", out, sizeof out, err, sizeof err), -1);
  NMT_HAS(err, "expected one invite string on one line");
  /* a huge file is not read whole, and refused */
  FILE *f = fopen(path, "w");
  for (int i = 0; i < 100000; i++) fputc('a', f);
  fclose(f);
  NMT_EQ_INT(sv_join_read_invite(arg, "--invite", out, sizeof out, err, sizeof err), -1);
  unlink(path);
  NMT_EQ_INT(sv_join_read_invite(arg, "--invite", out, sizeof out, err, sizeof err), -1);
  NMT_HAS(err, "No such file");
  rmdir(dir);
  /* a plain string is taken as it is */
  NMT_EQ_INT(sv_join_read_invite(INVITE, "--invite", out, sizeof out, err, sizeof err), 0);
  NMT_EQ_STR(out, INVITE);
}

int main(void) {
  NMT_RUN(test_no_key);
  NMT_RUN(test_invite);
  NMT_RUN(test_invite_also);
  NMT_RUN(test_config_list);
  NMT_RUN(test_overrides_move_the_address_never_the_key);
  NMT_RUN(test_manager_key);
  NMT_RUN(test_invite_and_key_must_agree);
  NMT_RUN(test_bad_invite);
  NMT_RUN(test_invite_from_file);
  return nmt_done();
}
