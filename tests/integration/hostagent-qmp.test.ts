// The QMP client against a REAL QEMU with no guest (`-machine none -S` starts at once): greeting and version,
// capabilities, query-status, cont, an unknown command's error, events (POWERDOWN on system_powerdown), quit (QEMU
// exits, further calls fail clearly), and a socket that never appears.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { QmpClient, QmpError } from '../../electron/hostagent/qmp.js';

const QEMU = 'qemu-system-x86_64';
let dir = '';
const procs: ChildProcess[] = [];

beforeAll(() => {
  const r = spawnSync(QEMU, ['--version']);
  if (r.error)
    throw new Error(`${QEMU} is missing: install Debian's qemu-system-x86 (apt-get install qemu-system-x86)`);
  dir = mkdtempSync(join(tmpdir(), 'skiff-qmp-'));
  return () => rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  for (const p of procs.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

function startQemu(name: string): { sock: string; proc: ChildProcess; exited: Promise<number | null> } {
  const sock = join(dir, `${name}.sock`);
  const proc = spawn(
    QEMU,
    ['-machine', 'none', '-nodefaults', '-nographic', '-qmp', `unix:${sock},server=on,wait=off`, '-S'],
    { stdio: 'ignore' },
  );
  procs.push(proc);
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { sock, proc, exited };
}

describe('QMP client', () => {
  it('negotiates, queries status, reports errors and events, and quits QEMU', async () => {
    const q = startQemu('a');
    const c = await QmpClient.connect(q.sock, 10_000);
    expect(c.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(await c.queryStatus()).toEqual({ running: false, status: 'prelaunch' });

    const err = await c.execute('no-such-command').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpError);
    expect((err as QmpError).errorClass).toBe('CommandNotFound');
    expect((err as Error).message).toMatch(/^QMP no-such-command: .*no-such-command/);

    // Answers are matched by id even when several are in flight.
    const [s1, s2] = await Promise.all([c.queryStatus(), c.execute<{ qemu: unknown }>('query-version')]);
    expect(s1.status).toBe('prelaunch');
    expect(s2).toHaveProperty('qemu');

    const powerdown = c.waitEvent('POWERDOWN', 5000);
    await c.systemPowerdown();
    expect((await powerdown).event).toBe('POWERDOWN');

    const closed = new Promise<Error>((r) => c.once('close', r));
    await c.quit();
    expect(await q.exited).toBe(0);
    expect((await closed).message).toMatch(/closed/);
    expect(c.closed).toBe(true);
    await expect(c.queryStatus()).rejects.toThrow(/QEMU exited/);
  });

  it('cont runs a VM started with -S', async () => {
    const q = startQemu('b');
    const c = await QmpClient.connect(q.sock, 10_000);
    await c.cont();
    expect((await c.queryStatus()).running).toBe(true);
    await c.quit();
    await q.exited;
  });

  it('says so when QEMU never makes its socket', async () => {
    const t0 = Date.now();
    await expect(QmpClient.connect(join(dir, 'never.sock'), 300)).rejects.toThrow(/ENOENT/);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('rejects pending calls when QEMU dies', async () => {
    const q = startQemu('c');
    const c = await QmpClient.connect(q.sock, 10_000);
    const wait = c.waitEvent('NEVER', 10_000);
    q.proc.kill('SIGKILL');
    await expect(wait).rejects.toThrow(/closed/);
  });
});
