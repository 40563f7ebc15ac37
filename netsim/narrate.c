#include "narrate.h"
#include "scenario.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NSIM_NARRATE_EVERY_MS 20
#define NSIM_NARRATE_LINE_MAX 4096 /* a longer line is cut there */

struct nsim__rule {
  char path[PATH_MAX];
  long offset;            /* where the next unread line starts */
  char prefix[48];
  char *text;             /* owned; NULL with a regex */
  regex_t re;
  int has_re, groups;
  char partial[NSIM_NARRATE_LINE_MAX]; /* a line read without its end yet */
  size_t npartial;
};

struct nsim_narrator {
  pthread_t thread;
  pthread_mutex_t lock;   /* the rules, stop, and stdout */
  int stop, running;
  long t0_ms;
  struct nsim__rule *rules[NSIM_NARRATE_RULES];
  int nrules;
};

static struct nsim_narrator *nsim__narrator; /* one run per process */

static void nsim__emit(struct nsim_narrator *n, const char *prefix, const char *line) {
  long t = nsim_now_ms() - n->t0_ms;
  if (prefix && prefix[0])
    printf("%4ld.%lds  %-10s %s\n", t / 1000, (t % 1000) / 100, prefix, line);
  else
    printf("%4ld.%lds  %s\n", t / 1000, (t % 1000) / 100, line);
  fflush(stdout);
}

static void nsim__rule_line(struct nsim_narrator *n, struct nsim__rule *ru, char *line) {
  if (ru->text && !strstr(line, ru->text)) return;
  if (ru->has_re) {
    regmatch_t m[2];
    if (regexec(&ru->re, line, 2, m, 0) != 0) return;
    if (ru->groups >= 1 && m[1].rm_so >= 0) {
      line[m[1].rm_eo] = 0;
      line += m[1].rm_so;
    }
  }
  nsim__emit(n, ru->prefix, line);
}

/* Reads what the rule's log gained since last time; prints the complete lines that match. */
static void nsim__rule_poll(struct nsim_narrator *n, struct nsim__rule *ru) {
  FILE *f = fopen(ru->path, "re");
  if (!f) return;
  if (fseek(f, ru->offset, SEEK_SET) == 0) {
    char buf[8192];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
      ru->offset += (long)got;
      for (size_t i = 0; i < got; i++) {
        if (buf[i] != '\n') {
          if (ru->npartial + 1 < sizeof ru->partial) ru->partial[ru->npartial++] = buf[i];
          continue;
        }
        ru->partial[ru->npartial] = 0;
        nsim__rule_line(n, ru, ru->partial);
        ru->npartial = 0;
      }
    }
  }
  fclose(f);
}

static void nsim__poll_all(struct nsim_narrator *n) {
  for (int i = 0; i < n->nrules; i++) nsim__rule_poll(n, n->rules[i]);
}

static void *nsim__narrate_main(void *arg) {
  struct nsim_narrator *n = arg;
  for (;;) {
    pthread_mutex_lock(&n->lock);
    if (n->stop) {
      pthread_mutex_unlock(&n->lock);
      return NULL;
    }
    nsim__poll_all(n);
    pthread_mutex_unlock(&n->lock);
    nsim_sleep_ms(NSIM_NARRATE_EVERY_MS);
  }
}

int nsim_narrate_start(struct nsim_run *r) {
  if (nsim__narrator) return 0;
  struct nsim_narrator *n = calloc(1, sizeof *n);
  if (!n) return -ENOMEM;
  pthread_mutex_init(&n->lock, NULL);
  n->t0_ms = r->t0_ms ? r->t0_ms : nsim_now_ms();
  /* The thread must never take the run's signals (Ctrl-C ends the run on the main thread). */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&n->thread, NULL, nsim__narrate_main, n);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    pthread_mutex_destroy(&n->lock);
    free(n);
    return -rc;
  }
  n->running = 1;
  nsim__narrator = n;
  return 0;
}

void nsim_narrate_stop(struct nsim_run *r) {
  (void)r;
  struct nsim_narrator *n = nsim__narrator;
  if (!n) return;
  pthread_mutex_lock(&n->lock);
  nsim__poll_all(n); /* the last lines, printed before the report */
  n->stop = 1;
  pthread_mutex_unlock(&n->lock);
  if (n->running) pthread_join(n->thread, NULL);
  for (int i = 0; i < n->nrules; i++) {
    if (n->rules[i]->has_re) regfree(&n->rules[i]->re);
    free(n->rules[i]->text);
    free(n->rules[i]);
  }
  pthread_mutex_destroy(&n->lock);
  free(n);
  nsim__narrator = NULL;
}

static int nsim__add(struct nsim_run *r, const char *path, long from, const char *text, const char *regex,
                     const char *prefix, char *err, size_t errlen) {
  int rc = nsim_narrate_start(r);
  if (rc < 0) {
    snprintf(err, errlen, "cannot start the narrator: %s", strerror(-rc));
    return rc;
  }
  struct nsim_narrator *n = nsim__narrator;
  struct nsim__rule *ru = calloc(1, sizeof *ru);
  if (!ru) return -ENOMEM;
  snprintf(ru->path, sizeof ru->path, "%s", path);
  snprintf(ru->prefix, sizeof ru->prefix, "%s", prefix);
  ru->offset = from;
  if (regex) {
    if (regcomp(&ru->re, regex, REG_EXTENDED) != 0) {
      snprintf(err, errlen, "bad regex \"%s\"", regex);
      free(ru);
      return -EINVAL;
    }
    ru->has_re = 1;
    ru->groups = (int)ru->re.re_nsub;
  } else if (text && !(ru->text = strdup(text))) {
    free(ru);
    return -ENOMEM;
  }
  pthread_mutex_lock(&n->lock);
  if (n->nrules == NSIM_NARRATE_RULES) {
    pthread_mutex_unlock(&n->lock);
    if (ru->has_re) regfree(&ru->re);
    free(ru->text);
    free(ru);
    snprintf(err, errlen, "more than %d narrate rules", NSIM_NARRATE_RULES);
    return -ENOSPC;
  }
  n->rules[n->nrules++] = ru;
  pthread_mutex_unlock(&n->lock);
  return 0;
}

int nsim_narrate_follow(struct nsim_run *r, const struct nsim_proc *p, int streams, const char *text,
                        const char *regex, const char *prefix, char *err, size_t errlen) {
  if (!prefix) prefix = p->name;
  int rc = 0;
  if ((streams & NSIM_STREAM_OUT) && p->out_path[0])
    rc = nsim__add(r, p->out_path, p->out_base, text, regex, prefix, err, errlen);
  if (rc == 0 && (streams & NSIM_STREAM_ERR) && p->err_path[0] && strcmp(p->err_path, p->out_path) != 0)
    rc = nsim__add(r, p->err_path, p->err_base, text, regex, prefix, err, errlen);
  return rc;
}

void nsim_narrate_lines(struct nsim_run *r, const char *prefix, const char *text) {
  if (nsim_narrate_start(r) < 0) return;
  struct nsim_narrator *n = nsim__narrator;
  pthread_mutex_lock(&n->lock);
  nsim__poll_all(n); /* what the logs hold comes first: the order things happened */
  for (const char *p = text; *p;) {
    size_t len = strcspn(p, "\n");
    char line[NSIM_NARRATE_LINE_MAX];
    snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), p);
    /* A command's output (a table) as it is, indented, without times. */
    printf("  %s%s%s\n", prefix ? prefix : "", prefix ? " " : "", line);
    p += len;
    if (*p) p++;
  }
  fflush(stdout);
  pthread_mutex_unlock(&n->lock);
}

void nsim_narrate_say(struct nsim_run *r, const char *text) {
  if (nsim_narrate_start(r) < 0) return;
  struct nsim_narrator *n = nsim__narrator;
  pthread_mutex_lock(&n->lock);
  nsim__poll_all(n);
  printf("\n== %s ==\n", text);
  fflush(stdout);
  pthread_mutex_unlock(&n->lock);
}
