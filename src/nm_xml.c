#include "nm_xml.h"
#include "nm_error.h"
#include "nm_util.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>
#include <libxml/xmlerror.h>

static void nm__xml_quiet(void *ctx, const char *msg, ...) { (void)ctx; (void)msg; }
static void nm__xml_quiet_structured(void *ctx, xmlErrorPtr e) { (void)ctx; (void)e; }

/* libxml2's messages may span lines ("Input is not proper UTF-8, indicate encoding !\nBytes:
 * 0x9D ...") and quote bytes of the document: the reason goes into one log line and back to
 * the peer, so line breaks become spaces, other bytes that are not printable ASCII '?', and
 * the end is trimmed. */
static void nm__xml_clean_message(char *dst, size_t dstlen, const char *src) {
  size_t n = 0;
  for (; *src && n + 1 < dstlen; src++) {
    unsigned char ch = (unsigned char)*src;
    if (ch == '\n' || ch == '\r' || ch == '\t') {
      if (n && dst[n - 1] != ' ') dst[n++] = ' ';
    } else {
      dst[n++] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
    }
  }
  while (n && dst[n - 1] == ' ') n--;
  dst[n] = 0;
}

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
  nm__xml_clean_message(f->msg, sizeof f->msg, e->message ? e->message : "not well-formed XML");
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
      nm__xml_clean_message(msg, sizeof msg, e->message);
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
  return nm_xml_parse_max(buf, len, NM_XML_MAX_BYTES, out, err, errlen);
}

int nm_xml_parse_max(const char *buf, size_t len, size_t max, xmlDoc **out, char *err, size_t errlen) {
  *out = NULL;
  nm_xml_init();
  if (len > max || len > INT_MAX) {
    snprintf(err, errlen, "document of %zu bytes exceeds the %zu byte limit", len, max);
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

/* Config files may pad numbers with blanks (<port> 85 </port>); the digits themselves go
 * through the one parser, nm_parse_u64. */
static int nm__parse_uint(const char *s, unsigned min, unsigned max, unsigned *out) {
  while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
  size_t len = strlen(s);
  while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' || s[len - 1] == '\r'))
    len--;
  uint64_t v;
  int rc = nm_parse_u64(s, len, &v);
  if (rc < 0) return rc;
  if (v < min || v > max) return -ERANGE;
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

int nm_xml_text_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < len) {
    unsigned c = p[i];
    uint32_t cp;
    size_t n;
    if (c < 0x80) {
      cp = c;
      n = 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
      cp = c & 0x1f;
      n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      cp = c & 0x0f;
      n = 3;
    } else if (c >= 0xf0 && c <= 0xf4) {
      cp = c & 0x07;
      n = 4;
    } else {
      return 0; /* a continuation byte where a character should start, or 0xf5..0xff */
    }
    if (i + n > len) return 0;
    for (size_t k = 1; k < n; k++) {
      if ((p[i + k] & 0xc0) != 0x80) return 0;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    /* Overlong forms, surrogates and the range XML 1.0's Char production leaves out. */
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
    if (cp < 0x20 && cp != 0x9 && cp != 0xa && cp != 0xd) return 0;
    if ((cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff) return 0;
    i += n;
  }
  return 1;
}

int nm_xml_writer_init(nm_xml_writer *w) {
  memset(w, 0, sizeof *w);
  w->buf = xmlBufferCreate();
  if (!w->buf) return -ENOMEM;
  w->w = xmlNewTextWriterMemory(w->buf, 0);
  if (!w->w) {
    xmlBufferFree(w->buf);
    w->buf = NULL;
    return -ENOMEM;
  }
  return 0;
}

/* libxml2's writer returns the bytes written or -1; -1 here means out of memory or a
 * value it could not encode, both of which the callers treat as "cannot build this". */
static void nm__writer_check(nm_xml_writer *w, int n) {
  if (n < 0 && w->rc == 0) w->rc = -ENOMEM;
}

void nm_xml_writer_start(nm_xml_writer *w, const char *element) {
  if (w->rc == 0) nm__writer_check(w, xmlTextWriterStartElement(w->w, BAD_CAST element));
}

void nm_xml_writer_attr(nm_xml_writer *w, const char *name, const char *value) {
  if (w->rc) return;
  /* The writer escapes markup but passes bytes through: refuse what XML cannot carry. */
  if (!value || !nm_xml_text_valid(value, strlen(value))) {
    w->rc = -EINVAL;
    return;
  }
  nm__writer_check(w, xmlTextWriterWriteAttribute(w->w, BAD_CAST name, BAD_CAST value));
}

void nm_xml_writer_attr_u64(nm_xml_writer *w, const char *name, uint64_t value) {
  char buf[24];
  snprintf(buf, sizeof buf, "%" PRIu64, value);
  nm_xml_writer_attr(w, name, buf);
}

void nm_xml_writer_text(nm_xml_writer *w, const char *text) {
  if (w->rc) return;
  if (!text || !nm_xml_text_valid(text, strlen(text))) {
    w->rc = -EINVAL;
    return;
  }
  if (*text) nm__writer_check(w, xmlTextWriterWriteString(w->w, BAD_CAST text));
}

void nm_xml_writer_raw(nm_xml_writer *w, const char *xml, size_t len) {
  if (w->rc || len == 0) return;
  if (len > INT_MAX) {
    w->rc = -EINVAL;
    return;
  }
  nm__writer_check(w, xmlTextWriterWriteRawLen(w->w, BAD_CAST xml, (int)len));
}

void nm_xml_writer_end(nm_xml_writer *w) {
  /* Full end tags (<chat ...></chat>) only where there is content; empty elements close
   * as <x/>, which is what the hand-written frames used to send. */
  if (w->rc == 0) nm__writer_check(w, xmlTextWriterEndElement(w->w));
}

void nm_xml_writer_discard(nm_xml_writer *w) {
  if (w->w) xmlFreeTextWriter(w->w);
  if (w->buf) xmlBufferFree(w->buf);
  memset(w, 0, sizeof *w);
}

int nm_xml_writer_finish(nm_xml_writer *w, char **out, size_t *outlen) {
  *out = NULL;
  *outlen = 0;
  if (w->rc == 0) nm__writer_check(w, xmlTextWriterEndDocument(w->w));
  /* Freeing the writer flushes it into the buffer. */
  xmlFreeTextWriter(w->w);
  w->w = NULL;
  int rc = w->rc;
  if (rc == 0) {
    size_t len = (size_t)xmlBufferLength(w->buf);
    char *copy = malloc(len + 1);
    if (!copy) {
      rc = -ENOMEM;
    } else {
      memcpy(copy, xmlBufferContent(w->buf), len);
      copy[len] = 0;
      *out = copy;
      *outlen = len;
    }
  }
  nm_xml_writer_discard(w);
  return rc;
}
