#include "nm_sbuf.h"
#include "nm_frame.h"

#include <stdlib.h>
#include <string.h>

static uint64_t nm__sbuf_built;

nm_sbuf *nm_sbuf_frame(uint8_t type, const char *payload, size_t len) {
  if (len > NM_FRAME_MAX) return NULL;
  nm_sbuf *b = malloc(sizeof *b + NM_FRAME_HEADER + len);
  if (!b) return NULL;
  b->refs = 1;
  b->type = type;
  b->len = NM_FRAME_HEADER + len;
  nm_frame_header_encode((uint8_t *)b->data, type, (uint32_t)len);
  if (len) memcpy(b->data + NM_FRAME_HEADER, payload, len);
  nm__sbuf_built++;
  return b;
}

nm_sbuf *nm_sbuf_ref(nm_sbuf *b) {
  if (b) b->refs++;
  return b;
}

void nm_sbuf_unref(nm_sbuf *b) {
  if (b && --b->refs == 0) free(b);
}

uint64_t nm_sbuf_frames_built(void) { return nm__sbuf_built; }
