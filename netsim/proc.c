#include "proc.h"
#include "nsops.h"
#include "scenario.h"
#include "stamp.h"
#include "state.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct nsim_proc *nsim_proc_add(struct nsim_run *r, const char *name, int node, char **argv,
                                int daemon) {
  if (r->nprocs >= NSIM_MAX_PROCS) return NULL;
  struct nsim_proc *p = &r->procs[r->nprocs++];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  p->node = node;
  p->argv = argv;
  p->stdin_fd = -1;
  p->daemon = daemon;
  if (nsim_fmt(p->out_path, sizeof p->out_path, "%s/logs/%s.out", r->dir, name) < 0 ||
      nsim_fmt(p->err_path, sizeof p->err_path, "%s/logs/%s.err", r->dir, name) < 0) {
    r->nprocs--;
    return NULL;
  }
  return p;
}

struct nsim_proc *nsim_proc_find(struct nsim_run *r, const char *name) {
  for (int i = 0; i < r->nprocs; i++)
    if (!strcmp(r->procs[i].name, name)) return &r->procs[i];
  return NULL;
}

static long nsim__file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

int nsim_proc_start(struct nsim_run *r, struct nsim_proc *p, char *err, size_t errlen) {
  char exe[PATH_MAX];
  if (nsim_which(p->argv[0], exe, sizeof exe) < 0) {
    snprintf(err, errlen, "process %s: %s: command not found", p->name, p->argv[0]);
    return -ENOENT;
  }
  const char *ns = nsim_run_ns(r, p->node);
  int in[2];
  if (pipe2(in, O_CLOEXEC) < 0) return -errno;
  int out = open(p->out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  int errfd = open(p->err_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (out < 0 || errfd < 0) {
    int e = errno;
    close(in[0]), close(in[1]);
    if (out >= 0) close(out);
    if (errfd >= 0) close(errfd);
    snprintf(err, errlen, "process %s: log file: %s", p->name, strerror(e));
    return -e;
  }
  /* A restart appends to the same logs; expectations look only past this point. */
  p->out_base = nsim__file_size(p->out_path);
  p->err_base = nsim__file_size(p->err_path);
  pid_t parent = getpid();
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(in[0]), close(in[1]), close(out), close(errfd);
    return -e;
  }
  if (pid == 0) {
    /* Own process group so Ctrl-C on the terminal reaches netsim only (it stops processes in
     * order) and so a stop reaches whatever the process forked. */
    setpgid(0, 0);
    if (!p->daemon || !r->persist) prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(125); /* netsim died before prctl took effect */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    if (nsim_ns_enter(ns) < 0) {
      dprintf(errfd, "netsim: refusing to start %s: cannot enter namespace %s\n", p->name, ns);
      _exit(126);
    }
    if (p->fsize_max > 0) {
      /* A bounded writer (tcpdump): past the bound the kernel stops it with SIGXFSZ, and no
       * core file is written in its place. */
      struct rlimit fs = {(rlim_t)p->fsize_max, (rlim_t)p->fsize_max}, core = {0, 0};
      signal(SIGXFSZ, SIG_DFL);
      if (setrlimit(RLIMIT_FSIZE, &fs) < 0 || setrlimit(RLIMIT_CORE, &core) < 0) _exit(126);
    }
    dup2(in[0], 0);
    dup2(out, 1);
    dup2(errfd, 2);
    execv(exe, p->argv);
    dprintf(2, "netsim: exec %s: %s\n", exe, strerror(errno));
    _exit(127);
  }
  setpgid(pid, pid); /* also from the parent: no window where a kill(-pid) misses */
  close(in[0]), close(out), close(errfd);
  if (p->stdin_fd >= 0) close(p->stdin_fd);
  p->stdin_fd = in[1];
  p->pid = pid;
  p->exited = 0;
  p->status = 0;
  p->started_ms = nsim_now_ms();
  nsim_state_add_pid(r, pid);
  nsim_stamp_watch(r, p);
  char cmd[512];
  nsim_argv_render(p->argv, cmd, sizeof cmd);
  nsim_log(r, "started %s (pid %d) on %s: %s", p->name, (int)pid,
           p->node >= 0 && p->node < r->sc->topo.nnodes ? r->sc->topo.nodes[p->node].name
                                                        : "the internet core",
           cmd);
  return 0;
}

int nsim_proc_send(struct nsim_proc *p, const char *line) {
  if (p->stdin_fd < 0 || !p->pid) return -EPIPE;
  size_t len = strlen(line);
  char *buf = malloc(len + 2);
  if (!buf) return -ENOMEM;
  memcpy(buf, line, len);
  buf[len] = '\n';
  size_t off = 0;
  int rc = 0;
  while (off < len + 1) {
    ssize_t w = write(p->stdin_fd, buf + off, len + 1 - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      rc = -errno;
      break;
    }
    off += (size_t)w;
  }
  free(buf);
  return rc;
}

const char *nsim_proc_status_str(const struct nsim_proc *p, char *buf, size_t len) {
  if (!p->exited) snprintf(buf, len, "running");
  else if (WIFEXITED(p->status)) snprintf(buf, len, "exited %d", WEXITSTATUS(p->status));
  else if (WIFSIGNALED(p->status)) snprintf(buf, len, "killed by signal %d", WTERMSIG(p->status));
  else snprintf(buf, len, "ended");
  return buf;
}

static void nsim__mark_exited(struct nsim_run *r, pid_t pid, int status) {
  for (int i = 0; i < r->nprocs; i++) {
    struct nsim_proc *p = &r->procs[i];
    if (p->pid != pid) continue;
    p->exited = 1;
    p->status = status;
    p->exited_ms = nsim_now_ms();
    p->pid = 0;
    if (p->stdin_fd >= 0) close(p->stdin_fd);
    p->stdin_fd = -1;
    char st[64];
    nsim_log(r, "%s %s", p->name, nsim_proc_status_str(p, st, sizeof st));
    return;
  }
}

void nsim_proc_reap(struct nsim_run *r) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) nsim__mark_exited(r, pid, status);
}

int nsim_proc_signal(struct nsim_run *r, struct nsim_proc *p, int sig, long wait_ms) {
  if (!p->pid) return 0;
  pid_t pid = p->pid;
  kill(-pid, sig);
  if (sig == SIGSTOP || sig == SIGCONT || sig == SIGUSR1 || sig == SIGUSR2) return 0;
  long deadline = nsim_now_ms() + wait_ms;
  int killed = sig == SIGKILL;
  for (;;) {
    int status;
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      nsim__mark_exited(r, pid, status);
      kill(-pid, SIGKILL); /* anything it left behind in its group */
      return 0;
    }
    if (w < 0 && errno == ECHILD) {
      p->pid = 0;
      return 0;
    }
    if (nsim_now_ms() >= deadline) {
      if (killed) return -ETIMEDOUT;
      kill(-pid, SIGKILL);
      killed = 1;
      deadline = nsim_now_ms() + 2000;
    }
    nsim_sleep_ms(10);
  }
}

void nsim_proc_stop_all(struct nsim_run *r, long grace_ms) {
  /* Scenario processes first, router daemons after, as when people switch off their
   * computers before the router: a servant leaving can still remove its port mapping.
   * Within each group signal all first, then wait: stopping in parallel keeps it fast. */
  for (int daemons = 0; daemons < 2; daemons++) {
    for (int i = 0; i < r->nprocs; i++) {
      struct nsim_proc *p = &r->procs[i];
      if (p->daemon != daemons) continue;
      if (p->stdin_fd >= 0) close(p->stdin_fd);
      p->stdin_fd = -1;
      if (p->pid) kill(-p->pid, SIGTERM);
    }
    /* Signal 0: only wait (then SIGKILL after the grace). A second SIGTERM would hit a
     * program that is already stopping and has put its handler away, and kill it before
     * its clean exit (and the sanitizers' leak check). */
    for (int i = 0; i < r->nprocs; i++)
      if (r->procs[i].daemon == daemons && r->procs[i].pid)
        nsim_proc_signal(r, &r->procs[i], 0, grace_ms);
  }
}

void nsim_proc_free_all(struct nsim_run *r) {
  for (int i = 0; i < r->nprocs; i++) {
    if (r->procs[i].stdin_fd >= 0) close(r->procs[i].stdin_fd);
    nsim_argv_free(r->procs[i].argv);
    r->procs[i].argv = NULL;
  }
  r->nprocs = 0;
}

/* Counts lines of path from offset from that contain text or match re, stopping at limit;
 * the last match is copied into found. */
static int nsim__scan(const char *path, long from, const char *text, const regex_t *re,
                      int limit, char *found, size_t foundlen, long *first_end) {
  FILE *f = fopen(path, "re");
  if (!f) return 0;
  if (from > 0 && fseek(f, from, SEEK_SET) < 0) {
    fclose(f);
    return 0;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int hits = 0;
  while (hits < limit && (n = getline(&line, &cap, f)) > 0) {
    if (line[n - 1] == '\n') line[--n] = 0;
    int hit = re ? regexec(re, line, 0, NULL, 0) == 0 : strstr(line, text) != NULL;
    if (hit && found) snprintf(found, foundlen, "%s", line);
    if (hit && !hits && first_end) *first_end = ftell(f);
    hits += hit;
  }
  free(line);
  fclose(f);
  return hits;
}

/* Scans the chosen streams, out first, for text or regex until limit lines matched in all. */
static int nsim__scan_streams(struct nsim_proc *p, long out_from, long err_from, int streams,
                              const char *text, const char *regex, int limit, char *found,
                              size_t foundlen) {
  regex_t re;
  if (regex && regcomp(&re, regex, REG_EXTENDED | REG_NOSUB) != 0) return -EINVAL;
  int hits = 0;
  if (streams & NSIM_STREAM_OUT)
    hits += nsim__scan(p->out_path, out_from, text, regex ? &re : NULL, limit, found, foundlen, NULL);
  if (hits < limit && (streams & NSIM_STREAM_ERR))
    hits += nsim__scan(p->err_path, err_from, text, regex ? &re : NULL, limit - hits, found,
                       foundlen, NULL);
  if (regex) regfree(&re);
  return hits;
}

int nsim_proc_log_count(struct nsim_proc *p, long out_from, long err_from, int streams,
                        const char *text, const char *regex, char *found, size_t foundlen) {
  return nsim__scan_streams(p, out_from, err_from, streams, text, regex, 1 << 30, found, foundlen);
}

int nsim_proc_log_find_from(struct nsim_proc *p, long out_from, long err_from, int streams,
                            const char *text, const char *regex, char *found, size_t foundlen) {
  return nsim__scan_streams(p, out_from, err_from, streams, text, regex, 1, found, foundlen);
}

int nsim_proc_log_find(struct nsim_proc *p, int streams, const char *text, const char *regex,
                       char *found, size_t foundlen) {
  return nsim_proc_log_find_from(p, p->out_base, p->err_base, streams, text, regex, found, foundlen);
}

void nsim_proc_log_sizes(const struct nsim_proc *p, long *out_size, long *err_size) {
  *out_size = nsim__file_size(p->out_path);
  *err_size = nsim__file_size(p->err_path);
}

int nsim_proc_log_first(struct nsim_proc *p, long out_from, long err_from, int streams,
                        const char *text, const char *regex, long *out_end, long *err_end,
                        char *found, size_t foundlen) {
  regex_t re;
  if (regex && regcomp(&re, regex, REG_EXTENDED | REG_NOSUB) != 0) return -EINVAL;
  *out_end = *err_end = -1;
  char other[512] = "";
  int hit = 0;
  if (streams & NSIM_STREAM_OUT)
    hit += nsim__scan(p->out_path, out_from, text, regex ? &re : NULL, 1, found, foundlen, out_end);
  if (streams & NSIM_STREAM_ERR)
    hit += nsim__scan(p->err_path, err_from, text, regex ? &re : NULL, 1,
                      hit ? other : found, hit ? sizeof other : foundlen, err_end);
  if (regex) regfree(&re);
  return hit > 0;
}
