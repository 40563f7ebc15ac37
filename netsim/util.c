#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

long nsim_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void nsim_sleep_ms(long ms) {
  if (ms <= 0) return;
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  /* An interrupting signal (Ctrl-C) ends the sleep early on purpose: callers re-check. */
  nanosleep(&ts, NULL);
}

int nsim_parse_duration(const char *s, long *out_ms) {
  if (!s || !*s) return -EINVAL;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || v < 0 || v > 86400.0 * 1000) return -EINVAL;
  double mult;
  if (!*end || strcmp(end, "s") == 0) mult = 1000;
  else if (strcmp(end, "ms") == 0) mult = 1;
  else if (strcmp(end, "m") == 0) mult = 60000;
  else return -EINVAL;
  double ms = v * mult;
  if (ms > 86400.0 * 1000) return -EINVAL;
  *out_ms = (long)(ms + 0.5);
  return 0;
}

int nsim_parse_percent(const char *s, unsigned *out_permille) {
  if (!s || !*s) return -EINVAL;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s) return -EINVAL;
  if (*end == '%') end++;
  if (*end) return -EINVAL;
  if (v < 0 || v > 100) return -ERANGE;
  *out_permille = (unsigned)(v * 10 + 0.5);
  return 0;
}

void nsim_argv_free(char **argv) {
  if (!argv) return;
  for (char **a = argv; *a; a++) free(*a);
  free(argv);
}

int nsim_split_args(const char *s, char ***out) {
  size_t cap = 8, n = 0;
  char **argv = calloc(cap, sizeof *argv);
  size_t slen = strlen(s);
  char *word = malloc(slen + 1);
  if (!argv || !word) goto nomem;
  const char *p = s;
  for (;;) {
    while (*p && isspace((unsigned char)*p)) p++;
    if (!*p) break;
    size_t wl = 0;
    char quote = 0;
    while (*p && (quote || !isspace((unsigned char)*p))) {
      if (quote) {
        if (*p == quote) quote = 0;
        else if (*p == '\\' && quote == '"' && p[1]) word[wl++] = *++p;
        else word[wl++] = *p;
      } else if (*p == '\'' || *p == '"') {
        quote = *p;
      } else if (*p == '\\' && p[1]) {
        word[wl++] = *++p;
      } else {
        word[wl++] = *p;
      }
      p++;
    }
    if (quote) {
      free(word);
      nsim_argv_free(argv);
      return -EINVAL;
    }
    word[wl] = 0;
    if (n + 2 > cap) {
      cap *= 2;
      char **na = realloc(argv, cap * sizeof *na);
      if (!na) goto nomem;
      argv = na;
    }
    if (!(argv[n] = strdup(word))) goto nomem;
    argv[++n] = NULL;
  }
  free(word);
  *out = argv;
  return (int)n;
nomem:
  free(word);
  nsim_argv_free(argv);
  return -ENOMEM;
}

void nsim_argv_render(char *const argv[], char *buf, size_t len) {
  size_t used = 0;
  buf[0] = 0;
  for (size_t i = 0; argv[i] && used + 1 < len; i++) {
    int quote = strpbrk(argv[i], " \t'\"") != NULL || !argv[i][0];
    int w = snprintf(buf + used, len - used, "%s%s%s%s", i ? " " : "", quote ? "'" : "",
                     argv[i], quote ? "'" : "");
    if (w < 0) break;
    used += (size_t)w;
  }
}

int nsim_write_file(const char *path, const char *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -errno;
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      return -e;
    }
    off += (size_t)w;
  }
  if (close(fd) < 0) return -errno;
  return 0;
}

int nsim_mkdir_p(const char *path) {
  char tmp[PATH_MAX];
  if (nsim_fmt(tmp, sizeof tmp, "%s", path) < 0) return -ENAMETOOLONG;
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST) return -errno;
    *p = '/';
  }
  if (mkdir(tmp, 0700) < 0 && errno != EEXIST) return -errno;
  return 0;
}

int nsim_which(const char *name, char *out, size_t outlen) {
  if (strchr(name, '/')) return nsim_fmt(out, outlen, "%s", name) < 0 ? -ENAMETOOLONG : 0;
  const char *env = getenv("PATH");
  char path[4096];
  /* sbin directories last: root's PATH under some test runners lacks them. */
  snprintf(path, sizeof path, "%s:/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin", env ? env : "");
  char *save = NULL;
  for (char *dir = strtok_r(path, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
    if (!*dir) continue;
    if (nsim_fmt(out, outlen, "%s/%s", dir, name) < 0) continue;
    if (access(out, X_OK) == 0) return 0;
  }
  return -ENOENT;
}

pid_t nsim_pipe_fork(int p[2]) {
  if (pipe2(p, O_CLOEXEC) < 0) return -errno;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(p[0]), close(p[1]);
    return -e;
  }
  return pid;
}

unsigned long long nsim_pid_starttime(int pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  /* The command name (field 2) may hold spaces and parentheses: count from the last ')'. */
  char *p = strrchr(buf, ')');
  if (!p) return 0;
  p++;
  for (int field = 3; field < 22 && p; field++) p = strchr(p + 1, ' ');
  return p ? strtoull(p + 1, NULL, 10) : 0;
}

int nsim_fmt(char *buf, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, len, fmt, ap);
  va_end(ap);
  if (n < 0) return -EINVAL;
  if ((size_t)n >= len) return -ENAMETOOLONG;
  return n;
}
