// Published ports (docs/networking.md "Published ports"): what a container asks for (HostConfig.PortBindings,
// PublishAllPorts) and the host ports skiffd holds for it. Each host ip:port is bound by a socket kept open in
// this process: that is how a port already in use is found, and it keeps anyone else off the port while the
// kernel's DNAT rules (firewall.ts) carry the traffic. The sockets are never handed to children (Node opens them
// with CLOEXEC).
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIPv4, isIPv6, type Server } from 'node:net';
import { badRequest, DockerError, serverError, type PortMapping } from '../contracts.js';

export interface WantedPort {
  privatePort: number;
  protocol: 'tcp' | 'udp' | 'sctp';
  /** "0.0.0.0" for every address. */
  hostIp: string;
  /** A single port (from = to), a range, or 0/0: any free ephemeral port. */
  hostPortFrom: number;
  hostPortTo: number;
}

type Proto = WantedPort['protocol'];

const invalidSpec = (s: string) => badRequest(`invalid port specification: ${JSON.stringify(s)}`);

/** "80/tcp", "80" (tcp) → the container port; a range, 0 or an unknown protocol is a 400 as dockerd. */
function parseContainerPort(key: string): { port: number; protocol: Proto } {
  const [num = '', proto = 'tcp', ...rest] = key.split('/');
  const protocol = proto.toLowerCase();
  const port = /^\d{1,5}$/.test(num) ? Number(num) : NaN;
  if (rest.length || !(port >= 1 && port <= 65535) || !['tcp', 'udp', 'sctp'].includes(protocol))
    throw invalidSpec(key);
  return { port, protocol: protocol as Proto };
}

/** HostPort: "" or "0" (ephemeral), "8080", "8000-8010". */
function parseHostPort(s: string): [number, number] {
  if (s === '') return [0, 0];
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(s);
  const from = m ? Number(m[1]) : NaN;
  const to = m?.[2] !== undefined ? Number(m[2]) : from;
  if (!(from >= 0 && to <= 65535 && from <= to) || (from === 0 && to !== 0)) throw invalidSpec(s);
  return [from, to];
}

/** Container ports of Config.ExposedPorts; an image may carry a range ("8000-8002/tcp"): each port of it. */
function exposedKeys(exposed: string[]): string[] {
  const keys: string[] = [];
  for (const e of exposed) {
    const m = /^(\d{1,5})-(\d{1,5})(\/.*)?$/.exec(e);
    if (!m) {
      keys.push(e);
      continue;
    }
    const [from, to] = [Number(m[1]), Number(m[2])];
    if (!(from >= 1 && from <= to && to <= 65535)) throw invalidSpec(e);
    for (let p = from; p <= to; p++) keys.push(`${p}${m[3] ?? ''}`);
  }
  return keys;
}

interface Binding {
  HostIp?: unknown;
  HostPort?: unknown;
}

/**
 * The ports a container publishes, from HostConfig.PortBindings and PublishAllPorts (-P: every exposed port and
 * every PortBindings key without a binding gets an ephemeral port). Validated (400 as dockerd) and deduplicated;
 * sorted by container port and protocol.
 */
export function wantedPorts(hostConfig: Record<string, unknown>, exposedPorts: string[]): WantedPort[] {
  const raw = hostConfig.PortBindings;
  if (raw != null && (typeof raw !== 'object' || Array.isArray(raw)))
    throw badRequest('invalid HostConfig.PortBindings: not an object');
  const bindings = (raw ?? {}) as Record<string, Binding[] | null | undefined>;
  const publishAll = hostConfig.PublishAllPorts === true;

  // container port "80/tcp" → its bindings (empty: none asked for)
  const ports = new Map<string, { port: number; protocol: Proto; list: Binding[] }>();
  const add = (key: string, list: Binding[]) => {
    const { port, protocol } = parseContainerPort(key);
    const k = `${port}/${protocol}`;
    const entry = ports.get(k) ?? { port, protocol, list: [] };
    entry.list.push(...list);
    ports.set(k, entry);
  };
  for (const [key, list] of Object.entries(bindings)) {
    if (list != null && !Array.isArray(list)) throw invalidSpec(key);
    add(key, list ?? []);
  }
  if (publishAll) for (const key of exposedKeys(exposedPorts)) add(key, []);

  const out = new Map<string, WantedPort>();
  for (const { port, protocol, list } of ports.values()) {
    const effective: Binding[] = list.length ? list : publishAll ? [{}] : [];
    const v4: WantedPort[] = [];
    let v6 = false;
    for (const b of effective) {
      const hostIp = typeof b.HostIp === 'string' ? b.HostIp : '';
      const hostPort = typeof b.HostPort === 'string' ? b.HostPort : b.HostPort == null ? '' : String(b.HostPort);
      const [from, to] = parseHostPort(hostPort);
      if (hostIp === '' || isIPv4(hostIp)) {
        v4.push({ privatePort: port, protocol, hostIp: hostIp || '0.0.0.0', hostPortFrom: from, hostPortTo: to });
      } else if (isIPv6(hostIp.replace(/^\[(.*)\]$/, '$1'))) {
        v6 = true;
      } else {
        throw badRequest(`invalid IP address: ${hostIp}`);
      }
    }
    // `-p 8080:80` from a dual-stack client may come as 0.0.0.0 and ::; the IPv4 one is what we can do.
    if (v6 && !v4.length) throw new DockerError(501, 'IPv6 port bindings are not supported yet');
    for (const w of v4) out.set(`${w.privatePort}/${w.protocol}/${w.hostIp}/${w.hostPortFrom}-${w.hostPortTo}`, w);
  }
  return [...out.values()].sort(
    (a, b) =>
      a.privatePort - b.privatePort ||
      a.protocol.localeCompare(b.protocol) ||
      a.hostIp.localeCompare(b.hostIp) ||
      a.hostPortFrom - b.hostPortFrom ||
      a.hostPortTo - b.hostPortTo,
  );
}

// ---------------------------------------------------------------------------------------------- reservations

interface Held {
  mapping: PortMapping;
  close(): Promise<void>;
}

/** Bind `hostIp:port` (0: the kernel picks) and keep it; resolves with the socket's port. */
function bindTcp(hostIp: string, port: number): Promise<{ port: number; close: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const server: Server = createServer((conn) => conn.destroy()); // the DNAT rules take the traffic, not us
    server.once('error', reject);
    server.listen({ host: hostIp, port, exclusive: true, backlog: 1 }, () => {
      server.removeListener('error', reject);
      server.on('error', () => undefined);
      const addr = server.address();
      resolve({
        port: typeof addr === 'object' && addr ? addr.port : port,
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}

function bindUdp(hostIp: string, port: number): Promise<{ port: number; close: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const sock: UdpSocket = createSocket({ type: 'udp4', reuseAddr: false });
    sock.on('message', () => undefined); // drain anything that arrives before the DNAT rule exists
    sock.once('error', reject);
    sock.bind({ address: hostIp, port, exclusive: true }, () => {
      sock.removeListener('error', reject);
      sock.on('error', () => undefined);
      resolve({ port: sock.address().port, close: () => new Promise((r) => sock.close(() => r())) });
    });
  });
}

/** Two bindings of one protocol clash on the same port when their addresses are equal or one is 0.0.0.0. */
function overlaps(a: PortMapping, b: PortMapping): boolean {
  return (
    a.protocol === b.protocol &&
    a.hostPort === b.hostPort &&
    (a.hostIp === b.hostIp || a.hostIp === '0.0.0.0' || b.hostIp === '0.0.0.0')
  );
}

const ALLOCATED = 'port is already allocated';
/** Go's wording of the errors a bind can meet (dockerd's messages carry it). */
const ERRNO_TEXT: Record<string, string> = {
  EADDRNOTAVAIL: 'cannot assign requested address',
  EACCES: 'permission denied',
};

/** The host ports this daemon holds for its containers. */
export class PortReservations {
  private readonly held = new Map<string, Held[]>(); // by container id

  /** The mappings held for a container (inspect, `docker port`). */
  of(containerId: string): PortMapping[] {
    return (this.held.get(containerId) ?? []).map((h) => h.mapping);
  }

  private heldBy(m: PortMapping): string | undefined {
    for (const [id, list] of this.held) if (list.some((h) => overlaps(h.mapping, m))) return id;
    return undefined;
  }

  /** Bind one port unless this process already holds it; EADDRINUSE and our own clashes give `undefined`. */
  private async take(containerId: string, m: PortMapping): Promise<Held | undefined> {
    if (m.hostPort !== 0 && this.heldBy(m) !== undefined) return undefined;
    // Recorded before the bind, so a concurrent reserve of the same port sees it.
    const held: Held = { mapping: { ...m }, close: async () => undefined };
    const list = this.held.get(containerId) ?? [];
    list.push(held);
    this.held.set(containerId, list);
    try {
      if (m.protocol === 'sctp') throw new DockerError(501, 'publishing SCTP ports is not supported yet');
      const b = await (m.protocol === 'tcp' ? bindTcp : bindUdp)(m.hostIp, m.hostPort);
      held.mapping.hostPort = b.port;
      held.close = b.close;
      return held;
    } catch (err) {
      list.splice(list.indexOf(held), 1);
      if (!list.length && this.held.get(containerId) === list) this.held.delete(containerId);
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') return undefined;
      throw err;
    }
  }

  /** Drop what `taken` holds (and forget it). */
  private async drop(containerId: string, taken: Held[]): Promise<void> {
    const list = this.held.get(containerId);
    if (list) {
      const rest = list.filter((h) => !taken.includes(h));
      if (rest.length) this.held.set(containerId, rest);
      else this.held.delete(containerId);
    }
    await Promise.all(taken.map((h) => h.close()));
  }

  /**
   * Bind every wanted port for a container, all or nothing: on a failure what this call bound is closed again and
   * a DockerError says which port (dockerd's "Bind for 0.0.0.0:8080 failed: port is already allocated").
   */
  async reserve(containerId: string, endpointName: string, wanted: WantedPort[]): Promise<PortMapping[]> {
    const taken: Held[] = [];
    const fail = (what: string) =>
      serverError(`driver failed programming external connectivity on endpoint ${endpointName}: ${what}`);
    try {
      for (const w of wanted) {
        const base = { privatePort: w.privatePort, protocol: w.protocol, hostIp: w.hostIp };
        let got: Held | undefined;
        // A range takes its first free port; 0-0 lets the kernel pick an ephemeral one.
        for (let port = w.hostPortFrom; port <= w.hostPortTo && !got; port++) {
          try {
            got = await this.take(containerId, { ...base, hostPort: port });
          } catch (err) {
            if (err instanceof DockerError) throw err;
            const why = ERRNO_TEXT[(err as NodeJS.ErrnoException).code ?? ''] ?? (err as Error).message;
            throw fail(`listen ${w.protocol}4 ${w.hostIp}:${port}: bind: ${why}`);
          }
        }
        if (!got) {
          const range = w.hostPortFrom === w.hostPortTo ? `${w.hostPortFrom}` : `${w.hostPortFrom}-${w.hostPortTo}`;
          const why = w.hostPortFrom === w.hostPortTo ? ALLOCATED : 'all ports are allocated';
          throw fail(`Bind for ${w.hostIp}:${range} failed: ${why}`);
        }
        taken.push(got);
      }
    } catch (err) {
      await this.drop(containerId, taken);
      throw err;
    }
    return taken.map((h) => ({ ...h.mapping }));
  }

  /** After a daemon restart: take the exact ports again; returns those that could not be (now used elsewhere). */
  async restore(containerId: string, mappings: PortMapping[]): Promise<PortMapping[]> {
    const lost: PortMapping[] = [];
    for (const m of mappings) {
      const got = m.hostPort > 0 ? await this.take(containerId, { ...m }).catch(() => undefined) : undefined;
      if (!got) lost.push(m);
    }
    return lost;
  }

  /** Close a container's sockets (its ports are free again at once). */
  async release(containerId: string): Promise<void> {
    const list = this.held.get(containerId) ?? [];
    await this.drop(containerId, list);
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.held.keys()].map((id) => this.release(id)));
  }
}
