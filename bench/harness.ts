// The benchmark harness: runs Skiff and its peers ALTERNATELY in one process (skiff, peer1, peer2, skiff, ...),
// so that a change in the machine's load hits every candidate alike, then prints each candidate's median, min and
// max beside the others and the ratio of each peer's median to the base's (the base is Skiff, the first candidate).
// `npm run bench -- <name>` runs bench/<name>.ts, which builds its candidates and calls `main`.

/** One iteration's result: its total time in ms, and optionally the time of each of its phases. */
export interface Sample {
  total: number;
  phases?: Record<string, number>;
}

export interface Candidate {
  name: string;
  /** Measures one iteration, in milliseconds. A throw marks the candidate failed and drops it from later rounds. */
  iterate: () => Promise<number | Sample> | number | Sample;
  /** When set, the candidate is not run and is reported as unavailable, with this reason. */
  unavailable?: string;
}

export interface Stats {
  n: number;
  median: number;
  min: number;
  max: number;
  mean: number;
}

export interface CandidateResult {
  name: string;
  samples: number[];
  phaseSamples: Record<string, number[]>;
  /** Why the candidate has no (or incomplete) figures: unavailable, or the error of the iteration that failed. */
  error?: string;
  /** Further figures measured by the benchmark itself (peak RSS, say), shown as extra columns. */
  extra: Record<string, string>;
}

export interface RunOptions {
  /** Counted iterations per candidate. */
  n: number;
  /** Rounds run first and not counted. */
  warmup: number;
  onRound?: (round: number, rounds: number) => void;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('median of no samples');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function summarize(xs: readonly number[]): Stats {
  if (xs.length === 0) throw new RangeError('summary of no samples');
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (const x of xs) {
    if (!Number.isFinite(x)) throw new RangeError(`sample is not a finite number: ${x}`);
    min = Math.min(min, x);
    max = Math.max(max, x);
    sum += x;
  }
  return { n: xs.length, median: median(xs), min, max, mean: sum / xs.length };
}

/** The raw ratio: the peer's median over the base's. Above 1 the base is faster. */
export function ratio(baseMedian: number, peerMedian: number): number {
  if (!(baseMedian > 0) || !(peerMedian > 0)) throw new RangeError('ratio needs two positive medians');
  return peerMedian / baseMedian;
}

/** "skiff-runtime is 1.80x faster than crun", "... 2.10x slower than crun", or "... as fast as crun". */
export function describeRatio(base: string, peer: string, r: number): string {
  const shown = r >= 1 ? r : 1 / r;
  if (shown.toFixed(2) === '1.00') return `${base} is as fast as ${peer}`;
  return `${base} is ${shown.toFixed(2)}x ${r >= 1 ? 'faster' : 'slower'} than ${peer}`;
}

export function formatMs(ms: number): string {
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** Aligns rows into columns: text left-aligned in the first column, right-aligned in the others. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const cols = Math.max(0, ...rows.map((r) => r.length));
  const width = Array.from({ length: cols }, (_, c) => Math.max(0, ...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map((r) =>
      width
        .map((w, c) => {
          const cell = r[c] ?? '';
          // The last column is free text: left-aligned and not padded.
          if (c === cols - 1) return cell;
          return c === 0 ? cell.padEnd(w) : cell.padStart(w);
        })
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Runs the candidates alternately: `warmup` rounds not counted, then `n` counted rounds. */
export async function runAlternating(candidates: readonly Candidate[], opts: RunOptions): Promise<CandidateResult[]> {
  const results = candidates.map<CandidateResult>((c) => ({
    name: c.name,
    samples: [],
    phaseSamples: {},
    extra: {},
    ...(c.unavailable !== undefined ? { error: c.unavailable } : {}),
  }));
  const rounds = opts.warmup + opts.n;
  for (let round = 0; round < rounds; round++) {
    opts.onRound?.(round, rounds);
    for (const [i, c] of candidates.entries()) {
      const res = results[i]!;
      if (res.error !== undefined) continue;
      let sample: Sample;
      try {
        const out = await c.iterate();
        sample = typeof out === 'number' ? { total: out } : out;
        if (!Number.isFinite(sample.total)) throw new Error(`iteration returned ${sample.total}`);
      } catch (e) {
        res.error = `failed in ${round < opts.warmup ? 'warm-up' : 'counted'} round ${round + 1}: ${errorText(e)}`;
        continue;
      }
      if (round < opts.warmup) continue;
      res.samples.push(sample.total);
      for (const [phase, ms] of Object.entries(sample.phases ?? {})) (res.phaseSamples[phase] ??= []).push(ms);
    }
  }
  return results;
}

export interface ReportJson {
  bench: string;
  n: number;
  warmup: number;
  base: string | null;
  notes: string[];
  candidates: {
    name: string;
    ok: boolean;
    error?: string;
    stats?: Stats;
    /** The peer's median over the base's (only for peers, when both have figures). */
    ratio?: number;
    comparison?: string;
    phases: Record<string, Stats>;
    extra: Record<string, string>;
  }[];
}

/** The base is the first candidate with figures (Skiff, unless it failed or was left out with --only). */
export function toJson(
  bench: string,
  opts: { n: number; warmup: number },
  results: readonly CandidateResult[],
  notes: string[] = [],
): ReportJson {
  const usable = (r: CandidateResult) => r.error === undefined && r.samples.length > 0;
  const baseRes = results.find(usable);
  const baseStats = baseRes ? summarize(baseRes.samples) : undefined;
  return {
    bench,
    n: opts.n,
    warmup: opts.warmup,
    base: baseRes?.name ?? null,
    notes,
    candidates: results.map((r) => {
      const stats = r.samples.length > 0 ? summarize(r.samples) : undefined;
      const phases = Object.fromEntries(Object.entries(r.phaseSamples).map(([k, v]) => [k, summarize(v)]));
      const out: ReportJson['candidates'][number] = { name: r.name, ok: usable(r), phases, extra: r.extra };
      if (r.error !== undefined) out.error = r.error;
      if (stats) out.stats = stats;
      if (stats && baseStats && baseRes && r !== baseRes && usable(r)) {
        out.ratio = ratio(baseStats.median, stats.median);
        out.comparison = describeRatio(baseRes.name, r.name, out.ratio);
      }
      return out;
    }),
  };
}

/** The human report: a table of medians, min, max, ratios and extra columns, then a table of phases. */
export function formatReport(report: ReportJson): string {
  const extraCols = [...new Set(report.candidates.flatMap((c) => Object.keys(c.extra)))];
  const rows: string[][] = [['candidate', 'n', 'median', 'min', 'max', ...extraCols, 'ratio', 'comparison']];
  for (const c of report.candidates) {
    const s = c.stats;
    const extras = extraCols.map((k) => c.extra[k] ?? '-');
    const cmp = c.error !== undefined ? `FAILED: ${c.error}` : c.name === report.base ? '(base)' : (c.comparison ?? '');
    rows.push([
      c.name,
      s ? String(s.n) : '0',
      s ? formatMs(s.median) : '-',
      s ? formatMs(s.min) : '-',
      s ? formatMs(s.max) : '-',
      ...extras,
      c.ratio !== undefined ? c.ratio.toFixed(2) : c.name === report.base ? '1.00' : '-',
      cmp,
    ]);
  }
  const parts = [
    `bench ${report.bench}: n=${report.n} per candidate after ${report.warmup} warm-up round(s), run alternately`,
    formatTable(rows),
    "ratio = the candidate's median / the base's median (above 1: the base is faster)",
  ];
  const phaseNames = [...new Set(report.candidates.flatMap((c) => Object.keys(c.phases)))];
  if (phaseNames.length > 0) {
    const prow: string[][] = [['median per phase', ...phaseNames, '']];
    for (const c of report.candidates) {
      if (Object.keys(c.phases).length === 0) continue;
      prow.push([c.name, ...phaseNames.map((p) => (c.phases[p] ? formatMs(c.phases[p].median) : '-')), '']);
    }
    parts.push('', formatTable(prow));
  }
  if (report.notes.length > 0) parts.push('', ...report.notes.map((n) => `note: ${n}`));
  return parts.join('\n');
}

export interface BenchArgs {
  n: number;
  warmup: number;
  json: boolean;
  only: string[] | null;
}

export function parseBenchArgs(argv: readonly string[], defaults: { n: number; warmup?: number }): BenchArgs {
  const out: BenchArgs = { n: defaults.n, warmup: defaults.warmup ?? 1, json: false, only: null };
  const positiveInt = (name: string, v: string | undefined, min: number): number => {
    const x = Number(v);
    if (v === undefined || !Number.isInteger(x) || x < min) throw new Error(`${name} needs an integer >= ${min}`);
    return x;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--n':
        out.n = positiveInt('--n', value(), 1);
        break;
      case '--warmup':
        out.warmup = positiveInt('--warmup', value(), 0);
        break;
      case '--json':
        out.json = true;
        break;
      case '--only': {
        const v = value();
        if (!v) throw new Error('--only needs a comma-separated list of candidates');
        out.only = v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        break;
      }
      default:
        throw new Error(`unknown argument ${arg} (options: --n N, --warmup N, --only a,b, --json)`);
    }
  }
  return out;
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
