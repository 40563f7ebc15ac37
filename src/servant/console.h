/* The console (console.c): lines typed on stdin are published; /peers, /quit and /help are
 * commands. Only natmesh-servant has one; a dedicated relay reads nothing. */
#ifndef SV_CONSOLE_H
#define SV_CONSOLE_H

#include <stddef.h>
#include <uv.h>

#include "nm_proto.h"

typedef struct servant servant;

typedef struct {
  uv_tty_t tty;
  uv_pipe_t pipe;
  uv_stream_t *stream; /* one of the two, or NULL when stdin is neither */
  char line[NM_CHAT_MAX + 2];
  size_t len;
  int overflow;        /* the line being read is longer than a chat line: it will be cut */
} sv_console;

/* Starts reading stdin if it is a terminal or a pipe. */
void sv_console_start(servant *sv);
void sv_console_close(servant *sv);

#endif
