// gRPC wiring: skiff.supervisor.v1's Containers, Tasks and Events services on top of the container service, the
// task manager and the events bus. Converts between proto messages and our records, and errors to status codes.
import {
  Metadata,
  Server,
  status,
  type GrpcObject,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceClientConstructor,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { codeOf, invalidArgument } from '../common/errors.js';
import { loadProto } from '../common/grpc.js';
import { errorMessage, logger } from '../common/log.js';
import { toTimestamp, type Timestamp } from '../common/timestamp.js';
import type { ContainerService } from './containers.js';
import type { EventBus, SupervisorEvent } from './events.js';
import type { AttachStream } from './shim-types.js';
import type { ContainerRecord, ExitRecord, MountSpec } from './store.js';
import type { TaskManager } from './tasks.js';

const log = logger('grpc');

// ----- message shapes (proto-loader: keepCase, longs as strings, defaults on) ------------------------------------

interface MountMsg {
  type: string;
  source: string;
  options: string[];
}
interface LogMsg {
  path: string;
  max_size: string | number;
  max_file: number;
}
interface ContainerMsg {
  id: string;
  spec: Buffer;
  rootfs: MountMsg[];
  labels: Record<string, string>;
  log: LogMsg | null;
  created_at?: Timestamp | null;
  updated_at?: Timestamp | null;
  bundle?: string;
}
interface IdReq {
  id: string;
}
interface TaskReq {
  container_id: string;
  exec_id: string;
}
type Empty = Record<string, never>;

interface AttachReqMsg {
  msg?: 'start' | 'stdin' | 'close_stdin' | 'resize';
  start?: TaskReq;
  stdin?: Buffer;
  close_stdin?: boolean;
  resize?: { width: number; height: number };
}

function containerMsg(rec: ContainerRecord): ContainerMsg {
  return {
    id: rec.id,
    spec: Buffer.from(rec.spec),
    rootfs: rec.rootfs,
    labels: rec.labels,
    log: { path: rec.log.path, max_size: String(rec.log.maxSize), max_file: rec.log.maxFile },
    created_at: toTimestamp(rec.createdAt),
    updated_at: toTimestamp(rec.updatedAt),
    bundle: rec.bundle,
  };
}

function mountsIn(ms: MountMsg[] | undefined): MountSpec[] {
  return (ms ?? []).map((m) => ({ type: m.type, source: m.source, options: [...(m.options ?? [])] }));
}

function containerIn(c: ContainerMsg | null | undefined): {
  id: string;
  spec: string;
  rootfs: MountSpec[];
  labels: Record<string, string>;
  log: { path: string; maxSize: number; maxFile: number };
} {
  if (!c) throw invalidArgument('container is required');
  return {
    id: c.id,
    spec: Buffer.isBuffer(c.spec) ? c.spec.toString('utf8') : String(c.spec ?? ''),
    rootfs: mountsIn(c.rootfs),
    labels: { ...(c.labels ?? {}) },
    log: { path: c.log?.path ?? '', maxSize: Number(c.log?.max_size ?? 0), maxFile: c.log?.max_file ?? 0 },
  };
}

function exitMsg(e: ExitRecord): {
  exit_status: number;
  exited_at: Timestamp | null;
  signal: number;
  oom_killed: boolean;
} {
  return { exit_status: e.exitCode, exited_at: toTimestamp(e.exitedAt), signal: e.signal, oom_killed: e.oomKilled };
}

function envelope(e: SupervisorEvent): Record<string, unknown> {
  const { kind, ...rest } = e.payload;
  const body: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rest)) {
    const snake = k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    body[snake] = k === 'exitedAt' ? toTimestamp(v as string) : v;
  }
  return { timestamp: toTimestamp(e.timestamp), topic: e.topic, container_id: e.containerId, [kind]: body };
}

function grpcError(err: unknown): { code: status; details: string; metadata: Metadata } {
  const code = codeOf(err);
  const details = errorMessage(err);
  if (code === status.INTERNAL) log.error(details);
  else log.debug(`${status[code]}: ${details}`);
  return Object.assign(new Error(details), { code, details, metadata: new Metadata() });
}

function unary<Req, Res>(fn: (req: Req) => Promise<Res> | Res) {
  return (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>): void => {
    Promise.resolve()
      .then(() => fn(call.request))
      .then(
        (res) => cb(null, res),
        (err: unknown) => cb(grpcError(err)),
      );
  };
}

const empty = (): Empty => ({});

export interface ServerParts {
  containers: ContainerService;
  tasks: TaskManager;
  bus: EventBus;
}

export function makeServer(p: ServerParts): Server {
  const pkg = (loadProto('supervisor.proto').skiff as GrpcObject).supervisor as GrpcObject;
  const v1 = pkg.v1 as GrpcObject;
  const service = (name: string) => (v1[name] as ServiceClientConstructor).service;
  const server = new Server({ 'grpc.max_receive_message_length': 64 << 20 });

  server.addService(service('Containers'), {
    Create: unary((req: { container: ContainerMsg }) =>
      p.containers.create(containerIn(req.container)).then((rec) => ({ container: containerMsg(rec) })),
    ),
    Get: unary((req: IdReq) => ({ container: containerMsg(p.containers.get(req.id)) })),
    List: unary((req: { filters: string[] }) => ({ containers: p.containers.list(req.filters).map(containerMsg) })),
    Update: unary((req: { container: ContainerMsg; update_mask: string[] }) => {
      const c = containerIn(req.container);
      return p.containers.update(c, req.update_mask).then((rec) => ({ container: containerMsg(rec) }));
    }),
    Delete: unary((req: IdReq) => p.containers.delete(req.id).then(empty)),
  });

  server.addService(service('Tasks'), {
    Create: unary(async (req: { container_id: string; stdin: boolean }) => {
      const { pid } = await p.tasks.create(req.container_id, { stdin: req.stdin });
      return { container_id: req.container_id, pid };
    }),
    Start: unary((req: TaskReq) => p.tasks.start(req.container_id, req.exec_id)),
    State: unary(async (req: TaskReq) => {
      const s = await p.tasks.state(req.container_id, req.exec_id);
      return {
        id: s.id,
        exec_id: s.execId,
        pid: s.pid,
        status: s.status,
        terminal: s.terminal,
        stdin: s.stdin,
        exit_status: s.exit?.exitCode ?? 0,
        exited_at: s.exit ? toTimestamp(s.exit.exitedAt) : null,
        oom_killed: s.exit?.oomKilled ?? false,
        reason: s.exit?.reason ?? '',
        bundle: s.bundle,
      };
    }),
    Kill: unary((req: TaskReq & { signal: number; all: boolean }) =>
      p.tasks.kill(req.container_id, req.exec_id, req.signal, req.all).then(empty),
    ),
    Pause: unary((req: { container_id: string }) => p.tasks.pause(req.container_id).then(empty)),
    Resume: unary((req: { container_id: string }) => p.tasks.resume(req.container_id).then(empty)),
    Exec: unary((req: TaskReq & { spec: Buffer; terminal: boolean; stdin: boolean }) =>
      p.tasks
        .addExec(req.container_id, req.exec_id, req.spec.toString('utf8'), { tty: req.terminal, stdin: req.stdin })
        .then(empty),
    ),
    ResizePty: unary((req: TaskReq & { width: number; height: number }) =>
      p.tasks.resize(req.container_id, req.exec_id, req.width, req.height).then(empty),
    ),
    CloseIO: unary((req: TaskReq & { stdin: boolean }) =>
      p.tasks.closeIO(req.container_id, req.exec_id, req.stdin).then(empty),
    ),
    Wait: unary(async (req: TaskReq) => {
      const e = await p.tasks.wait(req.container_id, req.exec_id);
      return { ...exitMsg(e), reason: e.reason ?? '' };
    }),
    Delete: unary(async (req: TaskReq) => {
      const r = await p.tasks.delete(req.container_id, req.exec_id);
      return {
        id: req.container_id,
        pid: r.pid,
        exit_status: r.exit.exitCode,
        exited_at: toTimestamp(r.exit.exitedAt),
      };
    }),
    Pids: unary(async (req: { container_id: string }) => ({
      processes: (await p.tasks.pids(req.container_id)).map((x) => ({ pid: x.pid, exec_id: x.execId })),
    })),
    Stats: unary(async (req: { container_id: string }) => {
      const s = await p.tasks.stats(req.container_id);
      return {
        cgroup_version: s.cgroupVersion,
        stats: Buffer.from(JSON.stringify(s.stats)),
        cpu_usage_ns: String(s.cpuUsageNs),
        memory_usage_bytes: String(s.memoryUsageBytes),
        memory_limit_bytes: String(s.memoryLimitBytes),
        pids_current: String(s.pidsCurrent),
      };
    }),
    Update: unary((req: { container_id: string; resources: Buffer }) =>
      p.tasks.update(req.container_id, req.resources.toString('utf8')).then(empty),
    ),
    Attach: (call: ServerDuplexStream<AttachReqMsg, Record<string, unknown>>) => attach(p.tasks, call),
  });

  server.addService(service('Events'), {
    Subscribe: (call: ServerWritableStream<{ filters: string[] }, Record<string, unknown>>) => {
      let unsubscribe: (() => void) | undefined;
      try {
        unsubscribe = p.bus.subscribe(call.request.filters ?? [], (e) => call.write(envelope(e)));
      } catch (err) {
        call.emit('error', grpcError(err));
        return;
      }
      const done = (): void => unsubscribe?.();
      call.on('cancelled', done);
      call.on('close', done);
      call.on('error', done);
    },
  });
  return server;
}

function attach(tasks: TaskManager, call: ServerDuplexStream<AttachReqMsg, Record<string, unknown>>): void {
  let stream: AttachStream | undefined;
  let target: TaskReq | undefined;
  let finished = false;
  const pendingStdin: AttachReqMsg[] = [];
  const finish = (err?: unknown): void => {
    if (finished) return;
    finished = true;
    stream?.detach();
    if (err) call.emit('error', grpcError(err));
    else call.end();
  };
  const handle = (m: AttachReqMsg): void => {
    if (!stream || !target) return;
    if (m.msg === 'stdin' && m.stdin) stream.writeStdin(m.stdin);
    else if (m.msg === 'close_stdin' && m.close_stdin) stream.closeStdin();
    else if (m.msg === 'resize' && m.resize)
      tasks
        .resize(target.container_id, target.exec_id, m.resize.width, m.resize.height)
        .catch((err: unknown) => log.debug(`attach resize: ${errorMessage(err)}`));
  };
  call.on('data', (m: AttachReqMsg) => {
    if (finished) return;
    if (!target) {
      if (m.msg !== 'start' || !m.start) {
        finish(invalidArgument('the first Attach message must be "start" with the container (and exec) id'));
        return;
      }
      target = m.start;
      tasks.attach(target.container_id, target.exec_id).then(
        (s) => {
          if (finished) {
            s.detach();
            return;
          }
          stream = s;
          s.onOutput((which, data) => {
            if (!finished) call.write({ [which]: data });
          });
          s.onExit((e) => {
            if (!finished) call.write({ exit: exitMsg({ ...e }) });
          });
          s.onClose(() => finish());
          for (const q of pendingStdin.splice(0)) handle(q);
        },
        (err: unknown) => finish(err),
      );
      return;
    }
    if (!stream) pendingStdin.push(m);
    else handle(m);
  });
  call.on('end', () => {
    // The client half-closed: keep sending output until the process exits or the client cancels.
  });
  call.on('cancelled', () => {
    finished = true;
    stream?.detach();
  });
}
