// Pull: manifest (or index → the platform's manifest), config, layers three at a time into the content store,
// then the image store's commit (unpack, record, tag). dockerd's progress lines on the way. Any failure removes
// the blobs this pull wrote, so nothing half-written is kept (the image store commits the tag last).
import { DockerError, type ImageRecord, type ImageStore, type ProgressFn, type ProgressMessage } from '../contracts.js';
import type { RegistryAuth } from '../contracts.js';
import {
  MAX_MANIFEST,
  MEDIA,
  RegistryClient,
  RegistryHttpError,
  type ClientOptions,
  readLimited,
  transportError,
} from './client.js';
import { hostPlatform, type IndexEntry, type Platform, selectManifest } from './platform.js';
import { layerStatus, shortId, TransferProgress } from './progress.js';
import {
  familiarName,
  familiarString,
  fullName,
  fullString,
  manifestReference,
  parseReference,
  type Reference,
  withDefaultTag,
} from './reference.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
}

export interface ImageManifest {
  schemaVersion: number;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

const LAYER_TYPES = new Set([
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.diff.tar',
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
]);
const DIGEST = /^sha256:[a-f0-9]{64}$/;
/** Concurrent layer downloads, as dockerd's default max-concurrent-downloads. */
export const MAX_CONCURRENT_DOWNLOADS = 3;
/** Image configs above this size are refused (a hostile manifest may announce anything). */
const MAX_CONFIG = 32 << 20;

export interface PullDeps {
  store: ImageStore;
  resolve(ref: string): Promise<ImageRecord | undefined>;
  clientOptions: ClientOptions;
  platform?: Platform;
  /** Download attempts per layer (a dropped connection is retried). */
  attempts?: number;
}

function checkDescriptor(d: unknown, what: string): Descriptor {
  const o = d as Partial<Descriptor> | null;
  if (!o || typeof o.digest !== 'string' || !DIGEST.test(o.digest))
    throw new DockerError(500, `invalid ${what} in manifest: bad digest ${JSON.stringify(o?.digest)}`);
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0)
    throw new DockerError(500, `invalid ${what} in manifest: bad size`);
  return { mediaType: String(o.mediaType ?? ''), digest: o.digest, size: o.size, ...(o.urls ? { urls: o.urls } : {}) };
}

/** Parse and check an image manifest (OCI or Docker v2 schema 2). */
export function parseImageManifest(body: Buffer, mediaType: string): ImageManifest {
  let m: { schemaVersion?: number; config?: unknown; layers?: unknown };
  try {
    m = JSON.parse(body.toString('utf8')) as typeof m;
  } catch {
    throw new DockerError(500, 'invalid manifest: not JSON');
  }
  if (mediaType === MEDIA.dockerSchema1 || mediaType === MEDIA.dockerSchema1Signed || m.schemaVersion === 1)
    throw new DockerError(
      500,
      'Docker Image manifest version 2, schema 1 is not supported: the image must be pushed again with a newer client',
    );
  if (m.schemaVersion !== 2) throw new DockerError(500, `unsupported manifest schema version ${m.schemaVersion}`);
  if (!Array.isArray(m.layers)) throw new DockerError(500, 'invalid manifest: no layers');
  const config = checkDescriptor(m.config, 'config');
  const layers = m.layers.map((l, i) => checkDescriptor(l, `layer ${i}`));
  for (const l of layers) {
    if (l.mediaType !== '' && !LAYER_TYPES.has(l.mediaType))
      throw new DockerError(500, `unsupported layer media type ${l.mediaType}`);
  }
  return { schemaVersion: 2, mediaType, config, layers };
}

/** Map a registry error of the manifest fetch to dockerd's message and status. */
export function manifestError(err: unknown, ref: Reference): Error {
  if (!(err instanceof RegistryHttpError)) return err as Error;
  const name = familiarName(ref);
  if (err.code === 'MANIFEST_UNKNOWN' || (err.status === 404 && err.code !== 'NAME_UNKNOWN')) {
    const what = ref.digest ? `${name}@${ref.digest}` : `${name}:${ref.tag ?? 'latest'}`;
    return new DockerError(404, `manifest for ${what} not found: ${err.message}`);
  }
  if (err.code === 'NAME_UNKNOWN' || err.status === 401 || err.status === 403 || err.code === 'DENIED') {
    return new DockerError(
      404,
      `pull access denied for ${name}, repository does not exist or may require 'docker login': ${err.message}`,
    );
  }
  return new DockerError(err.status >= 400 && err.status < 600 ? 500 : 500, err.message);
}

async function runLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async (): Promise<void> => {
    while (next < items.length && failed === undefined) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed;
}

export async function pull(
  deps: PullDeps,
  input: string,
  auth: RegistryAuth | undefined,
  progress: ProgressFn,
  signal?: AbortSignal,
): Promise<ImageRecord> {
  const ref = withDefaultTag(parseReference(input));
  const { store } = deps;
  const content = store.content;
  const client = new RegistryClient(ref.domain, ref.path, auth, ['pull'], deps.clientOptions);

  // 1. the manifest (through an index when there is one)
  let top;
  try {
    top = await client.getManifest(manifestReference(ref), signal);
  } catch (err) {
    throw manifestError(err, ref);
  }
  let manifestBody = top.body;
  let manifestType = top.mediaType;
  let manifestDigest = top.digest;
  if (top.mediaType === MEDIA.ociIndex || top.mediaType === MEDIA.dockerList) {
    let idx: { manifests?: IndexEntry[] };
    try {
      idx = JSON.parse(top.body.toString('utf8')) as typeof idx;
    } catch {
      throw new DockerError(500, 'invalid manifest list: not JSON');
    }
    const chosen = selectManifest(idx.manifests ?? [], deps.platform ?? hostPlatform());
    if (!DIGEST.test(chosen.digest)) throw new DockerError(500, `invalid digest in manifest list: ${chosen.digest}`);
    let m;
    try {
      m = await client.getManifest(chosen.digest, signal);
    } catch (err) {
      throw manifestError(err, { ...ref, tag: undefined, digest: chosen.digest });
    }
    manifestBody = m.body;
    manifestType = m.mediaType;
    manifestDigest = m.digest;
  }
  const manifest = parseImageManifest(manifestBody, manifestType);

  const tagOrDigest = ref.digest ?? ref.tag ?? 'latest';
  progress({ status: `Pulling from ${ref.path}`, id: tagOrDigest });

  const written: string[] = []; // blobs this pull added: removed if it fails
  const put = async (data: Buffer, digest: string): Promise<void> => {
    if (await content.has(digest)) return;
    await content.put(data, { digest, size: data.length });
    written.push(digest);
  };

  try {
    const existing = await deps.resolve(fullString(ref)).catch(() => undefined);

    // 2. the config
    if (!(await content.has(manifest.config.digest))) {
      const res = await client.getBlob(manifest.config.digest, signal);
      const cfg = await readLimited(
        res,
        Math.min(Math.max(MAX_MANIFEST, manifest.config.size), MAX_CONFIG),
        'image config',
      );
      await put(cfg, manifest.config.digest);
    }

    // 3. the layers, three at a time; those already in the store are skipped
    const unique = [...new Map(manifest.layers.map((l) => [l.digest, l])).values()];
    const todo: Descriptor[] = [];
    for (const l of unique) {
      if (await content.has(l.digest)) progress(layerStatus('Already exists', shortId(l.digest)));
      else {
        progress(layerStatus('Pulling fs layer', shortId(l.digest)));
        todo.push(l);
      }
    }
    todo.slice(MAX_CONCURRENT_DOWNLOADS).forEach((l) => progress(layerStatus('Waiting', shortId(l.digest))));
    const aborter = new AbortController();
    const onAbort = (): void => aborter.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await runLimited(todo, MAX_CONCURRENT_DOWNLOADS, async (l) => {
        try {
          await download(client, deps, l, progress, aborter.signal, written);
        } catch (err) {
          aborter.abort();
          throw err;
        }
      });
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (signal?.aborted) throw new DockerError(500, 'context canceled');

    // 4. the manifest blob (kept for push) and the commit: unpack, record, tag
    await put(manifestBody, manifestDigest);
    // the store reports Extracting / Pull complete per layer: only for the layers this pull downloaded (an
    // "Already exists" layer says nothing more, as in dockerd)
    const fetched = new Set(todo.map((l) => shortId(l.digest)));
    const completed = new Set<string>();
    const tap: ProgressFn = (m: ProgressMessage) => {
      if (m.id !== undefined && !fetched.has(m.id) && m.id !== tagOrDigest) return;
      if (m.status === 'Pull complete' && m.id) completed.add(m.id);
      progress(m);
    };
    const image = await store.commitImage({
      config: manifest.config.digest,
      layers: manifest.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size })),
      manifest: { digest: manifestDigest, mediaType: manifestType },
      ...(ref.tag !== undefined && ref.digest === undefined ? { tag: fullString(ref) } : {}),
      repoDigest: `${fullName(ref)}@${top.digest}`,
      progress: tap,
    });
    for (const l of todo)
      if (!completed.has(shortId(l.digest))) progress(layerStatus('Pull complete', shortId(l.digest)));

    progress({ status: `Digest: ${top.digest}` });
    const upToDate = existing !== undefined && existing.id === image.id && todo.length === 0;
    progress({
      status: `Status: ${upToDate ? 'Image is up to date' : 'Downloaded newer image'} for ${familiarString(ref)}`,
    });
    return image;
  } catch (err) {
    await Promise.all(written.map((d) => deleteBlob(store, d)));
    if (err instanceof RegistryHttpError) throw new DockerError(500, err.message);
    if (err instanceof DockerError) throw err;
    const e = err as Error;
    throw new DockerError(500, e.message ?? String(err));
  }
}

async function deleteBlob(store: ImageStore, digest: string): Promise<void> {
  const c = store.content as { delete?: (d: string) => Promise<void> };
  await c.delete?.(digest).catch(() => undefined);
}

/** One layer into the content store, with Downloading progress, verified; retried on a dropped connection. */
async function download(
  client: RegistryClient,
  deps: PullDeps,
  l: Descriptor,
  progress: ProgressFn,
  signal: AbortSignal,
  written: string[],
): Promise<void> {
  const id = shortId(l.digest);
  const attempts = deps.attempts ?? 3;
  for (let attempt = 1; ; attempt++) {
    const w = await deps.store.content.writer({ digest: l.digest, size: l.size });
    try {
      const res = await client.getBlob(l.digest, signal);
      if (!res.body) throw new Error(`GET blob ${l.digest}: no body`);
      const tp = new TransferProgress(progress, 'Downloading', id, l.size);
      const it = (res.body as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
      for (;;) {
        let r: IteratorResult<Uint8Array>;
        try {
          r = await it.next();
        } catch (err) {
          throw transportError('GET', client.repoUrl('blobs', l.digest), err);
        }
        if (r.done) break;
        if (signal.aborted) throw new Error('context canceled');
        await w.write(r.value);
        tp.add(r.value.length);
      }
      if (w.written !== l.size) throw new Error(`unexpected EOF: got ${w.written} of ${l.size} bytes of ${l.digest}`);
      progress(layerStatus('Verifying Checksum', id));
      await w.commit();
      written.push(l.digest);
      progress(layerStatus('Download complete', id));
      return;
    } catch (err) {
      await w.abort().catch(() => undefined);
      const retriable =
        !signal.aborted &&
        attempt < attempts &&
        !(err instanceof RegistryHttpError && err.status >= 400 && err.status < 500) &&
        !/digest mismatch|size mismatch|bigger than/.test((err as Error).message ?? '');
      if (!retriable) throw err;
      progress(layerStatus(`Retrying in ${attempt * 1} second${attempt > 1 ? 's' : ''}`, id));
      await new Promise((r) => setTimeout(r, attempt * 1000));
    }
  }
}
