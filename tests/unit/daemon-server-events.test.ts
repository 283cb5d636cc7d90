// skiffd system/ events: the bus's stamping, dockerd's event filters, since/until parsing, and GET /events over
// HTTP (replay of kept events, live ones, until in the past ends the stream, until in the future ends it then).
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon, DockerEvent } from '../../vm-agent/daemon/contracts.js';
import { HttpRouter, parseFilters, startApiServer, type ApiServer } from '../../vm-agent/daemon/server/index.js';
import { eventMatches, MemoryEventBus, parseTimestamp, register } from '../../vm-agent/daemon/system/index.js';

const ev = (Type: DockerEvent['Type'], Action: string, ID: string, Attributes: Record<string, string> = {}) =>
  ({ Type, Action, Actor: { ID, Attributes } }) as DockerEvent;

describe('bus', () => {
  it('stamps time, timeNano, scope and the legacy fields of container events', () => {
    const bus = new MemoryEventBus();
    const before = Date.now();
    bus.emit(ev('container', 'start', 'abc', { image: 'busybox', name: 'x' }));
    bus.emit(ev('image', 'tag', 'sha256:1', { name: 'busybox:latest' }));
    bus.emit(ev('network', 'connect', 'n1'));
    const [c, i, n] = bus.recent(undefined, undefined).map((x) => x.event);
    expect(c).toMatchObject({ status: 'start', id: 'abc', from: 'busybox', scope: 'local', Type: 'container' });
    expect(c.time).toBeGreaterThanOrEqual(Math.floor(before / 1000));
    expect(Math.abs(c.timeNano / 1e6 - before)).toBeLessThan(5000);
    expect(i).toMatchObject({ status: 'tag', id: 'sha256:1' });
    expect(i.from).toBeUndefined();
    expect(n.status).toBeUndefined();
    expect(i.timeNano).toBeGreaterThanOrEqual(c.timeNano);
  });

  it('keeps only the last `limit` events', () => {
    const bus = new MemoryEventBus(3);
    for (let k = 0; k < 5; k++) bus.emit(ev('container', 'create', `c${k}`));
    expect(bus.recent(undefined, undefined).map((x) => x.event.Actor.ID)).toEqual(['c2', 'c3', 'c4']);
  });
});

describe('filters', () => {
  const m = (f: string, e: DockerEvent) => eventMatches(parseFilters(f), e);
  const start = ev('container', 'start', 'abcdef123', { image: 'busybox:latest', name: 'web', 'com.x': 'y' });
  const exec = ev('container', 'exec_start: sh -c true', 'abcdef123', { name: 'web' });
  const tag = ev('image', 'tag', 'sha256:99', { name: 'busybox:latest' });

  it('type, event (exec_start matches "exec_start: cmd"), container by id prefix or name', () => {
    expect(m('{"type":{"container":true}}', start)).toBe(true);
    expect(m('{"type":["image"]}', start)).toBe(false);
    expect(m('{"type":["image","container"]}', tag)).toBe(true);
    expect(m('{"event":["start"]}', start)).toBe(true);
    expect(m('{"event":["stop"]}', start)).toBe(false);
    expect(m('{"event":["exec_start"]}', exec)).toBe(true);
    expect(m('{"container":["abcdef"]}', start)).toBe(true);
    expect(m('{"container":["web"]}', start)).toBe(true);
    expect(m('{"container":["other"]}', start)).toBe(false);
    expect(m('{"container":["web"]}', tag)).toBe(false);
  });

  it('image by name with or without tag and by id; labels by key or key=value', () => {
    expect(m('{"image":["busybox"]}', start)).toBe(true);
    expect(m('{"image":["busybox:latest"]}', tag)).toBe(true);
    expect(m('{"image":["sha256:99"]}', tag)).toBe(true);
    expect(m('{"image":["alpine"]}', tag)).toBe(false);
    expect(m('{"label":["com.x"]}', start)).toBe(true);
    expect(m('{"label":["com.x=y"]}', start)).toBe(true);
    expect(m('{"label":["com.x=z"]}', start)).toBe(false);
    expect(m('{"label":["com.x","nope"]}', start)).toBe(false);
  });
});

describe('timestamps', () => {
  it('unix seconds with fractions and RFC 3339, in nanoseconds', () => {
    expect(parseTimestamp('1700000000')).toBe(1_700_000_000_000_000_000n);
    expect(parseTimestamp('1700000000.5')).toBe(1_700_000_000_500_000_000n);
    expect(parseTimestamp('1700000000.000000001')).toBe(1_700_000_000_000_000_001n);
    expect(parseTimestamp('2023-11-14T22:13:20Z')).toBe(1_700_000_000_000_000_000n);
    expect(parseTimestamp('2023-11-14T22:13:20.123456789Z')).toBe(1_700_000_000_123_456_789n);
    expect(parseTimestamp(null)).toBeUndefined();
    expect(parseTimestamp('')).toBeUndefined();
    expect(() => parseTimestamp('yesterday')).toThrow(/invalid timestamp/);
  });
});

describe('GET /events', () => {
  let dir = '';
  let socket = '';
  let api: ApiServer;
  const bus = new MemoryEventBus();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'skiffd-events-'));
    socket = join(dir, 'docker.sock');
    const router = new HttpRouter();
    const config = { version: { api: '1.50', minApi: '1.24', engine: '28.2.2' }, dataRoot: dir } as Daemon['config'];
    register(router, { config, events: bus } as unknown as Daemon);
    api = await startApiServer({ socket, router, version: config.version });
  });

  afterAll(async () => {
    await api?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** GET the events path; collects lines; `onHeaders` runs once the 200 is in. */
  function get(path: string, onHeaders?: () => void, abortAfterLines?: number) {
    return new Promise<{ status: number; lines: Record<string, unknown>[]; body: string }>((resolve, reject) => {
      const req = request({ socketPath: socket, path }, (res) => {
        let body = '';
        onHeaders?.();
        const done = () =>
          resolve({
            status: res.statusCode!,
            body,
            lines:
              res.statusCode === 200
                ? body
                    .split('\n')
                    .filter((l) => l.trim())
                    .map((l) => JSON.parse(l))
                : [],
          });
        res.on('data', (c: Buffer) => {
          body += c.toString();
          if (abortAfterLines && body.split('\n').filter((l) => l.trim()).length >= abortAfterLines) {
            req.destroy();
            done();
          }
        });
        res.on('end', done);
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('replays kept events between since and until, filtered, and ends when until has passed', async () => {
    const t0 = Date.now() / 1000;
    bus.emit(ev('container', 'create', 'aaa', { image: 'busybox', name: 'one' }));
    bus.emit(ev('image', 'tag', 'sha256:1', { name: 'busybox:latest' }));
    bus.emit(ev('container', 'start', 'aaa', { image: 'busybox', name: 'one' }));
    await new Promise((r) => setTimeout(r, 20));
    const t1 = Date.now() / 1000;
    bus.emit(ev('container', 'die', 'aaa', { image: 'busybox', name: 'one' }));
    const q = `since=${t0.toFixed(6)}&until=${t1.toFixed(6)}&filters=${encodeURIComponent('{"type":{"container":true}}')}`;
    const r = await get(`/v1.50/events?${q}`);
    expect(r.status).toBe(200);
    expect(r.lines.map((l) => l.Action)).toEqual(['create', 'start']);
    expect(r.lines[0]).toMatchObject({ status: 'create', id: 'aaa', from: 'busybox', scope: 'local' });
  });

  it('streams live events with headers first; until in the future ends the stream then', async () => {
    const until = (Date.now() + 600) / 1000;
    const got = get(`/events?until=${until}&filters=${encodeURIComponent('{"event":["kill"]}')}`, () =>
      setTimeout(() => {
        bus.emit(ev('container', 'kill', 'bbb', { signal: '9' }));
        bus.emit(ev('container', 'stop', 'bbb'));
      }, 50),
    );
    const r = await got;
    expect(r.lines.map((l) => [l.Action, (l.Actor as { ID: string }).ID])).toEqual([['kill', 'bbb']]);
    expect(Date.now() / 1000).toBeGreaterThanOrEqual(until - 0.05);
  });

  it('without since or until: only live events, until the client goes', async () => {
    const r = await get('/events', () => setTimeout(() => bus.emit(ev('container', 'pause', 'ccc')), 50), 1);
    expect(r.lines.map((l) => l.Action)).toEqual(['pause']);
    await new Promise((res) => setTimeout(res, 50));
    expect(bus.subscribers).toBe(0);
  });

  it('rejects unknown filters and bad times with 400', async () => {
    expect((await get(`/events?filters=${encodeURIComponent('{"nope":["x"]}')}`)).status).toBe(400);
    expect((await get('/events?since=never')).status).toBe(400);
  });
});
