// The host agent's Vm state machine with the real QEMU and qemu-img, on the paths that need no VM image: first
// start makes the keys and the qcow2 data disk, a kernel QEMU cannot load ends in ERROR with QEMU's own message
// (no fake success), the status stream shows STARTING steps then ERROR, and a missing image is a clear error.
// The full boot (docker version through the forwarded socket) runs when dist/vm exists (see the last test).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { vmPaths } from '../../electron/hostagent/paths.js';
import { probeHost } from '../../electron/hostagent/qemu.js';
import { findImage, Vm, type VmStatusView } from '../../electron/hostagent/vm.js';

const home = mkdtempSync(join(tmpdir(), 'skiff-havm-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

const settings = { cpus: 1, memoryMiB: 512, diskGiB: 4, shares: [home], stopVmOnQuit: true };

describe('Vm lifecycle without an image', () => {
  it('a missing image is a clear error', () => {
    expect(() => findImage(join(home, 'nothing'))).toThrow(/no VM image found .*npm run build:vm-image/);
  });

  it('makes keys and the data disk, then reports QEMU failing to boot as ERROR with its message', async () => {
    const img = join(home, 'img');
    mkdirSync(img);
    writeFileSync(join(img, 'kernel'), 'not a kernel\n');
    writeFileSync(join(img, 'initramfs'), 'not an initramfs\n');
    writeFileSync(join(img, 'manifest.json'), JSON.stringify({ arch: 'x86_64', version: 'test' }));
    const p = vmPaths('bad', home);
    const vm = new Vm({ paths: p, image: findImage(img), probe: { ...probeHost('tcg') }, bootTimeoutMs: 20_000 });
    const seen: VmStatusView[] = [];
    vm.on('status', (s: VmStatusView) => seen.push(s));
    const err = (await vm.start(settings).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/QEMU exited during boot \(code 1\)/);
    expect(vm.status()).toMatchObject({ state: 'ERROR', accel: 'tcg' });
    expect(vm.status().reason).toBe(err.message);
    expect(seen.map((s) => `${s.state}:${s.step}`)).toEqual(
      expect.arrayContaining(['STARTING:keys', 'STARTING:disk', 'STARTING:qemu', 'ERROR:']),
    );
    // The keys and a 4 GiB qcow2 disk were made.
    for (const f of [p.userKey, p.hostKey, p.knownHosts]) expect(statSync(f).mode & 0o777).toBe(0o600);
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', p.dataDisk], { encoding: 'utf8' }));
    expect(info).toMatchObject({ format: 'qcow2', 'virtual-size': 4 * 1024 ** 3 });
    // ERROR → start again is allowed (and fails the same way); stop from ERROR gives STOPPED.
    await expect(vm.start(settings)).rejects.toThrow(/QEMU exited during boot/);
    expect((await vm.stop()).state).toBe('STOPPED');
    // Reset removes the disk and keys.
    await vm.reset();
    expect(existsSync(p.dataDisk)).toBe(false);
    expect(existsSync(p.hostKey)).toBe(false);
  });
});
