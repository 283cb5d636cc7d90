// Forwards over the SSH session:
// - unix sockets: a local 0600 socket in the 0700 ~/.skiff/<vm>/ directory; each connection becomes a
//   direct-streamlocal channel to a unix socket in the VM (/run/skiff/docker.sock, /run/skiff/agent.sock);
// - published container ports: listen on the requested host address and port; each connection becomes a
//   direct-tcpip channel to 127.0.0.1:<port> inside the VM. Driven by port events ({ added, removed }) that the
//   agent's WatchPublished stream feeds (ports-watch.ts). A host port already taken is a warning, not a crash.
import { EventEmitter } from 'node:events';
import { chmodSync, lstatSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { checkSocketPath } from './paths.js';

/** What a forward needs from the SSH session (SshSession implements it). */
export interface ChannelOpener {
  openStreamLocal(remotePath: string): Promise<Duplex>;
  forwardOut(srcHost: string, srcPort: number, dstHost: string, dstPort: number): Promise<Duplex>;
}

/** Copy both ways, passing half-closes through (a client that shuts down its writing side still gets its answer);
 * an error or a full close on either side ends both. */
function pipeBoth(local: Socket, remote: Duplex): void {
  local.pipe(remote);
  remote.pipe(local);
  const close = (): void => {
    local.destroy();
    remote.destroy();
  };
  local.on('error', close);
  remote.on('error', close);
  local.on('close', close);
  remote.on('close', close);
}

function listen(server: Server, ...args: [string] | [number, string]): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      resolve();
    };
    if (args.length === 1) server.listen(args[0], done);
    else server.listen(args[0], args[1], done);
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A local unix socket whose connections reach `remotePath` in the VM. */
export class UnixForward {
  private server: Server | undefined;
  private readonly conns = new Set<Socket>();
  /** Connections that failed to open a channel, for diagnostics. */
  failures = 0;
  lastError: Error | undefined;

  constructor(
    private readonly ssh: ChannelOpener,
    readonly localPath: string,
    readonly remotePath: string,
  ) {
    checkSocketPath(localPath);
  }

  /** Listen (replacing a stale socket file; refusing to replace anything that is not a socket). */
  async start(): Promise<void> {
    try {
      const st = lstatSync(this.localPath);
      if (!st.isSocket()) throw new Error(`${this.localPath} exists and is not a socket: refusing to replace it`);
      rmSync(this.localPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const server = createServer({ allowHalfOpen: true }, (local) => this.onConnection(local));
    // The directory is 0700, so nobody else can reach the socket in the moment before the chmod.
    await listen(server, this.localPath);
    chmodSync(this.localPath, 0o600);
    this.server = server;
  }

  private onConnection(local: Socket): void {
    this.conns.add(local);
    local.on('close', () => this.conns.delete(local));
    local.pause();
    this.ssh.openStreamLocal(this.remotePath).then(
      (remote) => {
        if (local.destroyed) {
          remote.destroy();
          return;
        }
        pipeBoth(local, remote);
        local.resume();
      },
      (err: Error) => {
        this.failures++;
        this.lastError = err;
        local.destroy();
      },
    );
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    for (const c of this.conns) c.destroy();
    if (s) await closeServer(s);
    rmSync(this.localPath, { force: true });
  }
}

/** A published port as the agent reports it (skiff.agent.v1 PublishedPort). */
export interface PublishedPort {
  host_ip: string;
  host_port: number;
  container_port: number;
  protocol: string;
  container_name?: string;
}

/** What the port watcher feeds. */
export interface PortSink {
  added(p: PublishedPort): void;
  removed(p: PublishedPort): void;
}

export interface PortForwardStatus {
  key: string;
  listen: string;
  port: PublishedPort;
  state: 'listening' | 'starting' | 'failed';
  /** Why it failed ("127.0.0.1:8080 is already in use on this host: …"). */
  warning?: string;
}

export function portKey(p: PublishedPort): string {
  return `${p.protocol || 'tcp'}/${listenHost(p.host_ip)}:${p.host_port}`;
}

/** The host address to listen on: the one the user published on; "" means every address, like Docker. */
export function listenHost(hostIp: string): string {
  return hostIp === '' ? '0.0.0.0' : hostIp;
}

interface Entry {
  status: PortForwardStatus;
  server?: Server;
  conns: Set<Socket>;
  /** How many published ports map here (e.g. two events for the same host port): removed when it drops to 0. */
  refs: number;
}

/**
 * The published-port forwards. Events: 'change' (PortForwardStatus[]) whenever the set or a state changes.
 */
export class PortForwarder extends EventEmitter implements PortSink {
  private readonly entries = new Map<string, Entry>();
  private stopped = false;

  constructor(
    private readonly ssh: ChannelOpener,
    /** The address inside the VM the channels go to. */
    private readonly vmHost = '127.0.0.1',
  ) {
    super();
  }

  list(): PortForwardStatus[] {
    return [...this.entries.values()].map((e) => ({ ...e.status }));
  }

  warnings(): string[] {
    return this.list().flatMap((s) => (s.warning ? [s.warning] : []));
  }

  /** Resolves once every forward has started listening or failed (tests, status). */
  async settled(): Promise<void> {
    while ([...this.entries.values()].some((e) => e.status.state === 'starting'))
      await new Promise((r) => setTimeout(r, 10));
  }

  added(p: PublishedPort): void {
    if (this.stopped) return;
    const key = portKey(p);
    const existing = this.entries.get(key);
    if (existing) {
      existing.refs++;
      return;
    }
    const where = `${listenHost(p.host_ip)}:${p.host_port}`;
    const entry: Entry = {
      status: { key, listen: where, port: { ...p }, state: 'starting' },
      conns: new Set(),
      refs: 1,
    };
    this.entries.set(key, entry);
    const who = p.container_name ? `container ${p.container_name}'s port ${p.container_port}` : `the published port`;
    if ((p.protocol || 'tcp') !== 'tcp') {
      entry.status.state = 'failed';
      entry.status.warning = `${p.protocol} port ${where}: only TCP ports are forwarded to this host yet (${who} is reachable inside the VM only)`;
      this.emit('change', this.list());
      return;
    }
    const server = createServer({ allowHalfOpen: true }, (local) => this.onConnection(entry, local));
    entry.server = server;
    listen(server, p.host_port, listenHost(p.host_ip)).then(
      () => {
        if (this.entries.get(key) !== entry) {
          server.close();
          return;
        }
        entry.status.state = 'listening';
        this.emit('change', this.list());
      },
      (err: NodeJS.ErrnoException) => {
        entry.server = undefined;
        entry.status.state = 'failed';
        entry.status.warning =
          err.code === 'EADDRINUSE'
            ? `${where} is already in use on this host: ${who} is not forwarded (free the port, or publish another one)`
            : err.code === 'EACCES'
              ? `${where}: permission denied on this host (ports below 1024 may need privileges): ${who} is not forwarded`
              : err.code === 'EADDRNOTAVAIL'
                ? `${where}: this host has no address ${p.host_ip}: ${who} is not forwarded`
                : `${where}: ${err.message}: ${who} is not forwarded`;
        this.emit('change', this.list());
      },
    );
  }

  removed(p: PublishedPort): void {
    const key = portKey(p);
    const e = this.entries.get(key);
    if (!e) return;
    if (--e.refs > 0) return;
    this.entries.delete(key);
    this.closeEntry(e);
    this.emit('change', this.list());
  }

  private closeEntry(e: Entry): void {
    for (const c of e.conns) c.destroy();
    e.server?.close();
  }

  private onConnection(e: Entry, local: Socket): void {
    e.conns.add(local);
    local.on('close', () => e.conns.delete(local));
    local.on('error', () => local.destroy());
    local.pause();
    this.ssh
      .forwardOut(local.remoteAddress ?? '127.0.0.1', local.remotePort ?? 0, this.vmHost, e.status.port.host_port)
      .then(
        (remote) => {
          if (local.destroyed) {
            remote.destroy();
            return;
          }
          pipeBoth(local, remote);
          local.resume();
        },
        () => local.destroy(),
      );
  }

  /** Close every listener (the VM stopped). */
  async stop(): Promise<void> {
    this.stopped = true;
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(
      all.map(async (e) => {
        for (const c of e.conns) c.destroy();
        if (e.server?.listening) await closeServer(e.server);
      }),
    );
    this.emit('change', this.list());
  }
}
