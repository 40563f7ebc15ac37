/* Relay assignment: a suspicious servant pulls from a relay the manager picks: never a
 * suspicious one, dedicated relays first, then ordinary servants, the least loaded within
 * its capacity. A token in both messages lets the relay serve only its assigned clients. */
#include "complaints.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_util.h"
#include "nm_xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int mgr__can_relay(mgr_session *r, mgr_session *client) {
  if (r == client || r->state != MGR_SESSION_REGISTERED) return 0;
  if (r->reach != NM_REACH_DIRECT && r->reach != NM_REACH_MAPPED) return 0;
  /* One that others already report unreachable is likely the next suspect. */
  if (mgr_complaint_reporters(r->mgr, r) > 0) return 0;
  return r->clients < r->max_clients;
}

/* Dedicated relays win over servants; then the fewest clients. */
static mgr_session *mgr__pick_relay(manager *m, mgr_session *client) {
  mgr_session *best = NULL;
  for (mgr_session *r = m->sessions; r; r = r->next) {
    if (!mgr__can_relay(r, client)) continue;
    if (!best) {
      best = r;
      continue;
    }
    int r_dedicated = r->role == NM_ROLE_RELAY, b_dedicated = best->role == NM_ROLE_RELAY;
    if (r_dedicated != b_dedicated) {
      if (r_dedicated) best = r;
      continue;
    }
    if (r->clients < best->clients) best = r;
  }
  return best;
}

/* The relay's whole client list: idempotent, so a lost or reordered update cannot leave
 * it serving someone it should not. */
static void mgr__send_serve(manager *m, mgr_session *relay) {
  xmlDoc *doc = xmlNewDoc(BAD_CAST "1.0");
  xmlNode *root = xmlNewNode(NULL, BAD_CAST "relay-serve");
  xmlDocSetRootElement(doc, root);
  for (mgr_session *c = m->sessions; c; c = c->next) {
    if (c->state != MGR_SESSION_REGISTERED || strcmp(c->relay_id, relay->id) != 0) continue;
    xmlNode *n = xmlNewChild(root, NULL, BAD_CAST "client", NULL);
    xmlNewProp(n, BAD_CAST "id", BAD_CAST c->id);
    xmlNewProp(n, BAD_CAST "token", BAD_CAST c->relay_token);
  }
  nm_conn_send_doc(&relay->conn, NM_MSG_RELAY_SERVE, doc);
  xmlFreeDoc(doc);
}

static void mgr__send_assign(mgr_session *client, mgr_session *relay) {
  xmlDoc *doc = xmlNewDoc(BAD_CAST "1.0");
  xmlNode *a = xmlNewNode(NULL, BAD_CAST "relay-assign");
  xmlDocSetRootElement(doc, a);
  if (relay) {
    nm_peer p;
    mgr_session_to_peer(relay, &p);
    char port[8];
    snprintf(port, sizeof port, "%u", p.port);
    xmlNewProp(a, BAD_CAST "relay", BAD_CAST relay->id);
    xmlNewProp(a, BAD_CAST "name", BAD_CAST relay->name);
    xmlNewProp(a, BAD_CAST "ip", BAD_CAST p.ip);
    xmlNewProp(a, BAD_CAST "port", BAD_CAST port);
    xmlNewProp(a, BAD_CAST "token", BAD_CAST client->relay_token);
  }
  nm_conn_send_doc(&client->conn, NM_MSG_RELAY_ASSIGN, doc);
  xmlFreeDoc(doc);
}

void mgr_relay_assign(manager *m, mgr_session *s) {
  mgr_session *relay = mgr__pick_relay(m, s);
  if (!relay) {
    nm_log_warn("no relay available for %s: it waits, suspicious, until one joins", s->name);
    return;
  }
  char a[NM_ID_LEN + 1], b[NM_ID_LEN + 1];
  if (nm_random_id(a) < 0 || nm_random_id(b) < 0) return;
  snprintf(s->relay_token, sizeof s->relay_token, "%s%s", a, b);
  strcpy(s->relay_id, relay->id);
  s->reach = NM_REACH_RELAYED;
  relay->clients++;
  nm_log_info("relay: %s pulls from %s %s (%u of %u clients)", s->name, nm_role_name(relay->role), relay->name,
              relay->clients, relay->max_clients);
  /* The relay learns first, so the client's pull finds its token there. */
  mgr__send_serve(m, relay);
  mgr__send_assign(s, relay);
  mgr_publish_upsert(m, s);
}

static void mgr__unlink_client(manager *m, mgr_session *s) {
  if (!s->relay_id[0]) return;
  mgr_session *relay = mgr_find_registered(m, s->relay_id);
  s->relay_id[0] = 0;
  s->relay_token[0] = 0;
  if (relay) {
    if (relay->clients) relay->clients--;
    mgr__send_serve(m, relay);
  }
}

void mgr_relay_release(manager *m, mgr_session *s) {
  if (s->reach != NM_REACH_RELAYED && s->reach != NM_REACH_SUSPICIOUS) return;
  nm_log_info("relay: %s is reachable by its port mapping; it pulls no more", s->name);
  mgr__unlink_client(m, s);
  mgr__send_assign(s, NULL);
}

/* Clients of a relay that is leaving or was judged unreachable get another one. */
static void mgr__reassign_clients_of(manager *m, mgr_session *relay) {
  for (mgr_session *c = m->sessions; c; c = c->next) {
    if (c->state != MGR_SESSION_REGISTERED || strcmp(c->relay_id, relay->id) != 0) continue;
    nm_log_info("relay: %s lost its relay %s; reassigning", c->name, relay->name);
    c->relay_id[0] = 0;
    c->relay_token[0] = 0;
    c->reach = NM_REACH_SUSPICIOUS;
    mgr_relay_assign(m, c);
    if (c->reach == NM_REACH_SUSPICIOUS) mgr_publish_upsert(m, c);
  }
  relay->clients = 0;
  /* A relay judged unreachable but still registered stops serving them. */
  if (relay->state == MGR_SESSION_REGISTERED) mgr__send_serve(m, relay);
}

void mgr_relays_on_leave(manager *m, mgr_session *s) {
  /* Complaints by it and about it go with it. */
  for (mgr_session *o = m->sessions; o; o = o->next)
    for (size_t i = 0; i < o->ncomplaints; i++)
      if (strcmp(o->complaints[i].reporter, s->id) == 0) {
        o->complaints[i] = o->complaints[--o->ncomplaints];
        break;
      }
  free(s->complaints);
  s->complaints = NULL;
  s->ncomplaints = 0;
  mgr__unlink_client(m, s);
  mgr__reassign_clients_of(m, s);
}

void mgr_relays_on_judged(manager *m, mgr_session *s) { mgr__reassign_clients_of(m, s); }

void mgr_relays_on_join(manager *m, mgr_session *s) {
  if (s->reach != NM_REACH_DIRECT && s->reach != NM_REACH_MAPPED) return;
  for (mgr_session *c = m->sessions; c; c = c->next)
    if (c->state == MGR_SESSION_REGISTERED && c->reach == NM_REACH_SUSPICIOUS && !c->relay_id[0])
      mgr_relay_assign(m, c);
}

int mgr_on_relay_load(mgr_session *relay, const char *payload, size_t len) {
  xmlDoc *doc;
  xmlNode *l = nm_conn_parse_doc(&relay->conn, payload, len, "relay-load", &doc);
  if (!l) return 1;
  const char *v;
  if ((v = nm_xml_attr(l, "bytes-in"))) relay->load_bytes_in = strtoull(v, NULL, 10);
  if ((v = nm_xml_attr(l, "bytes-out"))) relay->load_bytes_out = strtoull(v, NULL, 10);
  if ((v = nm_xml_attr(l, "drops"))) relay->load_drops = strtoull(v, NULL, 10);
  if ((v = nm_xml_attr(l, "attached"))) relay->load_attached = strtoull(v, NULL, 10);
  xmlFreeDoc(doc);
  return 0;
}
