/* nm_portmap_config.c - defaults and the <nat> config keys, from one table.
 *
 * The servant's XML reader hands each <nat> child element here as
 * (name, text); the table below is the single place that knows types,
 * ranges and defaults, so error messages and docs/nat.md stay in step. */
#include "nm_portmap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { NM__T_BOOL, NM__T_U32, NM__T_PROTO, NM__T_IPV4, NM__T_STR, NM__T_URL } nm__type;

typedef struct {
  const char *name;
  nm__type type;
  uint32_t min, max;
  size_t off;  /* where the value lives in nm_portmap_config */
  size_t size; /* for strings: buffer size */
} nm__key;

#define NM__OFF(f) offsetof(nm_portmap_config, f)
#define NM__SZ(f) sizeof(((nm_portmap_config *)0)->f)

static const nm__key nm__keys[] = {
    {"upnp", NM__T_BOOL, 0, 1, NM__OFF(upnp), 0},
    {"natpmp", NM__T_BOOL, 0, 1, NM__OFF(natpmp), 0},
    {"pcp", NM__T_BOOL, 0, 1, NM__OFF(pcp), 0},
    {"lease", NM__T_U32, 30, 604800, NM__OFF(lease_s), 0},
    {"discover_ms", NM__T_U32, 100, 10000, NM__OFF(upnp_discover_ms), 0},
    {"natpmp_timeout_ms", NM__T_U32, 250, 10000, NM__OFF(natpmp_timeout_ms), 0},
    {"pcp_timeout_ms", NM__T_U32, 250, 30000, NM__OFF(pcp_timeout_ms), 0},
    {"check", NM__T_U32, 5, 3600, NM__OFF(check_s), 0},
    {"retry", NM__T_U32, 10, 86400, NM__OFF(retry_s), 0},
    {"proto", NM__T_PROTO, 0, 0, NM__OFF(proto), 0},
    {"gateway", NM__T_IPV4, 0, 0, NM__OFF(natpmp_gateway), NM__SZ(natpmp_gateway)},
    {"description", NM__T_STR, 1, 0, NM__OFF(description), NM__SZ(description)},
    {"upnp_url", NM__T_URL, 0, 0, NM__OFF(upnp_url), NM__SZ(upnp_url)},
};

void nm_portmap_config_default(nm_portmap_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->upnp = 1;
  cfg->natpmp = 1;
  cfg->pcp = 1;
  cfg->lease_s = 3600;
  cfg->upnp_discover_ms = 2000;
  cfg->natpmp_timeout_ms = 3000;
  cfg->pcp_timeout_ms = 5000;
  cfg->check_s = 60;
  cfg->retry_s = 60;
  cfg->upnp_port_attempts = 8;
  cfg->proto = NM_PM_TCP;
  snprintf(cfg->description, sizeof(cfg->description), "natmesh");
}

/* Writes the message naming the offending element and value; returns EINVAL
 * so callers can `return nm__fail(...)`. */
static int nm__fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int nm__fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  if (err != NULL && errlen > 0) {
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return NM_PM_EINVAL;
}

int nm_portmap_config_set(nm_portmap_config *cfg, const char *key, const char *value,
                          char *err, size_t errlen) {
  const nm__key *k = NULL;
  char *base = (char *)cfg;
  size_t i;

  if (cfg == NULL || key == NULL || value == NULL)
    return nm__fail(err, errlen, "nat: missing key or value");
  for (i = 0; i < sizeof(nm__keys) / sizeof(nm__keys[0]); i++)
    if (strcmp(nm__keys[i].name, key) == 0)
      k = &nm__keys[i];
  if (k == NULL)
    return nm__fail(err, errlen, "nat: unknown element <%s> (value \"%s\")", key, value);

  switch (k->type) {
  case NM__T_BOOL: {
    int v;
    if (strcmp(value, "on") == 0 || strcmp(value, "yes") == 0 || strcmp(value, "1") == 0)
      v = 1;
    else if (strcmp(value, "off") == 0 || strcmp(value, "no") == 0 || strcmp(value, "0") == 0)
      v = 0;
    else
      return nm__fail(err, errlen, "nat: <%s> must be on or off, not \"%s\"", key, value);
    *(int *)(void *)(base + k->off) = v;
    return 0;
  }
  case NM__T_U32: {
    char *end;
    unsigned long v;
    if (value[0] < '0' || value[0] > '9') /* strtoul would accept "-1" and " 5" */
      return nm__fail(err, errlen, "nat: <%s> \"%s\" is not a number (allowed %u..%u)", key,
                      value, (unsigned)k->min, (unsigned)k->max);
    errno = 0;
    v = strtoul(value, &end, 10);
    if (errno != 0 || *end != '\0' || v < k->min || v > k->max)
      return nm__fail(err, errlen, "nat: <%s> \"%s\" is out of range (allowed %u..%u)", key,
                      value, (unsigned)k->min, (unsigned)k->max);
    *(uint32_t *)(void *)(base + k->off) = (uint32_t)v;
    return 0;
  }
  case NM__T_PROTO:
    if (strcmp(value, "tcp") == 0)
      cfg->proto = NM_PM_TCP;
    else if (strcmp(value, "udp") == 0)
      cfg->proto = NM_PM_UDP;
    else
      return nm__fail(err, errlen, "nat: <%s> must be tcp or udp, not \"%s\"", key, value);
    return 0;
  case NM__T_IPV4: {
    struct in_addr a;
    if (value[0] != '\0' && inet_pton(AF_INET, value, &a) != 1)
      return nm__fail(err, errlen, "nat: <%s> \"%s\" is not an IPv4 address", key, value);
    snprintf(base + k->off, k->size, "%s", value);
    return 0;
  }
  case NM__T_URL:
    /* miniupnpc speaks plain HTTP only; anything else would fail later, less clearly */
    if (value[0] != '\0' && (strncmp(value, "http://", 7) != 0 || strlen(value) >= k->size ||
                             strpbrk(value, " \t\r\n") != NULL))
      return nm__fail(err, errlen, "nat: <%s> \"%s\" must be empty or an http:// URL under %u "
                      "characters", key, value, (unsigned)k->size);
    snprintf(base + k->off, k->size, "%s", value);
    return 0;
  case NM__T_STR:
    if (strlen(value) < k->min || strlen(value) >= k->size)
      return nm__fail(err, errlen, "nat: <%s> \"%s\" must be %u..%u characters", key, value,
                      (unsigned)k->min, (unsigned)(k->size - 1));
    snprintf(base + k->off, k->size, "%s", value);
    return 0;
  }
  return NM_PM_EINVAL;
}
