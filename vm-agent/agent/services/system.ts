// skiff.agent.v1.System: the engine's health and facts (GET /info, /version), disk use (GET /system/df), `docker
// system prune`, and the events stream (the hub's live events, after a replay from skiffd when `since` is set).
import { cpus, release, totalmem } from 'node:os';
import { invalidArgument } from '../../common/errors.js';
import { errorMessage } from '../../common/log.js';
import type { Timestamp } from '../../common/timestamp.js';
import { eventMatches, validateEventFilters } from '../../daemon/system/events.js';
import pkg from '../../../package.json' with { type: 'json' };
import {
  EngineError,
  type DockerEventMsg,
  type Engine,
  type ProcessHealth,
  type ServiceFactory,
} from '../contracts.js';
import { eventKey, nanosQuery } from '../events.js';
import { dockerTime, serverStream, timestamp, timestampFromNanos, unary } from '../grpc.js';

export const AGENT_VERSION: string = pkg.version;

type Empty = Record<string, never>;
type StringLists = Record<string, { values: string[] } | undefined>;

const GO_ARCH: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64' };

export function processHealthMsg(h: ProcessHealth): Record<string, unknown> {
  return {
    name: h.name,
    state: h.state,
    pid: h.pid,
    restarts: h.restarts,
    last_exit: h.lastExit,
    since: timestamp(h.since),
  };
}

interface InfoBody {
  Containers?: number;
  ContainersRunning?: number;
  ContainersPaused?: number;
  ContainersStopped?: number;
  Images?: number;
  KernelVersion?: string;
  OperatingSystem?: string;
  Architecture?: string;
  NCPU?: number;
  MemTotal?: number;
  DockerRootDir?: string;
}

async function info(engine: Engine): Promise<Record<string, unknown>> {
  // The health part answers even while skiffd is down: that is when a client needs it most.
  let i: InfoBody = {};
  try {
    i = (await engine.docker.json<InfoBody>('GET', '/info')) ?? {};
  } catch (err) {
    if (!(err instanceof EngineError && err.status === 0)) throw err;
  }
  return {
    engine_ready: engine.ready(),
    processes: engine.health().map(processHealthMsg),
    containers: i.Containers ?? 0,
    containers_running: i.ContainersRunning ?? 0,
    containers_paused: i.ContainersPaused ?? 0,
    containers_stopped: i.ContainersStopped ?? 0,
    images: i.Images ?? 0,
    kernel_version: i.KernelVersion ?? release(),
    operating_system: i.OperatingSystem ?? '',
    architecture: i.Architecture ?? GO_ARCH[process.arch] ?? process.arch,
    cpus: i.NCPU ?? cpus().length,
    memory_total: String(i.MemTotal ?? totalmem()),
    data_root: i.DockerRootDir ?? engine.config.dataRoot,
    docker_socket: engine.config.dockerSocket,
  };
}

interface VersionBody {
  Version?: string;
  ApiVersion?: string;
  Os?: string;
  Arch?: string;
  KernelVersion?: string;
}

async function version(engine: Engine): Promise<Record<string, unknown>> {
  const v = (await engine.docker.json<VersionBody>('GET', '/version')) ?? {};
  return {
    agent_version: AGENT_VERSION,
    engine_version: v.Version ?? '',
    api_version: v.ApiVersion ?? '',
    os: v.Os ?? '',
    arch: v.Arch ?? '',
    kernel_version: v.KernelVersion ?? '',
  };
}

interface DfBody {
  LayersSize?: number;
  Images?: { Size?: number; Containers?: number }[] | null;
  Containers?: { SizeRw?: number }[] | null;
  Volumes?: { UsageData?: { Size?: number; RefCount?: number } | null }[] | null;
  BuildCache?: { Size?: number }[] | null;
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + (b > 0 ? b : 0), 0);

/** GET /system/df summed up as `docker system df` shows it. */
export function diskUsageMsg(df: DfBody): Record<string, unknown> {
  const images = df.Images ?? [];
  const imagesSize = df.LayersSize ?? sum(images.map((i) => i.Size ?? 0));
  const inUse = sum(images.filter((i) => (i.Containers ?? 0) > 0).map((i) => i.Size ?? 0));
  const volumes = df.Volumes ?? [];
  const volSize = (v: (typeof volumes)[number]) => v.UsageData?.Size ?? 0;
  return {
    images_size: String(imagesSize),
    images_reclaimable: String(Math.max(0, imagesSize - inUse)),
    images_count: images.length,
    containers_size: String(sum((df.Containers ?? []).map((c) => c.SizeRw ?? 0))),
    containers_count: (df.Containers ?? []).length,
    volumes_size: String(sum(volumes.map(volSize))),
    volumes_reclaimable: String(sum(volumes.filter((v) => (v.UsageData?.RefCount ?? 0) === 0).map(volSize))),
    volumes_count: volumes.length,
    build_cache_size: String(sum((df.BuildCache ?? []).map((b) => b.Size ?? 0))),
  };
}

/** `docker system prune [--all] [--volumes]`: containers, networks, (anonymous) volumes, then images. */
async function prune(engine: Engine, req: { all: boolean; volumes: boolean }): Promise<Record<string, unknown>> {
  const d = engine.docker;
  let space = 0;
  const c = await d.json<{ ContainersDeleted?: string[] | null; SpaceReclaimed?: number }>('POST', '/containers/prune');
  space += c?.SpaceReclaimed ?? 0;
  const n = await d.json<{ NetworksDeleted?: string[] | null }>('POST', '/networks/prune');
  let volumes: string[] = [];
  if (req.volumes) {
    // Without the "all" filter the engine prunes only anonymous volumes, as `docker system prune --volumes`.
    const v = await d.json<{ VolumesDeleted?: string[] | null; SpaceReclaimed?: number }>('POST', '/volumes/prune');
    volumes = v?.VolumesDeleted ?? [];
    space += v?.SpaceReclaimed ?? 0;
  }
  const i = await d.json<{ ImagesDeleted?: { Untagged?: string; Deleted?: string }[] | null; SpaceReclaimed?: number }>(
    'POST',
    '/images/prune',
    { query: { filters: { dangling: [req.all ? 'false' : 'true'] } } },
  );
  space += i?.SpaceReclaimed ?? 0;
  return {
    containers_deleted: c?.ContainersDeleted ?? [],
    images_deleted: (i?.ImagesDeleted ?? []).flatMap((x) => (x.Deleted ? [x.Deleted] : [])),
    networks_deleted: n?.NetworksDeleted ?? [],
    volumes_deleted: volumes,
    space_reclaimed: String(space),
  };
}

export function eventMsg(e: DockerEventMsg): Record<string, unknown> {
  return {
    type: e.Type,
    action: e.Action,
    actor_id: e.Actor?.ID ?? '',
    attributes: { ...(e.Actor?.Attributes ?? {}) },
    time: e.timeNano ? timestampFromNanos(e.timeNano) : timestamp(e.time),
  };
}

/** The request's filters as the engine's (a Map of key → values), checked like GET /events checks them. */
export function eventFilters(f: StringLists | undefined): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const [k, v] of Object.entries(f ?? {})) if (v && v.values.length > 0) m.set(k, [...v.values]);
  try {
    validateEventFilters(m);
  } catch (err) {
    throw invalidArgument(`events: ${errorMessage(err)}`);
  }
  return m;
}

async function events(
  engine: Engine,
  req: { filters?: StringLists; since?: Timestamp | null },
  write: (m: Record<string, unknown>) => boolean,
  signal: AbortSignal,
): Promise<void> {
  const filters = eventFilters(req.filters);
  const send = (e: DockerEventMsg): void => {
    // The engine's matcher compares Type as a string, so the agent's "engine" type filters as the others do.
    if (eventMatches(filters, e as Parameters<typeof eventMatches>[1])) write(eventMsg(e));
  };
  // Live events are held back during the replay; then any the replay already sent are dropped (the hub can deliver
  // an event of the replayed span after the replay ended).
  const replayed = new Set<string>();
  const live = (e: DockerEventMsg): void => {
    if (!replayed.has(eventKey(e))) send(e);
  };
  let held: DockerEventMsg[] | undefined = req.since ? [] : undefined;
  const unsubscribe = engine.subscribe((e) => (held ? held.push(e) : live(e)));
  try {
    if (req.since) {
      const now = BigInt(Date.now()) * 1_000_000n;
      const query = { since: dockerTime(req.since), until: nanosQuery(now) };
      for await (const e of engine.docker.jsonLines<DockerEventMsg>('GET', '/events', { query, signal })) {
        replayed.add(eventKey(e));
        send(e);
      }
      const early = held ?? [];
      held = undefined;
      for (const e of early) live(e);
    }
    if (!signal.aborted) await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
  } finally {
    unsubscribe();
  }
}

export const systemService: ServiceFactory = (engine) => ({
  Info: unary<Empty, Record<string, unknown>>(() => info(engine)),
  Version: unary<Empty, Record<string, unknown>>(() => version(engine)),
  DiskUsage: unary<Empty, Record<string, unknown>>(async () =>
    diskUsageMsg((await engine.docker.json<DfBody>('GET', '/system/df')) ?? {}),
  ),
  Prune: unary((req: { all: boolean; volumes: boolean }) => prune(engine, req)),
  Events: serverStream((req: { filters?: StringLists; since?: Timestamp | null }, write, _call, signal) =>
    events(engine, req, write, signal),
  ),
});
