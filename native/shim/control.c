/* The control socket (newline-delimited JSON requests) and the attach socket (length-prefixed frames), as in
 * docs/shim-protocol.md. Every socket is non-blocking; output is queued per client and written when poll says. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "jsonutil.h"
#include "shim.h"
#include "util.h"

enum { STREAM_STDIN = 0, STREAM_STDOUT = 1, STREAM_STDERR = 2, STREAM_EXIT = 3, STREAM_HELLO = 4 };

int listen_unix(const char *path, sk_error *err) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) return sk_fail(err, ENAMETOOLONG, "socket path %s", path);
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return sk_fail(err, errno, "socket for %s", path);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 64) < 0) {
    int e = errno;
    close(fd);
    return sk_fail(err, e, "listening on %s", path);
  }
  return fd;
}

/* ---- control clients ---- */

static void client_send(client *c, json_object *o) {
  if (c->closing) return;
  const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
  if (c->out.len > CLIENT_OUT_MAX) { /* it stopped reading: let it go rather than grow without bound */
    c->closing = true;
    buf_consume(&c->out, c->out.len);
    return;
  }
  buf_append(&c->out, text, strlen(text));
  buf_append(&c->out, "\n", 1);
  client_flush(c);
}

void client_flush(client *c) {
  while (c->out.len) {
    ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n < 0) {
      c->closing = true;
      buf_consume(&c->out, c->out.len);
      return;
    }
    buf_consume(&c->out, (size_t)n);
  }
}

static void respond(client *c, json_object *id, json_object *res) {
  json_object_object_add(res, "id", id ? json_object_get(id) : NULL);
  client_send(c, res);
  json_object_put(res);
}

static void respond_error(client *c, json_object *id, const char *msg) {
  json_object *o = json_object_new_object();
  json_object_object_add(o, "error", json_object_new_string(msg));
  respond(c, id, o);
}

void notify_event(shim *s, json_object *ev) {
  for (client *c = s->clients; c; c = c->next)
    if (c->subscribed) {
      json_object *copy = NULL;
      json_object_deep_copy(ev, &copy, NULL);
      respond(c, c->sub_id, copy);
    }
  json_object_put(ev);
}

void notify_exit(shim *s, process *p) {
  for (waiter **w = &s->waiters; *w;) {
    if ((*w)->proc == p) {
      waiter *d = *w;
      *w = d->next;
      respond(d->c, d->req_id, exit_json(p));
      json_object_put(d->req_id);
      free(d);
    } else {
      w = &(*w)->next;
    }
  }
  json_object *ev = exit_json(p);
  json_object_object_add(ev, "event", json_object_new_string("exit"));
  if (p->exec_id) json_object_object_add(ev, "exec", json_object_new_string(p->exec_id));
  notify_event(s, ev);
}

static bool valid_exec_id(const char *id) {
  size_t n = strlen(id);
  if (n == 0 || n > 64) return false;
  for (size_t i = 0; i < n; i++) {
    char c = id[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
          c == '-'))
      return false;
  }
  return true;
}

static void remove_file(const char *name) { unlink(name); }

void shim_remove_files(shim *s) {
  static const char *const files[] = {"shim.pid",     "init.pid",     "version",
                                      "control.sock", "attach.sock",  "exit.json",
                                      "runtime.log",  "console.sock", NULL};
  for (int i = 0; files[i]; i++) remove_file(files[i]);
  for (process *p = s->procs; p; p = p->next)
    if (p->exec_id) {
      char name[128];
      snprintf(name, sizeof name, "exec-%s.exit.json", p->exec_id);
      remove_file(name);
    }
}

void forget_process(shim *s, process *p) {
  for (waiter **w = &s->waiters; *w;) {
    if ((*w)->proc == p) {
      waiter *d = *w;
      *w = d->next;
      json_object_put(d->req_id);
      free(d);
    } else {
      w = &(*w)->next;
    }
  }
  for (attacher *a = s->attachers; a; a = a->next)
    if (a->proc == p) a->proc = NULL, a->closing = true;
  for (process **pp = &s->procs; *pp; pp = &(*pp)->next)
    if (*pp == p) {
      *pp = p->next;
      break;
    }
  char name[128];
  snprintf(name, sizeof name, "exec-%s.exit.json", p->exec_id);
  unlink(name);
  process_free(p);
  s->generation++;
}

/* One request. The answer goes out now, later (wait) or as a stream (subscribe). */
static void handle(shim *s, client *c, json_object *req) {
  json_object *id = j_get(req, "id");
  const char *op = NULL, *exec = NULL;
  sk_error err;
  if (!json_object_is_type(req, json_type_object)) return respond_error(c, NULL, "a request must be a JSON object");
  if (j_string(req, "op", "request", true, &op, &err) < 0 || j_string(req, "exec", "request", false, &exec, &err) < 0)
    return respond_error(c, id, err.msg);
  process *p = NULL;
  if (strcmp(op, "exec") != 0 && strcmp(op, "version") != 0) {
    p = shim_find(s, exec);
    if (p == NULL) {
      snprintf(err.msg, sizeof err.msg, "exec %s does not exist in container %s", exec, s->o.id);
      return respond_error(c, id, err.msg);
    }
  }
  json_object *res = json_object_new_object();
  if (strcmp(op, "version") == 0) {
    json_object_object_add(res, "version", json_object_new_int(SHIM_PROTOCOL_VERSION));
  } else if (strcmp(op, "state") == 0) {
    process *init = s->procs;
    const char *st = proc_status(s, init);
    json_object_object_add(res, "container", json_object_new_string(s->o.id));
    json_object_object_add(res, "status", json_object_new_string(st));
    json_object_object_add(res, "pid", json_object_new_int(init->pid));
    if (init->recorded) {
      char when[40];
      format_time(&init->exited_at, false, when);
      json_object_object_add(res, "exitCode", json_object_new_int(init->exit_code));
      json_object_object_add(res, "exitedAt", json_object_new_string(when));
      json_object_object_add(res, "oomKilled", json_object_new_boolean(init->oom_killed));
    }
    json_object *execs = json_object_new_array();
    for (process *e = init->next; e; e = e->next) {
      json_object *o = json_object_new_object();
      json_object_object_add(o, "exec", json_object_new_string(e->exec_id));
      json_object_object_add(o, "pid", json_object_new_int(e->pid));
      json_object_object_add(o, "status", json_object_new_string(e->recorded ? "stopped" : "running"));
      if (e->recorded) json_object_object_add(o, "exitCode", json_object_new_int(e->exit_code));
      json_object_array_add(execs, o);
    }
    json_object_object_add(res, "execs", execs);
  } else if (strcmp(op, "start") == 0) {
    if (p->exec_id) goto bad_exec;
    if (shim_start(s, &err) < 0) goto fail;
    json_object_object_add(res, "pid", json_object_new_int(p->pid));
  } else if (strcmp(op, "kill") == 0) {
    int64_t sig = SIGTERM;
    bool all = false;
    if (j_int64(req, "signal", "kill", false, &sig, &err) < 0 || j_bool(req, "all", "kill", &all, &err) < 0) goto fail;
    if (sig <= 0 || sig >= 65) {
      sk_fail(&err, 0, "kill.signal must be a signal number from 1 to 64");
      goto fail;
    }
    if (shim_kill(s, p, (int)sig, all, &err) < 0) goto fail;
  } else if (strcmp(op, "resize") == 0) {
    int64_t w = 0, h = 0;
    if (j_int64(req, "width", "resize", true, &w, &err) < 0 || j_int64(req, "height", "resize", true, &h, &err) < 0)
      goto fail;
    if (w < 0 || h < 0 || w > 65535 || h > 65535) {
      sk_fail(&err, 0, "resize.width and resize.height must be from 0 to 65535");
      goto fail;
    }
    if (shim_resize(p, (unsigned)w, (unsigned)h, &err) < 0) goto fail;
  } else if (strcmp(op, "closeStdin") == 0) {
    shim_close_stdin(p);
  } else if (strcmp(op, "exec") == 0) {
    bool tty = false, in = false;
    json_object *proc = NULL;
    pid_t pid;
    if (exec == NULL) {
      sk_fail(&err, 0, "exec needs an \"exec\" id");
      goto fail;
    }
    if (!valid_exec_id(exec)) {
      sk_fail(&err, 0, "exec id \"%s\" must be 1 to 64 of A-Z a-z 0-9 _ . -", exec);
      goto fail;
    }
    if (shim_find(s, exec)) {
      sk_fail(&err, 0, "exec %s already exists in container %s", exec, s->o.id);
      goto fail;
    }
    if (j_object(req, "process", "exec", true, &proc, &err) < 0 || j_bool(req, "tty", "exec", &tty, &err) < 0 ||
        j_bool(req, "stdin", "exec", &in, &err) < 0)
      goto fail;
    if (shim_exec(s, exec, proc, tty, in, &pid, &err) < 0) goto fail;
    json_object_object_add(res, "pid", json_object_new_int(pid));
    json_object *ev = json_object_new_object();
    json_object_object_add(ev, "event", json_object_new_string("exec-started"));
    json_object_object_add(ev, "exec", json_object_new_string(exec));
    json_object_object_add(ev, "pid", json_object_new_int(pid));
    notify_event(s, ev);
  } else if (strcmp(op, "wait") == 0) {
    if (p->recorded) {
      json_object_put(res);
      return respond(c, id, exit_json(p));
    }
    waiter *w = calloc(1, sizeof *w);
    if (w == NULL) {
      sk_fail(&err, ENOMEM, "wait");
      goto fail;
    }
    *w = (waiter){.c = c, .req_id = json_object_get(id), .proc = p, .next = s->waiters};
    s->waiters = w;
    json_object_put(res);
    return;
  } else if (strcmp(op, "subscribe") == 0) {
    json_object_put(c->sub_id);
    c->sub_id = json_object_get(id);
    c->subscribed = true;
    json_object_put(res);
    return;
  } else if (strcmp(op, "delete") == 0) {
    if (!p->recorded) {
      sk_fail(&err, 0, "%s%s is %s: kill it and wait for its exit first", p->exec_id ? "exec " : "container ",
              p->exec_id ? p->exec_id : s->o.id, proc_status(s, p));
      goto fail;
    }
    char when[40];
    format_time(&p->exited_at, false, when);
    json_object_object_add(res, "exitCode", json_object_new_int(p->exit_code));
    json_object_object_add(res, "exitedAt", json_object_new_string(when));
    if (p->exec_id) {
      forget_process(s, p);
    } else {
      const char *args[] = {"delete", "--force", s->o.id, NULL};
      if (run_runtime(s, args, -1, -1, -1, &err) < 0) goto fail;
      shim_remove_files(s);
      rmdir(s->o.dir); /* anything else in it is not ours: then it stays */
      s->quit = true;
    }
  } else if (strcmp(op, "shutdown") == 0) {
    process *init = s->procs;
    if (init->started || init->exited) {
      sk_fail(&err, 0, "container %s is %s: delete it (after it stopped) instead of shutting the shim down", s->o.id,
              proc_status(s, init));
      goto fail;
    }
    const char *args[] = {"delete", "--force", s->o.id, NULL};
    if (run_runtime(s, args, -1, -1, -1, &err) < 0) goto fail;
    shim_remove_files(s);
    rmdir(s->o.dir); /* anything else in it is not ours: then it stays */
    s->quit = true;
  } else {
    sk_fail(&err, 0, "unknown op \"%s\"", op);
    goto fail;
  }
  return respond(c, id, res);
bad_exec:
  sk_fail(&err, 0, "%s applies to the container, not to an exec", op);
fail:
  json_object_put(res);
  respond_error(c, id, err.msg);
}

void control_accept(shim *s) {
  for (;;) {
    int fd = accept4(s->ctl_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    client *c = calloc(1, sizeof *c);
    if (c == NULL) {
      close(fd);
      return;
    }
    c->fd = fd;
    c->next = s->clients;
    s->clients = c;
  }
}

static void client_lines(shim *s, client *c) {
  size_t start = 0;
  for (;;) {
    char *nl = memchr(c->in.data + start, '\n', c->in.len - start);
    if (nl == NULL) break;
    size_t len = (size_t)(nl - (c->in.data + start));
    if (len > 0) {
      sk_error err;
      json_object *req = j_parse_string(c->in.data + start, len, "the request", &err);
      if (req == NULL)
        respond_error(c, NULL, err.msg);
      else
        handle(s, c, req);
      json_object_put(req);
    }
    start += len + 1;
    if (s->quit) break;
  }
  buf_consume(&c->in, start);
  if (c->in.len > CLIENT_LINE_MAX) {
    respond_error(c, NULL, "request line too long");
    c->closing = true;
  }
}

void control_io(shim *s, client *c, short revents) {
  if (revents & POLLOUT) client_flush(c);
  if (revents & (POLLIN | POLLHUP | POLLERR)) {
    for (;;) {
      ssize_t n = recv(c->fd, s->rbuf, sizeof s->rbuf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      if (n <= 0) {
        c->closing = true;
        buf_consume(&c->out, c->out.len);
        break;
      }
      buf_append(&c->in, s->rbuf, (size_t)n);
      client_lines(s, c);
      if (s->quit || c->closing) break;
    }
  }
}

/* ---- attachers ---- */

static void attacher_frame(attacher *a, int stream, const void *data, size_t n) {
  if (a->closing) return;
  if (a->out.len > ATTACH_OUT_MAX) { /* too slow: disconnected; the log still has everything */
    a->closing = true;
    buf_consume(&a->out, a->out.len);
    a->proc = NULL;
    return;
  }
  uint32_t len = htonl((uint32_t)(n + 1));
  unsigned char id = (unsigned char)stream;
  buf_append(&a->out, &len, 4);
  buf_append(&a->out, &id, 1);
  buf_append(&a->out, data, n);
}

void attacher_flush(attacher *a) {
  while (a->out.len) {
    ssize_t n = send(a->fd, a->out.data, a->out.len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n < 0) {
      a->closing = true;
      a->proc = NULL;
      buf_consume(&a->out, a->out.len);
      return;
    }
    buf_consume(&a->out, (size_t)n);
  }
}

void attach_output(shim *s, process *p, int stream, const char *data, size_t n) {
  for (attacher *a = s->attachers; a; a = a->next)
    if (a->proc == p && !a->closing) {
      attacher_frame(a, stream + 1, data, n);
      attacher_flush(a);
    }
}

static void attacher_send_exit(attacher *a, process *p) {
  json_object *o = exit_json(p);
  const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
  attacher_frame(a, STREAM_EXIT, text, strlen(text));
  json_object_put(o);
  a->closing = true;
  a->proc = NULL;
  attacher_flush(a);
}

void attach_exit(shim *s, process *p) {
  for (attacher *a = s->attachers; a; a = a->next)
    if (a->proc == p && !a->closing) attacher_send_exit(a, p);
}

void attach_accept(shim *s) {
  for (;;) {
    int fd = accept4(s->att_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    attacher *a = calloc(1, sizeof *a);
    if (a == NULL) {
      close(fd);
      return;
    }
    a->fd = fd;
    a->next = s->attachers;
    s->attachers = a;
  }
}

static void hello_answer(attacher *a, const char *error) {
  json_object *o = json_object_new_object();
  if (error) json_object_object_add(o, "error", json_object_new_string(error));
  const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
  attacher_frame(a, STREAM_HELLO, text, strlen(text));
  json_object_put(o);
  if (error) a->closing = true;
  attacher_flush(a);
}

static void attacher_hello(shim *s, attacher *a, const char *data, size_t n) {
  sk_error err;
  json_object *h = j_parse_string(data, n, "the attach hello", &err);
  const char *exec = NULL;
  if (h == NULL || !json_object_is_type(h, json_type_object) || j_string(h, "exec", "hello", false, &exec, &err) < 0) {
    hello_answer(a, h == NULL ? err.msg : "the attach hello must be a JSON object such as {} or {\"exec\":\"ID\"}");
    json_object_put(h);
    return;
  }
  process *p = shim_find(s, exec);
  if (p == NULL) {
    snprintf(err.msg, sizeof err.msg, "exec %s does not exist in container %s", exec, s->o.id);
    hello_answer(a, err.msg);
  } else {
    a->proc = p;
    hello_answer(a, NULL);
    if (p->held) {
      shim_unhold(s, p);
    } else if (p->recorded && p->out[0] < 0 && p->out[1] < 0) {
      attacher_send_exit(a, p);
    }
  }
  json_object_put(h);
}

void attacher_frames(shim *s, attacher *a) {
  size_t off = 0;
  while (!a->closing && a->in.len - off >= 4) {
    uint32_t len;
    memcpy(&len, a->in.data + off, 4);
    len = ntohl(len);
    if (len == 0 || len > ATTACH_FRAME_MAX) {
      a->closing = true;
      break;
    }
    if (a->in.len - off < 4 + (size_t)len) break;
    unsigned char stream = (unsigned char)a->in.data[off + 4];
    const char *data = a->in.data + off + 5;
    size_t n = len - 1;
    off += 4 + len;
    if (stream == STREAM_HELLO && a->proc == NULL) {
      attacher_hello(s, a, data, n);
    } else if (stream == STREAM_STDIN && a->proc) {
      process *p = a->proc;
      if (p->stdin_closed || p->stdin_close_pending || p->stdin_fd < 0) continue;
      if (n == 0) {
        shim_close_stdin(p);
      } else {
        buf_append(&p->stdin_pending, data, n);
        shim_flush_stdin(p);
      }
      if (p->stdin_pending.len > STDIN_PENDING_MAX) break; /* poll stops reading attachers until it drains */
    } else if (a->proc == NULL) {
      a->closing = true; /* anything but a hello first */
    }
  }
  buf_consume(&a->in, off);
}

void attach_io(shim *s, attacher *a, short revents) {
  if (revents & POLLOUT) attacher_flush(a);
  if (revents & (POLLIN | POLLHUP | POLLERR)) {
    ssize_t n;
    do n = recv(a->fd, s->rbuf, sizeof s->rbuf, 0);
    while (n < 0 && errno == EINTR);
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
      a->closing = true;
      a->proc = NULL;
      buf_consume(&a->out, a->out.len);
      return;
    }
    if (n > 0) {
      buf_append(&a->in, s->rbuf, (size_t)n);
      attacher_frames(s, a);
    }
  }
}
