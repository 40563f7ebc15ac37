/* nm_metrics: names checked at definition, bounded label sets, and the Prometheus text
 * exposition format written exactly. */
#include "nm_metrics.h"
#include "nmt.h"

#include <errno.h>
#include <stdlib.h>

static void test_text(void) {
  nm_metrics m;
  nm_metrics_init(&m);
  int joins = nm_metrics_define(&m, "natmesh_manager_joins_total", NM_METRIC_COUNTER,
                                "Servants that joined the list.", NULL, 1);
  int states = nm_metrics_define(&m, "natmesh_manager_servants", NM_METRIC_GAUGE,
                                 "Listed servants by reachability state.", "state", 5);
  int frames = nm_metrics_define(&m, "natmesh_manager_frames_total", NM_METRIC_COUNTER,
                                 "Frames by direction and type.", "direction,type", 8);
  NMT_CHECK(joins >= 0 && states >= 0 && frames >= 0);
  NMT_EQ_INT(nm_metrics_add(&m, joins, NULL, 2), 0);
  NMT_EQ_INT(nm_metrics_add(&m, joins, NULL, 1), 0);
  NMT_EQ_INT(nm_metrics_set(&m, states, (const char *[]){"direct"}, 3), 0);
  NMT_EQ_INT(nm_metrics_set(&m, states, (const char *[]){"relayed"}, 1), 0);
  NMT_EQ_INT(nm_metrics_set(&m, states, (const char *[]){"direct"}, 4), 0);
  NMT_EQ_INT(nm_metrics_add(&m, frames, (const char *[]){"in", "hello"}, 1), 0);
  NMT_EQ_INT(nm_metrics_get(&m, states, (const char *[]){"direct"}), 4);
  NMT_EQ_INT(nm_metrics_get(&m, states, (const char *[]){"mapped"}), 0);
  char *text = NULL;
  size_t len = 0;
  NMT_EQ_INT(nm_metrics_write(&m, &text, &len), 0);
  NMT_EQ_STR(text,
             "# HELP natmesh_manager_joins_total Servants that joined the list.\n"
             "# TYPE natmesh_manager_joins_total counter\n"
             "natmesh_manager_joins_total 3\n"
             "# HELP natmesh_manager_servants Listed servants by reachability state.\n"
             "# TYPE natmesh_manager_servants gauge\n"
             "natmesh_manager_servants{state=\"direct\"} 4\n"
             "natmesh_manager_servants{state=\"relayed\"} 1\n"
             "# HELP natmesh_manager_frames_total Frames by direction and type.\n"
             "# TYPE natmesh_manager_frames_total counter\n"
             "natmesh_manager_frames_total{direction=\"in\",type=\"hello\"} 1\n");
  NMT_EQ_INT(len, strlen(text));
  free(text);
  /* A labelled metric forgets its series; an unlabelled one goes back to 0. */
  nm_metrics_clear(&m, states);
  nm_metrics_clear(&m, joins);
  NMT_EQ_INT(nm_metrics_write(&m, &text, NULL), 0);
  NMT_CHECK(!strstr(text, "natmesh_manager_servants{"));
  NMT_HAS(text, "natmesh_manager_joins_total 0\n");
  free(text);
  nm_metrics_close(&m);
}

static void test_names(void) {
  nm_metrics m;
  nm_metrics_init(&m);
  /* Counters end in _total, gauges do not; names and label names are Prometheus's. */
  NMT_EQ_INT(nm_metrics_define(&m, "natmesh_joins", NM_METRIC_COUNTER, "", NULL, 1), -EINVAL);
  NMT_EQ_INT(nm_metrics_define(&m, "natmesh_clients_total", NM_METRIC_GAUGE, "", NULL, 1), -EINVAL);
  NMT_EQ_INT(nm_metrics_define(&m, "9lives", NM_METRIC_GAUGE, "", NULL, 1), -EINVAL);
  NMT_EQ_INT(nm_metrics_define(&m, "a-b", NM_METRIC_GAUGE, "", NULL, 1), -EINVAL);
  NMT_EQ_INT(nm_metrics_define(&m, "ok", NM_METRIC_GAUGE, "", "__reserved", 1), -EINVAL);
  NMT_EQ_INT(nm_metrics_define(&m, "ok", NM_METRIC_GAUGE, "", "a,b,c", 1), -EINVAL);
  NMT_EQ_INT(nm_metrics_define(&m, "ok", NM_METRIC_GAUGE, "", "a,a", 1), -EINVAL);
  NMT_EQ_INT(nm_metrics_define(&m, "ok", NM_METRIC_GAUGE, "", "a,", 1), -EINVAL);
  NMT_EQ_INT(nm_metrics_define(&m, "ok", NM_METRIC_GAUGE, "", "a", 0), -EINVAL);
  NMT_EQ_INT(nm_metrics_define(&m, "ok", NM_METRIC_GAUGE, "", "a", NM_METRIC_SERIES_MAX + 1), -EINVAL);
  NMT_EQ_INT(nm_metrics_define(&m, "ok", NM_METRIC_GAUGE, "", "a", 1), 0);
  NMT_EQ_INT(nm_metrics_define(&m, "ok", NM_METRIC_GAUGE, "", "a", 1), -EINVAL); /* twice */
  NMT_EQ_INT(m.count, 1);
  nm_metrics_close(&m);
}

static void test_bounds(void) {
  nm_metrics m;
  nm_metrics_init(&m);
  int relay = nm_metrics_define(&m, "natmesh_relay_bytes_in_total", NM_METRIC_COUNTER,
                                "Bytes \\ in\nby relay", "relay", 2);
  NMT_EQ_INT(nm_metrics_set(&m, relay, (const char *[]){"a"}, 1), 0);
  NMT_EQ_INT(nm_metrics_set(&m, relay, (const char *[]){"b\"\\\xc3\xa9"}, 2), 0);
  /* The third relay is refused: the set is bounded. The existing ones still update. */
  NMT_EQ_INT(nm_metrics_set(&m, relay, (const char *[]){"c"}, 3), -ENOSPC);
  NMT_EQ_INT(nm_metrics_add(&m, relay, (const char *[]){"a"}, 10), 0);
  /* Values that are not text, missing or too long. */
  NMT_EQ_INT(nm_metrics_set(&m, relay, (const char *[]){"line\nbreak"}, 1), -EINVAL);
  NMT_EQ_INT(nm_metrics_set(&m, relay, NULL, 1), -EINVAL);
  NMT_EQ_INT(nm_metrics_set(&m, relay, (const char *[]){NULL}, 1), -EINVAL);
  char longer[NM_METRIC_VALUE_MAX + 2];
  memset(longer, 'x', sizeof longer - 1);
  longer[sizeof longer - 1] = 0;
  NMT_EQ_INT(nm_metrics_set(&m, relay, (const char *[]){longer}, 1), -EINVAL);
  NMT_EQ_INT(nm_metrics_set(&m, 7, NULL, 1), -EINVAL);
  NMT_EQ_INT(nm_metrics_set(&m, -1, NULL, 1), -EINVAL);
  char *text = NULL;
  NMT_EQ_INT(nm_metrics_write(&m, &text, NULL), 0);
  NMT_HAS(text, "# HELP natmesh_relay_bytes_in_total Bytes \\\\ in\\nby relay\n");
  NMT_HAS(text, "natmesh_relay_bytes_in_total{relay=\"a\"} 11\n");
  NMT_HAS(text, "natmesh_relay_bytes_in_total{relay=\"b\\\"\\\\\xc3\xa9\"} 2\n");
  NMT_CHECK(!strstr(text, "relay=\"c\""));
  free(text);
  nm_metrics_close(&m);
}

static void test_full_registry(void) {
  nm_metrics m;
  nm_metrics_init(&m);
  char name[32];
  int last = 0;
  for (int i = 0; i < NM_METRICS_MAX; i++) {
    snprintf(name, sizeof name, "g%d", i);
    last = nm_metrics_define(&m, name, NM_METRIC_GAUGE, "", NULL, 1);
  }
  NMT_EQ_INT(last, NM_METRICS_MAX - 1);
  NMT_EQ_INT(nm_metrics_define(&m, "one_more", NM_METRIC_GAUGE, "", NULL, 1), -ENOSPC);
  nm_metrics_close(&m);
}

int main(void) {
  NMT_RUN(test_text);
  NMT_RUN(test_names);
  NMT_RUN(test_bounds);
  NMT_RUN(test_full_registry);
  return nmt_done();
}
