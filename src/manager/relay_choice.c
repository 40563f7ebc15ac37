/* The relay choice: a pure function over candidate records (rules in relay_choice.h). */
#include "relay_choice.h"

int mgr_relay_can_serve(const mgr_relay_candidate *c) {
  return !c->is_client && c->reachable && !c->complained_about && !c->excluded &&
         c->clients < c->max_clients;
}

/* Whether a is a better relay than b (both can serve). */
static int mgr__relay_better(const mgr_relay_candidate *a, const mgr_relay_candidate *b) {
  if (a->preferred != b->preferred) return a->preferred;
  if (a->dedicated != b->dedicated) return a->dedicated;
  if (a->clients != b->clients) return a->clients < b->clients;
  return a->connected_ms > b->connected_ms;
}

mgr_standby_step mgr_standby_decide(const mgr_standby_input *in) {
  if (in->standby) return in->all_direct ? MGR_STANDBY_KEEP : MGR_STANDBY_LEAVE;
  if (!in->all_direct || !in->has_relay) return MGR_STANDBY_KEEP;
  if (in->since_ms && in->now_ms - in->since_ms < in->hold_ms) return MGR_STANDBY_KEEP;
  return MGR_STANDBY_ENTER;
}

int mgr_relay_choose(const mgr_relay_candidate *c, size_t n) {
  int best = -1;
  for (size_t i = 0; i < n; i++) {
    if (!mgr_relay_can_serve(&c[i])) continue;
    if (best < 0 || mgr__relay_better(&c[i], &c[best])) best = (int)i;
  }
  return best;
}
