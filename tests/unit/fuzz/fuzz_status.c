/* libFuzzer target: natmesh-ctl's status parser and its three renderers. */
#include "ctl_render.h"
#include "nm_status.h"
#include "nm_xml.h"

#include <stdint.h>
#include <stdio.h>

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
  }
  nm_status_close(&st);
  return 0;
}
