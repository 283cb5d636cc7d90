// images/: the tar reader, layer unpacking into snapshots (whiteouts, opaque dirs) and hostile layers: every
// escape refused with a clear error, nothing written outside the snapshot, no partial snapshot kept.
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyLayer, DEFAULT_LIMITS, entryComponents, LayerError } from '../../vm-agent/daemon/images/unpack.js';
import { readTar } from '../../vm-agent/daemon/images/tar.js';
import { Images } from '../../vm-agent/daemon/images/store.js';

const isRoot = process.getuid?.() === 0;

interface E {
  name: string;
  type?: '0' | '1' | '2' | '3' | '4' | '5' | '6';
  data?: string | Buffer;
  link?: string;
  mode?: number;
  major?: number;
  minor?: number;
}

/** A tar with raw headers (any type flag, any name: hostile on purpose). */
export function mkTar(entries: E[]): Buffer {
  const out: Buffer[] = [];
  for (const e of entries) {
    const data = typeof e.data === 'string' ? Buffer.from(e.data) : (e.data ?? Buffer.alloc(0));
    const h = Buffer.alloc(512);
    h.write(e.name, 0, 100, 'utf8');
    const oct = (n: number, len: number): string => n.toString(8).padStart(len - 1, '0') + '\0';
    h.write(oct(e.mode ?? (e.type === '5' ? 0o755 : 0o644), 8), 100, 'latin1');
    h.write(oct(0, 8), 108, 'latin1');
    h.write(oct(0, 8), 116, 'latin1');
    h.write(oct(e.type === '0' || e.type === undefined ? data.length : 0, 12), 124, 'latin1');
    h.write(oct(1_700_000_000, 12), 136, 'latin1');
    h.write(e.type ?? '0', 156, 'latin1');
    h.write(e.link ?? '', 157, 100, 'utf8');
    h.write('ustar\0', 257, 'latin1');
    h.write('00', 263, 'latin1');
    h.write(oct(e.major ?? 0, 8), 329, 'latin1');
    h.write(oct(e.minor ?? 0, 8), 337, 'latin1');
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(oct(sum, 7) + ' ', 148, 'latin1');
    out.push(h);
    if (e.type === '0' || e.type === undefined) {
      out.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
    }
  }
  out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let dir: string;
let dest: string;
let canary: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'images-unpack-'));
  dest = join(dir, 'store', 'snap', 'fs');
  mkdirSync(dest, { recursive: true });
  canary = join(dir, 'canary');
  mkdirSync(canary);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function apply(tar: Buffer, limits = DEFAULT_LIMITS): Promise<{ diffId: string; size: number }> {
  const p = join(dir, `layer-${Math.random()}`);
  writeFileSync(p, tar);
  return applyLayer(p, dest, limits);
}

/** Nothing outside the snapshot dir was written: the canary dir is empty and dir holds only what we made. */
function nothingEscaped(): void {
  expect(readdirSync(canary)).toEqual([]);
  expect(
    readdirSync(dir)
      .filter((n) => !n.startsWith('layer-'))
      .sort(),
  ).toEqual(['canary', 'store']);
  expect(readdirSync(join(dir, 'store'))).toEqual(['snap']);
}

describe('tar reader', () => {
  it('reads names, types, sizes and bodies', async () => {
    const tar = mkTar([
      { name: 'a/', type: '5' },
      { name: 'a/f', data: 'hello' },
      { name: 'a/l', type: '2', link: 'f' },
    ]);
    const seen: string[] = [];
    for await (const e of readTar(once(tar))) {
      let body = '';
      for await (const c of e.body()) body += c.toString();
      seen.push(`${e.header.type}:${e.header.name}:${body}:${e.header.linkname}`);
    }
    expect(seen).toEqual(['dir:a/::', 'file:a/f:hello:', 'symlink:a/l::f']);
  });

  it('refuses a corrupt header', async () => {
    const tar = mkTar([{ name: 'f', data: 'x' }]);
    tar[0] = 0x41;
    await expect(async () => {
      for await (const _ of readTar(once(tar))) void _;
    }).rejects.toThrow(/checksum/);
  });

  it('entry names: absolute and .. refused', () => {
    expect(entryComponents('./a/./b/')).toEqual(['a', 'b']);
    expect(() => entryComponents('/etc/passwd')).toThrow(/absolute/);
    expect(() => entryComponents('a/../../b')).toThrow(/"\.\." component/);
  });
});

describe('applyLayer', () => {
  it('unpacks files, dirs, symlinks, hard links; diff id and size of the uncompressed tar', async () => {
    const tar = mkTar([
      { name: './', type: '5' },
      { name: 'etc/', type: '5' },
      { name: 'etc/hosts', data: '127.0.0.1 localhost\n', mode: 0o640 },
      { name: 'bin/sh', data: '#!', mode: 0o755 },
      { name: 'bin/ash', type: '1', link: 'bin/sh' },
      { name: 'abs', type: '2', link: '/etc/hosts' },
    ]);
    const r = await apply(gzipSync(tar));
    expect(r.diffId).toBe(sha(tar));
    expect(r.size).toBe(tar.length);
    expect(readFileSync(join(dest, 'etc/hosts'), 'utf8')).toBe('127.0.0.1 localhost\n');
    expect(lstatSync(join(dest, 'etc/hosts')).mode & 0o7777).toBe(0o640);
    expect(lstatSync(join(dest, 'bin/ash')).ino).toBe(lstatSync(join(dest, 'bin/sh')).ino);
    expect(readlinkSync(join(dest, 'abs'))).toBe('/etc/hosts');
  });

  it.skipIf(!isRoot)('whiteouts become 0/0 char devices, opaque markers the overlay xattr', async () => {
    const tar = mkTar([
      { name: 'etc/.wh.passwd', data: '' },
      { name: 'var/.wh..wh..opq', data: '' },
    ]);
    await apply(tar);
    const st = lstatSync(join(dest, 'etc/passwd'));
    expect(st.isCharacterDevice()).toBe(true);
    expect(st.rdev).toBe(0);
    expect(existsSync(join(dest, 'etc/.wh.passwd'))).toBe(false);
    const { execFileSync } = await import('node:child_process');
    const x = execFileSync(
      'python3',
      [
        '-c',
        'import os,sys; print(os.getxattr(sys.argv[1], "trusted.overlay.opaque").decode(), end="")',
        join(dest, 'var'),
      ],
      {
        encoding: 'utf8',
      },
    );
    expect(x).toBe('y');
  });

  const hostile: Array<[string, E[], RegExp]> = [
    ['a .. escape', [{ name: '../canary/pwned', data: 'x' }], /"\.\." component/],
    ['a deeper .. escape', [{ name: 'a/../../../canary/pwned', data: 'x' }], /"\.\." component/],
    ['an absolute path', [{ name: `${'/'}tmp/pwned`, data: 'x' }], /absolute/],
    [
      'a file through an absolute symlink',
      [
        { name: 'evil', type: '2', link: '/' },
        { name: 'evil/pwned', data: 'x' },
      ],
      /goes through the symlink "evil"/,
    ],
    [
      'a file through a relative symlink out',
      [
        { name: 'evil', type: '2', link: '../../../canary' },
        { name: 'evil/pwned', data: 'x' },
      ],
      /symlink/,
    ],
    [
      'a chained symlink',
      [
        { name: 'a', type: '2', link: 'b' },
        { name: 'b', type: '2', link: '/' },
        { name: 'a/pwned', data: 'x' },
      ],
      /symlink/,
    ],
    ['a hard link to /etc/passwd', [{ name: 'passwd', type: '1', link: '/etc/passwd' }], /absolute/],
    ['a hard link out with ..', [{ name: 'passwd', type: '1', link: '../../../../etc/passwd' }], /"\.\."/],
    [
      'a hard link through a symlink',
      [
        { name: 'etc', type: '2', link: '/etc' },
        { name: 'passwd', type: '1', link: 'etc/passwd' },
      ],
      /symlink/,
    ],
    ['a character device', [{ name: 'dev/mem', type: '3', major: 1, minor: 1 }], /device nodes are refused/],
    ['a block device', [{ name: 'dev/sda', type: '4', major: 8, minor: 0 }], /device nodes are refused/],
    ['a whiteout through a symlink', [{ name: 'evil', type: '2', link: '/' }, { name: 'evil/.wh.etc' }], /symlink/],
  ];
  for (const [what, entries, re] of hostile) {
    it(`refuses ${what}`, async () => {
      const err = await apply(mkTar(entries)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LayerError);
      expect((err as Error).message).toMatch(re);
      nothingEscaped();
    });
  }

  it('refuses a gzip bomb (compression ratio) and an oversized layer', async () => {
    const bomb = gzipSync(mkTar([{ name: 'zeros', data: Buffer.alloc(64 << 20) }]));
    expect(bomb.length).toBeLessThan(200_000);
    await expect(apply(bomb)).rejects.toThrow(/decompression bomb/);
    const big = mkTar([{ name: 'f', data: Buffer.alloc(100_000, 1) }]);
    await expect(apply(big, { ...DEFAULT_LIMITS, maxSize: 50_000 })).rejects.toThrow(/bigger than the 50000 bytes/);
    nothingEscaped();
  });

  it('says clearly that zstd is unsupported', async () => {
    const zstd = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(100)]);
    await expect(apply(zstd)).rejects.toThrow(/zstd-compressed layers are unsupported/);
  });
});

describe('Images.commitImage', () => {
  async function setup(): Promise<Images> {
    const images = new Images({ root: join(dir, 'store', 'images'), rwRoot: join(dir, 'store', 'rw') });
    await images.init();
    return images;
  }
  async function put(images: Images, layers: Buffer[], diffIds: string[]) {
    const ls = [];
    for (const l of layers) {
      const b = await images.content.put(l);
      ls.push({ ...b, mediaType: 'application/vnd.docker.image.rootfs.diff.tar' });
    }
    const cfg = await images.content.put(
      Buffer.from(
        JSON.stringify({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: diffIds } }),
      ),
    );
    return { config: cfg.digest, layers: ls };
  }

  it('shares snapshots by chain id, builds the overlay mount, refuses a diff id mismatch without leftovers', async () => {
    const images = await setup();
    const l1 = mkTar([{ name: 'a', data: '1' }]);
    const l2 = mkTar([{ name: 'b', data: '2' }]);
    const img = await images.commitImage({ ...(await put(images, [l1, l2], [sha(l1), sha(l2)])), tags: ['x'] });
    expect((await images.resolve('x'))?.id).toBe(img.id);
    expect((await images.resolve('docker.io/library/x:latest'))?.id).toBe(img.id);
    expect((await images.resolve(img.id.slice(7, 19)))?.id).toBe(img.id);
    expect(readdirSync(images.snapshotDir)).toHaveLength(2);
    const rootfs = await images.prepareRootfs(img, 'c1');
    expect(rootfs.mounts[0]?.type).toBe('overlay');
    const opts = rootfs.mounts[0]?.options ?? [];
    expect(opts[0]).toBe(`lowerdir=${[...rootfs.lowerDirs].reverse().join(':')}`);
    expect(opts[1]).toBe(`upperdir=${join(dir, 'store', 'rw', 'c1', 'upper')}`);
    expect(readFileSync(join(rootfs.lowerDirs[1] as string, 'b'), 'utf8')).toBe('2');

    // the same first layer in another image: no new snapshot for it
    const l3 = mkTar([{ name: 'c', data: '3' }]);
    await images.commitImage(await put(images, [l1, l3], [sha(l1), sha(l3)]));
    expect(readdirSync(images.snapshotDir)).toHaveLength(3);

    // a layer whose content is not what the config says
    const evil = mkTar([{ name: 'd', data: 'evil' }]);
    await expect(images.commitImage(await put(images, [evil], [sha(l1).replace(/.$/, '0')]))).rejects.toThrow(
      /diff id mismatch/,
    );
    expect(readdirSync(images.snapshotDir)).toHaveLength(3);
    await images.removeRootfs('c1');
    expect(existsSync(join(dir, 'store', 'rw', 'c1'))).toBe(false);
  });

  it('refuses a blob whose digest does not match and keeps nothing', async () => {
    const images = await setup();
    await expect(images.content.put(Buffer.from('abc'), { digest: sha(Buffer.from('abd')) })).rejects.toThrow(
      /digest mismatch/,
    );
    expect(await images.content.list()).toEqual([]);
    expect(readdirSync(images.content.ingestDir)).toEqual([]);
  });
});
