#include "complaints.h"
#include "nm_log.h"

/* Complaints and relays arrive with the relay issue; until then a complaint is logged and
 * otherwise ignored, so servants that already send them do no harm. */
int mgr_on_complaint(mgr_session *reporter, const char *payload, size_t len) {
  nm_log_debug("complaint from %s: %.200s", reporter->name, payload);
  return 0;
}

int mgr_on_relay_load(mgr_session *relay, const char *payload, size_t len) { return 0; }
void mgr_complaints_forget(manager *m, const char *id) {}
void mgr_relays_on_join(manager *m, mgr_session *s) {}
