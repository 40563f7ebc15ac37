/* Relay duty: serving servants the manager judged unreachable. See relaying.h. */
#include "relaying.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_peerlist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rl_init(rl_duty *d, uv_loop_t *loop, const char *self_id, const rl_limits *limits) {
  memset(d, 0, sizeof *d);
  d->loop = loop;
  snprintf(d->self_id, sizeof d->self_id, "%s", self_id);
  d->limits = *limits;
  if (d->limits.max_clients > RL_CLIENTS_MAX) d->limits.max_clients = RL_CLIENTS_MAX;
  /* Token buckets with a one-second burst. */
  nm_ratelimit_init(&d->total, limits->total_rate_bps, limits->total_rate_bps, uv_now(loop));
  nm_lineq_init(&d->recent, RL_RECENT_MAX, RL_RECENT_BYTES_MAX, RL_RECENT_TTL_MS);
  d->direct_log = (nm_log_rate)NM_LOG_RATE_INIT("relay clients' direct sets", NM_LOG_RATE_DEFAULT);
}

static const nm_relay_client *rl__assigned(const rl_duty *d, const char *id) {
  for (size_t i = 0; i < d->nassigned; i++)
    if (strcmp(d->assigned[i].id, id) == 0) return &d->assigned[i];
  return NULL;
}

void rl_detach(rl_duty *d, rl_client *c) {
  if (!c->attached) return;
  for (size_t i = 0; i < d->nattached; i++)
    if (d->attached[i] == c) {
      d->attached[i] = d->attached[--d->nattached];
      break;
    }
  c->attached = 0;
}

/* Detaches first, so nothing more is sent on it; the owner's close callback detaches
 * again, harmlessly. */
static void rl__drop(rl_duty *d, rl_client *c, const char *why) {
  rl_detach(d, c);
  nm_conn_close(c->conn, 0, why);
}

void rl_serve(rl_duty *d, const nm_relay_client *clients, size_t n) {
  size_t cap = RL_CLIENTS_MAX;
  if (d->limits.max_clients && d->limits.max_clients < cap) cap = d->limits.max_clients;
  size_t kept = 0;
  for (size_t i = 0; i < n; i++) {
    if (kept == cap) {
      nm_log_warn("manager assigned more clients than our limit of %zu; extra ones ignored", cap);
      break;
    }
    d->assigned[kept++] = clients[i];
  }
  d->nassigned = kept;
  /* Clients no longer assigned to us (or now with another key) are dropped. */
  for (size_t i = 0; i < d->nattached;) {
    rl_client *c = d->attached[i];
    const nm_relay_client *a = rl__assigned(d, c->id);
    nm_fingerprint fp;
    if (a) nm_fingerprint_of_pubkey(a->key, &fp);
    if (!a || !nm_fingerprint_equal(&fp, &c->key)) {
      rl__drop(d, c, "no longer assigned to this relay");
      continue;
    }
    i++;
  }
  nm_log_info("relay duty: %zu client%s assigned", kept, kept == 1 ? "" : "s");
}

/* The client's bucket is spent before the total's: a line the total refuses still counts
 * against the client, as a line it was sent would. */
static void rl__send(rl_duty *d, rl_client *c, const char *payload, size_t len) {
  uint64_t now = uv_now(d->loop);
  if (!nm_ratelimit_take(&c->rate, now, len) || !nm_ratelimit_take(&d->total, now, len)) {
    d->drops++;
    return;
  }
  if (nm_conn_send(c->conn, NM_MSG_CHAT, payload, len) < 0) {
    d->drops++;
    return;
  }
  d->bytes_out += len;
  d->lines_out++;
}

int rl_attach(rl_duty *d, rl_client *c, nm_conn *conn, const char *id, const char *token,
              const nm_fingerprint *key, const char *who, char *err, size_t errlen) {
  const nm_relay_client *a = nm_id_valid(id) ? rl__assigned(d, id) : NULL;
  if (!a || !token || strcmp(a->token, token) != 0) {
    snprintf(err, errlen, "pull refused: %s is not assigned to this relay with that token",
             nm_id_valid(id) ? id : "(invalid id)");
    return NM_EMSG;
  }
  /* The manager told us which key that client has: the token alone is not enough. */
  nm_fingerprint want;
  nm_fingerprint_of_pubkey(a->key, &want);
  if (!key || !nm_fingerprint_equal(&want, key)) {
    snprintf(err, errlen, "pull refused: %s's key is not the one the manager gave for it", a->id);
    return NM_EKEY;
  }
  if (d->nattached == RL_CLIENTS_MAX) {
    snprintf(err, errlen, "relay is full");
    return -ENOSPC;
  }
  /* A client reconnecting replaces its old connection. */
  for (size_t i = 0; i < d->nattached; i++)
    if (strcmp(d->attached[i]->id, a->id) == 0) {
      rl__drop(d, d->attached[i], "replaced by a new pull connection");
      break;
    }
  uint64_t now = uv_now(d->loop);
  c->conn = conn;
  c->key = want;
  snprintf(c->id, sizeof c->id, "%s", a->id);
  nm_ratelimit_init(&c->rate, d->limits.client_rate_bps, d->limits.client_rate_bps, now);
  c->attached = 1;
  c->duty = d;
  c->nskip = 0; /* a new pull starts with everything; the client says what it gets directly */
  d->attached[d->nattached++] = c;
  if (!who) who = c->id;
  nm_conn_deadline_clear(conn);
  nm_conn_set_label(conn, "relay client %s", who);
  /* A client says pull and then nothing: its frames stay at the small limit. */
  nm_frame_reader_set_max(&conn->reader, NM_FRAME_MAX_UNTRUSTED);
  /* Replay what the client may have missed while it was unreachable; it verifies each line
   * and shows it once whatever arrives twice. */
  nm_lineq_expire(&d->recent, now);
  size_t replayed = 0;
  for (nm_lineq_item *m = d->recent.head; m; m = m->next)
    if (strcmp(m->origin, c->id) != 0) {
      rl__send(d, c, m->payload, m->len);
      replayed++;
    }
  nm_log_info("serving relay client %s (%zu attached); replayed %zu recent lines", who, d->nattached, replayed);
  return 0;
}

static int rl__skips(const rl_client *c, const char *origin) {
  for (size_t i = 0; i < c->nskip; i++)
    if (strcmp(c->skip[i], origin) == 0) return 1;
  return 0;
}

/* The client's new set of origins it receives directly. An origin that left the set may
 * have lost lines on its direct path as it failed: its lines in the ring go again (the
 * client shows each line once). */
static int rl__on_direct(void *session, const nm_msg *msg) {
  rl_client *c = session;
  rl_duty *d = c->duty;
  const nm_msg_direct *m = &msg->u.direct;
  rl_client before = *c;
  c->nskip = 0;
  for (size_t i = 0; i < m->count && c->nskip < NM_DIRECT_MAX; i++)
    if (strcmp(m->ids[i], c->id) != 0) memcpy(c->skip[c->nskip++], m->ids[i], sizeof c->skip[0]);
  size_t again = 0;
  nm_lineq_expire(&d->recent, uv_now(d->loop));
  for (nm_lineq_item *it = d->recent.head; it; it = it->next)
    if (rl__skips(&before, it->origin) && !rl__skips(c, it->origin) && strcmp(it->origin, c->id) != 0) {
      rl__send(d, c, it->payload, it->len);
      again++;
    }
  /* A client may say direct as often as it likes: what it costs it is bounded by its own
   * rate limit (rl__send), what it makes us log by this one. */
  nm_log_ratelimited(&d->direct_log, NM_LOG_INFO, "relay client %s receives %zu origin%s directly%s", c->id,
                     c->nskip, c->nskip == 1 ? "" : "s", again ? ", some no longer: their recent lines sent again" : "");
  return 0;
}

/* The relay's side of a pull connection once attached: the client said pull and from
 * then on only receives, but for direct (the origins it gets directly). */
static const nm_dispatch_entry rl__client_rows[] = {
    {NM_MSG_DIRECT, 0, 0, rl__on_direct},
};
static const char *const rl__client_states[] = {"attached"};
static const nm_dispatch_table rl__client_table =
    NM_DISPATCH_TABLE("relay client connection", rl__client_rows, rl__client_states);

int rl_client_on_frame(rl_duty *d, rl_client *c, uint8_t type, const char *payload, size_t len) {
  c->duty = d;
  return nm_dispatch(&rl__client_table, c->conn, c, 0, type, payload, len);
}

void rl_forward(rl_duty *d, const char *origin, const char *payload, size_t len) {
  uint64_t now = uv_now(d->loop);
  if (strcmp(origin, d->self_id) != 0) d->bytes_in += len;
  /* Bounded in lines, bytes and age: the oldest lines make room. */
  nm_lineq_expire(&d->recent, now);
  nm_lineq_push(&d->recent, now, origin, payload, len);
  for (size_t i = 0; i < d->nattached; i++)
    if (strcmp(d->attached[i]->id, origin) != 0 && !rl__skips(d->attached[i], origin))
      rl__send(d, d->attached[i], payload, len);
}

void rl_tick(rl_duty *d) {
  nm_lineq_expire(&d->recent, uv_now(d->loop));
  nm_log_rate_flush(&d->direct_log);
}

int rl_load(const rl_duty *d, nm_msg_relay_load *out) {
  memset(out, 0, sizeof *out);
  out->clients = d->nassigned;
  out->attached = d->nattached;
  out->max_clients = d->limits.max_clients;
  out->bytes_in = d->bytes_in;
  out->bytes_out = d->bytes_out;
  out->drops = d->drops;
  return d->limits.dedicated || d->nassigned > 0;
}

void rl_close(rl_duty *d) {
  while (d->nattached) rl__drop(d, d->attached[0], NULL);
  nm_lineq_clear(&d->recent);
}
