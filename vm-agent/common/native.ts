// The native addon (native/addon/addon.cc): the few syscalls Node lacks. Snapshots need mknod (whiteouts, fifos) and
// lsetxattr (opaque dirs); the supervisor (rootfs) and volumes (devices, copy-up overlays) need mount and umount.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeAddon {
  mknod(path: string, mode: number, major?: number, minor?: number): void;
  setxattr(path: string, name: string, value: string | Buffer): void;
  mount(source: string, target: string, fstype: string, flags: number, data?: string): void;
  umount(target: string, flags?: number): void;
  flags: { MS_RDONLY: number; MS_BIND: number; MS_REC: number; MS_REMOUNT: number; MNT_DETACH: number };
}

let addon: NativeAddon | undefined;

/** dist/native/skiff_native.node beside dist/bin, or the repo's dist/ when running from source. */
export function loadNative(): NativeAddon {
  if (addon) return addon;
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    process.env.SKIFF_NATIVE_ADDON,
    join(here, '../native/skiff_native.node'),
    join(here, '../../dist/native/skiff_native.node'),
  ].filter((p): p is string => Boolean(p));
  const require = createRequire(import.meta.url);
  const errors: string[] = [];
  for (const p of candidates) {
    try {
      const a = require(p) as Partial<NativeAddon>;
      if (typeof a.mknod !== 'function' || typeof a.mount !== 'function' || !a.flags) {
        errors.push(`${p}: an old build without mknod/mount (run npm run build:native)`);
        continue;
      }
      addon = a as NativeAddon;
      return addon;
    } catch (err) {
      errors.push(`${p}: ${(err as Error).message}`);
    }
  }
  throw new Error(`cannot load the native addon skiff_native.node (${errors.join('; ')}); run npm run build`);
}
