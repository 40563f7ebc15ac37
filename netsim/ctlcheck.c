#include "ctlcheck.h"
#include "expand.h"
#include "nsops.h"
#include "util.h"

#include "nm_xml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* want is "VALUE" or "!VALUE" (anything but VALUE). */
static int nsim__is_value(const char *have, const char *want) {
  if (!want) return 1;
  if (want[0] == '!') return !have || strcmp(have, want + 1) != 0;
  return have && !strcmp(have, want);
}

int nsim_ctl_check(struct nsim_run *r, int node, const char *manager, const char *servant,
                   int present, const char *state, const char *mapping, const char *dial,
                   char *detail, size_t detaillen) {
  char ctl[PATH_MAX], err[256];
  if (nsim_expand(r, "${bin:natmesh-ctl}", ctl, sizeof ctl, err, sizeof err) < 0) return -EINVAL;
  char *argv[] = {ctl, "--manager", (char *)manager, "status", "--format", "xml", NULL};
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
  xmlNode *found = NULL;
  int count = 0;
  for (xmlNode *n = xmlDocGetRootElement(doc)->children; n; n = n->next) {
    if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, "servant")) continue;
    count++;
    const char *name = nm_xml_attr(n, "name");
    if (name && !strcmp(name, servant)) found = n;
  }
  int holds;
  if (!found) {
    holds = !present;
    snprintf(detail, detaillen, "manager lists %d servant(s), not %s", count, servant);
  } else {
    const char *s = nm_xml_attr(found, "state"), *m = nm_xml_attr(found, "mapping");
    const char *relay = nm_xml_attr(found, "relay-name");
    /* Where peers are told to dial: dial-ip/-port, or the observed address when absent. */
    const char *dip = nm_xml_attr(found, "dial-ip"), *dport = nm_xml_attr(found, "dial-port");
    if (!dip || !*dip) dip = nm_xml_attr(found, "ip"), dport = nm_xml_attr(found, "port");
    char dial_have[96];
    snprintf(dial_have, sizeof dial_have, "%s:%s", dip ? dip : "?", dport ? dport : "?");
    int dial_ok = !dial || (strchr(dial, ':') ? !strcmp(dial_have, dial)
                                              : dip && !strcmp(dip, dial));
    holds = present && nsim__is_value(s, state) && nsim__is_value(m, mapping) && dial_ok;
    snprintf(detail, detaillen, "manager lists %s: state %s, mapping %s, dial %s%s%s", servant,
             s ? s : "?", m ? m : "?", dial_have, relay && *relay ? ", relay " : "",
             relay && *relay ? relay : "");
  }
  xmlFreeDoc(doc);
  return holds;
}
