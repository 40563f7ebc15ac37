#include "nm_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static const char *nm__log_prog = "natmesh";
static int nm__log_level = NM_LOG_INFO;

void nm_log_init(const char *prog, int default_level) {
  nm__log_prog = prog;
  nm__log_level = default_level;
  const char *env = getenv("NATMESH_LOG");
  if (env) {
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
      if (strcmp(env, names[i]) == 0) nm__log_level = i;
  }
}

void nm_log_set_level(int level) { nm__log_level = level; }
int nm_log_enabled(int level) { return level <= nm__log_level; }

void nm_log(int level, const char *fmt, ...) {
  static const char *labels[] = {"error", "warn", "info", "debug"};
  if (level > nm__log_level) return;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  localtime_r(&tv.tv_sec, &tm);
  char line[2048];
  int n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03d %s: %s: ", tm.tm_hour, tm.tm_min,
                   tm.tm_sec, (int)(tv.tv_usec / 1000), nm__log_prog, labels[level]);
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  /* One fputs per record so lines from one process never interleave mid-line. */
  size_t len = strlen(line);
  if (len + 1 < sizeof line) {
    line[len] = '\n';
    line[len + 1] = 0;
  }
  fputs(line, stderr);
  fflush(stderr);
}
