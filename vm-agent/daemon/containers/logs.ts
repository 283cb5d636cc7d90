// GET /containers/{id}/logs: the json-file log the shim writes (docs/shim-protocol.md "Logs"), with its rotated
// files (`<log>.1` … oldest last), filtered by stream, since, until and tail, optionally followed until the
// container stops. Also the pieces attach (logs=1) and exec share: Docker's stream multiplexing and time parsing.
import { watch, type FSWatcher } from 'node:fs';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { badRequest, type ContainerRecordView, type Daemon, type RequestContext } from '../contracts.js';

export type StreamName = 'stdout' | 'stderr';

/** One json-file entry: the bytes as the process wrote them (a piece of a split line has no `\n`). */
export interface LogEntry {
  stream: StreamName;
  log: Buffer;
  /** As stored: RFC 3339 with up to 9 fraction digits. */
  time: string;
  /** The time in nanoseconds since the epoch. */
  ns: bigint;
}

// ---------------------------------------------------------------------------------------------- framing

/** Docker's multiplexed frame: [stream, 0, 0, 0, size uint32 BE] + payload (0 stdin, 1 stdout, 2 stderr, 3 system). */
export function muxFrame(stream: 0 | 1 | 2 | 3, payload: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head[0] = stream;
  head.writeUInt32BE(payload.length, 4);
  return Buffer.concat([head, payload]);
}

export const streamId = (s: StreamName): 1 | 2 => (s === 'stdout' ? 1 : 2);

/** Reads a multiplexed stream back: for tests and clients. Returns the frames whole, and what is left over. */
export function demux(buf: Buffer): { frames: { stream: number; data: Buffer }[]; rest: Buffer } {
  const frames: { stream: number; data: Buffer }[] = [];
  let off = 0;
  while (buf.length - off >= 8) {
    const size = buf.readUInt32BE(off + 4);
    if (buf.length - off - 8 < size) break;
    frames.push({ stream: buf[off] as number, data: buf.subarray(off + 8, off + 8 + size) });
    off += 8 + size;
  }
  return { frames, rest: buf.subarray(off) };
}

/** The stream content type: raw with a tty, multiplexed from API 1.42 (raw-stream before, as Docker). */
export function streamContentType(tty: boolean, apiVersion: string): string {
  return !tty && versionAtLeast(apiVersion, '1.42')
    ? 'application/vnd.docker.multiplexed-stream'
    : 'application/vnd.docker.raw-stream';
}

export function versionAtLeast(v: string, min: string): boolean {
  const a = v.split('.').map(Number);
  const b = min.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------- times

const rfc3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/** RFC 3339 (nanoseconds kept) → ns since the epoch; undefined when malformed. */
export function rfc3339ToNs(s: string): bigint | undefined {
  const m = rfc3339.exec(s);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0') || '0');
}

/** Go's RFC3339NanoFixed (9 fraction digits, UTC), as `docker logs -t` prints. */
export function nsToRfc3339Fixed(ns: bigint): string {
  const secs = ns / 1_000_000_000n;
  const frac = ns % 1_000_000_000n;
  const base = new Date(Number(secs) * 1000).toISOString().slice(0, 19);
  return `${base}.${String(frac).padStart(9, '0')}Z`;
}

/**
 * Docker's `since` / `until` query values: a UNIX time with an optional fraction (`1700000000.123456789`), as the
 * CLI sends them (it converts durations and RFC 3339 itself); we also take RFC 3339. 0 or empty: no bound.
 */
export function parseUnixTime(name: string, v: string | null): bigint | undefined {
  if (v === null || v === '' || v === '0') return undefined;
  const m = /^(-?\d+)(?:\.(\d{0,9}))?$/.exec(v);
  if (m) {
    const secs = BigInt(m[1] as string);
    const frac = BigInt((m[2] ?? '').padEnd(9, '0') || '0');
    const ns = secs * 1_000_000_000n + (secs < 0n ? -frac : frac);
    return ns === 0n ? undefined : ns;
  }
  const r = rfc3339ToNs(v);
  if (r === undefined) throw badRequest(`invalid value for "${name}": ${JSON.stringify(v)}`);
  return r;
}

// ---------------------------------------------------------------------------------------------- parsing

/** One line of a json-file log; undefined when it is not an entry (a torn or foreign line is skipped). */
export function parseLogLine(line: string): LogEntry | undefined {
  if (!line) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as { log?: unknown; stream?: unknown; time?: unknown };
  if (typeof o.log !== 'string' || typeof o.time !== 'string') return undefined;
  const stream: StreamName = o.stream === 'stderr' ? 'stderr' : 'stdout';
  const ns = rfc3339ToNs(o.time);
  if (ns === undefined) return undefined;
  return { stream, log: Buffer.from(o.log, 'utf8'), time: o.time, ns };
}

export interface LogQuery {
  stdout: boolean;
  stderr: boolean;
  since?: bigint;
  until?: bigint;
  /** Lines from the end; -1: all. */
  tail: number;
  timestamps: boolean;
}

/** `tail`: "all", absent or negative → -1; otherwise a count (Docker refuses nothing: junk means all). */
export function parseTail(v: string | null): number {
  if (v === null || v === '' || v === 'all') return -1;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 ? n : -1;
}

/** Whether an entry passes the stream and since filters; `'stop'` once past `until` (entries are in order). */
export function admit(e: LogEntry, q: LogQuery): boolean | 'stop' {
  if (q.until !== undefined && e.ns > q.until) return 'stop';
  if (q.since !== undefined && e.ns < q.since) return false;
  return e.stream === 'stdout' ? q.stdout : q.stderr;
}

/** An entry as it goes to the client (the payload of one frame): with `-t`, the time and a space first. */
export function entryPayload(e: LogEntry, timestamps: boolean): Buffer {
  return timestamps ? Buffer.concat([Buffer.from(`${nsToRfc3339Fixed(e.ns)} `), e.log]) : e.log;
}

// ---------------------------------------------------------------------------------------------- files

/** The log's files, oldest first: `<log>.N` … `<log>.1`, then `<log>` itself (absent ones left out). */
export async function logFiles(path: string): Promise<string[]> {
  const dir = dirname(path);
  const base = basename(path);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const rotated = names
    .map((n) => ({ n, m: n.startsWith(`${base}.`) ? /^\d+$/.exec(n.slice(base.length + 1)) : null }))
    .filter((x) => x.m)
    .map((x) => ({ path: join(dir, x.n), k: Number(x.n.slice(base.length + 1)) }))
    .sort((a, b) => b.k - a.k)
    .map((x) => x.path);
  return names.includes(base) ? [...rotated, path] : rotated;
}

const chunkSize = 64 * 1024;

/**
 * Where the last `n` lines start, across the files (oldest first): the index of the file and the offset in it.
 * Reads backwards from the end, so a large log costs only what is returned.
 */
export async function tailStart(files: string[], n: number): Promise<{ file: number; offset: number }> {
  if (n < 0) return { file: 0, offset: 0 };
  if (n === 0) return { file: files.length, offset: 0 };
  let need = n;
  for (let i = files.length - 1; i >= 0; i--) {
    let fh: FileHandle;
    try {
      fh = await open(files[i] as string, 'r');
    } catch {
      continue;
    }
    try {
      const size = (await fh.stat()).size;
      let end = size;
      const buf = Buffer.alloc(chunkSize);
      while (end > 0) {
        const start = Math.max(0, end - chunkSize);
        const { bytesRead } = await fh.read(buf, 0, end - start, start);
        for (let j = bytesRead - 1; j >= 0; j--) {
          // A "\n" ends a line; the line after it (when there is one) is counted here.
          if (buf[j] !== 0x0a || start + j === size - 1) continue;
          if (--need === 0) return { file: i, offset: start + j + 1 };
        }
        end = start;
      }
      // The file's first line.
      if (size > 0 && --need === 0) return { file: i, offset: 0 };
    } finally {
      await fh.close();
    }
  }
  return { file: 0, offset: 0 };
}

/** Splits a byte stream into lines; the remainder (a line still being written) waits for more. */
export class LineSplitter {
  private rest: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): string[] {
    const data = this.rest.length ? Buffer.concat([this.rest, chunk]) : chunk;
    const lines: string[] = [];
    let start = 0;
    for (let i = data.indexOf(0x0a); i >= 0; i = data.indexOf(0x0a, start)) {
      lines.push(data.subarray(start, i).toString('utf8'));
      start = i + 1;
    }
    this.rest = Buffer.from(data.subarray(start));
    return lines;
  }

  /** What is left without a newline (a torn last line: ignored unless it parses). */
  flush(): string {
    const s = this.rest.toString('utf8');
    this.rest = Buffer.alloc(0);
    return s;
  }
}

type Each = (e: LogEntry) => boolean | Promise<boolean>;

/** Reads complete lines from `offset`; returns whether to go on, where the complete lines end, and the inode. */
async function readRange(
  path: string,
  offset: number,
  each: Each,
): Promise<{ going: boolean; end: number; ino: number }> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch {
    return { going: true, end: 0, ino: -1 };
  }
  try {
    const ino = (await fh.stat()).ino;
    const buf = Buffer.alloc(chunkSize);
    let pos = offset;
    let end = offset;
    const split = new LineSplitter();
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, chunkSize, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      for (const line of split.push(buf.subarray(0, bytesRead))) {
        end += Buffer.byteLength(line) + 1;
        const e = parseLogLine(line);
        if (e && !(await each(e))) return { going: false, end, ino };
      }
    }
    return { going: true, end, ino };
  } finally {
    await fh.close();
  }
}

/**
 * Every stored entry that passes the query, oldest first (tail first, then since and until, as Docker). `each`
 * returns false to stop. Returns whether to go on (false when stopped or past `until`) and where the live file's
 * complete lines end (to follow from there without a gap).
 */
export async function readStored(
  path: string,
  q: LogQuery,
  each: (e: LogEntry) => boolean | Promise<boolean>,
): Promise<{ going: boolean; live?: { end: number; ino: number } }> {
  const files = await logFiles(path);
  let live: { end: number; ino: number } | undefined;
  if (q.tail === 0) {
    try {
      const st = await stat(path);
      return { going: true, live: { end: st.size, ino: st.ino } };
    } catch {
      return { going: true };
    }
  }
  const start = await tailStart(files, q.tail);
  for (let i = start.file; i < files.length; i++) {
    const r = await readRange(files[i] as string, i === start.file ? start.offset : 0, (e) => {
      const a = admit(e, q);
      if (a === 'stop') return false;
      return a ? each(e) : true;
    });
    if (files[i] === path) live = { end: r.end, ino: r.ino };
    if (!r.going) return { going: false, live };
  }
  return { going: true, live };
}

/**
 * Follows the live log file from its current end: calls `each` for new entries until `stop` resolves (then reads
 * what is left and returns) or `signal` aborts. Survives rotation (the renamed file is read to its end through the
 * open handle, then the new file is opened) and truncation in place (read again from 0).
 */
export async function follow(
  path: string,
  q: LogQuery,
  each: (e: LogEntry) => boolean | void,
  opts: {
    stop: Promise<unknown>;
    signal: AbortSignal;
    /** Where to begin in the live file (when its inode is still `ino`); default: its current end. */
    from?: { end: number; ino: number };
    pollMs?: number;
  },
): Promise<void> {
  const pollMs = opts.pollMs ?? 250;
  let fh: FileHandle | undefined;
  let ino = -1;
  let pos = 0;
  let split = new LineSplitter();
  let stopped = false;
  let done = false;
  let wake: (() => void) | undefined;
  const poke = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  void opts.stop.then(
    () => {
      stopped = true;
      poke();
    },
    () => {
      stopped = true;
      poke();
    },
  );
  const onAbort = (): void => {
    done = true;
    poke();
  };
  opts.signal.addEventListener('abort', onAbort);
  let watcher: FSWatcher | undefined;
  const startWatch = (): void => {
    watcher?.close();
    watcher = undefined;
    try {
      watcher = watch(dirname(path), { persistent: false }, () => poke());
      watcher.on('error', () => undefined);
    } catch {
      // polling only
    }
  };
  const openLive = async (initial: boolean): Promise<void> => {
    try {
      const h = await open(path, 'r');
      const st = await h.stat();
      fh = h;
      ino = st.ino;
      pos = !initial ? 0 : opts.from && opts.from.ino === st.ino && opts.from.end <= st.size ? opts.from.end : st.size;
      split = new LineSplitter();
    } catch {
      fh = undefined;
    }
  };
  const emit = (lines: string[]): void => {
    for (const line of lines) {
      if (done) return;
      const e = parseLogLine(line);
      if (!e) continue;
      const a = admit(e, q);
      if (a === 'stop') {
        done = true;
        return;
      }
      if (a && each(e) === false) done = true;
    }
  };
  const drain = async (): Promise<void> => {
    if (!fh) return;
    const buf = Buffer.alloc(chunkSize);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, chunkSize, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      emit(split.push(buf.subarray(0, bytesRead)));
      if (done) return;
    }
  };
  /** After draining: is the live path still our file? Reopen it when it was rotated or truncated. */
  const checkRotation = async (): Promise<void> => {
    let st;
    try {
      st = await stat(path);
    } catch {
      return;
    }
    if (!fh || st.ino !== ino) {
      if (fh) {
        await drain();
        emit([split.flush()].filter(Boolean));
        await fh.close();
      }
      await openLive(false);
    } else if (st.size < pos) {
      pos = 0;
      split = new LineSplitter();
    }
  };
  try {
    startWatch();
    await openLive(true);
    while (!done) {
      await drain();
      if (done) break;
      await checkRotation();
      await drain();
      if (done) break;
      if (stopped) {
        // The shim writes the last partial line before it records the exit: one more look, then end.
        await new Promise((r) => setTimeout(r, 50));
        await checkRotation();
        await drain();
        emit([split.flush()].filter(Boolean));
        break;
      }
      await new Promise<void>((r) => {
        wake = r;
        const t = setTimeout(poke, pollMs);
        t.unref?.();
      });
    }
  } finally {
    opts.signal.removeEventListener('abort', onAbort);
    watcher?.close();
    await fh?.close().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------- the route

/** The log query from the request (400 when neither stream is chosen, as Docker). */
export function logQuery(ctx: RequestContext): LogQuery & { follow: boolean } {
  const q = {
    stdout: ctx.bool('stdout', false),
    stderr: ctx.bool('stderr', false),
    since: parseUnixTime('since', ctx.query.get('since')),
    until: parseUnixTime('until', ctx.query.get('until')),
    tail: parseTail(ctx.query.get('tail')),
    timestamps: ctx.bool('timestamps', false),
    follow: ctx.bool('follow', false),
  };
  if (!q.stdout && !q.stderr) throw badRequest('Bad parameters: you must choose at least one stream');
  return q;
}

export const isTty = (c: ContainerRecordView): boolean => c.config.Tty === true;
export const isRunning = (c: ContainerRecordView): boolean =>
  c.state.status === 'running' || c.state.status === 'paused' || c.state.status === 'restarting';

/** Writes to a response or a socket, waiting for drain; false once the peer is gone. */
export interface Sink {
  write(b: Buffer): Promise<boolean>;
  readonly closed: boolean;
}

export function sinkOf(w: NodeJS.WritableStream & { destroyed?: boolean; writableEnded?: boolean }): Sink {
  let closed = false;
  const mark = (): void => {
    closed = true;
  };
  w.once('close', mark);
  w.once('error', mark);
  return {
    get closed() {
      return closed || w.destroyed === true || w.writableEnded === true;
    },
    write(b: Buffer): Promise<boolean> {
      if (this.closed) return Promise.resolve(false);
      if (b.length === 0) return Promise.resolve(true);
      if (w.write(b)) return Promise.resolve(true);
      return new Promise((res) => {
        const ok = (): void => {
          w.off('close', bad);
          res(true);
        };
        const bad = (): void => {
          w.off('drain', ok);
          res(false);
        };
        w.once('drain', ok);
        w.once('close', bad);
      });
    },
  };
}

/**
 * Sends the log (stored, then followed while `stop` is pending if asked) to `sink`: frames without a tty, raw
 * bytes with one. Writes are queued in order; back-pressure from a slow client pauses the reading.
 */
export async function sendLog(
  path: string,
  q: LogQuery & { follow: boolean },
  tty: boolean,
  sink: Sink,
  opts: { stop: Promise<unknown>; signal: AbortSignal },
): Promise<void> {
  let chain: Promise<boolean> = Promise.resolve(true);
  let pending = 0;
  const out = (e: LogEntry): Promise<boolean> | boolean => {
    const payload = entryPayload(e, q.timestamps);
    const b = tty ? payload : muxFrame(streamId(e.stream), payload);
    pending += b.length;
    chain = chain.then((ok) => (ok ? sink.write(b) : false)).finally(() => (pending -= b.length));
    // Let a slow client hold the reading back rather than queue a large log in memory.
    return pending > 1 << 20 ? chain : !sink.closed;
  };
  const stored = await readStored(path, q, out);
  await chain;
  if (stored.going && q.follow && !sink.closed && !opts.signal.aborted) {
    await follow(path, { ...q, tail: -1 }, (e) => out(e) !== false && !sink.closed, {
      stop: opts.stop,
      signal: opts.signal,
      from: stored.live,
    });
    await chain;
  }
}

export async function handleLogs(daemon: Daemon, ctx: RequestContext): Promise<void> {
  const c = await daemon.containers.get(ctx.params.id as string);
  const q = logQuery(ctx);
  const tty = isTty(c);
  ctx.res.writeHead(200, { 'Content-Type': streamContentType(tty, ctx.apiVersion) });
  ctx.res.flushHeaders();
  const abort = new AbortController();
  ctx.res.once('close', () => abort.abort());
  ctx.req.once('close', () => {
    if (ctx.res.writableFinished || ctx.req.socket?.destroyed) abort.abort();
  });
  const stop = isRunning(c) ? daemon.containers.wait(c.id, 'not-running').catch(() => undefined) : Promise.resolve();
  await sendLog(c.logPath, q, tty, sinkOf(ctx.res), { stop, signal: abort.signal });
  if (!ctx.res.writableEnded) ctx.res.end();
}
