/* skiff-init: PID 1 of the Skiff VM (docs/init.md). Shared declarations of its parts:
 *   console.c  timestamped lines on the console (stderr of PID 1 = /dev/console)
 *   config.c   options and the fw_cfg blobs (config JSON, SSH host key, authorized keys)
 *   system.c   mounts, cgroup v2, kernel modules, data disk, network, hostname, clock, shares, files
 *   services.c sshd and skiff-agent with restarts, orphan reaping, the power button and the power-off
 *   main.c     the boot sequence and what happens on a fatal error */
#ifndef SKIFF_INIT_H
#define SKIFF_INIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#define MAX_SHARES 64
#define MAX_AGENT_ARGS 64

typedef struct share {
  char *tag;
  char *path;
  bool virtiofs; /* "type": "virtiofs" (default "9p") */
} share;

/* opt/skiff/config: {hostname, shares:[{tag, path, type}], agentArgs:[...], dataDevice} */
typedef struct init_config {
  char *hostname;
  share shares[MAX_SHARES];
  int nshares;
  char *agent_args[MAX_AGENT_ARGS];
  int nagent_args;
  char *data_device; /* NULL: no data disk (/var/lib/skiff stays in RAM) */
  char *host_key;    /* contents of opt/skiff/ssh_host_ed25519_key */
  size_t host_key_len;
  char *authorized_keys; /* contents of opt/skiff/authorized_keys */
  size_t authorized_keys_len;
} init_config;

typedef struct init_opts {
  bool test;        /* --test: exit instead of powering off, no rescue shell */
  const char *root; /* --root-dir: prefix of every path skiff-init writes or mounts on ("" in the VM) */
  bool no_mounts, no_modules, no_network;
  bool verbose;
  const char *fw_cfg_dir;  /* directory of the blobs: <dir>/<name>/raw */
  const char *config_file; /* the config JSON from a file instead of <fw_cfg_dir>/config/raw */
  const char *agent;       /* skiff-agent program */
  const char *sshd;        /* sshd program */
  const char *input_dir;   /* where the event devices are (event* entries) */
  const char *modules_list;
  int agent_stop_ms; /* grace for the agent after SIGTERM at power-off */
  int kill_grace_ms; /* grace for every other process after SIGTERM at power-off */
  bool fatal_shell;  /* on a fatal error: a shell on the console before powering off */
} init_opts;

/* console.c */
void console_setup(bool verbose);
void console_reopen(void); /* once /dev exists: make fds 0-2 the console if the kernel gave none */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* One line of a service's output on the console: "[time] name: line". */
void console_line(const char *name, const char *line, size_t len);
uint64_t mono_ms(void);

/* config.c */
int parse_args(int argc, char **argv, init_opts *o, sk_error *err);
int load_config(const init_opts *o, init_config *c, sk_error *err);
/* root + path in buf (static size PATH_MAX). */
const char *rpath(const init_opts *o, const char *path, char *buf);

/* system.c */
int mount_system(sk_error *err);
void enable_cgroup_controllers(void);
void load_modules(const init_opts *o);
int setup_data_disk(const init_opts *o, const char *device, sk_error *err);
int setup_network(sk_error *err);
int set_hostname(const char *hostname, sk_error *err);
int write_network_files(const init_opts *o, const char *hostname, sk_error *err);
void check_clock(void);
void mount_shares(const init_opts *o, const init_config *c);
int write_ssh_files(const init_opts *o, const init_config *c, sk_error *err);
/* Run argv (absolute program) and wait for it; fails unless it exits 0. Its output goes to the console. */
int run_program(char *const argv[], sk_error *err);
/* Unmount the data disk and the shares (read-only remount when busy). */
void unmount_all(const init_opts *o, const init_config *c);

/* services.c */
typedef struct init_state init_state;
/* Blocks the signals PID 1 handles and takes them through a signalfd: call it first. */
init_state *services_new(const init_opts *o, const init_config *c, sk_error *err);
int start_sshd(init_state *s, sk_error *err);
int start_agent(init_state *s, sk_error *err);
/* The main loop: reap, restart, copy logs, wait for a power-off request; then the power-off. Never returns
 * in the VM; returns the exit status in test mode. */
int services_run(init_state *s);
/* A fatal error: a rescue shell when wanted, then the power-off. */
int services_fatal(init_state *s, const char *msg);
/* Open the event devices that can report the power button (after the modules are loaded). */
void open_inputs(init_state *s);

#endif
