// skiffd's images module (issue 4) with the real docker CLI: load/save round trips (docker-archive and an OCI
// archive made by skopeo), tag, images with filters, inspect, history, rmi (409 when used, -f), image prune,
// import from a rootfs tar, events, search; hostile layers loaded through `docker load`: each refused with a
// clear error, nothing written outside the store (a canary), no partial snapshot or stray blob left.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxRootfs, requireRoot } from '../native/helpers.js';
import { busyboxArchive, DaemonHarness, SKIFFD, startDaemon } from './daemon-harness.js';

let d: DaemonHarness;
let work: string;
let busyboxId: string;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the inspect JSON, read field by field
type Inspect = Record<string, any>;

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

interface E {
  name: string;
  type?: '0' | '1' | '2' | '3' | '5';
  data?: string | Buffer;
  link?: string;
  major?: number;
  minor?: number;
}

/** A tar with raw headers: any type, any name (hostile on purpose). */
function mkTar(entries: E[]): Buffer {
  const out: Buffer[] = [];
  const oct = (n: number, len: number): string => n.toString(8).padStart(len - 1, '0') + '\0';
  for (const e of entries) {
    const data = typeof e.data === 'string' ? Buffer.from(e.data) : (e.data ?? Buffer.alloc(0));
    const isFile = (e.type ?? '0') === '0';
    const h = Buffer.alloc(512);
    h.write(e.name, 0, 100, 'utf8');
    h.write(oct(e.type === '5' ? 0o755 : 0o644, 8), 100, 'latin1');
    h.write(oct(0, 8), 108, 'latin1');
    h.write(oct(0, 8), 116, 'latin1');
    h.write(oct(isFile ? data.length : 0, 12), 124, 'latin1');
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
    if (isFile) out.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}

/** A docker-archive with one image of the given layer blobs (diff ids computed unless given). */
function mkArchive(
  file: string,
  tag: string,
  layers: Buffer[],
  opts: { diffIds?: string[]; labels?: Record<string, string>; created?: string } = {},
): string {
  const diffIds = opts.diffIds ?? layers.map((l) => `sha256:${sha(l)}`);
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    created: opts.created ?? '2024-01-01T00:00:00Z',
    config: { Cmd: ['sh'], Labels: opts.labels ?? null },
    rootfs: { type: 'layers', diff_ids: diffIds },
  });
  const entries: E[] = [{ name: `${sha(config)}.json`, data: config }];
  layers.forEach((l, i) => entries.push({ name: `l${i}/layer.tar`, data: l }));
  entries.push({
    name: 'manifest.json',
    data: JSON.stringify([
      { Config: `${sha(config)}.json`, RepoTags: [tag], Layers: layers.map((_, i) => `l${i}/layer.tar`) },
    ]),
  });
  const p = join(work, file);
  writeFileSync(p, mkTar(entries));
  return p;
}

const imagesRoot = (): string => join(d.dataRoot, 'images');
const snapshots = (): string[] =>
  readdirSync(join(imagesRoot(), 'snapshots'))
    .filter((n) => n !== '')
    .sort();
const blobs = (): string[] => readdirSync(join(imagesRoot(), 'blobs', 'sha256')).sort();

async function ok(args: string[], input?: string | Buffer): Promise<string> {
  const r = await d.docker(args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: exit ${r.code}: ${r.stderr}\n${d.log(30)}`);
  return r.stdout;
}

async function imageIds(): Promise<string[]> {
  return (await ok(['images', '-q', '--no-trunc'])).trim().split('\n').filter(Boolean).sort();
}

beforeAll(async () => {
  requireRoot();
  if (!existsSync(SKIFFD)) throw new Error(`${SKIFFD} is missing: run npm run build first`);
  work = mkdtempSync(join(tmpdir(), 'daemon-images-'));
  d = await startDaemon();
  const out = await ok(['load', '-i', busyboxArchive()]);
  expect(out).toBe('Loaded image: busybox:latest\n');
  busyboxId = (await ok(['image', 'inspect', '-f', '{{.Id}}', 'busybox'])).trim();
});

afterAll(async () => {
  await d?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('load, inspect, list, history, save', () => {
  it('inspect has the shape the CLI reads', async () => {
    const [img] = JSON.parse(await ok(['image', 'inspect', 'busybox'])) as Inspect[];
    expect(img!.Id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(img!.RepoTags).toEqual(['busybox:latest']);
    expect(img!.Os).toBe('linux');
    expect(img!.Config.Cmd).toEqual(['sh']);
    expect(img!.RootFS.Type).toBe('layers');
    expect(img!.RootFS.Layers).toHaveLength(1);
    expect(img!.GraphDriver.Name).toBe('overlay2');
    expect(img!.GraphDriver.Data.UpperDir).toContain(join(imagesRoot(), 'snapshots'));
    expect(img!.Size).toBeGreaterThan(500_000);
    // the snapshot is unpacked and the id is the config digest
    expect(existsSync(join(img!.GraphDriver.Data.UpperDir, 'bin', 'busybox'))).toBe(true);
    expect(blobs()).toContain(img!.Id.slice(7));
    for (const ref of ['docker.io/library/busybox:latest', busyboxId.slice(7, 19), busyboxId, busyboxId.slice(7)])
      expect((await ok(['image', 'inspect', '-f', '{{.Id}}', ref])).trim()).toBe(busyboxId);
  });

  it('images and history', async () => {
    expect(await ok(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).toContain(
      `busybox:latest ${busyboxId.slice(7, 19)}`,
    );
    const hist = await ok(['history', '--no-trunc', '--format', '{{.ID}} {{.CreatedBy}}', 'busybox']);
    expect(hist.trim()).toBe(`${busyboxId} busybox-static (skiff tests)`);
  });

  it('save then load gives the same image (docker-archive + OCI layout in one tar)', async () => {
    const out = join(work, 'saved.tar');
    await ok(['save', '-o', out, 'busybox']);
    const names = spawnSync('tar', ['-tf', out], { encoding: 'utf8' }).stdout.split('\n');
    expect(names).toEqual(expect.arrayContaining(['manifest.json', 'index.json', 'oci-layout']));
    await ok(['tag', 'busybox', 'saved/copy:1']);
    await ok(['rmi', 'saved/copy:1']);
    await ok(['rmi', 'busybox']);
    expect(snapshots()).toEqual([]);
    expect(blobs()).toEqual([]);
    expect(await ok(['load', '-i', out])).toBe('Loaded image: busybox:latest\n');
    expect((await ok(['image', 'inspect', '-f', '{{.Id}}', 'busybox'])).trim()).toBe(busyboxId);
    // and from stdin, as `docker load < f` sends it
    expect(await ok(['load'], readFileSync(out))).toBe('Loaded image: busybox:latest\n');
  });

  it('loads an OCI archive made by skopeo', async () => {
    const oci = join(work, 'oci.tar');
    rmSync(oci, { force: true });
    const r = spawnSync('skopeo', ['copy', `docker-archive:${busyboxArchive()}`, `oci-archive:${oci}:skiff/oci:1`], {
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const out = await ok(['load', '-i', oci]);
    expect(out).toMatch(/Loaded image: skiff\/oci:1\n/);
    // the same layers: the snapshot is shared with busybox
    const [img] = JSON.parse(await ok(['image', 'inspect', 'skiff/oci:1'])) as Inspect[];
    expect(img!.RootFS.Layers).toEqual(
      (JSON.parse(await ok(['image', 'inspect', 'busybox'])) as Inspect[])[0]!.RootFS.Layers,
    );
    await ok(['rmi', 'skiff/oci:1']);
  });
});

describe('tag, filters, rmi, prune, import', () => {
  it('tag and list with filters (reference, label, dangling, before, since)', async () => {
    await ok(['tag', 'busybox', 'example.com:5000/team/app:v1']);
    await ok(['tag', busyboxId.slice(7, 19), 'app']);
    const layer = mkTar([{ name: 'hello', data: 'hi' }]);
    await ok([
      'load',
      '-i',
      mkArchive('labeled.tar', 'labeled:1', [layer], { labels: { tier: 'web' }, created: '2025-01-01T00:00:00Z' }),
    ]);
    const fmt = ['--format', '{{.Repository}}:{{.Tag}}'];
    const list = async (...f: string[]) =>
      (await ok(['images', ...fmt, ...f.flatMap((x) => ['--filter', x])])).trim().split('\n').filter(Boolean).sort();
    expect(await list('reference=busybox')).toEqual(['busybox:latest']);
    expect(await list('reference=*/team/*')).toEqual(['example.com:5000/team/app:v1']);
    expect(await list('reference=app')).toEqual(['app:latest']);
    expect(await list('label=tier=web')).toEqual(['labeled:1']);
    expect(await list('label=tier')).toEqual(['labeled:1']);
    expect(await list('dangling=true')).toEqual([]);
    expect(await list('since=busybox')).toEqual(['labeled:1']);
    expect((await list('before=labeled:1')).sort()).toEqual([
      'app:latest',
      'busybox:latest',
      'example.com:5000/team/app:v1',
    ]);
    const bad = await d.docker(['images', '--filter', 'nosuch=1']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("invalid filter 'nosuch'");
  });

  it('rmi: by name untags, by id with many tags 409 unless -f', async () => {
    expect(await ok(['rmi', 'app'])).toBe('Untagged: app:latest\n');
    const r = await d.docker(['rmi', busyboxId.slice(7, 19)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('image is referenced in multiple repositories');
    const unknown = await d.docker(['rmi', 'nosuch:1']);
    expect(unknown.stderr).toContain('No such image: nosuch:1');
    const out = await ok(['rmi', 'labeled:1']);
    expect(out).toMatch(/^Untagged: labeled:1\nDeleted: sha256:[0-9a-f]{64}\n/);
    await ok(['rmi', 'example.com:5000/team/app:v1']);
    expect(await imageIds()).toEqual([busyboxId]);
  });

  it('rmi of an image a container uses: 409, -f untags and keeps it', async () => {
    const c = await d.docker(['create', '--name', 'user', 'busybox', 'true']);
    expect(c.code, c.stderr).toBe(0);
    await ok(['tag', 'busybox', 'used:1']);
    await ok(['rmi', 'busybox']); // another tag is left: untag only
    const r = await d.docker(['rmi', 'used:1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/conflict: unable to remove repository reference "used:1" \(must force\)/);
    expect(await ok(['rmi', '-f', 'used:1'])).toBe('Untagged: used:1\n');
    expect(await imageIds()).toEqual([busyboxId]); // kept, dangling
    await ok(['rm', '-f', 'user']);
    await ok(['tag', busyboxId, 'busybox']);
  });

  it('import a rootfs tar, with --change and a message', async () => {
    const rootfs = join(work, 'rootfs.tar');
    const t = spawnSync('tar', ['-C', busyboxRootfs(), '--exclude=./.complete', '-czf', rootfs, '.']);
    expect(t.status).toBe(0);
    const id = (
      await ok([
        'import',
        '--change',
        'CMD ["/bin/sh","-c","echo hi"]',
        '--change',
        'ENV A=1',
        '-m',
        'made here',
        rootfs,
        'imported:1',
      ])
    ).trim();
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    const [img] = JSON.parse(await ok(['image', 'inspect', 'imported:1'])) as Inspect[];
    expect(img!.Id).toBe(id);
    expect(img!.Config.Cmd).toEqual(['/bin/sh', '-c', 'echo hi']);
    expect(img!.Config.Env).toEqual(['A=1']);
    expect(img!.Comment).toBe('made here');
    expect(existsSync(join(img!.GraphDriver.Data.UpperDir, 'bin', 'busybox'))).toBe(true);
    // from stdin, without a name: a dangling image
    const dangling = (await ok(['import', '-'], readFileSync(rootfs))).trim();
    expect((await ok(['images', '-q', '--no-trunc', '--filter', 'dangling=true'])).trim()).toBe(dangling);
  });

  it('image prune: dangling by default, -a removes every unused image', async () => {
    const before = blobs().length;
    const out = await ok(['image', 'prune', '-f']);
    expect(out).toMatch(/deleted: sha256:/);
    expect(await imageIds()).toEqual(
      [busyboxId, (await ok(['image', 'inspect', '-f', '{{.Id}}', 'imported:1'])).trim()].sort(),
    );
    expect(blobs().length).toBeLessThan(before);
    await ok(['image', 'prune', '-a', '-f', '--filter', 'until=2025-06-01T00:00:00Z']); // busybox is from 2024
    expect((await ok(['images', '--format', '{{.Repository}}'])).trim()).toBe('imported');
    await ok(['rmi', 'imported:1']);
    expect(await imageIds()).toEqual([]);
    expect(snapshots()).toEqual([]);
    await ok(['load', '-i', busyboxArchive()]);
  });
});

describe('containers see the overlay of the snapshots', () => {
  it('whiteouts hide lower files, opaque dirs hide lower dirs, writes go to the container layer', async () => {
    // busybox's layer, then one that deletes /etc/group, adds /data/new and makes /data opaque over /data/old
    const base = spawnSync('tar', ['-C', busyboxRootfs(), '--exclude=./.complete', '-cf', '-', '.'], {
      maxBuffer: 1 << 30,
    }).stdout;
    const l2 = mkTar([
      { name: 'data/', type: '5' },
      { name: 'data/old', data: 'old' },
      { name: 'etc/marker', data: 'm' },
    ]);
    const l3 = mkTar([{ name: 'etc/.wh.marker' }, { name: 'data/.wh..wh..opq' }, { name: 'data/new', data: 'new' }]);
    await ok(['load', '-i', mkArchive('layered.tar', 'layered:1', [base, l2, l3])]);
    const r = await d.docker([
      'run',
      '--rm',
      'layered:1',
      'sh',
      '-c',
      'ls /data; test -e /etc/marker && echo marker; echo x > /etc/written; cat /etc/written',
    ]);
    expect(r.code, r.stderr + d.log(30)).toBe(0);
    expect(r.stdout).toBe('new\nx\n');
    // the snapshots are untouched by the container's write
    const [img] = JSON.parse(await ok(['image', 'inspect', 'layered:1'])) as Inspect[];
    expect(existsSync(join(img!.GraphDriver.Data.UpperDir, 'etc', 'written'))).toBe(false);
    await ok(['rmi', 'layered:1']);
    expect(readdirSync(join(d.dataRoot, 'containers-rw'))).toEqual([]);
  });
});

describe('events, search', () => {
  it('image events: load, tag, untag, delete, save, import', async () => {
    const since = (Date.now() / 1000).toFixed(3);
    await ok(['tag', 'busybox', 'ev:1']);
    await ok(['save', '-o', join(work, 'ev.tar'), 'ev:1']);
    await ok(['rmi', 'ev:1']);
    await ok(['load', '-i', busyboxArchive()]);
    const until = (Date.now() / 1000 + 0.5).toFixed(3);
    const ev = await ok([
      'events',
      '--since',
      since,
      '--until',
      until,
      '--filter',
      'type=image',
      '--format',
      '{{.Action}} {{.Actor.Attributes.name}}',
    ]);
    expect(ev.trim().split('\n')).toEqual(['tag ev:1', 'save ev:1', 'untag ev:1', 'load busybox:latest']);
  });

  it('search answers a clear error', async () => {
    const r = await d.docker(['search', 'busybox']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('Skiff cannot reach');
  });
});

describe('hostile layers through docker load', () => {
  let canary: string;
  beforeAll(() => {
    canary = mkdtempSync(join(tmpdir(), 'skiff-canary-'));
  });
  afterAll(() => rmSync(canary, { recursive: true, force: true }));

  const cases: Array<[string, () => { layers: Buffer[]; diffIds?: string[] }, RegExp]> = [
    [
      'a ../ escape',
      () => ({ layers: [mkTar([{ name: '../../../../../../../../tmp/pwned', data: 'x' }])] }),
      /"\.\." component/,
    ],
    ['an absolute path', () => ({ layers: [mkTar([{ name: '/tmp/pwned-abs', data: 'x' }])] }), /is absolute/],
    [
      'an absolute symlink, then a file through it',
      () => ({
        layers: [
          mkTar([
            { name: 'evil', type: '2', link: canary },
            { name: 'evil/pwned', data: 'x' },
          ]),
        ],
      }),
      /goes through the symlink "evil"/,
    ],
    [
      'a symlink in a lower layer, a file through it in the next',
      () => ({
        layers: [mkTar([{ name: 'evil', type: '2', link: canary }]), mkTar([{ name: 'evil/pwned', data: 'x' }])],
      }),
      /./, // the second layer's snapshot has no "evil": a plain dir is made there, nothing goes through the link
    ],
    [
      'a hard link to /etc/passwd',
      () => ({ layers: [mkTar([{ name: 'passwd', type: '1', link: '/etc/passwd' }])] }),
      /hard link target.*is absolute/,
    ],
    [
      'a device node',
      () => ({ layers: [mkTar([{ name: 'mem', type: '3', major: 1, minor: 1 }])] }),
      /device nodes are refused/,
    ],
    [
      'a gzip bomb',
      () => ({ layers: [gzipSync(mkTar([{ name: 'zeros', data: Buffer.alloc(256 << 20) }]), { level: 9 })] }),
      /decompression bomb/,
    ],
    [
      'a diff_id mismatch',
      () => ({ layers: [mkTar([{ name: 'f', data: 'x' }])], diffIds: [`sha256:${sha('not this')}`] }),
      /diff id mismatch/,
    ],
  ];

  for (const [what, make, re] of cases) {
    it(`refuses ${what}`, async () => {
      const snapsBefore = snapshots();
      const blobsBefore = blobs();
      const idsBefore = await imageIds();
      const { layers, diffIds } = make();
      const file = mkArchive(`hostile-${sha(what).slice(0, 8)}.tar`, 'hostile:1', layers, diffIds ? { diffIds } : {});
      const r = await d.docker(['load', '-i', file]);
      if (what.startsWith('a symlink in a lower layer')) {
        // accepted (the link is only text for the container), but nothing went through it
        expect(r.code, r.stderr).toBe(0);
        expect(readdirSync(canary)).toEqual([]);
        await ok(['rmi', 'hostile:1']);
      } else {
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(re);
        expect(r.stderr).toMatch(/layer sha256:[0-9a-f]{64}: /);
        expect(await imageIds()).toEqual(idsBefore);
      }
      expect(readdirSync(canary)).toEqual([]);
      expect(existsSync('/tmp/pwned')).toBe(false);
      expect(existsSync('/tmp/pwned-abs')).toBe(false);
      expect(snapshots()).toEqual(snapsBefore);
      expect(blobs()).toEqual(blobsBefore);
      expect(readdirSync(join(imagesRoot(), 'blobs', 'ingest'))).toEqual([]);
    });
  }

  it('a corrupt archive is refused clearly', async () => {
    const r = await d.docker(['load'], { input: Buffer.from('this is not a tar archive, not at all'.repeat(20)) });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/invalid archive|checksum/);
  });
});
