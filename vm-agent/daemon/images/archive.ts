// docker load and docker save: docker-archive tars (manifest.json) and OCI image layouts (index.json, oci-layout),
// read into the content store and written from it. save writes both manifest.json and index.json so that either
// loader accepts the result.
import { open } from 'node:fs/promises';
import { posix } from 'node:path';
import { badRequest, type LayerDescriptor } from '../contracts.js';
import { sha256 } from './content.js';
import { familiar, parseReference } from './reference.js';
import { MEDIA, type Images, type StoredImage } from './store.js';
import { padding, readTar, TAR_END, tarHeader } from './tar.js';
import { detectCompression } from './unpack.js';

interface ArchiveFile {
  digest: string;
  size: number;
  data?: Buffer;
}

export interface LoadedImage {
  id: string;
  /** Fully qualified tags given to it. */
  tags: string[];
}

const KEEP_IN_MEMORY = 4 << 20;
const MAX_IN_MEMORY = 64 << 20;

function cleanName(n: string): string {
  return posix.normalize(n.replace(/^(\.\/)+/, '')).replace(/\/$/, '');
}

async function layerMediaType(images: Images, digest: string): Promise<string> {
  const fh = await open(images.content.path(digest), 'r');
  try {
    const b = Buffer.alloc(8);
    await fh.read(b, 0, 8, 0);
    const c = detectCompression(b);
    return c === 'gzip' ? MEDIA.dockerLayerGzip : c === 'zstd' ? MEDIA.ociLayerZstd : MEDIA.dockerLayer;
  } finally {
    await fh.close();
  }
}

/** Read a docker-archive or OCI layout tar and record its images. Blobs that no image uses are dropped. */
export async function loadArchive(images: Images, body: AsyncIterable<Buffer>): Promise<LoadedImage[]> {
  const files = new Map<string, ArchiveFile>();
  const links = new Map<string, string>();
  const written = new Set<string>();
  let inMemory = 0;
  try {
    for await (const e of readTar(body)) {
      const h = e.header;
      const name = cleanName(h.name);
      if (h.type === 'symlink' || h.type === 'link') {
        const target = h.type === 'symlink' ? posix.join(posix.dirname(name), h.linkname) : h.linkname;
        links.set(name, cleanName(target));
        continue;
      }
      if (h.type !== 'file') continue;
      const w = await images.content.writer();
      const keep = h.size <= KEEP_IN_MEMORY && inMemory + h.size <= MAX_IN_MEMORY;
      const chunks: Buffer[] = [];
      try {
        for await (const c of e.body()) {
          await w.write(c);
          if (keep) chunks.push(c);
        }
      } catch (err) {
        await w.abort();
        throw err;
      }
      const r = await w.commit();
      written.add(r.digest);
      const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(name);
      if (m && `sha256:${m[1]}` !== r.digest)
        throw badRequest(`invalid archive: ${name} has the digest ${r.digest} (corrupt or tampered blob)`);
      const f: ArchiveFile = { digest: r.digest, size: r.size };
      if (keep) {
        f.data = Buffer.concat(chunks);
        inMemory += f.data.length;
      }
      files.set(name, f);
    }
  } catch (err) {
    await images.gc(written);
    if ((err as Error).name === 'TarError') throw badRequest(`invalid archive: ${(err as Error).message}`);
    throw err;
  }

  const file = (n: string): ArchiveFile => {
    let name = cleanName(n);
    for (let i = 0; i < 16 && links.has(name); i++) name = links.get(name) as string;
    const f = files.get(name);
    if (!f) throw badRequest(`invalid archive: ${n} is listed but not in the archive`);
    return f;
  };
  const json = <T>(f: ArchiveFile, what: string): T => {
    if (!f.data) throw badRequest(`invalid archive: ${what} is too big`);
    try {
      return JSON.parse(f.data.toString('utf8')) as T;
    } catch {
      throw badRequest(`invalid archive: ${what} is not JSON`);
    }
  };

  const loaded: LoadedImage[] = [];
  const used = new Set<string>();
  let failed = true;
  try {
    if (files.has('manifest.json')) {
      const manifest = json<Array<{ Config: string; RepoTags?: string[] | null; Layers: string[] }>>(
        file('manifest.json'),
        'manifest.json',
      );
      if (!Array.isArray(manifest)) throw badRequest('invalid archive: manifest.json is not a list');
      for (const m of manifest) {
        if (typeof m.Config !== 'string' || !Array.isArray(m.Layers))
          throw badRequest('invalid archive: manifest.json entry without Config or Layers');
        const cfg = file(m.Config);
        const layers: LayerDescriptor[] = [];
        for (const l of m.Layers) {
          const f = file(l);
          layers.push({ digest: f.digest, size: f.size, mediaType: await layerMediaType(images, f.digest) });
        }
        const tags = (m.RepoTags ?? []).map((t) => images.normalize(t));
        used.add(cfg.digest);
        for (const l of layers) used.add(l.digest);
        const rec = await images.commitImage({ config: cfg.digest, layers, tags });
        loaded.push({ id: rec.id, tags });
      }
    } else if (files.has('index.json')) {
      const walk = async (digest: string, mediaType: string | undefined, tag: string | undefined): Promise<void> => {
        const f = [...files.values()].find((x) => x.digest === digest);
        if (!f) throw badRequest(`invalid archive: blob ${digest} is missing`);
        const doc = json<{
          mediaType?: string;
          manifests?: Array<{
            digest: string;
            mediaType?: string;
            platform?: { os?: string; architecture?: string };
            annotations?: Record<string, string>;
          }>;
          config?: { digest: string };
          layers?: Array<{ digest: string; mediaType: string; size: number }>;
        }>(f, digest);
        used.add(digest);
        if (doc.manifests) {
          const want = process.arch === 'x64' ? 'amd64' : process.arch;
          const pick =
            doc.manifests.find((d) => !d.platform || (d.platform.os === 'linux' && d.platform.architecture === want)) ??
            doc.manifests[0];
          if (!pick) throw badRequest('invalid archive: an index without manifests');
          return walk(pick.digest, pick.mediaType, tag);
        }
        if (!doc.config || !Array.isArray(doc.layers))
          throw badRequest(`invalid archive: ${digest} is neither an index nor a manifest`);
        const layers = doc.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size }));
        for (const l of layers) {
          if (!(await images.content.has(l.digest))) throw badRequest(`invalid archive: layer ${l.digest} is missing`);
          used.add(l.digest);
        }
        used.add(doc.config.digest);
        const rec = await images.commitImage({
          config: doc.config.digest,
          layers,
          manifest: { digest, mediaType: doc.mediaType ?? mediaType ?? MEDIA.ociManifest },
          tags: tag ? [tag] : [],
        });
        loaded.push({ id: rec.id, tags: tag ? [images.normalize(tag)] : [] });
      };
      const index = json<{
        manifests?: Array<{ digest: string; mediaType?: string; annotations?: Record<string, string> }>;
      }>(file('index.json'), 'index.json');
      for (const d of index.manifests ?? []) {
        const a = d.annotations ?? {};
        let tag: string | undefined = a['io.containerd.image.name'];
        if (!tag && a['org.opencontainers.image.ref.name']) {
          try {
            const r = parseReference(a['org.opencontainers.image.ref.name']);
            if (r.tag !== undefined && a['org.opencontainers.image.ref.name'].includes(':')) tag = r.name + ':' + r.tag;
          } catch {
            /* a bare tag ("latest"): no name to give it */
          }
        }
        await walk(d.digest, d.mediaType, tag);
      }
    } else {
      throw badRequest('invalid archive: no manifest.json or index.json (not a docker save or OCI layout tar)');
    }
    failed = false;
  } finally {
    // what the archive held that no image uses (repositories, legacy json files, ...; everything on failure:
    // gc keeps what a recorded image references)
    const drop = [...written].filter((d) => failed || !used.has(d));
    await images.gc(new Set(drop));
  }
  return loaded;
}

// ---------------------------------------------------------------------------------------------- save

function ociLayerType(t: string): string {
  if (t === MEDIA.dockerLayerGzip) return MEDIA.ociLayerGzip;
  if (t === MEDIA.dockerLayer) return MEDIA.ociLayer;
  return t;
}

/** The tar of `save`: OCI layout (index.json, oci-layout, blobs) plus docker's manifest.json. */
export async function* saveArchive(images: Images, list: Array<{ image: StoredImage; tags: string[] }>) {
  const sent = new Set<string>();
  const mtime = Math.floor(Date.now() / 1000);
  const dirs = ['blobs/', 'blobs/sha256/'];
  for (const d of dirs) yield tarHeader({ name: d, type: 'dir', mtime });
  const blob = async function* (digest: string): AsyncGenerator<Buffer> {
    if (sent.has(digest)) return;
    sent.add(digest);
    const size = await images.content.size(digest);
    if (size === undefined) throw new Error(`blob ${digest} is missing from the content store`);
    yield tarHeader({ name: `blobs/sha256/${digest.slice(7)}`, type: 'file', size, mtime, mode: 0o444 });
    let n = 0;
    for await (const c of images.content.read(digest) as AsyncIterable<Buffer>) {
      n += c.length;
      yield c;
    }
    if (n !== size) throw new Error(`blob ${digest} changed size while being saved`);
    yield Buffer.alloc(padding(size));
  };
  const memBlob = function* (data: Buffer): Generator<Buffer> {
    const digest = sha256(data);
    if (sent.has(digest)) return;
    sent.add(digest);
    yield tarHeader({ name: `blobs/sha256/${digest.slice(7)}`, type: 'file', size: data.length, mtime, mode: 0o444 });
    yield data;
    yield Buffer.alloc(padding(data.length));
  };
  const dockerManifest: Array<{ Config: string; RepoTags: string[]; Layers: string[] }> = [];
  const index: Array<Record<string, unknown>> = [];
  for (const { image, tags } of list) {
    yield* blob(image.id);
    for (const l of image.layers) yield* blob(l.digest);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.ociManifest,
        config: { mediaType: MEDIA.ociConfig, digest: image.id, size: image.configSize },
        layers: image.layers.map((l) => ({ mediaType: ociLayerType(l.mediaType), digest: l.digest, size: l.size })),
      }),
    );
    yield* memBlob(manifest);
    const md = sha256(manifest);
    const desc = { mediaType: MEDIA.ociManifest, digest: md, size: manifest.length };
    if (tags.length === 0) index.push(desc);
    for (const t of tags) {
      const r = parseReference(t);
      index.push({
        ...desc,
        annotations: { 'io.containerd.image.name': t, 'org.opencontainers.image.ref.name': r.tag ?? 'latest' },
      });
    }
    dockerManifest.push({
      Config: `blobs/sha256/${image.id.slice(7)}`,
      RepoTags: tags.map(familiar),
      Layers: image.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`),
    });
  }
  const small = function* (name: string, data: Buffer): Generator<Buffer> {
    yield tarHeader({ name, type: 'file', size: data.length, mtime });
    yield data;
    yield Buffer.alloc(padding(data.length));
  };
  yield* small('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
  yield* small(
    'index.json',
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: index })),
  );
  yield* small('manifest.json', Buffer.from(JSON.stringify(dockerManifest)));
  yield TAR_END;
}
