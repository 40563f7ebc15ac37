/* Publishing the list (publish.c): every change to the list is queued for the delta window
 * (--delta-window-ms, 20 by default; 0 sends each at once) and goes out with the others of
 * the window as ONE delta, encoded once into a shared frame (nm_sbuf) that every registered
 * session sends. A full list owed (a newcomer's, or one asked for) is sent at the window's
 * end too, before the delta, at the version the delta reaches, and its receiver gets no
 * delta from that window: so a burst of joins costs one delta and one set of pages. A list past NM_PEERS_PAGE entries goes in pages (docs/protocol.md, "Paged
 * lists"): the shared pages are encoded once per list version and cached until the version
 * changes; only the asker's own last page is built for it. */
#ifndef NM_MANAGER_PUBLISH_H
#define NM_MANAGER_PUBLISH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "nm_peerlist.h"
#include "nm_sbuf.h"

struct manager;
struct mgr_session;

typedef struct {
  uv_timer_t timer;        /* the window: started by the first change queued */
  unsigned window_ms;
  nm_delta_change *pending; /* the window's changes, in order */
  size_t npending, cap;
  uint64_t base;           /* the version the servants have: where the pending changes start */
  uint64_t flushes;        /* windows closed (each session is served at most once per one) */
  struct mgr_session *waiters; /* sessions owed a full list at the window's end */
  /* the shared pages of list version pages_version (pages 0..npages-1; the asker's page is
   * npages, built per asker) */
  nm_sbuf **pages;
  size_t npages;
  uint64_t pages_version;
  int pages_valid;
  /* each shared page's <peer> elements, serialized once and kept until an entry on that
   * page changes (mgr_publish_touch): a new version re-encodes only the pages that
   * changed, and wraps every page's fragment in its <peers version page pages> */
  struct mgr_page_body *bodies;
  size_t nbodies;
  /* what it did, for tests and metrics */
  uint64_t delta_encodes, page_encodes, lists_sent; /* page_encodes: page fragments */
} mgr_publisher;

int mgr_publish_init(struct manager *m, unsigned window_ms);
void mgr_publish_close(struct manager *m);
/* Queues one change (the list is updated already); closes the window at once when it is 0
 * or full. */
void mgr_publish_change(struct manager *m, const nm_delta_change *c);
/* s is owed the whole list at the window's end. */
void mgr_publish_owe_list(struct manager *m, struct mgr_session *s);
/* s is owed the whole list: at the window's end, or now when nothing is pending. */
void mgr_publish_list_to(struct manager *m, struct mgr_session *s);
/* Closes the window: the full lists owed, then the delta to every other registered session. */
void mgr_publish_flush(struct manager *m);
/* Closes the window now if anything is pending or owed: before a message that names list
 * entries (relay-serve, relay-assign), so that its receiver knows them, as it did when every
 * change went out at once. */
void mgr_publish_settle(struct manager *m);
/* The list's version was set from elsewhere (the store's snapshot, shared.h): the window
 * starts there, empty, and no cached page is reused. Everyone is owed a full list then. */
void mgr_publish_rebase(struct manager *m);
/* The version every served session has (the list's, less what is pending). */
uint64_t mgr_published_version(const struct manager *m);
/* The list's entry at position at changed (added, removed, updated, moved): its page's
 * fragment is encoded again when next needed. */
void mgr_publish_touch(struct manager *m, size_t at);
/* s goes (before it is freed): it is owed nothing any more. */
void mgr_publish_forget(struct manager *m, struct mgr_session *s);

#endif
