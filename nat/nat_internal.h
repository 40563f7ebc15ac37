/* nat_internal.h - shared between the port mapper's modules; not public.
 *
 * nm_portmap.c   orchestrates: start, "first success wins", renew/check
 *                schedule, loss, "no mapping", close;
 * nat_upnp.c     the UPnP IGD method (all miniupnpc calls on the thread pool);
 * nat_natpmp.c   the NAT-PMP method (socket driven by uv_poll + uv_timer);
 * nat_pcp.c      the PCP method (uv_udp + uv_timer; wire format in nm_pcp.c).
 * Each method reports the end of every operation with nm__method_done(). */
#ifndef NAT_INTERNAL_H
#define NAT_INTERNAL_H

#include "nm_log.h"
#include "nm_portmap.h"

#include <stddef.h>

#define nm__container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* What a method is asked to do. */
enum {
  NM__OP_PROBE = 1, /* find the router and its external address */
  NM__OP_MAP,       /* create the mapping */
  NM__OP_CHECK,     /* verify the mapping still exists; redo it if not */
  NM__OP_RENEW,     /* refresh the lease (redo it if the router forgot it) */
  NM__OP_DELETE     /* remove what we created */
};

/* Per-method state within one probing round. */
enum {
  NM__M_OFF = 0, /* disabled in the config */
  NM__M_IDLE,    /* enabled, nothing tried yet */
  NM__M_PROBING,
  NM__M_READY,   /* router found, not mapping with it */
  NM__M_FAILED,  /* probe or map failed this round */
  NM__M_MAPPED
};

/* Orchestrator state. */
enum {
  NM__S_IDLE = 0, /* initialized, not started */
  NM__S_PROBING,  /* a round is running: probes and at most one map attempt */
  NM__S_MAPPED,   /* pm->active holds the mapping */
  NM__S_NONE,     /* nothing worked; quiet retry timer armed */
  NM__S_CLOSING,
  NM__S_CLOSED
};

/* Logging: one nm_log line per event, prefixed "nat: " so servant logs can be grepped
 * (level NM_LOG_*; NATMESH_LOG=debug shows the debug lines). */
void nm__nat_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define nat_info(...) nm__nat_log(NM_LOG_INFO, __VA_ARGS__)
#define nat_warn(...) nm__nat_log(NM_LOG_WARN, __VA_ARGS__)
#define nat_error(...) nm__nat_log(NM_LOG_ERROR, __VA_ARGS__)
#define nat_debug(...) nm__nat_log(NM_LOG_DEBUG, __VA_ARGS__)

/* nm_portmap.c */
void nm__method_done(nm_portmap *pm, nm_map_method m, int op, int err);

/* nat_upnp.c */
int nm__upnp_launch(nm_portmap *pm, int op);
void nm__upnp_cleanup(nm_portmap *pm); /* frees discovery results; not busy */

/* nat_natpmp.c */
int nm__natpmp_launch(nm_portmap *pm, int op);
void nm__natpmp_abort(nm_portmap *pm);   /* drop the request in flight, if any */
int nm__natpmp_close_handles(nm_portmap *pm, uv_close_cb cb); /* returns handles closing */
void nm__natpmp_release(nm_portmap *pm); /* closes the socket after the handles closed */
void nm__natpmp_local_ip(nm_portmap *pm, char *out, size_t outlen);

/* nat_pcp.c */
int nm__pcp_launch(nm_portmap *pm, int op);
void nm__pcp_abort(nm_portmap *pm);      /* drop the request in flight, if any */
int nm__pcp_close_handles(nm_portmap *pm, uv_close_cb cb); /* returns handles closing */
void nm__pcp_release(nm_portmap *pm);    /* after the handles closed */

#endif /* NAT_INTERNAL_H */
