/* A peer's life: start (id, listening, tick, signals, manager link), the periodic tick,
 * and leaving cleanly. Shared by natmesh-servant and natmesh-relay. This is also where the
 * modules are wired together, so that none of them has to know the others' internals. */
#include "servant.h"
#include "nm_error.h"
#include "nm_log.h"
#include "nm_util.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

uint64_t sv_now_ms(servant *sv) { return uv_now(sv->loop); }

#define UV__ERR_FROM_ERRNO() (-errno)

int sv_bind_outgoing(servant *sv, nm_conn *c, const struct sockaddr *dest) {
  if (!sv->bind_outgoing) return 0;
  if (dest && dest->sa_family != sv->local_addr.ss_family) return 0;
  return uv_tcp_bind(&c->tcp, (struct sockaddr *)&sv->local_addr, 0);
}

/* A socket of dest's family bound to port (0: any) with SO_REUSEADDR and SO_REUSEPORT, so
 * that it may share the port with our listening socket (which sets SO_REUSEPORT too, after
 * its own exclusive bind) and with the manager session. With --listen ADDR of that family it
 * is bound to ADDR. Returns the descriptor or a negative code. */
static int sv__shared_port_socket(servant *sv, const struct sockaddr *dest, uint16_t port) {
  int fam = dest->sa_family;
  int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return UV__ERR_FROM_ERRNO();
  int one = 1;
  struct sockaddr_storage local;
  memset(&local, 0, sizeof local);
  if (sv->bind_outgoing && sv->local_addr.ss_family == fam) {
    local = sv->local_addr;
  } else {
    local.ss_family = (sa_family_t)fam;
  }
  if (fam == AF_INET) ((struct sockaddr_in *)&local)->sin_port = htons(port);
  else ((struct sockaddr_in6 *)&local)->sin6_port = htons(port);
  socklen_t len = fam == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
      bind(fd, (struct sockaddr *)&local, len) < 0) {
    int err = UV__ERR_FROM_ERRNO();
    close(fd);
    return err;
  }
  return fd;
}

int sv_connect_from_port(servant *sv, nm_conn *c, const struct sockaddr *dest, uint16_t port, unsigned timeout_ms,
                         nm_conn_connect_cb cb) {
  int fd = sv__shared_port_socket(sv, dest, port);
  if (fd < 0 && port) {
    nm_log_debug("cannot bind an outgoing socket to port %u (%s): leaving from another", port, uv_strerror(fd));
    fd = sv__shared_port_socket(sv, dest, 0);
  }
  if (fd < 0) return fd;
  int rc = uv_tcp_open(&c->tcp, fd);
  if (rc < 0) {
    close(fd);
    return rc;
  }
  rc = nm_conn_connect(c, dest, timeout_ms, cb);
  if ((rc == UV_EADDRNOTAVAIL || rc == UV_EADDRINUSE) && port) {
    /* That 4-tuple is still taken (our side of the last connection to the same address waits
     * in TIME_WAIT): leave from another port this time. The handle keeps its descriptor
     * number; the socket behind it is replaced before libuv ever watched it. */
    int fd2 = sv__shared_port_socket(sv, dest, 0);
    if (fd2 < 0) return fd2;
    if (dup2(fd2, fd) < 0) rc = UV__ERR_FROM_ERRNO();
    else rc = nm_conn_connect(c, dest, timeout_ms, cb);
    close(fd2);
  }
  return rc;
}

size_t sv_local_addresses(char (*out)[NM_IP_STRLEN], size_t max) {
  uv_interface_address_t *ifs = NULL;
  int count = 0;
  if (uv_interface_addresses(&ifs, &count) < 0) return 0;
  /* Interface order within each family (the system lists the main interface first), then
   * the families alternate so that a full list still holds both. */
  char v6[NM_LOCAL_ADDRS_MAX][NM_IP_STRLEN], v4[NM_LOCAL_ADDRS_MAX][NM_IP_STRLEN];
  size_t n6 = 0, n4 = 0;
  for (int i = 0; i < count; i++) {
    char ip[NM_IP_STRLEN];
    uint16_t port;
    if (ifs[i].is_internal || nm_addr_from_sockaddr((struct sockaddr *)&ifs[i].address, ip, sizeof ip, &port) < 0 ||
        !nm_addr_is_candidate(ip))
      continue;
    int is6 = nm_addr_family(ip) == AF_INET6;
    char (*list)[NM_IP_STRLEN] = is6 ? v6 : v4;
    size_t *n = is6 ? &n6 : &n4, k;
    for (k = 0; k < *n && !nm_addr_equal(list[k], ip); k++) {}
    if (k < *n || *n == NM_LOCAL_ADDRS_MAX) continue;
    memcpy(list[(*n)++], ip, NM_IP_STRLEN);
  }
  uv_free_interface_addresses(ifs, count);
  size_t n = 0, i6 = 0, i4 = 0;
  while (n < max && (i6 < n6 || i4 < n4)) {
    if (i6 < n6) memcpy(out[n++], v6[i6++], NM_IP_STRLEN);
    if (n < max && i4 < n4) memcpy(out[n++], v4[i4++], NM_IP_STRLEN);
  }
  return n;
}

/* The rate-limited log lines' summaries ("... 1529 more suppressed") come out even when
 * the flood that caused them has stopped. */
static void sv__flush_logs(servant *sv) {
  nm_log_rate *rates[] = {&sv->chat.forged_log,       &sv->chat.unlisted_log,   &sv->chat.banned_log,
                          &sv->chat.refused_log,      &sv->inbound.refused_log, &sv->inbound.conn_log,
                          &sv->peers.wrong_key_log,   &sv->pull.wrong_key_log,  &sv->pull.standby_log,
                          &sv->peers.full_log};
  for (size_t i = 0; i < sizeof rates / sizeof *rates; i++)
    if (rates[i]->kind) nm_log_rate_flush(rates[i]);
}

/* systemd (nm_notify): READY=1 the first time we are registered; then the status, sent
 * when it changes (at most once a second). */
static void sv__notify(servant *sv) {
  if (!nm_notify_enabled(&sv->notify)) return;
  int registered = sv_manager_registered(sv);
  if (registered) nm_notify_ready(&sv->notify);
  const rl_duty *d = &sv->relay;
  if (sv->cfg.role == NM_ROLE_RELAY)
    nm_notify_status(&sv->notify, "%s; %zu peers; %zu of %u clients assigned (%zu attached), %llu B in, %llu B out, %llu dropped",
                     registered ? "registered" : "not registered", sv_peers_count(sv), rl_nassigned(d),
                     d->limits.max_clients, rl_nattached(d), (unsigned long long)d->bytes_in,
                     (unsigned long long)d->bytes_out, (unsigned long long)d->drops);
  else
    nm_notify_status(&sv->notify, "%s as %s; %zu peers; %s; relaying for %zu", registered ? "registered" : "not registered",
                     sv->cfg.name, sv_peers_count(sv), nm_reach_name(sv_manager_reach(sv)), rl_nassigned(d));
}

static void sv__tick(uv_timer_t *t) {
  servant *sv = t->data;
  sv_peers_tick(sv);
  sv_chat_tick(sv);
  sv_inbound_tick(sv);
  sv_pull_tick(sv);
  rl_tick(&sv->relay);
  sv__flush_logs(sv);
  sv__notify(sv);
}

static void sv__on_signal(uv_signal_t *s, int signum) {
  sv_leave(s->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* The upward reports: the peer table and the port mapper tell the manager link. */
static void sv__on_unreachable(servant *sv, const sv_peer *p, nm_complaint_reason why) {
  sv_manager_complain(sv, p->info.id, why);
}

static void sv__on_mapping(servant *sv, const nm_msg_mapping *m) { sv_manager_report_mapping(sv, m); }

/* The state directory, our key (created on first start), the id it gives, the TLS context,
 * and the next chat epoch. */
static int sv__load_identity(servant *sv) {
  sv_config *cfg = &sv->cfg;
  char err[512];
  int rc = 0;
  if (cfg->state_dir[0])
    snprintf(sv->state_dir, sizeof sv->state_dir, "%s", cfg->state_dir);
  else
    rc = nm_identity_default_dir(sv->state_dir, sizeof sv->state_dir, nm_role_name(cfg->role));
  if (rc < 0) {
    nm_log_error("no state directory: %s; pass --state-dir DIR", rc == -ENOENT ? "no home directory" : strerror(-rc));
    return rc;
  }
  rc = nm_identity_load_or_create(sv->state_dir, &sv->identity, err, sizeof err);
  if (rc < 0) {
    nm_log_error("%s", err);
    return rc;
  }
  snprintf(sv->id, sizeof sv->id, "%s", nm_identity_id(&sv->identity));
  rc = sv_epoch_next(sv->state_dir, &sv->epoch, err, sizeof err);
  if (rc == 0) rc = nm_tls_ctx_init(&sv->tls, &sv->identity, err, sizeof err);
  if (rc < 0) {
    nm_log_error("%s", err);
    nm_tls_ctx_close(&sv->tls);
    nm_identity_close(&sv->identity);
    return rc;
  }
  nm_log_info("key %s (state directory %s), chat epoch %llu", nm_identity_fingerprint(&sv->identity)->hex,
              sv->state_dir, (unsigned long long)sv->epoch);
  return 0;
}

int sv_start(servant *sv, uv_loop_t *loop) {
  sv_config *cfg = &sv->cfg;
  sv->loop = loop;
  struct sockaddr_storage probe;
  if (nm_addr_to_sockaddr(cfg->listen, 0, &probe) < 0) {
    nm_log_error("listen address \"%s\" is not an IP address", cfg->listen);
    return -EINVAL;
  }
  int rc = sv__load_identity(sv);
  if (rc < 0) return rc;
  if (sv_chat_init(sv) < 0 || sv_inbound_init(sv) < 0) {
    nm_log_error("out of memory");
    return -ENOMEM;
  }
  sv_peers_init(sv);
  rl_limits limits = {.max_clients = cfg->max_clients,
                      .client_rate_bps = cfg->client_rate_bps,
                      .total_rate_bps = cfg->total_rate_bps,
                      .dedicated = cfg->role == NM_ROLE_RELAY};
  rl_init(&sv->relay, loop, sv->id, &limits);
  sv->peers.on_unreachable = sv__on_unreachable;
  sv->portmap.on_report = sv__on_mapping;
  sv->has_name_bans = nm_banlist_has_names(&cfg->bans);
  /* With a specific listen address, outgoing connections leave from it too, so the
   * manager and peers see the address this servant listens on. */
  if (!nm_addr_equal(cfg->listen, "0.0.0.0") && !nm_addr_equal(cfg->listen, "::")) {
    sv->local_addr = probe;
    sv->bind_outgoing = 1;
  }
  if (cfg->port) {
    rc = sv_listen(sv, (uint16_t)cfg->port);
    if (rc < 0) {
      char a[NM_ADDR_STRLEN];
      nm_log_error("cannot listen on %s: %s", nm_addr_str(cfg->listen, (uint16_t)cfg->port, a), uv_strerror(rc));
      return rc;
    }
  }
  char ma[NM_ADDR_STRLEN + 200];
  nm_log_info("%s %s (%s) starting; manager %s, key %s", nm_role_name(cfg->role), cfg->name, sv->id,
              sv_manager_address(sv, ma, sizeof ma), sv_manager_fp(sv)->hex);
  /* The others, tried in this order when the one we are with fails (manager_link.c). */
  for (size_t i = 1; i < cfg->join.nmanagers; i++) {
    const sv_join_manager *m = &cfg->join.managers[i];
    nm_log_info("other manager %s%s%s:%u, key %s", strchr(m->host, ':') ? "[" : "", m->host,
                strchr(m->host, ':') ? "]" : "", m->port, m->fp.hex);
  }
  signal(SIGPIPE, SIG_IGN);
  uv_timer_init(loop, &sv->tick);
  sv->tick.data = sv;
  uv_timer_start(&sv->tick, sv__tick, 250, 250);
  uv_signal_init(loop, &sv->sigint);
  uv_signal_init(loop, &sv->sigterm);
  sv->sigint.data = sv->sigterm.data = sv;
  uv_signal_start(&sv->sigint, sv__on_signal, SIGINT);
  uv_signal_start(&sv->sigterm, sv__on_signal, SIGTERM);
  if (nm_notify_init(&sv->notify, loop) < 0) nm_log_warn("systemd watchdog: cannot start its timer");
  sv_manager_start(sv);
  return 0;
}

void sv_fail(servant *sv, const char *why) {
  sv->exit_code = 1;
  sv_leave(sv, why);
}

void sv_release(servant *sv) {
  sv_join_clear(&sv->cfg.join);
  sv_chat_close(sv);
  nm_addrlimit_close(&sv->inbound.unauth);
  nm_tls_ctx_close(&sv->tls);
  nm_identity_close(&sv->identity);
}

void sv_leave(servant *sv, const char *why) {
  if (sv->stopping) return;
  sv->stopping = 1;
  nm_log_info("leaving (%s)", why);
  nm_notify_stopping(&sv->notify);
  sv_manager_stop(sv);
  sv_pull_close(sv);
  rl_close(&sv->relay);
  sv_peers_close_all(sv);
  sv_inbound_close(sv);
  uv_close((uv_handle_t *)&sv->tick, NULL);
  uv_close((uv_handle_t *)&sv->sigint, NULL);
  uv_close((uv_handle_t *)&sv->sigterm, NULL);
  sv_console_close(sv);
  sv_portmap_close(sv);
}
