// The JSON the API answers for containers: GET /containers/{id}/json (inspect) and GET /containers/json (list),
// in the shapes the docker CLI, dockerode and docker-py read; and the list filters.
import { badRequest, type Filters } from '../contracts.js';
import type { Json, MountPoint } from './spec.js';
import { ZERO_TIME, type ContainerRecord } from './store.js';

const STATUSES = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];

function mountsView(rec: ContainerRecord): Json[] {
  return (rec.mountPoints as MountPoint[]).map((m) =>
    m.Type === 'tmpfs'
      ? { Type: 'tmpfs', Source: '', Destination: m.Destination, Mode: m.Mode, RW: m.RW, Propagation: '' }
      : {
          Type: m.Type,
          Source: m.Source,
          Destination: m.Destination,
          Mode: m.Mode,
          RW: m.RW,
          Propagation: m.Propagation,
        },
  );
}

function endpoint(): Json {
  return {
    IPAMConfig: null,
    Links: null,
    Aliases: null,
    MacAddress: '',
    DriverOpts: null,
    GwPriority: 0,
    NetworkID: '',
    EndpointID: '',
    Gateway: '',
    IPAddress: '',
    IPPrefixLen: 0,
    IPv6Gateway: '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    DNSNames: null,
  };
}

function networksView(rec: ContainerRecord): Json {
  const mode = String(rec.hostConfig.NetworkMode ?? 'bridge');
  if (mode.startsWith('container:')) return {};
  return { [mode]: endpoint() };
}

export function inspectView(
  rec: ContainerRecord,
  sizes?: { rw: number; rootFs: number },
  execIds: string[] = [],
): Json {
  const s = rec.state;
  const active = s.status === 'running' || s.status === 'paused' || s.status === 'restarting';
  const state: Json = {
    Status: s.status,
    Running: active,
    Paused: s.status === 'paused',
    Restarting: s.status === 'restarting',
    OOMKilled: s.oomKilled,
    Dead: s.status === 'dead',
    Pid: active ? s.pid : 0,
    ExitCode: s.exitCode,
    Error: s.error,
    StartedAt: s.startedAt,
    FinishedAt: s.finishedAt,
  };
  if (rec.config.Healthcheck) state.Health = rec.health ?? { Status: 'starting', FailingStreak: 0, Log: [] };
  const out: Json = {
    Id: rec.id,
    Created: rec.created,
    Path: rec.path,
    Args: rec.args,
    State: state,
    Image: rec.imageId,
    ResolvConfPath: rec.resolvConfPath,
    HostnamePath: rec.hostnamePath,
    HostsPath: rec.hostsPath,
    LogPath: rec.logPath,
    Name: rec.name,
    RestartCount: rec.restartCount,
    Driver: 'overlay2',
    Platform: rec.platform,
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: execIds.length > 0 ? execIds : null,
    HostConfig: rec.hostConfig,
    GraphDriver: {
      Name: 'overlay2',
      Data: {
        LowerDir: rec.rootfs.lowerDirs.join(':'),
        UpperDir: rec.rootfs.upperDir,
        MergedDir: '',
        WorkDir: '',
      },
    },
    Mounts: mountsView(rec),
    Config: rec.config,
    NetworkSettings: {
      Bridge: '',
      SandboxID: '',
      SandboxKey: '',
      Ports: {},
      HairpinMode: false,
      LinkLocalIPv6Address: '',
      LinkLocalIPv6PrefixLen: 0,
      SecondaryIPAddresses: null,
      SecondaryIPv6Addresses: null,
      EndpointID: '',
      Gateway: '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      IPAddress: '',
      IPPrefixLen: 0,
      IPv6Gateway: '',
      MacAddress: '',
      Networks: networksView(rec),
    },
  };
  if (sizes) {
    out.SizeRw = sizes.rw;
    out.SizeRootFs = sizes.rootFs;
  }
  return out;
}

/** "Up 5 seconds", "Exited (0) 3 minutes ago", as the CLI shows in `docker ps`. */
export function humanDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.round(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.round(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.round(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.round(h / 24 / 30)} months`;
  return `${Math.round(h / 24 / 365)} years`;
}

export function statusText(rec: ContainerRecord, now = Date.now()): string {
  const s = rec.state;
  switch (s.status) {
    case 'running':
      return `Up ${humanDuration(now - Date.parse(s.startedAt))}`;
    case 'paused':
      return `Up ${humanDuration(now - Date.parse(s.startedAt))} (Paused)`;
    case 'restarting':
      return `Restarting (${s.exitCode}) ${humanDuration(now - Date.parse(s.finishedAt))} ago`;
    case 'removing':
      return 'Removal In Progress';
    case 'dead':
      return 'Dead';
    case 'created':
      return 'Created';
    default:
      return s.finishedAt === ZERO_TIME
        ? ''
        : `Exited (${s.exitCode}) ${humanDuration(now - Date.parse(s.finishedAt))} ago`;
  }
}

function quoteArg(a: string): string {
  return /[\s"'\\]/.test(a) || a === '' ? JSON.stringify(a) : a;
}

export function listView(rec: ContainerRecord, sizes?: { rw: number; rootFs: number }): Json {
  const out: Json = {
    Id: rec.id,
    Names: [rec.name],
    Image: rec.image,
    ImageID: rec.imageId,
    Command: [rec.path, ...rec.args].map(quoteArg).join(' '),
    Created: Math.floor(Date.parse(rec.created) / 1000),
    Ports: [],
    Labels: (rec.config.Labels as Record<string, string> | null) ?? {},
    State: rec.state.status,
    Status: statusText(rec),
    HostConfig: { NetworkMode: rec.hostConfig.NetworkMode ?? 'bridge' },
    NetworkSettings: { Networks: networksView(rec) },
    Mounts: mountsView(rec),
  };
  if (sizes) {
    out.SizeRw = sizes.rw;
    out.SizeRootFs = sizes.rootFs;
  }
  return out;
}

const LIST_FILTERS = new Set([
  'ancestor',
  'before',
  'expose',
  'exited',
  'health',
  'id',
  'isolation',
  'is-task',
  'label',
  'label!',
  'name',
  'network',
  'publish',
  'since',
  'status',
  'volume',
]);

export interface ListOptions {
  all: boolean;
  limit: number;
  filters: Filters;
  /** Container refs (before/since) → the record; image refs (ancestor) → image ids. */
  lookup(ref: string): ContainerRecord;
  ancestorIds: Set<string>;
}

/** dockerd's list: newest first, filters as daemon/list.go. */
export function filterList(all: ContainerRecord[], o: ListOptions): ContainerRecord[] {
  const f = o.filters;
  for (const k of f.keys()) if (!LIST_FILTERS.has(k)) throw badRequest(`invalid filter '${k}'`);
  for (const v of f.get('status') ?? []) if (!STATUSES.includes(v)) throw badRequest(`invalid filter 'status=${v}'`);
  const exited = (f.get('exited') ?? []).map((v) => {
    if (!/^-?\d+$/.test(v)) throw badRequest(`invalid filter 'exited=${v}'`);
    return Number(v);
  });
  for (const v of f.get('health') ?? [])
    if (!['starting', 'healthy', 'unhealthy', 'none'].includes(v)) throw badRequest(`invalid filter 'health=${v}'`);
  const showAll = o.all || f.has('status') || o.limit > 0;
  const sorted = [...all].sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0));
  let beforeT: string | undefined;
  let sinceT: string | undefined;
  for (const v of f.get('before') ?? []) beforeT = o.lookup(v).created;
  for (const v of f.get('since') ?? []) sinceT = o.lookup(v).created;
  const out: ContainerRecord[] = [];
  for (const c of sorted) {
    const s = c.state.status;
    const running = s === 'running' || s === 'paused' || s === 'restarting';
    if (!running && !showAll && !f.has('exited')) continue;
    if (beforeT !== undefined && c.created >= beforeT) continue;
    if (sinceT !== undefined && c.created <= sinceT) continue;
    if (f.has('id') && !f.get('id')!.some((v) => c.id.startsWith(v))) continue;
    if (f.has('name') && !f.get('name')!.some((v) => safeRegex(v).test(c.name))) continue;
    if (f.has('status') && !f.get('status')!.includes(s)) continue;
    if (exited.length > 0) {
      if (s !== 'exited' || !exited.includes(c.state.exitCode)) continue;
    }
    const labels = (c.config.Labels as Record<string, string> | null) ?? {};
    if (f.has('label')) {
      const ok = f.get('label')!.every((w) => {
        const i = w.indexOf('=');
        return i < 0 ? w in labels : labels[w.slice(0, i)] === w.slice(i + 1);
      });
      if (!ok) continue;
    }
    if (f.has('label!')) {
      const hit = f.get('label!')!.some((w) => {
        const i = w.indexOf('=');
        return i < 0 ? w in labels : labels[w.slice(0, i)] === w.slice(i + 1);
      });
      if (hit) continue;
    }
    if (f.has('ancestor') && !o.ancestorIds.has(c.imageId)) continue;
    if (f.has('health')) {
      const h = c.config.Healthcheck ? (c.health?.Status ?? 'starting') : 'none';
      if (!f.get('health')!.includes(h)) continue;
    }
    if (f.has('network')) {
      const mode = String(c.hostConfig.NetworkMode ?? 'bridge');
      if (!f.get('network')!.includes(mode)) continue;
    }
    if (f.has('volume')) {
      const dsts = c.mountPoints.flatMap((m) => [m.Source, m.Destination]);
      if (!f.get('volume')!.some((v) => dsts.includes(v))) continue;
    }
    if (f.has('publish') || f.has('expose')) {
      const exposed = Object.keys((c.config.ExposedPorts as Json | null) ?? {});
      const want = [...(f.get('publish') ?? []), ...(f.get('expose') ?? [])];
      if (f.has('publish')) continue; // nothing is published before networking lands
      if (!want.some((w) => exposed.includes(w.includes('/') ? w : `${w}/tcp`))) continue;
    }
    if (f.has('is-task') && f.get('is-task')!.includes('true')) continue;
    out.push(c);
    if (o.limit > 0 && out.length >= o.limit) break;
  }
  return out;
}

function safeRegex(v: string): RegExp {
  try {
    return new RegExp(v);
  } catch {
    throw badRequest(`invalid filter 'name=${v}'`);
  }
}
