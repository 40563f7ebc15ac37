/* Pulling (pull.c): when the manager has judged us unreachable it names a relay and its
 * key; we connect out to it over TLS pinned to that key, say pull with the token, and
 * receive everything it forwards (each line verified like any other, chat.c), for as long
 * as the assignment stands. */
#ifndef SV_PULL_H
#define SV_PULL_H

#include <stddef.h>
#include <stdint.h>

#include "nm_backoff.h"
#include "nm_conn.h"
#include "nm_identity.h"
#include "nm_log.h"
#include "nm_msg.h"

typedef struct servant servant;

typedef struct {
  int assigned; /* has a relay to pull from */
  /* the manager keeps our relay on standby (relay-assign standby="yes"): every listed servant
   * reaches us directly, so we do not pull; name still says which relay */
  int standby;
  int told_all;          /* what we last told the manager (direct="all" or not) */
  nm_log_rate standby_log; /* standby and back: as often as paths come and go */
  char id[NM_ID_LEN + 1];
  char name[NM_NAME_MAX + 1];
  char ip[64];
  uint16_t port;
  char token[NM_TOKEN_LEN + 1];
  nm_fingerprint fp; /* of the relay's key from relay-assign: what its TLS key must be */
  char via[NM_NAME_MAX + 8]; /* "relay NAME", for log lines about its lines */
  nm_assign_reason reason;   /* why the manager said we pull (relay-assign's reason) */
  nm_conn *conn;
  int ready;
  uint64_t next_attempt_ms;
  nm_backoff backoff;
  nm_log_rate wrong_key_log;
  /* the origins we last told the relay reach us directly (direct), sent on this connection */
  size_t ndirect;
  char direct[NM_DIRECT_MAX][NM_ID_LEN + 1];
} sv_pull;

/* The manager's relay-assign: pull from this relay, or (release) from none. */
void sv_pull_on_assign(servant *sv, const nm_msg_relay_assign *a);
void sv_pull_tick(servant *sv);
void sv_pull_close(servant *sv);
/* Our punched peers changed (one came up, one went), or the list did: tell the relay which
 * origins reach us directly, so it forwards us only the others (an origin whose direct path
 * failed has its recent lines sent again), and tell the manager at once when whether every
 * listed servant reaches us directly changed (sv_pull_direct_all: our relay goes on
 * standby, or comes back). A no-op when nothing changed. */
void sv_pull_direct_update(servant *sv);
/* Whether we need no relay now: we pull (or our relay is on standby) and every listed
 * servant reaches us directly (punched; a dedicated relay publishes nothing and a banned
 * servant's lines are dropped anyway). What every heartbeat says (direct="all"). */
int sv_pull_direct_all(servant *sv);
/* For /peers: ", pulling from NAME" and the like, or "" when not assigned. */
const char *sv_pull_describe(servant *sv, char *buf, size_t len);

#endif
