/* The five capability sets: parse names into masks, drop the bounding set, capset (raw v3 syscall, no libcap)
 * and raise the ambient set. */
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jsonutil.h"
#include "log.h"
#include "security_int.h"
#include "util.h"

/* Indexed by capability number; the order is the kernel's ABI. */
static const char *const cap_names[] = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
    NULL,
};
#define N_CAPS ((int)(sizeof cap_names / sizeof *cap_names) - 1)

static const char *const set_keys[SK_CAP_NSETS] = {"bounding", "effective", "permitted", "inheritable", "ambient"};

const char *const *security_known_capabilities(void) { return cap_names; }

int caps_from_name(const char *name) {
  for (int i = 0; i < N_CAPS; i++)
    if (strcmp(cap_names[i], name) == 0) return i;
  return -1;
}

const char *caps_name(int cap) { return cap >= 0 && cap < N_CAPS ? cap_names[cap] : "CAP_?"; }

void caps_mask_names(uint64_t mask, char *buf, size_t len) {
  size_t off = 0;
  buf[0] = '\0';
  for (int i = 0; i < SK_CAP_MAX && off < len; i++)
    if (mask & (1ULL << i)) {
      int n = snprintf(buf + off, len - off, "%s%s", off ? ", " : "", caps_name(i));
      if (n < 0) break;
      off += (size_t)n;
    }
}

static int read_last_cap(void) {
  char *s = NULL;
  uint64_t n;
  sk_error ignored;
  int last = N_CAPS - 1; /* without /proc: assume the kernel knows what we know */
  if (read_file("/proc/sys/kernel/cap_last_cap", &s, NULL, &ignored) == 0) {
    s[strcspn(s, "\n")] = '\0';
    if (parse_u64(s, &n) && n < SK_CAP_MAX) last = (int)n;
  }
  free(s);
  return last;
}

int caps_parse(json_object *caps_obj, sk_caps *out, sk_error *err) {
  memset(out, 0, sizeof *out);
  if (caps_obj == NULL) return 0;
  out->set = true;
  out->last_cap = read_last_cap();
  for (int s = 0; s < SK_CAP_NSETS; s++) {
    json_object *arr;
    if (j_array(caps_obj, set_keys[s], "process.capabilities", false, &arr, err) < 0) return -1;
    size_t n = arr ? json_object_array_length(arr) : 0;
    for (size_t i = 0; i < n; i++) {
      json_object *v = json_object_array_get_idx(arr, i);
      if (v == NULL || !json_object_is_type(v, json_type_string))
        return sk_fail(err, 0, "process.capabilities.%s[%zu] must be a string", set_keys[s], i);
      const char *name = json_object_get_string(v);
      int cap = caps_from_name(name);
      if (cap < 0)
        return sk_fail(err, 0, "process.capabilities.%s[%zu]: unknown capability \"%s\" (known: CAP_CHOWN … %s)",
                       set_keys[s], i, name, cap_names[N_CAPS - 1]);
      if (cap > out->last_cap) { /* as runc: a config may be newer than the kernel */
        log_warn("process.capabilities.%s: %s is not known to the running kernel (cap_last_cap %d), skipped",
                 set_keys[s], name, out->last_cap);
        continue;
      }
      out->sets[s] |= 1ULL << cap;
    }
  }
  /* The kernel would refuse these with a bare EPERM later; say why now. */
  char names[1024];
  uint64_t bad = out->sets[SK_CAP_EFFECTIVE] & ~out->sets[SK_CAP_PERMITTED];
  if (bad) {
    caps_mask_names(bad, names, sizeof names);
    return sk_fail(err, 0, "process.capabilities.effective: %s must also be in process.capabilities.permitted", names);
  }
  /* An ambient capability must be permitted and inheritable. runc's own `runc spec` lists ambient without
   * inheritable and runc then silently raises nothing: do the same, so such configs behave identically. */
  bad = out->sets[SK_CAP_AMBIENT] & ~(out->sets[SK_CAP_PERMITTED] & out->sets[SK_CAP_INHERITABLE]);
  if (bad) {
    caps_mask_names(bad, names, sizeof names);
    log_debug("process.capabilities.ambient: %s not both permitted and inheritable, not raised (as runc)", names);
    out->sets[SK_CAP_AMBIENT] &= ~bad;
  }
  return 0;
}

int caps_apply_bounding(const sk_caps *caps, sk_error *err) {
  if (!caps->set) return 0;
  for (int cap = 0; cap <= caps->last_cap; cap++) {
    if (caps->sets[SK_CAP_BOUNDING] & (1ULL << cap)) continue;
    int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (r == 0) continue;                /* already gone: no need for CAP_SETPCAP */
    if (r < 0 && errno == EINVAL) break; /* past what this kernel knows */
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
      return sk_fail(err, errno, "dropping %s from the bounding set%s", caps_name(cap),
                     errno == EPERM ? " (needs CAP_SETPCAP)" : "");
  }
  return 0;
}

static int capget_self(struct __user_cap_data_struct data[2]) {
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  return (int)syscall(SYS_capget, &hdr, data);
}

int caps_apply_sets(const sk_caps *caps, sk_error *err) {
  if (!caps->set) return 0;
  struct __user_cap_data_struct cur[2], want[2];
  char names[1024];
  if (capget_self(cur) < 0) return sk_fail(err, errno, "capget");
  uint64_t have = (uint64_t)cur[0].permitted | (uint64_t)cur[1].permitted << 32;
  uint64_t missing = (caps->sets[SK_CAP_PERMITTED] | caps->sets[SK_CAP_EFFECTIVE]) & ~have;
  if (missing) { /* e.g. CAP_SYS_RESOURCE on a host whose root was started without it */
    caps_mask_names(missing, names, sizeof names);
    return sk_fail(err, EPERM,
                   "capset: %s asked for in process.capabilities but not held by the runtime (this host's root lacks "
                   "it); remove it from the config or run on a host that grants it",
                   names);
  }
  const uint64_t e = caps->sets[SK_CAP_EFFECTIVE], p = caps->sets[SK_CAP_PERMITTED], i = caps->sets[SK_CAP_INHERITABLE];
  for (int w = 0; w < 2; w++) {
    want[w].effective = (uint32_t)(e >> (32 * w));
    want[w].permitted = (uint32_t)(p >> (32 * w));
    want[w].inheritable = (uint32_t)(i >> (32 * w));
  }
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  if (syscall(SYS_capset, &hdr, want) < 0) {
    int saved = errno;
    uint64_t bnd = 0;
    for (int cap = 0; cap <= caps->last_cap; cap++)
      if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) bnd |= 1ULL << cap;
    uint64_t cur_inh = (uint64_t)cur[0].inheritable | (uint64_t)cur[1].inheritable << 32;
    uint64_t bad_inh = i & ~(cur_inh | bnd);
    if (saved == EPERM && bad_inh) {
      caps_mask_names(bad_inh, names, sizeof names);
      return sk_fail(err, saved, "capset: inheritable %s not in the bounding set", names);
    }
    return sk_fail(err, saved, "capset (effective %#llx, permitted %#llx, inheritable %#llx)", (unsigned long long)e,
                   (unsigned long long)p, (unsigned long long)i);
  }
  /* Ambient: clear what was inherited, then raise exactly the configured set (needs permitted+inheritable). */
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) {
    if (errno == EINVAL && caps->sets[SK_CAP_AMBIENT] == 0) return 0; /* kernel < 4.3 */
    return sk_fail(err, errno, "clearing the ambient capability set");
  }
  for (int cap = 0; cap <= caps->last_cap; cap++)
    if (caps->sets[SK_CAP_AMBIENT] & (1ULL << cap))
      if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
        return sk_fail(err, errno, "raising %s in the ambient set", caps_name(cap));
  return 0;
}
