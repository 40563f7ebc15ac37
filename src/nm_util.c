#include "nm_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

int nm_random_id(char out[NM_ID_LEN + 1]) {
  unsigned char raw[NM_ID_LEN / 2];
  int rc = uv_random(NULL, NULL, raw, sizeof raw, 0, NULL);
  if (rc < 0) return rc;
  for (size_t i = 0; i < sizeof raw; i++) snprintf(out + 2 * i, 3, "%02x", raw[i]);
  return 0;
}

int nm_parse_u64(const char *s, size_t len, uint64_t *out) {
  /* strtoull would accept blanks, a sign, "0x" with base 0 and wrap "-1" around: a value
   * from the network is digits and nothing else. */
  if (!s || len == 0) return -EINVAL;
  uint64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return -EINVAL;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) {
      /* Keep scanning: "99999999999999999999x" is not a number rather than too big. */
      for (size_t j = i + 1; j < len; j++)
        if (s[j] < '0' || s[j] > '9') return -EINVAL;
      return -ERANGE;
    }
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

int nm_parse_port(const char *s, int allow_zero, uint16_t *out) {
  uint64_t v;
  if (!s || nm_parse_u64(s, strlen(s), &v) < 0 || v > 65535 || (v == 0 && !allow_zero))
    return -EINVAL;
  *out = (uint16_t)v;
  return 0;
}

int nm_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port,
                      uint16_t default_port) {
  const char *colon;
  size_t hlen;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close) return -EINVAL;
    hlen = (size_t)(close - s - 1);
    if (hlen == 0 || hlen >= hostlen) return -EINVAL;
    memcpy(host, s + 1, hlen);
    host[hlen] = 0;
    colon = close[1] == ':' ? close + 1 : NULL;
    if (!colon && close[1]) return -EINVAL;
  } else {
    colon = strrchr(s, ':');
    /* More than one colon without brackets: a bare IPv6 address. */
    if (colon && strchr(s, ':') != colon) colon = NULL;
    hlen = colon ? (size_t)(colon - s) : strlen(s);
    if (hlen == 0 || hlen >= hostlen) return -EINVAL;
    memcpy(host, s, hlen);
    host[hlen] = 0;
  }
  if (!colon) {
    *port = default_port;
    return 0;
  }
  return nm_parse_port(colon + 1, 0, port);
}

int nm_write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -errno;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int nm_file_replace(const char *path, const char *data, size_t len) {
  char tmp[4096], dir[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return -ENAMETOOLONG;
  int rc = 0, fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) rc = -errno;
  /* O_CREAT's mode does not apply to a file left over from a crash: set it. */
  if (rc == 0 && fchmod(fd, 0600) < 0) rc = -errno;
  if (rc == 0) rc = nm_write_all(fd, data, len);
  if (rc == 0 && fsync(fd) < 0) rc = -errno;
  if (fd >= 0 && close(fd) < 0 && rc == 0) rc = -errno;
  if (rc == 0 && rename(tmp, path) < 0) rc = -errno;
  if (rc < 0) {
    unlink(tmp);
    return rc;
  }
  /* The rename is durable once the folder is synced. */
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash == dir) dir[1] = 0;
  else if (slash) *slash = 0;
  else snprintf(dir, sizeof dir, ".");
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return -errno;
  if (fsync(dfd) < 0) rc = -errno;
  close(dfd);
  return rc;
}
