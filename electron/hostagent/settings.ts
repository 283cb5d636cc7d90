// The VM's settings, kept in ~/.skiff/<vm>/settings.json (0600): cpus, memory, disk size, shared folders, and
// whether quitting the app stops the VM. Validated on read and on update.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus as hostCpus, homedir, totalmem } from 'node:os';
import { isAbsolute } from 'node:path';

export interface VmSettings {
  cpus: number;
  memoryMiB: number;
  diskGiB: number;
  /** Host folders shared into the VM at the same path. */
  shares: string[];
  stopVmOnQuit: boolean;
}

export function defaultSettings(): VmSettings {
  return {
    cpus: Math.max(1, Math.min(4, hostCpus().length)),
    memoryMiB: 2048,
    diskGiB: 64,
    shares: [homedir()],
    stopVmOnQuit: true,
  };
}

/** Check (and normalise) settings; throws an Error saying what is wrong. */
export function validateSettings(s: VmSettings): VmSettings {
  const maxCpus = hostCpus().length;
  const maxMiB = Math.floor(totalmem() / 1024 / 1024);
  if (!Number.isInteger(s.cpus) || s.cpus < 1 || s.cpus > maxCpus)
    throw new Error(`cpus must be from 1 to ${maxCpus} (this host's CPUs), not ${s.cpus}`);
  if (!Number.isInteger(s.memoryMiB) || s.memoryMiB < 512 || s.memoryMiB > maxMiB)
    throw new Error(`memory must be from 512 MiB to ${maxMiB} MiB (this host's memory), not ${s.memoryMiB}`);
  if (!Number.isInteger(s.diskGiB) || s.diskGiB < 4 || s.diskGiB > 4096)
    throw new Error(`the disk size must be from 4 to 4096 GiB, not ${s.diskGiB}`);
  const shares = [...new Set(s.shares.map((p) => p.replace(/\/+$/, '') || '/'))];
  for (const p of shares) {
    if (!isAbsolute(p)) throw new Error(`a shared folder must be an absolute path: "${p}"`);
    if (p.includes(',')) throw new Error(`a shared folder's path may not contain a comma: "${p}"`);
  }
  return { ...s, shares, stopVmOnQuit: Boolean(s.stopVmOnQuit) };
}

export function loadSettings(file: string): VmSettings {
  const d = defaultSettings();
  if (!existsSync(file)) return d;
  let raw: Partial<VmSettings>;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8')) as Partial<VmSettings>;
  } catch (err) {
    throw new Error(`${file} is not valid JSON (${(err as Error).message}): fix or delete it`);
  }
  return validateSettings({ ...d, ...raw });
}

export function saveSettings(file: string, s: VmSettings): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(s, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}
