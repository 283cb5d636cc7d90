// The local driver's mounts, through the native addon: a volume's own device (`--opt type/device/o`, like
// `mount -t type -o o device _data`), and the copy-up of an image's content into an empty volume, read from a
// read-only overlay of the container's layers (so whiteouts and opaque dirs mean what they mean in the container).
import { execFile } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { errorMessage } from '../../common/log.js';
import { badRequest, serverError, type PreparedRootfs } from '../contracts.js';
import { loadNative } from '../../common/native.js';

const execFileP = promisify(execFile);

// Linux mount flags the addon does not name (stable ABI values from <sys/mount.h>).
const MS_NOSUID = 2;
const MS_NODEV = 4;
const MS_NOEXEC = 8;
const MS_SYNCHRONOUS = 16;
const MS_NOATIME = 1024;

/** Is `path` a mount point (in this mount namespace)? */
export function isMountPoint(path: string): boolean {
  const unescape = (s: string): string =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => unescape(l.split(' ')[4] ?? '') === path);
}

export const VALID_OPTS = ['type', 'device', 'o'];

/** dockerd's checks of the local driver's options (at volume create). */
export function checkLocalOptions(name: string, opts: Record<string, string>): void {
  for (const k of Object.keys(opts))
    if (!VALID_OPTS.includes(k)) throw badRequest(`create ${name}: invalid option key: ${JSON.stringify(k)}`);
  const bind = (opts.o ?? '').split(',').some((o) => o === 'bind' || o === 'rbind');
  if ((opts.type || opts.o) && !opts.device) throw badRequest(`create ${name}: missing required option: "device"`);
  if (opts.device && !opts.type && !bind) throw badRequest(`create ${name}: missing required option: "type"`);
  if (bind && !(opts.device ?? '').startsWith('/'))
    throw badRequest(`create ${name}: invalid device for a bind mount: ${JSON.stringify(opts.device)}`);
}

/** Mount the volume's device on its _data (once; a mount already there is kept). */
export function mountDevice(dataDir: string, opts: Record<string, string>): void {
  if (!opts.device || isMountPoint(dataDir)) return;
  const n = loadNative();
  let flags = 0;
  const data: string[] = [];
  const known: Record<string, number> = {
    ro: n.flags.MS_RDONLY,
    bind: n.flags.MS_BIND,
    rbind: n.flags.MS_BIND | n.flags.MS_REC,
    nosuid: MS_NOSUID,
    nodev: MS_NODEV,
    noexec: MS_NOEXEC,
    sync: MS_SYNCHRONOUS,
    noatime: MS_NOATIME,
  };
  for (const o of (opts.o ?? '').split(',').filter(Boolean)) {
    if (o === 'rw' || o === 'defaults') continue;
    if (known[o] !== undefined) flags |= known[o];
    else data.push(o);
  }
  try {
    n.mount(opts.device, dataDir, opts.type ?? '', flags, data.join(','));
    // A bind ignores MS_RDONLY on the first call: read-only needs a remount.
    if (flags & n.flags.MS_BIND && flags & n.flags.MS_RDONLY)
      n.mount('', dataDir, '', n.flags.MS_REMOUNT | n.flags.MS_BIND | n.flags.MS_RDONLY);
  } catch (err) {
    throw serverError(`error while mounting volume '${dataDir}': failed to mount local volume: ${errorMessage(err)}`);
  }
}

/** Unmount a volume's device (lazily: a container may still hold it). */
export function unmountDevice(dataDir: string): void {
  if (!isMountPoint(dataDir)) return;
  const n = loadNative();
  n.umount(dataDir, n.flags.MNT_DETACH);
}

/**
 * `path` inside `root` with every symlink resolved as the container would (absolute links from `root`, never above
 * it); undefined when some component does not exist.
 */
export function resolveInRoot(root: string, path: string): string | undefined {
  const todo = path.split('/').filter((s) => s !== '' && s !== '.');
  const done: string[] = [];
  let hops = 0;
  while (todo.length > 0) {
    const seg = todo.shift()!;
    if (seg === '..') {
      done.pop();
      continue;
    }
    const p = join(root, ...done, seg);
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return undefined;
    }
    if (!st.isSymbolicLink()) {
      done.push(seg);
      continue;
    }
    if (++hops > 40) return undefined;
    const target = readlinkSync(p);
    if (target.startsWith('/')) done.length = 0;
    todo.unshift(...target.split('/').filter((s) => s !== '' && s !== '.'));
  }
  return join(root, ...done);
}

/**
 * Copy what the container's image has at `containerPath` into `dest` (owners, modes, links, times kept; the
 * directory's own owner and mode too). Nothing happens when the path is missing or not a directory.
 */
export async function copyUp(
  rootfs: PreparedRootfs,
  containerPath: string,
  dest: string,
  tmpBase: string,
): Promise<void> {
  const ov = rootfs.mounts.find((m) => m.type === 'overlay');
  const lower = ov?.options.find((o) => o.startsWith('lowerdir='))?.slice('lowerdir='.length);
  if (!lower) return;
  const n = loadNative();
  const tmp = mkdtempSync(join(tmpBase, '.copyup-'));
  try {
    // The writable layer on top of the image's: read-only, so no upper and work dirs are needed.
    n.mount('overlay', tmp, 'overlay', n.flags.MS_RDONLY, `lowerdir=${rootfs.upperDir}:${lower}`);
    try {
      const src = resolveInRoot(tmp, containerPath);
      if (!src || !lstatSync(src).isDirectory()) return;
      await execFileP('cp', ['-a', '--', `${src}/.`, dest]).catch((err: { stderr?: string }) => {
        throw serverError(
          `copying the image's ${containerPath} into the volume: ${err.stderr?.trim() || errorMessage(err)}`,
        );
      });
    } finally {
      n.umount(tmp, n.flags.MNT_DETACH);
    }
  } finally {
    rmdirSync(tmp);
  }
}
