/* nm_status: the manager's view of the overlay, as natmesh-ctl asks for it (the status
 * message, docs/protocol.md "natmesh-ctl and the manager"), as plain data.
 *
 * The manager fills one (nm_status_add per registered servant) and sends it with
 * nm_msg_send(NM_MSG_STATUS); natmesh-ctl reads one with nm_status_parse and renders it.
 *
 * Role, state and mapping are enums: the document carries their wire names, and a name this
 * version does not know is refused like any other invalid field. Names and relay names stay
 * free text (at most NM_STATUS_TEXT_MAX bytes): a status comes from a manager the operator
 * chose to ask, and natmesh-ctl shows them escaped rather than trusting them. Addresses are
 * literal IPs or empty. The number of servants is capped whatever the document's own
 * servants="N" says; unknown attributes and elements are ignored, as the protocol asks. */
#ifndef NM_STATUS_H
#define NM_STATUS_H

#include <stddef.h>
#include <stdint.h>
#include <libxml/tree.h>

#include "nm_peerlist.h"
#include "nm_proto.h"

/* Servants one status may list in all (natmesh-ctl assembles pages up to this many; a
 * manager holds at most MGR_SERVANTS_LIMIT). One document (one frame) holds at most a page
 * when the manager has more: <status ... servants="TOTAL" page="K" pages="P">, K from 0,
 * the pages back to back (docs/protocol.md, "The status"). */
#define NM_STATUS_SERVANTS_MAX 1000000
#define NM_STATUS_PAGE 512
#define NM_STATUS_PAGES_MAX (NM_STATUS_SERVANTS_MAX / NM_STATUS_PAGE + 1)
#define NM_STATUS_TEXT_MAX 64 /* bytes of a name or relay name */
/* bytes of a list of names ("alice bob +3"): unreached-by, unserved */
#define NM_STATUS_NAMES_MAX 600
/* <complaint> children of one <servant> kept (the most recent first); more are counted in
 * complainers but not listed */
#define NM_STATUS_COMPLAINTS_MAX 8
/* Since issue 14 (several managers sharing one overlay through a store): the managers a
 * <store> element lists (more are counted in nmanagers_total but not kept), and the bytes of
 * its url (a sentinel:// URL names several sentinels). */
#define NM_STATUS_MANAGERS_MAX 32
#define NM_STATUS_URL_MAX 512

/* One reporter's complaints about a servant (a <complaint> child of <servant>): who, how
 * many of its complaints are live (within the manager's window), and how long ago the
 * manager counted the last one. count 0 means they have all expired. */
typedef struct {
  char from[NM_ID_LEN + 1];
  unsigned count;
  uint64_t last_ms;
} nm_status_complaint;

/* Why a servant pulls from a relay (relay-reason): judged unreachable by a quorum, the
 * pair path (a few servants cannot reach it; it stays direct or mapped), or provisional (a
 * newcomer behind NAT with no port mapping yet, before any verdict; it stays direct). */
typedef enum {
  NM_RELAY_REASON_NONE = 0, /* no relay (attribute absent) */
  NM_RELAY_REASON_PAIR,
  NM_RELAY_REASON_SUSPICIOUS,
  NM_RELAY_REASON_PROVISIONAL,
} nm_relay_reason;

/* "pair", "suspicious", "provisional"; "" for none. */
const char *nm_relay_reason_name(nm_relay_reason r);

typedef struct {
  char id[NM_ID_LEN + 1];
  char name[NM_STATUS_TEXT_MAX + 1];
  nm_role role;
  char ip[64];                 /* observed address ("" when unknown) */
  uint16_t port;               /* listening port */
  char dial_ip[64];            /* what peers dial; decode: defaults to ip */
  uint16_t dial_port;          /* decode: defaults to port */
  nm_reach_state state;
  nm_mapping_kind mapping;
  char ext_ip[64];             /* "" unless mapped */
  uint16_t ext_port;
  char relay[NM_ID_LEN + 1];   /* "" unless relayed */
  char relay_name[NM_STATUS_TEXT_MAX + 1];
  nm_relay_reason relay_reason;  /* why it has a relay (none when relay is "") */
  /* the name of the relay kept for it on standby (relay-standby, since issue 12): every
   * listed servant reaches it directly, so it pulls from none (relay is ""); "" otherwise */
  char relay_standby[NM_STATUS_TEXT_MAX + 1];
  /* Space-separated names (free text like a name): the servants that cannot reach it (their
   * complaints counted), and of those the ones no relay serves it for (a pair left
   * unserved: their lines do not reach it). "" when none. */
  char unreached_by[NM_STATUS_NAMES_MAX + 1];
  char unserved[NM_STATUS_NAMES_MAX + 1];
  uint64_t last_heartbeat_ms;  /* how long ago the manager heard from it */
  int has_last_heartbeat;      /* last_heartbeat_ms is known (sent only when set) */
  uint64_t connected_s;
  unsigned complaints;         /* reporters at or over the threshold */
  unsigned clients;            /* servants the manager assigned it as a relay */
  unsigned max_clients;
  uint64_t attached;           /* from its relay-load: clients connected and pulling */
  uint64_t bytes_in, bytes_out, drops;
  /* Since issue 11: who complained about it (bounded; see NM_STATUS_COMPLAINTS_MAX) and how
   * many reporters there are in all (complainers >= ncomplaint). */
  nm_status_complaint complaint[NM_STATUS_COMPLAINTS_MAX];
  unsigned ncomplaint;
  unsigned complainers;
  /* Since issue 14: the name of the manager holding its session (its "holder": with a
   * store, a servant registers with one of the overlay's managers and the others list it
   * from the store); "" from a manager without a store. Free text like a name. */
  char manager[NM_STATUS_TEXT_MAX + 1];
} nm_status_servant;

/* The store's state as the manager sees it: it answers (up) or not (down). */
typedef enum {
  NM_STORE_DOWN = 0, /* until the manager says otherwise */
  NM_STORE_UP,
} nm_store_state;

/* "up", "down". */
const char *nm_store_state_name(nm_store_state s);

/* One of the overlay's managers as the store lists them (each announces itself every
 * second): its name, where servants reach it, and how long ago it last announced. */
typedef struct {
  char name[NM_STATUS_TEXT_MAX + 1];
  char addr[64];           /* literal IP ("" when unknown) */
  uint16_t port;
  uint64_t last_seen_ms;   /* how long ago it announced itself */
  int has_last_seen;       /* last_seen_ms is known (sent only when set) */
} nm_status_manager;

/* The <store> element (since issue 14): present only when the manager runs with --store.
 * url as configured (IP literals: redis://IP:PORT or sentinel://IP:PORT,.../MASTER), the
 * state, the primary now used ("IP:PORT", "" while down), and the managers it lists. */
typedef struct {
  int present;
  char url[NM_STATUS_URL_MAX + 1];
  nm_store_state state;
  char primary[NM_STATUS_TEXT_MAX + 1];
  char mesh_leader[NM_STATUS_TEXT_MAX + 1]; /* the manager drawing the shared mesh ("" unknown) */
  nm_status_manager managers[NM_STATUS_MANAGERS_MAX];
  unsigned nmanagers;
  unsigned nmanagers_total; /* the managers the store lists (>= nmanagers) */
} nm_status_store;

typedef struct nm_status {
  uint64_t version;    /* the peer list version */
  unsigned heartbeat;  /* seconds */
  unsigned timeout;    /* seconds */
  /* The manager's complaint rules (issue 11; 0 when the manager does not say): live
   * complaints a reporter needs to count, and how long a complaint stays live. */
  unsigned complaint_threshold;
  unsigned complaint_window_s;
  nm_status_store store; /* store.present 0 for a manager without a store */
  nm_status_servant *servants;
  size_t count;
  size_t cap;
} nm_status;

void nm_status_init(nm_status *st);
/* Frees the servants; st may be reused after nm_status_init or another fill. */
void nm_status_close(nm_status *st);

/* Appends a servant with defaults (role servant, state unknown, mapping none, everything
 * else zero or empty) and returns it for the caller to fill, or NULL when out of memory
 * or when NM_STATUS_SERVANTS_MAX are listed. The pointer is valid until the next add. */
nm_status_servant *nm_status_add(nm_status *st);

/* Appends a manager to st->store (marking the store present) and returns it for the caller
 * to fill, or NULL past NM_STATUS_MANAGERS_MAX (still counted in nmanagers_total). */
nm_status_manager *nm_status_add_manager(nm_status *st);

/* Whether some listed servant names its manager (natmesh-ctl's MANAGER column). */
int nm_status_has_managers(const nm_status *st);

/* The servant with this id, or NULL. */
const nm_status_servant *nm_status_find(const nm_status *st, const char *id);

/* The status document, built through libxml2's escaping writer, into a malloc'ed buffer
 * (caller frees). Returns 0, -EINVAL for a field the manager should never send (an invalid
 * id or address, a name over NM_STATUS_TEXT_MAX or not valid UTF-8 text, an enum out of
 * range) or -ENOMEM. */
int nm_status_encode(const nm_status *st, char **out, size_t *outlen);
/* Page page of pages (2 or more) of a status listing total servants: st holds this page's
 * (at most NM_STATUS_PAGE). As nm_status_encode otherwise. */
int nm_status_encode_page(const nm_status *st, unsigned page, unsigned pages, size_t total, char **out,
                          size_t *outlen);

/* Fills st (closed first) from a parsed document whose root is <status>. Returns 0, or
 * NM_EMSG / -ENOMEM with a reason naming the servant and the field in err:
 * "status: servant 3f9a0c1d2e4b5a69: invalid port \"70000\"". On failure st is empty. */
int nm_status_from_doc(xmlDoc *doc, nm_status *st, char *err, size_t errlen);

/* Parses buf[0..len) with nm_xml_parse and fills st; on success *doc_out (when non-NULL)
 * receives the document (natmesh-ctl prints it as received), which the caller frees with
 * xmlFreeDoc. */
int nm_status_parse(const char *buf, size_t len, nm_status *st, xmlDoc **doc_out, char *err,
                    size_t errlen);
/* The same with another size cap: a status natmesh-ctl put together from pages (each page
 * was at most a frame) may be larger than one document may. NM_STATUS_DOC_MAX is the cap
 * natmesh-ctl uses. */
#define NM_STATUS_DOC_MAX (256u * 1024u * 1024u)
int nm_status_parse_max(const char *buf, size_t len, size_t max, nm_status *st, xmlDoc **doc_out, char *err,
                        size_t errlen);

#endif
