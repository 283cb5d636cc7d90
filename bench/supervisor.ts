// bench/supervisor (issue 3): create + start + wait + delete of busybox `true` through skiff-supervisor's gRPC API
// (proto/supervisor.proto, from an in-process @grpc/grpc-js client) beside `ctr run --rm` on Debian's containerd,
// both started here with their own state under a temp dir, alternately in one run. Then the idle memory (VmRSS and
// Pss) of one shim holding a sleeping container: skiff-shim, containerd-shim-runc-v2 and conmon (run by hand on a
// runc bundle, as Podman does), and of the supervisor beside containerd. Needs root.
//
// Usage: npm run bench -- supervisor [--n 20] [--warmup 1] [--json]
//        [--only skiff-supervisor,skiff-shim,containerd,containerd-rootfs,containerd-skiff-runtime]
//
// Candidates:
//   skiff-supervisor   Containers.Create (containerd's own default spec for the image, a bind mount of the busybox
//                      rootfs), Tasks.Create, Start, Wait, Tasks.Delete, Containers.Delete
//   skiff-shim         skiff-shim and skiff-runtime driven directly over the shim's control socket, no supervisor
//                      (docs/shim-protocol.md), on the same rootfs dir: what the supervisor adds is the difference
//   containerd         `ctr run --rm IMAGE ID true`: the image imported from a docker-archive of the same rootfs,
//                      overlayfs snapshot per container
//   containerd-rootfs  `ctr run --rm --rootfs DIR ID true`: the same rootfs dir as Skiff's, no snapshot
//   containerd-skiff-runtime  the same with `--runc-binary dist/bin/skiff-runtime`: containerd and its shim driving
//                      Skiff's runtime, so that beside Skiff only the supervisor and shim layers differ
// The ctr figures are timed by a long-lived bash around each exec (no Node spawn cost in them) and include ctr's own
// start (a Go binary) and dial; the floor of that is printed as a note.
//
// Everything runs in a private mount namespace (the bench re-executes itself under `unshare -m`), so no mount made
// by containerd, its shims or the supervisor can outlive the run; the daemons are stopped by pid at the end and the
// cgroups made under /skiff-bench are removed.
import { alive, inPrivateMountNamespace, sleep, stopPid as stopPidAfter, waitGone } from './procs.js';
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
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import {
  type Candidate,
  errorText,
  formatKiB,
  formatMs,
  formatReport,
  formatTable,
  median,
  parseBenchArgs,
  readMemory,
  runAlternating,
  type Sample,
  TimedShell,
  toJson,
} from './harness.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const NS_ENV = 'SKIFF_BENCH_MOUNTNS';
const PROTO = join(repo, 'proto/supervisor.proto');
const SUPERVISOR_BIN = join(repo, 'dist/bin/skiff-supervisor');
const SHIM_BIN = join(repo, 'dist/bin/skiff-shim');
const RUNTIME_BIN = join(repo, 'dist/bin/skiff-runtime');
/** The containerd namespace, and the cgroup parent of every container this bench makes (removed at the end). */
const NS = 'skiff-bench';
const CGROUP_PARENT = '/skiff-bench';
const CANDIDATES = [
  'skiff-supervisor',
  'skiff-shim',
  'containerd',
  'containerd-rootfs',
  'containerd-skiff-runtime',
] as const;
const SETTLE_MS = 2000;
/** The image's environment; given to `ctr run --rootfs` too, which has no image to take it from. */
const IMAGE_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const args = (() => {
  try {
    return parseBenchArgs(process.argv.slice(2), { n: 20 });
  } catch (e) {
    console.error(`bench supervisor: ${errorText(e)}`);
    process.exit(2);
  }
})();
const log = (msg: string) => {
  if (!args.json || process.stderr.isTTY) console.error(msg);
};
/** SIGTERM, up to 10 s, then SIGKILL. */
const stopPid = (pid: number, what: string): Promise<void> =>
  stopPidAfter(pid, what, 10_000, (m) => log(`bench supervisor: ${m}`));

if (process.getuid?.() !== 0) {
  console.error('bench supervisor: needs root (containerd, namespaces, mounts, cgroups): run it as root');
  process.exit(1);
}
if (args.only) {
  const unknown = args.only.filter((n) => !(CANDIDATES as readonly string[]).includes(n));
  if (unknown.length > 0) {
    console.error(`bench supervisor: --only: unknown candidate ${unknown.join(', ')} (have ${CANDIDATES.join(', ')})`);
    process.exit(2);
  }
}
inPrivateMountNamespace(NS_ENV, 'supervisor');

const chosen = (name: (typeof CANDIDATES)[number]) => !args.only || args.only.includes(name);
const work = mkdtempSync('/tmp/skiff-bench-sup-');
const shell = new TimedShell(join(work, 'commands.stderr'));
const cleanups: (() => Promise<void> | void)[] = [];
const notes: string[] = [];
let interrupted = false;

// ------------------------------------------------------------------------------------------------------------------
// The busybox rootfs, and a docker-archive of it for containerd's image store

function makeRootfs(dir: string): string {
  const busybox = '/bin/busybox';
  if (!existsSync(busybox)) throw new Error(`${busybox} missing: apt-get install busybox-static`);
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'run', 'home']) {
    mkdirSync(join(dir, d), { recursive: true });
  }
  chmodSync(join(dir, 'tmp'), 0o1777);
  copyFileSync(busybox, join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  mustRun('chroot', [dir, '/bin/busybox', '--install', '-s']);
  if (!existsSync(join(dir, 'bin/true'))) throw new Error(`${busybox} is not busybox-static (no true applet)`);
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  return dir;
}

/** A `docker save`-format archive (manifest.json, config, one layer.tar) of the rootfs, tagged busybox:latest. */
function makeDockerArchive(rootfs: string, out: string): void {
  const w = join(work, 'archive');
  mkdirSync(w);
  const layerTmp = join(w, 'layer.tar');
  mustRun('tar', ['--sort=name', '--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-cf', layerTmp, '.']);
  const diffId = createHash('sha256').update(readFileSync(layerTmp)).digest('hex');
  mkdirSync(join(w, diffId));
  mustRun('mv', [layerTmp, join(w, diffId, 'layer.tar')]);
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    created: '2000-01-01T00:00:00Z',
    config: {
      Env: [IMAGE_PATH],
      Cmd: ['sh'],
      WorkingDir: '/',
    },
    rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
  });
  const configId = createHash('sha256').update(config).digest('hex');
  writeFileSync(join(w, `${configId}.json`), config);
  const manifest = [{ Config: `${configId}.json`, RepoTags: ['busybox:latest'], Layers: [`${diffId}/layer.tar`] }];
  writeFileSync(join(w, 'manifest.json'), JSON.stringify(manifest));
  mustRun('tar', ['--numeric-owner', '-C', w, '-cf', out, '.']);
}

// ------------------------------------------------------------------------------------------------------------------
// containerd, started by hand as ../shared/lab/docker-baseline.sh does

interface Containerd {
  pid: number;
  address: string;
  image: string;
  ctr: (...argv: string[]) => string[];
  freshMemory: { rssKiB: number; pssKiB?: number } | undefined;
}

async function startContainerd(rootfs: string): Promise<Containerd> {
  const bin = which('containerd');
  if (!bin) throw new Error('containerd not found (apt-get install containerd)');
  if (!which('ctr')) throw new Error('ctr not found (apt-get install containerd)');
  const dir = join(work, 'ctd');
  mkdirSync(dir);
  const address = join(dir, 'c.sock');
  // Inline tables only: no section may follow a key of the root table's.
  writeFileSync(
    join(dir, 'config.toml'),
    [
      'version = 2',
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${address}"`,
      '',
    ].join('\n'),
  );
  const out = openSync(join(dir, 'containerd.log'), 'a');
  const child = spawn(bin, ['--config', join(dir, 'config.toml')], { detached: true, stdio: ['ignore', out, out] });
  const pid = child.pid!;
  cleanups.push(() => stopContainerd(pid, address));
  const ctr = (...argv: string[]) => ['ctr', '-a', address, '-n', NS, '--connect-timeout', '5s', ...argv];
  const t0 = performance.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`containerd exited ${child.exitCode}: see ${dir}/containerd.log`);
    if (existsSync(address) && (await shell.run(ctr('version'))).code === 0) break;
    if (performance.now() - t0 > 20_000) throw new Error('containerd did not answer within 20 s');
    await sleep(20);
  }
  log(`bench supervisor: containerd pid ${pid} answering in ${formatMs(performance.now() - t0)}`);
  const archive = join(work, 'busybox-docker-archive.tar');
  makeDockerArchive(rootfs, archive);
  const importMs = await shell.check(ctr('images', 'import', archive));
  const r = spawnSync('ctr', ['-a', address, '-n', NS, 'images', 'ls', '-q'], { encoding: 'utf8' });
  const image = r.stdout.split('\n').find((l) => l.includes('busybox'));
  if (!image) throw new Error(`no busybox image after import: ${r.stdout}${r.stderr}`);
  log(`bench supervisor: imported ${image} in ${formatMs(importMs)}`);
  return { pid, address, image, ctr, freshMemory: undefined };
}

/** containerd's default spec for the image (as `ctr run` would make it), from a container created and removed. */
async function containerdSpec(c: Containerd): Promise<Record<string, unknown>> {
  await shell.check(c.ctr('containers', 'create', c.image, 'spec-probe', 'true'));
  const r = spawnSync('ctr', ['-a', c.address, '-n', NS, 'containers', 'info', 'spec-probe'], { encoding: 'utf8' });
  await shell.check(c.ctr('containers', 'rm', 'spec-probe'));
  if (r.status !== 0) throw new Error(`ctr containers info: ${r.stderr}`);
  return JSON.parse(r.stdout).Spec;
}

async function stopContainerd(pid: number, address: string): Promise<void> {
  // Tasks this bench left (after a failure) first, so that their shims leave with them. ctr waits for a daemon
  // that is gone forever unless told otherwise: hence the timeouts.
  const ctr = (...argv: string[]) =>
    spawnSync('ctr', ['-a', address, '-n', NS, '--connect-timeout', '2s', '--timeout', '10s', ...argv], {
      encoding: 'utf8',
      timeout: 15_000,
    });
  if (alive(pid)) {
    for (const id of ctr('tasks', 'ls', '-q').stdout?.split('\n').filter(Boolean) ?? []) ctr('tasks', 'rm', '-f', id);
    for (const id of ctr('containers', 'ls', '-q').stdout?.split('\n').filter(Boolean) ?? [])
      ctr('containers', 'rm', id);
  }
  await stopPid(pid, 'containerd');
  for (const p of findProcesses((argv) => argv[0]?.endsWith('containerd-shim-runc-v2') && argv.includes(address))) {
    log(`bench supervisor: killing leftover containerd-shim-runc-v2 ${p}`);
    await stopPid(p, 'containerd-shim-runc-v2');
  }
}

// ------------------------------------------------------------------------------------------------------------------
// skiff-supervisor over gRPC

type Unary = (req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

interface Supervisor {
  pid: number;
  containers: grpc.Client;
  tasks: grpc.Client;
  freshMemory: { rssKiB: number; pssKiB?: number } | undefined;
}

function call<T>(client: grpc.Client, method: string, req: object, timeoutMs = 30_000): Promise<T> {
  const fn = (client as unknown as Record<string, Unary>)[method];
  if (typeof fn !== 'function') throw new Error(`no method ${method} in proto/supervisor.proto`);
  return new Promise<T>((res, rej) =>
    fn.call(client, req, { deadline: Date.now() + timeoutMs }, (err, out) =>
      err ? rej(new Error(`${method}: ${grpc.status[err.code]}: ${err.details}`)) : res(out as T),
    ),
  );
}

/** Why Skiff's side cannot run yet, or undefined. */
function supervisorMissing(): string | undefined {
  const missing = [PROTO, SUPERVISOR_BIN].filter((p) => !existsSync(p)).map((p) => p.slice(repo.length + 1));
  if (missing.length === 0) return undefined;
  return `skiff-supervisor not built yet (${missing.join(' / ')} missing): run \`npm run build\`, or measure the peer alone with --only containerd`;
}

async function startSupervisor(): Promise<Supervisor> {
  const dir = join(work, 'sup');
  mkdirSync(dir);
  const socket = join(dir, 'supervisor.sock');
  const out = openSync(join(dir, 'supervisor.log'), 'a');
  const child: ChildProcess = spawn(
    SUPERVISOR_BIN,
    [
      ...['--address', socket, '--root', join(dir, 'root'), '--runtime-root', join(dir, 'runtime')],
      ...['--state', join(dir, 'shims'), '--runtime', RUNTIME_BIN, '--shim', SHIM_BIN],
    ],
    { detached: true, stdio: ['ignore', out, out] },
  );
  const pid = child.pid!;
  cleanups.push(() => stopPid(pid, 'skiff-supervisor'));
  const def = protoLoader.loadSync(PROTO, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const v1 = (grpc.loadPackageDefinition(def) as unknown as Record<string, Record<string, Record<string, unknown>>>)
    .skiff!.supervisor!.v1 as Record<string, new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client>;
  const t0 = performance.now();
  while (!existsSync(socket)) {
    if (child.exitCode !== null) {
      throw new Error(`skiff-supervisor exited ${child.exitCode}: ${tail(join(dir, 'supervisor.log'))}`);
    }
    if (performance.now() - t0 > 20_000) throw new Error(`skiff-supervisor made no socket ${socket} within 20 s`);
    await sleep(20);
  }
  const addr = `unix:${socket}`;
  const containers = new v1.Containers!(addr, grpc.credentials.createInsecure());
  const tasks = new v1.Tasks!(addr, grpc.credentials.createInsecure());
  cleanups.push(() => {
    containers.close();
    tasks.close();
  });
  await call(containers, 'List', {});
  log(`bench supervisor: skiff-supervisor pid ${pid} answering in ${formatMs(performance.now() - t0)}`);
  return { pid: nodePid(pid), containers, tasks, freshMemory: undefined };
}

/** The process that holds the supervisor's heap: the pid itself, or its one child if the pid is a wrapper. */
function nodePid(pid: number): number {
  const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  if (comm !== 'sh' && comm !== 'bash') return pid;
  const kids = findProcesses((_argv, ppid) => ppid === pid);
  return kids.length === 1 ? kids[0]! : pid;
}

/** The spec given to the supervisor: containerd's default spec for the image, in its own cgroup. */
function skiffSpec(base: Record<string, unknown>, id: string, argv: string[]): Buffer {
  const spec = structuredClone(base) as {
    root: { path: string };
    process: { args: string[] };
    linux: { cgroupsPath?: string };
  };
  spec.root = { path: 'rootfs' };
  spec.process.args = argv;
  spec.linux.cgroupsPath = `${CGROUP_PARENT}/${id}`;
  return Buffer.from(JSON.stringify(spec));
}

interface WaitResponse {
  exit_status: number;
  reason: string;
}

async function skiffCreateStart(sup: Supervisor, spec: Buffer, rootfs: string, id: string): Promise<number[]> {
  const t0 = performance.now();
  await call(sup.containers, 'Create', {
    container: { id, spec, rootfs: [{ type: 'bind', source: rootfs, options: ['rbind'] }] },
  });
  const t1 = performance.now();
  await call(sup.tasks, 'Create', { container_id: id });
  const t2 = performance.now();
  const started = await call<{ pid: number }>(sup.tasks, 'Start', { container_id: id });
  const t3 = performance.now();
  return [t1 - t0, t2 - t1, t3 - t2, started.pid];
}

async function skiffIteration(sup: Supervisor, spec: Record<string, unknown>, rootfs: string, id: string) {
  let container: number, task: number, start: number, t3: number, t4: number, t5: number;
  let w: WaitResponse;
  try {
    [container, task, start] = (await skiffCreateStart(sup, skiffSpec(spec, id, ['true']), rootfs, id)) as [
      number,
      number,
      number,
    ];
    t3 = performance.now();
    w = await call<WaitResponse>(sup.tasks, 'Wait', { container_id: id });
    t4 = performance.now();
    await call(sup.tasks, 'Delete', { container_id: id });
    await call(sup.containers, 'Delete', { id });
    t5 = performance.now();
  } catch (e) {
    // Leave nothing half-made behind: the candidate is dropped, the run goes on with the others.
    await call(sup.tasks, 'Kill', { container_id: id, signal: 9, all: true }).catch(() => undefined);
    await call(sup.tasks, 'Wait', { container_id: id }, 5000).catch(() => undefined);
    await call(sup.tasks, 'Delete', { container_id: id }).catch(() => undefined);
    await call(sup.containers, 'Delete', { id }).catch(() => undefined);
    throw e;
  }
  if (w.exit_status !== 0) throw new Error(`${id}: true exited ${w.exit_status}${w.reason ? ` (${w.reason})` : ''}`);
  const phases = { 'container create': container, 'task create': task, start, wait: t4 - t3, delete: t5 - t4 };
  return { total: Object.values(phases).reduce((a, b) => a + b, 0), phases } satisfies Sample;
}

// ------------------------------------------------------------------------------------------------------------------
// Idle memory of one shim with a sleeping container, and of the daemons

interface MemoryRow {
  what: string;
  process: string;
  pid?: number;
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

/** A sleeping container under containerd; resolves with the shim's pid and a function that removes it all. */
async function containerdSleeper(c: Containerd) {
  const id = 'idle-ctd';
  await shell.check(c.ctr('run', '-d', c.image, id, 'sleep', '3600'));
  const shims = findProcesses((argv) => argv[0]?.endsWith('containerd-shim-runc-v2') && argv.includes(c.address));
  if (shims.length !== 1) throw new Error(`expected one containerd-shim-runc-v2, found ${shims.length}`);
  const stop = async () => {
    await shell.run(c.ctr('tasks', 'kill', '-s', 'KILL', id));
    for (let i = 0; i < 100 && (await shell.run(c.ctr('tasks', 'rm', id))).code !== 0; i++) await sleep(50);
    await shell.check(c.ctr('containers', 'rm', id));
  };
  return { pid: shims[0]!, stop };
}

async function skiffSleeper(sup: Supervisor, spec: Record<string, unknown>, rootfs: string) {
  const id = 'idle-skiff';
  const [, , , initPid] = await skiffCreateStart(sup, skiffSpec(spec, id, ['sleep', '3600']), rootfs, id);
  const shim = ppid(initPid!);
  const stop = async () => {
    await call(sup.tasks, 'Kill', { container_id: id, signal: 9 });
    await call(sup.tasks, 'Wait', { container_id: id });
    await call(sup.tasks, 'Delete', { container_id: id });
    await call(sup.containers, 'Delete', { id });
  };
  return { pid: shim, stop };
}

/** conmon by hand on a runc bundle (`runc spec`, sleep 3600) over the same rootfs, started as Podman does. */
async function conmonSleeper(rootfs: string) {
  const conmon = which('conmon');
  const runc = which('runc');
  if (!conmon || !runc) throw new Error('conmon or runc not installed (apt-get install conmon runc)');
  const dir = join(work, 'conmon');
  const bundle = join(dir, 'bundle');
  for (const d of [bundle, join(dir, 'exits'), join(dir, 'sock'), join(dir, 'runc')]) mkdirSync(d, { recursive: true });
  mustRun(runc, ['spec', '--bundle', bundle]);
  const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  config.root = { path: rootfs, readonly: true };
  config.process.args = ['sleep', '3600'];
  config.process.terminal = false;
  config.linux.cgroupsPath = `${CGROUP_PARENT}/idle-conmon`;
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));
  const id = 'idle-conmon';
  const runcRoot = join(dir, 'runc');
  const runcArgs = (...a: string[]) => [runc, '--root', runcRoot, ...a];
  // conmon forks: the command returns once the container is created, its pid in --conmon-pidfile.
  await shell.check([
    conmon,
    ...['--cid', id, '--cuuid', id, '--name', id, '--runtime', runc, '--runtime-arg', `--root=${runcRoot}`],
    ...['--bundle', bundle, '--exit-dir', join(dir, 'exits'), '--log-path', join(dir, 'ctr.log')],
    ...['--container-pidfile', join(dir, 'init.pid'), '--conmon-pidfile', join(dir, 'conmon.pid')],
    ...['--socket-dir-path', join(dir, 'sock')],
  ]);
  // Podman learns that the container is created through a sync pipe; here: the init's pid file appears.
  const t0 = performance.now();
  while (!existsSync(join(dir, 'init.pid')) || !existsSync(join(dir, 'conmon.pid'))) {
    if (performance.now() - t0 > 10_000)
      throw new Error(`conmon made no container within 10 s: ${tail(join(dir, 'ctr.log'))}`);
    await sleep(10);
  }
  const pid = Number(readFileSync(join(dir, 'conmon.pid'), 'utf8').trim());
  const stop = async () => {
    const [bin, ...rest] = runcArgs('kill', id, 'KILL');
    spawnSync(bin!, rest, { stdio: 'ignore' });
    await waitGone(pid, 10_000);
    spawnSync(bin!, runcArgs('delete', '--force', id).slice(1), { stdio: 'ignore' });
  };
  cleanups.push(stop);
  await shell.check(runcArgs('start', id));
  return { pid, stop };
}

/** skiff-shim started by hand (docs/shim-protocol.md) on a bundle over the shared rootfs, as the supervisor would
 *  start it; resolves once the container is created, with the launch's time as bash measured it. */
async function launchShim(spec: Record<string, unknown>, rootfs: string, id: string, argv: string[]) {
  const dir = join(work, 'shim', id);
  const bundle = join(dir, 'bundle');
  mkdirSync(bundle, { recursive: true });
  const config = JSON.parse(skiffSpec(spec, id, argv).toString());
  config.root = { path: rootfs };
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));
  const shimDir = join(dir, 'state');
  const ms = await shell.check([
    SHIM_BIN,
    ...['--id', id, '--bundle', bundle, '--dir', shimDir, '--runtime', RUNTIME_BIN],
    ...['--runtime-root', join(work, 'shim', 'runtime'), '--log-path', join(dir, 'ctr.log')],
  ]);
  const pid = Number(readFileSync(join(shimDir, 'shim.pid'), 'utf8').trim());
  const control = (op: object) => shimRequest(join(shimDir, 'control.sock'), op);
  const stop = async () => {
    if (!alive(pid)) return;
    await control({ op: 'kill', signal: 9, all: true }).catch(() => undefined);
    await control({ op: 'wait' }).catch(() => undefined);
    await control({ op: 'delete' }).catch(() => undefined);
    await waitGone(pid, 5000).catch(() => stopPid(pid, 'skiff-shim'));
  };
  return { ms, pid, control, stop };
}

async function skiffShimSleeper(spec: Record<string, unknown>, rootfs: string) {
  const shim = await launchShim(spec, rootfs, 'idle-shim', ['sleep', '3600']);
  cleanups.push(shim.stop);
  await shim.control({ op: 'start' });
  return shim;
}

/** The shim and runtime alone: what skiff-supervisor adds is its median less this one's. */
async function shimIteration(spec: Record<string, unknown>, rootfs: string, id: string): Promise<Sample> {
  const shim = await launchShim(spec, rootfs, id, ['true']);
  let t1: number, t2: number, t3: number, exit: Record<string, unknown>;
  const t0 = performance.now();
  try {
    await shim.control({ op: 'start' });
    t1 = performance.now();
    exit = await shim.control({ op: 'wait' });
    t2 = performance.now();
    await shim.control({ op: 'delete' });
    t3 = performance.now();
  } catch (e) {
    await shim.stop();
    throw e;
  }
  if (exit.exitCode !== 0) throw new Error(`${id}: true exited ${String(exit.exitCode)}`);
  const phases = { 'task create': shim.ms, start: t1 - t0, wait: t2 - t1, delete: t3 - t2 };
  return { total: Object.values(phases).reduce((a, b) => a + b, 0), phases };
}

/** One request on the shim's control socket: a JSON line out, the JSON line with the same id back. */
async function shimRequest(path: string, op: object): Promise<Record<string, unknown>> {
  const { createConnection } = await import('node:net');
  return new Promise((res, rej) => {
    const sock = createConnection(path);
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', rej);
    sock.on('connect', () => sock.write(`${JSON.stringify({ id: 1, ...op })}\n`));
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      sock.destroy();
      const reply = JSON.parse(buf.slice(0, nl));
      if (reply.error) rej(new Error(`skiff-shim ${JSON.stringify(op)}: ${reply.error}`));
      else res(reply);
    });
  });
}

async function measureMemory(
  ctd: Containerd | undefined,
  sup: Supervisor | undefined,
  spec: Record<string, unknown> | undefined,
  rootfs: string,
): Promise<MemoryRow[]> {
  const rows: MemoryRow[] = [];
  const shimWhat = 'shim, 1 idle container (sleep)';
  const sleepers: { row: MemoryRow; pid: number; stop: () => Promise<void> }[] = [];
  const start = async (row: MemoryRow, make: () => Promise<{ pid: number; stop: () => Promise<void> }>) => {
    rows.push(row);
    try {
      const s = await make();
      sleepers.push({ row, ...s });
    } catch (e) {
      row.note = `not measured: ${errorText(e)}`;
    }
  };
  // Skiff's shim: the one the supervisor starts, else skiff-shim started by hand.
  if (sup && spec) {
    await start({ what: shimWhat, process: 'skiff-shim (by skiff-supervisor)' }, () => skiffSleeper(sup, spec, rootfs));
  } else if (existsSync(SHIM_BIN) && existsSync(RUNTIME_BIN) && spec) {
    await start({ what: shimWhat, process: 'skiff-shim (started by hand)' }, () => skiffShimSleeper(spec, rootfs));
  } else {
    rows.push({ what: shimWhat, process: 'skiff-shim', note: `not measured: ${SHIM_BIN} not built yet` });
  }
  if (ctd) await start({ what: shimWhat, process: 'containerd-shim-runc-v2' }, () => containerdSleeper(ctd));
  else rows.push({ what: shimWhat, process: 'containerd-shim-runc-v2', note: 'not measured: containerd not run' });
  await start({ what: shimWhat, process: 'conmon (runc, by hand)' }, () => conmonSleeper(rootfs));

  await sleep(SETTLE_MS);
  for (const s of sleepers) {
    try {
      Object.assign(s.row, { pid: s.pid }, await sampleMemory(s.pid));
    } catch (e) {
      s.row.note = `not measured: ${errorText(e)}`;
    }
  }
  const daemons: MemoryRow[] = [];
  const fresh = 'daemon, fresh (0 containers)';
  const after = `daemon, after the run (1 idle container)`;
  if (sup) {
    daemons.push({ what: fresh, process: 'skiff-supervisor', pid: sup.pid, ...sup.freshMemory });
    daemons.push({ what: after, process: 'skiff-supervisor', pid: sup.pid, ...(await sampleMemory(sup.pid)) });
  } else {
    daemons.push({
      what: fresh,
      process: 'skiff-supervisor',
      note: `not measured: ${supervisorMissing() ?? 'not started (left out by --only)'}`,
    });
  }
  if (ctd) {
    daemons.push({ what: fresh, process: 'containerd', pid: ctd.pid, ...ctd.freshMemory });
    daemons.push({ what: after, process: 'containerd', pid: ctd.pid, ...(await sampleMemory(ctd.pid)) });
  }
  daemons.sort((a, b) => (a.what === b.what ? 0 : a.what === fresh ? -1 : 1));
  rows.push(...daemons);
  for (const s of sleepers) {
    try {
      await s.stop();
    } catch (e) {
      notes.push(`stopping the idle container of ${s.row.process}: ${errorText(e)}`);
    }
  }
  return rows;
}

function formatMemory(rows: MemoryRow[]): string {
  const table: string[][] = [['idle memory', 'process', 'VmRSS', 'Pss', 'RSS vs skiff', '']];
  let prev = '';
  for (const r of rows) {
    const base = rows.find((b) => b.what === r.what && b.process.startsWith('skiff') && b.rssKiB !== undefined);
    const vs =
      r.rssKiB === undefined || !base ? '-' : r === base ? '(base)' : `${(r.rssKiB / base.rssKiB!).toFixed(2)}x`;
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

async function main(): Promise<number> {
  const rootfs = makeRootfs(join(work, 'rootfs'));
  const cgroupsBefore = new Set(cgroupParents());
  cleanups.push(() => removeCgroupParents(cgroupsBefore));
  cleanups.push(killLeftovers);

  let ctd: Containerd | undefined;
  let spec: Record<string, unknown> | undefined;
  let ctdError: string | undefined;
  // containerd also gives the spec that Skiff runs, so it is started whatever --only says.
  try {
    ctd = await startContainerd(rootfs);
    spec = await containerdSpec(ctd);
  } catch (e) {
    ctdError = `containerd: ${errorText(e)}`;
    log(`bench supervisor: ${ctdError}`);
  }

  let sup: Supervisor | undefined;
  let supError = chosen('skiff-supervisor') ? supervisorMissing() : undefined;
  if (chosen('skiff-supervisor') && !supError) {
    if (!spec) supError = `no spec to run: ${ctdError}`;
    else {
      try {
        sup = await startSupervisor();
      } catch (e) {
        supError = errorText(e);
      }
    }
  }
  if (supError) log(`bench supervisor: ${supError}`);

  // Both daemons idle for a moment, then their fresh memory.
  await sleep(SETTLE_MS / 2);
  if (ctd) ctd.freshMemory = await sampleMemory(ctd.pid);
  if (sup) sup.freshMemory = await sampleMemory(sup.pid);

  // After SIGINT no iteration starts: cleanup is tearing the daemons down.
  const guard =
    <T>(f: () => Promise<T>) =>
    () => {
      if (interrupted) throw new Error('interrupted');
      return f();
    };
  const unavailable = (u: string | undefined) => (u !== undefined ? { unavailable: u } : {});
  const candidates: Candidate[] = [];
  let i = 0;
  if (chosen('skiff-supervisor')) {
    candidates.push({
      name: 'skiff-supervisor',
      iterate: guard(() => skiffIteration(sup!, spec!, rootfs, `bench-skiff-${i++}`)),
      ...unavailable(supError),
    });
  }
  if (chosen('skiff-shim')) {
    const missing = [SHIM_BIN, RUNTIME_BIN].filter((p) => !existsSync(p));
    const why =
      missing.length > 0 ? `${missing.join(', ')} not built: run \`npm run build\`` : spec ? undefined : ctdError;
    candidates.push({
      name: 'skiff-shim',
      iterate: guard(() => shimIteration(spec!, rootfs, `bench-shim-${i++}`)),
      ...unavailable(why),
    });
  }
  const viaCtr = (argv: () => string[]) => guard(() => shell.check(argv()));
  if (chosen('containerd')) {
    candidates.push({
      name: 'containerd',
      iterate: viaCtr(() => ctd!.ctr('run', '--rm', ctd!.image, `bench-ctd-${i++}`, 'true')),
      ...unavailable(ctd ? undefined : ctdError),
    });
  }
  if (chosen('containerd-rootfs')) {
    candidates.push({
      name: 'containerd-rootfs',
      iterate: viaCtr(() =>
        ctd!.ctr('run', '--rm', '--env', IMAGE_PATH, '--rootfs', rootfs, `bench-ctdr-${i++}`, 'true'),
      ),
      ...unavailable(ctd ? undefined : ctdError),
    });
  }
  if (chosen('containerd-skiff-runtime')) {
    const noRuntime = existsSync(RUNTIME_BIN) ? undefined : `${RUNTIME_BIN} not built: run \`npm run build\``;
    candidates.push({
      name: 'containerd-skiff-runtime',
      iterate: viaCtr(() =>
        ctd!.ctr(
          ...['run', '--rm', '--runc-binary', RUNTIME_BIN, '--env', IMAGE_PATH],
          ...['--rootfs', rootfs, `bench-ctds-${i++}`, 'true'],
        ),
      ),
      ...unavailable(ctd ? noRuntime : ctdError),
    });
  }
  log(`bench supervisor: ${candidates.map((c) => c.name).join(', ')} alternately, n=${args.n}, warm-up ${args.warmup}`);
  const results = await runAlternating(candidates, {
    n: args.n,
    warmup: args.warmup,
    onRound: (round, rounds) => {
      if (!args.json && process.stderr.isTTY) process.stderr.write(`\r  round ${round + 1}/${rounds}`);
    },
  });
  if (!args.json && process.stderr.isTTY) process.stderr.write('\n');

  if (ctd) {
    const floors: number[] = [];
    for (let k = 0; k < 10; k++) floors.push(await shell.check(ctd.ctr('version')));
    const floor = median(floors);
    notes.push(
      `ctr's own floor: \`ctr version\` (Go start, dial, one RPC) takes ${formatMs(floor)} (median of 10); ` +
        'it is part of every containerd figure, while Skiff is called from an in-process client with a warm channel',
    );
    const skiff = results.find((r) => r.name === 'skiff-supervisor' && r.error === undefined && r.samples.length > 0);
    const adjusted = results
      .filter((r) => r.name.startsWith('containerd') && r.error === undefined && r.samples.length > 0)
      .map((r) => {
        const m = median(r.samples) - floor;
        const vs = skiff ? ` = ${(m / median(skiff.samples)).toFixed(2)}x skiff-supervisor's median` : '';
        return `${r.name} ${formatMs(m)}${vs}`;
      });
    if (adjusted.length > 0) notes.push(`medians less ctr's floor: ${adjusted.join('; ')}`);
    notes.push(
      'containerd: a new overlayfs snapshot (mount, unmount, remove) per container; containerd-rootfs, ' +
        'containerd-skiff-runtime and Skiff use the same prepared rootfs dir (Skiff: a bind mount made by the supervisor)',
    );
  }
  if (sup) {
    notes.push(
      'runtimes: containerd and containerd-rootfs run runc; skiff-supervisor and containerd-skiff-runtime run ' +
        'skiff-runtime (`npm run bench -- runtime` compares the runtimes alone)',
    );
  }
  notes.push(
    `spec: containerd's default spec for the image (from \`ctr containers create\` + \`info\`), cgroups under ${CGROUP_PARENT}; ` +
      'host cgroups: v1 hybrid',
  );

  const memory = await measureMemory(ctd, sup, spec, rootfs);
  notes.push(
    `idle memory: median of 3 readings of /proc/<pid>/status VmRSS and smaps_rollup Pss, ${SETTLE_MS} ms after the ` +
      'idle containers started; each shim holds one `sleep 3600` busybox container; conmon runs runc on a `runc spec` bundle',
  );

  if (sup) {
    notes.push(
      "skiff-supervisor's Pss is far below its RSS because node's pages are shared with the other node processes " +
        "here (this bench's own among them); in the VM it runs beside skiffd and the agent, so compare RSS",
    );
  }
  const report = toJson('supervisor', args, results, notes);
  if (args.json) console.log(JSON.stringify({ ...report, memory }, null, 2));
  else {
    const table = formatReport({ ...report, notes: [] });
    console.log([table, '', formatMemory(memory), '', ...notes.map((n) => `note: ${n}`)].join('\n'));
  }
  const failed = report.candidates.filter((c) => !c.ok);
  for (const c of failed) log(`bench supervisor: ${c.name}: ${c.error}`);
  return failed.length > 0 ? 1 : 0;
}

// ------------------------------------------------------------------------------------------------------------------
// Processes, cgroups and small helpers

function ppid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** Pids whose argv (and parent pid) match. */
function findProcesses(match: (argv: string[], ppid: number) => boolean | undefined): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').slice(0, -1);
      if (argv.length > 0 && match(argv, ppid(Number(e)))) out.push(Number(e));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** Runs last but one: any process still naming the work dir in its argv (a shim whose container was not deleted
 *  after a failure: skiff-shim, containerd-shim-runc-v2, conmon) is stopped; its container is killed next. */
async function killLeftovers(): Promise<void> {
  const self = process.pid;
  const found = findProcesses((argv, parent) => parent !== self && argv.some((a) => a.includes(work)));
  for (const pid of found) {
    if (pid === self) continue;
    notes.push(
      `stopped leftover process ${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').slice(0, 120)}`,
    );
    await stopPid(pid, 'leftover');
  }
}

/** Every cgroup v1 hierarchy's (and the unified tree's) copy of CGROUP_PARENT that exists now. */
function cgroupParents(): string[] {
  const out: string[] = [];
  for (const h of readdirSync('/sys/fs/cgroup')) {
    const p = join('/sys/fs/cgroup', h, CGROUP_PARENT);
    try {
      if (statSync(p).isDirectory()) out.push(p);
    } catch {
      /* not there, or h is not a hierarchy */
    }
  }
  if (existsSync(join('/sys/fs/cgroup', CGROUP_PARENT, 'cgroup.procs')))
    out.push(join('/sys/fs/cgroup', CGROUP_PARENT));
  return out;
}

/** Removes the cgroup parents this run made (empty children first); a cgroup can take a moment to empty. */
async function removeCgroupParents(before: Set<string>): Promise<void> {
  const ours = cgroupParents().filter((p) => !before.has(p));
  // A process still in one (a container whose shim was lost after a failure) is killed first.
  for (const p of ours) {
    for (const c of readdirSync(p, { withFileTypes: true })) {
      if (!c.isDirectory()) continue;
      let procs: number[] = [];
      try {
        procs = readFileSync(join(p, c.name, 'cgroup.procs'), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map(Number);
      } catch {
        /* gone meanwhile */
      }
      for (const pid of procs) {
        notes.push(`killed leftover process ${pid} in cgroup ${join(p, c.name)}`);
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
  }
  for (const p of ours) {
    for (let k = 0; ; k++) {
      try {
        for (const c of readdirSync(p, { withFileTypes: true })) if (c.isDirectory()) rmdirSync(join(p, c.name));
        rmdirSync(p);
        break;
      } catch (e) {
        if (k === 50) {
          notes.push(`could not remove cgroup ${p}: ${errorText(e)}`);
          break;
        }
        await sleep(100);
      }
    }
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
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** Mounts under the work dir (none should remain: the daemons unmount theirs), deepest first. */
function unmountWork(): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => !!m && (m === work || m.startsWith(`${work}/`)))
    .sort()
    .reverse();
  for (const m of mounts) {
    notes.push(`unmounted leftover ${m}`);
    spawnSync('umount', ['-l', m], { stdio: 'ignore' });
  }
}

let cleaning: Promise<void> | undefined;
/** Once, whether main ends or a signal comes first (or both). */
function cleanup(): Promise<void> {
  cleaning ??= cleanupOnce();
  return cleaning;
}

async function cleanupOnce(): Promise<void> {
  for (const f of cleanups.reverse()) {
    try {
      await f();
    } catch (e) {
      log(`bench supervisor: cleanup: ${errorText(e)}`);
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
    log(`bench supervisor: ${sig}: cleaning up`);
    shell.kill();
    void cleanup().finally(() => process.exit(130));
  });
}

// Last, once every function and constant above is initialised.
let exitCode = 1;
try {
  exitCode = await main();
} catch (e) {
  log(`bench supervisor: ${errorText(e)}`);
} finally {
  await cleanup();
}
process.exit(exitCode);
