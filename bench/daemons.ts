// What the daemon benchmarks (bench/daemon, bench/network) share: a work dir with its cleanups, notes and timed
// docker CLI calls (Lab); the busybox-static image as a docker-archive; skiffd (in its own mount + network
// namespace, as tests/integration/daemon-harness.ts runs it) and Debian's dockerd + containerd (started by hand as
// ../shared/lab/docker-baseline.sh does), each stopped by pid; and what dockerd changes on the host, recorded before
// and undone after (as ../shared/lab/cleanup.sh does).
import { alive, sleep, stopPid } from './procs.js';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BenchArgs, errorText, formatMs, parseBenchArgs, TimedShell } from './harness.js';

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const SKIFFD_BIN = join(repo, 'dist/bin/skiffd');
export const DOCKER = '/usr/local/bin/docker';
export const CANDIDATES = ['skiffd', 'dockerd'] as const;
export type Name = (typeof CANDIDATES)[number];

/**
 * One benchmark run's work dir (short: skiffd's shim sockets <dir>/run/shims/<64 hex>/control.sock must fit in 107
 * bytes), the TimedShell its docker CLI calls go through, the cleanups to run at the end (last added, first run) and
 * the notes for the report. `main` runs the benchmark with SIGINT/SIGTERM handled and everything cleaned up.
 */
export class Lab {
  readonly work = mkdtempSync('/tmp/sbd-');
  readonly shell = new TimedShell(join(this.work, 'commands.stderr'));
  readonly cleanups: (() => Promise<void> | void)[] = [];
  readonly notes: string[] = [];
  interrupted = false;
  private cleaning: Promise<void> | undefined;

  constructor(
    readonly bench: string,
    private readonly quiet: boolean,
  ) {}

  log(msg: string): void {
    if (!this.quiet || process.stderr.isTTY) console.error(`bench ${this.bench}: ${msg}`);
  }

  /** SIGTERM, up to 15 s, then SIGKILL. */
  stopPid(pid: number, what: string): Promise<void> {
    return stopPid(pid, what, 15_000, (m) => this.log(m));
  }

  /** TimedShell.check, with the command SIGKILLed (found by its argv) if it takes longer than timeoutMs. */
  async timed(argv: string[], timeoutMs = 120_000): Promise<number> {
    const t = setTimeout(() => {
      const same = (a: string[]) => a.length === argv.length && a.every((x, i) => x === argv[i]);
      for (const p of findProcesses(same)) {
        this.notes.push(`killed after ${timeoutMs / 1000} s: ${argv.join(' ').slice(0, 160)}`);
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }, timeoutMs);
    try {
      return await this.shell.check(argv);
    } finally {
      clearTimeout(t);
    }
  }

  /** An iteration that stops at once when the run was interrupted. */
  guard<T>(f: () => Promise<T>): () => Promise<T> {
    return () => {
      if (this.interrupted) throw new Error('interrupted');
      return f();
    };
  }

  cleanup(): Promise<void> {
    this.cleaning ??= this.cleanupOnce();
    return this.cleaning;
  }

  private async cleanupOnce(): Promise<void> {
    for (const f of this.cleanups.reverse()) {
      try {
        await f();
      } catch (e) {
        this.log(`cleanup: ${errorText(e)}`);
      }
    }
    this.cleanups.length = 0;
    this.shell.close();
    unmountWork(this);
    rmSync(this.work, { recursive: true, force: true });
  }

  /** Runs the benchmark, cleans up (also on SIGINT/SIGTERM), says what cleanup found and exits with its status. */
  async main(body: () => Promise<number>): Promise<never> {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => {
        this.interrupted = true;
        this.log(`${sig}: cleaning up`);
        this.shell.kill();
        void this.cleanup().finally(() => process.exit(130));
      });
    }
    let exitCode = 1;
    try {
      exitCode = await body();
    } catch (e) {
      this.log(errorText(e));
    } finally {
      await this.cleanup();
      for (const n of this.notes.filter(
        (x) =>
          x.startsWith('stopped leftover') ||
          x.startsWith('could not') ||
          x.startsWith('left ') ||
          x.startsWith('iptables') ||
          x.startsWith('host networking'),
      ))
        this.log(n);
    }
    process.exit(exitCode);
  }
}

/** A daemon bench's command line (--n, default 20; --warmup; --only skiffd,dockerd; --json); exits on bad input
 *  and when not root. */
export function daemonBenchArgs(bench: string): BenchArgs {
  let args: BenchArgs;
  try {
    args = parseBenchArgs(process.argv.slice(2), { n: 20 });
  } catch (e) {
    console.error(`bench ${bench}: ${errorText(e)}`);
    process.exit(2);
  }
  if (process.getuid?.() !== 0) {
    console.error(`bench ${bench}: needs root (daemons, namespaces, mounts, cgroups): run it as root`);
    process.exit(1);
  }
  const unknown = (args.only ?? []).filter((n) => !(CANDIDATES as readonly string[]).includes(n));
  if (unknown.length > 0) {
    console.error(`bench ${bench}: --only: unknown candidate ${unknown.join(', ')} (have ${CANDIDATES.join(', ')})`);
    process.exit(2);
  }
  return args;
}

/** Why each daemon cannot run on this machine (absent: it can); throws without the docker CLI. */
export function missingDaemons(): Partial<Record<Name, string>> {
  const missing: Partial<Record<Name, string>> = {};
  if (!existsSync(DOCKER)) throw new Error(`${DOCKER} missing: the docker CLI 28 both daemons are driven by`);
  if (!existsSync(SKIFFD_BIN)) missing.skiffd = `${SKIFFD_BIN} not built: run \`npm run build\``;
  if (!existsSync('/usr/sbin/dockerd'))
    missing.dockerd = "/usr/sbin/dockerd not found: install Debian's package with `apt-get install docker.io`";
  else if (!existsSync('/usr/bin/containerd') || !which('ctr'))
    missing.dockerd = 'containerd not found: `apt-get install containerd` (docker.io depends on it)';
  return missing;
}

/**
 * Starts each chosen daemon not already in `failed` and `docker load`s the archive into it; a daemon that fails is
 * recorded in `failed` with why. Throws when none could be started.
 */
export async function startDaemons(
  lab: Lab,
  chosen: (n: Name) => boolean,
  failed: Partial<Record<Name, string>>,
  archive: string,
): Promise<Daemon[]> {
  const daemons: Daemon[] = [];
  for (const name of CANDIDATES) {
    if (!chosen(name) || failed[name]) continue;
    try {
      const d = name === 'skiffd' ? await startSkiffd(lab) : await startDockerd(lab);
      const loadMs = await lab.timed(d.cli('load', '-i', archive));
      lab.log(`${name}: docker load of busybox in ${formatMs(loadMs)}`);
      daemons.push(d);
    } catch (e) {
      failed[name] = errorText(e);
      lab.log(`${name}: ${failed[name]}`);
    }
  }
  if (daemons.length === 0) throw new Error('no daemon could be started');
  return daemons;
}

// ------------------------------------------------------------------------------------------------------------------
// busybox-static as a docker-archive

export interface Archive {
  file: string;
  layer: string;
  diffId: string;
}

export function makeBusyboxArchive(lab: Lab): Archive {
  const busybox = '/bin/busybox';
  if (!existsSync(busybox)) throw new Error(`${busybox} missing: apt-get install busybox-static`);
  const rootfs = join(lab.work, 'busybox/rootfs');
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'run', 'home']) {
    mkdirSync(join(rootfs, d), { recursive: true });
  }
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  copyFileSync(busybox, join(rootfs, 'bin/busybox'));
  chmodSync(join(rootfs, 'bin/busybox'), 0o755);
  mustRun('chroot', [rootfs, '/bin/busybox', '--install', '-s']);
  if (!existsSync(join(rootfs, 'bin/true'))) throw new Error(`${busybox} is not busybox-static (no true applet)`);
  writeFileSync(
    join(rootfs, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n',
  );
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  const layer = join(lab.work, 'busybox/layer.tar');
  mustRun('tar', [...TAR_FLAGS, '-C', rootfs, '-cf', layer, '.']);
  const diffId = sha256File(layer);
  const file = join(lab.work, 'busybox/busybox.tar');
  writeDockerArchive(lab, file, 'busybox:latest', [layer], [diffId], ['sh']);
  return { file, layer, diffId };
}

export const TAR_FLAGS = ['--sort=name', '--numeric-owner', '--owner=0', '--group=0', '--mtime=@946684800'];

/** A `docker save`-format archive: manifest.json, the config, one dir per layer. */
export function writeDockerArchive(
  lab: Lab,
  out: string,
  tag: string,
  layers: string[],
  diffIds: string[],
  cmd: string[],
): void {
  const dir = mkdtempSync(join(lab.work, 'archive-'));
  const config = JSON.stringify({
    architecture: process.arch === 'arm64' ? 'arm64' : 'amd64',
    os: 'linux',
    created: '2000-01-01T00:00:00Z',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: cmd },
    rootfs: { type: 'layers', diff_ids: diffIds.map((d) => `sha256:${d}`) },
  });
  const configId = createHash('sha256').update(config).digest('hex');
  writeFileSync(join(dir, `${configId}.json`), config);
  const names = layers.map((layer, i) => {
    mkdirSync(join(dir, diffIds[i]!));
    mustRun('ln', [layer, join(dir, diffIds[i]!, 'layer.tar')]);
    return `${diffIds[i]}/layer.tar`;
  });
  writeFileSync(
    join(dir, 'manifest.json'),
    JSON.stringify([{ Config: `${configId}.json`, RepoTags: [tag], Layers: names }]),
  );
  mustRun('tar', ['-C', dir, '-cf', out, '.']);
  rmSync(dir, { recursive: true, force: true });
}

// ------------------------------------------------------------------------------------------------------------------
// The daemons

export interface Daemon {
  name: Name;
  socket: string;
  /** The docker CLI against this daemon: argv for TimedShell or spawnSync. */
  cli: (...argv: string[]) => string[];
  /** The daemon and its container manager (skiffd + skiff-supervisor, dockerd + containerd). */
  pids: { process: string; pid: number }[];
  shimPids: () => number[];
  shimName: string;
  /** The holder of the network namespace the daemon runs in (skiffd's own); undefined: the host's. */
  nsPid?: number;
}

export function dockerCli(socket: string, config: string) {
  mkdirSync(config, { recursive: true });
  return (...argv: string[]) => [DOCKER, '--config', config, '-H', `unix://${socket}`, ...argv];
}

export async function waitPing(socket: string, proc: ChildProcess, what: string, logFile: string): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(`${what} exited (${proc.exitCode ?? proc.signalCode}): ${tail(logFile)}`);
    if (existsSync(socket) && (await ping(socket))) return performance.now() - t0;
    if (performance.now() - t0 > 30_000) throw new Error(`${what} did not answer /_ping within 30 s: ${tail(logFile)}`);
    await sleep(20);
  }
}

export function ping(socket: string): Promise<boolean> {
  return new Promise((res) => {
    const req = request({ socketPath: socket, path: '/_ping' }, (r) => {
      r.resume();
      res(r.statusCode === 200);
    });
    req.on('error', () => res(false));
    req.setTimeout(2000, () => req.destroy());
    req.end();
  });
}

/** skiffd in fresh mount + network namespaces held by a sleeping `unshare` (loopback up); it starts its supervisor. */
export async function startSkiffd(lab: Lab): Promise<Daemon & { nsPid: number }> {
  const dir = join(lab.work, 's');
  mkdirSync(join(dir, 'run'), { recursive: true });
  const holder = spawn(
    'unshare',
    ['-m', '-n', '--propagation', 'private', 'sh', '-c', 'ip link set lo up && exec sleep infinity'],
    {
      stdio: 'ignore',
      detached: true,
    },
  );
  const nsPid = holder.pid!;
  lab.cleanups.push(() => stopSkiffd(lab, dir, nsPid));
  for (let i = 0; ; i++) {
    if (holder.exitCode !== null) throw new Error(`unshare exited ${holder.exitCode}`);
    if (readFileSync(`/proc/${nsPid}/comm`, 'utf8').trim() === 'sleep') break;
    if (i > 200) throw new Error('unshare did not make the namespaces');
    await sleep(20);
  }
  const socket = join(dir, 'docker.sock');
  const supSocket = join(dir, 'run/supervisor.sock');
  const logFile = join(dir, 'skiffd.log');
  const out = openSync(logFile, 'a');
  const flags = [
    '-H',
    `unix://${socket}`,
    '--data-root',
    join(dir, 'lib/daemon'),
    '--exec-root',
    join(dir, 'run/daemon'),
  ];
  flags.push('--supervisor', supSocket, '--pidfile', join(dir, 'run/skiffd.pid'), '--log-level', 'warn');
  // nsenter without -p execs skiffd in place: the child's pid is skiffd's node.
  const proc = spawn('nsenter', ['-t', String(nsPid), '-m', '-n', '--', SKIFFD_BIN, ...flags], {
    stdio: ['ignore', out, out],
    detached: true,
  });
  const ms = await waitPing(socket, proc, 'skiffd', logFile);
  const sup = findProcesses((argv) => argv.some((a) => a.endsWith('skiff-supervisor')) && argv.includes(supSocket));
  if (sup.length !== 1) throw new Error(`expected one skiff-supervisor on ${supSocket}, found ${sup.length}`);
  lab.log(`skiffd pid ${proc.pid} (supervisor ${sup[0]}) answering /_ping in ${formatMs(ms)}`);
  const shimDir = join(dir, 'run/shims');
  return {
    name: 'skiffd',
    socket,
    nsPid,
    cli: dockerCli(socket, join(dir, 'docker-config')),
    pids: [
      { process: 'skiffd', pid: proc.pid! },
      { process: 'skiff-supervisor', pid: sup[0]! },
    ],
    shimName: 'skiff-shim',
    shimPids: () =>
      findProcesses((argv) => !!argv[0]?.endsWith('skiff-shim') && argv.some((a) => a.startsWith(shimDir))),
  };
}

/** Everything in skiffd's network namespace (skiffd, the supervisor, shims, containers), by pid; then mounts. */
async function stopSkiffd(lab: Lab, dir: string, nsPid: number): Promise<void> {
  const cli = dockerCli(join(dir, 'docker.sock'), join(dir, 'docker-config'));
  if (existsSync(join(dir, 'docker.sock')) && (await ping(join(dir, 'docker.sock')))) {
    const ids = spawnSync(cli('ps', '-aq')[0]!, cli('ps', '-aq').slice(1), { encoding: 'utf8', timeout: 30_000 });
    const list = ids.stdout?.split('\n').filter(Boolean) ?? [];
    if (list.length > 0) spawnSync(DOCKER, cli('rm', '-f', ...list).slice(1), { stdio: 'ignore', timeout: 60_000 });
  }
  let netns = '';
  try {
    netns = readlinkSync(`/proc/${nsPid}/ns/net`);
  } catch {
    /* gone */
  }
  // skiffd first (no restarts), then the supervisor, then shims and whatever else shares the namespace.
  const inNs = () =>
    readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p) && Number(p) !== nsPid)
      .map(Number)
      .filter((p) => {
        try {
          return readlinkSync(`/proc/${p}/ns/net`) === netns;
        } catch {
          return false;
        }
      });
  if (netns) {
    const order = ['skiffd', 'skiff-supervisor', ''];
    for (const what of order) {
      for (const p of inNs()) {
        const argv = cmdline(p);
        if (what === '' || argv.some((a) => a.endsWith(what))) await lab.stopPid(p, argv.join(' ').slice(0, 60));
      }
    }
  }
  await lab.stopPid(nsPid, 'namespace holder');
}

export async function startDockerd(lab: Lab): Promise<Daemon> {
  const dir = join(lab.work, 'd');
  mkdirSync(join(dir, 'ctd'), { recursive: true });
  const ctdSock = join(dir, 'ctd/containerd.sock');
  writeFileSync(
    join(dir, 'ctd/config.toml'),
    [
      'version = 2',
      `root = "${dir}/ctd/root"`,
      `state = "${dir}/ctd/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${ctdSock}"`,
      '',
    ].join('\n'),
  );
  const ctdLog = join(dir, 'containerd.log');
  const ctd = spawn('/usr/bin/containerd', ['--config', join(dir, 'ctd/config.toml')], {
    detached: true,
    stdio: ['ignore', openSync(ctdLog, 'a'), openSync(ctdLog, 'a')],
  });
  lab.cleanups.push(() => stopContainerd(lab, ctd.pid!, ctdSock));
  for (let i = 0; !existsSync(ctdSock) || spawnSync('ctr', ['-a', ctdSock, 'version']).status !== 0; i++) {
    if (ctd.exitCode !== null) throw new Error(`containerd exited ${ctd.exitCode}: ${tail(ctdLog)}`);
    if (i > 1000) throw new Error('containerd did not answer within 20 s');
    await sleep(20);
  }
  const socket = join(dir, 'docker.sock');
  const logFile = join(dir, 'dockerd.log');
  writeFileSync(join(dir, 'daemon.json'), '{}\n');
  const flags = ['--config-file', join(dir, 'daemon.json'), '--data-root', join(dir, 'data'), '--exec-root'];
  flags.push(
    join(dir, 'exec'),
    '-H',
    `unix://${socket}`,
    '--pidfile',
    join(dir, 'dockerd.pid'),
    '--containerd',
    ctdSock,
  );
  const proc = spawn('/usr/sbin/dockerd', flags, {
    detached: true,
    stdio: ['ignore', openSync(logFile, 'a'), openSync(logFile, 'a')],
  });
  lab.cleanups.push(() => stopDockerd(lab, proc.pid!, socket, dir));
  const ms = await waitPing(socket, proc, 'dockerd', logFile);
  lab.log(`dockerd pid ${proc.pid} (containerd ${ctd.pid}) answering /_ping in ${formatMs(ms)}`);
  return {
    name: 'dockerd',
    socket,
    cli: dockerCli(socket, join(dir, 'docker-config')),
    pids: [
      { process: 'dockerd', pid: proc.pid! },
      { process: 'containerd', pid: ctd.pid! },
    ],
    shimName: 'containerd-shim-runc-v2',
    shimPids: () => findProcesses((argv) => !!argv[0]?.endsWith('containerd-shim-runc-v2') && argv.includes(ctdSock)),
  };
}

async function stopDockerd(lab: Lab, pid: number, socket: string, dir: string): Promise<void> {
  if (alive(pid) && (await ping(socket))) {
    const cli = dockerCli(socket, join(dir, 'docker-config'));
    const ids = spawnSync(DOCKER, cli('ps', '-aq').slice(1), { encoding: 'utf8', timeout: 30_000 });
    const list = ids.stdout?.split('\n').filter(Boolean) ?? [];
    if (list.length > 0) spawnSync(DOCKER, cli('rm', '-f', ...list).slice(1), { stdio: 'ignore', timeout: 60_000 });
  }
  await lab.stopPid(pid, 'dockerd');
}

async function stopContainerd(lab: Lab, pid: number, address: string): Promise<void> {
  await lab.stopPid(pid, 'containerd');
  for (const p of findProcesses((argv) => !!argv[0]?.endsWith('containerd-shim-runc-v2') && argv.includes(address)))
    await lab.stopPid(p, 'containerd-shim-runc-v2');
}

// ------------------------------------------------------------------------------------------------------------------
// What dockerd changes on the host, recorded before and undone after (as ../shared/lab/cleanup.sh does)

export interface HostState {
  paths: Record<string, boolean>;
  docker0: boolean;
  ipForward: string;
  forwardPolicy: string;
  iptables: string;
  cgroups: Set<string>;
}

export const HOST_PATHS = [
  '/etc/docker/key.json',
  '/etc/docker',
  '/run/docker',
  '/run/containerd/s',
  '/run/containerd',
];

export function iptablesRules(): string {
  const r = spawnSync('iptables-save', [], { encoding: 'utf8' });
  return (r.stdout ?? '')
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/\[\d+:\d+\]/, ''))
    .join('\n');
}

export function cgroupDirs(): Set<string> {
  const out = new Set<string>();
  for (const h of readdirSync('/sys/fs/cgroup')) {
    for (const name of ['docker', 'skiff']) {
      const p = join('/sys/fs/cgroup', h, name);
      if (existsSync(p)) out.add(p);
    }
  }
  return out;
}

export function hostState(): HostState {
  return {
    paths: Object.fromEntries(HOST_PATHS.map((p) => [p, existsSync(p)])),
    docker0: spawnSync('ip', ['link', 'show', 'docker0'], { stdio: 'ignore' }).status === 0,
    ipForward: readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(),
    forwardPolicy: /^:FORWARD (\w+)/m.exec(iptablesRules())?.[1] ?? 'ACCEPT',
    iptables: iptablesRules(),
    cgroups: cgroupDirs(),
  };
}

export function restoreHost(lab: Lab, before: HostState): void {
  const otherDockerd = findProcesses((argv) => !!argv[0]?.endsWith('dockerd'));
  if (otherDockerd.length > 0) {
    lab.notes.push(`host networking not restored: another dockerd runs (pid ${otherDockerd.join(', ')})`);
  } else {
    const ipt = (...a: string[]) => spawnSync('iptables', a, { stdio: 'ignore' });
    if (!before.docker0) spawnSync('ip', ['link', 'del', 'docker0'], { stdio: 'ignore' });
    if (!/^:DOCKER /m.test(before.iptables)) {
      ipt('-t', 'nat', '-D', 'PREROUTING', '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'DOCKER');
      ipt(
        '-t',
        'nat',
        '-D',
        'OUTPUT',
        '!',
        '-d',
        '127.0.0.0/8',
        '-m',
        'addrtype',
        '--dst-type',
        'LOCAL',
        '-j',
        'DOCKER',
      );
      ipt('-t', 'nat', '-D', 'POSTROUTING', '-s', '172.17.0.0/16', '!', '-o', 'docker0', '-j', 'MASQUERADE');
      ipt('-t', 'nat', '-F', 'DOCKER');
      ipt('-t', 'nat', '-X', 'DOCKER');
      ipt('-D', 'FORWARD', '-j', 'DOCKER-USER');
      ipt('-D', 'FORWARD', '-j', 'DOCKER-ISOLATION-STAGE-1');
      ipt('-D', 'FORWARD', '-o', 'docker0', '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT');
      ipt('-D', 'FORWARD', '-o', 'docker0', '-j', 'DOCKER');
      ipt('-D', 'FORWARD', '-i', 'docker0', '!', '-o', 'docker0', '-j', 'ACCEPT');
      ipt('-D', 'FORWARD', '-i', 'docker0', '-o', 'docker0', '-j', 'ACCEPT');
      const chains = ['DOCKER', 'DOCKER-ISOLATION-STAGE-1', 'DOCKER-ISOLATION-STAGE-2', 'DOCKER-USER'];
      for (const c of chains) ipt('-F', c);
      for (const c of chains) ipt('-X', c);
    }
    ipt('-P', 'FORWARD', before.forwardPolicy);
    writeFileSync('/proc/sys/net/ipv4/ip_forward', before.ipForward);
    const after = iptablesRules();
    if (after !== before.iptables)
      lab.notes.push('iptables differ from before the run: compare `iptables-save` by hand');
  }
  // Empty parent cgroups made by dockerd (cgroupfs driver) and by skiff-runtime, only those that are new.
  for (const p of cgroupDirs()) {
    if (before.cgroups.has(p)) continue;
    try {
      rmdirSync(p);
    } catch (e) {
      lab.notes.push(`could not remove cgroup ${p}: ${errorText(e)}`);
    }
  }
  // Files dockerd made outside its roots (the trust key, /run/docker/plugins, containerd 1.6's shim socket dir).
  for (const p of HOST_PATHS) {
    if (before.paths[p] || !existsSync(p)) continue;
    if (p === '/etc/docker/key.json') rmSync(p, { force: true });
    else if (p === '/run/docker') rmSync(p, { recursive: true, force: true });
    else {
      try {
        rmdirSync(p);
      } catch {
        lab.notes.push(`left ${p}: not empty`);
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------------------------
// Processes and small helpers

export function version(bin: string): string {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  return (
    (r.stdout ?? '')
      .trim()
      .split(/\s+/)
      .find((w) => /^v?\d+\.\d+/.test(w))
      ?.replace(/,$/, '') ?? '?'
  );
}

export function gitHead(): string {
  const r = spawnSync('git', ['-C', repo, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  return r.stdout?.trim() || '?';
}

export function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

export function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  } catch {
    return [];
  }
}

export function findProcesses(match: (argv: string[]) => boolean): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    const argv = cmdline(Number(e));
    if (argv.length > 0 && match(argv)) out.push(Number(e));
  }
  return out;
}

/** Any process still naming the work dir in its argv (a shim left after a failure) is stopped. */
export async function killLeftovers(lab: Lab): Promise<void> {
  // The TimedShell (closed by now, maybe still exiting) is not a leftover.
  const leftover = (argv: string[]) => argv[3] !== 'timed-shell' && argv.some((a) => a.includes(lab.work));
  for (const pid of findProcesses(leftover)) {
    lab.notes.push(`stopped leftover process ${pid}: ${cmdline(pid).join(' ').slice(0, 120)}`);
    await lab.stopPid(pid, 'leftover');
  }
}

export function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-5).join(' | ');
  } catch {
    return '(no log)';
  }
}

export function mustRun(cmd: string, argv: string[]): void {
  const r = spawnSync(cmd, argv, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
}

export function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = join(dir, cmd);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** Mounts under the work dir (dockerd's data-root bind, overlays), deepest first. */
function unmountWork(lab: Lab): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => !!m && (m === lab.work || m.startsWith(`${lab.work}/`)))
    .sort()
    .reverse();
  for (const m of mounts) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
}
