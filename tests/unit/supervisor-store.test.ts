// The container store (one crash-safe JSON file per container), input validation, mount option parsing and the
// timestamp helpers of the supervisor.
import { status } from '@grpc/grpc-js';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../vm-agent/common/atomic-file.js';
import { ApiError } from '../../vm-agent/common/errors.js';
import { KeyedLock } from '../../vm-agent/common/keyed-lock.js';
import { fromTimestamp, nowRfc3339, toTimestamp } from '../../vm-agent/common/timestamp.js';
import { parseMountOptions } from '../../vm-agent/supervisor/mounts.js';
import { ContainerStore, type ContainerRecord } from '../../vm-agent/supervisor/store.js';
import {
  checkContainerId,
  checkExecId,
  checkMounts,
  parseProcessSpec,
  parseSpec,
} from '../../vm-agent/supervisor/validate.js';

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'skiff-store-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function record(id: string, extra: Partial<ContainerRecord> = {}): ContainerRecord {
  return {
    id,
    spec: '{"ociVersion":"1.0.2","process":{"args":["true"]}}',
    rootfs: [],
    labels: {},
    log: { path: '', maxSize: 0, maxFile: 0 },
    createdAt: nowRfc3339(),
    updatedAt: nowRfc3339(),
    bundle: `/b/${id}`,
    ...extra,
  };
}

function codeOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof ApiError ? err.code : -1;
  }
  return undefined;
}

describe('container store', () => {
  it('writes one file per container and loads them back in creation order', () => {
    const s = new ContainerStore(dir);
    s.put(record('b', { createdAt: '2024-01-02T00:00:00.000000000Z' }));
    s.put(
      record('a', {
        createdAt: '2024-01-01T00:00:00.000000000Z',
        labels: { x: 'y' },
        task: { pid: 5, tty: false, stdin: true, shimDir: '/s/a', createdAt: 'now', exitReported: false },
      }),
    );
    expect(readdirSync(join(dir, 'containers')).sort()).toEqual(['a.json', 'b.json']);
    const again = new ContainerStore(dir);
    const recs = again.load();
    expect(recs.map((r) => r.id)).toEqual(['a', 'b']);
    expect(again.get('a')?.labels).toEqual({ x: 'y' });
    expect(again.get('a')?.task?.pid).toBe(5);
  });

  it('removes a record durably', () => {
    const s = new ContainerStore(dir);
    s.put(record('a'));
    s.remove('a');
    expect(s.has('a')).toBe(false);
    expect(new ContainerStore(dir).load()).toEqual([]);
  });

  it('ignores leftover temp files and sets aside a corrupt record instead of failing', () => {
    const s = new ContainerStore(dir);
    s.put(record('good'));
    writeFileSync(join(dir, 'containers', '.bad.json.123.0.tmp'), '{"id":');
    writeFileSync(join(dir, 'containers', 'bad.json'), '{"id":');
    writeFileSync(join(dir, 'containers', 'other.json'), JSON.stringify(record('not-other')));
    const recs = new ContainerStore(dir).load();
    expect(recs.map((r) => r.id)).toEqual(['good']);
    const left = readdirSync(join(dir, 'containers')).sort();
    expect(left).toEqual(['bad.json.corrupt', 'good.json', 'other.json.corrupt']);
  });

  it('writeFileAtomic replaces the whole file and leaves no temp file', () => {
    const p = join(dir, 'f.json');
    writeFileAtomic(p, 'one');
    writeFileAtomic(p, 'two');
    expect(readFileSync(p, 'utf8')).toBe('two');
    expect(readdirSync(dir)).toEqual(['f.json']);
    expect(() => writeFileAtomic(join(dir, 'missing', 'f'), 'x')).toThrow();
    expect(existsSync(join(dir, 'missing'))).toBe(false);
  });
});

describe('validation', () => {
  it('accepts container and exec ids of the documented form only', () => {
    expect(checkContainerId('web-1.a_b')).toBe('web-1.a_b');
    expect(checkExecId('e.1-x_')).toBe('e.1-x_');
    for (const bad of ['', '-x', 'a/b', 'a b', 'x'.repeat(129), '..'])
      expect(codeOf(() => checkContainerId(bad))).toBe(status.INVALID_ARGUMENT);
    for (const bad of ['', 'a/b', 'x'.repeat(65)]) expect(codeOf(() => checkExecId(bad))).toBe(status.INVALID_ARGUMENT);
  });

  it('checks a spec enough to give a clear message', () => {
    const ok = '{"ociVersion":"1.0.2","process":{"args":["/bin/sh"],"cwd":"/"},"root":{"path":"rootfs"}}';
    expect(parseSpec(ok).ociVersion).toBe('1.0.2');
    const cases: [string, RegExp][] = [
      ['', /empty/],
      ['not json', /not valid JSON/],
      ['[]', /JSON object/],
      ['{"process":{"args":["x"]}}', /ociVersion/],
      ['{"ociVersion":"1"}', /process is missing/],
      ['{"ociVersion":"1","process":{"args":[]}}', /args must be a non-empty array/],
      ['{"ociVersion":"1","process":{"args":["x"],"cwd":"rel"}}', /cwd must be an absolute path/],
      ['{"ociVersion":"1","process":{"args":["x"]},"root":{"path":1}}', /root.path/],
    ];
    for (const [text, msg] of cases) {
      expect(() => parseSpec(text), text).toThrow(msg);
      expect(codeOf(() => parseSpec(text))).toBe(status.INVALID_ARGUMENT);
    }
    expect(parseProcessSpec('{"args":["ls"]}').args).toEqual(['ls']);
    expect(() => parseProcessSpec('{"args":"ls"}')).toThrow(/exec spec.args/);
  });

  it('checks rootfs mounts', () => {
    expect(() => checkMounts([{ type: 'bind', source: 'rel', options: [] }])).toThrow(/absolute/);
    expect(() => checkMounts([{ type: '', source: '/x', options: [] }])).toThrow(/type is required/);
    expect(() => checkMounts([{ type: 'overlay', source: 'overlay', options: ['lowerdir=/a'] }])).not.toThrow();
  });
});

describe('mount options', () => {
  it('splits flags, propagation and filesystem data as mount(8) does', () => {
    const o = parseMountOptions('overlay', ['ro', 'nosuid', 'lowerdir=/a:/b', 'upperdir=/u', 'workdir=/w', 'rprivate']);
    expect(o.flags).toBe(1 | 2);
    expect(o.data).toBe('lowerdir=/a:/b,upperdir=/u,workdir=/w');
    expect(o.propagation).toBe((1 << 18) | 16384);
    expect(o.bind).toBe(false);
    const b = parseMountOptions('none', ['rbind', 'rw', 'nodev']);
    expect(b.bind).toBe(true);
    expect(b.flags).toBe(4096 | 16384 | 4);
    expect(parseMountOptions('bind', []).bind).toBe(true);
    expect(parseMountOptions('bind', ['ro', 'rw']).flags & 1).toBe(0);
  });
});

describe('timestamps and the keyed lock', () => {
  it('keeps nanoseconds through Timestamp and back', () => {
    const t = toTimestamp('2024-05-06T07:08:09.123456789Z');
    expect(t).toEqual({ seconds: String(Date.UTC(2024, 4, 6, 7, 8, 9) / 1000), nanos: 123456789 });
    expect(fromTimestamp(t)).toBe('2024-05-06T07:08:09.123456789Z');
    expect(toTimestamp('2024-05-06T09:08:09.5+02:00')).toEqual({ seconds: t!.seconds, nanos: 500_000_000 });
    expect(toTimestamp('')).toBeNull();
    expect(nowRfc3339()).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
  });

  it('runs operations on one key in order and on different keys concurrently', async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    await Promise.all([
      lock.run('a', async () => {
        await sleep(30);
        order.push('a1');
      }),
      lock
        .run('a', async () => {
          order.push('a2');
          throw new Error('boom');
        })
        .catch(() => order.push('a2 failed')),
      lock.run('a', async () => {
        order.push('a3');
      }),
      lock.run('b', async () => {
        order.push('b1');
      }),
    ]);
    // b did not wait for a; a's operations ran one after another, and a2's failure did not stop a3.
    expect(order.filter((x) => x !== 'a2 failed')).toEqual(['b1', 'a1', 'a2', 'a3']);
    expect(order).toContain('a2 failed');
  });
});
