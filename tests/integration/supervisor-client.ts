// A test harness for skiff-supervisor: runs dist/bin/skiff-supervisor inside a private mount namespace held by a
// `sleep` (so a restarted supervisor finds the rootfs mounts of the previous one, and nothing reaches the host),
// and typed-enough gRPC clients for proto/supervisor.proto built with @grpc/grpc-js + @grpc/proto-loader.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { REPO } from '../native/helpers.js';

export const SUPERVISOR = join(REPO, 'dist/bin/skiff-supervisor');
export const SHIM = join(REPO, 'dist/bin/skiff-shim');
export const PROTO = join(REPO, 'proto/supervisor.proto');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Msg = Record<string, any>;

type Unary = (req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Msg) => void) => void;

const def = protoLoader.loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const v1 = (grpc.loadPackageDefinition(def) as unknown as Record<string, Record<string, Record<string, unknown>>>).skiff
  .supervisor.v1 as Record<string, new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client>;

export class RpcError extends Error {
  constructor(
    readonly method: string,
    readonly code: grpc.status,
    readonly details: string,
  ) {
    super(`${method}: ${grpc.status[code]}: ${details}`);
  }
}

export interface Clients {
  containers: grpc.Client;
  tasks: grpc.Client;
  events: grpc.Client;
  close(): void;
}

export function clients(socket: string): Clients {
  const addr = `unix:${socket}`;
  const creds = grpc.credentials.createInsecure();
  const c = {
    containers: new v1.Containers(addr, creds),
    tasks: new v1.Tasks(addr, creds),
    events: new v1.Events(addr, creds),
  };
  return { ...c, close: () => Object.values(c).forEach((x) => x.close()) };
}

export function call(client: grpc.Client, method: string, req: object = {}, timeoutMs = 30_000): Promise<Msg> {
  const fn = (client as unknown as Record<string, Unary>)[method];
  return new Promise((res, rej) =>
    fn.call(client, req, { deadline: Date.now() + timeoutMs }, (err, out) =>
      err ? rej(new RpcError(method, err.code, err.details)) : res(out),
    ),
  );
}

/** The gRPC code a call fails with (or 'ok'), and its message. */
export async function failure(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
    return { code: 'ok', message: '' };
  } catch (err) {
    if (err instanceof RpcError) return { code: grpc.status[err.code], message: err.details };
    throw err;
  }
}

/** An Events.Subscribe stream collecting envelopes. */
export class EventLog {
  readonly events: Msg[] = [];
  private readonly stream: grpc.ClientReadableStream<Msg>;
  private waiters: (() => void)[] = [];
  error: Error | undefined;
  constructor(c: Clients, filters: string[] = []) {
    this.stream = (c.events as unknown as { Subscribe(req: object): grpc.ClientReadableStream<Msg> }).Subscribe({
      filters,
    });
    this.stream.on('data', (e: Msg) => {
      this.events.push(e);
      for (const w of this.waiters.splice(0)) w();
    });
    this.stream.on('error', (e: Error) => {
      this.error = e;
      for (const w of this.waiters.splice(0)) w();
    });
  }
  topics(id?: string): string[] {
    return this.events.filter((e) => id === undefined || e.container_id === id).map((e) => e.topic);
  }
  exits(id?: string): Msg[] {
    return this.events
      .filter((e) => e.topic === '/tasks/exit' && (id === undefined || e.container_id === id))
      .map((e) => ({ id: e.container_id, ...e.task_exit }));
  }
  async waitFor(pred: (events: Msg[]) => boolean, timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!pred(this.events)) {
      if (this.error) throw this.error;
      const left = end - Date.now();
      if (left <= 0)
        throw new Error(`events: timed out; got ${JSON.stringify(this.events.map((e) => [e.topic, e.container_id]))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
  close(): void {
    this.stream.cancel();
  }
}

/** An Attach stream: collects stdout/stderr, resolves `exit` when the exit message comes, `ended` at the end. */
export class Attached {
  stdout = '';
  stderr = '';
  exit: Msg | undefined;
  readonly ended: Promise<void>;
  private readonly stream: grpc.ClientDuplexStream<Msg, Msg>;
  constructor(c: Clients, containerId: string, execId = '') {
    this.stream = (c.tasks as unknown as { Attach(): grpc.ClientDuplexStream<Msg, Msg> }).Attach();
    this.stream.on('data', (m: Msg) => {
      if (m.msg === 'stdout') this.stdout += Buffer.from(m.stdout).toString();
      else if (m.msg === 'stderr') this.stderr += Buffer.from(m.stderr).toString();
      else if (m.msg === 'exit') this.exit = m.exit;
    });
    this.ended = new Promise((res, rej) => {
      this.stream.on('end', () => res());
      this.stream.on('error', (e: grpc.ServiceError) =>
        e.code === grpc.status.CANCELLED ? res() : rej(new RpcError('Attach', e.code, e.details)),
      );
    });
    this.stream.write({ start: { container_id: containerId, exec_id: execId } });
  }
  write(s: string): void {
    this.stream.write({ stdin: Buffer.from(s) });
  }
  closeStdin(): void {
    this.stream.write({ close_stdin: true });
  }
  resize(width: number, height: number): void {
    this.stream.write({ resize: { width, height } });
  }
  async waitOutput(text: string, timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!this.stdout.includes(text)) {
      if (Date.now() > end) throw new Error(`attach: no ${JSON.stringify(text)} in ${JSON.stringify(this.stdout)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  detach(): void {
    this.stream.cancel();
  }
}

/** The mount namespace the supervisor runs in, held by a sleeping process; and the supervisor itself. */
export class SupervisorHarness {
  readonly socket: string;
  readonly root: string;
  readonly runtimeRoot: string;
  readonly state: string;
  readonly logFile: string;
  private holder: ChildProcess | undefined;
  proc: ChildProcess | undefined;

  constructor(readonly dir: string) {
    this.socket = join(dir, 'sup.sock');
    this.root = join(dir, 'root');
    this.runtimeRoot = join(dir, 'runtime');
    this.state = join(dir, 'shims');
    this.logFile = join(dir, 'supervisor.log');
  }

  async startNamespace(): Promise<void> {
    this.holder = spawn('unshare', ['-m', '--propagation', 'private', 'sleep', 'infinity'], { stdio: 'ignore' });
    // unshare execs sleep once the namespace is made: wait for that.
    for (let i = 0; i < 100; i++) {
      const comm = readFileSync(`/proc/${this.holder.pid}/comm`, 'utf8').trim();
      if (comm === 'sleep') return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('unshare did not make a mount namespace');
  }

  /** Start the supervisor (in the namespace) and wait until it answers. */
  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const out = openSync(this.logFile, 'a');
    const args = ['--address', this.socket, '--root', this.root, '--runtime-root', this.runtimeRoot];
    args.push('--state', this.state, '--log-level', 'info');
    this.proc = spawn('nsenter', ['-t', String(this.holder!.pid), '-m', '--', SUPERVISOR, ...args], {
      stdio: ['ignore', out, out],
    });
    const proc = this.proc;
    const c = clients(this.socket);
    try {
      const end = Date.now() + 20_000;
      for (;;) {
        if (proc.exitCode !== null) throw new Error(`skiff-supervisor exited ${proc.exitCode}: ${this.log()}`);
        if (existsSync(this.socket)) {
          const ok = await call(c.containers, 'List', {}, 2000).then(
            () => true,
            () => false,
          );
          if (ok) return;
        }
        if (Date.now() > end) throw new Error(`skiff-supervisor did not answer within 20 s: ${this.log()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      c.close();
    }
  }

  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8').split('\n').slice(-20).join('\n') : '';
  }

  /** kill -9, and wait until it is gone. */
  async kill9(): Promise<void> {
    const proc = this.proc!;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await gone;
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  }

  /** Inside the namespace: is path a mount point? */
  isMounted(path: string): boolean {
    const r = spawnSync('nsenter', ['-t', String(this.holder!.pid), '-m', '--', 'cat', '/proc/self/mountinfo'], {
      encoding: 'utf8',
    });
    return r.stdout.split('\n').some((l) => l.split(' ')[4] === path);
  }

  stopNamespace(): void {
    this.holder?.kill('SIGKILL');
  }
}
