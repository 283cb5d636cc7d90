/* The commands that act on an existing container: state, kill, delete, pause/resume, ps, list, update. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jsonutil.h"
#include "log.h"
#include "runtime.h"
#include "state.h"
#include "util.h"

static void print_json(json_object *o) {
  const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
  printf("%s\n", s);
}

int cmd_state(const sk_global *g, const char *id, sk_error *err) {
  sk_container c;
  if (container_load(g->root, id, &c, err) < 0) return -1;
  json_object *o = container_state_json(&c, container_status(&c));
  print_json(o);
  json_object_put(o);
  container_free(&c);
  return 0;
}

static const struct {
  const char *name;
  int num;
} signals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT}, {"ILL", SIGILL},     {"TRAP", SIGTRAP},
    {"ABRT", SIGABRT}, {"IOT", SIGIOT},       {"BUS", SIGBUS},   {"FPE", SIGFPE},     {"KILL", SIGKILL},
    {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},     {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},   {"ALRM", SIGALRM},
    {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},   {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU}, {"URG", SIGURG},     {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"POLL", SIGPOLL}, {"PWR", SIGPWR},       {"SYS", SIGSYS},
};

static int parse_signal(const char *s, int *out, sk_error *err) {
  uint64_t n;
  if (parse_u64(s, &n)) {
    if (n == 0 || n > 64) return sk_fail(err, 0, "invalid signal number %s", s);
    *out = (int)n;
    return 0;
  }
  const char *name = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
  if (strncasecmp(name, "RTMIN", 5) == 0 || strncasecmp(name, "RTMAX", 5) == 0) {
    int64_t off = 0;
    if (name[5] && !parse_i64(name + 5, &off)) return sk_fail(err, 0, "unknown signal \"%s\"", s);
    int v = (strncasecmp(name, "RTMIN", 5) == 0 ? SIGRTMIN : SIGRTMAX) + (int)off;
    if (v < SIGRTMIN || v > SIGRTMAX) return sk_fail(err, 0, "unknown signal \"%s\"", s);
    *out = v;
    return 0;
  }
  for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
    if (strcasecmp(name, signals[i].name) == 0) {
      *out = signals[i].num;
      return 0;
    }
  return sk_fail(err, 0, "unknown signal \"%s\"", s);
}

int cmd_kill(const sk_global *g, const char *id, const char *signal, bool all, sk_error *err) {
  int sig = SIGTERM;
  if (parse_signal(signal ? signal : "TERM", &sig, err) < 0) return -1;
  sk_container c;
  if (container_load(g->root, id, &c, err) < 0) return -1;
  sk_status st = container_status(&c);
  int r = 0;
  if (all && c.cgroup) {
    r = cgroup_kill_all(c.cgroup, sig, err);
  } else if (st == ST_STOPPED || st == ST_CREATING) {
    r = sk_fail(err, 0, "container %s is not running", id);
  } else if (kill(c.pid, sig) < 0) {
    r = sk_fail(err, errno, "sending signal %d to container %s (pid %d)", sig, id, (int)c.pid);
  }
  container_free(&c);
  return r;
}

/* Wait until the init is gone or a zombie (its reaper is our caller, not us). */
static void wait_dead(const sk_container *c, unsigned ms) {
  for (uint64_t end = now_ms() + ms; container_alive(c) && now_ms() < end;) usleep(1000);
}

static void remove_dir_files(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)))
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
  }
  rmdir(dir);
}

int cmd_delete(const sk_global *g, const char *id, bool force, sk_error *err) {
  sk_container c;
  if (container_load(g->root, id, &c, err) < 0) {
    /* runc: deleting what does not exist with --force is not an error. */
    if (force && strstr(err->msg, "does not exist")) return 0;
    return -1;
  }
  sk_status st = container_status(&c);
  if ((st == ST_RUNNING || st == ST_PAUSED) && !force) {
    container_free(&c);
    return sk_fail(err, 0, "cannot delete container %s that is %s: stop it first or use --force", id, status_name(st));
  }
  if (st != ST_STOPPED && st != ST_CREATING) {
    if (c.cgroup) {
      if (st == ST_PAUSED) cgroup_freeze(c.cgroup, false, err);
      cgroup_kill_all(c.cgroup, SIGKILL, err);
    }
    if (container_alive(&c)) kill(c.pid, SIGKILL);
    wait_dead(&c, 5000);
    if (container_alive(&c)) {
      container_free(&c);
      return sk_fail(err, 0, "container %s: its init (pid %d) did not die after SIGKILL", id, (int)c.pid);
    }
  }
  int r = 0;
  if (c.cgroup && cgroup_destroy(c.cgroup, err) < 0) {
    container_free(&c);
    return sk_wrap(err, "deleting container %s", id);
  }
  /* poststop hooks: failures are logged, the delete goes on (runtime-spec). */
  char cfg[PATH_MAX + 16];
  snprintf(cfg, sizeof cfg, "%s/config.json", c.dir);
  sk_error herr;
  json_object *config = c.saved ? j_parse_file(cfg, &herr) : NULL;
  json_object *hooks = config ? j_get(config, "hooks") : NULL;
  if (hooks && j_get(hooks, "poststop")) {
    json_object *sj = container_state_json(&c, ST_STOPPED);
    if (hooks_run(hooks, "poststop", json_object_to_json_string_ext(sj, JSON_C_TO_STRING_PLAIN), &herr) < 0)
      log_warn("%s", herr.msg);
    json_object_put(sj);
  }
  if (config) json_object_put(config);
  remove_dir_files(c.dir);
  container_free(&c);
  return r;
}

int cmd_pause(const sk_global *g, const char *id, bool pause, sk_error *err) {
  sk_container c;
  if (container_load(g->root, id, &c, err) < 0) return -1;
  sk_status st = container_status(&c);
  int r = 0;
  if (pause && st != ST_RUNNING && st != ST_CREATED)
    r = sk_fail(err, 0, "cannot pause container %s: it is %s", id, status_name(st));
  else if (!pause && st != ST_PAUSED)
    r = sk_fail(err, 0, "cannot resume container %s: it is %s, not paused", id, status_name(st));
  else if (!c.cgroup)
    r = sk_fail(err, 0, "container %s has no cgroup to freeze", id);
  else
    r = cgroup_freeze(c.cgroup, pause, err);
  container_free(&c);
  return r;
}

int cmd_ps(const sk_global *g, const char *id, const char *format, char **ps_args, sk_error *err) {
  sk_container c;
  if (container_load(g->root, id, &c, err) < 0) return -1;
  pid_t *pids = NULL;
  size_t n = 0;
  int r = c.cgroup ? cgroup_pids(c.cgroup, &pids, &n, err) : 0;
  container_free(&c);
  if (r < 0) return -1;
  if (format && strcmp(format, "json") == 0) {
    printf("[");
    for (size_t i = 0; i < n; i++) printf("%s%d", i ? "," : "", (int)pids[i]);
    printf("]\n");
    free(pids);
    return 0;
  }
  if (format && strcmp(format, "table") != 0) {
    free(pids);
    return sk_fail(err, 0, "invalid --format \"%s\": use table or json", format);
  }
  /* As runc: run ps(1) and keep the header and the lines whose PID is in the container. */
  char cmd[4096] = "ps";
  size_t len = 2;
  if (ps_args && ps_args[0]) {
    for (char **a = ps_args; *a; a++) {
      for (const char *p = *a; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-,=_", *p)) {
          free(pids);
          return sk_fail(err, 0, "ps argument \"%s\" has characters ps options never use", *a);
        }
      len += (size_t)snprintf(cmd + len, sizeof cmd - len, " %s", *a);
    }
  } else {
    len += (size_t)snprintf(cmd + len, sizeof cmd - len, " -ef");
  }
  FILE *f = popen(cmd, "r");
  if (f == NULL) {
    free(pids);
    return sk_fail(err, errno, "running %s", cmd);
  }
  char line[4096];
  int pid_col = -1;
  for (int lineno = 0; fgets(line, sizeof line, f); lineno++) {
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", line);
    char *save, *tok = strtok_r(copy, " \t\n", &save);
    if (lineno == 0) {
      for (int col = 0; tok; col++, tok = strtok_r(NULL, " \t\n", &save))
        if (strcmp(tok, "PID") == 0) pid_col = col;
      fputs(line, stdout);
      if (pid_col < 0) {
        pclose(f);
        free(pids);
        return sk_fail(err, 0, "ps output has no PID column");
      }
      continue;
    }
    for (int col = 0; tok && col < pid_col; col++) tok = strtok_r(NULL, " \t\n", &save);
    int64_t p;
    if (tok && parse_i64(tok, &p))
      for (size_t i = 0; i < n; i++)
        if (pids[i] == p) fputs(line, stdout);
  }
  pclose(f);
  free(pids);
  return 0;
}

int cmd_list(const sk_global *g, const char *format, bool quiet, sk_error *err) {
  bool json = format && strcmp(format, "json") == 0;
  if (format && !json && strcmp(format, "table") != 0)
    return sk_fail(err, 0, "invalid --format \"%s\": use table or json", format);
  DIR *d = opendir(g->root);
  json_object *arr = json_object_new_array();
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (e->d_name[0] == '.') continue;
      sk_container c;
      sk_error ignored;
      if (container_load(g->root, e->d_name, &c, &ignored) < 0) continue;
      json_object_array_add(arr, container_state_json(&c, container_status(&c)));
      container_free(&c);
    }
    closedir(d);
  }
  size_t n = json_object_array_length(arr);
  if (json) {
    print_json(arr);
  } else if (quiet) {
    for (size_t i = 0; i < n; i++)
      printf("%s\n", json_object_get_string(j_get(json_object_array_get_idx(arr, i), "id")));
  } else {
    printf("%-20s %-8s %-10s %-40s %-32s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER");
    for (size_t i = 0; i < n; i++) {
      json_object *o = json_object_array_get_idx(arr, i);
      printf("%-20s %-8d %-10s %-40s %-32s %s\n", json_object_get_string(j_get(o, "id")),
             json_object_get_int(j_get(o, "pid")), json_object_get_string(j_get(o, "status")),
             json_object_get_string(j_get(o, "bundle")), json_object_get_string(j_get(o, "created")),
             json_object_get_string(j_get(o, "owner")));
    }
  }
  json_object_put(arr);
  return 0;
}

int cmd_update(const sk_global *g, const char *id, json_object *resources, sk_error *err) {
  sk_container c;
  if (container_load(g->root, id, &c, err) < 0) return -1;
  sk_status st = container_status(&c);
  int r;
  if (st == ST_STOPPED || st == ST_CREATING)
    r = sk_fail(err, 0, "cannot update container %s: it is %s", id, status_name(st));
  else if (!c.cgroup)
    r = sk_fail(err, 0, "container %s has no cgroup", id);
  else if ((r = cgroup_update(c.cgroup, resources, err)) == 0) {
    json_object_object_add(c.saved, "cgroup", cgroup_to_json(c.cgroup));
    r = container_save(c.dir, c.saved, err);
  }
  container_free(&c);
  return r;
}

int cmd_events(const sk_global *g, const char *id, bool once, int interval, sk_error *err) {
  for (;;) {
    sk_container c;
    if (container_load(g->root, id, &c, err) < 0) return -1;
    sk_status st = container_status(&c);
    if (st == ST_STOPPED && !once) {
      container_free(&c);
      return 0;
    }
    json_object *data = NULL;
    if (!c.cgroup) {
      container_free(&c);
      return sk_fail(err, 0, "container %s has no cgroup", id);
    }
    if (cgroup_stats(c.cgroup, &data, err) < 0) {
      container_free(&c);
      return -1;
    }
    container_free(&c);
    json_object *ev = json_object_new_object();
    json_object_object_add(ev, "type", json_object_new_string("stats"));
    json_object_object_add(ev, "id", json_object_new_string(id));
    json_object_object_add(ev, "data", data);
    printf("%s\n", json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    fflush(stdout);
    json_object_put(ev);
    if (once) return 0;
    sleep((unsigned)interval);
  }
}
