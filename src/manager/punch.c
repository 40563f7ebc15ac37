/* The manager's part of hole punching: see punch.h. */
#include "punch.h"
#include "cands.h"
#include "manager.h"
#include "nm_punch.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

uint16_t mgr_punch_port(const mgr_session *s) {
  if (s->role != NM_ROLE_SERVANT || s->ext_ip[0] || !s->conn.peer_port) return 0;
  if (!nm_addr_is_candidate(s->conn.peer_ip)) return 0;
  /* Seen at an address of its own: not behind NAT, its observed candidate is enough. (With
   * no addresses of its own reported the manager cannot tell; an endpoint to punch to costs
   * nothing then.) */
  if (mgr_nat_judge(s->conn.peer_ip, (const char(*)[NM_IP_STRLEN])s->local, s->nlocal) == MGR_NAT_NONE) return 0;
  return s->conn.peer_port;
}

/* The round trip the kernel measures on s's session (its segments are mostly heartbeats and
 * their acks), in ms; 0 when it cannot be read. */
static unsigned mgr__session_rtt_ms(mgr_session *s) {
  uv_os_fd_t fd;
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  if (uv_fileno((uv_handle_t *)&s->conn.tcp, &fd) < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
    return 0;
  return (ti.tcpi_rtt + 999) / 1000;
}

static void mgr__punch_send(mgr_session *to, const mgr_session *other, uint16_t other_port, uint64_t delay_ms) {
  nm_msg m = {.type = NM_MSG_PUNCH};
  nm_msg_punch *p = &m.u.punch;
  snprintf(p->id, sizeof p->id, "%s", other->id);
  memcpy(p->key, other->key, sizeof p->key);
  snprintf(p->ip, sizeof p->ip, "%s", other->conn.peer_ip);
  p->port = other_port;
  p->delay_ms = delay_ms;
  nm_msg_send(&to->conn, &m);
}

void mgr_punch_on_complaint(manager *m, mgr_session *r, mgr_session *a) {
  if (!r || !a || r == a || r->state != MGR_SESSION_REGISTERED || a->state != MGR_SESSION_REGISTERED) return;
  uint16_t pr = mgr_punch_port(r), pa = mgr_punch_port(a);
  if (!pr || !pa) return;
  /* Behind the same address: the same LAN, where local candidates are the way. */
  if (nm_addr_equal(r->conn.peer_ip, a->conn.peer_ip)) return;
  if (nm_addr_family(r->conn.peer_ip) != nm_addr_family(a->conn.peer_ip)) return;
  char epr[NM_ADDR_STRLEN], epa[NM_ADDR_STRLEN];
  nm_addr_str(r->conn.peer_ip, pr, epr);
  nm_addr_str(a->conn.peer_ip, pa, epa);
  if (!mgr_punch_memory_take(&m->punches, r->id, epr, a->id, epa, mgr_now_ms(m))) return;
  unsigned rtt_r = mgr__session_rtt_ms(r), rtt_a = mgr__session_rtt_ms(a);
  uint64_t dr, da;
  nm_punch_schedule(rtt_r, rtt_a, NM_PUNCH_MARGIN_MS, &dr, &da);
  mgr__punch_send(r, a, pa, dr);
  mgr__punch_send(a, r, pr, da);
  m->stats.punches++;
  nm_log_info("punch: %s (at %s, rtt %u ms) and %s (at %s, rtt %u ms) dial each other in %llu / %llu ms", r->name,
              epr, rtt_r, a->name, epa, rtt_a, (unsigned long long)dr, (unsigned long long)da);
}
