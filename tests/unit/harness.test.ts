import { describe, expect, it } from 'vitest';
import {
  type Candidate,
  describeRatio,
  formatMs,
  formatReport,
  formatTable,
  median,
  parseBenchArgs,
  ratio,
  runAlternating,
  summarize,
  toJson,
} from '../../bench/harness.js';

describe('statistics', () => {
  it('median of an odd count is the middle value, whatever the order', () => {
    expect(median([9, 1, 5])).toBe(5);
    expect(median([3])).toBe(3);
  });

  it('median of an even count is the mean of the two middle values', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('median does not reorder its input', () => {
    const xs = [3, 1, 2];
    median(xs);
    expect(xs).toEqual([3, 1, 2]);
  });

  it('median and summarize refuse no samples', () => {
    expect(() => median([])).toThrow(RangeError);
    expect(() => summarize([])).toThrow(RangeError);
  });

  it('summarize gives n, median, min, max and mean', () => {
    expect(summarize([10, 2, 6, 4])).toEqual({ n: 4, median: 5, min: 2, max: 10, mean: 5.5 });
  });

  it('summarize refuses a sample that is not a finite number', () => {
    expect(() => summarize([1, Number.NaN])).toThrow(/finite/);
    expect(() => summarize([1, Infinity])).toThrow(/finite/);
  });
});

describe('ratio', () => {
  it("is the peer's median over the base's", () => {
    expect(ratio(10, 18)).toBeCloseTo(1.8);
    expect(ratio(20, 10)).toBe(0.5);
  });

  it('refuses zero or negative medians', () => {
    expect(() => ratio(0, 1)).toThrow(RangeError);
    expect(() => ratio(1, -1)).toThrow(RangeError);
  });

  it('describes faster, slower and equal', () => {
    expect(describeRatio('skiff-runtime', 'crun', 1.8)).toBe('skiff-runtime is 1.80x faster than crun');
    expect(describeRatio('skiff-runtime', 'runc', 0.5)).toBe('skiff-runtime is 2.00x slower than runc');
    expect(describeRatio('a', 'b', 1.001)).toBe('a is as fast as b');
    expect(describeRatio('a', 'b', 0.999)).toBe('a is as fast as b');
  });
});

describe('formatting', () => {
  it('formats milliseconds with sensible precision', () => {
    expect(formatMs(1.234)).toBe('1.23 ms');
    expect(formatMs(31.25)).toBe('31.3 ms');
    expect(formatMs(245.4)).toBe('245 ms');
    expect(formatMs(1500)).toBe('1.50 s');
  });

  it('aligns a table: first column left, numbers right, last column free text', () => {
    const out = formatTable([
      ['name', 'median', 'note'],
      ['skiff-runtime', '8.1 ms', '(base)'],
      ['crun', '14.0 ms', 'slower'],
    ]).split('\n');
    expect(out).toEqual([
      'name            median  note',
      'skiff-runtime   8.1 ms  (base)',
      'crun           14.0 ms  slower',
    ]);
  });

  it('reports the base first, ratios for peers and failures with their reason', () => {
    const json = toJson('demo', { n: 3, warmup: 1 }, [
      { name: 'skiff', samples: [10, 10, 10], phaseSamples: { create: [4, 5, 6] }, extra: { rss: '1.0 MB' } },
      { name: 'crun', samples: [15, 15, 15], phaseSamples: {}, extra: { rss: '3.3 MB' } },
      { name: 'gone', samples: [], phaseSamples: {}, extra: {}, error: 'not built' },
    ]);
    expect(json.base).toBe('skiff');
    const [skiff, crun, gone] = json.candidates;
    expect(skiff?.ratio).toBeUndefined();
    expect(crun?.ratio).toBe(1.5);
    expect(crun?.comparison).toBe('skiff is 1.50x faster than crun');
    expect(gone?.ok).toBe(false);
    expect(skiff?.phases.create?.median).toBe(5);

    const text = formatReport(json);
    expect(text).toMatch(/^skiff\s+3\s+10\.0 ms\s+10\.0 ms\s+10\.0 ms\s+1\.0 MB\s+1\.00\s+\(base\)$/m);
    expect(text).toMatch(/^crun\s+3\s+15\.0 ms.*3\.3 MB\s+1\.50\s+skiff is 1\.50x faster than crun$/m);
    expect(text).toMatch(/^gone\s+0\s+-.*FAILED: not built$/m);
    expect(text).toMatch(/median per phase\s+create/);
  });

  it('takes the first candidate with figures as base when Skiff has none', () => {
    const json = toJson('demo', { n: 1, warmup: 0 }, [
      { name: 'skiff', samples: [], phaseSamples: {}, extra: {}, error: 'not built' },
      { name: 'runc', samples: [30], phaseSamples: {}, extra: {} },
      { name: 'crun', samples: [15], phaseSamples: {}, extra: {} },
    ]);
    expect(json.base).toBe('runc');
    expect(json.candidates[2]?.comparison).toBe('runc is 2.00x slower than crun');
  });
});

describe('runAlternating', () => {
  it('runs candidates alternately, warm-up rounds first and not counted', async () => {
    const calls: string[] = [];
    const make = (name: string, ms: number): Candidate => ({
      name,
      iterate: async () => {
        calls.push(name);
        return ms;
      },
    });
    const res = await runAlternating([make('skiff', 1), make('runc', 2), make('crun', 3)], { n: 2, warmup: 1 });
    expect(calls).toEqual(['skiff', 'runc', 'crun', 'skiff', 'runc', 'crun', 'skiff', 'runc', 'crun']);
    expect(res.map((r) => r.samples)).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
  });

  it('drops a candidate whose iteration throws, keeps its error, and goes on with the others', async () => {
    let n = 0;
    const res = await runAlternating(
      [
        {
          name: 'flaky',
          iterate: () => {
            if (++n === 2) throw new Error('boom');
            return 1;
          },
        },
        { name: 'ok', iterate: () => ({ total: 2, phases: { a: 1, b: 1 } }) },
      ],
      { n: 3, warmup: 0 },
    );
    expect(n).toBe(2);
    expect(res[0]?.error).toBe('failed in counted round 2: boom');
    expect(res[0]?.samples).toEqual([1]);
    expect(res[1]?.samples).toEqual([2, 2, 2]);
    expect(res[1]?.phaseSamples).toEqual({ a: [1, 1, 1], b: [1, 1, 1] });
  });

  it('never runs an unavailable candidate', async () => {
    let ran = false;
    const res = await runAlternating(
      [
        {
          name: 'missing',
          unavailable: 'not built',
          iterate: () => {
            ran = true;
            return 1;
          },
        },
      ],
      { n: 2, warmup: 1 },
    );
    expect(ran).toBe(false);
    expect(res[0]?.error).toBe('not built');
  });
});

describe('parseBenchArgs', () => {
  it('has defaults and reads --n, --warmup, --only and --json in both spellings', () => {
    expect(parseBenchArgs([], { n: 50 })).toEqual({ n: 50, warmup: 1, json: false, only: null });
    expect(parseBenchArgs(['--n', '7', '--warmup=0', '--only', 'runc, crun', '--json'], { n: 50 })).toEqual({
      n: 7,
      warmup: 0,
      json: true,
      only: ['runc', 'crun'],
    });
  });

  it('refuses bad values and unknown arguments', () => {
    expect(() => parseBenchArgs(['--n', '0'], { n: 5 })).toThrow(/--n/);
    expect(() => parseBenchArgs(['--n'], { n: 5 })).toThrow(/--n/);
    expect(() => parseBenchArgs(['--n', '2.5'], { n: 5 })).toThrow(/--n/);
    expect(() => parseBenchArgs(['--fast'], { n: 5 })).toThrow(/unknown argument --fast/);
  });
});
