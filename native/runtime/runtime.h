/* The commands of skiff-runtime, one function each, and the options they share. */
#ifndef SKIFF_RUNTIME_H
#define SKIFF_RUNTIME_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"
#include "spec.h"

typedef struct sk_global {
  const char *root; /* --root, default /run/skiff-runtime */
} sk_global;

typedef struct sk_create_opts {
  const char *id, *bundle, *pid_file, *console_socket;
  int preserve_fds;
  bool no_pivot;
} sk_create_opts;

/* create: returns once the init waits on the exec fifo; *pid is its pid. */
int container_create(const sk_global *g, const sk_create_opts *o, pid_t *pid, sk_error *err);
int container_start(const sk_global *g, const char *id, sk_error *err);

int cmd_state(const sk_global *g, const char *id, sk_error *err);
int cmd_kill(const sk_global *g, const char *id, const char *signal, bool all, sk_error *err);
int cmd_delete(const sk_global *g, const char *id, bool force, sk_error *err);
int cmd_pause(const sk_global *g, const char *id, bool pause, sk_error *err);
int cmd_ps(const sk_global *g, const char *id, const char *format, char **ps_args, sk_error *err);
int cmd_list(const sk_global *g, const char *format, bool quiet, sk_error *err);
/* resources: a linux.resources JSON object (owned by the caller). */
int cmd_update(const sk_global *g, const char *id, json_object *resources, sk_error *err);
int cmd_features(sk_error *err);
/* events --stats: one {"type":"stats","id","data"} object; without --stats, one such line every interval
 * seconds until the container stops. */
int cmd_events(const sk_global *g, const char *id, bool once, int interval, sk_error *err);

typedef struct sk_exec_opts {
  const char *id, *process_file, *console_socket, *pid_file, *cwd, *user, *apparmor, *process_label;
  char **args;              /* trailing arguments, NULL-terminated */
  const char **env, **caps; /* from repeated --env / --cap, NULL-terminated */
  bool tty, detach, no_new_privs;
  int preserve_fds;
} sk_exec_opts;
/* Returns the exit code of the process when not detached. */
int cmd_exec(const sk_global *g, const sk_exec_opts *o, int *exit_code, sk_error *err);
/* run = create + start (+ wait + delete unless detached). */
int cmd_run(const sk_global *g, const sk_create_opts *o, bool detach, int *exit_code, sk_error *err);

/* Child-side helpers shared by create and exec. */
/* Send an error to the runtime over the sync socket and exit. */
void child_fail(int sync, sk_error *err) __attribute__((noreturn));
/* Find args[0] in the process's PATH (from env) the way execvp does; fills buf. */
int find_executable(const char *name, const char **env, char *buf, size_t len, sk_error *err);
/* env plus HOME from the container's /etc/passwd (for the current uid) when env has none, as runc does. */
const char **env_with_home(const char **env);
/* chdir(cwd) and check with getcwd that we really are there (CVE-2024-21626: a leaked fd as cwd). */
int enter_cwd(const char *cwd, sk_error *err);
/* Default dispositions and an empty mask: ignored signals would otherwise survive exec into the container. */
void reset_signals(void);
/* Mark every fd from `from` on close-on-exec, and keep [3, from) inheritable (--preserve-fds). */
int seal_fds(int preserve_fds, sk_error *err);
/* Read the child's next message on the sync socket: 0 it exec'd (EOF), 1 ready ('R'), 2 asks for the
 * createRuntime hooks ('H'), 3 passed its seccomp notify fd ('N', into *fd); -1 it failed (err has its message). */
int await_child(int sync, int *fd, sk_error *err);
/* In the child: pass the seccomp notify fd (if any) to the runtime, which hands it to the listener. */
int send_notify_fd(int sync, const sk_security *sec, sk_error *err);
/* Whether the config asks for a seccomp listener: then seccomp is loaded while the sync socket is still open. */
bool has_seccomp_listener(json_object *linux_obj);
/* In the runtime: forward a notify fd received from the child to linux.seccomp.listenerPath. */
int forward_notify_fd(const sk_security *sec, int fd, pid_t pid, const char *state_json, sk_error *err);
/* The current time as RFC 3339 with nanoseconds. */
void rfc3339_now(char *buf, size_t len);

#endif
