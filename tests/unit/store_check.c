/* store_check: src/manager/store.c against a real redis-server (and Sentinel), driven by
 * tests/integration/test_store.py, which starts and kills the servers.
 *
 *   store_check url                  mgr_store_parse_url, no server
 *   store_check basic URL            put, leave, renew, reap, complain, announce, snapshot
 *   store_check gap URL              a hole in the stream (XTRIM + a lost seq): a snapshot
 *   store_check bounds URL           65536 puts in flight, then -ENOBUFS; all read back in
 *                                    order; a renew of 5000 ids in two batches
 *   store_check admin URL            SCRIPT FLUSH (EVAL fallback); REPLICAOF (READONLY, ROLE)
 *   store_check stall URL            prints "up", waits for the watchdog once the server is
 *                                    SIGSTOPped ("down after N ms"), SIGCONT: "up again"
 *   store_check restart URL          prints "up", waits for the server to die ("down"), to
 *                                    come back ("up again")
 *   store_check admission URL        admission facts: published once, revocations win, bad
 *                                    ones refused, a newcomer reads them all at its snapshot
 *   store_check failover URL         sentinel:// : "up PRIMARY", the primary SIGKILLed,
 *                                    "up again PRIMARY" on the promoted replica
 *
 * Steps wait on the loop for what must happen (uv_run until a condition or a deadline), so
 * the checks read top to bottom. Lines on stdout are the test's cues; failures go to stderr
 * (nmt.h) and the exit status. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "nm_log.h"
#include "nmt.h"
#include "store.h"

#define MAXREC 64

typedef struct {
  uint64_t seq;
  char op;
  char id[80], holder[80], data[128];
} change;

typedef struct {
  const char *name;
  mgr_store *s;
  int snapshots, downs, renewed, managers;
  uint64_t snap_seq;
  size_t snap_n;
  char snap[MAXREC][200]; /* "id holder data" */
  change ch[MAXREC];
  size_t nch;
  char missing[256], moved[256];
  char mgrs[256];
  size_t nfacts;
  char facts[MAXREC][200]; /* "kind key value from" */
  int leads, leading;
  char leader[80];
  char snap_mesh[MAXREC][200]; /* "id set" */
} rec;

static uv_loop_t *loop;

static void on_snapshot(void *ud, uint64_t seq, const mgr_store_entry *e, size_t n) {
  rec *r = ud;
  r->snapshots++;
  r->snap_seq = seq;
  r->snap_n = n;
  for (size_t i = 0; i < n && i < MAXREC; i++)
    snprintf(r->snap[i], sizeof r->snap[i], "%s %s %.*s", e[i].id, e[i].holder, (int)e[i].len,
             e[i].data);
  for (size_t i = 0; i < n && i < MAXREC; i++)
    snprintf(r->snap_mesh[i], sizeof r->snap_mesh[i], "%s %.*s", e[i].id, (int)e[i].mesh_len, e[i].mesh);
}

static void on_lead(void *ud, const char *leader, int leading) {
  rec *r = ud;
  r->leads++;
  r->leading = leading;
  snprintf(r->leader, sizeof r->leader, "%s", leader);
}

static void on_change(void *ud, const mgr_store_change *c) {
  rec *r = ud;
  if (r->nch == MAXREC) return;
  change *x = &r->ch[r->nch++];
  x->seq = c->seq;
  x->op = c->op;
  snprintf(x->id, sizeof x->id, "%s", c->id);
  snprintf(x->holder, sizeof x->holder, "%s", c->holder);
  snprintf(x->data, sizeof x->data, "%.*s", (int)c->len, c->data);
}

static void on_down(void *ud, const char *why) {
  rec *r = ud;
  r->downs++;
  printf("# %s down: %s\n", r->name, why);
  fflush(stdout);
}

static void on_renewed(void *ud, const char *const *missing, size_t nmissing,
                       const char *const *moved, const char *const *moved_to, size_t nmoved) {
  rec *r = ud;
  r->renewed++;
  r->missing[0] = r->moved[0] = '\0';
  for (size_t i = 0; i < nmissing; i++)
    snprintf(r->missing + strlen(r->missing), sizeof r->missing - strlen(r->missing), "%s ",
             missing[i]);
  for (size_t i = 0; i < nmoved; i++)
    snprintf(r->moved + strlen(r->moved), sizeof r->moved - strlen(r->moved), "%s>%s ", moved[i],
             moved_to[i]);
}

static void on_managers(void *ud, const mgr_store_manager *m, size_t n) {
  rec *r = ud;
  r->managers++;
  r->mgrs[0] = '\0';
  for (size_t i = 0; i < n; i++)
    snprintf(r->mgrs + strlen(r->mgrs), sizeof r->mgrs - strlen(r->mgrs), "%s=%s:%u/%s ",
             m[i].name, m[i].addr, m[i].port, m[i].fp);
}

static void on_admission(void *ud, char kind, const char *key, const char *value, size_t len,
                         const char *from) {
  rec *r = ud;
  if (r->nfacts == MAXREC) return;
  snprintf(r->facts[r->nfacts++], sizeof r->facts[0], "%c %s %.*s %s", kind, key, (int)len, value, from);
}

static const mgr_store_hooks hooks = {on_snapshot, on_change, on_down, on_renewed, on_managers,
                                      on_admission, on_lead};

/* Runs the loop until cond holds or timeout_ms passed; the store's own timer ticks every
 * 250 ms, so the loop never sleeps past a deadline by much. */
#define WAIT(cond, timeout_ms)                                                              \
  do {                                                                                      \
    uv_update_time(loop);                                                                   \
    uint64_t end_ = uv_now(loop) + (timeout_ms);                                            \
    while (!(cond) && uv_now(loop) < end_) uv_run(loop, UV_RUN_ONCE);                       \
  } while (0)

static void open_store(rec *r, const char *name, const char *url, unsigned ttl) {
  memset(r, 0, sizeof *r);
  r->name = name;
  NMT_EQ_INT(mgr_store_init(&r->s, loop, url, "test", name, ttl, &hooks, r), 0);
}

static void close_store(rec *r) {
  mgr_store_close(r->s);
  r->s = NULL;
}

/* The last change a store saw, or a blank one. */
static const change *last(const rec *r) {
  static const change none;
  return r->nch ? &r->ch[r->nch - 1] : &none;
}

static const change *find(const rec *r, const char *id, char op) {
  for (size_t i = 0; i < r->nch; i++)
    if (r->ch[i].op == op && strcmp(r->ch[i].id, id) == 0) return &r->ch[i];
  return NULL;
}

static int snap_has(const rec *r, const char *entry) {
  for (size_t i = 0; i < r->snap_n && i < MAXREC; i++)
    if (strcmp(r->snap[i], entry) == 0) return 1;
  return 0;
}

static void run_url(void) {
  char err[200];
  NMT_EQ_INT(mgr_store_parse_url("redis://127.0.0.1:6380", err, sizeof err), 0);
  NMT_EQ_INT(mgr_store_parse_url("redis://[::1]:6380", err, sizeof err), 0);
  NMT_EQ_INT(mgr_store_parse_url("sentinel://127.0.0.1:26379,10.0.0.2:26380/mymaster", err, sizeof err), 0);
  NMT_EQ_INT(mgr_store_parse_url("redis://localhost:6380", err, sizeof err), -EINVAL);
  NMT_HAS(err, "not an IP literal");
  NMT_EQ_INT(mgr_store_parse_url("redis://127.0.0.1", err, sizeof err), -EINVAL);
  NMT_EQ_INT(mgr_store_parse_url("redis://127.0.0.1:0", err, sizeof err), -EINVAL);
  NMT_EQ_INT(mgr_store_parse_url("http://127.0.0.1:80", err, sizeof err), -EINVAL);
  NMT_EQ_INT(mgr_store_parse_url("sentinel://127.0.0.1:26379", err, sizeof err), -EINVAL);
  NMT_EQ_INT(mgr_store_parse_url("sentinel://127.0.0.1:26379/bad name", err, sizeof err), -EINVAL);
  NMT_EQ_INT(mgr_store_parse_url("sentinel:///m", err, sizeof err), -EINVAL);
  NMT_EQ_INT(mgr_store_parse_url("sentinel://1.1.1.1:1,1.1.1.1:2,1.1.1.1:3,1.1.1.1:4,1.1.1.1:5,"
                                 "1.1.1.1:6,1.1.1.1:7,1.1.1.1:8,1.1.1.1:9/m", err, sizeof err),
             -EINVAL);
  NMT_EQ_INT(mgr_store_parse_url(NULL, err, sizeof err), -EINVAL);
  NMT_EQ_INT(mgr_store_check_name("natmesh"), 0);
  NMT_EQ_INT(mgr_store_check_name("host-1.example_x"), 0);
  NMT_EQ_INT(mgr_store_check_name(""), -EINVAL);
  NMT_EQ_INT(mgr_store_check_name("a b"), -EINVAL);
  NMT_EQ_INT(mgr_store_check_name("nm:{x}"), -EINVAL);
  NMT_EQ_INT(mgr_store_check_name("0123456789012345678901234567890123456789012345678901234567890123x"), -EINVAL);
}

static void run_basic(const char *url) {
  rec a, b, c, d;
  open_store(&a, "mA", url, 60000);
  open_store(&b, "mB", url, 60000);
  NMT_EQ_INT(mgr_store_put(a.s, "aaaa", "x", 1), -ENOTCONN); /* not up yet */
  WAIT(a.snapshots && b.snapshots, 10000);
  NMT_CHECK(mgr_store_is_up(a.s) && mgr_store_is_up(b.s));
  NMT_EQ_INT(a.snap_seq, 0);
  NMT_EQ_INT(a.snap_n, 0);
  NMT_CHECK(strncmp(mgr_store_primary(a.s), "127.0.0.1:", 10) == 0);

  /* puts: every store sees every change, in one order, seq 1, 2, 3 */
  NMT_EQ_INT(mgr_store_put(a.s, "aaaa", "rec-a", 5), 0);
  NMT_EQ_INT(mgr_store_put(a.s, "bbbb", "rec-b", 5), 0);
  NMT_EQ_INT(mgr_store_put(b.s, "cccc", "rec-c", 5), 0);
  WAIT(a.nch >= 3 && b.nch >= 3, 10000);
  NMT_EQ_INT(a.nch, 3);
  NMT_EQ_INT(b.nch, 3);
  for (size_t i = 0; i < 3 && i < a.nch && i < b.nch; i++) {
    NMT_EQ_INT(a.ch[i].seq, i + 1);
    NMT_EQ_INT(a.ch[i].op, 'u');
    NMT_EQ_STR(a.ch[i].id, b.ch[i].id);
    NMT_EQ_INT(b.ch[i].seq, i + 1);
  }
  /* which connection's put came first is the server's choice: find aaaa's */
  const change *ca = find(&a, "aaaa", 'u');
  NMT_CHECK(ca != NULL);
  if (ca) {
    NMT_EQ_STR(ca->holder, "mA");
    NMT_EQ_STR(ca->data, "rec-a");
  }

  /* leave: only by the holder; a stale one publishes nothing */
  NMT_EQ_INT(mgr_store_leave(b.s, "bbbb", "stale"), 0);
  NMT_EQ_INT(mgr_store_leave(a.s, "aaaa", "quit"), 0);
  WAIT(b.nch >= 4, 10000);
  NMT_EQ_INT(last(&b)->op, 'l');
  NMT_EQ_STR(last(&b)->id, "aaaa");
  NMT_EQ_STR(last(&b)->holder, "mA");
  NMT_EQ_STR(last(&b)->data, "quit");
  NMT_EQ_INT(last(&b)->seq, 4);

  /* complaint: seq stays 4 */
  NMT_EQ_INT(mgr_store_complain(b.s, "bbbb", "mA", "cccc"), 0);
  WAIT(a.nch >= 5 && b.nch >= 5, 10000);
  NMT_EQ_INT(a.nch, 5); /* the stale leave of bbbb made no change */
  NMT_EQ_INT(last(&a)->op, 'c');
  NMT_EQ_INT(last(&a)->seq, 4);
  NMT_EQ_STR(last(&a)->id, "bbbb");
  NMT_EQ_STR(last(&a)->holder, "mA");
  NMT_EQ_STR(last(&a)->data, "cccc");

  /* renew: zzzz is not registered, cccc is held by mB */
  const char *ids[] = {"bbbb", "cccc", "zzzz"};
  NMT_EQ_INT(mgr_store_renew(a.s, ids, 3), 0);
  WAIT(a.renewed, 10000);
  NMT_EQ_STR(a.missing, "zzzz ");
  NMT_EQ_STR(a.moved, "cccc>mB ");

  /* take-over: mB puts bbbb; mA's renew then says it moved */
  NMT_EQ_INT(mgr_store_put(b.s, "bbbb", "rec-b2", 6), 0);
  WAIT(a.nch >= 6, 10000);
  NMT_EQ_INT(last(&a)->seq, 5);
  NMT_EQ_STR(last(&a)->holder, "mB");
  NMT_EQ_INT(mgr_store_renew(a.s, ids, 1), 0);
  WAIT(a.renewed >= 2, 10000);
  NMT_EQ_STR(a.moved, "bbbb>mB ");
  NMT_EQ_STR(a.missing, "");

  /* reap: dddd with a short ttl expires; both reap at once, one leave is published */
  open_store(&c, "mC", url, 200);
  WAIT(c.snapshots, 10000);
  NMT_EQ_INT(mgr_store_put(c.s, "dddd", "rec-d", 5), 0);
  WAIT(a.nch >= 7, 10000);
  size_t before = a.nch;
  WAIT(0, 600); /* past dddd's deadline (200 ms) on Redis's clock */
  NMT_EQ_INT(mgr_store_reap(a.s), 0);
  NMT_EQ_INT(mgr_store_reap(b.s), 0);
  NMT_EQ_INT(mgr_store_complain(a.s, "eeee", "", "ffff"), 0); /* a marker after both reaps */
  WAIT(a.nch >= before + 2 && last(&a)->op == 'c', 10000);
  NMT_EQ_INT(a.nch, before + 2);
  NMT_EQ_INT(a.ch[before].op, 'l');
  NMT_EQ_STR(a.ch[before].id, "dddd");
  NMT_EQ_STR(a.ch[before].holder, "");
  NMT_EQ_STR(a.ch[before].data, "expired");
  NMT_EQ_INT(a.ch[before].seq, 7);

  /* announce */
  NMT_EQ_INT(mgr_store_announce(a.s, "127.0.0.1", 7000, "ffee"), 0);
  WAIT(a.managers, 10000);
  NMT_HAS(a.mgrs, "mA=127.0.0.1:7000/ffee");

  /* a snapshot read by a newcomer: bbbb and cccc, both held by mB, at seq 7 */
  open_store(&d, "mD", url, 60000);
  WAIT(d.snapshots, 10000);
  NMT_EQ_INT(d.snap_seq, 7);
  NMT_EQ_INT(d.snap_n, 2);
  NMT_CHECK(snap_has(&d, "bbbb mB rec-b2"));
  NMT_CHECK(snap_has(&d, "cccc mB rec-c"));

  /* bounds */
  char big[MGR_STORE_RECORD_MAX + 1];
  memset(big, 'x', sizeof big);
  NMT_EQ_INT(mgr_store_put(a.s, "gggg", big, sizeof big), -EINVAL);
  NMT_EQ_INT(mgr_store_put(a.s, "", "x", 1), -EINVAL);

  const mgr_store_stats *st = mgr_store_get_stats(a.s);
  NMT_EQ_INT(st->puts, 2);
  NMT_EQ_INT(st->leaves, 1);
  NMT_EQ_INT(st->renews, 2);
  NMT_EQ_INT(st->reaps, 1);
  NMT_EQ_INT(st->complaints, 1);
  NMT_EQ_INT(st->snapshots, 1);
  NMT_EQ_INT(st->changes_read, a.nch);
  NMT_EQ_INT(st->reconnects, 0);
  NMT_EQ_INT(a.downs, 0);
  close_store(&a);
  close_store(&b);
  close_store(&c);
  close_store(&d);
}

static size_t fact_count(const rec *r, const char *fact) {
  size_t n = 0;
  for (size_t i = 0; i < r->nfacts; i++) n += strcmp(r->facts[i], fact) == 0;
  return n;
}

/* Admission facts: each new one published once (from its manager), the same one again not
 * at all, a revocation wins over the record it revokes and over any later one; a newcomer
 * reads every fact the store holds at its snapshot, revocations first. */
static void run_admission(const char *url) {
  rec a, b, c;
  char fp[65], hash[65];
  memset(fp, 'a', 64), fp[64] = 0;
  memset(hash, 'b', 64), hash[64] = 0;
  open_store(&a, "mA", url, 60000);
  open_store(&b, "mB", url, 60000);
  WAIT(mgr_store_is_up(a.s) && mgr_store_is_up(b.s), 5000);
  NMT_CHECK(mgr_store_is_up(a.s) && mgr_store_is_up(b.s));
  NMT_EQ_INT(mgr_store_admission(a.s, 'i', hash, "0 servant 1"), 0);
  NMT_EQ_INT(mgr_store_admission(a.s, 'i', hash, "0 servant 1"), 0); /* the same: silent */
  NMT_EQ_INT(mgr_store_admission(a.s, 'k', fp, "alice servant -"), 0);
  WAIT(b.nfacts >= 2, 5000);
  NMT_EQ_INT(b.nfacts, 2);
  NMT_EQ_INT(fact_count(&b, "i bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 0 servant 1 mA"), 1);
  NMT_EQ_INT(fact_count(&b, "k aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa alice servant - mA"), 1);
  /* Revoked on b: the key's record goes; a's later admission of it is refused. */
  NMT_EQ_INT(mgr_store_admission(b.s, 'r', fp, ""), 0);
  NMT_EQ_INT(mgr_store_admission(b.s, 'v', hash, ""), 0);
  WAIT(a.nfacts >= 4, 5000); /* its own two, echoed, and b's two */
  NMT_EQ_INT(mgr_store_admission(a.s, 'k', fp, "alice relay -"), 0);
  NMT_EQ_INT(mgr_store_admission(a.s, 'i', hash, "0 servant 1"), 0);
  /* Bad arguments never reach the store. */
  NMT_EQ_INT(mgr_store_admission(a.s, 'x', fp, ""), -EINVAL);
  NMT_EQ_INT(mgr_store_admission(a.s, 'k', "a b", ""), -EINVAL);
  char big[200];
  memset(big, 'x', sizeof big - 1), big[sizeof big - 1] = 0;
  NMT_EQ_INT(mgr_store_admission(a.s, 'k', fp, big), -EINVAL);
  WAIT(mgr_store_get_stats(a.s)->admissions >= 5, 5000);
  NMT_EQ_INT(mgr_store_get_stats(a.s)->admissions, 5);
  NMT_EQ_INT(mgr_store_get_stats(a.s)->admissions_new, 2); /* the first 'i' and 'k' only */
  NMT_EQ_INT(mgr_store_get_stats(b.s)->admissions_new, 2);
  NMT_EQ_INT(fact_count(&a, "r aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa  mB"), 1);
  /* A newcomer: what the store holds now, from "": both revocations, no invite, no key. */
  open_store(&c, "mC", url, 60000);
  WAIT(mgr_store_get_stats(c.s)->adm_snapshots >= 1, 5000);
  NMT_EQ_INT(c.nfacts, 2);
  NMT_EQ_INT(fact_count(&c, "v bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb  "), 1);
  NMT_EQ_INT(fact_count(&c, "r aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa  "), 1);
  NMT_EQ_INT(mgr_store_get_stats(c.s)->errors, 0);
  close_store(&a);
  close_store(&b);
  close_store(&c);
}

static int snap_mesh_has(const rec *r, const char *entry) {
  for (size_t i = 0; i < r->snap_n && i < MAXREC; i++)
    if (strcmp(r->snap_mesh[i], entry) == 0) return 1;
  return 0;
}

/* The shared mesh's lease and sets: one leader at a time, a fenced write from anyone else,
 * the sets on the change log (op 'n', no new version) and in the snapshot, and the lease
 * passing on when its holder goes. */
static void run_mesh(const char *url) {
  rec a, b, c;
  open_store(&a, "mA", url, 1500);
  open_store(&b, "mB", url, 1500);
  WAIT(mgr_store_is_up(a.s) && mgr_store_is_up(b.s), 5000);
  NMT_EQ_INT(mgr_store_mesh(a.s, "0000000000000001 -\n", 19, 0), -EPERM); /* not leading */
  NMT_EQ_INT(mgr_store_lead(a.s), 0);
  WAIT(a.leading, 5000);
  NMT_CHECK(a.leading);
  NMT_EQ_STR(mgr_store_leader(a.s), "mA");
  NMT_EQ_INT(mgr_store_lead(b.s), 0);
  WAIT(b.leads >= 1, 5000);
  NMT_CHECK(!b.leading);
  NMT_EQ_STR(b.leader, "mA");
  NMT_EQ_INT(mgr_store_put(a.s, "0000000000000001", "r1", 2), 0);
  NMT_EQ_INT(mgr_store_put(a.s, "0000000000000002", "r2", 2), 0);
  const char sets[] = "0000000000000001 0000000000000002\n0000000000000002 0000000000000001\n";
  NMT_EQ_INT(mgr_store_mesh(a.s, sets, sizeof sets - 1, 1), 0);
  NMT_EQ_INT(mgr_store_mesh(a.s, "no newline", 10, 0), -EINVAL);
  WAIT(find(&b, "mA", 'n') != NULL, 5000);
  const change *n = find(&b, "mA", 'n');
  NMT_CHECK(n != NULL);
  if (n) {
    NMT_EQ_STR(n->holder, "mA");
    NMT_EQ_STR(n->data, sets);
    NMT_EQ_INT(n->seq, 2); /* the sets make no version */
  }
  /* A newcomer reads the sets with the registrations. */
  open_store(&c, "mC", url, 1500);
  WAIT(c.snapshots >= 1, 5000);
  NMT_CHECK(snap_mesh_has(&c, "0000000000000001 0000000000000002"));
  NMT_CHECK(snap_mesh_has(&c, "0000000000000002 0000000000000001"));
  /* A gone node's set goes from the hash. */
  NMT_EQ_INT(mgr_store_mesh(a.s, "0000000000000002 -\n", 19, 0), 0);
  WAIT(a.nch >= 4, 5000);
  /* The leader goes: after its lease ran out another takes it. */
  close_store(&a);
  uv_update_time(loop);
  uint64_t t0 = uv_now(loop);
  while (!b.leading && uv_now(loop) - t0 < 6000) {
    mgr_store_lead(b.s);
    WAIT(b.leading, 300);
  }
  NMT_CHECK(b.leading);
  printf("# the lease passed after %llu ms (ttl 1500)\n", (unsigned long long)(uv_now(loop) - t0));
  close_store(&c);
  open_store(&c, "mC", url, 1500);
  WAIT(c.snapshots >= 1, 5000);
  NMT_CHECK(snap_mesh_has(&c, "0000000000000001 0000000000000002"));
  NMT_CHECK(snap_mesh_has(&c, "0000000000000002 "));
  NMT_EQ_INT(mgr_store_get_stats(b.s)->errors, 0);
  close_store(&b);
  close_store(&c);
}

/* A blocking connection of the test's own, to damage the stream. */
static redisContext *poke_connect(const char *url) {
  char ip[64];
  int port = 0;
  if (sscanf(url, "redis://%63[^:]:%d", ip, &port) != 2) return NULL;
  return redisConnect(ip, port);
}

static int poke(redisContext *rc, const char *cmd) {
  redisReply *r = redisCommand(rc, cmd);
  int ok = r && r->type != REDIS_REPLY_ERROR;
  if (r) freeReplyObject(r);
  return ok;
}

static void run_gap(const char *url) {
  rec a;
  redisContext *rc = poke_connect(url);
  NMT_CHECK(rc && !rc->err);
  if (!rc || rc->err) return;
  open_store(&a, "mA", url, 60000);
  WAIT(a.snapshots, 10000);
  NMT_EQ_INT(mgr_store_put(a.s, "aaaa", "rec-a", 5), 0);
  WAIT(a.nch >= 1, 10000);
  NMT_EQ_INT(a.nch, 1);
  /* the change of seq 2 is lost to us: trimmed away before the reader saw it */
  NMT_CHECK(poke(rc, "INCR nm:{test}:seq"));
  NMT_CHECK(poke(rc, "XTRIM nm:{test}:log MAXLEN 0"));
  NMT_EQ_INT(mgr_store_put(a.s, "bbbb", "rec-b", 5), 0);
  WAIT(a.snapshots >= 2, 10000);
  NMT_EQ_INT(a.snapshots, 2);
  NMT_EQ_INT(a.nch, 1); /* seq 3 came through the snapshot, not as a change */
  NMT_EQ_INT(a.snap_seq, 3);
  NMT_CHECK(snap_has(&a, "aaaa mA rec-a"));
  NMT_CHECK(snap_has(&a, "bbbb mA rec-b"));
  /* and the stream goes on from there */
  NMT_EQ_INT(mgr_store_put(a.s, "cccc", "rec-c", 5), 0);
  WAIT(a.nch >= 2, 10000);
  NMT_EQ_INT(last(&a)->seq, 4);
  NMT_EQ_STR(last(&a)->id, "cccc");
  NMT_EQ_INT(a.downs, 0);
  redisFree(rc);
  close_store(&a);
}

/* The bounds: MGR_STORE_INFLIGHT_MAX commands in flight, then -ENOBUFS (the loop is not run
 * between the puts, so no reply can make room); every one of them comes back through the
 * stream, in order. A renew of more than a batch goes as several scripts. */
static void run_bounds(const char *url) {
  rec a;
  open_store(&a, "mA", url, 60000);
  WAIT(a.snapshots, 10000);
  int rc = 0;
  size_t sent = 0;
  while (sent < MGR_STORE_INFLIGHT_MAX + 10 && (rc = mgr_store_put(a.s, "hhhh", "h", 1)) == 0) sent++;
  NMT_EQ_INT(sent, MGR_STORE_INFLIGHT_MAX);
  NMT_EQ_INT(rc, -ENOBUFS);
  const mgr_store_stats *st = mgr_store_get_stats(a.s);
  /* Two connections: the reader may see the last change before the command connection
   * has read the last put's reply. */
  WAIT(st->changes_read >= MGR_STORE_INFLIGHT_MAX && st->puts >= MGR_STORE_INFLIGHT_MAX, 60000);
  NMT_EQ_INT(st->puts, MGR_STORE_INFLIGHT_MAX);
  NMT_EQ_INT(st->changes_read, MGR_STORE_INFLIGHT_MAX);
  NMT_EQ_INT(st->snapshots, 1); /* no gap */
  NMT_EQ_INT(st->errors, 0);
  NMT_EQ_INT(a.ch[MAXREC - 1].seq, MAXREC);
  /* 5000 ids not registered: two scripts, two answers */
  enum { N = 5000 };
  static char idbuf[N][12];
  static const char *ids[N];
  for (int i = 0; i < N; i++) {
    snprintf(idbuf[i], sizeof idbuf[i], "id%05d", i);
    ids[i] = idbuf[i];
  }
  NMT_EQ_INT(mgr_store_renew(a.s, ids, N), 0);
  WAIT(a.renewed >= 2, 20000);
  NMT_EQ_INT(a.renewed, 2);
  NMT_EQ_INT(st->renews, 2);
  NMT_EQ_INT(a.downs, 0);
  close_store(&a);
}

/* What an operator (or a failover) does to the server under the store: SCRIPT FLUSH (the
 * scripts go again as EVAL), the server demoted to a replica (READONLY, then ROLE says
 * slave: down once until it is a primary again). */
static void run_admin(const char *url) {
  rec a;
  redisContext *rc = poke_connect(url);
  NMT_CHECK(rc && !rc->err);
  if (!rc || rc->err) return;
  open_store(&a, "mA", url, 60000);
  WAIT(a.snapshots, 10000);
  NMT_CHECK(poke(rc, "SCRIPT FLUSH"));
  NMT_EQ_INT(mgr_store_put(a.s, "aaaa", "rec-a", 5), 0);
  WAIT(a.nch >= 1, 10000);
  NMT_EQ_INT(a.nch, 1);
  NMT_EQ_INT(last(&a)->seq, 1);
  NMT_EQ_INT(mgr_store_leave(a.s, "aaaa", "quit"), 0);
  WAIT(a.nch >= 2, 10000);
  NMT_EQ_INT(last(&a)->op, 'l');
  NMT_EQ_INT(a.downs, 0);
  /* demoted: a replica of a primary that does not exist (port 1: nothing listens) */
  NMT_CHECK(poke(rc, "REPLICAOF 127.0.0.1 1"));
  NMT_EQ_INT(mgr_store_put(a.s, "bbbb", "rec-b", 5), 0);
  WAIT(a.downs, 10000);
  NMT_EQ_INT(a.downs, 1);
  NMT_CHECK(!mgr_store_is_up(a.s));
  WAIT(0, 1000); /* a few attempts, each refused by ROLE */
  NMT_CHECK(!mgr_store_is_up(a.s));
  NMT_CHECK(poke(rc, "REPLICAOF NO ONE"));
  WAIT(a.snapshots >= 2, 10000);
  NMT_CHECK(mgr_store_is_up(a.s));
  NMT_EQ_INT(a.downs, 1);
  NMT_EQ_INT(mgr_store_put(a.s, "cccc", "rec-c", 5), 0);
  WAIT(a.nch >= 3, 10000);
  NMT_EQ_STR(last(&a)->id, "cccc");
  redisFree(rc);
  close_store(&a);
}

/* The server stops answering (SIGSTOP): the watchdog drops the connection within the reply
 * timeout (plus XREAD's block); SIGCONT: up again. */
static void run_stall(const char *url) {
  rec a;
  open_store(&a, "mA", url, 60000);
  WAIT(a.snapshots, 10000);
  printf("up\n");
  fflush(stdout);
  uv_update_time(loop);
  uint64_t t0 = uv_now(loop);
  WAIT(a.downs, 25000);
  NMT_EQ_INT(a.downs, 1);
  uint64_t took = uv_now(loop) - t0;
  NMT_CHECK(took <= 18000); /* the watchdog's 15 s, two ticks, the XREAD's block */
  printf("down after %llu ms\n", (unsigned long long)took);
  fflush(stdout);
  WAIT(a.snapshots >= 2, 30000);
  NMT_EQ_INT(a.snapshots, 2);
  NMT_EQ_INT(a.downs, 1);
  printf("up again\n");
  fflush(stdout);
  NMT_EQ_INT(mgr_store_put(a.s, "aaaa", "rec-a", 5), 0);
  WAIT(a.nch >= 1, 10000);
  NMT_EQ_INT(a.nch, 1);
  close_store(&a);
}

/* The server dies and comes back (empty: no persistence): on_down once, then a snapshot. */
static void run_restart(const char *url) {
  rec a;
  open_store(&a, "mA", url, 60000);
  WAIT(a.snapshots, 10000);
  NMT_EQ_INT(mgr_store_put(a.s, "aaaa", "rec-a", 5), 0);
  WAIT(a.nch >= 1, 10000);
  printf("up\n");
  fflush(stdout);
  WAIT(a.downs, 25000);
  NMT_EQ_INT(a.downs, 1);
  NMT_CHECK(!mgr_store_is_up(a.s));
  NMT_EQ_STR(mgr_store_primary(a.s), "");
  NMT_EQ_INT(mgr_store_put(a.s, "bbbb", "rec-b", 5), -ENOTCONN);
  printf("down\n");
  fflush(stdout);
  WAIT(a.snapshots >= 2, 30000);
  printf("up again\n");
  fflush(stdout);
  NMT_EQ_INT(a.snapshots, 2);
  NMT_EQ_INT(a.downs, 1); /* once per outage, however many attempts failed */
  NMT_EQ_INT(a.snap_seq, 0);
  NMT_EQ_INT(mgr_store_get_stats(a.s)->reconnects, 1);
  NMT_EQ_INT(mgr_store_get_stats(a.s)->failovers, 0);
  NMT_EQ_INT(mgr_store_put(a.s, "bbbb", "rec-b", 5), 0);
  WAIT(a.nch >= 2, 10000);
  NMT_EQ_INT(last(&a)->seq, 1);
  NMT_EQ_STR(last(&a)->id, "bbbb");
  close_store(&a);
}

static void run_failover(const char *url) {
  rec a;
  open_store(&a, "mA", url, 60000);
  WAIT(a.snapshots, 15000);
  NMT_CHECK(mgr_store_is_up(a.s));
  char first[64];
  snprintf(first, sizeof first, "%s", mgr_store_primary(a.s));
  NMT_EQ_INT(mgr_store_put(a.s, "aaaa", "rec-a", 5), 0);
  WAIT(a.nch >= 1, 10000);
  /* the replica has it before the primary dies */
  char ip[64];
  int port = 0;
  NMT_CHECK(sscanf(first, "%63[^:]:%d", ip, &port) == 2);
  redisContext *rc = redisConnect(ip, port);
  redisReply *r = rc && !rc->err ? redisCommand(rc, "WAIT 1 5000") : NULL;
  NMT_CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
  if (r) freeReplyObject(r);
  if (rc) redisFree(rc);
  printf("up %s\n", first);
  fflush(stdout);
  WAIT(a.downs, 25000);
  NMT_EQ_INT(a.downs, 1);
  printf("down\n");
  fflush(stdout);
  WAIT(a.snapshots >= 2, 60000);
  NMT_EQ_INT(a.snapshots, 2);
  printf("up again %s\n", mgr_store_primary(a.s));
  fflush(stdout);
  NMT_CHECK(strcmp(first, mgr_store_primary(a.s)) != 0);
  NMT_EQ_INT(mgr_store_get_stats(a.s)->failovers, 1);
  NMT_EQ_INT(a.snap_seq, 1);
  NMT_CHECK(snap_has(&a, "aaaa mA rec-a"));
  NMT_EQ_INT(mgr_store_put(a.s, "bbbb", "rec-b", 5), 0);
  WAIT(a.nch >= 2, 10000);
  NMT_EQ_INT(last(&a)->seq, 2);
  NMT_EQ_INT(a.downs, 1);
  close_store(&a);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: store_check url | basic|gap|bounds|admin|stall|restart|failover URL\n");
    return 2;
  }
  nm_log_init("store_check", NM_LOG_INFO);
  loop = uv_default_loop();
  const char *url = argc > 2 ? argv[2] : "";
  if (strcmp(argv[1], "url") == 0) NMT_RUN(run_url);
  else if (strcmp(argv[1], "basic") == 0) { nmt__current = "basic"; run_basic(url); }
  else if (strcmp(argv[1], "gap") == 0) { nmt__current = "gap"; run_gap(url); }
  else if (strcmp(argv[1], "bounds") == 0) { nmt__current = "bounds"; run_bounds(url); }
  else if (strcmp(argv[1], "admin") == 0) { nmt__current = "admin"; run_admin(url); }
  else if (strcmp(argv[1], "stall") == 0) { nmt__current = "stall"; run_stall(url); }
  else if (strcmp(argv[1], "restart") == 0) { nmt__current = "restart"; run_restart(url); }
  else if (strcmp(argv[1], "failover") == 0) { nmt__current = "failover"; run_failover(url); }
  else if (strcmp(argv[1], "admission") == 0) { nmt__current = "admission"; run_admission(url); }
  else if (strcmp(argv[1], "mesh") == 0) { nmt__current = "mesh"; run_mesh(url); }
  else return 2;
  /* every handle closed, every byte freed (ASan's leak check sees the rest) */
  uv_run(loop, UV_RUN_DEFAULT);
  NMT_EQ_INT(uv_loop_close(loop), 0);
  return nmt_done();
}
