/* Control groups for one container, v1 (each controller its own hierarchy, as on hosts with cgroup v1 or
 * "hybrid" mounts) and v2 (the unified hierarchy, as in the VM). The mode is detected from the filesystem
 * type of /sys/fs/cgroup. Everything the OCI spec's linux.resources can ask for, plus freezer, stats and
 * device access (v1 devices.allow/deny lists, v2 an eBPF BPF_PROG_TYPE_CGROUP_DEVICE program).
 *
 * Life cycle: cgroup_parse (in the runtime, before anything exists: every error is a config error) →
 * cgroup_create (directories, resources) → cgroup_add_pid → … → cgroup_destroy. The description is saved
 * in the container's state with cgroup_to_json and read back with cgroup_from_json by later commands. */
#ifndef SKIFF_CGROUP_H
#define SKIFF_CGROUP_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

typedef struct sk_cgroup sk_cgroup;

/* linux.cgroupsPath and linux.resources of the config (linux_obj may be NULL). An absolute cgroupsPath is
 * taken from the root of each hierarchy; a relative one from the runtime's own cgroup; none gives
 * "/skiff-runtime/<id>". Validates every resource value; creates nothing. */
int cgroup_parse(json_object *linux_obj, const char *id, sk_cgroup **out, sk_error *err);
/* Make the directories (parents included; v1 cpuset parents initialised from their parent) and apply the
 * resources. On failure everything this call made is removed again. */
int cgroup_create(sk_cgroup *cg, sk_error *err);
/* Move pid into the container's cgroup (every v1 hierarchy, or the v2 directory). */
int cgroup_add_pid(const sk_cgroup *cg, pid_t pid, sk_error *err);
/* Apply a linux.resources object to a live cgroup (the `update` command) and remember it. */
int cgroup_update(sk_cgroup *cg, json_object *resources, sk_error *err);
/* Freeze or thaw every process (v1 freezer.state, v2 cgroup.freeze), waiting until the kernel says done. */
int cgroup_freeze(const sk_cgroup *cg, bool frozen, sk_error *err);
/* Whether the cgroup is frozen now; false when there is no freezer. */
int cgroup_is_frozen(const sk_cgroup *cg, bool *out, sk_error *err);
/* Every pid in the cgroup (cgroup.procs), malloc'd. */
int cgroup_pids(const sk_cgroup *cg, pid_t **pids, size_t *n, sk_error *err);
/* Kill every process in the cgroup with sig (used by kill --all and delete --force). */
int cgroup_kill_all(const sk_cgroup *cg, int sig, sk_error *err);
/* Stats for callers, in the shape of runc's `events --stats` "data" object: cpu (usage total/per-cpu/
 * kernel/user, throttling), memory (usage, max, limit, cache, swap, raw stats), pids (current, limit),
 * blkio (io_service_bytes_recursive, io_serviced_recursive), hugetlb. */
int cgroup_stats(const sk_cgroup *cg, json_object **out, sk_error *err);
/* Remove the directories (waiting briefly for exiting tasks to leave); a missing cgroup is not an error. */
int cgroup_destroy(sk_cgroup *cg, sk_error *err);

/* For "cgroup" mounts inside the container: the hierarchies the container sees. v2: one entry with
 * name "" and host_dir the container's directory. v1: one per mounted hierarchy, name the controller list
 * as in /proc/self/cgroup ("cpu,cpuacct", "memory", "name=systemd"), host_dir the container's directory in it,
 * mount_options the option string for mount(2) ("cpu,cpuacct"). */
typedef struct sk_cgroup_hierarchy {
  const char *name;
  const char *mount_options;
  const char *host_dir;
} sk_cgroup_hierarchy;
bool cgroup_is_v2(const sk_cgroup *cg);
size_t cgroup_hierarchies(const sk_cgroup *cg, const sk_cgroup_hierarchy **out);

json_object *cgroup_to_json(const sk_cgroup *cg);
int cgroup_from_json(json_object *saved, sk_cgroup **out, sk_error *err);
void cgroup_free(sk_cgroup *cg);

#endif
