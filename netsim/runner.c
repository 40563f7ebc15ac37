#include "runner.h"
#include "capture.h"
#include "ctlcheck.h"
#include "expand.h"
#include "link.h"
#include "managers.h"
#include "narrate.h"
#include "nsops.h"
#include "probe.h"
#include "proc.h"
#include "redis.h"
#include "router.h"
#include "sockreset.h"
#include "stamp.h"
#include "util.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

volatile sig_atomic_t nsim_stop_signal;

#define NSIM_POLL_MS 20

/* What a step handler reports back. */
struct nsim__outcome {
  int pass;              /* assertions: held; steps: succeeded */
  char detail[320];
};

struct nsim__ctx {
  struct nsim_run *r;
  long deadline;         /* the scenario's overall deadline */
  long since_out, since_err; /* log sizes when the current line step began (since="now") */
};

static long nsim__step_deadline(const struct nsim__ctx *c, long timeout_ms) {
  long d = nsim_now_ms() + timeout_ms;
  return d < c->deadline ? d : c->deadline;
}

static int nsim__stopped(void) { return nsim_stop_signal != 0; }

static int nsim__node(struct nsim_run *r, const char *name) {
  return nsim_topo_find(&r->sc->topo, name);
}

/* Waits for a line in a process's log. Returns 1 found, 0 deadline, -EINTR stopped,
 * -ESRCH the process exited without printing it. */
static int nsim__await_line(struct nsim__ctx *c, struct nsim_proc *p, int streams,
                            const char *text, const char *regex, int since_now, unsigned count,
                            long deadline, char *found, size_t flen) {
  long out_from = p->out_base, err_from = p->err_base;
  if (since_now) nsim_proc_log_sizes(p, &out_from, &err_from);
  for (;;) {
    int exited_before = p->exited;
    int hits = count > 1 ? nsim_proc_log_count(p, out_from, err_from, streams, text, regex, found, flen)
                         : nsim_proc_log_find_from(p, out_from, err_from, streams, text, regex, found, flen);
    if (hits < 0) return hits; /* bad regex */
    if (hits >= (int)count) return 1;
    if (exited_before) return -ESRCH; /* scanned after it exited: nothing more will come */
    if (nsim__stopped()) return -EINTR;
    if (nsim_now_ms() >= deadline) return 0;
    nsim_sleep_ms(NSIM_POLL_MS);
    nsim_proc_reap(c->r);
  }
}

static void nsim__line_detail(struct nsim__outcome *o, int rc, const struct nsim_step *s,
                              struct nsim_proc *p, const char *found) {
  char st[64], times[32] = "";
  const char *what = s->text ? s->text : s->regex;
  if (s->count > 1) snprintf(times, sizeof times, " %u times", s->count);
  if (rc == 1) snprintf(o->detail, sizeof o->detail, "%s printed \"%s\"%s", p->name, found, times);
  else if (rc == -ESRCH)
    snprintf(o->detail, sizeof o->detail, "%s %s without printing \"%s\"%s", p->name,
             nsim_proc_status_str(p, st, sizeof st), what, times);
  else if (rc == -EINVAL) snprintf(o->detail, sizeof o->detail, "bad regex \"%s\"", what);
  else if (rc == -EINTR) snprintf(o->detail, sizeof o->detail, "interrupted");
  else snprintf(o->detail, sizeof o->detail, "%s did not print \"%s\"%s within %ldms", p->name,
                what, times, s->timeout_ms);
}

/* ---- steps ------------------------------------------------------------------------------ */

static void nsim__do_start(struct nsim__ctx *c, const struct nsim_step *s, struct nsim__outcome *o,
                           struct nsim_proc *restart) {
  struct nsim_run *r = c->r;
  struct nsim_proc *p = restart;
  if (!p) {
    char **argv;
    if (nsim_expand_argv(r, s->cmd, &argv, o->detail, sizeof o->detail) < 0) return;
    p = nsim_proc_add(r, s->process, nsim__node(r, s->host), argv, 0);
    if (!p) {
      nsim_argv_free(argv);
      snprintf(o->detail, sizeof o->detail, "too many processes");
      return;
    }
  }
  if (nsim_proc_start(r, p, o->detail, sizeof o->detail) < 0) return;
  if (!s->ready) {
    o->pass = 1;
    return;
  }
  char found[512];
  int rc = nsim__await_line(c, p, NSIM_STREAM_BOTH, s->ready, NULL, 0, 1,
                            nsim__step_deadline(c, s->timeout_ms), found, sizeof found);
  struct nsim_step rs = *s;
  rs.text = s->ready, rs.regex = NULL, rs.count = 1;
  nsim__line_detail(o, rc, &rs, p, found);
  if (rc == 1) snprintf(o->detail, sizeof o->detail, "%s ready", p->name);
  o->pass = rc == 1;
}

static void nsim__do_exec(struct nsim__ctx *c, const struct nsim_step *s, struct nsim__outcome *o) {
  struct nsim_run *r = c->r;
  char **argv;
  if (nsim_expand_argv(r, s->cmd, &argv, o->detail, sizeof o->detail) < 0) return;
  long deadline = nsim__step_deadline(c, s->timeout_ms);
  size_t cap = 64 * 1024;
  char *out = malloc(cap);
  char rendered[512];
  nsim_argv_render(argv, rendered, sizeof rendered);
  char text[1024] = "";
  regex_t re;
  int have_re = s->regex && regcomp(&re, s->regex, REG_EXTENDED | REG_NOSUB) == 0;
  if (s->text && nsim_expand(r, s->text, text, sizeof text, o->detail, sizeof o->detail) < 0)
    goto out;
  if (s->regex && !have_re) {
    snprintf(o->detail, sizeof o->detail, "bad regex \"%s\"", s->regex);
    goto out;
  }
  if (!out) goto out;
  for (;;) {
    int st;
    long left = deadline - nsim_now_ms();
    int rc = nsim_ns_run(nsim_run_ns(r, nsim__node(r, s->host)), argv, left > 0 ? left : 1, out,
                         cap, &st);
    /* Keep the (last attempt's) output: it is what a reader of a failed run looks at first. */
    char path[PATH_MAX];
    if (nsim_fmt(path, sizeof path, "%s/logs/%s.exec-line%d.log", r->dir, s->host, s->line) >= 0 &&
        rc == 0)
      nsim_write_file(path, out, strlen(out));
    if (rc < 0) {
      snprintf(o->detail, sizeof o->detail, "`%s`: %s", rendered, strerror(-rc));
      break;
    }
    int code = st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    int exit_ok = !s->has_exit || code == s->exit_code;
    int text_ok = (!s->text || strstr(out, text)) && (!have_re || regexec(&re, out, 0, NULL, 0) == 0);
    char tail[160];
    size_t ol = strlen(out);
    snprintf(tail, sizeof tail, "%s", ol > 150 ? out + ol - 150 : out);
    for (char *q = tail; *q; q++)
      if (*q == '\n') *q = ' ';
    if (exit_ok && text_ok) {
      if (s->show) nsim_narrate_lines(r, s->prefix, out);
      o->pass = 1;
      snprintf(o->detail, sizeof o->detail, "`%s` exited %d", rendered, code);
      break;
    }
    if (code == -1) snprintf(o->detail, sizeof o->detail, "`%s` timed out: %s", rendered, tail);
    else if (!exit_ok)
      snprintf(o->detail, sizeof o->detail, "`%s` exited %d, expected %d: %s", rendered, code,
               s->exit_code, tail);
    else
      snprintf(o->detail, sizeof o->detail, "`%s` output lacks \"%s\": %s", rendered,
               s->text ? text : s->regex, tail);
    /* A plain exec runs once; expect-exec retries until the deadline (state may settle). */
    if (s->kind == NSIM_STEP_EXEC || nsim__stopped() || nsim_now_ms() + 200 >= deadline) break;
    nsim_sleep_ms(200);
  }
out:
  if (have_re) regfree(&re);
  free(out);
  nsim_argv_free(argv);
}

/* expect-line exactly="yes": count lines were seen; keep watching for the settle time and
 * fail as soon as there are more. */
static void nsim__settle(struct nsim__ctx *c, const struct nsim_step *s, struct nsim_proc *p,
                         const char *text, struct nsim__outcome *o) {
  long out_from = p->out_base, err_from = p->err_base;
  if (s->since_now) out_from = c->since_out, err_from = c->since_err;
  long until = nsim__step_deadline(c, s->settle_ms);
  char found[512] = "";
  for (;;) {
    int n = nsim_proc_log_count(p, out_from, err_from, s->stream, text, s->regex, found,
                                sizeof found);
    if (n > (int)s->count) {
      o->pass = 0;
      snprintf(o->detail, sizeof o->detail, "%s printed \"%s\" %d times, expected exactly %u "
               "(last: \"%s\")", p->name, text ? text : s->regex, n, s->count, found);
      return;
    }
    if (nsim__stopped() || nsim_now_ms() >= until) break;
    nsim_sleep_ms(NSIM_POLL_MS);
  }
  o->pass = 1;
  snprintf(o->detail, sizeof o->detail, "%s printed \"%s\": seen exactly %u time%s (watched %ld ms more)",
           p->name, found, s->count, s->count == 1 ? "" : "s", s->settle_ms);
}

static void nsim__do_line(struct nsim__ctx *c, const struct nsim_step *s, struct nsim__outcome *o) {
  struct nsim_proc *p = nsim_proc_find(c->r, s->process);
  char text[1024], rx[1024], found[512];
  const char *t = NULL;
  if (s->text) {
    if (nsim_expand(c->r, s->text, text, sizeof text, o->detail, sizeof o->detail) < 0) return;
    t = text;
  }
  if (s->regex && nsim_expand(c->r, s->regex, rx, sizeof rx, o->detail, sizeof o->detail) < 0)
    return;
  struct nsim_step es = *s;
  es.text = t;
  es.regex = s->regex ? rx : NULL;
  s = &es;
  nsim_proc_log_sizes(p, &c->since_out, &c->since_err);
  int rc = nsim__await_line(c, p, s->stream, t, s->regex, s->since_now, s->count,
                            nsim__step_deadline(c, s->timeout_ms), found, sizeof found);
  if (s->absent) {
    o->pass = rc == 0 || rc == -ESRCH;
    if (o->pass)
      snprintf(o->detail, sizeof o->detail, "%s did not print \"%s\" (as expected)", p->name,
               t ? t : s->regex);
    else if (rc == 1)
      snprintf(o->detail, sizeof o->detail, "%s printed \"%s\", expected it not to", p->name, found);
    else nsim__line_detail(o, rc, &es, p, found);
    return;
  }
  nsim__line_detail(o, rc, &es, p, found);
  o->pass = rc == 1;
  if (s->exactly && rc == 1) nsim__settle(c, s, p, t, o);
}

static void nsim__do_tcp(struct nsim__ctx *c, const struct nsim_step *s, struct nsim__outcome *o) {
  struct nsim_run *r = c->r;
  char to[256], want[512] = "";
  struct nsim_endpoint ep;
  if (nsim_expand(r, s->to, to, sizeof to, o->detail, sizeof o->detail) < 0) return;
  if (s->reply && nsim_expand(r, s->reply, want, sizeof want, o->detail, sizeof o->detail) < 0)
    return;
  if (nsim_endpoint_parse(to, &ep) < 0) {
    snprintf(o->detail, sizeof o->detail, "to=\"%s\" is not ADDR:PORT or [V6]:PORT", to);
    return;
  }
  long deadline = nsim__step_deadline(c, s->timeout_ms);
  int node = nsim__node(r, s->host);
  for (;;) {
    long left = deadline - nsim_now_ms();
    if (left < 50) left = 50;
    /* Expecting a connection: retry briefly so a listener still starting is not a failure.
     * Expecting failure: one attempt given the whole time, so a late SYN-ACK counts. */
    long attempt = s->tcp_result == NSIM_TCP_CONNECT && left > 1000 ? 1000 : left;
    enum nsim_tcp_outcome got;
    char reply[256], detail[300];
    if (nsim_probe_tcp(r, node, &ep, (uint16_t)s->local_port, attempt, &got, reply, sizeof reply, detail, sizeof detail) < 0) {
      snprintf(o->detail, sizeof o->detail, "%s -> %s: %s", s->host, to, detail);
      return;
    }
    int ok;
    switch (s->tcp_result) {
    case NSIM_TCP_CONNECT: ok = got == NSIM_TCP_OK && (!want[0] || strstr(reply, want)); break;
    case NSIM_TCP_FAIL: ok = got != NSIM_TCP_OK; break;
    case NSIM_TCP_REFUSED: ok = got == NSIM_TCP_GOT_REFUSED; break;
    default: ok = got == NSIM_TCP_GOT_TIMEOUT; break;
    }
    snprintf(o->detail, sizeof o->detail, "%s -> %s: %s%s%s%s", s->host, to, detail,
             got == NSIM_TCP_OK && want[0] && !strstr(reply, want) ? " (wanted \"" : "",
             got == NSIM_TCP_OK && want[0] && !strstr(reply, want) ? want : "",
             got == NSIM_TCP_OK && want[0] && !strstr(reply, want) ? "\")" : "");
    if (ok) {
      o->pass = 1;
      return;
    }
    if (s->tcp_result != NSIM_TCP_CONNECT || nsim__stopped() || nsim_now_ms() >= deadline) return;
    nsim_sleep_ms(100);
  }
}

static void nsim__do_udp_ports(struct nsim__ctx *c, const struct nsim_step *s,
                               struct nsim__outcome *o) {
  char list[1024];
  if (nsim_expand(c->r, s->servers, list, sizeof list, o->detail, sizeof o->detail) < 0) return;
  struct nsim_endpoint servers[NSIM_UDP_MAX_SERVERS];
  int n = 0;
  char *save = NULL;
  for (char *w = strtok_r(list, " ,", &save); w; w = strtok_r(NULL, " ,", &save)) {
    if (n == NSIM_UDP_MAX_SERVERS || nsim_endpoint_parse(w, &servers[n]) < 0) {
      snprintf(o->detail, sizeof o->detail, "servers: \"%s\" is not ADDR:PORT or [V6]:PORT (at "
               "most %d)", w, NSIM_UDP_MAX_SERVERS);
      return;
    }
    n++;
  }
  if (n < 2) {
    snprintf(o->detail, sizeof o->detail, "servers: name at least two echo servers");
    return;
  }
  char obs[NSIM_UDP_MAX_SERVERS][NSIM_UDP_OBSERVED_LEN];
  long left = nsim__step_deadline(c, s->timeout_ms) - nsim_now_ms();
  int rc = nsim_probe_udp(c->r, nsim__node(c->r, s->host), (uint16_t)s->local_port, servers, n,
                          left > 100 ? left : 100, obs);
  if (rc < 0) {
    snprintf(o->detail, sizeof o->detail, "probe failed: %s", strerror(-rc));
    return;
  }
  size_t used = 0;
  int answered = 1, distinct = 1, same = 1;
  for (int i = 0; i < n; i++) {
    char a[NSIM_ENDPOINT_STRLEN];
    used += (size_t)snprintf(o->detail + used, sizeof o->detail - used, "%s%s saw %s",
                             i ? ", " : "", nsim_endpoint_str(&servers[i], a),
                             obs[i][0] ? obs[i] : "nothing");
    if (used >= sizeof o->detail) used = sizeof o->detail - 1;
    if (!obs[i][0]) answered = 0;
    const char *pi = strrchr(obs[i], ':');
    for (int k = 0; k < i && pi; k++) {
      const char *pk = strrchr(obs[k], ':');
      if (pk && !strcmp(pi, pk)) distinct = 0;
      else same = 0;
    }
  }
  o->pass = answered && (s->same_ports ? same : distinct);
}

static void nsim__do_mapping(struct nsim__ctx *c, const struct nsim_step *s,
                             struct nsim__outcome *o) {
  char want_to[128] = "", rules[8192];
  if (s->dnat_to && nsim_expand(c->r, s->dnat_to, want_to, sizeof want_to, o->detail, sizeof o->detail) < 0)
    return;
  long deadline = nsim__step_deadline(c, s->timeout_ms);
  const char *router = c->r->sc->topo.nodes[s->node].name;
  for (;;) {
    if (nsim_router_mappings(c->r, s->node, rules, sizeof rules) < 0) {
      snprintf(o->detail, sizeof o->detail, "cannot list %s's mapping rules", router);
      return;
    }
    /* miniupnpd writes e.g. `iif "wan0" @nh,72,8 0x6 th dport 4000 dnat ip to 1.2.3.4:4000`:
     * the protocol as the IP header's protocol byte (6 tcp, 0x11 udp). */
    char dport[32], found[256] = "";
    snprintf(dport, sizeof dport, "dport %u ", s->port);
    char *save = NULL;
    for (char *l = strtok_r(rules, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
      char line[512];
      snprintf(line, sizeof line, "%s ", l);
      int proto = s->proto_udp ? (strstr(line, " 0x11 ") || strstr(line, "udp "))
                               : (strstr(line, " 0x6 ") || strstr(line, "tcp "));
      if (proto && strstr(line, dport) && strstr(line, "dnat") &&
          (!want_to[0] || strstr(line, want_to))) {
        snprintf(found, sizeof found, "%s", l + strspn(l, " \t"));
        break;
      }
    }
    int present = found[0] != 0;
    if (present) snprintf(o->detail, sizeof o->detail, "%s has: %s", router, found);
    else snprintf(o->detail, sizeof o->detail, "%s has no %s mapping for port %u%s%s", router,
                  s->proto_udp ? "udp" : "tcp", s->port, want_to[0] ? " to " : "", want_to);
    if (present == s->present) {
      o->pass = 1;
      return;
    }
    if (nsim__stopped() || nsim_now_ms() >= deadline) return;
    nsim_sleep_ms(100);
  }
}

static void nsim__do_exit(struct nsim__ctx *c, const struct nsim_step *s, struct nsim__outcome *o) {
  struct nsim_proc *p = nsim_proc_find(c->r, s->process);
  long deadline = nsim__step_deadline(c, s->timeout_ms);
  while (!p->exited && !nsim__stopped() && nsim_now_ms() < deadline) {
    nsim_sleep_ms(NSIM_POLL_MS);
    nsim_proc_reap(c->r);
  }
  char st[64];
  nsim_proc_status_str(p, st, sizeof st);
  if (!p->exited) {
    snprintf(o->detail, sizeof o->detail, "%s still running after %ldms", p->name, s->timeout_ms);
    return;
  }
  o->pass = !s->has_exit || (WIFEXITED(p->status) && WEXITSTATUS(p->status) == s->exit_code);
  snprintf(o->detail, sizeof o->detail, "%s %s%s", p->name, st, o->pass ? "" : " (unexpected)");
}

static void nsim__do_ctl(struct nsim__ctx *c, const struct nsim_step *s, struct nsim__outcome *o) {
  char manager[128];
  char dial[128] = "", state_dir[PATH_MAX] = "";
  if (nsim_expand(c->r, s->manager, manager, sizeof manager, o->detail, sizeof o->detail) < 0) return;
  if (s->state_dir &&
      nsim_expand(c->r, s->state_dir, state_dir, sizeof state_dir, o->detail, sizeof o->detail) < 0)
    return;
  if (s->dial && nsim_expand(c->r, s->dial, dial, sizeof dial, o->detail, sizeof o->detail) < 0)
    return;
  struct nsim_ctl_want w = {s->servant, s->present, s->state, s->mapping, dial[0] ? dial : NULL,
                            s->relay, s->holder, s->relay_counts};
  long deadline = nsim__step_deadline(c, s->timeout_ms);
  /* The manager's view settles over heartbeats: ask again until it holds or time is up. */
  for (;;) {
    int rc = nsim_ctl_check(c->r, nsim__node(c->r, s->host), manager,
                            state_dir[0] ? state_dir : NULL, &w, o->detail, sizeof o->detail);
    if (rc == 1) {
      o->pass = 1;
      return;
    }
    if (nsim__stopped() || nsim_now_ms() + 250 >= deadline) return;
    nsim_sleep_ms(250);
  }
}

/* When the first line of p (current incarnation) matching text/regex appeared, by the
 * stamper; waits for it until deadline. Returns 1 and sets *ms, or what nsim__await_line
 * returns otherwise. */
static int nsim__line_time(struct nsim__ctx *c, struct nsim_proc *p, int streams, const char *text,
                           const char *regex, long deadline, long *ms, char *found, size_t flen) {
  int rc = nsim__await_line(c, p, streams, text, regex, 0, 1, deadline, found, flen);
  if (rc != 1) return rc;
  long out_end, err_end;
  rc = nsim_proc_log_first(p, p->out_base, p->err_base, streams, text, regex, &out_end, &err_end,
                           found, flen);
  if (rc != 1) return rc < 0 ? rc : 0;
  long t_out = out_end >= 0 ? nsim_stamp_time(c->r, p, NSIM_STREAM_OUT, out_end) : -1;
  long t_err = err_end >= 0 ? nsim_stamp_time(c->r, p, NSIM_STREAM_ERR, err_end) : -1;
  *ms = t_out < 0 ? t_err : t_err < 0 ? t_out : t_out < t_err ? t_out : t_err;
  return 1;
}

static void nsim__do_measure(struct nsim__ctx *c, const struct nsim_step *s,
                             struct nsim__outcome *o) {
  struct nsim_run *r = c->r;
  struct nsim_proc *p = nsim_proc_find(r, s->process), *q = nsim_proc_find(r, s->from_proc);
  char text[1024], rx[1024], ftext[1024], found[512];
  const char *t = NULL;
  if (s->text) {
    if (nsim_expand(r, s->text, text, sizeof text, o->detail, sizeof o->detail) < 0) return;
    t = text;
  }
  struct nsim_step ms = *s;
  if (s->regex) {
    if (nsim_expand(r, s->regex, rx, sizeof rx, o->detail, sizeof o->detail) < 0) return;
    ms.regex = rx;
    s = &ms;
  }
  if (!p || !q) {
    snprintf(o->detail, sizeof o->detail, "%s has not been started", !p ? s->process : s->from_proc);
    return;
  }
  long deadline = nsim__step_deadline(c, s->timeout_ms), from_ms, at_ms;
  int rc;
  if (s->from_kind == NSIM_FROM_START) {
    if (!q->started_ms) {
      snprintf(o->detail, sizeof o->detail, "%s has not been started", q->name);
      return;
    }
    from_ms = q->started_ms;
  } else {
    if (nsim_expand(r, s->from_text, ftext, sizeof ftext, o->detail, sizeof o->detail) < 0) return;
    rc = nsim__line_time(c, q, NSIM_STREAM_BOTH, ftext, NULL, deadline, &from_ms, found,
                         sizeof found);
    if (rc != 1) {
      struct nsim_step fs = *s;
      fs.text = ftext, fs.regex = NULL, fs.count = 1;
      nsim__line_detail(o, rc, &fs, q, found);
      return;
    }
  }
  rc = nsim__line_time(c, p, s->stream, t, s->regex, deadline, &at_ms, found, sizeof found);
  if (rc != 1) {
    struct nsim_step es = *s;
    es.text = t, es.count = 1;
    nsim__line_detail(o, rc, &es, p, found);
    return;
  }
  long d = at_ms - from_ms;
  char fig[128];
  int w = snprintf(fig, sizeof fig, "measure %s: %s%ld.%02ld s", s->name, d < 0 ? "-" : "",
                   labs(d) / 1000, (labs(d) % 1000) / 10);
  if (s->unit && w > 0 && (size_t)w < sizeof fig)
    snprintf(fig + w, sizeof fig - (size_t)w, " = %.2f x %s", (double)d / (double)s->unit_ms, s->unit);
  /* The figure is information: printed at once (stdout) and in the report, never judged. */
  printf("%s\n", fig);
  fflush(stdout);
  o->pass = 1;
  snprintf(o->detail, sizeof o->detail, "%s (from %s of %s to %s's \"%s\")", fig,
           s->from_kind == NSIM_FROM_START ? "the start" : "a line", q->name, p->name, found);
}

static void nsim__do_reset(struct nsim__ctx *c, const struct nsim_step *s, struct nsim__outcome *o) {
  char to[128];
  struct nsim_endpoint ep;
  if (nsim_expand(c->r, s->to, to, sizeof to, o->detail, sizeof o->detail) < 0) return;
  if (nsim_endpoint_parse(to, &ep) < 0) {
    snprintf(o->detail, sizeof o->detail, "to=\"%s\" is not ADDR:PORT or [V6]:PORT", to);
    return;
  }
  o->pass = nsim_sock_reset(c->r, nsim_proc_find(c->r, s->process), &ep, s->peer_notices,
                            o->detail, sizeof o->detail) > 0;
}

static void nsim__do_capture(struct nsim__ctx *c, const struct nsim_step *s,
                             struct nsim__outcome *o) {
  struct nsim_proc *p = nsim_capture_add(c->r, s, o->detail, sizeof o->detail);
  if (!p) return;
  /* tcpdump says so once it captures (on stderr, with -w). */
  struct nsim_step rs = *s;
  rs.ready = "listening on";
  nsim__do_start(c, &rs, o, p);
}

static void nsim__do_expect_capture(struct nsim__ctx *c, const struct nsim_step *s,
                                    struct nsim__outcome *o) {
  struct nsim_proc *p = nsim_proc_find(c->r, s->process);
  /* The capture ends here: tcpdump writes out what it holds and prints its statistics. */
  if (p->pid && !p->exited) nsim_proc_signal(c->r, p, SIGTERM, 3000);
  nsim_proc_reap(c->r);
  o->pass = nsim_capture_check(c->r, s, p, o->detail, sizeof o->detail) == 1;
}

/* <redis> / <sentinel>: the process with its config (redis.h), awaited until it serves. */
static void nsim__do_redis(struct nsim__ctx *c, const struct nsim_step *s, struct nsim__outcome *o) {
  struct nsim_proc *p = nsim_redis_add(c->r, s, o->detail, sizeof o->detail);
  if (!p) return;
  struct nsim_step rs = *s;
  rs.ready = s->kind == NSIM_STEP_REDIS ? NSIM_REDIS_READY : NSIM_SENTINEL_READY;
  nsim__do_start(c, &rs, o, p);
}

static void nsim__do_step(struct nsim__ctx *c, const struct nsim_step *s, struct nsim__outcome *o) {
  struct nsim_run *r = c->r;
  struct nsim_proc *p = s->process ? nsim_proc_find(r, s->process) : NULL;
  int rc;
  switch (s->kind) {
  case NSIM_STEP_START: nsim__do_start(c, s, o, NULL); break;
  case NSIM_STEP_EXEC:
  case NSIM_STEP_EXPECT_EXEC: nsim__do_exec(c, s, o); break;
  case NSIM_STEP_WAIT_FOR:
  case NSIM_STEP_EXPECT_LINE: nsim__do_line(c, s, o); break;
  case NSIM_STEP_NARRATE: {
    char text[1024] = "";
    if (!p) {
      snprintf(o->detail, sizeof o->detail, "no process %s", s->process);
      break;
    }
    if (s->text && nsim_expand(r, s->text, text, sizeof text, o->detail, sizeof o->detail) < 0) break;
    rc = nsim_narrate_follow(r, p, s->stream, s->text ? text : NULL, s->regex, s->prefix, o->detail,
                             sizeof o->detail);
    o->pass = rc == 0;
    if (rc == 0) snprintf(o->detail, sizeof o->detail, "narrating %s", p->name);
    break;
  }
  case NSIM_STEP_SAY: {
    char text[1024];
    if (nsim_expand(r, s->text, text, sizeof text, o->detail, sizeof o->detail) < 0) break;
    nsim_narrate_say(r, text);
    o->pass = 1;
    break;
  }
  case NSIM_STEP_SEND: {
    char text[1024];
    if (nsim_expand(r, s->text, text, sizeof text, o->detail, sizeof o->detail) < 0) break;
    rc = nsim_proc_send(p, text);
    o->pass = rc == 0;
    snprintf(o->detail, sizeof o->detail, "send to %s: %s", p->name, rc ? strerror(-rc) : "ok");
    break;
  }
  case NSIM_STEP_KILL:
    rc = nsim_proc_signal(r, p, s->sig, s->timeout_ms);
    o->pass = rc == 0;
    snprintf(o->detail, sizeof o->detail, "%s did not end", p->name);
    break;
  case NSIM_STEP_RESTART:
    if (nsim_proc_signal(r, p, SIGTERM, 2000) < 0) {
      snprintf(o->detail, sizeof o->detail, "%s did not stop", p->name);
      break;
    }
    nsim__do_start(c, s, o, p);
    break;
  case NSIM_STEP_CUT:
  case NSIM_STEP_RESTORE:
    o->pass = nsim_link_cut(r, s->node, s->kind == NSIM_STEP_CUT, o->detail, sizeof o->detail) == 0;
    break;
  case NSIM_STEP_LINK:
    o->pass = nsim_link_apply(r, s->node, &s->cond, o->detail, sizeof o->detail) == 0;
    break;
  case NSIM_STEP_SLEEP: {
    long until = nsim__step_deadline(c, s->timeout_ms);
    while (!nsim__stopped() && nsim_now_ms() < until) nsim_sleep_ms(until - nsim_now_ms());
    o->pass = 1;
    break;
  }
  case NSIM_STEP_EXPECT_TCP: nsim__do_tcp(c, s, o); break;
  case NSIM_STEP_EXPECT_UDP_PORTS: nsim__do_udp_ports(c, s, o); break;
  case NSIM_STEP_EXPECT_MAPPING: nsim__do_mapping(c, s, o); break;
  case NSIM_STEP_EXPECT_EXIT: nsim__do_exit(c, s, o); break;
  case NSIM_STEP_EXPECT_CTL: nsim__do_ctl(c, s, o); break;
  case NSIM_STEP_MEASURE: nsim__do_measure(c, s, o); break;
  case NSIM_STEP_RESTART_UPNPD:
    o->pass = nsim_router_restart_daemon(r, s->node, s->flush, s->timeout_ms, o->detail,
                                         sizeof o->detail) == 0;
    break;
  case NSIM_STEP_RESET_CONNECTION: nsim__do_reset(c, s, o); break;
  case NSIM_STEP_CAPTURE: nsim__do_capture(c, s, o); break;
  case NSIM_STEP_EXPECT_CAPTURE: nsim__do_expect_capture(c, s, o); break;
  case NSIM_STEP_REDIS:
  case NSIM_STEP_SENTINEL: nsim__do_redis(c, s, o); break;
  case NSIM_STEP_MANAGERS_CONFIG:
    o->pass = nsim_managers_config_write(r, s, o->detail, sizeof o->detail) == 0;
    break;
  }
}

static void nsim__describe(const struct nsim_step *s, char *buf, size_t len) {
  snprintf(buf, len, "%s%s%s%s%s", nsim_step_kind_name(s->kind), s->process ? " " : "",
           s->process ? s->process : "", s->host && !s->process ? " on " : "",
           s->host && !s->process ? s->host : "");
}

void nsim_runner_run(struct nsim_run *r, struct nsim_report *rep) {
  struct nsim__ctx c = {r, 0, 0, 0};
  r->t0_ms = nsim_now_ms();
  c.deadline = r->t0_ms + r->sc->timeout_ms;
  int aborted = 0;
  /* When each step ended, for after="STEP" deadlines. */
  long *ended_ms = calloc((size_t)r->sc->nsteps + 1, sizeof *ended_ms);
  if (nsim_stamp_start(r) < 0) nsim_log(r, "no line timestamps: measures use the time they look");
  for (int i = 0; i < r->sc->nsteps; i++) {
    const struct nsim_step *s = &r->sc->steps[i];
    if (aborted || nsim__stopped()) {
      if (s->is_assert)
        nsim_report_add(rep, s->name, s->line, 1, NSIM_NOT_RUN, 0, "not reached");
      continue;
    }
    if (s->at_ms >= 0) {
      long until = r->t0_ms + s->at_ms;
      while (!nsim__stopped() && nsim_now_ms() < until) nsim_sleep_ms(until - nsim_now_ms());
    }
    if (nsim_now_ms() >= c.deadline) {
      nsim_report_add(rep, "scenario-timeout", s->line, 0, NSIM_FAIL, 0,
                      "the scenario's timeout (%ldms) ran out before this step", r->sc->timeout_ms);
      aborted = 1;
      i--;
      continue;
    }
    char what[160];
    nsim__describe(s, what, sizeof what);
    nsim_log(r, "line %d: %s", s->line, what);
    struct nsim__outcome o = {0, ""};
    long t = nsim_now_ms();
    struct nsim_step after_copy;
    if (s->after_step >= 0 && ended_ms) {
      /* The deadline counts from the end of the named step: what is left of it now (none
       * left still means one look). */
      long left = s->timeout_ms - (t - ended_ms[s->after_step]);
      after_copy = *s;
      after_copy.timeout_ms = left > 0 ? left : 0;
      nsim__do_step(&c, &after_copy, &o);
      size_t dl = strlen(o.detail);
      snprintf(o.detail + dl, sizeof o.detail - dl, " [deadline %ldms after %s, %ldms of it left "
               "at the start]", s->timeout_ms, s->after, after_copy.timeout_ms);
    } else {
      nsim__do_step(&c, s, &o);
    }
    long took = nsim_now_ms() - t;
    if (ended_ms) ended_ms[i] = nsim_now_ms();
    nsim_proc_reap(r);
    if (s->is_assert && s->xfail) {
      /* Written down as not holding yet: failing is the expected outcome; holding means the
       * scenario should now expect it. */
      if (o.pass)
        nsim_report_add(rep, s->name, s->line, 1, NSIM_XPASS, took,
                        "holds now (was expected to fail: %s); update the scenario: %s",
                        s->because, o.detail);
      else
        nsim_report_add(rep, s->name, s->line, 1, NSIM_XFAIL, took, "%s (expected until: %s)",
                        o.detail, s->because);
      nsim_log(r, "  %s %s: %s", o.pass ? "XPASS" : "XFAIL", s->name, o.detail);
    } else if (s->is_assert) {
      nsim_report_add(rep, s->name, s->line, 1, o.pass ? NSIM_PASS : NSIM_FAIL, took, "%s", o.detail);
      nsim_log(r, "  %s %s: %s", o.pass ? "PASS" : "FAIL", s->name, o.detail);
    } else if (!o.pass) {
      nsim_report_add(rep, s->name, s->line, 0, NSIM_FAIL, took, "%s", o.detail);
      nsim_log(r, "  step failed: %s", o.detail);
      aborted = 1;
    }
  }
  free(ended_ms);
  nsim_narrate_stop(r);
  nsim_stamp_stop(r);
  /* A router daemon that died mid-run invalidates what the scenario observed; any other
   * process that ended is worth a note (a crash explains many a failed assertion). */
  nsim_proc_reap(r);
  for (int i = 0; i < r->nprocs; i++) {
    const struct nsim_proc *p = &r->procs[i];
    char st[64];
    if (!p->exited) continue;
    nsim_proc_status_str(p, st, sizeof st);
    long at = p->exited_ms - r->t0_ms;
    if (p->daemon)
      nsim_report_add(rep, p->name, 0, 1, NSIM_FAIL, 0, "router daemon %s during the run (see %s)",
                      st, p->err_path);
    else
      nsim_report_add(rep, p->name, 0, 1, NSIM_NOTE, 0, "%s at %ld.%02lds (log %s)", st, at / 1000,
                      (at % 1000) / 10, p->err_path);
  }
  if (nsim__stopped()) rep->interrupted = 1;
}
