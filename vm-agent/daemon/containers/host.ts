// What the spec needs from the host: its capability bounding set, kernel, cgroup version, devices, the init binary,
// and files of a container's rootfs read through its layers (upper first) without mounting it.
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { hostname, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { badRequest, type PreparedRootfs } from '../contracts.js';
import { capsFromMask, ALL_KNOWN_CAPS, type DeviceInfo } from './spec.js';

let cachedCaps: string[] | undefined;

/** The capabilities this process can give (its bounding set). */
export function hostCaps(): string[] {
  if (cachedCaps) return cachedCaps;
  try {
    const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    cachedCaps = m ? capsFromMask(m[1]!) : [...ALL_KNOWN_CAPS];
  } catch {
    cachedCaps = [...ALL_KNOWN_CAPS];
  }
  return cachedCaps;
}

export function kernelRelease(): string {
  return release();
}

export function hostHostname(): string {
  return hostname();
}

export function cgroupVersion(): 1 | 2 {
  return existsSync('/sys/fs/cgroup/cgroup.controllers') ? 2 : 1;
}

const major = (rdev: number): number => Number((BigInt(rdev) >> 8n) & 0xfffn) | Number((BigInt(rdev) >> 32n) & ~0xfffn);
const minor = (rdev: number): number => Number(BigInt(rdev) & 0xffn) | Number((BigInt(rdev) >> 12n) & ~0xffn);

export function statDevice(path: string): DeviceInfo {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw badRequest(
      `error gathering device information while adding custom device "${path}": no such file or directory`,
    );
  }
  const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : st.isFIFO() ? 'p' : undefined;
  if (!type)
    throw badRequest(`error gathering device information while adding custom device "${path}": not a device node`);
  return { type, major: major(st.rdev), minor: minor(st.rdev), fileMode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
}

/** Every device node under /dev (Privileged), but not the pts and console ones the runtime makes. */
export function hostDevices(): Array<DeviceInfo & { path: string }> {
  const out: Array<DeviceInfo & { path: string }> = [];
  const walk = (dir: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(dir, n);
      if (p === '/dev/pts' || p === '/dev/shm' || p === '/dev/mqueue' || p === '/dev/console') continue;
      let st;
      try {
        st = lstatSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(p);
      else if (st.isCharacterDevice() || st.isBlockDevice()) {
        if (p === '/dev/ptmx' || p === '/dev/tty') continue;
        out.push({
          path: p,
          type: st.isCharacterDevice() ? 'c' : 'b',
          major: major(st.rdev),
          minor: minor(st.rdev),
          fileMode: st.mode & 0o7777,
          uid: st.uid,
          gid: st.gid,
        });
      }
    }
  };
  walk('/dev');
  return out;
}

/** The init bound into containers for HostConfig.Init: skiff-docker-init beside skiffd (dist/bin), if built. */
export function initBinary(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const p of [join(here, 'skiff-docker-init'), join(here, '../../../dist/bin/skiff-docker-init')])
    if (existsSync(p)) return p;
  return undefined;
}

/** A file of a container's root filesystem read through its layers (upper first); undefined when absent. */
export function readRootfsFile(rootfs: PreparedRootfs, path: string): string | undefined {
  const layers = [rootfs.upperDir, ...[...rootfs.lowerDirs].reverse()];
  for (const l of layers) {
    const p = join(l, path);
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    // An overlay whiteout (a 0:0 character device) hides the file below.
    if (st.isCharacterDevice() && st.rdev === 0) return undefined;
    if (!st.isFile()) return undefined;
    if (st.size > 16 * 1024 * 1024) return undefined;
    return readFileSync(p, 'utf8');
  }
  return undefined;
}

/** The bytes of a directory tree (SizeRw). */
export function duBytes(dir: string): number {
  let total = 0;
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      try {
        const st = lstatSync(p);
        if (st.isDirectory()) walk(p);
        else total += st.size;
      } catch {
        /* gone */
      }
    }
  };
  walk(dir);
  return total;
}
