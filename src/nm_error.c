#include "nm_error.h"

#include <string.h>
#include <uv.h>

const char *nm_strerror(int err) {
  switch (err) {
  case 0: return "success";
  case NM_EPROTO_VERSION: return "unsupported protocol version";
  case NM_EFRAME_TOO_BIG: return "frame larger than the maximum";
  case NM_EFRAME_TYPE: return "unknown frame type";
  case NM_EXML: return "malformed XML";
  case NM_EXML_HOSTILE: return "refused XML (DOCTYPE/ENTITY, too deep or too large)";
  case NM_EMSG: return "invalid message content";
  case NM_ECONFIG: return "configuration error";
  case NM_EBANNED: return "banned peer";
  case NM_EUNKNOWN_PEER: return "unknown servant";
  case NM_EQUEUE_FULL: return "write queue full";
  case NM_EKEY: return "unexpected or unusable key";
  case NM_ETLS: return "TLS failure";
  case NM_ESIG: return "signature does not verify";
  default: break;
  }
  if (err < 0 && err > -4096) return uv_strerror(err);
  return "unknown error";
}
