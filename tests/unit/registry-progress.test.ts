// registry/progress.ts: dockerd's progress bar string, sizes and durations, error lines, throttling.
import { describe, expect, it } from 'vitest';
import type { ProgressMessage } from '../../vm-agent/daemon/contracts.js';
import {
  goDuration,
  humanSize,
  layerStatus,
  progressBar,
  progressError,
  shortId,
  TransferProgress,
} from '../../vm-agent/daemon/registry/progress.js';

describe('progress formatting', () => {
  it('sizes as go-units HumanSize', () => {
    expect(humanSize(0)).toBe('0B');
    expect(humanSize(512)).toBe('512B');
    expect(humanSize(2100)).toBe('2.1kB');
    expect(humanSize(1234567)).toBe('1.235MB');
    expect(humanSize(999999)).toBe('1000kB');
    expect(humanSize(5e9)).toBe('5GB');
  });

  it('durations as Go prints them', () => {
    expect(goDuration(0)).toBe('0s');
    expect(goDuration(42.4)).toBe('42s');
    expect(goDuration(65)).toBe('1m5s');
    expect(goDuration(7203)).toBe('2h0m3s');
  });

  it('draws the bar, the counts and the time left', () => {
    const start = 1000;
    // half way after 10 s: 10 s left
    expect(progressBar(500_000, 1_000_000, start, (start + 10) * 1000)).toBe(
      `[${'='.repeat(25)}>${' '.repeat(25)}]    500kB/1MB 10s`,
    );
    expect(progressBar(1_000_000, 1_000_000, start, (start + 10) * 1000)).toBe(
      `[${'='.repeat(50)}>] ${'1MB'.padStart(8)}/1MB`,
    );
    expect(progressBar(0, 100)).toBe(`[>${' '.repeat(50)}] ${'0B'.padStart(8)}/100B`);
    expect(progressBar(0, 0)).toBe('');
    expect(progressBar(2048, 0)).toBe(' 2.048kB');
    expect(progressBar(200, 100)).toBe(`[${'='.repeat(50)}>] ${'200B'.padStart(8)}`);
  });

  it('makes layer lines, short ids and error lines', () => {
    expect(shortId('sha256:0123456789abcdef0123')).toBe('0123456789ab');
    expect(layerStatus('Pull complete', 'abc')).toEqual({ status: 'Pull complete', progressDetail: {}, id: 'abc' });
    expect(progressError(new Error('boom'))).toEqual({ errorDetail: { message: 'boom' }, error: 'boom' });
    expect(JSON.stringify(layerStatus('Waiting', 'x'))).toBe('{"status":"Waiting","progressDetail":{},"id":"x"}');
  });

  it('throttles transfer updates but always reports the end', () => {
    const seen: ProgressMessage[] = [];
    const tp = new TransferProgress((m) => seen.push(m), 'Downloading', 'id1', 1000, 60_000);
    for (let i = 0; i < 10; i++) tp.add(100);
    expect(seen.length).toBe(2); // the first and the last
    expect(seen[1]).toMatchObject({ status: 'Downloading', progressDetail: { current: 1000, total: 1000 }, id: 'id1' });
    expect(seen[1]!.progress).toContain('1kB/1kB');
  });
});
