// One kept process (docs/agent.md "Processes"): spawned in its own session with its output appended to a log file,
// probed until ready, and started again after it dies, with a back-off that doubles from 0.25 s to 30 s and goes
// back to the start once a run stayed healthy for a minute.
import { spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { errorMessage, logger } from '../common/log.js';
import type { ProcessHealth, ProcessState } from './contracts.js';

const log = logger('keeper');

export interface KeeperOptions {
  /** "skiffd", "skiff-supervisor": in health, logs and events. */
  name: string;
  command: string;
  args: string[];
  /** stdout and stderr are appended here. */
  logFile: string;
  /** Polled after each spawn until it answers true: STARTING → RUNNING. Without one, RUNNING at once. */
  ready?: () => Promise<boolean>;
  env?: NodeJS.ProcessEnv;
  /** Awaited before each spawn (wait for what it needs, stop a leftover copy); a rejection counts as a failed start. */
  beforeSpawn?: () => Promise<void>;
  /** Where to write the pid of each run (removed by stop()), for the next agent to find a leftover. */
  pidFile?: string;
  /** Timings; the defaults are the production ones, tests make them short. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** A run healthy this long resets the back-off. */
  resetAfterMs?: number;
  readyPollMs?: number;
  /** A process not ready by then is killed and counts as a failed start. */
  readyTimeoutMs?: number;
}

export type StateListener = (h: ProcessHealth, previous: ProcessState) => void;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The last `n` lines of a file from byte `from` on (the output of one run). */
export function tailOf(file: string, from: number, n = 20): string[] {
  try {
    const size = statSync(file).size;
    const start = Math.max(from, size - 64 * 1024);
    if (size <= start) return [];
    const fd = openSync(file, 'r');
    try {
      const buf = Buffer.alloc(size - start);
      readSync(fd, buf, 0, buf.length, start);
      return buf
        .toString('utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .slice(-n);
    } finally {
      closeSync(fd);
    }
  } catch {
    return [];
  }
}

export class ProcessKeeper {
  private child: ChildProcess | undefined;
  private state: ProcessState = 'STOPPED';
  private since = new Date();
  private restarts = 0;
  private lastExit = '';
  private delay: number;
  private runningSince = 0;
  private stopping = false;
  private started = false;
  private timer: NodeJS.Timeout | undefined;
  private logOffset = 0;
  private readonly listeners = new Set<StateListener>();
  private readonly exited = new Set<() => void>();

  constructor(private readonly opts: KeeperOptions) {
    this.delay = opts.backoffInitialMs ?? 250;
  }

  get name(): string {
    return this.opts.name;
  }

  /** Called on every state change with the new health and the state before. Returns the unsubscribe function. */
  onState(l: StateListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  health(): ProcessHealth {
    return {
      name: this.opts.name,
      state: this.state,
      // 0 while no process runs (BACKOFF, STOPPED, or before the spawn)
      pid: this.child && this.child.exitCode === null && this.child.signalCode === null ? (this.child.pid ?? 0) : 0,
      restarts: this.restarts,
      lastExit: this.lastExit,
      since: this.since,
    };
  }

  /** The last lines this run (or the last one) wrote. */
  lastLines(n = 20): string[] {
    return tailOf(this.opts.logFile, this.logOffset, n);
  }

  /** Spawn it and keep it running until stop(). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.stopping = false;
    void this.launch();
  }

  /** SIGTERM, then SIGKILL after `timeoutMs`; no restart after this. */
  async stop(timeoutMs = 10_000): Promise<void> {
    this.stopping = true;
    this.started = false;
    clearTimeout(this.timer);
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((r) => this.exited.add(r));
      child.kill('SIGTERM');
      const quit = await Promise.race([gone.then(() => true), sleep(timeoutMs).then(() => false)]);
      if (!quit) {
        log.warn(`${this.opts.name} (${child.pid}) did not stop within ${timeoutMs} ms: SIGKILL`);
        child.kill('SIGKILL');
        await gone;
      }
    }
    if (this.opts.pidFile && child?.pid) {
      try {
        if (readFileSync(this.opts.pidFile, 'utf8').trim() === String(child.pid)) unlinkSync(this.opts.pidFile);
      } catch {
        /* gone */
      }
    }
    this.setState('STOPPED');
  }

  private setState(s: ProcessState): void {
    if (s === this.state) return;
    const previous = this.state;
    this.state = s;
    this.since = new Date();
    if (s === 'RUNNING') this.runningSince = Date.now();
    const h = this.health();
    for (const l of this.listeners) {
      try {
        l(h, previous);
      } catch (err) {
        log.error(`${this.opts.name} state listener: ${errorMessage(err)}`);
      }
    }
  }

  private async launch(): Promise<void> {
    this.setState('STARTING');
    if (this.opts.beforeSpawn) {
      try {
        await this.opts.beforeSpawn();
      } catch (err) {
        if (this.stopping) return;
        this.child = undefined;
        this.lastExit = `could not start: ${errorMessage(err)}`;
        this.retry([]);
        return;
      }
    }
    if (this.stopping) return;
    this.spawnOnce();
  }

  private spawnOnce(): void {
    const { name, command, args, logFile } = this.opts;
    mkdirSync(dirname(logFile), { recursive: true });
    this.logOffset = existsSync(logFile) ? statSync(logFile).size : 0;
    const out = openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      // Its own session, writing straight to the log: it neither gets the agent's terminal signals nor dies of a
      // broken pipe when the agent goes (the next agent stops it by its pid file).
      child = spawn(command, args, { detached: true, stdio: ['ignore', out, out], env: this.opts.env });
    } finally {
      closeSync(out);
    }
    this.child = child;
    this.runningSince = 0;
    let done = false;
    const ended = (why: string): void => {
      if (done) return;
      done = true;
      for (const r of this.exited) r();
      this.exited.clear();
      this.onExit(child, why);
    };
    child.once('error', (err) => ended(`could not start ${command}: ${err.message}`));
    child.once('exit', (code, sig) => ended(sig ? `killed by ${sig}` : `exited with code ${code}`));
    log.info(`${name}: started ${command} ${args.join(' ')} (pid ${child.pid ?? '?'})`);
    if (this.opts.pidFile && child.pid) writeFileSync(this.opts.pidFile, `${child.pid}\n`);
    void this.probe(child);
  }

  private async probe(child: ChildProcess): Promise<void> {
    const ready = this.opts.ready;
    const alive = () => this.child === child && child.exitCode === null && child.signalCode === null;
    if (!ready) {
      if (alive()) this.setState('RUNNING');
      return;
    }
    const end = Date.now() + (this.opts.readyTimeoutMs ?? 60_000);
    while (alive() && !this.stopping) {
      const ok = await ready().catch(() => false);
      if (!alive() || this.stopping) return;
      if (ok) {
        this.setState('RUNNING');
        return;
      }
      if (Date.now() > end) {
        log.error(
          `${this.opts.name} (${child.pid}) not ready within ${this.opts.readyTimeoutMs ?? 60_000} ms: SIGKILL`,
        );
        child.kill('SIGKILL');
        return;
      }
      await sleep(this.opts.readyPollMs ?? 100);
    }
  }

  private onExit(child: ChildProcess, why: string): void {
    if (this.child !== child) return;
    const lines = this.lastLines();
    this.lastExit = lines.length > 0 && !why.startsWith('killed') ? `${why}: ${lines.at(-1)}` : why;
    if (this.stopping) return; // stop() sets STOPPED
    this.retry(lines);
  }

  /** BACKOFF, then launch again after the current delay. */
  private retry(lines: string[]): void {
    const healthyFor = this.runningSince ? Date.now() - this.runningSince : 0;
    if (healthyFor >= (this.opts.resetAfterMs ?? 60_000)) this.delay = this.opts.backoffInitialMs ?? 250;
    const wait = this.delay;
    this.delay = Math.min(this.delay * 2, this.opts.backoffMaxMs ?? 30_000);
    const recent = lines.length > 0 ? `\n${lines.slice(-5).join('\n')}` : '';
    log.warn(`${this.opts.name} ${this.lastExit}; starting it again in ${wait} ms${recent}`);
    this.setState('BACKOFF');
    this.timer = setTimeout(() => {
      if (this.stopping) return;
      this.restarts++;
      void this.launch();
    }, wait);
  }
}

/** Whether `pid` is alive and its command line passes `match` (a pid file can point at a recycled pid). */
function runs(pid: number, match: (argv: string[]) => boolean): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    return argv.length > 0 && match(argv);
  } catch {
    return false;
  }
}

/** Live processes whose command line passes `match` (other than this one). */
export function findProcesses(match: (argv: string[]) => boolean): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (Number.isInteger(pid) && pid !== process.pid && runs(pid, match)) out.push(pid);
  }
  return out;
}

/**
 * Stop processes left by an earlier agent so that there is exactly one of each: the pid in `pidFile` and any other
 * whose command line passes `match` (a pid file can point at a recycled pid: it must match too). SIGTERM, then
 * SIGKILL after `timeoutMs`. Returns the pids it stopped.
 */
export async function stopLeftovers(
  pidFile: string | undefined,
  match: (argv: string[]) => boolean,
  timeoutMs = 10_000,
): Promise<number[]> {
  const pids = new Set(findProcesses(match));
  try {
    const pid = pidFile ? Number.parseInt(readFileSync(pidFile, 'utf8').trim(), 10) : 0;
    if (pid > 0 && pid !== process.pid && runs(pid, match)) pids.add(pid);
  } catch {
    /* no pid file */
  }
  if (pids.size === 0) return [];
  log.warn(`stopping ${[...pids].join(', ')} left by an earlier agent`);
  const signal = (pid: number, sig: NodeJS.Signals): void => {
    try {
      process.kill(pid, sig);
    } catch {
      /* gone */
    }
  };
  for (const pid of pids) signal(pid, 'SIGTERM');
  const alive = () => [...pids].filter((p) => runs(p, match));
  const end = Date.now() + timeoutMs;
  while (alive().length > 0 && Date.now() < end) await sleep(50);
  for (const pid of alive()) signal(pid, 'SIGKILL');
  while (alive().length > 0) await sleep(20);
  return [...pids];
}
