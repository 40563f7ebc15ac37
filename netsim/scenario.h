/* scenario: one netsim file's content: the topology and the ordered steps to run on it.
 * Strings point into the parsed XML document, which lives as long as the scenario. */
#ifndef NSIM_SCENARIO_H
#define NSIM_SCENARIO_H

#include "topo.h"

#include <libxml/tree.h>

enum nsim_step_kind {
  NSIM_STEP_START,       /* start a long-running process on a host */
  NSIM_STEP_EXEC,        /* run a command to completion on a host; a non-zero exit fails the run */
  NSIM_STEP_WAIT_FOR,    /* wait until a process prints a line; timing out fails the run */
  NSIM_STEP_SEND,        /* write a line to a process's stdin */
  NSIM_STEP_KILL,        /* signal a process and wait for it to end */
  NSIM_STEP_RESTART,     /* stop a process and start it again with the same command */
  NSIM_STEP_CUT,         /* drop every packet on a node's uplink */
  NSIM_STEP_RESTORE,     /* undo cut */
  NSIM_STEP_LINK,        /* change a node's uplink conditions */
  NSIM_STEP_SLEEP,       /* wait for a fixed time (prefer wait-for) */
  NSIM_STEP_EXPECT_LINE, /* assertion: a process prints (or never prints) a line within a deadline */
  NSIM_STEP_EXPECT_TCP,  /* assertion: a TCP connection from a host connects / fails */
  NSIM_STEP_EXPECT_UDP_PORTS, /* assertion: external ports seen by echo servers differ / match */
  NSIM_STEP_EXPECT_MAPPING,   /* assertion: a port mapping is (not) installed on a router */
  NSIM_STEP_EXPECT_EXEC,      /* assertion: a command's exit code / output */
  NSIM_STEP_EXPECT_EXIT,      /* assertion: a process exits (with a code) within a deadline */
  NSIM_STEP_EXPECT_CTL,       /* assertion: what `natmesh-ctl status` reports about a servant */
  NSIM_STEP_MEASURE,          /* assertion (the line appears) that reports a time: line - reference */
  NSIM_STEP_RESTART_UPNPD,    /* stop a router's miniupnpd, optionally forget its mappings, start it */
  NSIM_STEP_RESET_CONNECTION, /* abort a process's TCP connections to ADDR:PORT, the process untouched */
  NSIM_STEP_CAPTURE,          /* start tcpdump on the simulated internet, into a bounded file */
  NSIM_STEP_EXPECT_CAPTURE,   /* assertion: what the capture holds (a text in no packet, TLS only) */
  NSIM_STEP_NARRATE,          /* from now on, print a process's matching log lines (narrate.h) */
  NSIM_STEP_SAY,              /* print a heading */
  NSIM_STEP_REDIS,            /* start redis-server on a host (redis.h) */
  NSIM_STEP_SENTINEL,         /* start redis-sentinel on a host, monitoring a <redis> (redis.h) */
  NSIM_STEP_MANAGERS_CONFIG,  /* write a servant's or relay's config naming several managers */
};

/* measure: what the time is counted from. */
enum nsim_from { NSIM_FROM_START, NSIM_FROM_LINE };

enum nsim_tcp_result { NSIM_TCP_CONNECT, NSIM_TCP_FAIL, NSIM_TCP_REFUSED, NSIM_TCP_TIMEOUT };
enum nsim_stream { NSIM_STREAM_OUT = 1, NSIM_STREAM_ERR = 2, NSIM_STREAM_BOTH = 3 };

struct nsim_step {
  enum nsim_step_kind kind;
  int line;
  int is_assert;
  int xfail;             /* assertions: known not to hold yet (expected="fail") */
  const char *because;   /* why, e.g. the issue that will make it hold */
  long at_ms;            /* -1: right after the previous step */
  const char *name;      /* assertion name (defaults to kind and line) */
  char auto_name[48];

  const char *process;   /* process name (start/wait-for/send/kill/restart/expect-line/-exit) */
  const char *host;      /* node the command runs on (start/exec/expect-tcp/-udp/-exec) */
  const char *cmd;
  const char *text;      /* substring to find (wait-for, expect-line, expect-exec contains) */
  const char *regex;     /* POSIX extended regex alternative to text */
  const char *ready;     /* start: wait for this text before going on */
  const char *to;        /* expect-tcp: ADDR:PORT */
  const char *reply;     /* expect-tcp: text the peer must send */
  const char *servers;   /* expect-udp-ports: "ADDR:PORT ADDR:PORT ..." */
  const char *dnat_to;   /* expect-mapping: internal ADDR:PORT */
  const char *manager;   /* expect-ctl: the manager's ADDR:PORT */
  const char *servant;   /* expect-ctl: servant name */
  const char *state;     /* expect-ctl: reachability state the manager reports */
  const char *mapping;   /* expect-ctl: mapping method the manager reports */
  int node;              /* cut/restore/link/expect-mapping: node index */
  long timeout_ms;       /* timeout / within */
  enum nsim_tcp_result tcp_result;
  enum nsim_stream stream;
  int same_ports;        /* expect-udp-ports: 1 same, 0 different */
  int absent;            /* expect-line: the line must NOT appear */
  int since_now;         /* expect-line/wait-for: only lines printed after the step began */
  unsigned count;        /* expect-line/wait-for: at least this many such lines (default 1) */
  int present;           /* expect-mapping */
  int proto_udp;         /* expect-mapping */
  unsigned port, local_port;
  int sig;
  int has_exit;
  int exit_code;
  struct nsim_linkcond cond;
  int exactly;           /* expect-line: exactly count lines, none more during settle_ms */
  long settle_ms;        /* expect-line exactly: how long to keep watching (default 1s) */
  int flush;             /* restart-upnpd: forget the mappings (lease file, nftables chains) */
  const char *dial;      /* expect-ctl: the address peers are told to dial, ADDR or ADDR:PORT */
  enum nsim_from from_kind;  /* measure: from a process's start or from one of its lines */
  const char *from_proc;     /* measure: the reference process (points into from_buf) */
  const char *from_text;     /* measure: from_kind line: text of the reference line */
  char from_buf[NSIM_NAME_MAX + 16];
  const char *unit;      /* measure: the unit as written ("5s"), NULL for none */
  long unit_ms;
  int peer_notices;      /* reset-connection: the RST reaches the peer (default) or is dropped */
  const char *relay;     /* expect-ctl: name of the servant's relay ("NAME" or "!NAME") */
  const char *holder;    /* expect-ctl: name of the manager holding it ("NAME" or "!NAME") */
  int relay_counts;      /* expect-ctl: every relay's clients = the servants listing it */
  const char *after;     /* assertions: the deadline counts from the end of this earlier step */
  int after_step;        /* its index, -1 for none (the deadline counts from the step's start) */
  const char *state_dir; /* expect-ctl: the manager's state folder (natmesh-ctl --state-dir) */
  long max_bytes;        /* capture: the file's bound */
  int keep;              /* capture: keep the file after the run (default: removed with it) */
  const char *absent_text; /* expect-capture: in no captured frame and no TCP stream */
  int tls_only;          /* expect-capture: every TCP payload is TLS 1.3, no other payload */
  unsigned tls_conns;    /* expect-capture: at least this many TLS 1.3 connections */
  const char *tls_between; /* expect-capture: "ADDR-ADDR ...": a TLS 1.3 connection for each */
  const char *prefix;    /* narrate / exec show: what the printed lines start with */
  int show;              /* exec: print the command's output (narrate.h) */
  int ref_step;          /* redis replica-of / sentinel master: that <redis> step; -1 none */
  unsigned quorum;       /* sentinel: sentinels that must agree the master is down */
  const char *file;      /* managers-config: the file's name in the run folder */
  const char *managers;  /* managers-config: "ADDR:PORT=FP ..." (managers.h) */
  const char *root;      /* managers-config: "config" (servant) or "relay" */
};

struct nsim_scenario {
  xmlDoc *doc;
  const char *path;
  const char *name;
  const char *description;
  long timeout_ms;       /* bound on the whole scenario */
  struct nsim_topo topo;
  struct nsim_step *steps;
  int nsteps;
};

/* Reads and checks a netsim file. Errors name the file and line. Returns 0 or a negative
 * code; on failure nothing needs freeing. */
int nsim_scenario_load(const char *path, struct nsim_scenario *sc, char *err, size_t errlen);
/* The same from a buffer; name stands for the file in messages (and must outlive sc). */
int nsim_scenario_load_buf(const char *buf, size_t len, const char *name, struct nsim_scenario *sc,
                           char *err, size_t errlen);
void nsim_scenario_free(struct nsim_scenario *sc);

const char *nsim_step_kind_name(enum nsim_step_kind k);

#endif
