/* natmesh-servant's state and modules:
 *   main.c          options, config, stdin commands, signals
 *   manager_link.c  the session with the connection manager (register, heartbeat, list)
 *   peers.c         the peer table and the outbound connections chat is published on
 *   inbound.c       the listening socket, bans, and chat received from peers
 *   chat.c          chat frames: build, check, deduplicate, display
 *   seen.c          the bounded set of (origin, seq) already shown */
#ifndef NM_SERVANT_H
#define NM_SERVANT_H

#include <stdint.h>
#include <uv.h>

#include "nm_config.h"
#include "nm_conn.h"
#include "nm_peerlist.h"
#include "seen.h"

#define SV_BACKLOG_MAX 1000        /* chat lines held for a peer not yet connected */
#define SV_BACKLOG_TTL_MS 60000    /* ... for at most this long */
#define SV_CONNECT_TIMEOUT_MS 3000

typedef struct {
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
  int resolving;              /* reverse lookup under way */
  sv_out *out;
  int out_ready;
  uint64_t next_attempt_ms;
  unsigned backoff_ms;
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
  unsigned backoff_ms;
  unsigned heartbeat_s, timeout_s;
  char observed_ip[64];
  int failures;
} sv_manager_link;

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
  sv_seen seen;
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
int sv_peers_origin_banned(servant *sv, const char *origin_id);

/* inbound.c */
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
