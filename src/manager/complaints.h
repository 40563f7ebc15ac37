/* Complaints about unreachable servants, the suspicious verdict and relay assignment. */
#ifndef NM_MANAGER_COMPLAINTS_H
#define NM_MANAGER_COMPLAINTS_H

#include "manager.h"

int mgr_on_complaint(mgr_session *reporter, const char *payload, size_t len);
int mgr_on_relay_load(mgr_session *relay, const char *payload, size_t len);
/* A servant left: drop what it reported and what was reported about it. */
void mgr_complaints_forget(manager *m, const char *id);
/* A servant or relay joined: a relay may take waiting clients. */
void mgr_relays_on_join(manager *m, mgr_session *s);

#endif
