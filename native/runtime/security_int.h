/* Private to security.c, caps.c and seccomp.c: the parsed form of the config's security settings. */
#ifndef SKIFF_SECURITY_INT_H
#define SKIFF_SECURITY_INT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "security.h"

#define SK_CAP_MAX 64 /* capability numbers fit a 64-bit mask (v3 capset: two 32-bit words) */

enum { SK_CAP_BOUNDING, SK_CAP_EFFECTIVE, SK_CAP_PERMITTED, SK_CAP_INHERITABLE, SK_CAP_AMBIENT, SK_CAP_NSETS };

typedef struct {
  bool set; /* process.capabilities present: otherwise capabilities are left as the kernel makes them */
  uint64_t sets[SK_CAP_NSETS];
  int last_cap; /* /proc/sys/kernel/cap_last_cap of the host at parse time */
} sk_caps;

typedef struct {
  unsigned index;
  int op; /* enum scmp_compare */
  uint64_t value, value_two;
} sk_sc_arg;

typedef struct {
  const char **names; /* NULL-terminated, strings owned by the JSON */
  uint32_t action;    /* libseccomp action, errno already folded in */
  sk_sc_arg *args;
  size_t n_args;
} sk_sc_rule;

typedef struct {
  uint32_t default_action;
  uint32_t *archs;
  size_t n_archs;
  unsigned flags; /* SECCOMP_FILTER_FLAG_* to pass to seccomp(2) */
  sk_sc_rule *rules;
  size_t n_rules;
  const char *listener_path, *listener_metadata;
  bool uses_notify;
  int *notify_fd;   /* separately allocated so a const sk_security can still record it */
  json_object *obj; /* linux.seccomp itself: the compile cache's key */
  void *bpf;        /* compiled by security_seccomp_prepare, else NULL: the init compiles */
  size_t bpf_len;
} sk_seccomp;

typedef struct {
  int resource;
  uint64_t soft, hard;
  const char *name;
} sk_rlimit;

struct sk_security {
  bool has_user;
  uid_t uid;
  gid_t gid;
  gid_t *groups;
  size_t n_groups;
  bool has_umask;
  mode_t umask;

  sk_caps caps;
  bool no_new_privs;

  sk_rlimit *rlimits;
  size_t n_rlimits;

  bool has_oom;
  int oom_score_adj;

  bool has_sched;
  uint32_t sched_policy;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_flags, sched_runtime, sched_deadline, sched_period;

  bool has_ioprio;
  int ioprio; /* already encoded: class << 13 | level */

  bool has_personality;
  unsigned long personality;

  const char *apparmor_profile, *selinux_label, *mount_label;

  sk_seccomp *seccomp; /* NULL: no linux.seccomp */
};

/* caps.c */
int caps_parse(json_object *caps_obj, sk_caps *out, sk_error *err);
/* Bounding set, then (after the caller's uid change under PR_SET_KEEPCAPS) capset and ambient. */
int caps_apply_bounding(const sk_caps *caps, sk_error *err);
int caps_apply_sets(const sk_caps *caps, sk_error *err);
/* Capability number of a "CAP_*" name, or -1. */
int caps_from_name(const char *name);
const char *caps_name(int cap);
/* Format the names of the bits in mask as "CAP_A, CAP_B" into buf. */
void caps_mask_names(uint64_t mask, char *buf, size_t len);

/* seccomp.c */
int seccomp_parse_config(json_object *seccomp_obj, sk_seccomp **out, sk_error *err);
void seccomp_config_free(sk_seccomp *sc);
int seccomp_apply(const sk_seccomp *sc, sk_error *err);
int seccomp_prepare(sk_seccomp *sc, const char *cache_dir, sk_error *err);

#endif
