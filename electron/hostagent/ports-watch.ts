// The published-ports watch: a gRPC client of skiff.agent.v1 Ports.WatchPublished over the forwarded agent socket,
// feeding a PortSink (the PortForwarder). The stream survives skiffd restarts on the agent's side; when it breaks
// here (the VM restarted the agent, SSH reconnected), it is opened again with back-off and reconciled: the agent
// resends every port (ADDED … SYNCED), so ports no longer published are removed and the rest are not added twice.
import { credentials, type ClientReadableStream, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadProto } from '../../vm-agent/common/grpc.js';
import type { PortSink, PublishedPort } from './forwards.js';

interface PortEventMsg {
  kind: 'KIND_UNSPECIFIED' | 'ADDED' | 'REMOVED' | 'SYNCED';
  port: { host_ip: string; host_port: number; container_port: number; protocol: string } | null;
  container_id: string;
  container_name: string;
}

function keyOf(e: PortEventMsg): string {
  const p = e.port;
  return `${e.container_id}|${p?.protocol}|${p?.host_ip}|${p?.host_port}|${p?.container_port}`;
}

export class PortsWatcher {
  private readonly current = new Map<string, PublishedPort>();
  private call: ClientReadableStream<PortEventMsg> | undefined;
  private client: InstanceType<ServiceClientConstructor> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private delay = 200;
  /** Set once the first SYNCED arrived (tests, status). */
  synced = false;
  lastError: Error | undefined;

  constructor(
    /** The LOCAL forwarded agent socket (~/.skiff/<vm>/agent.sock). */
    private readonly agentSocket: string,
    private readonly sink: PortSink,
  ) {}

  start(): this {
    const v1 = ((loadProto('agent.proto').skiff as GrpcObject).agent as GrpcObject).v1 as GrpcObject;
    const Ports = v1.Ports as ServiceClientConstructor;
    this.client = new Ports(`unix://${this.agentSocket}`, credentials.createInsecure());
    this.open();
    return this;
  }

  private open(): void {
    this.timer = undefined;
    if (this.stopped || !this.client) return;
    const seen = new Set<string>();
    let syncedHere = false;
    const call = (this.client as unknown as Record<string, (req: object) => ClientReadableStream<PortEventMsg>>)
      .WatchPublished!({});
    this.call = call;
    call.on('data', (e: PortEventMsg) => {
      this.delay = 200;
      if (e.kind === 'SYNCED') {
        syncedHere = true;
        this.synced = true;
        for (const [k, p] of [...this.current]) {
          if (seen.has(k)) continue;
          this.current.delete(k);
          this.sink.removed(p);
        }
        return;
      }
      if (!e.port) return;
      const k = keyOf(e);
      const port: PublishedPort = { ...e.port, container_name: e.container_name };
      if (e.kind === 'ADDED') {
        if (!syncedHere) seen.add(k);
        if (this.current.has(k)) return;
        this.current.set(k, port);
        this.sink.added(port);
      } else if (e.kind === 'REMOVED') {
        const had = this.current.get(k);
        if (!had) return;
        this.current.delete(k);
        this.sink.removed(had);
      }
    });
    const again = (err?: Error): void => {
      if (this.call !== call) return;
      this.call = undefined;
      if (err) this.lastError = err;
      if (this.stopped) return;
      this.timer = setTimeout(() => this.open(), this.delay);
      this.delay = Math.min(5000, this.delay * 2);
    };
    call.on('error', (err: Error) => again(err));
    call.on('end', () => again());
  }

  /** Stop watching; the sink keeps what it has (the caller stops the forwards). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const c = this.call;
    this.call = undefined;
    c?.cancel();
    this.client?.close();
  }
}
