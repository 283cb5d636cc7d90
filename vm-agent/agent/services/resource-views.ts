// Pure conversions for the Images, Volumes and Networks services: skiffd's Docker API answers (as it sends them)
// into skiff.agent.v1 messages (proto-loader shapes: snake_case, int64 as numbers or strings), and the few request
// pieces that need parsing (image references, registry auth, filters). No I/O here, so it is unit-tested.
import { status } from '@grpc/grpc-js';
import type { Timestamp } from '../../common/timestamp.js';
import { timestamp } from '../grpc.js';

// ----------------------------------------------------------------------------------------- the engine's answers

export interface EngineImage {
  Id: string;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
  Created: number; // unix seconds
  Size: number;
  Labels?: Record<string, string> | null;
}

export interface EngineHistoryItem {
  Id: string;
  Created: number;
  CreatedBy: string;
  Tags?: string[] | null;
  Size: number;
  Comment: string;
}

export interface EngineContainer {
  Id: string;
  Names?: string[] | null;
  ImageID?: string;
  State?: string;
  NetworkSettings?: { Networks?: Record<string, { NetworkID?: string } | null> | null } | null;
  Mounts?: { Type?: string; Name?: string }[] | null;
}

export interface EngineVolume {
  Name: string;
  Driver: string;
  Mountpoint: string;
  CreatedAt?: string;
  Labels?: Record<string, string> | null;
  Options?: Record<string, string> | null;
  UsageData?: { Size: number; RefCount: number } | null;
}

export interface EngineNetwork {
  Id: string;
  Name: string;
  Driver: string;
  Created?: string;
  Internal?: boolean;
  IPAM?: { Config?: { Subnet?: string; Gateway?: string }[] | null } | null;
  Options?: Record<string, string> | null;
  Labels?: Record<string, string> | null;
}

/** One line of a pull's JSON progress. */
export interface EngineProgressLine {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number } | null;
  errorDetail?: { message?: string; code?: number } | null;
  error?: string;
}

// ----------------------------------------------------------------------------------------- the API's messages

export interface StringList {
  values: string[];
}

export interface ImageSummaryMsg {
  id: string;
  repo_tags: string[];
  repo_digests: string[];
  created: Timestamp | null;
  size: number;
  containers: number;
  in_use: boolean;
  dangling: boolean;
  labels: Record<string, string>;
}

export interface HistoryEntryMsg {
  id: string;
  created: Timestamp | null;
  created_by: string;
  size: number;
  comment: string;
  tags: string[];
}

export interface PullProgressMsg {
  layer: string;
  status: string;
  current: number;
  total: number;
  image_id: string;
}

export interface VolumeMsg {
  name: string;
  driver: string;
  mountpoint: string;
  created: Timestamp | null;
  labels: Record<string, string>;
  options: Record<string, string>;
  size: number;
  users: string[];
  anonymous: boolean;
}

export interface NetworkMsg {
  id: string;
  name: string;
  driver: string;
  subnet: string;
  gateway: string;
  internal: boolean;
  labels: Record<string, string>;
  containers: string[];
  created: Timestamp | null;
  builtin: boolean;
}

export interface PruneMsg {
  deleted: string[];
  space_reclaimed: number;
}

// ----------------------------------------------------------------------------------------- common pieces

/** The API's filters (key → StringList) as Docker's filters JSON (key → values); undefined when there are none. */
export function dockerFilters(
  filters: Record<string, StringList | null | undefined> | null | undefined,
): Record<string, string[]> | undefined {
  const out: Record<string, string[]> = {};
  for (const [k, list] of Object.entries(filters ?? {})) {
    const values = list?.values ?? [];
    if (values.length > 0) out[k] = [...values];
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** A container's name without the leading "/" (its id's first 12 characters when it has none). */
export function containerName(c: EngineContainer): string {
  const n = c.Names?.[0];
  return n ? n.replace(/^\//, '') : c.Id.slice(0, 12);
}

// ----------------------------------------------------------------------------------------- images

/** How many containers (any state) each image id has. */
export function containersPerImage(containers: EngineContainer[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const c of containers) if (c.ImageID) counts.set(c.ImageID, (counts.get(c.ImageID) ?? 0) + 1);
  return counts;
}

/** Tags that name something: "<none>:<none>" is how the engine writes "no tag". */
function realTags(tags: string[] | null | undefined): string[] {
  return (tags ?? []).filter((t) => t !== '<none>:<none>');
}

export function imageSummary(img: EngineImage, counts: Map<string, number>): ImageSummaryMsg {
  const containers = counts.get(img.Id) ?? 0;
  const tags = realTags(img.RepoTags);
  return {
    id: img.Id,
    repo_tags: tags,
    repo_digests: (img.RepoDigests ?? []).filter((d) => d !== '<none>@<none>'),
    created: timestamp(img.Created),
    size: img.Size,
    containers,
    in_use: containers > 0,
    dangling: tags.length === 0 && containers === 0,
    labels: { ...(img.Labels ?? {}) },
  };
}

export function historyEntry(h: EngineHistoryItem): HistoryEntryMsg {
  return {
    // "<missing>" for layers whose image is not stored (as dockerd), kept as the engine says it
    id: h.Id,
    created: timestamp(h.Created),
    created_by: h.CreatedBy ?? '',
    size: h.Size,
    comment: h.Comment ?? '',
    tags: realTags(h.Tags),
  };
}

/**
 * "repo[:tag]" split at the tag's colon, which is the last one after the last "/" (so a registry port stays in the
 * repository: "127.0.0.1:5000/x:1" → 127.0.0.1:5000/x and 1). tag is "" when there is none.
 */
export function splitRepoTag(ref: string): { repo: string; tag: string } {
  const colon = ref.lastIndexOf(':');
  if (colon > ref.lastIndexOf('/')) return { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { repo: ref, tag: '' };
}

/**
 * A reference to pull as POST /images/create wants it: fromImage without tag or digest, and tag = the digest when
 * there is one, else the tag, else "latest" (an empty tag would pull every tag of the repository).
 */
export function pullQuery(ref: string): { fromImage: string; tag: string } {
  const at = ref.indexOf('@');
  if (at >= 0) return { fromImage: splitRepoTag(ref.slice(0, at)).repo, tag: ref.slice(at + 1) };
  const { repo, tag } = splitRepoTag(ref);
  return { fromImage: repo, tag: tag || 'latest' };
}

/** The reference a finished pull left in the store (for GET /images/{ref}/json). */
export function pulledRef(ref: string): string {
  const { fromImage, tag } = pullQuery(ref);
  return tag.includes(':') ? `${fromImage}@${tag}` : `${fromImage}:${tag}`;
}

export interface RegistryAuthMsg {
  username?: string;
  password?: string;
  server?: string;
  identity_token?: string;
}

/** The X-Registry-Auth header (base64url of Docker's AuthConfig JSON), or undefined without credentials. */
export function registryAuthHeader(auth: RegistryAuthMsg | null | undefined): string | undefined {
  if (!auth || (!auth.username && !auth.identity_token)) return undefined;
  const config: Record<string, string> = {};
  if (auth.username) config.username = auth.username;
  if (auth.password) config.password = auth.password;
  if (auth.server) config.serveraddress = auth.server;
  if (auth.identity_token) config.identitytoken = auth.identity_token;
  return Buffer.from(JSON.stringify(config), 'utf8').toString('base64url');
}

/** A progress line as a PullProgress, or null for lines that say nothing (no status). */
export function pullProgress(line: EngineProgressLine): PullProgressMsg | null {
  if (!line.status) return null;
  // "Pulling from library/busybox" carries the tag as its id, not a layer
  const aboutLayer = line.id !== undefined && !line.status.startsWith('Pulling from ');
  return {
    layer: aboutLayer ? (line.id ?? '') : '',
    status: line.status,
    current: line.progressDetail?.current ?? 0,
    total: line.progressDetail?.total ?? 0,
    image_id: '',
  };
}

/** The error a progress line reports (errorDetail, or error for older engines), or undefined. */
export function progressError(line: EngineProgressLine): string | undefined {
  const msg = line.errorDetail?.message ?? line.error;
  if (msg !== undefined) return msg || 'the pull failed';
  return line.errorDetail ? 'the pull failed' : undefined;
}

/** The gRPC code of a failed pull, from the engine's HTTP status (when it failed before streaming) and message. */
export function pullErrorCode(message: string, httpStatus = 0): status {
  const m = message.toLowerCase();
  if (httpStatus === 401 || /unauthorized|authentication required|no basic auth credentials/.test(m))
    return status.UNAUTHENTICATED;
  if (httpStatus === 403 || /\bdenied\b/.test(m)) return status.PERMISSION_DENIED;
  if (httpStatus === 404 || /manifest unknown|not found|name unknown|no such image/.test(m)) return status.NOT_FOUND;
  if (httpStatus === 400 || /invalid reference format/.test(m)) return status.INVALID_ARGUMENT;
  return status.INTERNAL;
}

/** DELETE /images/{name}'s answer: what was untagged and what deleted. */
export function removeImageResult(items: { Untagged?: string; Deleted?: string }[] | null | undefined): {
  untagged: string[];
  deleted: string[];
} {
  const untagged: string[] = [];
  const deleted: string[] = [];
  for (const i of items ?? []) {
    if (i.Untagged) untagged.push(i.Untagged);
    if (i.Deleted) deleted.push(i.Deleted);
  }
  return { untagged, deleted };
}

/** POST /images/prune's answer: the deleted image ids (untagged references left out), and the space. */
export function imagePruneResult(
  res: { ImagesDeleted?: { Untagged?: string; Deleted?: string }[] | null; SpaceReclaimed?: number } | undefined,
): PruneMsg {
  return { deleted: removeImageResult(res?.ImagesDeleted).deleted, space_reclaimed: res?.SpaceReclaimed ?? 0 };
}

// ----------------------------------------------------------------------------------------- volumes

/** Each volume's size from GET /system/df (-1 when the engine could not measure it). */
export function volumeSizes(df: { Volumes?: EngineVolume[] | null } | undefined): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const v of df?.Volumes ?? []) sizes.set(v.Name, v.UsageData?.Size ?? -1);
  return sizes;
}

/** The names of the containers (any state) that mount each volume. */
export function volumeUsers(containers: EngineContainer[]): Map<string, string[]> {
  const users = new Map<string, string[]>();
  for (const c of containers)
    for (const m of c.Mounts ?? []) {
      if (m.Type !== 'volume' || !m.Name) continue;
      const list = users.get(m.Name) ?? [];
      const name = containerName(c);
      if (!list.includes(name)) list.push(name);
      users.set(m.Name, list);
    }
  for (const list of users.values()) list.sort();
  return users;
}

export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';

export function volumeView(v: EngineVolume, sizes: Map<string, number>, users: Map<string, string[]>): VolumeMsg {
  const labels = { ...(v.Labels ?? {}) };
  return {
    name: v.Name,
    driver: v.Driver,
    mountpoint: v.Mountpoint,
    created: timestamp(v.CreatedAt),
    labels,
    options: { ...(v.Options ?? {}) },
    size: sizes.get(v.Name) ?? v.UsageData?.Size ?? -1,
    users: users.get(v.Name) ?? [],
    anonymous: ANONYMOUS_LABEL in labels,
  };
}

/** POST /volumes/prune's answer. */
export function volumePruneResult(
  res: { VolumesDeleted?: string[] | null; SpaceReclaimed?: number } | undefined,
): PruneMsg {
  return { deleted: [...(res?.VolumesDeleted ?? [])], space_reclaimed: res?.SpaceReclaimed ?? 0 };
}

// ----------------------------------------------------------------------------------------- networks

/**
 * The names of the running containers on each network, keyed by network id and by name (a container's networks
 * are keyed by name, each with the network's id). Give it GET /containers/json without all: running ones.
 */
export function networkMembers(running: EngineContainer[]): Map<string, string[]> {
  const members = new Map<string, string[]>();
  const add = (key: string, name: string): void => {
    const list = members.get(key) ?? [];
    if (!list.includes(name)) list.push(name);
    members.set(key, list);
  };
  for (const c of running) {
    const name = containerName(c);
    for (const [netName, ep] of Object.entries(c.NetworkSettings?.Networks ?? {})) {
      add(`name:${netName}`, name);
      if (ep?.NetworkID) add(`id:${ep.NetworkID}`, name);
    }
  }
  return members;
}

const BUILTIN_NAMES = new Set(['bridge', 'host', 'none']);

/** The engine's own networks, which cannot be removed. */
export function isBuiltinNetwork(n: EngineNetwork): boolean {
  return (
    BUILTIN_NAMES.has(n.Name) ||
    n.Driver === 'host' ||
    n.Driver === 'null' ||
    n.Options?.['com.docker.network.bridge.default_bridge'] === 'true'
  );
}

export function networkView(n: EngineNetwork, members: Map<string, string[]>): NetworkMsg {
  const ipam = n.IPAM?.Config?.[0];
  const names = new Set([...(members.get(`id:${n.Id}`) ?? []), ...(members.get(`name:${n.Name}`) ?? [])]);
  return {
    id: n.Id,
    name: n.Name,
    driver: n.Driver,
    subnet: ipam?.Subnet ?? '',
    gateway: ipam?.Gateway ?? '',
    internal: n.Internal ?? false,
    labels: { ...(n.Labels ?? {}) },
    containers: [...names].sort(),
    created: timestamp(n.Created),
    builtin: isBuiltinNetwork(n),
  };
}

/** POST /networks/create's body for the API's CreateNetworkRequest (always a bridge: the only local driver). */
export function networkCreateBody(req: {
  name: string;
  subnet?: string;
  gateway?: string;
  internal?: boolean;
  labels?: Record<string, string>;
}): Record<string, unknown> {
  const body: Record<string, unknown> = {
    Name: req.name,
    Driver: 'bridge',
    Internal: req.internal ?? false,
    Labels: { ...(req.labels ?? {}) },
  };
  if (req.subnet) {
    const config: Record<string, string> = { Subnet: req.subnet };
    if (req.gateway) config.Gateway = req.gateway;
    body.IPAM = { Driver: 'default', Config: [config] };
  }
  return body;
}
