#include "pcap.h"
#include "nm_be.h"

#include <arpa/inet.h>
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

static const uint8_t nsim__mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

void nsim_pcap_addr_v4(uint32_t ip, uint8_t out[16]) {
  memcpy(out, nsim__mapped, 12);
  out[12] = (uint8_t)(ip >> 24), out[13] = (uint8_t)(ip >> 16), out[14] = (uint8_t)(ip >> 8);
  out[15] = (uint8_t)ip;
}

static void nsim__ip(const uint8_t ip[16], char *out, size_t len) {
  if (!memcmp(ip, nsim__mapped, 12)) snprintf(out, len, "%u.%u.%u.%u", ip[12], ip[13], ip[14], ip[15]);
  else if (!inet_ntop(AF_INET6, ip, out, (socklen_t)len)) snprintf(out, len, "?");
}

void nsim_pcap_endpoint_str(const uint8_t ip[16], uint16_t port, char *out, size_t len) {
  char a[INET6_ADDRSTRLEN];
  nsim__ip(ip, a, sizeof a);
  int v6 = memcmp(ip, nsim__mapped, 12) != 0;
  snprintf(out, len, "%s%s%s:%u", v6 ? "[" : "", a, v6 ? "]" : "", port);
}

/* The connection a segment belongs to, and the direction (0 from the client). A pure SYN
 * with a new initial sequence number on a known 4-tuple starts a new connection. */
static struct nsim_pcap_conn *nsim__conn(struct nsim_pcap_result *res, const uint8_t *sip,
                                         uint16_t sport, const uint8_t *dip, uint16_t dport,
                                         int pure_syn, uint32_t seq, int *dir) {
  for (int i = res->nconns - 1; i >= 0; i--) {
    struct nsim_pcap_conn *c = &res->conns[i];
    int d;
    if (c->port[0] == sport && c->port[1] == dport && !memcmp(c->ip[0], sip, 16) &&
        !memcmp(c->ip[1], dip, 16))
      d = 0;
    else if (c->port[1] == sport && c->port[0] == dport && !memcmp(c->ip[1], sip, 16) &&
             !memcmp(c->ip[0], dip, 16))
      d = 1;
    else
      continue;
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
  memcpy(c->ip[0], sip, 16), memcpy(c->ip[1], dip, 16);
  c->port[0] = sport, c->port[1] = dport;
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
  unsigned legacy = nm_be16_get(h + p);
  p += 2 + 32;
  p += 1 + (size_t)h[p];
  p += 2 + 1;
  if (p + 2 > n) return legacy;
  size_t end = p + 2 + nm_be16_get(h + p);
  p += 2;
  if (end > n) end = n;
  while (p + 4 <= end) {
    unsigned type = nm_be16_get(h + p), len = nm_be16_get(h + p + 2);
    if (type == 0x002b && len == 2 && p + 6 <= end) return nm_be16_get(h + p + 4);
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
    unsigned type = b[p], major = b[p + 1], minor = b[p + 2], len = nm_be16_get(b + p + 3);
    if (type < 20 || type > 23 || major != 3 || minor > 4 || len == 0 ||
        len > NSIM__TLS_RECORD_MAX) {
      c->tls[d] = -1;
      return;
    }
    /* The ServerHello, from whichever side sends it: after a simultaneous open (hole
     * punching) the TLS server may well be the side whose SYN came first. (A ClientHello is
     * handshake type 1, not 2: it gives no version.) */
    if (type == 22 && !c->tls_version && p + 5 + len <= n)
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

static void nsim__where(struct nsim_pcap_result *res, int k, const uint8_t *a, unsigned ap,
                        const uint8_t *b, unsigned bp) {
  if (res->needle_where[k][0]) return;
  char x[64], y[64];
  nsim_pcap_endpoint_str(a, (uint16_t)ap, x, sizeof x);
  nsim_pcap_endpoint_str(b, (uint16_t)bp, y, sizeof y);
  snprintf(res->needle_where[k], sizeof res->needle_where[k], "the stream %s -> %s", x, y);
}

/* One IP packet's layer 3, whichever version: addresses (IPv4 v4-mapped), the transport
 * protocol and where its header starts, and how long it is. */
struct nsim__l3 {
  uint8_t src[16], dst[16];
  unsigned proto;           /* 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ... */
  const unsigned char *l4;
  size_t l4len;
  int frag;                 /* a fragment: not followed */
};

/* IPv4: 0 with l3 filled in, -1 when not a packet to look at. */
static int nsim__ipv4(const unsigned char *ip, size_t iplen, struct nsim__l3 *l3) {
  if (iplen < 20 || (ip[0] >> 4) != 4) return -1;
  size_t ihl = (size_t)(ip[0] & 15) * 4, tot = nm_be16_get(ip + 2);
  if (ihl < 20 || ihl > iplen) return -1;
  if (tot == 0 || tot > iplen) tot = iplen; /* segmentation offload: the capture's length */
  if (tot < ihl) return -1;                 /* a length that lies: nothing to follow */
  nsim_pcap_addr_v4(nm_be32_get(ip + 12), l3->src);
  nsim_pcap_addr_v4(nm_be32_get(ip + 16), l3->dst);
  l3->proto = ip[9];
  l3->frag = (nm_be16_get(ip + 6) & 0x3fff) != 0;
  l3->l4 = ip + ihl;
  l3->l4len = tot - ihl;
  return 0;
}

/* IPv6, skipping hop-by-hop, routing and destination-options headers; a fragment header
 * makes it a fragment. 0 with l3 filled in, -1 when not a packet to look at. */
static int nsim__ipv6(const unsigned char *ip, size_t iplen, struct nsim__l3 *l3) {
  if (iplen < 40 || (ip[0] >> 4) != 6) return -1;
  size_t tot = 40 + (size_t)nm_be16_get(ip + 4);
  if (tot == 40 || tot > iplen) tot = iplen; /* jumbogram or offload: the capture's length */
  memcpy(l3->src, ip + 8, 16);
  memcpy(l3->dst, ip + 24, 16);
  unsigned nh = ip[6];
  size_t p = 40;
  l3->frag = 0;
  for (int hops = 0; hops < 8; hops++) {
    if (nh == 0 || nh == 43 || nh == 60) {
      if (p + 8 > tot) return -1;
      unsigned next = ip[p];
      p += ((size_t)ip[p + 1] + 1) * 8;
      nh = next;
      continue;
    }
    if (nh == 44) {
      if (p + 8 > tot) return -1;
      l3->frag = 1;
      nh = ip[p];
      p += 8;
    }
    break;
  }
  if (p > tot) return -1;
  l3->proto = nh;
  l3->l4 = ip + p;
  l3->l4len = tot - p;
  return 0;
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
    /* Ethernet, an optional 802.1Q tag, IPv4 or IPv6 */
    if (caplen < 14) continue;
    size_t e = 12;
    uint16_t et = nm_be16_get(fr + e);
    if (et == 0x8100 && caplen >= 18) e += 4, et = nm_be16_get(fr + e);
    if (et != 0x0800 && et != 0x86dd) continue;
    struct nsim__l3 l3;
    if ((et == 0x0800 ? nsim__ipv4 : nsim__ipv6)(fr + e + 2, caplen - e - 2, &l3) < 0) continue;
    if (et == 0x0800) res->ipv4++;
    else res->ipv6++;
    /* Control, no payload of its own: ICMP errors (they quote a header and 8 bytes of what
     * they answer) and all of ICMPv6 (neighbour discovery, MLD, errors, echo). */
    int control = l3.proto == 58 ||
                  (l3.proto == 1 && !l3.frag && l3.l4len > 0 &&
                   (l3.l4[0] == 3 || l3.l4[0] == 4 || l3.l4[0] == 5 || l3.l4[0] == 11 || l3.l4[0] == 12));
    if (l3.proto != 6 || l3.frag) {
      if (l3.proto == 17 && !l3.frag && l3.l4len > 8) {
        uint16_t port = nm_be16_get(l3.l4 + 2);
        int known = 0;
        for (int i = 0; i < res->nudp_ports; i++) known |= res->udp_ports[i] == port;
        if (!known && res->nudp_ports < (int)(sizeof res->udp_ports / sizeof res->udp_ports[0]))
          res->udp_ports[res->nudp_ports++] = port;
      }
      if (!control && l3.l4len > (l3.proto == 17 ? 8u : 0u)) {
        if (!res->other_payload++) {
          char x[64], y[64];
          nsim__ip(l3.src, x, sizeof x), nsim__ip(l3.dst, y, sizeof y);
          snprintf(res->other_desc, sizeof res->other_desc, "%s %s -> %s (frame %lu)",
                   l3.frag ? "IP fragment" : l3.proto == 17 ? "UDP" : "IP protocol", x, y, frame);
        }
      }
      continue;
    }
    const unsigned char *tcp = l3.l4;
    size_t tlen = l3.l4len;
    if (tlen < 20) continue;
    size_t thl = (size_t)(tcp[12] >> 4) * 4;
    if (thl < 20 || thl > tlen) continue;
    res->tcp++;
    uint16_t sport = nm_be16_get(tcp), dport = nm_be16_get(tcp + 2);
    uint32_t seq = nm_be32_get(tcp + 4);
    uint8_t flags = tcp[13];
    int pure_syn = (flags & 0x12) == 0x02, d;
    size_t n = tlen - thl;
    if (n) res->tcp_payload++;
    struct nsim_pcap_conn *c = nsim__conn(res, l3.src, sport, l3.dst, dport, pure_syn, seq, &d);
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
