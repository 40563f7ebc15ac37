/* The one main of natmesh-servant and natmesh-relay: the role description (cli.h) says
 * what differs (name, config root, usage, defaults, whether stdin is read). */
#include "servant.h"
#include "metrics.h"
#include "nm_log.h"
#include "nm_xml.h"

int sv_main(const sv_role *role, int argc, char **argv) {
  static servant sv; /* large (relay duty's client tables, the ban list); static keeps it off the stack */
  sv_config_defaults(&sv.cfg, role);
  nm_log_init(role->program, NM_LOG_INFO);
  nm_xml_init();
  int rc = sv_cli_parse(&sv.cfg, role, argc, argv);
  if (rc) return rc == 1 ? 0 : 2;
  uv_loop_t *loop = uv_default_loop();
  if (sv_start(&sv, loop) < 0) {
    sv_release(&sv);
    return 1;
  }
  if (role->relay_limits)
    nm_log_info("relay limits: %u clients, %u B/s per client, %u B/s in all (0 = unlimited)", sv.cfg.max_clients,
                sv.cfg.client_rate_bps, sv.cfg.total_rate_bps);
  if (role->console) sv_console_start(&sv);
  sv_metrics metrics;
  if (sv_metrics_start(&metrics, &sv) < 0) {
    sv_release(&sv);
    return 1;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  sv_metrics_stop(&metrics);
  uv_run(loop, UV_RUN_DEFAULT); /* its timer's close */
  uv_loop_close(loop);
  sv_release(&sv);
  xmlCleanupParser();
  if (role->relay_limits)
    nm_log_info("stopped: %llu bytes in, %llu bytes out, %llu dropped", (unsigned long long)sv.relay.bytes_in,
                (unsigned long long)sv.relay.bytes_out, (unsigned long long)sv.relay.drops);
  else
    nm_log_info("stopped");
  return sv.exit_code;
}
