/* nm_http: a small read-only HTTP listener for /metrics, /status.json and the status page,
 * on libmicrohttpd (Debian's libmicrohttpd-dev, as coturn's Prometheus endpoint uses: a
 * well-kept HTTP/1.1 server rather than one of our own).
 *
 * It runs in its own thread (libmicrohttpd's internal polling thread) and never touches
 * the event loop's state: the loop publishes documents (a path, a content type, a body)
 * with nm_http_publish, which swaps a private copy in under a mutex; the HTTP thread
 * answers each GET or HEAD with a copy made under the same mutex. So a scrape, however slow
 * or many, costs the loop nothing but the snapshots it chose to publish, and the mutex is
 * held for a pointer swap (publish) or one memcpy (a request), never across I/O.
 *
 * Bounded: at most NM_HTTP_CONNECTIONS_MAX connections at once (libmicrohttpd stops
 * accepting past it; the rest wait in a short backlog or are refused by the kernel), each
 * closed after NM_HTTP_TIMEOUT_S idle seconds, request headers within
 * NM_HTTP_REQUEST_MEMORY bytes. GET and HEAD only (405 otherwise), exact paths (404
 * otherwise). Loopback unless the operator names another address. */
#ifndef NM_HTTP_H
#define NM_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define NM_HTTP_CONNECTIONS_MAX 16
#define NM_HTTP_TIMEOUT_S 10
#define NM_HTTP_REQUEST_MEMORY (32 * 1024)
#define NM_HTTP_DOCS_MAX 8
#define NM_HTTP_DEFAULT_ADDR "127.0.0.1"

typedef struct nm_http nm_http;

/* An --metrics value: "PORT", ":PORT", "ADDR:PORT" or "[IPv6]:PORT", ADDR a literal IP
 * address (default NM_HTTP_DEFAULT_ADDR). Returns 0 or -EINVAL. */
int nm_http_parse_listen(const char *spec, char *ip, size_t iplen, uint16_t *port);

/* Binds ip:port (port 0: any free one, see nm_http_port) and starts the HTTP thread. The
 * documents may be published before or after. Returns 0, or a negative code with the
 * reason in err ("cannot listen on 127.0.0.1:9100: Address already in use"). */
int nm_http_start(nm_http **out, const char *ip, uint16_t port, char *err, size_t errlen);

/* The port it listens on. */
uint16_t nm_http_port(const nm_http *h);

/* Serves body (copied) at path (e.g. "/metrics") with content_type from now on, replacing
 * what was there. Up to NM_HTTP_DOCS_MAX paths. Returns 0, -ENOSPC or -ENOMEM (the previous
 * document stays). Safe from any one thread (the loop's) while the HTTP thread runs. */
int nm_http_publish(nm_http *h, const char *path, const char *content_type, const char *body, size_t len);

/* Makes the document at path (published once already) one the loop builds when asked
 * for: a request calls wake(arg) from the HTTP thread (it must be thread-safe, e.g.
 * uv_async_send; called with nm_http's lock held, so it must not call back into nm_http)
 * and waits up to NM_HTTP_DEMAND_WAIT_MS for the next nm_http_publish of it, else serves
 * the last copy. wake NULL turns it off (before the loop's wake handle goes). */
#define NM_HTTP_DEMAND_WAIT_MS 2000
void nm_http_on_demand(nm_http *h, const char *path, void (*wake)(void *arg), void *arg);
/* Whether the document at path was asked for since the last call (which clears it). */
int nm_http_take_wanted(nm_http *h, const char *path);
/* Stops the thread, closes the socket and frees everything. NULL is fine. */
void nm_http_stop(nm_http *h);

/* The status page (src/web/page.html, compiled in by src/web/embed.cmake): plain HTML, a
 * little JavaScript and SVG that fetch only /status.json from the same listener. */
extern const char nm_web_page[];
extern const size_t nm_web_page_len;
#define NM_WEB_PAGE_CONTENT_TYPE "text/html; charset=utf-8"

#endif
