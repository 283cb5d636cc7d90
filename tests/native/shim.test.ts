// skiff-shim through its TypeScript client (vm-agent/supervisor/shim-client.ts) on busybox containers run by the
// real dist/bin/skiff-runtime: life cycle, json-file logs and rotation, stdin and attach, tty, exec, reconnects,
// durability of the exit record, OOM, fds, failures and cleanup, idle memory. See docs/shim-protocol.md.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  AttachStreamId,
  DEFAULT_SHIM_BINARY,
  FrameReader,
  ShimClientLauncher,
  encodeFrame,
} from '../../vm-agent/supervisor/shim-client.js';
import type { AttachStream, ExitStatus, Shim, ShimEvent } from '../../vm-agent/supervisor/shim-types.js';
import {
  RUNTIME,
  Runtime,
  cleanupScratch,
  defaultConfig,
  makeBundle,
  requireRoot,
  scratchDir,
  uniqueId,
  type OciConfig,
} from './helpers.js';

const SHIM = DEFAULT_SHIM_BINARY;
const launcher = new ShimClientLauncher({ binary: SHIM });
const rt = new Runtime(RUNTIME);
const shimsRoot = scratchDir('skiff-shims-');
const logsRoot = scratchDir('skiff-logs-');
const opened: Shim[] = [];
const dirs: string[] = [];

beforeAll(() => {
  requireRoot();
  if (!existsSync(SHIM)) throw new Error(`${SHIM} is missing: run npm run build:native first`);
});

afterEach(() => {
  for (const s of opened.splice(0)) s.close();
  // anything a failed test left: the shims first (by the pid they wrote), then the containers
  for (const dir of dirs.splice(0)) {
    const pid = shimPid(dir);
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
  }
  rt.cleanup();
});
afterAll(() => cleanupScratch());

interface Started {
  shim: Shim;
  id: string;
  dir: string;
  log: string;
}

async function startShim(
  args: string[],
  opts: {
    tty?: boolean;
    stdin?: boolean;
    logMaxSize?: number;
    logMaxFile?: number;
    mutate?: (c: OciConfig) => void;
  } = {},
): Promise<Started> {
  const bundle = makeBundle(args, (c) => {
    c.process.terminal = !!opts.tty;
    opts.mutate?.(c);
  });
  const id = uniqueId('shim');
  const dir = join(shimsRoot, id);
  const log = join(logsRoot, `${id}.log`);
  dirs.push(dir);
  const shim = await launcher.start({
    id,
    bundle: bundle.dir,
    dir,
    runtime: RUNTIME,
    runtimeRoot: rt.root,
    logPath: log,
    logMaxSize: opts.logMaxSize,
    logMaxFile: opts.logMaxFile,
    tty: opts.tty,
    stdin: opts.stdin,
  });
  opened.push(shim);
  return { shim, id, dir, log };
}

function shimPid(dir: string): number {
  try {
    return Number(readFileSync(join(dir, 'shim.pid'), 'utf8'));
  } catch {
    return 0;
  }
}

/** Alive and not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function until(cond: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface LogEntry {
  log: string;
  stream: 'stdout' | 'stderr';
  time: string;
}

function readLog(path: string): LogEntry[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LogEntry);
}

function text(entries: LogEntry[], stream?: string): string {
  return entries
    .filter((e) => !stream || e.stream === stream)
    .map((e) => e.log)
    .join('');
}

/** Collects an attach stream's output per stream. */
function collect(a: AttachStream): {
  out: () => string;
  err: () => string;
  exit: Promise<ExitStatus>;
  closed: () => boolean;
} {
  let out = '';
  let err = '';
  let closed = false;
  a.onOutput((s, d) => {
    if (s === 'stdout') out += d.toString('latin1');
    else err += d.toString('latin1');
  });
  a.onClose(() => (closed = true));
  const exit = new Promise<ExitStatus>((res) => a.onExit(res));
  return { out: () => out, err: () => err, exit, closed: () => closed };
}

function ociProcess(args: string[], tty = false): object {
  const p = defaultConfig(args).process;
  p.terminal = tty;
  return p;
}

describe('life cycle', () => {
  it('create → start → exit: state, wait, exit code, exit.json', async () => {
    const { shim, dir, id } = await startShim(['/bin/sh', '-c', 'echo hi; exit 3']);
    expect(await shim.version()).toBe(1);
    expect(readFileSync(join(dir, 'version'), 'utf8').trim()).toBe('1');
    const created = await shim.state();
    expect(created.status).toBe('created');
    expect(created.id).toBe(id);
    expect(created.pid).toBe(Number(readFileSync(join(dir, 'init.pid'), 'utf8')));
    expect(rt.state(id).status).toBe('created');

    const { pid } = await shim.start();
    expect(pid).toBe(created.pid);
    const exit = await shim.wait();
    expect(exit).toMatchObject({ pid, exitCode: 3, signal: 0, oomKilled: false });
    expect(exit.exitedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    expect(Math.abs(Date.parse(exit.exitedAt) - Date.now())).toBeLessThan(10_000);
    const st = await shim.state();
    expect(st).toMatchObject({ status: 'stopped', exitCode: 3, exitedAt: exit.exitedAt, oomKilled: false });
    expect(JSON.parse(readFileSync(join(dir, 'exit.json'), 'utf8'))).toEqual(exit);
    // a second wait answers at once with the same record
    expect(await shim.wait()).toEqual(exit);
    await expect(shim.start()).rejects.toThrow(/stopped/);
  });

  it('kill: SIGKILL gives 137 and signal 9; signals to a stopped container are refused', async () => {
    const { shim } = await startShim(['/bin/sleep', '1000']);
    await shim.start();
    expect((await shim.state()).status).toBe('running');
    const waiting = shim.wait();
    await shim.kill(9);
    const exit = await waiting;
    expect(exit).toMatchObject({ exitCode: 137, signal: 9 });
    await expect(shim.kill(9)).rejects.toThrow(/not running/);
    await expect(shim.kill(0)).rejects.toThrow(/signal number/);
  });

  it('kill before start: the created container stops and can be deleted', async () => {
    const { shim, dir } = await startShim(['/bin/true']);
    const w = shim.wait();
    await shim.kill(9);
    expect((await w).signal).toBe(9);
    await shim.delete();
    expect(existsSync(dir)).toBe(false);
  });

  it('delete: refused while running; then the runtime forgets it, the shim exits and removes its dir', async () => {
    const { shim, dir, id } = await startShim(['/bin/sleep', '1000']);
    const pid = shimPid(dir);
    await shim.start();
    await expect(shim.delete()).rejects.toThrow(/running: kill it and wait/);
    await expect(shim.shutdown()).rejects.toThrow(/delete it/);
    await shim.kill(9);
    await shim.wait();
    const d = await shim.delete();
    expect(d.exitCode).toBe(137);
    expect(existsSync(dir)).toBe(false);
    await until(() => !alive(pid), 5000, 'the shim to exit');
    expect(rt.cmd(['state', id]).stderr).toMatch(/does not exist/);
    // the connection closed with the shim: later requests fail with a clear message
    await sleep(100);
    await expect(shim.state()).rejects.toThrow(/state: the control connection closed \(the shim exited or died\)/);
  });

  it('shutdown of a never-started container removes it; the protocol answers bad requests', async () => {
    const { shim, dir, id } = await startShim(['/bin/true']);
    // raw protocol: malformed line, unknown op, unknown exec, missing fields
    const sock = connect(join(dir, 'control.sock'));
    const lines: string[] = [];
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    sock.write('not json\n{"id":2,"op":"frobnicate"}\n{"id":3,"op":"wait","exec":"nope"}\n');
    sock.write('{"id":4,"op":"resize"}\n{"id":5,"op":"exec","exec":"../x","process":{}}\n{"id":6,"op":"version"}\n');
    await until(() => lines.length >= 6, 5000, 'six answers');
    sock.destroy();
    const answers = lines.map((l) => JSON.parse(l));
    expect(answers[0]).toMatchObject({ id: null, error: expect.stringMatching(/not valid JSON/) });
    expect(answers[1]).toEqual({ id: 2, error: 'unknown op "frobnicate"' });
    expect(answers[2].error).toMatch(/exec nope does not exist/);
    expect(answers[3].error).toMatch(/width is required/);
    expect(answers[4].error).toMatch(/must be 1 to 64 of/);
    expect(answers[5]).toEqual({ id: 6, version: 1 });

    const pid = shimPid(dir);
    await shim.shutdown();
    expect(existsSync(dir)).toBe(false);
    await until(() => !alive(pid), 5000, 'the shim to exit');
    expect(rt.cmd(['state', id]).stderr).toMatch(/does not exist/);
  });
});

describe('logs', () => {
  it('every byte of stdout and stderr in json-file format, escaped as Docker does', async () => {
    // quotes, backslash, tab, a control char, HTML characters, invalid UTF-8, U+2028, valid multibyte UTF-8
    const script = [
      String.raw`printf 'a"b\\c\t\001<>&\377\342\200\250\303\251\r\n'`,
      'echo to-stderr >&2',
      'seq 1 10000',
      "head -c 40000 /dev/zero | tr '\\0' x; echo",
      'printf no-newline-at-exit',
    ].join('; ');
    const { shim, log } = await startShim(['/bin/sh', '-c', script]);
    await shim.start();
    expect((await shim.wait()).exitCode).toBe(0);
    const raw = readFileSync(log, 'utf8').split('\n');
    expect(raw[0]).toMatch(
      /^\{"log":"a\\"b\\\\c\\u0009\\u0001\\u003c\\u003e\\u0026\\ufffd\\u2028é\\r\\n","stream":"stdout","time":"[^"]+"\}$/,
    );
    const entries = readLog(log);
    for (const e of entries) {
      expect(Object.keys(e)).toEqual(['log', 'stream', 'time']);
      // Go's RFC3339Nano: UTC, up to 9 fractional digits, trailing zeros dropped
      expect(e.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z$/);
      expect(Math.abs(Date.parse(e.time) - Date.now())).toBeLessThan(60_000);
    }
    expect(text(entries, 'stderr')).toBe('to-stderr\n');
    const out = entries.filter((e) => e.stream === 'stdout');
    const seqLines = out.slice(1, 10001).map((e) => e.log);
    expect(seqLines).toEqual(Array.from({ length: 10000 }, (_, i) => `${i + 1}\n`));
    // the 40000-byte line: two 16 KiB pieces without a newline, then the rest with it
    const long = out.slice(10001, 10004).map((e) => e.log);
    expect(long.map((l) => l.length)).toEqual([16384, 16384, 40000 - 32768 + 1]);
    expect(long.join('')).toBe('x'.repeat(40000) + '\n');
    expect(out[10004].log).toBe('no-newline-at-exit');
    expect(out.length).toBe(10005);
  });

  it('rotates at max-size keeping max-file files, none larger than max-size', async () => {
    const { shim, log } = await startShim(['/bin/sh', '-c', 'seq 1 3000'], { logMaxSize: 8192, logMaxFile: 3 });
    await shim.start();
    await shim.wait();
    expect(existsSync(`${log}.1`)).toBe(true);
    expect(existsSync(`${log}.2`)).toBe(true);
    expect(existsSync(`${log}.3`)).toBe(false);
    for (const f of [log, `${log}.1`, `${log}.2`]) expect(statSync(f).size).toBeLessThanOrEqual(8192);
    // oldest to newest, the files hold a contiguous tail of the output ending with the last line
    const lines = [...readLog(`${log}.2`), ...readLog(`${log}.1`), ...readLog(log)].map((e) => Number(e.log));
    expect(lines.at(-1)).toBe(3000);
    expect(lines.length).toBeGreaterThan(200); // three files of ~88 entries each
    lines.forEach((n, i) => expect(n).toBe(lines[0] + i));
  });

  it('max-file 1 truncates in place', async () => {
    const { shim, log } = await startShim(['/bin/sh', '-c', 'seq 1 2000'], { logMaxSize: 4096 });
    await shim.start();
    await shim.wait();
    expect(existsSync(`${log}.1`)).toBe(false);
    expect(statSync(log).size).toBeLessThanOrEqual(4096);
    const lines = readLog(log).map((e) => Number(e.log));
    expect(lines.at(-1)).toBe(2000);
    lines.forEach((n, i) => expect(n).toBe(lines[0] + i));
  });
});

describe('stdin and attach', () => {
  it('holds stdin open until closed; attachers write to it; a detach does not close it', async () => {
    const { shim, log } = await startShim(['/bin/sh', '-c', 'while read l; do echo got:$l; done; echo eof; exit 4'], {
      stdin: true,
    });
    await shim.start();
    await sleep(300);
    expect((await shim.state()).status).toBe('running'); // no EOF on stdin while nobody is attached
    const a = await shim.attach();
    const ca = collect(a);
    a.writeStdin(Buffer.from('one\n'));
    await until(() => ca.out().includes('got:one'), 5000, 'got:one');
    a.detach();
    await sleep(200);
    expect((await shim.state()).status).toBe('running');
    const b = await shim.attach();
    const cb = collect(b);
    b.writeStdin(Buffer.from('two\nthree\n'));
    await until(() => cb.out().includes('got:three'), 5000, 'got:three');
    expect(cb.out()).not.toContain('got:one'); // output from the moment it attached
    b.closeStdin();
    const exit = await cb.exit;
    expect(exit.exitCode).toBe(4);
    expect(cb.out()).toBe('got:two\ngot:three\neof\n');
    await until(() => cb.closed(), 5000, 'the attach connection to close');
    expect(text(readLog(log))).toBe('got:one\ngot:two\ngot:three\neof\n');
  });

  it('two attachers both see the output; one detaching does not affect the other', async () => {
    const { shim } = await startShim([
      '/bin/sh',
      '-c',
      'i=0; while [ $i -lt 20 ]; do echo tick$i; echo etick$i >&2; i=$((i+1)); sleep 0.05; done',
    ]);
    const a = await shim.attach();
    const b = await shim.attach();
    const ca = collect(a);
    const cb = collect(b);
    await shim.start();
    await until(() => cb.out().includes('tick3'), 5000, 'tick3 on b');
    b.detach();
    expect(cb.closed()).toBe(true);
    const exit = await ca.exit;
    expect(exit.exitCode).toBe(0);
    const want = Array.from({ length: 20 }, (_, i) => `tick${i}\n`).join('');
    expect(ca.out()).toBe(want);
    expect(ca.err()).toBe(want.replace(/tick/g, 'etick'));
    expect(want.startsWith(cb.out())).toBe(true);
  });

  it('an attach after the exit gets the exit at once; attach to an unknown exec is refused', async () => {
    const { shim } = await startShim(['/bin/sh', '-c', 'exit 2']);
    await shim.start();
    await shim.wait();
    const a = await shim.attach();
    const c = collect(a);
    expect((await c.exit).exitCode).toBe(2);
    await until(() => c.closed(), 5000, 'close');
    await expect(shim.attach('nope')).rejects.toThrow(/exec nope does not exist/);
  });
});

describe('slow attachers', () => {
  it('one that stops reading is disconnected; the container and the log do not wait for it', async () => {
    const { shim, dir, log } = await startShim([
      '/bin/sh',
      '-c',
      'yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 8000000',
    ]);
    const sock = connect(join(dir, 'attach.sock'));
    await new Promise((r) => sock.once('connect', r));
    sock.write(encodeFrame(AttachStreamId.Hello, Buffer.from('{}')));
    sock.pause(); // never reads: the kernel buffer fills, then the shim's queue
    const fast = collect(await shim.attach());
    await shim.start();
    const exit = await shim.wait();
    expect(exit.exitCode).toBe(0);
    expect((await fast.exit).exitCode).toBe(0);
    expect(fast.out().length).toBe(8_000_000); // the attacher that reads gets everything
    expect(text(readLog(log)).length).toBe(8_000_000);
    // the slow one got the start of the output, then the connection ended without an exit frame
    const frames: number[] = [];
    let bytes = 0;
    const reader = new FrameReader();
    sock.on('data', (d: Buffer) =>
      reader.push(d, (stream, data) => {
        frames.push(stream);
        if (stream === AttachStreamId.Stdout) bytes += data.length;
      }),
    );
    const ended = new Promise((r) => sock.once('close', r));
    sock.resume();
    await ended;
    expect(frames[0]).toBe(AttachStreamId.Hello);
    expect(frames).not.toContain(AttachStreamId.Exit);
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThan(8_000_000);
  });
});

describe('tty', () => {
  it('echoes through the pty, sees a resize in stty size, logs the terminal output', async () => {
    const { shim, log } = await startShim(['/bin/sh'], { tty: true, stdin: true });
    const a = await shim.attach();
    const c = collect(a);
    await shim.start();
    await shim.resize(100, 40);
    a.writeStdin(Buffer.from('echo hi-$((1+2)); stty size\n'));
    await until(() => /40 100/.test(c.out()), 5000, 'stty size');
    expect(c.out()).toContain('echo hi-$((1+2)); stty size'); // the pty echoed the input
    expect(c.out()).toContain('hi-3\r\n');
    expect(c.err()).toBe(''); // with a tty everything is stdout
    await shim.resize(132, 50);
    a.writeStdin(Buffer.from('stty size; tty; exit 7\n'));
    expect((await c.exit).exitCode).toBe(7);
    expect(c.out()).toContain('50 132');
    expect(c.out()).toMatch(/\/dev\/(pts\/\d+|console)/);
    const logged = readLog(log);
    expect(new Set(logged.map((e) => e.stream))).toEqual(new Set(['stdout']));
    expect(text(logged)).toContain('hi-3');
    expect(text(logged)).toContain('50 132');
  });

  it('resize without a tty is refused', async () => {
    const { shim } = await startShim(['/bin/true']);
    await expect(shim.resize(80, 24)).rejects.toThrow(/no terminal/);
  });
});

describe('exec', () => {
  it('without a tty: output to attachers only, exit code, events, exit record, delete', async () => {
    const { shim, dir, log } = await startShim(['/bin/sleep', '1000']);
    const events: ShimEvent[] = [];
    shim.subscribe((e) => events.push(e));
    await shim.start();
    const { pid } = await shim.exec('e1', ociProcess(['/bin/sh', '-c', 'read x; echo out-$x; echo err >&2; exit 5']), {
      tty: false,
      stdin: true,
    });
    expect(pid).toBeGreaterThan(0);
    const a = await shim.attach('e1');
    const c = collect(a);
    a.writeStdin(Buffer.from('abc\n'));
    const exit = await c.exit;
    expect(exit).toMatchObject({ pid, exitCode: 5, signal: 0 });
    expect(c.out()).toBe('out-abc\n');
    expect(c.err()).toBe('err\n');
    expect(await shim.wait('e1')).toEqual(exit);
    expect(JSON.parse(readFileSync(join(dir, 'exec-e1.exit.json'), 'utf8'))).toEqual(exit);
    const st = await shim.state();
    expect(st.status).toBe('running');
    expect(st.execs).toEqual([{ exec: 'e1', pid, status: 'stopped', exitCode: 5 }]);
    await until(() => events.some((e) => e.event === 'exit'), 5000, 'the exit event');
    expect(events[0]).toEqual({ event: 'exec-started', exec: 'e1', pid });
    expect(events.find((e) => e.event === 'exit')).toEqual({ event: 'exit', exec: 'e1', ...exit });
    expect(readFileSync(log, 'utf8')).not.toContain('out-abc'); // exec output is not in the container log
    await expect(shim.exec('e1', ociProcess(['/bin/true']), { tty: false, stdin: false })).rejects.toThrow(
      /already exists/,
    );
    expect(await shim.delete('e1')).toMatchObject({ exitCode: 5 });
    expect(existsSync(join(dir, 'exec-e1.exit.json'))).toBe(false);
    expect((await shim.state()).execs).toEqual([]);
    await expect(shim.wait('e1')).rejects.toThrow(/does not exist/);
  });

  it('output made before the first attacher is held for it, not lost', async () => {
    const { shim } = await startShim(['/bin/sleep', '1000']);
    await shim.start();
    await shim.exec('early', ociProcess(['/bin/sh', '-c', 'seq 1 500; exit 1']), { tty: false, stdin: false });
    const exit = await shim.wait('early');
    expect(exit.exitCode).toBe(1);
    const c = collect(await shim.attach('early'));
    expect((await c.exit).exitCode).toBe(1);
    expect(c.out()).toBe(Array.from({ length: 500 }, (_, i) => `${i + 1}\n`).join(''));
  });

  it('with a tty, resize, kill of an exec, and a failing exec reported clearly', async () => {
    const { shim } = await startShim(['/bin/sleep', '1000']);
    await shim.start();
    await shim.exec('t1', ociProcess(['/bin/sh'], true), { tty: true, stdin: true });
    const a = await shim.attach('t1');
    const c = collect(a);
    await shim.resize(90, 30, 't1');
    a.writeStdin(Buffer.from('tty; stty size; exit 6\n'));
    expect((await c.exit).exitCode).toBe(6);
    expect(c.out()).toMatch(/\/dev\/pts\/\d+/);
    expect(c.out()).toContain('30 90');

    await shim.exec('k1', ociProcess(['/bin/sleep', '1000']), { tty: false, stdin: false });
    const w = shim.wait('k1');
    await shim.kill(9, { exec: 'k1' });
    expect(await w).toMatchObject({ exitCode: 137, signal: 9 });

    await expect(shim.exec('bad', ociProcess(['/no/such/binary']), { tty: false, stdin: false })).rejects.toThrow(
      /exec bad in container .*no\/such\/binary/,
    );
    expect((await shim.state()).execs.map((e) => e.exec)).toEqual(['t1', 'k1']);
  });
});

describe('durability', () => {
  it('the client disconnecting and reconnecting while the container logs loses nothing', async () => {
    const { shim, id, dir, log } = await startShim([
      '/bin/sh',
      '-c',
      'i=0; while [ $i -lt 400 ]; do echo n$i; i=$((i+1)); [ $((i % 20)) = 0 ] && sleep 0.05; done; exit 9',
    ]);
    await shim.start();
    shim.close();
    await expect(shim.state()).rejects.toThrow(/closed/);
    await sleep(300);
    const again = await launcher.connect(id, dir);
    opened.push(again);
    expect((await again.wait()).exitCode).toBe(9);
    const lines = readLog(log).map((e) => e.log);
    expect(lines).toEqual(Array.from({ length: 400 }, (_, i) => `n${i}\n`));
  });

  it('outlives the process that started it, in a session of its own with its stdio on /dev/null', async () => {
    const bundle = makeBundle(['/bin/sh', '-c', 'i=0; while true; do echo beat$i; i=$((i+1)); sleep 0.05; done']);
    const id = uniqueId('shim');
    const dir = join(shimsRoot, id);
    const log = join(logsRoot, `${id}.log`);
    dirs.push(dir);
    const args = ShimClientLauncher.args({
      id,
      bundle: bundle.dir,
      dir,
      runtime: RUNTIME,
      runtimeRoot: rt.root,
      logPath: log,
    });
    // a parent that starts the shim and then dies by SIGKILL, as a crashing supervisor would
    const parent = spawn('/bin/sh', ['-c', '"$@"; echo started; exec sleep 1000', 'sh', SHIM, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
      detached: true,
    });
    await new Promise<void>((res) => parent.stdout.once('data', () => res()));
    const shim = await launcher.connect(id, dir);
    opened.push(shim);
    await shim.start();
    process.kill(-parent.pid!, 'SIGKILL');
    await new Promise((r) => parent.once('exit', r));
    await sleep(300);
    const pid = shimPid(dir);
    expect(alive(pid)).toBe(true);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      .slice(readFileSync(`/proc/${pid}/stat`, 'utf8').lastIndexOf(')') + 2)
      .split(' ');
    expect(Number(stat[3])).toBe(pid); // session id: its own session
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/NoNewPrivs|Pid/);
    for (const fd of ['0', '1', '2']) expect(readlinkSync(`/proc/${pid}/fd/${fd}`)).toBe('/dev/null');
    expect((await shim.state()).status).toBe('running');
    const before = readLog(log).length;
    await sleep(300);
    expect(readLog(log).length).toBeGreaterThan(before); // still logging
    const w = shim.wait();
    await shim.kill(9);
    expect((await w).signal).toBe(9);
    const beats = readLog(log).map((e) => e.log);
    expect(beats).toEqual(beats.map((_, i) => `beat${i}\n`));
    await shim.delete();
  });

  it('writes exit.json (fsync, rename) before the wait answer and the exit event', async () => {
    const { shim, dir } = await startShim(['/bin/sh', '-c', 'sleep 0.3; exit 12']);
    let atEvent: string | undefined;
    shim.subscribe((e) => {
      if (e.event === 'exit') atEvent = readFileSync(join(dir, 'exit.json'), 'utf8');
    });
    expect(existsSync(join(dir, 'exit.json'))).toBe(false);
    await shim.start();
    const exit = await shim.wait();
    // read synchronously in the same tick the answer arrived: the file was already in place
    const onDisk = JSON.parse(readFileSync(join(dir, 'exit.json'), 'utf8'));
    expect(onDisk).toEqual(exit);
    expect(exit.exitCode).toBe(12);
    await until(() => atEvent !== undefined, 5000, 'the exit event');
    expect(JSON.parse(atEvent!)).toEqual(exit);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

describe('OOM, fds, failures, memory', () => {
  it('detects an OOM kill (cgroup v1 eventfd): oom event and oomKilled', async () => {
    // tail keeps the last "line" of /dev/zero, which never ends: the init itself grows until the OOM killer takes it
    // (with a shell in between, which of the two the kernel picks is not fixed)
    const { shim } = await startShim(['tail', '/dev/zero'], {
      mutate: (c) => (c.linux.resources.memory = { limit: 32 << 20, swap: 32 << 20 }),
    });
    const events: ShimEvent[] = [];
    shim.subscribe((e) => events.push(e));
    await shim.start();
    const exit = await shim.wait();
    expect(exit).toMatchObject({ exitCode: 137, signal: 9, oomKilled: true });
    expect((await shim.state()).oomKilled).toBe(true);
    await until(() => events.some((e) => e.event === 'exit'), 5000, 'the exit event');
    const oomAt = events.findIndex((e) => e.event === 'oom');
    expect(oomAt).toBeGreaterThanOrEqual(0);
    expect(oomAt).toBeLessThan(events.findIndex((e) => e.event === 'exit'));
  });

  it('a container that is not OOM-killed says so', async () => {
    const { shim } = await startShim(['/bin/true'], {
      mutate: (c) => (c.linux.resources.memory = { limit: 64 << 20, swap: 64 << 20 }),
    });
    await shim.start();
    expect((await shim.wait()).oomKilled).toBe(false);
  });

  it('leaks no fd into the container or an exec; every fd of the shim is close-on-exec', async () => {
    const { shim, dir, log } = await startShim(['/bin/sh', '-c', 'ls /proc/self/fd; sleep 1000'], { stdin: true });
    await shim.start();
    await until(() => readLog(log).length >= 4, 5000, 'ls output');
    // ls's own directory fd is the one above 2
    expect(text(readLog(log))).toBe('0\n1\n2\n3\n');
    const initPid = Number(readFileSync(join(dir, 'init.pid'), 'utf8'));
    expect(readdirSync(`/proc/${initPid}/fd`).sort()).toEqual(['0', '1', '2']);
    await shim.exec('fds', ociProcess(['/bin/ls', '/proc/self/fd']), { tty: false, stdin: false });
    const c = collect(await shim.attach('fds'));
    await c.exit;
    expect(c.out()).toBe('0\n1\n2\n3\n');
    await shim.exec('ttyfds', ociProcess(['/bin/ls', '/proc/self/fd'], true), { tty: true, stdin: false });
    const t = collect(await shim.attach('ttyfds'));
    await t.exit;
    expect(t.out().trim().split(/\s+/)).toEqual(['0', '1', '2', '3']); // ls prints columns on a tty
    const pid = shimPid(dir);
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      if (Number(fd) <= 2) continue;
      const flags = /flags:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))![1];
      expect(parseInt(flags, 8) & 0o2000000, `shim fd ${fd} -> ${readlinkSync(`/proc/${pid}/fd/${fd}`)}`).not.toBe(0);
    }
  });

  it('a failing create: a clear error from start, and nothing left (no shim, no dir, no container)', async () => {
    const bundle = makeBundle(['/no/such/binary']);
    const id = uniqueId('shim');
    const dir = join(shimsRoot, id);
    dirs.push(dir);
    const before = shimProcesses(id);
    expect(before).toEqual([]);
    await expect(
      launcher.start({ id, bundle: bundle.dir, dir, runtime: RUNTIME, runtimeRoot: rt.root }),
    ).rejects.toThrow(new RegExp(`creating container ${id}: .*/no/such/binary`));
    expect(existsSync(dir)).toBe(false);
    expect(shimProcesses(id)).toEqual([]);
    expect(rt.cmd(['state', id]).stderr).toMatch(/does not exist/);

    await expect(
      launcher.start({ id, bundle: join(bundle.dir, 'missing'), dir, runtime: RUNTIME, runtimeRoot: rt.root }),
    ).rejects.toThrow(/bundle .*missing: No such file or directory/);
    expect(existsSync(dir)).toBe(false);
    await expect(launcher.connect(id, dir)).rejects.toThrow(/nobody answers/);

    // a directory the supervisor made is kept, but nothing of the shim's is left in it
    mkdirSync(dir, { mode: 0o700 });
    await expect(
      launcher.start({ id, bundle: bundle.dir, dir, runtime: RUNTIME, runtimeRoot: rt.root }),
    ).rejects.toThrow(/no\/such\/binary/);
    expect(readdirSync(dir)).toEqual([]);

    // a second shim in the directory of a live one is refused and leaves the first alone
    const first = await startShim(['/bin/sleep', '1000']);
    await expect(
      launcher.start({
        id: uniqueId('shim'),
        bundle: bundle.dir,
        dir: first.dir,
        runtime: RUNTIME,
        runtimeRoot: rt.root,
      }),
    ).rejects.toThrow(/a shim already runs in/);
    expect((await first.shim.state()).status).toBe('created');
    expect(readdirSync(first.dir).sort()).toEqual([
      'attach.sock',
      'control.sock',
      'init.pid',
      'runtime.log',
      'shim.pid',
      'version',
    ]);
  });

  it('idle RSS of a shim with a sleeping container, fresh and after a burst of output', async () => {
    const rssOf = (pid: number): number =>
      Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
    const cpuOf = (pid: number): number => {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
      return Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks
    };
    const fresh = await startShim(['/bin/sleep', '1000'], { stdin: true });
    await fresh.shim.start();
    await fresh.shim.state();
    await sleep(500);
    const pid = shimPid(fresh.dir);
    const rss = rssOf(pid);
    // idle means asleep in poll, not spinning
    const t0 = cpuOf(pid);
    await sleep(1000);
    expect(cpuOf(pid) - t0).toBeLessThanOrEqual(1);

    const busy = await startShim([
      '/bin/sh',
      '-c',
      'seq 1 20000; head -c 100000 /dev/zero | tr "\\0" x; exec sleep 1000',
    ]);
    await busy.shim.start();
    // 20000 lines and six 16 KiB pieces; the last 1696 bytes are a partial line the shim holds until the exit
    await until(() => readLog(busy.log).length >= 20006, 10_000, 'the burst in the log');
    await sleep(300);
    const after = rssOf(shimPid(busy.dir));
    console.log(`skiff-shim idle VmRSS: ${rss} kB fresh, ${after} kB after 20000 lines and a 100 KB line`);
    expect(rss).toBeLessThanOrEqual(4096);
    expect(after).toBeLessThanOrEqual(4096);
  });
});

function shimProcesses(id: string): string[] {
  return spawnSync('pgrep', ['-f', `skiff-shim --id ${id} `], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean);
}
