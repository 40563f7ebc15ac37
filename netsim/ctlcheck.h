/* ctlcheck: assertions on what the overlay's manager reports, read through the real
 * `natmesh-ctl status --format xml` run on a host of the topology. */
#ifndef NSIM_CTLCHECK_H
#define NSIM_CTLCHECK_H

#include "run.h"

/* Runs natmesh-ctl once from node against manager ("ADDR:PORT") and checks servant: present
 * or not, and (when given) its state and mapping attributes ("VALUE" or "!VALUE", anything
 * but) and the address peers are told to dial (dial: "ADDR" or "ADDR:PORT"). Returns 1 when
 * it holds, 0 when not, negative when ctl could not be run or its answer not read; detail
 * says what was seen. */
int nsim_ctl_check(struct nsim_run *r, int node, const char *manager, const char *servant,
                   int present, const char *state, const char *mapping, const char *dial,
                   char *detail, size_t detaillen);

#endif
