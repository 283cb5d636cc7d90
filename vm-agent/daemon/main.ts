// skiffd: the Docker Engine API (docs/daemon.md). Flags follow dockerd's. It reaches containers only through
// skiff-supervisor, which it starts when none answers. Built into dist/bin/skiffd by scripts/build-ts.mjs.
import { existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { errorMessage, logger, setLogLevel, type Level } from '../common/log.js';
import * as containers from './containers/index.js';
import * as streams from './containers/streams-index.js';
import type { ContainerService, Daemon, DaemonConfig, ImageService } from './contracts.js';
import * as images from './images/index.js';
import * as networks from './networks/index.js';
import * as registry from './registry/index.js';
import { HttpRouter, startApiServer } from './server/index.js';
import { reachSupervisor, sibling } from './supervisor-launch.js';
import * as system from './system/index.js';
import * as volumes from './volumes/index.js';

const log = logger('skiffd');

const usage = `usage: skiffd [options]

  -H, --host unix:///PATH   the API socket (default unix:///run/skiff/docker.sock)
  --data-root DIR           images and containers (default /var/lib/skiff/daemon)
  --exec-root DIR           run-time state (default /run/skiff/daemon)
  --pidfile PATH            write the pid here (refused while another live skiffd holds it)
  --live-restore[=BOOL]     leave containers running while skiffd is down (default true)
  --log-level LEVEL         debug, info, warn (default) or error; -D/--debug is --log-level debug
  --supervisor PATH         skiff-supervisor's socket (default /run/skiff/supervisor.sock); started if silent
  --runtime PATH            the OCI runtime for a supervisor skiffd starts (default: skiff-runtime beside skiffd)
  --shim PATH               skiff-shim for a supervisor skiffd starts (default: beside skiffd)
  --bip CIDR                the default bridge's address (default 192.168.215.1/24)
  --default-address-pool base=CIDR,size=N
                            where user networks get subnets (default base=10.221.0.0/16,size=24)
  --host-gateway-ip IP      what host.docker.internal resolves to (default: the default bridge's address)
  -h, --help
`;

export const VERSION = { api: '1.50', minApi: '1.24', engine: '28.2.2' };

/** `--live-restore`, `--live-restore=false|true|0|1`: taken out of argv (parseArgs has no boolean values). */
function takeLiveRestore(argv: string[]): { argv: string[]; liveRestore: boolean } {
  let liveRestore = true;
  const rest: string[] = [];
  for (const a of argv) {
    const m = /^--live-restore(?:=(.*))?$/.exec(a);
    if (!m) rest.push(a);
    else if (m[1] === undefined) liveRestore = true;
    else if (/^(true|1|yes)$/i.test(m[1])) liveRestore = true;
    else if (/^(false|0|no)$/i.test(m[1])) liveRestore = false;
    else throw new Error(`--live-restore=${m[1]}: want true or false`);
  }
  return { argv: rest, liveRestore };
}

function socketPath(host: string): string {
  if (host.startsWith('unix://')) return host.slice('unix://'.length);
  if (host.startsWith('/')) return host;
  throw new Error(`-H ${host}: only unix:///path is served`);
}

function writePidfile(path: string): void {
  if (existsSync(path)) {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    if (pid > 0 && pid !== process.pid && existsSync(`/proc/${pid}`))
      throw new Error(`pid file found, ensure skiffd is not running or delete ${path}`);
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${process.pid}\n`);
}

// Away from the ranges home and office LANs, VPNs and Docker itself use most (docs/networking.md).
const DEFAULT_BRIDGE_CIDR = '192.168.215.1/24';
const DEFAULT_ADDRESS_POOL = 'base=10.221.0.0/16,size=24';

/** dockerd's `--default-address-pool base=10.221.0.0/16,size=24`. */
function parseAddressPool(s: string): { base: string; size: number } {
  const kv = new Map(s.split(',').map((p) => p.split('=', 2) as [string, string]));
  const base = kv.get('base');
  const size = Number(kv.get('size'));
  if (!base || !/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(base) || !Number.isInteger(size) || size < 8 || size > 30)
    throw new Error(`--default-address-pool ${s}: expected base=<IPv4 CIDR>,size=<prefix length 8-30>`);
  return { base, size };
}

async function main(): Promise<void> {
  const pre = takeLiveRestore(process.argv.slice(2));
  const { values } = parseArgs({
    args: pre.argv,
    options: {
      host: { type: 'string', short: 'H', multiple: true },
      'data-root': { type: 'string', default: '/var/lib/skiff/daemon' },
      'exec-root': { type: 'string', default: '/run/skiff/daemon' },
      pidfile: { type: 'string', short: 'p' },
      'log-level': { type: 'string', short: 'l' },
      debug: { type: 'boolean', short: 'D', default: false },
      supervisor: { type: 'string' },
      runtime: { type: 'string' },
      shim: { type: 'string' },
      bip: { type: 'string', default: DEFAULT_BRIDGE_CIDR },
      'default-address-pool': { type: 'string', multiple: true },
      'host-gateway-ip': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(usage);
    return;
  }
  const level = values.debug ? 'debug' : values['log-level'];
  if (level !== undefined) {
    if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new Error(`--log-level ${level}: ${usage}`);
    setLogLevel(level as Level);
  }
  const here = dirname(fileURLToPath(import.meta.url));
  const dataRoot = resolve(values['data-root']);
  const execRoot = resolve(values['exec-root']);
  const config: DaemonConfig = {
    host: socketPath(values.host?.at(-1) ?? 'unix:///run/skiff/docker.sock'),
    dataRoot,
    execRoot,
    supervisorAddress: resolve(values.supervisor ?? '/run/skiff/supervisor.sock'),
    liveRestore: pre.liveRestore,
    bridge: { name: 'skiff0', cidr: values.bip },
    addressPools: (values['default-address-pool'] ?? [DEFAULT_ADDRESS_POOL]).map(parseAddressPool),
    hostGatewayIp: values['host-gateway-ip'],
    version: VERSION,
  };
  mkdirSync(dataRoot, { recursive: true, mode: 0o711 });
  mkdirSync(execRoot, { recursive: true, mode: 0o700 });
  if (values.pidfile) writePidfile(values.pidfile);

  const supervisor = await reachSupervisor({
    address: config.supervisorAddress,
    binary: sibling(here, 'skiff-supervisor'),
    root: join(dataRoot, '..', 'supervisor'),
    runtimeRoot: join(execRoot, '..', 'runtime'),
    shimDir: join(execRoot, '..', 'shims'),
    runtime: values.runtime ?? sibling(here, 'skiff-runtime'),
    shim: values.shim ?? sibling(here, 'skiff-shim'),
    logFile: join(execRoot, 'supervisor.log'),
    logLevel: level,
  });

  // The services reach each other through `daemon`; each is made once the ones it needs are there.
  const daemon = {
    config,
    events: system.createEventBus(),
    supervisor,
    images: undefined as unknown as ImageService,
    containers: undefined as unknown as ContainerService,
  } as unknown as Daemon;
  daemon.images = await images.createImageService(daemon);
  daemon.registry = await registry.createRegistryService(daemon);
  daemon.networks = await networks.createNetworkService(daemon);
  daemon.volumes = await volumes.createVolumeService(daemon);
  daemon.containers = await containers.createContainerService(daemon);

  const router = new HttpRouter();
  for (const m of [system, images, registry, networks, volumes, containers, streams]) m.register(router, daemon);
  const api = await startApiServer({ socket: config.host, router, version: VERSION });
  log.info(`API listening on ${config.host} (data root ${dataRoot}, live restore ${config.liveRestore})`);

  let stopping = false;
  const stop = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    log.info(`${sig}: stopping (containers go on)`);
    const done = (code: number): void => {
      if (values.pidfile) rmQuiet(values.pidfile);
      process.exit(code);
    };
    setTimeout(() => done(0), 5000).unref();
    for (const s of [daemon.containers, daemon.images, daemon.registry, daemon.networks, daemon.volumes] as unknown[])
      void (s as { close?(): unknown } | undefined)?.close?.();
    api.close().then(
      () => {
        supervisor.close();
        done(0);
      },
      (err: unknown) => {
        log.error(`stopping: ${errorMessage(err)}`);
        done(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

function rmQuiet(p: string): void {
  try {
    unlinkSync(p);
  } catch {
    /* gone */
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`skiffd: ${errorMessage(err)}\n`);
  process.exit(1);
});
