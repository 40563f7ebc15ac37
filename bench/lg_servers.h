/* natmesh-loadgen's baseline servers (lg_servers.c): child processes the load generator
 * measures the manager against in the same run. */
#ifndef LG_SERVERS_H
#define LG_SERVERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Frame types of the bare server's broadcast, outside natmesh's numbers. */
#define LG_BCAST_REQ 0x7e /* client -> bare server: payload "B", write B bytes to everyone */
#define LG_BCAST 0x7f     /* bare server -> every client: the broadcast frame */

typedef enum { LG_SERVER_BARE, LG_SERVER_TLS } lg_server_kind;

/* Forks a server of that kind on 127.0.0.1 answering every frame with ack_frame (a whole
 * frame, header included; it must outlive the child, which it does: the child is a copy).
 * Returns the child's pid with *port set, or -1. */
pid_t lg_server_start(lg_server_kind kind, const char *ack_frame, size_t ack_len, uint16_t *port);

#endif
