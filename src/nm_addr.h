/* nm_addr: IP addresses as natmesh writes, reads and judges them, both families.
 * One spelling everywhere: IPv4 as "a.b.c.d:port", IPv6 in brackets "[2001:db8::1]:port"
 * (RFC 3986), an IPv4-mapped IPv6 address (what a dual-stack socket reports for an IPv4
 * peer) as plain IPv4. */
#ifndef NM_ADDR_H
#define NM_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define NM_IP_STRLEN 46   /* INET6_ADDRSTRLEN: the longest literal, with its NUL */
#define NM_ADDR_STRLEN 56 /* "[" ip "]:" 65535 NUL */

/* "ip:port", or "[ip]:port" for IPv6, into buf (NM_ADDR_STRLEN bytes). Returns buf, so a
 * log line can take it as an argument. A port of 0 writes the address alone (bracketless). */
const char *nm_addr_str(const char *ip, uint16_t port, char buf[NM_ADDR_STRLEN]);

/* AF_INET or AF_INET6 for a literal address without zone ("fe80::1%eth0" is refused), else
 * -EINVAL. */
int nm_addr_family(const char *ip);

/* A literal address and port into a socket address. Returns 0 or -EINVAL. */
int nm_addr_to_sockaddr(const char *ip, uint16_t port, struct sockaddr_storage *ss);

/* The address and port of sa (AF_INET or AF_INET6; an IPv4-mapped IPv6 address comes out
 * as plain IPv4). Returns 0 or -EINVAL (another family; ip "" and port 0). */
int nm_addr_from_sockaddr(const struct sockaddr *sa, char *ip, size_t iplen, uint16_t *port);

/* 1 when ip can be a candidate address other servants dial: a literal of either family
 * that is not unspecified, loopback, link-local (it needs a zone, which means nothing on
 * another host), multicast, broadcast or IPv4-mapped. Private (RFC 1918, ULA) addresses
 * are candidates: they are what two servants behind one router reach each other by. */
int nm_addr_is_candidate(const char *ip);

/* 1 when a and b are the same address (compared as binary: "::1" equals "0::1"). */
int nm_addr_equal(const char *a, const char *b);

#endif
