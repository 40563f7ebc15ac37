/* Where every byte of a registered, idle servant goes in the manager (natmesh's own state,
 * not OpenSSL's): the session struct and its parts, its list entry, its index entries, and
 * what a session allocates besides. Prints a table (docs/performance.md, "Manager memory
 * per servant") and, as a ctest test, fails when the total passes MGR_BYTES_PER_SERVANT_MAX.
 *
 * malloc adds 16 bytes per allocation on glibc (x86-64) and rounds to 16; uthash adds a
 * bucket (16 bytes) per 10 entries at most, counted here as 2 bytes per entry. */
#include "manager.h"
#include "nm_peerlist.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define MGR_BYTES_PER_SERVANT_MAX 2048

static size_t chunk(size_t n) { return ((n + 8 + 15) / 16) * 16; } /* glibc: 8 bytes header, 16-aligned */

int main(void) {
  const mgr_session *s = NULL;
  size_t conn = sizeof s->conn, session = sizeof(mgr_session);
  size_t locals = chunk(2 * NM_IP_STRLEN); /* a typical servant reports 2 local addresses */
  /* The list holds a pointer per session (entries are built when encoded), in an array
   * that doubles: up to two pointers each. */
  size_t entry = 2 * sizeof(mgr_session *);
  size_t port = chunk(mgr_index_port_entry_size());
  size_t buckets = 2; /* the listed table */
  size_t tls = chunk(nm_tls_session_struct_size());
  size_t total = chunk(session) + locals + entry + port + buckets + tls;
  printf("| what | bytes |\n|---|---|\n");
  printf("| mgr_session (one malloc) | %zu |\n", chunk(session));
  printf("|   of which nm_conn | %zu |\n", conn);
  printf("|     uv_tcp_t | %zu |\n", sizeof s->conn.tcp);
  printf("|     uv_timer_t (deadlines) | %zu |\n", sizeof s->conn.timer);
  printf("|     frame reader (its payload buffer is freed after each frame) | %zu |\n", sizeof s->conn.reader);
  printf("|     label | %zu |\n", sizeof s->conn.label);
  printf("|     peer address | %zu |\n", sizeof s->conn.peer_ip);
  printf("|     peer's fingerprint | %zu |\n", sizeof s->conn.peer_fp);
  printf("|   of which the servant's own fields (id, name, key, addresses, relay, counters) | %zu |\n",
         offsetof(mgr_session, hh_id) - conn);
  printf("|   of which index, publish and list links (uthash handle, lists, digests) | %zu |\n",
         session - offsetof(mgr_session, hh_id));
  printf("| its local addresses (2, allocated) | %zu |\n", locals);
  printf("| its list entry (a pointer in the list's array, which doubles; the %zu-byte nm_peer is built when encoded) | %zu |\n",
         sizeof(nm_peer), entry);
  printf("| its held port (by address and port) | %zu |\n", port);
  printf("| hash buckets (the listed table: one per 10 entries at most) | %zu |\n", buckets);
  printf("| nm_tls_session (natmesh's part of TLS) | %zu |\n", tls);
  printf("| **total** | **%zu** |\n", total);
  if (total > MGR_BYTES_PER_SERVANT_MAX) {
    printf("FAIL: %zu bytes per servant, more than %d\n", total, MGR_BYTES_PER_SERVANT_MAX);
    return 1;
  }
  return 0;
}
