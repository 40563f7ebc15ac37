#include "sockreset.h"
#include "nsops.h"
#include "util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NSIM__MAX_CONNS 16

/* Every state that has a connection behind it (not listening, not time-wait). */
#define NSIM__STATES (0xfffu & ~((1u << 10) | (1u << 6) | (1u << 7) | (1u << 12)))

static const char *nsim__tcp_state(unsigned s) {
  static const char *const names[] = {"?", "established", "syn-sent", "syn-recv", "fin-wait-1",
                                      "fin-wait-2", "time-wait", "close", "close-wait",
                                      "last-ack", "listen", "closing", "new-syn-recv"};
  return s < NSIM_ARRAY_LEN(names) ? names[s] : "?";
}

struct nsim__reset_job {
  pid_t pgid;     /* the process group netsim gave the process (its pid) */
  struct nsim_endpoint to;
  int destroy;    /* 0: list the connections, 1: destroy them */
};

/* Inodes of the sockets that processes of process group pgid hold. */
static size_t nsim__group_sockets(pid_t pgid, unsigned long *inodes, size_t cap) {
  size_t n = 0;
  DIR *d = opendir("/proc");
  if (!d) return 0;
  for (struct dirent *e; (e = readdir(d));) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end || pid <= 0) continue;
    char path[64], stat[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    size_t got = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[got] = 0;
    /* "pid (comm) state ppid pgrp ...": comm may hold anything, so start after the last ')' */
    char *rp = strrchr(stat, ')');
    char state;
    int ppid, pgrp;
    if (!rp || sscanf(rp + 1, " %c %d %d", &state, &ppid, &pgrp) != 3 || pgrp != pgid) continue;
    snprintf(path, sizeof path, "/proc/%ld/fd", pid);
    DIR *fds = opendir(path);
    if (!fds) continue;
    for (struct dirent *fe; (fe = readdir(fds));) {
      char link[96], target[64];
      if (fe->d_name[0] == '.') continue;
      snprintf(link, sizeof link, "/proc/%ld/fd/%s", pid, fe->d_name);
      ssize_t tl = readlink(link, target, sizeof target - 1);
      if (tl <= 0) continue;
      target[tl] = 0;
      unsigned long ino;
      if (sscanf(target, "socket:[%lu]", &ino) == 1 && n < cap) inodes[n++] = ino;
    }
    closedir(fds);
  }
  closedir(d);
  return n;
}

/* Opens a sock_diag socket and sends one inet_diag request for TCP over family (AF_INET or
 * AF_INET6): a dump of the sockets in `states` (id NULL), or an operation on the one socket
 * id names. Returns the socket for the answer, or -errno. */
static int nsim__diag_request(uint8_t family, uint16_t type, uint16_t flags, uint32_t seq,
                              uint32_t states, const struct inet_diag_sockid *id) {
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return -errno;
  struct {
    struct nlmsghdr nlh;
    struct inet_diag_req_v2 req;
  } q;
  memset(&q, 0, sizeof q);
  q.nlh.nlmsg_len = sizeof q;
  q.nlh.nlmsg_type = type;
  q.nlh.nlmsg_flags = flags;
  q.nlh.nlmsg_seq = seq;
  q.req.sdiag_family = family;
  q.req.sdiag_protocol = IPPROTO_TCP;
  q.req.idiag_states = states;
  if (id) q.req.id = *id;
  if (send(fd, &q, sizeof q, 0) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

/* A socket's address from inet_diag (family AF_INET: the first word; AF_INET6: 16 bytes,
 * which may be v4-mapped when a dual-stack socket talks IPv4). */
static void nsim__diag_addr(uint8_t family, const __be32 *a, __be16 port, struct nsim_endpoint *ep) {
  memset(ep, 0, sizeof *ep);
  ep->port = ntohs(port);
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (family == AF_INET6 && memcmp(a, mapped, 12)) {
    ep->family = AF_INET6;
    memcpy(ep->ip6, a, 16);
    return;
  }
  ep->family = AF_INET;
  ep->ip4 = ntohl(family == AF_INET6 ? a[3] : a[0]);
}

/* Dumps the namespace's TCP connections of one family and keeps those to job's address whose
 * socket is one of inodes, appending to found. Returns how many in all, or -errno. */
static int nsim__dump(uint8_t family, const struct nsim__reset_job *job,
                      const unsigned long *inodes, size_t ninodes, struct inet_diag_msg *found,
                      int n, int cap) {
  int fd = nsim__diag_request(family, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1,
                              NSIM__STATES, NULL);
  if (fd < 0) return fd;
  int done = 0, rc = 0;
  static char buf[32768] __attribute__((aligned(NLMSG_ALIGNTO)));
  while (!done) {
    ssize_t len = recv(fd, buf, sizeof buf, 0);
    if (len < 0 && errno == EINTR) continue;
    if (len <= 0) {
      rc = len < 0 ? -errno : -EIO;
      break;
    }
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len);
         h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE) {
        done = 1;
        break;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *err = NLMSG_DATA(h);
        rc = err->error ? err->error : -EIO;
        done = 1;
        break;
      }
      const struct inet_diag_msg *m = NLMSG_DATA(h);
      struct nsim_endpoint dst;
      nsim__diag_addr(m->idiag_family, m->id.idiag_dst, m->id.idiag_dport, &dst);
      if (m->idiag_family != family || !nsim_addr_equal(&dst, &job->to) ||
          dst.port != job->to.port)
        continue;
      for (size_t i = 0; i < ninodes; i++)
        if (inodes[i] == m->idiag_inode && n < cap) {
          found[n++] = *m;
          break;
        }
    }
  }
  close(fd);
  return rc < 0 ? rc : n;
}

/* SOCK_DESTROY of the one socket m names (addresses, ports, interface, cookie). */
static int nsim__destroy(const struct inet_diag_msg *m) {
  int fd = nsim__diag_request(m->idiag_family, SOCK_DESTROY, NLM_F_REQUEST | NLM_F_ACK, 2,
                              1u << m->idiag_state, &m->id);
  if (fd < 0) return fd;
  int rc = -EIO;
  char buf[1024] __attribute__((aligned(NLMSG_ALIGNTO)));
  ssize_t len;
  while ((len = recv(fd, buf, sizeof buf, 0)) < 0 && errno == EINTR) {
  }
  struct nlmsghdr *h = (struct nlmsghdr *)buf;
  if (len > 0 && NLMSG_OK(h, (size_t)len) && h->nlmsg_type == NLMSG_ERROR)
    rc = ((const struct nlmsgerr *)NLMSG_DATA(h))->error;
  else if (len < 0)
    rc = -errno;
  close(fd);
  return rc;
}

/* Child side, inside the process's namespace. Prints one line per connection:
 * "conn SADDR SPORT DADDR DPORT STATE" (listing), "reset SADDR SPORT STATE" or
 * "failed SADDR SPORT ERRNO" (destroying); exits 0, or 1 on an error ("error TEXT"). */
static int nsim__reset_child(void *arg) {
  const struct nsim__reset_job *job = arg;
  static unsigned long inodes[4096];
  size_t ninodes = nsim__group_sockets(job->pgid, inodes, NSIM_ARRAY_LEN(inodes));
  struct inet_diag_msg found[NSIM__MAX_CONNS];
  /* IPv4 sockets, and IPv6 ones: those hold IPv6 connections and, dual-stack, IPv4 ones. A
   * namespace without IPv6 answers the second dump with an error: nothing of that family. */
  int n = nsim__dump(AF_INET, job, inodes, ninodes, found, 0, NSIM__MAX_CONNS);
  if (n < 0) {
    printf("error sock_diag dump: %s\n", strerror(-n));
    return 1;
  }
  int n6 = nsim__dump(AF_INET6, job, inodes, ninodes, found, n, NSIM__MAX_CONNS);
  if (n6 >= 0) n = n6;
  for (int i = 0; i < n; i++) {
    struct nsim_endpoint se, de;
    nsim__diag_addr(found[i].idiag_family, found[i].id.idiag_src, found[i].id.idiag_sport, &se);
    nsim__diag_addr(found[i].idiag_family, found[i].id.idiag_dst, found[i].id.idiag_dport, &de);
    char src[NSIM_ENDPOINT_STRLEN], dst[NSIM_ENDPOINT_STRLEN];
    se.port = de.port = 0; /* addresses alone */
    nsim_endpoint_str(&se, src);
    nsim_endpoint_str(&de, dst);
    unsigned sport = ntohs(found[i].id.idiag_sport), dport = ntohs(found[i].id.idiag_dport);
    if (!job->destroy) {
      printf("conn %s %u %s %u %s\n", src, sport, dst, dport, nsim__tcp_state(found[i].idiag_state));
      continue;
    }
    int rc = nsim__destroy(&found[i]);
    if (rc == 0) printf("reset %s %u %s\n", src, sport, nsim__tcp_state(found[i].idiag_state));
    else printf("failed %s %u %d\n", src, sport, -rc);
  }
  return 0;
}

struct nsim__conn {
  char src[NSIM_IP6_STRLEN];
  unsigned sport;
  char state[16];
};

/* Runs the child; fills conns from its "conn" lines (listing) or counts "reset" lines
 * (destroying). Returns the count or a negative code with detail set. */
static int nsim__run_child(struct nsim_run *r, const struct nsim_proc *p,
                           struct nsim__reset_job *job, struct nsim__conn *conns, int *failed_errno,
                           char *detail, size_t detaillen) {
  char out[4096] = "";
  int rc = nsim_ns_call(nsim_run_ns(r, p->node), nsim__reset_child, job, 5000, out, sizeof out);
  if (rc != 0) {
    out[strcspn(out, "\n")] = 0;
    snprintf(detail, detaillen, "sock_diag in %s's namespace failed (%d): %s", p->name, rc, out);
    return rc < 0 ? rc : -EIO;
  }
  int n = 0;
  char *save = NULL;
  for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    struct nsim__conn c;
    int e;
    if (!job->destroy && n < NSIM__MAX_CONNS &&
        sscanf(l, "conn %45s %u %*s %*u %15s", c.src, &c.sport, c.state) == 3)
      conns[n++] = c;
    else if (job->destroy && !strncmp(l, "reset ", 6))
      n++;
    else if (job->destroy && sscanf(l, "failed %*s %*u %d", &e) == 1)
      *failed_errno = e;
  }
  return n;
}

/* Drops everything this host still sends on the listed connections: the RST the destroy
 * sends, and the RST that answers whatever the peer sends later (no socket is left). The
 * rule matches what is on the wire: IPv4 also for a dual-stack socket's v4-mapped one. */
static int nsim__silence(struct nsim_run *r, const struct nsim_proc *p, const struct nsim__conn *c,
                         int n, const char *dst, unsigned dport, char *detail, size_t detaillen) {
  static unsigned seq;
  char rules[2048];
  size_t used = (size_t)snprintf(rules, sizeof rules,
                                 "table inet netsim_reset {\n"
                                 "  chain out {\n"
                                 "    type filter hook output priority -300; policy accept;\n"
                                 "  }\n"
                                 "}\n");
  for (int i = 0; i < n && used < sizeof rules; i++)
    used += (size_t)snprintf(rules + used, sizeof rules - used,
                             "add rule inet netsim_reset out %s saddr %s tcp sport %u "
                             "%s daddr %s tcp dport %u drop\n",
                             strchr(dst, ':') ? "ip6" : "ip", c[i].src, c[i].sport,
                             strchr(dst, ':') ? "ip6" : "ip", dst, dport);
  if (used >= sizeof rules) {
    snprintf(detail, detaillen, "too many connections to silence");
    return -E2BIG;
  }
  char path[PATH_MAX];
  if (nsim_fmt(path, sizeof path, "%s/reset-%s-%u.nft", r->dir, p->name, ++seq) < 0)
    return -ENAMETOOLONG;
  int rc = nsim_write_file(path, rules, used);
  if (rc < 0) {
    snprintf(detail, detaillen, "cannot write %s: %s", path, strerror(-rc));
    return rc;
  }
  char *argv[] = {"nft", "-f", path, NULL};
  return nsim_ns_cmd(nsim_run_ns(r, p->node), argv, detail, detaillen);
}

int nsim_sock_reset(struct nsim_run *r, const struct nsim_proc *p, const struct nsim_endpoint *to,
                    int peer_notices, char *detail, size_t detaillen) {
  char dst[NSIM_ENDPOINT_STRLEN], dstp[NSIM_ENDPOINT_STRLEN];
  struct nsim_endpoint addr = *to;
  addr.port = 0;
  nsim_endpoint_str(&addr, dst);
  nsim_endpoint_str(to, dstp);
  unsigned port = to->port;
  if (!p->pid || p->exited) {
    snprintf(detail, detaillen, "%s is not running", p->name);
    return -ESRCH;
  }
  struct nsim__reset_job job = {p->pid, *to, 0};
  struct nsim__conn conns[NSIM__MAX_CONNS];
  int failed = 0;
  int n = nsim__run_child(r, p, &job, conns, &failed, detail, detaillen);
  if (n < 0) return n;
  if (n == 0) {
    snprintf(detail, detaillen, "%s has no TCP connection to %s", p->name, dstp);
    return -ENOENT;
  }
  int rc;
  if (!peer_notices && (rc = nsim__silence(r, p, conns, n, dst, port, detail, detaillen)) < 0)
    return rc;
  job.destroy = 1;
  int done = nsim__run_child(r, p, &job, NULL, &failed, detail, detaillen);
  if (done < 0) return done;
  if (failed) {
    snprintf(detail, detaillen, "the kernel refused to destroy %s's connection to %s: %s%s",
             p->name, dstp, strerror(failed),
             failed == EOPNOTSUPP ? " (it needs CONFIG_INET_DIAG_DESTROY)" : "");
    return -failed;
  }
  if (done == 0) {
    snprintf(detail, detaillen, "%s's connection to %s ended before it could be reset",
             p->name, dstp);
    return -ENOENT;
  }
  int v6 = strchr(conns[0].src, ':') != NULL;
  snprintf(detail, detaillen, "reset %d connection%s of %s to %s (from %s%s%s:%u, %s); %s", done,
           done == 1 ? "" : "s", p->name, dstp, v6 ? "[" : "", conns[0].src, v6 ? "]" : "",
           conns[0].sport, conns[0].state,
           peer_notices ? "the peer got the RST"
                        : "the RST and every later packet of it from the host dropped: the peer is not told");
  return done;
}
