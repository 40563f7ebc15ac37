/* natmesh-netsim: builds NAT and firewall topologies in network namespaces, runs the real
 * natmesh programs (and miniupnpd, upnpc, natpmpc) inside them, checks what happens and
 * tears everything down. See docs/netsim.md. */
#include "build.h"
#include "graph.h"
#include "nsops.h"
#include "matrix.h"
#include "probe.h"
#include "proc.h"
#include "report.h"
#include "run.h"
#include "runner.h"
#include "scenario.h"
#include "state.h"
#include "util.h"

#include "nm_xml.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define NSIM_DEFAULT_BASE "/tmp/natmesh-netsim"

/* Exit codes: 0 all assertions held, 1 some failed, 2 usage or file error, 3 the topology
 * could not be built, 130 interrupted. */
enum { NSIM_EXIT_OK = 0, NSIM_EXIT_FAILED = 1, NSIM_EXIT_USAGE = 2, NSIM_EXIT_SETUP = 3,
       NSIM_EXIT_INTERRUPTED = 130 };

struct nsim_opts {
  const char *base;
  const char *run_id;
  const char *bindir;
  int verbose;
  const char *file;
  char **rest;            /* exec: HOST -- CMD... */
  int nrest;
};

static void nsim__usage(FILE *out) {
  fprintf(out,
          "usage: natmesh-netsim [options] COMMAND ...\n"
          "  run FILE            build the topology, run the scenario, tear down; exit 0 only\n"
          "                      if every assertion held\n"
          "  up FILE             build the topology (and its routers' daemons) and leave it\n"
          "  exec HOST -- CMD    run CMD inside HOST of the topology left by `up`\n"
          "  down                remove the topology left by `up` (only that run's)\n"
          "  graph FILE          print the topology as Graphviz DOT\n"
          "  check FILE          read and check FILE, print its address plan\n"
          "  matrix [--behaviours LIST] [--out DIR] [--hold SECONDS]\n"
          "                      two natmesh servants behind every pair of router behaviours:\n"
          "                      a grid of how they connect (also DIR/matrix.md, .json)\n"
          "options:\n"
          "  --dir DIR           folder for run folders (default $NATMESH_NETSIM_DIR or "
          NSIM_DEFAULT_BASE ")\n"
          "  --bindir DIR        where ${bin:NAME} finds programs (default: the folder of\n"
          "                      natmesh-netsim itself, a build's bin/ or the installed bin)\n"
          "  --run ID            the run exec/down act on (default: the last `up`)\n"
          "  -v, --verbose       more progress output\n"
          "  -h, --help          this text\n"
          "  --version           print the version and exit\n");
}

static void nsim__on_signal(int sig) { nsim_stop_signal = sig; }

static void nsim__signals(void) {
  /* No SA_RESTART: a signal must cut short poll() and nanosleep() so waits notice it. */
  struct sigaction sa = {.sa_handler = nsim__on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
}

static int nsim__need_root(void) {
  if (geteuid() == 0) return 0;
  fprintf(stderr, "natmesh-netsim: creating network namespaces needs root\n");
  return -EPERM;
}

static int nsim__load(const char *file, struct nsim_scenario *sc) {
  char err[512];
  if (!file) {
    fprintf(stderr, "natmesh-netsim: which file?\n");
    return -EINVAL;
  }
  int rc = nsim_scenario_load(file, sc, err, sizeof err);
  if (rc < 0) fprintf(stderr, "natmesh-netsim: %s\n", err);
  return rc;
}

/* Tools the topology needs, checked before anything is created. */
static int nsim__preflight(const struct nsim_scenario *sc) {
  const char *tools[] = {"ip", "nft", "tc", NULL, NULL};
  for (int i = 0; i < sc->topo.nnodes; i++)
    if (sc->topo.nodes[i].is_router && nsim_router_kind_maps(sc->topo.nodes[i].kind))
      tools[3] = "miniupnpd";
  for (int i = 0; tools[i]; i++) {
    char path[PATH_MAX];
    if (nsim_which(tools[i], path, sizeof path) < 0) {
      fprintf(stderr, "natmesh-netsim: %s not found (see scripts/setup.sh)\n", tools[i]);
      return -ENOENT;
    }
  }
  return 0;
}

static int nsim__copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "re");
  if (!in) return -errno;
  char *buf = malloc(NM_XML_MAX_BYTES);
  size_t n = buf ? fread(buf, 1, NM_XML_MAX_BYTES, in) : 0;
  fclose(in);
  int rc = buf ? nsim_write_file(to, buf, n) : -ENOMEM;
  free(buf);
  return rc;
}

static void nsim__run_init(struct nsim_run *r, const struct nsim_opts *o, struct nsim_scenario *sc) {
  memset(r, 0, sizeof *r);
  r->sc = sc;
  r->watchdog_fd = -1;
  r->verbose = o->verbose;
  ssize_t n = readlink("/proc/self/exe", r->self, sizeof r->self - 1);
  r->self[n > 0 ? n : 0] = 0;
  /* All programs sit in one folder (a build's bin/, or where they were installed). */
  if (o->bindir) {
    if (!realpath(o->bindir, r->bindir)) snprintf(r->bindir, sizeof r->bindir, "%s", o->bindir);
  } else {
    memcpy(r->bindir, r->self, sizeof r->bindir);
    char *slash = strrchr(r->bindir, '/');
    if (slash) *slash = 0;
  }
}

/* Shared by run and up: the scenario loaded and checked (needs root, tools present), and a
 * run for it in *rp. Returns NSIM_EXIT_OK, or the exit code with nothing left to free. */
static int nsim__prepare(const struct nsim_opts *o, struct nsim_scenario *sc, struct nsim_run **rp) {
  if (nsim__load(o->file, sc) < 0) return NSIM_EXIT_USAGE;
  if (nsim__need_root() < 0 || nsim__preflight(sc) < 0) {
    nsim_scenario_free(sc);
    return NSIM_EXIT_USAGE;
  }
  *rp = malloc(sizeof **rp);
  if (!*rp) {
    nsim_scenario_free(sc);
    return NSIM_EXIT_SETUP;
  }
  nsim__run_init(*rp, o, sc);
  return NSIM_EXIT_OK;
}

/* Shared by run and up: run folder, watchdog, topology. */
static int nsim__bring_up(struct nsim_run *r, const struct nsim_opts *o) {
  int rc = nsim_state_create(r, o->base);
  if (rc < 0) {
    fprintf(stderr, "natmesh-netsim: cannot create a run folder in %s: %s\n", o->base, strerror(-rc));
    return rc;
  }
  char copy[PATH_MAX];
  if (nsim_fmt(copy, sizeof copy, "%s/scenario.xml", r->dir) >= 0) nsim__copy_file(o->file, copy);
  if ((rc = nsim_watchdog_start(r)) < 0) {
    fprintf(stderr, "natmesh-netsim: cannot start the watchdog: %s\n", strerror(-rc));
    return rc;
  }
  r->t0_ms = nsim_now_ms();
  nsim_log(r, "run %s: namespaces %s*, run folder %s", r->id, r->prefix, r->dir);
  char err[1024] = "";
  rc = nsim_build_up(r, err, sizeof err);
  if (rc == 0 && nsim_stop_signal) rc = -EINTR;
  if (rc < 0) {
    nsim_log(r, "building the topology failed: %s", nsim_stop_signal ? "interrupted" : err);
    return rc;
  }
  nsim_log(r, "topology up: %d nodes", r->sc->topo.nnodes);
  return 0;
}

static int nsim__finish(struct nsim_run *r) {
  int left = nsim_build_teardown(r);
  if (left == 0) nsim_watchdog_release(r);
  /* else: closing the pipe without detaching lets the watchdog try once more */
  else if (r->watchdog_fd >= 0) close(r->watchdog_fd), r->watchdog_fd = -1;
  nsim_proc_free_all(r);
  nsim_log(r, left == 0 ? "torn down: no namespace or process of run %s is left"
                        : "teardown of run %s left namespaces behind", r->id);
  return left;
}

static int nsim_cmd_run(struct nsim_opts *o) {
  struct nsim_scenario sc;
  struct nsim_run *r;
  int code = nsim__prepare(o, &sc, &r);
  if (code != NSIM_EXIT_OK) return code;
  struct nsim_report rep = {0};
  int rc = nsim__bring_up(r, o);
  if (rc == 0) nsim_runner_run(r, &rep);
  else if (r->dir[0]) nsim_report_add(&rep, "topology", 0, 0, NSIM_FAIL, 0, "%s",
                                      rc == -EINTR ? "interrupted" : "could not be built (see above)");
  if (nsim_stop_signal) rep.interrupted = 1;
  int left = r->dir[0] ? nsim__finish(r) : 0;
  if (left) nsim_report_add(&rep, "teardown", 0, 0, NSIM_FAIL, 0, "%d namespace(s) left", left);
  int failures = 0;
  if (r->dir[0]) {
    failures = nsim_report_print(&rep, stdout, sc.name, r->id, r->dir);
    char path[PATH_MAX];
    FILE *f = nsim_fmt(path, sizeof path, "%s/report.txt", r->dir) >= 0 ? fopen(path, "we") : NULL;
    if (f) nsim_report_print(&rep, f, sc.name, r->id, r->dir), fclose(f);
  }
  code = rep.interrupted ? NSIM_EXIT_INTERRUPTED
         : rc < 0       ? NSIM_EXIT_SETUP
         : failures     ? NSIM_EXIT_FAILED
                        : NSIM_EXIT_OK;
  nsim_report_free(&rep);
  free(r);
  nsim_scenario_free(&sc);
  return code;
}

static int nsim_cmd_up(struct nsim_opts *o) {
  struct nsim_scenario sc;
  struct nsim_run *r;
  int code = nsim__prepare(o, &sc, &r);
  if (code != NSIM_EXIT_OK) return code;
  r->persist = 1; /* router daemons must outlive this process */
  int rc = nsim__bring_up(r, o);
  if (rc < 0) {
    if (r->dir[0]) nsim__finish(r);
    code = rc == -EINTR ? NSIM_EXIT_INTERRUPTED : NSIM_EXIT_SETUP;
  } else {
    nsim_state_set_current(o->base, r->id);
    nsim_watchdog_release(r); /* the topology stays on purpose */
    printf("run %s is up (folder %s)\n", r->id, r->dir);
    for (int i = 0; i < sc.topo.nnodes; i++) {
      char a[16];
      const struct nsim_node *n = &sc.topo.nodes[i];
      char a6[NSIM_IP6_STRLEN];
      printf("  %-16s %-12s %s%s%s\n", n->name, nsim_family_has4(n->family) ? nsim_ip_str(n->addr, a) : "-",
             nsim_run_ns(r, i), nsim_family_has6(n->family) ? "  " : "",
             nsim_family_has6(n->family) ? nsim_ip6_str(n->addr6, a6) : "");
    }
    printf("try:  natmesh-netsim exec %s -- ip addr\nthen: natmesh-netsim down\n",
           sc.topo.nodes[0].name);
    for (int i = 0; i < r->nprocs; i++)
      if (r->procs[i].stdin_fd >= 0) close(r->procs[i].stdin_fd), r->procs[i].stdin_fd = -1;
    nsim_proc_free_all(r);
  }
  free(r);
  nsim_scenario_free(&sc);
  return code;
}

static int nsim__resolve_run(const struct nsim_opts *o, char *dir, size_t len) {
  char id[16];
  if (o->run_id) snprintf(id, sizeof id, "%s", o->run_id);
  else if (nsim_state_current(o->base, id, sizeof id) < 0) {
    fprintf(stderr, "natmesh-netsim: no run is up (in %s); give --run ID\n", o->base);
    return -ENOENT;
  }
  for (const char *p = id; *p; p++)
    if (!strchr("0123456789abcdef", *p) || strlen(id) != NSIM_ID_LEN) {
      fprintf(stderr, "natmesh-netsim: bad run id %s\n", id);
      return -EINVAL;
    }
  return nsim_fmt(dir, len, "%s/%s", o->base, id) < 0 ? -ENAMETOOLONG : 0;
}

static int nsim_cmd_exec(struct nsim_opts *o) {
  char dir[PATH_MAX], ns[64];
  if (o->nrest < 3 || strcmp(o->rest[1], "--")) {
    fprintf(stderr, "usage: natmesh-netsim exec HOST -- CMD [ARGS...]\n");
    return NSIM_EXIT_USAGE;
  }
  if (nsim__need_root() < 0 || nsim__resolve_run(o, dir, sizeof dir) < 0) return NSIM_EXIT_USAGE;
  if (nsim_state_find_ns(dir, o->rest[0], ns, sizeof ns) < 0) {
    fprintf(stderr, "natmesh-netsim: run %s has no node %s\n", dir, o->rest[0]);
    return NSIM_EXIT_USAGE;
  }
  int rc = nsim_ns_enter(ns);
  if (rc < 0) {
    fprintf(stderr, "natmesh-netsim: cannot enter %s: %s\n", ns, strerror(-rc));
    return NSIM_EXIT_SETUP;
  }
  execvp(o->rest[2], o->rest + 2);
  fprintf(stderr, "natmesh-netsim: %s: %s\n", o->rest[2], strerror(errno));
  return 127;
}

static int nsim_cmd_down(struct nsim_opts *o) {
  char dir[PATH_MAX];
  if (nsim__need_root() < 0 || nsim__resolve_run(o, dir, sizeof dir) < 0) return NSIM_EXIT_USAGE;
  int left = nsim_cleanup_dir(dir, 1);
  if (left < 0) return NSIM_EXIT_USAGE;
  nsim_state_clear_current(o->base, strrchr(dir, '/') + 1);
  printf(left ? "run %s: %d namespace(s) could not be removed\n" : "run %s is down%.0d\n",
         strrchr(dir, '/') + 1, left);
  return left ? NSIM_EXIT_SETUP : NSIM_EXIT_OK;
}

static int nsim_cmd_graph(struct nsim_opts *o) {
  struct nsim_scenario sc;
  if (nsim__load(o->file, &sc) < 0) return NSIM_EXIT_USAGE;
  nsim_graph_write(&sc.topo, sc.name, stdout);
  nsim_scenario_free(&sc);
  return NSIM_EXIT_OK;
}

static int nsim_cmd_check(struct nsim_opts *o) {
  struct nsim_scenario sc;
  if (nsim__load(o->file, &sc) < 0) return NSIM_EXIT_USAGE;
  char a[16], b[16], a6[NSIM_IP6_STRLEN];
  const struct nsim_topo *t = &sc.topo;
  printf("%s: ok, %d nodes, %d steps\n  internet %s/%u", sc.name, t->nnodes, sc.nsteps,
         nsim_ip_str(t->inet_net, a), t->inet_plen);
  if (t->has_v6) printf(", internet6 %s/64 (core %s)", nsim_ip6_str(t->inet6_net, a6),
                        nsim_ip6_str(t->inet6_core, (char[NSIM_IP6_STRLEN]){0}));
  printf("\n");
  for (int i = 0; i < t->nnodes; i++) {
    const struct nsim_node *n = &t->nodes[i];
    int has4 = nsim_family_has4(n->family), has6 = nsim_family_has6(n->family);
    printf("  %-16s %-9s %-15s behind %s", n->name, n->is_router ? nsim_router_kind_name(n->kind) : "host",
           has4 ? nsim_ip_str(n->addr, a) : "-", n->parent < 0 ? "internet" : t->nodes[n->parent].name);
    if (n->is_router && has4) printf(", LAN %s/%u", nsim_ip_str(n->lan_net, b), n->lan_plen);
    if (t->has_v6) printf(", %s", nsim_family_name(n->family));
    if (has6) printf(", IPv6 %s", nsim_ip6_str(n->addr6, a6));
    if (n->is_router && has6) printf(", LAN6 %s/64", nsim_ip6_str(n->lan6_net, a6));
    printf("\n");
  }
  nsim_scenario_free(&sc);
  return NSIM_EXIT_OK;
}

static int nsim_cmd_matrix(struct nsim_opts *o) {
  static char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return fprintf(stderr, "natmesh-netsim: cannot find my own program\n"), NSIM_EXIT_USAGE;
  self[n] = 0;
  struct nsim_matrix_opts mo = {.self = self, .base = o->base, .bindir = o->bindir,
                                .out = "netsim-matrix", .hold_s = 12};
  for (int i = 0; i < o->nrest; i++) {
    const char *a = o->rest[i];
    if (!strcmp(a, "--behaviours") && i + 1 < o->nrest) mo.behaviours = o->rest[++i];
    else if (!strcmp(a, "--out") && i + 1 < o->nrest) mo.out = o->rest[++i];
    else if (!strcmp(a, "--hold") && i + 1 < o->nrest) {
      char *end;
      mo.hold_s = strtol(o->rest[++i], &end, 10);
      if (*end || mo.hold_s < 1 || mo.hold_s > 600)
        return fprintf(stderr, "natmesh-netsim matrix: --hold: 1..600 seconds\n"), NSIM_EXIT_USAGE;
    } else {
      fprintf(stderr, "natmesh-netsim matrix: unexpected argument %s\n", a);
      return NSIM_EXIT_USAGE;
    }
  }
  return nsim_matrix(&mo);
}

struct nsim_command {
  const char *name;
  int (*fn)(struct nsim_opts *o);
  int wants_file;
};

static const struct nsim_command nsim__commands[] = {
    {"run", nsim_cmd_run, 1},     {"up", nsim_cmd_up, 1},       {"down", nsim_cmd_down, 0},
    {"exec", nsim_cmd_exec, 0},   {"graph", nsim_cmd_graph, 1}, {"check", nsim_cmd_check, 1},
    {"matrix", nsim_cmd_matrix, 0},
};

int main(int argc, char **argv) {
  /* Hidden helper: runs inside scenario hosts, so it must not touch anything else. */
  if (argc >= 2 && !strcmp(argv[1], "echo-server")) return nsim_echo_server_main(argc - 1, argv + 1);

  struct nsim_opts o = {0};
  o.base = getenv("NATMESH_NETSIM_DIR");
  if (!o.base || !*o.base) o.base = NSIM_DEFAULT_BASE;
  const struct nsim_command *cmd = NULL;
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--dir") && i + 1 < argc) o.base = argv[++i];
    else if (!strcmp(a, "--bindir") && i + 1 < argc) {
      if (o.bindir) {
        fprintf(stderr, "natmesh-netsim: --bindir names one folder, where all programs are\n");
        return NSIM_EXIT_USAGE;
      }
      o.bindir = argv[++i];
    } else if (!strcmp(a, "--run") && i + 1 < argc) o.run_id = argv[++i];
    else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) o.verbose = 1;
    else if (!strcmp(a, "-h") || !strcmp(a, "--help")) return nsim__usage(stdout), 0;
    else if (!strcmp(a, "--version")) return printf("natmesh-netsim %s\n", NATMESH_VERSION), 0;
    else if (a[0] == '-' && !(cmd && !strcmp(cmd->name, "exec"))) {
      fprintf(stderr, "natmesh-netsim: unknown option %s\n", a);
      return nsim__usage(stderr), NSIM_EXIT_USAGE;
    } else if (!cmd) {
      for (size_t k = 0; k < NSIM_ARRAY_LEN(nsim__commands); k++)
        if (!strcmp(a, nsim__commands[k].name)) cmd = &nsim__commands[k];
      if (!cmd) {
        fprintf(stderr, "natmesh-netsim: unknown command %s\n", a);
        return nsim__usage(stderr), NSIM_EXIT_USAGE;
      }
      if (!strcmp(cmd->name, "exec") || !strcmp(cmd->name, "matrix")) {
        o.rest = argv + i + 1;
        o.nrest = argc - i - 1;
        break;
      }
    } else if (cmd->wants_file && !o.file) o.file = a;
    else {
      fprintf(stderr, "natmesh-netsim: unexpected argument %s\n", a);
      return NSIM_EXIT_USAGE;
    }
  }
  if (!cmd) return nsim__usage(stderr), NSIM_EXIT_USAGE;
  if (nsim_ns_guard_init() < 0) {
    fprintf(stderr, "natmesh-netsim: cannot identify the host's network namespace\n");
    return NSIM_EXIT_SETUP;
  }
  nm_xml_init();
  nsim__signals();
  /* Processes that daemonize still end up as our children, so we can reap and stop them. */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  return cmd->fn(&o);
}
