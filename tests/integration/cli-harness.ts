// Running the real `dist/bin/skiff` bundle for the CLI tests: a temp SKIFF_HOME and DOCKER_CONFIG, stdin not a
// terminal, and the host agents the CLI launched ended (SIGTERM by the pid in their pidfile) when a test file ends.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../native/helpers.js';
import { run, type RunResult } from './daemon-harness.js';

export const SKIFF = join(REPO, 'dist/bin/skiff');

export interface CliEnv {
  home: string;
  dockerConfig: string;
  env: Record<string, string>;
  skiff: (args: string[], env?: Record<string, string>, timeoutMs?: number) => Promise<RunResult>;
  /** The pid in ~/.skiff/<vm>/hostagent.pid, or 0. */
  agentPid: (vm?: string) => number;
  cleanup: () => Promise<void>;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function waitGone(pid: number, ms = 60_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return !alive(pid);
}

export function cliEnv(extra: Record<string, string> = {}): CliEnv {
  if (!existsSync(SKIFF) || !existsSync(join(REPO, 'dist/bin/skiff-hostagent')))
    throw new Error('dist/bin/skiff or dist/bin/skiff-hostagent is missing: run `npm run build` first');
  // Short: the sockets in it must stay under 104 bytes.
  const home = mkdtempSync(join(tmpdir(), 'skc-'));
  const dockerConfig = join(home, 'docker-config');
  const env = { SKIFF_HOME: home, DOCKER_CONFIG: dockerConfig, DOCKER_HOST: '', SKIFF_ACCEL: 'tcg', ...extra };
  const agentPid = (vm = 'default'): number => {
    const f = join(home, vm, 'hostagent.pid');
    return existsSync(f) ? parseInt(readFileSync(f, 'utf8'), 10) || 0 : 0;
  };
  return {
    home,
    dockerConfig,
    env,
    agentPid,
    skiff: (args, more = {}, timeoutMs = 120_000) =>
      run(process.execPath, [SKIFF, ...args], { env: { ...env, ...more }, timeoutMs }),
    cleanup: async () => {
      for (const vm of existsSync(home) ? readdirSync(home) : []) {
        const pid = agentPid(vm);
        if (pid && alive(pid)) {
          process.kill(pid, 'SIGTERM');
          if (!(await waitGone(pid, 60_000))) process.kill(pid, 'SIGKILL');
        }
      }
      rmSync(home, { recursive: true, force: true });
    },
  };
}
