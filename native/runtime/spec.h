/* config.json turned into what the core needs, validated as a whole before anything is created: a config
 * error never leaves a state dir, cgroup, mount or process behind. Module-specific parts are parsed by their
 * modules (rootfs_parse, cgroup_parse, security_parse); the core keeps the process, namespaces, hooks,
 * hostname, id mappings and time offsets. */
#ifndef SKIFF_SPEC_H
#define SKIFF_SPEC_H

#include <json-c/json.h>
#include <stdbool.h>

#include "cgroup.h"
#include "error.h"
#include "rootfs.h"
#include "security.h"

/* The process to run: shared by create (config.process) and exec (--process or the container's process). */
typedef struct sk_proc {
  const char **args; /* NULL-terminated */
  const char **env;  /* NULL-terminated */
  const char *cwd;
  bool terminal;
  unsigned rows, cols;
  sk_security *sec;
} sk_proc;

enum { SK_NS_COUNT = 8 };
typedef struct sk_ns {
  int type;         /* CLONE_NEW* */
  const char *name; /* "pid", "network", ... */
  const char *path; /* join this one, or NULL to make a new one */
  int fd;           /* opened path, -1 when new */
} sk_ns;

typedef struct sk_spec {
  json_object *config; /* owned */
  char *bundle;        /* absolute */
  sk_proc proc;
  sk_ns ns[SK_NS_COUNT];
  int nns;
  int new_flags; /* CLONE_NEW* of the namespaces to create */
  const char *hostname, *domainname;
  char *uid_map, *gid_map; /* "inside outside size\n" lines for /proc/pid/[ug]id_map, or NULL */
  char *time_offsets;      /* "monotonic s ns\nboottime s ns\n", or NULL */
  json_object *hooks;      /* validated, may be NULL */
  json_object *annotations;
  sk_rootfs *rootfs;
  sk_cgroup *cgroup;
} sk_spec;

int proc_parse(json_object *process, json_object *linux_obj, const char *where, sk_proc *out, sk_error *err);
void proc_free(sk_proc *p);

/* Read <bundle>/config.json and parse everything; opens the namespace paths to join. */
int spec_load(const char *bundle, const char *id, sk_spec *out, sk_error *err);
void spec_free(sk_spec *s);
const sk_ns *spec_ns(const sk_spec *s, int type);

/* Hooks: kinds "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop". */
int hooks_validate(json_object *hooks, sk_error *err);
/* Run every hook of kind with state_json on its stdin; fails on the first that fails or times out. */
int hooks_run(json_object *hooks, const char *kind, const char *state_json, sk_error *err);

#endif
