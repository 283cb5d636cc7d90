// bench/daemon (issue 4): skiffd (+ the skiff-supervisor it starts) beside Debian's dockerd + containerd (started by
// hand as ../shared/lab/docker-baseline.sh does), both driven by the same real docker CLI (/usr/local/bin/docker,
// `-H unix://<socket>` per daemon) on the same busybox-static image, loaded into both with `docker load`:
//   - `docker run --rm busybox true` on each daemon's default bridge (a veth, an address and NAT rules each), and
//     with `--network none` (no networking work on either side),
//   - `docker ps` with 50 running `sleep 3600` containers in each,
//   - `docker pull` of a ~100 MB multi-layer image (busybox-static + 4 layers of 25 MB of random data, pushed with
//     skopeo) from a Debian docker-registry on 127.0.0.1, each pull after `docker rmi` of the image,
//   - the idle memory of skiffd + skiff-supervisor beside dockerd + containerd, and of one shim per container
//     (skiff-shim beside containerd-shim-runc-v2) with the 50 containers running.
// Candidates alternate round by round (skiffd, dockerd, skiffd, ...); each CLI call is timed by a long-lived bash
// around its exec, so Node's spawn cost is in neither figure, the docker CLI's own start is in both.
//
// Usage: npm run bench -- daemon [--n 20] [--warmup 1] [--only skiffd,dockerd] [--json]
//
// Needs root, a built tree (`npm run build`: dist/bin/skiffd), and Debian's docker.io (dockerd; containerd comes
// with it), docker-registry, skopeo and busybox-static. Isolation: the bench re-executes itself in a private mount
// namespace, so no mount of either daemon outlives it; skiffd runs in a further mount + network namespace of its own
// (as tests/integration/daemon-harness.ts does) and gets its own docker-registry on 127.0.0.1 there, serving the
// same storage. dockerd runs in the host's network namespace (its default bridge needs it): docker0, its iptables
// chains and rules, ip_forward, the FORWARD policy, its cgroups, /etc/docker/key.json and /run/docker are undone
// afterwards (as ../shared/lab/cleanup.sh does) unless they were there before. Everything is stopped by pid.
import {
  type Archive,
  CANDIDATES,
  daemonBenchArgs,
  missingDaemons,
  startDaemons,
  type Daemon,
  DOCKER,
  gitHead,
  hostState,
  killLeftovers,
  Lab,
  mustRun,
  type Name,
  restoreHost,
  sha256File,
  TAR_FLAGS,
  tail,
  version,
  writeDockerArchive,
  makeBusyboxArchive,
} from './daemons.js';
import { inPrivateMountNamespace, sleep } from './procs.js';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import {
  type Candidate,
  type CandidateResult,
  formatKiB,
  formatMs,
  formatReport,
  formatTable,
  median,
  readMemory,
  type ReportJson,
  runAlternating,
  toJson,
} from './harness.js';

const NS_ENV = 'SKIFF_BENCH_MOUNTNS';
const SLEEPERS = 50;
const MAX_PULLS = 5;
const RANDOM_LAYERS = 4;
const RANDOM_LAYER_MB = 25;
const SETTLE_MS = 2000;
const BIG_REPO = 'skiff-bench/multilayer';

const args = daemonBenchArgs('daemon');
inPrivateMountNamespace(NS_ENV, 'daemon');

const chosen = (name: Name) => !args.only || args.only.includes(name);
const lab = new Lab('daemon', args.json);
const { work, cleanups, notes } = lab;
const log = (msg: string) => lab.log(msg);
const stopPid = (pid: number, what: string): Promise<void> => lab.stopPid(pid, what);
const timed = (argv: string[], timeoutMs?: number): Promise<number> => lab.timed(argv, timeoutMs);
const guard = (f: () => Promise<number>) => lab.guard(f);

// ------------------------------------------------------------------------------------------------------------------
// Images: a multi-layer image on top of busybox-static, pushed into a local registry

/** busybox + RANDOM_LAYERS layers of random data, as a docker-archive (skopeo pushes it, gzipped). */
function makeMultiLayerArchive(base: Archive): { file: string; mb: number } {
  const layers = [base.layer];
  const diffIds = [base.diffId];
  let bytes = statSync(base.layer).size;
  for (let i = 1; i <= RANDOM_LAYERS; i++) {
    const src = join(work, `multilayer/src${i}`);
    mkdirSync(join(src, 'data'), { recursive: true });
    const fd = openSync(join(src, 'data', `random-${i}.bin`), 'w');
    for (let mb = 0; mb < RANDOM_LAYER_MB; mb++) writeSync(fd, randomBytes(1 << 20));
    closeSync(fd);
    const layer = join(work, `multilayer/layer${i}.tar`);
    mustRun('tar', [...TAR_FLAGS, '-C', src, '-cf', layer, 'data']);
    rmSync(src, { recursive: true, force: true });
    layers.push(layer);
    diffIds.push(sha256File(layer));
    bytes += statSync(layer).size;
  }
  const file = join(work, 'multilayer/multilayer.tar');
  writeDockerArchive(lab, file, `${BIG_REPO}:latest`, layers, diffIds, ['sh']);
  for (const l of layers.slice(1)) rmSync(l);
  return { file, mb: bytes / (1 << 20) };
}

interface Registry {
  proc: ChildProcess;
  addr: string;
}

function registryConfig(addr: string): string {
  const file = join(work, 'registry/config.yml');
  mkdirSync(join(work, 'registry/data'), { recursive: true });
  const cfg = [
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(work, 'registry/data')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${addr}`,
    '  secret: skiff-bench',
  ];
  writeFileSync(file, cfg.join('\n') + '\n');
  return file;
}

/** docker-registry on addr, in the host's network namespace, or in the one of pid nsPid. */
async function startRegistry(addr: string, nsPid?: number): Promise<Registry> {
  const bin = '/usr/bin/docker-registry';
  if (!existsSync(bin)) throw new Error(`${bin} missing: apt-get install docker-registry`);
  const cfg = registryConfig(addr);
  const out = openSync(join(work, `registry/registry-${nsPid ?? 'host'}.log`), 'a');
  const argv = nsPid ? ['nsenter', '-t', String(nsPid), '-n', '--', bin] : [bin];
  const proc = spawn(argv[0]!, [...argv.slice(1), 'serve', cfg], { stdio: ['ignore', out, out], detached: true });
  cleanups.push(() => stopPid(proc.pid!, 'docker-registry'));
  const curl = ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${addr}/v2/`];
  const probe = nsPid ? ['nsenter', '-t', String(nsPid), '-n', '--', ...curl] : curl;
  for (let i = 0; i < 200; i++) {
    if (spawnSync(probe[0]!, probe.slice(1), { encoding: 'utf8' }).stdout === '200') return { proc, addr };
    if (proc.exitCode !== null) break;
    await sleep(50);
  }
  throw new Error(
    `docker-registry on ${addr} did not answer: ${tail(join(work, `registry/registry-${nsPid ?? 'host'}.log`))}`,
  );
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

// ------------------------------------------------------------------------------------------------------------------
// Memory

interface MemoryRow {
  what: string;
  process: string;
  rssKiB?: number;
  pssKiB?: number;
  note?: string;
}

/** Median VmRSS and Pss over 3 readings 250 ms apart. */
async function sampleMemory(pid: number): Promise<{ rssKiB: number; pssKiB?: number }> {
  const rs: number[] = [];
  const ps: number[] = [];
  for (let i = 0; i < 3; i++) {
    if (i > 0) await sleep(250);
    const m = readMemory(pid);
    rs.push(m.rssKiB);
    if (m.pssKiB !== undefined) ps.push(m.pssKiB);
  }
  return { rssKiB: median(rs), ...(ps.length === 3 ? { pssKiB: median(ps) } : {}) };
}

/** One row per process of the daemon's stack, then their sum. */
async function stackMemory(d: Daemon, what: string): Promise<MemoryRow[]> {
  const rows: MemoryRow[] = [];
  for (const p of d.pids) rows.push({ what, process: p.process, ...(await sampleMemory(p.pid)) });
  rows.push({
    what,
    process: `${d.pids.map((p) => p.process).join(' + ')}`,
    rssKiB: rows.reduce((s, r) => s + r.rssKiB!, 0),
    pssKiB: rows.every((r) => r.pssKiB !== undefined) ? rows.reduce((s, r) => s + r.pssKiB!, 0) : undefined,
  });
  return rows;
}

/** The shims of the running containers: the median shim and their sum. */
function shimMemory(d: Daemon, what: string): MemoryRow[] {
  const pids = d.shimPids();
  if (pids.length === 0) return [{ what, process: d.shimName, note: 'no shim found' }];
  const mem = pids.map((p) => readMemory(p));
  const rss = mem.map((m) => m.rssKiB);
  const pss = mem.map((m) => m.pssKiB).filter((x): x is number => x !== undefined);
  return [
    {
      what,
      process: `${d.shimName} (median of ${pids.length})`,
      rssKiB: median(rss),
      ...(pss.length === pids.length ? { pssKiB: median(pss) } : {}),
      note: `min ${formatKiB(Math.min(...rss))}, max ${formatKiB(Math.max(...rss))}`,
    },
    {
      what,
      process: `${d.shimName} x${pids.length} (sum)`,
      rssKiB: rss.reduce((a, b) => a + b, 0),
      ...(pss.length === pids.length ? { pssKiB: pss.reduce((a, b) => a + b, 0) } : {}),
    },
  ];
}

function formatMemory(rows: MemoryRow[]): string {
  const table: string[][] = [['memory', 'process', 'VmRSS', 'Pss', 'RSS vs skiff', '']];
  let prev = '';
  for (const r of rows) {
    // The skiff row of the same kind: same position among its group's rows.
    const group = rows.filter((x) => x.what === r.what);
    const half = group.length / 2;
    const k = group.indexOf(r);
    const base = k >= half && group.length % 2 === 0 ? group[k - half] : undefined;
    const vs =
      r.rssKiB === undefined
        ? '-'
        : k < half
          ? '(base)'
          : base?.rssKiB !== undefined
            ? `${(r.rssKiB / base.rssKiB).toFixed(2)}x`
            : '-';
    table.push([
      r.what === prev ? '' : r.what,
      r.process,
      r.rssKiB !== undefined ? formatKiB(r.rssKiB) : '-',
      r.pssKiB !== undefined ? formatKiB(r.pssKiB) : '-',
      vs,
      r.note ?? '',
    ]);
    prev = r.what;
  }
  return formatTable(table);
}

// ------------------------------------------------------------------------------------------------------------------

interface Section {
  title: string;
  report: ReportJson;
}

/** Runs one alternating benchmark over the daemons; `unavailable` holds a reason per daemon left out. */
async function alternate(
  daemons: Daemon[],
  label: (d: Daemon) => string,
  iterate: (d: Daemon) => () => Promise<number>,
  n: number,
  warmup: number,
): Promise<CandidateResult[]> {
  const candidates: Candidate[] = daemons.map((d) => ({ name: label(d), iterate: guard(iterate(d)) }));
  return runAlternating(candidates, {
    n,
    warmup,
    onRound: (round, rounds) => {
      if (!args.json && process.stderr.isTTY) process.stderr.write(`\r  round ${round + 1}/${rounds}`);
    },
  }).finally(() => {
    if (!args.json && process.stderr.isTTY) process.stderr.write('\n');
  });
}

/** A result row for a daemon that could not run this part. */
function skipped(name: string, reason: string): CandidateResult {
  return { name, samples: [], phaseSamples: {}, extra: {}, error: `skipped: ${reason}` };
}

async function main(): Promise<number> {
  const missing = missingDaemons();
  for (const [name, why] of Object.entries(missing)) if (chosen(name as Name)) log(`${name}: ${why}`);

  const before = hostState();
  cleanups.push(() => restoreHost(lab, before));
  cleanups.push(() => killLeftovers(lab));

  log('making the images (busybox-static; busybox + 4 x 25 MB random layers)');
  const busybox = makeBusyboxArchive(lab);
  const multi = makeMultiLayerArchive(busybox);

  const failed: Partial<Record<Name, string>> = { ...missing };
  const daemons = await startDaemons(lab, chosen, failed, busybox.file);
  const skiffNs = daemons.find((d) => d.nsPid !== undefined)?.nsPid;
  const unavailableRows = (label: (n: Name) => string) =>
    CANDIDATES.filter((n) => chosen(n) && failed[n]).map((n) => skipped(label(n), failed[n]!));
  const order = (rs: CandidateResult[]) =>
    [...rs].sort(
      (a, b) => CANDIDATES.findIndex((n) => a.name.startsWith(n)) - CANDIDATES.findIndex((n) => b.name.startsWith(n)),
    );

  // Idle memory of fresh daemons (the image loaded, nothing run yet).
  const freshMemory = new Map<Daemon, MemoryRow[]>();
  await sleep(SETTLE_MS);
  for (const d of daemons) freshMemory.set(d, await stackMemory(d, 'idle: fresh daemon, image loaded'));

  const sections: Section[] = [];
  const section = (title: string, name: string, rs: CandidateResult[], n: number, warmup: number) =>
    sections.push({ title, report: toJson(`daemon ${name}`, { n, warmup }, order(rs)) });

  // 1. docker run --rm busybox true, default network and --network none, all four alternating in one loop.
  log(`docker run --rm busybox true: ${daemons.map((d) => d.name).join(', ')} alternately, n=${args.n}`);
  const runCmd = (d: Daemon, none: boolean) => () =>
    timed(d.cli('run', '--rm', ...(none ? ['--network', 'none'] : []), 'busybox', 'true'));
  const runs = await runAlternating(
    daemons.flatMap((d) => [
      { name: `${d.name}`, iterate: guard(runCmd(d, false)) },
      { name: `${d.name} --network none`, iterate: guard(runCmd(d, true)) },
    ]),
    { n: args.n, warmup: args.warmup },
  );
  const netLabel = (n: Name) => `${n} (bridge)`;
  section(
    '`docker run --rm busybox true`, default network',
    'run',
    [
      ...runs.filter((r) => !r.name.includes('none')).map((r) => ({ ...r, name: netLabel(r.name as Name) })),
      ...unavailableRows(netLabel),
    ],
    args.n,
    args.warmup,
  );
  const noneLabel = (n: Name) => `${n} --network none`;
  section(
    '`docker run --rm --network none busybox true`',
    'run-network-none',
    [...runs.filter((r) => r.name.includes('none')), ...unavailableRows(noneLabel)],
    args.n,
    args.warmup,
  );

  if (lab.interrupted) throw new Error('interrupted');
  // 2. docker ps with 50 running containers in each.
  const extra: Record<string, Record<string, string>> = {};
  const shimRows: MemoryRow[] = [];
  for (const d of daemons) {
    const t0 = performance.now();
    for (let k = 0; k < SLEEPERS && !lab.interrupted; k++)
      await timed(d.cli('run', '-d', '--network', 'none', '--name', `sleeper${k}`, 'busybox', 'sleep', '3600'));
    const total = performance.now() - t0;
    const ps = spawnSync(DOCKER, d.cli('ps', '-q').slice(1), { encoding: 'utf8' });
    const running = ps.stdout.split('\n').filter(Boolean).length;
    if (running !== SLEEPERS)
      throw new Error(`${d.name}: ${running} running containers, want ${SLEEPERS}: ${ps.stderr}`);
    extra[d.name] = { [`run -d x${SLEEPERS}`]: formatMs(total) };
  }
  await sleep(SETTLE_MS);
  for (const d of daemons) shimRows.push(...shimMemory(d, `${SLEEPERS} running: one shim each`));
  for (const d of daemons) shimRows.push(...(await stackMemory(d, `${SLEEPERS} running: daemons`)));
  log(`docker ps with ${SLEEPERS} running: alternately, n=${args.n}`);
  const psRes = await alternate(
    daemons,
    (d) => d.name,
    (d) => () => timed(d.cli('ps')),
    args.n,
    args.warmup,
  );
  for (const r of psRes) r.extra = extra[r.name] ?? {};
  for (const d of daemons) {
    const ids = spawnSync(DOCKER, d.cli('ps', '-aq').slice(1), { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    const ms = await timed(d.cli('rm', '-f', ...ids));
    const r = psRes.find((x) => x.name === d.name);
    if (r) r.extra[`rm -f x${SLEEPERS}`] = formatMs(ms);
  }
  section(
    `\`docker ps\` with ${SLEEPERS} running containers`,
    'ps',
    [...psRes, ...unavailableRows((n) => n)],
    args.n,
    args.warmup,
  );

  if (lab.interrupted) throw new Error('interrupted');
  // 3. docker pull of the multi-layer image from a docker-registry on 127.0.0.1 (one per network namespace).
  const pullN = Math.min(args.n, MAX_PULLS);
  const port = await freePort();
  const addr = `127.0.0.1:${port}`;
  const ref = `${addr}/${BIG_REPO}:latest`;
  await startRegistry(addr);
  const pushMs = await timed([
    'skopeo',
    'copy',
    '--quiet',
    '--dest-tls-verify=false',
    `docker-archive:${multi.file}`,
    `docker://${ref}`,
  ]);
  const pushed = registryBytes();
  log(
    `pushed ${ref} (${pushed.layers} layers, ${pushed.mb.toFixed(0)} MB compressed) with skopeo in ${formatMs(pushMs)}`,
  );
  if (skiffNs !== undefined) await startRegistry(addr, skiffNs);
  const pullable: Daemon[] = [];
  const pullFailed: Partial<Record<Name, string>> = {};
  const downloaded: string[] = [];
  for (const d of daemons) {
    // A first pull (is it supported at all?), then a second after rmi: how many layers a cold pull fetches.
    const first = spawnSync(DOCKER, d.cli('pull', ref).slice(1), { encoding: 'utf8', timeout: 300_000 });
    if (first.status !== 0) {
      pullFailed[d.name] = `\`docker pull\` fails: ${(first.stderr || first.stdout).trim().split('\n').pop()}`;
      continue;
    }
    await timed(d.cli('rmi', ref));
    const second = spawnSync(DOCKER, d.cli('pull', ref).slice(1), { encoding: 'utf8', timeout: 300_000 });
    const complete = (second.stdout.match(/Pull complete/g) ?? []).length;
    const exists = (second.stdout.match(/Already exists/g) ?? []).length;
    downloaded.push(`${d.name} ${complete} pulled, ${exists} already present`);
    pullable.push(d);
  }
  log(`docker pull ${ref} after rmi: ${pullable.map((d) => d.name).join(', ')} alternately, n=${pullN}`);
  const pullRes = await alternate(
    pullable,
    (d) => d.name,
    (d) => async () => {
      await timed(d.cli('rmi', ref));
      return timed(d.cli('pull', '-q', ref));
    },
    pullN,
    0,
  );
  section(
    `\`docker pull\` of a ${pushed.mb.toFixed(0)} MB ${pushed.layers}-layer image from docker-registry on 127.0.0.1 (after \`docker rmi\`)`,
    'pull',
    [...pullRes, ...Object.entries(pullFailed).map(([n, why]) => skipped(n, why)), ...unavailableRows((n) => n)],
    pullN,
    0,
  );
  notes.push(
    `pull: layers per cold pull (docker pull output): ${downloaded.join('; ')}; the busybox base layer is shared ` +
      'with busybox:latest, as `FROM busybox` would; the timed pull is `docker pull -q` right after `docker rmi`; ' +
      `${pushed.gzipped} of the ${pushed.layers} layer blobs in the registry are gzip (skopeo pushed the docker-archive's layers as they were)`,
  );

  if (lab.interrupted) throw new Error('interrupted');
  // 4. Idle memory again after all of it (0 containers).
  for (const d of daemons) {
    for (const id of spawnSync(DOCKER, d.cli('images', '-q', ref).slice(1), { encoding: 'utf8' }).stdout.split('\n'))
      if (id) spawnSync(DOCKER, d.cli('rmi', '-f', id).slice(1), { stdio: 'ignore' });
  }
  await sleep(SETTLE_MS);
  const memory: MemoryRow[] = [];
  const fresh = daemons.flatMap((d) => freshMemory.get(d) ?? []);
  const afterRows: MemoryRow[] = [];
  for (const d of daemons) afterRows.push(...(await stackMemory(d, 'idle: after the run, 0 containers')));
  memory.push(...fresh, ...shimRows.filter((r) => r.what.includes('daemons')), ...afterRows);
  memory.push(...shimRows.filter((r) => r.what.includes('shim')));

  notes.push(
    'on the default bridge both daemons make a veth pair and an address per container, skiffd with nftables and ' +
      'dockerd with iptables; `--network none` leaves networking out on both (bench/network measures it further)',
    `timing: each docker CLI call is timed by a long-lived bash around its exec (${DOCKER}, the same binary for both); ` +
      "the CLI's own start is in both figures, Node's spawn cost in neither",
    'skiffd runs in its own mount + network namespace (its registry too, on the same address and storage); ' +
      'dockerd + containerd in the host network namespace; both in one private mount namespace; ' +
      `dockerd ${version('/usr/sbin/dockerd')}, containerd ${version('/usr/bin/containerd')}, runc; skiffd at ${gitHead()}`,
    `idle memory: median of 3 readings of VmRSS and Pss (smaps_rollup), ${SETTLE_MS} ms after the daemons settled; ` +
      "Pss of the node processes is lower than their RSS because node's pages are shared with the other node processes here",
    `the ${SLEEPERS} containers run \`sleep 3600\` with --network none on both daemons`,
  );

  const report = { sections, memory, notes };
  if (args.json) console.log(JSON.stringify(report, null, 2));
  else {
    const parts: string[] = [];
    for (const s of sections) parts.push(`== ${s.title}`, formatReport(s.report), '');
    parts.push(formatMemory(memory), '', ...notes.map((n) => `note: ${n}`));
    console.log(parts.join('\n'));
  }
  const bad = sections.flatMap((s) => s.report.candidates.filter((c) => !c.ok && !c.error?.startsWith('skipped:')));
  for (const c of bad) log(`${c.name}: ${c.error}`);
  return bad.length > 0 ? 1 : 0;
}

// ------------------------------------------------------------------------------------------------------------------
// Processes and small helpers

function registryBytes(): { layers: number; gzipped: number; mb: number } {
  const blobs = join(work, 'registry/data/docker/registry/v2/blobs/sha256');
  let bytes = 0;
  let count = 0;
  let gzipped = 0;
  for (const a of readdirSync(blobs))
    for (const b of readdirSync(join(blobs, a))) {
      const file = join(blobs, a, b, 'data');
      const size = statSync(file).size;
      if (size > 64 * 1024) {
        count++;
        const fd = openSync(file, 'r');
        const magic = Buffer.alloc(2);
        readSync(fd, magic, 0, 2, 0);
        closeSync(fd);
        if (magic[0] === 0x1f && magic[1] === 0x8b) gzipped++;
      }
      bytes += size;
    }
  return { layers: count, gzipped, mb: bytes / (1 << 20) };
}

await lab.main(main);
