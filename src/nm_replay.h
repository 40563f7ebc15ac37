/* nm_replay: per-origin replay protection for chat lines, a sliding window in the manner of
 * WireGuard's and RFC 6479's anti-replay windows.
 *
 * It replaces the servant's global FIFO of (origin, seq) hashes (the removed nm_seen), which
 * forgot a line once 16,384 others had pushed it out, so the line could be shown again. Here
 * each origin has its own window: the highest sequence number accepted and a bitmap of the
 * NM_REPLAY_WINDOW numbers below it. A number above the highest is new; one inside the window
 * is new unless its bit is set; one below the window is refused as too old, because the
 * window can no longer tell, and refusing is the side that never shows a line twice. The
 * cost per origin is fixed (a 280-byte window, 368 bytes with the table's entry), whatever
 * the rate of lines.
 *
 * Epochs: a servant that restarts with the same key either continues its sequence (it
 * persisted it) or starts a new epoch at seq 1. A receiver accepts a higher epoch and
 * starts that origin's window afresh; it refuses a lower one.
 *
 * The verdict is only as good as its input: call *_check_and_set only for a line whose
 * signature verified (nm_linesig), or anyone could move an origin's window forward and make
 * its real lines "too old". *_check, which changes nothing, may run before the signature
 * check to skip verifying a line that would be refused anyway.
 *
 * Pure: no clock, no I/O; the caller owns the memory. */
#ifndef NM_REPLAY_H
#define NM_REPLAY_H

#include <stddef.h>
#include <stdint.h>

/* Sequence numbers behind the highest one that are still judged one by one. A line delayed
 * by more than this many later lines of the same origin is refused as too old: 2,048 is
 * twice the relay's replay ring (1,000 lines), so a line replayed by a relay while the same
 * lines arrive directly is still judged exactly. A multiple of 64. */
#define NM_REPLAY_WINDOW 2048
/* The window's bitmap has one 64-bit block more than the window, so that advancing into a
 * new block never clears numbers that are still inside the window (RFC 6479, section 2). */
#define NM_REPLAY_BLOCKS (NM_REPLAY_WINDOW / 64 + 1)

/* Longest origin id the table keeps: a node id today, a full 64-hex fingerprint at most. */
#define NM_REPLAY_ORIGIN_MAX 64

typedef enum {
  NM_REPLAY_ACCEPT = 0,      /* new: show it (and *_check_and_set recorded it) */
  NM_REPLAY_DUPLICATE,       /* inside the window and already seen */
  NM_REPLAY_TOO_OLD,         /* below the window, or seq 0 (sequences start at 1) */
  NM_REPLAY_STALE_EPOCH,     /* from an epoch older than the origin's current one */
} nm_replay_verdict;

/* "accept", "duplicate", "too-old", "stale-epoch"; "?" when out of range. */
const char *nm_replay_verdict_name(nm_replay_verdict v);

/* ---- one origin's window ------------------------------------------------------------- */

typedef struct {
  uint64_t epoch; /* the origin's current epoch */
  uint64_t top;   /* highest seq accepted in this epoch; 0 before the first */
  uint64_t bits[NM_REPLAY_BLOCKS]; /* bit (seq % 64) of block (seq / 64) % NM_REPLAY_BLOCKS */
} nm_replay_window;

/* An empty window at epoch 0: the first line of any epoch is accepted. */
void nm_replay_window_init(nm_replay_window *w);

/* What *_check_and_set would answer, changing nothing. */
nm_replay_verdict nm_replay_check(const nm_replay_window *w, uint64_t epoch, uint64_t seq);

/* Judges (epoch, seq) and, when the verdict is NM_REPLAY_ACCEPT, records it: a higher epoch
 * first empties the window, a higher seq slides it. Other verdicts change nothing. */
nm_replay_verdict nm_replay_check_and_set(nm_replay_window *w, uint64_t epoch, uint64_t seq);

/* ---- a table of origins --------------------------------------------------------------- */

/* One origin's entry; the table's, not the caller's. */
typedef struct {
  char origin[NM_REPLAY_ORIGIN_MAX + 1];
  uint64_t hash;
  uint64_t departed; /* 0 while in the peer list; else when it left (1, 2, ... in order) */
  nm_replay_window w;
} nm_replay_entry;

typedef struct {
  nm_replay_entry *entries; /* a pool of max entries; [0, used) hold origins */
  uint32_t *index;          /* open addressing by hash: entry number + 1, 0 when empty */
  size_t max, used, live;   /* live: entries not departed */
  size_t index_mask;        /* index has index_mask + 1 slots, a power of two >= 2 * max */
  uint64_t departures;      /* counts removals, to reclaim the longest-gone origin first */
} nm_replay_table;

/* A table for at most max origins (1 .. 1,048,576; the servant uses its peer-list maximum,
 * NM_PEERS_MAX). Returns 0, -EINVAL or -ENOMEM. */
int nm_replay_table_init(nm_replay_table *t, size_t max);
void nm_replay_table_close(nm_replay_table *t);

/* Judges a line of origin (a non-empty string of at most NM_REPLAY_ORIGIN_MAX bytes) with
 * that origin's window, creating it on the origin's first accepted line. Returns an
 * nm_replay_verdict (>= 0), -EINVAL for a bad origin, or -ENOSPC when the origin is new and
 * all max entries belong to origins still in the list: a line is then refused, never judged
 * with a window that was taken from another origin. */
int nm_replay_table_check_and_set(nm_replay_table *t, const char *origin, uint64_t epoch,
                                  uint64_t seq);

/* What *_check_and_set would answer (an unknown origin: as a fresh window would), changing
 * nothing; never -ENOSPC. */
int nm_replay_table_check(const nm_replay_table *t, const char *origin, uint64_t epoch,
                          uint64_t seq);

/* The origin left the peer list. Its window is kept while there is room, so a servant that
 * drops out and comes back (whose old lines a relay may still replay) is judged by the same
 * window; when a new origin needs room, the entry that departed longest ago is reclaimed.
 * An origin that sends again before that is simply back. Returns 0, or -ENOENT when the
 * origin is unknown or already departed. */
int nm_replay_table_remove(nm_replay_table *t, const char *origin);

/* Origins in the list (not departed). */
size_t nm_replay_table_live(const nm_replay_table *t);

#endif
