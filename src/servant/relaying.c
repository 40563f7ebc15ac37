/* Relay duty: serving servants the manager judged unreachable. They connect to us and
 * pull; we forward every chat line we accept (ours included), replay the last minute to a
 * client that attaches, and keep each client and the total within the configured rates. */
#include "servant.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sv_client *sv__client_find(servant *sv, const char *id) {
  for (size_t i = 0; i < sv->nclients; i++)
    if (strcmp(sv->clients[i].id, id) == 0) return &sv->clients[i];
  return NULL;
}

void sv_relay_on_serve(servant *sv, xmlNode *serve) {
  size_t n = 0;
  size_t cap = sizeof sv->clients / sizeof *sv->clients;
  if (sv->cfg.max_clients && sv->cfg.max_clients < cap) cap = sv->cfg.max_clients;
  sv_client fresh[256];
  for (xmlNode *c = serve->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "client") != 0) continue;
    const char *id = nm_xml_attr(c, "id"), *token = nm_xml_attr(c, "token");
    if (!nm_id_valid(id) || !token || strlen(token) != 32) continue;
    if (n == cap) {
      nm_log_warn("manager assigned more clients than our limit of %zu; extra ones ignored", cap);
      break;
    }
    strcpy(fresh[n].id, id);
    strcpy(fresh[n].token, token);
    n++;
  }
  if (n) memcpy(sv->clients, fresh, n * sizeof *fresh);
  sv->nclients = n;
  /* Clients no longer assigned to us are dropped. */
  for (size_t i = 0; i < sv->npullers;) {
    sv_in *in = sv->pullers[i];
    if (!sv__client_find(sv, in->client_id)) {
      nm_conn_close(&in->conn, 0, "no longer assigned to this relay");
      sv_relay_detach(sv, in);
      continue;
    }
    i++;
  }
  nm_log_info("relay duty: %zu client%s assigned", n, n == 1 ? "" : "s");
}

static void sv__recent_trim(servant *sv, uint64_t now) {
  sv_recent *r = &sv->recent;
  while (r->head && (r->count > SV_RECENT_MAX || now - r->head->queued_ms > SV_RECENT_TTL_MS)) {
    sv_chat *old = r->head;
    r->head = old->next;
    if (!r->head) r->tail = NULL;
    r->count--;
    free(old);
  }
}

static void sv__send_to_client(servant *sv, sv_in *in, const char *payload, size_t len) {
  uint64_t now = sv_now_ms(sv);
  if (!nm_ratelimit_take(&in->rate, now, len) || !nm_ratelimit_take(&sv->total_rate, now, len)) {
    sv->drops++;
    return;
  }
  if (nm_conn_send(&in->conn, NM_MSG_CHAT, payload, len) < 0) {
    sv->drops++;
    return;
  }
  sv->bytes_out += len;
}

int sv_relay_attach(servant *sv, sv_in *in, const char *payload, size_t len, char *err, size_t errlen) {
  xmlDoc *doc;
  int rc = nm_xml_parse(payload, len, &doc, err, errlen);
  if (rc < 0) return rc;
  xmlNode *p = xmlDocGetRootElement(doc);
  const char *id = nm_xml_attr(p, "id"), *token = nm_xml_attr(p, "token");
  sv_client *c = nm_id_valid(id) ? sv__client_find(sv, id) : NULL;
  if (strcmp((const char *)p->name, "pull") != 0 || !c || !token || strcmp(c->token, token) != 0) {
    snprintf(err, errlen, "pull refused: %s is not assigned to this relay with that token",
             nm_id_valid(id) ? id : "(invalid id)");
    xmlFreeDoc(doc);
    return NM_EMSG;
  }
  xmlFreeDoc(doc);
  if (sv->npullers == sizeof sv->pullers / sizeof *sv->pullers) {
    snprintf(err, errlen, "relay is full");
    return -ENOSPC;
  }
  /* A client reconnecting replaces its old connection. */
  for (size_t i = 0; i < sv->npullers; i++)
    if (strcmp(sv->pullers[i]->client_id, c->id) == 0) {
      sv_in *old = sv->pullers[i];
      sv_relay_detach(sv, old);
      nm_conn_close(&old->conn, 0, "replaced by a new pull connection");
      break;
    }
  in->puller = 1;
  in->identified = 1;
  nm_conn_deadline_clear(&in->conn);
  strcpy(in->client_id, c->id);
  /* Token buckets with a one-second burst. */
  nm_ratelimit_init(&in->rate, sv->cfg.client_rate_bps, sv->cfg.client_rate_bps, sv_now_ms(sv));
  sv->pullers[sv->npullers++] = in;
  sv_peer *peer = sv_peer_find(sv, c->id);
  nm_conn_set_label(&in->conn, "relay client %s", peer ? peer->info.name : c->id);
  nm_frame_reader_set_max(&in->conn.reader, NM_FRAME_MAX);
  /* Replay what the client may have missed while it was unreachable; it shows each line
   * once whatever arrives twice. */
  sv__recent_trim(sv, sv_now_ms(sv));
  size_t replayed = 0;
  for (sv_chat *m = sv->recent.head; m; m = m->next)
    if (strcmp(m->origin, c->id) != 0) {
      sv__send_to_client(sv, in, m->payload, m->len);
      replayed++;
    }
  nm_log_info("serving relay client %s (%zu attached); replayed %zu recent lines",
              peer ? peer->info.name : c->id, sv->npullers, replayed);
  return 0;
}

void sv_relay_detach(servant *sv, sv_in *in) {
  for (size_t i = 0; i < sv->npullers; i++)
    if (sv->pullers[i] == in) {
      sv->pullers[i] = sv->pullers[--sv->npullers];
      break;
    }
  in->puller = 0;
}

void sv_relay_forward(servant *sv, const char *origin, const char *payload, size_t len) {
  uint64_t now = sv_now_ms(sv);
  if (strcmp(origin, sv->id) != 0) sv->bytes_in += len;
  sv_chat *m = malloc(sizeof *m + len);
  if (m) {
    m->next = NULL;
    m->queued_ms = now;
    m->len = len;
    snprintf(m->origin, sizeof m->origin, "%s", origin);
    memcpy(m->payload, payload, len);
    if (sv->recent.tail) sv->recent.tail->next = m;
    else sv->recent.head = m;
    sv->recent.tail = m;
    sv->recent.count++;
  }
  sv__recent_trim(sv, now);
  for (size_t i = 0; i < sv->npullers; i++)
    if (strcmp(sv->pullers[i]->client_id, origin) != 0)
      sv__send_to_client(sv, sv->pullers[i], payload, len);
}

void sv_relay_tick(servant *sv) { sv__recent_trim(sv, sv_now_ms(sv)); }

void sv_relay_load_report(servant *sv) {
  if (sv->cfg.role != NM_ROLE_RELAY && sv->nclients == 0) return;
  char buf[256];
  int n = snprintf(buf, sizeof buf,
                   "<relay-load clients=\"%zu\" attached=\"%zu\" max-clients=\"%u\" bytes-in=\"%llu\" "
                   "bytes-out=\"%llu\" drops=\"%llu\"/>",
                   sv->nclients, sv->npullers, sv->cfg.max_clients, (unsigned long long)sv->bytes_in,
                   (unsigned long long)sv->bytes_out, (unsigned long long)sv->drops);
  sv_manager_send(sv, NM_MSG_RELAY_LOAD, buf, (size_t)n);
}

void sv_relay_close(servant *sv) {
  while (sv->npullers) {
    sv_in *in = sv->pullers[0];
    sv_relay_detach(sv, in);
    nm_conn_close(&in->conn, 0, NULL);
  }
  sv->recent.count = SV_RECENT_MAX + 1;
  while (sv->recent.head) {
    sv_chat *m = sv->recent.head;
    sv->recent.head = m->next;
    free(m);
  }
  sv->recent.tail = NULL;
  sv->recent.count = 0;
}
