// Platform selection in image indexes / manifest lists, as containerd's platforms matcher does it for one host:
// os and architecture must match (aliases normalised), the variant must be one the host can run, the best
// (closest) variant wins; attestation manifests (platform unknown/unknown) are never chosen.
import { notFoundError } from '../contracts.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const ARCH_ALIASES: Record<string, string> = {
  x86_64: 'amd64',
  'x86-64': 'amd64',
  aarch64: 'arm64',
  armhf: 'arm',
  armel: 'arm',
  i386: '386',
  i686: '386',
};

/** Normalise architecture and variant (arm64's default variant is v8, arm's is v7, amd64's none). */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() || undefined;
  if (p.architecture === 'armhf') variant ??= 'v7';
  if (p.architecture === 'armel') variant ??= 'v6';
  architecture = ARCH_ALIASES[architecture] ?? architecture;
  if (architecture === 'arm64' && (variant === 'v8' || variant === '8')) variant = undefined;
  if (architecture === 'arm' && variant === undefined) variant = 'v7';
  if (architecture === 'arm' && /^\d$/.test(variant ?? '')) variant = `v${variant}`;
  if (architecture === 'amd64' && variant === 'v1') variant = undefined;
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

/** The platform this daemon runs containers for. */
export function hostPlatform(): Platform {
  const map: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'arm',
    ia32: '386',
    ppc64: 'ppc64le',
    s390x: 's390x',
    riscv64: 'riscv64',
    loong64: 'loong64',
  };
  const architecture = map[process.arch] ?? process.arch;
  if (architecture === 'arm') {
    const v = (process.config.variables as Record<string, unknown>).arm_version;
    return normalizePlatform({ os: 'linux', architecture, variant: v ? `v${String(v)}` : 'v7' });
  }
  return { os: 'linux', architecture };
}

/** "linux", "linux/arm64", "linux/arm/v6" → Platform; empty gives undefined; a 400-worthy input throws. */
export function parsePlatform(s: string | null | undefined): Platform | undefined {
  if (!s) return undefined;
  const parts = s.split('/');
  if (parts.length > 3 || parts.some((p) => p === '')) throw new Error(`invalid platform: "${s}"`);
  const [os, architecture, variant] = parts as [string, string | undefined, string | undefined];
  const host = hostPlatform();
  return normalizePlatform({
    os,
    architecture: architecture ?? host.architecture,
    variant: variant ?? (architecture === undefined ? host.variant : undefined),
  });
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter((x) => x !== undefined).join('/');
}

/** Variants a host with `want` can run, best first: arm v7 runs v7, v6, v5; arm64 (v8) runs only its own. */
function compatibleVariants(want: Platform): Array<string | undefined> {
  if (want.architecture === 'arm') {
    const n = Number((want.variant ?? 'v7').slice(1));
    const out: string[] = [];
    for (let v = n; v >= 5; v--) out.push(`v${v}`);
    return out;
  }
  if (want.architecture === 'amd64' && want.variant !== undefined) {
    const n = Number(want.variant.slice(1));
    const out: Array<string | undefined> = [];
    for (let v = n; v >= 2; v--) out.push(`v${v}`);
    out.push(undefined);
    return out;
  }
  if (want.architecture === 'arm64' && want.variant !== undefined) return [want.variant, undefined];
  return [want.variant];
}

export interface IndexEntry {
  digest: string;
  mediaType?: string;
  size?: number;
  platform?: { os?: string; architecture?: string; variant?: string };
}

/** The best entry of an index for `want`; a 404 DockerError with dockerd's wording when none fits. */
export function selectManifest<T extends IndexEntry>(entries: T[], want: Platform): T {
  const w = normalizePlatform(want);
  const variants = compatibleVariants(w);
  let best: { entry: T; rank: number } | undefined;
  for (const e of entries) {
    const p = e.platform;
    if (!p || !p.os || !p.architecture || p.os === 'unknown' || p.architecture === 'unknown') continue;
    const n = normalizePlatform({ os: p.os, architecture: p.architecture, variant: p.variant });
    if (n.os !== w.os || n.architecture !== w.architecture) continue;
    const rank = variants.indexOf(n.variant);
    if (rank < 0) continue;
    if (!best || rank < best.rank) best = { entry: e, rank };
  }
  if (!best) throw notFoundError(`no matching manifest for ${formatPlatform(w)} in the manifest list entries`);
  return best.entry;
}
