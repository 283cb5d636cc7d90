// Docker's stats JSON from runc's stats object (cgroup v1 and v2), /proc/stat, and `ps` parsing for top.
import { describe, expect, it } from 'vitest';
import {
  parseNetDev,
  parsePs,
  systemCpuNs,
  toDockerStats,
  type Sample,
} from '../../vm-agent/daemon/containers/stats.js';

const v1: Sample = {
  cgroupVersion: 1,
  systemCpuUsage: 5e12,
  onlineCpus: 2,
  read: '2024-01-01T00:00:02.000000001Z',
  stats: {
    cpu: {
      usage: { total: 2000, percpu: [1500, 500], kernel: 700, user: 1300 },
      throttling: { periods: 3, throttledPeriods: 1, throttledTime: 99 },
    },
    memory: {
      cache: 10,
      usage: { limit: 9223372036854771712, usage: 4096, max: 8192, failcnt: 2 },
      raw: { cache: 10, rss: 4000, total_inactive_file: 5 },
    },
    pids: { current: 3, limit: 100 },
    blkio: {
      ioServiceBytesRecursive: [{ major: 8, minor: 0, op: 'Read', value: 512 }],
      ioServicedRecursive: [{ major: 8, minor: 0, op: 'Read', value: 1 }],
    },
  },
};

describe('stats conversion', () => {
  it('cgroup v1', () => {
    const prev = {
      ...v1,
      read: '2024-01-01T00:00:01Z',
      systemCpuUsage: 4e12,
      stats: { cpu: { usage: { total: 1000 } } },
    };
    const s = toDockerStats('/web', 'abc', v1, prev, 1 << 30);
    expect(s.name).toBe('/web');
    expect(s.read).toBe(v1.read);
    expect(s.preread).toBe('2024-01-01T00:00:01Z');
    expect(s.cpu_stats).toEqual({
      cpu_usage: { total_usage: 2000, percpu_usage: [1500, 500], usage_in_kernelmode: 700, usage_in_usermode: 1300 },
      system_cpu_usage: 5e12,
      online_cpus: 2,
      throttling_data: { periods: 3, throttled_periods: 1, throttled_time: 99 },
    });
    expect(s.precpu_stats.cpu_usage.total_usage).toBe(1000);
    expect(s.precpu_stats.system_cpu_usage).toBe(4e12);
    expect(s.memory_stats).toEqual({
      usage: 4096,
      max_usage: 8192,
      failcnt: 2,
      limit: 1 << 30, // unlimited: the machine's memory
      stats: { cache: 10, rss: 4000, total_inactive_file: 5 },
    });
    expect(s.pids_stats).toEqual({ current: 3, limit: 100 });
    expect(s.blkio_stats.io_service_bytes_recursive).toEqual([{ major: 8, minor: 0, op: 'Read', value: 512 }]);
    expect(s.blkio_stats.io_serviced_recursive).toHaveLength(1);
    expect(s.networks).toBeUndefined(); // no interfaces of its own: dockerd leaves the key out
  });

  it('network counters per interface, without lo', () => {
    const netDev = [
      'Inter-|   Receive                                                |  Transmit',
      ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
      '    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0',
      '  eth0:    5000      40    1    2    0     0          0         0     3000      30    3    4    0     0       0          0',
    ].join('\n');
    const networks = parseNetDev(netDev);
    expect(networks).toEqual({
      eth0: {
        rx_bytes: 5000,
        rx_packets: 40,
        rx_errors: 1,
        rx_dropped: 2,
        tx_bytes: 3000,
        tx_packets: 30,
        tx_errors: 3,
        tx_dropped: 4,
      },
    });
    expect(toDockerStats('/x', 'id', { ...v1, networks }, undefined, 1 << 30).networks).toEqual(networks);
  });

  it('cgroup v2: no percpu, no max_usage, lower-case ops, a set limit kept', () => {
    const v2: Sample = {
      ...v1,
      cgroupVersion: 2,
      stats: {
        cpu: { usage: { total: 42, kernel: 2, user: 40 }, throttling: { periods: 1 } },
        memory: { usage: { limit: 64 << 20, usage: 1 << 20, max: 2 << 20 }, raw: { anon: 100, file: 200 } },
        pids: { current: 1 },
        blkio: { ioServiceBytesRecursive: [{ major: 254, minor: 0, op: 'Write', value: 4096 }] },
      },
    };
    const s = toDockerStats('/x', 'id', v2, undefined, 1 << 30);
    expect(s.cpu_stats.cpu_usage).toEqual({ total_usage: 42, usage_in_kernelmode: 2, usage_in_usermode: 40 });
    expect(s.precpu_stats.cpu_usage.total_usage).toBe(0);
    expect(s.preread).toBe('0001-01-01T00:00:00Z');
    expect(s.memory_stats).toEqual({ usage: 1 << 20, limit: 64 << 20, stats: { anon: 100, file: 200 } });
    expect(s.pids_stats).toEqual({ current: 1 });
    expect(s.blkio_stats.io_service_bytes_recursive).toEqual([{ major: 254, minor: 0, op: 'write', value: 4096 }]);
    expect(s.blkio_stats.io_serviced_recursive).toBeNull();
  });

  it('/proc/stat', () => {
    expect(systemCpuNs('cpu  100 0 50 1000 10 0 0 0 0 0\ncpu0 1 2 3\n')).toBe(1160 * 1e7);
  });
});

describe('top', () => {
  it('keeps the container rows; the last column takes the rest', () => {
    const ps = [
      'UID          PID    PPID  C STIME TTY          TIME CMD',
      'root           1       0  0 08:00 ?        00:00:01 /sbin/init',
      'root        4242    4200  0 08:01 ?        00:00:00 sleep 1000 with args',
      'root        4243    4242  0 08:01 ?        00:00:00 sh -c x',
    ].join('\n');
    const t = parsePs(ps, new Set([4242, 4243]));
    expect(t.Titles).toEqual(['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD']);
    expect(t.Processes).toEqual([
      ['root', '4242', '4200', '0', '08:01', '?', '00:00:00', 'sleep 1000 with args'],
      ['root', '4243', '4242', '0', '08:01', '?', '00:00:00', 'sh -c x'],
    ]);
    expect(() => parsePs('USER COMMAND\n', new Set())).toThrow(/PID/);
  });
});
