/* A fleet of fake servants over real TLS sessions against a real natmesh-manager: fleet.h. */
#include "fleet.h"

#include "nm_error.h"
#include "nm_frame.h"
#include "nm_xml.h"

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define IN_FLIGHT 6 /* below the manager's 8 unauthenticated sessions per address */
#define MANAGER_ARGS 32

int fleet_failures;

static void start_next(fleet *f);

static int on_frame(nm_conn *c, uint8_t type, const char *payload, size_t len) {
  fleet_sess *s = c->data;
  fleet *f = s->fleet;
  f->frame(s, type, payload, len);
  if (type == NM_MSG_WELCOME && s->state == S_HELLO) {
    f->unwelcomed--;
    start_next(f);
    nm_msg m = {.type = NM_MSG_LISTENING};
    m.u.listening.port = (uint16_t)(20000 + s->index);
    nm_msg_send(c, &m);
    s->state = S_LISTENING;
  }
  return 0;
}

static void on_closed(nm_conn *c) {
  fleet_sess *s = c->data;
  s->closed = 1;
  if (s->state == S_CONNECTING || s->state == S_HELLO) s->fleet->unwelcomed--;
  if (s->state != S_READY || !s->whole) {
    s->fleet->failed++;
    if (!s->why[0]) snprintf(s->why, sizeof s->why, "closed: %s", nm_strerror(c->close_err));
  }
}

static void on_connected(nm_conn *c, int status) {
  fleet_sess *s = c->data;
  if (status < 0) return;
  nm_frame_reader_set_max(&c->reader, NM_FRAME_MAX);
  nm_msg m = {.type = NM_MSG_HELLO};
  snprintf(m.u.hello.id, sizeof m.u.hello.id, "%s", nm_identity_id(&s->id));
  snprintf(m.u.hello.name, sizeof m.u.hello.name, "%s%d", s->fleet->name, s->index);
  m.u.hello.role = NM_ROLE_SERVANT;
  m.u.hello.port = (uint16_t)(20000 + s->index);
  if (s->fleet->hello) s->fleet->hello(s, &m);
  nm_msg_send(c, &m);
  s->state = S_HELLO;
}

static void start_next(fleet *f) {
  while (f->next < f->n && f->unwelcomed < IN_FLIGHT) {
    fleet_sess *s = &f->s[f->next];
    s->fleet = f;
    s->index = f->next++;
    char err[200];
    if (nm_identity_generate(&s->id) < 0 || nm_tls_ctx_init(&s->ctx, &s->id, err, sizeof err) < 0) {
      f->failed++;
      continue;
    }
    nm_peerlist_init(&s->list);
    s->list.max = (size_t)f->n + 16;
    nm_conn_init(f->loop, &s->conn, on_frame, on_closed, s);
    nm_conn_set_tls(&s->conn, &s->ctx, NM_TLS_CLIENT, NULL);
    s->state = S_CONNECTING;
    f->unwelcomed++;
    nm_conn_connect(&s->conn, (struct sockaddr *)&f->maddr, 20000, on_connected);
  }
}

void fleet_whole(fleet_sess *s) {
  if (!s->whole && s->state == S_LISTENING) {
    s->state = S_READY;
    s->fleet->ready++;
  }
  s->whole = 1;
}

void fleet_take_peers(fleet_sess *s, const nm_msg *m, int fresh) {
  if (fresh) nm_peerlist_clear(&s->list);
  for (size_t i = 0; i < m->u.peers.list->count; i++) nm_peerlist_upsert(&s->list, &m->u.peers.list->peers[i]);
  s->list.version = m->u.peers.list->version;
}

void fleet_take_delta(fleet_sess *s, const nm_msg *m) {
  for (size_t i = 0; i < m->u.delta.count; i++) {
    const nm_delta_change *c = &m->u.delta.changes[i];
    if (c->leave) nm_peerlist_remove(&s->list, c->peer.id);
    else nm_peerlist_upsert(&s->list, &c->peer);
  }
  s->list.version = m->u.delta.version;
}

static void on_timer(uv_timer_t *t) { *(int *)t->data = 1; }

void fleet_run_for(fleet *f, unsigned ms) {
  int expired = 0;
  uv_timer_t t;
  uv_timer_init(f->loop, &t);
  t.data = &expired;
  uv_timer_start(&t, on_timer, ms, 0);
  while (!expired) uv_run(f->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(f->loop, UV_RUN_NOWAIT);
}

static uint16_t free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(fd, (struct sockaddr *)&a, &len) < 0) return 0;
  close(fd);
  return ntohs(a.sin_port);
}

int fleet_prepare(fleet *f, int n, const char *tag) {
  f->n = n;
  signal(SIGPIPE, SIG_IGN);
  nm_xml_init();
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
    printf("skip: %d sessions need more than ulimit -n %llu\n", n, (unsigned long long)rl.rlim_cur);
    return 77;
  }
  snprintf(f->dir, sizeof f->dir, "/tmp/%s.XXXXXX", tag);
  if (!mkdtemp(f->dir)) return perror("mkdtemp"), 1;
  f->port = free_port();
  snprintf(f->log, sizeof f->log, "%s/manager.log", f->dir);
  return 0;
}

void fleet_start(fleet *f, const char *path, ...) {
  char portstr[8];
  snprintf(portstr, sizeof portstr, "%u", f->port);
  const char *argv[MANAGER_ARGS] = {path, "--open", "--state-dir", f->dir, "--listen", "127.0.0.1", "--port",
                                    portstr, "--heartbeat", "60", "--timeout", "600"};
  int argc = 12;
  va_list ap;
  va_start(ap, path);
  for (const char *a; argc < MANAGER_ARGS - 1 && (a = va_arg(ap, const char *));) argv[argc++] = a;
  va_end(ap);
  argv[argc] = NULL;
  f->pid = fork();
  if (f->pid == 0) {
    int fd = open(f->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) dup2(fd, 1), dup2(fd, 2);
    execv(path, (char *const *)argv);
    _exit(127);
  }
  f->loop = uv_default_loop();
  uv_ip4_addr("127.0.0.1", f->port, &f->maddr);
  for (int i = 0; i < 100; i++) { /* ready when it accepts */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int ok = connect(fd, (struct sockaddr *)&f->maddr, sizeof f->maddr) == 0;
    close(fd);
    if (ok) break;
    usleep(50 * 1000);
  }
  f->s = calloc((size_t)f->n, sizeof *f->s);
}

void fleet_register(fleet *f, unsigned deadline_ms, void (*step)(fleet *f)) {
  start_next(f);
  int expired = 0;
  uv_timer_init(f->loop, &f->deadline);
  f->deadline.data = &expired;
  uv_timer_start(&f->deadline, on_timer, deadline_ms, 0);
  while (f->ready + f->failed < f->n && !expired) {
    uv_run(f->loop, UV_RUN_ONCE);
    if (step) step(f);
  }
  uv_timer_stop(&f->deadline);
}

int fleet_stop(fleet *f) {
  for (int i = 0; i < f->next; i++)
    if (!f->s[i].conn.closing && f->s[i].state != S_IDLE) nm_conn_close(&f->s[i].conn, 0, NULL);
  uv_close((uv_handle_t *)&f->deadline, NULL);
  uv_run(f->loop, UV_RUN_DEFAULT);
  for (int i = 0; i < f->next; i++) {
    nm_tls_ctx_close(&f->s[i].ctx);
    nm_identity_close(&f->s[i].id);
    nm_peerlist_close(&f->s[i].list);
  }
  free(f->s);
  f->s = NULL;
  kill(f->pid, SIGTERM);
  int mst = 0;
  waitpid(f->pid, &mst, 0);
  return mst;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) { return remove(p); }

int fleet_finish(fleet *f) {
  if (fleet_failures) printf("# manager log kept in %s\n", f->log);
  else nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  return fleet_failures ? 1 : 0;
}
