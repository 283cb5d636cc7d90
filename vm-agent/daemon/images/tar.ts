// A small streaming tar reader and writer (ustar, GNU long names, PAX). The reader never writes anything: it
// hands entries (header + body stream) to the caller, which decides what to do with them (unpack.ts checks every
// path itself). Hostile archives end in a TarError, never in a crash or an unbounded allocation.

export class TarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarError';
  }
}

export type TarType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  name: string;
  type: TarType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number; // seconds
  linkname: string;
  devmajor: number;
  devminor: number;
  /** PAX SCHILY.xattr.* entries: name → raw value. */
  xattrs: Map<string, Buffer>;
}

/** Pulls bytes from an async iterable of chunks. */
export class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  private readonly it: AsyncIterator<Buffer | Uint8Array | string>;
  constructor(src: AsyncIterable<Buffer | Uint8Array | string>) {
    this.it = src[Symbol.asyncIterator]();
  }
  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    const c = typeof r.value === 'string' ? Buffer.from(r.value) : Buffer.from(r.value);
    this.buf = this.buf.length === 0 ? c : Buffer.concat([this.buf, c]);
    return true;
  }
  /** Exactly n bytes (n small), or fewer at EOF. */
  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) if (!(await this.fill())) break;
    const out = this.buf.subarray(0, Math.min(n, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    return out;
  }
  /** Up to max bytes of what is buffered (reading more when empty); empty at EOF. */
  async chunk(max: number): Promise<Buffer> {
    if (this.buf.length === 0 && !(await this.fill())) return Buffer.alloc(0);
    const out = this.buf.subarray(0, Math.min(max, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    return out;
  }
  /** Drain the source (so that a hash over it sees every byte). */
  async drain(): Promise<void> {
    this.buf = Buffer.alloc(0);
    while (await this.fill()) this.buf = Buffer.alloc(0);
  }
  async return(): Promise<void> {
    if (!this.done && this.it.return) await this.it.return();
    this.done = true;
  }
}

function cstr(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return (z < 0 ? s : s.subarray(0, z)).toString('utf8');
}

function num(b: Buffer, off: number, len: number, what: string): number {
  const f = b.subarray(off, off + len);
  if (f[0] !== undefined && f[0] & 0x80) {
    // base-256 (GNU): big-endian, the first byte's high bit set; negative values refused
    if (f[0] === 0xff) throw new TarError(`tar: negative ${what}`);
    let v = f[0] & 0x7f;
    for (let i = 1; i < f.length; i++) {
      v = v * 256 + (f[i] as number);
      if (v > Number.MAX_SAFE_INTEGER) throw new TarError(`tar: ${what} out of range`);
    }
    return v;
  }
  const s = f.toString('latin1').replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarError(`tar: bad ${what} field ${JSON.stringify(s)}`);
  const v = parseInt(s, 8);
  if (!Number.isSafeInteger(v)) throw new TarError(`tar: ${what} out of range`);
  return v;
}

function checksumOk(h: Buffer): boolean {
  const stored = num(h, 148, 8, 'checksum');
  let u = 0;
  for (let i = 0; i < 512; i++) u += i >= 148 && i < 156 ? 32 : (h[i] as number);
  return stored === u;
}

function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) throw new TarError('tar: bad PAX header');
    const len = parseInt(data.subarray(i, sp).toString('latin1'), 10);
    if (!Number.isSafeInteger(len) || len <= sp - i || i + len > data.length)
      throw new TarError('tar: bad PAX record length');
    const rec = data.subarray(sp + 1, i + len - 1); // without the trailing \n
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw new TarError('tar: bad PAX record');
    out.set(rec.subarray(0, eq).toString('utf8'), Buffer.from(rec.subarray(eq + 1)));
    i += len;
  }
  return out;
}

const typeOf: Record<string, TarType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

/** Biggest metadata entry (PAX, GNU long name) accepted. */
const MAX_META = 1 << 20;

export interface TarEntry {
  header: TarHeader;
  /** The body's bytes; must be consumed (or skipped with `skip`) before the next entry is asked for. */
  body(): AsyncGenerator<Buffer>;
  skip(): Promise<void>;
}

/** Read a tar stream entry by entry. */
export async function* readTar(src: AsyncIterable<Buffer | Uint8Array | string>): AsyncGenerator<TarEntry> {
  const r = new ByteReader(src);
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Map<string, Buffer> | undefined;
  let globalPax = new Map<string, Buffer>();
  for (;;) {
    const h = await r.read(512);
    if (h.length === 0) return; // EOF without the end blocks: accepted as the end
    if (h.length < 512) throw new TarError('tar: truncated header');
    if (h.every((b) => b === 0)) {
      await r.drain();
      return;
    }
    if (!checksumOk(h)) throw new TarError('tar: header checksum mismatch (not a tar archive, or corrupt)');
    const flag = String.fromCharCode(h[156] as number);
    let size = num(h, 124, 12, 'size');
    const padded = (n: number): number => Math.ceil(n / 512) * 512;
    const readMeta = async (): Promise<Buffer> => {
      if (size > MAX_META) throw new TarError(`tar: metadata entry of ${size} bytes is too big`);
      const d = await r.read(padded(size));
      if (d.length < padded(size)) throw new TarError('tar: truncated archive');
      return d.subarray(0, size);
    };
    if (flag === 'L' || flag === 'K') {
      const v = cstr(await readMeta(), 0, size);
      if (flag === 'L') longName = v;
      else longLink = v;
      continue;
    }
    if (flag === 'x') {
      pax = parsePax(await readMeta());
      continue;
    }
    if (flag === 'g') {
      globalPax = new Map([...globalPax, ...parsePax(await readMeta())]);
      continue;
    }
    const type = typeOf[flag];
    if (!type) throw new TarError(`tar: unsupported entry type ${JSON.stringify(flag)}`);
    const magic = h.subarray(257, 263).toString('latin1');
    const prefix = magic.startsWith('ustar') ? cstr(h, 345, 155) : '';
    let name = cstr(h, 0, 100);
    if (prefix) name = `${prefix}/${name}`;
    let linkname = cstr(h, 157, 100);
    const header: TarHeader = {
      name,
      type,
      mode: num(h, 100, 8, 'mode') & 0o7777,
      uid: num(h, 108, 8, 'uid'),
      gid: num(h, 116, 8, 'gid'),
      size,
      mtime: num(h, 136, 12, 'mtime'),
      linkname,
      devmajor: type === 'char' || type === 'block' ? num(h, 329, 8, 'devmajor') : 0,
      devminor: type === 'char' || type === 'block' ? num(h, 337, 8, 'devminor') : 0,
      xattrs: new Map(),
    };
    const all = new Map([...globalPax, ...(pax ?? [])]);
    for (const [k, v] of all) {
      const s = v.toString('utf8');
      if (k === 'path') header.name = s;
      else if (k === 'linkpath') linkname = s;
      else if (k === 'size' || k === 'uid' || k === 'gid') {
        if (!/^[0-9]+$/.test(s)) throw new TarError(`tar: bad PAX ${k}`);
        const n = Number(s);
        if (!Number.isSafeInteger(n)) throw new TarError(`tar: PAX ${k} out of range`);
        if (k === 'size') size = header.size = n;
        else header[k] = n;
      } else if (k === 'mtime') header.mtime = Math.floor(Number(s)) || 0;
      else if (k.startsWith('SCHILY.xattr.')) header.xattrs.set(k.slice('SCHILY.xattr.'.length), v);
    }
    if (longName !== undefined) header.name = longName;
    if (longLink !== undefined) linkname = longLink;
    header.linkname = linkname;
    longName = longLink = pax = undefined;
    let left = size;
    let consumed = false;
    const pad = padded(size) - size;
    const finish = async (): Promise<void> => {
      if (pad) {
        const p = await r.read(pad);
        if (p.length < pad) throw new TarError('tar: truncated archive');
      }
    };
    const entry: TarEntry = {
      header,
      async *body() {
        if (consumed) throw new Error('tar: entry body read twice');
        consumed = true;
        while (left > 0) {
          const c = await r.chunk(Math.min(left, 1 << 20));
          if (c.length === 0) throw new TarError(`tar: truncated archive (in ${JSON.stringify(header.name)})`);
          left -= c.length;
          yield c;
        }
        await finish();
      },
      async skip() {
        if (consumed) return;
        for await (const _ of entry.body()) {
          /* discard */
        }
      },
    };
    yield entry;
    await entry.skip();
  }
}

// ---------------------------------------------------------------------------------------------- writer

function octal(n: number, len: number): string {
  return n.toString(8).padStart(len - 1, '0') + '\0';
}

/** A ustar header block (with a PAX header before it when the name is long). */
export function tarHeader(h: {
  name: string;
  type: 'file' | 'dir' | 'symlink';
  size?: number;
  mode?: number;
  mtime?: number;
  linkname?: string;
}): Buffer {
  const blocks: Buffer[] = [];
  const name = Buffer.from(h.name, 'utf8');
  const link = Buffer.from(h.linkname ?? '', 'utf8');
  if (name.length > 100 || link.length > 100) {
    const recs: string[] = [];
    const rec = (k: string, v: string): void => {
      const body = ` ${k}=${v}\n`;
      let len = Buffer.byteLength(body) + 1;
      while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
      recs.push(`${len}${body}`);
    };
    if (name.length > 100) rec('path', h.name);
    if (link.length > 100) rec('linkpath', h.linkname ?? '');
    const data = Buffer.from(recs.join(''), 'utf8');
    blocks.push(
      rawHeader({ name: 'PaxHeader', flag: 'x', size: data.length, mode: 0o644, mtime: h.mtime ?? 0, link: '' }),
    );
    blocks.push(data, Buffer.alloc(padding(data.length)));
  }
  const flag = h.type === 'file' ? '0' : h.type === 'dir' ? '5' : '2';
  blocks.push(
    rawHeader({
      name: name.length > 100 ? name.subarray(0, 100).toString('latin1') : h.name,
      flag,
      size: h.type === 'file' ? (h.size ?? 0) : 0,
      mode: h.mode ?? (h.type === 'dir' ? 0o755 : 0o644),
      mtime: h.mtime ?? 0,
      link: link.length > 100 ? '' : (h.linkname ?? ''),
    }),
  );
  return Buffer.concat(blocks);
}

function rawHeader(h: { name: string; flag: string; size: number; mode: number; mtime: number; link: string }): Buffer {
  const b = Buffer.alloc(512);
  b.write(h.name, 0, 100, 'utf8');
  b.write(octal(h.mode, 8), 100, 'latin1');
  b.write(octal(0, 8), 108, 'latin1');
  b.write(octal(0, 8), 116, 'latin1');
  b.write(octal(h.size, 12), 124, 'latin1');
  b.write(octal(h.mtime, 12), 136, 'latin1');
  b.write(h.flag, 156, 'latin1');
  b.write(h.link, 157, 100, 'utf8');
  b.write('ustar\0', 257, 'latin1');
  b.write('00', 263, 'latin1');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[i] as number;
  b.write(octal(sum, 7) + ' ', 148, 'latin1');
  return b;
}

export const padding = (n: number): number => (512 - (n % 512)) % 512;
export const TAR_END = Buffer.alloc(1024);
