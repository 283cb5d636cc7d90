/* Errors carried up with context: every failing step says what it was doing and why.
 * A function that fails fills *err and returns -1; callers add their own context with sk_wrap. */
#ifndef SKIFF_ERROR_H
#define SKIFF_ERROR_H

#include <stddef.h>

typedef struct sk_error {
  int errnum;     /* errno of the root cause, 0 if none */
  char msg[4096]; /* "step: cause: strerror" */
} sk_error;

/* Set err to fmt (plus ": strerror(errnum)" when errnum != 0). Returns -1. */
int sk_fail(sk_error *err, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefix the message already in err with fmt + ": ". Returns -1. */
int sk_wrap(sk_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
