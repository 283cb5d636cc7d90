#include "spec.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "jsonutil.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static const struct {
  const char *name;
  int type;
} ns_types[] = {
    {"pid", CLONE_NEWPID}, {"network", CLONE_NEWNET}, {"mount", CLONE_NEWNS},      {"ipc", CLONE_NEWIPC},
    {"uts", CLONE_NEWUTS}, {"user", CLONE_NEWUSER},   {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
};

int proc_parse(json_object *process, json_object *linux_obj, const char *where, sk_proc *out, sk_error *err) {
  memset(out, 0, sizeof *out);
  if (j_strv(process, "args", where, true, &out->args, err) < 0) return -1;
  if (out->args[0] == NULL || *out->args[0] == '\0') {
    proc_free(out);
    return sk_fail(err, 0, "%s.args must name a program to run", where);
  }
  if (j_strv(process, "env", where, false, &out->env, err) < 0) goto fail;
  if (out->env == NULL) out->env = calloc(1, sizeof *out->env); /* an empty environment */
  out->cwd = "/";
  if (j_string(process, "cwd", where, false, &out->cwd, err) < 0) goto fail;
  if (out->cwd[0] != '/') {
    sk_fail(err, 0, "%s.cwd must be an absolute path, not \"%s\"", where, out->cwd);
    goto fail;
  }
  if (j_bool(process, "terminal", where, &out->terminal, err) < 0) goto fail;
  json_object *size;
  if (j_object(process, "consoleSize", where, false, &size, err) < 0) goto fail;
  if (size) {
    uint64_t h = 0, w = 0;
    char sub[256];
    snprintf(sub, sizeof sub, "%s.consoleSize", where);
    if (j_uint64(size, "height", sub, true, &h, err) < 0 || j_uint64(size, "width", sub, true, &w, err) < 0) goto fail;
    if (h > 65535 || w > 65535) {
      sk_fail(err, 0, "%s must be at most 65535x65535", sub);
      goto fail;
    }
    out->rows = (unsigned)h;
    out->cols = (unsigned)w;
  }
  if (security_parse(process, linux_obj, &out->sec, err) < 0) goto fail;
  return 0;
fail:
  proc_free(out);
  return -1;
}

void proc_free(sk_proc *p) {
  free(p->args);
  free(p->env);
  if (p->sec) security_free(p->sec);
  memset(p, 0, sizeof *p);
}

const sk_ns *spec_ns(const sk_spec *s, int type) {
  for (int i = 0; i < s->nns; i++)
    if (s->ns[i].type == type) return &s->ns[i];
  return NULL;
}

static int parse_namespaces(sk_spec *s, json_object *linux_obj, sk_error *err) {
  json_object *arr;
  if (j_array(linux_obj, "namespaces", "linux", false, &arr, err) < 0) return -1;
  size_t n = arr ? json_object_array_length(arr) : 0;
  for (size_t i = 0; i < n; i++) {
    char where[64];
    snprintf(where, sizeof where, "linux.namespaces[%zu]", i);
    json_object *o = json_object_array_get_idx(arr, i);
    if (o == NULL || !json_object_is_type(o, json_type_object)) return sk_fail(err, 0, "%s must be an object", where);
    const char *type = NULL, *path = NULL;
    if (j_string(o, "type", where, true, &type, err) < 0 || j_string(o, "path", where, false, &path, err) < 0)
      return -1;
    int t = 0;
    for (size_t k = 0; k < sizeof ns_types / sizeof ns_types[0]; k++)
      if (strcmp(ns_types[k].name, type) == 0) t = ns_types[k].type;
    if (t == 0)
      return sk_fail(err, 0,
                     "%s.type \"%s\" is not a namespace type (pid, network, mount, ipc, uts, user, cgroup, time)",
                     where, type);
    if (spec_ns(s, t)) return sk_fail(err, 0, "%s: namespace type \"%s\" is listed twice", where, type);
    sk_ns *ns = &s->ns[s->nns++];
    ns->type = t;
    ns->name = type;
    ns->fd = -1;
    if (path && *path) {
      ns->path = path;
      ns->fd = open(path, O_RDONLY | O_CLOEXEC);
      if (ns->fd < 0) return sk_fail(err, errno, "%s.path %s", where, path);
      int actual = ioctl(ns->fd, NS_GET_NSTYPE);
      if (actual < 0) return sk_fail(err, errno, "%s.path %s is not a namespace", where, path);
      if (actual != t) return sk_fail(err, 0, "%s.path %s is not a %s namespace", where, path, type);
    } else {
      s->new_flags |= t;
    }
  }
  return 0;
}

/* uidMappings/gidMappings → the text /proc/<pid>/uid_map wants. */
static int parse_idmap(json_object *linux_obj, const char *key, char **out, sk_error *err) {
  json_object *arr;
  if (j_array(linux_obj, key, "linux", false, &arr, err) < 0) return -1;
  if (arr == NULL) return 0;
  size_t n = json_object_array_length(arr);
  char *buf = calloc(1, n * 64 + 1);
  if (buf == NULL) return sk_fail(err, ENOMEM, "linux.%s", key);
  size_t len = 0;
  for (size_t i = 0; i < n; i++) {
    char where[64];
    snprintf(where, sizeof where, "linux.%s[%zu]", key, i);
    json_object *o = json_object_array_get_idx(arr, i);
    uint64_t c = 0, h = 0, sz = 0;
    if (j_uint64(o, "containerID", where, true, &c, err) < 0 || j_uint64(o, "hostID", where, true, &h, err) < 0 ||
        j_uint64(o, "size", where, true, &sz, err) < 0) {
      free(buf);
      return -1;
    }
    if (c > UINT32_MAX || h > UINT32_MAX || sz == 0 || sz > UINT32_MAX) {
      free(buf);
      return sk_fail(err, 0, "%s: ids and size must fit 32 bits and size must be positive", where);
    }
    len += (size_t)sprintf(buf + len, "%llu %llu %llu\n", (unsigned long long)c, (unsigned long long)h,
                           (unsigned long long)sz);
  }
  *out = buf;
  return 0;
}

static int parse_time_offsets(json_object *linux_obj, char **out, sk_error *err) {
  json_object *t;
  if (j_object(linux_obj, "timeOffsets", "linux", false, &t, err) < 0) return -1;
  if (t == NULL) return 0;
  char *buf = calloc(1, 256);
  size_t len = 0;
  static const char *clocks[] = {"monotonic", "boottime"};
  for (int i = 0; i < 2; i++) {
    json_object *c;
    char where[64];
    snprintf(where, sizeof where, "linux.timeOffsets.%s", clocks[i]);
    if (j_object(t, clocks[i], "linux.timeOffsets", false, &c, err) < 0) goto fail;
    if (c == NULL) continue;
    int64_t secs = 0, ns = 0;
    if (j_int64(c, "secs", where, false, &secs, err) < 0 || j_int64(c, "nanosecs", where, false, &ns, err) < 0)
      goto fail;
    if (ns < 0 || ns >= 1000000000) {
      sk_fail(err, 0, "%s.nanosecs must be in [0, 1e9)", where);
      goto fail;
    }
    len += (size_t)snprintf(buf + len, 256 - len, "%s %lld %lld\n", clocks[i], (long long)secs, (long long)ns);
  }
  *out = buf;
  return 0;
fail:
  free(buf);
  return -1;
}

int spec_load(const char *bundle, const char *id, sk_spec *s, sk_error *err) {
  memset(s, 0, sizeof *s);
  for (int i = 0; i < SK_NS_COUNT; i++) s->ns[i].fd = -1;
  char path[PATH_MAX];
  s->bundle = realpath(bundle, NULL);
  if (s->bundle == NULL) return sk_fail(err, errno, "bundle %s", bundle);
  snprintf(path, sizeof path, "%s/config.json", s->bundle);
  s->config = j_parse_file(path, err);
  if (s->config == NULL) goto fail;
  if (!json_object_is_type(s->config, json_type_object)) {
    sk_fail(err, 0, "%s must hold a JSON object", path);
    goto fail;
  }
  const char *version = NULL;
  if (j_string(s->config, "ociVersion", "", true, &version, err) < 0) goto fail;
  if (strncmp(version, "1.", 2) != 0) {
    sk_fail(err, 0, "ociVersion \"%s\" is not supported (this runtime implements 1.x)", version);
    goto fail;
  }
  json_object *process, *linux_obj;
  if (j_object(s->config, "process", "", true, &process, err) < 0) goto fail;
  if (j_object(s->config, "linux", "", false, &linux_obj, err) < 0) goto fail;
  if (proc_parse(process, linux_obj, "process", &s->proc, err) < 0) goto fail;
  if (j_string(s->config, "hostname", "", false, &s->hostname, err) < 0 ||
      j_string(s->config, "domainname", "", false, &s->domainname, err) < 0)
    goto fail;
  if (j_object(s->config, "annotations", "", false, &s->annotations, err) < 0) goto fail;
  if (j_object(s->config, "hooks", "", false, &s->hooks, err) < 0 || hooks_validate(s->hooks, err) < 0) goto fail;
  if (parse_namespaces(s, linux_obj, err) < 0) goto fail;
  if ((s->hostname || s->domainname) && !(spec_ns(s, CLONE_NEWUTS))) {
    sk_fail(err, 0, "hostname and domainname need a uts namespace in linux.namespaces");
    goto fail;
  }
  if (!spec_ns(s, CLONE_NEWNS)) {
    sk_fail(err, 0, "linux.namespaces must include a mount namespace (the rootfs is set up in it)");
    goto fail;
  }
  if (spec_ns(s, CLONE_NEWNS)->path) {
    sk_fail(err, 0, "joining an existing mount namespace is not supported: the rootfs needs a new one");
    goto fail;
  }
  if (parse_idmap(linux_obj, "uidMappings", &s->uid_map, err) < 0 ||
      parse_idmap(linux_obj, "gidMappings", &s->gid_map, err) < 0)
    goto fail;
  if ((s->uid_map || s->gid_map) && !(s->new_flags & CLONE_NEWUSER)) {
    sk_fail(err, 0, "linux.uidMappings/gidMappings need a new user namespace in linux.namespaces");
    goto fail;
  }
  if ((s->new_flags & CLONE_NEWUSER) && (!s->uid_map || !s->gid_map)) {
    sk_fail(err, 0, "a new user namespace needs linux.uidMappings and linux.gidMappings");
    goto fail;
  }
  if (parse_time_offsets(linux_obj, &s->time_offsets, err) < 0) goto fail;
  if (s->time_offsets && !(s->new_flags & CLONE_NEWTIME)) {
    sk_fail(err, 0, "linux.timeOffsets need a new time namespace in linux.namespaces");
    goto fail;
  }
  if (rootfs_parse(s->config, s->bundle, &s->rootfs, err) < 0) goto fail;
  if (cgroup_parse(linux_obj, id, &s->cgroup, err) < 0) goto fail;
  return 0;
fail:
  spec_free(s);
  return -1;
}

void spec_free(sk_spec *s) {
  proc_free(&s->proc);
  for (int i = 0; i < s->nns; i++)
    if (s->ns[i].fd >= 0) close(s->ns[i].fd);
  free(s->uid_map);
  free(s->gid_map);
  free(s->time_offsets);
  if (s->rootfs) rootfs_free(s->rootfs);
  if (s->cgroup) cgroup_free(s->cgroup);
  if (s->config) json_object_put(s->config);
  free(s->bundle);
  memset(s, 0, sizeof *s);
}
