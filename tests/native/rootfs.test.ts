// The container's filesystem view (native/runtime/rootfs.c, console.c), checked from inside busybox containers:
// mounts and their flags in mountinfo, /dev, masked and read-only paths, the read-only root, sysctl, binds,
// tmpfs options, the console socket; bad configs fail with clear errors and leave nothing behind. Where runc
// defines the behaviour, the same bundle runs through Debian's runc and the results are compared.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type Bundle,
  type OciConfig,
  Runtime,
  cgroupDirsNamed,
  cleanupScratch,
  hasRunc,
  hostMountsContaining,
  makeBundle,
  requireRoot,
  scratchDir,
  uniqueId,
} from './helpers.js';

const rt = new Runtime();
beforeAll(() => requireRoot());
afterEach(() => rt.cleanup());
afterAll(() => cleanupScratch());

interface MountLine {
  root: string;
  point: string;
  opts: string[]; // per-mount options (ro, nosuid, …)
  optional: string[]; // shared:N, master:N, …
  fstype: string;
  source: string;
  superOpts: string[];
}

function parseMountinfo(text: string): MountLine[] {
  return text
    .split('\n')
    .filter((l) => / - /.test(l))
    .map((l) => {
      const [left, right] = l.split(' - ');
      const f = left.split(' ');
      const [fstype, source, superOpts] = right.split(' ');
      return {
        root: f[3],
        point: f[4],
        opts: f[5].split(','),
        optional: f.slice(6),
        fstype,
        source,
        superOpts: (superOpts ?? '').split(','),
      };
    });
}

/** The last mount on `point` (the one a process sees). */
function mountAt(ms: MountLine[], point: string): MountLine {
  const m = ms.filter((x) => x.point === point).pop();
  if (!m) throw new Error(`no mount on ${point} in:\n${ms.map((x) => x.point).join('\n')}`);
  return m;
}

/** Run a shell script in a fresh busybox container through `run`; returns the result. */
function inside(script: string, mutate?: (c: OciConfig) => void, runtime: Runtime = rt) {
  const b = makeBundle(['/bin/sh', '-c', script], mutate);
  return { ...runtime.run(b), bundle: b };
}

/** The sections a script printed between `== name` markers. */
function sections(out: string): Record<string, string> {
  const res: Record<string, string> = {};
  let cur = '';
  for (const line of out.split('\n')) {
    const m = /^== (\S+)$/.exec(line);
    if (m) res[(cur = m[1])] = '';
    else if (cur) res[cur] += line + '\n';
  }
  return res;
}

/** A create that must fail: returns its stderr after proving it left no state dir, mount or cgroup. */
function createFails(b: Bundle): string {
  const id = uniqueId('bad');
  const r = rt.create(b, id);
  expect(r.code, `create should have failed; stderr: ${r.stderr}`).not.toBe(0);
  expect(existsSync(join(rt.root, id))).toBe(false);
  expect(hostMountsContaining(b.dir)).toEqual([]);
  expect(cgroupDirsNamed(id)).toEqual([]);
  return r.stderr;
}

/** Print the mountinfo line of the container's / . */
const ROOT_LINE = `awk '$5 == "/"' /proc/self/mountinfo`;

const runc = hasRunc() ? new Runtime(existsSync('/usr/sbin/runc') ? '/usr/sbin/runc' : '/usr/bin/runc') : null;
afterEach(() => runc?.cleanup());

describe('mounts of the default (runc spec) config', () => {
  const script = 'echo "== mi"; cat /proc/self/mountinfo; echo "== dev"; ls -l /dev | sed 1d';
  let ms: MountLine[];
  let out: Record<string, string>;
  beforeAll(() => {
    const r = inside(script);
    expect(r.code, r.stderr).toBe(0);
    out = sections(r.stdout);
    ms = parseMountinfo(out.mi);
  });

  it('has every mount type with its flags and data', () => {
    const root = mountAt(ms, '/');
    expect(root.opts).toContain('ro'); // root.readonly
    const proc = mountAt(ms, '/proc');
    expect([proc.fstype, proc.opts[0]]).toEqual(['proc', 'rw']);
    const dev = mountAt(ms, '/dev');
    expect(dev.fstype).toBe('tmpfs');
    expect(dev.opts).toEqual(expect.arrayContaining(['rw', 'nosuid']));
    expect(dev.opts).not.toContain('relatime'); // strictatime
    expect(dev.superOpts).toEqual(expect.arrayContaining(['size=65536k', 'mode=755']));
    const pts = mountAt(ms, '/dev/pts');
    expect(pts.fstype).toBe('devpts');
    expect(pts.opts).toEqual(expect.arrayContaining(['nosuid', 'noexec']));
    expect(pts.superOpts).toEqual(expect.arrayContaining(['gid=5', 'mode=620', 'ptmxmode=666']));
    const shm = mountAt(ms, '/dev/shm');
    expect([shm.fstype, shm.source]).toEqual(['tmpfs', 'shm']);
    expect(shm.opts).toEqual(expect.arrayContaining(['nosuid', 'nodev', 'noexec']));
    expect(mountAt(ms, '/dev/mqueue').fstype).toBe('mqueue');
    const sys = mountAt(ms, '/sys');
    expect(sys.fstype).toBe('sysfs');
    expect(sys.opts).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev', 'noexec']));
  });

  it('mounts the container cgroup read-only at /sys/fs/cgroup', () => {
    const cg = mountAt(ms, '/sys/fs/cgroup');
    const subs = ms.filter((m) => m.point.startsWith('/sys/fs/cgroup/'));
    if (cg.fstype === 'cgroup2') {
      expect(cg.opts).toContain('ro');
    } else {
      // v1: a tmpfs with one read-only mount per hierarchy, each showing the container's own cgroup
      expect(cg.fstype).toBe('tmpfs');
      expect(subs.length).toBeGreaterThan(0);
      for (const s of subs) {
        expect(s.opts, s.point).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev', 'noexec']));
        expect(s.root, s.point).toMatch(/\/t-\d+-/); // the container's cgroup dir, not the host's root
      }
      expect(subs.map((s) => s.point)).toContain('/sys/fs/cgroup/memory');
    }
  });

  it('leaves the mounts slaves of the host (rslave), not shared', () => {
    for (const m of ms) expect(m.optional.join(' '), m.point).not.toMatch(/shared:/);
  });

  it('creates the default devices and /dev symlinks', () => {
    const dev = out.dev;
    for (const [name, maj, min] of [
      ['null', 1, 3],
      ['zero', 1, 5],
      ['full', 1, 7],
      ['random', 1, 8],
      ['urandom', 1, 9],
      ['tty', 5, 0],
    ] as const)
      expect(dev).toMatch(new RegExp(`^crw-rw-rw-\\s+1 root\\s+root\\s+${maj},\\s+${min} .* ${name}$`, 'm'));
    expect(dev).toMatch(/ fd -> \/proc\/self\/fd$/m);
    expect(dev).toMatch(/ stdin -> \/proc\/self\/fd\/0$/m);
    expect(dev).toMatch(/ stdout -> \/proc\/self\/fd\/1$/m);
    expect(dev).toMatch(/ stderr -> \/proc\/self\/fd\/2$/m);
    expect(dev).toMatch(/ ptmx -> pts\/ptmx$/m);
    if (existsSync('/proc/kcore')) expect(dev).toMatch(/ core -> \/proc\/kcore$/m);
    else expect(dev).not.toMatch(/ core -> /);
  });

  it('matches runc: the same mount points, types and per-mount flags, the same /dev', () => {
    if (!runc) throw new Error('runc is not installed (Debian package runc)');
    const r = inside(script, undefined, runc);
    expect(r.code, r.stderr).toBe(0);
    const theirs = sections(r.stdout);
    const tm = parseMountinfo(theirs.mi);
    const key = (m: MountLine) => `${m.point} ${m.fstype}`;
    expect(ms.map(key).sort()).toEqual(tm.map(key).sort());
    for (const p of ['/', '/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/proc/sys', '/proc/acpi'])
      expect(
        mountAt(ms, p)
          .opts.filter((o) => o !== 'relatime')
          .sort(),
        p,
      ).toEqual(
        mountAt(tm, p)
          .opts.filter((o) => o !== 'relatime')
          .sort(),
      );
    const names = (s: string) =>
      s
        .split('\n')
        .filter(Boolean)
        .map((l) => l.replace(/\s+\w{3}\s+\d+\s+[\d:]+\s+/, ' ').replace(/\s+/g, ' '));
    expect(names(out.dev)).toEqual(names(theirs.dev));
  });
});

describe('masked and read-only paths, read-only root', () => {
  it('masks files with /dev/null and directories with an empty read-only tmpfs', () => {
    const r = inside(
      'echo "== keys"; cat /proc/keys; echo "== acpi"; ls -A /proc/acpi; echo "== touch"; touch /proc/acpi/x 2>&1; ' +
        'echo "== fw"; ls -A /sys/firmware; echo "== mi"; cat /proc/self/mountinfo',
    );
    expect(r.code, r.stderr).toBe(0);
    const s = sections(r.stdout);
    expect(readFileSync('/proc/keys', 'utf8').length).toBeGreaterThan(0); // the host's is not empty…
    expect(s.keys).toBe(''); // …the container's is /dev/null
    expect(s.acpi).toBe('');
    expect(s.touch).toMatch(/Read-only file system/);
    expect(s.fw).toBe('');
    const ms = parseMountinfo(s.mi);
    expect(mountAt(ms, '/proc/keys').root).toBe('/null');
    expect(mountAt(ms, '/proc/acpi').fstype).toBe('tmpfs');
    expect(mountAt(ms, '/proc/acpi').opts).toContain('ro');
  });

  it('refuses to mask with a /dev/null that is not the null device', () => {
    // /dev is not a tmpfs here, so /dev/null is whatever the image has: a regular file
    const b = makeBundle(['/bin/true'], (c) => {
      c.mounts = c.mounts.filter((m: OciConfig) => !m.destination.startsWith('/dev'));
    });
    writeFileSync(join(b.rootfs, 'dev/null'), 'secret');
    expect(createFails(b)).toMatch(/masking \/proc\/\w+: \/dev\/null is not the null device/);
  });

  it('makes readonlyPaths read-only and keeps their other flags', () => {
    const r = inside('echo 1 > /proc/sys/vm/overcommit_memory; echo "== mi"; cat /proc/self/mountinfo');
    expect(r.stderr).toMatch(/Read-only file system/);
    const ms = parseMountinfo(sections(r.stdout).mi);
    const sys = mountAt(ms, '/proc/sys');
    expect(sys.opts).toContain('ro');
    expect([sys.fstype, sys.root]).toEqual(['proc', '/sys']);
    // a read-only path on a nosuid,nodev,noexec mount keeps those flags
    const r2 = inside('cat /proc/self/mountinfo', (c) => {
      c.linux.readonlyPaths = ['/dev/shm'];
    });
    expect(mountAt(parseMountinfo(r2.stdout), '/dev/shm').opts.sort()).toEqual(
      ['nodev', 'noexec', 'nosuid', 'relatime', 'ro'].sort(),
    );
  });

  it('read-only root: writes fail; with readonly false they work', () => {
    const ro = inside(`touch /x 2>&1; ${ROOT_LINE}`);
    expect(ro.stdout).toMatch(/Read-only file system/);
    expect(parseMountinfo(ro.stdout)[0].opts).toContain('ro');
    const rw = inside(`touch /x && echo wrote; ${ROOT_LINE}`, (c) => {
      c.root.readonly = false;
    });
    expect(rw.stdout).toMatch(/^wrote$/m);
    expect(parseMountinfo(rw.stdout)[0].opts).toContain('rw');
    expect(existsSync(join(rw.bundle.rootfs, 'x'))).toBe(true);
  });
});

describe('sysctl', () => {
  it('sets namespaced sysctls: net.* in the new netns, kernel.shm* in the new ipc ns; the host keeps its own', () => {
    const hostFwd = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
    const hostShm = readFileSync('/proc/sys/kernel/shmmax', 'utf8');
    const want = hostFwd.trim() === '1' ? '0' : '1';
    const r = inside('cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax /proc/sys/fs/mqueue/msg_max', (c) => {
      c.linux.sysctl = { 'net.ipv4.ip_forward': want, 'kernel.shmmax': '123456789', 'fs.mqueue.msg_max': '42' };
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n').slice(0, 3)).toEqual([want, '123456789', '42']);
    expect(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8')).toBe(hostFwd);
    expect(readFileSync('/proc/sys/kernel/shmmax', 'utf8')).toBe(hostShm);
  });

  it('refuses sysctls that are not namespaced, or whose namespace is the host’s', () => {
    const b = makeBundle(['/bin/true'], (c) => {
      c.linux.sysctl = { 'kernel.panic': '1' };
    });
    expect(createFails(b)).toMatch(/linux\.sysctl: kernel\.panic is not in a separate kernel namespace/);
    const b2 = makeBundle(['/bin/true'], (c) => {
      c.linux.sysctl = { 'net.ipv4.ip_forward': '1' };
      c.linux.namespaces = c.linux.namespaces.filter((n: OciConfig) => n.type !== 'network');
    });
    expect(createFails(b2)).toMatch(/net\.ipv4\.ip_forward is not allowed in the host's network namespace/);
    if (runc) {
      // runc refuses the same config
      const r = runc.run(b);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/kernel\.panic/);
    }
  });
});

describe('binds and tmpfs', () => {
  it('binds a host dir read-only and another read-write; a file bind creates its target', () => {
    const host = scratchDir('skiff-hostdir-');
    writeFileSync(join(host, 'f'), 'from host\n');
    const rwdir = scratchDir('skiff-rwdir-');
    const r = inside(
      'cat /data/f; touch /data/g 2>&1; echo hi > /rw/new; cat /etc/hostfile; echo "== mi"; cat /proc/self/mountinfo',
      (c) => {
        c.mounts.push(
          { destination: '/data', type: 'bind', source: host, options: ['rbind', 'ro', 'nosuid', 'nodev'] },
          { destination: '/rw', type: 'none', source: rwdir, options: ['bind'] },
          { destination: '/etc/hostfile', type: 'bind', source: join(host, 'f'), options: ['bind', 'ro'] },
        );
      },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^from host\n.*Read-only file system\nfrom host\n/);
    expect(readFileSync(join(rwdir, 'new'), 'utf8')).toBe('hi\n');
    expect(existsSync(join(host, 'g'))).toBe(false);
    const ms = parseMountinfo(sections(r.stdout).mi);
    expect(mountAt(ms, '/data').opts).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev']));
    expect(mountAt(ms, '/rw').opts).toContain('rw');
    expect(mountAt(ms, '/etc/hostfile').opts).toContain('ro');
    expect(statSync(join(r.bundle.rootfs, 'etc/hostfile')).isFile()).toBe(true); // made as a file, not a dir
    expect(statSync(join(r.bundle.rootfs, 'data')).isDirectory()).toBe(true);
  });

  it('applies propagation options and recursive attributes (rro)', () => {
    const host = scratchDir('skiff-prop-');
    mkdirSync(join(host, 'sub'));
    // a shared submount under the bind source: "ro" leaves it writable, "rro" does not; without a propagation
    // option it is a slave of the host's (the rslave default), with rprivate it is private
    expect(spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', join(host, 'sub')]).status).toBe(0);
    expect(spawnSync('mount', ['--make-shared', join(host, 'sub')]).status).toBe(0);
    try {
      const r = inside('cat /proc/self/mountinfo', (c) => {
        c.mounts.push(
          { destination: '/shared', type: 'bind', source: host, options: ['rbind', 'rshared'] },
          { destination: '/ro', type: 'bind', source: host, options: ['rbind', 'ro'] },
          { destination: '/rro', type: 'bind', source: host, options: ['rbind', 'rro', 'rprivate'] },
        );
      });
      expect(r.code, r.stderr).toBe(0);
      const ms = parseMountinfo(r.stdout);
      expect(mountAt(ms, '/shared').optional.join(' ')).toMatch(/shared:\d+/);
      expect(mountAt(ms, '/shared/sub').optional.join(' ')).toMatch(/shared:\d+/);
      expect(mountAt(ms, '/ro').opts).toContain('ro');
      expect(mountAt(ms, '/ro/sub').opts).toContain('rw');
      expect(mountAt(ms, '/rro').opts).toContain('ro');
      expect(mountAt(ms, '/rro/sub').opts).toContain('ro');
      expect(mountAt(ms, '/rro/sub').optional).toEqual([]); // private
      expect(mountAt(ms, '/ro/sub').optional.join(' ')).toMatch(/^master:\d+$/);
    } finally {
      spawnSync('umount', ['-l', join(host, 'sub')]);
    }
  });

  it('mounts a tmpfs with size and mode, and copies the image’s files up with tmpcopyup', () => {
    const r = inside('stat -c %a /scratch; ls /etc; echo "== mi"; cat /proc/self/mountinfo', (c) => {
      c.mounts.push(
        { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['size=1m', 'mode=700', 'noexec'] },
        { destination: '/etc', type: 'tmpfs', source: 'tmpfs', options: ['tmpcopyup', 'size=2m'] },
      );
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^700\ngroup\npasswd\n/);
    const ms = parseMountinfo(sections(r.stdout).mi);
    expect(mountAt(ms, '/scratch').superOpts).toEqual(expect.arrayContaining(['size=1024k', 'mode=700']));
    expect(mountAt(ms, '/scratch').opts).toContain('noexec');
    expect(mountAt(ms, '/etc').fstype).toBe('tmpfs');
  });

  it('passes the data of other filesystems through (overlay)', () => {
    const d = scratchDir('skiff-overlay-');
    for (const x of ['lower', 'upper', 'work']) mkdirSync(join(d, x));
    writeFileSync(join(d, 'lower', 'l'), 'lower\n');
    const r = inside('cat /ov/l; echo up > /ov/u; echo "== mi"; cat /proc/self/mountinfo', (c) => {
      c.mounts.push({
        destination: '/ov',
        type: 'overlay',
        source: 'overlay',
        options: [`lowerdir=${d}/lower`, `upperdir=${d}/upper`, `workdir=${d}/work`, 'nodev'],
      });
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^lower$/m);
    expect(readFileSync(join(d, 'upper', 'u'), 'utf8')).toBe('up\n');
    const ov = mountAt(parseMountinfo(sections(r.stdout).mi), '/ov');
    expect(ov.fstype).toBe('overlay');
    expect(ov.opts).toContain('nodev');
    expect(ov.superOpts).toContain(`lowerdir=${d}/lower`);
  });

  it('creates linux.devices with their type, mode and owner', () => {
    const r = inside('ls -ln /dev/fuse /dev/sub/fifo', (c) => {
      c.linux.devices = [
        { type: 'c', path: '/dev/fuse', major: 10, minor: 229, fileMode: 0o600, uid: 7, gid: 8 },
        { type: 'p', path: '/dev/sub/fifo' },
      ];
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^crw-------\s+1 7\s+8\s+10,\s+229 .* \/dev\/fuse$/m);
    expect(r.stdout).toMatch(/^prw-rw-rw-\s+1 0\s+0\s+0 .* \/dev\/sub\/fifo$/m);
  });

  it('binds the host /sys read-only when the container shares the host network namespace', () => {
    const r = inside('(echo > /sys/kernel/uevent_helper) 2>&1; echo "== mi"; cat /proc/self/mountinfo', (c) => {
      c.linux.namespaces = c.linux.namespaces.filter((n: OciConfig) => n.type !== 'network');
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Read-only file system/);
    const sys = mountAt(parseMountinfo(sections(r.stdout).mi), '/sys');
    expect(sys.fstype).toBe('sysfs');
    expect(sys.opts).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev', 'noexec']));
  });

  it('works with --no-pivot (MS_MOVE + chroot)', () => {
    const b = makeBundle(['/bin/sh', '-c', `ls /; ${ROOT_LINE}`]);
    const r = rt.cmd(['run', '--no-pivot', '--bundle', b.dir, uniqueId()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^bin$/m);
    expect(parseMountinfo(r.stdout)[0].opts).toContain('ro');
  });
});

describe('namespaces and propagation', () => {
  it('rootfsPropagation sets the propagation of the new /', () => {
    const prop = (p: string) => {
      const r = inside(ROOT_LINE, (c) => {
        c.linux.rootfsPropagation = p;
      });
      expect(r.code, r.stderr).toBe(0);
      return parseMountinfo(r.stdout)[0].optional.join(' ');
    };
    expect(prop('shared')).toMatch(/^shared:\d+$/);
    expect(prop('private')).toBe('');
    expect(prop('unbindable')).toBe('unbindable');
  });

  it('in a user namespace binds the default devices from the host instead of mknod', () => {
    const r = inside(
      'ls -l /dev/null /dev/zero /dev/tty; echo x > /dev/null && echo ok; echo "== mi"; cat /proc/self/mountinfo',
      (c) => {
        c.linux.namespaces.push({ type: 'user' });
        c.linux.uidMappings = [{ containerID: 0, hostID: 0, size: 65536 }];
        c.linux.gidMappings = [{ containerID: 0, hostID: 0, size: 65536 }];
      },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^crw-rw-rw-.* 1,\s+3 .* \/dev\/null$/m);
    expect(r.stdout).toMatch(/^ok$/m);
    const ms = parseMountinfo(sections(r.stdout).mi);
    for (const d of ['null', 'zero', 'full', 'random', 'urandom', 'tty'])
      expect(mountAt(ms, `/dev/${d}`).root).toBe(`/${d}`);
  });

  it('with a cgroup namespace mounts the hierarchies fresh, rooted at the container’s cgroup', () => {
    const r = inside('cat /proc/self/mountinfo; cat /proc/self/cgroup', (c) => {
      c.linux.namespaces.push({ type: 'cgroup' });
    });
    expect(r.code, r.stderr).toBe(0);
    const ms = parseMountinfo(r.stdout);
    const subs = ms.filter((m) => m.point.startsWith('/sys/fs/cgroup'));
    expect(subs.length).toBeGreaterThan(0);
    for (const m of subs) if (m.fstype !== 'tmpfs') expect(m.root, m.point).toBe('/');
    expect(r.stdout).toMatch(/^\d+:[\w,=]*:\/$/m); // the container sees its cgroup as /
  });
});

describe('mount targets cannot escape the rootfs', () => {
  it('a symlink to a path that exists in the rootfs: the mount lands inside the rootfs', () => {
    const marker = `skiff-escape-${process.pid}-${Date.now()}`;
    const b = makeBundle(['/bin/sh', '-c', `grep ${marker} /proc/self/mountinfo`], (c) => {
      c.mounts.push({ destination: `/link/${marker}`, type: 'tmpfs', source: 'tmpfs', options: [] });
    });
    symlinkSync('/tmp', join(b.rootfs, 'link')); // absolute: /tmp on the host too
    const out = rt.run(b);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(new RegExp(` /tmp/${marker} `));
    expect(existsSync(join('/tmp', marker))).toBe(false); // the host's /tmp is untouched
    expect(statSync(join(b.rootfs, 'tmp', marker)).isDirectory()).toBe(true);
  });

  it('procfs on a symlink is refused (CVE-2019-19921 class)', () => {
    const b = makeBundle(['/bin/true']);
    spawnSync('rm', ['-rf', join(b.rootfs, 'proc')]);
    symlinkSync('/tmp', join(b.rootfs, 'proc'));
    expect(createFails(b)).toMatch(/mounts\[0\]: \/proc must not be reached through a symlink/);
  });

  it('a symlink pointing out of the rootfs to a host dir: a clear error, the host dir untouched', () => {
    const hostDir = scratchDir('skiff-victim-');
    const b = makeBundle(['/bin/true'], (c) => {
      c.mounts.push({ destination: '/evil/x', type: 'tmpfs', source: 'tmpfs', options: [] });
      c.mounts.push({ destination: '/evil2', type: 'bind', source: '/etc', options: ['rbind'] });
    });
    symlinkSync(hostDir, join(b.rootfs, 'evil'));
    expect(createFails(b)).toMatch(/mounts\[7\]: creating \/evil in the rootfs \(dangling symlink\)/);
    expect(readdirSync(hostDir)).toEqual([]);
    // a symlink as the final component: the bind lands inside the rootfs, not on the host dir
    const b2 = makeBundle(['/bin/true'], (c) => {
      c.mounts.push({ destination: '/evil2', type: 'bind', source: '/etc', options: ['rbind'] });
    });
    symlinkSync('/tmp', join(b2.rootfs, 'evil2'));
    const before = hostMountsContaining('/tmp').length;
    expect(rt.run(b2).code).toBe(0);
    expect(hostMountsContaining('/tmp').length).toBe(before);
  });
});

describe('bad configs: clear errors, nothing left behind', () => {
  const cases: [string, (c: OciConfig, b: Bundle) => void, RegExp][] = [
    [
      'a missing rootfs',
      (c, b) => (c.root.path = join(b.dir, 'nope')),
      /root\.path \/.*\/nope: No such file or directory/,
    ],
    [
      'a relative destination',
      (c) => c.mounts.push({ destination: 'data', type: 'tmpfs', source: 'tmpfs' }),
      /mounts\[7\]\.destination data must be an absolute path/,
    ],
    [
      'an idmapped mount',
      (c) => c.mounts.push({ destination: '/x', type: 'bind', source: '/tmp', options: ['rbind', 'idmap'] }),
      /idmap .*not supported/,
    ],
    [
      'uidMappings on a mount',
      (c) =>
        c.mounts.push({
          destination: '/x',
          type: 'bind',
          source: '/tmp',
          options: ['rbind'],
          uidMappings: [{ containerID: 0, hostID: 1000, size: 1 }],
        }),
      /mounts\[7\].*not supported/,
    ],
    [
      'a device of an unknown type',
      (c) => (c.linux.devices = [{ type: 'x', path: '/dev/x', major: 1, minor: 3 }]),
      /linux\.devices\[0\]\.type x must be one of c, b, u, p/,
    ],
    [
      'a device outside /dev',
      (c) => (c.linux.devices = [{ type: 'c', path: '/etc/x', major: 1, minor: 3 }]),
      /linux\.devices\[0\]\.path \/etc\/x must be an absolute path under \/dev/,
    ],
    ['options that are not an array', (c) => (c.mounts[1].options = 'nosuid'), /mounts\[1\]\.options must be an array/],
    [
      'a mount without a type',
      (c) => c.mounts.push({ destination: '/x', source: 'tmpfs' }),
      /mounts\[7\]\.type is required/,
    ],
    [
      'an unknown rootfsPropagation',
      (c) => (c.linux.rootfsPropagation = 'sideways'),
      /linux\.rootfsPropagation sideways/,
    ],
    [
      'a bad tmpfs option',
      (c) => c.mounts.push({ destination: '/x', type: 'tmpfs', source: 'tmpfs', options: ['size=lots'] }),
      /mounts\[7\]: mounting tmpfs on \/x: Invalid argument/,
    ],
    [
      'a missing bind source',
      (c) => c.mounts.push({ destination: '/x', type: 'bind', source: '/nonexistent-skiff', options: ['rbind'] }),
      /mounts\[7\]: bind source \/nonexistent-skiff: No such file or directory/,
    ],
  ];
  for (const [name, mutate, message] of cases)
    it(name, () => {
      const b = makeBundle(['/bin/true']);
      mutate(b.config, b);
      b.save();
      expect(createFails(b)).toMatch(message);
    });
});

describe('console socket', () => {
  // Node can't receive an fd over a unix socket: a few lines of Python do (one message, one fd, no reply).
  const receiver = String.raw`
import os, socket, sys
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path); s.listen(1)
open(out + '.ready', 'w').close()
c, _ = s.accept()
msg, fds, _, _ = socket.recv_fds(c, 4096, 4)
rest = c.recv(16)
data = b''
while True:
    try:
        d = os.read(fds[0], 4096)
    except OSError:
        break
    if not d:
        break
    data += d
open(out, 'w').write('NAME %s FDS %d REST %d\n' % (msg.decode(), len(fds), len(rest)) + data.decode(errors='replace'))
`;

  it('sends the pty master with SCM_RIGHTS (payload: its name) and makes the slave the console and stdio', async () => {
    const dir = scratchDir('skiff-console-');
    const sock = join(dir, 'console.sock');
    const out = join(dir, 'out.txt');
    const py = spawn(existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3', ['-c', receiver, sock, out], {
      stdio: 'ignore',
    });
    const exited = new Promise((res) => py.on('exit', res));
    try {
      for (let i = 0; i < 250 && !existsSync(out + '.ready'); i++) await new Promise((r) => setTimeout(r, 20));
      const b = makeBundle(
        [
          '/bin/sh',
          '-c',
          'tty; stty size; ls -l /dev/console; grep " /dev/console " /proc/self/mountinfo; ls -l /proc/self/fd/',
        ],
        (c) => {
          c.process.terminal = true;
          c.process.consoleSize = { height: 33, width: 111 };
        },
      );
      const id = uniqueId();
      const cr = rt.create(b, id, ['--console-socket', sock]);
      expect(cr.code, cr.stderr).toBe(0);
      expect(rt.cmd(['start', id]).code).toBe(0);
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      const text = readFileSync(out, 'utf8').replace(/\r/g, '');
      expect(text).toMatch(/^NAME \/dev\/pts\/0 FDS 1 REST 0\n/);
      expect(text).toMatch(/^\/dev\/pts\/0$/m);
      expect(text).toMatch(/^33 111$/m);
      expect(text).toMatch(/^c.* 136,\s+0 .* \/dev\/console$/m);
      expect(text).toMatch(/ \/dev\/console .* - devpts /);
      expect(text).toMatch(/ 0 -> \/dev\/pts\/0$/m);
      expect(text).toMatch(/ 2 -> \/dev\/pts\/0$/m);
      expect(rt.cmd(['delete', '--force', id]).code).toBe(0);
    } finally {
      py.kill();
    }
  });
});
