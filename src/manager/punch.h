/* Coordinated TCP hole punching at the manager (docs/protocol.md, "Punching").
 *
 * A servant the manager sees behind NAT (the address its session comes from is none of the
 * addresses it reported, and it has no usable port mapping) has a punch endpoint: that
 * address and the source port of its session, which it dials peers from (its socket shares
 * the port, SO_REUSEPORT). When one such servant complains that it cannot reach another
 * (no candidate answered), the manager sends both a punch: the other's id, key and endpoint,
 * and a delay so that both dials leave at about the same moment (nm_punch_schedule, from
 * the round trips the kernel measures on their sessions, which carry the heartbeats).
 *
 * The memory (mgr_punch_memory, pure: tests/unit/unit_mgr_punch.c) says when a pair is
 * punched again: not while both endpoints are the ones already tried, within
 * MGR_PUNCH_RETRY_MS; at once when either endpoint changed (a new session, a new mapping). */
#ifndef NM_MANAGER_PUNCH_H
#define NM_MANAGER_PUNCH_H

#include <stddef.h>
#include <stdint.h>

#include "nm_addr.h"
#include "nm_proto.h"

#define MGR_PUNCH_MEMORY 256       /* pairs remembered; the oldest goes first */
#define MGR_PUNCH_RETRY_MS 120000  /* the same endpoints are punched again after this */

typedef struct {
  char a[NM_ID_LEN + 1], b[NM_ID_LEN + 1]; /* a < b */
  char ep_a[NM_ADDR_STRLEN], ep_b[NM_ADDR_STRLEN];
  uint64_t at_ms;
} mgr_punch_entry;

typedef struct {
  mgr_punch_entry e[MGR_PUNCH_MEMORY];
  size_t n;
} mgr_punch_memory;

/* Whether the pair (x at endpoint ep_x, y at ep_y) should be punched now; if so, it is
 * remembered (taking the oldest entry's place when the memory is full). */
int mgr_punch_memory_take(mgr_punch_memory *mem, const char *x, const char *ep_x, const char *y, const char *ep_y,
                          uint64_t now_ms);

struct mgr_session;
struct manager;
/* The hook session.c calls for each complaint (reporter could not reach accused). */
void mgr_punch_on_complaint(struct manager *m, struct mgr_session *reporter, struct mgr_session *accused);
/* Whether s is behind NAT, and its punch endpoint's port (0: none). */
uint16_t mgr_punch_port(const struct mgr_session *s);

#endif
