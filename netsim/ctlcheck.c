#include "ctlcheck.h"
#include "expand.h"
#include "nsops.h"
#include "util.h"

#include "nm_xml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* Whether the dial address ctl reports (address and port, the address possibly IPv6, possibly
 * bracketed) is want: "ADDR" (any port), "A.B.C.D:PORT", "[V6]:PORT" or a bare "V6".
 * Addresses are compared as addresses, so "2001:db8::1" and "2001:0db8:0::1" match, and a
 * v4-mapped IPv6 address matches the IPv4 one. */
static int nsim__dial_is(const char *dip, const char *dport, const char *want) {
  struct nsim_endpoint have, w;
  if (!dip || nsim_addr_parse(dip, &have) < 0) return 0;
  if (nsim_endpoint_parse(want, &w) == 0) {
    char *end;
    unsigned long port = dport ? strtoul(dport, &end, 10) : 0;
    return nsim_addr_equal(&have, &w) && dport && !*end && port == w.port;
  }
  return nsim_addr_parse(want, &w) == 0 && nsim_addr_equal(&have, &w);
}

/* want is "VALUE" or "!VALUE" (anything but VALUE). */
static int nsim__is_value(const char *have, const char *want) {
  if (!want) return 1;
  if (want[0] == '!') return !have || strcmp(have, want + 1) != 0;
  return have && !strcmp(have, want);
}

/* Appends to buf (at *used), never past len. */
static void nsim__add(char *buf, size_t len, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void nsim__add(char *buf, size_t len, size_t *used, const char *fmt, ...) {
  if (*used + 1 >= len) return;
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(buf + *used, len - *used, fmt, ap);
  va_end(ap);
  if (w > 0) *used = *used + (size_t)w < len ? *used + (size_t)w : len - 1;
}

struct nsim__entry {
  const char *id, *name, *relay;
  unsigned long clients;
};

/* Relay bookkeeping as the status shows it: every servant's clients count against the
 * servants that name it as their relay, and no servant names a relay that is not listed.
 * Returns 1 consistent, 0 not; out says which relay reports what. */
static int nsim__relay_counts(xmlNode *root, char *out, size_t outlen) {
  size_t n = 0, used = 0;
  for (xmlNode *k = root->children; k; k = k->next)
    if (k->type == XML_ELEMENT_NODE && !strcmp((const char *)k->name, "servant")) n++;
  struct nsim__entry *e = calloc(n ? n : 1, sizeof *e);
  if (!e) return snprintf(out, outlen, "out of memory"), 0;
  n = 0;
  for (xmlNode *k = root->children; k; k = k->next) {
    if (k->type != XML_ELEMENT_NODE || strcmp((const char *)k->name, "servant")) continue;
    const char *cl = nm_xml_attr(k, "clients");
    e[n].id = nm_xml_attr(k, "id");
    e[n].name = nm_xml_attr(k, "name");
    e[n].relay = nm_xml_attr(k, "relay");
    e[n].clients = cl ? strtoul(cl, NULL, 10) : 0;
    if (!e[n].id) e[n].id = "";
    if (!e[n].name) e[n].name = "?";
    if (!e[n].relay) e[n].relay = "";
    n++;
  }
  int ok = 1, relays = 0;
  char good[256] = "";
  size_t gused = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned long assigned = 0;
    char who[128] = "";
    size_t wused = 0;
    for (size_t j = 0; j < n; j++)
      if (e[i].id[0] && !strcmp(e[j].relay, e[i].id)) {
        nsim__add(who, sizeof who, &wused, "%s%s", assigned ? " " : "", e[j].name);
        assigned++;
      }
    if (!assigned && !e[i].clients) continue;
    relays++;
    if (assigned != e[i].clients) {
      ok = 0;
      nsim__add(out, outlen, &used, "%s%s reports %lu client%s but %lu servant%s list%s it%s%s%s",
                used ? "; " : "relay counts wrong: ", e[i].name, e[i].clients,
                e[i].clients == 1 ? "" : "s", assigned, assigned == 1 ? "" : "s",
                assigned == 1 ? "s" : "", assigned ? " (" : "", who, assigned ? ")" : "");
    } else {
      nsim__add(good, sizeof good, &gused, "%s%s %lu (%s)", gused ? ", " : "", e[i].name,
                assigned, who);
    }
  }
  for (size_t j = 0; j < n; j++) {
    if (!e[j].relay[0]) continue;
    int listed = 0;
    for (size_t i = 0; i < n; i++) listed |= !strcmp(e[i].id, e[j].relay);
    if (!listed) {
      ok = 0;
      nsim__add(out, outlen, &used, "%s%s lists relay %s, which is not registered",
                used ? "; " : "relay counts wrong: ", e[j].name, e[j].relay);
    }
  }
  if (ok) snprintf(out, outlen, "relay counts consistent: %s", relays ? good : "no relay has clients");
  free(e);
  return ok;
}

int nsim_ctl_check(struct nsim_run *r, int node, const char *manager, const char *state_dir,
                   const struct nsim_ctl_want *w, char *detail, size_t detaillen) {
  char ctl[PATH_MAX], err[256];
  if (nsim_expand(r, "${bin:natmesh-ctl}", ctl, sizeof ctl, err, sizeof err) < 0) return -EINVAL;
  char *argv[9] = {ctl, "--manager", (char *)manager};
  int argc = 3;
  if (state_dir) argv[argc++] = "--state-dir", argv[argc++] = (char *)state_dir;
  argv[argc++] = "status", argv[argc++] = "--format", argv[argc++] = "xml", argv[argc] = NULL;
  size_t cap = NM_XML_MAX_BYTES;
  char *out = malloc(cap);
  if (!out) return -ENOMEM;
  int st;
  int rc = nsim_ns_run(nsim_run_ns(r, node), argv, 5000, out, cap, &st);
  if (rc < 0 || st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    out[strcspn(out, "\n")] = 0;
    snprintf(detail, detaillen, "natmesh-ctl status failed: %s", rc < 0 ? strerror(-rc) : out);
    free(out);
    return rc < 0 ? rc : -EIO;
  }
  xmlDoc *doc;
  rc = nm_xml_parse(out, strlen(out), &doc, err, sizeof err);
  free(out);
  if (rc < 0) {
    snprintf(detail, detaillen, "natmesh-ctl answered something unreadable: %s", err);
    return rc;
  }
  xmlNode *root = xmlDocGetRootElement(doc);
  int holds = 1;
  size_t used = 0;
  detail[0] = 0;
  if (w->servant) {
    xmlNode *found = NULL;
    int count = 0;
    for (xmlNode *n = root->children; n; n = n->next) {
      if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, "servant")) continue;
      count++;
      const char *name = nm_xml_attr(n, "name");
      if (name && !strcmp(name, w->servant)) found = n;
    }
    if (!found) {
      holds = !w->present;
      nsim__add(detail, detaillen, &used, "manager lists %d servant(s), not %s", count, w->servant);
    } else {
      const char *s = nm_xml_attr(found, "state"), *m = nm_xml_attr(found, "mapping");
      const char *relay = nm_xml_attr(found, "relay-name");
      const char *holder = nm_xml_attr(found, "manager");
      /* Where peers are told to dial: dial-ip/-port, or the observed address when absent. */
      const char *dip = nm_xml_attr(found, "dial-ip"), *dport = nm_xml_attr(found, "dial-port");
      if (!dip || !*dip) dip = nm_xml_attr(found, "ip"), dport = nm_xml_attr(found, "port");
      char dial_have[96];
      int v6 = dip && strchr(dip, ':') && dip[0] != '[';
      snprintf(dial_have, sizeof dial_have, "%s%s%s:%s", v6 ? "[" : "", dip ? dip : "?",
               v6 ? "]" : "", dport ? dport : "?");
      int dial_ok = !w->dial || nsim__dial_is(dip, dport, w->dial);
      holds = w->present && nsim__is_value(s, w->state) && nsim__is_value(m, w->mapping) &&
              dial_ok && nsim__is_value(relay && *relay ? relay : NULL, w->relay) &&
              nsim__is_value(holder && *holder ? holder : NULL, w->holder);
      nsim__add(detail, detaillen, &used, "manager lists %s: state %s, mapping %s, dial %s%s%s%s%s",
                w->servant, s ? s : "?", m ? m : "?", dial_have, relay && *relay ? ", relay " : "",
                relay && *relay ? relay : "", holder && *holder ? ", held by " : "",
                holder && *holder ? holder : "");
    }
  }
  if (w->relay_counts) {
    char rc_detail[320];
    if (!nsim__relay_counts(root, rc_detail, sizeof rc_detail)) holds = 0;
    nsim__add(detail, detaillen, &used, "%s%s", used ? "; " : "", rc_detail);
  }
  xmlFreeDoc(doc);
  return holds;
}
