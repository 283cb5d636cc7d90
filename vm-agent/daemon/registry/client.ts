// A distribution-spec v2 client for one repository: the /v2/ ping, token and basic auth, manifests, blobs and
// uploads. HTTP for loopback and insecure registries, HTTPS otherwise. Errors read like dockerd's (Go's
// `Get "url": dial tcp …: connect: connection refused`, the registry's `manifest unknown: manifest unknown`).
import { createHash } from 'node:crypto';
import type { RegistryAuth } from '../contracts.js';
import {
  basicHeader,
  type Challenge,
  errorText,
  hasCredentials,
  mergeScopes,
  parseWwwAuthenticate,
  repositoryScope,
} from './auth.js';
import { apiHost } from './reference.js';

export const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

export const MANIFEST_ACCEPT = [MEDIA.ociIndex, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.dockerManifest];

/** Manifests and configs above this size are refused (dockerd's limit is 4 MiB for manifests). */
export const MAX_MANIFEST = 4 << 20;

export interface ClientOptions {
  /** Registries (host[:port]) reached over plain HTTP besides loopback ones. */
  insecureRegistries?: string[];
  userAgent?: string;
}

/** An HTTP answer of the registry that is an error: status, the registry's first error code, its text. */
export class RegistryHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'RegistryHttpError';
  }
}

/** Loopback registries and those listed are spoken to over HTTP. */
export function isInsecure(host: string, insecure: string[] = []): boolean {
  const h = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h)) return true;
  return insecure.some((i) => i === host || i === h || i.replace(/^https?:\/\//, '').replace(/\/$/, '') === host);
}

/** Go's wording for a transport failure of `fetch`. */
export function transportError(method: string, url: string, err: unknown): Error {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'AbortError') return Object.assign(new Error('context canceled'), { name: 'AbortError' });
  const host = new URL(url).host;
  const code = e?.cause?.code;
  let why: string;
  switch (code) {
    case 'ECONNREFUSED':
      why = `dial tcp ${host}: connect: connection refused`;
      break;
    case 'ECONNRESET':
      why = `read tcp ${host}: read: connection reset by peer`;
      break;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      why = `dial tcp: lookup ${host.replace(/:\d+$/, '')}: no such host`;
      break;
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      why = `dial tcp ${host}: i/o timeout`;
      break;
    case 'UND_ERR_SOCKET':
      why = 'unexpected EOF';
      break;
    default:
      why = e?.cause?.message ?? e?.message ?? String(err);
  }
  const name = method.charAt(0) + method.slice(1).toLowerCase();
  return new Error(`${name} "${url}": ${why}`);
}

export interface FetchedManifest {
  body: Buffer;
  mediaType: string;
  digest: string;
}

export class RegistryClient {
  readonly host: string;
  readonly base: string;
  private authorization: string | undefined;
  private challenge: Challenge | undefined;
  private pinged = false;

  constructor(
    readonly domain: string,
    readonly path: string,
    readonly auth: RegistryAuth | undefined,
    /** pull, or pull and push */
    readonly actions: string[],
    readonly opts: ClientOptions = {},
  ) {
    this.host = apiHost(domain);
    const scheme = isInsecure(this.host, opts.insecureRegistries) ? 'http' : 'https';
    this.base = `${scheme}://${this.host}/v2/`;
  }

  /** The scope this client asks tokens for (none for a login). */
  get scope(): string[] {
    return this.path === '' || this.actions.length === 0 ? [] : [repositoryScope(this.path, this.actions)];
  }

  /** One request with the current authorization; follows a 401 challenge once. Bodies must be replayable. */
  async request(
    method: string,
    url: string,
    init: { headers?: Record<string, string>; body?: Buffer | ReadableStream<Uint8Array>; signal?: AbortSignal } = {},
  ): Promise<Response> {
    const full = new URL(url, this.base).toString();
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { 'User-Agent': this.opts.userAgent ?? 'skiffd', ...init.headers };
      // Authorization is only for the registry itself (a redirect to storage drops it: fetch does so cross-origin)
      if (this.authorization && new URL(full).host === this.host) headers.Authorization = this.authorization;
      let res: Response;
      try {
        res = await fetch(full, {
          method,
          headers,
          body: init.body as RequestInit['body'],
          signal: init.signal,
          redirect: 'follow',
          ...(init.body && !Buffer.isBuffer(init.body) ? { duplex: 'half' } : {}),
        } as RequestInit);
      } catch (err) {
        throw transportError(method, full, err);
      }
      if (res.status !== 401 || attempt > 0 || (init.body && !Buffer.isBuffer(init.body))) return res;
      const challenges = parseWwwAuthenticate(res.headers.get('www-authenticate') ?? '');
      const text = await res.text().catch(() => '');
      if (!(await this.answer(challenges, method, full, init.signal))) {
        throw new RegistryHttpError(401, firstCode(text), errorText(text, 'unauthorized: authentication required'));
      }
    }
  }

  /** Take a challenge: get a token or use basic credentials. False when there is nothing new to try. */
  private async answer(challenges: Challenge[], method: string, url: string, signal?: AbortSignal): Promise<boolean> {
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (bearer && bearer.params.realm) {
      this.challenge = bearer;
      const token = await this.fetchToken(bearer, signal);
      this.authorization = `Bearer ${token}`;
      return true;
    }
    if (basic && this.auth && hasCredentials(this.auth)) {
      const h = basicHeader(this.auth);
      if (!h || this.authorization === h) return false;
      this.challenge = basic;
      this.authorization = h;
      return true;
    }
    void method;
    void url;
    return false;
  }

  /** The token dance: GET realm?service&scope with basic credentials, or POST an OAuth refresh token. */
  async fetchToken(ch: Challenge, signal?: AbortSignal): Promise<string> {
    const realm = ch.params.realm!;
    const scopes = mergeScopes(ch.params.scope, this.scope);
    const service = ch.params.service;
    const auth = this.auth;
    const refresh = auth?.identitytoken;
    if (auth?.registrytoken) return auth.registrytoken;
    let res: Response;
    try {
      if (refresh) {
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refresh, client_id: 'skiffd' });
        if (service) form.set('service', service);
        if (scopes.length) form.set('scope', scopes.join(' '));
        res = await fetch(realm, {
          method: 'POST',
          headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
          body: form.toString(),
          signal,
        });
      } else {
        const u = new URL(realm);
        if (service) u.searchParams.set('service', service);
        for (const s of scopes) u.searchParams.append('scope', s);
        if (auth?.username) {
          u.searchParams.set('account', auth.username);
          u.searchParams.set('client_id', 'skiffd');
          u.searchParams.set('offline_token', 'true');
        }
        const headers: Record<string, string> = {};
        const b = auth ? basicHeader(auth) : undefined;
        if (b) headers.Authorization = b;
        res = await fetch(u, { headers, signal });
      }
    } catch (err) {
      throw transportError(refresh ? 'POST' : 'GET', realm, err);
    }
    const text = await res.text();
    if (!res.ok) {
      const why = errorText(text, `${res.status} ${res.statusText}`);
      const msg = res.status === 401 ? (why.startsWith('unauthorized') ? why : `unauthorized: ${why}`) : why;
      throw new RegistryHttpError(res.status === 401 ? 401 : res.status, 'UNAUTHORIZED', msg);
    }
    let o: { token?: string; access_token?: string; refresh_token?: string };
    try {
      o = JSON.parse(text) as typeof o;
    } catch {
      throw new RegistryHttpError(500, undefined, `the token server ${realm} answered no JSON`);
    }
    const token = o.token || o.access_token;
    if (!token) throw new RegistryHttpError(500, undefined, `the token server ${realm} answered no token`);
    if (o.refresh_token) this.refreshToken = o.refresh_token;
    for (const sc of scopes) this.granted.add(sc);
    return token;
  }

  /** Scopes a token was asked for. */
  private readonly granted = new Set<string>();

  /** A refresh token handed out during a login (the IdentityToken of /auth). */
  refreshToken: string | undefined;

  /** GET /v2/, answering its challenge: after this, requests carry the right Authorization. */
  async ping(signal?: AbortSignal): Promise<Response> {
    const res = await this.request('GET', this.base, { signal });
    this.pinged = true;
    return res;
  }

  /** Make sure credentials are in place before a request whose body cannot be replayed. */
  async ensureAuth(signal?: AbortSignal): Promise<void> {
    if (this.pinged) return;
    const res = await this.ping(signal);
    await res.body?.cancel().catch(() => undefined);
    if (res.status === 401) throw await this.httpError(res, `${this.base}`);
    // the ping's token was already asked for our scope (fetchToken adds it); ask again only if it was not
    if (this.challenge?.scheme === 'bearer' && this.scope.length && !this.scope.every((s) => this.granted.has(s))) {
      this.authorization = `Bearer ${await this.fetchToken(this.challenge, signal)}`;
    }
  }

  async httpError(res: Response, what: string): Promise<RegistryHttpError> {
    const text = await res.text().catch(() => '');
    return new RegistryHttpError(
      res.status,
      firstCode(text),
      errorText(text, `${what}: ${res.status} ${res.statusText}`),
    );
  }

  repoUrl(kind: 'manifests' | 'blobs', ref: string): string {
    return `${this.base}${this.path}/${kind}/${ref}`;
  }

  /** GET a manifest (by tag or digest), its size bounded, its digest computed (and checked when asked by digest). */
  async getManifest(reference: string, signal?: AbortSignal, accept = MANIFEST_ACCEPT): Promise<FetchedManifest> {
    const url = this.repoUrl('manifests', reference);
    const res = await this.request('GET', url, { headers: { Accept: accept.join(', ') }, signal });
    if (!res.ok) throw await this.httpError(res, `GET ${url}`);
    const body = await readLimited(res, MAX_MANIFEST, 'manifest');
    const digest = 'sha256:' + createHash('sha256').update(body).digest('hex');
    if (reference.includes(':') && reference !== digest)
      throw new RegistryHttpError(500, undefined, `manifest verification failed for digest ${reference}`);
    let mediaType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    try {
      const m = JSON.parse(body.toString('utf8')) as {
        mediaType?: string;
        schemaVersion?: number;
        manifests?: unknown;
      };
      if (typeof m.mediaType === 'string' && m.mediaType !== '') mediaType = m.mediaType;
      else if (m.schemaVersion === 1) mediaType = MEDIA.dockerSchema1;
      else if (!MANIFEST_ACCEPT.includes(mediaType as never))
        mediaType = m.manifests !== undefined ? MEDIA.ociIndex : MEDIA.ociManifest;
    } catch {
      throw new RegistryHttpError(500, undefined, `the manifest for ${reference} is not JSON`);
    }
    return { body, mediaType, digest };
  }

  /** GET a blob: the response, whose body the caller streams. */
  async getBlob(digest: string, signal?: AbortSignal): Promise<Response> {
    const url = this.repoUrl('blobs', digest);
    const res = await this.request('GET', url, { signal });
    if (!res.ok) throw await this.httpError(res, `GET ${url}`);
    return res;
  }

  async hasBlob(digest: string, signal?: AbortSignal): Promise<boolean> {
    const url = this.repoUrl('blobs', digest);
    const res = await this.request('HEAD', url, { signal });
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw await this.httpError(res, `HEAD ${url}`);
  }

  /**
   * Upload a blob: POST an upload session, then either PUT the bytes at once (a Buffer) or PATCH the stream and
   * PUT `?digest=` to close it.
   */
  async uploadBlob(
    digest: string,
    size: number,
    data: Buffer | ReadableStream<Uint8Array>,
    signal?: AbortSignal,
  ): Promise<void> {
    await this.ensureAuth(signal);
    const start = `${this.base}${this.path}/blobs/uploads/`;
    const res = await this.request('POST', start, { signal, headers: { 'Content-Length': '0' } });
    if (res.status !== 202) throw await this.httpError(res, `POST ${start}`);
    await res.body?.cancel().catch(() => undefined);
    let location = new URL(res.headers.get('location') ?? start, start);
    if (!Buffer.isBuffer(data)) {
      const patch = await this.request('PATCH', location.toString(), {
        signal,
        body: data,
        headers: { 'Content-Type': 'application/octet-stream' },
      });
      if (patch.status !== 202 && patch.status !== 204) throw await this.httpError(patch, `PATCH ${location}`);
      await patch.body?.cancel().catch(() => undefined);
      location = new URL(patch.headers.get('location') ?? location.toString(), location);
    }
    location.searchParams.set('digest', digest);
    const body = Buffer.isBuffer(data) ? data : Buffer.alloc(0);
    const put = await this.request('PUT', location.toString(), {
      signal,
      body,
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(body.length) },
    });
    if (put.status !== 201 && put.status !== 204) throw await this.httpError(put, `PUT ${location}`);
    await put.body?.cancel().catch(() => undefined);
    void size;
  }

  /** PUT a manifest under a tag (or digest); returns the digest the registry gives it. */
  async putManifest(reference: string, mediaType: string, body: Buffer, signal?: AbortSignal): Promise<string> {
    await this.ensureAuth(signal);
    const url = this.repoUrl('manifests', reference);
    const res = await this.request('PUT', url, { signal, body, headers: { 'Content-Type': mediaType } });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) throw await this.httpError(res, `PUT ${url}`);
    await res.body?.cancel().catch(() => undefined);
    return res.headers.get('docker-content-digest') ?? 'sha256:' + createHash('sha256').update(body).digest('hex');
  }
}

function firstCode(text: string): string | undefined {
  try {
    const o = JSON.parse(text) as { errors?: Array<{ code?: string }> };
    return o.errors?.[0]?.code;
  } catch {
    return undefined;
  }
}

/** Read a response body into memory, refusing more than `max` bytes. */
export async function readLimited(res: Response, max: number, what: string): Promise<Buffer> {
  const len = Number(res.headers.get('content-length') ?? '-1');
  if (len > max) throw new RegistryHttpError(500, undefined, `${what} too big: ${len} bytes (limit ${max})`);
  const chunks: Buffer[] = [];
  let n = 0;
  if (res.body) {
    for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) {
      n += c.length;
      if (n > max) {
        await res.body.cancel().catch(() => undefined);
        throw new RegistryHttpError(500, undefined, `${what} too big: more than ${max} bytes`);
      }
      chunks.push(Buffer.from(c));
    }
  }
  return Buffer.concat(chunks);
}
