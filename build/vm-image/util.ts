// Small helpers of the VM image builder: running programs (with a clear error naming the missing package), hashing
// files and trees, walking directories.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import { join } from 'node:path';

/** The Debian package that provides each program the builder runs, for the "install it" message. */
const PACKAGE_OF: Record<string, string> = {
  'apt-get': 'apt',
  'apt-cache': 'apt',
  'dpkg-deb': 'dpkg',
  debootstrap: 'debootstrap',
  depmod: 'kmod',
  modprobe: 'kmod',
  cpio: 'cpio',
  lz4: 'lz4',
  zstd: 'zstd',
  xz: 'xz-utils',
  ldd: 'libc-bin',
  ldconfig: 'libc-bin',
  chroot: 'coreutils',
  strip: 'binutils',
};

export class BuildError extends Error {}

export interface RunOptions {
  cwd?: string;
  input?: string | Buffer;
  /** Show the program's output on our stdout/stderr instead of capturing it (long steps: debootstrap). */
  inherit?: boolean;
  env?: NodeJS.ProcessEnv;
}

/** Run a program to completion; its stdout (a Buffer), or a BuildError with the end of its stderr. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Buffer {
  const o: SpawnSyncOptions = {
    cwd: opts.cwd,
    input: opts.input,
    env: opts.env ?? process.env,
    maxBuffer: 1 << 30,
    stdio: opts.inherit ? ['ignore', 'inherit', 'inherit'] : ['pipe', 'pipe', 'pipe'],
  };
  const r = spawnSync(cmd, args, o);
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      const pkg = PACKAGE_OF[cmd];
      throw new BuildError(`${cmd} is not installed${pkg ? `: apt-get install ${pkg}` : ''}`);
    }
    throw new BuildError(`${cmd}: ${r.error.message}`);
  }
  if (r.status !== 0) {
    const err = (r.stderr ?? Buffer.alloc(0)).toString().trim().split('\n').slice(-15).join('\n');
    throw new BuildError(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal})${err ? `:\n${err}` : ''}`);
  }
  return (r.stdout as Buffer | null) ?? Buffer.alloc(0);
}

export const runText = (cmd: string, args: string[], opts: RunOptions = {}): string => run(cmd, args, opts).toString();

/** sha256 of a file's content, streamed in 1 MiB reads (node is ~100 MB). */
export function hashFile(path: string): string {
  const h = createHash('sha256');
  const buf = Buffer.alloc(1 << 20);
  const fd = openSync(path, 'r');
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** Every path under `dir` (relative, sorted, directories included), not following symlinks. */
export function walk(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    out.push(r);
    if (lstatSync(join(dir, r)).isDirectory()) out.push(...walk(dir, r));
  }
  return out;
}

/** sha256 over a tree: each path with its type, mode and content (or link target). */
export function hashTree(dir: string): string {
  const h = createHash('sha256');
  for (const rel of walk(dir)) {
    const p = join(dir, rel);
    const st = lstatSync(p);
    h.update(`${rel}\0${st.mode}\0`);
    if (st.isSymbolicLink()) h.update(readlinkSync(p));
    else if (st.isFile()) h.update(hashFile(p));
    h.update('\n');
  }
  return h.digest('hex');
}

export const sha256 = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

export function log(msg: string): void {
  process.stdout.write(`vm-image: ${msg}\n`);
}

export function mib(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}
