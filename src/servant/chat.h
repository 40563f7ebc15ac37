/* Chat lines (chat.c): the only place a line enters the servant. A line typed here is
 * numbered in this run's epoch, signed with our key and built into a chat frame. A chat
 * frame received by any path (a peer, a relay, a relay's replay ring) is first verified
 * with its origin's key from the manager's list, then checked against bans (by the
 * verified origin's key, listed address and name), then judged by the origin's replay
 * window (nm_replay: shown once per (origin, epoch, seq)). Either way the accepted line goes
 * on to the one fan-out (lines.h). */
#ifndef SV_CHAT_H
#define SV_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "nm_log.h"
#include "nm_msg.h"
#include "nm_replay.h"

/* The largest chat frame a peer or a relay may send once identified: the text at its
 * limit, every byte escaped (&quot; is 6), and 1 KiB for the element and its attributes
 * (origin, name, epoch, seq, a 128-hex signature). A larger declared length closes the
 * connection before anything is allocated. */
#define SV_CHAT_FRAME_MAX (NM_CHAT_MAX * 6 + 1024)

typedef struct servant servant;

typedef struct {
  uint64_t epoch;          /* this run's (epoch.h): our lines carry it */
  uint64_t next_seq;       /* the seq of the last line we published; counts up from 1 */
  nm_replay_table replay;  /* per origin: which (epoch, seq) were already shown */
  uint64_t accepted, forged, unlisted, banned, replayed; /* lines, by verdict */
  /* What anyone who can reach us can make us log, at most a few lines a second each. */
  nm_log_rate forged_log, unlisted_log, banned_log, refused_log;
} sv_chat;

/* Returns 0 or -ENOMEM (the replay table). */
int sv_chat_init(servant *sv);
void sv_chat_close(servant *sv);
/* Publishes one line typed here. */
void sv_chat_publish(servant *sv, const char *text);
/* A chat message (decoded, so well-formed) handed over by via ("peer bob", "relay r1"):
 * accepted and fanned out, or dropped, with a rate-limited log line for a forged or
 * altered line, an unlisted or banned origin, and silently for a line already shown or our
 * own line echoed back. */
void sv_chat_receive(servant *sv, const nm_msg_chat *c, const char *via);
/* origin left the peer list: its replay window is kept while there is room (nm_replay). */
void sv_chat_forget(servant *sv, const char *origin);

#endif
