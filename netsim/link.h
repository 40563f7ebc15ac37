/* link: conditions on a node's uplink (delay, jitter, loss, rate) and cutting it.
 *
 * Conditions use tc netem on both ends of the veth pair, so they apply in each direction.
 * Kernels built without sch_netem (some CI VMs) get a fallback: loss with an nftables
 * random-drop rule and rate with tbf; delay and jitter then cannot be simulated and are
 * refused with a clear message rather than silently ignored. */
#ifndef NSIM_LINK_H
#define NSIM_LINK_H

#include "run.h"

/* Interface names: a node's uplink, and its peer on the parent's side. */
const char *nsim_link_up_ifname(const struct nsim_run *r, int node);
void nsim_link_peer_ifname(const struct nsim_run *r, int node, char out[16]);
/* Namespace of the segment node's uplink plugs into (parent router or internet core). */
const char *nsim_link_parent_ns(const struct nsim_run *r, int node);

/* Replaces the uplink's conditions with c (all zero: a clean link). */
int nsim_link_apply(struct nsim_run *r, int node, const struct nsim_linkcond *c, char *err,
                    size_t errlen);

/* Drops (cut=1) or passes again (cut=0) every packet on node's uplink, both directions. The
 * interfaces stay up, so addresses and routes survive, as with a pulled cable upstream. */
int nsim_link_cut(struct nsim_run *r, int node, int cut, char *err, size_t errlen);

#endif
