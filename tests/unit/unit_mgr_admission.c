/* The manager's admission store on disk (src/manager/admission.c): changes made under the
 * lock on the file as it is, so a subcommand and the running manager never save over each
 * other; the running manager reading the file again when it changed; a corrupt file neither
 * used nor overwritten; the config's grants. Two mgr_admission on one folder stand for the
 * running manager and a subcommand. */
#include "admission.h"
#include "nm_error.h"
#include "nmt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/nmt_mgradm_XXXXXX";

static const char *fp(unsigned n) {
  static char buf[4][NM_SHA256_HEX_LEN + 1];
  static unsigned next;
  char *b = buf[next++ % 4];
  snprintf(b, NM_SHA256_HEX_LEN + 1, "f%063x", n);
  return b;
}

static void secret_of(unsigned n, unsigned char out[NM_INVITE_SECRET_LEN]) {
  memset(out, 0, NM_INVITE_SECRET_LEN);
  out[0] = (unsigned char)n, out[15] = 0xa5;
}

typedef struct {
  unsigned n;
  nm_role role;
  uint32_t max_uses;
} new_invite;

static int add_invite(nm_admission_store *s, void *arg, char *err, size_t errlen) {
  new_invite *v = arg;
  unsigned char sec[NM_INVITE_SECRET_LEN];
  char hash[NM_SHA256_HEX_LEN + 1];
  secret_of(v->n, sec);
  nm_invite_secret_hash(sec, hash);
  int rc = nm_admission_add_invite(s, hash, 0, v->role, v->max_uses);
  if (rc < 0) snprintf(err, errlen, "add: %d", rc);
  return rc < 0 ? rc : 1;
}

static int revoke_key(nm_admission_store *s, void *arg, char *err, size_t errlen) {
  return nm_admission_revoke_key(s, arg, err, errlen) < 0 ? -1 : 1;
}

static int no_change(nm_admission_store *s, void *arg, char *err, size_t errlen) { return 0; }

static nm_admission_request request(unsigned k, const char *name, nm_role role,
                                    const unsigned char *secret) {
  nm_admission_request rq = {fp(k), name, role, secret, (uint64_t)time(NULL)};
  return rq;
}

/* A fresh folder's content for each test. */
static void clean(void) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s", dir, MGR_ADMISSION_FILE);
  unlink(p);
  snprintf(p, sizeof p, "%s/%s", dir, MGR_ADMISSION_LOCK_FILE);
  unlink(p);
}

static void test_a_change_is_seen_by_the_other_side(void) {
  clean();
  mgr_admission running, cmd;
  char err[300];
  NMT_EQ_INT(mgr_admission_open(&running, dir, NM_ADMISSION_INVITE, err, sizeof err), 0);
  NMT_EQ_INT(mgr_admission_refresh(&running, err, sizeof err), 0); /* no file, nothing new */
  NMT_EQ_INT(mgr_admission_open(&cmd, dir, NM_ADMISSION_INVITE, err, sizeof err), 0);
  new_invite v = {1, NM_ROLE_SERVANT, 0};
  NMT_EQ_INT(mgr_admission_update(&cmd, add_invite, &v, err, sizeof err), 1);
  struct stat st;
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, MGR_ADMISSION_FILE);
  NMT_EQ_INT(stat(path, &st), 0);
  NMT_EQ_INT(st.st_mode & 0777, 0600);

  /* The running manager reads it once, and then not again until it changes. */
  NMT_EQ_INT(mgr_admission_refresh(&running, err, sizeof err), 1);
  NMT_EQ_INT(running.store.ninvites, 1);
  NMT_EQ_INT(mgr_admission_refresh(&running, err, sizeof err), 0);

  /* A key admitted with the invite by the running manager is saved; the other side sees it. */
  unsigned char sec[NM_INVITE_SECRET_LEN];
  secret_of(1, sec);
  nm_admission_request rq = request(7, "alice", NM_ROLE_SERVANT, sec);
  nm_admission_decision d;
  NMT_EQ_INT(mgr_admission_admit(&running, &rq, &d, err, sizeof err), 0);
  NMT_CHECK(d.admit);
  NMT_EQ_INT(d.reason, NM_ADMIT_INVITED);
  NMT_EQ_INT(mgr_admission_refresh(&running, err, sizeof err), 0); /* its own save is not news */
  NMT_EQ_INT(mgr_admission_refresh(&cmd, err, sizeof err), 1);
  NMT_CHECK(nm_admission_find_key(&cmd.store, fp(7)) != NULL);
  NMT_EQ_INT(cmd.store.invites[0].uses, 1);

  /* Known now: admitted without the secret, and nothing to save. */
  rq = request(7, "alice", NM_ROLE_SERVANT, NULL);
  NMT_EQ_INT(mgr_admission_admit(&running, &rq, &d, err, sizeof err), 0);
  NMT_EQ_INT(d.reason, NM_ADMIT_KNOWN);
  NMT_EQ_INT(mgr_admission_refresh(&cmd, err, sizeof err), 0);
  mgr_admission_close(&running);
  mgr_admission_close(&cmd);
}

static void test_no_side_saves_over_the_other(void) {
  clean();
  mgr_admission a, b;
  char err[300];
  NMT_EQ_INT(mgr_admission_open(&a, dir, NM_ADMISSION_INVITE, err, sizeof err), 0);
  NMT_EQ_INT(mgr_admission_open(&b, dir, NM_ADMISSION_INVITE, err, sizeof err), 0);
  /* Each changes the store from what it read before the other's change. */
  new_invite v1 = {1, NM_ROLE_SERVANT, 0}, v2 = {2, NM_ROLE_RELAY, 3};
  NMT_EQ_INT(mgr_admission_update(&a, add_invite, &v1, err, sizeof err), 1);
  NMT_EQ_INT(mgr_admission_update(&b, add_invite, &v2, err, sizeof err), 1);
  NMT_EQ_INT(b.store.ninvites, 2);
  NMT_EQ_INT(mgr_admission_update(&a, revoke_key, (void *)fp(9), err, sizeof err), 1);
  mgr_admission c;
  NMT_EQ_INT(mgr_admission_open(&c, dir, NM_ADMISSION_INVITE, err, sizeof err), 0);
  NMT_EQ_INT(c.store.ninvites, 2);
  NMT_EQ_INT(c.store.nrevoked_keys, 1);
  NMT_CHECK(mgr_admission_key_revoked(&c, fp(9)));
  NMT_CHECK(!mgr_admission_key_revoked(&c, fp(8)));
  /* A change that changes nothing saves nothing. */
  NMT_EQ_INT(mgr_admission_update(&c, no_change, NULL, err, sizeof err), 0);
  NMT_EQ_INT(mgr_admission_refresh(&a, err, sizeof err), 0);
  mgr_admission_close(&a);
  mgr_admission_close(&b);
  mgr_admission_close(&c);
}

static void test_a_revocation_counts_at_the_next_decision(void) {
  clean();
  mgr_admission running, cmd;
  char err[300];
  NMT_EQ_INT(mgr_admission_open(&running, dir, NM_ADMISSION_OPEN, err, sizeof err), 0);
  NMT_EQ_INT(mgr_admission_open(&cmd, dir, NM_ADMISSION_INVITE, err, sizeof err), 0);
  nm_admission_request rq = request(3, "carol", NM_ROLE_SERVANT, NULL);
  nm_admission_decision d;
  NMT_EQ_INT(mgr_admission_admit(&running, &rq, &d, err, sizeof err), 0);
  NMT_EQ_INT(d.reason, NM_ADMIT_OPEN);
  NMT_EQ_INT(mgr_admission_update(&cmd, revoke_key, (void *)fp(3), err, sizeof err), 1);
  rq = request(3, "carol", NM_ROLE_SERVANT, NULL);
  NMT_EQ_INT(mgr_admission_admit(&running, &rq, &d, err, sizeof err), 0);
  NMT_CHECK(!d.admit);
  NMT_EQ_INT(d.reason, NM_REFUSE_KEY_REVOKED);
  NMT_CHECK(mgr_admission_key_revoked(&running, fp(3)));
  /* The name of a revoked key is free for another key. */
  rq = request(4, "carol", NM_ROLE_SERVANT, NULL);
  NMT_EQ_INT(mgr_admission_admit(&running, &rq, &d, err, sizeof err), 0);
  NMT_CHECK(d.admit);
  rq = request(5, "Carol", NM_ROLE_SERVANT, NULL);
  NMT_EQ_INT(mgr_admission_admit(&running, &rq, &d, err, sizeof err), 0);
  NMT_EQ_INT(d.reason, NM_REFUSE_NAME_TAKEN);
  mgr_admission_close(&running);
  mgr_admission_close(&cmd);
}

static void test_a_corrupt_file_is_neither_used_nor_overwritten(void) {
  clean();
  mgr_admission a;
  char err[300], path[256];
  NMT_EQ_INT(mgr_admission_open(&a, dir, NM_ADMISSION_INVITE, err, sizeof err), 0);
  new_invite v = {1, NM_ROLE_SERVANT, 0};
  NMT_EQ_INT(mgr_admission_update(&a, add_invite, &v, err, sizeof err), 1);
  snprintf(path, sizeof path, "%s/%s", dir, MGR_ADMISSION_FILE);
  FILE *f = fopen(path, "a");
  fputs("admitted not-a-fingerprint bob servant -\n", f);
  fclose(f);
  err[0] = 0;
  NMT_CHECK(mgr_admission_refresh(&a, err, sizeof err) < 0);
  NMT_HAS(err, MGR_ADMISSION_FILE);
  NMT_EQ_INT(a.store.ninvites, 1); /* what was read before stays */
  v.n = 2;
  NMT_EQ_INT(mgr_admission_update(&a, add_invite, &v, err, sizeof err), NM_ECONFIG);
  NMT_HAS(err, "fix or remove it");
  f = fopen(path, "r");
  char text[2048];
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = 0;
  fclose(f);
  NMT_HAS(text, "not-a-fingerprint"); /* the operator's file, as it was */
  mgr_admission_close(&a);
  /* A manager does not start on it. */
  NMT_CHECK(mgr_admission_open(&a, dir, NM_ADMISSION_INVITE, err, sizeof err) < 0);
  mgr_admission_close(&a);
}

static void test_grants_from_the_config(void) {
  clean();
  nm_keylist allow = {0}, relays = {0};
  NMT_EQ_INT(nm_keylist_add(&allow, fp(1)), 0);
  NMT_EQ_INT(nm_keylist_add(&allow, fp(2)), 0);
  NMT_EQ_INT(nm_keylist_add(&relays, fp(2)), 0); /* allowed and a relay key: a relay key */
  NMT_EQ_INT(nm_keylist_add(&relays, fp(3)), 0);
  mgr_admission a;
  char err[300];
  NMT_EQ_INT(mgr_admission_open(&a, dir, NM_ADMISSION_ALLOW, err, sizeof err), 0);
  NMT_EQ_INT(mgr_admission_grant(&a, &allow, &relays, err, sizeof err), 0);
  NMT_EQ_INT(a.store.nallow, 3);
  nm_admission_decision d;
  nm_admission_request rq = request(1, "one", NM_ROLE_RELAY, NULL);
  NMT_EQ_INT(mgr_admission_admit(&a, &rq, &d, err, sizeof err), 0);
  NMT_EQ_INT(d.reason, NM_REFUSE_ROLE_NOT_GRANTED);
  rq = request(2, "two", NM_ROLE_RELAY, NULL);
  NMT_EQ_INT(mgr_admission_admit(&a, &rq, &d, err, sizeof err), 0);
  NMT_CHECK(d.admit && d.role == NM_ROLE_RELAY);
  rq = request(4, "four", NM_ROLE_SERVANT, NULL);
  NMT_EQ_INT(mgr_admission_admit(&a, &rq, &d, err, sizeof err), 0);
  NMT_EQ_INT(d.reason, NM_REFUSE_NOT_ALLOWED);
  /* The allow list is the config's: a reload keeps it, a save does not write it. */
  new_invite v = {1, NM_ROLE_SERVANT, 0};
  NMT_EQ_INT(mgr_admission_update(&a, add_invite, &v, err, sizeof err), 1);
  NMT_EQ_INT(a.store.nallow, 3);
  mgr_admission b;
  NMT_EQ_INT(mgr_admission_open(&b, dir, NM_ADMISSION_INVITE, err, sizeof err), 0);
  NMT_EQ_INT(b.store.nallow, 0);
  mgr_admission_close(&a);
  mgr_admission_close(&b);
  nm_keylist_free(&allow);
  nm_keylist_free(&relays);
}

/* Whether the file on disk holds an admitted record for key k (read by a third side). */
static int file_has_key(unsigned k) {
  mgr_admission reader;
  char err[300];
  NMT_EQ_INT(mgr_admission_open(&reader, dir, NM_ADMISSION_INVITE, err, sizeof err), 0);
  int has = nm_admission_find_key(&reader.store, fp(k)) != NULL;
  mgr_admission_close(&reader);
  return has;
}

/* The running manager (with a loop): admissions that only remember a key are decided at
 * once and saved in batches by a worker thread, not once each on the loop. */
static void test_records_are_saved_in_batches(void) {
  clean();
  uv_loop_t loop;
  uv_loop_init(&loop);
  mgr_admission running;
  char err[300];
  NMT_EQ_INT(mgr_admission_open(&running, dir, NM_ADMISSION_OPEN, err, sizeof err), 0);
  NMT_EQ_INT(mgr_admission_start(&running, &loop), 0);
  enum { N = 2000 };
  char name[32];
  for (unsigned k = 100; k < 100 + N; k++) {
    snprintf(name, sizeof name, "s%u", k);
    nm_admission_request rq = request(k, name, NM_ROLE_SERVANT, NULL);
    nm_admission_decision d;
    NMT_EQ_INT(mgr_admission_admit(&running, &rq, &d, err, sizeof err), 0);
    NMT_CHECK(d.admit);
  }
  /* Decided and held in memory at once: the names are taken already. */
  NMT_EQ_INT(running.store.nkeys, N);
  nm_admission_request taken = request(9, "S100", NM_ROLE_SERVANT, NULL);
  nm_admission_decision d;
  NMT_EQ_INT(mgr_admission_admit(&running, &taken, &d, err, sizeof err), 0);
  NMT_EQ_INT(d.reason, NM_REFUSE_NAME_TAKEN);
  NMT_CHECK(!file_has_key(100)); /* not saved on the loop */
  NMT_EQ_INT(running.npending, N);
  /* The loop runs the flush timer and the worker's batch. */
  uv_run(&loop, UV_RUN_DEFAULT);
  NMT_EQ_INT(running.saved, 1); /* one save for all of them (it was one a key before) */
  NMT_EQ_INT(running.failed, 0);
  NMT_EQ_INT(running.npending, 0);
  NMT_CHECK(file_has_key(100) && file_has_key(100 + N - 1));
  NMT_EQ_INT(running.store.nkeys, N);
  /* The store the worker saved is the running one now: the file is not read again. */
  NMT_EQ_INT(mgr_admission_refresh(&running, err, sizeof err), 0);
  mgr_admission_stop(&running);
  uv_run(&loop, UV_RUN_DEFAULT);
  mgr_admission_close(&running);
  NMT_EQ_INT(uv_loop_close(&loop), 0);
}

/* A revocation a subcommand saves while a record waits wins over it; a record that waits
 * is saved on top of an invite the subcommand added, never over it. */
static void test_pending_records_and_a_subcommand(void) {
  clean();
  uv_loop_t loop;
  uv_loop_init(&loop);
  mgr_admission running, cmd;
  char err[300];
  NMT_EQ_INT(mgr_admission_open(&running, dir, NM_ADMISSION_OPEN, err, sizeof err), 0);
  NMT_EQ_INT(mgr_admission_start(&running, &loop), 0);
  NMT_EQ_INT(mgr_admission_open(&cmd, dir, NM_ADMISSION_INVITE, err, sizeof err), 0);
  nm_admission_decision d;
  nm_admission_request a = request(21, "dora", NM_ROLE_SERVANT, NULL);
  nm_admission_request b = request(22, "eve", NM_ROLE_SERVANT, NULL);
  NMT_EQ_INT(mgr_admission_admit(&running, &a, &d, err, sizeof err), 0);
  NMT_EQ_INT(mgr_admission_admit(&running, &b, &d, err, sizeof err), 0);
  NMT_EQ_INT(running.npending, 2);
  /* The subcommand revokes eve's key and adds an invite, before the batch is saved. */
  NMT_EQ_INT(mgr_admission_update(&cmd, revoke_key, (void *)fp(22), err, sizeof err), 1);
  new_invite v = {7, NM_ROLE_SERVANT, 0};
  NMT_EQ_INT(mgr_admission_update(&cmd, add_invite, &v, err, sizeof err), 1);
  /* The running manager reads the file again (as it does before each decision): eve's
   * record goes, dora's is made again on what it read. */
  NMT_EQ_INT(mgr_admission_refresh(&running, err, sizeof err), 1);
  NMT_CHECK(mgr_admission_key_revoked(&running, fp(22)));
  NMT_CHECK(nm_admission_find_key(&running.store, fp(22)) == NULL);
  NMT_CHECK(nm_admission_find_key(&running.store, fp(21)) != NULL);
  NMT_EQ_INT(running.npending, 1);
  uv_run(&loop, UV_RUN_DEFAULT);
  NMT_EQ_INT(running.saved, 1);
  NMT_CHECK(file_has_key(21) && !file_has_key(22));
  mgr_admission reader;
  NMT_EQ_INT(mgr_admission_open(&reader, dir, NM_ADMISSION_INVITE, err, sizeof err), 0);
  NMT_EQ_INT(reader.store.ninvites, 1); /* the subcommand's invite is still there */
  NMT_CHECK(mgr_admission_key_revoked(&reader, fp(22)));
  mgr_admission_close(&reader);
  mgr_admission_stop(&running);
  uv_run(&loop, UV_RUN_DEFAULT);
  mgr_admission_close(&running);
  mgr_admission_close(&cmd);
  NMT_EQ_INT(uv_loop_close(&loop), 0);
}

/* What waits when the manager stops is saved by mgr_admission_close. */
static void test_close_saves_what_waits(void) {
  clean();
  uv_loop_t loop;
  uv_loop_init(&loop);
  mgr_admission running;
  char err[300];
  NMT_EQ_INT(mgr_admission_open(&running, dir, NM_ADMISSION_OPEN, err, sizeof err), 0);
  NMT_EQ_INT(mgr_admission_start(&running, &loop), 0);
  nm_admission_request rq = request(31, "fred", NM_ROLE_SERVANT, NULL);
  nm_admission_decision d;
  NMT_EQ_INT(mgr_admission_admit(&running, &rq, &d, err, sizeof err), 0);
  NMT_CHECK(d.admit && !file_has_key(31));
  mgr_admission_stop(&running); /* stopping before the timer fired */
  uv_run(&loop, UV_RUN_DEFAULT);
  NMT_EQ_INT(running.saved, 0);
  mgr_admission_close(&running);
  NMT_CHECK(file_has_key(31));
  NMT_EQ_INT(uv_loop_close(&loop), 0);
}

/* An invite's use is counted before the node is admitted, even with a loop: a single-use
 * invite admits exactly one key. */
static void test_invite_uses_are_saved_at_once(void) {
  clean();
  uv_loop_t loop;
  uv_loop_init(&loop);
  mgr_admission running;
  char err[300];
  NMT_EQ_INT(mgr_admission_open(&running, dir, NM_ADMISSION_INVITE, err, sizeof err), 0);
  NMT_EQ_INT(mgr_admission_start(&running, &loop), 0);
  new_invite v = {8, NM_ROLE_SERVANT, 1};
  NMT_EQ_INT(mgr_admission_update(&running, add_invite, &v, err, sizeof err), 1);
  unsigned char sec[NM_INVITE_SECRET_LEN];
  secret_of(8, sec);
  nm_admission_request rq = request(41, "gina", NM_ROLE_SERVANT, sec);
  nm_admission_decision d;
  NMT_EQ_INT(mgr_admission_admit(&running, &rq, &d, err, sizeof err), 0);
  NMT_EQ_INT(d.reason, NM_ADMIT_INVITED);
  NMT_CHECK(file_has_key(41));
  NMT_EQ_INT(running.npending, 0);
  mgr_admission_stop(&running);
  uv_run(&loop, UV_RUN_DEFAULT);
  mgr_admission_close(&running);
  NMT_EQ_INT(uv_loop_close(&loop), 0);
}

/* Facts from other managers (issue 14): made in memory at once (the next decision sees
 * them), kept through a re-read of the file a subcommand changed, saved with the batch; a
 * learned revocation wins over a key admitted here and over a learned record. */
static void test_learned_facts(void) {
  clean();
  uv_loop_t loop;
  uv_loop_init(&loop);
  mgr_admission running, cmd;
  char err[300], why[160], hash[NM_SHA256_HEX_LEN + 1];
  NMT_EQ_INT(mgr_admission_open(&running, dir, NM_ADMISSION_INVITE, err, sizeof err), 0);
  NMT_EQ_INT(mgr_admission_start(&running, &loop), 0);
  NMT_EQ_INT(mgr_admission_open(&cmd, dir, NM_ADMISSION_INVITE, err, sizeof err), 0);
  unsigned char sec[NM_INVITE_SECRET_LEN];
  secret_of(9, sec);
  nm_invite_secret_hash(sec, hash);
  nm_admission_fact f;
  /* Another manager's invite: this one admits its secret at once. */
  NMT_EQ_INT(nm_admission_fact_parse('i', hash, "0 servant 0", 11, &f, why, sizeof why), 0);
  NMT_EQ_INT(mgr_admission_learn(&running, &f), 1);
  NMT_EQ_INT(mgr_admission_learn(&running, &f), 0);
  nm_admission_request rq = request(51, "hana", NM_ROLE_SERVANT, sec);
  nm_admission_decision d;
  NMT_EQ_INT(mgr_admission_admit(&running, &rq, &d, err, sizeof err), 0);
  NMT_EQ_INT(d.reason, NM_ADMIT_INVITED);
  /* Another manager's key, then a subcommand changes the file: still known. */
  NMT_EQ_INT(nm_admission_fact_parse('k', fp(52), "ivan servant -", 14, &f, why, sizeof why), 0);
  NMT_EQ_INT(mgr_admission_learn(&running, &f), 1);
  new_invite v = {10, NM_ROLE_SERVANT, 0};
  NMT_EQ_INT(mgr_admission_update(&cmd, add_invite, &v, err, sizeof err), 1);
  uint64_t reads = running.reads;
  NMT_EQ_INT(mgr_admission_refresh(&running, err, sizeof err), 1);
  NMT_EQ_INT(running.reads, reads + 1);
  NMT_CHECK(nm_admission_find_key(&running.store, fp(52)) != NULL);
  /* Another manager revokes hana's key: gone here too, and refused from then on. */
  NMT_EQ_INT(nm_admission_fact_parse('r', fp(51), "", 0, &f, why, sizeof why), 0);
  NMT_EQ_INT(mgr_admission_learn(&running, &f), 1);
  NMT_CHECK(mgr_admission_key_revoked(&running, fp(51)));
  NMT_EQ_INT(nm_admission_fact_parse('k', fp(51), "hana servant -", 14, &f, why, sizeof why), 0);
  NMT_EQ_INT(mgr_admission_learn(&running, &f), 0); /* the revocation wins */
  rq = request(51, "hana", NM_ROLE_SERVANT, NULL);
  NMT_EQ_INT(mgr_admission_admit(&running, &rq, &d, err, sizeof err), 0);
  NMT_EQ_INT(d.reason, NM_REFUSE_KEY_REVOKED);
  /* Saved: a restart keeps them. */
  uv_run(&loop, UV_RUN_DEFAULT);
  mgr_admission reader;
  NMT_EQ_INT(mgr_admission_open(&reader, dir, NM_ADMISSION_INVITE, err, sizeof err), 0);
  NMT_EQ_INT(reader.store.ninvites, 2);
  NMT_CHECK(nm_admission_find_key(&reader.store, fp(52)) != NULL);
  NMT_CHECK(mgr_admission_key_revoked(&reader, fp(51)));
  NMT_CHECK(nm_admission_find_key(&reader.store, fp(51)) == NULL);
  mgr_admission_close(&reader);
  mgr_admission_stop(&running);
  uv_run(&loop, UV_RUN_DEFAULT);
  mgr_admission_close(&running);
  mgr_admission_close(&cmd);
  NMT_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void) {
  if (!mkdtemp(dir)) return 1;
  NMT_RUN(test_a_change_is_seen_by_the_other_side);
  NMT_RUN(test_no_side_saves_over_the_other);
  NMT_RUN(test_a_revocation_counts_at_the_next_decision);
  NMT_RUN(test_a_corrupt_file_is_neither_used_nor_overwritten);
  NMT_RUN(test_grants_from_the_config);
  NMT_RUN(test_records_are_saved_in_batches);
  NMT_RUN(test_pending_records_and_a_subcommand);
  NMT_RUN(test_close_saves_what_waits);
  NMT_RUN(test_invite_uses_are_saved_at_once);
  NMT_RUN(test_learned_facts);
  clean();
  rmdir(dir);
  return nmt_done();
}
