// One shim attach stream shared by any number of clients, with the output kept until the first client comes.
// Used for exec'd processes: their output goes to attachers only (not to the log), so the supervisor attaches as
// soon as the process starts and hands what it buffered to the first Attach call.
import type { AttachStream, ExitStatus } from './shim-types.js';

type Stream = 'stdout' | 'stderr';
const maxBuffered = 1 << 20;

interface Client {
  output: ((s: Stream, d: Buffer) => void)[];
  exit: ((e: ExitStatus) => void)[];
  close: (() => void)[];
  closed: boolean;
}

export class OutputHub {
  private readonly clients = new Set<Client>();
  private buffered: { stream: Stream; data: Buffer }[] = [];
  private bufferedBytes = 0;
  private everAttached = false;
  private exit: ExitStatus | undefined;
  private closed = false;

  constructor(private readonly upstream: AttachStream) {
    upstream.onOutput((stream, data) => {
      if (this.clients.size === 0) {
        if (this.everAttached) return;
        this.buffered.push({ stream, data });
        this.bufferedBytes += data.length;
        while (this.bufferedBytes > maxBuffered && this.buffered.length > 1)
          this.bufferedBytes -= (this.buffered.shift() as { data: Buffer }).data.length;
        return;
      }
      for (const c of this.clients) for (const cb of c.output) cb(stream, data);
    });
    upstream.onExit((e) => {
      this.exit = e;
      for (const c of this.clients) for (const cb of c.exit) cb(e);
    });
    upstream.onClose(() => {
      this.closed = true;
      for (const c of [...this.clients]) this.end(c);
    });
  }

  private end(c: Client): void {
    if (c.closed) return;
    c.closed = true;
    this.clients.delete(c);
    for (const cb of c.close) cb();
  }

  /** A new client; it gets what was buffered (the first client only), then live output, the exit and the close. */
  client(): AttachStream {
    const c: Client = { output: [], exit: [], close: [], closed: false };
    const backlog = this.buffered;
    this.buffered = [];
    this.bufferedBytes = 0;
    this.everAttached = true;
    const flush = (): void => {
      for (const b of backlog) for (const cb of c.output) cb(b.stream, b.data);
      backlog.length = 0;
      if (this.exit) for (const cb of c.exit) cb(this.exit);
      if (this.closed) this.end(c);
    };
    if (!this.closed) this.clients.add(c);
    let flushed = false;
    const later = (): void => {
      if (flushed) return;
      flushed = true;
      queueMicrotask(flush);
    };
    return {
      onOutput: (cb) => {
        c.output.push(cb);
        later();
      },
      onExit: (cb) => {
        c.exit.push(cb);
        later();
      },
      onClose: (cb) => {
        c.close.push(cb);
        later();
      },
      writeStdin: (data) => this.upstream.writeStdin(data),
      closeStdin: () => this.upstream.closeStdin(),
      detach: () => this.end(c),
    };
  }

  /** Stop listening to the shim (the exec was deleted). */
  detach(): void {
    this.upstream.detach();
  }
}
