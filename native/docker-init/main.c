/* skiff-docker-init: the init `docker run --init` puts at PID 1 (the job of tini / docker-init).
 * It runs the command as its child, forwards every signal it can catch to it, reaps every orphan that the
 * container's processes leave behind, and exits with the child's status (128+N when killed by signal N).
 * Usage: skiff-docker-init [--] COMMAND [ARG...]. Linked statically: it runs inside any image. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  int first = 1;
  if (first < argc && strcmp(argv[first], "--") == 0) first++;
  if (first >= argc) {
    fputs("skiff-docker-init: usage: skiff-docker-init [--] COMMAND [ARG...]\n", stderr);
    return 2;
  }
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);
  pid_t child = fork();
  if (child < 0) {
    fprintf(stderr, "skiff-docker-init: fork: %s\n", strerror(errno));
    return 1;
  }
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    execvp(argv[first], argv + first);
    int e = errno;
    fprintf(stderr, "skiff-docker-init: exec %s: %s\n", argv[first], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
  }
  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(&all, &si);
    if (sig < 0) continue; /* EINTR */
    if (sig != SIGCHLD) {
      /* SIGKILL and SIGSTOP never get here; everything else goes to the command */
      kill(child, sig);
      continue;
    }
    for (;;) {
      int status;
      pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      if (pid == child) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
  }
}
