// Docker Config/HostConfig → OCI spec (vm-agent/daemon/containers/spec.ts): merge rules, capabilities, security
// options, mounts, resources, seccomp profile conversion, users, /etc files, signals.
import { describe, expect, it } from 'vitest';
import { DockerError } from '../../vm-agent/daemon/contracts.js';
import {
  ALL_KNOWN_CAPS,
  DEFAULT_CAPS,
  MASKED_PATHS,
  READONLY_PATHS,
  buildSpec,
  capsFromMask,
  hostsFile,
  mergeImageConfig,
  normalizeHostConfig,
  parseBind,
  parseMount,
  parseSecurityOpt,
  parseSignal,
  parseSize,
  parseTmpfs,
  pathAndArgs,
  resolvConf,
  resolveUser,
  parsePasswd,
  parseGroup,
  resources,
  tweakCapabilities,
  type Json,
  type SpecInput,
} from '../../vm-agent/daemon/containers/spec.js';
import { compareKernel, defaultSeccompProfile, toOciSeccomp } from '../../vm-agent/daemon/containers/seccomp.js';

function status(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    if (err instanceof DockerError) return err.status;
    throw err;
  }
  return 0;
}

const ID = 'a'.repeat(64);

function input(config: Json, hostConfig: Json = {}, extra: Partial<SpecInput> = {}): SpecInput {
  const merged = mergeImageConfig(config, { Cmd: ['sh'], Env: ['PATH=/usr/bin:/bin'] });
  merged.Hostname = merged.Hostname || ID.slice(0, 12);
  return {
    id: ID,
    config: merged,
    hostConfig: normalizeHostConfig(hostConfig),
    user: { uid: 0, gid: 0, additionalGids: [] },
    files: { hostname: '/c/hostname', hosts: '/c/hosts', resolvConf: '/c/resolv.conf' },
    allCaps: ALL_KNOWN_CAPS.filter((c) => c !== 'CAP_SYS_RESOURCE'),
    arch: 'amd64',
    kernel: '6.1.0',
    cgroupVersion: 1,
    statDevice: () => ({ type: 'c', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 }),
    hostDevices: () => [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 }],
    ...extra,
  };
}

describe('merge with the image config', () => {
  const image = {
    Entrypoint: ['/entry'],
    Cmd: ['arg1'],
    Env: ['PATH=/img', 'A=image', 'B=image'],
    WorkingDir: '/work',
    User: 'nobody',
    Labels: { a: 'image', b: 'image' },
    StopSignal: 'SIGQUIT',
  };

  it('takes everything from the image when the user gives nothing', () => {
    const c = mergeImageConfig({}, image);
    expect(c.Entrypoint).toEqual(['/entry']);
    expect(c.Cmd).toEqual(['arg1']);
    expect(c.WorkingDir).toBe('/work');
    expect(c.User).toBe('nobody');
    expect(c.StopSignal).toBe('SIGQUIT');
    expect(pathAndArgs(c)).toEqual({ path: '/entry', args: ['arg1'] });
  });

  it("a healthcheck given in part takes the rest from the image's (dockerd's merge)", () => {
    const img = { ...image, Healthcheck: { Test: ['CMD-SHELL', 'true'], Interval: 30e9, Retries: 3 } };
    expect(mergeImageConfig({ Healthcheck: { Interval: 1e9 } }, img).Healthcheck).toEqual({
      Test: ['CMD-SHELL', 'true'],
      Interval: 1e9,
      Retries: 3,
    });
    expect(mergeImageConfig({ Healthcheck: { Test: ['NONE'] } }, img).Healthcheck).toMatchObject({ Test: ['NONE'] });
    expect(mergeImageConfig({}, img).Healthcheck).toEqual(img.Healthcheck);
    expect(mergeImageConfig({}, image).Healthcheck).toBeUndefined();
  });

  it('user env first, then the image env not overridden', () => {
    const c = mergeImageConfig({ Env: ['A=user', 'C=user'] }, image);
    expect(c.Env).toEqual(['A=user', 'C=user', 'PATH=/img', 'B=image']);
  });

  it('a Cmd given replaces the image Cmd and keeps the image Entrypoint', () => {
    const c = mergeImageConfig({ Cmd: ['x', 'y'] }, image);
    expect(pathAndArgs(c)).toEqual({ path: '/entry', args: ['x', 'y'] });
  });

  it('an Entrypoint given resets the image Cmd', () => {
    const c = mergeImageConfig({ Entrypoint: ['/bin/echo'] }, image);
    expect(c.Cmd).toBeNull();
    expect(pathAndArgs(c)).toEqual({ path: '/bin/echo', args: [] });
    const d = mergeImageConfig({ Entrypoint: ['/bin/echo'], Cmd: ['hi'] }, image);
    expect(pathAndArgs(d)).toEqual({ path: '/bin/echo', args: ['hi'] });
  });

  it('--entrypoint "" clears the entrypoint', () => {
    const c = mergeImageConfig({ Entrypoint: [''], Cmd: ['ls'] }, image);
    expect(c.Entrypoint).toBeNull();
    expect(pathAndArgs(c)).toEqual({ path: 'ls', args: [] });
  });

  it('labels: user overrides image', () => {
    expect(mergeImageConfig({ Labels: { b: 'user' } }, image).Labels).toEqual({ a: 'image', b: 'user' });
  });

  it('nothing to run is a 400', () => {
    expect(status(() => mergeImageConfig({}, {}))).toBe(400);
  });

  it('user and workdir given win', () => {
    const c = mergeImageConfig({ User: '1000', WorkingDir: '/tmp' }, image);
    expect(c.User).toBe('1000');
    expect(c.WorkingDir).toBe('/tmp');
  });
});

describe('HostConfig checks', () => {
  it('restart policies', () => {
    expect(normalizeHostConfig({}).RestartPolicy).toEqual({ Name: 'no', MaximumRetryCount: 0 });
    expect(status(() => normalizeHostConfig({ RestartPolicy: { Name: 'sometimes' } }))).toBe(400);
    expect(status(() => normalizeHostConfig({ RestartPolicy: { Name: 'always', MaximumRetryCount: 2 } }))).toBe(400);
    expect(status(() => normalizeHostConfig({ RestartPolicy: { Name: 'on-failure', MaximumRetryCount: -1 } }))).toBe(
      400,
    );
    expect(status(() => normalizeHostConfig({ AutoRemove: true, RestartPolicy: { Name: 'always' } }))).toBe(400);
  });
  it('resources', () => {
    expect(status(() => normalizeHostConfig({ Memory: 1024 }))).toBe(400);
    expect(status(() => normalizeHostConfig({ Memory: 64 << 20, MemorySwap: 32 << 20 }))).toBe(400);
    expect(status(() => normalizeHostConfig({ NanoCpus: 1e9, CpuQuota: 50000 }))).toBe(400);
    expect(status(() => normalizeHostConfig({ BlkioWeight: 5 }))).toBe(400);
  });
  it('defaults', () => {
    const h = normalizeHostConfig({ NetworkMode: 'default' });
    expect(h.NetworkMode).toBe('bridge');
    expect(h.ShmSize).toBe(64 * 1024 * 1024);
    expect(h.LogConfig).toEqual({ Type: 'json-file', Config: {} });
    expect(h.MaskedPaths).toEqual(MASKED_PATHS);
  });
});

describe('capabilities', () => {
  const all = ALL_KNOWN_CAPS;
  it("Docker's defaults", () => {
    expect(tweakCapabilities(null, null, false, all)).toEqual(DEFAULT_CAPS);
    expect(DEFAULT_CAPS).toHaveLength(14);
  });
  it('add and drop, any spelling', () => {
    const c = tweakCapabilities(['net_admin', 'CAP_SYS_TIME'], ['NET_RAW', 'cap_chown'], false, all);
    expect(c).toContain('CAP_NET_ADMIN');
    expect(c).toContain('CAP_SYS_TIME');
    expect(c).not.toContain('CAP_NET_RAW');
    expect(c).not.toContain('CAP_CHOWN');
  });
  it('drop ALL then add', () => {
    expect(tweakCapabilities(['NET_BIND_SERVICE'], ['ALL'], false, all)).toEqual(['CAP_NET_BIND_SERVICE']);
  });
  it('add ALL minus drops', () => {
    const c = tweakCapabilities(['ALL'], ['SYS_ADMIN'], false, all);
    expect(c).toHaveLength(all.length - 1);
    expect(c).not.toContain('CAP_SYS_ADMIN');
  });
  it('privileged: every cap the host gives', () => {
    expect(tweakCapabilities(null, ['ALL'], true, ['CAP_A', 'CAP_B'])).toEqual(['CAP_A', 'CAP_B']);
  });
  it('unknown capability: 400', () => {
    expect(status(() => tweakCapabilities(['NOPE'], null, false, all))).toBe(400);
  });
  it('caps from a CapBnd mask', () => {
    expect(capsFromMask('0000000000000003')).toEqual(['CAP_CHOWN', 'CAP_DAC_OVERRIDE']);
    expect(capsFromMask('000001ffffffffff')).toEqual(ALL_KNOWN_CAPS);
  });
});

describe('security options', () => {
  it('parses the forms the CLI sends', () => {
    expect(parseSecurityOpt(['no-new-privileges']).noNewPrivileges).toBe(true);
    expect(parseSecurityOpt(['no-new-privileges:true']).noNewPrivileges).toBe(true);
    expect(parseSecurityOpt(['no-new-privileges=false']).noNewPrivileges).toBe(false);
    expect(parseSecurityOpt(['seccomp=unconfined']).seccomp).toBe('unconfined');
    expect(parseSecurityOpt(['seccomp:{"defaultAction":"SCMP_ACT_ALLOW"}']).seccomp).toEqual({
      profile: '{"defaultAction":"SCMP_ACT_ALLOW"}',
    });
    expect(parseSecurityOpt(['apparmor=unconfined', 'label=disable']).seccomp).toBe('default');
  });
  it('refuses what cannot be applied', () => {
    expect(status(() => parseSecurityOpt(['apparmor=docker-default']))).toBe(400);
    expect(status(() => parseSecurityOpt(['label=type:svirt_t']))).toBe(400);
    expect(status(() => parseSecurityOpt(['bogus=1']))).toBe(400);
  });
});

describe('mounts', () => {
  it('binds with options', () => {
    expect(parseBind('/src:/dst')).toMatchObject({ Type: 'bind', Source: '/src', Destination: '/dst', RW: true });
    expect(parseBind('/src:/dst:ro,rshared')).toMatchObject({ RW: false, Propagation: 'rshared', Mode: 'ro,rshared' });
    expect(parseBind('/src:/a/../b/')).toMatchObject({ Destination: '/b' });
    expect(status(() => parseBind('/src:/dst:bogus'))).toBe(400);
    expect(status(() => parseBind('/src:relative'))).toBe(400);
  });
  it('named and anonymous volumes, and --mount type=volume', () => {
    expect(parseBind('data:/data:ro')).toMatchObject({ Type: 'volume', Name: 'data', Destination: '/data', RW: false });
    expect(parseBind('/data')).toMatchObject({ Type: 'volume', Destination: '/data', RW: true });
    expect(parseMount({ Type: 'volume', Source: 'v', Target: '/v' })).toMatchObject({ Type: 'volume', Name: 'v' });
  });
  it('--mount bind and tmpfs', () => {
    expect(
      parseMount({ Type: 'bind', Source: '/s', Target: '/t', ReadOnly: true, BindOptions: { Propagation: 'rslave' } }),
    ).toMatchObject({ RW: false, Propagation: 'rslave' });
    expect(parseMount({ Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 1024, Mode: 0o700 } }).options).toEqual(
      ['nosuid', 'nodev', 'noexec', 'size=1024', 'mode=700'],
    );
    expect(status(() => parseMount({ Type: 'bind', Source: 'rel', Target: '/t' }))).toBe(400);
  });
  it('--tmpfs', () => {
    expect(parseTmpfs('/run', 'rw,size=64m').options).toEqual(['noexec', 'nosuid', 'nodev', 'rw', 'size=64m']);
    expect(parseTmpfs('/run', 'exec').options).toEqual(['nosuid', 'nodev']);
  });
  it('duplicates are refused', () => {
    expect(status(() => buildSpec(input({}, { Binds: ['/a:/x'], Tmpfs: { '/x': '' } })))).toBe(400);
  });
});

describe('the spec', () => {
  it("Docker's defaults", () => {
    const s = buildSpec(input({}));
    expect(s.ociVersion).toMatch(/^1\./);
    expect(s.process.args).toEqual(['sh']);
    expect(s.process.cwd).toBe('/');
    expect(s.process.terminal).toBe(false);
    expect(s.process.env).toContain(`HOSTNAME=${ID.slice(0, 12)}`);
    expect(s.process.capabilities.bounding).toEqual(DEFAULT_CAPS);
    expect(s.process.capabilities.effective).toEqual(DEFAULT_CAPS);
    expect(s.process.noNewPrivileges).toBe(false);
    expect(s.hostname).toBe(ID.slice(0, 12));
    expect(s.root).toEqual({ path: 'rootfs', readonly: false });
    expect(s.linux.cgroupsPath).toBe(`/skiff/${ID}`);
    expect(s.linux.maskedPaths).toEqual(MASKED_PATHS);
    expect(s.linux.readonlyPaths).toEqual(READONLY_PATHS);
    expect(s.linux.namespaces.map((n: Json) => n.type).sort()).toEqual(['ipc', 'mount', 'network', 'pid', 'uts']);
    expect(s.linux.seccomp.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(s.linux.resources.devices[0]).toEqual({ allow: false, access: 'rwm' });
    const dsts = s.mounts.map((m: Json) => m.destination);
    for (const d of ['/proc', '/dev', '/dev/pts', '/sys', '/dev/mqueue', '/dev/shm', '/etc/hosts', '/etc/hostname'])
      expect(dsts).toContain(d);
    expect(s.mounts.find((m: Json) => m.destination === '/etc/resolv.conf')).toEqual({
      destination: '/etc/resolv.conf',
      type: 'bind',
      source: '/c/resolv.conf',
      options: ['rbind', 'rprivate'],
    });
    expect(s.mounts.find((m: Json) => m.destination === '/dev/shm').options).toContain('size=67108864');
  });

  it('tty, user, env, workdir, labels, domainname, read-only rootfs', () => {
    const s = buildSpec(
      input(
        { Tty: true, WorkingDir: '/w', Env: ['X=1'], Labels: { l: 'v' }, Domainname: 'example.org' },
        { ReadonlyRootfs: true },
        { user: { uid: 1000, gid: 100, additionalGids: [5] } },
      ),
    );
    expect(s.process.terminal).toBe(true);
    expect(s.process.env).toContain('TERM=xterm');
    expect(s.process.env).toContain('X=1');
    expect(s.process.user).toEqual({ uid: 1000, gid: 100, additionalGids: [5] });
    expect(s.process.cwd).toBe('/w');
    expect(s.annotations).toEqual({ l: 'v' });
    expect(s.domainname).toBe('example.org');
    expect(s.root.readonly).toBe(true);
  });

  it('privileged: all caps, no seccomp, no masked paths, all devices', () => {
    const s = buildSpec(input({}, { Privileged: true }));
    expect(s.process.capabilities.bounding).toHaveLength(ALL_KNOWN_CAPS.length - 1);
    expect(s.linux.seccomp).toBeUndefined();
    expect(s.linux.maskedPaths).toBeUndefined();
    expect(s.linux.readonlyPaths).toBeUndefined();
    expect(s.linux.resources.devices).toEqual([{ allow: true, access: 'rwm' }]);
    expect(s.linux.devices[0].path).toBe('/dev/fuse');
    expect(s.mounts.find((m: Json) => m.destination === '/sys').options).toContain('rw');
  });

  it('seccomp=unconfined, a custom profile, no-new-privileges', () => {
    expect(buildSpec(input({}, { SecurityOpt: ['seccomp=unconfined'] })).linux.seccomp).toBeUndefined();
    const custom = JSON.stringify({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }],
    });
    const s = buildSpec(input({}, { SecurityOpt: [`seccomp=${custom}`, 'no-new-privileges:true'] }));
    expect(s.linux.seccomp).toEqual({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }],
    });
    expect(s.process.noNewPrivileges).toBe(true);
    expect(status(() => buildSpec(input({}, { SecurityOpt: ['seccomp={bad'] })))).toBe(400);
  });

  it('resources', () => {
    const s = buildSpec(
      input(
        {},
        {
          Memory: 64 << 20,
          MemorySwap: 128 << 20,
          MemoryReservation: 32 << 20,
          NanoCpus: 1.5e9,
          CpuShares: 512,
          CpusetCpus: '0',
          CpusetMems: '0',
          PidsLimit: 50,
          BlkioWeight: 300,
          Ulimits: [{ Name: 'nofile', Soft: 100, Hard: 200 }],
          OomScoreAdj: 500,
          ShmSize: 1 << 20,
        },
      ),
    );
    const r = s.linux.resources;
    expect(r.memory).toEqual({ limit: 64 << 20, swap: 128 << 20, reservation: 32 << 20 });
    expect(r.cpu).toEqual({ shares: 512, period: 100000, quota: 150000, cpus: '0', mems: '0' });
    expect(r.pids).toEqual({ limit: 50 });
    expect(r.blockIO).toEqual({ weight: 300 });
    expect(s.process.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', soft: 100, hard: 200 }]);
    expect(s.process.oomScoreAdj).toBe(500);
    expect(s.mounts.find((m: Json) => m.destination === '/dev/shm').options).toContain(`size=${1 << 20}`);
    expect(resources({ CpuPeriod: 50000, CpuQuota: 25000, PidsLimit: -1 })).toEqual({
      cpu: { period: 50000, quota: 25000 },
      pids: { limit: -1 },
    });
  });

  it('binds, tmpfs, devices, sysctls', () => {
    const s = buildSpec(
      input(
        {},
        {
          Binds: ['/host/a:/a:ro', '/host/b:/a/b'],
          Tmpfs: { '/run': 'size=1m' },
          Devices: [{ PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' }],
          Sysctls: { 'net.ipv4.ip_forward': '1' },
        },
      ),
    );
    const a = s.mounts.findIndex((m: Json) => m.destination === '/a');
    const b = s.mounts.findIndex((m: Json) => m.destination === '/a/b');
    expect(a).toBeLessThan(b);
    expect(s.mounts[a].options).toEqual(['rbind', 'rprivate', 'ro']);
    expect(s.mounts.find((m: Json) => m.destination === '/run')).toMatchObject({ type: 'tmpfs' });
    expect(s.linux.devices).toEqual([
      { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 },
    ]);
    expect(s.linux.resources.devices.at(-1)).toEqual({ allow: true, type: 'c', major: 10, minor: 229, access: 'rwm' });
    expect(s.linux.sysctl).toEqual({ 'net.ipv4.ip_forward': '1' });
  });

  it('a user mount over /etc/hosts replaces ours', () => {
    const s = buildSpec(input({}, { Binds: ['/my/hosts:/etc/hosts'] }));
    expect(s.mounts.filter((m: Json) => m.destination === '/etc/hosts')).toHaveLength(1);
    expect(s.mounts.find((m: Json) => m.destination === '/etc/hosts').source).toBe('/my/hosts');
  });

  it('namespaces: network none and host, pid host, ipc host, cgroup ns on v2', () => {
    const none = buildSpec(input({}, { NetworkMode: 'none' }));
    expect(none.linux.namespaces.some((n: Json) => n.type === 'network')).toBe(true);
    const host = buildSpec(
      input({}, { NetworkMode: 'host', PidMode: 'host', IpcMode: 'host' }, { hostHostname: 'thehost' }),
    );
    expect(host.linux.namespaces.map((n: Json) => n.type).sort()).toEqual(['mount', 'uts']);
    expect(host.hostname).toBe('thehost');
    expect(host.mounts.some((m: Json) => m.destination === '/dev/shm')).toBe(false);
    const v2 = buildSpec(input({}, {}, { cgroupVersion: 2 }));
    expect(v2.linux.namespaces.some((n: Json) => n.type === 'cgroup')).toBe(true);
    const joined = buildSpec(
      input({}, { NetworkMode: 'container:other' }, { namespacePath: (ref, ns) => `/proc/1/ns/${ns}-${ref}` }),
    );
    expect(joined.linux.namespaces).toContainEqual({ type: 'network', path: '/proc/1/ns/network-other' });
  });

  it('init: bound at /sbin/docker-init, or a clear error', () => {
    const s = buildSpec(input({}, { Init: true }, { initPath: '/opt/init' }));
    expect(s.process.args).toEqual(['/sbin/docker-init', '--', 'sh']);
    expect(s.mounts.find((m: Json) => m.destination === '/sbin/docker-init')).toMatchObject({ source: '/opt/init' });
    expect(status(() => buildSpec(input({}, { Init: true })))).toBe(501);
  });
});

describe('seccomp profile conversion', () => {
  const ctx = { caps: DEFAULT_CAPS, arch: 'amd64', kernel: '6.1.0' };
  const names = (s: ReturnType<typeof toOciSeccomp>): string[] => s.syscalls!.flatMap((x) => x.names);

  it("Docker's default for amd64", () => {
    const s = toOciSeccomp(defaultSeccompProfile, ctx);
    expect(s.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(s.defaultErrnoRet).toBe(1);
    expect(s.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    expect(names(s)).toContain('read');
    expect(names(s)).toContain('arch_prctl'); // amd64 only
    expect(names(s)).not.toContain('mount'); // CAP_SYS_ADMIN only
    expect(names(s)).not.toContain('ptrace'.concat('_x')); // sanity
    expect(names(s)).not.toContain('reboot'); // CAP_SYS_BOOT only
    // clone is allowed with a mask on its flags (no new namespaces) without CAP_SYS_ADMIN, not on s390 ordering.
    const clone = s.syscalls!.filter((x) => x.names.includes('clone'));
    expect(clone).toHaveLength(1);
    expect(clone[0]!.args![0]!.index).toBe(0);
    // clone3 gets ENOSYS without CAP_SYS_ADMIN.
    expect(s.syscalls!.find((x) => x.names.includes('clone3'))).toMatchObject({
      action: 'SCMP_ACT_ERRNO',
      errnoRet: 38,
    });
    for (const r of s.syscalls!) expect(r).not.toHaveProperty('includes');
  });

  it('caps widen the allow-list; CAP_SYS_ADMIN drops the clone masks', () => {
    const s = toOciSeccomp(defaultSeccompProfile, { ...ctx, caps: [...DEFAULT_CAPS, 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT'] });
    expect(names(s)).toContain('mount');
    expect(names(s)).toContain('reboot');
    expect(s.syscalls!.some((x) => x.names.includes('clone') && x.args)).toBe(false);
    expect(s.syscalls!.some((x) => x.names.includes('clone3') && x.action === 'SCMP_ACT_ERRNO')).toBe(false);
  });

  it('arm64 gets its own arch list and not the amd64-only calls', () => {
    const s = toOciSeccomp(defaultSeccompProfile, { ...ctx, arch: 'arm64' });
    expect(s.architectures).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    expect(names(s)).not.toContain('arch_prctl');
  });

  it('minKernel', () => {
    const p = {
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        { names: ['new'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '5.8' } },
        { names: ['old'], action: 'SCMP_ACT_ALLOW', excludes: { minKernel: '5.8' } },
      ],
    };
    expect(names(toOciSeccomp(p, { ...ctx, kernel: '6.1.0-18-amd64' }))).toEqual(['new']);
    expect(names(toOciSeccomp(p, { ...ctx, kernel: '4.19.0' }))).toEqual(['old']);
    expect(compareKernel('5.10.0', '5.8')).toBeGreaterThan(0);
  });
});

describe('users', () => {
  const passwd = parsePasswd(
    'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\napp:x:1000:1000::/app:/bin/sh\n',
  );
  const groups = parseGroup('root:x:0:\nwheel:x:10:app\napp:x:1000:\nnogroup:x:65534:\n');
  it('names, ids, groups', () => {
    expect(resolveUser('', passwd, groups)).toEqual({ uid: 0, gid: 0, additionalGids: [] });
    expect(resolveUser('nobody', passwd, groups)).toEqual({ uid: 65534, gid: 65534, additionalGids: [] });
    expect(resolveUser('app', passwd, groups)).toEqual({ uid: 1000, gid: 1000, additionalGids: [10] });
    expect(resolveUser('1234', passwd, groups)).toEqual({ uid: 1234, gid: 0, additionalGids: [] });
    expect(resolveUser('1234:5', passwd, groups)).toEqual({ uid: 1234, gid: 5, additionalGids: [] });
    expect(resolveUser('app:wheel', passwd, groups)).toEqual({ uid: 1000, gid: 10, additionalGids: [] });
    expect(resolveUser('', passwd, groups, ['wheel', '42'])).toEqual({ uid: 0, gid: 0, additionalGids: [10, 42] });
  });
  it('unknown names fail', () => {
    expect(() => resolveUser('ghost', passwd, groups)).toThrow(/unable to find user ghost/);
    expect(() => resolveUser('app:ghosts', passwd, groups)).toThrow(/unable to find group ghosts/);
  });
});

describe('/etc files, sizes, signals', () => {
  it('hosts', () => {
    const h = hostsFile(['db:10.0.0.2', 'v6:[::1]', 'x=1.2.3.4']);
    expect(h).toMatch(/^127\.0\.0\.1\tlocalhost\n/);
    expect(h).toContain('10.0.0.2\tdb\n');
    expect(h).toContain('::1\tv6\n');
    expect(h).toContain('1.2.3.4\tx\n');
    expect(status(() => hostsFile(['bad']))).toBe(400);
  });
  it('resolv.conf drops loopback servers in a private netns', () => {
    const host = 'nameserver 127.0.0.53\nnameserver 10.0.0.1\nsearch lan\noptions edns0\n';
    expect(resolvConf(host, {})).toBe('nameserver 10.0.0.1\nsearch lan\noptions edns0\n');
    expect(resolvConf('nameserver 127.0.0.1\n', {})).toBe('nameserver 8.8.8.8\nnameserver 8.8.4.4\n');
    expect(resolvConf(host, { dns: ['1.1.1.1'], search: ['a', 'b'] })).toBe(
      'nameserver 1.1.1.1\nsearch a b\noptions edns0\n',
    );
    expect(resolvConf(host, { hostNetwork: true })).toContain('nameserver 127.0.0.53');
  });
  it('sizes', () => {
    expect(parseSize('10m')).toBe(10 * 1024 * 1024);
    expect(parseSize('1g')).toBe(1024 ** 3);
    expect(parseSize('512')).toBe(512);
    expect(status(() => parseSize('lots'))).toBe(400);
  });
  it('signals', () => {
    expect(parseSignal('SIGTERM')).toBe(15);
    expect(parseSignal('kill')).toBe(9);
    expect(parseSignal('9')).toBe(9);
    expect(parseSignal('SIGRTMIN+3')).toBe(37);
    expect(status(() => parseSignal('SIGNOPE'))).toBe(400);
    expect(status(() => parseSignal('99'))).toBe(400);
  });
});
