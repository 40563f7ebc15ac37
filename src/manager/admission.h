/* The manager's admission: who may join, as nm_admission decides it, with the store kept in
 * <state-dir>/admission.
 *
 * The store file is shared with the subcommands that change it (natmesh-manager invite,
 * revoke), which may run while the manager does. Every change is made the same way, by
 * either: an exclusive lock on <state-dir>/admission.lock, the file read afresh if it
 * changed, the change, an atomic save (nm_admission_store_save), the unlock. So neither
 * side ever saves over what the other wrote. Between changes the running manager re-reads
 * the file whenever it changed (its inode, size or modification time) before it decides,
 * and on each sweep, so a revoked key or a new invite counts at once.
 *
 * The allow list is the config's (--allow, --relay-key, <allow>, <relay-key>) and is never
 * saved.
 *
 * Batched records. Once mgr_admission_start() gave it a loop, the running manager does not
 * lock, read and save the file on its event loop for an admission that only remembers a key
 * (an open overlay's new key, an allowed key's name, a known key's new name): it applies the
 * record in memory at once, so the next decision already sees it (names stay unique), and
 * keeps it as pending; within MGR_ADMISSION_FLUSH_MS a worker thread (uv_queue_work) takes
 * the lock, reads the file afresh, makes the pending records on it, saves it and hands the
 * store it saved back to the loop, which takes it as its own and makes the records that
 * arrived since on it again. Whenever the loop reads the file itself (a subcommand changed
 * it), the pending records are made again on what it read too, so a record is never lost
 * and never wins over a revocation. A crash loses at most the last interval's records: the
 * keys are admitted again by the same rule when they come back. An admission that uses an
 * invite is recorded before the node is admitted, as before: an invite's uses must be
 * counted exactly (a single-use invite admits one key), and they are rare. The manager
 * saves what is pending when it stops. */
#ifndef NM_MANAGER_ADMISSION_H
#define NM_MANAGER_ADMISSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <uv.h>

#include "nm_admission.h"
#include "nm_config.h"

#define MGR_PATH_MAX 4096
#define MGR_ADMISSION_FILE "admission"
#define MGR_ADMISSION_LOCK_FILE "admission.lock"

typedef struct {
  nm_admission_store store;
  nm_admission_mode mode;
  char path[MGR_PATH_MAX];
  char lock_path[MGR_PATH_MAX];
  /* the file as last read or written: a change of any of these means read it again */
  int seen_exists;
  dev_t seen_dev;
  ino_t seen_ino;
  off_t seen_size;
  struct timespec seen_mtime;
  int corrupt; /* the file on disk could not be read: nothing is saved over it */
  int stale;   /* a change could not be saved: read the file again before deciding */
  /* Batched records (above); loop is NULL until mgr_admission_start (then every change is
   * saved at once, as the subcommands need). */
  uv_loop_t *loop;
  uv_timer_t flush_timer;
  struct mgr_admission_flush *flushing; /* the worker's job, while one runs */
  struct mgr_admission_record *pending; /* in memory, not yet in the file, oldest first */
  size_t npending, pending_cap;
  uint64_t next_seq;       /* of the next pending record */
  uint64_t saved, failed;  /* batches saved, and not (counted for the log and tests) */
  uint64_t reads;          /* times the file was read (a subcommand may have changed it) */
} mgr_admission;

/* How long a record may stay in memory only. */
#define MGR_ADMISSION_FLUSH_MS 500

/* Opens the store of state_dir (which exists: nm_identity made it) and reads it (a missing
 * file is an empty store). Returns 0, or < 0 with the reason in err (a corrupt file among
 * them: the manager refuses to start on it rather than forget who was admitted). */
int mgr_admission_open(mgr_admission *a, const char *state_dir, nm_admission_mode mode,
                       char *err, size_t errlen);
/* Saves what is pending (synchronously: the loop is gone or stopping) and frees the store. */
void mgr_admission_close(mgr_admission *a);

/* From now on records are batched and saved off the loop (above). 0 or a libuv error. */
int mgr_admission_start(mgr_admission *a, uv_loop_t *loop);
/* Closes the flush timer (the manager is stopping); a batch being saved completes, and
 * mgr_admission_close saves the rest. */
void mgr_admission_stop(mgr_admission *a);

/* The config's grants: allow (admitted as servants) and relay_keys (admitted, and granted
 * the relay role). Either may be NULL. Returns 0 or < 0 with the reason in err. */
int mgr_admission_grant(mgr_admission *a, const nm_keylist *allow, const nm_keylist *relay_keys,
                        char *err, size_t errlen);

/* Reads the file again if it changed since it was last read or written. Returns 1 when it
 * was read, 0 when unchanged, < 0 when it could not be (err says why; the store in memory
 * is then unchanged). */
int mgr_admission_refresh(mgr_admission *a, char *err, size_t errlen);

/* A change to the store: returns 1 when it changed the store (then it is saved), 0 when
 * not, < 0 for an error (nothing is saved; err may say why). */
typedef int (*mgr_admission_change)(nm_admission_store *s, void *arg, char *err, size_t errlen);

/* Makes a change under the lock, on the file as it is now, and saves it when it changed.
 * Returns the change's result, or < 0 when the lock, the read or the save failed (err says
 * why; a failed save leaves the file as it was, and the store in memory with the change). */
int mgr_admission_update(mgr_admission *a, mgr_admission_change change, void *arg, char *err,
                         size_t errlen);

/* Decides rq (after a refresh) and, when admitted and something is to be recorded, commits
 * it through mgr_admission_update. Returns 0 with *d filled (admitted or refused), or < 0
 * when the decision could not be recorded (err says why; *d is then a refusal). */
int mgr_admission_admit(mgr_admission *a, const nm_admission_request *rq,
                        nm_admission_decision *d, char *err, size_t errlen);

/* A fact another manager of the overlay published (nm_admission.h; shared.c): made on the
 * store in memory at once, so the next decision sees it, and saved like a batched record
 * (made again on the file whenever it is read, until saved). Without a loop, saved at once.
 * Returns 1 when the store changed, 0 when it held the fact already (or a revocation
 * overrules it), < 0 when it cannot be made (-EEXIST: a key whose name another key holds
 * here; -ENOSPC, -ENOMEM, -EINVAL). */
int mgr_admission_learn(mgr_admission *a, const nm_admission_fact *f);

/* 1 when the key is revoked in the store as last read. */
int mgr_admission_key_revoked(const mgr_admission *a, const char *fingerprint);

#endif
