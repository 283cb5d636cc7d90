/* create and start: the container's init is cloned once, into its new namespaces, and talks to the runtime
 * over a SOCK_SEQPACKET pair until it blocks on the exec fifo. The runtime then exits; `start` opens the
 * fifo's other end and the init execs the user's process. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "console.h"
#include "jsonutil.h"
#include "log.h"
#include "rootfs.h"
#include "runtime.h"
#include "security.h"
#include "state.h"
#include "util.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

enum { MSG_MAX = 65536 };

void rfc3339_now(char *buf, size_t len) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
           tm.tm_min, tm.tm_sec, ts.tv_nsec);
}

void child_fail(int sync, sk_error *err) {
  char buf[sizeof err->msg + 1];
  buf[0] = 'E';
  size_t n = strlen(err->msg);
  memcpy(buf + 1, err->msg, n);
  if (send(sync, buf, n + 1, MSG_NOSIGNAL) < 0) dprintf(2, "skiff-runtime: %s\n", err->msg);
  _exit(1);
}

int find_executable(const char *name, const char **env, char *buf, size_t len, sk_error *err) {
  struct stat st;
  if (strchr(name, '/')) {
    if (stat(name, &st) < 0) return sk_fail(err, errno, "exec %s", name);
    if (!S_ISREG(st.st_mode)) return sk_fail(err, 0, "exec %s: not a regular file", name);
    if (access(name, X_OK) < 0) return sk_fail(err, errno, "exec %s", name);
    snprintf(buf, len, "%s", name);
    return 0;
  }
  const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const char **e = env; *e; e++)
    if (strncmp(*e, "PATH=", 5) == 0) path = *e + 5;
  for (const char *p = path;;) {
    const char *end = strchrnul(p, ':');
    int dl = (int)(end - p);
    if ((size_t)snprintf(buf, len, "%.*s%s%s", dl, p, dl ? "/" : "", name) < len && stat(buf, &st) == 0 &&
        S_ISREG(st.st_mode) && access(buf, X_OK) == 0)
      return 0;
    if (*end == '\0') break;
    p = end + 1;
  }
  return sk_fail(err, 0, "exec: \"%s\": executable file not found in $PATH", name);
}

const char **env_with_home(const char **env) {
  size_t n = 0;
  for (; env[n]; n++)
    if (strncmp(env[n], "HOME=", 5) == 0) return env;
  /* As runc: HOME from the container's /etc/passwd entry of the uid we now run as, else "/". */
  char home[PATH_MAX] = "/";
  FILE *f = fopen("/etc/passwd", "re");
  if (f) {
    char line[1024];
    uid_t uid = getuid();
    while (fgets(line, sizeof line, f)) {
      /* name:pw:uid:gid:gecos:home:shell */
      char *field[7] = {0}, *p = line;
      int k = 0;
      for (; k < 7 && p; k++) {
        field[k] = p;
        p = strchr(p, ':');
        if (p) *p++ = '\0';
      }
      uint64_t u;
      if (k >= 6 && parse_u64(field[2], &u) && u == uid && field[5][0] == '/') {
        snprintf(home, sizeof home, "%s", field[5]);
        break;
      }
    }
    fclose(f);
  }
  const char **out = calloc(n + 2, sizeof *out);
  char *var = malloc(strlen(home) + 6);
  if (out == NULL || var == NULL) return env;
  sprintf(var, "HOME=%s", home);
  memcpy(out, env, n * sizeof *out);
  out[n] = var;
  return out;
}

int enter_cwd(const char *cwd, sk_error *err) {
  if (chdir(cwd) < 0) return sk_fail(err, errno, "changing to the working directory %s", cwd);
  char buf[PATH_MAX];
  /* getcwd fails (ENOENT, "(unreachable)") when the cwd is outside our root: a leaked host directory. */
  if (getcwd(buf, sizeof buf) == NULL || buf[0] != '/')
    return sk_fail(err, errno ? errno : EPERM, "the working directory %s is outside the container", cwd);
  return 0;
}

void reset_signals(void) {
  struct sigaction dfl = {.sa_handler = SIG_DFL};
  for (int sig = 1; sig < NSIG; sig++) sigaction(sig, &dfl, NULL); /* KILL/STOP fail harmlessly */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

int seal_fds(int preserve_fds, sk_error *err) {
  for (int fd = 3; fd < 3 + preserve_fds; fd++) {
    int fl = fcntl(fd, F_GETFD);
    if (fl >= 0 && (fl & FD_CLOEXEC)) fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
  }
  if (syscall(SYS_close_range, 3 + preserve_fds, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
    return sk_fail(err, errno, "marking inherited file descriptors close-on-exec");
  return 0;
}

int await_child(int sync, int *fd, sk_error *err) {
  char *buf = malloc(MSG_MAX);
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  for (;;) {
    struct iovec iov = {.iov_base = buf, .iov_len = MSG_MAX - 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control};
    ssize_t n = recvmsg(sync, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      free(buf);
      return sk_fail(err, e, "reading from the container process");
    }
    if (n == 0) {
      free(buf);
      return 0; /* exec'd (the socket is close-on-exec) */
    }
    buf[n] = '\0';
    char kind = buf[0];
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    if (kind == 'N' && cm && cm->cmsg_type == SCM_RIGHTS) {
      memcpy(fd, CMSG_DATA(cm), sizeof(int));
      free(buf);
      return 3;
    }
    if (kind == 'E') sk_fail(err, 0, "%s", buf + 1);
    free(buf);
    if (kind == 'E') return -1;
    if (kind == 'R') return 1;
    if (kind == 'H') return 2;
    return sk_fail(err, 0, "unexpected message '%c' from the container process", kind);
  }
}

int send_notify_fd(int sync, const sk_security *sec, sk_error *err) {
  int fd = security_seccomp_notify_fd(sec);
  if (fd < 0) return 0;
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof control);
  char kind = 'N';
  struct iovec iov = {.iov_base = &kind, .iov_len = 1};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &fd, sizeof(int));
  if (sendmsg(sync, &mh, MSG_NOSIGNAL) != 1) return sk_fail(err, errno, "passing the seccomp notify fd to the runtime");
  close(fd);
  return 0;
}

bool has_seccomp_listener(json_object *linux_obj) {
  const char *p = json_object_get_string(j_get(j_get(linux_obj, "seccomp"), "listenerPath"));
  return p && *p;
}

int forward_notify_fd(const sk_security *sec, int fd, pid_t pid, const char *state_json, sk_error *err) {
  sk_error perr;
  json_object *state = j_parse_string(state_json, strlen(state_json), "state", &perr);
  int r = security_seccomp_send_listener(sec, fd, (int)pid, state, err);
  if (state) json_object_put(state);
  close(fd);
  return r;
}

typedef struct init_args {
  sk_spec *spec;
  int sync, fifo_fd, console_fd, preserve_fds;
  bool no_pivot;
  bool user_joined; /* the two-step start below already joined the user namespace */
} init_args;

static void init_main(init_args *a) __attribute__((noreturn));

/* A new pid namespace must be owned by the user namespace the container joins, or the init may not mount
 * its /proc. So the first child joins the user namespace, unshares the pid namespace and forks the init as a
 * sibling (CLONE_PARENT: the runtime stays its parent), tells the runtime its pid and leaves. */
static void two_step_start(init_args *a, const sk_ns *user) {
  sk_error err = {0};
  if (setns(user->fd, CLONE_NEWUSER) < 0) {
    sk_fail(&err, errno, "joining the user namespace %s", user->path);
    child_fail(a->sync, &err);
  }
  if (unshare(CLONE_NEWPID) < 0) {
    sk_fail(&err, errno, "creating the pid namespace in the joined user namespace");
    child_fail(a->sync, &err);
  }
  pid_t init = (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_PARENT | SIGCHLD), NULL, NULL, NULL, 0);
  if (init < 0) {
    sk_fail(&err, errno, "forking the container's init");
    child_fail(a->sync, &err);
  }
  if (init == 0) {
    a->user_joined = true;
    init_main(a);
  }
  char msg[32];
  int n = snprintf(msg, sizeof msg, "P%d", (int)init);
  send(a->sync, msg, (size_t)n, MSG_NOSIGNAL);
  _exit(0);
}

static int set_root_ids(sk_error *err) {
  if (setresgid(0, 0, 0) < 0) return sk_fail(err, errno, "setresgid(0) in the user namespace");
  if (setresuid(0, 0, 0) < 0) return sk_fail(err, errno, "setresuid(0) in the user namespace");
  return 0;
}

/* Everything the container's init does, up to the exec of the user's process. */
static int init_run(init_args *a, sk_error *err) {
  sk_spec *s = a->spec;
  char *msg = malloc(MSG_MAX);
  ssize_t n = recv(a->sync, msg, MSG_MAX - 1, 0);
  if (n <= 0 || msg[0] != 'G') _exit(1); /* the runtime gave up on us */
  msg[n] = '\0';
  const char *state_json = msg + 1;

  const sk_ns *user = spec_ns(s, CLONE_NEWUSER);
  if (user && user->path) {
    if (!a->user_joined && setns(user->fd, CLONE_NEWUSER) < 0)
      return sk_fail(err, errno, "joining the user namespace %s", user->path);
    if (set_root_ids(err) < 0) return -1;
  } else if (user) {
    if (set_root_ids(err) < 0) return -1;
  }
  for (int i = 0; i < s->nns; i++) {
    const sk_ns *ns = &s->ns[i];
    if (!ns->path || ns->type == CLONE_NEWUSER || ns->type == CLONE_NEWPID || ns->type == CLONE_NEWTIME) continue;
    if (setns(ns->fd, ns->type) < 0) return sk_fail(err, errno, "joining the %s namespace %s", ns->name, ns->path);
  }
  int later = s->new_flags & (CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS);
  if (user && user->path && later && unshare(later) < 0) return sk_fail(err, errno, "unshare(0x%x)", later);
  /* The cgroup namespace is made after the runtime moved us into the container's cgroup: that is its root. */
  if ((s->new_flags & CLONE_NEWCGROUP) && unshare(CLONE_NEWCGROUP) < 0)
    return sk_fail(err, errno, "creating the cgroup namespace");
  if (!s->proc.terminal && setsid() < 0) return sk_fail(err, errno, "setsid");
  if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0)
    return sk_fail(err, errno, "setting the hostname to \"%s\"", s->hostname);
  if (s->domainname && setdomainname(s->domainname, strlen(s->domainname)) < 0)
    return sk_fail(err, errno, "setting the domainname to \"%s\"", s->domainname);

  sk_rootfs_ctx ctx = {
      .new_userns = user != NULL, /* new or joined: either way mknod is not allowed */
      .new_netns = (s->new_flags & CLONE_NEWNET) != 0,
      .new_cgroupns = (s->new_flags & CLONE_NEWCGROUP) != 0,
      .cgroup = s->cgroup,
  };
  if (rootfs_setup(s->rootfs, &ctx, err) < 0) return -1;
  if (j_get(s->hooks, "prestart") || j_get(s->hooks, "createRuntime")) {
    char c = 'H';
    if (send(a->sync, &c, 1, MSG_NOSIGNAL) != 1) return sk_fail(err, errno, "asking the runtime to run hooks");
    if (recv(a->sync, &c, 1, 0) != 1 || c != 'h') _exit(1); /* the runtime reported the hook's failure */
  }
  if (hooks_run(s->hooks, "createContainer", state_json, err) < 0) return -1;
  if (rootfs_pivot(s->rootfs, a->no_pivot, err) < 0) return -1;
  if (s->proc.terminal && console_setup(a->console_fd, s->proc.rows, s->proc.cols, true, err) < 0) return -1;
  if (rootfs_finalize(s->rootfs, err) < 0) return -1;
  if (security_apply_early(s->proc.sec, err) < 0) return -1;
  /* With a listener the notify fd must travel back over the sync socket, which closes before start. */
  bool late = security_seccomp_late(s->proc.sec) && !has_seccomp_listener(j_get(s->config, "linux"));
  if (!late && security_apply_seccomp(s->proc.sec, err) < 0) return -1;
  if (!late && send_notify_fd(a->sync, s->proc.sec, err) < 0) return -1;
  if (security_apply_identity(s->proc.sec, err) < 0) return -1;
  if (enter_cwd(s->proc.cwd, err) < 0) return -1;
  char exe[PATH_MAX];
  const char **env = env_with_home(s->proc.env);
  if (find_executable(s->proc.args[0], env, exe, sizeof exe, err) < 0) return -1;
  if (seal_fds(a->preserve_fds, err) < 0) return -1;

  char ready = 'R';
  if (send(a->sync, &ready, 1, MSG_NOSIGNAL) != 1) return sk_fail(err, errno, "telling the runtime we are ready");
  close(a->sync);
  a->sync = -1;
  /* Block until `start` opens the other end. */
  char fifo[64];
  snprintf(fifo, sizeof fifo, "/proc/self/fd/%d", a->fifo_fd);
  int w = open(fifo, O_WRONLY | O_CLOEXEC);
  if (w < 0) return sk_fail(err, errno, "opening the exec fifo (is /proc mounted in the container?)");
  if (write(w, "0", 1) != 1) return sk_fail(err, errno, "writing the exec fifo");
  close(w);
  close(a->fifo_fd);
  if (hooks_run(s->hooks, "startContainer", state_json, err) < 0) return -1;
  if (late && security_apply_seccomp(s->proc.sec, err) < 0) return -1;
  free(msg);
  reset_signals();
  execve(exe, (char *const *)s->proc.args, (char *const *)env);
  return sk_fail(err, errno, "exec %s", exe);
}

static void init_main(init_args *a) {
  sk_error err = {0};
  init_run(a, &err);
  if (a->sync >= 0) child_fail(a->sync, &err);
  /* After `ready` the runtime is gone: the container's stderr is the only witness. */
  dprintf(2, "skiff-runtime: %s\n", err.msg);
  _exit(127);
}

/* Remove <dir> and what create put in it. */
static void remove_state_dir(const char *dir) {
  static const char *files[] = {"exec.fifo", "state.json", ".state.json.tmp", "config.json"};
  char p[PATH_MAX + 32];
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, files[i]);
    unlink(p);
  }
  rmdir(dir);
}

/* Relative to the caller's cwd, as runc; written aside and renamed so readers never see half a pid. */
static int write_pid_file(const char *path, pid_t pid, sk_error *err) {
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%d", (int)pid);
  if (write_file_atomic(path, buf, (size_t)n, 0644, err) < 0) return sk_wrap(err, "writing the pid file");
  return 0;
}

static int copy_config(const sk_spec *s, const char *dir, sk_error *err) {
  char path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/config.json", dir);
  const char *text = json_object_to_json_string_ext(s->config, JSON_C_TO_STRING_PLAIN);
  return write_file(path, text, strlen(text), true, 0600, err);
}

int container_create(const sk_global *g, const sk_create_opts *o, pid_t *out_pid, sk_error *err) {
  char dir[PATH_MAX];
  if (container_dir(g->root, o->id, dir, sizeof dir, err) < 0) return -1;
  sk_spec s;
  if (spec_load(o->bundle ? o->bundle : ".", o->id, &s, err) < 0) return -1;
  if (s.proc.terminal && !o->console_socket) {
    spec_free(&s);
    return sk_fail(err, 0, "process.terminal is true but no --console-socket was given to receive the pty");
  }
  if (mkdir(g->root, 0700) < 0 && errno != EEXIST) {
    int e = errno;
    spec_free(&s);
    return sk_fail(err, e, "creating the state root %s", g->root);
  }
  char cache[PATH_MAX + 32];
  snprintf(cache, sizeof cache, "%s/.seccomp-cache", g->root);
  if (security_seccomp_prepare(s.proc.sec, cache, err) < 0) {
    spec_free(&s);
    return -1;
  }
  if (mkdir(dir, 0700) < 0) {
    int e = errno;
    spec_free(&s);
    if (e == EEXIST) return sk_fail(err, 0, "container %s already exists", o->id);
    return sk_fail(err, e, "creating the state directory %s", dir);
  }
  /* From here on every failure undoes what was done. */
  int sync[2] = {-1, -1}, fifo_fd = -1, console_fd = -1;
  pid_t pid = -1;
  bool cgroup_made = false;
  json_object *saved = NULL;
  char fifo[PATH_MAX + 16], created[64];
  snprintf(fifo, sizeof fifo, "%s/exec.fifo", dir);
  rfc3339_now(created, sizeof created);

  if (copy_config(&s, dir, err) < 0) goto fail;
  /* 0622: the init may have dropped to any uid by the time it opens the fifo for writing. */
  if (mkfifo(fifo, 0622) < 0 || chmod(fifo, 0622) < 0) {
    sk_fail(err, errno, "creating the exec fifo %s", fifo);
    goto fail;
  }
  fifo_fd = open(fifo, O_PATH | O_CLOEXEC);
  if (fifo_fd < 0) {
    sk_fail(err, errno, "opening the exec fifo %s", fifo);
    goto fail;
  }
  if (o->console_socket && s.proc.terminal) {
    console_fd = console_connect(o->console_socket, err);
    if (console_fd < 0) goto fail;
  }
  if (cgroup_create(s.cgroup, err) < 0) goto fail;
  cgroup_made = true;
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sync) < 0) {
    sk_fail(err, errno, "socketpair");
    goto fail;
  }
  const sk_ns *pidns = spec_ns(&s, CLONE_NEWPID), *timens = spec_ns(&s, CLONE_NEWTIME);
  if (pidns && pidns->path && setns(pidns->fd, CLONE_NEWPID) < 0) {
    sk_fail(err, errno, "joining the pid namespace %s", pidns->path);
    goto fail;
  }
  if (timens && timens->path && setns(timens->fd, CLONE_NEWTIME) < 0) {
    sk_fail(err, errno, "joining the time namespace %s", timens->path);
    goto fail;
  }
  if (timens && !timens->path) {
    if (unshare(CLONE_NEWTIME) < 0) {
      sk_fail(err, errno, "creating the time namespace");
      goto fail;
    }
    if (s.time_offsets && write_str("/proc/self/timens_offsets", s.time_offsets, err) < 0) goto fail;
  }
  const sk_ns *user = spec_ns(&s, CLONE_NEWUSER);
  bool two_step = user && user->path && (s.new_flags & CLONE_NEWPID);
  int clone_flags = two_step ? 0 : s.new_flags & CLONE_NEWPID;
  if (!(user && user->path))
    clone_flags |= s.new_flags & (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS);
  fflush(NULL);
  pid = (pid_t)syscall(SYS_clone, (unsigned long)clone_flags | SIGCHLD, NULL, NULL, NULL, 0);
  if (pid < 0) {
    sk_fail(err, errno, "clone(0x%x) for the container's init", clone_flags);
    goto fail;
  }
  if (pid == 0) {
    close(sync[0]);
    init_args a = {.spec = &s,
                   .sync = sync[1],
                   .fifo_fd = fifo_fd,
                   .console_fd = console_fd,
                   .preserve_fds = o->preserve_fds,
                   .no_pivot = o->no_pivot};
    if (two_step) two_step_start(&a, user);
    init_main(&a);
  }
  close(sync[1]);
  sync[1] = -1;
  if (two_step) {
    char m[4200] = {0};
    ssize_t n = recv(sync[0], m, sizeof m - 1, 0);
    waitpid(pid, NULL, 0);
    if (n > 1 && m[0] == 'P') {
      pid = (pid_t)atoi(m + 1);
    } else {
      pid = -1;
      if (n > 1 && m[0] == 'E')
        sk_fail(err, 0, "%s", m + 1);
      else
        sk_fail(err, 0, "the container's init could not be started in the joined user namespace");
      goto fail;
    }
  }
  if (console_fd >= 0) close(console_fd), console_fd = -1;

  if (s.new_flags & CLONE_NEWUSER) {
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/uid_map", (int)pid);
    if (write_str(p, s.uid_map, err) < 0) {
      sk_wrap(err, "writing the uid mappings");
      goto fail;
    }
    snprintf(p, sizeof p, "/proc/%d/gid_map", (int)pid);
    if (write_str(p, s.gid_map, err) < 0) {
      sk_wrap(err, "writing the gid mappings");
      goto fail;
    }
  }
  if (cgroup_add_pid(s.cgroup, pid, err) < 0) goto fail;

  uint64_t start_time = 0;
  if (proc_stat(pid, &start_time, NULL) < 0) {
    sk_fail(err, 0, "the container's init (pid %d) died at once", (int)pid);
    goto fail;
  }
  saved = json_object_new_object();
  json_object_object_add(saved, "id", json_object_new_string(o->id));
  json_object_object_add(saved, "pid", json_object_new_int(pid));
  json_object_object_add(saved, "start_time", json_object_new_uint64(start_time));
  json_object_object_add(saved, "bundle", json_object_new_string(s.bundle));
  json_object_object_add(saved, "rootfs", json_object_new_string(rootfs_path(s.rootfs)));
  json_object_object_add(saved, "created", json_object_new_string(created));
  json_object_object_add(saved, "owner", json_object_new_string(""));
  if (s.annotations) json_object_object_add(saved, "annotations", json_object_get(s.annotations));
  json_object_object_add(saved, "cgroup", cgroup_to_json(s.cgroup));
  json_object *nsl = json_object_new_array();
  for (int i = 0; i < s.nns; i++) json_object_array_add(nsl, json_object_new_string(s.ns[i].name));
  json_object_object_add(saved, "namespaces", nsl);

  /* The state hooks see: OCI fields only. */
  sk_container view = {.pid = pid,
                       .start_time = start_time,
                       .bundle = s.bundle,
                       .rootfs = rootfs_path(s.rootfs),
                       .created = created,
                       .owner = "",
                       .annotations = s.annotations};
  snprintf(view.id, sizeof view.id, "%s", o->id);
  json_object *st = container_state_json(&view, ST_CREATING);
  size_t go_len = 0;
  const char *st_text = json_object_to_json_string_ext(st, JSON_C_TO_STRING_PLAIN);
  char *go = malloc(strlen(st_text) + 2);
  go[0] = 'G';
  memcpy(go + 1, st_text, strlen(st_text));
  go_len = strlen(st_text) + 1;
  int sent = (int)send(sync[0], go, go_len, MSG_NOSIGNAL);
  free(go);
  if (sent < 0) {
    json_object_put(st);
    sk_fail(err, errno, "starting the container's init");
    goto fail;
  }
  for (;;) {
    int nfd = -1;
    int r = await_child(sync[0], &nfd, err);
    if (r == 3) {
      if (forward_notify_fd(s.proc.sec, nfd, pid, st_text, err) < 0) {
        json_object_put(st);
        goto fail;
      }
      continue;
    }
    if (r == 2) { /* prestart and createRuntime hooks: in the runtime's namespaces */
      if (hooks_run(s.hooks, "prestart", st_text, err) < 0 || hooks_run(s.hooks, "createRuntime", st_text, err) < 0) {
        json_object_put(st);
        goto fail;
      }
      char ok = 'h';
      send(sync[0], &ok, 1, MSG_NOSIGNAL);
      continue;
    }
    if (r == 1) break;
    json_object_put(st);
    if (r == 0) sk_fail(err, 0, "the container's init exited before it was ready");
    goto fail;
  }
  json_object_put(st);
  if (container_save(dir, saved, err) < 0) goto fail;
  if (o->pid_file && write_pid_file(o->pid_file, pid, err) < 0) goto fail;
  json_object_put(saved);
  close(sync[0]);
  close(fifo_fd);
  spec_free(&s);
  *out_pid = pid;
  return 0;

fail:
  if (pid > 0) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
  }
  if (sync[0] >= 0) close(sync[0]);
  if (sync[1] >= 0) close(sync[1]);
  if (fifo_fd >= 0) close(fifo_fd);
  if (console_fd >= 0) close(console_fd);
  if (saved) json_object_put(saved);
  if (cgroup_made) {
    sk_error e2;
    if (cgroup_destroy(s.cgroup, &e2) < 0) log_warn("cleaning up after a failed create: %s", e2.msg);
  }
  remove_state_dir(dir);
  spec_free(&s);
  return -1;
}

int container_start(const sk_global *g, const char *id, sk_error *err) {
  sk_container c;
  if (container_load(g->root, id, &c, err) < 0) return -1;
  sk_status st = container_status(&c);
  if (st != ST_CREATED) {
    container_free(&c);
    return sk_fail(err, 0, "cannot start container %s: it is %s, not created", id, status_name(st));
  }
  char fifo[PATH_MAX + 16];
  snprintf(fifo, sizeof fifo, "%s/exec.fifo", c.dir);
  /* Non-blocking: if the init died, a blocking open would wait forever. */
  int fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    container_free(&c);
    return sk_fail(err, e, "opening the exec fifo of %s", id);
  }
  char b;
  ssize_t n = -1;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, 100);
    if (r > 0) {
      n = read(fd, &b, 1);
      if (n == 1 || (n < 0 && errno != EAGAIN)) break;
      if (n == 0 && !(p.revents & POLLIN)) break;
    }
    if (!container_alive(&c)) {
      n = read(fd, &b, 1);
      break;
    }
  }
  close(fd);
  if (n != 1) {
    container_free(&c);
    return sk_fail(err, 0, "cannot start container %s: its init exited before start", id);
  }
  unlink(fifo);
  /* poststart hooks: a failure is logged, the container keeps running (runtime-spec). */
  char cfg[PATH_MAX + 16];
  snprintf(cfg, sizeof cfg, "%s/config.json", c.dir);
  sk_error herr;
  json_object *config = j_parse_file(cfg, &herr);
  json_object *hooks = config ? j_get(config, "hooks") : NULL;
  if (hooks && j_get(hooks, "poststart")) {
    json_object *sj = container_state_json(&c, ST_RUNNING);
    if (hooks_run(hooks, "poststart", json_object_to_json_string_ext(sj, JSON_C_TO_STRING_PLAIN), &herr) < 0)
      log_warn("%s", herr.msg);
    json_object_put(sj);
  }
  if (config) json_object_put(config);
  container_free(&c);
  return 0;
}

static volatile sig_atomic_t run_forward_to;
static void run_forward(int sig) {
  if (run_forward_to > 0) kill(run_forward_to, sig);
}

int cmd_run(const sk_global *g, const sk_create_opts *o, bool detach, int *exit_code, sk_error *err) {
  pid_t pid;
  if (container_create(g, o, &pid, err) < 0) return -1;
  if (container_start(g, o->id, err) < 0) {
    sk_error e2;
    cmd_delete(g, o->id, true, &e2);
    return -1;
  }
  if (detach) return 0;
  /* The init is our own child: forward the usual signals, reap it, then clean up as `delete` would. */
  run_forward_to = pid;
  struct sigaction sa = {.sa_handler = run_forward};
  int fwd[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
  for (size_t i = 0; i < sizeof fwd / sizeof fwd[0]; i++) sigaction(fwd[i], &sa, NULL);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return sk_fail(err, errno, "waiting for container %s", o->id);
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return cmd_delete(g, o->id, true, err);
}
