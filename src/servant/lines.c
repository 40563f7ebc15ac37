/* The fan-out of accepted lines: display, peers, relay duty. See lines.h. */
#include "lines.h"
#include "manager_link.h"
#include "peers.h"
#include "servant.h"
#include "nm_log.h"

#include <stdio.h>

/* Terminal safety: a peer must not be able to move our cursor or change colours, with C0
 * controls, DEL, or the C1 controls U+0080-U+009F (UTF-8 C2 80 .. C2 9F, CSI among them). */
static void sv__display(const char *name, const char *text) {
  char out[NM_CHAT_MAX + 1];
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)text; *p && n < NM_CHAT_MAX; p++) {
    if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
      out[n++] = '?';
      p++;
    } else {
      out[n++] = (*p < 0x20 || *p == 0x7f) ? '?' : (char)*p;
    }
  }
  out[n] = 0;
  printf("%s: %s\n", name, out);
  fflush(stdout);
}

void sv_lines_received(servant *sv, const sv_line *l) {
  /* A dedicated relay shows nothing; it only passes lines on. */
  if (!sv->cfg.quiet) sv__display(l->name, l->text);
  if (l->len) rl_forward(&sv->relay, l->origin, l->payload, l->len);
  /* A bounded mesh: the line goes on, unchanged (its origin's signature with it), to our
   * neighbours; they show it once and forward it once (nm_replay), so it floods the graph. */
  if (l->len) sv_peers_forward(sv, l->payload, l->len, l->origin, l->from);
}

void sv_lines_published(servant *sv, const sv_line *l) {
  if (!sv_peers_any(sv) && !rl_nattached(&sv->relay))
    nm_log_warn("no peers yet%s: that line reached no one",
                sv_manager_registered(sv) ? "" : " (not registered with the manager)");
  sv_peers_publish(sv, l->payload, l->len);
  rl_forward(&sv->relay, l->origin, l->payload, l->len);
}
