#include "nm_frame.h"
#include "nm_error.h"

#include <stdlib.h>
#include <string.h>

void nm_frame_reader_init(nm_frame_reader *r, size_t max_payload) {
  memset(r, 0, sizeof *r);
  r->max_payload = max_payload;
}

void nm_frame_reader_set_max(nm_frame_reader *r, size_t max_payload) {
  r->max_payload = max_payload;
}

void nm_frame_reader_close(nm_frame_reader *r) {
  free(r->payload);
  r->payload = NULL;
}

void nm_frame_header_encode(uint8_t out[NM_FRAME_HEADER], uint8_t type, uint32_t len) {
  out[0] = 'N';
  out[1] = 'M';
  out[2] = NM_PROTO_VERSION;
  out[3] = type;
  out[4] = (uint8_t)(len >> 24);
  out[5] = (uint8_t)(len >> 16);
  out[6] = (uint8_t)(len >> 8);
  out[7] = (uint8_t)len;
}

/* Validates a complete header and prepares the payload buffer. */
static int nm__frame_begin_payload(nm_frame_reader *r) {
  const uint8_t *h = r->header;
  if (h[0] != 'N' || h[1] != 'M') return NM_EMSG;
  if (h[2] != NM_PROTO_VERSION) return NM_EPROTO_VERSION;
  uint32_t len = ((uint32_t)h[4] << 24) | ((uint32_t)h[5] << 16) | ((uint32_t)h[6] << 8) | h[7];
  if (len > r->max_payload) return NM_EFRAME_TOO_BIG;
  r->payload_len = len;
  r->payload_have = 0;
  /* +1 so payloads can be NUL-terminated for the text parsers. */
  r->payload = malloc((size_t)len + 1);
  if (!r->payload) return -ENOMEM;
  return 0;
}

int nm_frame_reader_feed(nm_frame_reader *r, const char *buf, size_t len, nm_frame_cb cb,
                         void *arg) {
  size_t off = 0;
  while (off < len) {
    if (r->header_have < NM_FRAME_HEADER) {
      size_t take = NM_FRAME_HEADER - r->header_have;
      if (take > len - off) take = len - off;
      memcpy(r->header + r->header_have, buf + off, take);
      r->header_have += take;
      off += take;
      if (r->header_have < NM_FRAME_HEADER) break;
      int rc = nm__frame_begin_payload(r);
      if (rc < 0) return rc;
    }
    size_t take = r->payload_len - r->payload_have;
    if (take > len - off) take = len - off;
    memcpy(r->payload + r->payload_have, buf + off, take);
    r->payload_have += take;
    off += take;
    if (r->payload_have == r->payload_len) {
      char *payload = r->payload;
      size_t plen = r->payload_len;
      payload[plen] = 0;
      r->payload = NULL;
      r->header_have = 0;
      int stop = cb(arg, r->header[3], payload, plen);
      free(payload);
      if (stop) return stop;
    }
  }
  return 0;
}
