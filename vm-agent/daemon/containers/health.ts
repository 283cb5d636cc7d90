// Docker healthchecks (Config.Healthcheck), as dockerd's daemon/health.go: one monitor per running container runs
// the probe as an exec in the container (CMD, or CMD-SHELL through the shell), one at a time, and keeps
// State.Health {Status, FailingStreak, Log (last 5)} in the container record. The pure parts (settings, the
// state machine, the probe schedule, Go's duration text) are exported for the unit tests; HealthMonitors runs them.
import { randomBytes } from 'node:crypto';
import { errorMessage, logger } from '../../common/log.js';
import { nowRfc3339 } from '../../common/timestamp.js';
import { badRequest } from '../contracts.js';
import type { AttachResponseMsg, SupervisorClient } from '../supervisor.js';
import { execProcess } from './exec.js';
import type { Json } from './spec.js';
import type { ContainerRecord } from './store.js';

const log = logger('health');

// ---------------------------------------------------------------------------------------------- settings

export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

export interface HealthLogEntry {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

export interface HealthState {
  Status: HealthStatus;
  FailingStreak: number;
  Log: HealthLogEntry[];
}

/** A healthcheck ready to run: the probe's argv and its times in ms (dockerd's defaults filled in). */
export interface HealthSettings {
  cmd: string[];
  intervalMs: number;
  timeoutMs: number;
  /** For the timeout message: Go's text of the timeout ("30s"). */
  timeoutText: string;
  startPeriodMs: number;
  startIntervalMs: number;
  retries: number;
}

const SECOND_NS = 1e9;
const DEFAULTS = { interval: 30 * SECOND_NS, timeout: 30 * SECOND_NS, startPeriod: 0, startInterval: 5 * SECOND_NS };
const DEFAULT_RETRIES = 3;
export const MAX_LOG_ENTRIES = 5;
export const MAX_OUTPUT_BYTES = 4096;
const MIN_DURATION_NS = 1e6; // dockerd's MinimumDuration (1ms)

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const orDefault = (ns: number, dflt: number): number => (ns === 0 ? dflt : ns);

/**
 * The container's probe, or undefined when it has none: no Healthcheck, Test [] or ["NONE"], or an unknown type
 * (dockerd warns and runs nothing). `shell` is Config.Shell (default /bin/sh -c) for CMD-SHELL.
 */
export function healthSettings(config: Json): HealthSettings | undefined {
  const hc = config.Healthcheck as Json | null | undefined;
  if (!hc || typeof hc !== 'object') return undefined;
  const test = Array.isArray(hc.Test) ? (hc.Test as unknown[]).filter((x): x is string => typeof x === 'string') : [];
  let cmd: string[];
  if (test[0] === 'CMD') cmd = test.slice(1);
  else if (test[0] === 'CMD-SHELL') {
    const shell =
      Array.isArray(config.Shell) && config.Shell.length > 0 ? (config.Shell as string[]) : ['/bin/sh', '-c'];
    cmd = [...shell, ...test.slice(1)];
  } else return undefined;
  if (cmd.length === 0) return undefined;
  const timeoutNs = orDefault(num(hc.Timeout), DEFAULTS.timeout);
  const retries = num(hc.Retries);
  return {
    cmd,
    intervalMs: orDefault(num(hc.Interval), DEFAULTS.interval) / 1e6,
    timeoutMs: timeoutNs / 1e6,
    timeoutText: goDuration(timeoutNs),
    startPeriodMs: orDefault(num(hc.StartPeriod), DEFAULTS.startPeriod) / 1e6,
    startIntervalMs: orDefault(num(hc.StartInterval), DEFAULTS.startInterval) / 1e6,
    retries: retries <= 0 ? DEFAULT_RETRIES : retries,
  };
}

/** dockerd's validateHealthCheck (container create): durations 0 or at least 1ms, retries not negative. */
export function validateHealthcheck(hc: unknown): void {
  if (!hc || typeof hc !== 'object') return;
  const h = hc as Json;
  for (const k of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval']) {
    const v = num(h[k]);
    if (v !== 0 && v < MIN_DURATION_NS) throw badRequest(`${k} in Healthcheck cannot be less than 1ms`);
  }
  if (num(h.Retries) < 0) throw badRequest('Retries in Healthcheck cannot be negative');
}

/** Go's time.Duration String(): "30s", "1.5s", "500ms", "1m30s", "1h0m0s". */
export function goDuration(ns: number): string {
  ns = Math.round(ns);
  if (ns === 0) return '0s';
  const sign = ns < 0 ? '-' : '';
  let u = Math.abs(ns);
  const frac = (v: number, digits: number): string => {
    const s = String(v).padStart(digits, '0').replace(/0+$/, '');
    return s ? `.${s}` : '';
  };
  if (u < SECOND_NS) {
    if (u < 1e3) return `${sign}${u}ns`;
    if (u < 1e6) return `${sign}${Math.floor(u / 1e3)}${frac(u % 1e3, 3)}µs`;
    return `${sign}${Math.floor(u / 1e6)}${frac(u % 1e6, 6)}ms`;
  }
  let out = `${Math.floor(u / SECOND_NS) % 60}${frac(u % SECOND_NS, 9)}s`;
  u = Math.floor(u / SECOND_NS / 60);
  if (u > 0) {
    out = `${u % 60}m${out}`;
    u = Math.floor(u / 60);
    if (u > 0) out = `${u}h${out}`;
  }
  return sign + out;
}

// ---------------------------------------------------------------------------------------------- the state machine

/** A (re)started container: "starting" with no failures; the log of earlier runs is kept, as dockerd. */
export function initialHealth(prev?: { Log?: unknown[] }): HealthState {
  return { Status: 'starting', FailingStreak: 0, Log: [...((prev?.Log ?? []) as HealthLogEntry[])] };
}

/**
 * One probe's result applied (dockerd's handleProbeResult): the log keeps the last 5; exit 0 is healthy and clears
 * the streak; a failure counts unless the container is still starting within its start period; `retries`
 * failures in a row make it unhealthy. `changed` says whether the status changed (a health_status event).
 */
export function applyProbeResult(
  h: HealthState,
  r: HealthLogEntry,
  o: { retries: number; startPeriodMs: number; startedAtMs: number; probeStartMs: number },
): { health: HealthState; changed: boolean } {
  const next: HealthState = { Status: h.Status, FailingStreak: h.FailingStreak, Log: [...h.Log, r] };
  if (next.Log.length > MAX_LOG_ENTRIES) next.Log = next.Log.slice(next.Log.length - MAX_LOG_ENTRIES);
  if (r.ExitCode === 0) {
    next.FailingStreak = 0;
    next.Status = 'healthy';
  } else {
    const inStartPeriod = h.Status === 'starting' && o.probeStartMs - o.startedAtMs < o.startPeriodMs;
    if (!inStartPeriod) {
      next.FailingStreak++;
      if (next.FailingStreak >= o.retries) next.Status = 'unhealthy';
    }
  }
  return { health: next, changed: next.Status !== h.Status };
}

/**
 * The wait before the next probe (dockerd's getInterval): the interval once the start period is over; within it,
 * the start interval while starting, but never past the end of the start period when that comes sooner than an
 * interval.
 */
export function nextProbeDelay(s: HealthSettings, sinceStartMs: number, status: HealthStatus): number {
  if (sinceStartMs >= s.startPeriodMs) return s.intervalMs;
  const remaining = s.startPeriodMs - sinceStartMs;
  if (remaining < s.intervalMs) return remaining;
  return status === 'starting' ? s.startIntervalMs : s.intervalMs;
}

/** The probe's output: its first 4096 bytes, "..." when there was more. */
export class LimitedOutput {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private truncated = false;

  add(b: Buffer): void {
    const keep = Math.min(MAX_OUTPUT_BYTES - this.size, b.length);
    if (keep > 0) {
      this.chunks.push(b.subarray(0, keep));
      this.size += keep;
    }
    if (keep < b.length) this.truncated = true;
  }

  text(): string {
    const s = Buffer.concat(this.chunks).toString('utf8');
    return this.truncated ? `${s}...` : s;
  }
}

// ---------------------------------------------------------------------------------------------- running probes

/** What the monitors need of the container service. */
export interface HealthHost {
  /** The container's record now (undefined once removed). */
  find(id: string): ContainerRecord | undefined;
  /** Write the record to disk. */
  persist(rec: ContainerRecord): void;
  /** A container event with the container's attributes (name, image, labels) and these. */
  emit(rec: ContainerRecord, action: string, extra?: Record<string, string>): void;
}

interface Monitor {
  stopped: boolean;
  timer?: NodeJS.Timeout;
  /** Resolves when the probe in flight (if any) has ended: the next monitor waits for it. */
  busy: Promise<void>;
  /** Resolves when stopped: a probe in flight is killed. */
  aborted: Promise<void>;
  abort(): void;
}

const PERSIST_EVERY_MS = 30_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

/**
 * The monitors, one per running container with a probe. The container service calls start after each start,
 * resume after unpause, stop on exit, stop, pause and remove, and start again for running containers when skiffd
 * starts (dockerd resets to "starting" then too; the log is kept).
 */
export class HealthMonitors {
  private readonly monitors = new Map<string, Monitor>();
  /** When each container's health was last written; results since then are only in memory. */
  private readonly savedAt = new Map<string, number>();

  constructor(
    private readonly sup: SupervisorClient,
    private readonly host: HealthHost,
  ) {}

  /** A (re)start: health reset to "starting" (set on rec now; the caller saves it) and the probes begin. */
  start(rec: ContainerRecord): void {
    this.stop(rec.id);
    if (!healthSettings(rec.config)) return;
    rec.health = initialHealth(rec.health);
    this.launch(rec.id);
  }

  /** Unpaused: probing goes on where it was. */
  resume(rec: ContainerRecord): void {
    if (!healthSettings(rec.config)) return;
    if (!rec.health) rec.health = initialHealth();
    this.launch(rec.id);
  }

  /** No more probes; one in flight is killed and its result dropped. Health stays as it was. */
  stop(id: string): void {
    const m = this.monitors.get(id);
    if (!m) return;
    m.stopped = true;
    if (m.timer) clearTimeout(m.timer);
    m.abort();
  }

  /** Daemon shutdown: no more probes, and the results not yet on disk are written. */
  stopAll(): void {
    for (const id of this.monitors.keys()) this.stop(id);
    for (const id of this.savedAt.keys()) {
      const rec = this.host.find(id);
      if (rec?.health) this.host.persist(rec);
    }
    this.savedAt.clear();
  }

  private launch(id: string): void {
    const prev = this.monitors.get(id);
    if (prev && !prev.stopped) return; // already probing
    let abort!: () => void;
    const aborted = new Promise<void>((r) => (abort = r));
    // Probes never pile up: a stopped monitor's probe is waited for before this one's first.
    const m: Monitor = { stopped: false, busy: prev?.busy ?? Promise.resolve(), aborted, abort };
    this.monitors.set(id, m);
    void m.busy.then(() => this.schedule(id, m));
  }

  private schedule(id: string, m: Monitor): void {
    if (m.stopped) return this.forget(id, m);
    const rec = this.host.find(id);
    const s = rec && healthSettings(rec.config);
    if (!rec || !s || !rec.health) return this.forget(id, m);
    const status = rec.health.Status as HealthStatus;
    const delay = nextProbeDelay(s, Date.now() - Date.parse(rec.state.startedAt), status);
    m.timer = setTimeout(
      () => {
        m.timer = undefined;
        m.busy = this.probeOnce(id, m, s)
          .catch((err: unknown) => log.warn(`container ${id}: health check: ${errorMessage(err)}`))
          .then(() => this.schedule(id, m));
      },
      Math.max(0, delay),
    );
    m.timer.unref();
  }

  private forget(id: string, m: Monitor): void {
    if (this.monitors.get(id) === m) this.monitors.delete(id);
    if (!this.host.find(id)) this.savedAt.delete(id);
  }

  private async probeOnce(id: string, m: Monitor, s: HealthSettings): Promise<void> {
    const rec = this.host.find(id);
    if (m.stopped || !rec || rec.state.status !== 'running') return;
    const probeStartMs = Date.now();
    const Start = nowRfc3339();
    const r = await runProbe(this.sup, this.host, rec, s, m.aborted);
    const cur = this.host.find(id);
    // Stopped (exit, stop, pause, remove) while probing: the result is dropped, as dockerd.
    if (m.stopped || !r || cur !== rec || cur.state.status !== 'running' || !cur.health) return;
    const entry: HealthLogEntry = { Start, End: nowRfc3339(), ExitCode: r.exitCode, Output: r.output };
    const { health, changed } = applyProbeResult(cur.health as HealthState, entry, {
      retries: s.retries,
      startPeriodMs: s.startPeriodMs,
      startedAtMs: Date.parse(cur.state.startedAt),
      probeStartMs,
    });
    cur.health = health;
    // Written at once when the status changes; otherwise now and then (not an fsync per probe), and at shutdown.
    if (changed || Date.now() - (this.savedAt.get(id) ?? 0) >= PERSIST_EVERY_MS) {
      this.host.persist(cur);
      this.savedAt.set(id, Date.now());
    }
    if (changed) this.host.emit(cur, `health_status: ${health.Status}`);
  }
}

/**
 * One probe: an exec in the container with its own process settings (user, env, cwd, capabilities …) and the
 * probe's argv, stdout and stderr captured, killed at the timeout. Events as dockerd's probes (exec_create,
 * exec_start, exec_die). Undefined when aborted (the container stopped).
 */
async function runProbe(
  sup: SupervisorClient,
  host: HealthHost,
  rec: ContainerRecord,
  s: HealthSettings,
  aborted: Promise<void>,
): Promise<{ exitCode: number; output: string } | undefined> {
  const execId = randomBytes(32).toString('hex');
  const task = rec.id;
  const cmdText = s.cmd.join(' ');
  host.emit(rec, `exec_create: ${cmdText}`, { execID: execId });
  try {
    const got = await sup.containers.get(task);
    const spec = JSON.parse(got.container.spec.toString('utf8')) as Json;
    const proc = execProcess(
      (spec.process as Json) ?? {},
      {
        AttachStdin: false,
        AttachStdout: true,
        AttachStderr: true,
        DetachKeys: '',
        Tty: false,
        ConsoleSize: null,
        Env: [],
        Cmd: s.cmd,
        Privileged: false,
        User: '',
        WorkingDir: '',
      },
      undefined,
    );
    await sup.tasks.exec(task, execId, proc, false, false);
  } catch (err) {
    return { exitCode: -1, output: errorMessage(err) };
  }
  const out = new LimitedOutput();
  const call = sup.tasks.attach();
  const streamEnded = new Promise<void>((r) => {
    call.on('end', r);
    call.on('error', () => r());
  });
  call.on('data', (msg: AttachResponseMsg) => {
    if (msg.stdout) out.add(msg.stdout);
    else if (msg.stderr) out.add(msg.stderr);
  });
  call.write({ start: { container_id: task, exec_id: execId } });
  // A round trip on the same channel: the supervisor has attached before the probe starts, so no output is lost.
  await sup.tasks.state(task, execId).catch(() => undefined);
  const cleanUp = async (): Promise<void> => {
    await Promise.race([streamEnded, sleep(1000)]);
    call.cancel();
    await sup.tasks.delete(task, execId).catch(() => undefined);
  };
  try {
    await sup.tasks.start(task, execId);
  } catch (err) {
    await cleanUp();
    return { exitCode: -1, output: errorMessage(err) };
  }
  host.emit(rec, `exec_start: ${cmdText}`, { execID: execId });
  const exit = sup.tasks.wait(task, execId).then(
    (w) => w.exit_status,
    () => -1,
  );
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    exit.then(() => 'exited' as const),
    new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), s.timeoutMs).unref())),
    aborted.then(() => 'aborted' as const),
  ]);
  clearTimeout(timer);
  if (outcome !== 'exited')
    await sup.tasks.kill(task, 9, { execId }).catch((err: unknown) => log.debug(`kill probe: ${errorMessage(err)}`));
  // Waited for even when killed: a dying probe must end before the next one starts (bounded: a paused container's
  // probe dies when it is thawed, and a lost answer must not stop its probes for good).
  const exitCode = outcome === 'exited' ? await exit : await Promise.race([exit, sleep(60_000).then(() => -1)]);
  await cleanUp();
  host.emit(rec, 'exec_die', { execID: execId, exitCode: String(exitCode) });
  if (outcome === 'aborted') return undefined;
  if (outcome === 'timeout') {
    const text = out.text();
    return {
      exitCode: -1,
      output: `Health check exceeded timeout (${s.timeoutText})${text ? `: ${text}` : ''}`,
    };
  }
  return { exitCode, output: out.text() };
}
