#include "capture.h"
#include "expand.h"
#include "pcap.h"
#include "proc.h"
#include "state.h"
#include "util.h"

#include <errno.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

struct nsim_proc *nsim_capture_add(struct nsim_run *r, const struct nsim_step *s, char *err,
                                   size_t errlen) {
  char file[64], path[PATH_MAX];
  if (nsim_fmt(file, sizeof file, "%s.pcap", s->process) < 0 ||
      nsim_fmt(path, sizeof path, "%s/%s", r->dir, file) < 0) {
    snprintf(err, errlen, "capture %s: path too long", s->process);
    return NULL;
  }
  /* Recorded before tcpdump creates it: whatever ends the run, the file goes with it. */
  if (!s->keep && nsim_state_add_file(r, file) < 0) {
    snprintf(err, errlen, "capture %s: cannot record %s in the state file", s->process, file);
    return NULL;
  }
  /* br0 in the internet core: every frame between public hosts and routers' WAN sides.
   * -U and --immediate-mode: each packet reaches the file as it is seen; -Z root: Debian's
   * tcpdump otherwise drops to user tcpdump before opening the file, which then could not
   * be written in the (0700) run folder; -s 0: whole packets, the payload is what is
   * searched. -B 65536 (KiB): with whole packets on a bridge whose ports do segmentation
   * offload, libpcap sizes each ring slot for a 256 KiB packet, so its default 2 MiB ring holds
   * only 8; on a busy machine one burst of a few hundred KB filled it and the kernel dropped
   * packets (seen in CI). 64 MiB holds 256 such packets. */
  const char *words[] = {"tcpdump", "-i", "br0", "-n", "-s", "0", "-B", "65536", "-U",
                         "--immediate-mode", "-Z", "root", "-w", path, NULL};
  char **argv = calloc(NSIM_ARRAY_LEN(words), sizeof *argv);
  for (size_t i = 0; argv && words[i]; i++)
    if (!(argv[i] = strdup(words[i]))) {
      nsim_argv_free(argv);
      argv = NULL;
    }
  struct nsim_proc *p = argv ? nsim_proc_add(r, s->process, -1, argv, 0) : NULL;
  if (!p) {
    if (argv) nsim_argv_free(argv);
    snprintf(err, errlen, "capture %s: too many processes", s->process);
    return NULL;
  }
  p->fsize_max = s->max_bytes;
  return p;
}

/* Appends to detail, never past its end. */
static void nsim__say(char *d, size_t dl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void nsim__say(char *d, size_t dl, const char *fmt, ...) {
  size_t used = strlen(d);
  if (used + 1 >= dl) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d + used, dl - used, fmt, ap);
  va_end(ap);
}

/* Why a connection is not TLS 1.3 through and through, and what its payload starts with. */
static void nsim__why_not_tls(const struct nsim_pcap_conn *c, char *out, size_t len) {
  char a[64], b[64], head[40] = "";
  nsim_pcap_endpoint_str(c->ip[0], c->port[0], a, sizeof a);
  nsim_pcap_endpoint_str(c->ip[1], c->port[1], b, sizeof b);
  int d = c->tls[0] == -1 ? 0 : c->tls[1] == -1 ? 1 : c->bytes[0] ? 0 : 1;
  size_t h = 0;
  for (int i = 0; i < 8 && (unsigned long)i < c->bytes[d]; i++) {
    unsigned char ch = c->head[d][i];
    h += (size_t)snprintf(head + h, sizeof head - h, ch >= 32 && ch < 127 && ch != '"' ? "%c" : "\\x%02x", ch);
    if (h >= sizeof head) break;
  }
  const char *why = !c->syn_seen           ? "joined mid-stream, cannot be judged"
                    : c->gap[0] || c->gap[1] ? "bytes missing from the capture"
                    : c->tls[d] == -1        ? "not TLS records"
                                             : "not TLS 1.3";
  snprintf(out, len, "%s -> %s: %s (%s starts \"%s\")", a, b, why, d ? "the answer" : "it", head);
}

int nsim_capture_check(struct nsim_run *r, const struct nsim_step *s, struct nsim_proc *p,
                       char *detail, size_t detaillen) {
  detail[0] = 0;
  char st[64];
  nsim_proc_status_str(p, st, sizeof st);
  if (!p->exited) {
    snprintf(detail, detaillen, "capture %s did not stop", p->name);
    return 0;
  }
  if (WIFSIGNALED(p->status) && WTERMSIG(p->status) == SIGXFSZ) {
    snprintf(detail, detaillen, "capture %s reached its size limit (%ld bytes) and was stopped: "
             "what crossed the internet after that was not seen", p->name, p->fsize_max);
    return 0;
  }
  /* A capture that lost packets cannot tell what they carried. */
  char found[256] = "";
  if (nsim_proc_log_find(p, NSIM_STREAM_ERR, NULL, "[0-9]+ packets? dropped by kernel", found,
                         sizeof found) != 1) {
    snprintf(detail, detaillen, "capture %s %s without its statistics (see %s): cannot tell "
             "whether it saw every packet", p->name, st, p->err_path);
    return 0;
  }
  unsigned long dropped = strtoul(found + strspn(found, " \t"), NULL, 10);
  if (dropped) {
    snprintf(detail, detaillen, "capture %s: %s: cannot tell what those packets carried", p->name,
             found);
    return 0;
  }

  char absent[1024] = "", present[1024] = "", between[1024] = "";
  if (s->absent_text &&
      nsim_expand(r, s->absent_text, absent, sizeof absent, detail, detaillen) < 0)
    return 0;
  if (s->text && nsim_expand(r, s->text, present, sizeof present, detail, detaillen) < 0) return 0;
  if (s->tls_between &&
      nsim_expand(r, s->tls_between, between, sizeof between, detail, detaillen) < 0)
    return 0;
  const char *needles[NSIM_PCAP_MAX_NEEDLES] = {absent[0] ? absent : NULL,
                                               present[0] ? present : NULL};
  size_t nlen[NSIM_PCAP_MAX_NEEDLES] = {strlen(absent), strlen(present)};
  char path[PATH_MAX];
  if (nsim_fmt(path, sizeof path, "%s/%s.pcap", r->dir, p->name) < 0) return 0;
  struct nsim_pcap_result res;
  char err[256];
  if (nsim_pcap_analyze(path, needles, nlen, NSIM_PCAP_MAX_NEEDLES, &res, err, sizeof err) < 0) {
    snprintf(detail, detaillen, "capture %s: %s", p->name, err);
    return 0;
  }

  int tls13 = 0, other = 0, conns_with_data = 0;
  const struct nsim_pcap_conn *bad = NULL;
  int stream_hit[NSIM_PCAP_MAX_NEEDLES] = {0, 0};
  for (int i = 0; i < res.nconns; i++) {
    const struct nsim_pcap_conn *c = &res.conns[i];
    if (c->bytes[0] || c->bytes[1]) conns_with_data++;
    if (nsim_pcap_conn_tls13(c)) tls13++;
    if (nsim_pcap_conn_not_tls13(c)) {
      other++;
      if (!bad) bad = c;
    }
    for (int k = 0; k < NSIM_PCAP_MAX_NEEDLES; k++) stream_hit[k] |= c->needle_hit[k];
  }
  int ok = 1;
  char why[256] = "";
  /* The verdicts first (the report line's start is what a reader sees), then the figures. */
  if (absent[0]) {
    if (res.needle_frames[0] || stream_hit[0]) {
      ok = 0;
      nsim__say(detail, detaillen, "\"%s\" IS in the capture: %lu frame(s), first in %s; ", absent,
                res.needle_frames[0], res.needle_where[0]);
    } else if (!res.tcp_payload) {
      ok = 0;
      nsim__say(detail, detaillen, "the capture holds no TCP payload, so it proves nothing about "
                "\"%s\"; ", absent);
    } else {
      nsim__say(detail, detaillen, "\"%s\" in no frame and no TCP stream; ", absent);
    }
  }
  if (present[0]) {
    if (res.needle_frames[1] || stream_hit[1])
      nsim__say(detail, detaillen, "\"%s\" in %lu frame(s), first in %s; ", present,
                res.needle_frames[1], res.needle_where[1]);
    else {
      ok = 0;
      nsim__say(detail, detaillen, "\"%s\" is in no frame and no TCP stream; ", present);
    }
  }
  if (s->tls_only) {
    if (bad) {
      ok = 0;
      nsim__why_not_tls(bad, why, sizeof why);
      nsim__say(detail, detaillen, "not TLS 1.3 only: %s; ", why);
    } else if (res.conns_dropped) {
      ok = 0;
      nsim__say(detail, detaillen, "more than %d TCP connections: not all followed; ",
                NSIM_PCAP_MAX_CONNS);
    } else if (!conns_with_data) {
      ok = 0;
      nsim__say(detail, detaillen, "no TCP payload at all, so nothing shows it is TLS; ");
    } else {
      nsim__say(detail, detaillen, "every TCP connection TLS 1.3 from its first byte; ");
    }
  }
  if (s->tls_conns && (unsigned)tls13 < s->tls_conns) {
    ok = 0;
    nsim__say(detail, detaillen, "only %d TLS 1.3 connection(s), expected %u or more; ", tls13,
              s->tls_conns);
  }
  if (between[0]) {
    char *save = NULL;
    for (char *w = strtok_r(between, " ,", &save); w; w = strtok_r(NULL, " ,", &save)) {
      char *dash = strchr(w, '-');
      struct nsim_endpoint ea, eb;
      uint8_t a[16], b[16];
      if (dash) *dash = 0;
      if (!dash || nsim_addr_parse(w, &ea) < 0 || nsim_addr_parse(dash + 1, &eb) < 0) {
        ok = 0;
        nsim__say(detail, detaillen, "tls-between: \"%s%s%s\" is not ADDR-ADDR; ", w,
                  dash ? "-" : "", dash ? dash + 1 : "");
        continue;
      }
      /* The analyser keys IPv4 v4-mapped. */
      if (ea.family == AF_INET) nsim_pcap_addr_v4(ea.ip4, a);
      else memcpy(a, ea.ip6, 16);
      if (eb.family == AF_INET) nsim_pcap_addr_v4(eb.ip4, b);
      else memcpy(b, eb.ip6, 16);
      int seen = 0;
      for (int i = 0; i < res.nconns && !seen; i++) {
        const struct nsim_pcap_conn *c = &res.conns[i];
        seen = nsim_pcap_conn_tls13(c) &&
               ((!memcmp(c->ip[0], a, 16) && !memcmp(c->ip[1], b, 16)) ||
                (!memcmp(c->ip[0], b, 16) && !memcmp(c->ip[1], a, 16)));
      }
      if (!seen) {
        ok = 0;
        nsim__say(detail, detaillen, "no TLS 1.3 connection between %s and %s; ", w, dash + 1);
      } else {
        nsim__say(detail, detaillen, "TLS 1.3 between %s and %s; ", w, dash + 1);
      }
    }
  }
  unsigned long app = 0;
  for (int i = 0; i < res.nconns; i++) app += res.conns[i].app_records[0] + res.conns[i].app_records[1];
  char ports[64] = "";
  for (int i = 0; i < res.nudp_ports; i++)
    nsim__say(ports, sizeof ports, "%s%u", i ? " " : "; UDP to ports ", res.udp_ports[i]);
  nsim__say(detail, detaillen, "capture %s: %lu frames, %d TCP connections with payload (%d TLS "
            "1.3, %lu application-data records; %d other), %lu non-TCP payload frames%s, 0 "
            "dropped%s", p->name, res.frames, conns_with_data, tls13, app, other,
            res.other_payload, ports, res.truncated ? ", last frame cut short" : "");
  nsim_pcap_free(&res);
  return ok;
}
