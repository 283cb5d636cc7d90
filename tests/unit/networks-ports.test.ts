// Published ports: wantedPorts (HostConfig.PortBindings / PublishAllPorts, dockerd's 400s) and PortReservations
// with real sockets on 127.0.0.1 (a port held by someone else, ranges, ephemeral ports, all or nothing,
// restore after a restart).
import { createSocket } from 'node:dgram';
import { createConnection, createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DockerError } from '../../vm-agent/daemon/contracts.js';
import { PortReservations, wantedPorts, type WantedPort } from '../../vm-agent/daemon/networks/ports.js';

function errorOf(f: () => unknown): DockerError {
  try {
    f();
  } catch (e) {
    if (e instanceof DockerError) return e;
    throw e;
  }
  throw new Error('no error thrown');
}

const w = (privatePort: number, hostPortFrom: number, hostPortTo = hostPortFrom, more: Partial<WantedPort> = {}) =>
  ({ privatePort, protocol: 'tcp', hostIp: '0.0.0.0', hostPortFrom, hostPortTo, ...more }) as WantedPort;

describe('wantedPorts', () => {
  it('reads PortBindings: host ports, ranges, ephemeral, host addresses, protocols', () => {
    const hc = {
      PortBindings: {
        '80/tcp': [{ HostIp: '', HostPort: '8080' }],
        '53/udp': [{ HostIp: '127.0.0.1', HostPort: '' }],
        '443': [{ HostPort: '8000-8010' }],
        '9/sctp': [{ HostIp: '0.0.0.0', HostPort: '0' }],
      },
    };
    expect(wantedPorts(hc, [])).toEqual([
      w(9, 0, 0, { protocol: 'sctp' }),
      w(53, 0, 0, { protocol: 'udp', hostIp: '127.0.0.1' }),
      w(80, 8080),
      w(443, 8000, 8010),
    ]);
  });

  it('one container port may be published several times; exact duplicates count once', () => {
    const hc = {
      PortBindings: {
        '80/tcp': [
          { HostIp: '', HostPort: '8080' },
          { HostIp: '127.0.0.1', HostPort: '8081' },
          { HostIp: '0.0.0.0', HostPort: '8080' },
        ],
        '80': [{ HostPort: '8080' }],
      },
    };
    expect(wantedPorts(hc, [])).toEqual([w(80, 8080), w(80, 8081, 8081, { hostIp: '127.0.0.1' })]);
  });

  it('without PublishAllPorts, exposed ports and empty bindings publish nothing', () => {
    expect(wantedPorts({ PortBindings: { '80/tcp': [], '81/tcp': null } }, ['80/tcp', '90/udp'])).toEqual([]);
    expect(wantedPorts({}, ['80/tcp'])).toEqual([]);
    expect(wantedPorts({ PortBindings: null }, [])).toEqual([]);
  });

  it('PublishAllPorts: every exposed port and every binding key without a host port gets an ephemeral port', () => {
    const hc = {
      PublishAllPorts: true,
      PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '8080' }], '81/tcp': [] },
    };
    expect(wantedPorts(hc, ['80/tcp', '90/udp', '7000-7001/tcp'])).toEqual([
      w(80, 8080),
      w(81, 0),
      w(90, 0, 0, { protocol: 'udp' }),
      w(7000, 0),
      w(7001, 0),
    ]);
  });

  it('IPv6 host addresses: skipped beside an IPv4 binding, else 501', () => {
    const dual = {
      PortBindings: {
        '80/tcp': [
          { HostIp: '0.0.0.0', HostPort: '8080' },
          { HostIp: '::', HostPort: '8080' },
        ],
      },
    };
    expect(wantedPorts(dual, [])).toEqual([w(80, 8080)]);
    const only6 = { PortBindings: { '80/tcp': [{ HostIp: '::1', HostPort: '8080' }] } };
    const e = errorOf(() => wantedPorts(only6, []));
    expect([e.status, e.message]).toEqual([501, 'IPv6 port bindings are not supported yet']);
  });

  it("refuses bad input with dockerd's 400", () => {
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ PortBindings: { '0/tcp': [] } }, 'invalid port specification: "0/tcp"'],
      [{ PortBindings: { '70000/tcp': [] } }, 'invalid port specification: "70000/tcp"'],
      [{ PortBindings: { 'abc/tcp': [] } }, 'invalid port specification: "abc/tcp"'],
      [{ PortBindings: { '80-81/tcp': [] } }, 'invalid port specification: "80-81/tcp"'],
      [{ PortBindings: { '80/icmp': [] } }, 'invalid port specification: "80/icmp"'],
      [{ PortBindings: { '80/tcp': [{ HostPort: 'http' }] } }, 'invalid port specification: "http"'],
      [{ PortBindings: { '80/tcp': [{ HostPort: '65536' }] } }, 'invalid port specification: "65536"'],
      [{ PortBindings: { '80/tcp': [{ HostPort: '8010-8000' }] } }, 'invalid port specification: "8010-8000"'],
      [{ PortBindings: { '80/tcp': [{ HostPort: '-1' }] } }, 'invalid port specification: "-1"'],
      [{ PortBindings: { '80/tcp': [{ HostIp: '1.2.3', HostPort: '80' }] } }, 'invalid IP address: 1.2.3'],
      [{ PortBindings: { '80/tcp': [{ HostIp: 'localhost', HostPort: '80' }] } }, 'invalid IP address: localhost'],
      [{ PublishAllPorts: true }, 'invalid port specification: "x/tcp"'],
    ];
    for (const [hc, msg] of bad) {
      const e = errorOf(() => wantedPorts(hc, hc.PublishAllPorts ? ['x/tcp'] : []));
      expect([e.status, e.message], JSON.stringify(hc)).toEqual([400, msg]);
    }
  });
});

// ---------------------------------------------------------------------------------------------- reservations

const others: Server[] = [];
let res = new PortReservations();

afterEach(async () => {
  await res.closeAll();
  res = new PortReservations();
  await Promise.all(others.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** Someone else (not the reservations) listening on 127.0.0.1:port; port 0 picks one. */
function holdElsewhere(port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    others.push(s);
    s.once('error', reject);
    s.listen({ host: '127.0.0.1', port }, () => resolve((s.address() as { port: number }).port));
  });
}

/** A port that is free now (bound and closed again). */
async function freePort(): Promise<number> {
  const p = await holdElsewhere();
  await new Promise((r) => others.pop()!.close(r));
  return p;
}

/** Whether another process-level bind of 127.0.0.1:port (tcp) fails with EADDRINUSE now. */
function tcpTaken(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', (e: NodeJS.ErrnoException) => (e.code === 'EADDRINUSE' ? resolve(true) : reject(e)));
    s.listen({ host, port }, () => s.close(() => resolve(false)));
  });
}

function udpTaken(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', (e: NodeJS.ErrnoException) => (e.code === 'EADDRINUSE' ? resolve(true) : reject(e)));
    s.bind({ address: '127.0.0.1', port }, () => s.close(() => resolve(false)));
  });
}

/** The DockerError a reserve fails with (a test failure when it succeeds). */
async function failure(p: Promise<unknown>): Promise<DockerError> {
  const e = await p.then(
    () => new Error('reserve succeeded'),
    (err: unknown) => err,
  );
  if (!(e instanceof DockerError)) throw e;
  return e;
}

const lo = (privatePort: number, from: number, to = from, protocol: WantedPort['protocol'] = 'tcp') =>
  w(privatePort, from, to, { hostIp: '127.0.0.1', protocol });

describe('PortReservations', () => {
  it('binds the exact port and keeps it until release', async () => {
    const port = await freePort();
    const got = await res.reserve('c1', 'web', [lo(80, port), lo(53, port, port, 'udp')]);
    expect(got).toEqual([
      { privatePort: 80, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: port },
      { privatePort: 53, protocol: 'udp', hostIp: '127.0.0.1', hostPort: port },
    ]);
    expect(await tcpTaken(port)).toBe(true);
    expect(await udpTaken(port)).toBe(true);
    expect(res.of('c1')).toEqual(got);
    await res.release('c1');
    expect(await tcpTaken(port)).toBe(false);
    expect(await udpTaken(port)).toBe(false);
    expect(res.of('c1')).toEqual([]);
  });

  it('the held socket accepts nothing by itself: a stray connection is closed at once', async () => {
    const port = await freePort();
    await res.reserve('c1', 'web', [lo(80, port)]);
    const closed = await new Promise<boolean>((resolve) => {
      const c = createConnection({ host: '127.0.0.1', port });
      c.on('error', () => resolve(true));
      c.on('close', () => resolve(true));
      setTimeout(() => resolve(false), 3000);
    });
    expect(closed).toBe(true);
  });

  it("a port someone else holds fails with dockerd's message and leaves nothing held", async () => {
    const taken = await holdElsewhere();
    const free = await freePort();
    const err = await failure(res.reserve('c1', 'web', [lo(81, free), lo(80, taken)]));
    expect(err).toBeInstanceOf(DockerError);
    expect(err.status).toBe(500);
    expect(err.message).toBe(
      `driver failed programming external connectivity on endpoint web: Bind for 127.0.0.1:${taken} failed: port is already allocated`,
    );
    // all or nothing: the port bound first in this call is free again, and nothing is recorded
    expect(await tcpTaken(free)).toBe(false);
    expect(res.of('c1')).toEqual([]);
  });

  it('a port another container holds here clashes, also between 0.0.0.0 and one address', async () => {
    const port = await freePort();
    await res.reserve('c1', 'one', [lo(80, port)]);
    const e1 = await failure(res.reserve('c2', 'two', [lo(80, port)]));
    expect(e1.message).toBe(
      `driver failed programming external connectivity on endpoint two: Bind for 127.0.0.1:${port} failed: port is already allocated`,
    );
    const e2 = await failure(res.reserve('c2', 'two', [w(80, port)]));
    expect(e2.message).toMatch(`Bind for 0.0.0.0:${port} failed: port is already allocated`);
    // the same number in the other protocol is another port
    expect(await res.reserve('c2', 'two', [lo(80, port, port, 'udp')])).toHaveLength(1);
    expect(res.of('c1')).toHaveLength(1);
  });

  it('two bindings of one call that clash fail the call', async () => {
    const port = await freePort();
    const err = await failure(res.reserve('c1', 'web', [lo(80, port), lo(81, port)]));
    expect(err.message).toMatch(`Bind for 127.0.0.1:${port} failed: port is already allocated`);
    expect(await tcpTaken(port)).toBe(false);
  });

  it('a range takes its first free port; a full range names the range', async () => {
    // find three consecutive free ports, then hold the first one elsewhere
    let base = 0;
    for (let p = 20000 + (process.pid % 20000); !base; p += 3)
      if (!(await tcpTaken(p)) && !(await tcpTaken(p + 1)) && !(await tcpTaken(p + 2))) base = p;
    await holdElsewhere(base);
    const [a] = await res.reserve('c1', 'web', [lo(80, base, base + 2)]);
    expect(a!.hostPort).toBe(base + 1);
    const [b] = await res.reserve('c2', 'web2', [lo(80, base, base + 2)]);
    expect(b!.hostPort).toBe(base + 2);
    const err = await failure(res.reserve('c3', 'web3', [lo(80, base, base + 2)]));
    expect(err.message).toBe(
      `driver failed programming external connectivity on endpoint web3: Bind for 127.0.0.1:${base}-${base + 2} failed: all ports are allocated`,
    );
  });

  it('ephemeral: the kernel picks a free port, tcp and udp each their own', async () => {
    const got = await res.reserve('c1', 'web', [lo(80, 0), lo(80, 0, 0, 'udp'), lo(81, 0)]);
    expect(got.map((m) => m.hostPort).every((p) => p >= 1024)).toBe(true);
    expect(got[0]!.hostPort).not.toBe(got[2]!.hostPort);
    expect(await tcpTaken(got[0]!.hostPort)).toBe(true);
    expect(await udpTaken(got[1]!.hostPort)).toBe(true);
  });

  it('an address the host does not have fails clearly', async () => {
    const err = await failure(res.reserve('c1', 'web', [w(80, 0, 0, { hostIp: '203.0.113.7' })]));
    expect(err.message).toBe(
      'driver failed programming external connectivity on endpoint web: listen tcp4 203.0.113.7:0: bind: cannot assign requested address',
    );
  });

  it('SCTP cannot be held yet: 501', async () => {
    const err = await failure(res.reserve('c1', 'web', [lo(80, 0, 0, 'sctp')]));
    expect([err.status, err.message]).toEqual([501, 'publishing SCTP ports is not supported yet']);
  });

  it('restore takes the exact ports again and returns those it cannot', async () => {
    const a = await freePort();
    const b = await holdElsewhere();
    const mappings = [
      { privatePort: 80, protocol: 'tcp' as const, hostIp: '127.0.0.1', hostPort: a },
      { privatePort: 81, protocol: 'tcp' as const, hostIp: '127.0.0.1', hostPort: b },
    ];
    expect(await res.restore('c1', mappings)).toEqual([mappings[1]]);
    expect(res.of('c1')).toEqual([mappings[0]]);
    expect(await tcpTaken(a)).toBe(true);
  });

  it('closeAll frees every port', async () => {
    const [p, q] = [await freePort(), await freePort()];
    await res.reserve('c1', 'a', [lo(80, p)]);
    await res.reserve('c2', 'b', [lo(80, q, q, 'udp')]);
    await res.closeAll();
    expect(await tcpTaken(p)).toBe(false);
    expect(await udpTaken(q)).toBe(false);
  });
});
