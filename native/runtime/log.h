/* The runtime's log: --log FILE (default stderr), --log-format text|json, --debug. Errors always go to
 * stderr too, so a caller that only reads stderr sees them. */
#ifndef SKIFF_LOG_H
#define SKIFF_LOG_H

#include <stdbool.h>

int log_open(const char *path, bool json, bool debug);
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool log_debug_enabled(void);

#endif
