/* graph: the topology as Graphviz DOT (render with `dot -Tpng`). Each router's LAN is a
 * cluster holding the nodes behind it, so double NAT reads as boxes inside boxes. */
#ifndef NSIM_GRAPH_H
#define NSIM_GRAPH_H

#include "topo.h"

#include <stdio.h>

void nsim_graph_write(const struct nsim_topo *t, const char *title, FILE *out);

#endif
