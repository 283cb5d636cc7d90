// Push: the image's layers and config (HEAD to skip what the registry has, else an upload), then its manifest:
// the stored one when the image came from a registry, else one made now (Docker v2 schema 2 when the layers
// have Docker media types, OCI otherwise). dockerd's progress lines.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { DockerError, notFoundError, type ImageStore, type ProgressFn, type RegistryAuth } from '../contracts.js';
import { MEDIA, RegistryClient, RegistryHttpError, type ClientOptions } from './client.js';
import { layerStatus, shortId, TransferProgress } from './progress.js';
import { familiarName, fullName, fullString, parseReference, type Reference } from './reference.js';

/** Concurrent layer uploads (dockerd's default max-concurrent-uploads is 5). */
export const MAX_CONCURRENT_UPLOADS = 3;
/** Blobs up to this size are uploaded in one PUT; bigger ones are streamed with PATCH. */
const MONOLITHIC_MAX = 1 << 20;

export interface PushDeps {
  store: ImageStore;
  clientOptions: ClientOptions;
}

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
}

/** A manifest for an image that has none stored: field order as Docker writes it. */
export function makeManifest(config: Desc, layers: Desc[]): { body: Buffer; mediaType: string } {
  const docker = layers.length > 0 && layers.every((l) => l.mediaType.startsWith('application/vnd.docker.'));
  const mediaType = docker ? MEDIA.dockerManifest : MEDIA.ociManifest;
  const configType = docker ? MEDIA.dockerConfig : MEDIA.ociConfig;
  const m = {
    schemaVersion: 2,
    mediaType,
    config: { mediaType: configType, size: config.size, digest: config.digest },
    layers: layers.map((l) => ({ mediaType: l.mediaType, size: l.size, digest: l.digest })),
  };
  return { body: Buffer.from(JSON.stringify(m, null, 3)), mediaType };
}

async function storedManifest(
  store: ImageStore,
  found: { manifest?: { digest: string; mediaType: string } },
  config: string,
): Promise<{ body: Buffer; mediaType: string } | undefined> {
  const m = found.manifest;
  if (!m || !(await store.content.has(m.digest))) return undefined;
  const body = await store.content.readBuffer(m.digest);
  try {
    const o = JSON.parse(body.toString('utf8')) as { config?: { digest?: string } };
    if (o.config?.digest !== config) return undefined;
  } catch {
    return undefined;
  }
  return { body, mediaType: m.mediaType };
}

export async function push(
  deps: PushDeps,
  input: string,
  auth: RegistryAuth | undefined,
  progress: ProgressFn,
  signal?: AbortSignal,
): Promise<{ tag: string; digest: string; size: number }> {
  const parsed = parseReference(input);
  const ref: Reference =
    parsed.tag === undefined && parsed.digest === undefined ? { ...parsed, tag: 'latest' } : parsed;
  const { store } = deps;
  const found = await store.manifestOf(fullString(ref));
  if (!found) throw notFoundError(`An image does not exist locally with the tag: ${familiarName(ref)}`);

  progress({ status: `The push refers to repository [${fullName(ref)}]` });
  const client = new RegistryClient(ref.domain, ref.path, auth, ['pull', 'push'], deps.clientOptions);
  try {
    await client.ensureAuth(signal);
  } catch (err) {
    throw pushError(err);
  }

  const diffIds = ((found.image.raw.rootfs as { diff_ids?: string[] } | undefined)?.diff_ids ?? []) as string[];
  const layers = found.layers;
  const idOf = (i: number): string => shortId(diffIds[i] ?? layers[i]!.digest);
  // top layer first, as dockerd lists them
  const order = layers.map((_, i) => i).reverse();
  for (const i of order) progress(layerStatus('Preparing', idOf(i)));
  order.slice(MAX_CONCURRENT_UPLOADS).forEach((i) => progress(layerStatus('Waiting', idOf(i))));

  const done = new Set<string>();
  const uploadOne = async (d: Desc, id: string | undefined): Promise<void> => {
    if (done.has(d.digest)) return;
    done.add(d.digest);
    if (await client.hasBlob(d.digest, signal)) {
      if (id) progress(layerStatus('Layer already exists', id));
      return;
    }
    if (d.size <= MONOLITHIC_MAX) {
      const data = await store.content.readBuffer(d.digest, MONOLITHIC_MAX);
      if (id) progress(new TransferProgressOnce(id, data.length).message());
      await client.uploadBlob(d.digest, data.length, data, signal);
    } else {
      const tp = id ? new TransferProgress(progress, 'Pushing', id, d.size) : undefined;
      const src = store.content.read(d.digest);
      const counted = Readable.from(
        (async function* () {
          for await (const c of src as AsyncIterable<Buffer>) {
            tp?.add(c.length);
            yield c;
          }
        })(),
      );
      await client.uploadBlob(d.digest, d.size, Readable.toWeb(counted) as ReadableStream<Uint8Array>, signal);
    }
    if (id) progress(layerStatus('Pushed', id));
  };

  try {
    const queue = [...order];
    let failed: unknown;
    const worker = async (): Promise<void> => {
      while (queue.length && failed === undefined) {
        const i = queue.shift()!;
        try {
          await uploadOne(layers[i]!, idOf(i));
        } catch (err) {
          failed ??= err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(MAX_CONCURRENT_UPLOADS, order.length) }, worker));
    if (failed !== undefined) throw failed;

    let manifest = await storedManifest(store, found, found.config.digest);
    let configType = found.config.mediaType;
    if (manifest?.mediaType === MEDIA.dockerManifest) configType = MEDIA.dockerConfig;
    else if (manifest?.mediaType === MEDIA.ociManifest) configType = MEDIA.ociConfig;
    const config = { ...found.config, mediaType: configType };
    await uploadOne(config, undefined);
    manifest ??= makeManifest(config, layers);
    const tag = ref.tag ?? 'latest';
    const digest = await client.putManifest(ref.digest ?? tag, manifest.mediaType, manifest.body, signal);
    const own = 'sha256:' + createHash('sha256').update(manifest.body).digest('hex');
    const size = manifest.body.length;
    progress({ status: `${tag}: digest: ${own || digest} size: ${size}` });
    progress({ progressDetail: {}, aux: { Tag: tag, Digest: own, Size: size } });
    return { tag, digest: own, size };
  } catch (err) {
    throw pushError(err);
  }
}

/** A single "Pushing" line for a blob sent in one request. */
class TransferProgressOnce {
  constructor(
    private readonly id: string,
    private readonly size: number,
  ) {}
  message(): { status: string; progressDetail: { current: number; total: number }; progress: string; id: string } {
    let line = '';
    new TransferProgress((m) => (line = m.progress ?? ''), 'Pushing', this.id, this.size).add(this.size);
    return { status: 'Pushing', progressDetail: { current: this.size, total: this.size }, progress: line, id: this.id };
  }
}

function pushError(err: unknown): Error {
  if (err instanceof DockerError) return err;
  if (err instanceof RegistryHttpError) return new DockerError(err.status === 401 ? 401 : 500, err.message);
  return new DockerError(500, (err as Error)?.message ?? String(err));
}
