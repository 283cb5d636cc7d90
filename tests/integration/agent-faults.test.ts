// skiff-agent when the engine's processes die (the fault test): kill -9 of skiffd while a Logs stream
// (follow) and an Exec stream are open, kill -9 of skiff-supervisor, and an agent stopped with SIGTERM and started
// again. The agent restarts what died, open streams end with UNAVAILABLE saying the engine restarted, new streams
// work, and containers never stop (same pid and StartedAt; a counter printed every 100 ms has no gap in its log).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../native/helpers.js';
import {
  type AgentHarness,
  alive,
  busyboxArchive,
  call,
  logText,
  type Msg,
  processOf,
  startAgent,
} from './agent-harness.js';

requireRoot();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let a: AgentHarness;
let counterId: string;

/** A busybox loop printing 0, 1, 2 … every 100 ms (usleep: busybox's sleep takes fractions too, but this is exact). */
const COUNTER = 'i=0; while true; do echo $i; i=$((i+1)); usleep 100000; done';

beforeAll(async () => {
  a = await startAgent();
  await a.dockerOk(['load', '-i', busyboxArchive()]);
  const r = await call(a.c.containers, 'Run', { image: 'busybox', name: 'counter', command: ['sh', '-c', COUNTER] });
  counterId = r.id as string;
  await a.dockerOk(['run', '-d', '--name', 'idle', '-p', '18090:80', 'busybox', 'sleep', '3600']);
});

// The engine's side of a failure: the agent's, skiffd's and the supervisor's last log lines.
afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail' && a) console.error(a.log(30));
});

afterAll(async () => {
  await a?.stop();
});

/** What must not change while the engine's processes die: the container's pid and start time. */
async function identity(id: string): Promise<{ pid: number; startedAt: string; running: boolean }> {
  const doc = JSON.parse((await call(a.c.containers, 'Inspect', { id })).json as string) as Msg;
  return { pid: doc.State.Pid, startedAt: doc.State.StartedAt, running: doc.State.Running };
}

/** The counter's whole log: every number from 0 up, none missing, none twice. */
async function counterLog(): Promise<number[]> {
  const logs = a.stream(a.c.containers, 'Logs', { id: counterId });
  const st = await logs.ended(20_000);
  expect(st.code, logs.describe()).toBe('OK');
  return logText(logs.items, 'STDOUT')
    .trim()
    .split('\n')
    .map((l) => Number(l));
}

function expectNoGap(nums: number[]): void {
  expect(nums.length).toBeGreaterThan(10);
  const bad = nums.findIndex((n, i) => n !== i);
  expect(
    bad,
    `the counter's log breaks at line ${bad}: ${JSON.stringify(nums.slice(Math.max(0, bad - 3), bad + 3))}`,
  ).toBe(-1);
}

/** An exec that must work: `echo <word>` → stdout "<word>\n", exit 0. */
async function execWorks(container: string, word: string): Promise<void> {
  const ex = a.exec({ container, command: ['echo', word] });
  expect(await ex.waitExit(20_000)).toBe(0);
  expect(ex.stdout).toBe(`${word}\n`);
}

describe('kill -9 of skiffd', () => {
  it('open Logs and Exec streams end UNAVAILABLE; skiffd comes back; new streams work; containers never stop', async () => {
    const before = await identity(counterId);
    const idleBefore = await identity('idle');
    expect(before.running).toBe(true);

    const logs = a.stream(a.c.containers, 'Logs', { id: counterId, follow: true });
    await logs.waitFor((m) => logText(m).split('\n').length > 5, 15_000, 'counter lines');
    const sh = a.exec({ container: 'idle', command: ['sh'], stdin: true });
    sh.write('echo ready\n');
    await sh.waitOutput('ready\n');
    const events = a.stream(a.c.system, 'Events', {});
    const ports = a.stream(a.c.ports, 'WatchPublished', {});
    await ports.waitFor((m) => m.some((e) => e.kind === 'SYNCED'), 15_000, 'SYNCED');
    const portsBefore = ports.items.length;
    await sleep(300);

    const oldPid = await a.killSkiffd();

    for (const [what, s] of [
      ['Logs', logs],
      ['Exec', sh],
    ] as const) {
      const st = await s.ended(20_000);
      expect(st.code, `${what}: ${s.describe()}`).toBe('UNAVAILABLE');
      expect(st.details, what).toMatch(/engine/i);
      expect(st.details, what).toMatch(/restart/i);
    }

    const info = await a.waitReady((i) => processOf(i, 'skiffd').restarts >= 1);
    const skiffd = processOf(info, 'skiffd');
    expect(skiffd.state).toBe('RUNNING');
    expect(skiffd.pid).not.toBe(oldPid);
    expect(skiffd.last_exit).toMatch(/SIGKILL/);
    expect(processOf(info, 'skiff-supervisor').restarts).toBe(0);

    // the containers never stopped
    expect(alive(before.pid)).toBe(true);
    expect(await identity(counterId)).toEqual(before);
    expect(await identity('idle')).toEqual(idleBefore);

    // the Events stream lived on: it told of the engine's restart, and still carries container events
    expect(events.status, events.describe()).toBeUndefined();
    await events.waitFor((m) => m.some((e) => e.type === 'engine' && e.action === 'ready'), 15_000, 'engine ready');
    await a.dockerOk(['run', '--rm', '--name', 'after-kill', 'busybox', 'true']);
    await events.waitFor(
      (m) => m.some((e) => e.type === 'container' && e.action === 'die' && e.attributes.name === 'after-kill'),
      15_000,
      'die of after-kill',
    );
    events.cancel();

    // so did the published ports' watch: idle's port never went away, so no change is sent for it
    expect(ports.status, ports.describe()).toBeUndefined();
    expect(ports.items.slice(portsBefore), ports.describe()).toEqual([]);
    ports.cancel();

    // new streams work
    await execWorks('idle', 'again');
    const logs2 = a.stream(a.c.containers, 'Logs', { id: counterId, follow: true, tail: 1 });
    try {
      await logs2.waitFor((m) => m.length >= 5, 15_000, 'five new counter lines');
    } finally {
      logs2.cancel();
    }
    await sleep(500);
    expectNoGap(await counterLog());
  });
});

describe('kill -9 of skiff-supervisor', () => {
  it('the agent starts it again; containers keep running; exec and logs work', async () => {
    const before = await identity(counterId);
    const oldPid = await a.killSupervisor();
    const info = await a.waitReady(
      (i) => processOf(i, 'skiff-supervisor').restarts >= 1 && processOf(i, 'skiff-supervisor').state === 'RUNNING',
    );
    expect(processOf(info, 'skiff-supervisor').pid).not.toBe(oldPid);
    expect(processOf(info, 'skiff-supervisor').last_exit).toMatch(/SIGKILL/);
    expect(alive(before.pid)).toBe(true);
    expect(await identity(counterId)).toEqual(before);
    await sleep(500);
    expectNoGap(await counterLog());
    // engine_ready means the engine works: skiffd reaches the new supervisor
    await execWorks('counter', 'sup');
  });
});

describe('the agent stopped with SIGTERM', () => {
  it('leaves the containers running; a new agent picks them up', async () => {
    const before = await identity(counterId);
    const idleBefore = await identity('idle');
    const how = await a.stopAgent('SIGTERM');
    expect(how).toBe('0');
    expect(alive(before.pid)).toBe(true);
    expect(alive(idleBefore.pid)).toBe(true);
    await sleep(1000); // the counter goes on with no agent at all

    await a.startAgent();
    const info = await a.info();
    for (const name of ['skiffd', 'skiff-supervisor']) expect(processOf(info, name).state, name).toBe('RUNNING');
    expect(info.containers_running).toBe(2);
    expect(await identity(counterId)).toEqual(before);
    expect(await identity('idle')).toEqual(idleBefore);
    await execWorks('idle', 'picked-up');
    await sleep(500);
    expectNoGap(await counterLog());
  });
});
