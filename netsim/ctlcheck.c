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

int nsim_ctl_check(struct nsim_run *r, int node, const char *manager, const char *servant,
                   int present, const char *state, const char *mapping, char *detail,
                   size_t detaillen) {
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
    holds = present && (!state || (s && !strcmp(s, state))) && (!mapping || (m && !strcmp(m, mapping)));
    snprintf(detail, detaillen, "manager lists %s: state %s, mapping %s%s%s", servant, s ? s : "?",
             m ? m : "?", relay && *relay ? ", relay " : "", relay && *relay ? relay : "");
  }
  xmlFreeDoc(doc);
  return holds;
}
