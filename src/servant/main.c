/* natmesh-servant: a peer of the overlay with a human at stdin. Everything but this role
 * description is the natmesh_peer library (entry.c is the main). */
#include "servant.h"

static const sv_role sv_servant_role = {
    .program = "natmesh-servant",
    .role = NM_ROLE_SERVANT,
    .config_root = "config",
    .relay_limits = 0,
    .max_clients = 8,
    .quiet = 0,
    .console = 1,
    .default_name = NULL, /* the host name */
    .usage =
        "usage: natmesh-servant [--config config.xml] [--name NAME] [--manager HOST]\n"
        "                       [--manager-port N] [--port P] [--listen ADDR] [--ban TARGET]...\n"
        "                       [--no-upnp] [--no-natpmp] [--check-config] [--verbose] [--version]\n"
        "A natmesh peer. Lines on stdin are published to every peer; lines from peers are\n"
        "printed as NAME: TEXT. Commands: /peers, /quit, /help. --port 0 (the default) asks\n"
        "the manager to assign a listening port. Sample config: docs/config.sample.xml.\n",
};

int main(int argc, char **argv) { return sv_main(&sv_servant_role, argc, argv); }
