#include "stamp.h"
#include "scenario.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NSIM_STAMP_EVERY_MS 5
#define NSIM_STAMP_MAX 2048 /* samples per log; when full, every other one is dropped */

struct nsim__series {
  long size[NSIM_STAMP_MAX];
  long ms[NSIM_STAMP_MAX];
  int n;
};

struct nsim_stamps {
  pthread_t thread;
  pthread_mutex_t lock;
  int stop;                              /* under lock */
  long started_ms;
  /* Paths copied at start so the thread never reads structures the main thread writes. */
  char paths[NSIM_MAX_PROCS][2][PATH_MAX];
  struct nsim__series series[NSIM_MAX_PROCS][2];
};

static long nsim__size(const char *path) {
  struct stat st;
  return path[0] && stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Keeps a sample only when the log grew. When the series is full, every other sample is
 * dropped, keeping the later of each pair: a line's time may then come out a little late,
 * never early. */
static void nsim__record(struct nsim__series *s, long size, long now) {
  if (size < 0 || (s->n && s->size[s->n - 1] >= size)) return;
  if (s->n == NSIM_STAMP_MAX) {
    int k = 0;
    for (int i = 1; i < s->n; i += 2, k++) s->size[k] = s->size[i], s->ms[k] = s->ms[i];
    s->n = k;
  }
  s->size[s->n] = size;
  s->ms[s->n] = now;
  s->n++;
}

static void *nsim__sampler(void *arg) {
  struct nsim_stamps *st = arg;
  for (;;) {
    pthread_mutex_lock(&st->lock);
    if (st->stop) {
      pthread_mutex_unlock(&st->lock);
      return NULL;
    }
    long now = nsim_now_ms();
    for (int i = 0; i < NSIM_MAX_PROCS; i++)
      for (int k = 0; k < 2; k++)
        if (st->paths[i][k][0]) nsim__record(&st->series[i][k], nsim__size(st->paths[i][k]), now);
    pthread_mutex_unlock(&st->lock);
    nsim_sleep_ms(NSIM_STAMP_EVERY_MS);
  }
}

int nsim_stamp_start(struct nsim_run *r) {
  struct nsim_stamps *st = calloc(1, sizeof *st);
  if (!st) return -ENOMEM;
  pthread_mutex_init(&st->lock, NULL);
  st->started_ms = nsim_now_ms();
  /* Every slot's log paths are known up front (nsim_proc_add fixes them), so copy those of
   * all slots now and of later ones as they appear (nsim_stamp_time adds them). */
  for (int i = 0; i < r->nprocs; i++) {
    memcpy(st->paths[i][0], r->procs[i].out_path, PATH_MAX);
    memcpy(st->paths[i][1], r->procs[i].err_path, PATH_MAX);
    for (int k = 0; k < 2; k++)
      nsim__record(&st->series[i][k], nsim__size(st->paths[i][k]), st->started_ms);
  }
  /* Signals (Ctrl-C, SIGTERM) must reach the main thread: they cut its waits short. The
   * sampler inherits a mask that blocks everything. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&st->thread, NULL, nsim__sampler, st);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    pthread_mutex_destroy(&st->lock);
    free(st);
    return -rc;
  }
  r->stamps = st;
  return 0;
}

void nsim_stamp_stop(struct nsim_run *r) {
  struct nsim_stamps *st = r->stamps;
  if (!st) return;
  pthread_mutex_lock(&st->lock);
  st->stop = 1;
  pthread_mutex_unlock(&st->lock);
  pthread_join(st->thread, NULL);
  pthread_mutex_destroy(&st->lock);
  free(st);
  r->stamps = NULL;
}

void nsim_stamp_watch(struct nsim_run *r, const struct nsim_proc *p) {
  struct nsim_stamps *st = r->stamps;
  if (!st) return;
  int i = (int)(p - r->procs);
  if (i < 0 || i >= NSIM_MAX_PROCS) return;
  pthread_mutex_lock(&st->lock);
  if (!st->paths[i][0][0]) {
    memcpy(st->paths[i][0], p->out_path, PATH_MAX);
    memcpy(st->paths[i][1], p->err_path, PATH_MAX);
  }
  pthread_mutex_unlock(&st->lock);
}

long nsim_stamp_time(struct nsim_run *r, const struct nsim_proc *p, int stream, long end_off) {
  struct nsim_stamps *st = r->stamps;
  long now = nsim_now_ms();
  if (!st) return now;
  int i = (int)(p - r->procs), k = stream == NSIM_STREAM_ERR ? 1 : 0;
  if (i < 0 || i >= NSIM_MAX_PROCS) return now;
  long t = now;
  pthread_mutex_lock(&st->lock);
  const struct nsim__series *s = &st->series[i][k];
  for (int j = 0; j < s->n; j++)
    if (s->size[j] >= end_off) {
      t = s->ms[j];
      break;
    }
  pthread_mutex_unlock(&st->lock);
  return t;
}
