#include "nm_member.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "nm_error.h"
#include "nm_peerlist.h"

struct nm_member_entry {
  char id[NM_ID_LEN + 1];
  uint8_t key[NM_PUBKEY_LEN];
  uint8_t cert[NM_MEMBER_CERT_LEN];
  char name[NM_NAME_MAX + 1];
  unsigned ref; /* the clock's second chance */
  UT_hash_handle hh;
};

static unsigned char *nm__put_field(unsigned char *p, const void *data, size_t len) {
  for (int i = 3; i >= 0; i--) *p++ = (unsigned char)((uint32_t)len >> (8 * i));
  if (len) memcpy(p, data, len);
  return p + len;
}

int nm_member_canonical(const char *id, const uint8_t key[NM_PUBKEY_LEN], const char *name,
                        unsigned char *out, size_t outsize, size_t *outlen) {
  static const char tag[] = NM_MEMBER_TAG;
  if (!id || !key || !name || !out || !outlen || !nm_id_valid(id)) return -EINVAL;
  size_t nlen = strnlen(name, NM_NAME_MAX + 1);
  if (nlen == 0 || nlen > NM_NAME_MAX) return -EINVAL;
  size_t need = 4 + (sizeof tag - 1) + 4 + NM_ID_LEN + 4 + NM_PUBKEY_LEN + 4 + nlen;
  if (outsize < need) return -EINVAL;
  unsigned char *p = out;
  p = nm__put_field(p, tag, sizeof tag - 1);
  p = nm__put_field(p, id, NM_ID_LEN);
  p = nm__put_field(p, key, NM_PUBKEY_LEN);
  p = nm__put_field(p, name, nlen);
  *outlen = (size_t)(p - out);
  return 0;
}

int nm_member_sign(const nm_identity *manager, const char *id, const uint8_t key[NM_PUBKEY_LEN],
                   const char *name, uint8_t cert[NM_MEMBER_CERT_LEN]) {
  unsigned char msg[NM_MEMBER_CANONICAL_MAX];
  size_t len;
  int rc = nm_member_canonical(id, key, name, msg, sizeof msg, &len);
  if (rc < 0) return rc;
  return nm_identity_sign(manager, msg, len, cert);
}

int nm_member_verify(const uint8_t manager_pub[NM_PUBKEY_LEN], const char *id,
                     const uint8_t key[NM_PUBKEY_LEN], const char *name,
                     const uint8_t cert[NM_MEMBER_CERT_LEN]) {
  unsigned char msg[NM_MEMBER_CANONICAL_MAX];
  size_t len;
  if (!manager_pub || !cert) return -EINVAL;
  int rc = nm_member_canonical(id, key, name, msg, sizeof msg, &len);
  if (rc < 0) return rc;
  /* The id must be the key's: else a member could carry its own (valid) certificate with
   * another id in the line. The certificate covers the id too; this is the second lock. */
  nm_fingerprint fp;
  char kid[NM_ID_LEN + 1];
  nm_fingerprint_of_pubkey(key, &fp);
  nm_fingerprint_id(&fp, kid);
  if (strcmp(kid, id) != 0) return -EBADMSG;
  return nm_pubkey_verify(manager_pub, msg, len, cert) == 0 ? 0 : -EBADMSG;
}

int nm_member_cache_init(nm_member_cache *c, size_t cap) {
  memset(c, 0, sizeof *c);
  if (cap == 0 || cap > (1u << 20)) return -EINVAL;
  c->pool = calloc(cap, sizeof *c->pool);
  if (!c->pool) return -ENOMEM;
  c->cap = cap;
  return 0;
}

void nm_member_cache_close(nm_member_cache *c) {
  HASH_CLEAR(hh, c->by_id);
  free(c->pool);
  memset(c, 0, sizeof *c);
}

size_t nm_member_cache_count(const nm_member_cache *c) { return HASH_COUNT(c->by_id); }

/* A slot for a new member: a free one, else the first the clock finds unreferenced. */
static nm_member_entry *nm__slot(nm_member_cache *c) {
  if (c->used < c->cap) return &c->pool[c->used++];
  for (;;) {
    nm_member_entry *e = &c->pool[c->hand];
    c->hand = (c->hand + 1) % c->cap;
    if (e->ref) {
      e->ref = 0;
      continue;
    }
    HASH_DEL(c->by_id, e);
    c->evictions++;
    return e;
  }
}

int nm_member_check(nm_member_cache *c, const uint8_t manager_pub[NM_PUBKEY_LEN], const char *id,
                    const uint8_t key[NM_PUBKEY_LEN], const char *name,
                    const uint8_t cert[NM_MEMBER_CERT_LEN]) {
  if (!id || !nm_id_valid(id) || !name || !key || !cert) return -EINVAL;
  nm_member_entry *e = NULL;
  HASH_FIND(hh, c->by_id, id, NM_ID_LEN, e);
  if (e && memcmp(e->key, key, NM_PUBKEY_LEN) == 0 && memcmp(e->cert, cert, NM_MEMBER_CERT_LEN) == 0 &&
      strcmp(e->name, name) == 0) {
    e->ref = 1;
    c->hits++;
    return 0;
  }
  c->misses++;
  int rc = nm_member_verify(manager_pub, id, key, name, cert);
  if (rc < 0) return rc;
  if (e) {
    HASH_DEL(c->by_id, e); /* another certificate for the id (a new name): replaced */
  } else {
    e = nm__slot(c);
  }
  memset(e, 0, sizeof *e);
  memcpy(e->id, id, NM_ID_LEN + 1);
  memcpy(e->key, key, NM_PUBKEY_LEN);
  memcpy(e->cert, cert, NM_MEMBER_CERT_LEN);
  snprintf(e->name, sizeof e->name, "%s", name);
  e->ref = 1;
  HASH_ADD(hh, c->by_id, id, NM_ID_LEN, e);
  return 0;
}
