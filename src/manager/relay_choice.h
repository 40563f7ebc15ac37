/* The relay choice, as pure policy: which of the candidates serves a servant that peers
 * cannot reach. The caller describes every registered session as a candidate record; no
 * sessions or sockets here, so tests/unit/unit_relay_choice.c checks every rule.
 *
 * A candidate can serve when it is not the client itself, is reachable (direct or mapped:
 * never suspicious or relayed), nobody currently complains about it (it would likely be
 * the next suspect), it is not excluded for this client (for a pair path: one of the
 * reporters that cannot reach the client, or one the client complained about itself), and
 * it has room (clients < max_clients). Among those: the preferred
 * one (the relay the client had before it reconnected) if it can serve; otherwise
 * dedicated relays before servants, then the fewest clients, then the one connected the
 * longest (a newcomer, maybe one of many keys an attacker made in an open overlay, does not
 * jump the queue of servants that have been serving all along), then the first listed. */
#ifndef NM_MANAGER_RELAY_CHOICE_H
#define NM_MANAGER_RELAY_CHOICE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  int is_client;        /* the servant looking for a relay */
  int dedicated;        /* a natmesh-relay (role relay) rather than a servant */
  int reachable;        /* direct or mapped */
  int complained_about; /* some reporter has reached the complaint threshold about it */
  int excluded;         /* cannot serve this client: one side of the pair it cannot connect */
  int preferred;        /* the relay the client had, kept when it still can serve */
  unsigned clients;     /* servants assigned to it now */
  unsigned max_clients; /* how many it will serve (from its hello) */
  uint64_t connected_ms; /* how long its session has lasted */
} mgr_relay_candidate;

/* Whether c could serve one more client. */
int mgr_relay_can_serve(const mgr_relay_candidate *c);

/* The index of the chosen candidate among c[0..n), or -1 when none can serve. */
int mgr_relay_choose(const mgr_relay_candidate *c, size_t n);

/* Standby (docs/protocol.md, "Standby"): what a client's heartbeat changes. */
typedef enum {
  MGR_STANDBY_KEEP = 0, /* nothing changes */
  MGR_STANDBY_ENTER,    /* its relay goes on standby: the slot is freed, relay and token kept */
  MGR_STANDBY_LEAVE,    /* it pulls again, at once */
} mgr_standby_step;

typedef struct {
  int has_relay;      /* a relay is kept for it (pulling, or on standby) */
  int standby;        /* its relay is on standby now */
  int all_direct;     /* its heartbeat said direct="all" */
  uint64_t since_ms;  /* when it last went on or came back from standby (0: never) */
  uint64_t now_ms;
  uint64_t hold_ms;   /* a heartbeat interval */
} mgr_standby_input;

/* Leave standby as soon as it stops saying all_direct; enter it when it says so while
 * pulling, but no sooner than hold_ms after it last came back (a path that flaps costs its
 * relay one relay-serve per interval at most). With no relay there is nothing to keep. */
mgr_standby_step mgr_standby_decide(const mgr_standby_input *in);

#endif
