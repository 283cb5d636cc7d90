// skiffd's container life cycle (issue 4) with the real docker CLI: run -d/--rm/-e/-w/-u/--entrypoint/--read-only/
// --cap-drop/--memory/--pids-limit/--restart, ps filters, inspect, stop/kill/rm -f, pause/unpause, rename, update,
// prune, name conflicts, and kill -9 of skiffd while containers run. Output is read from the json-file log (the
// streaming endpoints are tested in their own file).
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../native/helpers.js';
import { busyboxArchive, DaemonHarness, SKIFFD, startDaemon } from './daemon-harness.js';

let d: DaemonHarness;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

async function docker(...args: string[]): Promise<string> {
  const r = await d.docker(args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

async function inspect(ref: string): Promise<Json> {
  return JSON.parse(await docker('inspect', '--type', 'container', ref))[0];
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function exited(ref: string): Promise<Json> {
  return until(`${ref} to exit`, async () => {
    const c = await inspect(ref);
    return c.State.Status === 'exited' ? c : undefined;
  });
}

/** The container's output from its json-file log. */
async function output(ref: string): Promise<string> {
  const c = await inspect(ref);
  if (!existsSync(c.LogPath)) return '';
  return readFileSync(c.LogPath, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l).log)
    .join('');
}

async function runToEnd(...args: string[]): Promise<{ c: Json; out: string }> {
  const id = await docker('run', '-d', ...args);
  const c = await exited(id);
  return { c, out: await output(id) };
}

beforeAll(async () => {
  requireRoot();
  if (!existsSync(SKIFFD)) throw new Error(`${SKIFFD} is missing: run npm run build first`);
  d = await startDaemon();
  await docker('load', '-i', busyboxArchive());
});

afterAll(async () => {
  await d?.stop();
});

describe('run and inspect', () => {
  it('run -d: listed, inspect has the shape clients read', async () => {
    const id = await docker('run', '-d', '--name', 'web', '-l', 'app=web', 'busybox', 'sleep', '1000');
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const ps = await docker('ps', '--format', '{{.ID}} {{.Names}} {{.Status}} {{.Command}}');
    expect(ps).toMatch(new RegExp(`^${id.slice(0, 12)} web Up .* "sleep 1000"$`));
    const c = await inspect('web');
    expect(c.Id).toBe(id);
    expect(c.Name).toBe('/web');
    expect(c.Path).toBe('sleep');
    expect(c.Args).toEqual(['1000']);
    expect(c.State).toMatchObject({ Status: 'running', Running: true, Paused: false, Restarting: false, ExitCode: 0 });
    expect(c.State.Pid).toBeGreaterThan(0);
    expect(c.State.FinishedAt).toBe('0001-01-01T00:00:00Z');
    expect(c.Image).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(c.Config.Image).toBe('busybox');
    expect(c.Config.Hostname).toBe(id.slice(0, 12));
    expect(c.Config.Labels).toEqual({ app: 'web' });
    expect(c.Config.Env).toContainEqual(expect.stringMatching(/^PATH=/));
    expect(c.HostConfig.NetworkMode).toBe('bridge');
    expect(c.HostConfig.RestartPolicy).toEqual({ Name: 'no', MaximumRetryCount: 0 });
    expect(c.LogPath).toBe(`${d.dataRoot}/containers/${id}/${id}-json.log`);
    expect(c.HostnamePath).toBe(`${d.dataRoot}/containers/${id}/hostname`);
    expect(c.GraphDriver.Name).toBe('overlay2');
    expect(c.Driver).toBe('overlay2');
    expect(c.Platform).toBe('linux');
    expect(c.Mounts).toEqual([]);
    expect(c.RestartCount).toBe(0);
    expect(Object.keys(c.NetworkSettings.Networks)).toEqual(['bridge']);
    expect(existsSync(`${d.dataRoot}/containers/${id}/config.json`)).toBe(true);
    // Prefix and name resolution.
    expect((await inspect(id.slice(0, 5))).Id).toBe(id);
    expect((await inspect('/web')).Id).toBe(id);
    const none = await d.docker(['inspect', '--type', 'container', 'nosuch']);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/No such container: nosuch/);
  });

  it('-e, -w, -u', async () => {
    const { c, out } = await runToEnd(
      '-e',
      'X=42',
      '-w',
      '/tmp',
      '-u',
      'nobody',
      'busybox',
      'sh',
      '-c',
      'echo $X; pwd; id',
    );
    expect(c.State.ExitCode).toBe(0);
    expect(out).toMatch(/^42\n\/tmp\nuid=65534\(nobody\) gid=65534/);
    expect(c.Config.User).toBe('nobody');
  });

  it('--entrypoint, hostname, /etc files', async () => {
    const { out } = await runToEnd('--entrypoint', '/bin/echo', 'busybox', 'hello', 'world');
    expect(out).toBe('hello world\n');
    const h = await runToEnd(
      '--hostname',
      'box',
      '--add-host',
      'db:10.1.2.3',
      'busybox',
      'sh',
      '-c',
      'hostname; cat /etc/hostname; grep db /etc/hosts',
    );
    expect(h.out).toBe('box\nbox\n10.1.2.3\tdb\n');
  });

  it('exit codes, and a missing program fails start', async () => {
    const { c } = await runToEnd('busybox', 'sh', '-c', 'exit 7');
    expect(c.State.ExitCode).toBe(7);
    expect(c.State.FinishedAt).not.toBe('0001-01-01T00:00:00Z');
    const r = await d.docker(['run', '-d', 'busybox', '/nosuch']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/nosuch/);
  });

  it('--read-only and --tmpfs', async () => {
    const { out } = await runToEnd(
      '--read-only',
      '--tmpfs',
      '/run',
      'busybox',
      'sh',
      '-c',
      'touch /x 2>/dev/null || echo ro; touch /run/y && echo tmpfs',
    );
    expect(out).toBe('ro\ntmpfs\n');
  });

  it("--cap-drop, --cap-add, Docker's default capabilities and seccomp", async () => {
    const def = await runToEnd('busybox', 'sh', '-c', 'grep -E "CapEff|Seccomp:|NoNewPrivs" /proc/self/status');
    expect(def.out).toMatch(/CapEff:\s+00000000a80425fb/);
    expect(def.out).toMatch(/Seccomp:\s+2/);
    const drop = await runToEnd('--cap-drop', 'ALL', 'busybox', 'grep', 'CapEff', '/proc/self/status');
    expect(drop.out).toMatch(/CapEff:\s+0000000000000000/);
    const chown = await runToEnd('--cap-drop', 'CHOWN', 'busybox', 'sh', '-c', 'chown 1 /tmp || echo denied');
    expect(chown.out).toMatch(/denied/);
    const unconfined = await runToEnd(
      '--security-opt',
      'seccomp=unconfined',
      '--security-opt',
      'no-new-privileges',
      'busybox',
      'sh',
      '-c',
      'grep -E "Seccomp:|NoNewPrivs" /proc/self/status',
    );
    expect(unconfined.out).toMatch(/NoNewPrivs:\s+1/);
    expect(unconfined.out).toMatch(/Seccomp:\s+0/);
    const masked = await runToEnd(
      'busybox',
      'sh',
      '-c',
      'cat /proc/keys | wc -c; touch /proc/sys/x 2>/dev/null || echo ro',
    );
    expect(masked.out).toBe('0\nro\n');
  });

  it('--memory and --pids-limit reach the cgroup', async () => {
    const id = await docker('run', '-d', '--memory', '32m', '--pids-limit', '10', 'busybox', 'sleep', '1000');
    const c = await inspect(id);
    expect(c.HostConfig.Memory).toBe(32 * 1024 * 1024);
    expect(c.HostConfig.PidsLimit).toBe(10);
    const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
    const mem = v2
      ? `/sys/fs/cgroup/skiff/${id}/memory.max`
      : `/sys/fs/cgroup/memory/skiff/${id}/memory.limit_in_bytes`;
    const pids = v2 ? `/sys/fs/cgroup/skiff/${id}/pids.max` : `/sys/fs/cgroup/pids/skiff/${id}/pids.max`;
    expect(readFileSync(mem, 'utf8').trim()).toBe(String(32 * 1024 * 1024));
    expect(readFileSync(pids, 'utf8').trim()).toBe('10');
    // update changes the running container's limits and the stored HostConfig.
    await docker('update', '--memory', '64m', '--memory-swap', '128m', '--pids-limit', '20', id);
    expect(readFileSync(mem, 'utf8').trim()).toBe(String(64 * 1024 * 1024));
    expect(readFileSync(pids, 'utf8').trim()).toBe('20');
    expect((await inspect(id)).HostConfig.Memory).toBe(64 * 1024 * 1024);
    await docker('rm', '-f', id);
  });

  it('--rm removes the container after it exits', async () => {
    const id = await docker('run', '-d', '--rm', 'busybox', 'true');
    await until('removal', async () => (await d.docker(['inspect', id])).code !== 0);
  });

  it('--init runs our init as PID 1: the command is its child, its exit code comes back, orphans are reaped', async () => {
    const { c, out } = await runToEnd(
      '--init',
      'busybox',
      'sh',
      '-c',
      'echo $$; cat /proc/1/cmdline | tr "\\0" " "; (sleep 0.1 &); exit 7',
    );
    const [shPid, init] = out.trim().split('\n');
    expect(Number(shPid)).toBeGreaterThan(1);
    expect(init).toMatch(/^\/sbin\/docker-init -- sh -c /);
    expect(c.State.ExitCode).toBe(7);
  });

  it('--init forwards signals: docker stop ends a command that ignores SIGTERM as PID 1', async () => {
    // sleep as PID 1 would ignore SIGTERM (no handler) and stop would wait for the timeout and SIGKILL
    const id = await docker('run', '-d', '--init', 'busybox', 'sleep', '300');
    const t0 = Date.now();
    await docker('stop', '-t', '20', id);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect((await inspect(id)).State.ExitCode).toBe(143);
  });
});

describe('restart policies', () => {
  it('on-failure:2 restarts twice, then stays exited', async () => {
    const id = await docker('run', '-d', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'exit 3');
    const c = await until('two restarts', async () => {
      const c = await inspect(id);
      return c.RestartCount === 2 && c.State.Status === 'exited' ? c : undefined;
    });
    expect(c.State.ExitCode).toBe(3);
    expect(c.HostConfig.RestartPolicy).toEqual({ Name: 'on-failure', MaximumRetryCount: 2 });
    await new Promise((r) => setTimeout(r, 1000));
    expect((await inspect(id)).RestartCount).toBe(2);
  });

  it('always restarts a container that exits 0; docker stop ends it', async () => {
    const id = await docker('run', '-d', '--restart', 'always', 'busybox', 'sh', '-c', 'sleep 0.2');
    await until('restarts', async () => (await inspect(id)).RestartCount >= 2);
    await docker('stop', '-t', '1', id);
    const c = await inspect(id);
    expect(c.State.Status).toBe('exited');
    const n = c.RestartCount;
    await new Promise((r) => setTimeout(r, 800));
    expect((await inspect(id)).RestartCount).toBe(n);
    await docker('rm', id);
  });
});

describe('stop, kill, pause, rm, rename', () => {
  it('stop and kill; kill of a stopped container is a 409', async () => {
    const id = await docker('run', '-d', 'busybox', 'sleep', '1000');
    await docker('kill', '--signal', 'KILL', id);
    expect((await exited(id)).State.ExitCode).toBe(137);
    const r = await d.docker(['kill', id]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/is not running/);
    const t = await docker('run', '-d', 'busybox', 'sh', '-c', 'trap "exit 5" TERM; while true; do sleep 0.1; done');
    await new Promise((r) => setTimeout(r, 300));
    await docker('stop', t);
    expect((await inspect(t)).State.ExitCode).toBe(5);
  });

  it('pause and unpause', async () => {
    const id = await docker('run', '-d', 'busybox', 'sleep', '1000');
    await docker('pause', id);
    let c = await inspect(id);
    expect(c.State).toMatchObject({ Status: 'paused', Paused: true, Running: true });
    expect(await docker('ps', '--filter', `id=${id}`, '--format', '{{.Status}}')).toMatch(/\(Paused\)$/);
    const again = await d.docker(['pause', id]);
    expect(again.stderr).toMatch(/already paused/);
    await docker('unpause', id);
    c = await inspect(id);
    expect(c.State).toMatchObject({ Status: 'running', Paused: false });
    await docker('rm', '-f', id);
  });

  it('rm: running needs -f; rm -f nosuch exits 0', async () => {
    const id = await docker('run', '-d', 'busybox', 'sleep', '1000');
    const r = await d.docker(['rm', id]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/container is running: stop the container before removing or force remove/);
    await docker('rm', '-f', id);
    expect((await d.docker(['inspect', id])).code).not.toBe(0);
    expect(existsSync(`${d.dataRoot}/containers/${id}`)).toBe(false);
    const nosuch = await d.docker(['rm', '-f', 'nosuch']);
    expect(nosuch.code).toBe(0);
  });

  it('names: conflicts are 409, rename moves the name', async () => {
    await docker('create', '--name', 'n1', 'busybox', 'true');
    const dup = await d.docker(['create', '--name', 'n1', 'busybox', 'true']);
    expect(dup.code).not.toBe(0);
    expect(dup.stderr).toMatch(/Conflict. The container name "\/n1" is already in use by container/);
    await docker('rename', 'n1', 'n2');
    expect((await inspect('n2')).Name).toBe('/n2');
    expect((await d.docker(['inspect', 'n1'])).code).not.toBe(0);
    await docker('create', '--name', 'n1', 'busybox', 'true');
    const bad = await d.docker(['rename', 'n2', 'bad name']);
    expect(bad.stderr).toMatch(/Invalid container name/);
    const unnamed = await docker('create', 'busybox', 'true');
    expect((await inspect(unnamed)).Name).toMatch(/^\/[a-z]+_[a-z]+\d?$/);
  });

  it('update the restart policy', async () => {
    const id = await docker('create', 'busybox', 'true');
    await docker('update', '--restart', 'on-failure:3', id);
    expect((await inspect(id)).HostConfig.RestartPolicy).toEqual({ Name: 'on-failure', MaximumRetryCount: 3 });
  });
});

describe('ps filters and prune', () => {
  it('status, name, label, ancestor, id, exited, before, since, limit', async () => {
    const a = await docker('run', '-d', '--name', 'fa', '-l', 'tier=a', 'busybox', 'sh', '-c', 'exit 2');
    await exited(a);
    const b = await docker('run', '-d', '--name', 'fb', '-l', 'tier=b', 'busybox', 'sleep', '1000');
    const c = await docker('create', '--name', 'fc', 'busybox', 'true');
    const ids = async (...f: string[]): Promise<string[]> =>
      (await docker('ps', '-a', '--no-trunc', '-q', ...f.flatMap((x) => ['--filter', x]))).split('\n').filter(Boolean);
    expect(await ids('name=^/fa$')).toEqual([a]); // name filters are regexps: anchor them, generated names vary
    expect(await ids('label=tier=b')).toEqual([b]);
    expect(await ids('label=tier', 'name=^/f[ab]$')).toEqual([b, a]);
    expect(await ids('status=created', 'name=^/fc$')).toEqual([c]);
    expect(await ids('exited=2', 'name=^/fa$')).toEqual([a]);
    expect(await ids(`id=${b.slice(0, 10)}`)).toEqual([b]);
    expect(await ids('ancestor=busybox', 'name=^/fb$')).toEqual([b]);
    expect(await ids('before=fc', 'name=^/f[abc]$')).toEqual([b, a]);
    expect(await ids('since=fa', 'name=^/f[abc]$')).toEqual([c, b]);
    const running = (await docker('ps', '-q', '--no-trunc', '--filter', 'name=^/f[abc]$')).split('\n').filter(Boolean);
    expect(running).toEqual([b]);
    expect((await docker('ps', '-a', '-q', '-n', '1', '--no-trunc')).split('\n')).toHaveLength(1);
    const bad = await d.docker(['ps', '--filter', 'status=sleepy']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/invalid filter 'status=sleepy'/i);
    await docker('rm', '-f', b);
  });

  it('container prune removes stopped containers only', async () => {
    const live = await docker('run', '-d', 'busybox', 'sleep', '1000');
    const dead = await docker('run', '-d', 'busybox', 'true');
    await exited(dead);
    const out = await docker('container', 'prune', '-f');
    expect(out).toContain(dead);
    expect(out).not.toContain(live);
    expect(await docker('ps', '-a', '-q', '--no-trunc')).toBe(await docker('ps', '-q', '--no-trunc'));
    await docker('rm', '-f', live);
  });
});

describe('a daemon restart', () => {
  it('kill -9 skiffd: containers keep running and are listed after the restart; exits while down are applied', async () => {
    const a = await docker('run', '-d', '--name', 'survivor', 'busybox', 'sleep', '1000');
    const b = await docker('run', '-d', '--name', 'shortlived', 'busybox', 'sh', '-c', 'sleep 1; exit 4');
    const pid = (await inspect(a)).State.Pid;
    await d.killDaemon('SIGKILL');
    await new Promise((r) => setTimeout(r, 1500));
    await d.restartDaemon();
    const c = await inspect('survivor');
    expect(c.State.Status).toBe('running');
    expect(c.State.Pid).toBe(pid);
    expect(existsSync(`/proc/${pid}`)).toBe(true);
    expect(await docker('ps', '-q', '--no-trunc', '--filter', 'name=survivor')).toBe(a);
    const e = await exited(b);
    expect(e.State.ExitCode).toBe(4);
    // The restarted daemon still tracks exits.
    await docker('stop', '-t', '1', 'survivor');
    expect((await inspect('survivor')).State.Status).toBe('exited');
  });

  it('kill -9 skiffd while a container logs: no line is lost, docker logs reads through the gap', async () => {
    const id = await docker(
      'run',
      '-d',
      'busybox',
      'sh',
      '-c',
      'i=0; while [ $i -lt 60 ]; do echo line-$i; i=$((i+1)); sleep 0.05; done',
    );
    await new Promise((r) => setTimeout(r, 500));
    await d.killDaemon('SIGKILL');
    await new Promise((r) => setTimeout(r, 1200)); // the container goes on logging while no daemon runs
    await d.restartDaemon();
    await exited(id);
    const lines = (await d.docker(['logs', id])).stdout.trim().split('\n');
    expect(lines).toEqual(Array.from({ length: 60 }, (_, i) => `line-${i}`));
  });
});
