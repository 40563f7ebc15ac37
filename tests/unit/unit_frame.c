/* nm_frame: the resumable frame reader and the header encoder. */
#include "nm_error.h"
#include "nm_frame.h"
#include "nmt.h"

#include <stdlib.h>

/* What the callback saw, frame by frame. */
typedef struct {
  int frames;
  uint8_t types[16];
  size_t lens[16];
  char payloads[16][64];
  int nul_terminated;
  int stop_after; /* ask the reader to stop after this many frames (0: never) */
} seen;

static int on_frame(void *arg, uint8_t type, const char *payload, size_t len) {
  seen *s = arg;
  if (s->frames < 16) {
    s->types[s->frames] = type;
    s->lens[s->frames] = len;
    snprintf(s->payloads[s->frames], sizeof s->payloads[0], "%.*s", (int)len, payload);
    if (payload[len] == 0) s->nul_terminated++;
  }
  s->frames++;
  return s->stop_after && s->frames >= s->stop_after ? 7 : 0;
}

/* Appends one frame to buf at *off. */
static void put_frame(char *buf, size_t *off, uint8_t type, const char *payload) {
  size_t len = strlen(payload);
  nm_frame_header_encode((uint8_t *)buf + *off, type, (uint32_t)len);
  memcpy(buf + *off + NM_FRAME_HEADER, payload, len);
  *off += NM_FRAME_HEADER + len;
}

/* Three frames, one of them empty, back to back. */
static size_t three_frames(char *buf) {
  size_t off = 0;
  put_frame(buf, &off, 0x01, "<hello id=\"x\"/>");
  put_frame(buf, &off, 0x08, "");
  put_frame(buf, &off, 0x21, "<chat>hi</chat>");
  return off;
}

/* Feeds len bytes in one call to a fresh reader with the untrusted limit, then closes it;
 * returns what the feed returned. */
static int feed_once(const void *data, size_t len, seen *s) {
  nm_frame_reader r;
  nm_frame_reader_init(&r, NM_FRAME_MAX_UNTRUSTED);
  int rc = nm_frame_reader_feed(&r, data, len, on_frame, s);
  nm_frame_reader_close(&r);
  return rc;
}

static void expect_three(const seen *s) {
  NMT_EQ_INT(s->frames, 3);
  NMT_EQ_INT(s->types[0], 0x01);
  NMT_EQ_STR(s->payloads[0], "<hello id=\"x\"/>");
  NMT_EQ_INT(s->types[1], 0x08);
  NMT_EQ_INT(s->lens[1], 0);
  NMT_EQ_INT(s->types[2], 0x21);
  NMT_EQ_STR(s->payloads[2], "<chat>hi</chat>");
  NMT_EQ_INT(s->nul_terminated, 3);
}

static void test_header_encode(void) {
  uint8_t h[NM_FRAME_HEADER];
  nm_frame_header_encode(h, 0x0C, 0x01020304);
  const uint8_t want[] = {'N', 'M', NM_PROTO_VERSION, 0x0C, 1, 2, 3, 4};
  NMT_CHECK(memcmp(h, want, sizeof want) == 0);
}

static void test_several_frames_in_one_buffer(void) {
  char buf[256];
  size_t n = three_frames(buf);
  seen s = {0};
  NMT_EQ_INT(feed_once(buf, n, &s), 0);
  expect_three(&s);
}

static void test_byte_by_byte(void) {
  char buf[256];
  size_t n = three_frames(buf);
  nm_frame_reader r;
  nm_frame_reader_init(&r, NM_FRAME_MAX_UNTRUSTED);
  seen s = {0};
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) rc = nm_frame_reader_feed(&r, buf + i, 1, on_frame, &s);
  NMT_EQ_INT(rc, 0);
  expect_three(&s);
  nm_frame_reader_close(&r);
}

/* Every way of cutting the stream in two gives the same frames. */
static void test_every_split_point(void) {
  char buf[256];
  size_t n = three_frames(buf);
  int bad = 0;
  for (size_t cut = 0; cut <= n; cut++) {
    nm_frame_reader r;
    nm_frame_reader_init(&r, NM_FRAME_MAX_UNTRUSTED);
    seen s = {0};
    int rc = nm_frame_reader_feed(&r, buf, cut, on_frame, &s);
    if (rc == 0) rc = nm_frame_reader_feed(&r, buf + cut, n - cut, on_frame, &s);
    if (rc != 0 || s.frames != 3 || strcmp(s.payloads[2], "<chat>hi</chat>") != 0) bad++;
    nm_frame_reader_close(&r);
  }
  NMT_EQ_INT(bad, 0);
}

static void test_zero_length_feed(void) {
  nm_frame_reader r;
  nm_frame_reader_init(&r, 16);
  seen s = {0};
  NMT_EQ_INT(nm_frame_reader_feed(&r, "", 0, on_frame, &s), 0);
  NMT_EQ_INT(s.frames, 0);
  nm_frame_reader_close(&r);
}

/* An oversized declared length is refused as soon as the header is complete: no payload
 * buffer exists afterwards (and a 4 GiB malloc would abort under ASan had it been tried). */
static void test_oversized_refused_before_allocation(void) {
  static const uint32_t lens[] = {NM_FRAME_MAX_UNTRUSTED + 1, NM_FRAME_MAX, 0xFFFFFFFFu};
  for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
    nm_frame_reader r;
    nm_frame_reader_init(&r, NM_FRAME_MAX_UNTRUSTED);
    uint8_t h[NM_FRAME_HEADER];
    nm_frame_header_encode(h, 0x01, lens[i]);
    seen s = {0};
    /* Seven bytes: not yet judged. */
    NMT_EQ_INT(nm_frame_reader_feed(&r, (char *)h, 7, on_frame, &s), 0);
    NMT_EQ_INT(nm_frame_reader_feed(&r, (char *)h + 7, 1, on_frame, &s), NM_EFRAME_TOO_BIG);
    NMT_CHECK(r.payload == NULL);
    NMT_EQ_INT(s.frames, 0);
    nm_frame_reader_close(&r);
  }
}

static void test_limit_is_inclusive_and_raisable(void) {
  nm_frame_reader r;
  nm_frame_reader_init(&r, 4);
  char buf[64];
  size_t off = 0;
  put_frame(buf, &off, 0x06, "1234");
  seen s = {0};
  NMT_EQ_INT(nm_frame_reader_feed(&r, buf, off, on_frame, &s), 0);
  NMT_EQ_INT(s.frames, 1);
  off = 0;
  put_frame(buf, &off, 0x06, "12345");
  NMT_EQ_INT(nm_frame_reader_feed(&r, buf, off, on_frame, &s), NM_EFRAME_TOO_BIG);
  nm_frame_reader_close(&r);

  /* Once the peer identified itself the owner raises the limit. */
  nm_frame_reader_init(&r, 4);
  nm_frame_reader_set_max(&r, 5);
  NMT_EQ_INT(nm_frame_reader_feed(&r, buf, off, on_frame, &s), 0);
  NMT_EQ_INT(s.frames, 2);
  NMT_EQ_STR(s.payloads[1], "12345");
  nm_frame_reader_close(&r);
}

static void test_bad_magic(void) {
  const char *bad[] = {"XM\x01\x01\0\0\0\0", "nm\x01\x01\0\0\0\0", "GET / HTTP/1.1\r\n"};
  for (size_t i = 0; i < 3; i++) {
    seen s = {0};
    NMT_EQ_INT(feed_once(bad[i], 8, &s), NM_EMSG);
    NMT_EQ_INT(s.frames, 0);
  }
}

static void test_bad_version(void) {
  const uint8_t versions[] = {0, 2, 0xFF};
  for (size_t i = 0; i < sizeof versions; i++) {
    uint8_t h[NM_FRAME_HEADER];
    nm_frame_header_encode(h, 0x01, 0);
    h[2] = versions[i];
    seen s = {0};
    NMT_EQ_INT(feed_once(h, sizeof h, &s), NM_EPROTO_VERSION);
    NMT_EQ_INT(s.frames, 0);
  }
}

/* A good frame followed by garbage: the good one is delivered, then the error. */
static void test_good_then_bad(void) {
  char buf[64];
  size_t off = 0;
  put_frame(buf, &off, 0x06, "ok");
  memcpy(buf + off, "BAD!BAD!", 8);
  off += 8;
  seen s = {0};
  NMT_EQ_INT(feed_once(buf, off, &s), NM_EMSG);
  NMT_EQ_INT(s.frames, 1);
}

/* The reader does not judge types: that is the session's job. */
static void test_unknown_type_is_delivered(void) {
  char buf[64];
  size_t off = 0;
  put_frame(buf, &off, 0x7F, "x");
  seen s = {0};
  NMT_EQ_INT(feed_once(buf, off, &s), 0);
  NMT_EQ_INT(s.frames, 1);
  NMT_EQ_INT(s.types[0], 0x7F);
}

static void test_callback_can_stop(void) {
  char buf[256];
  size_t n = three_frames(buf);
  seen s = {0};
  s.stop_after = 1;
  NMT_EQ_INT(feed_once(buf, n, &s), 7);
  NMT_EQ_INT(s.frames, 1);
}

/* A truncated frame stays buffered, is never delivered, and close frees it (LSan checks). */
static void test_truncated_frame(void) {
  char buf[64];
  size_t off = 0;
  put_frame(buf, &off, 0x01, "<hello/>");
  nm_frame_reader r;
  nm_frame_reader_init(&r, NM_FRAME_MAX_UNTRUSTED);
  seen s = {0};
  NMT_EQ_INT(nm_frame_reader_feed(&r, buf, off - 1, on_frame, &s), 0);
  NMT_EQ_INT(s.frames, 0);
  NMT_CHECK(r.payload != NULL);
  nm_frame_reader_close(&r);
  NMT_CHECK(r.payload == NULL);
  nm_frame_reader_close(&r); /* twice is harmless */
}

/* A large frame arriving in 64 KiB reads, as libuv delivers it. */
static void test_large_frame_in_chunks(void) {
  size_t len = 300 * 1000;
  char *buf = malloc(NM_FRAME_HEADER + len);
  nm_frame_header_encode((uint8_t *)buf, 0x04, (uint32_t)len);
  for (size_t i = 0; i < len; i++) buf[NM_FRAME_HEADER + i] = (char)('a' + i % 26);
  nm_frame_reader r;
  nm_frame_reader_init(&r, NM_FRAME_MAX);
  seen s = {0};
  int rc = 0;
  for (size_t off = 0; off < NM_FRAME_HEADER + len && rc == 0; off += 65536) {
    size_t n = NM_FRAME_HEADER + len - off;
    if (n > 65536) n = 65536;
    rc = nm_frame_reader_feed(&r, buf + off, n, on_frame, &s);
  }
  NMT_EQ_INT(rc, 0);
  NMT_EQ_INT(s.frames, 1);
  NMT_EQ_INT(s.lens[0], len);
  NMT_EQ_STR(s.payloads[0], "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk");
  nm_frame_reader_close(&r);
  free(buf);
}

int main(void) {
  NMT_RUN(test_header_encode);
  NMT_RUN(test_several_frames_in_one_buffer);
  NMT_RUN(test_byte_by_byte);
  NMT_RUN(test_every_split_point);
  NMT_RUN(test_zero_length_feed);
  NMT_RUN(test_oversized_refused_before_allocation);
  NMT_RUN(test_limit_is_inclusive_and_raisable);
  NMT_RUN(test_bad_magic);
  NMT_RUN(test_bad_version);
  NMT_RUN(test_good_then_bad);
  NMT_RUN(test_unknown_type_is_delivered);
  NMT_RUN(test_callback_can_stop);
  NMT_RUN(test_truncated_frame);
  NMT_RUN(test_large_frame_in_chunks);
  return nmt_done();
}
