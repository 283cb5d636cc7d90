/* The container's filesystem view: root (path, readonly), mounts (bind/rbind with propagation and flags,
 * tmpfs, proc, sysfs, devpts, mqueue, cgroup, cgroup2, overlay, …), linux.devices and the default devices and
 * /dev symlinks, maskedPaths, readonlyPaths, rootfsPropagation, linux.sysctl, pivot_root (or MS_MOVE + chroot).
 *
 * Every mount target is resolved inside the rootfs (openat2 RESOLVE_IN_ROOT) and mounted through its fd, so no
 * symlink in the image can send a mount outside the rootfs.
 *
 * rootfs_parse runs in the runtime before anything is created. In the container's init, in a new mount
 * namespace: rootfs_setup → (createRuntime/createContainer hooks) → rootfs_pivot → console_setup (console.h)
 * → rootfs_finalize. */
#ifndef SKIFF_ROOTFS_H
#define SKIFF_ROOTFS_H

#include <json-c/json.h>
#include <stdbool.h>

#include "cgroup.h"
#include "error.h"

typedef struct sk_rootfs sk_rootfs;

/* What the init knows about its namespaces that changes how mounts are done. */
typedef struct sk_rootfs_ctx {
  bool new_userns;         /* devices are bind-mounted from the host instead of mknod'ed */
  bool new_netns;          /* sysfs can only be mounted fresh with a netns of our own (else bind /sys, ro) */
  bool new_cgroupns;       /* "cgroup" mounts are fresh mounts of the container's cgroup, else binds */
  const sk_cgroup *cgroup; /* the container's cgroup, for "cgroup" mounts (may be NULL) */
} sk_rootfs_ctx;

/* config: the whole config.json object; bundle: absolute bundle dir (root.path is relative to it). */
int rootfs_parse(json_object *config, const char *bundle, sk_rootfs **out, sk_error *err);
/* The absolute rootfs path. */
const char *rootfs_path(const sk_rootfs *rfs);
/* In the container's new mount namespace, before pivot_root: make / rslave (or per rootfsPropagation),
 * bind the rootfs on itself, do every mount in order, create the default and configured devices and the /dev
 * symlinks. */
int rootfs_setup(const sk_rootfs *rfs, const sk_rootfs_ctx *ctx, sk_error *err);
/* pivot_root into the rootfs and detach the old root; no_pivot: MS_MOVE the rootfs onto / and chroot. */
int rootfs_pivot(const sk_rootfs *rfs, bool no_pivot, sk_error *err);
/* After pivot_root (and the console): linux.sysctl, maskedPaths, readonlyPaths, read-only root,
 * rootfsPropagation of the new /. */
int rootfs_finalize(const sk_rootfs *rfs, sk_error *err);
void rootfs_free(sk_rootfs *rfs);

/* Mount options and types understood, for `features`; NULL-terminated. */
const char *const *rootfs_mount_options(void);

#endif
