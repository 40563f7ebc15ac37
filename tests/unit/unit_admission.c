/* nm_admission: the admission decision in each mode, names, roles, revocation, and the
 * store file (round trip, corrupt files refused with file:line). */
#include "nm_admission.h"
#include "nm_error.h"
#include "nmt.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOW 1000000u

/* A distinct, valid fingerprint per n. */
static const char *fp(unsigned n) {
  static char buf[8][NM_SHA256_HEX_LEN + 1];
  static unsigned next;
  char *b = buf[next++ % 8];
  for (int i = 0; i < NM_SHA256_HEX_LEN; i++) b[i] = "0123456789abcdef"[(n >> (4 * (i % 8))) & 15];
  b[0] = 'f'; /* never all zeros */
  return b;
}

/* A secret per n, and its hash added to the store as an invite. */
static void secret_of(unsigned n, unsigned char out[NM_INVITE_SECRET_LEN]) {
  memset(out, 0, NM_INVITE_SECRET_LEN);
  out[0] = (unsigned char)n, out[1] = (unsigned char)(n >> 8), out[15] = 0x5a;
}

static void hash_of(unsigned n, char hash[NM_SHA256_HEX_LEN + 1]) {
  unsigned char sec[NM_INVITE_SECRET_LEN];
  secret_of(n, sec);
  NMT_EQ_INT(nm_invite_secret_hash(sec, hash), 0);
}

static void add_invite(nm_admission_store *s, unsigned n, uint64_t expires, nm_role role,
                       uint32_t max_uses) {
  char hash[NM_SHA256_HEX_LEN + 1];
  hash_of(n, hash);
  NMT_EQ_INT(nm_admission_add_invite(s, hash, expires, role, max_uses), 0);
}

typedef struct {
  nm_admission_request rq;
  unsigned char secret[NM_INVITE_SECRET_LEN];
} req;

/* A request: key k, name, role, secret of invite n (0: none). */
static req request(unsigned k, const char *name, nm_role role, unsigned invite) {
  req r;
  memset(&r, 0, sizeof r);
  r.rq.fingerprint = fp(k);
  r.rq.name = name;
  r.rq.role = role;
  r.rq.now = NOW;
  if (invite) secret_of(invite, r.secret);
  return r;
}

/* Decides and commits; returns the reason, checks admit matches the reason's kind. */
static nm_admission_reason admit(nm_admission_store *s, nm_admission_mode mode, req *r,
                                 nm_admission_decision *out) {
  nm_admission_decision d;
  r->rq.secret = memchr(r->secret, 0x5a, sizeof r->secret) ? r->secret : NULL;
  int rc = nm_admission_admit(s, mode, &r->rq, &d);
  NMT_CHECK(rc >= 0);
  NMT_EQ_INT(d.admit, d.reason <= NM_ADMIT_OPEN);
  if (out) *out = d;
  return d.reason;
}

static void test_names_of_things(void) {
  nm_admission_mode m;
  NMT_EQ_STR(nm_admission_mode_name(NM_ADMISSION_OPEN), "open");
  NMT_CHECK(nm_admission_mode_name((nm_admission_mode)9) == NULL);
  NMT_EQ_INT(nm_admission_mode_parse("allow", &m), 0);
  NMT_EQ_INT(m, NM_ADMISSION_ALLOW);
  NMT_EQ_INT(nm_admission_mode_parse("Open", &m), -EINVAL);
  NMT_EQ_INT(nm_admission_mode_parse(NULL, &m), -EINVAL);
  NMT_EQ_STR(nm_admission_reason_text(NM_REFUSE_INVITE_EXPIRED), "invite expired");
  NMT_EQ_STR(nm_admission_reason_text((nm_admission_reason)99), "?");
}

static void test_invite_mode(void) {
  nm_admission_store s;
  nm_admission_decision d;
  nm_admission_store_init(&s);
  add_invite(&s, 1, 0, NM_ROLE_SERVANT, 0);

  /* no secret: refused, and told why */
  req r = request(10, "alice", NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, &d), NM_REFUSE_NOT_INVITED);
  NMT_HAS(d.message, "refused: not invited");
  NMT_EQ_INT(s.nkeys, 0);

  /* a valid secret: admitted, remembered, the use counted */
  r = request(10, "alice", NM_ROLE_SERVANT, 1);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, &d), NM_ADMIT_INVITED);
  NMT_EQ_INT(d.role, NM_ROLE_SERVANT);
  NMT_EQ_INT(d.remember, 1);
  NMT_HAS(d.message, "admitted as servant: valid invite ");
  NMT_EQ_INT(s.nkeys, 1);
  NMT_EQ_INT(s.invites[0].uses, 1);
  const nm_admission_key *k = nm_admission_find_key(&s, fp(10));
  NMT_CHECK(k != NULL);
  if (k) {
    NMT_EQ_STR(k->name, "alice");
    NMT_CHECK(strncmp(k->via, s.invites[0].hash, NM_INVITE_ID_LEN) == 0);
  }

  /* rejoin without the secret: known, nothing to record */
  r = request(10, "alice", NM_ROLE_SERVANT, 0);
  nm_admission_decision d2;
  r.rq.secret = NULL;
  NMT_EQ_INT(nm_admission_decide(&s, NM_ADMISSION_INVITE, &r.rq, &d2), 0);
  NMT_EQ_INT(d2.reason, NM_ADMIT_KNOWN);
  NMT_EQ_INT(d2.remember, 0);
  NMT_EQ_INT(nm_admission_commit(&s, &r.rq, &d2), 0); /* unchanged: no save needed */
  /* with the (still valid) secret again: known, the use not counted twice */
  r = request(10, "alice", NM_ROLE_SERVANT, 1);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, NULL), NM_ADMIT_KNOWN);
  NMT_EQ_INT(s.invites[0].uses, 1);

  /* a second key with the same (unlimited) invite */
  r = request(11, "bob", NM_ROLE_SERVANT, 1);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, NULL), NM_ADMIT_INVITED);
  NMT_EQ_INT(s.invites[0].uses, 2);

  /* decide alone changes nothing */
  r = request(12, "carol", NM_ROLE_SERVANT, 1);
  r.rq.secret = r.secret;
  NMT_EQ_INT(nm_admission_decide(&s, NM_ADMISSION_INVITE, &r.rq, &d), 0);
  NMT_EQ_INT(d.admit, 1);
  NMT_EQ_INT(s.nkeys, 2);
  NMT_EQ_INT(s.invites[0].uses, 2);
  /* and commit of a refusal records nothing */
  d.admit = 0;
  NMT_EQ_INT(nm_admission_commit(&s, &r.rq, &d), 0);
  NMT_EQ_INT(s.nkeys, 2);

  /* a decision committed after the store or the request changed records nothing wrong:
   * carol's name was taken in between; the request's name was swapped for a bad one */
  NMT_EQ_INT(nm_admission_decide(&s, NM_ADMISSION_INVITE, &r.rq, &d), 0);
  NMT_EQ_INT(d.admit, 1);
  req other = request(13, "Carol", NM_ROLE_SERVANT, 1);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &other, NULL), NM_ADMIT_INVITED);
  NMT_EQ_INT(nm_admission_commit(&s, &r.rq, &d), -EEXIST);
  NMT_EQ_INT(s.nkeys, 3);
  NMT_EQ_INT(s.invites[0].uses, 3); /* not counted for the failed commit */
  r.rq.name = "this name is far too long for natmesh, and has blanks";
  NMT_EQ_INT(nm_admission_commit(&s, &r.rq, &d), -EINVAL);
  NMT_EQ_INT(s.nkeys, 3);
  nm_admission_store_close(&s);
}

static void test_invite_refusals(void) {
  nm_admission_store s;
  char err[200];
  nm_admission_store_init(&s);
  add_invite(&s, 1, NOW, NM_ROLE_SERVANT, 0);      /* expires exactly now */
  add_invite(&s, 2, NOW + 1, NM_ROLE_SERVANT, 1);  /* single use */
  add_invite(&s, 3, 0, NM_ROLE_SERVANT, 0);

  req r = request(10, "alice", NM_ROLE_SERVANT, 99); /* a secret no invite has */
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, NULL), NM_REFUSE_UNKNOWN_INVITE);
  r = request(10, "alice", NM_ROLE_SERVANT, 1);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, NULL), NM_REFUSE_INVITE_EXPIRED);
  r.rq.now = NOW - 1; /* a second earlier it was fine */
  nm_admission_decision d;
  r.rq.secret = r.secret;
  NMT_EQ_INT(nm_admission_decide(&s, NM_ADMISSION_INVITE, &r.rq, &d), 0);
  NMT_EQ_INT(d.reason, NM_ADMIT_INVITED);

  r = request(10, "alice", NM_ROLE_SERVANT, 2);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, NULL), NM_ADMIT_INVITED);
  r = request(11, "bob", NM_ROLE_SERVANT, 2);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, NULL), NM_REFUSE_INVITE_USED_UP);

  char hash[NM_SHA256_HEX_LEN + 1], id[NM_INVITE_ID_LEN + 1];
  hash_of(3, hash);
  memcpy(id, hash, NM_INVITE_ID_LEN);
  id[NM_INVITE_ID_LEN] = 0;
  NMT_EQ_INT(nm_admission_revoke_invite(&s, id, 0, NULL, err, sizeof err), 0);
  r = request(11, "bob", NM_ROLE_SERVANT, 3);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, &d), NM_REFUSE_INVITE_REVOKED);
  NMT_EQ_STR(d.message, "refused: invite revoked");
  /* a revoked invite cannot be added back */
  NMT_EQ_INT(nm_admission_add_invite(&s, hash, 0, NM_ROLE_SERVANT, 0), -EEXIST);
  nm_admission_store_close(&s);
}

static void test_roles(void) {
  nm_admission_store s;
  nm_admission_decision d;
  nm_admission_store_init(&s);
  add_invite(&s, 1, 0, NM_ROLE_SERVANT, 0);
  add_invite(&s, 2, 0, NM_ROLE_RELAY, 0);

  /* asking to be a relay is not a grant */
  req r = request(10, "r1", NM_ROLE_RELAY, 1);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, &d), NM_REFUSE_ROLE_NOT_GRANTED);
  NMT_HAS(d.message, "relay role is not granted");
  NMT_EQ_INT(s.nkeys, 0);
  /* a relay invite is */
  r = request(11, "r2", NM_ROLE_RELAY, 2);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, &d), NM_ADMIT_INVITED);
  NMT_EQ_INT(d.role, NM_ROLE_RELAY);
  NMT_EQ_INT(nm_admission_find_key(&s, fp(11))->role, NM_ROLE_RELAY);
  /* and it keeps the grant when it comes back, also running as a servant */
  r = request(11, "r2", NM_ROLE_RELAY, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, NULL), NM_ADMIT_KNOWN);
  r = request(11, "r2", NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, &d), NM_ADMIT_KNOWN);
  NMT_EQ_INT(d.role, NM_ROLE_SERVANT);
  NMT_EQ_INT(d.granted, NM_ROLE_RELAY);
  NMT_EQ_INT(nm_admission_find_key(&s, fp(11))->role, NM_ROLE_RELAY);

  /* a known servant key presenting a relay invite is raised to relay (the use counted) */
  r = request(12, "s1", NM_ROLE_SERVANT, 1);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, NULL), NM_ADMIT_INVITED);
  r = request(12, "s1", NM_ROLE_RELAY, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, NULL), NM_REFUSE_ROLE_NOT_GRANTED);
  r = request(12, "s1", NM_ROLE_RELAY, 2);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, &d), NM_ADMIT_INVITED);
  NMT_EQ_INT(d.remember, 1);
  NMT_EQ_INT(nm_admission_find_key(&s, fp(12))->role, NM_ROLE_RELAY);
  NMT_EQ_INT(s.invites[1].uses, 2);
  /* a known key whose secret is now worthless is still admitted on its record */
  r = request(12, "s1", NM_ROLE_RELAY, 77);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, NULL), NM_ADMIT_KNOWN);
  /* a relay key presenting a servant invite: known, no use counted, not lowered */
  r = request(11, "r2", NM_ROLE_RELAY, 1);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, NULL), NM_ADMIT_KNOWN);
  NMT_EQ_INT(s.invites[0].uses, 1);
  NMT_EQ_INT(nm_admission_find_key(&s, fp(11))->role, NM_ROLE_RELAY);
  nm_admission_store_close(&s);
}

static void test_allow_mode(void) {
  nm_admission_store s;
  nm_admission_decision d;
  nm_admission_store_init(&s);
  add_invite(&s, 1, 0, NM_ROLE_RELAY, 0);
  NMT_EQ_INT(nm_admission_allow_add(&s, fp(20), NM_ROLE_SERVANT), 0);
  NMT_EQ_INT(nm_admission_allow_add(&s, fp(21), NM_ROLE_RELAY), 0);
  NMT_EQ_INT(nm_admission_allow_add(&s, fp(21), NM_ROLE_RELAY), -EEXIST);
  NMT_EQ_INT(nm_admission_allow_add(&s, "xyz", NM_ROLE_RELAY), -EINVAL);
  NMT_EQ_INT(nm_admission_allow_add(&s, fp(22), (nm_role)5), -EINVAL);

  /* not listed: refused, a valid invite notwithstanding */
  req r = request(30, "x", NM_ROLE_SERVANT, 1);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_ALLOW, &r, &d), NM_REFUSE_NOT_ALLOWED);
  NMT_EQ_INT(s.invites[0].uses, 0);
  r = request(20, "a", NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_ALLOW, &r, &d), NM_ADMIT_ALLOWED);
  NMT_EQ_INT(d.remember, 1); /* remembered for its name */
  r = request(20, "a", NM_ROLE_RELAY, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_ALLOW, &r, NULL), NM_REFUSE_ROLE_NOT_GRANTED);
  r = request(21, "b", NM_ROLE_RELAY, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_ALLOW, &r, &d), NM_ADMIT_ALLOWED);
  NMT_EQ_INT(d.role, NM_ROLE_RELAY);

  /* a key admitted in invite mode as a relay, then the overlay switches to allow mode with
   * it listed as a servant: the list decides, and the record follows */
  r = request(20, "a", NM_ROLE_RELAY, 1);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, NULL), NM_ADMIT_INVITED);
  NMT_EQ_INT(nm_admission_find_key(&s, fp(20))->role, NM_ROLE_RELAY);
  r = request(20, "a", NM_ROLE_RELAY, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_ALLOW, &r, NULL), NM_REFUSE_ROLE_NOT_GRANTED);
  r = request(20, "a", NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_ALLOW, &r, &d), NM_ADMIT_ALLOWED);
  NMT_EQ_INT(d.remember, 1);
  NMT_EQ_INT(nm_admission_find_key(&s, fp(20))->role, NM_ROLE_SERVANT);
  /* a remembered key that is not listed: refused in allow mode */
  r = request(31, "c", NM_ROLE_SERVANT, 1);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, NULL), NM_ADMIT_INVITED);
  r = request(31, "c", NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_ALLOW, &r, NULL), NM_REFUSE_NOT_ALLOWED);

  /* listed keys are admitted in invite mode without a secret, as listed */
  r = request(21, "b", NM_ROLE_RELAY, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, NULL), NM_ADMIT_ALLOWED);
  nm_admission_store_close(&s);
}

static void test_open_mode(void) {
  nm_admission_store s;
  nm_admission_decision d;
  char err[200];
  nm_admission_store_init(&s);
  add_invite(&s, 2, 0, NM_ROLE_RELAY, 0);
  NMT_EQ_INT(nm_admission_allow_add(&s, fp(21), NM_ROLE_RELAY), 0);

  req r = request(40, "o1", NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_OPEN, &r, &d), NM_ADMIT_OPEN);
  NMT_EQ_STR(d.message, "admitted as servant: open overlay");
  NMT_EQ_INT(d.remember, 1);
  r = request(40, "o1", NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_OPEN, &r, NULL), NM_ADMIT_KNOWN);
  /* open is not a relay grant */
  r = request(41, "o2", NM_ROLE_RELAY, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_OPEN, &r, NULL), NM_REFUSE_ROLE_NOT_GRANTED);
  /* an unknown secret does not stop an open admission */
  r = request(41, "o2", NM_ROLE_SERVANT, 99);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_OPEN, &r, NULL), NM_ADMIT_OPEN);
  /* the allow list and relay invites grant the role in open mode too */
  r = request(21, "o3", NM_ROLE_RELAY, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_OPEN, &r, NULL), NM_ADMIT_ALLOWED);
  r = request(42, "o4", NM_ROLE_RELAY, 2);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_OPEN, &r, NULL), NM_ADMIT_INVITED);
  /* a revoked key is refused even in an open overlay, even allow-listed */
  NMT_EQ_INT(nm_admission_revoke_key(&s, fp(40), err, sizeof err), 0);
  r = request(40, "o1", NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_OPEN, &r, &d), NM_REFUSE_KEY_REVOKED);
  NMT_EQ_STR(d.message, "refused: key revoked");
  NMT_EQ_INT(nm_admission_revoke_key(&s, fp(21), err, sizeof err), 0);
  r = request(21, "o3", NM_ROLE_RELAY, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_OPEN, &r, NULL), NM_REFUSE_KEY_REVOKED);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_ALLOW, &r, NULL), NM_REFUSE_KEY_REVOKED);
  nm_admission_store_close(&s);
}

static void test_names(void) {
  nm_admission_store s;
  nm_admission_decision d;
  char err[200];
  nm_admission_store_init(&s);
  req r = request(1, "bob", NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_OPEN, &r, NULL), NM_ADMIT_OPEN);
  /* another key, the same name: refused with the name in the message */
  r = request(2, "bob", NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_OPEN, &r, &d), NM_REFUSE_NAME_TAKEN);
  NMT_EQ_STR(d.message, "refused: name \"bob\" is taken by another key");
  NMT_EQ_INT(s.nkeys, 1);
  /* ... or the same name in other case */
  r = request(2, "BoB", NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_OPEN, &r, NULL), NM_REFUSE_NAME_TAKEN);
  /* the same key keeps its name */
  r = request(1, "bob", NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_OPEN, &r, &d), NM_ADMIT_KNOWN);
  NMT_EQ_INT(d.remember, 0);
  /* and may take a free one, releasing the old */
  r = request(1, "robert", NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_OPEN, &r, &d), NM_ADMIT_KNOWN);
  NMT_EQ_INT(d.remember, 1);
  NMT_EQ_STR(nm_admission_find_key(&s, fp(1))->name, "robert");
  r = request(2, "bob", NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_OPEN, &r, NULL), NM_ADMIT_OPEN);
  /* not one that is taken */
  r = request(1, "Bob", NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_OPEN, &r, NULL), NM_REFUSE_NAME_TAKEN);
  NMT_EQ_STR(nm_admission_find_key(&s, fp(1))->name, "robert");
  /* a revoked key's name is free again */
  NMT_EQ_INT(nm_admission_revoke_key(&s, fp(2), err, sizeof err), 0);
  r = request(3, "bob", NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_OPEN, &r, NULL), NM_ADMIT_OPEN);
  nm_admission_store_close(&s);
}

static void test_bad_requests(void) {
  nm_admission_store s;
  nm_admission_decision d;
  nm_admission_store_init(&s);
  char upper[NM_SHA256_HEX_LEN + 1];
  snprintf(upper, sizeof upper, "%s", fp(1));
  upper[3] = 'A';
  const char *bad_fps[] = {upper, "abcd", "", NULL};
  for (size_t i = 0; i < sizeof bad_fps / sizeof bad_fps[0]; i++) {
    req r = request(1, "ok", NM_ROLE_SERVANT, 0);
    r.rq.fingerprint = bad_fps[i];
    NMT_EQ_INT(admit(&s, NM_ADMISSION_OPEN, &r, &d), NM_REFUSE_BAD_REQUEST);
  }
  const char *bad_names[] = {"", "a b", "x123456789012345678901234567890123", "\xc3\xa9", NULL};
  for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
    req r = request(1, bad_names[i], NM_ROLE_SERVANT, 0);
    NMT_EQ_INT(admit(&s, NM_ADMISSION_OPEN, &r, NULL), NM_REFUSE_BAD_REQUEST);
  }
  req r = request(1, "ok", (nm_role)3, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_OPEN, &r, NULL), NM_REFUSE_BAD_REQUEST);
  r = request(1, "ok", NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(nm_admission_decide(&s, (nm_admission_mode)7, &r.rq, &d), 0);
  NMT_EQ_INT(d.reason, NM_REFUSE_BAD_REQUEST);
  NMT_EQ_INT(nm_admission_decide(NULL, NM_ADMISSION_OPEN, &r.rq, &d), -EINVAL);
  NMT_EQ_INT(nm_admission_decide(&s, NM_ADMISSION_OPEN, NULL, &d), -EINVAL);
  NMT_EQ_INT(nm_admission_admit(&s, NM_ADMISSION_OPEN, &r.rq, NULL), -EINVAL);
  NMT_EQ_INT(s.nkeys, 0);
  char hash[NM_SHA256_HEX_LEN + 1];
  hash_of(1, hash);
  NMT_EQ_INT(nm_admission_add_invite(&s, "abc", 0, NM_ROLE_SERVANT, 0), -EINVAL);
  NMT_EQ_INT(nm_admission_add_invite(&s, hash, 0, (nm_role)4, 0), -EINVAL);
  NMT_EQ_INT(nm_admission_add_invite(&s, hash, 0, NM_ROLE_SERVANT, 0), 0);
  NMT_EQ_INT(nm_admission_add_invite(&s, hash, 0, NM_ROLE_SERVANT, 0), -EEXIST);
  nm_admission_store_close(&s);
}

static void test_revocation(void) {
  nm_admission_store s;
  char err[200], hash[NM_SHA256_HEX_LEN + 1];
  size_t n = 99;
  nm_admission_store_init(&s);
  add_invite(&s, 1, 0, NM_ROLE_SERVANT, 0);
  add_invite(&s, 2, 0, NM_ROLE_SERVANT, 0);
  for (unsigned k = 10; k < 13; k++) {
    char name[8];
    snprintf(name, sizeof name, "k%u", k);
    req r = request(k, name, NM_ROLE_SERVANT, k == 12 ? 2 : 1);
    NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, NULL), NM_ADMIT_INVITED);
  }
  hash_of(1, hash);

  /* ids: too short, not hex, unknown */
  NMT_EQ_INT(nm_admission_revoke_invite(&s, "abc", 0, &n, err, sizeof err), -EINVAL);
  NMT_HAS(err, "at least 8");
  NMT_EQ_INT(nm_admission_revoke_invite(&s, "ABCDEF012", 0, &n, err, sizeof err), -EINVAL);
  NMT_EQ_INT(nm_admission_revoke_invite(&s, "0000000000", 0, &n, err, sizeof err), -ENOENT);
  NMT_HAS(err, "no invite with id 0000000000");
  /* ambiguous: two invites share a prefix (made so by hand) */
  char twin[NM_SHA256_HEX_LEN + 1];
  memcpy(twin, hash, sizeof twin);
  twin[NM_SHA256_HEX_LEN - 1] = twin[NM_SHA256_HEX_LEN - 1] == '0' ? '1' : '0';
  NMT_EQ_INT(nm_admission_add_invite(&s, twin, 0, NM_ROLE_SERVANT, 0), 0);
  char prefix[20];
  snprintf(prefix, sizeof prefix, "%.12s", hash);
  NMT_EQ_INT(nm_admission_revoke_invite(&s, prefix, 0, &n, err, sizeof err), -EINVAL);
  NMT_HAS(err, "ambiguous (2 invites)");
  /* the full hash is exact; also_keys takes out the two keys it admitted, not the third */
  NMT_EQ_INT(nm_admission_revoke_invite(&s, hash, 1, &n, err, sizeof err), 0);
  NMT_EQ_INT(n, 2);
  NMT_CHECK(nm_admission_find_key(&s, fp(10)) == NULL);
  NMT_CHECK(nm_admission_find_key(&s, fp(11)) == NULL);
  NMT_CHECK(nm_admission_find_key(&s, fp(12)) != NULL);
  NMT_EQ_INT(s.nrevoked, 1);
  NMT_EQ_INT(s.nrevoked_keys, 2);
  req r = request(10, "k10", NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, NULL), NM_REFUSE_KEY_REVOKED);
  NMT_EQ_INT(nm_admission_revoke_invite(&s, prefix, 0, &n, err, sizeof err), 0); /* the twin */
  NMT_EQ_INT(nm_admission_revoke_invite(&s, prefix, 0, &n, err, sizeof err), -ENOENT);
  NMT_HAS(err, "already revoked");

  /* keys: by prefix of an admitted key, unknown prefix, ambiguous prefix, a full
   * fingerprint never seen (banned before it shows up), twice */
  NMT_EQ_INT(nm_admission_revoke_key(&s, "f0f0f0f0f0", err, sizeof err), -ENOENT);
  NMT_HAS(err, "no admitted key starts with");
  NMT_EQ_INT(nm_admission_revoke_key(&s, "abc", err, sizeof err), -EINVAL);
  r = request(13, "k13", NM_ROLE_SERVANT, 2);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, NULL), NM_ADMIT_INVITED);
  /* fp(12) and fp(13) share "f0000000" */
  NMT_EQ_INT(nm_admission_revoke_key(&s, "f0000000", err, sizeof err), -EINVAL);
  NMT_HAS(err, "ambiguous (2 keys)");
  char p12[20];
  snprintf(p12, sizeof p12, "%.16s", fp(12));
  NMT_EQ_INT(nm_admission_revoke_key(&s, p12, err, sizeof err), 0);
  NMT_CHECK(nm_admission_find_key(&s, fp(12)) == NULL);
  NMT_EQ_INT(nm_admission_revoke_key(&s, fp(12), err, sizeof err), -EEXIST);
  NMT_EQ_INT(nm_admission_revoke_key(&s, fp(500), err, sizeof err), 0);
  r = request(500, "late", NM_ROLE_SERVANT, 2);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, NULL), NM_REFUSE_KEY_REVOKED);
  nm_admission_store_close(&s);
}

static void test_bounds_and_prune(void) {
  nm_admission_store s;
  char err[200], hash[NM_SHA256_HEX_LEN + 1];
  nm_admission_decision d;
  nm_admission_store_init(&s);
  NMT_EQ_INT(s.keys_max, NM_ADMISSION_KEYS_MAX);
  s.keys_max = 3, s.invites_max = 2, s.revoked_max = 1, s.allow_max = 1;
  add_invite(&s, 1, NOW + 10, NM_ROLE_SERVANT, 0);
  add_invite(&s, 2, 0, NM_ROLE_SERVANT, 0);
  hash_of(3, hash);
  NMT_EQ_INT(nm_admission_add_invite(&s, hash, 0, NM_ROLE_SERVANT, 0), -ENOSPC);
  NMT_EQ_INT(nm_admission_allow_add(&s, fp(1), NM_ROLE_SERVANT), 0);
  NMT_EQ_INT(nm_admission_allow_add(&s, fp(2), NM_ROLE_SERVANT), -ENOSPC);
  for (unsigned k = 0; k < 3; k++) {
    char name[8];
    snprintf(name, sizeof name, "n%u", k);
    req r = request(100 + k, name, NM_ROLE_SERVANT, 2);
    NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, NULL), NM_ADMIT_INVITED);
  }
  req r = request(200, "n9", NM_ROLE_SERVANT, 2);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, &d), NM_REFUSE_STORE_FULL);
  NMT_HAS(d.message, "no room");
  /* known keys still get in at a full store */
  r = request(101, "n1", NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, NULL), NM_ADMIT_KNOWN);
  /* one revocation fits, the second does not, and the invite stays valid then */
  char id[20];
  hash_of(2, hash);
  snprintf(id, sizeof id, "%.16s", hash);
  NMT_EQ_INT(nm_admission_revoke_key(&s, fp(100), err, sizeof err), 0);
  NMT_EQ_INT(nm_admission_revoke_key(&s, fp(101), err, sizeof err), -ENOSPC);
  hash_of(1, hash);
  snprintf(id, sizeof id, "%.16s", hash);
  NMT_EQ_INT(nm_admission_revoke_invite(&s, id, 0, NULL, err, sizeof err), 0);
  hash_of(2, hash);
  snprintf(id, sizeof id, "%.16s", hash);
  NMT_EQ_INT(nm_admission_revoke_invite(&s, id, 0, NULL, err, sizeof err), -ENOSPC);
  NMT_HAS(err, "cannot revoke invite");
  NMT_EQ_INT(s.ninvites, 1);
  /* prune drops expired invites only */
  s.invites_max = 4;
  add_invite(&s, 5, NOW, NM_ROLE_SERVANT, 0);
  add_invite(&s, 6, NOW + 1, NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(nm_admission_prune(&s, NOW), 1);
  NMT_EQ_INT(s.ninvites, 2);
  NMT_EQ_INT(nm_admission_prune(&s, NOW + 1), 1);
  NMT_EQ_INT(nm_admission_prune(&s, UINT64_MAX), 0); /* invite 2 never expires */
  nm_admission_store_close(&s);

  /* revoking an invite and its keys with room for one key: the invite is revoked, the
   * first key too, and the error says that not all were */
  size_t n = 0;
  nm_admission_store_init(&s);
  s.revoked_max = 1;
  add_invite(&s, 1, 0, NM_ROLE_SERVANT, 0);
  r = request(1, "a", NM_ROLE_SERVANT, 1);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, NULL), NM_ADMIT_INVITED);
  r = request(2, "b", NM_ROLE_SERVANT, 1);
  NMT_EQ_INT(admit(&s, NM_ADMISSION_INVITE, &r, NULL), NM_ADMIT_INVITED);
  hash_of(1, hash);
  NMT_EQ_INT(nm_admission_revoke_invite(&s, hash, 1, &n, err, sizeof err), -ENOSPC);
  NMT_HAS(err, "revoked, but not all of its keys");
  NMT_EQ_INT(n, 1);
  NMT_EQ_INT(s.nrevoked, 1);
  NMT_EQ_INT(s.ninvites, 0);
  NMT_EQ_INT(s.nkeys, 1);
  nm_admission_store_close(&s);
}

/* ---- the file ----------------------------------------------------------------------------- */

static char dir[64];

static const char *path_in(const char *name) {
  static char p[128];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return p;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  NMT_CHECK(f != NULL);
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

static void test_save_load(void) {
  nm_admission_store a, b;
  char err[300], path[128];
  struct stat st;
  nm_admission_store_init(&a);
  nm_admission_store_init(&b);
  snprintf(path, sizeof path, "%s", path_in("admission"));
  add_invite(&a, 1, 0, NM_ROLE_SERVANT, 0);
  add_invite(&a, 2, 1767225600, NM_ROLE_RELAY, 3);
  add_invite(&a, 3, 5, NM_ROLE_SERVANT, 1);
  req r = request(10, "alice", NM_ROLE_SERVANT, 2);
  NMT_EQ_INT(admit(&a, NM_ADMISSION_INVITE, &r, NULL), NM_ADMIT_INVITED);
  r = request(11, "Bob.B-1_x", NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(admit(&a, NM_ADMISSION_OPEN, &r, NULL), NM_ADMIT_OPEN);
  char id[20], hash[NM_SHA256_HEX_LEN + 1];
  hash_of(3, hash);
  snprintf(id, sizeof id, "%.16s", hash);
  NMT_EQ_INT(nm_admission_revoke_invite(&a, id, 0, NULL, err, sizeof err), 0);
  NMT_EQ_INT(nm_admission_revoke_key(&a, fp(77), err, sizeof err), 0);
  NMT_EQ_INT(nm_admission_allow_add(&a, fp(88), NM_ROLE_RELAY), 0);

  NMT_EQ_INT(nm_admission_store_save(&a, path, err, sizeof err), 0);
  NMT_EQ_INT(stat(path, &st), 0);
  NMT_EQ_INT(st.st_mode & 0777, 0600);
  NMT_CHECK(access(path_in("admission.tmp"), F_OK) != 0); /* no leftover */

  /* b has an allow list of its own (from its config): loading keeps it */
  NMT_EQ_INT(nm_admission_allow_add(&b, fp(99), NM_ROLE_SERVANT), 0);
  NMT_EQ_INT(nm_admission_store_load(&b, path, err, sizeof err), 0);
  NMT_EQ_INT(b.ninvites, 2);
  NMT_EQ_INT(b.nkeys, 2);
  NMT_EQ_INT(b.nrevoked, 1);
  NMT_EQ_INT(b.nrevoked_keys, 1);
  NMT_EQ_INT(b.nallow, 1);
  NMT_EQ_STR(b.allow[0].fingerprint, fp(99));
  int same = b.ninvites == a.ninvites && b.nkeys == a.nkeys;
  for (size_t i = 0; same && i < a.ninvites; i++)
    same = memcmp(&a.invites[i], &b.invites[i], sizeof a.invites[i]) == 0;
  for (size_t i = 0; same && i < a.nkeys; i++)
    same = memcmp(&a.keys[i], &b.keys[i], sizeof a.keys[i]) == 0;
  NMT_CHECK(same);
  NMT_EQ_STR(b.revoked[0], hash);
  NMT_EQ_STR(b.revoked_keys[0], fp(77));
  NMT_EQ_INT(b.invites[1].uses, 1);
  NMT_EQ_INT(b.invites[1].max_uses, 3);
  NMT_EQ_INT(b.invites[1].expires, 1767225600);
  NMT_EQ_INT(b.invites[1].role, NM_ROLE_RELAY);
  NMT_CHECK(b.keys[0].via[0] != 0);
  NMT_EQ_STR(b.keys[1].via, "");
  /* the loaded store decides as the saved one did */
  r = request(10, "alice", NM_ROLE_RELAY, 0);
  NMT_EQ_INT(admit(&b, NM_ADMISSION_INVITE, &r, NULL), NM_ADMIT_KNOWN);
  r = request(12, "alice", NM_ROLE_SERVANT, 1);
  NMT_EQ_INT(admit(&b, NM_ADMISSION_INVITE, &r, NULL), NM_REFUSE_NAME_TAKEN);
  r = request(12, "carol", NM_ROLE_SERVANT, 3);
  NMT_EQ_INT(admit(&b, NM_ADMISSION_INVITE, &r, NULL), NM_REFUSE_INVITE_REVOKED);
  /* saving again gives the same bytes as saving a (one spelling, stable order) */
  nm_admission_store c;
  nm_admission_store_init(&c);
  NMT_EQ_INT(nm_admission_store_load(&c, path, err, sizeof err), 0);
  NMT_EQ_INT(nm_admission_store_save(&c, path_in("again"), err, sizeof err), 0);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "cmp -s %s %s", path, path_in("again"));
  NMT_EQ_INT(system(cmd), 0);
  /* the file is what the header comment documents */
  FILE *f = fopen(path, "r");
  char text[4096] = "";
  size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
  text[n] = 0;
  if (f) fclose(f);
  NMT_HAS(text, "\nadmitted ");
  NMT_HAS(text, " alice relay "); /* invite 2 granted it */
  NMT_HAS(text, " Bob.B-1_x servant -\n");
  NMT_HAS(text, " 1767225600 relay 1 3\n");
  NMT_HAS(text, "\nrevoked-key ");

  /* a missing file: -ENOENT, the store emptied but its allow list kept */
  NMT_EQ_INT(nm_admission_store_load(&b, path_in("none"), err, sizeof err), -ENOENT);
  NMT_EQ_INT(b.ninvites + b.nkeys + b.nrevoked + b.nrevoked_keys, 0);
  NMT_EQ_INT(b.nallow, 1);
  /* an unwritable place: an error naming the path */
  NMT_CHECK(nm_admission_store_save(&a, "/nonexistent-dir/admission", err, sizeof err) < 0);
  NMT_HAS(err, "/nonexistent-dir/admission");
  nm_admission_store_close(&a);
  nm_admission_store_close(&b);
  nm_admission_store_close(&c);
}

static void test_corrupt_files(void) {
  char h1[NM_SHA256_HEX_LEN + 1], h2[NM_SHA256_HEX_LEN + 1], f1[NM_SHA256_HEX_LEN + 1];
  hash_of(1, h1);
  hash_of(2, h2);
  snprintf(f1, sizeof f1, "%s", fp(1));
  char good[400];
  snprintf(good, sizeof good,
           "# a comment\n\n  \t\ninvite %s 0 servant 0 0\nadmitted %s alice relay -\n", h1, f1);
  /* Each case: the file's text and the message expected, line number included. */
  struct {
    char text[1400];
    const char *why;
  } cases[24];
  size_t n = 0;
#define CASE(why_, ...)                                                                       \
  (snprintf(cases[n].text, sizeof cases[n].text, __VA_ARGS__), cases[n++].why = (why_))
  CASE(":6: unknown entry \"invited\"", "%sinvited %s 0 servant 0 0\n", good, h2);
  CASE(":6: invite takes 5 fields, found 4", "%sinvite %s 0 servant 0\n", good, h2);
  CASE(":6: invite takes 5 fields, found more", "%sinvite %s 0 servant 0 0 1 2 3\n", good, h2);
  CASE(":6: bad secret hash", "%sinvite %.63s 0 servant 0 0\n", good, h2);
  CASE(":6: bad expiry", "%sinvite %s -1 servant 0 0\n", good, h2);
  CASE(":6: bad role", "%sinvite %s 0 admin 0 0\n", good, h2);
  CASE(":6: bad uses", "%sinvite %s 0 servant 4294967296 0\n", good, h2);
  CASE(":6: bad max-uses", "%sinvite %s 0 servant 0 x\n", good, h2);
  CASE(":6: uses above max-uses", "%sinvite %s 0 servant 3 2\n", good, h2);
  CASE(":6: invite appears twice", "%sinvite %s 5 servant 0 0\n", good, h1);
  CASE(":6: revoked secret appears twice, or conflicts", "%srevoked %s\n", good, h1);
  CASE(":7: invite appears twice, or conflicts", "%srevoked %s\ninvite %s 0 servant 0 0\n", good,
       h2, h2);
  CASE(":6: bad fingerprint", "%sadmitted %s bob servant -\n", good, "zz");
  CASE(":6: bad name", "%sadmitted %s b/ob servant -\n", good, fp(2));
  CASE(":6: name \"ALICE\" held by two keys", "%sadmitted %s ALICE servant -\n", good, fp(2));
  CASE(":6: key appears twice", "%sadmitted %s bob servant -\n", good, f1);
  CASE(":6: bad invite id", "%sadmitted %s bob servant 12345\n", good, fp(2));
  CASE(":6: key both admitted and revoked", "%srevoked-key %s\n", good, f1);
  CASE(":7: key appears twice, or conflicts", "%srevoked-key %s\nadmitted %s bob servant -\n",
       good, fp(2), fp(2));
  CASE(":6: control character (0x0d)", "%srevoked %s\r\n", good, h2);
  CASE(":4: bad role", "# x\n\n\ninvite %s 0 Servant 0 0\n", h2);
  CASE(":1: bad name", "admitted %s %s servant -\n", f1, "x123456789012345678901234567890123");
#undef CASE
  char err[300], path[128];
  snprintf(path, sizeof path, "%s", path_in("corrupt"));
  for (size_t i = 0; i < n; i++) {
    nm_admission_store s;
    nm_admission_store_init(&s);
    add_invite(&s, 9, 0, NM_ROLE_SERVANT, 0); /* what the store held before */
    write_file(path, cases[i].text);
    err[0] = 0;
    int rc = nm_admission_store_load(&s, path, err, sizeof err);
    char want[200];
    snprintf(want, sizeof want, "%s%s", path, cases[i].why);
    if (rc != NM_ECONFIG || !strstr(err, want))
      fprintf(stderr, "       case %zu: rc %d, \"%s\", want \"%s\"\n", i, rc, err, want);
    NMT_EQ_INT(rc, NM_ECONFIG);
    NMT_HAS(err, want);
    /* the store is as it was */
    NMT_EQ_INT(s.ninvites, 1);
    NMT_EQ_INT(s.nkeys, 0);
    nm_admission_store_close(&s);
  }

  /* the good part alone loads */
  nm_admission_store s;
  nm_admission_store_init(&s);
  write_file(path, good);
  NMT_EQ_INT(nm_admission_store_load(&s, path, err, sizeof err), 0);
  NMT_EQ_INT(s.nkeys, 1);
  /* a line too long, a NUL byte, a file too big, more entries than the bounds allow */
  char *big = malloc(NM_ADMISSION_FILE_MAX + 2);
  memset(big, '#', 600);
  big[600] = 0;
  write_file(path, big);
  NMT_EQ_INT(nm_admission_store_load(&s, path, err, sizeof err), NM_ECONFIG);
  NMT_HAS(err, ":1: line longer than 512 characters");
  FILE *f = fopen(path, "w");
  fwrite("# a\0b\n", 1, 6, f);
  fclose(f);
  NMT_EQ_INT(nm_admission_store_load(&s, path, err, sizeof err), NM_ECONFIG);
  NMT_HAS(err, "binary data");
  memset(big, '\n', NM_ADMISSION_FILE_MAX + 1);
  big[NM_ADMISSION_FILE_MAX + 1] = 0;
  write_file(path, big);
  NMT_EQ_INT(nm_admission_store_load(&s, path, err, sizeof err), NM_ECONFIG);
  NMT_HAS(err, "larger than the admission store's limit");
  free(big);
  s.invites_max = 1;
  snprintf(good, sizeof good, "invite %s 0 servant 0 0\ninvite %s 0 servant 0 0\n", h1, h2);
  write_file(path, good);
  NMT_EQ_INT(nm_admission_store_load(&s, path, err, sizeof err), NM_ECONFIG);
  NMT_HAS(err, ":2: too many entries of this kind");
  NMT_EQ_INT(s.nkeys, 1); /* still the good store */
  /* an unreadable path: -errno and the path */
  NMT_EQ_INT(nm_admission_store_load(&s, dir, err, sizeof err), -EISDIR);
  NMT_HAS(err, dir);
  nm_admission_store_close(&s);
}

/* Mutations of a valid store file: each either loads (and then saves to a file that loads
 * to the same store: the save is canonical) or is refused with "path:line: reason"; never a
 * crash or a read out of bounds (ASan watches). */
static void read_all(const char *path, char *buf, size_t size) {
  FILE *f = fopen(path, "r");
  size_t n = f ? fread(buf, 1, size - 1, f) : 0;
  buf[n] = 0;
  if (f) fclose(f);
}

static void test_file_mutations(void) {
  nm_admission_store s;
  char err[300], text[4096], mutated[4200], again[4200], back[4200], path[128], path2[128];
  nm_admission_store_init(&s);
  add_invite(&s, 1, 0, NM_ROLE_SERVANT, 0);
  add_invite(&s, 2, 77, NM_ROLE_RELAY, 2);
  req r = request(10, "alice", NM_ROLE_SERVANT, 2);
  admit(&s, NM_ADMISSION_INVITE, &r, NULL);
  r = request(11, "bob", NM_ROLE_SERVANT, 0);
  admit(&s, NM_ADMISSION_OPEN, &r, NULL);
  nm_admission_revoke_key(&s, fp(12), err, sizeof err);
  snprintf(path, sizeof path, "%s", path_in("mutated"));
  snprintf(path2, sizeof path2, "%s", path_in("resaved"));
  NMT_EQ_INT(nm_admission_store_save(&s, path, err, sizeof err), 0);
  read_all(path, text, sizeof text);
  nm_admission_store_close(&s);

  const char alphabet[] = "0123456789abcdef \t\n#-Aaz";
  uint64_t x = 0x2545f4914f6cdd1dull;
  int loaded = 0, refused = 0, bad = 0;
  for (int i = 0; i < 1000; i++) {
    snprintf(mutated, sizeof mutated, "%s", text);
    for (int m = 0; m < 1 + i % 2; m++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      size_t len = strlen(mutated), at = (size_t)(x >> 8) % (len + 1);
      char c = alphabet[(x >> 40) % (sizeof alphabet - 1)];
      if (x % 3 == 0 && at < len) mutated[at] = c;
      else if (x % 3 == 1 && at < len) memmove(mutated + at, mutated + at + 1, len - at);
      else if (len + 1 < sizeof mutated) {
        memmove(mutated + at + 1, mutated + at, len - at + 1);
        mutated[at] = c;
      }
    }
    write_file(path, mutated);
    nm_admission_store_init(&s);
    int rc = nm_admission_store_load(&s, path, err, sizeof err);
    if (rc == 0 && loaded++ % 40 == 0) {
      /* save, load, save: the two saved files are the same bytes (for every 40th: each
       * save waits for two fsyncs) */
      nm_admission_store t;
      nm_admission_store_init(&t);
      if (nm_admission_store_save(&s, path2, err, sizeof err) != 0) bad++;
      read_all(path2, again, sizeof again);
      if (nm_admission_store_load(&t, path2, err, sizeof err) != 0) bad++;
      if (nm_admission_store_save(&t, path2, err, sizeof err) != 0) bad++;
      read_all(path2, back, sizeof back);
      if (strcmp(again, back) != 0) bad++;
      nm_admission_store_close(&t);
    } else if (rc != 0) {
      refused++;
      char want[160];
      snprintf(want, sizeof want, "%s:", path);
      if (rc != NM_ECONFIG || strncmp(err, want, strlen(want)) != 0) {
        if (bad++ < 3) fprintf(stderr, "       rc %d: %s\n", rc, err);
      }
    }
    nm_admission_store_close(&s);
  }
  printf("       %d mutated files loaded, %d refused\n", loaded, refused);
  NMT_EQ_INT(bad, 0);
  NMT_CHECK(loaded > 50 && refused > 50);
}

/* Keys and names are found by index: after a revocation moves the last record into the
 * hole, after a rename, and in a store read back from its file. */
static void test_indexes_follow_the_tables(void) {
  nm_admission_store s;
  nm_admission_store_init(&s);
  enum { N = 3000 };
  char name[40];
  for (unsigned k = 1; k <= N; k++) {
    snprintf(name, sizeof name, "Node%u", k);
    NMT_EQ_INT(nm_admission_remember(&s, fp(k), name, NM_ROLE_SERVANT, ""), 1);
  }
  NMT_EQ_INT(nm_admission_remember(&s, fp(7), "Node7", NM_ROLE_SERVANT, ""), 0); /* held */
  NMT_EQ_INT(nm_admission_remember(&s, fp(N + 1), "node7", NM_ROLE_SERVANT, ""), -EEXIST);
  char err[200];
  NMT_EQ_INT(nm_admission_revoke_key(&s, fp(10), err, sizeof err), 0); /* key N moves to 10's place */
  NMT_EQ_INT(nm_admission_key_is_revoked(&s, fp(10)), 1);
  NMT_EQ_INT(nm_admission_remember(&s, fp(10), "again", NM_ROLE_SERVANT, ""), -EPERM);
  NMT_CHECK(nm_admission_find_key(&s, fp(10)) == NULL);
  const nm_admission_key *moved = nm_admission_find_key(&s, fp(N));
  NMT_CHECK(moved && strcmp(moved->name, "Node3000") == 0);
  /* Its name is still held, and 10's is free. */
  nm_admission_decision d;
  req r = request(N + 2, "node3000", NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(nm_admission_decide(&s, NM_ADMISSION_OPEN, &r.rq, &d), 0);
  NMT_EQ_INT(d.reason, NM_REFUSE_NAME_TAKEN);
  r = request(N + 2, "node10", NM_ROLE_SERVANT, 0);
  NMT_EQ_INT(nm_admission_decide(&s, NM_ADMISSION_OPEN, &r.rq, &d), 0);
  NMT_CHECK(d.admit);
  /* A rename frees the old name and takes the new one. */
  NMT_EQ_INT(nm_admission_remember(&s, fp(5), "renamed", NM_ROLE_SERVANT, ""), 1);
  NMT_EQ_INT(nm_admission_remember(&s, fp(N + 3), "Node5", NM_ROLE_SERVANT, ""), 1);
  NMT_EQ_INT(nm_admission_remember(&s, fp(N + 4), "RENAMED", NM_ROLE_SERVANT, ""), -EEXIST);
  /* Every record is found by its key and its name. */
  size_t found = 0;
  for (size_t i = 0; i < s.nkeys; i++) {
    const nm_admission_key *k = nm_admission_find_key(&s, s.keys[i].fingerprint);
    if (k == &s.keys[i]) found++;
  }
  NMT_EQ_INT(found, s.nkeys);
  /* Read back from its file, the store finds the same. */
  char path[] = "/tmp/nmt_admidx_XXXXXX";
  int fd = mkstemp(path);
  NMT_CHECK(fd >= 0);
  close(fd);
  NMT_EQ_INT(nm_admission_store_save(&s, path, err, sizeof err), 0);
  nm_admission_store t;
  nm_admission_store_init(&t);
  NMT_EQ_INT(nm_admission_store_load(&t, path, err, sizeof err), 0);
  NMT_EQ_INT(t.nkeys, s.nkeys);
  NMT_EQ_INT(nm_admission_key_is_revoked(&t, fp(10)), 1);
  NMT_CHECK(nm_admission_find_key(&t, fp(N)) != NULL);
  NMT_EQ_INT(nm_admission_remember(&t, fp(N + 9), "renamed", NM_ROLE_SERVANT, ""), -EEXIST);
  unlink(path);
  nm_admission_store_close(&t);
  nm_admission_store_close(&s);
}

/* Facts (issue 14): formatted, parsed back the same; hostile ones refused with a reason;
 * applied, a revocation always wins. */
static void test_facts(void) {
  nm_admission_fact f, g;
  char v[NM_ADMISSION_FACT_VALUE_MAX], why[160], hash[NM_SHA256_HEX_LEN + 1];
  hash_of(7, hash);
  /* round trips */
  memset(&f, 0, sizeof f);
  f.kind = NM_ADMISSION_FACT_INVITE, f.expires = 1234567, f.role = NM_ROLE_RELAY, f.max_uses = 3;
  memcpy(f.hex, hash, sizeof f.hex);
  int n = nm_admission_fact_format(&f, v, sizeof v);
  NMT_EQ_STR(v, "1234567 relay 3");
  NMT_EQ_INT(n, 15);
  NMT_EQ_INT(nm_admission_fact_parse('i', hash, v, (size_t)n, &g, why, sizeof why), 0);
  NMT_CHECK(memcmp(&f, &g, sizeof f) == 0);
  memset(&f, 0, sizeof f);
  f.kind = NM_ADMISSION_FACT_KEY, f.role = NM_ROLE_SERVANT;
  memcpy(f.hex, fp(1), sizeof f.hex);
  snprintf(f.name, sizeof f.name, "alice");
  n = nm_admission_fact_format(&f, v, sizeof v);
  NMT_EQ_STR(v, "alice servant -");
  NMT_EQ_INT(nm_admission_fact_parse('k', fp(1), v, (size_t)n, &g, why, sizeof why), 0);
  NMT_CHECK(memcmp(&f, &g, sizeof f) == 0);
  memcpy(f.via, hash, NM_INVITE_ID_LEN);
  n = nm_admission_fact_format(&f, v, sizeof v);
  NMT_EQ_INT(nm_admission_fact_parse('k', fp(1), v, (size_t)n, &g, why, sizeof why), 0);
  NMT_EQ_STR(g.via, f.via);
  NMT_EQ_INT(nm_admission_fact_parse('r', fp(1), "", 0, &g, why, sizeof why), 0);
  NMT_EQ_INT(nm_admission_fact_parse('v', hash, "", 0, &g, why, sizeof why), 0);
  /* hostile or broken */
  static const struct { char kind; const char *key, *value, *why; } bad[] = {
    {'i', "abc", "0 servant 1", "bad secret hash"},
    {'k', "ABCDEF", "bob servant -", "bad fingerprint"},
    {'i', NULL, "0 servant", "3 fields"},
    {'i', NULL, "0 servant 1 2", "3 fields"},
    {'i', NULL, "x servant 1", "bad expiry"},
    {'i', NULL, "0 admin 1", "bad role"},
    {'i', NULL, "0 servant 4294967296", "bad max-uses"},
    {'i', NULL, "-1 servant 1", "bad expiry"},
    {'k', NULL, "b\x01b servant -", "bad name"},
    {'k', NULL, "bob servant 123", "bad invite id"},
    {'k', NULL, "bob manager -", "bad role"},
    {'r', NULL, "x", "no value"},
    {'v', NULL, " y", "no value"},
    {'z', NULL, "", "unknown kind"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *key = bad[i].key ? bad[i].key : (bad[i].kind == 'k' || bad[i].kind == 'r') ? fp(2) : hash;
    why[0] = 0;
    NMT_EQ_INT(nm_admission_fact_parse(bad[i].kind, key, bad[i].value, strlen(bad[i].value), &g, why, sizeof why),
               -EINVAL);
    NMT_HAS(why, bad[i].why);
  }
  char big[300];
  memset(big, 'a', sizeof big);
  NMT_EQ_INT(nm_admission_fact_parse('k', fp(2), big, sizeof big, &g, why, sizeof why), -EINVAL);
  NMT_EQ_INT(nm_admission_fact_parse('k', fp(2), "bob\0x servant -", 16, &g, why, sizeof why), -EINVAL);
  NMT_HAS(why, "NUL");
  f.kind = 'q';
  NMT_EQ_INT(nm_admission_fact_format(&f, v, sizeof v), -EINVAL);

  /* applied: a revocation wins, whichever comes first */
  nm_admission_store s;
  nm_admission_store_init(&s);
  NMT_EQ_INT(nm_admission_fact_parse('i', hash, "0 servant 2", 11, &g, why, sizeof why), 0);
  NMT_EQ_INT(nm_admission_fact_apply(&s, &g), 1);
  NMT_EQ_INT(nm_admission_fact_apply(&s, &g), 0);
  NMT_EQ_INT(s.ninvites, 1);
  NMT_EQ_INT(s.invites[0].max_uses, 2);
  NMT_EQ_INT(nm_admission_fact_parse('k', fp(3), "carol servant -", 15, &g, why, sizeof why), 0);
  NMT_EQ_INT(nm_admission_fact_apply(&s, &g), 1);
  NMT_EQ_INT(nm_admission_fact_apply(&s, &g), 0);
  NMT_CHECK(nm_admission_find_key(&s, fp(3)) != NULL);
  NMT_EQ_INT(nm_admission_fact_parse('k', fp(4), "Carol servant -", 15, &g, why, sizeof why), 0);
  NMT_EQ_INT(nm_admission_fact_apply(&s, &g), -EEXIST); /* the name is another key's */
  NMT_EQ_INT(nm_admission_fact_parse('r', fp(3), "", 0, &g, why, sizeof why), 0);
  NMT_EQ_INT(nm_admission_fact_apply(&s, &g), 1);
  NMT_EQ_INT(nm_admission_fact_apply(&s, &g), 0);
  NMT_CHECK(nm_admission_find_key(&s, fp(3)) == NULL);
  NMT_EQ_INT(nm_admission_fact_parse('k', fp(3), "carol servant -", 15, &g, why, sizeof why), 0);
  NMT_EQ_INT(nm_admission_fact_apply(&s, &g), -EPERM); /* revoked stays revoked */
  NMT_EQ_INT(nm_admission_fact_parse('v', hash, "", 0, &g, why, sizeof why), 0);
  NMT_EQ_INT(nm_admission_fact_apply(&s, &g), 1);
  NMT_EQ_INT(s.ninvites, 0);
  NMT_EQ_INT(s.nrevoked, 1);
  NMT_EQ_INT(nm_admission_fact_parse('i', hash, "0 servant 2", 11, &g, why, sizeof why), 0);
  NMT_EQ_INT(nm_admission_fact_apply(&s, &g), 0); /* a revoked invite does not come back */
  NMT_EQ_INT(s.ninvites, 0);
  /* a revocation of an invite never seen here: its secret refused from now on */
  char other[NM_SHA256_HEX_LEN + 1];
  hash_of(8, other);
  NMT_EQ_INT(nm_admission_fact_parse('v', other, "", 0, &g, why, sizeof why), 0);
  NMT_EQ_INT(nm_admission_fact_apply(&s, &g), 1);
  NMT_EQ_INT(s.nrevoked, 2);
  nm_admission_store_close(&s);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/unit_admission.XXXXXX");
  if (!mkdtemp(dir)) return 2;
  NMT_RUN(test_names_of_things);
  NMT_RUN(test_invite_mode);
  NMT_RUN(test_invite_refusals);
  NMT_RUN(test_roles);
  NMT_RUN(test_allow_mode);
  NMT_RUN(test_open_mode);
  NMT_RUN(test_names);
  NMT_RUN(test_bad_requests);
  NMT_RUN(test_revocation);
  NMT_RUN(test_bounds_and_prune);
  NMT_RUN(test_save_load);
  NMT_RUN(test_corrupt_files);
  NMT_RUN(test_file_mutations);
  NMT_RUN(test_indexes_follow_the_tables);
  NMT_RUN(test_facts);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return nmt_done();
}
