/* The manager a servant or relay joins: see join.h. */
#include "join.h"
#include "nm_error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
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

int sv_join_entry_is_list(const char *value) { return value && strchr(value, ',') != NULL; }

static int sv__same_address(const sv_join_manager *a, const char *host, uint16_t port) {
  return a->port == port && strcasecmp(a->host, host) == 0;
}

/* Appends a manager; fp NULL: pinned to key. Returns 0 or -1 with err. */
static int sv__join_add(sv_join *j, const char *host, uint16_t port, const nm_fingerprint *fp,
                        sv_key_source src, char *err, size_t errlen) {
  if (j->nmanagers == SV_JOIN_MANAGERS_MAX) {
    snprintf(err, errlen, "too many managers (at most %d)", SV_JOIN_MANAGERS_MAX);
    return -1;
  }
  for (size_t i = 0; i < j->nmanagers; i++)
    if (sv__same_address(&j->managers[i], host, port)) {
      snprintf(err, errlen, "manager %.253s port %u named twice", host, port);
      return -1;
    }
  sv_join_manager *m = &j->managers[j->nmanagers++];
  snprintf(m->host, sizeof m->host, "%s", host);
  m->port = port;
  m->fp = *fp;
  m->key_source = src;
  return 0;
}

/* One <connectionmgr> of the list form: HOST,PORT,FINGERPRINT, or HOST,PORT pinned to key
 * (NULL: none given). */
static int sv__join_entry(sv_join *j, const sv_join_entry *e, const char *file, const nm_fingerprint *key,
                          sv_key_source key_src, char *err, size_t errlen) {
  char why[300], spec[NM_INVITE_HOST_MAX + 80];
  const char *v = e->value;
  size_t commas = 0;
  for (const char *c = v; *c; c++) commas += *c == ',';
  /* HOST,PORT: the fingerprint of the invite or of --manager-key. */
  int pinned = commas == 2, rc = -1;
  nm_invite_manager m;
  snprintf(why, sizeof why, "invite: one or two commas");
  if (commas == 1 && !key) {
    snprintf(err, errlen, "%s:%ld: <connectionmgr> \"%.200s\" names no key, and there is no invite or "
             "<manager-key> to pin it to: write HOST,PORT,FINGERPRINT", file, e->line, v);
    return -1;
  }
  if (commas == 1 && strlen(v) + 1 + NM_FINGERPRINT_HEX < sizeof spec) {
    snprintf(spec, sizeof spec, "%s,%s", v, key->hex);
    rc = nm_invite_manager_parse_any(spec, strlen(spec), &m, why, sizeof why);
  } else if (commas == 1) {
    snprintf(why, sizeof why, "invite: bad manager host"); /* too long for one */
  } else if (commas == 2) {
    rc = nm_invite_manager_parse_any(v, strlen(v), &m, why, sizeof why);
  }
  if (rc < 0) {
    snprintf(err, errlen, "%s:%ld: <connectionmgr> \"%.200s\": expected HOST,PORT,FINGERPRINT or HOST,PORT (%s)",
             file, e->line, v, why + strlen("invite: "));
    return -1;
  }
  nm_fingerprint fp;
  if (nm_fingerprint_parse(m.fingerprint, &fp) < 0) {
    snprintf(err, errlen, "%s:%ld: <connectionmgr>: bad fingerprint", file, e->line);
    return -1;
  }
  if (sv__join_add(j, m.host, m.port, &fp, pinned ? SV_KEY_FROM_CONFIG : key_src, why, sizeof why) < 0) {
    snprintf(err, errlen, "%s:%ld: <connectionmgr>: %s", file, e->line, why);
    return -1;
  }
  return 0;
}

int sv_join_resolve_list(sv_join *j, const char *invite, const char *manager_key,
                         const sv_join_entry *entries, size_t n, const char *file,
                         const char *host, unsigned port, char *err, size_t errlen) {
  memset(j, 0, sizeof *j);
  int have_invite = invite && invite[0], have_key = manager_key && manager_key[0];
  if (!have_invite && !have_key && n == 0) {
    snprintf(err, errlen, "no manager key: pass --invite or --manager-key");
    return -1;
  }
  /* (A list entry without a key of its own and none to take says so itself.) */
  nm_fingerprint option_fp;
  if (have_key && nm_fingerprint_parse(manager_key, &option_fp) < 0) {
    snprintf(err, errlen, "--manager-key: expected the manager's fingerprint, 64 hex characters, got \"%.80s\"",
             manager_key);
    return -1;
  }
  j->invite_role = NM_ROLE_SERVANT;
  /* The key entries without one of their own are pinned to. */
  nm_fingerprint key;
  sv_key_source key_src = SV_KEY_FROM_OPTION;
  int have_pin = 0;
  if (have_invite) {
    nm_invite inv;
    if (nm_invite_parse(invite, &inv, err, errlen) < 0) return -1;
    if (nm_fingerprint_parse(inv.fingerprint, &key) < 0) { /* the parser checked it */
      nm_invite_clear(&inv);
      snprintf(err, errlen, "invite: bad fingerprint");
      return -1;
    }
    key_src = SV_KEY_FROM_INVITE;
    have_pin = 1;
    j->has_secret = 1;
    memcpy(j->secret, inv.secret, sizeof j->secret);
    j->invite_role = inv.role;
    j->invite_expires = inv.expires;
    int rc = 0;
    if (n == 0) {
      /* The invite's managers, in its order, each with the key it names. */
      rc = sv__join_add(j, inv.host, inv.port, &key, SV_KEY_FROM_INVITE, err, errlen);
      for (size_t i = 0; rc == 0 && i < inv.nalso; i++) {
        nm_fingerprint fp;
        rc = nm_fingerprint_parse(inv.also[i].fingerprint, &fp) < 0
                 ? (snprintf(err, errlen, "invite: bad fingerprint"), -1)
                 : sv__join_add(j, inv.also[i].host, inv.also[i].port, &fp, SV_KEY_FROM_INVITE, err, errlen);
      }
    }
    nm_invite_clear(&inv);
    if (rc < 0) {
      sv_join_clear(j);
      return -1;
    }
    if (have_key && !nm_fingerprint_equal(&option_fp, &key)) {
      snprintf(err, errlen, "--manager-key %s is not the key the invite names (%s): pass one of them",
               option_fp.hex, key.hex);
      sv_join_clear(j);
      return -1;
    }
  } else if (have_key) {
    key = option_fp;
    have_pin = 1;
    if (n == 0 && sv__join_add(j, SV_DEFAULT_MANAGER_HOST, SV_DEFAULT_MANAGER_PORT, &key, SV_KEY_FROM_OPTION, err,
                               errlen) < 0)
      return -1;
  }
  for (size_t i = 0; i < n; i++)
    if (sv__join_entry(j, &entries[i], file ? file : "config", have_pin ? &key : NULL, key_src, err, errlen) < 0) {
      sv_join_clear(j);
      return -1;
    }
  /* --manager and --manager-port move the first manager's address, never its key. */
  sv_join_manager *first = &j->managers[0];
  if (host && host[0]) snprintf(first->host, sizeof first->host, "%s", host);
  if (port) first->port = (uint16_t)port;
  for (size_t i = 1; i < j->nmanagers; i++)
    if (sv__same_address(&j->managers[i], first->host, first->port)) {
      snprintf(err, errlen, "--manager %.253s port %u is already the list's manager %zu", first->host, first->port,
               i + 1);
      sv_join_clear(j);
      return -1;
    }
  return 0;
}

int sv_join_resolve(sv_join *j, const char *invite, const char *manager_key, const char *host,
                    unsigned port, char *err, size_t errlen) {
  return sv_join_resolve_list(j, invite, manager_key, NULL, 0, NULL, host, port, err, errlen);
}

void sv_join_clear(sv_join *j) { OPENSSL_cleanse(j, sizeof *j); }
