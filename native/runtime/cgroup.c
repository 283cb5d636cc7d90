/* Control groups, v1 and v2: see cgroup.h. The config is parsed and validated up front into `res`, the
 * hierarchies are resolved once (mountinfo read at most once per process), and later commands get all of it
 * back from the saved JSON without looking at /proc again. */
#include "cgroup.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "jsonutil.h"
#include "log.h"
#include "util.h"

#define CG_ROOT "/sys/fs/cgroup"
#define UNSET INT64_MIN /* a numeric resource the config does not set */

enum {
  C_CPU,
  C_CPUACCT,
  C_CPUSET,
  C_MEMORY,
  C_DEVICES,
  C_FREEZER,
  C_BLKIO,
  C_PIDS,
  C_HUGETLB,
  C_NET_CLS,
  C_NET_PRIO,
  C_PERF,
  C_RDMA,
  C_MISC,
  C_N
};
static const char *const ctrl_names[C_N] = {"cpu",  "cpuacct", "cpuset",  "memory",   "devices",    "freezer", "blkio",
                                            "pids", "hugetlb", "net_cls", "net_prio", "perf_event", "rdma",    "misc"};

typedef struct devrule {
  char type;            /* 'a', 'b', 'c' */
  int64_t major, minor; /* -1: any */
  unsigned access;      /* bits: 1 m, 2 r, 4 w (the BPF_DEVCG_ACC_* values) */
  bool allow;
} devrule;
typedef struct wdev {
  int64_t major, minor, weight, leaf;
} wdev;
typedef struct tdev {
  int64_t major, minor;
  uint64_t rate;
} tdev;
typedef struct hpl {
  const char *size;
  uint64_t limit;
} hpl;
typedef struct prio {
  const char *name;
  int64_t prio;
} prio;

/* linux.resources, validated. Strings point into the JSON the struct was parsed from. */
enum { T_RBPS, T_WBPS, T_RIOPS, T_WIOPS };
typedef struct res {
  int64_t mem_limit, mem_res, mem_swap, swappiness;
  int oom_off, use_hier, check; /* -1 unset, else 0/1 */
  int64_t shares, quota, period, rt_runtime, rt_period, idle, burst;
  const char *cpus, *mems;
  int64_t pids;
  int64_t blk_weight, blk_leaf;
  wdev *wd;
  size_t nwd;
  tdev *thr[4];
  size_t nthr[4];
  hpl *hp;
  size_t nhp;
  int64_t classid;
  prio *prios;
  size_t nprios;
  devrule *dev; /* the user's rules, in order */
  size_t ndev;
  bool dev_set;
  json_object *unified;
} res;

typedef struct hier {
  char *name;    /* as in /proc/self/cgroup: "cpu,cpuacct", "name=systemd"; "" for cgroup2 */
  char *opts;    /* mount(2) data for a cgroup mount of this hierarchy */
  char *mnt;     /* where the hierarchy is mounted */
  char *dir;     /* the container's directory in it */
  unsigned ctrl; /* bit (1 << C_*) per controller */
  bool unified;  /* a cgroup2 tree: the only one in v2, hugetlb's home in hybrid v1 */
  bool created;  /* the leaf directory is ours to remove */
  int made;      /* levels this process created, leaf included (for undoing a failed create) */
} hier;

struct sk_cgroup {
  bool v2;
  char *path; /* the cgroup path, for messages and state */
  hier *h;
  size_t nh;
  sk_cgroup_hierarchy *pub;
  size_t npub;
  json_object *res_json;  /* effective linux.resources (owned) */
  json_object *ldev_json; /* linux.devices reduced to [{type,major,minor}], implicitly allowed (owned) */
  res r;
};

/* runc's default allow list (libcontainer/specconv AllowedDevices), appended after the user's rules. */
static const devrule default_devices[] = {
    {'c', -1, -1, 1, true},  {'b', -1, -1, 1, true}, {'c', 1, 3, 7, true},    {'c', 1, 8, 7, true},
    {'c', 1, 7, 7, true},    {'c', 5, 0, 7, true},   {'c', 1, 5, 7, true},    {'c', 1, 9, 7, true},
    {'c', 136, -1, 7, true}, {'c', 5, 2, 7, true},   {'c', 10, 200, 7, true},
};

/* ---------- small file helpers ---------- */

static int path_join(char *buf, size_t size, const char *dir, const char *file, sk_error *err) {
  if ((size_t)snprintf(buf, size, "%s/%s", dir, file) >= size)
    return sk_fail(err, ENAMETOOLONG, "path %s/%s", dir, file);
  return 0;
}

/* Write one cgroup file; `what` names the config field (or step) for the message. */
static int cg_write(const char *dir, const char *file, const char *val, const char *what, sk_error *err) {
  char p[PATH_MAX];
  if (path_join(p, sizeof p, dir, file, err) < 0) return -1;
  int fd = open(p, O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return sk_fail(err, e, "%s: opening %s%s", what, p,
                   e == ENOENT ? " (controller not enabled or not supported by this kernel)" : "");
  }
  if (write_all(fd, val, strlen(val)) < 0) {
    int e = errno;
    close(fd);
    return sk_fail(err, e, "%s: writing \"%s\" to %s", what, val, p);
  }
  close(fd);
  return 0;
}

/* Read a small file into buf (NUL-terminated, trailing newline kept). -1 with errno on failure. */
static ssize_t cg_read(const char *dir, const char *file, char *buf, size_t size) {
  char p[PATH_MAX];
  if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, file) >= sizeof p) return errno = ENAMETOOLONG, -1;
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, buf + len, size - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return errno = e, -1;
    }
    if (n == 0 || (len += (size_t)n) == size - 1) break;
  }
  close(fd);
  buf[len] = '\0';
  return (ssize_t)len;
}

static char *chomp(char *s) {
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
  return s;
}

static char *xstrdup(const char *s, sk_error *err) {
  char *d = strdup(s ? s : "");
  if (d == NULL) sk_fail(err, ENOMEM, "allocating");
  return d;
}

/* ---------- parsing linux.resources ---------- */

static void res_init(res *r) {
  memset(r, 0, sizeof *r);
  r->mem_limit = r->mem_res = r->mem_swap = r->swappiness = UNSET;
  r->oom_off = r->use_hier = r->check = -1;
  r->shares = r->quota = r->period = r->rt_runtime = r->rt_period = r->idle = r->burst = UNSET;
  r->pids = r->blk_weight = r->blk_leaf = r->classid = UNSET;
}

static void res_free(res *r) {
  free(r->wd);
  for (int i = 0; i < 4; i++) free(r->thr[i]);
  free(r->hp);
  free(r->prios);
  free(r->dev);
  res_init(r);
}

static int bad(sk_error *err, const char *where, const char *key, const char *why) {
  return sk_fail(err, 0, "%s.%s %s", where, key, why);
}

/* A signed value where -1 means unlimited and 0 (or absence) leaves the kernel's value. */
static int get_limit(json_object *o, const char *key, const char *where, int64_t *out, sk_error *err) {
  int64_t v = UNSET;
  if (j_int64(o, key, where, false, &v, err) < 0) return -1;
  if (v == UNSET) return 0;
  if (v < -1) return bad(err, where, key, "must be -1 (unlimited), 0 (unset) or positive");
  if (v != 0) *out = v;
  return 0;
}

/* An unsigned value within [lo, hi]; 0 means unset when zero_unset. */
static int get_range(json_object *o, const char *key, const char *where, int64_t lo, int64_t hi, bool zero_unset,
                     int64_t *out, sk_error *err) {
  json_object *v = j_get(o, key);
  if (v == NULL) return 0;
  int64_t n;
  if (j_int64(o, key, where, false, &n, err) < 0) return -1;
  if (n == 0 && zero_unset) return 0;
  if (n < lo || n > hi) {
    char why[96];
    snprintf(why, sizeof why, "must be %sbetween %" PRId64 " and %" PRId64 " (got %" PRId64 ")",
             zero_unset ? "0 (default) or " : "", lo, hi, n);
    return bad(err, where, key, why);
  }
  *out = n;
  return 0;
}

static int get_tristate(json_object *o, const char *key, const char *where, int *out, sk_error *err) {
  if (j_get(o, key) == NULL) return 0;
  bool b = false;
  if (j_bool(o, key, where, &b, err) < 0) return -1;
  *out = b;
  return 0;
}

static bool cpuset_list_ok(const char *s) {
  for (; *s; s++)
    if (!isdigit((unsigned char)*s) && *s != ',' && *s != '-') return false;
  return true;
}

static size_t alen(json_object *arr) { return arr ? json_object_array_length(arr) : 0; }

/* Element i of the array at where.key, with its dotted path in ew for messages. */
static json_object *elem(json_object *arr, size_t i, const char *where, const char *key, char *ew, size_t size) {
  snprintf(ew, size, "%s.%s[%zu]", where, key, i);
  return json_object_array_get_idx(arr, i);
}

static int check_obj(json_object *e, const char *ew, sk_error *err) {
  if (!json_object_is_type(e, json_type_object)) return sk_fail(err, 0, "%s must be an object", ew);
  return 0;
}

static int get_majmin(json_object *e, const char *ew, bool wildcard, int64_t *maj, int64_t *min, sk_error *err) {
  *maj = *min = -1;
  if (j_int64(e, "major", ew, !wildcard, maj, err) < 0 || j_int64(e, "minor", ew, !wildcard, min, err) < 0) return -1;
  if (*maj < (wildcard ? -1 : 0) || *maj > 0xfffff) return bad(err, ew, "major", "is out of range");
  if (*min < (wildcard ? -1 : 0) || *min > 0xfffff) return bad(err, ew, "minor", "is out of range");
  return 0;
}

static int parse_devices(json_object *arr, const char *where, res *r, sk_error *err) {
  size_t n = json_object_array_length(arr);
  r->dev_set = true;
  if (n == 0) return 0;
  if ((r->dev = calloc(n, sizeof *r->dev)) == NULL) return sk_fail(err, ENOMEM, "allocating device rules");
  for (size_t i = 0; i < alen(arr); i++) {
    char ew[192];
    json_object *e = elem(arr, i, where, "devices", ew, sizeof ew);
    devrule *d = &r->dev[r->ndev++];
    const char *type = "a", *access = "rwm";
    if (check_obj(e, ew, err) < 0 || j_bool(e, "allow", ew, &d->allow, err) < 0) return -1;
    if (j_get(e, "allow") == NULL) return bad(err, ew, "allow", "is required");
    if (j_string(e, "type", ew, false, &type, err) < 0 || j_string(e, "access", ew, false, &access, err) < 0) return -1;
    if (strlen(type) != 1 || !strchr("abc", type[0])) return bad(err, ew, "type", "must be \"a\", \"b\" or \"c\"");
    d->type = type[0];
    if (get_majmin(e, ew, true, &d->major, &d->minor, err) < 0) return -1;
    if (*access == '\0') access = "rwm";
    for (const char *a = access; *a; a++) {
      unsigned bit = *a == 'm' ? 1 : *a == 'r' ? 2 : *a == 'w' ? 4 : 0;
      if (bit == 0 || (d->access & bit)) return bad(err, ew, "access", "must be a combination of r, w and m");
      d->access |= bit;
    }
    if (d->type == 'a') { /* the kernel reads any "a" rule as all devices, all access */
      d->major = d->minor = -1;
      d->access = 7;
    }
  }
  return 0;
}

static int parse_memory(json_object *m, const char *where, res *r, bool warn, sk_error *err) {
  if (get_limit(m, "limit", where, &r->mem_limit, err) < 0 ||
      get_limit(m, "reservation", where, &r->mem_res, err) < 0 || get_limit(m, "swap", where, &r->mem_swap, err) < 0)
    return -1;
  /* runc treats -1 (uint64 max from Docker) as unset */
  if (j_get(m, "swappiness")) {
    int64_t s;
    if (j_int64(m, "swappiness", where, false, &s, err) < 0) return -1;
    if (s != -1 && (s < 0 || s > 100)) return bad(err, where, "swappiness", "must be between 0 and 100");
    if (s != -1) r->swappiness = s;
  }
  if (warn && (j_get(m, "kernel") || j_get(m, "kernelTCP")))
    log_warn("%s.kernel and kernelTCP are deprecated and ignored (kernel memory is accounted with memory)", where);
  if (get_tristate(m, "disableOOMKiller", where, &r->oom_off, err) < 0 ||
      get_tristate(m, "useHierarchy", where, &r->use_hier, err) < 0 ||
      get_tristate(m, "checkBeforeUpdate", where, &r->check, err) < 0)
    return -1;
  return 0;
}

static int parse_cpu(json_object *c, const char *where, res *r, sk_error *err) {
  if (get_range(c, "shares", where, 2, 262144, true, &r->shares, err) < 0 ||
      get_range(c, "period", where, 1000, 1000000, true, &r->period, err) < 0 ||
      get_range(c, "realtimePeriod", where, 1, INT64_MAX, true, &r->rt_period, err) < 0 ||
      get_range(c, "idle", where, 0, 1, false, &r->idle, err) < 0 ||
      get_range(c, "burst", where, 0, INT64_MAX, false, &r->burst, err) < 0)
    return -1;
  if (get_limit(c, "quota", where, &r->quota, err) < 0 ||
      get_limit(c, "realtimeRuntime", where, &r->rt_runtime, err) < 0)
    return -1;
  if (r->quota > 0 && r->quota < 1000) return bad(err, where, "quota", "must be at least 1000 (microseconds)");
  if (j_string(c, "cpus", where, false, &r->cpus, err) < 0 || j_string(c, "mems", where, false, &r->mems, err) < 0)
    return -1;
  if (r->cpus && !cpuset_list_ok(r->cpus)) return bad(err, where, "cpus", "must be a list like \"0-2,4\"");
  if (r->mems && !cpuset_list_ok(r->mems)) return bad(err, where, "mems", "must be a list like \"0-1\"");
  if (r->cpus && !*r->cpus) r->cpus = NULL;
  if (r->mems && !*r->mems) r->mems = NULL;
  return 0;
}

static int parse_blkio(json_object *b, const char *where, res *r, sk_error *err) {
  static const char *const tkeys[4] = {"throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice",
                                       "throttleWriteIOPSDevice"};
  json_object *arr;
  if (get_range(b, "weight", where, 10, 1000, true, &r->blk_weight, err) < 0 ||
      get_range(b, "leafWeight", where, 10, 1000, true, &r->blk_leaf, err) < 0)
    return -1;
  if (j_array(b, "weightDevice", where, false, &arr, err) < 0) return -1;
  if (arr && json_object_array_length(arr)) {
    if ((r->wd = calloc(json_object_array_length(arr), sizeof *r->wd)) == NULL)
      return sk_fail(err, ENOMEM, "allocating");
    for (size_t i = 0; i < alen(arr); i++) {
      char ew[192];
      json_object *e = elem(arr, i, where, "weightDevice", ew, sizeof ew);
      wdev *w = &r->wd[r->nwd++];
      w->weight = w->leaf = UNSET;
      if (check_obj(e, ew, err) < 0 || get_majmin(e, ew, false, &w->major, &w->minor, err) < 0 ||
          get_range(e, "weight", ew, 10, 1000, true, &w->weight, err) < 0 ||
          get_range(e, "leafWeight", ew, 10, 1000, true, &w->leaf, err) < 0)
        return -1;
    }
  }
  for (int t = 0; t < 4; t++) {
    if (j_array(b, tkeys[t], where, false, &arr, err) < 0) return -1;
    if (arr == NULL || json_object_array_length(arr) == 0) continue;
    if ((r->thr[t] = calloc(json_object_array_length(arr), sizeof *r->thr[t])) == NULL)
      return sk_fail(err, ENOMEM, "allocating");
    for (size_t i = 0; i < alen(arr); i++) {
      char ew[192];
      json_object *e = elem(arr, i, where, tkeys[t], ew, sizeof ew);
      tdev *d = &r->thr[t][r->nthr[t]++];
      if (check_obj(e, ew, err) < 0 || get_majmin(e, ew, false, &d->major, &d->minor, err) < 0 ||
          j_uint64(e, "rate", ew, true, &d->rate, err) < 0)
        return -1;
    }
  }
  return 0;
}

static bool page_size_ok(const char *s) {
  const char *p = s;
  while (isdigit((unsigned char)*p)) p++;
  return p > s && strchr("KMG", p[0]) && p[0] && p[1] == 'B' && p[2] == '\0';
}

/* Parse linux.resources (may be NULL) into r. `where` is its dotted path for messages. */
static int res_parse(json_object *o, const char *where, res *r, bool warn, sk_error *err) {
  char w[128];
  json_object *sub, *arr;
  res_init(r);
  if (o == NULL) return 0;
  if (!json_object_is_type(o, json_type_object)) return sk_fail(err, 0, "%s must be an object", where);
#define SUB(key) (snprintf(w, sizeof w, "%s.%s", where, key), j_object(o, key, where, false, &sub, err))
  if (SUB("memory") < 0 || (sub && parse_memory(sub, w, r, warn, err) < 0)) goto fail;
  if (SUB("cpu") < 0 || (sub && parse_cpu(sub, w, r, err) < 0)) goto fail;
  if (SUB("pids") < 0) goto fail;
  if (sub) {
    int64_t l = UNSET;
    if (j_int64(sub, "limit", w, false, &l, err) < 0) goto fail;
    if (l != UNSET && l < -1) {
      bad(err, w, "limit", "must be -1 (unlimited), 0 (unset) or positive");
      goto fail;
    }
    if (l != UNSET && l != 0) r->pids = l;
  }
  if (SUB("blockIO") < 0 || (sub && parse_blkio(sub, w, r, err) < 0)) goto fail;
  if (j_array(o, "hugepageLimits", where, false, &arr, err) < 0) goto fail;
  if (arr && json_object_array_length(arr)) {
    if ((r->hp = calloc(json_object_array_length(arr), sizeof *r->hp)) == NULL) {
      sk_fail(err, ENOMEM, "allocating");
      goto fail;
    }
    for (size_t i = 0; i < alen(arr); i++) {
      char ew[192];
      json_object *e = elem(arr, i, where, "hugepageLimits", ew, sizeof ew);
      hpl *h = &r->hp[r->nhp++];
      if (check_obj(e, ew, err) < 0 || j_string(e, "pageSize", ew, true, &h->size, err) < 0 ||
          j_uint64(e, "limit", ew, true, &h->limit, err) < 0)
        goto fail;
      if (!page_size_ok(h->size)) {
        bad(err, ew, "pageSize", "must look like \"2MB\", \"64KB\" or \"1GB\"");
        goto fail;
      }
    }
  }
  if (SUB("network") < 0) goto fail;
  if (sub) {
    uint64_t id = UINT64_MAX;
    if (j_uint64(sub, "classID", w, false, &id, err) < 0) goto fail;
    if (id != UINT64_MAX) {
      if (id > UINT32_MAX) {
        bad(err, w, "classID", "must fit in 32 bits");
        goto fail;
      }
      r->classid = (int64_t)id;
    }
    if (j_array(sub, "priorities", w, false, &arr, err) < 0) goto fail;
    if (arr && json_object_array_length(arr)) {
      if ((r->prios = calloc(json_object_array_length(arr), sizeof *r->prios)) == NULL) {
        sk_fail(err, ENOMEM, "allocating");
        goto fail;
      }
      for (size_t i = 0; i < alen(arr); i++) {
        char ew[192];
        json_object *e = elem(arr, i, w, "priorities", ew, sizeof ew);
        prio *p = &r->prios[r->nprios++];
        uint64_t pr;
        if (check_obj(e, ew, err) < 0 || j_string(e, "name", ew, true, &p->name, err) < 0 ||
            j_uint64(e, "priority", ew, true, &pr, err) < 0)
          goto fail;
        if (!*p->name || strpbrk(p->name, " \n/")) {
          bad(err, ew, "name", "must be an interface name");
          goto fail;
        }
        p->prio = (int64_t)(pr > UINT32_MAX ? UINT32_MAX : pr);
      }
    }
  }
  if (j_array(o, "devices", where, false, &arr, err) < 0 || (arr && parse_devices(arr, where, r, err) < 0)) goto fail;
  if (SUB("rdma") < 0) goto fail;
  if (sub && json_object_object_length(sub) > 0) {
    sk_fail(err, 0, "%s.rdma: the rdma controller is not supported by skiff-runtime", where);
    goto fail;
  }
  if (SUB("unified") < 0) goto fail;
  if (sub) {
    json_object_object_foreach(sub, k, v) {
      if (!json_object_is_type(v, json_type_string)) {
        sk_fail(err, 0, "%s.unified[\"%s\"] must be a string", where, k);
        goto fail;
      }
      if (!*k || strchr(k, '/') || k[0] == '.') {
        sk_fail(err, 0, "%s.unified: \"%s\" is not a cgroup file name", where, k);
        goto fail;
      }
    }
    if (json_object_object_length(sub) > 0) r->unified = sub;
  }
#undef SUB
  return 0;
fail:
  res_free(r);
  return -1;
}

/* Cross-field checks on the effective values (after merging an update). */
static int res_check(const res *r, bool v2, const char *where, sk_error *err) {
  if (r->mem_swap > 0) {
    if (r->mem_limit == UNSET || r->mem_limit < 0)
      return sk_fail(err, 0, "%s.memory.swap needs memory.limit: swap is the limit of memory plus swap", where);
    if (r->mem_swap < r->mem_limit)
      return sk_fail(err, 0,
                     "%s.memory.swap (%" PRId64 ") must not be below memory.limit (%" PRId64
                     "): swap is the limit of memory plus swap",
                     where, r->mem_swap, r->mem_limit);
  }
  if (r->mem_res > 0 && r->mem_limit > 0 && r->mem_res > r->mem_limit)
    return sk_fail(err, 0, "%s.memory.reservation must not exceed memory.limit", where);
  if (r->burst > 0 && r->quota > 0 && r->burst > r->quota)
    return sk_fail(err, 0, "%s.cpu.burst must not exceed cpu.quota", where);
  if (v2) {
    if (r->rt_runtime != UNSET || r->rt_period != UNSET)
      return sk_fail(err, 0, "%s.cpu.realtimeRuntime/realtimePeriod are not supported on cgroup v2", where);
    if (r->classid != UNSET || r->nprios)
      return sk_fail(err, 0, "%s.network (net_cls/net_prio) is not supported on cgroup v2", where);
    if (r->blk_leaf != UNSET) return sk_fail(err, 0, "%s.blockIO.leafWeight is not supported on cgroup v2", where);
    for (size_t i = 0; i < r->nwd; i++)
      if (r->wd[i].leaf != UNSET)
        return sk_fail(err, 0, "%s.blockIO.weightDevice[%zu].leafWeight is not supported on cgroup v2", where, i);
  } else if (r->unified) {
    return sk_fail(err, 0, "%s.unified needs cgroup v2, but this host uses cgroup v1", where);
  }
  return 0;
}

/* ---------- hierarchies and paths ---------- */

static void hier_free(hier *h) {
  free(h->name);
  free(h->opts);
  free(h->mnt);
  free(h->dir);
}

void cgroup_free(sk_cgroup *cg) {
  if (cg == NULL) return;
  for (size_t i = 0; i < cg->nh; i++) hier_free(&cg->h[i]);
  free(cg->h);
  free(cg->pub);
  free(cg->path);
  res_free(&cg->r);
  json_object_put(cg->res_json);
  json_object_put(cg->ldev_json);
  free(cg);
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s) {
  char *d = s;
  for (; *s; s++) {
    if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
      *d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
      s += 3;
    } else {
      *d++ = *s;
    }
  }
  *d = '\0';
}

/* A hierarchy found in mountinfo, before the container's directory is known. */
typedef struct mnt_ent {
  char *root, *mnt, *name, *opts, *devno;
  unsigned ctrl;
  bool v2;
} mnt_ent;

static void ments_free(mnt_ent *m, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(m[i].root);
    free(m[i].mnt);
    free(m[i].name);
    free(m[i].opts);
    free(m[i].devno);
  }
  free(m);
}

/* Every cgroup (v1) hierarchy mounted, once each, plus the first cgroup2 mount (hybrid hosts). */
static int read_mountinfo(mnt_ent **out, size_t *nout, sk_error *err) {
  char *buf = NULL;
  if (read_file("/proc/self/mountinfo", &buf, NULL, err) < 0) return sk_wrap(err, "finding cgroup mounts");
  mnt_ent *m = NULL;
  size_t n = 0, cap = 0;
  char *save = NULL;
  for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char *sep = strstr(line, " - ");
    if (sep == NULL) continue;
    *sep = '\0';
    char *f[6], *s2 = NULL, *tail = sep + 3;
    int nf = 0;
    for (char *t = strtok_r(line, " ", &s2); t && nf < 6; t = strtok_r(NULL, " ", &s2)) f[nf++] = t;
    char *fstype = strtok_r(tail, " ", &s2), *src = strtok_r(NULL, " ", &s2), *super = strtok_r(NULL, " ", &s2);
    (void)src;
    if (nf < 5 || fstype == NULL || super == NULL) continue;
    bool v2 = strcmp(fstype, "cgroup2") == 0;
    if (!v2 && strcmp(fstype, "cgroup") != 0) continue;
    /* a hierarchy mounted twice (bind mounts): keep the mount under /sys/fs/cgroup, else the first */
    size_t dup = n;
    for (size_t i = 0; i < n && dup == n; i++)
      if (strcmp(m[i].devno, f[2]) == 0 || (v2 && m[i].v2)) dup = i;
    unescape(f[3]);
    unescape(f[4]);
    if (dup < n) {
      if (strncmp(m[dup].mnt, CG_ROOT "/", sizeof CG_ROOT) == 0 || strncmp(f[4], CG_ROOT "/", sizeof CG_ROOT) != 0)
        continue;
      char *root = strdup(f[3]), *mnt = strdup(f[4]);
      if (root == NULL || mnt == NULL) {
        free(root);
        free(mnt);
        goto nomem;
      }
      free(m[dup].root);
      free(m[dup].mnt);
      m[dup].root = root;
      m[dup].mnt = mnt;
      continue;
    }
    char name[256] = "", opts[256] = "";
    unsigned ctrl = 0;
    if (!v2) {
      char *s3 = NULL;
      for (char *o = strtok_r(super, ",", &s3); o; o = strtok_r(NULL, ",", &s3)) {
        int c = -1;
        for (int k = 0; k < C_N; k++)
          if (strcmp(o, ctrl_names[k]) == 0) c = k;
        if (c < 0 && strncmp(o, "name=", 5) != 0) continue; /* rw, clone_children, xattr, ... */
        if (c >= 0) ctrl |= 1u << c;
        size_t l = strlen(name);
        snprintf(name + l, sizeof name - l, "%s%s", l ? "," : "", o);
      }
      if (!*name) continue;
      snprintf(opts, sizeof opts, "%s%s", ctrl ? "" : "none,", name);
    }
    if (n == cap) {
      mnt_ent *nm = realloc(m, (cap = cap ? cap * 2 : 16) * sizeof *m);
      if (nm == NULL) goto nomem;
      m = nm;
    }
    m[n] = (mnt_ent){strdup(f[3]), strdup(f[4]), strdup(name), strdup(opts), strdup(f[2]), ctrl, v2};
    n++;
    if (!m[n - 1].root || !m[n - 1].mnt || !m[n - 1].name || !m[n - 1].opts || !m[n - 1].devno) goto nomem;
  }
  free(buf);
  *out = m;
  *nout = n;
  return 0;
nomem:
  free(buf);
  ments_free(m, n);
  return sk_fail(err, ENOMEM, "reading /proc/self/mountinfo");
}

/* The runtime's own cgroup in the hierarchy called `name` ("" for cgroup2) from /proc/self/cgroup. */
static int own_cgroup(const char *self, const char *name, char *out, size_t size, sk_error *err) {
  const char *p = self;
  while (p && *p) {
    const char *nl = strchr(p, '\n'), *c1 = strchr(p, ':');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    const char *c2 = c1 && c1 < p + len ? memchr(c1 + 1, ':', (size_t)(p + len - c1 - 1)) : NULL;
    if (c2) {
      /* compare the controller lists as sets: "cpu,cpuacct" vs "cpuacct,cpu" */
      size_t nlen = (size_t)(c2 - c1 - 1);
      bool same = nlen == strlen(name);
      if (same && nlen) {
        char a[256];
        snprintf(a, sizeof a, "%.*s", (int)nlen, c1 + 1);
        char *s = NULL;
        for (char *t = strtok_r(a, ",", &s); t && same; t = strtok_r(NULL, ",", &s)) {
          const char *hit = strstr(name, t);
          size_t tl = strlen(t);
          same = hit && (hit == name || hit[-1] == ',') && (hit[tl] == ',' || hit[tl] == '\0');
        }
      }
      if (same) {
        size_t plen = (size_t)(p + len - c2 - 1);
        if (plen >= size) return sk_fail(err, ENAMETOOLONG, "own cgroup path");
        memcpy(out, c2 + 1, plen);
        out[plen] = '\0';
        return 0;
      }
    }
    p = nl ? nl + 1 : NULL;
  }
  return sk_fail(err, ENOENT, "finding the runtime's own cgroup for \"%s\" in /proc/self/cgroup", name);
}

/* Normalise a cgroupsPath: collapse "//" and ".", refuse "..". */
static int normalise(const char *in, char *out, size_t size, sk_error *err) {
  size_t o = 0;
  const char *p = in;
  while (*p) {
    while (*p == '/') p++;
    const char *e = strchrnul(p, '/');
    size_t l = (size_t)(e - p);
    if (l == 2 && p[0] == '.' && p[1] == '.')
      return sk_fail(err, 0, "linux.cgroupsPath \"%s\" must not contain \"..\"", in);
    if (l > 0 && !(l == 1 && p[0] == '.')) {
      if (o + l + 2 > size) return sk_fail(err, ENAMETOOLONG, "linux.cgroupsPath \"%s\"", in);
      out[o++] = '/';
      memcpy(out + o, p, l);
      o += l;
    }
    p = e;
  }
  out[o] = '\0';
  return 0;
}

/* mount point + cgroup path, with the mount's own root removed when the path lies below it. */
static char *join_mount(const char *mnt, const char *root, const char *path) {
  size_t rl = strlen(root);
  if (strcmp(root, "/") != 0 && strncmp(path, root, rl) == 0 && (path[rl] == '/' || path[rl] == '\0')) path += rl;
  char *d = NULL;
  if (asprintf(&d, "%s%s", mnt, path) < 0) return NULL;
  return d;
}

static int add_hier(sk_cgroup *cg, const char *name, const char *opts, const char *mnt, char *dir, unsigned ctrl,
                    bool unified, sk_error *err) {
  hier *nh = realloc(cg->h, (cg->nh + 1) * sizeof *nh);
  if (nh == NULL || dir == NULL) {
    free(dir);
    if (nh) cg->h = nh;
    return sk_fail(err, ENOMEM, "allocating cgroup paths");
  }
  cg->h = nh;
  hier *h = &cg->h[cg->nh];
  *h = (hier){strdup(name), strdup(opts), strdup(mnt), dir, ctrl, unified, false, 0};
  cg->nh++;
  if (!h->name || !h->opts || !h->mnt) return sk_fail(err, ENOMEM, "allocating cgroup paths");
  return 0;
}

static int build_pub(sk_cgroup *cg, sk_error *err) {
  free(cg->pub);
  cg->npub = 0;
  if ((cg->pub = calloc(cg->nh ? cg->nh : 1, sizeof *cg->pub)) == NULL) return sk_fail(err, ENOMEM, "allocating");
  for (size_t i = 0; i < cg->nh; i++)
    if (cg->v2 || !cg->h[i].unified) /* hybrid: the unified tree is ours for hugetlb only */
      cg->pub[cg->npub++] = (sk_cgroup_hierarchy){cg->h[i].name, cg->h[i].opts, cg->h[i].dir};
  return 0;
}

static hier *by_ctrl(const sk_cgroup *cg, int c) {
  if (cg->v2) return cg->nh ? &cg->h[0] : NULL;
  for (size_t i = 0; i < cg->nh; i++)
    if (!cg->h[i].unified && (cg->h[i].ctrl & (1u << c))) return &cg->h[i];
  if (c == C_HUGETLB)
    for (size_t i = 0; i < cg->nh; i++)
      if (cg->h[i].unified) return &cg->h[i];
  return NULL;
}

/* Resolve every hierarchy's directory for cgroupsPath `cp` (already normalised; `relative` as configured). */
static int resolve(sk_cgroup *cg, const char *cp, bool relative, bool want_hugetlb, sk_error *err) {
  char self[4096] = "", own[PATH_MAX], full[PATH_MAX];
  if (relative && cg_read("/proc/self", "cgroup", self, sizeof self) < 0)
    return sk_fail(err, errno, "reading /proc/self/cgroup");
  if (cg->v2) {
    if (relative && own_cgroup(self, "", own, sizeof own, err) < 0) return -1;
    if ((size_t)snprintf(full, sizeof full, "%s%s", relative && strcmp(own, "/") ? own : "", cp) >= sizeof full)
      return sk_fail(err, ENAMETOOLONG, "linux.cgroupsPath");
    char *dir = NULL;
    if (asprintf(&dir, CG_ROOT "%s", full) < 0) dir = NULL;
    if (add_hier(cg, "", "", CG_ROOT, dir, ~0u, true, err) < 0) return -1;
    return (cg->path = xstrdup(full, err)) ? 0 : -1;
  }
  mnt_ent *m = NULL;
  size_t n = 0;
  if (read_mountinfo(&m, &n, err) < 0) return -1;
  bool have_v1_hugetlb = false;
  for (size_t i = 0; i < n; i++) have_v1_hugetlb |= !m[i].v2 && (m[i].ctrl & (1u << C_HUGETLB));
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (m[i].v2 && (have_v1_hugetlb || !want_hugetlb)) continue;
    const char *base = "";
    if (relative) {
      if ((rc = own_cgroup(self, m[i].name, own, sizeof own, err)) < 0) break;
      base = strcmp(own, "/") ? own : "";
    }
    if ((size_t)snprintf(full, sizeof full, "%s%s", base, cp) >= sizeof full) {
      rc = sk_fail(err, ENAMETOOLONG, "linux.cgroupsPath");
      break;
    }
    /* absolute paths are taken from the hierarchy's root as runc does; own paths lose the mount's root */
    char *dir = relative ? join_mount(m[i].mnt, m[i].root, full) : NULL;
    if (!relative && asprintf(&dir, "%s%s", m[i].mnt, full) < 0) dir = NULL;
    rc = add_hier(cg, m[i].name, m[i].opts, m[i].mnt, dir, m[i].v2 ? 1u << C_HUGETLB : m[i].ctrl, m[i].v2, err);
    if (rc == 0 && cg->path == NULL) rc = (cg->path = xstrdup(full, err)) ? 0 : -1;
  }
  ments_free(m, n);
  if (rc == 0 && cg->nh == 0) rc = sk_fail(err, ENOENT, "no cgroup hierarchy is mounted under " CG_ROOT);
  return rc;
}

/* linux.devices are allowed in the device cgroup as runc does, so the nodes the runtime makes are usable. */
static int implicit_devices(json_object *linux_obj, json_object **out, sk_error *err) {
  json_object *arr, *res = json_object_new_array();
  if (res == NULL) return sk_fail(err, ENOMEM, "allocating");
  if (j_array(linux_obj, "devices", "linux", false, &arr, err) < 0) goto fail;
  for (size_t i = 0; i < alen(arr); i++) {
    char ew[192];
    json_object *e = elem(arr, i, "linux", "devices", ew, sizeof ew);
    const char *type = NULL;
    int64_t maj, min;
    if (check_obj(e, ew, err) < 0 || j_string(e, "type", ew, true, &type, err) < 0) goto fail;
    if (strcmp(type, "p") == 0) continue; /* fifos have no device numbers */
    if (strcmp(type, "c") && strcmp(type, "u") && strcmp(type, "b")) {
      bad(err, ew, "type", "must be c, u, b or p");
      goto fail;
    }
    if (get_majmin(e, ew, false, &maj, &min, err) < 0) goto fail;
    json_object *d = json_object_new_object();
    json_object_object_add(d, "type", json_object_new_string(type[0] == 'b' ? "b" : "c"));
    json_object_object_add(d, "major", json_object_new_int64(maj));
    json_object_object_add(d, "minor", json_object_new_int64(min));
    json_object_array_add(res, d);
  }
  *out = res;
  return 0;
fail:
  json_object_put(res);
  return -1;
}

static int check_devices(const sk_cgroup *cg, const res *r, sk_error *err);

int cgroup_parse(json_object *linux_obj, const char *id, sk_cgroup **out, sk_error *err) {
  const char *cp = NULL;
  json_object *resources = NULL;
  char norm[PATH_MAX];
  *out = NULL;
  if (j_string(linux_obj, "cgroupsPath", "linux", false, &cp, err) < 0 ||
      j_object(linux_obj, "resources", "linux", false, &resources, err) < 0)
    return -1;
  if (cp && *cp) {
    const char *c1 = strchr(cp, ':');
    if (c1 && strchr(c1 + 1, ':') && !strchr(cp, '/'))
      return sk_fail(err, 0,
                     "linux.cgroupsPath \"%s\" uses the systemd driver's \"slice:prefix:name\" syntax; "
                     "skiff-runtime manages cgroupfs paths only (use a path such as /machine/%s)",
                     cp, id);
    if (normalise(cp, norm, sizeof norm, err) < 0) return -1;
    if (!*norm) return sk_fail(err, 0, "linux.cgroupsPath \"%s\" must name a cgroup below the root", cp);
  } else {
    if (id == NULL || !*id || strchr(id, '/') || strcmp(id, "..") == 0 || strcmp(id, ".") == 0)
      return sk_fail(err, 0, "container id \"%s\" cannot name a cgroup", id ? id : "");
    snprintf(norm, sizeof norm, "/skiff-runtime/%s", id);
  }
  sk_cgroup *cg = calloc(1, sizeof *cg);
  if (cg == NULL) return sk_fail(err, ENOMEM, "allocating the cgroup");
  res_init(&cg->r);
  struct statfs sfs;
  if (statfs(CG_ROOT, &sfs) < 0) {
    sk_fail(err, errno, "statfs " CG_ROOT);
    goto fail;
  }
  cg->v2 = sfs.f_type == CGROUP2_SUPER_MAGIC;
  if (res_parse(resources, "linux.resources", &cg->r, true, err) < 0 ||
      res_check(&cg->r, cg->v2, "linux.resources", err) < 0 || implicit_devices(linux_obj, &cg->ldev_json, err) < 0)
    goto fail;
  if (resources) cg->res_json = json_object_get(resources);
  if (check_devices(cg, &cg->r, err) < 0) goto fail;
  if (resolve(cg, norm, cp && *cp && cp[0] != '/', cg->r.nhp > 0, err) < 0) goto fail;
  /* config errors for controllers this host lacks, before anything exists */
  if (!cg->v2) {
    static const struct {
      int c;
      const char *what;
    } need[] = {{C_MEMORY, "memory"},           {C_CPU, "cpu"},
                {C_CPUSET, "cpu.cpus/mems"},    {C_PIDS, "pids"},
                {C_BLKIO, "blockIO"},           {C_HUGETLB, "hugepageLimits"},
                {C_NET_CLS, "network.classID"}, {C_NET_PRIO, "network.priorities"},
                {C_DEVICES, "devices"}};
    const res *r = &cg->r;
    bool used[] = {r->mem_limit != UNSET || r->mem_res != UNSET || r->mem_swap != UNSET || r->swappiness != UNSET ||
                       r->oom_off >= 0 || r->use_hier >= 0,
                   r->shares != UNSET || r->quota != UNSET || r->period != UNSET || r->rt_runtime != UNSET ||
                       r->rt_period != UNSET || r->idle != UNSET || r->burst != UNSET,
                   r->cpus || r->mems,
                   r->pids != UNSET,
                   r->blk_weight != UNSET || r->blk_leaf != UNSET || r->nwd || r->nthr[0] || r->nthr[1] || r->nthr[2] ||
                       r->nthr[3],
                   r->nhp > 0,
                   r->classid != UNSET,
                   r->nprios > 0,
                   r->ndev > 0};
    for (size_t i = 0; i < sizeof need / sizeof *need; i++)
      if (used[i] && by_ctrl(cg, need[i].c) == NULL) {
        sk_fail(err, 0, "linux.resources.%s: the %s cgroup controller is not mounted on this host", need[i].what,
                ctrl_names[need[i].c]);
        goto fail;
      }
    if (r->nhp) {
      hier *h = by_ctrl(cg, C_HUGETLB);
      char buf[512];
      if (h->unified && (cg_read(h->mnt, "cgroup.controllers", buf, sizeof buf) < 0 || !strstr(buf, "hugetlb"))) {
        sk_fail(err, 0, "linux.resources.hugepageLimits: the hugetlb cgroup controller is not available");
        goto fail;
      }
    }
  }
  if (build_pub(cg, err) < 0) goto fail;
  *out = cg;
  return 0;
fail:
  cgroup_free(cg);
  return -1;
}

bool cgroup_is_v2(const sk_cgroup *cg) { return cg->v2; }

size_t cgroup_hierarchies(const sk_cgroup *cg, const sk_cgroup_hierarchy **out) {
  *out = cg->pub;
  return cg->npub;
}

/* ---------- device rules ---------- */

/* The effective list: deny everything, then the user's rules, linux.devices, and the defaults. */
static int effective_devices(const sk_cgroup *cg, const res *r, devrule **out, size_t *n, sk_error *err) {
  size_t nl = cg->ldev_json ? json_object_array_length(cg->ldev_json) : 0;
  size_t nd = sizeof default_devices / sizeof *default_devices;
  devrule *v = malloc((1 + r->ndev + nl + nd) * sizeof *v);
  if (v == NULL) return sk_fail(err, ENOMEM, "allocating device rules");
  size_t k = 0;
  v[k++] = (devrule){'a', -1, -1, 7, false};
  for (size_t i = 0; i < r->ndev; i++) v[k++] = r->dev[i];
  for (size_t i = 0; i < nl; i++) {
    json_object *d = json_object_array_get_idx(cg->ldev_json, i);
    v[k++] = (devrule){json_object_get_string(j_get(d, "type"))[0], json_object_get_int64(j_get(d, "major")),
                       json_object_get_int64(j_get(d, "minor")), 7, true};
  }
  for (size_t i = 0; i < nd; i++) v[k++] = default_devices[i];
  *out = v;
  *n = k;
  return 0;
}

static void rule_str(const devrule *d, char *buf, size_t size) {
  char maj[24] = "*", min[24] = "*", acc[4];
  int a = 0;
  if (d->type == 'a') {
    snprintf(buf, size, "a");
    return;
  }
  if (d->major >= 0) snprintf(maj, sizeof maj, "%" PRId64, d->major);
  if (d->minor >= 0) snprintf(min, sizeof min, "%" PRId64, d->minor);
  if (d->access & 2) acc[a++] = 'r';
  if (d->access & 4) acc[a++] = 'w';
  if (d->access & 1) acc[a++] = 'm';
  acc[a] = '\0';
  snprintf(buf, size, "%c %s:%s %s", d->type, maj, min, acc);
}

/* v1 keeps a list of exceptions and can only take back an exact one: denying "c 1:11 w" after allowing
 * "c 1:* rwm" is silently ignored by the kernel. Refuse such lists, as runc does, so that v1 and v2 (the eBPF
 * program, where the last match wins) agree on every list we accept. v[0] is our deny-all, v[1..nuser] the
 * user's rules, the rest implicit. */
static int check_holes(const devrule *v, size_t n, size_t nuser, sk_error *err) {
  devrule *set = malloc(n * sizeof *set);
  size_t ns = 0;
  bool allow_all = false;
  if (set == NULL) return sk_fail(err, ENOMEM, "checking device rules");
  for (size_t i = 0; i < n; i++) {
    const devrule *d = &v[i];
    if (d->type == 'a') {
      allow_all = d->allow;
      ns = 0;
      continue;
    }
    size_t k = ns;
    for (size_t j = 0; j < ns; j++)
      if (set[j].type == d->type && set[j].major == d->major && set[j].minor == d->minor) k = j;
    if (d->allow != allow_all) { /* an exception to the default: add it */
      if (k == ns)
        set[ns++] = *d;
      else
        set[k].access |= d->access;
      continue;
    }
    for (size_t j = 0; j < ns; j++) { /* taking back part of a wider exception cannot work */
      const devrule *w = &set[j];
      if (j == k || w->type != d->type || !(w->access & d->access)) continue;
      if ((w->major == -1 || w->major == d->major) && (w->minor == -1 || w->minor == d->minor)) {
        char a[96], b[96];
        rule_str(d, a, sizeof a);
        rule_str(w, b, sizeof b);
        free(set);
        if (i >= 1 && i <= nuser)
          return sk_fail(err, 0,
                         "linux.resources.devices[%zu]: %s \"%s\" would punch a hole in the earlier wildcard rule "
                         "\"%s\", which cgroup v1 cannot do (runc refuses it too); list the exceptions instead",
                         i - 1, d->allow ? "allowing" : "denying", a, b);
        return sk_fail(err, 0,
                       "linux.resources.devices: the wildcard rule \"%s\" covers the default device rule \"%s\" "
                       "in a way cgroup v1 cannot express",
                       b, a);
      }
    }
    if (k < ns && (set[k].access &= ~d->access) == 0) set[k] = set[--ns];
  }
  free(set);
  return 0;
}

/* v1: one write per rule, in order, to devices.deny or devices.allow. */
static int devices_v1(const char *dir, const devrule *v, size_t n, size_t nuser, sk_error *err) {
  char pa[PATH_MAX], pd[PATH_MAX], rule[96];
  if (path_join(pa, sizeof pa, dir, "devices.allow", err) < 0 || path_join(pd, sizeof pd, dir, "devices.deny", err) < 0)
    return -1;
  int fa = open(pa, O_WRONLY | O_CLOEXEC), fd = open(pd, O_WRONLY | O_CLOEXEC);
  if (fa < 0 || fd < 0) {
    int e = errno;
    if (fa >= 0) close(fa);
    if (fd >= 0) close(fd);
    return sk_fail(err, e, "linux.resources.devices: opening %s", fa < 0 ? pa : pd);
  }
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    rule_str(&v[i], rule, sizeof rule);
    if (write(v[i].allow ? fa : fd, rule, strlen(rule)) >= 0) continue;
    /* the implicit rules may exceed what a restricted parent allows; only the user's must succeed */
    if (errno == EPERM && i > nuser) continue;
    rc = sk_fail(err, errno, "linux.resources.devices: writing \"%s\" to %s", rule, v[i].allow ? pa : pd);
  }
  close(fa);
  close(fd);
  return rc;
}

static long sys_bpf(int cmd, union bpf_attr *attr) { return syscall(__NR_bpf, cmd, attr, sizeof *attr); }

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

/* v2: a BPF_PROG_TYPE_CGROUP_DEVICE program. The rules are tested last to first and the first match decides,
 * which is v1's "last rule wins"; nothing matching means deny (our list starts with "deny all" anyway). */
static int devices_prog(const devrule *v, size_t n, struct bpf_insn **out, size_t *nout, sk_error *err) {
  struct bpf_insn *p = malloc((6 + n * 8 + 2) * sizeof *p);
  if (p == NULL) return sk_fail(err, ENOMEM, "allocating the device program");
  size_t k = 0;
  /* r2 = type, r3 = access, r4 = major, r5 = minor (struct bpf_cgroup_dev_ctx) */
  p[k++] = INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_2, BPF_REG_1, 0, 0);
  p[k++] = INSN(BPF_ALU | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff);
  p[k++] = INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_3, BPF_REG_1, 0, 0);
  p[k++] = INSN(BPF_ALU | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16);
  p[k++] = INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_4, BPF_REG_1, 4, 0);
  p[k++] = INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_5, BPF_REG_1, 8, 0);
  bool all = false;
  for (size_t i = n; i-- > 0;) {
    const devrule *d = &v[i];
    size_t jumps[4], nj = 0;
    if (d->type != 'a') {
      jumps[nj++] = k;
      p[k++] =
          INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, 0, d->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
    }
    if (d->access != 7) { /* every access asked for must be in the rule */
      p[k++] = INSN(BPF_ALU | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0);
      p[k++] = INSN(BPF_ALU | BPF_AND | BPF_K, BPF_REG_1, 0, 0, (int32_t)(~d->access & 7));
      jumps[nj++] = k;
      p[k++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_1, 0, 0, 0);
    }
    if (d->major >= 0) {
      jumps[nj++] = k;
      p[k++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, 0, (int32_t)d->major);
    }
    if (d->minor >= 0) {
      jumps[nj++] = k;
      p[k++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_5, 0, 0, (int32_t)d->minor);
    }
    p[k++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, d->allow ? 1 : 0);
    p[k++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    for (size_t j = 0; j < nj; j++) p[jumps[j]].off = (int16_t)(k - jumps[j] - 1);
    if ((all = nj == 0)) break; /* matches everything: nothing after can run (the verifier refuses dead code) */
  }
  if (!all) {
    p[k++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
    p[k++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  }
  *out = p;
  *nout = k;
  return 0;
}

/* Load the program and attach it to the cgroup; on update, detach the programs attached before. */
static int devices_v2(const char *dir, const devrule *v, size_t n, bool replace, sk_error *err) {
  struct bpf_insn *insns = NULL;
  size_t ni = 0;
  if (devices_prog(v, n, &insns, &ni, err) < 0) return -1;
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  a.insns = (uintptr_t)insns;
  a.insn_cnt = (uint32_t)ni;
  a.license = (uintptr_t) "GPL";
  snprintf(a.prog_name, sizeof a.prog_name, "skiff_devices");
  int prog = (int)sys_bpf(BPF_PROG_LOAD, &a);
  if (prog < 0 && errno != EPERM && errno != ENOSYS) { /* again, with the verifier's log for the message */
    char log[4096] = "";
    a.log_level = 1;
    a.log_buf = (uintptr_t)log;
    a.log_size = sizeof log;
    int e = errno;
    if (sys_bpf(BPF_PROG_LOAD, &a) < 0) log_debug("device program rejected: %s", log);
    errno = e;
  }
  free(insns);
  if (prog < 0) return sk_fail(err, errno, "linux.resources.devices: loading the cgroup v2 device program");
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
  uint32_t ids[64], nids = 0;
  if (dfd < 0) {
    rc = sk_fail(err, errno, "linux.resources.devices: opening %s", dir);
    goto out;
  }
  if (replace) {
    memset(&a, 0, sizeof a);
    a.query.target_fd = (uint32_t)dfd;
    a.query.attach_type = BPF_CGROUP_DEVICE;
    a.query.prog_ids = (uintptr_t)ids;
    a.query.prog_cnt = 64;
    if (sys_bpf(BPF_PROG_QUERY, &a) == 0) nids = a.query.prog_cnt;
  }
  memset(&a, 0, sizeof a);
  a.target_fd = (uint32_t)dfd;
  a.attach_bpf_fd = (uint32_t)prog;
  a.attach_type = BPF_CGROUP_DEVICE;
  a.attach_flags = BPF_F_ALLOW_MULTI;
  if (sys_bpf(BPF_PROG_ATTACH, &a) < 0) {
    rc = sk_fail(err, errno, "linux.resources.devices: attaching the device program to %s", dir);
    goto out;
  }
  for (uint32_t i = 0; i < nids; i++) { /* the new one is in force: the old ones can go */
    memset(&a, 0, sizeof a);
    a.prog_id = ids[i];
    int old = (int)sys_bpf(BPF_PROG_GET_FD_BY_ID, &a);
    if (old < 0) continue;
    memset(&a, 0, sizeof a);
    a.target_fd = (uint32_t)dfd;
    a.attach_bpf_fd = (uint32_t)old;
    a.attach_type = BPF_CGROUP_DEVICE;
    if (sys_bpf(BPF_PROG_DETACH, &a) < 0)
      log_warn("detaching the old device program from %s: %s", dir, strerror(errno));
    close(old);
  }
out:
  if (dfd >= 0) close(dfd);
  close(prog);
  return rc;
}

static int check_devices(const sk_cgroup *cg, const res *r, sk_error *err) {
  devrule *v;
  size_t n;
  if (effective_devices(cg, r, &v, &n, err) < 0) return -1;
  int rc = check_holes(v, n, r->ndev, err);
  free(v);
  return rc;
}

/* ---------- applying resources ---------- */

#define FMT(buf, ...) (snprintf(buf, sizeof buf, __VA_ARGS__), buf)

static const char *lim(char *buf, size_t size, int64_t v, bool v2) {
  if (v < 0) return v2 ? "max" : "-1";
  snprintf(buf, size, "%" PRId64, v);
  return buf;
}
#define LIM(v) lim(nb, sizeof nb, (v), v2)

/* Write the values `s` sets; `f` holds every effective value (equal to s on create), for files that combine
 * several fields (cpu.max). `update` enables the ordering checks that only matter on a live cgroup. */
static int apply(sk_cgroup *cg, const res *s, const res *f, bool update, sk_error *err) {
  const bool v2 = cg->v2;
  char nb[64], b2[160];
  hier *h;
#define DIR(c) ((h = by_ctrl(cg, c)) ? h->dir : NULL)
#define W(c, file, val, what) \
  do { \
    const char *d_ = DIR(c); \
    if (d_ == NULL) return sk_fail(err, 0, "linux.resources.%s: no %s cgroup", what, ctrl_names[c]); \
    if (cg_write(d_, file, val, "linux.resources." what, err) < 0) return -1; \
  } while (0)

  /* cpuset first: v1 tasks cannot run in a cpuset without cpus */
  if (s->cpus) W(C_CPUSET, "cpuset.cpus", s->cpus, "cpu.cpus");
  if (s->mems) W(C_CPUSET, "cpuset.mems", s->mems, "cpu.mems");

  /* memory */
  if (s->check == 1 && update && s->mem_limit > 0) {
    char cur[64];
    const char *d = DIR(C_MEMORY);
    if (d && cg_read(d, v2 ? "memory.current" : "memory.usage_in_bytes", cur, sizeof cur) > 0 &&
        strtoll(cur, NULL, 10) > s->mem_limit)
      return sk_fail(err, 0,
                     "linux.resources.memory.limit %" PRId64 " is below the current usage %s (checkBeforeUpdate)",
                     s->mem_limit, chomp(cur));
  }
  if (v2) {
    if (s->mem_limit != UNSET) W(C_MEMORY, "memory.max", LIM(s->mem_limit), "memory.limit");
    if (s->mem_swap != UNSET || (s->mem_limit != UNSET && f->mem_swap != UNSET)) {
      /* OCI swap is memory+swap; v2 limits swap alone */
      int64_t sw = f->mem_swap < 0 || f->mem_limit < 0 ? -1 : f->mem_swap - f->mem_limit;
      W(C_MEMORY, "memory.swap.max", LIM(sw), "memory.swap");
    }
    if (s->mem_res != UNSET) W(C_MEMORY, "memory.low", LIM(s->mem_res), "memory.reservation"); /* -1: "max", as runc */
    if (s->swappiness != UNSET) log_warn("linux.resources.memory.swappiness is ignored on cgroup v2");
    if (s->oom_off == 1) log_warn("linux.resources.memory.disableOOMKiller is ignored on cgroup v2");
  } else {
    bool swap_first = false;
    if (update && s->mem_limit != UNSET && s->mem_swap != UNSET) {
      /* raising: memsw must grow before the limit may (the kernel keeps limit <= memsw) */
      char cur[64];
      const char *d = DIR(C_MEMORY);
      uint64_t c = UINT64_MAX;
      if (d && cg_read(d, "memory.limit_in_bytes", cur, sizeof cur) > 0) c = strtoull(cur, NULL, 10);
      swap_first = s->mem_swap < 0 || c < (uint64_t)s->mem_swap;
    }
    char swb[64];
    const char *sw = lim(swb, sizeof swb, s->mem_swap, false);
    if (swap_first) W(C_MEMORY, "memory.memsw.limit_in_bytes", sw, "memory.swap");
    if (s->mem_limit != UNSET) {
      const char *d = DIR(C_MEMORY);
      if (d == NULL) return sk_fail(err, 0, "linux.resources.memory.limit: no memory cgroup");
      if (cg_write(d, "memory.limit_in_bytes", LIM(s->mem_limit), "linux.resources.memory.limit", err) < 0) {
        if (err->errnum == EBUSY) sk_wrap(err, "the limit is below the memory the container already uses");
        if (err->errnum == EINVAL) sk_wrap(err, "the limit must not exceed memory.swap (the memory+swap limit)");
        return -1;
      }
    }
    if (!swap_first && s->mem_swap != UNSET) W(C_MEMORY, "memory.memsw.limit_in_bytes", sw, "memory.swap");
    if (s->mem_res != UNSET) W(C_MEMORY, "memory.soft_limit_in_bytes", LIM(s->mem_res), "memory.reservation");
    if (s->swappiness != UNSET)
      W(C_MEMORY, "memory.swappiness", FMT(nb, "%" PRId64, s->swappiness), "memory.swappiness");
    if (s->oom_off >= 0) W(C_MEMORY, "memory.oom_control", s->oom_off ? "1" : "0", "memory.disableOOMKiller");
    if (s->use_hier >= 0) W(C_MEMORY, "memory.use_hierarchy", s->use_hier ? "1" : "0", "memory.useHierarchy");
  }

  /* cpu */
  if (v2) {
    if (s->shares != UNSET)
      W(C_CPU, "cpu.weight", FMT(nb, "%" PRId64, 1 + ((s->shares - 2) * 9999) / 262142), "cpu.shares");
    if (s->quota != UNSET || s->period != UNSET) {
      char q[32] = "max";
      if (f->quota > 0) snprintf(q, sizeof q, "%" PRId64, f->quota);
      if (f->period != UNSET)
        W(C_CPU, "cpu.max", FMT(b2, "%s %" PRId64, q, f->period), "cpu.quota");
      else
        W(C_CPU, "cpu.max", q, "cpu.quota");
    }
    if (s->burst != UNSET) W(C_CPU, "cpu.max.burst", FMT(nb, "%" PRId64, s->burst), "cpu.burst");
    if (s->idle != UNSET) W(C_CPU, "cpu.idle", FMT(nb, "%" PRId64, s->idle), "cpu.idle");
  } else {
    if (s->shares != UNSET) W(C_CPU, "cpu.shares", FMT(nb, "%" PRId64, s->shares), "cpu.shares");
    if (s->period != UNSET) W(C_CPU, "cpu.cfs_period_us", FMT(nb, "%" PRId64, s->period), "cpu.period");
    if (s->quota != UNSET) W(C_CPU, "cpu.cfs_quota_us", LIM(s->quota), "cpu.quota");
    if (s->burst != UNSET) W(C_CPU, "cpu.cfs_burst_us", FMT(nb, "%" PRId64, s->burst), "cpu.burst");
    if (s->rt_period != UNSET) W(C_CPU, "cpu.rt_period_us", FMT(nb, "%" PRId64, s->rt_period), "cpu.realtimePeriod");
    if (s->rt_runtime != UNSET) W(C_CPU, "cpu.rt_runtime_us", LIM(s->rt_runtime), "cpu.realtimeRuntime");
    if (s->idle != UNSET) W(C_CPU, "cpu.idle", FMT(nb, "%" PRId64, s->idle), "cpu.idle");
  }

  if (s->pids != UNSET) W(C_PIDS, "pids.max", s->pids < 0 ? "max" : FMT(nb, "%" PRId64, s->pids), "pids.limit");

  /* block I/O */
  if (v2) {
    char probe[8];
    /* BFQ has its own weight file with the v1 range; probe it only when a weight is asked for */
    bool bfq = (s->blk_weight != UNSET || s->nwd) && DIR(C_BLKIO) &&
               cg_read(h->dir, "io.bfq.weight", probe, sizeof probe) >= 0;
    if (s->blk_weight != UNSET) {
      if (bfq)
        W(C_BLKIO, "io.bfq.weight", FMT(nb, "%" PRId64, s->blk_weight), "blockIO.weight");
      else
        W(C_BLKIO, "io.weight", FMT(nb, "default %" PRId64, 1 + (s->blk_weight - 10) * 9999 / 990), "blockIO.weight");
    }
    for (size_t i = 0; i < s->nwd; i++) {
      const wdev *w = &s->wd[i];
      if (w->weight == UNSET) continue;
      if (bfq)
        W(C_BLKIO, "io.bfq.weight", FMT(b2, "%" PRId64 ":%" PRId64 " %" PRId64, w->major, w->minor, w->weight),
          "blockIO.weightDevice");
      else
        W(C_BLKIO, "io.weight",
          FMT(b2, "%" PRId64 ":%" PRId64 " %" PRId64, w->major, w->minor, 1 + (w->weight - 10) * 9999 / 990),
          "blockIO.weightDevice");
    }
    static const char *const keys[4] = {"rbps", "wbps", "riops", "wiops"};
    for (int t = 0; t < 4; t++)
      for (size_t i = 0; i < s->nthr[t]; i++) {
        const tdev *d2 = &s->thr[t][i];
        if (d2->rate) snprintf(nb, sizeof nb, "%" PRIu64, d2->rate);
        W(C_BLKIO, "io.max",
          FMT(b2, "%" PRId64 ":%" PRId64 " %s=%s", d2->major, d2->minor, keys[t], d2->rate ? nb : "max"),
          "blockIO.throttle");
      }
  } else {
    char probe[8];
    /* kernels without CFQ only have the BFQ files; probe only when a weight is asked for */
    const char *pre = (s->blk_weight != UNSET || s->nwd) && DIR(C_BLKIO) &&
                              cg_read(h->dir, "blkio.weight", probe, sizeof probe) < 0 && errno == ENOENT
                          ? "blkio.bfq."
                          : "blkio.";
    char file[64];
    if (s->blk_weight != UNSET)
      W(C_BLKIO, FMT(file, "%sweight", pre), FMT(nb, "%" PRId64, s->blk_weight), "blockIO.weight");
    if (s->blk_leaf != UNSET) W(C_BLKIO, "blkio.leaf_weight", FMT(nb, "%" PRId64, s->blk_leaf), "blockIO.leafWeight");
    for (size_t i = 0; i < s->nwd; i++) {
      const wdev *w = &s->wd[i];
      if (w->weight != UNSET)
        W(C_BLKIO, FMT(file, "%sweight_device", pre),
          FMT(b2, "%" PRId64 ":%" PRId64 " %" PRId64, w->major, w->minor, w->weight), "blockIO.weightDevice");
      if (w->leaf != UNSET)
        W(C_BLKIO, "blkio.leaf_weight_device", FMT(b2, "%" PRId64 ":%" PRId64 " %" PRId64, w->major, w->minor, w->leaf),
          "blockIO.weightDevice");
    }
    static const char *const files[4] = {"blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
                                         "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"};
    for (int t = 0; t < 4; t++)
      for (size_t i = 0; i < s->nthr[t]; i++) {
        const tdev *d2 = &s->thr[t][i];
        W(C_BLKIO, files[t], FMT(b2, "%" PRId64 ":%" PRId64 " %" PRIu64, d2->major, d2->minor, d2->rate),
          "blockIO.throttle");
      }
  }

  /* hugetlb: v1 files in the v1 hierarchy, cgroup2 files in a unified one (v2, or hybrid's) */
  for (size_t i = 0; i < s->nhp; i++) {
    char file[64];
    h = by_ctrl(cg, C_HUGETLB);
    bool u = h && h->unified;
    if (u)
      W(C_HUGETLB, FMT(file, "hugetlb.%s.max", s->hp[i].size), FMT(nb, "%" PRIu64, s->hp[i].limit), "hugepageLimits");
    else
      W(C_HUGETLB, FMT(file, "hugetlb.%s.limit_in_bytes", s->hp[i].size), FMT(nb, "%" PRIu64, s->hp[i].limit),
        "hugepageLimits");
  }

  if (s->classid != UNSET) W(C_NET_CLS, "net_cls.classid", FMT(nb, "%" PRId64, s->classid), "network.classID");
  for (size_t i = 0; i < s->nprios; i++)
    W(C_NET_PRIO, "net_prio.ifpriomap", FMT(b2, "%s %" PRId64, s->prios[i].name, s->prios[i].prio),
      "network.priorities");

  if (s->unified) {
    json_object_object_foreach(s->unified, k, v) {
      if (cg_write(cg->h[0].dir, k, json_object_get_string(v), "linux.resources.unified", err) < 0) return -1;
    }
  }

  /* devices last: the rules are the whole list, on create always (runc's defaults), on update when given */
  if (!update || s->dev_set) {
    devrule *v = NULL;
    size_t n = 0;
    const char *d = DIR(C_DEVICES);
    if (d == NULL) return v2 ? sk_fail(err, 0, "no cgroup directory") : 0; /* v1 without a devices hierarchy */
    if (effective_devices(cg, f, &v, &n, err) < 0) return -1;
    int rc = v2 ? devices_v2(d, v, n, update || !h->created, err) : devices_v1(d, v, n, f->ndev, err);
    free(v);
    if (rc < 0) return -1;
  }
#undef W
#undef DIR
  return 0;
}

/* ---------- create, join, destroy ---------- */

/* v1 cpuset: a new cgroup has empty cpus and mems; copy the parent's (fixing an empty parent first). */
static int cpuset_init(const char *mnt, const char *dir, sk_error *err) {
  char parent[PATH_MAX], buf[4096];
  snprintf(parent, sizeof parent, "%s", dir);
  char *slash = strrchr(parent, '/');
  if (slash == NULL || strlen(parent) <= strlen(mnt)) return 0;
  *slash = '\0';
  static const char *const files[2] = {"cpuset.cpus", "cpuset.mems"};
  for (int i = 0; i < 2; i++) {
    if (cg_read(parent, files[i], buf, sizeof buf) < 0) return sk_fail(err, errno, "reading %s/%s", parent, files[i]);
    if (!*chomp(buf)) { /* a parent another runtime made and has not initialised yet */
      if (cpuset_init(mnt, parent, err) < 0) return -1;
      if (cg_read(parent, files[i], buf, sizeof buf) < 0) return sk_fail(err, errno, "reading %s/%s", parent, files[i]);
      chomp(buf);
    }
    if (cg_write(dir, files[i], buf, "initialising the cpuset", err) < 0) return -1;
  }
  return 0;
}

/* mkdir the directory and any missing parents below mnt; cpuset levels are initialised as they appear. */
static int make_dir(const char *mnt, const char *dir, bool cpuset, int *made, sk_error *err) {
  for (int tries = 0;; tries++) {
    if (mkdir(dir, 0755) == 0) {
      ++*made;
      return cpuset ? cpuset_init(mnt, dir, err) : 0;
    }
    if (errno == EEXIST) return 0;
    if (errno != ENOENT || tries > 3) return sk_fail(err, errno, "creating the cgroup %s", dir);
    /* the parent is missing (or was just removed by a concurrent delete): make it, then retry */
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash == NULL || (size_t)(slash - parent) <= strlen(mnt))
      return sk_fail(err, ENOENT, "creating the cgroup %s", dir);
    *slash = '\0';
    if (make_dir(mnt, parent, cpuset, made, err) < 0) return -1;
  }
}

/* Whether the space-separated list has word w. */
static bool has_word(const char *list, const char *w) {
  size_t l = strlen(w);
  for (const char *p = list; (p = strstr(p, w)) != NULL; p += l)
    if ((p == list || p[-1] == ' ') && (p[l] == ' ' || p[l] == '\n' || p[l] == '\0')) return true;
  return false;
}

/* v2: enable every available controller in each ancestor's subtree_control, so the container's files exist.
 * Reads only, unless a level lacks one. */
static int enable_controllers(const hier *h, sk_error *err) {
  char avail[512], cur[512], want[600], lvl[PATH_MAX];
  if (cg_read(h->mnt, "cgroup.controllers", avail, sizeof avail) < 0)
    return sk_fail(err, errno, "reading %s/cgroup.controllers", h->mnt);
  chomp(avail);
  size_t ml = strlen(h->mnt);
  snprintf(lvl, sizeof lvl, "%s", h->dir);
  for (char *p = lvl + ml; p && *p == '/'; p = strchr(p + 1, '/')) { /* lvl cut at each slash: every ancestor */
    *p = '\0';
    const char *at = *lvl ? lvl : "/";
    if (cg_read(at, "cgroup.subtree_control", cur, sizeof cur) < 0) {
      *p = '/';
      return sk_fail(err, errno, "reading %s/cgroup.subtree_control", at);
    }
    size_t wl = 0;
    char a[512], *s = NULL;
    snprintf(a, sizeof a, "%s", avail);
    for (char *c = strtok_r(a, " ", &s); c; c = strtok_r(NULL, " ", &s))
      if (!has_word(cur, c)) wl += (size_t)snprintf(want + wl, sizeof want - wl, "%s+%s", wl ? " " : "", c);
    if (wl) {
      if (cg_write(at, "cgroup.subtree_control", want, "enabling controllers", err) < 0) {
        /* one at a time, keeping what can be had (a level with processes refuses domain controllers) */
        log_debug("%s; enabling one by one", err->msg);
        char *s2 = NULL;
        for (char *c = strtok_r(want, " ", &s2); c; c = strtok_r(NULL, " ", &s2))
          if (cg_write(at, "cgroup.subtree_control", c, "enabling controllers", err) < 0) log_debug("%s", err->msg);
      }
      if (cg_read(at, "cgroup.subtree_control", cur, sizeof cur) < 0) cur[0] = '\0';
    }
    snprintf(avail, sizeof avail, "%s", chomp(cur)); /* the next level can only have what this one passes down */
    *p = '/';
  }
  return 0;
}

/* rmdir dir and any cgroups the container made inside it, retrying while tasks are still leaving. */
static int remove_dir(const char *dir, sk_error *err) {
  uint64_t deadline = now_ms() + 1000;
  for (useconds_t nap = 1000;; nap = nap < 32000 ? nap * 2 : nap) {
    if (rmdir(dir) == 0 || errno == ENOENT) return 0;
    if (errno != EBUSY && errno != ENOTEMPTY) return sk_fail(err, errno, "removing the cgroup %s", dir);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
      if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      char sub[PATH_MAX];
      if ((size_t)snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) < sizeof sub && remove_dir(sub, err) < 0) {
        closedir(d);
        return -1;
      }
    }
    if (d) closedir(d);
    if (rmdir(dir) == 0 || errno == ENOENT) return 0;
    if (now_ms() >= deadline) return sk_fail(err, errno, "removing the cgroup %s (processes still in it?)", dir);
    usleep(nap);
  }
}

int cgroup_destroy(sk_cgroup *cg, sk_error *err) {
  int rc = 0;
  sk_error e2;
  for (size_t i = 0; i < cg->nh; i++) {
    if (!cg->h[i].created) continue;
    if (remove_dir(cg->h[i].dir, rc ? &e2 : err) < 0)
      rc = -1; /* keep the first error, try every hierarchy */
    else
      cg->h[i].created = false;
  }
  return rc;
}

int cgroup_create(sk_cgroup *cg, sk_error *err) {
  for (size_t i = 0; i < cg->nh; i++) {
    hier *h = &cg->h[i];
    int made = 0;
    int rc = make_dir(h->mnt, h->dir, !h->unified && (h->ctrl & (1u << C_CPUSET)), &made, err);
    /* a leaf that already existed (a cgroup the caller prepared) is joined, and left alone on delete */
    h->created = made > 0;
    h->made = made;
    if (rc < 0 || (h->unified && (cg->v2 || cg->r.nhp) && enable_controllers(h, err) < 0)) goto fail;
  }
  if (apply(cg, &cg->r, &cg->r, false, err) < 0) goto fail;
  return 0;
fail:;
  sk_error e2;
  cgroup_destroy(cg, &e2);
  for (size_t i = 0; i < cg->nh; i++) { /* and the parents this call made, if nobody else uses them yet */
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", cg->h[i].dir);
    for (int l = 1; l < cg->h[i].made; l++) {
      char *slash = strrchr(p, '/');
      if (slash == NULL) break;
      *slash = '\0';
      if (rmdir(p) < 0) break;
    }
    cg->h[i].made = 0;
  }
  return sk_wrap(err, "setting up the cgroup %s", cg->path);
}

int cgroup_add_pid(const sk_cgroup *cg, pid_t pid, sk_error *err) {
  char s[24];
  snprintf(s, sizeof s, "%d", (int)pid);
  for (size_t i = 0; i < cg->nh; i++)
    if (cg_write(cg->h[i].dir, "cgroup.procs", s, "joining the cgroup", err) < 0) return -1;
  return 0;
}

/* ---------- freezer, pids, kill ---------- */

static const char *freezer_dir(const sk_cgroup *cg) {
  hier *h = by_ctrl(cg, C_FREEZER);
  return h ? h->dir : NULL;
}

/* v2: "frozen 0|1" from cgroup.events. */
static int v2_frozen(const char *dir, bool *out) {
  char buf[256];
  if (cg_read(dir, "cgroup.events", buf, sizeof buf) < 0) return -1;
  const char *f = strstr(buf, "frozen ");
  *out = f && f[7] == '1';
  return 0;
}

int cgroup_freeze(const sk_cgroup *cg, bool frozen, sk_error *err) {
  const char *dir = freezer_dir(cg);
  if (dir == NULL) return sk_fail(err, ENOTSUP, "%s the container: no freezer cgroup", frozen ? "pausing" : "resuming");
  const char *what = frozen ? "freezing the cgroup" : "thawing the cgroup";
  const char *want = frozen ? "FROZEN" : "THAWED";
  uint64_t deadline = now_ms() + 5000;
  for (unsigned i = 0;; i++) {
    /* v1 can sit in FREEZING when a task is busy in the kernel: write again now and then, as runc does */
    if (i % 64 == 0 &&
        cg_write(dir, cg->v2 ? "cgroup.freeze" : "freezer.state", cg->v2 ? (frozen ? "1" : "0") : want, what, err) < 0)
      return -1;
    bool done;
    if (cg->v2) {
      if (v2_frozen(dir, &done) < 0) return sk_fail(err, errno, "%s: reading %s/cgroup.events", what, dir);
      done = done == frozen;
    } else {
      char st[32];
      if (cg_read(dir, "freezer.state", st, sizeof st) < 0)
        return sk_fail(err, errno, "%s: reading %s/freezer.state", what, dir);
      done = strcmp(chomp(st), want) == 0;
    }
    if (done) return 0;
    if (now_ms() > deadline) {
      if (frozen) cg_write(dir, cg->v2 ? "cgroup.freeze" : "freezer.state", cg->v2 ? "0" : "THAWED", what, err);
      return sk_fail(err, ETIMEDOUT, "%s %s", what, dir);
    }
    usleep(i < 10 ? 100 : 1000);
  }
}

int cgroup_is_frozen(const sk_cgroup *cg, bool *out, sk_error *err) {
  const char *dir = freezer_dir(cg);
  *out = false;
  if (dir == NULL) return 0;
  if (cg->v2) {
    if (v2_frozen(dir, out) < 0 && errno != ENOENT) return sk_fail(err, errno, "reading %s/cgroup.events", dir);
    return 0;
  }
  char st[32];
  if (cg_read(dir, "freezer.state", st, sizeof st) < 0)
    return errno == ENOENT ? 0 : sk_fail(err, errno, "reading %s/freezer.state", dir);
  *out = strcmp(chomp(st), "FROZEN") == 0;
  return 0;
}

int cgroup_pids(const sk_cgroup *cg, pid_t **pids, size_t *n, sk_error *err) {
  static const int pref[] = {C_PIDS, C_MEMORY, C_FREEZER, C_CPU};
  const char *dir = NULL;
  for (size_t i = 0; i < sizeof pref / sizeof *pref && dir == NULL; i++) {
    hier *h = by_ctrl(cg, pref[i]);
    if (h && !(h->unified && !cg->v2)) dir = h->dir;
  }
  if (dir == NULL && cg->nh) dir = cg->h[0].dir;
  *pids = NULL;
  *n = 0;
  if (dir == NULL) return 0;
  char p[PATH_MAX], *buf;
  if (path_join(p, sizeof p, dir, "cgroup.procs", err) < 0) return -1;
  if (read_file(p, &buf, NULL, err) < 0) {
    if (err->errnum == ENOENT) return 0; /* no cgroup: no processes */
    return -1;
  }
  size_t cap = 0;
  pid_t *v = NULL;
  char *s = NULL;
  for (char *t = strtok_r(buf, "\n", &s); t; t = strtok_r(NULL, "\n", &s)) {
    if (*n == cap) {
      pid_t *nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof *v);
      if (nv == NULL) {
        free(v);
        free(buf);
        return sk_fail(err, ENOMEM, "reading %s", p);
      }
      v = nv;
    }
    v[(*n)++] = (pid_t)atoi(t);
  }
  free(buf);
  *pids = v;
  return 0;
}

int cgroup_kill_all(const sk_cgroup *cg, int sig, sk_error *err) {
  if (cg->v2 && sig == SIGKILL) { /* one write kills the whole subtree, no race with fork */
    if (cg_write(cg->h[0].dir, "cgroup.kill", "1", "killing the cgroup", err) == 0) return 0;
    if (err->errnum != ENOENT) return -1;
  }
  /* freeze so nothing forks past us, signal every pid, then restore (SIGKILL only lands once thawed) */
  bool was_frozen = false, froze = false;
  if (freezer_dir(cg) && cgroup_is_frozen(cg, &was_frozen, err) == 0 && !was_frozen) {
    if (cgroup_freeze(cg, true, err) < 0)
      log_warn("kill --all: %s; signalling without freezing", err->msg);
    else
      froze = true;
  }
  pid_t *pids;
  size_t n;
  int rc = cgroup_pids(cg, &pids, &n, err);
  if (rc == 0) {
    for (size_t i = 0; i < n; i++)
      if (kill(pids[i], sig) < 0 && errno != ESRCH) {
        rc = sk_fail(err, errno, "sending signal %d to %d", sig, (int)pids[i]);
        break;
      }
    free(pids);
  }
  /* thaw what we froze; a paused container is thawed for SIGKILL only, which cannot land while frozen */
  if (froze || (was_frozen && sig == SIGKILL)) {
    sk_error e2;
    if (cgroup_freeze(cg, false, rc ? &e2 : err) < 0) rc = -1;
  }
  return rc;
}

/* ---------- update ---------- */

/* dst ← src, member by member, objects merged recursively (arrays and values replace). */
static void merge(json_object *dst, json_object *src) {
  json_object_object_foreach(src, k, v) {
    json_object *d = j_get(dst, k);
    if (v && d && json_object_is_type(v, json_type_object) && json_object_is_type(d, json_type_object) &&
        strcmp(k, "unified") != 0)
      merge(d, v);
    else
      json_object_object_add(dst, k, json_object_get(v));
  }
}

int cgroup_update(sk_cgroup *cg, json_object *resources, sk_error *err) {
  res upd, full;
  json_object *merged = NULL;
  if (res_parse(resources, "resources", &upd, true, err) < 0) return -1;
  if (cg->res_json == NULL || json_object_deep_copy(cg->res_json, &merged, NULL) < 0) merged = json_object_new_object();
  if (merged == NULL) {
    res_free(&upd);
    return sk_fail(err, ENOMEM, "allocating");
  }
  merge(merged, resources);
  if (res_parse(merged, "resources", &full, false, err) < 0) goto fail_upd;
  if (res_check(&full, cg->v2, "resources", err) < 0) goto fail;
  if (!cg->v2) {
    /* hugetlb's hybrid home only exists if create asked for it */
    if (upd.nhp && by_ctrl(cg, C_HUGETLB) == NULL) {
      sk_fail(err, 0, "resources.hugepageLimits: no hugetlb cgroup for this container");
      goto fail;
    }
  }
  if ((upd.dev_set && check_devices(cg, &full, err) < 0) || apply(cg, &upd, &full, true, err) < 0) goto fail;
  res_free(&upd);
  res_free(&cg->r);
  cg->r = full;
  json_object_put(cg->res_json);
  cg->res_json = merged;
  return 0;
fail:
  res_free(&full);
fail_upd:
  res_free(&upd);
  json_object_put(merged);
  return sk_wrap(err, "updating the cgroup %s", cg->path);
}

/* ---------- stats ---------- */

static void put_u64(json_object *o, const char *k, uint64_t v, bool omitempty) {
  if (v || !omitempty) json_object_object_add(o, k, json_object_new_uint64(v));
}

static json_object *child(json_object *o, const char *k) {
  json_object *c = j_get(o, k);
  if (c == NULL) json_object_object_add(o, k, c = json_object_new_object());
  return c;
}

/* A whole file (malloc'd, NUL-terminated) or NULL when it cannot be read. */
static char *slurp(const char *dir, const char *file) {
  char p[PATH_MAX], *buf = NULL;
  sk_error e;
  if (dir == NULL || (size_t)snprintf(p, sizeof p, "%s/%s", dir, file) >= sizeof p) return NULL;
  return read_file(p, &buf, NULL, &e) < 0 ? NULL : buf;
}

/* One number from a file: "max" counts as UINT64_MAX. */
static bool read_u64(const char *dir, const char *file, uint64_t *out) {
  char buf[64];
  if (dir == NULL || cg_read(dir, file, buf, sizeof buf) < 0) return false;
  chomp(buf);
  if (strcmp(buf, "max") == 0) return *out = UINT64_MAX, true;
  return parse_u64(buf, out);
}

/* "key value" lines: the value of key, if present. */
static bool kv(const char *buf, const char *key, uint64_t *out) {
  size_t kl = strlen(key);
  for (const char *p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
    if (strncmp(p, key, kl) == 0 && p[kl] == ' ') return *out = strtoull(p + kl + 1, NULL, 10), true;
  return false;
}

static json_object *kv_raw(const char *buf) {
  json_object *raw = json_object_new_object();
  char *copy = strdup(buf), *s = NULL;
  for (char *t = copy ? strtok_r(copy, "\n", &s) : NULL; t; t = strtok_r(NULL, "\n", &s)) {
    char *sp = strchr(t, ' ');
    if (sp == NULL) continue;
    *sp = '\0';
    json_object_object_add(raw, t, json_object_new_uint64(strtoull(sp + 1, NULL, 10)));
  }
  free(copy);
  return raw;
}

static void stats_cpu(const sk_cgroup *cg, json_object *data) {
  json_object *cpu = child(data, "cpu"), *usage = child(cpu, "usage"), *thr = child(cpu, "throttling");
  uint64_t v;
  char *st;
  if (cg->v2) {
    if ((st = slurp(cg->h[0].dir, "cpu.stat")) == NULL) return;
    if (kv(st, "usage_usec", &v)) put_u64(usage, "total", v * 1000, true);
    if (kv(st, "system_usec", &v)) put_u64(usage, "kernel", v * 1000, false);
    if (kv(st, "user_usec", &v)) put_u64(usage, "user", v * 1000, false);
    if (kv(st, "nr_periods", &v)) put_u64(thr, "periods", v, true);
    if (kv(st, "nr_throttled", &v)) put_u64(thr, "throttledPeriods", v, true);
    if (kv(st, "throttled_usec", &v)) put_u64(thr, "throttledTime", v * 1000, true);
    free(st);
    return;
  }
  hier *ha = by_ctrl(cg, C_CPUACCT), *hc = by_ctrl(cg, C_CPU);
  const char *acct = ha ? ha->dir : NULL;
  if (read_u64(acct, "cpuacct.usage", &v)) put_u64(usage, "total", v, true);
  if ((st = slurp(acct, "cpuacct.usage_percpu")) != NULL) {
    json_object *arr = json_object_new_array();
    char *s = NULL;
    for (char *t = strtok_r(st, " \n", &s); t; t = strtok_r(NULL, " \n", &s))
      json_object_array_add(arr, json_object_new_uint64(strtoull(t, NULL, 10)));
    json_object_object_add(usage, "percpu", arr);
    free(st);
  }
  if ((st = slurp(acct, "cpuacct.stat")) != NULL) { /* in USER_HZ ticks */
    long hz = sysconf(_SC_CLK_TCK);
    uint64_t ns = 1000000000ull / (uint64_t)(hz > 0 ? hz : 100);
    if (kv(st, "system", &v)) put_u64(usage, "kernel", v * ns, false);
    if (kv(st, "user", &v)) put_u64(usage, "user", v * ns, false);
    free(st);
  }
  if ((st = slurp(hc ? hc->dir : NULL, "cpu.stat")) != NULL) {
    if (kv(st, "nr_periods", &v)) put_u64(thr, "periods", v, true);
    if (kv(st, "nr_throttled", &v)) put_u64(thr, "throttledPeriods", v, true);
    if (kv(st, "throttled_time", &v)) put_u64(thr, "throttledTime", v, true);
    free(st);
  }
}

static void mem_entry(json_object *mem, const char *key, const char *dir, const char *prefix) {
  char f[96];
  uint64_t v;
  json_object *e = json_object_new_object();
  bool any = false;
  snprintf(f, sizeof f, "%s.limit_in_bytes", prefix);
  if (read_u64(dir, f, &v)) put_u64(e, "limit", v, false), any = true;
  snprintf(f, sizeof f, "%s.usage_in_bytes", prefix);
  if (read_u64(dir, f, &v)) put_u64(e, "usage", v, true), any = true;
  snprintf(f, sizeof f, "%s.max_usage_in_bytes", prefix);
  if (read_u64(dir, f, &v)) put_u64(e, "max", v, true), any = true;
  snprintf(f, sizeof f, "%s.failcnt", prefix);
  if (read_u64(dir, f, &v)) put_u64(e, "failcnt", v, false), any = true;
  if (any)
    json_object_object_add(mem, key, e);
  else
    json_object_put(e);
}

static void stats_memory(const sk_cgroup *cg, json_object *data) {
  hier *h = by_ctrl(cg, C_MEMORY);
  if (h == NULL) return;
  json_object *mem = child(data, "memory");
  char *st = slurp(h->dir, "memory.stat");
  uint64_t v, cur = 0, lim = 0, sw = 0, swl = 0;
  if (cg->v2) {
    if (st && kv(st, "file", &v)) put_u64(mem, "cache", v, true);
    json_object *u = json_object_new_object(), *s = json_object_new_object();
    bool have_cur = read_u64(h->dir, "memory.current", &cur), have_lim = read_u64(h->dir, "memory.max", &lim);
    if (have_lim) put_u64(u, "limit", lim, false);
    if (have_cur) put_u64(u, "usage", cur, true);
    if (read_u64(h->dir, "memory.peak", &v)) put_u64(u, "max", v, true);
    char *ev = slurp(h->dir, "memory.events");
    if (ev && kv(ev, "max", &v)) put_u64(u, "failcnt", v, false);
    free(ev);
    /* runc reports v2 swap as memory+swap, like v1's memsw */
    if (read_u64(h->dir, "memory.swap.current", &sw)) put_u64(s, "usage", sw + cur, true);
    if (read_u64(h->dir, "memory.swap.max", &swl))
      put_u64(s, "limit", swl == UINT64_MAX || lim == UINT64_MAX ? UINT64_MAX : swl + lim, false);
    if (have_cur || have_lim)
      json_object_object_add(mem, "usage", u);
    else
      json_object_put(u);
    if (json_object_object_length(s))
      json_object_object_add(mem, "swap", s);
    else
      json_object_put(s);
  } else {
    if (st && kv(st, "cache", &v)) put_u64(mem, "cache", v, true);
    mem_entry(mem, "usage", h->dir, "memory");
    mem_entry(mem, "swap", h->dir, "memory.memsw");
    mem_entry(mem, "kernel", h->dir, "memory.kmem");
    mem_entry(mem, "kernelTCP", h->dir, "memory.kmem.tcp");
  }
  if (st) json_object_object_add(mem, "raw", kv_raw(st));
  free(st);
}

/* v1 "8:0 Read 123" lines; "Total 456" lines have no device and are left out, as runc does. */
static json_object *blkio_v1(const char *dir, const char *file) {
  char *st = slurp(dir, file), *s = NULL;
  if (st == NULL) return NULL;
  json_object *arr = json_object_new_array();
  for (char *t = strtok_r(st, "\n", &s); t; t = strtok_r(NULL, "\n", &s)) {
    unsigned maj, min;
    char op[32];
    unsigned long long val;
    if (sscanf(t, "%u:%u %31s %llu", &maj, &min, op, &val) != 4) continue;
    json_object *e = json_object_new_object();
    put_u64(e, "major", maj, true);
    put_u64(e, "minor", min, true);
    json_object_object_add(e, "op", json_object_new_string(op));
    put_u64(e, "value", val, true);
    json_object_array_add(arr, e);
  }
  free(st);
  return arr;
}

static void stats_blkio(const sk_cgroup *cg, json_object *data) {
  hier *h = by_ctrl(cg, C_BLKIO);
  if (h == NULL) return;
  json_object *blk = child(data, "blkio"), *bytes = NULL, *ios = NULL;
  if (cg->v2) {
    char *st = slurp(h->dir, "io.stat"), *s = NULL;
    if (st == NULL) return;
    bytes = json_object_new_array();
    ios = json_object_new_array();
    for (char *t = strtok_r(st, "\n", &s); t; t = strtok_r(NULL, "\n", &s)) {
      unsigned maj, min;
      int off = 0;
      if (sscanf(t, "%u:%u%n", &maj, &min, &off) != 2) continue;
      static const struct {
        const char *key, *op;
        bool bytes;
      } map[] = {{"rbytes=", "Read", true}, {"wbytes=", "Write", true}, {"dbytes=", "Discard", true},
                 {"rios=", "Read", false},  {"wios=", "Write", false},  {"dios=", "Discard", false}};
      for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
        const char *f = strstr(t + off, map[i].key);
        if (f == NULL) continue;
        json_object *e = json_object_new_object();
        put_u64(e, "major", maj, true);
        put_u64(e, "minor", min, true);
        json_object_object_add(e, "op", json_object_new_string(map[i].op));
        put_u64(e, "value", strtoull(f + strlen(map[i].key), NULL, 10), true);
        json_object_array_add(map[i].bytes ? bytes : ios, e);
      }
    }
    free(st);
  } else {
    /* CFQ's recursive files when present, else the throttle layer's (which every kernel has) */
    if ((bytes = blkio_v1(h->dir, "blkio.io_service_bytes_recursive")) == NULL &&
        (bytes = blkio_v1(h->dir, "blkio.throttle.io_service_bytes_recursive")) == NULL)
      bytes = blkio_v1(h->dir, "blkio.throttle.io_service_bytes");
    if ((ios = blkio_v1(h->dir, "blkio.io_serviced_recursive")) == NULL &&
        (ios = blkio_v1(h->dir, "blkio.throttle.io_serviced_recursive")) == NULL)
      ios = blkio_v1(h->dir, "blkio.throttle.io_serviced");
  }
  if (bytes && json_object_array_length(bytes))
    json_object_object_add(blk, "ioServiceBytesRecursive", bytes);
  else
    json_object_put(bytes);
  if (ios && json_object_array_length(ios))
    json_object_object_add(blk, "ioServicedRecursive", ios);
  else
    json_object_put(ios);
}

static void stats_hugetlb(const sk_cgroup *cg, json_object *data) {
  hier *h = by_ctrl(cg, C_HUGETLB);
  if (h == NULL) return;
  DIR *d = opendir("/sys/kernel/mm/hugepages");
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    unsigned long kb;
    if (sscanf(e->d_name, "hugepages-%lukB", &kb) != 1) continue;
    char size[32], f[96];
    if (kb >= 1024 * 1024 && kb % (1024 * 1024) == 0)
      snprintf(size, sizeof size, "%luGB", kb / (1024 * 1024));
    else if (kb >= 1024 && kb % 1024 == 0)
      snprintf(size, sizeof size, "%luMB", kb / 1024);
    else
      snprintf(size, sizeof size, "%luKB", kb);
    json_object *o = json_object_new_object();
    uint64_t v;
    bool any = false;
    if (h->unified) {
      snprintf(f, sizeof f, "hugetlb.%s.current", size);
      if (read_u64(h->dir, f, &v)) put_u64(o, "usage", v, true), any = true;
      snprintf(f, sizeof f, "hugetlb.%s.events", size);
      char *ev = slurp(h->dir, f);
      if (ev && kv(ev, "max", &v)) put_u64(o, "failcnt", v, false), any = true;
      free(ev);
    } else {
      snprintf(f, sizeof f, "hugetlb.%s.usage_in_bytes", size);
      if (read_u64(h->dir, f, &v)) put_u64(o, "usage", v, true), any = true;
      snprintf(f, sizeof f, "hugetlb.%s.max_usage_in_bytes", size);
      if (read_u64(h->dir, f, &v)) put_u64(o, "max", v, true), any = true;
      snprintf(f, sizeof f, "hugetlb.%s.failcnt", size);
      if (read_u64(h->dir, f, &v)) put_u64(o, "failcnt", v, false), any = true;
    }
    if (any)
      json_object_object_add(child(data, "hugetlb"), size, o);
    else
      json_object_put(o);
  }
  if (d) closedir(d);
}

int cgroup_stats(const sk_cgroup *cg, json_object **out, sk_error *err) {
  json_object *data = json_object_new_object();
  if (data == NULL) return sk_fail(err, ENOMEM, "allocating stats");
  stats_cpu(cg, data);
  stats_memory(cg, data);
  hier *h = by_ctrl(cg, C_PIDS);
  json_object *pids = child(data, "pids");
  uint64_t v;
  if (h && read_u64(h->dir, "pids.current", &v)) put_u64(pids, "current", v, true);
  if (h && read_u64(h->dir, "pids.max", &v) && v != UINT64_MAX) put_u64(pids, "limit", v, true);
  stats_blkio(cg, data);
  stats_hugetlb(cg, data);
  *out = data;
  return 0;
}

/* ---------- saved state ---------- */

json_object *cgroup_to_json(const sk_cgroup *cg) {
  json_object *o = json_object_new_object(), *hs = json_object_new_array();
  json_object_object_add(o, "mode", json_object_new_string(cg->v2 ? "v2" : "v1"));
  json_object_object_add(o, "path", json_object_new_string(cg->path ? cg->path : ""));
  for (size_t i = 0; i < cg->nh; i++) {
    const hier *h = &cg->h[i];
    json_object *j = json_object_new_object();
    json_object_object_add(j, "name", json_object_new_string(h->name));
    json_object_object_add(j, "options", json_object_new_string(h->opts));
    json_object_object_add(j, "mount", json_object_new_string(h->mnt));
    json_object_object_add(j, "dir", json_object_new_string(h->dir));
    json_object_object_add(j, "controllers", json_object_new_int64(h->ctrl));
    json_object_object_add(j, "unified", json_object_new_boolean(h->unified));
    json_object_object_add(j, "created", json_object_new_boolean(h->created));
    json_object_array_add(hs, j);
  }
  json_object_object_add(o, "hierarchies", hs);
  if (cg->res_json) json_object_object_add(o, "resources", json_object_get(cg->res_json));
  if (cg->ldev_json) json_object_object_add(o, "linuxDevices", json_object_get(cg->ldev_json));
  return o;
}

int cgroup_from_json(json_object *saved, sk_cgroup **out, sk_error *err) {
  const char *w = "state.cgroup", *mode = NULL, *path = NULL;
  json_object *hs, *resources, *ldev;
  *out = NULL;
  if (j_string(saved, "mode", w, true, &mode, err) < 0 || j_string(saved, "path", w, true, &path, err) < 0 ||
      j_array(saved, "hierarchies", w, true, &hs, err) < 0 ||
      j_object(saved, "resources", w, false, &resources, err) < 0 ||
      j_array(saved, "linuxDevices", w, false, &ldev, err) < 0)
    return -1;
  sk_cgroup *cg = calloc(1, sizeof *cg);
  if (cg == NULL) return sk_fail(err, ENOMEM, "allocating the cgroup");
  res_init(&cg->r);
  cg->v2 = strcmp(mode, "v2") == 0;
  if ((cg->path = xstrdup(path, err)) == NULL) goto fail;
  for (size_t i = 0; i < alen(hs); i++) {
    char ew[192];
    json_object *e = elem(hs, i, w, "hierarchies", ew, sizeof ew);
    const char *name = NULL, *opts = NULL, *mnt = NULL, *dir = NULL;
    int64_t ctrl = 0;
    bool unified = false, created = false;
    if (check_obj(e, ew, err) < 0 || j_string(e, "name", ew, true, &name, err) < 0 ||
        j_string(e, "options", ew, true, &opts, err) < 0 || j_string(e, "mount", ew, true, &mnt, err) < 0 ||
        j_string(e, "dir", ew, true, &dir, err) < 0 || j_int64(e, "controllers", ew, true, &ctrl, err) < 0 ||
        j_bool(e, "unified", ew, &unified, err) < 0 || j_bool(e, "created", ew, &created, err) < 0)
      goto fail;
    if (add_hier(cg, name, opts, mnt, strdup(dir), (unsigned)ctrl, unified, err) < 0) goto fail;
    cg->h[cg->nh - 1].created = created;
  }
  if (resources) {
    cg->res_json = json_object_get(resources);
    if (res_parse(resources, "state.cgroup.resources", &cg->r, false, err) < 0) goto fail;
  }
  if (ldev) cg->ldev_json = json_object_get(ldev);
  if (build_pub(cg, err) < 0) goto fail;
  *out = cg;
  return 0;
fail:
  cgroup_free(cg);
  return -1;
}
