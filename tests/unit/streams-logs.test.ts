// The json-file log reader of skiffd's logs endpoint: parsing, since/until/tail across rotated files, following
// through rotation, framing and time formats.
import { appendFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  demux,
  follow,
  logFiles,
  muxFrame,
  nsToRfc3339Fixed,
  parseLogLine,
  parseTail,
  parseUnixTime,
  readStored,
  rfc3339ToNs,
  sendLog,
  streamContentType,
  tailStart,
  type LogEntry,
  type LogQuery,
} from '../../vm-agent/daemon/containers/logs.js';

const line = (log: string, stream: 'stdout' | 'stderr', sec: number, frac = ''): string =>
  JSON.stringify({ log, stream, time: `2024-01-01T00:00:${String(sec).padStart(2, '0')}${frac}Z` }) + '\n';

const all: LogQuery = { stdout: true, stderr: true, tail: -1, timestamps: false };

async function collect(path: string, q: LogQuery): Promise<string[]> {
  const out: string[] = [];
  await readStored(path, q, (e) => {
    out.push(`${e.stream}:${e.log.toString()}`);
    return true;
  });
  return out;
}

let dir: string;
let log: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'streams-logs-'));
  log = join(dir, 'c-json.log');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('times', () => {
  it('RFC 3339 with nanoseconds round-trips; fixed format has 9 digits', () => {
    const ns = rfc3339ToNs('2024-01-01T00:00:01.5Z') as bigint;
    expect(ns).toBe(1704067201500000000n);
    expect(nsToRfc3339Fixed(ns)).toBe('2024-01-01T00:00:01.500000000Z');
    expect(rfc3339ToNs('2024-01-01T01:00:00+01:00')).toBe(1704067200000000000n);
    expect(rfc3339ToNs('junk')).toBeUndefined();
  });
  it('since/until as the CLI sends them', () => {
    expect(parseUnixTime('since', '1704067201.000000001')).toBe(1704067201000000001n);
    expect(parseUnixTime('since', '1704067201')).toBe(1704067201000000000n);
    expect(parseUnixTime('since', '0')).toBeUndefined();
    expect(parseUnixTime('since', null)).toBeUndefined();
    expect(parseUnixTime('since', '2024-01-01T00:00:01Z')).toBe(1704067201000000000n);
    expect(() => parseUnixTime('since', 'yesterday')).toThrow(/since/);
  });
  it('tail', () => {
    expect(parseTail('all')).toBe(-1);
    expect(parseTail(null)).toBe(-1);
    expect(parseTail('3')).toBe(3);
    expect(parseTail('0')).toBe(0);
    expect(parseTail('-1')).toBe(-1);
  });
});

describe('framing', () => {
  it('mux and demux', () => {
    const b = Buffer.concat([muxFrame(1, Buffer.from('out')), muxFrame(2, Buffer.from('err!')), Buffer.from([1, 0])]);
    expect(b.subarray(0, 8)).toEqual(Buffer.from([1, 0, 0, 0, 0, 0, 0, 3]));
    const { frames, rest } = demux(b);
    expect(frames.map((f) => [f.stream, f.data.toString()])).toEqual([
      [1, 'out'],
      [2, 'err!'],
    ]);
    expect(rest.length).toBe(2);
  });
  it('content type per version and tty', () => {
    expect(streamContentType(false, '1.50')).toBe('application/vnd.docker.multiplexed-stream');
    expect(streamContentType(false, '1.41')).toBe('application/vnd.docker.raw-stream');
    expect(streamContentType(true, '1.50')).toBe('application/vnd.docker.raw-stream');
  });
});

describe('reading', () => {
  it('parses entries; a partial line passes as is; junk lines are skipped', () => {
    const e = parseLogLine(line('no newline', 'stderr', 1, '.123').trim()) as LogEntry;
    expect(e.log.toString()).toBe('no newline');
    expect(e.stream).toBe('stderr');
    expect(parseLogLine('{"torn":')).toBeUndefined();
  });

  it('rotated files oldest first; tail across them; since and until', async () => {
    writeFileSync(`${log}.2`, line('a\n', 'stdout', 1) + line('b\n', 'stderr', 2));
    writeFileSync(`${log}.1`, line('c\n', 'stdout', 3));
    writeFileSync(log, line('d\n', 'stdout', 4) + line('e', 'stderr', 5) + line('f\n', 'stdout', 6));
    writeFileSync(`${log}.x`, 'ignored');
    expect(await logFiles(log)).toEqual([`${log}.2`, `${log}.1`, log]);
    expect(await collect(log, all)).toEqual([
      'stdout:a\n',
      'stderr:b\n',
      'stdout:c\n',
      'stdout:d\n',
      'stderr:e',
      'stdout:f\n',
    ]);
    expect(await collect(log, { ...all, stderr: false })).toEqual([
      'stdout:a\n',
      'stdout:c\n',
      'stdout:d\n',
      'stdout:f\n',
    ]);
    expect(await collect(log, { ...all, tail: 2 })).toEqual(['stderr:e', 'stdout:f\n']);
    expect(await collect(log, { ...all, tail: 4 })).toEqual(['stdout:c\n', 'stdout:d\n', 'stderr:e', 'stdout:f\n']);
    expect(await collect(log, { ...all, tail: 5 })).toEqual([
      'stderr:b\n',
      'stdout:c\n',
      'stdout:d\n',
      'stderr:e',
      'stdout:f\n',
    ]);
    expect(await collect(log, { ...all, tail: 100 })).toHaveLength(6);
    expect(await collect(log, { ...all, tail: 0 })).toEqual([]);
    const t = (s: number): bigint => 1704067200000000000n + BigInt(s) * 1_000_000_000n;
    expect(await collect(log, { ...all, since: t(3) })).toEqual(['stdout:c\n', 'stdout:d\n', 'stderr:e', 'stdout:f\n']);
    expect(await collect(log, { ...all, until: t(3) })).toEqual(['stdout:a\n', 'stderr:b\n', 'stdout:c\n']);
    // tail first, then since (as Docker)
    expect(await collect(log, { ...all, tail: 2, since: t(1) })).toEqual(['stderr:e', 'stdout:f\n']);
  });

  it('tail on a large file reads backwards over chunk boundaries', async () => {
    let s = '';
    for (let i = 0; i < 5000; i++) s += line(`line ${i} ${'x'.repeat(i % 50)}\n`, 'stdout', i % 60);
    writeFileSync(log, s);
    const start = await tailStart([log], 3);
    expect(start.file).toBe(0);
    const got = await collect(log, { ...all, tail: 3 });
    expect(got.map((g) => g.split(' ')[1])).toEqual(['4997', '4998', '4999']);
  });

  it('no log file: nothing', async () => {
    expect(await collect(join(dir, 'none.log'), all)).toEqual([]);
  });
});

describe('follow', () => {
  it('from the end of what was read, through a rotation, to the stop', async () => {
    writeFileSync(log, line('old\n', 'stdout', 1));
    const seen: string[] = [];
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const ac = new AbortController();
    const stored = await readStored(log, all, () => true);
    appendFileSync(log, line('between\n', 'stdout', 2)); // written between the read and the follow: not lost
    const done = follow(log, all, (e) => void seen.push(e.log.toString()), {
      stop: stopped,
      signal: ac.signal,
      from: stored.live,
      pollMs: 50,
    });
    await new Promise((r) => setTimeout(r, 100));
    appendFileSync(log, line('new1\n', 'stdout', 3));
    await new Promise((r) => setTimeout(r, 150));
    appendFileSync(log, line('before-rotate\n', 'stdout', 4));
    renameSync(log, `${log}.1`);
    writeFileSync(log, line('after-rotate\n', 'stderr', 5));
    await new Promise((r) => setTimeout(r, 150));
    appendFileSync(log, line('last', 'stdout', 6));
    stop();
    await done;
    expect(seen).toEqual(['between\n', 'new1\n', 'before-rotate\n', 'after-rotate\n', 'last']);
  });

  it('sendLog: multiplexed frames, timestamps, ends when stopped', async () => {
    writeFileSync(log, line('x\n', 'stdout', 1, '.5') + line('y\n', 'stderr', 2));
    const chunks: Buffer[] = [];
    const sink = {
      closed: false,
      write: async (b: Buffer) => {
        chunks.push(b);
        return true;
      },
    };
    await sendLog(log, { ...all, timestamps: true, follow: true }, false, sink, {
      stop: Promise.resolve(),
      signal: new AbortController().signal,
    });
    const { frames } = demux(Buffer.concat(chunks));
    expect(frames.map((f) => [f.stream, f.data.toString()])).toEqual([
      [1, '2024-01-01T00:00:01.500000000Z x\n'],
      [2, '2024-01-01T00:00:02.000000000Z y\n'],
    ]);
    chunks.length = 0;
    await sendLog(log, { ...all, timestamps: false, follow: false }, true, sink, {
      stop: Promise.resolve(),
      signal: new AbortController().signal,
    });
    expect(Buffer.concat(chunks).toString()).toBe('x\ny\n');
  });
});
