#include "sealed.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

static const int all_seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

int ensure_sealed(char **argv, char **envp, char *msg, unsigned long msglen) {
  int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (self < 0) return snprintf(msg, msglen, "opening /proc/self/exe: %s", strerror(errno)), -1;
  int seals = fcntl(self, F_GET_SEALS);
  if (seals >= 0 && (seals & all_seals) == all_seals) {
    close(self);
    return 0;
  }
  struct stat st;
  if (fstat(self, &st) < 0) {
    snprintf(msg, msglen, "stat /proc/self/exe: %s", strerror(errno));
    close(self);
    return -1;
  }
  int mfd = memfd_create("skiff-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (mfd < 0 && errno == EINVAL) mfd = memfd_create("skiff-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0) {
    snprintf(msg, msglen, "memfd_create for the sealed runtime copy: %s", strerror(errno));
    close(self);
    return -1;
  }
  for (off_t left = st.st_size; left > 0;) {
    ssize_t n = sendfile(mfd, self, NULL, (size_t)left);
    if (n <= 0) {
      snprintf(msg, msglen, "copying the runtime into a memfd: %s", n < 0 ? strerror(errno) : "short copy");
      close(self);
      close(mfd);
      return -1;
    }
    left -= n;
  }
  close(self);
  if (fcntl(mfd, F_ADD_SEALS, all_seals) < 0) {
    snprintf(msg, msglen, "sealing the runtime copy: %s", strerror(errno));
    close(mfd);
    return -1;
  }
  syscall(SYS_execveat, mfd, "", argv, envp, AT_EMPTY_PATH);
  snprintf(msg, msglen, "re-executing the sealed runtime copy: %s", strerror(errno));
  close(mfd);
  return -1;
}
