// skiffd's server and system parts (issue 4) with the real docker CLI 28.2.2, curl and dockerode: version
// negotiation, /_ping, /version, /info, /system/df, /events with since/until and filters, error bodies, old clients.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../native/helpers.js';
import { busyboxArchive, DaemonHarness, run, SKIFFD, startDaemon } from './daemon-harness.js';

let d: DaemonHarness;

/** curl on the daemon's socket: the status line and headers (-i), and the body. */
function curl(args: string[]): { head: string; body: string; status: number } {
  const r = spawnSync('curl', ['-sS', '-i', '--unix-socket', d.socket, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`curl ${args.join(' ')}: ${r.stderr}`);
  const [head, ...rest] = r.stdout.split('\r\n\r\n');
  return { head, body: rest.join('\r\n\r\n'), status: Number(head.split(' ')[1]) };
}

const header = (head: string, name: string): string | undefined =>
  head
    .split('\r\n')
    .find((l) => l.toLowerCase().startsWith(name.toLowerCase() + ':'))
    ?.slice(name.length + 1)
    .trim();

beforeAll(async () => {
  requireRoot();
  if (!existsSync(SKIFFD)) throw new Error(`${SKIFFD} is missing: run npm run build first`);
  d = await startDaemon();
});

afterAll(async () => {
  await d?.stop();
});

describe('the socket and the process', () => {
  it('listens on a unix socket with mode 0660, writes its pid file, and started a supervisor', () => {
    const mode = spawnSync('stat', ['-c', '%a %F', d.socket], { encoding: 'utf8' }).stdout.trim();
    expect(mode).toBe('660 socket');
    expect(readFileSync(d.pidFile, 'utf8').trim()).toBe(String(d.proc!.pid));
    expect(d.supervisorPids()).toHaveLength(1);
  });
});

describe('version negotiation and headers', () => {
  it('docker version prints the server part and negotiates API 1.50', async () => {
    const r = await d.docker(['version']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Server: Skiff Engine/);
    expect(r.stdout).toMatch(/API version:\s+1\.50 \(minimum version 1\.24\)/);
    const fmt = await d.docker(['version', '--format', '{{.Client.APIVersion}} {{.Server.APIVersion}} {{.Server.Os}}']);
    expect(fmt.stdout.trim()).toBe('1.50 1.50 linux');
  });

  it('HEAD /_ping answers 200 with the headers the CLI reads', () => {
    const r = curl(['-I', 'http://docker/_ping']);
    expect(r.status).toBe(200);
    expect(header(r.head, 'Api-Version')).toBe('1.50');
    expect(header(r.head, 'Ostype')).toBe('linux');
    expect(header(r.head, 'Docker-Experimental')).toBe('false');
    expect(header(r.head, 'Builder-Version')).toBe('1');
    expect(header(r.head, 'Swarm')).toBe('inactive');
    expect(header(r.head, 'Cache-Control')).toMatch(/no-cache/);
    expect(header(r.head, 'Pragma')).toBe('no-cache');
    expect(header(r.head, 'Server')).toMatch(/^Docker\/28\.2\.2 \(linux\)$/);
  });

  it('GET /_ping says OK, versioned or not', () => {
    expect(curl(['http://docker/_ping']).body).toBe('OK');
    expect(curl(['http://docker/v1.24/_ping']).body).toBe('OK');
  });

  it('serves unversioned paths (dockerode, docker-py) with the daemon’s version', () => {
    const r = curl(['http://docker/version']);
    expect(r.status).toBe(200);
    expect(header(r.head, 'Content-Type')).toBe('application/json');
    const v = JSON.parse(r.body);
    expect(v).toMatchObject({ ApiVersion: '1.50', MinAPIVersion: '1.24', Os: 'linux', Version: '28.2.2' });
    expect(v.Components.map((c: { Name: string }) => c.Name)).toEqual(
      expect.arrayContaining(['Engine', 'skiffd', 'skiff-supervisor']),
    );
  });

  it('answers versions outside [1.24, 1.50] with 400 and dockerd’s words', () => {
    const hi = curl(['http://docker/v1.99/version']);
    expect(hi.status).toBe(400);
    expect(header(hi.head, 'Content-Type')).toBe('application/json');
    expect(JSON.parse(hi.body).message).toBe('client version 1.99 is too new. Maximum supported API version is 1.50');
    const lo = curl(['http://docker/v1.12/info']);
    expect(lo.status).toBe(400);
    expect(JSON.parse(lo.body).message).toMatch(
      /^client version 1\.12 is too old\. Minimum supported API version is 1\.24/,
    );
    expect(header(lo.head, 'Api-Version')).toBe('1.50');
  });

  it('unknown routes: 404 page not found, exactly application/json, with the common headers', () => {
    for (const path of ['/nope', '/v1.50/nope', '/v1.50/containers/x/nonsense']) {
      const r = curl([`http://docker${path}`]);
      expect(r.status).toBe(404);
      expect(header(r.head, 'Content-Type')).toBe('application/json');
      expect(header(r.head, 'Ostype')).toBe('linux');
      expect(JSON.parse(r.body)).toEqual({ message: 'page not found' });
    }
  });

  it('an old client (DOCKER_API_VERSION=1.24) is served', async () => {
    const r = await d.docker(['version', '--format', '{{.Client.APIVersion}} {{.Server.APIVersion}}'], {
      env: { DOCKER_API_VERSION: '1.24' },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('1.24 1.50');
    const info = await d.docker(['info', '--format', '{{.OSType}}'], { env: { DOCKER_API_VERSION: '1.24' } });
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout.trim()).toBe('linux');
  });

  it('bad JSON bodies are a 400 with a message', () => {
    const r = curl(['-X', 'POST', '-H', 'Content-Type: application/json', '-d', '{nope', 'http://docker/v1.50/auth']);
    expect([400, 501]).toContain(r.status);
    expect(header(r.head, 'Content-Type')).toBe('application/json');
    expect(typeof JSON.parse(r.body).message).toBe('string');
  });
});

describe('info and disk usage', () => {
  it('docker info prints the server’s facts', async () => {
    const r = await d.docker(['info']);
    expect(r.code, r.stderr).toBe(0);
    for (const re of [
      /Containers: \d+/,
      /Running: \d+/,
      /Images: \d+/,
      /Server Version: 28\.2\.2/,
      /Storage Driver: overlay2/,
      /Cgroup Driver: cgroupfs/,
      /Cgroup Version: [12]/,
      /Default Runtime: runc/,
      /OSType: linux/,
      /Live Restore Enabled: true/,
      /seccomp/,
    ])
      expect(r.stdout).toMatch(re);
    expect(r.stdout).toContain(`Docker Root Dir: ${d.dataRoot}`);
    const j = JSON.parse((await d.docker(['info', '--format', '{{json .}}'])).stdout);
    expect(j).toMatchObject({
      OSType: 'linux',
      Driver: 'overlay2',
      DefaultRuntime: 'runc',
      Runtimes: { runc: { path: 'skiff-runtime' } },
      Warnings: [],
    });
    expect(j.NCPU).toBeGreaterThan(0);
    expect(j.MemTotal).toBeGreaterThan(0);
    expect(j.ID).toMatch(/^[0-9a-f-]{36}$/);
    expect(j.SecurityOptions).toContain('name=seccomp,profile=builtin');
  });

  it('docker system df', async () => {
    const r = await d.docker(['system', 'df']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE/);
    expect(r.stdout).toMatch(/Images\s+\d+/);
    expect(r.stdout).toMatch(/Containers\s+\d+/);
    expect(r.stdout).toMatch(/Local Volumes\s+0/);
  });

  it('dockerode reads /version and /info', async () => {
    const v = await d.dockerode.version();
    expect(v.ApiVersion).toBe('1.50');
    const info = await d.dockerode.info();
    expect(info.OSType).toBe('linux');
  });
});

describe('inspect of an unknown name', () => {
  it('looks through containers, images, networks and volumes, then says "No such object"', async () => {
    const i = await d.docker(['inspect', 'nosuch']);
    expect(i.code).toBe(1);
    expect(i.stderr).toMatch(/No such object: nosuch/);
  });
});

describe('login', () => {
  it('POST /auth does not pretend: a clear error or a real check', async () => {
    const r = await d.docker(['login', '-u', 'nobody', '--password-stdin', '127.0.0.1:1'], { input: 'wrong\n' });
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toMatch(/Login Succeeded/);
  });
});

describe('events', () => {
  it('docker events --since/--until with a filter replays what happened', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const load = await d.docker(['load', '-i', busyboxArchive('skiff.test/events:one')]);
    expect(load.code, load.stderr).toBe(0);
    expect((await d.docker(['tag', 'skiff.test/events:one', 'skiff.test/events:two'])).code).toBe(0);
    await new Promise((r) => setTimeout(r, 1100));
    const until = Math.floor(Date.now() / 1000);
    const fmt = '{{.Type}} {{.Action}} {{index .Actor.Attributes "name"}}';
    const all = await d.docker(['events', '--since', String(since), '--until', String(until), '--format', fmt]);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toMatch(/^image load /m);
    expect(all.stdout).toMatch(/^image tag skiff\.test\/events:two$/m);
    const tags = await d.docker([
      'events',
      '--since',
      String(since),
      '--until',
      String(until),
      '--filter',
      'event=tag',
      '--format',
      fmt,
    ]);
    expect(tags.stdout.trim().split('\n')).toEqual(['image tag skiff.test/events:two']);
    const none = await d.docker(['events', '--since', String(since), '--until', String(until), '-f', 'type=volume']);
    expect(none.code).toBe(0);
    expect(none.stdout).toBe('');
  });

  it('dockerode reads the same events (unversioned path, map-form filters)', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const tag = await d.docker(['tag', 'skiff.test/events:one', 'skiff.test/events:dockerode']);
    expect(tag.code, tag.stderr).toBe(0);
    const until = Math.floor(Date.now() / 1000) + 1;
    const stream = await d.dockerode.getEvents({ since, until, filters: { event: ['tag'] } });
    let text = '';
    for await (const c of stream as AsyncIterable<Buffer>) text += c.toString();
    const events = text
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l));
    expect(events.map((e) => e.Actor.Attributes.name)).toContain('skiff.test/events:dockerode');
    expect(events.every((e) => e.Action === 'tag' && e.scope === 'local' && e.timeNano > 0)).toBe(true);
  });

  it('docker events follows live events until --until', async () => {
    const until = Math.floor(Date.now() / 1000) + 3;
    const watching = d.docker([
      'events',
      '--until',
      String(until),
      '--filter',
      'type=image',
      '--format',
      '{{.Action}}',
    ]);
    await new Promise((r) => setTimeout(r, 500));
    const tag = await d.docker(['tag', 'skiff.test/events:one', 'skiff.test/events:three']);
    expect(tag.code, tag.stderr).toBe(0);
    const r = await watching;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toContain('tag');
  });
});

describe('the daemon process', () => {
  it('kill -9 leaves the supervisor running; the next skiffd uses it', async () => {
    const [sup] = d.supervisorPids();
    await d.killDaemon('SIGKILL');
    expect(d.supervisorPids()).toEqual([sup]);
    await d.startDaemon();
    expect(d.supervisorPids()).toEqual([sup]);
    expect((await d.docker(['version', '--format', '{{.Server.APIVersion}}'])).stdout.trim()).toBe('1.50');
  });

  it('SIGTERM: exits 0, removes its socket and pid file, the supervisor goes on', async () => {
    const [sup] = d.supervisorPids();
    const proc = d.proc!;
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(d.socket)).toBe(false);
    expect(existsSync(d.pidFile)).toBe(false);
    expect(d.supervisorPids()).toEqual([sup]);
    await d.startDaemon();
  });

  it('refuses to start while a live skiffd holds the pid file', async () => {
    const r = await run('nsenter', [
      '-t',
      String(d.nsPid),
      '-m',
      '-n',
      '--',
      SKIFFD,
      '-H',
      `unix://${d.socket}.2`,
      '--data-root',
      d.dataRoot,
      '--exec-root',
      d.execRoot,
      '--supervisor',
      d.supervisorSocket,
      '--pidfile',
      d.pidFile,
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/pid file found/);
    expect((await d.docker(['version', '--format', '{{.Server.APIVersion}}'])).stdout.trim()).toBe('1.50');
  });

  it('--live-restore=false: reported, and a restart stops the containers, bringing back restart=always ones', async () => {
    const other = await startDaemon({ args: ['--live-restore=false'] });
    try {
      const r = await other.docker(['info', '--format', '{{.LiveRestoreEnabled}}']);
      expect(r.stdout.trim()).toBe('false');
      expect((await other.docker(['load', '-i', busyboxArchive()])).code).toBe(0);
      const plain = (await other.docker(['run', '-d', 'busybox', 'sleep', '300'])).stdout.trim();
      const always = (
        await other.docker(['run', '-d', '--restart', 'always', 'busybox', 'sleep', '300'])
      ).stdout.trim();
      const pid = async (id: string) => (await other.docker(['inspect', '-f', '{{.State.Pid}}', id])).stdout.trim();
      const before = await pid(always);
      await other.killDaemon('SIGKILL');
      await other.startDaemon();
      const status = async (id: string) =>
        (await other.docker(['inspect', '-f', '{{.State.Status}}', id])).stdout.trim();
      expect(await status(plain)).toBe('exited');
      expect(await status(always)).toBe('running');
      expect(await pid(always)).not.toBe(before);
    } finally {
      await other.stop();
    }
  });
});
