// Namespaces: new ones of every type, joining existing ones by path, time offsets, and exec into them.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Runtime, cleanupScratch, makeBundle, requireRoot, scratchDir } from './helpers.js';

const rt = new Runtime();
beforeAll(() => requireRoot());
afterEach(() => rt.cleanup());
afterAll(() => cleanupScratch());

/** Make a bundle usable by a user namespace whose root is host uid `owner`. */
function mapTo(b: ReturnType<typeof makeBundle>, owner: number): void {
  chmodSync(b.dir, 0o755);
  spawnSync('chown', ['-R', `${owner}:${owner}`, b.rootfs]);
}

const nsLink = (pid: number | string, type: string) => readlinkSync(`/proc/${pid}/ns/${type}`);

/** A long-running container; returns its id and init pid. */
function sleeper(mutate?: Parameters<typeof makeBundle>[1], owner?: number): { id: string; pid: number } {
  const b = makeBundle(['/bin/sleep', '300'], mutate);
  if (owner !== undefined) mapTo(b, owner);
  const c = rt.create(b);
  expect(c.code, c.stderr).toBe(0);
  expect(rt.cmd(['start', c.id]).code).toBe(0);
  return { id: c.id, pid: rt.state(c.id).pid };
}

describe('new namespaces', () => {
  it('gets a namespace of each listed type, different from the host', () => {
    const { pid } = sleeper((c) => c.linux.namespaces.push({ type: 'cgroup' }));
    for (const t of ['pid', 'net', 'ipc', 'uts', 'mnt', 'cgroup']) expect(nsLink(pid, t)).not.toBe(nsLink('self', t));
    expect(nsLink(pid, 'user')).toBe(nsLink('self', 'user'));
  });

  it('shares the host namespaces that are not listed', () => {
    const b = makeBundle(['/bin/sh', '-c', 'readlink /proc/self/ns/net; readlink /proc/self/ns/uts'], (c) => {
      c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => !['network', 'uts'].includes(n.type));
      delete c.hostname;
    });
    const r = rt.run(b);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${nsLink('self', 'net')}\n${nsLink('self', 'uts')}\n`);
  });

  it('roots the cgroup namespace at the container cgroup', () => {
    const b = makeBundle(['/bin/cat', '/proc/self/cgroup'], (c) => c.linux.namespaces.push({ type: 'cgroup' }));
    const r = rt.run(b);
    expect(r.stderr).toBe('');
    for (const line of r.stdout.trim().split('\n')) {
      const [, controllers, path] = line.split(':');
      // every hierarchy the runtime placed us in shows as the root; others (e.g. v2 in hybrid) as a relative path
      if (['memory', 'pids', 'cpu,cpuacct', 'freezer', 'devices', 'blkio'].includes(controllers))
        expect(path).toBe('/');
    }
  });

  it('shifts CLOCK_MONOTONIC and CLOCK_BOOTTIME by linux.timeOffsets', () => {
    const b = makeBundle(['/bin/cat', '/proc/uptime'], (c) => {
      c.linux.namespaces.push({ type: 'time' });
      c.linux.timeOffsets = { boottime: { secs: 86400 * 365, nanosecs: 0 }, monotonic: { secs: 1000 } };
    });
    const r = rt.run(b);
    expect(r.stderr).toBe('');
    const inside = Number(r.stdout.split(' ')[0]);
    const host = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    expect(inside - host).toBeGreaterThan(86400 * 365 - 60);
    expect(inside - host).toBeLessThan(86400 * 365 + 60);
  });
});

describe('joining namespaces by path', () => {
  it('joins another container’s network, ipc, uts and pid namespaces', () => {
    const first = sleeper((c) => (c.hostname = 'first'));
    const b = makeBundle(['/bin/sh', '-c', 'hostname; ps -o pid,args | grep -c "sleep 300"'], (c) => {
      delete c.hostname;
      c.linux.namespaces = [
        { type: 'pid', path: `/proc/${first.pid}/ns/pid` },
        { type: 'network', path: `/proc/${first.pid}/ns/net` },
        { type: 'ipc', path: `/proc/${first.pid}/ns/ipc` },
        { type: 'uts', path: `/proc/${first.pid}/ns/uts` },
        { type: 'mount' },
      ];
    });
    const second = rt.create(b);
    expect(second.code, second.stderr).toBe(0);
    const pid = rt.state(second.id).pid;
    for (const t of ['pid', 'net', 'ipc', 'uts']) expect(nsLink(pid, t)).toBe(nsLink(first.pid, t));
    expect(nsLink(pid, 'mnt')).not.toBe(nsLink(first.pid, 'mnt'));
    expect(rt.cmd(['start', second.id]).code).toBe(0);
  });

  it('joins a named network namespace made with ip netns', () => {
    const name = `skiff-${process.pid}-${Date.now() % 100000}`;
    expect(spawnSync('ip', ['netns', 'add', name]).status).toBe(0);
    try {
      const b = makeBundle(['/bin/readlink', '/proc/self/ns/net'], (c) => {
        c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) =>
          n.type === 'network' ? { type: 'network', path: `/run/netns/${name}` } : n,
        );
      });
      const r = rt.run(b);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe(`net:[${statSync(`/run/netns/${name}`).ino}]\n`);
    } finally {
      spawnSync('ip', ['netns', 'del', name]);
    }
  });

  it('joins a user namespace by path and becomes root in it', () => {
    const first = sleeper((c) => {
      c.linux.namespaces.push({ type: 'user' });
      c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    }, 100000);
    const b = makeBundle(['/bin/sh', '-c', 'id -u; cat /proc/self/uid_map'], (c) => {
      c.root.readonly = false;
      c.linux.namespaces.push({ type: 'user', path: `/proc/${first.pid}/ns/user` });
      c.linux.namespaces = c.linux.namespaces.filter((n: { type: string; path?: string }) => n.type !== 'network');
      c.linux.namespaces.push({ type: 'network', path: `/proc/${first.pid}/ns/net` });
    });
    mapTo(b, 100000);
    const r = rt.run(b);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')[0]).toBe('0');
    expect(r.stdout.split('\n')[1].trim().split(/\s+/)).toEqual(['0', '100000', '65536']);
  });
});

describe('exec into the namespaces', () => {
  it('enters every namespace of the container, user and cgroup included', () => {
    const { id, pid } = sleeper((c) => {
      c.linux.namespaces.push({ type: 'user' }, { type: 'cgroup' });
      c.linux.uidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
      c.linux.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
    }, 200000);
    // stdio on /dev/null: the detached process would hold a pipe open
    const r = spawnSync('sh', [
      '-c',
      'exec "$@" </dev/null >/dev/null 2>&1',
      'sh',
      rt.binary,
      '--root',
      rt.root,
      'exec',
      '--detach',
      id,
      '/bin/sleep',
      '100',
    ]);
    expect(r.status).toBe(0);
    const ps = JSON.parse(rt.cmd(['ps', '--format', 'json', id]).stdout) as number[];
    const other = ps.find((p) => p !== pid);
    expect(other).toBeDefined();
    for (const t of ['pid', 'net', 'ipc', 'uts', 'mnt', 'user', 'cgroup'])
      expect(nsLink(other!, t), t).toBe(nsLink(pid, t));
    expect(readFileSync(`/proc/${other}/status`, 'utf8')).toMatch(/Uid:\s+200000\s/);
  });

  it('gives an exec --tty process a pty through the console socket', async () => {
    const { id } = sleeper();
    const dir = scratchDir('skiff-exec-tty-');
    const sock = join(dir, 'console.sock');
    const out = join(dir, 'out.txt');
    const receiver = `
import socket, sys, os
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1)
open(sys.argv[2] + '.ready', 'w').close()
c, _ = s.accept()
msg, fds, _, _ = socket.recv_fds(c, 4096, 4)
data = b''
while True:
    try:
        d = os.read(fds[0], 4096)
    except OSError:
        break
    if not d:
        break
    data += d
open(sys.argv[2], 'w').write(msg.decode() + '\\n' + data.decode(errors='replace'))
`;
    const py = spawn('python3', ['-c', receiver, sock, out], { stdio: 'ignore' });
    const exited = new Promise((res) => py.on('exit', res));
    try {
      for (let i = 0; i < 250 && !existsSync(out + '.ready'); i++) await new Promise((r) => setTimeout(r, 20));
      const r = rt.cmd([
        'exec',
        '--tty',
        '--console-socket',
        sock,
        id,
        '/bin/sh',
        '-c',
        'tty; test -t 0 && echo interactive',
      ]);
      expect(r.code, r.stderr).toBe(0);
      await Promise.race([exited, new Promise((res) => setTimeout(res, 10_000))]);
      const text = readFileSync(out, 'utf8').replace(/\r/g, '');
      expect(text).toMatch(/^\/dev\/pts\/\d+\n/);
      expect(text).toMatch(/^\/dev\/pts\/\d+$/m);
      expect(text).toMatch(/^interactive$/m);
    } finally {
      py.kill();
    }
  });

  it('refuses --tty without a console socket', () => {
    const { id } = sleeper();
    expect(rt.cmd(['exec', '--tty', id, '/bin/true']).stderr).toMatch(/--tty needs --console-socket/);
  });
});

describe('pause and the state dir', () => {
  it('reports paused and refuses exec while paused', () => {
    const { id } = sleeper();
    expect(rt.cmd(['pause', id]).code).toBe(0);
    expect(rt.state(id).status).toBe('paused');
    expect(rt.cmd(['exec', id, '/bin/true']).stderr).toMatch(/it is paused/);
    expect(rt.cmd(['resume', id]).code).toBe(0);
    expect(rt.state(id).status).toBe('running');
    expect(existsSync(join(rt.root, id, 'config.json'))).toBe(true);
  });
});
