/* The manager's admission store on disk: locked changes, re-reading when it changed
 * (admission.h). */
#include "admission.h"
#include "nm_error.h"
#include "nm_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Records the file as it is now (after a read or a write of ours). */
static void mgr__admission_seen(mgr_admission *a) {
  struct stat st;
  a->seen_exists = stat(a->path, &st) == 0;
  if (!a->seen_exists) return;
  a->seen_dev = st.st_dev;
  a->seen_ino = st.st_ino;
  a->seen_size = st.st_size;
  a->seen_mtime = st.st_mtim;
}

static int mgr__admission_changed(const mgr_admission *a) {
  struct stat st;
  if (a->stale) return 1;
  if (stat(a->path, &st) < 0) return a->seen_exists; /* gone (or unreadable): read again */
  return !a->seen_exists || st.st_dev != a->seen_dev || st.st_ino != a->seen_ino ||
         st.st_size != a->seen_size || st.st_mtim.tv_sec != a->seen_mtime.tv_sec ||
         st.st_mtim.tv_nsec != a->seen_mtime.tv_nsec;
}

/* Reads the file into the store. A missing file is an empty store (a first start, or the
 * operator removed it). */
static int mgr__admission_read(mgr_admission *a, char *err, size_t errlen) {
  int rc = nm_admission_store_load(&a->store, a->path, err, errlen);
  mgr__admission_seen(a); /* read or refused: either way, not read again until it changes */
  a->stale = 0;
  if (rc == -ENOENT) rc = 0;
  a->corrupt = rc < 0;
  return rc;
}

int mgr_admission_open(mgr_admission *a, const char *state_dir, nm_admission_mode mode,
                       char *err, size_t errlen) {
  memset(a, 0, sizeof *a);
  nm_admission_store_init(&a->store);
  a->mode = mode;
  if (snprintf(a->path, sizeof a->path, "%s/%s", state_dir, MGR_ADMISSION_FILE) >= (int)sizeof a->path ||
      snprintf(a->lock_path, sizeof a->lock_path, "%s/%s", state_dir, MGR_ADMISSION_LOCK_FILE) >=
          (int)sizeof a->lock_path) {
    snprintf(err, errlen, "%s: path too long", state_dir);
    return -ENAMETOOLONG;
  }
  return mgr__admission_read(a, err, errlen);
}

void mgr_admission_close(mgr_admission *a) { nm_admission_store_close(&a->store); }

static int mgr__grant_list(mgr_admission *a, const nm_keylist *l, nm_role role, char *err,
                           size_t errlen) {
  for (size_t i = 0; l && i < l->count; i++) {
    int rc = nm_admission_allow_add(&a->store, l->fps[i], role);
    if (rc == -EEXIST) continue; /* listed twice, or both allowed and a relay key */
    if (rc < 0) {
      snprintf(err, errlen, "cannot allow key %s: %s", l->fps[i],
               rc == -ENOSPC ? "too many allowed keys" : nm_strerror(rc));
      return rc;
    }
  }
  return 0;
}

int mgr_admission_grant(mgr_admission *a, const nm_keylist *allow, const nm_keylist *relay_keys,
                        char *err, size_t errlen) {
  /* Relay keys first: a key both allowed and a relay key is a relay key. */
  int rc = mgr__grant_list(a, relay_keys, NM_ROLE_RELAY, err, errlen);
  return rc < 0 ? rc : mgr__grant_list(a, allow, NM_ROLE_SERVANT, err, errlen);
}

int mgr_admission_refresh(mgr_admission *a, char *err, size_t errlen) {
  if (!mgr__admission_changed(a)) return 0;
  int rc = mgr__admission_read(a, err, errlen);
  return rc < 0 ? rc : 1;
}

int mgr_admission_update(mgr_admission *a, mgr_admission_change change, void *arg, char *err,
                         size_t errlen) {
  int fd = open(a->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    int rc = -errno;
    snprintf(err, errlen, "%s: %s", a->lock_path, strerror(errno));
    return rc;
  }
  /* Held for a read, a change and an atomic save: milliseconds. */
  while (flock(fd, LOCK_EX) < 0) {
    if (errno == EINTR) continue;
    int rc = -errno;
    snprintf(err, errlen, "%s: cannot lock: %s", a->lock_path, strerror(errno));
    close(fd);
    return rc;
  }
  int rc = mgr_admission_refresh(a, err, errlen);
  if (rc >= 0 && a->corrupt) {
    snprintf(err, errlen, "%s cannot be read: fix or remove it first", a->path);
    rc = NM_ECONFIG;
  }
  if (rc >= 0) rc = change(&a->store, arg, err, errlen);
  if (rc > 0) {
    int src = nm_admission_store_save(&a->store, a->path, err, errlen);
    if (src < 0) {
      rc = src;
      a->stale = 1; /* the change is in memory only: the file says what holds */
    } else {
      mgr__admission_seen(a);
    }
  }
  close(fd); /* releases the lock */
  return rc;
}

typedef struct {
  nm_admission_mode mode;
  const nm_admission_request *rq;
  nm_admission_decision *d;
} mgr__admit_arg;

/* Decides again on the file as it is under the lock (an invite may have been revoked or used
 * up since), then records the admission. */
static int mgr__admit_change(nm_admission_store *s, void *arg, char *err, size_t errlen) {
  mgr__admit_arg *x = arg;
  int rc = nm_admission_decide(s, x->mode, x->rq, x->d);
  if (rc < 0 || !x->d->admit) return rc;
  rc = nm_admission_commit(s, x->rq, x->d);
  if (rc < 0) snprintf(err, errlen, "cannot record the admission: %s", nm_strerror(rc));
  return rc;
}

int mgr_admission_admit(mgr_admission *a, const nm_admission_request *rq,
                        nm_admission_decision *d, char *err, size_t errlen) {
  char why[300];
  if (mgr_admission_refresh(a, why, sizeof why) < 0)
    nm_log_error("admission store: %s (deciding on what was read before)", why);
  int rc = nm_admission_decide(&a->store, a->mode, rq, d);
  if (rc < 0 || !d->admit || (!d->remember && !d->invite_hash[0])) return rc;
  mgr__admit_arg x = {a->mode, rq, d};
  rc = mgr_admission_update(a, mgr__admit_change, &x, err, errlen);
  if (rc >= 0) return 0;
  /* Not recorded: the node is refused rather than admitted without a record (a name not
   * kept unique, an invite use not counted). */
  d->admit = 0;
  d->reason = NM_REFUSE_STORE_FULL;
  snprintf(d->message, sizeof d->message, "refused: the manager cannot record the admission");
  return rc;
}

int mgr_admission_key_revoked(const mgr_admission *a, const char *fingerprint) {
  for (size_t i = 0; i < a->store.nrevoked_keys; i++)
    if (strcmp(a->store.revoked_keys[i], fingerprint) == 0) return 1;
  return 0;
}
