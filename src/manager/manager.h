/* The connection manager's shared state: the sessions it holds and the peer list it
 * publishes. Modules: registry.c (who is registered, ports, list and deltas),
 * session.c (the frame dispatcher), status.c (natmesh-ctl's view), main.c (options,
 * listening, timers). */
#ifndef NM_MANAGER_H
#define NM_MANAGER_H

#include <stdint.h>
#include <uv.h>

#include "nm_conn.h"
#include "nm_peerlist.h"
#include "nm_proto.h"

/* Sessions (servants, relays, ctl) one manager holds. Bounded so that the status document
 * fits in one 1 MiB frame even in the worst case: about 600 bytes a servant with IPv6
 * addresses, 32-character names and 20-digit counters (1,536 x 600 = 922 kB). */
#define MGR_SESSIONS_MAX 1536

typedef struct {
  char listen[64];
  unsigned port;
  unsigned heartbeat_s;
  unsigned timeout_s;
  unsigned port_first, port_last;
  /* complaints and relays (see complaints.c) */
  unsigned complaint_threshold;   /* complaints per reporter that count */
  unsigned complaint_window_s;    /* complaints older than this expire */
  unsigned quorum_percent;        /* share of other live servants that must complain */
} mgr_config;

typedef enum {
  MGR_SESSION_NEW = 0,   /* connected, nothing said yet */
  MGR_SESSION_WELCOMED,  /* hello accepted, waiting for listening */
  MGR_SESSION_REGISTERED,/* in the peer list */
  MGR_SESSION_CTL,       /* a natmesh-ctl asking for status */
} mgr_session_state;

typedef struct manager manager;

typedef struct mgr_session {
  nm_conn conn;
  manager *mgr;
  mgr_session_state state;
  char id[NM_ID_LEN + 1];
  char name[NM_NAME_MAX + 1];
  nm_role role;
  uint16_t port;        /* the port it listens on */
  uint16_t last_busy;   /* last port it could not bind, so assignment moves past it */
  uint64_t connected_ms;
  uint64_t last_heard_ms;
  /* port mapping, as reported by the servant */
  nm_mapping_kind mapping;
  char ext_ip[64];
  uint16_t ext_port;
  nm_reach_state reach;
  char relay_id[NM_ID_LEN + 1];
  char relay_token[33];
  /* complaints others made about this servant (complaints.c) */
  struct mgr_complaint *complaints;
  size_t ncomplaints;
  /* relay duty (relays.c) */
  unsigned max_clients; /* how many clients it will serve, from its hello */
  unsigned clients;     /* how many the manager assigned it */
  unsigned long long load_bytes_in, load_bytes_out, load_drops, load_attached;
  struct mgr_session *prev, *next;
} mgr_session;

struct manager {
  uv_loop_t *loop;
  uv_tcp_t server;
  uv_timer_t sweep;
  uv_signal_t sigint, sigterm;
  mgr_config cfg;
  mgr_session *sessions;
  size_t nsessions;
  nm_peerlist list; /* what is published; list.version counts changes */
  unsigned next_port;
  int stopping;
};

/* registry.c */
mgr_session *mgr_find_registered(manager *m, const char *id);
uint16_t mgr_assign_port(manager *m, const char *ip, uint16_t avoid);
/* Adds or updates s's entry in the list and publishes the change. */
void mgr_publish_upsert(manager *m, mgr_session *s);
/* Removes s's entry (if listed) and publishes the leave. */
void mgr_publish_leave(manager *m, mgr_session *s, const char *reason);
void mgr_send_full_list(manager *m, mgr_session *s);
void mgr_session_to_peer(const mgr_session *s, nm_peer *p);

/* session.c */
void mgr_on_connection(uv_stream_t *server, int status);
void mgr_session_drop(mgr_session *s, const char *reason);

/* status.c */
void mgr_send_status(manager *m, mgr_session *asker);

uint64_t mgr_now_ms(manager *m);

#endif
