/* Private to rootfs.c: the mount options of the OCI spec (runc's list) and what each one does. */
#ifndef SKIFF_MOUNTOPTS_H
#define SKIFF_MOUNTOPTS_H

#include <stdbool.h>
#include <stdint.h>

enum mopt_kind {
  MOPT_SET,   /* add MS_* flag */
  MOPT_CLEAR, /* remove MS_* flag (rw, suid, dev, …) */
  MOPT_PROP,  /* propagation: a separate mount call after the mount */
  MOPT_RATTR, /* recursive mount_setattr: attr set (or cleared when clear) */
  MOPT_EXT,   /* our own handling (tmpcopyup) */
  MOPT_UNSUP, /* known but refused (idmap) */
};

/* RATTR rows whose flag is MOPT_ATIME set an atime mode: MOUNT_ATTR__ATIME must be cleared with it. */
#define MOPT_ATIME 1UL

typedef struct mopt {
  const char *name;
  enum mopt_kind kind;
  unsigned long flag; /* MS_* for SET/CLEAR/PROP */
  uint64_t attr;      /* MOUNT_ATTR_* for RATTR (MOUNT_ATTR__ATIME options: the atime mode) */
  bool clear;         /* RATTR: clear attr instead of setting it */
} mopt;

/* The option named name, or NULL for a filesystem-specific option (passed through as mount data). */
const mopt *mopt_find(const char *name);
/* Every option name, NULL-terminated. */
const char *const *mopt_names(void);

#endif
