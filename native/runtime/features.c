/* `features`: what this build supports, per the runtime-spec features schema. */
#include <stdio.h>

#include "rootfs.h"
#include "runtime.h"
#include "security.h"

static json_object *strings(const char *const *list) {
  json_object *a = json_object_new_array();
  for (; list && *list; list++) json_object_array_add(a, json_object_new_string(*list));
  return a;
}

int cmd_features(sk_error *err) {
  static const char *const hooks[] = {
      "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop", NULL};
  static const char *const namespaces[] = {"cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time", NULL};
  json_object *f = json_object_new_object();
  json_object_object_add(f, "ociVersionMin", json_object_new_string("1.0.0"));
  json_object_object_add(f, "ociVersionMax", json_object_new_string("1.2.0"));
  json_object_object_add(f, "hooks", strings(hooks));
  json_object_object_add(f, "mountOptions", strings(rootfs_mount_options()));
  json_object *linux_obj = json_object_new_object();
  json_object_object_add(linux_obj, "namespaces", strings(namespaces));
  json_object_object_add(linux_obj, "capabilities", strings(security_known_capabilities()));
  json_object *cg = json_object_new_object();
  json_object_object_add(cg, "v1", json_object_new_boolean(1));
  json_object_object_add(cg, "v2", json_object_new_boolean(1));
  json_object_object_add(cg, "systemd", json_object_new_boolean(0));
  json_object_object_add(cg, "systemdUser", json_object_new_boolean(0));
  json_object_object_add(cg, "rdma", json_object_new_boolean(0));
  json_object_object_add(linux_obj, "cgroup", cg);
  json_object *sc = json_object_new_object();
  json_object_object_add(sc, "enabled", json_object_new_boolean(1));
  json_object_object_add(sc, "actions", strings(security_seccomp_actions()));
  json_object_object_add(sc, "operators", strings(security_seccomp_operators()));
  json_object_object_add(sc, "archs", strings(security_seccomp_archs()));
  json_object_object_add(sc, "knownFlags", strings(security_seccomp_known_flags()));
  json_object *supported = json_object_new_array();
  for (const char *const *f = security_seccomp_known_flags(); f && *f; f++)
    if (security_seccomp_flag_supported(*f)) json_object_array_add(supported, json_object_new_string(*f));
  json_object_object_add(sc, "supportedFlags", supported);
  json_object_object_add(linux_obj, "seccomp", sc);
  json_object *aa = json_object_new_object();
  json_object_object_add(aa, "enabled", json_object_new_boolean(security_apparmor_enabled()));
  json_object_object_add(linux_obj, "apparmor", aa);
  json_object *se = json_object_new_object();
  json_object_object_add(se, "enabled", json_object_new_boolean(security_selinux_enabled()));
  json_object_object_add(linux_obj, "selinux", se);
  json_object *idm = json_object_new_object();
  json_object_object_add(idm, "enabled", json_object_new_boolean(0));
  json_object_object_add(linux_obj, "mountExtensions", json_object_new_object());
  json_object_object_add(json_object_object_get(linux_obj, "mountExtensions"), "idmap", idm);
  json_object_object_add(f, "linux", linux_obj);
  json_object *ann = json_object_new_object();
  json_object_object_add(ann, "org.opencontainers.runtime-spec.features.runtime.name",
                         json_object_new_string("skiff-runtime"));
  json_object_object_add(f, "annotations", ann);
  printf("%s\n", json_object_to_json_string_ext(f, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
  json_object_put(f);
  return 0;
}
