// A test harness for skiff-agent: each test file gets one `skiff-agent --native` in fresh mount and network
// namespaces (held by a sleeping `unshare`, loopback up: DaemonHarness's), with a temp root. The agent starts
// skiff-supervisor and skiffd there itself. gRPC clients for every service of proto/agent.proto (loaded with the
// project's proto-loader options), the docker CLI against the agent's docker.sock for setup, and helpers to kill
// the engine's processes the agent keeps.
//
//   const a = await startAgent();
//   await a.docker(['load', '-i', busyboxArchive()]);
//   const info = await call(a.c.system, 'Info');           // unary (call/failure from supervisor-client.ts)
//   const logs = a.stream(a.c.containers, 'Logs', { id, follow: true }); await logs.waitFor((m) => …);
//   const ex = a.exec({ container: id, command: ['sh'], stdin: true });
//   await a.killSkiffd(); await a.waitReady((i) => restarts(i, 'skiffd') >= 1);
//   await a.stop();                                         // containers killed, processes gone, temp dir removed
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadProto } from '../../vm-agent/common/grpc.js';
import { REPO, RUNTIME } from '../native/helpers.js';
import { DaemonHarness, type DockerOpts, type RunResult } from './daemon-harness.js';
import { call, type Msg } from './supervisor-client.js';

export const AGENT = join(REPO, 'dist/bin/skiff-agent');
const SKIFFD_BIN = 'dist/bin/skiffd';
const SUPERVISOR_BIN = 'dist/bin/skiff-supervisor';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type ClientCtor = new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client;
const v1 = (loadProto('agent.proto') as unknown as { skiff: { agent: { v1: Record<string, ClientCtor> } } }).skiff.agent
  .v1;

export interface AgentClients {
  system: grpc.Client;
  containers: grpc.Client;
  images: grpc.Client;
  volumes: grpc.Client;
  networks: grpc.Client;
  ports: grpc.Client;
  vm: grpc.Client;
}

/** A gRPC status as the tests compare it: the code's name ("UNAVAILABLE") and the details. */
export interface EndStatus {
  code: string;
  details: string;
}

/**
 * A server (or bidi) stream collecting every message; `status` is set when it ends (OK, or the error's code).
 * `waitFor` and `ended` fail with what came so far, so a failing test says what the agent sent.
 */
export class StreamLog {
  readonly items: Msg[] = [];
  status: EndStatus | undefined;
  private waiters: (() => void)[] = [];

  constructor(
    readonly what: string,
    readonly call: grpc.ClientReadableStream<Msg> | grpc.ClientDuplexStream<Msg, Msg>,
  ) {
    call.on('data', (m: Msg) => {
      this.items.push(m);
      this.wake();
    });
    call.on('error', (e: grpc.ServiceError) => {
      this.status ??= { code: grpc.status[e.code] ?? String(e.code), details: e.details };
      this.wake();
    });
    call.on('status', (s: grpc.StatusObject) => {
      this.status ??= { code: grpc.status[s.code] ?? String(s.code), details: s.details };
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private async until(done: () => boolean, timeoutMs: number, why: () => string): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!done()) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`${this.what}: ${why()}; got ${this.describe()}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Wait until the messages so far satisfy `pred`; fails if the stream ends first. */
  async waitFor(pred: (items: Msg[]) => boolean, timeoutMs = 15_000, what = 'the expected messages'): Promise<void> {
    await this.until(
      () => pred(this.items) || this.status !== undefined,
      timeoutMs,
      () => `timed out waiting for ${what}`,
    );
    if (!pred(this.items)) throw new Error(`${this.what}: ended before ${what}; got ${this.describe()}`);
  }

  /** Wait for the end of the stream: its status. */
  async ended(timeoutMs = 15_000): Promise<EndStatus> {
    await this.until(
      () => this.status !== undefined,
      timeoutMs,
      () => 'did not end',
    );
    return this.status!;
  }

  cancel(): void {
    this.call.cancel();
  }

  describe(): string {
    const shown = this.items
      .slice(-30)
      .map((m) =>
        JSON.stringify(m, (_k, v: unknown) =>
          v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer'
            ? Buffer.from((v as { data: number[] }).data).toString()
            : v,
        ),
      );
    const status = this.status ? ` (ended ${this.status.code}: ${this.status.details})` : '';
    return `${this.items.length} message(s), last: [${shown.join(', ')}]${status}`;
  }
}

/** An Exec stream: the first message was `start`; stdout/stderr/exit as they came. */
export class ExecSession extends StreamLog {
  declare readonly call: grpc.ClientDuplexStream<Msg, Msg>;

  get stdout(): string {
    return this.text('stdout');
  }
  get stderr(): string {
    return this.text('stderr');
  }
  /** The exit code once the `exit` message came. */
  get exitCode(): number | undefined {
    const m = this.items.find((i) => i.output === 'exit_code');
    return m === undefined ? undefined : Number(m.exit_code);
  }
  private text(kind: 'stdout' | 'stderr'): string {
    return Buffer.concat(this.items.filter((i) => i.output === kind).map((i) => Buffer.from(i[kind]))).toString();
  }
  write(s: string | Buffer): void {
    this.call.write({ stdin: Buffer.from(s) });
  }
  resize(cols: number, rows: number): void {
    this.call.write({ resize: { cols, rows } });
  }
  closeStdin(): void {
    this.call.write({ close_stdin: true });
  }
  /** Wait until stdout contains `text`. */
  async waitOutput(text: string, timeoutMs = 15_000): Promise<void> {
    await this.waitFor(() => this.stdout.includes(text), timeoutMs, JSON.stringify(text));
  }
  /** Wait for the exit message and the end of the stream (OK); the exit code. */
  async waitExit(timeoutMs = 15_000): Promise<number> {
    const st = await this.ended(timeoutMs);
    if (st.code !== 'OK') throw new Error(`${this.what}: ended ${st.code}: ${st.details}; got ${this.describe()}`);
    const code = this.exitCode;
    if (code === undefined) throw new Error(`${this.what}: ended without an exit message; got ${this.describe()}`);
    return code;
  }
}

/** The health of one kept process ("skiffd", "skiff-supervisor") in an Info answer. */
export function processOf(info: Msg, name: string): Msg {
  const p = (info.processes as Msg[]).find((x) => x.name === name);
  if (!p) throw new Error(`System.Info lists no ${name}: ${JSON.stringify(info.processes)}`);
  return p;
}

function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

/** A live process (a zombie counts as gone: the agent reaps it). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export class AgentHarness {
  /** The namespaces, the docker CLI (its socket is `<dir>/docker.sock`: the agent's run dir is `dir`) and teardown. */
  readonly ns: DaemonHarness;
  readonly root: string;
  readonly runDir: string;
  readonly socket: string;
  readonly dockerSocket: string;
  readonly logFile: string;
  proc: ChildProcess | undefined;
  c!: AgentClients;
  /** The supervisor's --runtime-root and --state (shims), seen while it ran: teardown deletes what is left there. */
  private readonly runtimeRoots = new Set<string>();
  private readonly shimDirs = new Set<string>();

  constructor(readonly dir: string) {
    this.ns = new DaemonHarness(dir);
    this.root = join(dir, 'root');
    this.runDir = dir;
    this.socket = join(dir, 'agent.sock');
    this.dockerSocket = this.ns.socket;
    this.logFile = join(dir, 'agent.log');
  }

  /** The pid holding the namespaces (for nsenter). */
  get nsPid(): number {
    return this.ns.nsPid;
  }

  /** Start the agent in the namespaces and wait until System.Info says engine_ready. */
  async startAgent(timeoutMs = 60_000): Promise<void> {
    if (!existsSync(AGENT)) throw new Error(`${AGENT} is missing: run npm run build (or node scripts/build-ts.mjs)`);
    mkdirSync(this.root, { recursive: true });
    mkdirSync(this.ns.dockerConfig, { recursive: true });
    const out = openSync(this.logFile, 'a');
    const args = ['--native', '--root', this.root, '--run', this.runDir];
    const proc = spawn('nsenter', ['-t', String(this.nsPid), '-m', '-n', '--', AGENT, ...args], {
      stdio: ['ignore', out, out],
    });
    this.proc = proc;
    this.c = this.clients();
    const end = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null)
        throw new Error(`skiff-agent exited (${proc.exitCode ?? proc.signalCode}): ${this.log()}`);
      if (existsSync(this.socket)) {
        try {
          const info = await call(this.c.system, 'Info', {}, 2000);
          this.notePaths(info);
          if (info.engine_ready) return;
          last = JSON.stringify(info.processes);
        } catch (err) {
          last = (err as Error).message;
        }
      }
      if (Date.now() > end)
        throw new Error(`skiff-agent: engine not ready within ${timeoutMs} ms (last: ${last}): ${this.log()}`);
      await sleep(100);
    }
  }

  /** Clients for every service of skiff.agent.v1 on agent.sock. */
  clients(): AgentClients {
    const addr = `unix:${this.socket}`;
    const creds = grpc.credentials.createInsecure();
    return {
      system: new v1.System(addr, creds),
      containers: new v1.Containers(addr, creds),
      images: new v1.Images(addr, creds),
      volumes: new v1.Volumes(addr, creds),
      networks: new v1.Networks(addr, creds),
      ports: new v1.Ports(addr, creds),
      vm: new v1.Vm(addr, creds),
    };
  }

  private closeClients(): void {
    if (this.c) for (const cl of Object.values(this.c)) cl.close();
  }

  /** Open a server stream. */
  stream(client: grpc.Client, method: string, req: object = {}): StreamLog {
    const fn = (client as unknown as Record<string, (r: object) => grpc.ClientReadableStream<Msg>>)[method];
    return new StreamLog(method, fn.call(client, req));
  }

  /** Open an Exec stream and send its `start`. */
  exec(start: Msg): ExecSession {
    const duplex = (this.c.containers as unknown as { Exec(): grpc.ClientDuplexStream<Msg, Msg> }).Exec();
    const s = new ExecSession(`Exec ${JSON.stringify(start.command)}`, duplex);
    duplex.write({ start });
    return s;
  }

  async info(): Promise<Msg> {
    const info = await call(this.c.system, 'Info');
    this.notePaths(info);
    return info;
  }

  /** Poll System.Info until the engine is ready and `pred` holds. */
  async waitReady(pred: (info: Msg) => boolean = () => true, timeoutMs = 60_000): Promise<Msg> {
    const end = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      try {
        const info = await this.info();
        if (info.engine_ready && pred(info)) return info;
        last = JSON.stringify({ engine_ready: info.engine_ready, processes: info.processes });
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > end) throw new Error(`engine not ready as expected within ${timeoutMs} ms; last Info: ${last}`);
      await sleep(100);
    }
  }

  /** The pid of a kept process: System.Info's, checked against its command line (never signal a stranger). */
  async pidOf(name: 'skiffd' | 'skiff-supervisor'): Promise<number> {
    const pid = Number(processOf(await this.info(), name).pid);
    const bin = name === 'skiffd' ? SKIFFD_BIN : SUPERVISOR_BIN;
    if (pid > 0 && cmdline(pid).some((a) => a.endsWith(bin))) return pid;
    // Not (or wrongly) reported: find it by its binary and this harness's paths.
    for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
      const args = cmdline(Number(p));
      if (args.some((a) => a.endsWith(bin)) && args.some((a) => a.includes(this.dir))) return Number(p);
    }
    throw new Error(`${name}: no such process (System.Info says pid ${pid}): ${this.log()}`);
  }

  /** kill -9 one kept process and wait until it is gone; its old pid. */
  async kill9(name: 'skiffd' | 'skiff-supervisor'): Promise<number> {
    const pid = await this.pidOf(name);
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 200 && alive(pid); i++) await sleep(25);
    if (alive(pid)) throw new Error(`${name} (${pid}) still alive after SIGKILL`);
    return pid;
  }

  killSkiffd(): Promise<number> {
    return this.kill9('skiffd');
  }

  killSupervisor(): Promise<number> {
    return this.kill9('skiff-supervisor');
  }

  /** Signal the agent (default SIGTERM) and wait until it exits; its exit code or signal. */
  async stopAgent(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<string> {
    const proc = this.proc;
    this.closeClients();
    if (!proc || proc.exitCode !== null || proc.signalCode !== null)
      return String(proc?.exitCode ?? proc?.signalCode ?? 'not started');
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill(signal);
    await Promise.race([gone, sleep(timeoutMs)]);
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await gone;
      throw new Error(`skiff-agent did not exit within ${timeoutMs} ms of ${signal}: ${this.log()}`);
    }
    return String(proc.exitCode ?? proc.signalCode);
  }

  /** The real docker CLI against the agent's docker.sock. */
  docker(args: string[], opts: DockerOpts = {}): Promise<RunResult> {
    return this.ns.docker(args, opts);
  }

  /** The docker CLI, failing with its output (and the logs) unless it exits 0; its stdout. */
  async dockerOk(args: string[], opts: DockerOpts = {}): Promise<string> {
    const r = await this.docker(args, { timeoutMs: 120_000, ...opts });
    if (r.code !== 0)
      throw new Error(`docker ${args.join(' ')}: exit ${r.code}\n${r.stderr}\n${r.stdout}\n${this.log()}`);
    return r.stdout;
  }

  /** Run a program in the namespaces (the "host" side of published ports). */
  inNetns(cmd: string, args: string[], opts: DockerOpts = {}): Promise<RunResult> {
    return this.ns.inNetns(cmd, args, opts);
  }

  /** The last lines of the agent's log and of every other engine log under the temp dir. */
  log(lines = 40): string {
    const tail = (p: string) => readFileSync(p, 'utf8').split('\n').slice(-lines).join('\n');
    const parts = existsSync(this.logFile) ? [`--- ${this.logFile}\n${tail(this.logFile)}`] : [];
    for (const f of findLogs(this.dir, 4)) if (f !== this.logFile) parts.push(`--- ${f}\n${tail(f)}`);
    return parts.join('\n');
  }

  private notePaths(info: Msg): void {
    for (const p of (info.processes as Msg[]) ?? []) {
      if (p.name !== 'skiff-supervisor' || !(Number(p.pid) > 0)) continue;
      const args = cmdline(Number(p.pid));
      const arg = (flag: string) => (args.indexOf(flag) >= 0 ? args[args.indexOf(flag) + 1] : undefined);
      const rr = arg('--runtime-root');
      const st = arg('--state');
      if (rr) this.runtimeRoots.add(rr);
      if (st) this.shimDirs.add(st);
    }
  }

  /** Tear everything down: the agent, skiffd, the supervisor, shims and containers, mounts, the temp dir. */
  async stop(): Promise<void> {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      // Note the supervisor's paths first, then make sure nothing restarts what we kill.
      await this.info().catch(() => undefined);
      await this.stopAgent('SIGKILL').catch(() => undefined);
    }
    this.closeClients();
    for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
      const args = cmdline(Number(p));
      if (
        args.some((a) => a.endsWith(SKIFFD_BIN) || a.endsWith(SUPERVISOR_BIN)) &&
        args.some((a) => a.includes(this.dir))
      )
        killQuiet(Number(p));
    }
    for (const dir of this.shimDirs)
      if (existsSync(dir))
        for (const id of readdirSync(dir)) {
          const pidFile = join(dir, id, 'shim.pid');
          if (existsSync(pidFile)) killQuiet(Number.parseInt(readFileSync(pidFile, 'utf8').trim(), 10));
        }
    for (const root of this.runtimeRoots)
      if (existsSync(root))
        for (const id of readdirSync(root).filter((x) => !x.startsWith('.')))
          spawnSync(RUNTIME, ['--root', root, 'delete', '--force', id]);
    await this.ns.stop();
  }
}

function killQuiet(pid: number): void {
  if (!(pid > 0)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/** The engine's log files (skiffd, supervisor) under `dir`; container logs and rootfs trees are left out. */
function findLogs(dir: string, depth: number): string[] {
  if (depth < 0) return [];
  const out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  for (const n of names) {
    const p = join(dir, n);
    let st;
    try {
      st = statSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory() && !['containers', 'images', 'volumes', 'rootfs', 'overlay', 'snapshots'].includes(n))
      out.push(...findLogs(p, depth - 1));
    else if (st.isFile() && n.endsWith('.log') && !n.includes('json')) out.push(p);
  }
  return out;
}

/** A fresh agent (and the engine it keeps) in its own namespaces and temp dir. */
export async function startAgent(): Promise<AgentHarness> {
  const h = new AgentHarness(mkdtempSync(join(tmpdir(), 'skiff-agent-')));
  try {
    await h.ns.startNamespaces();
    await h.startAgent();
  } catch (err) {
    await h.stop().catch(() => undefined);
    throw err;
  }
  return h;
}

/** The text of a Logs stream's entries (for one stream kind, or all). */
export function logText(items: Msg[], stream?: 'STDOUT' | 'STDERR'): string {
  return Buffer.concat(items.filter((m) => !stream || m.stream === stream).map((m) => Buffer.from(m.data))).toString();
}

/** A google.protobuf.Timestamp (longs as strings) as a Date. */
export function toDate(ts: Msg | null | undefined): Date | undefined {
  if (!ts) return undefined;
  return new Date(Number(ts.seconds) * 1000 + Math.floor(Number(ts.nanos ?? 0) / 1e6));
}

export { call, failure, RpcError, type Msg } from './supervisor-client.js';
export { busyboxArchive } from './daemon-harness.js';
