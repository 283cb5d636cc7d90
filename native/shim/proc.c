/* The container's processes: the runtime's create/start/exec/kill, stdio pipes and ptys, reaping, the durable
 * exit record, OOM detection. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "jsonutil.h"
#include "shim.h"
#include "util.h"

static uint64_t mono_ms(void) { return now_ms(); }

/* The last error the runtime logged (runtime.log, JSON lines), or NULL. malloc'd. */
static char *runtime_error(void) {
  char *text = NULL, *found = NULL;
  sk_error e;
  if (read_file("runtime.log", &text, NULL, &e) < 0) return NULL;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    json_object *o = json_tokener_parse(line);
    const char *level = json_object_get_string(j_get(o, "level"));
    const char *msg = json_object_get_string(j_get(o, "msg"));
    if (level && msg && strcmp(level, "error") == 0) {
      free(found);
      found = strdup(msg);
    }
    json_object_put(o);
  }
  free(text);
  return found;
}

int run_runtime(shim *s, const char *const *args, int fd0, int fd1, int fd2, sk_error *err) {
  const char *argv[64];
  int n = 0;
  argv[n++] = s->o.runtime;
  if (s->o.runtime_root) argv[n++] = "--root", argv[n++] = s->o.runtime_root;
  argv[n++] = "--log";
  argv[n++] = "runtime.log";
  argv[n++] = "--log-format";
  argv[n++] = "json";
  for (int i = 0; args[i] && n < 63; i++) argv[n++] = args[i];
  argv[n] = NULL;
  unlink("runtime.log");
  pid_t pid = fork();
  if (pid < 0) return sk_fail(err, errno, "fork for %s %s", s->o.runtime, args[0]);
  if (pid == 0) {
    /* the container inherits this: default signal mask and dispositions, only its stdio */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    int fds[3] = {fd0, fd1, fd2};
    for (int i = 0; i < 3; i++)
      if (fds[i] >= 0 && dup2(fds[i], i) < 0) _exit(127);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return sk_fail(err, errno, "waiting for %s %s", s->o.runtime, args[0]);
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
  char *msg = runtime_error();
  if (msg) {
    /* the runtime's own prefix is redundant here */
    const char *m = strncmp(msg, "skiff-runtime: ", 15) == 0 ? msg + 15 : msg;
    sk_fail(err, 0, "%s", m);
    free(msg);
  } else if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
    sk_fail(err, 0, "could not run the runtime %s", s->o.runtime);
  } else if (WIFEXITED(st)) {
    sk_fail(err, 0, "%s %s exited with status %d", s->o.runtime, args[0], WEXITSTATUS(st));
  } else {
    sk_fail(err, 0, "%s %s was killed by signal %d", s->o.runtime, args[0], WTERMSIG(st));
  }
  return -1;
}

static int read_pid_file(const char *path, pid_t *pid, sk_error *err) {
  char *text;
  int64_t v;
  if (read_file(path, &text, NULL, err) < 0) return -1;
  char *nl = strchr(text, '\n');
  if (nl) *nl = '\0';
  bool ok = parse_i64(text, &v) && v > 0 && v < INT32_MAX;
  free(text);
  if (!ok) return sk_fail(err, 0, "%s does not hold a pid", path);
  *pid = (pid_t)v;
  return 0;
}

/* A listening socket for the runtime's --console-socket; the runtime connects, sends the master and leaves, so the
 * connection waits in the backlog until we accept it after the runtime exits. */
static int console_listen(const char *name, sk_error *err) {
  unlink(name);
  return listen_unix(name, err);
}

static int console_receive(int lfd, sk_error *err) {
  int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (c < 0) return sk_fail(err, errno, "the runtime did not connect to the console socket");
  char data[256];
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  ssize_t n;
  do n = recvmsg(c, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  close(c);
  struct cmsghdr *cm = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL;
  if (cm == NULL || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
    return sk_fail(err, n < 0 ? errno : 0, "receiving the pty master from the console socket");
  int fd;
  memcpy(&fd, CMSG_DATA(cm), sizeof fd);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

/* stdio for a new process: child ends in cfd[3] (-1: the shim's /dev/null), our ends in p. */
static int make_stdio(process *p, int cfd[3], sk_error *err) {
  int in[2] = {-1, -1}, o[2] = {-1, -1}, e[2] = {-1, -1};
  cfd[0] = cfd[1] = cfd[2] = -1;
  p->out[0] = p->out[1] = p->stdin_fd = -1;
  if (p->tty) return 0;
  if ((p->want_stdin && pipe2(in, O_CLOEXEC) < 0) || pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0) {
    int en = errno;
    for (int i = 0; i < 2; i++) {
      if (in[i] >= 0) close(in[i]);
      if (o[i] >= 0) close(o[i]);
      if (e[i] >= 0) close(e[i]);
    }
    return sk_fail(err, en, "making the stdio pipes");
  }
  cfd[0] = in[0];
  cfd[1] = o[1];
  cfd[2] = e[1];
  p->stdin_fd = in[1];
  p->out[0] = o[0];
  p->out[1] = e[0];
  if (p->stdin_fd >= 0) set_nonblock(p->stdin_fd);
  set_nonblock(p->out[0]);
  set_nonblock(p->out[1]);
  return 0;
}

static void close_child_ends(int cfd[3]) {
  for (int i = 0; i < 3; i++)
    if (cfd[i] >= 0) close(cfd[i]), cfd[i] = -1;
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static void process_close_fds(process *p) {
  if (p->stdin_fd >= 0 && p->stdin_fd != p->out[0]) close(p->stdin_fd);
  p->stdin_fd = -1;
  close_fd(&p->out[0]);
  close_fd(&p->out[1]);
}

void process_free(process *p) {
  process_close_fds(p);
  buf_free(&p->stdin_pending);
  free(p->exec_id);
  free(p);
}

int shim_create(shim *s, sk_error *err) {
  process *p = calloc(1, sizeof *p);
  if (p == NULL) return sk_fail(err, ENOMEM, "create");
  p->tty = s->o.tty;
  p->want_stdin = s->o.stdin;
  s->procs = p;
  int cfd[3], con = -1;
  if (make_stdio(p, cfd, err) < 0) return -1;
  if (p->tty && (con = console_listen("console.sock", err)) < 0) return -1;
  const char *args[] = {"create", "--bundle", s->o.bundle, "--pid-file", "init.pid", NULL, NULL, NULL};
  int n = 5;
  if (p->tty) args[n++] = "--console-socket", args[n++] = "console.sock";
  args[n] = s->o.id;
  int r = run_runtime(s, args, cfd[0], cfd[1], cfd[2], err);
  close_child_ends(cfd);
  if (r < 0) {
    if (con >= 0) close(con), unlink("console.sock");
    return sk_wrap(err, "creating container %s", s->o.id);
  }
  if (p->tty) {
    int m = console_receive(con, err);
    close(con);
    unlink("console.sock");
    if (m < 0) return -1;
    p->out[0] = m;
    if (p->want_stdin) p->stdin_fd = m;
  }
  if (read_pid_file("init.pid", &p->pid, err) < 0) return sk_wrap(err, "after creating container %s", s->o.id);
  return 0;
}

int shim_start(shim *s, sk_error *err) {
  process *p = s->procs;
  if (p->exited) return sk_fail(err, 0, "container %s has stopped: it cannot be started", s->o.id);
  if (p->started) return sk_fail(err, 0, "container %s is already running", s->o.id);
  const char *args[] = {"start", s->o.id, NULL};
  if (run_runtime(s, args, -1, -1, -1, err) < 0) return -1;
  p->started = true;
  return 0;
}

process *shim_find(shim *s, const char *exec_id) {
  for (process *p = s->procs; p; p = p->next)
    if ((exec_id == NULL) == (p->exec_id == NULL) && (exec_id == NULL || strcmp(exec_id, p->exec_id) == 0)) return p;
  return NULL;
}

int shim_exec(shim *s, const char *exec_id, json_object *proc, bool tty, bool want_stdin, pid_t *pid, sk_error *err) {
  process *init = s->procs;
  if (init->exited) return sk_fail(err, 0, "container %s has stopped: cannot exec in it", s->o.id);
  char pfile[128], pidf[128];
  snprintf(pfile, sizeof pfile, "exec-%s.process.json", exec_id);
  snprintf(pidf, sizeof pidf, "exec-%s.pid", exec_id);
  json_object_object_add(proc, "terminal", json_object_new_boolean(tty));
  const char *text = json_object_to_json_string_ext(proc, JSON_C_TO_STRING_PLAIN);
  if (write_file(pfile, text, strlen(text), true, 0600, err) < 0) return -1;
  process *p = calloc(1, sizeof *p);
  if (p == NULL || (p->exec_id = strdup(exec_id)) == NULL) {
    free(p);
    unlink(pfile);
    return sk_fail(err, ENOMEM, "exec");
  }
  p->tty = tty;
  p->want_stdin = want_stdin;
  p->held = true;
  p->started = true;
  int cfd[3], con = -1, r = -1;
  if (make_stdio(p, cfd, err) < 0) goto fail;
  if (tty && (con = console_listen("console.sock", err)) < 0) goto fail;
  const char *args[] = {"exec", "--process", pfile, "--detach", "--pid-file", pidf, NULL, NULL, NULL, NULL, NULL};
  int n = 6;
  if (tty) args[n++] = "--tty", args[n++] = "--console-socket", args[n++] = "console.sock";
  args[n] = s->o.id;
  r = run_runtime(s, args, cfd[0], cfd[1], cfd[2], err);
  close_child_ends(cfd);
  if (r == 0 && tty) {
    int m = console_receive(con, err);
    if (m < 0)
      r = -1;
    else {
      p->out[0] = m;
      if (want_stdin) p->stdin_fd = m;
    }
  }
  if (r == 0) r = read_pid_file(pidf, &p->pid, err);
fail:
  if (con >= 0) close(con), unlink("console.sock");
  unlink(pfile);
  unlink(pidf);
  if (r < 0) {
    if (p->pid > 0) kill(p->pid, SIGKILL);
    process_free(p);
    return sk_wrap(err, "exec %s in container %s", exec_id, s->o.id);
  }
  /* after the init, in order of creation */
  process **tail = &s->procs;
  while (*tail) tail = &(*tail)->next;
  *tail = p;
  *pid = p->pid;
  return 0;
}

int shim_kill(shim *s, process *p, int sig, bool all, sk_error *err) {
  if (p->exited)
    return sk_fail(err, 0, "%s%s is not running", p->exec_id ? "exec " : "container ",
                   p->exec_id ? p->exec_id : s->o.id);
  if (p->exec_id) {
    if (kill(p->pid, sig) < 0) return sk_fail(err, errno, "kill exec %s (pid %d)", p->exec_id, (int)p->pid);
    return 0;
  }
  char signum[16];
  snprintf(signum, sizeof signum, "%d", sig);
  const char *args[] = {"kill", all ? "--all" : s->o.id, all ? s->o.id : signum, all ? signum : NULL, NULL};
  return run_runtime(s, args, -1, -1, -1, err);
}

int shim_resize(process *p, unsigned w, unsigned h, sk_error *err) {
  if (!p->tty) return sk_fail(err, 0, "%s has no terminal to resize", p->exec_id ? p->exec_id : "the container");
  if (p->out[0] < 0) return sk_fail(err, 0, "the terminal is closed");
  struct winsize ws = {.ws_row = (unsigned short)h, .ws_col = (unsigned short)w};
  if (ioctl(p->out[0], TIOCSWINSZ, &ws) < 0) return sk_fail(err, errno, "resizing the terminal");
  return 0;
}

void shim_close_stdin(process *p) {
  if (p->stdin_closed) return;
  if (p->stdin_pending.len) {
    p->stdin_close_pending = true;
    return;
  }
  p->stdin_closed = true;
  /* a pty stays open (it is the output too): only further input is refused */
  if (p->stdin_fd >= 0 && p->stdin_fd != p->out[0]) close(p->stdin_fd);
  p->stdin_fd = -1;
}

void shim_flush_stdin(process *p) {
  while (p->stdin_pending.len && p->stdin_fd >= 0) {
    ssize_t n = write(p->stdin_fd, p->stdin_pending.data, p->stdin_pending.len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n < 0) { /* the reader is gone: drop what is left */
      buf_consume(&p->stdin_pending, p->stdin_pending.len);
      break;
    }
    buf_consume(&p->stdin_pending, (size_t)n);
  }
  if (p->stdin_pending.len == 0 && p->stdin_close_pending) {
    p->stdin_close_pending = false;
    shim_close_stdin(p);
  }
}

const char *proc_status(const shim *s, const process *p) {
  if (p->recorded || p->exited) return "stopped";
  if (p->exec_id == NULL && !s->procs->started) return "created";
  return "running";
}

json_object *exit_json(const process *p) {
  char when[40];
  format_time(&p->exited_at, false, when);
  json_object *o = json_object_new_object();
  json_object_object_add(o, "pid", json_object_new_int(p->pid));
  json_object_object_add(o, "exitCode", json_object_new_int(p->exit_code));
  json_object_object_add(o, "signal", json_object_new_int(p->signal));
  json_object_object_add(o, "exitedAt", json_object_new_string(when));
  json_object_object_add(o, "oomKilled", json_object_new_boolean(p->oom_killed));
  return o;
}

/* The exit is durable (fsync + rename) before anyone hears of it. */
static void record_exit(shim *s, process *p) {
  if (p->recorded) return;
  if (p->exec_id == NULL) {
    if (s->has_log) log_flush_partial(&s->log);
    oom_check(s);
    p->oom_killed = s->oom_seen > 0;
  }
  char name[128];
  if (p->exec_id)
    snprintf(name, sizeof name, "exec-%s.exit.json", p->exec_id);
  else
    snprintf(name, sizeof name, "exit.json");
  json_object *o = exit_json(p);
  const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
  sk_error err;
  write_file_atomic(name, text, strlen(text), 0644, &err); /* nowhere to report a failure but the answers */
  json_object_put(o);
  int dfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) fsync(dfd), close(dfd);
  p->recorded = true;
  notify_exit(s, p);
}

/* Once the exit is recorded and the output is closed, attachers get the exit and are let go. */
static void maybe_finish(shim *s, process *p) {
  if (!p->exited) return;
  if (p->out[0] >= 0 || p->out[1] >= 0) return;
  record_exit(s, p);
  attach_exit(s, p);
}

/* Read what is there now from one output stream. Returns false once it is closed. */
static bool read_output(shim *s, process *p, int stream) {
  for (int rounds = 0; p->out[stream] >= 0 && rounds < 64; rounds++) {
    ssize_t n = read(p->out[stream], s->rbuf, sizeof s->rbuf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    if (n <= 0) { /* EOF, or EIO from a pty whose other side is closed */
      if (p->stdin_fd == p->out[stream]) p->stdin_fd = -1;
      close_fd(&p->out[stream]);
      return false;
    }
    if (p->exec_id == NULL && s->has_log) log_feed(&s->log, p->tty ? 0 : stream, s->rbuf, (size_t)n);
    attach_output(s, p, p->tty ? 0 : stream, s->rbuf, (size_t)n);
  }
  return p->out[stream] >= 0;
}

void shim_proc_output(shim *s, process *p, int stream) {
  if (!read_output(s, p, stream)) maybe_finish(s, p);
}

/* Everything written before the exit is in the pipe now: read it all. */
static void drain(shim *s, process *p) {
  for (int i = 0; i < 2; i++)
    while (p->out[i] >= 0) {
      ssize_t n = read(p->out[i], s->rbuf, sizeof s->rbuf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      if (n <= 0) {
        if (p->stdin_fd == p->out[i]) p->stdin_fd = -1;
        close_fd(&p->out[i]);
        break;
      }
      if (p->exec_id == NULL && s->has_log) log_feed(&s->log, p->tty ? 0 : i, s->rbuf, (size_t)n);
      attach_output(s, p, p->tty ? 0 : i, s->rbuf, (size_t)n);
    }
}

void shim_unhold(shim *s, process *p) {
  if (!p->held) return;
  p->held = false;
  if (p->exited) {
    drain(s, p);
    process_close_fds(p);
    maybe_finish(s, p);
  }
}

static void on_exit_status(shim *s, process *p, int st) {
  p->exited = true;
  clock_gettime(CLOCK_REALTIME, &p->exited_at);
  if (WIFSIGNALED(st)) {
    p->signal = WTERMSIG(st);
    p->exit_code = 128 + p->signal;
  } else {
    p->exit_code = WEXITSTATUS(st);
  }
  if (p->stdin_fd >= 0 && p->stdin_fd != p->out[0]) close(p->stdin_fd);
  p->stdin_fd = -1;
  p->stdin_closed = true;
  buf_consume(&p->stdin_pending, p->stdin_pending.len);
  if (p->held) { /* nobody attached yet: the output waits in the pipe for one; the exit is told now */
    record_exit(s, p);
    return;
  }
  drain(s, p);
  /* a pipe still open elsewhere (a background child), or a pty whose last output is on its way: wait a little */
  if (p->out[0] >= 0 || p->out[1] >= 0)
    p->deadline_ms = mono_ms() + DRAIN_GRACE_MS;
  else
    maybe_finish(s, p);
}

void shim_reap(shim *s) {
  for (;;) {
    int st;
    pid_t pid = waitpid(-1, &st, WNOHANG);
    if (pid <= 0) break;
    for (process *p = s->procs; p; p = p->next)
      if (p->pid == pid && !p->exited) {
        on_exit_status(s, p, st);
        break;
      }
  }
}

void shim_check_deadlines(shim *s, uint64_t now) {
  for (process *p = s->procs; p; p = p->next)
    if (p->deadline_ms && now >= p->deadline_ms) {
      p->deadline_ms = 0;
      drain(s, p);
      process_close_fds(p);
      maybe_finish(s, p);
    }
}

/* ---- OOM ---- */

/* The mount point and root of the cgroup hierarchy with `want` (a v1 controller, or NULL for cgroup2). */
static bool cgroup_mount(const char *want, char *mnt, size_t mlen, char *root, size_t rlen) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (f == NULL) return false;
  char *line = NULL;
  size_t cap = 0;
  bool found = false;
  while (!found && getline(&line, &cap, f) > 0) {
    char r[PATH_MAX], m[PATH_MAX];
    if (sscanf(line, "%*s %*s %*s %4095s %4095s", r, m) != 2) continue;
    char *sep = strstr(line, " - ");
    if (sep == NULL) continue;
    char fstype[64], source[256], opts[1024];
    if (sscanf(sep + 3, "%63s %255s %1023s", fstype, source, opts) != 3) continue;
    if (want == NULL) {
      found = strcmp(fstype, "cgroup2") == 0;
    } else if (strcmp(fstype, "cgroup") == 0) {
      for (char *save, *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save))
        if (strcmp(o, want) == 0) found = true;
    }
    if (found) snprintf(mnt, mlen, "%s", m), snprintf(root, rlen, "%s", r);
  }
  free(line);
  fclose(f);
  return found;
}

/* The directory of pid's cgroup in the hierarchy with `want` (NULL: cgroup2). */
static bool cgroup_dir(pid_t pid, const char *want, char *out, size_t olen) {
  char path[64], *text;
  sk_error e;
  snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
  if (read_file(path, &text, NULL, &e) < 0) return false;
  bool ok = false;
  char rel[PATH_MAX] = "";
  for (char *save, *line = strtok_r(text, "\n", &save); line && !ok; line = strtok_r(NULL, "\n", &save)) {
    char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c2 == NULL) continue;
    *c2 = '\0';
    const char *ctrls = c1 + 1;
    if (want == NULL) {
      ok = *ctrls == '\0';
    } else {
      char list[256];
      snprintf(list, sizeof list, "%s", ctrls);
      for (char *s2, *c = strtok_r(list, ",", &s2); c; c = strtok_r(NULL, ",", &s2))
        if (strcmp(c, want) == 0) ok = true;
    }
    if (ok) snprintf(rel, sizeof rel, "%s", c2 + 1);
  }
  free(text);
  char mnt[PATH_MAX], root[PATH_MAX];
  if (!ok || !cgroup_mount(want, mnt, sizeof mnt, root, sizeof root)) return false;
  const char *sub = rel;
  size_t rl = strlen(root);
  if (strcmp(root, "/") != 0 && strncmp(rel, root, rl) == 0) sub = rel + rl;
  snprintf(out, olen, "%s%s", mnt, sub);
  return true;
}

/* The kernel's count of OOM kills in the container's cgroup, or -1. */
static int64_t oom_count(const char *file) {
  char *text;
  sk_error e;
  if (read_file(file, &text, NULL, &e) < 0) return -1;
  char *k = strstr(text, "oom_kill ");
  int64_t v = k ? strtoll(k + 9, NULL, 10) : 0;
  free(text);
  return v;
}

void oom_setup(shim *s) {
  char dir[PATH_MAX], path[PATH_MAX + 32], line[64];
  pid_t pid = s->procs->pid;
  s->oom_fd = -1;
  if (cgroup_dir(pid, "memory", dir, sizeof dir)) { /* v1: eventfd on memory.oom_control */
    snprintf(s->oom_file, sizeof s->oom_file, "%s/memory.oom_control", dir);
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int cfd = open(s->oom_file, O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof path, "%s/cgroup.event_control", dir);
    snprintf(line, sizeof line, "%d %d", efd, cfd);
    sk_error e;
    if (efd >= 0 && cfd >= 0 && write_str(path, line, &e) == 0)
      s->oom_fd = efd;
    else if (efd >= 0)
      close(efd);
    if (cfd >= 0) close(cfd);
  } else if (cgroup_dir(pid, NULL, dir, sizeof dir)) { /* v2: inotify on memory.events */
    snprintf(s->oom_file, sizeof s->oom_file, "%s/memory.events", dir);
    int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (ifd >= 0 && inotify_add_watch(ifd, s->oom_file, IN_MODIFY) >= 0)
      s->oom_fd = ifd;
    else if (ifd >= 0)
      close(ifd);
  }
  if (s->oom_fd < 0) {
    s->oom_file[0] = '\0';
    return;
  }
  int64_t c = oom_count(s->oom_file);
  s->oom_base = c > 0 ? (uint64_t)c : 0;
}

void oom_check(shim *s) {
  if (s->oom_fd >= 0) { /* consume the notification */
    char b[4096];
    while (read(s->oom_fd, b, sizeof b) > 0) {
    }
  }
  if (s->oom_file[0] == '\0') return;
  int64_t c = oom_count(s->oom_file);
  if (c < 0) { /* the cgroup is gone */
    if (s->oom_fd >= 0) close(s->oom_fd);
    s->oom_fd = -1;
    s->oom_file[0] = '\0';
    return;
  }
  while ((uint64_t)c > s->oom_base + s->oom_seen) {
    s->oom_seen++;
    json_object *ev = json_object_new_object();
    json_object_object_add(ev, "event", json_object_new_string("oom"));
    notify_event(s, ev);
  }
}
