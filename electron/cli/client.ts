// The CLI's side of skiff.host.v1: finding the host agent on ~/.skiff/<vm>/hostagent.sock, telling "not running"
// from "dead" from "not answering", launching one detached when `skiff start` needs it, and the calls as promises.
import {
  credentials,
  status as grpcStatus,
  type Client,
  type ClientReadableStream,
  type GrpcObject,
  type ServiceClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadProto } from '../../vm-agent/common/grpc.js';
import { ensurePrivateDir, type VmPaths } from '../hostagent/paths.js';
import type { HostStatus } from './format.js';

/** Exit code 3: Skiff is not running (no host agent answers). */
export const EXIT_NOT_RUNNING = 3;

/** A failure to show as is (no stack), with the exit code to use. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export interface Diagnostics {
  serial_log: string;
  agent_log: string;
  hostagent_log: string;
  qemu_command: string;
  versions: Record<string, string>;
}

type Cb<T> = (err: ServiceError | null, res: T) => void;
interface HostStub extends Client {
  Status(req: object, cb: Cb<HostStatus>): void;
  Start(req: object, cb: Cb<HostStatus>): void;
  Stop(req: object, cb: Cb<HostStatus>): void;
  Restart(req: object, cb: Cb<HostStatus>): void;
  Reset(req: object, cb: Cb<HostStatus>): void;
  Diagnostics(req: { lines: number }, cb: Cb<Diagnostics>): void;
  WatchStatus(req: object): ClientReadableStream<HostStatus>;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Is `pid` alive and (on Linux, where we can tell) a host agent, not a reused pid? */
function isHostagent(pid: number): boolean {
  if (!pidAlive(pid)) return false;
  if (process.platform !== 'linux') return true;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('hostagent');
  } catch {
    return false;
  }
}

export function hostagentPid(p: VmPaths): number {
  if (!existsSync(p.hostagentPid)) return 0;
  return parseInt(readFileSync(p.hostagentPid, 'utf8').trim(), 10) || 0;
}

/** Does something accept connections on the unix socket? */
export function socketAnswers(path: string, timeoutMs = 2000): Promise<boolean> {
  if (!existsSync(path)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const s = connect(path);
    const t = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}

export function lastLines(file: string, n: number): string {
  if (!existsSync(file)) return '';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
}

/** Why no host agent answers, in words, with what to do. */
export function notRunningMessage(p: VmPaths): string {
  const pid = hostagentPid(p);
  if (pid && isHostagent(pid))
    return (
      `the host agent for vm ${p.name} (pid ${pid}) does not answer on ${p.hostagentSocket}: ` +
      `see ${p.hostagentLog}; end it (kill ${pid}) and run \`skiff start\``
    );
  if (pid)
    return (
      `Skiff is not running: the host agent for vm ${p.name} died (pid ${pid} is gone; see ${p.hostagentLog}): ` +
      'run `skiff start`'
    );
  return `Skiff is not running (no host agent for vm ${p.name}): run \`skiff start\``;
}

export class HostClient {
  private constructor(
    readonly paths: VmPaths,
    private readonly stub: HostStub,
  ) {}

  /** Connect to a host agent that answers, or undefined when none does. */
  static async connect(p: VmPaths): Promise<HostClient | undefined> {
    if (!(await socketAnswers(p.hostagentSocket))) return undefined;
    const v1 = ((loadProto('host.proto').skiff as GrpcObject).host as GrpcObject).v1 as GrpcObject;
    const Host = v1.Host as ServiceClientConstructor;
    const stub = new Host(`unix://${p.hostagentSocket}`, credentials.createInsecure()) as unknown as HostStub;
    const c = new HostClient(p, stub);
    try {
      await new Promise<void>((resolve, reject) =>
        stub.waitForReady(Date.now() + 5000, (err) => (err ? reject(err) : resolve())),
      );
    } catch {
      c.close();
      return undefined;
    }
    return c;
  }

  /** Connect, or throw the "not running" error (exit code 3). */
  static async require(p: VmPaths): Promise<HostClient> {
    const c = await HostClient.connect(p);
    if (!c) throw new CliError(notRunningMessage(p), EXIT_NOT_RUNNING);
    return c;
  }

  close(): void {
    this.stub.close();
  }

  private call<T>(fn: (cb: Cb<T>) => void): Promise<T> {
    return new Promise((resolve, reject) => fn((err, res) => (err ? reject(this.explain(err)) : resolve(res))));
  }

  /** A gRPC error as a CliError with the host agent's message. */
  explain(err: ServiceError): CliError {
    if (err.code === grpcStatus.UNAVAILABLE || err.code === grpcStatus.CANCELLED)
      return new CliError(
        `the host agent for vm ${this.paths.name} stopped answering (${err.details || err.message}): ` +
          `see ${this.paths.hostagentLog}, then run \`skiff start\``,
      );
    return new CliError(err.details || err.message);
  }

  status(): Promise<HostStatus> {
    return this.call((cb) => this.stub.Status({}, cb));
  }
  start(): Promise<HostStatus> {
    return this.call((cb) => this.stub.Start({}, cb));
  }
  stop(): Promise<HostStatus> {
    return this.call((cb) => this.stub.Stop({}, cb));
  }
  restart(): Promise<HostStatus> {
    return this.call((cb) => this.stub.Restart({}, cb));
  }
  reset(): Promise<HostStatus> {
    return this.call((cb) => this.stub.Reset({}, cb));
  }
  diagnostics(lines: number): Promise<Diagnostics> {
    return this.call((cb) => this.stub.Diagnostics({ lines }, cb));
  }

  /** Every status change until stopped; the returned function cancels the stream. */
  watch(onStatus: (s: HostStatus) => void, onEnd?: (err?: Error) => void): () => void {
    const call = this.stub.WatchStatus({});
    let cancelled = false;
    call.on('data', (s: HostStatus) => onStatus(s));
    call.on('error', (err: ServiceError) => {
      if (!cancelled) onEnd?.(this.explain(err));
    });
    call.on('end', () => {
      if (!cancelled) onEnd?.();
    });
    return () => {
      cancelled = true;
      call.cancel();
    };
  }
}

/** The host agent program: $SKIFF_HOSTAGENT, beside this bundle (dist/bin), or the repo's dist/bin from source. */
export function hostagentProgram(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    process.env.SKIFF_HOSTAGENT,
    join(here, 'skiff-hostagent'),
    join(here, '../../dist/bin/skiff-hostagent'),
  ];
  for (const c of candidates) if (c && existsSync(c)) return c;
  throw new CliError(
    `the host agent program was not found (looked for ${candidates.filter(Boolean).join(', ')}): ` +
      'build it with `npm run build`, or set SKIFF_HOSTAGENT',
  );
}

/**
 * Start `skiff-hostagent --vm NAME` detached (its output appended to hostagent.log) and wait until it answers.
 * A host agent started at the same moment by someone else (the app, another `skiff start`) is fine: ours then
 * exits on the pidfile lock and the other one answers.
 */
export async function launchHostagent(p: VmPaths, timeoutMs = 20_000): Promise<HostClient> {
  const program = hostagentProgram();
  ensurePrivateDir(p.dir);
  const log = openSync(p.hostagentLog, 'a', 0o600);
  const child = spawn(process.execPath, [program, '--vm', p.name], {
    detached: true,
    stdio: ['ignore', log, log],
    cwd: p.dir,
    env: process.env,
    windowsHide: true,
  });
  closeSync(log);
  let exit: string | undefined;
  child.once('exit', (code, signal) => (exit = signal ?? `code ${code}`));
  child.once('error', (err) => (exit = err.message));
  child.unref();
  const deadline = Date.now() + timeoutMs;
  let exitedAt = 0;
  for (;;) {
    const c = await HostClient.connect(p);
    if (c) return c;
    if (exit !== undefined) {
      exitedAt ||= Date.now();
      // Lost the lock to another host agent that is still binding its socket: give it 5 s.
      if (Date.now() - exitedAt > 5000 || !/already running/.test(lastLines(p.hostagentLog, 3)))
        throw new CliError(
          `the host agent for vm ${p.name} exited at start (${exit}):\n${lastLines(p.hostagentLog, 10)}\n` +
            `(log: ${p.hostagentLog})`,
        );
    }
    if (Date.now() > deadline)
      throw new CliError(
        `the host agent for vm ${p.name} did not answer on ${p.hostagentSocket} within ${timeoutMs / 1000} s: ` +
          `see ${p.hostagentLog}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** End the host agent (SIGTERM to the pid in its pidfile: it stops the VM, then exits) and wait for it. */
export async function quitHostagent(p: VmPaths, timeoutMs = 60_000): Promise<boolean> {
  const pid = hostagentPid(p);
  if (!pid || !isHostagent(pid)) return false;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (pidAlive(pid)) {
    if (Date.now() > deadline)
      throw new CliError(`the host agent (pid ${pid}) did not exit within ${timeoutMs / 1000} s of SIGTERM`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}
