// The network API's JSON (views.ts), its list and prune filters, and the request bodies the routes accept
// (routes.ts): pure functions, checked against dockerd 28's shapes and wording.
import { describe, expect, it } from 'vitest';
import { DockerError, type Filters } from '../../vm-agent/daemon/contracts.js';
import {
  parseConnectRequest,
  parseCreateRequest,
  parseDisconnectRequest,
} from '../../vm-agent/daemon/networks/routes.js';
import type { NetworkRecord } from '../../vm-agent/daemon/networks/types.js';
import {
  filterNetworks,
  networkView,
  parseTime,
  parseUntil,
  pruneMatcher,
} from '../../vm-agent/daemon/networks/views.js';

function net(name: string, extra: Partial<NetworkRecord> = {}): NetworkRecord {
  return {
    id: (name.charCodeAt(0).toString(16) + 'ab').repeat(16),
    name,
    driver: 'bridge',
    created: '2026-01-01T00:00:00.123456789Z',
    bridge: '',
    ipam: [],
    internal: false,
    attachable: false,
    labels: {},
    options: {},
    predefined: false,
    allocated: {},
    ...extra,
  };
}

const bridge = net('bridge', {
  id: 'b'.repeat(64),
  bridge: 'skiff0',
  predefined: true,
  ipam: [{ subnet: '192.168.215.0/24', gateway: '192.168.215.1' }],
});
const host = net('host', { id: 'c'.repeat(64), driver: 'host', predefined: true, created: '0001-01-01T00:00:00Z' });
const none = net('none', { id: 'd'.repeat(64), driver: 'null', predefined: true, created: '0001-01-01T00:00:00Z' });
const front = net('front', {
  id: '1234' + 'e'.repeat(60),
  bridge: 'br-1234eeeeeeee',
  ipam: [{ subnet: '10.221.0.0/24', gateway: '10.221.0.1', ipRange: '10.221.0.128/25' }],
  labels: { tier: 'web', team: 'a' },
  created: '2026-01-01T00:00:00Z',
});
const back = net('backend', {
  id: '5678' + 'f'.repeat(60),
  internal: true,
  labels: { tier: 'db' },
  created: '2026-03-01T00:00:00Z',
});
const all = [bridge, host, none, front, back];

function filters(obj: Record<string, string[]>): Filters {
  return new Map(Object.entries(obj));
}

function names(list: NetworkRecord[]): string[] {
  return list.map((n) => n.name);
}

function dockerError(fn: () => unknown): DockerError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DockerError);
    return err as DockerError;
  }
  throw new Error('expected a DockerError');
}

describe('networkView', () => {
  it('shows the default bridge as dockerd shows docker0, with our device', () => {
    const v = networkView(bridge);
    expect(v).toEqual({
      Name: 'bridge',
      Id: 'b'.repeat(64),
      Created: '2026-01-01T00:00:00.123456789Z',
      Scope: 'local',
      Driver: 'bridge',
      EnableIPv4: true,
      EnableIPv6: false,
      IPAM: { Driver: 'default', Options: null, Config: [{ Subnet: '192.168.215.0/24', Gateway: '192.168.215.1' }] },
      Internal: false,
      Attachable: false,
      Ingress: false,
      ConfigFrom: { Network: '' },
      ConfigOnly: false,
      Containers: {},
      Options: {
        'com.docker.network.bridge.default_bridge': 'true',
        'com.docker.network.bridge.enable_icc': 'true',
        'com.docker.network.bridge.enable_ip_masquerade': 'true',
        'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0',
        'com.docker.network.bridge.name': 'skiff0',
        'com.docker.network.driver.mtu': '1500',
      },
      Labels: {},
    });
  });

  it('shows host and none without addresses', () => {
    for (const n of [host, none]) {
      const v = networkView(n);
      expect(v.Driver).toBe(n === host ? 'host' : 'null');
      expect(v.IPAM).toEqual({ Driver: 'default', Options: null, Config: [] });
      expect(v.EnableIPv4).toBe(false);
      expect(v.Options).toEqual({});
    }
  });

  it('shows a user network with its ip range, labels and options only', () => {
    const v = networkView({ ...front, options: { 'com.docker.network.driver.mtu': '1400' } });
    expect(v.IPAM).toEqual({
      Driver: 'default',
      Options: {},
      Config: [{ Subnet: '10.221.0.0/24', IPRange: '10.221.0.128/25', Gateway: '10.221.0.1' }],
    });
    expect(v.Options).toEqual({ 'com.docker.network.driver.mtu': '1400' });
    expect(v.Labels).toEqual({ tier: 'web', team: 'a' });
    expect(v.Internal).toBe(false);
    expect(networkView(back).Internal).toBe(true);
  });

  it('fills inspect Containers with live endpoints only', () => {
    const live = {
      networkId: front.id,
      networkName: 'front',
      endpointId: '9'.repeat(64),
      ifName: 'eth0',
      ipAddress: '10.221.0.2',
      prefixLen: 24,
      gateway: '10.221.0.1',
      macAddress: '02:42:0a:dd:00:02',
      config: {},
      dnsNames: ['web'],
    };
    const v = networkView(front, [
      { containerId: 'a'.repeat(64), name: '/web', live },
      { containerId: 'f'.repeat(64), name: '/stopped' },
    ]);
    expect(v.Containers).toEqual({
      ['a'.repeat(64)]: {
        Name: 'web',
        EndpointID: '9'.repeat(64),
        MacAddress: '02:42:0a:dd:00:02',
        IPv4Address: '10.221.0.2/24',
        IPv6Address: '',
      },
    });
  });
});

describe('filterNetworks', () => {
  const unused = () => false;

  it('keeps everything without filters and refuses unknown ones', () => {
    expect(names(filterNetworks(all, filters({}), unused))).toEqual(['bridge', 'host', 'none', 'front', 'backend']);
    expect(dockerError(() => filterNetworks(all, filters({ colour: ['x'] }), unused)).message).toBe(
      "invalid filter 'colour'",
    );
    expect(dockerError(() => filterNetworks(all, filters({ colour: ['x'] }), unused)).status).toBe(400);
  });

  it('matches name and id anywhere (dockerd uses regexps), driver and scope exactly', () => {
    expect(names(filterNetworks(all, filters({ name: ['ack'] }), unused))).toEqual(['backend']);
    expect(names(filterNetworks(all, filters({ name: ['^b'] }), unused))).toEqual(['bridge', 'backend']);
    expect(names(filterNetworks(all, filters({ name: ['front', 'host'] }), unused))).toEqual(['host', 'front']);
    expect(names(filterNetworks(all, filters({ id: ['1234'] }), unused))).toEqual(['front']);
    expect(names(filterNetworks(all, filters({ driver: ['null'] }), unused))).toEqual(['none']);
    expect(names(filterNetworks(all, filters({ driver: ['brid'] }), unused))).toEqual([]);
    expect(filterNetworks(all, filters({ scope: ['local'] }), unused)).toHaveLength(5);
    expect(filterNetworks(all, filters({ scope: ['swarm'] }), unused)).toHaveLength(0);
  });

  it('matches labels by key or key=value, all of them', () => {
    expect(names(filterNetworks(all, filters({ label: ['tier'] }), unused))).toEqual(['front', 'backend']);
    expect(names(filterNetworks(all, filters({ label: ['tier=db'] }), unused))).toEqual(['backend']);
    expect(names(filterNetworks(all, filters({ label: ['tier=web', 'team'] }), unused))).toEqual(['front']);
    expect(names(filterNetworks(all, filters({ label: ['tier=db', 'team'] }), unused))).toEqual([]);
  });

  it('dangling: user networks no running container is on; false: the rest', () => {
    const inUse = (n: NetworkRecord) => n.name === 'front';
    expect(names(filterNetworks(all, filters({ dangling: ['true'] }), inUse))).toEqual(['backend']);
    expect(names(filterNetworks(all, filters({ dangling: ['1'] }), inUse))).toEqual(['backend']);
    expect(names(filterNetworks(all, filters({ dangling: ['false'] }), inUse))).toEqual([
      'bridge',
      'host',
      'none',
      'front',
    ]);
    expect(dockerError(() => filterNetworks(all, filters({ dangling: ['yes'] }), inUse)).message).toBe(
      `invalid value for filter 'dangling', must be "true" (or "1"), or "false" (or "0")`,
    );
    expect(dockerError(() => filterNetworks(all, filters({ dangling: ['true', 'false'] }), inUse)).message).toBe(
      'got more than one value for filter key "dangling"',
    );
  });

  it('type: builtin or custom', () => {
    expect(names(filterNetworks(all, filters({ type: ['builtin'] }), unused))).toEqual(['bridge', 'host', 'none']);
    expect(names(filterNetworks(all, filters({ type: ['custom'] }), unused))).toEqual(['front', 'backend']);
    expect(filterNetworks(all, filters({ type: ['custom', 'builtin'] }), unused)).toHaveLength(5);
    expect(dockerError(() => filterNetworks(all, filters({ type: ['user'] }), unused)).message).toBe(
      "invalid filter: 'type'='user'",
    );
  });
});

describe('prune filters', () => {
  const now = Date.parse('2026-03-01T12:00:00Z');
  const prunable = (f: Record<string, string[]>) => all.filter(pruneMatcher(filters(f), now)).map((n) => n.name);

  it('never offers the predefined networks', () => {
    expect(prunable({})).toEqual(['front', 'backend']);
  });

  it('until: a Go duration before now, a time, or UNIX seconds; networks created after it stay', () => {
    expect(prunable({ until: ['24h'] })).toEqual(['front']);
    expect(prunable({ until: ['1h30m'] })).toEqual(['front', 'backend']);
    expect(prunable({ until: ['2026-02-01T00:00:00Z'] })).toEqual(['front']);
    expect(prunable({ until: ['2026-01-01T00:00:00Z'] })).toEqual(['front']); // created at it: goes
    expect(prunable({ until: [String(Date.parse('2026-02-01T00:00:00Z') / 1000)] })).toEqual(['front']);
    expect(prunable({ until: ['2025-12-31T23:00:00-02:00'] })).toEqual(['front']);
    expect(prunable({ until: ['0'] })).toEqual([]);
    expect(dockerError(() => prunable({ until: ['soon'] })).message).toBe(
      'failed to parse value as time or duration: "soon"',
    );
    expect(dockerError(() => prunable({ until: ['1h', '2h'] })).message).toBe('more than one until filter specified');
  });

  it('label must all hold; label! keeps a network when all of its values hold', () => {
    expect(prunable({ label: ['tier'] })).toEqual(['front', 'backend']);
    expect(prunable({ label: ['tier=web'] })).toEqual(['front']);
    expect(prunable({ 'label!': ['tier=web'] })).toEqual(['backend']);
    expect(prunable({ 'label!': ['team'] })).toEqual(['backend']);
    expect(prunable({ 'label!': ['tier', 'team'] })).toEqual(['backend']);
    expect(prunable({ 'label!': ['tier=db', 'team'] })).toEqual(['front', 'backend']);
  });

  it('refuses filters prune does not know', () => {
    expect(dockerError(() => prunable({ dangling: ['true'] })).message).toBe("invalid filter 'dangling'");
  });
});

describe('times', () => {
  it('parses RFC 3339 with nanoseconds and zones, and local times without a zone', () => {
    expect(parseTime('2026-01-01T00:00:00.5Z')).toBe(Date.parse('2026-01-01T00:00:00.500Z'));
    expect(parseTime('2026-01-01T00:00:00.123456789Z')).toBeCloseTo(Date.parse('2026-01-01T00:00:00.123Z') + 0.456789);
    expect(parseTime('2026-01-01T02:00:00+02:00')).toBe(Date.parse('2026-01-01T00:00:00Z'));
    expect(parseTime('2026-01-01')).toBe(new Date(2026, 0, 1).getTime());
    expect(parseTime('2026-01-01T10:30')).toBe(new Date(2026, 0, 1, 10, 30).getTime());
    expect(parseTime('2026-13-01')).toBeUndefined();
    expect(parseUntil('-10m', 0)).toBe(600_000);
    expect(parseUntil('1.5h', 3_600_000 * 2)).toBe(1_800_000);
    expect(parseUntil('1700000000.5', 0)).toBe(1_700_000_000_500);
  });
});

describe('request bodies', () => {
  it('takes a create request as the docker CLI sends it', () => {
    const req = parseCreateRequest({
      Name: 'front',
      CheckDuplicate: true,
      Driver: 'bridge',
      Scope: '',
      EnableIPv6: false,
      IPAM: { Driver: 'default', Options: {}, Config: [{ Subnet: '10.9.0.0/24', Gateway: '10.9.0.1' }] },
      Internal: true,
      Attachable: false,
      Ingress: false,
      ConfigOnly: false,
      ConfigFrom: null,
      Options: { 'com.docker.network.driver.mtu': '1400' },
      Labels: { a: 'b' },
    });
    expect(req).toEqual({
      Name: 'front',
      Driver: 'bridge',
      EnableIPv6: false,
      Internal: true,
      Attachable: false,
      Ingress: false,
      IPAM: { Driver: 'default', Options: {}, Config: [{ Subnet: '10.9.0.0/24', Gateway: '10.9.0.1' }] },
      Options: { 'com.docker.network.driver.mtu': '1400' },
      Labels: { a: 'b' },
      CheckDuplicate: true,
    });
  });

  it('matches field names in any case and ignores unknown fields and nulls, as Go does', () => {
    expect(parseCreateRequest({ name: 'x', DRIVER: 'bridge', Foo: 1, Labels: null })).toEqual({
      Name: 'x',
      Driver: 'bridge',
    });
  });

  it('answers 400 for a missing name and for values of the wrong type', () => {
    expect(dockerError(() => parseCreateRequest({})).message).toBe('invalid name: ');
    expect(dockerError(() => parseCreateRequest({ Name: '  ' })).status).toBe(400);
    const e = dockerError(() => parseCreateRequest({ Name: 5 }));
    expect(e.status).toBe(400);
    expect(e.message).toBe(
      'invalid JSON: json: cannot unmarshal number 5 into Go struct field CreateRequest.Name of type string',
    );
    expect(dockerError(() => parseCreateRequest({ Name: 'x', Internal: 'yes' })).message).toContain(
      'CreateRequest.Internal of type bool',
    );
    expect(dockerError(() => parseCreateRequest({ Name: 'x', Labels: { a: 1 } })).message).toContain(
      'CreateRequest.Labels.a of type string',
    );
    expect(dockerError(() => parseCreateRequest({ Name: 'x', IPAM: { Config: {} } })).message).toContain(
      'CreateRequest.IPAM.Config of type []network.IPAMConfig',
    );
    expect(dockerError(() => parseCreateRequest([])).message).toBe(
      'invalid JSON: json: cannot unmarshal array into Go value of type network.CreateRequest',
    );
  });

  it('answers 501 for what skiffd does not do rather than dropping it', () => {
    for (const body of [
      { Name: 'x', Scope: 'swarm' },
      { Name: 'x', ConfigOnly: true },
      { Name: 'x', ConfigFrom: { Network: 'cfg' } },
      { Name: 'x', IPAM: { Config: [{ Subnet: '10.9.0.0/24', AuxiliaryAddresses: { h: '10.9.0.5' } }] } },
    ])
      expect(dockerError(() => parseCreateRequest(body)).status).toBe(501);
  });

  it('takes connect and disconnect requests', () => {
    expect(
      parseConnectRequest({
        Container: 'web',
        EndpointConfig: {
          IPAMConfig: { IPv4Address: '10.9.0.9' },
          Aliases: ['w'],
          NetworkID: '',
          IPAddress: '',
          DNSNames: null,
        },
      }),
    ).toEqual({ container: 'web', config: { IPAMConfig: { IPv4Address: '10.9.0.9' }, Aliases: ['w'] } });
    expect(parseConnectRequest({ Container: 'web' })).toEqual({ container: 'web', config: {} });
    expect(dockerError(() => parseConnectRequest({})).message).toBe('invalid name or ID supplied: ""');
    expect(dockerError(() => parseConnectRequest({ Container: 'w', EndpointConfig: { Aliases: 'a' } })).message).toBe(
      'invalid JSON: json: cannot unmarshal string into Go struct field ConnectOptions.EndpointConfig.Aliases of type []string',
    );
    expect(parseDisconnectRequest({ Container: 'web', Force: true })).toEqual({ container: 'web', force: true });
    expect(parseDisconnectRequest({ container: 'web' })).toEqual({ container: 'web', force: false });
    expect(dockerError(() => parseDisconnectRequest({ Container: 'web', Force: 1 })).status).toBe(400);
  });
});
