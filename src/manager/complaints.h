/* Complaints: "I could not connect to that servant". complaints.c keeps them on the
 * accused's session and returns the verdict (the rules are verdict.c's); it never acts on
 * a verdict: the session code does (session.c). */
#ifndef NM_MANAGER_COMPLAINTS_H
#define NM_MANAGER_COMPLAINTS_H

#include "manager.h"

/* reporter complains that it cannot reach accused_id. *accused is set to the accused's
 * session when it is registered (else NULL). Returns the verdict about it: NONE when the
 * complaint does not count (unknown accused, itself, already suspicious or relayed, too
 * soon after the last one) or the evidence is not enough; SUSPICIOUS when it now is; PAIR
 * when some reporters are at the threshold but not a quorum (the pair path, relays.h). */
mgr_verdict mgr_complaint_receive(manager *m, mgr_session *reporter, const char *accused_id,
                                  mgr_session **accused);

/* How many reporters have the threshold of live complaints about s. */
unsigned mgr_complaint_reporters(manager *m, const mgr_session *s);

/* s leaves the overlay: its complaints about others, and theirs about it, go with it. */
void mgr_complaints_on_leave(manager *m, mgr_session *s);

#endif
