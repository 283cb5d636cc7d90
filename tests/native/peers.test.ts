// skiff-runtime as a drop-in for runc: the real callers — conmon and containerd (through its runc shim) — drive it
// with their own command lines, exactly as they drive runc.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  RUNTIME,
  busyboxRootfs,
  cleanupScratch,
  makeBundle,
  requireRoot,
  scratchDir,
  uniqueId,
  waitFor,
} from './helpers.js';

beforeAll(() => requireRoot());
afterAll(() => cleanupScratch());

function sh(cmd: string, opts: { timeout?: number } = {}) {
  return spawnSync('sh', ['-c', cmd], { encoding: 'utf8', timeout: opts.timeout ?? 60_000 });
}

describe('conmon (Podman’s shim) with skiff-runtime', () => {
  it('creates through --console-less pipes, logs in k8s-file format and records the exit code', () => {
    const b = makeBundle(['/bin/sh', '-c', 'echo hello-conmon; echo oops >&2; exit 3']);
    const d = scratchDir('skiff-conmon-');
    const root = join(d, 'rt');
    mkdirSync(join(d, 'exit'));
    const id = uniqueId('cm');
    // without --sync conmon daemonizes and runs the runtime's create in the background
    const c = spawnSync(
      '/usr/bin/conmon',
      [
        '--cid',
        id,
        '--cuuid',
        id,
        '--name',
        id,
        '--runtime',
        RUNTIME,
        '--runtime-arg',
        '--root',
        '--runtime-arg',
        root,
        '--bundle',
        b.dir,
        '--exit-dir',
        join(d, 'exit'),
        '--log-path',
        join(d, 'ctr.log'),
        '--container-pidfile',
        join(d, 'pid'),
        '--conmon-pidfile',
        join(d, 'conmon.pid'),
        '--socket-dir-path',
        d,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(c.status, c.stderr + c.stdout).toBe(0);
    // conmon's parent returns at once without podman's sync pipe: the pid file says the create is done
    waitFor(() => existsSync(join(d, 'pid')));
    const state = JSON.parse(spawnSync(RUNTIME, ['--root', root, 'state', id], { encoding: 'utf8' }).stdout);
    expect(state.status).toBe('created');
    expect(Number(readFileSync(join(d, 'pid'), 'utf8'))).toBe(state.pid);
    expect(spawnSync(RUNTIME, ['--root', root, 'start', id]).status).toBe(0);
    waitFor(() => existsSync(join(d, 'exit', id)));
    expect(readFileSync(join(d, 'exit', id), 'utf8')).toBe('3');
    const log = readFileSync(join(d, 'ctr.log'), 'utf8').trim().split('\n');
    expect(log).toHaveLength(2);
    expect(log[0]).toMatch(/^\S+ stdout F hello-conmon$/);
    expect(log[1]).toMatch(/^\S+ stderr F oops$/);
    expect(spawnSync(RUNTIME, ['--root', root, 'delete', id]).status).toBe(0);
  });
});

/** A docker-archive (`docker save` format) of the busybox rootfs, for `ctr images import`. */
function busyboxArchive(dir: string): string {
  const work = join(dir, 'archive');
  mkdirSync(work, { recursive: true });
  const layer = join(dir, 'layer.tar');
  expect(
    sh(`tar --numeric-owner --owner=0 --group=0 --exclude=./.complete -C ${busyboxRootfs()} -cf ${layer} .`).status,
  ).toBe(0);
  const diffId = createHash('sha256').update(readFileSync(layer)).digest('hex');
  mkdirSync(join(work, diffId));
  sh(`mv ${layer} ${join(work, diffId, 'layer.tar')}`);
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
  });
  const configId = createHash('sha256').update(config).digest('hex');
  writeFileSync(join(work, `${configId}.json`), config);
  writeFileSync(
    join(work, 'manifest.json'),
    JSON.stringify([
      { Config: `${configId}.json`, RepoTags: ['skiff.test/busybox:latest'], Layers: [`${diffId}/layer.tar`] },
    ]),
  );
  const out = join(dir, 'busybox.tar');
  expect(sh(`tar -C ${work} -cf ${out} .`).status).toBe(0);
  return out;
}

describe('containerd with skiff-runtime as its runc', () => {
  let dir = '';
  let address = '';
  let pid = 0;
  const ctr = (args: string, timeout = 60_000) => sh(`ctr -a ${address} -n skiff-test ${args}`, { timeout });
  const image = 'skiff.test/busybox:latest';

  beforeAll(() => {
    dir = scratchDir('skiff-containerd-');
    address = join(dir, 'containerd.sock');
    writeFileSync(
      join(dir, 'config.toml'),
      `version = 2\nroot = "${dir}/root"\nstate = "${dir}/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "${address}"\n`,
    );
    const d = spawn('/usr/bin/containerd', ['--config', join(dir, 'config.toml')], {
      stdio: 'ignore',
      detached: true,
    });
    pid = d.pid!;
    waitFor(() => existsSync(address) && ctr('version').status === 0, 20_000);
    const imp = ctr(`images import ${busyboxArchive(dir)}`);
    expect(imp.status, imp.stderr).toBe(0);
  }, 60_000);

  afterAll(() => {
    if (!address) return;
    for (const t of ctr('tasks ls -q').stdout.split('\n').filter(Boolean)) ctr(`tasks kill -s KILL ${t}`);
    spawnSync('sleep', ['0.3']);
    for (const t of ctr('tasks ls -q').stdout.split('\n').filter(Boolean)) ctr(`tasks delete -f ${t}`);
    for (const c of ctr('containers ls -q').stdout.split('\n').filter(Boolean)) ctr(`containers delete ${c}`);
    if (pid) process.kill(pid, 'SIGTERM');
    waitFor(
      () => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] === 'Z',
      10_000,
    );
    // containerd leaves its snapshot mounts and shims; unmount what is under our dir
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((m) => m?.startsWith(dir));
    for (const m of mounts.sort().reverse()) spawnSync('umount', ['-l', m]);
  });

  it('runs a container to completion: output and exit code through ctr run --rm', () => {
    const r = ctr(
      `run --rm --runc-binary ${RUNTIME} ${image} ${uniqueId('ctr')} sh -c 'echo hello-containerd; exit 5'`,
    );
    expect(r.stdout).toBe('hello-containerd\n');
    expect(r.status).toBe(5);
  });

  it('exec, ps, pause/resume, kill and delete of a detached task', () => {
    const id = uniqueId('ctrd');
    const run = ctr(`run -d --runc-binary ${RUNTIME} ${image} ${id} sleep 300`);
    expect(run.status, run.stderr).toBe(0);
    // the shim's runtime root holds skiff-runtime's own state (runc's state.json has no start_time)
    const stateDir = join('/run/containerd/runc/skiff-test', id);
    expect(JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8'))).toHaveProperty('start_time');
    const ex = ctr(`tasks exec --exec-id e1 ${id} sh -c 'echo from-exec; exit 4'`);
    expect(ex.stdout).toBe('from-exec\n');
    expect(ex.status).toBe(4);
    const ps = ctr(`tasks ps ${id}`);
    expect(ps.status, ps.stderr).toBe(0);
    expect(ps.stdout.trim().split('\n').length).toBeGreaterThanOrEqual(2);
    expect(ctr(`tasks pause ${id}`).status).toBe(0);
    expect(ctr('tasks ls').stdout).toMatch(new RegExp(`${id}\\s+\\d+\\s+PAUSED`));
    expect(ctr(`tasks resume ${id}`).status).toBe(0);
    expect(ctr('tasks ls').stdout).toMatch(new RegExp(`${id}\\s+\\d+\\s+RUNNING`));
    expect(ctr(`tasks kill -s KILL ${id}`).status).toBe(0);
    waitFor(() => new RegExp(`${id}\\s+\\d+\\s+STOPPED`).test(ctr('tasks ls').stdout));
    expect(ctr(`tasks delete ${id}`).status).toBe(0);
    expect(ctr(`containers delete ${id}`).status).toBe(0);
    expect(existsSync(stateDir)).toBe(false);
  });
});
