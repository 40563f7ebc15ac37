/* nm_admission: who may join an overlay, as the manager decides it.
 *
 * The manager learns a node's key fingerprint from the TLS handshake (the node proved the
 * key); this module decides, from that fingerprint, an optional invite secret, the requested
 * name and role, and the manager's store, whether the node is admitted and as what. It is a
 * pure policy in the manner of nat/nm_lease.c: no sockets, no clock (the caller passes unix
 * time), and file I/O only in the explicit load and save.
 *
 * Modes:
 *   invite (the default)  a key joins by presenting the secret of an invite that is in the
 *                         store, not revoked, not expired and not used up; the key is then
 *                         remembered as admitted and rejoins without it.
 *   allow                 only keys on the allow list (from the manager's config) join.
 *   open                  any key joins (identities are still proven: nothing can be forged).
 * In every mode a revoked key is refused, and allow-listed keys are admitted.
 *
 * Roles: relay only when granted, never because a node asks. A grant comes from the allow
 * list, from an invite (a relay invite presented later upgrades a known key), or from the
 * key's record; grants add up (in allow mode the allow list alone decides); to take one
 * back, revoke the key. A node may run as a servant with a relay grant, not the reverse.
 *
 * Names are unique in an overlay, ignoring case ("Bob" and "bob" are one name, so a name
 * cannot be imitated by case): a key asking for a name another key holds is refused with
 * "name \"bob\" is taken by another key"; a key re-registering keeps its name, and may
 * change it to a free one (the old one is released).
 *
 * The store file (in the state directory, written atomically, mode 0600), one entry a line,
 * blank lines and lines starting with '#' ignored, fields separated by blanks:
 *
 *   invite <secret-hash> <expires|0> <servant|relay> <uses> <max-uses|0>
 *   admitted <fingerprint> <name> <servant|relay> <invite-id|->
 *   revoked <secret-hash>
 *   revoked-key <fingerprint>
 *
 * Only the hash of an invite's secret is kept (nm_invite_secret_hash), so a stolen store
 * cannot be turned into an invite. An invite's id is the first NM_INVITE_ID_LEN characters
 * of the hash; an admitted key records the id of the invite that admitted it ("-" for allow
 * and open), so revoking a leaked invite can take its keys out too. Invites may be used by
 * several keys until they expire (max-uses 0) or at most max-uses times: one invite can
 * enrol a fleet, or exactly one node. A corrupt file is refused with "file:line: reason"
 * and the store in memory is left as it was. */
#ifndef NM_ADMISSION_H
#define NM_ADMISSION_H

#include <stddef.h>
#include <stdint.h>

#include "nm_hex.h"
#include "nm_invite.h"
#include "nm_proto.h"

#define NM_ADMISSION_INVITES_MAX 4096  /* invites not yet expired or pruned */
#define NM_ADMISSION_KEYS_MAX 262144   /* keys remembered as admitted: five managers' worth of
                                          servants (issue 13 aims at 50,000 per manager) */
#define NM_ADMISSION_REVOKED_MAX 65536 /* revoked secrets, and revoked keys, each */
#define NM_ADMISSION_ALLOW_MAX 4096    /* allow-list entries */
#define NM_ADMISSION_FILE_MAX (64u << 20) /* bytes of a store file: more than full tables
                                            (262,144 records of at most 150 bytes: 38 MiB) */
#define NM_ADMISSION_PREFIX_MIN 8      /* hex characters of an id given to revoke */

typedef enum {
  NM_ADMISSION_INVITE = 0,
  NM_ADMISSION_ALLOW,
  NM_ADMISSION_OPEN,
} nm_admission_mode;

/* "invite", "allow", "open"; NULL when out of range. */
const char *nm_admission_mode_name(nm_admission_mode m);
/* Returns 0 or -EINVAL. */
int nm_admission_mode_parse(const char *s, nm_admission_mode *out);

/* ---- the store ------------------------------------------------------------------------ */

typedef struct {
  char hash[NM_SHA256_HEX_LEN + 1]; /* nm_invite_secret_hash of the secret */
  uint64_t expires;                 /* unix seconds; 0: never */
  nm_role role;                     /* granted to the keys it admits */
  uint32_t uses, max_uses;          /* max_uses 0: no limit */
} nm_admission_invite;

typedef struct {
  char fingerprint[NM_SHA256_HEX_LEN + 1];
  char name[NM_NAME_MAX + 1];
  nm_role role;                   /* the highest role granted to the key */
  char via[NM_INVITE_ID_LEN + 1]; /* the invite that admitted it, or "" */
} nm_admission_key;

typedef struct {
  char fingerprint[NM_SHA256_HEX_LEN + 1];
  nm_role role;
} nm_admission_allowed;

typedef char nm_admission_hex[NM_SHA256_HEX_LEN + 1];

/* The manager's memory of invites and keys. Every table is bounded (the *_MAX above); the
 * allow list comes from the config and is not saved. Read the tables freely; change them
 * through the functions below, which keep them consistent. */
typedef struct {
  nm_admission_invite *invites;
  size_t ninvites, invites_cap;
  nm_admission_key *keys;
  size_t nkeys, keys_cap;
  nm_admission_hex *revoked;      /* hashes of revoked invite secrets */
  size_t nrevoked, revoked_cap;
  nm_admission_hex *revoked_keys; /* fingerprints */
  size_t nrevoked_keys, revoked_keys_cap;
  nm_admission_allowed *allow;
  size_t nallow, allow_cap;
  /* The bounds: nm_admission_store_init sets the *_MAX above; a test may lower them. */
  size_t invites_max, keys_max, revoked_max, allow_max;
  /* Hash indexes of keys by fingerprint and by name, and of revoked keys (nm_admission.c):
   * built when first needed, kept up to date as records are added, rebuilt after one is
   * removed. NULL until then. */
  struct nm__admission_index *index;
} nm_admission_store;

void nm_admission_store_init(nm_admission_store *s);
void nm_admission_store_close(nm_admission_store *s);

/* Replaces the store's invites, keys and revocations (not its allow list) with the file's.
 * Returns 0; -ENOENT when the file does not exist (the store is then empty: a first start);
 * NM_ECONFIG with "path:line: reason" in err for a corrupt file, or -errno with
 * "path: reason" when it cannot be read, and then the store is unchanged. */
int nm_admission_store_load(nm_admission_store *s, const char *path, char *err, size_t errlen);

/* Writes the store to path atomically: a temporary file next to it (mode 0600), fsync,
 * rename over path, fsync of the folder. A crash leaves the old file or the new one, never a
 * mix. Returns 0 or -errno with "path: reason" in err. */
int nm_admission_store_save(const nm_admission_store *s, const char *path, char *err,
                            size_t errlen);

/* Adds an invite (hash from nm_invite_secret_hash). Returns 0, -EINVAL for a bad hash or
 * role, -EEXIST when the hash is already an invite or revoked, -ENOSPC when the table is
 * full (nm_admission_prune frees expired ones), or -ENOMEM. */
int nm_admission_add_invite(nm_admission_store *s, const char *hash, uint64_t expires,
                            nm_role role, uint32_t max_uses);

/* Adds a key to the allow list. Returns 0, -EINVAL, -EEXIST, -ENOSPC or -ENOMEM. */
int nm_admission_allow_add(nm_admission_store *s, const char *fingerprint, nm_role role);

/* Revokes the one invite whose id (hash) starts with id_prefix (at least
 * NM_ADMISSION_PREFIX_MIN lowercase hex characters): its hash moves to the revoked list, so
 * its secret stays refused. With also_keys, the keys it admitted are revoked too, and
 * *keys_revoked (may be NULL) says how many. Returns 0, or with a reason in err: -EINVAL (a
 * bad or ambiguous prefix), -ENOENT (no such invite), -ENOSPC or -ENOMEM. */
int nm_admission_revoke_invite(nm_admission_store *s, const char *id_prefix, int also_keys,
                               size_t *keys_revoked, char *err, size_t errlen);

/* Revokes a key: a full fingerprint (known or not: a key can be banned before it is seen),
 * or a prefix of at least NM_ADMISSION_PREFIX_MIN characters matching exactly one admitted
 * key. Its record is dropped (its name becomes free) and it is refused in every mode from
 * then on. Returns 0, or with a reason in err: -EINVAL, -ENOENT, -EEXIST (already revoked),
 * -ENOSPC or -ENOMEM. */
int nm_admission_revoke_key(nm_admission_store *s, const char *fingerprint_or_prefix, char *err,
                            size_t errlen);

/* Drops the invites expired at now. Returns how many were dropped. */
size_t nm_admission_prune(nm_admission_store *s, uint64_t now);

/* The record of an admitted key, or NULL. */
const nm_admission_key *nm_admission_find_key(const nm_admission_store *s,
                                              const char *fingerprint);

/* ---- the decision ---------------------------------------------------------------------- */

typedef struct {
  const char *fingerprint;      /* of the key the node proved, NM_SHA256_HEX_LEN hex */
  const char *name;             /* the name it asks for (nm_name_valid) */
  nm_role role;                 /* what it runs as: servant, or relay (needs a grant) */
  const unsigned char *secret;  /* NM_INVITE_SECRET_LEN bytes, or NULL when none is given */
  uint64_t now;                 /* unix seconds, for expiries */
} nm_admission_request;

/* Why a key was admitted or refused. nm_admission_reason_text() gives a short text. */
typedef enum {
  NM_ADMIT_KNOWN = 0,         /* admitted before: rejoins without a secret */
  NM_ADMIT_INVITED,           /* presented a valid invite now */
  NM_ADMIT_ALLOWED,           /* on the allow list */
  NM_ADMIT_OPEN,              /* a new key in an open overlay */
  NM_REFUSE_BAD_REQUEST,      /* the fingerprint, name or role is malformed */
  NM_REFUSE_KEY_REVOKED,
  NM_REFUSE_NOT_ALLOWED,      /* allow mode, key not listed */
  NM_REFUSE_NOT_INVITED,      /* invite mode, unknown key, no secret */
  NM_REFUSE_UNKNOWN_INVITE,   /* a secret no invite has */
  NM_REFUSE_INVITE_REVOKED,
  NM_REFUSE_INVITE_EXPIRED,
  NM_REFUSE_INVITE_USED_UP,
  NM_REFUSE_ROLE_NOT_GRANTED, /* asks to be a relay without a grant */
  NM_REFUSE_NAME_TAKEN,       /* another key holds the name */
  NM_REFUSE_STORE_FULL,       /* no room to remember a new key */
} nm_admission_reason;

const char *nm_admission_reason_text(nm_admission_reason r);

typedef struct {
  int admit;                  /* 1: admitted */
  nm_admission_reason reason;
  nm_role role;               /* admitted: the role of this session (the one requested) */
  nm_role granted;            /* admitted: the highest role the key now holds */
  char message[160];          /* one line for the log and for a refused node's error frame:
                                 "refused: name \"bob\" is taken by another key" */
  /* What nm_admission_commit records. */
  int remember;               /* add the key's record, or update its name or role */
  char invite_hash[NM_SHA256_HEX_LEN + 1]; /* the invite whose use to count, or "" */
} nm_admission_decision;

/* Decides, changing nothing. Returns 0 with *d filled (admitted or refused), or -EINVAL when
 * an argument is NULL. A malformed request is a refusal (NM_REFUSE_BAD_REQUEST), not an
 * error. */
int nm_admission_decide(const nm_admission_store *s, nm_admission_mode mode,
                        const nm_admission_request *rq, nm_admission_decision *d);

/* Records an admission decided on this store (and not changed since): the key's record and
 * the invite's use. Returns 1 when the store changed (save it), 0 when not (a refusal, or a
 * known key with its name and role), -ENOMEM, or -EINVAL / -EEXIST / -ENOSPC when the
 * request or the store changed since the decision (a malformed request, a name now held by
 * another key, no more room): then nothing is recorded. */
int nm_admission_commit(nm_admission_store *s, const nm_admission_request *rq,
                        const nm_admission_decision *d);

/* Records that the key fingerprint was admitted under name with role (raised, never
 * lowered) and via (an invite id, or ""): what nm_admission_commit records for a key, given
 * as a record rather than a decision, so that a record made on one copy of the store can be
 * made again on another (the manager saves records in batches: admission.h). Returns 1 when
 * the store changed, 0 when it held the record already, -EPERM when the key is revoked,
 * -EEXIST when another key holds the name, -EINVAL, -ENOSPC or -ENOMEM. */
int nm_admission_remember(nm_admission_store *s, const char *fingerprint, const char *name,
                          nm_role role, const char *via);

/* 1 when fingerprint is a revoked key (an indexed lookup). */
int nm_admission_key_is_revoked(const nm_admission_store *s, const char *fingerprint);

/* Replaces s's invites, keys and revocations with src's (its allow list stays); src is left
 * empty. For a store read elsewhere (another thread) taking the place of s's tables. */
void nm_admission_store_take(nm_admission_store *s, nm_admission_store *src);

/* nm_admission_decide, then nm_admission_commit when admitted. Returns commit's result (or
 * decide's error). */
int nm_admission_admit(nm_admission_store *s, nm_admission_mode mode,
                       const nm_admission_request *rq, nm_admission_decision *d);

/* ---- facts: the store's records as several managers share them (issue 14) -------------
 *
 * Managers sharing one overlay through a store (src/manager/store.h) tell each other what
 * their admission stores hold, one fact at a time: a fact is a kind, a key and a value.
 *
 *   kind 'i' (an invite)       key: its secret's hash   value: "EXPIRES ROLE MAX-USES"
 *   kind 'k' (an admitted key) key: its fingerprint     value: "NAME ROLE VIA" (VIA: an
 *                                                        invite id, or "-")
 *   kind 'r' (a revoked key)   key: its fingerprint     value: ""
 *   kind 'v' (a revoked invite) key: its secret's hash  value: ""
 *
 * Never a secret: the hash only, as the file keeps it. An invite's uses are not a fact:
 * each manager counts the uses made at it. */
#define NM_ADMISSION_FACT_INVITE 'i'
#define NM_ADMISSION_FACT_KEY 'k'
#define NM_ADMISSION_FACT_REVOKED_KEY 'r'
#define NM_ADMISSION_FACT_REVOKED_INVITE 'v'
#define NM_ADMISSION_FACT_VALUE_MAX 128 /* bytes of a value, with its NUL */

typedef struct {
  char kind;                         /* one of the four above */
  char hex[NM_SHA256_HEX_LEN + 1];   /* the hash ('i', 'v') or the fingerprint ('k', 'r') */
  uint64_t expires;                  /* 'i' */
  uint32_t max_uses;                 /* 'i' */
  nm_role role;                      /* 'i', 'k' */
  char name[NM_NAME_MAX + 1];        /* 'k' */
  char via[NM_INVITE_ID_LEN + 1];    /* 'k': "" for none */
} nm_admission_fact;

/* Reads a fact (value: len bytes, not NUL-terminated necessarily), each field checked as
 * the store file's are. Returns 0, or -EINVAL with the reason in why. */
int nm_admission_fact_parse(char kind, const char *key, const char *value, size_t len,
                            nm_admission_fact *f, char *why, size_t whylen);
/* The fact's value into out (NM_ADMISSION_FACT_VALUE_MAX bytes). Returns its length, or
 * -EINVAL for a fact that would not parse back. */
int nm_admission_fact_format(const nm_admission_fact *f, char *out, size_t outlen);
/* Makes the fact on s. A revocation always wins: an invite that is revoked, or a key that
 * is, stays so, and revoking drops the record (the invite; the key's record, its name
 * freed). Returns 1 when s changed, 0 when it held the fact already, -EPERM for a key that
 * is revoked, -EEXIST for a key whose name another key holds, -EINVAL, -ENOSPC, -ENOMEM. */
int nm_admission_fact_apply(nm_admission_store *s, const nm_admission_fact *f);

#endif
