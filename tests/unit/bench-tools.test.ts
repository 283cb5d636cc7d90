// bench/harness.ts helpers used by bench/supervisor: shell quoting, the timed shell and /proc memory readings.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatKiB, readMemory, shellQuote, TimedShell } from '../../bench/harness.js';

describe('shellQuote', () => {
  it('round-trips spaces, quotes, $ and globs through bash', () => {
    const args = ['plain', 'two words', "it's", '$HOME', '*', '"dq"', '', 'a\\b'];
    const r = spawnSync('bash', ['-c', `printf '%s\\0' ${args.map(shellQuote).join(' ')}`], { encoding: 'utf8' });
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(args);
  });
});

describe('TimedShell', () => {
  let dir: string;
  let shell: TimedShell;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'timed-shell-'));
    shell = new TimedShell(join(dir, 'err'));
  });
  afterEach(() => {
    shell.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('times a command with its own clock', async () => {
    const r = await shell.run(['sleep', '0.05']);
    expect(r.code).toBe(0);
    expect(r.ms).toBeGreaterThanOrEqual(50);
    expect(r.ms).toBeLessThan(2000);
    expect(r.stderr).toBe('');
  });

  it('passes arguments untouched and returns the exit code and this command stderr only', async () => {
    const out = join(dir, 'out');
    await shell.check(['bash', '-c', 'echo first >&2']);
    const r = await shell.run([
      'bash',
      '-c',
      `printf '%s|' "$@" > ${shellQuote(out)}; echo "it's bad" >&2; exit 3`,
      'x',
      "a 'b'",
      '$X',
    ]);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe("it's bad");
    expect(readFileSync(out, 'utf8')).toBe("a 'b'|$X|");
    expect(readFileSync(join(dir, 'err'), 'utf8')).toBe("first\nit's bad\n");
  });

  it('check throws with the stderr text; a missing program is exit 127', async () => {
    await expect(shell.check(['bash', '-c', 'echo nope >&2; exit 1'])).rejects.toThrow(/exit 1: nope/);
    expect((await shell.run(['/nonexistent/program'])).code).toBe(127);
  });

  it('runs commands in order when called concurrently', async () => {
    const rs = await Promise.all([0, 1, 2, 3].map((i) => shell.run(['bash', '-c', `exit ${i}`])));
    expect(rs.map((r) => r.code)).toEqual([0, 1, 2, 3]);
  });

  it('kill stops the running command with the shell, and the pending run rejects', async () => {
    const t0 = performance.now();
    const pending = shell.run(['sleep', '30']);
    setTimeout(() => shell.kill(), 100);
    await expect(pending).rejects.toThrow(/exited/);
    expect(performance.now() - t0).toBeLessThan(5000);
    await expect(shell.run(['true'])).rejects.toThrow(/exited/);
  });

  it('refuses newlines and empty commands', async () => {
    await expect(shell.run(['echo', 'a\nb'])).rejects.toThrow(/newline/);
    await expect(shell.run([])).rejects.toThrow(/empty/);
  });
});

describe('readMemory and formatKiB', () => {
  it('reads VmRSS and Pss of a live process', () => {
    const m = readMemory(process.pid);
    expect(m.rssKiB).toBeGreaterThan(1000);
    if (m.pssKiB !== undefined) expect(m.pssKiB).toBeGreaterThan(0);
  });

  it('throws for a process that is gone', () => {
    expect(() => readMemory(2 ** 22 + 7)).toThrow();
  });

  it('formats KiB and MiB', () => {
    expect(formatKiB(13164)).toBe('12.9 MiB');
    expect(formatKiB(900)).toBe('900 KiB');
  });
});
