/* nm_status_json: every field of the status, as JSON that a standard parser reads back. */
#include "nm_status_json.h"
#include "nmt.h"

#include <jansson.h>
#include <stdlib.h>

static void fill(nm_status *st) {
  nm_status_init(st);
  st->version = 42;
  st->heartbeat = 5;
  st->timeout = 15;
  nm_status_servant *a = nm_status_add(st);
  strcpy(a->id, "00000000000000aa");
  strcpy(a->name, "alice \"the\" <first>");
  strcpy(a->ip, "2001:db8::a");
  a->port = 4001;
  a->state = NM_REACH_DIRECT;
  a->has_last_heartbeat = 1;
  a->last_heartbeat_ms = 1200;
  a->connected_s = 35;
  strcpy(a->relay, "00000000000000cc");
  strcpy(a->relay_name, "carol");
  a->relay_reason = NM_RELAY_REASON_PAIR;
  strcpy(a->unreached_by, "bob dave +3");
  nm_status_servant *c = nm_status_add(st);
  strcpy(c->id, "00000000000000cc");
  strcpy(c->name, "carol");
  c->role = NM_ROLE_RELAY;
  strcpy(c->ip, "11.0.0.3");
  c->port = 7000;
  strcpy(c->dial_ip, "11.0.0.9");
  c->dial_port = 7001;
  c->state = NM_REACH_MAPPED;
  c->mapping = NM_MAPPING_NATPMP;
  strcpy(c->ext_ip, "11.0.0.9");
  c->ext_port = 7001;
  c->clients = 1;
  c->max_clients = 8;
  c->attached = 1;
  c->bytes_in = 1ull << 40;
  c->bytes_out = 7;
  c->drops = 2;
  c->complaints = 3;
  strcpy(c->unserved, "erin");
  /* issue 11: who complained about carol; the second reporter is not listed */
  st->complaint_threshold = 3;
  st->complaint_window_s = 60;
  c->complainers = 4;
  c->ncomplaint = 2;
  strcpy(c->complaint[0].from, "00000000000000aa");
  c->complaint[0].count = 5;
  c->complaint[0].last_ms = 800;
  strcpy(c->complaint[1].from, "00000000000000ee");
  c->complaint[1].count = 0;
  c->complaint[1].last_ms = 90000;
}

static void test_round_trip(void) {
  nm_status st;
  fill(&st);
  char *text = NULL;
  size_t len = 0;
  NMT_EQ_INT(nm_status_to_json(&st, 0, &text, &len), 0);
  json_error_t e;
  json_t *root = text ? json_loadb(text, len, 0, &e) : NULL;
  if (!NMT_CHECK(root)) {
    fprintf(stderr, "       %s: %s\n", text ? text : "(null)", e.text);
    free(text);
    nm_status_close(&st);
    return;
  }
  NMT_EQ_INT(json_integer_value(json_object_get(root, "schema")), NM_STATUS_JSON_SCHEMA);
  NMT_EQ_INT(json_integer_value(json_object_get(root, "version")), 42);
  NMT_EQ_INT(json_integer_value(json_object_get(root, "heartbeat_s")), 5);
  NMT_EQ_INT(json_integer_value(json_object_get(root, "timeout_s")), 15);
  json_t *sv = json_object_get(root, "servants");
  NMT_EQ_INT(json_array_size(sv), 2);
  json_t *a = json_array_get(sv, 0), *c = json_array_get(sv, 1);
  NMT_EQ_STR(json_string_value(json_object_get(a, "name")), "alice \"the\" <first>");
  NMT_EQ_STR(json_string_value(json_object_get(a, "ip")), "2001:db8::a");
  NMT_EQ_STR(json_string_value(json_object_get(a, "dial_ip")), "2001:db8::a"); /* defaults to ip */
  NMT_EQ_INT(json_integer_value(json_object_get(a, "dial_port")), 4001);
  NMT_EQ_STR(json_string_value(json_object_get(a, "role")), "servant");
  NMT_EQ_STR(json_string_value(json_object_get(a, "state")), "direct");
  NMT_CHECK(json_is_null(json_object_get(a, "ext_ip")));
  NMT_CHECK(json_is_null(json_object_get(a, "ext_port")));
  NMT_EQ_STR(json_string_value(json_object_get(a, "relay_name")), "carol");
  NMT_EQ_STR(json_string_value(json_object_get(a, "relay_reason")), "pair");
  json_t *ub = json_object_get(a, "unreached_by");
  NMT_EQ_INT(json_array_size(ub), 3);
  NMT_EQ_STR(json_string_value(json_array_get(ub, 2)), "+3");
  NMT_EQ_INT(json_array_size(json_object_get(a, "unserved")), 0);
  NMT_EQ_INT(json_integer_value(json_object_get(a, "last_heartbeat_ms")), 1200);
  NMT_EQ_INT(json_integer_value(json_object_get(a, "connected_s")), 35);
  NMT_EQ_STR(json_string_value(json_object_get(c, "role")), "relay");
  NMT_EQ_STR(json_string_value(json_object_get(c, "mapping")), "natpmp");
  NMT_EQ_STR(json_string_value(json_object_get(c, "ext_ip")), "11.0.0.9");
  NMT_EQ_INT(json_integer_value(json_object_get(c, "dial_port")), 7001);
  NMT_CHECK(json_is_null(json_object_get(c, "relay")));
  NMT_CHECK(json_is_null(json_object_get(c, "relay_reason")));
  NMT_CHECK(json_is_null(json_object_get(c, "relay_standby"))); /* no relay on standby */
  NMT_CHECK(json_is_null(json_object_get(c, "last_heartbeat_ms")));
  NMT_EQ_INT(json_integer_value(json_object_get(c, "bytes_in")), 1ll << 40);
  NMT_EQ_INT(json_integer_value(json_object_get(c, "drops")), 2);
  NMT_EQ_INT(json_integer_value(json_object_get(c, "complaints")), 3);
  NMT_EQ_INT(json_integer_value(json_object_get(c, "max_clients")), 8);
  NMT_EQ_STR(json_string_value(json_array_get(json_object_get(c, "unserved"), 0)), "erin");
  NMT_EQ_INT(json_integer_value(json_object_get(root, "complaint_threshold")), 3);
  NMT_EQ_INT(json_integer_value(json_object_get(root, "complaint_window_s")), 60);
  NMT_EQ_INT(json_integer_value(json_object_get(c, "complainers")), 4);
  json_t *cf = json_object_get(c, "complaints_from");
  NMT_EQ_INT(json_array_size(cf), 2);
  NMT_EQ_STR(json_string_value(json_object_get(json_array_get(cf, 0), "from")), "00000000000000aa");
  NMT_EQ_STR(json_string_value(json_object_get(json_array_get(cf, 0), "from_name")), "alice \"the\" <first>");
  NMT_EQ_INT(json_integer_value(json_object_get(json_array_get(cf, 0), "count")), 5);
  NMT_EQ_INT(json_integer_value(json_object_get(json_array_get(cf, 0), "last_ms")), 800);
  NMT_CHECK(json_is_null(json_object_get(json_array_get(cf, 1), "from_name")));
  NMT_EQ_INT(json_integer_value(json_object_get(json_array_get(cf, 1), "last_ms")), 90000);
  NMT_EQ_INT(json_array_size(json_object_get(a, "complaints_from")), 0);
  NMT_EQ_INT(json_integer_value(json_object_get(a, "complainers")), 0);
  /* No store: "store" null, no servant's "manager". */
  NMT_CHECK(json_is_null(json_object_get(root, "store")));
  NMT_CHECK(json_is_null(json_object_get(a, "manager")));
  json_decref(root);
  /* The same status gives the same text: members keep their order. */
  char *again = NULL;
  NMT_EQ_INT(nm_status_to_json(&st, 0, &again, NULL), 0);
  NMT_EQ_STR(again, text);
  free(again);
  free(text);
  nm_status_close(&st);
}

/* Several managers through a store (issue 14): "store" and each servant's "manager". */
static void test_store(void) {
  nm_status st;
  fill(&st);
  strcpy(st.servants[0].manager, "m1 \"east\"");
  nm_status_manager *m = nm_status_add_manager(&st);
  strcpy(m->name, "m1 \"east\"");
  strcpy(m->addr, "10.0.0.1");
  m->port = 85;
  m->has_last_seen = 1;
  m->last_seen_ms = 700;
  m = nm_status_add_manager(&st);
  strcpy(m->name, "m2");
  m->port = 85;
  st.store.nmanagers_total = 3;
  strcpy(st.store.url, "sentinel://10.0.0.7:26379,10.0.0.8:26379/nm");
  st.store.state = NM_STORE_DOWN;
  char *text = NULL;
  size_t len = 0;
  NMT_EQ_INT(nm_status_to_json(&st, 0, &text, &len), 0);
  json_error_t e;
  json_t *root = text ? json_loadb(text, len, 0, &e) : NULL;
  if (!NMT_CHECK(root)) {
    free(text);
    nm_status_close(&st);
    return;
  }
  json_t *sv = json_object_get(root, "servants");
  NMT_EQ_STR(json_string_value(json_object_get(json_array_get(sv, 0), "manager")), "m1 \"east\"");
  NMT_CHECK(json_is_null(json_object_get(json_array_get(sv, 1), "manager")));
  json_t *k = json_object_get(root, "store");
  NMT_CHECK(json_is_object(k));
  NMT_EQ_STR(json_string_value(json_object_get(k, "url")), "sentinel://10.0.0.7:26379,10.0.0.8:26379/nm");
  NMT_EQ_STR(json_string_value(json_object_get(k, "state")), "down");
  NMT_CHECK(json_is_null(json_object_get(k, "primary"))); /* down: none */
  NMT_EQ_INT(json_integer_value(json_object_get(k, "managers_count")), 3);
  json_t *ms = json_object_get(k, "managers");
  NMT_EQ_INT(json_array_size(ms), 2);
  NMT_EQ_STR(json_string_value(json_object_get(json_array_get(ms, 0), "name")), "m1 \"east\"");
  NMT_EQ_STR(json_string_value(json_object_get(json_array_get(ms, 0), "addr")), "10.0.0.1");
  NMT_EQ_INT(json_integer_value(json_object_get(json_array_get(ms, 0), "port")), 85);
  NMT_EQ_INT(json_integer_value(json_object_get(json_array_get(ms, 0), "last_seen_ms")), 700);
  NMT_CHECK(json_is_null(json_object_get(json_array_get(ms, 1), "addr")));
  NMT_CHECK(json_is_null(json_object_get(json_array_get(ms, 1), "last_seen_ms")));
  json_decref(root);
  free(text);
  /* Up, with its primary. */
  st.store.state = NM_STORE_UP;
  strcpy(st.store.primary, "10.0.0.5:6379");
  NMT_EQ_INT(nm_status_to_json(&st, 0, &text, &len), 0);
  NMT_HAS(text, "\"state\":\"up\",\"primary\":\"10.0.0.5:6379\"");
  free(text);
  nm_status_close(&st);
}

static void test_empty(void) {
  nm_status st;
  nm_status_init(&st);
  char *text = NULL;
  NMT_EQ_INT(nm_status_to_json(&st, 1, &text, NULL), 0);
  NMT_HAS(text, "\"servants\": []");
  NMT_HAS(text, "\"complaint_threshold\": null");
  NMT_HAS(text, "\"store\": null");
  free(text);
}

int main(void) {
  NMT_RUN(test_round_trip);
  NMT_RUN(test_store);
  NMT_RUN(test_empty);
  return nmt_done();
}
