// Containers: metadata and bundles. Create checks the input, makes <root>/bundles/<id>/, mounts the rootfs there,
// writes config.json, and commits by writing the container's record; any failure undoes what was done, so a
// failed create leaves nothing. Delete undoes it all (refused while a task exists).
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../common/atomic-file.js';
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from '../common/errors.js';
import type { KeyedLock } from '../common/keyed-lock.js';
import { errorMessage, logger } from '../common/log.js';
import { nowRfc3339 } from '../common/timestamp.js';
import type { EventBus, EventPayload } from './events.js';
import { matches, parseFilters } from './filters.js';
import { isMountPoint, mountAll, unmountAll } from './mounts.js';
import type { ContainerRecord, ContainerStore, LogSpec, MountSpec } from './store.js';
import { checkContainerId, checkLog, checkMounts, parseSpec } from './validate.js';

const log = logger('containers');

export interface ContainerInput {
  id: string;
  spec: string;
  rootfs: MountSpec[];
  labels: Record<string, string>;
  log: LogSpec;
}

export interface ContainerServiceOptions {
  store: ContainerStore;
  bus: EventBus;
  lock: KeyedLock;
  /** Bundles live in <root>/bundles/<id>/. */
  root: string;
  hasTask: (id: string) => boolean;
}

export class ContainerService {
  constructor(private readonly o: ContainerServiceOptions) {}

  bundleDir(id: string): string {
    return join(this.o.root, 'bundles', id);
  }

  private publish(rec: ContainerRecord, payload: EventPayload): void {
    this.o.bus.publish(this.o.bus.makeEvent(rec.id, rec.labels, payload));
  }

  /** The effective spec: with rootfs mounts, root.path is the bundle's rootfs; without, it must be absolute. */
  private effectiveSpec(text: string, rootfs: MountSpec[]): string {
    const spec = parseSpec(text);
    const root = (spec.root ?? {}) as { path?: string; readonly?: boolean };
    if (rootfs.length > 0) spec.root = { ...root, path: 'rootfs' };
    else if (!root.path || !root.path.startsWith('/'))
      throw invalidArgument(
        'container spec: root.path must be an absolute path when no rootfs mounts are given (or give rootfs mounts)',
      );
    return JSON.stringify(spec);
  }

  async create(input: ContainerInput): Promise<ContainerRecord> {
    const id = checkContainerId(input.id);
    checkMounts(input.rootfs);
    checkLog(input.log.path, input.log.maxSize, input.log.maxFile);
    const spec = this.effectiveSpec(input.spec, input.rootfs);
    return this.o.lock.run(id, async () => {
      if (this.o.store.has(id)) throw alreadyExists(`container ${JSON.stringify(id)} already exists: pick another id`);
      const bundle = this.bundleDir(id);
      this.removeBundle(bundle); // leftovers of a create that crashed before its record was written
      const rootfs = join(bundle, 'rootfs');
      try {
        mkdirSync(bundle, { recursive: true, mode: 0o711 });
        if (input.rootfs.length > 0) {
          mkdirSync(rootfs, { mode: 0o755 });
          mountAll(input.rootfs, rootfs);
        }
        writeFileAtomic(join(bundle, 'config.json'), spec, 0o600);
      } catch (err) {
        this.removeBundle(bundle);
        throw failedPrecondition(`cannot prepare the bundle of container ${JSON.stringify(id)}: ${errorMessage(err)}`);
      }
      const now = nowRfc3339();
      const rec: ContainerRecord = {
        id,
        spec,
        rootfs: input.rootfs,
        labels: input.labels,
        log: input.log,
        createdAt: now,
        updatedAt: now,
        bundle,
      };
      try {
        this.o.store.put(rec);
      } catch (err) {
        this.removeBundle(bundle);
        throw err;
      }
      this.publish(rec, { kind: 'container_create', labels: rec.labels });
      return rec;
    });
  }

  get(id: string): ContainerRecord {
    const rec = this.o.store.get(id);
    if (!rec) throw notFound(`container ${JSON.stringify(id)} not found`);
    return rec;
  }

  list(filters: readonly string[]): ContainerRecord[] {
    const parsed = parseFilters(filters);
    return this.o.store.list().filter((rec) =>
      matches(parsed, (field) => {
        if (field === 'id') return rec.id;
        if (field.startsWith('labels.')) return rec.labels[field.slice('labels.'.length)];
        return undefined;
      }),
    );
  }

  async update(input: Partial<ContainerInput> & { id: string }, mask: readonly string[]): Promise<ContainerRecord> {
    const id = checkContainerId(input.id);
    const paths = mask.length > 0 ? mask : ['labels', 'log'];
    return this.o.lock.run(id, async () => {
      const cur = this.get(id);
      const next: ContainerRecord = { ...cur, labels: { ...cur.labels }, updatedAt: nowRfc3339() };
      let specChanged = false;
      for (const p of paths) {
        if (p === 'labels') next.labels = { ...(input.labels ?? {}) };
        else if (p.startsWith('labels.')) {
          const key = p.slice('labels.'.length);
          const v = input.labels?.[key];
          if (v === undefined || v === '') delete next.labels[key];
          else next.labels[key] = v;
        } else if (p === 'log') {
          const l = input.log ?? { path: '', maxSize: 0, maxFile: 0 };
          checkLog(l.path, l.maxSize, l.maxFile);
          next.log = l;
        } else if (p === 'spec') {
          if (this.o.hasTask(id))
            throw failedPrecondition(
              `container ${JSON.stringify(id)} has a task: delete the task before changing the spec`,
            );
          next.spec = this.effectiveSpec(input.spec ?? '', cur.rootfs);
          specChanged = true;
        } else if (p === 'rootfs' || p === 'id')
          throw invalidArgument(`${p} cannot be updated: create a new container`);
        else throw invalidArgument(`update_mask: unknown field ${JSON.stringify(p)} (labels, labels.<key>, spec, log)`);
      }
      if (specChanged) writeFileAtomic(join(cur.bundle, 'config.json'), next.spec, 0o600);
      this.o.store.put(next);
      this.publish(next, { kind: 'container_update', labels: next.labels });
      return next;
    });
  }

  async delete(idIn: string): Promise<void> {
    const id = checkContainerId(idIn);
    return this.o.lock.run(id, async () => {
      const rec = this.get(id);
      if (this.o.hasTask(id))
        throw failedPrecondition(
          `container ${JSON.stringify(id)} has a task: kill and delete the task first (Tasks.Kill, Tasks.Delete)`,
        );
      try {
        this.removeBundle(rec.bundle);
      } catch (err) {
        throw failedPrecondition(`cannot remove the bundle of ${JSON.stringify(id)}: ${errorMessage(err)}`);
      }
      this.o.store.remove(id);
      this.publish(rec, { kind: 'container_delete' });
    });
  }

  /** Unmount and remove a bundle directory; never follows into a still-mounted rootfs. */
  removeBundle(bundle: string): void {
    if (!existsSync(bundle)) return;
    const rootfs = join(bundle, 'rootfs');
    unmountAll(rootfs);
    if (isMountPoint(rootfs)) throw failedPrecondition(`${rootfs} is still mounted; not removing it`);
    rmSync(bundle, { recursive: true, force: true });
  }

  /** After a restart: mount again the rootfs of containers whose mounts are gone (the VM rebooted). */
  remount(rec: ContainerRecord): void {
    if (rec.rootfs.length === 0) return;
    const rootfs = join(rec.bundle, 'rootfs');
    if (isMountPoint(rootfs)) return;
    try {
      mkdirSync(rootfs, { recursive: true, mode: 0o755 });
      mountAll(rec.rootfs, rootfs);
      log.info(`container ${rec.id}: rootfs mounted again`);
    } catch (err) {
      log.error(`container ${rec.id}: cannot mount its rootfs again: ${errorMessage(err)}`);
    }
  }
}
