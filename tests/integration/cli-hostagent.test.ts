// The real `dist/bin/skiff` against a real host agent that the CLI launches itself (dist/bin/skiff-hostagent,
// detached), with real QEMU and qemu-img, on the paths that need no VM image: the clear "not running" error and
// exit code 3, `skiff start` ending in ERROR with the host agent's reason and exit 1 (an incomplete image, a kernel
// QEMU cannot boot, QEMU missing from PATH), status/logs/stop/stop --quit after that, a dead host agent, reset's
// confirmation. The full boot is in the last test, when dist/vm exists.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO } from '../native/helpers.js';
import { alive, cliEnv, waitGone } from './cli-harness.js';

const c = cliEnv();
afterAll(() => c.cleanup());

/** An image directory: a manifest, and kernel/initramfs files when given. */
function image(name: string, files: Record<string, string> = {}): string {
  const dir = join(c.home, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ arch: 'x86_64', version: 'test' }));
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
  return dir;
}

describe('skiff without a host agent', () => {
  it('status: the clear error, exit 3 (and --json says NOT_RUNNING)', async () => {
    const r = await c.skiff(['status']);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe('Skiff is not running (no host agent for vm default): run `skiff start`\n');
    expect(r.stdout).toBe('');
    const j = await c.skiff(['status', '--json', '--vm', 'other']);
    expect(j.code).toBe(3);
    expect(JSON.parse(j.stdout)).toMatchObject({ vm: 'other', state: 'NOT_RUNNING' });
  });

  it('shell, ssh-config and restart say the same; stop has nothing to stop', async () => {
    for (const cmd of [['shell'], ['ssh-config'], ['restart']]) {
      const r = await c.skiff(cmd);
      expect(r.code, cmd[0]).toBe(3);
      expect(r.stderr).toMatch(/Skiff is not running \(no host agent for vm default\): run `skiff start`/);
    }
    const s = await c.skiff(['stop']);
    expect(s).toMatchObject({
      code: 0,
      stdout: 'Skiff is not running (no host agent for vm default): nothing to stop.\n',
    });
    expect(existsSync(join(c.home, 'default', 'hostagent.pid'))).toBe(false); // no host agent was started
  });

  it('bad usage: exit 2', async () => {
    const r = await c.skiff(['start', '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('skiff: start has no option --json (see `skiff --help`)\n');
    expect((await c.skiff(['--version'])).stdout).toBe('skiff 0.1.0\n');
  });
});

describe('skiff start without a bootable image', () => {
  it('an incomplete image: the reason, exit 1; then status, logs, stop, stop --quit', async () => {
    const img = image('img-incomplete');
    const env = { SKIFF_VM_IMAGE: img };
    const r = await c.skiff(['start', '--vm', 'noimg'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Starting the host agent for vm noimg…\n');
    expect(r.stderr).toContain('Starting Skiff: keys (5%)\n'); // the progress, a line per step off a terminal
    expect(r.stderr).toContain(
      `Skiff failed to start (vm noimg): the VM image in ${img} is incomplete: ${img}/kernel is missing ` +
        '(npm run build:vm-image)\n',
    );
    const pid = c.agentPid('noimg');
    expect(alive(pid)).toBe(true); // the host agent stays, detached, with the ERROR state

    const s = await c.skiff(['status', '--vm', 'noimg']);
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/^Skiff \(vm noimg\): ERROR since \S+ \(\d+s ago\)\n {2}reason: {9}the VM image in /);
    const j = JSON.parse((await c.skiff(['status', '--vm', 'noimg', '--json'])).stdout);
    expect(j).toMatchObject({ vm: 'noimg', state: 'ERROR', reason: expect.stringContaining('is incomplete') });

    const l = await c.skiff(['logs', '--vm', 'noimg', '-n', '20']);
    expect(l.code).toBe(0);
    expect(l.stdout).toContain('==> host agent (');
    expect(l.stdout).toMatch(/hostagent: serving skiff.host.v1 on .*noimg\/hostagent.sock/);
    expect(l.stdout).toMatch(/hostagent: ERROR: the VM image in .* is incomplete/);
    expect(l.stdout).toContain('==> versions <==\nhostagent: 0.1.0\n');

    // a second start reuses the running host agent (no second one) and fails the same way
    const again = await c.skiff(['start', '--vm', 'noimg'], env);
    expect(again.code).toBe(1);
    expect(again.stderr).not.toContain('Starting the host agent');
    expect(c.agentPid('noimg')).toBe(pid);

    const st = await c.skiff(['stop', '--vm', 'noimg']);
    expect(st).toMatchObject({ code: 0, stdout: 'Skiff stopped (vm noimg).\n' });
    expect(JSON.parse((await c.skiff(['status', '--vm', 'noimg', '--json'])).stdout).state).toBe('STOPPED');
    expect(alive(pid)).toBe(true);

    const q = await c.skiff(['stop', '--quit', '--vm', 'noimg']);
    expect(q).toMatchObject({ code: 0, stdout: 'Skiff stopped (vm noimg); the host agent exited.\n' });
    expect(alive(pid)).toBe(false);
    expect(existsSync(join(c.home, 'noimg', 'hostagent.pid'))).toBe(false);
    expect(existsSync(join(c.home, 'noimg', 'hostagent.sock'))).toBe(false);
    expect((await c.skiff(['status', '--vm', 'noimg'])).code).toBe(3);
  });

  it('a kernel QEMU cannot boot: QEMU’s own message as the reason, exit 1', async () => {
    const img = image('img-bad', { kernel: 'not a kernel\n', initramfs: 'not an initramfs\n' });
    const r = await c.skiff(['start', '--vm', 'badkernel'], { SKIFF_VM_IMAGE: img });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Starting Skiff: disk \(10%\)\nStarting Skiff: qemu \(15%\)\n/);
    expect(r.stderr).toMatch(/Skiff failed to start \(vm badkernel\): QEMU exited during boot \(code 1\)/);
    // the keys and the data disk were made on the way
    for (const f of ['id_ed25519', 'ssh_host_ed25519_key', 'known_hosts', 'data.qcow2'])
      expect(existsSync(join(c.home, 'badkernel', f)), f).toBe(true);
    // reset: refused off a terminal without --force, then done with it
    const no = await c.skiff(['reset', '--vm', 'badkernel']);
    expect(no.code).toBe(1);
    expect(no.stderr).toMatch(/Not a terminal, so nothing was asked: run it again with --force to confirm/);
    expect(existsSync(join(c.home, 'badkernel', 'data.qcow2'))).toBe(true);
    const yes = await c.skiff(['reset', '--vm', 'badkernel', '-f']);
    expect(yes).toMatchObject({ code: 0 });
    expect(yes.stdout).toMatch(/was reset/);
    for (const f of ['id_ed25519', 'ssh_host_ed25519_key', 'known_hosts', 'data.qcow2'])
      expect(existsSync(join(c.home, 'badkernel', f)), f).toBe(false);
    expect((await c.skiff(['stop', '--quit', '--vm', 'badkernel'])).code).toBe(0);
  });

  it('QEMU missing from PATH: says to install it, exit 1', async () => {
    const img = image('img-noqemu', { kernel: 'k\n', initramfs: 'i\n' });
    const bin = mkdtempSync(join(tmpdir(), 'skc-bin-'));
    try {
      for (const tool of ['ssh-keygen', 'qemu-img']) symlinkSync(`/usr/bin/${tool}`, join(bin, tool));
      const r = await c.skiff(['start', '--vm', 'noqemu'], { SKIFF_VM_IMAGE: img, PATH: bin });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /Skiff failed to start \(vm noqemu\): QEMU is not installed \(qemu-system-x86_64 not found\): install it \(Debian\/Ubuntu: apt-get install qemu-system-x86/,
      );
      expect((await c.skiff(['stop', '--quit', '--vm', 'noqemu'])).code).toBe(0);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it('a host agent that died: status says so and where its log is', async () => {
    const img = image('img-dead');
    expect((await c.skiff(['start', '--vm', 'dead'], { SKIFF_VM_IMAGE: img })).code).toBe(1);
    const pid = c.agentPid('dead');
    expect(alive(pid)).toBe(true);
    process.kill(pid, 'SIGKILL'); // the host agent this test's CLI started
    expect(await waitGone(pid, 10_000)).toBe(true);
    const r = await c.skiff(['status', '--vm', 'dead']);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(
      `Skiff is not running: the host agent for vm dead died (pid ${pid} is gone; see ` +
        `${join(c.home, 'dead', 'hostagent.log')}): run \`skiff start\`\n`,
    );
    // logs still shows the files
    const l = await c.skiff(['logs', '--vm', 'dead']);
    expect(l.code).toBe(0);
    expect(l.stderr).toMatch(/showing the files in /);
    expect(l.stdout).toMatch(/hostagent: ERROR: the VM image in .* is incomplete/);
    // start replaces the stale pidfile with a new host agent
    const again = await c.skiff(['start', '--vm', 'dead'], { SKIFF_VM_IMAGE: img });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('Starting the host agent for vm dead…');
    expect(c.agentPid('dead')).not.toBe(pid);
    expect((await c.skiff(['stop', '--quit', '--vm', 'dead'])).code).toBe(0);
  });
});

// The whole VM, when the image has been built (npm run build:vm-image): TCG, generous timeouts.
// npm test builds the image first (scripts/test.mjs); run alone without it, this part is skipped, and says so.
describe.skipIf(!existsSync(join(REPO, 'dist/vm/manifest.json')))(
  'skiff start with the real VM image (dist/vm)',
  () => {
    it('start → RUNNING; status, shell, ssh-config, docker version; a home folder shared into a container; a published port on the host; a second start; kill -9 of QEMU keeps images and volumes; stop', async () => {
      const vm = 'real';
      const r = await c.skiff(['start', '--vm', vm], {}, 600_000);
      if (r.code !== 0) {
        const l = await c.skiff(['logs', '--vm', vm, '-n', '60']);
        throw new Error(`skiff start failed (${r.code}):\n${r.stderr}\n${l.stdout}`);
      }
      const sock = join(c.home, vm, 'docker.sock');
      expect(r.stdout).toContain(`Docker socket: unix://${sock}\n`);
      const j = JSON.parse((await c.skiff(['status', '--vm', vm, '--json'])).stdout);
      expect(j).toMatchObject({ state: 'RUNNING', dockerSocket: sock, accel: 'tcg' });
      // a shell in the VM: its hostname, and PID 1 is skiff-init (the image's /init)
      const sh = await c.skiff(['shell', '--vm', vm, '--', 'sh', '-c', 'hostname; cat /proc/1/comm']);
      expect(sh).toMatchObject({ code: 0, stdout: `skiff-${vm}\ninit\n` });
      expect((await c.skiff(['ssh-config', '--vm', vm])).stdout).toContain(`Port ${j.sshPort}\n`);
      const ctx = await c.skiff(['context', '--vm', vm]);
      expect(ctx.code).toBe(0);
      const { run } = await import('./daemon-harness.js');
      const v = await run('/usr/local/bin/docker', ['--context', `skiff-${vm}`, 'version'], {
        env: c.env,
        timeoutMs: 60_000,
      });
      expect(v.code, v.stderr).toBe(0);

      // What users do next: a published port on the host's 127.0.0.1, and a folder of their home in a container.
      const dockerIn = (args: string[]) =>
        run('/usr/local/bin/docker', ['--context', `skiff-${vm}`, ...args], { env: c.env, timeoutMs: 180_000 });
      const { busyboxArchive } = await import('./daemon-harness.js');
      const load = await dockerIn(['load', '-i', busyboxArchive()]);
      expect(load.code, load.stderr).toBe(0);
      const shared = mkdtempSync(join(homedir(), '.skiff-share-test-'));
      try {
        writeFileSync(join(shared, 'from-host'), 'hello from the host\n');
        const rw = await dockerIn([
          'run',
          '--rm',
          '-v',
          `${shared}:/work`,
          'busybox',
          'sh',
          '-c',
          'cat /work/from-host && echo written in the VM > /work/from-vm',
        ]);
        expect(rw.code, rw.stderr).toBe(0);
        expect(rw.stdout).toBe('hello from the host\n');
        expect(readFileSync(join(shared, 'from-vm'), 'utf8')).toBe('written in the VM\n');
      } finally {
        rmSync(shared, { recursive: true, force: true });
      }
      const web = await dockerIn([
        'run',
        '-d',
        '-p',
        '127.0.0.1:18089:80',
        'busybox',
        'sh',
        '-c',
        'mkdir /www && echo published > /www/index.html && exec httpd -f -p 80 -h /www',
      ]);
      expect(web.code, web.stderr).toBe(0);
      let body = '';
      for (let i = 0; i < 60 && body !== 'published\n'; i++) {
        body = await fetch('http://127.0.0.1:18089/').then(
          (res) => res.text(),
          () => '',
        );
        if (body !== 'published\n') await new Promise((res) => setTimeout(res, 500));
      }
      expect(body).toBe('published\n');

      // A second start while running says so and changes nothing.
      const again = await c.skiff(['start', '--vm', vm], {}, 60_000);
      expect(again.code).toBe(0);
      expect(again.stdout).toContain('is already running');

      // kill -9 of QEMU: the status says the VM stopped unexpectedly; the next start has the images and volumes.
      expect((await dockerIn(['volume', 'create', 'kept'])).code).toBe(0);
      const { qemuPid } = JSON.parse((await c.skiff(['status', '--vm', vm, '--json'])).stdout) as { qemuPid: number };
      expect(qemuPid).toBeGreaterThan(0);
      process.kill(qemuPid, 'SIGKILL');
      let state = '';
      for (let i = 0; i < 60 && state !== 'ERROR' && state !== 'STOPPED'; i++) {
        await new Promise((res) => setTimeout(res, 500));
        state = (JSON.parse((await c.skiff(['status', '--vm', vm, '--json'])).stdout) as { state: string }).state;
      }
      expect(['ERROR', 'STOPPED']).toContain(state);
      const r2 = await c.skiff(['start', '--vm', vm], {}, 600_000);
      expect(r2.code, r2.stderr).toBe(0);
      const imgs = await dockerIn(['images', '--format', '{{.Repository}}:{{.Tag}}']);
      expect(imgs.stdout).toContain('busybox:latest');
      expect((await dockerIn(['volume', 'ls', '--format', '{{.Name}}'])).stdout.split('\n')).toContain('kept');

      const st = await c.skiff(['stop', '--vm', vm], {}, 120_000);
      expect(st.code).toBe(0);
      expect(readFileSync(join(c.home, vm, 'hostagent.log'), 'utf8')).toMatch(/STOPPED/);
    }, 900_000);
  },
);
