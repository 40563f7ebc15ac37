/* Complaints: "I could not connect to that servant". The manager counts them per
 * (reporter, accused) pair, at most one per heartbeat interval, forgets them after the
 * window, and judges the accused suspicious only when it still heartbeats and a quorum of
 * the other live servants have each complained T times: one liar can never do it alone. */
#include "complaints.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mgr_complaint *mgr__complaint_entry(mgr_session *accused, const char *reporter) {
  for (size_t i = 0; i < accused->ncomplaints; i++)
    if (strcmp(accused->complaints[i].reporter, reporter) == 0) return &accused->complaints[i];
  /* At most one entry per other servant, so this is bounded by the session cap. */
  mgr_complaint *grown = realloc(accused->complaints, (accused->ncomplaints + 1) * sizeof *grown);
  if (!grown) return NULL;
  accused->complaints = grown;
  mgr_complaint *c = &grown[accused->ncomplaints++];
  memset(c, 0, sizeof *c);
  strcpy(c->reporter, reporter);
  return c;
}

static unsigned mgr__live_count(manager *m, const mgr_complaint *c) {
  uint64_t now = mgr_now_ms(m), window = (uint64_t)m->cfg.complaint_window_s * 1000;
  unsigned live = 0;
  for (unsigned i = 0; i < c->n; i++)
    if (now - c->counted_ms[i] <= window) live++;
  return live;
}

unsigned mgr_complaint_reporters(manager *m, mgr_session *s) {
  unsigned n = 0;
  for (size_t i = 0; i < s->ncomplaints; i++) {
    /* Only complaints from servants still registered count. */
    if (!mgr_find_registered(m, s->complaints[i].reporter)) continue;
    if (mgr__live_count(m, &s->complaints[i]) >= m->cfg.complaint_threshold) n++;
  }
  return n;
}

unsigned mgr_complaint_quorum(manager *m, mgr_session *s) {
  /* The other live servants that could reach s if it were reachable: relays do not
   * publish, so they never complain and do not count. */
  unsigned others = 0;
  for (mgr_session *o = m->sessions; o; o = o->next)
    if (o != s && o->state == MGR_SESSION_REGISTERED && o->role == NM_ROLE_SERVANT) others++;
  /* "More than quorum_percent of them", and never fewer than one. */
  return others * m->cfg.quorum_percent / 100 + 1;
}

static void mgr__judge(manager *m, mgr_session *accused) {
  uint64_t now = mgr_now_ms(m);
  unsigned reporters = mgr_complaint_reporters(m, accused);
  unsigned quorum = mgr_complaint_quorum(m, accused);
  /* A servant that stopped heartbeating is dead, not unreachable: the sweep removes it. */
  int alive = now - accused->last_heard_ms <= 2ull * m->cfg.heartbeat_s * 1000;
  if (reporters < quorum || !alive) return;
  nm_log_info("verdict: %s (%s) is suspicious: %u reporters with %u+ complaints each, quorum %u, "
              "still heartbeating (%llu ms ago)",
              accused->name, accused->id, reporters, m->cfg.complaint_threshold, quorum,
              (unsigned long long)(now - accused->last_heard_ms));
  accused->reach = NM_REACH_SUSPICIOUS;
  mgr_publish_upsert(m, accused);
  mgr_relays_on_judged(m, accused);
  mgr_relay_assign(m, accused);
}

int mgr_on_complaint(mgr_session *reporter, const char *payload, size_t len) {
  manager *m = reporter->mgr;
  xmlDoc *doc;
  xmlNode *c = nm_conn_parse_doc(&reporter->conn, payload, len, "complaint", &doc);
  if (!c) return 1;
  const char *accused_id = nm_xml_attr(c, "accused");
  if (!nm_id_valid(accused_id)) {
    xmlFreeDoc(doc);
    nm_conn_fail(&reporter->conn, NM_EMSG, "complaint: missing or invalid accused");
    return 1;
  }
  char accused_copy[NM_ID_LEN + 1];
  strcpy(accused_copy, accused_id);
  xmlFreeDoc(doc);
  mgr_session *accused = mgr_find_registered(m, accused_copy);
  if (!accused) {
    /* It may have left a moment ago: not an error. */
    nm_log_debug("complaint from %s about unknown servant %s ignored", reporter->name, accused_copy);
    return 0;
  }
  if (accused == reporter || accused->reach == NM_REACH_SUSPICIOUS || accused->reach == NM_REACH_RELAYED)
    return 0;
  mgr_complaint *entry = mgr__complaint_entry(accused, reporter->id);
  if (!entry) return 0;
  uint64_t now = mgr_now_ms(m);
  /* One complaint per pair per heartbeat interval counts (a little slack for jitter). */
  uint64_t spacing = (uint64_t)m->cfg.heartbeat_s * 900;
  if (entry->n > 0) {
    uint64_t last = entry->counted_ms[(entry->next + MGR_COMPLAINT_KEEP - 1) % MGR_COMPLAINT_KEEP];
    if (now - last < spacing) return 0;
  }
  entry->counted_ms[entry->next] = now;
  entry->next = (entry->next + 1) % MGR_COMPLAINT_KEEP;
  if (entry->n < MGR_COMPLAINT_KEEP) entry->n++;
  nm_log_info("complaint: %s cannot reach %s (%u of %u from it; %u of %u reporters needed)", reporter->name,
              accused->name, mgr__live_count(m, entry), m->cfg.complaint_threshold,
              mgr_complaint_reporters(m, accused), mgr_complaint_quorum(m, accused));
  mgr__judge(m, accused);
  return 0;
}
