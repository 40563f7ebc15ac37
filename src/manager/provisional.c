/* Provisional relays: a newcomer behind NAT pulls from a relay from its first moment (rules
 * in provisional.h). The relay choice, the token and the messages are relays.c's; this
 * module decides when a provisional relay starts and ends. */
#include "provisional.h"
#include "cands.h"
#include "relays.h"
#include "nm_addr.h"
#include "nm_log.h"

int mgr_provisional_on_join(manager *m, mgr_session *s) {
  /* Only a servant's first listening in a registration, with nothing decided about it yet:
   * no relay (a remembered verdict or a pair), not mapped, no usable mapping. A relay node
   * is never a client. */
  if (s->state != MGR_SESSION_WELCOMED || s->role != NM_ROLE_SERVANT || s->relay_id[0] || s->pair ||
      s->provisional || s->ext_port || (s->reach != NM_REACH_UNKNOWN && s->reach != NM_REACH_DIRECT))
    return 0;
  mgr_nat_seen nat = mgr_nat_judge(s->conn.peer_ip, (const char(*)[NM_IP_STRLEN])s->local, s->nlocal);
  if (nat != MGR_NAT_BEHIND) {
    nm_log_debug("%s: NAT %s (seen at %s, %zu local addresses): no provisional relay", s->name,
                 mgr_nat_seen_name(nat), s->conn.peer_ip, s->nlocal);
    return 0;
  }
  s->provisional = 1;
  s->provisional_ms = mgr_now_ms(m);
  if (mgr_relay_pick(m, s, NULL, NULL) < 0) {
    s->provisional = 0;
    nm_log_info("relay: %s joined from behind NAT with no port mapping, but no relay can serve it now: it "
                "waits for the complaints' verdict",
                s->name);
    return 0;
  }
  mgr_session *relay = mgr_find_listed(m, s->relay_id);
  nm_log_info("relay: %s joined from behind NAT (seen at %s, none of its %zu local address%s) with no port "
              "mapping: provisional relay %s until a mapping, a verdict, or %u s without a complaint",
              s->name, s->conn.peer_ip, s->nlocal, s->nlocal == 1 ? "" : "es", relay ? relay->name : s->relay_id,
              m->cfg.complaint_window_s);
  return 1;
}

void mgr_provisional_release(manager *m, mgr_session *s, const char *why) {
  if (!s->provisional) return;
  s->provisional = 0;
  if (!s->relay_id[0]) return;
  mgr_session *relay = mgr_find_listed(m, s->relay_id);
  nm_log_info("relay: %s's provisional relay %s released: %s", s->name, relay ? relay->name : s->relay_id, why);
  mgr_relay_unlink(m, s);
  mgr_relay_send_assign(m, s); /* without a relay: pull no more */
}

void mgr_provisional_settle(mgr_session *s) { s->provisional = 0; }

void mgr_provisional_sweep(manager *m) {
  mgr_verdict_rules rules = mgr_rules(m);
  uint64_t now = mgr_now_ms(m);
  uint64_t window = (uint64_t)rules.window_s * 1000;
  for (mgr_session *s = m->index.relayed; s; s = s->rel_next) { /* a provisional one has a relay */
    if (s->state != MGR_SESSION_REGISTERED || !s->provisional || now - s->provisional_ms < window) continue;
    /* A live complaint (even one below the threshold) may still grow into a verdict. */
    if (mgr_complaints_reporter_ids(&s->complaints, &rules, now, 1, NULL, 0) > 0) continue;
    mgr_provisional_release(m, s, "no complaint about it within the complaint window: peers reach it");
    mgr_publish_upsert(m, s);
  }
}
