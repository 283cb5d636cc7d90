#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonutil.h"
#include "util.h"

const char *status_name(sk_status s) {
  static const char *names[] = {"creating", "created", "running", "paused", "stopped"};
  return names[s];
}

int validate_id(const char *id, sk_error *err) {
  size_t n = strlen(id);
  if (n == 0 || n > 255) return sk_fail(err, 0, "container id must be 1 to 255 characters");
  for (size_t i = 0; i < n; i++) {
    char c = id[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (i > 0 && (c == '_' || c == '.' || c == '+' || c == '-'));
    if (!ok) return sk_fail(err, 0, "invalid container id \"%s\": use letters, digits and _.+- (not first)", id);
  }
  return 0;
}

int container_dir(const char *root, const char *id, char *out, size_t len, sk_error *err) {
  if (validate_id(id, err) < 0) return -1;
  if ((size_t)snprintf(out, len, "%s/%s", root, id) >= len) return sk_fail(err, ENAMETOOLONG, "%s/%s", root, id);
  return 0;
}

int container_load(const char *root, const char *id, sk_container *c, sk_error *err) {
  memset(c, 0, sizeof *c);
  if (container_dir(root, id, c->dir, sizeof c->dir, err) < 0) return -1;
  snprintf(c->id, sizeof c->id, "%s", id);
  char path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/state.json", c->dir);
  c->saved = j_parse_file(path, err);
  if (c->saved == NULL) {
    struct stat st;
    if (errno == ENOENT || err->errnum == ENOENT) {
      if (stat(c->dir, &st) == 0) return 0; /* creating */
      return sk_fail(err, 0, "container %s does not exist", id);
    }
    return sk_wrap(err, "container %s: reading its state", id);
  }
  int64_t pid = 0;
  uint64_t start = 0;
  json_object *cg = NULL;
  if (j_int64(c->saved, "pid", "state", true, &pid, err) < 0 ||
      j_uint64(c->saved, "start_time", "state", true, &start, err) < 0 ||
      j_string(c->saved, "bundle", "state", false, &c->bundle, err) < 0 ||
      j_string(c->saved, "rootfs", "state", false, &c->rootfs, err) < 0 ||
      j_string(c->saved, "created", "state", false, &c->created, err) < 0 ||
      j_string(c->saved, "owner", "state", false, &c->owner, err) < 0 ||
      j_object(c->saved, "annotations", "state", false, &c->annotations, err) < 0 ||
      j_object(c->saved, "cgroup", "state", false, &cg, err) < 0) {
    container_free(c);
    return sk_wrap(err, "container %s: corrupt state", id);
  }
  c->pid = (pid_t)pid;
  c->start_time = start;
  if (cg && cgroup_from_json(cg, &c->cgroup, err) < 0) {
    container_free(c);
    return sk_wrap(err, "container %s: corrupt cgroup state", id);
  }
  return 0;
}

void container_free(sk_container *c) {
  if (c->cgroup) cgroup_free(c->cgroup);
  if (c->saved) json_object_put(c->saved);
  c->cgroup = NULL;
  c->saved = NULL;
}

bool container_alive(const sk_container *c) {
  if (c->pid <= 0) return false;
  uint64_t start;
  char st;
  if (proc_stat(c->pid, &start, &st) < 0) return false;
  return start == c->start_time && st != 'Z' && st != 'X';
}

sk_status container_status(const sk_container *c) {
  if (c->saved == NULL) return ST_CREATING;
  if (!container_alive(c)) return ST_STOPPED;
  char fifo[PATH_MAX + 16];
  snprintf(fifo, sizeof fifo, "%s/exec.fifo", c->dir);
  if (access(fifo, F_OK) == 0) return ST_CREATED;
  bool frozen = false;
  sk_error err;
  if (c->cgroup && cgroup_is_frozen(c->cgroup, &frozen, &err) == 0 && frozen) return ST_PAUSED;
  return ST_RUNNING;
}

json_object *container_state_json(const sk_container *c, sk_status st) {
  json_object *o = json_object_new_object();
  json_object_object_add(o, "ociVersion", json_object_new_string("1.2.0"));
  json_object_object_add(o, "id", json_object_new_string(c->id));
  json_object_object_add(o, "status", json_object_new_string(status_name(st)));
  json_object_object_add(o, "pid", json_object_new_int(st == ST_STOPPED ? 0 : c->pid));
  json_object_object_add(o, "bundle", json_object_new_string(c->bundle ? c->bundle : ""));
  json_object_object_add(o, "rootfs", json_object_new_string(c->rootfs ? c->rootfs : ""));
  json_object_object_add(o, "created", json_object_new_string(c->created ? c->created : ""));
  json_object_object_add(o, "owner", json_object_new_string(c->owner ? c->owner : ""));
  if (c->annotations) json_object_object_add(o, "annotations", json_object_get(c->annotations));
  return o;
}

int container_save(const char *dir, json_object *saved, sk_error *err) {
  char path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/state.json", dir);
  const char *text = json_object_to_json_string_ext(saved, JSON_C_TO_STRING_PLAIN);
  /* Atomic by rename. No fsync: runtime state lives on tmpfs (/run) and means nothing after a reboot. */
  char tmp[PATH_MAX + 32];
  snprintf(tmp, sizeof tmp, "%s/.state.json.tmp", dir);
  if (write_file(tmp, text, strlen(text), true, 0600, err) < 0) return -1;
  if (rename(tmp, path) < 0) {
    int e = errno;
    unlink(tmp);
    return sk_fail(err, e, "renaming %s to %s", tmp, path);
  }
  return 0;
}
