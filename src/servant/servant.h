/* natmesh-servant's state and modules:
 *   main.c          options, config, stdin commands, signals
 *   manager_link.c  the session with the connection manager (register, heartbeat, list)
 *   peers.c         the peer table and the outbound connections chat is published on
 *   inbound.c       the listening socket, bans, and chat received from peers
 *   chat.c          chat frames: build, check, deduplicate, display
 *   seen.c          the bounded set of (origin, seq) already shown
 *   relaying.c      serving pull clients: the recent-lines ring, forwarding, limits
 *   pull.c          pulling from an assigned relay when peers cannot reach us
 * Everything but main.c is the library natmesh_peer, which natmesh-relay shares. */
#ifndef NM_SERVANT_H
#define NM_SERVANT_H

#include <stdint.h>
#include <uv.h>

#include "nm_config.h"
#include "nm_conn.h"
#include "nm_peerlist.h"
#include "nm_backoff.h"
#include "nm_ratelimit.h"
#include "nm_seen.h"

#define SV_BACKLOG_MAX 1000        /* chat lines held for a peer not yet connected */
#define SV_BACKLOG_TTL_MS 60000    /* ... for at most this long */
#define SV_CONNECT_TIMEOUT_MS 3000
#define SV_INBOUND_MAX 1024        /* open inbound connections; more are refused */

typedef struct {
  nm_role role;
  /* relay duty: limits apply to dedicated relays; servants serve a few clients at most */
  unsigned max_clients;
  unsigned client_rate_bps;  /* bytes per second per client, 0 = unlimited */
  unsigned total_rate_bps;   /* bytes per second in all, 0 = unlimited */
  char name[NM_NAME_MAX + 1];
  char manager_host[256];
  unsigned manager_port;
  char listen[64];
  unsigned port; /* 0: ask the manager for one */
  nm_banlist bans;
  int nat_upnp, nat_natpmp;
  unsigned nat_lease_s;
} sv_config;

typedef struct servant servant;
typedef struct sv_peer sv_peer;

typedef struct sv_chat {
  struct sv_chat *next;
  uint64_t queued_ms;
  char origin[NM_ID_LEN + 1];
  size_t len;
  char payload[];
} sv_chat;

/* An outbound connection to a peer; heap-allocated so it can outlive the peer record
 * while libuv closes it. */
typedef struct {
  nm_conn conn;
  servant *sv;
  sv_peer *peer; /* NULL once the peer record is gone */
} sv_out;

struct sv_peer {
  nm_peer info;
  int listed;                 /* in the manager's current list */
  uint64_t unlisted_since_ms; /* when a full list stopped naming it */
  int banned;                 /* its address or reverse name is on the ban list */
  sv_out *out;
  int out_ready;
  uint64_t next_attempt_ms;
  nm_backoff backoff;
  sv_chat *backlog_head, *backlog_tail;
  size_t backlog_len;
  sv_peer *next;
};

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
  nm_backoff backoff; /* failures counts the attempts since we were last registered */
  unsigned heartbeat_s, timeout_s;
  char observed_ip[64];
  uint64_t last_heard_ms; /* anything from the manager: a silent one is given up on */
} sv_manager_link;

#define SV_RECENT_MAX 1000       /* lines a relay replays to a client that attaches */
#define SV_RECENT_TTL_MS 60000

typedef struct {
  char id[NM_ID_LEN + 1];
  char token[33];
} sv_client;

typedef struct sv_in sv_in;

/* What a relay remembers of the last minute, to replay to a client that attaches late
 * (a servant that was unreachable while it was being judged). */
typedef struct {
  sv_chat *head, *tail;
  size_t count;
} sv_recent;

typedef struct {
  char id[NM_ID_LEN + 1];
  char name[NM_NAME_MAX + 1];
  char ip[64];
  uint16_t port;
  char token[33];
  nm_conn *conn;
  int ready;
  uint64_t next_attempt_ms;
  nm_backoff backoff;
} sv_pull;

struct servant {
  uv_loop_t *loop;
  sv_config cfg;
  char id[NM_ID_LEN + 1];
  uint16_t port; /* bound listening port, 0 until bound */
  uv_tcp_t *listener; /* heap: a failed bind closes it and a new one is made */
  struct sockaddr_storage local_addr; /* bind outgoing sockets here when --listen is set */
  int bind_outgoing;
  sv_manager_link mgr;
  uint64_t list_version;
  int have_list;
  sv_peer *peers;
  uint64_t next_seq;
  nm_seen seen;
  uv_timer_t tick;
  uv_tty_t stdin_tty;
  uv_pipe_t stdin_pipe;
  uv_stream_t *stdin_stream;
  char line[NM_CHAT_MAX + 2];
  size_t line_len;
  int line_overflow;
  uv_signal_t sigint, sigterm;
  int stopping;
  int has_name_bans;
  /* relay duty */
  sv_client clients[256];
  size_t nclients;
  sv_in *inbound;
  size_t ninbound;
  int inbound_full_logged;
  sv_in *pullers[256];
  size_t npullers;
  sv_recent recent;
  uint64_t bytes_in, bytes_out, drops;
  nm_ratelimit total_rate;
  /* pulling */
  sv_pull pull;
  int assigned; /* has a relay to pull from */
  nm_reach_state reach; /* our own state, as the manager last published it */
  struct sv_portmap *portmap;
  int quiet;            /* do not print chat (a dedicated relay) */
};

/* manager_link.c */
void sv_manager_start(servant *sv);
void sv_manager_stop(servant *sv);
void sv_manager_send(servant *sv, uint8_t type, const char *payload, size_t len);

/* peers.c */
sv_peer *sv_peer_find(servant *sv, const char *id);
void sv_peers_apply_full(servant *sv, const nm_peerlist *list);
void sv_peers_upsert(servant *sv, const nm_peer *p);
void sv_peers_remove(servant *sv, const char *id, const char *reason);
void sv_peers_publish(servant *sv, const char *payload, size_t len);
void sv_peers_tick(servant *sv);
void sv_peers_close_all(servant *sv);
void sv_peers_print(servant *sv);

/* cli.c */
typedef struct {
  const char *root;  /* the config file's root element */
  const char *usage;
  int relay;         /* accepts the relay's limits */
} sv_cli_spec;
/* Reads the config file and options into sv->cfg (which holds the defaults). Returns 0 to
 * run, 1 to exit successfully (--help, --check-config), 2 on an error already logged. */
int sv_cli_parse(servant *sv, const sv_cli_spec *spec, int argc, char **argv);

/* lifecycle.c */
void sv_config_defaults(sv_config *cfg);
/* Checks the config, draws the id, starts listening (if a port is fixed), the tick,
 * signals and the manager link. Returns 0 or a negative code (already logged). */
int sv_start(servant *sv, uv_loop_t *loop);
/* Leaves the overlay: bye to the manager, every connection closed; the loop then ends. */
void sv_leave(servant *sv, const char *why);
/* Publishes one line typed here to every peer (and relay clients). */
void sv_publish_line(servant *sv, const char *text);

/* portmap.c */
void sv_portmap_on_registered(servant *sv);
void sv_portmap_close(servant *sv);
const char *sv_portmap_describe(servant *sv, char *buf, size_t len);

/* relaying.c */
void sv_relay_on_serve(servant *sv, xmlNode *serve);
/* An inbound connection sent pull: attach it if assigned. Returns 0 or a negative code. */
int sv_relay_attach(servant *sv, sv_in *in, const char *payload, size_t len, char *err, size_t errlen);
void sv_relay_detach(servant *sv, sv_in *in);
/* A chat line accepted for the first time (received or our own): remember and forward. */
void sv_relay_forward(servant *sv, const char *origin, const char *payload, size_t len);
void sv_relay_tick(servant *sv);
void sv_relay_close(servant *sv);
void sv_relay_load_report(servant *sv);

/* pull.c */
void sv_pull_on_assign(servant *sv, xmlNode *assign);
void sv_pull_tick(servant *sv);
void sv_pull_close(servant *sv);

/* inbound.c */
struct sv_in {
  nm_conn conn;
  servant *sv;
  uv_getnameinfo_t name_req;
  int resolving;
  int closed; /* the conn closed while the lookup was under way */
  int identified;
  int puller; /* a relay client pulling from us */
  char client_id[NM_ID_LEN + 1];
  nm_ratelimit rate; /* this client's bytes per second */
  sv_in *prev, *next; /* every open inbound connection, so leaving can close them */
};
int sv_listen(servant *sv, uint16_t port);
void sv_inbound_close(servant *sv);
int sv_ip_banned(servant *sv, const char *ip);

/* chat.c */
int sv_chat_build(servant *sv, const char *text, char **payload, size_t *len);
/* Handles a chat frame from any connection; returns 0 or a negative code (bad frame). */
int sv_chat_receive(servant *sv, const char *payload, size_t len, char *err, size_t errlen);
int sv_peer_hello_build(servant *sv, char *buf, size_t buflen);

uint64_t sv_now_ms(servant *sv);
int sv_bind_outgoing(servant *sv, nm_conn *c);

#endif
