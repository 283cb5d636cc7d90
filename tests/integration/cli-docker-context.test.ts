// The docker context written by `skiff context` (electron/hostagent/docker-context.ts, no `docker` run to make it),
// read by the REAL docker CLI 28 (/usr/local/bin/docker): `docker context ls` lists it, `docker --context skiff`
// talks to a real skiffd through ~/.skiff/default/docker.sock (a symlink to the test daemon's socket here), another
// context and config.json's other settings are left alone, and --use makes it current. docker-env works with eval.
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, SKIFF } from './cli-harness.js';
import { DOCKER_CLI, run, startDaemon, type DaemonHarness } from './daemon-harness.js';

const c = cliEnv();
let d: DaemonHarness;
const sock = join(c.home, 'default', 'docker.sock');
const docker = (args: string[], env: Record<string, string> = {}) =>
  run(DOCKER_CLI, args, { env: { ...c.env, ...env }, timeoutMs: 60_000 });

beforeAll(async () => {
  d = await startDaemon();
  mkdirSync(join(c.home, 'default'), { recursive: true, mode: 0o700 });
  symlinkSync(d.socket, sock);
});
afterAll(async () => {
  await d?.stop();
  await c.cleanup();
});

describe('skiff context with the real docker CLI', () => {
  it('created without docker; listed; `docker --context skiff` reaches the daemon; others untouched', async () => {
    // the user's own context and settings, made by docker itself
    expect((await docker(['context', 'create', 'mine', '--docker', 'host=tcp://127.0.0.1:1'])).code).toBe(0);
    const mineBefore = (await docker(['context', 'inspect', 'mine'])).stdout;
    const r = await c.skiff(['context']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`docker context "skiff" created: unix://${sock}\n`);
    expect(r.stderr).toBe(''); // the socket answers

    const ls = (await docker(['context', 'ls', '--format', 'json'])).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { Name: string; Current: boolean; DockerEndpoint: string; Description: string });
    expect(ls.find((x) => x.Name === 'skiff')).toEqual(
      expect.objectContaining({ Current: false, DockerEndpoint: `unix://${sock}`, Description: 'Skiff' }),
    );
    expect(ls.find((x) => x.Name === 'default')?.Current).toBe(true); // not switched

    const v = await docker(['--context', 'skiff', 'version', '--format', '{{.Server.Os}} {{.Server.APIVersion}}']);
    expect(v.code, v.stderr).toBe(0);
    const direct = await d.docker(['version', '--format', '{{.Server.Os}} {{.Server.APIVersion}}']);
    expect(v.stdout).toBe(direct.stdout);
    // the same daemon: a container name made through the context is seen directly
    const info = await docker(['--context', 'skiff', 'info', '--format', '{{.Name}}|{{.DockerRootDir}}']);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toBe((await d.docker(['info', '--format', '{{.Name}}|{{.DockerRootDir}}'])).stdout);

    expect((await docker(['context', 'inspect', 'mine'])).stdout).toBe(mineBefore);
    expect((await c.skiff(['context'])).stdout).toContain('docker context "skiff" unchanged');
  });

  it('--use makes it current (config.json keeps its other settings); plain `docker version` then works', async () => {
    const cfg = join(c.dockerConfig, 'config.json');
    const before = { auths: { 'registry.example': { auth: 'dTpw' } }, psFormat: 'table {{.ID}}\t{{.Names}}' };
    writeFileSync(cfg, JSON.stringify(before, null, '\t'));
    const r = await c.skiff(['context', '--use']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('"skiff" is now the current docker context.');
    expect(JSON.parse(readFileSync(cfg, 'utf8'))).toEqual({ ...before, currentContext: 'skiff' });
    const v = await docker(['version', '--format', '{{.Server.Os}}']);
    expect(v).toMatchObject({ code: 0, stdout: 'linux\n' });
    expect((await docker(['context', 'show'])).stdout).toBe('skiff\n');
  });

  it('a moved socket: the context follows it (another vm gets skiff-<vm>)', async () => {
    const dev = join(c.home, 'dev');
    mkdirSync(dev, { recursive: true, mode: 0o700 });
    symlinkSync(d.socket, join(dev, 'docker.sock'));
    const r = await c.skiff(['context', '--vm', 'dev']);
    expect(r.stdout).toContain(`docker context "skiff-dev" created: unix://${join(dev, 'docker.sock')}`);
    const v = await docker(['--context', 'skiff-dev', 'version', '--format', '{{.Server.Os}}']);
    expect(v).toMatchObject({ code: 0, stdout: 'linux\n' });
    // SKIFF_HOME moved: `skiff context` updates the Host of the existing context
    const other = join(c.home, 'moved');
    mkdirSync(join(other, 'default'), { recursive: true, mode: 0o700 });
    symlinkSync(d.socket, join(other, 'default', 'docker.sock'));
    const u = await c.skiff(['context'], { SKIFF_HOME: other });
    expect(u.stdout).toContain(`docker context "skiff" updated: unix://${join(other, 'default', 'docker.sock')}`);
    const ep = await docker(['context', 'inspect', 'skiff', '--format', '{{.Endpoints.docker.Host}}']);
    expect(ep.stdout).toBe(`unix://${join(other, 'default', 'docker.sock')}\n`);
    expect((await docker(['--context', 'skiff', 'version', '--format', '{{.Server.Os}}'])).code).toBe(0);
  });

  it('docker-env: eval it and docker talks to the socket', async () => {
    const script =
      `eval "$("${process.execPath}" "${SKIFF}" docker-env)" && echo "$DOCKER_HOST" && ` +
      `"${DOCKER_CLI}" version --format '{{.Server.Os}}'`;
    const r = await run('sh', ['-c', script], { env: { ...c.env, DOCKER_CONFIG: join(c.home, 'empty-cfg') } });
    expect(r.stderr).toBe('');
    expect(r).toMatchObject({ code: 0, stdout: `unix://${sock}\nlinux\n` });
  });
});
