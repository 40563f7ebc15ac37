/* pcap: what a packet capture of the simulated internet shows, for expect-capture.
 *
 * Reads a pcap file as tcpdump writes it (Ethernet frames, either byte order, micro- or
 * nanosecond stamps), follows every TCP connection in it (payload reassembled in sequence
 * order per direction, duplicates dropped, a gap ends what can be followed), and tells:
 *   - whether given byte strings occur in any captured frame or in any reassembled stream
 *     (so a string split across two segments is found as well);
 *   - which connections carry TLS: their payload, from its first byte, is a run of TLS
 *     records; the version the server chose (the ServerHello's supported_versions, so TLS
 *     1.3 is told from 1.2), and how many application-data records went each way;
 *   - which carry anything else (plaintext), and whether UDP or other IP payload was seen.
 * IPv4 and IPv6 alike (connections keyed by 128-bit addresses, IPv4 held v4-mapped); IPv6
 * extension headers are skipped, ICMPv6 (neighbour discovery, MLD, errors) is control, not
 * payload. Bounded: the file is read whole, and netsim caps its size when capturing. */
#ifndef NSIM_PCAP_H
#define NSIM_PCAP_H

#include <stddef.h>
#include <stdint.h>

#define NSIM_PCAP_MAX_CONNS 2048
#define NSIM_PCAP_MAX_NEEDLES 2

struct nsim_pcap_conn {
  uint8_t ip[2][16];       /* [0] the side that sent the SYN (or was seen first), [1] the
                            * other: IPv6, or IPv4 as ::ffff:a.b.c.d */
  uint16_t port[2];
  int syn_seen;            /* followed from its start: its payload can be judged */
  uint32_t isn;            /* the client's initial sequence number */
  int gap[2];              /* bytes missing from the capture in that direction */
  unsigned long bytes[2];  /* payload bytes followed */
  int tls[2];              /* 1: TLS records from the first byte; -1: not TLS; 0: no payload */
  unsigned long app_records[2]; /* TLS application-data records */
  unsigned tls_version;    /* what the server's ServerHello chose: 0x0304 TLS 1.3; 0 unknown */
  int needle_hit[NSIM_PCAP_MAX_NEEDLES]; /* found in a reassembled stream */
  unsigned char head[2][8];/* the first payload bytes, to show what a plaintext stream is */
  /* reassembly */
  uint32_t next_seq[2];
  int seq_known[2];
  unsigned char *buf[2];
  size_t len[2], cap[2];
};

struct nsim_pcap_result {
  unsigned long frames;        /* records in the file */
  unsigned long ipv4, ipv6, tcp, tcp_payload; /* frames with IPv4, IPv6, TCP, TCP payload */
  unsigned long other_payload; /* IP frames with payload that is not TCP (UDP, fragments) */
  char other_desc[160];        /* the first of them */
  uint16_t udp_ports[8];       /* distinct UDP destination ports seen (the first 8) */
  int nudp_ports;
  int truncated;               /* the last record is cut short (the writer was stopped) */
  unsigned long needle_frames[NSIM_PCAP_MAX_NEEDLES]; /* frames containing the needle */
  char needle_where[NSIM_PCAP_MAX_NEEDLES][160];      /* where it was first found */
  struct nsim_pcap_conn *conns;
  int nconns;
  int conns_dropped;           /* connections beyond NSIM_PCAP_MAX_CONNS, not followed */
};

/* Analyses the capture at path, looking for up to NSIM_PCAP_MAX_NEEDLES byte strings
 * (needles[i] of needle_len[i] bytes, NULL to skip). Returns 0 (free the result with
 * nsim_pcap_free), or a negative code with the reason in err. */
int nsim_pcap_analyze(const char *path, const char *const *needles, const size_t *needle_len,
                      int nneedles, struct nsim_pcap_result *res, char *err, size_t errlen);
/* The same on a capture in memory (what the fuzzer drives). */
int nsim_pcap_analyze_buf(const unsigned char *data, size_t size, const char *const *needles,
                          const size_t *needle_len, int nneedles, struct nsim_pcap_result *res,
                          char *err, size_t errlen);
void nsim_pcap_free(struct nsim_pcap_result *res);

/* An address as the analyser keys it (IPv4 v4-mapped), and "A.B.C.D:PORT" / "[V6]:PORT". */
void nsim_pcap_addr_v4(uint32_t ip, uint8_t out[16]);
void nsim_pcap_endpoint_str(const uint8_t ip[16], uint16_t port, char *out, size_t len);

/* A connection that completed a TLS 1.3 handshake it was followed from, and carried
 * application data both ways, every byte of it in TLS records. */
int nsim_pcap_conn_tls13(const struct nsim_pcap_conn *c);
/* A connection whose payload is (at least partly) not TLS records, or could not be judged
 * (joined mid-stream, or TLS other than 1.3). No payload at all is neither. */
int nsim_pcap_conn_not_tls13(const struct nsim_pcap_conn *c);

#endif
