// bridge.ts against the real kernel: a private "host" network namespace (held by a sleeping `unshare -n`) in which
// bridge.ts runs (through tsx under nsenter), and "containers" that are sleeping processes with netns of their
// own. Addresses, routes and MACs are read back with nsenter + ip, and traffic is proven with busybox ping.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupScratch, REPO, scratchDir, waitFor } from './helpers.js';

const TSX = join(REPO, 'node_modules/.bin/tsx');
const BRIDGE_TS = join(REPO, 'vm-agent/daemon/networks/bridge.ts');

const holders: ChildProcess[] = [];
let host: number; // the pid whose netns plays the host
let driver: string;

/** A sleeping process in a new network namespace; its pid names the netns. */
function netnsHolder(): number {
  const p = spawn('unshare', ['-n', 'sleep', '1000'], { stdio: 'ignore' });
  holders.push(p);
  const pid = p.pid!;
  // unshare execs sleep in place: once the netns differs from ours, it is ready.
  const ours = spawnSync('readlink', ['/proc/self/ns/net'], { encoding: 'utf8' }).stdout;
  waitFor(() => spawnSync('readlink', [`/proc/${pid}/ns/net`], { encoding: 'utf8' }).stdout !== ours, 5000);
  return pid;
}

/** Run a command inside `pid`'s network namespace. */
function inNs(pid: number, cmd: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync('nsenter', [`--net=/proc/${pid}/ns/net`, ...cmd], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

type Op = [fn: 'ensureBridge' | 'deleteBridge' | 'addVeth' | 'removeVeth', ...args: unknown[]];

/** Run bridge.ts functions, one after another, in the host netns; each one's outcome ("ok" or its error). */
function bridgeOps(...ops: Op[]): string[] {
  const r = inNs(host, [TSX, driver, JSON.stringify(ops)]);
  if (r.code !== 0) throw new Error(`driver failed: ${r.err}`);
  return JSON.parse(r.out) as string[];
}

function plan(pid: number, hostIfName: string, address: string, extra: Record<string, unknown> = {}) {
  return {
    pid,
    bridge: 'sktest0',
    hostIfName,
    ifName: 'eth0',
    address,
    prefixLen: 24,
    macAddress: `02:42:0a:63:00:${Number(address.split('.')[3]).toString(16).padStart(2, '0')}`,
    defaultGateway: '10.99.0.1',
    ...extra,
  };
}

const ping = (pid: number, ip: string) => inNs(pid, ['/bin/busybox', 'ping', '-c', '1', '-W', '2', ip]);

beforeAll(() => {
  const dir = scratchDir('skiff-bridge-');
  driver = join(dir, 'driver.mts');
  writeFileSync(
    driver,
    `import * as b from ${JSON.stringify(BRIDGE_TS)};
const out: string[] = [];
for (const [fn, ...args] of JSON.parse(process.argv[2]!) as [string, ...unknown[]][]) {
  try { await (b as any)[fn](...args); out.push('ok'); } catch (e) { out.push(String((e as Error).message)); }
}
process.stdout.write(JSON.stringify(out));
`,
  );
  host = netnsHolder();
});

afterAll(() => {
  for (const p of holders) p.kill('SIGKILL');
  cleanupScratch();
});

describe('bridge.ts in a private network namespace', () => {
  let c1: number;
  let c2: number;

  it('makes a bridge with its address, up; again is a no-op; a lost address comes back', () => {
    expect(bridgeOps(['ensureBridge', 'sktest0', '10.99.0.1/24'])).toEqual(['ok']);
    const show = () => inNs(host, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'sktest0']).out;
    expect(show()).toContain('inet 10.99.0.1/24 brd 10.99.0.255');
    expect(inNs(host, ['ip', '-d', 'link', 'show', 'sktest0']).out).toMatch(/state (UP|UNKNOWN|DOWN)[\s\S]*bridge/);
    expect(inNs(host, ['ip', 'link', 'show', 'sktest0']).out).toContain(',UP');

    expect(bridgeOps(['ensureBridge', 'sktest0', '10.99.0.1/24'])).toEqual(['ok']);
    expect(show().trim().split('\n')).toHaveLength(1);

    inNs(host, ['ip', 'addr', 'flush', 'dev', 'sktest0']);
    expect(show()).toBe('');
    expect(bridgeOps(['ensureBridge', 'sktest0', '10.99.0.1/24'])).toEqual(['ok']);
    expect(show()).toContain('inet 10.99.0.1/24');
  });

  it('puts a veth into a container netns: address, MAC, lo, default route; the gateway answers', () => {
    c1 = netnsHolder();
    expect(bridgeOps(['addVeth', plan(c1, 'vethaaaaaa1', '10.99.0.2')])).toEqual(['ok']);

    expect(inNs(c1, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']).out).toContain('inet 10.99.0.2/24');
    expect(inNs(c1, ['ip', 'link', 'show', 'eth0']).out).toContain('link/ether 02:42:0a:63:00:02');
    expect(inNs(c1, ['ip', 'link', 'show', 'lo']).out).toContain('UP');
    expect(inNs(c1, ['ip', 'route', 'show', 'default']).out).toContain('default via 10.99.0.1 dev eth0');

    const hostEnd = inNs(host, ['ip', '-d', 'link', 'show', 'vethaaaaaa1']).out;
    expect(hostEnd).toContain('master sktest0');
    expect(hostEnd).toContain('hairpin on');
    expect(hostEnd).toContain(',UP');

    const p = ping(c1, '10.99.0.1');
    expect(p.out + p.err).toContain('1 packets received');
  });

  it('connects two containers through the bridge; one without a default route', () => {
    c2 = netnsHolder();
    expect(bridgeOps(['addVeth', plan(c2, 'vethaaaaaa2', '10.99.0.3', { defaultGateway: undefined })])).toEqual(['ok']);
    expect(inNs(c2, ['ip', 'route', 'show', 'default']).out).toBe('');
    const p = ping(c1, '10.99.0.3');
    expect(p.out + p.err).toContain('1 packets received');
  });

  it('fails clearly, with ip’s own message, and leaves no host end behind', () => {
    const [noProc] = bridgeOps(['addVeth', plan(999_999_999, 'vethbbbbbb1', '10.99.0.9')]);
    expect(noProc).toMatch(/creating vethbbbbbb1 on sktest0 for process 999999999: .+/);
    expect(inNs(host, ['ip', 'link', 'show', 'vethbbbbbb1']).code).not.toBe(0);

    // The gateway is not on the interface's subnet: the route fails inside, and the host end is removed again.
    const c3 = netnsHolder();
    const [badRoute] = bridgeOps(['addVeth', plan(c3, 'vethbbbbbb2', '10.99.0.4', { defaultGateway: '10.1.2.3' })]);
    expect(badRoute).toMatch(/configuring eth0 in the network namespace of process \d+: .*(unreachable|invalid)/i);
    expect(inNs(host, ['ip', 'link', 'show', 'vethbbbbbb2']).code).not.toBe(0);

    const [noBridge] = bridgeOps(['addVeth', { ...plan(c3, 'vethbbbbbb3', '10.99.0.5'), bridge: 'nosuchbr0' }]);
    expect(noBridge).toContain('nosuchbr0');
    expect(inNs(host, ['ip', 'link', 'show', 'vethbbbbbb3']).code).not.toBe(0);

    const [badName] = bridgeOps(['ensureBridge', 'bad name; rm', '10.98.0.1/24']);
    expect(badName).toContain('invalid interface name');
  });

  it('removes a veth (both ends) and a bridge; removing again is fine', () => {
    expect(bridgeOps(['removeVeth', 'vethaaaaaa1'], ['removeVeth', 'vethaaaaaa1'])).toEqual(['ok', 'ok']);
    expect(inNs(host, ['ip', 'link', 'show', 'vethaaaaaa1']).code).not.toBe(0);
    expect(inNs(c1, ['ip', 'link', 'show', 'eth0']).code).not.toBe(0);

    expect(bridgeOps(['deleteBridge', 'sktest0'], ['deleteBridge', 'sktest0'])).toEqual(['ok', 'ok']);
    expect(inNs(host, ['ip', 'link', 'show', 'sktest0']).code).not.toBe(0);
    // The other container's veth lost its master but the pair lives until its netns goes.
    expect(inNs(c2, ['ip', 'link', 'show', 'eth0']).code).toBe(0);
  });

  it('a container netns that goes away takes both ends of its veth with it', () => {
    expect(bridgeOps(['ensureBridge', 'sktest0', '10.99.0.1/24'])).toEqual(['ok']);
    const c = netnsHolder();
    expect(bridgeOps(['addVeth', plan(c, 'vethcccccc1', '10.99.0.7')])).toEqual(['ok']);
    expect(inNs(host, ['ip', 'link', 'show', 'vethcccccc1']).code).toBe(0);
    holders.find((h) => h.pid === c)!.kill('SIGKILL');
    waitFor(() => inNs(host, ['ip', 'link', 'show', 'vethcccccc1']).code !== 0, 10_000);
    expect(bridgeOps(['removeVeth', 'vethcccccc1'])).toEqual(['ok']);
  });
});
