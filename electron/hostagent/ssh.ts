// The SSH session to the VM (ssh2): public-key login with the VM's user key, the host key pinned (anything else is
// refused with HostKeyMismatchError and never retried), keepalive, and reconnection with back-off whenever the
// connection drops. exec() runs a command (`skiff shell`, tests); the forwards open channels on it.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import { pinnedVerifier } from './keys.js';

const { Client } = ssh2;
type Ssh2Client = InstanceType<typeof Client>;

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  privateKey: Buffer;
  /** The pinned host key blob. */
  hostKey: Buffer;
  /** Where the pin lives, for the error message. */
  pinFile: string;
  /** Keepalive interval (ms); the session counts as lost after 3 unanswered ones. Default 5000. */
  keepaliveMs?: number;
  /** Back-off between attempts: starts at minDelayMs, ×1.5 each failure, at most maxDelayMs. */
  minDelayMs?: number;
  maxDelayMs?: number;
  /** One attempt's handshake timeout (ms). Default 10000. */
  handshakeTimeoutMs?: number;
}

export type SshState = 'idle' | 'connecting' | 'ready' | 'failed' | 'closed';

export interface ExecResult {
  code: number | null;
  signal: string | undefined;
  stdout: string;
  stderr: string;
}

/**
 * Events: 'ready' (connected), 'down' (Error: the connection was lost; reconnecting), 'fatal' (Error: will not
 * retry, e.g. a wrong host key), 'state' (SshState).
 */
export class SshSession extends EventEmitter {
  private client: Ssh2Client | undefined;
  private stateValue: SshState = 'idle';
  private timer: NodeJS.Timeout | undefined;
  private delay: number;
  private fatalError: Error | undefined;
  /** The last connection error (for "not ready" messages). */
  lastError: Error | undefined;
  attempts = 0;

  constructor(private readonly t: SshTarget) {
    super();
    this.delay = t.minDelayMs ?? 100;
  }

  get state(): SshState {
    return this.stateValue;
  }

  private setState(s: SshState): void {
    if (this.stateValue === s) return;
    this.stateValue = s;
    this.emit('state', s);
  }

  /** Start connecting (and keep the session up until close()). */
  start(): this {
    if (this.stateValue === 'idle') this.attempt();
    return this;
  }

  private attempt(): void {
    this.timer = undefined;
    if (this.stateValue === 'closed' || this.stateValue === 'failed') return;
    this.setState('connecting');
    this.attempts++;
    const c = new Client();
    this.client = c;
    const v = pinnedVerifier(this.t.hostKey, this.t.pinFile);
    let wasReady = false;
    let ended = false;
    const end = (err: Error | undefined): void => {
      if (ended) return;
      ended = true;
      if (this.client === c) this.client = undefined;
      c.removeAllListeners();
      c.on('error', () => {}); // late errors of a dead client
      c.end();
      if (this.stateValue === 'closed') return;
      if (v.state.mismatch) {
        this.fatalError = v.state.mismatch;
        this.lastError = v.state.mismatch;
        this.setState('failed');
        this.emit('fatal', v.state.mismatch);
        return;
      }
      this.lastError = err ?? new Error('the SSH connection closed');
      if (wasReady) {
        this.delay = this.t.minDelayMs ?? 100;
        this.emit('down', this.lastError);
      }
      this.setState('connecting');
      this.timer = setTimeout(() => this.attempt(), this.delay);
      this.delay = Math.min(this.t.maxDelayMs ?? 3000, Math.round(this.delay * 1.5));
    };
    c.on('ready', () => {
      wasReady = true;
      this.delay = this.t.minDelayMs ?? 100;
      this.lastError = undefined;
      this.setState('ready');
      this.emit('ready');
    });
    c.on('error', (err: Error) => end(err));
    c.on('close', () => end(undefined));
    c.connect({
      host: this.t.host,
      port: this.t.port,
      username: this.t.username,
      privateKey: this.t.privateKey,
      hostVerifier: v.verify,
      keepaliveInterval: this.t.keepaliveMs ?? 5000,
      keepaliveCountMax: 3,
      readyTimeout: this.t.handshakeTimeoutMs ?? 10_000,
      // Only what an ed25519 host key needs; nothing else is ever accepted anyway.
      algorithms: { serverHostKey: ['ssh-ed25519'] },
    });
  }

  /** Resolve once connected; reject on a fatal error (wrong host key), close(), or after timeoutMs. */
  waitReady(timeoutMs: number): Promise<void> {
    if (this.stateValue === 'ready') return Promise.resolve();
    if (this.fatalError) return Promise.reject(this.fatalError);
    if (this.stateValue === 'closed') return Promise.reject(new Error('the SSH session is closed'));
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.off('ready', onReady);
        this.off('fatal', onFatal);
        this.off('state', onState);
      };
      const onReady = (): void => {
        done();
        resolve();
      };
      const onFatal = (err: Error): void => {
        done();
        reject(err);
      };
      const onState = (s: SshState): void => {
        if (s !== 'closed') return;
        done();
        reject(new Error('the SSH session was closed'));
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `SSH to ${this.t.host}:${this.t.port} not ready within ${Math.round(timeoutMs / 1000)} s` +
              (this.lastError ? ` (last error: ${this.lastError.message})` : ''),
          ),
        );
      }, timeoutMs);
      this.on('ready', onReady);
      this.on('fatal', onFatal);
      this.on('state', onState);
    });
  }

  private live(): Ssh2Client {
    if (this.fatalError) throw this.fatalError;
    if (this.stateValue !== 'ready' || !this.client)
      throw new Error(
        `the SSH session to the VM is not connected (${this.stateValue}` +
          (this.lastError ? `: ${this.lastError.message}` : '') +
          ')',
      );
    return this.client;
  }

  /** Run a command in the VM; collects its output (for short commands). */
  exec(command: string, opts: { timeoutMs?: number; stdin?: string } = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      let c: Ssh2Client;
      try {
        c = this.live();
      } catch (err) {
        reject(err as Error);
        return;
      }
      c.exec(command, (err, stream) => {
        if (err) {
          reject(err);
          return;
        }
        const out: Buffer[] = [];
        const errs: Buffer[] = [];
        let code: number | null = null;
        let signal: string | undefined;
        const timer = opts.timeoutMs
          ? setTimeout(() => {
              stream.close();
              reject(new Error(`"${command}" in the VM did not finish within ${opts.timeoutMs} ms`));
            }, opts.timeoutMs)
          : undefined;
        stream.on('data', (d: Buffer) => out.push(d));
        stream.stderr.on('data', (d: Buffer) => errs.push(d));
        stream.on('exit', (c2: number | null, sig?: string) => {
          code = c2;
          signal = sig;
        });
        stream.on('close', () => {
          if (timer) clearTimeout(timer);
          resolve({
            code,
            signal,
            stdout: Buffer.concat(out).toString('utf8'),
            stderr: Buffer.concat(errs).toString('utf8'),
          });
        });
        if (opts.stdin !== undefined) stream.end(opts.stdin);
        else stream.end();
      });
    });
  }

  /** A channel to a unix socket in the VM (OpenSSH's direct-streamlocal@openssh.com). */
  openStreamLocal(remotePath: string): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      try {
        this.live().openssh_forwardOutStreamLocal(remotePath, (err, stream) =>
          err ? reject(err) : resolve(stream as unknown as Duplex),
        );
      } catch (err) {
        reject(err as Error);
      }
    });
  }

  /** A direct-tcpip channel to dstHost:dstPort as seen from the VM. */
  forwardOut(srcHost: string, srcPort: number, dstHost: string, dstPort: number): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      try {
        this.live().forwardOut(srcHost, srcPort, dstHost, dstPort, (err, stream) =>
          err ? reject(err) : resolve(stream as unknown as Duplex),
        );
      } catch (err) {
        reject(err as Error);
      }
    });
  }

  /** Stop for good (no reconnection). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.setState('closed');
    const c = this.client;
    this.client = undefined;
    c?.end();
  }
}
