// skiffd volumes (issue 5) with the real docker CLI: volume create/inspect/ls filters/rm/prune in dockerd 28's
// wording; data kept across containers, `docker rm` and a skiffd restart; image VOLUME paths filled from the image
// (owners and modes kept, once only); -v /path, --rm and rm -v with anonymous volumes; --mount type=volume options;
// local driver options (tmpfs, bind); tmpfs mounts; read-only binds; ps --filter volume; events; system df.
// Containers run with --network none: this file is about volumes, not networking.
import { spawnSync } from 'node:child_process';
import { chownSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxRootfs, requireRoot } from '../native/helpers.js';
import { busyboxArchive, DaemonHarness, httpGet, SKIFFD, startDaemon } from './daemon-harness.js';

let d: DaemonHarness;
let work: string;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

async function docker(...args: string[]): Promise<string> {
  const r = await d.docker(args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: exit ${r.code}: ${r.stderr}\n${d.log(20)}`);
  return r.stdout.trim();
}

/** `docker run --rm --network none …` with its output (attached). */
async function run(...args: string[]): Promise<string> {
  return docker('run', '--rm', '--network', 'none', ...args);
}

async function fails(...args: string[]): Promise<string> {
  const r = await d.docker(args);
  expect(r.code, `docker ${args.join(' ')} should fail: ${r.stdout}`).not.toBe(0);
  return r.stderr;
}

async function volumeNames(): Promise<string[]> {
  return (await docker('volume', 'ls', '-q')).split('\n').filter(Boolean);
}

async function inspectVolume(name: string): Promise<Json> {
  return JSON.parse(await docker('volume', 'inspect', name))[0];
}

/** busybox with /data holding files of other owners and modes, and `VOLUME /data` (a one-layer docker import). */
async function makeVolumeImage(): Promise<void> {
  const extra = join(work, 'extra');
  mkdirSync(join(extra, 'data/sub'), { recursive: true });
  writeFileSync(join(extra, 'data/hello'), 'from the image\n');
  writeFileSync(join(extra, 'data/sub/secret'), 'shh\n');
  chownSync(join(extra, 'data/sub/secret'), 1000, 1000);
  chmodSync(join(extra, 'data/sub/secret'), 0o600);
  chownSync(join(extra, 'data'), 1000, 1000);
  chmodSync(join(extra, 'data'), 0o750);
  const tar = join(work, 'volimage.tar');
  const r = spawnSync('tar', ['--numeric-owner', '--exclude=./.complete', '-C', busyboxRootfs(), '-cf', tar, '.']);
  if (r.status !== 0) throw new Error(`tar: ${r.stderr.toString()}`);
  const r2 = spawnSync('tar', ['--numeric-owner', '-C', extra, '-rf', tar, 'data']);
  if (r2.status !== 0) throw new Error(`tar: ${r2.stderr.toString()}`);
  await docker('import', '--change', 'VOLUME /data', '--change', 'CMD ["sh"]', tar, 'volimage:1');
}

beforeAll(async () => {
  requireRoot();
  if (!existsSync(SKIFFD)) throw new Error(`${SKIFFD} is missing: run npm run build first`);
  work = mkdtempSync(join(tmpdir(), 'skiff-volumes-'));
  d = await startDaemon();
  await docker('load', '-i', busyboxArchive());
  await makeVolumeImage();
}, 120_000);

afterAll(async () => {
  await d?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('docker volume', () => {
  it('create and inspect: the local driver, its mountpoint, labels; creating again returns it', async () => {
    expect(await docker('volume', 'create', '--label', 'app=web', 'webdata')).toBe('webdata');
    const v = await inspectVolume('webdata');
    expect(v).toEqual({
      CreatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      Driver: 'local',
      Labels: { app: 'web' },
      Mountpoint: `${d.dataRoot}/volumes/webdata/_data`,
      Name: 'webdata',
      Options: null, // as the CLI sent it (no --opt)
      Scope: 'local',
    });
    expect(existsSync(`${d.dataRoot}/volumes/webdata/volume.json`)).toBe(true);
    expect(await docker('volume', 'create', 'webdata')).toBe('webdata');
    expect((await inspectVolume('webdata')).Labels).toEqual({ app: 'web' });
    expect(await docker('volume', 'create')).toMatch(/^[0-9a-f]{64}$/);
  });

  it("bad names, drivers and options get dockerd's errors; a missing volume is 'no such volume'", async () => {
    expect(await fails('volume', 'create', 'a/b')).toContain(
      'create a/b: "a/b" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed',
    );
    expect(await fails('volume', 'create', '-d', 'nfsplug', 'x1')).toContain('plugin "nfsplug" not found');
    expect(await fails('volume', 'create', '--opt', 'foo=bar', 'x2')).toContain('invalid option key: "foo"');
    expect(await fails('volume', 'inspect', 'nosuchvol')).toContain('get nosuchvol: no such volume');
    expect(await fails('volume', 'rm', 'nosuchvol')).toContain('get nosuchvol: no such volume');
    await docker('volume', 'rm', '-f', 'nosuchvol');
    expect(await volumeNames()).not.toContain('x1');
  });

  it('ls with name, label, driver and dangling filters', async () => {
    await docker('volume', 'create', '--label', 'app=db', '--label', 'tier=back', 'dbdata');
    await docker('create', '--name', 'dbholder', '--network', 'none', '-v', 'dbdata:/db', 'busybox', 'true');
    const ls = async (...f: string[]): Promise<string[]> =>
      (await docker('volume', 'ls', '-q', ...f.flatMap((x) => ['--filter', x]))).split('\n').filter(Boolean);
    expect(await ls('name=data')).toEqual(expect.arrayContaining(['webdata', 'dbdata']));
    expect(await ls('label=app=db')).toEqual(['dbdata']);
    expect(await ls('label=app', 'label=tier=back')).toEqual(['dbdata']);
    expect(await ls('driver=local')).toContain('dbdata');
    expect(await ls('dangling=false')).toEqual(['dbdata']);
    expect(await ls('dangling=true')).toContain('webdata');
    expect(await ls('dangling=true')).not.toContain('dbdata');
    expect(await fails('volume', 'ls', '--filter', 'bogus=1')).toContain("invalid filter 'bogus'");
    const ps = await docker('ps', '-a', '--filter', 'volume=dbdata', '--format', '{{.Names}}');
    expect(ps).toBe('dbholder');
  });

  it('rm of a volume in use is a 409 naming the containers; after the container goes it is removed', async () => {
    const id = await docker('inspect', '--format', '{{.Id}}', 'dbholder');
    expect(await fails('volume', 'rm', 'dbdata')).toContain(`remove dbdata: volume is in use - [${id}]`);
    expect(await fails('volume', 'rm', '-f', 'dbdata')).toContain('volume is in use');
    await docker('rm', 'dbholder');
    expect(await docker('volume', 'rm', 'dbdata')).toBe('dbdata');
    expect(existsSync(`${d.dataRoot}/volumes/dbdata`)).toBe(false);
    expect(await volumeNames()).not.toContain('dbdata');
  });

  it('prune removes unused anonymous volumes; --all the named ones too; used ones stay', async () => {
    const anon = await docker('volume', 'create', '--label', 'com.docker.volume.anonymous=');
    await docker('volume', 'create', 'prunable');
    await docker('volume', 'create', 'kept-in-use');
    await docker('create', '--name', 'pruneholder', '--network', 'none', '-v', 'kept-in-use:/k', 'busybox', 'true');
    const out = await docker('volume', 'prune', '-f');
    expect(out).toContain(anon);
    expect(out).not.toContain('prunable');
    expect(await volumeNames()).toContain('prunable');
    expect(await volumeNames()).not.toContain(anon);
    const all = await docker('volume', 'prune', '-af', '--filter', 'label!=keep');
    expect(all).toContain('prunable');
    expect(await volumeNames()).toEqual(['kept-in-use']);
    await docker('rm', 'pruneholder');
    await docker('volume', 'rm', 'kept-in-use');
  });

  it('events: volume create and destroy with the driver', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    await docker('volume', 'create', 'evvol');
    await docker('volume', 'rm', 'evvol');
    const until = Math.floor(Date.now() / 1000) + 1;
    const ev = await docker(
      'events',
      '--since',
      String(since),
      '--until',
      String(until),
      '--filter',
      'type=volume',
      '--filter',
      'volume=evvol',
      '--format',
      '{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}}',
    );
    expect(ev.split('\n')).toEqual(['create evvol local', 'destroy evvol local']);
  });
});

describe('volumes in containers', () => {
  it('data written by one container is read by the next, and survives docker rm and a skiffd restart', async () => {
    await docker(
      'run',
      '--name',
      'writer',
      '--network',
      'none',
      '-v',
      'keep:/data',
      'busybox',
      'sh',
      '-c',
      'echo kept > /data/f',
    );
    await docker('rm', 'writer');
    expect(await run('-v', 'keep:/data', 'busybox', 'cat', '/data/f')).toBe('kept');
    expect(readFileSync(`${d.dataRoot}/volumes/keep/_data/f`, 'utf8')).toBe('kept\n');
    await d.killDaemon();
    await d.restartDaemon();
    expect(await volumeNames()).toContain('keep');
    expect(await run('-v', 'keep:/data', 'busybox', 'cat', '/data/f')).toBe('kept');
  });

  it('events: volume mount when a container starts, unmount when it stops', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    await run('-v', 'evm:/e:ro', 'busybox', 'true');
    const until = Math.floor(Date.now() / 1000) + 1;
    const ev = await d.docker([
      'events',
      ...['--since', String(since), '--until', String(until)],
      ...['--filter', 'volume=evm', '--format', '{{json .}}'],
    ]);
    const actions = ev.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Json);
    expect(actions.map((e) => e.Action)).toEqual(['create', 'mount', 'unmount']);
    expect(actions[1]!.Actor.Attributes).toMatchObject({
      destination: '/e',
      driver: 'local',
      'read/write': 'false',
      propagation: '',
    });
    expect(actions[1]!.Actor.Attributes.container).toMatch(/^[0-9a-f]{64}$/);
    await docker('volume', 'rm', 'evm');
  });

  it('inspect Mounts of a named volume, read-only with :ro', async () => {
    await docker('create', '--name', 'mnt1', '--network', 'none', '-v', 'keep:/data:ro', 'busybox', 'true');
    const c = JSON.parse(await docker('inspect', 'mnt1'))[0];
    expect(c.Mounts).toEqual([
      {
        Type: 'volume',
        Name: 'keep',
        Source: `${d.dataRoot}/volumes/keep/_data`,
        Destination: '/data',
        Driver: 'local',
        Mode: 'ro',
        RW: false,
        Propagation: '',
      },
    ]);
    await docker('rm', 'mnt1');
    const err = await d.docker([
      'run',
      '--rm',
      '--network',
      'none',
      '-v',
      'keep:/data:ro',
      'busybox',
      'touch',
      '/data/x',
    ]);
    expect(err.code).not.toBe(0);
    expect(err.stderr + err.stdout).toMatch(/Read-only file system/);
  });

  it("an image VOLUME gets an anonymous volume filled with the image's files, owners and modes kept", async () => {
    const before = await volumeNames();
    const id = await docker('run', '-d', '--name', 'vt', '--network', 'none', 'volimage:1', 'sleep', '1000');
    const c = JSON.parse(await docker('inspect', id))[0];
    expect(c.Mounts).toHaveLength(1);
    const m = c.Mounts[0];
    expect(m).toMatchObject({
      Type: 'volume',
      Destination: '/data',
      Driver: 'local',
      Mode: '',
      RW: true,
      Propagation: '',
    });
    expect(m.Name).toMatch(/^[0-9a-f]{64}$/);
    expect(m.Source).toBe(`${d.dataRoot}/volumes/${m.Name}/_data`);
    expect((await inspectVolume(m.Name)).Labels).toEqual({ 'com.docker.volume.anonymous': '' });
    expect(await docker('exec', 'vt', 'cat', '/data/hello')).toBe('from the image');
    expect(await docker('exec', 'vt', 'stat', '-c', '%u:%g %a', '/data', '/data/sub/secret')).toBe(
      '1000:1000 750\n1000:1000 600',
    );
    // docker rm (without -v) keeps it; rm -v of another container using it does not take it either.
    await docker('rm', '-f', 'vt');
    expect(await volumeNames()).toContain(m.Name);
    await docker('volume', 'rm', m.Name);
    expect(await volumeNames()).toEqual(before);
  });

  it('rm -v and --rm remove anonymous volumes but never named ones', async () => {
    const before = await volumeNames();
    await docker(
      'create',
      '--name',
      'rmv',
      '--network',
      'none',
      '-v',
      '/scratch',
      '-v',
      'named1:/n',
      'volimage:1',
      'true',
    );
    expect((await volumeNames()).length).toBe(before.length + 3); // /scratch, /data (image) and named1
    await docker('rm', '-v', 'rmv');
    expect(await volumeNames()).toEqual([...before, 'named1'].sort());
    expect(await run('-v', '/scratch2', '-v', 'named1:/n', 'volimage:1', 'cat', '/data/hello')).toBe('from the image');
    expect(await volumeNames()).toEqual([...before, 'named1'].sort());
    await docker('volume', 'rm', 'named1');
  });

  it("--volumes-from: the other container's volumes and binds, read-only with :ro", async () => {
    const host = join(work, 'vfbind');
    mkdirSync(host);
    await docker('create', '--name', 'vfsrc', '--network', 'none', '-v', 'vfvol:/v', '-v', `${host}:/b`, 'volimage:1');
    expect(await run('--volumes-from', 'vfsrc', 'busybox', 'sh', '-c', 'echo 1 > /v/f; echo 2 > /b/f; ls /data')).toBe(
      'hello\nsub',
    );
    expect(readFileSync(join(host, 'f'), 'utf8')).toBe('2\n');
    const ro = await d.docker([
      'run',
      '--rm',
      '--network',
      'none',
      '--volumes-from',
      'vfsrc:ro',
      'busybox',
      'touch',
      '/v/g',
    ]);
    expect(ro.code).not.toBe(0);
    expect(await run('--volumes-from', 'vfsrc:ro', 'busybox', 'cat', '/v/f')).toBe('1');
    // (The CLI reads any 404 of create as a missing image and tries a pull: asked through the API here.)
    const missing = await d.dockerode
      .createContainer({ Image: 'busybox', HostConfig: { VolumesFrom: ['nosuchc'] } })
      .then(
        () => undefined,
        (err: { statusCode?: number; message: string }) => err,
      );
    expect(missing?.statusCode).toBe(404);
    expect(missing?.message).toContain('No such container: nosuchc');
    await docker('rm', '-v', 'vfsrc');
    await docker('volume', 'rm', 'vfvol');
  });

  it('a volume is filled once: emptied by the user, it stays empty; nocopy leaves it empty', async () => {
    expect(await run('-v', 'pop:/data', 'volimage:1', 'ls', '/data')).toBe('hello\nsub');
    await run('-v', 'pop:/data', 'volimage:1', 'sh', '-c', 'rm -rf /data/*');
    expect(await run('-v', 'pop:/data', 'volimage:1', 'ls', '-A', '/data')).toBe('');
    expect(JSON.parse(readFileSync(`${d.dataRoot}/volumes/pop/volume.json`, 'utf8')).populated).toBe(true);
    expect(
      await run('--mount', 'type=volume,source=nc,target=/data,volume-nocopy', 'volimage:1', 'ls', '-A', '/data'),
    ).toBe('');
    expect(await run('-v', 'nc2:/data:nocopy', 'volimage:1', 'ls', '-A', '/data')).toBe('');
    await docker('volume', 'rm', 'pop', 'nc', 'nc2');
  });

  it('--mount type=volume: readonly, labels and driver options for the volume it makes', async () => {
    await run('--mount', 'type=volume,source=mv,target=/m,volume-label=k=v', 'busybox', 'sh', '-c', 'echo x > /m/f');
    expect((await inspectVolume('mv')).Labels).toEqual({ k: 'v' });
    const ro = await d.docker([
      'run',
      '--rm',
      '--network',
      'none',
      '--mount',
      'type=volume,source=mv,target=/m,readonly',
      'busybox',
      'touch',
      '/m/g',
    ]);
    expect(ro.code).not.toBe(0);
    expect(await run('--mount', 'type=volume,source=mv,target=/m,readonly', 'busybox', 'cat', '/m/f')).toBe('x');
    await run(
      '--mount',
      'type=volume,source=mvt,target=/t,volume-driver=local,volume-opt=type=tmpfs,volume-opt=device=tmpfs',
      'busybox',
      'true',
    );
    expect((await inspectVolume('mvt')).Options).toEqual({ type: 'tmpfs', device: 'tmpfs' });
    await docker('volume', 'rm', 'mv', 'mvt');
  });

  it('local driver options: a tmpfs volume and a bind volume are mounted on first use', async () => {
    await docker('volume', 'create', '--opt', 'type=tmpfs', '--opt', 'device=tmpfs', '--opt', 'o=size=1m', 'tmpvol');
    const mounts = await run('-v', 'tmpvol:/t', 'busybox', 'sh', '-c', 'grep " /t " /proc/mounts; echo hi > /t/f');
    expect(mounts).toMatch(/^tmpfs \/t tmpfs .*size=1024k/);
    const host = join(work, 'bindsrc');
    mkdirSync(host);
    writeFileSync(join(host, 'from-host'), 'host file\n');
    await docker('volume', 'create', '--opt', 'type=none', '--opt', `device=${host}`, '--opt', 'o=bind', 'bindvol');
    expect(
      await run('-v', 'bindvol:/b', 'busybox', 'sh', '-c', 'cat /b/from-host; echo back > /b/from-container'),
    ).toBe('host file');
    expect(readFileSync(join(host, 'from-container'), 'utf8')).toBe('back\n');
    // Removing the volume unmounts it and leaves the host directory alone.
    await docker('volume', 'rm', 'tmpvol', 'bindvol');
    expect(readFileSync(join(host, 'from-host'), 'utf8')).toBe('host file\n');
  });

  it('tmpfs mounts (--tmpfs and --mount type=tmpfs) and read-only binds', async () => {
    const t = await run(
      '--tmpfs',
      '/t1',
      '--mount',
      'type=tmpfs,target=/t2,tmpfs-size=1048576',
      'busybox',
      'sh',
      '-c',
      'grep -E " /t[12] " /proc/mounts; echo ok > /t1/f; cat /t1/f',
    );
    expect(t).toMatch(/^tmpfs \/t1 tmpfs rw,nosuid,nodev,noexec/m);
    expect(t).toMatch(/^tmpfs \/t2 tmpfs .*size=1024k/m);
    expect(t).toMatch(/^ok$/m);
    const host = join(work, 'robind');
    mkdirSync(host);
    writeFileSync(join(host, 'r'), 'readable\n');
    expect(await run('-v', `${host}:/b:ro`, 'busybox', 'cat', '/b/r')).toBe('readable');
    const w = await d.docker(['run', '--rm', '--network', 'none', '-v', `${host}:/b:ro`, 'busybox', 'touch', '/b/w']);
    expect(w.code).not.toBe(0);
    expect(existsSync(join(host, 'w'))).toBe(false);
  });

  it('system df lists volumes with their size and reference count', async () => {
    await docker('volume', 'create', 'dfvol');
    writeFileSync(`${d.dataRoot}/volumes/dfvol/_data/blob`, Buffer.alloc(10_000, 1));
    await docker('create', '--name', 'dfholder', '--network', 'none', '-v', 'dfvol:/x', 'busybox', 'true');
    const r = await httpGet(d.socket, '/v1.50/system/df');
    const v = (JSON.parse(r.body).Volumes as Json[]).find((x) => x.Name === 'dfvol');
    expect(v?.UsageData.RefCount).toBe(1);
    expect(v?.UsageData.Size).toBeGreaterThanOrEqual(10_000);
    await docker('rm', 'dfholder');
    await docker('volume', 'rm', 'dfvol');
  });
});
