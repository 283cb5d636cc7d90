// Docker seccomp profiles (the JSON shape of docker-default-seccomp.json and of `--security-opt seccomp=file`) →
// OCI linux.seccomp, with Docker's filtering rules: architectures from archMap for the native arch; a syscall group
// is kept when every `includes` condition holds (all its caps in the bounding set, the arch listed, the kernel at
// least minKernel) and no `excludes` condition holds (any of its caps in the bounding set, the arch listed, the
// kernel at least minKernel). Pure.
import defaultProfileJson from '../seccomp-default.json' with { type: 'json' };

export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

interface Filter {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}

export interface DockerSeccompSyscall {
  name?: string;
  names?: string[];
  action: string;
  errnoRet?: number;
  args?: SeccompArg[] | null;
  comment?: string;
  includes?: Filter;
  excludes?: Filter;
}

export interface DockerSeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: Array<{ architecture: string; subArchitectures?: string[] }> | null;
  syscalls?: DockerSeccompSyscall[] | null;
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
}

export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: Array<{ names: string[]; action: string; errnoRet?: number; args?: SeccompArg[] }>;
}

export const defaultSeccompProfile = defaultProfileJson as DockerSeccompProfile;

/** Go's GOARCH names (used by the profile's `arches`) from Node's process.arch. */
export function goArch(nodeArch: string = process.arch): string {
  const map: Record<string, string> = {
    x64: 'amd64',
    ia32: '386',
    arm64: 'arm64',
    arm: 'arm',
    ppc64: 'ppc64le',
    s390x: 's390x',
    riscv64: 'riscv64',
    mips: 'mips',
    mipsel: 'mipsle',
    loong64: 'loong64',
  };
  return map[nodeArch] ?? nodeArch;
}

/** SCMP_ARCH_* for a Go arch name (Docker's table). */
const scmpArch: Record<string, string> = {
  '386': 'SCMP_ARCH_X86',
  amd64: 'SCMP_ARCH_X86_64',
  arm: 'SCMP_ARCH_ARM',
  arm64: 'SCMP_ARCH_AARCH64',
  mips: 'SCMP_ARCH_MIPS',
  mipsle: 'SCMP_ARCH_MIPSEL',
  mips64: 'SCMP_ARCH_MIPS64',
  mips64le: 'SCMP_ARCH_MIPSEL64',
  ppc64: 'SCMP_ARCH_PPC64',
  ppc64le: 'SCMP_ARCH_PPC64LE',
  riscv64: 'SCMP_ARCH_RISCV64',
  s390: 'SCMP_ARCH_S390',
  s390x: 'SCMP_ARCH_S390X',
  loong64: 'SCMP_ARCH_LOONGARCH64',
};

/** Compare kernel versions "a.b[.c]": negative when a < b. */
export function compareKernel(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((x) => parseInt(x, 10) || 0);
  const pb = b.split(/[.-]/).map((x) => parseInt(x, 10) || 0);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export interface SeccompContext {
  /** The container's bounding capabilities (CAP_*). */
  caps: readonly string[];
  /** Go arch name (amd64, arm64, ...). */
  arch: string;
  /** The running kernel's release ("6.1.0-18-amd64"). */
  kernel: string;
}

/** Parse a profile given as JSON text (`--security-opt seccomp=<content>`); a 400-worthy Error when malformed. */
export function parseSeccompProfile(text: string): DockerSeccompProfile {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new Error(`decoding seccomp profile failed: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('decoding seccomp profile failed');
  const p = v as DockerSeccompProfile;
  if (typeof p.defaultAction !== 'string') throw new Error('decoding seccomp profile failed: defaultAction is missing');
  if (p.architectures && p.architectures.length > 0 && p.archMap && p.archMap.length > 0)
    throw new Error(
      "'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'",
    );
  for (const s of p.syscalls ?? []) {
    if (s.name && s.names && s.names.length > 0)
      throw new Error("'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'");
  }
  return p;
}

/** Docker's setupSeccomp: the OCI linux.seccomp for a profile and a container. */
export function toOciSeccomp(profile: DockerSeccompProfile, ctx: SeccompContext): OciSeccomp {
  const out: OciSeccomp = { defaultAction: profile.defaultAction };
  if (profile.defaultErrnoRet !== undefined) out.defaultErrnoRet = profile.defaultErrnoRet;
  const native = scmpArch[ctx.arch];
  let arches: string[] = [];
  if (profile.archMap && profile.archMap.length > 0) {
    for (const a of profile.archMap) {
      if (a.architecture === native) arches.push(a.architecture, ...(a.subArchitectures ?? []));
    }
  } else arches = [...(profile.architectures ?? [])];
  if (arches.length > 0) out.architectures = arches;
  if (profile.flags && profile.flags.length > 0) out.flags = [...profile.flags];
  if (profile.listenerPath) out.listenerPath = profile.listenerPath;
  if (profile.listenerMetadata) out.listenerMetadata = profile.listenerMetadata;

  const caps = new Set(ctx.caps);
  const syscalls: NonNullable<OciSeccomp['syscalls']> = [];
  for (const call of profile.syscalls ?? []) {
    const ex = call.excludes;
    if (ex) {
      if (ex.arches?.includes(ctx.arch)) continue;
      if (ex.caps?.some((c) => caps.has(c))) continue;
      if (ex.minKernel && compareKernel(ctx.kernel, ex.minKernel) >= 0) continue;
    }
    const inc = call.includes;
    if (inc) {
      if (inc.arches && inc.arches.length > 0 && !inc.arches.includes(ctx.arch)) continue;
      if (inc.caps && !inc.caps.every((c) => caps.has(c))) continue;
      if (inc.minKernel && compareKernel(ctx.kernel, inc.minKernel) < 0) continue;
    }
    const names = call.name ? [call.name] : [...(call.names ?? [])];
    if (names.length === 0) continue;
    const rule: NonNullable<OciSeccomp['syscalls']>[number] = { names, action: call.action };
    if (call.errnoRet !== undefined) rule.errnoRet = call.errnoRet;
    if (call.args && call.args.length > 0) rule.args = call.args.map((a) => ({ ...a }));
    syscalls.push(rule);
  }
  out.syscalls = syscalls;
  return out;
}
