/* The chat epoch in the state directory (src/servant/epoch.c): it starts at 1, grows by one
 * per start, survives as a decimal line, and a corrupt file is refused, never reset. */
#include "epoch.h"
#include "nmt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_parse(void) {
  uint64_t v = 0;
  NMT_EQ_INT(sv_epoch_parse("7\n", 2, &v), 0);
  NMT_EQ_INT(v, 7);
  NMT_EQ_INT(sv_epoch_parse("18446744073709551615", 20, &v), 0);
  NMT_CHECK(v == UINT64_MAX);
  NMT_EQ_INT(sv_epoch_parse("18446744073709551616", 20, &v), -ERANGE);
  NMT_EQ_INT(sv_epoch_parse("", 0, &v), -EINVAL);
  NMT_EQ_INT(sv_epoch_parse("\n", 1, &v), -EINVAL);
  NMT_EQ_INT(sv_epoch_parse(" 7", 2, &v), -EINVAL);
  NMT_EQ_INT(sv_epoch_parse("-1", 2, &v), -EINVAL);
  NMT_EQ_INT(sv_epoch_parse("7\n\n", 3, &v), -EINVAL);
  NMT_EQ_INT(sv_epoch_parse("7\n8\n", 4, &v), -EINVAL);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

static void read_file(const char *path, char *buf, size_t len) {
  FILE *f = fopen(path, "r");
  size_t n = f ? fread(buf, 1, len - 1, f) : 0;
  buf[n] = 0;
  if (f) fclose(f);
}

static void test_next(void) {
  char dir[] = "/tmp/unit_epoch.XXXXXX", path[256], text[64], err[512];
  NMT_CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/" SV_EPOCH_FILE, dir);
  uint64_t e = 0;
  NMT_EQ_INT(sv_epoch_next(dir, &e, err, sizeof err), 0);
  NMT_EQ_INT(e, 1);
  read_file(path, text, sizeof text);
  NMT_EQ_STR(text, "1\n");
  struct stat st;
  NMT_EQ_INT(stat(path, &st), 0);
  NMT_EQ_INT(st.st_mode & 0777, 0600);
  for (uint64_t want = 2; want <= 5; want++) {
    NMT_EQ_INT(sv_epoch_next(dir, &e, err, sizeof err), 0);
    NMT_EQ_INT(e, want);
  }
  read_file(path, text, sizeof text);
  NMT_EQ_STR(text, "5\n");
  /* written by hand without a newline: fine */
  write_file(path, "41");
  NMT_EQ_INT(sv_epoch_next(dir, &e, err, sizeof err), 0);
  NMT_EQ_INT(e, 42);
  /* corrupt: refused, and left as it was */
  write_file(path, "forty-two\n");
  e = 0;
  NMT_CHECK(sv_epoch_next(dir, &e, err, sizeof err) < 0);
  NMT_EQ_INT(e, 0);
  NMT_HAS(err, "is not an epoch");
  NMT_HAS(err, path);
  read_file(path, text, sizeof text);
  NMT_EQ_STR(text, "forty-two\n");
  write_file(path, "123456789012345678901234567890\n");
  NMT_CHECK(sv_epoch_next(dir, &e, err, sizeof err) < 0);
  /* the last epoch there is: refused rather than wrapped to 0 */
  write_file(path, "18446744073709551615\n");
  NMT_EQ_INT(sv_epoch_next(dir, &e, err, sizeof err), -ERANGE);
  /* no temporary file is left behind */
  char tmp[300];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  NMT_CHECK(access(tmp, F_OK) < 0);
  unlink(path);
  rmdir(dir);
  /* a folder that is not there: an error naming the file */
  NMT_CHECK(sv_epoch_next("/nonexistent/natmesh-unit", &e, err, sizeof err) < 0);
  NMT_HAS(err, "/nonexistent/natmesh-unit/epoch");
}

int main(void) {
  NMT_RUN(test_parse);
  NMT_RUN(test_next);
  return nmt_done();
}
