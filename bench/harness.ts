// The benchmark harness: runs Skiff and its peers ALTERNATELY in one process (skiff, peer1, peer2, skiff, ...),
// so that a change in the machine's load hits every candidate alike, then prints each candidate's median, min and
// max beside the others and the ratio of each peer's median to the base's (the base is Skiff, the first candidate).
// `npm run bench -- <name>` runs bench/<name>.ts, which builds its candidates and calls `main`.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { createInterface } from 'node:readline';

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

/** Quotes one argument for bash: inside single quotes, each ' written as '\''. */
export function shellQuote(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** One command timed by a TimedShell: its exit code, wall time in ms and what it wrote to stderr. */
export interface TimedRun {
  code: number;
  ms: number;
  stderr: string;
}

/**
 * A long-lived bash that runs commands one at a time and times each with $EPOCHREALTIME around the exec, so that a
 * CLI peer (ctr, say) is timed without Node's own spawn cost (about 2 ms a spawn) in its figure. stdin and stdout of
 * each command are /dev/null; its stderr goes to a file (not a pipe: a container's process may inherit it) and comes
 * back with the result.
 */
export class TimedShell {
  private static readonly SCRIPT = `
err=$1
while IFS= read -r line; do
  eval "cmd=($line)"
  t0=$EPOCHREALTIME
  "\${cmd[@]}" </dev/null >/dev/null 2>>"$err"
  rc=$?
  t1=$EPOCHREALTIME
  echo "$rc $(( \${t1/./} - \${t0/./} ))"
done
`;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly errFd: number;
  private readonly replies: string[] = [];
  private waiting: ((line: string | null) => void) | null = null;
  private closed = false;
  private fdClosed = false;
  private queue: Promise<unknown> = Promise.resolve();

  /** errPath: the file every command's stderr is appended to (created if missing). */
  constructor(private readonly errPath: string) {
    this.errFd = openSync(errPath, 'a+');
    // Its own process group, so that kill() takes the command it is running along.
    this.child = spawn('bash', ['-c', TimedShell.SCRIPT, 'timed-shell', errPath], { stdio: 'pipe', detached: true });
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      const w = this.waiting;
      if (w) {
        this.waiting = null;
        w(line);
      } else this.replies.push(line);
    });
    this.child.on('close', () => {
      this.closed = true;
      this.waiting?.(null);
    });
    this.child.stdin.on('error', () => {
      /* the shell died: close() has reported it */
    });
  }

  /** Runs argv (no newlines allowed in it) and resolves with its exit code, time and stderr; never rejects on a
   *  non-zero exit, only when the shell itself is gone. */
  run(argv: readonly string[]): Promise<TimedRun> {
    // One command at a time: a call made while another runs waits for it.
    const next = this.queue.then(() => this.runNow(argv));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runNow(argv: readonly string[]): Promise<TimedRun> {
    if (argv.length === 0) throw new Error('TimedShell.run: empty command');
    if (argv.some((a) => a.includes('\n'))) throw new Error('TimedShell.run: newline in an argument');
    if (this.closed) throw new Error('TimedShell: the shell has exited');
    const from = fstatSync(this.errFd).size;
    this.child.stdin.write(`${argv.map(shellQuote).join(' ')}\n`);
    const line = this.replies.shift() ?? (await new Promise<string | null>((res) => (this.waiting = res)));
    if (line === null) throw new Error('TimedShell: the shell has exited');
    const [code, us] = line.split(' ').map(Number) as [number, number];
    const size = fstatSync(this.errFd).size;
    let stderr = '';
    if (size > from) {
      const buf = Buffer.alloc(Math.min(size - from, 4000));
      readSync(this.errFd, buf, 0, buf.length, size - buf.length);
      stderr = buf.toString('utf8').trim();
    }
    return { code, ms: us / 1000, stderr };
  }

  /** Like run, but throws (with the command's stderr) when it exits non-zero. */
  async check(argv: readonly string[]): Promise<number> {
    const r = await this.run(argv);
    if (r.code !== 0) {
      const msg = r.stderr.replace(/\s+/g, ' ').slice(-600);
      throw new Error(`${argv.slice(0, 6).join(' ')}${argv.length > 6 ? ' ...' : ''}: exit ${r.code}: ${msg}`);
    }
    return r.ms;
  }

  /** Lets the shell exit after the command it runs, if any. */
  close(): void {
    if (!this.closed) this.child.stdin.end();
    if (!this.fdClosed) closeSync(this.errFd);
    this.fdClosed = true;
  }

  /** SIGKILLs the shell and the command it runs now (an interrupted bench); a pending run rejects. */
  kill(): void {
    try {
      if (!this.closed && this.child.pid) process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

/** Resident memory of a process, in KiB: VmRSS from /proc/<pid>/status and Pss from /proc/<pid>/smaps_rollup
 *  (Pss is undefined where smaps_rollup is missing or unreadable). Throws when the process is gone. */
export function readMemory(pid: number): { rssKiB: number; pssKiB?: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!rss) throw new Error(`pid ${pid} has no VmRSS (a zombie or a kernel thread?)`);
  const out: { rssKiB: number; pssKiB?: number } = { rssKiB: Number(rss[1]) };
  try {
    const pss = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    if (pss) out.pssKiB = Number(pss[1]);
  } catch {
    /* no smaps_rollup (kernel < 4.14) */
  }
  return out;
}

/** 13164 -> "12.9 MiB", 900 -> "900 KiB". */
export function formatKiB(kib: number): string {
  if (kib >= 1024) return `${(kib / 1024).toFixed(1)} MiB`;
  return `${Math.round(kib)} KiB`;
}
