// Puts the supervisor together: store, events bus, container service, task manager, recovery, then the gRPC server
// on its unix socket. main.ts parses the command line and supplies the shim launcher.
import { connect } from 'node:net';
import { chmodSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { ServerCredentials, type Server } from '@grpc/grpc-js';
import { KeyedLock } from '../common/keyed-lock.js';
import { logger } from '../common/log.js';
import { ContainerService } from './containers.js';
import { EventBus } from './events.js';
import { recover } from './recovery.js';
import { Runtime } from './runtime.js';
import { makeServer } from './server.js';
import type { ShimLauncher } from './shim-types.js';
import { ContainerStore } from './store.js';
import { TaskManager } from './tasks.js';

const log = logger('supervisor');

export interface SupervisorOptions {
  /** Unix socket path of the gRPC API. */
  address: string;
  /** State: <root>/containers/*.json, <root>/bundles/<id>/. */
  root: string;
  /** The runtime's --root. */
  runtimeRoot: string;
  /** Shim directories: <stateDir>/<id>/. */
  stateDir: string;
  /** The OCI runtime binary. */
  runtime: string;
  launcher: ShimLauncher;
  livenessInterval?: number;
}

export interface RunningSupervisor {
  server: Server;
  tasks: TaskManager;
  bus: EventBus;
  stop(): Promise<void>;
}

/** Refuse to start over a socket someone still answers on; remove a stale one. */
async function claimSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const live = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (live) throw new Error(`another process is serving ${path}: stop it first, or give another --address`);
  rmSync(path, { force: true });
}

export async function startSupervisor(o: SupervisorOptions): Promise<RunningSupervisor> {
  for (const d of [o.root, o.runtimeRoot, o.stateDir]) mkdirSync(d, { recursive: true, mode: 0o700 });
  mkdirSync(dirname(o.address), { recursive: true, mode: 0o755 });
  await claimSocket(o.address);

  const store = new ContainerStore(o.root);
  const bus = new EventBus();
  const lock = new KeyedLock();
  const runtime = new Runtime(o.runtime, o.runtimeRoot);
  const tasks = new TaskManager({
    store,
    bus,
    runtime,
    launcher: o.launcher,
    lock,
    stateDir: o.stateDir,
    livenessInterval: o.livenessInterval ?? 2000,
  });
  const containers = new ContainerService({ store, bus, lock, root: o.root, hasTask: (id) => tasks.hasTask(id) });

  const t0 = Date.now();
  const r = await recover({ store, containers, tasks, runtime, root: o.root, stateDir: o.stateDir });
  log.info(`recovered ${r.containers} containers, ${r.tasks} tasks in ${Date.now() - t0} ms`);

  const server = makeServer({ containers, tasks, bus });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${o.address}`, ServerCredentials.createInsecure(), (err) =>
      err ? reject(new Error(`cannot listen on ${o.address}: ${err.message}`)) : resolve(),
    ),
  );
  chmodSync(o.address, 0o600);
  log.info(`listening on ${o.address}`);

  return {
    server,
    tasks,
    bus,
    stop: async () => {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      });
      tasks.close();
      rmSync(o.address, { force: true });
    },
  };
}
