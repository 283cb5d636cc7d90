// registry/ pull, push and login against a fake distribution registry with a token server (Bearer challenges,
// scopes, basic credentials for the token), and an in-memory image store: progress lines, concurrency, "Already
// exists", a corrupt layer keeping nothing, push with HEAD skips and chunked uploads, login right and wrong.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  BlobWriter,
  ContentStore,
  ImageRecord,
  ImageStore,
  LayerDescriptor,
  ProgressMessage,
} from '../../vm-agent/daemon/contracts.js';
import { login } from '../../vm-agent/daemon/registry/login.js';
import { pull } from '../../vm-agent/daemon/registry/pull.js';
import { push } from '../../vm-agent/daemon/registry/push.js';

const sha = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------------------------ a fake registry

class FakeRegistry {
  server!: Server;
  port = 0;
  blobs = new Map<string, Buffer>();
  manifests = new Map<string, { type: string; body: Buffer }>(); // "name/ref" → manifest
  tokenScopes: string[][] = [];
  inflight = 0;
  maxInflight = 0;
  corrupt = new Set<string>();
  uploads = new Map<string, Buffer[]>();
  patches = 0;

  get host(): string {
    return `localhost:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
  }

  private challenge(res: ServerResponse, scope?: string): void {
    const s = scope ? `,scope="${scope}"` : '';
    res.writeHead(401, {
      'WWW-Authenticate': `Bearer realm="http://127.0.0.1:${this.port}/token",service="fake"${s}`,
      'Content-Type': 'application/json',
    });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
  }

  private async body(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url!, `http://${req.headers.host}`);
    if (url.pathname === '/token') {
      const scopes = url.searchParams.getAll('scope');
      this.tokenScopes.push(scopes);
      const auth = req.headers.authorization;
      let who = 'anon';
      if (auth) {
        const [u, p] = Buffer.from(auth.replace(/^Basic /, ''), 'base64')
          .toString()
          .split(':');
        if (u !== 'user' || p !== 'pass') {
          res.writeHead(401, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ details: 'incorrect username or password' }));
          return;
        }
        who = 'user';
      }
      const push = who === 'user' && scopes.some((s) => s.endsWith(':pull,push'));
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ token: `${who}:${push ? 'push' : 'pull'}` }));
      return;
    }
    const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    if (!token.includes(':')) return this.challenge(res);
    if (url.pathname === '/v2/') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{}');
      return;
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/(.+)$/.exec(url.pathname);
    if (!m) return this.notFound(res, 'NAME_UNKNOWN', 'repository name not known to registry');
    const [, name, kind, ref] = m as unknown as [string, string, string, string];
    const writing = req.method !== 'GET' && req.method !== 'HEAD';
    if (writing && !token.endsWith(':push')) return this.challenge(res, `repository:${name}:pull,push`);
    if (kind === 'manifests') {
      const key = `${name}/${ref}`;
      if (req.method === 'PUT') {
        const body = await this.body(req);
        const type = req.headers['content-type']!;
        this.manifests.set(key, { type, body });
        this.manifests.set(`${name}/${sha(body)}`, { type, body });
        res.writeHead(201, { 'Docker-Content-Digest': sha(body) });
        res.end();
        return;
      }
      const found = this.manifests.get(key);
      if (!found) return this.notFound(res, 'MANIFEST_UNKNOWN', 'manifest unknown');
      res.writeHead(200, { 'Content-Type': found.type, 'Docker-Content-Digest': sha(found.body) });
      res.end(req.method === 'HEAD' ? undefined : found.body);
      return;
    }
    // blobs
    if (ref.startsWith('uploads/')) return this.upload(req, res, name, ref.slice(8), url);
    const blob = this.blobs.get(ref);
    if (!blob) return this.notFound(res, 'BLOB_UNKNOWN', 'blob unknown to registry');
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'Content-Length': blob.length });
      res.end();
      return;
    }
    this.inflight++;
    this.maxInflight = Math.max(this.maxInflight, this.inflight);
    res.writeHead(200, { 'Content-Length': blob.length, 'Content-Type': 'application/octet-stream' });
    const data = this.corrupt.has(ref) ? randomBytes(blob.length) : blob;
    for (let off = 0; off < data.length; off += 8192) {
      // the client is done once the last byte arrives: count it out before sending that
      if (off + 8192 >= data.length) this.inflight--;
      res.write(data.subarray(off, off + 8192));
      await sleep(2);
    }
    res.end();
  }

  private async upload(req: IncomingMessage, res: ServerResponse, name: string, id: string, url: URL): Promise<void> {
    if (req.method === 'POST') {
      const uuid = randomBytes(8).toString('hex');
      this.uploads.set(uuid, []);
      res.writeHead(202, { Location: `/v2/${name}/blobs/uploads/${uuid}` });
      res.end();
      return;
    }
    const parts = this.uploads.get(id);
    if (!parts) return this.notFound(res, 'BLOB_UPLOAD_UNKNOWN', 'blob upload unknown');
    parts.push(await this.body(req));
    if (req.method === 'PATCH') {
      this.patches++;
      res.writeHead(202, { Location: `/v2/${name}/blobs/uploads/${id}` });
      res.end();
      return;
    }
    const data = Buffer.concat(parts);
    const digest = url.searchParams.get('digest')!;
    if (sha(data) !== digest) {
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'DIGEST_INVALID', message: 'provided digest did not match' }] }));
      return;
    }
    this.blobs.set(digest, data);
    res.writeHead(201, { 'Docker-Content-Digest': digest });
    res.end();
  }

  private notFound(res: ServerResponse, code: string, message: string): void {
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code, message }] }));
  }

  /** An image: n random layers (gzip media type, the bytes are opaque here), a config, a manifest, an index. */
  addImage(name: string, tag: string, layerSizes: number[]): { layers: string[]; config: string; manifest: string } {
    const layers = layerSizes.map((n) => randomBytes(n));
    const diffIds = layers.map((l) => sha(l));
    const config = Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds } }),
    );
    this.blobs.set(sha(config), config);
    for (const l of layers) this.blobs.set(sha(l), l);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        config: {
          mediaType: 'application/vnd.docker.container.image.v1+json',
          size: config.length,
          digest: sha(config),
        },
        layers: layers.map((l) => ({
          mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
          size: l.length,
          digest: sha(l),
        })),
      }),
    );
    this.manifests.set(`${name}/${sha(manifest)}`, {
      type: 'application/vnd.docker.distribution.manifest.v2+json',
      body: manifest,
    });
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
        manifests: [
          { mediaType: 'x', digest: sha('nope'), size: 1, platform: { os: 'linux', architecture: 's390x' } },
          {
            mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
            digest: sha(manifest),
            size: manifest.length,
            platform: { os: 'linux', architecture: 'amd64' },
          },
        ],
      }),
    );
    this.manifests.set(`${name}/${tag}`, {
      type: 'application/vnd.docker.distribution.manifest.list.v2+json',
      body: index,
    });
    return { layers: layers.map((l) => sha(l)), config: sha(config), manifest: sha(manifest) };
  }
}

// ------------------------------------------------------------------------------------------ an in-memory store

class MemStore implements ImageStore {
  blobs = new Map<string, Buffer>();
  images = new Map<
    string,
    { image: ImageRecord; layers: LayerDescriptor[]; manifest?: { digest: string; mediaType: string } }
  >();
  commits = 0;
  content: ContentStore & { delete(d: string): Promise<void> };

  constructor() {
    const blobs = this.blobs;
    const content = {
      has: async (d: string) => blobs.has(d),
      size: async (d: string) => blobs.get(d)?.length,
      path: (d: string) => `/mem/${d}`,
      read: (d: string) => Readable.from([blobs.get(d)!]),
      readBuffer: async (d: string) => {
        const b = blobs.get(d);
        if (!b) throw new Error(`no blob ${d}`);
        return b;
      },
      writer: async (expected?: { digest?: string; size?: number }): Promise<BlobWriter> => {
        const parts: Buffer[] = [];
        let written = 0;
        return {
          write: async (c) => {
            parts.push(Buffer.from(c));
            written += c.length;
          },
          get written() {
            return written;
          },
          commit: async () => {
            const b = Buffer.concat(parts);
            const d = sha(b);
            if (expected?.digest && d !== expected.digest)
              throw new Error(`digest mismatch: expected ${expected.digest}, got ${d} (blob refused)`);
            blobs.set(d, b);
            return { digest: d, size: b.length };
          },
          abort: async () => undefined,
        };
      },
      put: async (data: Buffer | AsyncIterable<Buffer | Uint8Array>, expected?: { digest?: string }) => {
        let b: Buffer;
        if (Buffer.isBuffer(data)) b = data;
        else {
          const parts: Buffer[] = [];
          for await (const c of data) parts.push(Buffer.from(c));
          b = Buffer.concat(parts);
        }
        if (expected?.digest && sha(b) !== expected.digest) throw new Error('digest mismatch');
        blobs.set(sha(b), b);
        return { digest: sha(b), size: b.length };
      },
      delete: async (d: string) => void blobs.delete(d),
    };
    this.content = content;
  }

  async commitImage(opts: Parameters<ImageStore['commitImage']>[0]): Promise<ImageRecord> {
    this.commits++;
    const raw = JSON.parse(this.blobs.get(opts.config)!.toString()) as Record<string, unknown>;
    for (const l of opts.layers) {
      opts.progress?.({ status: 'Extracting', id: l.digest.slice(7, 19) });
      opts.progress?.({ status: 'Pull complete', id: l.digest.slice(7, 19) });
    }
    const image: ImageRecord = {
      id: opts.config,
      repoTags: opts.tag ? [opts.tag] : [],
      repoDigests: opts.repoDigest ? [opts.repoDigest] : [],
      created: '',
      size: 0,
      config: {},
      raw,
    };
    const entry: { image: ImageRecord; layers: LayerDescriptor[]; manifest?: { digest: string; mediaType: string } } = {
      image,
      layers: opts.layers,
    };
    if (opts.manifest) entry.manifest = opts.manifest;
    if (opts.tag) this.images.set(opts.tag, entry);
    return image;
  }

  async manifestOf(ref: string) {
    const e = this.images.get(ref);
    if (!e) return undefined;
    return {
      image: e.image,
      config: {
        digest: e.image.id,
        size: this.blobs.get(e.image.id)!.length,
        mediaType: 'application/vnd.docker.container.image.v1+json',
      },
      layers: e.layers,
      ...(e.manifest ? { manifest: e.manifest } : {}),
    };
  }

  async tag(): Promise<void> {}
  normalize(ref: string): string {
    return ref;
  }
}

// ------------------------------------------------------------------------------------------ tests

const reg = new FakeRegistry();
beforeAll(() => reg.start());
afterAll(() => new Promise<void>((r) => reg.server.close(() => r())));

const deps = (store: MemStore) => ({
  store,
  resolve: async (r: string) => store.images.get(r)?.image,
  clientOptions: {},
  platform: { os: 'linux', architecture: 'amd64' },
});

describe('pull through the token dance', () => {
  it('pulls an index: the platform manifest, layers three at a time, dockerd’s progress', async () => {
    const img = reg.addImage('team/app', 'v1', [300_000, 200_000, 150_000, 100_000, 50_000]);
    const store = new MemStore();
    const lines: ProgressMessage[] = [];
    const rec = await pull(deps(store), `${reg.host}/team/app:v1`, undefined, (m) => lines.push(m));
    expect(rec.id).toBe(img.config);
    expect(reg.maxInflight).toBe(3);
    expect(reg.tokenScopes.at(-1)).toEqual(['repository:team/app:pull']);
    for (const l of img.layers) expect(store.blobs.has(l)).toBe(true);
    expect(store.blobs.has(img.manifest)).toBe(true);
    const s = lines.map((l) => (l.id ? `${l.id}: ${l.status}` : (l.status ?? '')));
    expect(s[0]).toBe('v1: Pulling from team/app');
    const first = img.layers[0]!.slice(7, 19);
    const last = img.layers[4]!.slice(7, 19);
    expect(s).toContain(`${first}: Pulling fs layer`);
    expect(s).toContain(`${last}: Waiting`);
    expect(s).toContain(`${first}: Downloading`);
    expect(s.indexOf(`${first}: Download complete`)).toBeLessThan(s.indexOf(`${first}: Pull complete`));
    expect(s.at(-2)).toMatch(/^Digest: sha256:[0-9a-f]{64}$/);
    expect(s.at(-1)).toBe(`Status: Downloaded newer image for ${reg.host}/team/app:v1`);
    const dl = lines.filter((l) => l.status === 'Downloading' && l.id === first).at(-1)!;
    expect(dl.progressDetail).toEqual({ current: 300_000, total: 300_000 });
    expect(rec.repoDigests[0]).toBe(`${reg.host}/team/app@${sha(reg.manifests.get('team/app/v1')!.body)}`);

    // again: every layer exists; up to date
    const again: ProgressMessage[] = [];
    await pull(deps(store), `${reg.host}/team/app:v1`, undefined, (m) => again.push(m));
    const a = again.map((l) => (l.id ? `${l.id}: ${l.status}` : (l.status ?? '')));
    expect(a.filter((x) => x.endsWith('Already exists'))).toHaveLength(5);
    expect(a.some((x) => /Downloading|Extracting|Pull complete/.test(x))).toBe(false);
    expect(a.at(-1)).toBe(`Status: Image is up to date for ${reg.host}/team/app:v1`);
  });

  it('a corrupt layer fails the pull and keeps none of the blobs it wrote', async () => {
    const img = reg.addImage('bad', 'latest', [40_000, 40_000, 40_000]);
    reg.corrupt.add(img.layers[1]!);
    const store = new MemStore();
    await expect(pull({ ...deps(store), attempts: 1 }, `${reg.host}/bad`, undefined, () => undefined)).rejects.toThrow(
      /digest mismatch/,
    );
    expect([...store.blobs.keys()]).toEqual([]);
    expect(store.commits).toBe(0);
  });

  it('a missing tag and an unknown platform give dockerd’s errors (404)', async () => {
    const store = new MemStore();
    await expect(pull(deps(store), `${reg.host}/team/app:nope`, undefined, () => undefined)).rejects.toMatchObject({
      status: 404,
      message: `manifest for ${reg.host}/team/app:nope not found: manifest unknown: manifest unknown`,
    });
    await expect(
      pull(
        { ...deps(store), platform: { os: 'linux', architecture: 'riscv64' } },
        `${reg.host}/team/app:v1`,
        undefined,
        () => undefined,
      ),
    ).rejects.toMatchObject({
      status: 404,
      message: 'no matching manifest for linux/riscv64 in the manifest list entries',
    });
  });
});

describe('push and login', () => {
  it('push needs credentials, asks a pull,push token, skips blobs the registry has', async () => {
    const src = new MemStore();
    await pull(deps(src), `${reg.host}/team/app:v1`, undefined, () => undefined);
    // tag it under a new name, as `docker tag` would
    src.images.set(`${reg.host}/other/copy:2`, src.images.get(`${reg.host}/team/app:v1`)!);
    await expect(push(deps(src), `${reg.host}/other/copy:2`, undefined, () => undefined)).rejects.toThrow(
      /authentication required/,
    );
    const lines: ProgressMessage[] = [];
    const out = await push(deps(src), `${reg.host}/other/copy:2`, { username: 'user', password: 'pass' }, (m) =>
      lines.push(m),
    );
    expect(reg.tokenScopes.at(-1)).toEqual(['repository:other/copy:pull,push']);
    const s = lines.map((l) => (l.id ? `${l.id}: ${l.status}` : (l.status ?? '')));
    expect(s[0]).toBe(`The push refers to repository [${reg.host}/other/copy]`);
    // blobs the fake registry already has (by digest, it has one store) exist; the manifest is the pulled one
    expect(s.filter((x) => x?.endsWith('Layer already exists'))).toHaveLength(5);
    const pulled = reg.manifests.get(`team/app/${out.digest}`)!;
    expect(pulled.type).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(s.at(-2)).toBe(`2: digest: ${out.digest} size: ${pulled.body.length}`);
    expect(lines.at(-1)).toEqual({
      progressDetail: {},
      aux: { Tag: '2', Digest: out.digest, Size: pulled.body.length },
    });
    expect(reg.manifests.get('other/copy/2')!.body.equals(pulled.body)).toBe(true);

    // new blobs: a big one goes PATCH + PUT, small ones one PUT
    const big = randomBytes(3 << 20);
    const cfg = Buffer.from(JSON.stringify({ os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(big)] } }));
    src.blobs.set(sha(big), big);
    src.blobs.set(sha(cfg), cfg);
    src.images.set(`${reg.host}/fresh:latest`, {
      image: {
        id: sha(cfg),
        repoTags: [],
        repoDigests: [],
        created: '',
        size: 0,
        config: {},
        raw: JSON.parse(cfg.toString()),
      },
      layers: [{ digest: sha(big), size: big.length, mediaType: 'application/vnd.oci.image.layer.v1.tar' }],
    });
    const patches = reg.patches;
    const fresh: ProgressMessage[] = [];
    await push(deps(src), `${reg.host}/fresh`, { username: 'user', password: 'pass' }, (m) => fresh.push(m));
    expect(reg.patches).toBe(patches + 1);
    expect(reg.blobs.get(sha(big))!.equals(big)).toBe(true);
    expect(fresh.some((l) => l.status === 'Pushing' && l.progressDetail?.current === big.length)).toBe(true);
    expect(fresh.some((l) => l.status === 'Pushed')).toBe(true);
    const made = JSON.parse(reg.manifests.get('fresh/latest')!.body.toString()) as {
      mediaType: string;
      config: { mediaType: string };
    };
    expect(made.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
  });

  it('push of an image that is not there: dockerd’s 404', async () => {
    await expect(push(deps(new MemStore()), `${reg.host}/ghost:1`, undefined, () => undefined)).rejects.toMatchObject({
      status: 404,
      message: `An image does not exist locally with the tag: ${reg.host}/ghost`,
    });
  });

  it('login follows the token dance: right credentials succeed, wrong ones give the token server’s 401', async () => {
    await expect(login(`http://${reg.host}/`, 'user', 'pass', {})).resolves.toEqual({ Status: 'Login Succeeded' });
    await expect(login(reg.host, 'user', 'nope', {})).rejects.toMatchObject({
      status: 401,
      message: 'unauthorized: incorrect username or password',
    });
  });
});
