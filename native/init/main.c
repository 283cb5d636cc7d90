/* skiff-init: PID 1 of the Skiff VM (docs/init.md). The boot, in order: mounts and cgroup v2, kernel modules,
 * the config and keys from fw_cfg, sshd, network and hostname, clock, the data disk (formatted on first boot),
 * the 9p shares, skiff-agent ("skiff-init: ready"); then it reaps orphans, restarts sshd and the agent when they
 * die, and powers off on the ACPI power button, SIGTERM, SIGUSR1, SIGUSR2, SIGPWR or Ctrl-Alt-Del
 * ("skiff-init: powering off"). A failed required step prints "skiff-init: FATAL: ..." then starts a shell on
 * the console (if there is one) and powers off when it exits: never a silent hang. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "init.h"
#include "util.h"

#define VERSION "0.1.0"

int main(int argc, char **argv) {
  init_opts o;
  init_config c = {0};
  sk_error err;
  console_setup(false);
  int args_rc = parse_args(argc, argv, &o, &err);
  if (args_rc < 0 && o.test) {
    fprintf(stderr, "skiff-init: %s\n", err.msg);
    return 2;
  }
  if (getpid() != 1) {
    fprintf(stderr,
            "skiff-init: must run as PID 1 (for tests: unshare --pid --fork --mount-proc skiff-init --test ...)\n");
    return 1;
  }
  console_setup(o.verbose);
  init_state *s = services_new(&o, &c, &err);
  if (!s) {
    say("FATAL: %s", err.msg);
    return 1; /* in the VM the kernel panics and says why: nothing else can be done without a signalfd */
  }
  say("skiff-init %s starting%s", VERSION, o.test ? " (test mode)" : "");
  if (args_rc < 0) warn("%s (ignored)", err.msg);
  if (!o.no_mounts) {
    if (mount_system(&err) < 0) return services_fatal(s, err.msg);
    enable_cgroup_controllers();
  }
  if (!o.no_modules) load_modules(&o);
  open_inputs(s);
  if (load_config(&o, &c, &err) < 0) return services_fatal(s, err.msg);
  say("config: hostname %s, %d share(s), data disk %s", c.hostname, c.nshares, c.data_device ? c.data_device : "none");
  if (write_ssh_files(&o, &c, &err) < 0 || start_sshd(s, &err) < 0) return services_fatal(s, err.msg);
  if (!o.no_network) {
    if (setup_network(&err) < 0) return services_fatal(s, err.msg);
    if (set_hostname(c.hostname, &err) < 0) warn("%s", err.msg);
  }
  if (write_network_files(&o, c.hostname, &err) < 0) return services_fatal(s, err.msg);
  check_clock();
  if (c.data_device) {
    if (setup_data_disk(&o, c.data_device, &err) < 0) return services_fatal(s, err.msg);
  } else {
    char path[PATH_MAX];
    warn("no dataDevice in the config: /var/lib/skiff is in RAM and lost at power-off");
    if (mkdir_p(rpath(&o, "/var/lib/skiff", path), 0755, &err) < 0) return services_fatal(s, err.msg);
  }
  mount_shares(&o, &c);
  if (start_agent(s, &err) < 0) return services_fatal(s, err.msg);
  return services_run(s);
}
