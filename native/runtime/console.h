/* The container's terminal. A pty is made inside the container (after pivot_root, from its own devpts), its
 * master is sent to the caller over the --console-socket in one sendmsg with SCM_RIGHTS (payload: the pty's
 * name, as runc does) and the slave becomes the process's controlling terminal and stdio. */
#ifndef SKIFF_CONSOLE_H
#define SKIFF_CONSOLE_H

#include <stdbool.h>

#include "error.h"

/* Connect to the caller's console socket (a unix stream socket path). Returns a CLOEXEC fd or -1. */
int console_connect(const char *path, sk_error *err);
/* Make the pty, send its master over sock (then close sock), set its size when rows/cols are non-zero,
 * bind the slave over /dev/console when bind_dev_console, and make the slave stdin/stdout/stderr and the
 * controlling terminal of a new session. */
int console_setup(int sock, unsigned rows, unsigned cols, bool bind_dev_console, sk_error *err);

#endif
