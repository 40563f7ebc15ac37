/* nm_cand: how a servant dials a peer that has several candidate addresses (docs/protocol.md,
 * "Candidates"). A pure module, in the manner of nm_backoff: state and time in, a decision
 * out; the peer table (src/servant/peers.c) owns the sockets and the timer.
 *
 *   nm_cand_order()   the dial order: the primary address and the <cand>s, in tiers (the
 *                     peer's local addresses first when it shares our public address, then
 *                     mapped, then observed, then the other local addresses), families
 *                     interleaved IPv6 first within each tier (RFC 8305 section 4), each
 *                     ip:port once, the primary always included.
 *   nm_cand_memory    what failed before: each address has its own backoff, so a candidate
 *                     that never answers is not dialled in a tight loop. The primary is
 *                     dialled every round whatever its memory says: its failures are what
 *                     the manager's complaints are about.
 *   nm_cand_round     one round of Happy Eyeballs (RFC 8305): the next attempt starts
 *                     NM_CAND_STAGGER_MS after the previous one, or at once when one fails,
 *                     with at most NM_CAND_IN_FLIGHT_MAX in flight; the round is over when
 *                     one attempt won or every one failed. */
#ifndef NM_CAND_H
#define NM_CAND_H

#include <stddef.h>
#include <stdint.h>

#include "nm_peerlist.h"

#define NM_CAND_DIAL_MAX (NM_CANDS_MAX + 1) /* the primary and every <cand> */
#define NM_CAND_STAGGER_MS 250              /* RFC 8305's recommended connection attempt delay */
#define NM_CAND_IN_FLIGHT_MAX 4
#define NM_CAND_BACKOFF_FIRST_MS 1000       /* a failed candidate waits this long, doubling, */
#define NM_CAND_BACKOFF_MAX_MS 30000        /* up to this, before it is dialled again */

/* The kind of p's primary address (<ip>/<port>): mapped when the peer reported a UPnP or
 * NAT-PMP mapping, else observed. */
nm_cand_kind nm_cand_primary_kind(const nm_peer *p);

/* p's candidates in the order to dial them, into out (NM_CAND_DIAL_MAX entries); out[i] is
 * the primary address exactly when i == *primary_index. our_ip is our own address as the
 * manager observed it (its welcome), or NULL/"" when unknown: when it equals the peer's
 * primary or observed address, both are very likely behind one NAT, and its local
 * addresses come first. Returns how many (at least 1 when p's primary is a valid literal;
 * 0 otherwise). */
size_t nm_cand_order(const nm_peer *p, const char *our_ip, nm_cand out[NM_CAND_DIAL_MAX],
                     size_t *primary_index);

/* ---- per-candidate failure memory ---------------------------------------------------- */
typedef struct {
  char ip[NM_IP_STRLEN];
  uint16_t port;
  unsigned failures;    /* in a row */
  uint64_t retry_at_ms; /* not dialled again before this (but as the primary) */
  uint64_t last_ms;     /* when last touched: the stalest entry makes room */
} nm_cand_memo;

typedef struct {
  nm_cand_memo e[NM_CAND_DIAL_MAX];
  size_t n;
} nm_cand_memory;

/* Forgets everything: the peer's candidates changed (it moved), so old failures say
 * nothing about the new ones. */
void nm_cand_memory_reset(nm_cand_memory *m);
/* One more failure of ip:port at now. */
void nm_cand_memory_failed(nm_cand_memory *m, const char *ip, uint16_t port, uint64_t now);
/* ip:port completed a handshake: its failures are forgotten. */
void nm_cand_memory_succeeded(nm_cand_memory *m, const char *ip, uint16_t port);
/* 1 when ip:port may be dialled at now (never failed, or its backoff has passed). */
int nm_cand_memory_ready(const nm_cand_memory *m, const char *ip, uint16_t port, uint64_t now);
/* The earliest time a candidate in backoff becomes ready again, or 0 when none waits. */
uint64_t nm_cand_memory_next_ready(const nm_cand_memory *m, uint64_t now);

/* ---- one Happy Eyeballs round --------------------------------------------------------- */
typedef enum {
  NM_CAND_IDLE = 0, /* not tried yet in this round */
  NM_CAND_TRYING,
  NM_CAND_FAILED,
  NM_CAND_WON,
  NM_CAND_SKIPPED,  /* in its backoff: not dialled in this round */
  NM_CAND_CANCELLED,/* still in flight when another won: closed without complaint */
} nm_cand_state;

typedef struct {
  nm_cand cand[NM_CAND_DIAL_MAX];
  nm_cand_state state[NM_CAND_DIAL_MAX];
  size_t n;
  size_t primary;         /* index of the primary address in cand */
  size_t next;            /* the next index to consider starting */
  size_t in_flight;
  size_t failed;          /* attempts of this round that failed */
  uint64_t last_start_ms; /* when the last attempt started */
  int kick;               /* an attempt failed: the next starts without waiting */
  int won;                /* index + 1 of the winner, 0 while none */
} nm_cand_round;

/* Starts a round over p's candidates (nm_cand_order), those in their backoff (memory, may
 * be NULL) marked skipped, the primary never. Returns the number that will be dialled. */
size_t nm_cand_round_begin(nm_cand_round *r, const nm_peer *p, const char *our_ip,
                           const nm_cand_memory *memory, uint64_t now);
/* The index of the candidate to start now (its state is then TRYING), or -1 when none:
 * call again until -1. *wake_ms (may be NULL) receives when to ask again if nothing
 * happens before (0: not needed, the round waits for attempts in flight). */
int nm_cand_round_next(nm_cand_round *r, uint64_t now, uint64_t *wake_ms);
/* Attempt i failed; the next one may start at once. */
void nm_cand_round_failed(nm_cand_round *r, size_t i);
/* Attempt i completed its handshake: it wins; the others in flight become CANCELLED, and
 * the caller closes them without complaint. */
void nm_cand_round_won(nm_cand_round *r, size_t i);
/* 1 when the round is over: an attempt won, or every candidate was dialled and failed. */
int nm_cand_round_over(const nm_cand_round *r);
/* 1 when the round is over with no winner: the peer is unreachable by any candidate. */
int nm_cand_round_all_failed(const nm_cand_round *r);

#endif
