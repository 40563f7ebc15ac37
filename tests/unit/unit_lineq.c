/* nm_lineq: the FIFO behind a peer's backlog and a relay's replay ring. Order, the line
 * bound, the byte bound (the oldest lines make room; a line that could never fit is refused
 * and pushes nothing out), expiry by age, and the accounting that stays exact throughout. */
#include "nm_lineq.h"
#include "nmt.h"

#include <errno.h>
#include <stdlib.h>

static void test_order_and_pop(void) {
  nm_lineq q;
  nm_lineq_init(&q, 10, 1 << 20, 0);
  NMT_CHECK(nm_lineq_pop(&q) == NULL);
  NMT_EQ_INT(nm_lineq_push(&q, 1, "aaaaaaaaaaaaaaaa", "one", 3), 0);
  NMT_EQ_INT(nm_lineq_push(&q, 2, NULL, "two", 3), 0);
  NMT_EQ_INT(q.count, 2);
  NMT_EQ_INT(q.bytes, 2 * nm_lineq_cost(3));
  nm_lineq_item *it = nm_lineq_pop(&q);
  NMT_CHECK(it && it->len == 3 && memcmp(it->payload, "one", 3) == 0);
  NMT_EQ_STR(it->origin, "aaaaaaaaaaaaaaaa");
  NMT_EQ_INT(it->at_ms, 1);
  free(it);
  it = nm_lineq_pop(&q);
  NMT_CHECK(it && memcmp(it->payload, "two", 3) == 0);
  NMT_EQ_STR(it->origin, "");
  free(it);
  NMT_EQ_INT(q.count, 0);
  NMT_EQ_INT(q.bytes, 0);
  NMT_CHECK(q.head == NULL && q.tail == NULL);
  /* an origin longer than an id is refused */
  NMT_EQ_INT(nm_lineq_push(&q, 1, "aaaaaaaaaaaaaaaaa", "x", 1), -EINVAL);
}

static void test_line_bound(void) {
  nm_lineq q;
  nm_lineq_init(&q, 3, 1 << 20, 0);
  char p[8];
  for (int i = 0; i < 5; i++) {
    snprintf(p, sizeof p, "%d", i);
    NMT_EQ_INT(nm_lineq_push(&q, (uint64_t)i, NULL, p, 1), i < 3 ? 0 : 1);
  }
  NMT_EQ_INT(q.count, 3);
  NMT_EQ_INT(q.pushed_out, 2);
  NMT_CHECK(q.head->payload[0] == '2' && q.tail->payload[0] == '4');
  nm_lineq_clear(&q);
  NMT_EQ_INT(q.count, 0);
  NMT_EQ_INT(q.bytes, 0);
}

/* The attack: 300 frames of 1 MiB. Memory held stays under the byte bound. */
static void test_byte_bound(void) {
  nm_lineq q;
  size_t max = 4u << 20;
  nm_lineq_init(&q, 1000, max, 60000);
  size_t big = (1u << 20) - 100;
  char *payload = calloc(1, max);
  for (int i = 0; i < 300; i++) {
    int rc = nm_lineq_push(&q, (uint64_t)i, "0123456789abcdef", payload, big);
    NMT_CHECK(rc >= 0);
    NMT_CHECK(q.bytes <= max);
  }
  NMT_EQ_INT(q.count, 4);
  NMT_EQ_INT(q.pushed_out, 296);
  /* a small line pushes out only what it needs: here nothing, there is room for it */
  NMT_EQ_INT(nm_lineq_push(&q, 400, NULL, "x", 1), 0);
  NMT_EQ_INT(q.count, 5);
  /* a big one pushes out the oldest big one (and only it) */
  NMT_EQ_INT(nm_lineq_push(&q, 401, NULL, payload, big), 1);
  NMT_EQ_INT(q.count, 5);
  /* a line that could never fit is refused, and pushes nothing out */
  size_t before = q.count;
  NMT_EQ_INT(nm_lineq_push(&q, 401, NULL, payload, max), -E2BIG);
  NMT_EQ_INT(q.count, before);
  nm_lineq_clear(&q);
  /* exactly the bound fits */
  NMT_EQ_INT(nm_lineq_push(&q, 1, NULL, payload, max - sizeof(nm_lineq_item)), 0);
  NMT_EQ_INT(q.bytes, max);
  nm_lineq_clear(&q);
  free(payload);
}

static void test_expiry(void) {
  nm_lineq q;
  nm_lineq_init(&q, 100, 1 << 20, 1000);
  NMT_EQ_INT(nm_lineq_push(&q, 0, NULL, "a", 1), 0);
  NMT_EQ_INT(nm_lineq_push(&q, 500, NULL, "b", 1), 0);
  NMT_EQ_INT(nm_lineq_push(&q, 1500, NULL, "c", 1), 0);
  NMT_EQ_INT(nm_lineq_expire(&q, 1000), 0); /* exactly ttl old: kept */
  NMT_EQ_INT(nm_lineq_expire(&q, 1001), 1);
  NMT_CHECK(q.head->payload[0] == 'b');
  NMT_CHECK(!nm_lineq_expired(&q, q.head, 1500));
  NMT_CHECK(nm_lineq_expired(&q, q.head, 1501));
  NMT_EQ_INT(nm_lineq_expire(&q, 10000), 2);
  NMT_EQ_INT(q.count, 0);
  NMT_EQ_INT(q.bytes, 0);
  /* ttl 0: never */
  nm_lineq_init(&q, 100, 1 << 20, 0);
  NMT_EQ_INT(nm_lineq_push(&q, 0, NULL, "a", 1), 0);
  NMT_EQ_INT(nm_lineq_expire(&q, UINT64_MAX), 0);
  nm_lineq_clear(&q);
}

/* The pending lines of unlisted origins: counted and taken out per origin, oldest first,
 * the others keeping their order; head, tail and the accounting stay right wherever the
 * taken line was (first, middle, last). */
static void test_by_origin(void) {
  nm_lineq q;
  nm_lineq_init(&q, 10, 1 << 20, 0);
  const char *a = "aaaaaaaaaaaaaaaa", *b = "bbbbbbbbbbbbbbbb";
  NMT_EQ_INT(nm_lineq_count_origin(&q, a), 0);
  NMT_CHECK(nm_lineq_take_origin(&q, a) == NULL);
  NMT_EQ_INT(nm_lineq_push(&q, 1, a, "a1", 2), 0);
  NMT_EQ_INT(nm_lineq_push(&q, 2, b, "b1", 2), 0);
  NMT_EQ_INT(nm_lineq_push(&q, 3, a, "a2", 2), 0);
  NMT_EQ_INT(nm_lineq_push(&q, 4, b, "b2", 2), 0);
  NMT_EQ_INT(nm_lineq_push(&q, 5, a, "a3", 2), 0);
  NMT_EQ_INT(nm_lineq_count_origin(&q, a), 3);
  NMT_EQ_INT(nm_lineq_count_origin(&q, b), 2);
  NMT_EQ_INT(nm_lineq_count_origin(&q, "cccccccccccccccc"), 0);
  /* b's: the second, then the fourth (middle) */
  nm_lineq_item *it = nm_lineq_take_origin(&q, b);
  NMT_CHECK(it && memcmp(it->payload, "b1", 2) == 0 && it->at_ms == 2 && it->next == NULL);
  free(it);
  it = nm_lineq_take_origin(&q, b);
  NMT_CHECK(it && memcmp(it->payload, "b2", 2) == 0);
  free(it);
  NMT_CHECK(nm_lineq_take_origin(&q, b) == NULL);
  NMT_EQ_INT(q.count, 3);
  NMT_EQ_INT(q.bytes, 3 * nm_lineq_cost(2));
  nm_lineq_clear(&q);
  /* the last one: the tail moves back, and a push after it still lands at the end */
  nm_lineq_init(&q, 10, 1 << 20, 0);
  NMT_EQ_INT(nm_lineq_push(&q, 1, a, "a1", 2), 0);
  NMT_EQ_INT(nm_lineq_push(&q, 2, b, "b1", 2), 0);
  it = nm_lineq_take_origin(&q, b);
  NMT_CHECK(it != NULL);
  free(it);
  NMT_CHECK(q.tail == q.head);
  NMT_EQ_INT(nm_lineq_push(&q, 3, b, "b2", 2), 0);
  it = nm_lineq_pop(&q);
  NMT_CHECK(it && memcmp(it->payload, "a1", 2) == 0);
  free(it);
  it = nm_lineq_pop(&q);
  NMT_CHECK(it && memcmp(it->payload, "b2", 2) == 0);
  free(it);
  /* the only one: empty again */
  NMT_EQ_INT(nm_lineq_push(&q, 4, a, "a2", 2), 0);
  it = nm_lineq_take_origin(&q, a);
  NMT_CHECK(it != NULL);
  free(it);
  NMT_CHECK(q.head == NULL && q.tail == NULL);
  NMT_EQ_INT(q.count, 0);
  NMT_EQ_INT(q.bytes, 0);
  nm_lineq_clear(&q);
}

int main(void) {
  NMT_RUN(test_order_and_pop);
  NMT_RUN(test_line_bound);
  NMT_RUN(test_byte_bound);
  NMT_RUN(test_expiry);
  NMT_RUN(test_by_origin);
  return nmt_done();
}
