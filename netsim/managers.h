/* managers: what a scenario with several natmesh managers needs from netsim.
 *
 * ${fp:NAME}: the fingerprint of the natmesh key in ${state:NAME} (64 lowercase hex, the
 * SHA-256 of its raw Ed25519 public key), the key made there first, with natmesh's own
 * nm_identity, when the folder has none yet. A manager or a relay started later with
 * --state-dir ${state:NAME} uses that key. So a scenario can pin a manager's key in a
 * servant's config, or grant a relay's key the relay role (--relay-key ${fp:relay1}),
 * before either program ran.
 *
 * <managers-config file="NAME.xml" managers="ADDR:PORT=FP ..." [root="config|relay"]
 * [form="key-attribute|list"]/> writes RUNDIR/NAME.xml, a natmesh-servant (root "config",
 * the default) or natmesh-relay ("relay") config naming the managers in that order, each
 * with its key pin, in one of two spellings: the key as an attribute (the default)
 *
 *   <config>
 *     <connectionmgr key="FP1">11.0.0.3:85</connectionmgr>
 *     <connectionmgr key="FP2">11.0.0.4:85</connectionmgr>
 *   </config>
 *
 * or form="list", HOST,PORT,FINGERPRINT (an IPv6 host without brackets)
 *
 *   <config>
 *     <connectionmgr>11.0.0.3,85,FP1</connectionmgr>
 *     <connectionmgr>11.0.0.4,85,FP2</connectionmgr>
 *   </config>
 *
 * The program tries the first and fails over to the next (issue 14). */
#ifndef NSIM_MANAGERS_H
#define NSIM_MANAGERS_H

#include "run.h"

#define NSIM_MANAGERS_MAX 8

/* ${fp:NAME} (above) into out. Returns 0, or a negative code with the reason in err. */
int nsim_key_fingerprint(const struct nsim_run *r, const char *name, char *out, size_t outlen,
                         char *err, size_t errlen);

/* Runs a <managers-config> step: expands its managers, checks each (an endpoint and a
 * fingerprint) and writes the file (a new one: an existing file is refused). Returns 0, or a
 * negative code with the reason in detail; on success detail says what was written. */
int nsim_managers_config_write(struct nsim_run *r, const struct nsim_step *s, char *detail,
                               size_t len);

#endif
