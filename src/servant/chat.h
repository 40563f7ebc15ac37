/* Chat lines (chat.c): the only place a line enters the servant. A line typed here is
 * numbered and built into a chat frame; a chat frame received from a peer or a relay is
 * checked (well-formed, from a listed and unbanned origin) and de-duplicated by (origin,
 * seq). Either way the accepted line goes on to the one fan-out (lines.h). */
#ifndef SV_CHAT_H
#define SV_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "nm_msg.h"
#include "nm_seen.h"

typedef struct servant servant;

typedef struct {
  uint64_t next_seq; /* the seq of the last line we published; counts up from 1 */
  nm_seen seen;      /* (origin, seq) already accepted, ours included */
} sv_chat;

void sv_chat_init(servant *sv);
/* Publishes one line typed here. */
void sv_chat_publish(servant *sv, const char *text);
/* A chat message (decoded, so well-formed) from a peer or a relay: accepted and fanned
 * out, or dropped with a log line (an unknown or banned origin) or silently (a duplicate,
 * our own line echoed back). */
void sv_chat_receive(servant *sv, const nm_msg_chat *c);

#endif
