#include "log.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* The one piece of process-wide state: where the log goes. Set once by main before any work. */
static struct {
  int fd;
  bool json, debug;
} logger = {-1, false, false};

int log_open(const char *path, bool json, bool debug) {
  logger.json = json;
  logger.debug = debug;
  if (path == NULL || *path == '\0') return 0;
  logger.fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  return logger.fd < 0 ? -1 : 0;
}

bool log_debug_enabled(void) { return logger.debug; }

static void emit(const char *level, const char *fmt, va_list ap) {
  char msg[4096];
  vsnprintf(msg, sizeof msg, fmt, ap);
  bool is_error = strcmp(level, "error") == 0;
  int fd = logger.fd >= 0 ? logger.fd : STDERR_FILENO;
  char line[8192];
  int n;
  if (logger.json) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[64];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "level", json_object_new_string(level));
    json_object_object_add(o, "msg", json_object_new_string(msg));
    json_object_object_add(o, "time", json_object_new_string(when));
    n = snprintf(line, sizeof line, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
  } else {
    n = snprintf(line, sizeof line, "skiff-runtime: %s%s%s\n", is_error ? "" : level, is_error ? "" : ": ", msg);
  }
  if (n > (int)sizeof line - 1) n = sizeof line - 1;
  write_all(fd, line, (size_t)n);
  /* Callers that only read stderr must still see errors, in plain text. */
  if (is_error && fd != STDERR_FILENO) {
    n = snprintf(line, sizeof line, "skiff-runtime: %s\n", msg);
    if (n > (int)sizeof line - 1) n = sizeof line - 1;
    write_all(STDERR_FILENO, line, (size_t)n);
  }
}

void log_debug(const char *fmt, ...) {
  if (!logger.debug) return;
  va_list ap;
  va_start(ap, fmt);
  emit("debug", fmt, ap);
  va_end(ap);
}

void log_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit("warning", fmt, ap);
  va_end(ap);
}

void log_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit("error", fmt, ap);
  va_end(ap);
}
