// The network state file (docs/networking.md "State"): <data-root>/networks/state.json, written with
// write-fsync-rename so a crash leaves the old or the new state, never a mix. A missing file is a first start; a
// file that is not our JSON is an error naming it (better than silently handing out addresses twice).
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../common/atomic-file.js';
import type { NetworkState } from './types.js';

/** What the file holds: the shared state plus the names DNS and inspect need of each attached container. */
export interface StoredState extends NetworkState {
  /** Container id → its name (without "/") and hostname, as told by create. */
  containers: Record<string, { name: string; hostname: string }>;
}

export function emptyState(): StoredState {
  return { networks: {}, attachments: [], ports: [], containers: {} };
}

export class NetworkStore {
  readonly file: string;

  constructor(dataRoot: string) {
    this.file = join(dataRoot, 'networks', 'state.json');
  }

  load(): StoredState {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
      throw err;
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new Error(
        `network state ${this.file} is corrupt (${(err as Error).message}): move it away to start afresh`,
      );
    }
    const s = data as Partial<StoredState> | null;
    if (
      !s ||
      typeof s !== 'object' ||
      typeof s.networks !== 'object' ||
      s.networks === null ||
      !Array.isArray(s.attachments) ||
      !Array.isArray(s.ports)
    )
      throw new Error(
        `network state ${this.file} is corrupt (not a network state object): move it away to start afresh`,
      );
    return { networks: s.networks, attachments: s.attachments, ports: s.ports, containers: s.containers ?? {} };
  }

  save(state: StoredState): void {
    mkdirSync(join(this.file, '..'), { recursive: true, mode: 0o700 });
    writeFileAtomic(this.file, JSON.stringify(state, null, 1) + '\n');
  }
}
