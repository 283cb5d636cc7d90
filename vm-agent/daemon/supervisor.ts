// The daemon's typed client of skiff-supervisor (proto/supervisor.proto, skiff.supervisor.v1). The .proto is loaded
// at run time the way the supervisor loads it (vm-agent/common/grpc.ts: dist/proto beside the bundle). Unary calls
// return promises and fail with a SupervisorError carrying the gRPC status; streams are returned as grpc-js streams.
import * as grpc from '@grpc/grpc-js';
import { loadProto } from '../common/grpc.js';
import type { Timestamp } from '../common/timestamp.js';

// ----- message shapes (proto-loader: keepCase, longs as strings, enums as strings, defaults, oneofs) ------------

export interface MountMsg {
  type: string;
  source: string;
  options: string[];
}
export interface LogOptionsMsg {
  path: string;
  max_size: string | number;
  max_file: number;
}
export interface ContainerMsg {
  id: string;
  /** The OCI spec as JSON text (a Buffer on output; give a Buffer on input). */
  spec: Buffer;
  rootfs: MountMsg[];
  labels: Record<string, string>;
  log?: LogOptionsMsg | null;
  created_at?: Timestamp | null;
  updated_at?: Timestamp | null;
  bundle?: string;
}
export type TaskStatus = 'UNKNOWN' | 'CREATED' | 'RUNNING' | 'STOPPED' | 'PAUSED';
export interface StateMsg {
  id: string;
  exec_id: string;
  pid: number;
  status: TaskStatus;
  terminal: boolean;
  stdin: boolean;
  exit_status: number;
  exited_at: Timestamp | null;
  oom_killed: boolean;
  reason: string;
  bundle: string;
}
export interface WaitMsg {
  exit_status: number;
  exited_at: Timestamp | null;
  signal: number;
  oom_killed: boolean;
  reason: string;
}
export interface DeleteMsg {
  id: string;
  pid: number;
  exit_status: number;
  exited_at: Timestamp | null;
}
export interface StatsMsg {
  cgroup_version: number;
  stats: Buffer;
  cpu_usage_ns: string;
  memory_usage_bytes: string;
  memory_limit_bytes: string;
  pids_current: string;
}
export interface ExitStatusMsg {
  exit_status: number;
  exited_at: Timestamp | null;
  signal: number;
  oom_killed: boolean;
}
export type AttachRequestMsg =
  | { start: { container_id: string; exec_id?: string } }
  | { stdin: Buffer }
  | { close_stdin: true }
  | { resize: { width: number; height: number } };
export interface AttachResponseMsg {
  msg: 'stdout' | 'stderr' | 'exit';
  stdout?: Buffer;
  stderr?: Buffer;
  exit?: ExitStatusMsg;
}
export interface TaskExitMsg {
  exec_id: string;
  pid: number;
  exit_status: number;
  exited_at: Timestamp | null;
  signal: number;
  oom_killed: boolean;
  reason: string;
}
export interface EnvelopeMsg {
  timestamp: Timestamp | null;
  topic: string;
  container_id: string;
  event?: string;
  task_exit?: TaskExitMsg;
  task_start?: { pid: number };
  task_create?: { pid: number; bundle: string; terminal: boolean; stdin: boolean };
  task_exec_started?: { exec_id: string; pid: number };
  task_exec_added?: { exec_id: string };
  task_delete?: { pid: number; exit_status: number; exited_at: Timestamp | null };
  [k: string]: unknown;
}

/** A failed supervisor call: `code` is the gRPC status (grpc.status.NOT_FOUND, ...). */
export class SupervisorError extends Error {
  constructor(
    readonly method: string,
    readonly code: grpc.status,
    readonly details: string,
  ) {
    super(details || `${method}: ${grpc.status[code]}`);
    this.name = 'SupervisorError';
  }
}

export const isNotFound = (err: unknown): boolean =>
  err instanceof SupervisorError && err.code === grpc.status.NOT_FOUND;
export const isFailedPrecondition = (err: unknown): boolean =>
  err instanceof SupervisorError && err.code === grpc.status.FAILED_PRECONDITION;

type Unary = (
  req: object,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: unknown) => void,
) => void;

function unary<T>(client: grpc.Client, method: string, req: object, timeoutMs: number | undefined): Promise<T> {
  const fn = (client as unknown as Record<string, Unary>)[method];
  if (!fn) return Promise.reject(new Error(`supervisor: no method ${method}`));
  // Calls with a deadline wait for a supervisor that is restarting (instead of failing at once while the channel
  // is between reconnects); the deadline still bounds them.
  const opts: grpc.CallOptions = timeoutMs ? { deadline: Date.now() + timeoutMs } : {};
  const md = new grpc.Metadata({ waitForReady: !!timeoutMs });
  return new Promise((res, rej) =>
    fn.call(client, req, md, opts, (err, out) =>
      err ? rej(new SupervisorError(method, err.code, err.details)) : res(out as T),
    ),
  );
}

const DEFAULT_TIMEOUT = 60_000;

export interface SupervisorClient {
  readonly address: string;
  containers: {
    create(c: {
      id: string;
      spec: Buffer;
      rootfs: MountMsg[];
      labels?: Record<string, string>;
      log?: { path: string; max_size: number | string; max_file: number };
    }): Promise<{ container: ContainerMsg }>;
    get(id: string): Promise<{ container: ContainerMsg }>;
    list(filters?: string[]): Promise<{ containers: ContainerMsg[] }>;
    update(container: Partial<ContainerMsg> & { id: string }, mask: string[]): Promise<{ container: ContainerMsg }>;
    delete(id: string): Promise<void>;
  };
  tasks: {
    create(containerId: string, stdin: boolean): Promise<{ container_id: string; pid: number }>;
    start(containerId: string, execId?: string): Promise<{ pid: number }>;
    state(containerId: string, execId?: string): Promise<StateMsg>;
    kill(containerId: string, signal: number, opts?: { execId?: string; all?: boolean }): Promise<void>;
    pause(containerId: string): Promise<void>;
    resume(containerId: string): Promise<void>;
    exec(containerId: string, execId: string, process: object, terminal: boolean, stdin: boolean): Promise<void>;
    resizePty(containerId: string, execId: string, width: number, height: number): Promise<void>;
    closeIO(containerId: string, execId: string): Promise<void>;
    /** No deadline: answers when the process exits. */
    wait(containerId: string, execId?: string): Promise<WaitMsg>;
    delete(containerId: string, execId?: string): Promise<DeleteMsg>;
    pids(containerId: string): Promise<{ processes: Array<{ pid: number; exec_id: string }> }>;
    stats(containerId: string): Promise<StatsMsg>;
    update(containerId: string, resources: object): Promise<void>;
    /** Tasks.Attach: write `{start:{container_id, exec_id}}` first. */
    attach(): grpc.ClientDuplexStream<AttachRequestMsg, AttachResponseMsg>;
  };
  events: {
    subscribe(filters?: string[]): grpc.ClientReadableStream<EnvelopeMsg>;
  };
  /** Resolves once the channel is connected (or rejects after timeoutMs). */
  ready(timeoutMs: number): Promise<void>;
  close(): void;
}

type Ctor = new (addr: string, creds: grpc.ChannelCredentials, opts?: grpc.ChannelOptions) => grpc.Client;

/** A client of the supervisor listening on the unix socket `socketPath`. */
export function connectSupervisor(socketPath: string): SupervisorClient {
  const root = loadProto('supervisor.proto') as unknown as { skiff: { supervisor: { v1: Record<string, Ctor> } } };
  const v1 = root.skiff.supervisor.v1;
  const addr = socketPath.startsWith('unix:') ? socketPath : `unix:${socketPath}`;
  const creds = grpc.credentials.createInsecure();
  const chOpts: grpc.ChannelOptions = {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
    // A local socket: when the supervisor restarts, reconnect within a second, not after grpc's minutes of back-off.
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 1000,
  };
  const cc = new v1.Containers!(addr, creds, chOpts);
  const tc = new v1.Tasks!(addr, creds, chOpts);
  const ec = new v1.Events!(addr, creds, chOpts);
  const t = DEFAULT_TIMEOUT;
  const task = (containerId: string, execId = ''): object => ({ container_id: containerId, exec_id: execId });
  return {
    address: socketPath,
    containers: {
      create: (c) => unary(cc, 'Create', { container: c }, t),
      get: (id) => unary(cc, 'Get', { id }, t),
      list: (filters = []) => unary(cc, 'List', { filters }, t),
      update: (container, mask) => unary(cc, 'Update', { container, update_mask: mask }, t),
      delete: async (id) => {
        await unary(cc, 'Delete', { id }, t);
      },
    },
    tasks: {
      create: (containerId, stdin) => unary(tc, 'Create', { container_id: containerId, stdin }, t),
      start: (containerId, execId) => unary(tc, 'Start', task(containerId, execId), t),
      state: (containerId, execId) => unary(tc, 'State', task(containerId, execId), t),
      kill: async (containerId, signal, opts = {}) => {
        await unary(tc, 'Kill', { ...task(containerId, opts.execId), signal, all: opts.all ?? false }, t);
      },
      pause: async (containerId) => {
        await unary(tc, 'Pause', { container_id: containerId }, t);
      },
      resume: async (containerId) => {
        await unary(tc, 'Resume', { container_id: containerId }, t);
      },
      exec: async (containerId, execId, process, terminal, stdin) => {
        const req = { ...task(containerId, execId), spec: Buffer.from(JSON.stringify(process)), terminal, stdin };
        await unary(tc, 'Exec', req, t);
      },
      resizePty: async (containerId, execId, width, height) => {
        await unary(tc, 'ResizePty', { ...task(containerId, execId), width, height }, t);
      },
      closeIO: async (containerId, execId) => {
        await unary(tc, 'CloseIO', { ...task(containerId, execId), stdin: true }, t);
      },
      wait: (containerId, execId) => unary(tc, 'Wait', task(containerId, execId), undefined),
      delete: (containerId, execId) => unary(tc, 'Delete', task(containerId, execId), t),
      pids: (containerId) => unary(tc, 'Pids', { container_id: containerId }, t),
      stats: (containerId) => unary(tc, 'Stats', { container_id: containerId }, t),
      update: async (containerId, resources) => {
        await unary(tc, 'Update', { container_id: containerId, resources: Buffer.from(JSON.stringify(resources)) }, t);
      },
      attach: () =>
        (tc as unknown as { Attach(): grpc.ClientDuplexStream<AttachRequestMsg, AttachResponseMsg> }).Attach(),
    },
    events: {
      subscribe: (filters = []) =>
        (ec as unknown as { Subscribe(req: object): grpc.ClientReadableStream<EnvelopeMsg> }).Subscribe({ filters }),
    },
    ready: (timeoutMs) =>
      new Promise((res, rej) => cc.waitForReady(Date.now() + timeoutMs, (err) => (err ? rej(err) : res()))),
    close: () => {
      cc.close();
      tc.close();
      ec.close();
    },
  };
}
