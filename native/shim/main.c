/* skiff-shim: holds one container's stdio, writes its log, reaps its exit and keeps it for the supervisor
 * (docs/shim-protocol.md). The process the supervisor runs forks; the child detaches (setsid, child subreaper),
 * creates the container and reports the verdict on a pipe; the parent exits 0 or 1 with it. The child then runs
 * one poll loop until the container is deleted. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shim.h"
#include "util.h"

static const char usage[] =
    "usage: skiff-shim --id ID --bundle DIR --dir SHIMDIR --runtime PATH [--runtime-root DIR]\n"
    "                  [--log-path FILE] [--log-max-size BYTES] [--log-max-file N] [--tty] [--stdin]\n";

static int parse_args(int argc, char **argv, shim_opts *o, sk_error *err) {
  static const struct option longs[] = {{"id", required_argument, NULL, 'i'},
                                        {"bundle", required_argument, NULL, 'b'},
                                        {"dir", required_argument, NULL, 'd'},
                                        {"runtime", required_argument, NULL, 'r'},
                                        {"runtime-root", required_argument, NULL, 'R'},
                                        {"log-path", required_argument, NULL, 'l'},
                                        {"log-max-size", required_argument, NULL, 's'},
                                        {"log-max-file", required_argument, NULL, 'f'},
                                        {"tty", no_argument, NULL, 't'},
                                        {"stdin", no_argument, NULL, 'I'},
                                        {"help", no_argument, NULL, 'h'},
                                        {NULL, 0, NULL, 0}};
  int c;
  int64_t v;
  o->log_max_file = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
    switch (c) {
      case 'i':
        o->id = optarg;
        break;
      case 'b':
        o->bundle = optarg;
        break;
      case 'd':
        o->dir = optarg;
        break;
      case 'r':
        o->runtime = optarg;
        break;
      case 'R':
        o->runtime_root = optarg;
        break;
      case 'l':
        o->log_path = optarg;
        break;
      case 's':
        if (!parse_i64(optarg, &v) || v < 0) return sk_fail(err, 0, "--log-max-size must be a number of bytes");
        o->log_max_size = (uint64_t)v;
        break;
      case 'f':
        if (!parse_i64(optarg, &v) || v < 1 || v > 1000) return sk_fail(err, 0, "--log-max-file must be 1 to 1000");
        o->log_max_file = (int)v;
        break;
      case 't':
        o->tty = true;
        break;
      case 'I':
        o->stdin = true;
        break;
      case 'h':
        fputs(usage, stdout), exit(0);
      default:
        return sk_fail(err, 0, "unknown or incomplete option %s\n%s", argv[optind - 1], usage);
    }
  }
  if (optind < argc) return sk_fail(err, 0, "unexpected argument %s\n%s", argv[optind], usage);
  if (!o->id || !o->bundle || !o->dir || !o->runtime)
    return sk_fail(err, 0, "--id, --bundle, --dir and --runtime are required\n%s", usage);
  if (o->id[0] == '\0' || strchr(o->id, '/') || o->id[0] == '.')
    return sk_fail(err, 0, "container id \"%s\" is not valid", o->id);
  return 0;
}

/* Absolute paths: the shim works from inside SHIMDIR. */
static char *absolute(const char *path, const char *what, sk_error *err) {
  char *r = realpath(path, NULL);
  if (r == NULL) sk_fail(err, errno, "%s %s", what, path);
  return r;
}

static bool live_shim_in(const char *dir) {
  char path[PATH_MAX + 16], *text;
  sk_error e;
  int64_t pid;
  snprintf(path, sizeof path, "%s/shim.pid", dir);
  if (read_file(path, &text, NULL, &e) < 0) return false;
  bool live = parse_i64(text, &pid) && pid > 0 && kill((pid_t)pid, 0) == 0;
  free(text);
  return live;
}

static int write_small(const char *name, const char *fmt, int v, sk_error *err) {
  char b[32];
  int n = snprintf(b, sizeof b, fmt, v);
  return write_file_atomic(name, b, (size_t)n, 0644, err);
}

/* Everything up to a created container and listening sockets. On failure nothing is left behind. */
static int setup(shim *s, sk_error *err) {
  bool made_dir = false, in_dir = false, created = false;
  if (live_shim_in(s->o.dir)) return sk_fail(err, 0, "a shim already runs in %s", s->o.dir);
  if (mkdir(s->o.dir, 0700) == 0)
    made_dir = true;
  else if (errno != EEXIST)
    return sk_fail(err, errno, "making the shim directory %s", s->o.dir);
  char *dir = absolute(s->o.dir, "shim directory", err);
  if (dir == NULL || chdir(dir) < 0) {
    if (dir) sk_fail(err, errno, "chdir %s", dir);
    goto fail;
  }
  s->o.dir = dir;
  in_dir = true;
  unlink("control.sock");
  unlink("attach.sock");
  unlink("exit.json");
  if (write_small("shim.pid", "%d", (int)getpid(), err) < 0 ||
      write_small("version", "%d", SHIM_PROTOCOL_VERSION, err) < 0)
    goto fail;
  if (s->o.log_path) {
    s->log.path = s->o.log_path;
    s->log.max_size = s->o.log_max_size;
    s->log.max_file = s->o.log_max_file;
    if (log_open_file(&s->log, err) < 0) goto fail;
    s->has_log = true;
  }
  if ((s->ctl_listen = listen_unix("control.sock", err)) < 0 || (s->att_listen = listen_unix("attach.sock", err)) < 0)
    goto fail;
  if (shim_create(s, err) < 0) goto fail;
  created = true;
  oom_setup(s);
  return 0;
fail:
  if (created) {
    sk_error ignored;
    const char *args[] = {"delete", "--force", s->o.id, NULL};
    run_runtime(s, args, -1, -1, -1, &ignored);
  }
  if (s->ctl_listen >= 0) close(s->ctl_listen);
  if (s->att_listen >= 0) close(s->att_listen);
  if (s->has_log && s->log.fd >= 0) close(s->log.fd);
  for (process *p = s->procs; p; p = p->next) process_free(p);
  s->procs = NULL;
  if (in_dir) shim_remove_files(s);
  if (made_dir) rmdir(s->o.dir);
  return -1;
}

enum kind { K_CTL, K_ATT, K_SIG, K_OOM, K_CLIENT, K_ATTACHER, K_OUT, K_STDIN };
typedef struct slot {
  enum kind kind;
  void *ptr;
  int stream;
} slot;

static void drop_client(shim *s, client **pc) {
  client *c = *pc;
  for (waiter **w = &s->waiters; *w;) {
    if ((*w)->c == c) {
      waiter *d = *w;
      *w = d->next;
      json_object_put(d->req_id);
      free(d);
    } else {
      w = &(*w)->next;
    }
  }
  *pc = c->next;
  close(c->fd);
  buf_free(&c->in);
  buf_free(&c->out);
  json_object_put(c->sub_id);
  free(c);
}

static void sweep(shim *s) {
  for (client **pc = &s->clients; *pc;)
    if ((*pc)->closing && (*pc)->out.len == 0)
      drop_client(s, pc);
    else
      pc = &(*pc)->next;
  for (attacher **pa = &s->attachers; *pa;) {
    attacher *a = *pa;
    if (a->closing && a->out.len == 0) {
      *pa = a->next;
      close(a->fd);
      buf_free(&a->in);
      buf_free(&a->out);
      free(a);
    } else {
      pa = &a->next;
    }
  }
}

static void add(struct pollfd **pfd, slot **sl, size_t *n, size_t *cap, int fd, short ev, enum kind k, void *ptr,
                int stream) {
  if (*n == *cap) {
    *cap = *cap ? *cap * 2 : 16;
    *pfd = realloc(*pfd, *cap * sizeof **pfd);
    *sl = realloc(*sl, *cap * sizeof **sl);
    if (*pfd == NULL || *sl == NULL) abort();
  }
  (*pfd)[*n] = (struct pollfd){.fd = fd, .events = ev};
  (*sl)[*n] = (slot){.kind = k, .ptr = ptr, .stream = stream};
  (*n)++;
}

/* Flush pending answers before leaving (delete): the sockets are made blocking with a short timeout. */
static void flush_all(shim *s) {
  struct timeval tv = {.tv_sec = 1};
  for (client *c = s->clients; c; c = c->next) {
    if (c->out.len == 0) continue;
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) & ~O_NONBLOCK);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    client_flush(c);
  }
}

static void loop(shim *s) {
  struct pollfd *pfd = NULL;
  slot *sl = NULL;
  size_t cap = 0;
  while (!s->quit) {
    sweep(s);
    size_t n = 0;
    add(&pfd, &sl, &n, &cap, s->ctl_listen, POLLIN, K_CTL, NULL, 0);
    add(&pfd, &sl, &n, &cap, s->att_listen, POLLIN, K_ATT, NULL, 0);
    add(&pfd, &sl, &n, &cap, s->sigfd, POLLIN, K_SIG, NULL, 0);
    if (s->oom_fd >= 0) add(&pfd, &sl, &n, &cap, s->oom_fd, POLLIN, K_OOM, NULL, 0);
    for (client *c = s->clients; c; c = c->next)
      add(&pfd, &sl, &n, &cap, c->fd, (short)((c->closing ? 0 : POLLIN) | (c->out.len ? POLLOUT : 0)), K_CLIENT, c, 0);
    for (attacher *a = s->attachers; a; a = a->next) {
      bool in = !a->closing && !(a->proc && a->proc->stdin_pending.len);
      add(&pfd, &sl, &n, &cap, a->fd, (short)((in ? POLLIN : 0) | (a->out.len ? POLLOUT : 0)), K_ATTACHER, a, 0);
    }
    uint64_t now = now_ms(), deadline = 0;
    for (process *p = s->procs; p; p = p->next) {
      if (!p->held)
        for (int i = 0; i < 2; i++)
          if (p->out[i] >= 0) add(&pfd, &sl, &n, &cap, p->out[i], POLLIN, K_OUT, p, i);
      if (p->stdin_pending.len && p->stdin_fd >= 0) add(&pfd, &sl, &n, &cap, p->stdin_fd, POLLOUT, K_STDIN, p, 0);
      if (p->deadline_ms && (deadline == 0 || p->deadline_ms < deadline)) deadline = p->deadline_ms;
    }
    int timeout = deadline == 0 ? -1 : deadline <= now ? 0 : (int)(deadline - now);
    int r = poll(pfd, n, timeout);
    unsigned gen = s->generation;
    if (r < 0 && errno != EINTR) break;
    for (size_t i = 0; r > 0 && i < n && !s->quit; i++) {
      short re = pfd[i].revents;
      if (re == 0) continue;
      switch (sl[i].kind) {
        case K_CTL:
          control_accept(s);
          break;
        case K_ATT:
          attach_accept(s);
          break;
        case K_SIG: {
          struct signalfd_siginfo si;
          while (read(s->sigfd, &si, sizeof si) > 0) {
          }
          shim_reap(s);
          break;
        }
        case K_OOM:
          oom_check(s);
          break;
        case K_CLIENT:
          control_io(s, sl[i].ptr, re);
          break;
        case K_ATTACHER:
          attach_io(s, sl[i].ptr, re);
          break;
        case K_OUT: {
          process *p = sl[i].ptr;
          /* the fd may have been closed by an earlier slot this round (an exit drains everything) */
          if (p->out[sl[i].stream] == pfd[i].fd && !p->held) shim_proc_output(s, p, sl[i].stream);
          break;
        }
        case K_STDIN: {
          process *p = sl[i].ptr;
          if (p->stdin_fd != pfd[i].fd) break;
          shim_flush_stdin(p);
          if (p->stdin_pending.len == 0)
            for (attacher *a = s->attachers; a; a = a->next)
              if (a->proc == p && a->in.len) attacher_frames(s, a);
          break;
        }
      }
      /* a request may have forgotten a process that a later slot points to: start a new round then */
      if (s->generation != gen) break;
    }
    shim_check_deadlines(s, now_ms());
  }
  flush_all(s);
  free(pfd);
  free(sl);
}

int main(int argc, char **argv) {
  /* whatever the starter left open (a supervisor's pipes, say) is not ours to hold nor to pass on */
  if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0)
    for (int fd = 3; fd < 1024; fd++) close(fd);
  shim *s = calloc(1, sizeof *s);
  sk_error err;
  if (s == NULL) return 1;
  s->ctl_listen = s->att_listen = s->sigfd = s->oom_fd = -1;
  if (parse_args(argc, argv, &s->o, &err) < 0) {
    fprintf(stderr, "skiff-shim: %s\n", err.msg);
    return 2;
  }
  char *bundle = absolute(s->o.bundle, "bundle", &err), *runtime = NULL;
  if (bundle == NULL || (runtime = absolute(s->o.runtime, "runtime", &err)) == NULL) {
    fprintf(stderr, "skiff-shim: %s\n", err.msg);
    return 1;
  }
  s->o.bundle = bundle;
  s->o.runtime = runtime;
  int vp[2];
  if (pipe2(vp, O_CLOEXEC) < 0) {
    fprintf(stderr, "skiff-shim: pipe: %s\n", strerror(errno));
    return 1;
  }
  fflush(NULL);
  pid_t child = fork();
  if (child < 0) {
    fprintf(stderr, "skiff-shim: fork: %s\n", strerror(errno));
    return 1;
  }
  if (child > 0) { /* the foreground process: wait for the verdict */
    close(vp[1]);
    char msg[4200];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof msg - 1) {
      n = read(vp[0], msg + len, sizeof msg - 1 - len);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      len += (size_t)n;
    }
    msg[len] = '\0';
    if (len > 0 && msg[0] == '0') return 0;
    waitpid(child, NULL, 0); /* it cleaned up and is gone when we report */
    fprintf(stderr, "skiff-shim: %s\n", len > 1 ? msg + 1 : "the shim died while creating the container");
    return 1;
  }
  close(vp[0]);
  setsid();
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  umask(022);
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    for (int i = 0; i < 3; i++) dup2(null, i);
    if (null > 2) close(null);
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
  s->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (s->sigfd < 0) {
    sk_fail(&err, errno, "signalfd");
    dprintf(vp[1], "1%s", err.msg);
    return 1;
  }
  if (setup(s, &err) < 0) {
    dprintf(vp[1], "1%s", err.msg);
    return 1;
  }
  write_all(vp[1], "0", 1);
  close(vp[1]);
  shim_reap(s); /* the init may already have gone (killed before start) */
  loop(s);
  return 0;
}
