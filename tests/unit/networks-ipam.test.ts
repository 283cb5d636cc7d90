import { describe, expect, it } from 'vitest';
import { DockerError } from '../../vm-agent/daemon/contracts.js';
import {
  allocate,
  allocateStatic,
  checkStatic,
  contains,
  formatCidr,
  formatIp,
  ipamFromBip,
  overlaps,
  parseCidr,
  parseIp,
  parseProcRoutes,
  pickSubnet,
  planIpam,
  release,
  tryParseIp,
} from '../../vm-agent/daemon/networks/ipam.js';
import type { NetworkRecord } from '../../vm-agent/daemon/networks/types.js';

function rec(subnet: string, gateway: string, ipRange?: string): NetworkRecord {
  return {
    id: 'a'.repeat(64),
    name: 'n1',
    driver: 'bridge',
    created: '',
    bridge: 'br-aaaaaaaaaaaa',
    ipam: [{ subnet, gateway, ...(ipRange ? { ipRange } : {}) }],
    internal: false,
    attachable: false,
    labels: {},
    options: {},
    predefined: false,
    allocated: { [gateway]: '' },
  };
}

function dockerError(fn: () => unknown): DockerError {
  try {
    fn();
  } catch (err) {
    if (err instanceof DockerError) return err;
    throw err;
  }
  throw new Error('expected a DockerError');
}

const pools = [{ base: '10.221.0.0/16', size: 24 }];

describe('addresses and CIDRs', () => {
  it('parses and formats', () => {
    expect(parseIp('10.221.3.1')).toBe(0x0add0301);
    expect(formatIp(0xffffffff)).toBe('255.255.255.255');
    expect(formatIp(parseIp('192.168.215.1'))).toBe('192.168.215.1');
    for (const bad of ['1.2.3', '1.2.3.256', '01.2.3.4', 'a.b.c.d', '', '::1']) expect(tryParseIp(bad)).toBeUndefined();
    expect(dockerError(() => parseIp('x')).status).toBe(400);
    expect(formatCidr(parseCidr('10.0.0.5/24'))).toBe('10.0.0.0/24');
    expect(formatCidr(parseCidr('0.0.0.0/0'))).toBe('0.0.0.0/0');
    expect(dockerError(() => parseCidr('10.0.0.0/33')).message).toBe('invalid CIDR address: 10.0.0.0/33');
  });

  it('contains and overlaps', () => {
    const a = parseCidr('10.1.0.0/16');
    expect(contains(a, parseIp('10.1.255.255'))).toBe(true);
    expect(contains(a, parseIp('10.2.0.0'))).toBe(false);
    expect(overlaps(a, parseCidr('10.1.3.0/24'))).toBe(true);
    expect(overlaps(parseCidr('10.1.3.0/24'), a)).toBe(true);
    expect(overlaps(a, parseCidr('10.2.0.0/16'))).toBe(false);
    expect(overlaps(parseCidr('0.0.0.0/0'), a)).toBe(true);
  });

  it("reads the host's routes from /proc/net/route, without the default route", () => {
    const text = [
      'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
      'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0',
      'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
      'tun0\t0000DD0A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0',
      'tun0\t0101A8C0\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0',
    ].join('\n');
    expect(parseProcRoutes(text).map(formatCidr)).toEqual(['192.0.2.0/24', '10.221.0.0/16', '192.168.1.1/32']);
  });
});

describe('subnets for new networks', () => {
  it('takes the first free subnet of the pool, avoiding networks and routes', () => {
    expect(formatCidr(pickSubnet(pools, []))).toBe('10.221.0.0/24');
    expect(formatCidr(pickSubnet(pools, [parseCidr('10.221.0.0/24'), parseCidr('10.221.1.128/25')]))).toBe(
      '10.221.2.0/24',
    );
    // A route covering the whole first pool sends us to the second.
    const two = [...pools, { base: '10.222.0.0/16', size: 26 }];
    expect(formatCidr(pickSubnet(two, [parseCidr('10.221.0.0/16')]))).toBe('10.222.0.0/26');
  });

  it('says so when every pool is used up', () => {
    const e = dockerError(() => pickSubnet([{ base: '10.9.0.0/23', size: 24 }], [parseCidr('10.9.0.0/23')]));
    expect(e.message).toMatch(/could not find an available, non-overlapping IPv4 address pool/);
  });

  it('plans from the pool with the first address as gateway', () => {
    expect(planIpam([], [parseCidr('10.221.0.0/24')], [], pools)).toEqual([
      { subnet: '10.221.1.0/24', gateway: '10.221.1.1' },
    ]);
    expect(planIpam([{}], [], [parseCidr('10.221.0.0/24')], pools)).toEqual([
      { subnet: '10.221.1.0/24', gateway: '10.221.1.1' },
    ]);
  });

  it('takes a user subnet, gateway and ip-range', () => {
    expect(planIpam([{ Subnet: '172.30.0.0/16' }], [], [], pools)).toEqual([
      { subnet: '172.30.0.0/16', gateway: '172.30.0.1' },
    ]);
    expect(
      planIpam([{ Subnet: '172.30.0.0/16', Gateway: '172.30.5.254', IPRange: '172.30.5.0/24' }], [], [], pools),
    ).toEqual([{ subnet: '172.30.0.0/16', gateway: '172.30.5.254', ipRange: '172.30.5.0/24' }]);
    // An explicit subnet is the user's choice even over a host route (as dockerd).
    expect(planIpam([{ Subnet: '10.221.0.0/24' }], [], [parseCidr('10.221.0.0/16')], pools)[0]!.subnet).toBe(
      '10.221.0.0/24',
    );
  });

  it("refuses bad input with dockerd's words", () => {
    const overlap = dockerError(() => planIpam([{ Subnet: '10.221.0.0/16' }], [parseCidr('10.221.4.0/24')], [], pools));
    expect(overlap.status).toBe(403);
    expect(overlap.message).toBe('invalid pool request: Pool overlaps with other one on this address space');

    const gw = dockerError(() => planIpam([{ Subnet: '10.5.0.0/24', Gateway: '10.6.0.1' }], [], [], pools));
    expect(gw.status).toBe(400);
    expect(gw.message).toBe(
      "invalid network config:\ninvalid gateway 10.6.0.1: parent subnet 10.5.0.0/24 doesn't contain this address",
    );

    const range = dockerError(() => planIpam([{ Subnet: '10.5.0.0/24', IPRange: '10.6.0.0/25' }], [], [], pools));
    expect(range.status).toBe(400);
    expect(range.message).toContain("invalid ip-range 10.6.0.0/25: parent subnet 10.5.0.0/24 doesn't contain ip-range");

    const bigger = dockerError(() => planIpam([{ Subnet: '10.5.0.0/24', IPRange: '10.5.0.0/16' }], [], [], pools));
    expect(bigger.message).toContain('CIDR block is bigger than its parent subnet 10.5.0.0/24');

    expect(dockerError(() => planIpam([{ Subnet: '10.5.0.7/24' }], [], [], pools)).message).toBe(
      'invalid network config:\ninvalid subnet 10.5.0.7/24: it should be 10.5.0.0/24',
    );
    expect(dockerError(() => planIpam([{ Subnet: 'nonsense' }], [], [], pools)).message).toContain(
      'invalid subnet nonsense: invalid CIDR block notation',
    );
    expect(dockerError(() => planIpam([{ Gateway: '10.0.0.1' }], [], [], pools)).status).toBe(400);
    expect(dockerError(() => planIpam([{ Subnet: 'fd00::/64' }], [], [], pools)).status).toBe(501);
  });

  it('makes the default bridge from --bip', () => {
    expect(ipamFromBip('192.168.215.1/24')).toEqual({ subnet: '192.168.215.0/24', gateway: '192.168.215.1' });
    expect(ipamFromBip('10.50.0.129/25')).toEqual({ subnet: '10.50.0.128/25', gateway: '10.50.0.129' });
    expect(dockerError(() => ipamFromBip('192.168.215.0/24')).status).toBe(400);
    expect(dockerError(() => ipamFromBip('192.168.215.1')).status).toBe(400);
  });
});

describe('container addresses', () => {
  it('hands out the lowest free address, skipping network, gateway and broadcast', () => {
    const r = rec('10.5.0.0/30', '10.5.0.1');
    expect(allocate(r, 'c1')).toBe('10.5.0.2');
    const e = dockerError(() => allocate(r, 'c2')); // .3 is the broadcast address
    expect(e.message).toMatch(/no available IPv4 addresses on network n1/);
    release(r, '10.5.0.2', 'c1');
    expect(allocate(r, 'c3')).toBe('10.5.0.2');
    expect(r.allocated).toEqual({ '10.5.0.1': '', '10.5.0.2': 'c3' });
  });

  it('fills holes and skips a gateway that is not the first address', () => {
    const r = rec('10.5.0.0/24', '10.5.0.3');
    expect(['c1', 'c2', 'c3'].map((c) => allocate(r, c))).toEqual(['10.5.0.1', '10.5.0.2', '10.5.0.4']);
    release(r, '10.5.0.2', 'c2');
    expect(allocate(r, 'c4')).toBe('10.5.0.2');
  });

  it('stays within the ip-range', () => {
    const r = rec('10.5.0.0/16', '10.5.0.1', '10.5.7.0/24');
    expect(allocate(r, 'c1')).toBe('10.5.7.0'); // the range's first address is a host address in the /16
    expect(allocate(r, 'c2')).toBe('10.5.7.1');
    const top = rec('10.5.0.0/24', '10.5.0.1', '10.5.0.128/25');
    top.allocated = { '10.5.0.1': '' };
    for (let i = 128; i < 254; i++) top.allocated[`10.5.0.${i}`] = 'x';
    expect(allocate(top, 'c')).toBe('10.5.0.254');
    expect(() => allocate(top, 'd')).toThrow(/no available/); // .255 is the broadcast address
  });

  it('takes static addresses: in a subnet and free', () => {
    const r = rec('10.5.0.0/24', '10.5.0.1');
    expect(allocateStatic(r, '10.5.0.50', 'c1')).toBe('10.5.0.50');
    expect(allocateStatic(r, '10.5.0.50', 'c1')).toBe('10.5.0.50'); // its own again: fine
    const used = dockerError(() => allocateStatic(r, '10.5.0.50', 'c2'));
    expect(used.status).toBe(409);
    expect(used.message).toBe('Address already in use');
    expect(dockerError(() => allocateStatic(r, '10.5.0.1', 'c2')).message).toBe('Address already in use');
    const outside = dockerError(() => allocateStatic(r, '10.6.0.5', 'c2'));
    expect(outside.status).toBe(400);
    expect(outside.message).toBe("Invalid address 10.6.0.5: It does not belong to any of this network's subnets");
    expect(dockerError(() => checkStatic(r, '10.5.0.255')).status).toBe(400);
    expect(dockerError(() => checkStatic(r, 'fd00::5')).status).toBe(501);
    // The lowest free address skips the static one.
    expect(allocate(r, 'c3')).toBe('10.5.0.2');
  });

  it("never releases someone else's address", () => {
    const r = rec('10.5.0.0/24', '10.5.0.1');
    allocate(r, 'c1');
    release(r, '10.5.0.2', 'c2');
    release(r, '10.5.0.1', 'c2');
    expect(r.allocated).toEqual({ '10.5.0.1': '', '10.5.0.2': 'c1' });
  });
});
