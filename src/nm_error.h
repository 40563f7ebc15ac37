/* natmesh error codes: functions return 0 or a negative code. Codes above -4096 are
 * negated errno values (as libuv's are, so uv errors pass through unchanged); natmesh's
 * own codes live below that. */
#ifndef NM_ERROR_H
#define NM_ERROR_H

#include <errno.h>

enum {
  NM_EPROTO_VERSION = -5001, /* frame carries a protocol version we do not speak */
  NM_EFRAME_TOO_BIG = -5002, /* declared frame length exceeds the maximum */
  NM_EFRAME_TYPE    = -5003, /* unknown frame type */
  NM_EXML           = -5004, /* malformed XML */
  NM_EXML_HOSTILE   = -5005, /* DOCTYPE/ENTITY, too deep, or too large */
  NM_EMSG           = -5006, /* well-formed XML, wrong message content */
  NM_ECONFIG        = -5007, /* config file error */
  NM_EBANNED        = -5008, /* peer is on the ban list */
  NM_EUNKNOWN_PEER  = -5009, /* message from a servant the manager does not know */
  NM_EQUEUE_FULL    = -5010, /* write queue over its cap: peer too slow */
  NM_EKEY           = -5011, /* a key is not the one expected (or not a usable key) */
  NM_ETLS           = -5012, /* TLS handshake or record failure (not a key mismatch) */
  NM_ESIG           = -5013, /* a signature does not verify */
};

const char *nm_strerror(int err);

#endif
