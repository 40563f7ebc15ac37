/* The subcommands that work on the manager's state directory, in the manner of
 * wireguard-tools' command table: invite, fingerprint, revoke, invites. They work whether or
 * not a manager runs on the same directory: every change goes through mgr_admission_update
 * (locked, on the file as it is, saved atomically), and a running manager reads the file
 * again when it changed. */
#ifndef NM_MANAGER_COMMANDS_H
#define NM_MANAGER_COMMANDS_H

#include <stdint.h>

typedef struct {
  const char *state_dir; /* resolved: the option, the config, or the default */
  uint16_t port;         /* the manager's port, for an invite's default address */
} mgr_command_env;

/* The command named argv[0], or NULL when there is none by that name. */
typedef int (*mgr_command_fn)(const mgr_command_env *env, int argc, char **argv);
mgr_command_fn mgr_command_find(const char *name);

/* One line per command, for the usage text. */
extern const char mgr_commands_usage[];

#endif
