#include "observe.h"
#include "servant.h"
#include "nm_addr.h"
#include "nm_error.h"
#include "nm_log.h"

#include <stdlib.h>
#include <string.h>

#define SV_OBSERVE_TIMEOUT_MS 5000

void sv_observe_set_addrs(servant *sv, const nm_msg_welcome *w) {
  sv->observe.naddrs = w->naddrs < NM_MANAGER_ADDRS_MAX ? w->naddrs : NM_MANAGER_ADDRS_MAX;
  memcpy(sv->observe.addrs, w->addrs, sv->observe.naddrs * sizeof *w->addrs);
}

static int sv__obs_on_observed(void *session, const nm_msg *msg) {
  servant *sv = session;
  char at[NM_ADDR_STRLEN];
  nm_log_info("the manager sees us over IPv%c too, at %s",
              nm_addr_family(msg->u.observed.ip) == AF_INET6 ? '6' : '4',
              nm_addr_str(msg->u.observed.ip, msg->u.observed.port, at));
  if (sv->observe.conn) nm_conn_close(sv->observe.conn, 0, NULL); /* done: nothing more comes */
  return 1;
}

static const nm_dispatch_entry sv__obs_rows[] = {
    {NM_MSG_OBSERVED, 0, 0, sv__obs_on_observed},
};
static const char *const sv__obs_states[] = {"waiting for observed"};
static const nm_dispatch_table sv__obs_table =
    NM_DISPATCH_TABLE("observe session", sv__obs_rows, sv__obs_states);

static int sv__obs_on_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  return nm_dispatch(&sv__obs_table, c, c->data, 0, type, payload, len) || c->closing;
}

static void sv__obs_closed(nm_conn *c) {
  servant *sv = c->data;
  if (sv->observe.conn == c) {
    sv->observe.conn = NULL;
    /* An error frame (the manager refused) or a transport failure: we stay a candidate of
     * one family, which is how it was before; said once per registration. */
    if (c->close_err || c->peer_error[0])
      nm_log_info("could not show ourselves to the manager over the other family: %s",
                  c->peer_error[0] ? c->peer_error : nm_strerror(c->close_err));
  }
  free(c);
}

static void sv__obs_connected(nm_conn *c, int status) {
  servant *sv = c->data;
  if (status < 0) {
    nm_conn_close(c, status, NULL); /* sv__obs_closed says why */
    return;
  }
  nm_msg m = {.type = NM_MSG_OBSERVE};
  snprintf(m.u.observe.id, sizeof m.u.observe.id, "%s", sv->id);
  int rc = nm_msg_send(c, &m);
  if (rc < 0) nm_conn_close(c, rc, NULL);
}

/* Whether we have an address of family ourselves (one that can be a candidate). */
static int sv__have_family(int family) {
  char addrs[NM_LOCAL_ADDRS_MAX][NM_IP_STRLEN];
  size_t n = sv_local_addresses(addrs, NM_LOCAL_ADDRS_MAX);
  for (size_t i = 0; i < n; i++)
    if (nm_addr_family(addrs[i]) == family) return 1;
  return 0;
}

void sv_observe_start(servant *sv) {
  if (sv->observe.conn || sv->stopping) return;
  int used = nm_addr_family(sv_manager_observed_ip(sv));
  for (size_t i = 0; i < sv->observe.naddrs; i++) {
    const nm_endpoint *e = &sv->observe.addrs[i];
    int fam = nm_addr_family(e->ip);
    if (fam == used || !sv__have_family(fam)) continue;
    struct sockaddr_storage dest;
    if (nm_addr_to_sockaddr(e->ip, e->port, &dest) < 0) continue;
    nm_conn *c = malloc(sizeof *c);
    if (!c) return;
    nm_conn_init(sv->loop, c, sv__obs_on_frame, sv__obs_closed, sv);
    nm_conn_set_label(c, "observe");
    sv->observe.conn = c;
    /* Pinned to the manager's key, like the main session: nobody else learns our id. */
    int rc = nm_conn_set_tls(c, &sv->tls, NM_TLS_CLIENT, sv_manager_fp(sv));
    if (rc == 0) rc = sv_bind_outgoing(sv, c, (struct sockaddr *)&dest);
    if (rc == 0) rc = nm_conn_connect(c, (struct sockaddr *)&dest, SV_OBSERVE_TIMEOUT_MS, sv__obs_connected);
    if (rc == 0) nm_conn_deadline(c, SV_OBSERVE_TIMEOUT_MS, "no answer to observe in time");
    if (rc < 0) nm_conn_close(c, rc, NULL);
    return; /* one family, one try */
  }
}

void sv_observe_stop(servant *sv) {
  if (!sv->observe.conn) return;
  nm_conn *c = sv->observe.conn;
  sv->observe.conn = NULL;
  nm_conn_close(c, 0, NULL);
}
