#include "nm_config.h"
#include "nm_error.h"
#include "nm_util.h"
#include "nm_xml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

int nm_banlist_add(nm_banlist *b, const char *target) {
  size_t n = strlen(target);
  if (n == 0 || n >= NM_BAN_TARGET_MAX) return -EINVAL;
  if (b->count >= NM_BANS_MAX) return -ENOSPC;
  memcpy(b->targets[b->count++], target, n + 1);
  return 0;
}

int nm_banlist_match(const nm_banlist *b, const char *ip, const char *hostname) {
  for (size_t i = 0; i < b->count; i++) {
    if (nm_ban_target_is_key(b->targets[i])) continue;
    if (ip && strcmp(b->targets[i], ip) == 0) return 1;
    if (hostname && hostname[0] && strcasecmp(b->targets[i], hostname) == 0) return 1;
  }
  return 0;
}

int nm_ban_target_is_key(const char *target) {
  size_t n = strspn(target, "0123456789abcdefABCDEF");
  return target[n] == 0 && n >= NM_BAN_KEY_MIN && n <= 64;
}

int nm_banlist_match_key(const nm_banlist *b, const char *fingerprint) {
  if (!fingerprint) return 0;
  for (size_t i = 0; i < b->count; i++)
    if (nm_ban_target_is_key(b->targets[i]) &&
        strncasecmp(b->targets[i], fingerprint, strlen(b->targets[i])) == 0)
      return 1;
  return 0;
}

int nm_banlist_has_names(const nm_banlist *b) {
  unsigned char buf[16];
  for (size_t i = 0; i < b->count; i++) {
    const char *t = b->targets[i];
    if (!nm_ban_target_is_key(t) && uv_inet_pton(AF_INET, t, buf) != 0 && uv_inet_pton(AF_INET6, t, buf) != 0)
      return 1;
  }
  return 0;
}

int nm_keylist_add(nm_keylist *l, const char *fp) {
  char low[NM_KEYLIST_FP_LEN + 1];
  if (!fp || strlen(fp) != NM_KEYLIST_FP_LEN) return -EINVAL;
  for (size_t i = 0; i < NM_KEYLIST_FP_LEN; i++) {
    char c = fp[i];
    if (c >= 'A' && c <= 'F') c = (char)(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return -EINVAL;
    low[i] = c;
  }
  low[NM_KEYLIST_FP_LEN] = 0;
  if (nm_keylist_has(l, low)) return 0;
  if (l->count == l->cap) {
    if (l->cap >= NM_KEYLIST_MAX) return -ENOSPC;
    size_t ncap = l->cap ? 2 * l->cap : 8;
    if (ncap > NM_KEYLIST_MAX) ncap = NM_KEYLIST_MAX;
    void *n = realloc(l->fps, ncap * sizeof *l->fps);
    if (!n) return -ENOMEM;
    l->fps = n;
    l->cap = ncap;
  }
  memcpy(l->fps[l->count++], low, sizeof low);
  return 0;
}

int nm_keylist_has(const nm_keylist *l, const char *fp) {
  for (size_t i = 0; i < l->count; i++)
    if (strcmp(l->fps[i], fp) == 0) return 1;
  return 0;
}

void nm_keylist_free(nm_keylist *l) {
  free(l->fps);
  memset(l, 0, sizeof *l);
}

/* Copies the element's text without surrounding white space into buf. */
static const char *nm__trimmed(xmlNode *n, char *buf, size_t buflen) {
  const char *t = (n->children && n->children->type == XML_TEXT_NODE && n->children->content)
                      ? (const char *)n->children->content
                      : "";
  while (*t == ' ' || *t == '\t' || *t == '\n' || *t == '\r') t++;
  size_t len = strlen(t);
  while (len && (t[len - 1] == ' ' || t[len - 1] == '\t' || t[len - 1] == '\n' || t[len - 1] == '\r'))
    len--;
  if (len >= buflen) return NULL;
  memcpy(buf, t, len);
  buf[len] = 0;
  return buf;
}

static const nm_cfg_field *nm__find_field(const nm_cfg_field *fields, size_t n, const char *path) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(fields[i].path, path) == 0) return &fields[i];
  return NULL;
}

/* A path that is a prefix of some field's path is a section: descend into it. */
static int nm__is_section(const nm_cfg_field *fields, size_t n, const char *path) {
  size_t len = strlen(path);
  for (size_t i = 0; i < n; i++)
    if (strncmp(fields[i].path, path, len) == 0 && fields[i].path[len] == '/') return 1;
  return 0;
}

static int nm__parse_bool(const char *v, int *out) {
  static const char *yes[] = {"on", "yes", "true", "1"}, *no[] = {"off", "no", "false", "0"};
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(v, yes[i]) == 0) return *out = 1, 0;
    if (strcasecmp(v, no[i]) == 0) return *out = 0, 0;
  }
  return -1;
}

static int nm__load_bans(const char *file, xmlNode *bans, nm_banlist *out, char *err,
                         size_t errlen) {
  for (xmlNode *b = bans->children; b; b = b->next) {
    if (b->type != XML_ELEMENT_NODE) continue;
    xmlNode *t = strcmp((const char *)b->name, "ban") == 0 ? nm_xml_child(b, "target") : NULL;
    char buf[NM_BAN_TARGET_MAX];
    const char *v = t ? nm__trimmed(t, buf, sizeof buf) : NULL;
    if (!v || !*v) {
      snprintf(err, errlen, "%s:%ld: expected <ban><target>IP, host name or key fingerprint</target></ban>", file,
               xmlGetLineNo(b));
      return NM_ECONFIG;
    }
    if (nm_banlist_add(out, v) < 0) {
      snprintf(err, errlen, "%s:%ld: too many bans (at most %d)", file, xmlGetLineNo(b),
               NM_BANS_MAX);
      return NM_ECONFIG;
    }
  }
  return 0;
}

static int nm__load_value(const char *file, xmlNode *n, const nm_cfg_field *f, void *out,
                          char *err, size_t errlen) {
  char buf[1024];
  long line = xmlGetLineNo(n);
  if (f->type == NM_CFG_BANS) return nm__load_bans(file, n, (nm_banlist *)((char *)out + f->offset), err, errlen);
  const char *v = nm__trimmed(n, buf, sizeof buf);
  if (!v) {
    snprintf(err, errlen, "%s:%ld: <%s> value is too long", file, line, f->path);
    return NM_ECONFIG;
  }
  switch (f->type) {
  case NM_CFG_STRING:
    if (strlen(v) >= f->size || !*v) {
      snprintf(err, errlen, "%s:%ld: <%s> must be 1 to %zu characters, got \"%.60s\"", file,
               line, f->path, f->size - 1, v);
      return NM_ECONFIG;
    }
    memcpy((char *)out + f->offset, v, strlen(v) + 1);
    return 0;
  case NM_CFG_UINT: {
    uint64_t x;
    if (nm_parse_u64(v, strlen(v), &x) < 0 || x < f->min || x > f->max) {
      snprintf(err, errlen, "%s:%ld: <%s> must be a number from %u to %u, got \"%.60s\"", file,
               line, f->path, f->min, f->max, v);
      return NM_ECONFIG;
    }
    *(unsigned *)((char *)out + f->offset) = (unsigned)x;
    return 0;
  }
  case NM_CFG_BOOL:
    if (nm__parse_bool(v, (int *)((char *)out + f->offset)) < 0) {
      snprintf(err, errlen, "%s:%ld: <%s> must be on or off, got \"%.60s\"", file, line, f->path, v);
      return NM_ECONFIG;
    }
    return 0;
  case NM_CFG_KEYS: {
    int rc = nm_keylist_add((nm_keylist *)((char *)out + f->offset), v);
    if (rc == -ENOSPC)
      snprintf(err, errlen, "%s:%ld: too many <%s> elements (at most %d)", file, line, f->path,
               NM_KEYLIST_MAX);
    else if (rc == -ENOMEM)
      snprintf(err, errlen, "%s:%ld: out of memory", file, line);
    else if (rc < 0)
      snprintf(err, errlen, "%s:%ld: <%s> must be a key fingerprint (64 hex characters), got \"%.70s\"",
               file, line, f->path, v);
    return rc < 0 ? NM_ECONFIG : 0;
  }
  default:
    return NM_ECONFIG;
  }
}

static int nm__load_children(const char *file, xmlNode *parent, const char *prefix,
                             const nm_cfg_field *fields, size_t nfields, void *out, char *err,
                             size_t errlen) {
  for (xmlNode *c = parent->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) continue;
    char path[128];
    snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "/" : "", (const char *)c->name);
    const nm_cfg_field *f = nm__find_field(fields, nfields, path);
    int rc;
    if (f)
      rc = nm__load_value(file, c, f, out, err, errlen);
    else if (nm__is_section(fields, nfields, path))
      rc = nm__load_children(file, c, path, fields, nfields, out, err, errlen);
    else {
      snprintf(err, errlen, "%s:%ld: unknown element <%s>", file, xmlGetLineNo(c), path);
      rc = NM_ECONFIG;
    }
    if (rc < 0) return rc;
  }
  return 0;
}

int nm_config_load(const char *path, const char *root, const nm_cfg_field *fields,
                   size_t nfields, void *out, char *err, size_t errlen) {
  xmlDoc *doc;
  char perr[512];
  int rc = nm_xml_parse_file(path, &doc, perr, sizeof perr);
  if (rc < 0) {
    snprintf(err, errlen, "%s", perr);
    return NM_ECONFIG;
  }
  xmlNode *r = xmlDocGetRootElement(doc);
  if (strcmp((const char *)r->name, root) != 0) {
    snprintf(err, errlen, "%s:%ld: the root element must be <%s>, not <%s>", path,
             xmlGetLineNo(r), root, (const char *)r->name);
    xmlFreeDoc(doc);
    return NM_ECONFIG;
  }
  rc = nm__load_children(path, r, "", fields, nfields, out, err, errlen);
  xmlFreeDoc(doc);
  return rc;
}
