/* ctl_peers: `natmesh-ctl peers NAME`, one servant's view of the overlay, worked out from the
 * manager's status alone: for each other servant, how NAME gets its lines and how it gets
 * NAME's (direct, at which address and how that address is known; through which relay and
 * why; or not at all), and why NAME pulls from a relay (who complained, how many times, how
 * recently).
 *
 * The rules are the protocol's (docs/protocol.md, "Complaints, verdicts and relays" and
 * "The pair path"): a servant judged unreachable (state suspicious or relayed) gets every
 * line through its relay; a servant on the pair path gets only its complainers' lines
 * through its relay and everyone else's directly; a pair no relay serves loses those lines;
 * anyone else is dialled directly at the address the manager publishes for it (its port
 * mapping when it has one, else the address the manager observed). Relays publish nothing of
 * their own; every servant publishes to them.
 *
 * nmctl_peers_build works out the paths (a plain model, tested in tests/unit/unit_ctl.c);
 * the renderers print it as a table or as JSON (docs/status-json.md, "peers"). */
#ifndef NMCTL_PEERS_H
#define NMCTL_PEERS_H

#include <stdio.h>

#include "nm_status.h"

typedef enum {
  NMCTL_PATH_DIRECT = 0, /* the publisher dials the receiver at addr */
  NMCTL_PATH_RELAY,      /* the receiver pulls it from relay */
  NMCTL_PATH_PULL,       /* the receiver pulls it from the publisher itself (its relay) */
  NMCTL_PATH_LOST,       /* no path: a pair no relay serves, or judged and no relay yet */
  NMCTL_PATH_NONE,       /* nothing to carry: a relay publishes no lines of its own */
} nmctl_path_kind;

/* "direct", "relay", "pull", "lost", "none". */
const char *nmctl_path_kind_name(nmctl_path_kind k);

typedef struct {
  nmctl_path_kind kind;
  /* direct: the receiver's address the publisher dials, and how the manager knows it */
  char ip[64];
  uint16_t port;
  nm_mapping_kind mapping;        /* none: the observed address; else the mapped one */
  /* relay: which, and why the receiver pulls from it */
  char relay[NM_ID_LEN + 1];
  const nm_status_servant *relay_s; /* NULL when the relay is not in the status */
  nm_relay_reason reason;
  const char *note;               /* lost / none: why, in words */
} nmctl_path;

typedef struct {
  const nm_status_servant *peer;
  nmctl_path in;   /* the peer's lines to the servant */
  nmctl_path out;  /* the servant's lines to the peer */
} nmctl_peer_view;

typedef struct {
  const nm_status *st;
  const nm_status_servant *self;
  nmctl_peer_view *peers; /* every other listed servant, in the status's order */
  size_t count;
} nmctl_peers;

/* Finds the servant named name (or with that id) in st and works out its paths. Returns 0,
 * -ENOENT when no servant has that name or id, -ENOMEM. The view points into st. */
int nmctl_peers_build(const nm_status *st, const char *name, nmctl_peers *out);
void nmctl_peers_free(nmctl_peers *pv);

/* Whether the servant `of` counts `peer`'s complaints (peer cannot reach it): by id among
 * its <complaint>s at the threshold, or by name in unreached-by. */
int nmctl_peers_complains(const nm_status *st, const nm_status_servant *of,
                          const nm_status_servant *peer);

/* The table: a header about the servant, one row per peer, then why it is relayed. */
int nmctl_render_peers(FILE *out, const nmctl_peers *pv);
/* The same as JSON (pretty or compact), into a malloc'ed string; 0 or -ENOMEM. */
int nmctl_peers_to_json(const nmctl_peers *pv, int pretty, char **json);

#endif
