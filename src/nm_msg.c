/* nm_msg: every message natmesh sends or receives, built and read in one place.
 * nm_msg.h describes the interface; docs/protocol.md the messages. */
#include "nm_msg.h"

#include "nm_conn.h"
#include "nm_error.h"
#include "nm_hex.h"
#include "nm_status.h"
#include "nm_util.h"
#include "nm_xml.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NM__COUNT(a) (sizeof(a) / sizeof *(a))

/* ---- typed readers ------------------------------------------------------------------ */

/* A bad value goes into the error quoted, at most NM__QUOTE_MAX bytes of it, with anything
 * but printable ASCII replaced: the error is logged and sent back to the peer, and neither
 * a log line nor the peer's terminal should receive what the value carried. */
#define NM__QUOTE_MAX 40

static void nm__quote(char *dst, size_t dstlen, const char *v) {
  size_t n = 0, i = 0;
  for (; v[i] && i < NM__QUOTE_MAX && n + 1 < dstlen; i++) {
    unsigned char ch = (unsigned char)v[i];
    dst[n++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
  }
  if (v[i] && n + 4 < dstlen) {
    memcpy(dst + n, "...", 3);
    n += 3;
  }
  dst[n] = 0;
}

int nm_read_field_error(const char *msg, const char *attr, const char *value, char *err,
                        size_t errlen) {
  if (!err || !errlen) return NM_EMSG;
  if (!value) {
    snprintf(err, errlen, "%s: missing %s", msg, attr);
  } else {
    char q[NM__QUOTE_MAX * 2];
    nm__quote(q, sizeof q, value);
    snprintf(err, errlen, "%s: invalid %s \"%s\"", msg, attr, q);
  }
  return NM_EMSG;
}

/* The attribute's value, or NULL (with 0 or the missing-field error in *rc). */
static const char *nm__attr(xmlNode *n, const char *msg, const char *attr, int optional, int *rc,
                            char *err, size_t errlen) {
  const char *v = nm_xml_attr(n, attr);
  *rc = (v || optional) ? 0 : nm_read_field_error(msg, attr, NULL, err, errlen);
  return v;
}

int nm_read_u64(xmlNode *n, const char *msg, const char *attr, int optional, uint64_t *out,
                char *err, size_t errlen) {
  int rc;
  const char *v = nm__attr(n, msg, attr, optional, &rc, err, errlen);
  if (!v) return rc;
  uint64_t x;
  if (nm_parse_u64(v, strlen(v), &x) < 0) return nm_read_field_error(msg, attr, v, err, errlen);
  *out = x;
  return 0;
}

int nm_read_uint(xmlNode *n, const char *msg, const char *attr, int optional, unsigned min,
                 unsigned max, unsigned *out, char *err, size_t errlen) {
  int rc;
  const char *v = nm__attr(n, msg, attr, optional, &rc, err, errlen);
  if (!v) return rc;
  uint64_t x;
  if (nm_parse_u64(v, strlen(v), &x) < 0 || x < min || x > max)
    return nm_read_field_error(msg, attr, v, err, errlen);
  *out = (unsigned)x;
  return 0;
}

int nm_read_port(xmlNode *n, const char *msg, const char *attr, int optional, int allow_zero,
                 uint16_t *out, char *err, size_t errlen) {
  unsigned v = 0;
  int rc = nm_read_uint(n, msg, attr, optional, allow_zero ? 0 : 1, 65535, &v, err, errlen);
  if (rc == 0 && nm_xml_attr(n, attr)) *out = (uint16_t)v;
  return rc;
}

/* Copies an attribute that valid() accepts into out[outsize]. */
static int nm__read_checked(xmlNode *n, const char *msg, const char *attr, int optional,
                            int (*valid)(const char *), char *out, size_t outsize, char *err,
                            size_t errlen) {
  int rc;
  const char *v = nm__attr(n, msg, attr, optional, &rc, err, errlen);
  if (!v) return rc;
  size_t len = strlen(v);
  if (len >= outsize || !valid(v)) return nm_read_field_error(msg, attr, v, err, errlen);
  memcpy(out, v, len + 1);
  return 0;
}

int nm_read_id(xmlNode *n, const char *msg, const char *attr, int optional,
               char out[NM_ID_LEN + 1], char *err, size_t errlen) {
  return nm__read_checked(n, msg, attr, optional, nm_id_valid, out, NM_ID_LEN + 1, err, errlen);
}

int nm_read_name(xmlNode *n, const char *msg, const char *attr, int optional,
                 char out[NM_NAME_MAX + 1], char *err, size_t errlen) {
  return nm__read_checked(n, msg, attr, optional, nm_name_valid, out, NM_NAME_MAX + 1, err,
                          errlen);
}

int nm_read_ip(xmlNode *n, const char *msg, const char *attr, int optional, char out[64],
               char *err, size_t errlen) {
  return nm__read_checked(n, msg, attr, optional, nm_ip_valid, out, 64, err, errlen);
}

int nm_token_valid(const char *s) {
  if (!s || strlen(s) != NM_TOKEN_LEN) return 0;
  for (const char *c = s; *c; c++)
    if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'))) return 0;
  return 1;
}

int nm_read_token(xmlNode *n, const char *msg, const char *attr, int optional,
                  char out[NM_TOKEN_LEN + 1], char *err, size_t errlen) {
  return nm__read_checked(n, msg, attr, optional, nm_token_valid, out, NM_TOKEN_LEN + 1, err,
                          errlen);
}

/* Exactly 2 * outlen lowercase hex characters decoded into out[outlen]; with nonzero, all
 * zero is refused too (an unset key or signature). */
static int nm__read_hex(xmlNode *n, const char *msg, const char *attr, int optional,
                        uint8_t *out, size_t outlen, int nonzero, char *err, size_t errlen) {
  int rc;
  const char *v = nm__attr(n, msg, attr, optional, &rc, err, errlen);
  if (!v) return rc;
  uint8_t buf[NM_LINESIG_LEN]; /* the longest value read this way */
  uint8_t any = 0;
  if (outlen > sizeof buf || nm_hex_decode(v, buf, outlen) < 0)
    return nm_read_field_error(msg, attr, v, err, errlen);
  for (size_t i = 0; i < outlen; i++) any |= buf[i];
  if (nonzero && !any) return nm_read_field_error(msg, attr, v, err, errlen);
  memcpy(out, buf, outlen);
  return 0;
}

int nm_read_key(xmlNode *n, const char *msg, const char *attr, int optional,
                uint8_t out[NM_PUBKEY_LEN], char *err, size_t errlen) {
  return nm__read_hex(n, msg, attr, optional, out, NM_PUBKEY_LEN, 1, err, errlen);
}

int nm_read_sig(xmlNode *n, const char *msg, const char *attr, int optional,
                uint8_t out[NM_LINESIG_LEN], char *err, size_t errlen) {
  return nm__read_hex(n, msg, attr, optional, out, NM_LINESIG_LEN, 1, err, errlen);
}

int nm_read_secret(xmlNode *n, const char *msg, const char *attr, int optional,
                   uint8_t out[NM_INVITE_SECRET_LEN], char *err, size_t errlen) {
  return nm__read_hex(n, msg, attr, optional, out, NM_INVITE_SECRET_LEN, 0, err, errlen);
}

int nm_read_enum(xmlNode *n, const char *msg, const char *attr, int optional,
                 const char *const *names, unsigned count, unsigned *out, char *err,
                 size_t errlen) {
  int rc;
  const char *v = nm__attr(n, msg, attr, optional, &rc, err, errlen);
  if (!v) return rc;
  for (unsigned i = 0; i < count; i++)
    if (strcmp(v, names[i]) == 0) {
      *out = i;
      return 0;
    }
  return nm_read_field_error(msg, attr, v, err, errlen);
}

/* The enums of nm_proto.h, through their own parsers (one name table each, there). */
#define NM__READ_PROTO_ENUM(fn, type, parse)                                                  \
  int fn(xmlNode *n, const char *msg, const char *attr, int optional, type *out, char *err,  \
         size_t errlen) {                                                                     \
    int rc;                                                                                   \
    const char *v = nm__attr(n, msg, attr, optional, &rc, err, errlen);                       \
    if (!v) return rc;                                                                        \
    type x;                                                                                   \
    if (parse(v, &x) < 0) return nm_read_field_error(msg, attr, v, err, errlen);              \
    *out = x;                                                                                 \
    return 0;                                                                                 \
  }

NM__READ_PROTO_ENUM(nm_read_role, nm_role, nm_role_parse)
NM__READ_PROTO_ENUM(nm_read_reach, nm_reach_state, nm_reach_parse)
NM__READ_PROTO_ENUM(nm_read_mapping, nm_mapping_kind, nm_mapping_parse)

int nm_read_text(xmlNode *n, const char *msg, const char *attr, int optional, char *out,
                 size_t outsize, char *err, size_t errlen) {
  int rc;
  const char *v = nm__attr(n, msg, attr, optional, &rc, err, errlen);
  if (!v) return rc;
  size_t len = strlen(v);
  if (len >= outsize) {
    snprintf(err, errlen, "%s: %s is longer than %zu bytes", msg, attr, outsize - 1);
    return NM_EMSG;
  }
  memcpy(out, v, len + 1);
  return 0;
}

/* ---- enum wire names ---------------------------------------------------------------- */

static const char *const nm__complaint_names[] = {"refused", "timeout", "reset"};

const char *nm_complaint_reason_name(nm_complaint_reason r) {
  return (unsigned)r < NM__COUNT(nm__complaint_names) ? nm__complaint_names[r] : NULL;
}

/* ---- encoding ----------------------------------------------------------------------- */

void nm_msgbuf_free(nm_msgbuf *b) {
  if (!b) return;
  free(b->data);
  b->data = NULL;
  b->len = 0;
}

static int nm__valid_port(uint16_t p) { return p != 0; }

static int nm__sig_set(const uint8_t sig[NM_LINESIG_LEN]) {
  uint8_t any = 0;
  for (size_t i = 0; i < NM_LINESIG_LEN; i++) any |= sig[i];
  return any != 0;
}

/* Binary values as lowercase hex attributes (nm_hex: one spelling per value). */
static void nm__attr_hex(nm_xml_writer *w, const char *attr, const uint8_t *v, size_t len) {
  char hex[2 * NM_LINESIG_LEN + 1];
  nm_hex_encode(v, len, hex, sizeof hex);
  nm_xml_writer_attr(w, attr, hex);
}

static int nm__enc_hello(nm_xml_writer *w, const nm_msg_hello *h) {
  if (!nm_id_valid(h->id) || !nm_name_valid(h->name) || (unsigned)h->role > NM_ROLE_RELAY ||
      h->max_clients > NM_RELAY_CLIENTS_MAX)
    return -EINVAL;
  nm_xml_writer_start(w, "hello");
  nm_xml_writer_attr(w, "id", h->id);
  nm_xml_writer_attr(w, "name", h->name);
  nm_xml_writer_attr(w, "role", nm_role_name(h->role));
  nm_xml_writer_attr_u64(w, "port", h->port);
  nm_xml_writer_attr_u64(w, "max-clients", h->max_clients);
  if (h->has_secret) nm__attr_hex(w, "secret", h->secret, sizeof h->secret);
  if (h->views) nm_xml_writer_attr(w, "views", "1");
  nm_xml_writer_end(w);
  return 0;
}

/* The bounds the servant has always enforced on a welcome's timing. */
#define NM__HEARTBEAT_MIN 1
#define NM__HEARTBEAT_MAX 3600
#define NM__TIMEOUT_MIN 2
#define NM__TIMEOUT_MAX 36000

static int nm__enc_welcome(nm_xml_writer *w, const nm_msg_welcome *m) {
  if (!nm_id_valid(m->id) || !nm_ip_valid(m->ip) || !nm__valid_port(m->port) ||
      m->heartbeat_s < NM__HEARTBEAT_MIN || m->heartbeat_s > NM__HEARTBEAT_MAX ||
      m->timeout_s < NM__TIMEOUT_MIN || m->timeout_s > NM__TIMEOUT_MAX || m->naddrs > NM_MANAGER_ADDRS_MAX)
    return -EINVAL;
  for (size_t i = 0; i < m->naddrs; i++)
    if (!nm_addr_is_candidate(m->addrs[i].ip) || !nm__valid_port(m->addrs[i].port)) return -EINVAL;
  nm_xml_writer_start(w, "welcome");
  nm_xml_writer_attr(w, "id", m->id);
  nm_xml_writer_attr(w, "ip", m->ip);
  nm_xml_writer_attr_u64(w, "port", m->port);
  nm_xml_writer_attr_u64(w, "heartbeat", m->heartbeat_s);
  nm_xml_writer_attr_u64(w, "timeout", m->timeout_s);
  if (m->has_cert) {
    if (!nm_name_valid(m->name) || !nm__sig_set(m->cert)) return -EINVAL;
    nm__attr_hex(w, "cert", m->cert, sizeof m->cert);
    nm__attr_hex(w, "key", m->key, sizeof m->key);
    nm_xml_writer_attr(w, "name", m->name);
    nm__attr_hex(w, "manager-key", m->manager_key, sizeof m->manager_key);
  }
  for (size_t i = 0; i < m->naddrs; i++) {
    nm_xml_writer_start(w, "addr");
    nm_xml_writer_attr(w, "ip", m->addrs[i].ip);
    nm_xml_writer_attr_u64(w, "port", m->addrs[i].port);
    nm_xml_writer_end(w);
  }
  nm_xml_writer_end(w);
  return 0;
}

static int nm__enc_observe(nm_xml_writer *w, const nm_msg_observe *m) {
  if (!nm_id_valid(m->id)) return -EINVAL;
  nm_xml_writer_start(w, "observe");
  nm_xml_writer_attr(w, "id", m->id);
  nm_xml_writer_end(w);
  return 0;
}

static int nm__enc_observed(nm_xml_writer *w, const nm_msg_observed *m) {
  if (!nm_ip_valid(m->ip) || !nm__valid_port(m->port)) return -EINVAL;
  nm_xml_writer_start(w, "observed");
  nm_xml_writer_attr(w, "ip", m->ip);
  nm_xml_writer_attr_u64(w, "port", m->port);
  nm_xml_writer_end(w);
  return 0;
}

static int nm__enc_direct(nm_xml_writer *w, const nm_msg_direct *m) {
  if (m->count > NM_DIRECT_MAX) return -EINVAL;
  for (size_t i = 0; i < m->count; i++)
    if (!nm_id_valid(m->ids[i])) return -EINVAL;
  nm_xml_writer_start(w, "direct");
  for (size_t i = 0; i < m->count; i++) {
    nm_xml_writer_start(w, "peer");
    nm_xml_writer_attr(w, "id", m->ids[i]);
    nm_xml_writer_end(w);
  }
  nm_xml_writer_end(w);
  return 0;
}

static int nm__enc_neighbours(nm_xml_writer *w, const nm_msg_neighbours *m) {
  if (m->count > NM_NEIGHBOURS_MAX) return -EINVAL;
  for (size_t i = 0; i < m->count; i++)
    if (!nm_id_valid(m->ids[i])) return -EINVAL;
  nm_xml_writer_start(w, "neighbours");
  nm_xml_writer_attr_u64(w, "version", m->version);
  for (size_t i = 0; i < m->count; i++) {
    nm_xml_writer_start(w, "n");
    nm_xml_writer_attr(w, "id", m->ids[i]);
    nm_xml_writer_end(w);
  }
  nm_xml_writer_end(w);
  return 0;
}

static int nm__enc_punch(nm_xml_writer *w, const nm_msg_punch *m) {
  if (!nm_id_valid(m->id) || !nm_pubkey_is_set(m->key) || !nm_ip_valid(m->ip) || !nm__valid_port(m->port) ||
      m->delay_ms > NM_PUNCH_DELAY_MAX_MS)
    return -EINVAL;
  nm_xml_writer_start(w, "punch");
  nm_xml_writer_attr(w, "id", m->id);
  nm__attr_hex(w, "key", m->key, sizeof m->key);
  nm_xml_writer_attr(w, "ip", m->ip);
  nm_xml_writer_attr_u64(w, "port", m->port);
  nm_xml_writer_attr_u64(w, "delay-ms", m->delay_ms);
  nm_xml_writer_end(w);
  return 0;
}

static int nm__enc_listening(nm_xml_writer *w, const nm_msg_listening *m) {
  /* Either "I listen on port" or "port busy, assign another": never both, never neither. */
  if ((m->port == 0) == (m->busy == 0)) return -EINVAL;
  if (m->naddrs > NM_LOCAL_ADDRS_MAX) return -EINVAL;
  for (size_t i = 0; i < m->naddrs; i++)
    if (!nm_addr_is_candidate(m->addrs[i])) return -EINVAL;
  nm_xml_writer_start(w, "listening");
  nm_xml_writer_attr_u64(w, "port", m->port);
  if (m->busy) nm_xml_writer_attr_u64(w, "busy", m->busy);
  for (size_t i = 0; i < m->naddrs; i++) {
    nm_xml_writer_start(w, "addr");
    nm_xml_writer_attr(w, "ip", m->addrs[i]);
    nm_xml_writer_end(w);
  }
  nm_xml_writer_end(w);
  return 0;
}

static int nm__enc_version(nm_xml_writer *w, const char *root, const nm_msg_version *m) {
  nm_xml_writer_start(w, root);
  nm_xml_writer_attr_u64(w, "version", m->version);
  if (m->direct_all && strcmp(root, "heartbeat") == 0) nm_xml_writer_attr(w, "direct", "all");
  if (m->servants && strcmp(root, "heartbeat-ack") == 0) nm_xml_writer_attr_u64(w, "servants", m->servants);
  nm_xml_writer_end(w);
  return 0;
}

static int nm__enc_mapping(nm_xml_writer *w, const nm_msg_mapping *m) {
  if ((unsigned)m->method > NM_MAPPING_LAST) return -EINVAL;
  /* The external address comes from a router on the LAN: a literal IP or nothing. */
  if (m->method != NM_MAPPING_NONE && m->ext_ip[0] && !nm_ip_valid(m->ext_ip)) return -EINVAL;
  nm_xml_writer_start(w, "mapping");
  nm_xml_writer_attr(w, "method", nm_mapping_name(m->method));
  if (m->method != NM_MAPPING_NONE) {
    if (m->ext_ip[0]) nm_xml_writer_attr(w, "ext-ip", m->ext_ip);
    nm_xml_writer_attr_u64(w, "ext-port", m->ext_port);
    nm_xml_writer_attr_u64(w, "lease", m->lease_s);
  }
  nm_xml_writer_end(w);
  return 0;
}

static int nm__enc_complaint(nm_xml_writer *w, const nm_msg_complaint *m) {
  const char *reason = nm_complaint_reason_name(m->reason);
  if (!nm_id_valid(m->accused) || !reason) return -EINVAL;
  nm_xml_writer_start(w, "complaint");
  nm_xml_writer_attr(w, "accused", m->accused);
  nm_xml_writer_attr(w, "reason", reason);
  nm_xml_writer_end(w);
  return 0;
}

/* In nm_assign_reason's order. */
static const char *const nm__assign_names[] = {"suspicious", "pair", "provisional"};

const char *nm_assign_reason_name(nm_assign_reason r) {
  return (unsigned)r < NM__COUNT(nm__assign_names) ? nm__assign_names[r] : NULL;
}

static int nm__enc_relay_assign(nm_xml_writer *w, const nm_msg_relay_assign *m) {
  if (!m->release && !nm_assign_reason_name(m->reason)) return -EINVAL;
  if (!m->release && (!nm_id_valid(m->relay) || !nm_name_valid(m->name) || !nm_ip_valid(m->ip) ||
                      !nm__valid_port(m->port) || !nm_token_valid(m->token) ||
                      !nm_pubkey_is_set(m->key)))
    return -EINVAL;
  nm_xml_writer_start(w, "relay-assign");
  if (m->release && m->standby) nm_xml_writer_attr(w, "standby", "yes");
  if (!m->release) {
    nm_xml_writer_attr(w, "relay", m->relay);
    nm_xml_writer_attr(w, "name", m->name);
    nm_xml_writer_attr(w, "ip", m->ip);
    nm_xml_writer_attr_u64(w, "port", m->port);
    nm_xml_writer_attr(w, "token", m->token);
    nm__attr_hex(w, "key", m->key, sizeof m->key);
    /* Absent means suspicious: what managers before the pair path sent. */
    if (m->reason != NM_ASSIGN_SUSPICIOUS) nm_xml_writer_attr(w, "reason", nm_assign_reason_name(m->reason));
  }
  nm_xml_writer_end(w);
  return 0;
}

static int nm__enc_relay_serve(nm_xml_writer *w, const nm_msg_relay_serve *m) {
  if (m->count > NM_RELAY_CLIENTS_MAX) return -EINVAL;
  for (size_t i = 0; i < m->count; i++)
    if (!nm_id_valid(m->clients[i].id) || !nm_token_valid(m->clients[i].token) ||
        !nm_pubkey_is_set(m->clients[i].key))
      return -EINVAL;
  nm_xml_writer_start(w, "relay-serve");
  for (size_t i = 0; i < m->count; i++) {
    nm_xml_writer_start(w, "client");
    nm_xml_writer_attr(w, "id", m->clients[i].id);
    nm_xml_writer_attr(w, "token", m->clients[i].token);
    nm__attr_hex(w, "key", m->clients[i].key, sizeof m->clients[i].key);
    nm_xml_writer_end(w);
  }
  nm_xml_writer_end(w);
  return 0;
}

static int nm__enc_relay_load(nm_xml_writer *w, const nm_msg_relay_load *m) {
  nm_xml_writer_start(w, "relay-load");
  nm_xml_writer_attr_u64(w, "clients", m->clients);
  nm_xml_writer_attr_u64(w, "attached", m->attached);
  nm_xml_writer_attr_u64(w, "max-clients", m->max_clients);
  nm_xml_writer_attr_u64(w, "bytes-in", m->bytes_in);
  nm_xml_writer_attr_u64(w, "bytes-out", m->bytes_out);
  nm_xml_writer_attr_u64(w, "drops", m->drops);
  nm_xml_writer_end(w);
  return 0;
}

static int nm__enc_peer_hello(nm_xml_writer *w, const nm_msg_peer_hello *m) {
  if (!nm_id_valid(m->id) || !nm_name_valid(m->name)) return -EINVAL;
  nm_xml_writer_start(w, "peer-hello");
  nm_xml_writer_attr(w, "id", m->id);
  nm_xml_writer_attr(w, "name", m->name);
  if (m->reverse) nm_xml_writer_attr(w, "reverse", "yes");
  nm_xml_writer_end(w);
  return 0;
}

static int nm__enc_chat(nm_xml_writer *w, const nm_msg_chat *m) {
  size_t len = strnlen(m->text, sizeof m->text);
  if (!nm_id_valid(m->origin) || !nm_name_valid(m->name) || m->seq == 0 || len > NM_CHAT_MAX ||
      !nm_xml_text_valid(m->text, len) || !nm__sig_set(m->sig))
    return -EINVAL;
  nm_xml_writer_start(w, "chat");
  nm_xml_writer_attr(w, "origin", m->origin);
  nm_xml_writer_attr(w, "name", m->name);
  nm_xml_writer_attr_u64(w, "epoch", m->epoch);
  nm_xml_writer_attr_u64(w, "seq", m->seq);
  nm__attr_hex(w, "sig", m->sig, sizeof m->sig);
  if (m->has_cert) {
    if (!nm__sig_set(m->cert)) return -EINVAL;
    nm__attr_hex(w, "key", m->key, sizeof m->key);
    nm__attr_hex(w, "cert", m->cert, sizeof m->cert);
    if (m->has_signer) nm__attr_hex(w, "signer", m->signer, sizeof m->signer);
  }
  nm_xml_writer_text(w, m->text);
  nm_xml_writer_end(w);
  return 0;
}

static int nm__enc_pull(nm_xml_writer *w, const nm_msg_pull *m) {
  if (!nm_id_valid(m->id) || !nm_token_valid(m->token)) return -EINVAL;
  nm_xml_writer_start(w, "pull");
  nm_xml_writer_attr(w, "id", m->id);
  nm_xml_writer_attr(w, "token", m->token);
  nm_xml_writer_end(w);
  return 0;
}

/* A peer the manager would publish: what nm_peer_from_xml accepts on the other side. */
static int nm__peer_sendable(const nm_peer *p) {
  return nm_id_valid(p->id) && nm_pubkey_is_set(p->key) && nm_name_valid(p->name) && nm_ip_valid(p->ip) && p->port != 0 &&
         (unsigned)p->role <= NM_ROLE_RELAY && (unsigned)p->state <= NM_REACH_RELAYED &&
         (unsigned)p->mapping <= NM_MAPPING_LAST && (!p->relay[0] || nm_id_valid(p->relay));
}

/* Peer lists and deltas are built as trees by nm_peerlist (which escapes through
 * libxml2 as well), so the list has one writer and one reader. */
static int nm__enc_doc(xmlDoc *doc, nm_msgbuf *out) {
  if (!doc) return -ENOMEM;
  int rc = nm_xml_dump(doc, &out->data, &out->len);
  xmlFreeDoc(doc);
  return rc;
}

static int nm__enc_peers(const nm_msg_peers *m, nm_msgbuf *out) {
  if (!m->list || (m->me[0] && !nm_id_valid(m->me))) return -EINVAL;
  if (m->pages <= 1) {
    if (m->list->count > NM_PEERS_MAX) return -EINVAL;
    for (size_t i = 0; i < m->list->count; i++)
      if (!nm__peer_sendable(&m->list->peers[i])) return -EINVAL;
    return nm__enc_doc(nm_peerlist_to_doc(m->list, m->me[0] ? m->me : NULL), out);
  }
  if (m->page >= m->pages || m->pages > NM_PEERS_PAGES_MAX) return -EINVAL;
  nm_peerlist *l = m->list;
  if (m->page == m->pages - 1) {
    /* the asker's own page: entry first alone, whose id is me */
    const nm_peer *me = m->n == 1 && m->first < l->count ? &l->peers[m->first] : NULL;
    if (!me || !m->me[0] || strcmp(me->id, m->me) != 0 || !nm__peer_sendable(me)) return -EINVAL;
    return nm__enc_doc(nm_peerlist_page_doc(l->version, m->page, m->pages, me, 1, 1), out);
  }
  if (m->n > NM_PEERS_MAX || m->first > l->count || m->n > l->count - m->first) return -EINVAL;
  for (size_t i = m->first; i < m->first + m->n; i++)
    if (!nm__peer_sendable(&l->peers[i])) return -EINVAL;
  return nm__enc_doc(nm_peerlist_page_doc(l->version, m->page, m->pages, m->n ? &l->peers[m->first] : NULL, m->n, 0),
                     out);
}

static int nm__enc_delta(const nm_msg_delta *m, nm_msgbuf *out) {
  if (m->count == 0 || m->count > NM_DELTA_CHANGES_MAX || !m->changes || m->version <= m->base ||
      m->version - m->base != m->count)
    return -EINVAL;
  for (size_t i = 0; i < m->count; i++) {
    const nm_delta_change *c = &m->changes[i];
    if (c->leave ? !nm_id_valid(c->peer.id) : !nm__peer_sendable(&c->peer)) return -EINVAL;
  }
  return nm__enc_doc(nm_delta_doc(m->base, m->version, m->changes, m->count), out);
}

static int nm__enc_error(const nm_msg_error *m, nm_msgbuf *out) {
  /* Plain text, not XML: the receiver logs it after replacing control characters. */
  size_t len = strnlen(m->text, sizeof m->text - 1);
  out->data = malloc(len + 1);
  if (!out->data) return -ENOMEM;
  memcpy(out->data, m->text, len);
  out->data[len] = 0;
  out->len = len;
  return 0;
}

/* ---- heartbeats without libxml2 --------------------------------------------------------
 * A manager answers tens of thousands of heartbeats a second; building and parsing each one
 * with libxml2 (a writer, a parser context, a document, a dictionary) cost the manager a
 * sixth of its time per heartbeat, more than encrypting it. A heartbeat and its ack are one
 * empty element with at most two attributes, so both take a short cut for exactly the
 * canonical form nm__enc_version writes (attributes in its order, decimal without leading
 * zeros, its trailing newline optional). Anything else, however slightly different, goes
 * to libxml2 as before: what is accepted and how a refusal reads do not change, which
 * unit_msg and fuzz_msg check by running both paths on the same bytes. */
static int nm__fast = 1;

void nm_msg_fast_paths(int on) { nm__fast = on; }

static int nm__fast_lit(const char **p, const char *end, const char *lit) {
  size_t n = strlen(lit);
  if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0) return 0;
  *p += n;
  return 1;
}

/* Canonical decimal then '"': 1 to 19 digits (no overflow possible), no leading zero. */
static int nm__fast_u64(const char **p, const char *end, uint64_t *out) {
  const char *s = *p, *q = s;
  while (q < end && q - s < 20 && *q >= '0' && *q <= '9') q++;
  size_t n = (size_t)(q - s);
  if (n == 0 || n > 19 || (n > 1 && s[0] == '0') || q == end || *q != '"') return 0;
  if (nm_parse_u64(s, n, out) < 0) return 0;
  *p = q + 1;
  return 1;
}

/* 1 when payload is the canonical heartbeat (or ack), with *m filled; 0: not that form. */
static int nm__fast_dec_version(uint8_t type, const char *payload, size_t len, nm_msg_version *m) {
  const char *p = payload, *end = payload + len;
  if (len && end[-1] == '\n') end--;
  int hb = type == NM_MSG_HEARTBEAT;
  nm_msg_version v = {0};
  if (!nm__fast_lit(&p, end, hb ? "<heartbeat version=\"" : "<heartbeat-ack version=\"") ||
      !nm__fast_u64(&p, end, &v.version))
    return 0;
  if (hb && nm__fast_lit(&p, end, " direct=\"all\"")) v.direct_all = 1;
  if (!hb && nm__fast_lit(&p, end, " servants=\"") && !nm__fast_u64(&p, end, &v.servants)) return 0;
  if (!nm__fast_lit(&p, end, "/>") || p != end) return 0;
  *m = v;
  return 1;
}

static int nm__fast_enc_version(const nm_msg *m, nm_msgbuf *out) {
  const nm_msg_version *v = m->type == NM_MSG_HEARTBEAT ? &m->u.heartbeat : &m->u.heartbeat_ack;
  char buf[128];
  int n;
  if (m->type == NM_MSG_HEARTBEAT)
    n = snprintf(buf, sizeof buf, "<heartbeat version=\"%" PRIu64 "\"%s/>\n", v->version,
                 v->direct_all ? " direct=\"all\"" : "");
  else if (v->servants)
    n = snprintf(buf, sizeof buf, "<heartbeat-ack version=\"%" PRIu64 "\" servants=\"%" PRIu64 "\"/>\n",
                 v->version, v->servants);
  else
    n = snprintf(buf, sizeof buf, "<heartbeat-ack version=\"%" PRIu64 "\"/>\n", v->version);
  if (n < 0 || (size_t)n >= sizeof buf) return -EINVAL; /* cannot happen: 20 digits at most */
  out->data = malloc((size_t)n);
  if (!out->data) return -ENOMEM;
  memcpy(out->data, buf, (size_t)n);
  out->len = (size_t)n;
  return 0;
}

int nm_msg_encode(const nm_msg *m, nm_msgbuf *out) {
  out->data = NULL;
  out->len = 0;
  if (nm__fast && (m->type == NM_MSG_HEARTBEAT || m->type == NM_MSG_HEARTBEAT_ACK))
    return nm__fast_enc_version(m, out);
  switch (m->type) {
  case NM_MSG_PEERS_REQUEST:
  case NM_MSG_BYE:
  case NM_MSG_STATUS_REQUEST: return 0;
  case NM_MSG_ERROR: return nm__enc_error(&m->u.error, out);
  case NM_MSG_PEERS: return nm__enc_peers(&m->u.peers, out);
  case NM_MSG_DELTA: return nm__enc_delta(&m->u.delta, out);
  case NM_MSG_STATUS:
    if (!m->u.status.status) return -EINVAL;
    return nm_status_encode(m->u.status.status, &out->data, &out->len);
  default: break;
  }
  nm_xml_writer w;
  int rc = nm_xml_writer_init(&w);
  if (rc < 0) return rc;
  switch (m->type) {
  case NM_MSG_HELLO: rc = nm__enc_hello(&w, &m->u.hello); break;
  case NM_MSG_WELCOME: rc = nm__enc_welcome(&w, &m->u.welcome); break;
  case NM_MSG_LISTENING: rc = nm__enc_listening(&w, &m->u.listening); break;
  case NM_MSG_HEARTBEAT: rc = nm__enc_version(&w, "heartbeat", &m->u.heartbeat); break;
  case NM_MSG_HEARTBEAT_ACK: rc = nm__enc_version(&w, "heartbeat-ack", &m->u.heartbeat_ack); break;
  case NM_MSG_MAPPING: rc = nm__enc_mapping(&w, &m->u.mapping); break;
  case NM_MSG_COMPLAINT: rc = nm__enc_complaint(&w, &m->u.complaint); break;
  case NM_MSG_RELAY_ASSIGN: rc = nm__enc_relay_assign(&w, &m->u.relay_assign); break;
  case NM_MSG_RELAY_SERVE: rc = nm__enc_relay_serve(&w, &m->u.relay_serve); break;
  case NM_MSG_RELAY_LOAD: rc = nm__enc_relay_load(&w, &m->u.relay_load); break;
  case NM_MSG_PEER_HELLO: rc = nm__enc_peer_hello(&w, &m->u.peer_hello); break;
  case NM_MSG_CHAT: rc = nm__enc_chat(&w, &m->u.chat); break;
  case NM_MSG_PULL: rc = nm__enc_pull(&w, &m->u.pull); break;
  case NM_MSG_OBSERVE: rc = nm__enc_observe(&w, &m->u.observe); break;
  case NM_MSG_OBSERVED: rc = nm__enc_observed(&w, &m->u.observed); break;
  case NM_MSG_PUNCH: rc = nm__enc_punch(&w, &m->u.punch); break;
  case NM_MSG_DIRECT: rc = nm__enc_direct(&w, &m->u.direct); break;
  case NM_MSG_NEIGHBOURS: rc = nm__enc_neighbours(&w, &m->u.neighbours); break;
  default: rc = -EINVAL; break;
  }
  if (rc < 0) {
    nm_xml_writer_discard(&w);
    return rc;
  }
  return nm_xml_writer_finish(&w, &out->data, &out->len);
}

/* ---- decoding ----------------------------------------------------------------------- */

typedef struct {
  xmlDoc *doc;
  xmlNode *root;
  const char *msg; /* the message's name, for errors */
  char *err;
  size_t errlen;
} nm__dec;

#define NM__CHECK(expr)                                                                       \
  do {                                                                                        \
    int nm_rc_ = (expr);                                                                      \
    if (nm_rc_ < 0) return nm_rc_;                                                            \
  } while (0)

static int nm__dec_hello(nm__dec *d, nm_msg_hello *h) {
  xmlNode *n = d->root;
  h->role = NM_ROLE_SERVANT; /* what a node that does not say is */
  h->max_clients = 8;        /* and how many clients it serves */
  NM__CHECK(nm_read_id(n, d->msg, "id", 0, h->id, d->err, d->errlen));
  NM__CHECK(nm_read_name(n, d->msg, "name", 0, h->name, d->err, d->errlen));
  NM__CHECK(nm_read_role(n, d->msg, "role", 1, &h->role, d->err, d->errlen));
  NM__CHECK(nm_read_port(n, d->msg, "port", 0, 1, &h->port, d->err, d->errlen));
  NM__CHECK(nm_read_uint(n, d->msg, "max-clients", 1, 0, NM_RELAY_CLIENTS_MAX, &h->max_clients,
                         d->err, d->errlen));
  if (nm_xml_attr(n, "secret")) {
    NM__CHECK(nm_read_secret(n, d->msg, "secret", 0, h->secret, d->err, d->errlen));
    h->has_secret = 1;
  }
  const char *views = nm_xml_attr(n, "views");
  h->views = views && strcmp(views, "1") == 0;
  return 0;
}

static int nm__dec_welcome(nm__dec *d, nm_msg_welcome *m) {
  xmlNode *n = d->root;
  NM__CHECK(nm_read_id(n, d->msg, "id", 0, m->id, d->err, d->errlen));
  NM__CHECK(nm_read_ip(n, d->msg, "ip", 0, m->ip, d->err, d->errlen));
  NM__CHECK(nm_read_port(n, d->msg, "port", 0, 0, &m->port, d->err, d->errlen));
  NM__CHECK(nm_read_uint(n, d->msg, "heartbeat", 0, NM__HEARTBEAT_MIN, NM__HEARTBEAT_MAX,
                         &m->heartbeat_s, d->err, d->errlen));
  NM__CHECK(nm_read_uint(n, d->msg, "timeout", 0, NM__TIMEOUT_MIN, NM__TIMEOUT_MAX, &m->timeout_s,
                         d->err, d->errlen));
  if (xmlHasProp(n, BAD_CAST "cert")) {
    NM__CHECK(nm_read_sig(n, d->msg, "cert", 0, m->cert, d->err, d->errlen));
    NM__CHECK(nm_read_key(n, d->msg, "key", 0, m->key, d->err, d->errlen));
    NM__CHECK(nm_read_name(n, d->msg, "name", 0, m->name, d->err, d->errlen));
    NM__CHECK(nm_read_key(n, d->msg, "manager-key", 0, m->manager_key, d->err, d->errlen));
    m->has_cert = 1;
  }
  for (xmlNode *c = n->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "addr") != 0) continue;
    if (m->naddrs == NM_MANAGER_ADDRS_MAX) {
      snprintf(d->err, d->errlen, "%s: more than %d addresses", d->msg, NM_MANAGER_ADDRS_MAX);
      return NM_EMSG;
    }
    char ctx[48], ip[64];
    snprintf(ctx, sizeof ctx, "%s: addr %zu", d->msg, m->naddrs + 1);
    NM__CHECK(nm_read_ip(c, ctx, "ip", 0, ip, d->err, d->errlen));
    if (!nm_addr_is_candidate(ip)) {
      snprintf(d->err, d->errlen, "%s: not a usable address", ctx);
      return NM_EMSG;
    }
    NM__CHECK(nm_read_port(c, ctx, "port", 0, 0, &m->addrs[m->naddrs].port, d->err, d->errlen));
    memcpy(m->addrs[m->naddrs++].ip, ip, strlen(ip) + 1);
  }
  return 0;
}

static int nm__dec_observe(nm__dec *d, nm_msg_observe *m) {
  return nm_read_id(d->root, d->msg, "id", 0, m->id, d->err, d->errlen);
}

static int nm__dec_observed(nm__dec *d, nm_msg_observed *m) {
  NM__CHECK(nm_read_ip(d->root, d->msg, "ip", 0, m->ip, d->err, d->errlen));
  return nm_read_port(d->root, d->msg, "port", 0, 0, &m->port, d->err, d->errlen);
}

static int nm__dec_direct(nm__dec *d, nm_msg_direct *m) {
  for (xmlNode *c = d->root->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "peer") != 0) continue;
    if (m->count == NM_DIRECT_MAX) {
      snprintf(d->err, d->errlen, "%s: more than %d peers", d->msg, NM_DIRECT_MAX);
      return NM_EMSG;
    }
    char ctx[48];
    snprintf(ctx, sizeof ctx, "%s: peer %zu", d->msg, m->count + 1);
    NM__CHECK(nm_read_id(c, ctx, "id", 0, m->ids[m->count], d->err, d->errlen));
    m->count++;
  }
  return 0;
}

/* Never trusts a count: at most NM_NEIGHBOURS_MAX <n>, each a valid id, none twice. */
static int nm__dec_neighbours(nm__dec *d, nm_msg_neighbours *m) {
  NM__CHECK(nm_read_u64(d->root, d->msg, "version", 0, &m->version, d->err, d->errlen));
  for (xmlNode *c = d->root->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "n") != 0) continue;
    if (m->count == NM_NEIGHBOURS_MAX) {
      snprintf(d->err, d->errlen, "%s: more than %d neighbours", d->msg, NM_NEIGHBOURS_MAX);
      return NM_EMSG;
    }
    char ctx[48];
    snprintf(ctx, sizeof ctx, "%s: n %zu", d->msg, m->count + 1);
    NM__CHECK(nm_read_id(c, ctx, "id", 0, m->ids[m->count], d->err, d->errlen));
    for (size_t i = 0; i < m->count; i++)
      if (strcmp(m->ids[i], m->ids[m->count]) == 0) {
        snprintf(d->err, d->errlen, "%s: %s listed twice", ctx, m->ids[i]);
        return NM_EMSG;
      }
    m->count++;
  }
  return 0;
}

static int nm__dec_punch(nm__dec *d, nm_msg_punch *m) {
  NM__CHECK(nm_read_id(d->root, d->msg, "id", 0, m->id, d->err, d->errlen));
  NM__CHECK(nm_read_key(d->root, d->msg, "key", 0, m->key, d->err, d->errlen));
  NM__CHECK(nm_read_ip(d->root, d->msg, "ip", 0, m->ip, d->err, d->errlen));
  NM__CHECK(nm_read_port(d->root, d->msg, "port", 0, 0, &m->port, d->err, d->errlen));
  NM__CHECK(nm_read_u64(d->root, d->msg, "delay-ms", 0, &m->delay_ms, d->err, d->errlen));
  if (m->delay_ms > NM_PUNCH_DELAY_MAX_MS) {
    snprintf(d->err, d->errlen, "%s: delay-ms over %d", d->msg, NM_PUNCH_DELAY_MAX_MS);
    return NM_EMSG;
  }
  return 0;
}

static int nm__dec_listening(nm__dec *d, nm_msg_listening *m) {
  NM__CHECK(nm_read_port(d->root, d->msg, "port", 0, 1, &m->port, d->err, d->errlen));
  /* busy only means something with port 0 ("could not bind it, assign another"). */
  if (m->port == 0)
    NM__CHECK(nm_read_port(d->root, d->msg, "busy", 0, 0, &m->busy, d->err, d->errlen));
  for (xmlNode *c = d->root->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "addr") != 0) continue;
    if (m->naddrs == NM_LOCAL_ADDRS_MAX) {
      snprintf(d->err, d->errlen, "%s: more than %d addresses", d->msg, NM_LOCAL_ADDRS_MAX);
      return NM_EMSG;
    }
    char ctx[48];
    snprintf(ctx, sizeof ctx, "%s: addr %zu", d->msg, m->naddrs + 1);
    char ip[64];
    NM__CHECK(nm_read_ip(c, ctx, "ip", 0, ip, d->err, d->errlen));
    /* Loopback, link-local and the like mean nothing on another host. */
    if (!nm_addr_is_candidate(ip)) {
      snprintf(d->err, d->errlen, "%s: not a usable address", ctx);
      return NM_EMSG;
    }
    memcpy(m->addrs[m->naddrs++], ip, strlen(ip) + 1);
  }
  return 0;
}

static int nm__dec_version(nm__dec *d, nm_msg_version *m) {
  /* direct="all" (a heartbeat's): any other value means what its absence means. */
  const char *direct = nm_xml_attr(d->root, "direct");
  m->direct_all = direct && strcmp(direct, "all") == 0;
  NM__CHECK(nm_read_u64(d->root, d->msg, "servants", 1, &m->servants, d->err, d->errlen));
  return nm_read_u64(d->root, d->msg, "version", 0, &m->version, d->err, d->errlen);
}

static int nm__dec_mapping(nm__dec *d, nm_msg_mapping *m) {
  xmlNode *n = d->root;
  NM__CHECK(nm_read_mapping(n, d->msg, "method", 0, &m->method, d->err, d->errlen));
  if (m->method == NM_MAPPING_NONE) return 0; /* nothing else counts without a mapping */
  /* An empty ext-ip is no address, as if absent. */
  const char *ip = nm_xml_attr(n, "ext-ip");
  if (ip && *ip) NM__CHECK(nm_read_ip(n, d->msg, "ext-ip", 1, m->ext_ip, d->err, d->errlen));
  NM__CHECK(nm_read_port(n, d->msg, "ext-port", 1, 1, &m->ext_port, d->err, d->errlen));
  NM__CHECK(nm_read_uint(n, d->msg, "lease", 1, 0, UINT32_MAX, &m->lease_s, d->err, d->errlen));
  return 0;
}

static int nm__dec_complaint(nm__dec *d, nm_msg_complaint *m) {
  unsigned reason = 0; /* set by nm_read_enum; gcc cannot see it through NM__CHECK */
  NM__CHECK(nm_read_id(d->root, d->msg, "accused", 0, m->accused, d->err, d->errlen));
  NM__CHECK(nm_read_enum(d->root, d->msg, "reason", 0, nm__complaint_names,
                         NM__COUNT(nm__complaint_names), &reason, d->err, d->errlen));
  m->reason = (nm_complaint_reason)reason;
  return 0;
}

static int nm__dec_relay_assign(nm__dec *d, nm_msg_relay_assign *m) {
  xmlNode *n = d->root;
  const char *relay = nm_xml_attr(n, "relay");
  if (!relay || !*relay) {
    /* <relay-assign/>: pull no more; standby="yes": for now, the relay kept for us. */
    const char *standby = nm_xml_attr(n, "standby");
    m->release = 1;
    m->standby = standby && strcmp(standby, "yes") == 0;
    return 0;
  }
  NM__CHECK(nm_read_id(n, d->msg, "relay", 0, m->relay, d->err, d->errlen));
  NM__CHECK(nm_read_name(n, d->msg, "name", 0, m->name, d->err, d->errlen));
  NM__CHECK(nm_read_ip(n, d->msg, "ip", 0, m->ip, d->err, d->errlen));
  NM__CHECK(nm_read_port(n, d->msg, "port", 0, 0, &m->port, d->err, d->errlen));
  NM__CHECK(nm_read_token(n, d->msg, "token", 0, m->token, d->err, d->errlen));
  NM__CHECK(nm_read_key(n, d->msg, "key", 0, m->key, d->err, d->errlen));
  unsigned reason = 0;
  NM__CHECK(nm_read_enum(n, d->msg, "reason", 1, nm__assign_names, NM__COUNT(nm__assign_names), &reason,
                         d->err, d->errlen));
  m->reason = (nm_assign_reason)reason;
  return 0;
}

static int nm__dec_relay_serve(nm__dec *d, nm_msg_relay_serve *m) {
  for (xmlNode *c = d->root->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "client") != 0) continue;
    if (m->count == NM_RELAY_CLIENTS_MAX) {
      snprintf(d->err, d->errlen, "%s: more than %d clients", d->msg, NM_RELAY_CLIENTS_MAX);
      return NM_EMSG;
    }
    char ctx[48];
    snprintf(ctx, sizeof ctx, "%s: client %zu", d->msg, m->count + 1);
    nm_relay_client *cl = &m->clients[m->count];
    NM__CHECK(nm_read_id(c, ctx, "id", 0, cl->id, d->err, d->errlen));
    NM__CHECK(nm_read_token(c, ctx, "token", 0, cl->token, d->err, d->errlen));
    NM__CHECK(nm_read_key(c, ctx, "key", 0, cl->key, d->err, d->errlen));
    m->count++;
  }
  return 0;
}

static int nm__dec_relay_load(nm__dec *d, nm_msg_relay_load *m) {
  /* All optional: a load report is information, and older relays sent fewer counters. */
  static const struct {
    const char *attr;
    size_t offset;
  } fields[] = {
      {"clients", offsetof(nm_msg_relay_load, clients)},
      {"attached", offsetof(nm_msg_relay_load, attached)},
      {"max-clients", offsetof(nm_msg_relay_load, max_clients)},
      {"bytes-in", offsetof(nm_msg_relay_load, bytes_in)},
      {"bytes-out", offsetof(nm_msg_relay_load, bytes_out)},
      {"drops", offsetof(nm_msg_relay_load, drops)},
  };
  for (size_t i = 0; i < NM__COUNT(fields); i++)
    NM__CHECK(nm_read_u64(d->root, d->msg, fields[i].attr, 1,
                          (uint64_t *)((char *)m + fields[i].offset), d->err, d->errlen));
  return 0;
}

static int nm__dec_peer_hello(nm__dec *d, nm_msg_peer_hello *m) {
  NM__CHECK(nm_read_id(d->root, d->msg, "id", 0, m->id, d->err, d->errlen));
  NM__CHECK(nm_read_name(d->root, d->msg, "name", 0, m->name, d->err, d->errlen));
  const char *reverse = nm_xml_attr(d->root, "reverse");
  m->reverse = reverse && strcmp(reverse, "yes") == 0;
  return 0;
}

static int nm__dec_chat(nm__dec *d, nm_msg_chat *m) {
  xmlNode *n = d->root;
  NM__CHECK(nm_read_id(n, d->msg, "origin", 0, m->origin, d->err, d->errlen));
  NM__CHECK(nm_read_name(n, d->msg, "name", 0, m->name, d->err, d->errlen));
  NM__CHECK(nm_read_u64(n, d->msg, "epoch", 0, &m->epoch, d->err, d->errlen));
  NM__CHECK(nm_read_u64(n, d->msg, "seq", 0, &m->seq, d->err, d->errlen));
  if (m->seq == 0) return nm_read_field_error(d->msg, "seq", "0", d->err, d->errlen);
  NM__CHECK(nm_read_sig(n, d->msg, "sig", 0, m->sig, d->err, d->errlen));
  if (xmlHasProp(n, BAD_CAST "cert") || xmlHasProp(n, BAD_CAST "key")) {
    NM__CHECK(nm_read_key(n, d->msg, "key", 0, m->key, d->err, d->errlen));
    NM__CHECK(nm_read_sig(n, d->msg, "cert", 0, m->cert, d->err, d->errlen));
    m->has_cert = 1;
    if (xmlHasProp(n, BAD_CAST "signer")) {
      NM__CHECK(nm_read_key(n, d->msg, "signer", 0, m->signer, d->err, d->errlen));
      m->has_signer = 1;
    }
  }
  /* The line is the element's own text (a comment splits it in two; child elements are
   * not part of it), at most NM_CHAT_MAX bytes. */
  size_t len = 0;
  for (xmlNode *c = n->children; c; c = c->next) {
    if ((c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE) || !c->content) continue;
    size_t part = strlen((const char *)c->content);
    if (part > NM_CHAT_MAX - len) {
      snprintf(d->err, d->errlen, "%s: text longer than %d bytes", d->msg, NM_CHAT_MAX);
      return NM_EMSG;
    }
    memcpy(m->text + len, c->content, part);
    len += part;
  }
  m->text[len] = 0;
  return 0;
}

static int nm__dec_pull(nm__dec *d, nm_msg_pull *m) {
  NM__CHECK(nm_read_id(d->root, d->msg, "id", 0, m->id, d->err, d->errlen));
  NM__CHECK(nm_read_token(d->root, d->msg, "token", 0, m->token, d->err, d->errlen));
  return 0;
}

/* nm_peerlist's reasons name the peer and the element; say which message it was. */
static int nm__prefixed(nm__dec *d, int rc, const char *inner) {
  snprintf(d->err, d->errlen, "%s: %s", d->msg, inner);
  return rc;
}

static int nm__dec_peers(nm__dec *d, nm_msg_peers *m) {
  uint64_t page = 0, pages = 1;
  NM__CHECK(nm_read_u64(d->root, d->msg, "page", 1, &page, d->err, d->errlen));
  NM__CHECK(nm_read_u64(d->root, d->msg, "pages", 1, &pages, d->err, d->errlen));
  if (pages == 0 || pages > NM_PEERS_PAGES_MAX || page >= pages) {
    snprintf(d->err, d->errlen, "%s: page %" PRIu64 " of %" PRIu64 " (at most %d pages)", d->msg, page, pages,
             NM_PEERS_PAGES_MAX);
    return NM_EMSG;
  }
  m->page = (unsigned)page;
  m->pages = (unsigned)pages;
  m->list = malloc(sizeof *m->list);
  if (!m->list) return nm__prefixed(d, -ENOMEM, "out of memory");
  nm_peerlist_init(m->list);
  char inner[300];
  int rc = nm_peerlist_from_doc(d->doc, m->list, m->me, inner, sizeof inner);
  if (rc < 0) return nm__prefixed(d, rc, inner);
  m->first = 0;
  m->n = m->list->count;
  if (m->pages > 1) {
    /* A shared page marks nobody; the last holds the receiver's own entry alone. */
    int last = m->page == m->pages - 1;
    if (last ? m->list->count != 1 || !m->me[0] : m->me[0] != 0) {
      snprintf(d->err, d->errlen, "%s: page %u of %u %s", d->msg, m->page, m->pages,
               last ? "(the last) must hold the receiver's own entry alone, marked me" : "marks an entry as me");
      return NM_EMSG;
    }
  }
  return 0;
}

static int nm__dec_delta(nm__dec *d, nm_msg_delta *m) {
  NM__CHECK(nm_read_u64(d->root, d->msg, "base", 0, &m->base, d->err, d->errlen));
  NM__CHECK(nm_read_u64(d->root, d->msg, "version", 0, &m->version, d->err, d->errlen));
  /* The count is the versions' difference, checked before anything is allocated. */
  if (m->version <= m->base || m->version - m->base > NM_DELTA_CHANGES_MAX) {
    snprintf(d->err, d->errlen, "%s: base %" PRIu64 " to version %" PRIu64 " is not 1 to %d changes", d->msg,
             m->base, m->version, NM_DELTA_CHANGES_MAX);
    return NM_EMSG;
  }
  size_t want = (size_t)(m->version - m->base);
  m->changes = calloc(want, sizeof *m->changes);
  if (!m->changes) return nm__prefixed(d, -ENOMEM, "out of memory");
  for (xmlNode *c = d->root->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) continue;
    int is_peer = strcmp((const char *)c->name, "peer") == 0;
    int is_leave = strcmp((const char *)c->name, "leave") == 0;
    if (!is_peer && !is_leave) continue; /* newer elements: ignored */
    if (m->count == want) {
      snprintf(d->err, d->errlen, "%s: more than the %zu changes base %" PRIu64 " to version %" PRIu64 " says",
               d->msg, want, m->base, m->version);
      return NM_EMSG;
    }
    nm_delta_change *ch = &m->changes[m->count];
    if (is_peer) {
      char inner[300];
      int rc = nm_peer_from_xml(c, &ch->peer, inner, sizeof inner);
      if (rc < 0) return nm__prefixed(d, rc, inner);
    } else {
      ch->leave = 1;
      NM__CHECK(nm_read_id(c, "delta: leave", "id", 0, ch->peer.id, d->err, d->errlen));
      const char *view = nm_xml_attr(c, "view");
      ch->out_of_view = view && strcmp(view, "out") == 0;
    }
    m->count++;
  }
  if (m->count == 0) {
    snprintf(d->err, d->errlen, "%s: neither <peer> nor <leave>", d->msg);
    return NM_EMSG;
  }
  if (m->count != want) {
    snprintf(d->err, d->errlen, "%s: %zu changes, but base %" PRIu64 " to version %" PRIu64 " says %zu", d->msg,
             m->count, m->base, m->version, want);
    return NM_EMSG;
  }
  return 0;
}

static int nm__dec_status(nm__dec *d, nm_msg_status *m) {
  m->status = malloc(sizeof *m->status);
  if (!m->status) return nm__prefixed(d, -ENOMEM, "out of memory");
  nm_status_init(m->status);
  return nm_status_from_doc(d->doc, m->status, d->err, d->errlen);
}

static int nm__dec_error(const char *payload, size_t len, nm_msg_error *m) {
  /* Plain text, bounded; a NUL inside would cut it short, so it becomes '?'. */
  size_t n = len < sizeof m->text - 1 ? len : sizeof m->text - 1;
  for (size_t i = 0; i < n; i++) m->text[i] = payload[i] ? payload[i] : '?';
  m->text[n] = 0;
  return 0;
}

static int nm__is_xml_type(uint8_t type) {
  switch (type) {
  case NM_MSG_HELLO: case NM_MSG_WELCOME: case NM_MSG_LISTENING: case NM_MSG_PEERS:
  case NM_MSG_DELTA: case NM_MSG_HEARTBEAT: case NM_MSG_HEARTBEAT_ACK: case NM_MSG_STATUS:
  case NM_MSG_MAPPING: case NM_MSG_COMPLAINT: case NM_MSG_RELAY_ASSIGN: case NM_MSG_RELAY_SERVE:
  case NM_MSG_RELAY_LOAD: case NM_MSG_PEER_HELLO: case NM_MSG_CHAT: case NM_MSG_PULL:
  case NM_MSG_OBSERVE: case NM_MSG_OBSERVED: case NM_MSG_PUNCH: case NM_MSG_DIRECT:
  case NM_MSG_NEIGHBOURS:
    return 1;
  default:
    return 0;
  }
}

int nm_msg_decode(uint8_t type, const char *payload, size_t len, nm_msg *m, char *err,
                  size_t errlen) {
  memset(m, 0, sizeof *m);
  m->type = type;
  if (err && errlen) err[0] = 0;
  switch (type) {
  case NM_MSG_PEERS_REQUEST:
  case NM_MSG_BYE:
  case NM_MSG_STATUS_REQUEST: return 0; /* nothing to read; a payload is ignored */
  case NM_MSG_ERROR: return nm__dec_error(payload, len, &m->u.error);
  default: break;
  }
  if (!nm__is_xml_type(type)) {
    snprintf(err, errlen, "unknown message type 0x%02x", type);
    return NM_EFRAME_TYPE;
  }
  if (nm__fast && (type == NM_MSG_HEARTBEAT || type == NM_MSG_HEARTBEAT_ACK) &&
      nm__fast_dec_version(type, payload, len, type == NM_MSG_HEARTBEAT ? &m->u.heartbeat : &m->u.heartbeat_ack))
    return 0;
  nm__dec d = {.msg = nm_msg_name(type), .err = err, .errlen = errlen};
  char inner[300];
  int rc = nm_xml_parse(payload, len, &d.doc, inner, sizeof inner);
  if (rc < 0) {
    snprintf(err, errlen, "%s: %s", d.msg, inner);
    return rc;
  }
  d.root = xmlDocGetRootElement(d.doc);
  if (strcmp((const char *)d.root->name, d.msg) != 0) {
    char q[NM__QUOTE_MAX * 2];
    nm__quote(q, sizeof q, (const char *)d.root->name);
    snprintf(err, errlen, "%s: expected a <%s> document, got <%s>", d.msg, d.msg, q);
    xmlFreeDoc(d.doc);
    return NM_EMSG;
  }
  switch (type) {
  case NM_MSG_HELLO: rc = nm__dec_hello(&d, &m->u.hello); break;
  case NM_MSG_WELCOME: rc = nm__dec_welcome(&d, &m->u.welcome); break;
  case NM_MSG_LISTENING: rc = nm__dec_listening(&d, &m->u.listening); break;
  case NM_MSG_PEERS: rc = nm__dec_peers(&d, &m->u.peers); break;
  case NM_MSG_DELTA: rc = nm__dec_delta(&d, &m->u.delta); break;
  case NM_MSG_HEARTBEAT: rc = nm__dec_version(&d, &m->u.heartbeat); break;
  case NM_MSG_HEARTBEAT_ACK: rc = nm__dec_version(&d, &m->u.heartbeat_ack); break;
  case NM_MSG_STATUS: rc = nm__dec_status(&d, &m->u.status); break;
  case NM_MSG_MAPPING: rc = nm__dec_mapping(&d, &m->u.mapping); break;
  case NM_MSG_COMPLAINT: rc = nm__dec_complaint(&d, &m->u.complaint); break;
  case NM_MSG_RELAY_ASSIGN: rc = nm__dec_relay_assign(&d, &m->u.relay_assign); break;
  case NM_MSG_RELAY_SERVE: rc = nm__dec_relay_serve(&d, &m->u.relay_serve); break;
  case NM_MSG_RELAY_LOAD: rc = nm__dec_relay_load(&d, &m->u.relay_load); break;
  case NM_MSG_PEER_HELLO: rc = nm__dec_peer_hello(&d, &m->u.peer_hello); break;
  case NM_MSG_CHAT: rc = nm__dec_chat(&d, &m->u.chat); break;
  case NM_MSG_PULL: rc = nm__dec_pull(&d, &m->u.pull); break;
  case NM_MSG_OBSERVE: rc = nm__dec_observe(&d, &m->u.observe); break;
  case NM_MSG_OBSERVED: rc = nm__dec_observed(&d, &m->u.observed); break;
  case NM_MSG_PUNCH: rc = nm__dec_punch(&d, &m->u.punch); break;
  case NM_MSG_DIRECT: rc = nm__dec_direct(&d, &m->u.direct); break;
  case NM_MSG_NEIGHBOURS: rc = nm__dec_neighbours(&d, &m->u.neighbours); break;
  }
  xmlFreeDoc(d.doc);
  if (rc < 0) nm_msg_clear(m);
  return rc;
}

void nm_msg_clear(nm_msg *m) {
  if (!m) return;
  if (m->type == NM_MSG_PEERS && m->u.peers.list) {
    nm_peerlist_close(m->u.peers.list);
    free(m->u.peers.list);
    m->u.peers.list = NULL;
  } else if (m->type == NM_MSG_DELTA && m->u.delta.changes) {
    free(m->u.delta.changes);
    m->u.delta.changes = NULL;
    m->u.delta.count = 0;
  } else if (m->type == NM_MSG_STATUS && m->u.status.status) {
    nm_status_close(m->u.status.status);
    free(m->u.status.status);
    m->u.status.status = NULL;
  }
}

/* ---- signed chat lines ------------------------------------------------------------------ */

void nm_msg_chat_line(const nm_msg_chat *c, nm_linesig_line *out) {
  out->origin = c->origin;
  out->epoch = c->epoch;
  out->seq = c->seq;
  out->text = c->text;
  out->text_len = strnlen(c->text, sizeof c->text);
}

int nm_msg_chat_sign(nm_msg_chat *c, EVP_PKEY *key) {
  nm_linesig_line line;
  nm_msg_chat_line(c, &line);
  return nm_linesig_sign(key, &line, c->sig);
}

int nm_msg_chat_verify(const nm_msg_chat *c, const uint8_t pub[NM_PUBKEY_LEN]) {
  nm_linesig_line line;
  nm_msg_chat_line(c, &line);
  return nm_linesig_verify(pub, &line, c->sig);
}

/* ---- dispatch ----------------------------------------------------------------------- */

static void nm__state_name(const nm_dispatch_table *t, int state, char *buf, size_t len) {
  if (t->state_names && state >= 0 && (unsigned)state < t->nstates && t->state_names[state])
    snprintf(buf, len, "%s", t->state_names[state]);
  else
    snprintf(buf, len, "state %d", state);
}

const nm_dispatch_entry *nm_dispatch_find(const nm_dispatch_table *t, int state, uint8_t type,
                                          int *code, char *err, size_t errlen) {
  int known = 0;
  for (size_t i = 0; i < t->count; i++) {
    const nm_dispatch_entry *row = &t->rows[i];
    if (row->type != type) continue;
    known = 1;
    if (state >= row->min_state && state <= row->max_state) return row;
  }
  if (!known) {
    *code = NM_EFRAME_TYPE;
    snprintf(err, errlen, "unexpected %s frame (0x%02x) on %s %s", nm_msg_name(type), type,
             t->endpoint && strchr("aeiou", t->endpoint[0]) ? "an" : "a",
             t->endpoint ? t->endpoint : "session");
  } else {
    char sname[48];
    nm__state_name(t, state, sname, sizeof sname);
    *code = NM_EMSG;
    snprintf(err, errlen, "%s not allowed while %s", nm_msg_name(type), sname);
  }
  return NULL;
}

int nm_dispatch(const nm_dispatch_table *t, struct nm_conn *c, void *session, int state,
                uint8_t type, const char *payload, size_t len) {
  char why[400];
  int code = 0;
  const nm_dispatch_entry *row = nm_dispatch_find(t, state, type, &code, why, sizeof why);
  if (!row) {
    nm_conn_fail(c, code, why);
    return 1;
  }
  nm_msg m;
  char err[300];
  int rc = nm_msg_decode(type, payload, len, &m, err, sizeof err);
  if (rc < 0) {
    if (rc == NM_EXML || rc == NM_EXML_HOSTILE)
      snprintf(why, sizeof why, "refused XML: %s", err);
    else
      snprintf(why, sizeof why, "%s", err);
    nm_conn_fail(c, rc, why);
    return 1;
  }
  int stop = row->handler ? row->handler(session, &m) : 0;
  nm_msg_clear(&m);
  return stop;
}

int nm_msg_send(struct nm_conn *c, const nm_msg *m) {
  nm_msgbuf b;
  int rc = nm_msg_encode(m, &b);
  if (rc < 0) return rc;
  rc = nm_conn_send(c, m->type, b.data, b.len);
  nm_msgbuf_free(&b);
  return rc;
}
