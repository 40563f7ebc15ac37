#include "state.h"
#include "nsops.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int nsim__state_append(const struct nsim_run *r, const char *line) {
  char path[PATH_MAX];
  if (nsim_fmt(path, sizeof path, "%s/state", r->dir) < 0) return -ENAMETOOLONG;
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return -errno;
  size_t len = strlen(line);
  ssize_t w = write(fd, line, len);
  /* fsync is cheap here (a few lines per run) and makes the record survive a host crash
   * between creating a namespace and cleaning it. */
  fsync(fd);
  close(fd);
  return w == (ssize_t)len ? 0 : -EIO;
}

int nsim_state_create(struct nsim_run *r, const char *base) {
  int rc = nsim_mkdir_p(base);
  if (rc < 0) return rc;
  snprintf(r->base, sizeof r->base, "%s", base);
  for (int attempt = 0; attempt < 16; attempt++) {
    unsigned char b[3];
    if (getrandom(b, sizeof b, 0) != sizeof b) return -EIO;
    snprintf(r->id, sizeof r->id, "%02x%02x%02x", b[0], b[1], b[2]);
    snprintf(r->prefix, sizeof r->prefix, NSIM_PREFIX "%s-", r->id);
    if (nsim_fmt(r->dir, sizeof r->dir, "%s/%s", base, r->id) < 0) return -ENAMETOOLONG;
    if (mkdir(r->dir, 0700) < 0) {
      if (errno == EEXIST) continue;
      return -errno;
    }
    char logs[PATH_MAX];
    if (nsim_fmt(logs, sizeof logs, "%s/logs", r->dir) < 0) return -ENAMETOOLONG;
    if (mkdir(logs, 0700) < 0) return -errno;
    /* ${state:NAME} folders (keys, admission stores) go below this one. */
    if (nsim_fmt(logs, sizeof logs, "%s/statedirs", r->dir) < 0) return -ENAMETOOLONG;
    if (mkdir(logs, 0700) < 0) return -errno;
    char head[256];
    snprintf(head, sizeof head, "netsim-state 1\nprefix %s\nowner %d\n", r->prefix, (int)getpid());
    return nsim__state_append(r, head);
  }
  return -EEXIST;
}

int nsim_state_add_ns(struct nsim_run *r, const char *node, const char *ns) {
  char line[160];
  snprintf(line, sizeof line, "ns %s %s\n", node, ns);
  return nsim__state_append(r, line);
}

int nsim_state_add_pid(struct nsim_run *r, pid_t pid) {
  char line[96];
  snprintf(line, sizeof line, "pid %d %llu\n", (int)pid, nsim_pid_starttime(pid));
  return nsim__state_append(r, line);
}

/* A file name the state may record: a plain name inside the run folder. */
static int nsim__file_name_ok(const char *name) {
  size_t n = strlen(name);
  return n > 0 && n < 64 && name[0] != '.' &&
         strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

int nsim_state_add_file(struct nsim_run *r, const char *name) {
  if (!nsim__file_name_ok(name)) return -EINVAL;
  char line[96];
  snprintf(line, sizeof line, "file %s\n", name);
  return nsim__state_append(r, line);
}

/* ---- reading state -------------------------------------------------------------------- */

struct nsim__state {
  char prefix[32];
  char ns[NSIM_MAX_NODES + 2][64];
  char node[NSIM_MAX_NODES + 2][NSIM_NAME_MAX + 8];
  int nns;
  pid_t pid[NSIM_MAX_PROCS * 4];
  unsigned long long start[NSIM_MAX_PROCS * 4];
  int npid;
  char file[NSIM_MAX_PROCS][64];
  int nfile;
  int clean;
};

static int nsim__state_read(const char *dir, struct nsim__state *s) {
  memset(s, 0, sizeof *s);
  char path[PATH_MAX];
  if (nsim_fmt(path, sizeof path, "%s/state", dir) < 0) return -ENAMETOOLONG;
  FILE *f = fopen(path, "re");
  if (!f) return -errno;
  char line[256];
  int ok = 0;
  while (fgets(line, sizeof line, f)) {
    char a[64], b[64];
    int pid;
    unsigned long long st;
    if (!strcmp(line, "netsim-state 1\n")) ok = 1;
    else if (sscanf(line, "prefix %31s", s->prefix) == 1) continue;
    else if (sscanf(line, "ns %63s %63s", a, b) == 2 && s->nns < (int)NSIM_ARRAY_LEN(s->ns)) {
      snprintf(s->node[s->nns], sizeof s->node[0], "%s", a);
      snprintf(s->ns[s->nns++], sizeof s->ns[0], "%s", b);
    } else if (sscanf(line, "pid %d %llu", &pid, &st) == 2 && pid > 1 &&
               s->npid < (int)NSIM_ARRAY_LEN(s->pid)) {
      s->pid[s->npid] = pid;
      s->start[s->npid++] = st;
    } else if (sscanf(line, "file %63s", a) == 1 && nsim__file_name_ok(a) &&
               s->nfile < (int)NSIM_ARRAY_LEN(s->file)) {
      snprintf(s->file[s->nfile++], sizeof s->file[0], "%s", a);
    } else if (!strcmp(line, "clean\n")) {
      s->clean = 1;
    }
  }
  fclose(f);
  /* A state file that does not carry a well-formed prefix names nothing we may remove. */
  if (!ok || strlen(s->prefix) != strlen(NSIM_PREFIX) + NSIM_ID_LEN + 1) return -EINVAL;
  return 0;
}

int nsim_state_find_ns(const char *dir, const char *node, char *ns, size_t nslen) {
  struct nsim__state *s = malloc(sizeof *s);
  if (!s) return -ENOMEM;
  int rc = nsim__state_read(dir, s);
  if (rc == 0) {
    rc = -ENOENT;
    for (int i = 0; i < s->nns; i++)
      if (!strcmp(s->node[i], node) && !s->clean) {
        snprintf(ns, nslen, "%s", s->ns[i]);
        rc = 0;
      }
  }
  free(s);
  return rc;
}

static int nsim__alive(const struct nsim__state *s, int i) {
  unsigned long long now = nsim_pid_starttime(s->pid[i]);
  return now != 0 && now == s->start[i];
}

int nsim_cleanup_dir(const char *dir, int verbose) {
  struct nsim__state *s = malloc(sizeof *s);
  if (!s) return -ENOMEM;
  int rc = nsim__state_read(dir, s);
  if (rc < 0) {
    fprintf(stderr, "netsim: %s: no usable state file (%s)\n", dir, strerror(-rc));
    free(s);
    return rc;
  }
  /* Processes first: a namespace with a process inside outlives `ip netns del`. Recorded
   * pids are checked against their start time so a recycled pid is never hit. */
  for (int i = 0; i < s->npid; i++) {
    if (!nsim__alive(s, i)) continue;
    kill(-s->pid[i], SIGKILL); /* its process group: children it forked */
    kill(s->pid[i], SIGKILL);
  }
  for (int round = 0; round < 100; round++) {
    int left = 0;
    for (int i = 0; i < s->nns; i++)
      if (nsim_ns_name_ok(s->ns[i], s->prefix) && nsim_ns_exists(s->ns[i]))
        left += nsim_ns_signal_all(s->ns[i], SIGKILL);
    for (int i = 0; i < s->npid; i++)
      if (nsim__alive(s, i) && kill(s->pid[i], 0) == 0) {
        /* A zombie keeps its start time; only a process that can still run counts. */
        char p[64], st[256] = "";
        snprintf(p, sizeof p, "/proc/%d/stat", s->pid[i]);
        FILE *f = fopen(p, "re");
        if (f) {
          if (!fgets(st, sizeof st, f)) st[0] = 0;
          fclose(f);
        }
        char *rp = strrchr(st, ')');
        if (!rp || rp[2] != 'Z') left++;
      }
    if (!left) break;
    /* Reap our own children if we are their parent (run's normal path). */
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    nsim_sleep_ms(20);
  }
  int failed = 0;
  for (int i = s->nns - 1; i >= 0; i--) {
    if (!nsim_ns_name_ok(s->ns[i], s->prefix)) {
      fprintf(stderr, "netsim: state names %s, which is not this run's; left alone\n", s->ns[i]);
      continue;
    }
    if (nsim_ns_del(s->prefix, s->ns[i]) < 0 || nsim_ns_exists(s->ns[i])) {
      fprintf(stderr, "netsim: could not remove namespace %s\n", s->ns[i]);
      failed++;
    } else if (verbose) {
      fprintf(stderr, "netsim: removed namespace %s\n", s->ns[i]);
    }
  }
  /* Files go last, once nothing that writes them (a capture) runs any more. */
  for (int i = 0; i < s->nfile; i++) {
    char path[PATH_MAX];
    if (nsim_fmt(path, sizeof path, "%s/%s", dir, s->file[i]) < 0) continue;
    if (unlink(path) == 0 && verbose) fprintf(stderr, "netsim: removed %s\n", path);
  }
  if (!failed && !s->clean) {
    struct nsim_run tmp;
    snprintf(tmp.dir, sizeof tmp.dir, "%s", dir);
    nsim__state_append(&tmp, "clean\n");
  }
  free(s);
  return failed;
}

/* ---- watchdog --------------------------------------------------------------------------- */

#define NSIM_WATCHDOG_DETACH 'D'

static void nsim__watchdog_main(const char *dir, int rfd) {
  /* Own session: the terminal's Ctrl-C goes to netsim, which cleans up itself; the watchdog
   * acts only when netsim is gone. */
  setsid();
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  char log[PATH_MAX];
  snprintf(log, sizeof log, "%s/watchdog.log", dir);
  int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  int nfd = open("/dev/null", O_RDONLY);
  if (nfd >= 0) dup2(nfd, 0);
  if (lfd >= 0) dup2(lfd, 1), dup2(lfd, 2);
  /* Keep nothing else open: a held pipe (ctest's output, a process's stdin) would keep
   * others waiting on us. */
  int keep = dup2(rfd, 3);
  close_range(4, ~0U, 0);
  char c;
  ssize_t n;
  while ((n = read(keep, &c, 1)) < 0 && errno == EINTR) {
  }
  if (n == 1 && c == NSIM_WATCHDOG_DETACH) _exit(0);
  fprintf(stderr, "watchdog: netsim went away without cleaning up; removing run %s\n", dir);
  int failed = nsim_cleanup_dir(dir, 1);
  fprintf(stderr, "watchdog: done, %d namespace(s) left\n", failed);
  _exit(failed ? 1 : 0);
}

int nsim_watchdog_start(struct nsim_run *r) {
  int p[2];
  pid_t pid = nsim_pipe_fork(p);
  if (pid < 0) return pid;
  if (pid == 0) {
    close(p[1]);
    nsim__watchdog_main(r->dir, p[0]);
  }
  close(p[0]);
  r->watchdog_fd = p[1];
  r->watchdog_pid = pid;
  return 0;
}

void nsim_watchdog_release(struct nsim_run *r) {
  if (r->watchdog_fd < 0) return;
  char c = NSIM_WATCHDOG_DETACH;
  if (write(r->watchdog_fd, &c, 1) != 1) {
    /* nothing to do: the watchdog then cleans, which is idempotent */
  }
  close(r->watchdog_fd);
  r->watchdog_fd = -1;
  while (waitpid(r->watchdog_pid, NULL, 0) < 0 && errno == EINTR) {
  }
  r->watchdog_pid = 0;
}

/* ---- current run ------------------------------------------------------------------------ */

int nsim_state_current(const char *base, char *id, size_t idlen) {
  char path[PATH_MAX];
  if (nsim_fmt(path, sizeof path, "%s/current", base) < 0) return -ENAMETOOLONG;
  FILE *f = fopen(path, "re");
  if (!f) return -ENOENT;
  char buf[32] = "";
  if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
  fclose(f);
  buf[strcspn(buf, "\n")] = 0;
  if (strlen(buf) != NSIM_ID_LEN) return -ENOENT;
  snprintf(id, idlen, "%s", buf);
  return 0;
}

int nsim_state_set_current(const char *base, const char *id) {
  char path[PATH_MAX], line[16];
  if (nsim_fmt(path, sizeof path, "%s/current", base) < 0) return -ENAMETOOLONG;
  snprintf(line, sizeof line, "%s\n", id);
  return nsim_write_file(path, line, strlen(line));
}

void nsim_state_clear_current(const char *base, const char *id) {
  char cur[16];
  if (nsim_state_current(base, cur, sizeof cur) == 0 && !strcmp(cur, id)) {
    char path[PATH_MAX];
    if (nsim_fmt(path, sizeof path, "%s/current", base) >= 0) unlink(path);
  }
}
