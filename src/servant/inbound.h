/* The listening side (inbound.c): peers connect here to publish to us, and relay clients
 * to pull from us. Every connection runs TLS (any key may complete the handshake) and must
 * then introduce itself within SV_FIRST_FRAME_MS: peer-hello, whose id must be the id of
 * the key it proved and be listed by the manager with that very key, makes it a peer that
 * publishes its own chat to us; pull, whose id must likewise be its key's, hands it to
 * relay duty (relay/relaying.h), which checks the manager named that client with that key.
 *
 * A peer-hello whose id (its key's) is not in our list yet is held, not refused: a servant
 * that has just registered is told of by a delta to the others before its own full list
 * arrives, so they connect to it before it lists them. The held connection keeps its
 * unauthenticated slot; chat it sends meanwhile waits in chat's pending queue (chat.h).
 * When the list names the id (sv_inbound_listed), with the key it proved, it becomes a
 * peer; with another key, or banned, it is refused; still unlisted after SV_HOLD_MS, it is
 * refused as "not in our peer list". A banned key is refused at once.
 *
 * Until then it is unauthenticated and holds a slot in nm_addrlimit (8 per address, 256 in
 * all): a flood of connections from anywhere is refused at accept, and can never push out
 * an identified peer, which holds no slot. Each connection is also checked against the ban
 * list (address at once, reverse name off the loop). An identified peer that sends nothing
 * for three heartbeat timeouts is closed; its publisher reconnects when it has a line. */
#ifndef SV_INBOUND_H
#define SV_INBOUND_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "nm_addrlimit.h"
#include "nm_conn.h"
#include "nm_log.h"
#include "relaying.h"

#define SV_FIRST_FRAME_MS 5000 /* after the TLS handshake: peer-hello or pull by then */
#define SV_HOLD_MS 5000        /* an unlisted peer-hello waits this long for the list */
#define SV_IDLE_TIMEOUTS 3     /* heartbeat timeouts an identified peer may stay silent */

typedef struct servant servant;

typedef enum {
  SV_IN_NEW = 0,  /* connected; its first frame says what it is */
  SV_IN_HELD,     /* said peer-hello with its key's id, which we do not list (yet) */
  SV_IN_PEER,     /* said peer-hello, with its listed key: publishes its chat to us */
  SV_IN_PULLING,  /* said pull: a relay client we forward to; it sends nothing more */
} sv_in_state;

typedef struct sv_in sv_in;
struct sv_in {
  nm_conn conn;
  servant *sv;
  sv_in_state state;
  char id[NM_ID_LEN + 1]; /* the peer's, once identified (or held: its proven key's) */
  char via[NM_NAME_MAX + 8]; /* "peer NAME", for log lines about its lines */
  int holds_slot;   /* counted in the addrlimit (not yet identified) */
  uint64_t last_frame_ms;
  uint64_t held_since_ms; /* SV_IN_HELD: when its peer-hello came */
  uv_getnameinfo_t name_req;
  int resolving;
  int closed;       /* the conn closed while the lookup was under way */
  rl_client client; /* relay duty's state while pulling */
  /* connection reversal: the peer asked for our lines on this connection (peer-hello
   * reverse="yes": it pulls from a relay) and we answered with our peer-hello; in the full
   * mesh we publish on it while we have no connection of our own to it, and never close it
   * for being idle (peers.c: sv_peers_inbound_reversed, sv_peers_keep_inbound) */
  int reverse;
  sv_in *prev, *next; /* every open inbound connection, so leaving can close them */
};

typedef struct {
  uv_tcp_t *listener; /* heap: a failed bind closes it and a new one is made */
  uint16_t port;      /* bound listening port, 0 until bound */
  sv_in *head;
  size_t count;
  nm_addrlimit unauth; /* slots of connections not yet identified */
  unsigned idle_ms;    /* an identified peer silent this long is closed; 0: never */
  /* What an unauthenticated stranger can make us log. */
  nm_log_rate refused_log, conn_log;
  nm_log_rate reverse_log; /* peers asking for reversal, as often as they connect */
} sv_inbound;

/* Sets up the per-address limits. Returns 0 or -ENOMEM. */
int sv_inbound_init(servant *sv);
/* Binds and listens on cfg.listen:port. Returns 0 or a negative uv code. */
int sv_listen(servant *sv, uint16_t port);
int sv_listening(servant *sv);       /* 1 once bound */
uint16_t sv_listen_port(servant *sv); /* 0 until bound */
/* The manager's heartbeat timeout: identified peers idle for SV_IDLE_TIMEOUTS of them are
 * closed. */
void sv_inbound_set_timeout(servant *sv, unsigned timeout_s);
/* Closes identified peers that have been silent too long, and refuses held peer-hellos
 * whose id is still not listed after SV_HOLD_MS. */
void sv_inbound_tick(servant *sv);
/* p (id, key, ban) is in the peer list now: connections held for its id are identified or
 * refused. */
struct sv_peer;
void sv_inbound_listed(servant *sv, const struct sv_peer *p);
/* Closes the peer connection id opened to us (it left, was banned, or its key changed).
 * reason NULL: quietly. */
void sv_inbound_drop(servant *sv, const char *id, const char *reason);
void sv_inbound_close(servant *sv);

#endif
