/* ctl_key: which key natmesh-ctl proves to the manager, and which key it expects back.
 *
 * The manager answers status only on a TLS session whose key is an operator's: its own key
 * or one listed with --admin-key. natmesh-ctl has two ways in:
 *   - local (the default): the manager's own key, read from the manager's state directory
 *     (--state-dir, default nm_identity_default_dir(.., "manager")). Only the manager's user
 *     can read that file (nm_identity keeps it 0600 in a 0700 folder), which is what makes
 *     this path "the manager's user only". The manager it expects is that key's owner.
 *   - remote: --admin-key FILE (a key.pem whose fingerprint the manager lists with
 *     --admin-key) and --manager-key FP, the manager's fingerprint
 *     (natmesh-manager --state-dir D fingerprint).
 * `natmesh-ctl --state-dir DIR keygen` makes such a key (or keeps the one there) and prints
 * its fingerprint. */
#ifndef NMCTL_KEY_H
#define NMCTL_KEY_H

#include <stddef.h>

#include "nm_identity.h"

typedef struct {
  const char *state_dir;   /* --state-dir DIR, or NULL for the manager's default */
  const char *admin_key;   /* --admin-key FILE, or NULL */
  const char *manager_key; /* --manager-key FP, or NULL */
} nmctl_auth_opts;

/* Reads an Ed25519 private key (PEM) from path without ever creating one: it must be a
 * regular file owned by us and closed to group and others, as nm_identity keeps key.pem.
 * Returns 0, -ENOENT (no such file), NM_ECONFIG (unsafe ownership or mode), NM_EKEY (not a
 * usable Ed25519 key) or a negative errno, with a sentence naming the file in err. */
int nmctl_key_load(const char *path, nm_identity *out, char *err, size_t errlen);

/* The key to present (id, to be closed by the caller on success) and the fingerprint to pin
 * (manager_fp), from the options. Returns 0 or a negative code with a sentence in err that
 * says what to do. */
int nmctl_auth_resolve(const nmctl_auth_opts *o, nm_identity *id, nm_fingerprint *manager_fp,
                       char *err, size_t errlen);

/* keygen: loads or creates DIR/key.pem (dir NULL: nm_identity_default_dir(.., "ctl")) and
 * writes its fingerprint into fp; dir_out (if not NULL) receives the folder used. Returns 0
 * or a negative code with the reason in err. */
int nmctl_keygen(const char *dir, nm_fingerprint *fp, char *dir_out, size_t dir_len, char *err,
                 size_t errlen);

#endif
