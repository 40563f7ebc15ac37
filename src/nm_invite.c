#include "nm_invite.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <uv.h>

#include "nm_util.h"

#define NM__INVITE_HEAD NM_INVITE_PREFIX NM_INVITE_VERSION "/"
#define NM__INVITE_HASH_TAG "natmesh-invite-v1"

__attribute__((format(printf, 3, 4)))
static int nm__invite_fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  if (err && errlen) {
    int n = snprintf(err, errlen, "invite: ");
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < errlen) vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return -EINVAL;
}

/* At most 24 characters of a value for an error message, anything but printable ASCII as
 * '?'. Never used for the secret. */
static const char *nm__invite_quote(const char *s, size_t len, char out[28]) {
  size_t n = len < 24 ? len : 24, i;
  for (i = 0; i < n; i++) out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
  if (len > n) out[i++] = '.', out[i++] = '.', out[i++] = '.';
  out[i] = 0;
  return out;
}

/* ---- one reader per kind of field ---------------------------------------------------- */

static int nm__dns_name_valid(const char *s, size_t n) {
  size_t label = 0;
  for (size_t i = 0; i <= n; i++) {
    char c = i < n ? s[i] : '.';
    if (c == '.') {
      /* Empty labels ("a..b", a leading or trailing dot) and hyphens at a label's ends are
       * not host names (RFC 1123). */
      if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-') return 0;
      label = 0;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-') {
      label++;
    } else {
      return 0;
    }
  }
  return 1;
}

int nm_invite_host_valid(const char *s) {
  unsigned char addr[16];
  size_t n = s ? strnlen(s, NM_INVITE_HOST_MAX + 1) : 0;
  if (n == 0 || n > NM_INVITE_HOST_MAX) return 0;
  if (strchr(s, ':')) {
    /* An IPv6 literal; no zone ("%eth0"): it means nothing on the invitee's machine. */
    return strspn(s, "0123456789abcdefABCDEF:.") == n && uv_inet_pton(AF_INET6, s, addr) == 0;
  }
  /* Digits and dots only is meant as an IPv4 address, and must be one ("10.0.0" is not a
   * host name that happens to look like it). */
  if (strspn(s, "0123456789.") == n) return uv_inet_pton(AF_INET, s, addr) == 0;
  return nm__dns_name_valid(s, n);
}

/* A decimal number as the formatter writes it: digits, no leading zero, at least min. */
static int nm__invite_number(const char *s, size_t len, uint64_t min, uint64_t max,
                             uint64_t *out) {
  uint64_t v;
  if (len == 0 || (len > 1 && s[0] == '0') || nm_parse_u64(s, len, &v) < 0 || v < min ||
      v > max)
    return -EINVAL;
  *out = v;
  return 0;
}

static int nm__fp_valid(const char *s) { return nm_hex_valid(s, NM_SHA256_HEX_LEN); }
static int nm__same_address(const char *host, uint16_t port, const nm_invite_manager *m);
static int nm__manager_check(const nm_invite_manager *m);

/* The checks the parser makes, for an invite built in memory. */
static int nm__invite_check(const nm_invite *inv, char *err, size_t errlen) {
  if (!nm_invite_host_valid(inv->host)) return nm__invite_fail(err, errlen, "bad host");
  if (inv->port == 0) return nm__invite_fail(err, errlen, "bad port");
  if (!nm__fp_valid(inv->fingerprint))
    return nm__invite_fail(err, errlen, "bad fingerprint (expected %d lowercase hex characters)",
                           NM_SHA256_HEX_LEN);
  if (inv->role != NM_ROLE_SERVANT && inv->role != NM_ROLE_RELAY)
    return nm__invite_fail(err, errlen, "bad role");
  if (inv->nalso > NM_INVITE_ALSO_MAX) return nm__invite_fail(err, errlen, "too many other managers");
  for (size_t i = 0; i < inv->nalso; i++) {
    if (!nm__manager_check(&inv->also[i])) return nm__invite_fail(err, errlen, "bad manager");
    if (nm__same_address(inv->host, inv->port, &inv->also[i]))
      return nm__invite_fail(err, errlen, "manager named twice");
    for (size_t k = 0; k < i; k++)
      if (nm__same_address(inv->also[k].host, inv->also[k].port, &inv->also[i]))
        return nm__invite_fail(err, errlen, "manager named twice");
  }
  return 0;
}

/* ---- other managers: HOST,PORT,FINGERPRINT ------------------------------------------- */

static int nm__manager_parse(const char *s, size_t len, int any_case, nm_invite_manager *out,
                             char *err, size_t errlen) {
  char q[28];
  memset(out, 0, sizeof *out);
  const char *c1 = memchr(s, ',', len);
  const char *c2 = c1 ? memchr(c1 + 1, ',', len - (size_t)(c1 + 1 - s)) : NULL;
  if (!c1 || !c2 || memchr(c2 + 1, ',', len - (size_t)(c2 + 1 - s)))
    return nm__invite_fail(err, errlen, "bad manager \"%s\" (expected HOST,PORT,FINGERPRINT)",
                           nm__invite_quote(s, len, q));
  size_t hlen = (size_t)(c1 - s), plen = (size_t)(c2 - c1 - 1), flen = len - (size_t)(c2 + 1 - s);
  if (hlen == 0 || hlen > NM_INVITE_HOST_MAX) return nm__invite_fail(err, errlen, "bad manager host");
  memcpy(out->host, s, hlen);
  out->host[hlen] = 0;
  if (memchr(out->host, 0, hlen) || !nm_invite_host_valid(out->host))
    return nm__invite_fail(err, errlen, "bad manager host \"%s\"", nm__invite_quote(s, hlen, q));
  uint64_t v;
  if (nm__invite_number(c1 + 1, plen, 1, 65535, &v) < 0)
    return nm__invite_fail(err, errlen, "bad manager port \"%s\"", nm__invite_quote(c1 + 1, plen, q));
  out->port = (uint16_t)v;
  if (flen != NM_SHA256_HEX_LEN)
    return nm__invite_fail(err, errlen, "bad manager fingerprint (expected %d lowercase hex characters)",
                           NM_SHA256_HEX_LEN);
  for (size_t i = 0; i < flen; i++) {
    char ch = c2[1 + i];
    if (any_case && ch >= 'A' && ch <= 'F') ch = (char)(ch - 'A' + 'a');
    out->fingerprint[i] = ch;
  }
  out->fingerprint[flen] = 0;
  if (!nm__fp_valid(out->fingerprint))
    return nm__invite_fail(err, errlen, "bad manager fingerprint (expected %d lowercase hex characters)",
                           NM_SHA256_HEX_LEN);
  return 0;
}

int nm_invite_manager_parse(const char *s, size_t len, nm_invite_manager *out, char *err,
                            size_t errlen) {
  if (!s || !out) return -EINVAL;
  return nm__manager_parse(s, len, 0, out, err, errlen);
}

int nm_invite_manager_parse_any(const char *s, size_t len, nm_invite_manager *out, char *err,
                                size_t errlen) {
  if (!s || !out) return -EINVAL;
  return nm__manager_parse(s, len, 1, out, err, errlen);
}

/* The same manager: the same address (a name compared without case). Two addresses of one
 * manager (its IPv4 and IPv6) with one key are two entries, which is fine. */
static int nm__same_address(const char *host, uint16_t port, const nm_invite_manager *m) {
  return port == m->port && strcasecmp(host, m->host) == 0;
}

static int nm__manager_check(const nm_invite_manager *m) {
  return nm_invite_host_valid(m->host) && m->port != 0 && nm__fp_valid(m->fingerprint);
}

int nm_invite_add_also(nm_invite *inv, const nm_invite_manager *m, char *err, size_t errlen) {
  if (!inv || !m) return -EINVAL;
  if (!nm__manager_check(m)) return nm__invite_fail(err, errlen, "bad manager");
  if (inv->nalso >= NM_INVITE_ALSO_MAX)
    return nm__invite_fail(err, errlen, "too many other managers (at most %d)", NM_INVITE_ALSO_MAX);
  if (nm__same_address(inv->host, inv->port, m))
    return nm__invite_fail(err, errlen, "manager %s port %u named twice", m->host, m->port);
  for (size_t i = 0; i < inv->nalso; i++)
    if (nm__same_address(inv->also[i].host, inv->also[i].port, m))
      return nm__invite_fail(err, errlen, "manager %s port %u named twice", m->host, m->port);
  inv->also[inv->nalso++] = *m;
  return 0;
}

/* ---- create, format, parse ------------------------------------------------------------ */

int nm_invite_create(nm_invite *inv, const char *host, uint16_t port, const char *fingerprint,
                     nm_role role, uint64_t expires, char *err, size_t errlen) {
  if (!inv) return -EINVAL;
  memset(inv, 0, sizeof *inv);
  if (!nm_invite_host_valid(host)) return nm__invite_fail(err, errlen, "bad host");
  if (!nm__fp_valid(fingerprint))
    return nm__invite_fail(err, errlen, "bad fingerprint (expected %d lowercase hex characters)",
                           NM_SHA256_HEX_LEN);
  memcpy(inv->host, host, strlen(host) + 1);
  memcpy(inv->fingerprint, fingerprint, NM_SHA256_HEX_LEN + 1);
  inv->port = port;
  inv->role = role;
  inv->expires = expires;
  int rc = nm__invite_check(inv, err, errlen);
  if (rc < 0) {
    nm_invite_clear(inv);
    return rc;
  }
  if (RAND_bytes(inv->secret, sizeof inv->secret) != 1) {
    ERR_clear_error();
    nm_invite_clear(inv);
    if (err && errlen) snprintf(err, errlen, "invite: no random secret (RAND_bytes failed)");
    return -EIO;
  }
  return 0;
}

int nm_invite_format(const nm_invite *inv, char *out, size_t outsize) {
  char secret[NM_INVITE_SECRET_HEX_LEN + 1], expires[32] = "";
  if (!inv || !out || outsize == 0 || nm__invite_check(inv, NULL, 0) < 0) return -EINVAL;
  nm_invite_secret_encode(inv->secret, secret);
  if (inv->expires) snprintf(expires, sizeof expires, "/expires=%" PRIu64, inv->expires);
  int n = snprintf(out, outsize, NM__INVITE_HEAD "%s/%u/%s/%s%s%s", inv->host, inv->port,
                   inv->fingerprint, secret, inv->role == NM_ROLE_RELAY ? "/role=relay" : "",
                   expires);
  OPENSSL_cleanse(secret, sizeof secret);
  for (size_t i = 0; i < inv->nalso && n >= 0 && (size_t)n < outsize; i++) {
    const nm_invite_manager *m = &inv->also[i];
    int k = snprintf(out + n, outsize - (size_t)n, "/also=%s,%u,%s", m->host, m->port, m->fingerprint);
    n = k < 0 ? k : n + k;
  }
  if (n < 0 || (size_t)n >= outsize || n > NM_INVITE_MAX) {
    OPENSSL_cleanse(out, outsize);
    return -EINVAL;
  }
  return 0;
}

enum { NM__F_HOST, NM__F_PORT, NM__F_FP, NM__F_SECRET, NM__F_REQUIRED };
static const char *const nm__invite_field_names[NM__F_REQUIRED] = {"host", "port",
                                                                    "fingerprint", "secret"};

/* The parse proper; nm_invite_parse wipes what it leaves behind. buf is a writable copy. */
static int nm__invite_parse(char *buf, size_t len, nm_invite *out, char *err, size_t errlen) {
  char q[28];
  const size_t head = sizeof NM__INVITE_HEAD - 1, prefix = sizeof NM_INVITE_PREFIX - 1;
  if (len < prefix || memcmp(buf, NM_INVITE_PREFIX, prefix) != 0)
    return nm__invite_fail(err, errlen, "not an invite (it starts with \"%s\")", NM__INVITE_HEAD);
  if (len < head || memcmp(buf, NM__INVITE_HEAD, head) != 0) {
    const char *v = buf + prefix, *slash = strchr(v, '/');
    return nm__invite_fail(err, errlen, "version \"%s\" not supported (this natmesh reads %s)",
                           nm__invite_quote(v, slash ? (size_t)(slash - v) : strlen(v), q),
                           NM_INVITE_VERSION);
  }

  /* Split the rest on '/'. */
  char *field[NM__F_REQUIRED + 2 + NM_INVITE_ALSO_MAX];
  size_t nfields = 0;
  for (char *p = buf + head;; ) {
    char *slash = strchr(p, '/');
    if (nfields == sizeof field / sizeof field[0])
      return nm__invite_fail(err, errlen, "too many fields");
    field[nfields++] = p;
    if (!slash) break;
    *slash = 0;
    p = slash + 1;
  }
  for (size_t i = 0; i < nfields; i++)
    if (!field[i][0])
      return nm__invite_fail(err, errlen, "empty %s", i < NM__F_REQUIRED
                                                          ? nm__invite_field_names[i]
                                                          : "field");
  if (nfields < NM__F_REQUIRED)
    return nm__invite_fail(err, errlen, "missing %s", nm__invite_field_names[nfields]);

  if (!nm_invite_host_valid(field[NM__F_HOST]))
    return nm__invite_fail(err, errlen, "bad host \"%s\"",
                           nm__invite_quote(field[NM__F_HOST], strlen(field[NM__F_HOST]), q));
  memcpy(out->host, field[NM__F_HOST], strlen(field[NM__F_HOST]) + 1);

  uint64_t v;
  if (nm__invite_number(field[NM__F_PORT], strlen(field[NM__F_PORT]), 1, 65535, &v) < 0)
    return nm__invite_fail(err, errlen, "bad port \"%s\"",
                           nm__invite_quote(field[NM__F_PORT], strlen(field[NM__F_PORT]), q));
  out->port = (uint16_t)v;

  if (!nm__fp_valid(field[NM__F_FP]))
    return nm__invite_fail(err, errlen, "bad fingerprint (expected %d lowercase hex characters)",
                           NM_SHA256_HEX_LEN);
  memcpy(out->fingerprint, field[NM__F_FP], NM_SHA256_HEX_LEN + 1);

  /* The secret is never quoted back: an error message may end up in a log. */
  if (nm_invite_secret_decode(field[NM__F_SECRET], out->secret) < 0)
    return nm__invite_fail(err, errlen, "bad secret (expected %d lowercase hex characters)",
                           NM_INVITE_SECRET_HEX_LEN);

  /* Optional fields, each at most once and in this order: role, then expires. */
  out->role = NM_ROLE_SERVANT;
  out->expires = 0;
  size_t i = NM__F_REQUIRED;
  if (i < nfields && strncmp(field[i], "role=", 5) == 0) {
    if (strcmp(field[i] + 5, "relay") != 0)
      return nm__invite_fail(err, errlen, "bad role \"%s\" (an invite can grant relay only)",
                             nm__invite_quote(field[i] + 5, strlen(field[i] + 5), q));
    out->role = NM_ROLE_RELAY;
    i++;
  }
  if (i < nfields && strncmp(field[i], "expires=", 8) == 0) {
    if (nm__invite_number(field[i] + 8, strlen(field[i] + 8), 1, UINT64_MAX, &out->expires) < 0)
      return nm__invite_fail(err, errlen, "bad expiry \"%s\" (unix time in seconds)",
                             nm__invite_quote(field[i] + 8, strlen(field[i] + 8), q));
    i++;
  }
  /* Then the other managers, each at most once. */
  for (; i < nfields && strncmp(field[i], "also=", 5) == 0; i++) {
    nm_invite_manager m;
    int rc = nm_invite_manager_parse(field[i] + 5, strlen(field[i] + 5), &m, err, errlen);
    if (rc == 0) rc = nm_invite_add_also(out, &m, err, errlen);
    if (rc < 0) return rc;
  }
  if (i < nfields)
    return nm__invite_fail(err, errlen, "unknown or misplaced field \"%s\"",
                           nm__invite_quote(field[i], strlen(field[i]), q));
  return 0;
}

int nm_invite_parse(const char *s, nm_invite *out, char *err, size_t errlen) {
  char buf[NM_INVITE_MAX + 1];
  if (!out) return -EINVAL;
  memset(out, 0, sizeof *out);
  if (!s) return nm__invite_fail(err, errlen, "empty");
  size_t len = strnlen(s, NM_INVITE_MAX + 1);
  if (len > NM_INVITE_MAX)
    return nm__invite_fail(err, errlen, "too long (more than %d characters)", NM_INVITE_MAX);
  if (len == 0) return nm__invite_fail(err, errlen, "empty");
  memcpy(buf, s, len + 1);
  int rc = nm__invite_parse(buf, len, out, err, errlen);
  OPENSSL_cleanse(buf, sizeof buf);
  if (rc < 0) nm_invite_clear(out);
  return rc;
}

void nm_invite_clear(nm_invite *inv) {
  if (inv) OPENSSL_cleanse(inv, sizeof *inv);
}

int nm_invite_expired(uint64_t expires, uint64_t now) { return expires != 0 && now >= expires; }

/* ---- the secret ----------------------------------------------------------------------- */

int nm_invite_secret_hash(const unsigned char secret[NM_INVITE_SECRET_LEN],
                          char out[NM_SHA256_HEX_LEN + 1]) {
  unsigned char in[sizeof NM__INVITE_HASH_TAG - 1 + NM_INVITE_SECRET_LEN];
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (!secret || !out) return -EINVAL;
  memcpy(in, NM__INVITE_HASH_TAG, sizeof NM__INVITE_HASH_TAG - 1);
  memcpy(in + sizeof NM__INVITE_HASH_TAG - 1, secret, NM_INVITE_SECRET_LEN);
  int ok = EVP_Digest(in, sizeof in, md, &mdlen, EVP_sha256(), NULL) == 1 &&
           mdlen * 2 == NM_SHA256_HEX_LEN;
  OPENSSL_cleanse(in, sizeof in);
  if (!ok) {
    ERR_clear_error();
    return -EIO;
  }
  return nm_hex_encode(md, mdlen, out, NM_SHA256_HEX_LEN + 1);
}

void nm_invite_secret_encode(const unsigned char secret[NM_INVITE_SECRET_LEN],
                             char out[NM_INVITE_SECRET_HEX_LEN + 1]) {
  nm_hex_encode(secret, NM_INVITE_SECRET_LEN, out, NM_INVITE_SECRET_HEX_LEN + 1);
}

int nm_invite_secret_decode(const char *s, unsigned char secret[NM_INVITE_SECRET_LEN]) {
  return nm_hex_decode(s, secret, NM_INVITE_SECRET_LEN);
}
