/* ctl_status: the manager's status document (docs/protocol.md, "natmesh-ctl and the
 * manager") as plain data.
 *
 * The document comes off the network, so it is parsed like any other: through nm_xml_parse
 * (no DTDs, size and depth capped), every string bounded, every number range-checked, the
 * number of servants capped whatever the document's own count says. Unknown attributes and
 * elements are ignored, as the protocol asks. */
#ifndef NMCTL_STATUS_H
#define NMCTL_STATUS_H

#include <stddef.h>
#include <stdint.h>
#include <libxml/tree.h>

#include "nm_peerlist.h"
#include "nm_proto.h"

#define NMCTL_SERVANTS_MAX NM_PEERS_MAX
/* Text fields are bounded generously: names are shown escaped, not trusted. */
#define NMCTL_TEXT_MAX 64

typedef struct {
  char id[NM_ID_LEN + 1];
  char name[NMCTL_TEXT_MAX + 1];
  char role[NMCTL_TEXT_MAX + 1];
  char ip[NMCTL_TEXT_MAX + 1]; /* observed address */
  uint16_t port;               /* listening port */
  char dial_ip[NMCTL_TEXT_MAX + 1];
  uint16_t dial_port;
  char state[NMCTL_TEXT_MAX + 1];
  char mapping[NMCTL_TEXT_MAX + 1];
  char ext_ip[NMCTL_TEXT_MAX + 1];
  uint16_t ext_port;
  char relay[NM_ID_LEN + 1]; /* "" unless relayed */
  char relay_name[NMCTL_TEXT_MAX + 1];
  uint64_t last_heartbeat_ms;
  int has_last_heartbeat;
  uint64_t connected_s;
  unsigned complaints;
  unsigned clients;
  unsigned max_clients;
  uint64_t bytes_in, bytes_out, drops; /* a relay's own counters (relay-load) */
} nmctl_servant;

typedef struct {
  uint64_t version;
  unsigned heartbeat; /* seconds */
  unsigned timeout;   /* seconds */
  nmctl_servant *servants;
  size_t count;
} nmctl_status;

void nmctl_status_init(nmctl_status *st);
void nmctl_status_close(nmctl_status *st);

/* Fills st from a parsed <status> document. Returns 0, or NM_EMSG / -ENOMEM with a reason
 * naming the offending servant and field in err. */
int nmctl_status_from_doc(xmlDoc *doc, nmctl_status *st, char *err, size_t errlen);

/* Parses buf[0..len) with nm_xml_parse and fills st; on success *doc_out (when non-NULL)
 * receives the document, which the caller frees with xmlFreeDoc. */
int nmctl_status_parse(const char *buf, size_t len, nmctl_status *st, xmlDoc **doc_out,
                       char *err, size_t errlen);

/* The servant with this id, or NULL. */
const nmctl_servant *nmctl_status_find(const nmctl_status *st, const char *id);

#endif
