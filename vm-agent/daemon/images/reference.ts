// Docker image references: [domain/]path[:tag][@digest]. Stored fully qualified (docker.io/library/busybox:latest),
// shown familiar (busybox:latest) as dockerd does.
import { badRequest } from '../contracts.js';

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?$|^\[[0-9a-fA-F:.]+\](?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;

export const DEFAULT_DOMAIN = 'docker.io';

export interface Reference {
  /** Fully qualified repository: docker.io/library/busybox */
  name: string;
  tag?: string;
  digest?: string;
}

/** Parse and normalise; throws a 400 DockerError with dockerd's wording on bad input. */
export function parseReference(input: string): Reference {
  const s = input.trim();
  if (s === '') throw badRequest('invalid reference format');
  if (/^[a-f0-9]{64}$/.test(s))
    throw badRequest(`invalid repository name (${s}), cannot specify 64-byte hexadecimal strings`);
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw badRequest(`invalid reference format: ${input}`);
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw badRequest(`invalid reference format: ${input}`);
  }
  if (rest === '' || rest.length > 255) throw badRequest(`invalid reference format: ${input}`);
  const parts = rest.split('/');
  let domain = DEFAULT_DOMAIN;
  const first = parts[0] as string;
  if (
    parts.length > 1 &&
    (first.includes('.') || first.includes(':') || first === 'localhost' || /[A-Z]/.test(first))
  ) {
    if (!DOMAIN.test(first)) throw badRequest(`invalid reference format: ${input}`);
    domain = first === 'index.docker.io' ? DEFAULT_DOMAIN : first;
    parts.shift();
  }
  for (const p of parts) {
    if (!COMPONENT.test(p)) {
      if (/[A-Z]/.test(p)) throw badRequest(`invalid reference format: repository name (${rest}) must be lowercase`);
      throw badRequest(`invalid reference format: ${input}`);
    }
  }
  if (domain === DEFAULT_DOMAIN && parts.length === 1) parts.unshift('library');
  const ref: Reference = { name: `${domain}/${parts.join('/')}` };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** name:tag, name@digest or name:tag@digest; `latest` added when neither is given. */
export function formatReference(r: Reference, addLatest = true): string {
  let s = r.name;
  if (r.tag !== undefined) s += `:${r.tag}`;
  else if (r.digest === undefined && addLatest) s += ':latest';
  if (r.digest !== undefined) s += `@${r.digest}`;
  return s;
}

/** Normalise: "busybox" → "docker.io/library/busybox:latest". */
export function normalizeReference(input: string): string {
  return formatReference(parseReference(input));
}

/** The familiar form: "docker.io/library/busybox:latest" → "busybox:latest", "docker.io/me/x" → "me/x". */
export function familiar(ref: string): string {
  if (ref.startsWith('docker.io/library/')) {
    const rest = ref.slice('docker.io/library/'.length);
    if (!rest.includes('/')) return rest;
  }
  if (ref.startsWith('docker.io/')) return ref.slice('docker.io/'.length);
  return ref;
}

/** The repository part of a stored reference (before :tag or @digest). */
export function repoOf(ref: string): string {
  const at = ref.indexOf('@');
  const s = at >= 0 ? ref.slice(0, at) : ref;
  const slash = s.lastIndexOf('/');
  const colon = s.lastIndexOf(':');
  return colon > slash ? s.slice(0, colon) : s;
}

/** Whether a string looks like an image id or an id prefix (with or without sha256:). */
export function idLike(s: string): string | undefined {
  const m = /^(?:sha256:)?([a-f0-9]{1,64})$/.exec(s);
  return m ? m[1] : undefined;
}
