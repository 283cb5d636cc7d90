// Registry authentication: the X-Registry-Auth header, WWW-Authenticate challenges (RFC 7235) and the token
// dance of the distribution spec (a Bearer challenge names a realm that hands out tokens for a service/scope).
import type { RegistryAuth } from '../contracts.js';

export interface Challenge {
  /** Lower case: "basic", "bearer". */
  scheme: string;
  /** Parameter names lower case: realm, service, scope, error. */
  params: Record<string, string>;
}

/**
 * Parse a WWW-Authenticate header value into its challenges. Handles several challenges in one header, quoted
 * strings with backslash escapes, and token68 values (which are skipped).
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skipWs = (): void => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  let current: Challenge | undefined;
  while (i < n) {
    skipWs();
    if (header[i] === ',') {
      i++;
      continue;
    }
    const start = i;
    const word = token();
    if (word === '') {
      i++; // not a token character: skip it
      continue;
    }
    skipWs();
    if (header[i] === '=' && current !== undefined && header[i + 1] !== '=') {
      // an auth-param of the current challenge
      i++;
      skipWs();
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++; // closing quote
      } else {
        const vs = i;
        while (i < n && header[i] !== ',' && header[i] !== ' ' && header[i] !== '\t') i++;
        value = header.slice(vs, i);
      }
      current.params[word.toLowerCase()] = value;
      continue;
    }
    if (header[i] === '=' && current !== undefined) {
      // token68 ("abc==") belongs to the current challenge: skip it
      while (i < n && header[i] !== ',') i++;
      continue;
    }
    void start;
    current = { scheme: word.toLowerCase(), params: {} };
    out.push(current);
  }
  return out;
}

/**
 * Decode `X-Registry-Auth`: base64url (or standard base64) JSON. Empty, `{}` or undecodable values give
 * undefined, as dockerd ignores them for pulls.
 */
export function decodeRegistryAuth(header: string | string[] | undefined): RegistryAuth | undefined {
  const h = Array.isArray(header) ? header[0] : header;
  if (!h) return undefined;
  let json: unknown;
  try {
    const b64 = h.trim().replace(/-/g, '+').replace(/_/g, '/');
    json = JSON.parse(Buffer.from(b64, 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
  if (json === null || typeof json !== 'object') return undefined;
  const o = json as Record<string, unknown>;
  const auth: RegistryAuth = {};
  for (const k of ['username', 'password', 'serveraddress', 'identitytoken', 'registrytoken'] as const) {
    const v = o[k] ?? o[k.charAt(0).toUpperCase() + k.slice(1)];
    if (typeof v === 'string' && v !== '') auth[k] = v;
  }
  // docker CLI sometimes sends {"auth": base64(user:pass)}
  if (auth.username === undefined && typeof o.auth === 'string' && o.auth !== '') {
    const decoded = Buffer.from(o.auth, 'base64').toString('utf8');
    const c = decoded.indexOf(':');
    if (c > 0) {
      auth.username = decoded.slice(0, c);
      auth.password = decoded.slice(c + 1);
    }
  }
  return Object.keys(auth).length === 0 ? undefined : auth;
}

/** Encode as the docker CLI does (base64url JSON): for tests and clients. */
export function encodeRegistryAuth(auth: RegistryAuth): string {
  return Buffer.from(JSON.stringify(auth)).toString('base64url');
}

export function hasCredentials(auth: RegistryAuth | undefined): boolean {
  return !!auth && (!!auth.identitytoken || !!auth.registrytoken || (!!auth.username && auth.password !== undefined));
}

export function basicHeader(auth: RegistryAuth): string | undefined {
  if (!auth.username || auth.password === undefined) return undefined;
  return 'Basic ' + Buffer.from(`${auth.username}:${auth.password}`).toString('base64');
}

/** `repository:library/busybox:pull,push` */
export function repositoryScope(path: string, actions: string[]): string {
  return `repository:${path}:${actions.join(',')}`;
}

/** Merge scopes the way they are sent: one `scope` parameter each, duplicates dropped. */
export function mergeScopes(...lists: Array<string | string[] | undefined>): string[] {
  const seen = new Set<string>();
  for (const l of lists) {
    if (l === undefined) continue;
    for (const s of Array.isArray(l) ? l : l.split(' ')) if (s !== '') seen.add(s);
  }
  return [...seen];
}

/** The registry's or token server's error text: `unauthorized: authentication required`. */
export function errorText(body: string, fallback: string): string {
  try {
    const o = JSON.parse(body) as {
      errors?: Array<{ code?: string; message?: string }>;
      details?: string;
      message?: string;
      error?: string;
    };
    if (Array.isArray(o.errors) && o.errors.length > 0) {
      return o.errors
        .map((e) => {
          const code = (e.code ?? 'unknown').toLowerCase().replace(/_/g, ' ');
          return e.message ? `${code}: ${e.message}` : code;
        })
        .join('; ');
    }
    if (typeof o.details === 'string') return o.details;
    if (typeof o.message === 'string') return o.message;
    if (typeof o.error === 'string') return o.error;
  } catch {
    /* not JSON */
  }
  const t = body.trim();
  return t !== '' && t.length < 300 && !t.startsWith('<') ? t : fallback;
}
