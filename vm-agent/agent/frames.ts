// Docker's multiplexed stream (attach, exec and logs of a container without a tty): frames of an 8-byte header
// (stream 0 stdin, 1 stdout, 2 stderr, 3 an engine error; three zero bytes; the payload length as uint32
// big-endian) and the payload. Frames arrive split across chunks and several to a chunk; the demuxer reassembles them.
import type { Readable } from 'node:stream';
import { EngineError } from './contracts.js';

export type StreamName = 'stdin' | 'stdout' | 'stderr';

export interface Frame {
  stream: StreamName;
  data: Buffer;
}

const HEADER = 8;
const SYSTEM_ERROR = 3;
const names: Record<number, StreamName> = { 0: 'stdin', 1: 'stdout', 2: 'stderr' };

/** Incremental demuxer: push chunks, take whole frames. */
export class FrameDemuxer {
  private buf: Buffer = Buffer.alloc(0);
  /** The engine's error frame, once one came: the stream is over. */
  failure: EngineError | undefined;

  /** The frames completed by this chunk (a partial frame is kept for the next one). */
  push(chunk: Buffer): Frame[] {
    if (this.failure) throw this.failure;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Frame[] = [];
    while (this.buf.length >= HEADER) {
      const type = this.buf[0] as number;
      const stream = names[type];
      if (!stream && type !== SYSTEM_ERROR) {
        throw new Error(`not a multiplexed stream: frame type ${type} (is the container using a tty?)`);
      }
      const len = this.buf.readUInt32BE(4);
      if (this.buf.length < HEADER + len) break;
      if (!stream) {
        // The engine failed in the middle of the stream and says why in this frame (dockerd's stdcopy Systemerr):
        // the frames before it still count, the error comes after them.
        this.failure = new EngineError(500, this.buf.subarray(HEADER, HEADER + len).toString('utf8'));
        this.buf = Buffer.alloc(0);
        break;
      }
      out.push({ stream, data: Buffer.from(this.buf.subarray(HEADER, HEADER + len)) });
      this.buf = this.buf.subarray(HEADER + len);
    }
    return out;
  }

  /** Bytes of an unfinished frame (non-zero when the stream ended mid-frame). */
  get pending(): number {
    return this.buf.length;
  }
}

/** The frames of a multiplexed stream; an end in the middle of a frame is an error. */
export async function* demux(
  readable: Readable | AsyncIterable<Buffer | string> | Iterable<Buffer>,
): AsyncIterable<Frame> {
  const d = new FrameDemuxer();
  for await (const chunk of readable as AsyncIterable<Buffer | string>) {
    for (const f of d.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)) yield f;
    if (d.failure) throw d.failure;
  }
  if (d.pending > 0) throw new Error(`the multiplexed stream ended in the middle of a frame (${d.pending} bytes left)`);
}

const stampRe = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/**
 * A log line of `GET /containers/{id}/logs?timestamps=1`: an RFC 3339 (nano) time, a space, the data. A line without
 * a valid stamp is returned whole (no time). Nanoseconds beyond the millisecond are dropped by Date; callers that
 * need them can parse `stamp`.
 */
export function splitTimestamp(line: Buffer): { time?: Date; stamp?: string; data: Buffer } {
  const space = line.indexOf(0x20);
  if (space < 20 || space > 40) return { data: line };
  const stamp = line.subarray(0, space).toString('latin1');
  const m = stampRe.exec(stamp);
  if (!m) return { data: line };
  const ms = (m[2] ?? '').slice(0, 4); // ".123" at most: Date keeps milliseconds
  const time = new Date(`${m[1]}${ms}${m[3]}`);
  if (Number.isNaN(time.getTime())) return { data: line };
  return { time, stamp, data: line.subarray(space + 1) };
}

/** Splits a byte stream into lines (the newline kept), reassembling lines split across chunks. */
export class LineSplitter {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    let nl: number;
    while ((nl = this.buf.indexOf(0x0a)) >= 0) {
      out.push(Buffer.from(this.buf.subarray(0, nl + 1)));
      this.buf = this.buf.subarray(nl + 1);
    }
    return out;
  }

  /** What is left after the last newline (the stream ended without one). */
  flush(): Buffer | undefined {
    if (this.buf.length === 0) return undefined;
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }
}

/**
 * The lines of a container's logs as the API streams them: demultiplexed unless the container has a tty (then raw),
 * split into lines per stream (a frame may hold several lines or part of one).
 */
export async function* logLines(readable: Readable, tty: boolean): AsyncIterable<Frame> {
  const splitters: Record<StreamName, LineSplitter> = {
    stdin: new LineSplitter(),
    stdout: new LineSplitter(),
    stderr: new LineSplitter(),
  };
  const frames: AsyncIterable<Frame> = tty ? rawFrames(readable) : demux(readable);
  for await (const f of frames) {
    for (const line of splitters[f.stream].push(f.data)) yield { stream: f.stream, data: line };
  }
  for (const stream of ['stdout', 'stderr'] as const) {
    const rest = splitters[stream].flush();
    if (rest) yield { stream, data: rest };
  }
}

async function* rawFrames(readable: Readable): AsyncIterable<Frame> {
  for await (const chunk of readable as AsyncIterable<Buffer | string>) {
    yield { stream: 'stdout', data: typeof chunk === 'string' ? Buffer.from(chunk) : chunk };
  }
}
