/* One session per connected servant, relay or natmesh-ctl: its lifecycle, with the one
 * retire path every session ends through, and the frame dispatcher with the small steps
 * it fans out to.
 *
 * Every session is TLS 1.3: the manager accepts any Ed25519 key in the handshake and
 * records it (mgr__on_secure); the first frame then says who the session is, and is checked
 * against that key: a hello's id must derive from it and the key must be admitted
 * (admission.c), a status-request must come from an operator's key. Until then a session is
 * unauthenticated: it holds a slot of the manager's nm_addrlimit (so one address cannot
 * take every descriptor), must speak within MGR_FIRST_FRAME_MS of its handshake, and what it
 * makes us log is rate-limited. */
#include "manager.h"
#include "shared.h"
#include "complaints.h"
#include "provisional.h"
#include "relays.h"
#include "nm_addr.h"
#include "neighbours.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_msg.h"
#include "nm_peerlist.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the end of a session -------------------------------------------------------------- */

/* The registration moves from old to s, a new session of the same servant: its list entry,
 * its verdict and relay, its relay duty (its clients name it by id, so they follow) and the
 * complaints about it. s publishes the entry anew when it says listening. */
static void mgr__hand_over(mgr_session *old, mgr_session *s) {
  int same_ip = strcmp(old->conn.peer_ip, s->conn.peer_ip) == 0;
  s->reach = old->reach;
  if (same_ip) {
    s->mapping = old->mapping;
    memcpy(s->ext_ip, old->ext_ip, sizeof s->ext_ip);
    s->ext_port = old->ext_port;
  } else if (s->reach == NM_REACH_MAPPED) {
    /* A mapping made from another address says nothing about this one: it reports anew. */
    s->reach = NM_REACH_UNKNOWN;
  }
  memcpy(s->relay_id, old->relay_id, sizeof s->relay_id);
  memcpy(s->relay_token, old->relay_token, sizeof s->relay_token);
  s->pair = old->pair;
  s->provisional = old->provisional;
  s->provisional_ms = old->provisional_ms;
  s->complaints = old->complaints;
  memset(&old->complaints, 0, sizeof old->complaints);
  s->load_bytes_in = old->load_bytes_in;
  s->load_bytes_out = old->load_bytes_out;
  s->load_drops = old->load_drops;
  s->load_attached = old->load_attached;
  mgr_index_set_state(&old->mgr->index, s, MGR_SESSION_REPLACING);
  mgr_list_hand_over(old->mgr, old, s);
  /* What it took over may put it on the relayed and accused lists. */
  mgr_index_track_relayed(&s->mgr->index, s);
  if (s->complaints.n) mgr_index_track_accused(&s->mgr->index, s);
  nm_log_info("%s (%s) reconnected: the new session takes its registration over (%s%s%s)", s->name, s->id,
              nm_reach_name(s->reach), s->relay_id[0] ? ", relay " : "", s->relay_id);
}

/* A servant judged unreachable whose session ended without bye may be back in a moment
 * (its connection to us was reset, not its process): it gets its verdict back then. */
static void mgr__remember_verdict(manager *m, const mgr_session *s) {
  if (s->reach != NM_REACH_SUSPICIOUS && s->reach != NM_REACH_RELAYED) return;
  mgr_remembered_verdict v;
  memset(&v, 0, sizeof v);
  memcpy(v.id, s->id, sizeof v.id);
  memcpy(v.relay_id, s->relay_id, sizeof v.relay_id);
  memcpy(v.token, s->relay_token, sizeof v.token);
  uint64_t now = mgr_now_ms(m);
  v.until_ms = now + (uint64_t)m->cfg.timeout_s * 1000;
  mgr_verdicts_remember(&m->verdicts, &v, now);
}

/* s's list entry goes: the leave is published, complaints by and about it go, its relay
 * stops serving it and its clients get another relay. */
static void mgr__unlist(mgr_session *s, const char *reason) {
  manager *m = s->mgr;
  mgr_publish_leave(m, s, reason);
  mgr_complaints_on_leave(m, s);
  mgr_relay_unlink(m, s);
  mgr_relays_reassign_clients_of(m, s);
  /* Its relay has room again. */
  mgr_relays_serve_waiting(m);
}

void mgr_session_retire(mgr_session *s, mgr_retire_how how, mgr_session *successor) {
  if (s->state == MGR_SESSION_RETIRED) return;
  manager *m = s->mgr;
  int listed = mgr_session_listed(s);
  char reason[80];
  switch (how) {
  case MGR_RETIRE_CLOSED: snprintf(reason, sizeof reason, "session closed"); break;
  case MGR_RETIRE_BYE: snprintf(reason, sizeof reason, "said bye"); break;
  case MGR_RETIRE_TIMED_OUT: snprintf(reason, sizeof reason, "no heartbeat for %u s", m->cfg.timeout_s); break;
  case MGR_RETIRE_REPLACED: snprintf(reason, sizeof reason, "replaced by a new session of the same servant"); break;
  case MGR_RETIRE_STOPPING: reason[0] = 0; break;
  case MGR_RETIRE_REVOKED: snprintf(reason, sizeof reason, "its key was revoked"); break;
  case MGR_RETIRE_MOVED: snprintf(reason, sizeof reason, "another manager of the overlay holds it now"); break;
  }
  /* Retired first: from here on no lookup finds s, so nothing below sends to it, counts it
   * as a relay's client or picks it as a relay. */
  mgr_index_set_state(&m->index, s, MGR_SESSION_RETIRED);
  if (listed) {
    switch (how) {
    case MGR_RETIRE_REPLACED:
      if (successor) {
        mgr__hand_over(s, successor);
        break;
      }
      mgr__unlist(s, reason); /* nobody to hand over to: it is simply gone */
      break;
    case MGR_RETIRE_STOPPING: break; /* everyone is going: no leave is worth publishing */
    case MGR_RETIRE_MOVED:
      /* Its place in the list goes to the remote entry: peers see no leave. */
      if (successor) mgr_list_hand_over(m, s, successor);
      else mgr_list_forget(m, s);
      mgr_relay_unlink(m, s);
      break;
    case MGR_RETIRE_CLOSED:
    case MGR_RETIRE_TIMED_OUT:
      mgr__remember_verdict(m, s);
      mgr__unlist(s, reason);
      break;
    case MGR_RETIRE_BYE:
    case MGR_RETIRE_REVOKED: mgr__unlist(s, reason); break;
    }
  }
  mgr_complaints_free(&s->complaints);
  nm_conn_close(&s->conn, 0, reason[0] ? reason : NULL);
}

/* The session proved who it is: it gives its unauthenticated slot back, has no first-frame
 * deadline any more, and its conn logs freely again. */
static void mgr__authenticated(mgr_session *s) {
  if (s->unauth) {
    nm_addrlimit_release(&s->mgr->unauth, s->conn.peer_ip);
    s->unauth = 0;
  }
  nm_conn_deadline_clear(&s->conn);
  s->conn.log_rate = NULL;
}

static void mgr__session_closed(nm_conn *c) {
  mgr_session *s = c->data;
  manager *m = s->mgr;
  if (s->unauth) {
    nm_addrlimit_release(&m->unauth, s->conn.peer_ip);
    s->unauth = 0;
  }
  if (!s->secure && (c->close_err == NM_ETLS || c->close_err == NM_EKEY || c->close_err == UV_ETIMEDOUT))
    m->stats.tls_failures++;
  mgr_session_retire(s, MGR_RETIRE_CLOSED, NULL);
  mgr_index_forget(&m->index, s);
  mgr_publish_forget(m, s);
  mgr_views_forget(m, s);
  mgr_list_forget(m, s); /* only when stopping: every other end published its leave */
  if (s->prev) s->prev->next = s->next;
  else m->sessions = s->next;
  if (s->next) s->next->prev = s->prev;
  else m->sessions_tail = s->prev;
  m->nsessions--;
  free(s->local);
  free(s);
}

/* ---- registration ------------------------------------------------------------------------ */

static void mgr__send_welcome(mgr_session *s) {
  manager *m = s->mgr;
  nm_msg w = {.type = NM_MSG_WELCOME};
  memcpy(w.u.welcome.id, s->id, sizeof w.u.welcome.id);
  snprintf(w.u.welcome.ip, sizeof w.u.welcome.ip, "%s", s->conn.peer_ip);
  w.u.welcome.port = s->port;
  w.u.welcome.heartbeat_s = m->cfg.heartbeat_s;
  w.u.welcome.timeout_s = m->cfg.timeout_s;
  /* Where it can reach us over the family it did not use, to show itself there too. */
  int fam = nm_addr_family(s->conn.peer_ip);
  for (size_t i = 0; i < m->nown && w.u.welcome.naddrs < NM_MANAGER_ADDRS_MAX; i++)
    if (nm_addr_family(m->own[i].ip) != fam) w.u.welcome.addrs[w.u.welcome.naddrs++] = m->own[i];
  /* Its membership certificate (nm_member): what lets servants that do not list it (a
   * bounded mesh's views) verify its lines. Without one it is heard only where listed. */
  nm_msg_welcome *wm = &w.u.welcome;
  if (s->secure && m->identity.key &&
      nm_member_sign(&m->identity, s->id, s->key, s->name, wm->cert) == 0) {
    wm->has_cert = 1;
    memcpy(wm->key, s->key, sizeof wm->key);
    snprintf(wm->name, sizeof wm->name, "%s", s->name);
    memcpy(wm->manager_key, m->identity.pub, sizeof wm->manager_key);
  }
  int rc = nm_msg_send(&s->conn, &w);
  if (rc < 0) nm_log_warn("cannot send welcome to %s: %s", s->name, nm_strerror(rc));
}

/* Gives s a port (its own, or the next free one) and welcomes it. */
static int mgr__welcome(mgr_session *s, uint16_t wanted) {
  if (wanted == 0) {
    wanted = mgr_assign_port(s->mgr, s->conn.peer_ip, s->last_busy);
    if (wanted == 0) {
      nm_conn_fail(&s->conn, -ENOSPC, "no free port left in the manager's range");
      return -1;
    }
  }
  mgr_index_set_port(&s->mgr->index, s, wanted);
  mgr__send_welcome(s);
  return 0;
}

/* A servant that reconnects before we noticed its old session die replaces it: the new
 * session takes the registration over, so peers see an update rather than a leave and a
 * join, and its relay bookkeeping carries on. Only a session that proved the same key does:
 * the id derives from the key, and the whole fingerprint is compared as well. */
static void mgr__take_over(mgr_session *s) {
  mgr_session *old = mgr_find_listed(s->mgr, s->id);
  if (!old || old == s || !nm_fingerprint_equal(&old->conn.peer_fp, &s->conn.peer_fp)) return;
  /* Held by another manager of the overlay until now: it moved here (shared.h). */
  if (old->state == MGR_SESSION_REMOTE) mgr_shared_take_over(s->mgr, old, s);
  else mgr_session_retire(old, MGR_RETIRE_REPLACED, s);
}

/* Refuses what s asked for, with the reason in an error frame, and ends it. The line it
 * logs counts against the rate limit of refusals: anyone can ask. Returns 1 (closed). */
__attribute__((format(printf, 4, 5)))
static int mgr__deny(mgr_session *s, mgr_refused_reason reason, int err, const char *fmt, ...) {
  char why[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  s->mgr->stats.refused[reason]++;
  s->conn.log_rate = &s->mgr->log_denied;
  nm_conn_fail(&s->conn, err, why);
  return 1;
}

/* What a refused node is told: the admission's reason, in the words the protocol uses. */
static void mgr__refusal_text(const nm_admission_decision *d, const char *name, char *out,
                              size_t len) {
  if (d->reason == NM_REFUSE_NAME_TAKEN)
    snprintf(out, len, "name %s is taken by another key", name);
  else if (d->reason == NM_REFUSE_ROLE_NOT_GRANTED)
    snprintf(out, len, "%s", nm_admission_reason_text(d->reason));
  else
    snprintf(out, len, "%s", d->message);
}

/* Whether s, saying hello, may join: its id is its key's, there is room, and its key is
 * admitted for the name and role it asks. Returns 0, or 1 when s was refused (closed). */
static int mgr__admit(mgr_session *s, const nm_msg_hello *h) {
  manager *m = s->mgr;
  char id[NM_ID_LEN + 1];
  nm_fingerprint_id(&s->conn.peer_fp, id);
  if (strcmp(id, h->id) != 0)
    return mgr__deny(s, MGR_REFUSED_WRONG_KEY, NM_EKEY, "hello: id %s does not belong to the key this session proved", h->id);
  mgr_session *old = mgr_find_listed(m, h->id);
  if (old && !nm_fingerprint_equal(&old->conn.peer_fp, &s->conn.peer_fp))
    return mgr__deny(s, MGR_REFUSED_WRONG_KEY, NM_EKEY, "hello: id %s is registered with another key", h->id);
  if (!old && mgr_servant_sessions(m) >= m->max_servants)
    return mgr__deny(s, MGR_REFUSED_FULL, -ENOSPC, "the manager is full (%zu servants)", m->max_servants);

  nm_admission_request rq = {s->conn.peer_fp.hex, h->name, h->role, h->has_secret ? h->secret : NULL,
                             (uint64_t)time(NULL)};
  nm_admission_decision d;
  char err[300] = "";
  if (old && old->state == MGR_SESSION_REMOTE && !mgr_admission_key_revoked(&m->admission, s->conn.peer_fp.hex) &&
      old->role == h->role && strcmp(old->name, h->name) == 0) {
    /* Listed by another manager of the overlay, which admitted its key: a member moving
     * here (its key proved, the same name and role). */
    char at[NM_ADDR_STRLEN];
    nm_log_info("hello from %s (%s) at %s: a member of the overlay held by manager %s", h->name, h->id,
                nm_addr_str(s->conn.peer_ip, s->conn.peer_port, at), mgr_shared_holder(old));
    return 0;
  }
  if (mgr_admission_admit(&m->admission, &rq, &d, err, sizeof err) < 0)
    nm_log_ratelimited(&m->log_denied, NM_LOG_ERROR, "admission of %s (%s): %s", h->name, h->id, err);
  if (!d.admit) {
    char why[200];
    mgr__refusal_text(&d, h->name, why, sizeof why);
    return mgr__deny(s, MGR_REFUSED_NOT_ADMITTED, NM_EKEY, "%s", why);
  }
  if (d.remember || d.invite_hash[0]) mgr_shared_admitted(m, s->conn.peer_fp.hex);
  char at[NM_ADDR_STRLEN];
  nm_log_info("hello from %s (%s) at %s, %s: %s", h->name, h->id,
              nm_addr_str(s->conn.peer_ip, s->conn.peer_port, at),
              h->port ? "has its own port" : "asks for a port", d.message);
  return 0;
}

static int mgr__on_hello(void *session, const nm_msg *msg) {
  mgr_session *s = session;
  const nm_msg_hello *h = &msg->u.hello;
  nm_conn_set_label(&s->conn, "hello from %s", h->name);
  if (mgr__admit(s, h)) return 1;
  mgr__authenticated(s);
  memcpy(s->id, h->id, sizeof s->id);
  memcpy(s->name, h->name, sizeof s->name);
  s->role = h->role;
  s->max_clients = h->max_clients;
  s->views_ok = h->views;
  uint16_t port = h->port;

  nm_conn_set_label(&s->conn, "%s %s", nm_role_name(s->role), s->name);
  nm_frame_reader_set_max(&s->conn.reader, NM_FRAME_MAX);
  mgr_index_set_state(&s->mgr->index, s, MGR_SESSION_WELCOMED);
  mgr__take_over(s);
  mgr__welcome(s, port);
  return s->conn.closing;
}

static int mgr__on_listening(void *session, const nm_msg *msg) {
  mgr_session *s = session;
  manager *m = s->mgr;
  uint16_t port = msg->u.listening.port, busy = msg->u.listening.busy;
  if (port == 0) {
    /* The servant could not bind the port we gave it: try the next one. */
    nm_log_ratelimited(&m->log_reports, NM_LOG_INFO, "%s cannot bind port %u; assigning another",
                       s->name, busy);
    s->last_busy = busy;
    mgr_index_set_port(&m->index, s, 0);
    return mgr__welcome(s, 0) < 0;
  }
  mgr_index_set_port(&m->index, s, port);
  /* Its own interface addresses (the decoder checked each is a candidate): published as
   * candidates after the observed one, for peers behind the same router. */
  const nm_msg_listening *l = &msg->u.listening;
  size_t nlocal = l->naddrs < NM_LOCAL_ADDRS_MAX ? l->naddrs : NM_LOCAL_ADDRS_MAX;
  free(s->local);
  s->local = nlocal ? calloc(nlocal, sizeof *s->local) : NULL; /* as many as it has: memory per servant */
  s->nlocal = s->local ? nlocal : 0;
  for (size_t i = 0; i < s->nlocal; i++) snprintf(s->local[i], sizeof s->local[i], "%s", l->addrs[i]);
  /* Another session of this servant may have registered since our hello: the newest one
   * holds the registration, so there is never more than one entry per id. */
  mgr__take_over(s);
  int moved = s->state == MGR_SESSION_REPLACING && s->in_list && mgr_session_moved(s);

  /* A servant judged unreachable whose session ended a moment ago is relayed again at
   * once, by its old relay and token when that relay still can, rather than judged anew
   * while its peers fail to reach it. */
  mgr_remembered_verdict verdict;
  int remembered = s->state == MGR_SESSION_WELCOMED &&
                   mgr_verdicts_take(&m->verdicts, s->id, mgr_now_ms(m), &verdict);
  if (remembered) {
    nm_log_info("%s (%s) was judged unreachable before it reconnected: relayed again", s->name, s->id);
    s->reach = NM_REACH_SUSPICIOUS;
  }
  if (s->reach == NM_REACH_UNKNOWN) s->reach = NM_REACH_DIRECT;
  if (s->reach == NM_REACH_SUSPICIOUS && !s->relay_id[0] &&
      mgr_relay_pick(m, s, remembered ? verdict.relay_id : NULL, remembered ? verdict.token : NULL) < 0)
    nm_log_warn("no relay available for %s: it waits, suspicious, until one joins", s->name);
  /* A newcomer behind NAT with no mapping pulls from a relay at once, so that its first
   * lines do not wait for the verdict (provisional.h). */
  mgr_provisional_on_join(m, s);

  char at[NM_ADDR_STRLEN];
  nm_log_info("joined: %s (%s) at %s (%zu local address%s)", s->name, s->id, nm_addr_str(s->conn.peer_ip, s->port, at),
              s->nlocal, s->nlocal == 1 ? "" : "es");
  /* The newcomer gets the whole list (which contains it), then everyone else the delta. */
  if (s->state == MGR_SESSION_WELCOMED) m->stats.joins++;
  mgr_index_set_state(&m->index, s, MGR_SESSION_REGISTERED);
  mgr_publish_join(m, s);
  /* What it needs to carry on: its relay (a servant ignores an assignment it already
   * follows) and, as a relay, its client list; clients of a relay that reconnected from
   * another address need new tokens, or they would keep pulling from the old one. */
  if (s->relay_id[0]) mgr_relay_announce(m, s);
  if (moved) mgr_relays_readdress(m, s);
  else if (mgr_relay_clients(m, s) > 0) mgr_relay_send_serve(m, s);
  mgr_relays_serve_waiting(m);
  return s->conn.closing;
}

/* ---- registered sessions ------------------------------------------------------------------ */

static int mgr__on_heartbeat(void *session, const nm_msg *msg) {
  mgr_session *s = session;
  s->mgr->stats.heartbeats++;
  /* The servant's version is informational; it compares the ack with what it holds. */
  nm_msg ack = {.type = NM_MSG_HEARTBEAT_ACK};
  ack.u.heartbeat_ack.version = mgr_views_version(s->mgr, s); /* not what the window holds */
  if (s->view.on) ack.u.heartbeat_ack.servants = mgr_neighbours_overlay_size(s->mgr);
  nm_msg_send(&s->conn, &ack);
  /* Whether every listed servant reaches it directly: its relay on standby, or back. */
  mgr_relay_on_direct(s->mgr, s, msg->u.heartbeat.direct_all);
  return 0;
}

static int mgr__on_bye(void *session, const nm_msg *msg) {
  mgr_session_retire(session, MGR_RETIRE_BYE, NULL);
  return 1;
}

static int mgr__on_peers_request(void *session, const nm_msg *msg) {
  mgr_session *s = session;
  mgr_send_full_list(s->mgr, s);
  return 0;
}

/* A registered servant, over its other address family: we note where that session comes
 * from as its second observed address (a candidate for peers of that family), tell it what
 * we saw, and let it close. It proves the key of the registration it names. */
static int mgr__on_observe(void *session, const nm_msg *msg) {
  mgr_session *s = session;
  manager *m = s->mgr;
  const char *id = msg->u.observe.id;
  char own[NM_ID_LEN + 1];
  nm_fingerprint_id(&s->conn.peer_fp, own);
  if (strcmp(own, id) != 0)
    return mgr__deny(s, MGR_REFUSED_WRONG_KEY, NM_EKEY, "observe: id %s does not belong to the key this session proved", id);
  mgr_session *reg = mgr_find_registered(m, id);
  if (!reg || !nm_fingerprint_equal(&reg->conn.peer_fp, &s->conn.peer_fp))
    return mgr__deny(s, MGR_REFUSED_OBSERVE, -ENOENT, "observe: %s is not registered", id);
  if (nm_addr_family(s->conn.peer_ip) == nm_addr_family(reg->conn.peer_ip))
    return mgr__deny(s, MGR_REFUSED_OBSERVE, -EINVAL, "observe: over the family the registration already uses");
  mgr__authenticated(s);
  mgr_index_set_state(&m->index, s, MGR_SESSION_OBSERVER);
  nm_conn_set_label(&s->conn, "observe from %s", reg->name);
  /* The servant closes it once answered; one that does not is closed for it. */
  nm_conn_deadline(&s->conn, 5000, "observe session left open");
  char at[NM_ADDR_STRLEN];
  if (strcmp(reg->other_ip, s->conn.peer_ip) != 0) {
    snprintf(reg->other_ip, sizeof reg->other_ip, "%.45s", s->conn.peer_ip); /* a literal: fits */
    nm_log_info("%s (%s) is also at %s", reg->name, reg->id, nm_addr_str(reg->other_ip, reg->port, at));
    mgr_publish_upsert(m, reg);
  }
  nm_msg o = {.type = NM_MSG_OBSERVED};
  snprintf(o.u.observed.ip, sizeof o.u.observed.ip, "%s", s->conn.peer_ip);
  o.u.observed.port = s->conn.peer_port;
  nm_msg_send(&s->conn, &o);
  return 0;
}

static int mgr__on_status_request(void *session, const nm_msg *msg) {
  mgr_session *s = session;
  manager *m = s->mgr;
  if (!mgr_is_operator(m, &s->conn.peer_fp)) return mgr__deny(s, MGR_REFUSED_NOT_OPERATOR, NM_EKEY, "status is for operators");
  if (s->state == MGR_SESSION_NEW) {
    if (mgr_ctl_sessions(m) >= MGR_CTL_MAX)
      return mgr__deny(s, MGR_REFUSED_CTL_LIMIT, -ENOSPC, "too many natmesh-ctl sessions (at most %d)", MGR_CTL_MAX);
    mgr_index_set_state(&m->index, s, MGR_SESSION_CTL);
    nm_conn_set_label(&s->conn, "ctl");
    mgr__authenticated(s);
  }
  /* A ctl that asks faster than it reads gets no new document until the last one left: the
   * status is the biggest thing the manager builds. */
  if (s->conn.queued_bytes > 0) {
    char at[NM_ADDR_STRLEN];
    nm_log_debug("status for %s not built: the previous one is still being sent",
                 nm_addr_str(s->conn.peer_ip, s->conn.peer_port, at));
    return 0;
  }
  mgr_send_status(m, s);
  return 0;
}

static int mgr__on_mapping(void *session, const nm_msg *msg) {
  mgr_session *s = session;
  const nm_msg_mapping *mp = &msg->u.mapping;
  /* What UPnP and NAT-PMP report is an IPv4 address; anything else is no usable mapping. */
  unsigned char addr[16];
  int usable = mp->method != NM_MAPPING_NONE && mp->ext_ip[0] && mp->ext_port &&
               uv_inet_pton(AF_INET, mp->ext_ip, addr) == 0;
  /* A renewal repeats the mapping it had: only a new one is a new candidate. */
  int renewed = s->reach == NM_REACH_MAPPED && s->ext_port == mp->ext_port && strcmp(s->ext_ip, mp->ext_ip) == 0;
  s->mapping = mp->method;
  snprintf(s->ext_ip, sizeof s->ext_ip, "%.45s", usable ? mp->ext_ip : ""); /* an IPv4 literal when usable */
  s->ext_port = usable ? mp->ext_port : 0;
  /* Double NAT: the router's external address is not the one we see, so the mapping only
   * opens the inner router. Record the method but do not advertise it as reachable. */
  if (usable && strcmp(s->ext_ip, s->conn.peer_ip) != 0) {
    char ext[NM_ADDR_STRLEN];
    nm_log_ratelimited(&s->mgr->log_reports, NM_LOG_WARN,
                       "%s mapped %s by %s, but its traffic comes from %s: double NAT, not "
                       "advertised as reachable",
                       s->name, nm_addr_str(s->ext_ip, s->ext_port, ext), nm_mapping_name(s->mapping),
                       s->conn.peer_ip);
    s->ext_ip[0] = 0;
    s->ext_port = 0;
    usable = 0;
  }
  if (usable) {
    char ext[NM_ADDR_STRLEN];
    nm_log_ratelimited(&s->mgr->log_reports, NM_LOG_INFO, "%s reachable by %s mapping at %s", s->name,
                       nm_mapping_name(s->mapping), nm_addr_str(s->ext_ip, s->ext_port, ext));
    /* A new candidate: the pair that could not connect may now. If not, complaints bring
     * the pair path back. (Not on a renewal: nothing changed for the pair.) */
    if (!renewed) mgr_relay_pair_release(s->mgr, s, "it is reachable by a new port mapping");
    mgr_provisional_release(s->mgr, s, "it is reachable by its port mapping");
    if (s->reach == NM_REACH_RELAYED || s->reach == NM_REACH_SUSPICIOUS) {
      nm_log_info("relay: %s is reachable by its port mapping; it pulls no more", s->name);
      mgr_relay_unlink(s->mgr, s);
      mgr_relay_send_assign(s->mgr, s); /* without a relay: pull no more */
    }
    s->reach = NM_REACH_MAPPED;
  } else if (s->reach == NM_REACH_MAPPED) {
    s->reach = NM_REACH_DIRECT;
  }
  mgr_publish_upsert(s->mgr, s);
  return 0;
}

/* The verdict came: peers cannot reach s. Its clients need a relay peers can reach, and it
 * needs one itself. */
static void mgr__convict(mgr_session *s) {
  manager *m = s->mgr;
  /* Off the pair path: it is relayed for everyone now. Its pair relay, if it has one, is
   * kept when it can serve (mgr_relay_client). */
  s->pair = 0;
  mgr_provisional_settle(s); /* its provisional relay, if any, is kept as its relay */
  s->reach = NM_REACH_SUSPICIOUS;
  mgr_publish_upsert(m, s);
  mgr_relays_reassign_clients_of(m, s);
  mgr_relay_send_serve(m, s); /* it serves no one now */
  mgr_relay_client(m, s);
}

void mgr_session_complaint(manager *m, mgr_session *s, const char *accused_id) {
  mgr_session *accused = mgr_find_listed(m, accused_id);
  /* Another manager holds it: its holder counts the complaint, and judges (shared.h). */
  if (accused && accused->state == MGR_SESSION_REMOTE) {
    if (s->state != MGR_SESSION_REMOTE) mgr_shared_complain(m, s, accused);
    return;
  }
  mgr_verdict v = mgr_complaint_receive(m, s, accused_id, &accused);
  /* Both behind NAT: have them try a simultaneous open (punch.c), whatever the verdict;
   * not with a reporter another manager holds (it cannot be told). */
  if (s->state != MGR_SESSION_REMOTE) mgr_punch_on_complaint(m, s, accused);
  if (v.kind == MGR_VERDICT_SUSPICIOUS) m->stats.verdicts_suspicious++, mgr__convict(accused);
  else if (v.kind == MGR_VERDICT_PAIR) m->stats.verdicts_pair++, mgr_relay_pair(m, accused);
}

static int mgr__on_complaint(void *session, const nm_msg *msg) {
  mgr_session *s = session;
  s->mgr->stats.complaints++;
  mgr_session_complaint(s->mgr, s, msg->u.complaint.accused);
  return s->conn.closing;
}

static int mgr__on_relay_load(void *session, const nm_msg *msg) {
  mgr_session *s = session;
  const nm_msg_relay_load *l = &msg->u.relay_load;
  s->load_bytes_in = l->bytes_in;
  s->load_bytes_out = l->bytes_out;
  s->load_drops = l->drops;
  s->load_attached = l->attached;
  return 0;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

/* Which message a session may send in which states: one row per message, and an unknown
 * or out-of-state one is refused in one place (nm_dispatch), before it is even decoded. */
static const nm_dispatch_entry mgr__rows[] = {
    {NM_MSG_HELLO, MGR_SESSION_NEW, MGR_SESSION_NEW, mgr__on_hello},
    {NM_MSG_STATUS_REQUEST, MGR_SESSION_NEW, MGR_SESSION_CTL, mgr__on_status_request},
    {NM_MSG_OBSERVE, MGR_SESSION_NEW, MGR_SESSION_NEW, mgr__on_observe},
    {NM_MSG_LISTENING, MGR_SESSION_WELCOMED, MGR_SESSION_REPLACING, mgr__on_listening},
    {NM_MSG_HEARTBEAT, MGR_SESSION_WELCOMED, MGR_SESSION_REGISTERED, mgr__on_heartbeat},
    {NM_MSG_BYE, MGR_SESSION_WELCOMED, MGR_SESSION_REGISTERED, mgr__on_bye},
    {NM_MSG_PEERS_REQUEST, MGR_SESSION_REGISTERED, MGR_SESSION_REGISTERED, mgr__on_peers_request},
    {NM_MSG_MAPPING, MGR_SESSION_REGISTERED, MGR_SESSION_REGISTERED, mgr__on_mapping},
    {NM_MSG_COMPLAINT, MGR_SESSION_REGISTERED, MGR_SESSION_REGISTERED, mgr__on_complaint},
    {NM_MSG_RELAY_LOAD, MGR_SESSION_REGISTERED, MGR_SESSION_REGISTERED, mgr__on_relay_load},
};

static const char *const mgr__state_names[] = {
    [MGR_SESSION_NEW] = "new",
    [MGR_SESSION_WELCOMED] = "welcomed",
    [MGR_SESSION_REPLACING] = "replacing",
    [MGR_SESSION_REGISTERED] = "registered",
    [MGR_SESSION_CTL] = "a ctl session",
    [MGR_SESSION_OBSERVER] = "an observe session",
    [MGR_SESSION_RETIRED] = "retired",
    [MGR_SESSION_REMOTE] = "held by another manager",
};

static const nm_dispatch_table mgr__table =
    NM_DISPATCH_TABLE("manager session", mgr__rows, mgr__state_names);

const char *mgr_session_state_name(mgr_session_state s) {
  return (unsigned)s < mgr__table.nstates ? mgr__state_names[s] : "?";
}

static int mgr__on_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  mgr_session *s = c->data;
  s->last_heard_ms = mgr_now_ms(s->mgr);
  return nm_dispatch(&mgr__table, c, s, (int)s->state, type, payload, len);
}

/* The TLS handshake is done: s proved the key fp. What it may do with it is decided by its
 * first frame, which must come soon. */
static void mgr__on_secure(nm_conn *c, const nm_fingerprint *fp) {
  mgr_session *s = c->data;
  s->secure = 1;
  const uint8_t *pub = nm_tls_session_peer_pubkey(c->tls);
  if (pub) memcpy(s->key, pub, NM_PUBKEY_LEN);
  nm_conn_deadline(c, MGR_FIRST_FRAME_MS, "nothing said within 5 s of the TLS handshake");
}

size_t mgr_servant_sessions(const manager *m) { return m->index.servants; }

size_t mgr_ctl_sessions(const manager *m) { return m->index.ctl; }

int mgr_is_operator(const manager *m, const nm_fingerprint *fp) {
  return nm_fingerprint_equal(fp, nm_identity_fingerprint(&m->identity)) ||
         nm_keylist_has(&m->cfg.admin_keys, fp->hex);
}

void mgr_sessions_drop_revoked(manager *m) {
  for (mgr_session *s = m->sessions, *next; s; s = next) {
    next = s->next;
    if (s->state == MGR_SESSION_NEW || s->state == MGR_SESSION_CTL || s->state == MGR_SESSION_OBSERVER ||
        s->state == MGR_SESSION_RETIRED ||
        !s->secure || !mgr_admission_key_revoked(&m->admission, s->conn.peer_fp.hex))
      continue;
    nm_log_info("%s (%s): its key was revoked; ending its session", s->name, s->id);
    nm_conn_fail(&s->conn, NM_EKEY, "this key was revoked by the manager's operator");
    mgr_session_retire(s, MGR_RETIRE_REVOKED, NULL);
  }
}

void mgr_on_connection(uv_stream_t *server, int status) {
  manager *m = server->data;
  if (status < 0) {
    m->stats.refused[MGR_REFUSED_ACCEPT]++;
    nm_log_ratelimited(&m->log_refused, NM_LOG_WARN, "accept: %s", uv_strerror(status));
    return;
  }
  mgr_session *s = calloc(1, sizeof *s);
  if (!s) return;
  s->mgr = m;
  nm_conn_init(m->loop, &s->conn, mgr__on_frame, mgr__session_closed, s);
  s->conn.log_rate = &m->log_unauth;
  s->conn.traffic = &m->stats.traffic;
  s->next = m->sessions;
  if (m->sessions) m->sessions->prev = s;
  else m->sessions_tail = s;
  m->sessions = s;
  m->nsessions++;
  s->connected_ms = s->last_heard_ms = mgr_now_ms(m);
  int rc = nm_conn_set_tls(&s->conn, &m->tls, NM_TLS_SERVER, NULL);
  nm_conn_on_secure(&s->conn, mgr__on_secure);
  if (rc == 0) rc = nm_conn_accept(server, &s->conn);
  if (rc < 0) {
    m->stats.refused[MGR_REFUSED_ACCEPT]++;
    nm_log_ratelimited(&m->log_refused, NM_LOG_WARN, "accept: %s", nm_strerror(rc));
    nm_conn_close(&s->conn, rc, NULL);
    return;
  }
  /* Before anything is read: one address gets a few handshakes at once, all addresses
   * together a bounded number, and authenticated sessions hold no slot at all. */
  rc = nm_addrlimit_acquire(&m->unauth, s->conn.peer_ip);
  if (rc < 0) {
    m->stats.refused[rc == -EMFILE ? MGR_REFUSED_PER_ADDRESS : MGR_REFUSED_UNAUTH_TOTAL]++;
    char at[NM_ADDR_STRLEN];
    nm_log_ratelimited(&m->log_refused, NM_LOG_WARN, "connection from %s refused: %s",
                       nm_addr_str(s->conn.peer_ip, s->conn.peer_port, at), nm_addrlimit_strerror(rc));
    nm_conn_close(&s->conn, rc, NULL);
    return;
  }
  s->unauth = 1;
  char at[NM_ADDR_STRLEN];
  nm_log_ratelimited(&m->log_accepted, NM_LOG_INFO, "connection from %s",
                     nm_addr_str(s->conn.peer_ip, s->conn.peer_port, at));
}
