/* Options and configuration. In the VM skiff-init gets no options (the kernel may pass stray words of its command
 * line: they are ignored with a warning; `skiff_on_fatal=poweroff` and `skiff_verbose=1` on the kernel command
 * line arrive as environment variables). Everything it needs from the host comes from fw_cfg blobs:
 *   opt/skiff/config                {hostname, shares:[{tag, path, type}], agentArgs:[...], dataDevice}
 *   opt/skiff/ssh_host_ed25519_key  the VM's SSH host key (private, made by the host)
 *   opt/skiff/authorized_keys       the user's public key
 * read from /sys/firmware/qemu_fw_cfg/by_name/opt/skiff/<name>/raw (module qemu_fw_cfg). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "init.h"
#include "jsonutil.h"
#include "util.h"

#define FW_CFG_DIR "/sys/firmware/qemu_fw_cfg/by_name/opt/skiff"

static const char usage[] =
    "usage: skiff-init [--test] [--root-dir DIR] [--no-mounts] [--no-modules] [--no-network] [--verbose]\n"
    "                  [--fw-cfg DIR] [--config FILE] [--agent PROG] [--sshd PROG] [--input-dir DIR]\n"
    "                  [--modules-list FILE] [--agent-stop-ms N] [--kill-grace-ms N] [--on-fatal shell|poweroff]\n"
    "PID 1 of the Skiff VM (docs/init.md). The options are for tests: run it as PID 1 of a new pid namespace.\n";

const char *rpath(const init_opts *o, const char *path, char *buf) {
  snprintf(buf, PATH_MAX, "%s%s", o->root, path);
  return buf;
}

static int int_opt(const char *name, const char *value, int *out, sk_error *err) {
  int64_t v;
  if (!parse_i64(value, &v) || v < 0 || v > 3600000) return sk_fail(err, 0, "%s: not a number of ms: %s", name, value);
  *out = (int)v;
  return 0;
}

int parse_args(int argc, char **argv, init_opts *o, sk_error *err) {
  *o = (init_opts){
      .root = "",
      .fw_cfg_dir = FW_CFG_DIR,
      .agent = "/usr/lib/skiff/bin/skiff-agent",
      .sshd = "/usr/sbin/sshd",
      .input_dir = "/dev/input",
      .agent_stop_ms = 10000,
      .kill_grace_ms = 5000,
      .fatal_shell = true,
  };
  const char *env = getenv("skiff_on_fatal");
  if (env && strcmp(env, "poweroff") == 0) o->fatal_shell = false;
  env = getenv("skiff_verbose");
  if (env && strcmp(env, "0") != 0) o->verbose = true;
  const char *unknown = NULL;
  for (int i = 1; i < argc; i++) {
    char name[64];
    const char *value = NULL;
    const char *arg = argv[i];
    const char *eq = strchr(arg, '=');
    if (strncmp(arg, "--", 2) == 0 && eq && (size_t)(eq - arg) < sizeof name) {
      snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
      value = eq + 1;
    } else {
      snprintf(name, sizeof name, "%s", arg);
    }
    static const char *const flags[] = {"--test", "--no-mounts", "--no-modules", "--no-network", "--verbose", "--help"};
    bool is_flag = false;
    for (size_t f = 0; f < sizeof flags / sizeof *flags; f++) is_flag |= strcmp(name, flags[f]) == 0;
    if (is_flag) {
      if (strcmp(name, "--test") == 0) o->test = true;
      if (strcmp(name, "--no-mounts") == 0) o->no_mounts = true;
      if (strcmp(name, "--no-modules") == 0) o->no_modules = true;
      if (strcmp(name, "--no-network") == 0) o->no_network = true;
      if (strcmp(name, "--verbose") == 0) o->verbose = true;
      if (strcmp(name, "--help") == 0) {
        fputs(usage, stdout);
        exit(0);
      }
      continue;
    }
    static const char *const valued[] = {"--root-dir",      "--fw-cfg",    "--config",       "--agent",
                                         "--sshd",          "--input-dir", "--modules-list", "--agent-stop-ms",
                                         "--kill-grace-ms", "--on-fatal"};
    bool is_valued = false;
    for (size_t f = 0; f < sizeof valued / sizeof *valued; f++) is_valued |= strcmp(name, valued[f]) == 0;
    if (!is_valued) {
      if (!unknown) unknown = arg;
      continue;
    }
    if (!value) {
      if (i + 1 >= argc) return sk_fail(err, 0, "%s needs a value\n%s", name, usage);
      value = argv[++i];
    }
    if (strcmp(name, "--root-dir") == 0) o->root = strcmp(value, "/") == 0 ? "" : value;
    if (strcmp(name, "--fw-cfg") == 0) o->fw_cfg_dir = value;
    if (strcmp(name, "--config") == 0) o->config_file = value;
    if (strcmp(name, "--agent") == 0) o->agent = value;
    if (strcmp(name, "--sshd") == 0) o->sshd = value;
    if (strcmp(name, "--input-dir") == 0) o->input_dir = value;
    if (strcmp(name, "--modules-list") == 0) o->modules_list = value;
    if (strcmp(name, "--agent-stop-ms") == 0 && int_opt(name, value, &o->agent_stop_ms, err) < 0) return -1;
    if (strcmp(name, "--kill-grace-ms") == 0 && int_opt(name, value, &o->kill_grace_ms, err) < 0) return -1;
    if (strcmp(name, "--on-fatal") == 0) {
      if (strcmp(value, "shell") != 0 && strcmp(value, "poweroff") != 0)
        return sk_fail(err, 0, "--on-fatal: shell or poweroff, not %s", value);
      o->fatal_shell = strcmp(value, "shell") == 0;
    }
  }
  if (o->root[0] && o->root[0] != '/') return sk_fail(err, 0, "--root-dir must be absolute: %s", o->root);
  if (unknown) {
    /* The kernel hands PID 1 the words of its command line it does not know: never fatal in the VM. */
    if (o->test) return sk_fail(err, 0, "unknown argument %s\n%s", unknown, usage);
    warn("ignoring unknown argument %s", unknown);
  }
  if (o->test) o->fatal_shell = false;
  return 0;
}

/* <dir>/<name>/raw (the fw_cfg sysfs layout); the whole blob, NUL-terminated. */
static int read_blob(const init_opts *o, const char *name, char **out, size_t *len, sk_error *err) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s/raw", o->fw_cfg_dir, name);
  if (read_file(path, out, len, err) < 0) {
    if (err->errnum == ENOENT)
      return sk_fail(err, 0, "fw_cfg blob opt/skiff/%s: %s is missing (QEMU needs -fw_cfg name=opt/skiff/%s,file=...)",
                     name, path, name);
    return sk_wrap(err, "fw_cfg blob opt/skiff/%s", name);
  }
  return 0;
}

static bool valid_hostname(const char *h) {
  size_t n = strlen(h);
  if (n == 0 || n > 63 || h[0] == '-' || h[0] == '.') return false;
  for (size_t i = 0; i < n; i++) {
    char ch = h[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.'))
      return false;
  }
  return true;
}

static int parse_config(json_object *root, init_config *c, sk_error *err) {
  if (!json_object_is_type(root, json_type_object)) return sk_fail(err, 0, "must be a JSON object");
  const char *s = NULL;
  if (j_string(root, "hostname", "config", false, &s, err) < 0) return -1;
  if (s && !valid_hostname(s)) return sk_fail(err, 0, "hostname: not a valid host name: \"%s\"", s);
  c->hostname = strdup(s ? s : "skiff");
  s = NULL;
  if (j_string(root, "dataDevice", "config", false, &s, err) < 0) return -1;
  if (s && s[0] != '/') return sk_fail(err, 0, "dataDevice must be an absolute path: %s", s);
  c->data_device = s && s[0] ? strdup(s) : NULL;
  json_object *shares = NULL;
  if (j_array(root, "shares", "config", false, &shares, err) < 0) return -1;
  size_t n = shares ? json_object_array_length(shares) : 0;
  if (n > MAX_SHARES) return sk_fail(err, 0, "shares: at most %d", MAX_SHARES);
  for (size_t i = 0; i < n; i++) {
    char where[32];
    snprintf(where, sizeof where, "shares[%zu]", i);
    json_object *sh = json_object_array_get_idx(shares, i);
    if (!json_object_is_type(sh, json_type_object)) return sk_fail(err, 0, "%s must be an object", where);
    const char *tag = NULL, *path = NULL;
    if (j_string(sh, "tag", where, true, &tag, err) < 0 || j_string(sh, "path", where, true, &path, err) < 0) return -1;
    if (!tag[0] || strlen(tag) > 31) return sk_fail(err, 0, "%s.tag: 1 to 31 characters (a 9p mount tag)", where);
    if (path[0] != '/' || strstr(path, "/../") || strcmp(path, "/") == 0)
      return sk_fail(err, 0, "%s.path must be an absolute path other than /: %s", where, path);
    const char *type = NULL;
    if (j_string(sh, "type", where, false, &type, err) < 0) return -1;
    if (type && strcmp(type, "9p") != 0 && strcmp(type, "virtiofs") != 0)
      return sk_fail(err, 0, "%s.type: \"9p\" or \"virtiofs\", not \"%s\"", where, type);
    c->shares[c->nshares++] = (share){strdup(tag), strdup(path), type && strcmp(type, "virtiofs") == 0};
  }
  const char **args = NULL;
  if (j_strv(root, "agentArgs", "config", false, &args, err) < 0) return -1;
  for (int i = 0; args && args[i]; i++) {
    if (c->nagent_args >= MAX_AGENT_ARGS - 1) return sk_fail(err, 0, "agentArgs: at most %d", MAX_AGENT_ARGS - 1);
    c->agent_args[c->nagent_args++] = strdup(args[i]);
  }
  free(args);
  return 0;
}

int load_config(const init_opts *o, init_config *c, sk_error *err) {
  char *text = NULL;
  size_t len = 0;
  if (o->config_file) {
    if (read_file(o->config_file, &text, &len, err) < 0) return sk_wrap(err, "config %s", o->config_file);
  } else if (read_blob(o, "config", &text, &len, err) < 0) {
    return -1;
  }
  json_object *root = j_parse_string(text, len, "config", err);
  free(text);
  if (!root) return -1;
  int rc = parse_config(root, c, err);
  json_object_put(root);
  if (rc < 0) return sk_wrap(err, "config (opt/skiff/config)");
  if (read_blob(o, "ssh_host_ed25519_key", &c->host_key, &c->host_key_len, err) < 0) return -1;
  if (read_blob(o, "authorized_keys", &c->authorized_keys, &c->authorized_keys_len, err) < 0) return -1;
  if (!strstr(c->host_key, "PRIVATE KEY"))
    return sk_fail(err, 0, "fw_cfg blob opt/skiff/ssh_host_ed25519_key is not a private key (OpenSSH PEM)");
  if (c->authorized_keys_len == 0) return sk_fail(err, 0, "fw_cfg blob opt/skiff/authorized_keys is empty");
  return 0;
}
