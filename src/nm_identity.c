#include "nm_identity.h"
#include "nm_util.h"
#include "nm_error.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

/* The id is a prefix of the fingerprint: raising NM_ID_LEN in nm_proto.h is the one change
 * needed to make ids longer. */
_Static_assert(NM_ID_LEN > 0 && NM_ID_LEN <= NM_FINGERPRINT_HEX, "NM_ID_LEN out of range");

/* A key file is a few hundred bytes; anything much larger is not one. */
#define NM__KEY_FILE_MAX (64 * 1024)

static void nm__seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void nm__seterr(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* OpenSSL's reason for the last failure, and an empty error queue afterwards: the queue is
 * per thread, and a stale entry would make a later SSL_get_error() on the loop misreport. */
static const char *nm__ossl_reason(char *buf, size_t len) {
  unsigned long e = ERR_peek_last_error();
  if (e) {
    ERR_error_string_n(e, buf, len);
    const char *r = ERR_reason_error_string(e);
    if (r) snprintf(buf, len, "%s", r);
  } else {
    snprintf(buf, len, "no detail from OpenSSL");
  }
  ERR_clear_error();
  return buf;
}

/* ---- names derived from the key ------------------------------------------------------ */

static void nm__hex(const uint8_t *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = 0;
}

static int nm__unhex_digit(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

void nm_fingerprint_of_pubkey(const uint8_t pub[NM_PUBKEY_LEN], nm_fingerprint *out) {
  uint8_t md[32];
  unsigned mdlen = 0;
  /* SHA-256 cannot fail short of memory exhaustion inside OpenSSL; a zero fingerprint
   * then matches nothing a peer could present, which is the safe direction. */
  if (!EVP_Digest(pub, NM_PUBKEY_LEN, md, &mdlen, EVP_sha256(), NULL) || mdlen != sizeof md) {
    memset(md, 0, sizeof md);
    ERR_clear_error();
  }
  nm__hex(md, sizeof md, out->hex);
}

int nm_fingerprint_parse(const char *s, nm_fingerprint *out) {
  if (!s || strlen(s) != NM_FINGERPRINT_HEX) return -EINVAL;
  for (size_t i = 0; i < NM_FINGERPRINT_HEX; i++) {
    int d = nm__unhex_digit(s[i]);
    if (d < 0) return -EINVAL;
    out->hex[i] = "0123456789abcdef"[d];
  }
  out->hex[NM_FINGERPRINT_HEX] = 0;
  return 0;
}

int nm_fingerprint_equal(const nm_fingerprint *a, const nm_fingerprint *b) {
  return memcmp(a->hex, b->hex, NM_FINGERPRINT_HEX) == 0;
}

void nm_fingerprint_id(const nm_fingerprint *fp, char out[NM_ID_LEN + 1]) {
  memcpy(out, fp->hex, NM_ID_LEN);
  out[NM_ID_LEN] = 0;
}

void nm_pubkey_to_hex(const uint8_t pub[NM_PUBKEY_LEN], char out[2 * NM_PUBKEY_LEN + 1]) {
  nm__hex(pub, NM_PUBKEY_LEN, out);
}

int nm_pubkey_from_hex(const char *s, uint8_t pub[NM_PUBKEY_LEN]) {
  if (!s || strlen(s) != 2 * NM_PUBKEY_LEN) return -EINVAL;
  uint8_t tmp[NM_PUBKEY_LEN];
  for (size_t i = 0; i < NM_PUBKEY_LEN; i++) {
    int hi = nm__unhex_digit(s[2 * i]), lo = nm__unhex_digit(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return -EINVAL;
    tmp[i] = (uint8_t)(hi << 4 | lo);
  }
  memcpy(pub, tmp, sizeof tmp);
  return 0;
}

int nm_pubkey_of_evp(const EVP_PKEY *key, uint8_t pub[NM_PUBKEY_LEN], nm_fingerprint *fp) {
  if (!key || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) return NM_EKEY;
  size_t len = NM_PUBKEY_LEN;
  if (EVP_PKEY_get_raw_public_key(key, pub, &len) != 1 || len != NM_PUBKEY_LEN) {
    ERR_clear_error();
    return NM_EKEY;
  }
  if (fp) nm_fingerprint_of_pubkey(pub, fp);
  return 0;
}

/* Fills the derived fields from id->key. */
static int nm__identity_derive(nm_identity *id) {
  int rc = nm_pubkey_of_evp(id->key, id->pub, &id->fp);
  if (rc < 0) return rc;
  nm_fingerprint_id(&id->fp, id->id);
  return 0;
}

const char *nm_identity_id(const nm_identity *id) { return id->id; }
const nm_fingerprint *nm_identity_fingerprint(const nm_identity *id) { return &id->fp; }

void nm_identity_close(nm_identity *id) {
  EVP_PKEY_free(id->key);
  memset(id, 0, sizeof *id);
}

int nm_identity_generate(nm_identity *out) {
  memset(out, 0, sizeof *out);
  out->key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  if (!out->key) {
    ERR_clear_error();
    return -ENOMEM;
  }
  int rc = nm__identity_derive(out);
  if (rc < 0) nm_identity_close(out);
  return rc;
}

/* ---- signatures ----------------------------------------------------------------------- */

int nm_identity_sign(const nm_identity *id, const void *msg, size_t len,
                     uint8_t sig[NM_SIG_LEN]) {
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (!md) return -ENOMEM;
  size_t siglen = NM_SIG_LEN;
  /* Ed25519 hashes internally (RFC 8032 "pure" mode), hence the NULL digest and the
   * one-shot EVP_DigestSign: OpenSSL has no streaming Ed25519. */
  int ok = EVP_DigestSignInit(md, NULL, NULL, NULL, id->key) == 1 &&
           EVP_DigestSign(md, sig, &siglen, msg, len) == 1 && siglen == NM_SIG_LEN;
  EVP_MD_CTX_free(md);
  if (!ok) ERR_clear_error();
  return ok ? 0 : NM_EKEY;
}

int nm_pubkey_verify(const uint8_t pub[NM_PUBKEY_LEN], const void *msg, size_t len,
                     const uint8_t sig[NM_SIG_LEN]) {
  EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, NM_PUBKEY_LEN);
  if (!key) {
    ERR_clear_error();
    return NM_EKEY;
  }
  int rc = -ENOMEM;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (md) {
    rc = NM_ESIG;
    if (EVP_DigestVerifyInit(md, NULL, NULL, NULL, key) == 1 &&
        EVP_DigestVerify(md, sig, NM_SIG_LEN, msg, len) == 1)
      rc = 0;
  }
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(key);
  ERR_clear_error();
  return rc;
}

/* ---- the state directory and the key file ---------------------------------------------- */

int nm_identity_default_dir(char *out, size_t len, const char *program) {
  if (!program || !*program || strchr(program, '/')) return -EINVAL;
  int n;
  /* systemd's StateDirectory= exports the absolute path(s), colon-separated: the unit owns
   * it and names it, so the program name is not appended. */
  const char *sd = getenv("STATE_DIRECTORY");
  const char *xdg = getenv("XDG_STATE_HOME");
  const char *home = getenv("HOME");
  if (sd && sd[0] == '/') {
    n = snprintf(out, len, "%.*s", (int)strcspn(sd, ":"), sd);
  } else if (xdg && xdg[0] == '/') { /* the XDG spec says to ignore a relative value */
    n = snprintf(out, len, "%s/natmesh/%s", xdg, program);
  } else if (home && home[0] == '/') {
    n = snprintf(out, len, "%s/.local/state/natmesh/%s", home, program);
  } else if (geteuid() == 0) {
    n = snprintf(out, len, "/var/lib/natmesh/%s", program);
  } else {
    /* No HOME (a bare service environment): the password database still knows it. */
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwuid_r(geteuid(), &pw, buf, sizeof buf, &res) != 0 || !res || !res->pw_dir ||
        res->pw_dir[0] != '/')
      return -ENOENT;
    n = snprintf(out, len, "%s/.local/state/natmesh/%s", res->pw_dir, program);
  }
  return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* mkdir -p with 0700 for every folder it creates; existing parents are left as they are
 * (only the state directory itself must be private). */
static int nm__mkdirs(const char *path) {
  char buf[4096];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof buf) return -ENAMETOOLONG;
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != 0) continue;
    char saved = buf[i];
    buf[i] = 0;
    if (mkdir(buf, 0700) < 0 && errno != EEXIST) {
      /* An existing folder in a parent we may not write to can fail with EACCES rather
       * than EEXIST: that is fine as long as it is there. */
      int e = errno;
      struct stat st;
      if (stat(buf, &st) < 0 || !S_ISDIR(st.st_mode)) return -e;
    }
    buf[i] = saved;
  }
  return 0;
}

/* Owned by us and closed to group and others. what is "state directory" or "key file". */
static int nm__check_private(const struct stat *st, const char *what, const char *path,
                             mode_t chmod_to, char *err, size_t errlen) {
  if (st->st_uid != geteuid()) {
    nm__seterr(err, errlen, "%s %s belongs to uid %u, not to this process (uid %u): refusing it",
               what, path, (unsigned)st->st_uid, (unsigned)geteuid());
    return NM_ECONFIG;
  }
  if (st->st_mode & 077) {
    nm__seterr(err, errlen,
               "%s %s is open to group or others (mode %04o): refusing it; run chmod %o %s if "
               "you trust its contents",
               what, path, (unsigned)(st->st_mode & 07777), (unsigned)chmod_to, path);
    return NM_ECONFIG;
  }
  return 0;
}

static int nm__no_password(char *buf, int size, int rwflag, void *u) {
  /* Without this callback OpenSSL would prompt on the terminal for an encrypted key. */
  (void)buf, (void)size, (void)rwflag, (void)u;
  return -1;
}

/* Reads and parses key.pem from an open descriptor. */
static int nm__identity_read(int fd, const char *path, nm_identity *out, char *err,
                             size_t errlen) {
  char *buf = malloc(NM__KEY_FILE_MAX);
  if (!buf) return -ENOMEM;
  size_t have = 0;
  for (;;) {
    ssize_t r = read(fd, buf + have, NM__KEY_FILE_MAX - have);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      free(buf);
      nm__seterr(err, errlen, "cannot read key file %s: %s", path, strerror(e));
      return -e;
    }
    if (r == 0) break;
    have += (size_t)r;
    if (have == NM__KEY_FILE_MAX) {
      free(buf);
      nm__seterr(err, errlen, "key file %s is too large to be a key", path);
      return NM_EKEY;
    }
  }
  int rc = NM_EKEY;
  BIO *bio = BIO_new_mem_buf(buf, (int)have);
  EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, nm__no_password, NULL) : NULL;
  BIO_free(bio);
  OPENSSL_cleanse(buf, have);
  free(buf);
  char why[160];
  if (!key) {
    nm__seterr(err, errlen,
               "key file %s is not a PEM private key (OpenSSL: %s); move it away only if you "
               "mean to create a new identity, which changes this node's id",
               path, nm__ossl_reason(why, sizeof why));
    return NM_EKEY;
  }
  memset(out, 0, sizeof *out);
  out->key = key;
  rc = nm__identity_derive(out);
  if (rc < 0) {
    const char *type = EVP_PKEY_get0_type_name(key);
    nm__seterr(err, errlen, "key file %s holds a key of type %s, not Ed25519", path,
               type ? type : "unknown");
    nm_identity_close(out);
  }
  return rc;
}

/* Creates a key and puts it at dirfd/key.pem without ever exposing a partial file: write a
 * temp file (0600), fsync it, rename it into place, fsync the folder. Returns 0, -EEXIST
 * when another process created key.pem meanwhile (the caller then loads that one), or a
 * negative error. */
static int nm__identity_create(int dirfd, const char *path, nm_identity *out, char *err,
                               size_t errlen) {
  int rc = nm_identity_generate(out);
  if (rc < 0) {
    nm__seterr(err, errlen, "cannot generate an Ed25519 key: out of memory");
    return rc;
  }
  char why[160];
  BIO *mem = BIO_new(BIO_s_mem());
  char *pem = NULL;
  long pemlen = 0;
  /* No cipher: PKCS#8 "BEGIN PRIVATE KEY", protected by the file mode, as ssh and
   * WireGuard keep theirs; a passphrase would stop unattended restarts. */
  if (!mem || !PEM_write_bio_PrivateKey(mem, out->key, NULL, NULL, 0, NULL, NULL) ||
      (pemlen = BIO_get_mem_data(mem, &pem)) <= 0) {
    nm__seterr(err, errlen, "cannot encode the new key: %s", nm__ossl_reason(why, sizeof why));
    BIO_free(mem);
    nm_identity_close(out);
    return NM_EKEY;
  }
  char tmp[64];
  snprintf(tmp, sizeof tmp, NM_IDENTITY_KEY_FILE ".tmp.%ld", (long)getpid());
  int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    rc = -errno;
  } else {
    rc = nm_write_all(fd, pem, (size_t)pemlen);
    if (rc == 0 && fsync(fd) < 0) rc = -errno;
    if (close(fd) < 0 && rc == 0) rc = -errno;
    if (rc == 0) {
      /* RENAME_NOREPLACE: two processes started on one folder must not each keep a key
       * the other overwrote. Filesystems without it get a plain rename. */
      if (renameat2(dirfd, tmp, dirfd, NM_IDENTITY_KEY_FILE, RENAME_NOREPLACE) < 0) {
        rc = -errno;
        if (rc == -EINVAL || rc == -ENOSYS)
          rc = renameat(dirfd, tmp, dirfd, NM_IDENTITY_KEY_FILE) < 0 ? -errno : 0;
      }
    }
    if (rc < 0) unlinkat(dirfd, tmp, 0);
    if (rc == 0) fsync(dirfd); /* the rename itself must survive a crash */
  }
  OPENSSL_cleanse(pem, (size_t)pemlen);
  BIO_free(mem);
  if (rc < 0) {
    if (rc != -EEXIST)
      nm__seterr(err, errlen, "cannot write key file %s: %s", path, strerror(-rc));
    nm_identity_close(out);
  }
  return rc;
}

int nm_identity_load_or_create(const char *state_dir, nm_identity *out, char *err,
                               size_t errlen) {
  if (err && errlen) err[0] = 0;
  memset(out, 0, sizeof *out);
  if (!state_dir || !*state_dir) {
    nm__seterr(err, errlen, "no state directory given");
    return -EINVAL;
  }
  char path[4200];
  int plen = snprintf(path, sizeof path, "%s/%s", state_dir, NM_IDENTITY_KEY_FILE);
  if (plen < 0 || (size_t)plen >= sizeof path) {
    nm__seterr(err, errlen, "state directory path is too long");
    return -ENAMETOOLONG;
  }
  int rc = nm__mkdirs(state_dir);
  if (rc < 0) {
    nm__seterr(err, errlen, "cannot create state directory %s: %s", state_dir, strerror(-rc));
    return rc;
  }
  /* Check and use the same open folder, so it cannot be swapped between the two. */
  int dirfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) {
    rc = -errno;
    nm__seterr(err, errlen, "cannot open state directory %s: %s", state_dir, strerror(-rc));
    return rc;
  }
  struct stat st;
  if (fstat(dirfd, &st) < 0) {
    rc = -errno;
    nm__seterr(err, errlen, "cannot stat state directory %s: %s", state_dir, strerror(-rc));
    goto done;
  }
  rc = nm__check_private(&st, "state directory", state_dir, 0700, err, errlen);
  if (rc < 0) goto done;

  for (int attempt = 0; attempt < 2; attempt++) {
    /* O_NONBLOCK: a FIFO planted as key.pem must not hang the start; it is refused below. */
    int fd = openat(dirfd, NM_IDENTITY_KEY_FILE, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      rc = nm__identity_create(dirfd, path, out, err, errlen);
      if (rc == -EEXIST) continue; /* lost a race with another process: load its key */
      goto done;
    }
    if (fd < 0) {
      rc = -errno;
      nm__seterr(err, errlen, "cannot open key file %s: %s", path, strerror(-rc));
      goto done;
    }
    if (fstat(fd, &st) < 0) {
      rc = -errno;
      nm__seterr(err, errlen, "cannot stat key file %s: %s", path, strerror(-rc));
    } else if (!S_ISREG(st.st_mode)) {
      rc = NM_EKEY;
      nm__seterr(err, errlen, "key file %s is not a regular file", path);
    } else {
      rc = nm__check_private(&st, "key file", path, 0600, err, errlen);
      if (rc == 0) rc = nm__identity_read(fd, path, out, err, errlen);
    }
    close(fd);
    goto done;
  }
  rc = -EEXIST;
  nm__seterr(err, errlen, "key file %s keeps appearing and vanishing", path);
done:
  close(dirfd);
  return rc;
}
