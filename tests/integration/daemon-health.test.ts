// Healthchecks in skiffd (containers/health.ts) with the real docker CLI: --health-cmd probes run as execs in the
// container (its env, user, workdir), starting → unhealthy → healthy in inspect and ps, health_status events, the
// timeout (probe killed, no pile-up), output capture, no probes while paused, the last health kept after a stop,
// an image's HEALTHCHECK and --no-healthcheck, the health filter, and monitors restored after a skiffd restart.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxArchive, DaemonHarness, startDaemon } from './daemon-harness.js';

let d: DaemonHarness;
let work: string;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

async function docker(...args: string[]): Promise<string> {
  const r = await d.docker(args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

async function health(ref: string): Promise<Json | null> {
  return JSON.parse(await docker('inspect', '--format', '{{json .State.Health}}', ref));
}

async function psStatus(ref: string): Promise<string> {
  return docker('ps', '-a', '--filter', `name=^${ref}$`, '--format', '{{.Status}}');
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}\n${d.log(20)}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

const statusIs = (ref: string, want: string) => () =>
  until(`${ref} to be ${want}`, async () => {
    const h = await health(ref);
    return h?.Status === want ? h : undefined;
  });

/** busybox with a HEALTHCHECK in its config (as a Dockerfile makes it), as a docker-archive. */
function imageWithHealthcheck(tag: string): string {
  const dir = join(work, 'img');
  rmSync(dir, { recursive: true, force: true });
  spawnSync('mkdir', ['-p', dir]);
  const x = spawnSync('tar', ['-C', dir, '-xf', busyboxArchive()]);
  if (x.status !== 0) throw new Error(`tar: ${x.stderr.toString()}`);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Json[];
  const old = manifest[0]!.Config as string;
  const cfg = JSON.parse(readFileSync(join(dir, old), 'utf8')) as Json;
  cfg.config.Healthcheck = { Test: ['CMD-SHELL', 'test -e /etc/passwd'], Interval: 500e6, Retries: 1 };
  const text = JSON.stringify(cfg);
  const name = `${createHash('sha256').update(text).digest('hex')}.json`;
  rmSync(join(dir, old));
  writeFileSync(join(dir, name), text);
  manifest[0]!.Config = name;
  manifest[0]!.RepoTags = [tag];
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  const out = join(work, 'hc.tar');
  const p = spawnSync('tar', ['-C', dir, '-cf', out, ...readdirSync(dir)]);
  if (p.status !== 0) throw new Error(`tar: ${p.stderr.toString()}`);
  return out;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'daemon-health-'));
  d = await startDaemon();
  await docker('load', '-i', busyboxArchive());
  await docker('load', '-i', imageWithHealthcheck('hc:latest'));
});

afterAll(async () => {
  await d?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('healthchecks', () => {
  it('starting → unhealthy → healthy, in inspect, ps, the health filter and the events', async () => {
    const since = String(Math.floor(Date.now() / 1000) - 1);
    await docker(
      ...['run', '-d', '--name', 'web', '--health-cmd', 'test -f /tmp/ok', '--health-interval', '1s'],
      ...['--health-retries', '2', 'busybox', 'sleep', '300'],
    );
    const first = await health('web');
    expect(first).toMatchObject({ Status: 'starting', FailingStreak: 0 });
    expect(await psStatus('web')).toMatch(/^Up .* \(health: starting\)$/);

    const sick = await statusIs('web', 'unhealthy')();
    expect(sick.FailingStreak).toBeGreaterThanOrEqual(2);
    expect(sick.Log.length).toBeGreaterThanOrEqual(2);
    const last = sick.Log.at(-1);
    expect(last.ExitCode).toBe(1);
    expect(Date.parse(last.End)).toBeGreaterThanOrEqual(Date.parse(last.Start));
    expect(await psStatus('web')).toMatch(/^Up .* \(unhealthy\)$/);
    expect(await docker('ps', '--filter', 'health=unhealthy', '--format', '{{.Names}}')).toBe('web');

    await docker('exec', 'web', 'touch', '/tmp/ok');
    const well = await statusIs('web', 'healthy')();
    expect(well.FailingStreak).toBe(0);
    expect(well.Log.at(-1).ExitCode).toBe(0);
    expect(well.Log.length).toBeLessThanOrEqual(5);
    expect(await psStatus('web')).toMatch(/^Up .* \(healthy\)$/);
    expect(await docker('ps', '--filter', 'health=healthy', '--format', '{{.Names}}')).toBe('web');
    expect(await docker('ps', '--filter', 'health=unhealthy', '--format', '{{.Names}}')).toBe('');

    const until = String(Math.ceil(Date.now() / 1000) + 1);
    const ev = await docker(
      ...['events', '--since', since, '--until', until, '--filter', 'container=web'],
      ...['--filter', 'event=health_status', '--format', '{{json .}}'],
    );
    const actions = ev
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l).Action);
    expect(actions).toEqual(['health_status: unhealthy', 'health_status: healthy']);
    // As dockerd, each probe is an exec with its events (the command in the action).
    const execs = await docker(
      ...['events', '--since', since, '--until', until, '--filter', 'container=web'],
      ...['--filter', 'event=exec_start', '--format', '{{.Action}}'],
    );
    expect(execs.split('\n')).toContain('exec_start: /bin/sh -c test -f /tmp/ok');
  });

  it("probes run with the container's env, user and workdir; output (stdout and stderr) is kept", async () => {
    await docker(
      ...['run', '-d', '--name', 'env', '-e', 'GREETING=hi there', '-u', '1000', '-w', '/tmp'],
      ...['--health-cmd', 'echo "$GREETING $(id -u) $(pwd)"; echo oops >&2', '--health-interval', '300ms'],
      ...['busybox', 'sleep', '300'],
    );
    await docker(
      ...['run', '-d', '--name', 'failing', '--health-cmd', 'echo out; exit 3', '--health-interval', '300ms'],
      ...['--health-retries', '1', 'busybox', 'sleep', '300'],
    );
    const h = await statusIs('env', 'healthy')();
    expect(h.Log.at(-1).Output).toContain('hi there 1000 /tmp\n');
    expect(h.Log.at(-1).Output).toContain('oops\n');
    const f = await statusIs('failing', 'unhealthy')();
    expect(f.Log.at(-1)).toMatchObject({ ExitCode: 3, Output: 'out\n' });
  });

  it('a probe that takes too long is killed at the timeout (-1) and probes never pile up', async () => {
    await docker(
      ...['run', '-d', '--name', 'slow', '--health-cmd', 'sleep 30', '--health-timeout', '500ms'],
      ...['--health-interval', '300ms', '--health-retries', '2', 'busybox', 'sleep', '300'],
    );
    const h = await statusIs('slow', 'unhealthy')();
    expect(h.Log.at(-1)).toMatchObject({ ExitCode: -1, Output: 'Health check exceeded timeout (500ms)' });
    // Each probe was killed before the next began: never more than the one in flight.
    await new Promise((r) => setTimeout(r, 1000));
    const ps = await docker('exec', 'slow', 'ps', '-o', 'args');
    expect(ps.split('\n').filter((l) => l.trim() === 'sleep 30').length).toBeLessThanOrEqual(1);
  });

  it('no probes while paused; the last health stays in inspect after a stop, but not in Status', async () => {
    await docker(
      ...['run', '-d', '--name', 'counted', '--health-cmd', 'echo x >> /tmp/n', '--health-interval', '300ms'],
      ...['busybox', 'sleep', '300'],
    );
    await statusIs('counted', 'healthy')();
    const upper = JSON.parse(await docker('inspect', '--format', '{{json .GraphDriver.Data.UpperDir}}', 'counted'));
    const count = (): number => readFileSync(join(upper, 'tmp/n'), 'utf8').split('\n').filter(Boolean).length;
    await docker('pause', 'counted');
    await new Promise((r) => setTimeout(r, 500)); // a probe begun just before the pause may still end
    const before = count();
    await new Promise((r) => setTimeout(r, 1500));
    expect(count()).toBe(before);
    expect(await psStatus('counted')).toMatch(/\(Paused\)$/);
    expect((await health('counted'))?.Status).toBe('healthy');
    await docker('unpause', 'counted');
    await until('probes after the unpause', async () => count() > before);

    await docker('stop', '-t', '0', 'counted');
    expect((await health('counted'))?.Status).toBe('healthy');
    expect(await psStatus('counted')).toMatch(/^Exited \(137\) /);
    expect(await docker('ps', '-a', '--filter', 'health=healthy', '--filter', 'name=counted', '-q')).not.toBe('');
  });

  it("an image's HEALTHCHECK runs; --no-healthcheck turns it off", async () => {
    await docker('run', '-d', '--name', 'fromimage', 'hc', 'sleep', '300');
    await docker('run', '-d', '--name', 'nocheck', '--no-healthcheck', 'hc', 'sleep', '300');
    const h = await statusIs('fromimage', 'healthy')();
    expect(h.Log.at(-1).ExitCode).toBe(0);
    expect(await docker('inspect', '--format', '{{json .Config.Healthcheck.Test}}', 'nocheck')).toBe('["NONE"]');
    expect(await health('nocheck')).toBeNull();
    expect(await psStatus('nocheck')).toMatch(/^Up [^(]*$/);
    expect(await docker('ps', '--filter', 'health=none', '--filter', 'name=nocheck', '--format', '{{.Names}}')).toBe(
      'nocheck',
    );
    // A created container has no health yet.
    await docker('create', '--name', 'notyet', 'hc', 'sleep', '300');
    expect(await health('notyet')).toBeNull();
  });

  it('create refuses a too short interval as dockerd', async () => {
    const r = await d.docker(['create', '--health-cmd', 'true', '--health-interval', '1us', 'busybox']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('Interval in Healthcheck cannot be less than 1ms');
  });

  it('after a skiffd restart the monitors of running containers start again (from "starting")', async () => {
    const before = (await health('web'))!.Log as Json[];
    await d.restartDaemon();
    const restarted = Date.now();
    // New probes ran (after the restart), added to the log the record kept.
    const h = await until('a probe after the restart', async () => {
      const cur = await health('web');
      return cur && Date.parse(cur.Log.at(-1).Start) > restarted ? cur : undefined;
    });
    expect(h.Status).toBe('healthy');
    expect(h.Log.map((l: Json) => l.Start)).toContain(before.at(-1)!.Start);
    expect(await psStatus('web')).toMatch(/\(healthy\)$/);
  });
});
