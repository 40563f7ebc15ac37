/* nm_frame: natmesh's wire framing.
 *
 *   0      2         3       4              8
 *   +------+---------+-------+--------------+---------------------+
 *   | "NM" | version | type  | length (BE)  | payload (length B)  |
 *   +------+---------+-------+--------------+---------------------+
 *
 * The reader is resumable: feed it whatever bytes arrived, it calls back once per complete
 * frame. It checks magic, version and the declared length against the current maximum
 * before it allocates anything, so a peer cannot make us buffer more than the limit. */
#ifndef NM_FRAME_H
#define NM_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define NM_FRAME_HEADER 8
#define NM_PROTO_VERSION 1
/* Largest payload a trusted session may send (a peer list of thousands of servants). */
#define NM_FRAME_MAX (1024 * 1024)
/* Largest payload before a session has identified itself: hello frames are tiny. */
#define NM_FRAME_MAX_UNTRUSTED 4096

typedef struct nm_frame_reader nm_frame_reader;
/* Return 0 to go on, non-zero to stop feeding (the session is being closed). */
typedef int (*nm_frame_cb)(void *arg, uint8_t type, const char *payload, size_t len);

struct nm_frame_reader {
  uint8_t header[NM_FRAME_HEADER];
  size_t header_have;
  char *payload; /* allocated once the header is validated */
  size_t payload_len;
  size_t payload_have;
  size_t max_payload;
};

void nm_frame_reader_init(nm_frame_reader *r, size_t max_payload);
void nm_frame_reader_set_max(nm_frame_reader *r, size_t max_payload);
void nm_frame_reader_close(nm_frame_reader *r);

/* Consumes buf[0..len). Returns 0 when all bytes were consumed (a partial frame may be
 * buffered), the callback's non-zero value when it asked to stop, or a negative NM_E*
 * code for bad framing; on error the reader must not be fed again. */
int nm_frame_reader_feed(nm_frame_reader *r, const char *buf, size_t len, nm_frame_cb cb,
                         void *arg);

/* Writes the 8-byte header for a payload of len bytes into out. */
void nm_frame_header_encode(uint8_t out[NM_FRAME_HEADER], uint8_t type, uint32_t len);

#endif
