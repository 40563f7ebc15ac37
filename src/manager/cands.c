/* The manager's candidate list for a servant: a pure function (rules in cands.h). */
#include "cands.h"

#include <stdio.h>
#include <string.h>

/* Appends ip:port as a candidate of kind unless it cannot be one, is listed already, or the
 * list is full. */
static void mgr__cand_add(nm_cand *out, size_t *n, const char *ip, uint16_t port, nm_cand_kind kind) {
  if (*n == NM_CANDS_MAX || !ip || !ip[0] || !port || !nm_addr_is_candidate(ip)) return;
  for (size_t i = 0; i < *n; i++)
    if (out[i].port == port && nm_addr_equal(out[i].ip, ip)) return;
  nm_cand *c = &out[(*n)++];
  memset(c, 0, sizeof *c);
  snprintf(c->ip, sizeof c->ip, "%s", ip);
  c->port = port;
  c->kind = kind;
}

size_t mgr_cands_build(const mgr_cand_source *src, nm_cand out[NM_CANDS_MAX]) {
  size_t n = 0;
  /* What the router forwards, what the manager saw, then where peers behind the same
   * router find it. */
  if (src->ext_ip && src->ext_ip[0] && src->ext_port)
    mgr__cand_add(out, &n, src->ext_ip, src->ext_port, NM_CAND_MAPPED);
  mgr__cand_add(out, &n, src->observed_ip, src->port, NM_CAND_OBSERVED);
  mgr__cand_add(out, &n, src->other_ip, src->port, NM_CAND_OBSERVED);
  for (size_t i = 0; i < src->nlocal; i++) mgr__cand_add(out, &n, src->local[i], src->port, NM_CAND_LOCAL);
  /* Behind NAT: where it dials peers from, for a punch (never a plain dial). Last, so it
   * never takes a dialable candidate's place; the punch message carries it anyway. */
  if (src->punch_port) mgr__cand_add(out, &n, src->observed_ip, src->punch_port, NM_CAND_PUNCH);
  return n;
}

const char *mgr_nat_seen_name(mgr_nat_seen n) {
  switch (n) {
  case MGR_NAT_NONE: return "none";
  case MGR_NAT_BEHIND: return "behind";
  case MGR_NAT_UNKNOWN: break;
  }
  return "unknown";
}

mgr_nat_seen mgr_nat_judge(const char *observed_ip, const char (*local)[NM_IP_STRLEN], size_t nlocal) {
  /* Without its own addresses there is nothing to compare: a servant that keeps them to
   * itself is judged by complaints alone, as before. A loopback (or otherwise
   * non-candidate) observed address is a servant on the manager's own machine. */
  if (!observed_ip || !nlocal || !nm_addr_is_candidate(observed_ip)) return MGR_NAT_UNKNOWN;
  for (size_t i = 0; i < nlocal; i++)
    if (nm_addr_equal(local[i], observed_ip)) return MGR_NAT_NONE;
  return MGR_NAT_BEHIND;
}
