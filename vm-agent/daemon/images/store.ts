// The image store: image metadata (refs → image id = config digest; layers; repo digests) persisted crash-safe in
// <root>/db.json (write, fsync, rename), the content store beneath, and snapshots: each layer unpacked once into
// <root>/snapshots/<chain id hex>/fs (shared by every image with the same chain), verified against the config's
// diff_ids before it is used. Containers get an overlay of their image's snapshots plus a writable layer under
// <data-root>/containers-rw/<id>.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../common/atomic-file.js';
import { errorMessage } from '../../common/log.js';
import {
  badRequest,
  DockerError,
  notFoundError,
  type ImageRecord,
  type ImageRuntimeConfig,
  type ImageService,
  type ImageStore,
  type LayerDescriptor,
  type PreparedRootfs,
  type ProgressFn,
} from '../contracts.js';
import { checkDigest, FileContentStore } from './content.js';
import { familiar, formatReference, idLike, parseReference, repoOf } from './reference.js';
import { applyLayer, DEFAULT_LIMITS, LayerError, type UnpackLimits } from './unpack.js';

export const MEDIA = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
} as const;

export interface StoredImage {
  id: string;
  configSize: number;
  layers: LayerDescriptor[];
  diffIds: string[];
  chainIds: string[];
  manifest?: { digest: string; mediaType: string };
  repoDigests: string[];
  /** When this daemon got it (ISO). */
  added: string;
  lastTagTime?: string;
  /** Sum of the layers' uncompressed sizes. */
  size: number;
}

interface Db {
  version: 1;
  images: Record<string, StoredImage>;
  /** Fully qualified name:tag → image id. */
  tags: Record<string, string>;
}

interface SnapshotMeta {
  chainId: string;
  diffId: string;
  parent: string;
  size: number;
}

/** The OCI image config as far as the store reads it. */
export interface ImageConfigJson {
  architecture?: string;
  os?: string;
  variant?: string;
  created?: string;
  author?: string;
  config?: ImageRuntimeConfig & Record<string, unknown>;
  rootfs?: { type?: string; diff_ids?: string[] };
  history?: Array<{ created?: string; created_by?: string; comment?: string; empty_layer?: boolean; author?: string }>;
  [k: string]: unknown;
}

export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : `sha256:${createHash('sha256').update(`${prev} ${d}`).digest('hex')}`);
  }
  return out;
}

const hex = (d: string): string => d.replace(/^sha256:/, '');
export const shortId = (d: string): string => hex(d).slice(0, 12);

export interface ImageStoreOptions {
  /** <data-root>/images */
  root: string;
  /** <data-root>/containers-rw */
  rwRoot: string;
  limits?: Partial<UnpackLimits>;
}

export class Images implements ImageService, ImageStore {
  readonly content: FileContentStore;
  readonly snapshotDir: string;
  readonly limits: UnpackLimits;
  private db: Db = { version: 1, images: {}, tags: {} };
  private readonly dbPath: string;
  private readonly configs = new Map<string, ImageConfigJson>();
  private readonly unpacking = new Map<string, Promise<SnapshotMeta>>();
  /** Chains of commits in progress (gc keeps them: the image is recorded only once every layer is unpacked). */
  private readonly pinned = new Map<string, number>();
  private inUse: (imageId: string) => boolean = () => false;
  private dbLock: Promise<unknown> = Promise.resolve();
  readonly store: ImageStore = this;

  constructor(readonly opts: ImageStoreOptions) {
    this.content = new FileContentStore(opts.root);
    this.snapshotDir = join(opts.root, 'snapshots');
    this.dbPath = join(opts.root, 'db.json');
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
  }

  async init(): Promise<void> {
    await mkdir(this.opts.root, { recursive: true, mode: 0o700 });
    await mkdir(this.snapshotDir, { recursive: true, mode: 0o700 });
    await mkdir(this.opts.rwRoot, { recursive: true, mode: 0o700 });
    await this.content.init();
    if (existsSync(this.dbPath)) {
      const d = JSON.parse(readFileSync(this.dbPath, 'utf8')) as Db;
      if (d.version !== 1) throw new Error(`${this.dbPath}: unknown version ${String(d.version)}`);
      this.db = d;
    }
    // leftovers of a crash: unfinished unpacks, snapshots without their meta.json
    for (const n of await readdir(this.snapshotDir)) {
      if (n.startsWith('.tmp-') || !existsSync(join(this.snapshotDir, n, 'meta.json'))) {
        await rm(join(this.snapshotDir, n), { recursive: true, force: true });
      }
    }
  }

  // ------------------------------------------------------------------------------------------- metadata

  /** Run fn with the db to itself, then save it (write, fsync, rename). */
  private mutate<T>(fn: (db: Db) => T | Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      const r = await fn(this.db);
      writeFileAtomic(this.dbPath, JSON.stringify(this.db, null, 1));
      return r;
    };
    const p = this.dbLock.then(run, run);
    this.dbLock = p.catch(() => undefined);
    return p;
  }

  async config(id: string): Promise<ImageConfigJson> {
    let c = this.configs.get(id);
    if (!c) {
      c = JSON.parse((await this.content.readBuffer(id)).toString('utf8')) as ImageConfigJson;
      this.configs.set(id, c);
    }
    return c;
  }

  stored(id: string): StoredImage | undefined {
    return this.db.images[id];
  }

  allStored(): StoredImage[] {
    return Object.values(this.db.images);
  }

  tagsOf(id: string): string[] {
    return Object.entries(this.db.tags)
      .filter(([, v]) => v === id)
      .map(([k]) => k)
      .sort();
  }

  async record(s: StoredImage): Promise<ImageRecord> {
    const c = await this.config(s.id);
    return {
      id: s.id,
      repoTags: this.tagsOf(s.id).map(familiar),
      repoDigests: s.repoDigests.map(familiar),
      created: c.created ?? s.added,
      size: s.size,
      config: (c.config ?? {}) as ImageRuntimeConfig,
      raw: c as Record<string, unknown>,
    };
  }

  normalize(ref: string): string {
    return formatReference(parseReference(ref));
  }

  /** The stored image for a reference (name[:tag], name@digest, id, short id, sha256: prefix). */
  lookup(ref: string): StoredImage | undefined {
    const full = /^sha256:([a-f0-9]{64})$/.exec(ref) ?? /^([a-f0-9]{64})$/.exec(ref);
    if (full) return this.db.images[`sha256:${full[1]}`];
    let parsed;
    try {
      parsed = parseReference(ref);
    } catch {
      parsed = undefined;
    }
    if (parsed) {
      if (parsed.digest !== undefined) {
        const want = `${parsed.name}@${parsed.digest}`;
        for (const s of Object.values(this.db.images)) if (s.repoDigests.includes(want)) return s;
        if (parsed.digest.startsWith('sha256:') && this.db.images[parsed.digest]) return this.db.images[parsed.digest];
      } else {
        const id = this.db.tags[formatReference(parsed)];
        if (id) return this.db.images[id];
      }
    }
    const prefix = ref.startsWith('sha256:') ? idLike(ref) : /^[a-f0-9]+$/.test(ref) ? ref : undefined;
    if (prefix) {
      const hits = Object.keys(this.db.images).filter((id) => id.startsWith(`sha256:${prefix}`));
      if (hits.length === 1) return this.db.images[hits[0] as string];
    }
    return undefined;
  }

  async resolve(ref: string): Promise<ImageRecord | undefined> {
    const s = this.lookup(ref);
    return s ? this.record(s) : undefined;
  }

  /** lookup or a 404 `No such image: ref`. */
  mustLookup(ref: string): StoredImage {
    const s = this.lookup(ref);
    if (!s) throw notFoundError(`No such image: ${ref}`);
    return s;
  }

  async tag(imageId: string, ref: string): Promise<void> {
    const r = parseReference(ref);
    if (r.digest !== undefined) throw badRequest('refusing to create a tag with a digest reference');
    const name = formatReference(r);
    await this.mutate((db) => {
      if (!db.images[imageId]) throw notFoundError(`No such image: ${imageId}`);
      db.tags[name] = imageId;
      db.images[imageId].lastTagTime = new Date().toISOString();
    });
  }

  /** Remove a tag; returns the image id it pointed at. */
  async untag(name: string): Promise<string | undefined> {
    return this.mutate((db) => {
      const id = db.tags[name];
      delete db.tags[name];
      return id;
    });
  }

  async removeRepoDigest(id: string, d: string): Promise<void> {
    await this.mutate((db) => {
      const s = db.images[id];
      if (s) s.repoDigests = s.repoDigests.filter((x) => x !== d);
    });
  }

  setInUse(isInUse: (imageId: string) => boolean): void {
    this.inUse = isInUse;
  }

  isInUse(id: string): boolean {
    return this.inUse(id);
  }

  // ------------------------------------------------------------------------------------------- snapshots

  snapshotPath(chainId: string): string {
    return join(this.snapshotDir, hex(chainId));
  }

  private readSnapshot(chainId: string): SnapshotMeta | undefined {
    const p = join(this.snapshotPath(chainId), 'meta.json');
    try {
      return JSON.parse(readFileSync(p, 'utf8')) as SnapshotMeta;
    } catch {
      return undefined;
    }
  }

  /** Unpack a layer blob into the snapshot of chainId (once; concurrent callers share the work). */
  ensureSnapshot(chainId: string, parent: string, diffId: string, layer: LayerDescriptor): Promise<SnapshotMeta> {
    const have = this.readSnapshot(chainId);
    if (have) return Promise.resolve(have);
    let p = this.unpacking.get(chainId);
    if (!p) {
      p = this.unpack(chainId, parent, diffId, layer).finally(() => this.unpacking.delete(chainId));
      this.unpacking.set(chainId, p);
    }
    return p;
  }

  private async unpack(chainId: string, parent: string, diffId: string, layer: LayerDescriptor): Promise<SnapshotMeta> {
    if (!(await this.content.has(layer.digest))) throw new LayerError(`layer ${layer.digest} is not in the store`);
    const tmp = join(this.snapshotDir, `.tmp-${randomBytes(8).toString('hex')}`);
    await mkdir(join(tmp, 'fs'), { recursive: true, mode: 0o755 });
    try {
      const r = await applyLayer(this.content.path(layer.digest), join(tmp, 'fs'), this.limits);
      if (r.diffId !== diffId)
        throw new LayerError(`diff id mismatch: the config says ${diffId}, the layer's content is ${r.diffId}`);
      const meta: SnapshotMeta = { chainId, diffId, parent, size: r.size };
      await writeFile(join(tmp, 'meta.json'), JSON.stringify(meta));
      await rename(tmp, this.snapshotPath(chainId));
      return meta;
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      if (err instanceof LayerError) throw new LayerError(`layer ${layer.digest}: ${err.message}`);
      throw err;
    }
  }

  // ------------------------------------------------------------------------------------------- commit

  async commitImage(opts: {
    config: string;
    layers: LayerDescriptor[];
    manifest?: { digest: string; mediaType: string };
    tag?: string;
    tags?: string[];
    repoDigest?: string;
    progress?: ProgressFn;
  }): Promise<ImageRecord> {
    const id = checkDigest(opts.config);
    const configSize = await this.content.size(id);
    if (configSize === undefined) throw badRequest(`image config ${id} is not in the content store`);
    let cfg: ImageConfigJson;
    try {
      cfg = JSON.parse((await this.content.readBuffer(id, 8 << 20)).toString('utf8')) as ImageConfigJson;
    } catch (err) {
      throw badRequest(`image config ${id}: ${errorMessage(err)}`);
    }
    const diffIds = cfg.rootfs?.diff_ids ?? [];
    if (!Array.isArray(diffIds) || diffIds.some((d) => typeof d !== 'string'))
      throw badRequest(`image config ${id}: bad rootfs.diff_ids`);
    for (const d of diffIds) checkDigest(d);
    if (diffIds.length !== opts.layers.length)
      throw badRequest(`image ${id}: ${opts.layers.length} layers for ${diffIds.length} diff ids in its config`);
    const chains = chainIds(diffIds);
    for (const c of chains) this.pinned.set(c, (this.pinned.get(c) ?? 0) + 1);
    try {
      return await this.commitPinned(id, configSize, cfg, diffIds, chains, opts);
    } finally {
      for (const c of chains) {
        const n = (this.pinned.get(c) ?? 1) - 1;
        if (n <= 0) this.pinned.delete(c);
        else this.pinned.set(c, n);
      }
    }
  }

  private async commitPinned(
    id: string,
    configSize: number,
    cfg: ImageConfigJson,
    diffIds: string[],
    chains: string[],
    opts: Parameters<Images['commitImage']>[0],
  ): Promise<ImageRecord> {
    let size = 0;
    for (let i = 0; i < chains.length; i++) {
      const layer = opts.layers[i] as LayerDescriptor;
      checkDigest(layer.digest);
      const short = shortId(layer.digest);
      opts.progress?.({ status: 'Extracting', id: short });
      const meta = await this.ensureSnapshot(chains[i] as string, chains[i - 1] ?? '', diffIds[i] as string, layer);
      opts.progress?.({ status: 'Pull complete', id: short });
      size += meta.size;
    }
    this.configs.set(id, cfg);
    const now = new Date().toISOString();
    await this.mutate((db) => {
      const prev = db.images[id];
      const s: StoredImage = {
        id,
        configSize,
        layers: opts.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size })),
        diffIds,
        chainIds: chains,
        repoDigests: prev?.repoDigests ?? [],
        added: prev?.added ?? now,
        size,
      };
      const manifest = opts.manifest ?? prev?.manifest;
      if (manifest) s.manifest = manifest;
      if (prev?.lastTagTime) s.lastTagTime = prev.lastTagTime;
      if (opts.repoDigest) {
        const rd = parseReference(opts.repoDigest);
        const d = `${rd.name}@${rd.digest ?? ''}`;
        // one digest per repository and manifest: replace an older digest of the same repository
        s.repoDigests = [...s.repoDigests.filter((x) => x !== d), d];
      }
      db.images[id] = s;
      for (const t of [...(opts.tag ? [opts.tag] : []), ...(opts.tags ?? [])]) {
        db.tags[this.normalize(t)] = id;
        s.lastTagTime = now;
      }
    });
    return this.record(this.db.images[id] as StoredImage);
  }

  async manifestOf(ref: string): Promise<
    | {
        image: ImageRecord;
        config: { digest: string; size: number; mediaType: string };
        layers: LayerDescriptor[];
        manifest?: { digest: string; mediaType: string };
      }
    | undefined
  > {
    const s = this.lookup(ref);
    if (!s) return undefined;
    const docker = s.layers.some((l) => l.mediaType.startsWith('application/vnd.docker.'));
    const out: {
      image: ImageRecord;
      config: { digest: string; size: number; mediaType: string };
      layers: LayerDescriptor[];
      manifest?: { digest: string; mediaType: string };
    } = {
      image: await this.record(s),
      config: { digest: s.id, size: s.configSize, mediaType: docker ? MEDIA.dockerConfig : MEDIA.ociConfig },
      layers: s.layers.map((l) => ({ ...l })),
    };
    if (s.manifest) out.manifest = { ...s.manifest };
    return out;
  }

  // ------------------------------------------------------------------------------------------- delete, gc

  /** Drop an image's record (refs must be gone already), then its unreferenced snapshots and blobs. */
  async deleteImage(id: string): Promise<string[]> {
    const s = this.db.images[id];
    const drop = new Set<string>([
      id,
      ...(s?.layers.map((l) => l.digest) ?? []),
      ...(s?.manifest ? [s.manifest.digest] : []),
    ]);
    await this.mutate((db) => {
      delete db.images[id];
      for (const [k, v] of Object.entries(db.tags)) if (v === id) delete db.tags[k];
    });
    this.configs.delete(id);
    return this.gc(drop);
  }

  /**
   * Remove snapshots no image or container needs, and unreferenced blobs that are in `drop` or older than an hour
   * (a pull writes its blobs before it commits the image: young strays may be one in flight). Returns the removed
   * chain ids.
   */
  async gc(drop: Set<string> = new Set()): Promise<string[]> {
    const chains = new Set<string>();
    const blobs = new Set<string>();
    for (const s of Object.values(this.db.images)) {
      for (const c of s.chainIds) chains.add(hex(c));
      for (const l of s.layers) blobs.add(l.digest);
      blobs.add(s.id);
      if (s.manifest) blobs.add(s.manifest.digest);
    }
    for (const c of await this.containerChains()) chains.add(hex(c));
    const removed: string[] = [];
    for (const n of await readdir(this.snapshotDir)) {
      if (n.startsWith('.tmp-') || chains.has(n) || this.unpacking.has(`sha256:${n}`) || this.pinned.has(`sha256:${n}`))
        continue;
      await rm(join(this.snapshotDir, n), { recursive: true, force: true });
      removed.push(`sha256:${n}`);
    }
    const linkDir = join(this.opts.root, 'l');
    if (removed.length && existsSync(linkDir)) {
      // short links whose snapshot is gone
      for (const n of await readdir(linkDir))
        if (!existsSync(join(linkDir, n))) await rm(join(linkDir, n), { force: true });
    }
    const old = Date.now() - 3600_000;
    for (const d of await this.content.list()) {
      if (blobs.has(d)) continue;
      if (drop.has(d) || ((await stat(this.content.path(d)).catch(() => undefined))?.mtimeMs ?? Infinity) < old)
        await this.content.delete(d);
    }
    return removed;
  }

  private async containerChains(): Promise<string[]> {
    const out: string[] = [];
    let names: string[] = [];
    try {
      names = await readdir(this.opts.rwRoot);
    } catch {
      return out;
    }
    for (const n of names) {
      try {
        const j = JSON.parse(await readFile(join(this.opts.rwRoot, n, 'lower.json'), 'utf8')) as { chainIds: string[] };
        out.push(...j.chainIds);
      } catch {
        /* being made or removed */
      }
    }
    return out;
  }

  // ------------------------------------------------------------------------------------------- rootfs

  async prepareRootfs(image: ImageRecord, containerId: string): Promise<PreparedRootfs> {
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(containerId)) throw badRequest(`bad container id ${containerId}`);
    const s = this.db.images[image.id];
    if (!s) throw notFoundError(`No such image: ${image.id}`);
    for (let i = 0; i < s.chainIds.length; i++) {
      if (!this.readSnapshot(s.chainIds[i] as string)) {
        // lost (a crash between gc and db write): unpack again from the verified blob
        await this.ensureSnapshot(
          s.chainIds[i] as string,
          s.chainIds[i - 1] ?? '',
          s.diffIds[i] as string,
          s.layers[i] as LayerDescriptor,
        );
      }
    }
    const dir = join(this.opts.rwRoot, containerId);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const upperDir = join(dir, 'upper');
    const workDir = join(dir, 'work');
    await mkdir(upperDir, { recursive: true, mode: 0o755 });
    await mkdir(workDir, { recursive: true, mode: 0o700 });
    writeFileAtomic(join(dir, 'lower.json'), JSON.stringify({ image: s.id, chainIds: s.chainIds }));
    const lowerDirs = s.chainIds.map((c) => join(this.snapshotPath(c), 'fs'));
    let lowers = [...lowerDirs].reverse();
    if (lowers.length === 0) {
      const empty = join(dir, 'empty');
      await mkdir(empty, { recursive: true, mode: 0o755 });
      lowers = [empty];
    }
    // mount(2) takes one page of options: use short links (as dockerd's overlay2 does) when the paths are long
    if (lowers.join(':').length > 3000) lowers = await this.shortLinks(s.chainIds.slice().reverse());
    return {
      mounts: [
        {
          type: 'overlay',
          source: 'overlay',
          options: [`lowerdir=${lowers.join(':')}`, `upperdir=${upperDir}`, `workdir=${workDir}`],
        },
      ],
      upperDir,
      lowerDirs,
    };
  }

  private async shortLinks(chains: string[]): Promise<string[]> {
    const linkDir = join(this.opts.root, 'l');
    await mkdir(linkDir, { recursive: true, mode: 0o700 });
    const out: string[] = [];
    for (const c of chains) {
      const name = hex(c).slice(0, 20);
      const p = join(linkDir, name);
      if (!existsSync(p)) await symlink(join(this.snapshotPath(c), 'fs'), p).catch(() => undefined);
      out.push(p);
    }
    return out;
  }

  async removeRootfs(containerId: string): Promise<void> {
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(containerId)) return;
    await rm(join(this.opts.rwRoot, containerId), { recursive: true, force: true });
  }

  async diskUsage(): Promise<{ images: unknown[]; layersSize: number }> {
    const images: unknown[] = [];
    let layersSize = 0;
    const seen = new Set<string>();
    for (const s of Object.values(this.db.images)) {
      images.push(await this.summary(s));
      for (const c of s.chainIds) {
        if (seen.has(c)) continue;
        seen.add(c);
        layersSize += this.readSnapshot(c)?.size ?? 0;
      }
    }
    return { images, layersSize };
  }

  /** The /images/json entry. */
  async summary(s: StoredImage, apiVersion = '1.50'): Promise<Record<string, unknown>> {
    const c = await this.config(s.id);
    const tags = this.tagsOf(s.id).map(familiar);
    const legacy = Number(apiVersion) < 1.44;
    const out: Record<string, unknown> = {
      Id: s.id,
      ParentId: '',
      RepoTags: tags.length ? tags : legacy ? ['<none>:<none>'] : [],
      RepoDigests: s.repoDigests.length ? s.repoDigests.map(familiar) : legacy && !tags.length ? ['<none>@<none>'] : [],
      Created: Math.floor(Date.parse(c.created ?? s.added) / 1000) || 0,
      Size: s.size,
      SharedSize: -1,
      Labels: c.config?.Labels ?? {},
      Containers: -1,
    };
    if (legacy) out.VirtualSize = s.size;
    return out;
  }

  /** Repos (fully qualified) of an image's tags. */
  reposOf(id: string): string[] {
    return [...new Set(this.tagsOf(id).map(repoOf))];
  }
}

export { DockerError, LayerError };
