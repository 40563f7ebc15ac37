#include "nm_lineq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void nm_lineq_init(nm_lineq *q, size_t max_count, size_t max_bytes, uint64_t ttl_ms) {
  memset(q, 0, sizeof *q);
  q->max_count = max_count ? max_count : 1;
  q->max_bytes = max_bytes ? max_bytes : 1;
  q->ttl_ms = ttl_ms;
}

nm_lineq_item *nm_lineq_pop(nm_lineq *q) {
  nm_lineq_item *it = q->head;
  if (!it) return NULL;
  q->head = it->next;
  if (!q->head) q->tail = NULL;
  q->count--;
  q->bytes -= nm_lineq_cost(it->len);
  it->next = NULL;
  return it;
}

int nm_lineq_push(nm_lineq *q, uint64_t now_ms, const char *origin, const char *payload, size_t len) {
  size_t olen = origin ? strlen(origin) : 0;
  if (olen > NM_ID_LEN) return -EINVAL;
  size_t cost = nm_lineq_cost(len);
  if (len > q->max_bytes || cost > q->max_bytes) return -E2BIG;
  nm_lineq_item *it = malloc(cost);
  if (!it) return -ENOMEM;
  it->next = NULL;
  it->at_ms = now_ms;
  memcpy(it->origin, origin ? origin : "", olen + 1);
  it->len = len;
  if (len) memcpy(it->payload, payload, len);
  int pushed = 0;
  while (q->head && (q->count + 1 > q->max_count || q->bytes + cost > q->max_bytes)) {
    free(nm_lineq_pop(q));
    q->pushed_out++;
    pushed++;
  }
  if (q->tail) q->tail->next = it;
  else q->head = it;
  q->tail = it;
  q->count++;
  q->bytes += cost;
  return pushed;
}

int nm_lineq_expired(const nm_lineq *q, const nm_lineq_item *item, uint64_t now_ms) {
  return q->ttl_ms && now_ms > item->at_ms && now_ms - item->at_ms > q->ttl_ms;
}

size_t nm_lineq_expire(nm_lineq *q, uint64_t now_ms) {
  size_t n = 0;
  while (q->head && nm_lineq_expired(q, q->head, now_ms)) {
    free(nm_lineq_pop(q));
    n++;
  }
  return n;
}

void nm_lineq_clear(nm_lineq *q) {
  while (q->head) free(nm_lineq_pop(q));
}

size_t nm_lineq_count_origin(const nm_lineq *q, const char *origin) {
  size_t n = 0;
  for (const nm_lineq_item *it = q->head; it; it = it->next) n += strcmp(it->origin, origin) == 0;
  return n;
}

nm_lineq_item *nm_lineq_take_origin(nm_lineq *q, const char *origin) {
  nm_lineq_item *prev = NULL;
  for (nm_lineq_item *it = q->head; it; prev = it, it = it->next) {
    if (strcmp(it->origin, origin) != 0) continue;
    if (prev) prev->next = it->next;
    else q->head = it->next;
    if (q->tail == it) q->tail = prev;
    q->count--;
    q->bytes -= nm_lineq_cost(it->len);
    it->next = NULL;
    return it;
  }
  return NULL;
}
