// networks/dns.ts and dns-message.ts: the embedded DNS server over real UDP and TCP sockets on loopback addresses,
// with tiny real upstreams made here (one that answers, one that refuses, one that never answers), hostile packets,
// and busybox's resolver talking to it on port 53 inside a fresh network namespace.
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { promises as dns } from 'node:dns';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DnsFormatError,
  nameText,
  parseMessage,
  readName,
  Rcode,
  RRType,
  type Message,
} from '../../vm-agent/daemon/networks/dns-message.js';
import { DnsServer, upstreamsFromResolvConf } from '../../vm-agent/daemon/networks/dns.js';

const run = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '../..');

// Random loopback addresses, so parallel runs and other services on the host do not collide with us.
const octet = (): number => 2 + Math.floor(Math.random() * 250);
const net127 = `127.${53 + Math.floor(Math.random() * 100)}.${octet()}`;
const GATEWAY = `${net127}.1`;
const CLIENT = `${net127}.9`;
const UPSTREAM = `${net127}.20`;
const SILENT = `${net127}.21`;
const PORT = 15353;

// ---------------------------------------------------------------------------------------------- query building
// Built by hand here, not with the module's encoder, so the encoder and the parser are checked against something.

function labels(name: string): Buffer {
  const parts = name
    .replace(/\.$/, '')
    .split('.')
    .filter((p) => p !== '');
  return Buffer.concat([
    ...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p)])),
    Buffer.from([0]),
  ]);
}

function query(name: string, type: number, opts: { id?: number; ednsSize?: number } = {}): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(opts.id ?? 0x1234, 0);
  head.writeUInt16BE(0x0100, 2); // RD
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(opts.ednsSize ? 1 : 0, 10);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(type, 0);
  tail.writeUInt16BE(1, 2);
  const parts = [head, labels(name), tail];
  if (opts.ednsSize) {
    const opt = Buffer.alloc(11);
    opt.writeUInt16BE(41, 1);
    opt.writeUInt16BE(opts.ednsSize, 3);
    parts.push(opt);
  }
  return Buffer.concat(parts);
}

function udpAsk(msg: Buffer, to = GATEWAY, port = PORT, timeoutMs = 3000): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      sock.close();
      resolve(undefined);
    }, timeoutMs);
    sock.on('error', (err) => {
      clearTimeout(timer);
      sock.close();
      reject(err);
    });
    sock.on('message', (m) => {
      clearTimeout(timer);
      sock.close();
      resolve(m);
    });
    sock.bind({ address: CLIENT }, () => sock.send(msg, port, to));
  });
}

function tcpAsk(msgs: Buffer[], to = GATEWAY, port = PORT): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const conn = net.connect({ host: to, port, localAddress: CLIENT });
    let got = Buffer.alloc(0);
    const out: Buffer[] = [];
    conn.on('connect', () => {
      for (const m of msgs) {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(m.length);
        conn.write(Buffer.concat([len, m]));
      }
    });
    conn.on('data', (chunk) => {
      got = Buffer.concat([got, chunk]);
      while (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        out.push(got.subarray(2, 2 + got.readUInt16BE(0)));
        got = got.subarray(2 + got.readUInt16BE(0));
      }
      if (out.length === msgs.length) {
        conn.end();
        resolve(out);
      }
    });
    conn.on('error', reject);
  });
}

async function ask(name: string, type: number, opts: { id?: number; ednsSize?: number } = {}): Promise<Message> {
  const answer = await udpAsk(query(name, type, opts));
  if (!answer) throw new Error(`no answer for ${name}`);
  return parseMessage(answer);
}

const aRecords = (m: Message): string[] =>
  m.answers.filter((r) => r.type === RRType.A).map((r) => [...r.data].join('.'));

// ---------------------------------------------------------------------------------------------- the setup

const big = Array.from({ length: 60 }, (_, i) => `10.221.4.${i + 2}`);
const names: Record<string, string[]> = {
  web: ['10.221.3.2'],
  'db.internal': ['10.221.3.3', '10.221.3.4'],
  stopped: [],
  big,
};
const lookups: Array<[string, string, string]> = [];
const lookup = (gw: string, client: string, name: string): string[] | undefined => {
  lookups.push([gw, client, name]);
  if (name === 'boom') throw new Error('lookup failed');
  return names[name];
};

/** Questions the upstreams were asked, by name: container names must never be among them. */
const upstreamSaw: string[] = [];
let upstream: dgram.Socket;
let upstreamTcp: net.Server;
let silent: dgram.Socket;
let server: DnsServer;

/** The upstream's answer: the query with QR/RA set and one A record 203.0.113.7 (TC set for *.trunc names). */
function upstreamAnswer(q: Buffer, truncate: boolean): Buffer {
  const m = parseMessage(q);
  upstreamSaw.push(nameText(m.questions[0]!.labels));
  const qEnd = 12 + labels(nameText(m.questions[0]!.labels)).length + 4;
  const head = Buffer.from(q.subarray(0, 12));
  head.writeUInt16BE(0x8180 | (truncate ? 0x0200 : 0), 2);
  head.writeUInt16BE(truncate ? 0 : 1, 6);
  head.writeUInt16BE(0, 10);
  const rr = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 203, 0, 113, 7]);
  return Buffer.concat([head, q.subarray(12, qEnd), truncate ? Buffer.alloc(0) : rr]);
}

async function bindUdp(address: string, port: number): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind({ address, port }, resolve));
  return s;
}

beforeAll(async () => {
  upstream = await bindUdp(UPSTREAM, 5300);
  upstream.on('message', (q, rinfo) => {
    const name = nameText(parseMessage(q).questions[0]!.labels);
    upstream.send(upstreamAnswer(q, name.endsWith('.trunc')), rinfo.port, rinfo.address);
  });
  upstreamTcp = net.createServer((conn) => {
    conn.on('data', (chunk) => {
      const a = upstreamAnswer(chunk.subarray(2), false);
      const len = Buffer.alloc(2);
      len.writeUInt16BE(a.length);
      conn.write(Buffer.concat([len, a]));
    });
  });
  await new Promise<void>((resolve) => upstreamTcp.listen(5300, UPSTREAM, resolve));
  silent = await bindUdp(SILENT, 5300); // takes queries, never answers
  server = new DnsServer(lookup, {
    port: PORT,
    upstreams: [`${SILENT}:5300`, `${UPSTREAM}:5300`],
    upstreamTimeoutMs: 300,
  });
  await server.listen(GATEWAY);
});

afterAll(async () => {
  await server?.close();
  upstream?.close();
  silent?.close();
  upstreamTcp?.close();
});

// ---------------------------------------------------------------------------------------------- tests

describe('names the network knows', () => {
  it('answers A with its addresses, authoritative, TTL 600, the question echoed as asked', async () => {
    lookups.length = 0;
    const m = await ask('WeB', RRType.A, { id: 0xbeef });
    expect(m.header).toMatchObject({ id: 0xbeef, qr: true, aa: true, rd: true, ra: true, rcode: Rcode.NOERROR });
    expect(nameText(m.questions[0]!.labels)).toBe('WeB');
    expect(aRecords(m)).toEqual(['10.221.3.2']);
    expect(m.answers[0]!.ttl).toBe(600);
    expect(nameText(m.answers[0]!.labels)).toBe('WeB');
    expect(lookups).toEqual([[GATEWAY, CLIENT, 'web']]);
    expect(aRecords(await ask('db.internal.', RRType.A))).toEqual(['10.221.3.3', '10.221.3.4']);
  });

  it('answers AAAA and other types with NOERROR and nothing, and [] with NODATA, never asking upstream', async () => {
    upstreamSaw.length = 0;
    for (const [name, type] of [
      ['web', RRType.AAAA],
      ['web', 15 /* MX */],
      ['db.internal', RRType.TXT],
      ['stopped', RRType.A],
    ] as const) {
      const m = await ask(name, type);
      expect(m.header.rcode).toBe(Rcode.NOERROR);
      expect(m.header.aa).toBe(true);
      expect(m.answers).toEqual([]);
    }
    expect(upstreamSaw).toEqual([]);
  });

  it('says NXDOMAIN for an unknown single-label name instead of forwarding it', async () => {
    upstreamSaw.length = 0;
    const m = await ask('nosuchcontainer', RRType.A);
    expect(m.header.rcode).toBe(Rcode.NXDOMAIN);
    expect(upstreamSaw).toEqual([]);
  });

  it('answers SERVFAIL when the lookup throws', async () => {
    expect((await ask('boom', RRType.A)).header.rcode).toBe(Rcode.SERVFAIL);
  });

  it('sets TC on UDP when the answer is over 512 bytes, and answers in full over TCP or with EDNS', async () => {
    const udp = await ask('big', RRType.A);
    expect(udp.header.tc).toBe(true);
    expect(udp.answers).toEqual([]);
    const edns = await ask('big', RRType.A, { ednsSize: 4096 });
    expect(edns.header.tc).toBe(false);
    expect(aRecords(edns)).toEqual(big);
    expect(edns.edns).toEqual({ udpSize: 1232, version: 0 });
    const [tcp] = await tcpAsk([query('big', RRType.A)]);
    expect(aRecords(parseMessage(tcp!))).toEqual(big);
  });

  it('answers several pipelined queries on one TCP connection', async () => {
    const answers = (await tcpAsk([query('web', RRType.A, { id: 1 }), query('db.internal', RRType.A, { id: 2 })])).map(
      (b) => parseMessage(b),
    );
    const byId = new Map(answers.map((m) => [m.header.id, aRecords(m)]));
    expect(byId.get(1)).toEqual(['10.221.3.2']);
    expect(byId.get(2)).toEqual(['10.221.3.3', '10.221.3.4']);
  });
});

describe('forwarding', () => {
  it('relays the upstream answer with the client id, past a silent upstream', async () => {
    upstreamSaw.length = 0;
    const started = Date.now();
    const m = await ask('example.com', RRType.A, { id: 0x4242 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250); // it waited for the silent one first
    expect(m.header).toMatchObject({ id: 0x4242, rcode: Rcode.NOERROR, aa: false });
    expect(aRecords(m)).toEqual(['203.0.113.7']);
    expect(m.answers[0]!.ttl).toBe(3600);
    expect(upstreamSaw).toEqual(['example.com']);
  });

  it('forwards over TCP when a TCP client gets a truncated UDP answer', async () => {
    const [udpOnly] = [await ask('x.trunc', RRType.A)];
    expect(udpOnly.header.tc).toBe(true); // a UDP client gets the truncated answer as is
    const [tcp] = await tcpAsk([query('x.trunc', RRType.A, { id: 7 })]);
    const m = parseMessage(tcp!);
    expect(m.header).toMatchObject({ id: 7, tc: false });
    expect(aRecords(m)).toEqual(['203.0.113.7']);
  });

  it('skips a refusing upstream at once and answers SERVFAIL when none answers', async () => {
    // Nothing listens on port 5301: the connected socket hears ICMP port unreachable, no 2 s wait.
    const lonely = new DnsServer(lookup, { port: PORT, upstreams: [`${UPSTREAM}:5301`, `${UPSTREAM}:5300`] });
    const dead = new DnsServer(lookup, {
      port: PORT,
      upstreams: [`${UPSTREAM}:5301`, `${SILENT}:5300`],
      upstreamTimeoutMs: 200,
    });
    await lonely.listen(`${net127}.2`);
    await dead.listen(`${net127}.3`);
    try {
      let started = Date.now();
      const ok = parseMessage((await udpAsk(query('example.org', RRType.A), `${net127}.2`))!);
      expect(aRecords(ok)).toEqual(['203.0.113.7']);
      expect(Date.now() - started).toBeLessThan(1000);
      started = Date.now();
      const fail = parseMessage((await udpAsk(query('example.org', RRType.A, { id: 9 }), `${net127}.3`))!);
      expect(fail.header).toMatchObject({ id: 9, rcode: Rcode.SERVFAIL });
      expect(nameText(fail.questions[0]!.labels)).toBe('example.org');
    } finally {
      await lonely.close();
      await dead.close();
    }
  });

  it('reads the nameservers of a resolv.conf', () => {
    const text = [
      '# generated',
      'nameserver 127.0.0.53',
      'nameserver   10.0.0.1  # office',
      'search example.com',
      'nameserver fe80::1%eth0',
      ';nameserver 9.9.9.9',
      'nameserver 10.0.0.1',
      'nameserver not-an-ip',
      'options edns0',
    ].join('\n');
    expect(upstreamsFromResolvConf(text)).toEqual(['127.0.0.53', '10.0.0.1', 'fe80::1%eth0']);
    expect(upstreamsFromResolvConf('')).toEqual([]);
  });
});

describe('hostile packets', () => {
  const header = (qdcount: number, ancount = 0): Buffer => {
    const h = Buffer.alloc(12);
    h.writeUInt16BE(0x6666, 0);
    h.writeUInt16BE(0x0100, 2);
    h.writeUInt16BE(qdcount, 4);
    h.writeUInt16BE(ancount, 6);
    return h;
  };
  const typeClass = Buffer.from([0, 1, 0, 1]);

  it('answers FORMERR to pointer loops, labels over 63, truncated questions and bad counts', async () => {
    const cases = {
      'self pointer': Buffer.concat([header(1), Buffer.from([0xc0, 12]), typeClass]),
      'forward pointer': Buffer.concat([header(1), Buffer.from([0xc0, 14, 1, 0x61, 0]), typeClass]),
      'two-step loop': Buffer.concat([header(1), Buffer.from([1, 0x61, 0xc0, 12]), typeClass]),
      'label byte 64': Buffer.concat([
        header(1),
        Buffer.from([64]),
        Buffer.alloc(64, 0x61),
        Buffer.from([0]),
        typeClass,
      ]),
      'label byte 0x80': Buffer.concat([header(1), Buffer.from([0x80, 0x61, 0]), typeClass]),
      'name past the end': Buffer.concat([header(1), Buffer.from([10, 0x61, 0x62])]),
      'no type and class': Buffer.concat([header(1), labels('web')]),
      'answer count with no answers': Buffer.concat([header(1, 40), labels('web'), typeClass]),
      'two questions': Buffer.concat([header(2), labels('web'), typeClass, labels('web'), typeClass]),
      'no question': header(0),
      'name over 255 bytes': Buffer.concat([header(1), labels(Array(5).fill('a'.repeat(60)).join('.')), typeClass]),
    };
    for (const [what, packet] of Object.entries(cases)) {
      const answer = await udpAsk(packet);
      expect(answer, what).toBeDefined();
      const h = parseMessage(answer!).header;
      expect({ what, id: h.id, rcode: h.rcode }).toEqual({ what, id: 0x6666, rcode: Rcode.FORMERR });
    }
  });

  it('ignores short packets, responses and oversized UDP without EDNS, and still answers afterwards', async () => {
    expect(await udpAsk(Buffer.from([1, 2, 3, 4, 5]), GATEWAY, PORT, 300)).toBeUndefined();
    const response = query('web', RRType.A);
    response[2] = response[2]! | 0x80;
    expect(await udpAsk(response, GATEWAY, PORT, 300)).toBeUndefined();
    const oversized = Buffer.concat([query('web', RRType.A), Buffer.alloc(600)]);
    expect(await udpAsk(oversized, GATEWAY, PORT, 300)).toBeUndefined();
    expect(aRecords(await ask('web', RRType.A))).toEqual(['10.221.3.2']);
  });

  it('survives a burst of random and mutated packets over UDP and TCP', async () => {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => sock.bind({ address: CLIENT }, resolve));
    const valid = query('web', RRType.A);
    for (let i = 0; i < 3000; i++) {
      let p: Buffer;
      if (i % 2) {
        p = Buffer.from(valid);
        for (let k = 0; k < 3; k++) p[Math.floor(Math.random() * p.length)] = Math.floor(Math.random() * 256);
      } else {
        p = Buffer.alloc(Math.floor(Math.random() * 80));
        for (let k = 0; k < p.length; k++) p[k] = Math.floor(Math.random() * 256);
        if (p.length > 4) p[2] = p[2]! & 0x7f; // a query, so the server really parses it
      }
      sock.send(p, PORT, GATEWAY);
    }
    sock.close();
    const garbage = net.connect({ host: GATEWAY, port: PORT });
    await new Promise<void>((resolve) => garbage.on('connect', resolve));
    garbage.write(Buffer.from([0, 5, 1, 2, 3, 4, 5, 0xff, 0xff, 1, 2]));
    garbage.destroy();
    await new Promise((resolve) => setTimeout(resolve, 1000)); // forwards of mutated names time out (300 ms)
    expect(aRecords(await ask('web', RRType.A))).toEqual(['10.221.3.2']);
    const [tcp] = await tcpAsk([query('web', RRType.A)]);
    expect(aRecords(parseMessage(tcp!))).toEqual(['10.221.3.2']);
  });

  it('reads valid compression and rejects loops in the parser itself', () => {
    // "a.example" at 12, then "b" + pointer to "example" at 14, then at 27 a pointer to that name at 23.
    const msg = Buffer.concat([
      header(0),
      labels('a.example'),
      Buffer.from([1, 0x62, 0xc0, 14]),
      Buffer.from([0xc0, 23]),
    ]);
    expect(nameText(readName(msg, 23).labels)).toBe('b.example');
    expect(readName(msg, 23).end).toBe(27);
    expect(nameText(readName(msg, 27).labels)).toBe('b.example');
    expect(readName(msg, 27).end).toBe(29);
    const loop = Buffer.concat([header(0), Buffer.from([1, 0x61, 0xc0, 14])]);
    expect(() => readName(loop, 12)).toThrow(DnsFormatError);
  });
});

describe('sockets', () => {
  it('fails with a clear error when it cannot bind, and frees the port on unlisten', async () => {
    const other = new DnsServer(lookup, { port: PORT, upstreams: [] });
    await expect(other.listen(GATEWAY)).rejects.toThrow(`cannot serve DNS on ${GATEWAY}:${PORT}: `);
    await expect(other.listen('192.0.2.1')).rejects.toThrow(/cannot serve DNS on 192\.0\.2\.1:15353: .*EADDRNOTAVAIL/);
    await expect(other.listen('nonsense')).rejects.toThrow('not an IP address');
    const ip = `${net127}.4`;
    await other.listen(ip);
    await other.listen(ip); // idempotent
    expect(aRecords(parseMessage((await udpAsk(query('web', RRType.A), ip))!))).toEqual(['10.221.3.2']);
    await other.unlisten(ip);
    expect(await udpAsk(query('web', RRType.A), ip, PORT, 300)).toBeUndefined();
    const again = await bindUdp(ip, PORT); // both ports are free again
    again.close();
    const tcp = net.createServer();
    await new Promise<void>((resolve) => tcp.listen(PORT, ip, resolve));
    await new Promise((resolve) => tcp.close(resolve));
    await other.close();
  });
});

describe('a real resolver', () => {
  it("Node's c-ares resolver gets local names, forwarded names, NODATA and NXDOMAIN", async () => {
    const resolver = new dns.Resolver({ timeout: 3000, tries: 1 });
    resolver.setServers([`${GATEWAY}:${PORT}`]);
    expect(await resolver.resolve4('web', { ttl: true })).toEqual([{ address: '10.221.3.2', ttl: 600 }]);
    expect((await resolver.resolve4('db.internal')).sort()).toEqual(['10.221.3.3', '10.221.3.4']);
    expect(await resolver.resolve4('www.example.net')).toEqual(['203.0.113.7']);
    await expect(resolver.resolve6('web')).rejects.toMatchObject({ code: 'ENODATA' });
    await expect(resolver.resolve4('nosuch')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('busybox nslookup gets container names and NXDOMAIN from it on port 53 (in a fresh netns)', async () => {
    const dnsModule = path.join(repoRoot, 'vm-agent/daemon/networks/dns.ts');
    const script = `
      import { execFileSync } from 'node:child_process';
      import { DnsServer } from ${JSON.stringify(dnsModule)};
      execFileSync('ip', ['link', 'set', 'lo', 'up']);
      const names = { web: ['10.221.3.2'], 'db.internal': ['10.221.3.3'] };
      const server = new DnsServer((gw, client, name) => names[name], { upstreams: [] });
      await server.listen('127.0.0.1');
      const { execFile } = await import('node:child_process');
      const nslookup = (name) => new Promise((resolve) =>
        execFile('/bin/busybox', ['nslookup', name, '127.0.0.1'], { timeout: 10000 }, (err, stdout, stderr) =>
          resolve({ code: err ? err.code ?? 'error' : 0, out: stdout + stderr })));
      const results = {};
      for (const name of ['web', 'db.internal', 'nosuch']) results[name] = await nslookup(name);
      await server.close();
      process.stdout.write(JSON.stringify(results));
    `;
    const { stdout } = await run(
      'unshare',
      ['-n', process.execPath, '--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: repoRoot, timeout: 60_000 },
    );
    const results = JSON.parse(stdout) as Record<string, { code: number | string; out: string }>;
    expect(results.web!.code).toBe(0);
    expect(results.web!.out).toMatch(/Name:\s+web\s+Address:\s+10\.221\.3\.2/);
    expect(results['db.internal']!.out).toMatch(/Name:\s+db\.internal\s+Address:\s+10\.221\.3\.3/);
    expect(results.nosuch!.code).not.toBe(0);
    expect(results.nosuch!.out).toContain("can't find nosuch: NXDOMAIN");
  });
});
