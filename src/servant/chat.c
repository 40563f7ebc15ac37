/* Chat frames: what a servant publishes, and what it shows of what it receives. */
#include "servant.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_xml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sv_chat_build(servant *sv, const char *text, char **payload, size_t *len) {
  char seq[24];
  snprintf(seq, sizeof seq, "%llu", (unsigned long long)++sv->next_seq);
  xmlDoc *doc = xmlNewDoc(BAD_CAST "1.0");
  xmlNode *c = xmlNewNode(NULL, BAD_CAST "chat");
  xmlDocSetRootElement(doc, c);
  xmlNewProp(c, BAD_CAST "origin", BAD_CAST sv->id);
  xmlNewProp(c, BAD_CAST "name", BAD_CAST sv->cfg.name);
  xmlNewProp(c, BAD_CAST "seq", BAD_CAST seq);
  xmlNodeAddContent(c, BAD_CAST text); /* escapes <, & for us */
  int rc = nm_xml_dump(doc, payload, len);
  xmlFreeDoc(doc);
  /* Our own line never comes back to the screen, even through a relay. */
  nm_seen_check_and_add(&sv->seen, nm_seen_key(sv->id, sv->next_seq));
  return rc;
}

int sv_peer_hello_build(servant *sv, char *buf, size_t buflen) {
  return snprintf(buf, buflen, "<peer-hello id=\"%s\" name=\"%s\"/>", sv->id, sv->cfg.name);
}

/* Terminal safety: a peer must not be able to move our cursor or change colours, with C0
 * controls, DEL, or the C1 controls U+0080-U+009F (UTF-8 C2 80 .. C2 9F, CSI among them). */
static void sv__print_safe(const char *name, const char *text) {
  char out[NM_CHAT_MAX + 1];
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)text; *p && n < NM_CHAT_MAX; p++) {
    if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
      out[n++] = '?';
      p++;
    } else {
      out[n++] = (*p < 0x20 || *p == 0x7f) ? '?' : (char)*p;
    }
  }
  out[n] = 0;
  printf("%s: %s\n", name, out);
  fflush(stdout);
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
  } else if (!nm_seen_check_and_add(&sv->seen, nm_seen_key(origin, seq))) {
    /* The name shown is the one the manager lists for that id, whatever the frame says. */
    if (strcmp(name, known->info.name) != 0)
      nm_log_warn("a line from %s claims the name %s; shown as %s", origin, name, known->info.name);
    /* A dedicated relay shows nothing; it only passes lines on. */
    if (!sv->quiet) sv__print_safe(known->info.name, text);
    sv_relay_forward(sv, origin, payload, len);
  }
  xmlFreeDoc(doc);
  return rc;
}
