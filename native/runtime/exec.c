/* exec: a new process in a running container. The runtime joins the container's pid (and time) namespace,
 * so that its one child is born inside it; the child joins the rest through the init's pidfd in one setns,
 * is moved into the container's cgroup, takes the process's identity and confinement and execs. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "console.h"
#include "jsonutil.h"
#include "log.h"
#include "runtime.h"
#include "state.h"
#include "util.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* The process object: --process FILE, or the container's own process with the command line's overrides. */
static json_object *exec_process(const sk_exec_opts *o, json_object *config, sk_error *err) {
  if (o->process_file) {
    json_object *p = j_parse_file(o->process_file, err);
    if (p == NULL) return NULL;
    if (!json_object_is_type(p, json_type_object)) {
      json_object_put(p);
      sk_fail(err, 0, "%s must hold a JSON process object", o->process_file);
      return NULL;
    }
    return p;
  }
  if (o->args == NULL || o->args[0] == NULL) {
    sk_fail(err, 0, "exec needs a command or --process FILE");
    return NULL;
  }
  json_object *base = j_get(config, "process"), *p = NULL;
  if (json_object_deep_copy(base, &p, NULL) < 0 || p == NULL) {
    sk_fail(err, ENOMEM, "copying the container's process");
    return NULL;
  }
  json_object *args = json_object_new_array();
  for (char **a = o->args; *a; a++) json_object_array_add(args, json_object_new_string(*a));
  json_object_object_add(p, "args", args);
  json_object_object_add(p, "terminal", json_object_new_boolean(o->tty));
  json_object_object_del(p, "consoleSize");
  if (o->cwd) json_object_object_add(p, "cwd", json_object_new_string(o->cwd));
  if (o->env && o->env[0]) {
    json_object *env = j_get(p, "env");
    if (env == NULL) json_object_object_add(p, "env", env = json_object_new_array());
    for (const char **e = o->env; *e; e++) {
      /* --env replaces a variable of the same name */
      const char *eq = strchr(*e, '=');
      size_t klen = eq ? (size_t)(eq - *e) : strlen(*e);
      for (size_t i = 0; i < json_object_array_length(env); i++) {
        const char *cur = json_object_get_string(json_object_array_get_idx(env, i));
        if (cur && strncmp(cur, *e, klen) == 0 && cur[klen] == '=') {
          json_object_array_del_idx(env, i, 1);
          break;
        }
      }
      json_object_array_add(env, json_object_new_string(*e));
    }
  }
  if (o->user) {
    json_object *user = json_object_new_object();
    char *end;
    unsigned long uid = strtoul(o->user, &end, 10);
    unsigned long gid = 0;
    if (end == o->user || (*end && *end != ':') || (*end == ':' && (gid = strtoul(end + 1, &end, 10), *end))) {
      json_object_put(user);
      json_object_put(p);
      sk_fail(err, 0, "--user \"%s\" must be uid[:gid] (numbers)", o->user);
      return NULL;
    }
    json_object_object_add(user, "uid", json_object_new_int64((int64_t)uid));
    json_object_object_add(user, "gid", json_object_new_int64((int64_t)gid));
    json_object_object_add(p, "user", user);
  }
  if (o->no_new_privs) json_object_object_add(p, "noNewPrivileges", json_object_new_boolean(true));
  if (o->apparmor) json_object_object_add(p, "apparmorProfile", json_object_new_string(o->apparmor));
  if (o->process_label) json_object_object_add(p, "selinuxLabel", json_object_new_string(o->process_label));
  if (o->caps && o->caps[0]) {
    json_object *caps = j_get(p, "capabilities");
    if (caps == NULL) json_object_object_add(p, "capabilities", caps = json_object_new_object());
    static const char *sets[] = {"bounding", "effective", "permitted"};
    for (size_t s = 0; s < 3; s++) {
      json_object *set = j_get(caps, sets[s]);
      if (set == NULL) json_object_object_add(caps, sets[s], set = json_object_new_array());
      for (const char **c = o->caps; *c; c++) json_object_array_add(set, json_object_new_string(*c));
    }
  }
  return p;
}

static int ns_flags_of(json_object *config) {
  static const struct {
    const char *name;
    int type;
  } t[] = {{"pid", CLONE_NEWPID}, {"network", CLONE_NEWNET}, {"mount", CLONE_NEWNS},      {"ipc", CLONE_NEWIPC},
           {"uts", CLONE_NEWUTS}, {"user", CLONE_NEWUSER},   {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME}};
  int flags = 0;
  json_object *ns = j_get(j_get(config, "linux"), "namespaces");
  for (size_t i = 0; ns && i < json_object_array_length(ns); i++) {
    const char *type = json_object_get_string(j_get(json_object_array_get_idx(ns, i), "type"));
    for (size_t k = 0; type && k < sizeof t / sizeof t[0]; k++)
      if (strcmp(type, t[k].name) == 0) flags |= t[k].type;
  }
  return flags;
}

typedef struct exec_child {
  sk_proc *proc;
  int sync, pidfd, ns_flags, console_fd, preserve_fds;
  bool listener;
} exec_child;

static void exec_child_main(exec_child *a) {
  sk_error err = {0};
  char go;
  if (recv(a->sync, &go, 1, 0) != 1 || go != 'G') _exit(1);
  int join = a->ns_flags & ~(CLONE_NEWPID | CLONE_NEWTIME);
  if (join && setns(a->pidfd, join) < 0) {
    sk_fail(&err, errno, "joining the container's namespaces (0x%x)", join);
    child_fail(a->sync, &err);
  }
  if ((a->ns_flags & CLONE_NEWUSER) && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)) {
    sk_fail(&err, errno, "becoming root in the container's user namespace");
    child_fail(a->sync, &err);
  }
  if (!a->proc->terminal && setsid() < 0) {
    sk_fail(&err, errno, "setsid");
    child_fail(a->sync, &err);
  }
  if (a->proc->terminal && console_setup(a->console_fd, a->proc->rows, a->proc->cols, false, &err) < 0)
    child_fail(a->sync, &err);
  if (security_apply_early(a->proc->sec, &err) < 0) child_fail(a->sync, &err);
  bool late = security_seccomp_late(a->proc->sec) && !a->listener;
  if (!late && security_apply_seccomp(a->proc->sec, &err) < 0) child_fail(a->sync, &err);
  if (!late && send_notify_fd(a->sync, a->proc->sec, &err) < 0) child_fail(a->sync, &err);
  if (security_apply_identity(a->proc->sec, &err) < 0) child_fail(a->sync, &err);
  if (enter_cwd(a->proc->cwd, &err) < 0) child_fail(a->sync, &err);
  char exe[PATH_MAX];
  const char **env = env_with_home(a->proc->env);
  if (find_executable(a->proc->args[0], env, exe, sizeof exe, &err) < 0) child_fail(a->sync, &err);
  if (seal_fds(a->preserve_fds, &err) < 0) child_fail(a->sync, &err);
  if (late && security_apply_seccomp(a->proc->sec, &err) < 0) child_fail(a->sync, &err);
  reset_signals();
  execve(exe, (char *const *)a->proc->args, (char *const *)env);
  sk_fail(&err, errno, "exec %s", exe);
  child_fail(a->sync, &err);
}

static volatile sig_atomic_t forward_to;
static void forward_signal(int sig) {
  if (forward_to > 0) kill(forward_to, sig);
}

int cmd_exec(const sk_global *g, const sk_exec_opts *o, int *exit_code, sk_error *err) {
  sk_container c;
  if (container_load(g->root, o->id, &c, err) < 0) return -1;
  sk_status st = container_status(&c);
  if (st != ST_RUNNING && st != ST_CREATED) {
    container_free(&c);
    return sk_fail(err, 0, "cannot exec in container %s: it is %s", o->id, status_name(st));
  }
  char cfgpath[PATH_MAX + 16];
  snprintf(cfgpath, sizeof cfgpath, "%s/config.json", c.dir);
  json_object *config = j_parse_file(cfgpath, err), *pj = NULL;
  sk_proc proc = {0};
  int sync[2] = {-1, -1}, pidfd = -1, console_fd = -1, r = -1;
  pid_t pid = -1;
  if (config == NULL) goto out;
  pj = exec_process(o, config, err);
  if (pj == NULL) goto out;
  if (proc_parse(pj, j_get(config, "linux"), "process", &proc, err) < 0) goto out;
  char cache[PATH_MAX + 32];
  snprintf(cache, sizeof cache, "%s/.seccomp-cache", g->root);
  if (security_seccomp_prepare(proc.sec, cache, err) < 0) goto out;
  if (proc.terminal && !o->console_socket) {
    sk_fail(err, 0, "--tty needs --console-socket to hand the pty to");
    goto out;
  }
  if (proc.terminal) {
    console_fd = console_connect(o->console_socket, err);
    if (console_fd < 0) goto out;
  }
  pidfd = (int)syscall(SYS_pidfd_open, c.pid, 0);
  if (pidfd < 0 || !container_alive(&c)) { /* checked after opening: the pidfd is of the right process */
    sk_fail(err, pidfd < 0 ? errno : ESRCH, "container %s: its init (pid %d) is gone", o->id, (int)c.pid);
    goto out;
  }
  int flags = ns_flags_of(config);
  if ((flags & CLONE_NEWPID) && setns(pidfd, CLONE_NEWPID) < 0) {
    sk_fail(err, errno, "joining the pid namespace of container %s", o->id);
    goto out;
  }
  if ((flags & CLONE_NEWTIME) && setns(pidfd, CLONE_NEWTIME) < 0) {
    sk_fail(err, errno, "joining the time namespace of container %s", o->id);
    goto out;
  }
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sync) < 0) {
    sk_fail(err, errno, "socketpair");
    goto out;
  }
  fflush(NULL);
  pid = fork();
  if (pid < 0) {
    sk_fail(err, errno, "fork");
    goto out;
  }
  if (pid == 0) {
    close(sync[0]);
    exec_child a = {.proc = &proc,
                    .sync = sync[1],
                    .pidfd = pidfd,
                    .ns_flags = flags,
                    .console_fd = console_fd,
                    .preserve_fds = o->preserve_fds,
                    .listener = has_seccomp_listener(j_get(config, "linux"))};
    exec_child_main(&a);
  }
  close(sync[1]);
  sync[1] = -1;
  if (console_fd >= 0) close(console_fd), console_fd = -1;
  if (c.cgroup && cgroup_add_pid(c.cgroup, pid, err) < 0) goto kill_child;
  if (send(sync[0], "G", 1, MSG_NOSIGNAL) != 1) {
    sk_fail(err, errno, "starting the exec'd process");
    goto kill_child;
  }
  for (int r2;;) {
    int nfd = -1;
    r2 = await_child(sync[0], &nfd, err);
    if (r2 == 0) break;
    if (r2 == 3) {
      json_object *sj = container_state_json(&c, ST_RUNNING);
      int fr = forward_notify_fd(proc.sec, nfd, pid, json_object_to_json_string(sj), err);
      json_object_put(sj);
      if (fr < 0) goto kill_child;
      continue;
    }
    if (r2 > 0) sk_fail(err, 0, "unexpected message from the exec'd process");
    sk_wrap(err, "exec in container %s", o->id);
    goto kill_child;
  }
  if (o->pid_file) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d", (int)pid);
    if (write_file_atomic(o->pid_file, buf, (size_t)n, 0644, err) < 0) goto kill_child;
  }
  if (o->detach) {
    r = 0;
    goto out;
  }
  forward_to = pid;
  struct sigaction sa = {.sa_handler = forward_signal};
  int fwd[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
  for (size_t i = 0; i < sizeof fwd / sizeof fwd[0]; i++) sigaction(fwd[i], &sa, NULL);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) {
      sk_fail(err, errno, "waiting for the exec'd process");
      goto out;
    }
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r = 0;
  goto out;
kill_child:
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
out:
  if (sync[0] >= 0) close(sync[0]);
  if (sync[1] >= 0) close(sync[1]);
  if (pidfd >= 0) close(pidfd);
  if (console_fd >= 0) close(console_fd);
  proc_free(&proc);
  if (pj) json_object_put(pj);
  if (config) json_object_put(config);
  container_free(&c);
  return r;
}
