/* sim.h - what the fake-router tests (test_natpmp_sim.c, test_upnp_sim.c) share:
 * the loop, the record of what the mapper reported, awaiting a condition with a
 * deadline, and running the scenario named on the command line.
 *
 * Nothing here asserts (nat_test.h's counters belong to each test file): the
 * helpers return what happened and the tests CHECK it. */
#ifndef NAT_SIM_H
#define NAT_SIM_H

#include "nm_portmap.h"

#include <stddef.h>
#include <stdint.h>

/* What the mapper reported through its callbacks. */
typedef struct {
  int count[NM_PM_NONE + 1];  /* events by kind */
  nm_portmap_event order[32]; /* the first 32 events, in order */
  int n;
  int last_status;
  nm_mapping_info last;
  uint64_t none_at_ms; /* loop time of the first NONE */
  int closed;          /* close_cb ran */
} sim_record;

extern uv_loop_t sim_loop;
extern sim_record sim_rec;

/* Adds one event to sim_rec; the tests' nm_portmap_cb calls it first. */
void sim_record_event(nm_portmap_event ev, int status, const nm_mapping_info *info);

/* Runs sim_loop until cond() holds or ms pass; returns cond(). */
int sim_wait_until(int (*cond)(void), uint64_t ms);

/* Conditions on sim_rec for sim_wait_until. */
int sim_mapped(void);
int sim_remapped(void);
int sim_none(void);
int sim_lost_then_none(void);
int sim_closed(void);

/* Closes pm with close_cb (unless that already happened: close_cb must set
 * sim_rec.closed) and waits up to ms for it; returns whether it ran. */
int sim_close_and_wait(nm_portmap *pm, nm_portmap_close_cb close_cb, uint64_t ms);

typedef struct {
  const char *name;
  void (*fn)(void);
} sim_scenario;

/* Runs the scenario called name out of n; returns 0, or -1 if there is none. */
int sim_run(const sim_scenario *scenarios, size_t n, const char *name);

#endif /* NAT_SIM_H */
