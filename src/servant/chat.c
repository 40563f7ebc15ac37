/* Chat lines: built and signed here when typed; verified, checked against bans and judged
 * by the origin's replay window here when received; the accepted ones go on to lines.c. */
#include "chat.h"
#include "lines.h"
#include "peers.h"
#include "servant.h"
#include "nm_error.h"
#include "nm_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sv_chat_init(servant *sv) {
  sv_chat *ch = &sv->chat;
  ch->epoch = sv->epoch;
  ch->next_seq = 0;
  ch->forged_log = (nm_log_rate)NM_LOG_RATE_INIT("dropped forged or altered lines", 5);
  ch->unlisted_log = (nm_log_rate)NM_LOG_RATE_INIT("dropped lines from unlisted origins", 5);
  ch->banned_log = (nm_log_rate)NM_LOG_RATE_INIT("dropped lines from banned origins", 5);
  ch->refused_log = (nm_log_rate)NM_LOG_RATE_INIT("refused lines", 5);
  nm_lineq_init(&ch->pending, SV_PENDING_MAX, SV_PENDING_BYTES_MAX, SV_PENDING_TTL_MS);
  /* One window per origin the list can hold (and ourselves). */
  int rc = nm_member_cache_init(&ch->members, NM_MEMBER_CACHE_DEFAULT);
  if (rc < 0) return rc;
  return nm_replay_table_init(&ch->replay, NM_PEERS_MAX + 1);
}

void sv_chat_close(servant *sv) {
  nm_member_cache_close(&sv->chat.members);
  nm_replay_table_close(&sv->chat.replay);
  nm_lineq_clear(&sv->chat.pending);
}

int sv_chat_set_member(servant *sv, const nm_msg_welcome *w) {
  sv_chat *ch = &sv->chat;
  nm_fingerprint fp;
  nm_fingerprint_of_pubkey(w->manager_key, &fp);
  const char *why = NULL;
  if (!nm_fingerprint_equal(&fp, sv_manager_fp(sv))) why = "its manager key is not the one we pinned";
  else if (memcmp(w->key, sv->identity.pub, NM_PUBKEY_LEN) != 0) why = "it is for another key";
  else if (nm_member_verify(w->manager_key, sv->id, w->key, w->name, w->cert) < 0) why = "it does not verify";
  if (why) {
    nm_log_warn("membership certificate ignored: %s", why);
    return -EBADMSG;
  }
  memcpy(ch->cert, w->cert, sizeof ch->cert);
  snprintf(ch->cert_name, sizeof ch->cert_name, "%s", w->name);
  memcpy(ch->manager_key, w->manager_key, sizeof ch->manager_key);
  ch->has_cert = ch->has_manager_key = 1;
  return 0;
}

void sv_chat_publish(servant *sv, const char *text) {
  sv_chat *ch = &sv->chat;
  static nm_msg m; /* 4 KiB of text: not on the stack for every line */
  memset(&m, 0, sizeof m);
  m.type = NM_MSG_CHAT;
  nm_msg_chat *c = &m.u.chat;
  snprintf(c->origin, sizeof c->origin, "%s", sv->id);
  snprintf(c->name, sizeof c->name, "%s", sv->cfg.name);
  snprintf(c->text, sizeof c->text, "%s", text);
  /* In a bounded mesh most receivers do not list us: our key and certificate go along (the
   * name then must be the one the certificate covers). */
  if (ch->has_cert && sv_peers_meshed(sv)) {
    c->has_cert = 1;
    memcpy(c->key, sv->identity.pub, sizeof c->key);
    memcpy(c->cert, ch->cert, sizeof c->cert);
    snprintf(c->name, sizeof c->name, "%s", ch->cert_name);
    /* Receivers held by another manager of the overlay check it with this key. */
    c->has_signer = 1;
    memcpy(c->signer, ch->manager_key, sizeof c->signer);
  }
  c->epoch = ch->epoch;
  c->seq = ch->next_seq + 1;
  /* Signed over (origin, epoch, seq, text): nobody on the way can alter it, and nobody
   * but us can make a line that verifies with our listed key. */
  int rc = nm_msg_chat_sign(c, sv->identity.key);
  nm_msgbuf b = {0};
  /* Encoded once: the same bytes go to every peer, backlog and relay client. XML cannot
   * carry control characters (other than tab) or invalid UTF-8: peers would refuse the
   * frame and drop our connection. */
  if (rc == 0) rc = nm_msg_encode(&m, &b);
  if (rc < 0) {
    nm_log_warn("line not sent: %s", rc == -EINVAL ? "it holds control characters or invalid UTF-8"
                                                   : nm_strerror(rc));
    return;
  }
  ch->next_seq++;
  sv_line l = {.origin = sv->id, .name = sv->cfg.name, .text = text, .payload = b.data, .len = b.len};
  sv_lines_published(sv, &l);
  nm_msgbuf_free(&b);
}

/* Our own line came back to us (relays forward to everyone but the author; a relay that
 * was told of us late may still replay it): ours are never shown, but one that does not
 * verify with our own key is somebody forging us, which is worth saying. */
static void sv__chat_own(servant *sv, const nm_msg_chat *c, const char *via) {
  if (nm_msg_chat_verify(c, sv->identity.pub) == 0) return;
  sv->chat.forged++;
  nm_log_ratelimited(&sv->chat.forged_log, NM_LOG_WARN,
                     "dropped a line via %s claiming to be ours (seq %llu): its signature does not verify", via,
                     (unsigned long long)c->seq);
}

/* A line whose origin we do not list (yet): kept, as "via\0payload" (the payload as the
 * message layer writes it, decoded again when released), until the origin is listed or
 * SV_PENDING_TTL_MS passes. Nothing about it is trusted meanwhile: it is only held. */
static int sv__chat_pend(servant *sv, const nm_msg_chat *c, const char *via) {
  sv_chat *ch = &sv->chat;
  const char *why = NULL;
  int rc = 0;
  if (nm_lineq_count_origin(&ch->pending, c->origin) >= SV_PENDING_PER_ORIGIN) {
    why = "too many lines pending from that origin";
    rc = -EMLINK;
  }
  static nm_msg m; /* 4 KiB of text: not on the stack */
  nm_msgbuf b = {0};
  char *buf = NULL;
  size_t vlen = strlen(via) + 1;
  if (!why) {
    m.type = NM_MSG_CHAT;
    m.u.chat = *c;
    if (nm_msg_encode(&m, &b) < 0 || !(buf = malloc(vlen + b.len))) why = "out of memory";
  }
  if (!why) {
    memcpy(buf, via, vlen);
    memcpy(buf + vlen, b.data, b.len);
    int n = nm_lineq_push(&ch->pending, sv_now_ms(sv), c->origin, buf, vlen + b.len);
    if (n < 0) why = nm_strerror(n);
    else if (n > 0) {
      ch->unlisted += (uint64_t)n;
      nm_log_ratelimited(&ch->unlisted_log, NM_LOG_INFO,
                         "pending lines of unlisted origins full (%d lines or %u bytes): %d oldest dropped",
                         SV_PENDING_MAX, SV_PENDING_BYTES_MAX, n);
    }
  }
  free(buf);
  nm_msgbuf_free(&b);
  if (why) {
    ch->unlisted++;
    nm_log_ratelimited(&ch->unlisted_log, NM_LOG_INFO,
                       "dropped a line via %s: origin %s is not in our peer list (%s)", via, c->origin, why);
  }
  return rc;
}

void sv_chat_listed(servant *sv, const char *origin) {
  sv_chat *ch = &sv->chat;
  nm_lineq_item *it;
  static nm_msg m; /* 4 KiB of text: not on the stack */
  while ((it = nm_lineq_take_origin(&ch->pending, origin))) {
    const char *via = it->payload;
    size_t vlen = strnlen(via, it->len) + 1;
    char err[160];
    /* Its origin is listed now: past its ttl or not, it gets the same check as any line.
     * Decoding cannot fail (we encoded it); if it did, the line is dropped. */
    if (vlen < it->len &&
        nm_msg_decode(NM_MSG_CHAT, it->payload + vlen, it->len - vlen, &m, err, sizeof err) == 0)
      sv_chat_receive(sv, &m.u.chat, via);
    free(it);
  }
}

void sv_chat_tick(servant *sv) {
  sv_chat *ch = &sv->chat;
  uint64_t now = sv_now_ms(sv);
  /* All lines share one ttl, so the expired ones are at the front. */
  while (ch->pending.head && nm_lineq_expired(&ch->pending, ch->pending.head, now)) {
    nm_lineq_item *it = nm_lineq_pop(&ch->pending);
    ch->unlisted++;
    nm_log_ratelimited(&ch->unlisted_log, NM_LOG_INFO,
                       "dropped a line via %.*s: origin %s is not in our peer list (waited %u s)",
                       (int)strnlen(it->payload, it->len), it->payload, it->origin, SV_PENDING_TTL_MS / 1000);
    free(it);
  }
}

/* An accepted line goes on to the one fan-out, shown under name. Relay clients and
 * neighbours get it as the message layer writes it, with its epoch, signature, key and
 * certificate: they verify it again. */
static void sv__chat_fan_out(servant *sv, const nm_msg_chat *c, const char *name, const char *from) {
  static nm_msg m; /* 4 KiB of text: not on the stack */
  memset(&m, 0, sizeof m);
  m.type = NM_MSG_CHAT;
  m.u.chat = *c;
  nm_msgbuf b = {0};
  if (nm_msg_encode(&m, &b) < 0) b.len = 0; /* decoded, so encodable; be safe anyway */
  sv_line l = {.origin = c->origin, .name = name, .text = c->text, .payload = b.data, .len = b.len, .from = from};
  sv_lines_received(sv, &l);
  nm_msgbuf_free(&b);
}

/* A line from an origin outside our view, with its key and membership certificate: the
 * certificate with the manager's pinned key (nm_member: it also checks that the origin is
 * the key's id, and covers the name the frame carries), then the line with that key. The
 * name shown is the certificate's. Bans by key apply; address and host bans cannot (we do
 * not know an out-of-view origin's address). */
/* The manager key to check c's certificate with: the signer it names when that is one of
 * the managers we pin (several managers, one overlay), else our own manager's. */
static const uint8_t *sv__cert_signer(servant *sv, const nm_msg_chat *c) {
  if (!c->has_signer || memcmp(c->signer, sv->chat.manager_key, NM_PUBKEY_LEN) == 0) return sv->chat.manager_key;
  nm_fingerprint fp;
  nm_fingerprint_of_pubkey(c->signer, &fp);
  for (size_t i = 0; i < sv->cfg.join.nmanagers; i++)
    if (nm_fingerprint_equal(&fp, &sv->cfg.join.managers[i].fp)) return c->signer;
  return sv->chat.manager_key;
}

static int sv__chat_certified(servant *sv, const nm_msg_chat *c, const char *via, const char *from) {
  sv_chat *ch = &sv->chat;
  if (nm_replay_table_check(&ch->replay, c->origin, c->epoch, c->seq) == NM_REPLAY_DUPLICATE) {
    ch->replayed++;
    return 0;
  }
  int rc = nm_member_check(&ch->members, sv__cert_signer(sv, c), c->origin, c->key, c->name, c->cert);
  const char *what = "its membership certificate does not verify (made up, or for another id, key or name)";
  if (rc == 0) {
    rc = nm_msg_chat_verify(c, c->key);
    what = "its signature does not verify (forged or altered)";
  }
  if (rc < 0) {
    ch->forged++;
    nm_log_ratelimited(&ch->forged_log, NM_LOG_WARN,
                       "dropped a line via %s claiming to be from %s (%s), epoch %llu seq %llu: %s", via, c->name,
                       c->origin, (unsigned long long)c->epoch, (unsigned long long)c->seq,
                       rc == -EBADMSG ? what : nm_strerror(rc));
    return 0;
  }
  nm_fingerprint fp;
  nm_fingerprint_of_pubkey(c->key, &fp);
  if (nm_banlist_match_key(&sv->cfg.bans, fp.hex)) {
    ch->banned++;
    nm_log_ratelimited(&ch->banned_log, NM_LOG_INFO, "dropped a line from banned %s (%s) via %s", c->name,
                       c->origin, via);
    return 0;
  }
  int v = nm_replay_table_check_and_set(&ch->replay, c->origin, c->epoch, c->seq);
  /* Not in our list, so not "live" in the table: its window is kept while there is room and
   * reclaimed first when a listed origin needs one (nm_replay_table_remove), so origins we
   * only hear of cannot fill the table. */
  if (v >= 0) nm_replay_table_remove(&ch->replay, c->origin);
  if (v != NM_REPLAY_ACCEPT) {
    ch->replayed++;
    if (v != NM_REPLAY_DUPLICATE)
      nm_log_ratelimited(&ch->refused_log, v < 0 ? NM_LOG_WARN : NM_LOG_DEBUG,
                         "dropped a line from %s via %s, epoch %llu seq %llu: %s", c->name, via,
                         (unsigned long long)c->epoch, (unsigned long long)c->seq,
                         v < 0 ? nm_strerror(v) : nm_replay_verdict_name((nm_replay_verdict)v));
    return 0;
  }
  ch->accepted++;
  ch->certified++;
  sv__chat_fan_out(sv, c, c->name, from);
  return 0;
}

int sv_chat_receive(servant *sv, const nm_msg_chat *c, const char *via) { return sv_chat_receive_from(sv, c, via, NULL); }

int sv_chat_receive_from(servant *sv, const nm_msg_chat *c, const char *via, const char *from) {
  sv_chat *ch = &sv->chat;
  if (strcmp(c->origin, sv->id) == 0) {
    sv__chat_own(sv, c, via);
    return 0;
  }
  /* Only servants the manager listed may speak, and only with the key it lists for them:
   * the signature is checked before anything else looks at the line. An origin we do not
   * list may be one our list has not caught up with: its line waits (sv__chat_pend). */
  sv_peer *p = sv_peer_find(sv, c->origin);
  /* Outside our view (a bounded mesh lists only our neighbours and relays): a line that
   * carries its origin's key and membership certificate is verified by those. */
  if (!p && c->has_cert && ch->has_manager_key) return sv__chat_certified(sv, c, via, from);
  if (!p) return sv__chat_pend(sv, c, via);
  /* In a bounded mesh each line arrives from several neighbours: a copy of a line already
   * shown is dropped before its signature is checked, which costs far more than a look at
   * the window (dropping it changes nothing; an altered copy is then dropped unsaid). In the
   * full mesh an altered copy is still caught and logged as forged below. */
  if (sv_peers_meshed(sv) &&
      nm_replay_table_check(&ch->replay, c->origin, c->epoch, c->seq) == NM_REPLAY_DUPLICATE) {
    ch->replayed++;
    return 0;
  }
  int rc = nm_msg_chat_verify(c, p->info.key);
  if (rc < 0) {
    ch->forged++;
    nm_log_ratelimited(&ch->forged_log, NM_LOG_WARN,
                       "dropped a line via %s claiming to be from %s (%s), epoch %llu seq %llu: %s", via,
                       p->info.name, c->origin, (unsigned long long)c->epoch, (unsigned long long)c->seq,
                       rc == -EBADMSG ? "its signature does not verify (forged or altered)" : nm_strerror(rc));
    return 0;
  }
  /* Bans apply to the verified origin, whatever path the line took: its key, its listed
   * address and that address's name (peers.c keeps p->banned). */
  if (p->banned) {
    ch->banned++;
    nm_log_ratelimited(&ch->banned_log, NM_LOG_INFO, "dropped a line from banned %s (%s) via %s", p->info.name,
                       c->origin, via);
    return 0;
  }
  /* Only now, with the signature verified, may the line move the origin's window. */
  int v = nm_replay_table_check_and_set(&ch->replay, c->origin, c->epoch, c->seq);
  if (v != NM_REPLAY_ACCEPT) {
    ch->replayed++;
    if (v == NM_REPLAY_DUPLICATE) return 0; /* the same line by another path: the common case */
    nm_log_ratelimited(&ch->refused_log, v < 0 ? NM_LOG_WARN : NM_LOG_DEBUG,
                       "dropped a line from %s via %s, epoch %llu seq %llu: %s", p->info.name, via,
                       (unsigned long long)c->epoch, (unsigned long long)c->seq,
                       v < 0 ? nm_strerror(v) : nm_replay_verdict_name((nm_replay_verdict)v));
    return 0;
  }
  ch->accepted++;
  /* The name shown is the one the manager lists for that id: the frame's is not signed. */
  if (strcmp(c->name, p->info.name) != 0)
    nm_log_debug("a line from %s claims the name %s; shown as %s", c->origin, c->name, p->info.name);
  sv__chat_fan_out(sv, c, p->info.name, from);
  return 0;
}

void sv_chat_forget(servant *sv, const char *origin) { nm_replay_table_remove(&sv->chat.replay, origin); }
