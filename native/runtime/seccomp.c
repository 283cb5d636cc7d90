/* linux.seccomp: parsed and validated into plain structs in the runtime (every config error surfaces before
 * anything exists), compiled with libseccomp and loaded in the container's init. The program is exported and
 * loaded with seccomp(2) ourselves, so every filter flag the kernel knows works (libseccomp 2.5 lacks
 * WAIT_KILLABLE_RECV) and the NOTIFY listener fd comes straight from the kernel. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "jsonutil.h"
#include "log.h"
#include "security_int.h"
#include "util.h"

#define W "linux.seccomp"

typedef struct {
  const char *name;
  uint32_t value;
} name_val;

/* Each list once, as X-macros: the lookup tables and the `features` name lists cannot drift apart. */
// clang-format off
#define ACTIONS(X)                                \
  X(SCMP_ACT_KILL, SCMP_ACT_KILL)                 \
  X(SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_PROCESS) \
  X(SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL_THREAD)   \
  X(SCMP_ACT_TRAP, SCMP_ACT_TRAP)                 \
  X(SCMP_ACT_ERRNO, SCMP_ACT_ERRNO(0))            \
  X(SCMP_ACT_TRACE, SCMP_ACT_TRACE(0))            \
  X(SCMP_ACT_ALLOW, SCMP_ACT_ALLOW)               \
  X(SCMP_ACT_LOG, SCMP_ACT_LOG)                   \
  X(SCMP_ACT_NOTIFY, SCMP_ACT_NOTIFY)
#define OPERATORS(X)                        \
  X(SCMP_CMP_NE, SCMP_CMP_NE)               \
  X(SCMP_CMP_LT, SCMP_CMP_LT)               \
  X(SCMP_CMP_LE, SCMP_CMP_LE)               \
  X(SCMP_CMP_EQ, SCMP_CMP_EQ)               \
  X(SCMP_CMP_GE, SCMP_CMP_GE)               \
  X(SCMP_CMP_GT, SCMP_CMP_GT)               \
  X(SCMP_CMP_MASKED_EQ, SCMP_CMP_MASKED_EQ)
#define FLAGS(X)                                                                  \
  X(SECCOMP_FILTER_FLAG_TSYNC, SECCOMP_FILTER_FLAG_TSYNC)                         \
  X(SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_LOG)                             \
  X(SECCOMP_FILTER_FLAG_SPEC_ALLOW, SECCOMP_FILTER_FLAG_SPEC_ALLOW)               \
  X(SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
/* Only what this libseccomp can generate code for. */
#ifdef SCMP_ARCH_LOONGARCH64
#define ARCH_LOONGARCH(X) X(SCMP_ARCH_LOONGARCH64, SCMP_ARCH_LOONGARCH64)
#else
#define ARCH_LOONGARCH(X)
#endif
#ifdef SCMP_ARCH_M68K
#define ARCH_M68K(X) X(SCMP_ARCH_M68K, SCMP_ARCH_M68K)
#else
#define ARCH_M68K(X)
#endif
#ifdef SCMP_ARCH_SH
#define ARCH_SH(X) X(SCMP_ARCH_SH, SCMP_ARCH_SH) X(SCMP_ARCH_SHEB, SCMP_ARCH_SHEB)
#else
#define ARCH_SH(X)
#endif
#define ARCHS(X)                                  \
  X(SCMP_ARCH_X86, SCMP_ARCH_X86)                 \
  X(SCMP_ARCH_X86_64, SCMP_ARCH_X86_64)           \
  X(SCMP_ARCH_X32, SCMP_ARCH_X32)                 \
  X(SCMP_ARCH_ARM, SCMP_ARCH_ARM)                 \
  X(SCMP_ARCH_AARCH64, SCMP_ARCH_AARCH64)         \
  ARCH_LOONGARCH(X)                               \
  ARCH_M68K(X)                                    \
  X(SCMP_ARCH_MIPS, SCMP_ARCH_MIPS)               \
  X(SCMP_ARCH_MIPS64, SCMP_ARCH_MIPS64)           \
  X(SCMP_ARCH_MIPS64N32, SCMP_ARCH_MIPS64N32)     \
  X(SCMP_ARCH_MIPSEL, SCMP_ARCH_MIPSEL)           \
  X(SCMP_ARCH_MIPSEL64, SCMP_ARCH_MIPSEL64)       \
  X(SCMP_ARCH_MIPSEL64N32, SCMP_ARCH_MIPSEL64N32) \
  X(SCMP_ARCH_PPC, SCMP_ARCH_PPC)                 \
  X(SCMP_ARCH_PPC64, SCMP_ARCH_PPC64)             \
  X(SCMP_ARCH_PPC64LE, SCMP_ARCH_PPC64LE)         \
  X(SCMP_ARCH_S390, SCMP_ARCH_S390)               \
  X(SCMP_ARCH_S390X, SCMP_ARCH_S390X)             \
  ARCH_SH(X)                                      \
  X(SCMP_ARCH_PARISC, SCMP_ARCH_PARISC)           \
  X(SCMP_ARCH_PARISC64, SCMP_ARCH_PARISC64)       \
  X(SCMP_ARCH_RISCV64, SCMP_ARCH_RISCV64)
// clang-format on

#define ENTRY(n, v) {#n, v},
#define NAME(n, v) #n,
static const name_val actions[] = {ACTIONS(ENTRY){NULL, 0}};
static const name_val operators[] = {OPERATORS(ENTRY){NULL, 0}};
static const name_val flags[] = {FLAGS(ENTRY){NULL, 0}};
static const name_val archs[] = {ARCHS(ENTRY){NULL, 0}};
static const char *const action_names[] = {ACTIONS(NAME) NULL};
static const char *const operator_names[] = {OPERATORS(NAME) NULL};
static const char *const flag_names[] = {FLAGS(NAME) NULL};
static const char *const arch_names[] = {ARCHS(NAME) NULL};

const char *const *security_seccomp_actions(void) { return action_names; }
const char *const *security_seccomp_operators(void) { return operator_names; }
const char *const *security_seccomp_archs(void) { return arch_names; }
const char *const *security_seccomp_known_flags(void) { return flag_names; }

static const name_val *lookup(const name_val *tbl, const char *name) {
  for (; tbl->name; tbl++)
    if (strcmp(tbl->name, name) == 0) return tbl;
  return NULL;
}

/* A flag is supported when seccomp(2) gets as far as reading the (NULL) program: EFAULT, not EINVAL. */
static bool kernel_has_flag(unsigned long flag) {
  if (flag == SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) flag |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
  return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flag, NULL) < 0 && errno == EFAULT;
}

bool security_seccomp_flag_supported(const char *flag) {
  const name_val *f = lookup(flags, flag);
  return f != NULL && kernel_has_flag(f->value);
}

/* action name + optional errnoRet → libseccomp action. `where` names the object holding both. */
static int parse_action(json_object *obj, const char *akey, const char *ekey, const char *where, uint32_t *out,
                        sk_error *err) {
  const char *name = NULL;
  uint64_t ret = EPERM;
  if (j_string(obj, akey, where, true, &name, err) < 0) return -1;
  const name_val *a = lookup(actions, name);
  if (a == NULL) return sk_fail(err, 0, "%s.%s: unknown action \"%s\"", where, akey, name);
  bool has_ret = j_get(obj, ekey) != NULL;
  if (j_uint64(obj, ekey, where, false, &ret, err) < 0) return -1;
  if (a->value == SCMP_ACT_ERRNO(0) || a->value == SCMP_ACT_TRACE(0)) {
    if (ret > 0xffff) return sk_fail(err, 0, "%s.%s must be at most 65535", where, ekey);
    *out = a->value | (uint32_t)ret;
  } else if (has_ret) {
    return sk_fail(err, 0, "%s.%s is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not %s", where, ekey, name);
  } else {
    *out = a->value;
  }
  return 0;
}

static int parse_args(json_object *arr, const char *where, sk_sc_rule *rule, sk_error *err) {
  size_t n = json_object_array_length(arr);
  char w[256];
  if (n == 0) return 0;
  rule->args = calloc(n, sizeof *rule->args);
  if (rule->args == NULL) return sk_fail(err, errno, "allocating %s.args", where);
  for (size_t i = 0; i < n; i++) {
    json_object *a = json_object_array_get_idx(arr, i);
    sk_sc_arg *arg = &rule->args[i];
    const char *op = NULL;
    uint64_t index = 0;
    snprintf(w, sizeof w, "%s.args[%zu]", where, i);
    if (a == NULL || !json_object_is_type(a, json_type_object)) return sk_fail(err, 0, "%s must be an object", w);
    if (j_uint64(a, "index", w, true, &index, err) < 0 || j_uint64(a, "value", w, true, &arg->value, err) < 0 ||
        j_uint64(a, "valueTwo", w, false, &arg->value_two, err) < 0 || j_string(a, "op", w, true, &op, err) < 0)
      return -1;
    if (index > 5)
      return sk_fail(err, 0, "%s.index must be 0 to 5 (a syscall has six arguments), not %llu", w,
                     (unsigned long long)index);
    const name_val *o = lookup(operators, op);
    if (o == NULL) return sk_fail(err, 0, "%s.op: unknown operator \"%s\"", w, op);
    arg->index = (unsigned)index;
    arg->op = (int)o->value;
    rule->n_args++;
  }
  return 0;
}

void seccomp_config_free(sk_seccomp *sc) {
  if (sc == NULL) return;
  for (size_t i = 0; i < sc->n_rules; i++) {
    free(sc->rules[i].names);
    free(sc->rules[i].args);
  }
  free(sc->rules);
  free(sc->archs);
  free(sc->bpf);
  free(sc->notify_fd);
  free(sc);
}

int seccomp_parse_config(json_object *obj, sk_seccomp **out, sk_error *err) {
  char w[128];
  json_object *arr;
  *out = NULL;
  sk_seccomp *sc = calloc(1, sizeof *sc);
  if (sc == NULL || (sc->notify_fd = malloc(sizeof *sc->notify_fd)) == NULL) {
    free(sc);
    return sk_fail(err, ENOMEM, "allocating " W);
  }
  *sc->notify_fd = -1;
  sc->obj = obj;

  if (parse_action(obj, "defaultAction", "defaultErrnoRet", W, &sc->default_action, err) < 0) goto fail;
  if (sc->default_action == SCMP_ACT_NOTIFY) {
    sk_fail(err, 0, W ".defaultAction: SCMP_ACT_NOTIFY cannot be the default action");
    goto fail;
  }

  if (j_array(obj, "architectures", W, false, &arr, err) < 0) goto fail;
  if (arr) {
    size_t n = json_object_array_length(arr);
    sc->archs = calloc(n ? n : 1, sizeof *sc->archs);
    if (sc->archs == NULL) {
      sk_fail(err, errno, "allocating " W ".architectures");
      goto fail;
    }
    for (size_t i = 0; i < n; i++) {
      json_object *v = json_object_array_get_idx(arr, i);
      const name_val *a =
          v && json_object_is_type(v, json_type_string) ? lookup(archs, json_object_get_string(v)) : NULL;
      if (a == NULL) {
        sk_fail(err, 0, W ".architectures[%zu]: unknown or unsupported architecture %s", i,
                v ? json_object_to_json_string(v) : "null");
        goto fail;
      }
      sc->archs[sc->n_archs++] = a->value;
    }
  }

  if (j_array(obj, "syscalls", W, false, &arr, err) < 0) goto fail;
  if (arr) {
    size_t n = json_object_array_length(arr);
    sc->rules = calloc(n ? n : 1, sizeof *sc->rules);
    if (sc->rules == NULL) {
      sk_fail(err, errno, "allocating " W ".syscalls");
      goto fail;
    }
    for (size_t i = 0; i < n; i++) {
      json_object *s = json_object_array_get_idx(arr, i), *args;
      sk_sc_rule *rule = &sc->rules[sc->n_rules++];
      snprintf(w, sizeof w, W ".syscalls[%zu]", i);
      if (s == NULL || !json_object_is_type(s, json_type_object)) {
        sk_fail(err, 0, "%s must be an object", w);
        goto fail;
      }
      if (j_strv(s, "names", w, true, &rule->names, err) < 0) goto fail;
      if (rule->names[0] == NULL) {
        sk_fail(err, 0, "%s.names must not be empty", w);
        goto fail;
      }
      if (parse_action(s, "action", "errnoRet", w, &rule->action, err) < 0) goto fail;
      if (j_array(s, "args", w, false, &args, err) < 0) goto fail;
      if (args && parse_args(args, w, rule, err) < 0) goto fail;
      if (rule->action == SCMP_ACT_NOTIFY) sc->uses_notify = true;
    }
  }

  if (j_string(obj, "listenerPath", W, false, &sc->listener_path, err) < 0 ||
      j_string(obj, "listenerMetadata", W, false, &sc->listener_metadata, err) < 0)
    goto fail;
  if (sc->uses_notify && (sc->listener_path == NULL || !*sc->listener_path)) {
    sk_fail(err, 0, W ": SCMP_ACT_NOTIFY needs " W ".listenerPath (the socket that receives the notify fd)");
    goto fail;
  }
  if (sc->listener_path && !sc->uses_notify) log_debug(W ".listenerPath is set but no rule uses SCMP_ACT_NOTIFY");

  if (j_array(obj, "flags", W, false, &arr, err) < 0) goto fail;
  for (size_t i = 0, n = arr ? json_object_array_length(arr) : 0; i < n; i++) {
    json_object *v = json_object_array_get_idx(arr, i);
    const char *name = v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
    const name_val *f = lookup(flags, name);
    if (f == NULL) {
      sk_fail(err, 0, W ".flags[%zu]: unknown flag %s", i, v ? json_object_to_json_string(v) : "null");
      goto fail;
    }
    if (f->value == SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV && !sc->uses_notify) {
      sk_fail(err, 0, W ".flags[%zu]: %s only applies to filters with SCMP_ACT_NOTIFY rules", i, name);
      goto fail;
    }
    if (!kernel_has_flag(f->value)) {
      sk_fail(err, 0, W ".flags[%zu]: the running kernel does not support %s; remove it from the config", i, name);
      goto fail;
    }
    sc->flags |= f->value;
  }
  /* The init is single-threaded, so TSYNC changes nothing, and the kernel refuses it with a listener. */
  sc->flags &= ~(unsigned)SECCOMP_FILTER_FLAG_TSYNC;
  if (sc->uses_notify) sc->flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
  *out = sc;
  return 0;
fail:
  seccomp_config_free(sc);
  return -1;
}

/* The kernel allows one comparison per argument in a rule; several on the same argument mean "any of them"
 * (runc's reading), so they become one rule each. */
static int add_rule(scmp_filter_ctx ctx, const sk_sc_rule *rule, int nr) {
  struct scmp_arg_cmp cmp[6];
  bool seen[6] = {false}, repeated = false;
  for (size_t i = 0; i < rule->n_args; i++) {
    const sk_sc_arg *a = &rule->args[i];
    repeated |= seen[a->index];
    seen[a->index] = true;
  }
  if (rule->n_args == 0) return seccomp_rule_add(ctx, rule->action, nr, 0);
  for (size_t i = 0; i < rule->n_args; i++) {
    const sk_sc_arg *a = &rule->args[i];
    struct scmp_arg_cmp c = {
        .arg = a->index, .op = (enum scmp_compare)a->op, .datum_a = a->value, .datum_b = a->value_two};
    if (repeated) {
      int r = seccomp_rule_add_array(ctx, rule->action, nr, 1, &c);
      if (r < 0) return r;
    } else {
      cmp[i] = c;
    }
  }
  return repeated ? 0 : seccomp_rule_add_array(ctx, rule->action, nr, (unsigned)rule->n_args, cmp);
}

static int build(const sk_seccomp *sc, scmp_filter_ctx ctx, sk_error *err) {
  int r;
  /* A binary tree of syscalls: Docker's ~350 names otherwise cost a linear scan on every syscall. */
  if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)) < 0)
    log_debug("seccomp: no binary tree: %s", strerror(-r));
  for (size_t i = 0; i < sc->n_archs; i++)
    if ((r = seccomp_arch_add(ctx, sc->archs[i])) < 0 && r != -EEXIST)
      return sk_fail(err, -r, W ".architectures[%zu]: adding the architecture", i);
  for (size_t i = 0; i < sc->n_rules; i++) {
    const sk_sc_rule *rule = &sc->rules[i];
    if (rule->action == sc->default_action) continue; /* libseccomp refuses these; they change nothing */
    for (size_t k = 0; rule->names[k]; k++) {
      int nr = seccomp_syscall_resolve_name(rule->names[k]);
      if (nr == __NR_SCMP_ERROR) { /* as runc: a profile may name syscalls newer than libseccomp */
        log_debug(W ".syscalls[%zu]: unknown syscall %s skipped", i, rule->names[k]);
        continue;
      }
      if ((r = add_rule(ctx, rule, nr)) < 0)
        return sk_fail(err, -r, W ".syscalls[%zu]: adding the rule for %s", i, rule->names[k]);
    }
  }
  return 0;
}

/* Compile the config into a BPF program (malloc'd into *out, *len bytes). */
static int compile(const sk_seccomp *sc, void **out, size_t *len_out, sk_error *err) {
  scmp_filter_ctx ctx = seccomp_init(sc->default_action);
  if (ctx == NULL) return sk_fail(err, EINVAL, "seccomp: creating the filter");
  int ret = -1, fd = -1, r;
  void *buf = NULL;
  if (build(sc, ctx, err) < 0) goto out;
  /* libseccomp 2.5 only exports to an fd. */
  fd = memfd_create("skiff-seccomp", MFD_CLOEXEC);
  if (fd < 0) {
    sk_fail(err, errno, "seccomp: memfd_create");
    goto out;
  }
  if ((r = seccomp_export_bpf(ctx, fd)) < 0) {
    sk_fail(err, -r, "seccomp: compiling the filter");
    goto out;
  }
  off_t len = lseek(fd, 0, SEEK_END);
  if (len <= 0 || len % (off_t)sizeof(struct sock_filter) != 0 || (buf = malloc((size_t)len)) == NULL ||
      pread(fd, buf, (size_t)len, 0) != len) {
    sk_fail(err, errno ? errno : EIO, "seccomp: reading the compiled filter");
    goto out;
  }
  if (len / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS) {
    sk_fail(err, E2BIG, "seccomp: the filter has %lld instructions, the kernel takes at most %d",
            (long long)(len / (off_t)sizeof(struct sock_filter)), BPF_MAXINSNS);
    goto out;
  }
  *out = buf;
  *len_out = (size_t)len;
  buf = NULL;
  ret = 0;
out:
  free(buf);
  if (fd >= 0) close(fd);
  seccomp_release(ctx);
  return ret;
}

static int load(const sk_seccomp *sc, const void *bpf, size_t len, sk_error *err) {
  struct sock_fprog prog = {.len = (unsigned short)(len / sizeof(struct sock_filter)), .filter = (void *)bpf};
  long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, sc->flags, &prog);
  if (r < 0)
    return sk_fail(err, errno, "seccomp: loading the filter%s",
                   errno == EACCES ? " (needs CAP_SYS_ADMIN, or process.noNewPrivileges)" : "");
  if (sc->flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) *sc->notify_fd = (int)r;
  return 0;
}

int seccomp_apply(const sk_seccomp *sc, sk_error *err) {
  if (sc->bpf) return load(sc, sc->bpf, sc->bpf_len, err);
  void *bpf;
  size_t len;
  if (compile(sc, &bpf, &len, err) < 0) return -1;
  int r = load(sc, bpf, len, err);
  free(bpf);
  return r;
}

/* The compile cache. Compiling Docker's profile for x86_64+x86+x32 costs ~10 ms, loading it ~0.3 ms, and nearly
 * every container uses the same profile. An entry is "SKSC1\n", the key length and program length (u32 each), the
 * key, then the program. The key is the whole input (format, libseccomp version, the seccomp JSON), compared byte
 * for byte on a hit: the file name is only a hash, so a crafted profile cannot pose as another one. */
#define CACHE_MAGIC "SKSC1\n"

static char *cache_key(const sk_seccomp *sc, size_t *len) {
  const struct scmp_version *v = seccomp_version();
  const char *json = json_object_to_json_string_ext(sc->obj, JSON_C_TO_STRING_PLAIN);
  char *key = NULL;
  int n = asprintf(&key, "skiff-seccomp 1 libseccomp %u.%u.%u arch %u\n%s", v->major, v->minor, v->micro,
                   seccomp_arch_native(), json);
  if (n < 0) return NULL;
  *len = (size_t)n;
  return key;
}

static uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
  return h;
}

static bool cache_read(const char *path, const char *key, size_t key_len, sk_seccomp *sc) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  struct stat st;
  char *buf = NULL;
  bool ok = false;
  uint32_t kl, bl;
  const size_t hdr = sizeof CACHE_MAGIC - 1 + 2 * sizeof(uint32_t);
  /* Only our own, unshared files: anyone else able to write here could choose the filter. */
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022) ||
      (size_t)st.st_size < hdr || (buf = malloc((size_t)st.st_size)) == NULL ||
      pread(fd, buf, (size_t)st.st_size, 0) != st.st_size)
    goto out;
  memcpy(&kl, buf + sizeof CACHE_MAGIC - 1, sizeof kl);
  memcpy(&bl, buf + sizeof CACHE_MAGIC - 1 + sizeof kl, sizeof bl);
  if (memcmp(buf, CACHE_MAGIC, sizeof CACHE_MAGIC - 1) != 0 || kl != key_len || (size_t)st.st_size != hdr + kl + bl ||
      bl == 0 || bl % sizeof(struct sock_filter) != 0 || bl / sizeof(struct sock_filter) > BPF_MAXINSNS ||
      memcmp(buf + hdr, key, key_len) != 0)
    goto out;
  if ((sc->bpf = malloc(bl)) == NULL) goto out;
  memcpy(sc->bpf, buf + hdr + kl, bl);
  sc->bpf_len = bl;
  ok = true;
out:
  free(buf);
  close(fd);
  return ok;
}

/* Best effort: a failure to cache only costs the next container the compile. */
static void cache_write(const char *dir, const char *path, const char *key, size_t key_len, const sk_seccomp *sc) {
  char tmp[PATH_MAX];
  uint32_t kl = (uint32_t)key_len, bl = (uint32_t)sc->bpf_len;
  if (mkdir(dir, 0700) < 0 && errno != EEXIST) return;
  if (snprintf(tmp, sizeof tmp, "%s/.tmp-XXXXXX", dir) >= (int)sizeof tmp) return;
  int fd = mkostemp(tmp, O_CLOEXEC); /* a name of its own: concurrent creates never share a temp file */
  if (fd < 0) return;
  bool ok = write_all(fd, CACHE_MAGIC, sizeof CACHE_MAGIC - 1) == 0 && write_all(fd, &kl, sizeof kl) == 0 &&
            write_all(fd, &bl, sizeof bl) == 0 && write_all(fd, key, key_len) == 0 &&
            write_all(fd, sc->bpf, sc->bpf_len) == 0;
  close(fd);
  if (!ok || rename(tmp, path) < 0) unlink(tmp);
}

int seccomp_prepare(sk_seccomp *sc, const char *cache_dir, sk_error *err) {
  if (sc->bpf) return 0;
  char path[PATH_MAX], *key = NULL;
  size_t key_len = 0;
  if (cache_dir && (key = cache_key(sc, &key_len)) != NULL) {
    snprintf(path, sizeof path, "%s/%016llx.bpf", cache_dir, (unsigned long long)fnv1a(key, key_len));
    if (cache_read(path, key, key_len, sc)) {
      log_debug("seccomp: compiled filter from %s", path);
      free(key);
      return 0;
    }
  }
  int r = compile(sc, &sc->bpf, &sc->bpf_len, err);
  if (r == 0 && key) cache_write(cache_dir, path, key, key_len, sc);
  free(key);
  return r;
}

int security_seccomp_prepare(sk_security *sec, const char *cache_dir, sk_error *err) {
  return sec->seccomp ? seccomp_prepare(sec->seccomp, cache_dir, err) : 0;
}

int security_seccomp_send_listener(const sk_security *sec, int notify_fd, int pid, json_object *state, sk_error *err) {
  const sk_seccomp *sc = sec->seccomp;
  if (sc == NULL || sc->listener_path == NULL || notify_fd < 0) return 0;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(sc->listener_path) >= sizeof addr.sun_path)
    return sk_fail(err, ENAMETOOLONG, W ".listenerPath %s", sc->listener_path);
  strcpy(addr.sun_path, sc->listener_path);

  /* The container process state, per the spec's "Seccomp State". */
  json_object *msg = json_object_new_object(), *fds = json_object_new_array();
  json_object *ver = j_get(state, "ociVersion");
  json_object_object_add(msg, "ociVersion", json_object_new_string(ver ? json_object_get_string(ver) : "1.2.0"));
  json_object_array_add(fds, json_object_new_string("seccompFd"));
  json_object_object_add(msg, "fds", fds);
  json_object_object_add(msg, "pid", json_object_new_int(pid));
  if (sc->listener_metadata) json_object_object_add(msg, "metadata", json_object_new_string(sc->listener_metadata));
  if (state) json_object_object_add(msg, "state", json_object_get(state));
  const char *text = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN);

  int ret = -1, s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    sk_fail(err, errno, "seccomp listener: socket");
    goto out;
  }
  if (connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) {
    sk_fail(err, errno, "seccomp listener: connecting to %s", sc->listener_path);
    goto out;
  }
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl = {0};
  struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text)};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &notify_fd, sizeof(int));
  ssize_t n;
  do n = sendmsg(s, &mh, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    sk_fail(err, errno, "seccomp listener: sending the notify fd to %s", sc->listener_path);
    goto out;
  }
  if ((size_t)n < iov.iov_len) {
    sk_fail(err, EMSGSIZE, "seccomp listener: short write to %s", sc->listener_path);
    goto out;
  }
  ret = 0;
out:
  if (s >= 0) close(s);
  json_object_put(msg);
  return ret;
}
