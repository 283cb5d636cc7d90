// skiffd's archive pieces: resolution inside a container root, detach keys, tar writing read back by the images
// tar reader, and extraction of hostile archives.
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  cleanEntryName,
  extractTar,
  goFileMode,
  linkEscapes,
  resolveInRoot,
  tarHeaderFor,
  tarTree,
  upperChanges,
} from '../../vm-agent/daemon/containers/archive.js';
import { DetachScanner, parseDetachKeys } from '../../vm-agent/daemon/containers/attach.js';
import { readTar } from '../../vm-agent/daemon/images/tar.js';

let root: string;
let outside: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'streams-root-'));
  outside = mkdtempSync(join(tmpdir(), 'streams-outside-'));
  mkdirSync(join(root, 'etc'));
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  writeFileSync(join(outside, 'secret'), 'host secret');
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

async function* chunks(bufs: Buffer[]): AsyncGenerator<Buffer> {
  for (const b of bufs) yield b;
}

function tarOf(
  entries: Array<{
    name: string;
    type: 'file' | 'dir' | 'symlink' | 'link' | 'char';
    data?: string;
    linkname?: string;
  }>,
): Buffer[] {
  const out: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '');
    out.push(
      tarHeaderFor({
        name: e.name,
        type: e.type,
        mode: e.type === 'dir' ? 0o755 : 0o644,
        uid: 0,
        gid: 0,
        size: data.length,
        mtime: 1700000000,
        linkname: e.linkname,
      }),
    );
    if (e.type === 'file') out.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  out.push(Buffer.alloc(1024));
  return out;
}

describe('paths', () => {
  it('resolves symlinks inside the root, never the host', async () => {
    symlinkSync('/etc', join(root, 'abs'));
    symlinkSync('../../../../etc', join(root, 'rel'));
    symlinkSync(outside, join(root, 'out'));
    expect(await resolveInRoot(root, '/abs/passwd', true)).toBe('/etc/passwd');
    expect(await resolveInRoot(root, '/rel/passwd', true)).toBe('/etc/passwd');
    expect(await resolveInRoot(root, '/out/secret', true)).toBe(`${outside}/secret`); // as a path inside the root
    expect(await resolveInRoot(root, '/abs', false)).toBe('/abs');
    expect(await resolveInRoot(root, '/../../x/./y', true)).toBe('/x/y');
    symlinkSync('loop', join(root, 'loop'));
    await expect(resolveInRoot(root, '/loop', true)).rejects.toThrow(/symbolic links/);
  });
  it('entry names and link targets', () => {
    expect(cleanEntryName('./a/b/')).toBe('a/b');
    expect(cleanEntryName('/abs/x')).toBe('abs/x');
    expect(() => cleanEntryName('a/../../x')).toThrow(/leads out/);
    expect(linkEscapes('/a', '../b')).toBe(false);
    expect(linkEscapes('/a', '../../b')).toBe(true);
    expect(linkEscapes('/', '/etc/passwd')).toBe(false);
  });
  it('Go file modes', () => {
    expect(goFileMode(lstatSync(root)) & (2 ** 31)).toBeTruthy();
    expect(goFileMode(lstatSync(join(root, 'etc/passwd')))).toBe(lstatSync(join(root, 'etc/passwd')).mode & 0o777);
  });
});

describe('detach keys', () => {
  it('parses and scans', () => {
    expect([...parseDetachKeys('ctrl-p,ctrl-q')]).toEqual([16, 17]);
    expect([...parseDetachKeys('a,ctrl-@,ctrl-[')]).toEqual([97, 0, 27]);
    expect(() => parseDetachKeys('ctrl-1')).toThrow(/Invalid detach keys/);
    const s = new DetachScanner(Buffer.from([16, 17]));
    expect(s.push(Buffer.from('ab\x10'))).toEqual({ data: Buffer.from('ab'), detach: false });
    expect(s.push(Buffer.from('c'))).toEqual({ data: Buffer.from('\x10c'), detach: false });
    expect(s.push(Buffer.from('x\x10\x10'))).toEqual({ data: Buffer.from('x\x10'), detach: false });
    expect(s.push(Buffer.from('\x11rest'))).toEqual({ data: Buffer.alloc(0), detach: true });
  });
});

describe('tar', () => {
  it('writes a tree the tar reader reads back (links kept, long names)', async () => {
    const long = 'd'.repeat(120);
    mkdirSync(join(root, 'etc', long));
    writeFileSync(join(root, 'etc', long, 'f'), 'deep');
    symlinkSync('/etc/passwd', join(root, 'etc/link'));
    const bufs: Buffer[] = [];
    for await (const b of tarTree(join(root, 'etc'), 'etc')) bufs.push(b);
    const seen: string[] = [];
    for await (const e of readTar(chunks(bufs))) {
      let body = '';
      for await (const c of e.body()) body += c.toString();
      seen.push(`${e.header.type}:${e.header.name}:${e.header.linkname || body}`);
    }
    expect(seen).toEqual([
      'dir:etc/:',
      `dir:etc/${long}/:`,
      `file:etc/${long}/f:deep`,
      'symlink:etc/link:/etc/passwd',
      'file:etc/passwd:root:x:0:0::/root:/bin/sh\n',
    ]);
  });

  it('extracts a plain archive, through an in-root symlink', async () => {
    symlinkSync('/etc', join(root, 'toetc'));
    await extractTar(
      chunks(
        tarOf([
          { name: 'dir/', type: 'dir' },
          { name: 'dir/a', type: 'file', data: 'A' },
          { name: 'toetc/new', type: 'file', data: 'N' },
          { name: 'dir/l', type: 'symlink', linkname: '../etc/passwd' },
        ]),
      ),
      root,
      '/',
      { noOverwriteDirNonDir: false, chown: false },
    );
    expect(readFileSync(join(root, 'dir/a'), 'utf8')).toBe('A');
    expect(readFileSync(join(root, 'etc/new'), 'utf8')).toBe('N');
    expect(readlinkSync(join(root, 'dir/l'))).toBe('../etc/passwd');
  });

  it('refuses hostile archives and writes nothing outside', async () => {
    const bad = async (entries: Parameters<typeof tarOf>[0], re: RegExp): Promise<void> => {
      await expect(
        extractTar(chunks(tarOf(entries)), root, '/', { noOverwriteDirNonDir: false, chown: false }),
      ).rejects.toThrow(re);
    };
    await bad([{ name: '../escape', type: 'file', data: 'x' }], /leads out/);
    await bad([{ name: 'a/../../escape', type: 'file', data: 'x' }], /leads out/);
    await bad([{ name: 'up', type: 'symlink', linkname: '../../../../tmp' }], /leads out/);
    await bad([{ name: 'hl', type: 'link', linkname: '../../etc/shadow' }], /leads out/);
    await bad([{ name: 'dev', type: 'char' }], /device/);
    // an absolute symlink then a file through it: lands inside the root
    symlinkSync(outside, join(root, 'host'));
    await extractTar(chunks(tarOf([{ name: 'host/secret', type: 'file', data: 'overwritten?' }])), root, '/', {
      noOverwriteDirNonDir: false,
      chown: false,
    });
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('host secret');
    expect(readFileSync(join(root, outside, 'secret'), 'utf8')).toBe('overwritten?');
    // an existing symlink as the entry itself is replaced, not written through
    symlinkSync(join(outside, 'secret'), join(root, 'victim'));
    await extractTar(chunks(tarOf([{ name: 'victim', type: 'file', data: 'v' }])), root, '/', {
      noOverwriteDirNonDir: false,
      chown: false,
    });
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('host secret');
    expect(lstatSync(join(root, 'victim')).isFile()).toBe(true);
    await expect(
      extractTar(chunks(tarOf([{ name: 'etc', type: 'file', data: 'x' }])), root, '/', {
        noOverwriteDirNonDir: true,
        chown: false,
      }),
    ).rejects.toThrow(/overwrite directory/);
  });
});

describe('changes', () => {
  it('added, modified, deleted', async () => {
    const lower = join(root, 'lower');
    const upper = join(root, 'upper');
    mkdirSync(join(lower, 'etc'), { recursive: true });
    writeFileSync(join(lower, 'etc/passwd'), '');
    writeFileSync(join(lower, 'etc/gone'), '');
    mkdirSync(join(upper, 'etc'), { recursive: true });
    writeFileSync(join(upper, 'etc/passwd'), 'x');
    writeFileSync(join(upper, 'etc/new'), 'x');
    writeFileSync(join(upper, 'etc/.wh.gone'), '');
    writeFileSync(join(upper, 'etc/hosts'), ''); // a runtime mount point: never a change
    expect(await upperChanges(upper, [lower])).toEqual([
      { Path: '/etc', Kind: 0 },
      { Path: '/etc/gone', Kind: 2 },
      { Path: '/etc/new', Kind: 1 },
      { Path: '/etc/passwd', Kind: 0 },
    ]);
  });

  it('a directory copied up only for the runtime mount points is not a change', async () => {
    const lower = join(root, 'lower2');
    const upper = join(root, 'upper2');
    mkdirSync(join(lower, 'etc'), { recursive: true });
    mkdirSync(join(upper, 'etc'), { recursive: true });
    for (const f of ['hosts', 'hostname', 'resolv.conf']) writeFileSync(join(upper, 'etc', f), '');
    expect(await upperChanges(upper, [lower])).toEqual([]);
  });
});
