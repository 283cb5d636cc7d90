/* The system steps of the boot: mounts, cgroup v2, kernel modules, the data disk, network, hostname, clock, 9p
 * shares and the SSH files; and the unmounts of the power-off. Each step logs what it did and how long it took. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/magic.h>
#include <linux/rtc.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "init.h"
#include "util.h"

#define DATA_MOUNT "/var/lib/skiff"
#define GUEST_ADDR "10.0.2.15"
#define GUEST_MASK "255.255.255.0"
#define GATEWAY "10.0.2.2"
#define NAMESERVER "10.0.2.3"

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif

/* ---- mounts ---- */

/* The initramfs root (rootfs) is not a mount that pivot_root(2) can leave, so container runtimes fail on it
 * (Docker's DOCKER_RAMDISK). Bind it onto itself and chroot into the bind: the root is then an ordinary mount. */
static void make_root_a_mount(void) {
  struct statfs sf;
  if (statfs("/", &sf) < 0 || (sf.f_type != RAMFS_MAGIC && sf.f_type != TMPFS_MAGIC)) return;
  const char *dir = "/.skiff-root";
  if ((mkdir(dir, 0700) < 0 && errno != EEXIST) || mount("/", dir, NULL, MS_BIND | MS_REC, NULL) < 0 ||
      chdir(dir) < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0) {
    warn("root file system: could not make it a mount (%s): container runtimes will need --no-pivot", strerror(errno));
    return;
  }
  rmdir(dir);
  debug("root file system: the initramfs is bound onto itself (pivot_root works in containers)");
}

typedef struct mount_entry {
  const char *source, *target, *type;
  unsigned long flags;
  const char *data;
  bool required;
} mount_entry;

int mount_system(sk_error *err) {
  uint64_t t0 = mono_ms();
  make_root_a_mount();
  const unsigned long nsd = MS_NOSUID | MS_NODEV, nsde = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  static const mount_entry table[] = {
      {"proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, true},
      {"sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, true},
      {"devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", true},
  };
  const mount_entry rest[] = {
      {"devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666", true},
      {"shm", "/dev/shm", "tmpfs", nsd, "mode=1777", true},
      {"mqueue", "/dev/mqueue", "mqueue", nsde, NULL, false},
      {"tmpfs", "/run", "tmpfs", nsd, "mode=0755", true},
      {"tmpfs", "/tmp", "tmpfs", nsd, "mode=1777", true},
      {"cgroup2", "/sys/fs/cgroup", "cgroup2", nsde, "nsdelegate", true},
      {"securityfs", "/sys/kernel/security", "securityfs", nsde, NULL, false},
      {"bpf", "/sys/fs/bpf", "bpf", nsde, "mode=0700", false},
  };
  for (size_t pass = 0; pass < 2; pass++) {
    const mount_entry *list = pass == 0 ? table : rest;
    size_t n = pass == 0 ? sizeof table / sizeof *table : sizeof rest / sizeof *rest;
    for (size_t i = 0; i < n; i++) {
      const mount_entry *m = &list[i];
      mkdir(m->target, 0755);
      if (mount(m->source, m->target, m->type, m->flags, m->data) == 0 || errno == EBUSY) continue;
      int e = errno;
      if (strcmp(m->type, "cgroup2") == 0 && mount(m->source, m->target, m->type, m->flags, NULL) == 0) continue;
      if (m->required) return sk_fail(err, e, "mount %s on %s", m->type, m->target);
      debug("mount %s on %s: %s (optional)", m->type, m->target, strerror(e));
    }
    if (pass == 0) console_reopen();
  }
  /* What bash and friends expect in /dev, which devtmpfs does not make. */
  static const char *const links[][2] = {{"/proc/self/fd", "/dev/fd"},
                                         {"/proc/self/fd/0", "/dev/stdin"},
                                         {"/proc/self/fd/1", "/dev/stdout"},
                                         {"/proc/self/fd/2", "/dev/stderr"}};
  for (size_t i = 0; i < sizeof links / sizeof *links; i++)
    if (symlink(links[i][0], links[i][1]) < 0 && errno != EEXIST) debug("symlink %s: %s", links[i][1], strerror(errno));
  /* Shared, as on systemd hosts: containers may ask for rshared bind propagation. */
  if (mount(NULL, "/", NULL, MS_REC | MS_SHARED, NULL) < 0) warn("making / shared: %s", strerror(errno));
  say("mounts: /proc /sys /dev /dev/pts /dev/shm /run /tmp /sys/fs/cgroup (%llu ms)",
      (unsigned long long)(mono_ms() - t0));
  return 0;
}

void enable_cgroup_controllers(void) {
  static const char *const wanted[] = {"cpu", "cpuset", "io", "memory", "pids"};
  char enabled[128] = "";
  for (size_t i = 0; i < sizeof wanted / sizeof *wanted; i++) {
    char word[32];
    snprintf(word, sizeof word, "+%s", wanted[i]);
    sk_error err;
    if (write_str("/sys/fs/cgroup/cgroup.subtree_control", word, &err) < 0) {
      warn("cgroup controller %s: %s", wanted[i], err.msg);
      continue;
    }
    snprintf(enabled + strlen(enabled), sizeof enabled - strlen(enabled), " %s", wanted[i]);
  }
  say("cgroup v2 controllers:%s", enabled[0] ? enabled : " none");
}

/* ---- kernel modules ---- */

/* "name.param=value" words of the kernel command line for this module (what modprobe adds). */
static void cmdline_params(const char *cmdline, const char *module, char *out, size_t size) {
  size_t mlen = strlen(module);
  const char *p = cmdline;
  while (*p) {
    while (*p == ' ' || *p == '\n') p++;
    const char *end = p;
    while (*end && *end != ' ' && *end != '\n') end++;
    if ((size_t)(end - p) > mlen + 1 && p[mlen] == '.') {
      bool same = true;
      for (size_t i = 0; i < mlen && same; i++) {
        char a = p[i] == '-' ? '_' : p[i];
        same = a == module[i];
      }
      if (same) {
        size_t used = strlen(out);
        snprintf(out + used, size - used, "%s%.*s", used ? " " : "", (int)(end - p - (int)mlen - 1), p + mlen + 1);
      }
    }
    p = end;
  }
}

void load_modules(const init_opts *o) {
  uint64_t t0 = mono_ms();
  char listbuf[PATH_MAX];
  const char *list = o->modules_list ? o->modules_list : rpath(o, "/etc/skiff/modules", listbuf);
  char *text = NULL, *cmdline = NULL;
  sk_error err;
  if (read_file(list, &text, NULL, &err) < 0) {
    warn("kernel modules: %s (no modules loaded)", err.msg);
    return;
  }
  if (read_file("/proc/cmdline", &cmdline, NULL, &err) < 0) cmdline = strdup("");
  struct utsname u;
  uname(&u);
  int loaded = 0, present = 0, missing = 0, failed = 0;
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    while (*line == ' ' || *line == '\t') line++;
    if (!*line || *line == '#' || strncmp(line, "builtin ", 8) == 0) continue;
    if (strncmp(line, "insmod ", 7) == 0) line += 7; /* modprobe --show-depends lines */
    char *params = strchr(line, ' ');
    if (params) *params++ = '\0';
    char path[PATH_MAX];
    if (line[0] == '/')
      snprintf(path, sizeof path, "%s", line);
    else
      snprintf(path, sizeof path, "/lib/modules/%s/%s", u.release, line);
    /* the module's name: the file name without .ko[.xz|.zst|.gz], dashes as underscores */
    char name[NAME_MAX + 1];
    const char *base = strrchr(path, '/');
    snprintf(name, sizeof name, "%s", base ? base + 1 : path);
    char *ko = strstr(name, ".ko");
    bool compressed = ko && ko[3] == '.';
    if (ko) *ko = '\0';
    for (char *c = name; *c; c++)
      if (*c == '-') *c = '_';
    char all[1024] = "";
    snprintf(all, sizeof all, "%s", params ? params : "");
    cmdline_params(cmdline, name, all, sizeof all);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      warn("kernel module %s: %s: %s", name, path, strerror(errno));
      missing++;
      continue;
    }
    uint64_t m0 = mono_ms();
    long r = syscall(SYS_finit_module, fd, all, compressed ? MODULE_INIT_COMPRESSED_FILE : 0);
    int e = errno;
    close(fd);
    if (r == 0) {
      loaded++;
      debug("kernel module %s%s%s (%llu ms)", name, all[0] ? " " : "", all, (unsigned long long)(mono_ms() - m0));
    } else if (e == EEXIST) {
      present++;
    } else {
      warn("kernel module %s: %s", name, strerror(e));
      failed++;
    }
  }
  free(text);
  free(cmdline);
  say("kernel modules: %d loaded, %d already there, %d missing, %d failed (%llu ms)", loaded, present, missing, failed,
      (unsigned long long)(mono_ms() - t0));
}

/* ---- programs ---- */

int run_program(char *const argv[], sk_error *err) {
  pid_t pid = fork();
  if (pid < 0) return sk_fail(err, errno, "fork for %s", argv[0]);
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, 0);
    dup2(2, 1);
    execv(argv[0], argv);
    fprintf(stderr, "skiff-init: exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return sk_fail(err, errno, "waiting for %s", argv[0]);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  if (WIFEXITED(status)) return sk_fail(err, 0, "%s failed (exit status %d)", argv[0], WEXITSTATUS(status));
  return sk_fail(err, 0, "%s killed by signal %d", argv[0], WTERMSIG(status));
}

static const char *find_program(const char *name, char *buf) {
  static const char *const dirs[] = {"/sbin", "/usr/sbin", "/bin", "/usr/bin"};
  for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
    snprintf(buf, PATH_MAX, "%s/%s", dirs[i], name);
    if (access(buf, X_OK) == 0) return buf;
  }
  return NULL;
}

/* ---- data disk ---- */

int setup_data_disk(const init_opts *o, const char *device, sk_error *err) {
  uint64_t t0 = mono_ms();
  int fd = -1;
  /* The node appears when virtio_blk probes the disk: give it a moment. */
  for (int tries = 0; tries < 300; tries++) {
    fd = open(device, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 || errno != ENOENT) break;
    usleep(10000);
  }
  if (fd < 0)
    return sk_fail(err, errno, "data disk %s (is the disk attached, and virtio_blk in /etc/skiff/modules?)", device);
  unsigned char magic[2] = {0, 0};
  ssize_t n = pread(fd, magic, 2, 1080);
  int e = errno;
  close(fd);
  if (n < 0) return sk_fail(err, e, "data disk %s: reading the superblock", device);
  if (n != 2 || magic[0] != 0x53 || magic[1] != 0xEF) {
    char mkfs[PATH_MAX];
    if (!find_program("mkfs.ext4", mkfs))
      return sk_fail(err, ENOENT, "data disk %s needs formatting but mkfs.ext4 is missing (e2fsprogs)", device);
    say("data disk %s: no ext4 file system: formatting it (first boot)", device);
    uint64_t f0 = mono_ms();
    char *argv[] = {
        mkfs,           "-q", "-F", "-m", "0", "-L", "skiff-data", "-E", "lazy_itable_init=1,lazy_journal_init=1",
        (char *)device, NULL};
    if (run_program(argv, err) < 0) return sk_wrap(err, "data disk %s: formatting", device);
    say("data disk %s: formatted in %llu ms", device, (unsigned long long)(mono_ms() - f0));
  }
  char target[PATH_MAX];
  rpath(o, DATA_MOUNT, target);
  if (mkdir_p(target, 0755, err) < 0) return sk_wrap(err, "data disk");
  if (mount(device, target, "ext4", MS_NOATIME, "") < 0)
    return sk_fail(err, errno, "data disk: mount %s on %s (ext4)", device, target);
  say("data disk %s mounted on %s (%llu ms)", device, target, (unsigned long long)(mono_ms() - t0));
  return 0;
}

/* ---- network ---- */

static int if_up(int sock, const char *name, sk_error *err) {
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0) return sk_fail(err, errno, "interface %s", name);
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0) return sk_fail(err, errno, "interface %s: up", name);
  return 0;
}

static int set_in_addr(int sock, const char *name, unsigned long req, const char *addr, sk_error *err) {
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
  sin->sin_family = AF_INET;
  inet_pton(AF_INET, addr, &sin->sin_addr);
  if (ioctl(sock, req, &ifr) < 0) return sk_fail(err, errno, "interface %s: address %s", name, addr);
  return 0;
}

/* A gratuitous ARP: slirp learns the guest's MAC at once instead of holding the first forwarded connection. */
static void announce(const char *ifname) {
  int s = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP));
  if (s < 0) return;
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
  /* struct ifreq is a union: keep the MAC before SIOCGIFINDEX writes the index over it. */
  unsigned char mac[6];
  bool have_mac = ioctl(s, SIOCGIFHWADDR, &ifr) == 0;
  if (have_mac) memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  if (have_mac && ioctl(s, SIOCGIFINDEX, &ifr) == 0) {
    unsigned char pkt[28];
    struct in_addr ip;
    inet_pton(AF_INET, GUEST_ADDR, &ip);
    memcpy(pkt, "\x00\x01\x08\x00\x06\x04\x00\x01", 8); /* Ethernet, IPv4, request */
    memcpy(pkt + 8, mac, 6);
    memcpy(pkt + 14, &ip, 4);
    memset(pkt + 18, 0, 6);
    memcpy(pkt + 24, &ip, 4);
    struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ARP), .sll_halen = 6};
    to.sll_ifindex = ifr.ifr_ifindex;
    memset(to.sll_addr, 0xff, 6);
    sendto(s, pkt, sizeof pkt, 0, (struct sockaddr *)&to, sizeof to);
  }
  close(s);
}

int setup_network(sk_error *err) {
  uint64_t t0 = mono_ms();
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return sk_fail(err, errno, "network: socket");
  int rc = -1;
  if (if_up(sock, "lo", err) < 0) goto out;
  /* eth0 appears when virtio_net probes the device: give it a moment. */
  struct ifreq probe = {0};
  snprintf(probe.ifr_name, IFNAMSIZ, "eth0");
  for (int tries = 0; tries < 300 && ioctl(sock, SIOCGIFFLAGS, &probe) < 0 && errno == ENODEV; tries++) usleep(10000);
  if (set_in_addr(sock, "eth0", SIOCSIFADDR, GUEST_ADDR, err) < 0 ||
      set_in_addr(sock, "eth0", SIOCSIFNETMASK, GUEST_MASK, err) < 0 || if_up(sock, "eth0", err) < 0) {
    sk_wrap(err, "network (is virtio_net in /etc/skiff/modules?)");
    goto out;
  }
  struct rtentry rt = {0};
  struct sockaddr_in *dst = (struct sockaddr_in *)&rt.rt_dst, *gw = (struct sockaddr_in *)&rt.rt_gateway,
                     *mask = (struct sockaddr_in *)&rt.rt_genmask;
  dst->sin_family = gw->sin_family = mask->sin_family = AF_INET;
  inet_pton(AF_INET, GATEWAY, &gw->sin_addr);
  rt.rt_flags = RTF_UP | RTF_GATEWAY;
  rt.rt_dev = "eth0";
  if (ioctl(sock, SIOCADDRT, &rt) < 0 && errno != EEXIST) {
    sk_fail(err, errno, "network: default route via %s", GATEWAY);
    goto out;
  }
  announce("eth0");
  say("network: lo up, eth0 %s/24, default route via %s (%llu ms)", GUEST_ADDR, GATEWAY,
      (unsigned long long)(mono_ms() - t0));
  rc = 0;
out:
  close(sock);
  return rc;
}

int set_hostname(const char *hostname, sk_error *err) {
  if (sethostname(hostname, strlen(hostname)) < 0) return sk_fail(err, errno, "sethostname %s", hostname);
  return 0;
}

int write_network_files(const init_opts *o, const char *hostname, sk_error *err) {
  char path[PATH_MAX], text[1024];
  if (mkdir_p(rpath(o, "/etc", path), 0755, err) < 0) return sk_wrap(err, "network files");
  const char *resolv = "nameserver " NAMESERVER "\n";
  if (write_file_atomic(rpath(o, "/etc/resolv.conf", path), resolv, strlen(resolv), 0644, err) < 0)
    return sk_wrap(err, "network files");
  snprintf(text, sizeof text, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" GUEST_ADDR "\t%s\n",
           hostname);
  if (write_file_atomic(rpath(o, "/etc/hosts", path), text, strlen(text), 0644, err) < 0)
    return sk_wrap(err, "network files");
  snprintf(text, sizeof text, "%s\n", hostname);
  if (write_file_atomic(rpath(o, "/etc/hostname", path), text, strlen(text), 0644, err) < 0)
    return sk_wrap(err, "network files");
  return 0;
}

/* ---- clock ---- */

/* The kernel sets the time from the RTC when the RTC driver is built in; when it was not (a module), read it. */
void check_clock(void) {
  time_t now = time(NULL);
  struct tm tm;
  if (now < 1577836800) { /* before 2020: the kernel did not read the RTC */
    int fd = open("/dev/rtc0", O_RDONLY | O_CLOEXEC);
    struct rtc_time rt;
    if (fd >= 0 && ioctl(fd, RTC_RD_TIME, &rt) == 0) {
      tm = (struct tm){.tm_sec = rt.tm_sec,
                       .tm_min = rt.tm_min,
                       .tm_hour = rt.tm_hour,
                       .tm_mday = rt.tm_mday,
                       .tm_mon = rt.tm_mon,
                       .tm_year = rt.tm_year};
      struct timeval tv = {.tv_sec = timegm(&tm)};
      if (settimeofday(&tv, NULL) == 0) now = tv.tv_sec;
    }
    if (fd >= 0) close(fd);
  }
  gmtime_r(&now, &tm);
  char text[64];
  strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (now < 1577836800)
    warn("clock: %s: looks wrong (no RTC?): TLS certificates will fail", text);
  else
    say("clock: %s", text);
}

/* ---- shares ---- */

void mount_shares(const init_opts *o, const init_config *c) {
  for (int i = 0; i < c->nshares; i++) {
    const share *sh = &c->shares[i];
    char target[PATH_MAX];
    rpath(o, sh->path, target);
    sk_error err;
    uint64_t t0 = mono_ms();
    if (mkdir_p(target, 0755, &err) < 0) {
      warn("share %s: %s", sh->tag, err.msg);
      continue;
    }
    if (sh->virtiofs) {
      if (mount(sh->tag, target, "virtiofs", MS_NOATIME, NULL) < 0) {
        warn("share %s on %s: mount virtiofs: %s (is -device vhost-user-fs-...,tag=%s given, and virtiofs loaded?)",
             sh->tag, target, strerror(errno), sh->tag);
        continue;
      }
    } else if (mount(sh->tag, target, "9p", MS_NOATIME, "trans=virtio,version=9p2000.L,msize=512000") < 0) {
      warn("share %s on %s: mount 9p: %s (is -virtfs ...,mount_tag=%s given, and 9pnet_virtio loaded?)", sh->tag,
           target, strerror(errno), sh->tag);
      continue;
    }
    say("share %s (%s) mounted on %s (%llu ms)", sh->tag, sh->virtiofs ? "virtiofs" : "9p", target,
        (unsigned long long)(mono_ms() - t0));
  }
}

/* ---- SSH ---- */

int write_ssh_files(const init_opts *o, const init_config *c, sk_error *err) {
  char path[PATH_MAX];
  if (mkdir_p(rpath(o, "/etc/ssh", path), 0755, err) < 0) return sk_wrap(err, "ssh host key");
  if (write_file_atomic(rpath(o, "/etc/ssh/ssh_host_ed25519_key", path), c->host_key, c->host_key_len, 0600, err) < 0)
    return sk_wrap(err, "ssh host key");
  /* Not in /root/.ssh: the user's home is shared into the VM at the same path, and for root on a Linux host that
   * is /root: the share would hide the key, or the key would be written into the host's own home. */
  if (write_file_atomic(rpath(o, "/etc/ssh/skiff_authorized_keys", path), c->authorized_keys, c->authorized_keys_len,
                        0600, err) < 0)
    return sk_wrap(err, "authorized_keys");
  /* sshd's privilege separation directory, on the fresh /run */
  if (mkdir_p(rpath(o, "/run/sshd", path), 0755, err) < 0) return sk_wrap(err, "sshd");
  return 0;
}

/* ---- power-off ---- */

/* Unescape a mountinfo field (\040 for a space...) in place. */
static void unescape(char *s) {
  char *w = s;
  for (char *r = s; *r; r++) {
    if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] && r[3]) {
      *w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
      r += 3;
    } else {
      *w++ = *r;
    }
  }
  *w = '\0';
}

/* Unmount target and everything mounted below it (container overlays...), the last mounted first. A busy file
 * system is made read-only instead, so that its journal is clean. */
static void unmount_tree(const char *target) {
  char *info = NULL;
  sk_error err;
  char *points[512];
  int n = 0;
  size_t tlen = strlen(target);
  if (read_file("/proc/self/mountinfo", &info, NULL, &err) == 0) {
    char *save = NULL;
    for (char *line = strtok_r(info, "\n", &save); line && n < 512; line = strtok_r(NULL, "\n", &save)) {
      char *f = line;
      for (int i = 0; i < 4 && f; i++) {
        f = strchr(f, ' ');
        if (f) f++;
      }
      if (!f) continue;
      char *end = strchr(f, ' ');
      if (end) *end = '\0';
      unescape(f);
      if (strncmp(f, target, tlen) == 0 && (f[tlen] == '\0' || f[tlen] == '/')) points[n++] = f;
    }
  }
  if (n == 0) {
    free(info);
    return;
  }
  bool done = true;
  for (int i = n - 1; i >= 0; i--) {
    if (umount2(points[i], 0) == 0 || errno == EINVAL || errno == ENOENT) continue;
    int e = errno;
    if (strcmp(points[i], target) == 0) {
      done = false;
      if (mount(NULL, target, NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0)
        warn("unmount %s: %s: remounted read-only", target, strerror(e));
      else
        warn("unmount %s: %s; read-only remount: %s", target, strerror(e), strerror(errno));
    } else {
      umount2(points[i], MNT_DETACH);
    }
  }
  if (done) say("unmounted %s", target);
  free(info);
}

void unmount_all(const init_opts *o, const init_config *c) {
  char path[PATH_MAX];
  for (int i = c->nshares - 1; i >= 0; i--) unmount_tree(rpath(o, c->shares[i].path, path));
  if (c->data_device) unmount_tree(rpath(o, DATA_MOUNT, path));
}
