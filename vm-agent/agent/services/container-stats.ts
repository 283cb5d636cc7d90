// Containers.Stats: GET /containers/{id}/stats as JSON lines, each turned into a StatsSample with the figures the
// docker CLI shows (`docker stats`: CPU % from the delta to precpu_stats, memory without the inactive page cache).
import type { ServerWritableStream } from '@grpc/grpc-js';
import { unavailable } from '../../common/errors.js';
import { type Timestamp } from '../../common/timestamp.js';
import type { Engine } from '../contracts.js';
import { LineSplitter } from '../frames.js';
import { drained, timestamp } from '../grpc.js';

/** The parts of Docker's stats JSON we read (cgroup v1 and v2 alike; skiffd fills the same fields as dockerd). */
export interface DockerStats {
  read?: string;
  pids_stats?: { current?: number } | null;
  blkio_stats?: { io_service_bytes_recursive?: Array<{ op?: string; value?: number }> | null } | null;
  cpu_stats?: CpuStats | null;
  precpu_stats?: CpuStats | null;
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> | null } | null;
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }> | null;
}

interface CpuStats {
  cpu_usage?: { total_usage?: number; percpu_usage?: number[] | null };
  system_cpu_usage?: number;
  online_cpus?: number;
}

export interface StatsSampleMsg {
  read: Timestamp | null;
  cpu_percent: number;
  memory_usage: number;
  memory_limit: number;
  memory_percent: number;
  network_rx: number;
  network_tx: number;
  block_read: number;
  block_write: number;
  pids: number;
}

export interface StatsRequestMsg {
  id: string;
  stream: boolean;
}

/** CPU use as a percentage of one CPU (200 = two busy), as the CLI's calculateCPUPercentUnix. */
export function cpuPercent(s: DockerStats): number {
  const cur = s.cpu_stats;
  const pre = s.precpu_stats;
  // A stream's first sample has no previous one: the delta would be the container's whole life against the host's
  // uptime, a meaningless figure (the CLI shows it; we say 0 until there are two samples).
  if (!pre?.system_cpu_usage) return 0;
  const cpuDelta = (cur?.cpu_usage?.total_usage ?? 0) - (pre?.cpu_usage?.total_usage ?? 0);
  const systemDelta = (cur?.system_cpu_usage ?? 0) - (pre?.system_cpu_usage ?? 0);
  const online = cur?.online_cpus || cur?.cpu_usage?.percpu_usage?.length || 0;
  if (systemDelta > 0 && cpuDelta > 0) return (cpuDelta / systemDelta) * online * 100;
  return 0;
}

/** Memory in use without the inactive page cache (cgroup v1: total_inactive_file; v2: inactive_file), as the CLI. */
export function memoryUsage(s: DockerStats): number {
  const usage = s.memory_stats?.usage ?? 0;
  const stats = s.memory_stats?.stats ?? {};
  const v1 = stats.total_inactive_file;
  if (v1 !== undefined && v1 < usage) return usage - v1;
  const v2 = stats.inactive_file ?? 0;
  if (v2 < usage) return usage - v2;
  return usage;
}

/** One engine stats document as a StatsSample. */
export function statsSample(s: DockerStats): StatsSampleMsg {
  const mem = memoryUsage(s);
  const limit = s.memory_stats?.limit ?? 0;
  let rx = 0;
  let tx = 0;
  for (const n of Object.values(s.networks ?? {})) {
    rx += n.rx_bytes ?? 0;
    tx += n.tx_bytes ?? 0;
  }
  let blockRead = 0;
  let blockWrite = 0;
  for (const e of s.blkio_stats?.io_service_bytes_recursive ?? []) {
    const op = (e.op ?? '').toLowerCase();
    if (op === 'read') blockRead += e.value ?? 0;
    else if (op === 'write') blockWrite += e.value ?? 0;
  }
  return {
    read: timestamp(s.read),
    cpu_percent: cpuPercent(s),
    memory_usage: mem,
    memory_limit: limit,
    memory_percent: limit > 0 ? (mem / limit) * 100 : 0,
    network_rx: rx,
    network_tx: tx,
    block_read: blockRead,
    block_write: blockWrite,
    pids: s.pids_stats?.current ?? 0,
  };
}

export const STATS_ENGINE_GONE = 'the engine restarted; reopen the stats';

/** The Stats handler's body: samples until the engine ends the stream (one with stream=false), or the client goes. */
export async function streamStats(
  engine: Engine,
  req: StatsRequestMsg,
  write: (m: StatsSampleMsg) => boolean,
  call: ServerWritableStream<StatsRequestMsg, StatsSampleMsg>,
  signal: AbortSignal,
): Promise<void> {
  const res = await engine.docker.stream('GET', `/containers/${encodeURIComponent(req.id)}/stats`, {
    query: { stream: req.stream },
    signal,
  });
  const lines = new LineSplitter();
  const send = async (line: Buffer): Promise<void> => {
    const text = line.toString('utf8').trim();
    if (text === '') return;
    if (!write(statsSample(JSON.parse(text) as DockerStats))) await drained(call);
  };
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) for (const line of lines.push(chunk)) await send(line);
  } catch (err) {
    if (signal.aborted) return;
    // The response broke off: skiffd died or was restarted under us.
    if (!res.complete) throw unavailable(STATS_ENGINE_GONE);
    throw err;
  }
  if (signal.aborted) return;
  if (!res.complete) throw unavailable(STATS_ENGINE_GONE);
  const rest = lines.flush();
  if (rest) await send(rest);
}
