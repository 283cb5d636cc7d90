// volumes/: the local driver's store and the VolumeService (create, get, list filters, remove, prune, the
// anonymous volumes of `docker rm -v`, events), on a real temp data root; and the volume side of the mount parsing.
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DockerError, type Daemon } from '../../vm-agent/daemon/contracts.js';
import { buildSpec, parseBind, parseMount, userMounts } from '../../vm-agent/daemon/containers/spec.js';
import { MemoryEventBus } from '../../vm-agent/daemon/system/events.js';
import { resolveInRoot } from '../../vm-agent/daemon/volumes/mount.js';
import { Volumes } from '../../vm-agent/daemon/volumes/service.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'volumes-'));
  dirs.push(d);
  return d;
}

function service(dataRoot = tmp()): { v: Volumes; events: MemoryEventBus; dataRoot: string } {
  const events = new MemoryEventBus();
  const daemon = { config: { dataRoot }, events } as unknown as Daemon;
  const v = new Volumes(daemon);
  v.init();
  return { v, events, dataRoot };
}

function error(fn: () => unknown): DockerError {
  try {
    fn();
  } catch (err) {
    if (err instanceof DockerError) return err;
    throw err;
  }
  throw new Error('no error');
}

async function asyncError(p: Promise<unknown>): Promise<DockerError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DockerError) return err;
    throw err;
  }
  throw new Error('no error');
}

const noFilters = new Map<string, string[]>();

describe('volume store and service', () => {
  it('creates a local volume on disk with its record, as dockerd shows it', () => {
    const { v, events, dataRoot } = service();
    v.create('data1', { labels: { a: 'b' }, options: {} });
    const dir = join(dataRoot, 'volumes', 'data1');
    expect(statSync(join(dir, '_data')).mode & 0o777).toBe(0o755);
    expect(statSync(join(dataRoot, 'volumes')).mode & 0o777).toBe(0o701);
    expect(JSON.parse(readFileSync(join(dir, 'volume.json'), 'utf8'))).toMatchObject({
      name: 'data1',
      populated: false,
    });
    const view = v.inspect('data1');
    expect(view).toEqual({
      CreatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      Driver: 'local',
      Labels: { a: 'b' },
      Mountpoint: join(dir, '_data'),
      Name: 'data1',
      Options: {},
      Scope: 'local',
    });
    expect(events.recent(undefined, undefined).map((e) => [e.event.Type, e.event.Action, e.event.Actor.ID])).toEqual([
      ['volume', 'create', 'data1'],
    ]);
  });

  it('returns an existing volume unchanged; generates a 64-hex name when none is given', () => {
    const { v } = service();
    const a = v.create('same', { labels: { x: '1' } });
    const b = v.create('same', { labels: { x: '2' } });
    expect(b).toBe(a);
    expect(v.inspect('same').Labels).toEqual({ x: '1' });
    expect(v.create(undefined).name).toMatch(/^[0-9a-f]{64}$/);
  });

  it("refuses bad names, unknown drivers and unknown options with dockerd's words", () => {
    const { v } = service();
    const bad = error(() => v.create('a/b'));
    expect(bad.status).toBe(400);
    expect(bad.message).toBe(
      'create a/b: "a/b" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path',
    );
    expect(error(() => v.create('x')).status).toBe(400);
    const drv = error(() => v.create('vv', { driver: 'nfsplugin' }));
    expect(drv.status).toBe(404);
    expect(drv.message).toContain('plugin "nfsplugin" not found');
    const opt = error(() => v.create('vv', { options: { foo: 'bar' } }));
    expect(opt.status).toBe(400);
    expect(opt.message).toBe('create vv: invalid option key: "foo"');
    expect(error(() => v.create('vv', { options: { type: 'tmpfs' } })).message).toContain('missing required option');
    expect(v.get('vv')).toBeUndefined();
  });

  it('inspect of a missing volume is a 404 "no such volume"', () => {
    const { v } = service();
    const e = error(() => v.inspect('nope'));
    expect([e.status, e.message]).toEqual([404, 'get nope: no such volume']);
  });

  it('lists with the name, label, driver and dangling filters; bad filters are 400s', () => {
    const { v } = service();
    v.create('web-data', { labels: { app: 'web', tier: 'front' } });
    v.create('db-data', { labels: { app: 'db' } });
    v.create('cache', {});
    v.setUsers((n) => (n === 'db-data' ? ['c1'] : []));
    const names = (f: Record<string, string[]>): string[] =>
      v.list(new Map(Object.entries(f))).Volumes.map((x) => x.Name as string);
    expect(names({})).toEqual(['cache', 'db-data', 'web-data']);
    expect(names({ name: ['data'] })).toEqual(['db-data', 'web-data']);
    expect(names({ label: ['app'] })).toEqual(['db-data', 'web-data']);
    expect(names({ label: ['app=web'] })).toEqual(['web-data']);
    expect(names({ label: ['app', 'tier=front'] })).toEqual(['web-data']);
    expect(names({ dangling: ['true'] })).toEqual(['cache', 'web-data']);
    expect(names({ dangling: ['0'] })).toEqual(['db-data']);
    expect(names({ driver: ['local'] })).toHaveLength(3);
    expect(names({ driver: ['other'] })).toEqual([]);
    expect(error(() => v.list(new Map([['bogus', ['x']]]))).message).toBe("invalid filter 'bogus'");
    expect(error(() => v.list(new Map([['dangling', ['maybe']]]))).status).toBe(400);
    expect(v.list(noFilters).Warnings).toEqual([]);
  });

  it('remove: 409 with the users while in use (even with force), 404 when missing unless force', async () => {
    const { v, events, dataRoot } = service();
    v.create('busy');
    let users = ['c1', 'c2'];
    v.setUsers((n) => (n === 'busy' ? users : []));
    const inUse = await asyncError(v.remove('busy', true));
    expect([inUse.status, inUse.message]).toEqual([409, 'remove busy: volume is in use - [c1, c2]']);
    users = [];
    await v.remove('busy', false);
    expect(existsSync(join(dataRoot, 'volumes', 'busy'))).toBe(false);
    expect(v.get('busy')).toBeUndefined();
    const missing = await asyncError(v.remove('busy', false));
    expect([missing.status, missing.message]).toEqual([404, 'get busy: no such volume']);
    await v.remove('busy', true);
    expect(events.recent(undefined, undefined).map((e) => e.event.Action)).toEqual(['create', 'destroy']);
  });

  it('prune removes unused anonymous volumes only, unless all=true (or an API before 1.42)', async () => {
    const { v } = service();
    v.create('named', { labels: { keep: 'no' } });
    const anon = v.create(undefined, { anonymous: true });
    const used = v.create(undefined, { anonymous: true });
    v.setUsers((n) => (n === used.name ? ['c1'] : []));
    writeFileSync(join(v.store.dataDir(anon.name), 'f'), 'x'.repeat(5000));
    const r = await v.prune(noFilters, '1.50');
    expect(r.VolumesDeleted).toEqual([anon.name]);
    expect(r.SpaceReclaimed).toBeGreaterThanOrEqual(5000);
    expect((await v.prune(noFilters, '1.50')).VolumesDeleted).toBeNull();
    expect(
      (
        await v.prune(
          new Map([
            ['label', ['keep=yes']],
            ['all', ['true']],
          ]),
          '1.50',
        )
      ).VolumesDeleted,
    ).toBeNull();
    expect((await v.prune(new Map([['all', ['true']]]), '1.50')).VolumesDeleted).toEqual(['named']);
    expect(v.get(used.name)).toBeDefined();
    v.create('old-api');
    expect((await v.prune(noFilters, '1.41')).VolumesDeleted).toEqual(['old-api']);
  });

  it('anonymous volumes carry the anonymous label; removeAnonymous leaves named and used ones', async () => {
    const { v } = service();
    const a = await v.ensure(undefined, { anonymous: true });
    const b = await v.ensure(undefined, { anonymous: true });
    await v.ensure('named');
    expect(v.inspect(a.name).Labels).toEqual({ 'com.docker.volume.anonymous': '' });
    expect(a.anonymous).toBe(true);
    v.setUsers((n) => (n === b.name ? ['other'] : []));
    await v.removeAnonymous([a.name, b.name, 'named', 'missing']);
    expect(v.get(a.name)).toBeUndefined();
    expect(v.get(b.name)).toBeDefined();
    expect(v.get('named')).toBeDefined();
  });

  it('survives a restart: records are read back; a directory without a record is dropped', async () => {
    const dataRoot = tmp();
    const first = service(dataRoot).v;
    first.create('kept', { labels: { a: '1' }, options: null });
    await first.mountFor('kept', { containerPath: '/data' });
    mkdirSync(join(dataRoot, 'volumes', 'half-made', '_data'), { recursive: true });
    const second = service(dataRoot).v;
    expect(second.inspect('kept')).toMatchObject({ Name: 'kept', Labels: { a: '1' }, Options: null });
    expect(second.store.get('kept')?.populated).toBe(true);
    expect(existsSync(join(dataRoot, 'volumes', 'half-made'))).toBe(false);
  });

  it('diskUsage gives each volume its size and reference count', () => {
    const { v } = service();
    v.create('sized');
    writeFileSync(join(v.store.dataDir('sized'), 'f'), 'y'.repeat(3000));
    v.setUsers((n) => (n === 'sized' ? ['a', 'b'] : []));
    const [du] = v.diskUsage();
    expect(du).toMatchObject({ Name: 'sized', UsageData: { RefCount: 2 } });
    expect((du!.UsageData as { Size: number }).Size).toBeGreaterThanOrEqual(3000);
  });
});

describe('resolveInRoot', () => {
  it('resolves symlinks inside the root, never above it', () => {
    const root = tmp();
    mkdirSync(join(root, 'real/data'), { recursive: true });
    symlinkSync('/real', join(root, 'abs'));
    symlinkSync('../../../../real', join(root, 'up'));
    symlinkSync('/etc', join(root, 'etc-link'));
    expect(resolveInRoot(root, '/abs/data')).toBe(join(root, 'real/data'));
    expect(resolveInRoot(root, '/up/data')).toBe(join(root, 'real/data'));
    // /etc-link → /etc inside the root, which does not exist there (the host's /etc is not reached).
    expect(resolveInRoot(root, '/etc-link/passwd')).toBeUndefined();
    expect(resolveInRoot(root, '/missing')).toBeUndefined();
  });
});

describe('volume mounts of a container (spec.ts)', () => {
  it('-v name:/path[:ro] is a named volume, -v /path an anonymous one, -v /host:/path a bind', () => {
    expect(parseBind('data:/data')).toMatchObject({
      Type: 'volume',
      Name: 'data',
      Destination: '/data',
      Mode: 'z',
      RW: true,
    });
    expect(parseBind('data:/data:ro')).toMatchObject({ Type: 'volume', Name: 'data', Mode: 'ro', RW: false });
    expect(parseBind('data:/data:nocopy')).toMatchObject({ Type: 'volume', noCopy: true });
    expect(parseBind('/data')).toMatchObject({ Type: 'volume', Name: '', Destination: '/data', RW: true });
    expect(parseBind('/h:/c:ro')).toMatchObject({ Type: 'bind', Source: '/h', RW: false });
    expect(error(() => parseBind('data:/')).status).toBe(400);
    expect(error(() => parseBind('data:/x:bogus')).message).toBe('invalid mode: bogus');
  });

  it('--mount type=volume with readonly, nocopy, labels and driver options', () => {
    const m = parseMount({
      Type: 'volume',
      Source: 'v1',
      Target: '/v',
      ReadOnly: true,
      VolumeOptions: { NoCopy: true, Labels: { k: 'v' }, DriverConfig: { Name: 'local', Options: { type: 'tmpfs' } } },
    });
    expect(m).toMatchObject({
      Type: 'volume',
      Name: 'v1',
      Destination: '/v',
      RW: false,
      noCopy: true,
      volumeLabels: { k: 'v' },
      volumeOptions: { type: 'tmpfs' },
    });
    expect(parseMount({ Type: 'volume', Target: '/anon' })).toMatchObject({ Name: '', Destination: '/anon' });
    expect(
      error(() => parseMount({ Type: 'volume', Target: '/v', VolumeOptions: { DriverConfig: { Name: 'x' } } })).status,
    ).toBe(404);
    expect(error(() => parseMount({ Type: 'volume', Target: '/v', BindOptions: {} })).status).toBe(400);
  });

  it('duplicate destinations are a 400', () => {
    expect(error(() => userMounts({ Binds: ['a:/x', 'b:/x'] })).message).toBe('Duplicate mount point: /x');
  });

  it('a resolved volume becomes a bind of its host directory in the OCI spec, read-only when asked', () => {
    const m = parseBind('data:/data:ro');
    m.Source = '/var/lib/skiff/daemon/volumes/data/_data';
    const hostConfig = { Binds: ['data:/data:ro'], NetworkMode: 'none', IpcMode: 'private' };
    const input = (hc: Record<string, unknown>): Parameters<typeof buildSpec>[0] => ({
      id: 'x'.repeat(64),
      config: { Cmd: ['sh'], Env: [], Hostname: 'h' },
      user: { uid: 0, gid: 0, additionalGids: [] },
      files: { hostname: '/h', hosts: '/hs', resolvConf: '/r' },
      allCaps: [],
      arch: 'amd64',
      kernel: '6.1.0',
      cgroupVersion: 1,
      hostConfig: hc,
      mountPoints: [m],
    });
    const spec = buildSpec(input(hostConfig));
    const mounts = spec.mounts as Array<{ destination: string; type: string; source: string; options: string[] }>;
    expect(mounts.find((x) => x.destination === '/data')).toEqual({
      destination: '/data',
      type: 'bind',
      source: '/var/lib/skiff/daemon/volumes/data/_data',
      options: ['rbind', 'rprivate', 'ro'],
    });
    // Without the resolved mount points the volume has no host path: an error, not an empty bind.
    expect(error(() => buildSpec({ ...input(hostConfig), mountPoints: undefined })).status).toBe(500);
  });
});
