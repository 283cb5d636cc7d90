/* The identity and confinement of the container process; see security.h for the order things run in.
 * Capabilities live in caps.c and seccomp in seccomp.c; this file parses the rest and sequences the apply steps. */
#include "security.h"

#include <errno.h>
#include <grp.h>
#include <linux/ioprio.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jsonutil.h"
#include "log.h"
#include "security_int.h"
#include "util.h"

typedef struct {
  const char *name;
  long value;
} name_long;

static const name_long *lookup(const name_long *tbl, const char *name) {
  for (; tbl->name; tbl++)
    if (strcmp(tbl->name, name) == 0) return tbl;
  return NULL;
}

static const name_long rlimit_names[] = {
    {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
    {NULL, 0},
};

/* SCHED_ISO is in the spec but was never merged into Linux. */
static const name_long sched_policies[] = {
    {"SCHED_OTHER", SCHED_OTHER},
    {"SCHED_FIFO", SCHED_FIFO},
    {"SCHED_RR", SCHED_RR},
    {"SCHED_BATCH", SCHED_BATCH},
    {"SCHED_IDLE", SCHED_IDLE},
    {"SCHED_DEADLINE", 6},
    {NULL, 0},
};

static const name_long sched_flags[] = {
    {"SCHED_FLAG_RESET_ON_FORK", 0x01},  {"SCHED_FLAG_RECLAIM", 0x02},
    {"SCHED_FLAG_DL_OVERRUN", 0x04},     {"SCHED_FLAG_KEEP_POLICY", 0x08},
    {"SCHED_FLAG_KEEP_PARAMS", 0x10},    {"SCHED_FLAG_UTIL_CLAMP_MIN", 0x20},
    {"SCHED_FLAG_UTIL_CLAMP_MAX", 0x40}, {NULL, 0},
};

static const name_long ioprio_classes[] = {
    {"IOPRIO_CLASS_RT", IOPRIO_CLASS_RT},
    {"IOPRIO_CLASS_BE", IOPRIO_CLASS_BE},
    {"IOPRIO_CLASS_IDLE", IOPRIO_CLASS_IDLE},
    {NULL, 0},
};

static const name_long personality_flags[] = {
    {"ADDR_COMPAT_LAYOUT", ADDR_COMPAT_LAYOUT}, {"ADDR_LIMIT_32BIT", ADDR_LIMIT_32BIT},
    {"ADDR_LIMIT_3GB", ADDR_LIMIT_3GB},         {"ADDR_NO_RANDOMIZE", ADDR_NO_RANDOMIZE},
    {"FDPIC_FUNCPTRS", FDPIC_FUNCPTRS},         {"MMAP_PAGE_ZERO", MMAP_PAGE_ZERO},
    {"READ_IMPLIES_EXEC", READ_IMPLIES_EXEC},   {"SHORT_INODE", SHORT_INODE},
    {"STICKY_TIMEOUTS", STICKY_TIMEOUTS},       {"UNAME26", UNAME26},
    {"WHOLE_SECONDS", WHOLE_SECONDS},           {NULL, 0},
};

/* struct sched_attr (SCHED_ATTR_SIZE_VER1); glibc 2.36 has no wrapper. */
struct sk_sched_attr {
  uint32_t size, sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime, sched_deadline, sched_period;
  uint32_t sched_util_min, sched_util_max;
};

static bool file_starts_with(const char *path, char c) {
  char *s = NULL;
  sk_error ignored;
  bool r = read_file(path, &s, NULL, &ignored) == 0 && s[0] == c;
  free(s);
  return r;
}

bool security_apparmor_enabled(void) {
  if (access("/sys/module/apparmor/parameters/enabled", F_OK) == 0)
    return file_starts_with("/sys/module/apparmor/parameters/enabled", 'Y');
  return access("/sys/kernel/security/apparmor", F_OK) == 0;
}

bool security_selinux_enabled(void) { return access("/sys/fs/selinux/enforce", F_OK) == 0; }

/* A uint64 field that must fit 32 bits (uid_t, gid_t, …). */
static int j_u32(json_object *o, const char *key, const char *where, uint32_t *out, sk_error *err) {
  uint64_t v = *out;
  if (j_uint64(o, key, where, false, &v, err) < 0) return -1;
  if (v > UINT32_MAX) return sk_fail(err, 0, "%s.%s must fit in 32 bits, not %llu", where, key, (unsigned long long)v);
  *out = (uint32_t)v;
  return 0;
}

static int parse_user(json_object *process, sk_security *sec, sk_error *err) {
  json_object *user, *gids;
  if (j_object(process, "user", "process", false, &user, err) < 0) return -1;
  if (user == NULL) return 0; /* uid 0, gid 0, no supplementary groups */
  uint32_t umask_v = 0;
  if (j_u32(user, "uid", "process.user", &sec->uid, err) < 0 || j_u32(user, "gid", "process.user", &sec->gid, err) < 0)
    return -1;
  if (j_get(user, "umask")) {
    if (j_u32(user, "umask", "process.user", &umask_v, err) < 0) return -1;
    if (umask_v > 0777) return sk_fail(err, 0, "process.user.umask must be at most 0777 (511), not %u", umask_v);
    sec->has_umask = true;
    sec->umask = (mode_t)umask_v;
  }
  if (j_array(user, "additionalGids", "process.user", false, &gids, err) < 0) return -1;
  size_t n = gids ? json_object_array_length(gids) : 0;
  if (n == 0) return 0;
  if ((sec->groups = calloc(n, sizeof *sec->groups)) == NULL)
    return sk_fail(err, errno, "allocating process.user.additionalGids");
  for (size_t i = 0; i < n; i++) {
    json_object *g = json_object_array_get_idx(gids, i);
    int64_t v = g && json_object_is_type(g, json_type_int) ? json_object_get_int64(g) : -1;
    if (v < 0 || v > UINT32_MAX)
      return sk_fail(err, 0, "process.user.additionalGids[%zu] must be an integer from 0 to 4294967295", i);
    sec->groups[sec->n_groups++] = (gid_t)v;
  }
  return 0;
}

static int parse_rlimits(json_object *process, sk_security *sec, sk_error *err) {
  json_object *arr;
  char w[64];
  if (j_array(process, "rlimits", "process", false, &arr, err) < 0) return -1;
  if (arr == NULL) return 0;
  size_t n = json_object_array_length(arr);
  if (n && (sec->rlimits = calloc(n, sizeof *sec->rlimits)) == NULL)
    return sk_fail(err, errno, "allocating process.rlimits");
  for (size_t i = 0; i < n; i++) {
    json_object *o = json_object_array_get_idx(arr, i);
    sk_rlimit *rl = &sec->rlimits[sec->n_rlimits++];
    snprintf(w, sizeof w, "process.rlimits[%zu]", i);
    if (o == NULL || !json_object_is_type(o, json_type_object)) return sk_fail(err, 0, "%s must be an object", w);
    if (j_string(o, "type", w, true, &rl->name, err) < 0 || j_uint64(o, "soft", w, true, &rl->soft, err) < 0 ||
        j_uint64(o, "hard", w, true, &rl->hard, err) < 0)
      return -1;
    const name_long *r = lookup(rlimit_names, rl->name);
    if (r == NULL) return sk_fail(err, 0, "%s.type: unknown resource limit \"%s\"", w, rl->name);
    if (rl->soft > rl->hard)
      return sk_fail(err, 0, "%s: soft limit %llu of %s exceeds its hard limit %llu", w, (unsigned long long)rl->soft,
                     rl->name, (unsigned long long)rl->hard);
    rl->resource = (int)r->value;
  }
  return 0;
}

static int parse_scheduler(json_object *process, sk_security *sec, sk_error *err) {
  json_object *o, *fl;
  const char *policy = NULL;
  int64_t nice = 0, prio = 0;
  const char *W = "process.scheduler";
  if (j_object(process, "scheduler", "process", false, &o, err) < 0) return -1;
  if (o == NULL) return 0;
  if (j_string(o, "policy", W, true, &policy, err) < 0 || j_int64(o, "nice", W, false, &nice, err) < 0 ||
      j_int64(o, "priority", W, false, &prio, err) < 0 ||
      j_uint64(o, "runtime", W, false, &sec->sched_runtime, err) < 0 ||
      j_uint64(o, "deadline", W, false, &sec->sched_deadline, err) < 0 ||
      j_uint64(o, "period", W, false, &sec->sched_period, err) < 0 || j_array(o, "flags", W, false, &fl, err) < 0)
    return -1;
  const name_long *p = lookup(sched_policies, policy);
  if (p == NULL)
    return sk_fail(err, 0, "%s.policy: %s \"%s\"", W,
                   strcmp(policy, "SCHED_ISO") == 0 ? "Linux does not implement" : "unknown policy", policy);
  bool rt = p->value == SCHED_FIFO || p->value == SCHED_RR, dl = p->value == 6;
  if (nice < -20 || nice > 19) return sk_fail(err, 0, "%s.nice must be from -20 to 19, not %lld", W, (long long)nice);
  if (rt && (prio < 1 || prio > 99))
    return sk_fail(err, 0, "%s.priority must be from 1 to 99 for %s, not %lld", W, policy, (long long)prio);
  if (!rt && prio != 0)
    return sk_fail(err, 0, "%s.priority is only valid for SCHED_FIFO and SCHED_RR, not %s", W, policy);
  if (!dl && (sec->sched_runtime || sec->sched_deadline || sec->sched_period))
    return sk_fail(err, 0, "%s.runtime, deadline and period are only valid for SCHED_DEADLINE, not %s", W, policy);
  for (size_t i = 0, n = fl ? json_object_array_length(fl) : 0; i < n; i++) {
    json_object *v = json_object_array_get_idx(fl, i);
    const name_long *f =
        v && json_object_is_type(v, json_type_string) ? lookup(sched_flags, json_object_get_string(v)) : NULL;
    if (f == NULL)
      return sk_fail(err, 0, "%s.flags[%zu]: unknown flag %s", W, i, v ? json_object_to_json_string(v) : "null");
    sec->sched_flags |= (uint64_t)f->value;
  }
  sec->has_sched = true;
  sec->sched_policy = (uint32_t)p->value;
  sec->sched_nice = (int32_t)nice;
  sec->sched_priority = (uint32_t)prio;
  return 0;
}

static int parse_ioprio(json_object *process, sk_security *sec, sk_error *err) {
  json_object *o;
  const char *cls = NULL;
  int64_t prio = 0;
  if (j_object(process, "ioPriority", "process", false, &o, err) < 0) return -1;
  if (o == NULL) return 0;
  if (j_string(o, "class", "process.ioPriority", true, &cls, err) < 0 ||
      j_int64(o, "priority", "process.ioPriority", false, &prio, err) < 0)
    return -1;
  const name_long *c = lookup(ioprio_classes, cls);
  if (c == NULL) return sk_fail(err, 0, "process.ioPriority.class: unknown class \"%s\"", cls);
  if (prio < 0 || prio > 7)
    return sk_fail(err, 0, "process.ioPriority.priority must be from 0 to 7, not %lld", (long long)prio);
  sec->has_ioprio = true;
  sec->ioprio = (int)IOPRIO_PRIO_VALUE(c->value, prio);
  return 0;
}

static int parse_personality(json_object *linux_obj, sk_security *sec, sk_error *err) {
  json_object *o, *fl;
  const char *domain = "LINUX";
  if (j_object(linux_obj, "personality", "linux", false, &o, err) < 0) return -1;
  if (o == NULL) return 0;
  if (j_string(o, "domain", "linux.personality", false, &domain, err) < 0 ||
      j_array(o, "flags", "linux.personality", false, &fl, err) < 0)
    return -1;
  if (strcmp(domain, "LINUX") == 0)
    sec->personality = PER_LINUX;
  else if (strcmp(domain, "LINUX32") == 0)
    sec->personality = PER_LINUX32;
  else
    return sk_fail(err, 0, "linux.personality.domain: unknown domain \"%s\" (LINUX or LINUX32)", domain);
  for (size_t i = 0, n = fl ? json_object_array_length(fl) : 0; i < n; i++) {
    json_object *v = json_object_array_get_idx(fl, i);
    const name_long *f =
        v && json_object_is_type(v, json_type_string) ? lookup(personality_flags, json_object_get_string(v)) : NULL;
    if (f == NULL)
      return sk_fail(err, 0, "linux.personality.flags[%zu]: unknown flag %s", i,
                     v ? json_object_to_json_string(v) : "null");
    sec->personality |= (unsigned long)f->value;
  }
  sec->has_personality = true;
  return 0;
}

/* Asked for an LSM the host lacks: refuse now, before anything exists, rather than run unconfined. */
static int parse_lsm(json_object *process, json_object *linux_obj, sk_security *sec, sk_error *err) {
  if (j_string(process, "apparmorProfile", "process", false, &sec->apparmor_profile, err) < 0 ||
      j_string(process, "selinuxLabel", "process", false, &sec->selinux_label, err) < 0 ||
      j_string(linux_obj, "mountLabel", "linux", false, &sec->mount_label, err) < 0)
    return -1;
  if (sec->apparmor_profile && !*sec->apparmor_profile) sec->apparmor_profile = NULL;
  if (sec->selinux_label && !*sec->selinux_label) sec->selinux_label = NULL;
  if (sec->mount_label && !*sec->mount_label) sec->mount_label = NULL;
  if (sec->apparmor_profile && !security_apparmor_enabled())
    return sk_fail(err, 0,
                   "process.apparmorProfile \"%s\": AppArmor is not enabled on this host "
                   "(/sys/module/apparmor/parameters/enabled is not Y); remove process.apparmorProfile or run on a "
                   "host with AppArmor",
                   sec->apparmor_profile);
  const char *what = sec->selinux_label ? "process.selinuxLabel" : "linux.mountLabel";
  const char *label = sec->selinux_label ? sec->selinux_label : sec->mount_label;
  if (label && !security_selinux_enabled())
    return sk_fail(err, 0,
                   "%s \"%s\": SELinux is not enabled on this host (no /sys/fs/selinux/enforce); remove %s or run on "
                   "a host with SELinux",
                   what, label, what);
  return 0;
}

int security_parse(json_object *process, json_object *linux_obj, sk_security **out, sk_error *err) {
  json_object *caps, *sc;
  int64_t oom = 0;
  *out = NULL;
  sk_security *sec = calloc(1, sizeof *sec);
  if (sec == NULL) return sk_fail(err, errno, "allocating the security settings");
  if (parse_lsm(process, linux_obj, sec, err) < 0 || parse_user(process, sec, err) < 0 ||
      j_object(process, "capabilities", "process", false, &caps, err) < 0 || caps_parse(caps, &sec->caps, err) < 0 ||
      j_bool(process, "noNewPrivileges", "process", &sec->no_new_privs, err) < 0 ||
      parse_rlimits(process, sec, err) < 0 || parse_scheduler(process, sec, err) < 0 ||
      parse_ioprio(process, sec, err) < 0 || parse_personality(linux_obj, sec, err) < 0)
    goto fail;
  if (j_get(process, "oomScoreAdj")) {
    if (j_int64(process, "oomScoreAdj", "process", true, &oom, err) < 0) goto fail;
    if (oom < -1000 || oom > 1000) {
      sk_fail(err, 0, "process.oomScoreAdj must be from -1000 to 1000, not %lld", (long long)oom);
      goto fail;
    }
    sec->has_oom = true;
    sec->oom_score_adj = (int)oom;
  }
  if (j_object(linux_obj, "seccomp", "linux", false, &sc, err) < 0) goto fail;
  if (sc && seccomp_parse_config(sc, &sec->seccomp, err) < 0) goto fail;
  *out = sec;
  return 0;
fail:
  security_free(sec);
  return -1;
}

void security_free(sk_security *sec) {
  if (sec == NULL) return;
  free(sec->groups);
  free(sec->rlimits);
  seccomp_config_free(sec->seccomp);
  free(sec);
}

static int apply_oom(int adj, sk_error *err) {
  char buf[16], *cur = NULL;
  snprintf(buf, sizeof buf, "%d", adj);
  if (write_str("/proc/self/oom_score_adj", buf, err) == 0) return 0;
  if (err->errnum != EACCES && err->errnum != EPERM) return sk_wrap(err, "setting process.oomScoreAdj");
  int e = err->errnum;
  sk_error ignored;
  if (read_file("/proc/self/oom_score_adj", &cur, NULL, &ignored) == 0) cur[strcspn(cur, "\n")] = '\0';
  sk_fail(err, e,
          "setting process.oomScoreAdj to %d: lowering it below %s needs CAP_SYS_RESOURCE, which this process lacks "
          "(on this host even root does); use a value of at least %s",
          adj, cur ? cur : "the current value", cur ? cur : "the current value");
  free(cur);
  return -1;
}

int security_apply_early(const sk_security *sec, sk_error *err) {
  for (size_t i = 0; i < sec->n_rlimits; i++) {
    const sk_rlimit *rl = &sec->rlimits[i];
    struct rlimit want = {.rlim_cur = rl->soft, .rlim_max = rl->hard}, cur;
    if (setrlimit(rl->resource, &want) == 0) continue;
    int e = errno;
    if (e == EPERM && getrlimit(rl->resource, &cur) == 0)
      return sk_fail(err, e, "setting %s to %llu/%llu: raising the hard limit above %llu needs CAP_SYS_RESOURCE",
                     rl->name, (unsigned long long)rl->soft, (unsigned long long)rl->hard,
                     (unsigned long long)cur.rlim_max);
    return sk_fail(err, e, "setting %s to %llu/%llu", rl->name, (unsigned long long)rl->soft,
                   (unsigned long long)rl->hard);
  }
  if (sec->has_oom && apply_oom(sec->oom_score_adj, err) < 0) return -1;
  if (sec->has_personality && personality(sec->personality) < 0)
    return sk_fail(err, errno, "setting linux.personality %#lx", sec->personality);
  if (sec->has_sched) {
    struct sk_sched_attr a = {.size = sizeof a,
                              .sched_policy = sec->sched_policy,
                              .sched_flags = sec->sched_flags,
                              .sched_nice = sec->sched_nice,
                              .sched_priority = sec->sched_priority,
                              .sched_runtime = sec->sched_runtime,
                              .sched_deadline = sec->sched_deadline,
                              .sched_period = sec->sched_period};
    if (syscall(SYS_sched_setattr, 0, &a, 0) < 0) {
      bool rt = a.sched_policy == SCHED_FIFO || a.sched_policy == SCHED_RR;
      /* With RT group scheduling (cgroup v1) a cgroup has no realtime budget unless one is configured. */
      return sk_fail(err, errno, "setting process.scheduler (sched_setattr)%s",
                     errno != EPERM ? ""
                     : rt ? " (needs CAP_SYS_NICE, and on cgroup v1 with RT group scheduling a realtime budget: "
                            "linux.resources.cpu.realtimeRuntime)"
                          : " (needs CAP_SYS_NICE)");
    }
  }
  if (sec->has_ioprio && syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, sec->ioprio) < 0)
    return sk_fail(err, errno, "setting process.ioPriority (ioprio_set)%s",
                   errno == EPERM ? " (IOPRIO_CLASS_RT needs CAP_SYS_ADMIN or CAP_SYS_NICE)" : "");
  /* Without process.user.umask the container gets 0022, as with runc, not whatever the caller had. */
  umask(sec->has_umask ? sec->umask : 022);
  return 0;
}

/* The LSM label takes effect at the next execve. Newer kernels have a per-LSM file; older only attr/exec. */
static int apply_lsm(const sk_security *sec, sk_error *err) {
  if (sec->apparmor_profile) {
    char buf[4096];
    snprintf(buf, sizeof buf, "exec %s", sec->apparmor_profile);
    if (write_str("/proc/thread-self/attr/apparmor/exec", buf, err) < 0 &&
        write_str("/proc/thread-self/attr/exec", buf, err) < 0)
      return sk_wrap(err, "applying process.apparmorProfile \"%s\"", sec->apparmor_profile);
  }
  if (sec->selinux_label && write_str("/proc/thread-self/attr/exec", sec->selinux_label, err) < 0)
    return sk_wrap(err, "applying process.selinuxLabel \"%s\"", sec->selinux_label);
  return 0;
}

static int apply_user(const sk_security *sec, sk_error *err) {
  char *sg = NULL;
  sk_error ignored;
  /* In a user namespace whose parent wrote "deny" to setgroups, only an empty request can be honoured. */
  bool deny = read_file("/proc/self/setgroups", &sg, NULL, &ignored) == 0 && strncmp(sg, "deny", 4) == 0;
  free(sg);
  if (deny && sec->n_groups > 0)
    return sk_fail(err, EPERM, "setting process.user.additionalGids: setgroups is denied in this user namespace");
  if (!deny && setgroups(sec->n_groups, sec->groups) < 0)
    return sk_fail(err, errno, "setting process.user.additionalGids (setgroups)");
  if (setresgid(sec->gid, sec->gid, sec->gid) < 0)
    return sk_fail(err, errno, "setting process.user.gid %u%s", sec->gid,
                   errno == EINVAL ? " (not mapped in the container's user namespace)" : "");
  if (setresuid(sec->uid, sec->uid, sec->uid) < 0)
    return sk_fail(err, errno, "setting process.user.uid %u%s", sec->uid,
                   errno == EINVAL ? " (not mapped in the container's user namespace)" : "");
  return 0;
}

int security_apply_identity(const sk_security *sec, sk_error *err) {
  if (apply_lsm(sec, err) < 0) return -1;
  /* The bounding set first: dropping needs CAP_SETPCAP, which the uid change may take away. */
  if (caps_apply_bounding(&sec->caps, err) < 0) return -1;
  /* KEEPCAPS keeps the permitted set across the uid change; capset below then sets exactly the config's sets. */
  if (sec->caps.set && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) return sk_fail(err, errno, "prctl(PR_SET_KEEPCAPS)");
  if (apply_user(sec, err) < 0) return -1;
  if (sec->caps.set && prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) return sk_fail(err, errno, "prctl(PR_SET_KEEPCAPS)");
  if (caps_apply_sets(&sec->caps, err) < 0) return sk_wrap(err, "applying process.capabilities");
  if (sec->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return sk_fail(err, errno, "setting process.noNewPrivileges");
  return 0;
}

/* With noNewPrivileges the filter can load unprivileged, so load it last: fewer syscalls run under it. */
bool security_seccomp_late(const sk_security *sec) { return sec->no_new_privs; }

int security_apply_seccomp(const sk_security *sec, sk_error *err) {
  return sec->seccomp ? seccomp_apply(sec->seccomp, err) : 0;
}

int security_seccomp_notify_fd(const sk_security *sec) { return sec->seccomp ? *sec->seccomp->notify_fd : -1; }
