// A QMP client (QEMU Machine Protocol) over QEMU's unix socket: JSON objects one per line; the greeting, then
// qmp_capabilities, then commands with ids (answers matched by id), and asynchronous events.
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

export interface QmpStatus {
  running: boolean;
  /** "running", "paused", "prelaunch", "shutdown", "guest-panicked", … */
  status: string;
}

export class QmpError extends Error {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    desc: string,
  ) {
    super(`QMP ${command}: ${desc} (${errorClass})`);
    this.name = 'QmpError';
  }
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/**
 * One QMP session. Events: 'event' (QmpEvent), 'close' (Error | undefined: why it ended).
 * Every call fails with a clear error once the socket is gone (QEMU exited).
 */
export class QmpClient extends EventEmitter {
  private buf = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private closedWith: Error | undefined;
  /** QEMU's version as the greeting gave it ("7.2.22"). */
  version = '';

  private constructor(
    private readonly sock: Socket,
    private readonly path: string,
  ) {
    super();
  }

  /**
   * Connect to QEMU's QMP socket, read the greeting and negotiate capabilities. Retries a refused or missing socket
   * until `timeoutMs` (QEMU creates it a moment after it starts).
   */
  static async connect(path: string, timeoutMs = 5000): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await QmpClient.connectOnce(path, Math.max(500, deadline - Date.now()));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if ((code !== 'ENOENT' && code !== 'ECONNREFUSED') || Date.now() >= deadline) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  private static connectOnce(path: string, timeoutMs: number): Promise<QmpClient> {
    return new Promise((resolve, reject) => {
      const sock = connect(path);
      const client = new QmpClient(sock, path);
      let greeted = false;
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`QMP ${path}: no greeting from QEMU within ${timeoutMs} ms`));
      }, timeoutMs);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        sock.destroy();
        reject(err);
      };
      sock.once('error', fail);
      sock.setEncoding('utf8');
      client.onGreeting = (g) => {
        greeted = true;
        const v = (g.QMP as { version?: { qemu?: { major: number; minor: number; micro: number } } })?.version?.qemu;
        if (v) client.version = `${v.major}.${v.minor}.${v.micro}`;
        client.execute('qmp_capabilities').then(
          () => {
            clearTimeout(timer);
            sock.off('error', fail);
            sock.on('error', (err) =>
              client.shutdown(new Error(`QMP ${path}: the connection to QEMU closed (QEMU exited?): ${err.message}`)),
            );
            resolve(client);
          },
          (err: Error) => fail(err),
        );
      };
      sock.on('data', (chunk: string) => client.onData(chunk));
      sock.on('close', () => {
        if (!greeted) fail(new Error(`QMP ${path}: QEMU closed the socket before its greeting`));
        client.shutdown(new Error(`QMP ${path}: the connection to QEMU closed (QEMU exited?)`));
      });
    });
  }

  private onGreeting: ((g: Record<string, unknown>) => void) | undefined;

  private onData(chunk: string): void {
    this.buf += chunk;
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl < 0) break;
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue; // not JSON: ignore (QMP never sends such lines)
      }
      this.onMessage(msg);
    }
  }

  private onMessage(msg: Record<string, unknown>): void {
    if ('QMP' in msg) {
      const g = this.onGreeting;
      this.onGreeting = undefined;
      g?.(msg);
      return;
    }
    if (typeof msg.event === 'string') {
      this.emit('event', msg as unknown as QmpEvent);
      return;
    }
    const id = typeof msg.id === 'string' ? msg.id : undefined;
    const p = id ? this.pending.get(id) : undefined;
    if (!p || !id) return;
    this.pending.delete(id);
    if ('error' in msg) {
      const e = msg.error as { class?: string; desc?: string };
      p.reject(new QmpError(p.command, e.class ?? 'GenericError', e.desc ?? 'failed'));
    } else p.resolve(msg.return);
  }

  private shutdown(err: Error): void {
    if (this.closedWith) return;
    this.closedWith = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.sock.destroy();
    this.emit('close', err);
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Run a QMP command; resolves with its "return" value. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<T> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const id = `skiff-${this.nextId++}`;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`QMP ${command}: no answer from QEMU within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        command,
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      const msg = args ? { execute: command, arguments: args, id } : { execute: command, id };
      this.sock.write(`${JSON.stringify(msg)}\n`);
    });
  }

  async queryStatus(): Promise<QmpStatus> {
    const r = await this.execute<{ running: boolean; status: string }>('query-status');
    return { running: r.running, status: r.status };
  }

  /** Press the ACPI power button: the guest shuts down cleanly (skiff-init) and QEMU then exits. */
  async systemPowerdown(): Promise<void> {
    await this.execute('system_powerdown');
  }

  /** Make QEMU exit now (no guest shutdown). Resolves once QEMU answered or closed the socket. */
  async quit(): Promise<void> {
    try {
      await this.execute('quit', undefined, 5000);
    } catch (err) {
      if (!this.closedWith) throw err; // QEMU may close the socket before its answer
    }
  }

  /** Resume a VM started with -S (or paused). */
  async cont(): Promise<void> {
    await this.execute('cont');
  }

  /** Wait for an event by name (e.g. "SHUTDOWN"); rejects on close or timeout. */
  waitEvent(name: string, timeoutMs: number): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const onEvent = (e: QmpEvent): void => {
        if (e.event !== name) return;
        done();
        resolve(e);
      };
      const onClose = (err: Error): void => {
        done();
        reject(err);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`QMP: no ${name} event within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.off('event', onEvent);
        this.off('close', onClose);
      };
      this.on('event', onEvent);
      this.on('close', onClose);
    });
  }

  /** Close our side of the socket (QEMU keeps running). */
  close(): void {
    this.shutdown(new Error(`QMP ${this.path}: closed by the host agent`));
  }
}
