// Docker's container JSON (GET /containers/json and /containers/{id}/json) turned into skiff.agent.v1's
// ContainerSummary. Pure: the service feeds it what the engine answered.
import { toTimestamp, type Timestamp } from '../../common/timestamp.js';

// ----- the engine's shapes (only the fields we read) ------------------------------------------------------------

export interface DockerPort {
  IP?: string;
  PrivatePort: number;
  PublicPort?: number;
  Type: string;
}

interface NetworksHolder {
  Networks?: Record<string, unknown> | null;
}

/** One entry of GET /containers/json. */
export interface DockerContainerListEntry {
  Id: string;
  Names?: string[] | null;
  Image?: string;
  ImageID?: string;
  Command?: string;
  Created?: number;
  Ports?: DockerPort[] | null;
  Labels?: Record<string, string> | null;
  State?: string;
  Status?: string;
  /** API 1.51+ only; 1.50 engines say it in Status. */
  Health?: { Status?: string } | null;
  NetworkSettings?: NetworksHolder | null;
}

/** GET /containers/{id}/json (the parts we read). */
export interface DockerContainerInspect {
  Id: string;
  Name?: string;
  Created?: string;
  Path?: string;
  Args?: string[] | null;
  Image?: string;
  State?: {
    Status?: string;
    Running?: boolean;
    Paused?: boolean;
    Restarting?: boolean;
    ExitCode?: number;
    StartedAt?: string;
    FinishedAt?: string;
    Health?: { Status?: string } | null;
  } | null;
  Config?: {
    Image?: string;
    Labels?: Record<string, string> | null;
    Tty?: boolean;
  } | null;
  NetworkSettings?:
    (NetworksHolder & { Ports?: Record<string, Array<{ HostIp?: string; HostPort?: string }> | null> | null }) | null;
}

// ----- the proto's shapes (proto-loader keepCase) ---------------------------------------------------------------

export interface PublishedPortMsg {
  host_ip: string;
  host_port: number;
  container_port: number;
  protocol: string;
}

export interface ContainerSummaryMsg {
  id: string;
  name: string;
  image: string;
  image_id: string;
  command: string;
  created: Timestamp | null;
  state: string;
  status: string;
  health: string;
  exit_code: number;
  ports: PublishedPortMsg[];
  labels: Record<string, string>;
  compose_project: string;
  compose_service: string;
  networks: string[];
}

const COMPOSE_PROJECT = 'com.docker.compose.project';
const COMPOSE_SERVICE = 'com.docker.compose.service';

/** "starting", "healthy", "unhealthy" from a Status such as "Up 5 minutes (health: starting)"; "" without one. */
export function healthFromStatus(status: string): string {
  const m = /\((healthy|unhealthy|health: starting)\)/.exec(status);
  if (!m) return '';
  return m[1] === 'health: starting' ? 'starting' : (m[1] as string);
}

/** N from "Exited (N) 2 hours ago" (or "Restarting (N) …"); 0 otherwise. */
export function exitCodeFromStatus(status: string): number {
  const m = /^(?:Exited|Restarting) \((-?\d+)\)/.exec(status);
  return m ? Number(m[1]) : 0;
}

function networkNames(ns: NetworksHolder | null | undefined): string[] {
  return Object.keys(ns?.Networks ?? {}).sort();
}

function unixSeconds(s: number | undefined): Timestamp | null {
  return s === undefined ? null : { seconds: String(Math.floor(s)), nanos: 0 };
}

function compose(labels: Record<string, string>): { compose_project: string; compose_service: string } {
  return { compose_project: labels[COMPOSE_PROJECT] ?? '', compose_service: labels[COMPOSE_SERVICE] ?? '' };
}

/** A summary from a list entry. Ports without a PublicPort (exposed, not published) are left out. */
export function summaryFromList(c: DockerContainerListEntry): ContainerSummaryMsg {
  const labels = { ...(c.Labels ?? {}) };
  const status = c.Status ?? '';
  const ports = (c.Ports ?? [])
    .filter((p) => p.PublicPort !== undefined && p.PublicPort > 0)
    .map((p) => ({
      host_ip: p.IP ?? '',
      host_port: p.PublicPort as number,
      container_port: p.PrivatePort,
      protocol: p.Type,
    }));
  return {
    id: c.Id,
    name: (c.Names?.[0] ?? '').replace(/^\//, ''),
    image: c.Image ?? '',
    image_id: c.ImageID ?? '',
    command: c.Command ?? '',
    created: unixSeconds(c.Created),
    state: c.State ?? '',
    status,
    health: c.Health?.Status && c.Health.Status !== 'none' ? c.Health.Status : healthFromStatus(status),
    exit_code: exitCodeFromStatus(status),
    ports,
    labels,
    ...compose(labels),
    networks: networkNames(c.NetworkSettings),
  };
}

/** Quoted as `docker ps` shows a command: arguments with blanks or quotes in double quotes. */
function shellJoin(args: string[]): string {
  return args.map((a) => (a === '' || /[\s"'\\]/.test(a) ? JSON.stringify(a) : a)).join(' ');
}

/** "5 minutes", "About an hour", "2 days" as docker's units.HumanDuration. */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const min = Math.floor(ms / 60_000);
  if (min === 1) return 'About a minute';
  if (min < 60) return `${min} minutes`;
  const h = Math.floor(ms / 3_600_000 + 0.5);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(Math.floor(ms / 3_600_000) / 24 / 365)} years`;
}

const zeroTime = (t: string | undefined): boolean => !t || t.startsWith('0001-01-01');

/** The Status text `docker ps` would show, from inspect's State (inspect has no Status string of its own). */
export function statusFromState(state: DockerContainerInspect['State'], now = Date.now()): string {
  if (!state) return '';
  const since = (t: string | undefined): string => humanDuration(Math.max(0, now - Date.parse(t as string)));
  const health = state.Health?.Status;
  const healthText = health === 'starting' ? ' (health: starting)' : health && health !== 'none' ? ` (${health})` : '';
  switch (state.Status) {
    case 'running':
      return `Up ${since(state.StartedAt)}${healthText}`;
    case 'paused':
      return `Up ${since(state.StartedAt)} (Paused)`;
    case 'restarting':
      return `Restarting (${state.ExitCode ?? 0}) ${since(state.FinishedAt)} ago`;
    case 'exited':
      return zeroTime(state.FinishedAt) ? 'Exited' : `Exited (${state.ExitCode ?? 0}) ${since(state.FinishedAt)} ago`;
    case 'removing':
      return 'Removal In Progress';
    case 'dead':
      return 'Dead';
    case 'created':
      return 'Created';
    default:
      return state.Status ?? '';
  }
}

/** A summary from an inspect document; `now` makes the status text ("Up 5 minutes") reproducible in tests. */
export function summaryFromInspect(c: DockerContainerInspect, now = Date.now()): ContainerSummaryMsg {
  const labels = { ...(c.Config?.Labels ?? {}) };
  const ports: PublishedPortMsg[] = [];
  for (const [key, bindings] of Object.entries(c.NetworkSettings?.Ports ?? {})) {
    const [port, proto = 'tcp'] = key.split('/');
    for (const b of bindings ?? []) {
      const hostPort = Number(b.HostPort);
      if (!(hostPort > 0)) continue;
      ports.push({ host_ip: b.HostIp ?? '', host_port: hostPort, container_port: Number(port), protocol: proto });
    }
  }
  const health = c.State?.Health?.Status;
  return {
    id: c.Id,
    name: (c.Name ?? '').replace(/^\//, ''),
    image: c.Config?.Image ?? '',
    image_id: c.Image ?? '',
    command: shellJoin([...(c.Path ? [c.Path] : []), ...(c.Args ?? [])]),
    created: toTimestamp(c.Created),
    state: c.State?.Status ?? '',
    status: statusFromState(c.State, now),
    health: health && health !== 'none' ? health : '',
    exit_code: c.State?.ExitCode ?? 0,
    ports,
    labels,
    ...compose(labels),
    networks: networkNames(c.NetworkSettings),
  };
}
