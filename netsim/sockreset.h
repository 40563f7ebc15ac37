/* sockreset: resets a running process's TCP connections to one ADDR:PORT without touching
 * the process, the way a middlebox or a crashed NAT would. Inside the process's own
 * namespace (never the host's), the kernel's sock_diag interface finds the connections whose
 * sockets the process (its process group) holds and destroys them (SOCK_DESTROY, what
 * `ss -K` does; the kernel needs CONFIG_INET_DIAG_DESTROY). The process sees the connection
 * aborted; the kernel sends the peer an RST. */
#ifndef NSIM_SOCKRESET_H
#define NSIM_SOCKRESET_H

#include "run.h"

#include <stdint.h>

/* Resets p's TCP connections to `to` (IPv4 or IPv6; an IPv4 `to` also matches connections
 * of dual-stack IPv6 sockets, where the kernel lists it v4-mapped). With peer_notices the RST goes
 * out as usual, so the peer learns at once; without, an nftables rule in p's namespace that
 * matches exactly those connections (both addresses and ports) first drops everything the
 * host would still send on them, the RST and the answers to whatever the peer sends later,
 * so the peer keeps its side open until it times it out. The rule stays for the rest of the
 * run and goes with the namespace. Returns the number of connections reset (at least 1) or
 * a negative code (-ENOENT: p has no such connection; -EOPNOTSUPP: the kernel cannot destroy
 * sockets); detail says what was done or why not. */
int nsim_sock_reset(struct nsim_run *r, const struct nsim_proc *p, const struct nsim_endpoint *to,
                    int peer_notices, char *detail, size_t detaillen);

#endif
