#include "pcap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NSIM__LINKTYPE_ETHERNET 1
#define NSIM__TLS_RECORD_MAX (16384 + 2048) /* TLSCiphertext.length's limit (RFC 8446 5.2) */

static uint32_t nsim__rd32(const unsigned char *p, int swap) {
  uint32_t v;
  memcpy(&v, p, 4);
  return swap ? __builtin_bswap32(v) : v;
}

static uint16_t nsim__be16(const unsigned char *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t nsim__be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void nsim__ip(uint32_t ip, char *out, size_t len) {
  snprintf(out, len, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

/* The connection a segment belongs to, and the direction (0 from the client). A pure SYN
 * with a new initial sequence number on a known 4-tuple starts a new connection. */
static struct nsim_pcap_conn *nsim__conn(struct nsim_pcap_result *res, uint32_t sip,
                                         uint16_t sport, uint32_t dip, uint16_t dport,
                                         int pure_syn, uint32_t seq, int *dir) {
  for (int i = res->nconns - 1; i >= 0; i--) {
    struct nsim_pcap_conn *c = &res->conns[i];
    int d;
    if (c->ip[0] == sip && c->port[0] == sport && c->ip[1] == dip && c->port[1] == dport) d = 0;
    else if (c->ip[1] == sip && c->port[1] == sport && c->ip[0] == dip && c->port[0] == dport) d = 1;
    else continue;
    if (pure_syn && !(d == 0 && c->syn_seen && c->isn == seq)) break; /* a new connection */
    *dir = d;
    return c;
  }
  if (res->nconns >= NSIM_PCAP_MAX_CONNS) {
    res->conns_dropped++;
    return NULL;
  }
  struct nsim_pcap_conn *c = &res->conns[res->nconns++];
  memset(c, 0, sizeof *c);
  c->ip[0] = sip, c->port[0] = sport, c->ip[1] = dip, c->port[1] = dport;
  if (pure_syn) c->syn_seen = 1, c->isn = seq;
  *dir = 0;
  return c;
}

static int nsim__append(struct nsim_pcap_conn *c, int d, const unsigned char *p, size_t n) {
  if (c->len[d] + n > c->cap[d]) {
    size_t cap = c->cap[d] ? c->cap[d] : 4096;
    while (cap < c->len[d] + n) cap *= 2;
    unsigned char *b = realloc(c->buf[d], cap);
    if (!b) return -ENOMEM;
    c->buf[d] = b, c->cap[d] = cap;
  }
  memcpy(c->buf[d] + c->len[d], p, n);
  c->len[d] += n;
  return 0;
}

/* One TCP segment into its connection's stream, in sequence order. */
static int nsim__segment(struct nsim_pcap_conn *c, int d, uint8_t flags, uint32_t seq,
                         const unsigned char *pl, size_t n) {
  int syn = flags & 0x02;
  if (syn) {
    c->next_seq[d] = seq + 1;
    c->seq_known[d] = 1;
    return 0;
  }
  if (!n || c->gap[d]) return 0;
  if (!c->seq_known[d]) {
    /* Joined mid-stream: follow from here, but the connection cannot be judged. */
    c->next_seq[d] = seq;
    c->seq_known[d] = 1;
  }
  int32_t off = (int32_t)(c->next_seq[d] - seq);
  if (off < 0) {
    c->gap[d] = 1; /* bytes before this one were never captured */
    return 0;
  }
  if ((size_t)off >= n) return 0; /* a copy of what was seen (retransmitted, or seen twice) */
  if (c->len[d] == 0) memcpy(c->head[d], pl + off, n - (size_t)off < 8 ? n - (size_t)off : 8);
  c->next_seq[d] += (uint32_t)(n - (size_t)off);
  c->bytes[d] += n - (size_t)off;
  return nsim__append(c, d, pl + off, n - (size_t)off);
}

/* supported_versions in a ServerHello (RFC 8446 4.1.3, 4.2.1); the legacy version without. */
static unsigned nsim__server_hello_version(const unsigned char *h, size_t n) {
  /* type(1)=2 length(3) legacy_version(2) random(32) session_id<0..32> cipher(2) comp(1) */
  if (n < 4 + 2 + 32 + 1 || h[0] != 2) return 0;
  size_t p = 4;
  unsigned legacy = nsim__be16(h + p);
  p += 2 + 32;
  p += 1 + (size_t)h[p];
  p += 2 + 1;
  if (p + 2 > n) return legacy;
  size_t end = p + 2 + nsim__be16(h + p);
  p += 2;
  if (end > n) end = n;
  while (p + 4 <= end) {
    unsigned type = nsim__be16(h + p), len = nsim__be16(h + p + 2);
    if (type == 0x002b && len == 2 && p + 6 <= end) return nsim__be16(h + p + 4);
    p += 4 + len;
  }
  return legacy;
}

/* Judges one direction: a run of TLS records from the first byte (a last record may be cut
 * short by the end of the capture or a gap). */
static void nsim__tls(struct nsim_pcap_conn *c, int d) {
  const unsigned char *b = c->buf[d];
  size_t n = c->len[d], p = 0;
  if (!n) return;
  while (p + 5 <= n) {
    unsigned type = b[p], major = b[p + 1], minor = b[p + 2], len = nsim__be16(b + p + 3);
    if (type < 20 || type > 23 || major != 3 || minor > 4 || len == 0 ||
        len > NSIM__TLS_RECORD_MAX) {
      c->tls[d] = -1;
      return;
    }
    if (type == 22 && d == 1 && !c->tls_version && p + 5 + len <= n)
      c->tls_version = nsim__server_hello_version(b + p + 5, len);
    if (type == 23) c->app_records[d]++;
    p += 5 + len;
  }
  /* A stream shorter than one record header: judged by what there is of it. */
  if (p == 0 && n < 5 && (b[0] < 20 || b[0] > 23 || (n > 1 && b[1] != 3))) {
    c->tls[d] = -1;
    return;
  }
  c->tls[d] = 1;
}

int nsim_pcap_conn_tls13(const struct nsim_pcap_conn *c) {
  return c->syn_seen && !c->gap[0] && !c->gap[1] && c->tls[0] == 1 && c->tls[1] == 1 &&
         c->tls_version == 0x0304 && c->app_records[0] > 0 && c->app_records[1] > 0;
}

int nsim_pcap_conn_not_tls13(const struct nsim_pcap_conn *c) {
  if (!c->bytes[0] && !c->bytes[1]) return 0;
  return !c->syn_seen || c->gap[0] || c->gap[1] || c->tls[0] == -1 || c->tls[1] == -1 ||
         (c->tls_version && c->tls_version != 0x0304);
}

static void nsim__where(struct nsim_pcap_result *res, int k, uint32_t a, unsigned ap, uint32_t b,
                        unsigned bp) {
  if (res->needle_where[k][0]) return;
  char x[16], y[16];
  nsim__ip(a, x, sizeof x), nsim__ip(b, y, sizeof y);
  snprintf(res->needle_where[k], sizeof res->needle_where[k], "the stream %s:%u -> %s:%u", x, ap,
           y, bp);
}

int nsim_pcap_analyze(const char *path, const char *const *needles, const size_t *needle_len,
                      int nneedles, struct nsim_pcap_result *res, char *err, size_t errlen) {
  memset(res, 0, sizeof *res);
  FILE *f = fopen(path, "re");
  if (!f) {
    int e = errno;
    snprintf(err, errlen, "%s: %s", path, strerror(e));
    return -e;
  }
  struct stat st;
  unsigned char *data = NULL;
  size_t size = 0;
  int rc = -EIO;
  if (fstat(fileno(f), &st) == 0 && st.st_size >= 0 && st.st_size < (1L << 30)) {
    size = (size_t)st.st_size;
    data = malloc(size ? size : 1);
    if (!data) rc = -ENOMEM;
    else if (fread(data, 1, size, f) == size) rc = 0;
  }
  fclose(f);
  if (rc == 0) rc = nsim_pcap_analyze_buf(data, size, needles, needle_len, nneedles, res, err,
                                          errlen);
  else snprintf(err, errlen, "%s: %s", path, rc == -ENOMEM ? "out of memory" : "cannot be read");
  free(data);
  return rc;
}

int nsim_pcap_analyze_buf(const unsigned char *data, size_t size, const char *const *needles,
                          const size_t *needle_len, int nneedles, struct nsim_pcap_result *res,
                          char *err, size_t errlen) {
  memset(res, 0, sizeof *res);
  if (nneedles > NSIM_PCAP_MAX_NEEDLES) nneedles = NSIM_PCAP_MAX_NEEDLES;
  int rc = -EINVAL;
  res->conns = calloc(NSIM_PCAP_MAX_CONNS, sizeof *res->conns);
  if (!res->conns) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  if (size < 24) {
    snprintf(err, errlen, "not a pcap file (only %zu bytes)", size);
    goto out;
  }
  uint32_t magic;
  memcpy(&magic, data, 4);
  int swap;
  if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d) swap = 0;
  else if (magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1) swap = 1;
  else {
    snprintf(err, errlen, "not a pcap file (magic %08x; pcapng is not read)", magic);
    goto out;
  }
  uint32_t linktype = nsim__rd32(data + 20, swap) & 0x0fffffff;
  if (linktype != NSIM__LINKTYPE_ETHERNET) {
    snprintf(err, errlen, "link type %u, expected Ethernet (1)", linktype);
    goto out;
  }
  size_t p = 24;
  while (p < size) {
    if (p + 16 > size) {
      res->truncated = 1;
      break;
    }
    uint32_t caplen = nsim__rd32(data + p + 8, swap);
    if (caplen > size - p - 16) {
      res->truncated = 1;
      break;
    }
    const unsigned char *fr = data + p + 16;
    p += 16 + caplen;
    unsigned long frame = ++res->frames;
    for (int k = 0; k < nneedles; k++)
      if (needles[k] && needle_len[k] && memmem(fr, caplen, needles[k], needle_len[k])) {
        if (!res->needle_frames[k]++)
          snprintf(res->needle_where[k], sizeof res->needle_where[k], "frame %lu", frame);
      }
    /* Ethernet, an optional 802.1Q tag, IPv4 */
    if (caplen < 14) continue;
    size_t e = 12;
    uint16_t et = nsim__be16(fr + e);
    if (et == 0x8100 && caplen >= 18) e += 4, et = nsim__be16(fr + e);
    if (et != 0x0800) continue;
    const unsigned char *ip = fr + e + 2;
    size_t iplen = caplen - e - 2;
    if (iplen < 20 || (ip[0] >> 4) != 4) continue;
    size_t ihl = (size_t)(ip[0] & 15) * 4, tot = nsim__be16(ip + 2);
    if (ihl < 20 || ihl > iplen) continue;
    res->ipv4++;
    if (tot == 0 || tot > iplen) tot = iplen; /* segmentation offload: the capture's length */
    if (tot < ihl) continue;                  /* a length that lies: nothing to follow */
    uint32_t sip = nsim__be32(ip + 12), dip = nsim__be32(ip + 16);
    int frag = (nsim__be16(ip + 6) & 0x3fff) != 0;
    /* ICMP errors quote a header and 8 bytes of what they answer: no payload of their own. */
    int icmp_error = ip[9] == 1 && !frag && tot > ihl &&
                     (ip[ihl] == 3 || ip[ihl] == 4 || ip[ihl] == 5 || ip[ihl] == 11 || ip[ihl] == 12);
    if (ip[9] != 6 || frag) {
      if (ip[9] == 17 && !frag && tot > ihl + 8) {
        uint16_t port = nsim__be16(ip + ihl + 2);
        int known = 0;
        for (int i = 0; i < res->nudp_ports; i++) known |= res->udp_ports[i] == port;
        if (!known && res->nudp_ports < (int)(sizeof res->udp_ports / sizeof res->udp_ports[0]))
          res->udp_ports[res->nudp_ports++] = port;
      }
      if (!icmp_error && tot > ihl + (ip[9] == 17 ? 8u : 0u)) {
        if (!res->other_payload++) {
          char x[16], y[16];
          nsim__ip(sip, x, sizeof x), nsim__ip(dip, y, sizeof y);
          snprintf(res->other_desc, sizeof res->other_desc, "%s %s -> %s (frame %lu)",
                   frag ? "IP fragment" : ip[9] == 17 ? "UDP" : "IP protocol", x, y, frame);
        }
      }
      continue;
    }
    const unsigned char *tcp = ip + ihl;
    size_t tlen = tot - ihl;
    if (tlen < 20) continue;
    size_t thl = (size_t)(tcp[12] >> 4) * 4;
    if (thl < 20 || thl > tlen) continue;
    res->tcp++;
    uint16_t sport = nsim__be16(tcp), dport = nsim__be16(tcp + 2);
    uint32_t seq = nsim__be32(tcp + 4);
    uint8_t flags = tcp[13];
    int pure_syn = (flags & 0x12) == 0x02, d;
    size_t n = tlen - thl;
    if (n) res->tcp_payload++;
    struct nsim_pcap_conn *c = nsim__conn(res, sip, sport, dip, dport, pure_syn, seq, &d);
    if (c && nsim__segment(c, d, flags, seq, tcp + thl, n) < 0) {
      snprintf(err, errlen, "out of memory following TCP streams");
      rc = -ENOMEM;
      goto out;
    }
  }
  for (int i = 0; i < res->nconns; i++) {
    struct nsim_pcap_conn *c = &res->conns[i];
    for (int d = 0; d < 2; d++) {
      nsim__tls(c, d);
      for (int k = 0; k < nneedles; k++)
        if (needles[k] && needle_len[k] && c->len[d] &&
            memmem(c->buf[d], c->len[d], needles[k], needle_len[k])) {
          c->needle_hit[k] = 1;
          nsim__where(res, k, c->ip[d], c->port[d], c->ip[!d], c->port[!d]);
        }
      free(c->buf[d]);
      c->buf[d] = NULL;
      c->len[d] = c->cap[d] = 0;
    }
  }
  rc = 0;
out:
  if (rc < 0) nsim_pcap_free(res);
  return rc;
}

void nsim_pcap_free(struct nsim_pcap_result *res) {
  if (res->conns)
    for (int i = 0; i < res->nconns; i++) free(res->conns[i].buf[0]), free(res->conns[i].buf[1]);
  free(res->conns);
  res->conns = NULL;
  res->nconns = 0;
}
