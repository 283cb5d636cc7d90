// Docker image references as the registry client needs them: registry host, repository path, tag or digest.
// `busybox` is docker.io/library/busybox:latest; the first component is a registry host when it has a dot or a
// port or is `localhost`. Familiar forms drop docker.io/ and library/, as the CLI prints them.
import { badRequest } from '../contracts.js';

export const DOCKER_HUB = 'docker.io';
/** Where docker.io's API is served. */
export const DOCKER_HUB_API = 'registry-1.docker.io';

export interface Reference {
  /** Registry host[:port] as the user wrote it, docker.io for Docker Hub. */
  domain: string;
  /** Repository path in the registry: `library/busybox`, `team/app`. */
  path: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const SHA256 = /^sha256:[a-f0-9]{64}$/;

function isDomain(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase();
}

/** Parse a reference; throws a 400 DockerError with Docker's wording when it is not valid. */
export function parseReference(input: string): Reference {
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest) || (digest.startsWith('sha256:') && !SHA256.test(digest)))
      throw badRequest(`invalid reference format`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw badRequest(`invalid reference format`);
  }
  if (rest === '') throw badRequest('invalid reference format');
  const parts = rest.split('/');
  let domain = DOCKER_HUB;
  if (parts.length > 1 && isDomain(parts[0]!)) domain = parts.shift()!;
  if (domain === 'index.docker.io') domain = DOCKER_HUB;
  if (domain === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  for (const p of parts) {
    if (!COMPONENT.test(p)) {
      if (p !== p.toLowerCase())
        throw badRequest(`invalid reference format: repository name (${parts.join('/')}) must be lowercase`);
      throw badRequest('invalid reference format');
    }
  }
  const path = parts.join('/');
  if (domain.length + path.length + 1 > 255)
    throw badRequest('invalid reference format: repository name must not be more than 255 characters');
  const ref: Reference = { domain, path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** `latest` when neither a tag nor a digest is given. */
export function withDefaultTag(ref: Reference): Reference {
  return ref.tag === undefined && ref.digest === undefined ? { ...ref, tag: 'latest' } : ref;
}

/** docker.io/library/busybox */
export function fullName(ref: Reference): string {
  return `${ref.domain}/${ref.path}`;
}

/** busybox, team/app, 127.0.0.1:5000/busybox */
export function familiarName(ref: Reference): string {
  if (ref.domain !== DOCKER_HUB) return `${ref.domain}/${ref.path}`;
  return ref.path.startsWith('library/') && ref.path.split('/').length === 2 ? ref.path.slice(8) : ref.path;
}

function suffix(ref: Reference): string {
  return (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest !== undefined ? `@${ref.digest}` : '');
}

/** busybox:latest, 127.0.0.1:5000/busybox@sha256:… */
export function familiarString(ref: Reference): string {
  return familiarName(ref) + suffix(ref);
}

/** docker.io/library/busybox:latest */
export function fullString(ref: Reference): string {
  return fullName(ref) + suffix(ref);
}

/** The host the registry API is reached at (registry-1.docker.io for docker.io). */
export function apiHost(domain: string): string {
  return domain === DOCKER_HUB ? DOCKER_HUB_API : domain;
}

/** The tag or digest to ask the registry for (the digest wins when both are given, as in dockerd). */
export function manifestReference(ref: Reference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}
