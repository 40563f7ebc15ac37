/* Publishing the list (publish.h): the delta window, the full lists owed, the shared pages. */
#include "manager.h"
#include "publish.h"
#include "neighbours.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_msg.h"

#include <stdlib.h>
#include <string.h>

struct mgr_page_body {
  char *xml; /* the page's <peer> elements */
  size_t len;
  int dirty;
};

static void mgr__window_end(uv_timer_t *t) { mgr_publish_flush(t->data); }

int mgr_publish_init(manager *m, unsigned window_ms) {
  mgr_publisher *p = &m->pub;
  memset(p, 0, sizeof *p);
  p->window_ms = window_ms;
  p->base = m->list.version;
  int rc = uv_timer_init(m->loop, &p->timer);
  if (rc < 0) return rc;
  p->timer.data = m;
  uv_unref((uv_handle_t *)&p->timer); /* never what keeps the manager running */
  return 0;
}

static void mgr__pages_drop(mgr_publisher *p) {
  for (size_t i = 0; i < p->npages; i++) nm_sbuf_unref(p->pages[i]);
  free(p->pages);
  p->pages = NULL;
  p->npages = 0;
  p->pages_valid = 0;
}

void mgr_publish_close(manager *m) {
  mgr_publisher *p = &m->pub;
  mgr__pages_drop(p);
  for (size_t i = 0; i < p->nbodies; i++) free(p->bodies[i].xml);
  free(p->bodies);
  p->bodies = NULL;
  p->nbodies = 0;
  free(p->pending);
  p->pending = NULL;
  p->npending = p->cap = 0;
}

uint64_t mgr_published_version(const manager *m) { return m->pub.base; }

void mgr_publish_rebase(manager *m) {
  mgr_publisher *p = &m->pub;
  p->npending = 0;
  p->base = m->list.version;
  p->pages_valid = 0; /* the version may be one the cache was built for, with other entries */
}

/* ---- the sessions owed a list: an intrusive list ------------------------------------------ */

static void mgr__waiter_add(mgr_publisher *p, mgr_session *s) {
  if (s->list_waiting) return;
  s->list_waiting = 1;
  s->wait_prev = NULL;
  s->wait_next = p->waiters;
  if (p->waiters) p->waiters->wait_prev = s;
  p->waiters = s;
}

static void mgr__waiter_del(mgr_publisher *p, mgr_session *s) {
  if (!s->list_waiting) return;
  s->list_waiting = 0;
  if (s->wait_prev) s->wait_prev->wait_next = s->wait_next;
  else p->waiters = s->wait_next;
  if (s->wait_next) s->wait_next->wait_prev = s->wait_prev;
  s->wait_prev = s->wait_next = NULL;
}

void mgr_publish_forget(manager *m, mgr_session *s) { mgr__waiter_del(&m->pub, s); }

/* ---- full lists ---------------------------------------------------------------------------- */

/* Entries [first, first + n) of the list, built from their sessions into tmp (an array
 * only: no index), at the list's version. 0 or -ENOMEM; the caller frees tmp->peers. */
static int mgr__entries(manager *m, size_t first, size_t n, nm_peerlist *tmp) {
  nm_peerlist_init(tmp);
  tmp->version = m->list.version;
  tmp->peers = calloc(n ? n : 1, sizeof *tmp->peers);
  if (!tmp->peers) return -ENOMEM;
  for (size_t i = 0; i < n; i++) mgr_session_to_peer(m->list.at[first + i], &tmp->peers[i]);
  tmp->count = tmp->cap = n;
  return 0;
}

/* One document of entries [first, first + n) (a page, or the whole list while it fits one)
 * into *out. For the asker's own page, me is its id. */
static int mgr__encode(manager *m, nm_msg *msg, size_t first, size_t n, nm_msgbuf *out) {
  nm_peerlist tmp;
  int rc = mgr__entries(m, first, n, &tmp);
  if (rc == 0) {
    msg->u.peers.list = &tmp;
    msg->u.peers.first = 0;
    msg->u.peers.n = n;
    rc = nm_msg_encode(msg, out);
  }
  free(tmp.peers);
  return rc;
}

void mgr_publish_touch(manager *m, size_t at) {
  mgr_publisher *p = &m->pub;
  size_t k = at / NM_PEERS_PAGE;
  if (k >= p->nbodies) {
    struct mgr_page_body *nb = realloc(p->bodies, (k + 1) * sizeof *nb);
    if (!nb) {
      /* Every body is encoded again next time (the pages rebuild from the sessions). */
      for (size_t i = 0; i < p->nbodies; i++) p->bodies[i].dirty = 1;
      return;
    }
    for (size_t i = p->nbodies; i <= k; i++) nb[i] = (struct mgr_page_body){NULL, 0, 1};
    p->bodies = nb;
    p->nbodies = k + 1;
  }
  p->bodies[k].dirty = 1;
}

static void mgr__bodies_trim(mgr_publisher *p, size_t keep) {
  for (size_t i = keep; i < p->nbodies; i++) free(p->bodies[i].xml);
  if (keep < p->nbodies) p->nbodies = keep;
}

/* The shared pages of the list as it is now, built once per version; only the pages whose
 * entries changed are encoded again, the others' fragments reused. */
static int mgr__pages_build(manager *m) {
  mgr_publisher *p = &m->pub;
  if (p->pages_valid && p->pages_version == m->list.version) return 0;
  mgr__pages_drop(p);
  size_t shared = (m->list.count + NM_PEERS_PAGE - 1) / NM_PEERS_PAGE;
  if (shared + 1 > NM_PEERS_PAGES_MAX) return -E2BIG;
  if (shared) mgr_publish_touch(m, shared * NM_PEERS_PAGE - 1); /* bodies for every page */
  mgr__bodies_trim(p, shared);
  if (p->nbodies < shared) return -ENOMEM;
  p->pages = calloc(shared ? shared : 1, sizeof *p->pages);
  if (!p->pages) return -ENOMEM;
  int rc = 0;
  for (size_t k = 0; k < shared && rc == 0; k++) {
    struct mgr_page_body *b = &p->bodies[k];
    size_t first = k * NM_PEERS_PAGE;
    size_t n = m->list.count - first < NM_PEERS_PAGE ? m->list.count - first : NM_PEERS_PAGE;
    if (b->dirty || !b->xml) {
      nm_peerlist tmp;
      rc = mgr__entries(m, first, n, &tmp);
      char *xml = NULL;
      size_t len = 0;
      if (rc == 0) rc = nm_peerlist_entries_xml(tmp.peers, n, &xml, &len);
      free(tmp.peers);
      if (rc < 0) break;
      free(b->xml);
      b->xml = xml;
      b->len = len;
      b->dirty = 0;
      p->page_encodes++;
    }
    char *doc = NULL;
    size_t len = 0;
    rc = nm_peerlist_page_from_entries(m->list.version, (unsigned)k, (unsigned)shared + 1, b->xml, b->len, &doc,
                                       &len);
    if (rc == 0) {
      p->pages[k] = nm_sbuf_frame(NM_MSG_PEERS, doc, len);
      if (!p->pages[k]) rc = -ENOMEM;
    }
    free(doc);
    if (rc == 0) p->npages = k + 1;
  }
  if (rc < 0) {
    mgr__pages_drop(p);
    return rc;
  }
  p->pages_version = m->list.version;
  p->pages_valid = 1;
  return 0;
}

/* The whole list to s, now: one document while it fits a page (the old form, which older
 * servants read), else the shared pages and s's own. The queue grows to take the list: it
 * must go out whole, back to back. */
static int mgr__send_list(manager *m, mgr_session *s) {
  mgr_publisher *p = &m->pub;
  /* A bounded mesh: its view (views.h). Out of one (the mesh is the full mesh again, or it
   * is a dedicated relay): the whole list, and its view is forgotten. */
  if (mgr_views_applies(m, s)) {
    p->lists_sent++;
    return mgr_views_send_full(m, s);
  }
  if (s->view.on) mgr_views_forget(m, s);
  nm_msg msg = {.type = NM_MSG_PEERS};
  memcpy(msg.u.peers.me, s->id, sizeof msg.u.peers.me);
  p->lists_sent++;
  nm_msgbuf buf;
  int rc;
  if (m->list.count <= NM_PEERS_PAGE) {
    rc = mgr__encode(m, &msg, 0, m->list.count, &buf);
  } else {
    if (!s->in_list) return -ENOENT;
    rc = mgr__pages_build(m);
    if (rc < 0) return rc;
    size_t bytes = 0;
    for (size_t k = 0; k < p->npages; k++) bytes += p->pages[k]->len;
    size_t room = NM_CONN_MAX_QUEUE + bytes;
    if (s->conn.max_queue < room) s->conn.max_queue = room;
    for (size_t k = 0; k < p->npages && rc == 0; k++) rc = nm_conn_send_shared(&s->conn, p->pages[k]);
    if (rc < 0) return rc;
    msg.u.peers.page = (unsigned)p->npages;
    msg.u.peers.pages = (unsigned)p->npages + 1;
    rc = mgr__encode(m, &msg, s->list_at, 1, &buf);
  }
  if (rc < 0) return rc;
  rc = nm_conn_send(&s->conn, NM_MSG_PEERS, buf.data, buf.len);
  nm_msgbuf_free(&buf);
  return rc;
}

void mgr_publish_owe_list(manager *m, mgr_session *s) { mgr__waiter_add(&m->pub, s); }

void mgr_publish_list_to(manager *m, mgr_session *s) {
  mgr__waiter_add(&m->pub, s);
  if (m->pub.npending == 0) mgr_publish_flush(m);
}

/* ---- the delta window ---------------------------------------------------------------------- */

void mgr_publish_change(manager *m, const nm_delta_change *c) {
  mgr_publisher *p = &m->pub;
  if (p->npending == p->cap) {
    size_t ncap = p->cap ? p->cap * 2 : 16;
    if (ncap > NM_DELTA_CHANGES_MAX) ncap = NM_DELTA_CHANGES_MAX;
    nm_delta_change *n = realloc(p->pending, ncap * sizeof *n);
    if (!n) {
      /* The change is in the list already: servants learn it from their next full list
       * (the heartbeat ack's version tells them they are behind). */
      nm_log_error("out of memory queueing a delta");
      return;
    }
    p->pending = n;
    p->cap = ncap;
  }
  p->pending[p->npending++] = *c;
  if (p->window_ms == 0 || p->npending == NM_DELTA_CHANGES_MAX) mgr_publish_flush(m);
  else if (!uv_is_active((uv_handle_t *)&p->timer)) uv_timer_start(&p->timer, mgr__window_end, p->window_ms, 0);
}

/* The window's delta, encoded once into a shared frame; NULL when nothing is pending. */
static nm_sbuf *mgr__delta_frame(manager *m) {
  mgr_publisher *p = &m->pub;
  if (p->npending == 0) return NULL;
  nm_msg msg = {.type = NM_MSG_DELTA};
  msg.u.delta.base = p->base;
  msg.u.delta.version = p->base + p->npending;
  msg.u.delta.count = p->npending;
  msg.u.delta.changes = p->pending;
  nm_msgbuf buf;
  int rc = nm_msg_encode(&msg, &buf);
  if (rc < 0) {
    nm_log_error("cannot encode a delta: %s", nm_strerror(rc));
    return NULL;
  }
  p->delta_encodes++;
  size_t len = buf.len;
  nm_sbuf *sb = nm_sbuf_frame(NM_MSG_DELTA, buf.data, len);
  nm_msgbuf_free(&buf);
  if (!sb) nm_log_error("cannot frame a delta of %zu bytes", len);
  return sb;
}

void mgr_publish_settle(manager *m) {
  if (m->pub.npending || m->pub.waiters) mgr_publish_flush(m);
}

void mgr_publish_flush(manager *m) {
  mgr_publisher *p = &m->pub;
  uv_timer_stop(&p->timer);
  uint64_t flush = ++p->flushes;
  /* Crossing the threshold changes what everyone's list is (the view or the whole list):
   * everyone is owed a full one, before the neighbours that go out at the flush's end. */
  if (m->mesh_switched)
    for (mgr_session *s = m->sessions; s; s = s->next)
      if (s->state == MGR_SESSION_REGISTERED && (s->view.on || mgr_views_applies(m, s))) mgr__waiter_add(p, s);
  nm_sbuf *delta = mgr__delta_frame(m);
  size_t npending = p->npending;
  if (p->npending && p->base + p->npending != m->list.version)
    nm_log_error("delta window: %zu changes from version %llu, but the list is at %llu", p->npending,
                 (unsigned long long)p->base, (unsigned long long)m->list.version);
  p->npending = 0;
  p->base = m->list.version;
  /* The lists owed first: a newcomer knows its peers before they hear of it and dial it. */
  while (p->waiters) {
    mgr_session *s = p->waiters;
    mgr__waiter_del(p, s);
    if (s->state != MGR_SESSION_REGISTERED || s->conn.closing) continue;
    s->list_flush = flush;
    int rc = mgr__send_list(m, s);
    if (rc < 0) nm_log_warn("cannot send peer list to %s: %s", s->name, nm_strerror(rc));
  }
  if (delta) {
    /* One change to N sessions: the one O(N) step, and the same bytes for all. */
    for (mgr_session *s = m->index.listed; s; s = s->hh_id.next) {
      if (s->state != MGR_SESSION_REGISTERED || s->list_flush == flush || s->conn.closing || s->view.on) continue;
      int rc = nm_conn_send_shared(&s->conn, delta);
      if (rc < 0) nm_log_warn("cannot send delta to %s: %s", s->name, nm_strerror(rc));
    }
    nm_sbuf_unref(delta);
  }
  /* The sessions in views: each its own delta, with the window's changes of the entries it
   * holds and what the graph's changes add to or take from its view. */
  mgr_views_flush(m, p->pending, npending, flush);
  /* Then the neighbours this window changed: everyone knows the entries they name now. */
  m->views_in_flush = 1;
  mgr_neighbours_flush(m);
  m->views_in_flush = 0;
}
