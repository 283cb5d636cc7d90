/* CVE-2019-5736: a container must never reach the runtime's binary on disk (through /proc/<pid>/exe of a
 * runtime process that joined it) and overwrite it. Commands that run code inside a container first re-exec
 * the runtime from a sealed memfd copy, as crun does: a write through that file fails with EPERM. */
#ifndef SKIFF_SEALED_H
#define SKIFF_SEALED_H

/* Returns only on failure (with errno text in the message); on success the process is replaced. When already
 * running from a sealed copy, returns 0 at once. */
int ensure_sealed(char **argv, char **envp, char *msg, unsigned long msglen);

#endif
