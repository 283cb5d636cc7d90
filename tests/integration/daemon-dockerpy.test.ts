// docker-py (Debian's python3-docker) as a third client of skiffd (issue 4: "docker-py must work unchanged"):
// daemon-dockerpy.py runs against the test daemon with DOCKER_HOST=unix://<socket> and prints a JSON summary of
// what it saw (version, ping, images, run with remove, ContainerError, a detached container's streamed logs,
// exec_run, stop, remove, events with until); the assertions are here.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, requireRoot } from '../native/helpers.js';
import { busyboxArchive, DaemonHarness, run, SKIFFD, startDaemon } from './daemon-harness.js';

// Debian's interpreter, where python3-docker is installed (a python3 earlier on PATH may lack the module).
const PYTHON = '/usr/bin/python3';
const SCRIPT = join(REPO, 'tests/integration/daemon-dockerpy.py');

let d: DaemonHarness;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let s: Record<string, any>;

beforeAll(async () => {
  requireRoot();
  if (!existsSync(SKIFFD)) throw new Error(`${SKIFFD} is missing: run npm run build first`);
  const probe = await run(PYTHON, ['-c', 'import docker; print(docker.__version__)']);
  if (probe.code !== 0)
    throw new Error(`docker-py is missing (${PYTHON}: ${probe.stderr.trim()}): run .ci/install-deps (python3-docker)`);
  d = await startDaemon();
  const load = await d.docker(['load', '-i', busyboxArchive()]);
  if (load.code !== 0) throw new Error(`docker load: ${load.stderr}`);

  const env: Record<string, string> = {
    DOCKER_HOST: `unix://${d.socket}`,
    DOCKER_TLS_VERIFY: '',
    DOCKER_CERT_PATH: '',
  };
  const r = await run(PYTHON, [SCRIPT], { env, timeoutMs: 150_000 });
  try {
    s = JSON.parse(r.stdout);
  } catch {
    throw new Error(
      `daemon-dockerpy.py: exit ${r.code}, no JSON summary\nstdout: ${r.stdout}\nstderr: ${r.stderr}\n${d.log()}`,
    );
  }
  if (!s.ok)
    throw new Error(
      `daemon-dockerpy.py failed in step ${s.failed_step}: ${s.error}\nsummary: ${JSON.stringify(s, null, 1)}\n` +
        `stderr: ${r.stderr}\n${d.log()}`,
    );
}, 170_000);

afterAll(async () => {
  await d?.stop();
});

describe('docker-py against skiffd', () => {
  it('from_env negotiates the API version; version, ping and info answer', () => {
    expect(s.docker_py).toMatch(/^\d+\.\d+/);
    expect(s.version.ApiVersion).toMatch(/^1\.\d+$/);
    expect(Number(s.version.ApiVersion.split('.')[1])).toBeGreaterThanOrEqual(44);
    // docker.from_env() asks /version and then speaks the server's version.
    expect(s.api_version).toBe(s.version.ApiVersion);
    expect(s.version.Os).toBe('linux');
    expect(s.version.Version).toBeTruthy();
    expect(s.ping).toBe(true);
    expect(s.info.OSType).toBe('linux');
    expect(s.info.Images).toBeGreaterThanOrEqual(1);
  });

  it('images.list and images.get see the loaded busybox; a missing image is ImageNotFound', () => {
    expect(s.images).toContain('busybox:latest');
    expect(s.image.tags).toEqual(['busybox:latest']);
    expect(s.image.id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(s.image_missing.status).toBe(404);
    expect(s.image_missing.explanation).toMatch(/no-such-image/);
  });

  it("containers.run('busybox', 'echo hi', remove=True) returns b'hi\\n' and leaves no container", () => {
    expect(s.run).toEqual({ type: 'bytes', output: 'hi\n' });
    expect(s.after_run_remove).toBe(0);
  });

  it('a non-zero exit raises ContainerError with the status and stderr', () => {
    expect(s.run_error.exit_status).toBe(3);
    expect(s.run_error.stderr).toBe('oops\n');
  });

  it('run(detach=True): running, named, labelled, listed by label', () => {
    expect(s.detached.id).toMatch(/^[0-9a-f]{64}$/);
    expect(s.detached.name).toBe('pyc');
    expect(s.detached.status).toBe('running');
    expect(s.detached.labels).toEqual({ suite: 'dockerpy' });
    expect(s.detached.image_tags).toEqual(['busybox:latest']);
    expect(s.listed).toEqual(['pyc']);
  });

  it('logs(stream=True, follow=True) streams stdout and stderr; logs() splits them on request', () => {
    // Both streams arrive, each in its own order (their relative order is up to the scheduler).
    const lines = s.logs_stream.split('\n').filter(Boolean);
    expect(lines.filter((l: string) => l !== 'two')).toEqual(['one', 'three']);
    expect(lines).toContain('two');
    expect(s.logs_stdout).toBe('one\nthree\n');
    expect(s.logs_stderr).toBe('two\n');
  });

  it('exec_run: exit code and output, demux, environment, workdir and user', () => {
    expect(s.exec.exit_code).toBe(3);
    expect(s.exec.output.split('\n').filter(Boolean).sort()).toEqual(['err', 'out']);
    expect(s.exec_demux).toEqual({ exit_code: 0, stdout: 'out\n', stderr: 'err\n' });
    expect(s.exec_env).toEqual({ exit_code: 0, output: 'hello\n/tmp\n' });
    expect(s.exec_user).toEqual({ exit_code: 0, output: '65534\n/tmp\n' });
  });

  it('stop(timeout=1) kills the shell that ignores SIGTERM; wait() reports it; remove() makes it NotFound', () => {
    expect(s.stopped.status).toBe('exited');
    expect(s.stopped.exit_code).toBe(137);
    expect(s.stopped.wait.StatusCode).toBe(137);
    expect(s.after_remove.status).toBe(404);
    expect(s.after_remove.explanation).toMatch(/No such container: pyc/);
  });

  it('events(since, until, decode=True) ends at until and holds the life cycle', () => {
    type Ev = { Type: string; Action: string; id: string; name: string; time: number };
    const events: Ev[] = s.events;
    for (const e of events) expect(e.time).toBeGreaterThan(1_600_000_000);
    const of = (name: string) =>
      events.filter((e) => e.Type === 'container' && e.name === name).map((e) => e.Action.split(':')[0]);
    const pyc = of('pyc');
    const inOrder = (got: string[], want: string[]) =>
      want.every((a, i) => got.indexOf(a) >= 0 && (i === 0 || got.indexOf(a) > got.indexOf(want[i - 1]!)));
    expect(pyc, JSON.stringify(pyc)).toSatisfy((a: string[]) =>
      inOrder(a, ['create', 'start', 'exec_create', 'exec_start', 'exec_die', 'kill', 'die', 'stop', 'destroy']),
    );
    // The echo hi container: created, started, died, removed (its name is generated).
    const runs = events.filter((e) => e.Type === 'container' && e.name !== 'pyc');
    const byId = new Map<string, string[]>();
    for (const e of runs) byId.set(e.id, [...(byId.get(e.id) ?? []), e.Action]);
    expect([...byId.values()].some((a) => inOrder(a, ['create', 'start', 'die', 'destroy']))).toBe(true);
    expect(s.events_filtered).toEqual(['die']);
  });
});
