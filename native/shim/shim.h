/* skiff-shim: one small process per container (docs/shim-protocol.md). Everything the shim knows lives in one
 * `shim` struct owned by main's poll loop; no other mutable global state. */
#ifndef SKIFF_SHIM_H
#define SKIFF_SHIM_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "error.h"

#define SHIM_PROTOCOL_VERSION 1
#define READ_CHUNK (32 * 1024)
#define LOG_LINE_MAX (16 * 1024)          /* Docker's split size */
#define ATTACH_OUT_MAX (4 * 1024 * 1024)  /* a slower attacher is disconnected */
#define CLIENT_OUT_MAX (16 * 1024 * 1024) /* a control client that stops reading is disconnected */
#define CLIENT_LINE_MAX (1024 * 1024)
#define ATTACH_FRAME_MAX (1024 * 1024)
#define STDIN_PENDING_MAX (1024 * 1024)
#define DRAIN_GRACE_MS 250 /* after an exit, how long to wait for output held open by others */

/* A growable byte buffer. */
typedef struct buf {
  char *data;
  size_t len, cap;
} buf;
int buf_append(buf *b, const void *p, size_t n);
void buf_consume(buf *b, size_t n);
void buf_free(buf *b);

/* Docker json-file log: partial lines per stream, rotation by size. */
typedef struct logfile {
  const char *path;
  int fd;
  uint64_t size, max_size; /* max_size 0: no rotation */
  int max_file;
  char part[2][LOG_LINE_MAX]; /* stdout, stderr partial lines */
  size_t part_len[2];
  buf out;
} logfile;
int log_open_file(logfile *lf, sk_error *err);
/* Feed bytes of stream 0 (stdout) or 1 (stderr); whole lines and 16 KiB pieces are written at once. */
void log_feed(logfile *lf, int stream, const char *p, size_t n);
/* Write out partial lines (at exit). */
void log_flush_partial(logfile *lf);
/* RFC 3339 UTC: nanoseconds trimmed as Go's RFC3339Nano (trim) or fixed 9 digits. */
void format_time(const struct timespec *ts, bool trim, char out[40]);
/* Append s as a JSON string the way Docker's json-file writer does. */
void json_escape_docker(buf *b, const char *s, size_t n);

typedef struct attacher attacher;

/* The init or an exec'd process. */
typedef struct process {
  char *exec_id; /* NULL for the init */
  pid_t pid;
  bool tty, want_stdin;
  bool started;  /* init: runtime start ran */
  bool exited;   /* reaped */
  bool recorded; /* exit record written and announced */
  bool held;     /* exec output not read until its first attacher connects */
  int out[2];    /* stdout/stderr read ends; with a tty out[0] is the pty master and out[1] is -1 */
  int stdin_fd;  /* pipe write end, the pty master (shared with out[0]), or -1 */
  bool stdin_closed;
  bool stdin_close_pending; /* close once stdin_pending is written */
  buf stdin_pending;
  int exit_code, signal;
  bool oom_killed;
  struct timespec exited_at;
  uint64_t deadline_ms; /* drain deadline after the exit, 0 if none */
  struct process *next;
} process;

struct attacher {
  int fd;
  process *proc; /* NULL until its hello */
  buf in, out;
  bool closing; /* close once out is flushed */
  attacher *next;
};

typedef struct client {
  int fd;
  buf in, out;
  json_object *sub_id; /* the subscribe request's id, when subscribed */
  bool subscribed, closing;
  struct client *next;
} client;

typedef struct waiter {
  client *c;
  json_object *req_id;
  process *proc;
  struct waiter *next;
} waiter;

typedef struct shim_opts {
  const char *id, *bundle, *dir, *runtime, *runtime_root, *log_path;
  uint64_t log_max_size;
  int log_max_file;
  bool tty, stdin;
} shim_opts;

typedef struct shim {
  shim_opts o;
  int ctl_listen, att_listen, sigfd;
  int oom_fd; /* eventfd (v1) or inotify (v2), -1 if none */
  char oom_file[4096];
  uint64_t oom_base, oom_seen;
  process *procs; /* the init first */
  client *clients;
  attacher *attachers;
  waiter *waiters;
  bool has_log;
  logfile log;
  bool quit;
  unsigned generation; /* bumped when a process is freed */
  char rbuf[READ_CHUNK];
} shim;

/* proc.c: the runtime, processes, exits, OOM */
int run_runtime(shim *s, const char *const *args, int fd0, int fd1, int fd2, sk_error *err);
int shim_create(shim *s, sk_error *err);
int shim_start(shim *s, sk_error *err);
int shim_exec(shim *s, const char *exec_id, json_object *process, bool tty, bool want_stdin, pid_t *pid, sk_error *err);
int shim_kill(shim *s, process *p, int sig, bool all, sk_error *err);
int shim_resize(process *p, unsigned w, unsigned h, sk_error *err);
void shim_close_stdin(process *p);
void shim_reap(shim *s);
void shim_check_deadlines(shim *s, uint64_t now);
void shim_proc_output(shim *s, process *p, int stream);
void shim_flush_stdin(process *p);
void shim_unhold(shim *s, process *p);
process *shim_find(shim *s, const char *exec_id);
void process_free(process *p);
void oom_setup(shim *s);
void oom_check(shim *s);
json_object *exit_json(const process *p);
const char *proc_status(const shim *s, const process *p);

/* control.c: the control and attach sockets */
int listen_unix(const char *path, sk_error *err);
void control_accept(shim *s);
void control_io(shim *s, client *c, short revents);
void attach_accept(shim *s);
void attach_io(shim *s, attacher *a, short revents);
/* Handle frames already received (again after a full stdin drained). */
void attacher_frames(shim *s, attacher *a);
/* Announce an event to subscribers; answer waiters of p; send exit frames to p's attachers. */
void notify_event(shim *s, json_object *ev);
void notify_exit(shim *s, process *p);
void attach_output(shim *s, process *p, int stream, const char *data, size_t n);
void attach_exit(shim *s, process *p);
void client_flush(client *c);
void attacher_flush(attacher *a);
void forget_process(shim *s, process *p);
/* Remove the files the shim made in SHIMDIR (not the directory). */
void shim_remove_files(shim *s);

#endif
