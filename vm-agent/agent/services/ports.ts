// skiff.agent.v1.Ports: the published ports the host agent forwards. Each stream keeps what it told its client:
// first every published port (ADDED), then SYNCED, then skiffd's publish/unpublish events; after skiffd restarts
// (the agent's "engine ready" event) it lists again and sends only the differences.
import { errorMessage, logger } from '../../common/log.js';
import { EngineError, type DockerEventMsg, type Engine, type ServiceFactory } from '../contracts.js';
import { serverStream } from '../grpc.js';

const log = logger('agent-ports');

export interface PortMsg {
  host_ip: string;
  host_port: number;
  container_port: number;
  protocol: string;
}

export interface PortEventMsg {
  kind: 'ADDED' | 'REMOVED' | 'SYNCED';
  port: PortMsg | null;
  container_id: string;
  container_name: string;
}

type Published = Omit<PortEventMsg, 'kind'> & { port: PortMsg };

const keyOf = (p: Published): string =>
  `${p.container_id} ${p.port.host_ip} ${p.port.host_port} ${p.port.protocol} ${p.port.container_port}`;

const bare = (name: string | undefined): string => (name ?? '').replace(/^\//, '');

interface ListedContainer {
  Id: string;
  Names?: string[];
  Ports?: { IP?: string; PrivatePort?: number; PublicPort?: number; Type?: string }[] | null;
}

/** Every published port of the running containers (GET /containers/json). */
export async function listPublished(engine: Engine): Promise<Map<string, Published>> {
  const list = (await engine.docker.json<ListedContainer[]>('GET', '/containers/json')) ?? [];
  const out = new Map<string, Published>();
  for (const c of list)
    for (const p of c.Ports ?? []) {
      if (!p.PublicPort) continue;
      const x: Published = {
        container_id: c.Id,
        container_name: bare(c.Names?.[0]),
        port: {
          host_ip: p.IP || '0.0.0.0',
          host_port: p.PublicPort,
          container_port: p.PrivatePort ?? 0,
          protocol: p.Type || 'tcp',
        },
      };
      out.set(keyOf(x), x);
    }
  return out;
}

/** A publish/unpublish event's port (skiffd's attributes: name, hostIp, hostPort, port, protocol). */
export function fromEvent(e: DockerEventMsg): Published | undefined {
  const a = e.Actor?.Attributes ?? {};
  const hostPort = Number(a.hostPort);
  if (!Number.isInteger(hostPort) || hostPort <= 0) return undefined;
  return {
    container_id: e.Actor.ID,
    container_name: bare(a.name),
    port: {
      host_ip: a.hostIp || '0.0.0.0',
      host_port: hostPort,
      container_port: Number(a.port) || 0,
      protocol: a.protocol || 'tcp',
    },
  };
}

async function watch(engine: Engine, write: (m: PortEventMsg) => boolean, signal: AbortSignal): Promise<void> {
  const known = new Map<string, Published>();
  let synced = false;
  // One step at a time, in arrival order: a list and the events that follow it must not interleave.
  let chain = Promise.resolve();
  let fail: (err: unknown) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  const queue = (step: () => Promise<void> | void): void => {
    chain = chain.then(step).catch((err: unknown) => {
      // The engine answered, but not with a list: the client learns why rather than waiting for ever.
      log.error(`ports: ${errorMessage(err)}`);
      fail(err);
    });
  };
  const added = (p: Published): void => {
    known.set(keyOf(p), p);
    write({ kind: 'ADDED', ...p });
  };
  const removed = (k: string, p: Published): void => {
    known.delete(k);
    write({ kind: 'REMOVED', ...p });
  };

  /** List and send the differences from what this client was told; SYNCED after the first list. */
  const sync = async (): Promise<void> => {
    if (signal.aborted) return;
    let now: Map<string, Published>;
    try {
      now = await listPublished(engine);
    } catch (err) {
      // skiffd is down: its "ready" event brings the next try.
      if (err instanceof EngineError && err.status === 0) {
        log.debug(`ports: ${err.message}; listing again when skiffd is back`);
        return;
      }
      throw err;
    }
    for (const [k, p] of [...known]) if (!now.has(k)) removed(k, p);
    for (const [k, p] of now) if (!known.has(k)) added(p);
    if (!synced) {
      synced = true;
      write({ kind: 'SYNCED', port: null, container_id: '', container_name: '' });
    }
  };

  const onEvent = (e: DockerEventMsg): void => {
    if (e.Type === 'engine' && e.Actor?.ID === 'skiffd' && e.Action === 'ready') return queue(sync);
    if (e.Type !== 'container' || (e.Action !== 'publish' && e.Action !== 'unpublish')) return;
    queue(() => {
      const p = fromEvent(e);
      if (!p || !synced) return; // before the first list: the list has it
      const k = keyOf(p);
      if (e.Action === 'publish' && !known.has(k)) added(p);
      if (e.Action === 'unpublish' && known.has(k)) removed(k, known.get(k)!);
    });
  };

  // Subscribe before listing, so that a change between the list and the first event is not missed.
  const unsubscribe = engine.subscribe(onEvent);
  try {
    queue(sync);
    await Promise.race([new Promise((r) => signal.addEventListener('abort', r, { once: true })), failed]);
  } finally {
    unsubscribe();
  }
}

export const portsService: ServiceFactory = (engine) => ({
  WatchPublished: serverStream<Record<string, never>, PortEventMsg>((_req, write, _call, signal) =>
    watch(engine, write, signal),
  ),
});
