/* skiff-runtime: an OCI runtime with runc's command line. This file parses arguments and dispatches. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jsonutil.h"
#include "log.h"
#include "runtime.h"
#include "sealed.h"
#include "state.h"
#include "util.h"

#define VERSION "0.1.0"
#define SPEC_VERSION "1.2.0"

static const char usage[] =
    "usage: skiff-runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND [OPTIONS] ID\n"
    "\n"
    "commands:\n"
    "  create   [--bundle DIR] [--pid-file F] [--console-socket S] [--preserve-fds N] [--no-pivot] ID\n"
    "  start    ID\n"
    "  run      [create options] [--detach] ID\n"
    "  state    ID\n"
    "  kill     [--all] ID [SIGNAL]\n"
    "  delete   [--force] ID\n"
    "  exec     [--process F | -t --console-socket S --cwd D --env K=V --user U[:G] --cap C] [--detach]\n"
    "           [--pid-file F] [--preserve-fds N] ID [COMMAND ARGS...]\n"
    "  pause    ID\n"
    "  resume   ID\n"
    "  ps       [--format table|json] ID [PS OPTIONS...]\n"
    "  list     [--format table|json] [--quiet]\n"
    "  update   [--resources FILE|-] [--memory N] [--memory-swap N] [--memory-reservation N] [--cpu-shares N]\n"
    "           [--cpu-quota N] [--cpu-period N] [--cpuset-cpus L] [--cpuset-mems L] [--pids-limit N]\n"
    "           [--blkio-weight N] ID\n"
    "  events   [--stats] [--interval 5s] ID\n"
    "  features\n";

/* A small getopt for runc-style flags: --name VALUE, --name=VALUE, -name VALUE, and short aliases. */
typedef struct opt {
  const char *name; /* long name without dashes */
  char short_name;  /* 0 if none */
  bool takes_value;
} opt;

typedef struct parsed {
  const char *values[32]; /* per option index; for bools, non-NULL when given */
  const char *multi[32][64];
  int nmulti[32];
  char **rest; /* positional arguments */
  int nrest;
} parsed;

/* Options stop at the first positional argument for exec/ps (what follows belongs to the command). */
static int parse_opts(int argc, char **argv, const opt *opts, bool stop_at_positional, parsed *p, sk_error *err) {
  memset(p, 0, sizeof *p);
  p->rest = calloc((size_t)argc + 1, sizeof *p->rest);
  for (int i = 0; i < argc; i++) {
    char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      for (i++; i < argc; i++) p->rest[p->nrest++] = argv[i];
      break;
    }
    if (a[0] != '-' || a[1] == '\0') {
      p->rest[p->nrest++] = a;
      if (stop_at_positional) {
        for (i++; i < argc; i++) p->rest[p->nrest++] = argv[i];
        break;
      }
      continue;
    }
    const char *name = a + 1 + (a[1] == '-');
    char namebuf[64];
    const char *eq = strchr(name, '=');
    if (eq) {
      snprintf(namebuf, sizeof namebuf, "%.*s", (int)(eq - name), name);
      name = namebuf;
    }
    int k = -1;
    for (int j = 0; opts[j].name; j++)
      if (strcmp(opts[j].name, name) == 0 || (opts[j].short_name && name[0] == opts[j].short_name && name[1] == '\0'))
        k = j;
    if (k < 0) return sk_fail(err, 0, "unknown option %s", a);
    const char *value = "true";
    if (opts[k].takes_value) {
      if (eq)
        value = eq + 1;
      else if (i + 1 < argc)
        value = argv[++i];
      else
        return sk_fail(err, 0, "option %s needs a value", a);
    } else if (eq) {
      value = (strcmp(eq + 1, "false") == 0 || strcmp(eq + 1, "0") == 0) ? NULL : "true";
    }
    p->values[k] = value;
    if (value && p->nmulti[k] < 63) p->multi[k][p->nmulti[k]++] = value;
  }
  return 0;
}

static int need_id(const parsed *p, const char *cmd, sk_error *err) {
  if (p->nrest < 1) return sk_fail(err, 0, "%s needs a container id", cmd);
  return 0;
}

static int parse_int_opt(const char *s, const char *name, int *out, sk_error *err) {
  int64_t v;
  if (!parse_i64(s, &v) || v < 0 || v > 1 << 20) return sk_fail(err, 0, "--%s must be a non-negative number", name);
  *out = (int)v;
  return 0;
}

static const opt create_opts[] = {{"bundle", 'b', true},     {"pid-file", 0, true},  {"console-socket", 0, true},
                                  {"preserve-fds", 0, true}, {"no-pivot", 0, false}, {"no-new-keyring", 0, false},
                                  {"detach", 'd', false},    {"keep", 0, false},     {NULL, 0, false}};

static int fill_create(const parsed *p, sk_create_opts *c, sk_error *err) {
  memset(c, 0, sizeof *c);
  c->id = p->rest[0];
  c->bundle = p->values[0];
  c->pid_file = p->values[1];
  c->console_socket = p->values[2];
  if (p->values[3] && parse_int_opt(p->values[3], "preserve-fds", &c->preserve_fds, err) < 0) return -1;
  c->no_pivot = p->values[4] != NULL;
  return 0;
}

/* `update` flags → a linux.resources object. */
static json_object *update_resources(const parsed *p, sk_error *err) {
  json_object *res = NULL;
  if (p->values[0]) {
    if (strcmp(p->values[0], "-") == 0) {
      char *text;
      size_t len;
      /* fd 0 itself: /dev/stdin cannot be reopened when it is a socket */
      if (read_fd_all(0, &text, &len, err) < 0) return NULL;
      res = j_parse_string(text, len, "resources on stdin", err);
      free(text);
    } else {
      res = j_parse_file(p->values[0], err);
    }
    if (res == NULL) return NULL;
    if (!json_object_is_type(res, json_type_object)) {
      json_object_put(res);
      sk_fail(err, 0, "--resources must hold a JSON object (linux.resources)");
      return NULL;
    }
  } else {
    res = json_object_new_object();
  }
  static const struct {
    int idx;
    const char *section, *key;
  } map[] = {{1, "memory", "limit"}, {2, "memory", "swap"}, {3, "memory", "reservation"}, {4, "cpu", "shares"},
             {5, "cpu", "quota"},    {6, "cpu", "period"},  {9, "pids", "limit"},         {10, "blockIO", "weight"}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
    const char *v = p->values[map[i].idx];
    if (!v) continue;
    int64_t n;
    if (!parse_i64(v, &n)) {
      json_object_put(res);
      sk_fail(err, 0, "%s.%s: \"%s\" is not a number", map[i].section, map[i].key, v);
      return NULL;
    }
    json_object *sec = j_get(res, map[i].section);
    if (sec == NULL) json_object_object_add(res, map[i].section, sec = json_object_new_object());
    json_object_object_add(sec, map[i].key, json_object_new_int64(n));
  }
  for (int idx = 7; idx <= 8; idx++) {
    if (!p->values[idx]) continue;
    json_object *cpu = j_get(res, "cpu");
    if (cpu == NULL) json_object_object_add(res, "cpu", cpu = json_object_new_object());
    json_object_object_add(cpu, idx == 7 ? "cpus" : "mems", json_object_new_string(p->values[idx]));
  }
  return res;
}

static int run_command(const sk_global *g, const char *cmd, int argc, char **argv, int *exit_code, sk_error *err) {
  parsed p = {0}; /* free(p.rest) at the end must see NULL when a command parses no options */
  int r = -1;
  if (strcmp(cmd, "create") == 0 || strcmp(cmd, "run") == 0) {
    if (parse_opts(argc, argv, create_opts, false, &p, err) < 0 || need_id(&p, cmd, err) < 0) goto out;
    sk_create_opts c;
    if (fill_create(&p, &c, err) < 0) goto out;
    if (cmd[0] == 'c') {
      pid_t pid;
      r = container_create(g, &c, &pid, err);
    } else {
      r = cmd_run(g, &c, p.values[6] != NULL, exit_code, err);
    }
  } else if (strcmp(cmd, "start") == 0 || strcmp(cmd, "state") == 0 || strcmp(cmd, "pause") == 0 ||
             strcmp(cmd, "resume") == 0) {
    static const opt none[] = {{NULL, 0, false}};
    if (parse_opts(argc, argv, none, false, &p, err) < 0 || need_id(&p, cmd, err) < 0) goto out;
    if (cmd[2] == 'a' && cmd[3] == 'r')
      r = container_start(g, p.rest[0], err);
    else if (cmd[1] == 't')
      r = cmd_state(g, p.rest[0], err);
    else
      r = cmd_pause(g, p.rest[0], cmd[0] == 'p', err);
  } else if (strcmp(cmd, "kill") == 0) {
    static const opt o[] = {{"all", 'a', false}, {NULL, 0, false}};
    if (parse_opts(argc, argv, o, false, &p, err) < 0 || need_id(&p, cmd, err) < 0) goto out;
    r = cmd_kill(g, p.rest[0], p.nrest > 1 ? p.rest[1] : NULL, p.values[0] != NULL, err);
  } else if (strcmp(cmd, "delete") == 0) {
    static const opt o[] = {{"force", 'f', false}, {NULL, 0, false}};
    if (parse_opts(argc, argv, o, false, &p, err) < 0 || need_id(&p, cmd, err) < 0) goto out;
    r = cmd_delete(g, p.rest[0], p.values[0] != NULL, err);
  } else if (strcmp(cmd, "ps") == 0) {
    static const opt o[] = {{"format", 'f', true}, {NULL, 0, false}};
    if (parse_opts(argc, argv, o, true, &p, err) < 0 || need_id(&p, cmd, err) < 0) goto out;
    r = cmd_ps(g, p.rest[0], p.values[0], p.rest + 1, err);
  } else if (strcmp(cmd, "list") == 0) {
    static const opt o[] = {{"format", 'f', true}, {"quiet", 'q', false}, {NULL, 0, false}};
    if (parse_opts(argc, argv, o, false, &p, err) < 0) goto out;
    r = cmd_list(g, p.values[0], p.values[1] != NULL, err);
  } else if (strcmp(cmd, "update") == 0) {
    static const opt o[] = {{"resources", 'r', true},        {"memory", 'm', true},     {"memory-swap", 0, true},
                            {"memory-reservation", 0, true}, {"cpu-shares", 0, true},   {"cpu-quota", 0, true},
                            {"cpu-period", 0, true},         {"cpuset-cpus", 0, true},  {"cpuset-mems", 0, true},
                            {"pids-limit", 0, true},         {"blkio-weight", 0, true}, {NULL, 0, false}};
    if (parse_opts(argc, argv, o, false, &p, err) < 0 || need_id(&p, cmd, err) < 0) goto out;
    json_object *res = update_resources(&p, err);
    if (res == NULL) goto out;
    r = cmd_update(g, p.rest[0], res, err);
    json_object_put(res);
  } else if (strcmp(cmd, "exec") == 0) {
    static const opt o[] = {{"process", 'p', true},    {"console-socket", 0, true},
                            {"pid-file", 0, true},     {"cwd", 0, true},
                            {"env", 'e', true},        {"user", 'u', true},
                            {"cap", 'c', true},        {"tty", 't', false},
                            {"detach", 'd', false},    {"no-new-privs", 0, false},
                            {"apparmor", 0, true},     {"process-label", 0, true},
                            {"preserve-fds", 0, true}, {"additional-gids", 'g', true},
                            {NULL, 0, false}};
    if (parse_opts(argc, argv, o, true, &p, err) < 0 || need_id(&p, cmd, err) < 0) goto out;
    if (p.values[13]) {
      sk_fail(err, 0, "--additional-gids is not supported: use --process with user.additionalGids");
      goto out;
    }
    const char *env[65] = {0}, *caps[65] = {0};
    for (int i = 0; i < p.nmulti[4]; i++) env[i] = p.multi[4][i];
    for (int i = 0; i < p.nmulti[6]; i++) caps[i] = p.multi[6][i];
    sk_exec_opts e = {.id = p.rest[0],
                      .process_file = p.values[0],
                      .console_socket = p.values[1],
                      .pid_file = p.values[2],
                      .cwd = p.values[3],
                      .user = p.values[5],
                      .env = env,
                      .caps = caps,
                      .tty = p.values[7] != NULL,
                      .detach = p.values[8] != NULL,
                      .no_new_privs = p.values[9] != NULL,
                      .apparmor = p.values[10],
                      .process_label = p.values[11],
                      .args = p.rest + 1};
    if (p.values[12] && parse_int_opt(p.values[12], "preserve-fds", &e.preserve_fds, err) < 0) goto out;
    r = cmd_exec(g, &e, exit_code, err);
  } else if (strcmp(cmd, "events") == 0) {
    static const opt o[] = {{"stats", 0, false}, {"interval", 0, true}, {NULL, 0, false}};
    if (parse_opts(argc, argv, o, false, &p, err) < 0 || need_id(&p, cmd, err) < 0) goto out;
    int interval = 5;
    if (p.values[1]) {
      /* runc takes a duration ("5s"); accept plain seconds too */
      char *end;
      long v = strtol(p.values[1], &end, 10);
      if (end == p.values[1] || (*end && strcmp(end, "s") != 0) || v <= 0) {
        sk_fail(err, 0, "--interval must be a number of seconds such as 5s");
        goto out;
      }
      interval = (int)v;
    }
    r = cmd_events(g, p.rest[0], p.values[0] != NULL, interval, err);
  } else if (strcmp(cmd, "features") == 0) {
    r = cmd_features(err);
  } else {
    sk_fail(err, 0, "unknown command \"%s\" (see skiff-runtime --help)", cmd);
    return -1;
  }
out:
  free(p.rest);
  return r;
}

int main(int argc, char **argv, char **envp) {
  const char *log_path = NULL, *log_format = "text";
  bool debug = false;
  sk_global g = {.root = "/run/skiff-runtime"};
  int i = 1;
  sk_error err = {0};
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i] + 1 + (argv[i][1] == '-');
    const char *eq = strchr(a, '=');
    size_t nl = eq ? (size_t)(eq - a) : strlen(a);
#define IS(name) (nl == strlen(name) && strncmp(a, name, nl) == 0)
#define VALUE() (eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL))
    if (IS("version") || IS("v")) {
      printf("skiff-runtime version %s\nspec: %s\n", VERSION, SPEC_VERSION);
      return 0;
    } else if (IS("help") || IS("h")) {
      fputs(usage, stdout);
      return 0;
    } else if (IS("root")) {
      g.root = VALUE();
    } else if (IS("log")) {
      log_path = VALUE();
    } else if (IS("log-format")) {
      log_format = VALUE();
    } else if (IS("debug")) {
      debug = true;
    } else if (IS("systemd-cgroup")) {
      fputs("skiff-runtime: --systemd-cgroup is not supported: cgroups are managed through cgroupfs\n", stderr);
      return 1;
    } else if (IS("rootless")) {
      (void)VALUE(); /* accepted for compatibility; rootless mode is decided by the config */
    } else if (IS("criu")) {
      (void)VALUE();
    } else {
      fprintf(stderr, "skiff-runtime: unknown global option %s\n%s", argv[i], usage);
      return 1;
    }
#undef IS
#undef VALUE
  }
  if (g.root == NULL || log_format == NULL || (log_path == NULL && i < argc && 0)) {
    fprintf(stderr, "skiff-runtime: a global option is missing its value\n");
    return 1;
  }
  if (strcmp(log_format, "text") != 0 && strcmp(log_format, "json") != 0) {
    fprintf(stderr, "skiff-runtime: --log-format must be text or json, not \"%s\"\n", log_format);
    return 1;
  }
  if (log_open(log_path, strcmp(log_format, "json") == 0, debug) < 0) {
    fprintf(stderr, "skiff-runtime: opening the log %s: %s\n", log_path, strerror(errno));
    return 1;
  }
  if (i >= argc) {
    fputs(usage, stderr);
    return 1;
  }
  const char *cmd = argv[i];
  /* Commands that run our code inside a container run from a sealed copy of this binary. */
  if (strcmp(cmd, "create") == 0 || strcmp(cmd, "run") == 0 || strcmp(cmd, "exec") == 0) {
    char msg[512];
    if (ensure_sealed(argv, envp, msg, sizeof msg) < 0) {
      log_error("%s", msg);
      return 1;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  int exit_code = 0;
  if (run_command(&g, cmd, argc - i - 1, argv + i + 1, &exit_code, &err) < 0) {
    log_error("%s", err.msg);
    return 1;
  }
  fflush(stdout);
  return exit_code;
}
