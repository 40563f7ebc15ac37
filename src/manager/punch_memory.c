/* Which pairs the manager punched, with which endpoints, and when: pure (punch.h). */
#include "punch.h"

#include <stdio.h>
#include <string.h>

int mgr_punch_memory_take(mgr_punch_memory *mem, const char *x, const char *ep_x, const char *y, const char *ep_y,
                          uint64_t now_ms) {
  /* One order for the pair, so (x, y) and (y, x) are the same entry. */
  if (strcmp(x, y) > 0) {
    const char *t = x;
    x = y, y = t;
    t = ep_x, ep_x = ep_y, ep_y = t;
  }
  mgr_punch_entry *slot = NULL;
  for (size_t i = 0; i < mem->n; i++) {
    mgr_punch_entry *e = &mem->e[i];
    if (strcmp(e->a, x) != 0 || strcmp(e->b, y) != 0) continue;
    if (strcmp(e->ep_a, ep_x) == 0 && strcmp(e->ep_b, ep_y) == 0 && now_ms - e->at_ms < MGR_PUNCH_RETRY_MS)
      return 0; /* tried with these very endpoints, not long ago: nothing changed */
    slot = e;
    break;
  }
  if (!slot && mem->n < MGR_PUNCH_MEMORY) slot = &mem->e[mem->n++];
  if (!slot) {
    slot = &mem->e[0];
    for (size_t i = 1; i < mem->n; i++)
      if (mem->e[i].at_ms < slot->at_ms) slot = &mem->e[i];
  }
  snprintf(slot->a, sizeof slot->a, "%s", x);
  snprintf(slot->b, sizeof slot->b, "%s", y);
  snprintf(slot->ep_a, sizeof slot->ep_a, "%s", ep_x);
  snprintf(slot->ep_b, sizeof slot->ep_b, "%s", ep_y);
  slot->at_ms = now_ms;
  return 1;
}
