// The native addon's calls the snapshots need (mknod for whiteouts and fifos, lsetxattr for opaque dirs).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ImageNative {
  mknod(path: string, mode: number, major?: number, minor?: number): void;
  setxattr(path: string, name: string, value: string | Buffer): void;
}

let addon: ImageNative | undefined;

/** dist/native/skiff_native.node beside dist/bin, or the repo's dist/ when running from source. */
export function loadNative(): ImageNative {
  if (addon) return addon;
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    process.env.SKIFF_NATIVE_ADDON,
    join(here, '../native/skiff_native.node'),
    join(here, '../../../dist/native/skiff_native.node'),
  ].filter((p): p is string => Boolean(p));
  const require = createRequire(import.meta.url);
  const errors: string[] = [];
  for (const p of candidates) {
    try {
      const a = require(p) as Partial<ImageNative>;
      if (typeof a.mknod !== 'function' || typeof a.setxattr !== 'function') {
        errors.push(`${p}: no mknod/setxattr (an old build: run npm run build:native)`);
        continue;
      }
      addon = a as ImageNative;
      return addon;
    } catch (err) {
      errors.push(`${p}: ${(err as Error).message}`);
    }
  }
  throw new Error(`cannot load the native addon skiff_native.node (${errors.join('; ')}); run npm run build`);
}
