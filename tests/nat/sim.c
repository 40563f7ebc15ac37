/* sim.c - the fake-router tests' shared scaffolding; see sim.h. */
#include "sim.h"

#include <string.h>

uv_loop_t sim_loop;
sim_record sim_rec;

void sim_record_event(nm_portmap_event ev, int status, const nm_mapping_info *info) {
  sim_rec.count[ev]++;
  if (sim_rec.n < 32)
    sim_rec.order[sim_rec.n++] = ev;
  sim_rec.last_status = status;
  sim_rec.last = *info;
  if (ev == NM_PM_NONE && sim_rec.none_at_ms == 0)
    sim_rec.none_at_ms = uv_now(&sim_loop);
}

static int timed_out;
static void on_deadline(uv_timer_t *t) {
  (void)t;
  timed_out = 1;
}

int sim_wait_until(int (*cond)(void), uint64_t ms) {
  uv_timer_t t;
  int ok;
  timed_out = 0;
  uv_timer_init(&sim_loop, &t);
  uv_timer_start(&t, on_deadline, ms, 0);
  while (!(ok = cond()) && !timed_out)
    uv_run(&sim_loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&sim_loop, UV_RUN_NOWAIT);
  return ok;
}

int sim_mapped(void) { return sim_rec.count[NM_PM_MAPPED] > 0; }
int sim_remapped(void) { return sim_rec.count[NM_PM_REMAPPED] > 0; }
int sim_none(void) { return sim_rec.count[NM_PM_NONE] > 0; }
int sim_lost_then_none(void) {
  return sim_rec.count[NM_PM_LOST] > 0 && sim_rec.count[NM_PM_NONE] > 0;
}
int sim_closed(void) { return sim_rec.closed; }

int sim_close_and_wait(nm_portmap *pm, nm_portmap_close_cb close_cb, uint64_t ms) {
  if (!sim_rec.closed)
    nm_portmap_close(pm, close_cb);
  return sim_wait_until(sim_closed, ms);
}

int sim_run(const sim_scenario *scenarios, size_t n, const char *name) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (strcmp(scenarios[i].name, name) == 0) {
      scenarios[i].fn();
      return 0;
    }
  }
  return -1;
}
