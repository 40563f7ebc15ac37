/* verdict: the complaint rules (spacing, window, threshold, quorum, "still heartbeating",
 * the pair path when there is no quorum) and the verdicts remembered across a reconnection, as pure functions of state and time. */
#include "verdict.h"
#include "nmt.h"

#define S 1000ull

static const char *A = "aaaaaaaaaaaaaaaa", *B = "bbbbbbbbbbbbbbbb", *C = "cccccccccccccccc",
                  *D = "dddddddddddddddd";

/* heartbeat 1 s, threshold 3, window 60 s, quorum more than 50% */
static const mgr_verdict_rules R = {1, 3, 60, 50};

/* reporter complains n times, one heartbeat apart, the last one at end_ms */
static void complain(mgr_complaints *c, const char *reporter, unsigned n, uint64_t end_ms) {
  for (unsigned i = 0; i < n; i++) mgr_complaints_add(c, reporter, &R, end_ms - (n - 1 - i) * S);
}

static void test_spacing(void) {
  mgr_complaints c = {0};
  NMT_EQ_INT(mgr_complaints_add(&c, A, &R, 10 * S), 1);
  /* one per heartbeat interval counts, with 10% slack for jitter */
  NMT_EQ_INT(mgr_complaints_add(&c, A, &R, 10 * S + 1), 0);
  NMT_EQ_INT(mgr_complaints_add(&c, A, &R, 10 * S + 899), 0);
  NMT_EQ_INT(mgr_complaints_add(&c, A, &R, 10 * S + 900), 1);
  NMT_EQ_INT(mgr_complaints_live(&c, A, &R, 11 * S), 2);
  /* the spacing is per pair: another reporter is not slowed down by A */
  NMT_EQ_INT(mgr_complaints_add(&c, B, &R, 10 * S + 901), 1);
  NMT_EQ_INT(mgr_complaints_live(&c, B, &R, 11 * S), 1);
  NMT_EQ_INT(mgr_complaints_live(&c, C, &R, 11 * S), 0);
  /* a flood of complaints, 5 a second for 10 s, counts about once a second */
  mgr_complaints f = {0};
  unsigned counted = 0;
  for (uint64_t t = 0; t < 10 * S; t += 200) counted += (unsigned)mgr_complaints_add(&f, A, &R, 100 * S + t);
  NMT_CHECK(counted >= 9 && counted <= 10);
  mgr_complaints_free(&c);
  mgr_complaints_free(&f);
}

static void test_window(void) {
  mgr_complaints c = {0};
  complain(&c, A, 3, 2 * S); /* at 0, 1 and 2 s */
  NMT_EQ_INT(mgr_complaints_live(&c, A, &R, 60 * S), 3);
  NMT_EQ_INT(mgr_complaints_live(&c, A, &R, 60 * S + 1), 2);
  NMT_EQ_INT(mgr_complaints_live(&c, A, &R, 62 * S + 1), 0);
  NMT_EQ_INT(mgr_complaints_reporters(&c, &R, 60 * S), 1);
  NMT_EQ_INT(mgr_complaints_reporters(&c, &R, 60 * S + 1), 0);
  /* a verdict that would have come in time does not come once they expired */
  complain(&c, B, 3, 2 * S);
  NMT_EQ_INT(mgr_verdict_judge(&c, &R, 3, 60 * S, 60 * S).kind, MGR_VERDICT_SUSPICIOUS);
  NMT_EQ_INT(mgr_verdict_judge(&c, &R, 3, 61 * S, 61 * S).kind, MGR_VERDICT_NONE);
  mgr_complaints_free(&c);
}

static void test_threshold(void) {
  mgr_complaints c = {0};
  complain(&c, A, 2, 10 * S);
  complain(&c, B, 2, 10 * S);
  NMT_EQ_INT(mgr_complaints_reporters(&c, &R, 10 * S), 0);
  NMT_EQ_INT(mgr_verdict_judge(&c, &R, 2, 10 * S, 10 * S).kind, MGR_VERDICT_NONE);
  mgr_complaints_add(&c, A, &R, 11 * S);
  NMT_EQ_INT(mgr_complaints_reporters(&c, &R, 11 * S), 1);
  mgr_complaints_add(&c, B, &R, 11 * S);
  NMT_EQ_INT(mgr_complaints_reporters(&c, &R, 11 * S), 2);
  NMT_EQ_INT(mgr_verdict_judge(&c, &R, 2, 11 * S, 11 * S).kind, MGR_VERDICT_SUSPICIOUS);
  /* the ring keeps the last MGR_COMPLAINT_KEEP counted ones */
  complain(&c, C, 20, 40 * S);
  NMT_EQ_INT(mgr_complaints_live(&c, C, &R, 40 * S), MGR_COMPLAINT_KEEP);
  mgr_complaints_free(&c);
}

static void test_lone_reporter(void) {
  mgr_complaints c = {0};
  complain(&c, A, MGR_COMPLAINT_KEEP, 20 * S);
  /* however much it complains, one reporter out of 2, 3 or 9 others is not a quorum: the
   * accused is never suspicious, but gets a pair path (a relay for that reporter's lines) */
  for (unsigned others = 2; others < 10; others++) {
    mgr_verdict v = mgr_verdict_judge(&c, &R, others, 20 * S, 20 * S);
    NMT_EQ_INT(v.kind, MGR_VERDICT_PAIR);
    NMT_EQ_INT(v.reporters, 1);
  }
  mgr_complaints_free(&c);
}

static void test_quorum(void) {
  /* more than quorum_percent of the others, never fewer than one */
  NMT_EQ_INT(mgr_verdict_quorum(&R, 0), 1);
  NMT_EQ_INT(mgr_verdict_quorum(&R, 1), 1);
  NMT_EQ_INT(mgr_verdict_quorum(&R, 2), 2); /* half is not more than half */
  NMT_EQ_INT(mgr_verdict_quorum(&R, 3), 2);
  NMT_EQ_INT(mgr_verdict_quorum(&R, 4), 3);
  NMT_EQ_INT(mgr_verdict_quorum(&R, 5), 3);
  mgr_verdict_rules all = {1, 3, 60, 100}, one = {1, 3, 60, 1};
  NMT_EQ_INT(mgr_verdict_quorum(&all, 4), 5); /* 100%: never, the accused cannot complain */
  NMT_EQ_INT(mgr_verdict_quorum(&one, 100), 2);
  NMT_EQ_INT(mgr_verdict_quorum(&one, 99), 1);
  /* no overflow with absurd counts */
  NMT_CHECK(mgr_verdict_quorum(&all, 4000000000u) > 0);

  /* 4 others: 2 reporters are not enough, 3 are */
  mgr_complaints c = {0};
  complain(&c, A, 3, 10 * S);
  complain(&c, B, 3, 10 * S);
  mgr_verdict v = mgr_verdict_judge(&c, &R, 4, 10 * S, 10 * S);
  NMT_EQ_INT(v.kind, MGR_VERDICT_PAIR); /* reporters, but no quorum */
  NMT_EQ_INT(v.reporters, 2);
  NMT_EQ_INT(v.quorum, 3);
  complain(&c, C, 3, 10 * S);
  v = mgr_verdict_judge(&c, &R, 4, 10 * S, 10 * S);
  NMT_EQ_INT(v.kind, MGR_VERDICT_SUSPICIOUS);
  NMT_EQ_INT(v.reporters, 3);
  /* one of them leaves the overlay: its complaints go, and the verdict with them */
  mgr_complaints_forget(&c, B);
  NMT_EQ_INT(mgr_complaints_live(&c, B, &R, 10 * S), 0);
  NMT_EQ_INT(mgr_verdict_judge(&c, &R, 3, 10 * S, 10 * S).kind, MGR_VERDICT_SUSPICIOUS); /* 2 of 3 */
  NMT_EQ_INT(mgr_verdict_judge(&c, &R, 4, 10 * S, 10 * S).kind, MGR_VERDICT_PAIR);        /* 2 of 4 */
  mgr_complaints_forget(&c, D); /* never complained: nothing happens */
  NMT_EQ_INT(c.n, 2);
  mgr_complaints_free(&c);
  NMT_EQ_INT(c.n, 0);
}

static void test_dead_accused(void) {
  mgr_complaints c = {0};
  complain(&c, A, 3, 30 * S);
  complain(&c, B, 3, 30 * S);
  /* heard from two heartbeats ago: still alive, judged */
  mgr_verdict v = mgr_verdict_judge(&c, &R, 2, 28 * S, 30 * S);
  NMT_EQ_INT(v.kind, MGR_VERDICT_SUSPICIOUS);
  NMT_EQ_INT(v.alive, 1);
  /* silent for longer: dead, not unreachable; the sweep removes it, no verdict */
  v = mgr_verdict_judge(&c, &R, 2, 28 * S - 1, 30 * S);
  NMT_EQ_INT(v.kind, MGR_VERDICT_NONE);
  NMT_EQ_INT(v.alive, 0);
  NMT_EQ_INT(v.reporters, 2);
  mgr_complaints_free(&c);
}

static void test_pair(void) {
  mgr_complaints c = {0};
  /* below the threshold: nothing yet, not even a pair */
  complain(&c, A, 2, 10 * S);
  NMT_EQ_INT(mgr_verdict_judge(&c, &R, 3, 10 * S, 10 * S).kind, MGR_VERDICT_NONE);
  /* at the threshold, one reporter of 3 others, accused heartbeating: the pair path */
  mgr_complaints_add(&c, A, &R, 11 * S);
  mgr_verdict v = mgr_verdict_judge(&c, &R, 3, 11 * S, 11 * S);
  NMT_EQ_INT(v.kind, MGR_VERDICT_PAIR);
  NMT_EQ_INT(v.reporters, 1);
  NMT_EQ_INT(v.quorum, 2);
  NMT_EQ_INT(v.alive, 1);
  /* the accused silent: dead, not unreachable, no pair either */
  NMT_EQ_INT(mgr_verdict_judge(&c, &R, 3, 8 * S, 11 * S).kind, MGR_VERDICT_NONE);
  /* a second reporter makes the quorum: suspicious, as before the pair path */
  complain(&c, B, 3, 11 * S);
  NMT_EQ_INT(mgr_verdict_judge(&c, &R, 3, 11 * S, 11 * S).kind, MGR_VERDICT_SUSPICIOUS);
  /* the pair's reporters by id: those at the threshold, or any live complaint */
  complain(&c, C, 1, 11 * S);
  const char *ids[4];
  NMT_EQ_INT(mgr_complaints_reporter_ids(&c, &R, 11 * S, R.threshold, ids, 4), 2);
  NMT_CHECK((!strcmp(ids[0], A) && !strcmp(ids[1], B)) || (!strcmp(ids[0], B) && !strcmp(ids[1], A)));
  NMT_EQ_INT(mgr_complaints_reporter_ids(&c, &R, 11 * S, 1, ids, 4), 3);
  /* more than max: the count is the whole, only max are written */
  ids[1] = NULL;
  NMT_EQ_INT(mgr_complaints_reporter_ids(&c, &R, 11 * S, 1, ids, 1), 3);
  NMT_CHECK(ids[1] == NULL);
  /* expired: nobody */
  NMT_EQ_INT(mgr_complaints_reporter_ids(&c, &R, 200 * S, 1, ids, 4), 0);
  NMT_EQ_INT(mgr_verdict_judge(&c, &R, 3, 200 * S, 200 * S).kind, MGR_VERDICT_NONE);
  mgr_complaints_free(&c);
}

static mgr_remembered_verdict remembered(const char *id, const char *relay, uint64_t until) {
  mgr_remembered_verdict v;
  memset(&v, 0, sizeof v);
  snprintf(v.id, sizeof v.id, "%s", id);
  snprintf(v.relay_id, sizeof v.relay_id, "%s", relay);
  memset(v.token, 'f', MGR_TOKEN_LEN);
  v.until_ms = until;
  return v;
}

static void test_memory(void) {
  static mgr_verdict_memory mem; /* 20 kB: not on the stack */
  mgr_remembered_verdict got;
  mgr_remembered_verdict a = remembered(A, B, 13 * S);
  mgr_verdicts_remember(&mem, &a, 10 * S);
  NMT_EQ_INT(mgr_verdicts_take(&mem, C, 11 * S, &got), 0);
  NMT_EQ_INT(mgr_verdicts_take(&mem, A, 11 * S, &got), 1);
  NMT_EQ_STR(got.relay_id, B);
  NMT_EQ_INT(strlen(got.token), MGR_TOKEN_LEN);
  /* taken means gone */
  NMT_EQ_INT(mgr_verdicts_take(&mem, A, 11 * S, &got), 0);
  /* forgotten once expired */
  mgr_verdicts_remember(&mem, &a, 10 * S);
  NMT_EQ_INT(mgr_verdicts_take(&mem, A, 13 * S, &got), 0);
  NMT_EQ_INT(mem.n, 0);
  /* the same id again replaces its entry */
  mgr_remembered_verdict a2 = remembered(A, C, 20 * S);
  mgr_verdicts_remember(&mem, &a, 10 * S);
  mgr_verdicts_remember(&mem, &a2, 10 * S);
  NMT_EQ_INT(mem.n, 1);
  NMT_EQ_INT(mgr_verdicts_take(&mem, A, 14 * S, &got), 1);
  NMT_EQ_STR(got.relay_id, C);
  /* bounded: when full, the one that expires first makes room */
  char id[NM_ID_LEN + 1];
  for (unsigned i = 0; i < MGR_VERDICTS_REMEMBERED; i++) {
    snprintf(id, sizeof id, "%016x", i);
    mgr_remembered_verdict v = remembered(id, "", 100 * S + i);
    mgr_verdicts_remember(&mem, &v, 10 * S);
  }
  NMT_EQ_INT(mem.n, MGR_VERDICTS_REMEMBERED);
  mgr_remembered_verdict late = remembered(D, "", 500 * S);
  mgr_verdicts_remember(&mem, &late, 10 * S);
  NMT_EQ_INT(mem.n, MGR_VERDICTS_REMEMBERED);
  snprintf(id, sizeof id, "%016x", 0u);
  NMT_EQ_INT(mgr_verdicts_take(&mem, id, 10 * S, &got), 0); /* the soonest to expire went */
  snprintf(id, sizeof id, "%016x", 1u);
  NMT_EQ_INT(mgr_verdicts_take(&mem, id, 10 * S, &got), 1);
  NMT_EQ_INT(mgr_verdicts_take(&mem, D, 10 * S, &got), 1);
  NMT_EQ_STR(got.relay_id, "");
  /* everything expires */
  NMT_EQ_INT(mgr_verdicts_take(&mem, D, 1000 * S, &got), 0);
  NMT_EQ_INT(mem.n, 0);
}

int main(void) {
  NMT_RUN(test_spacing);
  NMT_RUN(test_window);
  NMT_RUN(test_threshold);
  NMT_RUN(test_lone_reporter);
  NMT_RUN(test_quorum);
  NMT_RUN(test_dead_accused);
  NMT_RUN(test_pair);
  NMT_RUN(test_memory);
  return nmt_done();
}
