/* nm_notify: see nm_notify.h. */
#include "nm_notify.h"
#include "nm_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef NM_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

static void nm__send(const char *state) {
  /* 0 unset_environment: the subcommands and child processes see the same environment. */
  int rc = sd_notify(0, state);
  if (rc < 0) nm_log_debug("sd_notify(%s): %s", state, strerror(-rc));
}

static uint64_t nm__watchdog_usec(void) {
  uint64_t usec = 0;
  /* > 0 when WATCHDOG_USEC is set and WATCHDOG_PID is ours (or unset). */
  return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}
#else
static void nm__send(const char *state) { (void)state; }
static uint64_t nm__watchdog_usec(void) { return 0; }
#endif

static void nm__on_watchdog(uv_timer_t *t) { nm__send("WATCHDOG=1"); }

int nm_notify_init(nm_notify *n, uv_loop_t *loop) {
  memset(n, 0, sizeof *n);
  n->loop = loop;
  const char *sock = getenv("NOTIFY_SOCKET");
#ifdef NM_HAVE_SYSTEMD
  n->enabled = sock && sock[0];
#else
  (void)sock;
#endif
  if (!n->enabled) return 0;
  uint64_t usec = nm__watchdog_usec();
  if (usec == 0) return 0;
  n->watchdog_ms = usec / 2000 ? usec / 2000 : 1;
  int rc = uv_timer_init(loop, &n->watchdog);
  if (rc < 0) {
    n->enabled = 0;
    n->watchdog_ms = 0;
    return rc;
  }
  n->watchdog_on = 1;
  n->watchdog.data = n;
  uv_unref((uv_handle_t *)&n->watchdog);
  /* The first ping at once: systemd counts from the start, not from READY. */
  uv_timer_start(&n->watchdog, nm__on_watchdog, 0, n->watchdog_ms);
  nm_log_debug("systemd watchdog: a ping every %llu ms", (unsigned long long)n->watchdog_ms);
  return 0;
}

void nm_notify_ready(nm_notify *n) {
  if (!n->enabled || n->ready || n->stopping) return;
  n->ready = 1;
  nm__send("READY=1");
}

void nm_notify_status(nm_notify *n, const char *fmt, ...) {
  if (!n->enabled || n->stopping) return;
  char text[NM_NOTIFY_STATUS_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  /* A status holds no newline (one assignment per line of the datagram). */
  for (char *p = text; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
  if (strcmp(text, n->status) == 0) return;
  uint64_t now = uv_now(n->loop);
  if (n->status_sent_ms && now - n->status_sent_ms < NM_NOTIFY_STATUS_MIN_MS) return;
  char msg[NM_NOTIFY_STATUS_MAX + 8];
  snprintf(msg, sizeof msg, "STATUS=%s", text);
  nm__send(msg);
  memcpy(n->status, text, sizeof n->status);
  n->status_sent_ms = now ? now : 1;
}

void nm_notify_stopping(nm_notify *n) {
  if (n->enabled && !n->stopping) nm__send("STOPPING=1");
  n->stopping = 1;
  nm_notify_close(n);
}

void nm_notify_close(nm_notify *n) {
  if (!n->watchdog_on) return;
  n->watchdog_on = 0;
  uv_close((uv_handle_t *)&n->watchdog, NULL);
}
