/* test_upnp_sim.c - the port mapper against a fake UPnP IGD.
 *
 *   nat_test_upnp_sim SCENARIO 127.0.0.X
 *
 * The fake IGD is a tiny HTTP server (uv_tcp, same loop) on 127.0.0.X with an
 * ephemeral port, serving a root description and the WANIPConnection SOAP
 * actions miniupnpc uses, with a mapping table and switches for the error
 * answers real routers give (718, 725, 728) and for forgetting its table.
 * The mapper finds it through cfg.upnp_url (no SSDP, nothing leaves the
 * host); its blocking miniupnpc calls run on the thread pool while this loop
 * serves them. */
#include "nat_test.h"
#include "nm_portmap.h"
#include "sim.h"

#include <stdlib.h>

/* ---- the fake IGD -------------------------------------------------------- */

typedef struct {
  int used;
  uint16_t ext, in;
  char client[32];
  uint32_t lease;
} entry;

static struct {
  uv_tcp_t server;
  int port;
  entry tab[16];
  int only_permanent; /* 725 for any lease != 0 */
  int taken_all;      /* 718 for every port */
  uint16_t taken;     /* 718 for this port */
  int full;           /* 728 */
  uint32_t max_lease; /* grants at most this (0 = any) */
  int n_add, n_del, n_get, n_desc;
  uint32_t first_lease, last_lease;
} igd;


typedef struct {
  uv_tcp_t tcp;
  char buf[8192];
  size_t len;
  int answered;
} conn;

static void xml_arg(const char *body, const char *name, char *out, size_t outlen) {
  char open[64];
  const char *p, *e;
  out[0] = '\0';
  snprintf(open, sizeof(open), "<%s>", name);
  p = strstr(body, open);
  if (p == NULL)
    return;
  p += strlen(open);
  e = strchr(p, '<');
  if (e == NULL || (size_t)(e - p) >= outlen)
    return;
  memcpy(out, p, (size_t)(e - p));
  out[e - p] = '\0';
}

static entry *find(uint16_t ext) {
  int i;
  for (i = 0; i < 16; i++)
    if (igd.tab[i].used && igd.tab[i].ext == ext)
      return &igd.tab[i];
  return NULL;
}

static int table_size(void) {
  int i, n = 0;
  for (i = 0; i < 16; i++)
    n += igd.tab[i].used;
  return n;
}

static const char desc_xml[] =
    "<?xml version=\"1.0\"?>\r\n"
    "<root xmlns=\"urn:schemas-upnp-org:device-1-0\"><specVersion><major>1</major><minor>0</minor>"
    "</specVersion><device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1"
    "</deviceType><friendlyName>fake igd</friendlyName><serviceList><service><serviceType>"
    "urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><serviceId>"
    "urn:upnp-org:serviceId:WANIPConn1</serviceId><controlURL>/ctl/IPConn</controlURL>"
    "<eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL></service>"
    "</serviceList></device></root>\r\n";

#define ENV_OPEN                                                                      \
  "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/" \
  "envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>"
#define ENV_CLOSE "</s:Body></s:Envelope>\r\n"

static void soap_ok(char *out, size_t len, const char *action, const char *args) {
  snprintf(out, len,
           ENV_OPEN "<u:%sResponse xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:1\">"
                    "%s</u:%sResponse>" ENV_CLOSE,
           action, args, action);
}

static void soap_err(char *out, size_t len, int code) {
  snprintf(out, len,
           ENV_OPEN "<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError"
                    "</faultstring><detail><UPnPError xmlns=\"urn:schemas-upnp-org:control-1-0\">"
                    "<errorCode>%d</errorCode><errorDescription>x</errorDescription></UPnPError>"
                    "</detail></s:Fault>" ENV_CLOSE,
           code);
}

/* Returns the HTTP status; fills body. */
static int handle(const char *req, const char *body, char *out, size_t len) {
  char ext_s[16], in_s[16], client[32], lease_s[16], args[512];
  uint16_t ext;

  if (strncmp(req, "GET ", 4) == 0) {
    igd.n_desc++;
    snprintf(out, len, "%s", desc_xml);
    return 200;
  }
  xml_arg(body, "NewExternalPort", ext_s, sizeof(ext_s));
  ext = (uint16_t)atoi(ext_s);
  if (strstr(req, "#GetExternalIPAddress")) {
    soap_ok(out, len, "GetExternalIPAddress", "<NewExternalIPAddress>11.0.0.2</NewExternalIPAddress>");
    return 200;
  }
  if (strstr(req, "#AddPortMapping")) {
    uint32_t lease;
    entry *e;
    int i;
    xml_arg(body, "NewInternalPort", in_s, sizeof(in_s));
    xml_arg(body, "NewInternalClient", client, sizeof(client));
    xml_arg(body, "NewLeaseDuration", lease_s, sizeof(lease_s));
    lease = (uint32_t)strtoul(lease_s, NULL, 10);
    if (igd.n_add++ == 0)
      igd.first_lease = lease;
    igd.last_lease = lease;
    e = find(ext);
    if (igd.taken_all || ext == igd.taken || (e && strcmp(e->client, client) != 0)) {
      soap_err(out, len, 718);
      return 500;
    }
    if (igd.only_permanent && lease != 0) {
      soap_err(out, len, 725);
      return 500;
    }
    if (igd.full && e == NULL) {
      soap_err(out, len, 728);
      return 500;
    }
    for (i = 0; e == NULL && i < 16; i++)
      if (!igd.tab[i].used)
        e = &igd.tab[i];
    e->used = 1;
    e->ext = ext;
    e->in = (uint16_t)atoi(in_s);
    snprintf(e->client, sizeof(e->client), "%s", client);
    e->lease = igd.max_lease && (lease == 0 || lease > igd.max_lease) ? igd.max_lease : lease;
    soap_ok(out, len, "AddPortMapping", "");
    return 200;
  }
  if (strstr(req, "#GetSpecificPortMappingEntry")) {
    entry *e = find(ext);
    igd.n_get++;
    if (e == NULL) {
      soap_err(out, len, 714);
      return 500;
    }
    snprintf(args, sizeof(args),
             "<NewInternalPort>%u</NewInternalPort><NewInternalClient>%s</NewInternalClient>"
             "<NewEnabled>1</NewEnabled><NewPortMappingDescription>natmesh"
             "</NewPortMappingDescription><NewLeaseDuration>%u</NewLeaseDuration>",
             (unsigned)e->in, e->client, (unsigned)e->lease);
    soap_ok(out, len, "GetSpecificPortMappingEntry", args);
    return 200;
  }
  if (strstr(req, "#DeletePortMapping")) {
    entry *e = find(ext);
    igd.n_del++;
    if (e == NULL) {
      soap_err(out, len, 714);
      return 500;
    }
    e->used = 0;
    soap_ok(out, len, "DeletePortMapping", "");
    return 200;
  }
  soap_err(out, len, 401);
  return 500;
}

static void on_conn_closed(uv_handle_t *h) {
  free(h->data);
}

static void on_written(uv_write_t *w, int status) {
  conn *c = w->data;
  (void)status;
  free(w);
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  conn *c = h->data;
  (void)hint;
  *buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - 1 - c->len));
}

static void conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  conn *c = s->data;
  char *hdr_end, *cl;
  size_t body_len = 0, hdr_len;
  (void)b;
  if (n < 0 || c->len + (size_t)n >= sizeof(c->buf) - 1) {
    if (!uv_is_closing((uv_handle_t *)s))
      uv_close((uv_handle_t *)s, on_conn_closed);
    return;
  }
  c->len += (size_t)n;
  c->buf[c->len] = '\0';
  hdr_end = strstr(c->buf, "\r\n\r\n");
  if (hdr_end == NULL || c->answered)
    return;
  hdr_len = (size_t)(hdr_end + 4 - c->buf);
  cl = strstr(c->buf, "Content-Length:");
  if (cl == NULL)
    cl = strstr(c->buf, "CONTENT-LENGTH:");
  if (cl != NULL && cl < hdr_end)
    body_len = (size_t)atoi(cl + 15);
  if (c->len < hdr_len + body_len)
    return; /* body not complete yet */
  {
    static char body[4096];
    char *resp = malloc(8192);
    uv_write_t *w = malloc(sizeof(*w));
    uv_buf_t out;
    int status = handle(c->buf, hdr_end + 4, body, sizeof(body));
    int len = snprintf(resp, 8192,
                       "HTTP/1.1 %d %s\r\nContent-Type: text/xml; charset=\"utf-8\"\r\n"
                       "Connection: close\r\nContent-Length: %u\r\n\r\n%s",
                       status, status == 200 ? "OK" : "Internal Server Error",
                       (unsigned)strlen(body), body);
    c->answered = 1;
    uv_read_stop(s);
    /* the response must outlive the write: keep it in the conn's buffer */
    memcpy(c->buf, resp, (size_t)len);
    free(resp);
    out = uv_buf_init(c->buf, (unsigned)len);
    w->data = c;
    uv_write(w, s, &out, 1, on_written);
  }
}

static void on_connection(uv_stream_t *server, int status) {
  conn *c;
  if (status < 0)
    return;
  c = calloc(1, sizeof(*c));
  uv_tcp_init(&sim_loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) == 0)
    uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
  else
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static int igd_start(const char *ip) {
  struct sockaddr_in sa;
  struct sockaddr_storage got;
  int len = sizeof(got), r;
  uv_ip4_addr(ip, 0, &sa);
  uv_tcp_init(&sim_loop, &igd.server);
  r = uv_tcp_bind(&igd.server, (const struct sockaddr *)&sa, 0);
  if (r == 0)
    r = uv_listen((uv_stream_t *)&igd.server, 16, on_connection);
  if (r == 0)
    r = uv_tcp_getsockname(&igd.server, (struct sockaddr *)&got, &len);
  if (r == 0)
    igd.port = ntohs(((struct sockaddr_in *)&got)->sin_port);
  return r;
}

/* ---- what the mapper reported (sim_rec, and the close) -------------------- */

static nm_portmap pm;
static nm_portmap_config cfg;
static int table_at_close; /* the IGD's table size when close_cb ran */
static int dels_at_close;  /* and its DeletePortMapping count */

static void on_closed(nm_portmap *p) {
  (void)p;
  sim_rec.closed = 1;
  table_at_close = table_size();
  dels_at_close = igd.n_del;
}

static void on_event(nm_portmap *p, nm_portmap_event ev, int status, const nm_mapping_info *i,
                     void *arg) {
  (void)p, (void)arg;
  sim_record_event(ev, status, i);
}

static int c_two_adds(void) { return igd.n_add >= 2; }

static void start(void) {
  CHECK_EQ_INT(nm_portmap_init(&pm, &sim_loop, &cfg), 0);
  CHECK_EQ_INT(nm_portmap_start(&pm, 4000, on_event, NULL), 0);
}

static void close_and_wait(void) {
  CHECK(sim_close_and_wait(&pm, on_closed, 10000));
}

/* ---- scenarios ----------------------------------------------------------- */

/* maps with the requested lease; deletes it before close_cb */
static void sc_map(void) {
  start();
  CHECK(sim_wait_until(sim_mapped, 5000));
  CHECK_EQ_INT(sim_rec.last.method, NM_MAP_UPNP);
  CHECK_STREQ(sim_rec.last.ext_ip, "11.0.0.2");
  CHECK_EQ_INT(sim_rec.last.ext_port, 4000);
  CHECK_EQ_INT(sim_rec.last.lease_s, 60);
  CHECK_STREQ(sim_rec.last.int_ip, "127.0.0.1");
  CHECK_EQ_INT(igd.first_lease, 60);
  CHECK(find(4000) != NULL && find(4000)->in == 4000);
  close_and_wait();
  CHECK_EQ_INT(table_at_close, 0);
  CHECK_EQ_INT(dels_at_close, 1);
}

/* 725: falls back to a permanent lease, and still deletes it on close */
static void sc_permanent(void) {
  igd.only_permanent = 1;
  start();
  CHECK(sim_wait_until(sim_mapped, 5000));
  CHECK_EQ_INT(sim_rec.last.lease_s, 0);
  CHECK_EQ_INT(igd.n_add, 2);
  CHECK_EQ_INT(igd.first_lease, 60);
  CHECK_EQ_INT(igd.last_lease, 0);
  close_and_wait();
  CHECK_EQ_INT(table_at_close, 0);
}

/* 718 on the internal port: another external port is used */
static void sc_conflict(void) {
  igd.taken = 4000;
  start();
  CHECK(sim_wait_until(sim_mapped, 5000));
  CHECK(sim_rec.last.ext_port != 4000);
  CHECK(sim_rec.last.ext_port >= 1024);
  CHECK(find(sim_rec.last.ext_port) != NULL);
  CHECK_EQ_INT(igd.n_add, 2);
  close_and_wait();
  CHECK_EQ_INT(table_at_close, 0);
}

/* 718 everywhere: gives up after cfg.upnp_port_attempts, says so once */
static void sc_conflict_all(void) {
  igd.taken_all = 1;
  start();
  CHECK(sim_wait_until(sim_none, 5000));
  CHECK_EQ_INT(sim_rec.last_status, NM_PM_ECONFLICT);
  CHECK_EQ_INT(igd.n_add, 8);
  close_and_wait();
  CHECK_EQ_INT(igd.n_del, 0); /* nothing was created */
}

/* 728: table full */
static void sc_full(void) {
  igd.full = 1;
  start();
  CHECK(sim_wait_until(sim_none, 5000));
  CHECK_EQ_INT(sim_rec.last_status, NM_PM_ETABLEFULL);
  CHECK_EQ_INT(igd.n_add, 1);
  close_and_wait();
}

/* the router grants less than asked; the table entry tells */
static void sc_short_lease(void) {
  igd.max_lease = 20;
  start();
  CHECK(sim_wait_until(sim_mapped, 5000));
  CHECK_EQ_INT(sim_rec.last.lease_s, 20);
  close_and_wait();
}

/* the router forgets its table (reboot): a check notices and adds it again */
static void sc_forgotten(void) {
  cfg.check_s = 1;
  start();
  CHECK(sim_wait_until(sim_mapped, 5000));
  memset(igd.tab, 0, sizeof(igd.tab));
  CHECK(sim_wait_until(sim_remapped, 5000));
  CHECK(find(4000) != NULL);
  CHECK_EQ_INT(igd.n_add, 2);
  CHECK_EQ_INT(sim_rec.count[NM_PM_LOST], 0);
  close_and_wait();
  CHECK_EQ_INT(table_at_close, 0);
}

/* short leases are refreshed before expiry, quietly */
static void sc_renew(void) {
  cfg.lease_s = 4; /* renews at 2 s */
  start();
  CHECK(sim_wait_until(sim_mapped, 5000));
  CHECK(sim_wait_until(c_two_adds, 5000));
  CHECK_EQ_INT(igd.last_lease, 4);
  CHECK_EQ_INT(sim_rec.n, 1);
  close_and_wait();
}

static void on_server_closed(uv_handle_t *h) {
  (void)h;
}

/* the IGD disappears: renewals fail until the lease ends, LOST, then NONE */
static void sc_lost(void) {
  cfg.lease_s = 4;
  start();
  CHECK(sim_wait_until(sim_mapped, 5000));
  uv_close((uv_handle_t *)&igd.server, on_server_closed);
  CHECK(sim_wait_until(sim_lost_then_none, 15000));
  CHECK_EQ_INT(sim_rec.order[0], NM_PM_MAPPED);
  CHECK_EQ_INT(sim_rec.order[1], NM_PM_LOST);
  CHECK_EQ_INT(sim_rec.order[2], NM_PM_NONE);
  CHECK_EQ_INT(sim_rec.last_status, NM_PM_ENOIGD);
  close_and_wait();
}

static const sim_scenario scenarios[] = {
    {"map", sc_map},           {"permanent", sc_permanent},     {"conflict", sc_conflict},
    {"conflict_all", sc_conflict_all}, {"full", sc_full},       {"short_lease", sc_short_lease},
    {"forgotten", sc_forgotten}, {"renew", sc_renew},           {"lost", sc_lost},
};

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s SCENARIO 127.0.0.X\n", argv[0]);
    return 2;
  }
  CHECK_EQ_INT(uv_loop_init(&sim_loop), 0);
  if (igd_start(argv[2]) != 0) {
    fprintf(stderr, "cannot listen on %s\n", argv[2]);
    return 1;
  }
  nm_portmap_config_default(&cfg);
  cfg.natpmp = 0;
  cfg.pcp = 0; /* nothing may reach the real default gateway */
  cfg.lease_s = 60;
  snprintf(cfg.upnp_url, sizeof(cfg.upnp_url), "http://%s:%d/rootDesc.xml", argv[2], igd.port);
  CHECK_EQ_INT(sim_run(scenarios, sizeof(scenarios) / sizeof(scenarios[0]), argv[1]), 0);
  if (!uv_is_closing((uv_handle_t *)&igd.server))
    uv_close((uv_handle_t *)&igd.server, on_server_closed);
  uv_run(&sim_loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(uv_loop_close(&sim_loop), 0);
  NAT_TEST_DONE(argv[1]);
}
