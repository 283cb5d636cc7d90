// Start-up recovery: load the store, mount again any rootfs that is gone, re-attach every task to its shim (or
// report what happened while the supervisor was down), and remove what no record owns: bundles, shim
// directories and runtime state left by creates that crashed before their commit.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage, logger } from '../common/log.js';
import type { ContainerService } from './containers.js';
import type { Runtime } from './runtime.js';
import type { ContainerStore } from './store.js';
import type { TaskManager } from './tasks.js';

const log = logger('recovery');

export interface RecoveryOptions {
  store: ContainerStore;
  containers: ContainerService;
  tasks: TaskManager;
  runtime: Runtime;
  root: string;
  stateDir: string;
}

function entries(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((n) => !n.startsWith('.')) : [];
}

export async function recover(o: RecoveryOptions): Promise<{ containers: number; tasks: number }> {
  const recs = o.store.load();
  for (const rec of recs) o.containers.remount(rec);
  const withTask = recs.filter((r) => r.task);
  await Promise.all(
    withTask.map((r) =>
      o.tasks.recover(r).catch((err: unknown) => log.error(`container ${r.id}: recovery failed: ${errorMessage(err)}`)),
    ),
  );

  const known = new Set(recs.map((r) => r.id));
  for (const name of entries(join(o.root, 'bundles'))) {
    if (known.has(name)) continue;
    log.info(`removing the bundle of unknown container ${name}`);
    try {
      o.containers.removeBundle(join(o.root, 'bundles', name));
    } catch (err) {
      log.error(`cannot remove the leftover bundle ${name}: ${errorMessage(err)}`);
    }
  }
  const tasked = new Set(recs.filter((r) => o.store.get(r.id)?.task).map((r) => r.id));
  const orphans = new Set([...entries(o.stateDir), ...entries(o.runtime.root)].filter((n) => !tasked.has(n)));
  for (const name of orphans) {
    log.info(`removing the shim directory and runtime state of ${name}, which no task owns`);
    try {
      await o.tasks.cleanupLeftovers(name, join(o.stateDir, name));
    } catch (err) {
      log.error(`cannot clean up after ${name}: ${errorMessage(err)}`);
    }
  }
  return { containers: recs.length, tasks: withTask.length };
}
