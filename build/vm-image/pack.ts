// Packing the staged tree as the initramfs: a newc cpio (names sorted, owner root, every mtime SOURCE_DATE_EPOCH,
// inode numbers from --reproducible) compressed with a format the kernel decompresses (CONFIG_RD_*).
import { lutimesSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BuildError, run, walk } from './util.js';

export type Compression = 'lz4' | 'zstd' | 'gzip' | 'none';

/** The kernel config option that must be =y for each compression. */
const KERNEL_OPTION: Record<Compression, string | undefined> = {
  lz4: 'CONFIG_RD_LZ4',
  zstd: 'CONFIG_RD_ZSTD',
  gzip: 'CONFIG_RD_GZIP',
  none: undefined,
};

/** The compressor's command line (reads stdin, writes stdout). The kernel's lz4 reader needs the legacy frame (-l). */
const COMPRESSOR: Record<Compression, string> = {
  lz4: 'lz4 -l -9 -q',
  zstd: 'zstd -q -19 -T0',
  gzip: 'gzip -n -9',
  none: 'cat',
};

export function checkCompression(c: string, config: Map<string, string>): Compression {
  if (!(c in COMPRESSOR)) throw new BuildError(`unknown initramfs compression ${c} (lz4, zstd, gzip or none)`);
  const opt = KERNEL_OPTION[c as Compression];
  if (opt && config.get(opt) !== 'y')
    throw new BuildError(`the kernel cannot unpack a ${c} initramfs (${opt} is not set)`);
  return c as Compression;
}

/** Set every mtime in the tree to `epoch` (symlinks themselves, not their targets). */
export function fixTimes(root: string, epoch: number): void {
  for (const rel of walk(root)) lutimesSync(join(root, rel), epoch, epoch);
  lutimesSync(root, epoch, epoch);
}

/** Write `root` as a compressed newc cpio to `outFile`; its size before compression. */
export function packCpio(root: string, outFile: string, compression: Compression): number {
  const cpio = `${outFile}.cpio`;
  run('bash', [
    '-o',
    'pipefail',
    '-c',
    'cd "$1" && find . -print0 | LC_ALL=C sort -z | cpio --null --create --format=newc --reproducible --owner=0:0 --quiet > "$2"',
    'pack',
    root,
    cpio,
  ]);
  const raw = statSync(cpio).size;
  run('bash', [
    '-o',
    'pipefail',
    '-c',
    `${COMPRESSOR[compression]} < "$1" > "$2" && rm -f "$1"`,
    'pack',
    cpio,
    outFile,
  ]);
  return raw;
}
