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
        "usage: natmesh-servant (--invite INVITE | --invite @FILE | --manager-key FP) [--state-dir DIR]\n"
        "                       [-c|--config config.xml] [-n|--name NAME] [-m|--manager HOST]\n"
        "                       [-P|--manager-port N] [-p|--port P] [-l|--listen ADDR]\n"
        "                       [-b|--ban TARGET]... [-U|--no-upnp] [-N|--no-natpmp] [--no-pcp]\n"
        "                       [--no-local-addresses] [--no-reverse] [-C|--check-config]\n"
        "                       [-v|--verbose] [-h|--help] [-V|--version]\n"
        "A natmesh peer. Lines on stdin are published to every peer; lines from peers are\n"
        "printed as NAME: TEXT. Commands: /peers, /quit, /help. --port 0 (the default) asks\n"
        "the manager to assign a listening port. The invite (natmesh-manager invite) names the\n"
        "manager and its key; --manager-key FP joins an open manager. --manager and\n"
        "--manager-port move the address, never the key. --state-dir holds our key and epoch\n"
        "(one per servant). --ban takes an address, a host name or a key fingerprint (64 hex,\n"
        "or a prefix of at least 16). Sample config: docs/config.sample.xml.\n",
};

int main(int argc, char **argv) { return sv_main(&sv_servant_role, argc, argv); }
