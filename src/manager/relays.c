/* Relay assignment: a suspicious servant pulls from a relay chosen by relay_choice.c, and
 * so does one that only some servants cannot reach (the pair path); a token in both
 * messages lets the relay serve only its assigned clients. */
#include "relays.h"
#include "relay_choice.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_msg.h"
#include "nm_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether c pulls from the relay with id (a client on standby holds no slot). */
/* A listed client: ours, or one that moved to another manager of the overlay and still
 * pulls from the relay we hold (shared.h: its record keeps relay and token). */
static int mgr__client_listed(const mgr_session *c) {
  return mgr_session_listed(c) || c->state == MGR_SESSION_REMOTE;
}

static int mgr__pulls_from(const mgr_session *c, const char *id) {
  return mgr__client_listed(c) && !c->standby && c->relay_id[0] && strcmp(c->relay_id, id) == 0;
}

unsigned mgr_relay_clients(manager *m, const mgr_session *r) {
  unsigned n = 0;
  for (mgr_session *c = m->index.relayed; c; c = c->rel_next) n += mgr__pulls_from(c, r->id);
  return n;
}

static int mgr__new_token(mgr_session *s) {
  char a[NM_ID_LEN + 1], b[NM_ID_LEN + 1];
  int rc = nm_random_id(a);
  if (rc == 0) rc = nm_random_id(b);
  if (rc < 0) return rc;
  snprintf(s->relay_token, sizeof s->relay_token, "%s%s", a, b);
  return 0;
}

_Static_assert(MGR_TOKEN_LEN == NM_TOKEN_LEN, "a session's relay token is the wire's");

/* Whether s pulls on the pair path: reachable by most, not by its reporters. */
static int mgr__pair_client(const mgr_session *s) {
  return s->pair && (s->reach == NM_REACH_DIRECT || s->reach == NM_REACH_MAPPED);
}

/* For s on the pair path, whether r is one side of a pair s cannot connect: r complained
 * about s (it cannot reach s), or s complained about r (s could not pull from it). Any live
 * complaint counts, not only the threshold: a relay it may not reach serves no one. */
static int mgr__pair_side(const mgr_session *s, const mgr_session *r, const mgr_verdict_rules *rules,
                          uint64_t now) {
  return mgr_complaints_live(&s->complaints, r->id, rules, now) > 0 ||
         mgr_complaints_live(&r->complaints, s->id, rules, now) > 0;
}

int mgr_relay_pick(manager *m, mgr_session *s, const char *prefer_id, const char *prefer_token) {
  /* Describe the registered sessions that matter to the policy (mgr_relay_pool: never a
   * walk over every session per pick); sessions taking a registration over are not
   * candidates until they are listening again. */
  mgr_session **pool = NULL;
  long npool = mgr_relay_pool(m, s, prefer_id, &pool);
  if (npool < 0) return (int)npool;
  mgr_relay_candidate *cands = calloc(npool ? (size_t)npool : 1, sizeof *cands);
  mgr_session **who = calloc(npool ? (size_t)npool : 1, sizeof *who);
  if (!cands || !who) {
    free(pool);
    free(cands);
    free(who);
    return -ENOMEM;
  }
  mgr_verdict_rules rules = mgr_rules(m);
  uint64_t now = mgr_now_ms(m);
  int pair = mgr__pair_client(s);
  size_t n = 0;
  for (long k = 0; k < npool; k++) {
    mgr_session *r = pool[k];
    mgr_relay_candidate *c = &cands[n];
    c->is_client = r == s;
    c->dedicated = r->role == NM_ROLE_RELAY;
    /* A provisional client is direct on paper, but probably nobody can reach it. */
    c->reachable = (r->reach == NM_REACH_DIRECT || r->reach == NM_REACH_MAPPED) && !r->provisional;
    c->complained_about = mgr_complaints_reporters(&r->complaints, &rules, now) > 0;
    c->excluded = pair && r != s && mgr__pair_side(s, r, &rules, now);
    c->preferred = prefer_id && strcmp(prefer_id, r->id) == 0;
    c->max_clients = r->max_clients;
    c->connected_ms = now - r->connected_ms;
    who[n++] = r;
  }
  free(pool);
  /* Client counts from the assignments, in one pass over the (few) relayed servants. */
  for (mgr_session *c = m->index.relayed; c; c = c->rel_next) {
    if (!mgr__client_listed(c) || !c->relay_id[0] || c->standby || c == s) continue;
    for (size_t i = 0; i < n; i++)
      if (strcmp(who[i]->id, c->relay_id) == 0) {
        cands[i].clients++;
        break;
      }
  }
  int i = mgr_relay_choose(cands, n);
  mgr_session *relay = i >= 0 ? who[i] : NULL;
  unsigned clients = i >= 0 ? cands[i].clients : 0;
  free(cands);
  free(who);
  if (!relay) return -ENOENT;
  if (prefer_id && prefer_token && strcmp(relay->id, prefer_id) == 0 &&
      strlen(prefer_token) == MGR_TOKEN_LEN) {
    /* The same relay and token: a servant that kept pulling needs no new assignment. */
    snprintf(s->relay_token, sizeof s->relay_token, "%s", prefer_token);
  } else {
    int rc = mgr__new_token(s);
    if (rc < 0) return rc;
  }
  snprintf(s->relay_id, sizeof s->relay_id, "%s", relay->id);
  mgr_index_track_relayed(&m->index, s);
  /* On the pair path it stays reachable: only its reporters' lines come through the relay;
   * a provisional client stays direct until a verdict (provisional.h). */
  if (!pair && !s->provisional) s->reach = NM_REACH_RELAYED;
  m->stats.relay_assignments++;
  nm_log_info("relay: %s pulls from %s %s (%u of %u clients%s%s)", s->name, nm_role_name(relay->role),
              relay->name, clients + 1, relay->max_clients,
              pair ? ", pair path" : s->provisional ? ", provisional" : "", s->standby ? ", on standby" : "");
  return 0;
}

void mgr_relay_send_serve(manager *m, mgr_session *relay) {
  if (relay->state != MGR_SESSION_REGISTERED) return;
  mgr_publish_settle(m); /* the relay knows its clients from the list before it serves them */
  nm_msg *msg = calloc(1, sizeof *msg); /* room for NM_RELAY_CLIENTS_MAX clients: 13 kB */
  if (!msg) return;
  msg->type = NM_MSG_RELAY_SERVE;
  nm_msg_relay_serve *serve = &msg->u.relay_serve;
  for (mgr_session *c = m->index.relayed; c; c = c->rel_next) {
    if (!mgr__pulls_from(c, relay->id)) continue;
    /* Never reached: a relay takes at most max-clients (<= NM_RELAY_CLIENTS_MAX) clients. */
    if (serve->count == NM_RELAY_CLIENTS_MAX) break;
    nm_relay_client *cl = &serve->clients[serve->count++];
    memcpy(cl->id, c->id, sizeof cl->id);
    memcpy(cl->token, c->relay_token, sizeof cl->token);
    memcpy(cl->key, c->key, sizeof cl->key); /* the key its pull must come with */
  }
  int rc = nm_msg_send(&relay->conn, msg);
  if (rc < 0) nm_log_warn("cannot send relay-serve to %s: %s", relay->name, nm_strerror(rc));
  free(msg);
}

void mgr_relay_send_assign(manager *m, mgr_session *client) {
  if (client->state != MGR_SESSION_REGISTERED) return;
  mgr_publish_settle(m); /* the client knows its relay from the list before it pulls */
  mgr_session *relay = client->relay_id[0] && !client->standby ? mgr_find_listed(m, client->relay_id) : NULL;
  nm_msg msg = {.type = NM_MSG_RELAY_ASSIGN};
  nm_msg_relay_assign *a = &msg.u.relay_assign;
  a->release = relay == NULL;
  a->standby = client->standby; /* pull no more for now: its relay is kept for it */
  if (relay) {
    nm_peer p;
    mgr_session_to_peer(relay, &p);
    memcpy(a->relay, relay->id, sizeof a->relay);
    memcpy(a->name, relay->name, sizeof a->name);
    memcpy(a->ip, p.ip, sizeof a->ip);
    a->port = p.port;
    memcpy(a->token, client->relay_token, sizeof a->token);
    memcpy(a->key, relay->key, sizeof a->key); /* the key the client pins */
    /* so it can say why it pulls */
    a->reason = client->provisional          ? NM_ASSIGN_PROVISIONAL
                : mgr__pair_client(client) ? NM_ASSIGN_PAIR
                                           : NM_ASSIGN_SUSPICIOUS;
  }
  int rc = nm_msg_send(&client->conn, &msg);
  if (rc < 0) nm_log_warn("cannot send relay-assign to %s: %s", client->name, nm_strerror(rc));
}

void mgr_relay_announce(manager *m, mgr_session *s) {
  mgr_session *relay = s->relay_id[0] ? mgr_find_listed(m, s->relay_id) : NULL;
  if (relay) mgr_relay_send_serve(m, relay);
  mgr_relay_send_assign(m, s);
}

void mgr_relay_client(manager *m, mgr_session *s) {
  /* A relay it pulls from already (its pair relay, judged suspicious since) is kept, token
   * and all, when it still can serve: the servant then carries on pulling as it was. */
  char old_id[NM_ID_LEN + 1], old_token[MGR_TOKEN_LEN + 1];
  memcpy(old_id, s->relay_id, sizeof old_id);
  memcpy(old_token, s->relay_token, sizeof old_token);
  s->relay_id[0] = 0;
  s->relay_token[0] = 0;
  if (mgr_relay_pick(m, s, old_id[0] ? old_id : NULL, old_id[0] ? old_token : NULL) == 0) mgr_relay_announce(m, s);
  else nm_log_warn("no relay available for %s: it waits, suspicious, until one joins", s->name);
  if (old_id[0] && strcmp(old_id, s->relay_id) != 0) {
    mgr_session *old = mgr_find_listed(m, old_id);
    if (old) mgr_relay_send_serve(m, old); /* without s */
  }
  mgr_publish_upsert(m, s);
}

void mgr_relay_unlink(manager *m, mgr_session *s) {
  int standby = s->standby;
  s->standby = 0; /* no relay to keep */
  if (!s->relay_id[0]) return;
  mgr_session *relay = mgr_find_listed(m, s->relay_id);
  s->relay_id[0] = 0;
  s->relay_token[0] = 0;
  if (relay && !standby) mgr_relay_send_serve(m, relay);
}

/* "alice bob" (at most 8 names, then "+N"): the registered servants whose ids are in ids. */
static void mgr__names(manager *m, const char **ids, size_t n, size_t total, char *out, size_t len) {
  size_t used = 0;
  out[0] = 0;
  for (size_t i = 0; i < n && i < total; i++) {
    mgr_session *r = mgr_find_listed(m, ids[i]);
    int w = snprintf(out + used, len - used, "%s%s", used ? " " : "", r ? r->name : ids[i]);
    if (w < 0 || (size_t)w >= len - used) break;
    used += (size_t)w;
  }
  if (total > n) snprintf(out + used, len - used, " +%zu", total - n);
}

size_t mgr_pair_names(manager *m, const mgr_session *s, char *out, size_t len) {
  mgr_verdict_rules rules = mgr_rules(m);
  const char *ids[MGR_PAIR_NAMES_MAX];
  size_t total = mgr_complaints_reporter_ids(&s->complaints, &rules, mgr_now_ms(m), rules.threshold, ids,
                                             MGR_PAIR_NAMES_MAX);
  mgr__names(m, ids, total < MGR_PAIR_NAMES_MAX ? total : MGR_PAIR_NAMES_MAX, total, out, len);
  return total;
}

/* Picks s's pair relay and says so, or says loudly that none can serve it. */
static void mgr__pair_serve(manager *m, mgr_session *s) {
  char who[MGR_PAIR_NAMES_LEN];
  mgr_pair_names(m, s, who, sizeof who);
  if (mgr_relay_pick(m, s, NULL, NULL) == 0) {
    mgr_session *relay = mgr_find_listed(m, s->relay_id);
    nm_log_ratelimited(&m->log_pair, NM_LOG_INFO,
                       "pair: %s cannot reach %s (no quorum, %s still reachable by the others): %s pulls "
                       "from %s %s",
                       who[0] ? who : "?", s->name, s->name, s->name,
                       relay ? nm_role_name(relay->role) : "relay", relay ? relay->name : s->relay_id);
    mgr_relay_announce(m, s);
    mgr_publish_upsert(m, s);
    return;
  }
  nm_log_ratelimited(&m->log_unserved, NM_LOG_ERROR,
                     "pair: %s cannot reach %s and no relay can serve %s (every candidate is one side "
                     "of the pair, unreachable, complained about or full): their lines to %s are lost "
                     "until a relay can; natmesh-ctl status shows it unserved",
                     who[0] ? who : "?", s->name, s->name, s->name);
}

void mgr_relay_pair(manager *m, mgr_session *s) {
  if (s->state != MGR_SESSION_REGISTERED ||
      (s->reach != NM_REACH_DIRECT && s->reach != NM_REACH_MAPPED))
    return;
  s->pair = 1;
  int was_provisional = s->provisional;
  s->provisional = 0; /* a verdict: its relay, if any, is the pair relay now */
  if (s->relay_id[0]) {
    /* Served already, unless its relay became one side of a pair itself (a new reporter). */
    mgr_session *relay = mgr_find_listed(m, s->relay_id);
    mgr_verdict_rules rules = mgr_rules(m);
    if (relay && !mgr__pair_side(s, relay, &rules, mgr_now_ms(m))) {
      if (was_provisional) mgr_relay_send_assign(m, s); /* the same pull, for another reason */
      return;
    }
    /* A provisional relay it pulls from already is kept even when that relay cannot dial it
     * (a newcomer behind NAT: nobody can, the quorum is on its way): what counts is that
     * its pull works, which only its own complaint about the relay would deny. Same relay,
     * same token: no second pull. */
    if (relay && was_provisional && mgr_complaints_live(&relay->complaints, s->id, &rules, mgr_now_ms(m)) == 0) {
      nm_log_info("pair: %s keeps its provisional relay %s as its pair relay", s->name, relay->name);
      mgr_relay_send_assign(m, s);
      return;
    }
    nm_log_info("pair: %s's relay %s cannot serve it any more; choosing another", s->name,
                relay ? relay->name : s->relay_id);
    mgr_relay_unlink(m, s);
  }
  mgr__pair_serve(m, s);
  if (!s->relay_id[0]) {
    mgr_relay_send_assign(m, s); /* it pulls from no one now */
    mgr_publish_upsert(m, s);
  }
}

void mgr_relay_pair_release(manager *m, mgr_session *s, const char *why) {
  if (!s->pair) return;
  s->pair = 0;
  if (!s->relay_id[0]) return;
  nm_log_info("pair: %s pulls from its pair relay no more: %s", s->name, why);
  mgr_relay_unlink(m, s);
  mgr_relay_send_assign(m, s); /* without a relay: pull no more */
}

void mgr_relays_reassign_clients_of(manager *m, const mgr_session *relay) {
  for (mgr_session *c = m->index.relayed; c; c = c->rel_next) {
    if (!mgr_session_listed(c) || strcmp(c->relay_id, relay->id) != 0) continue;
    if (c->standby) {
      /* It pulls from nobody now: another relay is kept for it, or none (then one is
       * picked when it asks); it hears nothing of it until then. */
      c->relay_id[0] = 0;
      c->relay_token[0] = 0;
      if (c->state != MGR_SESSION_REGISTERED || mgr_relay_pick(m, c, NULL, NULL) < 0) continue;
      mgr_session *now = mgr_find_listed(m, c->relay_id);
      nm_log_info("relay: %s lost its relay %s while on standby; %s is kept for it instead", c->name,
                  relay->name, now ? now->name : c->relay_id);
      continue;
    }
    /* Operators (and netsim scenarios) follow a failover by this line: name both. */
    nm_log_info("relay: %s lost its relay %s; reassigning", c->name, relay->name);
    c->relay_id[0] = 0;
    c->relay_token[0] = 0;
    if (c->provisional) {
      /* Not judged: another provisional relay, or none (then the complaints decide). */
      if (c->state != MGR_SESSION_REGISTERED || mgr_relay_pick(m, c, NULL, NULL) < 0) c->provisional = 0;
      mgr_relay_announce(m, c);
      mgr_publish_upsert(m, c);
      continue;
    }
    if (mgr__pair_client(c)) {
      /* Still reachable by most: another pair relay, or loudly none. */
      if (c->state == MGR_SESSION_REGISTERED) mgr__pair_serve(m, c);
      mgr_publish_upsert(m, c);
      continue;
    }
    c->reach = NM_REACH_SUSPICIOUS;
    mgr_relay_client(m, c);
  }
}

void mgr_relays_readdress(manager *m, mgr_session *relay) {
  for (mgr_session *c = m->index.relayed; c; c = c->rel_next)
    if (mgr_session_listed(c) && strcmp(c->relay_id, relay->id) == 0) mgr__new_token(c);
  mgr_relay_send_serve(m, relay);
  for (mgr_session *c = m->index.relayed; c; c = c->rel_next)
    if (mgr__pulls_from(c, relay->id)) mgr_relay_send_assign(m, c);
}

void mgr_relays_serve_waiting(manager *m) {
  /* Pairs first: each has its own exclusions, so one left unserved says nothing about the
   * next. */
  for (mgr_session *c = m->index.relayed; c; c = c->rel_next)
    if (c->state == MGR_SESSION_REGISTERED && mgr__pair_client(c) && !c->relay_id[0] && !c->standby)
      mgr__pair_serve(m, c);
  for (mgr_session *c = m->index.relayed; c; c = c->rel_next) {
    if (c->state != MGR_SESSION_REGISTERED || c->reach != NM_REACH_SUSPICIOUS || c->relay_id[0] || c->standby)
      continue;
    /* A waiting servant is never a candidate itself, so when one finds no relay, none of
     * the others would. */
    if (mgr_relay_pick(m, c, NULL, NULL) < 0) break;
    mgr_relay_announce(m, c);
    mgr_publish_upsert(m, c);
  }
}

/* ---- standby (docs/protocol.md, "Standby") ---------------------------------------------- */

/* s's every listed servant reaches it directly: its relay stops serving it (the slot is
 * free) and keeps its place; s is told first, so it closes its pull before the relay drops
 * it. */
static void mgr__standby(manager *m, mgr_session *s) {
  mgr_session *relay = mgr_find_listed(m, s->relay_id);
  s->standby = 1;
  s->standby_ms = mgr_now_ms(m);
  /* A servant says it as often as it likes (within the hold below): rate-limited. */
  nm_log_ratelimited(&m->log_reports, NM_LOG_INFO,
                     "relay: %s's relay %s on standby: every listed servant reaches it directly (punched or reversed); the "
                     "slot is free, relay and token kept for it",
                     s->name, relay ? relay->name : s->relay_id);
  mgr_relay_send_assign(m, s); /* standby: pull no more for now */
  if (relay) mgr_relay_send_serve(m, relay); /* without s */
  mgr_publish_upsert(m, s);                  /* its entry names no relay while it pulls from none */
}

/* s asks for its relay again: the one kept for it, with the same token, when it can still
 * serve it (room, reachable, not complained about), else another as for any assignment. */
static void mgr__resume(manager *m, mgr_session *s) {
  char old_id[NM_ID_LEN + 1], old_token[MGR_TOKEN_LEN + 1];
  memcpy(old_id, s->relay_id, sizeof old_id);
  memcpy(old_token, s->relay_token, sizeof old_token);
  s->standby = 0;
  s->standby_ms = mgr_now_ms(m);
  s->relay_id[0] = 0;
  s->relay_token[0] = 0;
  if (mgr_relay_pick(m, s, old_id[0] ? old_id : NULL, old_id[0] ? old_token : NULL) == 0) {
    mgr_session *relay = mgr_find_listed(m, s->relay_id);
    int same = strcmp(old_id, s->relay_id) == 0 && strcmp(old_token, s->relay_token) == 0;
    nm_log_ratelimited(&m->log_reports, NM_LOG_INFO, "relay: %s's relay %s back from standby (%s): a direct path failed",
                       s->name, relay ? relay->name : s->relay_id,
                       same ? "same relay, same token" : "another relay: the one kept cannot serve it now");
    mgr_relay_announce(m, s);
    mgr_publish_upsert(m, s);
    return;
  }
  /* Nobody can serve it now: as any servant waiting for a relay. */
  if (s->provisional) {
    s->provisional = 0; /* the complaints decide */
  } else if (!mgr__pair_client(s)) {
    s->reach = NM_REACH_SUSPICIOUS; /* mgr_relays_serve_waiting serves it when one can */
  }
  nm_log_ratelimited(&m->log_unserved, NM_LOG_WARN,
                     "relay: %s needs its relay again (a direct path failed) but no relay can serve it now: it "
                     "waits for one",
                     s->name);
  mgr_relay_send_assign(m, s);
  mgr_publish_upsert(m, s);
}

void mgr_relay_on_direct(manager *m, mgr_session *s, int all) {
  if (s->state != MGR_SESSION_REGISTERED) return;
  /* Back from standby less than a heartbeat interval ago: not again yet (the next heartbeat
   * says it again). */
  mgr_standby_input in = {.has_relay = s->relay_id[0] != 0 || s->standby,
                          .standby = s->standby,
                          .all_direct = all,
                          .since_ms = s->standby_ms,
                          .now_ms = mgr_now_ms(m),
                          .hold_ms = (uint64_t)m->cfg.heartbeat_s * 1000};
  switch (mgr_standby_decide(&in)) {
  case MGR_STANDBY_ENTER: mgr__standby(m, s); break;
  case MGR_STANDBY_LEAVE: mgr__resume(m, s); break;
  case MGR_STANDBY_KEEP: break;
  }
}
