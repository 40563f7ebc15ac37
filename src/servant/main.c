/* natmesh-servant: a peer of the overlay with a human at stdin. Options and config, and
 * the stdin commands; the rest is the natmesh_peer library. */
#include "servant.h"
#include "nm_log.h"
#include "nm_xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const sv_cli_spec sv_servant_cli = {
    .root = "config",
    .relay = 0,
    .usage =
        "usage: natmesh-servant [--config config.xml] [--name NAME] [--manager HOST]\n"
        "                       [--manager-port N] [--port P] [--listen ADDR] [--ban TARGET]...\n"
        "                       [--no-upnp] [--no-natpmp] [--check-config] [--verbose]\n"
        "A natmesh peer. Lines on stdin are published to every peer; lines from peers are\n"
        "printed as NAME: TEXT. Commands: /peers, /quit, /help. --port 0 (the default) asks\n"
        "the manager to assign a listening port. Sample config: docs/config.sample.xml.\n",
};

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
  sv_config_defaults(&sv.cfg);
  nm_log_init("natmesh-servant", NM_LOG_INFO);
  nm_xml_init();
  int rc = sv_cli_parse(&sv, &sv_servant_cli, argc, argv);
  if (rc) return rc == 1 ? 0 : 2;
  uv_loop_t *loop = uv_default_loop();
  if (sv_start(&sv, loop) < 0) return 1;
  sv__stdin_start(&sv);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  xmlCleanupParser();
  nm_log_info("stopped");
  return 0;
}
