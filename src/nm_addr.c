#include "nm_addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

const char *nm_addr_str(const char *ip, uint16_t port, char buf[NM_ADDR_STRLEN]) {
  int v6 = strchr(ip, ':') != NULL;
  if (!port)
    snprintf(buf, NM_ADDR_STRLEN, "%s", ip);
  else
    snprintf(buf, NM_ADDR_STRLEN, v6 ? "[%s]:%u" : "%s:%u", ip, port);
  return buf;
}

int nm_addr_family(const char *ip) {
  unsigned char b[16];
  if (!ip || strlen(ip) >= NM_IP_STRLEN) return -EINVAL;
  if (inet_pton(AF_INET, ip, b) == 1) return AF_INET;
  /* glibc's inet_pton takes no zone ("%eth0"): a zoned address is refused here. */
  if (inet_pton(AF_INET6, ip, b) == 1) return AF_INET6;
  return -EINVAL;
}

int nm_addr_to_sockaddr(const char *ip, uint16_t port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  switch (nm_addr_family(ip)) {
  case AF_INET: {
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    inet_pton(AF_INET, ip, &in->sin_addr);
    return 0;
  }
  case AF_INET6: {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    inet_pton(AF_INET6, ip, &in6->sin6_addr);
    return 0;
  }
  default: return -EINVAL;
  }
}

int nm_addr_from_sockaddr(const struct sockaddr *sa, char *ip, size_t iplen, uint16_t *port) {
  ip[0] = 0;
  *port = 0;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    if (!inet_ntop(AF_INET, &in->sin_addr, ip, (socklen_t)iplen)) return -EINVAL;
    *port = ntohs(in->sin_port);
    return 0;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    const void *a = &in6->sin6_addr;
    int fam = AF_INET6;
    /* An IPv4 peer on a dual-stack socket: shown as the IPv4 address users type and ban. */
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      a = (const unsigned char *)&in6->sin6_addr + 12;
      fam = AF_INET;
    }
    if (!inet_ntop(fam, a, ip, (socklen_t)iplen)) return -EINVAL;
    *port = ntohs(in6->sin6_port);
    return 0;
  }
  return -EINVAL;
}

int nm_addr_is_candidate(const char *ip) {
  unsigned char b[16];
  switch (nm_addr_family(ip)) {
  case AF_INET:
    inet_pton(AF_INET, ip, b);
    /* 0/8 "this network", 127/8 loopback, 169.254/16 link-local, 224/4 multicast and
     * 240/4 reserved (with the broadcast address). */
    return !(b[0] == 0 || b[0] == 127 || (b[0] == 169 && b[1] == 254) || b[0] >= 224);
  case AF_INET6: {
    struct in6_addr a;
    inet_pton(AF_INET6, ip, &a);
    return !(IN6_IS_ADDR_UNSPECIFIED(&a) || IN6_IS_ADDR_LOOPBACK(&a) || IN6_IS_ADDR_LINKLOCAL(&a) ||
             IN6_IS_ADDR_MULTICAST(&a) || IN6_IS_ADDR_V4MAPPED(&a) || IN6_IS_ADDR_V4COMPAT(&a));
  }
  default: return 0;
  }
}

int nm_addr_equal(const char *a, const char *b) {
  struct sockaddr_storage x, y;
  if (nm_addr_to_sockaddr(a, 0, &x) < 0 || nm_addr_to_sockaddr(b, 0, &y) < 0) return 0;
  if (x.ss_family != y.ss_family) return 0;
  if (x.ss_family == AF_INET)
    return memcmp(&((struct sockaddr_in *)&x)->sin_addr, &((struct sockaddr_in *)&y)->sin_addr, 4) == 0;
  return memcmp(&((struct sockaddr_in6 *)&x)->sin6_addr, &((struct sockaddr_in6 *)&y)->sin6_addr, 16) == 0;
}
