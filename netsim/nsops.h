/* nsops: every operation netsim performs on network namespaces, and the safety rule in code.
 *
 * The rule: simulated traffic stays inside namespaces netsim created. So the only commands
 * netsim ever runs in the host's own namespace are `ip netns add NAME` and `ip netns del
 * NAME` for names carrying a netsim run prefix; every other command (ip link/addr/route,
 * nft, tc, sysctl writes, user processes) runs in a forked child that first enters one of
 * those namespaces, and that child refuses to run when the namespace it entered turns out to
 * be the host's (compared by namespace inode, so a bind mount or a symlink under /run/netns
 * cannot fool it). */
#ifndef NSIM_NSOPS_H
#define NSIM_NSOPS_H

#include <stddef.h>
#include <sys/types.h>

#define NSIM_PREFIX "nms-" /* every netsim namespace name starts with this */
#define NSIM_ID_LEN 6      /* then a run id of 6 hex digits and a dash */

/* Remembers which namespaces are "the host": netsim's own and pid 1's. Call once before
 * anything else, while still in the host's namespace. Returns 0 or -errno. */
int nsim_ns_guard_init(void);

/* Whether name looks like a netsim namespace: "nms-" + 6 hex digits + "-" + node name. When
 * prefix is given the name must carry exactly that run's prefix. */
int nsim_ns_name_ok(const char *name, const char *prefix);

/* Creates / deletes a namespace of this run (name must carry prefix). Deleting one that does
 * not exist is not an error. Returns 0 or a negative code. */
int nsim_ns_add(const char *prefix, const char *name);
int nsim_ns_del(const char *prefix, const char *name);
/* Whether /run/netns/name exists. */
int nsim_ns_exists(const char *name);

/* For forked children: enters the namespace after the guard checks. Returns 0 or a negative
 * code (-EPERM when the namespace is the host's). */
int nsim_ns_enter(const char *name);

/* Runs argv in namespace ns with stdin /dev/null and stdout+stderr captured into out
 * (NUL-terminated, truncated to outcap). Kills it after timeout_ms. *status gets the wait
 * status (or -1 on timeout). Returns 0 when it ran (whatever its exit), or a negative code. */
int nsim_ns_run(const char *ns, char *const argv[], long timeout_ms, char *out, size_t outcap,
                int *status);
/* Convenience: like nsim_ns_run and 0 only when the exit code is 0; otherwise -EIO with the
 * command and its output in err. */
int nsim_ns_cmd(const char *ns, char *const argv[], char *err, size_t errlen);

/* Runs fn(arg) in a forked child inside ns; the child's stdout is captured into out. The
 * child's exit code is fn's return value (0..255). Returns that code, or a negative code
 * when the child could not run or timed out. */
int nsim_ns_call(const char *ns, int (*fn)(void *arg), void *arg, long timeout_ms, char *out,
                 size_t outcap);

/* Writes value to /proc/sys/<key> inside ns (key like "net/ipv4/ip_forward"). A key that
 * does not exist is -ENOENT (the caller decides whether that matters). */
int nsim_ns_sysctl(const char *ns, const char *key, const char *value);

/* Sends sig to every process whose network namespace is ns. Returns how many it signalled. */
int nsim_ns_signal_all(const char *ns, int sig);

#endif
