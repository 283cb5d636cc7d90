// The firewall rules at work (networks/firewall.ts), end to end in throwaway network namespaces: a "host" netns
// with three bridges made here with `ip` (skt-a and skt-b, and skt-int: internal), "containers" (netns joined to
// a bridge by a veth) running busybox httpd, and an "outside" netns routed to the host. applyFirewall and
// enableForwarding run inside the host netns (node + tsx under nsenter), so nothing touches this machine's own
// network. Every server answers "<name> <REMOTE_ADDR>", so the tests see who answered and with which source
// address the connection arrived (masquerade or not).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FirewallInput } from '../../vm-agent/daemon/networks/types.js';
import { cleanupScratch, REPO, scratchDir, waitFor } from './helpers.js';

const procs: ChildProcess[] = [];

/** A new network namespace held by a sleeping `unshare` (loopback up); its pid names it. */
function netns(): number {
  const p = spawn('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec sleep infinity'], { stdio: 'ignore' });
  procs.push(p);
  waitFor(() => {
    if (p.exitCode !== null) throw new Error(`unshare exited ${p.exitCode}`);
    return spawnSync('cat', [`/proc/${p.pid}/comm`], { encoding: 'utf8' }).stdout.trim() === 'sleep';
  });
  return p.pid!;
}

function inNs(pid: number, cmd: string[], timeout = 10_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('nsenter', ['-t', String(pid), '-n', '--', ...cmd], { encoding: 'utf8', timeout });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `ip -batch` inside a netns; throws on any failure. */
function ip(pid: number, lines: string[]): void {
  const r = spawnSync('nsenter', ['-t', String(pid), '-n', '--', 'ip', '-batch', '-'], {
    input: lines.join('\n') + '\n',
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`ip -batch: ${r.stderr}`);
}

/** Run `code` (ESM, top-level await) with node + tsx inside the netns; `import { … } from FW` reaches firewall.ts. */
function nodeInNs(pid: number, code: string): { status: number | null; stdout: string; stderr: string } {
  const fw = JSON.stringify(join(REPO, 'vm-agent/daemon/networks/firewall.ts'));
  const r = spawnSync(
    'nsenter',
    [
      '-t',
      String(pid),
      '-n',
      '--',
      process.execPath,
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      code.replaceAll('FW', fw),
    ],
    { encoding: 'utf8', cwd: REPO, timeout: 30_000 },
  );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function applyIn(pid: number, input: FirewallInput): void {
  const r = nodeInNs(
    pid,
    `import { applyFirewall, enableForwarding } from FW;
     const input = ${JSON.stringify(input)};
     await applyFirewall(input);
     enableForwarding(input.bridges.map((b) => b.name));`,
  );
  if (r.status !== 0) throw new Error(`applyFirewall in netns: ${r.stderr}`);
}

/** An HTTP GET from inside a netns: the answer, or undefined when it could not connect (within 3 s). */
function get(pid: number, url: string): string | undefined {
  const r = inNs(pid, ['timeout', '3', '/bin/busybox', 'wget', '-q', '-O', '-', url], 5_000);
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** busybox httpd on port 80 of a netns answering "<name> <client address>" at /cgi-bin/who. */
function serve(pid: number, name: string, root: string): void {
  const dir = join(root, name);
  mkdirSync(join(dir, 'cgi-bin'), { recursive: true });
  const cgi = join(dir, 'cgi-bin/who');
  writeFileSync(cgi, `#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s %s\\n' ${name} "$REMOTE_ADDR"\n`);
  chmodSync(cgi, 0o755);
  const p = spawn(
    'nsenter',
    ['-t', String(pid), '-n', '--', '/bin/busybox', 'httpd', '-f', '-p', '0.0.0.0:80', '-h', dir],
    {
      stdio: 'ignore',
    },
  );
  procs.push(p);
  waitFor(() => inNs(pid, ['/bin/busybox', 'netstat', '-ltn']).stdout.includes(':80 '));
}

// The host: bridges and an uplink to the outside.
const A = { name: 'skt-a', subnet: '10.99.1.0/24', gw: '10.99.1.1', internal: false };
const B = { name: 'skt-b', subnet: '10.99.3.0/24', gw: '10.99.3.1', internal: false };
const INT = { name: 'skt-int', subnet: '10.99.2.0/24', gw: '10.99.2.1', internal: true };
const HOST_UPLINK = '10.99.9.1';
const OUTSIDE = '10.99.9.2';

// Containers: c1 serves the published port; c2 is its neighbour; c3 is on the internal network, c4 on skt-b.
const C1 = '10.99.1.2';
const C2 = '10.99.1.3';
const C3 = '10.99.2.2';
const C4 = '10.99.3.2';

const published: FirewallInput['ports'] = [
  { privatePort: 80, protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, containerIp: C1, bridge: A.name },
  { privatePort: 80, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 8081, containerIp: C1, bridge: A.name },
];
const full: FirewallInput = {
  bridges: [A, B, INT].map(({ name, subnet, internal }) => ({ name, subnet, internal })),
  ports: published,
};

let host = 0;
let outside = 0;
const c: Record<string, number> = {};

beforeAll(() => {
  if (spawnSync('nft', ['--version']).status !== 0) throw new Error('nft is not installed (apt-get install nftables)');
  const root = scratchDir('skiff-nat-');
  host = netns();
  outside = netns();
  ip(host, [
    ...[A, B, INT].flatMap((b) => [
      `link add ${b.name} type bridge`,
      `addr add ${b.gw}/24 dev ${b.name}`,
      `link set ${b.name} up`,
    ]),
    `link add uplink type veth peer name eth0 netns ${outside}`,
    `addr add ${HOST_UPLINK}/24 dev uplink`,
    'link set uplink up',
  ]);
  // The outside routes the container subnets to the host, as a LAN host with a route to them might.
  ip(outside, [`addr add ${OUTSIDE}/24 dev eth0`, 'link set eth0 up', `route add 10.99.0.0/16 via ${HOST_UPLINK}`]);
  const containers: Array<[string, string, typeof A]> = [
    ['c1', C1, A],
    ['c2', C2, A],
    ['c3', C3, INT],
    ['c4', C4, B],
  ];
  for (const [name, addr, br] of containers) {
    const pid = (c[name] = netns());
    ip(host, [
      `link add v${name} type veth peer name eth0 netns ${pid}`,
      `link set v${name} master ${br.name}`,
      `link set v${name} type bridge_slave hairpin on`,
      `link set v${name} up`,
    ]);
    // even the internal one gets a default route here: the firewall, not a missing route, must keep it in
    ip(pid, [`addr add ${addr}/24 dev eth0`, 'link set eth0 up', `route add default via ${br.gw}`]);
    serve(pid, name, root);
  }
  serve(outside, 'outside', root);
  applyIn(host, full);
}, 120_000);

afterAll(() => {
  for (const p of procs.reverse()) if (p.exitCode === null) p.kill('SIGKILL');
  cleanupScratch();
});

describe('the skiff table in a host netns', () => {
  it('is in place, forwarding and route_localnet are on', () => {
    const r = inNs(host, ['nft', 'list', 'table', 'ip', 'skiff']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`tcp dport 8080 dnat to ${C1}:80`);
    const sysctl = (p: string) => inNs(host, ['cat', `/proc/sys/net/ipv4/${p}`]).stdout.trim();
    expect(sysctl('ip_forward')).toBe('1');
    for (const b of [A, B, INT]) expect(sysctl(`conf/${b.name}/route_localnet`)).toBe('1');
    expect(sysctl('conf/uplink/route_localnet')).toBe('0');
  });

  it('the VM itself reaches a published port on 127.0.0.1 (masqueraded to the bridge address)', () => {
    expect(get(host, 'http://127.0.0.1:8080/cgi-bin/who')).toBe(`c1 ${A.gw}`);
    expect(get(host, 'http://127.0.0.1:8081/cgi-bin/who')).toBe(`c1 ${A.gw}`);
  });

  it('and through its own addresses: the bridge address and the uplink', () => {
    expect(get(host, `http://${A.gw}:8080/cgi-bin/who`)).toBe(`c1 ${A.gw}`);
    expect(get(host, `http://${HOST_UPLINK}:8080/cgi-bin/who`)).toMatch(/^c1 /);
  });

  it('from outside, with the client address kept; a port published on 127.0.0.1 only is not reachable', () => {
    expect(get(outside, `http://${HOST_UPLINK}:8080/cgi-bin/who`)).toBe(`c1 ${OUTSIDE}`);
    expect(get(outside, `http://${HOST_UPLINK}:8081/cgi-bin/who`)).toBeUndefined();
  });

  it('hairpin: a neighbour on the same bridge through a host address', () => {
    expect(get(c.c2!, `http://${A.gw}:8080/cgi-bin/who`)).toBe(`c1 ${A.gw}`);
    expect(get(c.c2!, `http://${HOST_UPLINK}:8080/cgi-bin/who`)).toBe(`c1 ${A.gw}`);
    // the container reaching its own published port
    expect(get(c.c1!, `http://${A.gw}:8080/cgi-bin/who`)).toBe(`c1 ${A.gw}`);
  });

  it('containers on one bridge talk directly, unchanged', () => {
    expect(get(c.c2!, `http://${C1}/cgi-bin/who`)).toBe(`c1 ${C2}`);
  });

  it('a container goes out masqueraded behind the host', () => {
    expect(get(c.c1!, `http://${OUTSIDE}/cgi-bin/who`)).toBe(`outside ${HOST_UPLINK}`);
    expect(get(c.c4!, `http://${OUTSIDE}/cgi-bin/who`)).toBe(`outside ${HOST_UPLINK}`);
  });

  it('networks are kept apart, but a published port is open to other networks as to the outside', () => {
    expect(get(c.c4!, `http://${C1}/cgi-bin/who`)).toBeUndefined();
    expect(get(c.c1!, `http://${C4}/cgi-bin/who`)).toBeUndefined();
    // masqueraded on the way into skt-a, as anything leaving a subnet by another interface
    expect(get(c.c4!, `http://${B.gw}:8080/cgi-bin/who`)).toBe(`c1 ${A.gw}`);
  });

  it('the outside cannot reach container addresses directly', () => {
    expect(get(outside, `http://${C1}/cgi-bin/who`)).toBeUndefined();
  });

  it('an internal network cannot reach outside, other networks or published ports, nor be reached', () => {
    expect(get(c.c3!, `http://${OUTSIDE}/cgi-bin/who`)).toBeUndefined();
    expect(get(c.c3!, `http://${C1}/cgi-bin/who`)).toBeUndefined();
    expect(get(c.c3!, `http://${INT.gw}:8080/cgi-bin/who`)).toBeUndefined();
    expect(get(c.c1!, `http://${C3}/cgi-bin/who`)).toBeUndefined();
    expect(get(outside, `http://${C3}/cgi-bin/who`)).toBeUndefined();
  });

  it('the same network not internal does go out: the internal rules are what kept it in', () => {
    applyIn(host, { ...full, bridges: full.bridges.map((b) => ({ ...b, internal: false })) });
    try {
      expect(get(c.c3!, `http://${OUTSIDE}/cgi-bin/who`)).toBe(`outside ${HOST_UPLINK}`);
    } finally {
      applyIn(host, full);
    }
    expect(get(c.c3!, `http://${OUTSIDE}/cgi-bin/who`)).toBeUndefined();
  });

  it('applying again is a no-op; a port left out of the state is gone at once', () => {
    applyIn(host, full);
    expect(get(host, 'http://127.0.0.1:8080/cgi-bin/who')).toBe(`c1 ${A.gw}`);
    applyIn(host, { ...full, ports: [] });
    expect(get(host, 'http://127.0.0.1:8080/cgi-bin/who')).toBeUndefined();
    expect(get(outside, `http://${HOST_UPLINK}:8080/cgi-bin/who`)).toBeUndefined();
    applyIn(host, full);
    expect(get(outside, `http://${HOST_UPLINK}:8080/cgi-bin/who`)).toBe(`c1 ${OUTSIDE}`);
  });

  it('removeFirewall drops the table, and is fine when it is gone', () => {
    const r = nodeInNs(
      host,
      `import { removeFirewall } from FW;
       await removeFirewall();
       await removeFirewall();
       const { execFileSync } = await import('node:child_process');
       console.log(execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }).includes('skiff') ? 'still' : 'gone');`,
    );
    expect(r.stdout.trim()).toBe('gone');
    expect(get(host, 'http://127.0.0.1:8080/cgi-bin/who')).toBeUndefined();
    applyIn(host, full);
    expect(get(host, 'http://127.0.0.1:8080/cgi-bin/who')).toBe(`c1 ${A.gw}`);
  });

  it("nft's failure and a missing nft are clear errors", () => {
    const code = `import { applyFirewall } from FW;
      try { await applyFirewall({ bridges: [], ports: [] }); console.log('applied'); }
      catch (e) { console.log(e.status, e.message); }`;
    // in a user namespace of its own, nft has no rights over the host netns
    const fw = JSON.stringify(join(REPO, 'vm-agent/daemon/networks/firewall.ts'));
    const denied = spawnSync(
      'nsenter',
      [
        '-t',
        String(host),
        '-n',
        '--',
        'unshare',
        '-U',
        process.execPath,
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        code.replaceAll('FW', fw),
      ],
      { encoding: 'utf8', cwd: REPO, timeout: 30_000 },
    );
    expect(denied.stdout.trim()).toMatch(/^500 applying firewall rules: .*Operation not permitted/s);
    const missing = spawnSync(
      '/usr/bin/nsenter',
      [
        '-t',
        String(host),
        '-n',
        '--',
        process.execPath,
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        code.replaceAll('FW', fw),
      ],
      { encoding: 'utf8', cwd: REPO, timeout: 30_000, env: { ...process.env, PATH: '/nonexistent' } },
    );
    expect(missing.stdout.trim()).toBe(
      '500 nftables (nft) is not installed: skiffd needs it for container networking; install the nftables package',
    );
    // the table is untouched by both
    expect(get(host, 'http://127.0.0.1:8080/cgi-bin/who')).toBe(`c1 ${A.gw}`);
  });
});
