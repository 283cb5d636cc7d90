// Linux bridges and veth pairs through iproute2 (docs/networking.md "A container's network namespace"). Each
// operation is one `ip -batch -` (plus one inside the container's netns for a veth), because this is on the
// `docker run` hot path: a container's interface costs two process spawns.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { serverError } from '../contracts.js';
import type { VethPlan } from './types.js';

/** Run `ip -batch -` (optionally inside `netnsOf`'s network namespace) with these lines. */
function ipBatch(lines: string[], netnsOf?: number): Promise<{ code: number; stderr: string }> {
  const [cmd, args] =
    netnsOf === undefined
      ? ['ip', ['-batch', '-']]
      : ['nsenter', [`--net=/proc/${netnsOf}/ns/net`, 'ip', '-batch', '-']];
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.stdin.on('error', () => undefined);
    p.once('error', (err) => reject(serverError(`${cmd}: ${err.message} (is iproute2 installed?)`)));
    p.once('close', (code) => resolve({ code: code ?? -1, stderr: stderr.trim() }));
    p.stdin.end(lines.join('\n') + '\n');
  });
}

async function mustBatch(what: string, lines: string[], netnsOf?: number): Promise<void> {
  const r = await ipBatch(lines, netnsOf);
  if (r.code !== 0) throw serverError(`${what}: ${r.stderr || `ip exited with ${r.code}`}`);
}

/** Whether this network namespace has the interface (/proc/self/net is per netns, unlike a mounted /sys). */
function linkExists(name: string): boolean {
  return readFileSync('/proc/self/net/dev', 'utf8')
    .split('\n')
    .some((l) => l.trimStart().startsWith(`${name}:`));
}

/** Interface names must be valid for the kernel (15 bytes) and harmless in an ip batch line. */
function checkIfName(name: string): void {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name)) throw serverError(`invalid interface name ${JSON.stringify(name)}`);
}

/**
 * Make the bridge if it is missing, give it `gatewayCidr` ("10.221.3.1/24") and bring it up. Idempotent: after a
 * daemon restart the bridge is still there and this changes nothing.
 */
export async function ensureBridge(name: string, gatewayCidr: string): Promise<void> {
  checkIfName(name);
  if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(gatewayCidr)) throw serverError(`invalid bridge address ${gatewayCidr}`);
  const lines: string[] = [];
  // A fixed MAC: by default a bridge takes the lowest of its ports', so it would change as containers come and
  // go, and containers' ARP caches would then point at an address the bridge no longer answers to.
  const gateway = gatewayCidr.split('/')[0]!;
  if (!linkExists(name)) lines.push(`link add name ${name} address ${macForIp(gateway)} type bridge`);
  lines.push(`addr replace ${gatewayCidr} brd + dev ${name}`, `link set dev ${name} up`);
  await mustBatch(`setting up bridge ${name}`, lines);
}

/** Remove a bridge (gone already is fine). */
export async function deleteBridge(name: string): Promise<void> {
  checkIfName(name);
  if (!linkExists(name)) return;
  const r = await ipBatch([`link del dev ${name}`]);
  if (r.code !== 0 && linkExists(name)) throw serverError(`removing bridge ${name}: ${r.stderr}`);
}

/**
 * Make a container's interface: a veth whose host end joins the bridge (hairpin on, so a container can reach its
 * own published ports) and whose other end is `ifName` in the netns of `pid`, with its address, MAC and, on the
 * first network, the default route.
 */
export async function addVeth(plan: VethPlan): Promise<void> {
  checkIfName(plan.hostIfName);
  checkIfName(plan.ifName);
  checkIfName(plan.bridge);
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(plan.macAddress))
    throw serverError(`invalid MAC address ${plan.macAddress}`);
  const outside = [
    `link add name ${plan.hostIfName} type veth peer name ${plan.ifName} address ${plan.macAddress} netns ${plan.pid}`,
    `link set dev ${plan.hostIfName} master ${plan.bridge} up`,
    `link set dev ${plan.hostIfName} type bridge_slave hairpin on`,
  ];
  const inside = [
    'link set dev lo up',
    `addr add ${plan.address}/${plan.prefixLen} dev ${plan.ifName}`,
    `link set dev ${plan.ifName} up`,
  ];
  if (plan.defaultGateway) inside.push(`route add default via ${plan.defaultGateway} dev ${plan.ifName}`);
  try {
    await mustBatch(`creating ${plan.hostIfName} on ${plan.bridge} for process ${plan.pid}`, outside);
    await mustBatch(`configuring ${plan.ifName} in the network namespace of process ${plan.pid}`, inside, plan.pid);
  } catch (err) {
    // The pair may exist already (a later line failed): the name is ours alone, so remove it.
    await removeVeth(plan.hostIfName).catch(() => undefined);
    throw err;
  }
}

/** Remove a container interface by its host end (the peer goes with it); already gone is fine. */
export async function removeVeth(hostIfName: string): Promise<void> {
  checkIfName(hostIfName);
  if (!linkExists(hostIfName)) return;
  const r = await ipBatch([`link del dev ${hostIfName}`]);
  if (r.code !== 0 && linkExists(hostIfName)) throw serverError(`removing ${hostIfName}: ${r.stderr}`);
}

/** "veth" + 7 hex digits, as Docker names the host ends. */
export function randomVethName(): string {
  return `veth${randomBytes(4).toString('hex').slice(0, 7)}`;
}

/** Docker's MAC for an address: 02:42 and the four address bytes. */
export function macForIp(ip: string): string {
  const bytes = ip.split('.').map((b) => Number(b).toString(16).padStart(2, '0'));
  return ['02', '42', ...bytes].join(':');
}
