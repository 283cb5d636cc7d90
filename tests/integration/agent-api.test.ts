// skiff-agent's gRPC API (proto/agent.proto) against the real engine it keeps (skiffd + skiff-supervisor +
// runtime, native mode in private namespaces): every RPC of every service, streams included, and the errors a
// client sees. One agent for the whole file; the docker CLI on the agent's docker.sock sets things up.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, statfsSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem, uptime } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../native/helpers.js';
import {
  type AgentHarness,
  busyboxArchive,
  call,
  failure,
  logText,
  type Msg,
  processOf,
  startAgent,
  toDate,
} from './agent-harness.js';

requireRoot();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const NOT_FOUND = 5;
const FAILED_PRECONDITION = 9;

let a: AgentHarness;
let busyboxId: string;

beforeAll(async () => {
  a = await startAgent();
  await a.dockerOk(['load', '-i', busyboxArchive()]);
  busyboxId = (await a.dockerOk(['image', 'inspect', '-f', '{{.Id}}', 'busybox'])).trim();
});

// The engine's side of a failure: the agent's, skiffd's and the supervisor's last log lines.
afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail' && a) console.error(a.log(30));
});

afterAll(async () => {
  await a?.stop();
});

/** Containers.Run; the new container's id. */
async function runContainer(req: Msg): Promise<string> {
  const r = await call(a.c.containers, 'Run', { image: 'busybox', ...req });
  expect(r.id).toMatch(/^[0-9a-f]{64}$/);
  return r.id as string;
}

/** Containers.Inspect: the summary and the engine's document. */
async function inspect(id: string): Promise<{ summary: Msg; doc: Msg }> {
  const r = await call(a.c.containers, 'Inspect', { id });
  return { summary: r.summary, doc: JSON.parse(r.json as string) as Msg };
}

/** A batch call's results by id. */
async function batch(method: string, req: Msg): Promise<Record<string, Msg>> {
  const r = await call(a.c.containers, method, req);
  return Object.fromEntries((r.results as Msg[]).map((x) => [x.id, x]));
}

async function waitState(id: string, state: string, timeoutMs = 15_000): Promise<Msg> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const { doc } = await inspect(id);
    if (doc.State.Status === state) return doc;
    if (Date.now() > end) throw new Error(`${id}: state ${doc.State.Status}, not ${state}`);
    await sleep(100);
  }
}

/** GET a published port from inside the agent's network namespace (curl), retried until it answers. */
async function httpFromNetns(port: number, timeoutMs = 10_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await a.inNetns('curl', ['-sS', '-m', '3', `http://127.0.0.1:${port}/`], { timeoutMs: 5000 });
    if (r.code === 0) return r.stdout;
    if (Date.now() > end) throw new Error(`port ${port}: curl exit ${r.code}: ${r.stderr}`);
    await sleep(200);
  }
}

async function containerNames(): Promise<string[]> {
  const r = await call(a.c.containers, 'List', { all: true });
  return (r.containers as Msg[]).map((c) => c.name);
}

// ---------------------------------------------------------------------------------------------------------------

describe('System', () => {
  it('Info: the engine is ready, both processes run, the host and the engine as they are', async () => {
    const info = await call(a.c.system, 'Info');
    expect(info.engine_ready).toBe(true);
    for (const name of ['skiffd', 'skiff-supervisor']) {
      const p = processOf(info, name);
      expect(p.state, name).toBe('RUNNING');
      expect(p.pid, name).toBeGreaterThan(0);
      expect(p.restarts, name).toBe(0);
      expect(toDate(p.since)!.getTime(), name).toBeLessThanOrEqual(Date.now());
    }
    expect(info.kernel_version).toBe(release());
    expect(info.operating_system).not.toBe('');
    expect(info.architecture).not.toBe('');
    expect(info.cpus).toBe(cpus().length);
    expect(Number(info.memory_total)).toBeGreaterThan(0);
    expect(info.docker_socket).toBe(a.dockerSocket);
    expect(info.data_root.startsWith(a.root)).toBe(true);
    expect(info.images).toBeGreaterThanOrEqual(1);

    // the counts follow the engine
    await a.dockerOk(['create', '--name', 'info-count', 'busybox', 'true']);
    const after = await call(a.c.system, 'Info');
    expect(after.containers).toBe(info.containers + 1);
    expect(after.containers_stopped).toBe(info.containers_stopped + 1);
    expect(after.containers_running).toBe(info.containers_running);
    await a.dockerOk(['rm', 'info-count']);
  });

  it('Version: the agent, the engine and the API, as the docker CLI sees them', async () => {
    const v = await call(a.c.system, 'Version');
    const server = JSON.parse(await a.dockerOk(['version', '--format', '{{json .Server}}'])) as Msg;
    expect(v.agent_version).not.toBe('');
    expect(v.engine_version).toBe(server.Version);
    expect(v.api_version).toBe(server.ApiVersion);
    expect(v.os).toBe('linux');
    expect(v.arch).not.toBe('');
    expect(v.kernel_version).toBe(release());
  });

  it('DiskUsage: images and containers counted and sized', async () => {
    const du = await call(a.c.system, 'DiskUsage');
    const images = (await a.dockerOk(['images', '-q'])).trim().split('\n').filter(Boolean);
    expect(du.images_count).toBe(new Set(images).size);
    expect(Number(du.images_size)).toBeGreaterThan(0);
    expect(Number(du.images_reclaimable)).toBeGreaterThanOrEqual(0);
    expect(du.containers_count).toBeGreaterThanOrEqual(0);
    expect(Number(du.volumes_size)).toBeGreaterThanOrEqual(0);
  });

  it('Events: create, start and die of a container run while the stream is open', async () => {
    const events = a.stream(a.c.system, 'Events', { filters: { type: { values: ['container'] } } });
    try {
      await sleep(300); // the subscription is made before the container
      const id = await runContainer({ name: 'ev', command: ['true'] });
      const mine = (action: string) => (items: Msg[]) => items.some((e) => e.actor_id === id && e.action === action);
      for (const action of ['create', 'start', 'die']) await events.waitFor(mine(action), 15_000, action);
      const actions = events.items.filter((e) => e.actor_id === id).map((e) => e.action);
      expect(actions.indexOf('create')).toBeLessThan(actions.indexOf('start'));
      expect(actions.indexOf('start')).toBeLessThan(actions.indexOf('die'));
      const start = events.items.find((e) => e.actor_id === id && e.action === 'start')!;
      expect(start.type).toBe('container');
      expect(start.attributes.name).toBe('ev');
      expect(Math.abs(toDate(start.time)!.getTime() - Date.now())).toBeLessThan(60_000);
      expect(events.items.every((e) => e.type === 'container')).toBe(true);
      expect(events.status).toBeUndefined();
      await a.dockerOk(['rm', id]);
    } finally {
      events.cancel();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('Containers', () => {
  let webId: string;
  const bindDir = () => join(a.dir, 'bind');

  it('List: running only by default, all with all; compose project and service from the labels; filters', async () => {
    const labels = ['--label', 'com.docker.compose.project=shop', '--label', 'com.docker.compose.service=cart'];
    const id = (await a.dockerOk(['create', '--name', 'compose-cart', ...labels, 'busybox', 'sleep', '600'])).trim();
    const running = await call(a.c.containers, 'List', {});
    expect((running.containers as Msg[]).map((c) => c.id)).not.toContain(id);
    const all = await call(a.c.containers, 'List', { all: true });
    const c = (all.containers as Msg[]).find((x) => x.id === id);
    expect(c, JSON.stringify(all.containers)).toBeDefined();
    expect(c).toMatchObject({
      name: 'compose-cart',
      image: 'busybox',
      image_id: busyboxId,
      state: 'created',
      compose_project: 'shop',
      compose_service: 'cart',
      health: '',
    });
    expect(c!.labels['com.docker.compose.project']).toBe('shop');
    expect(c!.command).toContain('sleep');
    expect(toDate(c!.created)!.getTime()).toBeGreaterThan(Date.now() - 120_000);
    const filtered = await call(a.c.containers, 'List', {
      all: true,
      filters: { label: { values: ['com.docker.compose.project=shop'] } },
    });
    expect((filtered.containers as Msg[]).map((x) => x.id)).toEqual([id]);
  });

  it('Inspect: by name and by id prefix; the summary and the engine’s JSON', async () => {
    const byName = await inspect('compose-cart');
    expect(byName.summary.name).toBe('compose-cart');
    expect(byName.summary.compose_project).toBe('shop');
    expect(byName.doc.Id).toBe(byName.summary.id);
    expect(byName.doc.Name).toBe('/compose-cart');
    const byPrefix = await inspect((byName.summary.id as string).slice(0, 12));
    expect(byPrefix.summary.id).toBe(byName.summary.id);
    await a.dockerOk(['rm', 'compose-cart']);
  });

  it('Inspect of a missing container: NOT_FOUND "No such container"', async () => {
    const f = await failure(call(a.c.containers, 'Inspect', { id: 'nosuch' }));
    expect(f.code).toBe('NOT_FOUND');
    expect(f.message).toContain('No such container');
    expect(f.message).toContain('nosuch');
  });

  it('Run: ports, env, a bind and a named volume, a command; the port answers in the namespace', async () => {
    mkdirSync(bindDir(), { recursive: true });
    writeFileSync(join(bindDir(), 'hello.txt'), 'from-host\n');
    const script = [
      'mkdir -p /www',
      'echo "$GREETING" > /www/index.html',
      'cat /bind/hello.txt >> /www/index.html',
      'echo kept > /data/v',
      'exec httpd -f -p 8080 -h /www',
    ].join('; ');
    webId = await runContainer({
      name: 'web',
      ports: [{ host_port: 18080, container_port: 8080 }],
      env: ['GREETING=hello-agent'],
      volumes: [
        { source: bindDir(), target: '/bind', read_only: true },
        { source: 'agent-data', target: '/data' },
      ],
      command: ['sh', '-c', script],
      labels: { app: 'web' },
    });
    expect(await httpFromNetns(18080)).toBe('hello-agent\nfrom-host\n');

    const { summary, doc } = await inspect('web');
    expect(summary.id).toBe(webId);
    expect(summary.state).toBe('running');
    expect(summary.status).toMatch(/^Up/);
    expect(summary.labels).toEqual({ app: 'web' });
    expect(summary.ports).toContainEqual({
      host_ip: '0.0.0.0',
      host_port: 18080,
      container_port: 8080,
      protocol: 'tcp',
    });
    expect(doc.Config.Env).toContain('GREETING=hello-agent');
    const mounts = doc.Mounts as Msg[];
    expect(mounts.find((m) => m.Destination === '/bind')).toMatchObject({ Type: 'bind', Source: bindDir(), RW: false });
    expect(mounts.find((m) => m.Destination === '/data')).toMatchObject({
      Type: 'volume',
      Name: 'agent-data',
      RW: true,
    });
    const vol = JSON.parse(await a.dockerOk(['volume', 'inspect', 'agent-data'])) as Msg[];
    expect(vol[0].Name).toBe('agent-data');
  });

  it('Run of a missing image (no pull): NOT_FOUND', async () => {
    const f = await failure(call(a.c.containers, 'Run', { image: 'nosuch/image:1', name: 'noimage' }));
    expect(f.code).toBe('NOT_FOUND');
    expect(f.message).toContain('nosuch/image');
    expect(await containerNames()).not.toContain('noimage');
  });

  it('Run with a host port already in use: FAILED_PRECONDITION naming the port, and no container left behind', async () => {
    const before = await containerNames();
    const f = await failure(
      call(a.c.containers, 'Run', {
        image: 'busybox',
        name: 'clash',
        ports: [{ host_port: 18080, container_port: 80 }],
        command: ['sleep', '600'],
      }),
    );
    expect(f.code, f.message).toBe('FAILED_PRECONDITION');
    expect(f.message).toContain('18080');
    expect(await containerNames()).toEqual(before);
    expect(await httpFromNetns(18080)).toBe('hello-agent\nfrom-host\n'); // web still has it
  });

  it('Stop, Start, Restart, Pause, Unpause, Kill, Remove with several ids and a bad one', async () => {
    const b1 = await runContainer({ name: 'b1', command: ['sleep', '600'] });
    const b2 = await runContainer({ name: 'b2', command: ['sleep', '600'] });
    const ids = ['b1', 'b2', 'nosuch'];
    const expectBatch = (r: Record<string, Msg>) => {
      expect(r.b1, JSON.stringify(r)).toMatchObject({ ok: true });
      expect(r.b2, JSON.stringify(r)).toMatchObject({ ok: true });
      expect(r.nosuch, JSON.stringify(r)).toMatchObject({ ok: false, code: NOT_FOUND });
      expect(r.nosuch.message).toContain('No such container: nosuch');
    };

    expectBatch(await batch('Stop', { ids, timeout: 1 }));
    for (const id of [b1, b2]) expect((await inspect(id)).doc.State.Status).toBe('exited');

    expectBatch(await batch('Start', { ids }));
    const started = (await inspect(b1)).doc.State.StartedAt as string;
    expect((await inspect(b2)).doc.State.Running).toBe(true);

    expectBatch(await batch('Restart', { ids, timeout: 1 }));
    const restarted = (await inspect(b1)).doc;
    expect(restarted.State.Running).toBe(true);
    expect(restarted.State.StartedAt).not.toBe(started);

    expectBatch(await batch('Pause', { ids }));
    for (const id of [b1, b2]) expect((await inspect(id)).summary.state).toBe('paused');
    expectBatch(await batch('Unpause', { ids }));
    for (const id of [b1, b2]) expect((await inspect(id)).summary.state).toBe('running');

    expectBatch(await batch('Kill', { ids, signal: '' }));
    for (const id of [b1, b2]) {
      const doc = await waitState(id, 'exited');
      expect(doc.State.ExitCode).toBe(137);
    }

    // a running container is not removed without force: that one fails alone
    await batch('Start', { ids: ['b2'] });
    const refused = await batch('Remove', { ids: ['b1', 'b2'] });
    expect(refused.b1).toMatchObject({ ok: true });
    expect(refused.b2).toMatchObject({ ok: false, code: FAILED_PRECONDITION });
    const forced = await batch('Remove', { ids: ['b2', 'b1', 'nosuch'], force: true, volumes: true });
    expect(forced.b2).toMatchObject({ ok: true });
    expect(forced.b1).toMatchObject({ ok: false, code: NOT_FOUND }); // removed just before
    expect(forced.nosuch).toMatchObject({ ok: false, code: NOT_FOUND });
  });

  it('Remove: the containers are gone', async () => {
    for (const n of ['b1', 'b2'])
      expect((await failure(call(a.c.containers, 'Inspect', { id: n }))).code).toBe('NOT_FOUND');
  });

  it('Logs (follow): lines as the container prints them, stdout and stderr marked', async () => {
    const script = 'i=0; while [ $i -lt 3000 ]; do echo out$i; echo err$i >&2; i=$((i+1)); sleep 0.2; done';
    const id = await runContainer({ name: 'talker', command: ['sh', '-c', script] });
    const logs = a.stream(a.c.containers, 'Logs', { id, follow: true });
    try {
      await logs.waitFor((m) => logText(m, 'STDOUT').includes('out2\n') && logText(m, 'STDERR').includes('err2\n'));
      for (const m of logs.items) {
        const line = Buffer.from(m.data).toString();
        expect(['STDOUT', 'STDERR']).toContain(m.stream);
        expect(line).toMatch(m.stream === 'STDOUT' ? /^out\d+\n$/ : /^err\d+\n$/);
      }
      // more keep coming while the stream is open
      const n = logs.items.length;
      await logs.waitFor((m) => m.length >= n + 4, 5000, 'more lines');
      expect(logs.status).toBeUndefined();
      const outs = logText(logs.items, 'STDOUT').trim().split('\n');
      expect(outs.slice(0, 4)).toEqual(['out0', 'out1', 'out2', 'out3']);
    } finally {
      logs.cancel();
    }
    await batch('Remove', { ids: [id], force: true });
  });

  it('Logs: tail and timestamps; a stream that is not followed ends', async () => {
    const id = await runContainer({ name: 'counted', command: ['seq', '1', '10'] });
    await waitState(id, 'exited');
    const all = a.stream(a.c.containers, 'Logs', { id });
    expect((await all.ended()).code).toBe('OK');
    expect(logText(all.items)).toBe('1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n');
    expect(all.items.every((m) => m.time === null)).toBe(true);

    const tail = a.stream(a.c.containers, 'Logs', { id, tail: 3, timestamps: true });
    expect((await tail.ended()).code).toBe('OK');
    expect(logText(tail.items)).toBe('8\n9\n10\n');
    for (const m of tail.items) {
      expect(m.stream).toBe('STDOUT');
      expect(Math.abs(toDate(m.time)!.getTime() - Date.now())).toBeLessThan(120_000);
    }
    await batch('Remove', { ids: [id] });
  });

  it('Stats: one sample with memory in use; a stream of samples', async () => {
    const one = a.stream(a.c.containers, 'Stats', { id: webId, stream: false });
    expect((await one.ended(20_000)).code).toBe('OK');
    expect(one.items).toHaveLength(1);
    const s = one.items[0];
    expect(Number(s.memory_usage)).toBeGreaterThan(0);
    expect(Number(s.memory_limit)).toBeGreaterThan(0);
    expect(s.pids).toBeGreaterThanOrEqual(1);
    expect(s.cpu_percent).toBeGreaterThanOrEqual(0);
    expect(toDate(s.read)).toBeDefined();
    const live = a.stream(a.c.containers, 'Stats', { id: webId, stream: true });
    try {
      await live.waitFor((m) => m.length >= 2, 20_000, 'two samples');
      expect(live.status).toBeUndefined();
    } finally {
      live.cancel();
    }
  });

  it('Exec without a tty: stdout, stderr and the exit code', async () => {
    const hi = a.exec({ container: 'web', command: ['echo', 'hi'] });
    expect(await hi.waitExit()).toBe(0);
    expect(hi.stdout).toBe('hi\n');
    expect(hi.stderr).toBe('');

    const three = a.exec({ container: 'web', command: ['sh', '-c', 'echo oops >&2; exit 3'] });
    expect(await three.waitExit()).toBe(3);
    expect(three.stderr).toBe('oops\n');
    expect(three.stdout).toBe('');
  });

  it('Exec: stdin reaches the process (cat echoes it), close_stdin ends it', async () => {
    const cat = a.exec({ container: 'web', command: ['cat'], stdin: true });
    cat.write('hello\n');
    await cat.waitOutput('hello\n');
    cat.write('again\n');
    await cat.waitOutput('again\n');
    cat.closeStdin();
    expect(await cat.waitExit()).toBe(0);
    expect(cat.stdout).toBe('hello\nagain\n');
  });

  it('Exec with a tty: the size from start, then resize', async () => {
    const sh = a.exec({ container: 'web', command: ['sh'], tty: true, stdin: true, cols: 80, rows: 24 });
    sh.write('stty size\n');
    await sh.waitOutput('24 80');
    sh.resize(120, 40);
    await sleep(300); // the resize is its own engine call, next to the stdin stream
    sh.write('stty size; exit 7\n');
    expect(await sh.waitExit()).toBe(7);
    expect(sh.stdout).toContain('40 120');
    expect(sh.stderr).toBe('');
    expect(sh.status?.code).toBe('OK');
  });

  it('Exec in a missing container: NOT_FOUND', async () => {
    const ex = a.exec({ container: 'nosuch', command: ['true'] });
    const st = await ex.ended();
    expect(st.code).toBe('NOT_FOUND');
    expect(st.details).toContain('No such container');
  });

  it('Top: the processes of a container', async () => {
    const top = await call(a.c.containers, 'Top', { id: 'web' });
    expect(top.titles).toContain('PID');
    const cmdCol = (top.titles as string[]).findIndex((t) => t === 'CMD' || t === 'COMMAND');
    expect(cmdCol).toBeGreaterThanOrEqual(0);
    const cmds = (top.processes as Msg[]).map((p) => p.values[cmdCol] as string);
    expect(
      cmds.some((c) => c.includes('httpd')),
      JSON.stringify(cmds),
    ).toBe(true);
    const f = await failure(call(a.c.containers, 'Top', { id: 'nosuch' }));
    expect(f.code).toBe('NOT_FOUND');
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('Images', () => {
  const REG = '127.0.0.1:5000';
  let registry: ChildProcess | undefined;

  beforeAll(async () => {
    // Debian's docker-registry in the agent's network namespace; the CLI pushes busybox there.
    const dir = join(a.dir, 'registry');
    mkdirSync(join(dir, 'data'), { recursive: true });
    const cfg = join(dir, 'config.yml');
    writeFileSync(
      cfg,
      ['version: 0.1', 'log:', '  level: warn', 'storage:', '  filesystem:', `    rootdirectory: ${join(dir, 'data')}`]
        .concat(['http:', `  addr: ${REG}`, '  secret: skiff-tests'])
        .join('\n') + '\n',
    );
    registry = spawn('nsenter', ['-t', String(a.nsPid), '-n', '--', '/usr/bin/docker-registry', 'serve', cfg], {
      stdio: 'ignore',
    });
    for (let i = 0; ; i++) {
      const r = a.ns.nsenter(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${REG}/v2/`]);
      if (r.stdout === '200') break;
      if (i > 200 || registry.exitCode !== null) throw new Error(`docker-registry did not start: ${r.stderr}`);
      await sleep(50);
    }
    await a.dockerOk(['tag', 'busybox', `${REG}/agent/busybox:1`]);
    await a.dockerOk(['push', `${REG}/agent/busybox:1`]);
    await a.dockerOk(['rmi', `${REG}/agent/busybox:1`]);
  });

  afterAll(() => {
    registry?.kill('SIGKILL');
  });

  it('List: busybox with its tag, size and the containers made from it', async () => {
    const r = await call(a.c.images, 'List', {});
    const img = (r.images as Msg[]).find((i) => i.id === busyboxId);
    expect(img, JSON.stringify(r.images)).toBeDefined();
    expect(img!.repo_tags).toContain('busybox:latest');
    expect(Number(img!.size)).toBeGreaterThan(0);
    expect(img!.containers).toBeGreaterThanOrEqual(1); // web
    expect(img!.in_use).toBe(true);
    expect(img!.dangling).toBe(false);
    expect(toDate(img!.created)!.toISOString()).toBe('2024-01-01T00:00:00.000Z');
  });

  it('Inspect and History', async () => {
    const doc = JSON.parse((await call(a.c.images, 'Inspect', { ref: 'busybox' })).json as string) as Msg;
    expect(doc.Id).toBe(busyboxId);
    const h = await call(a.c.images, 'History', { ref: 'busybox:latest' });
    expect((h.entries as Msg[]).map((e) => e.created_by)).toContain('busybox-static (skiff tests)');
    expect((h.entries as Msg[])[0].tags).toContain('busybox:latest');
    expect((await failure(call(a.c.images, 'Inspect', { ref: 'nosuch:1' }))).code).toBe('NOT_FOUND');
    expect((await failure(call(a.c.images, 'History', { ref: 'nosuch:1' }))).code).toBe('NOT_FOUND');
  });

  it('Pull from a registry: progress, then the image id last', async () => {
    const pull = a.stream(a.c.images, 'Pull', { ref: `${REG}/agent/busybox:1` });
    const st = await pull.ended(60_000);
    expect(st.code, pull.describe()).toBe('OK');
    expect(pull.items.length).toBeGreaterThan(1);
    expect(pull.items.at(-1)!.image_id).toBe(busyboxId);
    expect(pull.items.slice(0, -1).every((p) => p.image_id === '')).toBe(true);
    expect(
      pull.items.some((p) => p.layer !== '' && p.status !== ''),
      pull.describe(),
    ).toBe(true);
    const tags = JSON.parse(await a.dockerOk(['image', 'inspect', '-f', '{{json .RepoTags}}', busyboxId])) as string[];
    expect(tags).toContain(`${REG}/agent/busybox:1`);
  });

  it('Pull of a missing tag: NOT_FOUND', async () => {
    const pull = a.stream(a.c.images, 'Pull', { ref: `${REG}/agent/busybox:nope` });
    const st = await pull.ended(60_000);
    expect(st.code, pull.describe()).toBe('NOT_FOUND');
    expect(st.details).toMatch(/not found|manifest unknown/);
  });

  it('Tag and Remove (untag)', async () => {
    await call(a.c.images, 'Tag', { source: 'busybox', target: 'agent/tagged:1' });
    const r = await call(a.c.images, 'List', {});
    expect((r.images as Msg[]).find((i) => i.id === busyboxId)!.repo_tags).toContain('agent/tagged:1');
    const rm = await call(a.c.images, 'Remove', { ref: 'agent/tagged:1' });
    expect(rm.untagged).toEqual(['agent/tagged:1']);
    expect(rm.deleted).toEqual([]);
    expect((await failure(call(a.c.images, 'Remove', { ref: 'agent/tagged:1' }))).code).toBe('NOT_FOUND');
    expect((await failure(call(a.c.images, 'Tag', { source: 'nosuch:1', target: 'x:1' }))).code).toBe('NOT_FOUND');
  });

  it('Prune: a dangling image goes, busybox stays', async () => {
    const tar = join(a.dir, 'dangling.tar');
    const src = join(a.dir, 'dangling');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'f'), 'dangling\n');
    expect(spawnSync('tar', ['-C', src, '-cf', tar, '.']).status).toBe(0);
    const id = (await a.dockerOk(['import', tar])).trim();
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    const listed = (await call(a.c.images, 'List', {})).images as Msg[];
    expect(listed.find((i) => i.id === id)).toMatchObject({ dangling: true, repo_tags: [] });
    const pr = await call(a.c.images, 'Prune', {});
    expect(pr.deleted).toContain(id);
    expect(Number(pr.space_reclaimed)).toBeGreaterThanOrEqual(0);
    const after = ((await call(a.c.images, 'List', {})).images as Msg[]).map((i) => i.id);
    expect(after).not.toContain(id);
    expect(after).toContain(busyboxId);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('Volumes', () => {
  it('Create, List (with a label filter), Inspect', async () => {
    const created = await call(a.c.volumes, 'Create', { name: 'v-agent', labels: { team: 'a' } });
    expect(created.volume).toMatchObject({ name: 'v-agent', driver: 'local', labels: { team: 'a' }, anonymous: false });
    expect(created.volume.mountpoint).not.toBe('');
    expect(JSON.parse(created.json as string).Name).toBe('v-agent');
    const all = (await call(a.c.volumes, 'List', {})).volumes as Msg[];
    expect(all.map((v) => v.name)).toEqual(expect.arrayContaining(['v-agent', 'agent-data']));
    expect(all.find((v) => v.name === 'agent-data')!.users).toEqual(['web']);
    const filtered = (await call(a.c.volumes, 'List', { filters: { label: { values: ['team=a'] } } })).volumes as Msg[];
    expect(filtered.map((v) => v.name)).toEqual(['v-agent']);
    const got = await call(a.c.volumes, 'Inspect', { name: 'v-agent' });
    expect(got.volume.users).toEqual([]);
    expect((await failure(call(a.c.volumes, 'Inspect', { name: 'nosuch' }))).code).toBe('NOT_FOUND');
    const named = await call(a.c.volumes, 'Create', {});
    expect(named.volume.name).toMatch(/^[0-9a-f]{64}$/);
    await call(a.c.volumes, 'Remove', { name: named.volume.name });
  });

  it('Remove of a volume in use: FAILED_PRECONDITION; once free, it goes', async () => {
    await a.dockerOk(['create', '--name', 'vuser', '-v', 'v-agent:/x', 'busybox', 'true']);
    expect((await call(a.c.volumes, 'Inspect', { name: 'v-agent' })).volume.users).toEqual(['vuser']);
    const f = await failure(call(a.c.volumes, 'Remove', { name: 'v-agent' }));
    expect(f.code).toBe('FAILED_PRECONDITION');
    expect(f.message).toContain('in use');
    await a.dockerOk(['rm', 'vuser']);
    await call(a.c.volumes, 'Remove', { name: 'v-agent' });
    expect((await failure(call(a.c.volumes, 'Inspect', { name: 'v-agent' }))).code).toBe('NOT_FOUND');
  });

  it('Prune: unused anonymous volumes; named ones too with all', async () => {
    const cid = (await a.dockerOk(['create', '-v', '/anon', 'busybox', 'true'])).trim();
    const anon = (JSON.parse(await a.dockerOk(['inspect', cid])) as Msg[])[0].Mounts[0].Name as string;
    await a.dockerOk(['rm', cid]);
    await call(a.c.volumes, 'Create', { name: 'v-keep' });
    const listed = ((await call(a.c.volumes, 'List', {})).volumes as Msg[]).find((v) => v.name === anon);
    expect(listed).toMatchObject({ anonymous: true, users: [] });

    const pr = await call(a.c.volumes, 'Prune', {});
    expect(pr.deleted).toContain(anon);
    expect(pr.deleted).not.toContain('v-keep');
    expect(pr.deleted).not.toContain('agent-data');
    const prAll = await call(a.c.volumes, 'Prune', { all: true });
    expect(prAll.deleted).toContain('v-keep');
    expect(prAll.deleted).not.toContain('agent-data'); // web uses it
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('Networks', () => {
  it('List: the built-in ones', async () => {
    const nets = (await call(a.c.networks, 'List', {})).networks as Msg[];
    for (const name of ['bridge', 'host', 'none'])
      expect(
        nets.find((n) => n.name === name),
        name,
      ).toMatchObject({ builtin: true });
    const bridge = nets.find((n) => n.name === 'bridge')!;
    expect(bridge.driver).toBe('bridge');
    expect(bridge.subnet).toMatch(/^\d+\.\d+\.\d+\.\d+\/\d+$/);
    expect(bridge.containers).toContain('web');
  });

  it('Create, Inspect (with its containers), Remove', async () => {
    const created = await call(a.c.networks, 'Create', {
      name: 'agent-net',
      subnet: '10.123.0.0/24',
      gateway: '10.123.0.1',
      labels: { k: 'v' },
    });
    expect(created.network).toMatchObject({
      name: 'agent-net',
      driver: 'bridge',
      subnet: '10.123.0.0/24',
      gateway: '10.123.0.1',
      internal: false,
      labels: { k: 'v' },
      builtin: false,
      containers: [],
    });
    expect(JSON.parse(created.json as string).Name).toBe('agent-net');
    const dup = await failure(call(a.c.networks, 'Create', { name: 'agent-net' }));
    expect(dup.code).toBe('ALREADY_EXISTS');

    const id = await runContainer({ name: 'on-net', network: 'agent-net', command: ['sleep', '600'] });
    const got = await call(a.c.networks, 'Inspect', { id: 'agent-net' });
    expect(got.network.id).toBe(created.network.id);
    expect(got.network.containers).toEqual(['on-net']);
    await batch('Remove', { ids: [id], force: true });

    await call(a.c.networks, 'Remove', { id: 'agent-net' });
    expect((await failure(call(a.c.networks, 'Inspect', { id: 'agent-net' }))).code).toBe('NOT_FOUND');
    expect((await failure(call(a.c.networks, 'Remove', { id: 'agent-net' }))).code).toBe('NOT_FOUND');
  });

  it('Remove of a built-in network fails with the engine’s reason', async () => {
    const f = await failure(call(a.c.networks, 'Remove', { id: 'bridge' }));
    expect(f.code).not.toBe('ok');
    expect(f.message).toContain('pre-defined');
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('Ports.WatchPublished', () => {
  it('ADDED for what is published, SYNCED, then ADDED and REMOVED as containers come and go', async () => {
    const watch = a.stream(a.c.ports, 'WatchPublished', {});
    try {
      await watch.waitFor((m) => m.some((e) => e.kind === 'SYNCED'), 15_000, 'SYNCED');
      const initial = watch.items.slice(
        0,
        watch.items.findIndex((e) => e.kind === 'SYNCED'),
      );
      expect(initial.every((e) => e.kind === 'ADDED')).toBe(true);
      expect(initial).toContainEqual(
        expect.objectContaining({
          kind: 'ADDED',
          container_name: 'web',
          port: { host_ip: '0.0.0.0', host_port: 18080, container_port: 8080, protocol: 'tcp' },
        }),
      );

      const id = await runContainer({
        name: 'web2',
        ports: [{ host_port: 18081, container_port: 80 }],
        command: ['sleep', '600'],
      });
      const on = (kind: string) => (m: Msg[]) =>
        m.some((e) => e.kind === kind && e.container_id === id && e.port?.host_port === 18081);
      await watch.waitFor(on('ADDED'), 15_000, 'ADDED 18081');
      expect(watch.items.find((e) => e.container_id === id)).toMatchObject({
        container_name: 'web2',
        port: { host_port: 18081, container_port: 80, protocol: 'tcp' },
      });
      await batch('Stop', { ids: [id], timeout: 1 });
      await watch.waitFor(on('REMOVED'), 15_000, 'REMOVED 18081');
      expect(watch.items.some((e) => e.kind === 'REMOVED' && e.container_name === 'web')).toBe(false);
      expect(watch.status).toBeUndefined();
      await batch('Remove', { ids: [id] });
    } finally {
      watch.cancel();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('Vm.Usage', () => {
  it('the host’s numbers in native mode', async () => {
    const u = await call(a.c.vm, 'Usage');
    expect(u.cpus).toBe(cpus().length);
    expect(Math.abs(Number(u.memory_total) - totalmem()) / totalmem()).toBeLessThan(0.05);
    expect(Number(u.memory_used)).toBeGreaterThan(0);
    expect(Number(u.memory_used)).toBeLessThan(Number(u.memory_total));
    const fs = statfsSync(a.root);
    const total = fs.blocks * fs.bsize;
    expect(Math.abs(Number(u.disk_total) - total) / total).toBeLessThan(0.05);
    expect(Number(u.disk_used)).toBeGreaterThan(0);
    expect(Number(u.disk_used)).toBeLessThanOrEqual(Number(u.disk_total));
    expect(u.cpu_percent).toBeGreaterThanOrEqual(0);
    expect(u.cpu_percent).toBeLessThanOrEqual(100);
    expect(u.load1).toBeGreaterThanOrEqual(0);
    expect(Math.abs(u.uptime_seconds - uptime())).toBeLessThan(10);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('System.Prune (last: it removes what other tests left stopped)', () => {
  it('removes stopped containers and unused networks; running ones stay', async () => {
    const stopped = (await a.dockerOk(['create', '--name', 'prune-me', 'busybox', 'true'])).trim();
    await a.dockerOk(['network', 'create', 'prune-net']);
    const pr = await call(a.c.system, 'Prune', {});
    expect(pr.containers_deleted).toContain(stopped);
    expect(pr.networks_deleted).toContain('prune-net');
    expect(pr.containers_deleted).not.toContain((await inspect('web')).summary.id);
    expect((await failure(call(a.c.containers, 'Inspect', { id: 'prune-me' }))).code).toBe('NOT_FOUND');
    expect((await inspect('web')).summary.state).toBe('running');
  });
});
