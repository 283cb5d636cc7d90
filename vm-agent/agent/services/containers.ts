// skiff.agent.v1.Containers: list, inspect, run, the batch state changes, logs, stats, exec and top, each a call on
// skiffd's Docker API. Logs, stats and exec live in their own files (container-logs/-stats/-exec.ts).
import { status } from '@grpc/grpc-js';
import { ApiError, invalidArgument } from '../../common/errors.js';
import { errorMessage, logger } from '../../common/log.js';
import { EngineError, type Engine, type ServiceFactory } from '../contracts.js';
import { bidi, engineCode, serverStream, toStatus, unary } from '../grpc.js';
import { runExec } from './container-exec.js';
import { streamLogs } from './container-logs.js';
import { streamStats } from './container-stats.js';
import {
  summaryFromInspect,
  summaryFromList,
  type ContainerSummaryMsg,
  type DockerContainerInspect,
  type DockerContainerListEntry,
} from './container-views.js';

const log = logger('agent-containers');

// ----- request and answer shapes (proto-loader: keepCase, defaults on) ------------------------------------------

interface StringList {
  values: string[];
}
interface ListReq {
  all: boolean;
  filters: Record<string, StringList>;
}
interface RefReq {
  id: string;
}
interface RefsReq {
  ids: string[];
}
interface StopReq {
  ids: string[];
  timeout?: number | null;
}
interface KillReq {
  ids: string[];
  signal: string;
}
interface RemoveReq {
  ids: string[];
  force: boolean;
  volumes: boolean;
}
interface PortReq {
  host_ip: string;
  host_port: number;
  container_port: number;
  protocol: string;
}
interface VolumeReq {
  source: string;
  target: string;
  read_only: boolean;
}
export interface RunReq {
  image: string;
  name: string;
  ports: PortReq[];
  env: string[];
  volumes: VolumeReq[];
  command: string[];
  entrypoint: string[];
  labels: Record<string, string>;
  network: string;
  auto_remove: boolean;
  tty: boolean;
  open_stdin: boolean;
  restart_policy: string;
  pull: boolean;
}
interface TopReq {
  id: string;
  ps_args: string;
}
interface BatchResult {
  id: string;
  ok: boolean;
  code: number;
  message: string;
}

const path = (id: string, rest = ''): string => `/containers/${encodeURIComponent(id)}${rest}`;

/** Map filters (StringList values) as the Docker API takes them; undefined when there are none. */
export function dockerFilters(f: Record<string, StringList> | undefined): Record<string, string[]> | undefined {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(f ?? {})) if (v?.values?.length) out[k] = [...v.values];
  return Object.keys(out).length > 0 ? out : undefined;
}

// ----- batch calls ------------------------------------------------------------------------------------------------

/** How many containers a batch call changes at once: enough for a quick "stop all", few enough for a small VM. */
const BATCH_PARALLEL = 4;

/**
 * One result per id, the calls run a few at a time. An engine answer that means "already so" (304) is success. The
 * call fails as a whole for a malformed request or an engine that is down (proto/agent.proto conventions).
 */
async function batch(ids: string[], op: (id: string) => Promise<unknown>): Promise<{ results: BatchResult[] }> {
  if (!ids || ids.length === 0) throw invalidArgument('ids is empty: name at least one container');
  if (ids.some((id) => !id)) throw invalidArgument('ids has an empty entry');
  const results: BatchResult[] = new Array<BatchResult>(ids.length);
  let down: EngineError | undefined;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ids.length) {
      const i = next++;
      const id = ids[i] as string;
      try {
        await op(id);
        results[i] = { id, ok: true, code: status.OK, message: '' };
      } catch (err) {
        if (err instanceof EngineError && err.status === 304) {
          results[i] = { id, ok: true, code: status.OK, message: '' };
          continue;
        }
        if (err instanceof EngineError && err.status === 0) down = err;
        const st = toStatus(err);
        results[i] = { id, ok: false, code: st.code, message: st.details };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(BATCH_PARALLEL, ids.length) }, worker));
  if (down) throw down;
  return { results };
}

const stopQuery = (r: StopReq): { t?: number } =>
  r.timeout === undefined || r.timeout === null ? {} : { t: Number(r.timeout) };

// ----- run --------------------------------------------------------------------------------------------------------

/** "repo[:tag]" or "repo@digest" as /images/create's fromImage and tag. */
export function splitImageRef(ref: string): { fromImage: string; tag: string } {
  const at = ref.indexOf('@');
  if (at >= 0) return { fromImage: ref.slice(0, at), tag: ref.slice(at + 1) };
  const colon = ref.lastIndexOf(':');
  if (colon > ref.lastIndexOf('/')) return { fromImage: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { fromImage: ref, tag: 'latest' };
}

/** Pulls the image unless it is there; a failed pull is an error with the registry's message. */
async function pullIfMissing(engine: Engine, image: string): Promise<void> {
  try {
    await engine.docker.json('GET', `/images/${encodeURIComponent(image)}/json`);
    return;
  } catch (err) {
    if (!(err instanceof EngineError && err.status === 404)) throw err;
  }
  log.info(`pulling ${image} for a run`);
  let failure: string | undefined;
  try {
    for await (const line of engine.docker.jsonLines<{ error?: string; errorDetail?: { message?: string } }>(
      'POST',
      '/images/create',
      { query: splitImageRef(image) },
    )) {
      failure = line.errorDetail?.message ?? line.error;
      if (failure) break;
    }
  } catch (err) {
    // The engine down stays UNAVAILABLE; any other refusal keeps its code and says it was the pull.
    if (err instanceof EngineError && err.status !== 0) {
      throw new ApiError(engineCode(err), `pulling ${image}: ${err.message}`);
    }
    throw err;
  }
  if (failure) {
    const code = /not found|manifest unknown|does not exist|pull access denied/i.test(failure)
      ? status.NOT_FOUND
      : status.INTERNAL;
    throw new ApiError(code, `pulling ${image}: ${failure}`);
  }
}

/** A host path (bind) rather than a volume name: anything with a slash, or starting with "." or "~". */
const isHostPath = (s: string): boolean => s.includes('/') || s.startsWith('.') || s.startsWith('~');

/** The body of POST /containers/create for a RunRequest. */
export function createBody(r: RunReq): Record<string, unknown> {
  if (!r.image) throw invalidArgument('image is required');
  const exposed: Record<string, object> = {};
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const p of r.ports ?? []) {
    const proto = (p.protocol || 'tcp').toLowerCase();
    if (!['tcp', 'udp', 'sctp'].includes(proto)) throw invalidArgument(`port protocol "${p.protocol}": tcp or udp`);
    if (!(p.container_port > 0 && p.container_port <= 65535))
      throw invalidArgument(`container port ${p.container_port}: 1 to 65535`);
    if (p.host_port > 65535) throw invalidArgument(`host port ${p.host_port}: 0 (any free one) to 65535`);
    const key = `${p.container_port}/${proto}`;
    exposed[key] = {};
    (bindings[key] ??= []).push({ HostIp: p.host_ip ?? '', HostPort: p.host_port > 0 ? String(p.host_port) : '' });
  }
  const binds: string[] = [];
  const mounts: Array<Record<string, unknown>> = [];
  for (const v of r.volumes ?? []) {
    if (!v.target || !v.target.startsWith('/'))
      throw invalidArgument(`volume target "${v.target}": an absolute path in the container is required`);
    if (v.source && isHostPath(v.source)) {
      if (!v.source.startsWith('/')) throw invalidArgument(`host path "${v.source}" must be absolute`);
      binds.push(`${v.source}:${v.target}${v.read_only ? ':ro' : ''}`);
    } else {
      mounts.push({ Type: 'volume', Source: v.source ?? '', Target: v.target, ReadOnly: v.read_only });
    }
  }
  const policy = r.restart_policy;
  if (policy && !['no', 'always', 'unless-stopped', 'on-failure'].includes(policy))
    throw invalidArgument(`restart policy "${policy}": no, always, unless-stopped or on-failure`);
  const has = <T>(a: T[] | undefined): a is T[] => a !== undefined && a.length > 0;
  return {
    Image: r.image,
    Env: has(r.env) ? r.env : undefined,
    Cmd: has(r.command) ? r.command : undefined,
    Entrypoint: has(r.entrypoint) ? r.entrypoint : undefined,
    Labels: r.labels && Object.keys(r.labels).length > 0 ? r.labels : undefined,
    Tty: r.tty,
    OpenStdin: r.open_stdin,
    ExposedPorts: Object.keys(exposed).length > 0 ? exposed : undefined,
    HostConfig: {
      PortBindings: Object.keys(bindings).length > 0 ? bindings : undefined,
      Binds: binds.length > 0 ? binds : undefined,
      Mounts: mounts.length > 0 ? mounts : undefined,
      NetworkMode: r.network || undefined,
      AutoRemove: r.auto_remove,
      RestartPolicy: policy ? { Name: policy, MaximumRetryCount: 0 } : undefined,
    },
  };
}

/**
 * A port taken is a state the user can fix (stop the other container, pick another port), not an engine fault: the
 * engine answers it with 500 as dockerd does, so it is told apart by its message.
 */
const portTaken = /port is already allocated|address already in use/i;

async function startContainer(engine: Engine, id: string, action = 'start', query?: { t?: number }): Promise<void> {
  try {
    await engine.docker.json('POST', path(id, `/${action}`), query ? { query } : undefined);
  } catch (err) {
    if (err instanceof EngineError && err.status >= 500 && portTaken.test(err.message))
      throw new ApiError(status.FAILED_PRECONDITION, err.message);
    throw err;
  }
}

/** create + start; a container that does not start is removed, so no half-made one is left behind. */
async function run(engine: Engine, r: RunReq): Promise<{ id: string; warnings: string[] }> {
  const body = createBody(r);
  if (r.pull) await pullIfMissing(engine, r.image);
  const created = await engine.docker.json<{ Id: string; Warnings?: string[] | null }>('POST', '/containers/create', {
    query: { name: r.name || undefined },
    body,
  });
  try {
    await startContainer(engine, created.Id);
  } catch (err) {
    await engine.docker.json('DELETE', path(created.Id), { query: { force: true, v: true } }).catch((e: unknown) => {
      // Already gone (auto-remove) is fine; anything else is worth a line in the log.
      if (!(e instanceof EngineError && e.status === 404))
        log.warn(`removing ${created.Id} after its failed start: ${errorMessage(e)}`);
    });
    throw err;
  }
  return { id: created.Id, warnings: created.Warnings ?? [] };
}

// ----- the service ------------------------------------------------------------------------------------------------

export const containersService: ServiceFactory = (engine) => {
  const docker = engine.docker;
  return {
    List: unary(async (req: ListReq) => {
      const list = await docker.json<DockerContainerListEntry[]>('GET', '/containers/json', {
        query: { all: req.all, filters: dockerFilters(req.filters) },
      });
      return { containers: (list ?? []).map(summaryFromList) };
    }),

    Inspect: unary(async (req: RefReq): Promise<{ summary: ContainerSummaryMsg; json: string }> => {
      if (!req.id) throw invalidArgument('id is required');
      const doc = await docker.json<DockerContainerInspect>('GET', path(req.id, '/json'));
      return { summary: summaryFromInspect(doc), json: JSON.stringify(doc, null, 2) };
    }),

    Run: unary((req: RunReq) => run(engine, req)),

    Start: unary((req: RefsReq) => batch(req.ids, (id) => startContainer(engine, id))),
    Stop: unary((req: StopReq) =>
      batch(req.ids, (id) => docker.json('POST', path(id, '/stop'), { query: stopQuery(req) })),
    ),
    Restart: unary((req: StopReq) => batch(req.ids, (id) => startContainer(engine, id, 'restart', stopQuery(req)))),
    Kill: unary((req: KillReq) =>
      batch(req.ids, (id) => docker.json('POST', path(id, '/kill'), { query: { signal: req.signal || undefined } })),
    ),
    Pause: unary((req: RefsReq) => batch(req.ids, (id) => docker.json('POST', path(id, '/pause')))),
    Unpause: unary((req: RefsReq) => batch(req.ids, (id) => docker.json('POST', path(id, '/unpause')))),
    Remove: unary((req: RemoveReq) =>
      batch(req.ids, (id) => docker.json('DELETE', path(id), { query: { force: req.force, v: req.volumes } })),
    ),

    Logs: serverStream((req: Parameters<typeof streamLogs>[1], write, call, signal) => {
      if (!req.id) throw invalidArgument('id is required');
      return streamLogs(engine, req, write, call, signal);
    }),
    Stats: serverStream((req: Parameters<typeof streamStats>[1], write, call, signal) => {
      if (!req.id) throw invalidArgument('id is required');
      return streamStats(engine, req, write, call, signal);
    }),
    Exec: bidi((call: Parameters<typeof runExec>[1], signal) => runExec(engine, call, signal)),

    Top: unary(async (req: TopReq) => {
      if (!req.id) throw invalidArgument('id is required');
      const top = await docker.json<{ Titles?: string[]; Processes?: string[][] }>('GET', path(req.id, '/top'), {
        query: { ps_args: req.ps_args || undefined },
      });
      return {
        titles: top.Titles ?? [],
        processes: (top.Processes ?? []).map((values) => ({ values })),
      };
    }),
  };
};
