/* natmesh-servant: a peer of the overlay with a human at stdin. Options and config, and
 * the stdin commands; the rest is the natmesh_peer library. */
#include "servant.h"
#include "nm_config.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_util.h"
#include "nm_xml.h"

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define F(path, type, min, max, field) \
  { path, type, min, max, offsetof(sv_config, field), sizeof(((sv_config *)0)->field) }
static const nm_cfg_field sv_config_fields[] = {
    F("connectionmgr", NM_CFG_STRING, 0, 0, manager_host),
    F("port", NM_CFG_UINT, 1, 65535, manager_port),
    F("bans", NM_CFG_BANS, 0, 0, bans),
    F("name", NM_CFG_STRING, 0, 0, name),
    F("listen", NM_CFG_STRING, 0, 0, listen),
    F("listen-port", NM_CFG_UINT, 0, 65535, port),
    F("relay-clients", NM_CFG_UINT, 0, 256, max_clients),
    F("nat/upnp", NM_CFG_BOOL, 0, 0, nat_upnp),
    F("nat/natpmp", NM_CFG_BOOL, 0, 0, nat_natpmp),
    F("nat/lease", NM_CFG_UINT, 30, 604800, nat_lease_s),
};
#undef F

static void usage(FILE *out) {
  fputs("usage: natmesh-servant [--config config.xml] [--name NAME] [--manager HOST]\n"
        "                       [--manager-port N] [--port P] [--listen ADDR] [--ban TARGET]...\n"
        "                       [--no-upnp] [--no-natpmp] [--check-config] [--verbose]\n"
        "A natmesh peer. Lines on stdin are published to every peer; lines from peers are\n"
        "printed as NAME: TEXT. Commands: /peers, /quit, /help. --port 0 (the default) asks\n"
        "the manager to assign a listening port.\n",
        out);
}

static void sv__on_line(servant *sv, char *line) {
  size_t n = strlen(line);
  while (n && (line[n - 1] == '\r' || line[n - 1] == '\n')) line[--n] = 0;
  if (n == 0) return;
  if (strcmp(line, "/quit") == 0) {
    sv_leave(sv, "/quit");
  } else if (strcmp(line, "/peers") == 0) {
    sv_peers_print(sv);
  } else if (strcmp(line, "/help") == 0) {
    printf("commands: /peers (list peers, * marks this servant), /quit (leave)\n");
    fflush(stdout);
  } else {
    sv_publish_line(sv, line);
  }
}

static void sv__stdin_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char slab[8192];
  buf->base = slab;
  buf->len = sizeof slab;
}

static void sv__stdin_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  servant *sv = s->data;
  if (nread < 0) {
    /* End of input is not a reason to leave: a servant may run with no terminal. */
    uv_read_stop(s);
    return;
  }
  for (ssize_t i = 0; i < nread && !sv->stopping; i++) {
    char ch = buf->base[i];
    if (ch == '\n') {
      sv->line[sv->line_len] = 0;
      if (sv->line_overflow) nm_log_warn("line longer than %d bytes: cut", NM_CHAT_MAX);
      sv__on_line(sv, sv->line);
      sv->line_len = 0;
      sv->line_overflow = 0;
    } else if (sv->line_len < NM_CHAT_MAX) {
      sv->line[sv->line_len++] = ch;
    } else {
      sv->line_overflow = 1;
    }
  }
}

static void sv__stdin_start(servant *sv) {
  uv_handle_type t = uv_guess_handle(0);
  int rc = -1;
  if (t == UV_TTY) {
    rc = uv_tty_init(sv->loop, &sv->stdin_tty, 0, 1);
    if (rc == 0) sv->stdin_stream = (uv_stream_t *)&sv->stdin_tty;
  } else if (t == UV_NAMED_PIPE || t == UV_TCP) {
    rc = uv_pipe_init(sv->loop, &sv->stdin_pipe, 0);
    if (rc == 0) rc = uv_pipe_open(&sv->stdin_pipe, 0);
    if (rc == 0) sv->stdin_stream = (uv_stream_t *)&sv->stdin_pipe;
  }
  if (!sv->stdin_stream) {
    nm_log_debug("stdin is not a terminal or pipe: not reading chat from it");
    return;
  }
  sv->stdin_stream->data = sv;
  uv_read_start(sv->stdin_stream, sv__stdin_alloc, sv__stdin_read);
}

int main(int argc, char **argv) {
  static servant sv; /* large (the seen set); static keeps it off the stack */
  sv_config *cfg = &sv.cfg;
  sv_config_defaults(cfg);
  nm_log_init("natmesh-servant", NM_LOG_INFO);
  nm_xml_init();
  static const struct option opts[] = {
      {"config", required_argument, 0, 'c'},      {"name", required_argument, 0, 'n'},
      {"manager", required_argument, 0, 'm'},     {"manager-port", required_argument, 0, 'P'},
      {"port", required_argument, 0, 'p'},        {"listen", required_argument, 0, 'l'},
      {"ban", required_argument, 0, 'b'},         {"check-config", no_argument, 0, 'C'},
      {"no-upnp", no_argument, 0, 'U'},           {"no-natpmp", no_argument, 0, 'N'},
      {"verbose", no_argument, 0, 'v'},           {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  const char *optstr = "c:n:m:P:p:l:b:CUNvh";
  const char *config_path = NULL;
  int check_only = 0, opt;
  while ((opt = getopt_long(argc, argv, optstr, opts, NULL)) != -1) {
    if (opt == 'c') config_path = optarg;
    else if (opt == 'h') return usage(stdout), 0;
    else if (opt == '?') return usage(stderr), 2;
  }
  if (config_path) {
    char err[512];
    if (nm_config_load(config_path, "config", sv_config_fields,
                       sizeof sv_config_fields / sizeof *sv_config_fields, cfg, err, sizeof err) < 0) {
      nm_log_error("config: %s", err);
      return 2;
    }
  }
  optind = 1;
  while ((opt = getopt_long(argc, argv, optstr, opts, NULL)) != -1) {
    uint16_t v;
    switch (opt) {
    case 'n': snprintf(cfg->name, sizeof cfg->name, "%s", optarg); break;
    case 'm': snprintf(cfg->manager_host, sizeof cfg->manager_host, "%s", optarg); break;
    case 'P':
      if (nm_parse_port(optarg, 0, &v) < 0) return nm_log_error("--manager-port: invalid \"%s\"", optarg), 2;
      cfg->manager_port = v;
      break;
    case 'p':
      if (nm_parse_port(optarg, 1, &v) < 0) return nm_log_error("--port: invalid \"%s\"", optarg), 2;
      cfg->port = v;
      break;
    case 'l': snprintf(cfg->listen, sizeof cfg->listen, "%s", optarg); break;
    case 'b':
      if (nm_banlist_add(&cfg->bans, optarg) < 0) return nm_log_error("--ban: invalid \"%s\"", optarg), 2;
      break;
    case 'U': cfg->nat_upnp = 0; break;
    case 'N': cfg->nat_natpmp = 0; break;
    case 'C': check_only = 1; break;
    case 'v': nm_log_set_level(NM_LOG_DEBUG); break;
    default: break;
    }
  }
  if (!cfg->name[0]) {
    char host[64] = "servant";
    gethostname(host, sizeof host - 1);
    snprintf(cfg->name, sizeof cfg->name, "%.20s-%d", host, (int)getpid() % 100000);
    for (char *c = cfg->name; *c; c++)
      if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-'))
        *c = '-';
  }
  if (!nm_name_valid(cfg->name))
    return nm_log_error("name \"%s\" must be 1-%d characters of A-Z a-z 0-9 - _ .", cfg->name, NM_NAME_MAX), 2;
  if (check_only) {
    printf("configuration ok\n");
    return 0;
  }
  uv_loop_t *loop = uv_default_loop();
  if (sv_start(&sv, loop) < 0) return 1;
  sv__stdin_start(&sv);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  xmlCleanupParser();
  nm_log_info("stopped");
  return 0;
}
