// bench/network (issue 5): skiffd's networking beside Debian's dockerd + containerd, both driven by the same docker
// CLI on the same busybox-static image (the setup is bench/daemons.ts, shared with bench/daemon):
//   1. `docker run --rm busybox true` on each daemon's default bridge (a veth, an address, the rules, per run),
//   2. TCP connection latency through a published port: connect + `GET /` + the whole response + close, to busybox
//      httpd in a container (`-p 80`), from the host; the median of CONNECTIONS connections per round,
//   3. TCP throughput through the same published port: wrk (one thread, one connection) pulling a 64 MiB file
//      from the httpd for WRK_SECONDS per round; shown as MiB/s and as the time to move 1 GiB (the ratio's figure).
// 2 and 3 are measured from the host's loopback (127.0.0.1:<port>) and from the host's address on the daemon's
// default bridge (its gateway), since dockerd serves the two differently: loopback through its userland
// docker-proxy, the bridge address through iptables DNAT; skiffd uses nftables DNAT for both (no proxy).
//
// Usage: npm run bench -- network [--n 20] [--warmup 1] [--only skiffd,dockerd] [--json]
//
// Why wrk for throughput: it is a C client (Debian's wrk, in .ci/install-deps) that keeps up with a loopback path on
// 2 cores without being the bottleneck the way a Node client would be, and it reports bytes per second itself. The
// latency client is a small Node script instead: wrk times from the request write, so it leaves out the connect,
// which is the part NAT (and docker-proxy) add to. Both clients run in the daemon's network namespace (skiffd's own,
// entered with nsenter; dockerd's is the host's), started once per round, and time themselves: their start is in
// no figure.
//
// Needs root, a built tree (`npm run build`), Debian's docker.io (dockerd, containerd), wrk and busybox-static.
// Isolation as bench/daemon: a private mount namespace, skiffd in its own mount + network namespace, dockerd's host
// changes (docker0, iptables, ip_forward, cgroups) undone afterwards; everything stopped by pid.
import {
  CANDIDATES,
  type Daemon,
  daemonBenchArgs,
  DOCKER,
  gitHead,
  hostState,
  killLeftovers,
  Lab,
  makeBusyboxArchive,
  missingDaemons,
  type Name,
  restoreHost,
  startDaemons,
  version,
  which,
} from './daemons.js';
import { inPrivateMountNamespace, sleep } from './procs.js';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type CandidateResult,
  errorText,
  formatReport,
  median,
  type ReportJson,
  runAlternating,
  toJson,
} from './harness.js';

const NS_ENV = 'SKIFF_BENCH_MOUNTNS';
/** Connections per latency round (their median is the round's sample). */
const CONNECTIONS = 200;
const WRK_SECONDS = 2;
const BIG_MIB = 64;

const args = daemonBenchArgs('network');
inPrivateMountNamespace(NS_ENV, 'network');

const chosen = (name: Name) => !args.only || args.only.includes(name);
const lab = new Lab('network', args.json);

/** The latency client: CONNECTIONS sequential connections, each timed from connect() to the server's close. */
const LATENCY_CLIENT = `
import { connect } from 'node:net';
const [host, port, count] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const one = () => new Promise((resolve, reject) => {
  const t0 = process.hrtime.bigint();
  let body = '';
  const s = connect(port, host, () => s.write('GET / HTTP/1.0\\r\\nHost: bench\\r\\n\\r\\n'));
  s.setEncoding('latin1');
  s.on('data', (c) => (body += c));
  s.on('error', reject);
  s.on('close', () => {
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (!body.startsWith('HTTP/1.') || !body.endsWith('hello\\n')) reject(new Error('bad response: ' + body.slice(0, 80)));
    else resolve(ms);
  });
});
const ms = [];
for (let i = 0; i < count; i++) ms.push(await one());
console.log(JSON.stringify(ms));
`;

/** A host-side address of a daemon's published port. */
interface Target {
  daemon: Daemon;
  host: string;
  port: number;
}

/** argv run in the daemon's network namespace (the host's for dockerd). */
function inNetns(d: Daemon, argv: string[]): string[] {
  return d.nsPid !== undefined ? ['nsenter', '-t', String(d.nsPid), '-n', '--', ...argv] : argv;
}

function mustSpawn(argv: string[], timeoutMs: number): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0)
    throw new Error(`${argv.slice(0, 8).join(' ')}: ${r.error?.message ?? `exit ${r.status}`}: ${r.stderr?.trim()}`);
  return r.stdout;
}

/** One round of the latency client: the median connection time in ms. */
function latencyRound(t: Target, client: string): number {
  const out = mustSpawn(
    inNetns(t.daemon, [process.execPath, client, t.host, String(t.port), String(CONNECTIONS)]),
    120_000,
  );
  return median(JSON.parse(out) as number[]);
}

/** One round of wrk pulling the big file: MiB/s. */
function throughputRound(t: Target): number {
  const url = `http://${t.host}:${t.port}/big`;
  const out = mustSpawn(inNetns(t.daemon, ['wrk', '-t1', '-c1', `-d${WRK_SECONDS}s`, '--timeout', '10s', url]), 60_000);
  if (/Non-2xx|Socket errors/.test(out)) throw new Error(`wrk reported errors: ${out.replace(/\s+/g, ' ')}`);
  const m = /Transfer\/sec:\s+([\d.]+)([KMG]?B)/.exec(out);
  if (!m) throw new Error(`wrk: no Transfer/sec in: ${out.replace(/\s+/g, ' ')}`);
  const scale: Record<string, number> = { B: 1 / 1048576, KB: 1 / 1024, MB: 1, GB: 1024 };
  return Number(m[1]) * scale[m[2]!]!;
}

/** The httpd container with a published port, and the two host-side addresses to reach it by. */
async function startServer(d: Daemon): Promise<Target[]> {
  const script =
    `mkdir -p /www && echo hello > /www/index.html && dd if=/dev/zero of=/www/big bs=1M count=${BIG_MIB} 2>/dev/null` +
    ' && exec httpd -f -p 80 -h /www';
  await lab.timed(d.cli('run', '-d', '--name', 'web', '-p', '80', 'busybox', 'sh', '-c', script));
  const portOut = mustSpawn([DOCKER, ...d.cli('port', 'web', '80/tcp').slice(1)], 30_000);
  const port = Number(/^0\.0\.0\.0:(\d+)$/m.exec(portOut)?.[1]);
  if (!(port > 0)) throw new Error(`${d.name}: docker port web: ${portOut}`);
  // The host's address on the bridge: the container's gateway (dockerd 20.10 leaves it out of the bridge's IPAM
  // config when docker0 existed before it started).
  const c = JSON.parse(mustSpawn([DOCKER, ...d.cli('inspect', '--type', 'container', 'web').slice(1)], 30_000));
  const gateway = c[0]?.NetworkSettings?.Networks?.bridge?.Gateway as string | undefined;
  if (!gateway) throw new Error(`${d.name}: the default bridge has no gateway`);
  const targets = [
    { daemon: d, host: '127.0.0.1', port },
    { daemon: d, host: gateway, port },
  ];
  // httpd (and dd before it) may still be starting.
  const client = join(lab.work, 'latency-client.mjs');
  for (let i = 0; ; i++) {
    try {
      for (const t of targets) mustSpawn(inNetns(d, [process.execPath, client, t.host, String(t.port), '1']), 10_000);
      return targets;
    } catch (e) {
      if (i > 100) throw new Error(`${d.name}: the published port does not answer: ${errorText(e)}`);
      await sleep(100);
    }
  }
}

interface Section {
  title: string;
  report: ReportJson;
}

function skipped(name: string, reason: string): CandidateResult {
  return { name, samples: [], phaseSamples: {}, extra: {}, error: `skipped: ${reason}` };
}

async function main(): Promise<number> {
  const missing = missingDaemons();
  if (!which('wrk')) throw new Error('wrk missing: apt-get install wrk');
  for (const [name, why] of Object.entries(missing)) if (chosen(name as Name)) lab.log(`${name}: ${why}`);
  const before = hostState();
  lab.cleanups.push(() => restoreHost(lab, before));
  lab.cleanups.push(() => killLeftovers(lab));
  writeFileSync(join(lab.work, 'latency-client.mjs'), LATENCY_CLIENT);
  const client = join(lab.work, 'latency-client.mjs');

  lab.log('making the busybox-static image');
  const busybox = makeBusyboxArchive(lab);
  const failed: Partial<Record<Name, string>> = { ...missing };
  const daemons = await startDaemons(lab, chosen, failed, busybox.file);
  const unavailable = (label: (n: Name) => string) =>
    CANDIDATES.filter((n) => chosen(n) && failed[n]).map((n) => skipped(label(n), failed[n]!));
  const sections: Section[] = [];
  const section = (title: string, name: string, rs: CandidateResult[]) =>
    sections.push({ title, report: toJson(`network ${name}`, { n: args.n, warmup: args.warmup }, rs) });
  const progress = {
    onRound: (round: number, rounds: number) => {
      if (!args.json && process.stderr.isTTY) process.stderr.write(`\r  round ${round + 1}/${rounds}`);
    },
  };
  const done = () => {
    if (!args.json && process.stderr.isTTY) process.stderr.write('\n');
  };

  // 1. docker run --rm busybox true on the default bridge.
  lab.log(`docker run --rm busybox true: ${daemons.map((d) => d.name).join(', ')} alternately, n=${args.n}`);
  const runs = await runAlternating(
    daemons.map((d) => ({
      name: d.name,
      iterate: lab.guard(() => lab.timed(d.cli('run', '--rm', 'busybox', 'true'))),
    })),
    { n: args.n, warmup: args.warmup, ...progress },
  ).finally(done);
  section('`docker run --rm busybox true` on the default bridge', 'run', [...runs, ...unavailable((n) => n)]);

  // 2 and 3: a published port, from the loopback and from the bridge's address.
  const servers: Target[][] = [];
  const serverFailed: Partial<Record<Name, string>> = {};
  for (const d of daemons) {
    try {
      servers.push(await startServer(d));
    } catch (e) {
      serverFailed[d.name] = errorText(e);
      lab.log(`${d.name}: ${serverFailed[d.name]}`);
    }
  }
  // A daemon whose published port does not work has failed these parts (not skipped them).
  const notServing = (): CandidateResult[] =>
    Object.entries(serverFailed).map(([name, why]) => ({
      name,
      samples: [],
      phaseSamples: {},
      extra: {},
      error: `no published port: ${why}`,
    }));
  const via = [
    { key: 'loopback', what: 'from 127.0.0.1 (the host loopback)' },
    { key: 'bridge', what: "from the default bridge's gateway address (the host's address on it)" },
  ];
  for (const [k, v] of via.entries()) {
    if (lab.interrupted) throw new Error('interrupted');
    const targets = servers.map((ts) => ts[k]!);
    lab.log(`latency ${v.what}: ${targets.map((t) => `${t.daemon.name} ${t.host}:${t.port}`).join(', ')}`);
    const lat = await runAlternating(
      targets.map((t) => ({ name: t.daemon.name, iterate: lab.guard(async () => latencyRound(t, client)) })),
      { n: args.n, warmup: args.warmup, ...progress },
    ).finally(done);
    section(
      `TCP connect + GET / + response + close through a published port, ${v.what}: median of ${CONNECTIONS} per round`,
      `latency-${v.key}`,
      [...lat, ...notServing(), ...unavailable((n) => n)],
    );

    lab.log(`throughput ${v.what}: wrk ${WRK_SECONDS} s per round`);
    const mibs: Record<string, number[]> = {};
    const tput = await runAlternating(
      targets.map((t) => ({
        name: t.daemon.name,
        iterate: lab.guard(async () => {
          const r = throughputRound(t);
          (mibs[t.daemon.name] ??= []).push(r);
          return (1024 / r) * 1000;
        }),
      })),
      { n: args.n, warmup: args.warmup, ...progress },
    ).finally(done);
    for (const r of tput) {
      const counted = (mibs[r.name] ?? []).slice(args.warmup);
      if (counted.length > 0) r.extra = { 'MiB/s (median)': median(counted).toFixed(0) };
    }
    section(
      `TCP throughput through a published port, ${v.what}: wrk -t1 -c1 pulling a ${BIG_MIB} MiB file; time per GiB`,
      `throughput-${v.key}`,
      [...tput, ...notServing(), ...unavailable((n) => n)],
    );
  }

  const notes = [
    'dockerd (default config) serves published ports on 127.0.0.1 through its userland docker-proxy (iptables ' +
      "leaves loopback destinations out of its DNAT) and on the bridge's address through iptables DNAT; skiffd " +
      'DNATs both in the kernel with nftables (route_localnet for loopback)',
    `latency: a Node client (net.connect, HTTP/1.0 GET /, read to the server's close; busybox httpd closes each ` +
      `connection) in the daemon's network namespace, ${CONNECTIONS} connections one after another per round; the ` +
      "round's sample is their median",
    `throughput: wrk -t1 -c1 -d${WRK_SECONDS}s of a ${BIG_MIB} MiB file of zeros in the container's writable layer; ` +
      "sample = 1 GiB / wrk's Transfer/sec (lower is faster, so the ratio reads as for the other rows)",
    'skiffd runs in its own mount + network namespace, dockerd + containerd in the host network namespace; ' +
      `dockerd ${version('/usr/sbin/dockerd')}, containerd ${version('/usr/bin/containerd')}, runc; skiffd at ${gitHead()}`,
    ...lab.notes,
  ];
  const out = { sections, notes };
  if (args.json) console.log(JSON.stringify(out, null, 2));
  else {
    const parts: string[] = [];
    for (const s of sections) parts.push(`== ${s.title}`, formatReport(s.report), '');
    parts.push(...notes.map((n) => `note: ${n}`));
    console.log(parts.join('\n'));
  }
  const bad = sections.flatMap((s) => s.report.candidates.filter((c) => !c.ok && !c.error?.startsWith('skipped:')));
  for (const c of bad) lab.log(`${c.name}: ${c.error}`);
  return bad.length > 0 ? 1 : 0;
}

await lab.main(main);
