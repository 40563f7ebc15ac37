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

/* The table's columns; MANAGER (the servant's holder, issue 14) only when some servant has
 * one: a manager without a store prints the table it always did. */
enum {
  NMCTL_COL_NAME,
  NMCTL_COL_ID,
  NMCTL_COL_ADDRESS,
  NMCTL_COL_DIAL,
  NMCTL_COL_STATE,
  NMCTL_COL_MAPPING,
  NMCTL_COL_RELAY,
  NMCTL_COL_MANAGER,
  NMCTL_COL_LAST_HB,
  NMCTL_COL_LOAD,
  NMCTL_COLS
};
static const char *const nmctl__heads[NMCTL_COLS] = {
    [NMCTL_COL_NAME] = "NAME",       [NMCTL_COL_ID] = "ID",           [NMCTL_COL_ADDRESS] = "ADDRESS",
    [NMCTL_COL_DIAL] = "DIAL",       [NMCTL_COL_STATE] = "STATE",     [NMCTL_COL_MAPPING] = "MAPPING",
    [NMCTL_COL_RELAY] = "RELAY",     [NMCTL_COL_MANAGER] = "MANAGER", [NMCTL_COL_LAST_HB] = "LAST-HB",
    [NMCTL_COL_LOAD] = "LOAD",
};

/* 1234 -> "1.2k": relay counters at a glance. */
static const char *nmctl__bytes(char *buf, size_t len, uint64_t v) {
  if (v < 1000) snprintf(buf, len, "%" PRIu64 "B", v);
  else if (v < 1000000) snprintf(buf, len, "%.1fkB", v / 1e3);
  else if (v < 1000000000) snprintf(buf, len, "%.1fMB", v / 1e6);
  else snprintf(buf, len, "%.1fGB", v / 1e9);
  return buf;
}
typedef char nmctl__cell[NM_STATUS_TEXT_MAX + 32];

/* A cell and its size, for the snprintf-style helpers. */
#define NMCTL_CELL(c) cells[NMCTL_COL_##c], sizeof cells[NMCTL_COL_##c]

static void nmctl__row_cells(const nm_status_servant *s, nmctl__cell *cells) {
  nmctl_sanitize(NMCTL_CELL(NAME), s->name);
  snprintf(NMCTL_CELL(ID), "%s", s->id);
  nmctl_format_addr(NMCTL_CELL(ADDRESS), s->ip, s->port);
  nmctl_format_addr(NMCTL_CELL(DIAL), s->dial_ip, s->dial_port);
  snprintf(NMCTL_CELL(STATE), "%s", nm_reach_name(s->state));
  snprintf(NMCTL_CELL(MAPPING), "%s", nm_mapping_name(s->mapping));
  char relay[NM_STATUS_TEXT_MAX + 1];
  if (s->relay_name[0]) nmctl_sanitize(relay, sizeof relay, s->relay_name);
  else snprintf(relay, sizeof relay, "%s", s->relay[0] ? s->relay : "-");
  /* The pair path: reachable, but pulls some servants' lines from a relay; or no relay
   * can, and those lines are lost (said again under the table). */
  if (s->relay[0] && s->relay_reason == NM_RELAY_REASON_PAIR)
    snprintf(NMCTL_CELL(RELAY), "via %s (pair)", relay);
  else if (s->relay[0] && s->relay_reason == NM_RELAY_REASON_PROVISIONAL)
    snprintf(NMCTL_CELL(RELAY), "%s (provisional)", relay);
  else if (!s->relay[0] && s->unserved[0])
    snprintf(NMCTL_CELL(RELAY), "NONE (pair unserved)");
  else if (!s->relay[0] && s->relay_standby[0]) {
    /* Every servant reaches it directly: it pulls from none, its relay is kept for it. */
    nmctl_sanitize(relay, sizeof relay, s->relay_standby);
    snprintf(NMCTL_CELL(RELAY), "%s (standby)", relay);
  }
  else
    snprintf(NMCTL_CELL(RELAY), "%s", relay);
  /* The manager holding its session (with a store; shown only when some servant has one). */
  nmctl_sanitize(NMCTL_CELL(MANAGER), s->manager[0] ? s->manager : "-");
  nmctl_format_age(NMCTL_CELL(LAST_HB), s->has_last_heartbeat, s->last_heartbeat_ms);
  /* Relay duty, for dedicated relays and servants that relay for someone. */
  if (s->role == NM_ROLE_RELAY || s->clients) {
    char in[16], out[16];
    snprintf(NMCTL_CELL(LOAD), "%u/%u clients, in %s, out %s, %" PRIu64 " drops", s->clients, s->max_clients,
             nmctl__bytes(in, sizeof in, s->bytes_in), nmctl__bytes(out, sizeof out, s->bytes_out), s->drops);
  } else {
    snprintf(NMCTL_CELL(LOAD), "-");
  }
}
#undef NMCTL_CELL

/* The shown columns (all, or all but MANAGER), padded to width, two spaces apart; the last
 * one unpadded (no trailing blanks). */
static void nmctl__print_row(FILE *out, const char *const *cells, const size_t *width, int with_manager) {
  for (int c = 0; c + 1 < NMCTL_COLS; c++)
    if (c != NMCTL_COL_MANAGER || with_manager) fprintf(out, "%-*s  ", (int)width[c], cells[c]);
  fprintf(out, "%s\n", cells[NMCTL_COLS - 1]);
}

/* With a store (issue 14), a line under the header: its url, state and primary, and the
 * overlay's managers ("store redis://10.0.0.5:6379 up (primary 10.0.0.5:6379), 3 managers:
 * m1 10.0.0.1:85, m2 10.0.0.2:85, m3 10.0.0.3:85"). */
static void nmctl__store_line(FILE *out, const nm_status_store *k) {
  char url[NM_STATUS_URL_MAX + 1], primary[NM_STATUS_TEXT_MAX + 1];
  nmctl_sanitize(url, sizeof url, k->url[0] ? k->url : "?");
  nmctl_sanitize(primary, sizeof primary, k->primary);
  fprintf(out, "store %s %s", url, nm_store_state_name(k->state));
  if (primary[0]) fprintf(out, " (primary %s)", primary);
  if (k->mesh_leader[0]) {
    char leader[NM_STATUS_TEXT_MAX + 1];
    nmctl_sanitize(leader, sizeof leader, k->mesh_leader);
    fprintf(out, ", mesh drawn by %s", leader);
  }
  fprintf(out, ", %u manager%s", k->nmanagers_total, k->nmanagers_total == 1 ? "" : "s");
  for (unsigned i = 0; i < k->nmanagers; i++) {
    char name[NM_STATUS_TEXT_MAX + 1], addr[NM_STATUS_TEXT_MAX + 16];
    nmctl_sanitize(name, sizeof name, k->managers[i].name);
    fprintf(out, "%s %s %s", i ? "," : ":", name,
            nmctl_format_addr(addr, sizeof addr, k->managers[i].addr, k->managers[i].port));
  }
  if (k->nmanagers < k->nmanagers_total) fprintf(out, ", +%u", k->nmanagers_total - k->nmanagers);
  fputc('\n', out);
}

int nmctl_render_table(FILE *out, const nm_status *st, const char *manager) {
  int with_manager = nm_status_has_managers(st);
  size_t width[NMCTL_COLS];
  for (int c = 0; c < NMCTL_COLS; c++) width[c] = strlen(nmctl__heads[c]);
  nmctl__cell cells[NMCTL_COLS];
  for (size_t i = 0; i < st->count; i++) {
    nmctl__row_cells(&st->servants[i], cells);
    for (int c = 0; c < NMCTL_COLS; c++)
      if (strlen(cells[c]) > width[c]) width[c] = strlen(cells[c]);
  }
  fprintf(out, "overlay version %" PRIu64 ", %zu servant%s, heartbeat %us, timeout %us (manager %s)\n",
          st->version, st->count, st->count == 1 ? "" : "s", st->heartbeat, st->timeout,
          manager);
  if (st->store.present) nmctl__store_line(out, &st->store);
  nmctl__print_row(out, nmctl__heads, width, with_manager);
  for (size_t i = 0; i < st->count; i++) {
    nmctl__row_cells(&st->servants[i], cells);
    const char *row[NMCTL_COLS];
    for (int c = 0; c < NMCTL_COLS; c++) row[c] = cells[c];
    nmctl__print_row(out, row, width, with_manager);
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

/* With a store (issue 14), one node per manager: the store's managers, then any other
 * holder a servant names, at most NMCTL_DOT_MANAGERS_MAX in all (a servant whose holder has
 * no node hangs off the asked manager's, as before). Nodes are named by index ("m_2"), so
 * a name from the wire only ever reaches a quoted label. */
#define NMCTL_DOT_MANAGERS_MAX (NM_STATUS_MANAGERS_MAX * 2)
typedef struct {
  const char *name[NMCTL_DOT_MANAGERS_MAX];
  const nm_status_manager *known[NMCTL_DOT_MANAGERS_MAX]; /* NULL: named by a servant only */
  unsigned n;
} nmctl__dot_managers;

static int nmctl__dot_manager_index(const nmctl__dot_managers *dm, const char *name) {
  for (unsigned i = 0; i < dm->n; i++)
    if (strcmp(dm->name[i], name) == 0) return (int)i;
  return -1;
}

static void nmctl__dot_managers_collect(const nm_status *st, nmctl__dot_managers *dm) {
  dm->n = 0;
  for (unsigned i = 0; i < st->store.nmanagers && dm->n < NMCTL_DOT_MANAGERS_MAX; i++) {
    const nm_status_manager *m = &st->store.managers[i];
    if (!m->name[0] || nmctl__dot_manager_index(dm, m->name) >= 0) continue;
    dm->name[dm->n] = m->name;
    dm->known[dm->n++] = m;
  }
  for (size_t i = 0; i < st->count && dm->n < NMCTL_DOT_MANAGERS_MAX; i++) {
    const char *h = st->servants[i].manager;
    if (!h[0] || nmctl__dot_manager_index(dm, h) >= 0) continue;
    dm->name[dm->n] = h;
    dm->known[dm->n++] = NULL;
  }
}

/* Whether servant s hangs off the asked manager's node (no holder with a node of its own). */
static int nmctl__dot_off_asked(const nmctl__dot_managers *dm, const nm_status_servant *s) {
  return !s->manager[0] || nmctl__dot_manager_index(dm, s->manager) < 0;
}

static void nmctl__dot_manager_nodes(FILE *out, const nmctl__dot_managers *dm) {
  for (unsigned i = 0; i < dm->n; i++) {
    fprintf(out, "  \"m_%u\" [label=\"manager\\n", i);
    nmctl_dot_escape(out, dm->name[i]);
    if (dm->known[i]) {
      char addr[NM_STATUS_TEXT_MAX + 16];
      fputs("\\n", out);
      nmctl_dot_escape(out, nmctl_format_addr(addr, sizeof addr, dm->known[i]->addr, dm->known[i]->port));
    }
    fprintf(out, "\", shape=doubleoctagon, style=filled, fillcolor=\"palegreen\"];\n");
  }
}

int nmctl_render_dot(FILE *out, const nm_status *st, const char *manager) {
  nmctl__dot_managers dm;
  nmctl__dot_managers_collect(st, &dm);
  /* The asked manager's node: as always without holders; with them, only when some
   * servant hangs off it. */
  int asked = dm.n == 0;
  for (size_t i = 0; i < st->count && !asked; i++) asked = nmctl__dot_off_asked(&dm, &st->servants[i]);
  fprintf(out, "digraph natmesh {\n");
  fprintf(out, "  graph [rankdir=LR, label=\"natmesh overlay version %" PRIu64 ", %zu servant%s",
          st->version, st->count, st->count == 1 ? "" : "s");
  if (st->store.present) fprintf(out, ", store %s", nm_store_state_name(st->store.state));
  fprintf(out, "\", labelloc=t];\n");
  fprintf(out, "  node [fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\"];\n");
  if (asked) {
    fprintf(out, "  manager [label=\"manager\\n");
    nmctl_dot_escape(out, manager);
    fprintf(out, "\", shape=doubleoctagon, style=filled, fillcolor=\"palegreen\"];\n");
  }
  nmctl__dot_manager_nodes(out, &dm);
  for (size_t i = 0; i < st->count; i++) nmctl__dot_servant(out, &st->servants[i]);
  for (size_t i = 0; i < st->count; i++) {
    const nm_status_servant *s = &st->servants[i];
    /* A relayed servant hangs off its relay when the relay is in the status; otherwise
     * (relay gone, or never reported) off its manager like everyone else. */
    if (s->relay[0] && strcmp(s->relay, s->id) != 0 && nm_status_find(st, s->relay))
      fprintf(out, "  \"s_%s\" -> \"s_%s\" [label=\"%s\", style=dashed];\n", s->relay, s->id,
              s->relay_reason == NM_RELAY_REASON_PAIR          ? "relay (pair)"
              : s->relay_reason == NM_RELAY_REASON_PROVISIONAL ? "relay (provisional)"
                                                               : "relay");
    else if (nmctl__dot_off_asked(&dm, s))
      fprintf(out, "  manager -> \"s_%s\";\n", s->id);
    else
      fprintf(out, "  \"m_%d\" -> \"s_%s\";\n", nmctl__dot_manager_index(&dm, s->manager), s->id);
  }
  fprintf(out, "}\n");
  return ferror(out) ? -EIO : 0;
}
