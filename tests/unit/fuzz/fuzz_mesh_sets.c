/* libFuzzer target: the shared mesh's neighbour sets as a manager reads them from the store
 * (issue 14: the leader's `n` entries of the change log and the snapshot's stored sets;
 * whoever can write to the store can write these). Lines go through mgr_mesh_set_parse and
 * what parses is applied to a small graph with mgr_mesh_apply: no crash, no node past the
 * degree, every edge seen from both ends, and a refusal leaves nothing half-parsed. */
#include "mesh.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { DEGREE = 4, BATCH = 16 };

static void check_graph(const mgr_mesh *g, const mgr_mesh_set *sets, size_t n) {
  char nb[MGR_MESH_DEGREE_MAX][NM_ID_LEN + 1], back[MGR_MESH_DEGREE_MAX][NM_ID_LEN + 1];
  for (size_t i = 0; i < n; i++) {
    size_t k = mgr_mesh_neighbours(g, sets[i].id, nb, MGR_MESH_DEGREE_MAX);
    if (k > DEGREE) abort();
    for (size_t j = 0; j < k; j++) {
      size_t kb = mgr_mesh_neighbours(g, nb[j], back, MGR_MESH_DEGREE_MAX);
      int found = 0;
      for (size_t l = 0; l < kb; l++) found |= strcmp(back[l], sets[i].id) == 0;
      if (!found) abort();
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mgr_mesh g;
  if (mgr_mesh_init(&g, DEGREE, 1) < 0) abort();
  static mgr_mesh_set sets[BATCH];
  size_t n = 0;
  const char *p = (const char *)data;
  for (size_t at = 0; at < size;) {
    const char *nl = memchr(p + at, '\n', size - at);
    size_t len = nl ? (size_t)(nl - (p + at)) : size - at;
    mgr_mesh_set s;
    if (mgr_mesh_set_parse(p + at, len, &s) == 0) {
      if (strlen(s.id) != NM_ID_LEN || s.n > MGR_MESH_DEGREE_MAX || (s.gone && s.n)) abort();
      sets[n++] = s;
    }
    at += len + 1;
    if (n == BATCH || (at >= size && n)) {
      if (mgr_mesh_apply(&g, sets, n) < 0) abort(); /* no allocation fails here */
      check_graph(&g, sets, n);
      n = 0;
    }
  }
  mgr_mesh_repair(&g);
  unsigned mn, mx;
  mgr_mesh_degrees(&g, &mn, &mx);
  if (mx > DEGREE || !mgr_mesh_connected(&g)) abort();
  mgr_mesh_close(&g);
  return 0;
}
