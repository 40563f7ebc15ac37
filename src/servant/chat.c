/* Chat lines: built here when typed, checked and de-duplicated here when received; the
 * accepted ones go on to lines.c. */
#include "chat.h"
#include "lines.h"
#include "peers.h"
#include "servant.h"
#include "nm_error.h"
#include "nm_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sv_chat_init(servant *sv) {
  sv->chat.next_seq = 0;
  nm_seen_init(&sv->chat.seen);
}

void sv_chat_publish(servant *sv, const char *text) {
  sv_chat *ch = &sv->chat;
  static nm_msg m; /* 4 KiB of text: not on the stack for every line */
  memset(&m, 0, sizeof m);
  m.type = NM_MSG_CHAT;
  snprintf(m.u.chat.origin, sizeof m.u.chat.origin, "%s", sv->id);
  snprintf(m.u.chat.name, sizeof m.u.chat.name, "%s", sv->cfg.name);
  snprintf(m.u.chat.text, sizeof m.u.chat.text, "%s", text);
  m.u.chat.seq = ch->next_seq + 1;
  /* TODO(issue 9): the persisted epoch (state dir), and nm_msg_chat_sign with the node's
   * key: until then the line is unsigned, and the encoder refuses it. */
  m.u.chat.epoch = 0;
  /* Encoded once: the same bytes go to every peer, backlog and relay client. */
  nm_msgbuf b;
  int rc = nm_msg_encode(&m, &b);
  if (rc < 0) {
    /* XML cannot carry control characters (other than tab) or invalid UTF-8: peers would
     * refuse the frame and drop our connection. */
    nm_log_warn("line not sent: it holds control characters or invalid UTF-8");
    return;
  }
  ch->next_seq++;
  /* Our own line never comes back to the screen, even through a relay. */
  nm_seen_check_and_add(&ch->seen, nm_seen_key(sv->id, ch->next_seq));
  sv_line l = {.origin = sv->id, .name = sv->cfg.name, .text = text, .payload = b.data, .len = b.len};
  sv_lines_published(sv, &l);
  nm_msgbuf_free(&b);
}

void sv_chat_receive(servant *sv, const nm_msg_chat *c) {
  sv_peer *known = NULL;
  if (strcmp(c->origin, sv->id) == 0) {
    /* our own line, echoed back by a relay */
  } else if (!(known = sv_peer_find(sv, c->origin))) {
    /* Only servants the manager listed may speak: anyone can connect to our port, but a
     * made-up origin is not in the list. */
    nm_log_info("dropped a line from %s: origin %s is not in our peer list", c->name, c->origin);
  } else if (known->banned) {
    nm_log_info("dropped a line from banned %s (%s)", known->info.name, c->origin);
  } else if (!nm_seen_check_and_add(&sv->chat.seen, nm_seen_key(c->origin, c->seq))) {
    /* The name shown is the one the manager lists for that id, whatever the frame says. */
    if (strcmp(c->name, known->info.name) != 0)
      nm_log_warn("a line from %s claims the name %s; shown as %s", c->origin, c->name, known->info.name);
    /* Relay clients get the line as the message layer writes it. */
    nm_msg m = {.type = NM_MSG_CHAT};
    m.u.chat = *c;
    nm_msgbuf b = {0};
    if (nm_msg_encode(&m, &b) < 0) b.len = 0; /* decoded, so encodable; be safe anyway */
    sv_line l = {.origin = c->origin, .name = known->info.name, .text = c->text, .payload = b.data, .len = b.len};
    sv_lines_received(sv, &l);
    nm_msgbuf_free(&b);
  }
}
