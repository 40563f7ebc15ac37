/* The complaint verdict and the remembered verdicts: pure functions of their arguments
 * (see verdict.h for the rules). */
#include "verdict.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mgr_complaints_free(mgr_complaints *c) {
  free(c->v);
  c->v = NULL;
  c->n = 0;
}

static mgr_complaint *mgr__complaint_find(const mgr_complaints *c, const char *reporter) {
  for (size_t i = 0; i < c->n; i++)
    if (strcmp(c->v[i].reporter, reporter) == 0) return &c->v[i];
  return NULL;
}

static unsigned mgr__live(const mgr_complaint *e, const mgr_verdict_rules *r, uint64_t now) {
  uint64_t window = (uint64_t)r->window_s * 1000;
  unsigned live = 0;
  for (unsigned i = 0; i < e->n; i++)
    if (now - e->counted_ms[i] <= window) live++;
  return live;
}

int mgr_complaints_add(mgr_complaints *c, const char *reporter, const mgr_verdict_rules *r,
                       uint64_t now_ms) {
  mgr_complaint *e = mgr__complaint_find(c, reporter);
  if (!e) {
    mgr_complaint *grown = realloc(c->v, (c->n + 1) * sizeof *grown);
    if (!grown) return -ENOMEM;
    c->v = grown;
    e = &grown[c->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->reporter, sizeof e->reporter, "%s", reporter);
  }
  /* One complaint per pair per heartbeat interval counts: a servant retries a failed
   * connection at most every half heartbeat, and 10% slack absorbs timer jitter. */
  uint64_t spacing = (uint64_t)r->heartbeat_s * 900;
  if (e->n > 0) {
    uint64_t last = e->counted_ms[(e->next + MGR_COMPLAINT_KEEP - 1) % MGR_COMPLAINT_KEEP];
    if (now_ms - last < spacing) return 0;
  }
  e->counted_ms[e->next] = now_ms;
  e->next = (e->next + 1) % MGR_COMPLAINT_KEEP;
  if (e->n < MGR_COMPLAINT_KEEP) e->n++;
  return 1;
}

void mgr_complaints_forget(mgr_complaints *c, const char *reporter) {
  mgr_complaint *e = mgr__complaint_find(c, reporter);
  if (e) *e = c->v[--c->n];
}

unsigned mgr_complaints_live(const mgr_complaints *c, const char *reporter,
                             const mgr_verdict_rules *r, uint64_t now_ms) {
  const mgr_complaint *e = mgr__complaint_find(c, reporter);
  return e ? mgr__live(e, r, now_ms) : 0;
}

unsigned mgr_complaints_reporters(const mgr_complaints *c, const mgr_verdict_rules *r,
                                  uint64_t now_ms) {
  unsigned n = 0;
  for (size_t i = 0; i < c->n; i++)
    if (mgr__live(&c->v[i], r, now_ms) >= r->threshold) n++;
  return n;
}

size_t mgr_complaints_reporter_ids(const mgr_complaints *c, const mgr_verdict_rules *r,
                                   uint64_t now_ms, unsigned min_live, const char **ids,
                                   size_t max) {
  size_t n = 0;
  if (min_live == 0) min_live = 1; /* a reporter has at least one live complaint */
  for (size_t i = 0; i < c->n; i++) {
    if (mgr__live(&c->v[i], r, now_ms) < min_live) continue;
    if (n < max) ids[n] = c->v[i].reporter;
    n++;
  }
  return n;
}

unsigned mgr_verdict_quorum(const mgr_verdict_rules *r, unsigned others) {
  return (unsigned)((uint64_t)others * r->quorum_percent / 100 + 1);
}

mgr_verdict mgr_verdict_judge(const mgr_complaints *c, const mgr_verdict_rules *r,
                              unsigned others, uint64_t last_heard_ms, uint64_t now_ms) {
  mgr_verdict v;
  v.reporters = mgr_complaints_reporters(c, r, now_ms);
  v.quorum = mgr_verdict_quorum(r, others);
  v.alive = now_ms - last_heard_ms <= 2ull * r->heartbeat_s * 1000;
  if (!v.alive || v.reporters == 0) v.kind = MGR_VERDICT_NONE;
  else if (v.reporters >= v.quorum) v.kind = MGR_VERDICT_SUSPICIOUS;
  else v.kind = MGR_VERDICT_PAIR;
  return v;
}

static void mgr__verdicts_remove(mgr_verdict_memory *mem, size_t i) {
  mem->v[i] = mem->v[--mem->n];
}

static void mgr__verdicts_expire(mgr_verdict_memory *mem, uint64_t now_ms) {
  for (size_t i = 0; i < mem->n;) {
    if (mem->v[i].until_ms <= now_ms) mgr__verdicts_remove(mem, i);
    else i++;
  }
}

void mgr_verdicts_remember(mgr_verdict_memory *mem, const mgr_remembered_verdict *v,
                           uint64_t now_ms) {
  mgr__verdicts_expire(mem, now_ms);
  size_t slot = mem->n;
  for (size_t i = 0; i < mem->n; i++)
    if (strcmp(mem->v[i].id, v->id) == 0) slot = i;
  if (slot == MGR_VERDICTS_REMEMBERED) {
    /* Full of live entries: the one that would be forgotten first goes now. */
    slot = 0;
    for (size_t i = 1; i < mem->n; i++)
      if (mem->v[i].until_ms < mem->v[slot].until_ms) slot = i;
  } else if (slot == mem->n) {
    mem->n++;
  }
  mem->v[slot] = *v;
}

int mgr_verdicts_take(mgr_verdict_memory *mem, const char *id, uint64_t now_ms,
                      mgr_remembered_verdict *out) {
  mgr__verdicts_expire(mem, now_ms);
  for (size_t i = 0; i < mem->n; i++) {
    if (strcmp(mem->v[i].id, id) != 0) continue;
    *out = mem->v[i];
    mgr__verdicts_remove(mem, i);
    return 1;
  }
  return 0;
}
