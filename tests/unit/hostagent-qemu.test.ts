// The host agent's QEMU command line per host, and the accelerator choice, as pure functions.
import { describe, expect, it } from 'vitest';
import {
  chooseAccel,
  kernelCmdline,
  qemuCommand,
  qemuEscape,
  tscKHzFromCpuinfo,
  type HostProbe,
  type QemuSpec,
} from '../../electron/hostagent/qemu.js';

const probe = (p: Partial<HostProbe>): HostProbe => ({
  platform: 'linux',
  arch: 'x86_64',
  forced: '',
  kvmUsable: true,
  kvmModules: ['kvm', 'kvm_intel'],
  tscKHz: 2_100_000,
  ...p,
});

const spec = (s: Partial<QemuSpec>): QemuSpec => ({
  platform: 'linux',
  arch: 'x86_64',
  accel: 'tcg',
  cpus: 2,
  memoryMiB: 2048,
  kernel: '/app/vm/kernel',
  initrd: '/app/vm/initramfs',
  dataDisk: '/h/.skiff/default/data.qcow2',
  serialLog: '/h/.skiff/default/serial.log',
  qmpSocket: '/h/.skiff/default/qmp.sock',
  pidFile: '/h/.skiff/default/qemu.pid',
  sshPort: 40022,
  shares: [{ tag: 'skiff0', path: '/home/me' }],
  fwCfg: [{ name: 'opt/skiff/authorized_keys', file: '/h/.skiff/default/id_ed25519.pub' }],
  tscKHz: 2_100_000,
  name: 'skiff-default',
  ...s,
});

/** The value after each occurrence of a flag. */
const values = (args: string[], flag: string): string[] => args.flatMap((a, i) => (a === flag ? [args[i + 1]] : []));

describe('chooseAccel', () => {
  it('uses kvm on Linux with kvm_intel or kvm_amd and a usable /dev/kvm', () => {
    expect(chooseAccel(probe({})).accel).toBe('kvm');
    expect(chooseAccel(probe({ kvmModules: ['kvm', 'kvm_amd'] })).accel).toBe('kvm');
  });
  it('falls back to tcg when /dev/kvm is PVM, unusable, or has no hardware module', () => {
    const pvm = chooseAccel(probe({ kvmModules: ['kvm', 'kvm_pvm'] }));
    expect(pvm).toEqual({ accel: 'tcg', reason: expect.stringMatching(/PVM/) });
    expect(chooseAccel(probe({ kvmModules: ['kvm', 'kvm_intel', 'kvm_pvm'] })).accel).toBe('tcg');
    expect(chooseAccel(probe({ kvmUsable: false })).reason).toMatch(/not writable/);
    expect(chooseAccel(probe({ kvmModules: ['kvm'] })).accel).toBe('tcg');
    expect(chooseAccel(probe({ kvmModules: [] })).accel).toBe('tcg');
  });
  it('arm64 Linux has KVM built in (no vendor module)', () => {
    expect(chooseAccel(probe({ arch: 'aarch64', kvmModules: ['kvm'] })).accel).toBe('kvm');
  });
  it('uses hvf on macOS and whpx on Windows', () => {
    expect(chooseAccel(probe({ platform: 'darwin', kvmUsable: false, kvmModules: [] })).accel).toBe('hvf');
    expect(chooseAccel(probe({ platform: 'win32', kvmUsable: false, kvmModules: [] })).accel).toBe('whpx');
  });
  it('SKIFF_ACCEL forces a choice, but not one the platform lacks', () => {
    expect(chooseAccel(probe({ forced: 'tcg' })).accel).toBe('tcg');
    expect(chooseAccel(probe({ forced: 'TCG', platform: 'darwin' })).accel).toBe('tcg');
    expect(chooseAccel(probe({ forced: 'kvm', kvmModules: ['kvm_pvm'] })).accel).toBe('kvm');
    expect(chooseAccel(probe({ forced: 'auto' })).accel).toBe('kvm');
    expect(() => chooseAccel(probe({ forced: 'hvf' }))).toThrow(/hvf does not exist on linux: use kvm or tcg/);
    expect(() => chooseAccel(probe({ forced: 'xen' }))).toThrow(/unknown accelerator "xen"/);
  });
});

describe('qemuCommand', () => {
  it('Linux x86_64 under TCG: microvm with ACPI, tb-size=256, max CPU, PVH kernel, tuned cmdline', () => {
    const c = qemuCommand(spec({}));
    expect(c.binary).toBe('qemu-system-x86_64');
    expect(c.machine).toBe('microvm');
    expect(c.args.slice(0, 6)).toEqual([
      '-name',
      'skiff-default',
      '-nodefaults',
      '-no-user-config',
      '-nographic',
      '-no-reboot',
    ]);
    expect(values(c.args, '-machine')).toEqual(['microvm,acpi=on']);
    expect(values(c.args, '-accel')).toEqual(['tcg,tb-size=256']);
    expect(values(c.args, '-cpu')).toEqual(['max']);
    expect(values(c.args, '-smp')).toEqual(['2']);
    expect(values(c.args, '-m')).toEqual(['2048']);
    expect(values(c.args, '-kernel')).toEqual(['/app/vm/kernel']);
    expect(values(c.args, '-initrd')).toEqual(['/app/vm/initramfs']);
    expect(values(c.args, '-append')).toEqual([c.cmdline]);
    expect(c.cmdline).toBe(
      'console=ttyS0 quiet panic=-1 cryptomgr.notests init_on_alloc=0 tsc=reliable mitigations=off tsc_early_khz=2100000',
    );
    expect(values(c.args, '-qmp')).toEqual(['unix:/h/.skiff/default/qmp.sock,server=on,wait=off']);
    expect(values(c.args, '-chardev')).toEqual(['file,id=serial0,path=/h/.skiff/default/serial.log']);
    expect(values(c.args, '-serial')).toEqual(['chardev:serial0']);
    expect(values(c.args, '-drive')).toEqual([
      'if=none,id=data,file=/h/.skiff/default/data.qcow2,format=qcow2,discard=unmap,cache=writeback',
    ]);
    expect(values(c.args, '-netdev')).toEqual(['user,id=net0,hostfwd=tcp:127.0.0.1:40022-:22']);
    expect(values(c.args, '-device')).toEqual([
      'virtio-blk-device,drive=data',
      'virtio-net-device,netdev=net0',
      'virtio-rng-device,rng=rng0',
      'virtio-9p-device,fsdev=fs0,mount_tag=skiff0',
    ]);
    expect(values(c.args, '-object')).toEqual(['rng-builtin,id=rng0']);
    expect(values(c.args, '-fw_cfg')).toEqual(['name=opt/skiff/authorized_keys,file=/h/.skiff/default/id_ed25519.pub']);
    expect(values(c.args, '-fsdev')).toEqual(['local,id=fs0,path=/home/me,security_model=none']);
    expect(c.warnings).toEqual([]);
    // Only SSH is forwarded, and only from loopback.
    expect(c.args.join(' ')).not.toMatch(/hostfwd=tcp:(0\.0\.0\.0)?:/);
  });

  it('Linux x86_64 with KVM: the host CPU', () => {
    const c = qemuCommand(spec({ accel: 'kvm' }));
    expect(values(c.args, '-accel')).toEqual(['kvm']);
    expect(values(c.args, '-cpu')).toEqual(['host']);
    expect(c.machine).toBe('microvm');
  });

  it('macOS x86_64 (hvf) and Windows (whpx): q35 with PCI devices; Windows has no 9p shares', () => {
    const mac = qemuCommand(spec({ platform: 'darwin', accel: 'hvf' }));
    expect(values(mac.args, '-machine')).toEqual(['q35']);
    expect(values(mac.args, '-accel')).toEqual(['hvf']);
    expect(values(mac.args, '-device')).toContain('virtio-net-pci,netdev=net0,romfile=');
    expect(values(mac.args, '-device')).toContain('virtio-9p-pci,fsdev=fs0,mount_tag=skiff0');
    const win = qemuCommand(spec({ platform: 'win32', accel: 'whpx' }));
    expect(win.binary).toBe('qemu-system-x86_64.exe');
    expect(values(win.args, '-accel')).toEqual(['whpx,kernel-irqchip=off']);
    expect(values(win.args, '-fsdev')).toEqual([]);
    expect(win.warnings[0]).toMatch(/shared folders are not available on Windows/);
  });

  it('aarch64: virt, host CPU under hvf/kvm, max under tcg, ttyAMA0', () => {
    const m1 = qemuCommand(spec({ platform: 'darwin', arch: 'aarch64', accel: 'hvf', tscKHz: 0 }));
    expect(m1.binary).toBe('qemu-system-aarch64');
    expect(values(m1.args, '-machine')).toEqual(['virt']);
    expect(values(m1.args, '-cpu')).toEqual(['host']);
    expect(m1.cmdline).toMatch(/^console=ttyAMA0 /);
    expect(m1.cmdline).not.toMatch(/tsc/);
    const tcg = qemuCommand(spec({ arch: 'aarch64', accel: 'tcg' }));
    expect(values(tcg.args, '-cpu')).toEqual(['max']);
    expect(() => qemuCommand(spec({ arch: 'aarch64', machine: 'microvm' }))).toThrow(/x86_64 only/);
  });

  it('escapes commas in paths and checks the settings', () => {
    expect(qemuEscape('/a,b/c')).toBe('/a,,b/c');
    const c = qemuCommand(spec({ dataDisk: '/x,y/data.qcow2' }));
    expect(values(c.args, '-drive')[0]).toContain('file=/x,,y/data.qcow2,format=qcow2');
    expect(() => qemuCommand(spec({ cpus: 0 }))).toThrow(/cpus/);
    expect(() => qemuCommand(spec({ memoryMiB: 100 }))).toThrow(/memory/);
    expect(() => qemuCommand(spec({ shares: [{ tag: 'a b', path: '/' }] }))).toThrow(/share tag/);
    expect(() => qemuCommand(spec({ fwCfg: [{ name: 'etc/x', file: '/f' }] }))).toThrow(/fw_cfg/);
  });

  it('reads the TSC frequency from /proc/cpuinfo', () => {
    expect(tscKHzFromCpuinfo('processor\t: 0\ncpu MHz\t\t: 2099.998\n')).toBe(2099998);
    expect(tscKHzFromCpuinfo('no such line')).toBe(0);
    expect(kernelCmdline({ arch: 'x86_64', tscKHz: 0, extraCmdline: 'skiff.debug' })).toMatch(
      /mitigations=off skiff.debug$/,
    );
  });
});
