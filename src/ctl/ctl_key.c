/* ctl_key: natmesh-ctl's key and the manager's, see ctl_key.h. */
#include "ctl_key.h"
#include "nm_error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define NMCTL__KEY_FILE_MAX (64 * 1024) /* a PEM Ed25519 key is some 120 bytes */

static void nmctl__err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void nmctl__err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static int nmctl__no_password(char *buf, int size, int rwflag, void *u) {
  /* An encrypted key would make OpenSSL prompt on the terminal: refuse it instead. */
  (void)buf, (void)size, (void)rwflag, (void)u;
  return -1;
}

static int nmctl__read_all(int fd, const char *path, char **out, size_t *outlen, char *err, size_t errlen) {
  char *buf = malloc(NMCTL__KEY_FILE_MAX);
  if (!buf) return -ENOMEM;
  size_t have = 0;
  for (;;) {
    ssize_t r = read(fd, buf + have, NMCTL__KEY_FILE_MAX - have);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      free(buf);
      nmctl__err(err, errlen, "cannot read key file %s: %s", path, strerror(e));
      return -e;
    }
    if (r == 0) break;
    have += (size_t)r;
    if (have == NMCTL__KEY_FILE_MAX) {
      free(buf);
      nmctl__err(err, errlen, "key file %s is too large to be a key", path);
      return NM_EKEY;
    }
  }
  *out = buf;
  *outlen = have;
  return 0;
}

int nmctl_key_load(const char *path, nm_identity *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  /* O_NONBLOCK: a FIFO in place of the key must not hang us; it is refused below. */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    nmctl__err(err, errlen, "cannot open key file %s: %s", path, strerror(e));
    return -e;
  }
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) < 0) {
    rc = -errno;
    nmctl__err(err, errlen, "cannot stat key file %s: %s", path, strerror(-rc));
  } else if (!S_ISREG(st.st_mode)) {
    rc = NM_EKEY;
    nmctl__err(err, errlen, "key file %s is not a regular file", path);
  } else if (st.st_uid != geteuid()) {
    rc = NM_ECONFIG;
    nmctl__err(err, errlen, "key file %s belongs to uid %u, not to this user (uid %u): refusing it", path,
               (unsigned)st.st_uid, (unsigned)geteuid());
  } else if (st.st_mode & 077) {
    rc = NM_ECONFIG;
    nmctl__err(err, errlen,
               "key file %s is open to group or others (mode %04o): refusing it; run chmod 600 %s if you "
               "trust its contents",
               path, (unsigned)(st.st_mode & 07777), path);
  }
  char *buf = NULL;
  size_t len = 0;
  if (rc == 0) rc = nmctl__read_all(fd, path, &buf, &len, err, errlen);
  close(fd);
  if (rc < 0) return rc;

  BIO *bio = BIO_new_mem_buf(buf, (int)len);
  EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, nmctl__no_password, NULL) : NULL;
  BIO_free(bio);
  OPENSSL_cleanse(buf, len);
  free(buf);
  if (!key) {
    nmctl__err(err, errlen, "key file %s is not an unencrypted PEM private key", path);
    return NM_EKEY;
  }
  out->key = key;
  if (nm_pubkey_of_evp(key, out->pub, &out->fp) < 0) {
    const char *type = EVP_PKEY_get0_type_name(key);
    nmctl__err(err, errlen, "key file %s holds a key of type %s, not Ed25519", path, type ? type : "unknown");
    nm_identity_close(out);
    return NM_EKEY;
  }
  nm_fingerprint_id(&out->fp, out->id);
  return 0;
}

int nmctl_auth_resolve(const nmctl_auth_opts *o, nm_identity *id, nm_fingerprint *manager_fp, char *err,
                       size_t errlen) {
  nm_fingerprint pinned;
  if (o->manager_key && nm_fingerprint_parse(o->manager_key, &pinned) < 0) {
    nmctl__err(err, errlen,
               "--manager-key wants the manager's fingerprint, 64 hex characters (natmesh-manager "
               "--state-dir DIR fingerprint prints it), got \"%s\"",
               o->manager_key);
    return -EINVAL;
  }
  if (o->admin_key) {
    if (!o->manager_key) {
      nmctl__err(err, errlen,
                 "--admin-key needs --manager-key FP, the fingerprint of the manager to expect "
                 "(natmesh-manager --state-dir DIR fingerprint prints it)");
      return -EINVAL;
    }
    int rc = nmctl_key_load(o->admin_key, id, err, errlen);
    if (rc < 0) return rc;
    *manager_fp = pinned;
    return 0;
  }
  /* Local: the manager's own key. */
  char dir[4096], path[4200];
  if (o->state_dir) {
    snprintf(dir, sizeof dir, "%s", o->state_dir);
  } else if (nm_identity_default_dir(dir, sizeof dir, "manager") < 0) {
    nmctl__err(err, errlen, "no default state directory for the manager (no HOME): pass --state-dir "
                            "MANAGER_STATE_DIR, or --admin-key FILE --manager-key FP");
    return -ENOENT;
  }
  snprintf(path, sizeof path, "%s/%s", dir, NM_IDENTITY_KEY_FILE);
  char why[600];
  int rc = nmctl_key_load(path, id, why, sizeof why);
  if (rc == -ENOENT) {
    nmctl__err(err, errlen,
               "no manager key in %s: run natmesh-ctl as the manager's user on the manager's machine "
               "(with --state-dir MANAGER_STATE_DIR if it is not the default), or remotely with "
               "--admin-key FILE --manager-key FP",
               dir);
    return rc;
  }
  if (rc < 0) {
    nmctl__err(err, errlen, "%s", why);
    return rc;
  }
  /* The manager owns this key: that is the key it must present. */
  *manager_fp = o->manager_key ? pinned : id->fp;
  return 0;
}

int nmctl_keygen(const char *dir, nm_fingerprint *fp, char *dir_out, size_t dir_len, char *err, size_t errlen) {
  char def[4096];
  if (!dir) {
    if (nm_identity_default_dir(def, sizeof def, "ctl") < 0) {
      nmctl__err(err, errlen, "no default state directory (no HOME): pass --state-dir DIR");
      return -ENOENT;
    }
    dir = def;
  }
  nm_identity id;
  int rc = nm_identity_load_or_create(dir, &id, err, errlen);
  if (rc < 0) return rc;
  *fp = id.fp;
  nm_identity_close(&id);
  if (dir_out && dir_len) snprintf(dir_out, dir_len, "%s", dir);
  return 0;
}
