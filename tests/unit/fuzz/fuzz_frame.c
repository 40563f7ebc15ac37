/* libFuzzer target: the frame reader. The input is cut into chunks whose sizes come from
 * the input itself, so resumption at every boundary is exercised; every payload delivered
 * must be exactly as long as declared and within the limit. */
#include "nm_frame.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int on_frame(void *arg, uint8_t type, const char *payload, size_t len) {
  size_t max = *(size_t *)arg;
  if (len > max || payload[len] != 0) abort();
  return type == 0xEE; /* a stop request now and then */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  size_t max = data[0] & 1 ? NM_FRAME_MAX_UNTRUSTED : 64;
  size_t chunk = (size_t)data[1] % 17 + 1;
  data += 2;
  size -= 2;
  nm_frame_reader r;
  nm_frame_reader_init(&r, max);
  for (size_t off = 0; off < size;) {
    size_t n = size - off < chunk ? size - off : chunk;
    if (nm_frame_reader_feed(&r, (const char *)data + off, n, on_frame, &max) != 0) break;
    off += n;
  }
  nm_frame_reader_close(&r);
  return 0;
}
