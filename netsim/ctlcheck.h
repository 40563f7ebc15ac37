/* ctlcheck: assertions on what the overlay's manager reports, read through the real
 * `natmesh-ctl status --format xml` run on a host of the topology. */
#ifndef NSIM_CTLCHECK_H
#define NSIM_CTLCHECK_H

#include "run.h"

/* What must hold. Values of state, mapping and relay are "VALUE" or "!VALUE" (anything but). */
struct nsim_ctl_want {
  const char *servant;   /* the servant the checks below are about; NULL: none */
  int present;           /* listed (1) or not (0) */
  const char *state;     /* its reachability state (direct, mapped, relayed, ...) */
  const char *mapping;   /* its mapping method */
  const char *dial;      /* where peers are told to dial it: "ADDR", "ADDR:PORT" or "[V6]:PORT" */
  const char *relay;     /* the name of its relay */
  const char *holder;    /* the name of the manager holding its session (status attribute
                          * "manager", issue 14: several managers sharing a store) */
  int relay_counts;      /* every listed relay's clients equals the number of servants that
                          * list it as their relay, and every relay named is listed */
};

/* Runs natmesh-ctl once from node against manager ("ADDR:PORT") and checks w. state_dir, when
 * given, is the manager's state folder: ctl then authenticates with the manager's own key
 * there (`--state-dir`), as an operator on the manager's machine does. Returns 1 when it
 * holds, 0 when not, negative when ctl could not be run or its answer not read; detail says
 * what was seen. */
int nsim_ctl_check(struct nsim_run *r, int node, const char *manager, const char *state_dir,
                   const struct nsim_ctl_want *w, char *detail, size_t detaillen);

#endif
