#include "mountopts.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif

/* Sorted by name for bsearch. */
#define MOPTS(X) \
  X("async", MOPT_CLEAR, MS_SYNCHRONOUS, 0, false) \
  X("atime", MOPT_CLEAR, MS_NOATIME, 0, false) \
  X("bind", MOPT_SET, MS_BIND, 0, false) \
  X("defaults", MOPT_SET, 0, 0, false) \
  X("dev", MOPT_CLEAR, MS_NODEV, 0, false) \
  X("diratime", MOPT_CLEAR, MS_NODIRATIME, 0, false) \
  X("dirsync", MOPT_SET, MS_DIRSYNC, 0, false) \
  X("exec", MOPT_CLEAR, MS_NOEXEC, 0, false) \
  X("idmap", MOPT_UNSUP, 0, 0, false) \
  X("iversion", MOPT_SET, MS_I_VERSION, 0, false) \
  X("lazytime", MOPT_SET, MS_LAZYTIME, 0, false) \
  X("loud", MOPT_CLEAR, MS_SILENT, 0, false) \
  X("mand", MOPT_SET, MS_MANDLOCK, 0, false) \
  X("noatime", MOPT_SET, MS_NOATIME, 0, false) \
  X("nodev", MOPT_SET, MS_NODEV, 0, false) \
  X("nodiratime", MOPT_SET, MS_NODIRATIME, 0, false) \
  X("noexec", MOPT_SET, MS_NOEXEC, 0, false) \
  X("noiversion", MOPT_CLEAR, MS_I_VERSION, 0, false) \
  X("nolazytime", MOPT_CLEAR, MS_LAZYTIME, 0, false) \
  X("nomand", MOPT_CLEAR, MS_MANDLOCK, 0, false) \
  X("norelatime", MOPT_CLEAR, MS_RELATIME, 0, false) \
  X("nostrictatime", MOPT_CLEAR, MS_STRICTATIME, 0, false) \
  X("nosuid", MOPT_SET, MS_NOSUID, 0, false) \
  X("nosymfollow", MOPT_SET, MS_NOSYMFOLLOW, 0, false) \
  X("private", MOPT_PROP, MS_PRIVATE, 0, false) \
  X("ratime", MOPT_RATTR, MOPT_ATIME, MOUNT_ATTR_RELATIME, false) \
  X("rbind", MOPT_SET, MS_BIND | MS_REC, 0, false) \
  X("rdev", MOPT_RATTR, 0, MOUNT_ATTR_NODEV, true) \
  X("rdiratime", MOPT_RATTR, 0, MOUNT_ATTR_NODIRATIME, true) \
  X("relatime", MOPT_SET, MS_RELATIME, 0, false) \
  X("remount", MOPT_SET, MS_REMOUNT, 0, false) \
  X("rexec", MOPT_RATTR, 0, MOUNT_ATTR_NOEXEC, true) \
  X("ridmap", MOPT_UNSUP, 0, 0, false) \
  X("rnoatime", MOPT_RATTR, MOPT_ATIME, MOUNT_ATTR_NOATIME, false) \
  X("rnodev", MOPT_RATTR, 0, MOUNT_ATTR_NODEV, false) \
  X("rnodiratime", MOPT_RATTR, 0, MOUNT_ATTR_NODIRATIME, false) \
  X("rnoexec", MOPT_RATTR, 0, MOUNT_ATTR_NOEXEC, false) \
  X("rnorelatime", MOPT_RATTR, MOPT_ATIME, MOUNT_ATTR_STRICTATIME, false) \
  X("rnostrictatime", MOPT_RATTR, MOPT_ATIME, MOUNT_ATTR_RELATIME, false) \
  X("rnosuid", MOPT_RATTR, 0, MOUNT_ATTR_NOSUID, false) \
  X("rnosymfollow", MOPT_RATTR, 0, MOUNT_ATTR_NOSYMFOLLOW, false) \
  X("ro", MOPT_SET, MS_RDONLY, 0, false) \
  X("rprivate", MOPT_PROP, MS_PRIVATE | MS_REC, 0, false) \
  X("rrelatime", MOPT_RATTR, MOPT_ATIME, MOUNT_ATTR_RELATIME, false) \
  X("rro", MOPT_RATTR, 0, MOUNT_ATTR_RDONLY, false) \
  X("rrw", MOPT_RATTR, 0, MOUNT_ATTR_RDONLY, true) \
  X("rshared", MOPT_PROP, MS_SHARED | MS_REC, 0, false) \
  X("rslave", MOPT_PROP, MS_SLAVE | MS_REC, 0, false) \
  X("rstrictatime", MOPT_RATTR, MOPT_ATIME, MOUNT_ATTR_STRICTATIME, false) \
  X("rsuid", MOPT_RATTR, 0, MOUNT_ATTR_NOSUID, true) \
  X("rsymfollow", MOPT_RATTR, 0, MOUNT_ATTR_NOSYMFOLLOW, true) \
  X("runbindable", MOPT_PROP, MS_UNBINDABLE | MS_REC, 0, false) \
  X("rw", MOPT_CLEAR, MS_RDONLY, 0, false) \
  X("shared", MOPT_PROP, MS_SHARED, 0, false) \
  X("silent", MOPT_SET, MS_SILENT, 0, false) \
  X("slave", MOPT_PROP, MS_SLAVE, 0, false) \
  X("strictatime", MOPT_SET, MS_STRICTATIME, 0, false) \
  X("suid", MOPT_CLEAR, MS_NOSUID, 0, false) \
  X("symfollow", MOPT_CLEAR, MS_NOSYMFOLLOW, 0, false) \
  X("sync", MOPT_SET, MS_SYNCHRONOUS, 0, false) \
  X("tmpcopyup", MOPT_EXT, 0, 0, false) \
  X("unbindable", MOPT_PROP, MS_UNBINDABLE, 0, false)

#define ROW(n, k, f, a, c) {n, k, f, a, c},
#define NAME(n, k, f, a, c) n,
static const mopt opts[] = {MOPTS(ROW)};
static const char *const names[] = {MOPTS(NAME) NULL};
#define NOPTS (sizeof opts / sizeof opts[0])

static int cmp(const void *key, const void *elem) { return strcmp(key, ((const mopt *)elem)->name); }

const mopt *mopt_find(const char *name) { return bsearch(name, opts, NOPTS, sizeof opts[0], cmp); }

const char *const *mopt_names(void) { return names; }
