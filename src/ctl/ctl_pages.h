/* ctl_pages: a paged status put back together (docs/protocol.md, "The status").
 *
 * A manager with more servants than fit a page sends <status ... servants="TOTAL" page="K"
 * pages="P"> documents back to back; natmesh-ctl moves every page's <servant> elements into
 * the first page's document and drops page and pages, so what it renders (table, DOT, XML,
 * JSON) is one status exactly as an unpaged one reads. Each page is checked against the
 * first: the same version and page count, in order, at most NM_STATUS_SERVANTS_MAX servants
 * in all. A status without pages passes through untouched (its bytes as received). */
#ifndef NMCTL_PAGES_H
#define NMCTL_PAGES_H

#include <stddef.h>
#include <stdint.h>
#include <libxml/tree.h>

typedef struct {
  xmlDoc *doc; /* page 0's document, gathering the others' servants */
  uint64_t version;
  unsigned pages, next;
  size_t servants;
  size_t bytes; /* of the pages so far: at most NM_STATUS_DOC_MAX */
} nmctl_pages;

void nmctl_pages_init(nmctl_pages *p);
void nmctl_pages_close(nmctl_pages *p);
/* One status frame's payload. Returns 2 when it is no page (a whole status, or something
 * the status parser will refuse: use the payload as it is), 1 when the last page completed the status (nmctl_pages_take), 0 when
 * more pages are due, or NM_EMSG / NM_EXML / -ENOMEM with the reason in err. */
int nmctl_pages_add(nmctl_pages *p, const char *payload, size_t len, char *err, size_t errlen);
/* The assembled status as one document's text (malloc'ed, NUL-terminated). 0 or -ENOMEM. */
int nmctl_pages_take(nmctl_pages *p, char **out, size_t *outlen);

#endif
