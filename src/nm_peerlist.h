/* nm_peerlist: the peer list, its XML document (<peers><peer>...<me>TRUE</me>, with the
 * asker's own entry marked) and the deltas that keep copies of it current.
 * docs/protocol.md has the schema. */
#ifndef NM_PEERLIST_H
#define NM_PEERLIST_H

#include <stddef.h>
#include <stdint.h>
#include <libxml/tree.h>

#include "nm_addr.h"
#include "nm_identity.h"
#include "nm_proto.h"

#define NM_PEERS_MAX 4096 /* more than this in one document is refused */

/* One address a servant may be reached at (docs/protocol.md, "Candidates"). */
#define NM_CANDS_MAX 8 /* candidates per peer; a <peer> with more is refused */
typedef struct {
  char ip[NM_IP_STRLEN]; /* a literal, nm_addr_is_candidate */
  uint16_t port;
  nm_cand_kind kind;
} nm_cand;

typedef struct {
  char id[NM_ID_LEN + 1];
  /* Its raw Ed25519 public key (nm_identity): what a TLS peer must present for this id and
   * what its chat lines are verified with. <key> on the wire, 64 lowercase hex; all zero is
   * "no key" (never sent, never accepted). nm_fingerprint_of_pubkey(key) gives its
   * fingerprint, nm_pubkey_equal compares. */
  uint8_t key[NM_PUBKEY_LEN];
  char name[NM_NAME_MAX + 1];
  char ip[64];      /* the address peers dial: observed, or the mapped external one */
  uint16_t port;    /* the port peers dial */
  nm_role role;
  nm_reach_state state;
  nm_mapping_kind mapping;
  char relay[NM_ID_LEN + 1]; /* id of the relay it pulls from, when relayed */
  /* Every address it may be reached at, in the manager's order (docs/protocol.md,
   * "Candidates"); ip/port above is the one a peer that knows no candidates dials, and is
   * one of them. 0 when the manager sent none. */
  size_t ncands;
  nm_cand cands[NM_CANDS_MAX];
  int me;           /* set only in the copy sent to that servant */
} nm_peer;

/* The entries in an array (peers[0..count), in no promised order: a removal moves the last
 * entry into the hole) with a uthash index by id, so find, upsert and remove cost O(1). A
 * list is not copied by value (the index points into it). */
typedef struct nm_peer_slot nm_peer_slot;
typedef struct {
  uint64_t version;
  nm_peer *peers;
  size_t count;
  size_t cap;
  size_t max;          /* entries it takes at most; 0: NM_PEERS_MAX */
  nm_peer_slot *index; /* by id: the entry's position in peers */
} nm_peerlist;

void nm_peerlist_init(nm_peerlist *l);
void nm_peerlist_close(nm_peerlist *l);
void nm_peerlist_clear(nm_peerlist *l);
nm_peer *nm_peerlist_find(nm_peerlist *l, const char *id);
/* Inserts or replaces the entry with p->id. Returns 0 or -ENOMEM / -ENOSPC (max reached). */
int nm_peerlist_upsert(nm_peerlist *l, const nm_peer *p);
/* Returns 0 when removed, -ENOENT when absent. The last entry takes its place. */
int nm_peerlist_remove(nm_peerlist *l, const char *id);
/* Bytes of one entry of the index (before malloc's own): for memory accounting. */
size_t nm_peerlist_slot_size(void);

/* Validation shared by every reader of ids and names from the wire or a config. */
int nm_id_valid(const char *s);
int nm_name_valid(const char *s);
/* A literal IPv4 or IPv6 address (no host name), shorter than 64 bytes. */
int nm_ip_valid(const char *s);

/* Public keys on the wire (<key>, key="..."): exactly NM_KEY_HEX_LEN lowercase hex
 * characters (one spelling per key, as nm_pubkey_to_hex writes it), not all zero. */
#define NM_KEY_HEX_LEN (2 * NM_PUBKEY_LEN)
int nm_key_hex_valid(const char *s);
/* 1 when key is set (not all zero): what every sendable key must be. */
int nm_pubkey_is_set(const uint8_t key[NM_PUBKEY_LEN]);
/* 1 when a and b are the same key. (Public keys: no constant-time comparison needed.) */
int nm_pubkey_equal(const uint8_t a[NM_PUBKEY_LEN], const uint8_t b[NM_PUBKEY_LEN]);
/* nm_key_hex_valid, then decoded into key. Returns 0 or -EINVAL (key untouched). */
int nm_key_from_hex(const char *s, uint8_t key[NM_PUBKEY_LEN]);

/* <peer> element for p, appended to parent. me marks it as the asker's own entry. */
xmlNode *nm_peer_to_xml(xmlNode *parent, const nm_peer *p, int me);
int nm_peer_from_xml(xmlNode *n, nm_peer *out, char *err, size_t errlen);

/* The whole list as <peers version="V">, with me_id's entry marked <me>TRUE</me>. */
xmlDoc *nm_peerlist_to_doc(const nm_peerlist *l, const char *me_id);
/* Replaces *out with the document's list. me_id (NM_ID_LEN+1 bytes, may be NULL) receives
 * the id of the entry marked me, or "". */
int nm_peerlist_from_doc(xmlDoc *doc, nm_peerlist *out, char *me_id, char *err, size_t errlen);

/* One page of a paged list: <peers version="V" page="K" pages="P"> with peers[0..n), each
 * marked <me> when me is set (the asker's own page has its one entry so). */
xmlDoc *nm_peerlist_page_doc(uint64_t version, unsigned page, unsigned pages, const nm_peer *peers, size_t n,
                             int me);

/* One change: <delta base="V-1" version="V"> with a <peer> (join or update) or a
 * <leave id="..."/>. */
xmlDoc *nm_delta_upsert_doc(uint64_t base, uint64_t version, const nm_peer *p);
xmlDoc *nm_delta_leave_doc(uint64_t base, uint64_t version, const char *id);
/* The <peer> elements of peers[0..n) (none marked me) as one serialized fragment, into a
 * malloc'ed buffer (NULL with len 0 for none): what the manager caches per list page. */
int nm_peerlist_entries_xml(const nm_peer *peers, size_t n, char **out, size_t *len);
/* A page <peers version page pages> around a fragment from nm_peerlist_entries_xml. */
int nm_peerlist_page_from_entries(uint64_t version, unsigned page, unsigned pages, const char *entries, size_t len,
                                  char **out, size_t *outlen);

/* One change of a delta: a join or update (the whole entry), or a leave (peer.id only). */
typedef struct {
  int leave;
  /* a leave of an entry that only left the receiver's view (views: <leave id view="out"/>);
   * the servant it names is still in the overlay */
  int out_of_view;
  nm_peer peer;
} nm_delta_change;
/* Several: <delta base="B" version="V"> with the changes in order; V - B is count. */
xmlDoc *nm_delta_doc(uint64_t base, uint64_t version, const nm_delta_change *changes, size_t count);

#endif
