#include "nm_peerlist.h"
#include "nm_error.h"
#include "nm_hex.h"
#include "nm_util.h"
#include "nm_xml.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <uv.h>

struct nm_peer_slot {
  char id[NM_ID_LEN + 1];
  size_t at; /* index into peers */
  UT_hash_handle hh;
};

void nm_peerlist_init(nm_peerlist *l) { memset(l, 0, sizeof *l); }

size_t nm_peerlist_slot_size(void) { return sizeof(nm_peer_slot); }

void nm_peerlist_clear(nm_peerlist *l) {
  nm_peer_slot *e, *tmp;
  HASH_ITER(hh, l->index, e, tmp) {
    HASH_DEL(l->index, e);
    free(e);
  }
  l->count = 0;
}

void nm_peerlist_close(nm_peerlist *l) {
  nm_peerlist_clear(l);
  free(l->peers);
  memset(l, 0, sizeof *l);
}

static nm_peer_slot *nm__slot(const nm_peerlist *l, const char *id) {
  nm_peer_slot *e = NULL;
  if (id) HASH_FIND_STR(l->index, id, e);
  return e;
}

nm_peer *nm_peerlist_find(nm_peerlist *l, const char *id) {
  nm_peer_slot *e = nm__slot(l, id);
  return e ? &l->peers[e->at] : NULL;
}

int nm_peerlist_upsert(nm_peerlist *l, const nm_peer *p) {
  nm_peer_slot *e = nm__slot(l, p->id);
  if (e) {
    l->peers[e->at] = *p;
    return 0;
  }
  if (l->count >= (l->max ? l->max : NM_PEERS_MAX) || strlen(p->id) > NM_ID_LEN) return -ENOSPC;
  if (l->count == l->cap) {
    size_t ncap = l->cap ? l->cap * 2 : 16;
    nm_peer *np = realloc(l->peers, ncap * sizeof *np);
    if (!np) return -ENOMEM;
    l->peers = np;
    l->cap = ncap;
  }
  e = calloc(1, sizeof *e);
  if (!e) return -ENOMEM;
  memcpy(e->id, p->id, strlen(p->id) + 1);
  e->at = l->count;
  HASH_ADD_STR(l->index, id, e);
  l->peers[l->count++] = *p;
  return 0;
}

int nm_peerlist_remove(nm_peerlist *l, const char *id) {
  nm_peer_slot *e = nm__slot(l, id);
  if (!e) return -ENOENT;
  size_t i = e->at, last = l->count - 1;
  HASH_DEL(l->index, e);
  free(e);
  if (i != last) {
    l->peers[i] = l->peers[last];
    nm_peer_slot *moved = nm__slot(l, l->peers[i].id);
    if (moved) moved->at = i;
  }
  l->count--;
  return 0;
}

int nm_id_valid(const char *s) {
  if (!s || strlen(s) != NM_ID_LEN) return 0;
  for (const char *c = s; *c; c++)
    if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'))) return 0;
  return 1;
}

int nm_name_valid(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > NM_NAME_MAX) return 0;
  /* Names are shown on terminals and in DOT files: letters, digits and a few marks. */
  for (const char *c = s; *c; c++) {
    unsigned char ch = (unsigned char)*c;
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '-' || ch == '_' || ch == '.'))
      return 0;
  }
  return 1;
}

int nm_ip_valid(const char *s) {
  unsigned char buf[16];
  /* Literal addresses only: a host name here would make the reader resolve it. */
  return s && *s && strlen(s) < 64 &&
         (uv_inet_pton(AF_INET, s, buf) == 0 || uv_inet_pton(AF_INET6, s, buf) == 0);
}

int nm_pubkey_is_set(const uint8_t key[NM_PUBKEY_LEN]) {
  uint8_t any = 0;
  for (size_t i = 0; i < NM_PUBKEY_LEN; i++) any |= key[i];
  return any != 0;
}

int nm_pubkey_equal(const uint8_t a[NM_PUBKEY_LEN], const uint8_t b[NM_PUBKEY_LEN]) {
  return memcmp(a, b, NM_PUBKEY_LEN) == 0;
}

int nm_key_from_hex(const char *s, uint8_t key[NM_PUBKEY_LEN]) {
  uint8_t k[NM_PUBKEY_LEN];
  if (!s || !nm_hex_valid(s, NM_KEY_HEX_LEN) || nm_hex_decode(s, k, sizeof k) < 0 ||
      !nm_pubkey_is_set(k))
    return -EINVAL;
  memcpy(key, k, sizeof k);
  return 0;
}

int nm_key_hex_valid(const char *s) {
  uint8_t k[NM_PUBKEY_LEN];
  return nm_key_from_hex(s, k) == 0;
}

xmlNode *nm_peer_to_xml(xmlNode *parent, const nm_peer *p, int me) {
  char port[8];
  snprintf(port, sizeof port, "%u", p->port);
  char key[NM_KEY_HEX_LEN + 1];
  nm_pubkey_to_hex(p->key, key);
  xmlNode *n = xmlNewChild(parent, NULL, BAD_CAST "peer", NULL);
  xmlNewTextChild(n, NULL, BAD_CAST "id", BAD_CAST p->id);
  xmlNewTextChild(n, NULL, BAD_CAST "key", BAD_CAST key);
  xmlNewTextChild(n, NULL, BAD_CAST "name", BAD_CAST p->name);
  xmlNewTextChild(n, NULL, BAD_CAST "ip", BAD_CAST p->ip);
  xmlNewTextChild(n, NULL, BAD_CAST "port", BAD_CAST port);
  xmlNewTextChild(n, NULL, BAD_CAST "role", BAD_CAST nm_role_name(p->role));
  xmlNewTextChild(n, NULL, BAD_CAST "state", BAD_CAST nm_reach_name(p->state));
  xmlNewTextChild(n, NULL, BAD_CAST "mapping", BAD_CAST nm_mapping_name(p->mapping));
  if (p->relay[0]) xmlNewTextChild(n, NULL, BAD_CAST "relay", BAD_CAST p->relay);
  for (size_t i = 0; i < p->ncands && i < NM_CANDS_MAX; i++) {
    xmlNode *c = xmlNewChild(n, NULL, BAD_CAST "cand", NULL);
    snprintf(port, sizeof port, "%u", p->cands[i].port);
    xmlNewProp(c, BAD_CAST "kind", BAD_CAST nm_cand_kind_name(p->cands[i].kind));
    xmlNewProp(c, BAD_CAST "ip", BAD_CAST p->cands[i].ip);
    xmlNewProp(c, BAD_CAST "port", BAD_CAST port);
  }
  xmlNewTextChild(n, NULL, BAD_CAST "me", BAD_CAST(me ? "TRUE" : "FALSE"));
  return n;
}

static int nm__copy_field(char *dst, size_t dstlen, const char *src) {
  if (!src || strlen(src) >= dstlen) return -1;
  memcpy(dst, src, strlen(src) + 1);
  return 0;
}

/* <cand kind ip port/> children, in order. Each must be usable (nm_addr_is_candidate) and
 * of a known kind; more than NM_CANDS_MAX refuse the entry. */
static int nm__read_cands(xmlNode *n, nm_peer *out, char *err, size_t errlen) {
  for (xmlNode *c = n->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "cand") != 0) continue;
    if (out->ncands == NM_CANDS_MAX) {
      snprintf(err, errlen, "peer %s has more than %d candidates", out->id, NM_CANDS_MAX);
      return -1;
    }
    nm_cand *k = &out->cands[out->ncands];
    const char *kind = nm_xml_attr(c, "kind");
    const char *ip = nm_xml_attr(c, "ip");
    const char *port = nm_xml_attr(c, "port");
    uint64_t pv = 0;
    if (!kind || nm_cand_kind_parse(kind, &k->kind) < 0 || !ip || !nm_addr_is_candidate(ip) ||
        nm__copy_field(k->ip, sizeof k->ip, ip) < 0 || !port ||
        nm_parse_u64(port, strlen(port), &pv) < 0 || pv == 0 || pv > 65535) {
      snprintf(err, errlen, "peer %s has an invalid <cand> (%zu)", out->id, out->ncands + 1);
      return -1;
    }
    k->port = (uint16_t)pv;
    out->ncands++;
  }
  return 0;
}

int nm_peer_from_xml(xmlNode *n, nm_peer *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  const char *id = nm_xml_child_text(n, "id");
  const char *name = nm_xml_child_text(n, "name");
  const char *ip = nm_xml_child_text(n, "ip");
  const char *port = nm_xml_child_text(n, "port");
  if (!nm_id_valid(id) || nm__copy_field(out->id, sizeof out->id, id) < 0) {
    snprintf(err, errlen, "peer has a missing or invalid <id>");
    return NM_EMSG;
  }
  /* Required: without it nobody could check who answers for this id or signs its lines. */
  if (nm_key_from_hex(nm_xml_child_text(n, "key"), out->key) < 0) {
    snprintf(err, errlen, "peer %s has a missing or invalid <key>", id);
    return NM_EMSG;
  }
  if (!nm_name_valid(name) || nm__copy_field(out->name, sizeof out->name, name) < 0) {
    snprintf(err, errlen, "peer %s has a missing or invalid <name>", id);
    return NM_EMSG;
  }
  if (!nm_ip_valid(ip) || nm__copy_field(out->ip, sizeof out->ip, ip) < 0) {
    snprintf(err, errlen, "peer %s has a missing or invalid <ip>", id);
    return NM_EMSG;
  }
  uint64_t pv = 0;
  if (!port || nm_parse_u64(port, strlen(port), &pv) < 0 || pv == 0 || pv > 65535) {
    snprintf(err, errlen, "peer %s has a missing or invalid <port>", id);
    return NM_EMSG;
  }
  out->port = (uint16_t)pv;
  const char *role = nm_xml_child_text(n, "role");
  if (role && nm_role_parse(role, &out->role) < 0) {
    snprintf(err, errlen, "peer %s has an invalid <role>", id);
    return NM_EMSG;
  }
  const char *state = nm_xml_child_text(n, "state");
  if (state && nm_reach_parse(state, &out->state) < 0) {
    snprintf(err, errlen, "peer %s has an invalid <state>", id);
    return NM_EMSG;
  }
  const char *mapping = nm_xml_child_text(n, "mapping");
  if (mapping && nm_mapping_parse(mapping, &out->mapping) < 0) {
    snprintf(err, errlen, "peer %s has an invalid <mapping>", id);
    return NM_EMSG;
  }
  const char *relay = nm_xml_child_text(n, "relay");
  if (relay && (!nm_id_valid(relay) || nm__copy_field(out->relay, sizeof out->relay, relay) < 0)) {
    snprintf(err, errlen, "peer %s has an invalid <relay>", id);
    return NM_EMSG;
  }
  if (nm__read_cands(n, out, err, errlen) < 0) return NM_EMSG;
  const char *me = nm_xml_child_text(n, "me");
  out->me = me && strcmp(me, "TRUE") == 0;
  return 0;
}

static xmlDoc *nm__doc_with_root(const char *root_name, xmlNode **root) {
  xmlDoc *doc = xmlNewDoc(BAD_CAST "1.0");
  *root = xmlNewNode(NULL, BAD_CAST root_name);
  xmlDocSetRootElement(doc, *root);
  return doc;
}

static void nm__set_u64(xmlNode *n, const char *attr, uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "%" PRIu64, v);
  xmlNewProp(n, BAD_CAST attr, BAD_CAST buf);
}

xmlDoc *nm_peerlist_to_doc(const nm_peerlist *l, const char *me_id) {
  xmlNode *root;
  xmlDoc *doc = nm__doc_with_root("peers", &root);
  nm__set_u64(root, "version", l->version);
  for (size_t i = 0; i < l->count; i++)
    nm_peer_to_xml(root, &l->peers[i], me_id && strcmp(me_id, l->peers[i].id) == 0);
  return doc;
}

static int nm__attr_u64(xmlNode *n, const char *name, uint64_t *out) {
  const char *v = nm_xml_attr(n, name);
  return v ? nm_parse_u64(v, strlen(v), out) : -ENOENT;
}

int nm_peerlist_from_doc(xmlDoc *doc, nm_peerlist *out, char *me_id, char *err, size_t errlen) {
  xmlNode *root = xmlDocGetRootElement(doc);
  if (me_id) me_id[0] = 0;
  if (!root || strcmp((const char *)root->name, "peers") != 0) {
    snprintf(err, errlen, "expected a <peers> document");
    return NM_EMSG;
  }
  uint64_t version;
  if (nm__attr_u64(root, "version", &version) < 0) {
    snprintf(err, errlen, "<peers> lacks a valid version");
    return NM_EMSG;
  }
  nm_peerlist_clear(out);
  out->version = version;
  for (xmlNode *c = root->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) continue;
    if (strcmp((const char *)c->name, "peer") != 0) continue; /* newer fields: ignore */
    nm_peer p;
    int rc = nm_peer_from_xml(c, &p, err, errlen);
    if (rc < 0) return rc;
    if (nm_peerlist_find(out, p.id)) {
      snprintf(err, errlen, "peer %s listed twice", p.id);
      return NM_EMSG;
    }
    rc = nm_peerlist_upsert(out, &p);
    if (rc < 0) {
      snprintf(err, errlen, "too many peers (limit %d)", NM_PEERS_MAX);
      return rc;
    }
    if (p.me && me_id) strcpy(me_id, p.id);
  }
  return 0;
}

xmlDoc *nm_delta_upsert_doc(uint64_t base, uint64_t version, const nm_peer *p) {
  xmlNode *root;
  xmlDoc *doc = nm__doc_with_root("delta", &root);
  nm__set_u64(root, "base", base);
  nm__set_u64(root, "version", version);
  nm_peer_to_xml(root, p, 0);
  return doc;
}

xmlDoc *nm_delta_leave_doc(uint64_t base, uint64_t version, const char *id) {
  xmlNode *root;
  xmlDoc *doc = nm__doc_with_root("delta", &root);
  nm__set_u64(root, "base", base);
  nm__set_u64(root, "version", version);
  xmlNode *leave = xmlNewChild(root, NULL, BAD_CAST "leave", NULL);
  xmlNewProp(leave, BAD_CAST "id", BAD_CAST id);
  return doc;
}

xmlDoc *nm_delta_doc(uint64_t base, uint64_t version, const nm_delta_change *changes, size_t count) {
  xmlNode *root;
  xmlDoc *doc = nm__doc_with_root("delta", &root);
  nm__set_u64(root, "base", base);
  nm__set_u64(root, "version", version);
  for (size_t i = 0; i < count; i++) {
    if (changes[i].leave) {
      xmlNode *leave = xmlNewChild(root, NULL, BAD_CAST "leave", NULL);
      xmlNewProp(leave, BAD_CAST "id", BAD_CAST changes[i].peer.id);
      if (changes[i].out_of_view) xmlNewProp(leave, BAD_CAST "view", BAD_CAST "out");
    } else {
      nm_peer_to_xml(root, &changes[i].peer, 0);
    }
  }
  return doc;
}

xmlDoc *nm_peerlist_page_doc(uint64_t version, unsigned page, unsigned pages, const nm_peer *peers, size_t n,
                             int me) {
  xmlNode *root;
  xmlDoc *doc = nm__doc_with_root("peers", &root);
  nm__set_u64(root, "version", version);
  nm__set_u64(root, "page", page);
  nm__set_u64(root, "pages", pages);
  for (size_t i = 0; i < n; i++) nm_peer_to_xml(root, &peers[i], me);
  return doc;
}

int nm_peerlist_entries_xml(const nm_peer *peers, size_t n, char **out, size_t *len) {
  *out = NULL;
  *len = 0;
  if (n == 0) return 0;
  xmlDoc *doc = nm_peerlist_page_doc(0, 0, 2, peers, n, 0);
  xmlBufferPtr b = doc ? xmlBufferCreate() : NULL;
  if (!b) {
    if (doc) xmlFreeDoc(doc);
    return -ENOMEM;
  }
  for (xmlNode *c = xmlDocGetRootElement(doc)->children; c; c = c->next) xmlNodeDump(b, doc, c, 0, 0);
  int rc = 0;
  size_t blen = (size_t)xmlBufferLength(b);
  *out = malloc(blen + 1);
  if (!*out) {
    rc = -ENOMEM;
  } else {
    memcpy(*out, xmlBufferContent(b), blen);
    (*out)[blen] = 0;
    *len = blen;
  }
  xmlBufferFree(b);
  xmlFreeDoc(doc);
  return rc;
}

int nm_peerlist_page_from_entries(uint64_t version, unsigned page, unsigned pages, const char *entries, size_t len,
                                  char **out, size_t *outlen) {
  nm_xml_writer w;
  int rc = nm_xml_writer_init(&w);
  if (rc < 0) return rc;
  nm_xml_writer_start(&w, "peers");
  nm_xml_writer_attr_u64(&w, "version", version);
  nm_xml_writer_attr_u64(&w, "page", page);
  nm_xml_writer_attr_u64(&w, "pages", pages);
  nm_xml_writer_raw(&w, entries, len);
  nm_xml_writer_end(&w);
  return nm_xml_writer_finish(&w, out, outlen);
}
