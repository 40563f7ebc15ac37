/* rl: relay duty, the library natmesh_relaying. Any servant can be picked as a relay, and
 * natmesh-relay is nothing else, so natmesh_peer links this; it knows nothing of the
 * servant around it.
 *
 * The manager names the clients a relay serves (relay-serve: id, token and key each). A
 * client connects to the relay's listening port over TLS with its own key and says pull;
 * the connection's owner (the servant's inbound module) checks that the id is its key's and
 * hands it here with rl_attach, which checks that the manager named that client with that
 * key and token. From then on every chat line the servant accepts (its signature verified
 * with its origin's listed key: a relay forwards only lines that verify, and cannot alter
 * one) is passed to rl_forward, which keeps the last minute in the replay ring (bounded in
 * lines and bytes) and sends the line to every attached client but its author, within each
 * client's rate and the total rate. A client that attaches late (it was being judged unreachable) first
 * gets the ring replayed. rl_load says what the manager's relay-load carries.
 *
 * An rl_client is embedded in the struct that owns the connection (as libuv's handles are
 * in their users' structs); the owner calls rl_detach when the connection closes. */
#ifndef RL_RELAYING_H
#define RL_RELAYING_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "nm_conn.h"
#include "nm_identity.h"
#include "nm_lineq.h"
#include "nm_log.h"
#include "nm_msg.h"
#include "nm_ratelimit.h"

#define RL_RECENT_MAX 1000              /* lines replayed to a client that attaches */
#define RL_RECENT_BYTES_MAX (4u << 20)  /* ... bytes the ring holds at most */
#define RL_RECENT_TTL_MS 60000          /* ... from at most this long ago */
#define RL_CLIENTS_MAX NM_RELAY_CLIENTS_MAX

/* The relay's side of one pull connection. */
struct rl_duty;
typedef struct rl_client {
  nm_conn *conn;               /* the owner's; NULL until attached */
  struct rl_duty *duty;        /* whose client it is (set when attached) */
  char id[NM_ID_LEN + 1];      /* the client servant's id */
  nm_fingerprint key;          /* the key it proved, the one the manager gave */
  nm_ratelimit rate;           /* its bytes per second */
  int attached;
  /* origins whose lines reach it directly (its direct message): not forwarded to it */
  size_t nskip;
  char skip[NM_DIRECT_MAX][NM_ID_LEN + 1];
} rl_client;

typedef struct {
  unsigned max_clients;     /* what we told the manager we serve */
  unsigned client_rate_bps; /* per client; 0 = unlimited */
  unsigned total_rate_bps;  /* all clients together; 0 = unlimited */
  int dedicated;            /* natmesh-relay: reports its load even with no clients */
} rl_limits;

typedef struct rl_duty {
  uv_loop_t *loop;
  char self_id[NM_ID_LEN + 1]; /* our own lines are forwarded but not counted as bytes in */
  rl_limits limits;
  nm_relay_client assigned[RL_CLIENTS_MAX]; /* the manager's latest relay-serve */
  size_t nassigned;
  rl_client *attached[RL_CLIENTS_MAX];
  size_t nattached;
  nm_lineq recent; /* the replay ring */
  nm_ratelimit total;
  uint64_t bytes_in, bytes_out, drops;
  uint64_t lines_out; /* lines sent to clients (natmesh-relay's metrics) */
  nm_log_rate direct_log; /* clients saying direct as often as they like: rate-limited */
} rl_duty;

void rl_init(rl_duty *d, uv_loop_t *loop, const char *self_id, const rl_limits *limits);
/* Closes every attached client's connection and forgets the ring. */
void rl_close(rl_duty *d);

/* The manager's whole client list (relay-serve); clients no longer on it are closed. */
void rl_serve(rl_duty *d, const nm_relay_client *clients, size_t n);

/* A connection that proved key in its TLS handshake (the caller checked that id is that
 * key's id) said pull with this id and token: attach it as c (which the caller embeds and
 * keeps until the connection closes) and replay the ring to it. who names the client in
 * logs (its name, when the caller knows it). Returns 0, or a negative code with the reason
 * in err (not assigned, wrong token, another key than the manager gave, full): the caller
 * fails the connection. */
int rl_attach(rl_duty *d, rl_client *c, nm_conn *conn, const char *id, const char *token,
              const nm_fingerprint *key, const char *who, char *err, size_t errlen);
/* The client's connection closed (or is being closed). Idempotent. */
void rl_detach(rl_duty *d, rl_client *c);

/* A frame from an attached client, which says pull and then only listens: refused by
 * the relay client table (no rows), which fails the connection. Returns non-zero. */
int rl_client_on_frame(rl_duty *d, rl_client *c, uint8_t type, const char *payload, size_t len);

/* A chat line accepted for the first time (received and verified, or our own): remember it
 * for replay and send it to every attached client but its author. */
void rl_forward(rl_duty *d, const char *origin, const char *payload, size_t len);

/* Forgets lines older than the replay window. */
void rl_tick(rl_duty *d);

/* Fills the relay-load report. Returns 1 when there is something to report (a dedicated
 * relay always; a servant while it has clients), else 0. */
int rl_load(const rl_duty *d, nm_msg_relay_load *out);

static inline size_t rl_nassigned(const rl_duty *d) { return d->nassigned; }
static inline size_t rl_nattached(const rl_duty *d) { return d->nattached; }
static inline size_t rl_nrecent(const rl_duty *d) { return d->recent.count; }
static inline size_t rl_recent_bytes(const rl_duty *d) { return d->recent.bytes; }

#endif
