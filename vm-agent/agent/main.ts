// skiff-agent: the VM-side gRPC API (docs/agent.md). Starts skiff-supervisor and skiffd and keeps them running,
// then serves skiff.agent.v1. Built into dist/bin/skiff-agent by scripts/build-ts.mjs. See --help.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { errorMessage, logger, setLogLevel, type Level } from '../common/log.js';
import { sibling } from '../daemon/supervisor-launch.js';
import type { AgentConfig } from './contracts.js';
import { LocalEngine } from './engine.js';
import { startAgentServer } from './server.js';

const log = logger('agent');

const usage = `usage: skiff-agent [options]

  --native             run the engine on this Linux host, without a VM (for Linux users and the tests)
  --root DIR           persistent state: DIR/daemon (skiffd's data root), DIR/supervisor (default /var/lib/skiff)
  --run DIR            run-time state: sockets, pid files, logs (DIR/log), shims (default /run/skiff)
  --socket PATH        where skiff.agent.v1 is served (default <run>/agent.sock)
  --log-level LEVEL    debug, info (default), warn or error; for the agent, skiffd and the supervisor
  --skiffd-arg ARG     one more skiffd flag (repeatable): --skiffd-arg=--bip=10.99.0.1/24
  -h, --help

The Docker API is served by skiffd on <run>/docker.sock, the supervisor on <run>/supervisor.sock.
`;

const LEVELS = ['debug', 'info', 'warn', 'error'];

function parse(argv: string[]): { config: AgentConfig; native: boolean; root: string } | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      native: { type: 'boolean', default: false },
      root: { type: 'string', default: '/var/lib/skiff' },
      run: { type: 'string', default: '/run/skiff' },
      socket: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      'skiffd-arg': { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(usage);
    return undefined;
  }
  const level = values['log-level'];
  if (!LEVELS.includes(level)) throw new Error(`--log-level ${level}: want one of ${LEVELS.join(', ')}`);
  setLogLevel(level as Level);
  const root = resolve(values.root);
  const run = resolve(values.run);
  const here = dirname(fileURLToPath(import.meta.url));
  const config: AgentConfig = {
    socket: resolve(values.socket ?? join(run, 'agent.sock')),
    dockerSocket: join(run, 'docker.sock'),
    supervisorSocket: join(run, 'supervisor.sock'),
    dataRoot: join(root, 'daemon'),
    runDir: run,
    skiffd: sibling(here, 'skiffd'),
    supervisor: sibling(here, 'skiff-supervisor'),
    runtime: sibling(here, 'skiff-runtime'),
    shim: sibling(here, 'skiff-shim'),
    skiffdArgs: values['skiffd-arg'],
    logLevel: level,
  };
  return { config, native: values.native, root };
}

/** Every program the engine needs, before anything starts: a missing one is a build or install problem. */
function checkPrograms(c: AgentConfig): void {
  const missing = [c.skiffd, c.supervisor, c.runtime, c.shim].filter((p) => !existsSync(p));
  if (missing.length > 0)
    throw new Error(
      `missing ${missing.join(', ')}: skiff-agent runs the programs beside it (dist/bin); build them with \`npm run build\``,
    );
}

async function main(): Promise<void> {
  const parsed = parse(process.argv.slice(2));
  if (!parsed) return;
  const { config, native, root } = parsed;
  checkPrograms(config);
  mkdirSync(root, { recursive: true, mode: 0o711 });
  mkdirSync(config.runDir, { recursive: true, mode: 0o755 });

  const engine = new LocalEngine(config);
  engine.start();
  let server: Awaited<ReturnType<typeof startAgentServer>>;
  try {
    server = await startAgentServer(engine, config.socket);
  } catch (err) {
    await engine.stop();
    throw err;
  }
  log.info(`${native ? 'native mode: ' : ''}engine state in ${root} and ${config.runDir}, API on ${config.socket}`);
  engine.waitReady().then(
    () => log.info(`engine ready: Docker API on ${config.dockerSocket}`),
    (err: unknown) => log.error(errorMessage(err)),
  );

  let stopping = false;
  const stop = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    log.info(`${sig}: stopping skiffd and the supervisor (containers go on)`);
    server
      .close()
      .then(() => engine.stop())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          log.error(`stopping: ${errorMessage(err)}`);
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`skiff-agent: ${errorMessage(err)}\n`);
  process.exit(1);
});
