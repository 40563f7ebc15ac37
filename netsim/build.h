/* build: turns a topology into namespaces, veth links, bridges, addresses and routes, then
 * applies link conditions and sets routers up; and tears it all down again. */
#ifndef NSIM_BUILD_H
#define NSIM_BUILD_H

#include "run.h"

/* Builds r->sc->topo. On failure what was built stays recorded in the state file for
 * nsim_build_teardown. Returns 0 or a negative code with the reason in err. */
int nsim_build_up(struct nsim_run *r, char *err, size_t errlen);

/* Stops every process, removes every namespace of the run. Returns 0 when nothing is left. */
int nsim_build_teardown(struct nsim_run *r);

#endif
