// POST /containers/{id}/attach, /resize and /wait, and the pump that joins a hijacked connection to the supervisor's
// Tasks.Attach stream (exec start uses it too). docker-api-notes.md: 101 UPGRADED, output multiplexed without a
// tty, the client's half-close does not end output, the exit flushes and closes, /wait's headers go out at once.
import type { Duplex } from 'node:stream';
import type { ClientDuplexStream } from '@grpc/grpc-js';
import { errorMessage, logger } from '../../common/log.js';
import {
  badRequest,
  conflict,
  type ContainerRecordView,
  type Daemon,
  type RequestContext,
  type StreamHooks,
} from '../contracts.js';
import type { AttachRequestMsg, AttachResponseMsg, SupervisorClient } from '../supervisor.js';
import { isFailedPrecondition, isNotFound } from '../supervisor.js';
import { isRunning, isTty, muxFrame, sendLog, sinkOf } from './logs.js';

const log = logger('attach');

// ---------------------------------------------------------------------------------------------- detach keys

/** Docker's detach keys ("ctrl-p,ctrl-q", "a,ctrl-@"): the bytes; a 400 when malformed. */
export function parseDetachKeys(spec: string): Buffer {
  const out: number[] = [];
  for (const k of spec.split(',')) {
    const key = k.trim();
    if (key.length === 1) out.push(key.charCodeAt(0));
    else if (/^ctrl-[a-z@[\\\]^_]$/i.test(key)) {
      const c = key.charAt(5).toLowerCase();
      out.push(
        c >= 'a' && c <= 'z' ? c.charCodeAt(0) - 96 : ({ '@': 0, '[': 27, '\\': 28, ']': 29, '^': 30, _: 31 }[c] ?? 0),
      );
    } else throw badRequest(`Invalid detach keys (${spec}) provided`);
  }
  if (out.length === 0) throw badRequest(`Invalid detach keys (${spec}) provided`);
  return Buffer.from(out);
}

export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

/**
 * Watches stdin for the detach sequence. Bytes that may begin it are held back until they do or do not; `push`
 * returns what to pass on and whether the sequence was typed (what follows it is dropped).
 */
export class DetachScanner {
  private held = 0;
  constructor(private readonly keys: Buffer) {}

  push(chunk: Buffer): { data: Buffer; detach: boolean } {
    if (this.keys.length === 0) return { data: chunk, detach: false };
    const out: number[] = [];
    for (const b of chunk) {
      if (b === this.keys[this.held]) {
        this.held++;
        if (this.held === this.keys.length) return { data: Buffer.from(out), detach: true };
        continue;
      }
      // A mismatch: the held bytes were data after all; this byte may start the sequence again.
      for (let i = 0; i < this.held; i++) out.push(this.keys[i] as number);
      this.held = 0;
      if (b === this.keys[0]) this.held = 1;
      else out.push(b);
    }
    return { data: Buffer.from(out), detach: false };
  }
}

// ---------------------------------------------------------------------------------------------- the pump

export interface PumpOptions {
  sup: SupervisorClient;
  containerId: string;
  execId?: string;
  socket: Duplex;
  /** Without a tty: frames; with one: raw bytes. */
  multiplexed: boolean;
  stdout: boolean;
  stderr: boolean;
  /** Read the client's stdin and pass it on. */
  stdin: boolean;
  /** At the client's EOF (half-close): close the process's stdin and keep sending output ("close"), or detach. */
  onStdinEnd: 'close' | 'detach';
  /** Close the process's stdin when this attacher goes away (StdinOnce). */
  closeStdinOnDetach: boolean;
  detachKeys: Buffer;
  /** Called with the exit status when the process exits, before the connection is closed. */
  onExit?: (e: { exit_status: number }) => void;
  /** Written before the live output (attach logs=1); live output is held meanwhile. */
  prelude?: (write: (b: Buffer) => Promise<boolean>) => Promise<void>;
}

/** One attached client: the gRPC stream opened with `connect()`, output to the socket until the exit or a detach. */
export class Pump {
  private call: ClientDuplexStream<AttachRequestMsg, AttachResponseMsg> | undefined;
  private finished = false;
  private preludeDone: Promise<void> = Promise.resolve();
  private held: Buffer[] = [];
  private holding = false;
  private stdinClosed = false;
  /** Resolves when the pump is done (process exited, client gone or detached). */
  readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(private readonly o: PumpOptions) {
    this.done = new Promise((r) => (this.resolveDone = r));
    const s = o.socket;
    s.on('error', () => this.detach());
    s.on('close', () => this.detach());
    if (o.stdin) {
      const scanner = new DetachScanner(o.detachKeys);
      s.on('data', (chunk: Buffer) => {
        if (this.finished) return;
        const { data, detach } = scanner.push(chunk);
        if (data.length) this.sendStdin(data);
        if (detach) this.detach(true);
      });
      s.on('end', () => {
        if (this.finished) return;
        if (o.onStdinEnd === 'close') this.closeStdin();
        else this.detach(true);
      });
    } else {
      // The CLI half-closes at once when it has no stdin: drain and ignore, output goes on.
      s.on('data', () => undefined);
      s.on('end', () => undefined);
    }
    if (o.prelude) {
      this.holding = true;
      this.preludeDone = o
        .prelude((b) => this.writeOut(b))
        .catch((err: unknown) => log.debug(`attach logs: ${errorMessage(err)}`))
        .then(() => {
          this.holding = false;
          for (const b of this.held.splice(0)) this.writeOut(b);
        });
    }
  }

  private pendingStdin: AttachRequestMsg[] = [];

  private sendStdin(data: Buffer): void {
    if (this.stdinClosed) return;
    if (this.call) this.call.write({ stdin: data });
    else this.pendingStdin.push({ stdin: data });
  }

  private closeStdin(): void {
    if (this.stdinClosed) return;
    this.stdinClosed = true;
    if (this.call) this.call.write({ close_stdin: true });
    else this.pendingStdin.push({ close_stdin: true });
  }

  private writeOut(b: Buffer): Promise<boolean> {
    const s = this.o.socket;
    if (s.destroyed || s.writableEnded) return Promise.resolve(false);
    if (s.write(b)) return Promise.resolve(true);
    return new Promise((r) => {
      s.once('drain', () => r(true));
      s.once('close', () => r(false));
    });
  }

  private output(which: 1 | 2, data: Buffer): void {
    if ((which === 1 && !this.o.stdout) || (which === 2 && !this.o.stderr) || data.length === 0) return;
    const b = this.o.multiplexed ? muxFrame(which, data) : data;
    if (this.holding) {
      this.held.push(b);
      return;
    }
    const s = this.o.socket;
    if (s.destroyed || s.writableEnded) return;
    if (!s.write(b) && this.call) {
      const call = this.call;
      call.pause();
      s.once('drain', () => call.resume());
    }
  }

  /**
   * Opens Tasks.Attach and makes sure the supervisor has attached (a round trip behind the start message on the
   * same channel), so output from a Tasks.Start that follows is not missed.
   */
  async connect(): Promise<void> {
    if (this.finished || this.call) return;
    const { sup, containerId, execId } = this.o;
    const call = sup.tasks.attach();
    this.call = call;
    call.write({ start: { container_id: containerId, exec_id: execId ?? '' } });
    for (const m of this.pendingStdin.splice(0)) call.write(m);
    call.on('data', (m: AttachResponseMsg) => {
      if (m.stdout) this.output(1, m.stdout);
      else if (m.stderr) this.output(2, m.stderr);
      else if (m.exit) this.o.onExit?.(m.exit);
    });
    call.on('error', (err: Error & { code?: number }) => {
      if (!this.finished) log.debug(`attach ${containerId}${execId ? `/${execId}` : ''}: ${err.message}`);
      void this.end();
    });
    call.on('end', () => void this.end());
    await sup.tasks.state(containerId, execId).catch(() => undefined);
  }

  /** The process exited (or the stream failed): send what is held, then close the connection. */
  private async end(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    await this.preludeDone;
    const s = this.o.socket;
    if (!s.destroyed && !s.writableEnded) {
      s.end();
      s.once('finish', () => s.destroy());
    }
    this.resolveDone();
  }

  /** The client went away or typed the detach keys: leave the process running. */
  detach(closeConnection = false): void {
    if (this.finished) return;
    this.finished = true;
    if (this.o.closeStdinOnDetach && !this.stdinClosed) {
      this.stdinClosed = true;
      this.o.sup.tasks
        .closeIO(this.o.containerId, this.o.execId ?? '')
        .catch((err: unknown) => log.debug(`close stdin: ${errorMessage(err)}`));
    }
    this.call?.cancel();
    if (closeConnection && !this.o.socket.destroyed) {
      this.o.socket.end();
      this.o.socket.once('finish', () => this.o.socket.destroy());
    }
    this.resolveDone();
  }

  get isFinished(): boolean {
    return this.finished;
  }
}

// ---------------------------------------------------------------------------------------------- attach

/** Attachers of containers that have no task yet: they connect when the life cycle calls beforeStart. */
export class AttachRegistry implements StreamHooks {
  private readonly waiting = new Map<string, Set<Pump>>();
  private readonly connecting = new Map<string, Set<Promise<void>>>();

  add(containerId: string, p: Pump): void {
    let set = this.waiting.get(containerId);
    if (!set) this.waiting.set(containerId, (set = new Set()));
    set.add(p);
    void p.done.then(() => {
      set.delete(p);
      if (set.size === 0 && this.waiting.get(containerId) === set) this.waiting.delete(containerId);
    });
  }

  /** Connect now (the task exists); beforeStart waits for it too. */
  connectNow(containerId: string, p: Pump): Promise<void> {
    const c = p.connect();
    let set = this.connecting.get(containerId);
    if (!set) this.connecting.set(containerId, (set = new Set()));
    set.add(c);
    void c.finally(() => set.delete(c));
    return c;
  }

  async beforeStart(containerId: string): Promise<void> {
    const waiting = [...(this.waiting.get(containerId) ?? [])];
    this.waiting.delete(containerId);
    const all = [...waiting.map((p) => p.connect()), ...(this.connecting.get(containerId) ?? [])];
    if (all.length === 0) return;
    await Promise.race([Promise.allSettled(all), new Promise((r) => setTimeout(r, 2000).unref())]);
  }

  /** Attachers still waiting for a task (the container was started without beforeStart): connect them late. */
  waitingFor(containerId: string): Pump[] {
    return [...(this.waiting.get(containerId) ?? [])];
  }

  take(containerId: string, p: Pump): boolean {
    return this.waiting.get(containerId)?.delete(p) ?? false;
  }
}

async function taskExists(sup: SupervisorClient, id: string): Promise<boolean> {
  try {
    const st = await sup.tasks.state(id);
    return st.status === 'RUNNING' || st.status === 'PAUSED' || st.status === 'CREATED';
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

export async function handleAttach(daemon: Daemon, reg: AttachRegistry, ctx: RequestContext): Promise<void> {
  const c = await daemon.containers.get(ctx.params.id as string);
  if (c.state.status === 'paused') throw conflict(`container ${c.id} is paused, unpause the container before attach`);
  const tty = isTty(c);
  const wantStdin = ctx.bool('stdin', false);
  const stdin = wantStdin && c.config.OpenStdin === true;
  const stdout = ctx.bool('stdout', false);
  const stderr = ctx.bool('stderr', false);
  const stream = ctx.bool('stream', false);
  const logs = ctx.bool('logs', false);
  const detachKeys = parseDetachKeys(ctx.query.get('detachKeys') || DEFAULT_DETACH_KEYS);
  const task = daemon.containers.taskId(c);
  const stdinOnce = c.config.StdinOnce === true;
  const socket = await ctx.hijack({ multiplexed: !tty });
  const prelude =
    logs && (stdout || stderr)
      ? async (write: (b: Buffer) => Promise<boolean>): Promise<void> => {
          const sink = sinkOf(socket);
          await sendLog(
            c.logPath,
            { stdout, stderr, tail: -1, timestamps: false, follow: false },
            tty,
            {
              write: (b) => write(b),
              get closed() {
                return sink.closed;
              },
            },
            { stop: Promise.resolve(), signal: new AbortController().signal },
          );
        }
      : undefined;
  if (!stream) {
    // logs=1 only: the log, then the end.
    socket.on('data', () => undefined);
    if (prelude) await prelude((b) => writeTo(socket, b));
    socket.end();
    socket.once('finish', () => socket.destroy());
    return;
  }
  const pump = new Pump({
    sup: daemon.supervisor,
    containerId: task,
    socket,
    multiplexed: !tty,
    stdout,
    stderr,
    stdin,
    onStdinEnd: stdinOnce && !tty ? 'close' : 'detach',
    closeStdinOnDetach: stdin && stdinOnce,
    detachKeys: stdin ? detachKeys : Buffer.alloc(0),
    prelude,
  });
  if (isRunning(c) && (await taskExists(daemon.supervisor, task))) {
    await reg.connectNow(task, pump);
    return;
  }
  // No task yet (docker run attaches before it starts): connect when the life cycle calls beforeStart; if it
  // starts without calling it, connect as soon as it is seen running (late: early output is in the log).
  reg.add(task, pump);
  void lateConnect(daemon, reg, c, pump);
}

function writeTo(s: Duplex, b: Buffer): Promise<boolean> {
  if (s.destroyed || s.writableEnded) return Promise.resolve(false);
  if (s.write(b)) return Promise.resolve(true);
  return new Promise((r) => {
    s.once('drain', () => r(true));
    s.once('close', () => r(false));
  });
}

async function lateConnect(daemon: Daemon, reg: AttachRegistry, c: ContainerRecordView, p: Pump): Promise<void> {
  const task = daemon.containers.taskId(c);
  while (!p.isFinished && reg.waitingFor(task).includes(p)) {
    await new Promise((r) => setTimeout(r, 250));
    if (!reg.waitingFor(task).includes(p)) return;
    let cur: ContainerRecordView;
    try {
      cur = await daemon.containers.get(c.id);
    } catch {
      p.detach(true);
      return;
    }
    if (isRunning(cur) && reg.take(task, p)) {
      await p.connect();
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------- resize, wait

export function sizeParams(ctx: RequestContext): { h: number; w: number } {
  const num = (name: string): number => {
    const v = ctx.query.get(name);
    const n = Number(v ?? '0');
    if (v === null || v === '' || !Number.isInteger(n) || n < 0 || n > 0xffff)
      throw badRequest(`invalid ${name === 'h' ? 'height' : 'width'}: ${JSON.stringify(v)}`);
    return n;
  };
  return { h: num('h'), w: num('w') };
}

export async function handleResize(daemon: Daemon, ctx: RequestContext): Promise<void> {
  const c = await daemon.containers.get(ctx.params.id as string);
  const { h, w } = sizeParams(ctx);
  if (!isRunning(c)) throw conflict(`Container ${c.id} is not running`);
  try {
    await daemon.supervisor.tasks.resizePty(daemon.containers.taskId(c), '', w, h);
  } catch (err) {
    if (isNotFound(err)) throw conflict(`Container ${c.id} is not running`);
    // No tty: nothing to resize (dockerd ignores it too).
    if (!isFailedPrecondition(err) && isTty(c)) throw err;
    log.debug(`resize ${c.id}: ${errorMessage(err)}`);
  }
  ctx.res.writeHead(200, { 'Content-Length': '0' });
  ctx.res.end();
}

const conditions = new Set(['not-running', 'next-exit', 'removed']);

export async function handleWait(daemon: Daemon, ctx: RequestContext): Promise<void> {
  const raw = ctx.query.get('condition') ?? '';
  const condition = (raw || 'not-running') as 'not-running' | 'next-exit' | 'removed';
  if (!conditions.has(condition)) throw badRequest(`invalid condition: "${raw}"`);
  const c = await daemon.containers.get(ctx.params.id as string);
  // The CLI waits for these headers before it starts the container: send them now.
  ctx.res.writeHead(200, { 'Content-Type': 'application/json' });
  ctx.res.flushHeaders();
  let body: { StatusCode: number; Error: null | { Message: string } };
  try {
    const r = await daemon.containers.wait(c.id, condition);
    body = { StatusCode: r.StatusCode, Error: null };
  } catch (err) {
    body = { StatusCode: -1, Error: { Message: errorMessage(err) } };
  }
  if (!ctx.res.writableEnded && !ctx.res.destroyed) ctx.res.end(`${JSON.stringify(body)}\n`);
}
