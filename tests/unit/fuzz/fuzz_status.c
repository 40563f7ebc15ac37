/* libFuzzer target: natmesh-ctl's status parser, its renderers (table, DOT, XML, JSON) and
 * the peers view of every listed servant. */
#include "ctl_peers.h"
#include "ctl_render.h"
#include "nm_status.h"
#include "nm_status_json.h"
#include "nm_xml.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static FILE *sink;
  if (!sink) {
    nm_xml_init();
    sink = fopen("/dev/null", "w");
  }
  nm_status st;
  nm_status_init(&st);
  xmlDoc *doc;
  char err[400];
  if (nm_status_parse((const char *)data, size, &st, &doc, err, sizeof err) == 0) {
    nmctl_render_table(sink, &st, "127.0.0.1:85");
    nmctl_render_dot(sink, &st, "127.0.0.1:85");
    nmctl_render_xml(sink, doc);
    xmlFreeDoc(doc);
    char *json = NULL;
    if (nm_status_to_json(&st, 1, &json, NULL) == 0) fputs(json, sink);
    free(json);
    /* At most a few servants' views: each is linear in the servants. */
    for (size_t i = 0; i < st.count && i < 4; i++) {
      nmctl_peers pv;
      if (nmctl_peers_build(&st, st.servants[i].name, &pv) == 0) {
        nmctl_render_peers(sink, &pv);
        if (nmctl_peers_to_json(&pv, 0, &json) == 0) fputs(json, sink);
        free(json);
      }
      nmctl_peers_free(&pv);
    }
  }
  nm_status_close(&st);
  return 0;
}
