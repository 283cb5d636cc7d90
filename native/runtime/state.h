/* A container's state on disk, under <root>/<id>/:
 *   state.json   pid, its start time (pid reuse is detected), bundle, rootfs, created, owner, annotations,
 *                the cgroup description, which namespaces it made
 *   config.json  the config it was created from (exec and poststop hooks read it after the bundle may be gone)
 *   exec.fifo    present between create and start; the init blocks on it
 * The status is never stored: it is derived from the process and the fifo each time. */
#ifndef SKIFF_STATE_H
#define SKIFF_STATE_H

#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "error.h"

typedef enum { ST_CREATING, ST_CREATED, ST_RUNNING, ST_PAUSED, ST_STOPPED } sk_status;
const char *status_name(sk_status s);

typedef struct sk_container {
  char id[256];
  char dir[PATH_MAX];
  json_object *saved; /* state.json, owned */
  pid_t pid;
  uint64_t start_time;
  const char *bundle, *rootfs, *created, *owner;
  json_object *annotations;
  sk_cgroup *cgroup; /* owned; may be NULL */
} sk_container;

/* Ids are [A-Za-z0-9][A-Za-z0-9_.+-]*, at most 255 bytes: they become directory names. */
int validate_id(const char *id, sk_error *err);
/* <root>/<id> into out. */
int container_dir(const char *root, const char *id, char *out, size_t len, sk_error *err);
/* Load <root>/<id>/state.json. A container in "creating" (dir without state) loads with pid 0. */
int container_load(const char *root, const char *id, sk_container *c, sk_error *err);
void container_free(sk_container *c);
/* Whether the init process still runs (same pid, same start time, not a zombie). */
bool container_alive(const sk_container *c);
sk_status container_status(const sk_container *c);
/* The OCI state JSON (ociVersion, id, status, pid, bundle, annotations) plus runc's extras (rootfs, created,
 * owner); caller frees. */
json_object *container_state_json(const sk_container *c, sk_status st);
/* Write state.json atomically from the given fields. */
int container_save(const char *dir, json_object *saved, sk_error *err);

#endif
