/* natmesh-portmap - map one port on the router with the natmesh_nat library.
 *
 *   natmesh-portmap --port 4000 [--upnp on|off] [--natpmp on|off] [--pcp on|off]
 *                   [--lease S] [--hold S] [--proto tcp|udp] [--gateway IP] [--check S]
 *                   [--discover-ms MS] [--natpmp-timeout-ms MS] [--pcp-timeout-ms MS]
 *                   [--upnp-url URL] [--observed IP] [--keep-trying]
 *
 * Prints one line per event on stdout, for scripts (netsim scenarios):
 *   mapped method=upnp ext=11.0.0.2:4000 int=10.0.1.2:4000 lease=120 double_nat=no
 *   remapped method=natpmp ext=11.0.0.2:4000 int=10.0.1.2:4000 lease=120 double_nat=no
 *   lost: <reason>
 *   no mapping: <reason>
 *   released
 * holds the mapping for --hold seconds (0 = until SIGINT/SIGTERM), then deletes
 * it and exits. Exit status: 0 after a mapping was held and released, 2 when
 * no mapping could be made (unless --keep-trying), 1 on usage errors. */
#include "nm_portmap.h"

#include "nm_log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  uv_loop_t *loop;
  nm_portmap pm;
  uv_signal_t sigint, sigterm;
  uv_timer_t hold;
  uint32_t hold_s;
  int keep_trying;
  int ever_mapped;
  int exit_code;
  int closing;
  const char *observed;
} app;

static void usage(FILE *f) {
  fprintf(f,
          "usage: natmesh-portmap --port PORT [--upnp on|off] [--natpmp on|off] [--pcp on|off]\n"
          "                       [--lease SECONDS] [--hold SECONDS] [--proto tcp|udp]\n"
          "                       [--gateway IPV4] [--check SECONDS] [--discover-ms MS]\n"
          "                       [--natpmp-timeout-ms MS] [--pcp-timeout-ms MS]\n"
          "                       [--upnp-url URL] [--observed IP] [--keep-trying]\n"
          "                       [-h|--help] [--version]\n"
          "Maps PORT on the router (UPnP IGD and NAT-PMP, first success wins; PCP when\n"
          "neither can), prints the result, holds it (--hold 0 = until SIGINT/SIGTERM),\n"
          "deletes it and exits.\n"
          "--upnp-url URL: the IGD's root description (skips SSDP discovery).\n"
          "--observed IP: the address the outside world sees, for the double-NAT verdict.\n"
          "--keep-trying: do not exit when no mapping is possible; keep retrying.\n");
}

static void print_info(app *a, const char *what, const nm_mapping_info *i) {
  int dn = nm_portmap_is_double_nat(i->ext_ip, a->observed);
  printf("%s method=%s ext=%s:%u int=%s:%u lease=%u double_nat=%s\n", what,
         nm_map_method_name(i->method), i->ext_ip, (unsigned)i->ext_port,
         i->int_ip[0] ? i->int_ip : "?", (unsigned)i->int_port, (unsigned)i->lease_s,
         dn == 1 ? "yes" : "no");
  fflush(stdout);
}

static void on_handle_closed(uv_handle_t *h) {
  (void)h;
}

static void on_pm_closed(nm_portmap *pm) {
  app *a = pm->data;
  if (a->ever_mapped) {
    printf("released\n");
    fflush(stdout);
  }
  uv_close((uv_handle_t *)&a->sigint, on_handle_closed);
  uv_close((uv_handle_t *)&a->sigterm, on_handle_closed);
  uv_close((uv_handle_t *)&a->hold, on_handle_closed);
}

static void app_close(app *a) {
  if (a->closing)
    return;
  a->closing = 1;
  uv_timer_stop(&a->hold);
  nm_portmap_close(&a->pm, on_pm_closed);
}

static void on_hold_done(uv_timer_t *t) {
  app_close(t->data);
}

static void on_signal(uv_signal_t *s, int signum) {
  app *a = s->data;
  fprintf(stderr, "natmesh-portmap: signal %d, deleting the mapping\n", signum);
  app_close(a);
}

static void on_event(nm_portmap *pm, nm_portmap_event ev, int status,
                     const nm_mapping_info *info, void *arg) {
  app *a = arg;
  (void)pm;
  switch (ev) {
  case NM_PM_MAPPED:
    a->ever_mapped = 1;
    a->exit_code = 0;
    print_info(a, "mapped", info);
    if (a->hold_s > 0 && !uv_is_active((uv_handle_t *)&a->hold))
      uv_timer_start(&a->hold, on_hold_done, (uint64_t)a->hold_s * 1000, 0);
    break;
  case NM_PM_REMAPPED:
    print_info(a, "remapped", info);
    break;
  case NM_PM_LOST:
    printf("lost: %s\n", nm_portmap_strerror(status));
    fflush(stdout);
    break;
  case NM_PM_NONE:
    printf("no mapping: %s\n", nm_portmap_strerror(status));
    fflush(stdout);
    if (!a->ever_mapped)
      a->exit_code = 2;
    if (!a->keep_trying)
      app_close(a);
    break;
  }
}

int main(int argc, char **argv) {
  static app a;
  nm_portmap_config cfg;
  char err[160];
  unsigned long port = 0;
  int i, r;

  /* CLI flag -> <nat> config key; values are checked by the same table */
  static const struct {
    const char *flag, *key;
  } map[] = {{"--upnp", "upnp"},
             {"--natpmp", "natpmp"},
             {"--pcp", "pcp"},
             {"--lease", "lease"},
             {"--proto", "proto"},
             {"--gateway", "gateway"},
             {"--check", "check"},
             {"--discover-ms", "discover_ms"},
             {"--natpmp-timeout-ms", "natpmp_timeout_ms"},
             {"--pcp-timeout-ms", "pcp_timeout_ms"},
             {"--upnp-url", "upnp_url"}};

  nm_log_init("natmesh-portmap", NM_LOG_INFO); /* log lines name this program */
  nm_portmap_config_default(&cfg);
  for (i = 1; i < argc; i++) {
    const char *f = argv[i];
    size_t k;
    int done = 0;
    if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(f, "--version") == 0) {
      puts("natmesh-portmap " NATMESH_VERSION);
      return 0;
    }
    if (strcmp(f, "--keep-trying") == 0) {
      a.keep_trying = 1;
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "natmesh-portmap: %s needs a value\n", f);
      usage(stderr);
      return 1;
    }
    if (strcmp(f, "--port") == 0 || strcmp(f, "--hold") == 0) {
      int is_port = strcmp(f, "--port") == 0;
      char *end;
      unsigned long v = strtoul(argv[i + 1], &end, 10);
      if (argv[i + 1][0] < '0' || argv[i + 1][0] > '9' || *end != '\0' ||
          (is_port && (v == 0 || v > 65535)) || v > 100000000ul) {
        fprintf(stderr, "natmesh-portmap: bad value for %s: \"%s\"\n", f, argv[i + 1]);
        return 1;
      }
      if (is_port)
        port = v;
      else
        a.hold_s = (uint32_t)v;
      i++;
      continue;
    }
    if (strcmp(f, "--observed") == 0) {
      a.observed = argv[++i];
      continue;
    }
    for (k = 0; k < sizeof(map) / sizeof(map[0]); k++) {
      if (strcmp(f, map[k].flag) == 0) {
        if (nm_portmap_config_set(&cfg, map[k].key, argv[i + 1], err, sizeof(err)) < 0) {
          fprintf(stderr, "natmesh-portmap: %s: %s\n", f, err);
          return 1;
        }
        done = 1;
        i++;
        break;
      }
    }
    if (!done) {
      fprintf(stderr, "natmesh-portmap: unknown option %s\n", f);
      usage(stderr);
      return 1;
    }
  }
  if (port == 0) {
    fprintf(stderr, "natmesh-portmap: --port is required\n");
    usage(stderr);
    return 1;
  }

  a.loop = uv_default_loop();
  a.exit_code = 1;
  r = nm_portmap_init(&a.pm, a.loop, &cfg);
  if (r < 0) {
    fprintf(stderr, "natmesh-portmap: %s\n", nm_portmap_strerror(r));
    return 1;
  }
  a.pm.data = &a;
  uv_timer_init(a.loop, &a.hold);
  a.hold.data = &a;
  uv_signal_init(a.loop, &a.sigint);
  uv_signal_init(a.loop, &a.sigterm);
  a.sigint.data = &a;
  a.sigterm.data = &a;
  uv_signal_start(&a.sigint, on_signal, SIGINT);
  uv_signal_start(&a.sigterm, on_signal, SIGTERM);

  r = nm_portmap_start(&a.pm, (uint16_t)port, on_event, &a);
  if (r < 0) {
    fprintf(stderr, "natmesh-portmap: %s\n", nm_portmap_strerror(r));
    app_close(&a);
  }
  uv_run(a.loop, UV_RUN_DEFAULT);
  uv_loop_close(a.loop);
  return a.exit_code;
}
