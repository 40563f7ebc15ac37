/* The heartbeat tracker's other half: complaints about unreachable servants and the
 * suspicious verdict (complaints.c), and relay assignment (relays.c). */
#ifndef NM_MANAGER_COMPLAINTS_H
#define NM_MANAGER_COMPLAINTS_H

#include "manager.h"

#define MGR_COMPLAINT_KEEP 8 /* counted complaints remembered per (reporter, accused) */

typedef struct mgr_complaint {
  char reporter[NM_ID_LEN + 1];
  uint64_t counted_ms[MGR_COMPLAINT_KEEP]; /* ring of the counted ones */
  unsigned n;                              /* how many of the ring are used */
  unsigned next;
} mgr_complaint;

/* complaints.c */
int mgr_on_complaint(mgr_session *reporter, const char *payload, size_t len);
/* How many distinct reporters have T or more live complaints about s. */
unsigned mgr_complaint_reporters(manager *m, mgr_session *s);
/* The quorum: how many reporters a verdict about s needs. */
unsigned mgr_complaint_quorum(manager *m, mgr_session *s);

/* relays.c */
int mgr_on_relay_load(mgr_session *relay, const char *payload, size_t len);
/* s was judged suspicious: find it a relay (or leave it waiting for one). */
void mgr_relay_assign(manager *m, mgr_session *s);
/* s is reachable after all (a later port mapping): it pulls no more. */
void mgr_relay_release(manager *m, mgr_session *s);
/* s is leaving the list: its complaints go, its clients get another relay, its relay
 * stops serving it. */
void mgr_relays_on_leave(manager *m, mgr_session *s);
/* s was judged suspicious: if it served clients, they need another relay. */
void mgr_relays_on_judged(manager *m, mgr_session *s);
/* A servant or relay joined: waiting suspicious servants may now get a relay. */
void mgr_relays_on_join(manager *m, mgr_session *s);

#endif
