// Healthchecks (vm-agent/daemon/containers/health.ts): the settings from Config.Healthcheck, dockerd's state
// machine (transitions, start period, retries, the log of 5), the probe schedule, Go's durations, the output cap,
// and how ps and inspect show health (views.ts). Times are injected.
import { describe, expect, it } from 'vitest';
import { DockerError } from '../../vm-agent/daemon/contracts.js';
import {
  applyProbeResult,
  goDuration,
  healthSettings,
  initialHealth,
  LimitedOutput,
  nextProbeDelay,
  validateHealthcheck,
  type HealthLogEntry,
  type HealthState,
} from '../../vm-agent/daemon/containers/health.js';
import { ZERO_TIME, type ContainerRecord } from '../../vm-agent/daemon/containers/store.js';
import { filterList, inspectView, statusText } from '../../vm-agent/daemon/containers/views.js';

const S = 1e9; // ns
const T0 = Date.parse('2026-01-01T00:00:00Z');

function entry(code: number, atMs = T0): HealthLogEntry {
  return {
    Start: new Date(atMs).toISOString(),
    End: new Date(atMs + 10).toISOString(),
    ExitCode: code,
    Output: `run ${code}`,
  };
}

/** Apply exit codes in order, each probe `stepMs` after the last (from the start), with retries / start period. */
function run(
  codes: number[],
  o: { retries?: number; startPeriodMs?: number; stepMs?: number } = {},
): { h: HealthState; events: string[] } {
  let h = initialHealth();
  const events: string[] = [];
  codes.forEach((code, i) => {
    const at = T0 + (i + 1) * (o.stepMs ?? 1000);
    const r = applyProbeResult(h, entry(code, at), {
      retries: o.retries ?? 3,
      startPeriodMs: o.startPeriodMs ?? 0,
      startedAtMs: T0,
      probeStartMs: at,
    });
    h = r.health;
    if (r.changed) events.push(`health_status: ${h.Status}`);
  });
  return { h, events };
}

function errStatus(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof DockerError) return `${err.status} ${err.message}`;
    throw err;
  }
  return 'ok';
}

describe('healthSettings', () => {
  it("fills dockerd's defaults (30s, 30s, 0, 5s, 3) and builds the probe's argv", () => {
    expect(healthSettings({ Healthcheck: { Test: ['CMD', 'curl', '-f', 'http://x/'] } })).toEqual({
      cmd: ['curl', '-f', 'http://x/'],
      intervalMs: 30_000,
      timeoutMs: 30_000,
      timeoutText: '30s',
      startPeriodMs: 0,
      startIntervalMs: 5_000,
      retries: 3,
    });
    const s = healthSettings({
      Healthcheck: {
        Test: ['CMD-SHELL', 'test -f /tmp/ok'],
        Interval: 1 * S,
        Timeout: 1.5 * S,
        StartPeriod: 10 * S,
        StartInterval: 0.5 * S,
        Retries: 2,
      },
    });
    expect(s).toMatchObject({
      cmd: ['/bin/sh', '-c', 'test -f /tmp/ok'],
      intervalMs: 1000,
      timeoutMs: 1500,
      timeoutText: '1.5s',
      startPeriodMs: 10_000,
      startIntervalMs: 500,
      retries: 2,
    });
    // Config.Shell (SHELL in a Dockerfile) runs CMD-SHELL.
    expect(healthSettings({ Shell: ['/bin/bash', '-ec'], Healthcheck: { Test: ['CMD-SHELL', 'true'] } })?.cmd).toEqual([
      '/bin/bash',
      '-ec',
      'true',
    ]);
  });

  it('none for no healthcheck, NONE (--no-healthcheck), an empty test or an unknown type', () => {
    expect(healthSettings({})).toBeUndefined();
    expect(healthSettings({ Healthcheck: null })).toBeUndefined();
    expect(healthSettings({ Healthcheck: { Test: ['NONE'] } })).toBeUndefined();
    expect(healthSettings({ Healthcheck: { Test: [] } })).toBeUndefined();
    expect(healthSettings({ Healthcheck: { Test: ['CMD'] } })).toBeUndefined();
    expect(healthSettings({ Healthcheck: { Test: ['HTTP', 'x'] } })).toBeUndefined();
  });

  it("create refuses durations under 1ms and negative retries with dockerd's words", () => {
    expect(errStatus(() => validateHealthcheck({ Interval: 999 }))).toBe(
      '400 Interval in Healthcheck cannot be less than 1ms',
    );
    expect(errStatus(() => validateHealthcheck({ StartInterval: 5 }))).toBe(
      '400 StartInterval in Healthcheck cannot be less than 1ms',
    );
    expect(errStatus(() => validateHealthcheck({ Retries: -1 }))).toBe('400 Retries in Healthcheck cannot be negative');
    expect(errStatus(() => validateHealthcheck({ Test: ['CMD', 'true'], Interval: 0, Timeout: 1e6 }))).toBe('ok');
    expect(errStatus(() => validateHealthcheck(undefined))).toBe('ok');
  });
});

describe('goDuration', () => {
  it("writes durations as Go's time.Duration does", () => {
    expect(goDuration(30 * S)).toBe('30s');
    expect(goDuration(1.5 * S)).toBe('1.5s');
    expect(goDuration(500e6)).toBe('500ms');
    expect(goDuration(1.5e6)).toBe('1.5ms');
    expect(goDuration(90 * S)).toBe('1m30s');
    expect(goDuration(60 * S)).toBe('1m0s');
    expect(goDuration(3600 * S)).toBe('1h0m0s');
    expect(goDuration(2500)).toBe('2.5µs');
    expect(goDuration(0)).toBe('0s');
  });
});

describe('the health state machine', () => {
  it('starting → healthy on exit 0; unhealthy after `retries` failures in a row; healthy again', () => {
    const { h, events } = run([0, 1, 1, 1, 0], { retries: 3 });
    expect(events).toEqual(['health_status: healthy', 'health_status: unhealthy', 'health_status: healthy']);
    expect(h.Status).toBe('healthy');
    expect(h.FailingStreak).toBe(0);
  });

  it('failures below the retries keep the status and count the streak; a success clears it', () => {
    let r = run([0, 1, 1], { retries: 3 });
    expect(r.h).toMatchObject({ Status: 'healthy', FailingStreak: 2 });
    r = run([1, 1], { retries: 2 });
    expect(r.h).toMatchObject({ Status: 'unhealthy', FailingStreak: 2 });
    expect(r.events).toEqual(['health_status: unhealthy']);
    r = run([1, 2, -1], { retries: 5 }); // any non-zero exit, and timeouts (-1), are failures
    expect(r.h).toMatchObject({ Status: 'starting', FailingStreak: 3 });
    expect(r.events).toEqual([]);
  });

  it('failures within the start period do not count while starting', () => {
    // Probes at 1 s … 4 s; the start period is 2.5 s: the first two failures are free.
    let r = run([1, 1, 1, 1], { retries: 2, startPeriodMs: 2500 });
    expect(r.h.FailingStreak).toBe(2);
    expect(r.events).toEqual(['health_status: unhealthy']);
    // Once healthy, the start period no longer protects it.
    r = run([0, 1], { retries: 1, startPeriodMs: 60_000 });
    expect(r.h).toMatchObject({ Status: 'unhealthy', FailingStreak: 1 });
  });

  it('the log keeps the last 5 results, oldest first', () => {
    const { h } = run([1, 1, 1, 0, 0, 1, 0], { retries: 10 });
    expect(h.Log.map((l) => l.Output)).toEqual(['run 1', 'run 0', 'run 0', 'run 1', 'run 0']);
    expect(h.Log[4]!.Start).toBe(new Date(T0 + 7000).toISOString());
  });

  it('a (re)start resets to starting with no streak and keeps the earlier log', () => {
    const { h } = run([1, 1, 1], { retries: 3 });
    const again = initialHealth(h);
    expect(again).toEqual({ Status: 'starting', FailingStreak: 0, Log: h.Log });
    expect(again.Log).not.toBe(h.Log);
    expect(initialHealth()).toEqual({ Status: 'starting', FailingStreak: 0, Log: [] });
  });

  it('applying a result does not change the state it was given', () => {
    const h = initialHealth();
    applyProbeResult(h, entry(0), { retries: 3, startPeriodMs: 0, startedAtMs: T0, probeStartMs: T0 });
    expect(h).toEqual({ Status: 'starting', FailingStreak: 0, Log: [] });
  });
});

describe('the probe schedule', () => {
  const s = healthSettings({
    Healthcheck: { Test: ['CMD', 'true'], Interval: 30 * S, StartPeriod: 60 * S, StartInterval: 5 * S },
  })!;

  it('the start interval while starting within the start period; the interval after it or once healthy', () => {
    expect(nextProbeDelay(s, 0, 'starting')).toBe(5000);
    expect(nextProbeDelay(s, 20_000, 'healthy')).toBe(30_000);
    expect(nextProbeDelay(s, 60_000, 'starting')).toBe(30_000);
    expect(nextProbeDelay(s, 90_000, 'unhealthy')).toBe(30_000);
  });

  it('never past the end of the start period when it ends sooner than an interval', () => {
    expect(nextProbeDelay(s, 45_000, 'starting')).toBe(15_000);
    expect(nextProbeDelay(s, 45_000, 'healthy')).toBe(15_000);
  });

  it('without a start period: the interval from the start', () => {
    const plain = healthSettings({ Healthcheck: { Test: ['CMD', 'true'], Interval: 2 * S } })!;
    expect(nextProbeDelay(plain, 0, 'starting')).toBe(2000);
  });
});

describe('the probe output', () => {
  it('keeps the first 4096 bytes and says "..." when there was more', () => {
    const o = new LimitedOutput();
    o.add(Buffer.from('a'.repeat(4000)));
    o.add(Buffer.from('b'.repeat(200)));
    const t = o.text();
    expect(t.length).toBe(4096 + 3);
    expect(t.endsWith('b'.repeat(96) + '...')).toBe(true);
    const small = new LimitedOutput();
    small.add(Buffer.from('ok\n'));
    expect(small.text()).toBe('ok\n');
  });
});

describe('ps and inspect', () => {
  const now = T0 + 3000;
  function rec(status: 'running' | 'paused' | 'exited' | 'created', health?: HealthState): ContainerRecord {
    return {
      id: 'a'.repeat(64),
      name: '/web',
      image: 'busybox',
      imageId: 'sha256:' + 'f'.repeat(64),
      created: '2026-01-01T00:00:00Z',
      config: { Labels: {}, Healthcheck: { Test: ['CMD', 'true'] } },
      hostConfig: {},
      logPath: '',
      state: {
        status,
        pid: status === 'running' || status === 'paused' ? 42 : 0,
        exitCode: 0,
        startedAt: status === 'created' ? ZERO_TIME : new Date(T0).toISOString(),
        finishedAt: status === 'exited' ? new Date(T0 + 1000).toISOString() : ZERO_TIME,
        oomKilled: false,
        error: '',
      },
      path: 'sh',
      args: [],
      rootfs: { mounts: [], upperDir: '/u', lowerDirs: [] },
      mountPoints: [],
      restartCount: 0,
      manuallyStopped: false,
      hasBeenStarted: status !== 'created',
      hostnamePath: '',
      hostsPath: '',
      resolvConfPath: '',
      platform: 'linux',
      health,
    };
  }
  const healthy: HealthState = { Status: 'healthy', FailingStreak: 0, Log: [entry(0)] };

  it('Status shows the health of a running container only', () => {
    expect(statusText(rec('running', initialHealth()), now)).toBe('Up 3 seconds (health: starting)');
    expect(statusText(rec('running', healthy), now)).toBe('Up 3 seconds (healthy)');
    expect(statusText(rec('running', { ...healthy, Status: 'unhealthy' }), now)).toBe('Up 3 seconds (unhealthy)');
    expect(statusText(rec('running'), now)).toBe('Up 3 seconds');
    expect(statusText(rec('paused', healthy), now)).toBe('Up 3 seconds (Paused)');
    expect(statusText(rec('exited', healthy), now)).toBe('Exited (0) 2 seconds ago');
  });

  it('inspect has State.Health once started with a probe, and keeps it after the stop', () => {
    expect(inspectView(rec('created')).State).not.toHaveProperty('Health');
    expect((inspectView(rec('running', healthy)).State as Record<string, unknown>).Health).toEqual(healthy);
    expect((inspectView(rec('exited', healthy)).State as Record<string, unknown>).Health).toEqual(healthy);
  });

  it('the health filter: starting, healthy, unhealthy, none', () => {
    const a = { ...rec('running', healthy), id: '1'.repeat(64), created: '2026-01-01T00:00:01Z' };
    const b = { ...rec('running', initialHealth()), id: '2'.repeat(64), created: '2026-01-01T00:00:02Z' };
    const c = { ...rec('running'), id: '3'.repeat(64), created: '2026-01-01T00:00:03Z' };
    const ids = (h: string): string[] =>
      filterList([a, b, c], {
        all: false,
        limit: 0,
        filters: new Map([['health', [h]]]),
        lookup: () => a,
        ancestorIds: new Set(),
      }).map((x) => x.id[0]!);
    expect(ids('healthy')).toEqual(['1']);
    expect(ids('starting')).toEqual(['2']);
    expect(ids('none')).toEqual(['3']);
    expect(ids('unhealthy')).toEqual([]);
    expect(() => ids('sick')).toThrow(/invalid filter 'health=sick'/);
  });
});
