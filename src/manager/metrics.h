/* The manager's metrics: what it counts as it runs (mgr_stats, kept in struct manager and
 * bumped by one-line hooks where things happen: session.c, registry.c, relays.c) and, with
 * --metrics ADDR:PORT, the listener that serves them (nm_http) with the status page.
 *
 * How the HTTP thread gets its data without blocking the loop: the loop publishes. Once a
 * second (MGR_METRICS_PERIOD_MS, a uv_timer that holds the loop open for nobody) it builds
 * the Prometheus text from mgr_stats and the sessions, and hands it to nm_http_publish,
 * which swaps it in under a mutex. The status JSON (the same nm_status natmesh-ctl gets,
 * every servant in it: the costly one) is built on demand: a request for /status.json
 * wakes the loop (uv_async_send, nm_http_on_demand) and waits, at most
 * NM_HTTP_DEMAND_WAIT_MS, for the loop to publish a new one; a manager nobody watches builds
 * none. The HTTP thread never reads the manager's state; a scrape is at most a second old,
 * a status as fresh as the request. (The other way,
 * the HTTP thread asking the loop through uv_async and waiting, would make every scrape
 * wait for a busy loop and couple the two threads; a snapshot a second is cheap: the status
 * is built the same way for every natmesh-ctl status.) */
#ifndef NM_MANAGER_METRICS_H
#define NM_MANAGER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "nm_conn.h"

#define MGR_METRICS_PERIOD_MS 1000
#define MGR_METRICS_RELAYS_MAX 256 /* relays with their own series; more are left out */

/* Why a connection or a request was refused: the reason label of
 * natmesh_manager_refused_connections_total. */
typedef enum {
  MGR_REFUSED_ACCEPT = 0,    /* accept() failed (e.g. out of descriptors) */
  MGR_REFUSED_PER_ADDRESS,   /* too many unauthenticated connections from one address */
  MGR_REFUSED_UNAUTH_TOTAL,  /* too many unauthenticated connections in all */
  MGR_REFUSED_WRONG_KEY,     /* a hello whose id is not its key's, or another key's id */
  MGR_REFUSED_FULL,          /* --max-servants servants already */
  MGR_REFUSED_NOT_ADMITTED,  /* the admission said no (no invite, name taken, role) */
  MGR_REFUSED_NOT_OPERATOR,  /* a status request from a key that is not an operator's */
  MGR_REFUSED_CTL_LIMIT,     /* MGR_CTL_MAX natmesh-ctl sessions already */
  MGR_REFUSED_OBSERVE,       /* an observe for no registration of that key, or its own family */
  MGR_REFUSED_N
} mgr_refused_reason;

/* The store's operations (issue 14), by the op label of natmesh_store_ops_total: the
 * commands the manager sent (each a Lua script, atomic in the store). */
typedef enum {
  MGR_STORE_OP_PUT = 0,  /* a servant's record put (a join, a change, a take-over) */
  MGR_STORE_OP_LEAVE,    /* a leave by its holder */
  MGR_STORE_OP_RENEW,    /* a renewal of the held servants' deadlines (one per batch) */
  MGR_STORE_OP_REAP,     /* a sweep of the expired */
  MGR_STORE_OP_COMPLAIN, /* a complaint about a servant held by another manager */
  MGR_STORE_OP_ADMISSION, /* an admission fact written (an invite, a key, a revocation) */
  MGR_STORE_OP_MESH,     /* a chunk of the shared mesh's neighbour sets (the leader) */
  MGR_STORE_OP_N
} mgr_store_op;

typedef struct {
  uint64_t joins, leaves, complaints, heartbeats, relay_assignments;
  uint64_t verdicts_suspicious, verdicts_pair;
  uint64_t punches; /* pairs told to punch (punch.c) */
  uint64_t tls_failures;
  uint64_t refused[MGR_REFUSED_N];
  nm_conn_traffic traffic; /* every session's conn points here */
  /* The store (issue 14), filled by the store side (shared.c); all 0 without --store.
   * store_on: the manager runs with --store (the natmesh_store_* series exist only then);
   * store_up: the store answers now. store_ops by mgr_store_op; store_errors: commands that
   * failed or got an error reply; store_failovers: times the primary's address changed.
   * remote_servants: remote entries (shared.h: servants another manager holds, listed
   * here, not sessions); natmesh_servants{held="local|remote"}. */
  int store_on, store_up;
  int mesh_leader; /* this manager draws the overlay's shared mesh now */
  uint64_t store_ops[MGR_STORE_OP_N];
  uint64_t store_errors, store_failovers;
  size_t remote_servants;
} mgr_stats;

struct manager;
/* Starts the listener when the config names one (cfg.metrics). Returns 0 or -1 (said). */
int mgr_metrics_start(struct manager *m);
/* Stops it (joins the HTTP thread); a no-op when not started. */
void mgr_metrics_stop(struct manager *m);

/* Before the loop's handles close: the HTTP thread stops waking the loop for the status. */
void mgr_metrics_quiesce(struct manager *m);

/* The Prometheus exposition text of m's metrics now (malloc'ed; the caller frees): what
 * /metrics serves. 0 or -ENOMEM. */
int mgr_metrics_text(struct manager *m, char **out, size_t *len);

#endif
