/* libFuzzer target: an admission fact as another manager (or whoever can write to the
 * store) publishes it (issue 14). The input is the kind (1 byte), the key (64 bytes, or
 * fewer) and the value (the rest). Whatever parses must format to a value that parses back
 * to the very same fact, and apply to a store without breaking it; a refusal must give a
 * reason. */
#include "nm_admission.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  char kind = (char)data[0];
  char key[NM_SHA256_HEX_LEN + 1];
  size_t klen = size - 1 < NM_SHA256_HEX_LEN ? size - 1 : NM_SHA256_HEX_LEN;
  memcpy(key, data + 1, klen);
  key[klen] = 0;
  const char *value = (const char *)data + 1 + klen;
  size_t vlen = size - 1 - klen;
  nm_admission_fact f;
  char why[160] = "";
  if (nm_admission_fact_parse(kind, key, value, vlen, &f, why, sizeof why) != 0) {
    if (!why[0]) abort();
    return 0;
  }
  char out[NM_ADMISSION_FACT_VALUE_MAX];
  int n = nm_admission_fact_format(&f, out, sizeof out);
  if (n < 0 || (size_t)n != strlen(out)) abort();
  nm_admission_fact again;
  if (nm_admission_fact_parse(kind, f.hex, out, (size_t)n, &again, why, sizeof why) != 0) abort();
  if (memcmp(&again, &f, sizeof f) != 0) abort();
  /* Applied twice to a store: the second time changes nothing. */
  nm_admission_store s;
  nm_admission_store_init(&s);
  int rc = nm_admission_fact_apply(&s, &f);
  if (rc != 1 && rc != -EEXIST && rc != -EPERM) abort();
  if (rc == 1 && nm_admission_fact_apply(&s, &f) != 0) abort();
  nm_admission_store_close(&s);
  return 0;
}
