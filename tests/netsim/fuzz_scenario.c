/* libFuzzer target: a netsim file through nsim_scenario_load_buf (nm_xml, the strict
 * element and attribute checks, the address plan), then, when accepted, the graph writer;
 * and the command splitter and duration parser on the same bytes. Anything accepted must
 * satisfy the plan's own invariants. */
#include "graph.h"
#include "scenario.h"
#include "util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void nsim__check_plan(const struct nsim_topo *t) {
  for (int i = 0; i < t->nnodes; i++) {
    const struct nsim_node *n = &t->nodes[i];
    if (n->parent >= i || (n->parent >= 0 && !t->nodes[n->parent].is_router)) abort();
    uint32_t net = n->parent < 0 ? t->inet_net : t->nodes[n->parent].lan_net;
    if (((n->addr ^ net) & nsim_mask(n->up_plen)) != 0) abort();
    for (int k = 0; k < i; k++)
      if (t->nodes[k].parent == n->parent && t->nodes[k].addr == n->addr) abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) return 0;
  memcpy(s, data, size);
  s[size] = 0;
  char **argv;
  if (nsim_split_args(s, &argv) >= 0) nsim_argv_free(argv);
  long ms;
  nsim_parse_duration(s, &ms);
  free(s);

  struct nsim_scenario sc;
  char err[512];
  if (nsim_scenario_load_buf((const char *)data, size, "fuzz.xml", &sc, err, sizeof err) == 0) {
    nsim__check_plan(&sc.topo);
    FILE *out = fopen("/dev/null", "w");
    if (out) {
      nsim_graph_write(&sc.topo, sc.name, out);
      fclose(out);
    }
    nsim_scenario_free(&sc);
  }
  return 0;
}
