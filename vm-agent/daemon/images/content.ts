// The content store: blobs by digest under <data-root>/images/blobs/sha256/<hex>. A blob is written to a temporary
// file under blobs/ingest/ while its sha256 is computed, checked against the expected digest (and size) when one
// is given, fsynced and renamed into place. A blob whose digest does not match is refused and never kept, so every
// file under blobs/sha256/ holds exactly the bytes its name promises.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { BlobWriter, ContentStore } from '../contracts.js';

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export class DigestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DigestError';
  }
}

/** Throws unless d is `sha256:<64 hex>` (the only algorithm stored). */
export function checkDigest(d: string): string {
  if (!DIGEST_RE.test(d)) {
    if (/^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(d) && !d.startsWith('sha256:'))
      throw new DigestError(`unsupported digest algorithm: ${d}`);
    throw new DigestError(`invalid digest: ${JSON.stringify(d)}`);
  }
  return d;
}

export const sha256 = (data: Buffer | string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

export class FileContentStore implements ContentStore {
  readonly blobDir: string;
  readonly ingestDir: string;
  private ready: Promise<void> | undefined;

  constructor(readonly root: string) {
    this.blobDir = join(root, 'blobs', 'sha256');
    this.ingestDir = join(root, 'blobs', 'ingest');
  }

  /** Make the directories; remove ingest leftovers of a crash. */
  init(): Promise<void> {
    this.ready ??= (async () => {
      await rm(this.ingestDir, { recursive: true, force: true });
      await mkdir(this.blobDir, { recursive: true, mode: 0o700 });
      await mkdir(this.ingestDir, { recursive: true, mode: 0o700 });
    })();
    return this.ready;
  }

  path(digest: string): string {
    return join(this.blobDir, checkDigest(digest).slice(7));
  }

  async has(digest: string): Promise<boolean> {
    return (await this.size(digest)) !== undefined;
  }

  async size(digest: string): Promise<number | undefined> {
    try {
      return (await stat(this.path(digest))).size;
    } catch {
      return undefined;
    }
  }

  read(digest: string): Readable {
    return createReadStream(this.path(digest));
  }

  async readBuffer(digest: string, max = 64 << 20): Promise<Buffer> {
    const p = this.path(digest);
    const st = await stat(p).catch(() => undefined);
    if (!st) throw new DigestError(`blob ${digest} is not in the content store`);
    if (st.size > max) throw new DigestError(`blob ${digest} is too big (${st.size} bytes) to read as a document`);
    return readFile(p);
  }

  async writer(expected?: { digest?: string; size?: number }): Promise<BlobWriter> {
    await this.init();
    if (expected?.digest !== undefined) checkDigest(expected.digest);
    const tmp = join(this.ingestDir, `${Date.now()}-${randomBytes(8).toString('hex')}`);
    const fh: FileHandle = await open(tmp, 'wx', 0o600);
    const hash = createHash('sha256');
    let size = 0;
    let finished = false;
    const finalPath = (d: string): string => this.path(d);
    const abort = async (): Promise<void> => {
      if (finished) return;
      finished = true;
      await fh.close().catch(() => undefined);
      await rm(tmp, { force: true });
    };
    return {
      async write(chunk: Buffer | Uint8Array): Promise<void> {
        if (finished) throw new Error('blob writer: write after commit or abort');
        size += chunk.length;
        if (expected?.size !== undefined && size > expected.size) {
          await abort();
          throw new DigestError(`blob ${expected.digest ?? ''} is bigger than the ${expected.size} bytes announced`);
        }
        hash.update(chunk);
        let off = 0;
        while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
      },
      get written() {
        return size;
      },
      async commit(): Promise<{ digest: string; size: number }> {
        if (finished) throw new Error('blob writer: commit after commit or abort');
        const digest = `sha256:${hash.digest('hex')}`;
        if (expected?.digest !== undefined && digest !== expected.digest) {
          await abort();
          throw new DigestError(`digest mismatch: expected ${expected.digest}, got ${digest} (blob refused)`);
        }
        if (expected?.size !== undefined && size !== expected.size) {
          await abort();
          throw new DigestError(`size mismatch for ${digest}: expected ${expected.size} bytes, got ${size}`);
        }
        finished = true;
        try {
          await fh.sync();
          await fh.close();
          await rename(tmp, finalPath(digest));
        } catch (err) {
          await fh.close().catch(() => undefined);
          await rm(tmp, { force: true });
          throw err;
        }
        return { digest, size };
      },
      abort,
    };
  }

  async put(
    data: Buffer | AsyncIterable<Buffer | Uint8Array>,
    expected?: { digest?: string; size?: number },
  ): Promise<{ digest: string; size: number }> {
    if (Buffer.isBuffer(data) && expected?.digest && (await this.has(expected.digest))) {
      if (sha256(data) !== expected.digest)
        throw new DigestError(`digest mismatch: expected ${expected.digest}, got ${sha256(data)} (blob refused)`);
      return { digest: expected.digest, size: data.length };
    }
    const w = await this.writer(expected);
    try {
      if (Buffer.isBuffer(data)) await w.write(data);
      else for await (const c of data) await w.write(Buffer.from(c));
      return await w.commit();
    } catch (err) {
      await w.abort();
      throw err;
    }
  }

  async delete(digest: string): Promise<void> {
    await rm(this.path(digest), { force: true });
  }

  async list(): Promise<string[]> {
    await this.init();
    return (await readdir(this.blobDir)).filter((n) => /^[0-9a-f]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }
}
