/* natmesh-relay: a dedicated relay node. It registers with the manager as a relay, with
 * the capacity the operator allows, receives every line published in the overlay like any
 * peer, and forwards them to the unreachable servants the manager assigns it. It shows no
 * chat and publishes none of its own. The peer machinery is natmesh_peer's (its entry.c is
 * the main), relay duty is natmesh_relaying's (relaying.c); this is the role. */
#include "servant.h"

static const sv_role sv_relay_role = {
    .program = "natmesh-relay",
    .role = NM_ROLE_RELAY,
    .config_root = "relay",
    .relay_limits = 1,
    .max_clients = 64,
    .quiet = 1,
    .console = 0,
    .default_name = "relay",
    .usage =
        "usage: natmesh-relay (--invite INVITE | --invite @FILE | --manager-key FP) [--state-dir DIR]\n"
        "                     [-c|--config relay.xml] [-n|--name NAME] [-m|--manager HOST]\n"
        "                     [-P|--manager-port N] [-p|--port P] [-l|--listen ADDR]\n"
        "                     [-M|--max-clients N] [-r|--client-rate BYTES/S] [-R|--total-rate BYTES/S]\n"
        "                     [-b|--ban TARGET]... [-U|--no-upnp] [-N|--no-natpmp] [--no-pcp]\n"
        "                     [--no-local-addresses] [--metrics [ADDR:]PORT]\n"
        "                     [-C|--check-config] [-v|--verbose]\n"
        "                     [-h|--help] [-V|--version]\n"
        "A dedicated relay: serves servants the manager judged unreachable. The manager must\n"
        "grant this key the relay role (a relay invite, or --relay-key). See docs/relay.md.\n"
        "--metrics serves /metrics and a status page over HTTP (127.0.0.1 unless ADDR says).\n",
};

int main(int argc, char **argv) { return sv_main(&sv_relay_role, argc, argv); }
