/* ctl_fetch: one request, one reply with the manager over a short natmesh session.
 *
 * Resolves the manager's name off the loop (uv_getaddrinfo), connects, runs TLS 1.3 with the
 * operator's key (nm_conn_set_tls, client), refusing a manager that presents any key but the
 * pinned one, sends one frame and waits for the frame of the expected type, all under one
 * deadline. On failure the reason is a sentence fit for "cannot reach manager at H:P:
 * <reason>". */
#ifndef NMCTL_FETCH_H
#define NMCTL_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "nm_identity.h"

typedef enum {
  NMCTL_FETCH_OK = 0,
  NMCTL_FETCH_UNREACHABLE, /* resolve, connect or timeout: nothing usable came back */
  NMCTL_FETCH_PROTOCOL,    /* the manager answered, but not with the expected frame */
  NMCTL_FETCH_KEY,         /* something answered with another key than the manager's */
} nmctl_fetch_result;

typedef struct {
  const char *host;
  uint16_t port;
  unsigned timeout_ms; /* for the whole exchange */
  uint8_t request_type;
  uint8_t reply_type;
  const nm_identity *id;            /* the key we prove (the TLS client certificate) */
  const nm_fingerprint *manager_fp; /* the key the manager must present */
  /* Out: on NMCTL_FETCH_OK the reply payload (malloc'ed, NUL-terminated; caller frees). */
  char *reply;
  size_t reply_len;
  char reason[256];
} nmctl_fetch;

nmctl_fetch_result nmctl_fetch_run(nmctl_fetch *f);

#endif
