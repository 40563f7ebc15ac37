/* store: the manager's Redis client, the shared registry of an overlay run by several
 * managers (issue 14).
 *
 * It knows nothing of sessions or XML: ids, holders (manager names) and opaque record
 * blobs. Every write is one Lua script, atomic on the primary, so a decision (a put, a
 * leave, an expiry) is made once and published once, in order, on the stream `P log`
 * (P = "nm:{OVERLAY}:"). A reader follows that stream on a second connection and hands
 * each change to on_change in stream order; it checks the overlay's sequence for
 * continuity and reads a whole snapshot again when it finds a gap.
 *
 * hiredis 0.14's async API on the caller's uv loop (<hiredis/adapters/libuv.h>). Connection
 * loss, a primary that turned replica (READONLY), one that is loading (LOADING) or a
 * Sentinel-run master that is down (MASTERDOWN): on_down once per outage, then reconnect
 * with nm_backoff (100 ms doubling to 2 s); with sentinel:// the sentinels are asked who
 * the primary is now.
 *
 * Hooks run on the loop, from hiredis' reply callbacks. Every string a hook gets points
 * into the reply and is valid only during the call: copy what you keep. A hook may call
 * any mgr_store_* function, mgr_store_close included. */
#ifndef MGR_STORE_H
#define MGR_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define MGR_STORE_INFLIGHT_MAX 65536   /* commands in flight on the command connection */
#define MGR_STORE_ENTRIES_MAX 1000000  /* a larger snapshot is an error */
#define MGR_STORE_RECORD_MAX 16384     /* a record blob, a reason */
#define MGR_STORE_ID_MAX 64            /* a servant's id, bytes */
#define MGR_STORE_NAME_MAX 64          /* a manager's name, an overlay's name, bytes */
#define MGR_STORE_SENTINELS_MAX 8      /* addresses in a sentinel:// URL */
#define MGR_STORE_RENEW_BATCH 4096     /* ids per renew script */
#define MGR_STORE_REAP_LIMIT 1000      /* expiries per reap script */
#define MGR_STORE_LOG_MAXLEN 100000    /* the stream is trimmed to about this many entries */
#define MGR_STORE_MANAGERS_MAX 64      /* entries read back from P managers */
#define MGR_STORE_FACT_MAX 127         /* bytes of an admission fact's value */
#define MGR_STORE_FACTS_MAX 262144     /* admission facts of one kind (NM_ADMISSION_KEYS_MAX) */
#define MGR_STORE_FACTS_SNAPSHOT_MAX (2 * MGR_STORE_FACTS_MAX) /* facts in one snapshot */
#define MGR_STORE_MESH_SET_MAX 1024    /* a stored neighbour set, bytes ("ID ID ...") */
#define MGR_STORE_MESH_CHUNK_MAX 12288 /* the sets of one mgr_store_mesh (under RECORD_MAX) */

typedef struct mgr_store mgr_store;

typedef struct {
  uint64_t seq;        /* u, l: the overlay version this change makes; c: the current one */
  char op;             /* 'u', 'l', 'c', 'n' ('a', an admission fact, goes to on_admission) */
  char kind;           /* a: the fact's kind */
  const char *id;      /* the servant */
  const char *holder;  /* u: who holds it now; l: who removed it ("" when expired); c: the
                          accused's holder; n: the mesh's leader (id too) */
  const char *data;    /* u: the record; l: the reason; c: the reporter's id; n: neighbour
                          sets, lines "ID ID ID...\n" or "ID -\n" (gone) */
  size_t len;
} mgr_store_change;

typedef struct {
  const char *id, *holder, *data;
  size_t len;
  const char *mesh; /* its neighbour set as the mesh's leader stored it ("" for none) */
  size_t mesh_len;
} mgr_store_entry;

/* One manager as it announced itself (mgr_store_announce). */
typedef struct {
  const char *name, *addr, *fp;
  unsigned port;
  uint64_t age_ms;  /* since its last announce, on the store's clock */
} mgr_store_manager;

typedef struct {
  /* The store answers (again) and a snapshot was read: the whole registry at version seq;
   * every change after it follows through on_change, in order. Also called after a gap in
   * the stream (trimmed past us). seq may be lower than before: a store that lost its
   * data (restarted without persistence) starts again from 0. */
  void (*on_snapshot)(void *ud, uint64_t seq, const mgr_store_entry *e, size_t n);
  void (*on_change)(void *ud, const mgr_store_change *c);
  /* No store answers (any more): why. Called once per outage (also when the first
   * connection attempt fails). */
  void (*on_down)(void *ud, const char *why);
  /* renew's answer: ids not registered (put them again), ids held by another (with it) */
  void (*on_renewed)(void *ud, const char *const *missing, size_t nmissing,
                     const char *const *moved, const char *const *moved_to, size_t nmoved);
  /* Optional (NULL: not read back): after each announce, every manager of the overlay
   * (this one included), at most MGR_STORE_MANAGERS_MAX. */
  void (*on_managers)(void *ud, const mgr_store_manager *m, size_t n);
  /* Optional (NULL: facts are neither read nor asked for): one admission fact of some
   * manager, kind 'i', 'k', 'r' or 'v' (nm_admission.h's facts), key and value as that
   * manager wrote them (mgr_store_admission), from: its name. Called for every fact the
   * store holds after each snapshot (from ""), then for each new one from the change log,
   * this manager's own included. Strings are checked only for bounds (a key of at most
   * MGR_STORE_ID_MAX bytes, a value of at most MGR_STORE_FACT_MAX, no NUL): parse them. */
  void (*on_admission)(void *ud, char kind, const char *key, const char *value, size_t len,
                       const char *from);
  /* Optional: the mesh's lease changed hands (mgr_store_lead): leader is its holder ("" when
   * unknown: the store is down, or a fenced write found it lost); leading: it is us, and
   * the reader has read every entry the log held when we took it. */
  void (*on_lead)(void *ud, const char *leader, int leading);
} mgr_store_hooks;

/* redis://IP:PORT or sentinel://IP:PORT[,IP:PORT...]/MASTERNAME; IP literals only (v6 in
 * brackets). On -EINVAL err says what is wrong. */
int mgr_store_parse_url(const char *url, char *err, size_t errlen); /* 0 or -EINVAL */
/* Whether name may be an overlay's or a manager's name: [A-Za-z0-9._-], 1..MGR_STORE_NAME_MAX
 * bytes (what mgr_store_init accepts; for checking --overlay and --manager-name early). */
int mgr_store_check_name(const char *name); /* 0 or -EINVAL */
/* Starts connecting at once (the first attempt runs from the loop). overlay and self_name:
 * [A-Za-z0-9._-], 1..MGR_STORE_NAME_MAX bytes. ttl_ms: how long a put or renew keeps an id
 * alive (the caller renews well within it). h is copied; ud is given to every hook.
 * -EINVAL (bad argument or URL), -ENOMEM. */
int mgr_store_init(mgr_store **out, uv_loop_t *loop, const char *url, const char *overlay,
                   const char *self_name, unsigned ttl_ms, const mgr_store_hooks *h, void *ud);
/* Drops both connections and frees the store once its timers' close callbacks ran (run
 * the loop). No hook is called after it returns. */
void mgr_store_close(mgr_store *s);
/* A snapshot was read on the current connection: writes are accepted. */
int mgr_store_is_up(const mgr_store *s);
const char *mgr_store_primary(const mgr_store *s); /* "IP:PORT" now used, "" when down */
/* Writes: -ENOTCONN while down, -ENOBUFS past MGR_STORE_INFLIGHT_MAX commands in flight
 * (the caller treats both as "not written": renew's missing list puts it right later).
 * -EINVAL for an id, name or blob out of bounds. 0: sent; its effect comes back through
 * the stream (on_change), like everyone else's. */
int mgr_store_put(mgr_store *s, const char *id, const char *data, size_t len);
int mgr_store_leave(mgr_store *s, const char *id, const char *reason);
int mgr_store_renew(mgr_store *s, const char *const *ids, size_t n); /* batches of <= 4096 */
int mgr_store_reap(mgr_store *s);
int mgr_store_complain(mgr_store *s, const char *accused, const char *holder, const char *reporter);
int mgr_store_announce(mgr_store *s, const char *addr, unsigned port, const char *fp);
/* One admission fact of this manager's (nm_admission.h): kept in the store's hashes P adm:*
 * and, when it is new there (not known already, not overruled by a revocation), published
 * on the change log as op 'a' (no new overlay version). kind 'i', 'k', 'r' or 'v'; key:
 * [A-Za-z0-9._-], at most MGR_STORE_ID_MAX bytes; value: at most MGR_STORE_FACT_MAX bytes.
 * Idempotent: the same fact again publishes nothing. */
int mgr_store_admission(mgr_store *s, char kind, const char *key, const char *value);

/* The shared mesh (issue 14): one manager of the overlay, the lease's holder (P meshlead,
 * kept for ttl_ms past its last renewal), draws the graph and writes it; the others follow
 * it from the change log (op 'n') and the snapshot (mgr_store_entry.mesh).
 * lead: takes or renews the lease (call well within ttl_ms); its answer comes to on_lead.
 * mesh: writes neighbour sets (payload as in mgr_store_change.data, at most
 * MGR_STORE_MESH_CHUNK_MAX bytes, ending in a newline) to P mesh and the change log; reset:
 * the stored sets go first (a whole graph follows). -EPERM when we do not lead. */
int mgr_store_lead(mgr_store *s);
const char *mgr_store_leader(const mgr_store *s); /* "" when unknown */
int mgr_store_mesh(mgr_store *s, const char *payload, size_t len, int reset);

typedef struct { uint64_t puts, leaves, renews, reaps, complaints, changes_read, snapshots,
                 errors, reconnects, failovers, admissions, admissions_new, adm_snapshots,
                 mesh_writes; } mgr_store_stats;
const mgr_store_stats *mgr_store_get_stats(const mgr_store *s);

#endif
