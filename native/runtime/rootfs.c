#include "rootfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "jsonutil.h"
#include "mountopts.h"
#include "util.h"

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif

enum mkind { MK_BIND, MK_TMPFS, MK_PROC, MK_SYSFS, MK_DEVPTS, MK_MQUEUE, MK_CGROUP, MK_CGROUP2, MK_OTHER };

typedef struct rmount {
  char *dest;   /* cleaned absolute path */
  char *source; /* bind sources made absolute (relative ones are taken from the bundle) */
  const char *type;
  enum mkind kind;
  unsigned long flags;     /* MS_* for mount(2) */
  unsigned long cleared;   /* MS_* flags the options turned off (rw, suid, …): binds clear them */
  struct mount_attr rattr; /* recursive attributes (rro, rnosuid, …) */
  unsigned long prop[4];   /* propagation options, applied in order after the mount */
  int nprop;
  char *data; /* the options mount(2) does not know, comma-joined */
  bool copyup;
} rmount;

typedef struct rdevice {
  char *path;  /* cleaned, under /dev */
  mode_t mode; /* S_IFCHR/S_IFBLK/S_IFIFO | permissions */
  dev_t dev;
  uid_t uid;
  gid_t gid;
  bool chown;
} rdevice;

typedef struct rsysctl {
  char path[PATH_MAX];
  const char *value;
} rsysctl;

struct sk_rootfs {
  char *path;
  bool readonly;
  unsigned long root_prop; /* 0: not asked (the default MS_SLAVE|MS_REC before pivot, nothing after) */
  rmount *m;
  size_t nm;
  rdevice *dev;
  size_t ndev;
  bool dev_tmpfs; /* a tmpfs is mounted on /dev: default devices and symlinks are ours to make */
  const char **masked, **ropaths;
  rsysctl *sysctl;
  size_t nsysctl;
};

/* ---- small helpers ---------------------------------------------------------------------------------------- */

#define IN_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

static int openat2_(int dirfd, const char *path, int flags, uint64_t resolve) {
  struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC), .resolve = resolve};
  int fd;
  do fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  while (fd < 0 && errno == EAGAIN); /* a rename raced the lookup: retry */
  return fd;
}

static void close_(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}
#define AUTOCLOSE __attribute__((cleanup(close_)))

static const char *procfd(char buf[32], int fd) {
  snprintf(buf, 32, "/proc/self/fd/%d", fd);
  return buf;
}

static int setattr(int fd, unsigned flags, uint64_t set, uint64_t clr, uint64_t prop) {
  struct mount_attr a = {.attr_set = set, .attr_clr = clr, .propagation = prop};
  return mount_setattr(fd, "", AT_EMPTY_PATH | flags, &a, sizeof a);
}

/* Lexically clean an absolute path: no "//", ".", "..", trailing "/". Returns malloc'd or NULL (not absolute). */
static char *clean_path(const char *p) {
  if (p[0] != '/') return NULL;
  size_t n = strlen(p);
  char *out = malloc(n + 2), *o = out;
  if (out == NULL) return NULL;
  for (const char *s = p; *s;) {
    while (*s == '/') s++;
    const char *e = strchrnul(s, '/');
    size_t len = (size_t)(e - s);
    if (len == 0 || (len == 1 && s[0] == '.')) {
    } else if (len == 2 && s[0] == '.' && s[1] == '.') {
      while (o > out && *--o != '/') {
      }
    } else {
      *o++ = '/';
      memcpy(o, s, len);
      o += len;
    }
    s = e;
  }
  if (o == out) *o++ = '/';
  *o = 0;
  return out;
}

/* ---- parse ------------------------------------------------------------------------------------------------ */

static enum mkind kind_of(const char *type) {
  static const struct {
    const char *n;
    enum mkind k;
  } t[] = {{"bind", MK_BIND},     {"rbind", MK_BIND},    {"tmpfs", MK_TMPFS},
           {"proc", MK_PROC},     {"sysfs", MK_SYSFS},   {"devpts", MK_DEVPTS},
           {"mqueue", MK_MQUEUE}, {"cgroup", MK_CGROUP}, {"cgroup2", MK_CGROUP2}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (strcmp(type, t[i].n) == 0) return t[i].k;
  return MK_OTHER;
}

static int append_data(char **data, const char *opt, sk_error *err) {
  size_t old = *data ? strlen(*data) : 0, add = strlen(opt);
  char *d = realloc(*data, old + add + 2);
  if (d == NULL) return sk_fail(err, ENOMEM, "mount options");
  if (old) d[old++] = ',';
  memcpy(d + old, opt, add + 1);
  *data = d;
  return 0;
}

static int parse_mount(json_object *jm, size_t i, const char *bundle, rmount *m, sk_error *err) {
  char where[48];
  snprintf(where, sizeof where, "mounts[%zu]", i);
  if (!json_object_is_type(jm, json_type_object)) return sk_fail(err, 0, "%s must be an object", where);
  const char *dest = NULL, *src = NULL, *type = NULL, **opts = NULL;
  if (j_string(jm, "destination", where, true, &dest, err) < 0 || j_string(jm, "source", where, false, &src, err) < 0 ||
      j_string(jm, "type", where, false, &type, err) < 0 || j_strv(jm, "options", where, false, &opts, err) < 0)
    return -1;
  if (j_get(jm, "uidMappings") || j_get(jm, "gidMappings"))
    return sk_fail(err, 0, "%s: idmapped mounts (uidMappings/gidMappings) are not supported", where);
  if (dest[0] != '/') return sk_fail(err, 0, "%s.destination %s must be an absolute path", where, dest);
  if ((m->dest = clean_path(dest)) == NULL) return sk_fail(err, ENOMEM, "%s.destination", where);
  int rc = 0;
  for (size_t k = 0; opts && opts[k] && rc == 0; k++) {
    const mopt *o = mopt_find(opts[k]);
    if (o == NULL) {
      rc = append_data(&m->data, opts[k], err);
      continue;
    }
    switch (o->kind) {
      case MOPT_SET:
        m->flags |= o->flag;
        m->cleared &= ~o->flag;
        break;
      case MOPT_CLEAR:
        m->flags &= ~o->flag;
        m->cleared |= o->flag;
        break;
      case MOPT_PROP:
        if (m->nprop == 4)
          rc = sk_fail(err, 0, "%s.options: too many propagation options", where);
        else
          m->prop[m->nprop++] = o->flag;
        break;
      case MOPT_RATTR:
        if (o->flag == MOPT_ATIME) {
          m->rattr.attr_set = (m->rattr.attr_set & ~(uint64_t)MOUNT_ATTR__ATIME) | o->attr;
          m->rattr.attr_clr |= MOUNT_ATTR__ATIME;
        } else if (o->clear) {
          m->rattr.attr_clr |= o->attr;
          m->rattr.attr_set &= ~o->attr;
        } else {
          m->rattr.attr_set |= o->attr;
          m->rattr.attr_clr &= ~o->attr;
        }
        break;
      case MOPT_EXT:
        m->copyup = true;
        break;
      case MOPT_UNSUP:
        rc = sk_fail(err, 0, "%s.options: %s (idmapped mounts) is not supported", where, opts[k]);
        break;
    }
  }
  free(opts);
  if (rc < 0) return -1;
  if (type != NULL && strcmp(type, "bind") == 0 && !(m->flags & MS_BIND)) m->flags |= MS_BIND;
  if (m->flags & MS_BIND) {
    m->kind = MK_BIND;
    if (src == NULL || !*src) return sk_fail(err, 0, "%s.source is required for a bind mount", where);
  } else {
    if (type == NULL || !*type) return sk_fail(err, 0, "%s.type is required unless options have bind or rbind", where);
    m->kind = kind_of(type);
    if (m->copyup && m->kind != MK_TMPFS) return sk_fail(err, 0, "%s.options: tmpcopyup needs a tmpfs", where);
  }
  m->type = type;
  if (src != NULL) {
    if (m->kind == MK_BIND && src[0] != '/') {
      if (asprintf(&m->source, "%s/%s", bundle, src) < 0) return sk_fail(err, ENOMEM, "%s.source", where);
    } else if ((m->source = strdup(src)) == NULL)
      return sk_fail(err, ENOMEM, "%s.source", where);
  }
  return 0;
}

static const struct {
  const char *name;
  mode_t type;
} devtypes[] = {{"c", S_IFCHR}, {"u", S_IFCHR}, {"b", S_IFBLK}, {"p", S_IFIFO}};

static int parse_device(json_object *jd, size_t i, rdevice *d, sk_error *err) {
  char where[48];
  snprintf(where, sizeof where, "linux.devices[%zu]", i);
  if (!json_object_is_type(jd, json_type_object)) return sk_fail(err, 0, "%s must be an object", where);
  const char *type = NULL, *path = NULL;
  int64_t major = -1, minor = -1;
  uint64_t mode = 0666, uid = 0, gid = 0;
  if (j_string(jd, "type", where, true, &type, err) < 0 || j_string(jd, "path", where, true, &path, err) < 0 ||
      j_int64(jd, "major", where, false, &major, err) < 0 || j_int64(jd, "minor", where, false, &minor, err) < 0 ||
      j_uint64(jd, "fileMode", where, false, &mode, err) < 0 || j_uint64(jd, "uid", where, false, &uid, err) < 0 ||
      j_uint64(jd, "gid", where, false, &gid, err) < 0)
    return -1;
  size_t t = 0;
  while (t < 4 && strcmp(type, devtypes[t].name) != 0) t++;
  if (t == 4) return sk_fail(err, 0, "%s.type %s must be one of c, b, u, p", where, type);
  if (devtypes[t].type != S_IFIFO && (major < 0 || minor < 0))
    return sk_fail(err, 0, "%s: major and minor are required for a %s device", where, type);
  if (major > UINT32_MAX || minor > UINT32_MAX) return sk_fail(err, 0, "%s: major/minor out of range", where);
  if (mode > 07777)
    return sk_fail(err, 0, "%s.fileMode %#llo is not a permission mode", where, (unsigned long long)mode);
  if (uid > UINT32_MAX - 1 || gid > UINT32_MAX - 1) return sk_fail(err, 0, "%s: uid/gid out of range", where);
  if (path[0] != '/' || (d->path = clean_path(path)) == NULL || strncmp(d->path, "/dev/", 5) != 0)
    return sk_fail(err, 0, "%s.path %s must be an absolute path under /dev", where, path);
  d->mode = devtypes[t].type | (mode_t)mode;
  d->dev = devtypes[t].type == S_IFIFO ? 0 : makedev((unsigned)major, (unsigned)minor);
  d->uid = (uid_t)uid;
  d->gid = (gid_t)gid;
  d->chown = uid != 0 || gid != 0;
  return 0;
}

static bool has_ns(json_object *linux_obj, const char *type) {
  json_object *ns = j_get(linux_obj, "namespaces");
  size_t n = ns && json_object_is_type(ns, json_type_array) ? json_object_array_length(ns) : 0;
  for (size_t i = 0; i < n; i++) {
    const char *t = json_object_get_string(j_get(json_object_array_get_idx(ns, i), "type"));
    if (t && strcmp(t, type) == 0) return true;
  }
  return false;
}

/* runc's rule: only sysctls that belong to a namespace the container has of its own. */
static int check_sysctl(json_object *linux_obj, const char *name, sk_error *err) {
  if (!*name || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != strlen(name) ||
      strstr(name, "..") || name[0] == '.' || name[strlen(name) - 1] == '.')
    return sk_fail(err, 0, "linux.sysctl: %s is not a valid sysctl name", name);
  bool ipc = strncmp(name, "kernel.msg", 10) == 0 || strncmp(name, "kernel.shm", 10) == 0 ||
             strcmp(name, "kernel.sem") == 0 || strncmp(name, "fs.mqueue.", 10) == 0;
  if (ipc) {
    if (!has_ns(linux_obj, "ipc"))
      return sk_fail(err, 0, "linux.sysctl: %s is not allowed in the host's ipc namespace", name);
    return 0;
  }
  if (strncmp(name, "net.", 4) == 0) {
    if (!has_ns(linux_obj, "network"))
      return sk_fail(err, 0, "linux.sysctl: %s is not allowed in the host's network namespace", name);
    return 0;
  }
  if (strcmp(name, "kernel.hostname") == 0 || strcmp(name, "kernel.domainname") == 0)
    return sk_fail(err, 0, "linux.sysctl: %s conflicts with the config's hostname/domainname", name);
  return sk_fail(err, 0, "linux.sysctl: %s is not in a separate kernel namespace", name);
}

static int parse_propagation(const char *s, unsigned long *out) {
  static const struct {
    const char *n;
    unsigned long f;
  } t[] = {{"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
           {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
           {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
           {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (strcmp(s, t[i].n) == 0) return *out = t[i].f, 0;
  return -1;
}

int rootfs_parse(json_object *config, const char *bundle, sk_rootfs **out, sk_error *err) {
  sk_rootfs *r = calloc(1, sizeof *r);
  json_object *root, *linux_obj, *mounts, *devices, *sysctl;
  const char *path = NULL, *prop = NULL;
  if (r == NULL) return sk_fail(err, ENOMEM, "rootfs");
  if (j_object(config, "root", "", true, &root, err) < 0 || j_string(root, "path", "root", true, &path, err) < 0 ||
      j_bool(root, "readonly", "root", &r->readonly, err) < 0 ||
      j_object(config, "linux", "", false, &linux_obj, err) < 0 ||
      j_array(config, "mounts", "", false, &mounts, err) < 0)
    goto fail;
  if (!*path) {
    sk_fail(err, 0, "root.path must not be empty");
    goto fail;
  }
  char *joined = NULL;
  if (path[0] != '/' && asprintf(&joined, "%s/%s", bundle, path) < 0) joined = NULL;
  if ((r->path = realpath(joined ? joined : path, NULL)) == NULL) {
    sk_fail(err, errno, "root.path %s", joined ? joined : path);
    free(joined);
    goto fail;
  }
  free(joined);
  struct stat st;
  errno = 0;
  if (stat(r->path, &st) < 0 || !S_ISDIR(st.st_mode)) {
    sk_fail(err, errno ? errno : ENOTDIR, "root.path %s", r->path);
    goto fail;
  }

  size_t n = mounts ? json_object_array_length(mounts) : 0;
  if (n && (r->m = calloc(n, sizeof *r->m)) == NULL) {
    sk_fail(err, ENOMEM, "mounts");
    goto fail;
  }
  for (; r->nm < n; r->nm++) {
    rmount *m = &r->m[r->nm];
    if (parse_mount(json_object_array_get_idx(mounts, r->nm), r->nm, bundle, m, err) < 0) {
      r->nm++;
      goto fail;
    }
    if (strcmp(m->dest, "/dev") == 0) r->dev_tmpfs = m->kind == MK_TMPFS;
  }

  if (linux_obj == NULL) goto done;
  if (j_array(linux_obj, "devices", "linux", false, &devices, err) < 0 ||
      j_object(linux_obj, "sysctl", "linux", false, &sysctl, err) < 0 ||
      j_strv(linux_obj, "maskedPaths", "linux", false, &r->masked, err) < 0 ||
      j_strv(linux_obj, "readonlyPaths", "linux", false, &r->ropaths, err) < 0 ||
      j_string(linux_obj, "rootfsPropagation", "linux", false, &prop, err) < 0)
    goto fail;
  if (prop && parse_propagation(prop, &r->root_prop) < 0) {
    sk_fail(err, 0, "linux.rootfsPropagation %s must be one of private, shared, slave, unbindable (or r-)", prop);
    goto fail;
  }
  for (int k = 0; k < 2; k++)
    for (size_t i = 0; (k ? r->ropaths : r->masked) && (k ? r->ropaths : r->masked)[i]; i++)
      if ((k ? r->ropaths : r->masked)[i][0] != '/') {
        sk_fail(err, 0, "linux.%s[%zu] %s must be an absolute path", k ? "readonlyPaths" : "maskedPaths", i,
                (k ? r->ropaths : r->masked)[i]);
        goto fail;
      }
  n = devices ? json_object_array_length(devices) : 0;
  if (n && (r->dev = calloc(n, sizeof *r->dev)) == NULL) {
    sk_fail(err, ENOMEM, "linux.devices");
    goto fail;
  }
  for (; r->ndev < n; r->ndev++)
    if (parse_device(json_object_array_get_idx(devices, r->ndev), r->ndev, &r->dev[r->ndev], err) < 0) {
      r->ndev++;
      goto fail;
    }
  if (sysctl && (n = (size_t)json_object_object_length(sysctl)) > 0) {
    if ((r->sysctl = calloc(n, sizeof *r->sysctl)) == NULL) {
      sk_fail(err, ENOMEM, "linux.sysctl");
      goto fail;
    }
    json_object_object_foreach(sysctl, key, val) {
      if (!json_object_is_type(val, json_type_string)) {
        sk_fail(err, 0, "linux.sysctl.%s must be a string", key);
        goto fail;
      }
      if (check_sysctl(linux_obj, key, err) < 0) goto fail;
      rsysctl *s = &r->sysctl[r->nsysctl++];
      if ((size_t)snprintf(s->path, sizeof s->path, "/proc/sys/%s", key) >= sizeof s->path) {
        sk_fail(err, 0, "linux.sysctl: %s is too long", key);
        goto fail;
      }
      for (char *c = s->path + 10; *c; c++)
        if (*c == '.') *c = '/';
      s->value = json_object_get_string(val);
    }
  }
done:
  *out = r;
  return 0;
fail:
  rootfs_free(r);
  return -1;
}

const char *rootfs_path(const sk_rootfs *rfs) { return rfs->path; }

void rootfs_free(sk_rootfs *r) {
  if (r == NULL) return;
  for (size_t i = 0; i < r->nm; i++) {
    free(r->m[i].dest);
    free(r->m[i].source);
    free(r->m[i].data);
  }
  for (size_t i = 0; i < r->ndev; i++) free(r->dev[i].path);
  free(r->m);
  free(r->dev);
  free(r->masked);
  free(r->ropaths);
  free(r->sysctl);
  free(r->path);
  free(r);
}

const char *const *rootfs_mount_options(void) { return mopt_names(); }

/* ---- resolving mount targets inside the rootfs ------------------------------------------------------------- */

enum mk { MK_NONE, MK_DIR, MK_FILE };

static const char *rel_of(const char *path) {
  path += strspn(path, "/");
  return *path ? path : ".";
}

/* An O_PATH fd of path (clean, absolute) inside the rootfs; symlinks are followed but can't leave it. With mk,
 * missing components are made one at a time under their resolved parent (dirs; the last one a file for
 * MK_FILE), so a symlink planted in the image can't redirect a creation either. */
static int resolve_ex(int rootfd, const char *path, enum mk mk, uint64_t extra, sk_error *err) {
  const char *rel = rel_of(path);
  int fd = openat2_(rootfd, rel, O_PATH, IN_ROOT | extra);
  if (fd >= 0) return fd;
  if (errno == ELOOP && extra) return sk_fail(err, 0, "%s must not be reached through a symlink", path);
  if (errno != ENOENT || mk == MK_NONE) return sk_fail(err, errno, "resolving %s in the rootfs", path);
  char buf[PATH_MAX];
  if (strlen(rel) >= sizeof buf) return sk_fail(err, ENAMETOOLONG, "resolving %s in the rootfs", path);
  strcpy(buf, rel);
  int parent = rootfd;
  char *p = buf, *last = strrchr(buf, '/');
  if (last) { /* usually only the last component is missing: start from its parent */
    *last = 0;
    int fd2 = openat2_(rootfd, buf, O_PATH, IN_ROOT | extra);
    *last = '/';
    if (fd2 >= 0) parent = fd2, p = last + 1;
  }
  for (bool known_missing = parent != rootfd;; known_missing = false) {
    char *slash = strchr(p, '/');
    if (slash) *slash = 0;
    int next = known_missing ? (errno = ENOENT, -1) : openat2_(rootfd, buf, O_PATH, IN_ROOT | extra);
    if (next < 0 && errno == ENOENT) {
      int rc;
      if (slash == NULL && mk == MK_FILE) {
        if ((rc = openat(parent, p, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644)) >= 0) close(rc);
      } else
        rc = mkdirat(parent, p, 0755);
      /* EEXIST after ENOENT: a symlink pointing at nothing; we don't create its target */
      if (rc < 0) {
        sk_fail(err, errno, "creating /%s in the rootfs%s", buf, errno == EEXIST ? " (dangling symlink)" : "");
        goto fail;
      }
      next = openat2_(rootfd, buf, O_PATH, IN_ROOT | extra);
    }
    if (next < 0) {
      sk_fail(err, errno, "resolving /%s in the rootfs", buf);
      goto fail;
    }
    if (parent != rootfd) close(parent);
    parent = next;
    if (slash == NULL) return parent;
    *slash = '/';
    p = slash + 1;
  }
fail:
  if (parent != rootfd) close(parent);
  return -1;
}

static int resolve(int rootfd, const char *path, enum mk mk, sk_error *err) {
  return resolve_ex(rootfd, path, mk, 0, err);
}

/* ---- mounts ----------------------------------------------------------------------------------------------- */

/* mount(2) flags as mount_setattr attributes (set or clear), with the atime mode. */
static void ms_to_attr(unsigned long set, unsigned long clear, struct mount_attr *a) {
  static const struct {
    unsigned long ms;
    uint64_t attr;
  } t[] = {{MS_RDONLY, MOUNT_ATTR_RDONLY},         {MS_NOSUID, MOUNT_ATTR_NOSUID},
           {MS_NODEV, MOUNT_ATTR_NODEV},           {MS_NOEXEC, MOUNT_ATTR_NOEXEC},
           {MS_NODIRATIME, MOUNT_ATTR_NODIRATIME}, {MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    if (set & t[i].ms) a->attr_set |= t[i].attr;
    if (clear & t[i].ms) a->attr_clr |= t[i].attr;
  }
  if ((set & (MS_NOATIME | MS_STRICTATIME | MS_RELATIME)) || (clear & (MS_NOATIME | MS_STRICTATIME | MS_RELATIME))) {
    a->attr_clr |= MOUNT_ATTR__ATIME;
    a->attr_set |= set & MS_NOATIME       ? MOUNT_ATTR_NOATIME
                   : set & MS_STRICTATIME ? MOUNT_ATTR_STRICTATIME
                                          : MOUNT_ATTR_RELATIME;
  }
}

static int apply_props(int fd, const rmount *m, sk_error *err) {
  for (int i = 0; i < m->nprop; i++)
    if (setattr(fd, m->prop[i] & MS_REC ? AT_RECURSIVE : 0, 0, 0, m->prop[i] & ~(unsigned long)MS_REC) < 0)
      return sk_fail(err, errno, "setting propagation of %s", m->dest);
  return 0;
}

static int apply_rattr(int fd, const rmount *m, sk_error *err) {
  if ((m->rattr.attr_set | m->rattr.attr_clr) == 0) return 0;
  if (setattr(fd, AT_RECURSIVE, m->rattr.attr_set, m->rattr.attr_clr, 0) < 0)
    return sk_fail(err, errno, "setting recursive options on %s", m->dest);
  return 0;
}

/* A bind is cloned with open_tree, given its options with mount_setattr (which only touches the attributes
 * named, so flags locked by a user namespace are kept without asking statvfs) and moved onto the target. */
static int do_bind(int rootfd, const rmount *m, sk_error *err) {
  int tree AUTOCLOSE =
      open_tree(AT_FDCWD, m->source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (m->flags & MS_REC ? AT_RECURSIVE : 0));
  if (tree < 0) return sk_fail(err, errno, "bind source %s", m->source);
  int tgt AUTOCLOSE = openat2_(rootfd, rel_of(m->dest), O_PATH, IN_ROOT);
  if (tgt < 0) {
    struct stat st;
    if (errno != ENOENT) return sk_fail(err, errno, "resolving %s in the rootfs", m->dest);
    if (fstat(tree, &st) < 0) return sk_fail(err, errno, "stat of bind source %s", m->source);
    if ((tgt = resolve(rootfd, m->dest, S_ISDIR(st.st_mode) ? MK_DIR : MK_FILE, err)) < 0) return -1;
  }
  struct mount_attr a = {0};
  ms_to_attr(m->flags, m->cleared, &a);
  if ((a.attr_set | a.attr_clr) && setattr(tree, 0, a.attr_set, a.attr_clr, 0) < 0)
    return sk_fail(err, errno, "applying options to the bind of %s on %s", m->source, m->dest);
  if (apply_rattr(tree, m, err) < 0) return -1;
  if (move_mount(tree, "", tgt, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return sk_fail(err, errno, "bind mounting %s on %s", m->source, m->dest);
  return apply_props(tree, m, err);
}

/* tmpcopyup: what the image had at the target, copied into the fresh tmpfs. */
static int copy_tree(int from, int to, const char *dest, sk_error *err) {
  int dfd = dup(from);
  DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
  if (d == NULL) {
    if (dfd >= 0) close(dfd);
    return sk_fail(err, errno, "tmpcopyup: reading %s", dest);
  }
  int rc = 0;
  struct dirent *e;
  while (rc == 0 && (errno = 0, e = readdir(d)) != NULL) {
    const char *n = e->d_name;
    struct stat st;
    if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0) continue;
    if (fstatat(from, n, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      rc = sk_fail(err, errno, "tmpcopyup: stat %s/%s", dest, n);
      break;
    }
    if (S_ISDIR(st.st_mode)) {
      int s AUTOCLOSE = -1, t AUTOCLOSE = -1;
      if (mkdirat(to, n, st.st_mode & 07777) < 0 ||
          (s = openat(from, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
          (t = openat(to, n, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        rc = sk_fail(err, errno, "tmpcopyup: %s/%s", dest, n);
      else
        rc = copy_tree(s, t, dest, err);
    } else if (S_ISREG(st.st_mode)) {
      int s AUTOCLOSE = openat(from, n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      int t AUTOCLOSE =
          s < 0 ? -1 : openat(to, n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 07777);
      ssize_t c = 1;
      for (off_t left = st.st_size; t >= 0 && left > 0 && c > 0; left -= c) c = sendfile(t, s, NULL, (size_t)left);
      if (s < 0 || t < 0 || c < 0) rc = sk_fail(err, errno, "tmpcopyup: copying %s/%s", dest, n);
    } else if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX];
      ssize_t len = readlinkat(from, n, target, sizeof target - 1);
      if (len >= 0) target[len] = 0;
      if (len < 0 || symlinkat(target, to, n) < 0) rc = sk_fail(err, errno, "tmpcopyup: symlink %s/%s", dest, n);
    } else if (mknodat(to, n, st.st_mode, st.st_rdev) < 0)
      rc = sk_fail(err, errno, "tmpcopyup: mknod %s/%s", dest, n);
    if (rc == 0 && fchownat(to, n, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
      rc = sk_fail(err, errno, "tmpcopyup: chown %s/%s", dest, n);
  }
  if (rc == 0 && errno != 0) rc = sk_fail(err, errno, "tmpcopyup: reading %s", dest);
  closedir(d);
  return rc;
}

/* A fresh filesystem: mount(2) through the target's /proc/self/fd path (the host /proc is still there).
 * What must act on the new mount itself (propagation, recursive attributes, copy-up) re-resolves the target,
 * which now lands on the new mount's root. */
static int do_fresh(int rootfd, const rmount *m, const char *type, const char *data, unsigned long extra,
                    sk_error *err) {
  char p[32];
  int under AUTOCLOSE = -1;
  /* procfs and sysfs on a symlink could put them where the image wants (CVE-2019-19921): runc refuses it */
  uint64_t nolinks = m->kind == MK_PROC || m->kind == MK_SYSFS ? RESOLVE_NO_SYMLINKS : 0;
  int tgt AUTOCLOSE = resolve_ex(rootfd, m->dest, MK_DIR, nolinks, err);
  if (tgt < 0) return -1;
  if (m->copyup && (under = openat(tgt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    return sk_fail(err, errno, "tmpcopyup: opening %s", m->dest);
  if (mount(m->source ? m->source : type, procfd(p, tgt), type, m->flags | extra, data) < 0)
    return sk_fail(err, errno, "mounting %s on %s", type, m->dest);
  if (!m->copyup && !m->nprop && !(m->rattr.attr_set | m->rattr.attr_clr)) return 0;
  close_(&tgt);
  if ((tgt = resolve(rootfd, m->dest, MK_NONE, err)) < 0) return -1;
  if (m->copyup) {
    struct stat st;
    char q[32];
    if (copy_tree(under, tgt, m->dest, err) < 0) return -1;
    /* the tmpfs root takes the directory's owner, and its mode unless the options gave one */
    if (fstat(under, &st) < 0 || fchownat(tgt, "", st.st_uid, st.st_gid, AT_EMPTY_PATH) < 0 ||
        (!(data && (strncmp(data, "mode=", 5) == 0 || strstr(data, ",mode="))) &&
         chmod(procfd(q, tgt), st.st_mode & 07777) < 0))
      return sk_fail(err, errno, "tmpcopyup: setting the owner and mode of %s", m->dest);
  }
  if (apply_rattr(tgt, m, err) < 0) return -1;
  return apply_props(tgt, m, err);
}

static int do_cgroup(int rootfd, const rmount *m, const sk_rootfs_ctx *ctx, sk_error *err) {
  const sk_cgroup *cg = ctx->cgroup;
  const sk_cgroup_hierarchy *h = NULL;
  size_t nh = cg ? cgroup_hierarchies(cg, &h) : 0;
  rmount b = *m;
  b.flags |= MS_BIND | MS_REC;
  if (m->kind == MK_CGROUP2 || (cg && cgroup_is_v2(cg))) {
    if (ctx->new_cgroupns || cg == NULL || !cgroup_is_v2(cg) || nh == 0)
      return do_fresh(rootfd, m, "cgroup2", m->data, 0, err);
    b.source = (char *)h[0].host_dir;
    return do_bind(rootfd, &b, err);
  }
  if (cg == NULL) { /* nothing to go by: the host's hierarchies, the options applied to every one */
    b.source = "/sys/fs/cgroup";
    ms_to_attr(m->flags, m->cleared, &b.rattr);
    return do_bind(rootfd, &b, err);
  }
  /* v1: a tmpfs with one directory per hierarchy, as runc and Docker lay it out */
  rmount t = {.dest = m->dest, .flags = MS_NOSUID | MS_NODEV | MS_NOEXEC};
  if (do_fresh(rootfd, &t, "tmpfs", "mode=755", 0, err) < 0) return -1;
  int dir AUTOCLOSE = resolve(rootfd, m->dest, MK_NONE, err);
  if (dir < 0) return -1;
  char p[32];
  for (size_t i = 0; i < nh; i++) {
    const char *name = strncmp(h[i].name, "name=", 5) == 0 ? h[i].name + 5 : h[i].name;
    if (mkdirat(dir, name, 0755) < 0 && errno != EEXIST) return sk_fail(err, errno, "creating %s/%s", m->dest, name);
    int sub AUTOCLOSE = openat2_(dir, name, O_PATH, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
    if (sub < 0) return sk_fail(err, errno, "opening %s/%s", m->dest, name);
    if (ctx->new_cgroupns) {
      if (mount("cgroup", procfd(p, sub), "cgroup", m->flags & ~(unsigned long)(MS_BIND | MS_REC), h[i].mount_options) <
          0)
        return sk_fail(err, errno, "mounting cgroup (%s) on %s/%s", h[i].mount_options, m->dest, name);
    } else {
      int tree AUTOCLOSE = open_tree(AT_FDCWD, h[i].host_dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
      struct mount_attr a = {0};
      ms_to_attr(m->flags, m->cleared, &a);
      if (tree < 0 || ((a.attr_set | a.attr_clr) && setattr(tree, 0, a.attr_set, a.attr_clr, 0) < 0) ||
          move_mount(tree, "", sub, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        return sk_fail(err, errno, "bind mounting %s on %s/%s", h[i].host_dir, m->dest, name);
    }
    /* "cpu,cpuacct" is also reachable as cpu and cpuacct */
    if (strchr(name, ',')) {
      char *list = strdup(name), *save = NULL;
      for (char *s = list ? strtok_r(list, ",", &save) : NULL; s; s = strtok_r(NULL, ",", &save))
        if (symlinkat(name, dir, s) < 0 && errno != EEXIST) {
          free(list);
          return sk_fail(err, errno, "symlink %s/%s", m->dest, s);
        }
      free(list);
    }
  }
  if ((m->flags & MS_RDONLY) && setattr(dir, 0, MOUNT_ATTR_RDONLY, 0, 0) < 0)
    return sk_fail(err, errno, "making %s read-only", m->dest);
  return apply_props(dir, m, err);
}

static int mount_one(int rootfd, const rmount *m, const sk_rootfs_ctx *ctx, sk_error *err) {
  switch (m->kind) {
    case MK_BIND:
      return do_bind(rootfd, m, err);
    case MK_SYSFS:
      if (!ctx->new_netns) { /* sysfs can't be mounted without a netns of our own: the host's, read-only */
        rmount b = *m;
        b.source = "/sys";
        b.flags |= MS_BIND | MS_REC;
        b.rattr.attr_set |= MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
        b.rattr.attr_clr &= ~(uint64_t)(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
        return do_bind(rootfd, &b, err);
      }
      return do_fresh(rootfd, m, m->type, m->data, 0, err);
    case MK_CGROUP:
    case MK_CGROUP2:
      return do_cgroup(rootfd, m, ctx, err);
    default:
      return do_fresh(rootfd, m, m->type, m->data, 0, err);
  }
}

/* ---- /dev ------------------------------------------------------------------------------------------------- */

static const struct {
  const char *name;
  unsigned major, minor;
} default_devs[] = {{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};

static const struct {
  const char *name, *target;
} dev_links[] = {{"fd", "/proc/self/fd"},       {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
                 {"stderr", "/proc/self/fd/2"}, {"ptmx", "pts/ptmx"},         {"core", "/proc/kcore"}};

/* One device node in dirfd. In a user namespace mknod is refused: bind the host's node at the same path. */
static int make_dev(int dirfd, const char *name, const char *path, mode_t mode, dev_t dev, const rdevice *d,
                    const sk_rootfs_ctx *ctx, sk_error *err) {
  if (ctx->new_userns && !S_ISFIFO(mode)) {
    char p[32];
    int fd AUTOCLOSE = openat(dirfd, name, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return sk_fail(err, errno, "creating %s", path);
    if (mount(path, procfd(p, fd), NULL, MS_BIND, NULL) < 0)
      return sk_fail(err, errno, "bind mounting device %s", path);
    return 0;
  }
  if (mknodat(dirfd, name, mode, dev) < 0 && errno != EEXIST) return sk_fail(err, errno, "mknod %s", path);
  if (d && d->chown && fchownat(dirfd, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
    return sk_fail(err, errno, "chown %s", path);
  return 0;
}

static int setup_dev(const sk_rootfs *r, int rootfd, const sk_rootfs_ctx *ctx, sk_error *err) {
  int devfd AUTOCLOSE = -1;
  if (r->dev_tmpfs || r->ndev) {
    if ((devfd = resolve(rootfd, "/dev", MK_DIR, err)) < 0) return -1;
  }
  if (r->dev_tmpfs) {
    for (size_t i = 0; i < sizeof default_devs / sizeof default_devs[0]; i++) {
      char path[32];
      snprintf(path, sizeof path, "/dev/%s", default_devs[i].name);
      bool configured = false;
      for (size_t k = 0; k < r->ndev && !configured; k++) configured = strcmp(r->dev[k].path, path) == 0;
      if (!configured && make_dev(devfd, default_devs[i].name, path, S_IFCHR | 0666,
                                  makedev(default_devs[i].major, default_devs[i].minor), NULL, ctx, err) < 0)
        return -1;
    }
  }
  for (size_t i = 0; i < r->ndev; i++) {
    const rdevice *d = &r->dev[i];
    const char *base = strrchr(d->path, '/') + 1;
    int dir AUTOCLOSE = -1;
    if (base != d->path + 5) { /* in a subdirectory of /dev */
      char parent[PATH_MAX];
      snprintf(parent, sizeof parent, "%.*s", (int)(base - 1 - d->path), d->path);
      if ((dir = resolve(rootfd, parent, MK_DIR, err)) < 0) return -1;
    }
    if (make_dev(dir >= 0 ? dir : devfd, base, d->path, d->mode, d->dev, d, ctx, err) < 0) return -1;
  }
  if (r->dev_tmpfs)
    for (size_t i = 0; i < sizeof dev_links / sizeof dev_links[0]; i++) {
      /* as runc: /dev/core only when the kernel has a /proc/kcore (the host's /proc is still visible) */
      if (strcmp(dev_links[i].name, "core") == 0 && access("/proc/kcore", F_OK) < 0) continue;
      int rc = symlinkat(dev_links[i].target, devfd, dev_links[i].name);
      if (rc < 0 && errno == EEXIST && strcmp(dev_links[i].name, "ptmx") == 0) /* runc: ptmx is always the link */
        rc = unlinkat(devfd, "ptmx", 0) < 0 ? -1 : symlinkat(dev_links[i].target, devfd, "ptmx");
      if (rc < 0 && errno != EEXIST) return sk_fail(err, errno, "symlink /dev/%s", dev_links[i].name);
    }
  return 0;
}

/* ---- setup, pivot, finalize ------------------------------------------------------------------------------- */

/* pivot_root refuses a shared parent: make the mount holding the rootfs private (the first path upwards
 * that is a mount point). Only needed when / was left shared. */
static int parent_private(const char *path, sk_error *err) {
  char buf[PATH_MAX];
  snprintf(buf, sizeof buf, "%s", path);
  for (;;) {
    if (mount(NULL, buf, NULL, MS_PRIVATE, NULL) == 0) return 0;
    if (errno != EINVAL) return sk_fail(err, errno, "making the mount of %s private", buf);
    char *slash = strrchr(buf, '/');
    if (slash == NULL || slash == buf) {
      if (strcmp(buf, "/") == 0) return sk_fail(err, EINVAL, "making the mount of %s private", path);
      strcpy(buf, "/");
    } else
      *slash = 0;
  }
}

int rootfs_setup(const sk_rootfs *r, const sk_rootfs_ctx *ctx, sk_error *err) {
  unsigned long prop = r->root_prop ? r->root_prop : MS_SLAVE | MS_REC;
  if (mount(NULL, "/", NULL, prop, NULL) < 0) return sk_fail(err, errno, "setting the propagation of /");
  if (((prop & MS_SHARED) || !(prop & MS_REC)) && parent_private(r->path, err) < 0) return -1;
  if (mount(r->path, r->path, NULL, MS_BIND | MS_REC, NULL) < 0)
    return sk_fail(err, errno, "bind mounting the rootfs %s on itself", r->path);
  int rootfd AUTOCLOSE = open(r->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) return sk_fail(err, errno, "opening the rootfs %s", r->path);
  mode_t old = umask(0); /* modes of devices and created directories are the config's, not the umask's */
  int rc = 0;
  for (size_t i = 0; i < r->nm && rc == 0; i++)
    if ((rc = mount_one(rootfd, &r->m[i], ctx, err)) < 0) sk_wrap(err, "mounts[%zu]", i);
  if (rc == 0) rc = setup_dev(r, rootfd, ctx, err);
  umask(old);
  return rc;
}

int rootfs_pivot(const sk_rootfs *r, bool no_pivot, sk_error *err) {
  if (no_pivot) {
    if (chdir(r->path) < 0) return sk_fail(err, errno, "chdir to the rootfs %s", r->path);
    if (mount(r->path, "/", NULL, MS_MOVE, NULL) < 0) return sk_fail(err, errno, "moving the rootfs onto /");
    if (chroot(".") < 0) return sk_fail(err, errno, "chroot into the rootfs");
    if (chdir("/") < 0) return sk_fail(err, errno, "chdir to /");
    return 0;
  }
  int oldroot AUTOCLOSE = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  int newroot AUTOCLOSE = open(r->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (oldroot < 0 || newroot < 0) return sk_fail(err, errno, "opening the old and new roots");
  if (fchdir(newroot) < 0) return sk_fail(err, errno, "chdir to the rootfs %s", r->path);
  /* pivot_root(".", "."): the old root ends up stacked under the new one, no put_old directory needed */
  if (syscall(SYS_pivot_root, ".", ".") < 0) return sk_fail(err, errno, "pivot_root into %s", r->path);
  if (fchdir(oldroot) < 0) return sk_fail(err, errno, "chdir to the old root");
  /* slave first, so the detach below doesn't propagate to the host */
  if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) return sk_fail(err, errno, "making the old root rslave");
  if (umount2(".", MNT_DETACH) < 0) return sk_fail(err, errno, "detaching the old root");
  if (chdir("/") < 0) return sk_fail(err, errno, "chdir to /");
  return 0;
}

static int mask_path(int rootfd, const char *path, int *nullfd, sk_error *err) {
  int fd AUTOCLOSE = openat2_(rootfd, rel_of(path), O_PATH, IN_ROOT);
  if (fd < 0) return errno == ENOENT ? 0 : sk_fail(err, errno, "masking %s", path);
  struct stat st;
  if (fstat(fd, &st) < 0) return sk_fail(err, errno, "masking %s", path);
  int m AUTOCLOSE = -1;
  if (S_ISDIR(st.st_mode)) { /* a read-only empty tmpfs */
    int fs AUTOCLOSE = fsopen("tmpfs", FSOPEN_CLOEXEC);
    if (fs < 0 || fsconfig(fs, FSCONFIG_SET_STRING, "source", "tmpfs", 0) < 0 ||
        fsconfig(fs, FSCONFIG_SET_FLAG, "ro", NULL, 0) < 0 || fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0 ||
        (m = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY)) < 0)
      return sk_fail(err, errno, "masking %s: making a tmpfs", path);
  } else {
    if (*nullfd < 0) { /* the container's /dev/null must be the real one, or the mask would expose a file */
      struct stat ns;
      *nullfd = openat2_(rootfd, "dev/null", O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS);
      if (*nullfd < 0 || fstat(*nullfd, &ns) < 0) return sk_fail(err, errno, "masking %s: opening /dev/null", path);
      if (!S_ISCHR(ns.st_mode) || ns.st_rdev != makedev(1, 3))
        return sk_fail(err, 0, "masking %s: /dev/null is not the null device (1:3)", path);
    }
    if ((m = open_tree(*nullfd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH)) < 0)
      return sk_fail(err, errno, "masking %s: cloning /dev/null", path);
  }
  if (move_mount(m, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return sk_fail(err, errno, "masking %s", path);
  return 0;
}

/* A read-only path: a recursive clone of itself, made read-only (keeping its other flags), moved on top. */
static int readonly_path(int rootfd, const char *path, sk_error *err) {
  int fd AUTOCLOSE = openat2_(rootfd, rel_of(path), O_PATH, IN_ROOT);
  if (fd < 0) return errno == ENOENT ? 0 : sk_fail(err, errno, "making %s read-only", path);
  int tree AUTOCLOSE = open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
  if (tree < 0 || setattr(tree, AT_RECURSIVE, MOUNT_ATTR_RDONLY, 0, 0) < 0 ||
      move_mount(tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return sk_fail(err, errno, "making %s read-only", path);
  return 0;
}

int rootfs_finalize(const sk_rootfs *r, sk_error *err) {
  for (size_t i = 0; i < r->nsysctl; i++) {
    /* no symlink on the way, and procfs at the end: the image can't redirect the write */
    struct statfs sf;
    int fd AUTOCLOSE = openat2_(AT_FDCWD, r->sysctl[i].path, O_WRONLY, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
    if (fd >= 0 && fstatfs(fd, &sf) == 0 && sf.f_type != PROC_SUPER_MAGIC)
      return sk_fail(err, 0, "setting sysctl %s: %s is not on procfs", r->sysctl[i].path + 10, r->sysctl[i].path);
    if (fd < 0 || write_all(fd, r->sysctl[i].value, strlen(r->sysctl[i].value)) < 0)
      return sk_fail(err, errno, "setting sysctl %s to %s", r->sysctl[i].path + 10, r->sysctl[i].value);
  }
  if ((r->masked && r->masked[0]) || (r->ropaths && r->ropaths[0])) {
    int rootfd AUTOCLOSE = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC), nullfd AUTOCLOSE = -1;
    if (rootfd < 0) return sk_fail(err, errno, "opening /");
    for (size_t i = 0; r->masked && r->masked[i]; i++)
      if (mask_path(rootfd, r->masked[i], &nullfd, err) < 0) return -1;
    for (size_t i = 0; r->ropaths && r->ropaths[i]; i++)
      if (readonly_path(rootfd, r->ropaths[i], err) < 0) return -1;
  }
  if (r->readonly) {
    struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY};
    if (mount_setattr(AT_FDCWD, "/", 0, &a, sizeof a) < 0) return sk_fail(err, errno, "making / read-only");
  }
  if (r->root_prop && mount(NULL, "/", NULL, r->root_prop, NULL) < 0)
    return sk_fail(err, errno, "setting the propagation of /");
  return 0;
}
