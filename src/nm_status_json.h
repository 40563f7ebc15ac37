/* nm_status_json: the manager's status (nm_status) as JSON, for scripts (natmesh-ctl status
 * --format json) and for the status page (/status.json). docs/status-json.md is the schema.
 *
 * One object per status; each <servant> attribute of the XML document becomes a member of
 * the same name with '-' written '_' (dial-ip: dial_ip), numbers as JSON numbers, the name
 * lists (unreached-by, unserved) as arrays of strings, absent values as null. jansson
 * (Debian's libjansson) builds and escapes it: a well-kept library rather than a writer of
 * our own, and the same one the tests parse it with on the Python side. */
#ifndef NM_STATUS_JSON_H
#define NM_STATUS_JSON_H

#include <stddef.h>

#include "nm_status.h"

#define NM_STATUS_JSON_SCHEMA 1 /* "schema" member: bumped when a member changes meaning */

/* The JSON text of st (compact unless pretty), malloc'ed, NUL-terminated; *outlen (when not
 * NULL) its length. Returns 0 or -ENOMEM. */
int nm_status_to_json(const nm_status *st, int pretty, char **out, size_t *outlen);

#endif
