/* nm_addrlimit: caps on connections not yet authenticated, per address and in total.
 *
 * Issue 9's attack: 1,536 idle sockets from one address, opened in 0.69 s, locked every
 * servant and natmesh-ctl out of the manager. Before a connection has proven a key it costs
 * the attacker nothing, so the manager and every servant take a slot here when they accept
 * one and give it back when it authenticates or closes (whichever comes first, exactly
 * once). A connection over a cap is closed at once: one address gets at most per_addr
 * handshakes in flight, and all addresses together at most total, so the listener always has
 * room for somebody else, and authenticated sessions (which hold no slot) are never pushed
 * out by unauthenticated ones.
 *
 * "One address" is a prefix: the whole IPv4 address by default, and an IPv6 /64, because one
 * host or home network commonly holds a whole /64 and could otherwise take a new address per
 * connection. An IPv4-mapped IPv6 address (::ffff:a.b.c.d, as a dual-stack socket reports
 * IPv4 peers) counts as the IPv4 address.
 *
 * Pure: no sockets, no clock, no logging; the table is bounded by total. */
#ifndef NM_ADDRLIMIT_H
#define NM_ADDRLIMIT_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* Defaults. A handshake lasts at most its deadline (seconds), so 8 at once from one address
 * is plenty for the honest nodes of a household or office behind one NAT. */
#define NM_ADDRLIMIT_PER_ADDR 8
#define NM_ADDRLIMIT_TOTAL 256
#define NM_ADDRLIMIT_TOTAL_MAX (1u << 20)

typedef struct {
  unsigned per_addr;  /* 1 .. total */
  unsigned total;     /* 1 .. NM_ADDRLIMIT_TOTAL_MAX */
  unsigned v4_prefix; /* 1 .. 32 bits that make one IPv4 "address" (32) */
  unsigned v6_prefix; /* 1 .. 128 bits that make one IPv6 "address" (64) */
} nm_addrlimit_config;

/* The defaults above, /32 and /64. */
void nm_addrlimit_config_default(nm_addrlimit_config *cfg);

typedef struct {
  unsigned char key[16]; /* the masked address; IPv4 as ::ffff:a.b.c.d */
  uint32_t count;        /* 0: the slot is empty */
} nm_addrlimit_slot;

typedef struct {
  nm_addrlimit_config cfg;
  nm_addrlimit_slot *slots; /* open addressing; mask + 1 slots, at least 2 * total */
  size_t mask;
  size_t held;              /* connections holding a slot, all addresses together */
  uint64_t seed;            /* random: where an address lands is not predictable */
} nm_addrlimit;

/* cfg NULL: the defaults. Returns 0, -EINVAL for a config out of range, or -ENOMEM. */
int nm_addrlimit_init(nm_addrlimit *l, const nm_addrlimit_config *cfg);
void nm_addrlimit_close(nm_addrlimit *l);

/* Takes a slot for a connection from ip (a literal IPv4 or IPv6 address). Returns 0; -EMFILE
 * when that address already holds per_addr; -ENFILE when all addresses hold total (the
 * process- and system-wide "too many open files", one level down); -EINVAL for a bad ip. */
int nm_addrlimit_acquire(nm_addrlimit *l, const char *ip);
/* Gives the slot back. Returns 0, -ENOENT when the address holds none (a caller's bug: the
 * count never goes below zero), or -EINVAL. */
int nm_addrlimit_release(nm_addrlimit *l, const char *ip);

/* The same, from the peer's address as libuv gives it (AF_INET or AF_INET6). */
int nm_addrlimit_acquire_sa(nm_addrlimit *l, const struct sockaddr *sa);
int nm_addrlimit_release_sa(nm_addrlimit *l, const struct sockaddr *sa);

/* Slots held by ip's address (or prefix); 0 for a bad ip. */
unsigned nm_addrlimit_count(const nm_addrlimit *l, const char *ip);
/* Slots held in all. */
size_t nm_addrlimit_held(const nm_addrlimit *l);

/* A short text for acquire's results, for the log line of a refused connection. */
const char *nm_addrlimit_strerror(int rc);

#endif
