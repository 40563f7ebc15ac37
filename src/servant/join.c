/* The manager a servant or relay joins: see join.h. */
#include "join.h"
#include "nm_error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

static int sv__blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; }

int sv_join_read_invite(const char *arg, const char *what, char *out, size_t outlen, char *err,
                        size_t errlen) {
  if (arg[0] != '@') {
    if (strlen(arg) >= outlen) {
      snprintf(err, errlen, "%s: longer than an invite can be (%d characters)", what, NM_INVITE_MAX);
      return -1;
    }
    memcpy(out, arg, strlen(arg) + 1);
    return 0;
  }
  const char *path = arg + 1;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "%s @%s: %s", what, path, strerror(errno));
    return -1;
  }
  /* One line and a little slack: anything longer is not an invite, and is not read whole. */
  char buf[NM_INVITE_MAX + 64];
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      snprintf(err, errlen, "%s @%s: %s", what, path, strerror(errno));
      close(fd);
      return -1;
    }
    if (r == 0 || (n += (size_t)r) == sizeof buf - 1) break;
  }
  close(fd);
  buf[n] = 0;
  char *s = buf;
  while (sv__blank(*s)) s++;
  size_t len = strlen(s);
  while (len && sv__blank(s[len - 1])) s[--len] = 0;
  if (len == 0) {
    snprintf(err, errlen, "%s @%s: the file is empty (expected one invite string)", what, path);
    return -1;
  }
  if (len >= outlen || len > NM_INVITE_MAX || strpbrk(s, " \t\r\n")) {
    snprintf(err, errlen, "%s @%s: expected one invite string on one line", what, path);
    OPENSSL_cleanse(buf, sizeof buf);
    return -1;
  }
  memcpy(out, s, len + 1);
  OPENSSL_cleanse(buf, sizeof buf);
  return 0;
}

int sv_join_resolve(sv_join *j, const char *invite, const char *manager_key, const char *host,
                    unsigned port, char *err, size_t errlen) {
  memset(j, 0, sizeof *j);
  int have_invite = invite && invite[0], have_key = manager_key && manager_key[0];
  if (!have_invite && !have_key) {
    snprintf(err, errlen, "no manager key: pass --invite or --manager-key");
    return -1;
  }
  nm_fingerprint option_fp;
  if (have_key && nm_fingerprint_parse(manager_key, &option_fp) < 0) {
    snprintf(err, errlen, "--manager-key: expected the manager's fingerprint, 64 hex characters, got \"%.80s\"",
             manager_key);
    return -1;
  }
  snprintf(j->host, sizeof j->host, "%s", SV_DEFAULT_MANAGER_HOST);
  j->port = SV_DEFAULT_MANAGER_PORT;
  j->invite_role = NM_ROLE_SERVANT;
  if (have_invite) {
    nm_invite inv;
    if (nm_invite_parse(invite, &inv, err, errlen) < 0) return -1;
    if (nm_fingerprint_parse(inv.fingerprint, &j->manager_fp) < 0) { /* the parser checked it */
      nm_invite_clear(&inv);
      snprintf(err, errlen, "invite: bad fingerprint");
      return -1;
    }
    snprintf(j->host, sizeof j->host, "%s", inv.host);
    j->port = inv.port;
    j->has_secret = 1;
    memcpy(j->secret, inv.secret, sizeof j->secret);
    j->invite_role = inv.role;
    j->invite_expires = inv.expires;
    j->key_source = SV_KEY_FROM_INVITE;
    nm_invite_clear(&inv);
    if (have_key && !nm_fingerprint_equal(&option_fp, &j->manager_fp)) {
      snprintf(err, errlen, "--manager-key %s is not the key the invite names (%s): pass one of them",
               option_fp.hex, j->manager_fp.hex);
      sv_join_clear(j);
      return -1;
    }
  } else {
    j->manager_fp = option_fp;
    j->key_source = SV_KEY_FROM_OPTION;
  }
  /* --manager and --manager-port move the address, never the key. */
  if (host && host[0]) snprintf(j->host, sizeof j->host, "%s", host);
  if (port) j->port = (uint16_t)port;
  return 0;
}

void sv_join_clear(sv_join *j) { OPENSSL_cleanse(j, sizeof *j); }
