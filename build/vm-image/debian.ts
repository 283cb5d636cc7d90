// The Debian inputs of the VM image, fetched from the mirror with apt and debootstrap into the cache directory:
// the kernel package (downloaded and unpacked, never installed on the host) and the bookworm minbase userland.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BuildError, log, run, runText, sha256 } from './util.js';

export const SUITE = 'bookworm';
export const MIRROR = 'http://deb.debian.org/debian';
/** What the guest runs besides our own programs (docs/vm-image.md "What is in the image"). */
export const ROOTFS_PACKAGES = [
  'openssh-server',
  'iproute2',
  'nftables',
  'e2fsprogs',
  'ca-certificates',
  'kmod',
  'busybox-static',
];

/**
 * Kernel flavours: Debian's generic kernel has virtio-9p (the shared folders); the cloud kernel boots ~0.5 s faster
 * under TCG here but is built without 9p (CONFIG_NET_9P is not set), so it can only share folders by virtio-fs.
 */
export const KERNEL_METAPACKAGES = { generic: 'linux-image-amd64', cloud: 'linux-image-cloud-amd64' } as const;
export type KernelFlavour = keyof typeof KERNEL_METAPACKAGES;

export interface PackageRef {
  name: string;
  version: string;
}

let aptUpdated = false;
/** apt-get update once per build: when the package lists are missing (fresh machines) or stale (404s). */
function aptUpdate(): void {
  if (aptUpdated) return;
  log('apt-get update (package lists missing or stale)');
  run('apt-get', ['update', '-q']);
  aptUpdated = true;
}

/** The real kernel package the metapackage depends on now (e.g. linux-image-6.1.0-57-amd64) and its version. */
export function resolveKernel(flavour: KernelFlavour): PackageRef {
  const meta = KERNEL_METAPACKAGES[flavour];
  for (let attempt = 0; ; attempt++) {
    let deps = '';
    try {
      deps = runText('apt-cache', ['depends', meta]);
    } catch {
      // "E: No packages found" on a machine whose lists were never fetched
    }
    const name = /Depends: (linux-image-\S+)/.exec(deps)?.[1];
    if (name) {
      const policy = runText('apt-cache', ['policy', name]);
      const version = /Candidate: (\S+)/.exec(policy)?.[1];
      if (version && version !== '(none)') return { name, version };
    }
    if (attempt > 0) throw new BuildError(`apt knows no ${meta} (is the bookworm main repository in sources.list?)`);
    aptUpdate();
  }
}

/** Download and unpack a kernel package into the cache; its directory (boot/, lib/modules/). */
export function fetchKernel(cache: string, pkg: PackageRef): string {
  const dir = join(cache, 'kernel', `${pkg.name}_${pkg.version}`);
  if (existsSync(join(dir, '.complete'))) return dir;
  const debs = join(cache, 'debs');
  mkdirSync(debs, { recursive: true });
  const file = `${pkg.name}_${pkg.version.replace(/:/g, '%3a')}_amd64.deb`;
  if (!existsSync(join(debs, file))) {
    log(`downloading ${pkg.name} ${pkg.version}`);
    // The sandbox user _apt cannot write into root's cache dir: download as root (nothing is installed).
    const args = ['download', '-q', '-o', 'APT::Sandbox::User=root', `${pkg.name}=${pkg.version}`];
    try {
      run('apt-get', args, { cwd: debs });
    } catch {
      aptUpdate();
      run('apt-get', args, { cwd: debs });
    }
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  run('dpkg-deb', ['-x', join(debs, file), dir]);
  writeFileSync(join(dir, '.complete'), '');
  return dir;
}

/** The kernel's version string (the lib/modules/<kver> directory) in an unpacked kernel package. */
export function kernelVersion(kernelDir: string): string {
  const vs = readdirSync(join(kernelDir, 'lib', 'modules'));
  if (vs.length !== 1 || !vs[0]) throw new BuildError(`expected one kernel in ${kernelDir}/lib/modules, found ${vs}`);
  return vs[0];
}

/**
 * The debootstrapped userland, made once per package list and kept in the cache (debootstrap takes minutes).
 * The cached tree is never modified: each build copies it and prunes the copy. Delete the directory (or the whole
 * cache) to pick up newer Debian packages.
 */
export function debootstrapRootfs(cache: string): string {
  const key = sha256([SUITE, 'minbase', MIRROR, ...ROOTFS_PACKAGES].join('\n')).slice(0, 16);
  const dir = join(cache, `rootfs-${SUITE}-${key}`);
  if (existsSync(join(dir, '.skiff-complete'))) return dir;
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
  log(`debootstrap ${SUITE} (minbase + ${ROOTFS_PACKAGES.join(',')}): a few minutes, once`);
  const t0 = Date.now();
  run('debootstrap', ['--variant=minbase', `--include=${ROOTFS_PACKAGES.join(',')}`, SUITE, tmp, MIRROR], {
    inherit: true,
  });
  // The downloaded .debs are not part of the tree we use.
  rmSync(join(tmp, 'var/cache/apt/archives'), { recursive: true, force: true });
  writeFileSync(join(tmp, '.skiff-complete'), '');
  renameSync(tmp, dir);
  log(`debootstrap done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return dir;
}

/** Installed packages and versions of a debootstrapped tree (from its dpkg status), sorted by name. */
export function installedPackages(rootfs: string): PackageRef[] {
  const status = readFileSync(join(rootfs, 'var/lib/dpkg/status'), 'utf8');
  const out: PackageRef[] = [];
  for (const stanza of status.split(/\n\n+/)) {
    const name = /^Package: (\S+)/m.exec(stanza)?.[1];
    const version = /^Version: (\S+)/m.exec(stanza)?.[1];
    const installed = /^Status: .* installed$/m.test(stanza);
    if (name && version && installed) out.push({ name, version });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
