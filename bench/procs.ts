// Process plumbing the benchmarks share: re-running inside a private mount namespace, and stopping the daemons
// they started by pid.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * Re-execute this benchmark inside a private mount namespace (its mounts and masks stay out of the host) and
 * exit with its status; returns at once when already inside (envName is set).
 */
export function inPrivateMountNamespace(envName: string, bench: string): void {
  if (process.env[envName] === '1') return;
  const r = spawnSync(
    'unshare',
    ['-m', '--propagation', 'private', '--', process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    { stdio: 'inherit', env: { ...process.env, [envName]: '1' } },
  );
  if (r.error) console.error(`bench ${bench}: cannot run unshare: ${r.error.message} (apt-get install util-linux)`);
  process.exit(r.status ?? 1);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Running (not gone, not a zombie). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat[stat.lastIndexOf(')') + 2];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export async function waitGone(pid: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (alive(pid)) {
    if (performance.now() > deadline) throw new Error(`pid ${pid} still alive after ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** SIGTERM, up to graceMs, then SIGKILL (said through log). */
export async function stopPid(pid: number, what: string, graceMs: number, log: (msg: string) => void): Promise<void> {
  if (!alive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
    await waitGone(pid, graceMs);
  } catch {
    log(`${what} ${pid} ignored SIGTERM: SIGKILL`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    await waitGone(pid, 5000).catch(() => undefined);
  }
}
