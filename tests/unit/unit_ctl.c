/* natmesh-ctl's status model (nm_status) and renderers: parsing the manager's status document,
 * refusing bad ones, the table, and DOT output that stays valid whatever the names. And its
 * keys (ctl_key): which key it proves and which it pins, never creating the manager's. */
#include "ctl_key.h"
#include "ctl_pages.h"
#include "ctl_peers.h"
#include "ctl_render.h"
#include "nm_error.h"
#include "nm_status.h"
#include "nm_xml.h"
#include "nmt.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *good_status =
    "<status version=\"42\" heartbeat=\"5\" timeout=\"15\" servants=\"3\">"
    "<servant id=\"3f9a0c1d2e4b5a69\" name=\"alice\" role=\"servant\" ip=\"127.0.0.1\" "
    "port=\"4001\" dial-ip=\"127.0.0.1\" dial-port=\"4001\" state=\"direct\" mapping=\"none\" "
    "ext-ip=\"\" ext-port=\"0\" relay=\"\" relay-name=\"\" last-heartbeat-ms=\"1234\" "
    "connected-s=\"35\" complaints=\"0\" clients=\"0\"/>"
    "<servant id=\"77aa00bb11cc22dd\" name=\"r1\" role=\"relay\" ip=\"::1\" port=\"4002\" "
    "state=\"direct\" last-heartbeat-ms=\"61000\" future=\"ignored\"/>"
    "<servant id=\"00000000000000cc\" name=\"carol\" ip=\"10.0.0.3\" port=\"4003\" "
    "dial-ip=\"198.51.100.7\" dial-port=\"40003\" state=\"relayed\" mapping=\"upnp\" "
    "relay=\"77aa00bb11cc22dd\" relay-name=\"r1\"/>"
    "<note>newer managers may add elements</note>"
    "</status>";

/* Renders with fn into a string (caller frees). */
static char *render(int (*fn)(FILE *, const nm_status *, const char *), const nm_status *st) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  NMT_EQ_INT(fn(f, st, "127.0.0.1:85"), 0);
  fclose(f);
  return buf;
}

static void test_parse_good(void) {
  nm_status st;
  nm_status_init(&st);
  char err[300];
  NMT_EQ_INT(nm_status_parse(good_status, strlen(good_status), &st, NULL, err, sizeof err), 0);
  NMT_EQ_INT(st.version, 42);
  NMT_EQ_INT(st.heartbeat, 5);
  NMT_EQ_INT(st.timeout, 15);
  NMT_EQ_INT(st.count, 3);
  NMT_EQ_STR(st.servants[0].name, "alice");
  NMT_EQ_INT(st.servants[0].last_heartbeat_ms, 1234);
  NMT_EQ_INT(st.servants[0].has_last_heartbeat, 1);
  NMT_EQ_INT(st.servants[1].role, NM_ROLE_RELAY);
  NMT_EQ_STR(st.servants[1].dial_ip, "::1"); /* defaults to the observed address */
  NMT_EQ_INT(st.servants[1].dial_port, 4002);
  NMT_EQ_STR(st.servants[2].relay, "77aa00bb11cc22dd");
  NMT_EQ_INT(st.servants[2].has_last_heartbeat, 0);
  NMT_CHECK(nm_status_find(&st, "77aa00bb11cc22dd") == &st.servants[1]);
  NMT_CHECK(nm_status_find(&st, "0000000000000000") == NULL);
  nm_status_close(&st);
}

static void expect_bad(const char *doc, int want, const char *needle) {
  nm_status st;
  nm_status_init(&st);
  char err[300] = "";
  NMT_EQ_INT(nm_status_parse(doc, strlen(doc), &st, NULL, err, sizeof err), want);
  NMT_EQ_INT(st.count, 0);
  NMT_CHECK(st.servants == NULL);
  if (needle) NMT_HAS(err, needle);
}

static void test_parse_bad(void) {
  expect_bad("<peers version=\"1\"/>", NM_EMSG, "<status>");
  expect_bad("<status/>", NM_EMSG, "version");
  expect_bad("<status version=\"1\" heartbeat=\"x\"/>", NM_EMSG, "heartbeat");
  expect_bad("<status version=\"1\"><servant name=\"a\"/></status>", NM_EMSG, "id");
  expect_bad("<status version=\"1\"><servant id=\"XYZ\"/></status>", NM_EMSG, "id");
  expect_bad("<status version=\"1\"><servant id=\"00000000000000aa\" port=\"70000\"/></status>",
             NM_EMSG, "port");
  expect_bad("<status version=\"1\"><servant id=\"00000000000000aa\" relay=\"zz\"/></status>",
             NM_EMSG, "relay");
  expect_bad("<status version=\"1\"><servant id=\"00000000000000aa\" "
             "last-heartbeat-ms=\"-5\"/></status>",
             NM_EMSG, "last-heartbeat-ms");
  char longname[300];
  snprintf(longname, sizeof longname,
           "<status version=\"1\"><servant id=\"00000000000000aa\" name=\"%0100d\"/></status>", 0);
  expect_bad(longname, NM_EMSG, "name");
  expect_bad("<!DOCTYPE status [<!ENTITY x \"y\">]><status version=\"1\"/>", NM_EXML_HOSTILE, NULL);
  expect_bad("<status version=\"1\">", NM_EXML, NULL);
}

/* The document's own servants="N" never sizes anything. */
static void test_declared_count_ignored(void) {
  nm_status st;
  nm_status_init(&st);
  char err[300];
  const char *doc = "<status version=\"1\" servants=\"4000000000\">"
                    "<servant id=\"00000000000000aa\" name=\"a\"/></status>";
  NMT_EQ_INT(nm_status_parse(doc, strlen(doc), &st, NULL, err, sizeof err), 0);
  NMT_EQ_INT(st.count, 1);
  nm_status_close(&st);
}

static void test_table(void) {
  nm_status st;
  nm_status_init(&st);
  char err[300];
  nm_status_parse(good_status, strlen(good_status), &st, NULL, err, sizeof err);
  char *out = render(nmctl_render_table, &st);
  NMT_HAS(out, "overlay version 42, 3 servants, heartbeat 5s");
  NMT_HAS(out, "NAME");
  NMT_HAS(out, "LAST-HB");
  NMT_HAS(out, "1.2s ago");
  NMT_HAS(out, "1m01s ago");
  NMT_HAS(out, "[::1]:4002");
  NMT_HAS(out, "198.51.100.7:40003");
  /* carol's RELAY column names r1; alice's is "-". */
  char *carol = strstr(out, "carol");
  NMT_CHECK(carol && strstr(carol, " r1") != NULL);
  char *alice = strstr(out, "alice");
  NMT_CHECK(alice && strstr(alice, " -  ") != NULL);
  /* Header, column line, one line per servant. */
  int lines = 0;
  for (char *p = out; *p; p++) lines += *p == '\n';
  NMT_EQ_INT(lines, 5);
  /* No servant has a holder (a manager without a store): no MANAGER column, no store line. */
  NMT_CHECK(strstr(out, "MANAGER") == NULL);
  NMT_CHECK(strstr(out, "\nstore ") == NULL);
  free(out);
  nm_status_close(&st);

  /* An empty overlay still prints its header. */
  const char *empty = "<status version=\"0\" heartbeat=\"1\" timeout=\"3\" servants=\"0\"/>";
  nm_status_parse(empty, strlen(empty), &st, NULL, err, sizeof err);
  out = render(nmctl_render_table, &st);
  NMT_HAS(out, "overlay version 0, 0 servants, heartbeat 1s");
  free(out);
  nm_status_close(&st);
}

/* The pair path (issue 10): relay-reason, unreached-by and unserved, through the encoder
 * and the parser, and as the table shows them. */
static const char *pair_status =
    "<status version=\"7\" heartbeat=\"1\" timeout=\"3\" servants=\"4\">"
    "<servant id=\"00000000000000aa\" name=\"alice\" ip=\"10.0.0.1\" port=\"4001\" state=\"direct\"/>"
    "<servant id=\"00000000000000bb\" name=\"bob\" ip=\"10.0.0.2\" port=\"4001\" state=\"direct\" "
    "relay=\"00000000000000cc\" relay-name=\"carol\" relay-reason=\"pair\" unreached-by=\"alice\"/>"
    "<servant id=\"00000000000000cc\" name=\"carol\" ip=\"10.0.0.3\" port=\"4001\" state=\"direct\" "
    "clients=\"1\" max-clients=\"8\"/>"
    "<servant id=\"00000000000000dd\" name=\"dave\" ip=\"10.0.0.4\" port=\"4001\" state=\"mapped\" "
    "unreached-by=\"alice eve\" unserved=\"alice eve\"/>"
    "</status>";

static void test_pair(void) {
  nm_status st;
  nm_status_init(&st);
  char err[300];
  NMT_EQ_INT(nm_status_parse(pair_status, strlen(pair_status), &st, NULL, err, sizeof err), 0);
  NMT_EQ_INT(st.servants[0].relay_reason, NM_RELAY_REASON_NONE);
  NMT_EQ_STR(st.servants[0].unreached_by, "");
  NMT_EQ_INT(st.servants[1].relay_reason, NM_RELAY_REASON_PAIR);
  NMT_EQ_STR(st.servants[1].unreached_by, "alice");
  NMT_EQ_STR(st.servants[3].unserved, "alice eve");

  char *out = render(nmctl_render_table, &st);
  char *bob = strstr(out, "\nbob ");
  NMT_CHECK(bob && strstr(bob, "direct") && strstr(bob, "via carol (pair)"));
  char *dave = strstr(out, "\ndave ");
  NMT_CHECK(dave && strstr(dave, "NONE (pair unserved)"));
  NMT_HAS(out, "pair: bob cannot be reached by alice; it pulls their lines from carol");
  NMT_HAS(out, "warning: dave cannot be reached by alice eve and no relay serves it");
  free(out);
  out = render(nmctl_render_dot, &st);
  NMT_HAS(out, "\"s_00000000000000cc\" -> \"s_00000000000000bb\" [label=\"relay (pair)\"");
  free(out);

  /* The encoder writes them back only when set; the parser reads what it wrote. */
  char *doc;
  size_t len;
  NMT_EQ_INT(nm_status_encode(&st, &doc, &len), 0);
  NMT_HAS(doc, "relay-reason=\"pair\"");
  NMT_HAS(doc, "unserved=\"alice eve\"");
  NMT_CHECK(strstr(doc, "relay-reason=\"\"") == NULL);
  nm_status again;
  nm_status_init(&again);
  NMT_EQ_INT(nm_status_parse(doc, len, &again, NULL, err, sizeof err), 0);
  NMT_EQ_INT(again.servants[1].relay_reason, NM_RELAY_REASON_PAIR);
  NMT_EQ_STR(again.servants[1].unreached_by, "alice");
  NMT_EQ_STR(again.servants[3].unserved, "alice eve");
  free(doc);
  nm_status_close(&again);
  /* A value the manager should never send is refused, never encoded. */
  st.servants[1].relay_reason = (nm_relay_reason)7;
  NMT_EQ_INT(nm_status_encode(&st, &doc, &len), -EINVAL);
  nm_status_close(&st);

  expect_bad("<status version=\"1\"><servant id=\"00000000000000aa\" relay-reason=\"bored\"/></status>",
             NM_EMSG, "relay-reason");
  char *huge = malloc(NM_STATUS_NAMES_MAX + 200);
  int n = snprintf(huge, 200, "<status version=\"1\"><servant id=\"00000000000000aa\" unserved=\"");
  memset(huge + n, 'a', NM_STATUS_NAMES_MAX + 1);
  strcpy(huge + n + NM_STATUS_NAMES_MAX + 1, "\"/></status>");
  expect_bad(huge, NM_EMSG, "unserved");
  free(huge);
}

/* Issue 11: <complaint> children (who, how many, how recently), the complaint rules on
 * <status>, and what `natmesh-ctl peers` makes of them. alice and bob are public, carol is
 * mapped, dave is judged unreachable and pulls from the dedicated relay r1, erin is on the
 * pair path (alice cannot reach her) and pulls alice's lines from bob. */
static const char *peers_status =
    "<status version=\"9\" heartbeat=\"1\" timeout=\"3\" servants=\"6\" complaint-threshold=\"3\" "
    "complaint-window=\"60\">"
    "<servant id=\"00000000000000aa\" name=\"alice\" ip=\"11.0.0.2\" port=\"4001\" state=\"direct\"/>"
    "<servant id=\"00000000000000bb\" name=\"bob\" ip=\"11.0.0.3\" port=\"4001\" state=\"direct\" "
    "clients=\"1\"/>"
    "<servant id=\"00000000000000cc\" name=\"carol\" ip=\"11.0.0.4\" port=\"4001\" dial-ip=\"11.0.0.4\" "
    "dial-port=\"40001\" state=\"mapped\" mapping=\"upnp\" ext-ip=\"11.0.0.4\" ext-port=\"40001\"/>"
    "<servant id=\"00000000000000dd\" name=\"dave\" ip=\"11.0.0.5\" port=\"4001\" state=\"relayed\" "
    "relay=\"00000000000000ff\" relay-name=\"r1\" relay-reason=\"suspicious\" complaints=\"2\" "
    "unreached-by=\"alice bob\" complainers=\"3\">"
    "<complaint from=\"00000000000000aa\" count=\"4\" last-ms=\"900\"/>"
    "<complaint from=\"00000000000000bb\" count=\"3\" last-ms=\"1500\"/>"
    "<complaint from=\"00000000000000cc\" count=\"1\" last-ms=\"70000\"/>"
    "</servant>"
    "<servant id=\"00000000000000ee\" name=\"erin\" ip=\"11.0.0.6\" port=\"4001\" state=\"direct\" "
    "relay=\"00000000000000bb\" relay-name=\"bob\" relay-reason=\"pair\" unreached-by=\"alice\" "
    "complainers=\"1\"><complaint from=\"00000000000000aa\" count=\"3\" last-ms=\"200\"/></servant>"
    "<servant id=\"00000000000000ff\" name=\"r1\" role=\"relay\" ip=\"11.0.0.7\" port=\"7000\" "
    "state=\"direct\" clients=\"1\"/>"
    "</status>";

static void test_complaints_round_trip(void) {
  nm_status st;
  nm_status_init(&st);
  char err[300];
  NMT_EQ_INT(nm_status_parse(peers_status, strlen(peers_status), &st, NULL, err, sizeof err), 0);
  NMT_EQ_INT(st.complaint_threshold, 3);
  NMT_EQ_INT(st.complaint_window_s, 60);
  const nm_status_servant *dave = &st.servants[3];
  NMT_EQ_INT(dave->ncomplaint, 3);
  NMT_EQ_INT(dave->complainers, 3);
  NMT_EQ_STR(dave->complaint[1].from, "00000000000000bb");
  NMT_EQ_INT(dave->complaint[1].count, 3);
  NMT_EQ_INT(dave->complaint[2].last_ms, 70000);
  NMT_EQ_INT(st.servants[0].ncomplaint, 0);
  char *doc;
  size_t len;
  NMT_EQ_INT(nm_status_encode(&st, &doc, &len), 0);
  NMT_HAS(doc, "complaint-threshold=\"3\"");
  NMT_HAS(doc, "<complaint from=\"00000000000000aa\" count=\"4\" last-ms=\"900\"/>");
  NMT_CHECK(strstr(doc, "<servant id=\"00000000000000aa\" name=\"alice\"") &&
            !strstr(strstr(doc, "name=\"alice\""), "complainers=\"0\""));
  nm_status again;
  nm_status_init(&again);
  NMT_EQ_INT(nm_status_parse(doc, len, &again, NULL, err, sizeof err), 0);
  NMT_EQ_INT(again.servants[3].ncomplaint, 3);
  NMT_EQ_INT(again.servants[4].complaint[0].count, 3);
  NMT_EQ_INT(again.complaint_window_s, 60);
  free(doc);
  nm_status_close(&again);
  /* Never sent: a complaint from an invalid id, more kept than complainers. */
  st.servants[3].complainers = 1;
  NMT_EQ_INT(nm_status_encode(&st, &doc, &len), -EINVAL);
  nm_status_close(&st);

  /* More <complaint>s than we keep: the first NM_STATUS_COMPLAINTS_MAX, the rest counted. */
  char big[4096];
  int n = snprintf(big, sizeof big, "<status version=\"1\"><servant id=\"00000000000000aa\">");
  for (int i = 0; i < NM_STATUS_COMPLAINTS_MAX + 5; i++)
    n += snprintf(big + n, sizeof big - n, "<complaint from=\"00000000000001%02d\" count=\"1\" last-ms=\"5\"/>", i);
  snprintf(big + n, sizeof big - n, "</servant></status>");
  NMT_EQ_INT(nm_status_parse(big, strlen(big), &st, NULL, err, sizeof err), 0);
  NMT_EQ_INT(st.servants[0].ncomplaint, NM_STATUS_COMPLAINTS_MAX);
  NMT_EQ_INT(st.servants[0].complainers, NM_STATUS_COMPLAINTS_MAX + 5);
  nm_status_close(&st);
  expect_bad("<status version=\"1\"><servant id=\"00000000000000aa\"><complaint from=\"x\"/></servant></status>",
             NM_EMSG, "complaint 1");
  expect_bad("<status version=\"1\"><servant id=\"00000000000000aa\"><complaint from=\"00000000000000bb\" "
             "count=\"-1\"/></servant></status>", NM_EMSG, "count");
}

static const nmctl_peer_view *peer_of(const nmctl_peers *pv, const char *name) {
  for (size_t i = 0; i < pv->count; i++)
    if (strcmp(pv->peers[i].peer->name, name) == 0) return &pv->peers[i];
  return NULL;
}

static char *render_peers(const nmctl_peers *pv) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  NMT_EQ_INT(nmctl_render_peers(f, pv), 0);
  fclose(f);
  return buf;
}

static void test_peers(void) {
  nm_status st;
  nm_status_init(&st);
  char err[300];
  NMT_EQ_INT(nm_status_parse(peers_status, strlen(peers_status), &st, NULL, err, sizeof err), 0);
  nmctl_peers pv;
  NMT_EQ_INT(nmctl_peers_build(&st, "nobody", &pv), -ENOENT);

  /* dave, judged unreachable: everything comes through r1; he dials everyone himself. */
  NMT_EQ_INT(nmctl_peers_build(&st, "dave", &pv), 0);
  NMT_EQ_INT(pv.count, 5);
  const nmctl_peer_view *v = peer_of(&pv, "alice");
  NMT_EQ_INT(v->in.kind, NMCTL_PATH_RELAY);
  NMT_EQ_STR(v->in.relay, "00000000000000ff");
  NMT_EQ_INT(v->in.reason, NM_RELAY_REASON_SUSPICIOUS);
  NMT_EQ_INT(v->out.kind, NMCTL_PATH_DIRECT);
  NMT_EQ_STR(v->out.ip, "11.0.0.2");
  v = peer_of(&pv, "carol");
  NMT_EQ_INT(v->out.kind, NMCTL_PATH_DIRECT);
  NMT_EQ_INT(v->out.mapping, NM_MAPPING_UPNP);
  NMT_EQ_INT(v->out.port, 40001);
  v = peer_of(&pv, "r1");
  NMT_EQ_INT(v->in.kind, NMCTL_PATH_NONE);
  NMT_EQ_INT(v->out.kind, NMCTL_PATH_DIRECT); /* servants publish to relays */
  v = peer_of(&pv, "erin");
  NMT_EQ_INT(v->out.kind, NMCTL_PATH_DIRECT); /* dave does not complain about erin */
  char *out = render_peers(&pv);
  NMT_HAS(out, "dave (00000000000000dd): servant, relayed");
  NMT_HAS(out, "pulls from relay r1 (suspicious by quorum)");
  NMT_HAS(out, "HOW DAVE GETS ITS LINES");
  NMT_HAS(out, "via relay r1 (suspicious by quorum)");
  NMT_HAS(out, "direct to 11.0.0.4:40001 (mapped by upnp)");
  NMT_HAS(out, "direct to 11.0.0.2:4001 (observed)");
  NMT_HAS(out, "judged unreachable (suspicious) by a quorum");
  NMT_HAS(out, "(a reporter counts with 3 within 60s)");
  NMT_HAS(out, "from alice            4 live complaints, the last 0.9s ago (counts)");
  NMT_HAS(out, "from carol            1 live complaint, the last 1m10s ago\n");
  free(out);
  char *json = NULL;
  NMT_EQ_INT(nmctl_peers_to_json(&pv, 0, &json), 0);
  NMT_HAS(json, "\"relay_name\":\"r1\"");
  NMT_HAS(json, "\"from_name\":\"bob\",\"count\":3,\"last_ms\":1500,\"counts\":true");
  free(json);
  nmctl_peers_free(&pv);

  /* erin, on the pair path: alice's lines through bob, the others' direct; bob's own lines
   * come down the pull. Her lines go to everyone directly. */
  NMT_EQ_INT(nmctl_peers_build(&st, "erin", &pv), 0);
  v = peer_of(&pv, "alice");
  NMT_EQ_INT(v->in.kind, NMCTL_PATH_RELAY);
  NMT_EQ_INT(v->in.reason, NM_RELAY_REASON_PAIR);
  NMT_EQ_INT(peer_of(&pv, "carol")->in.kind, NMCTL_PATH_DIRECT);
  NMT_EQ_STR(peer_of(&pv, "carol")->in.ip, "11.0.0.6");
  NMT_EQ_INT(peer_of(&pv, "bob")->in.kind, NMCTL_PATH_DIRECT); /* bob reaches her */
  NMT_EQ_INT(peer_of(&pv, "dave")->out.kind, NMCTL_PATH_RELAY);
  out = render_peers(&pv);
  NMT_HAS(out, "the pair path");
  NMT_HAS(out, "via relay bob (pair path)");
  free(out);
  nmctl_peers_free(&pv);

  /* bob relays for erin: alice's lines to erin are his business, not alice's. */
  NMT_EQ_INT(nmctl_peers_build(&st, "alice", &pv), 0);
  NMT_EQ_INT(peer_of(&pv, "erin")->out.kind, NMCTL_PATH_RELAY);
  NMT_EQ_STR(peer_of(&pv, "erin")->out.relay, "00000000000000bb");
  NMT_EQ_INT(peer_of(&pv, "dave")->in.kind, NMCTL_PATH_DIRECT);
  nmctl_peers_free(&pv);
  /* by id as well as by name */
  NMT_EQ_INT(nmctl_peers_build(&st, "00000000000000bb", &pv), 0);
  NMT_EQ_STR(pv.self->name, "bob");
  nmctl_peers_free(&pv);
  nm_status_close(&st);
}

/* Issue 12: a provisional relay (relay-reason="provisional"): parsed, encoded back, shown by
 * the table, the dot graph and `peers` (every line also comes through the relay; the state
 * stays direct). */
static const char *provisional_status =
    "<status version=\"3\" heartbeat=\"1\" timeout=\"3\" servants=\"3\">"
    "<servant id=\"00000000000000aa\" name=\"alice\" ip=\"11.0.0.2\" port=\"4001\" state=\"direct\"/>"
    "<servant id=\"00000000000000dd\" name=\"dave\" ip=\"11.0.0.5\" port=\"4003\" state=\"direct\" "
    "relay=\"00000000000000ff\" relay-name=\"r1\" relay-reason=\"provisional\"/>"
    "<servant id=\"00000000000000ff\" name=\"r1\" role=\"relay\" ip=\"11.0.0.7\" port=\"7000\" "
    "state=\"direct\" clients=\"1\"/>"
    "</status>";

static void test_provisional(void) {
  nm_status st;
  nm_status_init(&st);
  char err[300];
  NMT_EQ_INT(nm_status_parse(provisional_status, strlen(provisional_status), &st, NULL, err, sizeof err), 0);
  NMT_EQ_INT(st.servants[1].relay_reason, NM_RELAY_REASON_PROVISIONAL);
  NMT_EQ_STR(nm_relay_reason_name(NM_RELAY_REASON_PROVISIONAL), "provisional");
  char *out = render(nmctl_render_table, &st);
  char *dave = strstr(out, "\ndave ");
  NMT_CHECK(dave && strstr(dave, "direct") && strstr(dave, "r1 (provisional)"));
  free(out);
  out = render(nmctl_render_dot, &st);
  NMT_HAS(out, "\"s_00000000000000ff\" -> \"s_00000000000000dd\" [label=\"relay (provisional)\"");
  free(out);
  char *doc;
  size_t len;
  NMT_EQ_INT(nm_status_encode(&st, &doc, &len), 0);
  NMT_HAS(doc, "relay-reason=\"provisional\"");
  free(doc);

  nmctl_peers pv;
  NMT_EQ_INT(nmctl_peers_build(&st, "dave", &pv), 0);
  const nmctl_peer_view *v = peer_of(&pv, "alice");
  NMT_EQ_INT(v->in.kind, NMCTL_PATH_RELAY);
  NMT_EQ_INT(v->in.reason, NM_RELAY_REASON_PROVISIONAL);
  out = render_peers(&pv);
  NMT_HAS(out, "dave (00000000000000dd): servant, direct");
  NMT_HAS(out, "pulls from relay r1 (provisional: behind NAT, no port mapping yet)");
  NMT_HAS(out, "via relay r1 (provisional: behind NAT, no port mapping yet)");
  NMT_HAS(out, "why dave pulls from r1: provisional");
  free(out);
  char *json = NULL;
  NMT_EQ_INT(nmctl_peers_to_json(&pv, 0, &json), 0);
  NMT_HAS(json, "\"relay_reason\":\"provisional\"");
  free(json);
  nmctl_peers_free(&pv);
  nm_status_close(&st);
}

/* Issue 12: a relay on standby (relay-standby="r1", no relay): every servant reaches it
 * over punched connections. Shown by the table and `peers`; its relay's slot is free. */
static const char *standby_status =
    "<status version=\"4\" heartbeat=\"1\" timeout=\"3\" servants=\"3\">"
    "<servant id=\"00000000000000aa\" name=\"alice\" ip=\"11.0.0.2\" port=\"4001\" state=\"relayed\" "
    "relay=\"\" relay-name=\"\" relay-standby=\"r1\"/>"
    "<servant id=\"00000000000000bb\" name=\"bob\" ip=\"11.0.0.3\" port=\"4002\" state=\"relayed\" "
    "relay=\"\" relay-name=\"\" relay-standby=\"r1\"/>"
    "<servant id=\"00000000000000ff\" name=\"r1\" role=\"relay\" ip=\"11.0.0.7\" port=\"7000\" "
    "state=\"direct\" clients=\"0\"/>"
    "</status>";

static void test_standby(void) {
  nm_status st;
  nm_status_init(&st);
  char err[300];
  NMT_EQ_INT(nm_status_parse(standby_status, strlen(standby_status), &st, NULL, err, sizeof err), 0);
  NMT_EQ_STR(st.servants[0].relay_standby, "r1");
  NMT_EQ_STR(st.servants[2].relay_standby, "");
  char *out = render(nmctl_render_table, &st);
  char *alice = strstr(out, "\nalice ");
  NMT_CHECK(alice && strstr(alice, "relayed") && strstr(alice, "r1 (standby)"));
  free(out);
  char *doc;
  size_t len;
  NMT_EQ_INT(nm_status_encode(&st, &doc, &len), 0);
  NMT_HAS(doc, "relay-standby=\"r1\"");
  free(doc);

  nmctl_peers pv;
  NMT_EQ_INT(nmctl_peers_build(&st, "alice", &pv), 0);
  const nmctl_peer_view *v = peer_of(&pv, "bob");
  /* relayed, but not lost: its lines come over the punched connection */
  NMT_EQ_INT(v->in.kind, NMCTL_PATH_DIRECT);
  out = render_peers(&pv);
  NMT_HAS(out, "pulls from no relay (relay r1 on standby)");
  NMT_HAS(out, "direct (punched: its relay on standby)");
  NMT_HAS(out, "why alice pulls from no relay: every servant reaches it directly (punched)");
  free(out);
  char *json = NULL;
  NMT_EQ_INT(nmctl_peers_to_json(&pv, 0, &json), 0);
  NMT_HAS(json, "\"address_kind\":\"punched\"");
  free(json);
  nmctl_peers_free(&pv);
  nm_status_close(&st);
}

/* Several managers through a store (issue 14): <store> with the overlay's managers, and
 * each servant's manager (its holder). */
static const char *store_status =
    "<status version=\"9\" heartbeat=\"1\" timeout=\"3\" servants=\"3\">"
    "<store url=\"sentinel://10.0.0.7:26379,10.0.0.8:26379/nm\" state=\"up\" primary=\"10.0.0.5:6379\" "
    "managers=\"3\">"
    "<manager name=\"m1\" addr=\"10.0.0.1\" port=\"85\" last-seen-ms=\"400\"/>"
    "<manager name=\"m2\" addr=\"10.0.0.2\" port=\"85\"/>"
    "<manager name=\"m3\" addr=\"2001:db8::3\" port=\"8085\" last-seen-ms=\"12000\"/>"
    "</store>"
    "<servant id=\"00000000000000aa\" name=\"alice\" manager=\"m1\" ip=\"10.0.1.1\" port=\"4001\" state=\"direct\"/>"
    "<servant id=\"00000000000000bb\" name=\"bob\" manager=\"m2-with-a-long-name\" ip=\"10.0.1.2\" port=\"4001\" "
    "state=\"relayed\" relay=\"00000000000000cc\" relay-name=\"r1\"/>"
    "<servant id=\"00000000000000cc\" name=\"r1\" role=\"relay\" manager=\"m3\" ip=\"10.0.1.3\" port=\"7000\" "
    "state=\"direct\"/>"
    "</status>";

static void test_store_parse(void) {
  nm_status st;
  nm_status_init(&st);
  char err[300];
  NMT_EQ_INT(nm_status_parse(store_status, strlen(store_status), &st, NULL, err, sizeof err), 0);
  const nm_status_store *k = &st.store;
  NMT_EQ_INT(k->present, 1);
  NMT_EQ_STR(k->url, "sentinel://10.0.0.7:26379,10.0.0.8:26379/nm");
  NMT_EQ_INT(k->state, NM_STORE_UP);
  NMT_EQ_STR(k->primary, "10.0.0.5:6379");
  NMT_EQ_INT(k->nmanagers, 3);
  NMT_EQ_INT(k->nmanagers_total, 3);
  NMT_EQ_STR(k->managers[2].name, "m3");
  NMT_EQ_STR(k->managers[2].addr, "2001:db8::3");
  NMT_EQ_INT(k->managers[2].port, 8085);
  NMT_EQ_INT(k->managers[0].has_last_seen, 1);
  NMT_EQ_INT(k->managers[0].last_seen_ms, 400);
  NMT_EQ_INT(k->managers[1].has_last_seen, 0);
  NMT_EQ_STR(st.servants[0].manager, "m1");
  NMT_EQ_STR(st.servants[1].manager, "m2-with-a-long-name");
  NMT_CHECK(nm_status_has_managers(&st));

  /* What the manager encodes reads back the same. */
  char *doc;
  size_t len;
  NMT_EQ_INT(nm_status_encode(&st, &doc, &len), 0);
  NMT_HAS(doc, "<store url=\"sentinel://10.0.0.7:26379,10.0.0.8:26379/nm\" state=\"up\" "
               "primary=\"10.0.0.5:6379\" managers=\"3\">");
  NMT_HAS(doc, "<manager name=\"m2\" addr=\"10.0.0.2\" port=\"85\"/>");
  NMT_HAS(doc, "name=\"alice\" role=\"servant\" manager=\"m1\"");
  nm_status again;
  nm_status_init(&again);
  NMT_EQ_INT(nm_status_parse(doc, len, &again, NULL, err, sizeof err), 0);
  NMT_EQ_INT(again.store.present, 1);
  NMT_EQ_INT(again.store.state, NM_STORE_UP);
  NMT_EQ_INT(again.store.nmanagers, 3);
  NMT_EQ_INT(again.store.managers[2].last_seen_ms, 12000);
  NMT_EQ_STR(again.servants[2].manager, "m3");
  free(doc);
  nm_status_close(&again);

  /* The store down: no primary; a manager that has no servant listed yet. */
  st.store.state = NM_STORE_DOWN;
  st.store.primary[0] = 0;
  NMT_EQ_INT(nm_status_encode(&st, &doc, &len), 0);
  NMT_HAS(doc, "state=\"down\" primary=\"\"");
  NMT_EQ_INT(nm_status_parse(doc, len, &again, NULL, err, sizeof err), 0);
  NMT_EQ_INT(again.store.state, NM_STORE_DOWN);
  NMT_EQ_STR(again.store.primary, "");
  free(doc);
  nm_status_close(&again);

  /* Never sent: a holder or a manager's name that is no valid text, an invalid address. */
  strcpy(st.servants[0].manager, "m\xff");
  NMT_EQ_INT(nm_status_encode(&st, &doc, &len), -EINVAL);
  strcpy(st.servants[0].manager, "m1");
  strcpy(st.store.managers[1].addr, "manager-two.example");
  NMT_EQ_INT(nm_status_encode(&st, &doc, &len), -EINVAL);
  nm_status_close(&st);

  /* Without a store: no <store>, no manager attribute; the JSON and the table as before. */
  nm_status_init(&st);
  nm_status_servant *a = nm_status_add(&st);
  strcpy(a->id, "00000000000000aa");
  NMT_EQ_INT(nm_status_encode(&st, &doc, &len), 0);
  NMT_CHECK(strstr(doc, "<store") == NULL && strstr(doc, "manager=") == NULL);
  NMT_CHECK(!nm_status_has_managers(&st));
  free(doc);
  nm_status_close(&st);

  /* More managers than kept: counted, not kept; add_manager says so. */
  nm_status_init(&st);
  for (int i = 0; i < NM_STATUS_MANAGERS_MAX; i++) NMT_CHECK(nm_status_add_manager(&st) != NULL);
  NMT_CHECK(nm_status_add_manager(&st) == NULL);
  NMT_EQ_INT(st.store.nmanagers, NM_STATUS_MANAGERS_MAX);
  NMT_EQ_INT(st.store.nmanagers_total, NM_STATUS_MANAGERS_MAX + 1);
  nm_status_close(&st);
  char big[8192];
  int n = snprintf(big, sizeof big, "<status version=\"1\"><store url=\"redis://10.0.0.5:6379\" state=\"up\">");
  for (int i = 0; i < NM_STATUS_MANAGERS_MAX + 3; i++)
    n += snprintf(big + n, sizeof big - n, "<manager name=\"m%d\" addr=\"10.0.0.%d\" port=\"85\"/>", i, i + 1);
  snprintf(big + n, sizeof big - n, "</store></status>");
  NMT_EQ_INT(nm_status_parse(big, strlen(big), &st, NULL, err, sizeof err), 0);
  NMT_EQ_INT(st.store.nmanagers, NM_STATUS_MANAGERS_MAX);
  NMT_EQ_INT(st.store.nmanagers_total, NM_STATUS_MANAGERS_MAX + 3);
  nm_status_close(&st);

  expect_bad("<status version=\"1\"><store state=\"sideways\"/></status>", NM_EMSG, "store: invalid state");
  expect_bad("<status version=\"1\"><store state=\"up\"><manager addr=\"10.0.0.1\"/></store></status>", NM_EMSG,
             "manager 1: missing name");
  expect_bad("<status version=\"1\"><store><manager name=\"m\" port=\"70000\"/></store></status>", NM_EMSG,
             "port");
  expect_bad("<status version=\"1\"><store><manager name=\"m\" addr=\"host.example\"/></store></status>", NM_EMSG,
             "addr");
  char longname[300];
  snprintf(longname, sizeof longname,
           "<status version=\"1\"><servant id=\"00000000000000aa\" manager=\"%0100d\"/></status>", 0);
  expect_bad(longname, NM_EMSG, "manager");
}

static void test_store_table(void) {
  nm_status st;
  nm_status_init(&st);
  char err[300];
  NMT_EQ_INT(nm_status_parse(store_status, strlen(store_status), &st, NULL, err, sizeof err), 0);
  char *out = render(nmctl_render_table, &st);
  NMT_HAS(out, "store sentinel://10.0.0.7:26379,10.0.0.8:26379/nm up (primary 10.0.0.5:6379), 3 managers: "
               "m1 10.0.0.1:85, m2 10.0.0.2:85, m3 [2001:db8::3]:8085\n");
  /* The MANAGER column between RELAY and LAST-HB, as wide as its longest cell. */
  char *head = strstr(out, "\nNAME");
  NMT_CHECK(head && strstr(head, "RELAY  MANAGER              LAST-HB") != NULL);
  char *alice = strstr(out, "\nalice ");
  NMT_CHECK(alice && strstr(alice, "m1                   -") != NULL);
  char *bob = strstr(out, "\nbob ");
  NMT_CHECK(bob && strstr(bob, "r1     m2-with-a-long-name") != NULL);
  int lines = 0;
  for (char *p = out; *p; p++) lines += *p == '\n';
  NMT_EQ_INT(lines, 6); /* header, store, columns, three servants */
  free(out);
  /* A servant without a holder among others: "-". */
  st.servants[0].manager[0] = 0;
  out = render(nmctl_render_table, &st);
  alice = strstr(out, "\nalice ");
  NMT_CHECK(alice && strstr(alice, "  -                    -") != NULL);
  free(out);
  /* The store down, its managers past what a status keeps, a hostile url. */
  st.store.state = NM_STORE_DOWN;
  st.store.primary[0] = 0;
  st.store.nmanagers = 1;
  st.store.nmanagers_total = 40;
  strcpy(st.store.url, "redis://10.0.0.5:6379\n\x1b[2J");
  out = render(nmctl_render_table, &st);
  NMT_HAS(out, "store redis://10.0.0.5:6379??[2J down, 40 managers: m1 10.0.0.1:85, +39\n");
  free(out);
  nm_status_close(&st);
}

static void test_store_dot(void) {
  nm_status st;
  nm_status_init(&st);
  char err[300];
  NMT_EQ_INT(nm_status_parse(store_status, strlen(store_status), &st, NULL, err, sizeof err), 0);
  /* A hostile holder name stays inside its label. */
  strcpy(st.servants[0].manager, "m\"];evil");
  char *out = render(nmctl_render_dot, &st);
  NMT_HAS(out, "natmesh overlay version 9, 3 servants, store up\"");
  /* One node per manager, the store's first (with their addresses), then other holders. */
  NMT_HAS(out, "\"m_0\" [label=\"manager\\nm1\\n10.0.0.1:85\"");
  NMT_HAS(out, "\"m_2\" [label=\"manager\\nm3\\n[2001:db8::3]:8085\"");
  NMT_HAS(out, "\"m_3\" [label=\"manager\\nm\\\"];evil\", shape=doubleoctagon");
  NMT_HAS(out, "\"m_4\" [label=\"manager\\nm2-with-a-long-name\", shape=doubleoctagon");
  /* Servants hang off their holder; the relayed one off its relay; the asked manager's
   * node is left out, nobody hangs off it. */
  NMT_HAS(out, "\"m_3\" -> \"s_00000000000000aa\"");
  NMT_HAS(out, "\"m_2\" -> \"s_00000000000000cc\"");
  NMT_HAS(out, "\"s_00000000000000cc\" -> \"s_00000000000000bb\" [label=\"relay\"");
  NMT_CHECK(strstr(out, "  manager ") == NULL);
  if (system("command -v dot >/dev/null 2>&1") == 0) {
    char path[] = "/tmp/nmt_dot_XXXXXX";
    int fd = mkstemp(path);
    NMT_CHECK(fd >= 0);
    NMT_EQ_INT(write(fd, out, strlen(out)), (long long)strlen(out));
    close(fd);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "dot -Tpng %s -o /dev/null", path);
    NMT_EQ_INT(system(cmd), 0);
    unlink(path);
  }
  free(out);
  /* A servant without a holder hangs off the asked manager, whose node is back. */
  st.servants[2].manager[0] = 0;
  out = render(nmctl_render_dot, &st);
  NMT_HAS(out, "  manager [label=\"manager\\n127.0.0.1:85\"");
  NMT_HAS(out, "  manager -> \"s_00000000000000cc\"");
  free(out);
  nm_status_close(&st);
}

/* A paged status with a store (each page carries it): put together, one <store>, the first
 * page's, and every page's servants with their holders. */
static void test_store_pages(void) {
  nm_status st;
  nm_status_init(&st);
  char err[300];
  for (int i = 0; i < 2; i++) {
    nm_status_manager *m = nm_status_add_manager(&st);
    snprintf(m->name, sizeof m->name, "m%d", i + 1);
    snprintf(m->addr, sizeof m->addr, "10.0.0.%d", i + 1);
    m->port = 85;
  }
  strcpy(st.store.url, "redis://10.0.0.5:6379");
  st.store.state = NM_STORE_UP;
  strcpy(st.store.primary, "10.0.0.5:6379");
  st.version = 5;
  nmctl_pages p;
  nmctl_pages_init(&p);
  for (unsigned page = 0; page < 3; page++) {
    nm_status_servant *s = nm_status_add(&st);
    snprintf(s->id, sizeof s->id, "%016x", 0xa0 + page);
    snprintf(s->name, sizeof s->name, "s%u", page);
    snprintf(s->manager, sizeof s->manager, "m%u", page % 2 + 1);
    char *doc;
    size_t len;
    NMT_EQ_INT(nm_status_encode_page(&st, page, 3, 3, &doc, &len), 0);
    NMT_EQ_INT(nmctl_pages_add(&p, doc, len, err, sizeof err), page == 2 ? 1 : 0);
    free(doc);
    st.count = 0; /* the next page lists the next servant */
  }
  char *whole;
  size_t len;
  NMT_EQ_INT(nmctl_pages_take(&p, &whole, &len), 0);
  nmctl_pages_close(&p);
  char *store = strstr(whole, "<store");
  NMT_CHECK(store && strstr(store + 1, "<store") == NULL);
  nm_status again;
  nm_status_init(&again);
  NMT_EQ_INT(nm_status_parse(whole, len, &again, NULL, err, sizeof err), 0);
  NMT_EQ_INT(again.count, 3);
  NMT_EQ_INT(again.store.nmanagers, 2);
  NMT_EQ_STR(again.servants[2].manager, "m1");
  NMT_EQ_STR(again.servants[1].manager, "m2");
  free(whole);
  nm_status_close(&again);
  nm_status_close(&st);
}

static void test_age(void) {
  char b[32];
  NMT_EQ_STR(nmctl_format_age(b, sizeof b, 1, 0), "0.0s ago");
  NMT_EQ_STR(nmctl_format_age(b, sizeof b, 1, 1299), "1.2s ago");
  NMT_EQ_STR(nmctl_format_age(b, sizeof b, 1, 59999), "59.9s ago");
  NMT_EQ_STR(nmctl_format_age(b, sizeof b, 1, 65000), "1m05s ago");
  NMT_EQ_STR(nmctl_format_age(b, sizeof b, 1, 7260000), "2h01m ago");
  NMT_EQ_STR(nmctl_format_age(b, sizeof b, 0, 5), "-");
  NMT_EQ_STR(nmctl_format_addr(b, sizeof b, "", 5), "-");
}

/* Hostile names: quotes, backslashes, newlines, tabs, braces and non-ASCII. */
static const char *hostile_status =
    "<status version=\"9\" heartbeat=\"1\" timeout=\"3\">"
    "<servant id=\"00000000000000aa\" name=\"a&quot;];evil -&gt; x [label=&quot;\" ip=\"1.1.1.1\" port=\"1\"/>"
    "<servant id=\"00000000000000bb\" name=\"back\\slash\\n\\\" ip=\"1.1.1.2\" port=\"2\"/>"
    "<servant id=\"00000000000000cc\" name=\"new&#10;line&#9;}{caf\xc3\xa9\" ip=\"1.1.1.3\" port=\"3\" "
    "state=\"relayed\" relay=\"00000000000000dd\"/>"
    "<servant id=\"00000000000000dd\" name=\"r\" role=\"relay\" ip=\"1.1.1.4\" port=\"4\"/>"
    "</status>";

static void test_dot_escaping(void) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  nmctl_dot_escape(f, "a\"b\\c\nd\x01" "e\xc3\xa9");
  fclose(f);
  NMT_EQ_STR(buf, "a\\\"b\\\\c?d?e??");
  free(buf);

  nm_status st;
  nm_status_init(&st);
  char err[300];
  NMT_EQ_INT(nm_status_parse(hostile_status, strlen(hostile_status), &st, NULL, err, sizeof err), 0);
  char *out = render(nmctl_render_dot, &st);
  NMT_CHECK(strncmp(out, "digraph natmesh {", 17) == 0);
  NMT_HAS(out, "a\\\"];evil -> x [label=\\\"");
  NMT_HAS(out, "back\\\\slash\\\\n\\\\");
  NMT_HAS(out, "new?line?}{caf??");
  /* The relayed servant hangs off its relay; the others off the manager. */
  NMT_HAS(out, "\"s_00000000000000dd\" -> \"s_00000000000000cc\" [label=\"relay\"");
  NMT_HAS(out, "manager -> \"s_00000000000000aa\"");
  NMT_CHECK(strstr(out, "manager -> \"s_00000000000000cc\"") == NULL);
  NMT_HAS(out, "shape=box3d");
  /* Every line outside quotes balances: the graph has exactly one closing brace at the end. */
  int depth = 0, quoted = 0, min_depth = 0;
  for (char *p = out; *p; p++) {
    if (quoted && *p == '\\' && p[1]) { p++; continue; }
    if (*p == '"') quoted = !quoted;
    else if (!quoted && *p == '{') depth++;
    else if (!quoted && *p == '}') { depth--; if (depth < min_depth) min_depth = depth; }
  }
  NMT_EQ_INT(quoted, 0);
  NMT_EQ_INT(depth, 0);
  NMT_EQ_INT(min_depth, 0);

  /* And Graphviz itself agrees, when it is installed. */
  if (system("command -v dot >/dev/null 2>&1") == 0) {
    char path[] = "/tmp/nmt_dot_XXXXXX";
    int fd = mkstemp(path);
    NMT_CHECK(fd >= 0);
    NMT_EQ_INT(write(fd, out, strlen(out)), (long long)strlen(out));
    close(fd);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "dot -Tpng %s -o /dev/null", path);
    NMT_EQ_INT(system(cmd), 0);
    unlink(path);
  } else {
    printf("     (dot not installed: Graphviz check skipped)\n");
  }
  free(out);
  /* The table replaces control characters too. */
  out = render(nmctl_render_table, &st);
  NMT_CHECK(strchr(out, '\t') == NULL);
  NMT_HAS(out, "new?line?}{caf??");
  free(out);
  nm_status_close(&st);
}

static void test_xml_render(void) {
  nm_status st;
  nm_status_init(&st);
  xmlDoc *doc;
  char err[300];
  NMT_EQ_INT(nm_status_parse(good_status, strlen(good_status), &st, &doc, err, sizeof err), 0);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  NMT_EQ_INT(nmctl_render_xml(f, doc), 0);
  fclose(f);
  NMT_HAS(buf, "<status version=\"42\"");
  NMT_HAS(buf, "\n  <servant id=\"3f9a0c1d2e4b5a69\"");
  /* What is printed parses back to the same status. */
  nm_status again;
  nm_status_init(&again);
  NMT_EQ_INT(nm_status_parse(buf, len, &again, NULL, err, sizeof err), 0);
  NMT_EQ_INT(again.count, 3);
  nm_status_close(&again);
  free(buf);
  xmlFreeDoc(doc);
  nm_status_close(&st);
}

/* A fresh folder under /tmp for one test's keys. */
static void key_dir(char *out, size_t len) {
  snprintf(out, len, "/tmp/unit_ctl.XXXXXX");
  if (!mkdtemp(out)) out[0] = 0;
}

static void write_file(const char *path, const char *text, mode_t mode) {
  FILE *f = fopen(path, "w");
  if (f) {
    fputs(text, f);
    fclose(f);
  }
  chmod(path, mode);
}

static void test_key_load(void) {
  char dir[64], path[128], err[600];
  key_dir(dir, sizeof dir);
  NMT_CHECK(dir[0]);
  nm_fingerprint fp;
  /* keygen makes the key, and keeps it when run again. */
  NMT_EQ_INT(nmctl_keygen(dir, &fp, NULL, 0, err, sizeof err), 0);
  nm_fingerprint again;
  NMT_EQ_INT(nmctl_keygen(dir, &again, NULL, 0, err, sizeof err), 0);
  NMT_CHECK(nm_fingerprint_equal(&fp, &again));
  snprintf(path, sizeof path, "%s/key.pem", dir);
  nm_identity id;
  NMT_EQ_INT(nmctl_key_load(path, &id, err, sizeof err), 0);
  NMT_CHECK(nm_fingerprint_equal(&id.fp, &fp));
  NMT_EQ_INT(strncmp(id.id, fp.hex, NM_ID_LEN), 0);
  nm_identity_close(&id);

  /* Open to others: refused, saying how to fix it. */
  chmod(path, 0644);
  NMT_EQ_INT(nmctl_key_load(path, &id, err, sizeof err), NM_ECONFIG);
  NMT_HAS(err, "chmod 600");
  chmod(path, 0600);

  /* Missing: never created. */
  char missing[128];
  snprintf(missing, sizeof missing, "%s/nothing.pem", dir);
  NMT_EQ_INT(nmctl_key_load(missing, &id, err, sizeof err), -ENOENT);
  NMT_CHECK(access(missing, F_OK) != 0);

  /* Not a key; a directory. */
  char junk[128];
  snprintf(junk, sizeof junk, "%s/junk.pem", dir);
  write_file(junk, "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n", 0600);
  NMT_EQ_INT(nmctl_key_load(junk, &id, err, sizeof err), NM_EKEY);
  NMT_EQ_INT(nmctl_key_load(dir, &id, err, sizeof err), NM_EKEY);
  unlink(junk);
  unlink(path);
  rmdir(dir);
}

static void test_auth_resolve(void) {
  char dir[64], path[128], err[700];
  key_dir(dir, sizeof dir);
  nm_fingerprint fp, pinned;
  NMT_EQ_INT(nmctl_keygen(dir, &fp, NULL, 0, err, sizeof err), 0);
  snprintf(path, sizeof path, "%s/key.pem", dir);
  nm_identity id;

  /* Local: the manager's own key, and the manager expected to be its owner. */
  nmctl_auth_opts local = {.state_dir = dir};
  NMT_EQ_INT(nmctl_auth_resolve(&local, &id, &pinned, err, sizeof err), 0);
  NMT_CHECK(nm_fingerprint_equal(&id.fp, &fp) && nm_fingerprint_equal(&pinned, &fp));
  nm_identity_close(&id);

  /* Remote: the admin key, the manager's fingerprint as given. */
  const char *other = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
  nmctl_auth_opts remote = {.admin_key = path, .manager_key = other};
  NMT_EQ_INT(nmctl_auth_resolve(&remote, &id, &pinned, err, sizeof err), 0);
  NMT_CHECK(nm_fingerprint_equal(&id.fp, &fp));
  NMT_EQ_STR(pinned.hex, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
  nm_identity_close(&id);

  /* An admin key without the manager's fingerprint, a bad fingerprint: usage errors. */
  nmctl_auth_opts no_fp = {.admin_key = path};
  NMT_EQ_INT(nmctl_auth_resolve(&no_fp, &id, &pinned, err, sizeof err), -EINVAL);
  NMT_HAS(err, "--manager-key");
  nmctl_auth_opts bad_fp = {.admin_key = path, .manager_key = "abc"};
  NMT_EQ_INT(nmctl_auth_resolve(&bad_fp, &id, &pinned, err, sizeof err), -EINVAL);
  NMT_HAS(err, "64 hex");

  /* A manager state dir without a key: explained, and no key is made there. */
  char empty[64];
  key_dir(empty, sizeof empty);
  nmctl_auth_opts none = {.state_dir = empty};
  NMT_EQ_INT(nmctl_auth_resolve(&none, &id, &pinned, err, sizeof err), -ENOENT);
  NMT_HAS(err, "no manager key in");
  NMT_HAS(err, "--admin-key");
  char made[128];
  snprintf(made, sizeof made, "%s/key.pem", empty);
  NMT_CHECK(access(made, F_OK) != 0);
  rmdir(empty);
  unlink(path);
  rmdir(dir);
}

int main(void) {
  nm_xml_init();
  NMT_RUN(test_parse_good);
  NMT_RUN(test_parse_bad);
  NMT_RUN(test_declared_count_ignored);
  NMT_RUN(test_table);
  NMT_RUN(test_pair);
  NMT_RUN(test_complaints_round_trip);
  NMT_RUN(test_peers);
  NMT_RUN(test_provisional);
  NMT_RUN(test_standby);
  NMT_RUN(test_store_parse);
  NMT_RUN(test_store_table);
  NMT_RUN(test_store_dot);
  NMT_RUN(test_store_pages);
  NMT_RUN(test_age);
  NMT_RUN(test_dot_escaping);
  NMT_RUN(test_xml_render);
  NMT_RUN(test_key_load);
  NMT_RUN(test_auth_resolve);
  xmlCleanupParser();
  return nmt_done();
}
