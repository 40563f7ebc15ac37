/* A fleet of fake servants for the scale tests (issue 13): a real natmesh-manager started
 * from this process, and N fake servants over real TLS sessions (one libuv loop, nm_conn
 * and nm_msg as the servant speaks them), each with a key of its own, a few at a time
 * (below the manager's unauthenticated sessions per address).
 *
 * The fleet opens each session, says hello, answers the welcome with `listening` and
 * counts who got a whole list; what a test reads from its frames (lists, deltas, the
 * rest) is its own, through fleet.frame, with the helpers below. */
#ifndef NATMESH_TESTS_SCALE_FLEET_H
#define NATMESH_TESTS_SCALE_FLEET_H

#include "nm_conn.h"
#include "nm_identity.h"
#include "nm_msg.h"
#include "nm_proto.h"
#include "nm_tls.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

extern int fleet_failures;
#define CHECK(cond, ...)                                                                        \
  do {                                                                                          \
    if (cond) {                                                                                 \
      printf("ok - ");                                                                          \
    } else {                                                                                    \
      fleet_failures++;                                                                         \
      printf("not ok - ");                                                                      \
    }                                                                                           \
    printf(__VA_ARGS__);                                                                        \
    printf("\n");                                                                               \
  } while (0)

enum { S_IDLE, S_CONNECTING, S_HELLO, S_LISTENING, S_READY };

typedef struct fleet fleet;

typedef struct {
  nm_conn conn;
  fleet *fleet;
  int index, state, closed;
  nm_identity id;
  nm_tls_ctx ctx;
  int whole, bad;
  char why[320];
  nm_peerlist list; /* its max is N + 16 */
} fleet_sess;

struct fleet {
  /* set by the test before fleet_start */
  const char *name; /* hello names: NAME0, NAME1, ... */
  /* every frame a session reads, before the fleet answers a welcome */
  void (*frame)(fleet_sess *s, uint8_t type, const char *payload, size_t len);
  void (*hello)(fleet_sess *s, nm_msg *m); /* optional: more in a hello */
  /* the fleet's */
  uv_loop_t *loop;
  fleet_sess *s; /* N of them */
  int n, next, ready, failed;
  int unwelcomed; /* connecting or said hello: what the manager's per-address cap counts */
  struct sockaddr_in maddr;
  uint16_t port;
  pid_t pid;
  char dir[64], log[128];
  uv_timer_t deadline;
};

/* SIGPIPE ignored, libxml2 set up, ulimit -n raised and N sessions checked against it,
 * a state directory /tmp/TAG.XXXXXX and a free port. 0, or the test's exit status: 77
 * (skip, said on stdout) or 1. */
int fleet_prepare(fleet *f, int n, const char *tag);
/* The manager at PATH on 127.0.0.1 (--open, heartbeat 60, timeout 600, then the extra
 * arguments, NULL-terminated), its output in the state directory's manager.log; returns
 * once it accepts. The sessions are allocated, none open yet. */
void fleet_start(fleet *f, const char *path, ...);
/* Every servant registers, or the deadline (ms) passes; STEP (optional) after each turn. */
void fleet_register(fleet *f, unsigned deadline_ms, void (*step)(fleet *f));
/* The loop runs MS milliseconds. */
void fleet_run_for(fleet *f, unsigned ms);
/* Every session closed and freed, the manager sent SIGTERM: its wait status. */
int fleet_stop(fleet *f);
/* The state directory removed when every check passed, else the log's place said; the
 * test's exit status. */
int fleet_finish(fleet *f);

/* S's list whole: it is ready (once). */
void fleet_whole(fleet_sess *s);
/* Entries of a peers message into S's list (cleared first when FRESH), its version taken. */
void fleet_take_peers(fleet_sess *s, const nm_msg *m, int fresh);
/* A delta's changes applied to S's list, its version taken. */
void fleet_take_delta(fleet_sess *s, const nm_msg *m);

#endif
