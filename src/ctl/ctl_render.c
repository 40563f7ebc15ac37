#include "ctl_render.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Only printable ASCII is shown as is: a status from a confused or hostile manager must not
 * drive the user's terminal. Everything else becomes '?'. */
void nmctl_sanitize(char *dst, size_t dstlen, const char *src) {
  size_t i = 0;
  for (; src[i] && i + 1 < dstlen; i++) {
    unsigned char ch = (unsigned char)src[i];
    dst[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
  }
  dst[i] = 0;
}

const char *nmctl_format_age(char *buf, size_t buflen, int known, uint64_t ms) {
  if (!known) snprintf(buf, buflen, "-");
  else if (ms < 60000)
    snprintf(buf, buflen, "%" PRIu64 ".%" PRIu64 "s ago", ms / 1000, (ms % 1000) / 100);
  else if (ms < 3600000)
    snprintf(buf, buflen, "%" PRIu64 "m%02" PRIu64 "s ago", ms / 60000, (ms / 1000) % 60);
  else
    snprintf(buf, buflen, "%" PRIu64 "h%02" PRIu64 "m ago", ms / 3600000, (ms / 60000) % 60);
  return buf;
}

const char *nmctl_format_addr(char *buf, size_t buflen, const char *ip, uint16_t port) {
  char clean[NM_STATUS_TEXT_MAX + 1];
  nmctl_sanitize(clean, sizeof clean, ip);
  if (!clean[0]) snprintf(buf, buflen, "-");
  else if (strchr(clean, ':')) snprintf(buf, buflen, "[%s]:%u", clean, port);
  else snprintf(buf, buflen, "%s:%u", clean, port);
  return buf;
}

enum { NMCTL_COLS = 9 };

/* 1234 -> "1.2k": relay counters at a glance. */
static const char *nmctl__bytes(char *buf, size_t len, uint64_t v) {
  if (v < 1000) snprintf(buf, len, "%" PRIu64 "B", v);
  else if (v < 1000000) snprintf(buf, len, "%.1fkB", v / 1e3);
  else if (v < 1000000000) snprintf(buf, len, "%.1fMB", v / 1e6);
  else snprintf(buf, len, "%.1fGB", v / 1e9);
  return buf;
}
typedef char nmctl__cell[NM_STATUS_TEXT_MAX + 32];

static void nmctl__row_cells(const nm_status_servant *s, nmctl__cell *cells) {
  nmctl_sanitize(cells[0], sizeof cells[0], s->name);
  snprintf(cells[1], sizeof cells[1], "%s", s->id);
  nmctl_format_addr(cells[2], sizeof cells[2], s->ip, s->port);
  nmctl_format_addr(cells[3], sizeof cells[3], s->dial_ip, s->dial_port);
  snprintf(cells[4], sizeof cells[4], "%s", nm_reach_name(s->state));
  snprintf(cells[5], sizeof cells[5], "%s", nm_mapping_name(s->mapping));
  char relay[NM_STATUS_TEXT_MAX + 1];
  if (s->relay_name[0]) nmctl_sanitize(relay, sizeof relay, s->relay_name);
  else snprintf(relay, sizeof relay, "%s", s->relay[0] ? s->relay : "-");
  /* The pair path: reachable, but pulls some servants' lines from a relay; or no relay
   * can, and those lines are lost (said again under the table). */
  if (s->relay[0] && s->relay_reason == NM_RELAY_REASON_PAIR)
    snprintf(cells[6], sizeof cells[6], "via %s (pair)", relay);
  else if (s->relay[0] && s->relay_reason == NM_RELAY_REASON_PROVISIONAL)
    snprintf(cells[6], sizeof cells[6], "%s (provisional)", relay);
  else if (!s->relay[0] && s->unserved[0])
    snprintf(cells[6], sizeof cells[6], "NONE (pair unserved)");
  else if (!s->relay[0] && s->relay_standby[0]) {
    /* Every servant reaches it directly: it pulls from none, its relay is kept for it. */
    nmctl_sanitize(relay, sizeof relay, s->relay_standby);
    snprintf(cells[6], sizeof cells[6], "%s (standby)", relay);
  }
  else
    snprintf(cells[6], sizeof cells[6], "%s", relay);
  nmctl_format_age(cells[7], sizeof cells[7], s->has_last_heartbeat, s->last_heartbeat_ms);
  /* Relay duty, for dedicated relays and servants that relay for someone. */
  if (s->role == NM_ROLE_RELAY || s->clients) {
    char in[16], out[16];
    snprintf(cells[8], sizeof cells[8], "%u/%u clients, in %s, out %s, %" PRIu64 " drops", s->clients,
             s->max_clients, nmctl__bytes(in, sizeof in, s->bytes_in), nmctl__bytes(out, sizeof out, s->bytes_out),
             s->drops);
  } else {
    snprintf(cells[8], sizeof cells[8], "-");
  }
}

/* Columns padded to width, two spaces apart; the last one unpadded (no trailing blanks). */
static void nmctl__print_row(FILE *out, const char *const *cells, const size_t *width) {
  for (int c = 0; c + 1 < NMCTL_COLS; c++) fprintf(out, "%-*s  ", (int)width[c], cells[c]);
  fprintf(out, "%s\n", cells[NMCTL_COLS - 1]);
}

int nmctl_render_table(FILE *out, const nm_status *st, const char *manager) {
  static const char *heads[NMCTL_COLS] = {"NAME",  "ID",      "ADDRESS", "DIAL",
                                          "STATE", "MAPPING", "RELAY",   "LAST-HB", "LOAD"};
  size_t width[NMCTL_COLS];
  for (int c = 0; c < NMCTL_COLS; c++) width[c] = strlen(heads[c]);
  nmctl__cell cells[NMCTL_COLS];
  for (size_t i = 0; i < st->count; i++) {
    nmctl__row_cells(&st->servants[i], cells);
    for (int c = 0; c < NMCTL_COLS; c++)
      if (strlen(cells[c]) > width[c]) width[c] = strlen(cells[c]);
  }
  fprintf(out, "overlay version %" PRIu64 ", %zu servant%s, heartbeat %us, timeout %us (manager %s)\n",
          st->version, st->count, st->count == 1 ? "" : "s", st->heartbeat, st->timeout,
          manager);
  nmctl__print_row(out, heads, width);
  for (size_t i = 0; i < st->count; i++) {
    nmctl__row_cells(&st->servants[i], cells);
    const char *row[NMCTL_COLS];
    for (int c = 0; c < NMCTL_COLS; c++) row[c] = cells[c];
    nmctl__print_row(out, row, width);
  }
  /* Who cannot reach whom, and what it costs: a pair path is worth knowing about, an
   * unserved one is lines lost. */
  for (size_t i = 0; i < st->count; i++) {
    const nm_status_servant *s = &st->servants[i];
    char name[NM_STATUS_TEXT_MAX + 1], who[NM_STATUS_NAMES_MAX + 1], relay[NM_STATUS_TEXT_MAX + 1];
    nmctl_sanitize(name, sizeof name, s->name);
    if (s->unserved[0]) {
      nmctl_sanitize(who, sizeof who, s->unserved);
      fprintf(out, "warning: %s cannot be reached by %s and no relay serves it: their lines do not reach it\n",
              name, who);
    } else if (s->relay[0] && s->relay_reason == NM_RELAY_REASON_PAIR) {
      nmctl_sanitize(who, sizeof who, s->unreached_by[0] ? s->unreached_by : "?");
      nmctl_sanitize(relay, sizeof relay, s->relay_name[0] ? s->relay_name : s->relay);
      fprintf(out, "pair: %s cannot be reached by %s; it pulls their lines from %s\n", name, who, relay);
    }
  }
  return ferror(out) ? -EIO : 0;
}

int nmctl_render_xml(FILE *out, xmlDoc *doc) {
  /* The document was parsed with blanks dropped, so libxml2 can indent it afresh. */
  if (xmlDocFormatDump(out, doc, 1) < 0) return -EIO;
  return ferror(out) ? -EIO : 0;
}

void nmctl_dot_escape(FILE *out, const char *s) {
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    /* Backslash would start a DOT escape (\n, \l, \N ...) and a quote would end the
     * string: both are escaped. Control characters and non-ASCII are replaced. */
    if (ch == '"' || ch == '\\') fprintf(out, "\\%c", ch);
    else if (ch >= 0x20 && ch < 0x7f) fputc(ch, out);
    else fputc('?', out);
  }
}

static void nmctl__dot_servant(FILE *out, const nm_status_servant *s) {
  char addr[NM_STATUS_TEXT_MAX + 16];
  int relay = s->role == NM_ROLE_RELAY;
  fprintf(out, "  \"s_%s\" [label=\"", s->id);
  nmctl_dot_escape(out, s->name);
  fputs("\\n", out);
  nmctl_dot_escape(out, nmctl_format_addr(addr, sizeof addr, s->dial_ip, s->dial_port));
  fputs("\\n", out);
  nmctl_dot_escape(out, nm_reach_name(s->state));
  if (s->state == NM_REACH_MAPPED && s->mapping != NM_MAPPING_NONE)
    fprintf(out, " (%s)", nm_mapping_name(s->mapping));
  if (relay)
    fprintf(out, "\", shape=box3d, style=filled, fillcolor=\"lightskyblue\"];\n");
  else if (s->state == NM_REACH_RELAYED || s->state == NM_REACH_SUSPICIOUS)
    fprintf(out, "\", shape=box, style=\"rounded,filled\", fillcolor=\"khaki\"];\n");
  else
    fprintf(out, "\", shape=box, style=rounded];\n");
}

int nmctl_render_dot(FILE *out, const nm_status *st, const char *manager) {
  fprintf(out, "digraph natmesh {\n");
  fprintf(out, "  graph [rankdir=LR, label=\"natmesh overlay version %" PRIu64
               ", %zu servant%s\", labelloc=t];\n",
          st->version, st->count, st->count == 1 ? "" : "s");
  fprintf(out, "  node [fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\"];\n");
  fprintf(out, "  manager [label=\"manager\\n");
  nmctl_dot_escape(out, manager);
  fprintf(out, "\", shape=doubleoctagon, style=filled, fillcolor=\"palegreen\"];\n");
  for (size_t i = 0; i < st->count; i++) nmctl__dot_servant(out, &st->servants[i]);
  for (size_t i = 0; i < st->count; i++) {
    const nm_status_servant *s = &st->servants[i];
    /* A relayed servant hangs off its relay when the relay is in the status; otherwise
     * (relay gone, or never reported) off the manager like everyone else. */
    if (s->relay[0] && strcmp(s->relay, s->id) != 0 && nm_status_find(st, s->relay))
      fprintf(out, "  \"s_%s\" -> \"s_%s\" [label=\"%s\", style=dashed];\n", s->relay, s->id,
              s->relay_reason == NM_RELAY_REASON_PAIR          ? "relay (pair)"
              : s->relay_reason == NM_RELAY_REASON_PROVISIONAL ? "relay (provisional)"
                                                               : "relay");
    else
      fprintf(out, "  manager -> \"s_%s\";\n", s->id);
  }
  fprintf(out, "}\n");
  return ferror(out) ? -EIO : 0;
}
