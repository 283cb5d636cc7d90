// The QEMU command line for the Skiff VM, as a pure function of the host (platform, arch), the accelerator chosen,
// the settings and the paths; plus the accelerator detection (the one impure part: it reads /dev/kvm and /sys).
//
// Design (docs/hostagent.md): the guest kernel is booted directly (-kernel/-initrd: the initramfs IS the read-only
// root), a qcow2 data disk on virtio-blk, user networking with SSH forwarded from 127.0.0.1 only, virtio-rng, the
// keys and the config handed over by fw_cfg, host folders over virtio-9p, serial to a log file, QMP on a unix socket.
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';

export type HostPlatform = 'linux' | 'darwin' | 'win32';
export type GuestArch = 'x86_64' | 'aarch64';
export type Accel = 'kvm' | 'hvf' | 'whpx' | 'tcg';
export type MachineKind = 'microvm' | 'q35' | 'virt';

/** What the accelerator choice depends on: gathered by probeHost(), or written by hand in tests. */
export interface HostProbe {
  platform: HostPlatform;
  arch: GuestArch;
  /** SKIFF_ACCEL or the settings' accel: "tcg", "kvm", "hvf", "whpx"; "" or "auto" to detect. */
  forced: string;
  /** Linux: /dev/kvm exists and this user can open it read-write. */
  kvmUsable: boolean;
  /** Linux: the names under /sys/module that matter (kvm, kvm_intel, kvm_amd, kvm_pvm). */
  kvmModules: string[];
  /** Linux: the host's TSC frequency in kHz (for tsc_early_khz), 0 when unknown. */
  tscKHz: number;
}

export interface AccelChoice {
  accel: Accel;
  /** Why, in words, for `skiff status` and the diagnostics. */
  reason: string;
}

const ACCELS: readonly Accel[] = ['kvm', 'hvf', 'whpx', 'tcg'];

/**
 * The accelerator to use. hvf on macOS, whpx on Windows, kvm on Linux when /dev/kvm is usable and backed by a
 * hardware-virtualisation module (kvm_intel, kvm_amd, or the kernel's own on arm64) and NOT by PVM (kvm_pvm: a
 * paravirtualised KVM that only runs PVM-enabled guests and refuses a stock kernel); tcg otherwise. `forced`
 * (SKIFF_ACCEL or the settings) wins, but an accelerator that cannot exist on this platform is refused.
 */
export function chooseAccel(p: HostProbe): AccelChoice {
  const forced = p.forced.trim().toLowerCase();
  if (forced && forced !== 'auto') {
    if (!(ACCELS as readonly string[]).includes(forced))
      throw new Error(`unknown accelerator "${p.forced}" (SKIFF_ACCEL or settings): use auto, tcg, kvm, hvf or whpx`);
    const a = forced as Accel;
    const native: Record<HostPlatform, Accel> = { linux: 'kvm', darwin: 'hvf', win32: 'whpx' };
    if (a !== 'tcg' && native[p.platform] !== a)
      throw new Error(`accelerator ${a} does not exist on ${p.platform}: use ${native[p.platform]} or tcg`);
    return { accel: a, reason: `forced by SKIFF_ACCEL or the settings (${a})` };
  }
  if (p.platform === 'darwin') return { accel: 'hvf', reason: 'macOS: Hypervisor.framework' };
  if (p.platform === 'win32') return { accel: 'whpx', reason: 'Windows: Windows Hypervisor Platform' };
  if (p.kvmModules.includes('kvm_pvm'))
    return { accel: 'tcg', reason: '/dev/kvm is PVM (kvm_pvm is loaded): it refuses a stock guest kernel' };
  if (!p.kvmUsable) return { accel: 'tcg', reason: '/dev/kvm is missing or not writable by this user' };
  const hw =
    p.arch === 'aarch64' ? p.kvmModules.includes('kvm') : p.kvmModules.some((m) => /^kvm_(intel|amd)$/.test(m));
  if (!hw) return { accel: 'tcg', reason: 'no kvm_intel or kvm_amd module is loaded' };
  return { accel: 'kvm', reason: '/dev/kvm with hardware virtualisation' };
}

/** Gather a HostProbe from this machine (Linux: /dev/kvm, /sys/module, /proc/cpuinfo). */
export function probeHost(forced = process.env.SKIFF_ACCEL ?? ''): HostProbe {
  const platform = hostPlatform(process.platform);
  const arch = guestArch(process.arch);
  let kvmUsable = false;
  const kvmModules: string[] = [];
  let tscKHz = 0;
  if (platform === 'linux') {
    try {
      accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
      kvmUsable = true;
    } catch {
      kvmUsable = false;
    }
    try {
      for (const m of readdirSync('/sys/module')) if (m === 'kvm' || m.startsWith('kvm_')) kvmModules.push(m);
    } catch {
      // no /sys: leave the list empty (tcg)
    }
    tscKHz = tscKHzFromCpuinfo(existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '');
  }
  return { platform, arch, forced, kvmUsable, kvmModules: kvmModules.sort(), tscKHz };
}

export function hostPlatform(p: NodeJS.Platform): HostPlatform {
  if (p === 'linux' || p === 'darwin' || p === 'win32') return p;
  throw new Error(`Skiff's VM does not support ${p} hosts yet (linux, darwin and win32 only)`);
}

export function guestArch(a: string): GuestArch {
  if (a === 'x64' || a === 'x86_64') return 'x86_64';
  if (a === 'arm64' || a === 'aarch64') return 'aarch64';
  throw new Error(`Skiff's VM does not support ${a} hosts yet (x64 and arm64 only)`);
}

/** The first "cpu MHz" of /proc/cpuinfo in kHz (x86), 0 when there is none. */
export function tscKHzFromCpuinfo(cpuinfo: string): number {
  const m = /^cpu MHz\s*:\s*([0-9.]+)/m.exec(cpuinfo);
  return m?.[1] ? Math.round(parseFloat(m[1]) * 1000) : 0;
}

export interface Share {
  /** The 9p mount tag (≤ 31 bytes), e.g. "skiff0". */
  tag: string;
  /** The host folder; the guest mounts it at the same path. */
  path: string;
}

export interface FwCfgFile {
  /** "opt/skiff/…" */
  name: string;
  file: string;
}

export interface QemuSpec {
  platform: HostPlatform;
  arch: GuestArch;
  accel: Accel;
  /** Default: microvm for x86_64 under tcg/kvm, q35 for x86_64 under hvf/whpx, virt for aarch64. */
  machine?: MachineKind;
  cpus: number;
  memoryMiB: number;
  /** x86_64: the uncompressed PVH ELF (vmlinux); aarch64: the Image. */
  kernel: string;
  initrd: string;
  /** The qcow2 data disk (virtio-blk). */
  dataDisk: string;
  serialLog: string;
  qmpSocket: string;
  pidFile: string;
  /** The host's 127.0.0.1 port forwarded to the guest's port 22. */
  sshPort: number;
  shares: Share[];
  fwCfg: FwCfgFile[];
  /** x86: the host TSC in kHz for tsc_early_khz (microvm sometimes hangs calibrating without it), 0 to omit. */
  tscKHz: number;
  /** Extra kernel command line words (after ours). */
  extraCmdline?: string;
  /** The VM's name (-name). */
  name: string;
}

export interface QemuCommand {
  binary: string;
  args: string[];
  /** The kernel command line (also inside args, after -append). */
  cmdline: string;
  machine: MachineKind;
  /** Things that do not work on this host and were left out (shown in status and diagnostics). */
  warnings: string[];
}

/** QEMU's option syntax: a comma inside a value is written twice. */
export function qemuEscape(value: string): string {
  return value.replace(/,/g, ',,');
}

export function qemuBinary(platform: HostPlatform, arch: GuestArch): string {
  return `qemu-system-${arch}${platform === 'win32' ? '.exe' : ''}`;
}

export function defaultMachine(arch: GuestArch, accel: Accel): MachineKind {
  if (arch === 'aarch64') return 'virt';
  return accel === 'tcg' || accel === 'kvm' ? 'microvm' : 'q35';
}

/** The kernel command line: the boot-time tuning measured in ../shared/lab (bootfloor). */
export function kernelCmdline(spec: Pick<QemuSpec, 'arch' | 'tscKHz' | 'extraCmdline'>): string {
  const words =
    spec.arch === 'x86_64'
      ? [
          'console=ttyS0',
          'quiet',
          'panic=-1',
          'cryptomgr.notests',
          'init_on_alloc=0',
          'tsc=reliable',
          'mitigations=off',
        ]
      : ['console=ttyAMA0', 'quiet', 'panic=-1', 'cryptomgr.notests', 'init_on_alloc=0', 'mitigations=off'];
  if (spec.arch === 'x86_64' && spec.tscKHz > 0) words.push(`tsc_early_khz=${Math.round(spec.tscKHz)}`);
  if (spec.extraCmdline?.trim()) words.push(spec.extraCmdline.trim());
  return words.join(' ');
}

function checkSpec(spec: QemuSpec): void {
  if (!Number.isInteger(spec.cpus) || spec.cpus < 1 || spec.cpus > 64)
    throw new Error(`cpus must be an integer from 1 to 64 (got ${spec.cpus})`);
  if (!Number.isInteger(spec.memoryMiB) || spec.memoryMiB < 256)
    throw new Error(`memory must be at least 256 MiB (got ${spec.memoryMiB})`);
  if (!Number.isInteger(spec.sshPort) || spec.sshPort < 1 || spec.sshPort > 65535)
    throw new Error(`invalid SSH port ${spec.sshPort}`);
  for (const s of spec.shares) {
    if (!/^[A-Za-z0-9_.-]{1,31}$/.test(s.tag))
      throw new Error(`invalid share tag "${s.tag}" (1-31 of A-Z a-z 0-9 _ . -)`);
  }
  for (const f of spec.fwCfg) {
    if (!f.name.startsWith('opt/') || f.name.length > 55)
      throw new Error(`invalid fw_cfg name "${f.name}" (must start with opt/, at most 55 bytes)`);
  }
}

/** The whole QEMU command line. Pure: same spec, same answer. */
export function qemuCommand(spec: QemuSpec): QemuCommand {
  checkSpec(spec);
  const warnings: string[] = [];
  const machine = spec.machine ?? defaultMachine(spec.arch, spec.accel);
  if (spec.arch === 'aarch64' && machine !== 'virt') throw new Error(`machine ${machine} is x86_64 only: use virt`);
  if (spec.arch === 'x86_64' && machine === 'virt') throw new Error('machine virt is aarch64 only: use microvm or q35');
  // microvm has virtio-mmio transports only; q35 and virt take the PCI variants (no option ROMs: faster boot).
  const mmio = machine === 'microvm';
  const dev = (kind: string, props: string): string =>
    mmio ? `virtio-${kind}-device,${props}` : `virtio-${kind}-pci,${props}`;
  const cmdline = kernelCmdline(spec);

  const args: string[] = ['-name', qemuEscape(spec.name), '-nodefaults', '-no-user-config', '-nographic'];
  args.push('-no-reboot'); // with panic=-1 a guest panic ends QEMU instead of looping
  if (machine === 'microvm')
    args.push('-machine', 'microvm,acpi=on'); // ACPI: the power button of system_powerdown
  else if (machine === 'q35') args.push('-machine', 'q35');
  else args.push('-machine', 'virt');

  switch (spec.accel) {
    case 'tcg':
      // A large translation cache: fewer flush stalls when many processes start (lab: node in the guest).
      args.push('-accel', 'tcg,tb-size=256');
      break;
    case 'whpx':
      args.push('-accel', 'whpx,kernel-irqchip=off');
      break;
    default:
      args.push('-accel', spec.accel);
  }
  // host passes the real CPU through where a hypervisor runs it; under TCG "max" emulates every feature QEMU can
  // (RDRAND included: no wait for entropy at the first SSH login).
  const cpu = spec.accel === 'tcg' || spec.accel === 'whpx' ? 'max' : 'host';
  args.push('-cpu', cpu, '-smp', String(spec.cpus), '-m', String(spec.memoryMiB));

  args.push('-kernel', qemuEscape(spec.kernel), '-initrd', qemuEscape(spec.initrd), '-append', cmdline);

  args.push('-chardev', `file,id=serial0,path=${qemuEscape(spec.serialLog)}`, '-serial', 'chardev:serial0');
  args.push('-qmp', `unix:${qemuEscape(spec.qmpSocket)},server=on,wait=off`);
  args.push('-pidfile', spec.pidFile);

  args.push(
    '-drive',
    `if=none,id=data,file=${qemuEscape(spec.dataDisk)},format=qcow2,discard=unmap,cache=writeback`,
    '-device',
    dev('blk', 'drive=data'),
  );
  // User networking: guest 10.0.2.15, gateway (= this host) 10.0.2.2, DNS 10.0.2.3. Only SSH is forwarded, and
  // only from the host's loopback.
  args.push(
    '-netdev',
    `user,id=net0,hostfwd=tcp:127.0.0.1:${spec.sshPort}-:22`,
    '-device',
    dev('net', mmio ? 'netdev=net0' : 'netdev=net0,romfile='),
  );
  args.push('-object', 'rng-builtin,id=rng0', '-device', dev('rng', 'rng=rng0'));

  for (const f of spec.fwCfg) args.push('-fw_cfg', `name=${f.name},file=${qemuEscape(f.file)}`);

  if (spec.platform === 'win32') {
    if (spec.shares.length > 0)
      warnings.push(
        'shared folders are not available on Windows (QEMU has no virtio-9p there): copy files into volumes ' +
          '(docker cp, or a bind mount of a folder inside the VM) — see docs/hostagent.md',
      );
  } else {
    spec.shares.forEach((s, i) => {
      args.push(
        '-fsdev',
        `local,id=fs${i},path=${qemuEscape(s.path)},security_model=none`,
        '-device',
        dev('9p', `fsdev=fs${i},mount_tag=${s.tag}`),
      );
    });
  }
  return { binary: qemuBinary(spec.platform, spec.arch), args, cmdline, machine, warnings };
}
