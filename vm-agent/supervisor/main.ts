// skiff-supervisor: containers and tasks over gRPC (proto/supervisor.proto), one skiff-shim per task.
// Built into dist/bin/skiff-supervisor by scripts/build-ts.mjs. See --help.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { errorMessage, logger, setLogLevel, type Level } from '../common/log.js';
import { ShimClientLauncher } from './shim-client.js';
import { startSupervisor } from './supervisor.js';

const log = logger('supervisor');

const usage = `usage: skiff-supervisor [options]

  --address PATH       unix socket of the gRPC API (default /run/skiff/supervisor.sock; alias --socket)
  --root DIR           state: container records and bundles (default /var/lib/skiff/supervisor)
  --runtime-root DIR   the OCI runtime's state root (default /run/skiff/runtime)
  --state DIR          shim directories, one per task (default /run/skiff/shims; alias --shim-dir)
  --runtime PATH       the OCI runtime (default: skiff-runtime beside this program, else on PATH)
  --shim PATH          skiff-shim (default: beside this program, else on PATH)
  --log-level LEVEL    debug, info, warn (default) or error; --debug is --log-level debug
  -h, --help
`;

/** A program beside this one (dist/bin), else its name for PATH lookup. */
function sibling(name: string): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const p of [join(here, name), join(here, '../../dist/bin', name)]) if (existsSync(p)) return p;
  return name;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      address: { type: 'string' },
      socket: { type: 'string' },
      root: { type: 'string', default: '/var/lib/skiff/supervisor' },
      'runtime-root': { type: 'string', default: '/run/skiff/runtime' },
      state: { type: 'string' },
      'shim-dir': { type: 'string' },
      runtime: { type: 'string' },
      shim: { type: 'string' },
      'log-level': { type: 'string' },
      debug: { type: 'boolean', default: false },
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

  const sup = await startSupervisor({
    address: values.address ?? values.socket ?? '/run/skiff/supervisor.sock',
    root: values.root,
    runtimeRoot: values['runtime-root'],
    stateDir: values.state ?? values['shim-dir'] ?? '/run/skiff/shims',
    runtime: values.runtime ?? sibling('skiff-runtime'),
    launcher: new ShimClientLauncher({ binary: values.shim ?? sibling('skiff-shim') }),
  });

  let stopping = false;
  const stop = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    log.info(`${sig}: stopping (containers and their shims go on)`);
    sup.stop().then(
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
  process.stderr.write(`skiff-supervisor: ${errorMessage(err)}\n`);
  process.exit(1);
});
