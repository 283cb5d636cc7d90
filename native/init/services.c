/* The services PID 1 keeps running (sshd and skiff-agent, restarted with back-off when they die), the reaping of
 * every orphan, the power button, and the power-off. One poll loop over a signalfd (all signals are blocked and
 * read from it), the pipes carrying the services' output, and the event devices that can report KEY_POWER. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/input.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"
#include "util.h"

#define MAX_INPUTS 32
#define MAX_STREAMS 16
#define LOG_ROTATE_BYTES (16 << 20)
#define BACKOFF_FIRST_MS 200
#define BACKOFF_MAX_MS 10000
#define HEALTHY_RUN_MS 10000 /* a service that ran this long restarts after the first delay again */

static char *const service_env[] = {
    "PATH=/usr/lib/skiff/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
    "LANG=C.UTF-8", NULL};

typedef struct service {
  const char *name;
  char *argv[MAX_AGENT_ARGS + 8];
  char log_path[PATH_MAX];
  pid_t pid;           /* 0 when not running */
  uint64_t started;    /* mono_ms of the last start */
  uint64_t restart_at; /* mono_ms of the next start, 0 if none is due */
  uint64_t backoff;    /* the last restart delay */
  int restarts;
} service;

/* A pipe carrying a service's stdout and stderr. It outlives the service when children of it hold it open. */
typedef struct stream {
  int fd;
  service *svc;
  int log_fd;
  off_t log_size;
  char buf[4096];
  size_t len;
} stream;

struct init_state {
  const init_opts *o;
  const init_config *c;
  int sigfd;
  int inputs[MAX_INPUTS];
  int ninputs;
  stream streams[MAX_STREAMS];
  int nstreams;
  service sshd, agent;
  bool ready_said;
  bool stopping;               /* the power-off has begun: no restarts */
  const char *poweroff_reason; /* a power-off was asked for */
  pid_t shell;                 /* the rescue shell */
};

init_state *services_new(const init_opts *o, const init_config *c, sk_error *err) {
  init_state *s = calloc(1, sizeof *s);
  if (!s) {
    sk_fail(err, ENOMEM, "allocating state");
    return NULL;
  }
  s->o = o;
  s->c = c;
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, NULL);
  s->sigfd = signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
  if (s->sigfd < 0) {
    sk_fail(err, errno, "signalfd");
    free(s);
    return NULL;
  }
  /* Ctrl-Alt-Del becomes SIGINT to PID 1 (only the VM's init may change it). */
  if (!o->test && reboot(RB_DISABLE_CAD) < 0) warn("disabling Ctrl-Alt-Del: %s", strerror(errno));
  s->sshd.name = "sshd";
  s->agent.name = "agent";
  return s;
}

/* ---- the power button ---- */

static bool reports_power_key(int fd) {
  unsigned long bits[KEY_MAX / (8 * sizeof(unsigned long)) + 1];
  memset(bits, 0, sizeof bits);
  if (ioctl(fd, EVIOCGBIT(EV_KEY, sizeof bits), bits) < 0) return true; /* not evdev (a test's FIFO): keep it */
  return (bits[KEY_POWER / (8 * sizeof(unsigned long))] >> (KEY_POWER % (8 * sizeof(unsigned long)))) & 1;
}

void open_inputs(init_state *s) {
  DIR *d = opendir(s->o->input_dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)) && s->ninputs < MAX_INPUTS) {
      if (strncmp(e->d_name, "event", 5) != 0) continue;
      int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) continue;
      if (reports_power_key(fd))
        s->inputs[s->ninputs++] = fd;
      else
        close(fd);
    }
    closedir(d);
  }
  if (s->ninputs == 0)
    warn(
        "power button: no input device in %s reports KEY_POWER: an ACPI power-off will not be seen "
        "(modules evdev and button)",
        s->o->input_dir);
  else
    say("power button: watching %d input device(s)", s->ninputs);
}

static void read_input(init_state *s, int i) {
  struct input_event ev[16];
  ssize_t n = read(s->inputs[i], ev, sizeof ev);
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    close(s->inputs[i]); /* gone (or a test's FIFO whose writer closed) */
    s->inputs[i] = s->inputs[--s->ninputs];
    return;
  }
  for (size_t k = 0; k < (size_t)n / sizeof *ev; k++)
    if (ev[k].type == EV_KEY && ev[k].code == KEY_POWER && ev[k].value == 1 && !s->poweroff_reason)
      s->poweroff_reason = "power button";
}

/* ---- services ---- */

static void write_log(stream *st, const char *text, size_t len) {
  if (st->log_fd < 0) return;
  if (st->log_size > LOG_ROTATE_BYTES) {
    char old[PATH_MAX + 4];
    snprintf(old, sizeof old, "%s.1", st->svc->log_path);
    rename(st->svc->log_path, old);
    int fd = open(st->svc->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      close(st->log_fd);
      st->log_fd = fd;
      st->log_size = 0;
    }
  }
  if (write_all(st->log_fd, text, len) == 0) st->log_size += (off_t)len;
}

static void emit_line(stream *st, const char *line, size_t len) {
  console_line(st->svc->name, line, len);
  write_log(st, line, len);
  write_log(st, "\n", 1);
}

/* Read what is there; whole lines go out, a partial line waits (or goes out when the buffer is full). */
static bool read_stream(stream *st) {
  ssize_t n = read(st->fd, st->buf + st->len, sizeof st->buf - st->len);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
  if (n <= 0) {
    if (st->len) emit_line(st, st->buf, st->len);
    st->len = 0;
    return false;
  }
  st->len += (size_t)n;
  size_t start = 0;
  for (size_t i = 0; i < st->len; i++) {
    if (st->buf[i] != '\n') continue;
    emit_line(st, st->buf + start, i - start);
    start = i + 1;
  }
  if (start == 0 && st->len == sizeof st->buf) start = st->len, emit_line(st, st->buf, st->len);
  memmove(st->buf, st->buf + start, st->len - start);
  st->len -= start;
  return true;
}

static void close_stream(init_state *s, int i) {
  if (s->streams[i].len) emit_line(&s->streams[i], s->streams[i].buf, s->streams[i].len);
  close(s->streams[i].fd);
  if (s->streams[i].log_fd >= 0) close(s->streams[i].log_fd);
  s->streams[i] = s->streams[--s->nstreams];
}

static int start_service(init_state *s, service *svc, sk_error *err) {
  if (access(svc->argv[0], X_OK) < 0) return sk_fail(err, errno, "%s: %s", svc->name, svc->argv[0]);
  if (s->nstreams >= MAX_STREAMS) return sk_fail(err, EMFILE, "%s: too many output pipes still open", svc->name);
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return sk_fail(err, errno, "%s: pipe", svc->name);
  stream *st = &s->streams[s->nstreams];
  *st = (stream){.fd = p[0], .svc = svc, .log_fd = -1};
  fcntl(p[0], F_SETFL, O_NONBLOCK);
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", svc->log_path);
  *strrchr(dir, '/') = '\0';
  sk_error ignored;
  if (mkdir_p(dir, 0755, &ignored) == 0)
    st->log_fd = open(svc->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (st->log_fd < 0) warn("%s: log file %s: %s", svc->name, svc->log_path, strerror(errno));
  struct stat sb;
  if (st->log_fd >= 0 && fstat(st->log_fd, &sb) == 0) st->log_size = sb.st_size;
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(p[0]);
    close(p[1]);
    if (st->log_fd >= 0) close(st->log_fd);
    return sk_fail(err, e, "%s: fork", svc->name);
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    int null = open("/dev/null", O_RDONLY);
    dup2(null >= 0 ? null : p[1], 0);
    dup2(p[1], 1);
    dup2(p[1], 2);
    if (chdir("/") < 0) _exit(126);
    execve(svc->argv[0], svc->argv, service_env);
    dprintf(2, "exec %s: %s\n", svc->argv[0], strerror(errno));
    _exit(127);
  }
  close(p[1]);
  s->nstreams++;
  svc->pid = pid;
  svc->started = mono_ms();
  svc->restart_at = 0;
  return 0;
}

int start_sshd(init_state *s, sk_error *err) {
  const init_opts *o = s->o;
  service *svc = &s->sshd;
  int n = 0;
  svc->argv[n++] = (char *)o->sshd;
  svc->argv[n++] = "-D";
  svc->argv[n++] = "-e";
  svc->argv[n] = NULL;
  rpath(o, "/run/skiff/log/sshd.log", svc->log_path);
  if (start_service(s, svc, err) < 0) return -1;
  say("sshd started (pid %d)", svc->pid);
  return 0;
}

int start_agent(init_state *s, sk_error *err) {
  const init_opts *o = s->o;
  service *svc = &s->agent;
  static char root[PATH_MAX], run[PATH_MAX];
  int n = 0;
  svc->argv[n++] = (char *)o->agent;
  svc->argv[n++] = "--root";
  svc->argv[n++] = (char *)rpath(o, "/var/lib/skiff", root);
  svc->argv[n++] = "--run";
  svc->argv[n++] = (char *)rpath(o, "/run/skiff", run);
  for (int i = 0; i < s->c->nagent_args; i++) svc->argv[n++] = s->c->agent_args[i];
  svc->argv[n] = NULL;
  rpath(o, "/run/skiff/log/agent.log", svc->log_path);
  if (start_service(s, svc, err) < 0) return -1;
  say("skiff-agent started (pid %d)", svc->pid);
  if (!s->ready_said) say("ready");
  s->ready_said = true;
  return 0;
}

static void describe_status(int status, char *buf, size_t size) {
  if (WIFEXITED(status))
    snprintf(buf, size, "exit status %d", WEXITSTATUS(status));
  else
    snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
}

static void service_exited(init_state *s, service *svc, int status) {
  uint64_t now = mono_ms(), ran = now - svc->started;
  char how[96];
  describe_status(status, how, sizeof how);
  svc->pid = 0;
  if (s->stopping) {
    say("%s exited (%s)", svc->name, how);
    return;
  }
  uint64_t delay = ran >= HEALTHY_RUN_MS || svc->backoff == 0 ? BACKOFF_FIRST_MS : svc->backoff * 2;
  if (delay > BACKOFF_MAX_MS) delay = BACKOFF_MAX_MS;
  svc->backoff = delay;
  svc->restart_at = now + delay;
  svc->restarts++;
  warn("%s exited (%s) after %llu ms: restart %d in %llu ms", svc->name, how, (unsigned long long)ran, svc->restarts,
       (unsigned long long)delay);
}

static void reap(init_state *s) {
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    if (pid == s->agent.pid)
      service_exited(s, &s->agent, status);
    else if (pid == s->sshd.pid)
      service_exited(s, &s->sshd, status);
    else if (pid == s->shell)
      s->shell = 0;
    else
      debug("reaped orphan %d", pid);
  }
}

static bool children_left(void) {
  siginfo_t si;
  return !(waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD);
}

static void on_signal(init_state *s, const struct signalfd_siginfo *si) {
  const char *reason = NULL;
  switch (si->ssi_signo) {
    case SIGCHLD:
      reap(s);
      return;
    case SIGTERM:
      reason = "SIGTERM";
      break;
    case SIGUSR1:
      reason = "SIGUSR1 (halt)";
      break;
    case SIGUSR2:
      reason = "SIGUSR2 (poweroff)";
      break;
    case SIGPWR:
      reason = "SIGPWR";
      break;
    case SIGINT:
      reason = "SIGINT (Ctrl-Alt-Del)";
      break;
    default:
      debug("ignoring signal %d (%s) from pid %u", si->ssi_signo, strsignal((int)si->ssi_signo), si->ssi_pid);
  }
  if (reason && !s->poweroff_reason) s->poweroff_reason = reason;
}

/* One round of the loop: wait up to max_ms for a signal, output, a power key or a due restart. */
static void loop_once(init_state *s, int max_ms) {
  uint64_t now = mono_ms();
  int timeout = max_ms;
  service *svcs[] = {&s->sshd, &s->agent};
  for (int i = 0; i < 2; i++) {
    if (!svcs[i]->restart_at || s->stopping) continue;
    int left = svcs[i]->restart_at > now ? (int)(svcs[i]->restart_at - now) : 0;
    if (timeout < 0 || left < timeout) timeout = left;
  }
  struct pollfd fds[1 + MAX_STREAMS + MAX_INPUTS];
  int n = 0;
  fds[n++] = (struct pollfd){.fd = s->sigfd, .events = POLLIN};
  for (int i = 0; i < s->nstreams; i++) fds[n++] = (struct pollfd){.fd = s->streams[i].fd, .events = POLLIN};
  for (int i = 0; i < s->ninputs; i++) fds[n++] = (struct pollfd){.fd = s->inputs[i], .events = POLLIN};
  int nstreams = s->nstreams, ninputs = s->ninputs;
  if (poll(fds, (nfds_t)n, timeout) < 0 && errno != EINTR) {
    warn("poll: %s", strerror(errno));
    usleep(100000);
    return;
  }
  if (fds[0].revents) {
    struct signalfd_siginfo si[16];
    ssize_t got;
    while ((got = read(s->sigfd, si, sizeof si)) > 0)
      for (size_t i = 0; i < (size_t)got / sizeof *si; i++) on_signal(s, &si[i]);
  }
  /* inputs and streams: last to first, as closing one moves the last into its slot */
  for (int i = ninputs - 1; i >= 0; i--)
    if (fds[1 + nstreams + i].revents) read_input(s, i);
  for (int i = nstreams - 1; i >= 0; i--)
    if (fds[1 + i].revents && !read_stream(&s->streams[i])) close_stream(s, i);
  now = mono_ms();
  for (int i = 0; i < 2 && !s->stopping; i++) {
    if (!svcs[i]->restart_at || svcs[i]->restart_at > now) continue;
    sk_error err;
    int rc = svcs[i] == &s->agent ? start_agent(s, &err) : start_sshd(s, &err);
    if (rc < 0) {
      svcs[i]->started = mono_ms();
      service_exited(s, svcs[i], W_EXITCODE(127, 0));
      warn("%s", err.msg);
    }
  }
}

/* Run the loop until done() or ms have passed; true if done() came first. */
static bool wait_until(init_state *s, bool (*done)(init_state *), int ms) {
  uint64_t deadline = mono_ms() + (uint64_t)ms;
  for (;;) {
    if (done(s)) return true;
    uint64_t now = mono_ms();
    if (now >= deadline) return false;
    loop_once(s, (int)(deadline - now < 100 ? deadline - now : 100));
  }
}

static bool agent_gone(init_state *s) { return s->agent.pid == 0; }
static bool all_gone(init_state *s) {
  reap(s);
  return !children_left();
}
static bool shell_gone(init_state *s) { return s->shell == 0 || s->poweroff_reason; }

static int power_off(init_state *s, int code) {
  const init_opts *o = s->o;
  s->stopping = true;
  say("powering off (%s)", s->poweroff_reason ? s->poweroff_reason : "fatal error");
  if (s->agent.pid) {
    uint64_t t0 = mono_ms();
    say("stopping skiff-agent (SIGTERM, up to %d ms)", o->agent_stop_ms);
    kill(s->agent.pid, SIGTERM);
    if (wait_until(s, agent_gone, o->agent_stop_ms))
      say("skiff-agent stopped (%llu ms)", (unsigned long long)(mono_ms() - t0));
    else
      warn("skiff-agent did not stop within %d ms", o->agent_stop_ms);
  }
  uint64_t t0 = mono_ms();
  reap(s);
  if (children_left()) {
    say("stopping all processes (SIGTERM, up to %d ms)", o->kill_grace_ms);
    kill(-1, SIGTERM);
    if (!wait_until(s, all_gone, o->kill_grace_ms)) {
      say("killing the processes left (SIGKILL)");
      kill(-1, SIGKILL);
      if (!wait_until(s, all_gone, 3000)) warn("some processes did not die (stuck in the kernel?)");
    }
    say("all processes stopped (%llu ms)", (unsigned long long)(mono_ms() - t0));
  }
  /* what the services wrote last (bounded: a process stuck in the kernel may still hold a pipe) */
  for (int i = s->nstreams - 1; i >= 0; i--) {
    for (int k = 0; k < 64 && read_stream(&s->streams[i]); k++) {
    }
    close_stream(s, i);
  }
  sync();
  unmount_all(o, s->c);
  sync();
  if (o->test) {
    say("exit %d (test mode: no power-off)", code);
    return code;
  }
  say("power off");
  reboot(RB_POWER_OFF);
  warn("reboot(RB_POWER_OFF): %s", strerror(errno));
  reboot(RB_HALT_SYSTEM);
  for (;;) pause();
}

int services_run(init_state *s) {
  while (!s->poweroff_reason) loop_once(s, -1);
  return power_off(s, 0);
}

int services_fatal(init_state *s, const char *msg) {
  say("FATAL: %s", msg);
  const char *shell = access("/bin/sh", X_OK) == 0        ? "/bin/sh"
                      : access("/bin/busybox", X_OK) == 0 ? "/bin/busybox"
                                                          : NULL;
  if (s->o->fatal_shell && shell) {
    say("starting a shell on the console: exit it to power off");
    pid_t pid = fork();
    if (pid == 0) {
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, NULL);
      setsid();
      ioctl(0, TIOCSCTTY, 1);
      execve(shell, (char *[]){(char *)shell, strcmp(shell, "/bin/sh") == 0 ? "-i" : "sh", NULL}, service_env);
      _exit(127);
    }
    if (pid > 0) {
      s->shell = pid;
      while (!shell_gone(s)) loop_once(s, -1);
    }
  }
  if (!s->poweroff_reason) s->poweroff_reason = "fatal error";
  return power_off(s, 1);
}
