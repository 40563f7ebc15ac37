/* nm_xml: the one way natmesh reads XML from files and from the wire.
 *
 * Every document, whether a config file or a peer list from the network, goes through
 * nm_xml_parse(): network access, DTD loading and entity substitution are off, documents
 * with a DOCTYPE or ENTITY declaration are refused outright (that closes XXE and entity
 * expansion in one place), and size and nesting depth are capped. */
#ifndef NM_XML_H
#define NM_XML_H

#include <stddef.h>
#include <libxml/tree.h>

#define NM_XML_MAX_BYTES (1024 * 1024)
#define NM_XML_MAX_DEPTH 16

/* Sets libxml2 up for the calling thread (silences its stderr printing). Idempotent. */
void nm_xml_init(void);

/* Parses buf[0..len). On success *out owns the document (xmlFreeDoc it) and 0 is returned.
 * On failure returns a negative NM_E* code and writes a one-line reason (with line number
 * when libxml2 gives one) to err. */
int nm_xml_parse(const char *buf, size_t len, xmlDoc **out, char *err, size_t errlen);

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

#endif
