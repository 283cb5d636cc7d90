// The container store: one directory per container under <data-root>/containers/<id>/ holding config.json (the
// record, written with write-fsync-rename), the /etc files bind-mounted into it, and its json-file log. Names are
// unique; lookups by full id, name (with or without "/") or unique id prefix, as dockerd's.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../common/atomic-file.js';
import { logger, errorMessage } from '../../common/log.js';
import { badRequest, conflict, notFoundError, type ContainerRecordView, type PreparedRootfs } from '../contracts.js';
import type { MountPoint } from './spec.js';

const log = logger('containers');

export type ContainerStatus = ContainerRecordView['state']['status'];

export interface ContainerRecord extends ContainerRecordView {
  path: string;
  args: string[];
  rootfs: PreparedRootfs;
  mountPoints: MountPoint[];
  restartCount: number;
  /** Stopped by the user (stop, kill with the stop signal): restart policies leave it alone. */
  manuallyStopped: boolean;
  hasBeenStarted: boolean;
  hostnamePath: string;
  hostsPath: string;
  resolvConfPath: string;
  platform: string;
  /** Health as last recorded by the healthcheck monitor (health.ts). */
  health?: { Status: string; FailingStreak: number; Log: unknown[] };
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

const idRe = /^[0-9a-f]{64}$/;

export class ContainerStore {
  private readonly byId = new Map<string, ContainerRecord>();
  private readonly byName = new Map<string, string>();
  readonly root: string;

  constructor(dataRoot: string) {
    this.root = join(dataRoot, 'containers');
    mkdirSync(this.root, { recursive: true, mode: 0o711 });
  }

  dir(id: string): string {
    return join(this.root, id);
  }

  /** Read every container from disk (after a restart); directories without a readable record are skipped. */
  load(): ContainerRecord[] {
    for (const id of readdirSync(this.root)) {
      if (!idRe.test(id)) continue;
      const file = join(this.root, id, 'config.json');
      if (!existsSync(file)) {
        log.warn(`container ${id}: no config.json; removing its directory (a create that did not finish)`);
        rmSync(join(this.root, id), { recursive: true, force: true });
        continue;
      }
      try {
        const rec = JSON.parse(readFileSync(file, 'utf8')) as ContainerRecord;
        this.byId.set(rec.id, rec);
        this.byName.set(rec.name, rec.id);
      } catch (err) {
        log.error(`container ${id}: unreadable config.json: ${errorMessage(err)}`);
      }
    }
    return this.list();
  }

  list(): ContainerRecord[] {
    return [...this.byId.values()];
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** The id holding a name ("/x"), if any. */
  nameOwner(name: string): string | undefined {
    return this.byName.get(name.startsWith('/') ? name : `/${name}`);
  }

  /** Reserve a name for a container id; a 409 when taken. */
  reserveName(name: string, id: string): void {
    const owner = this.byName.get(name);
    if (owner !== undefined && owner !== id)
      throw conflict(
        `Conflict. The container name "${name}" is already in use by container "${owner}". You have to remove (or rename) that container to be able to reuse that name.`,
      );
    this.byName.set(name, id);
  }

  releaseName(name: string, id: string): void {
    if (this.byName.get(name) === id) this.byName.delete(name);
  }

  /** Persist a record (and index it). */
  put(rec: ContainerRecord): void {
    mkdirSync(this.dir(rec.id), { recursive: true, mode: 0o711 });
    writeFileAtomic(join(this.dir(rec.id), 'config.json'), JSON.stringify(rec), 0o600);
    this.byId.set(rec.id, rec);
    this.byName.set(rec.name, rec.id);
  }

  remove(id: string): void {
    const rec = this.byId.get(id);
    if (!rec) return;
    rmSync(this.dir(id), { recursive: true, force: true });
    this.byId.delete(id);
    this.releaseName(rec.name, id);
  }

  /** dockerd's GetContainer: full id, then name, then unique id prefix. */
  find(ref: string): ContainerRecord | undefined {
    if (ref === '') return undefined;
    const direct = this.byId.get(ref);
    if (direct) return direct;
    const byName = this.byName.get(ref.startsWith('/') ? ref : `/${ref}`);
    if (byName) return this.byId.get(byName);
    if (!/^[0-9a-f]+$/.test(ref)) return undefined;
    let found: ContainerRecord | undefined;
    for (const [id, rec] of this.byId) {
      if (!id.startsWith(ref)) continue;
      if (found) throw badRequest(`multiple IDs found with provided prefix: ${ref}`);
      found = rec;
    }
    return found;
  }

  get(ref: string): ContainerRecord {
    const rec = this.find(ref);
    if (!rec) throw notFoundError(`No such container: ${ref}`);
    return rec;
  }
}
