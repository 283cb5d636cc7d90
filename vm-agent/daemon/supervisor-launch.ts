// Reaching skiff-supervisor, and starting it when it does not answer (as dockerd starts containerd). The one we
// start runs detached in its own session with its output in a log file, so it outlives skiffd: containers and
// their shims go on when skiffd stops or dies, and the next skiffd finds it answering.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { errorMessage, logger } from '../common/log.js';
import { connectSupervisor, type SupervisorClient } from './supervisor.js';

const log = logger('skiffd');

export interface SupervisorLaunch {
  address: string;
  /** dist/bin/skiff-supervisor */
  binary: string;
  /** Its state root: `<data-root>/../supervisor`. */
  root: string;
  /** Where its runtime state and shim directories go: `<exec-root>/../runtime`, `<exec-root>/../shims`. */
  runtimeRoot: string;
  shimDir: string;
  runtime: string;
  shim: string;
  logFile: string;
  logLevel?: string;
}

async function answers(client: SupervisorClient, timeoutMs: number): Promise<boolean> {
  if (!existsSync(client.address)) return false;
  try {
    await client.ready(timeoutMs);
    await client.containers.list();
    return true;
  } catch {
    return false;
  }
}

/** A connected client; the supervisor is started first when it does not answer. */
export async function reachSupervisor(opts: SupervisorLaunch, waitMs = 20_000): Promise<SupervisorClient> {
  let client = connectSupervisor(opts.address);
  if (await answers(client, 1000)) {
    log.info(`supervisor at ${opts.address} answers`);
    return client;
  }
  client.close();
  if (!existsSync(opts.binary))
    throw new Error(`the supervisor does not answer at ${opts.address} and ${opts.binary} is missing`);
  mkdirSync(dirname(opts.logFile), { recursive: true });
  const out = openSync(opts.logFile, 'a');
  const args = ['--address', opts.address, '--root', opts.root, '--runtime-root', opts.runtimeRoot];
  args.push('--state', opts.shimDir, '--runtime', opts.runtime, '--shim', opts.shim);
  if (opts.logLevel) args.push('--log-level', opts.logLevel);
  log.info(`starting ${opts.binary} ${args.join(' ')}`);
  const child = spawn(process.execPath, [opts.binary, ...args], { detached: true, stdio: ['ignore', out, out] });
  let exited: string | undefined;
  child.once('exit', (code, sig) => (exited = sig ?? String(code)));
  child.once('error', (err) => (exited = errorMessage(err)));
  child.unref();

  const end = Date.now() + waitMs;
  for (;;) {
    if (exited !== undefined) throw new Error(`skiff-supervisor exited (${exited}): ${tail(opts.logFile)}`);
    client = connectSupervisor(opts.address);
    if (await answers(client, 500)) {
      log.info(`supervisor ${child.pid} answers at ${opts.address}`);
      return client;
    }
    client.close();
    if (Date.now() > end) throw new Error(`skiff-supervisor did not answer within ${waitMs} ms: ${tail(opts.logFile)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-10).join('\n');
  } catch {
    return '(no log)';
  }
}

/** A program in dist/bin beside this bundle (or the repo's dist/bin when run from source). */
export function sibling(here: string, name: string): string {
  for (const p of [join(here, name), join(here, '../../dist/bin', name)]) if (existsSync(p)) return p;
  return join(here, name);
}
