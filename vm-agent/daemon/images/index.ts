// skiffd's images module (docs/daemon.md): the image store (store.ts) behind ImageService, and the /images routes:
// load, save, import (create?fromSrc; fromImage goes to daemon.registry), tag, remove, list, inspect, history,
// prune, search (a clear error).
import { join } from 'node:path';
import { errorMessage, logger } from '../../common/log.js';
import {
  badRequest,
  conflict,
  DockerError,
  notFoundError,
  type Daemon,
  type Filters,
  type ImageService,
  type RegisterRoutes,
  type RequestContext,
} from '../contracts.js';
import { loadArchive, saveArchive } from './archive.js';
import { importRootfs } from './import.js';
import { familiar, formatReference, parseReference, repoOf } from './reference.js';
import { Images, shortId, type StoredImage } from './store.js';
import { DEFAULT_LIMITS, LayerError } from './unpack.js';

export { Images } from './store.js';
export type { ContentStore, ImageStore } from '../contracts.js';

const log = logger('images');

/** Limits from the environment (SKIFF_LAYER_MAX_SIZE bytes, SKIFF_LAYER_MAX_RATIO). */
function limitsFromEnv(): Partial<typeof DEFAULT_LIMITS> {
  const out: Partial<typeof DEFAULT_LIMITS> = {};
  const size = Number(process.env.SKIFF_LAYER_MAX_SIZE);
  if (Number.isFinite(size) && size > 0) out.maxSize = size;
  const ratio = Number(process.env.SKIFF_LAYER_MAX_RATIO);
  if (Number.isFinite(ratio) && ratio > 0) out.maxRatio = ratio;
  return out;
}

export async function createImageService(daemon: Daemon): Promise<ImageService> {
  const images = new Images({
    root: join(daemon.config.dataRoot, 'images'),
    rwRoot: join(daemon.config.dataRoot, 'containers-rw'),
    limits: limitsFromEnv(),
  });
  await images.init();
  return images;
}

function store(daemon: Daemon): Images {
  if (!(daemon.images instanceof Images)) throw new DockerError(500, 'the image store is not the images module');
  return daemon.images;
}

function emit(daemon: Daemon, action: string, id: string, name?: string): void {
  try {
    daemon.events.emit({ Type: 'image', Action: action, Actor: { ID: id, Attributes: name ? { name } : {} } });
  } catch (err) {
    log.warn(`event ${action}: ${errorMessage(err)}`);
  }
}

/** A user-facing error for anything an image operation throws. */
function asDockerError(err: unknown): DockerError {
  if (err instanceof DockerError) return err;
  if (err instanceof LayerError) return badRequest(err.message);
  const e = err as Error;
  if (e.name === 'DigestError' || e.name === 'TarError') return badRequest(e.message);
  return new DockerError(500, errorMessage(err));
}

// ---------------------------------------------------------------------------------------------- filters

function globToRe(glob: string): RegExp {
  let re = '';
  for (const ch of glob) {
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** A reference filter (glob) against a stored reference: its familiar or full form, with or without the tag. */
function refMatch(pattern: string, ref: string): boolean {
  const re = globToRe(pattern);
  const fam = familiar(ref);
  const repo = repoOf(ref);
  return re.test(fam) || re.test(ref) || re.test(familiar(repo)) || re.test(repo);
}

function labelMatch(labels: Record<string, string>, want: string[]): boolean {
  return want.every((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) return w in labels;
    return labels[w.slice(0, eq)] === w.slice(eq + 1);
  });
}

const allowedListFilters = new Set(['dangling', 'label', 'before', 'since', 'reference', 'until']);

function checkFilters(f: Filters, allowed: Set<string>): void {
  for (const k of f.keys()) if (!allowed.has(k)) throw badRequest(`invalid filter '${k}'`);
}

function boolFilter(f: Filters, name: string): boolean | undefined {
  const v = f.get(name);
  if (!v || v.length === 0) return undefined;
  const s = v[v.length - 1] as string;
  if (s === 'true' || s === '1') return true;
  if (s === 'false' || s === '0') return false;
  throw badRequest(`invalid filter '${name}=${s}'`);
}

function untilCutoff(v: string): number {
  // a timestamp (seconds, maybe fractional), RFC3339, or a duration like 24h, 10m
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const d = /^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)$/.exec(v);
  if (d) {
    const mult: Record<string, number> = { ns: 1e-6, us: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
    return Date.now() - Number(d[1]) * (mult[d[2] as string] as number);
  }
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw badRequest(`invalid filter 'until=${v}'`);
  return t;
}

async function filtered(images: Images, f: Filters): Promise<StoredImage[]> {
  const dangling = boolFilter(f, 'dangling');
  const created = async (s: StoredImage): Promise<number> => Date.parse((await images.config(s.id)).created ?? s.added);
  const refTime = async (ref: string, what: string): Promise<number> => {
    const s = images.lookup(ref);
    if (!s) throw notFoundError(`No such image: ${ref}`);
    void what;
    return created(s);
  };
  const before = f.get('before')?.[0];
  const since = f.get('since')?.[0];
  const beforeT = before !== undefined ? await refTime(before, 'before') : undefined;
  const sinceT = since !== undefined ? await refTime(since, 'since') : undefined;
  const until = f.get('until')?.[0];
  const untilT = until !== undefined ? untilCutoff(until) : undefined;
  const refs = f.get('reference') ?? [];
  const labels = f.get('label') ?? [];
  const out: StoredImage[] = [];
  for (const s of images.allStored()) {
    const tags = images.tagsOf(s.id);
    if (dangling === true && tags.length > 0) continue;
    if (dangling === false && tags.length === 0) continue;
    const t = await created(s);
    if (beforeT !== undefined && !(t < beforeT)) continue;
    if (sinceT !== undefined && !(t > sinceT)) continue;
    if (untilT !== undefined && !(t < untilT)) continue;
    if (labels.length && !labelMatch((await images.config(s.id)).config?.Labels ?? {}, labels)) continue;
    if (refs.length) {
      const names = [...tags, ...s.repoDigests];
      if (!refs.some((r) => names.some((n) => refMatch(r, n)))) continue;
    }
    out.push(s);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- inspect, history

async function inspect(images: Images, s: StoredImage, apiVersion: string): Promise<Record<string, unknown>> {
  const c = await images.config(s.id);
  const dirs = s.chainIds.map((ch) => join(images.snapshotPath(ch), 'fs'));
  const top = s.chainIds.length ? images.snapshotPath(s.chainIds[s.chainIds.length - 1] as string) : '';
  const data: Record<string, string> = top
    ? { MergedDir: join(top, 'merged'), UpperDir: join(top, 'fs'), WorkDir: join(top, 'work') }
    : {};
  if (dirs.length > 1) data.LowerDir = dirs.slice(0, -1).reverse().join(':');
  const out: Record<string, unknown> = {
    Id: s.id,
    RepoTags: images.tagsOf(s.id).map(familiar),
    RepoDigests: s.repoDigests.map(familiar),
    Parent: '',
    Comment: c.history?.[c.history.length - 1]?.comment ?? '',
    Created: c.created ?? s.added,
    DockerVersion: (c.docker_version as string | undefined) ?? '',
    Author: c.author ?? '',
    Config: c.config ?? null,
    Architecture: c.architecture ?? '',
    Os: c.os ?? '',
    Size: s.size,
    GraphDriver: { Name: 'overlay2', Data: data },
    RootFS: { Type: 'layers', Layers: s.diffIds },
    Metadata: { LastTagTime: s.lastTagTime ?? '0001-01-01T00:00:00Z' },
  };
  if (c.variant) out.Variant = c.variant;
  if (Number(apiVersion) < 1.44) {
    out.VirtualSize = s.size;
    out.Container = '';
    out.ContainerConfig = null;
  }
  if (Number(apiVersion) >= 1.47 && s.manifest) out.Descriptor = { ...s.manifest, size: 0 };
  return out;
}

async function history(images: Images, s: StoredImage): Promise<Array<Record<string, unknown>>> {
  const c = await images.config(s.id);
  const hist = c.history ?? [];
  const sizes: number[] = [];
  for (let i = 0; i < s.chainIds.length; i++) {
    const p = images.snapshotPath(s.chainIds[i] as string);
    let size = 0;
    try {
      size = (
        JSON.parse(await import('node:fs/promises').then((f) => f.readFile(join(p, 'meta.json'), 'utf8'))) as {
          size: number;
        }
      ).size;
    } catch {
      /* unknown */
    }
    sizes.push(size);
  }
  const out: Array<Record<string, unknown>> = [];
  let layer = 0;
  const rows = hist.length
    ? hist
    : s.layers.map(() => ({ created: c.created, created_by: '', comment: '', empty_layer: false }));
  for (const h of rows) {
    out.push({
      Id: '<missing>',
      Created: Math.floor(Date.parse(h.created ?? c.created ?? s.added) / 1000) || 0,
      CreatedBy: h.created_by ?? '',
      Tags: null,
      Size: h.empty_layer ? 0 : (sizes[layer++] ?? 0),
      Comment: h.comment ?? '',
    });
  }
  out.reverse();
  if (out[0]) {
    out[0].Id = s.id;
    const tags = images.tagsOf(s.id).map(familiar);
    out[0].Tags = tags.length ? tags : null;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- delete

type DeleteItem = { Untagged: string } | { Deleted: string };

async function removeImage(
  daemon: Daemon,
  images: Images,
  ref: string,
  force: boolean,
  opts: { prune?: boolean } = {},
): Promise<DeleteItem[]> {
  const s = images.mustLookup(ref);
  const out: DeleteItem[] = [];
  const tags = images.tagsOf(s.id);
  let byName: string | undefined;
  try {
    const r = parseReference(ref);
    const n = formatReference(r);
    if (r.digest === undefined && tags.includes(n)) byName = n;
    else if (r.digest !== undefined && s.repoDigests.includes(`${r.name}@${r.digest}`))
      byName = `${r.name}@${r.digest}`;
  } catch {
    /* an id */
  }
  const inUse = images.isInUse(s.id);
  const refsLeft = tags.length + s.repoDigests.length;
  if (byName !== undefined) {
    const isLast = tags.filter((t) => t !== byName).length === 0 && !byName.includes('@');
    if (isLast && inUse && !force)
      throw conflict(
        `conflict: unable to remove repository reference "${ref}" (must force) - container is using its referenced image ${shortId(s.id)}`,
      );
    if (byName.includes('@')) await images.removeRepoDigest(s.id, byName);
    else await images.untag(byName);
    out.push({ Untagged: familiar(byName) });
    emit(daemon, 'untag', s.id, familiar(byName));
    if (!isLast || inUse) return out;
    // the last tag went: the image goes too when nothing else names it (its digests go with it)
  } else {
    if (inUse && !force)
      throw conflict(
        `conflict: unable to delete ${shortId(s.id)} (must be forced) - image is being used by a container`,
      );
    if (tags.length > 1 && !force && !opts.prune)
      throw conflict(
        `conflict: unable to delete ${shortId(s.id)} (must be forced) - image is referenced in multiple repositories`,
      );
    for (const t of tags) {
      await images.untag(t);
      out.push({ Untagged: familiar(t) });
      emit(daemon, 'untag', s.id, familiar(t));
    }
    if (inUse) return out; // forced while a container uses it: untagged, kept
  }
  void refsLeft;
  for (const d of images.stored(s.id)?.repoDigests ?? []) out.push({ Untagged: familiar(d) });
  const removed = await images.deleteImage(s.id);
  out.push({ Deleted: s.id });
  for (const c of removed.reverse()) out.push({ Deleted: c });
  emit(daemon, 'delete', s.id);
  return out;
}

// ---------------------------------------------------------------------------------------------- routes

/**
 * The request body as chunks, through an iterator whose early end does not destroy the request (so that an error
 * can still be answered), and a drain() that reads what the client still sends before that answer.
 */
function body(ctx: RequestContext): { chunks: AsyncIterable<Buffer>; drain(): Promise<void> } {
  const it = (ctx.req as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  return {
    chunks: { [Symbol.asyncIterator]: () => ({ next: () => it.next() }) },
    async drain() {
      try {
        for (;;) if ((await it.next()).done) return;
      } catch {
        /* the client went */
      }
    },
  };
}

export const register: RegisterRoutes = (router, daemon) => {
  router.add('POST', '/images/load', async (ctx) => {
    const images = store(daemon);
    let loaded;
    const b = body(ctx);
    try {
      loaded = await loadArchive(images, b.chunks);
    } catch (err) {
      await b.drain();
      throw asDockerError(err);
    }
    const s = ctx.stream();
    for (const l of loaded) {
      if (l.tags.length === 0) {
        s.write({ stream: `Loaded image ID: ${l.id}\n` });
        emit(daemon, 'load', l.id);
      }
      for (const t of l.tags) {
        s.write({ stream: `Loaded image: ${familiar(t)}\n` });
        emit(daemon, 'load', l.id, familiar(t));
      }
    }
    s.end();
  });

  const save = async (ctx: RequestContext, names: string[]): Promise<void> => {
    const images = store(daemon);
    if (names.length === 0) throw badRequest('no images to save');
    const byId = new Map<string, { image: StoredImage; tags: string[] }>();
    for (const n of names) {
      const s = images.mustLookup(n);
      const e = byId.get(s.id) ?? { image: s, tags: [] };
      byId.set(s.id, e);
      let tag: string | undefined;
      try {
        const r = parseReference(n);
        if (r.digest === undefined && images.tagsOf(s.id).includes(formatReference(r))) tag = formatReference(r);
        else if (r.digest === undefined && images.lookup(n)?.id === s.id && !/^[a-f0-9]+$/.test(n)) {
          // a bare name: every tag of that repository on this image
          for (const t of images.tagsOf(s.id)) if (repoOf(t) === r.name) e.tags.push(t);
        }
      } catch {
        /* by id: no tags */
      }
      if (tag && !e.tags.includes(tag)) e.tags.push(tag);
    }
    ctx.res.writeHead(200, { 'Content-Type': 'application/x-tar' });
    try {
      for await (const chunk of saveArchive(images, [...byId.values()])) {
        if (!ctx.res.write(chunk)) await new Promise((r) => ctx.res.once('drain', r));
        if (ctx.res.destroyed) return;
      }
      ctx.res.end();
    } catch (err) {
      log.warn(`save: ${errorMessage(err)}`);
      ctx.res.destroy(err as Error);
      return;
    }
    for (const { image, tags } of byId.values())
      emit(daemon, 'save', image.id, tags[0] ? familiar(tags[0]) : undefined);
  };
  router.add('GET', '/images/get', (ctx) => save(ctx, ctx.query.getAll('names')));
  router.add('GET', '/images/{name}/get', (ctx) => save(ctx, [ctx.params.name as string]));

  router.add('POST', '/images/create', async (ctx) => {
    const fromImage = ctx.query.get('fromImage');
    const fromSrc = ctx.query.get('fromSrc');
    if (fromImage) {
      const registry = daemon.registry;
      if (!registry) throw new DockerError(501, 'pulling images is not available (no registry module)');
      const tag = ctx.query.get('tag') ?? '';
      let ref = fromImage;
      if (tag) ref = /^[a-z0-9]+:[a-f0-9]+$/.test(tag) ? `${fromImage}@${tag}` : `${fromImage}:${tag}`;
      const authHeader = ctx.req.headers['x-registry-auth'];
      let auth;
      if (typeof authHeader === 'string' && authHeader) {
        try {
          auth = JSON.parse(Buffer.from(authHeader, 'base64url').toString('utf8')) as Record<string, string>;
        } catch {
          auth = undefined;
        }
      }
      let stream: ReturnType<RequestContext['stream']> | undefined;
      // A client that goes away (Ctrl-C on docker pull) cancels the pull, as with dockerd; a pull that finished
      // is not affected.
      const cancel = new AbortController();
      const onClose = (): void => {
        if (!ctx.res.writableFinished) cancel.abort(new Error('the client went away'));
      };
      ctx.res.once('close', onClose);
      try {
        const rec = await registry.pull(
          ref,
          auth,
          (msg) => {
            stream ??= ctx.stream();
            stream.write(msg);
          },
          cancel.signal,
        );
        void rec;
      } catch (err) {
        if (cancel.signal.aborted) return;
        const e = asDockerError(err);
        if (!stream) throw e;
        stream.write({ errorDetail: { message: e.message }, error: e.message });
      } finally {
        ctx.res.off('close', onClose);
      }
      (stream ?? ctx.stream()).end();
      return;
    }
    if (fromSrc !== null) {
      const b = body(ctx);
      if (fromSrc !== '-') {
        await b.drain();
        throw badRequest(
          `importing from a URL (${fromSrc}) is not supported: Skiff has no internet access; send the tar as the body (fromSrc=-)`,
        );
      }
      const images = store(daemon);
      let id: string;
      let tag: string | undefined;
      try {
        const repo = ctx.query.get('repo') ?? '';
        const t = ctx.query.get('tag') ?? '';
        if (repo) tag = images.normalize(t ? `${repo}:${t}` : repo);
        id = await importRootfs(images, b.chunks, {
          tag,
          message: ctx.query.get('message') ?? '',
          changes: ctx.query.getAll('changes'),
          platform: ctx.query.get('platform') ?? '',
        });
      } catch (err) {
        await b.drain();
        throw asDockerError(err);
      }
      const s = ctx.stream();
      s.write({ status: id });
      s.end();
      emit(daemon, 'import', id, tag ? familiar(tag) : undefined);
      return;
    }
    throw badRequest('either fromImage or fromSrc is required');
  });

  router.add('POST', '/images/{name}/tag', async (ctx) => {
    const images = store(daemon);
    const s = images.mustLookup(ctx.params.name as string);
    const repo = ctx.query.get('repo');
    if (!repo) throw badRequest('repository name (repo) is required');
    const tag = ctx.query.get('tag') ?? '';
    const ref = tag ? `${repo}:${tag}` : repo;
    const r = parseReference(ref);
    if (r.digest !== undefined) throw badRequest('refusing to create a tag with a digest reference');
    await images.tag(s.id, ref);
    emit(daemon, 'tag', s.id, familiar(formatReference(r)));
    ctx.res.writeHead(201);
    ctx.res.end();
  });

  router.add('DELETE', '/images/{name}', async (ctx) => {
    const images = store(daemon);
    ctx.send(await removeImage(daemon, images, ctx.params.name as string, ctx.bool('force', false)));
  });

  router.add('GET', '/images/json', async (ctx) => {
    const images = store(daemon);
    const f = ctx.filters();
    checkFilters(f, allowedListFilters);
    // legacy ?filter=name (API < 1.41) is a reference filter
    const legacy = ctx.query.get('filter');
    if (legacy) f.set('reference', [...(f.get('reference') ?? []), legacy]);
    const list = await filtered(images, f);
    const out: Array<Record<string, unknown>> = [];
    const refs = f.get('reference') ?? [];
    for (const s of list) {
      const sum = await images.summary(s, ctx.apiVersion);
      if (refs.length) {
        // as dockerd: only the tags and digests that match the reference filter
        const match = (n: string): boolean => refs.some((r) => refMatch(r, n));
        sum.RepoTags = (sum.RepoTags as string[]).filter(match);
        sum.RepoDigests = (sum.RepoDigests as string[]).filter(match);
      }
      out.push(sum);
    }
    out.sort((a, b) => (b.Created as number) - (a.Created as number));
    ctx.send(out);
  });

  router.add('GET', '/images/{name}/json', async (ctx) => {
    const images = store(daemon);
    ctx.send(await inspect(images, images.mustLookup(ctx.params.name as string), ctx.apiVersion));
  });

  router.add('GET', '/images/{name}/history', async (ctx) => {
    const images = store(daemon);
    ctx.send(await history(images, images.mustLookup(ctx.params.name as string)));
  });

  router.add('POST', '/images/prune', async (ctx) => {
    const images = store(daemon);
    const f = ctx.filters();
    checkFilters(f, new Set(['dangling', 'until', 'label', 'label!']));
    const danglingOnly = boolFilter(f, 'dangling') ?? true;
    const until = f.get('until')?.[0];
    const untilT = until !== undefined ? untilCutoff(until) : undefined;
    const deleted: DeleteItem[] = [];
    let reclaimed = 0;
    for (const s of images.allStored()) {
      if (images.isInUse(s.id)) continue;
      if (danglingOnly && images.tagsOf(s.id).length > 0) continue;
      const c = await images.config(s.id);
      if (untilT !== undefined && !(Date.parse(c.created ?? s.added) < untilT)) continue;
      const labels = c.config?.Labels ?? {};
      if (f.get('label') && !labelMatch(labels, f.get('label') ?? [])) continue;
      if (f.get('label!') && (f.get('label!') ?? []).some((l) => labelMatch(labels, [l]))) continue;
      const before = (await images.diskUsage()).layersSize;
      deleted.push(...(await removeImage(daemon, images, s.id, false, { prune: true })));
      reclaimed += Math.max(0, before - (await images.diskUsage()).layersSize);
    }
    emit(daemon, 'prune', '', undefined);
    ctx.send({ ImagesDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed });
  });

  router.add('GET', '/images/search', () => {
    // what dockerd answers when the index cannot be reached
    throw new DockerError(
      500,
      'Get "https://index.docker.io/v1/search": search needs Docker Hub, which Skiff cannot reach (no internet access)',
    );
  });
};
