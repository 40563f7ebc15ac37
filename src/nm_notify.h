/* nm_notify: telling systemd how a daemon is doing (sd_notify(3), Type=notify units).
 *
 * READY=1 once the daemon serves, STATUS=... for `systemctl status`, STOPPING=1 when it
 * begins to stop, and WATCHDOG=1 from a uv_timer at half the interval systemd asks for
 * (WatchdogSec=, seen as WATCHDOG_USEC). The timer runs on the loop, so a loop that hangs
 * stops the pings and systemd restarts the service: that is the point of the watchdog.
 *
 * Everything is a no-op when NOTIFY_SOCKET is not set (not started by systemd, or not a
 * notify unit), and when natmesh is built without libsystemd (NATMESH_WITH_SYSTEMD=OFF).
 * sd_notify sends one datagram on a local socket: it never blocks the loop for long. */
#ifndef NM_NOTIFY_H
#define NM_NOTIFY_H

#include <stdint.h>
#include <uv.h>

/* A status line is sent when its text changed, and at most once per this many ms; callers
 * call nm_notify_status from a periodic timer, so a change held back is sent on a later
 * call. */
#define NM_NOTIFY_STATUS_MIN_MS 1000
#define NM_NOTIFY_STATUS_MAX 256

typedef struct nm_notify {
  uv_loop_t *loop;
  int enabled;           /* NOTIFY_SOCKET was set at init */
  int ready, stopping;   /* said already */
  uv_timer_t watchdog;   /* embedded; started when systemd asks for pings */
  int watchdog_on;       /* the timer was initialised (and must be closed) */
  uint64_t watchdog_ms;  /* the ping interval: half of WATCHDOG_USEC */
  uint64_t status_sent_ms;
  char status[NM_NOTIFY_STATUS_MAX]; /* the last status sent */
} nm_notify;

/* Reads the environment (NOTIFY_SOCKET, WATCHDOG_USEC/WATCHDOG_PID) and, when systemd
 * wants watchdog pings, starts the timer (unreferenced: it never keeps the loop alive).
 * Returns 0, or a negative code if the timer could not be set up (then nothing is sent). */
int nm_notify_init(nm_notify *n, uv_loop_t *loop);
/* READY=1, once. */
void nm_notify_ready(nm_notify *n);
/* STATUS=<formatted text>, if it differs from the last one sent and the last was sent at
 * least NM_NOTIFY_STATUS_MIN_MS ago (else held back: call again later). */
void nm_notify_status(nm_notify *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* STOPPING=1, once, and the watchdog timer closed (pings stop with the service). */
void nm_notify_stopping(nm_notify *n);
/* Closes the watchdog timer if still open (for a daemon that ends without stopping).
 * Idempotent. The loop must run once more for the close to complete. */
void nm_notify_close(nm_notify *n);

/* Whether notifications are sent at all (NOTIFY_SOCKET set at init). */
static inline int nm_notify_enabled(const nm_notify *n) { return n->enabled; }
/* The watchdog ping interval in ms, 0 when there is none. */
static inline uint64_t nm_notify_watchdog_ms(const nm_notify *n) { return n->watchdog_ms; }

#endif
