// A test harness for skiffd: each test file gets its own skiffd in fresh mount and network namespaces (held by a
// sleeping `unshare`, loopback up), with a temp data root. skiffd starts its own skiff-supervisor there (as it
// does in production), so a restarted skiffd finds the same supervisor and containers. The real docker CLI is run
// with DOCKER_HOST=unix://<socket> and a temp DOCKER_CONFIG; dockerode is the second client.
//
//   const d = await startDaemon();
//   const r = await d.docker(['version']);      // { code, stdout, stderr }
//   await d.docker(['load', '-i', busyboxArchive()]);
//   await d.killDaemon(); await d.restartDaemon();
//   await d.stop();                             // containers killed, processes gone, temp root removed
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { busyboxRootfs, REPO } from '../native/helpers.js';

export const SKIFFD = join(REPO, 'dist/bin/skiffd');
export const DOCKER_CLI = '/usr/local/bin/docker';
const RUNTIME = join(REPO, 'dist/bin/skiff-runtime');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface DockerOpts {
  /** Written to the CLI's stdin (then closed); without it stdin is empty. */
  input?: string | Buffer;
  /** More environment, e.g. DOCKER_API_VERSION. */
  env?: Record<string, string>;
  /** Kill the CLI after this long (default 60 s); the result then has code -1. */
  timeoutMs?: number;
}

export interface StartOptions {
  /** More skiffd flags, e.g. ['--live-restore=false']. */
  args?: string[];
  /** skiffd's --log-level (default debug: the log is only read when something fails). */
  logLevel?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Run a program, collecting its output. */
export function run(cmd: string, args: string[], opts: DockerOpts = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.stdin.on('error', () => undefined);
    p.stdin.end(opts.input ?? '');
    const t = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    p.once('error', reject);
    p.once('close', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** GET a path on a unix socket: status, headers, body (for readiness and raw checks). */
export function httpGet(
  socket: string,
  path: string,
  method = 'GET',
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path, method }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${path}: timed out`)));
    req.end();
  });
}

export class DaemonHarness {
  readonly socket: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly supervisorSocket: string;
  readonly dockerConfig: string;
  readonly logFile: string;
  readonly pidFile: string;
  readonly dockerode: Docker;
  proc: ChildProcess | undefined;
  private holder: ChildProcess | undefined;

  constructor(
    readonly dir: string,
    private readonly opts: StartOptions = {},
  ) {
    this.socket = join(dir, 'docker.sock');
    this.dataRoot = join(dir, 'lib', 'daemon');
    this.execRoot = join(dir, 'run', 'daemon');
    this.supervisorSocket = join(dir, 'run', 'supervisor.sock');
    this.dockerConfig = join(dir, 'docker-config');
    this.logFile = join(dir, 'skiffd.log');
    this.pidFile = join(dir, 'run', 'skiffd.pid');
    this.dockerode = new Docker({ socketPath: this.socket });
  }

  /** The supervisor's state (skiffd starts it with these roots). */
  get supervisorRoot(): string {
    return join(this.dir, 'lib', 'supervisor');
  }
  get runtimeRoot(): string {
    return join(this.dir, 'run', 'runtime');
  }
  get shimDir(): string {
    return join(this.dir, 'run', 'shims');
  }

  /** The pid holding the namespaces (for nsenter). */
  get nsPid(): number {
    return this.holder!.pid!;
  }

  async startNamespaces(): Promise<void> {
    const script = 'ip link set lo up && exec sleep infinity';
    this.holder = spawn('unshare', ['-m', '-n', '--propagation', 'private', 'sh', '-c', script], {
      stdio: 'ignore',
    });
    for (let i = 0; i < 200; i++) {
      if (this.holder.exitCode !== null) throw new Error(`unshare exited ${this.holder.exitCode}`);
      const comm = readFileSync(`/proc/${this.holder.pid}/comm`, 'utf8').trim();
      if (comm === 'sleep') return;
      await sleep(20);
    }
    throw new Error('unshare did not make the namespaces');
  }

  /** Run a command inside the namespaces (synchronously). */
  nsenter(cmd: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync('nsenter', ['-t', String(this.nsPid), '-m', '-n', '--', ...cmd], { encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /**
   * Run a program inside the daemon's network (and mount) namespace, asynchronously: the "host" side of published
   * ports, bridges and nft rules as the test daemon sees them.
   */
  inNetns(cmd: string, args: string[], opts: DockerOpts = {}): Promise<RunResult> {
    return run('nsenter', ['-t', String(this.nsPid), '-m', '-n', '--', cmd, ...args], opts);
  }

  /** Start skiffd (in the namespaces) and wait until /_ping answers. */
  async startDaemon(): Promise<void> {
    mkdirSync(this.dockerConfig, { recursive: true });
    const out = openSync(this.logFile, 'a');
    const args = ['-H', `unix://${this.socket}`, '--data-root', this.dataRoot, '--exec-root', this.execRoot];
    args.push('--supervisor', this.supervisorSocket, '--pidfile', this.pidFile);
    args.push('--log-level', this.opts.logLevel ?? 'debug', ...(this.opts.args ?? []));
    const proc = spawn('nsenter', ['-t', String(this.nsPid), '-m', '-n', '--', SKIFFD, ...args], {
      stdio: ['ignore', out, out],
    });
    this.proc = proc;
    const end = Date.now() + 30_000;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null)
        throw new Error(`skiffd exited (${proc.exitCode ?? proc.signalCode}): ${this.log()}`);
      if (existsSync(this.socket)) {
        const ok = await httpGet(this.socket, '/_ping').then(
          (r) => r.status === 200,
          () => false,
        );
        if (ok) return;
      }
      if (Date.now() > end) throw new Error(`skiffd did not answer within 30 s: ${this.log()}`);
      await sleep(50);
    }
  }

  /** The last lines of skiffd's log (and the supervisor's). */
  log(lines = 40): string {
    const tail = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8').split('\n').slice(-lines).join('\n') : '');
    return `--- skiffd\n${tail(this.logFile)}\n--- supervisor\n${tail(join(this.execRoot, 'supervisor.log'))}`;
  }

  /** The real docker CLI against this daemon. */
  docker(args: string[], opts: DockerOpts = {}): Promise<RunResult> {
    const env = { DOCKER_HOST: `unix://${this.socket}`, DOCKER_CONFIG: this.dockerConfig, ...opts.env };
    return run(DOCKER_CLI, args, { ...opts, env });
  }

  /** Signal skiffd (default SIGKILL) and wait until it is gone; the supervisor and containers go on. */
  async killDaemon(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill(signal);
    await Promise.race([gone, sleep(10_000)]);
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await gone;
    }
  }

  async restartDaemon(): Promise<void> {
    await this.killDaemon('SIGTERM');
    await this.startDaemon();
  }

  /** The supervisor skiffd started: found by its --address, which is unique to this harness. */
  supervisorPids(): number[] {
    const pids: number[] = [];
    for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
      try {
        const args = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
        const i = args.indexOf('--address');
        if (i >= 0 && args[i + 1] === this.supervisorSocket && args.some((a) => a.endsWith('skiff-supervisor')))
          pids.push(Number(p));
      } catch {
        /* gone */
      }
    }
    return pids;
  }

  /** Processes in this harness's network namespace (skiffd, the supervisor, shims, containers sharing it). */
  private namespacePids(): number[] {
    if (!this.holder?.pid) return [];
    let netns: string;
    try {
      netns = readlinkSync(`/proc/${this.holder.pid}/ns/net`);
    } catch {
      return [];
    }
    const out: number[] = [];
    for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
      if (Number(p) === this.holder.pid) continue;
      try {
        if (readlinkSync(`/proc/${p}/ns/net`) === netns) out.push(Number(p));
      } catch {
        /* gone */
      }
    }
    return out;
  }

  /** Tear everything down: skiffd, the supervisor, shims and containers, mounts, the temp root. */
  async stop(): Promise<void> {
    await this.killDaemon('SIGKILL');
    for (const pid of this.supervisorPids()) killQuiet(pid);
    // Shims by the pid each wrote; then the runtime's containers (kills their processes, removes cgroups).
    if (existsSync(this.shimDir))
      for (const id of readdirSync(this.shimDir)) {
        const pidFile = join(this.shimDir, id, 'shim.pid');
        if (existsSync(pidFile)) killQuiet(Number.parseInt(readFileSync(pidFile, 'utf8').trim(), 10));
      }
    if (existsSync(this.runtimeRoot))
      for (const id of readdirSync(this.runtimeRoot).filter((x) => !x.startsWith('.')))
        spawnSync(RUNTIME, ['--root', this.runtimeRoot, 'delete', '--force', id]);
    for (const pid of this.namespacePids()) killQuiet(pid);
    this.holder?.kill('SIGKILL');
    // Mounts live in the namespace and go with it; anything that reached the host is unmounted here.
    await sleep(100);
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4] ?? '')
      .filter((m) => m.startsWith(this.dir + '/'))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) spawnSync('umount', ['-l', m]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function killQuiet(pid: number): void {
  if (!(pid > 0)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/** A fresh skiffd (and its supervisor) in its own namespaces and temp root. */
export async function startDaemon(opts: StartOptions = {}): Promise<DaemonHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'skiffd-'));
  const h = new DaemonHarness(dir, opts);
  try {
    await h.startNamespaces();
    await h.startDaemon();
  } catch (err) {
    await h.stop().catch(() => undefined);
    throw err;
  }
  return h;
}

/**
 * A docker-archive (`docker save` format) of busybox-static with the given tag, for `docker load -i`. Made once
 * per machine and tag under the test cache.
 */
export function busyboxArchive(tag = 'busybox:latest'): string {
  const cache = join(tmpdir(), 'skiff-test-cache');
  const out = join(cache, `busybox-archive-${tag.replace(/[^A-Za-z0-9_.-]/g, '_')}.tar`);
  if (existsSync(out)) return out;
  mkdirSync(cache, { recursive: true });
  const work = mkdtempSync(join(cache, 'archive-'));
  try {
    const layer = join(work, 'layer.tar');
    const tar = spawnSync('tar', [
      '--numeric-owner',
      '--owner=0',
      '--group=0',
      '--sort=name',
      '--mtime=@0',
      '--exclude=./.complete',
      '-C',
      busyboxRootfs(),
      '-cf',
      layer,
      '.',
    ]);
    if (tar.status !== 0) throw new Error(`tar: ${tar.stderr.toString()}`);
    const diffId = createHash('sha256').update(readFileSync(layer)).digest('hex');
    mkdirSync(join(work, 'image', diffId), { recursive: true });
    renameSync(layer, join(work, 'image', diffId, 'layer.tar'));
    const config = JSON.stringify({
      architecture: process.arch === 'arm64' ? 'arm64' : 'amd64',
      os: 'linux',
      created: '2024-01-01T00:00:00Z',
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
      rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
      history: [{ created: '2024-01-01T00:00:00Z', created_by: 'busybox-static (skiff tests)' }],
    });
    const configId = createHash('sha256').update(config).digest('hex');
    writeFileSync(join(work, 'image', `${configId}.json`), config);
    writeFileSync(
      join(work, 'image', 'manifest.json'),
      JSON.stringify([{ Config: `${configId}.json`, RepoTags: [tag], Layers: [`${diffId}/layer.tar`] }]),
    );
    const tmp = `${out}.${process.pid}`;
    const pack = spawnSync('tar', ['-C', join(work, 'image'), '-cf', tmp, '.']);
    if (pack.status !== 0) throw new Error(`tar: ${pack.stderr.toString()}`);
    renameSync(tmp, out);
    return out;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
