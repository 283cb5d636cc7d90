// The supervisor's side of the shim protocol (docs/shim-protocol.md): a launcher that runs skiff-shim and waits for
// its verdict, and a client over the shim's control socket (newline-delimited JSON) and attach socket
// (length-prefixed frames on a unix stream socket).
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type {
  AttachStream,
  ExitStatus,
  Shim,
  ShimEvent,
  ShimLauncher,
  ShimStartOptions,
  ShimState,
} from './shim-types.js';

export const SHIM_PROTOCOL_VERSION = 1;

/** Stream ids of attach frames. */
export const AttachStreamId = { Stdin: 0, Stdout: 1, Stderr: 2, Exit: 3, Hello: 4 } as const;

/** The shim binary next to the runtime in dist/bin/ (the repo layout; a packaged VM passes its own path). */
export const DEFAULT_SHIM_BINARY = resolve(dirname(fileURLToPath(import.meta.url)), '../../dist/bin/skiff-shim');

export class ShimError extends Error {
  constructor(
    message: string,
    readonly op?: string,
  ) {
    super(message);
    this.name = 'ShimError';
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

interface Pending {
  op: string;
  resolve: (v: Json) => void;
  reject: (e: Error) => void;
}

function connectUnix(path: string): Promise<Socket> {
  return new Promise((res, rej) => {
    const sock = connect(path);
    const onError = (e: Error): void => rej(e);
    sock.once('error', onError);
    sock.once('connect', () => {
      sock.off('error', onError);
      res(sock);
    });
  });
}

/** One frame: 4-byte big-endian length (stream id byte included), the stream id, the data. */
export function encodeFrame(stream: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(data.length + 1, 0);
  head.writeUInt8(stream, 4);
  return Buffer.concat([head, data]);
}

/** Splits a byte stream into frames; leftover bytes wait for the next chunk. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer, onFrame: (stream: number, data: Buffer) => void): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let off = 0;
    while (this.buf.length - off >= 5) {
      const len = this.buf.readUInt32BE(off);
      if (len === 0) throw new ShimError('attach: a frame of length 0');
      if (this.buf.length - off < 4 + len) break;
      onFrame(this.buf[off + 4]!, this.buf.subarray(off + 5, off + 4 + len));
      off += 4 + len;
    }
    this.buf = this.buf.subarray(off);
  }
}

class Attachment implements AttachStream {
  private outputCbs: Array<(stream: 'stdout' | 'stderr', data: Buffer) => void> = [];
  private exitCbs: Array<(exit: ExitStatus) => void> = [];
  private closeCbs: Array<() => void> = [];
  // what arrives before anyone listens is kept for the first listener
  private queuedOutput: Array<['stdout' | 'stderr', Buffer]> = [];
  private exit?: ExitStatus;
  private closed = false;

  constructor(private readonly sock: Socket) {}

  output(stream: 'stdout' | 'stderr', data: Buffer): void {
    if (this.outputCbs.length === 0) this.queuedOutput.push([stream, Buffer.from(data)]);
    for (const cb of this.outputCbs) cb(stream, data);
  }
  exited(exit: ExitStatus): void {
    this.exit = exit;
    for (const cb of this.exitCbs) cb(exit);
  }
  ended(): void {
    if (this.closed) return;
    this.closed = true;
    for (const cb of this.closeCbs) cb();
  }

  onOutput(cb: (stream: 'stdout' | 'stderr', data: Buffer) => void): void {
    this.outputCbs.push(cb);
    for (const [s, d] of this.queuedOutput.splice(0)) cb(s, d);
  }
  onExit(cb: (exit: ExitStatus) => void): void {
    this.exitCbs.push(cb);
    if (this.exit) cb(this.exit);
  }
  onClose(cb: () => void): void {
    this.closeCbs.push(cb);
    if (this.closed) cb();
  }
  writeStdin(data: Buffer): void {
    // an empty frame means "close stdin": never send one by accident
    for (let off = 0; off < data.length; off += 256 * 1024) {
      if (this.sock.writable) this.sock.write(encodeFrame(AttachStreamId.Stdin, data.subarray(off, off + 256 * 1024)));
    }
  }
  closeStdin(): void {
    if (this.sock.writable) this.sock.write(encodeFrame(AttachStreamId.Stdin));
  }
  detach(): void {
    this.sock.destroy();
    this.ended();
  }
}

export class ShimClient implements Shim {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private buffered = '';
  private closed = false;
  private closeReason = '';
  private subscribers = new Set<(e: ShimEvent) => void>();
  private subscribeId?: number;

  private constructor(
    readonly id: string,
    readonly dir: string,
    private readonly sock: Socket,
  ) {
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.onData(chunk));
    let cause = '';
    sock.on('error', (e) => (cause = `: ${e.message}`));
    sock.on('close', () => this.fail(`the control connection closed (the shim exited or died)${cause}`));
  }

  /** Connect to the shim in dir and check that it speaks our protocol version. */
  static async connect(id: string, dir: string): Promise<ShimClient> {
    const fileVersion = await readFile(join(dir, 'version'), 'utf8').catch(() => undefined);
    if (fileVersion !== undefined && Number(fileVersion.trim()) !== SHIM_PROTOCOL_VERSION)
      throw new ShimError(
        `shim ${id} in ${dir} speaks protocol version ${fileVersion.trim()}; this supervisor speaks ${SHIM_PROTOCOL_VERSION}`,
      );
    let sock: Socket;
    try {
      sock = await connectUnix(join(dir, 'control.sock'));
    } catch (e) {
      throw new ShimError(`shim ${id}: nobody answers on ${join(dir, 'control.sock')}: ${(e as Error).message}`);
    }
    const client = new ShimClient(id, dir, sock);
    const v = await client.version().catch((e: Error) => {
      client.close();
      throw e;
    });
    if (v !== SHIM_PROTOCOL_VERSION) {
      client.close();
      throw new ShimError(
        `shim ${id} in ${dir} speaks protocol version ${v}; this supervisor speaks ${SHIM_PROTOCOL_VERSION}`,
      );
    }
    return client;
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      if (line.trim() === '') continue;
      let msg: Json;
      try {
        msg = JSON.parse(line) as Json;
      } catch {
        continue; // not ours to fix: the shim only writes JSON lines
      }
      const id = typeof msg.id === 'number' ? msg.id : undefined;
      if (id !== undefined && id === this.subscribeId) {
        const { id: _id, ...event } = msg;
        for (const cb of this.subscribers) cb(event as ShimEvent);
        continue;
      }
      const p = id !== undefined ? this.pending.get(id) : undefined;
      if (!p) continue;
      this.pending.delete(id!);
      if (typeof msg.error === 'string') p.reject(new ShimError(`shim ${this.id}: ${p.op}: ${msg.error}`, p.op));
      else p.resolve(msg);
    }
  }

  private fail(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    for (const p of this.pending.values()) p.reject(new ShimError(`shim ${this.id}: ${p.op}: ${reason}`, p.op));
    this.pending.clear();
    this.sock.destroy();
  }

  private request(op: string, fields: Json = {}): Promise<Json> {
    if (this.closed) return Promise.reject(new ShimError(`shim ${this.id}: ${op}: ${this.closeReason}`, op));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { op, resolve, reject });
      this.sock.write(`${JSON.stringify({ ...fields, id, op })}\n`);
    });
  }

  async version(): Promise<number> {
    return (await this.request('version')).version as number;
  }

  async state(): Promise<ShimState> {
    const r = await this.request('state');
    const s: ShimState = { id: r.container as string, status: r.status, pid: r.pid, execs: r.execs ?? [] };
    if (r.exitCode !== undefined) s.exitCode = r.exitCode;
    if (r.exitedAt !== undefined) s.exitedAt = r.exitedAt;
    if (r.oomKilled !== undefined) s.oomKilled = r.oomKilled;
    return s;
  }

  async start(): Promise<{ pid: number }> {
    return { pid: (await this.request('start')).pid as number };
  }

  async kill(signal: number, opts: { all?: boolean; exec?: string } = {}): Promise<void> {
    await this.request('kill', { signal, all: opts.all ?? false, ...(opts.exec ? { exec: opts.exec } : {}) });
  }

  async resize(width: number, height: number, exec?: string): Promise<void> {
    await this.request('resize', { width, height, ...(exec ? { exec } : {}) });
  }

  async closeStdin(exec?: string): Promise<void> {
    await this.request('closeStdin', exec ? { exec } : {});
  }

  async exec(execId: string, process: object, opts: { tty: boolean; stdin: boolean }): Promise<{ pid: number }> {
    const r = await this.request('exec', { exec: execId, process, tty: opts.tty, stdin: opts.stdin });
    return { pid: r.pid as number };
  }

  async wait(exec?: string): Promise<ExitStatus> {
    const r = await this.request('wait', exec ? { exec } : {});
    return { pid: r.pid, exitCode: r.exitCode, signal: r.signal, exitedAt: r.exitedAt, oomKilled: r.oomKilled };
  }

  subscribe(cb: (e: ShimEvent) => void): () => void {
    this.subscribers.add(cb);
    if (this.subscribeId === undefined && !this.closed) {
      // one subscription per connection, shared by every callback; its answers are events, never a result
      this.subscribeId = this.nextId++;
      this.sock.write(`${JSON.stringify({ id: this.subscribeId, op: 'subscribe' })}\n`);
    }
    return () => {
      this.subscribers.delete(cb);
    };
  }

  async delete(exec?: string): Promise<{ exitCode: number; exitedAt: string }> {
    const r = await this.request('delete', exec ? { exec } : {});
    return { exitCode: r.exitCode as number, exitedAt: r.exitedAt as string };
  }

  async shutdown(): Promise<void> {
    await this.request('shutdown');
  }

  async attach(exec?: string): Promise<AttachStream> {
    let sock: Socket;
    try {
      sock = await connectUnix(join(this.dir, 'attach.sock'));
    } catch (e) {
      throw new ShimError(`shim ${this.id}: attach: ${(e as Error).message}`, 'attach');
    }
    const reader = new FrameReader();
    const att = new Attachment(sock);
    return new Promise((resolve, reject) => {
      let answered = false;
      const refuse = (msg: string): void => {
        if (answered) return;
        answered = true;
        sock.destroy();
        reject(new ShimError(`shim ${this.id}: attach${exec ? ` to exec ${exec}` : ''}: ${msg}`, 'attach'));
      };
      sock.on('data', (chunk: Buffer) => {
        try {
          reader.push(chunk, (stream, data) => {
            if (!answered) {
              if (stream !== AttachStreamId.Hello) return refuse('the shim did not answer the hello');
              const hello = JSON.parse(data.toString('utf8')) as Json;
              if (typeof hello.error === 'string') return refuse(hello.error);
              answered = true;
              resolve(att);
              return;
            }
            if (stream === AttachStreamId.Stdout) att.output('stdout', data);
            else if (stream === AttachStreamId.Stderr) att.output('stderr', data);
            else if (stream === AttachStreamId.Exit) att.exited(JSON.parse(data.toString('utf8')) as ExitStatus);
          });
        } catch (e) {
          refuse((e as Error).message);
          sock.destroy();
        }
      });
      sock.on('error', (e) => refuse(e.message));
      sock.on('close', () => {
        refuse('the shim closed the attach connection');
        att.ended();
      });
      sock.write(encodeFrame(AttachStreamId.Hello, Buffer.from(JSON.stringify(exec ? { exec } : {}))));
    });
  }

  close(): void {
    this.fail('closed by the client');
  }
}

export interface ShimClientLauncherOptions {
  /** Path of the skiff-shim executable. */
  binary?: string;
}

export class ShimClientLauncher implements ShimLauncher {
  readonly binary: string;
  constructor(opts: ShimClientLauncherOptions = {}) {
    this.binary = opts.binary ?? DEFAULT_SHIM_BINARY;
  }

  static args(o: ShimStartOptions): string[] {
    const a = ['--id', o.id, '--bundle', o.bundle, '--dir', o.dir, '--runtime', o.runtime];
    if (o.runtimeRoot) a.push('--runtime-root', o.runtimeRoot);
    if (o.logPath) a.push('--log-path', o.logPath);
    if (o.logMaxSize !== undefined) a.push('--log-max-size', String(o.logMaxSize));
    if (o.logMaxFile !== undefined) a.push('--log-max-file', String(o.logMaxFile));
    if (o.tty) a.push('--tty');
    if (o.stdin) a.push('--stdin');
    return a;
  }

  async start(opts: ShimStartOptions): Promise<Shim> {
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((res, rej) => {
      const child = spawn(this.binary, ShimClientLauncher.args(opts), { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (d: string) => (stderr += d));
      child.on('error', (e) => rej(new ShimError(`starting ${this.binary}: ${e.message}`, 'start')));
      child.on('close', (code) => res({ code, stderr }));
    });
    if (code !== 0) {
      const msg = stderr.trim().replace(/^skiff-shim: /, '') || `skiff-shim exited with status ${code}`;
      // the shim already says which container it was creating; add it only when it did not get that far
      const prefix = `creating container ${opts.id}: `;
      throw new ShimError(msg.startsWith(prefix) ? msg : prefix + msg, 'start');
    }
    return ShimClient.connect(opts.id, opts.dir);
  }

  connect(id: string, dir: string): Promise<Shim> {
    return ShimClient.connect(id, dir);
  }
}
