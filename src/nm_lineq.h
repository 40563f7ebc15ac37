/* nm_lineq: a FIFO of chat frames bounded in lines, in bytes and in age.
 *
 * Three places keep lines for later: a servant's backlog for a peer it is not connected to
 * yet, a relay's replay ring (the last minute, replayed to a client that attaches), and a
 * servant's pending lines from origins the manager has not listed to it yet (taken out per
 * origin when the origin gets listed). A
 * count of lines alone does not bound memory: issue 9's attack sent 300 chat frames with
 * 1 MiB payloads and took a servant from 5 to 306 MiB. Here the bytes held (each payload
 * and its entry's header) are bounded too; when a new line needs room, the oldest lines are
 * pushed out first, and a line larger than the whole byte bound is refused.
 *
 * Pure: no clock (time comes in as an argument, milliseconds on any monotonic clock), no
 * I/O, no logging; the caller owns the memory. */
#ifndef NM_LINEQ_H
#define NM_LINEQ_H

#include <stddef.h>
#include <stdint.h>

#include "nm_proto.h"

typedef struct nm_lineq_item {
  struct nm_lineq_item *next;
  uint64_t at_ms;              /* when it was pushed */
  char origin[NM_ID_LEN + 1];  /* its author ("" if the caller does not care) */
  size_t len;
  char payload[];              /* the chat frame's payload */
} nm_lineq_item;

typedef struct {
  nm_lineq_item *head, *tail;
  size_t count;     /* lines held */
  size_t bytes;     /* bytes held: payloads and entry headers */
  size_t max_count; /* >= 1 */
  size_t max_bytes; /* >= 1 */
  uint64_t ttl_ms;  /* 0: lines never expire */
  uint64_t pushed_out; /* lines dropped to make room (not by age) */
} nm_lineq;

/* What one line of len payload bytes costs against max_bytes. */
static inline size_t nm_lineq_cost(size_t len) { return sizeof(nm_lineq_item) + len; }

void nm_lineq_init(nm_lineq *q, size_t max_count, size_t max_bytes, uint64_t ttl_ms);
/* Appends a copy of payload, first pushing out the oldest lines until it fits. Returns how
 * many lines were pushed out (>= 0), -E2BIG for a line that could never fit (its cost
 * exceeds max_bytes; nothing is pushed out), -EINVAL for an origin too long, or -ENOMEM. */
int nm_lineq_push(nm_lineq *q, uint64_t now_ms, const char *origin, const char *payload, size_t len);
/* Forgets the lines older than ttl_ms at now_ms. Returns how many. */
size_t nm_lineq_expire(nm_lineq *q, uint64_t now_ms);
/* Takes the oldest line out (the caller frees it with free()), or NULL when empty. */
nm_lineq_item *nm_lineq_pop(nm_lineq *q);
/* 1 when item is older than the queue's ttl at now_ms. */
int nm_lineq_expired(const nm_lineq *q, const nm_lineq_item *item, uint64_t now_ms);
void nm_lineq_clear(nm_lineq *q);
/* How many lines of origin the queue holds (a scan: for small queues). */
size_t nm_lineq_count_origin(const nm_lineq *q, const char *origin);
/* Takes the oldest line of origin out (the caller frees it with free()), or NULL when there
 * is none; the other lines keep their order. */
nm_lineq_item *nm_lineq_take_origin(nm_lineq *q, const char *origin);

#endif
