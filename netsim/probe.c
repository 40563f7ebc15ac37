#include "probe.h"
#include "nsops.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct nsim__tcp_job {
  struct nsim_endpoint to;
  long timeout_ms;
  uint16_t local_port;
};

/* ep as a sockaddr; as_v6 turns an IPv4 endpoint into its v4-mapped IPv6 form (for a
 * dual-stack socket). Returns the length. */
static socklen_t nsim__sockaddr(const struct nsim_endpoint *ep, int as_v6,
                                struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (ep->family == AF_INET6 || as_v6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(ep->port);
    if (ep->family == AF_INET6) {
      memcpy(&s6->sin6_addr, ep->ip6, 16);
    } else {
      uint32_t v4 = htonl(ep->ip4);
      s6->sin6_addr.s6_addr[10] = s6->sin6_addr.s6_addr[11] = 0xff;
      memcpy(&s6->sin6_addr.s6_addr[12], &v4, 4);
    }
    return sizeof *s6;
  }
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  s4->sin_family = AF_INET;
  s4->sin_port = htons(ep->port);
  s4->sin_addr.s_addr = htonl(ep->ip4);
  return sizeof *s4;
}

/* A peer's address as text: "[V6]:PORT", or "A.B.C.D:PORT" for IPv4 and v4-mapped IPv6. */
static void nsim__peer_str(const struct sockaddr_storage *ss, char *out, size_t len) {
  char a[INET6_ADDRSTRLEN];
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
      inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], a, sizeof a);
      snprintf(out, len, "%s:%u", a, ntohs(s6->sin6_port));
    } else {
      inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof a);
      snprintf(out, len, "[%s]:%u", a, ntohs(s6->sin6_port));
    }
  } else {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &s4->sin_addr, a, sizeof a);
    snprintf(out, len, "%s:%u", a, ntohs(s4->sin_port));
  }
}

/* The endpoint a received address stands for (v4-mapped IPv6 is IPv4). */
static void nsim__from_sockaddr(const struct sockaddr_storage *ss, struct nsim_endpoint *ep) {
  char s[INET6_ADDRSTRLEN + 16];
  nsim__peer_str(ss, s, sizeof s);
  if (nsim_endpoint_parse(s, ep) < 0) memset(ep, 0, sizeof *ep);
}

/* Child side (inside the namespace): prints "ok <reply>", "refused", "timeout" or
 * "error <text>" on stdout for the parent. */
static int nsim__tcp_child(void *arg) {
  struct nsim__tcp_job *j = arg;
  int fd = socket(j->to.family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return printf("error socket: %s\n", strerror(errno)), 0;
  struct sockaddr_storage sa;
  socklen_t sl_to = nsim__sockaddr(&j->to, 0, &sa);
  if (j->local_port) {
    /* From a given port, which a listener (the echo server, with SO_REUSEPORT) may hold:
     * what a program that dials from its listening port does (hole punching). */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct nsim_endpoint any = {.family = j->to.family, .port = j->local_port};
    struct sockaddr_storage me;
    socklen_t ml = nsim__sockaddr(&any, 0, &me);
    if (bind(fd, (struct sockaddr *)&me, ml) < 0)
      return printf("error bind port %u: %s\n", j->local_port, strerror(errno)), 0;
  }
  long deadline = nsim_now_ms() + j->timeout_ms;
  if (connect(fd, (struct sockaddr *)&sa, sl_to) < 0 && errno != EINPROGRESS) {
    if (errno == ECONNREFUSED) printf("refused\n");
    else printf("error connect: %s\n", strerror(errno));
    return 0;
  }
  struct pollfd p = {fd, POLLOUT, 0};
  int pr = poll(&p, 1, (int)(deadline - nsim_now_ms() > 0 ? deadline - nsim_now_ms() : 0));
  if (pr == 0) return printf("timeout\n"), 0;
  int soerr = 0;
  socklen_t sl = sizeof soerr;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
  if (soerr == ECONNREFUSED) return printf("refused\n"), 0;
  if (soerr == ETIMEDOUT || soerr == EHOSTUNREACH || soerr == ENETUNREACH)
    return printf("error %s\n", strerror(soerr)), 0;
  if (soerr) return printf("error %s\n", strerror(soerr)), 0;
  /* Connected. Give the peer a short while to greet us (the echo server does at once). */
  char buf[256];
  size_t used = 0;
  long greet_deadline = nsim_now_ms() + (j->timeout_ms < 1000 ? j->timeout_ms : 1000);
  while (used + 1 < sizeof buf && !memchr(buf, '\n', used)) {
    long left = greet_deadline - nsim_now_ms();
    if (left <= 0) break;
    struct pollfd q = {fd, POLLIN, 0};
    if (poll(&q, 1, (int)left) <= 0) break;
    ssize_t n = read(fd, buf + used, sizeof buf - 1 - used);
    if (n <= 0) break;
    used += (size_t)n;
  }
  buf[used] = 0;
  buf[strcspn(buf, "\r\n")] = 0;
  printf("ok %s\n", buf);
  close(fd);
  return 0;
}

int nsim_probe_tcp(struct nsim_run *r, int node, const struct nsim_endpoint *to,
                   uint16_t local_port, long timeout_ms, enum nsim_tcp_outcome *outcome,
                   char *reply, size_t replylen, char *detail, size_t detaillen) {
  struct nsim__tcp_job j = {*to, timeout_ms, local_port};
  char out[512] = "";
  int rc = nsim_ns_call(nsim_run_ns(r, node), nsim__tcp_child, &j, timeout_ms + 3000, out, sizeof out);
  out[strcspn(out, "\n")] = 0;
  reply[0] = 0;
  if (rc != 0) {
    *outcome = NSIM_TCP_GOT_ERROR;
    snprintf(detail, detaillen, "probe failed (%d)", rc);
    return rc < 0 ? rc : -EIO;
  }
  if (!strncmp(out, "ok", 2)) {
    *outcome = NSIM_TCP_OK;
    snprintf(reply, replylen, "%s", out[2] ? out + 3 : "");
    snprintf(detail, detaillen, "connected%s%s%s", reply[0] ? ", peer said \"" : "", reply,
             reply[0] ? "\"" : "");
  } else if (!strcmp(out, "refused")) {
    *outcome = NSIM_TCP_GOT_REFUSED;
    snprintf(detail, detaillen, "connection refused");
  } else if (!strcmp(out, "timeout")) {
    *outcome = NSIM_TCP_GOT_TIMEOUT;
    snprintf(detail, detaillen, "no answer within %ldms", timeout_ms);
  } else {
    *outcome = NSIM_TCP_GOT_ERROR;
    snprintf(detail, detaillen, "%s", out[0] ? out : "probe said nothing");
  }
  return 0;
}

struct nsim__udp_job {
  uint16_t local_port;
  const struct nsim_endpoint *servers;
  int n;
  long timeout_ms;
};

/* Child side: one socket, so the NAT sees one inner endpoint talking to n destinations.
 * Prints one line per server: "i ip:port" as reported by that server. */
static int nsim__udp_child(void *arg) {
  struct nsim__udp_job *j = arg;
  int v6 = 0;
  for (int i = 0; i < j->n; i++) v6 |= j->servers[i].family == AF_INET6;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return 1;
  int off = 0;
  if (v6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  struct nsim_endpoint any = {.family = v6 ? AF_INET6 : AF_INET, .port = j->local_port};
  struct sockaddr_storage me;
  socklen_t ml = nsim__sockaddr(&any, v6, &me);
  if (v6) memset(&((struct sockaddr_in6 *)&me)->sin6_addr, 0, 16); /* ::, not ::ffff:0.0.0.0 */
  if (bind(fd, (struct sockaddr *)&me, ml) < 0) return printf("error bind: %s\n", strerror(errno)), 1;
  int done[NSIM_UDP_MAX_SERVERS] = {0}, left = j->n;
  long deadline = nsim_now_ms() + j->timeout_ms, next_send = 0;
  while (left > 0 && nsim_now_ms() < deadline) {
    if (nsim_now_ms() >= next_send) {
      /* UDP may be lost (link loss, ARP warming up): resend until each one answered. */
      for (int i = 0; i < j->n; i++) {
        if (done[i]) continue;
        struct sockaddr_storage to;
        socklen_t tl = nsim__sockaddr(&j->servers[i], v6, &to);
        sendto(fd, "probe\n", 6, 0, (struct sockaddr *)&to, tl);
      }
      next_send = nsim_now_ms() + 200;
    }
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    char buf[160];
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &fl);
    if (n <= 0) continue;
    buf[n] = 0;
    char *saw = strstr(buf, " saw ");
    struct nsim_endpoint got;
    nsim__from_sockaddr(&from, &got);
    for (int i = 0; saw && i < j->n; i++) {
      if (done[i] || !nsim_addr_equal(&got, &j->servers[i]) || got.port != j->servers[i].port)
        continue;
      char obs[NSIM_UDP_OBSERVED_LEN] = "";
      sscanf(saw + 5, "%63s", obs);
      printf("%d %s\n", i, obs);
      done[i] = 1;
      left--;
    }
  }
  close(fd);
  return 0;
}

int nsim_probe_udp(struct nsim_run *r, int node, uint16_t local_port,
                   const struct nsim_endpoint *servers, int n, long timeout_ms,
                   char observed[][NSIM_UDP_OBSERVED_LEN]) {
  if (n > NSIM_UDP_MAX_SERVERS) return -E2BIG;
  struct nsim__udp_job j = {local_port, servers, n, timeout_ms};
  char out[1024] = "";
  for (int i = 0; i < n; i++) observed[i][0] = 0;
  int rc = nsim_ns_call(nsim_run_ns(r, node), nsim__udp_child, &j, timeout_ms + 3000, out, sizeof out);
  if (rc != 0) return rc < 0 ? rc : -EIO;
  char *save = NULL;
  for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    int i;
    char obs[NSIM_UDP_OBSERVED_LEN];
    if (sscanf(l, "%d %63s", &i, obs) == 2 && i >= 0 && i < n)
      snprintf(observed[i], NSIM_UDP_OBSERVED_LEN, "%s", obs);
  }
  return 0;
}

/* ---- echo server ----------------------------------------------------------------------- */

static volatile sig_atomic_t nsim__echo_stop;
static void nsim__echo_sig(int s) { (void)s, nsim__echo_stop = 1; }

/* One UDP and one TCP socket on port: dual-stack IPv6 (::, IPV6_V6ONLY off) so IPv4 peers
 * arrive v4-mapped, or plain IPv4 on 0.0.0.0 where the host has no IPv6 at all. */
static int nsim__echo_sockets(uint16_t port, int *u, int *t, int *family) {
  static const int families[] = {AF_INET6, AF_INET};
  for (size_t f = 0; f < NSIM_ARRAY_LEN(families); f++) {
    struct nsim_endpoint any = {.family = families[f], .port = port};
    struct sockaddr_storage me;
    socklen_t ml = nsim__sockaddr(&any, 0, &me);
    int one = 1, off = 0;
    *u = socket(families[f], SOCK_DGRAM | SOCK_CLOEXEC, 0);
    *t = socket(families[f], SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*u >= 0 && *t >= 0) {
      setsockopt(*t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      /* So that a probe can dial out from the port it listens on (expect-tcp local-port). */
      setsockopt(*t, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
      if (families[f] == AF_INET6) {
        setsockopt(*u, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
        setsockopt(*t, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
      }
      if (bind(*u, (struct sockaddr *)&me, ml) == 0 && bind(*t, (struct sockaddr *)&me, ml) == 0 &&
          listen(*t, 16) == 0)
        return *family = families[f], 0;
    }
    int e = errno;
    if (*u >= 0) close(*u);
    if (*t >= 0) close(*t);
    errno = e;
  }
  return -1;
}

int nsim_echo_server_main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: natmesh-netsim echo-server PORT [NAME]\n");
    return 2;
  }
  char *end;
  long port = strtol(argv[1], &end, 10);
  if (*end || port < 1 || port > 65535) {
    fprintf(stderr, "echo-server: bad port %s\n", argv[1]);
    return 2;
  }
  const char *name = argc > 2 ? argv[2] : "echo";
  struct sigaction sa = {.sa_handler = nsim__echo_sig};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, NULL, _IOLBF, 0);
  int u, t, family;
  if (nsim__echo_sockets((uint16_t)port, &u, &t, &family) < 0) return perror("echo-server: bind"), 1;
  printf("echo-server %s listening on port %ld (tcp and udp, %s)\n", name, port,
         family == AF_INET6 ? "IPv6 and IPv4" : "IPv4 only");
  while (!nsim__echo_stop) {
    struct pollfd p[2] = {{u, POLLIN, 0}, {t, POLLIN, 0}};
    if (poll(p, 2, 500) <= 0) continue;
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    char peer[INET6_ADDRSTRLEN + 16], msg[160], buf[512];
    if (p[0].revents & POLLIN) {
      ssize_t n = recvfrom(u, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
      if (n >= 0) {
        nsim__peer_str(&from, peer, sizeof peer);
        int ml = snprintf(msg, sizeof msg, "%s saw %s\n", name, peer);
        sendto(u, msg, (size_t)ml, 0, (struct sockaddr *)&from, fl);
        printf("udp from %s\n", peer);
      }
    }
    if (p[1].revents & POLLIN) {
      fl = sizeof from;
      int c = accept4(t, (struct sockaddr *)&from, &fl, SOCK_CLOEXEC);
      if (c >= 0) {
        nsim__peer_str(&from, peer, sizeof peer);
        int ml = snprintf(msg, sizeof msg, "%s saw %s\n", name, peer);
        if (write(c, msg, (size_t)ml) != ml) {
          /* the peer went away; the log line below still records the attempt */
        }
        printf("tcp from %s\n", peer);
        close(c);
      }
    }
  }
  printf("echo-server %s stopping\n", name);
  return 0;
}
