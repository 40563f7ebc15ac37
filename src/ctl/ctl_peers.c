#include "ctl_peers.h"
#include "ctl_render.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

const char *nmctl_path_kind_name(nmctl_path_kind k) {
  switch (k) {
  case NMCTL_PATH_DIRECT: return "direct";
  case NMCTL_PATH_RELAY: return "relay";
  case NMCTL_PATH_PULL: return "pull";
  case NMCTL_PATH_LOST: return "lost";
  case NMCTL_PATH_NONE: return "none";
  }
  return "?";
}

/* name is one of the space-separated words of list ("alice bob +3"). */
static int nmctl__in_list(const char *list, const char *name) {
  size_t n = strlen(name);
  for (const char *p = list; n && *p;) {
    while (*p == ' ') p++;
    size_t w = strcspn(p, " ");
    if (w == n && strncmp(p, name, n) == 0) return 1;
    p += w;
  }
  return 0;
}

int nmctl_peers_complains(const nm_status *st, const nm_status_servant *of,
                          const nm_status_servant *peer) {
  unsigned need = st->complaint_threshold ? st->complaint_threshold : 1;
  for (unsigned i = 0; i < of->ncomplaint; i++)
    if (strcmp(of->complaint[i].from, peer->id) == 0 && of->complaint[i].count >= need) return 1;
  return nmctl__in_list(of->unreached_by, peer->name) || nmctl__in_list(of->unserved, peer->name);
}

/* How a relay path is described: "pair path", "provisional", "suspicious by quorum". */
static const char *nmctl__reason_text(nm_relay_reason r) {
  switch (r) {
  case NM_RELAY_REASON_PAIR: return "pair path";
  case NM_RELAY_REASON_PROVISIONAL: return "provisional: behind NAT, no port mapping yet";
  case NM_RELAY_REASON_SUSPICIOUS:
  case NM_RELAY_REASON_NONE: break;
  }
  return "suspicious by quorum";
}

static int nmctl__judged(const nm_status_servant *s) {
  return s->state == NM_REACH_SUSPICIOUS || s->state == NM_REACH_RELAYED;
}

/* How publisher's lines reach receiver. */
static void nmctl__path(const nm_status *st, const nm_status_servant *publisher,
                        const nm_status_servant *receiver, nmctl_path *p) {
  memset(p, 0, sizeof *p);
  if (publisher->role == NM_ROLE_RELAY) {
    p->kind = NMCTL_PATH_NONE;
    p->note = "a relay publishes no lines of its own";
    return;
  }
  int complains = nmctl_peers_complains(st, receiver, publisher);
  int via_relay = receiver->relay[0] &&
                  (nmctl__judged(receiver) || receiver->relay_reason == NM_RELAY_REASON_SUSPICIOUS ||
                   receiver->relay_reason == NM_RELAY_REASON_PROVISIONAL ||
                   (receiver->relay_reason == NM_RELAY_REASON_PAIR && complains));
  if (via_relay && strcmp(receiver->relay, publisher->id) == 0) {
    /* The publisher is the receiver's relay: its own lines come down the pull. */
    p->kind = NMCTL_PATH_PULL;
    memcpy(p->relay, publisher->id, sizeof p->relay);
    p->relay_s = publisher;
    p->reason = nmctl__judged(receiver) ? NM_RELAY_REASON_SUSPICIOUS : receiver->relay_reason;
    return;
  }
  if (via_relay) {
    p->kind = NMCTL_PATH_RELAY;
    memcpy(p->relay, receiver->relay, sizeof p->relay);
    p->relay_s = nm_status_find(st, receiver->relay);
    p->reason = nmctl__judged(receiver) ? NM_RELAY_REASON_SUSPICIOUS : receiver->relay_reason;
    return;
  }
  if (!receiver->relay[0] && receiver->relay_standby[0]) {
    /* Its every servant reaches it over a punched connection (the manager cannot see at
     * which endpoints): its relay is on standby. */
    p->kind = NMCTL_PATH_DIRECT;
    p->note = "punched: its relay on standby";
    return;
  }
  if (nmctl__judged(receiver)) {
    p->kind = NMCTL_PATH_LOST;
    p->note = "judged unreachable, no relay yet";
    return;
  }
  if (complains && receiver->unserved[0]) {
    p->kind = NMCTL_PATH_LOST;
    p->note = "cannot reach it and no relay serves the pair";
    return;
  }
  p->kind = NMCTL_PATH_DIRECT;
  snprintf(p->ip, sizeof p->ip, "%s", receiver->dial_ip);
  p->port = receiver->dial_port;
  /* The manager publishes the mapped address when there is a mapping (state mapped). */
  p->mapping = receiver->state == NM_REACH_MAPPED ? receiver->mapping : NM_MAPPING_NONE;
}

int nmctl_peers_build(const nm_status *st, const char *name, nmctl_peers *out) {
  memset(out, 0, sizeof *out);
  out->st = st;
  for (size_t i = 0; i < st->count && !out->self; i++)
    if (strcmp(st->servants[i].name, name) == 0) out->self = &st->servants[i];
  for (size_t i = 0; i < st->count && !out->self; i++)
    if (strcmp(st->servants[i].id, name) == 0) out->self = &st->servants[i];
  if (!out->self) return -ENOENT;
  if (st->count > 1) {
    out->peers = calloc(st->count - 1, sizeof *out->peers);
    if (!out->peers) return -ENOMEM;
  }
  for (size_t i = 0; i < st->count; i++) {
    const nm_status_servant *o = &st->servants[i];
    if (o == out->self) continue;
    nmctl_peer_view *v = &out->peers[out->count++];
    v->peer = o;
    nmctl__path(st, o, out->self, &v->in);
    nmctl__path(st, out->self, o, &v->out);
  }
  return 0;
}

void nmctl_peers_free(nmctl_peers *pv) {
  free(pv->peers);
  memset(pv, 0, sizeof *pv);
}

/* ---- the table ----------------------------------------------------------------------- */

static const char *nmctl__name_of(const nm_status *st, const char *id, char *buf, size_t len) {
  const nm_status_servant *s = nm_status_find(st, id);
  if (s) nmctl_sanitize(buf, len, s->name);
  else snprintf(buf, len, "%s", id);
  return buf;
}

static void nmctl__path_text(const nmctl_peers *pv, const nmctl_path *p, char *buf, size_t len) {
  char a[NM_STATUS_TEXT_MAX + 16], relay[NM_STATUS_TEXT_MAX + 1];
  switch (p->kind) {
  case NMCTL_PATH_DIRECT:
    nmctl_format_addr(a, sizeof a, p->ip, p->port);
    if (p->note)
      snprintf(buf, len, "direct (%s)", p->note);
    else if (p->mapping != NM_MAPPING_NONE)
      snprintf(buf, len, "direct to %s (mapped by %s)", a, nm_mapping_name(p->mapping));
    else
      snprintf(buf, len, "direct to %s (observed)", a);
    break;
  case NMCTL_PATH_RELAY:
    snprintf(buf, len, "via relay %s (%s)", nmctl__name_of(pv->st, p->relay, relay, sizeof relay),
             nmctl__reason_text(p->reason));
    break;
  case NMCTL_PATH_PULL:
    snprintf(buf, len, "pulled from it, the relay (%s)", nmctl__reason_text(p->reason));
    break;
  case NMCTL_PATH_LOST: snprintf(buf, len, "LOST: %s", p->note); break;
  case NMCTL_PATH_NONE: snprintf(buf, len, "- (%s)", p->note); break;
  }
}

static void nmctl__why(FILE *out, const nmctl_peers *pv, const char *name) {
  const nm_status *st = pv->st;
  const nm_status_servant *s = pv->self;
  char relay[NM_STATUS_TEXT_MAX + 1] = "", age[32], who[NM_STATUS_TEXT_MAX + 1];
  if (s->relay[0]) nmctl__name_of(st, s->relay, relay, sizeof relay);
  if (!s->relay[0] && s->relay_standby[0]) nmctl_sanitize(relay, sizeof relay, s->relay_standby);
  if (!s->relay[0] && s->relay_standby[0])
    fprintf(out, "why %s pulls from no relay: every servant reaches it directly (punched), so its relay %s is on standby: the slot is free, and it pulls again at once when a direct path fails\n",
            name, relay);
  else if (nmctl__judged(s) || s->relay_reason == NM_RELAY_REASON_SUSPICIOUS)
    fprintf(out, "why %s %s: judged unreachable (suspicious) by a quorum of reporters; every line reaches it through its relay\n",
            name, s->relay[0] ? "pulls from a relay" : "waits for a relay");
  else if (s->relay[0] && s->relay_reason == NM_RELAY_REASON_PAIR)
    fprintf(out, "why %s pulls from %s: the pair path: a few servants cannot reach it (no quorum); their lines come through %s, the others' directly\n",
            name, relay, relay);
  else if (s->relay[0] && s->relay_reason == NM_RELAY_REASON_PROVISIONAL)
    fprintf(out, "why %s pulls from %s: provisional: it joined from behind NAT with no port mapping, so every line also comes through %s until a mapping arrives, the complaint window passes without a complaint, or a quorum judges it\n",
            name, relay, relay);
  else if (s->unserved[0])
    fprintf(out, "warning: some servants cannot reach %s and no relay serves the pair: their lines do not reach it\n", name);
  if (!s->ncomplaint) {
    if (s->relay[0] || nmctl__judged(s))
      fprintf(out, "no complaints about %s are left (they expired, or it was judged before it reconnected)\n", name);
    return;
  }
  fprintf(out, "complaints about %s", name);
  if (st->complaint_threshold)
    fprintf(out, " (a reporter counts with %u within %us)", st->complaint_threshold, st->complaint_window_s);
  fprintf(out, ":\n");
  for (unsigned i = 0; i < s->ncomplaint; i++) {
    const nm_status_complaint *k = &s->complaint[i];
    nmctl__name_of(st, k->from, who, sizeof who);
    fprintf(out, "  from %-16s %u live complaint%s, the last %s%s\n", who, k->count, k->count == 1 ? "" : "s",
            nmctl_format_age(age, sizeof age, 1, k->last_ms),
            st->complaint_threshold && k->count >= st->complaint_threshold ? " (counts)" : "");
  }
  if (s->complainers > s->ncomplaint)
    fprintf(out, "  and %u more reporters\n", s->complainers - s->ncomplaint);
}

int nmctl_render_peers(FILE *out, const nmctl_peers *pv) {
  const nm_status_servant *s = pv->self;
  char name[NM_STATUS_TEXT_MAX + 1], a[NM_STATUS_TEXT_MAX + 16], relay[NM_STATUS_TEXT_MAX + 1];
  nmctl_sanitize(name, sizeof name, s->name);
  nmctl_format_addr(a, sizeof a, s->dial_ip, s->dial_port);
  fprintf(out, "%s (%s): %s, %s, peers dial it at %s", name, s->id, nm_role_name(s->role),
          nm_reach_name(s->state), a);
  if (s->state == NM_REACH_MAPPED) fprintf(out, " (mapped by %s)", nm_mapping_name(s->mapping));
  if (s->relay[0])
    fprintf(out, "; pulls from relay %s (%s)\n", nmctl__name_of(pv->st, s->relay, relay, sizeof relay),
            nmctl__reason_text(nmctl__judged(s) ? NM_RELAY_REASON_SUSPICIOUS : s->relay_reason));
  else if (s->relay_standby[0]) {
    nmctl_sanitize(relay, sizeof relay, s->relay_standby);
    fprintf(out, "; pulls from no relay (relay %s on standby)\n", relay);
  }
  else
    fprintf(out, "; pulls from no relay\n");
  /* Column heads name the servant: "ALICE GETS ITS LINES". */
  char head_in[NM_STATUS_TEXT_MAX + 32], head_out[NM_STATUS_TEXT_MAX + 32];
  snprintf(head_in, sizeof head_in, "HOW %s GETS ITS LINES", name);
  snprintf(head_out, sizeof head_out, "HOW IT GETS %s'S", name);
  for (char *p = head_in; *p; p++) *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
  for (char *p = head_out; *p; p++) *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
  size_t w_name = 4, w_state = 5, w_in = strlen(head_in);
  char cell[NM_STATUS_TEXT_MAX + 128];
  for (size_t i = 0; i < pv->count; i++) {
    nmctl_sanitize(cell, sizeof cell, pv->peers[i].peer->name);
    if (strlen(cell) > w_name) w_name = strlen(cell);
    size_t sl = strlen(nm_reach_name(pv->peers[i].peer->state)) +
                (pv->peers[i].peer->role == NM_ROLE_RELAY ? 8 : 0);
    if (sl > w_state) w_state = sl;
    nmctl__path_text(pv, &pv->peers[i].in, cell, sizeof cell);
    if (strlen(cell) > w_in) w_in = strlen(cell);
  }
  fprintf(out, "%-*s  %-*s  %-*s  %s\n", (int)w_name, "PEER", (int)w_state, "STATE", (int)w_in, head_in,
          head_out);
  for (size_t i = 0; i < pv->count; i++) {
    const nmctl_peer_view *v = &pv->peers[i];
    char pname[NM_STATUS_TEXT_MAX + 1], state[32], in[sizeof cell], o[sizeof cell];
    nmctl_sanitize(pname, sizeof pname, v->peer->name);
    snprintf(state, sizeof state, "%s%s", v->peer->role == NM_ROLE_RELAY ? "relay, " : "",
             nm_reach_name(v->peer->state));
    nmctl__path_text(pv, &v->in, in, sizeof in);
    nmctl__path_text(pv, &v->out, o, sizeof o);
    fprintf(out, "%-*s  %-*s  %-*s  %s\n", (int)w_name, pname, (int)w_state, state, (int)w_in, in, o);
  }
  nmctl__why(out, pv, name);
  return ferror(out) ? -EIO : 0;
}

/* ---- JSON ---------------------------------------------------------------------------- */

static json_t *nmctl__str_or_null(const char *s) { return s && s[0] ? json_string(s) : json_null(); }

static json_t *nmctl__path_json(const nmctl_peers *pv, const nmctl_path *p) {
  json_t *o = json_object();
  if (!o) return NULL;
  json_object_set_new(o, "path", json_string(nmctl_path_kind_name(p->kind)));
  int direct = p->kind == NMCTL_PATH_DIRECT;
  int punched = direct && p->note; /* its relay on standby: endpoints the manager cannot see */
  int relayed = p->kind == NMCTL_PATH_RELAY || p->kind == NMCTL_PATH_PULL;
  json_object_set_new(o, "ip", direct && !punched ? nmctl__str_or_null(p->ip) : json_null());
  json_object_set_new(o, "port", direct && !punched ? json_integer(p->port) : json_null());
  json_object_set_new(o, "address_kind", punched  ? json_string("punched")
                                         : direct ? json_string(p->mapping != NM_MAPPING_NONE ? "mapped" : "observed")
                                                  : json_null());
  json_object_set_new(o, "mapping", direct ? json_string(nm_mapping_name(p->mapping)) : json_null());
  json_object_set_new(o, "relay", relayed ? json_string(p->relay) : json_null());
  const nm_status_servant *r = relayed ? nm_status_find(pv->st, p->relay) : NULL;
  json_object_set_new(o, "relay_name", r ? json_string(r->name) : json_null());
  json_object_set_new(o, "reason", relayed ? json_string(nm_relay_reason_name(p->reason)) : json_null());
  json_object_set_new(o, "note", nmctl__str_or_null(p->note));
  return o;
}

int nmctl_peers_to_json(const nmctl_peers *pv, int pretty, char **json) {
  *json = NULL;
  const nm_status_servant *s = pv->self;
  json_t *root = json_object(), *self = json_object(), *peers = json_array(), *why = json_array();
  int rc = -ENOMEM;
  if (!root || !self || !peers || !why) goto done;
  json_object_set_new(root, "schema", json_integer(1));
  json_object_set_new(self, "id", json_string(s->id));
  json_object_set_new(self, "name", json_string(s->name));
  json_object_set_new(self, "role", json_string(nm_role_name(s->role)));
  json_object_set_new(self, "state", json_string(nm_reach_name(s->state)));
  json_object_set_new(self, "dial_ip", nmctl__str_or_null(s->dial_ip));
  json_object_set_new(self, "dial_port", json_integer(s->dial_port));
  json_object_set_new(self, "mapping", json_string(nm_mapping_name(s->mapping)));
  json_object_set_new(self, "relay", nmctl__str_or_null(s->relay));
  const nm_status_servant *r = s->relay[0] ? nm_status_find(pv->st, s->relay) : NULL;
  json_object_set_new(self, "relay_name", r ? json_string(r->name) : json_null());
  json_object_set_new(self, "relay_reason",
                      s->relay[0] && s->relay_reason ? json_string(nm_relay_reason_name(s->relay_reason))
                                                     : json_null());
  json_object_set_new(self, "complainers", json_integer(s->complainers));
  for (unsigned i = 0; i < s->ncomplaint; i++) {
    const nm_status_complaint *k = &s->complaint[i];
    const nm_status_servant *from = nm_status_find(pv->st, k->from);
    json_t *c = json_object();
    if (!c) goto done;
    json_object_set_new(c, "from", json_string(k->from));
    json_object_set_new(c, "from_name", from ? json_string(from->name) : json_null());
    json_object_set_new(c, "count", json_integer(k->count));
    json_object_set_new(c, "last_ms", json_integer((json_int_t)k->last_ms));
    json_object_set_new(c, "counts", json_boolean(pv->st->complaint_threshold &&
                                                  k->count >= pv->st->complaint_threshold));
    json_array_append_new(why, c);
  }
  json_object_set(self, "complaints_from", why);
  json_object_set(root, "servant", self);
  for (size_t i = 0; i < pv->count; i++) {
    const nmctl_peer_view *v = &pv->peers[i];
    json_t *o = json_object();
    if (!o) goto done;
    json_object_set_new(o, "id", json_string(v->peer->id));
    json_object_set_new(o, "name", json_string(v->peer->name));
    json_object_set_new(o, "role", json_string(nm_role_name(v->peer->role)));
    json_object_set_new(o, "state", json_string(nm_reach_name(v->peer->state)));
    json_object_set_new(o, "lines_in", nmctl__path_json(pv, &v->in));
    json_object_set_new(o, "lines_out", nmctl__path_json(pv, &v->out));
    json_array_append_new(peers, o);
  }
  json_object_set(root, "peers", peers);
  *json = json_dumps(root, JSON_PRESERVE_ORDER | (pretty ? JSON_INDENT(2) : JSON_COMPACT));
  if (*json) rc = 0;
done:
  json_decref(why);
  json_decref(peers);
  json_decref(self);
  json_decref(root);
  return rc;
}
