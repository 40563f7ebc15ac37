#include "metrics.h"
#include "servant.h"
#include "nm_addr.h"
#include "nm_log.h"
#include "nm_metrics.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int sv__metrics_text(const rl_duty *d, char **out, size_t *len) {
  nm_metrics x;
  nm_metrics_init(&x);
#define GAUGE(name, help, value) \
  nm_metrics_set(&x, nm_metrics_define(&x, name, NM_METRIC_GAUGE, help, NULL, 1), NULL, value)
#define COUNTER(name, help, value) \
  nm_metrics_set(&x, nm_metrics_define(&x, name, NM_METRIC_COUNTER, help, NULL, 1), NULL, value)
  GAUGE("natmesh_relay_clients", "Clients the manager assigned to this relay.", d->nassigned);
  GAUGE("natmesh_relay_attached", "Clients connected and pulling.", d->nattached);
  GAUGE("natmesh_relay_max_clients", "Clients this relay serves at most.", d->limits.max_clients);
  GAUGE("natmesh_relay_recent_lines", "Lines in the replay ring (the last minute).", d->recent.count);
  COUNTER("natmesh_relay_received_bytes_total", "Chat bytes received to forward (the relay's own lines excluded).",
          d->bytes_in);
  COUNTER("natmesh_relay_sent_bytes_total", "Chat bytes sent to clients.", d->bytes_out);
  COUNTER("natmesh_relay_lines_total", "Lines relayed: chat lines sent to clients.", d->lines_out);
  COUNTER("natmesh_relay_drops_total", "Lines not sent to a client: its rate, the total rate or its full queue.",
          d->drops);
#undef GAUGE
#undef COUNTER
  int rc = nm_metrics_write(&x, out, len);
  nm_metrics_close(&x);
  return rc;
}

/* The relay's own status document for its page: its clients and counters. */
static char *sv__status_json(const servant *sv) {
  const rl_duty *d = &sv->relay;
  json_t *root = json_object(), *clients = json_array();
  if (!root || !clients) {
    json_decref(root);
    json_decref(clients);
    return NULL;
  }
  json_object_set_new(root, "program", json_string("natmesh-relay"));
  json_object_set_new(root, "name", json_string(sv->cfg.name));
  json_object_set_new(root, "id", json_string(sv->id));
  json_object_set_new(root, "clients_count", json_integer((json_int_t)d->nassigned));
  json_object_set_new(root, "attached", json_integer((json_int_t)d->nattached));
  json_object_set_new(root, "max_clients", json_integer(d->limits.max_clients));
  json_object_set_new(root, "bytes_in", json_integer((json_int_t)d->bytes_in));
  json_object_set_new(root, "bytes_out", json_integer((json_int_t)d->bytes_out));
  json_object_set_new(root, "lines_relayed", json_integer((json_int_t)d->lines_out));
  json_object_set_new(root, "drops", json_integer((json_int_t)d->drops));
  for (size_t i = 0; i < d->nassigned; i++) {
    int attached = 0;
    for (size_t k = 0; k < d->nattached; k++)
      if (strcmp(d->attached[k]->id, d->assigned[i].id) == 0) attached = 1;
    json_t *c = json_object();
    json_object_set_new(c, "id", json_string(d->assigned[i].id));
    json_object_set_new(c, "attached", json_boolean(attached));
    json_array_append_new(clients, c);
  }
  json_object_set_new(root, "clients", clients);
  char *text = json_dumps(root, JSON_COMPACT);
  json_decref(root);
  return text;
}

static void sv__metrics_publish(sv_metrics *mm) {
  char *text = NULL;
  size_t len = 0;
  if (sv__metrics_text(&mm->sv->relay, &text, &len) == 0)
    nm_http_publish(mm->http, "/metrics", NM_METRICS_CONTENT_TYPE, text, len);
  free(text);
  text = sv__status_json(mm->sv);
  if (text) nm_http_publish(mm->http, "/status.json", "application/json", text, strlen(text));
  free(text);
}

static void sv__metrics_tick(uv_timer_t *t) { sv__metrics_publish(t->data); }

int sv_metrics_start(sv_metrics *mm, servant *sv) {
  memset(mm, 0, sizeof *mm);
  mm->sv = sv;
  if (!sv->cfg.metrics[0]) return 0;
  char ip[64], err[300];
  uint16_t port;
  if (nm_http_parse_listen(sv->cfg.metrics, ip, sizeof ip, &port) < 0)
    return nm_log_error("metrics: expected [ADDR:]PORT, got \"%s\"", sv->cfg.metrics), -1;
  if (nm_http_start(&mm->http, ip, port, err, sizeof err) < 0) return nm_log_error("metrics: %s", err), -1;
  nm_http_publish(mm->http, "/", NM_WEB_PAGE_CONTENT_TYPE, nm_web_page, nm_web_page_len);
  sv__metrics_publish(mm);
  uv_timer_init(sv->loop, &mm->timer);
  mm->timer.data = mm;
  uv_timer_start(&mm->timer, sv__metrics_tick, SV_METRICS_PERIOD_MS, SV_METRICS_PERIOD_MS);
  uv_unref((uv_handle_t *)&mm->timer); /* the relay stops when its own handles are done */
  char at[NM_ADDR_STRLEN];
  nm_log_info("metrics and status page on http://%s/ (/metrics, /status.json)",
              nm_addr_str(ip, nm_http_port(mm->http), at));
  return 0;
}

void sv_metrics_stop(sv_metrics *mm) {
  if (!mm->http) return;
  uv_close((uv_handle_t *)&mm->timer, NULL);
  nm_http_stop(mm->http);
  mm->http = NULL;
}
