// The nftables table `ip skiff` (docs/networking.md "Firewall"): NAT for bridge subnets and published ports, and
// the forward filter that keeps networks apart. The whole table is generated from the state and applied as one
// `nft -f` transaction, so a rule is never half-applied and what is no longer in the state is gone.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { DockerError, serverError } from '../contracts.js';
import type { FirewallInput } from './types.js';

const TABLE = 'ip skiff';

// Everything put into the script is checked first: names and addresses come from the state (and bridge names
// may come from a user's network options), and the script must never be anything but the rules meant.
const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

function checkIfName(name: string): string {
  if (!IFNAME.test(name)) throw serverError(`firewall: invalid interface name ${JSON.stringify(name)}`);
  return `"${name}"`;
}

function checkIp(ip: string): string {
  if (!isIPv4(ip)) throw serverError(`firewall: invalid IPv4 address ${JSON.stringify(ip)}`);
  return ip;
}

function checkCidr(cidr: string): string {
  const [ip, len, ...rest] = cidr.split('/');
  const n = Number(len);
  if (rest.length || !ip || !isIPv4(ip) || !/^\d{1,2}$/.test(len ?? '') || n > 32)
    throw serverError(`firewall: invalid subnet ${JSON.stringify(cidr)}`);
  return cidr;
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw serverError(`firewall: invalid port ${port}`);
  return port;
}

function checkProto(proto: string): string {
  if (proto !== 'tcp' && proto !== 'udp' && proto !== 'sctp') throw serverError(`firewall: invalid protocol ${proto}`);
  return proto;
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** `set name { type ifname; elements = {...} }`: an empty set has no elements line (nft refuses `{ }`). */
function ifnameSet(name: string, members: string[]): string[] {
  const lines = [`\tset ${name} {`, '\t\ttype ifname'];
  if (members.length) lines.push(`\t\telements = { ${members.join(', ')} }`);
  lines.push('\t}');
  return lines;
}

/**
 * The complete nft script for table `ip skiff`: `table` + `delete table` (so it works whether or not the table
 * exists) and then the whole table. Pure and deterministic (sorted), so tests can compare it.
 */
export function rulesetFor(input: FirewallInput): string {
  const byName = new Map<string, { name: string; subnet: string; internal: boolean }>();
  for (const b of input.bridges) {
    checkIfName(b.name);
    checkCidr(b.subnet);
    byName.set(b.name, b);
  }
  const bridges = [...byName.values()].sort((a, b) => cmp(a.name, b.name));
  const allNames = bridges.map((b) => checkIfName(b.name));
  const internalNames = bridges.filter((b) => b.internal).map((b) => checkIfName(b.name));

  // Published ports: specific host addresses before the 0.0.0.0 ones, then by protocol and port.
  const dnat = input.ports
    .map((p) => {
      const proto = checkProto(p.protocol);
      const port = checkPort(p.hostPort);
      const to = `${checkIp(p.containerIp)}:${checkPort(p.privatePort)}`;
      const any = checkIp(p.hostIp) === '0.0.0.0';
      const rule = `${any ? '' : `ip daddr ${p.hostIp} `}${proto} dport ${port} dnat to ${to}`;
      return { key: `${any ? '1' : '0'} ${p.hostIp} ${proto} ${String(port).padStart(5, '0')} ${to}`, rule };
    })
    .sort((a, b) => cmp(a.key, b.key))
    .filter((r, i, all) => i === 0 || all[i - 1]!.key !== r.key)
    .map((r) => `\t\t${r.rule}`);

  const postrouting: string[] = [];
  // The VM itself reaching a published port on 127.0.0.1: the reply must come back to a bridge address.
  postrouting.push('\t\tip saddr 127.0.0.0/8 oifname @bridges masquerade');
  for (const b of bridges) {
    const dev = checkIfName(b.name);
    // Hairpin: a container reaching a published port of its own bridge through a host address; without this
    // the answer would go straight back over the bridge with the wrong source.
    postrouting.push(`\t\tip saddr ${b.subnet} oifname ${dev} ct status dnat masquerade`);
    if (!b.internal) postrouting.push(`\t\tip saddr ${b.subnet} oifname != ${dev} masquerade`);
  }

  const forward = ['\t\tct state established,related accept'];
  // Within one bridge (seen here only when br_netfilter is loaded).
  for (const dev of allNames) forward.push(`\t\tiifname ${dev} oifname ${dev} accept`);
  forward.push('\t\tiifname @internal drop', '\t\toifname @internal drop');
  // A published port is open to every other network, as it is to the outside (moby#38784).
  forward.push('\t\toifname @bridges ct status dnat accept');
  // Anything else into a bridge: another network or a host routing to container addresses directly.
  forward.push('\t\toifname @bridges drop');
  forward.push('\t\tiifname @bridges accept');

  return [
    `table ${TABLE} {}`,
    `delete table ${TABLE}`,
    `table ${TABLE} {`,
    ...ifnameSet('bridges', allNames),
    ...ifnameSet('internal', internalNames),
    '\tchain prerouting {',
    '\t\ttype nat hook prerouting priority dstnat; policy accept;',
    '\t\tfib daddr type local jump published',
    '\t}',
    '\tchain output {',
    // dstnat (-100); nft 1.0.6 only knows the name in prerouting
    '\t\ttype nat hook output priority -100; policy accept;',
    '\t\tfib daddr type local jump published',
    '\t}',
    '\tchain published {',
    ...dnat,
    '\t}',
    '\tchain postrouting {',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    ...postrouting,
    '\t}',
    '\tchain forward {',
    '\t\ttype filter hook forward priority filter; policy accept;',
    ...forward,
    '\t}',
    '}',
    '',
  ].join('\n');
}

const NO_NFT =
  'nftables (nft) is not installed: skiffd needs it for container networking; install the nftables package';

/** Run `nft -f -` with `script` on stdin; resolves with nft's exit code and stderr. */
function nft(script: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('nft', ['-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    p.stdin.on('error', () => undefined); // nft gone early: its exit code says why
    p.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'ENOENT' ? serverError(NO_NFT) : serverError(`running nft: ${err.message}`)),
    );
    p.once('close', (code) => resolve({ code: code ?? -1, stderr: stderr.trim() }));
    p.stdin.end(script);
  });
}

/** Replace table `ip skiff` with the rules for `input`, in one transaction. */
export async function applyFirewall(input: FirewallInput): Promise<void> {
  const script = rulesetFor(input);
  const r = await nft(script);
  if (r.code !== 0) throw serverError(`applying firewall rules: ${r.stderr || `nft exited ${r.code}`}`);
}

/** Remove table `ip skiff` if it is there. Nothing to remove when nft is not even installed. */
export async function removeFirewall(): Promise<void> {
  let r: { code: number; stderr: string };
  try {
    r = await nft(`table ${TABLE} {}\ndelete table ${TABLE}\n`);
  } catch (err) {
    if (err instanceof DockerError && err.message === NO_NFT) return;
    throw err;
  }
  if (r.code !== 0) throw serverError(`removing firewall rules: ${r.stderr || `nft exited ${r.code}`}`);
}

/**
 * Routing between bridges and out of the VM (ip_forward), and `route_localnet` on each bridge so traffic to a
 * published port on 127.0.0.1 can be DNAT'ed into it (and its answers come back). A missing bridge is skipped.
 */
export function enableForwarding(bridges: string[]): void {
  try {
    writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
  } catch (err) {
    throw serverError(`enabling IP forwarding: ${(err as Error).message}`);
  }
  for (const b of bridges) {
    checkIfName(b);
    try {
      writeFileSync(`/proc/sys/net/ipv4/conf/${b}/route_localnet`, '1');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw serverError(`enabling route_localnet on ${b}: ${(err as Error).message}`);
    }
  }
}
