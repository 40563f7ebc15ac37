#include "ctl_fetch.h"
#include "ctl_pages.h"

#include "nm_conn.h"
#include "nm_error.h"
#include "nm_frame.h"
#include "nm_proto.h"
#include "nm_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef enum {
  NMCTL__RESOLVING,
  NMCTL__CONNECTING,
  NMCTL__WAITING, /* request sent, waiting for the reply */
  NMCTL__DONE,
} nmctl__phase;

typedef struct {
  uv_loop_t loop;
  uv_getaddrinfo_t resolve;
  uv_timer_t deadline;
  nm_conn conn;
  nm_tls_ctx tls;
  int tls_ready; /* tls initialized */
  int conn_open; /* conn initialized and its close callbacks not yet run */
  nmctl__phase phase;
  nmctl_fetch_result result;
  nmctl_fetch *f;
  int abandoned; /* a resolver thread may still write into this session */
  nmctl_pages pages; /* a paged status being put together (ctl_pages.h) */
} nmctl__session;

/* A session left to a stuck resolver stays reachable from here (the process exits soon;
 * this keeps leak checkers quiet about it). */
static nmctl__session *nmctl__abandoned;

static void nmctl__finish(nmctl__session *s, nmctl_fetch_result result, const char *reason) {
  if (s->phase == NMCTL__DONE) return;
  s->phase = NMCTL__DONE;
  s->result = result;
  if (reason) snprintf(s->f->reason, sizeof s->f->reason, "%.250s", reason);
  uv_timer_stop(&s->deadline);
  if (s->conn_open) nm_conn_close(&s->conn, 0, NULL);
}

static void nmctl__on_deadline(uv_timer_t *t) {
  nmctl__session *s = t->data;
  char why[96];
  snprintf(why, sizeof why, "%s (no answer within %.1fs)",
           s->phase == NMCTL__WAITING ? "no status received" : "timed out",
           s->f->timeout_ms / 1000.0);
  int resolving = s->phase == NMCTL__RESOLVING;
  nmctl__finish(s, NMCTL_FETCH_UNREACHABLE, why);
  /* A resolver stuck in the thread pool cannot always be cancelled; rather than wait for
   * it, stop the loop and abandon the session (see nmctl_fetch_run). */
  if (resolving && uv_cancel((uv_req_t *)&s->resolve) < 0) {
    nmctl__abandoned = s;
    s->abandoned = 1;
    uv_stop(&s->loop);
  }
}

static int nmctl__on_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  nmctl__session *s = c->data;
  if (s->phase != NMCTL__WAITING) return 1;
  if (type != s->f->reply_type) {
    char why[96];
    snprintf(why, sizeof why, "unexpected %s frame (type 0x%02x) instead of %s",
             nm_msg_name(type), type, nm_msg_name(s->f->reply_type));
    nmctl__finish(s, NMCTL_FETCH_PROTOCOL, why);
    return 1;
  }
  if (type == NM_MSG_STATUS) {
    /* A status in pages: gathered here, rendered as one (ctl_pages.h). */
    char err[300];
    int rc = nmctl_pages_add(&s->pages, payload, len, err, sizeof err);
    if (rc < 0) {
      nmctl__finish(s, NMCTL_FETCH_PROTOCOL, err);
      return 1;
    }
    if (rc == 0) return 0; /* more pages to come */
    if (rc == 1) {
      if (nmctl_pages_take(&s->pages, &s->f->reply, &s->f->reply_len) < 0) {
        nmctl__finish(s, NMCTL_FETCH_PROTOCOL, "out of memory");
        return 1;
      }
      nmctl__finish(s, NMCTL_FETCH_OK, NULL);
      return 1;
    }
  }
  s->f->reply = malloc(len + 1);
  if (!s->f->reply) {
    nmctl__finish(s, NMCTL_FETCH_PROTOCOL, "out of memory");
    return 1;
  }
  memcpy(s->f->reply, payload, len);
  s->f->reply[len] = 0;
  s->f->reply_len = len;
  nmctl__finish(s, NMCTL_FETCH_OK, NULL);
  return 1;
}

static void nmctl__on_closed(nm_conn *c) {
  nmctl__session *s = c->data;
  s->conn_open = 0;
  /* Closed by the manager (or a read error) before it answered. An error frame from the
   * manager has already been logged by nm_conn with the manager's own words. */
  nmctl__finish(s, NMCTL_FETCH_PROTOCOL, "the manager closed the session without answering");
}

static void nmctl__on_connect(nm_conn *c, int status) {
  nmctl__session *s = c->data;
  if (s->phase != NMCTL__CONNECTING) return;
  if (status < 0) {
    char why[256];
    if (status == NM_EKEY) {
      /* "peer presented key X, expected Y": the caller says which manager. */
      const char *e = c->tls ? nm_tls_session_error(c->tls) : "";
      snprintf(why, sizeof why, "%s", strncmp(e, "peer ", 5) == 0 ? e + 5 : e);
      nmctl__finish(s, NMCTL_FETCH_KEY, why);
      return;
    }
    if (status == NM_ETLS && c->tls)
      snprintf(why, sizeof why, "TLS handshake failed: %s", nm_tls_session_error(c->tls));
    else
      snprintf(why, sizeof why, "%s", nm_strerror(status));
    nmctl__finish(s, NMCTL_FETCH_UNREACHABLE, why);
    return;
  }
  /* We chose to talk to this manager: its answer may be as large as any trusted frame. */
  nm_frame_reader_set_max(&c->reader, NM_FRAME_MAX);
  int rc = nm_conn_send(c, s->f->request_type, NULL, 0);
  if (rc < 0) {
    nmctl__finish(s, NMCTL_FETCH_UNREACHABLE, nm_strerror(rc));
    return;
  }
  s->phase = NMCTL__WAITING;
}

static void nmctl__connect(nmctl__session *s, const struct sockaddr *addr) {
  int rc = nm_conn_init(&s->loop, &s->conn, nmctl__on_frame, nmctl__on_closed, s);
  if (rc < 0) {
    nmctl__finish(s, NMCTL_FETCH_UNREACHABLE, nm_strerror(rc));
    return;
  }
  s->conn_open = 1;
  nm_conn_set_label(&s->conn, "manager");
  if (s->tls_ready) {
    rc = nm_conn_set_tls(&s->conn, &s->tls, NM_TLS_CLIENT, s->f->manager_fp);
    if (rc < 0) {
      nmctl__finish(s, NMCTL_FETCH_UNREACHABLE, nm_strerror(rc));
      return;
    }
  }
  s->phase = NMCTL__CONNECTING;
  /* The deadline timer covers the connect too; nm_conn's own timeout is not needed. */
  rc = nm_conn_connect(&s->conn, addr, 0, nmctl__on_connect);
  if (rc < 0) nmctl__finish(s, NMCTL_FETCH_UNREACHABLE, uv_strerror(rc));
}

static void nmctl__on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  nmctl__session *s = req->data;
  if (s->phase != NMCTL__RESOLVING) {
    uv_freeaddrinfo(res);
    return;
  }
  if (status < 0 || !res) {
    char why[128];
    snprintf(why, sizeof why, "cannot resolve %s: %s", s->f->host,
             status < 0 ? uv_strerror(status) : "no address");
    nmctl__finish(s, NMCTL_FETCH_UNREACHABLE, why);
  } else {
    nmctl__connect(s, res->ai_addr);
  }
  uv_freeaddrinfo(res);
}

static void nmctl__start(nmctl__session *s) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  /* Numeric addresses need no resolver round trip. */
  if (uv_ip4_addr(s->f->host, s->f->port, (struct sockaddr_in *)&ss) == 0 ||
      uv_ip6_addr(s->f->host, s->f->port, (struct sockaddr_in6 *)&ss) == 0) {
    nmctl__connect(s, (struct sockaddr *)&ss);
    return;
  }
  char port[8];
  snprintf(port, sizeof port, "%u", s->f->port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  s->resolve.data = s;
  int rc = uv_getaddrinfo(&s->loop, &s->resolve, nmctl__on_resolved, s->f->host, port, &hints);
  if (rc < 0) nmctl__finish(s, NMCTL_FETCH_UNREACHABLE, uv_strerror(rc));
}

nmctl_fetch_result nmctl_fetch_run(nmctl_fetch *f) {
  f->reply = NULL;
  f->reply_len = 0;
  f->reason[0] = 0;
  /* On the heap, not the stack: an abandoned resolver may still complete into it. */
  nmctl__session *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(f->reason, sizeof f->reason, "out of memory");
    return NMCTL_FETCH_UNREACHABLE;
  }
  s->f = f;
  s->phase = NMCTL__RESOLVING;
  if (f->id) {
    char err[200]; /* fits f->reason with its prefix */
    if (nm_tls_ctx_init(&s->tls, f->id, err, sizeof err) < 0) {
      snprintf(f->reason, sizeof f->reason, "cannot set up TLS: %s", err);
      free(s);
      return NMCTL_FETCH_UNREACHABLE;
    }
    s->tls_ready = 1;
  }
  int rc = uv_loop_init(&s->loop);
  if (rc < 0) {
    snprintf(f->reason, sizeof f->reason, "%s", uv_strerror(rc));
    if (s->tls_ready) nm_tls_ctx_close(&s->tls);
    free(s);
    return NMCTL_FETCH_UNREACHABLE;
  }
  uv_timer_init(&s->loop, &s->deadline);
  s->deadline.data = s;
  uv_timer_start(&s->deadline, nmctl__on_deadline, f->timeout_ms, 0);
  nmctl__start(s);
  /* Runs until every handle is closed: the conn's close callbacks have run when it returns
   * (unless the session was abandoned to a stuck resolver). */
  uv_run(&s->loop, UV_RUN_DEFAULT);
  nmctl_fetch_result result = s->result;
  /* Sessions keep the context alive as long as they need it (nm_tls.h). */
  if (s->tls_ready) nm_tls_ctx_close(&s->tls);
  s->tls_ready = 0;
  if (!s->abandoned) {
    uv_close((uv_handle_t *)&s->deadline, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    nmctl_pages_close(&s->pages);
    free(s);
  }
  if (result != NMCTL_FETCH_OK) {
    free(f->reply);
    f->reply = NULL;
  }
  return result;
}
