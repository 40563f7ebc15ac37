/* The one place an accepted chat line fans out (lines.c): a received line is shown, passed
 * to relay duty and, in a bounded mesh, forwarded to our neighbours (but the one it came
 * from and its origin); our own line is sent to every peer we keep a connection to and
 * passed to relay duty. Only
 * chat.c calls it, once per line, after checking and de-duplicating. */
#ifndef SV_LINES_H
#define SV_LINES_H

#include <stddef.h>

typedef struct servant servant;

typedef struct {
  const char *origin;  /* the author's id */
  const char *name;    /* the name to show: the one the manager lists for origin */
  const char *text;
  const char *payload; /* the chat frame's payload, forwarded as it is */
  size_t len;
  const char *from;    /* the peer whose connection brought it, or NULL */
} sv_line;

/* A line from another servant, accepted for the first time. */
void sv_lines_received(servant *sv, const sv_line *l);
/* A line typed here. */
void sv_lines_published(servant *sv, const sv_line *l);

#endif
