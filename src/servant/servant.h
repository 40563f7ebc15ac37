/* natmesh_peer: everything a peer of the overlay does, shared by natmesh-servant and the
 * dedicated natmesh-relay. One module per job, each owning its state in its own struct
 * (declared in its own header) that struct servant embeds:
 *
 *   entry.c         the one main of both programs, given a role description (cli.h)
 *   cli.c           options and config file, shared by the servant and the relay
 *   lifecycle.c     start, the periodic tick, signals, leaving; wires the modules together
 *   manager_link.c  the session with the connection manager (register, heartbeat, list)
 *   observe.c       a short second session over our other address family, so the manager
 *                   sees (and publishes) that address too
 *   peers.c         the peer table and the outbound connections chat is published on
 *   inbound.c       the listening socket, bans, and the connections peers and relay
 *                   clients open to us
 *   chat.c          chat lines: build our own, check and de-duplicate received ones
 *   lines.c         the one fan-out of an accepted line: display, peers, relay duty
 *   pull.c          pulling from an assigned relay when peers cannot reach us
 *   portmap.c       glue to nat/: map our port after registering, report it
 *   console.c       stdin: lines to publish, and the /peers, /quit, /help commands
 *   relay/relaying.c  relay duty (library natmesh_relaying): the replay ring, pull
 *                   clients, rate limits, load reports
 *
 * Data flows one way: manager link -> peer table -> connections; a received line ->
 * chat (check) -> lines (fan-out) -> display / relay duty. Upward reports (a peer we cannot
 * reach, our port mapping) go through hooks that lifecycle.c points at the manager link. */
#ifndef NM_SERVANT_H
#define NM_SERVANT_H

#include <stdint.h>
#include <uv.h>

#include "chat.h"
#include "cli.h"
#include "console.h"
#include "epoch.h"
#include "inbound.h"
#include "manager_link.h"
#include "observe.h"
#include "peers.h"
#include "portmap.h"
#include "pull.h"
#include "relaying.h"
#include "nm_addr.h"
#include "nm_identity.h"
#include "nm_notify.h"
#include "nm_tls.h"

#define SV_CONNECT_TIMEOUT_MS 3000

struct servant {
  uv_loop_t *loop;
  sv_config cfg;
  /* Who we are: the key in the state directory, the id it gives, the TLS context every
   * link is made from, and this run's chat epoch (epoch.h). */
  char state_dir[SV_STATE_DIR_MAX];
  nm_identity identity;
  nm_tls_ctx tls;
  char id[NM_ID_LEN + 1];
  uint64_t epoch;
  int exit_code; /* what main returns once the loop ends (a fatal refusal sets 1) */
  struct sockaddr_storage local_addr; /* bind outgoing sockets here when --listen is set */
  int bind_outgoing;
  int has_name_bans;                  /* the ban list names hosts: reverse lookups needed */
  uv_timer_t tick;
  uv_signal_t sigint, sigterm;
  int stopping;
  nm_notify notify; /* systemd: READY once registered, STATUS, STOPPING, watchdog (lifecycle.c) */
  /* the modules */
  sv_manager_link mgr;
  sv_observe observe;
  sv_peers peers;
  sv_inbound inbound;
  sv_chat chat;
  sv_pull pull;
  sv_portmap portmap;
  sv_console console;
  rl_duty relay;
};

/* entry.c: the main of natmesh-servant and natmesh-relay. Returns the exit status. */
int sv_main(const sv_role *role, int argc, char **argv);

/* lifecycle.c */
/* Checks the config, loads (or creates) our key and the next epoch, starts listening (if a port is fixed), the tick,
 * signals and the manager link. Returns 0 or a negative code (already logged). */
int sv_start(servant *sv, uv_loop_t *loop);
/* Leaves the overlay: bye to the manager, every connection closed; the loop then ends. */
void sv_leave(servant *sv, const char *why);
/* Leaves for a reason that retrying cannot fix (the manager refused our role): main then
 * exits with status 1. The reason has been logged as an error. */
void sv_fail(servant *sv, const char *why);
/* Frees the key and the TLS context, after the loop has ended. */
void sv_release(servant *sv);

uint64_t sv_now_ms(servant *sv);
/* With --listen ADDR, outgoing connections to ADDR's family leave from ADDR too (one to
 * the other family is left to the system: ADDR could not send it). */
int sv_bind_outgoing(servant *sv, nm_conn *c, const struct sockaddr *dest);
/* Connects c (initialized, TLS set) to dest from port (0: any), on a socket with SO_REUSEADDR
 * and SO_REUSEPORT, so that it can share the port with our listening socket and the manager
 * session: behind an endpoint-independent NAT a peer can then aim at the endpoint the manager
 * observed (docs/protocol.md, "Punching"). Falls back to another port when that one cannot
 * be used for dest (taken, or the 4-tuple still in TIME_WAIT). Returns nm_conn_connect's. */
int sv_connect_from_port(servant *sv, nm_conn *c, const struct sockaddr *dest, uint16_t port, unsigned timeout_ms,
                         nm_conn_connect_cb cb);
/* Our interface addresses that can be candidates (nm_addr_is_candidate: no loopback, no
 * link-local), both families alternating, IPv6 first, each once; at most max. Returns how
 * many. */
size_t sv_local_addresses(char (*out)[NM_IP_STRLEN], size_t max);

#endif
