// bench/runtime (issue 2): create + start + wait-for-exit + delete of busybox `/bin/true`, alternating
// skiff-runtime (dist/bin/skiff-runtime) with Debian's runc and crun on the same bundle, plus the peak RSS of one
// `create` of each. Needs root. Usage: npm run bench -- runtime [--n 50] [--warmup 1] [--only runc,crun] [--json]
//
// This host is cgroup v1 "hybrid" and its unified hierarchy still owns a controller, which crun refuses. As in
// ../shared/lab/runtime-baseline.sh, the whole bench runs in a private mount namespace (it re-executes itself
// under `unshare -m --propagation private`) where /sys/fs/cgroup/unified/cgroup.controllers is masked by an empty
// file, so that every runtime runs in the same place and the host is untouched.
import { inPrivateMountNamespace } from './procs.js';
import { spawn, spawnSync } from 'node:child_process';
import {
  accessSync,
  chmodSync,
  closeSync,
  constants,
  copyFileSync,
  existsSync,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type Candidate,
  type CandidateResult,
  errorText,
  formatMs,
  formatReport,
  median,
  parseBenchArgs,
  runAlternating,
  type Sample,
  toJson,
} from './harness.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const NS_ENV = 'SKIFF_BENCH_MOUNTNS';
const CONTROLLERS = '/sys/fs/cgroup/unified/cgroup.controllers';
const RSS_SAMPLES = 5;

const args = (() => {
  try {
    return parseBenchArgs(process.argv.slice(2), { n: 50 });
  } catch (e) {
    console.error(`bench runtime: ${errorText(e)}`);
    process.exit(2);
  }
})();
const log = (msg: string) => console.error(msg);

if (process.getuid?.() !== 0) {
  log('bench runtime: needs root (namespaces, mounts, cgroups): run it as root, e.g. `sudo npm run bench -- runtime`');
  process.exit(1);
}

inPrivateMountNamespace(NS_ENV, 'runtime');

interface Runtime {
  name: string;
  bin: string;
  root: string;
  errPath: string;
  errFd: number;
  /** Containers created and not yet deleted, removed by `delete -f` at the end. */
  live: Set<string>;
}

const work = mkdtempSync(join(tmpdir(), 'skiff-bench-runtime-'));

async function main(): Promise<number> {
  const notes: string[] = [];
  notes.push(maskControllers());
  const bundle = makeBundle(join(work, 'bundle'));

  const all = [
    { name: 'skiff-runtime', bin: join(repo, 'dist/bin/skiff-runtime') },
    { name: 'runc', bin: which('runc') ?? 'runc' },
    { name: 'crun', bin: which('crun') ?? 'crun' },
  ];
  if (args.only) {
    const unknown = args.only.filter((n) => !all.some((r) => r.name === n));
    if (unknown.length > 0)
      throw new Error(`--only: unknown runtime ${unknown.join(', ')} (have ${all.map((r) => r.name)})`);
  }
  const chosen = all.filter((r) => !args.only || args.only.includes(r.name));
  const runtimes: Runtime[] = chosen.map((r) => {
    const errPath = join(work, `${r.name}.stderr`);
    return { ...r, root: join(work, 'state', r.name), errPath, errFd: openSync(errPath, 'a+'), live: new Set() };
  });

  const driver = new Driver();
  const candidates: Candidate[] = runtimes.map((rt) => {
    const unavailable = probe(rt);
    let i = 0;
    return {
      name: rt.name,
      iterate: () => iteration(driver, rt, bundle, `bench-${rt.name}-${i++}`),
      ...(unavailable ? { unavailable } : {}),
    };
  });
  for (const c of candidates) {
    if (c.unavailable) log(`bench runtime: ${c.name} is not available: ${c.unavailable}`);
  }

  log(`bench runtime: ${runtimes.map((r) => r.name).join(', ')} alternately, n=${args.n}, warm-up ${args.warmup}`);
  const results = await runAlternating(candidates, {
    n: args.n,
    warmup: args.warmup,
    onRound: (round, rounds) => {
      if (!args.json && process.stderr.isTTY) process.stderr.write(`\r  round ${round + 1}/${rounds}`);
    },
  });
  if (!args.json && process.stderr.isTTY) process.stderr.write('\n');

  driver.close();
  measureRss(runtimes, results, bundle, notes);
  notes.push(spawnFloor());
  for (const rt of runtimes) cleanup(rt, bundle);

  const report = toJson('runtime', args, results, notes);
  if (args.json) console.log(JSON.stringify(report, null, 2));
  else console.log(formatReport(report));
  const failed = report.candidates.filter((c) => !c.ok);
  for (const c of failed) log(`bench runtime: ${c.name}: ${c.error}`);
  return failed.length > 0 ? 1 : 0;
}

/** Masks the unified hierarchy's controller list (crun refuses hybrid hosts). Only in this mount namespace. */
function maskControllers(): string {
  if (!existsSync(CONTROLLERS)) return `cgroups: ${CONTROLLERS} absent (not a hybrid host): nothing masked`;
  const before = readFileSync(CONTROLLERS, 'utf8').trim();
  if (before === '') return `cgroups: ${CONTROLLERS} already empty: nothing masked`;
  const empty = join(work, 'empty');
  writeFileSync(empty, '');
  const r = spawnSync('mount', ['--bind', empty, CONTROLLERS], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot mask ${CONTROLLERS}: ${r.stderr || r.error?.message}`);
  return `cgroups: hybrid host; ${CONTROLLERS} ('${before}') masked by an empty file in this private mount namespace`;
}

/** A bundle from `runc spec` with args ["/bin/true"] and terminal false, on a busybox-static rootfs. */
function makeBundle(dir: string): string {
  const busybox = '/bin/busybox';
  if (!existsSync(busybox)) throw new Error(`${busybox} missing: apt-get install busybox-static`);
  const rootfs = join(dir, 'rootfs');
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root']) {
    mkdirSync(join(rootfs, d), { recursive: true });
  }
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  copyFileSync(busybox, join(rootfs, 'bin/busybox'));
  chmodSync(join(rootfs, 'bin/busybox'), 0o755);
  mustRun('chroot', [rootfs, '/bin/busybox', '--install', '-s']);
  writeFileSync(
    join(rootfs, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n',
  );
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  if (!existsSync(join(rootfs, 'bin/true'))) throw new Error(`${busybox} is not busybox-static (no /bin/true applet)`);
  if (!which('runc')) throw new Error('runc is needed to write the bundle config (`runc spec`): apt-get install runc');
  mustRun('runc', ['spec', '--bundle', dir]);
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  config.process.args = ['/bin/true'];
  config.process.terminal = false;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return dir;
}

/** Why the runtime cannot run, or undefined when it answers --version. */
function probe(rt: Runtime): string | undefined {
  if (rt.name === 'skiff-runtime' && !existsSync(rt.bin)) {
    return `${rt.bin} is not built: run \`npm run build\` (skiff-runtime is in progress; try --only runc,crun)`;
  }
  try {
    accessSync(rt.bin, constants.X_OK);
  } catch {
    if (!which(rt.bin)) return `${rt.bin} not found (apt-get install ${rt.name})`;
  }
  const r = spawnSync(rt.bin, ['--version'], { encoding: 'utf8' });
  if (r.error) return `${rt.bin} --version: ${r.error.message}`;
  if (r.status !== 0) return `${rt.bin} --version exited ${r.status}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`;
  mkdirSync(rt.root, { recursive: true });
  return undefined;
}

/** Runs `<bin> --root <root> ...argv` in the bundle with stdin and stdout on /dev/null and stderr in a file
 *  (not a pipe: the container's init inherits it and would hold a pipe open). Throws with the stderr text. */
function runtimeCall(rt: Runtime, bundle: string, argv: string[], prefix: string[] = []): void {
  const from = fstatSync(rt.errFd).size;
  const cmd = [...prefix, rt.bin, '--root', rt.root, ...argv];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd: bundle, stdio: ['ignore', 'ignore', rt.errFd] });
  if (r.status === 0) return;
  const err = readTail(rt.errFd, from);
  const how = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit ${r.status}`;
  throw new Error(`${rt.name} ${argv[0]} ${argv.at(-1)}: ${how}${err ? `: ${err}` : ''}`);
}

function readTail(fd: number, from: number): string {
  const size = fstatSync(fd).size;
  const len = Math.min(size - from, 2000);
  if (len <= 0) return '';
  const buf = Buffer.alloc(len);
  readSync(fd, buf, 0, len, size - len);
  return buf.toString('utf8').trim().replace(/\s+/g, ' ');
}

function readPid(file: string): number {
  const pid = Number(readFileSync(file, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`bad pid file ${file}`);
  return pid;
}

/** Busy-waits until the process is a zombie, dead, or gone (as the lab script does). */
function waitExit(pid: number, timeoutMs = 10_000): void {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    } catch {
      return; // gone
    }
    const state = stat[stat.lastIndexOf(')') + 2];
    if (state === 'Z' || state === 'X') return;
    if (performance.now() > deadline) throw new Error(`container init ${pid} still running after ${timeoutMs} ms`);
  }
}

/**
 * The iterations run in one long-lived bash (as the lab script does): a spawn from Node costs about 2 ms, a fork from
 * a small bash well under 1 ms, so the figures stay close to the runtimes' own. Node sends one line per iteration,
 * `<bin> <root> <bundle> <id> <errfile>`, and reads back `ok <create> <start> <wait> <delete>` (microseconds) or
 * `err <step> <exit code>`.
 */
const DRIVER = `
us() { local t=$EPOCHREALTIME; echo "\${t/./}"; }
exited() { [ -r /proc/$1/stat ] || return 0; local st; read -r _ _ st _ < /proc/$1/stat 2>/dev/null || return 0
  [ "$st" = Z ] || [ "$st" = X ]; }
while read -r bin root bundle id err; do
  cd "$bundle" || { echo "err cd 1"; continue; }
  t0=$(us)
  "$bin" --root "$root" create --bundle "$bundle" --pid-file "$root.pid" "$id" </dev/null >/dev/null 2>>"$err" || { echo "err create $?"; continue; }
  t1=$(us)
  "$bin" --root "$root" start "$id" </dev/null >/dev/null 2>>"$err" || { echo "err start $?"; continue; }
  t2=$(us)
  pid=$(<"$root.pid"); n=0
  while ! exited "$pid"; do n=$((n+1)); ((n > 2000000)) && break; done
  ((n > 2000000)) && { echo "err wait 1"; continue; }
  t3=$(us)
  "$bin" --root "$root" delete "$id" </dev/null >/dev/null 2>>"$err" || { echo "err delete $?"; continue; }
  t4=$(us)
  echo "ok $((t1-t0)) $((t2-t1)) $((t3-t2)) $((t4-t3))"
done
`;

class Driver {
  private readonly child = spawn('bash', ['-c', DRIVER], { stdio: ['pipe', 'pipe', 'inherit'] });
  private readonly lines: string[] = [];
  private waiting: ((line: string | null) => void) | null = null;
  private closed = false;

  constructor() {
    createInterface({ input: this.child.stdout! }).on('line', (line) => this.push(line));
    this.child.on('close', () => {
      this.closed = true;
      this.waiting?.(null);
    });
  }

  private push(line: string): void {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w(line);
    } else this.lines.push(line);
  }

  async request(line: string): Promise<string> {
    if (this.closed) throw new Error('the bash driver exited');
    this.child.stdin!.write(`${line}\n`);
    const reply = this.lines.shift() ?? (await new Promise<string | null>((res) => (this.waiting = res)));
    if (reply === null) throw new Error('the bash driver exited');
    return reply;
  }

  close(): void {
    this.child.stdin!.end();
  }
}

async function iteration(driver: Driver, rt: Runtime, bundle: string, id: string): Promise<Sample> {
  for (const field of [rt.bin, rt.root, bundle, id, rt.errPath]) {
    if (/\s/.test(field)) throw new Error(`no whitespace allowed in ${field}`);
  }
  const from = fstatSync(rt.errFd).size;
  const reply = (await driver.request([rt.bin, rt.root, bundle, id, rt.errPath].join(' '))).split(' ');
  if (reply[0] === 'ok') {
    const [c, s, w, d] = reply.slice(1).map((x) => Number(x) / 1000) as [number, number, number, number];
    return { total: c + s + w + d, phases: { create: c, start: s, wait: w, delete: d } };
  }
  // create succeeded unless it is the step that failed: leave the rest to cleanup's delete --force.
  if (reply[1] !== 'create') rt.live.add(id);
  const err = readTail(rt.errFd, from);
  throw new Error(`${rt.name} ${reply[1]} ${id}: exit ${reply[2]}${err ? `: ${err}` : ''}`);
}

/** Peak RSS of `create` (max over RSS_SAMPLES runs, by /usr/bin/time -f %M), as an extra column. */
function measureRss(runtimes: Runtime[], results: CandidateResult[], bundle: string, notes: string[]): void {
  const time = '/usr/bin/time';
  if (!existsSync(time)) {
    notes.push(`create peak RSS not measured: ${time} missing (apt-get install time)`);
    return;
  }
  for (const rt of runtimes) {
    const res = results.find((r) => r.name === rt.name)!;
    if (res.error !== undefined) continue;
    const kb: number[] = [];
    try {
      for (let i = 0; i < RSS_SAMPLES; i++) {
        const id = `rss-${rt.name}-${i}`;
        const out = join(work, 'rss.txt');
        const pidFile = join(work, `${rt.name}.pid`);
        runtimeCall(
          rt,
          bundle,
          ['create', '--bundle', bundle, '--pid-file', pidFile, id],
          [time, '-f', '%M', '-o', out],
        );
        rt.live.add(id);
        kb.push(Number(readFileSync(out, 'utf8').trim().split('\n').at(-1)));
        runtimeCall(rt, bundle, ['start', id]);
        waitExit(readPid(pidFile));
        runtimeCall(rt, bundle, ['delete', id]);
        rt.live.delete(id);
      }
      res.extra['create peak RSS'] = `${(Math.max(...kb) / 1024).toFixed(1)} MB`;
    } catch (e) {
      res.extra['create peak RSS'] = 'failed';
      notes.push(`${rt.name}: RSS measurement failed: ${errorText(e)}`);
    }
  }
  notes.push(
    `create peak RSS: max of ${RSS_SAMPLES} creates, by \`${time} -f %M\` (the runtime process and what it waits for)`,
  );
}

/** What the driver's three process spawns per iteration cost: part of every figure above, alike for all. */
function spawnFloor(): string {
  const script =
    'for i in {1..50}; do t0=$EPOCHREALTIME; /bin/true; /bin/true; /bin/true; t1=$EPOCHREALTIME; echo $(( ${t1/./} - ${t0/./} )); done';
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
  const xs = r.stdout
    .split('\n')
    .filter(Boolean)
    .map((x) => Number(x) / 1000);
  if (xs.length === 0) return 'spawn floor not measured';
  return `each iteration spawns 3 processes from bash; 3 spawns of /bin/true cost ${formatMs(median(xs))} (median), included in every figure`;
}

function cleanup(rt: Runtime, bundle: string): void {
  for (const id of rt.live) {
    spawnSync(rt.bin, ['--root', rt.root, 'delete', '--force', id], { cwd: bundle, stdio: 'ignore' });
  }
  closeSync(rt.errFd);
}

function mustRun(cmd: string, argv: string[]): void {
  const r = spawnSync(cmd, argv, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
}

function which(cmd: string): string | undefined {
  if (cmd.includes('/')) return existsSync(cmd) ? cmd : undefined;
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = join(dir, cmd);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

// Last, once every class and constant above is initialised.
let exitCode = 1;
try {
  exitCode = await main();
} catch (e) {
  log(`bench runtime: ${errorText(e)}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
process.exit(exitCode);
