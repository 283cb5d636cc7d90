// The container process's identity and confinement (native/runtime/security.c, caps.c, seccomp.c), checked from
// inside busybox containers: capability sets, no_new_privs, uid/gid/groups, umask, rlimits, seccomp denials,
// personality, oom_score_adj, scheduler, I/O priority; and configs this host cannot honour (AppArmor, SELinux,
// CAP_SYS_RESOURCE) failing clearly with nothing left behind. Where runc defines the behaviour, the same bundle
// runs through Debian's runc and the outputs are compared.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  Runtime,
  cgroupDirsNamed,
  cleanupScratch,
  hasRunc,
  makeBundle,
  requireRoot,
  uniqueId,
  type OciConfig,
  type Result,
} from './helpers.js';

const rt = new Runtime();
const runc = new Runtime('/usr/sbin/runc');
beforeAll(() => requireRoot());
afterEach(() => {
  rt.cleanup();
  if (hasRunc()) runc.cleanup();
});
afterAll(() => cleanupScratch());

/** Docker's default capability set (moby's oci/caps/defaults.go). */
const DOCKER_CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];
/** The same set as a mask: bits 0,1,3,4,5,6,7,8,10,13,18,27,29,31. */
const DOCKER_CAP_MASK = '00000000a80425fb';

interface DockerRule {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: unknown[];
  includes?: { arches?: string[]; caps?: string[]; minKernel?: string };
  excludes?: { arches?: string[]; caps?: string[] };
}

/** Docker's profile (moby's format, with includes/excludes) turned into the OCI linux.seccomp that dockerd
 * generates for an amd64 container with the default capabilities. */
function dockerSeccomp(): OciConfig {
  const profile = JSON.parse(readFileSync('/work/shared/specs/docker-default-seccomp.json', 'utf8'));
  const caps = new Set(DOCKER_CAPS);
  const syscalls = (profile.syscalls as DockerRule[])
    .filter((r) => {
      const inc = r.includes ?? {};
      const exc = r.excludes ?? {};
      if (inc.arches && !inc.arches.includes('amd64')) return false;
      if (inc.caps && !inc.caps.every((c) => caps.has(c))) return false;
      if (exc.arches?.includes('amd64')) return false;
      if (exc.caps?.some((c) => caps.has(c))) return false;
      return true;
    })
    .map((r) => ({
      names: r.names,
      action: r.action,
      ...(r.errnoRet !== undefined ? { errnoRet: r.errnoRet } : {}),
      ...(r.args ? { args: r.args } : {}),
    }));
  return {
    defaultAction: profile.defaultAction,
    defaultErrnoRet: profile.defaultErrnoRet,
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls,
  };
}

/** Docker's defaults on top of runc's spec: its caps (no inheritable/ambient), no_new_privs, its seccomp. */
function dockerDefaults(c: OciConfig): void {
  c.process.capabilities = { bounding: DOCKER_CAPS, effective: DOCKER_CAPS, permitted: DOCKER_CAPS };
  c.process.noNewPrivileges = true;
  c.linux.seccomp = dockerSeccomp();
}

/** A bundle running `script` under busybox sh, with a writable tmpfs on /tmp (the rootfs is read-only). */
function sh(script: string, mutate?: (c: OciConfig) => void) {
  return makeBundle(['/bin/sh', '-c', script], (c) => {
    c.mounts.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] });
    mutate?.(c);
  });
}

/** sh() for a user namespace: the mapped root must be able to reach the rootfs through the 0700 scratch dir. */
function shUserns(script: string, mutate?: (c: OciConfig) => void) {
  const b = sh(script, mutate);
  chmodSync(b.dir, 0o755);
  return b;
}

/** `run` a script and return its output, failing the test with the runtime's stderr if it did not exit 0. */
function runOk(r: Runtime, script: string, mutate?: (c: OciConfig) => void, make = sh): string {
  const res = r.run(make(script, mutate));
  expect(res.code, `${r.binary}: ${res.stderr}`).toBe(0);
  return res.stdout;
}

/** The named lines of /proc/self/status, as "Name:\tvalue" lines. */
const STATUS = (names: string[]) => `grep -E '^(${names.join('|')}):' /proc/self/status`;

/** create must fail with a message matching `pattern`, leaving no state dir, cgroup or process behind. */
function expectCleanFailure(mutate: (c: OciConfig) => void, pattern: RegExp): Result {
  const b = sh('echo should-not-run', mutate);
  const id = uniqueId('sec');
  const res = rt.create(b, id);
  expect(res.code, 'create should have failed').not.toBe(0);
  expect(res.stderr).toMatch(pattern);
  expect(existsSync(join(rt.root, id)), 'state dir left behind').toBe(false);
  expect(cgroupDirsNamed(id), 'cgroup left behind').toEqual([]);
  expect(rt.cmd(['state', id]).code).not.toBe(0);
  return res;
}

describe("Docker's defaults", () => {
  const script = `${STATUS(['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp'])}
    unshare -U true 2>/dev/null; echo unshare=$?
    echo allowed-syscalls-work`;

  it('gives exactly its capability set, no_new_privs and a seccomp filter', () => {
    const out = runOk(rt, script, dockerDefaults);
    expect(out).toContain(`CapInh:\t0000000000000000`);
    expect(out).toContain(`CapPrm:\t${DOCKER_CAP_MASK}`);
    expect(out).toContain(`CapEff:\t${DOCKER_CAP_MASK}`);
    expect(out).toContain(`CapBnd:\t${DOCKER_CAP_MASK}`);
    expect(out).toContain(`CapAmb:\t0000000000000000`);
    expect(out).toContain('NoNewPrivs:\t1');
    expect(out).toContain('Seccomp:\t2');
    // unshare(CLONE_NEWUSER) is only allowed with CAP_SYS_ADMIN in Docker's profile
    expect(out).toContain('unshare=1');
    expect(out).toContain('allowed-syscalls-work');
  });

  it.runIf(hasRunc())('matches runc on the same bundle', () => {
    expect(runOk(rt, script, dockerDefaults)).toBe(runOk(runc, script, dockerDefaults));
  });

  it('denies with EPERM what the profile does not allow', () => {
    const out = runOk(rt, 'unshare -U true; echo rc=$?', dockerDefaults);
    expect(out).toContain('rc=1');
    const res = rt.run(sh('unshare -U true', dockerDefaults));
    expect(res.stderr + res.stdout).toMatch(/Operation not permitted/);
  });

  it('loads the filter before dropping privileges when noNewPrivileges is false', () => {
    const out = runOk(
      rt,
      `${STATUS(['Uid', 'NoNewPrivs', 'Seccomp'])}; unshare -U true 2>/dev/null; echo rc=$?`,
      (c) => {
        dockerDefaults(c);
        c.process.noNewPrivileges = false;
        c.process.user = { uid: 1000, gid: 1000 };
      },
    );
    expect(out).toMatch(/Uid:\t1000\t1000\t1000\t1000/);
    expect(out).toContain('NoNewPrivs:\t0');
    expect(out).toContain('Seccomp:\t2');
    expect(out).toContain('rc=1');
  });
});

describe('seccomp', () => {
  const denyMkdir = (c: OciConfig) => {
    c.linux.seccomp = {
      defaultAction: 'SCMP_ACT_ALLOW',
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
      syscalls: [
        // no_such_syscall_at_all is unknown to libseccomp: skipped, as runc does
        { names: ['mkdir', 'mkdirat', 'no_such_syscall_at_all'], action: 'SCMP_ACT_ERRNO', errnoRet: 28 },
        // same action as the default: skipped (libseccomp would refuse it)
        { names: ['getpid'], action: 'SCMP_ACT_ALLOW' },
      ],
    };
  };
  const mkdirScript = 'mkdir /tmp/d; echo rc=$?; touch /tmp/f && echo touch-ok';

  it('returns the rule errnoRet for a denied syscall and allows the rest', () => {
    const res = rt.run(sh(mkdirScript, denyMkdir));
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('rc=1');
    expect(res.stdout).toContain('touch-ok');
    expect(res.stderr).toMatch(/No space left on device/); // errno 28
  });

  it.runIf(hasRunc())('denies mkdir like runc', () => {
    const ours = rt.run(sh(mkdirScript, denyMkdir));
    const theirs = runc.run(sh(mkdirScript, denyMkdir));
    expect(ours.stdout).toBe(theirs.stdout);
    expect(ours.stderr).toBe(theirs.stderr);
  });

  it('matches argument conditions, including MASKED_EQ and several comparisons on one argument', () => {
    // without CAP_SYS_ADMIN unshare(CLONE_NEWUTS) fails with EPERM; the rule answers CLONE_NEWUSER with EACCES
    const script = `unshare -U true 2>&1; unshare -u true 2>&1
      linux32 uname -m 2>/dev/null; echo linux32=$?
      linux64 uname -m; echo linux64=$?`;
    const mutate = (c: OciConfig) => {
      c.linux.seccomp = {
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [
          // CLONE_NEWUSER (0x10000000) set in flags → EACCES
          {
            names: ['unshare'],
            action: 'SCMP_ACT_ERRNO',
            errnoRet: 13,
            args: [{ index: 0, value: 0x10000000, valueTwo: 0x10000000, op: 'SCMP_CMP_MASKED_EQ' }],
          },
          // two comparisons on arg 0: either matches (PER_LINUX32 = 8, or 1)
          {
            names: ['personality'],
            action: 'SCMP_ACT_ERRNO',
            args: [
              { index: 0, value: 8, op: 'SCMP_CMP_EQ' },
              { index: 0, value: 1, op: 'SCMP_CMP_EQ' },
            ],
          },
        ],
      };
    };
    const out = runOk(rt, script, mutate);
    expect(out).toMatch(/unshare\(0x10000000\): Permission denied/);
    expect(out).toMatch(/unshare\(0x4000000\): Operation not permitted/);
    expect(out).toContain('linux32=1');
    expect(out).toContain('x86_64\nlinux64=0');
    if (hasRunc()) expect(out).toBe(runOk(runc, script, mutate));
  });

  it('kills the process with SCMP_ACT_KILL_PROCESS', () => {
    const res = rt.run(
      sh('echo before; mkdir /tmp/x; echo rc=$?; exec mkdir /tmp/y; echo after', (c) => {
        c.linux.seccomp = {
          defaultAction: 'SCMP_ACT_ALLOW',
          syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_KILL_PROCESS' }],
        };
      }),
    );
    expect(res.stdout).toContain('before');
    expect(res.stdout).toContain('rc=159'); // 128 + SIGSYS
    expect(res.stdout).not.toContain('after');
    expect(res.code).toBe(159);
  });

  it('accepts the filter flags this kernel supports', () => {
    const out = runOk(rt, STATUS(['Seccomp']), (c) => {
      c.linux.seccomp = {
        defaultAction: 'SCMP_ACT_ALLOW',
        flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'],
        syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_LOG' }],
      };
    });
    expect(out).toContain('Seccomp:\t2');
  });

  const bad: [string, (s: OciConfig) => void, RegExp][] = [
    [
      'an unknown action',
      (s) => (s.syscalls[0].action = 'SCMP_ACT_MAYBE'),
      /linux\.seccomp\.syscalls\[0\]\.action: unknown action "SCMP_ACT_MAYBE"/,
    ],
    [
      'an unknown operator',
      (s) => (s.syscalls[0].args = [{ index: 0, value: 1, op: 'SCMP_CMP_ABOUT' }]),
      /syscalls\[0\]\.args\[0\]\.op: unknown operator "SCMP_CMP_ABOUT"/,
    ],
    [
      'an argument index past 5',
      (s) => (s.syscalls[0].args = [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }]),
      /syscalls\[0\]\.args\[0\]\.index must be 0 to 5/,
    ],
    [
      'errnoRet on SCMP_ACT_ALLOW',
      (s) => Object.assign(s.syscalls[0], { action: 'SCMP_ACT_ALLOW', errnoRet: 5 }),
      /errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE/,
    ],
    [
      'an unknown architecture',
      (s) => (s.architectures = ['SCMP_ARCH_VAX']),
      /architectures\[0\]: unknown or unsupported architecture "SCMP_ARCH_VAX"/,
    ],
    [
      'an unknown flag',
      (s) => (s.flags = ['SECCOMP_FILTER_FLAG_FAST']),
      /flags\[0\]: unknown flag "SECCOMP_FILTER_FLAG_FAST"/,
    ],
    [
      'SCMP_ACT_NOTIFY without a listenerPath',
      (s) => (s.syscalls[0].action = 'SCMP_ACT_NOTIFY'),
      /SCMP_ACT_NOTIFY needs linux\.seccomp\.listenerPath/,
    ],
    ['a missing defaultAction', (s) => delete s.defaultAction, /linux\.seccomp\.defaultAction is required/],
  ];
  it.each(bad)('refuses %s with a clear error and leaves nothing behind', (_name, edit, pattern) => {
    expectCleanFailure((c) => {
      c.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] };
      edit(c.linux.seccomp);
    }, pattern);
  });
});

describe('process.user', () => {
  const script = 'id; umask; touch /tmp/f; stat -c %a /tmp/f';
  const user = (c: OciConfig) => {
    c.process.user = { uid: 1000, gid: 1001, umask: 0o077, additionalGids: [10, 20] };
  };

  it('sets uid, gid, supplementary groups and umask', () => {
    const out = runOk(rt, script, user);
    expect(out).toMatch(/^uid=1000 gid=1001 groups=10,20\n0077\n600\n$/);
  });

  it.runIf(hasRunc())('matches runc, with and without a umask', () => {
    expect(runOk(rt, script, user)).toBe(runOk(runc, script, user));
    // no umask in the config: the container gets 0022 whatever the caller had
    expect(runOk(rt, 'umask')).toBe(runOk(runc, 'umask'));
    expect(runOk(rt, 'umask')).toBe('0022\n');
  });

  it('drops the supplementary groups of the caller when none are configured', () => {
    expect(runOk(rt, 'id -G')).toBe('0\n');
  });
});

describe('inside a new user namespace', () => {
  const userns = (c: OciConfig) => {
    c.linux.namespaces.push({ type: 'user' });
    c.linux.uidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
    c.linux.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
    c.process.user = { uid: 1000, gid: 1000, additionalGids: [10], umask: 0o027 };
    c.process.capabilities = {
      bounding: DOCKER_CAPS,
      effective: ['CAP_CHOWN', 'CAP_KILL'],
      permitted: ['CAP_CHOWN', 'CAP_KILL'],
      inheritable: ['CAP_KILL'],
      ambient: ['CAP_KILL'],
    };
    c.process.noNewPrivileges = true;
    c.linux.seccomp = dockerSeccomp();
    // sysfs cannot be mounted from a user namespace that does not own the network namespace's
    c.mounts = c.mounts.filter((m: OciConfig) => m.type !== 'sysfs' && m.type !== 'cgroup');
  };
  const script = `id; umask; cat /proc/self/uid_map; ${STATUS(['CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp'])}`;

  it('sets uid, groups, umask and capabilities after the maps are written', () => {
    const out = runOk(rt, script, userns, shUserns);
    expect(out).toMatch(/^uid=1000 gid=1000 groups=10\n0027\n\s+0\s+200000\s+65536\n/);
    // a non-root uid keeps across execve only its ambient capabilities: CAP_KILL (5), not CAP_CHOWN
    expect(out).toContain('CapPrm:\t0000000000000020');
    expect(out).toContain('CapEff:\t0000000000000020');
    expect(out).toContain(`CapBnd:\t${DOCKER_CAP_MASK}`);
    expect(out).toContain('CapAmb:\t0000000000000020');
    expect(out).toContain('NoNewPrivs:\t1');
    expect(out).toContain('Seccomp:\t2');
  });

  it.runIf(hasRunc())('matches runc', () => {
    expect(runOk(rt, script, userns, shUserns)).toBe(runOk(runc, script, userns, shUserns));
  });

  it('explains a uid that the user namespace does not map', () => {
    const res = rt.run(
      shUserns('id', (c) => {
        userns(c);
        c.process.user = { uid: 70000, gid: 0 };
      }),
    );
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/process\.user\.uid 70000 \(not mapped in the container's user namespace\)/);
  });
});

describe('process.capabilities', () => {
  const nonRoot = (c: OciConfig) => {
    c.process.user = { uid: 1000, gid: 1000 };
    c.process.capabilities = {
      bounding: ['CAP_NET_BIND_SERVICE', 'CAP_CHOWN', 'CAP_KILL'],
      effective: ['CAP_NET_BIND_SERVICE'],
      permitted: ['CAP_NET_BIND_SERVICE'],
      inheritable: ['CAP_NET_BIND_SERVICE'],
      ambient: ['CAP_NET_BIND_SERVICE'],
    };
  };
  const script = STATUS(['Uid', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']);

  it('keeps the configured sets for a non-root user, ambient included, and drops the rest of the bounding set', () => {
    const out = runOk(rt, script, nonRoot);
    expect(out).toMatch(/Uid:\t1000/);
    // CAP_NET_BIND_SERVICE = bit 10; bounding adds CAP_CHOWN (0) and CAP_KILL (5)
    expect(out).toContain('CapInh:\t0000000000000400');
    expect(out).toContain('CapPrm:\t0000000000000400');
    expect(out).toContain('CapEff:\t0000000000000400');
    expect(out).toContain('CapBnd:\t0000000000000421');
    expect(out).toContain('CapAmb:\t0000000000000400');
  });

  it.runIf(hasRunc())('matches runc for the same sets', () => {
    expect(runOk(rt, script, nonRoot)).toBe(runOk(runc, script, nonRoot));
  });

  it('gives root no capabilities when the sets are empty', () => {
    const out = runOk(rt, script, (c) => {
      c.process.capabilities = {};
    });
    expect(out).toContain('CapEff:\t0000000000000000');
    expect(out).toContain('CapBnd:\t0000000000000000');
  });

  it('fails clearly, naming CAP_SYS_RESOURCE, when asked to keep a capability this host root lacks', () => {
    // this host's root runs without CAP_SYS_RESOURCE (CapBnd 0x1fffeffffff)
    const status = readFileSync('/proc/self/status', 'utf8');
    const prm = BigInt('0x' + /CapPrm:\t([0-9a-f]+)/.exec(status)![1]);
    if ((prm & (1n << 24n)) !== 0n) return; // a host that has it: nothing to check
    expectCleanFailure((c) => {
      c.process.capabilities.permitted.push('CAP_SYS_RESOURCE');
      c.process.capabilities.effective.push('CAP_SYS_RESOURCE');
      c.process.capabilities.bounding.push('CAP_SYS_RESOURCE');
    }, /CAP_SYS_RESOURCE.*Operation not permitted/);
  });

  it('refuses an unknown capability name, naming the field', () => {
    expectCleanFailure((c) => {
      c.process.capabilities.bounding = ['CAP_CHOWN', 'CAP_MAKE_COFFEE'];
    }, /process\.capabilities\.bounding\[1\]: unknown capability "CAP_MAKE_COFFEE"/);
  });

  it('refuses an effective capability that is not permitted', () => {
    expectCleanFailure((c) => {
      c.process.capabilities = { effective: ['CAP_CHOWN'], permitted: [] };
    }, /process\.capabilities\.effective: CAP_CHOWN must also be in process\.capabilities\.permitted/);
  });
});

describe('rlimits, oomScoreAdj, personality, scheduler, ioPriority', () => {
  const limits = (c: OciConfig) => {
    c.process.rlimits = [
      { type: 'RLIMIT_NOFILE', soft: 100, hard: 200 },
      { type: 'RLIMIT_CORE', soft: 0, hard: 0 },
      { type: 'RLIMIT_NPROC', soft: 50, hard: 60 },
    ];
  };
  const limitScript = 'ulimit -n; ulimit -Hn; ulimit -c; ulimit -u';

  it('sets rlimits', () => {
    expect(runOk(rt, limitScript, limits)).toBe('100\n200\n0\n50\n');
  });

  it.runIf(hasRunc())('sets rlimits like runc', () => {
    expect(runOk(rt, limitScript, limits)).toBe(runOk(runc, limitScript, limits));
  });

  it('refuses an unknown rlimit and a soft limit above the hard one', () => {
    expectCleanFailure((c) => {
      c.process.rlimits = [{ type: 'RLIMIT_PATIENCE', soft: 1, hard: 1 }];
    }, /process\.rlimits\[0\]\.type: unknown resource limit "RLIMIT_PATIENCE"/);
    expectCleanFailure((c) => {
      c.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 10, hard: 5 }];
    }, /process\.rlimits\[0\]: soft limit 10 of RLIMIT_NOFILE exceeds its hard limit 5/);
  });

  it('sets oom_score_adj', () => {
    const adj = (c: OciConfig) => (c.process.oomScoreAdj = 500);
    expect(runOk(rt, 'cat /proc/self/oom_score_adj', adj)).toBe('500\n');
    if (hasRunc()) expect(runOk(runc, 'cat /proc/self/oom_score_adj', adj)).toBe('500\n');
  });

  it('explains that lowering oom_score_adj needs CAP_SYS_RESOURCE', () => {
    const status = readFileSync('/proc/self/status', 'utf8');
    const prm = BigInt('0x' + /CapPrm:\t([0-9a-f]+)/.exec(status)![1]);
    if ((prm & (1n << 24n)) !== 0n) return;
    if (Number(readFileSync('/proc/self/oom_score_adj', 'utf8')) > -500) {
      expectCleanFailure((c) => (c.process.oomScoreAdj = -999), /oomScoreAdj.*-999.*CAP_SYS_RESOURCE/);
    }
  });

  it('sets the LINUX32 personality (uname -m is i686)', () => {
    const p = (c: OciConfig) => (c.linux.personality = { domain: 'LINUX32' });
    expect(runOk(rt, 'uname -m', p)).toBe('i686\n');
    expect(runOk(rt, 'uname -m', (c) => (c.linux.personality = { domain: 'LINUX' }))).toBe('x86_64\n');
    expectCleanFailure(
      (c) => (c.linux.personality = { domain: 'LINUX64' }),
      /linux\.personality\.domain: unknown domain "LINUX64"/,
    );
  });

  it('sets the scheduler policy and nice value', () => {
    // /proc/self/stat: field 19 is nice, field 41 the policy (SCHED_BATCH = 3)
    const out = runOk(rt, "cut -d' ' -f19,41 /proc/self/stat", (c) => {
      c.process.scheduler = { policy: 'SCHED_BATCH', nice: 7 };
    });
    expect(out).toBe('7 3\n');
    const fifo = runOk(rt, "cut -d' ' -f18,40,41 /proc/self/stat", (c) => {
      c.process.scheduler = { policy: 'SCHED_FIFO', priority: 10 };
      // cgroup v1 with RT group scheduling: a cgroup gets no realtime budget unless given one
      // (a cgroup right under the root: the runtime's default parent has no budget to hand down)
      if (existsSync('/sys/fs/cgroup/cpu/cpu.rt_runtime_us')) {
        c.linux.cgroupsPath = `/${uniqueId('skiff-sec-rt')}`;
        c.linux.resources.cpu = { realtimeRuntime: 10000, realtimePeriod: 1000000 };
      }
    });
    // field 18 is -1 - rt_priority, field 40 rt_priority, field 41 SCHED_FIFO = 1
    expect(fifo).toBe('-11 10 1\n');
    expectCleanFailure((c) => (c.process.scheduler = { policy: 'SCHED_ISO' }), /Linux does not implement "SCHED_ISO"/);
    expectCleanFailure(
      (c) => (c.process.scheduler = { policy: 'SCHED_OTHER', priority: 5 }),
      /process\.scheduler\.priority is only valid for SCHED_FIFO and SCHED_RR/,
    );
  });

  it('sets the I/O priority', () => {
    const out = runOk(rt, 'ionice', (c) => {
      c.process.ioPriority = { class: 'IOPRIO_CLASS_BE', priority: 6 };
    });
    expect(out).toMatch(/best-effort: prio 6/);
    expectCleanFailure(
      (c) => (c.process.ioPriority = { class: 'IOPRIO_CLASS_BE', priority: 9 }),
      /process\.ioPriority\.priority must be from 0 to 7/,
    );
  });
});

describe('exec', () => {
  it("applies the exec'd process's own user, capabilities, rlimits and no_new_privs, and the container's seccomp", () => {
    const b = makeBundle(['/bin/sleep', '300'], dockerDefaults);
    const id = rt.create(b).id;
    expect(rt.cmd(['start', id]).code).toBe(0);
    const proc = join(b.dir, 'process.json');
    writeFileSync(
      proc,
      JSON.stringify({
        args: [
          '/bin/sh',
          '-c',
          `id; ulimit -n; ${STATUS(['CapEff', 'CapBnd', 'NoNewPrivs', 'Seccomp'])}; unshare -U true 2>&1`,
        ],
        cwd: '/',
        env: ['PATH=/bin'],
        user: { uid: 1000, gid: 1000, additionalGids: [20] },
        capabilities: { bounding: ['CAP_KILL'], effective: [], permitted: [] },
        rlimits: [{ type: 'RLIMIT_NOFILE', soft: 64, hard: 64 }],
        noNewPrivileges: true,
      }),
    );
    const r = rt.cmd(['exec', '--process', proc, id]);
    expect(r.stdout).toMatch(/^uid=1000 gid=1000 groups=20\n64\n/);
    expect(r.stdout).toContain('CapEff:\t0000000000000000');
    expect(r.stdout).toContain('CapBnd:\t0000000000000020');
    expect(r.stdout).toContain('NoNewPrivs:\t1');
    expect(r.stdout).toContain('Seccomp:\t2');
    expect(r.stdout).toMatch(/unshare\(0x10000000\): Operation not permitted/);
    // a bad process file is refused with the field named
    writeFileSync(proc, JSON.stringify({ args: ['/bin/true'], cwd: '/', capabilities: { bounding: ['CAP_NOPE'] } }));
    const bad = rt.cmd(['exec', '--process', proc, id]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/process\.capabilities\.bounding\[0\]: unknown capability "CAP_NOPE"/);
  });
});

describe('AppArmor and SELinux on a host without them', () => {
  const hasAppArmor = () =>
    existsSync('/sys/module/apparmor/parameters/enabled') &&
    readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').startsWith('Y');
  const hasSELinux = () => existsSync('/sys/fs/selinux/enforce');

  it.skipIf(hasAppArmor())('refuses process.apparmorProfile, saying what to do', () => {
    expectCleanFailure(
      (c) => (c.process.apparmorProfile = 'docker-default'),
      /process\.apparmorProfile "docker-default".*remove process\.apparmorProfile or run on a host with AppArmor/,
    );
  });

  it.skipIf(hasSELinux())('refuses process.selinuxLabel and linux.mountLabel', () => {
    expectCleanFailure(
      (c) => (c.process.selinuxLabel = 'system_u:system_r:container_t:s0:c1,c2'),
      /process\.selinuxLabel "system_u:system_r:container_t:s0:c1,c2".*remove process\.selinuxLabel/,
    );
    expectCleanFailure(
      (c) => (c.linux.mountLabel = 'system_u:object_r:container_file_t:s0'),
      /linux\.mountLabel .*SELinux is not enabled/,
    );
  });

  it('runs normally when the profile is an empty string', () => {
    expect(runOk(rt, 'echo ok', (c) => (c.process.apparmorProfile = ''))).toBe('ok\n');
  });
});

describe('features', () => {
  it('lists every capability and the seccomp actions, operators and architectures', () => {
    const res = rt.cmd(['features']);
    expect(res.code, res.stderr).toBe(0);
    const f = JSON.parse(res.stdout);
    expect(f.linux.capabilities).toContain('CAP_CHECKPOINT_RESTORE');
    expect(f.linux.capabilities).toHaveLength(41);
    expect(f.linux.seccomp.actions).toEqual(
      expect.arrayContaining(['SCMP_ACT_ERRNO', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_LOG']),
    );
    expect(f.linux.seccomp.operators).toHaveLength(7);
    expect(f.linux.seccomp.archs).toEqual(
      expect.arrayContaining(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']),
    );
  });
});
