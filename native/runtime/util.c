#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int write_file(const char *path, const char *buf, size_t len, bool create, mode_t mode, sk_error *err) {
  int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | (create ? O_CREAT : 0), mode);
  if (fd < 0) return sk_fail(err, errno, "opening %s", path);
  if (write_all(fd, buf, len) < 0) {
    int e = errno;
    close(fd);
    return sk_fail(err, e, "writing %s", path);
  }
  if (close(fd) < 0) return sk_fail(err, errno, "closing %s", path);
  return 0;
}

int write_str(const char *path, const char *s, sk_error *err) { return write_file(path, s, strlen(s), false, 0, err); }

int write_at(int dirfd, const char *name, const char *s, sk_error *err) {
  int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return sk_fail(err, errno, "opening %s", name);
  if (write_all(fd, s, strlen(s)) < 0) {
    int e = errno;
    close(fd);
    return sk_fail(err, e, "writing \"%s\" to %s", s, name);
  }
  close(fd);
  return 0;
}

int write_file_atomic(const char *path, const char *buf, size_t len, mode_t mode, sk_error *err) {
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return sk_fail(err, ENAMETOOLONG, "%s", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return sk_fail(err, errno, "creating %s", tmp);
  if (write_all(fd, buf, len) < 0 || fsync(fd) < 0) {
    int e = errno;
    close(fd);
    unlink(tmp);
    return sk_fail(err, e, "writing %s", tmp);
  }
  close(fd);
  if (rename(tmp, path) < 0) {
    int e = errno;
    unlink(tmp);
    return sk_fail(err, e, "renaming %s to %s", tmp, path);
  }
  return 0;
}

static int read_fd(int fd, const char *name, char **out, size_t *lenp, sk_error *err) {
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  if (buf == NULL) return sk_fail(err, ENOMEM, "reading %s", name);
  for (;;) {
    if (len + 1 >= cap) {
      char *nb = realloc(buf, cap *= 2);
      if (nb == NULL) {
        free(buf);
        return sk_fail(err, ENOMEM, "reading %s", name);
      }
      buf = nb;
    }
    ssize_t n = read(fd, buf + len, cap - len - 1);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      free(buf);
      return sk_fail(err, e, "reading %s", name);
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  buf[len] = '\0';
  *out = buf;
  if (lenp) *lenp = len;
  return 0;
}

int read_fd_all(int fd, char **out, size_t *len, sk_error *err) { return read_fd(fd, "standard input", out, len, err); }

int read_file_at(int dirfd, const char *name, char **out, size_t *len, sk_error *err) {
  int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return sk_fail(err, errno, "opening %s", name);
  int r = read_fd(fd, name, out, len, err);
  close(fd);
  return r;
}

int read_file(const char *path, char **out, size_t *len, sk_error *err) {
  return read_file_at(AT_FDCWD, path, out, len, err);
}

int mkdir_p(const char *path, mode_t mode, sk_error *err) {
  char buf[PATH_MAX];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof buf) return sk_fail(err, ENAMETOOLONG, "mkdir %s", path);
  memcpy(buf, path, n + 1);
  for (char *p = buf + 1;; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      if (mkdir(buf, mode) < 0 && errno != EEXIST) return sk_fail(err, errno, "mkdir %s", buf);
      if (c == '\0') break;
      *p = c;
    }
  }
  return 0;
}

bool parse_u64(const char *s, uint64_t *out) {
  if (s == NULL || *s < '0' || *s > '9') return false;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

bool parse_i64(const char *s, int64_t *out) {
  if (s == NULL || *s == '\0') return false;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

int proc_stat(pid_t pid, uint64_t *start_time, char *state) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  /* comm may contain spaces and parentheses: fields start after the last ')' */
  char *p = strrchr(buf, ')');
  if (p == NULL || p[1] != ' ') return -1;
  p += 2;
  if (state) *state = *p;
  /* p is field 3 (state); start time is field 22 */
  for (int field = 3; field < 22; field++) {
    p = strchr(p, ' ');
    if (p == NULL) return -1;
    p++;
  }
  if (start_time) *start_time = strtoull(p, NULL, 10);
  return 0;
}

uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
