/* libFuzzer target: the config loader (nm_config_load) with the very tables of the three
 * programs that read config files: natmesh-servant (<config>), natmesh-relay (<relay>) and
 * natmesh-manager (<manager>), compiled in from src/servant/config_fields.c and
 * src/manager/config_fields.c: every kind of value (string, bounded uint, bool, ban list,
 * key list, one key, an invite) and nested sections. The input is written to a memory file,
 * since the loader reads a path; the root element picks the table. Whatever is accepted must hold: strings terminated
 * within their size, numbers within their row's bounds, booleans 0 or 1, bans non-empty,
 * keys 64 lowercase hex characters, each listed once; an invite one the parser accepts, or
 * "@FILE";
 * whatever is refused must say so, naming the file. */
#include "cli.h"
#include "manager.h"
#include "nm_config.h"
#include "nm_invite.h"
#include "nm_proto.h"
#include "nm_xml.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Defaults inside every row's bounds, so that a value left alone passes the checks too. */
static void fz_defaults(const nm_cfg_field *fields, size_t n, void *out) {
  for (size_t i = 0; i < n; i++)
    if (fields[i].type == NM_CFG_UINT) *(unsigned *)((char *)out + fields[i].offset) = fields[i].min;
}

static void fz_check(const nm_cfg_field *fields, size_t n, const void *cfg) {
  for (size_t i = 0; i < n; i++) {
    const char *p = (const char *)cfg + fields[i].offset;
    switch (fields[i].type) {
    case NM_CFG_STRING:
      if (!memchr(p, 0, fields[i].size)) abort();
      break;
    case NM_CFG_UINT: {
      unsigned v = *(const unsigned *)p;
      if (v < fields[i].min || v > fields[i].max) abort();
      break;
    }
    case NM_CFG_BOOL: {
      int v = *(const int *)p;
      if (v != 0 && v != 1) abort();
      break;
    }
    case NM_CFG_BANS: {
      const nm_banlist *b = (const nm_banlist *)p;
      if (b->count > NM_BANS_MAX) abort();
      for (size_t k = 0; k < b->count; k++)
        if (!b->targets[k][0] || !memchr(b->targets[k], 0, NM_BAN_TARGET_MAX)) abort();
      break;
    }
    case NM_CFG_CHOICE:
      if (!memchr(p, 0, fields[i].size)) abort();
      if (p[0] && (strstr(fields[i].choices, p) == NULL || strchr(p, '|'))) abort();
      break;
    case NM_CFG_KEY:
      if (!memchr(p, 0, fields[i].size)) abort();
      if (p[0] && (strlen(p) != 64 || strspn(p, "0123456789abcdef") != 64)) abort();
      break;
    case NM_CFG_INVITE: {
      if (!memchr(p, 0, fields[i].size)) abort();
      nm_invite inv;
      char why[200];
      if (p[0] && p[0] != '@' && nm_invite_parse(p, &inv, why, sizeof why) < 0) abort();
      break;
    }
    case NM_CFG_KEYS: {
      const nm_keylist *l = (const nm_keylist *)p;
      if (l->count > NM_KEYLIST_MAX || l->count > l->cap) abort();
      for (size_t k = 0; k < l->count; k++) {
        if (strlen(l->fps[k]) != NM_KEYLIST_FP_LEN ||
            strspn(l->fps[k], "0123456789abcdef") != NM_KEYLIST_FP_LEN)
          abort();
        for (size_t j = 0; j < k; j++)
          if (!strcmp(l->fps[j], l->fps[k])) abort();
      }
      break;
    }
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
    nm_xml_init();
    fd = memfd_create("fuzz-config", 0);
    if (fd < 0) abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size) abort();

  /* The root element picks the program; anything else is loaded as a servant's config
   * (and refused for its root). */
  const char *root = "config";
  xmlDoc *doc;
  char err[512];
  if (nm_xml_parse((const char *)data, size, &doc, err, sizeof err) == 0) {
    const char *name = (const char *)xmlDocGetRootElement(doc)->name;
    if (!strcmp(name, "relay")) root = "relay";
    else if (!strcmp(name, "manager")) root = "manager";
    xmlFreeDoc(doc);
  }

  static sv_config peer;
  static mgr_config mgr;
  const nm_cfg_field *fields;
  size_t n;
  void *cfg;
  if (!strcmp(root, "manager")) {
    fields = mgr_config_fields, n = mgr_config_nfields, cfg = &mgr;
    memset(&mgr, 0, sizeof mgr);
  } else {
    fields = root[0] == 'r' ? sv_relay_fields : sv_servant_fields;
    n = root[0] == 'r' ? sv_relay_nfields : sv_servant_nfields;
    cfg = &peer;
    memset(&peer, 0, sizeof peer);
  }
  fz_defaults(fields, n, cfg);
  err[0] = 0;
  if (nm_config_load(path, root, fields, n, cfg, err, sizeof err) == 0)
    fz_check(fields, n, cfg);
  else if (strncmp(err, path, strlen(path)) != 0) /* a refusal names the file */
    abort();
  /* Key lists are the owner's to free, loaded or refused. */
  for (size_t i = 0; i < n; i++)
    if (fields[i].type == NM_CFG_KEYS) nm_keylist_free((nm_keylist *)((char *)cfg + fields[i].offset));
  return 0;
}
