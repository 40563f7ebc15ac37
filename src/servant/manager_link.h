/* The servant's session with the connection manager (manager_link.c): resolve (off the
 * loop), connect over TLS pinned to the manager's key (from the invite or --manager-key: a
 * manager presenting another key is refused and never hears our hello), hello (with the
 * invite's secret), welcome, listen, heartbeat, keep the peer list current; on loss,
 * reconnect with backoff while chat with known peers goes on.
 *
 * With several managers (an overlay whose managers share a store: the invite's also=
 * fields, or several <connectionmgr>), one session at a time: when it fails (closed,
 * refused, TLS failure, no word for one heartbeat timeout) the next manager is tried at
 * once, wrapping; the backoff applies only after a whole round failed. Each manager is
 * pinned to its own key. Our id, our peers and our connections stay; the new manager's
 * first full list replaces the old one quietly (peers.c: no joined/left line for a peer in
 * both). What the manager sends flows
 * down from here: the list to the peer table, relay-assign to pull, relay-serve to relay
 * duty, "registered" to the port mapper. What goes up (complaints, the mapping, the relay
 * load) is sent through the functions below. */
#ifndef SV_MANAGER_LINK_H
#define SV_MANAGER_LINK_H

#include <stdint.h>
#include <uv.h>

#include "nm_backoff.h"
#include "nm_conn.h"
#include "nm_msg.h"

typedef struct servant servant;

/* The most peers a list may have, across its pages: what one servant keeps in memory for
 * the manager's list (about 1 kB each). A list past it is refused, the one held kept. */
#define SV_PEERS_TOTAL_MAX 200000

typedef enum {
  SV_MGR_IDLE = 0,
  SV_MGR_RESOLVING,
  SV_MGR_CONNECTING,
  SV_MGR_HELLO_SENT,
  SV_MGR_REGISTERED,
} sv_mgr_state;

typedef struct {
  sv_mgr_state state;
  nm_conn *conn;
  uv_getaddrinfo_t gai;
  uv_timer_t retry;
  uv_timer_t heartbeat;
  /* Fires timeout_s after we last heard from the manager (re-armed lazily when it has
   * spoken since): a silent manager is given up on after one timeout, not at the next
   * heartbeat after it. */
  uv_timer_t silence;
  /* Which of cfg.join.managers the session is with, and how many failed in a row since a
   * round began (the backoff waits only once all of them did). */
  size_t current;
  size_t round_failed;
  nm_backoff backoff; /* failures counts the attempts since we were last registered */
  unsigned heartbeat_s, timeout_s;
  char observed_ip[64];
  /* The local port our session leaves from (its socket shares it: SO_REUSEPORT): the
   * manager publishes where it sees that port behind our NAT, and punch dials leave from it. */
  uint16_t local_port;
  int had_session; /* a session was attempted before: reconnections leave from a fresh port */
  uint64_t last_heard_ms; /* anything from the manager: a silent one is given up on */
  uint64_t list_version;  /* of the peer list we hold (in a bounded mesh: of our view) */
  uint64_t overlay_servants; /* the heartbeat-ack's servants="N" (views), else 0 */
  int have_list;
  /* A paged list being put together (docs/protocol.md, "Paged lists"): version
   * paging_version, paging_next of paging_pages pages read so far. NULL when none. */
  nm_peerlist *paging;
  uint64_t paging_version;
  unsigned paging_pages, paging_next;
  nm_reach_state reach;   /* our own state, as the manager last published it */
  /* Said once per outage, not at every retry: why we are not registered. */
  int outage_logged;
  nm_fingerprint wrong_key_logged; /* the last wrong manager key we complained about */
  char refusal_logged[301];        /* the last refusal we logged */
  char failure[256];               /* why the last attempt failed, for the retry message */
} sv_manager_link;

void sv_manager_start(servant *sv);
/* Says bye (when connected) and closes the session for good. */
void sv_manager_stop(servant *sv);
int sv_manager_registered(servant *sv);
const char *sv_manager_observed_ip(servant *sv); /* "" until welcomed */
uint16_t sv_manager_local_port(servant *sv);     /* 0 until connected */
/* The manager's host and port as logs write them: "[2001:db8::1]:8585", "host:8585". */
#define SV_MGR_ADDR_STRLEN 272
const char *sv_manager_address(servant *sv, char *buf, size_t len);
/* The key the current manager must present (the one its entry pins). */
const nm_fingerprint *sv_manager_fp(servant *sv);
nm_reach_state sv_manager_reach(servant *sv);

/* Messages up to the manager; dropped while there is no session. */
void sv_manager_complain(servant *sv, const char *accused, nm_complaint_reason why);
void sv_manager_report_mapping(servant *sv, const nm_msg_mapping *m);
/* A heartbeat now, out of turn: whether every listed servant reaches us directly changed
 * (pull.c decides; every heartbeat carries it too). */
void sv_manager_report_direct(servant *sv);

#endif
