/* Relay assignment: a suspicious servant pulls from a relay chosen by relay_choice.c; a
 * token in both messages lets the relay serve only its assigned clients. */
#include "relays.h"
#include "relay_choice.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_msg.h"
#include "nm_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned mgr_relay_clients(manager *m, const mgr_session *r) {
  unsigned n = 0;
  for (mgr_session *c = m->sessions; c; c = c->next)
    if (mgr_session_listed(c) && strcmp(c->relay_id, r->id) == 0) n++;
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

int mgr_relay_pick(manager *m, mgr_session *s, const char *prefer_id, const char *prefer_token) {
  /* Describe every registered session to the policy; sessions taking a registration over
   * are not candidates until they are listening again. */
  mgr_relay_candidate *cands = calloc(m->nsessions ? m->nsessions : 1, sizeof *cands);
  mgr_session **who = calloc(m->nsessions ? m->nsessions : 1, sizeof *who);
  if (!cands || !who) {
    free(cands);
    free(who);
    return -ENOMEM;
  }
  mgr_verdict_rules rules = mgr_rules(m);
  uint64_t now = mgr_now_ms(m);
  size_t n = 0;
  for (mgr_session *r = m->sessions; r && n < m->nsessions; r = r->next) {
    if (r->state != MGR_SESSION_REGISTERED) continue;
    mgr_relay_candidate *c = &cands[n];
    c->is_client = r == s;
    c->dedicated = r->role == NM_ROLE_RELAY;
    c->reachable = r->reach == NM_REACH_DIRECT || r->reach == NM_REACH_MAPPED;
    c->complained_about = mgr_complaints_reporters(&r->complaints, &rules, now) > 0;
    c->preferred = prefer_id && strcmp(prefer_id, r->id) == 0;
    c->max_clients = r->max_clients;
    c->connected_ms = now - r->connected_ms;
    who[n++] = r;
  }
  /* Client counts from the assignments, in one pass over the (few) relayed servants. */
  for (mgr_session *c = m->sessions; c; c = c->next) {
    if (!mgr_session_listed(c) || !c->relay_id[0] || c == s) continue;
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
  s->reach = NM_REACH_RELAYED;
  nm_log_info("relay: %s pulls from %s %s (%u of %u clients)", s->name, nm_role_name(relay->role),
              relay->name, clients + 1, relay->max_clients);
  return 0;
}

void mgr_relay_send_serve(manager *m, mgr_session *relay) {
  if (relay->state != MGR_SESSION_REGISTERED) return;
  nm_msg *msg = calloc(1, sizeof *msg); /* room for NM_RELAY_CLIENTS_MAX clients: 13 kB */
  if (!msg) return;
  msg->type = NM_MSG_RELAY_SERVE;
  nm_msg_relay_serve *serve = &msg->u.relay_serve;
  for (mgr_session *c = m->sessions; c; c = c->next) {
    if (!mgr_session_listed(c) || strcmp(c->relay_id, relay->id) != 0) continue;
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
  mgr_session *relay = client->relay_id[0] ? mgr_find_listed(m, client->relay_id) : NULL;
  nm_msg msg = {.type = NM_MSG_RELAY_ASSIGN};
  nm_msg_relay_assign *a = &msg.u.relay_assign;
  a->release = relay == NULL;
  if (relay) {
    nm_peer p;
    mgr_session_to_peer(relay, &p);
    memcpy(a->relay, relay->id, sizeof a->relay);
    memcpy(a->name, relay->name, sizeof a->name);
    memcpy(a->ip, p.ip, sizeof a->ip);
    a->port = p.port;
    memcpy(a->token, client->relay_token, sizeof a->token);
    memcpy(a->key, relay->key, sizeof a->key); /* the key the client pins */
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
  if (mgr_relay_pick(m, s, NULL, NULL) == 0) mgr_relay_announce(m, s);
  else nm_log_warn("no relay available for %s: it waits, suspicious, until one joins", s->name);
  mgr_publish_upsert(m, s);
}

void mgr_relay_unlink(manager *m, mgr_session *s) {
  if (!s->relay_id[0]) return;
  mgr_session *relay = mgr_find_listed(m, s->relay_id);
  s->relay_id[0] = 0;
  s->relay_token[0] = 0;
  if (relay) mgr_relay_send_serve(m, relay);
}

void mgr_relays_reassign_clients_of(manager *m, const mgr_session *relay) {
  for (mgr_session *c = m->sessions; c; c = c->next) {
    if (!mgr_session_listed(c) || strcmp(c->relay_id, relay->id) != 0) continue;
    /* Operators (and netsim scenarios) follow a failover by this line: name both. */
    nm_log_info("relay: %s lost its relay %s; reassigning", c->name, relay->name);
    c->relay_id[0] = 0;
    c->relay_token[0] = 0;
    c->reach = NM_REACH_SUSPICIOUS;
    mgr_relay_client(m, c);
  }
}

void mgr_relays_readdress(manager *m, mgr_session *relay) {
  for (mgr_session *c = m->sessions; c; c = c->next)
    if (mgr_session_listed(c) && strcmp(c->relay_id, relay->id) == 0) mgr__new_token(c);
  mgr_relay_send_serve(m, relay);
  for (mgr_session *c = m->sessions; c; c = c->next)
    if (mgr_session_listed(c) && strcmp(c->relay_id, relay->id) == 0) mgr_relay_send_assign(m, c);
}

void mgr_relays_serve_waiting(manager *m) {
  for (mgr_session *c = m->sessions; c; c = c->next) {
    if (c->state != MGR_SESSION_REGISTERED || c->reach != NM_REACH_SUSPICIOUS || c->relay_id[0]) continue;
    /* A waiting servant is never a candidate itself, so when one finds no relay, none of
     * the others would. */
    if (mgr_relay_pick(m, c, NULL, NULL) < 0) break;
    mgr_relay_announce(m, c);
    mgr_publish_upsert(m, c);
  }
}
