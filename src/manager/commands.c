/* natmesh-manager's subcommands on its state directory (commands.h). Each prints what it
 * made or found on stdout (an invite: that string alone, so scripts can capture it) and
 * explains itself on stderr; exit status 0 on success, 1 when it could not be done, 2 for
 * a usage error. */
#include "commands.h"
#include "admission.h"
#include "nm_error.h"
#include "nm_identity.h"
#include "nm_invite.h"
#include "nm_util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>

const char mgr_commands_usage[] =
    "  invite [--address HOST[:PORT]] [--relay] [--expires SECONDS] [--uses N]\n"
    "         [--also HOST,PORT,FINGERPRINT]...\n"
    "                       print a new invite (the key is made if needed); each --also\n"
    "                       names another manager of the overlay and pins its key\n"
    "  fingerprint          print the manager's key fingerprint\n"
    "  revoke ID|FINGERPRINT [--keys]\n"
    "                       revoke an invite (and with --keys the keys it admitted) or a key\n"
    "  invites              list invites, admitted keys and revocations\n";

/* An invite may not live longer than this: ten years. */
#define MGR__EXPIRES_MAX (10ull * 366 * 24 * 3600)

/* Loads (or makes) the manager's key; on failure says why. */
static int mgr__identity(const mgr_command_env *env, nm_identity *id) {
  char err[512];
  int rc = nm_identity_load_or_create(env->state_dir, id, err, sizeof err);
  if (rc < 0) fprintf(stderr, "natmesh-manager: %s\n", err);
  return rc;
}

static int mgr__open_store(const mgr_command_env *env, mgr_admission *a) {
  char err[512];
  int rc = mgr_admission_open(a, env->state_dir, NM_ADMISSION_INVITE, err, sizeof err);
  if (rc < 0) {
    fprintf(stderr, "natmesh-manager: admission store: %s\n", err);
    mgr_admission_close(a);
  }
  return rc;
}

/* "never", "expires 2030-01-01 00:00 UTC" or "expired 2024-...". */
static const char *mgr__expiry(uint64_t expires, char *buf, size_t len) {
  if (!expires) return "never expires";
  time_t t = (time_t)expires;
  struct tm tm;
  char date[40] = "?";
  if (gmtime_r(&t, &tm)) strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", &tm);
  snprintf(buf, len, "%s %s", nm_invite_expired(expires, (uint64_t)time(NULL)) ? "expired" : "expires",
           date);
  return buf;
}

/* "unlimited uses (3 so far)" or "2 of 5 uses". */
static const char *mgr__uses(uint32_t used, uint32_t max, char *buf, size_t len) {
  if (max) snprintf(buf, len, "%" PRIu32 " of %" PRIu32 " uses", used, max);
  else snprintf(buf, len, "unlimited uses (%" PRIu32 " so far)", used);
  return buf;
}

/* ---- invite --------------------------------------------------------------------------- */

typedef struct {
  char hash[NM_SHA256_HEX_LEN + 1];
  uint64_t expires;
  nm_role role;
  uint32_t uses;
} mgr__new_invite;

static int mgr__add_invite(nm_admission_store *s, void *arg, char *err, size_t errlen) {
  mgr__new_invite *n = arg;
  /* Expired invites are of no use to anyone: make room. */
  nm_admission_prune(s, (uint64_t)time(NULL));
  int rc = nm_admission_add_invite(s, n->hash, n->expires, n->role, n->uses);
  if (rc < 0) {
    snprintf(err, errlen, "cannot add the invite: %s",
             rc == -ENOSPC ? "too many invites (revoke some, or let them expire)" : nm_strerror(rc));
    return rc;
  }
  return 1;
}

/* The invite's default host: this machine's name, which must be one an invite can carry. */
static int mgr__default_host(char *host, size_t len) {
  if (gethostname(host, len) < 0) return -errno;
  host[len - 1] = 0;
  return nm_invite_host_valid(host) ? 0 : -EINVAL;
}

static int mgr__cmd_invite(const mgr_command_env *env, int argc, char **argv) {
  static const struct option opts[] = {{"address", required_argument, 0, 'a'},
                                       {"relay", no_argument, 0, 'r'},
                                       {"expires", required_argument, 0, 'e'},
                                       {"uses", required_argument, 0, 'u'},
                                       {"also", required_argument, 0, 'A'},
                                       {0, 0, 0, 0}};
  char host[NM_INVITE_HOST_MAX + 1] = "";
  uint16_t port = env->port;
  nm_role role = NM_ROLE_SERVANT;
  uint64_t expires_in = 0, uses = 0;
  /* The other managers (--also), checked here and added once the invite exists. */
  nm_invite_manager also[NM_INVITE_ALSO_MAX];
  size_t nalso = 0;
  char why[256];
  int opt;
  optind = 0; /* glibc: start afresh, at argv[1] */
  while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (opt) {
    case 'a':
      if (nm_parse_hostport(optarg, host, sizeof host, &port, env->port) < 0 ||
          !nm_invite_host_valid(host)) {
        fprintf(stderr, "natmesh-manager: invite: --address: expected HOST, HOST:PORT or "
                        "[IPV6]:PORT, got \"%s\"\n", optarg);
        return 2;
      }
      break;
    case 'r': role = NM_ROLE_RELAY; break;
    case 'e':
      if (nm_parse_u64(optarg, strlen(optarg), &expires_in) < 0 || expires_in == 0 ||
          expires_in > MGR__EXPIRES_MAX) {
        fprintf(stderr, "natmesh-manager: invite: --expires: expected seconds from 1 to %llu, "
                        "got \"%s\"\n", (unsigned long long)MGR__EXPIRES_MAX, optarg);
        return 2;
      }
      break;
    case 'u':
      if (nm_parse_u64(optarg, strlen(optarg), &uses) < 0 || uses == 0 || uses > UINT32_MAX) {
        fprintf(stderr, "natmesh-manager: invite: --uses: expected a number from 1 to %u, "
                        "got \"%s\"\n", UINT32_MAX, optarg);
        return 2;
      }
      break;
    case 'A':
      if (nalso == NM_INVITE_ALSO_MAX) {
        fprintf(stderr, "natmesh-manager: invite: --also: at most %d other managers\n", NM_INVITE_ALSO_MAX);
        return 2;
      }
      if (nm_invite_manager_parse_any(optarg, strlen(optarg), &also[nalso], why, sizeof why) < 0) {
        fprintf(stderr, "natmesh-manager: invite: --also \"%.300s\": %s\n", optarg,
                strncmp(why, "invite: ", 8) == 0 ? why + 8 : why);
        return 2;
      }
      nalso++;
      break;
    default: return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "natmesh-manager: invite: unexpected \"%s\"\n", argv[optind]);
    return 2;
  }
  if (!host[0] && mgr__default_host(host, sizeof host) < 0) {
    fprintf(stderr, "natmesh-manager: invite: this machine's name \"%s\" cannot go in an "
                    "invite: pass --address HOST (the name or address servants reach the "
                    "manager at)\n", host);
    return 2;
  }

  nm_identity id;
  if (mgr__identity(env, &id) < 0) return 1;
  mgr_admission a;
  if (mgr__open_store(env, &a) < 0) {
    nm_identity_close(&id);
    return 1;
  }
  char err[512] = "";
  nm_invite inv;
  mgr__new_invite n = {.role = role, .uses = (uint32_t)uses};
  n.expires = expires_in ? (uint64_t)time(NULL) + expires_in : 0;
  int rc = nm_invite_create(&inv, host, port, nm_identity_fingerprint(&id)->hex, role, n.expires,
                            err, sizeof err);
  nm_identity_close(&id);
  for (size_t i = 0; rc == 0 && i < nalso; i++) rc = nm_invite_add_also(&inv, &also[i], err, sizeof err);
  if (rc == 0) rc = nm_invite_secret_hash(inv.secret, n.hash);
  if (rc == 0) rc = mgr_admission_update(&a, mgr__add_invite, &n, err, sizeof err);
  char text[NM_INVITE_MAX + 1];
  if (rc >= 0) rc = nm_invite_format(&inv, text, sizeof text);
  nm_invite_clear(&inv);
  mgr_admission_close(&a);
  if (rc < 0) {
    fprintf(stderr, "natmesh-manager: invite: %s\n", err[0] ? err : nm_strerror(rc));
    return 1;
  }
  printf("%s\n", text);
  fflush(stdout);
  OPENSSL_cleanse(text, sizeof text);
  char when[64], usage[48] = "unlimited uses";
  if (n.uses) snprintf(usage, sizeof usage, "at most %" PRIu32 " uses", n.uses);
  /* An IPv6 literal in brackets, as every address natmesh prints (a host name as is). */
  int v6 = strchr(host, ':') != NULL;
  char others[48] = "";
  if (nalso) snprintf(others, sizeof others, " (and %zu other manager%s)", nalso, nalso > 1 ? "s" : "");
  fprintf(stderr, "natmesh-manager: invite %.*s for %s%s%s:%u%s: %s, %s, %s; revoke it with "
                  "natmesh-manager --state-dir %s revoke %.*s\n",
          NM_INVITE_ID_LEN, n.hash, v6 ? "[" : "", host, v6 ? "]" : "", port, others, nm_role_name(role), usage,
          mgr__expiry(n.expires, when, sizeof when), env->state_dir, NM_INVITE_ID_LEN, n.hash);
  return 0;
}

/* ---- fingerprint ------------------------------------------------------------------------ */

static int mgr__cmd_fingerprint(const mgr_command_env *env, int argc, char **argv) {
  if (argc > 1) {
    fprintf(stderr, "natmesh-manager: fingerprint: unexpected \"%s\"\n", argv[1]);
    return 2;
  }
  nm_identity id;
  if (mgr__identity(env, &id) < 0) return 1;
  printf("%s\n", nm_identity_fingerprint(&id)->hex);
  nm_identity_close(&id);
  return 0;
}

/* ---- revoke ----------------------------------------------------------------------------- */

typedef struct {
  const char *target;
  int also_keys;
  char what[200]; /* what was revoked, for the user */
} mgr__revocation;

/* An invite by its id (or a prefix, or its whole hash), else a key by fingerprint or prefix. */
static int mgr__revoke(nm_admission_store *s, void *arg, char *err, size_t errlen) {
  mgr__revocation *r = arg;
  size_t keys = 0, len = strlen(r->target);
  char ierr[200] = "";
  int rc = nm_admission_revoke_invite(s, r->target, r->also_keys, &keys, ierr, sizeof ierr);
  if (rc == 0) {
    int n = snprintf(r->what, sizeof r->what, "revoked invite %.*s", NM_INVITE_ID_LEN,
                     s->revoked[s->nrevoked - 1]);
    if (n > 0 && (size_t)n < sizeof r->what && r->also_keys)
      snprintf(r->what + n, sizeof r->what - (size_t)n, " and the %zu key%s it admitted", keys,
               keys == 1 ? "" : "s");
    else if (n > 0 && (size_t)n < sizeof r->what)
      snprintf(r->what + n, sizeof r->what - (size_t)n,
               " (keys it admitted stay admitted: --keys revokes them too)");
    return 1;
  }
  if (rc != -ENOENT) {
    snprintf(err, errlen, "%s", ierr);
    return rc;
  }
  char kerr[200] = "";
  rc = nm_admission_revoke_key(s, r->target, kerr, sizeof kerr);
  if (rc == 0) {
    snprintf(r->what, sizeof r->what, "revoked key %s", s->revoked_keys[s->nrevoked_keys - 1]);
    return 1;
  }
  if (rc != -ENOENT) {
    snprintf(err, errlen, "%s", kerr);
    return rc;
  }
  for (size_t i = 0; i < s->nrevoked; i++)
    if (strncmp(s->revoked[i], r->target, len) == 0) {
      snprintf(err, errlen, "invite %.*s is already revoked", NM_INVITE_ID_LEN, s->revoked[i]);
      return -EEXIST;
    }
  snprintf(err, errlen, "no invite and no admitted key is named \"%.70s\"", r->target);
  return rc;
}

static int mgr__cmd_revoke(const mgr_command_env *env, int argc, char **argv) {
  static const struct option opts[] = {{"keys", no_argument, 0, 'k'}, {0, 0, 0, 0}};
  mgr__revocation r;
  memset(&r, 0, sizeof r);
  int opt;
  optind = 0; /* glibc: start afresh, at argv[1] */
  while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (opt == 'k') r.also_keys = 1;
    else return 2;
  }
  if (optind != argc - 1) {
    fprintf(stderr, "natmesh-manager: revoke: expected one invite id or key fingerprint\n");
    return 2;
  }
  /* Ids and fingerprints are written in lowercase; accept what a user pastes in capitals. */
  char target[NM_SHA256_HEX_LEN + 1];
  size_t len = strlen(argv[optind]);
  if (len >= sizeof target) {
    fprintf(stderr, "natmesh-manager: revoke: \"%.70s...\" is neither an invite id nor a key "
                    "fingerprint\n", argv[optind]);
    return 2;
  }
  for (size_t i = 0; i <= len; i++)
    target[i] = (char)(argv[optind][i] >= 'A' && argv[optind][i] <= 'F' ? argv[optind][i] - 'A' + 'a'
                                                                        : argv[optind][i]);
  if (len < NM_ADMISSION_PREFIX_MIN || strspn(target, "0123456789abcdef") != len) {
    fprintf(stderr, "natmesh-manager: revoke: expected an invite id or a key fingerprint (at "
                    "least %d hex characters), got \"%s\"\n", NM_ADMISSION_PREFIX_MIN, argv[optind]);
    return 2;
  }
  r.target = target;
  mgr_admission a;
  if (mgr__open_store(env, &a) < 0) return 1;
  char err[512] = "";
  int rc = mgr_admission_update(&a, mgr__revoke, &r, err, sizeof err);
  mgr_admission_close(&a);
  if (rc < 0) {
    fprintf(stderr, "natmesh-manager: revoke: %s\n", err[0] ? err : nm_strerror(rc));
    return 1;
  }
  printf("%s\n", r.what);
  return 0;
}

/* ---- invites ------------------------------------------------------------------------------ */

static int mgr__cmd_invites(const mgr_command_env *env, int argc, char **argv) {
  if (argc > 1) {
    fprintf(stderr, "natmesh-manager: invites: unexpected \"%s\"\n", argv[1]);
    return 2;
  }
  mgr_admission a;
  if (mgr__open_store(env, &a) < 0) return 1;
  const nm_admission_store *s = &a.store;
  char when[64], usage[48];
  printf("invites (%zu):\n", s->ninvites);
  for (size_t i = 0; i < s->ninvites; i++) {
    const nm_admission_invite *v = &s->invites[i];
    printf("  %.*s  %-7s  %s, %s\n", NM_INVITE_ID_LEN, v->hash, nm_role_name(v->role),
           mgr__uses(v->uses, v->max_uses, usage, sizeof usage),
           mgr__expiry(v->expires, when, sizeof when));
  }
  printf("admitted keys (%zu):\n", s->nkeys);
  for (size_t i = 0; i < s->nkeys; i++) {
    const nm_admission_key *k = &s->keys[i];
    char id[NM_ID_LEN + 1];
    snprintf(id, sizeof id, "%.*s", NM_ID_LEN, k->fingerprint);
    printf("  %s  id %s  %-7s  %s  %s%s\n", k->fingerprint, id, nm_role_name(k->role), k->name,
           k->via[0] ? "via invite " : "allowed or open", k->via);
  }
  printf("revoked invites (%zu):\n", s->nrevoked);
  for (size_t i = 0; i < s->nrevoked; i++) printf("  %.*s\n", NM_INVITE_ID_LEN, s->revoked[i]);
  printf("revoked keys (%zu):\n", s->nrevoked_keys);
  for (size_t i = 0; i < s->nrevoked_keys; i++) printf("  %s\n", s->revoked_keys[i]);
  mgr_admission_close(&a);
  return 0;
}

/* ---- the table ------------------------------------------------------------------------------ */

static const struct {
  const char *name;
  mgr_command_fn fn;
} mgr__commands[] = {
    {"invite", mgr__cmd_invite},
    {"fingerprint", mgr__cmd_fingerprint},
    {"revoke", mgr__cmd_revoke},
    {"invites", mgr__cmd_invites},
};

mgr_command_fn mgr_command_find(const char *name) {
  for (size_t i = 0; i < sizeof mgr__commands / sizeof *mgr__commands; i++)
    if (strcmp(mgr__commands[i].name, name) == 0) return mgr__commands[i].fn;
  return NULL;
}
