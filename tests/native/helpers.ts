// Shared fixtures for the native tier: busybox-static bundles, a runtime root per test file, and runners for
// skiff-runtime and Debian's runc/crun on the same bundle. Tests here need root (namespaces, cgroups, mounts).
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const RUNTIME = join(REPO, 'dist/bin/skiff-runtime');
const CACHE = join(tmpdir(), 'skiff-test-cache');

/** Fail loudly rather than skip: CI runs as root, and a skipped security test proves nothing. */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('native tests need root (namespaces, cgroups, mounts)');
  if (!existsSync(RUNTIME)) throw new Error(`${RUNTIME} is missing: run npm run build first`);
}

/** A busybox-static root filesystem, built once per machine from Debian's busybox-static. */
export function busyboxRootfs(): string {
  const rootfs = join(CACHE, 'busybox-rootfs');
  if (existsSync(join(rootfs, '.complete'))) return rootfs;
  rmSync(rootfs, { recursive: true, force: true });
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'var', 'home'])
    mkdirSync(join(rootfs, d), { recursive: true });
  cpSync('/bin/busybox', join(rootfs, 'bin/busybox'));
  const list = spawnSync('/bin/busybox', ['--list-full'], { encoding: 'utf8' });
  if (list.status !== 0) throw new Error('busybox-static is not installed (/bin/busybox --list-full failed)');
  for (const applet of list.stdout.split('\n').filter(Boolean)) {
    const target = join(rootfs, applet);
    if (applet === 'bin/busybox' || existsSync(target)) continue;
    mkdirSync(dirname(target), { recursive: true });
    symlinkSync('/bin/busybox', target);
  }
  spawnSync('chmod', ['1777', join(rootfs, 'tmp')]);
  writeFileSync(
    join(rootfs, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n',
  );
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  writeFileSync(join(rootfs, '.complete'), '');
  return rootfs;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type OciConfig = Record<string, any>;

/** The config `runc spec` makes (as of runc 1.1), with `args` and `terminal` set for tests. */
export function defaultConfig(args: string[] = ['/bin/true']): OciConfig {
  const caps = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args,
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps, ambient: caps },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'runc',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      {
        destination: '/dev',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
      },
      {
        destination: '/dev/pts',
        type: 'devpts',
        source: 'devpts',
        options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
      },
      {
        destination: '/dev/shm',
        type: 'tmpfs',
        source: 'shm',
        options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
      },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      {
        destination: '/sys/fs/cgroup',
        type: 'cgroup',
        source: 'cgroup',
        options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
      },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: [
        '/proc/acpi',
        '/proc/asound',
        '/proc/kcore',
        '/proc/keys',
        '/proc/latency_stats',
        '/proc/timer_list',
        '/proc/timer_stats',
        '/proc/sched_debug',
        '/sys/firmware',
        '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

export interface Bundle {
  dir: string;
  rootfs: string;
  config: OciConfig;
  /** Write config.json again after changing `config`. */
  save(): void;
}

const scratch: string[] = [];

/** A fresh directory under /tmp removed by cleanupScratch() (call it in afterAll). */
export function scratchDir(prefix = 'skiff-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  scratch.push(d);
  return d;
}

/** A bundle with its own copy of the busybox rootfs; `mutate` edits the config before it is written. */
export function makeBundle(args: string[] = ['/bin/true'], mutate?: (c: OciConfig) => void): Bundle {
  const dir = scratchDir('skiff-bundle-');
  const rootfs = join(dir, 'rootfs');
  cpSync(busyboxRootfs(), rootfs, { recursive: true, verbatimSymlinks: true });
  const config = defaultConfig(args);
  mutate?.(config);
  const bundle: Bundle = {
    dir,
    rootfs,
    config,
    save: () => writeFileSync(join(dir, 'config.json'), JSON.stringify(bundle.config, null, 2)),
  };
  bundle.save();
  return bundle;
}

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function result(r: SpawnSyncReturns<string>): Result {
  if (r.error) throw r.error;
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** One runtime (skiff-runtime, runc or crun) with a state root of its own. */
export class Runtime {
  readonly root: string;
  constructor(
    readonly binary: string = RUNTIME,
    root?: string,
  ) {
    this.root = root ?? scratchDir('skiff-root-');
  }

  /** Run a runtime command; stdin is /dev/null unless input is given. */
  cmd(args: string[], opts: { input?: string; cwd?: string; timeout?: number } = {}): Result {
    return result(
      spawnSync(this.binary, ['--root', this.root, ...args], {
        encoding: 'utf8',
        input: opts.input ?? '',
        cwd: opts.cwd,
        timeout: opts.timeout ?? 30_000,
      }),
    );
  }

  /** `run` in the foreground: create, start, wait, delete; the container's output is the result's. */
  run(bundle: Bundle, id = uniqueId(), opts: { timeout?: number } = {}): Result {
    return this.cmd(['run', '--bundle', bundle.dir, id], opts);
  }

  /** `create` with the container's stdio on files (never pipes: a pipe held by the container never closes). */
  create(bundle: Bundle, id = uniqueId(), extra: string[] = []): Result & { id: string } {
    const r = result(
      spawnSync(
        'sh',
        [
          '-c',
          `exec "$@" </dev/null >/dev/null 2>"${bundle.dir}/create.err"`,
          'sh',
          this.binary,
          '--root',
          this.root,
          'create',
          '--bundle',
          bundle.dir,
          ...extra,
          id,
        ],
        {
          encoding: 'utf8',
          timeout: 30_000,
        },
      ),
    );
    r.stderr = readIfExists(join(bundle.dir, 'create.err'));
    return { ...r, id };
  }

  state(id: string): { status: string; pid: number; [k: string]: unknown } {
    const r = this.cmd(['state', id]);
    if (r.code !== 0) throw new Error(`state ${id}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  /** Remove every container this runtime root holds (afterEach/afterAll). */
  cleanup(): void {
    if (!existsSync(this.root)) return;
    for (const id of readdirSync(this.root)) this.cmd(['delete', '--force', id]);
  }
}

let counter = 0;
export function uniqueId(prefix = 't'): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter++}`;
}

function readIfExists(p: string): string {
  try {
    return spawnSync('cat', [p], { encoding: 'utf8' }).stdout;
  } catch {
    return '';
  }
}

/** Remove scratch dirs (bundles, roots). Containers must be deleted first. */
export function cleanupScratch(): void {
  for (const d of scratch.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Every cgroup directory named `id` anywhere under /sys/fs/cgroup (to prove nothing was left behind). */
export function cgroupDirsNamed(id: string): string[] {
  const r = spawnSync('find', ['/sys/fs/cgroup', '-maxdepth', '4', '-type', 'd', '-name', id], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean);
}

/** Mounts on the host whose mount point contains `fragment`. */
export function hostMountsContaining(fragment: string): string[] {
  return spawnSync('cat', ['/proc/self/mountinfo'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((l) => l.split(' ')[4]?.includes(fragment));
}

export function hasRunc(): boolean {
  return existsSync('/usr/sbin/runc') || existsSync('/usr/bin/runc');
}

/** Block until cond() holds, polling every 20 ms; throws after ms. (Tests here drive synchronous spawns.) */
export function waitFor(cond: () => boolean, ms = 10_000): void {
  const end = Date.now() + ms;
  const tick = new Int32Array(new SharedArrayBuffer(4));
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    Atomics.wait(tick, 0, 0, 20);
  }
}
