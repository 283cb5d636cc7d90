// IPv4 address management (docs/networking.md "IPAM"): CIDR arithmetic, picking a free subnet for a new network,
// checking a user's --subnet/--gateway/--ip-range, and handing out container addresses. Pure: the host's routes
// come in as data, and allocations live in the NetworkRecord's `allocated` map, which the caller persists.
import { badRequest, conflict, DockerError } from '../contracts.js';
import type { Cidr, IpamConfig, NetworkRecord } from './types.js';

// ---------------------------------------------------------------------------------------------- addresses

const dotted = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** "10.0.0.1" → 32-bit unsigned number; undefined when it is not a dotted IPv4 address. */
export function tryParseIp(s: string): number | undefined {
  const m = dotted.exec(s);
  if (!m) return undefined;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const part = m[i]!;
    if (part.length > 1 && part.startsWith('0')) return undefined; // "010" is ambiguous (octal to some parsers)
    const b = Number(part);
    if (b > 255) return undefined;
    n = n * 256 + b;
  }
  return n;
}

export function parseIp(s: string): number {
  const n = tryParseIp(s);
  if (n === undefined) throw badRequest(`invalid IPv4 address: ${s}`);
  return n;
}

export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

const isIpv6 = (s: string): boolean => s.includes(':');

// ---------------------------------------------------------------------------------------------- CIDRs

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** "10.0.0.5/24" → the address as written and its prefix length; undefined when malformed. */
export function tryParseAddrPrefix(s: string): { addr: number; prefix: number } | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const addr = tryParseIp(s.slice(0, slash));
  const p = s.slice(slash + 1);
  if (addr === undefined || !/^\d{1,2}$/.test(p) || Number(p) > 32) return undefined;
  return { addr, prefix: Number(p) };
}

/** A CIDR with its host bits cleared ("10.0.0.5/24" → 10.0.0.0/24); a 400 when malformed. */
export function parseCidr(s: string): Cidr {
  const ap = tryParseAddrPrefix(s);
  if (!ap) throw badRequest(`invalid CIDR address: ${s}`);
  return { base: (ap.addr & maskOf(ap.prefix)) >>> 0, prefix: ap.prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.base)}/${c.prefix}`;
}

/** The last address of the block (its broadcast address). */
export function lastAddress(c: Cidr): number {
  return (c.base | ~maskOf(c.prefix)) >>> 0;
}

export function contains(c: Cidr, ip: number): boolean {
  return (ip & maskOf(c.prefix)) >>> 0 === c.base;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return contains(a, b.base) || contains(b, a.base);
}

// ---------------------------------------------------------------------------------------------- host routes

/**
 * The destinations of the host's IPv4 routes from /proc/net/route (hex, little-endian on x86 and arm64), without
 * the default route: every subnet "overlaps" 0.0.0.0/0, and a LAN behind it is what the other routes show.
 */
export function parseProcRoutes(text: string): Cidr[] {
  const out: Cidr[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const dest = leHex(f[1]!);
    const mask = leHex(f[7]!);
    if (dest === undefined || mask === undefined || mask === 0) continue;
    let prefix = 0;
    for (let m = mask; m !== 0; m = (m << 1) >>> 0) prefix++; // masks are contiguous high bits
    out.push({ base: (dest & mask) >>> 0, prefix });
  }
  return out;
}

function leHex(h: string): number | undefined {
  if (!/^[0-9A-Fa-f]{8}$/.test(h)) return undefined;
  const n = Number.parseInt(h, 16);
  return (((n & 255) << 24) | (((n >>> 8) & 255) << 16) | (((n >>> 16) & 255) << 8) | (n >>> 24)) >>> 0;
}

// ---------------------------------------------------------------------------------------------- subnets for networks

/**
 * The first subnet of each pool's `size` that overlaps neither `taken` (other networks' subnets, host routes).
 * dockerd's message when all are used.
 */
export function pickSubnet(pools: Array<{ base: string; size: number }>, taken: Cidr[]): Cidr {
  for (const pool of pools) {
    const p = parseCidr(pool.base);
    if (pool.size < p.prefix || pool.size > 30) continue;
    const step = 2 ** (32 - pool.size);
    for (let base = p.base; base <= lastAddress(p); base += step) {
      const c = { base, prefix: pool.size };
      if (!taken.some((t) => overlaps(t, c))) return c;
    }
  }
  throw new DockerError(
    400,
    'could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network',
  );
}

/** One entry of a create request's IPAM.Config. */
export interface IpamRequest {
  Subnet?: string;
  IPRange?: string;
  Gateway?: string;
}

/**
 * A new network's IPAM from the user's request (dockerd's validation and wording) or, when none is given, a subnet
 * from the pools. `others`: the subnets of the existing networks; `routes`: the host's (only avoided when picking).
 */
export function planIpam(
  requested: IpamRequest[],
  others: Cidr[],
  routes: Cidr[],
  pools: Array<{ base: string; size: number }>,
): IpamConfig[] {
  if (requested.length === 0) {
    const subnet = pickSubnet(pools, [...others, ...routes]);
    return [{ subnet: formatCidr(subnet), gateway: formatIp(subnet.base + 1) }];
  }
  if (requested.length > 1) throw new DockerError(501, 'networks with more than one IPv4 subnet are not supported yet');
  const r = requested[0]!;
  if (!r.Subnet) {
    if (r.Gateway || r.IPRange) throw badRequest('invalid network config: a gateway or ip-range needs a subnet');
    return planIpam([], others, routes, pools);
  }
  if (isIpv6(r.Subnet)) throw new DockerError(501, 'IPv6 subnets are not supported yet');
  const errs: string[] = [];
  const ap = tryParseAddrPrefix(r.Subnet);
  if (!ap) throw badRequest(`invalid network config:\ninvalid subnet ${r.Subnet}: invalid CIDR block notation`);
  const subnet = parseCidr(r.Subnet);
  if (subnet.base !== ap.addr) errs.push(`invalid subnet ${r.Subnet}: it should be ${formatCidr(subnet)}`);
  if (subnet.prefix > 30) errs.push(`invalid subnet ${r.Subnet}: it has no room for a gateway and a container`);
  let range: Cidr | undefined;
  if (r.IPRange) {
    const rp = tryParseAddrPrefix(r.IPRange);
    if (!rp) errs.push(`invalid ip-range ${r.IPRange}: invalid CIDR block notation`);
    else {
      range = parseCidr(r.IPRange);
      if (range.prefix < subnet.prefix)
        errs.push(`invalid ip-range ${r.IPRange}: CIDR block is bigger than its parent subnet ${formatCidr(subnet)}`);
      if (range.base !== rp.addr) errs.push(`invalid ip-range ${r.IPRange}: it should be ${formatCidr(range)}`);
      if (!overlaps(subnet, range))
        errs.push(`invalid ip-range ${r.IPRange}: parent subnet ${formatCidr(subnet)} doesn't contain ip-range`);
    }
  }
  let gateway = subnet.base + 1;
  if (r.Gateway) {
    const g = tryParseIp(r.Gateway);
    if (g === undefined) errs.push(`invalid gateway ${r.Gateway}: invalid address`);
    else if (!contains(subnet, g))
      errs.push(`invalid gateway ${r.Gateway}: parent subnet ${formatCidr(subnet)} doesn't contain this address`);
    else gateway = g;
  }
  if (errs.length) throw badRequest(`invalid network config:\n${errs.join('\n')}`);
  if (others.some((o) => overlaps(o, subnet)))
    throw new DockerError(403, 'invalid pool request: Pool overlaps with other one on this address space');
  const out: IpamConfig = { subnet: formatCidr(subnet), gateway: formatIp(gateway) };
  if (range) out.ipRange = formatCidr(range);
  return [out];
}

/** The default bridge's IPAM from `--bip` ("192.168.215.1/24": the gateway with the prefix). */
export function ipamFromBip(bip: string): IpamConfig {
  const ap = tryParseAddrPrefix(bip);
  if (!ap || ap.prefix > 30) throw badRequest(`--bip ${bip}: expected an IPv4 address with a prefix length up to 30`);
  const subnet = parseCidr(bip);
  if (ap.addr === subnet.base || ap.addr === lastAddress(subnet))
    throw badRequest(`--bip ${bip}: the bridge needs a host address, not the network or broadcast address`);
  return { subnet: formatCidr(subnet), gateway: formatIp(ap.addr) };
}

// ---------------------------------------------------------------------------------------------- container addresses

/** The prefix length of the network's (first) subnet. */
export function prefixLenOf(rec: NetworkRecord): number {
  return parseCidr(rec.ipam[0]!.subnet).prefix;
}

/** The lowest free address of the network's ip-range (or subnet), recorded as `containerId`'s. */
export function allocate(rec: NetworkRecord, containerId: string): string {
  for (const cfg of rec.ipam) {
    const subnet = parseCidr(cfg.subnet);
    const pool = cfg.ipRange ? parseCidr(cfg.ipRange) : subnet;
    const first = Math.max(pool.base, subnet.base + 1);
    const last = Math.min(lastAddress(pool), lastAddress(subnet) - 1);
    for (let n = first; n <= last; n++) {
      const ip = formatIp(n);
      if (ip === cfg.gateway || ip in rec.allocated) continue;
      rec.allocated[ip] = containerId;
      return ip;
    }
  }
  throw new DockerError(
    503,
    `no available IPv4 addresses on network ${rec.name}: every address of ${rec.ipam[0]?.ipRange ?? rec.ipam[0]?.subnet} is in use`,
  );
}

/** Check that a static address fits the network (dockerd's 400), without taking it. */
export function checkStatic(rec: NetworkRecord, ip: string): void {
  if (isIpv6(ip)) throw new DockerError(501, 'IPv6 addresses are not supported yet');
  const n = tryParseIp(ip);
  const inSubnet = (cfg: IpamConfig): boolean => {
    const s = parseCidr(cfg.subnet);
    return n !== undefined && contains(s, n) && n !== s.base && n !== lastAddress(s);
  };
  if (n === undefined || !rec.ipam.some(inSubnet))
    throw badRequest(`Invalid address ${ip}: It does not belong to any of this network's subnets`);
}

/** Take a static address (`--ip`): it must be in a subnet and free (dockerd's "Address already in use"). */
export function allocateStatic(rec: NetworkRecord, ip: string, containerId: string): string {
  checkStatic(rec, ip);
  const owner = rec.allocated[ip];
  if (owner !== undefined && owner !== containerId) throw conflict('Address already in use');
  rec.allocated[ip] = containerId;
  return ip;
}

/** Give an address back (only if `containerId` holds it, so a stale release never frees someone else's). */
export function release(rec: NetworkRecord, ip: string, containerId: string): void {
  if (rec.allocated[ip] === containerId) delete rec.allocated[ip];
}
