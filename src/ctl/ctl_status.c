#include "ctl_status.h"

#include "nm_error.h"
#include "nm_xml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nmctl_status_init(nmctl_status *st) { memset(st, 0, sizeof *st); }

void nmctl_status_close(nmctl_status *st) {
  free(st->servants);
  memset(st, 0, sizeof *st);
}

static int nmctl__u64(const char *v, uint64_t *out) {
  if (!v || *v < '0' || *v > '9') return -EINVAL;
  char *end;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 10);
  if (*end || errno) return -EINVAL;
  *out = x;
  return 0;
}

/* Copies an optional text attribute; a missing one becomes "" and a too long one is an
 * error rather than a silent truncation. */
static int nmctl__text(xmlNode *n, const char *attr, char *dst, size_t dstlen) {
  const char *v = nm_xml_attr(n, attr);
  if (!v) v = "";
  size_t len = strlen(v);
  if (len >= dstlen) return -1;
  memcpy(dst, v, len + 1);
  return 0;
}

static int nmctl__port(xmlNode *n, const char *attr, uint16_t *out) {
  unsigned v = 0;
  int rc = nm_xml_attr_uint(n, attr, 0, 65535, &v);
  if (rc == -ENOENT) v = 0;
  else if (rc < 0) return rc;
  *out = (uint16_t)v;
  return 0;
}

static int nmctl__servant_from_xml(xmlNode *n, size_t index, nmctl_servant *s, char *err,
                                   size_t errlen) {
  static const struct {
    const char *attr;
    size_t offset;
    size_t size;
  } texts[] = {
      {"name", offsetof(nmctl_servant, name), sizeof(((nmctl_servant *)0)->name)},
      {"role", offsetof(nmctl_servant, role), sizeof(((nmctl_servant *)0)->role)},
      {"ip", offsetof(nmctl_servant, ip), sizeof(((nmctl_servant *)0)->ip)},
      {"dial-ip", offsetof(nmctl_servant, dial_ip), sizeof(((nmctl_servant *)0)->dial_ip)},
      {"state", offsetof(nmctl_servant, state), sizeof(((nmctl_servant *)0)->state)},
      {"mapping", offsetof(nmctl_servant, mapping), sizeof(((nmctl_servant *)0)->mapping)},
      {"ext-ip", offsetof(nmctl_servant, ext_ip), sizeof(((nmctl_servant *)0)->ext_ip)},
      {"relay-name", offsetof(nmctl_servant, relay_name),
       sizeof(((nmctl_servant *)0)->relay_name)},
  };
  memset(s, 0, sizeof *s);
  const char *id = nm_xml_attr(n, "id");
  if (!nm_id_valid(id)) {
    snprintf(err, errlen, "servant %zu has a missing or invalid id", index + 1);
    return NM_EMSG;
  }
  memcpy(s->id, id, NM_ID_LEN + 1);
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    if (nmctl__text(n, texts[i].attr, (char *)s + texts[i].offset, texts[i].size) < 0) {
      snprintf(err, errlen, "servant %s: %s is longer than %d bytes", s->id, texts[i].attr,
               NMCTL_TEXT_MAX);
      return NM_EMSG;
    }
  }
  const char *bad = NULL;
  if (nmctl__port(n, "port", &s->port) < 0) bad = "port";
  else if (nmctl__port(n, "dial-port", &s->dial_port) < 0) bad = "dial-port";
  else if (nmctl__port(n, "ext-port", &s->ext_port) < 0) bad = "ext-port";
  if (bad) {
    snprintf(err, errlen, "servant %s has an invalid %s", s->id, bad);
    return NM_EMSG;
  }
  const char *relay = nm_xml_attr(n, "relay");
  if (relay && *relay) {
    if (!nm_id_valid(relay)) {
      snprintf(err, errlen, "servant %s has an invalid relay id", s->id);
      return NM_EMSG;
    }
    memcpy(s->relay, relay, NM_ID_LEN + 1);
  }
  const char *hb = nm_xml_attr(n, "last-heartbeat-ms");
  if (hb) {
    if (nmctl__u64(hb, &s->last_heartbeat_ms) < 0) {
      snprintf(err, errlen, "servant %s has an invalid last-heartbeat-ms", s->id);
      return NM_EMSG;
    }
    s->has_last_heartbeat = 1;
  }
  const char *cs = nm_xml_attr(n, "connected-s");
  if (cs && nmctl__u64(cs, &s->connected_s) < 0) {
    snprintf(err, errlen, "servant %s has an invalid connected-s", s->id);
    return NM_EMSG;
  }
  if ((nm_xml_attr(n, "complaints") &&
       nm_xml_attr_uint(n, "complaints", 0, 0xffffffffu, &s->complaints) < 0) ||
      (nm_xml_attr(n, "clients") &&
       nm_xml_attr_uint(n, "clients", 0, 0xffffffffu, &s->clients) < 0) ||
      (nm_xml_attr(n, "max-clients") &&
       nm_xml_attr_uint(n, "max-clients", 0, 0xffffffffu, &s->max_clients) < 0) ||
      (nm_xml_attr(n, "bytes-in") && nmctl__u64(nm_xml_attr(n, "bytes-in"), &s->bytes_in) < 0) ||
      (nm_xml_attr(n, "bytes-out") && nmctl__u64(nm_xml_attr(n, "bytes-out"), &s->bytes_out) < 0) ||
      (nm_xml_attr(n, "drops") && nmctl__u64(nm_xml_attr(n, "drops"), &s->drops) < 0)) {
    snprintf(err, errlen, "servant %s has an invalid counter", s->id);
    return NM_EMSG;
  }
  if (!s->role[0]) strcpy(s->role, "servant");
  if (!s->state[0]) strcpy(s->state, "unknown");
  if (!s->mapping[0]) strcpy(s->mapping, "none");
  /* Older or simpler managers may not say where to dial: that is the observed address. */
  if (!s->dial_ip[0]) memcpy(s->dial_ip, s->ip, sizeof s->ip);
  if (!s->dial_port) s->dial_port = s->port;
  return 0;
}

int nmctl_status_from_doc(xmlDoc *doc, nmctl_status *st, char *err, size_t errlen) {
  nmctl_status_close(st);
  xmlNode *root = xmlDocGetRootElement(doc);
  if (!root || strcmp((const char *)root->name, "status") != 0) {
    snprintf(err, errlen, "expected a <status> document");
    return NM_EMSG;
  }
  if (nmctl__u64(nm_xml_attr(root, "version"), &st->version) < 0) {
    snprintf(err, errlen, "<status> lacks a valid version");
    return NM_EMSG;
  }
  int hrc = nm_xml_attr_uint(root, "heartbeat", 0, 86400, &st->heartbeat);
  int trc = nm_xml_attr_uint(root, "timeout", 0, 86400, &st->timeout);
  if ((hrc < 0 && hrc != -ENOENT) || (trc < 0 && trc != -ENOENT)) {
    snprintf(err, errlen, "<status> has an invalid heartbeat or timeout");
    return NM_EMSG;
  }
  /* Count the elements ourselves: the document's servants="N" is not trusted for sizing. */
  size_t n = 0;
  for (xmlNode *c = root->children; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, "servant") == 0) n++;
  if (n > NMCTL_SERVANTS_MAX) {
    snprintf(err, errlen, "status lists %zu servants (limit %d)", n, NMCTL_SERVANTS_MAX);
    return NM_EMSG;
  }
  if (n) {
    st->servants = calloc(n, sizeof *st->servants);
    if (!st->servants) {
      snprintf(err, errlen, "out of memory");
      return -ENOMEM;
    }
  }
  for (xmlNode *c = root->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "servant") != 0) continue;
    int rc = nmctl__servant_from_xml(c, st->count, &st->servants[st->count], err, errlen);
    if (rc < 0) {
      nmctl_status_close(st);
      return rc;
    }
    st->count++;
  }
  return 0;
}

int nmctl_status_parse(const char *buf, size_t len, nmctl_status *st, xmlDoc **doc_out,
                       char *err, size_t errlen) {
  xmlDoc *doc;
  if (doc_out) *doc_out = NULL;
  int rc = nm_xml_parse(buf, len, &doc, err, errlen);
  if (rc < 0) return rc;
  rc = nmctl_status_from_doc(doc, st, err, errlen);
  if (rc < 0 || !doc_out)
    xmlFreeDoc(doc);
  else
    *doc_out = doc;
  return rc;
}

const nmctl_servant *nmctl_status_find(const nmctl_status *st, const char *id) {
  for (size_t i = 0; i < st->count; i++)
    if (strcmp(st->servants[i].id, id) == 0) return &st->servants[i];
  return NULL;
}
