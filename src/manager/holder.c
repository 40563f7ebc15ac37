/* holder.h's two answers, from the store side (shared.c): without --store, no servant has
 * a holder and the status has no <store>. Apart from shared.c so that unit_mgr_status can
 * give them bodies of its own. */
#include "holder.h"
#include "shared.h"

const char *mgr_session_holder(const struct mgr_session *s) { return mgr_shared_holder(s); }

void mgr_status_store(struct manager *m, struct nm_status *st) { mgr_shared_status(m, st); }
