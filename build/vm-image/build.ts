// Builds the Skiff VM image (docs/vm-image.md): `npm run build:vm-image` writes dist/vm/{kernel,vmlinuz,initramfs,
// manifest.json}. The kernel comes from Debian's package, the userland from debootstrap (cached under
// ~/.cache/skiff/vm), plus the host's Node.js and the project's dist/ outputs. Rebuilds only when an input changed
// (a content hash over all of them): otherwise it prints "up to date".
//
//   npm run build:vm-image [-- --out DIR] [--kernel generic|cloud] [--compress lz4|zstd|gzip|none]
//   env: SKIFF_CACHE (cache root, default ~/.cache/skiff), SOURCE_DATE_EPOCH (mtimes in the image)
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  debootstrapRootfs,
  fetchKernel,
  installedPackages,
  kernelVersion,
  KERNEL_METAPACKAGES,
  MIRROR,
  resolveKernel,
  ROOTFS_PACKAGES,
  SUITE,
  type KernelFlavour,
  type PackageRef,
} from './debian.js';
import { extractVmlinux, kernelConfig, stageModules } from './kernel.js';
import { checkCompression, fixTimes, packCpio, type Compression } from './pack.js';
import { configure, copyRootfs, installLibs, installSkiff, prune, SKIFF_PROGRAMS, verify } from './rootfs.js';
import { BuildError, hashFile, log, mib, run, sha256 } from './util.js';

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(HERE, '../..');

export interface BuildOptions {
  /** Output directory (default dist/vm). */
  out?: string;
  /** Cache of downloads and the debootstrap tree (default $SKIFF_CACHE/vm or ~/.cache/skiff/vm). */
  cache?: string;
  kernel?: KernelFlavour;
  compress?: Compression;
  /** mtime of every file in the initramfs (default $SOURCE_DATE_EPOCH or 0). */
  epoch?: number;
  /** The project's build outputs (default dist/). */
  dist?: string;
  /** Print progress (default true). */
  verbose?: boolean;
}

export interface Manifest {
  kernelVersion: string;
  kernelPackage: PackageRef;
  kernelFlavour: KernelFlavour;
  compression: Compression;
  node: string;
  modules: string[];
  packages: PackageRef[];
  inputsHash: string;
  inputs: Record<string, string>;
  sizes: { kernel: number; vmlinuz: number; initramfs: number; initramfsUncompressed: number };
  builtAt: string;
}

export interface BuildResult {
  out: string;
  kernel: string;
  vmlinuz: string;
  initramfs: string;
  manifest: Manifest;
  upToDate: boolean;
}

/** What the built files are called in the output directory. */
export const OUTPUTS = { kernel: 'kernel', vmlinuz: 'vmlinuz', initramfs: 'initramfs', manifest: 'manifest.json' };

export function defaultCache(): string {
  return process.env.SKIFF_CACHE ? join(process.env.SKIFF_CACHE, 'vm') : join(homedir(), '.cache', 'skiff', 'vm');
}

/** The project's files that go into the image, each checked to exist (with the command that makes it). */
function projectInputs(dist: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const p of SKIFF_PROGRAMS) files[`bin/${p}`] = join(dist, 'bin', p);
  files['bin/skiff-init'] = join(dist, 'bin', 'skiff-init');
  files['native/skiff_native.node'] = join(dist, 'native', 'skiff_native.node');
  if (existsSync(join(dist, 'proto')))
    for (const f of readdirSync(join(dist, 'proto')).sort()) files[`proto/${f}`] = join(dist, 'proto', f);
  const missing = Object.entries(files).filter(([, p]) => !existsSync(p));
  if (!existsSync(join(dist, 'proto', 'agent.proto'))) missing.push(['proto/agent.proto', join(dist, 'proto')]);
  if (missing.length > 0)
    throw new BuildError(
      `the image needs the project's build outputs, missing: ${missing.map(([k]) => `dist/${k}`).join(', ')}: run npm run build first`,
    );
  return files;
}

function readManifest(out: string): Manifest | undefined {
  try {
    return JSON.parse(readFileSync(join(out, OUTPUTS.manifest), 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
}

export function buildVmImage(opts: BuildOptions = {}): BuildResult {
  const verbose = opts.verbose ?? true;
  const say = (m: string): void => {
    if (verbose) log(m);
  };
  if (process.platform !== 'linux' || process.arch !== 'x64')
    throw new BuildError('the VM image is built on x86_64 Linux (debootstrap, chroot); build it there or in CI');
  if (process.getuid?.() !== 0)
    throw new BuildError('building the VM image needs root (debootstrap, chroot): run it with sudo');
  const out = resolve(opts.out ?? join(REPO, 'dist', 'vm'));
  const cache = resolve(opts.cache ?? defaultCache());
  const dist = resolve(opts.dist ?? join(REPO, 'dist'));
  const flavour = opts.kernel ?? 'generic';
  if (!(flavour in KERNEL_METAPACKAGES)) throw new BuildError(`unknown kernel flavour ${flavour} (generic or cloud)`);
  const compressName = opts.compress ?? 'lz4';
  const epoch = opts.epoch ?? Number(process.env.SOURCE_DATE_EPOCH ?? 0);
  mkdirSync(cache, { recursive: true });

  // 1. Every input, hashed: the rebuild decision and the manifest.
  const files = projectInputs(dist);
  const nodeBinary = process.execPath;
  const kernelPkg = resolveKernel(flavour);
  const rootfsCached = debootstrapRootfs(cache);
  const packages = installedPackages(rootfsCached);
  const inputs: Record<string, string> = {};
  for (const f of readdirSync(HERE).sort()) if (f.endsWith('.ts')) inputs[`builder/${f}`] = hashFile(join(HERE, f));
  for (const [k, p] of Object.entries(files)) inputs[`dist/${k}`] = hashFile(p);
  inputs.node = `${process.version} ${hashFile(nodeBinary)}`;
  inputs.kernel = `${kernelPkg.name} ${kernelPkg.version}`;
  inputs.rootfs = sha256(JSON.stringify({ SUITE, MIRROR, ROOTFS_PACKAGES, packages }));
  inputs.options = JSON.stringify({ flavour, compressName, epoch });
  const inputsHash = sha256(JSON.stringify(inputs));

  const paths = {
    kernel: join(out, OUTPUTS.kernel),
    vmlinuz: join(out, OUTPUTS.vmlinuz),
    initramfs: join(out, OUTPUTS.initramfs),
  };
  const previous = readManifest(out);
  if (previous?.inputsHash === inputsHash && Object.values(paths).every((p) => existsSync(p))) {
    say(`up to date (${out})`);
    printSizes(previous, say);
    return { out, ...paths, manifest: previous, upToDate: true };
  }

  // 2. Kernel and staged root filesystem.
  const t0 = Date.now();
  const kernelDir = fetchKernel(cache, kernelPkg);
  const kver = kernelVersion(kernelDir);
  const config = kernelConfig(kernelDir, kver);
  const compression = checkCompression(compressName, config);
  const work = join(cache, `work-${process.pid}`);
  const stage = join(work, 'root');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    say(`staging the root filesystem (kernel ${kver}, node ${process.version})`);
    copyRootfs(rootfsCached, stage);
    prune(stage);
    const modules = stageModules(kernelDir, kver, stage);
    configure(stage, modules.files);
    installSkiff(stage, dist, nodeBinary, files['bin/skiff-init'] as string);
    const nativeBinaries = ['skiff-runtime', 'skiff-shim', 'skiff-docker-init', 'skiff-init'].map((p) =>
      join(dist, 'bin', p),
    );
    installLibs(stage, [nodeBinary, ...nativeBinaries, join(dist, 'native', 'skiff_native.node')]);
    run('ldconfig', ['-r', stage]);
    rmSync(join(stage, 'var/cache/ldconfig'), { recursive: true, force: true }); // inode numbers: not reproducible
    verify(stage);
    writeFileSync(
      join(stage, 'etc/skiff/image.json'),
      `${JSON.stringify({ kernelVersion: kver, node: process.version, inputsHash }, null, 2)}\n`,
    );

    // 3. Pack and write the outputs (manifest last: its presence marks a complete build).
    say(`packing the initramfs (${compression})`);
    fixTimes(stage, epoch);
    const tmp = join(work, 'out');
    mkdirSync(tmp);
    const raw = packCpio(stage, join(tmp, OUTPUTS.initramfs), compression);
    extractVmlinux(join(kernelDir, 'boot', `vmlinuz-${kver}`), join(tmp, OUTPUTS.kernel));
    run('cp', [join(kernelDir, 'boot', `vmlinuz-${kver}`), join(tmp, OUTPUTS.vmlinuz)]);
    const manifest: Manifest = {
      kernelVersion: kver,
      kernelPackage: kernelPkg,
      kernelFlavour: flavour,
      compression,
      node: process.version,
      modules: modules.names,
      packages,
      inputsHash,
      inputs,
      sizes: {
        kernel: statSync(join(tmp, OUTPUTS.kernel)).size,
        vmlinuz: statSync(join(tmp, OUTPUTS.vmlinuz)).size,
        initramfs: statSync(join(tmp, OUTPUTS.initramfs)).size,
        initramfsUncompressed: raw,
      },
      builtAt: new Date().toISOString(),
    };
    mkdirSync(out, { recursive: true });
    rmSync(join(out, OUTPUTS.manifest), { force: true });
    for (const k of ['kernel', 'vmlinuz', 'initramfs'] as const) renameSync(join(tmp, OUTPUTS[k]), paths[k]);
    writeFileSync(join(out, OUTPUTS.manifest), `${JSON.stringify(manifest, null, 2)}\n`);
    say(`built ${out} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    printSizes(manifest, say);
    return { out, ...paths, manifest, upToDate: false };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function printSizes(m: Manifest, say: (m: string) => void): void {
  const s = m.sizes;
  say(
    `kernel ${m.kernelVersion}: ELF ${mib(s.kernel)}, vmlinuz ${mib(s.vmlinuz)}; ` +
      `initramfs ${mib(s.initramfs)} (${m.compression}; ${mib(s.initramfsUncompressed)} unpacked)`,
  );
}

function parseArgs(argv: string[]): BuildOptions {
  const opts: BuildOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new BuildError(`${a} needs a value`);
      return v;
    };
    if (a === '--out') opts.out = value();
    else if (a === '--cache') opts.cache = value();
    else if (a === '--kernel') opts.kernel = value() as KernelFlavour;
    else if (a === '--compress') opts.compress = value() as Compression;
    else if (a === '--dist') opts.dist = value();
    else
      throw new BuildError(
        `unknown option ${a} (--out DIR, --cache DIR, --kernel generic|cloud, --compress lz4|zstd|gzip|none)`,
      );
  }
  return opts;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    buildVmImage(parseArgs(process.argv.slice(2)));
  } catch (err) {
    if (!(err instanceof BuildError)) throw err;
    process.stderr.write(`vm-image: ${err.message}\n`);
    process.exit(1);
  }
}
