/* nm_msg: natmesh's one message layer.
 *
 * Every frame natmesh sends is built here, and every frame it receives is read here:
 *   - nm_msg_encode() turns a typed message into a payload through libxml2's escaping
 *     writers (never by formatting XML text by hand), so a value that came from a router,
 *     a config file or a peer cannot break out of its attribute;
 *   - nm_msg_decode() parses a payload through nm_xml_parse() (hardened) and fills the
 *     typed message with typed readers (u64, port, id, name, token, enum), each of which
 *     names the message and the field that was wrong: "hello: invalid port \"abc\"".
 *   - nm_dispatch() runs a per-endpoint table of {type, states allowed, handler}, in the
 *     manner of tinc's request table: one place refuses an unknown or out-of-state frame.
 *
 * docs/protocol.md describes every message; this header is its code form. */
#ifndef NM_MSG_H
#define NM_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <libxml/tree.h>
#include <openssl/types.h>

#include "nm_identity.h"
#include "nm_invite.h"
#include "nm_linesig.h"
#include "nm_member.h"
#include "nm_peerlist.h"
#include "nm_proto.h"

/* ---- enums shared by several messages ----------------------------------------------- */

/* Role and mapping method travel as text on the wire, and are enums everywhere else.
 * nm_role and nm_mapping_kind are declared in nm_proto.h (nm_peer uses them). */

#define NM_TOKEN_LEN 32  /* hex characters of a relay token */
#define NM_RELAY_CLIENTS_MAX 256

/* ---- typed readers ------------------------------------------------------------------ */
/* Each returns 0, or NM_EMSG with "<msg>: missing <attr>" / "<msg>: invalid <attr> \"v\""
 * in err. optional: a missing attribute leaves *out untouched and returns 0. */
int nm_read_u64(xmlNode *n, const char *msg, const char *attr, int optional, uint64_t *out,
                char *err, size_t errlen);
int nm_read_uint(xmlNode *n, const char *msg, const char *attr, int optional, unsigned min,
                 unsigned max, unsigned *out, char *err, size_t errlen);
/* allow_zero: port 0 is meaningful (e.g. "assign me one"). */
int nm_read_port(xmlNode *n, const char *msg, const char *attr, int optional, int allow_zero,
                 uint16_t *out, char *err, size_t errlen);
int nm_read_id(xmlNode *n, const char *msg, const char *attr, int optional,
               char out[NM_ID_LEN + 1], char *err, size_t errlen);
int nm_read_name(xmlNode *n, const char *msg, const char *attr, int optional,
                 char out[NM_NAME_MAX + 1], char *err, size_t errlen);
/* A literal IPv4 or IPv6 address (no host names). */
int nm_read_ip(xmlNode *n, const char *msg, const char *attr, int optional, char out[64],
               char *err, size_t errlen);
int nm_read_token(xmlNode *n, const char *msg, const char *attr, int optional,
                  char out[NM_TOKEN_LEN + 1], char *err, size_t errlen);
/* A raw Ed25519 public key: NM_KEY_HEX_LEN lowercase hex characters, not all zero
 * (nm_key_hex_valid), decoded into out. */
int nm_read_key(xmlNode *n, const char *msg, const char *attr, int optional,
                uint8_t out[NM_PUBKEY_LEN], char *err, size_t errlen);
/* An Ed25519 signature: NM_LINESIG_HEX_LEN lowercase hex characters, not all zero,
 * decoded into out. (Whether it verifies is the receiver's business: nm_msg_chat_verify.) */
int nm_read_sig(xmlNode *n, const char *msg, const char *attr, int optional,
                uint8_t out[NM_LINESIG_LEN], char *err, size_t errlen);
/* An invite's join secret: NM_INVITE_SECRET_HEX_LEN lowercase hex characters, decoded. */
int nm_read_secret(xmlNode *n, const char *msg, const char *attr, int optional,
                   uint8_t out[NM_INVITE_SECRET_LEN], char *err, size_t errlen);
/* names[0..count) are the enum's wire names; *out receives the index. */
int nm_read_enum(xmlNode *n, const char *msg, const char *attr, int optional,
                 const char *const *names, unsigned count, unsigned *out, char *err,
                 size_t errlen);
/* The enums of nm_proto.h by their wire names ("servant", "direct", "upnp", ...). */
int nm_read_role(xmlNode *n, const char *msg, const char *attr, int optional, nm_role *out,
                 char *err, size_t errlen);
int nm_read_reach(xmlNode *n, const char *msg, const char *attr, int optional,
                  nm_reach_state *out, char *err, size_t errlen);
int nm_read_mapping(xmlNode *n, const char *msg, const char *attr, int optional,
                    nm_mapping_kind *out, char *err, size_t errlen);
/* Free text of at most outsize - 1 bytes (libxml2 already made it UTF-8); longer is an
 * error ("<msg>: <attr> is longer than N bytes"), never a silent cut. */
int nm_read_text(xmlNode *n, const char *msg, const char *attr, int optional, char *out,
                 size_t outsize, char *err, size_t errlen);
/* Writes "<msg>: missing <attr>" (value NULL) or "<msg>: invalid <attr> \"value\"" (at most
 * 40 bytes of value quoted, anything but printable ASCII as '?') and returns NM_EMSG: for
 * checks the readers cannot make (a value that depends on another field). */
int nm_read_field_error(const char *msg, const char *attr, const char *value, char *err,
                        size_t errlen);

/* NM_TOKEN_LEN lowercase hex characters. (nm_id_valid, nm_name_valid and nm_ip_valid, which
 * the encoders and readers share with nm_peerlist, live in nm_peerlist.h.) */
int nm_token_valid(const char *s);

/* ---- the messages --------------------------------------------------------------------- */

typedef struct {
  char id[NM_ID_LEN + 1];
  char name[NM_NAME_MAX + 1];
  nm_role role;          /* decode: servant when absent */
  uint16_t port;         /* 0: assign me one */
  unsigned max_clients;  /* 0..NM_RELAY_CLIENTS_MAX; decode: 8 when absent */
  /* The invite's join secret (secret="32 hex"), needed only until the key is admitted:
   * sent and read only when has_secret is set. The manager hands
   * has_secret ? secret : NULL to nm_admission. */
  int has_secret;
  uint8_t secret[NM_INVITE_SECRET_LEN];
  /* views="1": the sender takes a view in a bounded mesh (it verifies lines of origins it
   * does not list by their membership certificates). An older servant does not say it and
   * keeps the whole list. */
  int views;
} nm_msg_hello;

/* An address and port (a manager's, in welcome). */
typedef struct {
  char ip[NM_IP_STRLEN];
  uint16_t port;
} nm_endpoint;

#define NM_MANAGER_ADDRS_MAX 4 /* the manager's other addresses one welcome names */
typedef struct {
  char id[NM_ID_LEN + 1];
  char ip[64]; /* the address the manager sees */
  uint16_t port;
  unsigned heartbeat_s, timeout_s;
  /* The manager's own addresses of the family this session did not use (<addr ip port/>
   * children): where a dual-stack servant opens an observe session so that the manager
   * sees, and publishes, its address of that family too. Each nm_addr_is_candidate. */
  size_t naddrs;
  nm_endpoint addrs[NM_MANAGER_ADDRS_MAX];
  /* The servant's membership certificate (nm_member): has_cert with cert="128 hex" over
   * (id, key="64 hex", name="..."), and the manager's raw key manager-key="64 hex", which
   * the servant checks against the fingerprint it pinned. All four or none (old managers). */
  int has_cert;
  uint8_t cert[NM_MEMBER_CERT_LEN];
  uint8_t key[NM_PUBKEY_LEN];
  char name[NM_NAME_MAX + 1];
  uint8_t manager_key[NM_PUBKEY_LEN];
} nm_msg_welcome;

#define NM_LOCAL_ADDRS_MAX 8 /* local addresses one listening reports; more are refused */
typedef struct {
  uint16_t port; /* 0 with busy set: could not bind busy, assign another */
  uint16_t busy; /* encode: set exactly when port is 0; decode: read only then */
  /* The servant's own interface addresses (<addr ip="A"/> children), both families, each
   * nm_addr_is_candidate: where peers behind the same router reach it, on port. */
  size_t naddrs;
  char addrs[NM_LOCAL_ADDRS_MAX][NM_IP_STRLEN];
} nm_msg_listening;

/* A peer list, whole (pages <= 1: <peers version="V">, the old form) or one page of it
 * (<peers version="V" page="K" pages="P">, docs/protocol.md "Paged lists"): pages 0..P-2
 * hold list->peers[first, first + n) with no <me> (the same bytes for every servant), page
 * P-1 only the asker's own entry, list->peers[first] with n = 1 and id me, marked
 * <me>TRUE</me>. */
#define NM_PEERS_PAGE 256        /* entries per shared page the manager sends */
#define NM_PEERS_PAGES_MAX 4096  /* pages one list may have; a page past it is refused */
typedef struct {
  nm_peerlist *list;       /* encode: borrowed. decode: owned, freed by nm_msg_clear */
  char me[NM_ID_LEN + 1];  /* encode: whose copy (may be ""); decode: the entry marked me */
  unsigned page, pages;    /* decode: 0 and 1 for the old form */
  size_t first, n;         /* a shared page: which entries (decode: all of the page's) */
} nm_msg_peers;

/* <delta base="B" version="V"> with V - B changes in order (<peer> or <leave id/>): a
 * receiver at version B applies them all and is at V. One change is the old form. */
#define NM_DELTA_CHANGES_MAX 256
typedef struct {
  uint64_t base, version;
  size_t count;             /* 1..NM_DELTA_CHANGES_MAX, = version - base */
  nm_delta_change *changes; /* encode: borrowed. decode: owned, freed by nm_msg_clear */
} nm_msg_delta;

typedef struct {
  uint64_t version;
  /* heartbeat only (direct="all", since issue 12): every listed servant reaches the sender
   * directly (punched), so it needs no relay now; absent: it needs the relay it has */
  int direct_all;
  /* heartbeat-ack only, in a bounded mesh with views: how many servants the overlay has
   * (servants="N"; 0 when absent), for the servant's "view of K of N" */
  uint64_t servants;
} nm_msg_version; /* heartbeat and heartbeat-ack */

typedef struct {
  char text[300]; /* plain text, not XML */
} nm_msg_error;

typedef struct {
  nm_mapping_kind method;
  char ext_ip[64];   /* "" or a literal IP (else encode refuses); "" unless method != none */
  uint16_t ext_port; /* ext-ip, ext-port and lease are optional, and ignored with none */
  unsigned lease_s;
} nm_msg_mapping;

typedef enum { NM_COMPLAINT_REFUSED = 0, NM_COMPLAINT_TIMEOUT, NM_COMPLAINT_RESET } nm_complaint_reason;
/* "refused", "timeout", "reset"; NULL when out of range. */
const char *nm_complaint_reason_name(nm_complaint_reason r);

typedef struct {
  char accused[NM_ID_LEN + 1];
  nm_complaint_reason reason;
} nm_msg_complaint;

/* Why a servant is told to pull (relay-assign's optional reason): judged unreachable by a
 * quorum (the default, what older managers meant), the pair path (a few servants cannot
 * reach it, the rest can), or provisional (a newcomer behind NAT with no port mapping yet,
 * relayed while its peers find out whether they can reach it). */
typedef enum {
  NM_ASSIGN_SUSPICIOUS = 0,
  NM_ASSIGN_PAIR,
  NM_ASSIGN_PROVISIONAL,
} nm_assign_reason;

/* "suspicious", "pair", "provisional"; NULL for anything else. */
const char *nm_assign_reason_name(nm_assign_reason r);

typedef struct {
  int release; /* 1: <relay-assign/>, pull no more; the rest is unset */
  int standby; /* with release (standby="yes", since issue 12): the manager keeps our relay
                  and token for us, and assigns them again when we ask (a heartbeat without
                  direct="all") */
  char relay[NM_ID_LEN + 1];
  char name[NM_NAME_MAX + 1];
  char ip[64];
  uint16_t port;
  char token[NM_TOKEN_LEN + 1];
  uint8_t key[NM_PUBKEY_LEN]; /* the relay's public key (key="64 hex"): what the client pins */
  nm_assign_reason reason; /* why: reason="pair|provisional|suspicious" (absent: suspicious) */
} nm_msg_relay_assign;

typedef struct {
  char id[NM_ID_LEN + 1];
  char token[NM_TOKEN_LEN + 1];
  uint8_t key[NM_PUBKEY_LEN]; /* the client's public key (key="64 hex"): what the relay
                                 expects the client to present when it pulls */
} nm_relay_client;

typedef struct {
  size_t count; /* decode: entries past NM_RELAY_CLIENTS_MAX are refused */
  nm_relay_client clients[NM_RELAY_CLIENTS_MAX];
} nm_msg_relay_serve;

typedef struct {
  uint64_t clients, attached, max_clients, bytes_in, bytes_out, drops; /* decode: 0 when absent */
} nm_msg_relay_load;

typedef struct {
  char id[NM_ID_LEN + 1];
  char name[NM_NAME_MAX + 1];
  /* reverse="yes" (since issue 12), from the dialling side: we pull from a relay, peers may
   * not reach us; send us your lines on this connection too. The other side answers with a
   * peer-hello of its own on it when it will (docs/protocol.md, "Connection reversal"). */
  int reverse;
} nm_msg_peer_hello;

typedef struct {
  char origin[NM_ID_LEN + 1];
  char name[NM_NAME_MAX + 1]; /* not signed: receivers show the listed name of origin */
  uint64_t epoch; /* the origin's epoch (any u64; nm_replay judges it) */
  uint64_t seq; /* >= 1 */
  char text[NM_CHAT_MAX + 1]; /* UTF-8 that XML can carry: encode refuses control characters
                                 other than tab, newline and CR, and invalid UTF-8 */
  /* nm_linesig of (origin, epoch, seq, text) by the origin's key: sig="128 hex" on the
   * wire. Encode refuses an all-zero (unsigned) one; decode only checks its form. */
  uint8_t sig[NM_LINESIG_LEN];
  /* In a bounded mesh: the origin's raw key (key="64 hex") and its membership certificate
   * (cert="128 hex", nm_member, over (origin, key, name)), both or neither, passed on
   * unchanged by every forwarder, for receivers that do not list the origin. */
  int has_cert;
  uint8_t key[NM_PUBKEY_LEN];
  uint8_t cert[NM_MEMBER_CERT_LEN];
  /* With a certificate, since issue 14 (several managers): the raw key of the manager that
   * signed it (signer="64 hex"). A receiver uses it only when it pins that manager too (its
   * invite or config names every manager of the overlay); otherwise its own manager's. */
  int has_signer;
  uint8_t signer[NM_PUBKEY_LEN];
} nm_msg_chat;

/* The signed fields of c, as nm_linesig sees them (pointers into c). */
void nm_msg_chat_line(const nm_msg_chat *c, nm_linesig_line *out);
/* Signs c's (origin, epoch, seq, text) with key (the origin's Ed25519 private key) into
 * c->sig. Returns 0 or nm_linesig_sign's error (-EINVAL, -ENOMEM). */
int nm_msg_chat_sign(nm_msg_chat *c, EVP_PKEY *key);
/* Verifies c->sig with pub, the raw key the manager's list gives for c->origin (whichever
 * path the line came by). Returns 0 when it verifies, -EBADMSG when it does not (forged,
 * altered, or another key), -EINVAL / -ENOMEM as nm_linesig_verify. */
int nm_msg_chat_verify(const nm_msg_chat *c, const uint8_t pub[NM_PUBKEY_LEN]);

typedef struct {
  char id[NM_ID_LEN + 1];
  char token[NM_TOKEN_LEN + 1];
} nm_msg_pull;

/* observe: the first and only frame of a short second session a registered servant opens
 * to the manager over its other address family; id must be the id of the key that session
 * proved, registered with that key. The manager answers observed with the address and port
 * it saw, publishes the address as the servant's candidate, and closes. */
typedef struct {
  char id[NM_ID_LEN + 1];
} nm_msg_observe;

typedef struct {
  char ip[64]; /* the address the manager saw this session come from */
  uint16_t port;
} nm_msg_observed;

/* punch (manager -> servant): the peer id (listed with key) cannot be reached by any of its
 * candidates, nor can it reach us; both dial each other's observed endpoint (ip, port: where
 * the manager saw the other's session come from) from the port our own session leaves from,
 * delay_ms after this message arrived, so that both SYNs cross (a TCP simultaneous open). */
typedef struct {
  char id[NM_ID_LEN + 1];
  uint8_t key[NM_PUBKEY_LEN]; /* the peer's key: both sides pin it */
  char ip[64];
  uint16_t port;
  uint64_t delay_ms; /* at most NM_PUNCH_DELAY_MAX_MS */
} nm_msg_punch;

/* direct (relay client -> relay, on its pull connection, any number of times after pull):
 * the whole set of origins whose lines now reach the client directly (over punched
 * connections), which the relay then no longer forwards to it. An origin that leaves the
 * set gets its lines of the replay ring sent again (the direct path may have lost some);
 * the client shows each line once. */
#define NM_DIRECT_MAX 64
typedef struct {
  size_t count;
  char ids[NM_DIRECT_MAX][NM_ID_LEN + 1];
} nm_msg_direct;

/* neighbours (manager -> servant, once registered, whenever its set changes): in a bounded
 * mesh, the peers it keeps connections to and forwards lines to; no <n> at all means the
 * full mesh (every listed peer). version is the list version it was computed at. */
#define NM_NEIGHBOURS_MAX 64
typedef struct {
  uint64_t version;
  size_t count; /* 0: the full mesh */
  char ids[NM_NEIGHBOURS_MAX][NM_ID_LEN + 1];
} nm_msg_neighbours;

#define NM_PUNCH_DELAY_MAX_MS 10000

struct nm_status; /* nm_status.h: the manager's view of the overlay, for natmesh-ctl */

typedef struct {
  struct nm_status *status; /* encode: borrowed. decode: owned, freed by nm_msg_clear */
} nm_msg_status;

/* One message of any type. Empty messages (peers-request, bye, status-request) carry
 * nothing but the type. */
typedef struct {
  uint8_t type; /* nm_msg_type */
  union {
    nm_msg_hello hello;
    nm_msg_welcome welcome;
    nm_msg_listening listening;
    nm_msg_peers peers;
    nm_msg_delta delta;
    nm_msg_version heartbeat;     /* NM_MSG_HEARTBEAT */
    nm_msg_version heartbeat_ack; /* NM_MSG_HEARTBEAT_ACK */
    nm_msg_error error;
    nm_msg_mapping mapping;
    nm_msg_complaint complaint;
    nm_msg_relay_assign relay_assign;
    nm_msg_relay_serve relay_serve;
    nm_msg_relay_load relay_load;
    nm_msg_peer_hello peer_hello;
    nm_msg_chat chat;
    nm_msg_pull pull;
    nm_msg_status status;
    nm_msg_observe observe;
    nm_msg_observed observed;
    nm_msg_punch punch;
    nm_msg_direct direct;
    nm_msg_neighbours neighbours;
  } u;
} nm_msg;

/* ---- encoding and decoding ------------------------------------------------------------ */

typedef struct {
  char *data; /* malloc'ed; NULL with len 0 for an empty message */
  size_t len;
} nm_msgbuf;

void nm_msgbuf_free(nm_msgbuf *b);

/* Encodes m into out (the caller frees it with nm_msgbuf_free). Returns 0, -EINVAL for a
 * field the sender should never have (an invalid id, a text over the limit), or -ENOMEM. */
int nm_msg_encode(const nm_msg *m, nm_msgbuf *out);

/* Decodes a payload of frame type `type` into *m (m->type = type). Returns 0, or a
 * negative code with a reason naming the message and field in err: NM_EXML / NM_EXML_HOSTILE
 * for XML that nm_xml_parse refused, NM_EMSG for wrong content, NM_EFRAME_TYPE for a type
 * this layer does not know. On success the caller calls nm_msg_clear(m) when done. */
int nm_msg_decode(uint8_t type, const char *payload, size_t len, nm_msg *m, char *err,
                  size_t errlen);

/* Heartbeats and acks in their canonical form are encoded and decoded without libxml2 (on
 * by default; nm_msg.c says why). Off: every message goes through libxml2. For tests and
 * fuzzers, which compare the two paths. */
void nm_msg_fast_paths(int on);

/* Frees what a decoded message owns (the peer list, the status). Safe on any decoded
 * message, of any type, and twice. Not for a message built for encoding: its pointers are
 * borrowed. */
void nm_msg_clear(nm_msg *m);

/* ---- dispatch -------------------------------------------------------------------------- */

struct nm_conn;

/* A handler gets the decoded message. It returns 0 to go on, or non-zero when it closed
 * the session (the conn must not be touched after that). */
typedef int (*nm_msg_handler)(void *session, const nm_msg *m);

typedef struct {
  uint8_t type;
  int min_state; /* lowest session state in which this message is allowed */
  int max_state; /* highest (inclusive) */
  nm_msg_handler handler;
} nm_dispatch_entry;

typedef struct {
  const char *endpoint;          /* for errors: "manager session", "inbound peer", ... */
  const nm_dispatch_entry *rows;
  size_t count;
  const char *const *state_names; /* for errors: "hello not allowed while registered" */
  unsigned nstates;
} nm_dispatch_table;

/* A table from arrays of rows and state names: the counts come from the arrays. */
#define NM_DISPATCH_TABLE(endpoint_, rows_, state_names_)                                  \
  {.endpoint = (endpoint_), .rows = (rows_), .count = sizeof(rows_) / sizeof *(rows_),       \
   .state_names = (state_names_), .nstates = sizeof(state_names_) / sizeof *(state_names_)}

/* The decision nm_dispatch makes before decoding, as a pure function: the first row for
 * type whose [min_state, max_state] holds state (several rows may share a type, one per
 * range of states, e.g. a status-request before and after registration). NULL when there
 * is none, with the reason in err and the code in *code: NM_EFRAME_TYPE and "unexpected
 * relay-serve frame (0x10) on a manager session" when no row has the type, NM_EMSG and
 * "hello not allowed while registered" when none allows this state. */
const nm_dispatch_entry *nm_dispatch_find(const nm_dispatch_table *t, int state, uint8_t type,
                                          int *code, char *err, size_t errlen);

/* Finds the row for type, checks state, decodes the payload and calls the handler. An
 * unknown type, a message not allowed in this state, or a payload that does not decode
 * fails the session (nm_conn_fail with a reason naming the message and field) and returns
 * non-zero. Returns the handler's result otherwise. Suitable as the body of an
 * nm_conn_frame_cb. */
int nm_dispatch(const nm_dispatch_table *t, struct nm_conn *c, void *session, int state,
                uint8_t type, const char *payload, size_t len);

/* Encodes m and queues it on c. Returns nm_conn_send's result, or the encoder's error. */
int nm_msg_send(struct nm_conn *c, const nm_msg *m);

#endif
