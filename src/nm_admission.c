#include "nm_admission.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nm_error.h"
#include "nm_peerlist.h"
#include "nm_util.h"

/* uthash (Debian's uthash-dev): a well-kept header-only hash table. Running out of memory
 * while it grows abandons the insertion instead of exiting; the index is then dropped and
 * lookups fall back to scanning the table until it can be built again. */
#define HASH_NONFATAL_OOM 1
static _Thread_local int nm__ix_oom;
#define uthash_nonfatal_oom(obj) (nm__ix_oom = 1)
#include <uthash.h>

#define NM__LINE_MAX 512 /* characters of a store line; the longest written is about 140 */

__attribute__((format(printf, 4, 5)))
static int nm__fail(char *err, size_t errlen, int rc, const char *fmt, ...) {
  va_list ap;
  if (err && errlen) {
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return rc;
}

/* ---- names of enums --------------------------------------------------------------------- */

static const char *const nm__mode_names[] = {"invite", "allow", "open"};

const char *nm_admission_mode_name(nm_admission_mode m) {
  return (unsigned)m < sizeof nm__mode_names / sizeof nm__mode_names[0] ? nm__mode_names[m]
                                                                         : NULL;
}

int nm_admission_mode_parse(const char *s, nm_admission_mode *out) {
  for (unsigned i = 0; s && i < sizeof nm__mode_names / sizeof nm__mode_names[0]; i++)
    if (strcmp(s, nm__mode_names[i]) == 0) {
      *out = (nm_admission_mode)i;
      return 0;
    }
  return -EINVAL;
}

/* One row per reason: whether it admits, and what the operator and the node read. */
static const struct {
  int admit;
  const char *text;
} nm__reasons[] = {
    [NM_ADMIT_KNOWN] = {1, "admitted key"},
    [NM_ADMIT_INVITED] = {1, "valid invite"},
    [NM_ADMIT_ALLOWED] = {1, "on the allow list"},
    [NM_ADMIT_OPEN] = {1, "open overlay"},
    [NM_REFUSE_BAD_REQUEST] = {0, "malformed fingerprint, name or role"},
    [NM_REFUSE_KEY_REVOKED] = {0, "key revoked"},
    [NM_REFUSE_NOT_ALLOWED] = {0, "key not on the allow list"},
    [NM_REFUSE_NOT_INVITED] = {0, "not invited (this manager admits new keys with an invite)"},
    [NM_REFUSE_UNKNOWN_INVITE] = {0, "unknown invite"},
    [NM_REFUSE_INVITE_REVOKED] = {0, "invite revoked"},
    [NM_REFUSE_INVITE_EXPIRED] = {0, "invite expired"},
    [NM_REFUSE_INVITE_USED_UP] = {0, "invite used up"},
    [NM_REFUSE_ROLE_NOT_GRANTED] = {0, "the relay role is not granted to this key"},
    [NM_REFUSE_NAME_TAKEN] = {0, "name taken by another key"},
    [NM_REFUSE_STORE_FULL] = {0, "no room to remember another key"},
};

const char *nm_admission_reason_text(nm_admission_reason r) {
  return (unsigned)r < sizeof nm__reasons / sizeof nm__reasons[0] ? nm__reasons[r].text : "?";
}

/* ---- the store's tables ------------------------------------------------------------------ */

void nm_admission_store_init(nm_admission_store *s) {
  memset(s, 0, sizeof *s);
  s->invites_max = NM_ADMISSION_INVITES_MAX;
  s->keys_max = NM_ADMISSION_KEYS_MAX;
  s->revoked_max = NM_ADMISSION_REVOKED_MAX;
  s->allow_max = NM_ADMISSION_ALLOW_MAX;
}

static void nm__ix_drop(nm_admission_store *s);

/* Frees the tables; the bounds stay, so a closed store can be used again. */
void nm_admission_store_close(nm_admission_store *s) {
  size_t invites_max = s->invites_max, keys_max = s->keys_max, revoked_max = s->revoked_max,
         allow_max = s->allow_max;
  free(s->invites);
  free(s->keys);
  free(s->revoked);
  free(s->revoked_keys);
  free(s->allow);
  nm__ix_drop(s);
  memset(s, 0, sizeof *s);
  s->invites_max = invites_max, s->keys_max = keys_max, s->revoked_max = revoked_max;
  s->allow_max = allow_max;
}

/* Room for one more item in a table of *count items: grows the array by doubling, up to max.
 * Returns 0, -ENOSPC at max, or -ENOMEM. */
static int nm__reserve(void **items, size_t *cap, size_t count, size_t size, size_t max) {
  if (count < *cap) return 0;
  if (count >= max) return -ENOSPC;
  size_t ncap = *cap ? *cap * 2 : 16;
  if (ncap > max) ncap = max;
  void *p = realloc(*items, ncap * size);
  if (!p) return -ENOMEM;
  *items = p;
  *cap = ncap;
  return 0;
}

#define NM__RESERVE(s, arr, n, cap, max)                                                      \
  nm__reserve((void **)&(s)->arr, &(s)->cap, (s)->n, sizeof *(s)->arr, (max))

static int nm__fp_ok(const char *s) { return nm_hex_valid(s, NM_SHA256_HEX_LEN); }

static int nm__role_ok(nm_role r) { return r == NM_ROLE_SERVANT || r == NM_ROLE_RELAY; }

static nm_role nm__role_max(nm_role a, nm_role b) {
  return (a == NM_ROLE_RELAY || b == NM_ROLE_RELAY) ? NM_ROLE_RELAY : NM_ROLE_SERVANT;
}

/* ---- indexes ------------------------------------------------------------------------------ */

/* Invites and the allow list are looked up by scanning: both are bounded by 4,096 and come
 * from an operator. Keys and revoked keys grow with the overlay (one record per node ever
 * admitted), so they are indexed: a decision is O(1), not O(admitted nodes), which matters
 * when thousands of servants register at once after a manager restart. */
typedef struct {
  char k[NM_SHA256_HEX_LEN + 1]; /* a fingerprint, or a name in lowercase */
  size_t at;                     /* its record's position (keys), unused for revoked keys */
  UT_hash_handle hh;
} nm__ix_entry;

struct nm__admission_index {
  nm__ix_entry *by_fp, *by_name, *revoked;
};

static void nm__ix_free_table(nm__ix_entry **head) {
  nm__ix_entry *e, *tmp;
  HASH_ITER(hh, *head, e, tmp) {
    HASH_DEL(*head, e);
    free(e);
  }
}

static void nm__ix_drop(nm_admission_store *s) {
  if (!s->index) return;
  nm__ix_free_table(&s->index->by_fp);
  nm__ix_free_table(&s->index->by_name);
  nm__ix_free_table(&s->index->revoked);
  free(s->index);
  s->index = NULL;
}

/* Names compare without case: the lowercase form is the key. */
static void nm__ix_name_key(const char *name, char out[NM_SHA256_HEX_LEN + 1]) {
  size_t i = 0;
  for (; name[i] && i < NM_SHA256_HEX_LEN; i++)
    out[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
  out[i] = 0;
}

/* Adds k -> at to a table. 0, or -ENOMEM (the caller drops the whole index). */
static int nm__ix_put(nm__ix_entry **head, const char *k, size_t at) {
  nm__ix_entry *e = calloc(1, sizeof *e);
  if (!e) return -ENOMEM;
  snprintf(e->k, sizeof e->k, "%s", k);
  e->at = at;
  nm__ix_oom = 0;
  HASH_ADD_STR(*head, k, e);
  if (nm__ix_oom) {
    free(e);
    return -ENOMEM;
  }
  return 0;
}

static nm__ix_entry *nm__ix_get(nm__ix_entry *head, const char *k) {
  nm__ix_entry *e = NULL;
  HASH_FIND_STR(head, k, e);
  return e;
}

static int nm__ix_put_key(struct nm__admission_index *ix, const nm_admission_key *k, size_t at) {
  char lower[NM_SHA256_HEX_LEN + 1];
  nm__ix_name_key(k->name, lower);
  int rc = nm__ix_put(&ix->by_fp, k->fingerprint, at);
  return rc < 0 ? rc : nm__ix_put(&ix->by_name, lower, at);
}

/* The store's index, built when missing; NULL when memory ran out (then scan). The store
 * is const for its readers: the index is a cache of what it holds, not part of it. */
static struct nm__admission_index *nm__ix(const nm_admission_store *cs) {
  nm_admission_store *s = (nm_admission_store *)cs;
  if (s->index) return s->index;
  struct nm__admission_index *ix = calloc(1, sizeof *ix);
  if (!ix) return NULL;
  s->index = ix;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < s->nkeys; i++) rc = nm__ix_put_key(ix, &s->keys[i], i);
  for (size_t i = 0; rc == 0 && i < s->nrevoked_keys; i++) rc = nm__ix_put(&ix->revoked, s->revoked_keys[i], 0);
  if (rc < 0) nm__ix_drop(s);
  return s->index;
}

/* After a record was appended at position at (or a revoked key added). */
static void nm__ix_added_key(nm_admission_store *s, size_t at) {
  if (s->index && nm__ix_put_key(s->index, &s->keys[at], at) < 0) nm__ix_drop(s);
}

static long nm__find_invite(const nm_admission_store *s, const char *hash) {
  for (size_t i = 0; i < s->ninvites; i++)
    if (strcmp(s->invites[i].hash, hash) == 0) return (long)i;
  return -1;
}

static long nm__find_hex(const nm_admission_hex *arr, size_t n, const char *hex) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(arr[i], hex) == 0) return (long)i;
  return -1;
}

static long nm__find_key(const nm_admission_store *s, const char *fp) {
  struct nm__admission_index *ix = nm__ix(s);
  if (ix) {
    nm__ix_entry *e = nm__ix_get(ix->by_fp, fp);
    return e ? (long)e->at : -1;
  }
  for (size_t i = 0; i < s->nkeys; i++)
    if (strcmp(s->keys[i].fingerprint, fp) == 0) return (long)i;
  return -1;
}

static long nm__find_name(const nm_admission_store *s, const char *name) {
  struct nm__admission_index *ix = nm__ix(s);
  if (ix) {
    char lower[NM_SHA256_HEX_LEN + 1];
    nm__ix_name_key(name, lower);
    nm__ix_entry *e = nm__ix_get(ix->by_name, lower);
    return e ? (long)e->at : -1;
  }
  for (size_t i = 0; i < s->nkeys; i++)
    if (strcasecmp(s->keys[i].name, name) == 0) return (long)i;
  return -1;
}

/* Whether fp is a revoked key. */
static int nm__key_revoked(const nm_admission_store *s, const char *fp) {
  struct nm__admission_index *ix = nm__ix(s);
  if (ix) return nm__ix_get(ix->revoked, fp) != NULL;
  return nm__find_hex(s->revoked_keys, s->nrevoked_keys, fp) >= 0;
}

static long nm__find_allow(const nm_admission_store *s, const char *fp) {
  for (size_t i = 0; i < s->nallow; i++)
    if (strcmp(s->allow[i].fingerprint, fp) == 0) return (long)i;
  return -1;
}

const nm_admission_key *nm_admission_find_key(const nm_admission_store *s,
                                              const char *fingerprint) {
  long i = s && fingerprint ? nm__find_key(s, fingerprint) : -1;
  return i < 0 ? NULL : &s->keys[i];
}

int nm_admission_add_invite(nm_admission_store *s, const char *hash, uint64_t expires,
                            nm_role role, uint32_t max_uses) {
  if (!nm__fp_ok(hash) || !nm__role_ok(role)) return -EINVAL;
  if (nm__find_invite(s, hash) >= 0 || nm__find_hex(s->revoked, s->nrevoked, hash) >= 0)
    return -EEXIST;
  int rc = NM__RESERVE(s, invites, ninvites, invites_cap, s->invites_max);
  if (rc < 0) return rc;
  nm_admission_invite *inv = &s->invites[s->ninvites++];
  memset(inv, 0, sizeof *inv);
  memcpy(inv->hash, hash, NM_SHA256_HEX_LEN + 1);
  inv->expires = expires;
  inv->role = role;
  inv->max_uses = max_uses;
  return 0;
}

int nm_admission_allow_add(nm_admission_store *s, const char *fingerprint, nm_role role) {
  if (!nm__fp_ok(fingerprint) || !nm__role_ok(role)) return -EINVAL;
  if (nm__find_allow(s, fingerprint) >= 0) return -EEXIST;
  int rc = NM__RESERVE(s, allow, nallow, allow_cap, s->allow_max);
  if (rc < 0) return rc;
  memcpy(s->allow[s->nallow].fingerprint, fingerprint, NM_SHA256_HEX_LEN + 1);
  s->allow[s->nallow++].role = role;
  return 0;
}

/* A key's record; the checks keep the store consistent (one record per key, one key per
 * name, no record for a revoked key). -EINVAL, -EEXIST (key or name), -ENOSPC, -ENOMEM. */
static int nm__add_key(nm_admission_store *s, const char *fp, const char *name, nm_role role,
                       const char *via) {
  if (!nm__fp_ok(fp) || !nm_name_valid(name) || !nm__role_ok(role) ||
      (via[0] && !nm_hex_valid(via, NM_INVITE_ID_LEN)))
    return -EINVAL;
  if (nm__find_key(s, fp) >= 0 || nm__find_name(s, name) >= 0 ||
      nm__key_revoked(s, fp))
    return -EEXIST;
  int rc = NM__RESERVE(s, keys, nkeys, keys_cap, s->keys_max);
  if (rc < 0) return rc;
  nm_admission_key *k = &s->keys[s->nkeys++];
  memset(k, 0, sizeof *k);
  memcpy(k->fingerprint, fp, NM_SHA256_HEX_LEN + 1);
  memcpy(k->name, name, strlen(name) + 1);
  k->role = role;
  memcpy(k->via, via, strlen(via) + 1);
  nm__ix_added_key(s, s->nkeys - 1);
  return 0;
}

/* Adds hex to a revocation list unless it is there. -EEXIST, -ENOSPC, -ENOMEM. */
static int nm__add_revoked(nm_admission_hex **arr, size_t *n, size_t *cap, size_t max,
                           const char *hex, int checked) {
  if (!checked && nm__find_hex(*arr, *n, hex) >= 0) return -EEXIST;
  int rc = nm__reserve((void **)arr, cap, *n, sizeof **arr, max);
  if (rc < 0) return rc;
  memcpy((*arr)[(*n)++], hex, NM_SHA256_HEX_LEN + 1);
  return 0;
}

/* Order is not meaningful in the tables: remove by moving the last entry into the hole. */
#define NM__REMOVE_AT(arr, n, i) ((arr)[(i)] = (arr)[--(n)])

static int nm__revoke_hash(nm_admission_store *s, const char *hash) {
  if (nm__find_invite(s, hash) >= 0) return -EEXIST;
  return nm__add_revoked(&s->revoked, &s->nrevoked, &s->revoked_cap, s->revoked_max, hash, 0);
}

static int nm__revoke_fp(nm_admission_store *s, const char *fp) {
  if (nm__key_revoked(s, fp)) return -EEXIST;
  int rc = nm__add_revoked(&s->revoked_keys, &s->nrevoked_keys, &s->revoked_keys_cap,
                           s->revoked_max, fp, 1);
  if (rc < 0) return rc;
  struct nm__admission_index *ix = s->index;
  if (ix && nm__ix_put(&ix->revoked, fp, 0) < 0) nm__ix_drop(s), ix = NULL;
  long k = nm__find_key(s, fp);
  if (k < 0) return 0;
  /* Its record goes: the last one moves into its place, and the index follows. */
  ix = s->index;
  if (ix) {
    char lower[NM_SHA256_HEX_LEN + 1];
    nm__ix_name_key(s->keys[k].name, lower);
    nm__ix_entry *by_fp = nm__ix_get(ix->by_fp, fp), *by_name = nm__ix_get(ix->by_name, lower);
    if (by_fp) {
      HASH_DEL(ix->by_fp, by_fp);
      free(by_fp);
    }
    if (by_name) {
      HASH_DEL(ix->by_name, by_name);
      free(by_name);
    }
  }
  NM__REMOVE_AT(s->keys, s->nkeys, (size_t)k);
  if (ix && (size_t)k < s->nkeys) {
    char lower[NM_SHA256_HEX_LEN + 1];
    nm__ix_name_key(s->keys[k].name, lower);
    nm__ix_entry *by_fp = nm__ix_get(ix->by_fp, s->keys[k].fingerprint), *by_name = nm__ix_get(ix->by_name, lower);
    if (by_fp) by_fp->at = (size_t)k;
    if (by_name) by_name->at = (size_t)k;
  }
  return 0;
}

/* The entries of a table whose hex field starts with prefix: the count and the last index. */
#define NM__MATCH_PREFIX(arr, n, field, prefix, plen, count, last)                            \
  do {                                                                                        \
    for (size_t i_ = 0; i_ < (n); i_++)                                                       \
      if (strncmp((arr)[i_] field, (prefix), (plen)) == 0) (count)++, (last) = (long)i_;      \
  } while (0)

static int nm__prefix_ok(const char *p, size_t *len) {
  *len = p ? strnlen(p, NM_SHA256_HEX_LEN + 1) : 0;
  return *len >= NM_ADMISSION_PREFIX_MIN && *len <= NM_SHA256_HEX_LEN && nm_hex_valid(p, *len);
}

int nm_admission_revoke_invite(nm_admission_store *s, const char *id_prefix, int also_keys,
                               size_t *keys_revoked, char *err, size_t errlen) {
  size_t plen, count = 0, revoked_count = 0;
  long at = -1, revoked_at = -1;
  if (keys_revoked) *keys_revoked = 0;
  if (!nm__prefix_ok(id_prefix, &plen))
    return nm__fail(err, errlen, -EINVAL, "bad invite id (at least %d lowercase hex characters)",
                    NM_ADMISSION_PREFIX_MIN);
  NM__MATCH_PREFIX(s->invites, s->ninvites, .hash, id_prefix, plen, count, at);
  NM__MATCH_PREFIX(s->revoked, s->nrevoked, , id_prefix, plen, revoked_count, revoked_at);
  (void)revoked_at;
  if (count == 0)
    return nm__fail(err, errlen, -ENOENT, revoked_count ? "invite %s is already revoked"
                                                        : "no invite with id %s", id_prefix);
  if (count > 1)
    return nm__fail(err, errlen, -EINVAL,
                    "invite id %s is ambiguous (%zu invites): give more of it", id_prefix, count);
  char hash[NM_SHA256_HEX_LEN + 1], id[NM_INVITE_ID_LEN + 1];
  memcpy(hash, s->invites[at].hash, sizeof hash);
  memcpy(id, hash, NM_INVITE_ID_LEN);
  id[NM_INVITE_ID_LEN] = 0;
  /* Room first, so that a full revocation list leaves the invite valid, not lost. */
  int rc = nm__reserve((void **)&s->revoked, &s->revoked_cap, s->nrevoked, sizeof *s->revoked,
                       s->revoked_max);
  if (rc < 0) return nm__fail(err, errlen, rc, "cannot revoke invite %s: %s", id, strerror(-rc));
  NM__REMOVE_AT(s->invites, s->ninvites, (size_t)at);
  nm__revoke_hash(s, hash);
  if (!also_keys) return 0;
  /* The keys it admitted; a full list of revoked keys stops here and says so. */
  for (size_t i = 0; i < s->nkeys;) {
    if (strcmp(s->keys[i].via, id) != 0) {
      i++;
      continue;
    }
    rc = nm__revoke_fp(s, s->keys[i].fingerprint); /* moves the last record into i */
    if (rc < 0)
      return nm__fail(err, errlen, rc, "invite %s revoked, but not all of its keys: %s", id,
                      strerror(-rc));
    if (keys_revoked) (*keys_revoked)++;
  }
  return 0;
}

int nm_admission_revoke_key(nm_admission_store *s, const char *fingerprint_or_prefix, char *err,
                            size_t errlen) {
  size_t plen, count = 0;
  long at = -1;
  const char *p = fingerprint_or_prefix;
  if (!nm__prefix_ok(p, &plen))
    return nm__fail(err, errlen, -EINVAL,
                    "bad key fingerprint (at least %d lowercase hex characters)",
                    NM_ADMISSION_PREFIX_MIN);
  if (nm__key_revoked(s, p))
    return nm__fail(err, errlen, -EEXIST, "key %.16s is already revoked", p);
  const char *fp = p;
  if (plen < NM_SHA256_HEX_LEN) {
    NM__MATCH_PREFIX(s->keys, s->nkeys, .fingerprint, p, plen, count, at);
    if (count == 0) return nm__fail(err, errlen, -ENOENT, "no admitted key starts with %s", p);
    if (count > 1)
      return nm__fail(err, errlen, -EINVAL, "key %s is ambiguous (%zu keys): give more of it", p,
                      count);
    fp = s->keys[at].fingerprint;
  }
  char copy[NM_SHA256_HEX_LEN + 1];
  memcpy(copy, fp, sizeof copy); /* fp may point into the record nm__revoke_fp moves */
  int rc = nm__revoke_fp(s, copy);
  if (rc == -EEXIST) return nm__fail(err, errlen, rc, "key %.16s is already revoked", copy);
  if (rc < 0) return nm__fail(err, errlen, rc, "cannot revoke key %.16s: %s", copy, strerror(-rc));
  return 0;
}

size_t nm_admission_prune(nm_admission_store *s, uint64_t now) {
  size_t dropped = 0;
  for (size_t i = 0; i < s->ninvites;) {
    if (nm_invite_expired(s->invites[i].expires, now)) {
      NM__REMOVE_AT(s->invites, s->ninvites, i);
      dropped++;
    } else {
      i++;
    }
  }
  return dropped;
}

/* ---- the decision ------------------------------------------------------------------------ */

/* What a presented secret is worth. */
typedef enum {
  NM__INV_NONE,    /* no secret presented */
  NM__INV_VALID,
  NM__INV_UNKNOWN, /* no invite has it */
  NM__INV_REVOKED,
  NM__INV_EXPIRED,
  NM__INV_USED_UP,
} nm__invite_state;

static nm__invite_state nm__judge_invite(const nm_admission_store *s, const unsigned char *secret,
                                         uint64_t now, char hash[NM_SHA256_HEX_LEN + 1],
                                         long *at) {
  *at = -1;
  if (!secret) return NM__INV_NONE;
  if (nm_invite_secret_hash(secret, hash) < 0) return NM__INV_UNKNOWN;
  /* Hashes are compared as text: what timing may tell is how much of a stored hash matches
   * the hash of a guess, which no one can steer without preimages of SHA-256. */
  if (nm__find_hex(s->revoked, s->nrevoked, hash) >= 0) return NM__INV_REVOKED;
  *at = nm__find_invite(s, hash);
  if (*at < 0) return NM__INV_UNKNOWN;
  const nm_admission_invite *inv = &s->invites[*at];
  if (nm_invite_expired(inv->expires, now)) return NM__INV_EXPIRED;
  if (inv->max_uses && inv->uses >= inv->max_uses) return NM__INV_USED_UP;
  return NM__INV_VALID;
}

static int nm__refuse(nm_admission_decision *d, nm_admission_reason r) {
  d->admit = 0;
  d->reason = r;
  d->remember = 0;
  d->invite_hash[0] = 0;
  snprintf(d->message, sizeof d->message, "refused: %s", nm_admission_reason_text(r));
  return 0;
}

int nm_admission_decide(const nm_admission_store *s, nm_admission_mode mode,
                        const nm_admission_request *rq, nm_admission_decision *d) {
  if (!s || !rq || !d) return -EINVAL;
  memset(d, 0, sizeof *d);
  if (!nm__fp_ok(rq->fingerprint) || !nm_name_valid(rq->name) || !nm__role_ok(rq->role) ||
      !nm_admission_mode_name(mode))
    return nm__refuse(d, NM_REFUSE_BAD_REQUEST);
  if (nm__key_revoked(s, rq->fingerprint))
    return nm__refuse(d, NM_REFUSE_KEY_REVOKED);

  long allow = nm__find_allow(s, rq->fingerprint), key = nm__find_key(s, rq->fingerprint), inv;
  char hash[NM_SHA256_HEX_LEN + 1] = "";
  nm__invite_state is = nm__judge_invite(s, rq->secret, rq->now, hash, &inv);
  int admitted = 0;
  nm_role granted = NM_ROLE_SERVANT;
  nm_admission_reason reason = NM_ADMIT_KNOWN;

  if (mode == NM_ADMISSION_ALLOW) {
    /* The allow list alone decides, roles included (the config is the authority). */
    if (allow < 0) return nm__refuse(d, NM_REFUSE_NOT_ALLOWED);
    admitted = 1, granted = s->allow[allow].role, reason = NM_ADMIT_ALLOWED;
  } else {
    if (allow >= 0) {
      admitted = 1, granted = s->allow[allow].role, reason = NM_ADMIT_ALLOWED;
    } else if (key >= 0) {
      admitted = 1, reason = NM_ADMIT_KNOWN;
    }
    if (key >= 0) granted = nm__role_max(granted, s->keys[key].role);
    /* A valid invite admits a new key, or raises a known key's role; otherwise a known key
     * ignores its secret (nodes keep presenting theirs long after it expired). */
    if (is == NM__INV_VALID &&
        (!admitted || (s->invites[inv].role == NM_ROLE_RELAY && granted != NM_ROLE_RELAY))) {
      admitted = 1, reason = NM_ADMIT_INVITED;
      granted = nm__role_max(granted, s->invites[inv].role);
      memcpy(d->invite_hash, hash, sizeof hash);
    }
    if (!admitted && mode == NM_ADMISSION_OPEN) admitted = 1, reason = NM_ADMIT_OPEN;
    if (!admitted) {
      static const nm_admission_reason why[] = {
          [NM__INV_NONE] = NM_REFUSE_NOT_INVITED,
          [NM__INV_VALID] = NM_REFUSE_NOT_INVITED, /* (not reached: a valid one admits) */
          [NM__INV_UNKNOWN] = NM_REFUSE_UNKNOWN_INVITE,
          [NM__INV_REVOKED] = NM_REFUSE_INVITE_REVOKED,
          [NM__INV_EXPIRED] = NM_REFUSE_INVITE_EXPIRED,
          [NM__INV_USED_UP] = NM_REFUSE_INVITE_USED_UP,
      };
      return nm__refuse(d, why[is]);
    }
  }

  if (rq->role == NM_ROLE_RELAY && granted != NM_ROLE_RELAY)
    return nm__refuse(d, NM_REFUSE_ROLE_NOT_GRANTED);
  long holder = nm__find_name(s, rq->name);
  if (holder >= 0 && holder != key) {
    nm__refuse(d, NM_REFUSE_NAME_TAKEN);
    snprintf(d->message, sizeof d->message, "refused: name \"%s\" is taken by another key",
             rq->name);
    return 0;
  }
  d->remember = key < 0 || strcmp(s->keys[key].name, rq->name) != 0 ||
                s->keys[key].role != granted;
  if (key < 0 && s->nkeys >= s->keys_max) return nm__refuse(d, NM_REFUSE_STORE_FULL);

  d->admit = 1;
  d->reason = reason;
  d->role = rq->role;
  d->granted = granted;
  if (reason == NM_ADMIT_INVITED)
    snprintf(d->message, sizeof d->message, "admitted as %s: valid invite %.*s",
             nm_role_name(rq->role), NM_INVITE_ID_LEN, hash);
  else
    snprintf(d->message, sizeof d->message, "admitted as %s: %s", nm_role_name(rq->role),
             nm_admission_reason_text(reason));
  return 0;
}

int nm_admission_commit(nm_admission_store *s, const nm_admission_request *rq,
                        const nm_admission_decision *d) {
  int changed = 0;
  if (!s || !rq || !d) return -EINVAL;
  if (!d->admit) return 0;
  char via[NM_INVITE_ID_LEN + 1] = "";
  if (d->invite_hash[0]) memcpy(via, d->invite_hash, NM_INVITE_ID_LEN);
  /* The key's record first: if it cannot be written, no use of the invite is counted. */
  if (d->remember) {
    /* decide checked all this; checked again, because the request or the store may have
     * changed since, and a record must never hold a bad or doubled name. */
    if (!nm__fp_ok(rq->fingerprint) || !nm_name_valid(rq->name) || !nm__role_ok(d->granted))
      return -EINVAL;
    long k = nm__find_key(s, rq->fingerprint), holder = nm__find_name(s, rq->name);
    if (holder >= 0 && holder != k) return -EEXIST;
    if (k >= 0) {
      /* Known key: a new name or a raised role. */
      nm_admission_key *rec = &s->keys[k];
      struct nm__admission_index *ix = s->index;
      if (ix) {
        char lower[NM_SHA256_HEX_LEN + 1];
        nm__ix_name_key(rec->name, lower);
        nm__ix_entry *e = nm__ix_get(ix->by_name, lower);
        if (e) {
      HASH_DEL(ix->by_name, e);
      free(e);
    }
        nm__ix_name_key(rq->name, lower);
        if (nm__ix_put(&ix->by_name, lower, (size_t)k) < 0) nm__ix_drop(s);
      }
      memcpy(rec->name, rq->name, strlen(rq->name) + 1);
      rec->role = d->granted;
      if (via[0]) memcpy(rec->via, via, sizeof via);
    } else {
      int rc = nm__add_key(s, rq->fingerprint, rq->name, d->granted, via);
      if (rc < 0) return rc;
    }
    changed = 1;
  }
  if (d->invite_hash[0]) {
    long i = nm__find_invite(s, d->invite_hash);
    if (i >= 0 && s->invites[i].uses < UINT32_MAX) {
      s->invites[i].uses++;
      changed = 1;
    }
  }
  return changed;
}

int nm_admission_key_is_revoked(const nm_admission_store *s, const char *fingerprint) {
  return s && fingerprint && nm__key_revoked(s, fingerprint);
}

int nm_admission_remember(nm_admission_store *s, const char *fingerprint, const char *name,
                          nm_role role, const char *via) {
  if (!s || !fingerprint || !name || !via) return -EINVAL;
  if (nm__key_revoked(s, fingerprint)) return -EPERM;
  long k = nm__find_key(s, fingerprint);
  if (k < 0) {
    int rc = nm__add_key(s, fingerprint, name, role, via);
    return rc < 0 ? rc : 1;
  }
  /* A known key: the same update commit makes (its name, a raised role, the invite). */
  nm_admission_request rq = {.fingerprint = fingerprint, .name = name, .role = role};
  nm_admission_decision d = {.admit = 1, .remember = 1, .granted = nm__role_max(s->keys[k].role, role)};
  const nm_admission_key *rec = &s->keys[k];
  if (strcmp(rec->name, name) == 0 && rec->role == d.granted && (!via[0] || strcmp(rec->via, via) == 0))
    return 0;
  int rc = nm_admission_commit(s, &rq, &d);
  if (rc > 0 && via[0]) memcpy(s->keys[nm__find_key(s, fingerprint)].via, via, NM_INVITE_ID_LEN + 1);
  return rc;
}

int nm_admission_admit(nm_admission_store *s, nm_admission_mode mode,
                       const nm_admission_request *rq, nm_admission_decision *d) {
  int rc = nm_admission_decide(s, mode, rq, d);
  if (rc < 0 || !d->admit) return rc;
  return nm_admission_commit(s, rq, d);
}

/* ---- the file ---------------------------------------------------------------------------- */

static int nm__role_field(const char *f, nm_role *out) {
  return strcmp(f, "servant") == 0 ? (*out = NM_ROLE_SERVANT, 0)
         : strcmp(f, "relay") == 0 ? (*out = NM_ROLE_RELAY, 0)
                                   : -EINVAL;
}

static int nm__u64_field(const char *f, uint64_t max, uint64_t *out) {
  return nm_parse_u64(f, strlen(f), out) < 0 || *out > max ? -EINVAL : 0;
}

/* One reader per kind of line: f[] are the fields after the keyword. Each writes a reason
 * (without file and line, which the caller adds) and returns 0 or a negative code. */
typedef int (*nm__line_reader)(nm_admission_store *s, char **f, char *why, size_t whylen);

__attribute__((format(printf, 3, 4)))
static int nm__why(char *why, size_t whylen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, whylen, fmt, ap);
  va_end(ap);
  return -EINVAL;
}

static int nm__add_result(int rc, const char *what, char *why, size_t whylen) {
  switch (rc) {
  case 0: return 0;
  case -EEXIST:
    return nm__why(why, whylen, "%s appears twice, or conflicts with another entry", what);
  case -ENOSPC: return nm__why(why, whylen, "too many entries of this kind");
  case -ENOMEM: return rc;
  default: return nm__why(why, whylen, "bad %s", what);
  }
}

static int nm__read_invite(nm_admission_store *s, char **f, char *why, size_t whylen) {
  nm_role role;
  uint64_t expires, uses, max_uses;
  if (!nm__fp_ok(f[0])) return nm__why(why, whylen, "bad secret hash");
  if (nm__u64_field(f[1], UINT64_MAX, &expires) < 0) return nm__why(why, whylen, "bad expiry");
  if (nm__role_field(f[2], &role) < 0) return nm__why(why, whylen, "bad role");
  if (nm__u64_field(f[3], UINT32_MAX, &uses) < 0) return nm__why(why, whylen, "bad uses");
  if (nm__u64_field(f[4], UINT32_MAX, &max_uses) < 0)
    return nm__why(why, whylen, "bad max-uses");
  if (max_uses && uses > max_uses) return nm__why(why, whylen, "uses above max-uses");
  int rc = nm_admission_add_invite(s, f[0], expires, role, (uint32_t)max_uses);
  if (rc == 0) s->invites[s->ninvites - 1].uses = (uint32_t)uses;
  return nm__add_result(rc, "invite", why, whylen);
}

static int nm__read_admitted(nm_admission_store *s, char **f, char *why, size_t whylen) {
  nm_role role;
  if (!nm__fp_ok(f[0])) return nm__why(why, whylen, "bad fingerprint");
  if (!nm_name_valid(f[1])) return nm__why(why, whylen, "bad name");
  if (nm__role_field(f[2], &role) < 0) return nm__why(why, whylen, "bad role");
  const char *via = strcmp(f[3], "-") == 0 ? "" : f[3];
  if (via[0] && !nm_hex_valid(via, NM_INVITE_ID_LEN)) return nm__why(why, whylen, "bad invite id");
  if (nm__find_name(s, f[1]) >= 0)
    return nm__why(why, whylen, "name \"%s\" held by two keys", f[1]);
  return nm__add_result(nm__add_key(s, f[0], f[1], role, via), "key", why, whylen);
}

static int nm__read_revoked(nm_admission_store *s, char **f, char *why, size_t whylen) {
  if (!nm__fp_ok(f[0])) return nm__why(why, whylen, "bad secret hash");
  return nm__add_result(nm__revoke_hash(s, f[0]), "revoked secret", why, whylen);
}

static int nm__read_revoked_key(nm_admission_store *s, char **f, char *why, size_t whylen) {
  if (!nm__fp_ok(f[0])) return nm__why(why, whylen, "bad fingerprint");
  /* On load a revoked key must not also be admitted: nm__revoke_fp would drop the record
   * silently, and a file that says both is not one natmesh wrote. */
  if (nm__find_key(s, f[0]) >= 0) return nm__why(why, whylen, "key both admitted and revoked");
  return nm__add_result(nm__revoke_fp(s, f[0]), "revoked key", why, whylen);
}

static const struct {
  const char *keyword;
  unsigned nfields;
  nm__line_reader read;
} nm__line_kinds[] = {
    {"invite", 5, nm__read_invite},
    {"admitted", 4, nm__read_admitted},
    {"revoked", 1, nm__read_revoked},
    {"revoked-key", 1, nm__read_revoked_key},
};

/* Splits line (modified in place) on blanks into at most max fields. Returns the count, or
 * max + 1 when there are more. */
static size_t nm__split(char *line, char **f, size_t max) {
  size_t n = 0;
  for (char *p = line;;) {
    while (*p == ' ' || *p == '\t') p++;
    if (!*p) return n;
    if (n == max) return max + 1;
    f[n++] = p;
    while (*p && *p != ' ' && *p != '\t') p++;
    if (*p) *p++ = 0;
  }
}

static int nm__parse_line(nm_admission_store *s, char *line, char *why, size_t whylen) {
  char *f[8];
  for (const char *c = line; *c; c++)
    if ((unsigned char)*c < 0x20 && *c != '\t')
      return nm__why(why, whylen, "control character (0x%02x)", (unsigned char)*c);
  size_t n = nm__split(line, f, sizeof f / sizeof f[0]);
  if (n == 0 || f[0][0] == '#') return 0;
  for (size_t k = 0; k < sizeof nm__line_kinds / sizeof nm__line_kinds[0]; k++) {
    if (strcmp(f[0], nm__line_kinds[k].keyword) != 0) continue;
    if (n > sizeof f / sizeof f[0])
      return nm__why(why, whylen, "%s takes %u fields, found more", f[0],
                     nm__line_kinds[k].nfields);
    if (n - 1 != nm__line_kinds[k].nfields)
      return nm__why(why, whylen, "%s takes %u fields, found %zu", f[0],
                     nm__line_kinds[k].nfields, n - 1);
    return nm__line_kinds[k].read(s, f + 1, why, whylen);
  }
  return nm__why(why, whylen, "unknown entry \"%.20s\"", f[0]);
}

/* Reads the whole file (at most NM_ADMISSION_FILE_MAX bytes) into a NUL-terminated buffer
 * of its size. The manager replaces the file by rename, so the file open here never changes;
 * one byte more than its size is asked for all the same, to notice one that does. */
static int nm__slurp(const char *path, char **out, size_t *len, char *err, size_t errlen) {
  struct stat st;
  const char *why = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nm__fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
  int rc = fstat(fd, &st) < 0 ? -errno : 0;
  if (rc == 0 && S_ISDIR(st.st_mode)) rc = -EISDIR;
  else if (rc == 0 && !S_ISREG(st.st_mode)) rc = NM_ECONFIG, why = "not a regular file";
  else if (rc == 0 && (uint64_t)st.st_size > NM_ADMISSION_FILE_MAX)
    rc = NM_ECONFIG, why = "larger than the admission store's limit";
  if (rc < 0) {
    close(fd);
    return nm__fail(err, errlen, rc, "%s: %s", path, why ? why : strerror(-rc));
  }
  size_t size = (size_t)st.st_size, n = 0;
  char *buf = malloc(size + 2);
  if (!buf) {
    close(fd);
    return nm__fail(err, errlen, -ENOMEM, "%s: out of memory", path);
  }
  while (rc == 0) {
    ssize_t r = read(fd, buf + n, size + 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) rc = -errno;
    else if (r == 0) break;
    else if ((n += (size_t)r) > size) rc = -EAGAIN;
  }
  close(fd);
  if (rc < 0) {
    free(buf);
    return nm__fail(err, errlen, rc, "%s: %s", path,
                    rc == -EAGAIN ? "changed while being read" : strerror(-rc));
  }
  buf[n] = 0;
  *out = buf;
  *len = n;
  return 0;
}

/* Replaces what the file holds (invites, keys, revocations) with src's, or empties it when
 * src is NULL; the allow list, which comes from the config, stays. */
static void nm__take_persistent(nm_admission_store *s, nm_admission_store *src);

void nm_admission_store_take(nm_admission_store *s, nm_admission_store *src) {
  nm__take_persistent(s, src);
  nm_admission_store_init(src);
  src->invites_max = s->invites_max, src->keys_max = s->keys_max;
  src->revoked_max = s->revoked_max, src->allow_max = s->allow_max;
}

static void nm__take_persistent(nm_admission_store *s, nm_admission_store *src) {
  nm_admission_store next;
  if (src) {
    next = *src;
  } else {
    nm_admission_store_init(&next);
    next.invites_max = s->invites_max, next.keys_max = s->keys_max;
    next.revoked_max = s->revoked_max, next.allow_max = s->allow_max;
  }
  free(next.allow); /* a store read from a file has none */
  next.allow = s->allow, next.nallow = s->nallow, next.allow_cap = s->allow_cap;
  s->allow = NULL;
  nm_admission_store_close(s);
  *s = next;
}

int nm_admission_store_load(nm_admission_store *s, const char *path, char *err, size_t errlen) {
  char *buf = NULL, why[200];
  size_t len = 0;
  if (!s || !path) return -EINVAL;
  int rc = nm__slurp(path, &buf, &len, err, errlen);
  if (rc == -ENOENT) {
    nm__take_persistent(s, NULL); /* a first start: no file, nothing admitted yet */
    return rc;
  }
  if (rc < 0) return rc;
  if (memchr(buf, 0, len)) {
    free(buf);
    return nm__fail(err, errlen, NM_ECONFIG, "%s: binary data (a NUL byte)", path);
  }
  /* Read into a fresh store, so a corrupt file changes nothing. */
  nm_admission_store fresh;
  nm_admission_store_init(&fresh);
  fresh.invites_max = s->invites_max, fresh.keys_max = s->keys_max;
  fresh.revoked_max = s->revoked_max, fresh.allow_max = s->allow_max;
  unsigned lineno = 0;
  for (char *line = buf; rc == 0 && line < buf + len;) {
    char *nl = memchr(line, '\n', (size_t)(buf + len - line));
    if (nl) *nl = 0;
    lineno++;
    if (strlen(line) > NM__LINE_MAX)
      rc = nm__why(why, sizeof why, "line longer than %d characters", NM__LINE_MAX);
    else
      rc = nm__parse_line(&fresh, line, why, sizeof why);
    if (rc < 0)
      rc = rc == -ENOMEM ? nm__fail(err, errlen, rc, "%s: out of memory", path)
                         : nm__fail(err, errlen, NM_ECONFIG, "%s:%u: %s", path, lineno, why);
    line = nl ? nl + 1 : buf + len;
  }
  free(buf);
  if (rc < 0) {
    nm_admission_store_close(&fresh);
    return rc;
  }
  nm__take_persistent(s, &fresh);
  return 0;
}

/* Appends to a growing text buffer; the tables' bounds keep it under the file limit. */
typedef struct {
  char *data;
  size_t len, cap;
  int failed;
} nm__text;

__attribute__((format(printf, 2, 3)))
static void nm__printf(nm__text *t, const char *fmt, ...) {
  va_list ap;
  if (t->failed) return;
  for (;;) {
    va_start(ap, fmt);
    int n = vsnprintf(t->data + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      t->failed = 1;
      return;
    }
    if ((size_t)n < t->cap - t->len) {
      t->len += (size_t)n;
      return;
    }
    size_t ncap = t->cap * 2 + (size_t)n + 1;
    char *p = realloc(t->data, ncap);
    if (!p) {
      t->failed = 1;
      return;
    }
    t->data = p;
    t->cap = ncap;
  }
}

int nm_admission_store_save(const nm_admission_store *s, const char *path, char *err,
                            size_t errlen) {
  if (!s || !path) return -EINVAL;

  nm__text t = {malloc(4096), 0, 4096, 0};
  if (!t.data) return nm__fail(err, errlen, -ENOMEM, "%s: out of memory", path);
  nm__printf(&t, "# natmesh admission store: natmesh-manager writes it, one entry a line\n"
                 "# invite <secret-hash> <expires|0> <role> <uses> <max-uses|0>\n"
                 "# admitted <fingerprint> <name> <role> <invite-id|->\n"
                 "# revoked <secret-hash>\n"
                 "# revoked-key <fingerprint>\n");
  for (size_t i = 0; i < s->ninvites; i++) {
    const nm_admission_invite *v = &s->invites[i];
    nm__printf(&t, "invite %s %" PRIu64 " %s %" PRIu32 " %" PRIu32 "\n", v->hash, v->expires,
               nm_role_name(v->role), v->uses, v->max_uses);
  }
  for (size_t i = 0; i < s->nkeys; i++) {
    const nm_admission_key *k = &s->keys[i];
    nm__printf(&t, "admitted %s %s %s %s\n", k->fingerprint, k->name, nm_role_name(k->role),
               k->via[0] ? k->via : "-");
  }
  for (size_t i = 0; i < s->nrevoked; i++) nm__printf(&t, "revoked %s\n", s->revoked[i]);
  for (size_t i = 0; i < s->nrevoked_keys; i++)
    nm__printf(&t, "revoked-key %s\n", s->revoked_keys[i]);
  if (t.failed) {
    free(t.data);
    return nm__fail(err, errlen, -ENOMEM, "%s: out of memory", path);
  }

  int rc = nm_file_replace(path, t.data, t.len);
  free(t.data);
  if (rc < 0) return nm__fail(err, errlen, rc, "%s: %s", path, strerror(-rc));
  return rc;
}

/* ---- facts ------------------------------------------------------------------------------- */

int nm_admission_fact_parse(char kind, const char *key, const char *value, size_t len,
                            nm_admission_fact *f, char *why, size_t whylen) {
  char buf[NM_ADMISSION_FACT_VALUE_MAX], *fl[4];
  if (!f || !key || (!value && len)) return nm__why(why, whylen, "no fact");
  memset(f, 0, sizeof *f);
  if (len >= sizeof buf) return nm__why(why, whylen, "value of %zu bytes", len);
  if (len) memcpy(buf, value, len);
  buf[len] = '\0';
  if (strlen(buf) != len) return nm__why(why, whylen, "NUL in the value");
  if (!nm__fp_ok(key)) return nm__why(why, whylen, "bad %s", kind == 'k' || kind == 'r' ? "fingerprint" : "secret hash");
  size_t n = nm__split(buf, fl, 3);
  f->kind = kind;
  memcpy(f->hex, key, NM_SHA256_HEX_LEN + 1);
  switch (kind) {
  case NM_ADMISSION_FACT_INVITE: {
    uint64_t max_uses;
    if (n != 3) return nm__why(why, whylen, "an invite has 3 fields, not %zu", n);
    if (nm__u64_field(fl[0], UINT64_MAX, &f->expires) < 0) return nm__why(why, whylen, "bad expiry");
    if (nm__role_field(fl[1], &f->role) < 0) return nm__why(why, whylen, "bad role");
    if (nm__u64_field(fl[2], UINT32_MAX, &max_uses) < 0) return nm__why(why, whylen, "bad max-uses");
    f->max_uses = (uint32_t)max_uses;
    return 0;
  }
  case NM_ADMISSION_FACT_KEY: {
    if (n != 3) return nm__why(why, whylen, "an admitted key has 3 fields, not %zu", n);
    if (!nm_name_valid(fl[0])) return nm__why(why, whylen, "bad name");
    if (nm__role_field(fl[1], &f->role) < 0) return nm__why(why, whylen, "bad role");
    const char *via = strcmp(fl[2], "-") == 0 ? "" : fl[2];
    if (via[0] && !nm_hex_valid(via, NM_INVITE_ID_LEN)) return nm__why(why, whylen, "bad invite id");
    snprintf(f->name, sizeof f->name, "%s", fl[0]);
    snprintf(f->via, sizeof f->via, "%s", via);
    return 0;
  }
  case NM_ADMISSION_FACT_REVOKED_KEY:
  case NM_ADMISSION_FACT_REVOKED_INVITE:
    if (n != 0) return nm__why(why, whylen, "a revocation has no value");
    return 0;
  default:
    return nm__why(why, whylen, "unknown kind of fact");
  }
}

int nm_admission_fact_format(const nm_admission_fact *f, char *out, size_t outlen) {
  int n;
  if (!f || !out || !nm__fp_ok(f->hex)) return -EINVAL;
  switch (f->kind) {
  case NM_ADMISSION_FACT_INVITE:
    if (!nm__role_ok(f->role)) return -EINVAL;
    n = snprintf(out, outlen, "%" PRIu64 " %s %" PRIu32, f->expires, nm_role_name(f->role), f->max_uses);
    break;
  case NM_ADMISSION_FACT_KEY:
    if (!nm__role_ok(f->role) || !nm_name_valid(f->name) || (f->via[0] && !nm_hex_valid(f->via, NM_INVITE_ID_LEN)))
      return -EINVAL;
    n = snprintf(out, outlen, "%s %s %s", f->name, nm_role_name(f->role), f->via[0] ? f->via : "-");
    break;
  case NM_ADMISSION_FACT_REVOKED_KEY:
  case NM_ADMISSION_FACT_REVOKED_INVITE:
    n = snprintf(out, outlen, "%s", "");
    break;
  default:
    return -EINVAL;
  }
  return n < 0 || (size_t)n >= outlen ? -EINVAL : n;
}

int nm_admission_fact_apply(nm_admission_store *s, const nm_admission_fact *f) {
  if (!s || !f || !nm__fp_ok(f->hex)) return -EINVAL;
  int rc;
  switch (f->kind) {
  case NM_ADMISSION_FACT_INVITE:
    rc = nm_admission_add_invite(s, f->hex, f->expires, f->role, f->max_uses);
    return rc == -EEXIST ? 0 : rc < 0 ? rc : 1; /* known, or revoked: the revocation wins */
  case NM_ADMISSION_FACT_KEY:
    return nm_admission_remember(s, f->hex, f->name, f->role, f->via);
  case NM_ADMISSION_FACT_REVOKED_KEY:
    rc = nm__revoke_fp(s, f->hex);
    return rc == -EEXIST ? 0 : rc < 0 ? rc : 1;
  case NM_ADMISSION_FACT_REVOKED_INVITE:
    if (nm__find_invite(s, f->hex) >= 0)
      return nm_admission_revoke_invite(s, f->hex, 0, NULL, NULL, 0) < 0 ? -ENOSPC : 1;
    rc = nm__revoke_hash(s, f->hex);
    return rc == -EEXIST ? 0 : rc < 0 ? rc : 1;
  default:
    return -EINVAL;
  }
}
