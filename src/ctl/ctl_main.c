/* natmesh-ctl: ask a natmesh manager what the overlay looks like.
 *
 *   natmesh-ctl [--manager HOST:PORT] [--timeout S] [--state-dir MANAGER_STATE_DIR]
 *               [--admin-key KEYFILE --manager-key FP] status [--format table|xml|dot|json]
 *   natmesh-ctl [options as for status] peers NAME [--format table|json]
 *   natmesh-ctl [--state-dir DIR] keygen
 *
 * The session is TLS 1.3 with an operator's key (ctl_key.h says which), pinning the
 * manager's. Commands live in a table (one entry per subcommand, each with its own runner)
 * so later ones slot in without touching the option parsing. Exit codes: 0 success,
 * 1 usage (or an unusable key), 2 manager unreachable, 3 the manager's answer was unusable,
 * 4 what answered presented another key than the manager's. */
#include "ctl_fetch.h"
#include "ctl_key.h"
#include "ctl_peers.h"
#include "ctl_render.h"

#include "nm_log.h"
#include "nm_status.h"
#include "nm_status_json.h"
#include "nm_proto.h"
#include "nm_util.h"
#include "nm_xml.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NMCTL_DEFAULT_MANAGER "127.0.0.1:85"
#define NMCTL_DEFAULT_PORT 85
#define NMCTL_DEFAULT_TIMEOUT_MS 5000

enum {
  NMCTL_EXIT_OK = 0,
  NMCTL_EXIT_USAGE = 1,
  NMCTL_EXIT_UNREACHABLE = 2,
  NMCTL_EXIT_BAD_ANSWER = 3,
  NMCTL_EXIT_WRONG_KEY = 4,
};

typedef enum { NMCTL_FMT_TABLE, NMCTL_FMT_XML, NMCTL_FMT_DOT, NMCTL_FMT_JSON } nmctl_format;

typedef struct {
  const char *manager; /* HOST:PORT as given */
  char host[256];
  uint16_t port;
  unsigned timeout_ms;
  nmctl_format format;
  nmctl_auth_opts auth;
  const char *arg; /* the command's argument (peers NAME), NULL when none */
} nmctl_opts;

typedef struct {
  const char *name;
  const char *summary;
  int (*run)(const nmctl_opts *o);
  const char *arg;      /* the argument it takes ("NAME"), NULL for none */
  unsigned formats;     /* the --format values it accepts, 1 << nmctl_format */
} nmctl_command;

static int nmctl_cmd_status(const nmctl_opts *o);
static int nmctl_cmd_keygen(const nmctl_opts *o);
static int nmctl_cmd_peers(const nmctl_opts *o);

#define NMCTL_F(f) (1u << (f))
static const nmctl_command nmctl_commands[] = {
    {"status", "show the servants the manager knows", nmctl_cmd_status, NULL,
     NMCTL_F(NMCTL_FMT_TABLE) | NMCTL_F(NMCTL_FMT_XML) | NMCTL_F(NMCTL_FMT_DOT) | NMCTL_F(NMCTL_FMT_JSON)},
    {"peers", "how servant NAME and each other servant get each other's lines, and why\n"
     "             NAME pulls from a relay (complaints from whom, how recently)",
     nmctl_cmd_peers, "NAME", NMCTL_F(NMCTL_FMT_TABLE) | NMCTL_F(NMCTL_FMT_JSON)},
    {"keygen", "make an operator key in --state-dir DIR and print its fingerprint", nmctl_cmd_keygen, NULL,
     NMCTL_F(NMCTL_FMT_TABLE)},
};

static void nmctl_usage(FILE *out) {
  fprintf(out,
          "usage: natmesh-ctl [--manager HOST:PORT] [--timeout S] [--state-dir DIR]\n"
          "                   [--admin-key KEYFILE --manager-key FP] COMMAND [--format FORMAT]\n"
          "\n"
          "Asks a natmesh connection manager about the overlay, over TLS 1.3 with an\n"
          "operator's key: on the manager's machine, as the manager's user, its own key\n"
          "(from its state directory); from elsewhere, a key the manager lists with\n"
          "--admin-key. natmesh-ctl refuses a manager presenting another key than the one\n"
          "it expects.\n"
          "\n"
          "commands:\n");
  for (size_t i = 0; i < sizeof nmctl_commands / sizeof *nmctl_commands; i++) {
    char head[32];
    snprintf(head, sizeof head, "%s%s%s", nmctl_commands[i].name, nmctl_commands[i].arg ? " " : "",
             nmctl_commands[i].arg ? nmctl_commands[i].arg : "");
    fprintf(out, "  %-10s %s\n", head, nmctl_commands[i].summary);
  }
  fprintf(out,
          "\n"
          "options:\n"
          "  --manager HOST:PORT  the manager to ask (default $NATMESH_MANAGER, else %s;\n"
          "                       the port defaults to %d, IPv6 as [ADDR]:PORT)\n"
          "  --timeout S          give up after S seconds (default %d)\n"
          "  --state-dir DIR      status: the manager's state directory, whose key.pem we\n"
          "                       use and whose owner we expect (default: the manager's\n"
          "                       default state directory); keygen: where to keep the key\n"
          "                       (default: natmesh-ctl's own state directory)\n"
          "  --admin-key KEYFILE  prove this key (a key.pem the manager lists with its\n"
          "                       --admin-key FP) instead of the manager's own\n"
          "  --manager-key FP     the manager's fingerprint (natmesh-manager --state-dir D\n"
          "                       fingerprint); needed with --admin-key\n"
          "  --format FORMAT      table (default), xml (the status document), json\n"
          "                       (docs/status-json.md; indented on a terminal, one line\n"
          "                       otherwise), or dot (Graphviz: natmesh-ctl status --format\n"
          "                       dot | dot -Tpng -o overlay.png); peers: table or json\n"
          "  -h, --help           this text\n"
          "  --version            print the version and exit\n"
          "\n"
          "exit status: 0 success, 1 usage error or unusable key, 2 manager unreachable,\n"
          "3 unusable answer (or the manager refused our key), 4 another key than the\n"
          "manager's answered\n",
          NMCTL_DEFAULT_MANAGER, NMCTL_DEFAULT_PORT, NMCTL_DEFAULT_TIMEOUT_MS / 1000);
}

static int nmctl_cmd_keygen(const nmctl_opts *o) {
  nm_fingerprint fp;
  char dir[4096], err[600];
  if (nmctl_keygen(o->auth.state_dir, &fp, dir, sizeof dir, err, sizeof err) < 0) {
    fprintf(stderr, "natmesh-ctl: keygen: %s\n", err);
    return NMCTL_EXIT_USAGE;
  }
  printf("%s\n", nm_fingerprint_str(&fp));
  if (fflush(stdout) != 0) return NMCTL_EXIT_USAGE;
  fprintf(stderr,
          "natmesh-ctl: the key is %s/%s. List its fingerprint on the manager (natmesh-manager\n"
          "--admin-key %s), then: natmesh-ctl --admin-key %s/%s --manager-key MANAGER_FP status\n",
          dir, NM_IDENTITY_KEY_FILE, nm_fingerprint_str(&fp), dir, NM_IDENTITY_KEY_FILE);
  return NMCTL_EXIT_OK;
}

/* Asks the manager for its status and parses it into st (and *doc, for --format xml).
 * Returns NMCTL_EXIT_OK or the exit code, having said why on stderr. */
static int nmctl_fetch_status(const nmctl_opts *o, nm_status *st, xmlDoc **doc) {
  nm_identity id;
  nm_fingerprint manager_fp;
  char err[700];
  if (nmctl_auth_resolve(&o->auth, &id, &manager_fp, err, sizeof err) < 0) {
    fprintf(stderr, "natmesh-ctl: %s\n", err);
    return NMCTL_EXIT_USAGE;
  }
  nmctl_fetch f;
  memset(&f, 0, sizeof f);
  f.host = o->host;
  f.port = o->port;
  f.timeout_ms = o->timeout_ms;
  f.request_type = NM_MSG_STATUS_REQUEST;
  f.reply_type = NM_MSG_STATUS;
  f.id = &id;
  f.manager_fp = &manager_fp;
  nmctl_fetch_result r = nmctl_fetch_run(&f);
  nm_identity_close(&id);
  if (r != NMCTL_FETCH_OK) {
    if (r == NMCTL_FETCH_KEY) {
      fprintf(stderr, "natmesh-ctl: manager at %s %s: refusing it\n", o->manager, f.reason);
      return NMCTL_EXIT_WRONG_KEY;
    }
    if (r == NMCTL_FETCH_UNREACHABLE)
      fprintf(stderr, "natmesh-ctl: cannot reach manager at %s: %s\n", o->manager, f.reason);
    else
      fprintf(stderr, "natmesh-ctl: no status from manager at %s: %s\n", o->manager, f.reason);
    return r == NMCTL_FETCH_UNREACHABLE ? NMCTL_EXIT_UNREACHABLE : NMCTL_EXIT_BAD_ANSWER;
  }
  nm_status_init(st);
  /* Pages put together may pass one document's 1 MiB (each page was at most a frame). */
  int rc = nm_status_parse_max(f.reply, f.reply_len, NM_STATUS_DOC_MAX, st, doc, err, sizeof err);
  free(f.reply);
  if (rc < 0) {
    /* Field errors name their message ("status: servant ...: invalid port"); the sentence
     * already says which message it was. */
    const char *why = strncmp(err, "status: ", 8) == 0 ? err + 8 : err;
    fprintf(stderr, "natmesh-ctl: the manager at %s sent an unusable status: %s\n", o->manager,
            why);
    return NMCTL_EXIT_BAD_ANSWER;
  }
  return NMCTL_EXIT_OK;
}

/* JSON for people on a terminal is indented; for scripts it is one line. */
static int nmctl_json_pretty(void) { return isatty(STDOUT_FILENO); }

static int nmctl_print_json(int rc, char *json) {
  if (rc == 0 && (fputs(json, stdout) == EOF || fputc('\n', stdout) == EOF)) rc = -1;
  free(json);
  return rc;
}

static int nmctl_finish_output(int rc) {
  if (fflush(stdout) != 0 || rc < 0) {
    fprintf(stderr, "natmesh-ctl: cannot write the output\n");
    return NMCTL_EXIT_BAD_ANSWER;
  }
  return NMCTL_EXIT_OK;
}

static int nmctl_cmd_status(const nmctl_opts *o) {
  nm_status st;
  xmlDoc *doc = NULL;
  int rc = nmctl_fetch_status(o, &st, &doc);
  if (rc != NMCTL_EXIT_OK) return rc;
  char *json = NULL;
  switch (o->format) {
  case NMCTL_FMT_TABLE: rc = nmctl_render_table(stdout, &st, o->manager); break;
  case NMCTL_FMT_XML: rc = nmctl_render_xml(stdout, doc); break;
  case NMCTL_FMT_DOT: rc = nmctl_render_dot(stdout, &st, o->manager); break;
  case NMCTL_FMT_JSON:
    rc = nm_status_to_json(&st, nmctl_json_pretty(), &json, NULL);
    rc = nmctl_print_json(rc, json);
    break;
  }
  xmlFreeDoc(doc);
  nm_status_close(&st);
  return nmctl_finish_output(rc);
}

static int nmctl_cmd_peers(const nmctl_opts *o) {
  nm_status st;
  int rc = nmctl_fetch_status(o, &st, NULL);
  if (rc != NMCTL_EXIT_OK) return rc;
  nmctl_peers pv;
  rc = nmctl_peers_build(&st, o->arg, &pv);
  if (rc == -ENOENT) {
    char name[NM_STATUS_TEXT_MAX + 1];
    nmctl_sanitize(name, sizeof name, o->arg);
    fprintf(stderr, "natmesh-ctl: the manager at %s lists no servant named \"%s\" (natmesh-ctl status lists them)\n",
            o->manager, name);
    nm_status_close(&st);
    return NMCTL_EXIT_BAD_ANSWER;
  }
  if (rc == 0) {
    char *json = NULL;
    if (o->format == NMCTL_FMT_JSON) {
      rc = nmctl_peers_to_json(&pv, nmctl_json_pretty(), &json);
      rc = nmctl_print_json(rc, json);
    } else
      rc = nmctl_render_peers(stdout, &pv);
  }
  nmctl_peers_free(&pv);
  nm_status_close(&st);
  return nmctl_finish_output(rc);
}

static int nmctl_parse_format(const char *v, nmctl_format *out) {
  if (strcmp(v, "table") == 0) *out = NMCTL_FMT_TABLE;
  else if (strcmp(v, "xml") == 0) *out = NMCTL_FMT_XML;
  else if (strcmp(v, "dot") == 0) *out = NMCTL_FMT_DOT;
  else if (strcmp(v, "json") == 0) *out = NMCTL_FMT_JSON;
  else return -1;
  return 0;
}

/* "--opt VALUE" or "--opt=VALUE"; returns the value or NULL when this argument is not opt. */
static const char *nmctl_optval(int argc, char **argv, int *i, const char *opt, int *missing) {
  size_t n = strlen(opt);
  if (strncmp(argv[*i], opt, n) != 0) return NULL;
  if (argv[*i][n] == '=') return argv[*i] + n + 1;
  if (argv[*i][n] != 0) return NULL;
  if (*i + 1 >= argc) {
    *missing = 1;
    return NULL;
  }
  return argv[++*i];
}

int main(int argc, char **argv) {
  /* A manager that goes away mid-write must cost us an error, not the process. */
  signal(SIGPIPE, SIG_IGN);
  nm_log_init("natmesh-ctl", NM_LOG_WARN);
  nm_xml_init();
  nmctl_opts o;
  memset(&o, 0, sizeof o);
  o.manager = getenv("NATMESH_MANAGER");
  if (!o.manager || !*o.manager) o.manager = NMCTL_DEFAULT_MANAGER;
  o.timeout_ms = NMCTL_DEFAULT_TIMEOUT_MS;
  const nmctl_command *cmd = NULL;

  /* Options may come before or after the command. */
  for (int i = 1; i < argc; i++) {
    int missing = 0;
    const char *v;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0 ||
        strcmp(argv[i], "help") == 0) {
      nmctl_usage(stdout);
      return NMCTL_EXIT_OK;
    } else if (strcmp(argv[i], "--version") == 0) {
      puts("natmesh-ctl " NATMESH_VERSION);
      return NMCTL_EXIT_OK;
    } else if ((v = nmctl_optval(argc, argv, &i, "--manager", &missing))) {
      o.manager = v;
    } else if ((v = nmctl_optval(argc, argv, &i, "--timeout", &missing))) {
      char *end;
      double s = strtod(v, &end);
      if (*end || !(s > 0 && s <= 600)) {
        fprintf(stderr, "natmesh-ctl: --timeout wants seconds between 0 and 600, got \"%s\"\n", v);
        return NMCTL_EXIT_USAGE;
      }
      o.timeout_ms = (unsigned)(s * 1000);
      if (!o.timeout_ms) o.timeout_ms = 1;
    } else if ((v = nmctl_optval(argc, argv, &i, "--state-dir", &missing))) {
      o.auth.state_dir = v;
    } else if ((v = nmctl_optval(argc, argv, &i, "--admin-key", &missing))) {
      o.auth.admin_key = v;
    } else if ((v = nmctl_optval(argc, argv, &i, "--manager-key", &missing))) {
      o.auth.manager_key = v;
    } else if ((v = nmctl_optval(argc, argv, &i, "--format", &missing))) {
      if (nmctl_parse_format(v, &o.format) < 0) {
        fprintf(stderr, "natmesh-ctl: unknown format \"%s\" (table, xml, json or dot)\n", v);
        return NMCTL_EXIT_USAGE;
      }
    } else if (missing) {
      fprintf(stderr, "natmesh-ctl: %s needs a value\n", argv[i]);
      return NMCTL_EXIT_USAGE;
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "natmesh-ctl: unknown option %s (try --help)\n", argv[i]);
      return NMCTL_EXIT_USAGE;
    } else if (!cmd) {
      for (size_t c = 0; c < sizeof nmctl_commands / sizeof *nmctl_commands; c++)
        if (strcmp(argv[i], nmctl_commands[c].name) == 0) cmd = &nmctl_commands[c];
      if (!cmd) {
        fprintf(stderr, "natmesh-ctl: unknown command \"%s\" (try --help)\n", argv[i]);
        return NMCTL_EXIT_USAGE;
      }
    } else if (cmd->arg && !o.arg) {
      o.arg = argv[i];
    } else {
      fprintf(stderr, "natmesh-ctl: unexpected argument \"%s\"\n", argv[i]);
      return NMCTL_EXIT_USAGE;
    }
  }
  if (!cmd) {
    nmctl_usage(stderr);
    return NMCTL_EXIT_USAGE;
  }
  if (cmd->arg && !o.arg) {
    fprintf(stderr, "natmesh-ctl: %s needs a %s (try --help)\n", cmd->name, cmd->arg);
    return NMCTL_EXIT_USAGE;
  }
  if (!(cmd->formats & NMCTL_F(o.format))) {
    fprintf(stderr, "natmesh-ctl: %s cannot be shown in that --format (try --help)\n", cmd->name);
    return NMCTL_EXIT_USAGE;
  }
  if (nm_parse_hostport(o.manager, o.host, sizeof o.host, &o.port, NMCTL_DEFAULT_PORT) < 0) {
    fprintf(stderr, "natmesh-ctl: cannot understand manager address \"%s\" (want HOST:PORT)\n",
            o.manager);
    return NMCTL_EXIT_USAGE;
  }
  int rc = cmd->run(&o);
  xmlCleanupParser();
  return rc;
}
