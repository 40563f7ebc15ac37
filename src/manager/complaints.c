/* Complaints: counted per (reporter, accused) on the accused's session, judged by the
 * rules in verdict.c. Only registered servants are judged and only registered servants'
 * complaints are kept (mgr_complaints_on_leave drops a leaver's), so one liar can never
 * do it alone. */
#include "complaints.h"
#include "neighbours.h"
#include "nm_log.h"

#include <string.h>

unsigned mgr_complaint_reporters(manager *m, const mgr_session *s) {
  mgr_verdict_rules rules = mgr_rules(m);
  return mgr_complaints_reporters(&s->complaints, &rules, mgr_now_ms(m));
}

/* The other live servants that could reach s if it were reachable: relays do not
 * publish, so they never complain and do not count. */
static unsigned mgr__others(manager *m, const mgr_session *s) {
  unsigned others = 0;
  if (mgr_neighbours_dialers(m, s, &others)) return others; /* a bounded mesh: its neighbours */
  /* With a store, the servants other managers hold complain too (to its holder, us). */
  size_t n = m->index.registered_servants + m->index.remote_servants;
  if (s->state == MGR_SESSION_REGISTERED && s->role == NM_ROLE_SERVANT && n > 0) n--;
  return (unsigned)n;
}

mgr_verdict mgr_complaint_receive(manager *m, mgr_session *reporter, const char *accused_id,
                                  mgr_session **accused_out) {
  mgr_verdict none = {MGR_VERDICT_NONE, 0, 0, 0};
  mgr_session *accused = mgr_find_registered(m, accused_id);
  *accused_out = accused;
  if (!accused) {
    /* It may have left a moment ago: not an error. */
    nm_log_debug("complaint from %s about unknown servant %s ignored", reporter->name, accused_id);
    return none;
  }
  if (accused == reporter || accused->reach == NM_REACH_SUSPICIOUS || accused->reach == NM_REACH_RELAYED)
    return none;
  mgr_verdict_rules rules = mgr_rules(m);
  uint64_t now = mgr_now_ms(m);
  if (mgr_complaints_add(&accused->complaints, reporter->id, &rules, now) <= 0) return none;
  mgr_index_track_accused(&m->index, accused);
  unsigned others = mgr__others(m, accused);
  mgr_verdict v = mgr_verdict_judge(&accused->complaints, &rules, others, accused->last_heard_ms, now);
  nm_log_info("complaint: %s cannot reach %s (%u of %u from it; %u of %u reporters needed)", reporter->name,
              accused->name, mgr_complaints_live(&accused->complaints, reporter->id, &rules, now),
              rules.threshold, v.reporters, v.quorum);
  if (v.kind == MGR_VERDICT_SUSPICIOUS)
    nm_log_info("verdict: %s (%s) is suspicious: %u reporters with %u+ complaints each, quorum %u, "
                "still heartbeating (%llu ms ago)",
                accused->name, accused->id, v.reporters, rules.threshold, v.quorum,
                (unsigned long long)(now - accused->last_heard_ms));
  return v;
}

void mgr_complaints_on_leave(manager *m, mgr_session *s) {
  /* Only sessions with complaints about them can hold one of s's (index.h). */
  for (mgr_session *o = m->index.accused; o; o = o->acc_next) mgr_complaints_forget(&o->complaints, s->id);
  mgr_complaints_free(&s->complaints);
}
