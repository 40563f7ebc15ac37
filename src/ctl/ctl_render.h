/* ctl_render: the three ways natmesh-ctl shows a status: a table for people, the XML as
 * received for programs, and a Graphviz digraph for pictures.
 *
 * Everything printed that came from the wire is escaped for where it goes: control
 * characters never reach the terminal, and DOT strings are quoted so a name cannot end its
 * label and inject graph syntax. */
#ifndef NMCTL_RENDER_H
#define NMCTL_RENDER_H

#include <stdio.h>
#include <libxml/tree.h>

#include "nm_status.h"

/* manager is "HOST:PORT" as the user named it; it labels the manager's node and header. */
int nmctl_render_table(FILE *out, const nm_status *st, const char *manager);
int nmctl_render_xml(FILE *out, xmlDoc *doc);
int nmctl_render_dot(FILE *out, const nm_status *st, const char *manager);

/* src with everything but printable ASCII replaced by '?', into dst (truncated to fit). */
void nmctl_sanitize(char *dst, size_t dstlen, const char *src);

/* Writes s as the body of a DOT double-quoted string (without the quotes). */
void nmctl_dot_escape(FILE *out, const char *s);

/* "1.2s ago", "3m05s ago", "-" when unknown; into buf. */
const char *nmctl_format_age(char *buf, size_t buflen, int known, uint64_t ms);

/* "ip:port", or "[ip]:port" for IPv6, or "-" when ip is empty; into buf. */
const char *nmctl_format_addr(char *buf, size_t buflen, const char *ip, uint16_t port);

#endif
