/* observe: showing ourselves to the manager over our other address family. Registered over
 * one family (say IPv4), a dual-stack servant opens one short session to the manager's
 * address of the other family that the welcome named, TLS pinned to the manager's key like
 * the main session, and sends observe; the manager notes where it came from as our second
 * observed address (a candidate peers of that family dial) and answers observed. Once per
 * registration; a failure only costs the candidate and is said once. */
#ifndef SV_OBSERVE_H
#define SV_OBSERVE_H

#include "nm_conn.h"
#include "nm_msg.h"

typedef struct servant servant;

typedef struct {
  nm_conn *conn;   /* the observe session while it runs */
  size_t naddrs;   /* the manager's addresses of our other family, from its welcome */
  nm_endpoint addrs[NM_MANAGER_ADDRS_MAX];
} sv_observe;

/* Remembers the manager's other addresses from a welcome. */
void sv_observe_set_addrs(servant *sv, const nm_msg_welcome *w);
/* Registered: shows us over the other family, when the manager named an address of a
 * family we have a (non-loopback, non-link-local) address of ourselves. */
void sv_observe_start(servant *sv);
/* Ends a running observe session (leaving). */
void sv_observe_stop(servant *sv);

#endif
