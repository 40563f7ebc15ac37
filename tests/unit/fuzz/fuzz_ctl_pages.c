/* libFuzzer target: natmesh-ctl putting a paged status back together (ctl_pages.c), then
 * parsing what it assembled. The input is frames' payloads separated by "\n--page--\n". */
#include "ctl_pages.h"
#include "nm_status.h"
#include "nm_xml.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SEP "\n--page--\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int init;
  if (!init) {
    nm_xml_init();
    init = 1;
  }
  nmctl_pages p;
  nmctl_pages_init(&p);
  const char *at = (const char *)data, *end = at + size;
  char err[300];
  while (at <= end) {
    const char *sep = memmem(at, (size_t)(end - at), SEP, strlen(SEP));
    size_t len = sep ? (size_t)(sep - at) : (size_t)(end - at);
    int rc = nmctl_pages_add(&p, at, len, err, sizeof err);
    if (rc < 0 || rc == 2) break;
    if (rc == 1) {
      char *buf = NULL;
      size_t n = 0;
      if (nmctl_pages_take(&p, &buf, &n) == 0) {
        nm_status st;
        nm_status_init(&st);
        if (nm_status_parse(buf, n, &st, NULL, err, sizeof err) == 0 && st.count > NM_STATUS_SERVANTS_MAX) abort();
        nm_status_close(&st);
      }
      free(buf);
      break;
    }
    if (!sep) break;
    at = sep + strlen(SEP);
  }
  nmctl_pages_close(&p);
  return 0;
}
