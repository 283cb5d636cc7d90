// One VM's lifecycle, tying the parts together: keys → data disk → QEMU (detached) → QMP → SSH (pinned) → forwards
// (docker.sock, agent.sock, published ports). States: STOPPED → STARTING (step, percent) → RUNNING → STOPPING →
// STOPPED, or ERROR with the reason (QEMU missing, the VM exited, SSH never answered, a wrong host key …).
// Stop: QMP system_powerdown (skiff-init stops containers, syncs, powers off), wait ≤ 30 s, then quit, then SIGKILL.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { closeSync, existsSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { keepDockerContext } from './docker-context.js';
import { PortForwarder, UnixForward, type PortForwardStatus } from './forwards.js';
import { ensureKeys, hostAlias, pinnedHostKey } from './keys.js';
import { ensurePrivateDir, type VmPaths } from './paths.js';
import { PortsWatcher } from './ports-watch.js';
import { chooseAccel, probeHost, qemuCommand, type AccelChoice, type GuestArch, type HostProbe } from './qemu.js';
import { QmpClient } from './qmp.js';
import { loadSettings, type VmSettings } from './settings.js';
import { SshSession } from './ssh.js';

const run = promisify(execFile);

export type VmState = 'STOPPED' | 'STARTING' | 'RUNNING' | 'STOPPING' | 'ERROR';

export interface VmStatusView {
  state: VmState;
  step: string;
  percent: number;
  reason: string;
  since: Date;
  dockerSocket: string;
  agentSocket: string;
  sshPort: number;
  qemuPid: number;
  accel: string;
  accelReason: string;
  ports: PortForwardStatus[];
  warnings: string[];
}

/** The VM image: a kernel and the initramfs (the read-only root), described by manifest.json. */
export interface VmImage {
  dir: string;
  kernel: string;
  initrd: string;
  arch: GuestArch;
  version: string;
}

/**
 * Find the image: $SKIFF_VM_IMAGE, dist/vm beside the bundle (dist/bin/../vm), or the repo's dist/vm. manifest.json
 * may name the files ({ "kernel": "kernel", "initramfs": "initramfs", "arch": "x86_64", "version": "…" }); without
 * those fields the files are dir/kernel and dir/initramfs.
 */
export function findImage(dir?: string): VmImage {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = dir ? [dir] : [process.env.SKIFF_VM_IMAGE, join(here, '../vm'), join(here, '../../dist/vm')];
  for (const c of candidates) {
    if (!c || !existsSync(join(c, 'manifest.json'))) continue;
    const m = JSON.parse(readFileSync(join(c, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    const file = (v: unknown, d: string): string => resolve(c, typeof v === 'string' ? v : d);
    const img: VmImage = {
      dir: c,
      kernel: file(m.kernel, 'kernel'),
      initrd: file(m.initramfs ?? m.initrd, 'initramfs'),
      arch: m.arch === 'aarch64' || m.arch === 'arm64' ? 'aarch64' : 'x86_64',
      version: typeof m.version === 'string' ? m.version : typeof m.hash === 'string' ? m.hash : '',
    };
    for (const f of [img.kernel, img.initrd])
      if (!existsSync(f))
        throw new Error(`the VM image in ${c} is incomplete: ${f} is missing (npm run build:vm-image)`);
    return img;
  }
  throw new Error(
    `no VM image found (looked for manifest.json in ${candidates.filter(Boolean).join(', ')}): ` +
      'build it with `npm run build:vm-image`, or set SKIFF_VM_IMAGE',
  );
}

/** A free TCP port on 127.0.0.1 (for QEMU's SSH forward). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

export function tail(file: string, lines: number): string {
  if (!existsSync(file)) return '';
  const text = readFileSync(file, 'utf8');
  return text
    .split('\n')
    .slice(-lines - 1)
    .join('\n');
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid of a QEMU of this VM still running from an earlier start (its pidfile and command line), or 0. */
export function runningQemuPid(p: VmPaths): number {
  if (!existsSync(p.qemuPid)) return 0;
  const pid = parseInt(readFileSync(p.qemuPid, 'utf8').trim(), 10);
  if (!pid || !pidAlive(pid)) return 0;
  if (process.platform === 'linux') {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes(p.qmpSocket)) return 0; // a reused pid
    } catch {
      return 0;
    }
  }
  return pid;
}

export interface VmOptions {
  paths: VmPaths;
  image?: VmImage;
  /** Accelerator detection input (tests force tcg). */
  probe?: HostProbe;
  /** How long SSH may take to answer after QEMU starts (default 120 s: TCG on a busy machine). */
  bootTimeoutMs?: number;
  /** How long a clean shutdown may take before QEMU is told to quit (default 30 s). */
  stopTimeoutMs?: number;
  /** Extra kernel command line. */
  extraCmdline?: string;
}

/**
 * Events: 'status' (VmStatusView) on every change.
 */
export class Vm extends EventEmitter {
  private view: VmStatusView;
  private qemu: ChildProcess | undefined;
  private qmp: QmpClient | undefined;
  private ssh: SshSession | undefined;
  private forwards: UnixForward[] = [];
  private ports: PortForwarder | undefined;
  private watcher: PortsWatcher | undefined;
  private accel: AccelChoice | undefined;
  private qemuWarnings: string[] = [];
  private busy: Promise<unknown> = Promise.resolve();
  lastCommand: string[] = [];

  constructor(private readonly o: VmOptions) {
    super();
    this.view = this.fresh('STOPPED');
  }

  get paths(): VmPaths {
    return this.o.paths;
  }

  private fresh(state: VmState): VmStatusView {
    return {
      state,
      step: '',
      percent: 0,
      reason: '',
      since: new Date(),
      dockerSocket: '',
      agentSocket: '',
      sshPort: 0,
      qemuPid: 0,
      accel: this.accel?.accel ?? '',
      accelReason: this.accel?.reason ?? '',
      ports: [],
      warnings: [],
    };
  }

  status(): VmStatusView {
    return {
      ...this.view,
      ports: this.ports?.list() ?? [],
      warnings: [...this.qemuWarnings, ...(this.ports?.warnings() ?? [])],
    };
  }

  private set(patch: Partial<VmStatusView>): void {
    const stateChanged = patch.state !== undefined && patch.state !== this.view.state;
    this.view = { ...this.view, ...patch, ...(stateChanged ? { since: new Date() } : {}) };
    this.emit('status', this.status());
  }

  private progress(step: string, percent: number): void {
    this.set({ state: 'STARTING', step, percent, reason: '' });
  }

  /** The SSH session while RUNNING (exec for `skiff shell`, tests). */
  session(): SshSession {
    if (this.view.state !== 'RUNNING' || !this.ssh) throw new Error(`the VM is not running (${this.view.state})`);
    return this.ssh;
  }

  /** Run one lifecycle operation at a time. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.busy.then(fn, fn);
    this.busy = next.catch(() => undefined);
    return next;
  }

  start(settings?: VmSettings): Promise<VmStatusView> {
    return this.serial(async () => {
      const s = this.view.state;
      if (s === 'RUNNING') throw precondition('the VM is already running');
      if (s === 'STARTING' || s === 'STOPPING') throw precondition(`the VM is ${s.toLowerCase()}: wait for it`);
      try {
        await this.boot(settings ?? loadSettings(this.o.paths.settings));
      } catch (err) {
        const reason = (err as Error).message;
        await this.teardown(true);
        this.set({ state: 'ERROR', reason, step: '', percent: 0 });
        throw err;
      }
      return this.status();
    });
  }

  private async boot(settings: VmSettings): Promise<void> {
    const p = this.o.paths;
    this.qemuWarnings = [];
    this.progress('keys', 5);
    ensurePrivateDir(p.dir);
    const other = runningQemuPid(p);
    if (other)
      throw precondition(
        `a QEMU of this VM is already running (pid ${other}): stop it first (\`skiff stop\`), or end that process`,
      );
    const image = this.o.image ?? findImage();
    const keys = await ensureKeys(p);

    this.progress('disk', 10);
    await ensureDisk(p.dataDisk, settings.diskGiB);

    const shares = settings.shares.map((path, i) => ({ tag: `skiff${i}`, path }));
    // What skiff-init reads from fw_cfg (docs/init.md): the data disk is the first virtio-blk device; inside the VM
    // the host is QEMU's user-network gateway, which is what host.docker.internal must reach.
    const guestConfig = {
      hostname: hostAlias(p.name).replace(/_/g, '-'),
      dataDevice: '/dev/vda',
      shares,
      agentArgs: ['--skiffd-arg=--host-gateway-ip=10.0.2.2'],
    };
    writeFileSync(p.guestConfig, `${JSON.stringify(guestConfig)}\n`, { mode: 0o600 });

    this.progress('qemu', 15);
    const probe = this.o.probe ?? probeHost();
    this.accel = chooseAccel(probe);
    const sshPort = await freeLoopbackPort();
    const cmd = qemuCommand({
      platform: probe.platform,
      arch: image.arch,
      accel: this.accel.accel,
      cpus: settings.cpus,
      memoryMiB: settings.memoryMiB,
      kernel: image.kernel,
      initrd: image.initrd,
      dataDisk: p.dataDisk,
      serialLog: p.serialLog,
      qmpSocket: p.qmpSocket,
      pidFile: p.qemuPid,
      sshPort,
      shares,
      fwCfg: [
        { name: 'opt/skiff/config', file: p.guestConfig },
        { name: 'opt/skiff/ssh_host_ed25519_key', file: p.hostKey },
        { name: 'opt/skiff/authorized_keys', file: p.userPub },
      ],
      tscKHz: probe.tscKHz,
      extraCmdline: this.o.extraCmdline,
      name: `skiff-${p.name}`,
    });
    this.qemuWarnings = cmd.warnings;
    this.lastCommand = [cmd.binary, ...cmd.args];
    this.set({ accel: this.accel.accel, accelReason: this.accel.reason, sshPort });
    if (existsSync(p.serialLog)) renameSync(p.serialLog, `${p.serialLog}.1`);
    rmSync(p.qmpSocket, { force: true });
    rmSync(p.qemuPid, { force: true });

    const logFd = openSync(p.qemuLog, 'w', 0o600);
    const child = spawn(cmd.binary, cmd.args, { detached: true, stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    this.qemu = child;
    const exited = new Promise<Error>((res) => {
      child.once('error', (err: NodeJS.ErrnoException) =>
        res(
          err.code === 'ENOENT'
            ? new Error(
                `QEMU is not installed (${cmd.binary} not found): install it (Debian/Ubuntu: apt-get install ` +
                  'qemu-system-x86 qemu-utils; macOS: brew install qemu; Windows: the QEMU installer)',
              )
            : err,
        ),
      );
      child.once('exit', (code, signal) =>
        res(
          new Error(
            `QEMU exited during boot (${signal ?? `code ${code}`}): ${tail(p.qemuLog, 5).trim() || 'no message'}` +
              `\n--- serial log (${p.serialLog}) ---\n${tail(p.serialLog, 15)}`,
          ),
        ),
      );
    });
    child.unref();
    this.set({ qemuPid: child.pid ?? 0 });
    const failFast = <T>(pr: Promise<T>): Promise<T> =>
      Promise.race([
        // QEMU dying mid-connect can break the connection (ECONNRESET) before its exit is seen: the exit says why.
        pr.catch(async (err: unknown) => {
          throw await Promise.race([exited, new Promise((r) => setTimeout(() => r(err), 1000))]);
        }),
        exited.then((e) => {
          throw e;
        }),
      ]);

    this.qmp = await failFast(QmpClient.connect(p.qmpSocket, 10_000));
    this.qmp.on('close', () => this.onQemuGone());

    this.progress('ssh', 30);
    const pin = pinnedHostKey(p.knownHosts, hostAlias(p.name));
    this.ssh = new SshSession({
      host: '127.0.0.1',
      port: sshPort,
      username: 'root',
      privateKey: keys.userPrivateKey,
      hostKey: pin.blob,
      pinFile: p.knownHosts,
      minDelayMs: 100,
      maxDelayMs: 1000,
    }).start();
    this.ssh.on('fatal', (err: Error) => {
      if (this.view.state === 'RUNNING') this.set({ state: 'ERROR', reason: err.message });
    });
    const boot = this.o.bootTimeoutMs ?? 120_000;
    await failFast(this.ssh.waitReady(boot)).catch((err: Error) => {
      throw new Error(`${err.message}\n--- serial log (${p.serialLog}) ---\n${tail(p.serialLog, 20)}`);
    });

    this.progress('forwards', 90);
    this.forwards = [
      new UnixForward(this.ssh, p.dockerSocket, '/run/skiff/docker.sock'),
      new UnixForward(this.ssh, p.agentSocket, '/run/skiff/agent.sock'),
    ];
    for (const f of this.forwards) await f.start();
    // RUNNING means docker works: the engine in the VM (Node under TCG) answers some seconds after SSH does.
    this.progress('engine', 95);
    await failFast(waitForDocker(p.dockerSocket, boot)).catch((err: Error) => {
      throw new Error(`${err.message}\n--- serial log (${p.serialLog}) ---\n${tail(p.serialLog, 20)}`);
    });
    this.ports = new PortForwarder(this.ssh);
    this.ports.on('change', () => this.emit('status', this.status()));
    this.watcher = new PortsWatcher(p.agentSocket, this.ports).start();
    writeFileSync(p.state, `${JSON.stringify({ qemuPid: child.pid, sshPort, startedAt: new Date() })}\n`, {
      mode: 0o600,
    });
    keepDockerContext(p.name, p.dockerSocket, this.qemuWarnings);
    this.set({
      state: 'RUNNING',
      step: '',
      percent: 100,
      dockerSocket: p.dockerSocket,
      agentSocket: p.agentSocket,
    });
  }

  private onQemuGone(): void {
    if (this.view.state !== 'RUNNING') return;
    const p = this.o.paths;
    void this.teardown(false).then(() =>
      this.set({
        state: 'ERROR',
        reason: `the VM stopped unexpectedly (QEMU exited)\n--- serial log (${p.serialLog}) ---\n${tail(p.serialLog, 20)}`,
      }),
    );
  }

  /** Stop the forwards and the session; with killQemu, also make sure QEMU is gone. */
  private async teardown(killQemu: boolean): Promise<void> {
    this.watcher?.stop();
    this.watcher = undefined;
    await this.ports?.stop();
    this.ports = undefined;
    for (const f of this.forwards) await f.stop().catch(() => undefined);
    this.forwards = [];
    this.ssh?.close();
    this.ssh = undefined;
    if (killQemu) await this.endQemu(0);
    this.qmp?.close();
    this.qmp = undefined;
    this.qemu = undefined;
  }

  /** Power down (ACPI) and wait; then QMP quit; then SIGKILL. graceMs 0: quit at once. */
  private async endQemu(graceMs: number): Promise<void> {
    const child = this.qemu;
    const pid = child?.pid ?? runningQemuPid(this.o.paths);
    if (!pid) return;
    const gone = (): boolean => (child ? child.exitCode !== null || child.signalCode !== null : !pidAlive(pid));
    const waitGone = async (ms: number): Promise<boolean> => {
      const deadline = Date.now() + ms;
      while (!gone() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      return gone();
    };
    if (graceMs > 0 && this.qmp && !this.qmp.closed) {
      try {
        await this.qmp.systemPowerdown();
        if (await waitGone(graceMs)) return;
      } catch {
        // QMP gone: fall through
      }
    }
    if (this.qmp && !this.qmp.closed) await this.qmp.quit().catch(() => undefined);
    if (await waitGone(5000)) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await waitGone(5000);
  }

  stop(): Promise<VmStatusView> {
    return this.serial(async () => {
      if (this.view.state === 'STOPPED') return this.status();
      this.set({ state: 'STOPPING', step: '', percent: 0 });
      this.watcher?.stop();
      this.watcher = undefined;
      await this.ports?.stop();
      this.ports = undefined;
      for (const f of this.forwards) await f.stop().catch(() => undefined);
      this.forwards = [];
      this.ssh?.close();
      this.ssh = undefined;
      await this.endQemu(this.o.stopTimeoutMs ?? 30_000);
      this.qmp?.close();
      this.qmp = undefined;
      this.qemu = undefined;
      rmSync(this.o.paths.state, { force: true });
      this.view = this.fresh('STOPPED');
      this.emit('status', this.status());
      return this.status();
    });
  }

  async restart(settings?: VmSettings): Promise<VmStatusView> {
    await this.stop();
    return this.start(settings);
  }

  /** Factory reset: stop, then delete the data disk, the keys and the logs (settings are kept). */
  async reset(): Promise<VmStatusView> {
    await this.stop();
    return this.serial(async () => {
      const p = this.o.paths;
      for (const f of [
        p.dataDisk,
        p.userKey,
        p.userPub,
        p.hostKey,
        p.hostPub,
        p.knownHosts,
        p.guestConfig,
        p.serialLog,
        `${p.serialLog}.1`,
        p.qemuLog,
      ])
        rmSync(f, { force: true });
      return this.status();
    });
  }
}

export class PreconditionError extends Error {
  readonly code = 'FAILED_PRECONDITION';
}

function precondition(msg: string): PreconditionError {
  return new PreconditionError(msg);
}

/** Make the qcow2 data disk on first start (qemu-img); grow it when the setting grew. */
export async function ensureDisk(file: string, sizeGiB: number): Promise<void> {
  const img = process.platform === 'win32' ? 'qemu-img.exe' : 'qemu-img';
  const missing = (err: unknown): Error =>
    (err as NodeJS.ErrnoException).code === 'ENOENT'
      ? new Error('qemu-img is not installed: install QEMU (Debian/Ubuntu: apt-get install qemu-utils)')
      : new Error(`${img}: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`);
  if (!existsSync(file)) {
    const tmp = join(dirname(file), `.${Date.now()}.qcow2`);
    try {
      await run(img, ['create', '-q', '-f', 'qcow2', tmp, `${sizeGiB}G`]);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw missing(err);
    }
    renameSync(tmp, file);
    return;
  }
  let virtual = 0;
  try {
    const { stdout } = await run(img, ['info', '--output=json', '-U', file]);
    virtual = Number((JSON.parse(stdout) as { 'virtual-size': number })['virtual-size']);
  } catch (err) {
    throw missing(err);
  }
  const want = sizeGiB * 1024 ** 3;
  if (virtual < want)
    await run(img, ['resize', '-q', file, `${sizeGiB}G`]).catch((err: unknown) => {
      throw missing(err);
    });
}

/** Until GET /_ping through the forwarded docker socket answers OK (the engine in the VM is up), or the timeout. */
async function waitForDocker(socketPath: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = httpRequest({ socketPath, path: '/_ping', timeout: 5000 }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
        if (res.statusCode !== 200) last = `HTTP ${res.statusCode}`;
      });
      req.on('timeout', () => req.destroy(new Error('no answer in 5 s')));
      req.on('error', (err) => {
        last = err.message;
        resolve(false);
      });
      req.end();
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the engine in the VM did not answer on the docker socket within ${timeoutMs / 1000} s (${last})`);
}
