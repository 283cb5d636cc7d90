// bench/daemon (issue 4): skiffd (+ the skiff-supervisor it starts) beside Debian's dockerd + containerd (started by
// hand as ../shared/lab/docker-baseline.sh does), both driven by the same real docker CLI (/usr/local/bin/docker,
// `-H unix://<socket>` per daemon) on the same busybox-static image, loaded into both with `docker load`:
//   - `docker run --rm busybox true` on each daemon's default network, and with `--network none` (the fair
//     comparison while skiffd has no networking: it gives each container a fresh empty netns, dockerd a veth on its
//     bridge plus iptables),
//   - `docker ps` with 50 running `sleep 3600` containers in each,
//   - `docker pull` of a ~100 MB multi-layer image (busybox-static + 4 layers of 25 MB of random data, pushed with
//     skopeo) from a Debian docker-registry on 127.0.0.1, each pull after `docker rmi` of the image,
//   - the idle memory of skiffd + skiff-supervisor beside dockerd + containerd, and of one shim per container
//     (skiff-shim beside containerd-shim-runc-v2) with the 50 containers running.
// Candidates alternate round by round (skiffd, dockerd, skiffd, ...); each CLI call is timed by a long-lived bash
// around its exec, so Node's spawn cost is in neither figure, the docker CLI's own start is in both.
//
// Usage: npm run bench -- daemon [--n 20] [--warmup 1] [--only skiffd,dockerd] [--json]
//
// Needs root, a built tree (`npm run build`: dist/bin/skiffd), and Debian's docker.io (dockerd; containerd comes
// with it), docker-registry, skopeo and busybox-static. Isolation: the bench re-executes itself in a private mount
// namespace, so no mount of either daemon outlives it; skiffd runs in a further mount + network namespace of its own
// (as tests/integration/daemon-harness.ts does) and gets its own docker-registry on 127.0.0.1 there, serving the
// same storage. dockerd runs in the host's network namespace (its default bridge needs it): docker0, its iptables
// chains and rules, ip_forward, the FORWARD policy, its cgroups, /etc/docker/key.json and /run/docker are undone
// afterwards (as ../shared/lab/cleanup.sh does) unless they were there before. Everything is stopped by pid.
import { alive, inPrivateMountNamespace, sleep, stopPid as stopPidAfter } from './procs.js';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type Candidate,
  type CandidateResult,
  errorText,
  formatKiB,
  formatMs,
  formatReport,
  formatTable,
  median,
  parseBenchArgs,
  readMemory,
  type ReportJson,
  runAlternating,
  TimedShell,
  toJson,
} from './harness.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const NS_ENV = 'SKIFF_BENCH_MOUNTNS';
const SKIFFD_BIN = join(repo, 'dist/bin/skiffd');
const DOCKER = '/usr/local/bin/docker';
const CANDIDATES = ['skiffd', 'dockerd'] as const;
type Name = (typeof CANDIDATES)[number];
const SLEEPERS = 50;
const MAX_PULLS = 5;
const RANDOM_LAYERS = 4;
const RANDOM_LAYER_MB = 25;
const SETTLE_MS = 2000;
const BIG_REPO = 'skiff-bench/multilayer';

const args = (() => {
  try {
    return parseBenchArgs(process.argv.slice(2), { n: 20 });
  } catch (e) {
    console.error(`bench daemon: ${errorText(e)}`);
    process.exit(2);
  }
})();
const log = (msg: string) => {
  if (!args.json || process.stderr.isTTY) console.error(`bench daemon: ${msg}`);
};
/** SIGTERM, up to 15 s, then SIGKILL. */
const stopPid = (pid: number, what: string): Promise<void> => stopPidAfter(pid, what, 15_000, log);

if (process.getuid?.() !== 0) {
  console.error('bench daemon: needs root (daemons, namespaces, mounts, cgroups): run it as root');
  process.exit(1);
}
if (args.only) {
  const unknown = args.only.filter((n) => !(CANDIDATES as readonly string[]).includes(n));
  if (unknown.length > 0) {
    console.error(`bench daemon: --only: unknown candidate ${unknown.join(', ')} (have ${CANDIDATES.join(', ')})`);
    process.exit(2);
  }
}
inPrivateMountNamespace(NS_ENV, 'daemon');

const chosen = (name: Name) => !args.only || args.only.includes(name);
// Short: skiffd's shim sockets (<dir>/run/shims/<64 hex>/control.sock) must fit in 107 bytes.
const work = mkdtempSync('/tmp/sbd-');
const shell = new TimedShell(join(work, 'commands.stderr'));
const cleanups: (() => Promise<void> | void)[] = [];
const notes: string[] = [];
let interrupted = false;

// ------------------------------------------------------------------------------------------------------------------
// Images: busybox-static as a docker-archive, and a multi-layer image on top of it pushed into a local registry

interface Archive {
  file: string;
  layer: string;
  diffId: string;
}

function makeBusyboxArchive(): Archive {
  const busybox = '/bin/busybox';
  if (!existsSync(busybox)) throw new Error(`${busybox} missing: apt-get install busybox-static`);
  const rootfs = join(work, 'busybox/rootfs');
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
  const layer = join(work, 'busybox/layer.tar');
  mustRun('tar', [...TAR_FLAGS, '-C', rootfs, '-cf', layer, '.']);
  const diffId = sha256File(layer);
  const file = join(work, 'busybox/busybox.tar');
  writeDockerArchive(file, 'busybox:latest', [layer], [diffId], ['sh']);
  return { file, layer, diffId };
}

const TAR_FLAGS = ['--sort=name', '--numeric-owner', '--owner=0', '--group=0', '--mtime=@946684800'];

/** A `docker save`-format archive: manifest.json, the config, one dir per layer. */
function writeDockerArchive(out: string, tag: string, layers: string[], diffIds: string[], cmd: string[]): void {
  const dir = mkdtempSync(join(work, 'archive-'));
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

/** busybox + RANDOM_LAYERS layers of random data, as a docker-archive (skopeo pushes it, gzipped). */
function makeMultiLayerArchive(base: Archive): { file: string; mb: number } {
  const layers = [base.layer];
  const diffIds = [base.diffId];
  let bytes = statSync(base.layer).size;
  for (let i = 1; i <= RANDOM_LAYERS; i++) {
    const src = join(work, `multilayer/src${i}`);
    mkdirSync(join(src, 'data'), { recursive: true });
    const fd = openSync(join(src, 'data', `random-${i}.bin`), 'w');
    for (let mb = 0; mb < RANDOM_LAYER_MB; mb++) writeSync(fd, randomBytes(1 << 20));
    closeSync(fd);
    const layer = join(work, `multilayer/layer${i}.tar`);
    mustRun('tar', [...TAR_FLAGS, '-C', src, '-cf', layer, 'data']);
    rmSync(src, { recursive: true, force: true });
    layers.push(layer);
    diffIds.push(sha256File(layer));
    bytes += statSync(layer).size;
  }
  const file = join(work, 'multilayer/multilayer.tar');
  writeDockerArchive(file, `${BIG_REPO}:latest`, layers, diffIds, ['sh']);
  for (const l of layers.slice(1)) rmSync(l);
  return { file, mb: bytes / (1 << 20) };
}

interface Registry {
  proc: ChildProcess;
  addr: string;
}

function registryConfig(addr: string): string {
  const file = join(work, 'registry/config.yml');
  mkdirSync(join(work, 'registry/data'), { recursive: true });
  const cfg = [
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(work, 'registry/data')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${addr}`,
    '  secret: skiff-bench',
  ];
  writeFileSync(file, cfg.join('\n') + '\n');
  return file;
}

/** docker-registry on addr, in the host's network namespace, or in the one of pid nsPid. */
async function startRegistry(addr: string, nsPid?: number): Promise<Registry> {
  const bin = '/usr/bin/docker-registry';
  if (!existsSync(bin)) throw new Error(`${bin} missing: apt-get install docker-registry`);
  const cfg = registryConfig(addr);
  const out = openSync(join(work, `registry/registry-${nsPid ?? 'host'}.log`), 'a');
  const argv = nsPid ? ['nsenter', '-t', String(nsPid), '-n', '--', bin] : [bin];
  const proc = spawn(argv[0]!, [...argv.slice(1), 'serve', cfg], { stdio: ['ignore', out, out], detached: true });
  cleanups.push(() => stopPid(proc.pid!, 'docker-registry'));
  const curl = ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${addr}/v2/`];
  const probe = nsPid ? ['nsenter', '-t', String(nsPid), '-n', '--', ...curl] : curl;
  for (let i = 0; i < 200; i++) {
    if (spawnSync(probe[0]!, probe.slice(1), { encoding: 'utf8' }).stdout === '200') return { proc, addr };
    if (proc.exitCode !== null) break;
    await sleep(50);
  }
  throw new Error(
    `docker-registry on ${addr} did not answer: ${tail(join(work, `registry/registry-${nsPid ?? 'host'}.log`))}`,
  );
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

// ------------------------------------------------------------------------------------------------------------------
// The daemons

interface Daemon {
  name: Name;
  socket: string;
  /** The docker CLI against this daemon: argv for TimedShell or spawnSync. */
  cli: (...argv: string[]) => string[];
  /** The daemon and its container manager (skiffd + skiff-supervisor, dockerd + containerd). */
  pids: { process: string; pid: number }[];
  shimPids: () => number[];
  shimName: string;
  freshMemory?: MemoryRow[];
}

function dockerCli(socket: string, config: string) {
  mkdirSync(config, { recursive: true });
  return (...argv: string[]) => [DOCKER, '--config', config, '-H', `unix://${socket}`, ...argv];
}

async function waitPing(socket: string, proc: ChildProcess, what: string, logFile: string): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(`${what} exited (${proc.exitCode ?? proc.signalCode}): ${tail(logFile)}`);
    if (existsSync(socket) && (await ping(socket))) return performance.now() - t0;
    if (performance.now() - t0 > 30_000) throw new Error(`${what} did not answer /_ping within 30 s: ${tail(logFile)}`);
    await sleep(20);
  }
}

function ping(socket: string): Promise<boolean> {
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
async function startSkiffd(): Promise<Daemon & { nsPid: number }> {
  const dir = join(work, 's');
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
  cleanups.push(() => stopSkiffd(dir, nsPid));
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
  log(`skiffd pid ${proc.pid} (supervisor ${sup[0]}) answering /_ping in ${formatMs(ms)}`);
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
async function stopSkiffd(dir: string, nsPid: number): Promise<void> {
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
        if (what === '' || argv.some((a) => a.endsWith(what))) await stopPid(p, argv.join(' ').slice(0, 60));
      }
    }
  }
  await stopPid(nsPid, 'namespace holder');
}

async function startDockerd(): Promise<Daemon> {
  const dir = join(work, 'd');
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
  cleanups.push(() => stopContainerd(ctd.pid!, ctdSock));
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
  cleanups.push(() => stopDockerd(proc.pid!, socket, dir));
  const ms = await waitPing(socket, proc, 'dockerd', logFile);
  log(`dockerd pid ${proc.pid} (containerd ${ctd.pid}) answering /_ping in ${formatMs(ms)}`);
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

async function stopDockerd(pid: number, socket: string, dir: string): Promise<void> {
  if (alive(pid) && (await ping(socket))) {
    const cli = dockerCli(socket, join(dir, 'docker-config'));
    const ids = spawnSync(DOCKER, cli('ps', '-aq').slice(1), { encoding: 'utf8', timeout: 30_000 });
    const list = ids.stdout?.split('\n').filter(Boolean) ?? [];
    if (list.length > 0) spawnSync(DOCKER, cli('rm', '-f', ...list).slice(1), { stdio: 'ignore', timeout: 60_000 });
  }
  await stopPid(pid, 'dockerd');
}

async function stopContainerd(pid: number, address: string): Promise<void> {
  await stopPid(pid, 'containerd');
  for (const p of findProcesses((argv) => !!argv[0]?.endsWith('containerd-shim-runc-v2') && argv.includes(address)))
    await stopPid(p, 'containerd-shim-runc-v2');
}

// ------------------------------------------------------------------------------------------------------------------
// What dockerd changes on the host, recorded before and undone after (as ../shared/lab/cleanup.sh does)

interface HostState {
  paths: Record<string, boolean>;
  docker0: boolean;
  ipForward: string;
  forwardPolicy: string;
  iptables: string;
  cgroups: Set<string>;
}

const HOST_PATHS = ['/etc/docker/key.json', '/etc/docker', '/run/docker', '/run/containerd/s', '/run/containerd'];

function iptablesRules(): string {
  const r = spawnSync('iptables-save', [], { encoding: 'utf8' });
  return (r.stdout ?? '')
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/\[\d+:\d+\]/, ''))
    .join('\n');
}

function cgroupDirs(): Set<string> {
  const out = new Set<string>();
  for (const h of readdirSync('/sys/fs/cgroup')) {
    for (const name of ['docker', 'skiff']) {
      const p = join('/sys/fs/cgroup', h, name);
      if (existsSync(p)) out.add(p);
    }
  }
  return out;
}

function hostState(): HostState {
  return {
    paths: Object.fromEntries(HOST_PATHS.map((p) => [p, existsSync(p)])),
    docker0: spawnSync('ip', ['link', 'show', 'docker0'], { stdio: 'ignore' }).status === 0,
    ipForward: readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(),
    forwardPolicy: /^:FORWARD (\w+)/m.exec(iptablesRules())?.[1] ?? 'ACCEPT',
    iptables: iptablesRules(),
    cgroups: cgroupDirs(),
  };
}

function restoreHost(before: HostState): void {
  const otherDockerd = findProcesses((argv) => !!argv[0]?.endsWith('dockerd'));
  if (otherDockerd.length > 0) {
    notes.push(`host networking not restored: another dockerd runs (pid ${otherDockerd.join(', ')})`);
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
    if (after !== before.iptables) notes.push('iptables differ from before the run: compare `iptables-save` by hand');
  }
  // Empty parent cgroups made by dockerd (cgroupfs driver) and by skiff-runtime, only those that are new.
  for (const p of cgroupDirs()) {
    if (before.cgroups.has(p)) continue;
    try {
      rmdirSync(p);
    } catch (e) {
      notes.push(`could not remove cgroup ${p}: ${errorText(e)}`);
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
        notes.push(`left ${p}: not empty`);
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------------------------
// Memory

interface MemoryRow {
  what: string;
  process: string;
  rssKiB?: number;
  pssKiB?: number;
  note?: string;
}

/** Median VmRSS and Pss over 3 readings 250 ms apart. */
async function sampleMemory(pid: number): Promise<{ rssKiB: number; pssKiB?: number }> {
  const rs: number[] = [];
  const ps: number[] = [];
  for (let i = 0; i < 3; i++) {
    if (i > 0) await sleep(250);
    const m = readMemory(pid);
    rs.push(m.rssKiB);
    if (m.pssKiB !== undefined) ps.push(m.pssKiB);
  }
  return { rssKiB: median(rs), ...(ps.length === 3 ? { pssKiB: median(ps) } : {}) };
}

/** One row per process of the daemon's stack, then their sum. */
async function stackMemory(d: Daemon, what: string): Promise<MemoryRow[]> {
  const rows: MemoryRow[] = [];
  for (const p of d.pids) rows.push({ what, process: p.process, ...(await sampleMemory(p.pid)) });
  rows.push({
    what,
    process: `${d.pids.map((p) => p.process).join(' + ')}`,
    rssKiB: rows.reduce((s, r) => s + r.rssKiB!, 0),
    pssKiB: rows.every((r) => r.pssKiB !== undefined) ? rows.reduce((s, r) => s + r.pssKiB!, 0) : undefined,
  });
  return rows;
}

/** The shims of the running containers: the median shim and their sum. */
function shimMemory(d: Daemon, what: string): MemoryRow[] {
  const pids = d.shimPids();
  if (pids.length === 0) return [{ what, process: d.shimName, note: 'no shim found' }];
  const mem = pids.map((p) => readMemory(p));
  const rss = mem.map((m) => m.rssKiB);
  const pss = mem.map((m) => m.pssKiB).filter((x): x is number => x !== undefined);
  return [
    {
      what,
      process: `${d.shimName} (median of ${pids.length})`,
      rssKiB: median(rss),
      ...(pss.length === pids.length ? { pssKiB: median(pss) } : {}),
      note: `min ${formatKiB(Math.min(...rss))}, max ${formatKiB(Math.max(...rss))}`,
    },
    {
      what,
      process: `${d.shimName} x${pids.length} (sum)`,
      rssKiB: rss.reduce((a, b) => a + b, 0),
      ...(pss.length === pids.length ? { pssKiB: pss.reduce((a, b) => a + b, 0) } : {}),
    },
  ];
}

function formatMemory(rows: MemoryRow[]): string {
  const table: string[][] = [['memory', 'process', 'VmRSS', 'Pss', 'RSS vs skiff', '']];
  let prev = '';
  for (const r of rows) {
    // The skiff row of the same kind: same position among its group's rows.
    const group = rows.filter((x) => x.what === r.what);
    const half = group.length / 2;
    const k = group.indexOf(r);
    const base = k >= half && group.length % 2 === 0 ? group[k - half] : undefined;
    const vs =
      r.rssKiB === undefined
        ? '-'
        : k < half
          ? '(base)'
          : base?.rssKiB !== undefined
            ? `${(r.rssKiB / base.rssKiB).toFixed(2)}x`
            : '-';
    table.push([
      r.what === prev ? '' : r.what,
      r.process,
      r.rssKiB !== undefined ? formatKiB(r.rssKiB) : '-',
      r.pssKiB !== undefined ? formatKiB(r.pssKiB) : '-',
      vs,
      r.note ?? '',
    ]);
    prev = r.what;
  }
  return formatTable(table);
}

// ------------------------------------------------------------------------------------------------------------------

interface Section {
  title: string;
  report: ReportJson;
}

/** Runs one alternating benchmark over the daemons; `unavailable` holds a reason per daemon left out. */
async function alternate(
  daemons: Daemon[],
  label: (d: Daemon) => string,
  iterate: (d: Daemon) => () => Promise<number>,
  n: number,
  warmup: number,
): Promise<CandidateResult[]> {
  const candidates: Candidate[] = daemons.map((d) => ({ name: label(d), iterate: guard(iterate(d)) }));
  return runAlternating(candidates, {
    n,
    warmup,
    onRound: (round, rounds) => {
      if (!args.json && process.stderr.isTTY) process.stderr.write(`\r  round ${round + 1}/${rounds}`);
    },
  }).finally(() => {
    if (!args.json && process.stderr.isTTY) process.stderr.write('\n');
  });
}

/** TimedShell.check, with the command SIGKILLed (found by its argv) if it takes longer than timeoutMs. */
async function timed(argv: string[], timeoutMs = 120_000): Promise<number> {
  const t = setTimeout(() => {
    const same = (a: string[]) => a.length === argv.length && a.every((x, i) => x === argv[i]);
    for (const p of findProcesses(same)) {
      notes.push(`killed after ${timeoutMs / 1000} s: ${argv.join(' ').slice(0, 160)}`);
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }, timeoutMs);
  try {
    return await shell.check(argv);
  } finally {
    clearTimeout(t);
  }
}

function guard(f: () => Promise<number>): () => Promise<number> {
  return () => {
    if (interrupted) throw new Error('interrupted');
    return f();
  };
}

/** A result row for a daemon that could not run this part. */
function skipped(name: string, reason: string): CandidateResult {
  return { name, samples: [], phaseSamples: {}, extra: {}, error: `skipped: ${reason}` };
}

async function main(): Promise<number> {
  const missing: Partial<Record<Name, string>> = {};
  if (!existsSync(DOCKER)) throw new Error(`${DOCKER} missing: the docker CLI 28 both daemons are driven by`);
  if (!existsSync(SKIFFD_BIN)) missing.skiffd = `${SKIFFD_BIN} not built: run \`npm run build\``;
  if (!existsSync('/usr/sbin/dockerd'))
    missing.dockerd = "/usr/sbin/dockerd not found: install Debian's package with `apt-get install docker.io`";
  else if (!existsSync('/usr/bin/containerd') || !which('ctr'))
    missing.dockerd = 'containerd not found: `apt-get install containerd` (docker.io depends on it)';
  for (const [name, why] of Object.entries(missing)) if (chosen(name as Name)) log(`${name}: ${why}`);

  const before = hostState();
  cleanups.push(() => restoreHost(before));
  cleanups.push(killLeftovers);

  log('making the images (busybox-static; busybox + 4 x 25 MB random layers)');
  const busybox = makeBusyboxArchive();
  const multi = makeMultiLayerArchive(busybox);

  const daemons: Daemon[] = [];
  const failed: Partial<Record<Name, string>> = { ...missing };
  let skiffNs: number | undefined;
  for (const name of CANDIDATES) {
    if (!chosen(name) || failed[name]) continue;
    try {
      const d = name === 'skiffd' ? await startSkiffd() : await startDockerd();
      if ('nsPid' in d) skiffNs = d.nsPid as number;
      const loadMs = await timed(d.cli('load', '-i', busybox.file));
      log(`${name}: docker load of busybox in ${formatMs(loadMs)}`);
      daemons.push(d);
    } catch (e) {
      failed[name] = errorText(e);
      log(`${name}: ${failed[name]}`);
    }
  }
  if (daemons.length === 0) throw new Error('no daemon could be started');
  const unavailableRows = (label: (n: Name) => string) =>
    CANDIDATES.filter((n) => chosen(n) && failed[n]).map((n) => skipped(label(n), failed[n]!));
  const order = (rs: CandidateResult[]) =>
    [...rs].sort(
      (a, b) => CANDIDATES.findIndex((n) => a.name.startsWith(n)) - CANDIDATES.findIndex((n) => b.name.startsWith(n)),
    );

  // Idle memory of fresh daemons (the image loaded, nothing run yet).
  await sleep(SETTLE_MS);
  for (const d of daemons) d.freshMemory = await stackMemory(d, 'idle: fresh daemon, image loaded');

  const sections: Section[] = [];
  const section = (title: string, name: string, rs: CandidateResult[], n: number, warmup: number) =>
    sections.push({ title, report: toJson(`daemon ${name}`, { n, warmup }, order(rs)) });

  // 1. docker run --rm busybox true, default network and --network none, all four alternating in one loop.
  log(`docker run --rm busybox true: ${daemons.map((d) => d.name).join(', ')} alternately, n=${args.n}`);
  const runCmd = (d: Daemon, none: boolean) => () =>
    timed(d.cli('run', '--rm', ...(none ? ['--network', 'none'] : []), 'busybox', 'true'));
  const runs = await runAlternating(
    daemons.flatMap((d) => [
      { name: `${d.name}`, iterate: guard(runCmd(d, false)) },
      { name: `${d.name} --network none`, iterate: guard(runCmd(d, true)) },
    ]),
    { n: args.n, warmup: args.warmup },
  );
  const netLabel = (n: Name) => (n === 'skiffd' ? 'skiffd (empty netns)' : 'dockerd (bridge)');
  section(
    '`docker run --rm busybox true`, default network',
    'run',
    [
      ...runs.filter((r) => !r.name.includes('none')).map((r) => ({ ...r, name: netLabel(r.name as Name) })),
      ...unavailableRows(netLabel),
    ],
    args.n,
    args.warmup,
  );
  const noneLabel = (n: Name) => `${n} --network none`;
  section(
    '`docker run --rm --network none busybox true` (the fair comparison)',
    'run-network-none',
    [...runs.filter((r) => r.name.includes('none')), ...unavailableRows(noneLabel)],
    args.n,
    args.warmup,
  );

  if (interrupted) throw new Error('interrupted');
  // 2. docker ps with 50 running containers in each.
  const extra: Record<string, Record<string, string>> = {};
  const shimRows: MemoryRow[] = [];
  for (const d of daemons) {
    const t0 = performance.now();
    for (let k = 0; k < SLEEPERS && !interrupted; k++)
      await timed(d.cli('run', '-d', '--network', 'none', '--name', `sleeper${k}`, 'busybox', 'sleep', '3600'));
    const total = performance.now() - t0;
    const ps = spawnSync(DOCKER, d.cli('ps', '-q').slice(1), { encoding: 'utf8' });
    const running = ps.stdout.split('\n').filter(Boolean).length;
    if (running !== SLEEPERS)
      throw new Error(`${d.name}: ${running} running containers, want ${SLEEPERS}: ${ps.stderr}`);
    extra[d.name] = { [`run -d x${SLEEPERS}`]: formatMs(total) };
  }
  await sleep(SETTLE_MS);
  for (const d of daemons) shimRows.push(...shimMemory(d, `${SLEEPERS} running: one shim each`));
  for (const d of daemons) shimRows.push(...(await stackMemory(d, `${SLEEPERS} running: daemons`)));
  log(`docker ps with ${SLEEPERS} running: alternately, n=${args.n}`);
  const psRes = await alternate(
    daemons,
    (d) => d.name,
    (d) => () => timed(d.cli('ps')),
    args.n,
    args.warmup,
  );
  for (const r of psRes) r.extra = extra[r.name] ?? {};
  for (const d of daemons) {
    const ids = spawnSync(DOCKER, d.cli('ps', '-aq').slice(1), { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    const ms = await timed(d.cli('rm', '-f', ...ids));
    const r = psRes.find((x) => x.name === d.name);
    if (r) r.extra[`rm -f x${SLEEPERS}`] = formatMs(ms);
  }
  section(
    `\`docker ps\` with ${SLEEPERS} running containers`,
    'ps',
    [...psRes, ...unavailableRows((n) => n)],
    args.n,
    args.warmup,
  );

  if (interrupted) throw new Error('interrupted');
  // 3. docker pull of the multi-layer image from a docker-registry on 127.0.0.1 (one per network namespace).
  const pullN = Math.min(args.n, MAX_PULLS);
  const port = await freePort();
  const addr = `127.0.0.1:${port}`;
  const ref = `${addr}/${BIG_REPO}:latest`;
  await startRegistry(addr);
  const pushMs = await timed([
    'skopeo',
    'copy',
    '--quiet',
    '--dest-tls-verify=false',
    `docker-archive:${multi.file}`,
    `docker://${ref}`,
  ]);
  const pushed = registryBytes();
  log(
    `pushed ${ref} (${pushed.layers} layers, ${pushed.mb.toFixed(0)} MB compressed) with skopeo in ${formatMs(pushMs)}`,
  );
  if (skiffNs !== undefined) await startRegistry(addr, skiffNs);
  const pullable: Daemon[] = [];
  const pullFailed: Partial<Record<Name, string>> = {};
  const downloaded: string[] = [];
  for (const d of daemons) {
    // A first pull (is it supported at all?), then a second after rmi: how many layers a cold pull fetches.
    const first = spawnSync(DOCKER, d.cli('pull', ref).slice(1), { encoding: 'utf8', timeout: 300_000 });
    if (first.status !== 0) {
      pullFailed[d.name] = `\`docker pull\` fails: ${(first.stderr || first.stdout).trim().split('\n').pop()}`;
      continue;
    }
    await timed(d.cli('rmi', ref));
    const second = spawnSync(DOCKER, d.cli('pull', ref).slice(1), { encoding: 'utf8', timeout: 300_000 });
    const complete = (second.stdout.match(/Pull complete/g) ?? []).length;
    const exists = (second.stdout.match(/Already exists/g) ?? []).length;
    downloaded.push(`${d.name} ${complete} pulled, ${exists} already present`);
    pullable.push(d);
  }
  log(`docker pull ${ref} after rmi: ${pullable.map((d) => d.name).join(', ')} alternately, n=${pullN}`);
  const pullRes = await alternate(
    pullable,
    (d) => d.name,
    (d) => async () => {
      await timed(d.cli('rmi', ref));
      return timed(d.cli('pull', '-q', ref));
    },
    pullN,
    0,
  );
  section(
    `\`docker pull\` of a ${pushed.mb.toFixed(0)} MB ${pushed.layers}-layer image from docker-registry on 127.0.0.1 (after \`docker rmi\`)`,
    'pull',
    [...pullRes, ...Object.entries(pullFailed).map(([n, why]) => skipped(n, why)), ...unavailableRows((n) => n)],
    pullN,
    0,
  );
  notes.push(
    `pull: layers per cold pull (docker pull output): ${downloaded.join('; ')}; the busybox base layer is shared ` +
      'with busybox:latest, as `FROM busybox` would; the timed pull is `docker pull -q` right after `docker rmi`; ' +
      `${pushed.gzipped} of the ${pushed.layers} layer blobs in the registry are gzip (skopeo pushed the docker-archive's layers as they were)`,
  );

  if (interrupted) throw new Error('interrupted');
  // 4. Idle memory again after all of it (0 containers).
  for (const d of daemons) {
    for (const id of spawnSync(DOCKER, d.cli('images', '-q', ref).slice(1), { encoding: 'utf8' }).stdout.split('\n'))
      if (id) spawnSync(DOCKER, d.cli('rmi', '-f', id).slice(1), { stdio: 'ignore' });
  }
  await sleep(SETTLE_MS);
  const memory: MemoryRow[] = [];
  const fresh = daemons.flatMap((d) => d.freshMemory ?? []);
  const afterRows: MemoryRow[] = [];
  for (const d of daemons) afterRows.push(...(await stackMemory(d, 'idle: after the run, 0 containers')));
  memory.push(...fresh, ...shimRows.filter((r) => r.what.includes('daemons')), ...afterRows);
  memory.push(...shimRows.filter((r) => r.what.includes('shim')));

  notes.push(
    'skiffd has no networking yet: it gives each container a fresh empty network namespace, while dockerd on its ' +
      'default bridge adds a veth pair, an IP address and iptables work per container; `--network none` on both is ' +
      'the fair comparison',
    `timing: each docker CLI call is timed by a long-lived bash around its exec (${DOCKER}, the same binary for both); ` +
      "the CLI's own start is in both figures, Node's spawn cost in neither",
    'skiffd runs in its own mount + network namespace (its registry too, on the same address and storage); ' +
      'dockerd + containerd in the host network namespace; both in one private mount namespace; ' +
      `dockerd ${version('/usr/sbin/dockerd')}, containerd ${version('/usr/bin/containerd')}, runc; skiffd at ${gitHead()}`,
    `idle memory: median of 3 readings of VmRSS and Pss (smaps_rollup), ${SETTLE_MS} ms after the daemons settled; ` +
      "Pss of the node processes is lower than their RSS because node's pages are shared with the other node processes here",
    `the ${SLEEPERS} containers run \`sleep 3600\` with --network none on both daemons`,
  );

  const report = { sections, memory, notes };
  if (args.json) console.log(JSON.stringify(report, null, 2));
  else {
    const parts: string[] = [];
    for (const s of sections) parts.push(`== ${s.title}`, formatReport(s.report), '');
    parts.push(formatMemory(memory), '', ...notes.map((n) => `note: ${n}`));
    console.log(parts.join('\n'));
  }
  const bad = sections.flatMap((s) => s.report.candidates.filter((c) => !c.ok && !c.error?.startsWith('skipped:')));
  for (const c of bad) log(`${c.name}: ${c.error}`);
  return bad.length > 0 ? 1 : 0;
}

// ------------------------------------------------------------------------------------------------------------------
// Processes and small helpers

function registryBytes(): { layers: number; gzipped: number; mb: number } {
  const blobs = join(work, 'registry/data/docker/registry/v2/blobs/sha256');
  let bytes = 0;
  let count = 0;
  let gzipped = 0;
  for (const a of readdirSync(blobs))
    for (const b of readdirSync(join(blobs, a))) {
      const file = join(blobs, a, b, 'data');
      const size = statSync(file).size;
      if (size > 64 * 1024) {
        count++;
        const fd = openSync(file, 'r');
        const magic = Buffer.alloc(2);
        readSync(fd, magic, 0, 2, 0);
        closeSync(fd);
        if (magic[0] === 0x1f && magic[1] === 0x8b) gzipped++;
      }
      bytes += size;
    }
  return { layers: count, gzipped, mb: bytes / (1 << 20) };
}

function version(bin: string): string {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  return (
    (r.stdout ?? '')
      .trim()
      .split(/\s+/)
      .find((w) => /^v?\d+\.\d+/.test(w))
      ?.replace(/,$/, '') ?? '?'
  );
}

function gitHead(): string {
  const r = spawnSync('git', ['-C', repo, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  return r.stdout?.trim() || '?';
}

function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  } catch {
    return [];
  }
}

function findProcesses(match: (argv: string[]) => boolean): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    const argv = cmdline(Number(e));
    if (argv.length > 0 && match(argv)) out.push(Number(e));
  }
  return out;
}

/** Any process still naming the work dir in its argv (a shim left after a failure) is stopped. */
async function killLeftovers(): Promise<void> {
  // The TimedShell (closed by now, maybe still exiting) is not a leftover.
  const leftover = (argv: string[]) => argv[3] !== 'timed-shell' && argv.some((a) => a.includes(work));
  for (const pid of findProcesses(leftover)) {
    notes.push(`stopped leftover process ${pid}: ${cmdline(pid).join(' ').slice(0, 120)}`);
    await stopPid(pid, 'leftover');
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-5).join(' | ');
  } catch {
    return '(no log)';
  }
}

function mustRun(cmd: string, argv: string[]): void {
  const r = spawnSync(cmd, argv, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
}

function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = join(dir, cmd);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** Mounts under the work dir (dockerd's data-root bind, overlays), deepest first. */
function unmountWork(): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => !!m && (m === work || m.startsWith(`${work}/`)))
    .sort()
    .reverse();
  for (const m of mounts) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
}

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= cleanupOnce();
  return cleaning;
}

async function cleanupOnce(): Promise<void> {
  for (const f of cleanups.reverse()) {
    try {
      await f();
    } catch (e) {
      log(`cleanup: ${errorText(e)}`);
    }
  }
  cleanups.length = 0;
  shell.close();
  unmountWork();
  rmSync(work, { recursive: true, force: true });
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    interrupted = true;
    log(`${sig}: cleaning up`);
    shell.kill();
    void cleanup().finally(() => process.exit(130));
  });
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (e) {
  log(errorText(e));
} finally {
  await cleanup();
  for (const n of notes.filter(
    (x) =>
      x.startsWith('stopped leftover') ||
      x.startsWith('could not') ||
      x.startsWith('left ') ||
      x.startsWith('iptables') ||
      x.startsWith('host networking'),
  ))
    log(n);
}
process.exit(exitCode);
