/* The identity and confinement of a container process: user (uid, gid, additionalGids, umask), all five
 * capability sets, noNewPrivileges, rlimits, oomScoreAdj, scheduler, ioPriority, linux.personality,
 * linux.seccomp (libseccomp), and AppArmor/SELinux (a clear error when asked for on a host without them).
 *
 * security_parse runs in the runtime before anything is created, so every config error surfaces there. The
 * apply functions run in the container's init (or exec'd process) in this order:
 *   security_apply_early   rlimits, oom_score_adj, personality, scheduler, ioprio, umask
 *   security_apply_seccomp when !security_seccomp_late (needs privileges: before identity)
 *   security_apply_identity groups, gid, uid, capabilities, no_new_privs
 *   security_apply_seccomp when security_seccomp_late (noNewPrivileges: as late as possible, right before exec) */
#ifndef SKIFF_SECURITY_H
#define SKIFF_SECURITY_H

#include <json-c/json.h>
#include <stdbool.h>

#include "error.h"

typedef struct sk_security sk_security;

/* process: the config's "process" object; linux_obj: its "linux" object (may be NULL). Strings may point into
 * the JSON, which must outlive the result. */
int security_parse(json_object *process, json_object *linux_obj, sk_security **out, sk_error *err);
int security_apply_early(const sk_security *sec, sk_error *err);
int security_apply_identity(const sk_security *sec, sk_error *err);
bool security_seccomp_late(const sk_security *sec);
int security_apply_seccomp(const sk_security *sec, sk_error *err);
/* Optional, in the runtime before the init is cloned: compile linux.seccomp now (so libseccomp's errors surface
 * before anything exists), reusing the program compiled earlier for an identical profile from cache_dir (created
 * 0700 if missing; NULL: no cache). security_apply_seccomp then only loads it (~0.3 ms instead of ~10 ms for
 * Docker's profile). Without this call security_apply_seccomp compiles in the init. */
int security_seccomp_prepare(sk_security *sec, const char *cache_dir, sk_error *err);
/* If linux.seccomp has a listenerPath: the notify fd made by security_apply_seccomp, else -1. The caller owns it
 * (O_CLOEXEC; security_free does not close it). */
int security_seccomp_notify_fd(const sk_security *sec);
/* In the runtime, once the init has passed its notify fd back: connect to linux.seccomp.listenerPath and send the
 * spec's container process state ({ociVersion, fds:["seccompFd"], pid, metadata, state}) with the fd as
 * SCM_RIGHTS. state: the container's state object (may be NULL). No-op without a listenerPath or with fd < 0. */
int security_seccomp_send_listener(const sk_security *sec, int notify_fd, int pid, json_object *state, sk_error *err);
void security_free(sk_security *sec);

/* Capability names known to this build ("CAP_CHOWN"…), for `features`; NULL-terminated. */
const char *const *security_known_capabilities(void);
/* Seccomp actions, operators and architectures supported, for `features`; NULL-terminated. */
const char *const *security_seccomp_actions(void);
const char *const *security_seccomp_operators(void);
const char *const *security_seccomp_archs(void);
/* Seccomp filter flags known to this build, and whether the running kernel supports one (features' knownFlags and
 * supportedFlags). */
const char *const *security_seccomp_known_flags(void);
bool security_seccomp_flag_supported(const char *flag);
/* Whether the host has AppArmor / SELinux (features' apparmor.enabled, selinux.enabled). */
bool security_apparmor_enabled(void);
bool security_selinux_enabled(void);

#endif
