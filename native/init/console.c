/* Console lines: "[    1.234567] skiff-init: message", the time since boot (CLOCK_MONOTONIC, the clock of the
 * kernel's own timestamps), written with one write(2) each to fd 2 so that lines never interleave. PID 1 gets
 * /dev/console as fds 0-2 from the kernel (the image must hold a /dev/console node); when it did not,
 * console_reopen opens it once devtmpfs is mounted. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "init.h"
#include "util.h"

static bool verbose_lines; /* --verbose: debug() lines too */
static bool no_console;    /* the kernel gave no fds 0-2: placeholders hold them until console_reopen */

uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int stamp(char *buf, size_t size) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return snprintf(buf, size, "[%5lld.%06ld] ", (long long)ts.tv_sec, ts.tv_nsec / 1000);
}

static void emit(const char *prefix, const char *fmt, va_list ap) {
  char line[2048];
  int n = stamp(line, sizeof line);
  n += snprintf(line + n, sizeof line - (size_t)n, "skiff-init: %s", prefix);
  int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  if (m < 0) m = 0;
  n += m;
  if ((size_t)n >= sizeof line - 1) n = (int)sizeof line - 2;
  line[n++] = '\n';
  write_all(2, line, (size_t)n);
}

void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit("", fmt, ap);
  va_end(ap);
}

void warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit("warning: ", fmt, ap);
  va_end(ap);
}

void debug(const char *fmt, ...) {
  if (!verbose_lines) return;
  va_list ap;
  va_start(ap, fmt);
  emit("", fmt, ap);
  va_end(ap);
}

void console_line(const char *name, const char *text, size_t len) {
  char line[4096 + 256];
  int n = stamp(line, sizeof line);
  n += snprintf(line + n, sizeof line - (size_t)n, "%s: ", name);
  if (len > sizeof line - (size_t)n - 1) len = sizeof line - (size_t)n - 1;
  memcpy(line + n, text, len);
  n += (int)len;
  line[n++] = '\n';
  write_all(2, line, (size_t)n);
}

void console_setup(bool verbose) {
  verbose_lines = verbose;
  /* Keep fds 0-2 taken, or the first descriptors opened (the signalfd...) would become "the console". */
  for (int i = 0; i <= 2; i++) {
    if (fcntl(i, F_GETFD) >= 0) continue;
    no_console = true;
    int fd = open("/dev/console", O_RDWR | O_NOCTTY);
    if (fd < 0) fd = open("/", O_RDONLY | O_DIRECTORY); /* a placeholder: writes to it fail harmlessly */
    if (fd >= 0 && fd != i) {
      dup2(fd, i);
      close(fd);
    }
  }
}

void console_reopen(void) {
  if (!no_console) return;
  int fd = open("/dev/console", O_RDWR | O_NOCTTY);
  if (fd < 0) return; /* nowhere to write: keep going, the steps still run */
  for (int i = 0; i <= 2; i++) dup2(fd, i);
  if (fd > 2) close(fd);
  no_console = false;
}
