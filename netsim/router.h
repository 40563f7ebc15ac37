/* router: what makes a namespace behave like a router of a given kind: forwarding, the
 * nftables NAT and filter rules, miniupnpd for upnp/natpmp kinds, and hairpinning. */
#ifndef NSIM_ROUTER_H
#define NSIM_ROUTER_H

#include "run.h"

/* Configures router node (its links must exist). Starts miniupnpd for mapping kinds and
 * waits until it listens. Returns 0 or a negative code with the reason in err. */
int nsim_router_setup(struct nsim_run *r, int node, char *err, size_t errlen);

/* The nftables rule text miniupnpd installed for mappings on router node (its prerouting
 * chain), into out. Returns 0 or a negative code. */
int nsim_router_mappings(struct nsim_run *r, int node, char *out, size_t outlen);

/* Stops router node's miniupnpd and starts it again, waiting up to wait_ms until it listens.
 * With flush, its lease file is removed and its nftables chains are emptied first, so the
 * mappings are forgotten as after a reboot. Returns 0 or a negative code with err. */
int nsim_router_restart_daemon(struct nsim_run *r, int node, int flush, long wait_ms, char *err,
                               size_t errlen);

#endif
