// Facts about the host for /version and /info: kernel, OS, architecture, cgroups, the engine ID.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { arch, cpus, hostname, machine, release, totalmem } from 'node:os';
import { join } from 'node:path';

/** Go's GOARCH for Node's process.arch. */
export function goArch(): string {
  const m: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le' };
  return m[arch()] ?? arch();
}

export function osRelease(): { prettyName: string; versionId: string } {
  try {
    const text = readFileSync('/etc/os-release', 'utf8');
    const get = (k: string): string => text.match(new RegExp(`^${k}=(.*)$`, 'm'))?.[1]?.replace(/^"|"$/g, '') ?? '';
    return { prettyName: get('PRETTY_NAME') || 'Linux', versionId: get('VERSION_ID') };
  } catch {
    return { prettyName: 'Linux', versionId: '' };
  }
}

export const cgroupVersion = (): '1' | '2' => (existsSync('/sys/fs/cgroup/cgroup.controllers') ? '2' : '1');

export function hostFacts() {
  return {
    kernelVersion: release(),
    architecture: machine(),
    ncpu: cpus().length,
    memTotal: totalmem(),
    name: hostname(),
    os: osRelease(),
    cgroupVersion: cgroupVersion(),
  };
}

/** The engine's ID, made once and kept in `<data-root>/engine-id` (as dockerd does). */
export function engineId(dataRoot: string): string {
  const p = join(dataRoot, 'engine-id');
  try {
    const id = readFileSync(p, 'utf8').trim();
    if (id) return id;
  } catch {
    /* not made yet */
  }
  const id = randomUUID();
  try {
    mkdirSync(dataRoot, { recursive: true });
    writeFileSync(p, id + '\n');
  } catch {
    /* read-only data root: an ID for this run */
  }
  return id;
}
