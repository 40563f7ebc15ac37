#include "ctl_pages.h"

#include "nm_error.h"
#include "nm_status.h"
#include "nm_util.h"
#include "nm_xml.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nmctl_pages_init(nmctl_pages *p) { memset(p, 0, sizeof *p); }

void nmctl_pages_close(nmctl_pages *p) {
  if (p->doc) xmlFreeDoc(p->doc);
  memset(p, 0, sizeof *p);
}

static int nmctl__u64(xmlNode *n, const char *name, uint64_t *out) {
  const char *v = nm_xml_attr(n, name);
  return v ? nm_parse_u64(v, strlen(v), out) : -ENOENT;
}

int nmctl_pages_add(nmctl_pages *p, const char *payload, size_t len, char *err, size_t errlen) {
  xmlDoc *doc = NULL;
  int rc = nm_xml_parse(payload, len, &doc, err, errlen);
  /* Outside a paged status, what is no page is the status parser's to judge (and say). */
  if (rc < 0) return p->doc ? rc : 2;
  xmlNode *root = xmlDocGetRootElement(doc);
  uint64_t version = 0, page = 0, pages = 0;
  if (!root || strcmp((const char *)root->name, "status") != 0 || nmctl__u64(root, "version", &version) < 0) {
    xmlFreeDoc(doc);
    if (!p->doc) return 2;
    snprintf(err, errlen, "status: expected a <status> document with a version");
    return NM_EMSG;
  }
  int has_pages = nm_xml_attr(root, "pages") != NULL;
  if (!has_pages && !p->doc) {
    xmlFreeDoc(doc);
    return 2;
  }
  if (!has_pages || nmctl__u64(root, "pages", &pages) < 0 || nmctl__u64(root, "page", &page) < 0 || pages < 2 ||
      pages > NM_STATUS_PAGES_MAX || page >= pages) {
    snprintf(err, errlen, "status: %s (page %" PRIu64 " of %" PRIu64 ", at most %d pages)",
             has_pages ? "invalid page or pages" : "a status without pages in the middle of a paged one", page,
             pages, NM_STATUS_PAGES_MAX);
    xmlFreeDoc(doc);
    return NM_EMSG;
  }
  if (page == 0 && p->doc) {
    snprintf(err, errlen, "status: a new status (version %" PRIu64 ") before page %u of %u of version %" PRIu64, version,
             p->next, p->pages, p->version);
    xmlFreeDoc(doc);
    return NM_EMSG;
  }
  if (page != 0 && (!p->doc || version != p->version || pages != p->pages || page != p->next)) {
    if (p->doc)
      snprintf(err, errlen,
               "status: page %" PRIu64 " of %" PRIu64 " (version %" PRIu64 ") out of order: expected page %u of %u of version %" PRIu64,
               page, pages, version, p->next, p->pages, p->version);
    else
      snprintf(err, errlen, "status: page %" PRIu64 " of %" PRIu64 " without its first page", page, pages);
    xmlFreeDoc(doc);
    return NM_EMSG;
  }
  if (len > NM_STATUS_DOC_MAX - p->bytes) {
    snprintf(err, errlen, "status: more than %u bytes across its pages", NM_STATUS_DOC_MAX);
    xmlFreeDoc(doc);
    return NM_EMSG;
  }
  p->bytes += len;
  /* Count before keeping anything: the total is bounded, whatever the pages say. */
  size_t n = 0;
  for (xmlNode *c = root->children; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, "servant") == 0) n++;
  if (n > NM_STATUS_SERVANTS_MAX - p->servants) {
    snprintf(err, errlen, "status: more than %d servants across its pages", NM_STATUS_SERVANTS_MAX);
    xmlFreeDoc(doc);
    return NM_EMSG;
  }
  p->servants += n;
  if (page == 0) {
    p->doc = doc;
    p->version = version;
    p->pages = (unsigned)pages;
  } else {
    xmlNode *into = xmlDocGetRootElement(p->doc);
    for (xmlNode *c = root->children, *next; c; c = next) {
      next = c->next;
      if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "servant") != 0) continue;
      xmlUnlinkNode(c);
      xmlAddChild(into, xmlDocCopyNode(c, p->doc, 1));
      xmlFreeNode(c);
    }
    xmlFreeDoc(doc);
  }
  p->next = (unsigned)page + 1;
  return p->next == p->pages ? 1 : 0;
}

int nmctl_pages_take(nmctl_pages *p, char **out, size_t *outlen) {
  *out = NULL;
  *outlen = 0;
  if (!p->doc) return -EINVAL;
  xmlNode *root = xmlDocGetRootElement(p->doc);
  xmlUnsetProp(root, BAD_CAST "page");
  xmlUnsetProp(root, BAD_CAST "pages");
  char count[24];
  snprintf(count, sizeof count, "%zu", p->servants);
  xmlSetProp(root, BAD_CAST "servants", BAD_CAST count);
  return nm_xml_dump(p->doc, out, outlen);
}
