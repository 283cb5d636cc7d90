// skiff.agent.v1.Vm: how busy the machine the engine runs on is (the VM, or this host in native mode), from /proc
// and statfs of the engine's data root.
import { existsSync, readFileSync, statfsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import type { Engine, ServiceFactory } from '../contracts.js';
import { unary } from '../grpc.js';

interface CpuSample {
  at: number;
  busy: number;
  total: number;
}

/** The aggregate "cpu" line of /proc/stat: busy is everything but idle and iowait. */
export function cpuSample(stat = readFileSync('/proc/stat', 'utf8')): CpuSample {
  const line = stat.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) throw new Error('/proc/stat has no "cpu" line');
  // user nice system idle iowait irq softirq steal (guest time is already inside user and nice)
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { at: Date.now(), busy: total - idle, total };
}

export function cpuPercent(a: CpuSample, b: CpuSample): number {
  const total = b.total - a.total;
  if (total <= 0) return 0;
  return Math.min(100, Math.max(0, ((b.busy - a.busy) / total) * 100));
}

/** MemTotal and MemAvailable of /proc/meminfo, in bytes. */
export function memInfo(text = readFileSync('/proc/meminfo', 'utf8')): { total: number; available: number } {
  const kb = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : 0;
  };
  return { total: kb('MemTotal'), available: kb('MemAvailable') };
}

/** The closest existing directory (the data root may not be made yet). */
function existing(path: string): string {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class UsageSampler {
  private last: CpuSample | undefined;

  /** Busy share over about the last second: since the previous call when that is recent, else over a fresh 1 s. */
  async cpu(): Promise<number> {
    const prev = this.last;
    const now = cpuSample();
    this.last = now;
    if (prev && now.at - prev.at >= 250 && now.at - prev.at <= 5000) return cpuPercent(prev, now);
    await sleep(1000);
    const after = cpuSample();
    this.last = after;
    return cpuPercent(now, after);
  }

  async usage(dataRoot: string): Promise<Record<string, unknown>> {
    const cpuPct = await this.cpu();
    const mem = memInfo();
    const fs = statfsSync(existing(dataRoot));
    const diskTotal = fs.blocks * fs.bsize;
    const diskUsed = (fs.blocks - fs.bfree) * fs.bsize;
    const load1 = Number(readFileSync('/proc/loadavg', 'utf8').split(/\s+/)[0]);
    const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(/\s+/)[0]);
    return {
      cpus: availableParallelism(),
      cpu_percent: Math.round(cpuPct * 10) / 10,
      memory_total: String(mem.total),
      memory_used: String(Math.max(0, mem.total - mem.available)),
      disk_total: String(diskTotal),
      disk_used: String(diskUsed),
      load1,
      uptime_seconds: uptime,
    };
  }
}

export const vmService: ServiceFactory = (engine: Engine) => {
  const sampler = new UsageSampler();
  return {
    Usage: unary(() => sampler.usage(engine.config.dataRoot)),
  };
};
