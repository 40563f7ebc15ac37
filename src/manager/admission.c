/* The manager's admission store on disk: locked changes, re-reading when it changed
 * (admission.h). */
#include "admission.h"
#include "nm_error.h"
#include "nm_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* One record made in memory and not yet saved: a key this manager admitted (a fact of kind
 * 'k'), or a fact another manager of the overlay published (any kind). */
typedef struct mgr_admission_record {
  uint64_t seq;
  nm_admission_fact f;
} mgr_admission_record;

/* The pending records, made again on store (after it was read from the file). A record the
 * file now refuses (the key was revoked, or its name taken meanwhile) goes: the file wins. */
static void mgr__reapply(mgr_admission *a, nm_admission_store *store) {
  size_t kept = 0;
  for (size_t i = 0; i < a->npending; i++) {
    mgr_admission_record *r = &a->pending[i];
    int rc = nm_admission_fact_apply(store, &r->f);
    if (rc < 0) {
      if (r->f.kind == NM_ADMISSION_FACT_KEY)
        nm_log_warn("admission of key %.16s as \"%s\" not recorded: %s", r->f.hex, r->f.name,
                    rc == -EPERM ? "the key was revoked meanwhile"
                    : rc == -EEXIST ? "another key took the name meanwhile" : nm_strerror(rc));
      else
        nm_log_warn("admission fact '%c' %.16s not recorded: %s", r->f.kind, r->f.hex, nm_strerror(rc));
      continue;
    }
    a->pending[kept++] = *r;
  }
  a->npending = kept;
}

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
  if (rc == 0) mgr__reapply(a, &a->store); /* what is not saved yet still holds */
  if (rc == 0) a->reads++;
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

static int mgr__save_pending(nm_admission_store *s, void *arg, char *err, size_t errlen) {
  (void)s, (void)arg, (void)err, (void)errlen;
  return 1; /* the refresh made the pending records on what it read: save that */
}

void mgr_admission_close(mgr_admission *a) {
  if (a->npending) {
    char err[300];
    size_t n = a->npending;
    if (mgr_admission_update(a, mgr__save_pending, NULL, err, sizeof err) < 0)
      nm_log_error("admission store: %zu admitted keys not recorded: %s", n, err);
  }
  free(a->pending);
  a->pending = NULL;
  a->npending = a->pending_cap = 0;
  nm_admission_store_close(&a->store);
}

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
      a->npending = 0; /* saved with it (a batch being saved makes them again: no harm) */
    }
  }
  close(fd); /* releases the lock */
  return rc;
}

/* ---- batched records ------------------------------------------------------------------ */

/* A batch the worker saves: the records, and what it hands back. */
typedef struct mgr_admission_flush {
  uv_work_t work;
  mgr_admission *a;
  mgr_admission_record *records;
  size_t count;
  uint64_t last_seq;
  char path[MGR_PATH_MAX], lock_path[MGR_PATH_MAX];
  nm_admission_store store; /* the file as read under the lock, with the records: as saved */
  struct stat st;           /* the file as saved */
  int rc;
  char err[300];
} mgr_admission_flush;

/* The worker thread: only the job's own memory and the files; never a's store. */
static void mgr__flush_work(uv_work_t *w) {
  mgr_admission_flush *f = w->data;
  int fd = open(f->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  char why[128];
  if (fd < 0) {
    f->rc = -errno;
    snprintf(f->err, sizeof f->err, "%.200s: %s", f->lock_path, strerror_r(errno, why, sizeof why));
    return;
  }
  while ((f->rc = flock(fd, LOCK_EX)) < 0 && errno == EINTR) {
  }
  if (f->rc < 0) {
    f->rc = -errno;
    snprintf(f->err, sizeof f->err, "%.200s: cannot lock: %s", f->lock_path, strerror_r(errno, why, sizeof why));
    close(fd);
    return;
  }
  f->rc = nm_admission_store_load(&f->store, f->path, f->err, sizeof f->err);
  if (f->rc == -ENOENT) f->rc = 0;
  for (size_t i = 0; f->rc == 0 && i < f->count; i++) {
    mgr_admission_record *r = &f->records[i];
    /* Refused ones (revoked, name taken meanwhile) the loop drops when it makes them again. */
    int rc = nm_admission_fact_apply(&f->store, &r->f);
    if (rc == -ENOMEM) {
      f->rc = rc;
      snprintf(f->err, sizeof f->err, "out of memory");
    }
  }
  if (f->rc == 0) f->rc = nm_admission_store_save(&f->store, f->path, f->err, sizeof f->err);
  if (f->rc == 0 && stat(f->path, &f->st) < 0) {
    f->rc = -errno;
    snprintf(f->err, sizeof f->err, "%.200s: %s", f->path, strerror_r(errno, why, sizeof why));
  }
  close(fd);
}

static void mgr__flush_arm(mgr_admission *a);

static void mgr__flush_done(uv_work_t *w, int status) {
  mgr_admission_flush *f = w->data;
  mgr_admission *a = f->a;
  a->flushing = NULL;
  if (status == 0 && f->rc == 0) {
    /* The file as saved is the store now; the records that came since are made on it. */
    size_t done = 0;
    while (done < a->npending && a->pending[done].seq <= f->last_seq) done++;
    memmove(a->pending, a->pending + done, (a->npending - done) * sizeof *a->pending);
    a->npending -= done;
    nm_admission_store_take(&a->store, &f->store);
    a->seen_exists = 1;
    a->seen_dev = f->st.st_dev, a->seen_ino = f->st.st_ino, a->seen_size = f->st.st_size;
    a->seen_mtime = f->st.st_mtim;
    a->stale = 0, a->corrupt = 0;
    mgr__reapply(a, &a->store);
    a->saved++;
  } else {
    a->failed++;
    nm_log_error("admission store: %zu admitted keys not saved yet: %s (trying again)", f->count,
                 status ? uv_strerror(status) : f->err);
  }
  nm_admission_store_close(&f->store);
  free(f->records);
  free(f);
  if (a->npending) mgr__flush_arm(a);
}

static void mgr__flush_start(uv_timer_t *t) {
  mgr_admission *a = t->data;
  if (a->flushing || !a->npending) return;
  mgr_admission_flush *f = calloc(1, sizeof *f);
  mgr_admission_record *copy = f ? malloc(a->npending * sizeof *copy) : NULL;
  if (!f || !copy) {
    free(f);
    nm_log_error("admission store: out of memory saving %zu admitted keys (trying again)", a->npending);
    mgr__flush_arm(a);
    return;
  }
  memcpy(copy, a->pending, a->npending * sizeof *copy);
  f->a = a;
  f->records = copy;
  f->count = a->npending;
  f->last_seq = a->pending[a->npending - 1].seq;
  memcpy(f->path, a->path, sizeof f->path);
  memcpy(f->lock_path, a->lock_path, sizeof f->lock_path);
  nm_admission_store_init(&f->store);
  f->store.invites_max = a->store.invites_max, f->store.keys_max = a->store.keys_max;
  f->store.revoked_max = a->store.revoked_max, f->store.allow_max = a->store.allow_max;
  f->work.data = f;
  int rc = uv_queue_work(a->loop, &f->work, mgr__flush_work, mgr__flush_done);
  if (rc < 0) {
    nm_log_error("admission store: cannot start saving: %s (trying again)", uv_strerror(rc));
    free(copy);
    free(f);
    mgr__flush_arm(a);
    return;
  }
  a->flushing = f;
}

static void mgr__flush_arm(mgr_admission *a) {
  if (!a->loop || uv_is_closing((uv_handle_t *)&a->flush_timer) || uv_is_active((uv_handle_t *)&a->flush_timer))
    return;
  uv_timer_start(&a->flush_timer, mgr__flush_start, MGR_ADMISSION_FLUSH_MS, 0);
}

int mgr_admission_start(mgr_admission *a, uv_loop_t *loop) {
  int rc = uv_timer_init(loop, &a->flush_timer);
  if (rc < 0) return rc;
  a->flush_timer.data = a;
  a->loop = loop;
  return 0;
}

void mgr_admission_stop(mgr_admission *a) {
  if (!a->loop || uv_is_closing((uv_handle_t *)&a->flush_timer)) return;
  uv_close((uv_handle_t *)&a->flush_timer, NULL);
}

/* f, made on the store in memory already: kept pending, saved with the next batch. */
static int mgr__pending_add(mgr_admission *a, const nm_admission_fact *f) {
  if (a->npending == a->pending_cap) {
    size_t cap = a->pending_cap ? a->pending_cap * 2 : 64;
    mgr_admission_record *p = realloc(a->pending, cap * sizeof *p);
    if (!p) return -ENOMEM; /* (the record stays in memory; the next read of the file drops it) */
    a->pending = p;
    a->pending_cap = cap;
  }
  mgr_admission_record *r = &a->pending[a->npending++];
  memset(r, 0, sizeof *r);
  r->seq = ++a->next_seq;
  r->f = *f;
  mgr__flush_arm(a);
  return 0;
}

/* An admission that only remembers a key: made in memory now, saved with the next batch. */
static int mgr__remember_later(mgr_admission *a, const char *fp, const char *name, nm_role granted) {
  nm_admission_fact f = {.kind = NM_ADMISSION_FACT_KEY, .role = granted};
  snprintf(f.hex, sizeof f.hex, "%s", fp);
  snprintf(f.name, sizeof f.name, "%s", name);
  int rc = nm_admission_fact_apply(&a->store, &f);
  if (rc <= 0) return rc; /* nothing to record, or refused (the decision said it would not be) */
  return mgr__pending_add(a, &f);
}

static int mgr__learn_change(nm_admission_store *s, void *arg, char *err, size_t errlen) {
  (void)err, (void)errlen;
  int rc = nm_admission_fact_apply(s, arg);
  return rc == -EPERM ? 0 : rc;
}

int mgr_admission_learn(mgr_admission *a, const nm_admission_fact *f) {
  if (!a || !f) return -EINVAL;
  if (!a->loop) {
    char err[300];
    return mgr_admission_update(a, mgr__learn_change, (void *)f, err, sizeof err);
  }
  int rc = nm_admission_fact_apply(&a->store, f);
  if (rc == -EPERM) return 0; /* a revoked key: the revocation wins */
  if (rc <= 0) return rc;
  rc = mgr__pending_add(a, f);
  return rc < 0 ? rc : 1;
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
  if (a->loop && !d->invite_hash[0] && !a->corrupt) {
    rc = mgr__remember_later(a, rq->fingerprint, rq->name, d->granted);
    if (rc >= 0) return 0;
    snprintf(err, errlen, "cannot record the admission: %s", nm_strerror(rc));
    d->admit = 0;
    d->reason = NM_REFUSE_STORE_FULL;
    snprintf(d->message, sizeof d->message, "refused: the manager cannot record the admission");
    return rc;
  }
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
  return nm_admission_key_is_revoked(&a->store, fingerprint);
}
