// Applies one layer (a tar, plain or gzip) to an empty snapshot directory, as overlayfs wants it: whiteouts
// (`.wh.name`) become 0/0 character devices, opaque markers (`.wh..wh..opq`) the xattr trusted.overlay.opaque=y.
//
// Layers are hostile input. Every write goes through these rules:
// - names are relative and have no `..` component (absolute names and `..` are refused, not rewritten);
// - every parent component is checked with lstat inside the snapshot: a symlink (or non-directory) parent is
//   refused, missing parents are made as directories; the final component is never followed (files are created
//   with O_EXCL after whatever was there is unlinked);
// - hard links must name an existing non-directory inside the snapshot, reached the same way;
// - character and block devices are refused (whiteouts are made by us, not taken from the layer);
// - the uncompressed size is bounded, and so is the compression ratio past a grace size (gzip bombs);
// - the caller compares the returned diff id with the image config's before the snapshot is used, and removes
//   the directory on any failure.
import { createHash, type Hash } from 'node:crypto';
import { constants as fsc, createReadStream } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { loadNative } from '../../common/native.js';
import { readTar, TarError, type TarHeader } from './tar.js';

export class LayerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LayerError';
  }
}

export interface UnpackLimits {
  /** Most uncompressed bytes one layer may have. */
  maxSize: number;
  /** Most uncompressed bytes per compressed byte, checked once `ratioGrace` bytes were produced. */
  maxRatio: number;
  ratioGrace: number;
  /** Most tar entries in one layer. */
  maxEntries: number;
}

export const DEFAULT_LIMITS: UnpackLimits = {
  maxSize: 16 * 1024 ** 3,
  maxRatio: 100,
  ratioGrace: 8 << 20,
  maxEntries: 2_000_000,
};

export type Compression = 'gzip' | 'none' | 'zstd' | 'bzip2' | 'xz';

export function detectCompression(head: Buffer): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  return 'none';
}

async function readHead(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(8);
    const { bytesRead } = await fh.read(b, 0, 8, 0);
    return b.subarray(0, bytesRead).length < 8 ? Buffer.concat([b.subarray(0, bytesRead), Buffer.alloc(8)]) : b;
  } finally {
    await fh.close();
  }
}

/** The uncompressed bytes of a layer file, hashed and bounded as they are read. */
async function* uncompressed(
  path: string,
  limits: UnpackLimits,
  hash: Hash,
  stats: { compressed: number; uncompressed: number },
): AsyncGenerator<Buffer> {
  const kind = detectCompression(await readHead(path));
  let z: (Readable & { destroy(e?: Error): void }) | undefined;
  if (kind === 'gzip') z = zlib.createGunzip({ chunkSize: 256 << 10 });
  else if (kind === 'zstd') {
    const mk = (zlib as unknown as { createZstdDecompress?: () => Readable & NodeJS.WritableStream })
      .createZstdDecompress;
    if (!mk) throw new LayerError(`zstd-compressed layers are unsupported (Node ${process.version} has no zstd)`);
    z = mk();
  } else if (kind !== 'none') throw new LayerError(`${kind}-compressed layers are unsupported`);
  const src: Readable = createReadStream(path, { highWaterMark: 1 << 20 });
  let out: Readable = src;
  src.on('data', (c: Buffer) => {
    stats.compressed += c.length;
  });
  if (z) {
    const zz = z;
    src.on('error', (e) => zz.destroy(e));
    src.pipe(zz as unknown as NodeJS.WritableStream);
    out = zz;
  }
  try {
    for await (const c of out as AsyncIterable<Buffer>) {
      stats.uncompressed += c.length;
      if (stats.uncompressed > limits.maxSize)
        throw new LayerError(`layer is bigger than the ${limits.maxSize} bytes allowed uncompressed`);
      if (
        z &&
        stats.uncompressed > limits.ratioGrace &&
        stats.uncompressed > limits.maxRatio * Math.max(stats.compressed, 1)
      )
        throw new LayerError(
          `layer decompresses more than ${limits.maxRatio}:1 (${stats.uncompressed} bytes from ${stats.compressed}): refused as a decompression bomb`,
        );
      hash.update(c);
      yield c;
    }
  } catch (err) {
    if (err instanceof LayerError) throw err;
    throw new LayerError(`cannot decompress layer: ${(err as Error).message}`);
  } finally {
    src.destroy();
    z?.destroy();
  }
}

/** Relative path components of an entry name; refuses absolute names and `..`. Empty for the root. */
export function entryComponents(name: string, what = 'path'): string[] {
  if (name.startsWith('/')) throw new LayerError(`${what} ${JSON.stringify(name)} is absolute`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new LayerError(`${what} ${JSON.stringify(name)} has a ".." component`);
  return parts;
}

const S_IFCHR = 0o020000;
const S_IFIFO = 0o010000;

export interface ApplyResult {
  diffId: string;
  /** Uncompressed tar size. */
  size: number;
}

/**
 * Apply the layer at `layerPath` to `dest` (an existing, empty directory that this process alone writes to).
 * Throws a LayerError naming the offending entry; the caller removes dest.
 */
export async function applyLayer(
  layerPath: string,
  dest: string,
  limits: UnpackLimits = DEFAULT_LIMITS,
): Promise<ApplyResult> {
  const hash = createHash('sha256');
  const stats = { compressed: 0, uncompressed: 0 };
  const isRoot = process.getuid?.() === 0;
  const dirTimes: Array<[string, number]> = [];
  let entries = 0;
  const native = loadNative();

  /** The directory for parent components (made when missing), every step checked with lstat. */
  const parentDir = async (parts: string[], name: string, create: boolean): Promise<string> => {
    let cur = dest;
    for (const p of parts) {
      const next = join(cur, p);
      const st = await lstat(next).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined;
        throw e;
      });
      if (!st) {
        if (!create) throw new LayerError(`${JSON.stringify(name)}: ${JSON.stringify(parts.join('/'))} does not exist`);
        await mkdir(next, { mode: 0o755 });
      } else if (st.isSymbolicLink()) {
        throw new LayerError(`${JSON.stringify(name)} goes through the symlink ${JSON.stringify(p)}: refused`);
      } else if (!st.isDirectory()) {
        throw new LayerError(`${JSON.stringify(name)}: ${JSON.stringify(p)} is not a directory`);
      }
      cur = next;
    }
    return cur;
  };

  const removeExisting = async (target: string, keepDir: boolean): Promise<boolean> => {
    const st = await lstat(target).catch(() => undefined);
    if (!st) return false;
    if (keepDir && st.isDirectory()) return true;
    await rm(target, { recursive: true, force: true }); // rm uses lstat: never follows a symlink
    return false;
  };

  const setMeta = async (target: string, h: TarHeader, isLink: boolean): Promise<void> => {
    try {
      await lchown(target, h.uid, h.gid);
    } catch (err) {
      if (isRoot) throw err;
    }
    if (!isLink) await chmod(target, h.mode);
    for (const [k, v] of h.xattrs) {
      // only what a layer may legitimately carry: file capabilities and user xattrs (never trusted.*: overlay's)
      if (k === 'security.capability' || k.startsWith('user.')) {
        try {
          native.setxattr(target, k, v);
        } catch {
          /* unsupported by the filesystem: skipped, as tar does */
        }
      }
    }
  };

  try {
    for await (const e of readTar(uncompressed(layerPath, limits, hash, stats))) {
      const h = e.header;
      if (++entries > limits.maxEntries) throw new LayerError(`layer has more than ${limits.maxEntries} entries`);
      const parts = entryComponents(h.name);
      if (parts.length === 0) {
        // the root itself ("./"): only its metadata
        if (h.type === 'dir') {
          await setMeta(dest, h, false);
          dirTimes.push([dest, h.mtime]);
        }
        continue;
      }
      const base = parts[parts.length - 1] as string;
      const dir = await parentDir(parts.slice(0, -1), h.name, true);
      if (base.startsWith('.wh.')) {
        if (base === '.wh..wh..opq') {
          native.setxattr(dir, 'trusted.overlay.opaque', 'y');
        } else if (!base.startsWith('.wh..wh.')) {
          const victim = base.slice(4);
          if (victim === '' || victim === '.' || victim === '..')
            throw new LayerError(`bad whiteout ${JSON.stringify(h.name)}`);
          const target = join(dir, victim);
          await removeExisting(target, false);
          native.mknod(target, S_IFCHR | 0o000, 0, 0);
        }
        continue;
      }
      const target = join(dir, base);
      switch (h.type) {
        case 'dir': {
          if (!(await removeExisting(target, true))) await mkdir(target, { mode: 0o700 });
          await setMeta(target, h, false);
          dirTimes.push([target, h.mtime]);
          break;
        }
        case 'file': {
          await removeExisting(target, false);
          const fh = await open(target, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
          try {
            for await (const c of e.body()) {
              let off = 0;
              while (off < c.length) off += (await fh.write(c, off, c.length - off)).bytesWritten;
            }
          } finally {
            await fh.close();
          }
          await setMeta(target, h, false);
          await lutimes(target, h.mtime, h.mtime);
          break;
        }
        case 'symlink': {
          // the link's text is the container's business; it is never followed here
          await removeExisting(target, false);
          await symlink(h.linkname, target);
          await setMeta(target, h, true);
          await lutimes(target, h.mtime, h.mtime);
          break;
        }
        case 'link': {
          const lparts = entryComponents(h.linkname, `hard link target of ${JSON.stringify(h.name)}:`);
          if (lparts.length === 0) throw new LayerError(`${JSON.stringify(h.name)}: hard link to the root directory`);
          const ldir = await parentDir(lparts.slice(0, -1), h.linkname, false);
          const src = join(ldir, lparts[lparts.length - 1] as string);
          const st = await lstat(src).catch(() => undefined);
          if (!st)
            throw new LayerError(
              `${JSON.stringify(h.name)}: hard link target ${JSON.stringify(h.linkname)} is not in the layer`,
            );
          if (st.isDirectory()) throw new LayerError(`${JSON.stringify(h.name)}: hard link to a directory`);
          if (src === target) break;
          await removeExisting(target, false);
          await link(src, target); // link(2) does not follow a symlink at src
          break;
        }
        case 'fifo': {
          await removeExisting(target, false);
          native.mknod(target, S_IFIFO | 0o600, 0, 0);
          await setMeta(target, h, false);
          break;
        }
        case 'char':
        case 'block':
          throw new LayerError(
            `${JSON.stringify(h.name)} is a ${h.type === 'char' ? 'character' : 'block'} device (${h.devmajor}:${h.devminor}): device nodes are refused in layers`,
          );
      }
    }
  } catch (err) {
    if (err instanceof LayerError) throw err;
    if (err instanceof TarError) throw new LayerError(err.message);
    throw new LayerError(`cannot unpack layer: ${(err as Error).message}`);
  }
  for (const [d, t] of dirTimes.reverse()) await lutimes(d, t, t).catch(() => undefined);
  return { diffId: `sha256:${hash.digest('hex')}`, size: stats.uncompressed };
}

/** The diff id (sha256 of the uncompressed tar) of a layer file, with the same bounds as applyLayer. */
export async function diffIdOf(layerPath: string, limits: UnpackLimits = DEFAULT_LIMITS): Promise<ApplyResult> {
  const hash = createHash('sha256');
  const stats = { compressed: 0, uncompressed: 0 };
  for await (const _ of uncompressed(layerPath, limits, hash, stats)) {
    /* hashed as read */
  }
  return { diffId: `sha256:${hash.digest('hex')}`, size: stats.uncompressed };
}
