/* Port mapping for a peer (portmap.c): once the manager has told us our port and the
 * address it sees, ask the router in front of us (nat/: UPnP IGD, then NAT-PMP) to forward
 * that port, and report the result through on_report (the manager link sends it as a
 * mapping frame, and the manager advertises the external address to our peers). */
#ifndef SV_PORTMAP_H
#define SV_PORTMAP_H

#include <stddef.h>
#include <stdint.h>

#include "nm_msg.h"

typedef struct servant servant;
struct sv_mapper; /* heap: the nat/ port mapper closes asynchronously */

typedef struct {
  struct sv_mapper *m; /* NULL until the first registration (or when mapping is off) */
  void (*on_report)(servant *sv, const nm_msg_mapping *m);
} sv_portmap;

/* Registered (again) as observed_ip, listening on port: map, or report the mapping again
 * to a manager that restarted. */
void sv_portmap_on_registered(servant *sv, const char *observed_ip, uint16_t port);
void sv_portmap_close(servant *sv);
/* For /peers: "mapped by upnp at A:P", "no mapping", "mapping off". */
const char *sv_portmap_describe(servant *sv, char *buf, size_t len);

#endif
