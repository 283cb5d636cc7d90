// The local driver's volumes on disk: <data-root>/volumes/<name>/_data (what containers mount) and
// <data-root>/volumes/<name>/volume.json (the record, written temp + fsync + rename). Names follow dockerd's rule.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../common/atomic-file.js';
import { errorMessage, logger } from '../../common/log.js';
import { badRequest } from '../contracts.js';

const log = logger('volumes');

/** One volume as stored. Labels and Options keep null vs {} as they were given (inspect shows them so). */
export interface VolumeRecord {
  name: string;
  driver: 'local';
  /** RFC 3339, seconds precision, UTC. */
  createdAt: string;
  labels: Record<string, string> | null;
  options: Record<string, string> | null;
  anonymous: boolean;
  /** The image's content was copied in (or a mount decided not to need it): never again, even when emptied. */
  populated: boolean;
}

export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';

const nameRe = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** dockerd's local driver name check (the caller prefixes "create <name>: "). */
export function checkVolumeName(name: string): void {
  if (name.length === 1)
    throw badRequest(`create ${name}: volume name is too short, names should be at least two alphanumeric characters`);
  if (!nameRe.test(name))
    throw badRequest(
      `create ${name}: ${JSON.stringify(name)} includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
    );
}

export class VolumeStore {
  readonly root: string;
  private readonly byName = new Map<string, VolumeRecord>();

  constructor(dataRoot: string) {
    this.root = join(dataRoot, 'volumes');
    // 0701: others may traverse to a _data they are given (containers' users) but not list the volumes.
    mkdirSync(this.root, { recursive: true, mode: 0o701 });
  }

  dir(name: string): string {
    return join(this.root, name);
  }

  dataDir(name: string): string {
    return join(this.root, name, '_data');
  }

  /** Read every volume.json; a directory without one (a create that did not finish) is removed. */
  load(): void {
    for (const name of readdirSync(this.root)) {
      if (!nameRe.test(name)) continue;
      const file = join(this.dir(name), 'volume.json');
      if (!existsSync(file)) {
        log.warn(`volume ${name}: no volume.json; removing its directory (a create that did not finish)`);
        rmSync(this.dir(name), { recursive: true, force: true });
        continue;
      }
      try {
        const rec = JSON.parse(readFileSync(file, 'utf8')) as VolumeRecord;
        if (rec.name === name) this.byName.set(name, rec);
      } catch (err) {
        log.error(`volume ${name}: unreadable volume.json: ${errorMessage(err)}`);
      }
    }
  }

  get(name: string): VolumeRecord | undefined {
    return this.byName.get(name);
  }

  list(): VolumeRecord[] {
    return [...this.byName.values()];
  }

  /** Make the directories (if new) and persist the record. */
  put(rec: VolumeRecord): void {
    mkdirSync(this.dir(rec.name), { recursive: true, mode: 0o701 });
    mkdirSync(this.dataDir(rec.name), { recursive: true, mode: 0o755 });
    writeFileAtomic(join(this.dir(rec.name), 'volume.json'), JSON.stringify(rec), 0o600);
    this.byName.set(rec.name, rec);
  }

  /** Forget the record first (so a crash half-way leaves no record over a half-removed directory). */
  remove(name: string): void {
    rmSync(join(this.dir(name), 'volume.json'), { force: true });
    this.byName.delete(name);
    rmSync(this.dir(name), { recursive: true, force: true });
  }
}
