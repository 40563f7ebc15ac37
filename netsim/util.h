/* util: small helpers netsim's modules share (time, durations, argument splitting, files). */
#ifndef NSIM_UTIL_H
#define NSIM_UTIL_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#define NSIM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Milliseconds on the monotonic clock. */
long nsim_now_ms(void);
void nsim_sleep_ms(long ms);

/* "250ms", "2s", "1.5s", "1m", or a bare number of seconds. Returns 0 or -EINVAL. */
int nsim_parse_duration(const char *s, long *out_ms);

/* "5%", "0.5%" or "12.5" (percent) into per-mille 0..1000. Returns 0, -EINVAL or -ERANGE. */
int nsim_parse_percent(const char *s, unsigned *out_permille);

/* Splits a command line into a NULL-terminated argv (malloc'ed, free with nsim_argv_free).
 * Words are separated by blanks; '...' and "..." group words; backslash escapes the next
 * character outside single quotes. No shell is involved: no globbing, no variables.
 * Returns the word count or -EINVAL (unbalanced quote) / -ENOMEM. */
int nsim_split_args(const char *s, char ***out);
void nsim_argv_free(char **argv);
/* "a b 'c d'" style rendering of argv for logs, into buf (truncated). */
void nsim_argv_render(char *const argv[], char *buf, size_t len);

/* Writes len bytes to path (created 0600, truncated). Returns 0 or -errno. */
int nsim_write_file(const char *path, const char *data, size_t len);
/* mkdir -p with mode 0700 for the last component's parents too. Returns 0 or -errno. */
int nsim_mkdir_p(const char *path);

/* First executable called name in $PATH, then /usr/sbin, /sbin, /usr/bin, /bin; copies the
 * path into out. Returns 0 or -ENOENT. A name with a slash is returned as is. */
int nsim_which(const char *name, char *out, size_t outlen);

/* Makes a close-on-exec pipe in p, flushes stdio (so the child does not write buffered output
 * again) and forks. Returns 0 in the child, the child's pid in the parent, or -errno with no
 * pipe left open. */
pid_t nsim_pipe_fork(int p[2]);

/* Start time of pid in clock ticks since boot (field 22 of /proc/PID/stat), 0 if gone. It
 * tells a process we started from a later one that reused its pid. */
unsigned long long nsim_pid_starttime(int pid);

/* snprintf that reports truncation as -ENAMETOOLONG instead of silently cutting. */
int nsim_fmt(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
