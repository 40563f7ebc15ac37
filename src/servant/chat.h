/* Chat lines (chat.c): the only place a line enters the servant. A line typed here is
 * numbered in this run's epoch, signed with our key and built into a chat frame. A chat
 * frame received by any path (a peer, a relay, a relay's replay ring) is first verified
 * with its origin's key from the manager's list (an origin outside our view in a bounded
 * mesh: with the key it carries, once its membership certificate verifies with the
 * manager's pinned key, nm_member), then checked against bans (by the
 * verified origin's key, listed address and name), then judged by the origin's replay
 * window (nm_replay: shown once per (origin, epoch, seq)). Either way the accepted line goes
 * on to the one fan-out (lines.h).
 *
 * A line whose origin is not in our list yet is not dropped at once: a servant that has
 * just joined hears from peers that learnt of it (and from their relays) before its own
 * full list arrives. It waits in a small pending queue, bounded in lines, bytes, age and
 * lines per origin, and goes through the whole check above when the origin gets listed
 * (sv_chat_listed); lines still unlisted after SV_PENDING_TTL_MS are dropped as before. */
#ifndef SV_CHAT_H
#define SV_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "nm_lineq.h"
#include "nm_log.h"
#include "nm_msg.h"
#include "nm_replay.h"

/* The largest chat frame a peer or a relay may send once identified: the text at its
 * limit, every byte escaped (&quot; is 6), and 1 KiB for the element and its attributes
 * (origin, name, epoch, seq, a 128-hex signature; in a bounded mesh a 64-hex key and a
 * 128-hex certificate too: well under 1 KiB). A larger declared length closes the
 * connection before anything is allocated. */
#define SV_CHAT_FRAME_MAX (NM_CHAT_MAX * 6 + 1024)

/* Lines of origins not listed yet: how many, how many bytes, how long, and how many per
 * origin (so one stranger's key cannot fill the queue alone). */
#define SV_PENDING_MAX 256
#define SV_PENDING_BYTES_MAX (1u << 20)
#define SV_PENDING_TTL_MS 5000
#define SV_PENDING_PER_ORIGIN 64

typedef struct servant servant;

typedef struct {
  uint64_t epoch;          /* this run's (epoch.h): our lines carry it */
  uint64_t next_seq;       /* the seq of the last line we published; counts up from 1 */
  nm_replay_table replay;  /* per origin: which (epoch, seq) were already shown */
  nm_lineq pending;        /* lines of origins not listed yet: "via\0payload" each */
  uint64_t accepted, forged, unlisted, banned, replayed; /* lines, by verdict */
  /* Membership (nm_member): our certificate from the welcome (attached to our lines in a
   * bounded mesh) and the manager's key it pinned, which verifies the certificates of
   * origins outside our view; the origins verified that way, cached. */
  int has_cert, has_manager_key;
  uint8_t cert[NM_MEMBER_CERT_LEN];
  char cert_name[NM_NAME_MAX + 1];
  uint8_t manager_key[NM_PUBKEY_LEN];
  nm_member_cache members;
  uint64_t certified; /* lines accepted from origins outside the view, by certificate */
  /* What anyone who can reach us can make us log, at most a few lines a second each. */
  nm_log_rate forged_log, unlisted_log, banned_log, refused_log;
} sv_chat;

/* The welcome's membership certificate: kept when the manager key it names is the one we
 * pinned, it covers our own id and key, and it verifies. Returns 0 or -EBADMSG (ignored:
 * logged, and we are heard only where we are listed). */
int sv_chat_set_member(servant *sv, const nm_msg_welcome *w);
/* Returns 0 or -ENOMEM (the replay table). */
int sv_chat_init(servant *sv);
void sv_chat_close(servant *sv);
/* Publishes one line typed here. */
void sv_chat_publish(servant *sv, const char *text);
/* A chat message (decoded, so well-formed) handed over by via ("peer bob", "relay r1"):
 * accepted and fanned out, or dropped, with a rate-limited log line for a forged or
 * altered line, a banned origin, and silently for a line already shown or our own line
 * echoed back; a line from an origin not listed yet is kept pending. Returns 0, or -EMLINK
 * when that origin already has SV_PENDING_PER_ORIGIN lines pending (this one is dropped,
 * logged): a held connection is closed for it. */
int sv_chat_receive(servant *sv, const nm_msg_chat *c, const char *via);
/* The same, knowing which peer's connection it came on (from: its id): in a bounded mesh
 * the line is forwarded to every neighbour but that one. */
int sv_chat_receive_from(servant *sv, const nm_msg_chat *c, const char *via, const char *from);
/* origin is now in the peer list: its pending lines are checked (signature, bans, replay
 * window) in the order they came. */
void sv_chat_listed(servant *sv, const char *origin);
/* Drops pending lines older than SV_PENDING_TTL_MS (their origin never got listed). */
void sv_chat_tick(servant *sv);
/* origin left the peer list: its replay window is kept while there is room (nm_replay). */
void sv_chat_forget(servant *sv, const char *origin);

#endif
