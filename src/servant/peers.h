/* The peer table: one record per servant in the manager's list, each with the outbound
 * connection this servant publishes its chat on (peers.c), over TLS pinned to the key the
 * list gives for that peer. Fed by the manager link; it reports a peer it cannot reach (or
 * that answers with another key) through the on_unreachable hook, so it never calls back
 * into the manager link. */
#ifndef SV_PEERS_H
#define SV_PEERS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nm_backoff.h"
#include "nm_cand.h"
#include "nm_conn.h"
#include "nm_identity.h"
#include "nm_lineq.h"
#include "nm_log.h"
#include "nm_msg.h"
#include "nm_peerlist.h"

#define SV_BACKLOG_MAX 1000                 /* chat lines held for a peer not yet connected */
#define SV_BACKLOG_BYTES_MAX (4u << 20)     /* ... and bytes */
#define SV_BACKLOG_TTL_MS 60000             /* ... for at most this long */
/* Lines sent in a connection's first moments are kept this long: a peer that has not yet
 * heard from the manager that we joined refuses our peer-hello, and those lines go back to
 * the backlog for the next attempt (receivers show each line once). */
#define SV_CONFIRM_MS 2000

typedef struct servant servant;
typedef struct sv_peer sv_peer;

/* An outbound connection to a peer; heap-allocated so it can outlive the peer record
 * while libuv closes it. It sends our lines; it takes chat only from the peer it reached
 * (in a bounded mesh, a neighbour sends its lines back on it). While a dial
 * round runs, each candidate tried has one (attempt: its index in the round); the first to
 * complete TLS with the peer's key becomes the peer's connection (attempt -1). */
typedef struct {
  nm_conn conn;
  servant *sv;
  sv_peer *peer; /* NULL once the peer record is gone, or the attempt lost */
  int attempt;   /* index in peer->round while dialling, -1 once it is peer->out, -2 while
                    it is a punch attempt (peer->punch_try) */
  /* A punched connection (a simultaneous open) is the only one both sides dialled: it
   * carries both sides' lines, each side's peer-hello first (punch_state 0: waiting for it;
   * 1: the peer said it). */
  int punched;
  int punch_state;
  /* Connection reversal: we asked the peer for its lines on this connection (peer-hello
   * reverse="yes", because we pull from a relay); like a punched one, it carries them once
   * the peer's peer-hello came (punch_state 1). */
  int reverse;
} sv_out;

struct sv_peer {
  nm_peer info;
  nm_fingerprint fp;          /* of info.key: what its TLS key must be */
  int listed;                 /* in the manager's current list */
  uint64_t unlisted_since_ms; /* when a full list stopped naming it */
  int banned;                 /* its key, its address or that address's name is banned */
  sv_out *out;                /* the connection we publish on (a round's winner) */
  int out_ready;
  /* Dialling (nm_cand.h): one Happy Eyeballs round over its candidates at a time. */
  int dialing;
  nm_cand_round round;
  sv_out *tries[NM_CAND_DIAL_MAX]; /* attempts in flight, by index in round */
  uint64_t dial_wake_ms;      /* when the round starts its next attempt (0: none due) */
  nm_cand_memory cand_memory; /* each candidate's failures: reset when the peer moves */
  nm_complaint_reason round_why; /* the primary's failure, else the first one */
  int round_why_set;
  char round_err[128];        /* ... as text, for the log */
  nm_cand path;               /* the candidate out is connected at */
  size_t failed_cands;        /* candidates the last failed round tried (0: none failed) */
  int neighbour;              /* in a bounded mesh: one of the peers we keep a connection to */
  int relays_neighbour;       /* ... or the relay a neighbour we cannot reach pulls from: what
                                 we would send that neighbour goes to its relay */
  int unwanted;               /* in a bounded mesh, none of those: no connection to it */
  nm_conn *in_conn;           /* its identified connection to us (inbound.c), if any: in a
                                 bounded mesh, the one we send on to a neighbour we do not
                                 dial (a pair of neighbours makes one connection); in the
                                 full mesh, the one we send on when it asked (reversal) */
  int in_reverse;             /* in_conn asked for our lines (peer-hello reverse="yes") and we
                                 answered: the full mesh sends there while we have no
                                 connection of our own to it */
  int idle;                   /* our connection was closed after use (the peer closes idle
                                 ones): reconnect when there is something to send */
  uint64_t next_attempt_ms;
  nm_backoff backoff;
  nm_lineq backlog;
  nm_lineq unconfirmed;       /* sent on a connection younger than SV_CONFIRM_MS */
  uint64_t out_since_ms;      /* when the connection came up */
  /* Punching (nm_punch.h): the manager asked both of us to dial each other's observed
   * endpoint; NM_PUNCH_ATTEMPTS dials, NM_PUNCH_INTERVAL_MS apart, from our session's port. */
  int punching;
  char punch_ip[64];
  uint16_t punch_port;
  uint64_t punch_at_ms;       /* when the next attempt starts */
  int punch_attempts;         /* started so far */
  sv_out *punch_try;          /* the attempt in flight */
  char punch_err[128];        /* why the last attempt failed */
  sv_peer *next;
};

typedef struct {
  sv_peer *head;
  unsigned heartbeat_s, timeout_s; /* the manager's, from its welcome; 0 until then */
  /* A peer could not be reached (refused, timeout, reset, another key): the manager link
   * turns this into a complaint. Set by whoever wires the servant together. */
  void (*on_unreachable)(servant *sv, const sv_peer *p, nm_complaint_reason why);
  nm_log_rate wrong_key_log;
  nm_log_rate full_log; /* a peer not reading: in a bounded mesh, once per line it misses */
  char our_ip[NM_IP_STRLEN]; /* our address as the manager sees it (its welcome), or "" */
  uv_timer_t dial_timer;     /* the next stagger deadline of any dialling peer */
  int dial_timer_open;
  uv_timer_t punch_timer;    /* the next punch attempt of any peer */
  int punch_timer_open;
  /* The bounded mesh (the manager's neighbours): while mesh is set we connect only to the
   * neighbours named here (and to dedicated relays), and forward lines to them. */
  int mesh;
  uint64_t mesh_version;
  size_t nneighbours;
  char neighbours[NM_NEIGHBOURS_MAX][NM_ID_LEN + 1];
} sv_peers;

void sv_peers_init(servant *sv);
sv_peer *sv_peer_find(servant *sv, const char *id);
/* The peer's name for log lines, or NULL when it is not in the table. */
const char *sv_peer_name(servant *sv, const char *id);
size_t sv_peers_count(servant *sv); /* listed peers */
int sv_peers_any(servant *sv);      /* 1 if any record, listed or in its grace period */
void sv_peers_set_timing(servant *sv, unsigned heartbeat_s, unsigned timeout_s);
/* Our own address as the manager observed it: a peer seen at the same one is very likely
 * on our LAN, and its local candidates are dialled first. */
void sv_peers_set_observed(servant *sv, const char *ip);
void sv_peers_apply_full(servant *sv, const nm_peerlist *list);
void sv_peers_upsert(servant *sv, const nm_peer *p);
/* reason NULL: it left our view only (views), not the overlay: said at debug level. */
void sv_peers_remove(servant *sv, const char *id, const char *reason);
/* Queues one chat frame's payload (a line of ours) to every peer we keep a connection to
 * (or its backlog): in the full mesh every listed peer, in a bounded mesh our neighbours
 * and the dedicated relays. */
void sv_peers_publish(servant *sv, const char *payload, size_t len);
/* In a bounded mesh: a line of origin we accepted for the first time, to every neighbour
 * but origin and from (the peer it came from; NULL if from a relay or unknown), with the
 * same limits as our own lines. Nothing in the full mesh. */
void sv_peers_forward(servant *sv, const char *payload, size_t len, const char *origin, const char *from);
/* The manager's neighbours: no ids is the full mesh. */
void sv_peers_set_neighbours(servant *sv, const nm_msg_neighbours *n);
/* inbound.c: peer id's connection to us was identified (peer-hello) / has closed. */
void sv_peers_inbound_up(servant *sv, const char *id, nm_conn *c);
void sv_peers_inbound_down(servant *sv, const char *id, nm_conn *c);
/* In a bounded mesh, id is a neighbour: its connection to us is kept however quiet (we may
 * be the one sending on it). */
int sv_peers_keep_inbound(servant *sv, const char *id);
/* inbound.c: peer id asked for our lines on its connection c to us and we answered
 * (reversal): in the full mesh they go there while we have no connection of our own to it. */
void sv_peers_inbound_reversed(servant *sv, const char *id, nm_conn *c);
/* Whether we are in a bounded mesh (then any listed peer's connection may carry lines of
 * other origins: each is verified with its origin's key). */
int sv_peers_meshed(servant *sv);
void sv_peers_tick(servant *sv);
/* The manager's punch: dial the peer's observed endpoint at the moment it says, as the peer
 * dials ours (a TCP simultaneous open); TLS roles by key (nm_punch_tls_role). */
void sv_peers_punch(servant *sv, const nm_msg_punch *m);
void sv_peers_close_all(servant *sv);
/* One line per listed peer (for /peers), with the path to it: "direct via ADDR (kind)",
 * or "no direct path (N candidates failed)" and the relay between us if there is one;
 * returns how many. */
size_t sv_peers_print(servant *sv, FILE *out);
/* The ids of listed peers whose lines reach us directly both ways: a punched or reversed
 * connection whose peer-hello came. Writes at most max into ids, in table order; *count how many. */
void sv_peers_direct(servant *sv, char (*ids)[NM_ID_LEN + 1], size_t max, size_t *count);
/* We started pulling from a relay (or the mesh is full again): on each connection of ours
 * that did not ask yet, ask the peer for its lines too (reversal). Only in the full mesh: a
 * bounded mesh's neighbours send back on our connection anyway, and we keep none to others. */
void sv_peers_ask_reverse(servant *sv);
/* Whether every listed servant whose lines we take (not banned) reaches us directly over a
 * punched connection (dedicated relays publish nothing: not counted), and there is at least
 * one. pull.c: our relay on standby. */
int sv_peers_all_direct(servant *sv);

#endif
