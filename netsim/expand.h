/* expand: ${...} references in scenario strings, resolved against the run:
 *   ${netsim}      this natmesh-netsim executable (for its echo-server helper)
 *   ${bin:NAME}    NAME in the --bindir folder (default: natmesh-netsim's own), else NAME in $PATH
 *   ${ip:NODE}     NODE's uplink address (a router's WAN address)
 *   ${lan:ROUTER}  ROUTER's LAN address
 *   ${ip6:NODE}    NODE's uplink IPv6 address (plain, not bracketed); ${lan6:ROUTER} its LAN's
 *                  (${ip:NODE} of an ipv6-only node, ${ip6:NODE} of an ipv4 one: errors)
 *   ${rundir}      the run folder;  ${run} the run id
 *   ${state:NAME}  ${rundir}/statedirs/NAME: a natmesh program's own state folder (--state-dir);
 *                  NAME is [a-z0-9_-]{1,32}, the folder itself is made by the program
 *   ${fp:NAME}     the fingerprint of the natmesh key in ${state:NAME}, made there if missing
 *                  (managers.h) */
#ifndef NSIM_EXPAND_H
#define NSIM_EXPAND_H

#include "run.h"

/* Expands s into out. Returns 0, or -EINVAL with the bad reference in err. */
int nsim_expand(const struct nsim_run *r, const char *s, char *out, size_t outlen, char *err,
                size_t errlen);

/* Splits a command line into argv and expands each word. Returns argc or a negative code. */
int nsim_expand_argv(const struct nsim_run *r, const char *cmd, char ***argv, char *err,
                     size_t errlen);


#endif
