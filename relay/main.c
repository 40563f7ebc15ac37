/* natmesh-relay: a dedicated relay node. It registers with the manager as a relay, with
 * the capacity the operator allows, receives every line published in the overlay like any
 * peer, and forwards them to the unreachable servants the manager assigns it. It shows no
 * chat and publishes none of its own. The peer machinery is natmesh_peer's. */
#include "servant.h"
#include "nm_log.h"
#include "nm_xml.h"

#include <stdio.h>

static const sv_cli_spec relay_cli = {
    .root = "relay",
    .relay = 1,
    .usage =
        "usage: natmesh-relay [--config relay.xml] [--name NAME] [--manager HOST] [--manager-port N]\n"
        "                     [--port P] [--listen ADDR] [--max-clients N]\n"
        "                     [--client-rate BYTES/S] [--total-rate BYTES/S] [--no-upnp] [--no-natpmp]\n"
        "                     [--check-config] [--verbose]\n"
        "A dedicated relay: serves servants the manager judged unreachable. See docs/relay.md.\n",
};

int main(int argc, char **argv) {
  static servant sv;
  sv_config_defaults(&sv.cfg);
  sv.cfg.role = NM_ROLE_RELAY;
  sv.cfg.max_clients = 64;
  sv.quiet = 1;
  nm_log_init("natmesh-relay", NM_LOG_INFO);
  nm_xml_init();
  int rc = sv_cli_parse(&sv, &relay_cli, argc, argv);
  if (rc) return rc == 1 ? 0 : 2;
  uv_loop_t *loop = uv_default_loop();
  if (sv_start(&sv, loop) < 0) return 1;
  nm_log_info("relay limits: %u clients, %u B/s per client, %u B/s in all (0 = unlimited)",
              sv.cfg.max_clients, sv.cfg.client_rate_bps, sv.cfg.total_rate_bps);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  xmlCleanupParser();
  nm_log_info("stopped: %llu bytes in, %llu bytes out, %llu dropped", (unsigned long long)sv.bytes_in,
              (unsigned long long)sv.bytes_out, (unsigned long long)sv.drops);
  return 0;
}
