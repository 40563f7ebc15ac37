/* nm_xml: the one way natmesh reads XML from files and from the wire.
 *
 * Every document, whether a config file or a peer list from the network, goes through
 * nm_xml_parse(): network access, DTD loading and entity substitution are off, documents
 * with a DOCTYPE or ENTITY declaration are refused outright (that closes XXE and entity
 * expansion in one place), and size and nesting depth are capped. */
#ifndef NM_XML_H
#define NM_XML_H

#include <stddef.h>
#include <stdint.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

#define NM_XML_MAX_BYTES (1024 * 1024)
#define NM_XML_MAX_DEPTH 16

/* Sets libxml2 up for the calling thread (silences its stderr printing). Idempotent. */
void nm_xml_init(void);

/* Parses buf[0..len). On success *out owns the document (xmlFreeDoc it) and 0 is returned.
 * On failure returns a negative NM_E* code and writes a one-line reason (with line number
 * when libxml2 gives one) to err. */
int nm_xml_parse(const char *buf, size_t len, xmlDoc **out, char *err, size_t errlen);
/* The same with another size cap (natmesh-ctl's status put together from pages). */
int nm_xml_parse_max(const char *buf, size_t len, size_t max, xmlDoc **out, char *err, size_t errlen);

/* Same for a file; the reason names the file and line. */
int nm_xml_parse_file(const char *path, xmlDoc **out, char *err, size_t errlen);

/* Attribute value or NULL; valid while the document lives. */
const char *nm_xml_attr(xmlNode *n, const char *name);

/* Attribute as an unsigned integer within [min, max]. Returns 0, -ENOENT when missing,
 * -EINVAL when not a number, -ERANGE when out of bounds. */
int nm_xml_attr_uint(xmlNode *n, const char *name, unsigned min, unsigned max, unsigned *out);

/* First child element called childname, or NULL. */
xmlNode *nm_xml_child(xmlNode *parent, const char *childname);

/* Text content of the first child element called childname (trimmed of surrounding white
 * space is NOT done: the caller decides), or NULL when absent. Valid while the doc lives. */
const char *nm_xml_child_text(xmlNode *parent, const char *childname);

/* Serializes doc into a malloc'ed buffer (caller frees). Returns 0 or a negative code. */
int nm_xml_dump(xmlDoc *doc, char **out, size_t *outlen);

/* s[0..len) is UTF-8 made only of characters XML 1.0 allows (no NUL, no C0 control but
 * tab, newline and carriage return, no surrogates, no U+FFFE/U+FFFF): text that an escaping
 * writer can carry and a parser gives back unchanged. 1 when valid. */
int nm_xml_text_valid(const char *s, size_t len);

/* An escaping writer into memory (libxml2's xmlTextWriter), for building messages: values
 * are escaped for where they go ('"', '<', '&', ']]>', newlines in attributes), so no value
 * can break out of its attribute or element. The first failure sticks; nm_xml_writer_finish
 * reports it. No XML declaration is written (the frame says what the payload is). */
typedef struct {
  xmlBufferPtr buf;
  xmlTextWriterPtr w;
  int rc; /* 0, or the first error */
} nm_xml_writer;

int nm_xml_writer_init(nm_xml_writer *w);
void nm_xml_writer_start(nm_xml_writer *w, const char *element);
void nm_xml_writer_attr(nm_xml_writer *w, const char *name, const char *value);
void nm_xml_writer_attr_u64(nm_xml_writer *w, const char *name, uint64_t value);
void nm_xml_writer_text(nm_xml_writer *w, const char *text);
void nm_xml_writer_end(nm_xml_writer *w);
/* Writes xml[0..len) as it is: only for a fragment libxml2 itself serialized earlier (the
 * manager's cached list pages), never for text from anywhere else. */
void nm_xml_writer_raw(nm_xml_writer *w, const char *xml, size_t len);
/* Closes open elements and hands over the document (malloc'ed, NUL-terminated; caller
 * frees), or returns the first error. Frees the writer either way. */
int nm_xml_writer_finish(nm_xml_writer *w, char **out, size_t *outlen);
/* Frees the writer without output (after a validation failure). */
void nm_xml_writer_discard(nm_xml_writer *w);

#endif
