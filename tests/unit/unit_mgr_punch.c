/* The manager's punch memory (src/manager/punch_memory.c): a pair is punched once per pair of
 * endpoints, again when either endpoint changes or after MGR_PUNCH_RETRY_MS, and the memory
 * stays bounded. */
#include "punch.h"
#include "nmt.h"

#include <stdio.h>

static void test_once_until_something_changes(void) {
  static mgr_punch_memory mem;
  NMT_EQ_INT(mgr_punch_memory_take(&mem, "aaaa", "11.0.0.2:40001", "bbbb", "11.0.0.3:40002", 1000), 1);
  /* the other side's complaint about the same pair: nothing changed */
  NMT_EQ_INT(mgr_punch_memory_take(&mem, "bbbb", "11.0.0.3:40002", "aaaa", "11.0.0.2:40001", 1500), 0);
  NMT_EQ_INT(mgr_punch_memory_take(&mem, "aaaa", "11.0.0.2:40001", "bbbb", "11.0.0.3:40002", 60000), 0);
  /* a new session (another source port) is a change */
  NMT_EQ_INT(mgr_punch_memory_take(&mem, "aaaa", "11.0.0.2:40009", "bbbb", "11.0.0.3:40002", 61000), 1);
  NMT_EQ_INT(mgr_punch_memory_take(&mem, "aaaa", "11.0.0.2:40009", "bbbb", "11.0.0.3:40002", 62000), 0);
  /* long after, the same endpoints are tried again */
  NMT_EQ_INT(mgr_punch_memory_take(&mem, "aaaa", "11.0.0.2:40009", "bbbb", "11.0.0.3:40002", 61000 + MGR_PUNCH_RETRY_MS), 1);
  NMT_EQ_INT(mem.n, 1);
}

static void test_bounded(void) {
  static mgr_punch_memory mem;
  char id[8];
  for (unsigned i = 0; i < MGR_PUNCH_MEMORY + 10; i++) {
    snprintf(id, sizeof id, "p%u", i);
    NMT_EQ_INT(mgr_punch_memory_take(&mem, "aaaa", "11.0.0.2:1", id, "11.0.0.9:2", 1000 + i), 1);
  }
  NMT_EQ_INT(mem.n, MGR_PUNCH_MEMORY);
  /* the oldest went first: p0 is forgotten, the newest is remembered */
  NMT_EQ_INT(mgr_punch_memory_take(&mem, "aaaa", "11.0.0.2:1", "p0", "11.0.0.9:2", 5000), 1);
  snprintf(id, sizeof id, "p%u", MGR_PUNCH_MEMORY + 9);
  NMT_EQ_INT(mgr_punch_memory_take(&mem, "aaaa", "11.0.0.2:1", id, "11.0.0.9:2", 5000), 0);
}

int main(void) {
  NMT_RUN(test_once_until_something_changes);
  NMT_RUN(test_bounded);
  return nmt_done();
}
