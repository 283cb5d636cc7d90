// ProcessKeeper with real tiny programs (sh -c) and short timings: readiness, restart with back-off, the reset
// after a healthy run, lastExit with the last log line, stop with SIGTERM then SIGKILL, leftovers by pid file.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ProcessState } from '../../vm-agent/agent/contracts.js';
import { ProcessKeeper, stopLeftovers, type KeeperOptions } from '../../vm-agent/agent/keeper.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
const keepers: ProcessKeeper[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'keeper-'));
});
afterEach(async () => {
  for (const k of keepers.splice(0)) await k.stop(500);
  rmSync(dir, { recursive: true, force: true });
});

function keeper(script: string, more: Partial<KeeperOptions> = {}): ProcessKeeper {
  const k = new ProcessKeeper({
    name: 'test',
    command: '/bin/sh',
    args: ['-c', script],
    logFile: join(dir, 'test.log'),
    backoffInitialMs: 50,
    backoffMaxMs: 200,
    resetAfterMs: 300,
    readyPollMs: 10,
    ...more,
  });
  keepers.push(k);
  return k;
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('ProcessKeeper', () => {
  it('is STARTING until the probe answers, then RUNNING; output goes to the log file', async () => {
    const flag = join(dir, 'ready');
    const k = keeper(`echo hello; sleep 0.2; touch ${flag}; exec sleep 30`, {
      ready: () => Promise.resolve(existsSync(flag)),
    });
    const states: ProcessState[] = [];
    k.onState((h) => states.push(h.state));
    k.start();
    expect(k.health().state).toBe('STARTING');
    expect(k.health().pid).toBeGreaterThan(0);
    await until('RUNNING', () => k.health().state === 'RUNNING');
    expect(states).toEqual(['STARTING', 'RUNNING']);
    expect(readFileSync(join(dir, 'test.log'), 'utf8')).toContain('hello');
    await k.stop(1000);
    expect(k.health().state).toBe('STOPPED');
    expect(states.at(-1)).toBe('STOPPED');
  });

  it('restarts a process that dies, with a doubling back-off, and says why it ended', async () => {
    const k = keeper('echo "bad config: no such file"; exit 3');
    const starts: number[] = [];
    k.onState((h) => {
      if (h.state === 'STARTING') starts.push(Date.now());
    });
    k.start();
    await until('4 restarts', () => k.health().restarts >= 4);
    expect(k.health().lastExit).toBe('exited with code 3: bad config: no such file');
    const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
    // 50, 100, 200, 200 ms (capped) plus the time to run sh.
    expect(gaps[0]).toBeGreaterThanOrEqual(45);
    expect(gaps[1]).toBeGreaterThanOrEqual(95);
    expect(gaps[2]).toBeGreaterThanOrEqual(195);
    expect(gaps[3]).toBeLessThan(400);
  });

  it('reports a kill by signal and goes to BACKOFF, then runs again', async () => {
    const k = keeper('exec sleep 30');
    const states: ProcessState[] = [];
    k.onState((h) => states.push(h.state));
    k.start();
    await until('RUNNING', () => k.health().state === 'RUNNING');
    const first = k.health().pid;
    process.kill(first, 'SIGKILL');
    await until('a new pid', () => k.health().state === 'RUNNING' && k.health().pid !== first);
    expect(k.health().lastExit).toBe('killed by SIGKILL');
    expect(k.health().restarts).toBe(1);
    expect(states).toEqual(['STARTING', 'RUNNING', 'BACKOFF', 'STARTING', 'RUNNING']);
  });

  it('resets the back-off after a healthy run', async () => {
    const k = keeper('exec sleep 30');
    k.start();
    await until('RUNNING', () => k.health().state === 'RUNNING');
    // Three quick deaths push the delay to the cap (200 ms) ...
    for (let i = 0; i < 3; i++) {
      const pid = k.health().pid;
      process.kill(pid, 'SIGKILL');
      await until('restarted', () => k.health().state === 'RUNNING' && k.health().pid !== pid);
    }
    // ... a run longer than resetAfterMs (300) brings it back to 50 ms.
    await sleep(400);
    const pid = k.health().pid;
    const t0 = Date.now();
    process.kill(pid, 'SIGKILL');
    await until('restarted', () => k.health().state === 'RUNNING' && k.health().pid !== pid);
    expect(Date.now() - t0).toBeLessThan(180);
  });

  it('kills a process that is not ready in time and tries again', async () => {
    const k = keeper('exec sleep 30', { ready: () => Promise.resolve(false), readyTimeoutMs: 100 });
    k.start();
    await until('a restart', () => k.health().restarts >= 1);
    expect(k.health().lastExit).toBe('killed by SIGKILL');
  });

  it('stop() sends SIGTERM, then SIGKILL to a process that ignores it', async () => {
    const k = keeper(`trap '' TERM; echo trapped; while :; do sleep 0.05; done`);
    k.start();
    await until(
      'trapped',
      () => existsSync(join(dir, 'test.log')) && readFileSync(join(dir, 'test.log'), 'utf8').includes('trapped'),
    );
    const pid = k.health().pid;
    const t0 = Date.now();
    await k.stop(300);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z')).toBe(false);
    expect(k.health().state).toBe('STOPPED');
    await sleep(200);
    expect(k.health().state).toBe('STOPPED'); // not restarted
  });

  it('fails clearly when the program is missing, and keeps trying', async () => {
    const k = new ProcessKeeper({
      name: 'missing',
      command: join(dir, 'no-such-program'),
      args: [],
      logFile: join(dir, 'm.log'),
      backoffInitialMs: 20,
    });
    keepers.push(k);
    k.start();
    await until('a restart', () => k.health().restarts >= 1);
    expect(k.health().lastExit).toContain('could not start');
    expect(k.health().lastExit).toContain('ENOENT');
  });
});

describe('stopLeftovers', () => {
  it('stops the process in the pid file and others whose command line matches, and nothing else', async () => {
    const tag = `keeper-test-${process.pid}-${Date.now()}`;
    const start = (trapTerm: boolean) => {
      const script = trapTerm ? `trap '' TERM; while :; do sleep 0.05; done` : 'while :; do sleep 0.05; done';
      const p = spawn('/bin/sh', ['-c', script, tag], { detached: true, stdio: 'ignore' });
      return { p, gone: new Promise((r) => p.once('exit', r)) };
    };
    const a = start(false);
    const b = start(true); // ignores SIGTERM: needs the SIGKILL
    const pidFile = join(dir, 'x.pid');
    writeFileSync(pidFile, `${a.p.pid}\n`);
    await sleep(100);
    expect(await stopLeftovers(pidFile, (argv) => argv.includes('something-else'), 200)).toEqual([]);
    expect(a.p.exitCode).toBeNull();
    const stopped = await stopLeftovers(pidFile, (argv) => argv.includes(tag), 300);
    expect(stopped.sort()).toEqual([a.p.pid, b.p.pid].sort());
    await Promise.all([a.gone, b.gone]);
    expect(a.p.signalCode).toBe('SIGTERM');
    expect(b.p.signalCode).toBe('SIGKILL');
    expect(await stopLeftovers(join(dir, 'none.pid'), (argv) => argv.includes(tag))).toEqual([]);
  });
});

describe('pid file', () => {
  it('is written on each spawn and removed by stop()', async () => {
    const pidFile = join(dir, 'k.pid');
    const k = keeper('exec sleep 30', { pidFile });
    k.start();
    await until('RUNNING', () => k.health().state === 'RUNNING');
    expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(k.health().pid));
    await k.stop(1000);
    expect(existsSync(pidFile)).toBe(false);
  });

  it('beforeSpawn runs first; its failure is a failed start with the reason', async () => {
    let calls = 0;
    const k = keeper('exec sleep 30', {
      beforeSpawn: () => (++calls < 3 ? Promise.reject(new Error('the supervisor is not up')) : Promise.resolve()),
    });
    k.start();
    await until('RUNNING', () => k.health().state === 'RUNNING');
    expect(calls).toBe(3);
    expect(k.health().restarts).toBe(2);
    expect(k.health().lastExit).toBe('could not start: the supervisor is not up');
  });
});
