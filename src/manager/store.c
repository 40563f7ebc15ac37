/* store: the manager's Redis client (see store.h).
 *
 * Three kinds of connection, each a store_conn: CMD (scripts, ROLE, SCRIPT LOAD), READ (the
 * stream reader's XREAD BLOCK, which would stall every command queued behind it on one
 * connection) and SENTINEL (one question to one sentinel at a time).
 *
 * hiredis 0.14 frees a context itself after a failed connect and after a read error, runs
 * every pending reply callback with a NULL reply when a context is freed, and defers a
 * redisAsyncFree called from inside a reply callback until that callback returns. So:
 *   - every command carries the generation of its connection; a reply (or NULL) for an
 *     older generation only frees its record;
 *   - a connection is dropped by clearing conn->ac first and freeing after, so the
 *     callbacks that the free runs find nothing of ours to act on;
 *   - the store's memory is freed only from its timers' close callbacks, after every
 *     deferred hiredis free has run. */
#include "store.h"

#include <errno.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nm_backoff.h"
#include "nm_log.h"
#include "nm_util.h"

#define STORE_TICK_MS 250
#define STORE_CONNECT_TIMEOUT_MS 2000
#define STORE_SENTINEL_TIMEOUT_MS 1000  /* a sentinel's connect and answer, each */
/* The watchdog: no reply and no byte of one for this long. Redis Sentinel's own default
 * (down-after-milliseconds) is 30 s; 5 s was too short on a busy host, where one manager's
 * snapshot of 50,000 held Redis for a second and its slow replies to the others made them
 * reconnect and read snapshots of their own, in a cascade. */
#define STORE_REPLY_TIMEOUT_MS 15000
#define STORE_XREAD_BLOCK_MS 1000
#define STORE_XREAD_COUNT 1024
#define STORE_BACKOFF_FIRST_MS 100
#define STORE_BACKOFF_MAX_MS 2000
#define STORE_IP_MAX 46                 /* INET6_ADDRSTRLEN */
#define STORE_ADDR_MAX (STORE_IP_MAX + 8)
#define STORE_STREAM_ID_MAX 48

enum { CONN_CMD, CONN_READ, CONN_SENTINEL, CONN_N };

enum store_state {
  ST_WAIT,       /* the retry timer runs (or the first attempt is due) */
  ST_SENTINEL,   /* asking the sentinels who the primary is */
  ST_CONNECTING, /* primary: ROLE, SCRIPT LOAD, the first snapshot in flight */
  ST_UP,         /* a snapshot was read on this connection */
};

enum cmd_kind { K_ROLE, K_LOAD, K_SNAPSHOT, K_PUT, K_LEAVE, K_RENEW, K_REAP, K_COMPLAIN,
                K_ANNOUNCE, K_XREAD, K_SENTINEL, K_ADMISSION, K_ADM_SNAPSHOT, K_LEAD, K_MESH };

/* adm:*: the admission facts of every manager (mgr_store_admission), one hash per kind. */
/* mesh: the shared mesh's neighbour sets (id -> "ID ID ..."), meshlead: its leader's lease. */
enum { KEY_REG, KEY_HOLDER, KEY_ALIVE, KEY_SEQ, KEY_LOG, KEY_MANAGERS, KEY_ADM_INV, KEY_ADM_KEY,
       KEY_ADM_REVKEY, KEY_ADM_REVINV, KEY_MESH, KEY_LEAD, KEY_N };
static const char *const key_suffix[KEY_N] = {"reg", "holder", "alive", "seq", "log", "managers",
                                              "adm:inv", "adm:key", "adm:rev", "adm:revinv",
                                              "mesh", "meshlead"};

/* ---- the scripts ------------------------------------------------------------------------
 * Each is atomic on the primary: that is what makes every decision once. The clock is
 * Redis's (TIME), shared by every manager. replicate_commands: scripts that read TIME and
 * then write must replicate their effects (the default from Redis 7 on; needed before). */
#define LUA_PRELUDE                                                                \
  "if redis.replicate_commands then redis.replicate_commands() end "               \
  "local function now() local t = redis.call('TIME') "                             \
  "return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end\n"

/* A registration goes (leave and reap): its record, holder and deadline, and its leave on the
 * change log at the next version. KEYS: reg holder alive seq log. */
#define LUA_DROP                                                                   \
  "local function drop(id, holder, reason, maxlen) "                               \
  "redis.call('HDEL', KEYS[1], id) "                                               \
  "redis.call('HDEL', KEYS[2], id) "                                               \
  "redis.call('ZREM', KEYS[3], id) "                                               \
  "local seq = redis.call('INCR', KEYS[4]) "                                       \
  "redis.call('XADD', KEYS[5], 'MAXLEN', '~', maxlen, '*', 's', seq, 'o', 'l', "   \
  "'i', id, 'h', holder, 'd', reason) "                                            \
  "return seq end\n"

enum { SC_PUT, SC_LEAVE, SC_RENEW, SC_REAP, SC_SNAPSHOT, SC_COMPLAIN, SC_ANNOUNCE, SC_ADMISSION,
       SC_ADM_SNAPSHOT, SC_LEAD, SC_MESH, SC_N };

typedef struct {
  const char *name;
  const char *body;
  int nkeys;
  int keys[6];
} store_script;

static const store_script scripts[SC_N] = {
  /* ARGV: id holder data ttl_ms maxlen */
  [SC_PUT] = {"put", LUA_PRELUDE
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) "
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) "
    "redis.call('ZADD', KEYS[3], now() + tonumber(ARGV[4]), ARGV[1]) "
    "local seq = redis.call('INCR', KEYS[4]) "
    "redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[5], '*', 's', seq, 'o', 'u', "
    "'i', ARGV[1], 'h', ARGV[2], 'd', ARGV[3]) "
    "return seq",
    5, {KEY_REG, KEY_HOLDER, KEY_ALIVE, KEY_SEQ, KEY_LOG}},
  /* ARGV: id holder reason maxlen. A stale session (the servant moved to another manager)
   * publishes nothing. Holder "": the leave of an id no record holds (a remote entry some
   * manager still lists after the store lost it, shared.c), published only then. */
  [SC_LEAVE] = {"leave", LUA_PRELUDE LUA_DROP
    "local h = redis.call('HGET', KEYS[2], ARGV[1]) "
    "if h == false then if ARGV[2] ~= '' then return 0 end "
    "elseif h ~= ARGV[2] then return 0 end "
    "return drop(ARGV[1], ARGV[2], ARGV[3], ARGV[4])",
    5, {KEY_REG, KEY_HOLDER, KEY_ALIVE, KEY_SEQ, KEY_LOG}},
  /* ARGV: holder ttl_ms ids... -> {missing ids, {id, holder, id, holder...}}. ZADD in
   * chunks: unpack has a stack limit. */
  [SC_RENEW] = {"renew", LUA_PRELUDE
    "local deadline = now() + tonumber(ARGV[2]) "
    "local missing, moved, z = {}, {}, {} "
    "for i = 3, #ARGV do "
    "  local id = ARGV[i] "
    "  local h = redis.call('HGET', KEYS[1], id) "
    "  if not h then missing[#missing + 1] = id "
    "  elseif h ~= ARGV[1] then moved[#moved + 1] = id; moved[#moved + 1] = h "
    "  else z[#z + 1] = deadline; z[#z + 1] = id "
    "    if #z >= 1000 then redis.call('ZADD', KEYS[2], unpack(z)); z = {} end "
    "  end "
    "end "
    "if #z > 0 then redis.call('ZADD', KEYS[2], unpack(z)) end "
    "return {missing, moved}",
    2, {KEY_HOLDER, KEY_ALIVE}},
  /* ARGV: limit maxlen -> how many expired */
  [SC_REAP] = {"reap", LUA_PRELUDE LUA_DROP
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now(), 'LIMIT', 0, "
    "tonumber(ARGV[1])) "
    "for _, id in ipairs(ids) do drop(id, '', 'expired', ARGV[2]) end "
    "return #ids",
    5, {KEY_REG, KEY_HOLDER, KEY_ALIVE, KEY_SEQ, KEY_LOG}},
  /* ARGV: max -> {seq, last stream id, id, holder, record, neighbour set, ...}. The bound is
   * checked before the reply is built: a registry past it never crosses the wire. */
  [SC_SNAPSHOT] = {"snapshot",
    "local n = redis.call('HLEN', KEYS[1]) "
    "if n > tonumber(ARGV[1]) then "
    "  return redis.error_reply('ERR natmesh snapshot of ' .. n .. ' entries') end "
    "local seq = tonumber(redis.call('GET', KEYS[3]) or '0') "
    "local last = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', 1) "
    "local lastid = '0-0' "
    "if #last > 0 then lastid = last[1][1] end "
    "local out = {seq, lastid} "
    "local reg = redis.call('HGETALL', KEYS[1]) "
    "for i = 1, #reg, 2 do "
    "  out[#out + 1] = reg[i] "
    "  out[#out + 1] = redis.call('HGET', KEYS[2], reg[i]) or '' "
    "  out[#out + 1] = reg[i + 1] "
    "  out[#out + 1] = redis.call('HGET', KEYS[5], reg[i]) or '' "
    "end "
    "return out",
    5, {KEY_REG, KEY_HOLDER, KEY_SEQ, KEY_LOG, KEY_MESH}},
  /* ARGV: accused holder reporter maxlen. Not a change of the registry: no INCR. */
  [SC_COMPLAIN] = {"complain",
    "local seq = tonumber(redis.call('GET', KEYS[1]) or '0') "
    "redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 's', seq, 'o', 'c', "
    "'i', ARGV[1], 'h', ARGV[2], 'd', ARGV[3]) "
    "return seq",
    2, {KEY_SEQ, KEY_LOG}},
  /* ARGV: name addr port fp max -> {now, {name, value, ...}} (at most max managers) */
  [SC_ANNOUNCE] = {"announce", LUA_PRELUDE
    "local t = now() "
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. t) "
    "local all = redis.call('HGETALL', KEYS[1]) "
    "local out = {} "
    "for i = 1, math.min(#all, 2 * tonumber(ARGV[5])) do out[i] = all[i] end "
    "return {t, out}",
    1, {KEY_MANAGERS}},
  /* ARGV: kind key value from maxlen max -> 1 (a new fact, published) or 0 (known already,
   * or overruled by a revocation: nothing published). Not a change of the registry: no
   * INCR. A revocation always wins: a revoked key's record and a revoked invite go, and
   * neither comes back. */
  [SC_ADMISSION] = {"admission",
    "local k, key, v = ARGV[1], ARGV[2], ARGV[3] "
    "local h "
    "if k == 'i' then "
    "  if redis.call('HEXISTS', KEYS[4], key) == 1 then return 0 end "
    "  h = KEYS[1] "
    "elseif k == 'k' then "
    "  if redis.call('HEXISTS', KEYS[3], key) == 1 then return 0 end "
    "  h = KEYS[2] "
    "elseif k == 'r' then h = KEYS[3] "
    "elseif k == 'v' then h = KEYS[4] "
    "else return redis.error_reply('ERR natmesh admission fact of kind ' .. k) end "
    "local old = redis.call('HGET', h, key) "
    "if old == v then return 0 end "
    "if old == false and redis.call('HLEN', h) >= tonumber(ARGV[6]) then "
    "  return redis.error_reply('ERR natmesh admission facts of kind ' .. k .. ' full') end "
    "redis.call('HSET', h, key, v) "
    "if k == 'r' then redis.call('HDEL', KEYS[2], key) end "
    "if k == 'v' then redis.call('HDEL', KEYS[1], key) end "
    "local seq = tonumber(redis.call('GET', KEYS[5]) or '0') "
    "redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[5], '*', 's', seq, 'o', 'a', "
    "'i', key, 'h', ARGV[4], 'd', v, 'k', k) "
    "return 1",
    6, {KEY_ADM_INV, KEY_ADM_KEY, KEY_ADM_REVKEY, KEY_ADM_REVINV, KEY_SEQ, KEY_LOG}},
  /* ARGV: max -> {kind, key, value, ...}: revocations first. The bound is checked before
   * the reply is built. */
  [SC_ADM_SNAPSHOT] = {"admission snapshot",
    "local n = 0 "
    "for i = 1, 4 do n = n + redis.call('HLEN', KEYS[i]) end "
    "if n > tonumber(ARGV[1]) then "
    "  return redis.error_reply('ERR natmesh admission snapshot of ' .. n .. ' facts') end "
    "local out = {} "
    "local kinds = {{KEYS[4], 'v'}, {KEYS[3], 'r'}, {KEYS[1], 'i'}, {KEYS[2], 'k'}} "
    "for _, kh in ipairs(kinds) do "
    "  local all = redis.call('HGETALL', kh[1]) "
    "  for i = 1, #all, 2 do "
    "    out[#out + 1] = kh[2]; out[#out + 1] = all[i]; out[#out + 1] = all[i + 1] "
    "  end "
    "end "
    "return out",
    4, {KEY_ADM_INV, KEY_ADM_KEY, KEY_ADM_REVKEY, KEY_ADM_REVINV}},
  /* ARGV: name ttl_ms -> {the leader, the log's last stream id}. The mesh's leader is whoever
   * holds the lease: taken when nobody does, renewed by its holder, never taken away. */
  [SC_LEAD] = {"lead",
    "local cur = redis.call('GET', KEYS[1]) "
    "if cur == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2])); cur = ARGV[1] "
    "elseif cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2])) end "
    "local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1) "
    "local lastid = '0-0' "
    "if #last > 0 then lastid = last[1][1] end "
    "return {cur, lastid}",
    2, {KEY_LEAD, KEY_LOG}},
  /* ARGV: name maxlen payload reset -> 1, or 0 when name does not hold the lease (fenced: a
   * leader that lost it writes nothing). payload: lines "ID ID ID...\n", "ID -\n" for a
   * node that is gone; reset 1: the whole graph follows, forget the stored one. Not a change
   * of the registry: no INCR. */
  [SC_MESH] = {"mesh",
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end "
    "if ARGV[4] == '1' then redis.call('DEL', KEYS[2]) end "
    "for id, set in string.gmatch(ARGV[3], '([^ \\n]+) ([^\\n]*)\\n') do "
    "  if set == '-' then redis.call('HDEL', KEYS[2], id) else redis.call('HSET', KEYS[2], id, set) end "
    "end "
    "local seq = tonumber(redis.call('GET', KEYS[3]) or '0') "
    "redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[2], '*', 's', seq, 'o', 'n', "
    "'i', ARGV[1], 'h', ARGV[1], 'd', ARGV[3]) "
    "return 1",
    4, {KEY_LEAD, KEY_MESH, KEY_SEQ, KEY_LOG}},
};

/* ---- state ------------------------------------------------------------------------------ */

typedef struct store_cmd store_cmd;
typedef struct store_conn store_conn;

/* One command in flight. Its arguments stay with it so that a NOSCRIPT can be sent again as
 * EVAL; one allocation holds the record, the argument vectors and their bytes. */
struct store_cmd {
  store_conn *c;
  uint32_t gen;
  int kind;
  int script; /* SC_* or -1 */
  uint64_t sent_ms;
  store_cmd *prev, *next;
  int argc;
  const char **argv;
  size_t *argvlen;
};

struct store_conn {
  mgr_store *s;
  int role;
  redisAsyncContext *ac; /* NULL: no connection */
  uint32_t gen;          /* bumped whenever ac is dropped or replaced */
  int connected;
  uint64_t started_ms;
  char addr[STORE_ADDR_MAX];
  store_cmd *head, *tail; /* in flight, oldest first (replies come in order) */
  size_t inflight;
  const store_cmd *overdue; /* the oldest command was past its time at the last tick */
  uint64_t last_reply_ms;   /* when the last reply was read */
};

typedef struct {
  char ip[STORE_IP_MAX];
  uint16_t port;
} store_addr;

typedef struct {
  int sentinel;
  size_t naddr;
  store_addr addr[MGR_STORE_SENTINELS_MAX];
  char master[MGR_STORE_NAME_MAX + 1];
} store_url;

struct mgr_store {
  uv_loop_t *loop;
  uv_timer_t tick, retry;
  int timers_open;
  int closing;
  mgr_store_hooks h;
  void *ud;
  store_url url;
  char key[KEY_N][MGR_STORE_NAME_MAX + 16];
  char self[MGR_STORE_NAME_MAX + 1];
  char ttl[24];
  char sha[SC_N][41];
  store_conn conn[CONN_N];
  enum store_state state;
  size_t sen_next;        /* the next sentinel to ask in this round */
  int link_up;            /* a snapshot was read on this connection: writes go */
  int eval_mode;          /* a NOSCRIPT was seen on this connection: send EVAL */
  int snapshot_pending;   /* the reader waits for it */
  int down_reported;      /* on_down was called for this outage */
  int ever_up;
  char primary[STORE_ADDR_MAX];      /* "" unless link_up */
  char last_primary[STORE_ADDR_MAX]; /* the last one we were up on: failovers */
  char lastid[STORE_STREAM_ID_MAX];
  uint64_t last_seq;
  /* The mesh's lease (mgr_store_lead): who holds it, whether we lead (told through
   * on_lead), and, having just taken it, the log's last entry then: we lead only once the
   * reader has passed it (the old leader's last sets are all read). */
  char leader[MGR_STORE_NAME_MAX + 1];
  int leading, lead_waiting;
  char lead_after[STORE_STREAM_ID_MAX];
  nm_backoff backoff;
  nm_log_rate lograte;
  mgr_store_stats st;
};

static void store_fail(mgr_store *s, const char *why);
static void sentinel_ask(mgr_store *s);
static void reader_next(mgr_store *s);
static void lead_check(mgr_store *s);

/* ---- the URL ----------------------------------------------------------------------------- */

static int valid_name(const char *n, size_t len) {
  if (len == 0 || len > MGR_STORE_NAME_MAX) return 0;
  for (size_t i = 0; i < len; i++) {
    char ch = n[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '.' || ch == '_' || ch == '-'))
      return 0;
  }
  return 1;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  if (!err || !errlen) return;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* "IP:PORT" or "[V6]:PORT", s[0..len): an IP literal (no name: resolving would block the
 * loop). */
static int parse_addr(const char *s, size_t len, store_addr *a, char *err, size_t errlen) {
  char buf[STORE_ADDR_MAX];
  unsigned char bin[16];
  if (len == 0 || len >= sizeof buf) {
    seterr(err, errlen, "bad address '%.*s'", (int)(len), s);
    return -EINVAL;
  }
  memcpy(buf, s, len);
  buf[len] = '\0';
  char *host = buf, *colon;
  if (buf[0] == '[') {
    char *close = strchr(buf, ']');
    if (!close || close[1] != ':') goto bad;
    *close = '\0';
    host = buf + 1;
    colon = close + 1;
  } else {
    colon = strrchr(buf, ':');
    if (!colon) goto bad;
    *colon = '\0';
  }
  if (nm_parse_port(colon + 1, 0, &a->port) < 0) goto bad;
  if (uv_inet_pton(AF_INET, host, bin) != 0 && uv_inet_pton(AF_INET6, host, bin) != 0) {
    seterr(err, errlen, "'%.*s' is not an IP literal (names are not resolved)", (int)(len), s);
    return -EINVAL;
  }
  if (strlen(host) >= sizeof a->ip) goto bad;
  strcpy(a->ip, host);
  return 0;
bad:
  seterr(err, errlen, "bad address '%.*s' (IP:PORT or [IPV6]:PORT)", (int)(len), s);
  return -EINVAL;
}

static int url_parse(const char *url, store_url *u, char *err, size_t errlen) {
  memset(u, 0, sizeof *u);
  if (err && errlen) err[0] = '\0';
  if (!url) return -EINVAL;
  const char *p;
  if (strncmp(url, "redis://", 8) == 0) {
    p = url + 8;
    u->naddr = 1;
    return parse_addr(p, strlen(p), &u->addr[0], err, errlen);
  }
  if (strncmp(url, "sentinel://", 11) != 0) {
    seterr(err, errlen, "'%s': a store URL is redis://IP:PORT or "
           "sentinel://IP:PORT[,IP:PORT...]/MASTERNAME", url);
    return -EINVAL;
  }
  u->sentinel = 1;
  p = url + 11;
  const char *slash = strchr(p, '/');
  if (!slash || !valid_name(slash + 1, strlen(slash + 1))) {
    seterr(err, errlen, "'%s': sentinel:// needs /MASTERNAME ([A-Za-z0-9._-], at most 64)", url);
    return -EINVAL;
  }
  strcpy(u->master, slash + 1);
  while (p < slash) {
    const char *comma = memchr(p, ',', (size_t)(slash - p));
    const char *end = comma ? comma : slash;
    if (u->naddr == MGR_STORE_SENTINELS_MAX) {
      seterr(err, errlen, "'%s': more than 8 sentinels", url);
      return -EINVAL;
    }
    if (parse_addr(p, (size_t)(end - p), &u->addr[u->naddr], err, errlen) < 0) return -EINVAL;
    u->naddr++;
    p = comma ? comma + 1 : slash;
  }
  if (u->naddr == 0) {
    seterr(err, errlen, "'%s': no sentinel address", url);
    return -EINVAL;
  }
  return 0;
}

int mgr_store_check_name(const char *name) {
  return name && valid_name(name, strlen(name)) ? 0 : -EINVAL;
}

int mgr_store_parse_url(const char *url, char *err, size_t errlen) {
  store_url u;
  return url_parse(url, &u, err, errlen);
}

static void format_addr(char *out, size_t n, const char *ip, unsigned port) {
  if (strchr(ip, ':'))
    snprintf(out, n, "[%s]:%u", ip, port);
  else
    snprintf(out, n, "%s:%u", ip, port);
}

/* ---- commands ------------------------------------------------------------------------------ */

static uint64_t now_ms(const mgr_store *s) { return uv_now(s->loop); }

static void cmd_unlink(store_conn *c, store_cmd *k) {
  if (k->prev) k->prev->next = k->next; else c->head = k->next;
  if (k->next) k->next->prev = k->prev; else c->tail = k->prev;
  k->prev = k->next = NULL;
  c->inflight--;
}

static store_cmd *cmd_new(store_conn *c, int kind, int script, int argc, const char **argv,
                          const size_t *lens) {
  size_t bytes = 0;
  for (int i = 0; i < argc; i++) bytes += lens[i];
  size_t vec = (size_t)argc * (sizeof(char *) + sizeof(size_t));
  store_cmd *k = malloc(sizeof *k + vec + bytes);
  if (!k) return NULL;
  memset(k, 0, sizeof *k);
  k->c = c;
  k->gen = c->gen;
  k->kind = kind;
  k->script = script;
  k->argc = argc;
  k->argvlen = (size_t *)(k + 1);
  k->argv = (const char **)(k->argvlen + argc);
  char *p = (char *)(k->argv + argc);
  for (int i = 0; i < argc; i++) {
    memcpy(p, argv[i], lens[i]);
    k->argv[i] = p;
    k->argvlen[i] = lens[i];
    p += lens[i];
  }
  return k;
}

static void cmd_reply(redisAsyncContext *ac, void *reply, void *priv);

/* Sends k on its connection and links it at the tail. -ENOTCONN: hiredis refused it (the
 * context is disconnecting); k is freed then. */
static int cmd_issue(store_cmd *k) {
  store_conn *c = k->c;
  if (!c->ac || redisAsyncCommandArgv(c->ac, cmd_reply, k, k->argc, k->argv, k->argvlen) != REDIS_OK) {
    free(k);
    return -ENOTCONN;
  }
  k->sent_ms = now_ms(c->s);
  k->prev = c->tail;
  if (c->tail) c->tail->next = k; else c->head = k;
  c->tail = k;
  c->inflight++;
  return 0;
}

static int cmd_send(store_conn *c, int kind, int argc, const char **argv, const size_t *lens) {
  store_cmd *k = cmd_new(c, kind, -1, argc, argv, lens);
  return k ? cmd_issue(k) : -ENOMEM;
}

static int cmd_sendv(store_conn *c, int kind, int argc, const char **argv) {
  size_t lens[8];
  for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
  return cmd_send(c, kind, argc, argv, lens);
}

/* EVALSHA sha nkeys keys... args... (EVAL body ... once NOSCRIPT was seen). */
static int script_send(mgr_store *s, int kind, int sc, int nargs, const char **args,
                       const size_t *lens) {
  const store_script *def = &scripts[sc];
  int argc = 3 + def->nkeys + nargs;
  const char **argv = malloc((size_t)argc * sizeof *argv);
  size_t *alen = malloc((size_t)argc * sizeof *alen);
  char nk[8];
  int rc = -ENOMEM;
  if (!argv || !alen) goto out;
  snprintf(nk, sizeof nk, "%d", def->nkeys);
  argv[0] = s->eval_mode ? "EVAL" : "EVALSHA";
  argv[1] = s->eval_mode ? def->body : s->sha[sc];
  argv[2] = nk;
  for (int i = 0; i < 3; i++) alen[i] = strlen(argv[i]);
  for (int i = 0; i < def->nkeys; i++) {
    argv[3 + i] = s->key[def->keys[i]];
    alen[3 + i] = strlen(argv[3 + i]);
  }
  for (int i = 0; i < nargs; i++) {
    argv[3 + def->nkeys + i] = args[i];
    alen[3 + def->nkeys + i] = lens ? lens[i] : strlen(args[i]);
  }
  store_cmd *k = cmd_new(&s->conn[CONN_CMD], kind, sc, argc, argv, alen);
  rc = k ? cmd_issue(k) : -ENOMEM;
out:
  free(argv);
  free(alen);
  return rc;
}

/* A NOSCRIPT (someone ran SCRIPT FLUSH): the same command again as EVAL, and EVAL from now
 * on for this connection. Commands already in flight behind it may overtake it; each is a
 * whole decision of its own, and renew mends a registry that went wrong meanwhile. */
static void script_resend(mgr_store *s, store_cmd *old) {
  s->eval_mode = 1;
  old->argv[0] = "EVAL";
  old->argvlen[0] = 4;
  old->argv[1] = scripts[old->script].body;
  old->argvlen[1] = strlen(scripts[old->script].body);
  store_cmd *k = cmd_new(&s->conn[CONN_CMD], old->kind, old->script, old->argc, old->argv,
                         old->argvlen);
  if (!k || cmd_issue(k) < 0) s->st.errors++;
}

/* ---- connections --------------------------------------------------------------------------- */

/* Forgets the connection first, then frees it: the NULL replies and the disconnect callback
 * hiredis runs from the free (now, or after the reply callback we are in) find a newer
 * generation and do nothing. */
static void conn_drop(store_conn *c) {
  redisAsyncContext *ac = c->ac;
  c->ac = NULL;
  c->gen++;
  c->connected = 0;
  c->head = c->tail = NULL;
  c->overdue = NULL;
  c->inflight = 0;
  if (ac) redisAsyncFree(ac);
}

static void drop_all(mgr_store *s) {
  for (int i = 0; i < CONN_N; i++) conn_drop(&s->conn[i]);
  s->link_up = 0;
  s->snapshot_pending = 0;
  s->eval_mode = 0;
  s->primary[0] = '\0';
}

/* A connection failed on its own: a sentinel means asking the next one; the primary's
 * connections mean the store is down. */
static void conn_failed(store_conn *c, const char *why) {
  mgr_store *s = c->s;
  if (s->closing) return;
  if (c->role == CONN_SENTINEL) {
    nm_log_ratelimited(&s->lograte, NM_LOG_DEBUG, "store: sentinel %s: %s", c->addr, why);
    conn_drop(c);
    sentinel_ask(s);
    return;
  }
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", c->addr, why);
  store_fail(s, msg);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  store_conn *c = ac->data;
  if (!c || c->ac != ac) return;
  if (status == REDIS_OK) {
    c->connected = 1;
    return;
  }
  /* hiredis frees the context after this returns: forget it, never free it. */
  char why[128];
  snprintf(why, sizeof why, "connect: %s", ac->errstr[0] ? ac->errstr : "failed");
  c->ac = NULL;
  c->gen++;
  c->head = c->tail = NULL;
  c->overdue = NULL;
  c->inflight = 0;
  conn_failed(c, why);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  store_conn *c = ac->data;
  if (!c || c->ac != ac) return; /* we dropped it ourselves */
  char why[128];
  snprintf(why, sizeof why, "connection closed%s%s", ac->errstr[0] ? ": " : "", ac->errstr);
  c->ac = NULL;
  c->gen++;
  c->head = c->tail = NULL;
  c->overdue = NULL;
  c->inflight = 0;
  conn_failed(c, why);
}

static int conn_open(store_conn *c, const char *ip, uint16_t port) {
  mgr_store *s = c->s;
  conn_drop(c);
  format_addr(c->addr, sizeof c->addr, ip, port);
  redisAsyncContext *ac = redisAsyncConnect(ip, port);
  if (!ac) return -ENOMEM;
  if (ac->err) {
    nm_log_ratelimited(&s->lograte, NM_LOG_DEBUG, "store: %s: %s", c->addr, ac->errstr);
    redisAsyncFree(ac);
    return -ECONNREFUSED;
  }
  ac->data = c;
  if (redisLibuvAttach(ac, s->loop) != REDIS_OK) {
    redisAsyncFree(ac);
    return -ENOMEM;
  }
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  c->ac = ac;
  c->gen++;
  c->connected = 0;
  c->started_ms = now_ms(s);
  return 0;
}

/* ---- the outage and the way back ------------------------------------------------------------ */

static void retry_cb(uv_timer_t *t);

static void lead_set(mgr_store *s, const char *leader, int leading);

static void store_fail(mgr_store *s, const char *why) {
  if (s->closing) return;
  drop_all(s);
  lead_set(s, "", 0);
  s->st.errors++;
  s->state = ST_WAIT;
  unsigned delay = nm_backoff_next(&s->backoff);
  uv_timer_start(&s->retry, retry_cb, delay, 0);
  if (s->down_reported) {
    nm_log_ratelimited(&s->lograte, NM_LOG_DEBUG, "store: still down: %s", why);
    return;
  }
  s->down_reported = 1;
  nm_log_warn("store: down: %s (retrying)", why);
  if (s->h.on_down) s->h.on_down(s->ud, why);
}

static int snapshot_request(mgr_store *s) {
  char max[24];
  snprintf(max, sizeof max, "%u", (unsigned)MGR_STORE_ENTRIES_MAX);
  const char *args[] = {max};
  int rc = script_send(s, K_SNAPSHOT, SC_SNAPSHOT, 1, args, NULL);
  if (rc == 0) s->snapshot_pending = 1;
  /* The admission facts after it: one written between the two is read twice (once from
   * the stream), which is harmless; none is missed. Not without the hook. */
  if (rc == 0 && s->h.on_admission) {
    char amax[24];
    snprintf(amax, sizeof amax, "%u", (unsigned)MGR_STORE_FACTS_SNAPSHOT_MAX);
    const char *aargs[] = {amax};
    rc = script_send(s, K_ADM_SNAPSHOT, SC_ADM_SNAPSHOT, 1, aargs, NULL);
  }
  return rc;
}

/* Both connections to the primary at once; on CMD, pipelined: ROLE (a replica is refused),
 * the scripts, the first snapshot. The reader starts from the snapshot's stream id. */
static void primary_connect(mgr_store *s, const char *ip, uint16_t port) {
  store_conn *cmd = &s->conn[CONN_CMD];
  s->state = ST_CONNECTING;
  s->eval_mode = 0;
  if (conn_open(cmd, ip, port) < 0 || conn_open(&s->conn[CONN_READ], ip, port) < 0) {
    char why[96];
    snprintf(why, sizeof why, "%s: cannot connect", cmd->addr);
    store_fail(s, why);
    return;
  }
  int rc = cmd_sendv(cmd, K_ROLE, 1, (const char *[]){"ROLE"});
  for (int i = 0; rc == 0 && i < SC_N; i++)
    rc = cmd_sendv(cmd, K_LOAD, 3, (const char *[]){"SCRIPT", "LOAD", scripts[i].body});
  if (rc == 0) rc = snapshot_request(s);
  if (rc < 0) store_fail(s, "cannot send the first commands");
}

static void sentinel_ask(mgr_store *s) {
  store_conn *c = &s->conn[CONN_SENTINEL];
  s->state = ST_SENTINEL;
  while (s->sen_next < s->url.naddr) {
    const store_addr *a = &s->url.addr[s->sen_next++];
    if (conn_open(c, a->ip, a->port) < 0) continue;
    if (cmd_sendv(c, K_SENTINEL, 3, (const char *[]){"SENTINEL", "get-master-addr-by-name",
                                                      s->url.master}) == 0)
      return;
    conn_drop(c);
  }
  char why[128];
  snprintf(why, sizeof why, "no sentinel named the primary of %s", s->url.master);
  store_fail(s, why);
}

static void attempt_start(mgr_store *s) {
  if (s->url.sentinel) {
    s->sen_next = 0;
    sentinel_ask(s);
  } else {
    primary_connect(s, s->url.addr[0].ip, s->url.addr[0].port);
  }
}

static void retry_cb(uv_timer_t *t) {
  mgr_store *s = t->data;
  if (!s->closing) attempt_start(s);
}

/* The watchdog: hiredis 0.14 has no timeouts of its own. A connect that does not finish, or
 * an oldest command without a reply, drops the connection. */
static void tick_conn(store_conn *c, uint64_t now) {
  if (!c->ac) return;
  unsigned limit = c->role == CONN_SENTINEL ? STORE_SENTINEL_TIMEOUT_MS : STORE_CONNECT_TIMEOUT_MS;
  if (!c->connected) {
    if (now - c->started_ms > limit) conn_failed(c, "connect timed out");
    return;
  }
  if (!c->head) {
    c->overdue = NULL;
    return;
  }
  limit = c->role == CONN_SENTINEL ? STORE_SENTINEL_TIMEOUT_MS : STORE_REPLY_TIMEOUT_MS;
  if (c->head->kind == K_XREAD) limit += STORE_XREAD_BLOCK_MS;
  /* Replies still coming, or bytes of one waiting in the socket: the server is alive. The
   * oldest command only waits behind a burst of others (thousands of registrations written
   * at once, answered in order), or a big reply (a snapshot, 1,024 changes) is read 16 KiB
   * a loop iteration (hiredis' read size) while the manager is busy with its sessions. */
  int waiting = 0;
  if (ioctl(c->ac->c.fd, FIONREAD, &waiting) < 0) waiting = 0;
  if (now - c->head->sent_ms <= limit || now - c->last_reply_ms <= limit || waiting > 0) {
    c->overdue = NULL;
    return;
  }
  /* Two ticks in a row: libuv runs timers before it polls, so after the manager's own loop
   * was busy for longer than the limit (a burst of full lists) the reply may be waiting in
   * the socket, unread. The poll between two ticks reads it; only a reply still missing
   * then means the server is gone. */
  if (c->overdue == c->head) conn_failed(c, "no reply in time");
  else c->overdue = c->head;
}

static void tick_cb(uv_timer_t *t) {
  mgr_store *s = t->data;
  uint64_t now = now_ms(s);
  for (int i = 0; i < CONN_N && !s->closing; i++) tick_conn(&s->conn[i], now);
  nm_log_rate_flush(&s->lograte);
}

/* ---- replies ---------------------------------------------------------------------------------- */

static int is_str(const redisReply *r) {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

/* A string without NUL bytes, 1..max bytes (0..max when may_be_empty). */
static int is_name(const redisReply *r, size_t max, int may_be_empty) {
  return is_str(r) && r->len <= max && (may_be_empty || r->len > 0) && strlen(r->str) == r->len;
}

static int reply_u64(const redisReply *r, uint64_t *out) {
  if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
    *out = (uint64_t)r->integer;
    return 0;
  }
  return is_str(r) ? nm_parse_u64(r->str, r->len, out) : -EINVAL;
}

/* Errors that say this primary is gone (or not a primary any more). */
static int gone_error(const redisReply *r) {
  return strncmp(r->str, "READONLY", 8) == 0 || strncmp(r->str, "LOADING", 7) == 0 ||
         strncmp(r->str, "MASTERDOWN", 10) == 0 || strstr(r->str, "READONLY ") != NULL;
}

static void on_role(mgr_store *s, const redisReply *r) {
  if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && is_str(r->element[0]) &&
      strcmp(r->element[0]->str, "master") == 0)
    return;
  char why[96];
  snprintf(why, sizeof why, "%s is not a primary", s->conn[CONN_CMD].addr);
  store_fail(s, why);
}

static void on_load(mgr_store *s, const redisReply *r) {
  for (int i = 0; i < SC_N; i++)
    if (is_str(r) && r->len == 40 && strcmp(r->str, s->sha[i]) == 0) return;
  store_fail(s, "SCRIPT LOAD answered an unknown hash");
}

/* The first snapshot on a connection: the store is up (again). */
static void mark_up(mgr_store *s) {
  store_conn *cmd = &s->conn[CONN_CMD];
  s->link_up = 1;
  s->state = ST_UP;
  s->down_reported = 0;
  nm_backoff_reset(&s->backoff);
  if (s->ever_up) s->st.reconnects++;
  if (s->last_primary[0] && strcmp(s->last_primary, cmd->addr) != 0) s->st.failovers++;
  snprintf(s->primary, sizeof s->primary, "%s", cmd->addr);
  snprintf(s->last_primary, sizeof s->last_primary, "%s", cmd->addr);
  s->ever_up = 1;
  nm_log_info("store: up, primary %s", s->primary);
}

static void on_snapshot_reply(mgr_store *s, const redisReply *r) {
  uint64_t seq;
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || (r->elements - 2) % 4 != 0 ||
      (r->elements - 2) / 4 > MGR_STORE_ENTRIES_MAX || reply_u64(r->element[0], &seq) < 0 ||
      !is_name(r->element[1], STORE_STREAM_ID_MAX - 1, 0)) {
    store_fail(s, "a malformed snapshot");
    return;
  }
  size_t n = (r->elements - 2) / 4, kept = 0;
  mgr_store_entry *e = n ? calloc(n, sizeof *e) : NULL;
  if (n && !e) {
    store_fail(s, "no memory for the snapshot");
    return;
  }
  for (size_t i = 0; i < n; i++) {
    const redisReply *id = r->element[2 + 4 * i], *h = r->element[3 + 4 * i],
                     *d = r->element[4 + 4 * i], *ms = r->element[5 + 4 * i];
    if (!is_name(id, MGR_STORE_ID_MAX, 0) || !is_name(h, MGR_STORE_NAME_MAX, 1) || !is_str(d) ||
        d->len > MGR_STORE_RECORD_MAX || !is_name(ms, MGR_STORE_MESH_SET_MAX, 1)) {
      s->st.errors++;
      nm_log_ratelimited(&s->lograte, NM_LOG_WARN, "store: snapshot entry out of bounds, skipped");
      continue;
    }
    e[kept++] = (mgr_store_entry){id->str, h->str, d->str, d->len, ms->str, ms->len};
  }
  if (!s->link_up) mark_up(s);
  s->snapshot_pending = 0;
  s->last_seq = seq;
  snprintf(s->lastid, sizeof s->lastid, "%s", r->element[1]->str);
  s->st.snapshots++;
  if (s->h.on_snapshot) s->h.on_snapshot(s->ud, seq, e, kept);
  free(e);
  lead_check(s);
  if (!s->closing && s->link_up && !s->snapshot_pending) reader_next(s);
}

/* Every manager's admission facts: {kind, key, value, ...}, each handed to on_admission
 * (from ""). A fact out of bounds is skipped; the hook checks the rest. */
static void on_adm_snapshot_reply(mgr_store *s, const redisReply *r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements % 3 != 0 ||
      r->elements / 3 > MGR_STORE_FACTS_SNAPSHOT_MAX) {
    s->st.errors++;
    nm_log_ratelimited(&s->lograte, NM_LOG_WARN, "store: a malformed admission snapshot");
    return;
  }
  s->st.adm_snapshots++;
  for (size_t i = 0; i < r->elements && !s->closing; i += 3) {
    const redisReply *k = r->element[i], *key = r->element[i + 1], *v = r->element[i + 2];
    if (!is_name(k, 1, 0) || !is_name(key, MGR_STORE_ID_MAX, 0) || !is_name(v, MGR_STORE_FACT_MAX, 1)) {
      s->st.errors++;
      nm_log_ratelimited(&s->lograte, NM_LOG_WARN, "store: admission fact out of bounds, skipped");
      continue;
    }
    if (s->h.on_admission) s->h.on_admission(s->ud, k->str[0], key->str, v->str, v->len, "");
  }
}

/* ---- the stream reader ------------------------------------------------------------------------ */

static void reader_next(mgr_store *s) {
  const char *argv[] = {"XREAD", "BLOCK", "1000", "COUNT", "1024", "STREAMS", s->key[KEY_LOG],
                        s->lastid};
  if (cmd_sendv(&s->conn[CONN_READ], K_XREAD, 8, argv) < 0) store_fail(s, "cannot read the stream");
}

/* One stream entry's fields into c. 0, or -EINVAL when one is missing or out of bounds. */
static int entry_parse(const redisReply *f, mgr_store_change *c) {
  const redisReply *sr = NULL, *o = NULL, *i = NULL, *h = NULL, *d = NULL, *kd = NULL;
  if (f->type != REDIS_REPLY_ARRAY || f->elements % 2 != 0 || f->elements > 32) return -EINVAL;
  for (size_t k = 0; k < f->elements; k += 2) {
    const redisReply *name = f->element[k], *v = f->element[k + 1];
    if (!is_str(name) || name->len != 1 || !is_str(v)) return -EINVAL;
    switch (name->str[0]) {
    case 's': sr = v; break;
    case 'o': o = v; break;
    case 'i': i = v; break;
    case 'h': h = v; break;
    case 'd': d = v; break;
    case 'k': kd = v; break;
    default: break; /* a field of a later version */
    }
  }
  if (!sr || !o || !i || !h || !d || reply_u64(sr, &c->seq) < 0 || o->len != 1 ||
      (o->str[0] != 'u' && o->str[0] != 'l' && o->str[0] != 'c' && o->str[0] != 'a' && o->str[0] != 'n') ||
      !is_name(i, MGR_STORE_ID_MAX, 0) || !is_name(h, MGR_STORE_NAME_MAX, 1) ||
      d->len > MGR_STORE_RECORD_MAX)
    return -EINVAL;
  /* An admission fact: its kind, a value of bounded size. */
  if (o->str[0] == 'a' && (!kd || kd->len != 1 || d->len > MGR_STORE_FACT_MAX)) return -EINVAL;
  c->kind = o->str[0] == 'a' ? kd->str[0] : 0;
  c->op = o->str[0];
  c->id = i->str;
  c->holder = h->str;
  c->data = d->str;
  c->len = d->len;
  return 0;
}

/* 1: delivered or skipped, go on; 0: a gap (a snapshot is asked for), stop here. */
static int entry_deliver(mgr_store *s, const redisReply *e) {
  mgr_store_change c;
  if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
      !is_name(e->element[0], STORE_STREAM_ID_MAX - 1, 0))
    return -1;
  if (entry_parse(e->element[1], &c) < 0) {
    s->st.errors++;
    nm_log_ratelimited(&s->lograte, NM_LOG_WARN, "store: stream entry %s malformed, skipped",
                       e->element[0]->str);
    snprintf(s->lastid, sizeof s->lastid, "%s", e->element[0]->str);
    return 1;
  }
  if (c.op == 'a') { /* an admission fact: not a change of the registry */
    snprintf(s->lastid, sizeof s->lastid, "%s", e->element[0]->str);
    s->st.changes_read++;
    if (s->h.on_admission) s->h.on_admission(s->ud, c.kind, c.id, c.data, c.len, c.holder);
    return 1;
  }
  if (c.op != 'c' && c.op != 'n') {
    if (c.seq != s->last_seq + 1) {
      nm_log_info("store: the stream jumps from %llu to %llu: reading a snapshot",
                  (unsigned long long)s->last_seq, (unsigned long long)c.seq);
      return 0;
    }
    s->last_seq = c.seq;
  }
  snprintf(s->lastid, sizeof s->lastid, "%s", e->element[0]->str);
  s->st.changes_read++;
  if (s->h.on_change) s->h.on_change(s->ud, &c);
  return 1;
}

static void on_xread(mgr_store *s, const redisReply *r) {
  if (r->type == REDIS_REPLY_NIL) { /* BLOCK ran out: nothing new */
    reader_next(s);
    return;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 || r->element[0]->type != REDIS_REPLY_ARRAY ||
      r->element[0]->elements != 2 || r->element[0]->element[1]->type != REDIS_REPLY_ARRAY ||
      r->element[0]->element[1]->elements > STORE_XREAD_COUNT) {
    store_fail(s, "a malformed XREAD reply");
    return;
  }
  const redisReply *entries = r->element[0]->element[1];
  for (size_t i = 0; i < entries->elements; i++) {
    int rc = entry_deliver(s, entries->element[i]);
    if (s->closing || !s->link_up) return; /* a hook closed the store, or it failed */
    if (rc < 0) {
      store_fail(s, "a malformed stream entry");
      return;
    }
    if (rc == 0) {
      if (snapshot_request(s) < 0) store_fail(s, "cannot ask for a snapshot");
      return;
    }
  }
  lead_check(s);
  if (s->closing || !s->link_up) return;
  reader_next(s);
}

/* ---- replies to writes ---------------------------------------------------------------------- */

static int str_list(const redisReply *a, const char **out, size_t max) {
  if (a->type != REDIS_REPLY_ARRAY || a->elements > max) return -EINVAL;
  for (size_t i = 0; i < a->elements; i++) {
    if (!is_name(a->element[i], MGR_STORE_NAME_MAX > MGR_STORE_ID_MAX ? MGR_STORE_NAME_MAX
                                                                      : MGR_STORE_ID_MAX, 0))
      return -EINVAL;
    out[i] = a->element[i]->str;
  }
  return 0;
}

static void on_renew_reply(mgr_store *s, const redisReply *r) {
  const char **missing = NULL, **pairs = NULL, **moved = NULL, **to = NULL;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_ARRAY ||
      r->element[1]->type != REDIS_REPLY_ARRAY || r->element[1]->elements % 2 != 0)
    goto bad;
  size_t nmiss = r->element[0]->elements, nmoved = r->element[1]->elements / 2;
  missing = calloc(nmiss + 1, sizeof *missing);
  pairs = calloc(2 * nmoved + 1, sizeof *pairs);
  moved = calloc(nmoved + 1, sizeof *moved);
  to = calloc(nmoved + 1, sizeof *to);
  if (!missing || !pairs || !moved || !to ||
      str_list(r->element[0], missing, MGR_STORE_RENEW_BATCH) < 0 ||
      str_list(r->element[1], pairs, 2 * MGR_STORE_RENEW_BATCH) < 0)
    goto bad;
  for (size_t i = 0; i < nmoved; i++) {
    moved[i] = pairs[2 * i];
    to[i] = pairs[2 * i + 1];
  }
  s->st.renews++;
  if (s->h.on_renewed) s->h.on_renewed(s->ud, missing, nmiss, moved, to, nmoved);
  goto out;
bad:
  s->st.errors++;
  nm_log_ratelimited(&s->lograte, NM_LOG_WARN, "store: a malformed renew reply");
out:
  free(missing);
  free(pairs);
  free(moved);
  free(to);
}

/* ---- the mesh's lease ----------------------------------------------------------------------- */

/* Stream ids "MS-SEQ" in order: <0, 0, >0 (a malformed one counts as 0-0). */
static int stream_id_cmp(const char *a, const char *b) {
  unsigned long long ams = 0, aseq = 0, bms = 0, bseq = 0;
  if (sscanf(a, "%llu-%llu", &ams, &aseq) != 2) ams = aseq = 0;
  if (sscanf(b, "%llu-%llu", &bms, &bseq) != 2) bms = bseq = 0;
  if (ams != bms) return ams < bms ? -1 : 1;
  return aseq < bseq ? -1 : aseq > bseq;
}

/* The lease's news to on_lead, when it is news. */
static void lead_set(mgr_store *s, const char *leader, int leading) {
  s->lead_waiting = 0;
  if (s->leading == leading && strcmp(s->leader, leader) == 0) return;
  s->leading = leading;
  snprintf(s->leader, sizeof s->leader, "%s", leader);
  if (s->h.on_lead) s->h.on_lead(s->ud, s->leader, leading);
}

/* We took the lease: we lead once the reader has read what the log held then. */
static void lead_check(mgr_store *s) {
  if (s->lead_waiting && !s->closing && stream_id_cmp(s->lastid, s->lead_after) >= 0)
    lead_set(s, s->self, 1);
}

static void on_lead_reply(mgr_store *s, const redisReply *r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !is_name(r->element[0], MGR_STORE_NAME_MAX, 0) ||
      !is_name(r->element[1], STORE_STREAM_ID_MAX - 1, 0)) {
    s->st.errors++;
    nm_log_ratelimited(&s->lograte, NM_LOG_WARN, "store: a malformed lead reply");
    return;
  }
  const char *cur = r->element[0]->str;
  if (strcmp(cur, s->self) != 0) {
    lead_set(s, cur, 0);
    return;
  }
  if (s->leading) return;
  snprintf(s->lead_after, sizeof s->lead_after, "%s", r->element[1]->str);
  s->lead_waiting = 1;
  lead_check(s);
}

static void on_mesh_reply(mgr_store *s, const redisReply *r) {
  s->st.mesh_writes++;
  /* Fenced: the lease is someone else's now (we were stalled past it). The next lead
   * reply says whose. */
  if (r->type == REDIS_REPLY_INTEGER && r->integer == 0 && s->leading) lead_set(s, "", 0);
}

/* "ADDR PORT FP UNIXMS" of one manager. */
static int manager_parse(char *v, uint64_t now, mgr_store_manager *m) {
  char *save = NULL, *addr = strtok_r(v, " ", &save), *port = strtok_r(NULL, " ", &save),
       *fp = strtok_r(NULL, " ", &save), *ms = strtok_r(NULL, " ", &save);
  uint16_t p;
  uint64_t t;
  if (!addr || !port || !fp || !ms || nm_parse_port(port, 0, &p) < 0 ||
      nm_parse_u64(ms, strlen(ms), &t) < 0)
    return -EINVAL;
  m->addr = addr;
  m->port = p;
  m->fp = fp;
  m->age_ms = now > t ? now - t : 0;
  return 0;
}

static void on_announce_reply(mgr_store *s, const redisReply *r) {
  uint64_t now;
  mgr_store_manager m[MGR_STORE_MANAGERS_MAX];
  size_t n = 0;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || reply_u64(r->element[0], &now) < 0 ||
      r->element[1]->type != REDIS_REPLY_ARRAY || r->element[1]->elements % 2 != 0 ||
      r->element[1]->elements > 2 * MGR_STORE_MANAGERS_MAX) {
    s->st.errors++;
    nm_log_ratelimited(&s->lograte, NM_LOG_WARN, "store: a malformed announce reply");
    return;
  }
  const redisReply *a = r->element[1];
  for (size_t i = 0; i < a->elements; i += 2) {
    const redisReply *name = a->element[i], *v = a->element[i + 1];
    /* The value is cut into words in place: the reply is ours until we return. */
    if (!is_name(name, MGR_STORE_NAME_MAX, 0) || !is_name(v, 256, 0) ||
        manager_parse(v->str, now, &m[n]) < 0)
      continue;
    m[n++].name = name->str;
  }
  if (s->h.on_managers) s->h.on_managers(s->ud, m, n);
}

/* ---- the one dispatcher ----------------------------------------------------------------------- */

static void on_error_reply(mgr_store *s, store_cmd *k, const redisReply *r) {
  store_conn *c = k->c;
  if (c->role == CONN_SENTINEL) {
    conn_failed(c, r->str);
    return;
  }
  if (gone_error(r)) {
    conn_failed(c, r->str);
    return;
  }
  if (k->script >= 0 && strncmp(r->str, "NOSCRIPT", 8) == 0) {
    script_resend(s, k);
    return;
  }
  s->st.errors++;
  nm_log_ratelimited(&s->lograte, NM_LOG_WARN, "store: %s: %s",
                     k->script >= 0 ? scripts[k->script].name : k->argv[0], r->str);
  /* Without these the connection is of no use. */
  if (k->kind == K_ROLE || k->kind == K_LOAD || k->kind == K_SNAPSHOT || k->kind == K_XREAD)
    conn_failed(c, r->str);
}

static void on_sentinel_reply(mgr_store *s, const redisReply *r) {
  store_conn *c = &s->conn[CONN_SENTINEL];
  store_addr a;
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && is_name(r->element[0], STORE_IP_MAX - 1, 0) &&
      is_name(r->element[1], 5, 0)) {
    uint16_t port;
    unsigned char bin[16];
    const char *ip = r->element[0]->str;
    if (nm_parse_port(r->element[1]->str, 0, &port) == 0 &&
        (uv_inet_pton(AF_INET, ip, bin) == 0 || uv_inet_pton(AF_INET6, ip, bin) == 0)) {
      snprintf(a.ip, sizeof a.ip, "%s", ip);
      a.port = port;
      conn_drop(c);
      primary_connect(s, a.ip, a.port);
      return;
    }
  }
  conn_failed(c, "no primary known");
}

static void dispatch(mgr_store *s, store_cmd *k, const redisReply *r) {
  switch (k->kind) {
  case K_ROLE: on_role(s, r); break;
  case K_LOAD: on_load(s, r); break;
  case K_SNAPSHOT: on_snapshot_reply(s, r); break;
  case K_XREAD: on_xread(s, r); break;
  case K_SENTINEL: on_sentinel_reply(s, r); break;
  case K_PUT: s->st.puts++; break;
  case K_LEAVE: s->st.leaves++; break;
  case K_RENEW: on_renew_reply(s, r); break;
  case K_REAP: s->st.reaps++; break;
  case K_COMPLAIN: s->st.complaints++; break;
  case K_ANNOUNCE: on_announce_reply(s, r); break;
  case K_ADM_SNAPSHOT: on_adm_snapshot_reply(s, r); break;
  case K_LEAD: on_lead_reply(s, r); break;
  case K_MESH: on_mesh_reply(s, r); break;
  case K_ADMISSION:
    s->st.admissions++;
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) s->st.admissions_new++;
    break;
  default: break;
  }
}

static void cmd_reply(redisAsyncContext *ac, void *reply, void *priv) {
  store_cmd *k = priv;
  store_conn *c = k->c;
  mgr_store *s = c->s;
  const redisReply *r = reply;
  if (s->closing || k->gen != c->gen || c->ac != ac) { /* an older connection's */
    free(k);
    return;
  }
  cmd_unlink(c, k);
  if (r) c->last_reply_ms = now_ms(s);
  if (!r)
    conn_failed(c, "connection lost");
  else if (r->type == REDIS_REPLY_ERROR)
    on_error_reply(s, k, r);
  else
    dispatch(s, k, r);
  free(k);
}

/* ---- the API ------------------------------------------------------------------------------- */

static int scripts_hash(mgr_store *s) {
  for (int i = 0; i < SC_N; i++) {
    unsigned char md[20];
    unsigned int mdlen = 0;
    if (EVP_Digest(scripts[i].body, strlen(scripts[i].body), md, &mdlen, EVP_sha1(), NULL) != 1 ||
        mdlen != sizeof md)
      return -EINVAL;
    for (int j = 0; j < 20; j++) snprintf(&s->sha[i][2 * j], 3, "%02x", md[j]);
  }
  return 0;
}

static void timer_closed(uv_handle_t *h) {
  mgr_store *s = h->data;
  if (--s->timers_open == 0) free(s);
}

int mgr_store_init(mgr_store **out, uv_loop_t *loop, const char *url, const char *overlay,
                   const char *self_name, unsigned ttl_ms, const mgr_store_hooks *h, void *ud) {
  store_url u;
  char err[160];
  if (!out || !loop || !h || !overlay || !self_name || ttl_ms == 0 ||
      !valid_name(overlay, strlen(overlay)) || !valid_name(self_name, strlen(self_name)))
    return -EINVAL;
  if (url_parse(url, &u, err, sizeof err) < 0) {
    nm_log_error("store: %s", err);
    return -EINVAL;
  }
  mgr_store *s = calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  if (scripts_hash(s) < 0) {
    free(s);
    return -EINVAL;
  }
  s->loop = loop;
  s->h = *h;
  s->ud = ud;
  s->url = u;
  for (int i = 0; i < KEY_N; i++)
    snprintf(s->key[i], sizeof s->key[i], "nm:{%s}:%s", overlay, key_suffix[i]);
  snprintf(s->self, sizeof s->self, "%s", self_name);
  snprintf(s->ttl, sizeof s->ttl, "%u", ttl_ms);
  for (int i = 0; i < CONN_N; i++) {
    s->conn[i].s = s;
    s->conn[i].role = i;
  }
  nm_backoff_init(&s->backoff, STORE_BACKOFF_FIRST_MS, STORE_BACKOFF_MAX_MS, 0);
  s->lograte = (nm_log_rate)NM_LOG_RATE_INIT("store errors", 5);
  uv_timer_init(loop, &s->tick);
  uv_timer_init(loop, &s->retry);
  s->tick.data = s->retry.data = s;
  s->timers_open = 2;
  s->state = ST_WAIT;
  uv_timer_start(&s->tick, tick_cb, STORE_TICK_MS, STORE_TICK_MS);
  uv_timer_start(&s->retry, retry_cb, 0, 0); /* the first attempt, from the loop */
  *out = s;
  return 0;
}

void mgr_store_close(mgr_store *s) {
  if (!s || s->closing) return;
  s->closing = 1;
  for (int i = 0; i < CONN_N; i++) conn_drop(&s->conn[i]);
  uv_close((uv_handle_t *)&s->tick, timer_closed);
  uv_close((uv_handle_t *)&s->retry, timer_closed);
}

int mgr_store_is_up(const mgr_store *s) { return s && s->link_up; }

const char *mgr_store_primary(const mgr_store *s) { return s && s->link_up ? s->primary : ""; }

const mgr_store_stats *mgr_store_get_stats(const mgr_store *s) { return &s->st; }

/* Whether `need` more commands may go now: 0, -ENOTCONN or -ENOBUFS. */
static int can_write(const mgr_store *s, size_t need) {
  if (s->closing || !s->link_up || !s->conn[CONN_CMD].ac) return -ENOTCONN;
  if (s->conn[CONN_CMD].inflight + need > MGR_STORE_INFLIGHT_MAX) return -ENOBUFS;
  return 0;
}

static int id_ok(const char *id) { return id && id[0] && strlen(id) <= MGR_STORE_ID_MAX; }

#define STORE_STR_(x) #x
#define STORE_STR(x) STORE_STR_(x)
static const char maxlen_arg[] = STORE_STR(MGR_STORE_LOG_MAXLEN);

int mgr_store_put(mgr_store *s, const char *id, const char *data, size_t len) {
  if (!s || !id_ok(id) || (!data && len) || len > MGR_STORE_RECORD_MAX) return -EINVAL;
  int rc = can_write(s, 1);
  if (rc < 0) return rc;
  const char *args[] = {id, s->self, data ? data : "", s->ttl, maxlen_arg};
  size_t lens[] = {strlen(id), strlen(s->self), len, strlen(s->ttl), strlen(maxlen_arg)};
  return script_send(s, K_PUT, SC_PUT, 5, args, lens);
}

int mgr_store_leave(mgr_store *s, const char *id, const char *reason) {
  if (!s || !id_ok(id) || !reason || strlen(reason) > MGR_STORE_RECORD_MAX) return -EINVAL;
  int rc = can_write(s, 1);
  if (rc < 0) return rc;
  const char *args[] = {id, s->self, reason, maxlen_arg};
  return script_send(s, K_LEAVE, SC_LEAVE, 4, args, NULL);
}

int mgr_store_renew(mgr_store *s, const char *const *ids, size_t n) {
  if (!s || (n && !ids)) return -EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!id_ok(ids[i])) return -EINVAL;
  size_t batches = (n + MGR_STORE_RENEW_BATCH - 1) / MGR_STORE_RENEW_BATCH;
  int rc = can_write(s, batches);
  if (rc < 0 || n == 0) return rc;
  const char **args = malloc((MGR_STORE_RENEW_BATCH + 2) * sizeof *args);
  if (!args) return -ENOMEM;
  args[0] = s->self;
  args[1] = s->ttl;
  for (size_t off = 0; off < n && rc == 0; off += MGR_STORE_RENEW_BATCH) {
    size_t m = n - off < MGR_STORE_RENEW_BATCH ? n - off : MGR_STORE_RENEW_BATCH;
    memcpy(args + 2, ids + off, m * sizeof *args);
    rc = script_send(s, K_RENEW, SC_RENEW, (int)m + 2, args, NULL);
  }
  free(args);
  return rc;
}

int mgr_store_reap(mgr_store *s) {
  if (!s) return -EINVAL;
  int rc = can_write(s, 1);
  if (rc < 0) return rc;
  char limit[16];
  snprintf(limit, sizeof limit, "%d", MGR_STORE_REAP_LIMIT);
  const char *args[] = {limit, maxlen_arg};
  return script_send(s, K_REAP, SC_REAP, 2, args, NULL);
}

int mgr_store_complain(mgr_store *s, const char *accused, const char *holder, const char *reporter) {
  if (!s || !id_ok(accused) || !holder || strlen(holder) > MGR_STORE_NAME_MAX || !id_ok(reporter))
    return -EINVAL;
  int rc = can_write(s, 1);
  if (rc < 0) return rc;
  const char *args[] = {accused, holder, reporter, maxlen_arg};
  return script_send(s, K_COMPLAIN, SC_COMPLAIN, 4, args, NULL);
}

int mgr_store_announce(mgr_store *s, const char *addr, unsigned port, const char *fp) {
  if (!s || !addr || !addr[0] || strlen(addr) > STORE_IP_MAX || strchr(addr, ' ') || !fp ||
      !fp[0] || strlen(fp) > 128 || strchr(fp, ' ') || port == 0 || port > 65535)
    return -EINVAL;
  int rc = can_write(s, 1);
  if (rc < 0) return rc;
  char p[8], max[8];
  snprintf(p, sizeof p, "%u", port);
  snprintf(max, sizeof max, "%d", MGR_STORE_MANAGERS_MAX);
  const char *args[] = {s->self, addr, p, fp, max};
  return script_send(s, K_ANNOUNCE, SC_ANNOUNCE, 5, args, NULL);
}

int mgr_store_admission(mgr_store *s, char kind, const char *key, const char *value) {
  if (!s || (kind != 'i' && kind != 'k' && kind != 'r' && kind != 'v') || !key ||
      !valid_name(key, strlen(key)) || strlen(key) > MGR_STORE_ID_MAX || !value ||
      strlen(value) > MGR_STORE_FACT_MAX)
    return -EINVAL;
  int rc = can_write(s, 1);
  if (rc < 0) return rc;
  char k[2] = {kind, 0}, max[16];
  snprintf(max, sizeof max, "%u", (unsigned)MGR_STORE_FACTS_MAX);
  const char *args[] = {k, key, value, s->self, maxlen_arg, max};
  return script_send(s, K_ADMISSION, SC_ADMISSION, 6, args, NULL);
}

int mgr_store_lead(mgr_store *s) {
  if (!s) return -EINVAL;
  int rc = can_write(s, 1);
  if (rc < 0) return rc;
  const char *args[] = {s->self, s->ttl};
  return script_send(s, K_LEAD, SC_LEAD, 2, args, NULL);
}

const char *mgr_store_leader(const mgr_store *s) { return s ? s->leader : ""; }

int mgr_store_mesh(mgr_store *s, const char *payload, size_t len, int reset) {
  if (!s || !payload || len == 0 || len > MGR_STORE_MESH_CHUNK_MAX || payload[len - 1] != '\n' ||
      memchr(payload, 0, len))
    return -EINVAL;
  if (!s->leading) return -EPERM;
  int rc = can_write(s, 1);
  if (rc < 0) return rc;
  const char *args[] = {s->self, maxlen_arg, payload, reset ? "1" : "0"};
  size_t lens[] = {strlen(s->self), strlen(maxlen_arg), len, 1};
  return script_send(s, K_MESH, SC_MESH, 4, args, lens);
}
