#include "nm_status_json.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* A member that may be unknown: a string, or null when empty. */
static json_t *nm__str_or_null(const char *s) { return s[0] ? json_string(s) : json_null(); }

/* "alice bob +3" -> ["alice", "bob", "+3"]: the manager's list within its budget, as is. */
static json_t *nm__names(const char *s) {
  json_t *a = json_array();
  const char *p = s;
  while (a && *p) {
    while (*p == ' ') p++;
    size_t n = strcspn(p, " ");
    if (n) json_array_append_new(a, json_stringn(p, n));
    p += n;
  }
  return a;
}

/* The <complaint> children: [{"from": ID, "from_name": NAME or null, "count": N,
 * "last_ms": M}], the name looked up among the listed servants. */
static json_t *nm__complaints(const nm_status *st, const nm_status_servant *s) {
  json_t *a = json_array();
  for (unsigned i = 0; a && i < s->ncomplaint; i++) {
    const nm_status_complaint *k = &s->complaint[i];
    const nm_status_servant *from = nm_status_find(st, k->from);
    json_t *o = json_object();
    if (!o) break;
    json_object_set_new(o, "from", json_string(k->from));
    json_object_set_new(o, "from_name", from ? json_string(from->name) : json_null());
    json_object_set_new(o, "count", json_integer(k->count));
    json_object_set_new(o, "last_ms", json_integer((json_int_t)k->last_ms));
    json_array_append_new(a, o);
  }
  return a;
}

static json_t *nm__servant(const nm_status *st, const nm_status_servant *s) {
  json_t *o = json_object();
  if (!o) return NULL;
  json_object_set_new(o, "id", json_string(s->id));
  json_object_set_new(o, "name", json_string(s->name));
  json_object_set_new(o, "role", json_string(nm_role_name(s->role)));
  json_object_set_new(o, "manager", nm__str_or_null(s->manager));
  json_object_set_new(o, "ip", nm__str_or_null(s->ip));
  json_object_set_new(o, "port", json_integer(s->port));
  json_object_set_new(o, "dial_ip", nm__str_or_null(s->dial_ip[0] ? s->dial_ip : s->ip));
  json_object_set_new(o, "dial_port", json_integer(s->dial_port ? s->dial_port : s->port));
  json_object_set_new(o, "state", json_string(nm_reach_name(s->state)));
  json_object_set_new(o, "mapping", json_string(nm_mapping_name(s->mapping)));
  json_object_set_new(o, "ext_ip", nm__str_or_null(s->ext_ip));
  json_object_set_new(o, "ext_port", s->ext_port ? json_integer(s->ext_port) : json_null());
  json_object_set_new(o, "relay", nm__str_or_null(s->relay));
  json_object_set_new(o, "relay_name", nm__str_or_null(s->relay[0] ? s->relay_name : ""));
  json_object_set_new(o, "relay_reason",
                      s->relay[0] && s->relay_reason ? json_string(nm_relay_reason_name(s->relay_reason))
                                                     : json_null());
  json_object_set_new(o, "relay_standby", nm__str_or_null(s->relay_standby));
  json_object_set_new(o, "unreached_by", nm__names(s->unreached_by));
  json_object_set_new(o, "unserved", nm__names(s->unserved));
  json_object_set_new(o, "last_heartbeat_ms",
                      s->has_last_heartbeat ? json_integer((json_int_t)s->last_heartbeat_ms) : json_null());
  json_object_set_new(o, "connected_s", json_integer((json_int_t)s->connected_s));
  json_object_set_new(o, "complaints", json_integer(s->complaints));
  json_object_set_new(o, "clients", json_integer(s->clients));
  json_object_set_new(o, "max_clients", json_integer(s->max_clients));
  json_object_set_new(o, "attached", json_integer((json_int_t)s->attached));
  json_object_set_new(o, "bytes_in", json_integer((json_int_t)s->bytes_in));
  json_object_set_new(o, "bytes_out", json_integer((json_int_t)s->bytes_out));
  json_object_set_new(o, "drops", json_integer((json_int_t)s->drops));
  json_object_set_new(o, "complainers", json_integer(s->complainers));
  json_object_set_new(o, "complaints_from", nm__complaints(st, s));
  return o;
}

/* <store>: {"url", "state", "primary" (null while down), "managers_count", "managers":
 * [{"name", "addr" (null when unknown), "port", "last_seen_ms" (null when unknown)}]};
 * the member is null for a manager without a store. */
static json_t *nm__store(const nm_status_store *k) {
  if (!k->present) return json_null();
  json_t *o = json_object();
  json_t *a = json_array();
  if (!o || !a) {
    json_decref(o);
    json_decref(a);
    return NULL;
  }
  json_object_set_new(o, "url", json_string(k->url));
  json_object_set_new(o, "state", json_string(nm_store_state_name(k->state)));
  json_object_set_new(o, "primary", nm__str_or_null(k->primary));
  json_object_set_new(o, "mesh_leader", nm__str_or_null(k->mesh_leader));
  json_object_set_new(o, "managers_count", json_integer(k->nmanagers_total));
  for (unsigned i = 0; i < k->nmanagers; i++) {
    const nm_status_manager *m = &k->managers[i];
    json_t *e = json_object();
    if (!e) break;
    json_object_set_new(e, "name", json_string(m->name));
    json_object_set_new(e, "addr", nm__str_or_null(m->addr));
    json_object_set_new(e, "port", json_integer(m->port));
    json_object_set_new(e, "last_seen_ms",
                        m->has_last_seen ? json_integer((json_int_t)m->last_seen_ms) : json_null());
    json_array_append_new(a, e);
  }
  json_object_set_new(o, "managers", a);
  return o;
}

int nm_status_to_json(const nm_status *st, int pretty, char **out, size_t *outlen) {
  *out = NULL;
  json_t *root = json_object();
  json_t *servants = json_array();
  int rc = -ENOMEM;
  if (!root || !servants) goto done;
  json_object_set_new(root, "schema", json_integer(NM_STATUS_JSON_SCHEMA));
  json_object_set_new(root, "version", json_integer((json_int_t)st->version));
  json_object_set_new(root, "heartbeat_s", json_integer(st->heartbeat));
  json_object_set_new(root, "timeout_s", json_integer(st->timeout));
  json_object_set_new(root, "servants_count", json_integer((json_int_t)st->count));
  json_object_set_new(root, "complaint_threshold",
                      st->complaint_threshold ? json_integer(st->complaint_threshold) : json_null());
  json_object_set_new(root, "complaint_window_s",
                      st->complaint_window_s ? json_integer(st->complaint_window_s) : json_null());
  json_t *store = nm__store(&st->store);
  if (!store) goto done;
  json_object_set_new(root, "store", store);
  for (size_t i = 0; i < st->count; i++) {
    json_t *s = nm__servant(st, &st->servants[i]);
    if (!s || json_array_append_new(servants, s) < 0) goto done;
  }
  json_object_set(root, "servants", servants);
  /* Keys in insertion order: the same status always gives the same text. */
  *out = json_dumps(root, JSON_PRESERVE_ORDER | (pretty ? JSON_INDENT(2) : JSON_COMPACT));
  if (*out) {
    if (outlen) *outlen = strlen(*out);
    rc = 0;
  }
done:
  json_decref(servants);
  json_decref(root);
  return rc;
}
