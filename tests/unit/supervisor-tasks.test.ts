// The task manager's bookkeeping (vm-agent/supervisor/tasks.ts) against an in-memory fake of the Shim interface:
// exits recorded before they are told, reported exactly once across restarts, shims that die, failed creates
// that leave nothing. The real shim and runtime are exercised by tests/integration/supervisor.test.ts.
import { status } from '@grpc/grpc-js';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiError } from '../../vm-agent/common/errors.js';
import { KeyedLock } from '../../vm-agent/common/keyed-lock.js';
import { EventBus, type SupervisorEvent } from '../../vm-agent/supervisor/events.js';
import { Runtime } from '../../vm-agent/supervisor/runtime.js';
import type {
  AttachStream,
  ExitStatus,
  Shim,
  ShimEvent,
  ShimLauncher,
  ShimStartOptions,
  ShimState,
} from '../../vm-agent/supervisor/shim-types.js';
import { ContainerStore } from '../../vm-agent/supervisor/store.js';
import { TaskManager } from '../../vm-agent/supervisor/tasks.js';

/** What a shim process would hold: survives "supervisor restarts" (new FakeShim clients on the same state). */
class ShimProcess {
  status: ShimState['status'] = 'created';
  exit: ExitStatus | undefined;
  alive = true;
  subs = new Set<(e: ShimEvent) => void>();
  waiters: ((e: ExitStatus) => void)[] = [];
  deadWaiters: ((e: Error) => void)[] = [];
  constructor(
    readonly id: string,
    readonly dir: string,
    readonly pid: number,
  ) {}
  finish(code: number): void {
    this.status = 'stopped';
    this.exit = {
      pid: this.pid,
      exitCode: code,
      signal: 0,
      exitedAt: '2024-01-01T00:00:00.000000001Z',
      oomKilled: false,
    };
    writeFileSync(join(this.dir, 'exit.json'), JSON.stringify(this.exit));
    for (const s of this.subs) s({ event: 'exit', ...this.exit });
    for (const w of this.waiters.splice(0)) w(this.exit);
  }
  die(): void {
    this.alive = false;
    writeFileSync(join(this.dir, 'shim.pid'), '999999999');
    for (const w of this.deadWaiters.splice(0)) w(new Error('connection closed'));
  }
}

class FakeShim implements Shim {
  closed = false;
  constructor(private readonly p: ShimProcess) {}
  get id(): string {
    return this.p.id;
  }
  get dir(): string {
    return this.p.dir;
  }
  private check(): void {
    if (!this.p.alive || this.closed) throw new Error('shim connection closed');
  }
  async version(): Promise<number> {
    return 1;
  }
  async state(): Promise<ShimState> {
    this.check();
    return {
      id: this.p.id,
      status: this.p.status,
      pid: this.p.pid,
      ...(this.p.exit ? { exitCode: this.p.exit.exitCode, exitedAt: this.p.exit.exitedAt } : {}),
      execs: [],
    };
  }
  async start(): Promise<{ pid: number }> {
    this.check();
    this.p.status = 'running';
    return { pid: this.p.pid };
  }
  async kill(signal: number): Promise<void> {
    this.check();
    if (signal === 9 || signal === 15) this.p.finish(128 + signal);
  }
  async resize(): Promise<void> {}
  async closeStdin(): Promise<void> {}
  async exec(): Promise<{ pid: number }> {
    throw new Error('not in the fake');
  }
  wait(): Promise<ExitStatus> {
    this.check();
    if (this.p.exit) return Promise.resolve(this.p.exit);
    // A closed client (its supervisor was "killed") never answers.
    return new Promise((res, rej) => {
      this.p.waiters.push((e) => (this.closed ? undefined : res(e)));
      this.p.deadWaiters.push((e) => (this.closed ? undefined : rej(e)));
    });
  }
  subscribe(cb: (e: ShimEvent) => void): () => void {
    this.p.subs.add(cb);
    return () => this.p.subs.delete(cb);
  }
  async delete(): Promise<{ exitCode: number; exitedAt: string }> {
    this.check();
    if (this.p.status !== 'stopped') throw new Error('the container is running');
    this.p.alive = false;
    rmSync(this.p.dir, { recursive: true, force: true });
    return { exitCode: this.p.exit!.exitCode, exitedAt: this.p.exit!.exitedAt };
  }
  async shutdown(): Promise<void> {}
  async attach(): Promise<AttachStream> {
    throw new Error('not in the fake');
  }
  close(): void {
    this.closed = true;
  }
}

class FakeLauncher implements ShimLauncher {
  procs = new Map<string, ShimProcess>();
  failCreate: string | undefined;
  async start(o: ShimStartOptions): Promise<Shim> {
    mkdirSync(o.dir, { recursive: true });
    if (this.failCreate) {
      rmSync(o.dir, { recursive: true, force: true });
      throw new Error(`skiff-shim: ${this.failCreate}`);
    }
    // The shim's pid file names a live process (ours), so the liveness check sees it alive.
    writeFileSync(join(o.dir, 'shim.pid'), String(process.pid));
    const p = new ShimProcess(o.id, o.dir, 1000 + this.procs.size);
    this.procs.set(o.id, p);
    return new FakeShim(p);
  }
  async connect(id: string): Promise<Shim> {
    const p = this.procs.get(id);
    if (!p || !p.alive) throw new Error(`connect ${id}: ECONNREFUSED`);
    return new FakeShim(p);
  }
}

let dir = '';
let launcher: FakeLauncher;
let managers: TaskManager[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'skiff-tasks-'));
  launcher = new FakeLauncher();
  managers = [];
});
afterEach(() => {
  for (const m of managers) m.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A supervisor's task side, as after a (re)start: a store loaded from disk, a new bus. */
function boot(): { tasks: TaskManager; store: ContainerStore; bus: EventBus } {
  const store = new ContainerStore(join(dir, 'root'));
  store.load();
  const bus = new EventBus();
  const tasks = new TaskManager({
    store,
    bus,
    runtime: new Runtime('/bin/true', join(dir, 'runtime')),
    launcher,
    lock: new KeyedLock(),
    stateDir: join(dir, 'shims'),
  });
  managers.push(tasks);
  return { tasks, store, bus };
}

function addContainer(store: ContainerStore, id: string): void {
  store.put({
    id,
    spec: JSON.stringify({ ociVersion: '1.0.2', process: { args: ['sh'] } }),
    rootfs: [],
    labels: { app: 'x' },
    log: { path: '', maxSize: 0, maxFile: 0 },
    createdAt: '2024-01-01T00:00:00.000000000Z',
    updatedAt: '2024-01-01T00:00:00.000000000Z',
    bundle: join(dir, 'bundles', id),
  });
}

const exitsOf = (events: SupervisorEvent[]) =>
  events.filter((e) => e.topic === '/tasks/exit').map((e) => [e.containerId, e.payload]);

async function codeOf(p: Promise<unknown>): Promise<number | undefined> {
  try {
    await p;
  } catch (err) {
    return err instanceof ApiError ? err.code : -1;
  }
  return undefined;
}

describe('task manager', () => {
  it('creates, starts, records the exit before telling subscribers, and deletes', async () => {
    const { tasks, store, bus } = boot();
    addContainer(store, 'c1');
    const events: SupervisorEvent[] = [];
    bus.subscribe([], (e) => {
      if (e.topic === '/tasks/exit') expect(store.get('c1')?.task?.exit?.exitCode).toBe(3);
      events.push(e);
    });
    expect(await tasks.create('c1', { stdin: false })).toEqual({ pid: 1000 });
    expect(await tasks.start('c1', '')).toEqual({ pid: 1000 });
    expect((await tasks.state('c1', '')).status).toBe('RUNNING');
    const waited = tasks.wait('c1', '');
    launcher.procs.get('c1')!.finish(3);
    expect((await waited).exitCode).toBe(3);
    expect(new ContainerStore(join(dir, 'root')).load()[0]!.task).toMatchObject({
      exit: { exitCode: 3 },
      exitReported: true,
    });
    await tasks.delete('c1', '');
    expect(store.get('c1')?.task).toBeUndefined();
    expect(events.map((e) => e.topic)).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
  });

  it('refuses what the state does not allow, with the right codes', async () => {
    const { tasks, store } = boot();
    expect(await codeOf(tasks.create('nope', { stdin: false }))).toBe(status.NOT_FOUND);
    addContainer(store, 'c1');
    expect(await codeOf(tasks.start('c1', ''))).toBe(status.NOT_FOUND);
    await tasks.create('c1', { stdin: false });
    expect(await codeOf(tasks.create('c1', { stdin: false }))).toBe(status.ALREADY_EXISTS);
    await tasks.start('c1', '');
    expect(await codeOf(tasks.start('c1', ''))).toBe(status.FAILED_PRECONDITION);
    expect(await codeOf(tasks.delete('c1', ''))).toBe(status.FAILED_PRECONDITION);
    expect(await codeOf(tasks.kill('c1', '', 0, false))).toBe(status.INVALID_ARGUMENT);
    expect(await codeOf(tasks.resize('c1', '', 80, 24))).toBe(status.FAILED_PRECONDITION);
    expect(await codeOf(tasks.wait('c1', 'no-such-exec'))).toBe(status.NOT_FOUND);
    await tasks.kill('c1', '', 9, false);
    expect(await codeOf(tasks.kill('c1', '', 9, false))).toBe(status.FAILED_PRECONDITION);
    expect((await tasks.delete('c1', '')).exit.exitCode).toBe(137);
  });

  it('a failed create leaves no task and no shim directory', async () => {
    const { tasks, store } = boot();
    addContainer(store, 'c1');
    launcher.failCreate = 'exec: "/nope": no such file or directory';
    const err = await tasks.create('c1', { stdin: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe(status.FAILED_PRECONDITION);
    expect((err as ApiError).message).toMatch(/cannot create the task of container "c1": exec: "\/nope"/);
    expect(store.get('c1')?.task).toBeUndefined();
    expect(new ContainerStore(join(dir, 'root')).load()[0]!.task).toBeUndefined();
    expect(existsSync(join(dir, 'shims', 'c1'))).toBe(false);
  });

  it('reports an exit from the downtime to the first subscriber after a restart, once across restarts', async () => {
    const first = boot();
    for (const id of ['run', 'gone']) {
      addContainer(first.store, id);
      await first.tasks.create(id, { stdin: false });
      await first.tasks.start(id, '');
    }
    first.tasks.close(); // kill -9 of the supervisor: the shims go on
    launcher.procs.get('gone')!.finish(7);

    const second = boot();
    for (const rec of second.store.list()) await second.tasks.recover(rec);
    expect((await second.tasks.wait('gone', '')).exitCode).toBe(7);
    expect((await second.tasks.state('run', '')).status).toBe('RUNNING');
    const events: SupervisorEvent[] = [];
    second.bus.subscribe([], (e) => events.push(e));
    expect(exitsOf(events)).toEqual([
      ['gone', expect.objectContaining({ exitStatus: 7, reason: 'exited while the supervisor was down' })],
    ]);
    // The live one is still watched.
    launcher.procs.get('run')!.finish(0);
    await second.tasks.wait('run', '');
    expect(exitsOf(events).map((x) => x[0])).toEqual(['gone', 'run']);
    second.tasks.close();

    const third = boot();
    for (const rec of third.store.list()) await third.tasks.recover(rec);
    const again: SupervisorEvent[] = [];
    third.bus.subscribe([], (e) => again.push(e));
    expect(exitsOf(again)).toEqual([]);
    expect((await third.tasks.wait('gone', '')).exitCode).toBe(7);
  });

  it('an exit nobody heard (no subscriber) is kept and reported after a restart if still unheard', async () => {
    const first = boot();
    addContainer(first.store, 'c1');
    await first.tasks.create('c1', { stdin: false });
    await first.tasks.start('c1', '');
    launcher.procs.get('c1')!.finish(1);
    await first.tasks.wait('c1', '');
    expect(first.store.get('c1')?.task?.exitReported).toBe(false);
    first.tasks.close();
    const second = boot();
    for (const rec of second.store.list()) await second.tasks.recover(rec);
    const events: SupervisorEvent[] = [];
    second.bus.subscribe(['topic==/tasks/exit'], (e) => events.push(e));
    expect(exitsOf(events)).toEqual([['c1', expect.objectContaining({ exitStatus: 1 })]]);
    expect(second.store.get('c1')?.task?.exitReported).toBe(true);
  });

  it('a shim found dead at restart: its exit.json is used, or the task is reported exited 255 "shim died"', async () => {
    const first = boot();
    for (const id of ['clean', 'killed']) {
      addContainer(first.store, id);
      await first.tasks.create(id, { stdin: false });
      await first.tasks.start(id, '');
    }
    first.tasks.close();
    launcher.procs.get('clean')!.finish(4);
    launcher.procs.get('clean')!.die();
    launcher.procs.get('killed')!.die();

    const second = boot();
    for (const rec of second.store.list()) await second.tasks.recover(rec);
    expect(await second.tasks.wait('clean', '')).toMatchObject({ exitCode: 4 });
    expect(await second.tasks.wait('killed', '')).toMatchObject({ exitCode: 255, reason: 'shim died' });
    expect(existsSync(join(dir, 'shims', 'killed'))).toBe(false);
    const events: SupervisorEvent[] = [];
    second.bus.subscribe([], (e) => events.push(e));
    expect(
      exitsOf(events)
        .map((x) => x[0])
        .sort(),
    ).toEqual(['clean', 'killed']);
    // Delete works without a shim.
    await second.tasks.delete('killed', '');
    expect(second.store.get('killed')?.task).toBeUndefined();
  });

  it('a shim that dies while watched: its container is reported exited 255 "shim died"', async () => {
    const { tasks, store, bus } = boot();
    addContainer(store, 'c1');
    const events: SupervisorEvent[] = [];
    bus.subscribe([], (e) => events.push(e));
    await tasks.create('c1', { stdin: false });
    await tasks.start('c1', '');
    launcher.procs.get('c1')!.die();
    const exit = await tasks.wait('c1', '');
    expect(exit).toMatchObject({ exitCode: 255, reason: 'shim died', pid: 1000 });
    expect(exitsOf(events)).toEqual([['c1', expect.objectContaining({ exitStatus: 255, reason: 'shim died' })]]);
    expect((await tasks.state('c1', '')).status).toBe('STOPPED');
  });
});
