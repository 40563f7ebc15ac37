#include "graph.h"

#include <string.h>

static const char *nsim__color(const struct nsim_node *n) {
  if (!n->is_router) return "#ffffff";
  switch (n->kind) {
  case NSIM_ROUTER_PUBLIC: return "#d9f2d9";
  case NSIM_ROUTER_UPNP: return "#fff2cc";
  case NSIM_ROUTER_NATPMP: return "#fde9d9";
  case NSIM_ROUTER_FIREWALL: return "#f4cccc";
  case NSIM_ROUTER_SYMMETRIC: return "#e6d9f2";
  }
  return "#ffffff";
}

static void nsim__cond_label(const struct nsim_linkcond *c, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = 0;
  if (c->delay_ms)
    used += (size_t)snprintf(buf + used, len - used, "delay %ldms%s", c->delay_ms, c->jitter_ms ? "" : "\\n");
  if (c->jitter_ms && used < len)
    used += (size_t)snprintf(buf + used, len - used, " ±%ldms\\n", c->jitter_ms);
  if (c->loss_permille && used < len)
    used += (size_t)snprintf(buf + used, len - used, "loss %u.%u%%\\n", c->loss_permille / 10,
                             c->loss_permille % 10);
  if (c->rate_kbit && used < len) snprintf(buf + used, len - used, "rate %ukbit\\n", c->rate_kbit);
}

static void nsim__node(const struct nsim_topo *t, int i, FILE *out, int depth) {
  const struct nsim_node *n = &t->nodes[i];
  char a[16], b[16];
  fprintf(out, "%*s\"%s\" [shape=%s, style=\"%s\", fillcolor=\"%s\", label=\"%s", depth * 2, "",
          n->name, n->is_router ? "box" : "ellipse", n->is_router ? "rounded,filled" : "filled",
          nsim__color(n), n->name);
  int has4 = nsim_family_has4(n->family), has6 = nsim_family_has6(n->family);
  char a6[NSIM_IP6_STRLEN], l6[NSIM_IP6_STRLEN];
  if (has6) nsim_ip6_str(n->addr6, a6), nsim_ip6_str(n->lan6_net, l6);
  if (n->is_router) {
    fprintf(out, "\\n%s router%s%s", nsim_router_kind_name(n->kind), n->hairpin ? ", hairpin" : "",
            has6 ? (has4 ? ", dual" : ", ipv6") : "");
    if (has4)
      fprintf(out, "\\nWAN %s\\nLAN %s/%u", nsim_ip_str(n->addr, a), nsim_ip_str(n->lan_net, b),
              n->lan_plen);
    if (has6) fprintf(out, "\\nWAN %s\\nLAN %s/64", a6, l6);
    fprintf(out, "\"];\n");
  } else {
    fprintf(out, "%s%s%s%s\"];\n", has4 ? "\\n" : "", has4 ? nsim_ip_str(n->addr, a) : "",
            has6 ? "\\n" : "", has6 ? a6 : "");
  }
  if (!n->is_router) return;
  fprintf(out, "%*ssubgraph \"cluster_%s\" {\n%*slabel=\"LAN of %s (", depth * 2, "", n->name,
          depth * 2 + 2, "", n->name);
  if (has4) fprintf(out, "%s/%u%s", nsim_ip_str(n->lan_net, b), n->lan_plen, has6 ? ", " : "");
  if (has6) fprintf(out, "%s/64", l6);
  fprintf(out, ")\"; style=dashed;\n");
  for (int k = 0; k < t->nnodes; k++)
    if (t->nodes[k].parent == i) nsim__node(t, k, out, depth + 1);
  fprintf(out, "%*s}\n", depth * 2, "");
}

void nsim_graph_write(const struct nsim_topo *t, const char *title, FILE *out) {
  char a[16];
  fprintf(out, "graph netsim {\n  label=\"");
  /* The title is free text from the file: keep it inside its quotes. */
  for (const char *p = title; *p; p++) {
    if (*p == '"' || *p == '\\') fputc('\\', out);
    if (*p != '\n' && *p != '\r') fputc(*p, out);
  }
  fprintf(out, "\"; labelloc=t; fontname=\"Helvetica\";\n");
  fprintf(out, "  node [fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n");
  fprintf(out, "  \"internet\" [shape=ellipse, style=filled, fillcolor=\"#cfe2f3\", "
          "label=\"internet\\n%s/%u%s%s%s\"];\n", nsim_ip_str(t->inet_net, a), t->inet_plen,
          t->has_v6 ? "\\n" : "", t->has_v6 ? nsim_ip6_str(t->inet6_net, (char[NSIM_IP6_STRLEN]){0}) : "",
          t->has_v6 ? "/64" : "");
  for (int i = 0; i < t->nnodes; i++)
    if (t->nodes[i].parent < 0) nsim__node(t, i, out, 1);
  for (int i = 0; i < t->nnodes; i++) {
    const struct nsim_node *n = &t->nodes[i];
    char cond[128];
    nsim__cond_label(&n->cond, cond, sizeof cond);
    fprintf(out, "  \"%s\" -- \"%s\"%s%s%s;\n", n->parent < 0 ? "internet" : t->nodes[n->parent].name,
            n->name, cond[0] ? " [label=\"" : "", cond, cond[0] ? "\"]" : "");
  }
  fprintf(out, "}\n");
}
