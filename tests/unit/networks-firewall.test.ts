// rulesetFor: the nft script for table `ip skiff`. Its structure, its order (deterministic), the refusal of
// anything that could change the script's meaning, and nft's own syntax check of it in a throwaway user+network
// namespace (`unshare -r -n nft -c -f -`: real nft, nothing on the host touched).
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { DockerError } from '../../vm-agent/daemon/contracts.js';
import { rulesetFor } from '../../vm-agent/daemon/networks/firewall.js';
import type { FirewallInput } from '../../vm-agent/daemon/networks/types.js';

const input: FirewallInput = {
  bridges: [
    { name: 'skiff0', subnet: '192.168.215.0/24', internal: false },
    { name: 'br-0123456789ab', subnet: '10.221.0.0/24', internal: false },
    { name: 'br-internal0001', subnet: '10.221.1.0/24', internal: true },
  ],
  ports: [
    {
      privatePort: 80,
      protocol: 'tcp',
      hostIp: '0.0.0.0',
      hostPort: 8080,
      containerIp: '192.168.215.2',
      bridge: 'skiff0',
    },
    {
      privatePort: 53,
      protocol: 'udp',
      hostIp: '127.0.0.1',
      hostPort: 5353,
      containerIp: '10.221.0.3',
      bridge: 'br-0123456789ab',
    },
    {
      privatePort: 443,
      protocol: 'tcp',
      hostIp: '0.0.0.0',
      hostPort: 443,
      containerIp: '192.168.215.2',
      bridge: 'skiff0',
    },
    {
      privatePort: 9,
      protocol: 'sctp',
      hostIp: '0.0.0.0',
      hostPort: 9999,
      containerIp: '10.221.0.3',
      bridge: 'br-0123456789ab',
    },
  ],
};

/** The lines of one chain (or set) of the script, trimmed. */
function block(script: string, head: string): string[] {
  const lines = script.split('\n');
  const start = lines.findIndex((l) => l.trim() === `${head} {`);
  if (start < 0) throw new Error(`no ${head} in\n${script}`);
  const end = lines.findIndex((l, i) => i > start && l === '\t}');
  return lines.slice(start + 1, end).map((l) => l.trim());
}

/** nft's check mode in a new network namespace owned by a new user namespace. */
function nftCheck(script: string): { status: number | null; stderr: string } {
  const r = spawnSync('unshare', ['-r', '-n', 'nft', '-c', '-f', '-'], { input: script, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, stderr: r.stderr };
}

describe('rulesetFor', () => {
  it('replaces the whole table in one transaction, whether or not it exists', () => {
    const s = rulesetFor(input);
    expect(s.split('\n').slice(0, 3)).toEqual(['table ip skiff {}', 'delete table ip skiff', 'table ip skiff {']);
    expect(s.endsWith('}\n')).toBe(true);
  });

  it('names every bridge and the internal ones in sets', () => {
    const s = rulesetFor(input);
    expect(block(s, 'set bridges')).toEqual([
      'type ifname',
      'elements = { "br-0123456789ab", "br-internal0001", "skiff0" }',
    ]);
    expect(block(s, 'set internal')).toEqual(['type ifname', 'elements = { "br-internal0001" }']);
  });

  it('DNATs published ports to local destinations, from outside and from the VM itself', () => {
    const s = rulesetFor(input);
    expect(block(s, 'chain prerouting')).toEqual([
      'type nat hook prerouting priority dstnat; policy accept;',
      'fib daddr type local jump published',
    ]);
    expect(block(s, 'chain output')).toEqual([
      'type nat hook output priority -100; policy accept;',
      'fib daddr type local jump published',
    ]);
    // a specific host address first, then 0.0.0.0 (any local address) by protocol and port
    expect(block(s, 'chain published')).toEqual([
      'ip daddr 127.0.0.1 udp dport 5353 dnat to 10.221.0.3:53',
      'sctp dport 9999 dnat to 10.221.0.3:9',
      'tcp dport 443 dnat to 192.168.215.2:443',
      'tcp dport 8080 dnat to 192.168.215.2:80',
    ]);
  });

  it('masquerades traffic leaving a subnet, hairpin and loopback traffic; internal networks do not go out', () => {
    expect(block(rulesetFor(input), 'chain postrouting')).toEqual([
      'type nat hook postrouting priority srcnat; policy accept;',
      'ip saddr 127.0.0.0/8 oifname @bridges masquerade',
      'ip saddr 10.221.0.0/24 oifname "br-0123456789ab" ct status dnat masquerade',
      'ip saddr 10.221.0.0/24 oifname != "br-0123456789ab" masquerade',
      'ip saddr 10.221.1.0/24 oifname "br-internal0001" ct status dnat masquerade',
      'ip saddr 192.168.215.0/24 oifname "skiff0" ct status dnat masquerade',
      'ip saddr 192.168.215.0/24 oifname != "skiff0" masquerade',
    ]);
  });

  it('keeps networks apart and internal networks in, published ports open', () => {
    const fwd = block(rulesetFor(input), 'chain forward');
    expect(fwd).toEqual([
      'type filter hook forward priority filter; policy accept;',
      'ct state established,related accept',
      'iifname "br-0123456789ab" oifname "br-0123456789ab" accept',
      'iifname "br-internal0001" oifname "br-internal0001" accept',
      'iifname "skiff0" oifname "skiff0" accept',
      'iifname @internal drop',
      'oifname @internal drop',
      'oifname @bridges ct status dnat accept',
      'oifname @bridges drop',
      'iifname @bridges accept',
    ]);
  });

  it('is deterministic: the order of the input does not matter, duplicates count once', () => {
    const shuffled: FirewallInput = {
      bridges: [...input.bridges].reverse(),
      ports: [...input.ports].reverse().concat(input.ports[0]!),
    };
    expect(rulesetFor(shuffled)).toBe(rulesetFor(input));
    expect(rulesetFor(input)).toBe(rulesetFor(input));
  });

  it('with no bridges and no ports still makes a valid, empty table', () => {
    const s = rulesetFor({ bridges: [], ports: [] });
    expect(block(s, 'set bridges')).toEqual(['type ifname']);
    expect(block(s, 'chain published')).toEqual([]);
    expect(nftCheck(s)).toEqual({ status: 0, stderr: '' });
  });

  it('is accepted by nft (check mode in a throwaway namespace)', () => {
    expect(nftCheck(rulesetFor(input))).toEqual({ status: 0, stderr: '' });
  });

  it('the check can fail: nft rejects a broken script', () => {
    const broken = rulesetFor(input).replace('masquerade', 'masqerade');
    const r = nftCheck(broken);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/syntax error/);
  });

  it('refuses names and addresses that could change the script', () => {
    const bad: Array<[FirewallInput, RegExp]> = [
      [{ bridges: [{ name: 'x" accept; #', subnet: '10.0.0.0/24', internal: false }], ports: [] }, /interface name/],
      [{ bridges: [{ name: 'waytoolongname16', subnet: '10.0.0.0/24', internal: false }], ports: [] }, /interface/],
      [{ bridges: [{ name: 'br0', subnet: '10.0.0.0/33', internal: false }], ports: [] }, /invalid subnet/],
      [{ bridges: [{ name: 'br0', subnet: '10.0.0/24', internal: false }], ports: [] }, /invalid subnet/],
      [{ bridges: [], ports: [{ ...input.ports[0]!, containerIp: '1.2.3.4; drop' }] }, /IPv4 address/],
      [{ bridges: [], ports: [{ ...input.ports[0]!, hostIp: '::' }] }, /IPv4 address/],
      [{ bridges: [], ports: [{ ...input.ports[0]!, hostPort: 0 }] }, /invalid port 0/],
      [{ bridges: [], ports: [{ ...input.ports[0]!, privatePort: 70000 }] }, /invalid port 70000/],
      [{ bridges: [], ports: [{ ...input.ports[0]!, protocol: 'icmp' as 'tcp' }] }, /invalid protocol/],
    ];
    for (const [i, msg] of bad) {
      let err: unknown;
      try {
        rulesetFor(i);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(i)).toBeInstanceOf(DockerError);
      expect((err as DockerError).status).toBe(500);
      expect((err as DockerError).message).toMatch(msg);
    }
  });
});
