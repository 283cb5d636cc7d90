// The container store: one JSON file per container in <root>/containers/<id>.json, written crash-safe
// (write, fsync, rename, fsync the directory). The record is the commit point of every change: a container exists
// once its file does, and a task is known once the record says so.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fsyncDir, writeFileAtomic } from '../common/atomic-file.js';
import { logger } from '../common/log.js';

const log = logger('store');

export interface MountSpec {
  type: string;
  source: string;
  options: string[];
}

export interface LogSpec {
  path: string;
  maxSize: number;
  maxFile: number;
}

export interface ExitRecord {
  pid: number;
  exitCode: number;
  signal: number;
  exitedAt: string;
  oomKilled: boolean;
  /** Set when the exit was not observed live: "shim died", "exited while the supervisor was down". */
  reason?: string;
}

export interface TaskRecord {
  /** The shim is being started: a record still saying so after a restart is a create that never finished. */
  creating?: boolean;
  pid: number;
  tty: boolean;
  stdin: boolean;
  shimDir: string;
  createdAt: string;
  started?: boolean;
  exit?: ExitRecord;
  /** The exit event reached a subscriber (or was published live); never report it again. */
  exitReported?: boolean;
  /** Started exec processes, until deleted: their exits are reported once like the init's. */
  execs?: Record<string, ExecRecord>;
}

export interface ExecRecord {
  pid: number;
  tty: boolean;
  stdin: boolean;
  exit?: ExitRecord;
  exitReported?: boolean;
}

export interface ContainerRecord {
  id: string;
  /** The OCI spec as JSON text, as given (config.json is written from it). */
  spec: string;
  rootfs: MountSpec[];
  labels: Record<string, string>;
  log: LogSpec;
  createdAt: string;
  updatedAt: string;
  bundle: string;
  task?: TaskRecord;
}

export class ContainerStore {
  private readonly dir: string;
  private readonly records = new Map<string, ContainerRecord>();

  constructor(root: string) {
    this.dir = join(root, 'containers');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  /** Read every record from disk (at start). Leftover temp files are removed; unreadable records set aside. */
  load(): ContainerRecord[] {
    this.records.clear();
    for (const name of readdirSync(this.dir)) {
      const path = join(this.dir, name);
      if (name.startsWith('.') && name.endsWith('.tmp')) {
        rmSync(path, { force: true });
        continue;
      }
      if (!name.endsWith('.json')) continue;
      try {
        const rec = parseRecord(readFileSync(path, 'utf8'));
        if (`${rec.id}.json` !== name) throw new Error(`it holds container ${JSON.stringify(rec.id)}`);
        this.records.set(rec.id, rec);
      } catch (err) {
        log.error(`container record ${path} is unreadable (${(err as Error).message}); moved to ${path}.corrupt`);
        renameSync(path, `${path}.corrupt`);
      }
    }
    return this.list();
  }

  get(id: string): ContainerRecord | undefined {
    return this.records.get(id);
  }

  has(id: string): boolean {
    return this.records.has(id);
  }

  list(): ContainerRecord[] {
    return [...this.records.values()].sort(
      (a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id),
    );
  }

  /** Write the record durably, then make it the current one. */
  put(rec: ContainerRecord): void {
    writeFileAtomic(join(this.dir, `${rec.id}.json`), JSON.stringify(rec, null, 2) + '\n');
    this.records.set(rec.id, rec);
  }

  remove(id: string): void {
    rmSync(join(this.dir, `${id}.json`), { force: true });
    fsyncDir(this.dir);
    this.records.delete(id);
  }
}

export function parseRecord(text: string): ContainerRecord {
  const v = JSON.parse(text) as Partial<ContainerRecord>;
  if (typeof v !== 'object' || v === null || typeof v.id !== 'string' || typeof v.spec !== 'string')
    throw new Error('not a container record (id and spec missing)');
  return {
    id: v.id,
    spec: v.spec,
    rootfs: Array.isArray(v.rootfs) ? v.rootfs : [],
    labels: v.labels ?? {},
    log: v.log ?? { path: '', maxSize: 0, maxFile: 0 },
    createdAt: v.createdAt ?? '',
    updatedAt: v.updatedAt ?? v.createdAt ?? '',
    bundle: v.bundle ?? '',
    ...(v.task ? { task: v.task } : {}),
  };
}
