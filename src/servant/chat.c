/* Chat lines: built here when typed, checked and de-duplicated here when received; the
 * accepted ones go on to lines.c. */
#include "chat.h"
#include "lines.h"
#include "peers.h"
#include "servant.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_xml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sv_chat_init(servant *sv) {
  sv->chat.next_seq = 0;
  nm_seen_init(&sv->chat.seen);
}

void sv_chat_publish(servant *sv, const char *text) {
  sv_chat *ch = &sv->chat;
  char seq[24];
  snprintf(seq, sizeof seq, "%llu", (unsigned long long)++ch->next_seq);
  xmlDoc *doc = xmlNewDoc(BAD_CAST "1.0");
  xmlNode *c = xmlNewNode(NULL, BAD_CAST "chat");
  xmlDocSetRootElement(doc, c);
  xmlNewProp(c, BAD_CAST "origin", BAD_CAST sv->id);
  xmlNewProp(c, BAD_CAST "name", BAD_CAST sv->cfg.name);
  xmlNewProp(c, BAD_CAST "seq", BAD_CAST seq);
  xmlNodeAddContent(c, BAD_CAST text); /* escapes <, & for us */
  char *payload;
  size_t len;
  int rc = nm_xml_dump(doc, &payload, &len);
  xmlFreeDoc(doc);
  /* Our own line never comes back to the screen, even through a relay. */
  nm_seen_check_and_add(&ch->seen, nm_seen_key(sv->id, ch->next_seq));
  if (rc < 0) return;
  sv_line l = {.origin = sv->id, .name = sv->cfg.name, .text = text, .payload = payload, .len = len};
  sv_lines_published(sv, &l);
  free(payload);
}

int sv_chat_receive(servant *sv, const char *payload, size_t len, char *err, size_t errlen) {
  xmlDoc *doc;
  int rc = nm_xml_parse(payload, len, &doc, err, errlen);
  if (rc < 0) return rc;
  xmlNode *c = xmlDocGetRootElement(doc);
  const char *origin = nm_xml_attr(c, "origin");
  const char *name = nm_xml_attr(c, "name");
  unsigned long long seq = 0;
  const char *seqs = nm_xml_attr(c, "seq");
  char *end = NULL;
  if (seqs && *seqs >= '0' && *seqs <= '9') seq = strtoull(seqs, &end, 10);
  const char *text = c->children && c->children->type == XML_TEXT_NODE
                         ? (const char *)c->children->content
                         : "";
  rc = 0;
  sv_peer *known = NULL;
  if (strcmp((const char *)c->name, "chat") != 0) {
    snprintf(err, errlen, "expected <chat>");
    rc = NM_EMSG;
  } else if (!nm_id_valid(origin) || !nm_name_valid(name) || !end || *end || seq == 0) {
    snprintf(err, errlen, "chat with an invalid origin, name or seq");
    rc = NM_EMSG;
  } else if (strlen(text) > NM_CHAT_MAX) {
    snprintf(err, errlen, "chat text longer than %d bytes", NM_CHAT_MAX);
    rc = NM_EMSG;
  } else if (strcmp(origin, sv->id) == 0) {
    /* our own line, echoed back by a relay */
  } else if (!(known = sv_peer_find(sv, origin))) {
    /* Only servants the manager listed may speak: anyone can connect to our port, but a
     * made-up origin is not in the list. */
    nm_log_info("dropped a line from %s: origin %s is not in our peer list", name, origin);
  } else if (known->banned) {
    nm_log_info("dropped a line from banned %s (%s)", known->info.name, origin);
  } else if (!nm_seen_check_and_add(&sv->chat.seen, nm_seen_key(origin, seq))) {
    /* The name shown is the one the manager lists for that id, whatever the frame says. */
    if (strcmp(name, known->info.name) != 0)
      nm_log_warn("a line from %s claims the name %s; shown as %s", origin, name, known->info.name);
    sv_line l = {.origin = origin, .name = known->info.name, .text = text, .payload = payload, .len = len};
    sv_lines_received(sv, &l);
  }
  xmlFreeDoc(doc);
  return rc;
}
