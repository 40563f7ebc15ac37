/* The defaults of holder.h, for a manager without a store: no servant has a holder and the
 * status has no <store>. Weak, so the store side's definitions take their place when it
 * is linked in (or it replaces these bodies). */
#include "holder.h"

__attribute__((weak)) const char *mgr_session_holder(const struct mgr_session *s) {
  (void)s;
  return "";
}

__attribute__((weak)) void mgr_status_store(struct manager *m, struct nm_status *st) {
  (void)m;
  (void)st;
}
