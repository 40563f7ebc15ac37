/* The console: stdin lines and commands. See console.h. */
#include "console.h"
#include "chat.h"
#include "inbound.h"
#include "manager_link.h"
#include "peers.h"
#include "portmap.h"
#include "pull.h"
#include "servant.h"
#include "nm_log.h"

#include <stdio.h>
#include <string.h>

/* /peers: this servant first (marked *), then every listed peer, each with its key's
 * fingerprint (what --ban and the manager's --allow take). */
static void sv__print_peers(servant *sv) {
  size_t n = 1;
  char mapping[128];
  char relay[NM_NAME_MAX + 32];
  sv_pull_describe(sv, relay, sizeof relay);
  if (!relay[0] && rl_nassigned(&sv->relay))
    snprintf(relay, sizeof relay, ", relaying for %zu", rl_nassigned(&sv->relay));
  const char *observed = sv_manager_observed_ip(sv);
  char a[NM_ADDR_STRLEN];
  printf("* peer %s %s %s %s me, %s%s, key %s\n", sv->cfg.name, sv->id,
         nm_addr_str(observed[0] ? observed : "?", sv_listen_port(sv), a), nm_reach_name(sv_manager_reach(sv)), sv_portmap_describe(sv, mapping, sizeof mapping),
         relay, nm_identity_fingerprint(&sv->identity)->hex);
  n += sv_peers_print(sv, stdout);
  printf("end of peers (%zu)\n", n);
  fflush(stdout);
}

static void sv__on_line(servant *sv, char *line) {
  size_t n = strlen(line);
  while (n && (line[n - 1] == '\r' || line[n - 1] == '\n')) line[--n] = 0;
  if (n == 0) return;
  if (strcmp(line, "/quit") == 0) {
    sv_leave(sv, "/quit");
  } else if (strcmp(line, "/peers") == 0) {
    sv__print_peers(sv);
  } else if (strcmp(line, "/help") == 0) {
    printf("commands: /peers (list peers, * marks this servant), /quit (leave)\n");
    fflush(stdout);
  } else {
    sv_chat_publish(sv, line);
  }
}

static void sv__stdin_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char slab[8192];
  buf->base = slab;
  buf->len = sizeof slab;
}

static void sv__stdin_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  servant *sv = s->data;
  sv_console *con = &sv->console;
  if (nread < 0) {
    /* End of input is not a reason to leave: a servant may run with no terminal. */
    uv_read_stop(s);
    return;
  }
  for (ssize_t i = 0; i < nread && !sv->stopping; i++) {
    char ch = buf->base[i];
    if (ch == '\n') {
      con->line[con->len] = 0;
      if (con->overflow) nm_log_warn("line longer than %d bytes: cut", NM_CHAT_MAX);
      sv__on_line(sv, con->line);
      con->len = 0;
      con->overflow = 0;
    } else if (con->len < NM_CHAT_MAX) {
      con->line[con->len++] = ch;
    } else {
      con->overflow = 1;
    }
  }
}

void sv_console_start(servant *sv) {
  sv_console *con = &sv->console;
  uv_handle_type t = uv_guess_handle(0);
  int rc = -1;
  if (t == UV_TTY) {
    rc = uv_tty_init(sv->loop, &con->tty, 0, 1);
    if (rc == 0) con->stream = (uv_stream_t *)&con->tty;
  } else if (t == UV_NAMED_PIPE || t == UV_TCP) {
    rc = uv_pipe_init(sv->loop, &con->pipe, 0);
    if (rc == 0) rc = uv_pipe_open(&con->pipe, 0);
    if (rc == 0) con->stream = (uv_stream_t *)&con->pipe;
  }
  if (!con->stream) {
    nm_log_debug("stdin is not a terminal or pipe: not reading chat from it");
    return;
  }
  con->stream->data = sv;
  uv_read_start(con->stream, sv__stdin_alloc, sv__stdin_read);
}

void sv_console_close(servant *sv) {
  if (sv->console.stream) uv_close((uv_handle_t *)sv->console.stream, NULL);
  sv->console.stream = NULL;
}
