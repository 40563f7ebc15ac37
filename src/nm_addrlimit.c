#include "nm_addrlimit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <uv.h>

void nm_addrlimit_config_default(nm_addrlimit_config *cfg) {
  cfg->per_addr = NM_ADDRLIMIT_PER_ADDR;
  cfg->total = NM_ADDRLIMIT_TOTAL;
  cfg->v4_prefix = 32;
  cfg->v6_prefix = 64;
}

int nm_addrlimit_init(nm_addrlimit *l, const nm_addrlimit_config *cfg) {
  nm_addrlimit_config def;
  size_t slots = 1;
  memset(l, 0, sizeof *l);
  if (!cfg) {
    nm_addrlimit_config_default(&def);
    cfg = &def;
  }
  if (cfg->total == 0 || cfg->total > NM_ADDRLIMIT_TOTAL_MAX || cfg->per_addr == 0 ||
      cfg->per_addr > cfg->total || cfg->v4_prefix == 0 || cfg->v4_prefix > 32 ||
      cfg->v6_prefix == 0 || cfg->v6_prefix > 128)
    return -EINVAL;
  /* At most total distinct addresses hold slots: at most half full, short probe runs. */
  while (slots < 2 * (size_t)cfg->total) slots *= 2;
  l->slots = calloc(slots, sizeof *l->slots);
  if (!l->slots) return -ENOMEM;
  l->cfg = *cfg;
  l->mask = slots - 1;
  if (RAND_bytes((unsigned char *)&l->seed, sizeof l->seed) != 1) {
    /* Not a secret, only a spread: a fixed seed makes collisions easier to aim, and
     * lookups are bounded by total regardless. */
    ERR_clear_error();
    l->seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)l;
  }
  return 0;
}

void nm_addrlimit_close(nm_addrlimit *l) {
  free(l->slots);
  memset(l, 0, sizeof *l);
}

/* ---- addresses as keys ------------------------------------------------------------------ */

static const unsigned char nm__v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Keeps the first bits of key[from..16) and clears the rest. */
static void nm__mask(unsigned char key[16], unsigned from, unsigned bits) {
  for (unsigned i = from; i < 16; i++) {
    unsigned have = (i - from) * 8; /* bits of the address before this byte */
    if (have >= bits) key[i] = 0;
    else if (bits - have < 8) key[i] &= (unsigned char)(0xff00u >> (bits - have));
  }
}

/* 16 raw bytes (IPv4 already mapped) into the key: the prefix that counts as one address. */
static void nm__key_of(const nm_addrlimit *l, unsigned char key[16]) {
  if (memcmp(key, nm__v4_mapped, sizeof nm__v4_mapped) == 0)
    nm__mask(key, 12, l->cfg.v4_prefix);
  else
    nm__mask(key, 0, l->cfg.v6_prefix);
}

static int nm__key_from_ip(const nm_addrlimit *l, const char *ip, unsigned char key[16]) {
  unsigned char v4[4];
  if (!ip || strnlen(ip, 64) >= 64) return -EINVAL;
  if (uv_inet_pton(AF_INET, ip, v4) == 0) {
    memcpy(key, nm__v4_mapped, 12);
    memcpy(key + 12, v4, 4);
  } else if (!strchr(ip, '%') && uv_inet_pton(AF_INET6, ip, key) == 0) {
    /* (no zone: "fe80::1%eth0" is not an address a peer can be seen from) */
  } else {
    return -EINVAL;
  }
  nm__key_of(l, key);
  return 0;
}

static int nm__key_from_sa(const nm_addrlimit *l, const struct sockaddr *sa,
                           unsigned char key[16]) {
  if (!sa) return -EINVAL;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    memcpy(key, nm__v4_mapped, 12);
    memcpy(key + 12, &in->sin_addr, 4);
  } else if (sa->sa_family == AF_INET6) {
    memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
  } else {
    return -EINVAL;
  }
  nm__key_of(l, key);
  return 0;
}

/* ---- the table ---------------------------------------------------------------------------- */

static uint64_t nm__mix(uint64_t h) {
  /* The 64-bit finalizer of MurmurHash3: every input bit affects every output bit. */
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

static size_t nm__home(const nm_addrlimit *l, const unsigned char key[16]) {
  uint64_t a, b;
  memcpy(&a, key, 8);
  memcpy(&b, key + 8, 8);
  return (size_t)nm__mix(nm__mix(l->seed ^ a) ^ b) & l->mask;
}

/* The slot holding key, or the empty slot where it would go; *found says which. */
static size_t nm__find(const nm_addrlimit *l, const unsigned char key[16], int *found) {
  size_t i = nm__home(l, key);
  for (; l->slots[i].count; i = (i + 1) & l->mask)
    if (memcmp(l->slots[i].key, key, 16) == 0) {
      *found = 1;
      return i;
    }
  *found = 0;
  return i;
}

/* Empties slot i and moves later entries of its probe run back (no tombstones). */
static void nm__unslot(nm_addrlimit *l, size_t i) {
  size_t j = i;
  l->slots[i].count = 0;
  for (;;) {
    j = (j + 1) & l->mask;
    if (!l->slots[j].count) return;
    size_t home = nm__home(l, l->slots[j].key);
    int stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
    if (stays) continue;
    l->slots[i] = l->slots[j];
    l->slots[j].count = 0;
    i = j;
  }
}

static int nm__acquire(nm_addrlimit *l, const unsigned char key[16]) {
  int found;
  size_t i = nm__find(l, key, &found);
  /* The address's own cap first, so the log names the address that is over it. */
  if (found && l->slots[i].count >= l->cfg.per_addr) return -EMFILE;
  if (l->held >= l->cfg.total) return -ENFILE;
  if (!found) memcpy(l->slots[i].key, key, 16);
  l->slots[i].count++;
  l->held++;
  return 0;
}

static int nm__release(nm_addrlimit *l, const unsigned char key[16]) {
  int found;
  size_t i = nm__find(l, key, &found);
  if (!found) return -ENOENT;
  l->held--;
  if (--l->slots[i].count == 0) nm__unslot(l, i);
  return 0;
}

int nm_addrlimit_acquire(nm_addrlimit *l, const char *ip) {
  unsigned char key[16];
  int rc = nm__key_from_ip(l, ip, key);
  return rc < 0 ? rc : nm__acquire(l, key);
}

int nm_addrlimit_release(nm_addrlimit *l, const char *ip) {
  unsigned char key[16];
  int rc = nm__key_from_ip(l, ip, key);
  return rc < 0 ? rc : nm__release(l, key);
}

int nm_addrlimit_acquire_sa(nm_addrlimit *l, const struct sockaddr *sa) {
  unsigned char key[16];
  int rc = nm__key_from_sa(l, sa, key);
  return rc < 0 ? rc : nm__acquire(l, key);
}

int nm_addrlimit_release_sa(nm_addrlimit *l, const struct sockaddr *sa) {
  unsigned char key[16];
  int rc = nm__key_from_sa(l, sa, key);
  return rc < 0 ? rc : nm__release(l, key);
}

unsigned nm_addrlimit_count(const nm_addrlimit *l, const char *ip) {
  unsigned char key[16];
  int found;
  if (nm__key_from_ip(l, ip, key) < 0) return 0;
  size_t i = nm__find(l, key, &found);
  return found ? l->slots[i].count : 0;
}

size_t nm_addrlimit_held(const nm_addrlimit *l) { return l->held; }

const char *nm_addrlimit_strerror(int rc) {
  switch (rc) {
  case 0: return "accepted";
  case -EMFILE: return "too many unauthenticated connections from this address";
  case -ENFILE: return "too many unauthenticated connections";
  case -EINVAL: return "not an IP address";
  case -ENOENT: return "no connection held for this address";
  default: return "unknown result";
  }
}
