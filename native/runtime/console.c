#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

int console_connect(const char *path, sk_error *err) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) return sk_fail(err, ENAMETOOLONG, "console socket %s", path);
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return sk_fail(err, errno, "console socket: socket");
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    return sk_fail(err, e, "connecting to the console socket %s", path);
  }
  return fd;
}

static int send_fd(int sock, int fd, const char *name) {
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = {.iov_base = (void *)name, .iov_len = strlen(name)};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  memset(u.buf, 0, sizeof u.buf);
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t n;
  do n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -1 : 0;
}

/* Bind the pty slave over /dev/console. The image may have planted a symlink there (pointing into /proc, say):
 * never follow one, and only mount over a regular file or a device node. */
static int bind_console(int slave, sk_error *err) {
  struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
  int fd = (int)syscall(SYS_openat2, AT_FDCWD, "/dev/console", &how, sizeof how);
  if (fd < 0 && errno == ENOENT) {
    int c = open("/dev/console", O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (c < 0) return sk_fail(err, errno, "creating /dev/console");
    close(c);
    fd = (int)syscall(SYS_openat2, AT_FDCWD, "/dev/console", &how, sizeof how);
  }
  if (fd < 0) return sk_fail(err, errno, "opening /dev/console");
  struct stat st;
  int rc = 0, tree = -1;
  if (fstat(fd, &st) < 0)
    rc = sk_fail(err, errno, "stat /dev/console");
  else if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode))
    rc = sk_fail(err, 0, "/dev/console is neither a file nor a device");
  else if ((tree = open_tree(slave, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH)) < 0 ||
           move_mount(tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    rc = sk_fail(err, errno, "bind mounting the pty on /dev/console");
  if (tree >= 0) close(tree);
  close(fd);
  return rc;
}

int console_setup(int sock, unsigned rows, unsigned cols, bool bind_dev_console, sk_error *err) {
  char name[64];
  int rc = -1, slave = -1;
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) {
    sk_fail(err, errno, "opening /dev/ptmx");
    goto out;
  }
  if (unlockpt(master) < 0 || ptsname_r(master, name, sizeof name) != 0) {
    sk_fail(err, errno, "unlocking the pty");
    goto out;
  }
  if ((slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
    sk_fail(err, errno, "opening the pty %s", name);
    goto out;
  }
  if (send_fd(sock, master, name) < 0) {
    sk_fail(err, errno, "sending the pty master over the console socket");
    goto out;
  }
  close(master);
  master = -1;
  close(sock);
  sock = -1;
  if (rows || cols) {
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    if (ioctl(slave, TIOCSWINSZ, &ws) < 0) {
      sk_fail(err, errno, "setting the terminal size");
      goto out;
    }
  }
  if (bind_dev_console && bind_console(slave, err) < 0) goto out;
  /* a new session: already its leader is fine (setsid fails with EPERM then) */
  if (setsid() < 0 && getsid(0) != getpid()) {
    sk_fail(err, errno, "setsid");
    goto out;
  }
  if (ioctl(slave, TIOCSCTTY, 0) < 0) {
    sk_fail(err, errno, "making the pty the controlling terminal");
    goto out;
  }
  for (int i = 0; i < 3; i++)
    if (dup2(slave, i) < 0) {
      sk_fail(err, errno, "dup2 of the pty onto fd %d", i);
      goto out;
    }
  rc = 0;
out:
  if (slave > 2) close(slave);
  if (master >= 0) close(master);
  if (sock >= 0) close(sock);
  return rc;
}
