// The embedded DNS server (docs/networking.md "Embedded DNS"): UDP and TCP on port 53 of each bridge's gateway.
// Names the network service knows (containers, aliases, host.docker.internal) are answered here; every other
// question is relayed to the host's resolvers. The socket a query arrived on tells which network asked.
//
// Answers for a name the lookup knows (never sent upstream):
//   A (or ANY)        NOERROR + its addresses (TTL 600, as Docker), authoritative; none when lookup gives [] (NODATA:
//                     the name is ours, it just has no address now, e.g. its container is stopped)
//   AAAA, any other   NOERROR, no answers: no IPv6 here, so resolvers fall back to A at once
// A single-label name the lookup does not know is NXDOMAIN here (container names never leak upstream, as Docker);
// everything else is forwarded over UDP (TCP when the answer is truncated and the client asked over TCP) to each
// upstream in turn, ~2 s each; SERVFAIL when none answers. Negative answers carry no SOA, so nobody caches them:
// a container that appears later resolves at once.
import dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { errorMessage, logger } from '../../common/log.js';
import {
  CLASS_ANY,
  CLASS_IN,
  DnsFormatError,
  encodeResponse,
  HEADER_SIZE,
  ipv4Bytes,
  lowerAscii,
  nameText,
  parseHeader,
  parseMessage,
  parseQuestions,
  Rcode,
  RRType,
  type Answer,
  type Message,
  type Question,
  type Response,
} from './dns-message.js';
import type { DnsLookup } from './types.js';

const log = logger('dns');

const TTL = 600;
/** Plain DNS over UDP: 512 bytes at most each way unless EDNS0 says more (RFC 1035 §4.2.1, RFC 6891). */
const UDP_PLAIN_MAX = 512;
/** The largest UDP payload we accept or send, whatever a client's EDNS says. */
const UDP_EDNS_MAX = 4096;
/** What we advertise in our own OPT records (the DNS flag day 2020 value). */
const OUR_EDNS_SIZE = 1232;
/** Queries being forwarded at once, all clients together; more get SERVFAIL right away. */
const MAX_IN_FLIGHT = 256;
const MAX_TCP_CONNECTIONS = 128;
const TCP_IDLE_MS = 10_000;
const DEFAULT_UPSTREAM_TIMEOUT_MS = 2_000;

interface Upstream {
  host: string;
  port: number;
}

interface Listener {
  udp: dgram.Socket;
  tcp: net.Server;
  connections: Set<net.Socket>;
  closed: boolean;
}

type Reply = (msg: Buffer) => void;

export interface DnsServerOptions {
  /** "1.2.3.4", "1.2.3.4:5353", "::1", "[::1]:5353"; default: the nameservers of /etc/resolv.conf. */
  upstreams?: string[];
  /** Default 53 (tests use another). */
  port?: number;
  /** How long to wait for each upstream before trying the next; default 2 s. */
  upstreamTimeoutMs?: number;
}

export class DnsServer {
  private readonly upstreams: Upstream[];
  private readonly port: number;
  private readonly timeoutMs: number;
  private readonly listeners = new Map<string, Promise<Listener>>();
  /** Finishers of the upstream exchanges in progress: close() ends them all. */
  private readonly exchanges = new Set<() => void>();
  private inFlight = 0;
  private lastBusyWarning = 0;
  private closed = false;

  constructor(
    private readonly lookup: DnsLookup,
    opts: DnsServerOptions = {},
  ) {
    this.port = opts.port ?? 53;
    this.timeoutMs = opts.upstreamTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
    const specs = opts.upstreams ?? upstreamsFromResolvConf(readResolvConf());
    this.upstreams = specs.map(parseUpstream);
    if (this.upstreams.length === 0) log.warn('no upstream DNS servers: names that are not ours get SERVFAIL');
  }

  /** Serve DNS on gatewayIp (UDP and TCP). Idempotent; an Error saying so when the address or port cannot be bound. */
  async listen(gatewayIp: string): Promise<void> {
    if (this.closed) throw new Error('DNS server is closed');
    if (net.isIP(gatewayIp) === 0) throw new Error(`cannot serve DNS on "${gatewayIp}": not an IP address`);
    let pending = this.listeners.get(gatewayIp);
    if (!pending) {
      pending = this.bind(gatewayIp);
      this.listeners.set(gatewayIp, pending);
      pending.catch(() => this.listeners.delete(gatewayIp));
    }
    await pending;
  }

  async unlisten(gatewayIp: string): Promise<void> {
    const pending = this.listeners.get(gatewayIp);
    if (!pending) return;
    this.listeners.delete(gatewayIp);
    let l: Listener;
    try {
      l = await pending;
    } catch {
      return; // it never listened
    }
    l.closed = true;
    for (const c of l.connections) c.destroy();
    await Promise.all([
      new Promise<void>((resolve) => l.tcp.close(() => resolve())),
      new Promise<void>((resolve) => l.udp.close(() => resolve())),
    ]);
    log.debug(`stopped serving DNS on ${gatewayIp}:${this.port}`);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const finish of [...this.exchanges]) finish();
    await Promise.all([...this.listeners.keys()].map((ip) => this.unlisten(ip)));
  }

  // ------------------------------------------------------------------------------------------ sockets

  private async bind(ip: string): Promise<Listener> {
    const where = `${ip.includes(':') ? `[${ip}]` : ip}:${this.port}`;
    const udp = dgram.createSocket(net.isIPv6(ip) ? 'udp6' : 'udp4');
    const tcp = net.createServer();
    tcp.maxConnections = MAX_TCP_CONNECTIONS;
    const listener: Listener = { udp, tcp, connections: new Set(), closed: false };
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind({ address: ip, port: this.port, exclusive: true }, () => {
          udp.off('error', reject);
          resolve();
        });
      });
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ host: ip, port: this.port, exclusive: true }, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      tcp.close();
      try {
        udp.close();
      } catch {
        // never bound
      }
      throw new Error(`cannot serve DNS on ${where}: ${errorMessage(err)}`);
    }
    udp.on('error', (err) => log.warn(`DNS UDP socket on ${where}: ${errorMessage(err)}`));
    udp.on('message', (msg, rinfo) => {
      const reply: Reply = (answer) => {
        if (listener.closed) return;
        udp.send(answer, rinfo.port, rinfo.address, (err) => {
          if (err) log.debug(`DNS answer to ${rinfo.address}:${rinfo.port}: ${errorMessage(err)}`);
        });
      };
      void this.handle(msg, ip, rinfo.address, 'udp', reply);
    });
    tcp.on('error', (err) => log.warn(`DNS TCP server on ${where}: ${errorMessage(err)}`));
    tcp.on('connection', (conn) => this.serveConnection(conn, ip, listener));
    log.debug(`serving DNS on ${where}`);
    return listener;
  }

  /** DNS over TCP: each message has a 2-byte length in front (RFC 1035 §4.2.2); several may be in flight. */
  private serveConnection(conn: net.Socket, gatewayIp: string, l: Listener): void {
    l.connections.add(conn);
    const clientIp = conn.remoteAddress ?? '';
    let pending = Buffer.alloc(0);
    conn.setTimeout(TCP_IDLE_MS, () => conn.destroy());
    conn.on('error', (err) => log.debug(`DNS TCP connection from ${clientIp}: ${errorMessage(err)}`));
    conn.on('close', () => l.connections.delete(conn));
    const reply: Reply = (answer) => {
      if (conn.destroyed || !conn.writable) return;
      const len = Buffer.alloc(2);
      len.writeUInt16BE(answer.length);
      conn.write(Buffer.concat([len, answer]));
    };
    conn.on('data', (chunk) => {
      // At most one partial message (≤ 64 KiB) is ever kept: complete ones are handed on at once.
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= 2) {
        const len = pending.readUInt16BE(0);
        if (pending.length < 2 + len) break;
        const msg = pending.subarray(2, 2 + len);
        pending = pending.subarray(2 + len);
        void this.handle(msg, gatewayIp, clientIp, 'tcp', reply);
      }
    });
  }

  // ------------------------------------------------------------------------------------------ queries

  /** Never throws: whatever a client sends, the worst it gets is FORMERR, SERVFAIL or silence. */
  private async handle(
    raw: Buffer,
    gatewayIp: string,
    clientIp: string,
    transport: 'udp' | 'tcp',
    reply: Reply,
  ): Promise<void> {
    try {
      await this.answer(raw, gatewayIp, clientIp, transport, reply);
    } catch (err) {
      log.warn(`DNS query from ${clientIp}: ${errorMessage(err)}`);
    }
  }

  private async answer(
    raw: Buffer,
    gatewayIp: string,
    clientIp: string,
    transport: 'udp' | 'tcp',
    reply: Reply,
  ): Promise<void> {
    if (raw.length < HEADER_SIZE) return; // no id to answer to
    const header = parseHeader(raw);
    if (header.qr) return; // a response: answering it could start a loop
    let msg: Message;
    try {
      msg = parseMessage(raw);
    } catch (err) {
      if (!(err instanceof DnsFormatError)) throw err;
      log.debug(`malformed DNS query from ${clientIp}: ${err.message}`);
      reply(encodeResponse({ id: header.id, opcode: header.opcode, rd: header.rd, rcode: Rcode.FORMERR }));
      return;
    }
    // Without EDNS a UDP query (and its answer) is at most 512 bytes: a bigger one is not a resolver talking.
    if (transport === 'udp' && raw.length > UDP_PLAIN_MAX && !msg.edns) return;
    const maxSize =
      transport === 'tcp'
        ? 0xffff
        : Math.min(Math.max(msg.edns?.udpSize ?? UDP_PLAIN_MAX, UDP_PLAIN_MAX), UDP_EDNS_MAX);
    const question = msg.questions[0];
    const base = {
      id: header.id,
      opcode: header.opcode,
      rd: header.rd,
      ra: true,
      ednsUdpSize: msg.edns ? OUR_EDNS_SIZE : undefined,
    };
    const send = (r: LocalAnswer): void => reply(fitted({ ...base, ...r }, maxSize));
    if (header.opcode !== 0) return send({ rcode: Rcode.NOTIMP, question });
    if (msg.edns && msg.edns.version !== 0) return send({ rcode: Rcode.FORMERR, question }); // no BADVERS support
    if (!question || msg.questions.length !== 1) return send({ rcode: Rcode.FORMERR });

    const name = lowerAscii(nameText(question.labels));
    let addresses: string[] | undefined;
    try {
      addresses = name === '' ? undefined : this.lookup(gatewayIp, clientIp, name);
    } catch (err) {
      log.warn(`DNS lookup of ${name} for ${clientIp}: ${errorMessage(err)}`);
      return send({ rcode: Rcode.SERVFAIL, question });
    }
    if (addresses) {
      const wantsA = (question.type === RRType.A || question.type === RRType.ANY) && isInClass(question);
      const answers: Answer[] = wantsA ? addresses.map((a) => ({ type: RRType.A, ttl: TTL, data: ipv4Bytes(a) })) : [];
      log.debug(`DNS ${name} type ${question.type} for ${clientIp} on ${gatewayIp}: ${answers.length} answers`);
      return send({ rcode: Rcode.NOERROR, aa: true, question, answers });
    }
    if (question.labels.length === 1) return send({ rcode: Rcode.NXDOMAIN, question });

    const upstreamAnswer = await this.forward(raw, question, transport);
    if (!upstreamAnswer) {
      log.debug(`DNS ${name} type ${question.type} for ${clientIp}: no upstream answered`);
      return send({ rcode: Rcode.SERVFAIL, question });
    }
    upstreamAnswer.writeUInt16BE(header.id, 0); // relayed as is, with the client's id
    if (upstreamAnswer.length > maxSize) {
      // The upstream ignored the client's size: tell the client to ask again over TCP.
      return send({ rcode: parseHeader(upstreamAnswer).rcode, question, tc: true });
    }
    reply(upstreamAnswer);
  }

  // ------------------------------------------------------------------------------------------ upstreams

  /** The upstreams' answer to `query` (a copy of it, with an id of our own), or undefined when none answers. */
  private async forward(query: Buffer, question: Question, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    if (this.inFlight >= MAX_IN_FLIGHT) {
      if (Date.now() - this.lastBusyWarning > 10_000) {
        this.lastBusyWarning = Date.now();
        log.warn(`DNS: ${MAX_IN_FLIGHT} queries already being forwarded, answering SERVFAIL to more`);
      }
      return undefined;
    }
    this.inFlight++;
    try {
      for (const up of this.upstreams) {
        if (this.closed) return undefined;
        if (up.port === this.port && this.listeners.has(up.host)) continue; // ourselves: a loop
        const ask = Buffer.from(query);
        const id = randomInt(0x10000); // unguessable, so an off-path answer is hard to spoof
        ask.writeUInt16BE(id, 0);
        let answer = await this.askUdp(up, ask, id, question);
        if (answer && transport === 'tcp' && parseHeader(answer).tc) {
          answer = (await this.askTcp(up, ask, id, question)) ?? answer;
        }
        if (answer) return answer;
      }
      return undefined;
    } finally {
      this.inFlight--;
    }
  }

  /** One exchange with an upstream, ended by its answer, the timeout, an error or close(). */
  private exchange(up: Upstream, start: (done: (answer?: Buffer) => void) => () => void): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      let cleanup: () => void = () => {};
      const finish = (answer?: Buffer): void => {
        if (!this.exchanges.delete(finish)) return; // already finished
        clearTimeout(timer);
        cleanup();
        resolve(answer);
      };
      this.exchanges.add(finish);
      const timer = setTimeout(() => {
        log.debug(`DNS upstream ${up.host}:${up.port} did not answer in ${this.timeoutMs} ms`);
        finish();
      }, this.timeoutMs);
      cleanup = start(finish);
    });
  }

  private askUdp(up: Upstream, query: Buffer, id: number, question: Question): Promise<Buffer | undefined> {
    return this.exchange(up, (done) => {
      const sock = dgram.createSocket(net.isIPv6(up.host) ? 'udp6' : 'udp4');
      sock.on('error', (err) => {
        // A connected socket hears ICMP port unreachable: a dead upstream is skipped at once.
        log.debug(`DNS upstream ${up.host}:${up.port}: ${errorMessage(err)}`);
        done();
      });
      sock.on('message', (msg) => {
        if (answers(msg, id, question)) done(msg);
      });
      sock.connect(up.port, up.host, () => sock.send(query, (err) => err && done()));
      return () => {
        try {
          sock.close();
        } catch {
          // already closed
        }
      };
    });
  }

  private askTcp(up: Upstream, query: Buffer, id: number, question: Question): Promise<Buffer | undefined> {
    return this.exchange(up, (done) => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      const conn = net.connect({ host: up.host, port: up.port }, () => conn.write(Buffer.concat([len, query])));
      let got = Buffer.alloc(0);
      conn.on('error', (err) => {
        log.debug(`DNS upstream ${up.host}:${up.port} over TCP: ${errorMessage(err)}`);
        done();
      });
      conn.on('close', () => done());
      conn.on('data', (chunk) => {
        got = Buffer.concat([got, chunk]);
        if (got.length < 2) return;
        const size = got.readUInt16BE(0);
        if (got.length < 2 + size) return;
        const msg = Buffer.from(got.subarray(2, 2 + size));
        done(answers(msg, id, question) ? msg : undefined);
      });
      return () => conn.destroy();
    });
  }
}

type LocalAnswer = {
  rcode: number;
  aa?: boolean;
  tc?: boolean;
  question?: Question;
  answers?: Answer[];
};

/** Our answer, or when it is too big for the client, the same without records and with TC set. */
function fitted(r: Response, maxSize: number): Buffer {
  const full = encodeResponse(r);
  if (full.length <= maxSize) return full;
  return encodeResponse({ ...r, answers: [], tc: true });
}

function isInClass(q: Question): boolean {
  return q.class === CLASS_IN || q.class === CLASS_ANY;
}

/** Is `msg` the answer to our query `id` about `question`? Anything else on the socket is ignored. */
function answers(msg: Buffer, id: number, question: Question): boolean {
  try {
    const { header, questions } = parseQuestions(msg);
    if (!header.qr || header.id !== id) return false;
    const q = questions[0];
    if (!q) return header.rcode !== Rcode.NOERROR; // an error answer may leave the question out
    return (
      questions.length === 1 &&
      q.type === question.type &&
      q.class === question.class &&
      lowerAscii(nameText(q.labels)) === lowerAscii(nameText(question.labels))
    );
  } catch {
    return false;
  }
}

function readResolvConf(): string {
  try {
    return readFileSync('/etc/resolv.conf', 'utf8');
  } catch (err) {
    log.warn(`cannot read /etc/resolv.conf: ${errorMessage(err)}`);
    return '';
  }
}

/** The `nameserver` addresses of a resolv.conf, in order, without duplicates (IPv6 zone ids kept). */
export function upstreamsFromResolvConf(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const words = line
      .replace(/[#;].*/, '')
      .trim()
      .split(/\s+/);
    if (words[0] !== 'nameserver' || !words[1]) continue;
    const addr = words[1];
    if (net.isIP(addr.replace(/%.*/, '')) === 0) continue;
    if (!out.includes(addr)) out.push(addr);
  }
  return out;
}

/** "1.2.3.4", "1.2.3.4:5353", "::1", "fe80::1%eth0", "[::1]:5353" → host and port (53 by default). */
function parseUpstream(spec: string): Upstream {
  let host = spec;
  let port = 53;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(spec);
  const v4WithPort = /^([\d.]+):(\d+)$/.exec(spec);
  if (bracketed) {
    host = bracketed[1]!;
    if (bracketed[2]) port = Number(bracketed[2]);
  } else if (v4WithPort) {
    host = v4WithPort[1]!;
    port = Number(v4WithPort[2]);
  }
  if (net.isIP(host.replace(/%.*/, '')) === 0 || !(port > 0 && port < 0x10000)) {
    throw new Error(`invalid upstream DNS server "${spec}"`);
  }
  return { host, port };
}
