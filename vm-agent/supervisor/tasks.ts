// The task manager: one shim per container task. It starts shims, forwards operations to them, watches them
// (subscribe + wait) for exits, OOM kills and their own death, records every exit in the container store before
// telling anyone, and re-attaches to live shims after a restart (recover()).
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError, failedPrecondition, internal, invalidArgument, notFound, alreadyExists } from '../common/errors.js';
import type { KeyedLock } from '../common/keyed-lock.js';
import { errorMessage, logger } from '../common/log.js';
import { nowRfc3339 } from '../common/timestamp.js';
import type { EventBus, EventPayload } from './events.js';
import { OutputHub } from './io-hub.js';
import { cgroupVersion, RuntimeError, type Runtime } from './runtime.js';
import type { AttachStream, ExitStatus, Shim, ShimEvent, ShimLauncher } from './shim-types.js';
import type { ContainerRecord, ContainerStore, ExecRecord, ExitRecord, TaskRecord } from './store.js';
import { checkExecId, parseProcessSpec, parseResources } from './validate.js';

const log = logger('tasks');

export const SHIM_DIED = 'shim died';
export const EXITED_WHILE_DOWN = 'exited while the supervisor was down';
const SHIM_DIED_EXIT_CODE = 255;

class Deferred<T> {
  resolve!: (v: T) => void;
  reject!: (e: Error) => void;
  settled = false;
  readonly promise = new Promise<T>((res, rej) => {
    this.resolve = (v) => {
      this.settled = true;
      res(v);
    };
    this.reject = (e) => {
      this.settled = true;
      rej(e);
    };
  });
  constructor() {
    this.promise.catch(() => undefined);
  }
}

interface ExecProc {
  id: string;
  process: Record<string, unknown>;
  tty: boolean;
  stdin: boolean;
  status: 'created' | 'running' | 'stopped';
  pid: number;
  exit?: ExitRecord;
  exited: Deferred<ExitRecord>;
  hub: Deferred<OutputHub>;
}

interface LiveTask {
  id: string;
  shim?: Shim;
  unsubscribe?: () => void;
  execs: Map<string, ExecProc>;
  exited: Deferred<ExitRecord>;
  paused: boolean;
}

export type Status = 'CREATED' | 'RUNNING' | 'STOPPED' | 'PAUSED' | 'UNKNOWN';

export interface TaskState {
  id: string;
  execId: string;
  pid: number;
  status: Status;
  terminal: boolean;
  stdin: boolean;
  exit?: ExitRecord;
  bundle: string;
}

export interface TaskStats {
  cgroupVersion: number;
  stats: Record<string, unknown>;
  cpuUsageNs: number;
  memoryUsageBytes: number;
  memoryLimitBytes: number;
  pidsCurrent: number;
}

export interface TaskManagerOptions {
  store: ContainerStore;
  bus: EventBus;
  runtime: Runtime;
  launcher: ShimLauncher;
  lock: KeyedLock;
  /** Shim directories live in <stateDir>/<id>/. */
  stateDir: string;
  /** How often live shims are checked for having died (ms); 0: never (exits still arrive through wait). */
  livenessInterval?: number;
}

function toExitRecord(e: ExitStatus, reason?: string): ExitRecord {
  return {
    pid: e.pid,
    exitCode: e.exitCode,
    signal: e.signal,
    exitedAt: e.exitedAt,
    oomKilled: e.oomKilled,
    ...(reason ? { reason } : {}),
  };
}

function num(v: unknown): number {
  return typeof v === 'number' ? v : 0;
}

function dig(o: unknown, ...path: string[]): unknown {
  let cur = o;
  for (const p of path) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

export class TaskManager {
  private readonly live = new Map<string, LiveTask>();
  private readonly store: ContainerStore;
  private readonly bus: EventBus;
  private readonly runtime: Runtime;
  private readonly launcher: ShimLauncher;
  private readonly lock: KeyedLock;
  private readonly stateDir: string;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(opts: TaskManagerOptions) {
    this.store = opts.store;
    this.bus = opts.bus;
    this.runtime = opts.runtime;
    this.launcher = opts.launcher;
    this.lock = opts.lock;
    this.stateDir = opts.stateDir;
    if (opts.livenessInterval) {
      this.timer = setInterval(() => this.checkLiveness(), opts.livenessInterval);
      this.timer.unref();
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const t of this.live.values()) {
      t.unsubscribe?.();
      t.shim?.close();
    }
    this.live.clear();
  }

  shimDir(id: string): string {
    return join(this.stateDir, id);
  }

  // ----- lookups ------------------------------------------------------------------------------------------------

  private container(id: string): ContainerRecord {
    const rec = this.store.get(id);
    if (!rec) throw notFound(`container ${JSON.stringify(id)} not found: create it first (Containers.Create)`);
    return rec;
  }

  private task(id: string): { rec: ContainerRecord; task: TaskRecord; live: LiveTask } {
    const rec = this.container(id);
    const task = rec.task;
    if (!task || task.creating)
      throw notFound(`container ${JSON.stringify(id)} has no task: create one first (Tasks.Create)`);
    return { rec, task, live: this.liveTask(id) };
  }

  private liveTask(id: string): LiveTask {
    let t = this.live.get(id);
    if (!t) {
      t = { id, execs: new Map(), exited: new Deferred(), paused: false };
      this.live.set(id, t);
    }
    return t;
  }

  private exec(live: LiveTask, execId: string): ExecProc {
    const p = live.execs.get(execId);
    if (!p) throw notFound(`exec ${JSON.stringify(execId)} not found in container ${JSON.stringify(live.id)}`);
    return p;
  }

  private shimOf(live: LiveTask, task: TaskRecord): Shim {
    if (task.exit) throw failedPrecondition(`task ${JSON.stringify(live.id)} has exited: delete it (Tasks.Delete)`);
    if (!live.shim) throw failedPrecondition(`task ${JSON.stringify(live.id)} has no shim (it died)`);
    return live.shim;
  }

  private publish(id: string, payload: EventPayload): void {
    const rec = this.store.get(id);
    this.bus.publish(this.bus.makeEvent(id, rec?.labels ?? {}, payload));
  }

  // ----- create / start -----------------------------------------------------------------------------------------

  async create(id: string, opts: { stdin: boolean }): Promise<{ pid: number }> {
    return this.lock.run(id, async () => {
      const rec = this.container(id);
      if (rec.task)
        throw alreadyExists(`container ${JSON.stringify(id)} already has a task: delete it first (Tasks.Delete)`);
      const spec = JSON.parse(rec.spec) as { process?: { terminal?: boolean } };
      const tty = spec.process?.terminal === true;
      const dir = this.shimDir(id);
      if (Buffer.byteLength(join(dir, 'control.sock')) > 107)
        throw failedPrecondition(
          `the shim socket path ${join(dir, 'control.sock')} is longer than 107 bytes: use a shorter --state directory or container id`,
        );
      // Leftovers of a create that never finished (the record is the commit point): remove them first.
      await this.cleanupLeftovers(id, dir);
      const task: TaskRecord = {
        creating: true,
        pid: 0,
        tty,
        stdin: opts.stdin,
        shimDir: dir,
        createdAt: nowRfc3339(),
      };
      rec.task = task;
      this.store.put(rec);
      let shim: Shim | undefined;
      try {
        shim = await this.launcher.start({
          id,
          bundle: rec.bundle,
          dir,
          runtime: this.runtime.binary,
          runtimeRoot: this.runtime.root,
          ...(rec.log.path
            ? { logPath: rec.log.path, logMaxSize: rec.log.maxSize, logMaxFile: rec.log.maxFile || 1 }
            : {}),
          tty,
          stdin: opts.stdin,
        });
        const st = await shim.state();
        task.pid = st.pid;
      } catch (err) {
        shim?.close();
        await this.cleanupLeftovers(id, dir);
        delete rec.task;
        this.store.put(rec);
        this.live.delete(id);
        // The client says "creating container <id>: …"; the task message says that already.
        let msg = errorMessage(err).replace(/^skiff-shim: /, '');
        const prefix = `creating container ${id}: `;
        while (msg.startsWith(prefix)) msg = msg.slice(prefix.length);
        throw failedPrecondition(`cannot create the task of container ${JSON.stringify(id)}: ${msg}`);
      }
      delete task.creating;
      this.store.put(rec);
      const live = this.liveTask(id);
      live.shim = shim;
      this.monitor(live, shim);
      this.publish(id, { kind: 'task_create', pid: task.pid, bundle: rec.bundle, terminal: tty, stdin: opts.stdin });
      return { pid: task.pid };
    });
  }

  /** Remove a shim directory and runtime state that no task record owns. */
  async cleanupLeftovers(id: string, dir: string): Promise<void> {
    if (existsSync(dir)) {
      const pid = readPid(join(dir, 'shim.pid'));
      if (pid && alive(pid)) {
        try {
          const shim = await this.launcher.connect(id, dir);
          await shim.kill(9, { all: true }).catch(() => undefined);
          await shim.shutdown().catch(() => undefined);
          shim.close();
        } catch {
          /* it will go when its container does */
        }
      }
    }
    if (this.runtime.hasState(id)) await this.runtime.forceDelete(id);
    rmSync(dir, { recursive: true, force: true });
  }

  async start(id: string, execId: string): Promise<{ pid: number }> {
    return this.lock.run(id, async () => {
      const { rec, task, live } = this.task(id);
      const shim = this.shimOf(live, task);
      if (execId) return this.startExec(live, shim, execId);
      if (task.started) throw failedPrecondition(`task ${JSON.stringify(id)} is already started`);
      const { pid } = await this.shimCall(id, () => shim.start());
      task.started = true;
      if (!task.exit) this.store.put(rec);
      this.publish(id, { kind: 'task_start', pid });
      return { pid };
    });
  }

  private async startExec(live: LiveTask, shim: Shim, execId: string): Promise<{ pid: number }> {
    const p = this.exec(live, execId);
    if (p.status !== 'created') throw failedPrecondition(`exec ${JSON.stringify(execId)} is already started`);
    const { pid } = await this.shimCall(live.id, () => shim.exec(execId, p.process, { tty: p.tty, stdin: p.stdin }));
    p.pid = pid;
    p.status = 'running';
    const rec = this.store.get(live.id);
    if (rec?.task && !rec.task.exit) {
      rec.task.execs = { ...rec.task.execs, [execId]: { pid, tty: p.tty, stdin: p.stdin } };
      this.store.put(rec);
    }
    this.watchExec(live, shim, p);
    this.publish(live.id, { kind: 'task_exec_started', execId, pid });
    return { pid };
  }

  private watchExec(live: LiveTask, shim: Shim, p: ExecProc): void {
    shim.attach(p.id).then(
      (stream) => p.hub.resolve(new OutputHub(stream)),
      (err: unknown) => {
        log.warn(`attach to exec ${p.id} of ${live.id}: ${errorMessage(err)}`);
        p.hub.reject(new Error(errorMessage(err)));
      },
    );
    shim.wait(p.id).then(
      (e) => this.recordExecExit(live, p, toExitRecord(e)),
      () => undefined, // the shim died: checkShim reports it
    );
  }

  // ----- exec ---------------------------------------------------------------------------------------------------

  async addExec(id: string, execIdIn: string, specText: string, opts: { tty: boolean; stdin: boolean }): Promise<void> {
    const execId = checkExecId(execIdIn);
    const process = parseProcessSpec(specText);
    return this.lock.run(id, async () => {
      const { task, live } = this.task(id);
      this.shimOf(live, task);
      if (!task.started) throw failedPrecondition(`task ${JSON.stringify(id)} is not started: start it first`);
      if (live.execs.has(execId))
        throw alreadyExists(`exec ${JSON.stringify(execId)} already exists in container ${JSON.stringify(id)}`);
      process.terminal = opts.tty;
      live.execs.set(execId, {
        id: execId,
        process,
        tty: opts.tty,
        stdin: opts.stdin,
        status: 'created',
        pid: 0,
        exited: new Deferred(),
        hub: new Deferred(),
      });
      this.publish(id, { kind: 'task_exec_added', execId });
    });
  }

  // ----- watching shims -----------------------------------------------------------------------------------------

  private monitor(live: LiveTask, shim: Shim): void {
    live.unsubscribe?.();
    live.unsubscribe = shim.subscribe((e) => this.onShimEvent(live, e));
    shim.wait().then(
      (e) => this.recordInitExit(live.id, toExitRecord(e)),
      (err: unknown) => {
        if (live.shim !== shim) return;
        log.debug(`wait on the shim of ${live.id} failed: ${errorMessage(err)}`);
        void this.checkShim(live.id);
      },
    );
  }

  private onShimEvent(live: LiveTask, e: ShimEvent): void {
    switch (e.event) {
      case 'oom':
        this.publish(live.id, { kind: 'task_oom' });
        break;
      case 'exit':
        if (e.exec) {
          const p = live.execs.get(e.exec);
          if (p) this.recordExecExit(live, p, toExitRecord(e));
        } else this.recordInitExit(live.id, toExitRecord(e));
        break;
      case 'exec-started':
        break; // published by startExec
    }
  }

  /** Record the init's exit durably (once), then report it (exactly once: see EventBus.keep). */
  recordInitExit(id: string, exit: ExitRecord): void {
    const rec = this.store.get(id);
    const task = rec?.task;
    if (this.closed || !rec || !task || task.exit || task.creating) return;
    task.exit = exit;
    const event = this.bus.makeEvent(id, rec.labels, {
      kind: 'task_exit',
      execId: '',
      pid: exit.pid || task.pid,
      exitStatus: exit.exitCode,
      exitedAt: exit.exitedAt,
      signal: exit.signal,
      oomKilled: exit.oomKilled,
      reason: exit.reason ?? '',
    });
    const now = this.bus.hasSubscriberFor(event);
    task.exitReported = now;
    this.store.put(rec);
    const live = this.liveTask(id);
    live.paused = false;
    live.exited.resolve(exit);
    if (now) this.bus.publish(event);
    else this.bus.keep(event, () => this.markReported(id, exit));
    log.debug(`task ${id} exited with ${exit.exitCode}${exit.reason ? ` (${exit.reason})` : ''}`);
  }

  private markReported(id: string, exit: ExitRecord): void {
    const rec = this.store.get(id);
    if (rec?.task?.exit?.exitedAt !== exit.exitedAt || rec.task.exitReported) return;
    rec.task.exitReported = true;
    this.store.put(rec);
  }

  /** Record an exec's exit (in the store when it was started by us), then report it exactly once. */
  private recordExecExit(live: LiveTask, p: ExecProc, exit: ExitRecord): void {
    if (p.exit || this.closed) return;
    p.exit = exit;
    p.status = 'stopped';
    const rec = this.store.get(live.id);
    const event = this.bus.makeEvent(live.id, rec?.labels ?? {}, {
      kind: 'task_exit',
      execId: p.id,
      pid: exit.pid || p.pid,
      exitStatus: exit.exitCode,
      exitedAt: exit.exitedAt,
      signal: exit.signal,
      oomKilled: exit.oomKilled,
      reason: exit.reason ?? '',
    });
    const now = this.bus.hasSubscriberFor(event);
    const er = rec?.task?.execs?.[p.id];
    if (rec && er) {
      er.exit = exit;
      er.exitReported = now;
      this.store.put(rec);
    }
    p.exited.resolve(exit);
    if (now) this.bus.publish(event);
    else this.bus.keep(event, () => this.markExecReported(live.id, p.id, exit));
  }

  private markExecReported(id: string, execId: string, exit: ExitRecord): void {
    const rec = this.store.get(id);
    const er = rec?.task?.execs?.[execId];
    if (!rec || !er || er.exit?.exitedAt !== exit.exitedAt || er.exitReported) return;
    er.exitReported = true;
    this.store.put(rec);
  }

  /** The shim stopped answering: reconnect if it is alive, else report its container exited and clean up. */
  async checkShim(id: string): Promise<void> {
    if (this.closed) return;
    const rec = this.store.get(id);
    const task = rec?.task;
    const live = this.live.get(id);
    if (!rec || !task || task.creating || !live) return;
    const pid = readPid(join(task.shimDir, 'shim.pid'));
    if (pid && alive(pid)) {
      if (!live.shim) return;
      try {
        const shim = await this.launcher.connect(id, task.shimDir);
        live.shim.close();
        live.shim = shim;
        if (!task.exit) this.monitor(live, shim);
      } catch (err) {
        log.warn(`the shim of ${id} (pid ${pid}) is alive but does not answer: ${errorMessage(err)}`);
      }
      return;
    }
    await this.lock.run(id, () => this.shimDied(id, live, task));
  }

  private async shimDied(id: string, live: LiveTask, task: TaskRecord): Promise<void> {
    if (!live.shim && task.exit) return;
    live.unsubscribe?.();
    live.unsubscribe = undefined;
    live.shim?.close();
    live.shim = undefined;
    const exit = readExitFile(join(task.shimDir, 'exit.json')) ?? {
      pid: task.pid,
      exitCode: SHIM_DIED_EXIT_CODE,
      signal: 0,
      exitedAt: nowRfc3339(),
      oomKilled: false,
      reason: SHIM_DIED,
    };
    log.warn(
      `the shim of container ${id} died; ${exit.reason === SHIM_DIED ? 'reporting its task exited (255)' : `its task had exited with ${exit.exitCode}`}`,
    );
    try {
      await this.runtime.forceDelete(id);
    } catch (err) {
      log.error(`runtime delete --force ${id}: ${errorMessage(err)}`);
    }
    rmSync(task.shimDir, { recursive: true, force: true });
    this.recordInitExit(id, exit);
    for (const p of live.execs.values())
      if (p.status !== 'stopped')
        this.recordExecExit(live, p, { ...exit, pid: p.pid, exitCode: SHIM_DIED_EXIT_CODE, reason: SHIM_DIED });
  }

  private checkLiveness(): void {
    for (const live of this.live.values()) {
      const task = this.store.get(live.id)?.task;
      if (!task || task.creating || !live.shim) continue;
      const pid = readPid(join(task.shimDir, 'shim.pid'));
      if (!pid || !alive(pid)) void this.checkShim(live.id);
    }
  }

  /** Call the shim; its errors become INTERNAL with the container named, unless already an ApiError. */
  private async shimCall<T>(id: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ApiError) throw err;
      throw internal(`the shim of container ${JSON.stringify(id)}: ${errorMessage(err).replace(/^skiff-shim: /, '')}`);
    }
  }

  // ----- state, wait, kill, ... ---------------------------------------------------------------------------------

  async state(id: string, execId: string): Promise<TaskState> {
    const { rec, task, live } = this.task(id);
    if (execId) {
      const p = this.exec(live, execId);
      const status: Status = p.status === 'created' ? 'CREATED' : p.status === 'running' ? 'RUNNING' : 'STOPPED';
      return {
        id,
        execId,
        pid: p.pid,
        status,
        terminal: p.tty,
        stdin: p.stdin,
        ...(p.exit ? { exit: p.exit } : {}),
        bundle: rec.bundle,
      };
    }
    let status: Status;
    if (task.exit) status = 'STOPPED';
    else if (live.paused) status = 'PAUSED';
    else if (!live.shim) status = 'UNKNOWN';
    else {
      const st = await this.shimCall(id, () => (live.shim as Shim).state());
      status = st.status === 'created' ? 'CREATED' : st.status === 'running' ? 'RUNNING' : 'STOPPED';
    }
    return {
      id,
      execId: '',
      pid: task.pid,
      status,
      terminal: task.tty,
      stdin: task.stdin,
      ...(task.exit ? { exit: task.exit } : {}),
      bundle: rec.bundle,
    };
  }

  async wait(id: string, execId: string): Promise<ExitRecord> {
    const { task, live } = this.task(id);
    if (execId) {
      const p = this.exec(live, execId);
      return p.exit ?? p.exited.promise;
    }
    if (task.exit) return task.exit;
    return live.exited.promise;
  }

  async kill(id: string, execId: string, signal: number, all: boolean): Promise<void> {
    const { task, live } = this.task(id);
    if (!Number.isInteger(signal) || signal < 1 || signal > 64)
      throw invalidArgument(`signal ${signal} is invalid: give a number from 1 to 64 (9 is SIGKILL, 15 SIGTERM)`);
    if (execId) {
      const p = this.exec(live, execId);
      if (p.status !== 'running') throw failedPrecondition(`exec ${JSON.stringify(execId)} is not running`);
      const shim = this.shimOf(live, task);
      return this.shimCall(id, () => shim.kill(signal, { exec: execId }));
    }
    if (task.exit) throw failedPrecondition(`task ${JSON.stringify(id)} has already exited`);
    const shim = this.shimOf(live, task);
    await this.shimCall(id, () => shim.kill(signal, { all }));
  }

  async pause(id: string): Promise<void> {
    return this.lock.run(id, async () => {
      const { task, live } = this.task(id);
      this.shimOf(live, task);
      if (!task.started) throw failedPrecondition(`task ${JSON.stringify(id)} is not started`);
      if (live.paused) throw failedPrecondition(`task ${JSON.stringify(id)} is already paused`);
      await this.runtimeCall(id, 'pause', () => this.runtime.pause(id));
      live.paused = true;
      this.publish(id, { kind: 'task_paused' });
    });
  }

  async resume(id: string): Promise<void> {
    return this.lock.run(id, async () => {
      const { task, live } = this.task(id);
      this.shimOf(live, task);
      if (!live.paused) throw failedPrecondition(`task ${JSON.stringify(id)} is not paused`);
      await this.runtimeCall(id, 'resume', () => this.runtime.resume(id));
      live.paused = false;
      this.publish(id, { kind: 'task_resumed' });
    });
  }

  private async runtimeCall<T>(id: string, what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof RuntimeError) throw failedPrecondition(`${what} ${JSON.stringify(id)}: ${err.message}`);
      throw internal(`${what} ${JSON.stringify(id)}: ${errorMessage(err)}`);
    }
  }

  async resize(id: string, execId: string, width: number, height: number): Promise<void> {
    const { task, live } = this.task(id);
    const tty = execId ? this.exec(live, execId).tty : task.tty;
    if (!tty)
      throw failedPrecondition(
        `${execId ? `exec ${JSON.stringify(execId)}` : `task ${JSON.stringify(id)}`} has no terminal to resize`,
      );
    if (width === 0 || height === 0) throw invalidArgument('width and height must be positive');
    const shim = this.shimOf(live, task);
    await this.shimCall(id, () => shim.resize(width, height, execId || undefined));
  }

  async closeIO(id: string, execId: string, stdin: boolean): Promise<void> {
    const { task, live } = this.task(id);
    if (execId) this.exec(live, execId);
    if (!stdin) return;
    const shim = this.shimOf(live, task);
    await this.shimCall(id, () => shim.closeStdin(execId || undefined));
  }

  async pids(id: string): Promise<{ pid: number; execId: string }[]> {
    const { task, live } = this.task(id);
    if (task.exit) return [];
    const pids = await this.runtimeCall(id, 'ps', () => this.runtime.pids(id));
    const byPid = new Map<number, string>();
    for (const p of live.execs.values()) if (p.status === 'running') byPid.set(p.pid, p.id);
    return pids.map((pid) => ({ pid, execId: byPid.get(pid) ?? '' }));
  }

  async stats(id: string): Promise<TaskStats> {
    const { task } = this.task(id);
    if (task.exit) throw failedPrecondition(`task ${JSON.stringify(id)} has exited: no cgroup to read`);
    const stats = await this.runtimeCall(id, 'stats', () => this.runtime.stats(id));
    return {
      cgroupVersion: cgroupVersion(),
      stats,
      cpuUsageNs: num(dig(stats, 'cpu', 'usage', 'total')),
      memoryUsageBytes: num(dig(stats, 'memory', 'usage', 'usage')),
      memoryLimitBytes: num(dig(stats, 'memory', 'usage', 'limit')),
      pidsCurrent: num(dig(stats, 'pids', 'current')),
    };
  }

  async update(id: string, resourcesText: string): Promise<void> {
    parseResources(resourcesText);
    const { task } = this.task(id);
    if (task.exit) throw failedPrecondition(`task ${JSON.stringify(id)} has exited: nothing to update`);
    await this.runtimeCall(id, 'update', () => this.runtime.update(id, resourcesText));
  }

  async attach(id: string, execId: string): Promise<AttachStream> {
    const { task, live } = this.task(id);
    if (execId) {
      const p = this.exec(live, execId);
      try {
        return (await p.hub.promise).client();
      } catch (err) {
        throw failedPrecondition(`cannot attach to exec ${JSON.stringify(execId)}: ${errorMessage(err)}`);
      }
    }
    const shim = this.shimOf(live, task);
    return this.shimCall(id, () => shim.attach());
  }

  // ----- delete -------------------------------------------------------------------------------------------------

  async delete(id: string, execId: string): Promise<{ pid: number; exit: ExitRecord }> {
    if (execId) return this.deleteExec(id, execId);
    let { task, live } = this.task(id);
    if (!task.exit && task.started) {
      const status = (await this.state(id, '')).status;
      if (status !== 'STOPPED')
        throw failedPrecondition(
          `task ${JSON.stringify(id)} is ${status.toLowerCase()}: kill it (Tasks.Kill) and wait for its exit before deleting it`,
        );
    }
    if (!task.exit && live.shim) {
      // Created and never started: kill the waiting init, as containerd does. Stopped: the shim's wait answers at
      // once (its exit may not have reached us yet).
      const shim = live.shim;
      if (!task.started) await shim.kill(9, { all: true }).catch(() => undefined);
      const exit = await Promise.race([
        shim.wait().catch(() => undefined),
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000).unref()),
      ]);
      if (exit) this.recordInitExit(id, toExitRecord(exit));
    }
    return this.lock.run(id, async () => {
      ({ task, live } = this.task(id));
      const exit: ExitRecord = task.exit ?? {
        pid: task.pid,
        exitCode: SHIM_DIED_EXIT_CODE,
        signal: 0,
        exitedAt: nowRfc3339(),
        oomKilled: false,
        reason: 'deleted before it exited',
      };
      live.unsubscribe?.();
      for (const p of live.execs.values())
        p.hub.promise.then(
          (h) => h.detach(),
          () => undefined,
        );
      if (live.shim) {
        const shim = live.shim;
        live.shim = undefined;
        try {
          await shim.delete();
        } catch (err) {
          log.warn(`the shim of ${id} refused to delete (${errorMessage(err)}); forcing`);
        }
        shim.close();
      }
      // The shim's delete ran the runtime's; force it only when state is left (a dead shim, a refused delete).
      if (this.runtime.hasState(id))
        await this.runtime.forceDelete(id).catch((err: unknown) => {
          throw internal(`runtime delete --force ${JSON.stringify(id)}: ${errorMessage(err)}`);
        });
      rmSync(task.shimDir, { recursive: true, force: true });
      const rec = this.container(id);
      delete rec.task;
      this.store.put(rec);
      this.live.delete(id);
      if (!live.exited.settled) live.exited.resolve(exit);
      this.publish(id, { kind: 'task_delete', pid: task.pid, exitStatus: exit.exitCode, exitedAt: exit.exitedAt });
      return { pid: task.pid, exit };
    });
  }

  private async deleteExec(id: string, execIdIn: string): Promise<{ pid: number; exit: ExitRecord }> {
    const execId = checkExecId(execIdIn);
    return this.lock.run(id, async () => {
      const { task, live } = this.task(id);
      const p = this.exec(live, execId);
      if (p.status === 'running')
        throw failedPrecondition(`exec ${JSON.stringify(execId)} is running: kill it and wait for its exit first`);
      if (p.status === 'stopped' && live.shim && !task.exit)
        await live.shim
          .delete(execId)
          .catch((err: unknown) => log.debug(`delete exec ${execId}: ${errorMessage(err)}`));
      p.hub.promise.then(
        (h) => h.detach(),
        () => undefined,
      );
      if (!p.hub.settled) p.hub.reject(new Error('the exec was deleted'));
      live.execs.delete(execId);
      const rec = this.store.get(id);
      if (rec?.task?.execs?.[execId]) {
        delete rec.task.execs[execId];
        this.store.put(rec);
      }
      const exit = p.exit ?? { pid: 0, exitCode: 0, signal: 0, exitedAt: '', oomKilled: false };
      return { pid: p.pid, exit };
    });
  }

  /** Whether the container has a task (for Containers.Delete). */
  hasTask(id: string): boolean {
    return this.store.get(id)?.task !== undefined;
  }

  // ----- recovery -----------------------------------------------------------------------------------------------

  /** After a restart: re-attach to the task's shim, or report what happened while nobody watched. */
  async recover(rec: ContainerRecord): Promise<void> {
    const task = rec.task;
    if (!task) return;
    const id = rec.id;
    if (task.creating) {
      log.info(`container ${id}: a task create was interrupted; removing what it left`);
      await this.cleanupLeftovers(id, task.shimDir);
      delete rec.task;
      this.store.put(rec);
      return;
    }
    const live = this.liveTask(id);
    for (const [execId, er] of Object.entries(task.execs ?? {})) this.restoreExec(rec, live, execId, er);
    if (task.exit) {
      if (existsSync(task.shimDir)) {
        try {
          live.shim = await this.launcher.connect(id, task.shimDir);
        } catch {
          /* gone: Delete cleans up */
        }
      }
      live.exited.resolve(task.exit);
      if (!task.exitReported) this.reportRecovered(rec, task.exit);
      // Execs recorded running died with the init: their exits are in the shim if it is still there.
      for (const p of live.execs.values()) {
        if (p.status !== 'running') continue;
        const e = live.shim ? await withTimeout(live.shim.wait(p.id), 2000).catch(() => undefined) : undefined;
        this.recordExecExit(
          live,
          p,
          e
            ? toExitRecord(e, EXITED_WHILE_DOWN)
            : { ...task.exit, pid: p.pid, exitCode: SHIM_DIED_EXIT_CODE, signal: 0, reason: SHIM_DIED },
        );
      }
      return;
    }
    let shim: Shim;
    try {
      shim = await this.launcher.connect(id, task.shimDir);
    } catch (err) {
      log.warn(`container ${id}: its shim does not answer (${errorMessage(err)})`);
      await this.shimDied(id, live, task);
      return;
    }
    live.shim = shim;
    let st;
    try {
      st = await shim.state();
    } catch (err) {
      log.warn(`container ${id}: its shim does not answer state (${errorMessage(err)})`);
      await this.shimDied(id, live, task);
      return;
    }
    for (const e of st.execs) {
      let p = live.execs.get(e.exec);
      if (!p) {
        if (e.status !== 'running') continue; // not ours to report: we never recorded its start
        p = this.restoreExec(rec, live, e.exec, { pid: e.pid, tty: false, stdin: false });
      }
      if (p.status !== 'running') continue;
      if (e.status === 'running') this.watchExec(live, shim, p);
      else {
        const exit = await shim.wait(e.exec);
        this.recordExecExit(live, p, toExitRecord(exit, EXITED_WHILE_DOWN));
      }
    }
    // Execs we recorded that the shim no longer knows: their exits are lost with it.
    for (const p of live.execs.values())
      if (p.status === 'running' && !st.execs.some((e) => e.exec === p.id))
        this.recordExecExit(live, p, {
          pid: p.pid,
          exitCode: SHIM_DIED_EXIT_CODE,
          signal: 0,
          exitedAt: nowRfc3339(),
          oomKilled: false,
          reason: 'the shim no longer knows this exec',
        });
    if (st.status === 'stopped') {
      const e = await shim.wait();
      this.recordInitExit(id, toExitRecord(e, EXITED_WHILE_DOWN));
      live.unsubscribe = shim.subscribe((ev) => this.onShimEvent(live, ev));
      return;
    }
    if (st.status === 'running') task.started = true;
    live.paused = (await this.runtime.status(id)) === 'paused';
    this.store.put(rec);
    this.monitor(live, shim);
  }

  /** An exec process known from the store: running until told otherwise, or exited (reported or not). */
  private restoreExec(rec: ContainerRecord, live: LiveTask, execId: string, er: ExecRecord): ExecProc {
    const p: ExecProc = {
      id: execId,
      process: {},
      tty: er.tty,
      stdin: er.stdin,
      status: er.exit ? 'stopped' : 'running',
      pid: er.pid,
      exited: new Deferred(),
      hub: new Deferred(),
    };
    live.execs.set(execId, p);
    if (er.exit) {
      p.exit = er.exit;
      p.exited.resolve(er.exit);
      p.hub.reject(new Error('the exec has exited'));
      if (!er.exitReported) {
        const exit = er.exit;
        const event = this.bus.makeEvent(rec.id, rec.labels, {
          kind: 'task_exit',
          execId,
          pid: exit.pid || er.pid,
          exitStatus: exit.exitCode,
          exitedAt: exit.exitedAt,
          signal: exit.signal,
          oomKilled: exit.oomKilled,
          reason: exit.reason ?? '',
        });
        this.bus.keep(event, () => this.markExecReported(rec.id, execId, exit));
      }
    }
    return p;
  }

  private reportRecovered(rec: ContainerRecord, exit: ExitRecord): void {
    const event = this.bus.makeEvent(rec.id, rec.labels, {
      kind: 'task_exit',
      execId: '',
      pid: exit.pid,
      exitStatus: exit.exitCode,
      exitedAt: exit.exitedAt,
      signal: exit.signal,
      oomKilled: exit.oomKilled,
      reason: exit.reason ?? '',
    });
    this.bus.keep(event, () => this.markReported(rec.id, exit));
  }
}

/** The promise's value, or undefined after ms. */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([p, new Promise<undefined>((r) => setTimeout(() => r(undefined), ms).unref())]);
}

function readPid(path: string): number | undefined {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie is not alive: the shim is our child only in tests, but check anyway.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function readExitFile(path: string): ExitRecord | undefined {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as Partial<ExitStatus>;
    if (typeof v.exitCode !== 'number') return undefined;
    return {
      pid: v.pid ?? 0,
      exitCode: v.exitCode,
      signal: v.signal ?? 0,
      exitedAt: v.exitedAt ?? nowRfc3339(),
      oomKilled: v.oomKilled ?? false,
    };
  } catch {
    return undefined;
  }
}
