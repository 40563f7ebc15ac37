/* Several managers, one overlay: the remote entries, the store's changes turned into the
 * list this manager publishes, and reconciliation after an outage (shared.h). */
#include "shared.h"
#include "manager.h"
#include "complaints.h"
#include "neighbours.h"
#include "store.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_msg.h"
#include "nm_status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Managers of one overlay whose names are kept (a holder's name is interned once). */
#define MGR_SHARED_HOLDERS_MAX 64
/* Complaints one servant may pass on to other managers per heartbeat interval: one about
 * each of this many servants it cannot reach. */
#define MGR_SHARED_COMPLAINTS_PER_HB 64
/* Renewals and the announcement at most this often (the sweep runs every quarter heartbeat). */
#define MGR_SHARED_RENEW_MS 1000
/* Admission facts written to the store per step (each attach, each sweep): a bounded burst
 * whatever the size of the admission store. */
#define MGR_SHARED_FACTS_STEP 1024

/* An announced manager, copied from the store's reply (for the status). */
typedef struct {
  char name[NM_STATUS_TEXT_MAX + 1];
  char addr[64];
  unsigned port;
  uint64_t age_ms;
} mgr_store_manager_copy;

/* What a remote entry has besides its session shell. */
struct mgr_remote {
  nm_peer peer;        /* as its holder published it */
  const char *holder;  /* interned */
  uint64_t unconfirmed_ms; /* since when a snapshot lacked it (0: confirmed) */
  uint64_t seen;       /* the snapshot generation that last held it */
  mgr_session *prev, *next;
};

struct mgr_shared {
  mgr_store *store;
  char self[MGR_MANAGER_NAME_MAX + 1];
  char *holders[MGR_SHARED_HOLDERS_MAX];
  size_t nholders;
  mgr_session *remotes; /* every remote entry */
  size_t nremotes;
  int attached;          /* a snapshot was applied and the store answers: sequenced */
  uint64_t attached_ms;
  uint64_t generation;   /* snapshots applied */
  uint64_t last_renew_ms;
  unsigned ttl_ms;
  int stopped;
  uint64_t write_errors; /* writes the store client refused (down, too many in flight) */
  uint64_t complaints_dropped; /* complaints not passed on: past the per-servant rate */
  size_t nunconfirmed;   /* remote entries a snapshot lacked, at most (the tick recounts) */
  uint64_t detached_changes; /* changes of ours published with our own versions since the
                                last snapshot (the store did not answer) */
  nm_log_rate log;       /* what the store's contents make us say */
  /* the overlay's managers as last announced (for the status) */
  mgr_store_manager_copy managers[NM_STATUS_MANAGERS_MAX];
  size_t nmanagers, nmanagers_total;
  /* Publishing this manager's admission facts (mgr__facts_step): which table, where. */
  int pub_active, pub_keys, pub_phase;
  size_t pub_at;
  uint64_t pub_reads;    /* the admission file's reads when publishing last started */
  uint64_t facts_learned, facts_bad;
  int drop_revoked;      /* a key was revoked by another manager: check the sessions */
  nm_log_rate adm_log;   /* facts learned: a newcomer may learn thousands at once */
};

/* ---- records ---------------------------------------------------------------------------- */

/* A record: one line of private fields, then the entry as a one-change delta document, read
 * back with the message layer's own decoder (its checks and limits). */
int mgr_shared_record_encode(const nm_peer *p, const mgr_shared_private *priv, char **out, size_t *len) {
  nm_delta_change c;
  memset(&c, 0, sizeof c);
  c.peer = *p;
  nm_msg msg = {.type = NM_MSG_DELTA};
  msg.u.delta.base = 0;
  msg.u.delta.version = 1;
  msg.u.delta.count = 1;
  msg.u.delta.changes = &c;
  nm_msgbuf buf;
  int rc = nm_msg_encode(&msg, &buf);
  if (rc < 0) return rc;
  char head[96];
  int hn = snprintf(head, sizeof head, "t=%s p=%d v=%d s=%d\n", priv->token[0] ? priv->token : "-", priv->pair ? 1 : 0,
                    priv->provisional ? 1 : 0, priv->standby ? 1 : 0);
  char *r = malloc((size_t)hn + buf.len + 1);
  if (!r) {
    nm_msgbuf_free(&buf);
    return -ENOMEM;
  }
  memcpy(r, head, (size_t)hn);
  memcpy(r + hn, buf.data, buf.len);
  r[hn + buf.len] = 0;
  *out = r;
  *len = (size_t)hn + buf.len;
  nm_msgbuf_free(&buf);
  return 0;
}

int mgr_shared_record_decode(const char *data, size_t len, nm_peer *p, mgr_shared_private *priv, char *err,
                             size_t errlen) {
  memset(priv, 0, sizeof *priv);
  const char *nl = memchr(data, '\n', len < 128 ? len : 128);
  if (!nl) return snprintf(err, errlen, "record without its private line"), -EINVAL;
  char head[128];
  memcpy(head, data, (size_t)(nl - data));
  head[nl - data] = 0;
  char token[40];
  int pair, prov, standby;
  if (sscanf(head, "t=%39s p=%d v=%d s=%d", token, &pair, &prov, &standby) != 4 || (pair | prov | standby) > 1 ||
      (pair | prov | standby) < 0)
    return snprintf(err, errlen, "record: bad private line"), -EINVAL;
  if (strcmp(token, "-") != 0) {
    if (strlen(token) != MGR_TOKEN_LEN || strspn(token, "0123456789abcdef") != MGR_TOKEN_LEN)
      return snprintf(err, errlen, "record: bad relay token"), -EINVAL;
    memcpy(priv->token, token, MGR_TOKEN_LEN + 1);
  }
  priv->pair = pair, priv->provisional = prov, priv->standby = standby;
  nm_msg msg;
  const char *xml = nl + 1;
  int rc = nm_msg_decode(NM_MSG_DELTA, xml, len - (size_t)(xml - data), &msg, err, errlen);
  if (rc < 0) return rc;
  if (msg.u.delta.count != 1 || msg.u.delta.changes[0].leave) {
    nm_msg_clear(&msg);
    return snprintf(err, errlen, "record: not one entry"), -EINVAL;
  }
  *p = msg.u.delta.changes[0].peer;
  nm_msg_clear(&msg);
  return 0;
}

static void mgr__facts_start(manager *m, int keys);
static void mgr__facts_step(manager *m);

/* ---- remote entries ----------------------------------------------------------------------- */

static const char *mgr__intern(struct mgr_shared *sh, const char *name) {
  for (size_t i = 0; i < sh->nholders; i++)
    if (strcmp(sh->holders[i], name) == 0) return sh->holders[i];
  if (sh->nholders == MGR_SHARED_HOLDERS_MAX) return "(another manager)";
  char *c = strdup(name);
  if (!c) return "(another manager)";
  sh->holders[sh->nholders++] = c;
  return c;
}

const char *mgr_shared_holder(const mgr_session *s) {
  if (s->remote) return s->remote->holder;
  return s->mgr && s->mgr->shared ? s->mgr->shared->self : "";
}

void mgr_shared_remote_peer(const mgr_session *s, nm_peer *p) { *p = s->remote->peer; }

mgr_session *mgr_shared_remote_first(manager *m) { return m->shared ? m->shared->remotes : NULL; }
mgr_session *mgr_shared_remote_next(mgr_session *s) { return s->remote->next; }

/* The session fields the rest of the manager reads from a listed servant, from its entry. */
static void mgr__remote_fill(mgr_session *s, const nm_peer *p, const mgr_shared_private *priv) {
  memcpy(s->id, p->id, sizeof s->id);
  memcpy(s->name, p->name, sizeof s->name);
  s->role = p->role;
  s->reach = p->state;
  s->mapping = p->mapping;
  memcpy(s->relay_id, p->relay, sizeof s->relay_id);
  memcpy(s->relay_token, priv->token, sizeof s->relay_token);
  s->pair = priv->pair;
  s->provisional = priv->provisional;
  s->standby = priv->standby;
  if (priv->standby && !p->relay[0]) s->relay_id[0] = 0;
  memcpy(s->key, p->key, sizeof s->key);
  nm_fingerprint_of_pubkey(p->key, &s->conn.peer_fp);
  s->secure = 1;
  snprintf(s->conn.peer_ip, sizeof s->conn.peer_ip, "%.45s", p->ip); /* a literal: fits */
  s->port = p->port;
  if (p->state == NM_REACH_MAPPED) {
    snprintf(s->ext_ip, sizeof s->ext_ip, "%.45s", p->ip);
    s->ext_port = p->port;
  }
  s->remote->peer = *p;
}

static mgr_session *mgr__remote_new(manager *m, const nm_peer *p, const mgr_shared_private *priv, const char *holder) {
  struct mgr_shared *sh = m->shared;
  mgr_session *s = calloc(1, sizeof *s);
  struct mgr_remote *r = calloc(1, sizeof *r);
  if (!s || !r) {
    free(s);
    free(r);
    return NULL;
  }
  s->mgr = m;
  s->remote = r;
  s->conn.closing = 1; /* never sent to: nm_conn refuses anything on it */
  r->holder = mgr__intern(sh, holder);
  r->seen = sh->generation;
  mgr__remote_fill(s, p, priv);
  r->next = sh->remotes;
  if (sh->remotes) sh->remotes->remote->prev = s;
  sh->remotes = s;
  sh->nremotes++;
  return s;
}

/* s leaves the remote list and is freed (out of the index and the list already). */
static void mgr__remote_free(manager *m, mgr_session *s) {
  struct mgr_shared *sh = m->shared;
  struct mgr_remote *r = s->remote;
  if (r->prev) r->prev->remote->next = r->next;
  else sh->remotes = r->next;
  if (r->next) r->next->remote->prev = r->prev;
  sh->nremotes--;
  mgr_complaints_free(&s->complaints);
  free(s->local);
  free(r);
  free(s);
}

/* A remote entry for p, listed. NULL when out of memory or the list is full (said). */
static mgr_session *mgr__remote_list(manager *m, const nm_peer *p, const mgr_shared_private *priv,
                                     const char *holder) {
  mgr_session *s = mgr__remote_new(m, p, priv, holder);
  if (!s) {
    nm_log_error("out of memory listing %s of manager %s", p->name, holder);
    return NULL;
  }
  mgr_index_set_state(&m->index, s, MGR_SESSION_REMOTE);
  if (mgr_list_put_remote(m, s) < 0) {
    mgr_index_forget(&m->index, s);
    mgr__remote_free(m, s);
    return NULL;
  }
  return s;
}

static void mgr__remote_update(manager *m, mgr_session *s, const nm_peer *p, const mgr_shared_private *priv,
                               const char *holder) {
  s->remote->holder = mgr__intern(m->shared, holder);
  s->remote->unconfirmed_ms = 0;
  s->remote->seen = m->shared->generation;
  mgr__remote_fill(s, p, priv);
  mgr_list_put_remote(m, s);
}

static void mgr__remote_drop(manager *m, mgr_session *s) {
  mgr_list_drop_remote(m, s);
  mgr_complaints_on_leave(m, s);
  mgr_index_forget(&m->index, s);
  mgr_neighbours_left(m, s); /* after the index forgot it: the overlay's size is counted there */
  mgr__remote_free(m, s);
}

void mgr_shared_take_over(manager *m, mgr_session *old, mgr_session *s) {
  const char *from = old->remote->holder;
  s->reach = old->reach;
  s->mapping = old->mapping;
  if (old->reach == NM_REACH_MAPPED) {
    memcpy(s->ext_ip, old->ext_ip, sizeof s->ext_ip);
    s->ext_port = old->ext_port;
  }
  memcpy(s->relay_id, old->relay_id, sizeof s->relay_id);
  memcpy(s->relay_token, old->relay_token, sizeof s->relay_token);
  s->pair = old->pair;
  s->provisional = old->provisional;
  s->provisional_ms = mgr_now_ms(m);
  s->standby = old->standby;
  nm_log_info("%s (%s) moved here from manager %s: it takes its registration over (%s%s%s)", s->name, s->id, from,
              nm_reach_name(s->reach), s->relay_id[0] ? ", relay " : "", s->relay_id);
  /* The index first (one listed session per id), then its place in the list. */
  mgr_index_forget(&m->index, old);
  mgr_index_set_state(&m->index, s, MGR_SESSION_REPLACING);
  mgr_list_hand_over(m, old, s);
  mgr_index_track_relayed(&m->index, s);
  mgr_complaints_on_leave(m, old);
  mgr__remote_free(m, old);
}

/* ---- writing ------------------------------------------------------------------------------ */

int mgr_shared_sequenced(const manager *m) { return m->shared && m->shared->attached; }

static int mgr__record_of(const mgr_session *s, char **out, size_t *len) {
  nm_peer p;
  mgr_session_to_peer(s, &p);
  mgr_shared_private priv;
  memset(&priv, 0, sizeof priv);
  memcpy(priv.token, s->relay_token, sizeof priv.token);
  priv.pair = s->pair;
  priv.provisional = s->provisional;
  priv.standby = s->standby;
  return mgr_shared_record_encode(&p, &priv, out, len);
}

static void mgr__write_failed(manager *m, const char *what, const char *name, int rc) {
  m->shared->write_errors++;
  nm_log_ratelimited(&m->shared->log, NM_LOG_WARN, "store: cannot write %s of %s: %s", what, name, nm_strerror(rc));
}

int mgr_shared_put(manager *m, mgr_session *s) {
  struct mgr_shared *sh = m->shared;
  if (!sh || sh->stopped) return 0;
  char *rec = NULL;
  size_t len = 0;
  int rc = mgr__record_of(s, &rec, &len);
  if (rc == 0) rc = mgr_store_put(sh->store, s->id, rec, len);
  free(rec);
  /* Not written while attached: the renewal's missing list or the next snapshot puts it
   * right; not published here, or the sequence would fork. */
  if (rc < 0 && sh->attached) mgr__write_failed(m, "the entry", s->name, rc);
  if (!sh->attached) sh->detached_changes++; /* the caller publishes it with a version of ours */
  return sh->attached;
}

int mgr_shared_leave(manager *m, mgr_session *s, const char *reason) {
  struct mgr_shared *sh = m->shared;
  if (!sh || sh->stopped) return 0;
  int rc = mgr_store_leave(sh->store, s->id, reason ? reason : "");
  if (rc < 0 && sh->attached) mgr__write_failed(m, "the leave", s->name, rc);
  if (!sh->attached) sh->detached_changes++;
  return sh->attached;
}

void mgr_shared_complain(manager *m, mgr_session *reporter, mgr_session *accused) {
  struct mgr_shared *sh = m->shared;
  if (!sh || !accused->remote) return;
  /* Each one is a write every manager reads: a servant may pass on a bounded number per
   * heartbeat interval (its holder counts at most one per pair per interval anyway), so a
   * flood of complaints cannot push real changes out of the bounded change log. */
  uint64_t now = mgr_now_ms(m);
  if (now - reporter->complain_window_ms >= (uint64_t)m->cfg.heartbeat_s * 1000) {
    reporter->complain_window_ms = now;
    reporter->complain_forwarded = 0;
  }
  if (reporter->complain_forwarded >= MGR_SHARED_COMPLAINTS_PER_HB) {
    sh->complaints_dropped++;
    nm_log_ratelimited(&sh->log, NM_LOG_WARN, "%s complains faster than %d a heartbeat about servants of other "
                       "managers: the rest of this interval's are not passed on", reporter->name,
                       MGR_SHARED_COMPLAINTS_PER_HB);
    return;
  }
  reporter->complain_forwarded++;
  int rc = mgr_store_complain(sh->store, accused->id, accused->remote->holder, reporter->id);
  if (rc < 0) mgr__write_failed(m, "a complaint about", accused->name, rc);
}

/* ---- the store's changes ---------------------------------------------------------------- */

static void mgr__on_complaint(manager *m, const mgr_store_change *c) {
  if (strcmp(c->holder, m->shared->self) != 0) return; /* its holder judges */
  char reporter_id[NM_ID_LEN + 1];
  if (c->len > NM_ID_LEN) return;
  memcpy(reporter_id, c->data, c->len);
  reporter_id[c->len] = 0;
  mgr_session *reporter = mgr_find_listed(m, reporter_id);
  if (!reporter || !reporter->remote) return; /* ours complain to us directly */
  mgr_session_complaint(m, reporter, c->id);
}

/* A change of the overlay, at version seq: the list learns it (when it is another
 * manager's), then it is published. */
static void mgr__on_change(void *ud, const mgr_store_change *c) {
  manager *m = ud;
  struct mgr_shared *sh = m->shared;
  if (c->op == 'c') {
    mgr__on_complaint(m, c);
    return;
  }
  if (c->op == 'n') { /* the mesh leader's sets (our own: drawn here already) */
    if (strcmp(c->holder, sh->self) != 0) mgr_neighbours_follow(m, c->data, c->len);
    return;
  }
  if (!sh->attached) return; /* a snapshot comes first */
  if (c->seq <= m->list.version) return; /* already in the snapshot */
  if (c->seq != m->list.version + 1)
    nm_log_ratelimited(&sh->log, NM_LOG_WARN, "store: change %llu after %llu (servants will ask for the list)",
                       (unsigned long long)c->seq, (unsigned long long)m->list.version);
  int mine = strcmp(c->holder, sh->self) == 0;
  mgr_session *s = mgr_find_listed(m, c->id);
  nm_delta_change ch;
  memset(&ch, 0, sizeof ch);
  if (c->op == 'u') {
    mgr_shared_private priv;
    char err[200];
    if (mgr_shared_record_decode(c->data, c->len, &ch.peer, &priv, err, sizeof err) < 0 ||
        strcmp(ch.peer.id, c->id) != 0) {
      nm_log_ratelimited(&sh->log, NM_LOG_ERROR, "store: the record of %s is unreadable: %s", c->id, err);
      m->list.version = c->seq; /* the version moves on; servants ask for the list */
      return;
    }
    if (!mine) {
      if (!s && (s = mgr__remote_list(m, &ch.peer, &priv, c->holder))) mgr_neighbours_joined(m, s);
      else if (s && s->remote) mgr__remote_update(m, s, &ch.peer, &priv, c->holder);
      else {
        /* Ours, held by another manager now: the servant moved there. Its session here is
         * stale; its place in the list goes to the remote entry, and no leave is said. */
        mgr_session *r = mgr__remote_new(m, &ch.peer, &priv, c->holder);
        if (r) {
          nm_log_info("%s (%s) is held by manager %s now: letting its session here go", s->name, s->id, c->holder);
          mgr_session_retire(s, MGR_RETIRE_MOVED, r);
          mgr_index_set_state(&m->index, r, MGR_SESSION_REMOTE);
        }
      }
    } else if (s && s->remote) {
      /* A record of ours we hold no session for (an earlier life of this manager): it goes. */
      mgr_store_leave(sh->store, c->id, "no session at its manager");
    }
  } else {
    ch.leave = 1;
    memcpy(ch.peer.id, c->id, sizeof ch.peer.id);
    if (s && s->remote) mgr__remote_drop(m, s);
    else if (s && !mine) {
      /* Our servant's record expired or was dropped while we hold it: written again (the
       * leave goes out, and the join after it). */
      nm_log_ratelimited(&sh->log, NM_LOG_WARN, "store: the record of %s was dropped (%.*s); writing it again",
                         s->name, (int)(c->len > 80 ? 80 : c->len), c->data);
      m->list.version = c->seq;
      mgr_publish_change(m, &ch);
      mgr_shared_put(m, s);
      return;
    }
  }
  m->list.version = c->seq;
  mgr_publish_change(m, &ch);
}

/* The stored graph (the leader's sets), for a manager that follows it. Sets stored empty
 * are not known: the graph keeps what it has for them (a store that lost its data must not
 * cut every servant off its neighbours; the leader writes its graph again). */
static void mgr__mesh_from_snapshot(manager *m, const mgr_store_entry *e, size_t n) {
  size_t len = 0;
  for (size_t i = 0; i < n; i++)
    if (e[i].mesh_len) len += strlen(e[i].id) + 1 + e[i].mesh_len + 1;
  if (!len) return;
  char *buf = malloc(len), *at = buf;
  if (!buf) {
    nm_log_error("mesh: out of memory reading the stored graph");
    return;
  }
  for (size_t i = 0; i < n; i++) {
    if (!e[i].mesh_len) continue;
    size_t l = strlen(e[i].id);
    memcpy(at, e[i].id, l);
    at[l] = ' ';
    memcpy(at + l + 1, e[i].mesh, e[i].mesh_len);
    at += l + 1 + e[i].mesh_len;
    *at++ = '\n';
  }
  mgr_neighbours_follow(m, buf, (size_t)(at - buf));
  free(buf);
}

int mgr_shared_mesh_write(manager *m, const char *payload, size_t len, int reset) {
  struct mgr_shared *sh = m->shared;
  if (!sh || sh->stopped) return -ENOTCONN;
  int rc = mgr_store_mesh(sh->store, payload, len, reset);
  if (rc < 0) sh->write_errors++;
  return rc;
}

static void mgr__on_lead(void *ud, const char *leader, int leading) {
  manager *m = ud;
  if (!leading && leader[0]) nm_log_info("mesh: %s leads the overlay's mesh", leader);
  mgr_neighbours_lead(m, leading);
}

/* The whole registry at version seq (after a connection or a gap): reconciled with ours. */
static void mgr__on_snapshot(void *ud, uint64_t seq, const mgr_store_entry *e, size_t n) {
  manager *m = ud;
  struct mgr_shared *sh = m->shared;
  uint64_t now = mgr_now_ms(m);
  mgr_publish_settle(m); /* what went out under the old numbering, out first */
  uint64_t gen = ++sh->generation;
  size_t remote = 0, ours = 0, gone = 0, dropped = 0, changed = 0;
  for (size_t i = 0; i < n; i++) {
    nm_peer p;
    mgr_shared_private priv;
    char err[200];
    if (mgr_shared_record_decode(e[i].data, e[i].len, &p, &priv, err, sizeof err) < 0 || strcmp(p.id, e[i].id) != 0) {
      nm_log_ratelimited(&sh->log, NM_LOG_ERROR, "store: the record of %s is unreadable: %s", e[i].id, err);
      continue;
    }
    mgr_session *s = mgr_find_listed(m, e[i].id);
    if (strcmp(e[i].holder, sh->self) == 0) {
      if (s && !s->remote) {
        ours++;
        /* As we would write it now: nothing to write again. */
        char *rec = NULL;
        size_t len = 0;
        if (mgr__record_of(s, &rec, &len) == 0 && len == e[i].len && memcmp(rec, e[i].data, len) == 0)
          s->shared_seen = gen;
        free(rec);
        continue;
      }
      /* Ours by the store, not held here: an earlier life's. */
      mgr_store_leave(sh->store, e[i].id, "no session at its manager");
      gone++;
      continue;
    }
    if (!s) {
      s = mgr__remote_list(m, &p, &priv, e[i].holder);
      if (s) mgr_neighbours_joined(m, s);
      changed++;
    } else if (s->remote) {
      if (memcmp(&s->remote->peer, &p, sizeof p) != 0 || strcmp(s->remote->holder, e[i].holder) != 0) changed++;
      mgr__remote_update(m, s, &p, &priv, e[i].holder);
    } else {
      continue; /* held by us with a live session: ours wins, written below */
    }
    if (s) s->remote->seen = gen, remote++;
  }
  /* Remote entries the store lacks: kept a heartbeat timeout, for their holders to write
   * them again (the store may have lost everything); the tick drops them after that. */
  for (mgr_session *s = sh->remotes; s; s = s->remote->next)
    if (s->remote->seen != gen && !s->remote->unconfirmed_ms) s->remote->unconfirmed_ms = now, dropped++;
  sh->nunconfirmed += dropped;
  mgr__mesh_from_snapshot(m, e, n);
  sh->attached = 1;
  sh->attached_ms = now;
  mgr__facts_start(m, 1);
  mgr__facts_step(m);
  /* Our servants' lists anew, at the overlay's version, unless they are right already: the
   * store moved on without us, the snapshot changed remote entries (no delta can say so),
   * or we published changes of our own while detached. A connection that only blinked
   * costs no list (at thousands of servants, a round of full lists is seconds of work). */
  int lists = seq != m->list.version || changed || sh->detached_changes;
  sh->detached_changes = 0;
  if (lists) {
    m->list.version = seq;
    mgr_publish_rebase(m);
  }
  /* Ours that the store lacks or holds otherwise, written again (each comes back as a
   * change, at the next versions). */
  size_t put = 0;
  for (mgr_session *s = m->index.listed; s; s = s->hh_id.next)
    if (!s->remote && s->state == MGR_SESSION_REGISTERED && s->shared_seen != gen) mgr_shared_put(m, s), put++;
  if (lists) {
    for (mgr_session *s = m->index.listed; s; s = s->hh_id.next)
      if (s->state == MGR_SESSION_REGISTERED) mgr_publish_owe_list(m, s);
    mgr_publish_flush(m);
  }
  mgr_store_lead(sh->store); /* the mesh's lease at once, not at the next renewal */
  nm_log_info("store: overlay version %llu: %zu servants at other managers (%zu changed), %zu of ours (%zu written "
              "again), %zu stale records of ours removed, %zu remote entries unconfirmed; %s",
              (unsigned long long)seq, remote, changed, ours, put, gone, dropped,
              lists ? "every servant here gets the list anew" : "the lists here are current");
}

static void mgr__on_down(void *ud, const char *why) {
  manager *m = ud;
  struct mgr_shared *sh = m->shared;
  sh->attached = 0;
  nm_log_error("store: %s; serving the %zu servants held here from memory, with every other manager's servants "
               "kept as they were, until the store answers again",
               why, m->index.servants);
}

static void mgr__on_renewed(void *ud, const char *const *missing, size_t nmissing, const char *const *moved,
                            const char *const *moved_to, size_t nmoved) {
  manager *m = ud;
  for (size_t i = 0; i < nmissing; i++) {
    mgr_session *s = mgr_find_registered(m, missing[i]);
    if (s && !s->remote) mgr_shared_put(m, s);
  }
  /* A servant held elsewhere now: the change log brings the other manager's record. */
  for (size_t i = 0; i < nmoved; i++) nm_log_debug("store: %s is held by %s now", moved[i], moved_to[i]);
}

static void mgr__on_managers(void *ud, const mgr_store_manager *ms, size_t n) {
  manager *m = ud;
  struct mgr_shared *sh = m->shared;
  sh->nmanagers_total = n;
  sh->nmanagers = 0;
  for (size_t i = 0; i < n && sh->nmanagers < NM_STATUS_MANAGERS_MAX; i++) {
    mgr_store_manager_copy *c = &sh->managers[sh->nmanagers++];
    snprintf(c->name, sizeof c->name, "%s", ms[i].name ? ms[i].name : "");
    snprintf(c->addr, sizeof c->addr, "%s", ms[i].addr ? ms[i].addr : "");
    c->port = ms[i].port;
    c->age_ms = ms[i].age_ms;
  }
}

void mgr_shared_status(manager *m, nm_status *st) {
  struct mgr_shared *sh = m->shared;
  if (!sh) return;
  nm_status_store *ss = &st->store;
  ss->present = 1;
  snprintf(ss->url, sizeof ss->url, "%s", m->cfg.store);
  int up = !sh->stopped && sh->attached && mgr_store_is_up(sh->store);
  ss->state = up ? NM_STORE_UP : NM_STORE_DOWN;
  snprintf(ss->primary, sizeof ss->primary, "%s", up ? mgr_store_primary(sh->store) : "");
  snprintf(ss->mesh_leader, sizeof ss->mesh_leader, "%s", up ? mgr_store_leader(sh->store) : "");
  for (size_t i = 0; i < sh->nmanagers; i++) {
    nm_status_manager *e = nm_status_add_manager(st);
    if (!e) break;
    snprintf(e->name, sizeof e->name, "%s", sh->managers[i].name);
    snprintf(e->addr, sizeof e->addr, "%s", sh->managers[i].addr);
    e->port = (uint16_t)sh->managers[i].port;
    e->last_seen_ms = sh->managers[i].age_ms;
    e->has_last_seen = 1;
  }
  if (sh->nmanagers_total > ss->nmanagers_total) ss->nmanagers_total = (unsigned)sh->nmanagers_total;
}

/* ---- admission facts ----------------------------------------------------------------------- */

/* One fact of ours to the store. 0, or the store client's error. */
static int mgr__fact_write(manager *m, const nm_admission_fact *f) {
  char value[NM_ADMISSION_FACT_VALUE_MAX];
  if (nm_admission_fact_format(f, value, sizeof value) < 0) return 0; /* not ours to fix: skipped */
  return mgr_store_admission(m->shared->store, f->kind, f->hex, value);
}

/* Publishing starts over (each attach: every table; after the file was read again: the
 * invites and revocations, which only the subcommands add there; a key admitted here is
 * published when it is admitted). */
static void mgr__facts_start(manager *m, int keys) {
  struct mgr_shared *sh = m->shared;
  sh->pub_keys = keys || (sh->pub_active && sh->pub_keys);
  sh->pub_active = 1;
  sh->pub_phase = 0;
  sh->pub_at = 0;
  sh->pub_reads = m->admission.reads;
}

/* The next MGR_SHARED_FACTS_STEP facts: revoked invites, revoked keys, invites (not
 * expired), then admitted keys. The tables may change between steps (a record removed
 * moves the last one into its place): a fact may be written twice or missed then, until
 * the next start; the store ignores a fact it holds. */
static void mgr__facts_step(manager *m) {
  struct mgr_shared *sh = m->shared;
  const nm_admission_store *st = &m->admission.store;
  uint64_t now = (uint64_t)time(NULL);
  for (unsigned budget = MGR_SHARED_FACTS_STEP; sh->pub_active && budget;) {
    nm_admission_fact f;
    memset(&f, 0, sizeof f);
    size_t n = sh->pub_phase == 0 ? st->nrevoked : sh->pub_phase == 1 ? st->nrevoked_keys
             : sh->pub_phase == 2 ? st->ninvites : sh->pub_phase == 3 && sh->pub_keys ? st->nkeys : 0;
    if (sh->pub_phase > 3) {
      sh->pub_active = 0;
      break;
    }
    if (sh->pub_at >= n) {
      sh->pub_phase++;
      sh->pub_at = 0;
      continue;
    }
    size_t i = sh->pub_at;
    switch (sh->pub_phase) {
    case 0: f.kind = NM_ADMISSION_FACT_REVOKED_INVITE, memcpy(f.hex, st->revoked[i], sizeof f.hex); break;
    case 1: f.kind = NM_ADMISSION_FACT_REVOKED_KEY, memcpy(f.hex, st->revoked_keys[i], sizeof f.hex); break;
    case 2:
      f.kind = NM_ADMISSION_FACT_INVITE;
      memcpy(f.hex, st->invites[i].hash, sizeof f.hex);
      f.expires = st->invites[i].expires, f.role = st->invites[i].role, f.max_uses = st->invites[i].max_uses;
      break;
    default:
      f.kind = NM_ADMISSION_FACT_KEY;
      memcpy(f.hex, st->keys[i].fingerprint, sizeof f.hex);
      memcpy(f.name, st->keys[i].name, sizeof f.name);
      memcpy(f.via, st->keys[i].via, sizeof f.via);
      f.role = st->keys[i].role;
      break;
    }
    if (f.kind == NM_ADMISSION_FACT_INVITE && nm_invite_expired(f.expires, now)) {
      sh->pub_at++;
      continue;
    }
    int rc = mgr__fact_write(m, &f);
    if (rc == -ENOBUFS) return; /* the rest at the next step */
    if (rc == -ENOTCONN) {
      sh->pub_active = 0; /* the next attach starts over */
      return;
    }
    if (rc < 0) mgr__write_failed(m, "an admission fact", f.hex, rc);
    sh->pub_at++;
    budget--;
  }
}

void mgr_shared_admitted(manager *m, const char *fingerprint) {
  struct mgr_shared *sh = m->shared;
  if (!sh || sh->stopped || !sh->attached) return; /* the next attach publishes it */
  const nm_admission_key *k = nm_admission_find_key(&m->admission.store, fingerprint);
  if (!k) return;
  nm_admission_fact f = {.kind = NM_ADMISSION_FACT_KEY, .role = k->role};
  memcpy(f.hex, k->fingerprint, sizeof f.hex);
  memcpy(f.name, k->name, sizeof f.name);
  memcpy(f.via, k->via, sizeof f.via);
  int rc = mgr__fact_write(m, &f);
  if (rc < 0) mgr__write_failed(m, "the admission", k->name, rc);
}

/* At most 16 characters of a string from the store, fit for a log line: whoever writes to
 * the store must not be able to forge lines in ours. */
static const char *mgr__loggable(const char *in, char out[17]) {
  size_t i = 0;
  for (; in[i] && i < 16; i++) {
    char c = in[i];
    out[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                     c == '-'
                 ? c
                 : '?';
  }
  out[i] = 0;
  return out;
}

/* A fact of another manager's (or, from a snapshot, of any): made here too. */
static void mgr__on_admission(void *ud, char kind, const char *key, const char *value, size_t len, const char *from) {
  manager *m = ud;
  struct mgr_shared *sh = m->shared;
  if (sh->stopped || (from[0] && strcmp(from, sh->self) == 0)) return; /* ours: known */
  const char *who = !from[0] ? "(the store)" : mgr_store_check_name(from) == 0 ? from : "(a bad name)";
  nm_admission_fact f;
  char why[160], k[17], kb[17], kd[2] = {kind, 0};
  if (nm_admission_fact_parse(kind, key, value, len, &f, why, sizeof why) < 0) {
    sh->facts_bad++;
    nm_log_ratelimited(&sh->log, NM_LOG_WARN, "store: an admission fact of manager %s skipped: '%s' %s: %s", who,
                       mgr__loggable(kd, kb), mgr__loggable(key, k), why);
    return;
  }
  int rc = mgr_admission_learn(&m->admission, &f);
  if (rc < 0) {
    nm_log_ratelimited(&sh->log, NM_LOG_WARN, "store: an admission fact of manager %s not made here: '%c' %.16s: %s",
                       who, kind, f.hex, rc == -EEXIST ? "its name is another key's here" : nm_strerror(rc));
    return;
  }
  if (rc == 0) return;
  sh->facts_learned++;
  switch (kind) {
  case NM_ADMISSION_FACT_INVITE:
    nm_log_ratelimited(&sh->adm_log, NM_LOG_INFO, "admission: invite %.16s (%s, %u uses at most) learned from manager %s",
                       f.hex, nm_role_name(f.role), (unsigned)f.max_uses, who);
    break;
  case NM_ADMISSION_FACT_REVOKED_INVITE:
    nm_log_ratelimited(&sh->adm_log, NM_LOG_INFO, "admission: invite %.16s revoked by manager %s", f.hex, who);
    break;
  case NM_ADMISSION_FACT_REVOKED_KEY:
  {
    nm_log_ratelimited(&sh->adm_log, NM_LOG_INFO, "admission: key %.16s revoked by manager %s", f.hex, who);
    /* Its session here ends now when it is listed (an id is its key's fingerprint's
     * start); every other session is checked at the next tick, once for many facts. */
    char id[NM_ID_LEN + 1];
    snprintf(id, sizeof id, "%.*s", NM_ID_LEN, f.hex);
    mgr_session *s = mgr_find_listed(m, id);
    if (s && !s->remote) mgr_sessions_drop_revoked(m);
    sh->drop_revoked = 1;
    break;
  }
  default:
    nm_log_debug("admission: key %.16s (%s) admitted by manager %s", f.hex, f.name, who);
    break;
  }
}

/* ---- the tick ------------------------------------------------------------------------------ */

void mgr_shared_tick(manager *m) {
  struct mgr_shared *sh = m->shared;
  if (!sh || sh->stopped) return;
  uint64_t now = mgr_now_ms(m);
  const mgr_store_stats *st = mgr_store_get_stats(sh->store);
  m->stats.store_on = 1;
  m->stats.store_up = mgr_store_is_up(sh->store) && sh->attached;
  m->stats.store_ops[MGR_STORE_OP_PUT] = st->puts;
  m->stats.store_ops[MGR_STORE_OP_LEAVE] = st->leaves;
  m->stats.store_ops[MGR_STORE_OP_RENEW] = st->renews;
  m->stats.store_ops[MGR_STORE_OP_REAP] = st->reaps;
  m->stats.store_ops[MGR_STORE_OP_COMPLAIN] = st->complaints;
  m->stats.store_ops[MGR_STORE_OP_ADMISSION] = st->admissions;
  m->stats.store_ops[MGR_STORE_OP_MESH] = st->mesh_writes;
  m->stats.mesh_leader = m->mesh_leading;
  m->stats.store_errors = st->errors + sh->write_errors;
  m->stats.store_failovers = st->failovers;
  m->stats.remote_servants = sh->nremotes;
  nm_log_rate_flush(&sh->log);
  nm_log_rate_flush(&sh->adm_log);
  if (sh->drop_revoked) {
    sh->drop_revoked = 0;
    mgr_sessions_drop_revoked(m);
  }
  if (sh->attached && m->admission.reads != sh->pub_reads) mgr__facts_start(m, 0);
  if (sh->attached && sh->pub_active) mgr__facts_step(m);
  if (!sh->attached || now - sh->last_renew_ms < MGR_SHARED_RENEW_MS) return;
  sh->last_renew_ms = now;
  /* The registrations held here, renewed in one batch. */
  size_t n = 0;
  const char **ids = malloc((m->index.servants + 1) * sizeof *ids);
  if (ids) {
    for (mgr_session *s = m->index.listed; s; s = s->hh_id.next)
      if (!s->remote && s->state == MGR_SESSION_REGISTERED && n <= m->index.servants) ids[n++] = s->id;
    if (n && mgr_store_renew(sh->store, ids, n) < 0) sh->write_errors++;
    free(ids);
  }
  mgr_store_announce(sh->store, m->cfg.listen, m->cfg.port, nm_identity_fingerprint(&m->identity)->hex);
  mgr_store_lead(sh->store); /* the mesh's lease: taken, renewed, or who holds it */
  /* Expiries, once every manager had a heartbeat timeout to write its own after an outage. */
  if (now - sh->attached_ms >= sh->ttl_ms) mgr_store_reap(sh->store);
  /* Remote entries no holder wrote again since the snapshot that lacked them: a walk only
   * while some may be left (counted again on the way). */
  if (!sh->nunconfirmed) return;
  sh->nunconfirmed = 0;
  for (mgr_session *s = sh->remotes; s; s = s->remote->next) {
    if (!s->remote->unconfirmed_ms) continue;
    sh->nunconfirmed++;
    if (now - s->remote->unconfirmed_ms >= sh->ttl_ms) {
      s->remote->unconfirmed_ms = now; /* once per timeout */
      mgr_store_leave(sh->store, s->id, "");
    }
  }
}

/* ---- start and stop --------------------------------------------------------------------- */

int mgr_shared_init(manager *m) {
  if (!m->cfg.store[0]) return 0;
  struct mgr_shared *sh = calloc(1, sizeof *sh);
  if (!sh) return nm_log_error("out of memory"), -1;
  snprintf(sh->self, sizeof sh->self, "%s", m->cfg.manager_name);
  sh->ttl_ms = m->cfg.timeout_s * 1000;
  sh->log = (nm_log_rate)NM_LOG_RATE_INIT("store warnings", NM_LOG_RATE_DEFAULT);
  sh->adm_log = (nm_log_rate)NM_LOG_RATE_INIT("admission facts learned", 20);
  m->shared = sh;
  m->mesh_follows = 1; /* the mesh is the overlay's: one manager draws it (neighbours.h) */
  static const mgr_store_hooks hooks = {.on_snapshot = mgr__on_snapshot,
                                        .on_change = mgr__on_change,
                                        .on_down = mgr__on_down,
                                        .on_renewed = mgr__on_renewed,
                                        .on_managers = mgr__on_managers,
                                        .on_admission = mgr__on_admission,
                                        .on_lead = mgr__on_lead};
  int rc = mgr_store_init(&sh->store, m->loop, m->cfg.store, m->cfg.overlay, sh->self, sh->ttl_ms, &hooks, m);
  if (rc < 0) {
    m->shared = NULL;
    free(sh);
    return nm_log_error("store %s: %s", m->cfg.store, nm_strerror(rc)), -1;
  }
  nm_log_info("store %s, overlay %s, this manager is %s: servants held by every manager of the overlay are listed",
              m->cfg.store, m->cfg.overlay, sh->self);
  return 0;
}

void mgr_shared_stop(manager *m) {
  struct mgr_shared *sh = m->shared;
  if (!sh || sh->stopped) return;
  sh->stopped = 1;
  sh->attached = 0;
  mgr_store_close(sh->store);
  sh->store = NULL;
}

void mgr_shared_close(manager *m) {
  struct mgr_shared *sh = m->shared;
  if (!sh) return;
  mgr_shared_stop(m);
  while (sh->remotes) {
    mgr_session *s = sh->remotes;
    mgr_index_forget(&m->index, s);
    mgr__remote_free(m, s);
  }
  for (size_t i = 0; i < sh->nholders; i++) free(sh->holders[i]);
  free(sh);
  m->shared = NULL;
}
