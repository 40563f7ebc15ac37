/* nm_log: one-line log records on stderr ("time prog: level: message"). stdout stays free
 * for what a program shows its user (chat lines, status tables). */
#ifndef NM_LOG_H
#define NM_LOG_H

enum { NM_LOG_ERROR = 0, NM_LOG_WARN = 1, NM_LOG_INFO = 2, NM_LOG_DEBUG = 3 };

/* prog names the program in every line; level is read from NATMESH_LOG
 * (error|warn|info|debug) when set, else the given default. */
void nm_log_init(const char *prog, int default_level);
void nm_log_set_level(int level);
int nm_log_enabled(int level);

void nm_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define nm_log_error(...) nm_log(NM_LOG_ERROR, __VA_ARGS__)
#define nm_log_warn(...) nm_log(NM_LOG_WARN, __VA_ARGS__)
#define nm_log_info(...) nm_log(NM_LOG_INFO, __VA_ARGS__)
#define nm_log_debug(...) nm_log(NM_LOG_DEBUG, __VA_ARGS__)

#endif
