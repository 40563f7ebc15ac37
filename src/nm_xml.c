#include "nm_xml.h"
#include "nm_error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>
#include <libxml/xmlerror.h>

static void nm__xml_quiet(void *ctx, const char *msg, ...) { (void)ctx; (void)msg; }
static void nm__xml_quiet_structured(void *ctx, xmlErrorPtr e) { (void)ctx; (void)e; }

/* libxml2 reports errors in order and the last is often "Premature end of data" at the end
 * of the file; the first one is where the document went wrong. */
typedef struct {
  int have;
  int line;
  char msg[256];
} nm__xml_first_error;

static void nm__xml_keep_first(void *ctx, xmlErrorPtr e) {
  nm__xml_first_error *f = ctx;
  if (f->have || !e || e->level < XML_ERR_ERROR) return;
  f->have = 1;
  f->line = e->line;
  snprintf(f->msg, sizeof f->msg, "%s", e->message ? e->message : "not well-formed XML");
  size_t ml = strlen(f->msg);
  while (ml && (f->msg[ml - 1] == '\n' || f->msg[ml - 1] == ' ')) f->msg[--ml] = 0;
}

void nm_xml_init(void) {
  /* libxml2 prints parse errors to stderr by default; we report them ourselves. */
  xmlSetGenericErrorFunc(NULL, nm__xml_quiet);
  xmlSetStructuredErrorFunc(NULL, nm__xml_quiet_structured);
}

/* A cheap scan before parsing: a DOCTYPE is how DTDs, external entities and entity
 * expansion get in, and natmesh documents never need one. */
static int nm__xml_has_dtd(const char *buf, size_t len) {
  static const char *needles[] = {"<!DOCTYPE", "<!ENTITY"};
  for (size_t n = 0; n < 2; n++) {
    size_t nl = strlen(needles[n]);
    for (size_t i = 0; i + nl <= len; i++)
      if (buf[i] == '<' && strncasecmp(buf + i, needles[n], nl) == 0) return 1;
  }
  return 0;
}

static int nm__xml_depth_ok(xmlNode *n, int depth) {
  if (depth > NM_XML_MAX_DEPTH) return 0;
  for (xmlNode *c = n->children; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE && !nm__xml_depth_ok(c, depth + 1)) return 0;
  return 1;
}

static int nm__xml_finish(xmlParserCtxt *ctxt, xmlDoc *doc, const nm__xml_first_error *first,
                          const char *what, xmlDoc **out, char *err, size_t errlen) {
  if (!doc && first->have) {
    snprintf(err, errlen, "%s:%d: %s", what, first->line, first->msg);
    return NM_EXML;
  }
  if (!doc) {
    const xmlError *e = xmlCtxtGetLastError(ctxt);
    if (e && e->message) {
      char msg[256];
      snprintf(msg, sizeof msg, "%s", e->message);
      size_t ml = strlen(msg);
      while (ml && (msg[ml - 1] == '\n' || msg[ml - 1] == ' ')) msg[--ml] = 0;
      snprintf(err, errlen, "%s:%d: %s", what, e->line, msg);
    } else {
      snprintf(err, errlen, "not well-formed XML");
    }
    return NM_EXML;
  }
  xmlNode *root = xmlDocGetRootElement(doc);
  if (doc->intSubset || doc->extSubset) {
    snprintf(err, errlen, "DTDs are not accepted");
    xmlFreeDoc(doc);
    return NM_EXML_HOSTILE;
  }
  if (!root) {
    snprintf(err, errlen, "empty document");
    xmlFreeDoc(doc);
    return NM_EXML;
  }
  if (!nm__xml_depth_ok(root, 1)) {
    snprintf(err, errlen, "nesting deeper than %d elements", NM_XML_MAX_DEPTH);
    xmlFreeDoc(doc);
    return NM_EXML_HOSTILE;
  }
  *out = doc;
  return 0;
}

/* XML_PARSE_NONET: never fetch anything. No XML_PARSE_NOENT (no entity substitution), no
 * XML_PARSE_DTDLOAD, no XML_PARSE_HUGE (keeps libxml2's own limits on). */
#define NM_XML_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOCDATA)

int nm_xml_parse(const char *buf, size_t len, xmlDoc **out, char *err, size_t errlen) {
  *out = NULL;
  nm_xml_init();
  if (len > NM_XML_MAX_BYTES) {
    snprintf(err, errlen, "document of %zu bytes exceeds the %d byte limit", len,
             NM_XML_MAX_BYTES);
    return NM_EXML_HOSTILE;
  }
  if (len == 0) {
    snprintf(err, errlen, "empty document");
    return NM_EXML;
  }
  if (nm__xml_has_dtd(buf, len)) {
    snprintf(err, errlen, "document declares a DOCTYPE or ENTITY; refused");
    return NM_EXML_HOSTILE;
  }
  xmlParserCtxt *ctxt = xmlNewParserCtxt();
  if (!ctxt) return -ENOMEM;
  nm__xml_first_error first = {0};
  xmlSetStructuredErrorFunc(&first, nm__xml_keep_first);
  xmlDoc *doc = xmlCtxtReadMemory(ctxt, buf, (int)len, "message.xml", NULL, NM_XML_OPTIONS);
  xmlSetStructuredErrorFunc(NULL, nm__xml_quiet_structured);
  int rc = nm__xml_finish(ctxt, doc, &first, "line", out, err, errlen);
  xmlFreeParserCtxt(ctxt);
  return rc;
}

int nm_xml_parse_file(const char *path, xmlDoc **out, char *err, size_t errlen) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    int e = errno;
    snprintf(err, errlen, "%s: %s", path, strerror(e));
    return -e;
  }
  char *buf = malloc(NM_XML_MAX_BYTES + 1);
  if (!buf) {
    fclose(f);
    return -ENOMEM;
  }
  size_t n = fread(buf, 1, NM_XML_MAX_BYTES + 1, f);
  fclose(f);
  int rc;
  if (n > NM_XML_MAX_BYTES) {
    snprintf(err, errlen, "%s: larger than %d bytes", path, NM_XML_MAX_BYTES);
    rc = NM_EXML_HOSTILE;
  } else {
    char inner[400];
    rc = nm_xml_parse(buf, n, out, inner, sizeof inner);
    /* inner reasons read "line:N: msg" or a plain sentence: prefix the file's name. */
    if (rc < 0) {
      if (strncmp(inner, "line:", 5) == 0)
        snprintf(err, errlen, "%s:%s", path, inner + 5);
      else
        snprintf(err, errlen, "%s: %s", path, inner);
    }
  }
  free(buf);
  return rc;
}

const char *nm_xml_attr(xmlNode *n, const char *name) {
  if (!n) return NULL;
  for (xmlAttr *a = n->properties; a; a = a->next) {
    if (a->name && strcmp((const char *)a->name, name) == 0) {
      if (a->children && a->children->type == XML_TEXT_NODE && a->children->content)
        return (const char *)a->children->content;
      return "";
    }
  }
  return NULL;
}

static int nm__parse_uint(const char *s, unsigned min, unsigned max, unsigned *out) {
  while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
  if (*s < '0' || *s > '9') return -EINVAL;
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r') end++;
  if (*end) return -EINVAL;
  if (errno == ERANGE || v < min || v > max) return -ERANGE;
  *out = (unsigned)v;
  return 0;
}

int nm_xml_attr_uint(xmlNode *n, const char *name, unsigned min, unsigned max, unsigned *out) {
  const char *v = nm_xml_attr(n, name);
  if (!v) return -ENOENT;
  return nm__parse_uint(v, min, max, out);
}

xmlNode *nm_xml_child(xmlNode *parent, const char *childname) {
  if (!parent) return NULL;
  for (xmlNode *c = parent->children; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, childname) == 0) return c;
  return NULL;
}

const char *nm_xml_child_text(xmlNode *parent, const char *childname) {
  xmlNode *c = nm_xml_child(parent, childname);
  if (!c) return NULL;
  if (c->children && c->children->type == XML_TEXT_NODE && c->children->content)
    return (const char *)c->children->content;
  return "";
}

int nm_xml_dump(xmlDoc *doc, char **out, size_t *outlen) {
  xmlChar *mem = NULL;
  int size = 0;
  xmlDocDumpMemoryEnc(doc, &mem, &size, "UTF-8");
  if (!mem) return -ENOMEM;
  char *copy = malloc((size_t)size + 1);
  if (!copy) {
    xmlFree(mem);
    return -ENOMEM;
  }
  memcpy(copy, mem, (size_t)size);
  copy[size] = 0;
  xmlFree(mem);
  *out = copy;
  *outlen = (size_t)size;
  return 0;
}
