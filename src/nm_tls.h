/* nm_tls: TLS 1.3 with mutual authentication by Ed25519 identity keys, through OpenSSL 3.
 *
 * As in Syncthing and libp2p-tls, each side presents a self-signed X.509 certificate that
 * only carries its identity key; no CA chain is checked, because it means nothing here.
 * What authenticates a peer is its key: TLS 1.3's CertificateVerify proves the peer holds
 * the private key of the certificate it sent, and natmesh then compares the SHA-256 of that
 * raw Ed25519 public key with the fingerprint it expects (pinning). natmesh's own code does
 * no cryptography; it only decides which key it expects.
 *
 * Two layers:
 *   - nm_tls_ctx: one per program, made from its identity (certificate, key, policy);
 *   - nm_tls_session: one TLS session over two OpenSSL memory BIOs, with no sockets. The
 *     caller feeds it ciphertext, asks it for plaintext, gives it plaintext and takes the
 *     ciphertext it wants sent. nm_conn drives it from the libuv loop thread
 *     (nm_conn_set_tls); tests can drive it by hand. */
#ifndef NM_TLS_H
#define NM_TLS_H

#include <stddef.h>
#include <openssl/types.h>

#include "nm_identity.h"

/* How long a TLS session may take to complete its handshake, counted from the TCP
 * connection, unless the owner sets another deadline (nm_conn_deadline). */
#define NM_TLS_HANDSHAKE_MS 10000
/* Records sent under one key before the sender renews it (a TLS 1.3 KeyUpdate). RFC 8446
 * 5.5 allows AES-GCM 2^24.5 full-size records per key; OpenSSL 3.0 counts none and never
 * updates keys by itself, and a relay's link may live for months. 2^20 leaves a wide margin
 * and costs one small message per 16 GiB at most. */
#define NM_TLS_REKEY_RECORDS (1u << 20)

typedef enum {
  NM_TLS_CLIENT = 1, /* the side that connects */
  NM_TLS_SERVER = 2, /* the side that accepts */
} nm_tls_role;

typedef struct {
  SSL_CTX *ssl;
  unsigned handshake_ms;  /* NM_TLS_HANDSHAKE_MS unless changed */
  unsigned rekey_records; /* NM_TLS_REKEY_RECORDS unless changed (tests lower it) */
} nm_tls_ctx;

/* Builds the certificate (self-signed, in memory, over id's key) and the TLS 1.3-only
 * context: both sides must present a certificate, resumption is off (every session proves
 * its key afresh). id may be closed afterwards (the context holds its own reference).
 * Returns 0 or NM_ETLS with OpenSSL's reason in err. */
int nm_tls_ctx_init(nm_tls_ctx *t, const nm_identity *id, char *err, size_t errlen);
/* Sessions made from the context keep it alive; closing it while they run is safe. */
void nm_tls_ctx_close(nm_tls_ctx *t);

typedef struct nm_tls_session nm_tls_session;

/* expected: the fingerprint the peer must present; NULL accepts any Ed25519 key (the owner
 * reads it with nm_tls_session_peer() and decides). Returns NULL when out of memory. */
/* Bytes of natmesh's own part of a session (OpenSSL's SSL object apart): for accounting. */
size_t nm_tls_session_struct_size(void);
nm_tls_session *nm_tls_session_new(nm_tls_ctx *ctx, nm_tls_role role,
                                   const nm_fingerprint *expected);
void nm_tls_session_free(nm_tls_session *s);

/* Ciphertext from the network. Returns 0 or -ENOMEM. */
int nm_tls_session_feed(nm_tls_session *s, const char *data, size_t len);
/* Advances the handshake. Returns 1 while it needs more input, 0 once it is complete and
 * the peer's key is an Ed25519 key matching the expected fingerprint, or a negative code
 * (NM_EKEY: wrong or unusable key; NM_ETLS: anything else) with nm_tls_session_error()
 * saying why. A client starts by calling it with nothing fed (its ClientHello). */
int nm_tls_session_handshake(nm_tls_session *s);
/* Plaintext received, once the handshake is complete: > 0 bytes written to buf, 0 when it
 * needs more input, UV_EOF when the peer closed the TLS session (close_notify), or a
 * negative code. */
int nm_tls_session_read(nm_tls_session *s, char *buf, size_t len);
/* Encrypts buf (complete handshake only). Returns 0 or a negative code. */
int nm_tls_session_write(nm_tls_session *s, const char *buf, size_t len);
/* Renews our sending keys now (request_peer: and asks the peer to renew its own); the
 * KeyUpdate leaves with the next write. nm_tls_session_write does it by itself every
 * rekey_records records. Returns 0 or NM_ETLS. */
int nm_tls_session_key_update(nm_tls_session *s, int request_peer);
/* How many times this side renewed its sending keys. */
unsigned nm_tls_session_key_updates(const nm_tls_session *s);
/* What an idle session's two memory BIOs keep allocated (their buffers' capacity), and how
 * many times a drained BIO that had grown was replaced by a fresh one: a manager holds
 * thousands of idle sessions, so what each keeps matters (docs/performance.md). */
size_t nm_tls_session_bio_capacity(const nm_tls_session *s);
unsigned nm_tls_session_bio_renewals(const nm_tls_session *s);
/* Queues close_notify (best effort, only once the handshake completed). */
void nm_tls_session_shutdown(nm_tls_session *s);
/* Ciphertext waiting to be sent, and taking up to len bytes of it. Call after every other
 * call: a handshake step, a read (TLS 1.3 answers key updates) and a write all produce some. */
size_t nm_tls_session_pending(nm_tls_session *s);
size_t nm_tls_session_take(nm_tls_session *s, char *buf, size_t len);

/* The peer's fingerprint and raw key once the handshake has completed, else NULL. */
const nm_fingerprint *nm_tls_session_peer(const nm_tls_session *s);
const uint8_t *nm_tls_session_peer_pubkey(const nm_tls_session *s);
/* Why the session failed ("peer presented key <fp>, expected <fp>"), "" if it has not. */
const char *nm_tls_session_error(const nm_tls_session *s);

#endif
