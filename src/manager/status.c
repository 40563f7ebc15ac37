/* natmesh-ctl's view of the overlay: every listed servant with its addresses, state and
 * how long ago it was heard from. It lists exactly the entries of the published list, so
 * the two always agree. */
#include "manager.h"
#include "complaints.h"
#include "holder.h"
#include "relays.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_msg.h"
#include "nm_status.h"
#include "nm_xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *mgr__name_of(manager *m, const char *id) {
  mgr_session *r = id[0] ? mgr_find_listed(m, id) : NULL;
  return r ? r->name : "";
}

/* The lists of names (unreached-by, unserved) have a budget of their own, so the document
 * stays within one frame however many pairs there are (manager.h, MGR_SESSIONS_MAX): past
 * it, a list says only how many ("+12"). */
#define MGR_STATUS_NAMES_BUDGET (60 * 1024)

static void mgr__status_names(manager *m, const mgr_session *s, char *out, size_t len, size_t *budget) {
  char names[MGR_PAIR_NAMES_LEN];
  size_t total = mgr_pair_names(m, s, names, sizeof names);
  if (!total) {
    out[0] = 0;
    return;
  }
  if (strlen(names) + 16 > *budget) snprintf(out, len, "+%zu", total);
  else snprintf(out, len, "%s", names);
  size_t used = strlen(out) + 16; /* with the attribute's name and quotes */
  *budget = used < *budget ? *budget - used : 0;
}

/* <complaint> children have a budget of their own too: at most NM_STATUS_COMPLAINTS_MAX per
 * servant and this many in one document (about 60 bytes each), so with thousands of
 * servants complaining the status still fits a frame; complainers always says how many. */
#define MGR_STATUS_COMPLAINTS_BUDGET 1024

/* Who complained about s, the most recently counted first. */
static void mgr__status_complaints(manager *m, const mgr_session *s, nm_status_servant *e,
                                   unsigned *budget) {
  mgr_verdict_rules rules = mgr_rules(m);
  uint64_t now = mgr_now_ms(m);
  const mgr_complaints *c = &s->complaints;
  e->complainers = 0;
  e->ncomplaint = 0;
  for (size_t i = 0; i < c->n; i++) {
    const mgr_complaint *k = &c->v[i];
    if (!k->n) continue;
    e->complainers++;
    uint64_t last = k->counted_ms[(k->next + MGR_COMPLAINT_KEEP - 1) % MGR_COMPLAINT_KEEP];
    nm_status_complaint item;
    memcpy(item.from, k->reporter, sizeof item.from);
    item.count = mgr_complaints_live(c, k->reporter, &rules, now);
    item.last_ms = now - last;
    /* Insertion into the short list kept sorted by recency; the oldest falls off. */
    unsigned cap = *budget < NM_STATUS_COMPLAINTS_MAX ? *budget : NM_STATUS_COMPLAINTS_MAX;
    unsigned at = e->ncomplaint;
    while (at > 0 && e->complaint[at - 1].last_ms > item.last_ms) at--;
    if (at >= cap) continue;
    unsigned keep = e->ncomplaint < cap ? e->ncomplaint + 1 : cap;
    memmove(&e->complaint[at + 1], &e->complaint[at], (keep - 1 - at) * sizeof item);
    e->complaint[at] = item;
    e->ncomplaint = keep;
  }
  *budget -= e->ncomplaint;
}

/* text into a field of size bytes when it is valid text that fits, else "?" ("" stays ""). */
static void mgr__status_text(char *field, size_t size, const char *text) {
  size_t len = strnlen(text, size);
  if (len < size && nm_xml_text_valid(text, len)) memmove(field, text, len + 1);
  else snprintf(field, size, "?");
}

/* What the store side filled in (holder.h), made sendable whatever the store held: an
 * entry another manager announced with a name that is no text or an address that is no IP
 * costs that field, not the whole status. */
static void mgr__status_store_clean(nm_status_store *k) {
  if (!k->present) return;
  mgr__status_text(k->url, sizeof k->url, k->url);
  mgr__status_text(k->primary, sizeof k->primary, k->primary);
  if (k->state != NM_STORE_UP) k->state = NM_STORE_DOWN;
  if (k->nmanagers > NM_STATUS_MANAGERS_MAX) k->nmanagers = NM_STATUS_MANAGERS_MAX;
  if (k->nmanagers_total < k->nmanagers) k->nmanagers_total = k->nmanagers;
  for (unsigned i = 0; i < k->nmanagers; i++) {
    nm_status_manager *e = &k->managers[i];
    mgr__status_text(e->name, sizeof e->name, e->name);
    if (e->addr[0] && (!memchr(e->addr, 0, sizeof e->addr) || !nm_ip_valid(e->addr))) e->addr[0] = 0;
  }
}

/* The manager holding s's session (holder.h), as the status may carry it: a name that is no
 * valid text of at most NM_STATUS_TEXT_MAX bytes (one from the store, say) shows as "?"
 * rather than costing the whole status. */
static void mgr__status_holder(const mgr_session *s, nm_status_servant *e) {
  const char *h = mgr_session_holder(s);
  mgr__status_text(e->manager, sizeof e->manager, h ? h : "");
}

static nm_relay_reason mgr__relay_reason(const mgr_session *s) {
  if (!s->relay_id[0] || s->standby) return NM_RELAY_REASON_NONE;
  if (s->reach == NM_REACH_RELAYED || s->reach == NM_REACH_SUSPICIOUS) return NM_RELAY_REASON_SUSPICIOUS;
  if (s->provisional) return NM_RELAY_REASON_PROVISIONAL;
  return s->pair ? NM_RELAY_REASON_PAIR : NM_RELAY_REASON_NONE;
}

static void mgr__status_head(manager *m, nm_status *st) {
  st->version = m->list.version;
  st->heartbeat = m->cfg.heartbeat_s;
  st->timeout = m->cfg.timeout_s;
  st->complaint_threshold = m->cfg.complaint_threshold;
  st->complaint_window_s = m->cfg.complaint_window_s;
  /* With a store, the store and the overlay's managers (holder.h); nothing otherwise. */
  mgr_status_store(m, st);
  mgr__status_store_clean(&st->store);
}

/* The budgets of one whole status (across its pages). */
typedef struct {
  size_t names;
  unsigned complaints;
} mgr__status_budget;

static int mgr__status_add(manager *m, nm_status *st, mgr_session *s, mgr__status_budget *b) {
  uint64_t now = mgr_now_ms(m);
  nm_status_servant *e = nm_status_add(st);
  if (!e) return -ENOMEM;
  nm_peer p;
  mgr_session_to_peer(s, &p);
  memcpy(e->id, s->id, sizeof e->id);
  snprintf(e->name, sizeof e->name, "%s", s->name);
  e->role = s->role;
  mgr__status_holder(s, e);
  snprintf(e->ip, sizeof e->ip, "%s", s->conn.peer_ip);
  e->port = s->port;
  snprintf(e->dial_ip, sizeof e->dial_ip, "%s", p.ip);
  e->dial_port = p.port;
  e->state = s->reach;
  e->mapping = p.mapping;
  snprintf(e->ext_ip, sizeof e->ext_ip, "%s", s->ext_ip);
  e->ext_port = s->ext_port;
  if (s->standby) {
    /* It pulls from none: the relay kept for it is named apart. */
    if (s->relay_id[0]) snprintf(e->relay_standby, sizeof e->relay_standby, "%s", mgr__name_of(m, s->relay_id));
  } else {
    memcpy(e->relay, s->relay_id, sizeof e->relay);
    snprintf(e->relay_name, sizeof e->relay_name, "%s", mgr__name_of(m, s->relay_id));
  }
  e->relay_reason = mgr__relay_reason(s);
  mgr__status_names(m, s, e->unreached_by, sizeof e->unreached_by, &b->names);
  /* A pair no relay serves: those reporters' lines do not reach it. Loud, never silent. */
  if (s->pair && !s->relay_id[0] && !s->standby && (s->reach == NM_REACH_DIRECT || s->reach == NM_REACH_MAPPED))
    snprintf(e->unserved, sizeof e->unserved, "%s", e->unreached_by[0] ? e->unreached_by : "?");
  /* Held by another manager (shared.h): heard by it, not by us. */
  e->has_last_heartbeat = !s->remote;
  e->last_heartbeat_ms = s->remote ? 0 : now - s->last_heard_ms;
  e->connected_s = s->remote ? 0 : (now - s->connected_ms) / 1000;
  e->complaints = mgr_complaint_reporters(m, s);
  e->clients = mgr_relay_clients(m, s);
  e->max_clients = s->max_clients;
  e->attached = s->load_attached;
  e->bytes_in = s->load_bytes_in;
  e->bytes_out = s->load_bytes_out;
  e->drops = s->load_drops;
  mgr__status_complaints(m, s, e, &b->complaints);
  return 0;
}

static int mgr__status_fill(manager *m, nm_status *st) {
  mgr__status_budget b = {MGR_STATUS_NAMES_BUDGET, MGR_STATUS_COMPLAINTS_BUDGET};
  mgr__status_head(m, st);
  /* The published list: this manager's servants and, with a store, every other's. */
  for (size_t i = 0; i < m->list.count; i++) {
    int rc = mgr__status_add(m, st, m->list.at[i], &b);
    if (rc < 0) return rc;
  }
  return 0;
}

/* A status past one page: built a page at a time (never the whole in memory) and sent
 * back to back; the asker's queue grows to take it. */
static int mgr__send_status_pages(manager *m, mgr_session *asker, size_t total) {
  unsigned pages = (unsigned)((total + NM_STATUS_PAGE - 1) / NM_STATUS_PAGE);
  mgr__status_budget b = {MGR_STATUS_NAMES_BUDGET, MGR_STATUS_COMPLAINTS_BUDGET};
  size_t at = 0;
  int rc = 0;
  for (unsigned k = 0; k < pages && rc == 0; k++) {
    nm_status st;
    nm_status_init(&st);
    mgr__status_head(m, &st);
    for (; at < m->list.count && st.count < NM_STATUS_PAGE && rc == 0; at++)
      rc = mgr__status_add(m, &st, m->list.at[at], &b);
    char *buf = NULL;
    size_t len = 0;
    if (rc == 0) rc = nm_status_encode_page(&st, k, pages, total, &buf, &len);
    if (rc == 0) {
      if (k == 0 && asker->conn.max_queue < NM_CONN_MAX_QUEUE + (size_t)pages * len * 2)
        asker->conn.max_queue = NM_CONN_MAX_QUEUE + (size_t)pages * len * 2;
      rc = nm_conn_send(&asker->conn, NM_MSG_STATUS, buf, len);
    }
    free(buf);
    nm_status_close(&st);
  }
  return rc;
}

int mgr_status_collect(manager *m, nm_status *st) { return mgr__status_fill(m, st); }

void mgr_send_status(manager *m, mgr_session *asker) {
  size_t total = m->list.count;
  if (total > NM_STATUS_PAGE) {
    int rc = mgr__send_status_pages(m, asker, total);
    if (rc < 0) nm_log_warn("cannot send status: %s", nm_strerror(rc));
    return;
  }
  nm_status st;
  nm_status_init(&st);
  int rc = mgr__status_fill(m, &st);
  if (rc == 0) {
    nm_msg msg = {.type = NM_MSG_STATUS};
    msg.u.status.status = &st;
    rc = nm_msg_send(&asker->conn, &msg);
  }
  if (rc < 0) nm_log_warn("cannot send status: %s", nm_strerror(rc));
  nm_status_close(&st);
}
