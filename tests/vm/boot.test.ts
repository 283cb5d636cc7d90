// The VM image boots under QEMU and serves what users use: SSH with the host key the host pinned, the Docker API
// through a socket forwarded over SSH to the host's docker CLI, a clean ACPI power-off, and a data disk that keeps
// images across boots. Builds the image first (cached: build/vm-image). TCG here, so the timeouts are generous.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { busyboxArchive, DOCKER_CLI, run } from '../integration/daemon-harness.js';
import { VmHarness } from './vm-harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the VM image', () => {
  let vm: VmHarness;

  beforeAll(async () => {
    vm = await VmHarness.create();
  });

  afterAll(async () => {
    await vm?.destroy();
  });

  /** The host's docker CLI against a socket forwarded to the guest's /run/skiff/docker.sock. */
  const docker = (sock: string, args: string[], timeoutMs = 120_000) =>
    run(DOCKER_CLI, ['-H', `unix://${sock}`, ...args], { timeoutMs });

  /** Poll `docker version` until the engine in the guest answers (it starts after "skiff-init: ready"). */
  async function waitForDocker(sock: string, timeoutMs = 120_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const r = await docker(sock, ['version', '--format', '{{.Server.Version}} {{.Server.KernelVersion}}'], 30_000);
      if (r.code === 0) return r.stdout.trim();
      if (Date.now() > end)
        throw new Error(`docker version through the VM failed: ${r.stderr}\n${vm.serial().slice(-2000)}`);
      await sleep(500);
    }
  }

  it('boots to "skiff-init: ready" and answers SSH with the pinned host key', async () => {
    await vm.boot();
    await vm.waitForSerial('skiff-init: ready', 120_000);
    await vm.waitForSsh();
    const r = await vm.ssh(['uname', '-r']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(vm.image.kernelVersion);
    // no password logins; the data disk is mounted
    // (ssh hands the remote shell one command line)
    const cfg = await vm.ssh([
      'sshd -T | grep -i -E "^(passwordauthentication|permitrootlogin) "; findmnt -n -o FSTYPE /var/lib/skiff',
    ]);
    expect(cfg.stdout).toMatch(/passwordauthentication no/);
    expect(cfg.stdout).toMatch(/permitrootlogin without-password|permitrootlogin prohibit-password/);
    expect(cfg.stdout).toMatch(/^ext4$/m);
  });

  it('refuses a VM whose host key is not the pinned one', async () => {
    const other = join(vm.dir, 'other_key');
    const k = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    expect(k.code).toBe(0);
    vm.pinHostKey(`${other}.pub`);
    try {
      const r = await vm.ssh(['true']);
      expect(r.code).toBe(255);
      expect(r.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
    } finally {
      vm.pinHostKey(join(vm.dir, 'host_key.pub'));
    }
    expect((await vm.ssh(['true'])).code).toBe(0);
  });

  it('serves the Docker API to the host docker CLI through a forwarded socket: version, load, run', async () => {
    const sock = await vm.forwardDockerSocket();
    expect(await waitForDocker(sock)).toMatch(new RegExp(` ${vm.image.kernelVersion.replace(/\./g, '\\.')}$`));
    const load = await docker(sock, ['load', '-i', busyboxArchive()]);
    expect(load.stderr).toBe('');
    expect(load.stdout).toMatch(/Loaded image: busybox:latest/);
    const r = await docker(sock, ['run', '--rm', 'busybox', 'echo', 'hi']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hi\n');
  });

  it('powers off cleanly on the ACPI power button (QMP system_powerdown)', async () => {
    const t0 = Date.now();
    const code = await vm.powerdown(30_000);
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(30_000);
    const log = vm.serial();
    expect(log).toMatch(/skiff-init: powering off/);
    expect(log).toMatch(/unmounted \/var\/lib\/skiff/);
  });

  it('boots again with the data disk: the image loaded before is still there', async () => {
    await vm.boot();
    await vm.waitForSerial('skiff-init: ready', 120_000);
    expect(vm.serial()).not.toMatch(/formatting it/);
    await vm.waitForSsh();
    const sock = await vm.forwardDockerSocket();
    await waitForDocker(sock);
    const images = await docker(sock, ['images', '--format', '{{.Repository}}:{{.Tag}}']);
    expect(images.stdout.split('\n')).toContain('busybox:latest');
    expect(await vm.powerdown(30_000)).toBe(0);
  });
});
