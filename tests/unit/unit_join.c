/* The servant's join target (src/servant/join.c): an invite, a manager key, or both (they
 * must agree); --manager / --manager-port move the address and never the key; an invite read
 * from a file is trimmed; without either, the exact error the spec names. */
#include "join.h"
#include "nmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define FP "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592"
#define FP2 "aaaa402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592"
#define SECRET "000102030405060708090a0b0c0d0e0f"
#define INVITE "natmesh-invite:v1/manager.example.org/8585/" FP "/" SECRET
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
  NMT_EQ_STR(j.host, "manager.example.org");
  NMT_EQ_INT(j.port, 8585);
  NMT_EQ_STR(j.manager_fp.hex, FP);
  NMT_EQ_INT(j.has_secret, 1);
  for (int i = 0; i < NM_INVITE_SECRET_LEN; i++) NMT_EQ_INT(j.secret[i], i);
  NMT_EQ_INT(j.key_source, SV_KEY_FROM_INVITE);
  NMT_EQ_INT(j.invite_role, NM_ROLE_SERVANT);
  NMT_EQ_INT(sv_join_resolve(&j, RELAY_INVITE, "", "", 0, err, sizeof err), 0);
  NMT_EQ_INT(j.invite_role, NM_ROLE_RELAY);
  NMT_EQ_STR(j.host, "10.0.0.1");
  NMT_EQ_INT(j.port, 85);
  sv_join_clear(&j);
  NMT_EQ_INT(j.has_secret, 0);
}

static void test_overrides_move_the_address_never_the_key(void) {
  sv_join j;
  char err[300] = "";
  NMT_EQ_INT(sv_join_resolve(&j, INVITE, "", "127.0.0.1", 0, err, sizeof err), 0);
  NMT_EQ_STR(j.host, "127.0.0.1");
  NMT_EQ_INT(j.port, 8585);
  NMT_EQ_STR(j.manager_fp.hex, FP);
  NMT_EQ_INT(sv_join_resolve(&j, INVITE, "", "", 9000, err, sizeof err), 0);
  NMT_EQ_STR(j.host, "manager.example.org");
  NMT_EQ_INT(j.port, 9000);
  NMT_EQ_STR(j.manager_fp.hex, FP);
}

static void test_manager_key(void) {
  sv_join j;
  char err[300] = "";
  NMT_EQ_INT(sv_join_resolve(&j, "", FP, "", 0, err, sizeof err), 0);
  NMT_EQ_STR(j.host, SV_DEFAULT_MANAGER_HOST);
  NMT_EQ_INT(j.port, SV_DEFAULT_MANAGER_PORT);
  NMT_EQ_STR(j.manager_fp.hex, FP);
  NMT_EQ_INT(j.has_secret, 0);
  NMT_EQ_INT(j.key_source, SV_KEY_FROM_OPTION);
  /* upper case is the same key, stored lowercase */
  NMT_EQ_INT(sv_join_resolve(&j, "", "5D41402ABC4B2A76B9719D911017C5925D41402ABC4B2A76B9719D911017C592", "m", 1,
                             err, sizeof err), 0);
  NMT_EQ_STR(j.manager_fp.hex, FP);
  NMT_EQ_STR(j.host, "m");
  NMT_EQ_INT(j.port, 1);
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
  NMT_RUN(test_overrides_move_the_address_never_the_key);
  NMT_RUN(test_manager_key);
  NMT_RUN(test_invite_and_key_must_agree);
  NMT_RUN(test_bad_invite);
  NMT_RUN(test_invite_from_file);
  return nmt_done();
}
