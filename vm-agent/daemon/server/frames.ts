// Docker's multiplexed stream framing (attach, exec, logs without a TTY): `[stream, 0, 0, 0, size BE32]` + payload.
import type { Writable } from 'node:stream';

export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;
export const SYSTEM_ERROR = 3;
export type StreamId = 0 | 1 | 2 | 3;

export const MULTIPLEXED_STREAM = 'application/vnd.docker.multiplexed-stream';
export const RAW_STREAM = 'application/vnd.docker.raw-stream';

/** One frame holding `payload` for `stream`. */
export function frame(stream: StreamId, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

/** Writes to `out` as frames (multiplexed) or as the raw bytes (TTY, raw stream); empty payloads are dropped. */
export class FrameWriter {
  constructor(
    private readonly out: Writable,
    readonly multiplexed: boolean,
  ) {}

  write(stream: StreamId, payload: Buffer | string): boolean {
    const len = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
    if (len === 0 || this.out.destroyed || this.out.writableEnded) return true;
    return this.out.write(this.multiplexed ? frame(stream, payload) : payload);
  }
}

/** Splits a multiplexed byte stream back into frames (tests and clients). */
export class FrameReader {
  private buf = Buffer.alloc(0);
  push(chunk: Buffer): Array<{ stream: number; payload: Buffer }> {
    this.buf = Buffer.concat([this.buf, chunk]);
    const out: Array<{ stream: number; payload: Buffer }> = [];
    while (this.buf.length >= 8) {
      const size = this.buf.readUInt32BE(4);
      if (this.buf.length < 8 + size) break;
      out.push({ stream: this.buf[0]!, payload: this.buf.subarray(8, 8 + size) });
      this.buf = this.buf.subarray(8 + size);
    }
    return out;
  }
}
