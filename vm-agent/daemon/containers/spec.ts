// Docker's Config/HostConfig (with the image's config) → an OCI runtime spec, as dockerd does it: the merge rules
// of container create, validation of HostConfig, Docker's default capabilities, masked and read-only paths, device
// rules and seccomp profile, and every supported HostConfig field. Pure: anything that needs the host (devices,
// users in the rootfs, the init binary) comes in through SpecInput.
import { DockerError, badRequest } from '../contracts.js';
import type { ImageRuntimeConfig } from '../contracts.js';
import { defaultSeccompProfile, parseSeccompProfile, toOciSeccomp, type OciSeccomp } from './seccomp.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = Record<string, any>;

// ---------------------------------------------------------------------------------------------- defaults

export const DEFAULT_CAPS = [
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

/** Every capability Linux knows, in number order (CAP_CHOWN = 0 ... CAP_CHECKPOINT_RESTORE = 40). */
export const ALL_KNOWN_CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
];

/** The capabilities in a CapBnd/CapEff hex mask (from /proc/self/status). */
export function capsFromMask(hex: string): string[] {
  const mask = BigInt(`0x${hex.trim() || '0'}`);
  return ALL_KNOWN_CAPS.filter((_, i) => (mask >> BigInt(i)) & 1n);
}

export const MASKED_PATHS = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/interrupts',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

const DEFAULT_DEVICE_RULES: Json[] = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', access: 'm' },
  { allow: true, type: 'b', access: 'm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
  { allow: true, type: 'c', major: 136, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
  { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' },
];

export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;
export const DEFAULT_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

// ---------------------------------------------------------------------------------------------- merge with the image

/** Docker's Config after merging the image's config (daemon: merge), with defaults; a 400 when nothing to run. */
/** As dockerd: what the user left empty of a healthcheck (`--health-interval 1s` alone) comes from the image's. */
export function mergeHealthcheck(user: Json | undefined, image: Json | undefined): Json | undefined {
  if (!user) return image;
  if (!image) return user;
  const out: Json = { ...user };
  const test = user.Test as string[] | undefined;
  if (!test || test.length === 0) out.Test = image.Test;
  for (const k of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'])
    if (!user[k] && image[k]) out[k] = image[k];
  return out;
}

export function mergeImageConfig(config: Json, image: ImageRuntimeConfig): Json {
  const c: Json = { ...config };
  if (!c.User) c.User = image.User ?? '';
  // Env: the user's first, then the image's whose keys the user did not set.
  const userEnv: string[] = Array.isArray(c.Env) ? [...c.Env] : [];
  const keys = new Set(userEnv.map((e) => e.split('=')[0]));
  for (const e of image.Env ?? []) if (!keys.has(e.split('=')[0])) userEnv.push(e);
  c.Env = userEnv;
  // Labels and exposed ports: the image's, overridden by the user's.
  if (image.Labels) c.Labels = { ...image.Labels, ...(c.Labels ?? {}) };
  else c.Labels = c.Labels ?? {};
  if (image.ExposedPorts) c.ExposedPorts = { ...image.ExposedPorts, ...(c.ExposedPorts ?? {}) };
  if (image.Volumes) c.Volumes = { ...image.Volumes, ...(c.Volumes ?? {}) };
  // Entrypoint/Cmd: an Entrypoint given resets the image's Cmd; `--entrypoint ""` ([""]) clears the entrypoint.
  const ep: string[] | null | undefined = c.Entrypoint;
  const cmd: string[] | null | undefined = c.Cmd;
  if (!ep || ep.length === 0) {
    if (!cmd || cmd.length === 0) c.Cmd = image.Cmd ?? null;
    if (ep === undefined || ep === null) c.Entrypoint = image.Entrypoint ?? null;
  }
  if (Array.isArray(c.Entrypoint) && c.Entrypoint.length === 1 && c.Entrypoint[0] === '') c.Entrypoint = null;
  c.Cmd = c.Cmd ?? null;
  c.Entrypoint = c.Entrypoint ?? null;
  if (!c.WorkingDir) c.WorkingDir = image.WorkingDir ?? '';
  if (!c.StopSignal && image.StopSignal) c.StopSignal = image.StopSignal;
  c.Healthcheck = mergeHealthcheck(c.Healthcheck as Json | undefined, image.Healthcheck as Json | undefined);
  if (!c.Healthcheck) delete c.Healthcheck;
  const args = [...((c.Entrypoint as string[] | null) ?? []), ...((c.Cmd as string[] | null) ?? [])];
  if (args.length === 0) throw badRequest('No command specified');
  return c;
}

/** The container's Path and Args (inspect) from a merged Config. */
export function pathAndArgs(config: Json): { path: string; args: string[] } {
  const all = [...((config.Entrypoint as string[] | null) ?? []), ...((config.Cmd as string[] | null) ?? [])];
  return { path: all[0] ?? '', args: all.slice(1) };
}

// ---------------------------------------------------------------------------------------------- HostConfig checks

const RESTART_NAMES = ['', 'no', 'always', 'unless-stopped', 'on-failure'];

/** dockerd's verifyContainerSettings (the parts that apply here), plus defaults filled in. Throws 400s. */
export function normalizeHostConfig(hc: Json | undefined): Json {
  const h: Json = { ...(hc ?? {}) };
  const rp: Json = { Name: '', MaximumRetryCount: 0, ...(h.RestartPolicy ?? {}) };
  if (!RESTART_NAMES.includes(rp.Name)) throw badRequest(`invalid restart policy '${rp.Name}'`);
  if (rp.MaximumRetryCount < 0) throw badRequest('invalid restart policy: maximum retry count cannot be negative');
  if (rp.MaximumRetryCount > 0 && rp.Name !== 'on-failure')
    throw badRequest("invalid restart policy: maximum retry count can only be used with 'on-failure'");
  if (rp.Name === '') rp.Name = 'no';
  h.RestartPolicy = rp;
  if (h.AutoRemove && rp.Name !== 'no') throw badRequest("can't create 'AutoRemove' container with restart policy");
  checkResources(h);
  if (!h.NetworkMode || h.NetworkMode === 'default') h.NetworkMode = 'bridge';
  h.ShmSize = h.ShmSize && h.ShmSize > 0 ? h.ShmSize : DEFAULT_SHM_SIZE;
  if (h.ShmSize < 0) throw badRequest('SHM size can not be less than 0');
  h.LogConfig =
    h.LogConfig && h.LogConfig.Type ? h.LogConfig : { Type: 'json-file', Config: h.LogConfig?.Config ?? {} };
  if (h.LogConfig.Type !== 'json-file' && h.LogConfig.Type !== 'none' && h.LogConfig.Type !== 'local')
    throw badRequest(`logging driver ${JSON.stringify(h.LogConfig.Type)} is not supported: use json-file`);
  h.Binds = h.Binds ?? null;
  h.CapAdd = h.CapAdd ?? null;
  h.CapDrop = h.CapDrop ?? null;
  h.Privileged = !!h.Privileged;
  h.ReadonlyRootfs = !!h.ReadonlyRootfs;
  h.AutoRemove = !!h.AutoRemove;
  h.IpcMode = h.IpcMode || 'private';
  h.CgroupnsMode = h.CgroupnsMode || 'private';
  h.Isolation = h.Isolation ?? '';
  h.Runtime = h.Runtime || 'runc';
  h.ConsoleSize = h.ConsoleSize ?? [0, 0];
  h.MaskedPaths = h.MaskedPaths ?? (h.Privileged ? null : [...MASKED_PATHS]);
  h.ReadonlyPaths = h.ReadonlyPaths ?? (h.Privileged ? null : [...READONLY_PATHS]);
  return h;
}

/** Resource checks shared by create and update. */
export function checkResources(h: Json): void {
  if (h.Memory && h.Memory > 0 && h.Memory < 6 * 1024 * 1024) throw badRequest('Minimum memory limit allowed is 6MB');
  if (h.Memory > 0 && h.MemorySwap > 0 && h.MemorySwap < h.Memory)
    throw badRequest('Minimum memoryswap limit should be larger than memory limit, see usage');
  if (!(h.Memory > 0) && h.MemorySwap > 0)
    throw badRequest('You should always set the Memory limit when using Memoryswap limit, see usage');
  if (h.MemoryReservation > 0 && h.Memory > 0 && h.MemoryReservation > h.Memory)
    throw badRequest('Minimum memory limit can not be less than memory reservation limit, see usage');
  if (h.MemorySwappiness !== undefined && h.MemorySwappiness !== null && h.MemorySwappiness !== -1) {
    if (h.MemorySwappiness < 0 || h.MemorySwappiness > 100)
      throw badRequest(`Invalid value: ${h.MemorySwappiness}, valid memory swappiness range is 0-100`);
  }
  if (h.NanoCpus > 0 && (h.CpuPeriod > 0 || h.CpuQuota > 0)) {
    if (h.CpuPeriod > 0) throw badRequest('Conflicting options: Nano CPUs and CPU Period cannot both be set');
    throw badRequest('Conflicting options: Nano CPUs and CPU Quota cannot both be set');
  }
  if (h.NanoCpus < 0) throw badRequest('Range of CPUs is from 0.01 to the number of CPUs available');
  if (h.CpuPeriod && (h.CpuPeriod < 1000 || h.CpuPeriod > 1_000_000))
    throw badRequest('CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
  if (h.CpuQuota && h.CpuQuota > 0 && h.CpuQuota < 1000)
    throw badRequest('CPU cfs quota can not be less than 1ms (i.e. 1000)');
  if (h.BlkioWeight && (h.BlkioWeight < 10 || h.BlkioWeight > 1000))
    throw badRequest('Range of blkio weight is from 10 to 1000');
  if (h.CpusetCpus && !/^[0-9,-]+$/.test(h.CpusetCpus))
    throw badRequest(`Invalid value ${h.CpusetCpus} for cpuset cpus`);
  if (h.CpusetMems && !/^[0-9,-]+$/.test(h.CpusetMems))
    throw badRequest(`Invalid value ${h.CpusetMems} for cpuset mems`);
}

// ---------------------------------------------------------------------------------------------- capabilities

/** "net_admin", "NET_ADMIN", "CAP_NET_ADMIN" → "CAP_NET_ADMIN"; "all" → "ALL". */
export function normalizeCap(c: string): string {
  const u = c.trim().toUpperCase();
  if (u === 'ALL') return 'ALL';
  return u.startsWith('CAP_') ? u : `CAP_${u}`;
}

/** Docker's TweakCapabilities. `all` is every capability this host can give. */
export function tweakCapabilities(
  adds: readonly string[] | null | undefined,
  drops: readonly string[] | null | undefined,
  privileged: boolean,
  all: readonly string[],
): string[] {
  if (privileged) return [...all];
  const add = (adds ?? []).map(normalizeCap);
  const drop = (drops ?? []).map(normalizeCap);
  for (const c of [...add, ...drop])
    if (c !== 'ALL' && !ALL_KNOWN_CAPS.includes(c)) throw badRequest(`unknown capability: ${JSON.stringify(c)}`);
  if (add.length === 0 && drop.length === 0) return [...DEFAULT_CAPS];
  let caps: string[];
  if (add.includes('ALL')) caps = all.filter((c) => !drop.includes(c));
  else if (drop.includes('ALL')) caps = [];
  else caps = DEFAULT_CAPS.filter((c) => !drop.includes(c));
  for (const c of add) if (c !== 'ALL' && !caps.includes(c)) caps.push(c);
  return caps;
}

// ---------------------------------------------------------------------------------------------- security options

export interface SecurityOptions {
  seccomp: 'default' | 'unconfined' | { profile: string };
  noNewPrivileges: boolean;
  unmaskSystemPaths: boolean;
}

export function parseSecurityOpt(opts: readonly string[] | null | undefined): SecurityOptions {
  const out: SecurityOptions = { seccomp: 'default', noNewPrivileges: false, unmaskSystemPaths: false };
  for (const opt of opts ?? []) {
    if (opt === 'no-new-privileges') {
      out.noNewPrivileges = true;
      continue;
    }
    // key=value, or the legacy key:value.
    const m = /^([a-z-]+)[=:]([\s\S]*)$/.exec(opt);
    if (!m) throw badRequest(`Invalid --security-opt: ${JSON.stringify(opt)}`);
    const key = m[1]!;
    const value = m[2]!;
    switch (key) {
      case 'no-new-privileges':
        if (value !== 'true' && value !== 'false') throw badRequest(`invalid --security-opt 2: ${JSON.stringify(opt)}`);
        out.noNewPrivileges = value === 'true';
        break;
      case 'seccomp':
        if (value === 'unconfined') out.seccomp = 'unconfined';
        else if (value === 'builtin' || value === '') out.seccomp = 'default';
        else out.seccomp = { profile: value };
        break;
      case 'apparmor':
        if (value !== 'unconfined')
          throw badRequest(`AppArmor is not available here: --security-opt apparmor=${value} cannot be applied`);
        break;
      case 'label':
        if (value !== 'disable' && value !== 'disable:true' && value !== 'true')
          throw badRequest(`SELinux is not available here: --security-opt label=${value} cannot be applied`);
        break;
      case 'systempaths':
        if (value !== 'unconfined') throw badRequest(`Invalid --security-opt: ${JSON.stringify(opt)}`);
        out.unmaskSystemPaths = true;
        break;
      default:
        throw badRequest(`Invalid --security-opt: ${JSON.stringify(opt)}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- mounts

export interface MountPoint {
  Type: 'bind' | 'tmpfs' | 'volume';
  Source: string;
  Destination: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
  /** tmpfs options (mount(8) style) for tmpfs mounts. */
  options?: string[];
  /** Volumes: the volume's name ('' until an anonymous one is made at create), its driver, and how to make it. */
  Name?: string;
  Driver?: string;
  /** Volumes: do not fill an empty volume with the image's content (`nocopy`, VolumeOptions.NoCopy). */
  noCopy?: boolean;
  /** Volumes (--mount): labels and driver options for a volume made by this mount. */
  volumeLabels?: Record<string, string>;
  volumeOptions?: Record<string, string>;
}

const PROPAGATIONS = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'];

/** Cleans an absolute container path ("/a//b/../c/" → "/a/c"); a 400 when it is not absolute. */
export function cleanContainerPath(p: string, what: string): string {
  if (!p.startsWith('/'))
    throw badRequest(`invalid mount config: ${what} ${JSON.stringify(p)} must be an absolute path`);
  const parts: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return `/${parts.join('/')}`;
}

/** A `-v src:dst[:opts]` bind, `-v name:dst[:opts]` named volume or `-v /dst` anonymous volume (HostConfig.Binds). */
export function parseBind(spec: string): MountPoint {
  const parts = spec.split(':');
  if (parts.length === 1 && spec.startsWith('/')) {
    const dst = cleanContainerPath(spec, 'destination');
    if (dst === '/') throw badRequest(`invalid specification: destination can't be '/' in '${spec}'`);
    return volumePoint('', dst, '', true);
  }
  if (parts.length < 2 || parts.length > 3) throw badRequest(`invalid volume specification: '${spec}'`);
  const [src, dst, opts = ''] = parts as [string, string, string?];
  if (dst === '' || src === '') throw badRequest(`invalid volume specification: '${spec}'`);
  const isBind = src.startsWith('/');
  const m: MountPoint = isBind
    ? {
        Type: 'bind',
        Source: src,
        Destination: cleanContainerPath(dst, 'destination'),
        Mode: opts,
        RW: true,
        Propagation: 'rprivate',
      }
    : volumePoint(src, cleanContainerPath(dst, 'destination'), opts || 'z', true);
  if (m.Destination === '/') throw badRequest(`invalid specification: destination can't be '/' in '${spec}'`);
  for (const o of opts ? opts.split(',') : []) {
    if (o === 'ro') m.RW = false;
    else if (o === 'rw') m.RW = true;
    else if (o === 'nocopy' && !isBind) m.noCopy = true;
    else if (PROPAGATIONS.includes(o) && isBind) m.Propagation = o;
    else if (o === 'z' || o === 'Z' || o === 'nocopy' || o === 'consistent' || o === 'cached' || o === 'delegated')
      continue;
    else throw badRequest(`invalid mode: ${o}`);
  }
  return m;
}

function volumePoint(name: string, dst: string, mode: string, rw: boolean): MountPoint {
  return {
    Type: 'volume',
    Name: name,
    Source: '',
    Destination: dst,
    Driver: 'local',
    Mode: mode,
    RW: rw,
    Propagation: '',
  };
}

/** A `--mount` (HostConfig.Mounts) entry. */
export function parseMount(m: Json): MountPoint {
  const type = m.Type;
  if (!m.Target) throw badRequest('invalid mount config: Target must not be empty');
  const dst = cleanContainerPath(String(m.Target), 'mount path');
  if (type === 'bind') {
    if (!m.Source) throw badRequest(`invalid mount config for type "bind": field Source must not be empty`);
    if (!String(m.Source).startsWith('/'))
      throw badRequest(
        `invalid mount config for type "bind": invalid mount path: '${m.Source}' mount path must be absolute`,
      );
    const prop = m.BindOptions?.Propagation || 'rprivate';
    if (!PROPAGATIONS.includes(prop)) throw badRequest(`invalid propagation mode: ${prop}`);
    return {
      Type: 'bind',
      Source: String(m.Source),
      Destination: dst,
      Mode: '',
      RW: !m.ReadOnly,
      Propagation: prop,
    };
  }
  if (type === 'tmpfs') {
    if (m.Source) throw badRequest('invalid mount config for type "tmpfs": field Source must not be specified');
    const options = ['nosuid', 'nodev', 'noexec'];
    if (m.TmpfsOptions?.SizeBytes) options.push(`size=${m.TmpfsOptions.SizeBytes}`);
    if (m.TmpfsOptions?.Mode) options.push(`mode=${(m.TmpfsOptions.Mode as number).toString(8)}`);
    if (m.ReadOnly) options.push('ro');
    return { Type: 'tmpfs', Source: '', Destination: dst, Mode: '', RW: !m.ReadOnly, Propagation: '', options };
  }
  if (type === 'volume') {
    if (m.BindOptions)
      throw badRequest('invalid mount config for type "volume": field BindOptions must not be specified');
    if (m.TmpfsOptions)
      throw badRequest('invalid mount config for type "volume": field TmpfsOptions must not be specified');
    const vo = (m.VolumeOptions ?? {}) as Json;
    if (vo.Subpath) throw new DockerError(501, 'volume-subpath is not supported yet');
    const driver = vo.DriverConfig?.Name || 'local';
    if (driver !== 'local')
      throw new DockerError(404, `error looking up volume plugin ${driver}: plugin "${driver}" not found`);
    const source = String(m.Source ?? '');
    const p = volumePoint(source, dst, 'z', !m.ReadOnly);
    if (vo.NoCopy) p.noCopy = true;
    if (vo.Labels && Object.keys(vo.Labels as Json).length > 0) p.volumeLabels = { ...(vo.Labels as Json) };
    if (vo.DriverConfig?.Options && Object.keys(vo.DriverConfig.Options as Json).length > 0)
      p.volumeOptions = { ...(vo.DriverConfig.Options as Json) };
    return p;
  }
  throw badRequest(`invalid mount config: mount type unknown: ${JSON.stringify(type)}`);
}

/** `--tmpfs /run:rw,size=64m` (HostConfig.Tmpfs). */
export function parseTmpfs(dst: string, opts: string): MountPoint {
  const options = ['noexec', 'nosuid', 'nodev'];
  for (const o of opts ? opts.split(',') : []) {
    if (o === 'exec') {
      options.splice(options.indexOf('noexec'), 1);
      continue;
    }
    if (o === 'suid' || o === 'dev') {
      const i = options.indexOf(`no${o}`);
      if (i >= 0) options.splice(i, 1);
      continue;
    }
    if (!options.includes(o)) options.push(o);
  }
  return {
    Type: 'tmpfs',
    Source: '',
    Destination: cleanContainerPath(dst, 'tmpfs destination'),
    Mode: opts,
    RW: !options.includes('ro'),
    Propagation: '',
    options,
  };
}

/** Every user mount of a HostConfig, checked for duplicates. */
export function userMounts(h: Json): MountPoint[] {
  const out: MountPoint[] = [];
  for (const b of (h.Binds as string[] | null) ?? []) out.push(parseBind(b));
  for (const m of (h.Mounts as Json[] | null) ?? []) out.push(parseMount(m));
  for (const [dst, opts] of Object.entries((h.Tmpfs as Record<string, string> | null) ?? {}))
    out.push(parseTmpfs(dst, opts));
  const seen = new Set<string>();
  for (const m of out) {
    if (seen.has(m.Destination)) throw badRequest(`Duplicate mount point: ${m.Destination}`);
    seen.add(m.Destination);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- resources

const SIZE_UNITS: Record<string, number> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** "10m", "1g", "1024" → bytes (log-opts max-size). */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$/i.exec(s.trim());
  if (!m) throw badRequest(`invalid size: '${s}'`);
  return Math.floor(Number(m[1]) * SIZE_UNITS[(m[2] || 'b').toLowerCase()]!);
}

const RLIMITS: Record<string, string> = {
  core: 'RLIMIT_CORE',
  cpu: 'RLIMIT_CPU',
  data: 'RLIMIT_DATA',
  fsize: 'RLIMIT_FSIZE',
  locks: 'RLIMIT_LOCKS',
  memlock: 'RLIMIT_MEMLOCK',
  msgqueue: 'RLIMIT_MSGQUEUE',
  nice: 'RLIMIT_NICE',
  nofile: 'RLIMIT_NOFILE',
  nproc: 'RLIMIT_NPROC',
  rss: 'RLIMIT_RSS',
  rtprio: 'RLIMIT_RTPRIO',
  rttime: 'RLIMIT_RTTIME',
  sigpending: 'RLIMIT_SIGPENDING',
  stack: 'RLIMIT_STACK',
};

export function rlimits(ulimits: Json[] | null | undefined): Json[] {
  return (ulimits ?? []).map((u) => {
    const type = RLIMITS[String(u.Name)];
    if (!type) throw badRequest(`invalid ulimit type: ${u.Name}`);
    if (u.Soft > u.Hard)
      throw badRequest(`ulimit soft limit must be less than or equal to hard limit: ${u.Soft} > ${u.Hard}`);
    return { type, hard: Number(u.Hard), soft: Number(u.Soft) };
  });
}

export interface DeviceInfo {
  type: 'c' | 'b' | 'p';
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

/** OCI linux.resources from a HostConfig (create, and update's Tasks.Update). */
export function resources(h: Json, statDevice?: (path: string) => DeviceInfo): Json {
  const r: Json = {};
  const mem: Json = {};
  if (h.Memory > 0) mem.limit = h.Memory;
  if (h.MemorySwap > 0 || h.MemorySwap === -1) mem.swap = h.MemorySwap;
  if (h.MemoryReservation > 0) mem.reservation = h.MemoryReservation;
  if (h.MemorySwappiness !== undefined && h.MemorySwappiness !== null && h.MemorySwappiness >= 0)
    mem.swappiness = h.MemorySwappiness;
  if (h.OomKillDisable) mem.disableOOMKiller = true;
  if (Object.keys(mem).length > 0) r.memory = mem;
  const cpu: Json = {};
  if (h.CpuShares > 0) cpu.shares = h.CpuShares;
  if (h.NanoCpus > 0) {
    cpu.period = 100_000;
    cpu.quota = Math.floor((h.NanoCpus * 100_000) / 1e9);
  }
  if (h.CpuPeriod > 0) cpu.period = h.CpuPeriod;
  if (h.CpuQuota > 0 || h.CpuQuota === -1) cpu.quota = h.CpuQuota;
  if (h.CpusetCpus) cpu.cpus = h.CpusetCpus;
  if (h.CpusetMems) cpu.mems = h.CpusetMems;
  if (Object.keys(cpu).length > 0) r.cpu = cpu;
  if (h.PidsLimit !== undefined && h.PidsLimit !== null && h.PidsLimit !== 0)
    r.pids = { limit: h.PidsLimit > 0 ? h.PidsLimit : -1 };
  const blk: Json = {};
  if (h.BlkioWeight > 0) blk.weight = h.BlkioWeight;
  const dev = (path: string): { major: number; minor: number } => {
    if (!statDevice) throw badRequest(`cannot resolve device ${path}`);
    const d = statDevice(path);
    return { major: d.major, minor: d.minor };
  };
  if (h.BlkioWeightDevice?.length)
    blk.weightDevice = (h.BlkioWeightDevice as Json[]).map((w) => ({ ...dev(w.Path), weight: w.Weight }));
  const throttle = (key: string, out: string): void => {
    if ((h[key] as Json[] | undefined)?.length)
      blk[out] = (h[key] as Json[]).map((t) => ({ ...dev(t.Path), rate: t.Rate }));
  };
  throttle('BlkioDeviceReadBps', 'throttleReadBpsDevice');
  throttle('BlkioDeviceWriteBps', 'throttleWriteBpsDevice');
  throttle('BlkioDeviceReadIOps', 'throttleReadIOPSDevice');
  throttle('BlkioDeviceWriteIOps', 'throttleWriteIOPSDevice');
  if (Object.keys(blk).length > 0) r.blockIO = blk;
  return r;
}

// ---------------------------------------------------------------------------------------------- the spec

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
}

export interface SpecInput {
  id: string;
  /** The merged Config. */
  config: Json;
  /** The normalised HostConfig. */
  hostConfig: Json;
  /** Config.User (and GroupAdd) resolved against the rootfs' /etc/passwd and /etc/group. */
  user: ResolvedUser;
  /** Files made per container, bind-mounted: /etc/hostname, /etc/hosts, /etc/resolv.conf. */
  files: { hostname: string; hosts: string; resolvConf: string };
  /** Every capability the host can give (its bounding set): Privileged and CapAdd ALL. */
  allCaps: readonly string[];
  /** Go arch name and kernel release for the seccomp profile's filters. */
  arch: string;
  kernel: string;
  cgroupVersion: 1 | 2;
  /** The init binary on the host (HostConfig.Init); undefined when not available. */
  initPath?: string;
  /** Namespace paths of other containers (`container:<x>` modes), or undefined when not running. */
  namespacePath?: (ref: string, ns: string) => string;
  statDevice?: (path: string) => DeviceInfo;
  /** Every device on the host (Privileged). */
  hostDevices?: () => Array<DeviceInfo & { path: string }>;
  /** The host's hostname (NetworkMode host). */
  hostHostname?: string;
  /** The container's mounts as resolved at create (volumes with their host paths); else parsed from HostConfig. */
  mountPoints?: MountPoint[];
}

const INIT_IN_CONTAINER = '/sbin/docker-init';

function bindMount(dst: string, src: string, ro: boolean, propagation = 'rprivate'): Json {
  const options = ['rbind', propagation];
  if (ro) options.push('ro');
  return { destination: dst, type: 'bind', source: src, options };
}

function parseDeviceMapping(d: Json): { host: string; container: string; perms: string } {
  const host = String(d.PathOnHost ?? '');
  if (!host.startsWith('/')) throw badRequest(`invalid device path: ${JSON.stringify(host)}`);
  const container = d.PathInContainer ? String(d.PathInContainer) : host;
  const perms = d.CgroupPermissions ? String(d.CgroupPermissions) : 'rwm';
  if (!/^[rwm]{1,3}$/.test(perms)) throw badRequest(`invalid device cgroup permissions: ${perms}`);
  return { host, container, perms };
}

function namespaceFor(
  mode: string,
  ns: string,
  input: SpecInput,
  what: string,
): { type: string; path?: string } | undefined {
  if (mode === 'host') return undefined;
  if (mode.startsWith('container:')) {
    if (!input.namespacePath) throw badRequest(`${what} mode container: is not supported here`);
    return { type: ns, path: input.namespacePath(mode.slice('container:'.length), ns) };
  }
  return { type: ns };
}

/** The OCI runtime spec (config.json) for a container. Throws 400s for what cannot be honoured. */
export function buildSpec(input: SpecInput): Json {
  const c = input.config;
  const h = input.hostConfig;
  const sec = parseSecurityOpt(h.SecurityOpt as string[] | null);
  const privileged = !!h.Privileged;
  const caps = tweakCapabilities(h.CapAdd, h.CapDrop, privileged, input.allCaps);
  const { path, args: rest } = pathAndArgs(c);
  let args = [path, ...rest];

  const env: string[] = [...((c.Env as string[]) ?? [])];
  if (!env.some((e) => e.startsWith('PATH='))) env.unshift(DEFAULT_PATH_ENV);
  if (!env.some((e) => e.startsWith('HOSTNAME='))) env.unshift(`HOSTNAME=${c.Hostname}`);
  if (c.Tty && !env.some((e) => e.startsWith('TERM='))) env.push('TERM=xterm');

  const mounts: Json[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    {
      destination: '/sys',
      type: 'sysfs',
      source: 'sysfs',
      options: ['nosuid', 'noexec', 'nodev', privileged ? 'rw' : 'ro'],
    },
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['nosuid', 'noexec', 'nodev', 'relatime', privileged ? 'rw' : 'ro'],
    },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
  ];
  const user = input.mountPoints ?? userMounts(h);
  const userDst = new Set(user.map((m) => m.Destination));
  if (!userDst.has('/dev/shm') && h.IpcMode !== 'host')
    mounts.push({
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${h.ShmSize ?? DEFAULT_SHM_SIZE}`],
    });
  const files: Array<[string, string]> = [
    ['/etc/resolv.conf', input.files.resolvConf],
    ['/etc/hostname', input.files.hostname],
    ['/etc/hosts', input.files.hosts],
  ];
  for (const [dst, src] of files) if (!userDst.has(dst)) mounts.push(bindMount(dst, src, false));
  // User mounts, parents before children (Docker sorts by the depth of the destination).
  const sorted = [...user].sort((a, b) => a.Destination.split('/').length - b.Destination.split('/').length);
  for (const m of sorted) {
    if (m.Type === 'bind') mounts.push(bindMount(m.Destination, m.Source, !m.RW, m.Propagation));
    else if (m.Type === 'volume') {
      // The volume's directory on the host (resolved at create): a bind, as dockerd's local driver does.
      if (!m.Source) throw new DockerError(500, `volume for ${m.Destination} has no host path`);
      mounts.push(bindMount(m.Destination, m.Source, !m.RW));
    } else mounts.push({ destination: m.Destination, type: 'tmpfs', source: 'tmpfs', options: m.options ?? [] });
  }
  if (h.Init) {
    if (!input.initPath) throw new DockerError(501, '--init is not available yet: skiff-docker-init is not installed');
    mounts.push(bindMount(INIT_IN_CONTAINER, input.initPath, true));
    args = [INIT_IN_CONTAINER, '--', ...args];
  }

  // Namespaces.
  const namespaces: Json[] = [{ type: 'mount' }];
  const add = (n: { type: string; path?: string } | undefined): void => {
    if (n) namespaces.push(n);
  };
  add(namespaceFor(h.PidMode || '', 'pid', input, 'pid'));
  add(namespaceFor(h.IpcMode === 'shareable' || h.IpcMode === 'private' ? '' : h.IpcMode || '', 'ipc', input, 'ipc'));
  add(namespaceFor(h.UTSMode || '', 'uts', input, 'uts'));
  const net = String(h.NetworkMode || 'bridge');
  add(namespaceFor(net, 'network', input, 'network'));
  if (h.CgroupnsMode !== 'host' && input.cgroupVersion === 2) namespaces.push({ type: 'cgroup' });
  const hostUts = h.UTSMode === 'host' || net === 'host';

  // Devices.
  const devices: Json[] = [];
  const deviceRules: Json[] = privileged
    ? [{ allow: true, access: 'rwm' }]
    : DEFAULT_DEVICE_RULES.map((d) => ({ ...d }));
  if (privileged && input.hostDevices) {
    for (const d of input.hostDevices())
      devices.push({
        path: d.path,
        type: d.type,
        major: d.major,
        minor: d.minor,
        fileMode: d.fileMode,
        uid: d.uid,
        gid: d.gid,
      });
  }
  for (const d of (h.Devices as Json[] | null) ?? []) {
    const m = parseDeviceMapping(d);
    if (!input.statDevice) throw badRequest(`cannot add device ${m.host}`);
    const info = input.statDevice(m.host);
    devices.push({
      path: m.container,
      type: info.type,
      major: info.major,
      minor: info.minor,
      fileMode: info.fileMode,
      uid: info.uid,
      gid: info.gid,
    });
    if (!privileged)
      deviceRules.push({ allow: true, type: info.type, major: info.major, minor: info.minor, access: m.perms });
  }
  for (const rule of (h.DeviceCgroupRules as string[] | null) ?? []) {
    const m = /^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$/.exec(rule);
    if (!m) throw badRequest(`invalid device cgroup rule: ${JSON.stringify(rule)}`);
    const r: Json = { allow: true, type: m[1], access: m[4] };
    if (m[2] !== '*') r.major = Number(m[2]);
    if (m[3] !== '*') r.minor = Number(m[3]);
    deviceRules.push(r);
  }

  const res = resources(h, input.statDevice);
  res.devices = deviceRules;

  const process: Json = {
    terminal: !!c.Tty,
    user: {
      uid: input.user.uid,
      gid: input.user.gid,
      ...(input.user.additionalGids.length > 0 ? { additionalGids: input.user.additionalGids } : {}),
    },
    args,
    env,
    cwd: c.WorkingDir || '/',
    capabilities: { bounding: caps, effective: caps, permitted: caps },
    noNewPrivileges: sec.noNewPrivileges,
  };
  if (c.Tty && Array.isArray(h.ConsoleSize) && h.ConsoleSize[0] > 0 && h.ConsoleSize[1] > 0)
    process.consoleSize = { height: h.ConsoleSize[0], width: h.ConsoleSize[1] };
  const rl = rlimits(h.Ulimits as Json[] | null);
  if (rl.length > 0) process.rlimits = rl;
  if (h.OomScoreAdj) process.oomScoreAdj = h.OomScoreAdj;

  const linux: Json = {
    resources: res,
    cgroupsPath: `/skiff/${input.id}`,
    namespaces,
  };
  if (devices.length > 0) linux.devices = devices;
  if (!privileged && !sec.unmaskSystemPaths) {
    linux.maskedPaths = (h.MaskedPaths as string[] | null) ?? MASKED_PATHS;
    linux.readonlyPaths = (h.ReadonlyPaths as string[] | null) ?? READONLY_PATHS;
  }
  if (h.Sysctls && Object.keys(h.Sysctls).length > 0) linux.sysctl = { ...h.Sysctls };
  if (!privileged && sec.seccomp !== 'unconfined') {
    let profile = defaultSeccompProfile;
    if (typeof sec.seccomp === 'object') {
      try {
        profile = parseSeccompProfile(sec.seccomp.profile);
      } catch (err) {
        throw badRequest((err as Error).message);
      }
    }
    const seccomp: OciSeccomp = toOciSeccomp(profile, { caps, arch: input.arch, kernel: input.kernel });
    linux.seccomp = seccomp;
  }

  const spec: Json = {
    ociVersion: '1.2.0',
    process,
    root: { path: 'rootfs', readonly: !!h.ReadonlyRootfs },
    mounts,
    linux,
  };
  spec.hostname = hostUts ? (input.hostHostname ?? c.Hostname) : c.Hostname;
  if (c.Domainname) spec.domainname = c.Domainname;
  const labels = (c.Labels as Record<string, string> | null) ?? {};
  if (Object.keys(labels).length > 0) spec.annotations = { ...labels };
  return spec;
}

// ---------------------------------------------------------------------------------------------- /etc files

/** /etc/hosts for a container: the localhost lines, ExtraHosts, and the container's own name when it has an IP. */
export function hostsFile(
  extraHosts: readonly string[] | null | undefined,
  self?: { ip: string; names: string[] },
  hostGatewayIp?: string,
): string {
  const lines = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::\tip6-localnet',
    'ff00::\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
  ];
  for (const e of extraHosts ?? []) {
    // "name:ip" (the CLI's form; the ip may be IPv6 with colons) or "name=ip".
    const i = e.includes('=') ? e.indexOf('=') : e.indexOf(':');
    if (i <= 0) throw badRequest(`invalid extra host: ${JSON.stringify(e)}`);
    const name = e.slice(0, i);
    let ip = e.slice(i + 1);
    if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
    if (ip === 'host-gateway') {
      if (!hostGatewayIp) throw badRequest('unable to derive the IP value for host-gateway');
      ip = hostGatewayIp;
    }
    if (!/^[0-9a-fA-F:.]+$/.test(ip)) throw badRequest(`invalid IP address in add-host: ${JSON.stringify(ip)}`);
    lines.push(`${ip}\t${name}`);
  }
  if (self) lines.push(`${self.ip}\t${self.names.join(' ')}`);
  return `${lines.join('\n')}\n`;
}

/** resolv.conf: the host's (without loopback servers, useless in a fresh netns), or Dns/DnsSearch/DnsOptions. */
export function resolvConf(
  host: string,
  opts: { dns?: string[] | null; search?: string[] | null; options?: string[] | null; hostNetwork?: boolean },
): string {
  const lines = host.split('\n');
  let servers = lines.map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1]).filter((s): s is string => !!s);
  if (!opts.hostNetwork) servers = servers.filter((s) => !s.startsWith('127.') && s !== '::1');
  let search = lines.map((l) => /^\s*(?:search|domain)\s+(.+)$/.exec(l)?.[1]).filter((s): s is string => !!s);
  let options = lines.map((l) => /^\s*options\s+(.+)$/.exec(l)?.[1]).filter((s): s is string => !!s);
  if (opts.dns && opts.dns.length > 0) servers = [...opts.dns];
  if (servers.length === 0) servers = ['8.8.8.8', '8.8.4.4'];
  if (opts.search && opts.search.length > 0) search = [opts.search.join(' ')];
  if (opts.options && opts.options.length > 0) options = [opts.options.join(' ')];
  const out: string[] = [];
  for (const s of servers) out.push(`nameserver ${s}`);
  if (search.length > 0) out.push(`search ${search.join(' ')}`);
  if (options.length > 0) out.push(`options ${options.join(' ')}`);
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------- users

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}
export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 4 || line.startsWith('#')) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) continue;
    out.push({ name: f[0]!, uid, gid });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 3 || line.startsWith('#')) continue;
    const gid = Number(f[2]);
    if (!Number.isInteger(gid)) continue;
    out.push({ name: f[0]!, gid, members: (f[3] ?? '').split(',').filter(Boolean) });
  }
  return out;
}

const isNum = (s: string): boolean => /^\d+$/.test(s);

/** Docker's user resolution (`user`, `uid`, `user:group`, `uid:gid`) against passwd and group; GroupAdd too. */
export function resolveUser(
  spec: string,
  passwd: PasswdEntry[],
  groups: GroupEntry[],
  groupAdd: readonly string[] | null | undefined = [],
): ResolvedUser {
  const [u = '', g] = spec.split(':', 2) as [string, string?];
  let uid = 0;
  let gid = 0;
  let name = 'root';
  if (u === '') {
    const root = passwd.find((p) => p.uid === 0);
    gid = root?.gid ?? 0;
  } else if (isNum(u)) {
    uid = Number(u);
    const p = passwd.find((x) => x.uid === uid);
    gid = p?.gid ?? 0;
    name = p?.name ?? '';
  } else {
    const p = passwd.find((x) => x.name === u);
    if (!p) throw new DockerError(500, `unable to find user ${u}: no matching entries in passwd file`);
    uid = p.uid;
    gid = p.gid;
    name = p.name;
  }
  if (g !== undefined && g !== '') {
    if (isNum(g)) gid = Number(g);
    else {
      const gr = groups.find((x) => x.name === g);
      if (!gr) throw new DockerError(500, `unable to find group ${g}: no matching entries in group file`);
      gid = gr.gid;
    }
  }
  const extra = new Set<number>();
  if (name && g === undefined)
    for (const gr of groups) if (gr.members.includes(name) && gr.gid !== gid) extra.add(gr.gid);
  for (const a of groupAdd ?? []) {
    if (isNum(a)) extra.add(Number(a));
    else {
      const gr = groups.find((x) => x.name === a);
      if (!gr) throw new DockerError(500, `Unable to find group ${a}: no matching entries in group file`);
      extra.add(gr.gid);
    }
  }
  return { uid, gid, additionalGids: [...extra] };
}

// ---------------------------------------------------------------------------------------------- signals

const SIGNALS: Record<string, number> = {
  HUP: 1,
  INT: 2,
  QUIT: 3,
  ILL: 4,
  TRAP: 5,
  ABRT: 6,
  IOT: 6,
  BUS: 7,
  FPE: 8,
  KILL: 9,
  USR1: 10,
  SEGV: 11,
  USR2: 12,
  PIPE: 13,
  ALRM: 14,
  TERM: 15,
  STKFLT: 16,
  CHLD: 17,
  CONT: 18,
  STOP: 19,
  TSTP: 20,
  TTIN: 21,
  TTOU: 22,
  URG: 23,
  XCPU: 24,
  XFSZ: 25,
  VTALRM: 26,
  PROF: 27,
  WINCH: 28,
  IO: 29,
  POLL: 29,
  PWR: 30,
  SYS: 31,
};

/** "SIGTERM", "term", "15", "SIGRTMIN+3" → the number; a 400 for anything else. */
export function parseSignal(s: string): number {
  const t = s.trim().toUpperCase();
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    if (n < 1 || n > 64) throw badRequest(`Invalid signal: ${s}`);
    return n;
  }
  const name = t.startsWith('SIG') ? t.slice(3) : t;
  const rt = /^RTMIN(?:\+(\d+))?$/.exec(name) ?? /^RTMAX(?:-(\d+))?$/.exec(name);
  if (rt) {
    const off = Number(rt[1] ?? 0);
    const n = name.startsWith('RTMIN') ? 34 + off : 64 - off;
    if (n < 34 || n > 64) throw badRequest(`Invalid signal: ${s}`);
    return n;
  }
  const n = SIGNALS[name];
  if (n === undefined) throw badRequest(`Invalid signal: ${s}`);
  return n;
}
