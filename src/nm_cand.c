/* nm_cand: the dial order, the per-candidate memory and one Happy Eyeballs round; see
 * nm_cand.h. */
#include "nm_cand.h"

#include <string.h>
#include <sys/socket.h>

#include "nm_addr.h"

nm_cand_kind nm_cand_primary_kind(const nm_peer *p) {
  return p->mapping != NM_MAPPING_NONE ? NM_CAND_MAPPED : NM_CAND_OBSERVED;
}

static int nm__cand_same(const nm_cand *c, const char *ip, uint16_t port) {
  return c->port == port && nm_addr_equal(c->ip, ip);
}

/* Appends ip:port unless it is there already. */
static void nm__cand_add(nm_cand *out, size_t *n, size_t max, const char *ip, uint16_t port, nm_cand_kind kind) {
  if (*n >= max || nm_addr_family(ip) < 0 || port == 0) return;
  for (size_t i = 0; i < *n; i++)
    if (nm__cand_same(&out[i], ip, port)) return;
  nm_cand *c = &out[(*n)++];
  memset(c, 0, sizeof *c);
  strncpy(c->ip, ip, sizeof c->ip - 1);
  c->port = port;
  c->kind = kind;
}

/* RFC 8305 section 4: the tier's entries reordered so that families alternate, IPv6
 * first, each family keeping its own order. */
static void nm__cand_interleave(nm_cand *t, size_t n) {
  nm_cand v6[NM_CAND_DIAL_MAX], v4[NM_CAND_DIAL_MAX];
  size_t n6 = 0, n4 = 0;
  for (size_t i = 0; i < n; i++) {
    if (nm_addr_family(t[i].ip) == AF_INET6) v6[n6++] = t[i];
    else v4[n4++] = t[i];
  }
  size_t k = 0, i6 = 0, i4 = 0;
  while (i6 < n6 || i4 < n4) {
    if (i6 < n6) t[k++] = v6[i6++];
    if (i4 < n4) t[k++] = v4[i4++];
  }
}

/* Whether the peer very likely sits behind the same NAT as we do: the manager saw it come
 * from our own public address. */
static int nm__cand_same_public(const nm_peer *p, const char *our_ip) {
  if (!our_ip || !our_ip[0] || nm_addr_family(our_ip) < 0) return 0;
  if (nm_addr_family(p->ip) > 0 && nm_addr_equal(p->ip, our_ip)) return 1;
  for (size_t i = 0; i < p->ncands && i < NM_CANDS_MAX; i++)
    if (p->cands[i].kind == NM_CAND_OBSERVED && nm_addr_equal(p->cands[i].ip, our_ip)) return 1;
  return 0;
}

size_t nm_cand_order(const nm_peer *p, const char *our_ip, nm_cand out[NM_CAND_DIAL_MAX], size_t *primary_index) {
  size_t n = 0, ncands = p->ncands < NM_CANDS_MAX ? p->ncands : NM_CANDS_MAX;
  nm_cand_kind pk = nm_cand_primary_kind(p);
  int same = nm__cand_same_public(p, our_ip);
  /* Tiers: [local, if same public address] [mapped, observed] [the other locals]. Each is
   * collected in the manager's order, deduplicated against everything before it (the
   * primary goes first in its own kind), then interleaved. */
  size_t start = 0;
  if (same) {
    for (size_t i = 0; i < ncands; i++)
      if (p->cands[i].kind == NM_CAND_LOCAL) nm__cand_add(out, &n, NM_CAND_DIAL_MAX, p->cands[i].ip, p->cands[i].port, NM_CAND_LOCAL);
    nm__cand_interleave(out + start, n - start);
    start = n;
  }
  const nm_cand_kind middle[] = {NM_CAND_MAPPED, NM_CAND_OBSERVED};
  for (size_t k = 0; k < 2; k++) {
    if (pk == middle[k]) nm__cand_add(out, &n, NM_CAND_DIAL_MAX, p->ip, p->port, pk);
    for (size_t i = 0; i < ncands; i++)
      if (p->cands[i].kind == middle[k]) nm__cand_add(out, &n, NM_CAND_DIAL_MAX, p->cands[i].ip, p->cands[i].port, middle[k]);
  }
  nm__cand_interleave(out + start, n - start);
  start = n;
  for (size_t i = 0; i < ncands; i++)
    if (p->cands[i].kind == NM_CAND_LOCAL) nm__cand_add(out, &n, NM_CAND_DIAL_MAX, p->cands[i].ip, p->cands[i].port, NM_CAND_LOCAL);
  nm__cand_interleave(out + start, n - start);
  /* The primary is always there (a full list cannot push it out: it is added before any
   * tier but the same-LAN one, which holds at most NM_CANDS_MAX). */
  if (primary_index) *primary_index = 0;
  for (size_t i = 0; i < n; i++)
    if (nm__cand_same(&out[i], p->ip, p->port)) {
      if (primary_index) *primary_index = i;
      break;
    }
  return n;
}

/* ---- memory ---------------------------------------------------------------------------- */

void nm_cand_memory_reset(nm_cand_memory *m) { memset(m, 0, sizeof *m); }

static nm_cand_memo *nm__memo_find(const nm_cand_memory *m, const char *ip, uint16_t port) {
  for (size_t i = 0; i < m->n; i++)
    if (m->e[i].port == port && nm_addr_equal(m->e[i].ip, ip)) return (nm_cand_memo *)&m->e[i];
  return NULL;
}

void nm_cand_memory_failed(nm_cand_memory *m, const char *ip, uint16_t port, uint64_t now) {
  nm_cand_memo *e = nm__memo_find(m, ip, port);
  if (!e) {
    if (m->n < NM_CAND_DIAL_MAX) {
      e = &m->e[m->n++];
    } else {
      e = &m->e[0];
      for (size_t i = 1; i < m->n; i++)
        if (m->e[i].last_ms < e->last_ms) e = &m->e[i];
    }
    memset(e, 0, sizeof *e);
    strncpy(e->ip, ip, sizeof e->ip - 1);
    e->port = port;
  }
  if (e->failures < 30) e->failures++;
  uint64_t d = NM_CAND_BACKOFF_FIRST_MS;
  for (unsigned i = 1; i < e->failures && d < NM_CAND_BACKOFF_MAX_MS; i++) d *= 2;
  if (d > NM_CAND_BACKOFF_MAX_MS) d = NM_CAND_BACKOFF_MAX_MS;
  e->retry_at_ms = now + d;
  e->last_ms = now;
}

void nm_cand_memory_succeeded(nm_cand_memory *m, const char *ip, uint16_t port) {
  nm_cand_memo *e = nm__memo_find(m, ip, port);
  if (!e) return;
  *e = m->e[--m->n];
}

int nm_cand_memory_ready(const nm_cand_memory *m, const char *ip, uint16_t port, uint64_t now) {
  const nm_cand_memo *e = nm__memo_find(m, ip, port);
  return !e || now >= e->retry_at_ms;
}

uint64_t nm_cand_memory_next_ready(const nm_cand_memory *m, uint64_t now) {
  uint64_t best = 0;
  for (size_t i = 0; i < m->n; i++)
    if (m->e[i].retry_at_ms > now && (!best || m->e[i].retry_at_ms < best)) best = m->e[i].retry_at_ms;
  return best;
}

/* ---- one round ------------------------------------------------------------------------- */

size_t nm_cand_round_begin(nm_cand_round *r, const nm_peer *p, const char *our_ip, const nm_cand_memory *memory,
                           uint64_t now) {
  memset(r, 0, sizeof *r);
  r->n = nm_cand_order(p, our_ip, r->cand, &r->primary);
  size_t dial = 0;
  for (size_t i = 0; i < r->n; i++) {
    int ready = i == r->primary || !memory || nm_cand_memory_ready(memory, r->cand[i].ip, r->cand[i].port, now);
    r->state[i] = ready ? NM_CAND_IDLE : NM_CAND_SKIPPED;
    dial += ready;
  }
  return dial;
}

int nm_cand_round_next(nm_cand_round *r, uint64_t now, uint64_t *wake_ms) {
  if (wake_ms) *wake_ms = 0;
  if (r->won) return -1;
  while (r->next < r->n && r->state[r->next] == NM_CAND_SKIPPED) r->next++;
  if (r->next >= r->n) return -1;
  if (r->in_flight >= NM_CAND_IN_FLIGHT_MAX) return -1; /* a failure kicks the next one */
  if (r->in_flight > 0 && !r->kick && now < r->last_start_ms + NM_CAND_STAGGER_MS) {
    if (wake_ms) *wake_ms = r->last_start_ms + NM_CAND_STAGGER_MS;
    return -1;
  }
  size_t i = r->next++;
  r->state[i] = NM_CAND_TRYING;
  r->in_flight++;
  r->last_start_ms = now;
  r->kick = 0;
  /* The next one, if any, is due a stagger later. */
  size_t j = r->next;
  while (j < r->n && r->state[j] == NM_CAND_SKIPPED) j++;
  if (wake_ms && j < r->n && r->in_flight < NM_CAND_IN_FLIGHT_MAX) *wake_ms = now + NM_CAND_STAGGER_MS;
  return (int)i;
}

void nm_cand_round_failed(nm_cand_round *r, size_t i) {
  if (i >= r->n || r->state[i] != NM_CAND_TRYING) return;
  r->state[i] = NM_CAND_FAILED;
  r->in_flight--;
  r->failed++;
  r->kick = 1;
}

void nm_cand_round_won(nm_cand_round *r, size_t i) {
  if (i >= r->n || r->state[i] != NM_CAND_TRYING || r->won) return;
  for (size_t k = 0; k < r->n; k++)
    if (k != i && r->state[k] == NM_CAND_TRYING) r->state[k] = NM_CAND_CANCELLED;
  r->state[i] = NM_CAND_WON;
  r->in_flight = 0;
  r->won = (int)i + 1;
}

int nm_cand_round_over(const nm_cand_round *r) {
  if (r->won) return 1;
  if (r->in_flight) return 0;
  for (size_t i = r->next; i < r->n; i++)
    if (r->state[i] == NM_CAND_IDLE) return 0;
  return 1;
}

int nm_cand_round_all_failed(const nm_cand_round *r) { return !r->won && nm_cand_round_over(r); }
