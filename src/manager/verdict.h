/* The complaint verdict, as pure policy: complaints and rules and the time in, a decision
 * out. No sessions, no sockets, no clock of its own (times are milliseconds on any monotonic
 * clock, e.g. uv_now()), so tests/unit/unit_verdict.c checks every rule in milliseconds.
 *
 *   - A complaint counts at most once per (reporter, accused) per heartbeat interval (with
 *     10% slack for jitter), and expires after the window.
 *   - A reporter counts towards a verdict once it has `threshold` live complaints.
 *   - The accused is judged suspicious when more than quorum_percent of the other live
 *     servants are such reporters, and only while it still heartbeats (a silent servant is
 *     dead, not unreachable: the heartbeat sweep removes it). One liar never suffices.
 *   - With at least one such reporter but no quorum, while it still heartbeats, the verdict
 *     is a pair: those reporters cannot reach it, everyone else can (docs/protocol.md, "The
 *     pair path"). It stays reachable; the session code gives it a relay to pull from so the
 *     reporters' lines still reach it. One liar does get that (it costs a relay slot, never
 *     a line: docs/security.md).
 *
 * It also remembers the verdicts of servants whose session ended without a goodbye, for
 * the heartbeat timeout, so a servant that reconnects is relayed again at once instead of
 * being judged anew (mgr_verdict_memory). */
#ifndef NM_MANAGER_VERDICT_H
#define NM_MANAGER_VERDICT_H

#include <stddef.h>
#include <stdint.h>

#include "nm_proto.h"

#define MGR_COMPLAINT_KEEP 8 /* counted complaints remembered per (reporter, accused) */
#define MGR_TOKEN_LEN 32     /* hex characters of a relay token (NM_TOKEN_LEN on the wire) */

typedef struct {
  unsigned heartbeat_s;    /* one complaint per pair per interval counts */
  unsigned threshold;      /* live complaints a reporter needs to count */
  unsigned window_s;       /* complaints older than this expire */
  unsigned quorum_percent; /* more than this share of the other live servants */
} mgr_verdict_rules;

/* The counted complaints of one reporter about one accused. */
typedef struct {
  char reporter[NM_ID_LEN + 1];
  uint64_t counted_ms[MGR_COMPLAINT_KEEP]; /* ring of the counted ones */
  unsigned n;                              /* how many of the ring are used */
  unsigned next;
} mgr_complaint;

/* Every complaint about one servant: one entry per reporter, so at most one per other
 * session (bounded by the manager's session cap). The owner calls mgr_complaints_free. */
typedef struct {
  mgr_complaint *v;
  size_t n;
} mgr_complaints;

void mgr_complaints_free(mgr_complaints *c);

/* Counts one complaint by reporter at now_ms. Returns 1 when counted, 0 when it came
 * within the spacing of the last counted one (ignored), -ENOMEM. */
int mgr_complaints_add(mgr_complaints *c, const char *reporter, const mgr_verdict_rules *r,
                       uint64_t now_ms);
/* The reporter's complaints go (it left the overlay). */
void mgr_complaints_forget(mgr_complaints *c, const char *reporter);
/* Live (not expired) complaints by reporter; 0 when it never complained. */
unsigned mgr_complaints_live(const mgr_complaints *c, const char *reporter,
                             const mgr_verdict_rules *r, uint64_t now_ms);
/* How many reporters have at least threshold live complaints. */
unsigned mgr_complaints_reporters(const mgr_complaints *c, const mgr_verdict_rules *r,
                                  uint64_t now_ms);
/* The ids of the reporters with at least min_live live complaints (1: any live complaint,
 * threshold: those that count), in no particular order: up to max of them into
 * ids (pointers into c, valid until c changes). Returns how many there are in all, which
 * may be more than max. */
size_t mgr_complaints_reporter_ids(const mgr_complaints *c, const mgr_verdict_rules *r,
                                   uint64_t now_ms, unsigned min_live, const char **ids,
                                   size_t max);

/* Reporters a verdict needs when `others` other live servants could have complained:
 * more than quorum_percent of them, and never fewer than one. */
unsigned mgr_verdict_quorum(const mgr_verdict_rules *r, unsigned others);

typedef enum {
  MGR_VERDICT_NONE = 0,   /* not (yet) enough to judge */
  MGR_VERDICT_SUSPICIOUS, /* peers cannot reach it: it needs a relay */
  MGR_VERDICT_PAIR,       /* some reporters cannot reach it, not a quorum: it stays
                             reachable and pulls their lines from a relay (the pair path) */
} mgr_verdict_kind;

typedef struct {
  mgr_verdict_kind kind;
  unsigned reporters; /* with threshold or more live complaints */
  unsigned quorum;    /* reporters needed */
  int alive;          /* the accused heartbeated within two intervals */
} mgr_verdict;

/* The verdict about a servant last heard from at last_heard_ms, given the complaints about
 * it and the number of other live servants that could have complained. */
mgr_verdict mgr_verdict_judge(const mgr_complaints *c, const mgr_verdict_rules *r,
                              unsigned others, uint64_t last_heard_ms, uint64_t now_ms);

/* ---- verdicts remembered across a reconnection ---------------------------------------- */

#define MGR_VERDICTS_REMEMBERED 256

typedef struct {
  char id[NM_ID_LEN + 1];         /* the servant judged */
  char relay_id[NM_ID_LEN + 1];   /* the relay it pulled from, "" if it was waiting */
  char token[MGR_TOKEN_LEN + 1];  /* its token there */
  uint64_t until_ms;              /* forgotten after this */
} mgr_remembered_verdict;

/* A bounded table: when full, the entry that expires first makes room. */
typedef struct {
  mgr_remembered_verdict v[MGR_VERDICTS_REMEMBERED];
  size_t n;
} mgr_verdict_memory;

/* Remembers v (replacing an entry for the same id). */
void mgr_verdicts_remember(mgr_verdict_memory *mem, const mgr_remembered_verdict *v,
                           uint64_t now_ms);
/* Finds and removes the unexpired entry for id into *out. Returns 1 when found, else 0. */
int mgr_verdicts_take(mgr_verdict_memory *mem, const char *id, uint64_t now_ms,
                      mgr_remembered_verdict *out);

#endif
