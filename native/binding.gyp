# Builds every native program of Skiff and the Node addon. `npm run build:native` runs node-gyp on this file
# and copies the executables to dist/bin/.
{
  "target_defaults": {
    "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fstack-protector-strong",
               "-D_FORTIFY_SOURCE=2", "-D_GNU_SOURCE", "-Wno-format-truncation"],
    "cflags!": ["-fno-exceptions"],
    "ldflags": ["-Wl,-z,relro,-z,now", "-Wl,--as-needed"]
  },
  "targets": [
    {
      "target_name": "skiff-runtime",
      "type": "executable",
      "sources": ["<!@(ls -1 runtime/*.c)"],
      "include_dirs": ["runtime"],
      "libraries": ["-ljson-c", "-lseccomp"]
    },
    {
      "target_name": "skiff-shim",
      "type": "executable",
      "sources": ["<!@(ls -1 shim/*.c)", "runtime/error.c", "runtime/jsonutil.c", "runtime/util.c"],
      "include_dirs": ["shim", "runtime"],
      "libraries": ["-ljson-c"]
    },
    {
      "target_name": "skiff-docker-init",
      "type": "executable",
      "sources": ["docker-init/main.c"],
      "ldflags": ["-static", "-s"]
    },
    {
      # PID 1 of the VM (docs/init.md): static, so that it runs before anything else is there.
      "target_name": "skiff-init",
      "type": "executable",
      "sources": ["init/main.c", "init/config.c", "init/console.c", "init/services.c", "init/system.c",
                  "runtime/error.c", "runtime/jsonutil.c", "runtime/util.c"],
      "include_dirs": ["init", "runtime"],
      "ldflags": ["-static", "-s"],
      "libraries": ["-ljson-c"]
    },
    {
      "target_name": "skiff_native",
      "sources": ["addon/addon.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall"]
    }
  ]
}
