#include "nm_status.h"

#include "nm_error.h"
#include "nm_msg.h"
#include "nm_xml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Status heartbeat and timeout: whatever a manager could be configured with, and a day. */
#define NM__STATUS_SECONDS_MAX 86400

const char *nm_relay_reason_name(nm_relay_reason r) {
  switch (r) {
  case NM_RELAY_REASON_PAIR: return "pair";
  case NM_RELAY_REASON_SUSPICIOUS: return "suspicious";
  case NM_RELAY_REASON_PROVISIONAL: return "provisional";
  case NM_RELAY_REASON_NONE: break;
  }
  return "";
}

const char *nm_store_state_name(nm_store_state s) { return s == NM_STORE_UP ? "up" : "down"; }

void nm_status_init(nm_status *st) { memset(st, 0, sizeof *st); }

void nm_status_close(nm_status *st) {
  free(st->servants);
  memset(st, 0, sizeof *st);
}

static int nm__status_reserve(nm_status *st, size_t want) {
  if (want <= st->cap) return 0;
  if (want > NM_STATUS_SERVANTS_MAX) return -ENOSPC;
  size_t ncap = st->cap ? st->cap * 2 : 16;
  while (ncap < want) ncap *= 2;
  if (ncap > NM_STATUS_SERVANTS_MAX) ncap = NM_STATUS_SERVANTS_MAX;
  nm_status_servant *ns = realloc(st->servants, ncap * sizeof *ns);
  if (!ns) return -ENOMEM;
  st->servants = ns;
  st->cap = ncap;
  return 0;
}

nm_status_servant *nm_status_add(nm_status *st) {
  if (nm__status_reserve(st, st->count + 1) < 0) return NULL;
  nm_status_servant *s = &st->servants[st->count++];
  memset(s, 0, sizeof *s);
  s->role = NM_ROLE_SERVANT;
  s->state = NM_REACH_UNKNOWN;
  s->mapping = NM_MAPPING_NONE;
  return s;
}

nm_status_manager *nm_status_add_manager(nm_status *st) {
  nm_status_store *k = &st->store;
  k->present = 1;
  if (k->nmanagers_total < UINT32_MAX) k->nmanagers_total++;
  if (k->nmanagers == NM_STATUS_MANAGERS_MAX) return NULL;
  nm_status_manager *m = &k->managers[k->nmanagers++];
  memset(m, 0, sizeof *m);
  return m;
}

int nm_status_has_managers(const nm_status *st) {
  for (size_t i = 0; i < st->count; i++)
    if (st->servants[i].manager[0]) return 1;
  return 0;
}

const nm_status_servant *nm_status_find(const nm_status *st, const char *id) {
  for (size_t i = 0; i < st->count; i++)
    if (strcmp(st->servants[i].id, id) == 0) return &st->servants[i];
  return NULL;
}

/* ---- encoding ----------------------------------------------------------------------- */

static int nm__addr_ok(const char *ip) { return !ip[0] || nm_ip_valid(ip); }

static int nm__text_ok(const char *s) {
  size_t len = strnlen(s, NM_STATUS_TEXT_MAX + 1);
  return len <= NM_STATUS_TEXT_MAX && nm_xml_text_valid(s, len);
}

static int nm__names_ok(const char *s) {
  size_t len = strnlen(s, NM_STATUS_NAMES_MAX + 1);
  return len <= NM_STATUS_NAMES_MAX && nm_xml_text_valid(s, len);
}

static int nm__url_ok(const char *s) {
  size_t len = strnlen(s, NM_STATUS_URL_MAX + 1);
  return len <= NM_STATUS_URL_MAX && nm_xml_text_valid(s, len);
}

static int nm__store_sendable(const nm_status_store *k) {
  if (!k->present) return 1;
  if (!nm__url_ok(k->url) || !nm__text_ok(k->primary) || !nm__text_ok(k->mesh_leader) || (unsigned)k->state > NM_STORE_UP ||
      k->nmanagers > NM_STATUS_MANAGERS_MAX || k->nmanagers_total < k->nmanagers)
    return 0;
  for (unsigned i = 0; i < k->nmanagers; i++)
    if (!nm__text_ok(k->managers[i].name) || !nm__addr_ok(k->managers[i].addr)) return 0;
  return 1;
}

static int nm__complaints_ok(const nm_status_servant *s) {
  if (s->ncomplaint > NM_STATUS_COMPLAINTS_MAX || s->complainers < s->ncomplaint) return 0;
  for (unsigned i = 0; i < s->ncomplaint; i++)
    if (!nm_id_valid(s->complaint[i].from)) return 0;
  return 1;
}

static int nm__servant_sendable(const nm_status_servant *s) {
  return nm__complaints_ok(s) && nm_id_valid(s->id) && nm__text_ok(s->name) && nm__text_ok(s->relay_name) &&
         nm__text_ok(s->relay_standby) && nm__text_ok(s->manager) &&
         (unsigned)s->relay_reason <= NM_RELAY_REASON_PROVISIONAL && nm__names_ok(s->unreached_by) &&
         nm__names_ok(s->unserved) &&
         (unsigned)s->role <= NM_ROLE_RELAY && (unsigned)s->state <= NM_REACH_RELAYED &&
         (unsigned)s->mapping <= NM_MAPPING_LAST && nm__addr_ok(s->ip) &&
         nm__addr_ok(s->dial_ip) && nm__addr_ok(s->ext_ip) &&
         (!s->relay[0] || nm_id_valid(s->relay));
}

static int nm__status_encode(const nm_status *st, unsigned page, unsigned pages, size_t total, char **out,
                             size_t *outlen);

int nm_status_encode(const nm_status *st, char **out, size_t *outlen) {
  return nm__status_encode(st, 0, 1, st->count, out, outlen);
}

int nm_status_encode_page(const nm_status *st, unsigned page, unsigned pages, size_t total, char **out,
                          size_t *outlen) {
  if (pages < 2 || page >= pages || pages > NM_STATUS_PAGES_MAX || st->count > NM_STATUS_PAGE ||
      total > NM_STATUS_SERVANTS_MAX) {
    *out = NULL;
    *outlen = 0;
    return -EINVAL;
  }
  return nm__status_encode(st, page, pages, total, out, outlen);
}

static int nm__status_encode(const nm_status *st, unsigned page, unsigned pages, size_t total, char **out,
                             size_t *outlen) {
  *out = NULL;
  *outlen = 0;
  if (st->count > NM_STATUS_SERVANTS_MAX || st->heartbeat > NM__STATUS_SECONDS_MAX ||
      st->timeout > NM__STATUS_SECONDS_MAX || !nm__store_sendable(&st->store))
    return -EINVAL;
  for (size_t i = 0; i < st->count; i++)
    if (!nm__servant_sendable(&st->servants[i])) return -EINVAL;
  nm_xml_writer w;
  int rc = nm_xml_writer_init(&w);
  if (rc < 0) return rc;
  nm_xml_writer_start(&w, "status");
  nm_xml_writer_attr_u64(&w, "version", st->version);
  nm_xml_writer_attr_u64(&w, "heartbeat", st->heartbeat);
  nm_xml_writer_attr_u64(&w, "timeout", st->timeout);
  nm_xml_writer_attr_u64(&w, "servants", total);
  /* Paged (issue 13): servants is the whole status's count, this page holds some of them. */
  if (pages > 1) {
    nm_xml_writer_attr_u64(&w, "page", page);
    nm_xml_writer_attr_u64(&w, "pages", pages);
  }
  /* Since issue 11, when known: what makes a complaint count. */
  if (st->complaint_threshold) nm_xml_writer_attr_u64(&w, "complaint-threshold", st->complaint_threshold);
  if (st->complaint_window_s) nm_xml_writer_attr_u64(&w, "complaint-window", st->complaint_window_s);
  /* Since issue 14, only with a store: the store and the overlay's managers, before the
   * servants (on every page: natmesh-ctl keeps the first page's). */
  if (st->store.present) {
    const nm_status_store *k = &st->store;
    nm_xml_writer_start(&w, "store");
    nm_xml_writer_attr(&w, "url", k->url);
    nm_xml_writer_attr(&w, "state", nm_store_state_name(k->state));
    nm_xml_writer_attr(&w, "primary", k->primary);
    if (k->mesh_leader[0]) nm_xml_writer_attr(&w, "mesh-leader", k->mesh_leader);
    nm_xml_writer_attr_u64(&w, "managers", k->nmanagers_total);
    for (unsigned i = 0; i < k->nmanagers; i++) {
      const nm_status_manager *m = &k->managers[i];
      nm_xml_writer_start(&w, "manager");
      nm_xml_writer_attr(&w, "name", m->name);
      nm_xml_writer_attr(&w, "addr", m->addr);
      nm_xml_writer_attr_u64(&w, "port", m->port);
      if (m->has_last_seen) nm_xml_writer_attr_u64(&w, "last-seen-ms", m->last_seen_ms);
      nm_xml_writer_end(&w);
    }
    nm_xml_writer_end(&w);
  }
  /* The attribute order is the one managers have always sent: natmesh-ctl --format xml
   * prints the document as received. */
  for (size_t i = 0; i < st->count; i++) {
    const nm_status_servant *s = &st->servants[i];
    nm_xml_writer_start(&w, "servant");
    nm_xml_writer_attr(&w, "id", s->id);
    nm_xml_writer_attr(&w, "name", s->name);
    nm_xml_writer_attr(&w, "role", nm_role_name(s->role));
    if (s->manager[0]) nm_xml_writer_attr(&w, "manager", s->manager); /* issue 14 */
    nm_xml_writer_attr(&w, "ip", s->ip);
    nm_xml_writer_attr_u64(&w, "port", s->port);
    nm_xml_writer_attr(&w, "dial-ip", s->dial_ip);
    nm_xml_writer_attr_u64(&w, "dial-port", s->dial_port);
    nm_xml_writer_attr(&w, "state", nm_reach_name(s->state));
    nm_xml_writer_attr(&w, "mapping", nm_mapping_name(s->mapping));
    nm_xml_writer_attr(&w, "ext-ip", s->ext_ip);
    nm_xml_writer_attr_u64(&w, "ext-port", s->ext_port);
    nm_xml_writer_attr(&w, "relay", s->relay);
    nm_xml_writer_attr(&w, "relay-name", s->relay_name);
    /* Since issue 10, and only when set: older readers ignore unknown attributes. */
    if (s->relay_reason != NM_RELAY_REASON_NONE)
      nm_xml_writer_attr(&w, "relay-reason", nm_relay_reason_name(s->relay_reason));
    if (s->relay_standby[0]) nm_xml_writer_attr(&w, "relay-standby", s->relay_standby); /* issue 12 */
    if (s->unreached_by[0]) nm_xml_writer_attr(&w, "unreached-by", s->unreached_by);
    if (s->unserved[0]) nm_xml_writer_attr(&w, "unserved", s->unserved);
    if (s->has_last_heartbeat) nm_xml_writer_attr_u64(&w, "last-heartbeat-ms", s->last_heartbeat_ms);
    nm_xml_writer_attr_u64(&w, "connected-s", s->connected_s);
    nm_xml_writer_attr_u64(&w, "complaints", s->complaints);
    nm_xml_writer_attr_u64(&w, "clients", s->clients);
    nm_xml_writer_attr_u64(&w, "max-clients", s->max_clients);
    nm_xml_writer_attr_u64(&w, "attached", s->attached);
    nm_xml_writer_attr_u64(&w, "bytes-in", s->bytes_in);
    nm_xml_writer_attr_u64(&w, "bytes-out", s->bytes_out);
    nm_xml_writer_attr_u64(&w, "drops", s->drops);
    /* Since issue 11, and only when someone complained: who, how many, how recently. */
    if (s->complainers) nm_xml_writer_attr_u64(&w, "complainers", s->complainers);
    for (unsigned k = 0; k < s->ncomplaint; k++) {
      nm_xml_writer_start(&w, "complaint");
      nm_xml_writer_attr(&w, "from", s->complaint[k].from);
      nm_xml_writer_attr_u64(&w, "count", s->complaint[k].count);
      nm_xml_writer_attr_u64(&w, "last-ms", s->complaint[k].last_ms);
      nm_xml_writer_end(&w);
    }
    nm_xml_writer_end(&w);
  }
  nm_xml_writer_end(&w);
  return nm_xml_writer_finish(&w, out, outlen);
}

/* ---- decoding ----------------------------------------------------------------------- */

#define NM__CHECK(expr)                                                                       \
  do {                                                                                        \
    int nm_rc_ = (expr);                                                                      \
    if (nm_rc_ < 0) return nm_rc_;                                                            \
  } while (0)

/* An address attribute: absent or "" (unknown), or a literal IP. */
static int nm__read_addr(xmlNode *n, const char *ctx, const char *attr, char out[64], char *err,
                         size_t errlen) {
  const char *v = nm_xml_attr(n, attr);
  if (!v || !*v) return 0;
  return nm_read_ip(n, ctx, attr, 0, out, err, errlen);
}

static int nm__servant_from_xml(xmlNode *n, size_t index, nm_status_servant *s, char *err,
                                size_t errlen) {
  char ctx[64];
  /* Until the id is known, the servant is named by its position. */
  snprintf(ctx, sizeof ctx, "status: servant %zu", index + 1);
  NM__CHECK(nm_read_id(n, ctx, "id", 0, s->id, err, errlen));
  snprintf(ctx, sizeof ctx, "status: servant %s", s->id);
  NM__CHECK(nm_read_text(n, ctx, "name", 1, s->name, sizeof s->name, err, errlen));
  NM__CHECK(nm_read_role(n, ctx, "role", 1, &s->role, err, errlen));
  NM__CHECK(nm_read_text(n, ctx, "manager", 1, s->manager, sizeof s->manager, err, errlen));
  NM__CHECK(nm__read_addr(n, ctx, "ip", s->ip, err, errlen));
  NM__CHECK(nm_read_port(n, ctx, "port", 1, 1, &s->port, err, errlen));
  NM__CHECK(nm__read_addr(n, ctx, "dial-ip", s->dial_ip, err, errlen));
  NM__CHECK(nm_read_port(n, ctx, "dial-port", 1, 1, &s->dial_port, err, errlen));
  NM__CHECK(nm_read_reach(n, ctx, "state", 1, &s->state, err, errlen));
  NM__CHECK(nm_read_mapping(n, ctx, "mapping", 1, &s->mapping, err, errlen));
  NM__CHECK(nm__read_addr(n, ctx, "ext-ip", s->ext_ip, err, errlen));
  NM__CHECK(nm_read_port(n, ctx, "ext-port", 1, 1, &s->ext_port, err, errlen));
  const char *relay = nm_xml_attr(n, "relay");
  if (relay && *relay) NM__CHECK(nm_read_id(n, ctx, "relay", 0, s->relay, err, errlen));
  NM__CHECK(nm_read_text(n, ctx, "relay-name", 1, s->relay_name, sizeof s->relay_name, err,
                         errlen));
  const char *reason = nm_xml_attr(n, "relay-reason");
  if (reason && *reason) {
    if (strcmp(reason, "pair") == 0) s->relay_reason = NM_RELAY_REASON_PAIR;
    else if (strcmp(reason, "suspicious") == 0) s->relay_reason = NM_RELAY_REASON_SUSPICIOUS;
    else if (strcmp(reason, "provisional") == 0) s->relay_reason = NM_RELAY_REASON_PROVISIONAL;
    else return nm_read_field_error(ctx, "relay-reason", reason, err, errlen);
  }
  NM__CHECK(nm_read_text(n, ctx, "relay-standby", 1, s->relay_standby, sizeof s->relay_standby, err, errlen));
  NM__CHECK(nm_read_text(n, ctx, "unreached-by", 1, s->unreached_by, sizeof s->unreached_by, err,
                         errlen));
  NM__CHECK(nm_read_text(n, ctx, "unserved", 1, s->unserved, sizeof s->unserved, err, errlen));
  if (nm_xml_attr(n, "last-heartbeat-ms")) {
    NM__CHECK(nm_read_u64(n, ctx, "last-heartbeat-ms", 0, &s->last_heartbeat_ms, err, errlen));
    s->has_last_heartbeat = 1;
  }
  NM__CHECK(nm_read_u64(n, ctx, "connected-s", 1, &s->connected_s, err, errlen));
  NM__CHECK(nm_read_uint(n, ctx, "complaints", 1, 0, UINT32_MAX, &s->complaints, err, errlen));
  NM__CHECK(nm_read_uint(n, ctx, "clients", 1, 0, UINT32_MAX, &s->clients, err, errlen));
  NM__CHECK(nm_read_uint(n, ctx, "max-clients", 1, 0, UINT32_MAX, &s->max_clients, err, errlen));
  NM__CHECK(nm_read_u64(n, ctx, "attached", 1, &s->attached, err, errlen));
  NM__CHECK(nm_read_u64(n, ctx, "bytes-in", 1, &s->bytes_in, err, errlen));
  NM__CHECK(nm_read_u64(n, ctx, "bytes-out", 1, &s->bytes_out, err, errlen));
  NM__CHECK(nm_read_u64(n, ctx, "drops", 1, &s->drops, err, errlen));
  /* The complaints: at most NM_STATUS_COMPLAINTS_MAX are kept whatever the document
   * lists; complainers (the manager's count of reporters) is never below what we kept. */
  NM__CHECK(nm_read_uint(n, ctx, "complainers", 1, 0, UINT32_MAX, &s->complainers, err, errlen));
  unsigned listed = 0;
  for (xmlNode *c = n->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "complaint") != 0) continue;
    listed++;
    if (s->ncomplaint == NM_STATUS_COMPLAINTS_MAX) continue;
    nm_status_complaint *k = &s->complaint[s->ncomplaint];
    char kctx[96];
    snprintf(kctx, sizeof kctx, "%s: complaint %u", ctx, listed);
    NM__CHECK(nm_read_id(c, kctx, "from", 0, k->from, err, errlen));
    NM__CHECK(nm_read_uint(c, kctx, "count", 1, 0, UINT32_MAX, &k->count, err, errlen));
    NM__CHECK(nm_read_u64(c, kctx, "last-ms", 1, &k->last_ms, err, errlen));
    s->ncomplaint++;
  }
  if (s->complainers < listed) s->complainers = listed;
  /* Older or simpler managers may not say where to dial: that is the observed address. */
  if (!s->dial_ip[0]) memcpy(s->dial_ip, s->ip, sizeof s->ip);
  if (!s->dial_port) s->dial_port = s->port;
  return 0;
}

/* <store>: the first one counts (a document has one); its <manager> children are read up to
 * NM_STATUS_MANAGERS_MAX, the rest counted. */
static int nm__store_from_xml(xmlNode *n, nm_status_store *k, char *err, size_t errlen) {
  const char *ctx = "status: store";
  k->present = 1;
  NM__CHECK(nm_read_text(n, ctx, "url", 1, k->url, sizeof k->url, err, errlen));
  const char *state = nm_xml_attr(n, "state");
  if (!state || strcmp(state, "down") == 0) k->state = NM_STORE_DOWN;
  else if (strcmp(state, "up") == 0) k->state = NM_STORE_UP;
  else return nm_read_field_error(ctx, "state", state, err, errlen);
  NM__CHECK(nm_read_text(n, ctx, "primary", 1, k->primary, sizeof k->primary, err, errlen));
  NM__CHECK(nm_read_text(n, ctx, "mesh-leader", 1, k->mesh_leader, sizeof k->mesh_leader, err, errlen));
  NM__CHECK(nm_read_uint(n, ctx, "managers", 1, 0, UINT32_MAX, &k->nmanagers_total, err, errlen));
  unsigned listed = 0;
  for (xmlNode *c = n->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "manager") != 0) continue;
    listed++;
    if (k->nmanagers == NM_STATUS_MANAGERS_MAX) continue;
    nm_status_manager *m = &k->managers[k->nmanagers];
    char mctx[64];
    snprintf(mctx, sizeof mctx, "%s: manager %u", ctx, listed);
    NM__CHECK(nm_read_text(c, mctx, "name", 0, m->name, sizeof m->name, err, errlen));
    NM__CHECK(nm__read_addr(c, mctx, "addr", m->addr, err, errlen));
    NM__CHECK(nm_read_port(c, mctx, "port", 1, 1, &m->port, err, errlen));
    if (nm_xml_attr(c, "last-seen-ms")) {
      NM__CHECK(nm_read_u64(c, mctx, "last-seen-ms", 0, &m->last_seen_ms, err, errlen));
      m->has_last_seen = 1;
    }
    k->nmanagers++;
  }
  if (k->nmanagers_total < listed) k->nmanagers_total = listed;
  return 0;
}

static int nm__status_from_root(xmlNode *root, nm_status *st, char *err, size_t errlen) {
  if (!root || strcmp((const char *)root->name, "status") != 0) {
    snprintf(err, errlen, "status: expected a <status> document");
    return NM_EMSG;
  }
  NM__CHECK(nm_read_u64(root, "status", "version", 0, &st->version, err, errlen));
  NM__CHECK(nm_read_uint(root, "status", "heartbeat", 1, 0, NM__STATUS_SECONDS_MAX,
                         &st->heartbeat, err, errlen));
  NM__CHECK(nm_read_uint(root, "status", "timeout", 1, 0, NM__STATUS_SECONDS_MAX, &st->timeout,
                         err, errlen));
  NM__CHECK(nm_read_uint(root, "status", "complaint-threshold", 1, 0, UINT32_MAX,
                         &st->complaint_threshold, err, errlen));
  NM__CHECK(nm_read_uint(root, "status", "complaint-window", 1, 0, NM__STATUS_SECONDS_MAX,
                         &st->complaint_window_s, err, errlen));
  /* Count the elements ourselves: the document's servants="N" is not trusted for sizing. */
  size_t n = 0;
  for (xmlNode *c = root->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) continue;
    if (strcmp((const char *)c->name, "servant") == 0) n++;
    else if (strcmp((const char *)c->name, "store") == 0 && !st->store.present)
      NM__CHECK(nm__store_from_xml(c, &st->store, err, errlen));
  }
  if (n > NM_STATUS_SERVANTS_MAX) {
    snprintf(err, errlen, "status: lists %zu servants (limit %d)", n, NM_STATUS_SERVANTS_MAX);
    return NM_EMSG;
  }
  if (nm__status_reserve(st, n) < 0) {
    snprintf(err, errlen, "status: out of memory");
    return -ENOMEM;
  }
  for (xmlNode *c = root->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "servant") != 0) continue;
    nm_status_servant *s = nm_status_add(st); /* cannot fail: reserved above */
    if (!s) return -ENOMEM;
    NM__CHECK(nm__servant_from_xml(c, st->count - 1, s, err, errlen));
  }
  return 0;
}

int nm_status_from_doc(xmlDoc *doc, nm_status *st, char *err, size_t errlen) {
  nm_status_close(st);
  int rc = nm__status_from_root(xmlDocGetRootElement(doc), st, err, errlen);
  if (rc < 0) nm_status_close(st);
  return rc;
}

int nm_status_parse(const char *buf, size_t len, nm_status *st, xmlDoc **doc_out, char *err,
                    size_t errlen) {
  return nm_status_parse_max(buf, len, NM_XML_MAX_BYTES, st, doc_out, err, errlen);
}

int nm_status_parse_max(const char *buf, size_t len, size_t max, nm_status *st, xmlDoc **doc_out, char *err,
                        size_t errlen) {
  xmlDoc *doc;
  if (doc_out) *doc_out = NULL;
  int rc = nm_xml_parse_max(buf, len, max, &doc, err, errlen);
  if (rc < 0) return rc;
  rc = nm_status_from_doc(doc, st, err, errlen);
  if (rc < 0 || !doc_out)
    xmlFreeDoc(doc);
  else
    *doc_out = doc;
  return rc;
}
