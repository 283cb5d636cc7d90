// cgroups of skiff-runtime: linux.resources applied (seen from the host's cgroup files and from inside the
// container), limits enforced (memory, pids, devices), pause/resume through the freezer, `update`, and every
// directory removed on delete. This host is cgroup v1 ("hybrid"); v2 is exercised in a mount namespace where
// the host's cgroup2 mount (/sys/fs/cgroup/unified) is bound over /sys/fs/cgroup, so the runtime detects v2
// there (that tree has no controllers, but device programs and cgroup.freeze work). Where runc defines the
// behaviour, the same bundle runs through Debian's runc and the results are compared.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  RUNTIME,
  Runtime,
  cgroupDirsNamed,
  cleanupScratch,
  hasRunc,
  makeBundle,
  requireRoot,
  scratchDir,
  uniqueId,
  type Bundle,
  type OciConfig,
  waitFor,
} from './helpers.js';

const CG = '/sys/fs/cgroup';
const PARENT = 'skiff-cgtest'; // cgroupsPath parent for tests that compare with runc
const rt = new Runtime();
const runc = hasRunc() ? new Runtime(existsSync('/usr/sbin/runc') ? '/usr/sbin/runc' : '/usr/bin/runc') : null;

beforeAll(() => requireRoot());
afterEach(() => {
  rt.cleanup();
  runc?.cleanup();
});
afterAll(() => {
  // the shared parent both runtimes leave (runc leaves it too); empty by now
  for (const ctrl of readdirSync(CG)) {
    const d = join(CG, ctrl, PARENT);
    if (existsSync(d)) rmdirSync(d);
  }
  cleanupScratch();
});

function sleepMs(ms: number): void {
  spawnSync('sleep', [String(ms / 1000)]);
}

const read = (p: string): string => readFileSync(p, 'utf8').trim();

/** A v1 host file of container `path` (cgroupsPath) in hierarchy `ctrl`. */
const v1 = (ctrl: string, path: string, file: string): string => read(join(CG, ctrl, path, file));

/** A bundle whose process prints, then a stable "key=value" block we can compare between runtimes. */
function bundleWith(script: string, mutate?: (c: OciConfig) => void): Bundle {
  return makeBundle(['/bin/sh', '-c', script], (c) => {
    c.process.terminal = false;
    mutate?.(c);
  });
}

/** Run to completion (create, start, wait, delete) through `r`. */
function runWith(r: Runtime, b: Bundle, id = uniqueId()): { code: number | null; out: string; err: string } {
  const res = r.run(b, id, { timeout: 60_000 });
  return { code: res.code, out: res.stdout, err: res.stderr };
}

/** create + start, returning the id; the container keeps running until the test deletes it. */
function startDetached(b: Bundle, id = uniqueId(), r: Runtime = rt): string {
  const c = r.create(b, id);
  expect(c.code, c.stderr).toBe(0);
  const s = r.cmd(['start', id]);
  expect(s.code, s.stderr).toBe(0);
  return id;
}

/** `update --resources FILE` (the JSON goes through a file: reading "-" needs a real stdin). */
function update(r: Runtime, id: string, resources: OciConfig): { code: number | null; stderr: string } {
  const f = join(scratchDir('skiff-upd-'), 'resources.json');
  writeFileSync(f, JSON.stringify(resources));
  return r.cmd(['update', '--resources', f, id]);
}

const RESOURCES = {
  memory: { limit: 64 << 20, reservation: 32 << 20, swap: 128 << 20, swappiness: 10 },
  cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0', mems: '0' },
  pids: { limit: 32 },
  blockIO: { weight: 300 },
};

const REPORT = [
  'M=/sys/fs/cgroup/memory; C=/sys/fs/cgroup/cpu; P=/sys/fs/cgroup/pids; S=/sys/fs/cgroup/cpuset',
  'echo limit=$(cat $M/memory.limit_in_bytes) soft=$(cat $M/memory.soft_limit_in_bytes) memsw=$(cat $M/memory.memsw.limit_in_bytes) swappiness=$(cat $M/memory.swappiness)',
  'echo shares=$(cat $C/cpu.shares) quota=$(cat $C/cpu.cfs_quota_us) period=$(cat $C/cpu.cfs_period_us)',
  'echo pids=$(cat $P/pids.max) cpus=$(cat $S/cpuset.cpus) mems=$(cat $S/cpuset.mems)',
  "echo allowed=$(grep Cpus_allowed_list /proc/self/status | tr -d ' \\t' | cut -d: -f2)",
].join('; ');

describe('cgroup v1 (this host)', () => {
  it('applies memory, cpu, cpuset and pids values: on the host files during create and inside the container', () => {
    const id = uniqueId();
    const b = bundleWith(REPORT, (c) => {
      c.linux.resources = { ...c.linux.resources, ...RESOURCES };
    });
    const c = rt.create(b, id);
    expect(c.code, c.stderr).toBe(0);
    const path = `skiff-runtime/${id}`;
    // every v1 hierarchy has the container's directory, and the init is in it
    const pid = rt.state(id).pid;
    for (const line of read(`/proc/${pid}/cgroup`)
      .split('\n')
      .filter((l) => !l.startsWith('0::'))) {
      expect(line.split(':')[2], line).toBe(`/${path}`);
    }
    expect(v1('memory', path, 'memory.limit_in_bytes')).toBe(String(64 << 20));
    expect(v1('memory', path, 'memory.soft_limit_in_bytes')).toBe(String(32 << 20));
    expect(v1('memory', path, 'memory.memsw.limit_in_bytes')).toBe(String(128 << 20));
    expect(v1('cpu', path, 'cpu.shares')).toBe('512');
    expect(v1('cpu', path, 'cpu.cfs_quota_us')).toBe('50000');
    expect(v1('cpu', path, 'cpu.cfs_period_us')).toBe('100000');
    expect(v1('pids', path, 'pids.max')).toBe('32');
    expect(v1('cpuset', path, 'cpuset.cpus')).toBe('0');
    expect(
      readFileSync(
        join(
          CG,
          'blkio',
          path,
          existsSync(join(CG, 'blkio', path, 'blkio.weight')) ? 'blkio.weight' : 'blkio.bfq.weight',
        ),
        'utf8',
      ),
    ).toMatch(/300/);
    // values the config does not set are the kernel's (nothing written)
    expect(v1('cpu', path, 'cpu.cfs_burst_us')).toBe('0');
    expect(rt.cmd(['start', id]).code).toBe(0);
    waitFor(() => rt.state(id).status === 'stopped');
    const out = readFileSync(join(b.dir, 'create.err'), 'utf8');
    expect(out).toBe(''); // no warnings for a clean config
    const d = rt.cmd(['delete', id]);
    expect(d.code, d.stderr).toBe(0);
    expect(cgroupDirsNamed(id)).toEqual([]);
  });

  it('shows the same values inside the container as runc does for the same bundle', () => {
    const b = bundleWith(REPORT, (c) => {
      c.linux.resources = { ...c.linux.resources, ...RESOURCES };
    });
    const ours = runWith(rt, b);
    expect(ours.code, ours.err).toBe(0);
    expect(ours.out).toContain(`limit=${64 << 20} soft=${32 << 20} memsw=${128 << 20} swappiness=10`);
    expect(ours.out).toContain('shares=512 quota=50000 period=100000');
    expect(ours.out).toContain('pids=32 cpus=0 mems=0');
    expect(ours.out).toContain('allowed=0\n');
    if (!runc) return;
    const theirs = runWith(runc, b);
    expect(theirs.code, theirs.err).toBe(0);
    expect(ours.out).toBe(theirs.out);
  });

  it('puts an absolute cgroupsPath under each hierarchy root and a relative one under the runtime own cgroup', () => {
    const id = uniqueId();
    const b = bundleWith('true', (c) => {
      c.linux.cgroupsPath = `/${PARENT}/${id}`;
    });
    expect(rt.create(b, id).code).toBe(0);
    for (const ctrl of ['memory', 'cpu', 'pids', 'freezer', 'devices', 'cpuset', 'systemd'])
      expect(existsSync(join(CG, ctrl, PARENT, id)), ctrl).toBe(true);
    expect(rt.cmd(['delete', '--force', id]).code).toBe(0);
    expect(cgroupDirsNamed(id)).toEqual([]);

    // relative: below the cgroup this test process (and so the runtime) is in, per hierarchy
    const own = Object.fromEntries(
      read('/proc/self/cgroup')
        .split('\n')
        .map((l) => l.split(':'))
        .map(([, names, p]) => [names, p]),
    );
    const rel = uniqueId('rel');
    const b2 = bundleWith('true', (c) => {
      c.linux.cgroupsPath = rel;
    });
    expect(rt.create(b2, rel).code).toBe(0);
    for (const ctrl of ['memory', 'pids']) {
      const base = own[ctrl] === '/' ? '' : own[ctrl];
      expect(existsSync(join(CG, ctrl, base, rel)), `${ctrl} ${base}/${rel}`).toBe(true);
    }
    expect(rt.cmd(['delete', '--force', rel]).code).toBe(0);
    expect(cgroupDirsNamed(rel)).toEqual([]);
  });

  it('enforces the memory limit: a process allocating past it is OOM-killed', () => {
    const b = bundleWith('head -c 300000000 /dev/zero | tail > /dev/null; echo tail=$?', (c) => {
      c.linux.resources.memory = { limit: 32 << 20, swap: 32 << 20 };
    });
    const id = startDetached(b);
    waitFor(() => rt.state(id).status === 'stopped', 20_000);
    // the kernel's own count, read before delete removes the cgroup
    const oom = /oom_kill (\d+)/.exec(v1('memory', `skiff-runtime/${id}`, 'memory.oom_control'));
    expect(Number(oom?.[1])).toBeGreaterThanOrEqual(1);
    expect(Number(v1('memory', `skiff-runtime/${id}`, 'memory.max_usage_in_bytes'))).toBeLessThanOrEqual(32 << 20);
    // without the limit the same pipeline completes: the kill above came from the cgroup
    const free = runWith(rt, bundleWith('head -c 100000000 /dev/zero | tail > /dev/null; echo tail=$?'));
    expect(free.out).toContain('tail=0');
  });

  it('enforces pids.limit: a fork loop is stopped at the limit', () => {
    // the loop runs in a subshell (busybox sh exits when a fork fails); at the limit only builtins work
    const script =
      '(i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done) 2>/dev/null; ' +
      'read c < /sys/fs/cgroup/pids/pids.current; echo current=$c; read e < /sys/fs/cgroup/pids/pids.events; echo $e; kill -9 -1';
    const b = bundleWith(script, (c) => {
      c.linux.resources.pids = { limit: 10 };
    });
    const r = runWith(rt, b);
    expect(r.code, r.err).toBe(0);
    const current = Number(/current=(\d+)/.exec(r.out)?.[1]);
    expect(current).toBeGreaterThanOrEqual(5); // the loop got going...
    expect(current).toBeLessThanOrEqual(10); // ...and never past the limit
    const max = /max (\d+)/.exec(r.out);
    expect(Number(max?.[1])).toBeGreaterThan(0); // forks were refused
  });

  it('sets hugepageLimits in the unified tree when there is no v1 hugetlb hierarchy (hybrid host)', () => {
    const v1Hugetlb = readFileSync('/proc/self/mountinfo', 'utf8').includes(' cgroup rw,hugetlb');
    const id = uniqueId();
    const b = bundleWith('true', (c) => {
      c.linux.resources.hugepageLimits = [{ pageSize: '2MB', limit: 4 << 20 }];
    });
    const r = rt.create(b, id);
    expect(r.code, r.stderr).toBe(0);
    const dir = v1Hugetlb ? join(CG, 'hugetlb', 'skiff-runtime', id) : join(CG, 'unified', 'skiff-runtime', id);
    expect(read(join(dir, v1Hugetlb ? 'hugetlb.2MB.limit_in_bytes' : 'hugetlb.2MB.max'))).toBe(String(4 << 20));
    expect(read(join(dir, 'cgroup.procs'))).toBe(String(rt.state(id).pid));
    expect(rt.cmd(['delete', '--force', id]).code).toBe(0);
    expect(existsSync(dir)).toBe(false);
    expect(cgroupDirsNamed(id)).toEqual([]);
  });

  it('makes cgroup errors config errors: bad values fail create before anything exists', () => {
    const cases: Array<[(c: OciConfig) => void, RegExp]> = [
      [
        (c) => (c.linux.resources.memory = { limit: 100 << 20, swap: 50 << 20 }),
        /memory\.swap .*must not be below memory\.limit/,
      ],
      [(c) => (c.linux.resources.memory = { limit: -7 }), /memory\.limit must be -1/],
      [(c) => (c.linux.resources.cpu = { shares: 1 }), /cpu\.shares must be 0 \(default\) or between 2 and 262144/],
      [(c) => (c.linux.resources.cpu = { quota: -2 }), /cpu\.quota must be -1/],
      [(c) => (c.linux.resources.pids = { limit: 'ten' }), /pids\.limit must be an integer/],
      [(c) => (c.linux.resources.devices = [{ allow: true, access: 'rwx' }]), /devices\[0\]\.access/],
      [(c) => (c.linux.resources.unified = { 'memory.max': '1' }), /unified needs cgroup v2/],
      [(c) => (c.linux.cgroupsPath = 'system.slice:skiff:abc'), /systemd driver.*slice:prefix:name/],
      [(c) => (c.linux.cgroupsPath = '/a/../../b'), /must not contain "\.\."/],
    ];
    for (const [mutate, message] of cases) {
      const id = uniqueId('bad');
      const b = bundleWith('true', mutate);
      const r = rt.create(b, id);
      expect(r.code, `${message}`).not.toBe(0);
      expect(r.stderr).toMatch(message);
      expect(cgroupDirsNamed(id)).toEqual([]);
      expect(existsSync(join(rt.root, id))).toBe(false);
    }
  });

  describe('devices', () => {
    // /dev/kmsg (c 1:11) is bound in from the host: the runtime's deny-all plus defaults must refuse it. The probe
    // opens it write-only, which the kernel allows without capabilities (a read open needs CAP_SYSLOG here).
    const withKmsg = (script: string, rules: OciConfig[] = []) =>
      bundleWith(script, (c) => {
        c.mounts.push({ destination: '/dev/kmsg', type: 'bind', source: '/dev/kmsg', options: ['bind'] });
        c.linux.resources.devices = [{ allow: false, access: 'rwm' }, ...rules];
      });
    const PROBE =
      'echo x > /dev/null && echo null=ok; head -c 4 /dev/urandom | wc -c | sed s/^/urandom=/; ' +
      '(exec 3>/dev/kmsg) 2>/dev/null && echo kmsg-write=ok || echo kmsg-write=denied; ' +
      "(exec 3>/dev/kmsg) 2>&1 | grep -o 'Operation not permitted' | head -1";

    it('allows the default devices, refuses others with EPERM, honours allow rules; as runc', () => {
      const denied = runWith(rt, withKmsg(PROBE));
      expect(denied.code, denied.err).toBe(0);
      expect(denied.out).toContain('null=ok');
      expect(denied.out).toContain('urandom=4');
      expect(denied.out).toContain('kmsg-write=denied');
      expect(denied.out).toContain('Operation not permitted');
      const writable = runWith(rt, withKmsg(PROBE, [{ allow: true, type: 'c', major: 1, minor: 11, access: 'w' }]));
      expect(writable.out).toContain('kmsg-write=ok');
      // access is per kind: read access does not allow a write open
      const readOnly = runWith(rt, withKmsg(PROBE, [{ allow: true, type: 'c', major: 1, minor: 11, access: 'r' }]));
      expect(readOnly.out).toContain('kmsg-write=denied');
      // a later deny of the same device takes back an earlier allow (v1 removes exact matches only)
      const laterRules = [
        { allow: true, type: 'c', major: 1, minor: 11, access: 'rwm' },
        { allow: false, type: 'c', major: 1, minor: 11, access: 'w' },
      ];
      const later = runWith(rt, withKmsg(PROBE, laterRules));
      expect(later.out).toContain('kmsg-write=denied');
      if (!runc) return;
      expect(denied.out).toBe(runWith(runc, withKmsg(PROBE)).out);
      expect(writable.out).toBe(
        runWith(runc, withKmsg(PROBE, [{ allow: true, type: 'c', major: 1, minor: 11, access: 'w' }])).out,
      );
      expect(later.out).toBe(runWith(runc, withKmsg(PROBE, laterRules)).out);
    });

    it('writes the rules in order to devices.deny/allow (devices.list shows the whitelist)', () => {
      const id = uniqueId();
      const b = withKmsg('true', [{ allow: true, type: 'c', major: 1, minor: 11, access: 'rw' }]);
      expect(rt.create(b, id).code).toBe(0);
      const list = v1('devices', `skiff-runtime/${id}`, 'devices.list').split('\n');
      expect(list).toContain('c 1:11 rw');
      expect(list).toContain('c 1:3 rwm');
      expect(list).toContain('c 136:* rwm');
      expect(list).not.toContain('a *:* rwm');
    });
  });

  it('pauses and resumes through the freezer', () => {
    const b = bundleWith('i=0; while true; do i=$((i+1)); echo $i > /dev/shm/n; sleep 0.02; done');
    const id = startDetached(b);
    const pid = rt.state(id).pid;
    const counter = () => Number(read(`/proc/${pid}/root/dev/shm/n`) || '0');
    waitFor(() => existsSync(`/proc/${pid}/root/dev/shm/n`) && counter() > 0);
    const p = rt.cmd(['pause', id]);
    expect(p.code, p.stderr).toBe(0);
    expect(rt.state(id).status).toBe('paused');
    expect(v1('freezer', `skiff-runtime/${id}`, 'freezer.state')).toBe('FROZEN');
    const frozenAt = counter();
    sleepMs(300);
    expect(counter()).toBe(frozenAt);
    const r = rt.cmd(['resume', id]);
    expect(r.code, r.stderr).toBe(0);
    expect(rt.state(id).status).toBe('running');
    expect(v1('freezer', `skiff-runtime/${id}`, 'freezer.state')).toBe('THAWED');
    waitFor(() => counter() > frozenAt);
    // a paused container can be deleted with --force, and nothing is left
    expect(rt.cmd(['pause', id]).code).toBe(0);
    const d = rt.cmd(['delete', '--force', id]);
    expect(d.code, d.stderr).toBe(0);
    expect(cgroupDirsNamed(id)).toEqual([]);
  });

  it('kill --all signals every process in the cgroup; ps lists them', () => {
    const b = bundleWith('sleep 100 & sleep 100 & wait');
    const id = startDetached(b);
    waitFor(() => (JSON.parse(rt.cmd(['ps', '--format', 'json', id]).stdout || '[]') as number[]).length === 3);
    const pids = JSON.parse(rt.cmd(['ps', '--format', 'json', id]).stdout) as number[];
    const cgroupProcs = v1('pids', `skiff-runtime/${id}`, 'cgroup.procs').split('\n').map(Number).sort();
    expect([...pids].sort()).toEqual(cgroupProcs);
    const k = rt.cmd(['kill', '--all', id, 'KILL']);
    expect(k.code, k.stderr).toBe(0);
    waitFor(() => rt.state(id).status === 'stopped');
    for (const p of pids)
      expect(existsSync(`/proc/${p}/cmdline`) && read(`/proc/${p}/stat`).split(' ')[2] !== 'Z').toBe(false);
  });

  it('update changes limits of a running container (memory raise with swap, cpu, pids)', () => {
    const b = bundleWith('sleep 100', (c) => {
      c.linux.resources.memory = { limit: 32 << 20, swap: 64 << 20 };
      c.linux.resources.cpu = { shares: 256 };
      c.linux.resources.pids = { limit: 10 };
    });
    const id = startDetached(b);
    const path = `skiff-runtime/${id}`;
    // raising both needs memsw first (the kernel keeps limit <= memsw)
    const up = update(rt, id, {
      memory: { limit: 256 << 20, swap: 512 << 20 },
      cpu: { shares: 1024, quota: 20000, period: 100000 },
      pids: { limit: 50 },
    });
    expect(up.code, up.stderr).toBe(0);
    expect(v1('memory', path, 'memory.limit_in_bytes')).toBe(String(256 << 20));
    expect(v1('memory', path, 'memory.memsw.limit_in_bytes')).toBe(String(512 << 20));
    expect(v1('cpu', path, 'cpu.shares')).toBe('1024');
    expect(v1('cpu', path, 'cpu.cfs_quota_us')).toBe('20000');
    expect(v1('pids', path, 'pids.max')).toBe('50');
    // and back down: the limit must shrink first
    const down = update(rt, id, { memory: { limit: 16 << 20, swap: 16 << 20 } });
    expect(down.code, down.stderr).toBe(0);
    expect(v1('memory', path, 'memory.limit_in_bytes')).toBe(String(16 << 20));
    expect(v1('memory', path, 'memory.memsw.limit_in_bytes')).toBe(String(16 << 20));
    // unlimited
    const unl = update(rt, id, { memory: { limit: -1, swap: -1 }, pids: { limit: -1 } });
    expect(unl.code, unl.stderr).toBe(0);
    expect(Number(v1('memory', path, 'memory.limit_in_bytes'))).toBeGreaterThan(2 ** 60);
    expect(v1('pids', path, 'pids.max')).toBe('max');
    // a value the merged config refuses changes nothing
    const bad = update(rt, id, { memory: { limit: 64 << 20, swap: 32 << 20 } });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/swap .*must not be below memory\.limit/);
    expect(v1('memory', path, 'memory.limit_in_bytes')).not.toBe(String(64 << 20));
    // the update is saved: a later update that sets only swap is checked against the saved limit
    const swapOnly = update(rt, id, { memory: { swap: 1 << 20 } });
    expect(swapOnly.code).not.toBe(0);
  });

  it('update of devices replaces the rules of a running container', () => {
    const b = bundleWith('sleep 100', (c) => {
      c.mounts.push({ destination: '/dev/kmsg', type: 'bind', source: '/dev/kmsg', options: ['bind'] });
    });
    const id = startDetached(b);
    const pid = rt.state(id).pid;
    // nsenter into the mount namespace only (we stay in the host's cgroup): the node is there and usable
    const hostOpen = spawnSync('nsenter', ['-t', String(pid), '-m', '--', '/bin/sh', '-c', 'exec 3>/dev/kmsg']);
    expect(hostOpen.status).toBe(0);
    // exec joins the container's cgroup
    const execOpen = () =>
      rt.cmd(['exec', id, '/bin/sh', '-c', '(exec 3>/dev/kmsg) && echo open']).stdout.includes('open');
    expect(execOpen()).toBe(false);
    const allow = [
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 11, access: 'w' },
    ];
    expect(update(rt, id, { devices: allow }).code).toBe(0);
    expect(execOpen()).toBe(true);
    expect(update(rt, id, { devices: [{ allow: false, access: 'rwm' }] }).code).toBe(0);
    expect(execOpen()).toBe(false);
  });

  it('delete removes the directory in every hierarchy, also for a failed create', () => {
    const id = startDetached(bundleWith('sleep 100'));
    const dirs = cgroupDirsNamed(id);
    expect(dirs.length).toBeGreaterThanOrEqual(8);
    expect(rt.cmd(['delete', '--force', id]).code).toBe(0);
    expect(cgroupDirsNamed(id)).toEqual([]);

    // a create that fails after the cgroup exists (the process cannot be found) leaves nothing
    const bad = uniqueId();
    const b = bundleWith('true', (c) => {
      c.process.args = ['/no/such/binary'];
      c.linux.resources.pids = { limit: 5 };
    });
    const r = rt.create(b, bad);
    if (r.code === 0) rt.cmd(['start', bad]); // runtimes may report a missing binary at start
    rt.cmd(['delete', '--force', bad]);
    expect(cgroupDirsNamed(bad)).toEqual([]);
  });
});

// v2: the runtime runs in a private mount namespace where /sys/fs/cgroup is the host's cgroup2 tree.
describe('cgroup v2 (forced with the hybrid host unified tree)', () => {
  let v2: Runtime;
  beforeAll(() => {
    const wrapper = join(scratchDir('skiff-v2-'), 'skiff-runtime-v2');
    writeFileSync(
      wrapper,
      '#!/bin/sh\nexec unshare -m sh -c \'mount --make-rprivate / && mount --bind /sys/fs/cgroup/unified /sys/fs/cgroup && exec "$0" "$@"\' ' +
        `${RUNTIME} "$@"\n`,
    );
    chmodSync(wrapper, 0o755);
    v2 = new Runtime(wrapper);
  });
  afterEach(() => v2.cleanup());

  const U = `${CG}/unified`;
  // a cgroup2 mount inside the container needs its own cgroup namespace in the forced setup
  const v2Bundle = (script: string, mutate?: (c: OciConfig) => void) =>
    bundleWith(script, (c) => {
      c.mounts = c.mounts.filter((m: OciConfig) => m.destination !== '/sys/fs/cgroup');
      c.mounts.push({ destination: '/dev/kmsg', type: 'bind', source: '/dev/kmsg', options: ['bind'] });
      mutate?.(c);
    });

  it('detects v2 and puts the container in one directory of the unified tree', () => {
    const id = uniqueId();
    const c = v2.create(v2Bundle('true'), id);
    expect(c.code, c.stderr).toBe(0);
    expect(read(`${U}/skiff-runtime/${id}/cgroup.procs`)).toBe(String(v2.state(id).pid));
    expect(read(`/proc/${v2.state(id).pid}/cgroup`)).toContain(`0::/skiff-runtime/${id}`);
    expect(v2.cmd(['delete', '--force', id]).code).toBe(0);
    expect(existsSync(`${U}/skiff-runtime/${id}`)).toBe(false);
  });

  it('enforces device rules with an eBPF program, and update replaces it', () => {
    const id = startDetached(v2Bundle('sleep 100'), uniqueId(), v2);
    const execOpen = () =>
      v2.cmd(['exec', id, '/bin/sh', '-c', '(exec 3>/dev/kmsg) && echo open']).stdout.includes('open');
    expect(execOpen()).toBe(false);
    const allow = [
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 11, access: 'w' },
    ];
    const u = update(v2, id, { devices: allow });
    expect(u.code, u.stderr).toBe(0);
    expect(execOpen()).toBe(true);
    // read access was not granted (the open fails for the cgroup's reason, before the CAP_SYSLOG check)
    expect(v2.cmd(['exec', id, '/bin/sh', '-c', '(exec 3</dev/kmsg) && echo open']).stdout).not.toContain('open');
    expect(update(v2, id, { devices: [] }).code).toBe(0);
    expect(execOpen()).toBe(false);
    expect(v2.cmd(['exec', id, '/bin/sh', '-c', 'echo x > /dev/null && echo null-ok']).stdout).toContain('null-ok');
  });

  it('gives the same device answers as runc does on v2 (its own eBPF program)', () => {
    const wrapper = join(scratchDir('skiff-v2-runc-'), 'runc-v2');
    writeFileSync(
      wrapper,
      '#!/bin/sh\nexec unshare -m sh -c \'mount --make-rprivate / && mount --bind /sys/fs/cgroup/unified /sys/fs/cgroup && exec "$0" "$@"\' ' +
        `${runc?.binary ?? '/usr/sbin/runc'} "$@"\n`,
    );
    chmodSync(wrapper, 0o755);
    const runcV2 = new Runtime(wrapper);
    const probe =
      'echo x > /dev/null && echo null=ok; head -c 4 /dev/urandom | wc -c | sed s/^/urandom=/; ' +
      '(exec 3>/dev/kmsg) 2>/dev/null && echo kmsg-write=ok || echo kmsg-write=denied; ' +
      '(exec 3</dev/kmsg) 2>/dev/null && echo kmsg-read=ok || echo kmsg-read=denied';
    const rules: OciConfig[][] = [
      [{ allow: false, access: 'rwm' }],
      [
        { allow: false, access: 'rwm' },
        { allow: true, type: 'c', major: 1, minor: 11, access: 'w' },
      ],
      [
        { allow: false, access: 'rwm' },
        { allow: true, type: 'c', major: 1, minor: 11, access: 'rwm' },
        { allow: false, type: 'c', major: 1, minor: 11, access: 'w' },
      ],
      [
        { allow: true, access: 'rwm' },
        { allow: false, type: 'c', major: 1, minor: 11, access: 'w' },
      ],
    ];
    const seen: string[] = [];
    for (const r of rules) {
      const b = v2Bundle(probe, (c) => (c.linux.resources.devices = r));
      const ours = runWith(v2, b);
      expect(ours.code, ours.err).toBe(0);
      seen.push(ours.out);
      if (!runc) continue;
      try {
        expect(ours.out).toBe(runWith(runcV2, b).out);
      } finally {
        runcV2.cleanup();
      }
    }
    expect(seen[0]).toContain('kmsg-write=denied');
    expect(seen[1]).toContain('kmsg-write=ok');
    expect(seen[2]).toContain('kmsg-write=denied');
    expect(seen[3]).toContain('kmsg-write=denied');
    for (const out of seen) expect(out).toContain('null=ok\nurandom=4');

    // taking back part of a wildcard rule cannot be expressed in v1: refused in both modes, as runc does
    const hole = [
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: -1, access: 'rwm' },
      { allow: false, type: 'c', major: 1, minor: 11, access: 'w' },
    ];
    for (const r of [v2, rt]) {
      const id = uniqueId('hole');
      const c = r.create(
        v2Bundle('true', (cfg) => (cfg.linux.resources.devices = hole)),
        id,
      );
      expect(c.code).not.toBe(0);
      expect(c.stderr).toMatch(
        /devices\[2\]: denying "c 1:11 w" would punch a hole in the earlier wildcard rule "c 1:\* rwm"/,
      );
    }
    if (runc) {
      const theirs = runWith(
        runcV2,
        v2Bundle('true', (cfg) => (cfg.linux.resources.devices = hole)),
      );
      runcV2.cleanup();
      expect(theirs.code).not.toBe(0);
      expect(theirs.err).toMatch(/cannot punch hole in existing wildcard rule/);
    }
  });

  it('pauses and resumes with cgroup.freeze', () => {
    const id = startDetached(
      v2Bundle('i=0; while true; do i=$((i+1)); echo $i > /dev/shm/n; sleep 0.02; done'),
      uniqueId(),
      v2,
    );
    const pid = v2.state(id).pid;
    const counter = () => Number(read(`/proc/${pid}/root/dev/shm/n`) || '0');
    waitFor(() => existsSync(`/proc/${pid}/root/dev/shm/n`) && counter() > 0);
    expect(v2.cmd(['pause', id]).code).toBe(0);
    expect(read(`${U}/skiff-runtime/${id}/cgroup.events`)).toContain('frozen 1');
    expect(v2.state(id).status).toBe('paused');
    const at = counter();
    sleepMs(300);
    expect(counter()).toBe(at);
    expect(v2.cmd(['resume', id]).code).toBe(0);
    expect(read(`${U}/skiff-runtime/${id}/cgroup.events`)).toContain('frozen 0');
    waitFor(() => counter() > at);
    // kill --all uses cgroup.kill
    expect(v2.cmd(['kill', '--all', id, 'KILL']).code).toBe(0);
    waitFor(() => v2.state(id).status === 'stopped');
    expect(v2.cmd(['delete', id]).code).toBe(0);
    expect(existsSync(`${U}/skiff-runtime/${id}`)).toBe(false);
  });

  it('refuses v1-only settings and controllers the tree lacks, with clear errors', () => {
    const cases: Array<[(c: OciConfig) => void, RegExp]> = [
      [(c) => (c.linux.resources.cpu = { realtimeRuntime: 1000 }), /realtime.*not supported on cgroup v2/],
      [(c) => (c.linux.resources.network = { classID: 1 }), /network .*not supported on cgroup v2/],
      // the forced tree has no memory controller: the write names the file and why
      [(c) => (c.linux.resources.memory = { limit: 64 << 20 }), /memory\.max.*(No such file|not enabled)/],
    ];
    for (const [mutate, message] of cases) {
      const id = uniqueId('bad');
      const r = v2.create(v2Bundle('true', mutate), id);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(message);
      expect(existsSync(`${U}/skiff-runtime/${id}`)).toBe(false);
    }
  });
});
