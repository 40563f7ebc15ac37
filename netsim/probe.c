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
  uint32_t ip;
  uint16_t port;
  long timeout_ms;
};

/* Child side (inside the namespace): prints "ok <reply>", "refused", "timeout" or
 * "error <text>" on stdout for the parent. */
static int nsim__tcp_child(void *arg) {
  struct nsim__tcp_job *j = arg;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return printf("error socket: %s\n", strerror(errno)), 0;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(j->port),
                           .sin_addr.s_addr = htonl(j->ip)};
  long deadline = nsim_now_ms() + j->timeout_ms;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
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

int nsim_probe_tcp(struct nsim_run *r, int node, uint32_t ip, uint16_t port, long timeout_ms,
                   enum nsim_tcp_outcome *outcome, char *reply, size_t replylen, char *detail,
                   size_t detaillen) {
  struct nsim__tcp_job j = {ip, port, timeout_ms};
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
  const uint32_t *ips;
  const uint16_t *ports;
  int n;
  long timeout_ms;
};

/* Child side: one socket, so the NAT sees one inner endpoint talking to n destinations.
 * Prints one line per server: "i ip:port" as reported by that server. */
static int nsim__udp_child(void *arg) {
  struct nsim__udp_job *j = arg;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return 1;
  struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons(j->local_port)};
  if (bind(fd, (struct sockaddr *)&me, sizeof me) < 0) return printf("error bind: %s\n", strerror(errno)), 1;
  int done[NSIM_UDP_MAX_SERVERS] = {0}, left = j->n;
  long deadline = nsim_now_ms() + j->timeout_ms, next_send = 0;
  while (left > 0 && nsim_now_ms() < deadline) {
    if (nsim_now_ms() >= next_send) {
      /* UDP may be lost (link loss, ARP warming up): resend until each one answered. */
      for (int i = 0; i < j->n; i++) {
        if (done[i]) continue;
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(j->ports[i]),
                                 .sin_addr.s_addr = htonl(j->ips[i])};
        sendto(fd, "probe\n", 6, 0, (struct sockaddr *)&to, sizeof to);
      }
      next_send = nsim_now_ms() + 200;
    }
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    char buf[128];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &fl);
    if (n <= 0) continue;
    buf[n] = 0;
    char *saw = strstr(buf, " saw ");
    for (int i = 0; saw && i < j->n; i++) {
      if (done[i] || ntohl(from.sin_addr.s_addr) != j->ips[i] || ntohs(from.sin_port) != j->ports[i])
        continue;
      char obs[32] = "";
      sscanf(saw + 5, "%31s", obs);
      printf("%d %s\n", i, obs);
      done[i] = 1;
      left--;
    }
  }
  close(fd);
  return 0;
}

int nsim_probe_udp(struct nsim_run *r, int node, uint16_t local_port, const uint32_t *ips,
                   const uint16_t *ports, int n, long timeout_ms, char observed[][32]) {
  if (n > NSIM_UDP_MAX_SERVERS) return -E2BIG;
  struct nsim__udp_job j = {local_port, ips, ports, n, timeout_ms};
  char out[1024] = "";
  for (int i = 0; i < n; i++) observed[i][0] = 0;
  int rc = nsim_ns_call(nsim_run_ns(r, node), nsim__udp_child, &j, timeout_ms + 3000, out, sizeof out);
  if (rc != 0) return rc < 0 ? rc : -EIO;
  char *save = NULL;
  for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    int i;
    char obs[32];
    if (sscanf(l, "%d %31s", &i, obs) == 2 && i >= 0 && i < n)
      snprintf(observed[i], 32, "%s", obs);
  }
  return 0;
}

/* ---- echo server ----------------------------------------------------------------------- */

static volatile sig_atomic_t nsim__echo_stop;
static void nsim__echo_sig(int s) { (void)s, nsim__echo_stop = 1; }

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
  struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  int one = 1;
  int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (u < 0 || t < 0) return perror("echo-server: socket"), 1;
  setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(u, (struct sockaddr *)&me, sizeof me) < 0 || bind(t, (struct sockaddr *)&me, sizeof me) < 0 ||
      listen(t, 16) < 0)
    return perror("echo-server: bind"), 1;
  printf("echo-server %s listening on port %ld (tcp and udp)\n", name, port);
  while (!nsim__echo_stop) {
    struct pollfd p[2] = {{u, POLLIN, 0}, {t, POLLIN, 0}};
    if (poll(p, 2, 500) <= 0) continue;
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    char ip[16], msg[96], buf[512];
    if (p[0].revents & POLLIN) {
      ssize_t n = recvfrom(u, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
      if (n >= 0) {
        inet_ntop(AF_INET, &from.sin_addr, ip, sizeof ip);
        int ml = snprintf(msg, sizeof msg, "%s saw %s:%u\n", name, ip, ntohs(from.sin_port));
        sendto(u, msg, (size_t)ml, 0, (struct sockaddr *)&from, fl);
        printf("udp from %s:%u\n", ip, ntohs(from.sin_port));
      }
    }
    if (p[1].revents & POLLIN) {
      fl = sizeof from;
      int c = accept4(t, (struct sockaddr *)&from, &fl, SOCK_CLOEXEC);
      if (c >= 0) {
        inet_ntop(AF_INET, &from.sin_addr, ip, sizeof ip);
        int ml = snprintf(msg, sizeof msg, "%s saw %s:%u\n", name, ip, ntohs(from.sin_port));
        if (write(c, msg, (size_t)ml) != ml) {
          /* the peer went away; the log line below still records the attempt */
        }
        printf("tcp from %s:%u\n", ip, ntohs(from.sin_port));
        close(c);
      }
    }
  }
  printf("echo-server %s stopping\n", name);
  return 0;
}
