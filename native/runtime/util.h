/* Small helpers shared by every module of the runtime: files, numbers, strings. */
#ifndef SKIFF_UTIL_H
#define SKIFF_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* Write all of buf to path (O_WRONLY|O_TRUNC|O_CLOEXEC, creating with mode when create). */
int write_file(const char *path, const char *buf, size_t len, bool create, mode_t mode, sk_error *err);
/* write_file with a NUL-terminated string, no create: the usual way to poke /proc and /sys. */
int write_str(const char *path, const char *s, sk_error *err);
/* write(2) to a file under dirfd, no create. */
int write_at(int dirfd, const char *name, const char *s, sk_error *err);
/* Crash-safe replace: write to path.tmp, fsync, rename over path. */
int write_file_atomic(const char *path, const char *buf, size_t len, mode_t mode, sk_error *err);
/* Read a whole file (NUL-terminated, malloc'd) into *out; *len may be NULL. */
int read_file(const char *path, char **out, size_t *len, sk_error *err);
/* Read everything from an open fd (NUL-terminated, malloc'd). */
int read_fd_all(int fd, char **out, size_t *len, sk_error *err);
int read_file_at(int dirfd, const char *name, char **out, size_t *len, sk_error *err);
/* mkdir -p with mode for created components; existing directories are fine. */
int mkdir_p(const char *path, mode_t mode, sk_error *err);
/* Write all of buf to fd, retrying on EINTR and short writes. Returns 0 or -1 with errno set. */
int write_all(int fd, const void *buf, size_t len);
/* Parse a whole decimal number; false when s has anything else. */
bool parse_u64(const char *s, uint64_t *out);
bool parse_i64(const char *s, int64_t *out);
/* The start time of pid (field 22 of /proc/pid/stat), and its state letter; -1 if it is gone. */
int proc_stat(pid_t pid, uint64_t *start_time, char *state);
/* Monotonic milliseconds. */
uint64_t now_ms(void);

#endif
