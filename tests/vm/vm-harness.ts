// Boots the VM image (dist/vm, build/vm-image) with QEMU for the vm tier, the way the host agent does
// (docs/vm-image.md "Booting it"): TCG, microvm + PVH, a qcow2 data disk, user networking with SSH forwarded from
// 127.0.0.1:<free port>, the config and keys by fw_cfg, the serial console in a file, QMP on a unix socket.
//
//   const vm = await VmHarness.create();        // image (built if needed), disk, keys
//   await vm.boot(); await vm.waitForSerial('skiff-init: ready');
//   await vm.ssh(['uname', '-r']);  const sock = await vm.forwardDockerSocket();
//   await vm.powerdown();            // QMP system_powerdown, then waits for QEMU to exit
//   await vm.destroy();              // kills what is left, removes the temp dir
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildVmImage, type BuildResult } from '../../build/vm-image/build.js';
import { run, type RunResult } from '../integration/daemon-harness.js';

export const QEMU = 'qemu-system-x86_64';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The image: $SKIFF_VM_IMAGE (a directory with kernel and initramfs, for trying a dev build) or dist/vm, built. */
export function vmImage(): { kernel: string; initramfs: string; kernelVersion: string } {
  const dir = process.env.SKIFF_VM_IMAGE;
  if (dir) {
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { kernelVersion: string };
    return { kernel: join(dir, 'kernel'), initramfs: join(dir, 'initramfs'), kernelVersion: m.kernelVersion };
  }
  const b: BuildResult = buildVmImage();
  return { kernel: b.kernel, initramfs: b.initramfs, kernelVersion: b.manifest.kernelVersion };
}

/** QEMU and qemu-img must be there: a clear message instead of ENOENT. */
export function requireQemu(): void {
  for (const [cmd, pkg] of [
    [QEMU, 'qemu-system-x86'],
    ['qemu-img', 'qemu-utils'],
    ['ssh', 'openssh-client'],
  ])
    if ((spawnSync(cmd, ['-V']).error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT')
      throw new Error(`${cmd} is not installed: the vm tests need it (apt-get install ${pkg})`);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** The host CPU's frequency in kHz for tsc_early_khz= (microvm sometimes hangs calibrating without it, under TCG). */
function tscKhz(): number | undefined {
  const mhz = /^cpu MHz\s*:\s*([\d.]+)/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1];
  return mhz ? Math.round(Number(mhz) * 1000) : undefined;
}

export class VmHarness {
  readonly serialLog: string;
  readonly qmpSocket: string;
  readonly knownHosts: string;
  qemu?: ChildProcess;
  exit?: Promise<number | null>;
  private forwards: ChildProcess[] = [];

  private constructor(
    readonly dir: string,
    readonly image: { kernel: string; initramfs: string; kernelVersion: string },
    readonly port: number,
  ) {
    this.serialLog = join(dir, 'serial.log');
    this.qmpSocket = join(dir, 'qmp.sock');
    this.knownHosts = join(dir, 'known_hosts');
  }

  /** Build (or reuse) the image; make the data disk, the VM's host key, the user's key pair and the config. */
  static async create(): Promise<VmHarness> {
    requireQemu();
    const image = vmImage();
    const dir = mkdtempSync(join(tmpdir(), 'skiff-vm-'));
    const vm = new VmHarness(dir, image, await freePort());
    const must = (r: RunResult, what: string) => {
      if (r.code !== 0) throw new Error(`${what}: ${r.stderr}`);
    };
    must(await run('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'data.qcow2'), '2G']), 'qemu-img');
    for (const k of ['host_key', 'user_key'])
      must(await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', k, '-f', join(dir, k)]), 'ssh-keygen');
    // Pin the host key we made: the only key ssh will accept for this VM.
    vm.pinHostKey(join(dir, 'host_key.pub'));
    const config = {
      hostname: 'skiff',
      dataDevice: '/dev/vda',
      agentArgs: ['--skiffd-arg=--host-gateway-ip=10.0.2.2'],
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    return vm;
  }

  /** Write known_hosts so that ssh accepts exactly the key in `pubFile` for [127.0.0.1]:port. */
  pinHostKey(pubFile: string): void {
    const [type, key] = readFileSync(pubFile, 'utf8').trim().split(/\s+/);
    writeFileSync(this.knownHosts, `[127.0.0.1]:${this.port} ${type} ${key}\n`);
  }

  qemuArgs(): string[] {
    const d = this.dir;
    const khz = tscKhz();
    const cmdline = [
      'console=ttyS0',
      'quiet',
      'cryptomgr.notests',
      'init_on_alloc=0',
      'tsc=reliable',
      'mitigations=off',
      ...(khz ? [`tsc_early_khz=${khz}`] : []),
    ];
    return [
      ...['-accel', 'tcg,tb-size=256', '-machine', 'microvm,acpi=on', '-cpu', 'max', '-m', '2048', '-smp', '2'],
      ...['-display', 'none', '-nodefaults', '-no-reboot', '-serial', `file:${this.serialLog}`],
      ...['-qmp', `unix:${this.qmpSocket},server=on,wait=off`],
      ...['-kernel', this.image.kernel, '-initrd', this.image.initramfs, '-append', cmdline.join(' ')],
      ...[
        '-drive',
        `id=data,file=${join(d, 'data.qcow2')},format=qcow2,if=none`,
        '-device',
        'virtio-blk-device,drive=data',
      ],
      ...[
        '-netdev',
        `user,id=n0,ipv6=off,hostfwd=tcp:127.0.0.1:${this.port}-:22`,
        '-device',
        'virtio-net-device,netdev=n0',
      ],
      ...['-device', 'virtio-rng-device'],
      ...['-fw_cfg', `name=opt/skiff/config,file=${join(d, 'config.json')}`],
      ...['-fw_cfg', `name=opt/skiff/ssh_host_ed25519_key,file=${join(d, 'host_key')}`],
      ...['-fw_cfg', `name=opt/skiff/authorized_keys,file=${join(d, 'user_key.pub')}`],
    ];
  }

  /** Start QEMU (the serial log starts empty). */
  async boot(): Promise<void> {
    if (this.qemu && this.qemu.exitCode === null) throw new Error('the VM is already running');
    rmSync(this.serialLog, { force: true });
    rmSync(this.qmpSocket, { force: true });
    const q = spawn(QEMU, this.qemuArgs(), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    q.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    this.qemu = q;
    this.exit = new Promise((resolve) => q.once('exit', (code) => resolve(code)));
    q.once('error', (err) => (stderr += String(err)));
    await sleep(300);
    if (q.exitCode !== null) throw new Error(`qemu exited at once (${q.exitCode}): ${stderr}`);
  }

  serial(): string {
    return existsSync(this.serialLog) ? readFileSync(this.serialLog, 'utf8') : '';
  }

  /** Wait until the serial log has `text`; fail early if QEMU exits or skiff-init reports a fatal error. */
  async waitForSerial(text: string, timeoutMs = 120_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const log = this.serial();
      if (log.includes(text)) return;
      if (/skiff-init: FATAL/.test(log)) throw new Error(`skiff-init failed:\n${log.slice(-3000)}`);
      if (this.qemu?.exitCode !== null) throw new Error(`qemu exited before "${text}":\n${log.slice(-3000)}`);
      if (Date.now() > end)
        throw new Error(`no "${text}" on the serial console in ${timeoutMs} ms:\n${log.slice(-3000)}`);
      await sleep(200);
    }
  }

  sshArgs(): string[] {
    return [
      ...['-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${this.knownHosts}`, '-o', 'BatchMode=yes'],
      ...['-o', 'ConnectTimeout=20', '-o', 'IdentitiesOnly=yes', '-i', join(this.dir, 'user_key')],
      ...['-o', 'LogLevel=ERROR', '-p', String(this.port), 'root@127.0.0.1'],
    ];
  }

  /** One ssh command in the VM. */
  ssh(command: string[], timeoutMs = 60_000): Promise<RunResult> {
    return run('ssh', [...this.sshArgs(), '--', ...command], { timeoutMs });
  }

  /**
   * Wait until sshd answers (it starts listening just after "skiff-init: ready"; until then slirp resets the
   * connection). Only connection failures are retried: a refused host key fails at once.
   */
  async waitForSsh(timeoutMs = 60_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.ssh(['true'], 30_000);
      if (r.code === 0) return;
      const transient = /reset by peer|Connection refused|timed out|Connection closed|kex_exchange_identification/i;
      if (!transient.test(r.stderr) || Date.now() > end)
        throw new Error(`ssh to the VM failed (${r.code}): ${r.stderr}`);
      await sleep(500);
    }
  }

  /** Forward a host unix socket to the guest's /run/skiff/docker.sock over ssh (what the host agent does). */
  async forwardDockerSocket(): Promise<string> {
    const sock = join(this.dir, `docker-${this.forwards.length}.sock`);
    rmSync(sock, { force: true });
    const p = spawn(
      'ssh',
      ['-N', '-o', 'ExitOnForwardFailure=yes', '-L', `${sock}:/run/skiff/docker.sock`, ...this.sshArgs()],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    p.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    this.forwards.push(p);
    for (let i = 0; i < 100 && !existsSync(sock); i++) {
      if (p.exitCode !== null) throw new Error(`ssh -L exited (${p.exitCode}): ${stderr}`);
      await sleep(100);
    }
    if (!existsSync(sock)) throw new Error(`ssh -L made no ${sock}: ${stderr}`);
    return sock;
  }

  /** A QMP command on a fresh connection (greeting, qmp_capabilities, the command); its `return`. */
  async qmp(execute: string, args?: object): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const s = connect(this.qmpSocket);
      let buf = '';
      let step = 0;
      const t = setTimeout(() => {
        s.destroy();
        reject(new Error(`QMP ${execute}: no answer`));
      }, 10_000);
      s.on('error', (err) => {
        clearTimeout(t);
        reject(err);
      });
      s.on('data', (c) => {
        buf += c.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const msg = JSON.parse(buf.slice(0, nl)) as { QMP?: unknown; return?: unknown; error?: { desc: string } };
          buf = buf.slice(nl + 1);
          if (msg.error) {
            clearTimeout(t);
            s.destroy();
            return reject(new Error(`QMP ${execute}: ${msg.error.desc}`));
          }
          if (step === 0 && msg.QMP) {
            step = 1;
            s.write(`${JSON.stringify({ execute: 'qmp_capabilities' })}\n`);
          } else if (step === 1 && 'return' in msg) {
            step = 2;
            s.write(`${JSON.stringify({ execute, ...(args ? { arguments: args } : {}) })}\n`);
          } else if (step === 2 && 'return' in msg) {
            clearTimeout(t);
            s.end();
            return resolve(msg.return);
          }
        }
      });
    });
  }

  /** ACPI power button (QMP system_powerdown); resolves with QEMU's exit code once it exited, or throws. */
  async powerdown(timeoutMs = 30_000): Promise<number | null> {
    this.stopForwards();
    await this.qmp('system_powerdown');
    const timer = sleep(timeoutMs).then(() => 'timeout' as const);
    const r = await Promise.race([this.exit, timer]);
    if (r === 'timeout')
      throw new Error(`QEMU still runs ${timeoutMs} ms after system_powerdown:\n${this.serial().slice(-2000)}`);
    return r ?? null;
  }

  stopForwards(): void {
    for (const p of this.forwards) if (p.exitCode === null) p.kill();
    this.forwards = [];
  }

  /** Kill QEMU and the forwards if still running; keep the directory when KEEP_VM_DIR is set. */
  async destroy(): Promise<void> {
    this.stopForwards();
    if (this.qemu && this.qemu.exitCode === null) {
      this.qemu.kill('SIGKILL');
      await this.exit;
    }
    if (!process.env.KEEP_VM_DIR) rmSync(this.dir, { recursive: true, force: true });
  }
}
