/* OCI hooks: path, args, env, timeout; the container's state JSON on stdin. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jsonutil.h"
#include "log.h"
#include "spec.h"
#include "util.h"

static const char *const hook_kinds[] = {"prestart",       "createRuntime", "createContainer",
                                         "startContainer", "poststart",     "poststop"};

int hooks_validate(json_object *hooks, sk_error *err) {
  if (hooks == NULL) return 0;
  json_object_object_foreach(hooks, kind, list) {
    bool known = false;
    for (size_t i = 0; i < sizeof hook_kinds / sizeof hook_kinds[0]; i++) known |= strcmp(kind, hook_kinds[i]) == 0;
    if (!known) return sk_fail(err, 0, "hooks.%s is not a hook kind", kind);
    if (list == NULL) continue;
    if (!json_object_is_type(list, json_type_array)) return sk_fail(err, 0, "hooks.%s must be an array", kind);
    for (size_t i = 0; i < json_object_array_length(list); i++) {
      char where[64];
      snprintf(where, sizeof where, "hooks.%s[%zu]", kind, i);
      json_object *h = json_object_array_get_idx(list, i);
      if (h == NULL || !json_object_is_type(h, json_type_object)) return sk_fail(err, 0, "%s must be an object", where);
      const char *path;
      const char **v = NULL;
      int64_t timeout = 0;
      if (j_string(h, "path", where, true, &path, err) < 0) return -1;
      if (path[0] != '/') return sk_fail(err, 0, "%s.path must be absolute, not \"%s\"", where, path);
      if (j_strv(h, "args", where, false, &v, err) < 0) return -1;
      free(v);
      v = NULL;
      if (j_strv(h, "env", where, false, &v, err) < 0) return -1;
      free(v);
      if (j_int64(h, "timeout", where, false, &timeout, err) < 0) return -1;
      if (j_get(h, "timeout") && timeout <= 0)
        return sk_fail(err, 0, "%s.timeout must be a positive number of seconds", where);
    }
  }
  return 0;
}

/* Wait for pid for at most timeout_s seconds (0: forever). Returns the wait status, or -1 on timeout. */
static int wait_with_timeout(pid_t pid, int64_t timeout_s) {
  int status;
  if (timeout_s <= 0) {
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
  }
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  uint64_t deadline = now_ms() + (uint64_t)timeout_s * 1000;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    uint64_t now = now_ms();
    if (now >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      if (pidfd >= 0) close(pidfd);
      return -1;
    }
    if (pidfd >= 0) {
      struct pollfd p = {.fd = pidfd, .events = POLLIN};
      poll(&p, 1, (int)(deadline - now));
    } else {
      usleep(1000);
    }
  }
  if (pidfd >= 0) close(pidfd);
  return status;
}

static int run_hook(json_object *h, const char *where, const char *state_json, sk_error *err) {
  const char *path = json_object_get_string(j_get(h, "path"));
  const char **args = NULL, **env = NULL;
  int64_t timeout = 0;
  j_strv(h, "args", where, false, &args, err);
  j_strv(h, "env", where, false, &env, err);
  j_int64(h, "timeout", where, false, &timeout, err);
  const char *default_args[] = {path, NULL};
  const char *no_env[] = {NULL};
  int in[2];
  if (pipe2(in, O_CLOEXEC) < 0) {
    free(args);
    free(env);
    return sk_fail(err, errno, "%s: pipe", where);
  }
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(in[0]);
    close(in[1]);
    free(args);
    free(env);
    return sk_fail(err, e, "%s: fork", where);
  }
  if (pid == 0) {
    dup2(in[0], 0);
    signal(SIGPIPE, SIG_DFL);
    execve(path, (char *const *)(args && args[0] ? args : default_args), (char *const *)(env ? env : no_env));
    dprintf(2, "skiff-runtime: %s: exec %s: %s\n", where, path, strerror(errno));
    _exit(127);
  }
  close(in[0]);
  /* A hook may not read its stdin: a full pipe or EPIPE is not its failure. */
  void (*old)(int) = signal(SIGPIPE, SIG_IGN);
  write_all(in[1], state_json, strlen(state_json));
  close(in[1]);
  signal(SIGPIPE, old);
  int status = wait_with_timeout(pid, timeout);
  free(args);
  free(env);
  if (status == -1)
    return sk_fail(err, 0, "%s (%s) timed out after %llds and was killed", where, path, (long long)timeout);
  if (WIFSIGNALED(status)) return sk_fail(err, 0, "%s (%s) was killed by signal %d", where, path, WTERMSIG(status));
  if (WEXITSTATUS(status) != 0)
    return sk_fail(err, 0, "%s (%s) exited with status %d", where, path, WEXITSTATUS(status));
  return 0;
}

int hooks_run(json_object *hooks, const char *kind, const char *state_json, sk_error *err) {
  json_object *list = j_get(hooks, kind);
  if (list == NULL) return 0;
  for (size_t i = 0; i < json_object_array_length(list); i++) {
    char where[64];
    snprintf(where, sizeof where, "hook %s[%zu]", kind, i);
    log_debug("running %s", where);
    if (run_hook(json_object_array_get_idx(list, i), where, state_json, err) < 0) return -1;
  }
  return 0;
}
