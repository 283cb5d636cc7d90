// GET /containers/{id}/stats and GET /containers/{id}/top: the supervisor's Tasks.Stats (runc's stats object from
// cgroup v1 or v2) turned into Docker's stats JSON, and Tasks.Pids + the host's `ps` into Docker's top answer.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import { nowRfc3339 } from '../../common/timestamp.js';
import { badRequest, conflict, serverError, type ContainerRecordView, type Daemon } from '../contracts.js';
import type { RequestContext } from '../contracts.js';
import type { SupervisorClient } from '../supervisor.js';
import { isFailedPrecondition, isNotFound } from '../supervisor.js';

// ---------------------------------------------------------------------------------------------- conversion

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {});
const n = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : Number(v) || 0);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

export interface CpuStats {
  cpu_usage: { total_usage: number; percpu_usage?: number[]; usage_in_kernelmode: number; usage_in_usermode: number };
  system_cpu_usage?: number;
  online_cpus?: number;
  throttling_data: { periods: number; throttled_periods: number; throttled_time: number };
}

export interface BlkioEntry {
  major: number;
  minor: number;
  op: string;
  value: number;
}

export interface DockerStats {
  name: string;
  id: string;
  read: string;
  preread: string;
  pids_stats: { current?: number; limit?: number };
  blkio_stats: {
    io_service_bytes_recursive: BlkioEntry[] | null;
    io_serviced_recursive: BlkioEntry[] | null;
    io_queue_recursive: null;
    io_service_time_recursive: null;
    io_wait_time_recursive: null;
    io_merged_recursive: null;
    io_time_recursive: null;
    sectors_recursive: null;
  };
  num_procs: number;
  storage_stats: Obj;
  cpu_stats: CpuStats;
  precpu_stats: CpuStats;
  memory_stats: {
    usage?: number;
    max_usage?: number;
    stats?: Record<string, number>;
    failcnt?: number;
    limit?: number;
  };
  networks?: Obj;
}

export const zeroTime = '0001-01-01T00:00:00Z';

const emptyCpu = (): CpuStats => ({
  cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 },
  throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
});

/** Docker's answer for a container that is not running: names and zeroes. */
export function emptyStats(name: string, id: string): DockerStats {
  return {
    name,
    id,
    read: zeroTime,
    preread: zeroTime,
    pids_stats: {},
    blkio_stats: {
      io_service_bytes_recursive: null,
      io_serviced_recursive: null,
      io_queue_recursive: null,
      io_service_time_recursive: null,
      io_wait_time_recursive: null,
      io_merged_recursive: null,
      io_time_recursive: null,
      sectors_recursive: null,
    },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: emptyCpu(),
    precpu_stats: emptyCpu(),
    memory_stats: {},
  };
}

function blkio(v: unknown, lowerOps: boolean): BlkioEntry[] | null {
  const a = arr(v).map((e) => {
    const o = obj(e);
    const op = String(o.op ?? '');
    return { major: n(o.major), minor: n(o.minor), op: lowerOps ? op.toLowerCase() : op, value: n(o.value) };
  });
  return a.length ? a : null;
}

/** One sample of the container's cgroup (from Tasks.Stats) with the host figures Docker adds. */
export interface Sample {
  cgroupVersion: number;
  stats: Obj;
  /** /proc/stat's total CPU time, in ns. */
  systemCpuUsage: number;
  onlineCpus: number;
  read: string;
  /** The container's interfaces' counters (/proc/<pid>/net/dev in its network namespace), lo left out. */
  networks?: Record<string, NetCounters>;
}

export interface NetCounters {
  rx_bytes: number;
  rx_packets: number;
  rx_errors: number;
  rx_dropped: number;
  tx_bytes: number;
  tx_packets: number;
  tx_errors: number;
  tx_dropped: number;
}

/** /proc/net/dev → counters per interface, without lo (as dockerd reports them). */
export function parseNetDev(text: string): Record<string, NetCounters> {
  const out: Record<string, NetCounters> = {};
  for (const line of text.split('\n').slice(2)) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const name = line.slice(0, i).trim();
    const f = line
      .slice(i + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (name === 'lo' || f.length < 16) continue;
    out[name] = {
      rx_bytes: f[0]!,
      rx_packets: f[1]!,
      rx_errors: f[2]!,
      rx_dropped: f[3]!,
      tx_bytes: f[8]!,
      tx_packets: f[9]!,
      tx_errors: f[10]!,
      tx_dropped: f[11]!,
    };
  }
  return out;
}

/**
 * runc's stats (`events --stats` data, as skiff-runtime writes it for v1 and v2) → Docker's stats JSON, as dockerd's
 * statsV1/statsV2 do: v2 has no per-CPU usage, no max_usage/failcnt, and lower-case blkio ops; a memory limit
 * beyond the machine's memory is the machine's memory.
 */
export function toDockerStats(
  name: string,
  id: string,
  cur: Sample,
  prev: Sample | undefined,
  machineMemory = totalmem(),
): DockerStats {
  const out = emptyStats(name, id);
  out.read = cur.read;
  const v2 = cur.cgroupVersion === 2;
  const cpu = (s: Sample): CpuStats => {
    const c = obj(s.stats.cpu);
    const u = obj(c.usage);
    const t = obj(c.throttling);
    const r: CpuStats = {
      cpu_usage: {
        total_usage: n(u.total),
        usage_in_kernelmode: n(u.kernel),
        usage_in_usermode: n(u.user),
      },
      system_cpu_usage: s.systemCpuUsage,
      online_cpus: s.onlineCpus,
      throttling_data: {
        periods: n(t.periods),
        throttled_periods: n(t.throttledPeriods),
        throttled_time: n(t.throttledTime),
      },
    };
    const per = arr(u.percpu).map(n);
    if (!v2 && per.length) r.cpu_usage.percpu_usage = per;
    return r;
  };
  out.cpu_stats = cpu(cur);
  if (prev) {
    out.precpu_stats = cpu(prev);
    out.preread = prev.read;
  }
  const m = obj(cur.stats.memory);
  const mu = obj(m.usage);
  const raw = obj(m.raw);
  const stats: Record<string, number> = {};
  for (const [k, v] of Object.entries(raw)) stats[k] = n(v);
  if (Object.keys(m).length) {
    out.memory_stats = v2
      ? { usage: n(mu.usage), stats, limit: n(mu.limit) }
      : { usage: n(mu.usage), max_usage: n(mu.max), stats, failcnt: n(mu.failcnt), limit: n(mu.limit) };
    const lim = out.memory_stats.limit ?? 0;
    if (machineMemory > 0 && (lim === 0 || lim > machineMemory)) out.memory_stats.limit = machineMemory;
  }
  const p = obj(cur.stats.pids);
  if ('current' in p) out.pids_stats.current = n(p.current);
  if ('limit' in p && n(p.limit) > 0) out.pids_stats.limit = n(p.limit);
  const b = obj(cur.stats.blkio);
  out.blkio_stats.io_service_bytes_recursive = blkio(b.ioServiceBytesRecursive, v2);
  out.blkio_stats.io_serviced_recursive = v2 ? null : blkio(b.ioServicedRecursive, false);
  if (cur.networks && Object.keys(cur.networks).length) out.networks = cur.networks;
  else delete out.networks;
  return out;
}

/** The first line of /proc/stat (user … steal, in USER_HZ ticks) as ns, as dockerd's getSystemCPUUsage. */
export function systemCpuNs(procStat: string): number {
  const line = procStat.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return 0;
  const f = line.trim().split(/\s+/).slice(1, 8).map(Number);
  const ticks = f.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  return ticks * (1e9 / 100);
}

// ---------------------------------------------------------------------------------------------- sampling

async function sample(sup: SupervisorClient, id: string, pid: number): Promise<Sample | undefined> {
  let s;
  try {
    s = await sup.tasks.stats(id);
  } catch (err) {
    if (isNotFound(err) || isFailedPrecondition(err)) return undefined; // not running (any more)
    throw err;
  }
  let stats: Obj = {};
  try {
    stats = obj(JSON.parse(s.stats.toString('utf8')));
  } catch {
    // keep zeroes
  }
  let systemCpuUsage = 0;
  try {
    systemCpuUsage = systemCpuNs(await readFile('/proc/stat', 'utf8'));
  } catch {
    // no /proc/stat
  }
  let networks: Record<string, NetCounters> | undefined;
  try {
    if (pid > 0) networks = parseNetDev(await readFile(`/proc/${pid}/net/dev`, 'utf8'));
  } catch {
    // gone meanwhile
  }
  return {
    cgroupVersion: s.cgroup_version,
    stats,
    systemCpuUsage,
    onlineCpus: availableParallelism(),
    read: nowRfc3339(),
    networks,
  };
}

const running = (c: ContainerRecordView): boolean => c.state.status === 'running' || c.state.status === 'paused';

export async function handleStats(daemon: Daemon, ctx: RequestContext): Promise<void> {
  const c = await daemon.containers.get(ctx.params.id as string);
  const sup = daemon.supervisor;
  const stream = ctx.bool('stream', true);
  const oneShot = ctx.bool('one-shot', false);
  if (stream && oneShot) throw badRequest('cannot have stream=true and one-shot=true');
  const task = daemon.containers.taskId(c);
  const name = c.name;
  // Network counters come from the container's own namespace; with the host's network there are none of its own.
  const netPid = c.hostConfig.NetworkMode === 'host' ? 0 : c.state.pid;
  if (!stream) {
    if (!running(c)) {
      ctx.send(emptyStats(name, c.id));
      return;
    }
    const first = await sample(sup, task, netPid);
    if (!first || oneShot) {
      ctx.send(first ? toDockerStats(name, c.id, first, undefined) : emptyStats(name, c.id));
      return;
    }
    // As dockerd: prime the CPU figures with a first sample so the answer's precpu_stats are not zero.
    await new Promise((r) => setTimeout(r, 1000));
    const second = await sample(sup, task, netPid);
    ctx.send(second ? toDockerStats(name, c.id, second, first) : emptyStats(name, c.id));
    return;
  }
  ctx.res.writeHead(200, { 'Content-Type': 'application/json' });
  ctx.res.flushHeaders();
  let closed = false;
  ctx.res.once('close', () => (closed = true));
  let prev: Sample | undefined;
  while (!closed) {
    let s: Sample | undefined;
    try {
      s = await sample(sup, task, netPid);
    } catch {
      s = undefined;
    }
    if (closed) break;
    const body = s ? toDockerStats(name, c.id, s, prev) : emptyStats(name, c.id);
    prev = s;
    if (!ctx.res.write(`${JSON.stringify(body)}\n`)) await new Promise((r) => ctx.res.once('drain', r));
    await new Promise<void>((r) => {
      const t = setTimeout(r, 1000);
      ctx.res.once('close', () => {
        clearTimeout(t);
        r();
      });
    });
  }
  if (!ctx.res.writableEnded) ctx.res.end();
}

// ---------------------------------------------------------------------------------------------- top

/** `ps` output → Docker's {Titles, Processes}, keeping the rows whose PID is one of `pids` (dockerd's parsePSOutput). */
export function parsePs(output: string, pids: Set<number>): { Titles: string[]; Processes: string[][] } {
  const lines = output.split('\n');
  const titles = (lines[0] ?? '').trim().split(/\s+/).filter(Boolean);
  const pidIndex = titles.indexOf('PID');
  if (pidIndex < 0) throw serverError("Couldn't find PID field in ps output");
  const processes: string[][] = [];
  for (const line of lines.slice(1)) {
    if (!line.trim()) continue;
    const fields = line.trim().split(/\s+/);
    const pid = Number(fields[pidIndex]);
    if (!pids.has(pid)) continue;
    const row = fields.slice(0, titles.length - 1);
    row.push(fields.slice(titles.length - 1).join(' '));
    processes.push(row);
  }
  return { Titles: titles, Processes: processes };
}

export async function handleTop(daemon: Daemon, ctx: RequestContext): Promise<void> {
  const c = await daemon.containers.get(ctx.params.id as string);
  if (c.state.status !== 'running' && c.state.status !== 'paused') throw conflict(`Container ${c.id} is not running`);
  const psArgs = (ctx.query.get('ps_args') || '-ef').trim();
  let pids: number[];
  try {
    pids = (await daemon.supervisor.tasks.pids(daemon.containers.taskId(c))).processes.map((p) => p.pid);
  } catch (err) {
    if (isNotFound(err) || isFailedPrecondition(err)) throw conflict(`Container ${c.id} is not running`);
    throw err;
  }
  const args = psArgs.split(/\s+/).filter(Boolean);
  const out = await new Promise<string>((res, rej) =>
    execFile('ps', args, { maxBuffer: 16 << 20, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) rej(serverError(`Error running ps: ${(stderr || err.message).trim()}`));
      else res(stdout);
    }),
  );
  ctx.send(parsePs(out, new Set(pids)));
}
