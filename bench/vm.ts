// bench/vm (issue 7): the Skiff VM's start beside a plain Debian bookworm + systemd VM (../shared/lab/vm-baseline.sh),
// both under QEMU TCG with the same -cpu, -smp, -m and tb-size, run alternately:
//   skiff-cold      `skiff start --vm bench` with a fresh SKIFF_HOME each round (the host agent launched, both key
//                   pairs made, the qcow2 data disk made, formatted ext4 by skiff-init at first boot), until the
//                   engine answers through the host socket: GET /_ping on ~/.skiff/bench/docker.sock, then
//                   `docker -H unix://… version` succeeds,
//   skiff-warm      the same with a SKIFF_HOME that already has the keys and the formatted disk (made once in the
//                   setup); the host agent is launched again each round (`skiff stop --quit` in between),
//   debian-systemd  the lab's VM: QEMU started with the script's own command line (its qemu_args function, read
//                   from the script), until `ssh root@127.0.0.1 true` succeeds. It has no docker: SSH is its ready.
// Then, after each is ready: IDLE_SETTLE_S seconds left alone, then qemu's CPU use (utime+stime from
// /proc/<pid>/stat) over --idle seconds (default 60) as % of one CPU, and its VmRSS (for Skiff also the host agent's,
// which is part of its cost: it holds the SSH session and the forwards).
//
// Usage: npm run bench -- vm [--n 5] [--warmup 0] [--idle 60] [--only skiff-cold,skiff-warm,debian-systemd] [--json]
//
// Needs a built tree with the VM image (`npm run build && npm run build:vm-image`), qemu-system-x86 and qemu-utils,
// the docker CLI, ssh. The peer needs ../shared/lab/vm-baseline.sh ($SKIFF_BENCH_VM_BASELINE overrides the path);
// its rootfs and image are built by the script's own `rootfs` and `image` steps when $LAB (/tmp/lab) lacks them
// (debootstrap from the Debian mirror, as root, ~5 min) and reused after.
// --warmup defaults to 0: the setup already boots each candidate once (Skiff: making the warm home; the peer:
// checking that its image boots), which warms the page cache. Everything started is stopped by pid; temp dirs are
// removed.
import { gitHead, Lab, repo, version, which } from './daemons.js';
import { alive, sleep } from './procs.js';
import { vmPaths } from '../electron/hostagent/paths.js';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import {
  type BenchArgs,
  type CandidateResult,
  errorText,
  formatKiB,
  formatReport,
  median,
  parseBenchArgs,
  readMemory,
  runAlternating,
  type Sample,
  toJson,
} from './harness.js';

const VM = 'bench';
const SKIFF_CLI = join(repo, 'dist/bin/skiff');
const VM_IMAGE = join(repo, 'dist/vm');
const DOCKER = which('docker') ?? '/usr/local/bin/docker';
const BASELINE = resolve(process.env.SKIFF_BENCH_VM_BASELINE ?? join(repo, '../shared/lab/vm-baseline.sh'));
const LAB_DIR = process.env.LAB ?? '/tmp/lab';
const PEER_VM = join(LAB_DIR, 'vm');
/** Boots under TCG on a loaded 2-core machine: the lab script's own TCG_TIMEOUT. */
const READY_TIMEOUT_MS = 600_000;
/** How often each candidate's readiness is probed (the same for both). */
const POLL_MS = 100;
/** Seconds left alone after ready before the idle window (the guest's own start-up tail is not idle). */
const IDLE_SETTLE_S = 10;
const NAMES = ['skiff-cold', 'skiff-warm', 'debian-systemd'] as const;
type Name = (typeof NAMES)[number];

function parseArgs(): BenchArgs & { idle: number } {
  const argv = process.argv.slice(2);
  let idle = 60;
  const rest: string[] = [];
  try {
    for (let i = 0; i < argv.length; i++) {
      const [flag, inline] = argv[i]!.startsWith('--idle=') ? ['--idle', argv[i]!.slice(7)] : [argv[i]!, undefined];
      if (flag !== '--idle') {
        rest.push(argv[i]!);
        continue;
      }
      const v = inline ?? argv[++i];
      idle = Number(v);
      if (v === undefined || !Number.isInteger(idle) || idle < 0) throw new Error('--idle needs an integer >= 0');
    }
    const a = parseBenchArgs(rest, { n: 5, warmup: 0 });
    const unknown = (a.only ?? []).filter((n) => !(NAMES as readonly string[]).includes(n));
    if (unknown.length > 0)
      throw new Error(`--only: unknown candidate ${unknown.join(', ')} (have ${NAMES.join(', ')})`);
    return { ...a, idle };
  } catch (e) {
    console.error(`bench vm: ${errorText(e)} (options: --n N, --warmup N, --idle SECONDS, --only a,b, --json)`);
    process.exit(2);
  }
}

const args = parseArgs();
const lab = new Lab('vm', args.json);
const chosen = (n: Name) => !args.only || args.only.includes(n);
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

// ------------------------------------------------------------------------------------------------------------------
// Small process helpers.

function tail(file: string, n = 8): string {
  try {
    return readFileSync(file, 'utf8').replace(/\r/g, '').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '(no output)';
  }
}

/** Runs argv to its end (async, so that polls of other things go on); SIGKILLed after timeoutMs. */
function run(
  argv: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<{ code: number; out: string; ms: number }> {
  return new Promise((res) => {
    const t0 = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(t);
      res({ code: 127, out: e.message, ms: performance.now() - t0 });
    });
    child.on('close', (code, sig) => {
      clearTimeout(t);
      res({ code: code ?? (sig ? 128 : 1), out: out.trim(), ms: performance.now() - t0 });
    });
  });
}

function mustRun(argv: string[], timeoutMs = 60_000): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0)
    throw new Error(`${argv.slice(0, 6).join(' ')}: ${r.error?.message ?? `exit ${r.status}`}: ${r.stderr?.trim()}`);
  return r.stdout;
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** utime + stime of a process (all its threads), in clock ticks. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields after the command: state is field 3, utime 14, stime 15 (1-based over the whole line).
  return Number(f[11]) + Number(f[12]);
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? res(a.port) : rej(new Error('no port'))));
    });
  });
}

/** GET /_ping on a unix socket: true when it answers 200 OK. */
function ping(socketPath: string): Promise<boolean> {
  return new Promise((res) => {
    const req = request({ socketPath, path: '/_ping', timeout: 2000 }, (r) => {
      let body = '';
      r.on('data', (d: Buffer) => (body += d.toString()));
      r.on('end', () => res(r.statusCode === 200 && body === 'OK'));
      r.on('error', () => res(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => res(false));
    req.end();
  });
}

// ------------------------------------------------------------------------------------------------------------------
// Idle figures.

interface Idle {
  cpuPct: number;
  rssKiB: number;
}

/** After IDLE_SETTLE_S, the CPU use of each pid over `seconds`, and its RSS at the end. Throws when one is gone. */
async function measureIdle(pids: Record<string, number>, seconds: number): Promise<Record<string, Idle>> {
  await sleep(IDLE_SETTLE_S * 1000);
  const t0 = performance.now();
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuTicks(pid)]));
  for (let waited = 0; waited < seconds * 1000; waited += 1000) {
    if (lab.interrupted) throw new Error('interrupted');
    await sleep(Math.min(1000, seconds * 1000 - waited));
  }
  const wall = (performance.now() - t0) / 1000;
  const out: Record<string, Idle> = {};
  for (const [k, pid] of Object.entries(pids)) {
    if (!alive(pid)) throw new Error(`${k} (pid ${pid}) exited while idle`);
    out[k] = { cpuPct: ((cpuTicks(pid) - before[k]!) / CLK_TCK / wall) * 100, rssKiB: readMemory(pid).rssKiB };
  }
  return out;
}

/** Idle figures per candidate, from the counted rounds: key → samples. */
const idleSamples: Record<string, Record<string, Idle[]>> = {};
let countedRound = false;

async function maybeIdle(name: string, pids: Record<string, number>): Promise<void> {
  if (!countedRound || args.idle === 0) return;
  const r = await measureIdle(pids, args.idle);
  for (const [k, v] of Object.entries(r)) ((idleSamples[name] ??= {})[k] ??= []).push(v);
}

// ------------------------------------------------------------------------------------------------------------------
// Skiff: the CLI and the host agent, as a user runs them.

/** Stops for what is running now (run by the lab's cleanup when the bench is interrupted or fails). */
const running = new Map<string, () => Promise<void>>();
lab.cleanups.push(async () => {
  for (const stop of [...running.values()].reverse()) await stop();
});

const dockerConfig = join(lab.work, 'docker-config');
mkdirSync(dockerConfig, { recursive: true });

function skiffEnv(home: string): NodeJS.ProcessEnv {
  // DOCKER_CONFIG: `skiff start` writes its docker context there, not into the user's ~/.docker.
  return { ...process.env, SKIFF_HOME: home, SKIFF_ACCEL: 'tcg', DOCKER_CONFIG: dockerConfig };
}

/** `skiff stop --quit`, then makes sure (by pid) that the host agent and QEMU are gone. */
async function skiffStop(home: string, pids: { hostagent?: number; qemu?: number }): Promise<void> {
  const r = await run([process.execPath, SKIFF_CLI, 'stop', '--quit', '--vm', VM], {
    env: skiffEnv(home),
    timeoutMs: 120_000,
  });
  if (r.code !== 0) lab.notes.push(`left running after \`skiff stop --quit\` (exit ${r.code}): ${r.out.slice(-300)}`);
  for (const [what, pid] of Object.entries(pids)) {
    if (pid === undefined || !alive(pid)) continue;
    lab.notes.push(`could not stop ${what} ${pid} with \`skiff stop --quit\`: stopped by pid`);
    await lab.stopPid(pid, what);
  }
}

let skiffRuns = 0;
/** The skiff-agent version once (for the notes). */
let engineVersion = '';

/** One `skiff start` until `docker version` answers through the host socket; then the idle figures; then stop. */
async function skiffRound(name: string, home: string): Promise<Sample> {
  const p = vmPaths(VM, home);
  const k = ++skiffRuns;
  const logFile = join(lab.work, `skiff-start-${k}.log`);
  const log = openSync(logFile, 'w');
  const pids: { hostagent?: number; qemu?: number } = {};
  running.set('skiff', () => skiffStop(home, { ...pids, hostagent: pids.hostagent ?? readPid(p.hostagentPid) }));
  const t0 = performance.now();
  const cli = spawn(process.execPath, [SKIFF_CLI, 'start', '--vm', VM], {
    env: skiffEnv(home),
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  let exit: number | undefined;
  let exitAt = 0;
  cli.on('exit', (code, sig) => {
    exit = code ?? (sig ? 128 : 1);
    exitAt = performance.now() - t0;
  });
  const phases: Record<string, number> = {};
  try {
    for (;;) {
      const now = performance.now() - t0;
      if (lab.interrupted) throw new Error('interrupted');
      if (phases['qemu spawned'] === undefined && existsSync(p.qemuPid)) phases['qemu spawned'] = now;
      if (exit !== undefined && exit !== 0)
        throw new Error(`skiff start exited ${exit}: ${tail(logFile)}\n(serial: ${tail(p.serialLog, 5)})`);
      if (now > READY_TIMEOUT_MS)
        throw new Error(`the engine did not answer within ${READY_TIMEOUT_MS / 1000} s: ${tail(logFile)}`);
      if (await ping(p.dockerSocket)) {
        phases['/_ping'] ??= performance.now() - t0;
        const v = await run([DOCKER, '-H', `unix://${p.dockerSocket}`, 'version', '--format', '{{.Server.Version}}'], {
          timeoutMs: 30_000,
        });
        if (v.code === 0) {
          phases['docker version'] = performance.now() - t0;
          engineVersion ||= v.out;
          break;
        }
      }
      await sleep(POLL_MS);
    }
    const total = phases['docker version']!;
    // The CLI returns once the host agent reports RUNNING (which it does after its own /_ping).
    const deadline = performance.now() + 120_000;
    while (exit === undefined && performance.now() < deadline) await sleep(20);
    if (exit !== 0)
      throw new Error(
        `skiff start: ${exit === undefined ? 'still running 120 s after ready' : `exit ${exit}`}: ${tail(logFile)}`,
      );
    phases['skiff start exits'] = exitAt;
    pids.hostagent = readPid(p.hostagentPid);
    pids.qemu = readPid(p.qemuPid);
    if (pids.hostagent === undefined || pids.qemu === undefined)
      throw new Error(`no pid in ${p.hostagentPid} or ${p.qemuPid}`);
    await maybeIdle(name, { qemu: pids.qemu, 'host agent': pids.hostagent });
    return { total, phases };
  } finally {
    if (exit === undefined) cli.kill('SIGKILL');
    await running.get('skiff')?.();
    running.delete('skiff');
  }
}

/** The qemu command line of Skiff's running VM, for the peer's same -smp, -m, -cpu and TCG options. */
interface QemuShape {
  smp: string;
  memMiB: string;
  tcgOpts: string;
  cpu: string;
  machine: string;
}
let skiffShape: QemuShape | undefined;

function shapeOf(pid: number): QemuShape {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const opt = (flag: string) => {
    const i = argv.indexOf(flag);
    if (i < 0 || argv[i + 1] === undefined) throw new Error(`Skiff's qemu has no ${flag}: ${argv.join(' ')}`);
    return argv[i + 1]!;
  };
  const accel = opt('-accel');
  if (!accel.startsWith('tcg')) throw new Error(`Skiff's qemu does not run under TCG: -accel ${accel}`);
  return {
    smp: opt('-smp').split(',')[0]!,
    memMiB: opt('-m').replace(/[mM]$/, ''),
    tcgOpts: accel.replace(/^tcg,?/, ''),
    cpu: opt('-cpu'),
    machine: opt('-machine'),
  };
}

/** The warm home: one cold start and stop, so that it has the keys and a formatted disk; records Skiff's shape. */
async function prepareWarmHome(home: string): Promise<void> {
  const p = vmPaths(VM, home);
  const saved = countedRound;
  countedRound = false;
  try {
    await skiffRound('setup', home);
  } finally {
    countedRound = saved;
  }
  for (const f of [p.userKey, p.hostKey, p.dataDisk])
    if (!existsSync(f)) throw new Error(`the warm home lacks ${f} after a start`);
}

// ------------------------------------------------------------------------------------------------------------------
// The peer: the lab's Debian + systemd VM.

/** Builds the peer's rootfs and image with the lab script's own steps when $LAB lacks them. */
function preparePeerImage(): void {
  const need = ['vmlinuz', 'initrd.img', 'disk.qcow2', 'id_ed25519'].map((f) => join(PEER_VM, f));
  if (need.every((f) => existsSync(f))) return;
  if (process.getuid?.() !== 0) throw new Error(`${LAB_DIR} has no image and building one (debootstrap) needs root`);
  const step = (s: string) => {
    lab.log(`peer: ${BASELINE} ${s} (LAB=${LAB_DIR})`);
    const r = spawnSync('bash', [BASELINE, s], { env: { ...process.env, LAB: LAB_DIR }, stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`${BASELINE} ${s} failed (exit ${r.status})`);
  };
  if (!existsSync(join(LAB_DIR, 'rootfs/boot')) || !existsSync(join(PEER_VM, 'id_ed25519'))) step('rootfs');
  step('image');
  const missing = need.filter((f) => !existsSync(f));
  if (missing.length > 0) throw new Error(`${BASELINE} image did not make ${missing.join(', ')}`);
}

/** The script's qemu_args function, run by bash with our values: the peer's command line exactly as the script
 *  builds it, except that its pidfile and monitor socket go to our dir. */
function peerArgs(shape: QemuShape, port: number, disk: string, serial: string, dir: string): string[] {
  const fn = readFileSync(BASELINE, 'utf8').match(/^qemu_args\(\) \{[\s\S]*?^\}$/m)?.[0];
  if (!fn) throw new Error(`${BASELINE} has no qemu_args function (the script changed?)`);
  const out = mustRun([
    'bash',
    '-c',
    `${fn}\nVM=$1 MEM=$2 SMP=$3 SSH_PORT=$4 TCG_OPTS=$5; qemu_args tcg "$6" "$7"`,
    'qemu-args',
    PEER_VM,
    shape.memMiB,
    shape.smp,
    String(port),
    shape.tcgOpts,
    disk,
    serial,
  ]);
  const a = out.replace(/\n$/, '').split('\n');
  return a.map((arg, i) => {
    if (a[i - 1] === '-pidfile') return join(dir, 'qemu.pid');
    if (a[i - 1] === '-monitor') return `unix:${join(dir, 'monitor.sock')},server,nowait`;
    return arg;
  });
}

let peerRuns = 0;
let peerCmdline = '';

async function peerRound(name: string, shape: QemuShape): Promise<Sample> {
  const dir = join(lab.work, `peer-${++peerRuns}`);
  mkdirSync(dir);
  const disk = join(dir, 'run.qcow2');
  const serial = join(dir, 'serial.log');
  const qemuOut = join(dir, 'qemu.out');
  // A pristine overlay per boot, made before the clock starts (as the script does).
  mustRun(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', join(PEER_VM, 'disk.qcow2'), '-F', 'qcow2', disk]);
  const port = await freePort();
  const qargs = peerArgs(shape, port, disk, serial, dir);
  peerCmdline ||= `qemu-system-x86_64 ${qargs.join(' ')}`;
  const ssh = [
    'ssh',
    '-i',
    join(PEER_VM, 'id_ed25519'),
    '-p',
    String(port),
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=3',
    '-o',
    'LogLevel=ERROR',
    'root@127.0.0.1',
  ];
  const out = openSync(qemuOut, 'w');
  const t0 = performance.now();
  const qemu: ChildProcess = spawn('qemu-system-x86_64', qargs, { stdio: ['ignore', out, out] });
  closeSync(out);
  let exited: string | undefined;
  qemu.on('exit', (code, sig) => (exited = sig ?? `exit ${code}`));
  const pid = qemu.pid!;
  running.set('peer', async () => {
    await lab.stopPid(pid, 'peer qemu');
    running.delete('peer');
  });
  try {
    let total: number;
    for (;;) {
      if (lab.interrupted) throw new Error('interrupted');
      if (exited !== undefined) throw new Error(`qemu ${exited}: ${tail(qemuOut, 3)}\n(serial: ${tail(serial, 5)})`);
      if (performance.now() - t0 > READY_TIMEOUT_MS)
        throw new Error(`no SSH within ${READY_TIMEOUT_MS / 1000} s; serial: ${tail(serial, 10)}`);
      const r = await run([...ssh, 'true'], { timeoutMs: 15_000 });
      if (r.code === 0) {
        total = performance.now() - t0;
        break;
      }
      await sleep(POLL_MS);
    }
    await maybeIdle(name, { qemu: pid });
    return { total, phases: { 'ssh true': total } };
  } finally {
    await running.get('peer')?.();
  }
}

// ------------------------------------------------------------------------------------------------------------------

function notRun(name: string, reason: string): CandidateResult {
  return { name, samples: [], phaseSamples: {}, extra: {}, error: reason };
}

async function main(): Promise<number> {
  for (const [what, ok] of [
    ['qemu-system-x86_64 (apt-get install qemu-system-x86)', which('qemu-system-x86_64')],
    ['qemu-img (apt-get install qemu-utils)', which('qemu-img')],
    [`the docker CLI (${DOCKER})`, existsSync(DOCKER)],
    ['ssh (apt-get install openssh-client)', which('ssh')],
    [`${SKIFF_CLI} (npm run build)`, existsSync(SKIFF_CLI)],
    [`the VM image in ${VM_IMAGE} (npm run build:vm-image)`, existsSync(join(VM_IMAGE, 'manifest.json'))],
  ] as const)
    if (!ok) throw new Error(`missing: ${what}`);

  /** Why a candidate has no figures; "skipped: …" when it cannot run here (not a failure). */
  const failed: Partial<Record<Name, string>> = {};
  const warmHome = join(lab.work, 'w');
  // Skiff's setup runs even when only the peer is chosen: the peer takes Skiff's qemu shape (-smp, -m, tb-size).
  lab.log('setup: a first `skiff start` (making the warm home: keys, data disk) to learn its QEMU command line');
  {
    const p = vmPaths(VM, warmHome);
    const t0 = performance.now();
    // Read the shape while it runs: skiffRound stops it at the end.
    let shapeErr: unknown;
    const watch = setInterval(() => {
      const pid = readPid(p.qemuPid);
      if (skiffShape || pid === undefined || !alive(pid)) return;
      try {
        skiffShape = shapeOf(pid);
      } catch (e) {
        shapeErr = e;
      }
    }, 200);
    try {
      await prepareWarmHome(warmHome);
    } finally {
      clearInterval(watch);
    }
    if (!skiffShape) throw new Error(`could not read Skiff's qemu command line: ${errorText(shapeErr)}`);
    lab.log(`setup: Skiff ready and stopped in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const shape = skiffShape;

  if (chosen('debian-systemd')) {
    try {
      if (!existsSync(BASELINE)) throw new Error(`skipped: ${BASELINE} not found (set SKIFF_BENCH_VM_BASELINE)`);
      preparePeerImage();
      lab.log('setup: one boot of the peer (its image boots; warms the page cache)');
      const s = await peerRound('setup', shape);
      lab.log(`setup: the peer answered SSH in ${(s.total / 1000).toFixed(1)} s`);
    } catch (e) {
      failed['debian-systemd'] = errorText(e);
      lab.log(`debian-systemd: ${failed['debian-systemd']}`);
    }
  }

  let coldRound = 0;
  const iterate: Record<Name, () => Promise<Sample>> = {
    'skiff-cold': async () => {
      const home = join(lab.work, `c${++coldRound}`);
      try {
        return await skiffRound('skiff-cold', home);
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
    },
    'skiff-warm': () => skiffRound('skiff-warm', warmHome),
    'debian-systemd': () => peerRound('debian-systemd', shape),
  };
  const names = NAMES.filter((n) => chosen(n));
  lab.log(`${names.join(', ')} alternately, n=${args.n}, warm-up ${args.warmup}, idle ${args.idle} s per boot`);
  const results = await runAlternating(
    names.filter((n) => !failed[n]).map((n) => ({ name: n, iterate: lab.guard(iterate[n]) })),
    {
      n: args.n,
      warmup: args.warmup,
      onRound: (round, rounds) => {
        countedRound = round >= args.warmup;
        lab.log(`round ${round + 1}/${rounds}`);
      },
    },
  );
  for (const r of results) {
    for (const [k, xs] of Object.entries(idleSamples[r.name] ?? {})) {
      r.extra[`${k} idle CPU`] = `${median(xs.map((x) => x.cpuPct)).toFixed(1)}%`;
      r.extra[`${k} RSS`] = formatKiB(median(xs.map((x) => x.rssKiB)));
    }
  }
  const all = [...results, ...names.filter((n) => failed[n]).map((n) => notRun(n, failed[n]!))];

  const manifest = JSON.parse(readFileSync(join(VM_IMAGE, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  const notes = [
    'ready, skiff: from launching `skiff start --vm bench` (the host agent launched by it, SKIFF_ACCEL=tcg) to the ' +
      'first GET /_ping answered 200 OK on ~/.skiff/bench/docker.sock (SKIFF_HOME) AND then `docker -H unix://… ' +
      'version` exiting 0; so it includes the host agent start, QEMU, the guest boot, the SSH session, the engine ' +
      '(Node skiff-agent, skiffd) and the forward; phases: when qemu.pid appeared, the first /_ping, docker ' +
      'version, and the CLI returning (after the host agent saw RUNNING)',
    'skiff-cold: a fresh SKIFF_HOME per round (key pairs, the qcow2 data disk, its mkfs.ext4 in the guest); ' +
      'skiff-warm: the keys and the formatted disk exist; the host agent is launched again (stop --quit between)',
    'ready, debian-systemd: from spawning qemu to `ssh root@127.0.0.1 true` exiting 0 (probed every ' +
      `${POLL_MS} ms, as Skiff's socket is). It has no container engine: SSH is its fair ready, and Skiff's ` +
      "figure holds its engine's start on top of its SSH",
    `same shape: -cpu ${shape.cpu}, -smp ${shape.smp}, -m ${shape.memMiB}, -accel tcg,${shape.tcgOpts} (read from ` +
      `Skiff's running qemu); machine: Skiff ${shape.machine} (PVH vmlinux + an initramfs root), the peer pc ` +
      '(bzImage + initrd + ext4 root on virtio-blk, systemd); each on its own pristine disk per round',
    ...(peerCmdline ? [`the peer's command line is the lab script's qemu_args (${BASELINE}): ${peerCmdline}`] : []),
    args.idle > 0
      ? `idle: ${IDLE_SETTLE_S} s after ready left alone, then utime+stime of the process (all threads) over ` +
        `${args.idle} s as % of one CPU, and VmRSS at the end; medians over the counted rounds. For Skiff also ` +
        'the host agent (Node: the SSH session, keepalives, forwards), which is part of its idle cost'
      : 'idle: not measured (--idle 0)',
    `Skiff VM image: kernel ${String(manifest.kernelVersion)}, guest node ${String(manifest.node)}; the engine ` +
      `reports ${engineVersion || '?'}; QEMU ${version('qemu-system-x86_64')}; skiff at ${gitHead()}`,
    ...lab.notes,
  ];
  const report = toJson('vm start (until ready)', { n: args.n, warmup: args.warmup }, all, notes);
  if (args.json) console.log(JSON.stringify(report, null, 2));
  else console.log(formatReport(report));
  const bad = report.candidates.filter((c) => !c.ok && !c.error?.startsWith('skipped:'));
  for (const c of bad) lab.log(`${c.name}: ${c.error}`);
  return bad.length > 0 ? 1 : 0;
}

await lab.main(main);
