/* nm_portmap.h - open a port on the router in front of this host.
 *
 * The port mapper asks the home router for an inbound port mapping, with
 * UPnP IGD (miniupnpc), NAT-PMP (libnatpmp) and PCP (RFC 6887 MAP, nm_pcp.h), on the
 * caller's libuv loop:
 *
 *   - all three are probed at start-up with short bounded timeouts
 *     (UPnP discovery <= cfg.upnp_discover_ms, NAT-PMP <= cfg.natpmp_timeout_ms,
 *     PCP <= cfg.pcp_timeout_ms); the first of UPnP and NAT-PMP that answers gets to
 *     map, the other is a fallback; PCP maps only when neither UPnP nor NAT-PMP could
 *     (a router that speaks several keeps the method it always had: see docs/nat.md);
 *   - the mapping is renewed before it expires (NAT-PMP at half-life, UPnP a
 *     margin before expiry), checked every cfg.check_s seconds so a router
 *     that rebooted and forgot it is noticed, and redone (PCP: at half-life, and its
 *     epoch is checked on every answer);
 *   - when nothing works the callback says so once (NM_PM_NONE) and the
 *     mapper retries quietly every cfg.retry_s seconds;
 *   - nm_portmap_close() deletes what was created, then calls close_cb.
 *
 * Every miniupnpc call blocks (SSDP, HTTP, SOAP), so they all run on the libuv
 * thread pool (uv_queue_work); the NAT-PMP socket is driven by uv_poll and a
 * uv_timer, PCP's is a uv_udp. Nothing here blocks the loop thread.
 *
 * All functions return 0 or a negative error code; nm_portmap_strerror()
 * turns any of them (including libuv codes) into text. Not thread-safe: use
 * one nm_portmap from its loop thread only.
 */
#ifndef NM_PORTMAP_H
#define NM_PORTMAP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <natpmp.h>
#include <miniupnpc/miniupnpc.h>

#include "nm_pcp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- error codes (negative; distinct from libuv's -errno range) ---------- */
enum {
  NM_PM_EINVAL = -7001,     /* bad argument or config value */
  NM_PM_EBUSY = -7002,      /* already started / closing */
  NM_PM_EDISABLED = -7003,  /* both methods switched off in the config */
  NM_PM_ENOGATEWAY = -7004, /* no default gateway, or it does not speak NAT-PMP */
  NM_PM_ENOIGD = -7005,     /* UPnP discovery found no Internet Gateway Device */
  NM_PM_ETIMEDOUT = -7006,  /* router did not answer in time */
  NM_PM_ECONFLICT = -7007,  /* every external port tried was taken (UPnP 718) */
  NM_PM_ETABLEFULL = -7008, /* router mapping table is full (UPnP 728, NAT-PMP 4) */
  NM_PM_ENOTAUTH = -7009,   /* router refused: not authorized (UPnP 606, NAT-PMP 2) */
  NM_PM_EEXTPORT0 = -7010,  /* NAT-PMP "success" with external port 0 */
  NM_PM_ENONET = -7011,     /* router has no external address (NAT-PMP 3, 0.0.0.0) */
  NM_PM_EUPNP = -7012,      /* other UPnP error (the log names the code) */
  NM_PM_ENATPMP = -7013,    /* other NAT-PMP error (the log names the code) */
  NM_PM_ELOST = -7014,      /* mapping could not be renewed before it expired */
  NM_PM_ENOMAPPING = -7015, /* nm_portmap_get(): no mapping right now */
  NM_PM_ECLOSED = -7016,    /* the mapper was closed */
  NM_PM_ENOPCP = -7017,     /* the gateway does not speak PCP (port unreachable, or a
                               NAT-PMP-only answer, or UNSUPP_VERSION) */
  NM_PM_EPCP = -7018        /* other PCP error (the log names the result code) */
};

/* ---- pure helpers (no loop, no I/O; unit-tested) ------------------------- */

typedef enum { NM_MAP_NONE = 0, NM_MAP_UPNP, NM_MAP_NATPMP, NM_MAP_PCP } nm_map_method;

typedef enum {
  NM_ADDR_INVALID = 0, /* not an IPv4 address */
  NM_ADDR_PUBLIC,      /* globally routable unicast */
  NM_ADDR_PRIVATE,     /* RFC 1918: 10/8, 172.16/12, 192.168/16 */
  NM_ADDR_CGNAT,       /* RFC 6598 shared address space 100.64/10 */
  NM_ADDR_LOOPBACK,    /* 127/8 */
  NM_ADDR_LINKLOCAL,   /* 169.254/16 */
  NM_ADDR_UNSPEC,      /* 0/8 ("this network"), 0.0.0.0 */
  NM_ADDR_MULTICAST,   /* 224/4 */
  NM_ADDR_RESERVED     /* other special-purpose: TEST-NETs, 198.18/15, 192.0.0/24, 240/4 */
} nm_addr_class;

#define NM_NEVER UINT64_MAX /* "no deadline" for the scheduling helpers */

/* Classifies a dotted-quad IPv4 address; "::ffff:a.b.c.d" is accepted too
 * because a dual-stack listener reports IPv4 peers that way. */
nm_addr_class nm_addr_classify(const char *ip);
const char *nm_addr_class_name(nm_addr_class c);

/* Double NAT: the router's external address (from UPnP/NAT-PMP) is not the
 * address the rest of the world sees, so the mapping cannot make this host
 * reachable. Returns 1 (double NAT), 0 (no evidence of it) or NM_PM_EINVAL.
 *   - router_ext_ip not public (RFC 1918, CGNAT, ...) -> 1, whatever observed is;
 *   - observed_ip NULL/"" or not IPv4 (e.g. the manager saw us over IPv6) -> 0:
 *     nothing to compare with;
 *   - both IPv4 and different -> 1. */
int nm_portmap_is_double_nat(const char *router_ext_ip, const char *observed_ip);

/* When a lease granted at granted_at_ms should be renewed.
 *   lease_s == 0 (permanent)  -> NM_NEVER;
 *   NM_MAP_NATPMP, NM_MAP_PCP -> half-life (RFC 6886 section 3.3, RFC 6887 11.2.1);
 *   NM_MAP_UPNP               -> expiry minus a margin of a quarter of the lease,
 *                                clamped to [10 s, 300 s] and never earlier than half-life;
 * never sooner than 1 s after the grant, so a router granting absurdly short
 * leases cannot make us spin. */
uint64_t nm_lease_renew_at_ms(uint64_t granted_at_ms, uint32_t lease_s, nm_map_method m);
/* granted_at_ms + lease, or NM_NEVER for a permanent lease. */
uint64_t nm_lease_expires_at_ms(uint64_t granted_at_ms, uint32_t lease_s);
/* Back-off after the n-th consecutive failure (n >= 1): 1 s, 2 s, 4 s ...
 * capped at max_ms. n == 0 -> 0. */
uint64_t nm_retry_backoff_ms(unsigned failures, uint64_t max_ms);
/* When to retry a failed renewal: now + backoff, but not after the lease
 * expires; NM_NEVER once now >= expires_at_ms (the mapping is lost). */
uint64_t nm_lease_retry_at_ms(uint64_t now_ms, uint64_t expires_at_ms, unsigned failures);
/* RFC 6886 section 3.6: did the NAT-PMP router lose its state (reboot)?
 * 1 if new_epoch is less than prev_epoch + 7/8 of the local time elapsed
 * minus 2 s of slack, else 0. */
int nm_natpmp_epoch_reset(uint32_t prev_epoch, uint64_t prev_ms, uint32_t new_epoch,
                          uint64_t now_ms);
/* External port to ask for on the attempt-th try (UPnP conflict 718):
 * attempt 0 -> the internal port; later attempts -> a port in [1024, 65535]
 * spread by a hash of (internal port, attempt, seed), never the internal port.
 * seed lets two hosts behind one router walk different sequences. */
uint16_t nm_upnp_ext_port_candidate(uint16_t int_port, unsigned attempt, uint32_t seed);

const char *nm_map_method_name(nm_map_method m); /* "none", "upnp", "natpmp", "pcp" */
const char *nm_portmap_strerror(int err);

/* ---- configuration ------------------------------------------------------- */

typedef enum { NM_PM_TCP = 0, NM_PM_UDP = 1 } nm_pm_proto;

typedef struct {
  int upnp;                   /* 1 = try UPnP IGD (default 1) */
  int natpmp;                 /* 1 = try NAT-PMP (default 1) */
  int pcp;                    /* 1 = try PCP (default 1) */
  uint32_t lease_s;           /* lease to ask for, seconds (default 3600) */
  uint32_t upnp_discover_ms;  /* SSDP discovery wait (default 2000) */
  uint32_t natpmp_timeout_ms; /* cap on one NAT-PMP request with retries (default 3000) */
  uint32_t pcp_timeout_ms;    /* cap on one PCP request with retries (default 5000: the
                                 first retransmission comes after about 3 s, RFC 6887 8.1.1) */
  uint32_t check_s;           /* how often to verify a live mapping (default 60) */
  uint32_t retry_s;           /* retry period after "no mapping" (default 60) */
  unsigned upnp_port_attempts; /* external ports to try on conflict 718 (default 8) */
  nm_pm_proto proto;          /* default TCP */
  char natpmp_gateway[16];    /* "" = default route's gateway; else forced IPv4 (NAT-PMP
                                 and PCP: both talk to the gateway's port 5351) */
  char description[32];       /* UPnP mapping description (default "natmesh") */
  char upnp_url[128];         /* "" = SSDP discovery; else the IGD's root description
                                 URL (http://...), for routers that do not answer SSDP */
} nm_portmap_config;

void nm_portmap_config_default(nm_portmap_config *cfg);
/* Sets one <nat> config element by name from its text, e.g. ("upnp", "off"),
 * ("lease", "120"). Keys: upnp, natpmp, pcp (on|off), lease (30..604800),
 * discover_ms (100..10000), natpmp_timeout_ms (250..10000), pcp_timeout_ms
 * (250..30000), check (5..3600),
 * retry (10..86400), proto (tcp|udp), gateway (IPv4 or ""), description,
 * upnp_url ("" or http://...).
 * On error returns NM_PM_EINVAL and writes a message naming the key, the
 * value and the allowed range into err (if non-NULL). */
int nm_portmap_config_set(nm_portmap_config *cfg, const char *key, const char *value,
                          char *err, size_t errlen);

/* ---- the port mapper ----------------------------------------------------- */

typedef struct {
  nm_map_method method;
  char ext_ip[64];    /* router's external address as it reports it */
  uint16_t ext_port;  /* external port on the router */
  uint16_t int_port;  /* our port */
  char int_ip[64];    /* our LAN address as the router sees it ("" if unknown) */
  uint32_t lease_s;   /* granted lease; 0 = permanent */
} nm_mapping_info;

typedef enum {
  NM_PM_MAPPED = 1, /* status 0: a mapping exists (first time, or again after LOST/NONE) */
  NM_PM_REMAPPED,   /* status 0: the router forgot the mapping and it was redone, or
                       its external address/port changed; info is the current one */
  NM_PM_LOST,       /* status < 0: the mapping is gone; info is the old one; the
                       mapper probes again and reports MAPPED or NONE next */
  NM_PM_NONE        /* status < 0: no method could map (reported once per episode);
                       quiet retries every cfg.retry_s continue */
} nm_portmap_event;

typedef struct nm_portmap nm_portmap;
typedef void (*nm_portmap_cb)(nm_portmap *pm, nm_portmap_event ev, int status,
                              const nm_mapping_info *info, void *arg);
typedef void (*nm_portmap_close_cb)(nm_portmap *pm);

/* Private parts, embedded so that the caller owns all memory. Do not touch. */
struct nm__upnp {
  uv_work_t work;
  int busy;               /* a work item is queued or running */
  int op;                 /* what the work item does */
  int st;                 /* per-method state */
  int have_igd;           /* urls/data/lanaddr valid */
  int mapped;             /* a mapping we created exists at the router */
  struct UPNPUrls urls;
  struct IGDdatas data;
  char lanaddr[64];
  char ext_ip[64];
  uint16_t ext_port;      /* our mapping's external port */
  uint32_t lease_s;       /* granted lease (0 = permanent) */
  int permanent_only;     /* router answered 725 once: stop asking for leases */
  /* work outputs, read on the loop thread in the after-work callback */
  int r_err;              /* 0 or NM_PM_E* */
  int r_code;             /* last UPnP/miniupnpc code, for the log */
  int r_igd_state;        /* UPNP_GetValidIGD() result */
  int r_redone;           /* the mapping was missing and was added again */
  int r_rediscovered;     /* IGD control URL was stale and discovery ran again */
  int r_lease725;         /* fell back to a permanent lease */
  unsigned r_conflicts;   /* 718/729 answers seen */
  uint16_t r_first_conflict;
  int r_full;             /* 728 seen */
};

struct nm__natpmp {
  natpmp_t h;
  int open;               /* h.s is a live socket */
  uv_poll_t poll;
  int poll_init;          /* poll handle initialized (must be closed) */
  uv_timer_t timer;       /* retransmissions and the per-request cap */
  int st;
  int req;                /* request in flight (NP_REQ_*) */
  int purpose;            /* why it was sent (NP_FOR_*) */
  uint64_t req_started_ms;
  char ext_ip[64];
  int have_epoch;
  uint32_t epoch;
  uint64_t epoch_at_ms;
  int mapped;             /* the router holds a mapping we asked for */
  int asked;              /* a map request was sent at least once */
  uint16_t ext_port;
  uint32_t lease_s;
  int reset_seen;         /* epoch went backwards during a check */
};

struct nm__pcp {
  uv_udp_t udp;           /* connected to the gateway's port 5351 */
  int udp_init;           /* udp handle initialized (must be closed) */
  int open;               /* connected, reading, client_ip known */
  uv_timer_t timer;       /* retransmissions and the per-request cap */
  int st;
  int req;                /* request in flight (PC_REQ_*) */
  int purpose;            /* why it was sent (PC_FOR_*) */
  uint64_t req_started_ms;
  uint32_t rt_ms;         /* current retransmission time */
  unsigned sends;         /* datagrams sent for the request in flight */
  unsigned ignored;       /* answers dropped as malformed or not ours (for the log and tests) */
  uint32_t rnd;           /* jitter state */
  uint8_t nonce[NM_PCP_NONCE_LEN]; /* the mapping's; kept for renewals and the delete */
  uint8_t client_ip[16];  /* our address, IPv4-mapped */
  char int_ip[64];
  char ext_ip[64];
  int have_epoch;
  uint32_t epoch;
  uint64_t epoch_at_ms;
  int mapped;             /* the server holds a mapping we asked for */
  int asked;              /* a MAP request was sent at least once */
  uint16_t ext_port;
  uint32_t lease_s;
  int reset_seen;         /* the epoch said the server lost its state */
  uint8_t rbuf[NM_PCP_MAX_LEN + 4]; /* one datagram; a longer one is truncated and refused */
};

struct nm_portmap {
  void *data;             /* free for the caller */
  uv_loop_t *loop;
  /* private */
  nm_portmap_config cfg;
  nm_portmap_cb cb;
  void *cb_arg;
  nm_portmap_close_cb close_cb;
  int state;
  uint16_t int_port;
  uv_timer_t timer;       /* one deadline: start kick, renew, check, retry */
  int trying;             /* method currently creating a mapping, or NONE */
  nm_map_method active;   /* method holding the mapping */
  nm_mapping_info cur;
  int none_reported;
  uint64_t granted_at_ms;
  uint64_t renew_at_ms;
  uint64_t expires_at_ms;
  uint64_t check_at_ms;
  unsigned failures;      /* consecutive renew/check failures */
  int err_upnp;           /* why each method failed this round, for the NONE report */
  int err_natpmp;
  int err_pcp;
  int close_np_sent;
  int close_pc_sent;      /* the close path asked for each deletion once */
  int close_up_sent;
  int pending_closes;
  struct nm__upnp up;
  struct nm__natpmp np;
  struct nm__pcp pcp;
};

/* Prepares pm on loop; cfg NULL means defaults (copied). Pair with nm_portmap_close(). */
int nm_portmap_init(nm_portmap *pm, uv_loop_t *loop, const nm_portmap_config *cfg);
/* Starts mapping internal_port. cb runs on the loop thread, never from inside
 * this call, on every change (see nm_portmap_event). cb may call
 * nm_portmap_close(). */
int nm_portmap_start(nm_portmap *pm, uint16_t internal_port, nm_portmap_cb cb, void *arg);
/* The current mapping: 0 and *out filled, or NM_PM_ENOMAPPING. */
int nm_portmap_get(const nm_portmap *pm, nm_mapping_info *out);
/* Deletes mappings it created (UPnP off the loop thread, NAT-PMP and PCP lifetime 0,
 * bounded by the configured timeouts), closes its handles, then calls
 * close_cb (may be NULL); pm's memory may be freed from close_cb on. */
void nm_portmap_close(nm_portmap *pm, nm_portmap_close_cb close_cb);

#ifdef __cplusplus
}
#endif
#endif /* NM_PORTMAP_H */
