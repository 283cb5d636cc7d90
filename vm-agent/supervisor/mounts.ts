// The rootfs mounts of a bundle: mounted in order on <bundle>/rootfs with the native addon's mount(2), unmounted
// (lazily, so a busy mount never blocks a delete) when the container is deleted.
import { readFileSync } from 'node:fs';
import { loadNative } from '../common/native.js';
import type { MountSpec } from './store.js';

// mount(2) flags (linux/mount.h); the addon exports a few, these are the full set options may name.
const MS = {
  RDONLY: 1,
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  SYNCHRONOUS: 16,
  REMOUNT: 32,
  MANDLOCK: 64,
  DIRSYNC: 128,
  NOSYMFOLLOW: 256,
  NOATIME: 1024,
  NODIRATIME: 2048,
  BIND: 4096,
  REC: 16384,
  PRIVATE: 1 << 18,
  SLAVE: 1 << 19,
  SHARED: 1 << 20,
  RELATIME: 1 << 21,
  STRICTATIME: 1 << 24,
} as const;
const MNT_DETACH = 2;

const setFlags: Record<string, number> = {
  ro: MS.RDONLY,
  nosuid: MS.NOSUID,
  nodev: MS.NODEV,
  noexec: MS.NOEXEC,
  sync: MS.SYNCHRONOUS,
  dirsync: MS.DIRSYNC,
  mand: MS.MANDLOCK,
  noatime: MS.NOATIME,
  nodiratime: MS.NODIRATIME,
  relatime: MS.RELATIME,
  strictatime: MS.STRICTATIME,
  nosymfollow: MS.NOSYMFOLLOW,
  bind: MS.BIND,
  rbind: MS.BIND | MS.REC,
};
const clearFlags: Record<string, number> = {
  rw: MS.RDONLY,
  suid: MS.NOSUID,
  dev: MS.NODEV,
  exec: MS.NOEXEC,
  async: MS.SYNCHRONOUS,
  nomand: MS.MANDLOCK,
  atime: MS.NOATIME,
  diratime: MS.NODIRATIME,
  norelatime: MS.RELATIME,
  nostrictatime: MS.STRICTATIME,
};
const propagation: Record<string, number> = {
  private: MS.PRIVATE,
  rprivate: MS.PRIVATE | MS.REC,
  slave: MS.SLAVE,
  rslave: MS.SLAVE | MS.REC,
  shared: MS.SHARED,
  rshared: MS.SHARED | MS.REC,
};

export interface ParsedMount {
  flags: number;
  data: string;
  /** Propagation flags, applied by a second mount(2) call. */
  propagation: number;
  bind: boolean;
}

/** Split options into mount(2) flags and the filesystem's data string, as mount(8) does. */
export function parseMountOptions(type: string, options: readonly string[]): ParsedMount {
  let flags = 0;
  let prop = 0;
  const data: string[] = [];
  for (const o of options) {
    if (o === 'defaults') continue;
    if (o in setFlags) flags |= setFlags[o] as number;
    else if (o in clearFlags) flags &= ~(clearFlags[o] as number);
    else if (o in propagation) prop |= propagation[o] as number;
    else data.push(o);
  }
  if (type === 'bind' && (flags & MS.BIND) === 0) flags |= MS.BIND;
  return { flags, data: data.join(','), propagation: prop, bind: (flags & MS.BIND) !== 0 };
}

/** Mount every mount on target, in order. On failure, what was mounted is unmounted again and the error thrown. */
export function mountAll(mounts: readonly MountSpec[], target: string): void {
  const a = loadNative();
  let done = 0;
  try {
    for (const m of mounts) {
      const p = parseMountOptions(m.type, m.options);
      const fstype = p.bind ? '' : m.type;
      try {
        a.mount(m.source, target, fstype, p.bind ? p.flags & ~MS.RDONLY : p.flags, p.data);
        done++;
        // A bind mount ignores MS_RDONLY on the first call: remount read-only as mount(8) does.
        if (p.bind && p.flags & MS.RDONLY) a.mount('', target, '', MS.REMOUNT | MS.BIND | p.flags, '');
        if (p.propagation) a.mount('', target, '', p.propagation, '');
      } catch (err) {
        throw new Error(
          `mount ${m.type} ${JSON.stringify(m.source)} on ${target} (options ${m.options.join(',') || 'none'}): ${(err as Error).message}`,
        );
      }
    }
  } catch (err) {
    for (; done > 0; done--) unmountQuiet(target);
    throw err;
  }
}

function unmountQuiet(target: string): void {
  try {
    loadNative().umount(target, MNT_DETACH);
  } catch {
    /* already gone */
  }
}

/** Unmount everything stacked on target (lazily). */
export function unmountAll(target: string): void {
  for (let i = 0; i < 64 && isMountPoint(target); i++) loadNative().umount(target, MNT_DETACH);
}

/** Whether target is a mount point in this mount namespace. */
export function isMountPoint(target: string): boolean {
  const info = readFileSync('/proc/self/mountinfo', 'utf8');
  for (const line of info.split('\n')) {
    const mp = line.split(' ')[4];
    if (mp !== undefined && unescapeMountinfo(mp) === target) return true;
  }
  return false;
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}
