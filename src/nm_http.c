#include "nm_http.h"
#include "nm_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
  char path[64];
  char content_type[64];
  char *body;
  size_t len;
  uint64_t requests; /* GETs and HEADs answered with it, for nm_http_requests */
  uint64_t gen;      /* publications so far: a waiting request sees it move */
  int on_demand;     /* built when asked for (nm_http_on_demand) */
  int wanted;        /* asked for since the loop last took the request */
} nm__http_doc;

struct nm_http {
  struct MHD_Daemon *daemon;
  int fd;
  uint16_t port;
  pthread_mutex_t lock; /* guards docs: held for a swap or one copy, never across I/O */
  nm__http_doc docs[NM_HTTP_DOCS_MAX];
  size_t ndocs;
  pthread_cond_t fresh;          /* broadcast on every publication */
  void (*wake)(void *wake_arg);  /* asks the loop for on-demand documents; NULL: off */
  void *wake_arg;
};

int nm_http_parse_listen(const char *spec, char *ip, size_t iplen, uint16_t *port) {
  const char *p = spec, *host = NM_HTTP_DEFAULT_ADDR;
  size_t hostlen = strlen(host);
  if (spec[0] == '[') {
    const char *close = strchr(spec, ']');
    if (!close || close[1] != ':') return -EINVAL;
    host = spec + 1;
    hostlen = (size_t)(close - host);
    p = close + 2;
  } else {
    const char *colon = strrchr(spec, ':');
    if (colon) {
      if (strchr(spec, ':') != colon) return -EINVAL; /* an IPv6 address needs brackets */
      if (colon > spec) {
        host = spec;
        hostlen = (size_t)(colon - spec);
      }
      p = colon + 1;
    }
  }
  if (hostlen == 0 || hostlen >= iplen || nm_parse_port(p, 0, port) < 0) return -EINVAL;
  memcpy(ip, host, hostlen);
  ip[hostlen] = 0;
  unsigned char buf[16];
  if (inet_pton(AF_INET, ip, buf) != 1 && inet_pton(AF_INET6, ip, buf) != 1) return -EINVAL;
  return 0;
}

/* ---- the HTTP thread ------------------------------------------------------------------- */

static enum MHD_Result nm__http_text(struct MHD_Connection *conn, unsigned status, const char *text) {
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  enum MHD_Result rc = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return rc;
}

/* The page may run its own inline script and fetch from this listener only: nothing from
 * outside, whatever a name in the status says. */
#define NM__HTTP_CSP                                                                       \
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "            \
  "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "        \
  "frame-ancestors 'none'"

static enum MHD_Result nm__http_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                           const char *method, const char *version, const char *upload,
                                           size_t *upload_size, void **state) {
  nm_http *h = cls;
  /* Answered on the first call, before any body: a GET has none, and anything else is
   * refused without reading it. (libmicrohttpd sends HEAD's headers without the body.) */
  if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
    return nm__http_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
  struct MHD_Response *r = NULL;
  char type[64] = "";
  pthread_mutex_lock(&h->lock);
  for (size_t i = 0; i < h->ndocs; i++) {
    nm__http_doc *d = &h->docs[i];
    if (strcmp(d->path, url) != 0 || !d->body) continue;
    if (d->on_demand && h->wake) {
      /* Built when asked for: wake the loop and wait (bounded) for the new copy; past the
       * wait, the last one is served. */
      uint64_t gen = d->gen;
      d->wanted = 1;
      h->wake(h->wake_arg);
      struct timespec until;
      clock_gettime(CLOCK_REALTIME, &until);
      until.tv_sec += NM_HTTP_DEMAND_WAIT_MS / 1000;
      until.tv_nsec += (long)(NM_HTTP_DEMAND_WAIT_MS % 1000) * 1000000L;
      if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
      while (d->gen == gen && h->wake)
        if (pthread_cond_timedwait(&h->fresh, &h->lock, &until) != 0) break;
    }
    r = MHD_create_response_from_buffer(d->len, d->body, MHD_RESPMEM_MUST_COPY);
    snprintf(type, sizeof type, "%s", d->content_type);
    d->requests++;
    break;
  }
  pthread_mutex_unlock(&h->lock);
  if (!type[0]) return nm__http_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
  if (!r) return MHD_NO; /* out of memory: the connection is closed */
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  if (strncmp(type, "text/html", 9) == 0) MHD_add_response_header(r, "Content-Security-Policy", NM__HTTP_CSP);
  enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
  MHD_destroy_response(r);
  return rc;
}

/* ---- the loop's side ------------------------------------------------------------------------ */

static int nm__http_bind(nm_http *h, const char *ip, uint16_t port, char *err, size_t errlen) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t sl;
  struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    sl = sizeof *v4;
  } else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    sl = sizeof *v6;
  } else {
    snprintf(err, errlen, "%s is not an IP address", ip);
    return -EINVAL;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int e = errno;
    snprintf(err, errlen, "cannot listen on %s port %u: %s", ip, port, strerror(e));
    return -e;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  /* A short backlog: past the connection limit, a few wait and the rest are refused. */
  if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, NM_HTTP_CONNECTIONS_MAX) < 0) {
    int e = errno;
    snprintf(err, errlen, "cannot listen on %s%s%s:%u: %s", ss.ss_family == AF_INET6 ? "[" : "", ip,
             ss.ss_family == AF_INET6 ? "]" : "", port, strerror(e));
    close(fd);
    return -e;
  }
  sl = sizeof ss;
  getsockname(fd, (struct sockaddr *)&ss, &sl);
  h->port = ntohs(ss.ss_family == AF_INET6 ? v6->sin6_port : v4->sin_port);
  h->fd = fd;
  return 0;
}

int nm_http_start(nm_http **out, const char *ip, uint16_t port, char *err, size_t errlen) {
  nm_http *h = calloc(1, sizeof *h);
  if (!h) return snprintf(err, errlen, "out of memory"), -ENOMEM;
  h->fd = -1;
  pthread_mutex_init(&h->lock, NULL);
  pthread_cond_init(&h->fresh, NULL);
  /* Our own socket, so that a refused bind says why (libmicrohttpd only says NULL). */
  int rc = nm__http_bind(h, ip, port, err, errlen);
  if (rc < 0) {
    nm_http_stop(h);
    return rc;
  }
  h->daemon = MHD_start_daemon(MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                               nm__http_on_request, h,
                               MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->fd,
                               MHD_OPTION_CONNECTION_LIMIT, (unsigned int)NM_HTTP_CONNECTIONS_MAX,
                               MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)NM_HTTP_TIMEOUT_S,
                               MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)NM_HTTP_REQUEST_MEMORY,
                               MHD_OPTION_END);
  if (!h->daemon) {
    snprintf(err, errlen, "cannot start the HTTP listener on %s:%u (libmicrohttpd)", ip, h->port);
    nm_http_stop(h);
    return -EIO;
  }
  h->fd = -1; /* libmicrohttpd's now: MHD_stop_daemon closes it */
  *out = h;
  return 0;
}

uint16_t nm_http_port(const nm_http *h) { return h->port; }

int nm_http_publish(nm_http *h, const char *path, const char *content_type, const char *body, size_t len) {
  if (strlen(path) >= sizeof h->docs[0].path || strlen(content_type) >= sizeof h->docs[0].content_type)
    return -EINVAL;
  /* The copy is made outside the lock; under it only pointers move. */
  char *copy = malloc(len ? len : 1);
  if (!copy) return -ENOMEM;
  memcpy(copy, body, len);
  char *old = NULL;
  int rc = 0;
  pthread_mutex_lock(&h->lock);
  size_t i = 0;
  while (i < h->ndocs && strcmp(h->docs[i].path, path) != 0) i++;
  if (i == h->ndocs && h->ndocs == NM_HTTP_DOCS_MAX) {
    rc = -ENOSPC;
  } else {
    nm__http_doc *d = &h->docs[i];
    if (i == h->ndocs) {
      snprintf(d->path, sizeof d->path, "%s", path);
      h->ndocs++;
    }
    snprintf(d->content_type, sizeof d->content_type, "%s", content_type);
    old = d->body;
    d->body = copy;
    d->len = len;
    d->gen++;
    copy = NULL;
    pthread_cond_broadcast(&h->fresh);
  }
  pthread_mutex_unlock(&h->lock);
  free(old);
  free(copy);
  return rc;
}

void nm_http_stop(nm_http *h) {
  if (!h) return;
  if (h->daemon) MHD_stop_daemon(h->daemon); /* joins the thread */
  if (h->fd >= 0) close(h->fd);
  for (size_t i = 0; i < h->ndocs; i++) free(h->docs[i].body);
  pthread_mutex_destroy(&h->lock);
  pthread_cond_destroy(&h->fresh);
  free(h);
}

void nm_http_on_demand(nm_http *h, const char *path, void (*wake)(void *arg), void *arg) {
  pthread_mutex_lock(&h->lock);
  h->wake = wake;
  h->wake_arg = arg;
  for (size_t i = 0; i < h->ndocs; i++)
    if (strcmp(h->docs[i].path, path) == 0) h->docs[i].on_demand = wake != NULL;
  pthread_cond_broadcast(&h->fresh); /* off: nobody waits any more */
  pthread_mutex_unlock(&h->lock);
}

int nm_http_take_wanted(nm_http *h, const char *path) {
  int wanted = 0;
  pthread_mutex_lock(&h->lock);
  for (size_t i = 0; i < h->ndocs; i++)
    if (strcmp(h->docs[i].path, path) == 0) {
      wanted = h->docs[i].wanted;
      h->docs[i].wanted = 0;
    }
  pthread_mutex_unlock(&h->lock);
  return wanted;
}
