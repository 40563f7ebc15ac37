/* The connection manager's shared state: the sessions it holds and the peer list it
 * publishes. Modules: session.c (the session lifecycle and frame dispatcher, TLS and who may
 * say what), registry.c (who is listed, ports, the list and its deltas), complaints.c
 * (complaints in, a verdict out), relays.c (relay assignment and the pair path), status.c
 * (natmesh-ctl's view), admission.c (the admission store on disk), commands.c (the
 * subcommands on the state directory), main.c (options, keys, listening, timers); the pure
 * policies are verdict.c, relay_choice.c and cands.c (the candidate addresses published
 * for a servant). */
#ifndef NM_MANAGER_H
#define NM_MANAGER_H

#include <stdint.h>
#include <uv.h>
#include <uthash.h>

#include "mesh.h"
#include "admission.h"
#include "index.h"
#include "publish.h"
#include "views.h"
#include "nm_addrlimit.h"
#include "nm_config.h"
#include "nm_conn.h"
#include "nm_identity.h"
#include "nm_log.h"
#include "nm_msg.h"
#include "nm_notify.h"
#include "nm_peerlist.h"
#include "nm_proto.h"
#include "nm_tls.h"
#include "metrics.h"
#include "punch.h"
#include "verdict.h"

/* Servant and relay sessions one manager holds: --max-servants, by default what the file
 * limit allows (main.c, mgr__fd_budget) after the ctl sessions, the connections not yet
 * authenticated and MGR_FD_SPARE of its own; never more than MGR_SERVANTS_LIMIT. No frame
 * bounds it: lists and the status go in pages. */
#define MGR_SERVANTS_LIMIT 1000000
#define MGR_FD_SPARE 64
/* Changes within this many milliseconds go out as one delta (--delta-window-ms). */
#define MGR_DELTA_WINDOW_MS 20
#define MGR_DELTA_WINDOW_MAX_MS 10000
/* natmesh-ctl sessions at once: their own small cap, apart from the servants'. */
#define MGR_CTL_MAX 16
/* How long a session may stay silent after its TLS handshake before its hello (or a ctl's
 * status-request). */
#define MGR_FIRST_FRAME_MS 5000
/* --overlay and --manager-name: letters, digits, '.', '-', '_' */
#define MGR_OVERLAY_NAME_MAX 63
#define MGR_MANAGER_NAME_MAX 63

typedef struct {
  char listen[64];
  unsigned port;
  unsigned heartbeat_s;
  unsigned timeout_s;
  unsigned port_first, port_last;
  /* complaints and relays (see verdict.h) */
  unsigned complaint_threshold;   /* complaints per reporter that count */
  unsigned complaint_window_s;    /* complaints older than this expire */
  unsigned quorum_percent;        /* share of other live servants that must complain */
  /* keys and admission */
  char state_dir[1024];           /* "": nm_identity_default_dir(..., "manager") */
  char admission[16];             /* invite (default), allow or open */
  nm_keylist allow;               /* admitted in every mode (the only ones in allow mode) */
  nm_keylist relay_keys;          /* admitted and granted the relay role */
  nm_keylist admin_keys;          /* may ask for the status, besides the manager's own key */
  /* connections not yet authenticated (nm_addrlimit) */
  unsigned max_unauth_per_addr;
  unsigned max_unauth;
  /* --metrics ADDR:PORT: /metrics and the status page (metrics.c); "" is off */
  char metrics[80];
  unsigned max_servants;    /* 0: from the file limit */
  unsigned delta_window_ms; /* 0: every change at once */
  /* the bounded-degree mesh (neighbours.h): above mesh_above servants, degree mesh_degree */
  unsigned mesh_above;
  unsigned mesh_degree;
  /* several managers, one overlay (shared.h): --store URL ("" : none), --overlay NAME (its
   * keys' prefix), --manager-name NAME (how the others and the status name this one) */
  char store[256];
  char overlay[MGR_OVERLAY_NAME_MAX + 1];
  char manager_name[MGR_MANAGER_NAME_MAX + 1];
} mgr_config;

/* config_fields.c: the <manager> config file's elements. */
extern const nm_cfg_field mgr_config_fields[];
extern const size_t mgr_config_nfields;

/* A session moves forward only: NEW -> (CTL | WELCOMED | REPLACING) -> REGISTERED ->
 * RETIRED, and every session ends in RETIRED through mgr_session_retire(), the one place
 * that decides what its end does to the list, the complaints and the relays. The order
 * matters: the dispatch table allows each message in a range of states. */
typedef enum {
  MGR_SESSION_NEW = 0,    /* connected, nothing said yet */
  MGR_SESSION_WELCOMED,   /* hello accepted, waiting for listening; not listed */
  MGR_SESSION_REPLACING,  /* hello for a listed id: it holds that servant's list entry,
                             verdict and relay duty, and waits for listening */
  MGR_SESSION_REGISTERED, /* listening: in the peer list */
  MGR_SESSION_CTL,        /* a natmesh-ctl asking for status */
  MGR_SESSION_OBSERVER,   /* a registered servant's observe session over its other family:
                             answered, waiting for the servant to close it */
  MGR_SESSION_RETIRED,    /* ended; backs nothing, its connection is closing */
  MGR_SESSION_REMOTE,     /* not a session: a servant another manager of the overlay holds,
                             listed from the store (shared.h); no connection, never sent to */
} mgr_session_state;

const char *mgr_session_state_name(mgr_session_state s);

/* Why a session ends; mgr_session_retire() acts on it. */
typedef enum {
  MGR_RETIRE_CLOSED = 0, /* its connection closed or failed */
  MGR_RETIRE_BYE,        /* it said bye */
  MGR_RETIRE_TIMED_OUT,  /* nothing heard for the heartbeat timeout */
  MGR_RETIRE_REPLACED,   /* a new session of the same servant took its registration over */
  MGR_RETIRE_STOPPING,   /* the manager is stopping: nothing is published */
  MGR_RETIRE_REVOKED,    /* its key was revoked (natmesh-manager revoke) */
  MGR_RETIRE_MOVED,      /* another manager of the overlay holds the servant now: its list
                            entry goes to the remote entry (the successor), no leave is said */
} mgr_retire_how;

typedef struct manager manager;
struct mgr_session;

/* The published peer list (registry.c): the listed sessions in publishing order (pages are
 * slices of it) and its version, which counts changes. No entry is stored: each is built
 * from its session when encoded (mgr_session_to_peer), and a session keeps only a digest
 * of what was last published for it, to know whether a change is due. */
typedef struct {
  uint64_t version;
  struct mgr_session **at;
  size_t count, cap;
  size_t max; /* entries at most (the servant cap) */
} mgr_list;

typedef struct mgr_session {
  nm_conn conn;
  manager *mgr;
  mgr_session_state state;
  /* the key it proved in the TLS handshake (set once secure): its fingerprint, and the raw
   * key, published in the list (<key>) and sent in relay-assign and relay-serve */
  int secure; /* its key is conn.peer_fp (nm_conn keeps it; not copied here) */
  uint8_t key[NM_PUBKEY_LEN];
  /* holds a slot in the manager's nm_addrlimit: connected, not yet authenticated */
  int unauth;
  char id[NM_ID_LEN + 1];
  char name[NM_NAME_MAX + 1];
  nm_role role;
  uint16_t port;        /* the port it listens on */
  uint16_t last_busy;   /* last port it could not bind, so assignment moves past it */
  uint64_t connected_ms;
  uint64_t last_heard_ms;
  /* port mapping, as reported by the servant */
  nm_mapping_kind mapping;
  char ext_ip[NM_IP_STRLEN];
  uint16_t ext_port;
  nm_reach_state reach;
  /* its own interface addresses, from its listening: candidates peers behind the same
   * router reach it by (mgr_session_cands) */
  size_t nlocal;
  char (*local)[NM_IP_STRLEN]; /* nlocal of them, allocated (NULL when none) */
  /* the address it came from over its other family, by an observe session ("" until
   * then): published as a second observed candidate */
  char other_ip[NM_IP_STRLEN];
  /* when relayed: the relay it pulls from and its token there (relays.c) */
  char relay_id[NM_ID_LEN + 1];
  char relay_token[MGR_TOKEN_LEN + 1];
  /* the pair path (relays.c, mgr_relay_pair): some servants cannot reach it, not a quorum;
   * it stays direct or mapped and pulls their lines from relay_id ("" while no relay can
   * serve it: then it is reported unserved). Kept for the session, or until a mapping. */
  int pair;
  /* a provisional relay (provisional.c): it joined from behind NAT with no usable mapping,
   * so it pulls from relay_id at once, before any verdict; its reach stays direct. Since
   * provisional_ms; ends with a mapping, a verdict, or a complaint window without one. */
  int provisional;
  uint64_t provisional_ms;
  /* its relay on standby (relays.c, mgr_relay_on_direct): every listed servant reaches it
   * directly, so it does not pull; relay_id and relay_token are kept for it (relay_id "" if
   * that relay left meanwhile) but its relay does not serve it and counts the slot free.
   * standby_ms: when it last went on or came back from standby. */
  int standby;
  uint64_t standby_ms;
  /* complaints others made about this servant (complaints.c) */
  mgr_complaints complaints;
  /* relay duty: how many clients it will serve, from its hello; how many it has is
   * counted from the clients' relay_id (mgr_relay_clients), never kept here */
  unsigned max_clients;
  uint64_t load_bytes_in, load_bytes_out, load_drops, load_attached; /* its relay-load */
  struct mgr_session *prev, *next; /* every session, in the manager's list */
  /* index.h: the table of listed sessions by id, the port it holds there (held_port at
   * conn.peer_ip, while holds_port), and the relayed and accused lists */
  UT_hash_handle hh_id;
  int in_listed, holds_port, in_relayed, in_accused, in_relays;
  struct mgr_session *rly_prev, *rly_next;
  uint64_t pool_mark; /* registry.c, mgr_relay_pool: already in this pick's pool */
  /* publish.h: owed a full list at the window's end (on the waiters' list), and the last
   * window that served it one (it gets no delta from that window) */
  int list_waiting;
  struct mgr_session *wait_prev, *wait_next;
  uint64_t list_flush;
  /* registry.c: its place in the published list (while in_list), and digests of the entry
   * and of the dial address last published for it */
  int in_list;
  size_t list_at;
  uint64_t pub_digest, pub_dial;
  /* views.h: in a bounded mesh, the view it was sent and its version */
  mgr_view view;
  int views_ok; /* its hello said views="1": it can take a view (else the whole list) */
  uint16_t held_port;
  struct mgr_session *rel_prev, *rel_next, *acc_prev, *acc_next;
  /* shared.h: a remote entry's own part (NULL for a session of ours); for ours, the last
   * snapshot that held its record as it is */
  struct mgr_remote *remote;
  uint64_t shared_seen;
  /* complaints of this servant passed on to other managers in the current heartbeat
   * interval, from complain_window_ms (shared.c: at most MGR_SHARED_COMPLAINTS_PER_HB) */
  uint64_t complain_window_ms;
  unsigned complain_forwarded;
} mgr_session;

struct manager {
  uv_loop_t *loop;
  uv_tcp_t server;
  uv_timer_t sweep;
  uv_signal_t sigint, sigterm;
  nm_notify notify; /* systemd: READY, STATUS, STOPPING, watchdog (main.c) */
  mgr_config cfg;
  mgr_session *sessions; /* newest first */
  mgr_session *sessions_tail; /* the oldest */
  size_t nsessions;
  uint64_t pool_picks; /* mgr_relay_pool calls, marking its sessions */
  mgr_index index; /* listed sessions by id, held ports, counts, relayed and accused (index.h) */
  mgr_list list; /* what is published; list.version counts changes */
  size_t max_servants; /* servant and relay sessions at once (MGR_SERVANTS_LIMIT) */
  mgr_publisher pub; /* the delta window, the lists owed, the shared pages (publish.h) */
  unsigned next_port;
  /* verdicts of servants whose session ended without bye, for timeout_s (verdict.h) */
  mgr_verdict_memory verdicts;
  /* pairs punched, with which endpoints (punch.h) */
  mgr_punch_memory punches;
  int stopping;
  /* keys, TLS and admission */
  nm_identity identity;
  nm_tls_ctx tls;
  mgr_admission admission;
  nm_addrlimit unauth; /* connections not yet authenticated, per address and in all */
  /* warnings anyone can cause, rate-limited (nm_log_ratelimited) */
  nm_log_rate log_accepted; /* "connection from" */
  nm_log_rate log_refused;  /* connections refused at accept */
  nm_log_rate log_unauth;   /* what unauthenticated sessions make their conn log */
  nm_log_rate log_denied;   /* refused hellos and status-requests */
  nm_log_rate log_reports;  /* what admitted servants report as often as they like (mapping, busy ports) */
  nm_log_rate log_pair;     /* pair paths arranged (a lone liar can cause one per servant) */
  nm_log_rate log_unserved; /* pairs no relay can serve: errors, repeated while it lasts */
  nm_log_rate log_mesh;     /* the shared mesh's sets: unreadable ones read, chunks not written */
  /* the manager's own addresses (interfaces, with its port), both families when it listens
   * on "::": a welcome names those of the family the session did not use, so a dual-stack
   * servant can show itself over that family too (observe) */
  size_t nown;
  nm_endpoint own[NM_MANAGER_ADDRS_MAX * 2];
  /* what it counts (metrics.h), and the --metrics listener when there is one */
  mgr_stats stats;
  struct mgr_metrics *metrics;
  /* the bounded-degree mesh over the servants (neighbours.h, mesh.h) */
  mgr_mesh mesh;
  /* views (views.h): per id, the sessions whose view holds it; what views sent */
  struct mgr_watch *watch;
  uint64_t views_full_sent, views_deltas_sent;
  int views_in_flush; /* publish.c's flush runs the views itself */
  int mesh_ready, mesh_on;
  /* neighbours owed, sent when the delta window closes (after the entries they name):
   * everyone's after a switch (mesh_switched), and these sessions' own set once (a
   * newcomer, a session that took a registration over) */
  int mesh_switched;
  uint64_t trimmed_after_lists; /* pub.lists_sent at the last malloc_trim (main.c) */
  char (*mesh_owed)[NM_ID_LEN + 1];
  size_t mesh_nowed, mesh_owed_cap;
  /* several managers (shared.h): NULL without --store */
  struct mgr_shared *shared;
  /* leaves repaired in this window: how many, and the last one's name (for the log) */
  unsigned mesh_nleft;
  char mesh_left[NM_NAME_MAX + 1];
  /* With a store (neighbours.h, "several managers"): whether this manager draws the shared
   * graph now; the nodes it removed since it last wrote (written as gone); the whole graph
   * is owed to the store (it just took the lead). */
  int mesh_follows, mesh_leading, mesh_publish_all;
  char (*mesh_gone)[NM_ID_LEN + 1];
  size_t mesh_ngone, mesh_gone_cap;
};

/* registry.c */
/* Whether s holds a list entry: registered, or taking a registration over. */
int mgr_session_listed(const mgr_session *s);
/* The registered session with id, or NULL. */
mgr_session *mgr_find_registered(manager *m, const char *id);
/* The session that holds id's list entry (registered or replacing), or NULL. */
mgr_session *mgr_find_listed(manager *m, const char *id);
uint16_t mgr_assign_port(manager *m, const char *ip, uint16_t avoid);
/* Adds or updates s's entry in the list and publishes the change to every registered
 * session (so not to s while it is joining: it gets the full list instead). */
void mgr_publish_upsert(manager *m, mgr_session *s);
/* s (registered now) joins or rejoins the list: it gets the whole list first, then every
 * other registered session the delta. */
void mgr_publish_join(manager *m, mgr_session *s);
/* Removes s's entry (if listed) and publishes the leave. */
void mgr_publish_leave(manager *m, mgr_session *s, const char *reason);
void mgr_send_full_list(manager *m, mgr_session *s);
/* The list slot moves from old to s (a take-over), digests and all. */
void mgr_list_hand_over(manager *m, mgr_session *old, mgr_session *s);
/* s leaves the list without a leave published (the manager is stopping), before it is freed. */
void mgr_list_forget(manager *m, mgr_session *s);
/* A remote entry (shared.h) joins the list or its entry changed; 0 or -1 (list full, said). */
int mgr_list_put_remote(manager *m, mgr_session *s);
/* A remote entry leaves the list (nothing is published: the caller does). */
void mgr_list_drop_remote(manager *m, mgr_session *s);
/* Whether s (in the list) would now be dialled elsewhere than its published entry says. */
int mgr_session_moved(const mgr_session *s);
/* The registered sessions a relay choice for s must look at, into *out (malloc'ed; the
 * caller frees): s itself, every dedicated relay, every session serving clients, the one
 * prefer_id names, and servants from the longest connected on up to the first that could
 * serve s with no client yet (who wins among servants when no dedicated relay can). Not
 * every session: mgr_relay_choose picks the same from these as from all of them (ties on
 * the connection's millisecond apart). Returns how many, or -ENOMEM. */
long mgr_relay_pool(manager *m, mgr_session *s, const char *prefer_id, mgr_session ***out);
void mgr_session_to_peer(const mgr_session *s, nm_peer *p);
/* s's candidate addresses in the manager's order (docs/protocol.md, "Candidates"): its
 * mapped external address, its observed address, then its own interface addresses, each
 * with the port peers reach it on; deduplicated, at most NM_CANDS_MAX, only
 * nm_addr_is_candidate addresses. Returns how many were written to cands. */
size_t mgr_session_cands(const mgr_session *s, nm_cand cands[NM_CANDS_MAX]);
/* The rules complaints are judged by, from the config. */
mgr_verdict_rules mgr_rules(const manager *m);

/* session.c */
void mgr_on_connection(uv_stream_t *server, int status);
/* The one end of every session (see mgr_retire_how). successor: the session taking the
 * registration over, with MGR_RETIRE_REPLACED only. Closes the connection unless it is
 * closing already. Idempotent. */
void mgr_session_retire(mgr_session *s, mgr_retire_how how, mgr_session *successor);
/* reporter (ours, or a remote entry whose holder passed its complaint on) cannot reach
 * accused_id: counted, judged, acted on. */
void mgr_session_complaint(manager *m, mgr_session *reporter, const char *accused_id);

/* Servant and relay sessions (welcomed, replacing or registered), and ctl sessions. */
size_t mgr_servant_sessions(const manager *m);
size_t mgr_ctl_sessions(const manager *m);
/* Whether the key is an operator's: the manager's own or an --admin-key. */
int mgr_is_operator(const manager *m, const nm_fingerprint *fp);
/* Sessions whose key is now revoked end (after the store was read again). */
void mgr_sessions_drop_revoked(manager *m);

/* status.c */
void mgr_send_status(manager *m, mgr_session *asker);
/* The status natmesh-ctl gets, into st (initialized): for /status.json. 0 or -ENOMEM. */
struct nm_status;
int mgr_status_collect(manager *m, struct nm_status *st);

uint64_t mgr_now_ms(manager *m);

#endif
