#include "nm_tls.h"
#include "nm_error.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define NM__TLS_WHY_MAX 256

struct nm_tls_session {
  SSL *ssl;
  BIO *rbio; /* ciphertext from the network; owned by ssl */
  BIO *wbio; /* ciphertext for the network; owned by ssl */
  nm_tls_role role;
  int has_expected;
  nm_fingerprint expected;
  int done; /* handshake complete and key checked */
  nm_fingerprint peer;
  uint8_t peer_pub[NM_PUBKEY_LEN];
  int err;        /* the first failure, 0 while none */
  int alert;      /* the last alert the peer sent, -1 if none */
  int shut;       /* close_notify queued */
  unsigned rekey_records;  /* renew the sending keys after this many records */
  unsigned records;        /* records sent under the current key (counted as full-size) */
  unsigned key_updates;
  unsigned bio_renewals;
  char head[2];   /* the peer's first two bytes: "NM" is a plaintext natmesh frame */
  size_t head_len;
  char *why; /* the failure, allocated when there is one (NULL: none) */
};

/* Sets why (the text of a failure), allocating it: most sessions never fail, and a manager
 * holds thousands of them. */
__attribute__((format(printf, 2, 3)))
static void nm__tls_why(nm_tls_session *s, const char *fmt, ...) {
  if (!s->why && !(s->why = malloc(NM__TLS_WHY_MAX))) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->why, NM__TLS_WHY_MAX, fmt, ap);
  va_end(ap);
}

/* ---- the context ------------------------------------------------------------------- */

/* The certificate is only a carrier for the key: a random serial, a name that helps
 * whoever reads a capture, and no expiry (RFC 5280's 99991231235959Z), since nothing
 * checks dates and an expiring certificate would only break long-running nodes. */
static X509 *nm__tls_self_cert(const nm_identity *id) {
  X509 *x = X509_new();
  if (!x) return NULL;
  uint64_t serial = 0;
  char cn[32 + NM_ID_LEN];
  snprintf(cn, sizeof cn, "natmesh %s", id->id);
  X509_NAME *name = X509_get_subject_name(x);
  int ok = X509_set_version(x, X509_VERSION_3) &&
           RAND_bytes((unsigned char *)&serial, sizeof serial) == 1 &&
           ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial >> 1) &&
           X509_gmtime_adj(X509_getm_notBefore(x), -86400) &&
           ASN1_TIME_set_string(X509_getm_notAfter(x), "99991231235959Z") &&
           X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1,
                                      -1, 0) &&
           X509_set_issuer_name(x, name) && X509_set_pubkey(x, id->key) &&
           /* Ed25519 signs without a separate digest: NULL md. */
           X509_sign(x, id->key, NULL) > 0;
  if (!ok) {
    X509_free(x);
    return NULL;
  }
  return x;
}

/* Records the peer's key and decides whether it is the one expected. */
static int nm__tls_check_key(nm_tls_session *s, EVP_PKEY *key) {
  nm_fingerprint fp;
  uint8_t pub[NM_PUBKEY_LEN];
  if (!key) {
    s->err = NM_EKEY;
    nm__tls_why(s, "peer presented a certificate without a usable key");
    return NM_EKEY;
  }
  if (nm_pubkey_of_evp(key, pub, &fp) < 0) {
    s->err = NM_EKEY;
    const char *type = EVP_PKEY_get0_type_name(key);
    nm__tls_why(s, "peer presented a key of type %s, not Ed25519",
             type ? type : "unknown");
    return NM_EKEY;
  }
  if (s->has_expected && !nm_fingerprint_equal(&fp, &s->expected)) {
    s->err = NM_EKEY;
    nm__tls_why(s, "peer presented key %s, expected %s", fp.hex,
             s->expected.hex);
    return NM_EKEY;
  }
  s->peer = fp;
  memcpy(s->peer_pub, pub, sizeof pub);
  return 0;
}

/* Replaces OpenSSL's chain verification entirely (SSL_CTX_set_cert_verify_callback): there
 * is no CA to chain to, dates and purposes mean nothing for a key carrier, and the one
 * question is whether the leaf's key is the pinned one. Refusing here, while the handshake
 * runs, makes OpenSSL send the peer a bad_certificate alert, so both sides know why. */
static int nm__tls_verify(X509_STORE_CTX *xs, void *arg) {
  (void)arg;
  SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
  nm_tls_session *s = ssl ? SSL_get_app_data(ssl) : NULL;
  X509 *leaf = X509_STORE_CTX_get0_cert(xs);
  if (!s || !leaf || nm__tls_check_key(s, X509_get0_pubkey(leaf)) < 0) {
    X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
    return 0;
  }
  X509_STORE_CTX_set_error(xs, X509_V_OK);
  return 1;
}

/* Remembers the alert a peer sent, so a refusal reads "peer refused ...: bad certificate"
 * rather than OpenSSL's "ssl/tls alert bad certificate". */
static void nm__tls_info(const SSL *ssl, int where, int ret) {
  if ((where & SSL_CB_READ_ALERT) != SSL_CB_READ_ALERT) return;
  nm_tls_session *s = SSL_get_app_data(ssl);
  int desc = ret & 0xff;
  if (s && desc != SSL_AD_CLOSE_NOTIFY) s->alert = desc;
}

int nm_tls_ctx_init(nm_tls_ctx *t, const nm_identity *id, char *err, size_t errlen) {
  memset(t, 0, sizeof *t);
  t->handshake_ms = NM_TLS_HANDSHAKE_MS;
  t->rekey_records = NM_TLS_REKEY_RECORDS;
  X509 *cert = nm__tls_self_cert(id);
  SSL_CTX *ctx = cert ? SSL_CTX_new(TLS_method()) : NULL;
  /* TLS 1.3 only: its handshake encrypts the certificates (who talks to whom stays off the
   * wire), has no renegotiation and no RSA key transport, and every suite is an AEAD. */
  int ok = ctx && SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) &&
           SSL_CTX_use_certificate(ctx, cert) == 1 && SSL_CTX_use_PrivateKey(ctx, id->key) == 1 &&
           SSL_CTX_check_private_key(ctx) == 1 &&
           /* No resumption: a resumed session presents no certificate, and every natmesh
            * session must prove its key. No tickets also saves a round of bytes. */
           SSL_CTX_set_num_tickets(ctx, 0) == 1;
  if (ok) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* Both sides verify: the server requests a certificate and fails the handshake
     * without one; the key check itself is nm__tls_verify. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, nm__tls_verify, NULL);
    SSL_CTX_set_info_callback(ctx, nm__tls_info);
    /* An idle session (most of a manager's) gives its record buffers back. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* A natmesh certificate is a few hundred bytes; OpenSSL would buffer 100 KiB of
     * certificate list from a peer nobody has authenticated yet. */
    SSL_CTX_set_max_cert_list(ctx, 16 * 1024);
  }
  X509_free(cert); /* the context holds its own reference */
  if (!ok) {
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    if (err && errlen)
      snprintf(err, errlen, "cannot set up TLS: %s", r ? r : "out of memory");
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NM_ETLS;
  }
  t->ssl = ctx;
  return 0;
}

void nm_tls_ctx_close(nm_tls_ctx *t) {
  SSL_CTX_free(t->ssl);
  t->ssl = NULL;
}

/* ---- sessions ------------------------------------------------------------------------ */

size_t nm_tls_session_struct_size(void) { return sizeof(nm_tls_session); }

nm_tls_session *nm_tls_session_new(nm_tls_ctx *ctx, nm_tls_role role,
                                   const nm_fingerprint *expected) {
  nm_tls_session *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->role = role;
  s->alert = -1;
  s->rekey_records = ctx->rekey_records ? ctx->rekey_records : NM_TLS_REKEY_RECORDS;
  if (expected) {
    s->has_expected = 1;
    s->expected = *expected;
  }
  s->ssl = SSL_new(ctx->ssl);
  s->rbio = BIO_new(BIO_s_mem());
  s->wbio = BIO_new(BIO_s_mem());
  if (!s->ssl || !s->rbio || !s->wbio) {
    BIO_free(s->rbio);
    BIO_free(s->wbio);
    SSL_free(s->ssl);
    free(s);
    ERR_clear_error();
    return NULL;
  }
  /* An empty memory BIO reads as "retry later" (its default EOF value, -1), which OpenSSL
   * reports as SSL_ERROR_WANT_READ: exactly "wait for the next read callback". */
  SSL_set_bio(s->ssl, s->rbio, s->wbio);
  SSL_set_app_data(s->ssl, s);
  if (role == NM_TLS_CLIENT)
    SSL_set_connect_state(s->ssl);
  else
    SSL_set_accept_state(s->ssl);
  return s;
}

void nm_tls_session_free(nm_tls_session *s) {
  if (!s) return;
  SSL_free(s->ssl); /* frees both BIOs */
  free(s->why);
  free(s);
}

int nm_tls_session_feed(nm_tls_session *s, const char *data, size_t len) {
  if (len > INT_MAX) return -EINVAL;
  for (size_t i = 0; s->head_len < sizeof s->head && i < len; i++) s->head[s->head_len++] = data[i];
  if (len && BIO_write(s->rbio, data, (int)len) != (int)len) {
    ERR_clear_error();
    return -ENOMEM;
  }
  return 0;
}

/* Turns a failed SSL call into s->err and s->why, keeping the first cause (a key refused in
 * nm__tls_verify is already recorded and more precise than OpenSSL's "certificate verify
 * failed"). */
static int nm__tls_fail(nm_tls_session *s, const char *what) {
  if (!s->err) {
    s->err = NM_ETLS;
    if (s->alert >= 0) {
      const char *desc = SSL_alert_desc_string_long(s->alert);
      int refused = s->alert == SSL_AD_BAD_CERTIFICATE || s->alert == SSL_AD_CERTIFICATE_REQUIRED ||
                    s->alert == SSL_AD_UNSUPPORTED_CERTIFICATE ||
                    s->alert == SSL_AD_CERTIFICATE_UNKNOWN;
      nm__tls_why(s, "%s: peer sent alert \"%s\"%s", what, desc,
               refused ? " (it does not accept our key)" : "");
    } else if (!s->done && s->head_len == 2 && s->head[0] == 'N' && s->head[1] == 'M') {
      /* Said plainly: the likely cause is a node of an older, plaintext version. */
      nm__tls_why(s, "%s: the peer speaks plaintext natmesh, not TLS", what);
    } else {
      unsigned long e = ERR_peek_last_error();
      const char *r = e ? ERR_reason_error_string(e) : NULL;
      nm__tls_why(s, "%s: %s", what, r ? r : "unexpected end of TLS data");
    }
  }
  ERR_clear_error();
  return s->err;
}

/* The handshake completed: check again what nm__tls_verify decided, from the session's
 * own record of the peer certificate. A second look costs a hash and guards against a
 * path where OpenSSL would not have called the verify callback. */
static int nm__tls_finish(nm_tls_session *s) {
  if (SSL_version(s->ssl) != TLS1_3_VERSION) {
    s->err = NM_ETLS;
    nm__tls_why(s, "peer negotiated %s, not TLS 1.3", SSL_get_version(s->ssl));
    return s->err;
  }
  X509 *cert = SSL_get0_peer_certificate(s->ssl);
  if (!cert) {
    s->err = NM_EKEY;
    nm__tls_why(s, "peer presented no certificate");
    return s->err;
  }
  int rc = nm__tls_check_key(s, X509_get0_pubkey(cert));
  ERR_clear_error();
  if (rc < 0) return rc;
  s->done = 1;
  return 0;
}

int nm_tls_session_handshake(nm_tls_session *s) {
  if (s->err) return s->err;
  if (s->done) return 0;
  ERR_clear_error(); /* SSL_get_error reads the thread's queue: it must hold only ours */
  int r = SSL_do_handshake(s->ssl);
  if (r == 1) return nm__tls_finish(s);
  int e = SSL_get_error(s->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 1;
  return nm__tls_fail(s, "TLS handshake failed");
}

/* A memory BIO keeps the largest buffer it ever held: a session that once wrote a 64 KiB
 * list page (or read one), or only its handshake's flight, would keep that for the rest of
 * its life, most of what an idle session costs a manager with thousands. Once drained, one
 * that grew past a small record's size is replaced by a fresh one (the SSL object frees the
 * old). 512 bytes hold a heartbeat's and a delta's record (337 bytes of frame for one join),
 * so the steady traffic of an idle session never renews its BIOs; 4 KiB, as before, let
 * every session keep the 2-4 KiB its handshake and first list left: 3 KiB a servant. */
#define NM__TLS_BIO_KEEP 512

static BIO *nm__tls_fresh_if_grown(BIO *b) {
  BUF_MEM *bm = NULL;
  if (BIO_ctrl_pending(b) != 0 || BIO_get_mem_ptr(b, &bm) != 1 || !bm || bm->max <= NM__TLS_BIO_KEEP)
    return NULL;
  return BIO_new(BIO_s_mem());
}

int nm_tls_session_read(nm_tls_session *s, char *buf, size_t len) {
  if (s->err) return s->err;
  if (!s->done) return NM_ETLS;
  ERR_clear_error();
  int r = SSL_read(s->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
  if (r > 0) return r;
  int e = SSL_get_error(s->ssl, r);
  if (e == SSL_ERROR_WANT_READ) {
    /* Everything fed was read: a grown buffer goes (nm__tls_fresh_if_grown). */
    BIO *fresh = nm__tls_fresh_if_grown(s->rbio);
    if (fresh) {
      SSL_set0_rbio(s->ssl, fresh);
      s->rbio = fresh;
      s->bio_renewals++;
    }
  }
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
  if (e == SSL_ERROR_ZERO_RETURN) return UV_EOF;
  return nm__tls_fail(s, "TLS session failed");
}

int nm_tls_session_write(nm_tls_session *s, const char *buf, size_t len) {
  if (s->err) return s->err;
  if (!s->done || s->shut) return NM_ETLS;
  if (len == 0) return 0;
  if (len > INT_MAX) return -EINVAL;
  /* Counted as if every record were full, which errs on the early side. */
  unsigned records = (unsigned)((len + SSL3_RT_MAX_PLAIN_LENGTH - 1) / SSL3_RT_MAX_PLAIN_LENGTH);
  if (s->records + records > s->rekey_records) {
    int rc = nm_tls_session_key_update(s, 0);
    if (rc < 0) return rc;
  }
  s->records += records;
  ERR_clear_error();
  /* Into a memory BIO SSL_write never stops half-way: it grows the BIO. */
  int r = SSL_write(s->ssl, buf, (int)len);
  if (r == (int)len) return 0;
  return nm__tls_fail(s, "TLS write failed");
}

int nm_tls_session_key_update(nm_tls_session *s, int request_peer) {
  if (s->err) return s->err;
  if (!s->done || s->shut) return NM_ETLS;
  ERR_clear_error();
  if (SSL_key_update(s->ssl, request_peer ? SSL_KEY_UPDATE_REQUESTED
                                          : SSL_KEY_UPDATE_NOT_REQUESTED) != 1)
    return nm__tls_fail(s, "TLS key update failed");
  s->records = 0;
  s->key_updates++;
  return 0;
}

unsigned nm_tls_session_key_updates(const nm_tls_session *s) { return s->key_updates; }

static size_t nm__tls_bio_capacity(BIO *b) {
  BUF_MEM *bm = NULL;
  return BIO_get_mem_ptr(b, &bm) == 1 && bm ? bm->max : 0;
}

size_t nm_tls_session_bio_capacity(const nm_tls_session *s) {
  return nm__tls_bio_capacity(s->rbio) + nm__tls_bio_capacity(s->wbio);
}

unsigned nm_tls_session_bio_renewals(const nm_tls_session *s) { return s->bio_renewals; }

void nm_tls_session_shutdown(nm_tls_session *s) {
  if (!s->done || s->err || s->shut) return;
  s->shut = 1;
  ERR_clear_error();
  SSL_shutdown(s->ssl); /* 0: our close_notify is queued; we do not wait for theirs */
  ERR_clear_error();
}

size_t nm_tls_session_pending(nm_tls_session *s) { return BIO_ctrl_pending(s->wbio); }

size_t nm_tls_session_take(nm_tls_session *s, char *buf, size_t len) {
  if (len > INT_MAX) len = INT_MAX;
  int r = BIO_read(s->wbio, buf, (int)len);
  BIO *fresh = s->done ? nm__tls_fresh_if_grown(s->wbio) : NULL;
  if (fresh) {
    SSL_set0_wbio(s->ssl, fresh);
    s->wbio = fresh;
    s->bio_renewals++;
  }
  return r > 0 ? (size_t)r : 0;
}

const nm_fingerprint *nm_tls_session_peer(const nm_tls_session *s) {
  return s->done ? &s->peer : NULL;
}

const uint8_t *nm_tls_session_peer_pubkey(const nm_tls_session *s) {
  return s->done ? s->peer_pub : NULL;
}

const char *nm_tls_session_error(const nm_tls_session *s) { return s->why ? s->why : ""; }
