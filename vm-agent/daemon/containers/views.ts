// The JSON the API answers for containers: GET /containers/{id}/json (inspect) and GET /containers/json (list),
// in the shapes the docker CLI, dockerode and docker-py read; and the list filters.
import { badRequest, type EndpointConfig, type EndpointState, type Filters, type PortMapping } from '../contracts.js';
import type { Json, MountPoint } from './spec.js';
import { ZERO_TIME, type ContainerRecord } from './store.js';

const STATUSES = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];

function mountsView(rec: ContainerRecord): Json[] {
  return (rec.mountPoints as MountPoint[]).map((m) =>
    m.Type === 'tmpfs'
      ? { Type: 'tmpfs', Source: '', Destination: m.Destination, Mode: m.Mode, RW: m.RW, Propagation: '' }
      : m.Type === 'volume'
        ? {
            Type: 'volume',
            Name: m.Name ?? '',
            Source: m.Source,
            Destination: m.Destination,
            Driver: m.Driver ?? 'local',
            Mode: m.Mode,
            RW: m.RW,
            Propagation: '',
          }
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

/** What the network service knows of a container, for its views. */
export interface NetView {
  endpoints: Record<string, EndpointState | { config: EndpointConfig; networkId: string }>;
  ports: PortMapping[];
}

const NO_NET: NetView = { endpoints: {}, ports: [] };

function endpointView(e: EndpointState | { config: EndpointConfig; networkId: string }): Json {
  const live = 'endpointId' in e ? e : undefined;
  return {
    IPAMConfig: e.config.IPAMConfig ?? null,
    Links: e.config.Links ?? null,
    Aliases: e.config.Aliases?.length ? e.config.Aliases : null,
    MacAddress: live?.macAddress ?? '',
    DriverOpts: e.config.DriverOpts ?? null,
    GwPriority: e.config.GwPriority ?? 0,
    NetworkID: e.networkId,
    EndpointID: live?.endpointId ?? '',
    Gateway: live?.gateway ?? '',
    IPAddress: live?.ipAddress ?? '',
    IPPrefixLen: live?.prefixLen ?? 0,
    IPv6Gateway: '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    DNSNames: live?.dnsNames.length ? live.dnsNames : null,
  };
}

function networksView(rec: ContainerRecord, net: NetView): Json {
  const mode = String(rec.hostConfig.NetworkMode ?? 'bridge');
  if (mode.startsWith('container:')) return {};
  const out: Json = {};
  for (const [name, e] of Object.entries(net.endpoints)) out[name] = endpointView(e);
  return out;
}

/** NetworkSettings.Ports: every exposed port, with its host bindings or null ("80/tcp": [{HostIp, HostPort}]). */
function portsView(rec: ContainerRecord, net: NetView, running: boolean): Json {
  const out: Json = {};
  if (!running) return out;
  for (const k of Object.keys((rec.config.ExposedPorts as Json | null) ?? {}))
    out[k.includes('/') ? k : `${k}/tcp`] = null;
  for (const p of net.ports) {
    const k = `${p.privatePort}/${p.protocol}`;
    const list = (out[k] as Json[] | null) ?? [];
    list.push({ HostIp: p.hostIp, HostPort: String(p.hostPort) });
    out[k] = list;
  }
  return out;
}

/** ps' Ports: published ones with their host side, exposed ones without. */
function listPorts(rec: ContainerRecord, net: NetView): Json[] {
  const out: Json[] = net.ports.map((p) => ({
    IP: p.hostIp,
    PrivatePort: p.privatePort,
    PublicPort: p.hostPort,
    Type: p.protocol,
  }));
  for (const k of Object.keys((rec.config.ExposedPorts as Json | null) ?? {})) {
    const [port, proto = 'tcp'] = k.split('/');
    if (!net.ports.some((p) => String(p.privatePort) === port && p.protocol === proto))
      out.push({ PrivatePort: Number(port), Type: proto });
  }
  return out;
}

export function inspectView(
  rec: ContainerRecord,
  sizes?: { rw: number; rootFs: number },
  execIds: string[] = [],
  net: NetView = NO_NET,
): Json {
  const s = rec.state;
  const active = s.status === 'running' || s.status === 'paused' || s.status === 'restarting';
  const bridge = net.endpoints.bridge;
  const bridgeEp = bridge && 'endpointId' in bridge ? bridge : undefined;
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
  // As dockerd: there once the container has started with a probe; kept (its last value) after it stops.
  if (rec.health) state.Health = rec.health;
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
      SandboxID: active ? rec.id : '',
      SandboxKey: active && s.pid ? `/proc/${s.pid}/ns/net` : '',
      Ports: portsView(rec, net, active),
      HairpinMode: false,
      LinkLocalIPv6Address: '',
      LinkLocalIPv6PrefixLen: 0,
      SecondaryIPAddresses: null,
      SecondaryIPv6Addresses: null,
      // The top-level address fields describe the default bridge only, as dockerd's.
      EndpointID: bridgeEp?.endpointId ?? '',
      Gateway: bridgeEp?.gateway ?? '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      IPAddress: bridgeEp?.ipAddress ?? '',
      IPPrefixLen: bridgeEp?.prefixLen ?? 0,
      IPv6Gateway: '',
      MacAddress: bridgeEp?.macAddress ?? '',
      Networks: networksView(rec, net),
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
    case 'running': {
      const up = `Up ${humanDuration(now - Date.parse(s.startedAt))}`;
      if (!rec.health) return up;
      return `${up} (${rec.health.Status === 'starting' ? 'health: starting' : rec.health.Status})`;
    }
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

export function listView(rec: ContainerRecord, sizes?: { rw: number; rootFs: number }, net: NetView = NO_NET): Json {
  const out: Json = {
    Id: rec.id,
    Names: [rec.name],
    Image: rec.image,
    ImageID: rec.imageId,
    Command: [rec.path, ...rec.args].map(quoteArg).join(' '),
    Created: Math.floor(Date.parse(rec.created) / 1000),
    Ports: listPorts(rec, net),
    Labels: (rec.config.Labels as Record<string, string> | null) ?? {},
    State: rec.state.status,
    Status: statusText(rec),
    HostConfig: { NetworkMode: rec.hostConfig.NetworkMode ?? 'bridge' },
    NetworkSettings: { Networks: networksView(rec, net) },
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
  /** The container's published ports (publish filter). */
  portsOf?(id: string): PortMapping[];
  /** Names and ids of the networks the container is on (network filter). */
  networksOf?(id: string): string[];
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
    // With and without the leading "/", as dockerd: `name=^web$` finds /web.
    const nameHit = (v: string): boolean => safeRegex(v).test(c.name) || safeRegex(v).test(c.name.slice(1));
    if (f.has('name') && !f.get('name')!.some(nameHit)) continue;
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
      const h = c.health?.Status ?? 'none';
      if (!f.get('health')!.includes(h)) continue;
    }
    if (f.has('network')) {
      const nets = o.networksOf?.(c.id) ?? [String(c.hostConfig.NetworkMode ?? 'bridge')];
      if (!f.get('network')!.some((n) => nets.includes(n))) continue;
    }
    if (f.has('volume')) {
      const dsts = c.mountPoints.flatMap((m) => [m.Name ?? m.Source, m.Destination]);
      if (!f.get('volume')!.some((v) => dsts.includes(v))) continue;
    }
    if (f.has('publish') || f.has('expose')) {
      const exposed = Object.keys((c.config.ExposedPorts as Json | null) ?? {});
      const published = (o.portsOf?.(c.id) ?? []).map((p) => `${p.privatePort}/${p.protocol}`);
      const has = (w: string, keys: string[]): boolean => keys.includes(w.includes('/') ? w : `${w}/tcp`);
      if (f.has('publish') && !f.get('publish')!.some((w) => has(w, published))) continue;
      if (f.has('expose') && !f.get('expose')!.some((w) => has(w, exposed))) continue;
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
