/* probe: real-socket checks run from inside a host's namespace (TCP connect, UDP external
 * port discovery) and the echo server that reports each peer's observed address. */
#ifndef NSIM_PROBE_H
#define NSIM_PROBE_H

#include "run.h"

#include <stdint.h>

enum nsim_tcp_outcome { NSIM_TCP_OK, NSIM_TCP_GOT_REFUSED, NSIM_TCP_GOT_TIMEOUT, NSIM_TCP_GOT_ERROR };

/* One TCP connection attempt from node to `to` (IPv4 or IPv6) within timeout_ms, from
 * local_port when it is not 0 (SO_REUSEPORT, so a listener there may stay). On success
 * reads the first line the peer sends (up to timeout) into reply. detail describes the
 * outcome. */
int nsim_probe_tcp(struct nsim_run *r, int node, const struct nsim_endpoint *to,
                   uint16_t local_port, long timeout_ms, enum nsim_tcp_outcome *outcome,
                   char *reply, size_t replylen, char *detail, size_t detaillen);

/* From node, one UDP socket bound to local_port (0: any) sends a probe to each server and
 * collects the "ip:port" each reports having seen. observed[i] is "" when server i did not
 * answer within timeout_ms. With an IPv6 server among them the socket is a dual-stack IPv6
 * one (IPv4 servers reached through v4-mapped addresses), else IPv4. */
#define NSIM_UDP_MAX_SERVERS 8
#define NSIM_UDP_OBSERVED_LEN 64
int nsim_probe_udp(struct nsim_run *r, int node, uint16_t local_port,
                   const struct nsim_endpoint *servers, int n, long timeout_ms,
                   char observed[][NSIM_UDP_OBSERVED_LEN]);

/* `natmesh-netsim echo-server PORT [NAME]`: answers every UDP datagram and every TCP
 * connection on PORT with "NAME saw IP:PORT\n" (the peer's address as this host sees it:
 * "[V6]:PORT" for IPv6, "A.B.C.D:PORT" for IPv4, also when it came in v4-mapped) and logs
 * each one on stdout. Listens dual-stack on :: (IPv4 on 0.0.0.0 where IPv6 is missing).
 * Runs until SIGTERM. */
int nsim_echo_server_main(int argc, char **argv);

#endif
