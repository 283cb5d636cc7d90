// `docker cp` both ways (GET/HEAD/PUT /containers/{id}/archive), GET /containers/{id}/export and
// GET /containers/{id}/changes. The container's filesystem: a running one under /proc/<pid>/root; otherwise the
// rootfs the supervisor mounted in its bundle. Paths are resolved inside that root by hand (a symlink is read and
// followed relative to the root, never the host's), and a PUT's tar is untrusted input: no `..`, no link leading
// out, no device nodes, nothing written through a symlink.
import { constants as fsc, type Stats } from 'node:fs';
import {
  mkdtemp,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  open,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  utimes,
} from 'node:fs/promises';
import { posix } from 'node:path';
import { execFile } from 'node:child_process';
import type { Readable } from 'node:stream';
import { errorMessage, logger } from '../../common/log.js';
import {
  badRequest,
  DockerError,
  notFoundError,
  serverError,
  type ContainerRecordView,
  type Daemon,
} from '../contracts.js';
import type { RequestContext } from '../contracts.js';
import { readTar, TarError } from '../images/tar.js';

const log = logger('archive');

// ---------------------------------------------------------------------------------------------- paths

export class PathError extends Error {}

/** Splits a path into its components, dropping empty ones and ".". */
const parts = (p: string): string[] => p.split('/').filter((x) => x !== '' && x !== '.');

/**
 * Resolves `p` inside `root` as the container would see it: ".." stops at the root, symlinks are read and followed
 * relative to the root (40 at most). The last component is followed only when `followLast`. Components that do not
 * exist are kept as they are. Returns the container path (absolute) — the host path is `root + result`.
 */
export async function resolveInRoot(root: string, p: string, followLast: boolean): Promise<string> {
  let todo = parts(p);
  const done: string[] = [];
  let links = 0;
  while (todo.length) {
    const c = todo.shift() as string;
    if (c === '..') {
      done.pop();
      continue;
    }
    const last = todo.length === 0;
    const host = `${root}/${[...done, c].join('/')}`;
    let st: Stats | undefined;
    try {
      st = await lstat(host);
    } catch {
      st = undefined;
    }
    if (st?.isSymbolicLink() && (!last || followLast)) {
      if (++links > 40) throw new PathError(`too many levels of symbolic links: ${p}`);
      const target = await readlink(host);
      if (target.startsWith('/')) done.length = 0;
      todo = [...parts(target), ...todo];
      continue;
    }
    done.push(c);
  }
  return `/${done.join('/')}`;
}

/** Reads a file of the container (followed inside the root), at most `max` bytes. */
export async function readInRoot(root: string, p: string, max: number): Promise<Buffer> {
  const abs = await resolveInRoot(root, p, true);
  const fh = await open(`${root}${abs}`, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new PathError(`${p} is not a file`);
    const buf = Buffer.alloc(Math.min(st.size, max));
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Whether a relative link target from `dir` (a container path) climbs above the root. */
export function linkEscapes(dir: string, target: string): boolean {
  if (target.startsWith('/')) return false; // absolute: resolved inside the root
  let depth = parts(dir).length;
  for (const c of parts(target)) {
    if (c === '..') {
      if (--depth < 0) return true;
    } else depth++;
  }
  return false;
}

/** A tar entry's name → a clean relative path; throws on `..` components. "" for the root itself. */
export function cleanEntryName(name: string): string {
  const ps = parts(name);
  if (ps.includes('..'))
    throw new PathError(`invalid tar entry ${JSON.stringify(name)}: it leads out of the destination`);
  return ps.join('/');
}

// ---------------------------------------------------------------------------------------------- Go file modes

/** Go's os.FileMode of an lstat (what the CLI reads from X-Docker-Container-Path-Stat). */
export function goFileMode(st: Stats): number {
  let m = st.mode & 0o777;
  if (st.mode & 0o4000) m |= 1 << 23;
  if (st.mode & 0o2000) m |= 1 << 22;
  if (st.mode & 0o1000) m |= 1 << 20;
  if (st.isDirectory()) m |= 2 ** 31;
  else if (st.isSymbolicLink()) m |= 1 << 27;
  else if (st.isFIFO()) m |= 1 << 25;
  else if (st.isSocket()) m |= 1 << 24;
  else if (st.isCharacterDevice()) m |= (1 << 26) | (1 << 21);
  else if (st.isBlockDevice()) m |= 1 << 26;
  return m >>> 0;
}

export interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

export function statHeader(s: PathStat): string {
  return Buffer.from(JSON.stringify(s)).toString('base64');
}

// ---------------------------------------------------------------------------------------------- tar writer

function octal(n: number, len: number): string {
  return n.toString(8).padStart(len - 1, '0') + '\0';
}

function paxRecord(k: string, v: string): string {
  const body = ` ${k}=${v}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

export interface TarEntryHeader {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'block' | 'fifo';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
}

const typeFlag: Record<TarEntryHeader['type'], string> = {
  file: '0',
  link: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

function block(h: TarEntryHeader & { flag: string }): Buffer {
  const b = Buffer.alloc(512);
  b.write(h.name, 0, 100, 'utf8');
  b.write(octal(h.mode & 0o7777, 8), 100, 'latin1');
  b.write(octal(Math.min(h.uid, 0o7777777), 8), 108, 'latin1');
  b.write(octal(Math.min(h.gid, 0o7777777), 8), 116, 'latin1');
  b.write(octal(h.size, 12), 124, 'latin1');
  b.write(octal(Math.max(0, Math.floor(h.mtime)), 12), 136, 'latin1');
  b.write(h.flag, 156, 'latin1');
  b.write(h.linkname ?? '', 157, 100, 'utf8');
  b.write('ustar\0', 257, 'latin1');
  b.write('00', 263, 'latin1');
  b.write(octal(h.devmajor ?? 0, 8), 329, 'latin1');
  b.write(octal(h.devminor ?? 0, 8), 337, 'latin1');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[i] as number;
  b.write(octal(sum, 7) + ' ', 148, 'latin1');
  return b;
}

/** A header (with a PAX header before it for long names or big ids). */
export function tarHeaderFor(h: TarEntryHeader): Buffer {
  const name = h.type === 'dir' && !h.name.endsWith('/') ? `${h.name}/` : h.name;
  const recs: string[] = [];
  if (Buffer.byteLength(name) > 100) recs.push(paxRecord('path', name));
  if (h.linkname && Buffer.byteLength(h.linkname) > 100) recs.push(paxRecord('linkpath', h.linkname));
  if (h.uid > 0o7777777) recs.push(paxRecord('uid', String(h.uid)));
  if (h.gid > 0o7777777) recs.push(paxRecord('gid', String(h.gid)));
  const out: Buffer[] = [];
  if (recs.length) {
    const data = Buffer.from(recs.join(''), 'utf8');
    out.push(block({ ...h, name: 'PaxHeaders/x', type: 'file', size: data.length, flag: 'x', linkname: '' }));
    out.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  out.push(
    block({
      ...h,
      name: Buffer.byteLength(name) > 100 ? name.slice(0, 99) : name,
      linkname: h.linkname && Buffer.byteLength(h.linkname) > 100 ? '' : h.linkname,
      size: h.type === 'file' ? h.size : 0,
      flag: typeFlag[h.type],
    }),
  );
  return Buffer.concat(out);
}

const major = (dev: number): number => ((dev >> 8) & 0xfff) | ((dev >>> 32) & ~0xfff);
const minor = (dev: number): number => (dev & 0xff) | ((dev >> 12) & 0xfff00);

/**
 * A tar of `hostPath` (never following a symlink), its entries named under `base` ("." for a directory's
 * contents). Hard links within the tree are kept as links. Does not cross into other filesystems when `oneFs`.
 */
export async function* tarTree(hostPath: string, base: string, oneFs = false): AsyncGenerator<Buffer> {
  const seen = new Map<string, string>();
  const root = await lstat(hostPath);
  async function* entry(p: string, name: string, st: Stats): AsyncGenerator<Buffer> {
    const common = { name, mode: st.mode, uid: st.uid, gid: st.gid, size: 0, mtime: st.mtimeMs / 1000 };
    if (st.isDirectory()) {
      if (name !== '.' || base === '.') yield tarHeaderFor({ ...common, type: 'dir' });
      if (oneFs && st.dev !== root.dev) return;
      let names: string[];
      try {
        names = (await readdir(p)).sort();
      } catch (err) {
        log.debug(`tar: ${p}: ${errorMessage(err)}`);
        return;
      }
      for (const n of names) {
        const cp = `${p}/${n}`;
        let cst: Stats;
        try {
          cst = await lstat(cp);
        } catch {
          continue;
        }
        yield* entry(cp, name === '.' ? n : `${name}/${n}`, cst);
      }
      return;
    }
    if (st.isSymbolicLink()) {
      yield tarHeaderFor({ ...common, type: 'symlink', linkname: await readlink(p) });
      return;
    }
    if (st.isFIFO()) {
      yield tarHeaderFor({ ...common, type: 'fifo' });
      return;
    }
    if (st.isCharacterDevice() || st.isBlockDevice()) {
      const type = st.isCharacterDevice() ? 'char' : 'block';
      yield tarHeaderFor({ ...common, type, devmajor: major(st.rdev), devminor: minor(st.rdev) });
      return;
    }
    if (!st.isFile()) return; // sockets
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = seen.get(key);
      if (first !== undefined) {
        yield tarHeaderFor({ ...common, type: 'link', linkname: first });
        return;
      }
      seen.set(key, name);
    }
    let fh;
    try {
      fh = await open(p, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    } catch (err) {
      log.debug(`tar: ${p}: ${errorMessage(err)}`);
      return;
    }
    try {
      const size = (await fh.stat()).size;
      yield tarHeaderFor({ ...common, type: 'file', size });
      let left = size;
      const buf = Buffer.alloc(256 * 1024);
      while (left > 0) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, left));
        if (bytesRead === 0) break;
        left -= bytesRead;
        yield Buffer.from(buf.subarray(0, bytesRead));
      }
      if (left > 0) yield Buffer.alloc(left); // the file shrank: keep the archive consistent
      yield Buffer.alloc((512 - (size % 512)) % 512);
    } finally {
      await fh.close();
    }
  }
  yield* entry(hostPath, base, root);
  yield Buffer.alloc(1024);
}

// ---------------------------------------------------------------------------------------------- extraction

export interface ExtractOptions {
  noOverwriteDirNonDir: boolean;
  /** Keep the archive's owners (else root). */
  chown: boolean;
}

/**
 * Extracts an untrusted tar into the container directory `dest` (a container path, resolved) under `root`. Every
 * entry's parent is resolved inside the root (symlinks followed there); the entry itself is never written through
 * a symlink. Refuses `..`, relative links that climb out, hard links to outside, and device nodes.
 */
export async function extractTar(
  src: AsyncIterable<Buffer | Uint8Array | string>,
  root: string,
  dest: string,
  opts: ExtractOptions,
): Promise<void> {
  const dirs: { host: string; mtime: number }[] = [];
  for await (const e of readTar(src)) {
    const h = e.header;
    const rel = cleanEntryName(h.name);
    if (rel === '') {
      await e.skip();
      continue;
    }
    const parentC = await resolveInRoot(root, posix.join(dest, posix.dirname(rel)), true);
    const base = posix.basename(rel);
    const cpath = posix.join(parentC, base);
    const host = `${root}${cpath}`;
    await mkdir(`${root}${parentC}`, { recursive: true });
    let existing: Stats | undefined;
    try {
      existing = await lstat(host);
    } catch {
      existing = undefined;
    }
    if (existing && opts.noOverwriteDirNonDir) {
      if (existing.isDirectory() && h.type !== 'dir')
        throw badRequest(`cannot overwrite directory ${JSON.stringify(cpath)} with non-directory`);
      if (!existing.isDirectory() && h.type === 'dir')
        throw badRequest(`cannot overwrite non-directory ${JSON.stringify(cpath)} with directory`);
    }
    if (existing && !(existing.isDirectory() && h.type === 'dir')) await rm(host, { recursive: true, force: true });
    switch (h.type) {
      case 'dir':
        if (!existing?.isDirectory()) await mkdir(host, { mode: h.mode });
        dirs.push({ host, mtime: h.mtime });
        await e.skip();
        break;
      case 'file': {
        const fh = await open(host, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, h.mode);
        try {
          for await (const chunk of e.body()) await fh.write(chunk);
          await fh.chmod(h.mode);
        } finally {
          await fh.close();
        }
        break;
      }
      case 'symlink':
        if (linkEscapes(parentC, h.linkname))
          throw badRequest(
            `invalid symlink ${JSON.stringify(h.name)} -> ${JSON.stringify(h.linkname)}: it leads out of the container`,
          );
        await symlink(h.linkname, host);
        await e.skip();
        break;
      case 'link': {
        const target = cleanEntryName(h.linkname);
        const tc = await resolveInRoot(root, posix.join(dest, target), false);
        const tst = await lstat(`${root}${tc}`);
        if (tst.isDirectory()) throw badRequest(`invalid hard link ${JSON.stringify(h.name)}: to a directory`);
        await link(`${root}${tc}`, host);
        await e.skip();
        break;
      }
      case 'fifo':
        await e.skip();
        throw badRequest(`refusing to create the fifo ${JSON.stringify(h.name)}`);
      default:
        throw badRequest(`refusing to create the device node ${JSON.stringify(h.name)}`);
    }
    if (opts.chown || h.uid !== 0 || h.gid !== 0)
      await lchown(host, opts.chown ? h.uid : 0, opts.chown ? h.gid : 0).catch(() => undefined);
    if (h.type === 'file' || h.type === 'symlink') await lutimes(host, h.mtime, h.mtime).catch(() => undefined);
  }
  for (const d of dirs.reverse()) await utimes(d.host, d.mtime, d.mtime).catch(() => undefined);
}

// ---------------------------------------------------------------------------------------------- the container's root

interface RootView {
  /** Host directory that is the container's "/". */
  root: string;
  /** Undo what was done to make `root` (a temporary mount). */
  release: () => Promise<void>;
}

const run = (cmd: string, args: string[]): Promise<void> =>
  new Promise((res, rej) =>
    execFile(cmd, args, { timeout: 30_000 }, (err, _o, stderr) =>
      err ? rej(new Error(`${cmd}: ${(stderr || err.message).trim()}`)) : res(),
    ),
  );

async function isMountedDir(dir: string): Promise<boolean> {
  try {
    const mi = await readFile('/proc/self/mountinfo', 'utf8');
    return mi.split('\n').some((l) => l.split(' ')[4] === dir);
  } catch {
    return false;
  }
}

/**
 * The container's filesystem: /proc/<pid>/root when running (and `live`), else the rootfs the supervisor mounted
 * in its bundle, else (never started) its image rootfs mounted for the time of the call.
 */
async function rootOf(daemon: Daemon, c: ContainerRecordView, live: boolean): Promise<RootView> {
  const none = async (): Promise<void> => undefined;
  const running = c.state.status === 'running' || c.state.status === 'paused';
  if (live && running && c.state.pid > 0) return { root: `/proc/${c.state.pid}/root`, release: none };
  try {
    const got = await daemon.supervisor.containers.get(daemon.containers.taskId(c));
    const bundleRoot = got.container.bundle ? `${got.container.bundle}/rootfs` : '';
    if (bundleRoot && (await isMountedDir(bundleRoot))) return { root: bundleRoot, release: none };
  } catch {
    // not known to the supervisor (never started)
  }
  const mounts = c.rootfs?.mounts ?? [];
  if (mounts.length === 0)
    throw serverError(`the filesystem of container ${c.id} is not mounted (start it once, or copy while it runs)`);
  const dir = await mkdtemp(posix.join(daemon.config.execRoot, 'archive-'));
  const done: string[] = [];
  try {
    for (const m of mounts) {
      const args = ['-t', m.type, ...(m.options.length ? ['-o', m.options.join(',')] : []), m.source, dir];
      await run('mount', args);
      done.push(dir);
    }
  } catch (err) {
    for (const _ of done) await run('umount', [dir]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw serverError(`mounting the filesystem of container ${c.id}: ${errorMessage(err)}`);
  }
  return {
    root: dir,
    release: async () => {
      for (const _ of done) await run('umount', [dir]).catch((err: unknown) => log.warn(errorMessage(err)));
      await rm(dir, { recursive: false, force: true }).catch(() => undefined);
    },
  };
}

function mapFsError(err: unknown, path: string): unknown {
  if (err instanceof DockerError) return err;
  if (err instanceof PathError || err instanceof TarError) return badRequest(err.message);
  const code = (err as { code?: string }).code;
  if (code === 'ENOENT') return notFoundError(`Could not find the file ${path} in container`);
  if (code === 'ENOTDIR') return badRequest(`not a directory: ${path}`);
  if (code === 'ELOOP') return badRequest(`too many levels of symbolic links: ${path}`);
  return serverError(errorMessage(err));
}

/** Resolve the requested path as dockerd: a trailing "/" or "/." follows the last link; otherwise it is not. */
async function statPath(root: string, path: string): Promise<{ cpath: string; st: Stats; stat: PathStat }> {
  const trailing = path.endsWith('/') || path.endsWith('/.');
  const cpath = await resolveInRoot(root, path, trailing);
  const st = await lstat(`${root}${cpath}`);
  if (trailing && !st.isDirectory()) throw badRequest(`not a directory: ${path}`);
  let linkTarget = '';
  if (st.isSymbolicLink()) linkTarget = await resolveInRoot(root, cpath, true);
  const name = posix.basename(path.replace(/\/\.?$/, '')) || '/';
  return {
    cpath,
    st,
    stat: { name, size: st.size, mode: goFileMode(st), mtime: st.mtime.toISOString(), linkTarget },
  };
}

export async function handleArchiveHead(daemon: Daemon, ctx: RequestContext): Promise<void> {
  const c = await daemon.containers.get(ctx.params.id as string);
  const path = ctx.query.get('path');
  if (!path) throw badRequest('Bad parameter: path cannot be empty');
  const { root, release } = await rootOf(daemon, c, true);
  let s;
  try {
    s = await statPath(root, path);
  } catch (err) {
    throw mapFsError(err, path);
  } finally {
    await release();
  }
  ctx.res.writeHead(200, { 'X-Docker-Container-Path-Stat': statHeader(s.stat), 'Content-Length': '0' });
  ctx.res.end();
}

async function pipeTar(
  ctx: RequestContext,
  gen: AsyncGenerator<Buffer>,
  headers: Record<string, string>,
): Promise<void> {
  // The first chunk decides the status: an error before it is still an HTTP error.
  const first = await gen.next();
  ctx.res.writeHead(200, { 'Content-Type': 'application/x-tar', ...headers });
  if (!first.done) ctx.res.write(first.value);
  try {
    for await (const chunk of gen) {
      if (ctx.res.destroyed) break;
      if (!ctx.res.write(chunk)) await new Promise((r) => ctx.res.once('drain', r));
    }
  } catch (err) {
    log.warn(`tar: ${errorMessage(err)}`);
    ctx.res.destroy();
    return;
  }
  ctx.res.end();
}

export async function handleArchiveGet(daemon: Daemon, ctx: RequestContext): Promise<void> {
  const c = await daemon.containers.get(ctx.params.id as string);
  const path = ctx.query.get('path');
  if (!path) throw badRequest('Bad parameter: path cannot be empty');
  const { root, release } = await rootOf(daemon, c, true);
  try {
    const s = await statPath(root, path);
    const base = path.endsWith('/.') || s.cpath === '/' ? '.' : s.stat.name;
    await pipeTar(ctx, tarTree(`${root}${s.cpath}`, base), { 'X-Docker-Container-Path-Stat': statHeader(s.stat) });
  } catch (err) {
    throw mapFsError(err, path);
  } finally {
    await release();
  }
}

export async function handleArchivePut(daemon: Daemon, ctx: RequestContext): Promise<void> {
  const c = await daemon.containers.get(ctx.params.id as string);
  const path = ctx.query.get('path');
  if (!path) throw badRequest('Bad parameter: path cannot be empty');
  if (c.hostConfig.ReadonlyRootfs === true) throw new DockerError(403, 'container rootfs is marked read-only');
  const { root, release } = await rootOf(daemon, c, true);
  try {
    const dest = await resolveInRoot(root, path, true);
    const st = await lstat(`${root}${dest}`);
    if (!st.isDirectory()) throw badRequest(`extraction point is not a directory`);
    await extractTar(ctx.req as Readable as AsyncIterable<Buffer>, root, dest, {
      noOverwriteDirNonDir: ctx.bool('noOverwriteDirNonDir', false),
      chown: ctx.bool('copyUIDGID', false),
    });
  } catch (err) {
    ctx.req.resume();
    throw mapFsError(err, path);
  } finally {
    await release();
  }
  ctx.res.writeHead(200, { 'Content-Length': '0' });
  ctx.res.end();
}

export async function handleExport(daemon: Daemon, ctx: RequestContext): Promise<void> {
  const c = await daemon.containers.get(ctx.params.id as string);
  const { root, release } = await rootOf(daemon, c, false);
  try {
    await pipeTar(ctx, tarTree(root, '.', true), {});
  } finally {
    await release();
  }
}

// ---------------------------------------------------------------------------------------------- changes

export interface Change {
  Path: string;
  Kind: 0 | 1 | 2;
}

/**
 * Mount points the runtime makes for every container (dockerd keeps them in an "init" layer that diffs skip):
 * they are not the user's changes.
 */
const RUNTIME_MOUNT_POINTS = new Set(['/etc/hosts', '/etc/hostname', '/etc/resolv.conf', '/.dockerenv', '/dev']);

/** The writable layer's changes: whiteouts (0:0 char devices) deleted, new paths added, the rest modified. */
export async function upperChanges(upper: string, lowers: string[]): Promise<Change[]> {
  const out: Change[] = [];
  const inLower = async (p: string): Promise<boolean> => {
    for (const l of lowers) {
      try {
        const st = await lstat(`${l}${p}`);
        return !(st.isCharacterDevice() && st.rdev === 0);
      } catch {
        // next
      }
    }
    return false;
  };
  const walk = async (dir: string, cdir: string): Promise<void> => {
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const cp = cdir === '/' ? `/${n}` : `${cdir}/${n}`;
      if (RUNTIME_MOUNT_POINTS.has(cp)) continue;
      let st: Stats;
      try {
        st = await lstat(`${dir}/${n}`);
      } catch {
        continue;
      }
      if (st.isCharacterDevice() && st.rdev === 0) out.push({ Path: cp, Kind: 2 });
      else if (n.startsWith('.wh.') && n !== '.wh..wh..opq')
        out.push({ Path: `${cdir === '/' ? '' : cdir}/${n.slice(4)}`, Kind: 2 });
      else if (n === '.wh..wh..opq') continue;
      else {
        const kind = (await inLower(cp)) ? 0 : 1;
        // A directory copied up only to hold runtime mount points (e.g. /etc) is not a change either.
        if (kind === 0 && st.isDirectory() && (await onlyMountPoints(`${dir}/${n}`, cp))) continue;
        out.push({ Path: cp, Kind: kind });
        if (st.isDirectory()) await walk(`${dir}/${n}`, cp);
      }
    }
  };
  const onlyMountPoints = async (dir: string, cdir: string): Promise<boolean> => {
    const names = await readdir(dir).catch(() => [] as string[]);
    return names.length > 0 && names.every((n) => RUNTIME_MOUNT_POINTS.has(`${cdir}/${n}`));
  };
  await walk(upper, '/');
  return out.sort((a, b) => (a.Path < b.Path ? -1 : a.Path > b.Path ? 1 : 0));
}

export async function handleChanges(daemon: Daemon, ctx: RequestContext): Promise<void> {
  const c = await daemon.containers.get(ctx.params.id as string);
  let upper: string | undefined;
  let lowers: string[] = [];
  try {
    const got = await daemon.supervisor.containers.get(daemon.containers.taskId(c));
    for (const m of got.container.rootfs ?? [])
      for (const o of m.options ?? []) {
        if (o.startsWith('upperdir=')) upper = o.slice('upperdir='.length);
        if (o.startsWith('lowerdir=')) lowers = o.slice('lowerdir='.length).split(':');
      }
  } catch {
    // never started: nothing changed
  }
  if (!upper) {
    ctx.send(null);
    return;
  }
  const changes = await upperChanges(upper, lowers);
  ctx.send(changes.length ? changes : null);
}
