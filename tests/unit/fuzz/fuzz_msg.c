/* libFuzzer target: one protocol message, from the network, through nm_msg_decode.
 *
 * Compiled once per message type, with -DNM_FUZZ_MSG_TYPE=NM_MSG_HELLO (msg.cmake). What
 * decodes must also encode (a decoder that accepts what no sender may send is a bug of one
 * of the two), and the round trip must be stable: decode(encode(m)) encodes to the same
 * bytes as m. */
#include "nm_msg.h"
#include "nm_status.h"
#include "nm_xml.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef NM_FUZZ_MSG_TYPE
#error "compile with -DNM_FUZZ_MSG_TYPE=NM_MSG_<TYPE>"
#endif

static void nm__fuzz_fail(const char *what, const char *err, const nm_msgbuf *a,
                          const nm_msgbuf *b) {
  fprintf(stderr, "fuzz_msg(%s): %s%s%s\n", nm_msg_name(NM_FUZZ_MSG_TYPE), what,
          err ? ": " : "", err ? err : "");
  if (a && a->data) fprintf(stderr, "first encoding:  %.*s\n", (int)a->len, a->data);
  if (b && b->data) fprintf(stderr, "second encoding: %.*s\n", (int)b->len, b->data);
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int inited;
  if (!inited) {
    nm_xml_init();
    inited = 1;
  }
  /* Messages are large (up to ~14 KB, relay-serve's clients): on the heap, so a fuzzer's
   * smaller stack is no concern. */
  nm_msg *m = malloc(sizeof *m), *again = malloc(sizeof *again);
  if (!m || !again) abort();
  char err[400], slow_err[400];
  /* The same bytes through libxml2 alone (nm_msg_fast_paths): the heartbeats' short cut
   * must accept exactly what it accepts, with the same values, and refuse the same way. */
  nm_msg_fast_paths(0);
  int slow_rc = nm_msg_decode(NM_FUZZ_MSG_TYPE, (const char *)data, size, again, slow_err, sizeof slow_err);
  nm_msg_fast_paths(1);
  int fast_rc = nm_msg_decode(NM_FUZZ_MSG_TYPE, (const char *)data, size, m, err, sizeof err);
  if (fast_rc != slow_rc) nm__fuzz_fail("the short cut and libxml2 disagree", fast_rc ? err : slow_err, NULL, NULL);
  if (fast_rc != 0 && strcmp(err, slow_err) != 0)
    nm__fuzz_fail("the short cut refuses differently", err, NULL, NULL);
  if (fast_rc == 0) {
    nm_msgbuf fast_enc = {0}, slow_enc = {0};
    nm_msg_fast_paths(0); /* both written by libxml2: equal bytes, equal values */
    int ef = nm_msg_encode(m, &fast_enc), es = nm_msg_encode(again, &slow_enc);
    nm_msg_fast_paths(1);
    if (ef != es || fast_enc.len != slow_enc.len ||
        (fast_enc.len && memcmp(fast_enc.data, slow_enc.data, fast_enc.len) != 0))
      nm__fuzz_fail("the short cut decodes other values", NULL, &fast_enc, &slow_enc);
    nm_msgbuf_free(&fast_enc);
    nm_msgbuf_free(&slow_enc);
    nm_msg_clear(again);
  }
  if (fast_rc != 0) {
    /* Refused: the reason goes into a log line and an error frame, so it must be there and
     * be one line of printable ASCII. */
    if (!err[0]) nm__fuzz_fail("refusal without a reason", err, NULL, NULL);
    for (const char *p = err; *p; p++)
      if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
        nm__fuzz_fail("reason is not one line of printable text", err, NULL, NULL);
    nm_msg_clear(m);
    free(m);
    free(again);
    return 0;
  }
  nm_msgbuf first, second;
  int rc = nm_msg_encode(m, &first);
  if (rc != 0) nm__fuzz_fail("decoded, but the encoder refuses it", NULL, NULL, NULL);
  if (nm_msg_decode(NM_FUZZ_MSG_TYPE, first.data, first.len, again, err, sizeof err) != 0)
    nm__fuzz_fail("its own encoding does not decode", err, &first, NULL);
  if (nm_msg_encode(again, &second) != 0)
    nm__fuzz_fail("the second decode does not encode", NULL, &first, NULL);
  if (first.len != second.len || (first.len && memcmp(first.data, second.data, first.len) != 0))
    nm__fuzz_fail("round trip not stable", NULL, &first, &second);
  nm_msgbuf_free(&first);
  nm_msgbuf_free(&second);
  nm_msg_clear(again);
  nm_msg_clear(m);
  free(again);
  free(m);
  return 0;
}
