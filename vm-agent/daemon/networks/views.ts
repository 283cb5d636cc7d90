// The JSON the API answers for networks (GET /networks, GET /networks/{id}) in dockerd 28's shapes, and the list
// and prune filters as dockerd applies them (daemon/network/filter.go, daemon/prune.go). Pure: the routes hand in
// the records and who is attached.
import { badRequest, type EndpointState, type Filters } from '../contracts.js';
import type { NetworkRecord } from './types.js';

export type Json = Record<string, unknown>;

/** One container on a network, as NetworkManager.containersOn gives it. */
export interface ContainerOnNetwork {
  containerId: string;
  name: string;
  live?: EndpointState;
}

// ---------------------------------------------------------------------------------------------- views

/** What dockerd shows for its default bridge's options; ours hold too (icc, masquerade, 0.0.0.0 bindings). */
function defaultBridgeOptions(n: NetworkRecord): Record<string, string> {
  return {
    'com.docker.network.bridge.default_bridge': 'true',
    'com.docker.network.bridge.enable_icc': 'true',
    'com.docker.network.bridge.enable_ip_masquerade': 'true',
    'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0',
    'com.docker.network.bridge.name': n.bridge,
    'com.docker.network.driver.mtu': '1500',
  };
}

/** inspect's Containers: live endpoints only (a stopped container has none), keyed by container id. */
export function containersView(containers: ContainerOnNetwork[]): Json {
  const out: Json = {};
  for (const c of containers) {
    if (!c.live) continue;
    out[c.containerId] = {
      Name: c.name.replace(/^\//, ''),
      EndpointID: c.live.endpointId,
      MacAddress: c.live.macAddress,
      IPv4Address: `${c.live.ipAddress}/${c.live.prefixLen}`,
      IPv6Address: '',
    };
  }
  return out;
}

/**
 * A network as inspect shows it; with `containers` undefined, as the list shows it (dockerd's lists leave
 * Containers empty since API 1.28).
 */
export function networkView(n: NetworkRecord, containers?: ContainerOnNetwork[]): Json {
  const isBridge = n.driver === 'bridge';
  const options = n.predefined && isBridge ? { ...defaultBridgeOptions(n), ...n.options } : { ...n.options };
  return {
    Name: n.name,
    Id: n.id,
    Created: n.created,
    Scope: 'local',
    Driver: n.driver,
    // host and none have no addresses of their own (dockerd shows false there too).
    EnableIPv4: isBridge,
    EnableIPv6: false,
    IPAM: {
      Driver: 'default',
      // The CLI sends `{}` for a user network's IPAM options; the predefined ones were made with none.
      Options: n.predefined ? null : {},
      Config: n.ipam.map((c) => ({
        Subnet: c.subnet,
        ...(c.ipRange ? { IPRange: c.ipRange } : {}),
        Gateway: c.gateway,
      })),
    },
    Internal: n.internal,
    Attachable: n.attachable,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: containers ? containersView(containers) : {},
    Options: options,
    Labels: { ...n.labels },
  };
}

// ---------------------------------------------------------------------------------------------- list filters

const LIST_FILTERS = new Set(['dangling', 'driver', 'id', 'label', 'name', 'scope', 'type']);

/** dockerd's Args.Match: the exact value, or the value as an unanchored regexp (a bad regexp matches nothing). */
function match(values: string[], source: string): boolean {
  return values.some((v) => {
    if (v === source) return true;
    try {
      return new RegExp(v).test(source);
    } catch {
      return false;
    }
  });
}

/** dockerd's Args.MatchKVList: every `key` or `key=value` holds. */
export function matchLabels(want: string[], labels: Record<string, string>): boolean {
  return want.every((w) => {
    const i = w.indexOf('=');
    const key = i < 0 ? w : w.slice(0, i);
    if (!Object.hasOwn(labels, key)) return false;
    return i < 0 || labels[key] === w.slice(i + 1);
  });
}

function dangling(f: Filters): boolean | undefined {
  const values = f.get('dangling');
  if (!values || values.length === 0) return undefined;
  if (values.length > 1) throw badRequest('got more than one value for filter key "dangling"');
  const v = values[0];
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  throw badRequest(`invalid value for filter 'dangling', must be "true" (or "1"), or "false" (or "0")`);
}

/**
 * GET /networks?filters=: driver and scope exact; id and name as (unanchored) regexps, so any part matches;
 * label all of them; dangling true = a user network no running container is on (false = the rest); type
 * builtin (the predefined ones) or custom. `inUse` says whether a network has live endpoints.
 */
export function filterNetworks(
  all: NetworkRecord[],
  f: Filters,
  inUse: (n: NetworkRecord) => boolean,
): NetworkRecord[] {
  for (const k of f.keys()) if (!LIST_FILTERS.has(k)) throw badRequest(`invalid filter '${k}'`);
  const types = f.get('type') ?? [];
  for (const t of types) if (t !== 'builtin' && t !== 'custom') throw badRequest(`invalid filter: 'type'='${t}'`);
  const danglingOnly = dangling(f);
  const has = (k: string): string[] | undefined => {
    const v = f.get(k);
    return v && v.length > 0 ? v : undefined;
  };
  return all.filter((n) => {
    const driver = has('driver');
    if (driver && !driver.includes(n.driver)) return false;
    const name = has('name');
    if (name && !match(name, n.name)) return false;
    const id = has('id');
    if (id && !match(id, n.id)) return false;
    const label = has('label');
    if (label && !matchLabels(label, n.labels)) return false;
    const scope = has('scope');
    if (scope && !scope.includes('local')) return false;
    if (danglingOnly !== undefined) {
      const isDangling = !n.predefined && !inUse(n);
      if (isDangling !== danglingOnly) return false;
    }
    if (types.length > 0 && !types.includes(n.predefined ? 'builtin' : 'custom')) return false;
    return true;
  });
}

// ---------------------------------------------------------------------------------------------- prune filters

const PRUNE_FILTERS = new Set(['label', 'label!', 'until']);

/** A Go duration ("1h30m", "-10s", "1.5h"), in ms; undefined when `s` is not one. "0" is a timestamp in dockerd. */
function goDuration(s: string): number | undefined {
  if (s === '0' || !/^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$/.test(s)) return undefined;
  const unit: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    µs: 1e-3,
    μs: 1e-3,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
  };
  let ms = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) ms += Number(m[1]) * unit[m[2]!]!;
  return s.startsWith('-') ? -ms : ms;
}

const TIME_RE = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(\.\d+)?)?)?)?(Z|[+-]\d{2}:\d{2})?$/i;

/** An RFC 3339-like time (date, optional time to the nanosecond, optional zone: local time without one) in ms. */
export function parseTime(s: string): number | undefined {
  const m = TIME_RE.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map((x) => Number(x ?? 0)) as number[];
  const frac = m[7] ? Number(m[7]) * 1000 : 0;
  if (mo! < 1 || mo! > 12 || d! < 1 || d! > 31 || h! > 23 || mi! > 59 || sec! > 59) return undefined;
  const zone = m[8];
  if (!zone) return new Date(y!, mo! - 1, d, h, mi, sec).getTime() + frac;
  let ms = Date.UTC(y!, mo! - 1, d, h, mi, sec) + frac;
  if (zone.toUpperCase() !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    ms -= sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60_000;
  }
  return ms;
}

/** The prune `until` value (dockerd's GetTimestamp): a Go duration before `now`, a time, or UNIX seconds; in ms. */
export function parseUntil(value: string, now: number): number {
  const d = goDuration(value);
  if (d !== undefined) return now - d;
  const t = parseTime(value);
  if (t !== undefined) return t;
  if (/^-?\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  throw badRequest(`failed to parse value as time or duration: "${value}"`);
}

/**
 * POST /networks/prune?filters=: which unused user networks to remove. until keeps those created after it;
 * label (all must hold) and label! (a network is kept when all of its values hold), as dockerd.
 */
export function pruneMatcher(f: Filters, now: number): (n: NetworkRecord) => boolean {
  for (const k of f.keys()) if (!PRUNE_FILTERS.has(k)) throw badRequest(`invalid filter '${k}'`);
  const untilValues = f.get('until') ?? [];
  if (untilValues.length > 1) throw badRequest('more than one until filter specified');
  const until = untilValues.length === 1 ? parseUntil(untilValues[0]!, now) : undefined;
  const labels = f.get('label') ?? [];
  const notLabels = f.get('label!') ?? [];
  return (n) => {
    if (n.predefined) return false;
    if (until !== undefined) {
      const created = parseTime(n.created) ?? Date.parse(n.created);
      if (created > until) return false;
    }
    if (!matchLabels(labels, n.labels)) return false;
    if (notLabels.length > 0 && matchLabels(notLabels, n.labels)) return false;
    return true;
  };
}
