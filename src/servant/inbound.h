/* The listening side (inbound.c): peers connect here to publish to us, and relay clients
 * to pull from us. Each connection is checked against the ban list (address at once,
 * reverse name off the loop) and must introduce itself: peer-hello makes it a peer that
 * publishes chat to us; pull hands it to relay duty (relay/relaying.h). */
#ifndef SV_INBOUND_H
#define SV_INBOUND_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "nm_conn.h"
#include "relaying.h"

#define SV_INBOUND_MAX 1024 /* open inbound connections; more are refused */

typedef struct servant servant;

typedef enum {
  SV_IN_NEW = 0,  /* connected; its first frame says what it is */
  SV_IN_PEER,     /* said peer-hello: publishes chat to us */
  SV_IN_PULLING,  /* said pull: a relay client we forward to; it sends nothing more */
} sv_in_state;

typedef struct sv_in sv_in;
struct sv_in {
  nm_conn conn;
  servant *sv;
  sv_in_state state;
  uv_getnameinfo_t name_req;
  int resolving;
  int closed;       /* the conn closed while the lookup was under way */
  rl_client client; /* relay duty's state while pulling */
  sv_in *prev, *next; /* every open inbound connection, so leaving can close them */
};

typedef struct {
  uv_tcp_t *listener; /* heap: a failed bind closes it and a new one is made */
  uint16_t port;      /* bound listening port, 0 until bound */
  sv_in *head;
  size_t count;
  int full_logged;
  unsigned hello_timeout_ms; /* how long a new connection may stay silent */
} sv_inbound;

/* Binds and listens on cfg.listen:port. Returns 0 or a negative uv code. */
int sv_listen(servant *sv, uint16_t port);
int sv_listening(servant *sv);       /* 1 once bound */
uint16_t sv_listen_port(servant *sv); /* 0 until bound */
void sv_inbound_set_timeout(servant *sv, unsigned timeout_s);
void sv_inbound_close(servant *sv);

#endif
