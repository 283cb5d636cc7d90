// Named and anonymous volumes with the local driver, as dockerd: create (an existing name is returned as it is),
// get, list with filters, remove (409 while a container uses it), prune (only anonymous ones unless all=true, from
// API 1.42), the copy-up of the image's content on a volume's first mount, and the events. Implements VolumeService.
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { errorMessage, logger } from '../../common/log.js';
import { KeyedLock } from '../../common/keyed-lock.js';
import {
  DockerError,
  badRequest,
  conflict,
  notFoundError,
  type ContainerService,
  type Daemon,
  type DockerEvent,
  type Filters,
  type PreparedRootfs,
  type VolumeRecordView,
  type VolumeService,
} from '../contracts.js';
import { duBytes } from '../containers/host.js';
import { checkLocalOptions, copyUp, mountDevice, unmountDevice } from './mount.js';
import { ANONYMOUS_LABEL, VolumeStore, checkVolumeName, type VolumeRecord } from './store.js';

const log = logger('volumes');

export interface CreateOptions {
  labels?: Record<string, string> | null;
  /** Local driver options (type, device, o); null when none were given. */
  options?: Record<string, string> | null;
  driver?: string;
  anonymous?: boolean;
}

/** "2026-12-03T10:00:00Z": dockerd's CreatedAt (RFC 3339 without fractions). */
const nowSeconds = (): string => `${new Date().toISOString().slice(0, 19)}Z`;

/** `label=k`, `label=k=v`: does the volume have it? */
function hasLabel(labels: Record<string, string>, want: string): boolean {
  const i = want.indexOf('=');
  return i < 0 ? want in labels : labels[want.slice(0, i)] === want.slice(i + 1);
}

function checkDriver(name: string, driver: string | undefined): void {
  if (driver && driver !== 'local')
    throw notFoundError(`create ${name}: error looking up volume plugin ${driver}: plugin "${driver}" not found`);
}

/** "1.41" < "1.42" */
const apiBelow = (v: string, than: string): boolean => {
  const [a = 0, b = 0] = v.split('.').map(Number);
  const [c = 0, d = 0] = than.split('.').map(Number);
  return a < c || (a === c && b < d);
};

export class Volumes implements VolumeService {
  readonly store: VolumeStore;
  private readonly lock = new KeyedLock();
  private usersOf: (name: string) => string[] = () => [];

  constructor(private readonly daemon: Daemon) {
    this.store = new VolumeStore(daemon.config.dataRoot);
  }

  /** Load the records; mount again the devices of volumes with options (gone after a reboot). */
  init(): void {
    this.store.load();
    // Docker's volume mount/unmount events follow the containers' start and die, which the bus reports.
    const bus = this.daemon.events as { subscribe?(l: (e: { event: DockerEvent }) => void): unknown };
    bus.subscribe?.(({ event }) => {
      if (event.Type === 'container' && (event.Action === 'start' || event.Action === 'die'))
        void this.containerMounts(event.Actor.ID, event.Action === 'start' ? 'mount' : 'unmount').catch(
          (err: unknown) => log.warn(`volume events of container ${event.Actor.ID}: ${errorMessage(err)}`),
        );
    });
    for (const v of this.store.list()) {
      if (!v.options?.device) continue;
      try {
        mountDevice(this.store.dataDir(v.name), v.options);
      } catch (err) {
        log.warn(`volume ${v.name}: ${errorMessage(err)}`);
      }
    }
  }

  // ----- VolumeService ------------------------------------------------------------------------------------------

  get(name: string): VolumeRecordView | undefined {
    const v = this.store.get(name);
    return v && this.recordView(v);
  }

  async ensure(
    name: string | undefined,
    opts: { labels?: Record<string, string>; anonymous?: boolean } & CreateOptions = {},
  ): Promise<VolumeRecordView> {
    return this.recordView(this.create(name, opts));
  }

  async mountFor(
    name: string,
    opts: { rootfs?: PreparedRootfs; containerPath: string; noCopy?: boolean },
  ): Promise<string> {
    return this.lock.run(name, async () => {
      const v = this.mustGet(name);
      const data = this.store.dataDir(name);
      if (v.options?.device) mountDevice(data, v.options);
      if (!v.populated && !opts.noCopy) {
        // Docker fills only an empty volume; "populated" keeps one the user emptied from being filled again.
        if (opts.rootfs && readdirSync(data).length === 0)
          await copyUp(opts.rootfs, opts.containerPath, data, this.store.dir(name));
        v.populated = true;
        this.store.put(v);
      }
      return data;
    });
  }

  async removeAnonymous(names: string[]): Promise<void> {
    for (const name of new Set(names)) {
      const v = this.store.get(name);
      if (!v?.anonymous || this.usersOf(name).length > 0) continue;
      await this.remove(name, false).catch((err: unknown) =>
        log.warn(`anonymous volume ${name}: not removed: ${errorMessage(err)}`),
      );
    }
  }

  setUsers(usersOf: (name: string) => string[]): void {
    this.usersOf = usersOf;
  }

  // ----- the API ------------------------------------------------------------------------------------------------

  /** POST /volumes/create and the container side: an existing volume is returned unchanged (as dockerd). */
  create(nameIn: string | undefined, o: CreateOptions = {}): VolumeRecord {
    const name = nameIn || randomBytes(32).toString('hex');
    const existing = this.store.get(name);
    if (existing) {
      checkDriver(name, o.driver);
      return existing;
    }
    checkVolumeName(name);
    checkDriver(name, o.driver);
    if (o.options) checkLocalOptions(name, o.options);
    const labels = o.anonymous ? { ...(o.labels ?? {}), [ANONYMOUS_LABEL]: '' } : (o.labels ?? null);
    const rec: VolumeRecord = {
      name,
      driver: 'local',
      createdAt: nowSeconds(),
      labels,
      options: o.options ?? null,
      anonymous: !!o.anonymous,
      populated: false,
    };
    this.store.put(rec);
    this.emit('create', name);
    return rec;
  }

  inspect(name: string): Record<string, unknown> {
    return this.apiView(this.mustGet(name));
  }

  /** dockerd's filters: dangling, driver, label, name (a substring). */
  list(filters: Filters): { Volumes: Record<string, unknown>[]; Warnings: string[] } {
    for (const k of filters.keys())
      if (!['dangling', 'driver', 'label', 'name'].includes(k)) throw badRequest(`invalid filter '${k}'`);
    let dangling: boolean | undefined;
    for (const d of filters.get('dangling') ?? []) {
      if (['true', '1'].includes(d.toLowerCase())) dangling = true;
      else if (['false', '0'].includes(d.toLowerCase())) dangling = false;
      else throw badRequest(`invalid filter 'dangling=${d}'`);
    }
    const out = this.store.list().filter((v) => {
      if (dangling !== undefined && (this.usersOf(v.name).length === 0) !== dangling) return false;
      if (filters.has('driver') && !filters.get('driver')!.includes(v.driver)) return false;
      if (filters.has('name') && !filters.get('name')!.some((n) => v.name.includes(n))) return false;
      if (!(filters.get('label') ?? []).every((l) => hasLabel(v.labels ?? {}, l))) return false;
      return true;
    });
    out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { Volumes: out.map((v) => this.apiView(v)), Warnings: [] };
  }

  /** DELETE /volumes/{name}: a 409 while a container uses it; force only makes a missing volume no error. */
  async remove(name: string, force: boolean): Promise<void> {
    await this.lock.run(name, async () => {
      const v = this.store.get(name);
      if (!v) {
        if (force) return;
        throw notFoundError(`get ${name}: no such volume`);
      }
      const users = this.usersOf(name);
      if (users.length > 0) throw conflict(`remove ${name}: volume is in use - [${users.join(', ')}]`);
      const data = this.store.dataDir(name);
      try {
        unmountDevice(data);
      } catch (err) {
        throw new DockerError(500, `remove ${name}: unmounting ${data}: ${errorMessage(err)}`);
      }
      this.store.remove(name);
      this.emit('destroy', name);
    });
  }

  /** POST /volumes/prune: unused volumes; from API 1.42 only anonymous ones unless `all=true`. */
  async prune(
    filters: Filters,
    apiVersion: string,
  ): Promise<{ VolumesDeleted: string[] | null; SpaceReclaimed: number }> {
    for (const k of filters.keys())
      if (!['label', 'label!', 'all'].includes(k)) throw badRequest(`invalid filter '${k}'`);
    let all = apiBelow(apiVersion, '1.42');
    for (const a of filters.get('all') ?? []) {
      if (['true', '1'].includes(a.toLowerCase())) all = true;
      else if (!['false', '0'].includes(a.toLowerCase())) throw badRequest(`invalid filter 'all=${a}'`);
    }
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const v of this.store.list()) {
      const labels = v.labels ?? {};
      // dockerd tells anonymous volumes by their label (a volume created with it through the API counts too).
      if (!all && !(ANONYMOUS_LABEL in labels)) continue;
      if (this.usersOf(v.name).length > 0) continue;
      if (!(filters.get('label') ?? []).every((l) => hasLabel(labels, l))) continue;
      if ((filters.get('label!') ?? []).some((l) => hasLabel(labels, l))) continue;
      const size = duBytes(this.store.dataDir(v.name));
      try {
        await this.remove(v.name, false);
        deleted.push(v.name);
        reclaimed += size;
      } catch (err) {
        log.warn(`prune: volume ${v.name}: ${errorMessage(err)}`);
      }
    }
    this.daemon.events.emit({
      Type: 'volume',
      Action: 'prune',
      Actor: { ID: '', Attributes: { reclaimed: String(reclaimed) } },
    });
    return { VolumesDeleted: deleted.length > 0 ? deleted : null, SpaceReclaimed: reclaimed };
  }

  /** For /system/df: every volume with its size and how many containers use it. */
  diskUsage(): Record<string, unknown>[] {
    return this.store.list().map((v) => ({
      ...this.apiView(v),
      UsageData: { Size: duBytes(this.store.dataDir(v.name)), RefCount: this.usersOf(v.name).length },
    }));
  }

  /** The volume mount/unmount events of a container's volumes. */
  private async containerMounts(id: string, action: 'mount' | 'unmount'): Promise<void> {
    // Exits applied while the container service starts come before daemon.containers is set: no events then.
    const containers = this.daemon.containers as ContainerService | undefined;
    const c = (await containers?.get(id).catch(() => undefined)) as
      { mountPoints?: Array<{ Type: string; Name?: string; Destination: string; RW: boolean }> } | undefined;
    for (const m of c?.mountPoints ?? []) {
      if (m.Type !== 'volume' || !m.Name) continue;
      const attrs: Record<string, string> = { container: id, driver: 'local' };
      if (action === 'mount')
        Object.assign(attrs, { destination: m.Destination, propagation: '', 'read/write': String(m.RW) });
      this.daemon.events.emit({ Type: 'volume', Action: action, Actor: { ID: m.Name, Attributes: attrs } });
    }
  }

  // ----- helpers ------------------------------------------------------------------------------------------------

  private mustGet(name: string): VolumeRecord {
    const v = this.store.get(name);
    if (!v) throw notFoundError(`get ${name}: no such volume`);
    return v;
  }

  private emit(action: string, name: string): void {
    this.daemon.events.emit({ Type: 'volume', Action: action, Actor: { ID: name, Attributes: { driver: 'local' } } });
  }

  private recordView(v: VolumeRecord): VolumeRecordView {
    return {
      name: v.name,
      driver: v.driver,
      mountpoint: this.store.dataDir(v.name),
      createdAt: v.createdAt,
      labels: v.labels ?? {},
      options: v.options ?? {},
      anonymous: v.anonymous,
    };
  }

  /** The API's Volume (inspect, list). */
  private apiView(v: VolumeRecord): Record<string, unknown> {
    return {
      CreatedAt: v.createdAt,
      Driver: v.driver,
      Labels: v.labels,
      Mountpoint: this.store.dataDir(v.name),
      Name: v.name,
      Options: v.options,
      Scope: 'local',
    };
  }
}
