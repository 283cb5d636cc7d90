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
    // Its own MAC (from the gateway address), so it never changes as ports come and go.
    expect(inNs(host, ['ip', 'link', 'show', 'sktest0']).out).toContain('link/ether 02:42:0a:63:00:01');

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
    expect(inNs(host, ['ip', 'link', 'show', 'sktest0']).out).toContain('link/ether 02:42:0a:63:00:01');

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

// ------------------------------------------------------------------------------------------------ service.ts

/**
 * The network service end to end in a private "host" netns: a scenario run by one driver process (the DNS server
 * lives in it, so containers' questions are asked from it, asynchronously), reporting what it saw as JSON.
 */
const SCENARIO = `
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { Networks } from ${JSON.stringify(join(REPO, 'vm-agent/daemon/networks/service.ts'))};
const run = promisify(execFile);
const sh = async (c: string) => (await run('sh', ['-c', c]).catch((e: any) => e)).stdout?.trim() ?? '';
const inC = (pid: number, c: string) => sh('nsenter --net=/proc/' + pid + '/ns/net sh -c ' + JSON.stringify(c));
await run('ip', ['link', 'set', 'lo', 'up']);
const out: Record<string, unknown> = {};
const events: string[] = [];
const views: Record<string, any> = {};
const daemon: any = {
  config: { dataRoot: mkdtempSync('/tmp/skiff-netsvc-'), bridge: { name: 'skiff0', cidr: '192.168.215.1/24' },
            addressPools: [{ base: '10.221.0.0/16', size: 24 }] },
  events: { emit: (e: any) => events.push(e.Type + ':' + e.Action + ':' + (e.Actor.Attributes.hostPort ?? e.Actor.Attributes.name)) },
  containers: { get: async (r: string) => { if (!views[r]) throw Object.assign(new Error('No such container: ' + r), { status: 404 }); return views[r]; } },
};
const holders: any[] = [];
async function holder(): Promise<number> {
  const p = spawn('unshare', ['-n', 'sleep', '1000'], { stdio: 'ignore' });
  holders.push(p);
  const ours = await sh('readlink /proc/self/ns/net');
  while ((await sh('readlink /proc/' + p.pid + '/ns/net')) === ours) await new Promise((r) => setTimeout(r, 20));
  return p.pid!;
}
const c = (ch: string, name: string, hostConfig: any = {}) =>
  ({ id: ch.repeat(64), name: '/' + name, hostname: ch.repeat(12), hostConfig, exposedPorts: [] as string[] });
const err = async (p: Promise<unknown>) => { try { await p; return 'no error'; } catch (e: any) { return e.status + ' ' + e.message; } };

let s = new Networks(daemon);
await s.init();
out.bridgeAddr = await sh('ip -o -4 addr show skiff0');
const web = c('b', 'web', { NetworkMode: 'n1' });
const pub = c('c', 'pub', { PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '8080' }] } });
const clash = c('d', 'clash', { PortBindings: { '81/tcp': [{ HostPort: '8081' }], '80/tcp': [{ HostPort: '8080' }] } });
await s.createNetwork({ Name: 'n1', IPAM: { Config: [{ Subnet: '10.99.0.0/24', Gateway: '10.99.0.254', IPRange: '10.99.0.128/25' }] } });
out.n2 = (await s.createNetwork({ Name: 'n2', Internal: true })).ipam;
out.dupName = await err(s.createNetwork({ Name: 'n1' }));
out.overlap = await err(s.createNetwork({ Name: 'x', IPAM: { Config: [{ Subnet: '192.168.215.0/25' }] } }));
out.webNs = await s.create(web, { n1: { Aliases: ['www'] } });
out.pubNs = await s.create(pub, {});
out.hostNs = await s.create(c('e', 'h', { NetworkMode: 'host', PortBindings: { '80/tcp': [{}] } }), {});
out.noneP = await err(s.create(c('e', 'x', { NetworkMode: 'none', PortBindings: { '80/tcp': [{}] } }), {}));
out.defaultIp = await err(s.create(c('e', 'x'), { default: { IPAMConfig: { IPv4Address: '192.168.215.9' } } }));
out.defaultAlias = await err(s.create(c('e', 'x'), { bridge: { Aliases: ['a'] } }));
out.outside = await err(s.create(c('e', 'x', { NetworkMode: 'n1' }), { n1: { IPAMConfig: { IPv4Address: '10.98.0.5' } } }));
out.unknown = await err(s.create(c('e', 'x', { NetworkMode: 'nope' }), {}));
const [pWeb, pPub, pClash, pInt] = [await holder(), await holder(), await holder(), await holder()];
await s.attach(web, pWeb);
await s.attach(pub, pPub);
out.webIf = await inC(pWeb, 'ip -o -4 addr show eth0; ip route show default');
out.pubIf = await inC(pPub, 'ip -o -4 addr show eth0; ip route show default');
out.ports = s.portsOf(pub.id);
out.nftDnat = await sh('nft list table ip skiff | grep -c 8080');
out.hostAnswer = (await Promise.all([
  inC(pPub, '/bin/busybox nc -l -p 80 -e echo hello-from-pub'),
  new Promise((r) => setTimeout(r, 300)).then(() => sh('/bin/busybox nc 127.0.0.1 8080 </dev/null')),
]))[1];
await s.create(clash, {});
out.clash = await err(s.attach(clash, pClash));
out.clashLeft = { endpoints: s.endpointsOf(clash.id), eth0: await inC(pClash, 'ip -o link show eth0'), ports: s.portsOf(clash.id) };
await s.create(c('f', 'int', { NetworkMode: 'n2' }), {});
await s.attach(c('f', 'int', { NetworkMode: 'n2' }), pInt);
out.internalRoute = await inC(pInt, 'ip route');
// DNS: names on n1 from a container on n1; not from the default bridge; host.docker.internal everywhere.
views.pub = { id: pub.id, name: '/pub', config: { Hostname: 'pubhost' }, hostConfig: pub.hostConfig, state: { status: 'running', pid: pPub } };
await s.connect('n1', 'pub', { Aliases: ['wanderer'] });
out.connectAgain = await err(s.connect('n1', 'pub', {}));
out.pubLinks = await inC(pPub, 'ip -o -4 addr show; ip route show default');
out.dnsWeb = await inC(pPub, '/bin/busybox nslookup WWW 10.99.0.254');
out.dnsWanderer = await inC(pWeb, '/bin/busybox nslookup wanderer 10.99.0.254');
out.dnsFromBridge = await inC(pPub, '/bin/busybox nslookup web 192.168.215.1');
out.dnsHost = await inC(pInt, '/bin/busybox nslookup host.docker.internal 10.221.0.1');
out.containersOnN1 = s.containersOn(s.get('n1').id).map((x) => x.name + '=' + x.live?.ifName);
await s.disconnect('n1', 'pub', false);
out.afterDisconnect = await inC(pPub, 'ip -o -4 addr show');
out.rmInUse = await err(s.removeNetwork('n1'));
out.rmBridge = await err(s.removeNetwork('bridge'));
// Restart: web runs on, pub died while skiffd was away.
holders[1].kill('SIGKILL');
await s.close();
s = new Networks(daemon);
await s.init();
await s.recover((id) => id === web.id || id === c('f', '').id);
out.afterRestart = structuredClone({ web: s.addressesOf(web.id), pub: s.addressesOf(pub.id), pubPorts: s.portsOf(pub.id),
  n1: s.get('n1').allocated, bridge: s.get('bridge').allocated });
out.nftAfter = await sh('nft list table ip skiff | grep -c 8080');
out.dnsAfterRestart = await inC(pWeb, '/bin/busybox nslookup web 10.99.0.254');
await s.detach(web.id);
await s.forget(web.id);
out.rmN1 = await err(s.removeNetwork('n1'));
out.n1Bridge = await sh('ip -o link show | grep -c br-');
out.events = events;
await s.close();
for (const h of holders) h.kill('SIGKILL');
rmSync(daemon.config.dataRoot, { recursive: true, force: true });
process.stdout.write(JSON.stringify(out));
process.exit(0);
`;

describe('service.ts in a private network namespace', () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let o: Record<string, any>;
  beforeAll(() => {
    const script = join(scratchDir('skiff-netsvc-'), 'scenario.mts');
    writeFileSync(script, SCENARIO);
    const ns = netnsHolder();
    const r = inNs(ns, [TSX, script]);
    if (r.code !== 0) throw new Error(`scenario failed: ${r.err}${r.out}`);
    o = JSON.parse(r.out);
  }, 120_000);

  it('makes the default bridge and user networks from the pool and from --subnet', () => {
    expect(o.bridgeAddr).toContain('inet 192.168.215.1/24');
    expect(o.n2).toEqual([{ subnet: '10.221.0.0/24', gateway: '10.221.0.1' }]);
    expect(o.dupName).toBe('409 network with name n1 already exists');
    expect(o.overlap).toBe('403 invalid pool request: Pool overlaps with other one on this address space');
  });

  it("checks a container's networking at create with dockerd's words", () => {
    expect(o.webNs).toEqual({ nameservers: ['10.99.0.254'] });
    expect(o.pubNs).toEqual({ nameservers: ['192.168.215.1'] });
    expect(o.hostNs).toEqual({});
    expect(o.noneP).toBe('400 conflicting options: port publishing and the container type network mode');
    expect(o.defaultIp).toBe('400 user specified IP address is supported on user defined networks only');
    expect(o.defaultAlias).toBe('400 network-scoped alias is supported only for containers in user defined networks');
    expect(o.outside).toBe("400 Invalid address 10.98.0.5: It does not belong to any of this network's subnets");
    expect(o.unknown).toBe('404 network nope not found');
  });

  it('gives containers addresses (ip-range), default routes, none on internal networks', () => {
    expect(o.webIf).toContain('inet 10.99.0.128/24');
    expect(o.webIf).toContain('default via 10.99.0.254 dev eth0');
    expect(o.pubIf).toContain('inet 192.168.215.2/24');
    expect(o.internalRoute).toContain('10.221.0.0/24 dev eth0');
    expect(o.internalRoute).not.toContain('default');
  });

  it('publishes ports through the kernel; a clash fails and leaves nothing', () => {
    expect(o.ports).toEqual([{ privatePort: 80, protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 8080 }]);
    expect(Number(o.nftDnat)).toBeGreaterThan(0);
    expect(o.hostAnswer).toBe('hello-from-pub');
    expect(o.clash).toMatch(/^500 .*Bind for 0\.0\.0\.0:8080 failed: port is already allocated/);
    expect(o.clashLeft.eth0).toBe('');
    expect(o.clashLeft.ports).toEqual([]);
    expect(Object.values(o.clashLeft.endpoints)).toEqual([{ config: {}, networkId: expect.any(String) }]);
  });

  it('connects a running container (eth1, no second default route), answers its names, disconnects', () => {
    expect(o.connectAgain).toBe('403 endpoint with name pub already exists in network n1');
    expect(o.pubLinks).toMatch(/eth1\s+inet 10\.99\.0\.129\/24/);
    expect(o.pubLinks.match(/default/g)).toHaveLength(1);
    expect(o.containersOnN1).toEqual(['web=eth0', 'pub=eth1']);
    expect(o.dnsWeb).toMatch(/Address:?\s+10\.99\.0\.128/);
    expect(o.dnsWanderer).toMatch(/Address:?\s+10\.99\.0\.129/);
    // pub is on n1 too: its names are answered whichever of its gateways it asks (as Docker's resolver does).
    expect(o.dnsFromBridge).toMatch(/Address:?\s+10\.99\.0\.128/);
    expect(o.dnsHost).toMatch(/Address:?\s+192\.168\.215\.1/);
    expect(o.afterDisconnect).not.toContain('eth1');
  });

  it('refuses to remove networks in use and predefined ones', () => {
    expect(o.rmInUse).toMatch(/^409 error while removing network: network n1 id [0-9a-f]{64} has active endpoints$/);
    expect(o.rmBridge).toBe('403 bridge is a pre-defined network and cannot be removed');
  });

  it('after a restart keeps what runs, drops what stopped, and answers names again', () => {
    expect(o.afterRestart.web).toEqual(['10.99.0.128']);
    expect(o.afterRestart.pub).toEqual([]);
    expect(o.afterRestart.pubPorts).toEqual([]);
    expect(Object.keys(o.afterRestart.n1).sort()).toEqual(['10.99.0.128', '10.99.0.254']);
    expect(Object.keys(o.afterRestart.bridge)).toEqual(['192.168.215.1']);
    expect(o.nftAfter).toBe('0');
    expect(o.dnsAfterRestart).toMatch(/Address:?\s+10\.99\.0\.128/);
    expect(o.rmN1).toBe('no error');
  });

  it('says what happened on /events', () => {
    expect(o.events).toEqual(
      expect.arrayContaining([
        'network:create:n1',
        'network:connect:n1',
        'container:publish:8080',
        'network:disconnect:n1',
        'network:destroy:n1',
      ]),
    );
    expect(o.events).not.toContain('container:publish:8081'); // the clash published nothing
  });
});
