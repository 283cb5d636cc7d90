// skiff-supervisor end to end (issue 3): dist/bin/skiff-supervisor driven over gRPC (proto/supervisor.proto) with
// the real skiff-shim and skiff-runtime on busybox containers, inside a private mount namespace. Life cycle, logs,
// stdin, attach, tty, exec, events; faults (kill -9 of the supervisor with 10 containers running, kill -9 of a
// shim); bad input that must fail with the right code and leave nothing behind.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  busyboxRootfs,
  cleanupScratch,
  defaultConfig,
  requireRoot,
  scratchDir,
  type OciConfig,
} from '../native/helpers.js';
import {
  Attached,
  call,
  clients,
  EventLog,
  failure,
  SHIM,
  SUPERVISOR,
  SupervisorHarness,
  type Clients,
  type Msg,
} from './supervisor-client.js';

let h: SupervisorHarness;
let c: Clients;
let rootfs = '';
let logs = '';
let n = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const newId = (p = 'c') => `${p}-${process.pid}-${n++}`;

function spec(args: string[], mutate?: (s: OciConfig) => void): Buffer {
  const s = defaultConfig(args);
  mutate?.(s);
  return Buffer.from(JSON.stringify(s));
}

/** Containers.Create with a read-only bind of the shared busybox rootfs and a json-file log. */
async function createContainer(id: string, args: string[], mutate?: (s: OciConfig) => void): Promise<Msg> {
  return call(c.containers, 'Create', {
    container: {
      id,
      spec: spec(args, mutate),
      rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }],
      labels: { test: 'supervisor' },
      log: { path: join(logs, `${id}.log`) },
    },
  });
}

async function run(id: string, args: string[], opts: { stdin?: boolean; mutate?: (s: OciConfig) => void } = {}) {
  await createContainer(id, args, opts.mutate);
  await call(c.tasks, 'Create', { container_id: id, stdin: opts.stdin ?? false });
  return call(c.tasks, 'Start', { container_id: id });
}

/** Kill (if needed), delete the task and the container. */
async function remove(id: string): Promise<void> {
  await call(c.tasks, 'Kill', { container_id: id, signal: 9, all: true }).catch(() => undefined);
  await call(c.tasks, 'Wait', { container_id: id }, 10_000).catch(() => undefined);
  await call(c.tasks, 'Delete', { container_id: id }).catch(() => undefined);
  await call(c.containers, 'Delete', { id });
}

function logLines(id: string): { log: string; stream: string; time: string }[] {
  const p = join(logs, `${id}.log`);
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

const shimDir = (id: string) => join(h.state, id);
const bundleDir = (id: string) => join(h.root, 'bundles', id);

beforeAll(async () => {
  requireRoot();
  for (const p of [SUPERVISOR, SHIM]) if (!existsSync(p)) throw new Error(`${p} is missing: run npm run build first`);
  rootfs = busyboxRootfs();
  logs = scratchDir('skiff-sup-logs-');
  h = new SupervisorHarness(scratchDir('skiff-sup-'));
  await h.startNamespace();
  await h.start();
  c = clients(h.socket);
});

afterAll(async () => {
  if (c) {
    const list = await call(c.containers, 'List', {}).catch(() => ({ containers: [] as Msg[] }));
    for (const ct of list.containers as Msg[]) await remove(ct.id).catch(() => undefined);
    c.close();
  }
  if (h) {
    await h.stop();
    // Shims a failed test left behind: by the pid each wrote, then the runtime's state.
    if (existsSync(h.state))
      for (const id of readdirSync(h.state)) {
        const pidFile = join(h.state, id, 'shim.pid');
        if (existsSync(pidFile)) spawnSync('kill', ['-9', readFileSync(pidFile, 'utf8').trim()]);
      }
    if (existsSync(h.runtimeRoot))
      for (const id of readdirSync(h.runtimeRoot).filter((x) => !x.startsWith('.')))
        spawnSync(join(SUPERVISOR, '../skiff-runtime'), ['--root', h.runtimeRoot, 'delete', '--force', id]);
    h.stopNamespace();
  }
  cleanupScratch();
});

describe('life cycle', () => {
  it('create, start, wait, delete: the exit code, the json-file log, the bundle and mounts removed', async () => {
    const id = newId();
    const ev = new EventLog(c, [`container_id==${id}`]);
    await sleep(100);
    const created = await createContainer(id, ['/bin/sh', '-c', 'echo hello; echo oops >&2; exit 3']);
    expect(created.container.bundle).toBe(bundleDir(id));
    expect(JSON.parse(created.container.spec.toString()).root.path).toBe('rootfs');
    expect(existsSync(join(bundleDir(id), 'config.json'))).toBe(true);
    expect(h.isMounted(join(bundleDir(id), 'rootfs'))).toBe(true);
    const got = await call(c.containers, 'Get', { id });
    expect(got.container.labels).toEqual({ test: 'supervisor' });
    expect(got.container.log.path).toBe(join(logs, `${id}.log`));

    const task = await call(c.tasks, 'Create', { container_id: id });
    expect(task.pid).toBeGreaterThan(0);
    expect((await call(c.tasks, 'State', { container_id: id })).status).toBe('CREATED');
    const started = await call(c.tasks, 'Start', { container_id: id });
    expect(started.pid).toBe(task.pid);
    const w = await call(c.tasks, 'Wait', { container_id: id });
    expect(w.exit_status).toBe(3);
    expect(Number(w.exited_at.seconds)).toBeGreaterThan(Date.now() / 1000 - 60);
    const st = await call(c.tasks, 'State', { container_id: id });
    expect(st).toMatchObject({ status: 'STOPPED', exit_status: 3, pid: task.pid });

    const lines = logLines(id);
    expect(lines.map((l) => [l.stream, l.log]).sort()).toEqual([
      ['stderr', 'oops\n'],
      ['stdout', 'hello\n'],
    ]);
    // RFC 3339 with nanoseconds, trailing zeros trimmed (Go's RFC3339Nano, as Docker writes)
    for (const l of lines) expect(l.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);

    const del = await call(c.tasks, 'Delete', { container_id: id });
    expect(del).toMatchObject({ id, pid: task.pid, exit_status: 3 });
    expect(existsSync(shimDir(id))).toBe(false);
    expect(existsSync(join(h.runtimeRoot, id))).toBe(false);
    await call(c.containers, 'Delete', { id });
    expect(existsSync(bundleDir(id))).toBe(false);
    expect(h.isMounted(join(bundleDir(id), 'rootfs'))).toBe(false);
    expect((await failure(call(c.containers, 'Get', { id }))).code).toBe('NOT_FOUND');

    await ev.waitFor((e) => e.length >= 6);
    expect(ev.topics()).toEqual([
      '/containers/create',
      '/tasks/create',
      '/tasks/start',
      '/tasks/exit',
      '/tasks/delete',
      '/containers/delete',
    ]);
    expect(ev.exits()[0]).toMatchObject({ exit_status: 3, pid: task.pid, reason: '' });
    ev.close();
  });

  it('kill: SIGTERM with a trap, SIGKILL, all; List filters by label', async () => {
    const a = newId();
    const b = newId();
    await run(a, ['/bin/sh', '-c', 'trap "exit 42" TERM; while true; do sleep 0.05; done']);
    await run(b, ['/bin/sleep', '1000']);
    await sleep(200);
    await call(c.tasks, 'Kill', { container_id: a, signal: 15 });
    expect((await call(c.tasks, 'Wait', { container_id: a })).exit_status).toBe(42);
    await call(c.tasks, 'Kill', { container_id: b, signal: 9, all: true });
    const w = await call(c.tasks, 'Wait', { container_id: b });
    expect(w).toMatchObject({ exit_status: 137, signal: 9 });
    const listed = await call(c.containers, 'List', { filters: [`id==${a}`, `id==${b},labels.test==supervisor`] });
    expect(listed.containers.map((x: Msg) => x.id).sort()).toEqual([a, b].sort());
    expect((await call(c.containers, 'List', { filters: ['labels.test==other'] })).containers).toEqual([]);
    await remove(a);
    await remove(b);
  });

  it('stdin through attach without a tty; attach sees output and the exit; a second attacher too', async () => {
    const id = newId();
    await createContainer(id, ['/bin/sh', '-c', 'while read l; do echo "got $l"; echo "err $l" >&2; done; exit 7']);
    await call(c.tasks, 'Create', { container_id: id, stdin: true });
    const one = new Attached(c, id);
    const two = new Attached(c, id);
    await sleep(200);
    await call(c.tasks, 'Start', { container_id: id });
    one.write('ping\n');
    await one.waitOutput('got ping\n');
    await two.waitOutput('got ping\n');
    two.detach(); // detaching one attacher affects neither the other nor the container
    one.write('pong\n');
    await one.waitOutput('got pong\n');
    expect(one.stderr).toContain('err ping\n');
    one.closeStdin();
    await one.ended;
    expect(one.exit).toMatchObject({ exit_status: 7 });
    expect((await call(c.tasks, 'Wait', { container_id: id })).exit_status).toBe(7);
    expect(logLines(id).map((l) => l.log)).toEqual(['got ping\n', 'err ping\n', 'got pong\n', 'err pong\n']);
    await remove(id);
  });

  it('CloseIO closes the init stdin', async () => {
    const id = newId();
    await createContainer(id, ['/bin/cat']);
    await call(c.tasks, 'Create', { container_id: id, stdin: true });
    await call(c.tasks, 'Start', { container_id: id });
    await sleep(100);
    await call(c.tasks, 'CloseIO', { container_id: id, stdin: true });
    expect((await call(c.tasks, 'Wait', { container_id: id })).exit_status).toBe(0);
    await remove(id);
  });

  it('a tty: output through the pty, ResizePty and resize over attach, input echoed', async () => {
    const id = newId();
    const script = 'stty size; read l; stty size; echo "line:$l"; exit 4';
    await createContainer(id, ['/bin/sh', '-c', script], (s) => (s.process.terminal = true));
    await call(c.tasks, 'Create', { container_id: id, stdin: true });
    await call(c.tasks, 'ResizePty', { container_id: id, width: 100, height: 40 });
    const a = new Attached(c, id);
    await sleep(200);
    await call(c.tasks, 'Start', { container_id: id });
    await a.waitOutput('40 100');
    a.resize(120, 50);
    await sleep(200);
    a.write('hi\r');
    await a.waitOutput('line:hi');
    await a.ended;
    expect(a.stdout).toContain('50 120');
    expect(a.stderr).toBe('');
    expect(a.exit).toMatchObject({ exit_status: 4 });
    const st = await call(c.tasks, 'State', { container_id: id });
    expect(st.terminal).toBe(true);
    expect(
      logLines(id)
        .map((l) => l.log)
        .join(''),
    ).toContain('line:hi');
    await remove(id);
  });

  it('exec: added, attached before start, output, exit code, events; a tty exec with stdin; Pids', async () => {
    const id = newId();
    const ev = new EventLog(c, [`container_id==${id},topic~=^/tasks/(exec|exit)`]);
    await run(id, ['/bin/sleep', '1000']);
    await call(c.tasks, 'Exec', {
      container_id: id,
      exec_id: 'e1',
      spec: Buffer.from(
        JSON.stringify({
          args: ['/bin/sh', '-c', 'echo from-exec; echo to-err >&2; exit 5'],
          cwd: '/',
          env: ['PATH=/bin'],
        }),
      ),
    });
    expect((await call(c.tasks, 'State', { container_id: id, exec_id: 'e1' })).status).toBe('CREATED');
    const a = new Attached(c, id, 'e1');
    const started = await call(c.tasks, 'Start', { container_id: id, exec_id: 'e1' });
    expect(started.pid).toBeGreaterThan(0);
    expect((await call(c.tasks, 'Wait', { container_id: id, exec_id: 'e1' })).exit_status).toBe(5);
    await a.ended;
    expect(a.stdout).toBe('from-exec\n');
    expect(a.stderr).toBe('to-err\n');
    expect(a.exit).toMatchObject({ exit_status: 5 });
    // exec output is not in the container's log (as Docker)
    expect(logLines(id)).toEqual([]);
    expect((await call(c.tasks, 'State', { container_id: id, exec_id: 'e1' })).status).toBe('STOPPED');
    expect(
      (
        await failure(
          call(c.tasks, 'Exec', { container_id: id, exec_id: 'e1', spec: Buffer.from('{"args":["true"]}') }),
        )
      ).code,
    ).toBe('ALREADY_EXISTS');
    await call(c.tasks, 'Delete', { container_id: id, exec_id: 'e1' });
    expect((await failure(call(c.tasks, 'State', { container_id: id, exec_id: 'e1' }))).code).toBe('NOT_FOUND');

    await call(c.tasks, 'Exec', {
      container_id: id,
      exec_id: 'tty',
      terminal: true,
      stdin: true,
      spec: Buffer.from(JSON.stringify({ args: ['/bin/sh'], cwd: '/', env: ['PATH=/bin', 'PS1=$ '] })),
    });
    const t = new Attached(c, id, 'tty');
    const ttyPid = (await call(c.tasks, 'Start', { container_id: id, exec_id: 'tty' })).pid;
    const pids = await call(c.tasks, 'Pids', { container_id: id });
    expect(pids.processes.map((p: Msg) => p.pid)).toContain(ttyPid);
    expect(pids.processes.find((p: Msg) => p.pid === ttyPid).exec_id).toBe('tty');
    t.write('tty; echo marker-$((6*7))\r');
    await t.waitOutput('marker-42');
    expect(t.stdout).toMatch(/\/dev\/pts\/\d/);
    t.write('exit 9\r');
    await t.ended;
    expect(t.exit).toMatchObject({ exit_status: 9 });

    await ev.waitFor((e) => e.filter((x) => x.topic === '/tasks/exit').length >= 2);
    expect(ev.topics()).toEqual([
      '/tasks/exec-added',
      '/tasks/exec-started',
      '/tasks/exit',
      '/tasks/exec-added',
      '/tasks/exec-started',
      '/tasks/exit',
    ]);
    expect(ev.exits().map((x) => [x.exec_id, x.exit_status])).toEqual([
      ['e1', 5],
      ['tty', 9],
    ]);
    ev.close();
    await remove(id);
  });

  it('pause and resume, stats from the cgroup, update of resources', async () => {
    const id = newId();
    await run(id, ['/bin/sh', '-c', 'while true; do echo tick; sleep 0.1; done']);
    await sleep(300);
    await call(c.tasks, 'Pause', { container_id: id });
    expect((await call(c.tasks, 'State', { container_id: id })).status).toBe('PAUSED');
    expect((await failure(call(c.tasks, 'Pause', { container_id: id }))).code).toBe('FAILED_PRECONDITION');
    const before = logLines(id).length;
    await sleep(500);
    expect(logLines(id).length).toBe(before);
    await call(c.tasks, 'Resume', { container_id: id });
    expect((await call(c.tasks, 'State', { container_id: id })).status).toBe('RUNNING');
    await sleep(400);
    expect(logLines(id).length).toBeGreaterThan(before);

    const s = await call(c.tasks, 'Stats', { container_id: id });
    expect([1, 2]).toContain(s.cgroup_version);
    expect(Number(s.pids_current)).toBeGreaterThanOrEqual(1);
    expect(Number(s.memory_usage_bytes)).toBeGreaterThan(0);
    expect(Number(s.cpu_usage_ns)).toBeGreaterThan(0);
    expect(JSON.parse(s.stats.toString())).toHaveProperty('memory');

    await call(c.tasks, 'Update', {
      container_id: id,
      resources: Buffer.from(JSON.stringify({ pids: { limit: 50 } })),
    });
    const again = JSON.parse((await call(c.tasks, 'Stats', { container_id: id })).stats.toString());
    expect(again.pids.limit).toBe(50);
    expect((await failure(call(c.tasks, 'Update', { container_id: id, resources: Buffer.from('nope') }))).code).toBe(
      'INVALID_ARGUMENT',
    );
    await remove(id);
  });

  it('an OOM kill: a /tasks/oom event and oom_killed in the exit', async () => {
    const id = newId();
    const ev = new EventLog(c, [`container_id==${id}`]);
    await run(id, ['/bin/sh', '-c', 'tail /dev/zero'], {
      mutate: (s) => (s.linux.resources.memory = { limit: 16 << 20, swap: 16 << 20 }),
    });
    const w = await call(c.tasks, 'Wait', { container_id: id });
    expect(w).toMatchObject({ exit_status: 137, signal: 9, oom_killed: true });
    await ev.waitFor((e) => e.some((x) => x.topic === '/tasks/exit'));
    expect(ev.topics()).toContain('/tasks/oom');
    expect(ev.exits()[0]).toMatchObject({ oom_killed: true });
    ev.close();
    await remove(id);
  });

  it('an overlay rootfs: the container writes to the upper directory; Update changes labels', async () => {
    const id = newId();
    const d = scratchDir('skiff-ovl-');
    mkdirSync(join(d, 'upper'));
    mkdirSync(join(d, 'work'));
    await call(c.containers, 'Create', {
      container: {
        id,
        spec: spec(['/bin/sh', '-c', 'echo written > /hello; cat /hello'], (s) => (s.root.readonly = false)),
        rootfs: [
          {
            type: 'overlay',
            source: 'overlay',
            options: [`lowerdir=${rootfs}`, `upperdir=${join(d, 'upper')}`, `workdir=${join(d, 'work')}`],
          },
        ],
        log: { path: join(logs, `${id}.log`) },
      },
    });
    await call(c.tasks, 'Create', { container_id: id });
    await call(c.tasks, 'Start', { container_id: id });
    expect((await call(c.tasks, 'Wait', { container_id: id })).exit_status).toBe(0);
    expect(readFileSync(join(d, 'upper', 'hello'), 'utf8')).toBe('written\n');
    expect(existsSync(join(rootfs, 'hello'))).toBe(false);
    const up = await call(c.containers, 'Update', {
      container: { id, labels: { a: '1' } },
      update_mask: ['labels'],
    });
    expect(up.container.labels).toEqual({ a: '1' });
    expect(
      (await failure(call(c.containers, 'Update', { container: { id, spec: spec(['true']) }, update_mask: ['spec'] })))
        .code,
    ).toBe('FAILED_PRECONDITION');
    await remove(id);
  });
});

describe('bad input: clear errors, the right codes, nothing half-made', () => {
  function nothingLeft(id: string): void {
    expect(existsSync(shimDir(id)), 'shim dir').toBe(false);
    expect(existsSync(join(h.runtimeRoot, id)), 'runtime state').toBe(false);
  }

  it('unknown ids are NOT_FOUND, duplicates ALREADY_EXISTS, bad ids INVALID_ARGUMENT', async () => {
    const f = await failure(call(c.containers, 'Get', { id: 'no-such' }));
    expect(f).toEqual({ code: 'NOT_FOUND', message: 'container "no-such" not found' });
    for (const m of ['Create', 'Start', 'State', 'Wait', 'Delete', 'Pids', 'Stats'])
      expect((await failure(call(c.tasks, m, { container_id: 'no-such' }))).code, m).toBe('NOT_FOUND');
    expect((await failure(call(c.tasks, 'Kill', { container_id: 'no-such', signal: 9 }))).code).toBe('NOT_FOUND');
    expect((await failure(call(c.containers, 'Delete', { id: 'no-such' }))).code).toBe('NOT_FOUND');

    const id = newId();
    await createContainer(id, ['/bin/true']);
    const dup = await failure(createContainer(id, ['/bin/true']));
    expect(dup.code).toBe('ALREADY_EXISTS');
    expect(dup.message).toContain(id);
    expect((await failure(call(c.tasks, 'State', { container_id: id }))).message).toMatch(/has no task/);
    await call(c.tasks, 'Create', { container_id: id });
    expect((await failure(call(c.tasks, 'Create', { container_id: id }))).code).toBe('ALREADY_EXISTS');
    expect((await failure(call(c.containers, 'Delete', { id }))).code).toBe('FAILED_PRECONDITION');
    await remove(id);

    for (const bad of ['../x', 'a/b', '', '-x'])
      expect((await failure(createContainer(bad, ['/bin/true']))).code, bad).toBe('INVALID_ARGUMENT');
    expect(readdirSync(join(h.root, 'bundles'))).not.toContain('..');
  });

  it('invalid specs: not JSON, no process, relative root without mounts; bad filters', async () => {
    const cases: [Buffer, RegExp][] = [
      [Buffer.from('{not json'), /not valid JSON/],
      [Buffer.from(JSON.stringify({ ociVersion: '1.0.2', root: { path: 'rootfs' } })), /process is missing/],
      [spec([]), /args must be a non-empty array/],
    ];
    for (const [s, msg] of cases) {
      const id = newId();
      const f = await failure(
        call(c.containers, 'Create', {
          container: { id, spec: s, rootfs: [{ type: 'bind', source: rootfs, options: ['rbind'] }] },
        }),
      );
      expect(f.code).toBe('INVALID_ARGUMENT');
      expect(f.message).toMatch(msg);
      expect(existsSync(bundleDir(id))).toBe(false);
    }
    const f = await failure(call(c.containers, 'Create', { container: { id: newId(), spec: spec(['/bin/true']) } }));
    expect(f).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(f.message).toMatch(/root.path must be an absolute path/);
    expect((await failure(call(c.containers, 'List', { filters: ['labels.x~=('] }))).code).toBe('INVALID_ARGUMENT');
    const ev = new EventLog(c, ['topic~=[']);
    await expect(ev.waitFor(() => false, 3000)).rejects.toThrow(/INVALID_ARGUMENT|bad regexp/);
  });

  it('a rootfs that cannot be mounted: FAILED_PRECONDITION, no record, no bundle', async () => {
    const id = newId();
    const f = await failure(
      call(c.containers, 'Create', {
        container: {
          id,
          spec: spec(['/bin/true']),
          rootfs: [{ type: 'bind', source: '/no/such/dir', options: ['rbind'] }],
        },
      }),
    );
    expect(f.code).toBe('FAILED_PRECONDITION');
    expect(f.message).toMatch(/\/no\/such\/dir/);
    expect(existsSync(bundleDir(id))).toBe(false);
    expect((await failure(call(c.containers, 'Get', { id }))).code).toBe('NOT_FOUND');
  });

  it('a runtime that fails (no such program, a rootfs without it): the task is not made, nothing is left', async () => {
    const cases: [string[], RegExp][] = [
      [['/no/such/program'], /\/no\/such\/program.*(no such file|not found)/i],
      [['/bin/true'], /\/proc|rootfs|read-only|no such file/i],
    ];
    for (const [args, why] of cases) {
      const id = newId();
      const empty = scratchDir('skiff-empty-rootfs-');
      const rootfsMount = args[0] === '/bin/true' ? empty : rootfs;
      await call(c.containers, 'Create', {
        container: { id, spec: spec(args), rootfs: [{ type: 'bind', source: rootfsMount, options: ['rbind', 'ro'] }] },
      });
      const f = await failure(call(c.tasks, 'Create', { container_id: id }));
      expect(f.code).toBe('FAILED_PRECONDITION');
      expect(f.message).toMatch(new RegExp(`cannot create the task of container "${id}": .+`));
      expect(f.message).toMatch(why);
      expect(f.message.match(/creating container/g)?.length ?? 0).toBeLessThanOrEqual(1);
      nothingLeft(id);
      expect((await failure(call(c.tasks, 'State', { container_id: id }))).message).toMatch(/has no task/);
      // and the container can still be deleted cleanly
      await call(c.containers, 'Delete', { id });
      expect(existsSync(bundleDir(id))).toBe(false);
    }
  });

  it('operations in the wrong state are FAILED_PRECONDITION with what to do', async () => {
    const id = newId();
    await run(id, ['/bin/sleep', '1000']);
    const del = await failure(call(c.tasks, 'Delete', { container_id: id }));
    expect(del.code).toBe('FAILED_PRECONDITION');
    expect(del.message).toMatch(/kill it/);
    expect((await failure(call(c.tasks, 'Start', { container_id: id }))).code).toBe('FAILED_PRECONDITION');
    expect((await failure(call(c.tasks, 'ResizePty', { container_id: id, width: 1, height: 1 }))).message).toMatch(
      /no terminal/,
    );
    expect((await failure(call(c.tasks, 'Kill', { container_id: id, signal: 0 }))).code).toBe('INVALID_ARGUMENT');
    expect(
      (
        await failure(
          call(c.tasks, 'Exec', { container_id: id, exec_id: 'bad/id', spec: Buffer.from('{"args":["true"]}') }),
        )
      ).code,
    ).toBe('INVALID_ARGUMENT');
    expect(
      (await failure(call(c.tasks, 'Exec', { container_id: id, exec_id: 'x', spec: Buffer.from('{"args":[]}') }))).code,
    ).toBe('INVALID_ARGUMENT');
    await call(c.tasks, 'Kill', { container_id: id, signal: 9 });
    await call(c.tasks, 'Wait', { container_id: id });
    expect((await failure(call(c.tasks, 'Kill', { container_id: id, signal: 9 }))).code).toBe('FAILED_PRECONDITION');
    await remove(id);
  });

  it('a created task that never started can be deleted', async () => {
    const id = newId();
    await createContainer(id, ['/bin/true']);
    await call(c.tasks, 'Create', { container_id: id });
    await call(c.tasks, 'Delete', { container_id: id });
    nothingLeft(id);
    await call(c.containers, 'Delete', { id });
  });
});

describe('faults', () => {
  it('kill -9 of the supervisor with 10 containers: re-attached, no log line lost, downtime exits reported once', async () => {
    const printers = Array.from({ length: 5 }, () => newId('print'));
    const exiters = Array.from({ length: 5 }, () => newId('exit'));
    const printer = ['/bin/sh', '-c', 'i=0; while true; do echo "seq $i"; i=$((i+1)); sleep 0.1; done'];
    for (const id of printers) await run(id, printer);
    // They exit 1.5 to 2.3 s from now, while the supervisor is down, each with its own code.
    for (const [i, id] of exiters.entries())
      await run(id, ['/bin/sh', '-c', `echo start; sleep ${1.5 + i * 0.2}; echo end; exit ${10 + i}`]);
    await sleep(300);
    c.close();
    await h.kill9();
    const downtime = Date.now();
    // Each exiter is still running at the kill and has exited before the restart.
    await sleep(3000);
    for (const id of exiters) expect(existsSync(join(shimDir(id), 'exit.json'))).toBe(true);
    await h.start();
    c = clients(h.socket);
    const restartedAt = Date.now();

    // The exits from the downtime come to the first subscriber, once each, with the right codes.
    const ev = new EventLog(c, ['topic==/tasks/exit']);
    await ev.waitFor((e) => e.length >= 5);
    await sleep(500);
    const exits = ev.exits();
    expect(exits.map((e) => [e.id, e.exit_status]).sort()).toEqual(exiters.map((id, i) => [id, 10 + i]).sort());
    for (const e of exits) {
      expect(e.reason).toBe('exited while the supervisor was down');
      const at = Number(e.exited_at.seconds) * 1000;
      expect(at).toBeGreaterThanOrEqual(Math.floor(downtime / 1000) * 1000);
      expect(at).toBeLessThanOrEqual(restartedAt);
    }
    for (const [i, id] of exiters.entries()) {
      expect((await call(c.tasks, 'Wait', { container_id: id })).exit_status).toBe(10 + i);
      expect(logLines(id).map((l) => l.log)).toEqual(['start\n', 'end\n']);
    }

    // Every printer is running and watched again: an exit now is seen live.
    for (const id of printers) expect((await call(c.tasks, 'State', { container_id: id })).status).toBe('RUNNING');
    await sleep(500);
    for (const id of printers) await call(c.tasks, 'Kill', { container_id: id, signal: 9 });
    for (const id of printers) expect((await call(c.tasks, 'Wait', { container_id: id })).exit_status).toBe(137);
    await ev.waitFor((e) => e.length >= 10);
    expect(
      ev
        .exits()
        .slice(5)
        .map((e) => [e.id, e.exit_status, e.reason])
        .sort(),
    ).toEqual(printers.map((id) => [id, 137, '']).sort());

    // No log line lost: the sequence numbers run without a gap through the downtime.
    for (const id of printers) {
      const seqs = logLines(id).map((l) => Number(/^seq (\d+)\n$/.exec(l.log)![1]));
      expect(seqs.length).toBeGreaterThan(30);
      expect(seqs).toEqual(seqs.map((_, i) => i));
    }
    ev.close();

    // Another kill -9 and restart: nothing is reported twice.
    c.close();
    await h.kill9();
    await h.start();
    c = clients(h.socket);
    const again = new EventLog(c, []);
    await sleep(1500);
    expect(again.exits()).toEqual([]);
    for (const [i, id] of exiters.entries())
      expect((await call(c.tasks, 'Wait', { container_id: id })).exit_status).toBe(10 + i);
    again.close();
    for (const id of [...printers, ...exiters]) await remove(id);
    for (const id of [...printers, ...exiters]) expect(existsSync(shimDir(id))).toBe(false);
  });

  it('execs across a kill -9 of the supervisor: one that exits meanwhile is reported once, one running is watched', async () => {
    const id = newId();
    await run(id, ['/bin/sleep', '1000']);
    const exec = (execId: string, args: string[]) =>
      call(c.tasks, 'Exec', {
        container_id: id,
        exec_id: execId,
        spec: Buffer.from(JSON.stringify({ args, cwd: '/', env: ['PATH=/bin'] })),
      }).then(() => call(c.tasks, 'Start', { container_id: id, exec_id: execId }));
    await exec('down', ['/bin/sh', '-c', 'sleep 1; exit 12']);
    await exec('live', ['/bin/sleep', '1000']);
    c.close();
    await h.kill9();
    await sleep(1500);
    await h.start();
    c = clients(h.socket);
    const ev = new EventLog(c, [`container_id==${id}`]);
    await ev.waitFor((e) => e.length >= 1);
    expect(ev.exits()).toEqual([
      expect.objectContaining({ exec_id: 'down', exit_status: 12, reason: 'exited while the supervisor was down' }),
    ]);
    expect((await call(c.tasks, 'Wait', { container_id: id, exec_id: 'down' })).exit_status).toBe(12);
    expect((await call(c.tasks, 'State', { container_id: id, exec_id: 'live' })).status).toBe('RUNNING');
    await call(c.tasks, 'Kill', { container_id: id, exec_id: 'live', signal: 9 });
    expect((await call(c.tasks, 'Wait', { container_id: id, exec_id: 'live' })).exit_status).toBe(137);
    await ev.waitFor((e) => e.length >= 2);
    expect(ev.exits().map((e) => [e.exec_id, e.exit_status])).toEqual([
      ['down', 12],
      ['live', 137],
    ]);
    await call(c.tasks, 'Delete', { container_id: id, exec_id: 'down' });
    ev.close();
    await remove(id);
  });

  it('kill -9 of a shim: its container is reported exited (255, "shim died") and cleaned up', async () => {
    const id = newId();
    const ev = new EventLog(c, [`container_id==${id},topic==/tasks/exit`]);
    const { pid } = await run(id, ['/bin/sleep', '1000']);
    const shimPid = Number(readFileSync(join(shimDir(id), 'shim.pid'), 'utf8'));
    process.kill(shimPid, 'SIGKILL');
    const w = await call(c.tasks, 'Wait', { container_id: id }, 15_000);
    expect(w).toMatchObject({ exit_status: 255, reason: 'shim died' });
    await ev.waitFor((e) => e.length >= 1);
    expect(ev.exits()).toEqual([expect.objectContaining({ id, exit_status: 255, reason: 'shim died', pid })]);
    expect((await call(c.tasks, 'State', { container_id: id })).reason).toBe('shim died');
    // cleaned up: the shim's directory, the runtime's state, and the container's process
    expect(existsSync(shimDir(id))).toBe(false);
    expect(existsSync(join(h.runtimeRoot, id))).toBe(false);
    await sleep(200);
    expect(existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z')).toBe(false);
    await call(c.tasks, 'Delete', { container_id: id });
    await call(c.containers, 'Delete', { id });
    ev.close();
  });

  it('shims killed while the supervisor is down: "shim died" after the restart, or the exit.json they left', async () => {
    const id = newId();
    const exited = newId();
    await run(id, ['/bin/sleep', '1000']);
    await run(exited, ['/bin/sh', '-c', 'sleep 0.3; exit 6']);
    c.close();
    await h.kill9();
    await sleep(600);
    expect(existsSync(join(shimDir(exited), 'exit.json'))).toBe(true);
    process.kill(Number(readFileSync(join(shimDir(exited), 'shim.pid'), 'utf8')), 'SIGKILL');
    // Also what a create that crashed before its commit would leave: a bundle and a shim directory nobody owns.
    mkdirSync(join(bundleDir('stale-bundle'), 'rootfs'), { recursive: true });
    mkdirSync(shimDir('stale-shim'), { recursive: true });
    process.kill(Number(readFileSync(join(shimDir(id), 'shim.pid'), 'utf8')), 'SIGKILL');
    await sleep(200);
    await h.start();
    c = clients(h.socket);
    const ev = new EventLog(c, [`container_id==${id}`, `container_id==${exited}`]);
    await ev.waitFor((e) => e.length >= 2);
    expect(ev.exits(id)).toEqual([expect.objectContaining({ exit_status: 255, reason: 'shim died' })]);
    expect(ev.exits(exited)).toEqual([expect.objectContaining({ exit_status: 6 })]);
    expect((await call(c.tasks, 'Wait', { container_id: exited })).exit_status).toBe(6);
    expect(existsSync(shimDir(exited))).toBe(false);
    expect(existsSync(bundleDir('stale-bundle'))).toBe(false);
    expect(existsSync(shimDir('stale-shim'))).toBe(false);
    expect(existsSync(shimDir(id))).toBe(false);
    expect(existsSync(join(h.runtimeRoot, id))).toBe(false);
    ev.close();
    await remove(id);
    await remove(exited);
  });
});
