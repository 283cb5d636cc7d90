// The container store (ids, names, prefixes, persistence) and the list views/filters of containers/.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DockerError } from '../../vm-agent/daemon/contracts.js';
import { generateName, validNameRe } from '../../vm-agent/daemon/containers/names.js';
import { ContainerStore, ZERO_TIME, type ContainerRecord } from '../../vm-agent/daemon/containers/store.js';
import { filterList, humanDuration, listView, statusText } from '../../vm-agent/daemon/containers/views.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'containers-store-'));
  dirs.push(d);
  return d;
}

function rec(id: string, name: string, extra: Partial<ContainerRecord> = {}): ContainerRecord {
  return {
    id,
    name,
    image: 'busybox',
    imageId: 'sha256:' + 'f'.repeat(64),
    created: '2026-01-01T00:00:00.000000000Z',
    config: { Labels: {} },
    hostConfig: { NetworkMode: 'bridge' },
    logPath: '',
    state: {
      status: 'created',
      pid: 0,
      exitCode: 0,
      startedAt: ZERO_TIME,
      finishedAt: ZERO_TIME,
      oomKilled: false,
      error: '',
    },
    path: 'sh',
    args: ['-c', 'echo hi'],
    rootfs: { mounts: [], upperDir: '/u', lowerDirs: ['/l'] },
    mountPoints: [],
    restartCount: 0,
    manuallyStopped: false,
    hasBeenStarted: false,
    hostnamePath: '',
    hostsPath: '',
    resolvConfPath: '',
    platform: 'linux',
    ...extra,
  };
}

function status(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    if (err instanceof DockerError) return err.status;
    throw err;
  }
  return 0;
}

const A = 'abc1' + '0'.repeat(60);
const B = 'abc2' + '0'.repeat(60);

describe('ContainerStore', () => {
  it('resolves full ids, names with or without "/", and unique prefixes', () => {
    const s = new ContainerStore(tmp());
    s.put(rec(A, '/one'));
    s.put(rec(B, '/two'));
    expect(s.get(A).name).toBe('/one');
    expect(s.get('one').id).toBe(A);
    expect(s.get('/two').id).toBe(B);
    expect(s.get('abc2').id).toBe(B);
    expect(status(() => s.get('abc'))).toBe(400);
    expect(status(() => s.get('nosuch'))).toBe(404);
    expect(() => s.get('nosuch')).toThrow('No such container: nosuch');
  });

  it('a name wins over an id prefix', () => {
    const s = new ContainerStore(tmp());
    s.put(rec(A, '/' + B.slice(0, 6)));
    s.put(rec(B, '/x'));
    expect(s.get(B.slice(0, 6)).id).toBe(A);
  });

  it('names are unique: reserve is a 409 for another id', () => {
    const s = new ContainerStore(tmp());
    s.put(rec(A, '/one'));
    expect(status(() => s.reserveName('/one', B))).toBe(409);
    s.reserveName('/one', A);
  });

  it('persists records and loads them back; remove deletes the directory', () => {
    const root = tmp();
    const s = new ContainerStore(root);
    s.put(rec(A, '/one', { restartCount: 3 }));
    s.put(rec(B, '/two'));
    s.remove(B);
    const again = new ContainerStore(root);
    expect(again.load().map((c) => c.id)).toEqual([A]);
    expect(again.get('one').restartCount).toBe(3);
    expect(again.find('two')).toBeUndefined();
  });
});

describe('names', () => {
  it('generated names are valid', () => {
    for (let i = 0; i < 50; i++) expect(generateName()).toMatch(/^[a-z]+_[a-z]+$/);
    expect(generateName(3)).toMatch(/^[a-z]+_[a-z]+\d$/);
    expect(validNameRe.test('/ok-name_1.x')).toBe(true);
    expect(validNameRe.test('a')).toBe(false);
    expect(validNameRe.test('bad name')).toBe(false);
  });
});

describe('list views and filters', () => {
  const now = Date.parse('2026-01-01T00:01:00Z');
  const running = rec(A, '/web', {
    created: '2026-01-01T00:00:01.000000000Z',
    config: { Labels: { app: 'web' } },
    state: { ...rec(A, '').state, status: 'running', pid: 10, startedAt: '2026-01-01T00:00:50Z' },
  });
  const exited = rec(B, '/job', {
    created: '2026-01-01T00:00:00.000000000Z',
    state: { ...rec(B, '').state, status: 'exited', exitCode: 3, finishedAt: '2026-01-01T00:00:30Z' },
  });
  const all = [exited, running];
  const opts = (f: Record<string, string[]>, all = false) => ({
    all,
    limit: 0,
    filters: new Map(Object.entries(f)),
    lookup: (ref: string) => (ref === 'web' ? running : exited),
    ancestorIds: new Set<string>(),
  });

  it('status texts', () => {
    expect(statusText(running, now)).toBe('Up 10 seconds');
    expect(statusText(exited, now)).toBe('Exited (3) 30 seconds ago');
    expect(statusText(rec(A, '/x'), now)).toBe('Created');
    expect(humanDuration(90 * 60 * 1000)).toBe('2 hours');
  });

  it('the list entry', () => {
    const v = listView(running);
    expect(v).toMatchObject({ Id: A, Names: ['/web'], Image: 'busybox', Command: 'sh -c "echo hi"', State: 'running' });
    expect(v.Created).toBe(Date.parse('2026-01-01T00:00:01Z') / 1000);
  });

  it('running only unless all; newest first; filters', () => {
    expect(filterList(all, opts({})).map((c) => c.id)).toEqual([A]);
    expect(filterList(all, opts({}, true)).map((c) => c.id)).toEqual([A, B]);
    expect(filterList(all, opts({ status: ['exited'] })).map((c) => c.id)).toEqual([B]);
    expect(filterList(all, opts({ exited: ['3'] }, true)).map((c) => c.id)).toEqual([B]);
    expect(filterList(all, opts({ label: ['app=web'] }, true)).map((c) => c.id)).toEqual([A]);
    expect(filterList(all, opts({ name: ['jo'] }, true)).map((c) => c.id)).toEqual([B]);
    expect(filterList(all, opts({ name: ['^job$'] }, true)).map((c) => c.id)).toEqual([B]); // without the "/"
    expect(filterList(all, opts({ before: ['web'] }, true)).map((c) => c.id)).toEqual([B]);
    expect(filterList(all, opts({ since: ['job'] }, true)).map((c) => c.id)).toEqual([A]);
    expect(status(() => filterList(all, opts({ status: ['sleepy'] })))).toBe(400);
    expect(status(() => filterList(all, opts({ bogus: ['x'] })))).toBe(400);
  });
});
