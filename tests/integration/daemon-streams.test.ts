// skiffd's streaming endpoints (issue 4) with the real docker CLI 28.2.2 and dockerode: run (attach + wait + start),
// run -it through a pty (`script`), logs (follow, since, tail, timestamps), exec (exit code, -it, -d), attach,
// stats, top, cp both ways (a hostile tar refused), export, diff.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tarHeaderFor } from '../../vm-agent/daemon/containers/archive.js';
import { requireRoot } from '../native/helpers.js';
import { busyboxArchive, DaemonHarness, DOCKER_CLI, SKIFFD, startDaemon } from './daemon-harness.js';

let d: DaemonHarness;
let work: string;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  requireRoot();
  if (!existsSync(SKIFFD)) throw new Error(`${SKIFFD} is missing: run npm run build first`);
  d = await startDaemon();
  const l = await d.docker(['load', '-i', busyboxArchive()]);
  if (l.code !== 0) throw new Error(`docker load: ${l.stderr}\n${d.log()}`);
  work = mkdtempSync(join(tmpdir(), 'streams-it-'));
});

afterAll(async () => {
  await d?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The CLI under a pty (`script` from util-linux), with input written a piece at a time. */
function underPty(args: string[], steps: Array<{ wait?: string; send?: string }>, timeoutMs = 30_000) {
  const cmd = [DOCKER_CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const p = spawn('script', ['-qefc', cmd, '/dev/null'], {
    env: { ...process.env, DOCKER_HOST: `unix://${d.socket}`, DOCKER_CONFIG: d.dockerConfig, TERM: 'xterm' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  p.stdout.on('data', (c: Buffer) => (out += c.toString()));
  p.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const done = new Promise<{ code: number; out: string }>((resolve) => {
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('close', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? -1, out });
    });
  });
  void (async () => {
    for (const s of steps) {
      if (s.wait) for (let i = 0; i < 300 && !out.includes(s.wait); i++) await sleep(50);
      if (s.send) p.stdin.write(s.send);
    }
  })();
  return done;
}

async function ok(args: string[], input?: string): Promise<string> {
  const r = await d.docker(args, { input });
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: exit ${r.code}: ${r.stderr}\n${d.log()}`);
  return r.stdout;
}

describe('run', () => {
  it('docker run --rm busybox echo hi: output, exit code, removed', async () => {
    const r = await d.docker(['run', '--rm', 'busybox', 'echo', 'hi']);
    expect(r.code, r.stderr + d.log()).toBe(0);
    expect(r.stdout).toBe('hi\n');
    const e = await d.docker(['run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(e.code).toBe(3);
    expect(e.stdout).toBe('out\n');
    expect(e.stderr).toBe('err\n');
    expect((await ok(['ps', '-aq'])).trim()).toBe('');
  });

  it('docker run --rm of a program that does not exist: exit 127 with the reason, container removed', async () => {
    const r = await d.docker(['run', '--rm', 'busybox', 'nosuchprogram'], { timeoutMs: 30_000 });
    expect(r.code).toBe(127);
    expect(r.stderr).toMatch(/executable file not found in \$PATH/);
    expect((await ok(['ps', '-aq'])).trim()).toBe('');
  });

  it('stdin through docker run -i', async () => {
    const r = await d.docker(['run', '--rm', '-i', 'busybox', 'sh', '-c', 'cat; echo done'], { input: 'piped\n' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('piped\ndone\n');
  });

  it('docker run -it through a pty: prompt, input, exit code', async () => {
    const r = await underPty(
      ['run', '-it', '--rm', 'busybox', 'sh'],
      [
        { wait: '# ', send: 'echo $((6*7)); tty\r' },
        { wait: '/dev/pts', send: 'exit 5\r' },
      ],
    );
    expect(r.out).toContain('42');
    expect(r.out).toMatch(/\/dev\/pts\/\d/);
    // nothing but the shell's own bytes: no stray NUL (shown as ^@ by a terminal)
    expect(r.out).not.toContain(String.fromCharCode(0));
    expect(r.out).not.toContain('^@');
    expect(r.code).toBe(5);
  });
});

describe('logs', () => {
  it('logs, --tail, -t, --since, -f until the container stops', async () => {
    const id = (
      await ok([
        'run',
        '-d',
        'busybox',
        'sh',
        '-c',
        'for i in 1 2 3; do echo line$i; echo err$i >&2; done; sleep 2; echo last; printf partial',
      ])
    ).trim();
    await sleep(500);
    const all = await d.docker(['logs', id]);
    expect(all.stdout).toBe('line1\nline2\nline3\n');
    expect(all.stderr).toBe('err1\nerr2\nerr3\n');
    const tail = await d.docker(['logs', '--tail', '2', id]);
    const ts = await d.docker(['logs', '-t', id]);
    // stdout and stderr are two pipes: the last two entries by time, whichever streams they came from
    const byTime = (ts.stdout + ts.stderr).split('\n').filter(Boolean).sort();
    const lastTwo = byTime.slice(-2).map((l) => l.split(' ')[1]);
    expect((tail.stdout + tail.stderr).split('\n').filter(Boolean).sort()).toEqual(lastTwo.sort());
    expect(ts.stdout.split('\n')[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z line1$/);
    const future = await d.docker(['logs', '--since', '2099-01-01T00:00:00Z', id]);
    expect(future.stdout + future.stderr).toBe('');
    const f = await d.docker(['logs', '-f', id], { timeoutMs: 20_000 });
    expect(f.code).toBe(0);
    expect(f.stdout).toBe('line1\nline2\nline3\nlast\npartial');
    await ok(['rm', id]);
  });

  it('dockerode: a multiplexed logs stream demuxed', async () => {
    const id = (await ok(['run', '-d', 'busybox', 'sh', '-c', 'echo o; echo e >&2'])).trim();
    await ok(['wait', id]);
    const c = d.dockerode.getContainer(id);
    const buf = (await c.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    const out = new PassThrough();
    const err = new PassThrough();
    let o = '';
    let e = '';
    out.on('data', (x: Buffer) => (o += x.toString()));
    err.on('data', (x: Buffer) => (e += x.toString()));
    d.dockerode.modem.demuxStream(PassThrough.from([buf]) as never, out, err);
    await sleep(100);
    expect(o).toBe('o\n');
    expect(e).toBe('e\n');
    await ok(['rm', id]);
  });
});

describe('exec', () => {
  let id: string;
  beforeAll(async () => {
    id = (await ok(['run', '-d', '--name', 'ex', 'busybox', 'sleep', '1000'])).trim();
  });
  afterAll(async () => {
    await d.docker(['rm', '-f', id]);
  });

  it('docker exec: output and exit code; env, workdir, user', async () => {
    const r = await d.docker([
      'exec',
      '-e',
      'X=1',
      '-w',
      '/tmp',
      '-u',
      '1000:1000',
      'ex',
      'sh',
      '-c',
      'echo $X $(pwd) $(id -u); exit 4',
    ]);
    expect(r.stdout).toBe('1 /tmp 1000\n');
    expect(r.code).toBe(4);
    const i = await d.docker(['exec', '-i', 'ex', 'cat'], { input: 'via stdin\n' });
    expect(i.stdout).toBe('via stdin\n');
  });

  it('docker exec of a missing program prints why and exits 126', async () => {
    const id = (await ok(['run', '-d', 'busybox', 'sleep', '300'])).trim();
    const r = await d.docker(['exec', id, 'nosuchprogram']);
    expect(r.code).toBe(126);
    expect(r.stdout + r.stderr).toMatch(/executable file not found in \$PATH/);
    await ok(['rm', '-f', id]);
  });

  it('docker exec -it through a pty', async () => {
    const r = await underPty(['exec', '-it', 'ex', 'sh'], [{ wait: '# ', send: 'tty; exit 7\r' }]);
    expect(r.out).toMatch(/\/dev\/pts\/\d/);
    expect(r.code).toBe(7);
  });

  it('docker exec -d; exec inspect; ExecIDs', async () => {
    await ok(['exec', '-d', 'ex', 'sh', '-c', 'echo detached > /tmp/d']);
    await sleep(500);
    expect((await ok(['exec', 'ex', 'cat', '/tmp/d'])).trim()).toBe('detached');
    const c = d.dockerode.getContainer(id);
    const ex = await c.exec({
      Cmd: ['sh', '-c', 'echo dout; echo derr >&2; exit 2'],
      AttachStdout: true,
      AttachStderr: true,
    });
    const s = await ex.start({ hijack: true, stdin: false });
    const out = new PassThrough();
    const err = new PassThrough();
    let o = '';
    let e = '';
    out.on('data', (x: Buffer) => (o += x.toString()));
    err.on('data', (x: Buffer) => (e += x.toString()));
    d.dockerode.modem.demuxStream(s, out, err);
    await new Promise((r) => s.on('end', r));
    expect(o).toBe('dout\n');
    expect(e).toBe('derr\n');
    const info = await ex.inspect();
    expect(info.ExitCode).toBe(2);
    expect(info.Running).toBe(false);
    expect(info.ContainerID).toBe(id);
    const ci = await c.inspect();
    expect(ci.ExecIDs).toContain(ex.id);
  });

  it('409 when the container is not running', async () => {
    const stopped = (await ok(['create', 'busybox', 'true'])).trim();
    const r = await d.docker(['exec', stopped, 'true']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/is not running/);
    await ok(['rm', stopped]);
  });

  it('docker top and docker stats --no-stream', async () => {
    const top = await ok(['top', 'ex']);
    expect(top).toMatch(/PID/);
    expect(top).toMatch(/sleep 1000/);
    const st = await ok(['stats', '--no-stream', '--format', '{{.Name}} {{.MemUsage}} {{.PIDs}}', 'ex']);
    expect(st).toMatch(/^ex \S+ \/ \S+ 1\n$/);
    const one = (await d.dockerode.getContainer(id).stats({ stream: false, 'one-shot': true } as never)) as unknown as {
      id: string;
      cpu_stats: { cpu_usage: { total_usage: number } };
      memory_stats: { usage: number };
      pids_stats: { current: number };
    };
    expect(one.id).toBe(id);
    expect(one.cpu_stats.cpu_usage.total_usage).toBeGreaterThan(0);
    expect(one.memory_stats.usage).toBeGreaterThan(0);
    expect(one.pids_stats.current).toBe(1);
  });
});

describe('attach', () => {
  it('docker attach sees new output and the exit', async () => {
    const id = (await ok(['run', '-d', 'busybox', 'sh', '-c', 'sleep 1; echo attached-out; exit 6'])).trim();
    const r = await d.docker(['attach', id]);
    expect(r.stdout).toContain('attached-out');
    expect(r.code).toBe(6);
    await ok(['rm', id]);
  });

  it('dockerode attach with stdin (OpenStdin, StdinOnce), logs=1 replays', async () => {
    const c = await d.dockerode.createContainer({
      Image: 'busybox',
      Cmd: ['sh', '-c', 'echo first; while read l; do echo "got $l"; done; echo bye'],
      OpenStdin: true,
      StdinOnce: true,
    });
    const s = await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
    let o = '';
    const out = new PassThrough();
    out.on('data', (x: Buffer) => (o += x.toString()));
    d.dockerode.modem.demuxStream(s, out, new PassThrough());
    await c.start();
    s.write('one\n');
    for (let i = 0; i < 100 && !o.includes('got one'); i++) await sleep(50);
    s.end(); // StdinOnce: the container's stdin closes
    await c.wait();
    for (let i = 0; i < 40 && !o.includes('bye'); i++) await sleep(50);
    expect(o).toBe('first\ngot one\nbye\n');
    const replay = await c.attach({ stream: false, logs: true, stdout: true, stderr: true });
    let r = '';
    const ro = new PassThrough();
    ro.on('data', (x: Buffer) => (r += x.toString()));
    d.dockerode.modem.demuxStream(replay, ro, new PassThrough());
    await new Promise((res) => replay.on('end', res));
    expect(r).toBe('first\ngot one\nbye\n');
    await c.remove();
  });

  it('docker attach to a tty container: input, then ctrl-p ctrl-q detaches and leaves it running', async () => {
    const id = (await ok(['run', '-dit', 'busybox', 'sh'])).trim();
    const r = await underPty(['attach', id], [{ send: 'echo in-$((2+3))\r' }, { wait: 'in-5', send: '\x10\x11' }]);
    expect(r.out).toContain('in-5');
    expect(r.out).toMatch(/read escape sequence/);
    expect((await ok(['inspect', '-f', '{{.State.Running}}', id])).trim()).toBe('true');
    await ok(['rm', '-f', id]);
  });

  it('wait sends its headers at once', async () => {
    const id = (await ok(['create', 'busybox', 'sh', '-c', 'exit 9'])).trim();
    const got = await new Promise<{ status: number; body: Promise<string> }>((resolve, reject) => {
      const req = request(
        { socketPath: d.socket, path: `/v1.50/containers/${id}/wait?condition=next-exit`, method: 'POST' },
        (res) => {
          let body = '';
          const done = new Promise<string>((r) => res.on('end', () => r(body)));
          res.on('data', (c: Buffer) => (body += c.toString()));
          resolve({ status: res.statusCode ?? 0, body: done });
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(got.status).toBe(200); // before the start
    await ok(['start', id]);
    expect(JSON.parse(await got.body)).toEqual({ StatusCode: 9, Error: null });
    const bad = await new Promise<number>((resolve) => {
      const req = request(
        { socketPath: d.socket, path: `/containers/${id}/wait?condition=bogus`, method: 'POST' },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.end();
    });
    expect(bad).toBe(400);
    await ok(['rm', id]);
  });
});

describe('cp, export, diff', () => {
  let id: string;
  beforeAll(async () => {
    id = (
      await ok([
        'run',
        '-d',
        '--name',
        'fs',
        'busybox',
        'sh',
        '-c',
        'echo x > /etc/added; rm /bin/true 2>/dev/null; mkdir -p /data; echo hi > /data/f; ln -s /etc /data/etclink; sleep 1000',
      ])
    ).trim();
    await sleep(500);
  });
  afterAll(async () => {
    await d.docker(['rm', '-f', id]);
  });

  it('docker cp out of and into a running container', async () => {
    await ok(['cp', 'fs:/data', join(work, 'out')]);
    expect(readFileSync(join(work, 'out/f'), 'utf8')).toBe('hi\n');
    await ok(['cp', 'fs:/data/f', join(work, 'single')]);
    expect(readFileSync(join(work, 'single'), 'utf8')).toBe('hi\n');
    mkdirSync(join(work, 'in/sub'), { recursive: true });
    writeFileSync(join(work, 'in/sub/file'), 'into the container\n');
    await ok(['cp', join(work, 'in'), 'fs:/data/']);
    expect(await ok(['exec', 'fs', 'cat', '/data/in/sub/file'])).toBe('into the container\n');
    // through an in-container absolute symlink: lands in the container's /etc
    writeFileSync(join(work, 'viaLink'), 'v\n');
    await ok(['cp', join(work, 'viaLink'), 'fs:/data/etclink/']);
    expect(await ok(['exec', 'fs', 'cat', '/etc/viaLink'])).toBe('v\n');
    const missing = await d.docker(['cp', 'fs:/nope', join(work, 'x')]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/Could not find the file \/nope/);
  });

  it('a hostile tar PUT is refused and writes nothing outside', async () => {
    const data = Buffer.from('pwned');
    const tar = Buffer.concat([
      tarHeaderFor({
        name: '../../../../../tmp/skiff-escape',
        type: 'file',
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: data.length,
        mtime: 0,
      }),
      data,
      Buffer.alloc(512 - data.length),
      Buffer.alloc(1024),
    ]);
    const status = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        {
          socketPath: d.socket,
          path: `/v1.50/containers/${id}/archive?path=/data`,
          method: 'PUT',
          headers: { 'Content-Type': 'application/x-tar' },
        },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.end(tar);
    });
    expect(status.status).toBe(400);
    expect(status.body).toMatch(/leads out/);
    expect(existsSync('/tmp/skiff-escape')).toBe(false);
  });

  it('docker cp into a created container, then start it', async () => {
    const x = (await ok(['create', 'busybox', 'cat', '/conf/app.conf'])).trim();
    mkdirSync(join(work, 'conf'));
    writeFileSync(join(work, 'conf/app.conf'), 'configured\n');
    await ok(['cp', join(work, 'conf'), `${x}:/`]);
    await ok(['start', x]);
    await ok(['wait', x]);
    expect(await ok(['logs', x])).toBe('configured\n');
    await ok(['rm', x]);
  });

  it('docker cp out of an exited container', async () => {
    const x = (await ok(['run', '-d', 'busybox', 'sh', '-c', 'echo gone > /left'])).trim();
    await ok(['wait', x]);
    await ok(['cp', `${x}:/left`, join(work, 'left')]);
    expect(readFileSync(join(work, 'left'), 'utf8')).toBe('gone\n');
    expect(await ok(['diff', x])).toMatch(/^A \/left$/m);
    await ok(['rm', x]);
  });

  it('docker export | tar t and docker diff', async () => {
    const out = join(work, 'export.tar');
    await ok(['export', '-o', out, 'fs']);
    const list = spawnSync('tar', ['tf', out], { encoding: 'utf8' }).stdout.split('\n');
    expect(list).toContain('bin/busybox');
    expect(list).toContain('etc/added');
    expect(list).toContain('proc/'); // the empty mount point, as Docker's export
    expect(list.some((l) => l.startsWith('proc/') && l !== 'proc/')).toBe(false);
    const diff = await ok(['diff', 'fs']);
    expect(diff).toMatch(/^A \/etc\/added$/m);
    expect(diff).toMatch(/^A \/data$/m);
    expect(diff).toMatch(/^C \/etc$/m);
  });
});
