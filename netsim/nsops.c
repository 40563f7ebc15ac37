#include "nsops.h"
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NSIM_NETNS_DIR "/run/netns"

struct nsim__nsid { dev_t dev; ino_t ino; int set; };
static struct nsim__nsid nsim__host[2];

static int nsim__nsid_of(const char *path, struct nsim__nsid *id) {
  struct stat st;
  if (stat(path, &st) < 0) return -errno;
  id->dev = st.st_dev, id->ino = st.st_ino, id->set = 1;
  return 0;
}

int nsim_ns_guard_init(void) {
  int rc = nsim__nsid_of("/proc/self/ns/net", &nsim__host[0]);
  if (rc < 0) return rc;
  /* pid 1 may be invisible in some sandboxes; our own namespace is the one that matters. */
  nsim__nsid_of("/proc/1/ns/net", &nsim__host[1]);
  return 0;
}

static int nsim__is_host(const struct stat *st) {
  for (int i = 0; i < 2; i++)
    if (nsim__host[i].set && nsim__host[i].dev == st->st_dev && nsim__host[i].ino == st->st_ino)
      return 1;
  return 0;
}

int nsim_ns_name_ok(const char *name, const char *prefix) {
  size_t pl = strlen(NSIM_PREFIX);
  if (strncmp(name, NSIM_PREFIX, pl) != 0) return 0;
  for (int i = 0; i < 6; i++)
    if (!isxdigit((unsigned char)name[pl + i])) return 0;
  if (name[pl + 6] != '-' || !name[pl + 7]) return 0;
  for (const char *p = name + pl + 7; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') return 0;
  if (strlen(name) > 40) return 0;
  if (prefix && strncmp(name, prefix, strlen(prefix)) != 0) return 0;
  return 1;
}

int nsim_ns_exists(const char *name) {
  char path[128];
  if (nsim_fmt(path, sizeof path, NSIM_NETNS_DIR "/%s", name) < 0) return 0;
  return access(path, F_OK) == 0;
}

/* Child side of every spawn: die with netsim, then enter the namespace (if any). */
static void nsim__child_prepare(const char *ns) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGPIPE, SIG_DFL);
  if (ns && nsim_ns_enter(ns) < 0) {
    fprintf(stderr, "netsim: refusing to run in namespace %s\n", ns);
    _exit(126);
  }
}

int nsim_ns_enter(const char *name) {
  if (!nsim_ns_name_ok(name, NULL)) return -EPERM;
  char path[128];
  if (nsim_fmt(path, sizeof path, NSIM_NETNS_DIR "/%s", name) < 0) return -ENAMETOOLONG;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct stat st;
  if (fstat(fd, &st) < 0 || nsim__is_host(&st)) {
    close(fd);
    return -EPERM;
  }
  int rc = setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
  close(fd);
  if (rc == 0) {
    /* Belt and braces: confirm where we landed. */
    struct stat now;
    if (stat("/proc/self/ns/net", &now) < 0 || nsim__is_host(&now)) return -EPERM;
  }
  return rc;
}

/* Reads the child's output until EOF or the deadline, then reaps it. */
static int nsim__collect(pid_t pid, int rfd, long timeout_ms, char *out, size_t outcap,
                         int *status) {
  size_t used = 0;
  long deadline = nsim_now_ms() + timeout_ms;
  int timed_out = 0;
  char sink[512];
  for (;;) {
    long left = deadline - nsim_now_ms();
    if (left <= 0) {
      timed_out = 1;
      break;
    }
    struct pollfd p = {rfd, POLLIN, 0};
    int pr = poll(&p, 1, (int)(left > 100 ? 100 : left));
    if (pr < 0 && errno != EINTR) break;
    if (pr <= 0) continue;
    char *dst = out && used + 1 < outcap ? out + used : sink;
    size_t room = out && used + 1 < outcap ? outcap - used - 1 : sizeof sink;
    ssize_t n = read(rfd, dst, room);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (dst != sink) used += (size_t)n;
  }
  close(rfd);
  if (out && outcap) out[used] = 0;
  if (timed_out) kill(pid, SIGKILL);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  *status = timed_out ? -1 : st;
  return 0;
}

static int nsim__spawn(const char *ns, char *const argv[], int (*fn)(void *), void *arg,
                       long timeout_ms, char *out, size_t outcap, int *status) {
  char exe[4096] = "";
  if (argv && nsim_which(argv[0], exe, sizeof exe) < 0) {
    if (out && outcap) snprintf(out, outcap, "%s: not found", argv[0]);
    return -ENOENT;
  }
  int p[2];
  pid_t pid = nsim_pipe_fork(p);
  if (pid < 0) return pid;
  if (pid == 0) {
    nsim__child_prepare(ns);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(p[1], 1);
    dup2(p[1], 2);
    if (fn) {
      int rc = fn(arg);
      fflush(NULL);
      _exit(rc & 255);
    }
    execv(exe, argv);
    fprintf(stderr, "exec %s: %s\n", exe, strerror(errno));
    _exit(127);
  }
  close(p[1]);
  return nsim__collect(pid, p[0], timeout_ms, out, outcap, status);
}

int nsim_ns_run(const char *ns, char *const argv[], long timeout_ms, char *out, size_t outcap,
                int *status) {
  if (!ns || !nsim_ns_name_ok(ns, NULL)) return -EPERM;
  return nsim__spawn(ns, argv, NULL, NULL, timeout_ms, out, outcap, status);
}

int nsim_ns_cmd(const char *ns, char *const argv[], char *err, size_t errlen) {
  char out[2048];
  int st;
  int rc = nsim_ns_run(ns, argv, 10000, out, sizeof out, &st);
  if (rc < 0) {
    snprintf(err, errlen, "%s: %s", argv[0], strerror(-rc));
    return rc;
  }
  if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
  char cmd[512];
  nsim_argv_render(argv, cmd, sizeof cmd);
  size_t ol = strlen(out);
  while (ol && (out[ol - 1] == '\n' || out[ol - 1] == ' ')) out[--ol] = 0;
  snprintf(err, errlen, "in %s: `%s` %s: %s", ns, cmd,
           st == -1 ? "timed out" : "failed", out[0] ? out : "(no output)");
  return -EIO;
}

int nsim_ns_call(const char *ns, int (*fn)(void *arg), void *arg, long timeout_ms, char *out,
                 size_t outcap) {
  if (!ns || !nsim_ns_name_ok(ns, NULL)) return -EPERM;
  int st;
  int rc = nsim__spawn(ns, NULL, fn, arg, timeout_ms, out, outcap, &st);
  if (rc < 0) return rc;
  if (st == -1) return -ETIMEDOUT;
  if (!WIFEXITED(st)) return -ECHILD;
  return WEXITSTATUS(st);
}

struct nsim__sysctl { const char *key, *value; };

static int nsim__sysctl_child(void *arg) {
  struct nsim__sysctl *s = arg;
  char path[256];
  snprintf(path, sizeof path, "/proc/sys/%s", s->key);
  int fd = open(path, O_WRONLY);
  if (fd < 0) return errno == ENOENT ? 2 : 1;
  ssize_t w = write(fd, s->value, strlen(s->value));
  close(fd);
  return w == (ssize_t)strlen(s->value) ? 0 : 1;
}

int nsim_ns_sysctl(const char *ns, const char *key, const char *value) {
  if (strstr(key, "..")) return -EINVAL;
  struct nsim__sysctl s = {key, value};
  int rc = nsim_ns_call(ns, nsim__sysctl_child, &s, 5000, NULL, 0);
  return rc == 0 ? 0 : rc == 2 ? -ENOENT : rc < 0 ? rc : -EIO;
}

/* `ip netns add|del NAME`: the only commands netsim runs in the host's namespace. They create
 * or remove an empty namespace and its /run/netns entry; nothing else is touched there. */
static int nsim__netns_op(const char *op, const char *prefix, const char *name) {
  if (!prefix || !nsim_ns_name_ok(name, prefix)) return -EPERM;
  char *argv[] = {"ip", "netns", (char *)op, (char *)name, NULL};
  char out[512];
  int st;
  int rc = nsim__spawn(NULL, argv, NULL, NULL, 10000, out, sizeof out, &st);
  if (rc < 0) return rc;
  if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
  fprintf(stderr, "netsim: ip netns %s %s: %s", op, name, out);
  return -EIO;
}

int nsim_ns_add(const char *prefix, const char *name) {
  if (nsim_ns_exists(name)) return -EEXIST;
  return nsim__netns_op("add", prefix, name);
}

int nsim_ns_del(const char *prefix, const char *name) {
  if (!nsim_ns_name_ok(name, prefix)) return -EPERM;
  if (!nsim_ns_exists(name)) return 0;
  /* A name that leads to the host's namespace was not made by netsim: leave it alone. */
  char path[128];
  struct stat st;
  if (nsim_fmt(path, sizeof path, NSIM_NETNS_DIR "/%s", name) < 0) return -ENAMETOOLONG;
  if (stat(path, &st) == 0 && nsim__is_host(&st)) {
    fprintf(stderr, "netsim: %s is the host's own namespace; refusing to touch it\n", name);
    return -EPERM;
  }
  return nsim__netns_op("delete", prefix, name);
}

int nsim_ns_signal_all(const char *ns, int sig) {
  char path[128];
  if (nsim_fmt(path, sizeof path, NSIM_NETNS_DIR "/%s", ns) < 0) return 0;
  struct stat target;
  if (stat(path, &target) < 0 || nsim__is_host(&target)) return 0;
  DIR *d = opendir("/proc");
  if (!d) return 0;
  int count = 0;
  pid_t self = getpid();
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!isdigit((unsigned char)e->d_name[0])) continue;
    pid_t pid = (pid_t)atoi(e->d_name);
    if (pid == self) continue;
    char p[64];
    struct stat st;
    snprintf(p, sizeof p, "/proc/%d/ns/net", pid);
    if (stat(p, &st) < 0) continue;
    if (st.st_dev == target.st_dev && st.st_ino == target.st_ino && kill(pid, sig) == 0) count++;
  }
  closedir(d);
  return count;
}
