/* nm_sbuf: one frame built once and sent to many sessions, reference-counted.
 *
 * The manager sends the same bytes to every session (a delta, the shared pages of a peer
 * list): the XML is encoded once and the frame (header and payload) built once into an
 * nm_sbuf; nm_conn_send_shared() then queues it on each conn. A plaintext conn writes the
 * buffer itself and holds a reference until libuv is done with it; a TLS conn encrypts it
 * for its own session at once and holds nothing. The builder drops its own reference when
 * done; the last one frees it. One thread (the loop's): the count is a plain integer. */
#ifndef NM_SBUF_H
#define NM_SBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  unsigned refs;
  uint8_t type; /* the frame type */
  size_t len;   /* bytes in data: NM_FRAME_HEADER + the payload */
  char data[];  /* the whole frame */
} nm_sbuf;

/* A frame of type with payload[0..len), one reference held by the caller. NULL when out
 * of memory or len > NM_FRAME_MAX. */
nm_sbuf *nm_sbuf_frame(uint8_t type, const char *payload, size_t len);
nm_sbuf *nm_sbuf_ref(nm_sbuf *b);
/* Drops one reference; frees the buffer with the last. NULL is fine. */
void nm_sbuf_unref(nm_sbuf *b);
/* How many frames nm_sbuf_frame built since the process started (tests count encodes). */
uint64_t nm_sbuf_frames_built(void);

#endif
