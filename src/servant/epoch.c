/* The chat epoch kept in the state directory: see epoch.h. */
#include "epoch.h"
#include "nm_util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int sv_epoch_parse(const char *buf, size_t len, uint64_t *out) {
  if (len && buf[len - 1] == '\n') len--;
  return nm_parse_u64(buf, len, out);
}

/* At most this many bytes are read: 20 digits and a newline, and one more to notice a
 * longer file. */
#define SV__EPOCH_READ_MAX 22

static int sv__epoch_read(const char *path, uint64_t *out, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT) {
    *out = 0;
    return 0;
  }
  if (fd < 0) {
    int e = errno;
    snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
    return -e;
  }
  char buf[SV__EPOCH_READ_MAX + 1];
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, buf + n, sizeof buf - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      close(fd);
      snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
      return -e;
    }
    if (r == 0 || (n += (size_t)r) == sizeof buf) break;
  }
  close(fd);
  int rc = n > SV__EPOCH_READ_MAX ? -EINVAL : sv_epoch_parse(buf, n, out);
  if (rc < 0)
    snprintf(err, errlen,
             "%s is not an epoch (one decimal number): refusing to guess one, since a smaller "
             "epoch makes peers refuse our lines; fix or remove it (removing it is safe once "
             "every peer has restarted)",
             path);
  return rc;
}

static int sv__epoch_write(const char *path, uint64_t epoch, char *err, size_t errlen) {
  char text[32];
  int len = snprintf(text, sizeof text, "%" PRIu64 "\n", epoch);
  int rc = nm_file_replace(path, text, (size_t)len);
  if (rc < 0) snprintf(err, errlen, "cannot write %s: %s", path, strerror(-rc));
  return rc;
}

int sv_epoch_next(const char *dir, uint64_t *epoch, char *err, size_t errlen) {
  char path[4096];
  if (snprintf(path, sizeof path, "%s/%s", dir, SV_EPOCH_FILE) >= (int)sizeof path) {
    snprintf(err, errlen, "state directory path too long: %s", dir);
    return -ENAMETOOLONG;
  }
  uint64_t last;
  int rc = sv__epoch_read(path, &last, err, errlen);
  if (rc < 0) return rc;
  if (last == UINT64_MAX) {
    snprintf(err, errlen, "%s: the epoch cannot grow any more", path);
    return -ERANGE;
  }
  rc = sv__epoch_write(path, last + 1, err, errlen);
  if (rc < 0) return rc;
  *epoch = last + 1;
  return 0;
}
